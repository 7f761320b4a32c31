//! Every signature scheme checked by an implementation that is not ours:
//! `standardwebhooks` (PyPI) for webhook-*, ricloud's `Signature` class for
//! Ricloud-Signature (the plain X-Webhook-Signature is recomputed in
//! `delivery.rs`). Tampered bodies and stale timestamps must fail.
use crate::helpers::{receiver_script, test_python, Backend, TestApp};
use crate::on_both_backends;
use crate::receiver::Receiver;
use aggregates::values::WebhookSecret;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;
use webhookd::delivery::signing::signature_headers;

struct PythonVerifier {
    child: Child,
    lines: BufReader<ChildStdout>,
    url: String,
}

impl PythonVerifier {
    fn start(secret: &str) -> Self {
        let mut child = Command::new(test_python())
            .arg(receiver_script("verify_receiver.py"))
            .arg(secret)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python verifier starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap());
        let first = read_json_line(&mut lines);
        let url = format!("http://127.0.0.1:{}/hooks", first["port"]);
        Self { child, lines, url }
    }

    /// The verifier's verdict on the next request it receives.
    fn next_verdict(&mut self) -> Value {
        read_json_line(&mut self.lines)
    }
}

impl Drop for PythonVerifier {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_json_line(lines: &mut BufReader<ChildStdout>) -> Value {
    let mut line = String::new();
    lines.read_line(&mut line).expect("verifier output");
    serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line:?}"))
}

async fn independent_verifiers_accept_ours_and_reject_tampering(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    app.add_event_type("invoice.paid").await;
    let capture = Receiver::ok();
    let created = app
        .create_webhook(json!({"url": capture.url, "events": ["invoice.paid"], "retry_count": 0}))
        .await;
    let id = created["id"].as_i64().unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let mut verifier = tokio::task::spawn_blocking({
        let secret = secret.clone();
        move || PythonVerifier::start(&secret)
    })
    .await
    .unwrap();

    // 1. A delivery straight from webhookd to the Python receiver.
    app.patch_webhook(id, json!({"url": verifier.url})).await;
    let published = app.publish("invoice.paid", json!({"amount": 1})).await;
    let (verdict, mut verifier) = tokio::task::spawn_blocking(move || {
        let verdict = verifier.next_verdict();
        (verdict, verifier)
    })
    .await
    .unwrap();
    assert_eq!(verdict["webhook_id"], published["id"]);
    assert_eq!(verdict["standard"], true, "{verdict}");
    assert_eq!(verdict["ricloud"], true, "{verdict}");

    // 2. A captured delivery, replayed: as is, tampered, and stale.
    app.patch_webhook(id, json!({"url": capture.url})).await;
    app.publish("invoice.paid", json!({"amount": 2})).await;
    let original = capture.wait_for(1, Duration::from_secs(20)).await.remove(0);
    let headers_of = |received: &crate::receiver::Received| -> Vec<(String, String)> {
        received
            .headers
            .iter()
            .filter(|(k, _)| k.starts_with("webhook-") || k.starts_with("ricloud-"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let signed = headers_of(&original);
    let tampered_body = String::from_utf8(original.body.clone())
        .unwrap()
        .replace("\"amount\":2", "\"amount\":2000");
    assert_ne!(tampered_body.as_bytes(), original.body.as_slice());
    let stale_ts = chrono::Utc::now().timestamp() - 3600;
    let parsed_secret = WebhookSecret::parse(&secret).unwrap();
    let stale: Vec<(String, String)> = signature_headers(
        &parsed_secret,
        &[],
        original.header("webhook-id"),
        stale_ts,
        &original.body,
    )
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let cases = [
        ("as delivered", original.body.clone(), signed.clone(), true),
        ("tampered body", tampered_body.into_bytes(), signed, false),
        ("stale timestamp", original.body.clone(), stale, false),
    ];
    let client = reqwest::Client::new();
    for (case, body, headers, valid) in cases {
        let mut request = client.post(&verifier.url).body(body);
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let status = request.send().await.unwrap().status();
        let (verdict, back) = tokio::task::spawn_blocking(move || {
            let verdict = verifier.next_verdict();
            (verdict, verifier)
        })
        .await
        .unwrap();
        verifier = back;
        assert_eq!(verdict["standard"], valid, "{case}: {verdict}");
        assert_eq!(verdict["ricloud"], valid, "{case}: {verdict}");
        assert_eq!(status.is_success(), valid, "{case}");
    }
}

/// What a verifier holding `secret` says of a captured delivery, replayed
/// to it as it arrived.
async fn verdict_of(secret: &str, received: &crate::receiver::Received) -> Value {
    let mut verifier = tokio::task::spawn_blocking({
        let secret = secret.to_owned();
        move || PythonVerifier::start(&secret)
    })
    .await
    .unwrap();
    let mut request = reqwest::Client::new()
        .post(&verifier.url)
        .body(received.body.clone());
    for (name, value) in &received.headers {
        if name.starts_with("webhook-") || name.starts_with("ricloud-") {
            request = request.header(name.as_str(), value.as_str());
        }
    }
    request.send().await.unwrap();
    tokio::task::spawn_blocking(move || verifier.next_verdict())
        .await
        .unwrap()
}

async fn rotate(app: &TestApp, id: i64, body: Value) -> (reqwest::StatusCode, Value) {
    let response = app
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/webhooks/{id}/rotate-secret"),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    crate::helpers::status_and_json(response).await
}

/// Standard Webhooks rotation: while the replaced secret's overlap lasts,
/// a receiver holding only the old secret and one holding only the new
/// both verify (the ricloud scheme carries the new one only); after it, or
/// with an overlap of 0, only the new one verifies.
async fn a_rotated_secret_keeps_verifying_until_its_overlap_ends(backend: Backend) {
    // The delivery side's clock, moved on by the test instead of waited
    // for when an overlap is to end.
    let offset = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let clock = webhookd::delivery::settings::Clock::offset_by(offset.clone());
    let app =
        TestApp::spawn_for_delivery(backend, |settings| settings.delivery.clock = clock).await;
    app.add_event_type("invoice.paid").await;
    let capture = Receiver::ok();
    let created = app
        .create_webhook(json!({"url": capture.url, "events": ["invoice.paid"]}))
        .await;
    let id = created["id"].as_i64().unwrap();
    let first = created["secret"].as_str().unwrap().to_owned();

    let (status, rotated) = rotate(&app, id, json!({"previous_valid_for": "1h"})).await;
    assert_eq!(status, 200, "{rotated}");
    let second = rotated["data"]["secret"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    app.publish("invoice.paid", json!({"n": 1})).await;
    let delivered = capture.wait_for(1, Duration::from_secs(20)).await.remove(0);
    assert_eq!(delivered.header("webhook-signature").split(' ').count(), 2);
    assert_eq!(
        delivered.header("x-webhook-signature").split(',').count(),
        2
    );
    let old = verdict_of(&first, &delivered).await;
    assert_eq!(old["standard"], true, "the old secret verifies: {old}");
    assert_eq!(
        old["ricloud"], false,
        "ricloud's header is the new secret's: {old}"
    );
    let new = verdict_of(&second, &delivered).await;
    assert_eq!(new["standard"], true, "{new}");
    assert_eq!(new["ricloud"], true, "{new}");

    // A chosen secret, and an overlap that ends.
    let third = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (status, rotated) = rotate(
        &app,
        id,
        json!({"previous_valid_for": "2s", "secret": third}),
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["data"]["secret"], third);
    // Three seconds later, by the delivery side's clock: the 2 s overlap
    // has ended (the first secret's hour has not).
    offset.store(3_000_000, std::sync::atomic::Ordering::Relaxed);
    app.publish("invoice.paid", json!({"n": 2})).await;
    let delivered = capture.wait_for(2, Duration::from_secs(20)).await.remove(1);
    let expired = verdict_of(&second, &delivered).await;
    assert_eq!(expired["standard"], false, "an ended overlap: {expired}");
    let still = verdict_of(&first, &delivered).await;
    assert_eq!(
        still["standard"], true,
        "the first one's hour goes on: {still}"
    );
    let current = verdict_of(third, &delivered).await;
    assert_eq!(current["standard"], true, "{current}");
    assert_eq!(current["ricloud"], true, "{current}");

    // An overlap of 0 ends the replaced secret at once.
    let (status, rotated) = rotate(&app, id, json!({"previous_valid_for": 0})).await;
    assert_eq!(status, 200, "{rotated}");
    let fourth = rotated["data"]["secret"].as_str().unwrap().to_owned();
    app.publish("invoice.paid", json!({"n": 3})).await;
    let delivered = capture.wait_for(3, Duration::from_secs(20)).await.remove(2);
    assert_eq!(verdict_of(third, &delivered).await["standard"], false);
    assert_eq!(verdict_of(&fourth, &delivered).await["standard"], true);

    // Bad bodies name the field; the log records expiries, never a secret.
    for (body, field) in [
        (json!({"previous_valid_for": "8d"}), "previous_valid_for"),
        (json!({"previous_valid_for": "soon"}), "previous_valid_for"),
        (json!({"secret": "hunter2"}), "secret"),
    ] {
        let (status, error) = rotate(&app, id, body).await;
        assert_eq!(status, 422, "{error}");
        assert!(error["errors"][field].is_array(), "{error}");
    }
    let history = app
        .request(
            reqwest::Method::GET,
            &format!("/api/v1/webhooks/{id}/history?per_page=100"),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for secret in [first.as_str(), second.as_str(), third, fourth.as_str()] {
        assert!(!history.contains(secret), "a secret in the history");
    }
    assert_eq!(
        history.matches("previous_expires_at").count(),
        2,
        "{history}"
    );
}

on_both_backends!(
    independent_verifiers_accept_ours_and_reject_tampering,
    a_rotated_secret_keeps_verifying_until_its_overlap_ends,
);
