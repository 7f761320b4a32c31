//! `ordering: "fifo"`: an endpoint receives its events in the order their
//! publishes committed, one request at a time; a failing delivery holds the
//! ones behind it until it succeeds.
use crate::helpers::{status_and_json, Backend, TestApp};
use crate::on_both_backends;
use crate::receiver::{Received, Receiver, Reply};
use futures_util::future::join_all;
use serde_json::json;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};
use webhookd::delivery::retry::RetrySchedule;

/// One publish as its client saw it: its event's number, when the request
/// started and when the 202 came back. A publish that came back before
/// another started committed before it.
#[derive(Debug, Clone, Copy)]
pub struct Publish {
    pub n: u64,
    pub started: Instant,
    pub accepted: Instant,
}

/// A receiver that fails about a quarter of the first and second attempts
/// of an event (which one, decided by a hash of its id) and accepts the
/// third.
pub fn failing_at_random() -> Receiver {
    Receiver::by_attempt(|webhook_id, attempt| {
        let mut hasher = DefaultHasher::new();
        (webhook_id, attempt).hash(&mut hasher);
        if attempt < 2 && hasher.finish().is_multiple_of(4) {
            Reply::Status(500)
        } else {
            Reply::Status(200)
        }
    })
}

/// Waits until the receiver has accepted each of `events` events (by
/// `number`) once at least.
pub async fn wait_until_all_accepted(
    receiver: &Receiver,
    events: usize,
    within: Duration,
    number: impl Fn(&Received) -> u64,
) {
    receiver
        .wait_until(within, |received| {
            let accepted: std::collections::HashSet<u64> = received
                .iter()
                .filter(|r| r.replied == 200)
                .map(&number)
                .collect();
            accepted.len() == events
        })
        .await;
}

/// Checks the FIFO promise on what a receiver got, `number` reading an
/// event's number from a request:
/// - one request at a time: each came after the one before was answered;
/// - an event's requests come together (its retries before anything
///   behind it), the last of them accepted;
/// - no inversion: an event whose publish was accepted before another's
///   started arrives before it.
pub fn assert_fifo(
    published: &[Publish],
    received: &[Received],
    number: impl Fn(&Received) -> u64,
) {
    for pair in received.windows(2) {
        let answered = pair[0].answered.expect("every request was answered");
        assert!(
            pair[1].at >= answered,
            "a request arrived while the one before it was under way"
        );
    }
    let mut order: Vec<u64> = Vec::new();
    let mut last_status: HashMap<u64, u16> = HashMap::new();
    for request in received {
        let n = number(request);
        if order.last() != Some(&n) {
            assert!(
                !order.contains(&n),
                "event {n} came again after another event: {order:?}"
            );
            order.push(n);
        }
        last_status.insert(n, request.replied);
    }
    for (n, status) in &last_status {
        assert_eq!(*status, 200, "event {n} was left failing");
    }
    let position: HashMap<u64, usize> = order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let mut checked = 0;
    for a in published {
        for b in published {
            if a.accepted < b.started {
                checked += 1;
                assert!(
                    position[&a.n] < position[&b.n],
                    "event {} was accepted before event {} was published, but arrived after it",
                    a.n,
                    b.n
                );
            }
        }
    }
    assert!(checked > 0, "no publish came before another");
}

/// `publishers` clients publish `each` events one after the other, all at
/// once; event numbers are `publisher * each + i`.
async fn publish_concurrently(app: &TestApp, publishers: u64, each: u64) -> Vec<Publish> {
    let clients = (0..publishers).map(|p| async move {
        let mut done = Vec::new();
        for i in 0..each {
            let n = p * each + i;
            let started = Instant::now();
            app.publish("order.placed", json!({ "n": n })).await;
            done.push(Publish {
                n,
                started,
                accepted: Instant::now(),
            });
        }
        done
    });
    join_all(clients).await.into_iter().flatten().collect()
}

fn number(request: &Received) -> u64 {
    request.json()["data"]["n"].as_u64().expect("data.n")
}

async fn a_fifo_endpoint_gets_events_in_commit_order_one_at_a_time(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |settings| {
        settings.delivery.retry_schedule = RetrySchedule::parse("10ms,20ms,40ms").unwrap();
    })
    .await;
    app.add_event_type("order.placed").await;
    let receiver = failing_at_random();
    let created = app
        .subscribe(
            &receiver.url,
            json!(["order.placed"]),
            json!({"ordering": "fifo"}),
        )
        .await;
    assert_eq!(created["ordering"], "fifo");

    let published = publish_concurrently(&app, 16, 32).await;
    let events = published.len();
    wait_until_all_accepted(&receiver, events, Duration::from_secs(120), number).await;
    // Every request has been answered (the last one, too).
    receiver
        .wait_until(Duration::from_secs(10), |received| {
            received.iter().all(|r| r.answered.is_some())
        })
        .await;
    let received = receiver.received();
    let failed = received.iter().filter(|r| r.replied != 200).count();
    assert!(failed > 0, "the receiver failed none");
    assert_fifo(&published, &received, number);
    eprintln!("fifo: {events} events, {failed} failed attempts, in order");
}

/// The default ordering sends several at once and a failure holds nothing
/// up; `ordering` is validated and can be switched back.
async fn ordering_is_validated_and_none_does_not_hold_deliveries_back(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    app.add_event_type("order.placed").await;
    let (status, body) = status_and_json(
        app.request(reqwest::Method::POST, "/api/v1/webhooks")
            .json(&json!({"url": "http://127.0.0.1:9/h", "events": ["*"], "ordering": "lifo"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("ordering"), "{body}");

    // The first event hangs until released; the second, behind it on a
    // default endpoint, is not held back.
    let receiver = Receiver::scripted(|n| {
        if n == 0 {
            Reply::AfterRelease(200)
        } else {
            Reply::Status(200)
        }
    });
    let created = app
        .subscribe(&receiver.url, json!(["order.placed"]), json!({}))
        .await;
    assert_eq!(created["ordering"], "none");
    let id = created["id"].as_i64().unwrap();
    app.publish("order.placed", json!({"n": 0})).await;
    receiver.wait_for(1, Duration::from_secs(10)).await;
    app.publish("order.placed", json!({"n": 1})).await;
    let both = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(number(&both[1]), 1);
    receiver.release();

    // Switched to FIFO, the same holds the second back until the first is
    // answered.
    let patched = app.patch_webhook(id, json!({"ordering": "fifo"})).await;
    assert_eq!(patched["ordering"], "fifo");
    let fifo_receiver = Receiver::scripted(|n| {
        if n == 0 {
            Reply::AfterRelease(200)
        } else {
            Reply::Status(200)
        }
    });
    app.patch_webhook(id, json!({"url": fifo_receiver.url}))
        .await;
    app.publish("order.placed", json!({"n": 2})).await;
    fifo_receiver.wait_for(1, Duration::from_secs(10)).await;
    app.publish("order.placed", json!({"n": 3})).await;
    fifo_receiver.release();
    // The first is answered only once released: the second arriving after
    // that answer is what FIFO promises (with `none` it arrived at once,
    // above).
    let both = fifo_receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(both.iter().map(number).collect::<Vec<_>>(), vec![2, 3]);
    assert!(
        both[1].at >= both[0].answered.unwrap(),
        "FIFO sent two at once"
    );
}

/// A FIFO endpoint's next delivery waits for the one before it to be
/// recorded, so its outcomes are written at once rather than lingering for
/// company like other outcomes (`OUTCOME_LINGER`, 15 ms). With the linger
/// lengthened to a minute, ten events still arrive within seconds: each
/// would otherwise wait a minute behind the one before.
async fn a_fifo_line_does_not_wait_for_the_outcome_linger(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |settings| {
        settings.delivery.outcome_linger = Duration::from_secs(60);
    })
    .await;
    app.add_event_type("order.placed").await;
    let receiver = Receiver::ok();
    app.subscribe(
        &receiver.url,
        json!(["order.placed"]),
        json!({"ordering": "fifo"}),
    )
    .await;
    for n in 0..10 {
        app.publish("order.placed", json!({ "n": n })).await;
    }
    let received = receiver.wait_for(10, Duration::from_secs(20)).await;
    assert_eq!(
        received.iter().map(number).collect::<Vec<_>>(),
        (0..10).collect::<Vec<u64>>()
    );
}

on_both_backends!(
    a_fifo_line_does_not_wait_for_the_outcome_linger,
    a_fifo_endpoint_gets_events_in_commit_order_one_at_a_time,
    ordering_is_validated_and_none_does_not_hold_deliveries_back,
);
