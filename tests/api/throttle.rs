//! `rate_limit`: an endpoint never receives more deliveries per second
//! than its limit, gets every one of them in the end, and does not slow
//! down another endpoint.
use crate::helpers::{status_and_json, Backend, TestApp};
use crate::on_both_backends;
use crate::receiver::{Receiver, Reply};
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

/// The largest number of arrivals in any one-second window.
pub fn busiest_second(mut arrivals: Vec<Instant>) -> usize {
    arrivals.sort();
    (0..arrivals.len())
        .map(|i| {
            arrivals[i..]
                .iter()
                .take_while(|t| **t < arrivals[i] + Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0)
}

async fn a_rate_limited_endpoint_gets_everything_at_its_rate(backend: Backend) {
    // `WEBHOOKD_THROTTLE_EVENTS=1000` for the measurement; the
    // suite sends 300 (six seconds at 50 per second).
    let events: usize = std::env::var("WEBHOOKD_THROTTLE_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    app.add_event_type("load.burst").await;
    app.add_event_type("load.other").await;
    let limited = Receiver::ok();
    let other = Receiver::ok();
    let created = app
        .subscribe(
            &limited.url,
            json!(["load.burst"]),
            json!({"rate_limit": 50}),
        )
        .await;
    assert_eq!(created["rate_limit"], 50);
    app.subscribe(&other.url, json!(["load.other"]), json!({}))
        .await;

    let started = Instant::now();
    for n in 0..events {
        app.publish("load.burst", json!({ "n": n })).await;
    }
    // While the burst drains, the other endpoint's deliveries go at once.
    let mut latencies = Vec::new();
    for n in 0..10 {
        let sent = Instant::now();
        app.publish("load.other", json!({ "n": n })).await;
        let arrived = other.wait_for(n + 1, Duration::from_secs(10)).await[n].at;
        latencies.push(arrived - sent);
    }
    let slowest = latencies.iter().max().unwrap();
    assert!(
        *slowest < Duration::from_millis(500),
        "another endpoint waited {slowest:?}"
    );

    let received = limited
        .wait_for(events, Duration::from_secs(events as u64 / 50 + 30))
        .await;
    let took = started.elapsed();
    assert_eq!(received.len(), events, "every delivery arrives");
    let busiest = busiest_second(received.iter().map(|r| r.at).collect());
    eprintln!(
        "rate_limit 50: {events} deliveries in {took:?}, busiest second {busiest}, \
         other endpoint slowest {slowest:?}"
    );
    assert!(busiest <= 55, "{busiest} deliveries in one second");
    assert!(
        took >= Duration::from_secs_f64((events as f64 - 1.0) / 50.0 * 0.9),
        "{events} at 50/s took {took:?}"
    );
}

async fn a_rate_limit_is_validated_and_can_be_removed(backend: Backend) {
    let app = TestApp::spawn_dev(backend).await;
    for bad in [json!(0), json!(10_001), json!("fast"), json!(1.5)] {
        let response = app
            .request(Method::POST, "/api/v1/webhooks")
            .json(&json!({"url": "http://127.0.0.1:9/h", "events": ["*"], "rate_limit": bad}))
            .send()
            .await
            .unwrap();
        let (status, body) = status_and_json(response).await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert!(body["errors"]["rate_limit"].is_array(), "{body}");
    }
    let created = app
        .create_webhook(json!({"url": "http://127.0.0.1:9/h", "events": ["*"], "rate_limit": 10}))
        .await;
    let id = created["id"].as_i64().unwrap();
    assert_eq!(
        app.patch_webhook(id, json!({"rate_limit": 20})).await["rate_limit"],
        20
    );
    assert!(app.patch_webhook(id, json!({"rate_limit": null})).await["rate_limit"].is_null());
    assert!(app.webhook(id).await["rate_limit"].is_null());
}

/// A 429 with `Retry-After: 2` holds the whole endpoint back for two
/// seconds: neither the refused delivery's retry nor the next events go
/// before then; then everything arrives.
async fn a_refusing_endpoint_is_held_back_for_its_retry_after(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    app.add_event_type("load.burst").await;
    let receiver = Receiver::scripted(|n| match n {
        0 => Reply::RetryAfter(429, 2),
        _ => Reply::Status(200),
    });
    app.subscribe(&receiver.url, json!(["load.burst"]), json!({}))
        .await;
    app.publish("load.burst", json!({ "n": 0 })).await;
    let refused = receiver.wait_for(1, Duration::from_secs(10)).await[0].at;
    app.publish("load.burst", json!({ "n": 1 })).await;
    app.publish("load.burst", json!({ "n": 2 })).await;
    let received = receiver.wait_for(4, Duration::from_secs(20)).await;
    for later in &received[1..] {
        let after = later.at - refused;
        assert!(
            after >= Duration::from_millis(1_900),
            "a delivery went {after:?} after the 429"
        );
    }
}

on_both_backends!(
    a_rate_limited_endpoint_gets_everything_at_its_rate,
    a_rate_limit_is_validated_and_can_be_removed,
    a_refusing_endpoint_is_held_back_for_its_retry_after,
);
