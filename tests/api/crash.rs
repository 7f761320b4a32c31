//! `kill -9` in the middle of deliveries loses no accepted event.
use crate::cli::{stdout_of, webhookd, Served};
use crate::faults::harness::checker::RECORDED_WITHIN;
use crate::helpers::{Backend, TestDatabase};
use crate::on_both_backends;
use crate::receiver::{Receiver, Reply};
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const EVENTS: usize = 2000;

/// Ids of the events the receiver accepted (answered 2xx) at least once.
fn delivered(receiver: &Receiver) -> HashSet<String> {
    receiver
        .received()
        .iter()
        .filter(|r| (200..300).contains(&r.replied))
        .map(|r| r.header("webhook-id").to_owned())
        .collect()
}

/// A server with event type `invoice.paid` and one webhook for it.
struct Subscribed {
    server: Served,
    key: String,
    base: String,
    client: reqwest::Client,
    webhook: i64,
}

impl Subscribed {
    async fn start(database: &TestDatabase, flags: &[&str], receiver: &Receiver) -> Self {
        stdout_of(&webhookd(
            database,
            &["event-types", "add", "invoice.paid", "--description", "x"],
        ));
        let server = Served::start_with(database, flags);
        let key = server.stdout_line(|line| line.starts_with("whk_"));
        server.wait_until_listening();
        let base = format!("http://127.0.0.1:{}", server.port);
        let client = reqwest::Client::new();
        let created: Value = client
            .post(format!("{base}/api/v1/webhooks"))
            .bearer_auth(&key)
            .json(&json!({"url": receiver.url, "events": ["invoice.paid"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let webhook = created["data"]["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("{created}"));
        Self {
            server,
            key,
            base,
            client,
            webhook,
        }
    }
}

async fn every_accepted_event_arrives_after_a_kill_9(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    // Every event's first attempt is refused, so retries are pending when
    // the kill comes; none can run out of retries.
    let receiver = Receiver::refusing_first_attempts();
    // Refused first attempts wait 2 s for their retry: whatever was published
    // in the last 2 s before the kill is still pending then.
    let flags = ["--dev", "--retry-schedule", "2s"];
    let Subscribed {
        server: first,
        key,
        base,
        client,
        ..
    } = Subscribed::start(&database, &flags, &receiver).await;

    // Publish all events as fast as the server accepts them, then kill it.
    let publishes = stream::iter(0..EVENTS)
        .map(|n| {
            let (client, base, key) = (client.clone(), base.clone(), key.clone());
            async move {
                let response = client
                    .post(format!("{base}/api/v1/events"))
                    .bearer_auth(&key)
                    .json(&json!({"type": "invoice.paid", "data": {"n": n}}))
                    .send()
                    .await
                    .ok()?;
                if response.status() != 202 {
                    return None;
                }
                let body: Value = response.json().await.ok()?;
                body["data"]["id"].as_str().map(str::to_owned)
            }
        })
        .buffer_unordered(16);
    let accepted: Vec<Option<String>> = publishes.collect().await;
    first.kill();
    let received_at_kill = delivered(&receiver).len();
    let accepted: HashSet<String> = accepted.into_iter().flatten().collect();
    assert_eq!(accepted.len(), EVENTS, "every publish is accepted");
    assert!(
        received_at_kill < accepted.len(),
        "the kill came after everything was delivered ({received_at_kill} of {})",
        accepted.len()
    );

    let second = Served::start_with(&database, &flags);
    second.wait_until_listening();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let missing = accepted.difference(&delivered(&receiver)).count();
        if missing == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{missing} accepted events never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    for request in receiver.received().iter().filter(|r| r.replied == 200) {
        *counts
            .entry(request.header("webhook-id").to_owned())
            .or_default() += 1;
    }
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    eprintln!(
        "crash test ({backend:?}): {} accepted, {received_at_kill} delivered before kill -9, \
         all delivered after restart, {duplicates} duplicates",
        accepted.len()
    );
    second.kill();
}

/// More endpoints with pending deliveries than the watchdog walks one by
/// one (256; past that it reads the pending rows instead). After a
/// `kill -9` only the watchdog's poll finds pending work; here the 260
/// lowest config ids hold retries an hour away, and 20 higher ones retries
/// due in seconds, which a walk that stopped at 256 would never reach.
async fn a_restart_finds_due_deliveries_behind_hundreds_of_waiting_endpoints(backend: Backend) {
    const WAITING: usize = 260;
    const DUE: usize = 20;
    let database = TestDatabase::create(backend).await;
    for event_type in ["invoice.waiting", "invoice.due"] {
        stdout_of(&webhookd(
            &database,
            &["event-types", "add", event_type, "--description", "x"],
        ));
    }
    // Asks for its retry an hour from now (the schedule's longest wait).
    let waiting = Receiver::scripted(|_| Reply::RetryAfter(503, 3600));
    // Asks for its retry in 5 s until the restart, then accepts.
    let accepting = Arc::new(AtomicBool::new(false));
    let due = Receiver::scripted({
        let accepting = accepting.clone();
        move |_| match accepting.load(Ordering::SeqCst) {
            true => Reply::Status(200),
            false => Reply::RetryAfter(503, 5),
        }
    });
    let flags = ["--dev", "--retry-schedule", "5s,1h"];
    let first = Served::start_with(&database, &flags);
    let key = first.stdout_line(|line| line.starts_with("whk_"));
    first.wait_until_listening();
    let base = format!("http://127.0.0.1:{}", first.port);
    let client = reqwest::Client::new();
    // `count` endpoints at `<url>/<n>` for `event_type`, and one event of it.
    let subscribe_and_publish = |url: String, count: usize, event_type: &'static str| {
        let (client, base, key) = (client.clone(), base.clone(), key.clone());
        async move {
            let statuses: Vec<u16> = stream::iter(0..count)
                .map(|n| {
                    let request = client
                        .post(format!("{base}/api/v1/webhooks"))
                        .bearer_auth(&key)
                        .json(&json!({"url": format!("{url}/{n}"), "events": [event_type]}));
                    async move { request.send().await.unwrap().status().as_u16() }
                })
                .buffer_unordered(16)
                .collect()
                .await;
            assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
            let published = client
                .post(format!("{base}/api/v1/events"))
                .bearer_auth(&key)
                .json(&json!({"type": event_type, "data": {}}))
                .send()
                .await
                .unwrap();
            assert_eq!(published.status(), 202);
        }
    };
    // The waiting endpoints first: they get the lower config ids. Each
    // endpoint's first attempt arrives (and is refused) before the next.
    subscribe_and_publish(waiting.url.clone(), WAITING, "invoice.waiting").await;
    waiting.wait_for(WAITING, Duration::from_secs(60)).await;
    subscribe_and_publish(due.url.clone(), DUE, "invoice.due").await;
    due.wait_for(DUE, Duration::from_secs(60)).await;
    first.kill();
    accepting.store(true, Ordering::SeqCst);

    let second = Served::start_with(&database, &flags);
    second.wait_until_listening();
    let accepted = || -> HashSet<String> {
        due.received()
            .iter()
            .filter(|r| r.replied == 200)
            .map(|r| r.path.clone())
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while accepted().len() < DUE {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {DUE} due endpoints were sent their delivery after the restart",
            accepted().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second.kill();
}

/// Under steady load to an endpoint that answers every attempt, `kill -9`
/// and a restart: every accepted event arrives, and the only ones sent
/// again are those answered just before the kill — an answer the server
/// had a second to record (`checker::RECORDED_WITHIN`), it recorded.
async fn a_kill_9_sends_again_only_what_was_answered_just_before_it(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let receiver = Receiver::ok();
    let Subscribed {
        server: first,
        key,
        base,
        client,
        webhook: id,
    } = Subscribed::start(&database, &["--dev"], &receiver).await;

    // One publish every 2 ms until the kill; what was answered 202 is
    // accepted (a publish the kill cut off may arrive too, or not).
    let accepted = Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let load = actix_web::rt::spawn({
        let (accepted, stop) = (accepted.clone(), stop.clone());
        let (client, key) = (client.clone(), key.clone());
        async move {
            let mut tick = tokio::time::interval(Duration::from_millis(2));
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                n += 1;
                let Ok(response) = client
                    .post(format!("{base}/api/v1/events"))
                    .bearer_auth(&key)
                    .json(&json!({"type": "invoice.paid", "data": {"n": n}}))
                    .send()
                    .await
                else {
                    continue;
                };
                if response.status() == 202 {
                    let body: Value = response.json().await.unwrap_or_default();
                    if let Some(id) = body["data"]["id"].as_str() {
                        accepted.lock().unwrap().push(id.to_owned());
                    }
                }
            }
        }
    });
    // Seconds of deliveries before the kill, so that most were answered
    // long before it.
    receiver.wait_for(1000, Duration::from_secs(60)).await;
    let killed_at = std::time::Instant::now();
    first.kill();
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let accepted: HashSet<String> = accepted.lock().unwrap().iter().cloned().collect();

    // Until every accepted event arrived and nothing is pending: what the
    // kill left unrecorded has been sent again.
    let second = Served::start_with(&database, &["--dev"]);
    second.wait_until_listening();
    let pending = format!(
        "http://127.0.0.1:{}/api/v1/webhooks/{id}/deliveries?status=pending&per_page=1",
        second.port
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let missing = accepted.difference(&delivered(&receiver)).count();
        let listed: Value = client
            .get(&pending)
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let still_pending = listed["data"].as_array().map(Vec::len);
        if missing == 0 && still_pending == Some(0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{missing} accepted events never arrived; pending: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stale = receiver.repeats_of_answers_before(killed_at - RECORDED_WITHIN);
    let answered_2xx = receiver
        .received()
        .iter()
        .filter(|r| (200..300).contains(&r.replied))
        .count();
    let repeats = answered_2xx - delivered(&receiver).len();
    eprintln!(
        "kill -9 under load ({backend:?}): {} accepted, {repeats} sent again, {stale} of them \
         answered more than {RECORDED_WITHIN:?} before the kill",
        accepted.len()
    );
    assert_eq!(
        stale, 0,
        "deliveries answered long before the kill were sent again"
    );
    second.kill();
}

on_both_backends!(
    every_accepted_event_arrives_after_a_kill_9,
    a_kill_9_sends_again_only_what_was_answered_just_before_it,
    a_restart_finds_due_deliveries_behind_hundreds_of_waiting_endpoints
);
