//! Webhooks may not reach internal addresses: refused at create time in any
//! spelling, and again at connect time for names that turn internal later.
use crate::cli::{stdout_of, webhookd, Served};
use crate::helpers::{status_and_json, webhook_body, Backend, TestApp, TestDatabase};
use crate::on_both_backends;
use aggregates::values::IpCidr;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

async fn internal_targets_are_refused_in_every_spelling(backend: Backend) {
    let app = TestApp::spawn_configured(backend, |settings| {
        settings
            .delivery
            .resolve_overrides
            .insert("internal.example".into(), "10.1.2.3".parse().unwrap());
    })
    .await;
    for url in [
        "https://127.0.0.1/",
        "https://[::1]/",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.1/",
        "https://172.16.0.1/",
        "https://192.168.0.1/",
        "https://100.64.0.1/",
        "https://[::ffff:127.0.0.1]/",
        "https://[::ffff:a9fe:a9fe]/",
        "https://[fd00::1]/",
        "https://[fe80::1]/",
        "https://224.0.0.1/",
        "https://0.0.0.0/",
        "https://localhost/",
        "https://2130706433/",
        "https://0x7f000001/",
        "https://0177.0.0.1/",
        "https://127.1/",
        "https://internal.example/",
    ] {
        let response = app
            .request(Method::POST, "/api/v1/webhooks")
            .json(&webhook_body(url))
            .send()
            .await
            .unwrap();
        let (status, body) = status_and_json(response).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
        assert!(
            body["errors"]["url"][0]
                .as_str()
                .unwrap()
                .contains("must not target"),
            "{url}: {body}"
        );
    }
    assert_eq!(app.event_count(None).await, 0);
}

async fn allow_target_lifts_the_rule_for_its_range_only(backend: Backend) {
    let app = TestApp::spawn_configured(backend, |settings| {
        settings.allowed_targets = vec![IpCidr::parse("10.1.0.0/16").unwrap()];
    })
    .await;
    app.create_webhook(webhook_body("https://10.1.2.3/hooks"))
        .await;
    let response = app
        .request(Method::POST, "/api/v1/webhooks")
        .json(&webhook_body("https://10.2.0.1/hooks"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

/// Created while `rebind.example` resolved to a public address; by the time
/// of sending it resolves to loopback: the connection is refused.
async fn a_name_that_turns_internal_is_refused_at_connect_time(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    stdout_of(&webhookd(
        &database,
        &["event-types", "add", "invoice.paid", "--description", "x"],
    ));
    let public = Served::start_with(&database, &["--resolve", "rebind.example=93.184.216.34"]);
    let key = public.stdout_line(|line| line.starts_with("whk_"));
    public.wait_until_listening();
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("http://127.0.0.1:{}/api/v1/webhooks", public.port))
        .bearer_auth(&key)
        .json(&json!({"url": "https://rebind.example/hooks", "events": ["invoice.paid"], "retry_count": 0}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["data"]["id"]
        .as_i64()
        .expect("created while the name was public");
    public.kill();

    let rebound = Served::start_with(&database, &["--resolve", "rebind.example=127.0.0.1"]);
    rebound.wait_until_listening();
    let base = format!("http://127.0.0.1:{}", rebound.port);
    let published = client
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(&key)
        .json(&json!({"type": "invoice.paid", "data": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), StatusCode::ACCEPTED);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let attempt = loop {
        let deliveries: Value = client
            .get(format!("{base}/api/v1/webhooks/{id}/deliveries"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if deliveries["data"][0]["status"] == "failed" {
            break deliveries["data"][0]["attempt_log"][0].clone();
        }
        assert!(std::time::Instant::now() < deadline, "{deliveries}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let error = attempt["error"].as_str().unwrap_or_default();
    // Our guard's words, not a "Connection refused" from an attempt that was made.
    assert!(
        error.contains("resolves only to addresses webhooks may not reach"),
        "{attempt}"
    );
    assert_eq!(
        attempt["status_code"],
        Value::Null,
        "nothing was sent: {attempt}"
    );
}

on_both_backends!(
    internal_targets_are_refused_in_every_spelling,
    allow_target_lifts_the_rule_for_its_range_only,
    a_name_that_turns_internal_is_refused_at_connect_time,
);
