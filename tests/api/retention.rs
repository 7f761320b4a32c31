//! Retention: ended deliveries older than `--retention`, their attempts and
//! their events go; pending ones, newer ones and the event log stay.
use crate::cli::webhookd;
use crate::faults::harness::{faketime, skew_in_effect};
use crate::helpers::{status_and_json, Backend, TestApp};
use crate::on_both_backends;
use crate::receiver::Receiver;
use projections::deliveries::retention::{run_pass, Deleted};
use reqwest::Method;
use serde_json::json;
use std::process::Command;
use std::time::Duration;

const HOUR_MICROS: i64 = 3_600_000_000;

async fn old_ended_deliveries_go_and_the_rest_stays(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    app.add_event_type("invoice.paid").await;
    let receiver = Receiver::ok();
    let created = app
        .subscribe(&receiver.url, json!(["invoice.paid"]), json!({}))
        .await;
    let id = created["id"].as_i64().unwrap();
    let mut events = Vec::new();
    for n in 0..6 {
        events.push(app.publish("invoice.paid", json!({ "n": n })).await);
    }
    receiver.wait_for(6, Duration::from_secs(20)).await;
    // Recorded: every delivery has ended.
    app.deliveries_until(id, Duration::from_secs(20), |all| {
        all.len() == 6 && all.iter().all(|d| d["status"] == "succeeded")
    })
    .await;
    // Four events become two hours old; one of them is still pending.
    let old: Vec<String> = events[..4]
        .iter()
        .map(|e| format!("'{}'", e["id"].as_str().unwrap()))
        .collect();
    let old = old.join(",");
    app.execute_sql(&format!(
        "UPDATE published_events SET published_at = published_at - {HOUR_MICROS} * 2 \
         WHERE id IN ({old})"
    ))
    .await;
    app.execute_sql(&format!(
        "UPDATE deliveries SET created_at = created_at - {HOUR_MICROS} * 2, \
         updated_at = updated_at - {HOUR_MICROS} * 2 WHERE event_id IN ({old})"
    ))
    .await;
    let pending_event = events[0]["id"].as_str().unwrap();
    app.execute_sql(&format!(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = {} \
         WHERE event_id = '{pending_event}'",
        i64::MAX / 2
    ))
    .await;

    let deleted = run_pass(&app.db, Duration::from_secs(3600)).await.unwrap();
    assert_eq!(
        deleted,
        Deleted {
            deliveries: 3,
            attempts: 3,
            events: 3
        }
    );
    let left = app.deliveries(id).await;
    let left_events: Vec<&str> = left
        .iter()
        .map(|d| d["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(left.len(), 3, "{left_events:?}");
    assert!(
        left_events.contains(&pending_event),
        "the pending one stays"
    );
    for newer in &events[4..] {
        assert!(left_events.contains(&newer["id"].as_str().unwrap()));
    }
    // Nothing more to do; the event log is untouched.
    assert_eq!(
        run_pass(&app.db, Duration::from_secs(3600)).await.unwrap(),
        Deleted::default()
    );
    let history = app
        .request(Method::GET, &format!("/api/v1/webhooks/{id}/history"))
        .send()
        .await
        .unwrap();
    let (_, history) = status_and_json(history).await;
    assert_eq!(history["data"][0]["event_type"], "Created");

    // The same by hand: `webhookd retention run` says what it deleted.
    let output = webhookd(&app.database, &["retention", "run", "--retention", "1m"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("deleted 0 deliveries, 0 attempts and 0 published events older than 1m"),
        "{stdout}"
    );

    // A machine whose clock is two hours ahead (libfaketime) runs the same
    // pass: on PostgreSQL the cutoff is the database's clock, so the three
    // ended deliveries seconds old stay. (SQLite has one machine and one
    // clock.)
    if backend == Backend::Postgres {
        // The fault harness's libfaketime environment, checked to be in
        // effect (without it this would prove nothing).
        let two_hours_ahead = faketime("+2h");
        skew_in_effect(&two_hours_ahead, 7200).expect("apt-get install faketime");
        let output = Command::new(env!("CARGO_BIN_EXE_webhookd"))
            .args(["retention", "run", "--retention", "1m"])
            .env("DATABASE_URL", &app.database.url)
            .env("RUST_LOG", "warn")
            .envs(two_hours_ahead)
            .output()
            .expect("webhookd runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}");
        assert!(
            stdout.contains("deleted 0 deliveries, 0 attempts and 0 published events"),
            "{stdout}"
        );
        assert_eq!(app.deliveries(id).await.len(), 3);
    }
}

async fn a_retention_under_a_minute_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let output = webhookd(&app.database, &["retention", "run", "--retention", "5s"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("at least 1m"));
}

/// A pass deletes old events while the delivery table is large (the recent
/// deliveries a long retention keeps): publishes go on being answered
/// meanwhile. On SQLite, whose one write lock the pass's deletes hold, a
/// foreign key from `deliveries` to the events made each deleted event a
/// scan of the whole table, and the publishes queued past their deadline
/// (503) for as long as a batch took.
async fn a_pass_over_a_large_table_keeps_publishes_answered(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    app.add_event_type("invoice.paid").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let old = now - 2 * HOUR_MICROS;
    // 600 old events with no delivery left (more than one batch of 500),
    // and 100 000 recent ended deliveries of one recent event.
    app.execute_sql(&format!(
        "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 600) \
         INSERT INTO published_events (id, organisation, event_type, data, published_at) \
         SELECT 'old-' || i, 1, 'invoice.paid', '{{}}', {old} FROM n"
    ))
    .await;
    app.execute_sql(&format!(
        "INSERT INTO published_events (id, organisation, event_type, data, published_at) \
         VALUES ('recent', 1, 'invoice.paid', '{{}}', {now})"
    ))
    .await;
    app.execute_sql(&format!(
        "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) \
         INSERT INTO deliveries (event_id, config_id, organisation, kind, status, attempts, \
             next_attempt_at, created_at, updated_at) \
         SELECT 'recent', 999999, 1, 'event', 'succeeded', 1, {now}, {now}, {now} FROM n"
    ))
    .await;

    let pass = tokio::spawn({
        let db = app.db.clone();
        async move { run_pass(&db, Duration::from_secs(3600)).await }
    });
    // Publishes one after the other until the pass is done (at least one).
    let mut answered = 0;
    loop {
        let response = app
            .request(Method::POST, "/api/v1/events")
            .json(&json!({ "type": "invoice.paid", "data": { "n": answered } }))
            .send()
            .await
            .expect("request");
        let (status, body) = status_and_json(response).await;
        assert_eq!(
            status,
            reqwest::StatusCode::ACCEPTED,
            "publish {answered} during a retention pass: {body}"
        );
        answered += 1;
        if pass.is_finished() {
            break;
        }
    }
    let deleted = pass.await.unwrap().unwrap();
    assert_eq!(deleted.events, 600, "{deleted:?}");
    assert_eq!(deleted.deliveries, 0, "{deleted:?}");
}

on_both_backends!(
    old_ended_deliveries_go_and_the_rest_stays,
    a_retention_under_a_minute_is_refused,
    a_pass_over_a_large_table_keeps_publishes_answered,
);
