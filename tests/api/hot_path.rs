//! The publish and delivery hot path batches its writes (group commit) and
//! keeps routes, keys, config rows, list pages and totals in memory. These tests hold it to the
//! same answers as one transaction per request and no caches.
use crate::helpers::{status_and_json, webhook_body, Backend, TestApp};
use crate::on_both_backends;
use crate::receiver::{Receiver, Reply};
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

async fn subscribe(app: &TestApp, url: &str, events: Value, extra: Value) -> i64 {
    app.subscribe(url, events, extra).await["id"]
        .as_i64()
        .unwrap()
}

async fn publish_raw(app: &TestApp, body: Value) -> (StatusCode, Value) {
    let response = app
        .request(Method::POST, "/api/v1/events")
        .json(&body)
        .send()
        .await
        .unwrap();
    status_and_json(response).await
}

/// Publishes sharing one idempotency key land in the same batches as
/// others: one event is stored, every duplicate names it, nothing is lost.
async fn concurrent_publishes_of_one_id_store_one_event(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    app.add_event_type("invoice.paid").await;
    let receiver = Receiver::ok();
    subscribe(&app, &receiver.url, json!(["invoice.paid"]), json!({})).await;

    let shared = (0..20).map(|_| {
        publish_raw(
            &app,
            json!({"type": "invoice.paid", "id": "order-1", "data": {}}),
        )
    });
    let distinct = (0..20).map(|n| {
        publish_raw(
            &app,
            json!({"type": "invoice.paid", "id": format!("other-{n}"), "data": {}}),
        )
    });
    let (shared, distinct) = futures_util::join!(join_all(shared), join_all(distinct));

    let accepted: Vec<&Value> = shared
        .iter()
        .filter(|(status, _)| *status == StatusCode::ACCEPTED)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(
        accepted.len(),
        1,
        "exactly one publish of order-1 stores it"
    );
    let stored_id = &accepted[0]["data"]["id"];
    for (status, body) in &shared {
        assert!(
            *status == StatusCode::ACCEPTED || *status == StatusCode::OK,
            "{body}"
        );
        assert_eq!(
            &body["data"]["id"], stored_id,
            "every duplicate names the stored event"
        );
        assert_eq!(body["data"]["deliveries"], 1);
    }
    for (status, body) in &distinct {
        assert_eq!(*status, StatusCode::ACCEPTED, "{body}");
    }

    // 21 distinct events, each delivered once (and only those).
    let received = receiver.wait_for(21, WAIT).await;
    let ids: HashSet<&str> = received.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), 21);
    assert!(ids.contains(stored_id.as_str().unwrap()));
    // The next publish is the 22nd delivery, and it is the new event's.
    let next = app.publish("invoice.paid", json!({})).await;
    let received = receiver.wait_for(22, WAIT).await;
    assert_eq!(received.len(), 22);
    assert_eq!(
        received[21].header("webhook-id"),
        next["id"].as_str().unwrap(),
        "the 22nd delivery carries the new event's id"
    );
}

/// Routes are cached between publishes; every config change must show in
/// the very next publish.
async fn routing_follows_config_changes_at_once(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    app.add_event_type("invoice.paid").await;
    app.add_event_type("invoice.lost").await;
    let receiver = Receiver::ok();
    let deliveries = |published: Value| published["deliveries"].as_i64().unwrap();

    assert_eq!(deliveries(app.publish("invoice.paid", json!({})).await), 0);
    let first = subscribe(&app, &receiver.url, json!(["invoice.paid"]), json!({})).await;
    assert_eq!(deliveries(app.publish("invoice.paid", json!({})).await), 1);
    let second = subscribe(&app, &receiver.url, json!(["*"]), json!({})).await;
    assert_eq!(deliveries(app.publish("invoice.paid", json!({})).await), 2);

    app.patch_webhook(first, json!({"events": ["invoice.lost"]}))
        .await;
    assert_eq!(deliveries(app.publish("invoice.paid", json!({})).await), 1);
    assert_eq!(deliveries(app.publish("invoice.lost", json!({})).await), 2);

    app.patch_webhook(second, json!({"is_active": false})).await;
    assert_eq!(deliveries(app.publish("invoice.lost", json!({})).await), 1);

    app.delete_webhook(first).await;
    assert_eq!(deliveries(app.publish("invoice.lost", json!({})).await), 0);
}

/// The list's total is cached until a config changes.
async fn list_totals_follow_creates_and_deletes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let total = || async {
        let response = app
            .request(Method::GET, "/api/v1/webhooks?per_page=1")
            .send()
            .await
            .unwrap();
        let (status, body) = status_and_json(response).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["meta"]["total"].as_i64().unwrap()
    };
    assert_eq!(total().await, 0);
    let mut ids = Vec::new();
    for n in 0..3 {
        let created = app
            .create_webhook(webhook_body(&format!("https://example.com/h{n}")))
            .await;
        ids.push(created["id"].as_i64().unwrap());
        assert_eq!(total().await, n + 1);
    }
    app.delete_webhook(ids[1]).await;
    assert_eq!(total().await, 2);
}

/// Attempts recorded in one batch still count one by one: the failure count
/// equals the failed attempts, and a success resets it.
async fn batched_attempts_keep_exact_statistics(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |settings| {
        settings.delivery.disable_after_failures = 1_000;
    })
    .await;
    app.add_event_type("invoice.paid").await;
    let failing = Receiver::scripted(|_| Reply::Status(500));
    let id = subscribe(
        &app,
        &failing.url,
        json!(["invoice.paid"]),
        json!({"retry_count": 0}),
    )
    .await;
    join_all((0..30).map(|_| app.publish("invoice.paid", json!({})))).await;
    failing.wait_for(30, WAIT).await;
    let done = app
        .deliveries_until(id, WAIT, |d| {
            d.len() == 30 && d.iter().all(|d| d["status"] == "failed")
        })
        .await;
    assert_eq!(done.len(), 30);
    let config = app.webhook(id).await;
    assert_eq!(config["failure_count"], 30, "{config}");
    assert!(config["last_failure_at"].is_string());
    assert!(config["last_success_at"].is_null());
    assert!(done
        .iter()
        .all(|d| d["attempts"] == 1 && d["attempt_log"].as_array().unwrap().len() == 1));
}

/// A publish right after a URL change goes to the new URL: the endpoint
/// actor must not send with the config it is still re-reading. The race
/// (the `Deliver` overtaking the reload) showed once in a loaded CI run, not
/// on a quiet machine; twenty alternating rounds give it twenty chances.
/// With both cores loaded it also caught the reload's list of pending rows,
/// read just before the previous delivery's record committed, sending that
/// delivery again to the new URL (1 run in 6, before the actor remembered
/// what finished while it was reading).
async fn the_first_publish_after_a_url_change_goes_to_the_new_url(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    app.add_event_type("invoice.paid").await;
    let receivers = [Receiver::ok(), Receiver::ok()];
    let id = subscribe(
        &app,
        &receivers[0].url,
        json!(["invoice.paid"]),
        json!({"retry_count": 0}),
    )
    .await;
    for round in 0..20 {
        let target = &receivers[round % 2];
        app.patch_webhook(id, json!({"url": target.url})).await;
        let published = app.publish("invoice.paid", json!({"round": round})).await;
        let arrived = target.wait_for(round / 2 + 1, WAIT).await;
        assert_eq!(
            arrived.last().unwrap().header("webhook-id"),
            published["id"].as_str().unwrap(),
            "round {round}"
        );
    }
    assert_eq!(receivers[0].received().len(), 10);
    assert_eq!(receivers[1].received().len(), 10);
}

/// The v1 API answers rows and list pages from memory: every change must
/// show in the very next read (config commands), or as soon as the attempt
/// that moved the statistics is recorded (delivery).
async fn cached_reads_follow_every_change(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    app.add_event_type("invoice.paid").await;
    let receiver = Receiver::ok();
    let id = subscribe(&app, &receiver.url, json!(["invoice.paid"]), json!({})).await;
    let listed = |app: &TestApp| {
        let request = app.request(Method::GET, "/api/v1/webhooks?per_page=25");
        async move {
            let (status, body) = status_and_json(request.send().await.unwrap()).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["data"].as_array().unwrap().clone()
        }
    };
    // Read twice: the second answer comes from memory.
    for _ in 0..2 {
        assert!(app.webhook(id).await["last_success_at"].is_null());
        assert!(listed(&app).await[0]["last_success_at"].is_null());
    }

    app.publish("invoice.paid", json!({})).await;
    receiver.wait_for(1, WAIT).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let shown = app.webhook(id).await["last_success_at"].is_string();
        let listed_shown = listed(&app).await[0]["last_success_at"].is_string();
        if shown && listed_shown {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the recorded attempt never showed: show {shown}, list {listed_shown}"
        );
        tokio::task::yield_now().await;
    }

    app.patch_webhook(id, json!({"name": "renamed"})).await;
    assert_eq!(app.webhook(id).await["name"], "renamed");
    assert_eq!(listed(&app).await[0]["name"], "renamed");

    app.delete_webhook(id).await;
    let gone = app
        .request(Method::GET, &format!("/api/v1/webhooks/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    assert!(listed(&app).await.is_empty());
}

/// The writers are ready before the first publish (`DeliveryStore::warm_up`):
/// every connection of their pool is open when the server starts — a pool
/// that connects lazily has none until the first batches, which then pay
/// for connecting and planning (the first delivery at 1 000 events/s took
/// 21–25 ms) — and readying them wrote nothing.
#[actix_web::test]
async fn the_writers_are_connected_before_the_first_publish() {
    let app = TestApp::spawn_for_delivery(Backend::Postgres, |_| {}).await;
    let pool = app.postgres_pool();
    let writers: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name LIKE '%:writers'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        writers,
        projections::deliveries::POSTGRES_WRITER_CONNECTIONS as i64
    );
    let written: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM published_events), (SELECT COUNT(*) FROM deliveries), \
         (SELECT COUNT(*) FROM delivery_attempts)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(written, (0, 0, 0));
}

/// The writers keep their connections between batches (no test of each
/// on its way back to the pool): one the server ended fails at most the
/// batch that finds out, and is not kept — publishing goes on on fresh
/// connections, and everything accepted is delivered.
#[actix_web::test]
async fn the_writers_leave_a_connection_the_server_ended() {
    let app = TestApp::spawn_for_delivery(Backend::Postgres, |_| {}).await;
    let pool = app.postgres_pool();
    app.add_event_type("invoice.paid").await;
    let receiver = Receiver::ok();
    subscribe(&app, &receiver.url, json!(["invoice.paid"]), json!({})).await;
    app.publish("invoice.paid", json!({"n": 0})).await;
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name LIKE '%:writers'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let writers = projections::deliveries::POSTGRES_WRITER_CONNECTIONS;
    assert_eq!(ended.len(), writers, "every writer connection ended");
    // One at a time, so that each batch takes the connection the last one
    // left: a writer that kept a broken one would fail every publish.
    let mut answers = Vec::new();
    for n in 1..=30 {
        let (status, _) =
            publish_raw(&app, json!({"type": "invoice.paid", "data": {"n": n}})).await;
        answers.push(status);
    }
    let refused = answers
        .iter()
        .filter(|status| **status != StatusCode::ACCEPTED)
        .count();
    assert!(
        refused <= writers,
        "{refused} publishes refused after {writers} connections ended: {answers:?}"
    );
    assert!(
        answers[writers..]
            .iter()
            .all(|status| *status == StatusCode::ACCEPTED),
        "publishing did not recover: {answers:?}"
    );
    receiver.wait_for(1 + 30 - refused, WAIT).await;
}

/// The cluster bus keeps its sending connection between rounds, and so
/// does not keep one the server ended: the round that finds out fails
/// (the others' polls make up for it), and a later round connects again.
#[actix_web::test]
async fn the_bus_leaves_a_connection_the_server_ended() {
    let app = TestApp::spawn_for_delivery(Backend::Postgres, |_| {}).await;
    let pool = app.postgres_pool();
    app.add_event_type("invoice.paid").await;
    let receiver = Receiver::ok();
    let first = until_a_bus_session(&app, pool, &receiver.url, None).await;
    let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(first)
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(ended);
    until_a_bus_session(&app, pool, &receiver.url, Some(first)).await;
}

/// Subscribes endpoints (each a config change, and each change a round of
/// the bus) until the bus has a session other than `other_than`; its pid.
async fn until_a_bus_session(
    app: &TestApp,
    pool: &sqlx::PgPool,
    url: &str,
    other_than: Option<i32>,
) -> i32 {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        subscribe(app, url, json!(["invoice.paid"]), json!({})).await;
        let sessions: Vec<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name LIKE '%:bus'",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        let new: Vec<i32> = sessions
            .iter()
            .copied()
            .filter(|pid| Some(*pid) != other_than)
            .collect();
        if let [pid] = new[..] {
            return pid;
        }
        assert!(new.is_empty(), "one sending connection, kept: {sessions:?}");
        assert!(
            std::time::Instant::now() < deadline,
            "no bus connection besides {other_than:?}: {sessions:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The store hands each publish's new deliveries over (in the service: to
/// the endpoint actors) before it answers the publisher, each delivery
/// once, and a duplicate's none: the hand-over happens on the writer's
/// side of the commit, not in the publisher after its answer.
async fn committed_deliveries_are_handed_over_before_the_answer(backend: Backend) {
    use aggregates::values::ConfigId;
    use projections::deliveries::{
        event_data_of, DeliveryKind, DeliveryStore, NewEvent, StoreHooks, Target, OUTCOME_LINGER,
    };
    use std::sync::{Arc, Mutex};
    let app = TestApp::spawn(backend).await;
    let store = DeliveryStore::new(
        app.db.clone(),
        app.db.clone(),
        StoreHooks {
            stats_moved: Arc::new(|_| {}),
            commit_waited: |_, _| {},
            outcome_linger: OUTCOME_LINGER,
        },
    );
    let handed: Arc<Mutex<Vec<i64>>> = Arc::default();
    let into = handed.clone();
    store.hand_over_to(Box::new(move |deliveries| {
        into.lock().unwrap().extend(deliveries.iter().map(|d| d.id));
    }));
    let targets = || {
        [7001, 7002]
            .map(|id| Target {
                config_id: ConfigId::new(id),
                fifo: false,
            })
            .to_vec()
    };
    // 40 publishes of 20 keys: 20 events of two deliveries, 20 duplicates.
    let publishes = (0..40).map(|n| {
        let (store, handed) = (store.clone(), handed.clone());
        let new = NewEvent {
            organisation: 1,
            idempotency_key: Some(format!("key-{}", n % 20)),
            event_type: "invoice.paid".to_owned(),
            data: event_data_of(&json!({ "n": n })),
            key_id: None,
            kind: DeliveryKind::Event,
            task_id: None,
            targets: targets(),
        };
        async move {
            let published = store.publish(new).await.expect("committed");
            let ids: Vec<i64> = published.deliveries.iter().map(|d| d.id).collect();
            let seen = handed.lock().unwrap().clone();
            assert!(
                ids.iter().all(|id| seen.contains(id)),
                "answered before its deliveries {ids:?} were handed over"
            );
            (published.duplicate, ids)
        }
    });
    let answers = join_all(publishes).await;
    let duplicates: Vec<&Vec<i64>> = answers
        .iter()
        .filter(|(duplicate, _)| *duplicate)
        .map(|(_, ids)| ids)
        .collect();
    assert_eq!(duplicates.len(), 20, "one event per key");
    assert!(duplicates.iter().all(|ids| ids.is_empty()));
    let mut new: Vec<i64> = answers
        .iter()
        .filter(|(duplicate, _)| !duplicate)
        .flat_map(|(_, ids)| ids.iter().copied())
        .collect();
    new.sort_unstable();
    let mut handed = handed.lock().unwrap().clone();
    handed.sort_unstable();
    assert_eq!(new.len(), 40, "two deliveries per event");
    assert_eq!(handed, new, "every new delivery handed over, once");
}

on_both_backends!(
    committed_deliveries_are_handed_over_before_the_answer,
    cached_reads_follow_every_change,
    the_first_publish_after_a_url_change_goes_to_the_new_url,
    concurrent_publishes_of_one_id_store_one_event,
    routing_follows_config_changes_at_once,
    list_totals_follow_creates_and_deletes,
    batched_attempts_keep_exact_statistics,
);

/// An outcome is recorded only under the lease it was attempted under: a
/// fence whose epoch the partition no longer has (its endpoint moved to
/// another node meanwhile) leaves the delivery pending, for the new owner;
/// the current epoch records it. (The fault scenarios show the fence's
/// effect — no overlaps after a paused owner wakes — this shows the
/// statement's.)
#[actix_web::test]
async fn an_outcome_under_a_lost_lease_leaves_its_delivery_pending() {
    use projections::deliveries::{
        AttemptRecord, DeliveryStore, Fence, NextStep, StoreHooks, OUTCOME_LINGER,
    };
    let app = TestApp::spawn_for_delivery(Backend::Postgres, |_| {}).await;
    // An attempt that never answers: the delivery stays pending meanwhile.
    let receiver = Receiver::scripted(|_| Reply::Hang);
    app.add_event_type("invoice.paid").await;
    let config = app
        .subscribe(&receiver.url, json!(["invoice.paid"]), json!({}))
        .await;
    let config_id = config["id"].as_i64().unwrap();
    app.publish("invoice.paid", json!({})).await;
    receiver.wait_for(1, Duration::from_secs(20)).await;
    let pool = app.postgres_pool();
    let (delivery_id,): (i64,) = sqlx::query_as("SELECT id FROM deliveries")
        .fetch_one(pool)
        .await
        .unwrap();
    let partition = webhookd::cluster::ownership::partition_of(config_id) as i32;
    let (epoch,): (i64,) =
        sqlx::query_as("SELECT epoch FROM partition_leases WHERE partition = $1")
            .bind(partition)
            .fetch_one(pool)
            .await
            .unwrap();
    let store = DeliveryStore::new(
        app.db.clone(),
        app.db.clone(),
        StoreHooks {
            stats_moved: std::sync::Arc::new(|_| {}),
            commit_waited: |_, _| {},
            outcome_linger: OUTCOME_LINGER,
        },
    );
    let delivery = store
        .pending_by_ids(&[delivery_id])
        .await
        .unwrap()
        .remove(0);
    let attempt = AttemptRecord {
        attempted_at: projections::db::now_micros(),
        duration_ms: 1,
        status_code: Some(200),
        response_body: None,
        error: None,
        success: true,
    };
    let status = || async {
        let (status,): (String,) = sqlx::query_as("SELECT status FROM deliveries WHERE id = $1")
            .bind(delivery_id)
            .fetch_one(pool)
            .await
            .unwrap();
        status
    };
    let lost = Fence {
        partition,
        epoch: epoch + 1,
    };
    store
        .record_attempt(&delivery, &attempt, NextStep::Succeeded, Some(lost))
        .await
        .unwrap();
    assert_eq!(status().await, "pending", "recorded under a lease it lost");
    let held = Fence { partition, epoch };
    store
        .record_attempt(&delivery, &attempt, NextStep::Succeeded, Some(held))
        .await
        .unwrap();
    assert_ne!(status().await, "pending", "not recorded under its lease");
}
