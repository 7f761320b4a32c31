//! `kill -9` in the middle of deliveries loses no accepted event.
use crate::cli::{stdout_of, webhookd, Served};
use crate::helpers::{Backend, TestDatabase};
use crate::on_both_backends;
use crate::receiver::Receiver;
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
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

async fn every_accepted_event_arrives_after_a_kill_9(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    stdout_of(&webhookd(
        &database,
        &["event-types", "add", "invoice.paid", "--description", "x"],
    ));
    // Every event's first attempt is refused, so retries are pending when
    // the kill comes; none can run out of retries.
    let receiver = Receiver::refusing_first_attempts();
    // Refused first attempts wait 2 s for their retry: whatever was published
    // in the last 2 s before the kill is still pending then.
    let flags = ["--dev", "--retry-schedule", "2s"];
    let first = Served::start_with(&database, &flags);
    let key = first.stdout_line(|line| line.starts_with("whk_"));
    first.wait_until_listening();
    let base = format!("http://127.0.0.1:{}", first.port);
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
    assert!(created["data"]["id"].is_i64(), "{created}");

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

on_both_backends!(every_accepted_event_arrives_after_a_kill_9);
