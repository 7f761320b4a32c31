//! The delivery store's two backends write the same rows. One sequence —
//! publishes (one of them twice) to a plain endpoint, a FIFO endpoint and
//! one that refuses every attempt (retried, then failed), then a recovery
//! of the failed ones to a receiver that now answers — runs on SQLite and
//! on PostgreSQL; their delivery rows, attempt rows and statistics, with
//! database ids and times left out, must be equal. The writers are
//! separate code per backend (one statement over arrays on PostgreSQL,
//! FIFO places assigned in SQL on one and in Rust on the other): this is
//! what holds them to one behaviour.
use crate::helpers::{status_and_json, Backend, TestApp};
use crate::receiver::{Receiver, Reply};
use projections::Db;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const EVENTS: usize = 12;
const WAIT: Duration = Duration::from_secs(30);

/// A delivery row without its ids and times: endpoint (by name), event (by
/// the publisher's id),
/// kind, status, attempts, its FIFO place, last status code, whether a
/// recovery sent it again.
type DeliveryRow = (
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    bool,
);
/// An attempt row: endpoint, event (by the publisher's id), status code,
/// success.
type AttemptRow = (String, String, Option<i64>, bool);
/// A config's statistics: name, failures in a row, ever succeeded, ever failed.
type StatsRow = (String, i64, bool, bool);

async fn rows(db: &Db) -> (Vec<DeliveryRow>, Vec<AttemptRow>, Vec<StatsRow>) {
    // Events by the publisher's id (`evt-07`): their own ids are UUIDs.
    let deliveries = "SELECT c.name, e.idempotency_key, d.kind, d.status, d.attempts, \
        d.fifo_seq, d.last_status_code, d.recovered_by IS NOT NULL \
        FROM deliveries d JOIN webhook_configs c ON c.id = d.config_id \
        JOIN published_events e ON e.id = d.event_id \
        ORDER BY c.name, e.idempotency_key, d.id";
    let attempts = "SELECT c.name, e.idempotency_key, a.status_code, a.success \
        FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id \
        JOIN webhook_configs c ON c.id = d.config_id \
        JOIN published_events e ON e.id = d.event_id \
        ORDER BY c.name, e.idempotency_key, a.id";
    let stats = "SELECT name, failure_count, last_success_at IS NOT NULL, \
        last_failure_at IS NOT NULL FROM webhook_configs ORDER BY name";
    match db {
        Db::Sqlite(pool) => (
            sqlx::query_as(deliveries).fetch_all(pool).await.unwrap(),
            sqlx::query_as(attempts).fetch_all(pool).await.unwrap(),
            sqlx::query_as(stats).fetch_all(pool).await.unwrap(),
        ),
        Db::Postgres(pool) => (
            sqlx::query_as(deliveries).fetch_all(pool).await.unwrap(),
            sqlx::query_as(attempts).fetch_all(pool).await.unwrap(),
            sqlx::query_as(stats).fetch_all(pool).await.unwrap(),
        ),
    }
}

async fn the_sequence(backend: Backend) -> (Vec<DeliveryRow>, Vec<AttemptRow>, Vec<StatsRow>) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    app.add_event_type("invoice.paid").await;
    let plain = Receiver::ok();
    let fifo = Receiver::ok();
    let answering = Arc::new(AtomicBool::new(false));
    let refusing = {
        let answering = answering.clone();
        Receiver::scripted(move |_| {
            if answering.load(Ordering::SeqCst) {
                Reply::Status(200)
            } else {
                Reply::Status(500)
            }
        })
    };
    let events = json!(["invoice.paid"]);
    let mut ids = Vec::new();
    for (name, url, extra) in [
        ("a-plain", &plain.url, json!({})),
        ("b-fifo", &fifo.url, json!({"ordering": "fifo"})),
        ("c-refusing", &refusing.url, json!({"retry_count": 1})),
    ] {
        let mut extra = extra;
        extra["name"] = json!(name);
        let created = app.subscribe(url, events.clone(), extra).await;
        ids.push(created["id"].as_i64().unwrap());
    }
    let publish = |n: usize| {
        app.request(Method::POST, "/api/v1/events")
            .json(&json!({"type": "invoice.paid", "id": format!("evt-{n:02}"), "data": {"n": n}}))
            .send()
    };
    for n in 0..EVENTS {
        let (status, body) = status_and_json(publish(n).await.unwrap()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    // The same id again: a duplicate, no new delivery.
    let (status, body) = status_and_json(publish(3).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ended = |all: &[serde_json::Value]| {
        all.len() == EVENTS && all.iter().all(|d| d["status"] != "pending")
    };
    for id in &ids {
        app.deliveries_until(*id, WAIT, ended).await;
    }
    // The refusing endpoint answers now: its failed deliveries recovered.
    answering.store(true, Ordering::SeqCst);
    let response = app
        .request(
            Method::POST,
            &format!("/api/v1/webhooks/{}/recover", ids[2]),
        )
        .json(&json!({"since": (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339()}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert!(status.is_success(), "{body}");
    app.deliveries_until(ids[2], WAIT, |all| {
        all.iter().filter(|d| d["status"] == "succeeded").count() == EVENTS
    })
    .await;
    rows(&app.db).await
}

#[actix_web::test]
async fn both_backends_write_the_same_rows_for_the_same_sequence() {
    let sqlite = the_sequence(Backend::Sqlite).await;
    let postgres = the_sequence(Backend::Postgres).await;
    // Something happened: every kind of row is there.
    assert!(sqlite.0.len() >= 3 * EVENTS, "{:#?}", sqlite.0);
    assert!(sqlite.1.iter().any(|a| !a.3) && sqlite.1.iter().any(|a| a.3));
    assert!(sqlite.0.iter().any(|d| d.5.is_some()), "FIFO places");
    assert_eq!(sqlite.0, postgres.0, "deliveries");
    assert_eq!(sqlite.1, postgres.1, "attempts");
    assert_eq!(sqlite.2, postgres.2, "statistics");
}
