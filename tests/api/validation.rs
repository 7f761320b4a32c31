//! Bad input: the right status and message, and nothing stored.
use crate::helpers::{status_and_json, webhook_body, Backend, TestApp};
use crate::on_both_backends;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Sends `body` as the create body; expects `status` and, for 422, an error
/// on `field`; then checks that nothing was stored.
async fn assert_create_refused(
    app: &TestApp,
    body: String,
    status: StatusCode,
    field: Option<&str>,
) {
    let shown: String = body.chars().take(120).collect();
    let response = app
        .request(Method::POST, "/api/v1/webhooks")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let (got, json) = status_and_json(response).await;
    assert_eq!(got, status, "{shown} -> {json}");
    assert!(
        json["error"].as_str().is_some_and(|m| !m.is_empty()),
        "{json}"
    );
    if let Some(field) = field {
        let messages = json["errors"][field].as_array();
        assert!(
            messages.is_some_and(|m| !m.is_empty()),
            "{shown}: expected an error on '{field}', got {json}"
        );
    }
    assert_eq!(app.event_count(None).await, 0, "{shown} stored an event");
}

fn with(field: &str, value: Value) -> String {
    let mut body = webhook_body("https://example.com/h");
    body[field] = value;
    body.to_string()
}

async fn malformed_and_mistyped_bodies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    assert_create_refused(&app, "{\"url\": ".into(), StatusCode::BAD_REQUEST, None).await;
    assert_create_refused(&app, "".into(), StatusCode::BAD_REQUEST, None).await;
    assert_create_refused(&app, "[1, 2]".into(), StatusCode::BAD_REQUEST, None).await;
    assert_create_refused(&app, with("url", json!(123)), unprocessable, Some("url")).await;
    assert_create_refused(
        &app,
        with("events", json!("webhook_config.test")),
        unprocessable,
        Some("events"),
    )
    .await;
    assert_create_refused(
        &app,
        with("events", json!([1])),
        unprocessable,
        Some("events"),
    )
    .await;
    assert_create_refused(
        &app,
        with("retry_count", json!("3")),
        unprocessable,
        Some("retry_count"),
    )
    .await;
    assert_create_refused(
        &app,
        with("retry_count", json!(2.5)),
        unprocessable,
        Some("retry_count"),
    )
    .await;
    assert_create_refused(
        &app,
        with("is_active", json!("yes")),
        unprocessable,
        Some("is_active"),
    )
    .await;
    assert_create_refused(
        &app,
        with("name", json!(["x"])),
        unprocessable,
        Some("name"),
    )
    .await;
    assert_create_refused(
        &app,
        with("headers", json!(["x"])),
        unprocessable,
        Some("headers"),
    )
    .await;

    // both required fields missing: both reported at once
    let response = app
        .request(Method::POST, "/api/v1/webhooks")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, unprocessable);
    assert_eq!(body["errors"]["url"], json!(["is required"]));
    assert_eq!(body["errors"]["events"], json!(["is required"]));
    assert_eq!(app.event_count(None).await, 0);
}

async fn bad_urls(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases = [
        ("http://example.com/h", "must use https"),
        (
            "https://user:pw@example.com/h",
            "must not contain credentials",
        ),
        ("https://", "must be an absolute URL"),
        ("/relative/path", "must be an absolute URL"),
        ("https://127.0.0.1/h", "must not target"),
        ("https://[::1]/h", "must not target"),
        ("https://169.254.169.254/latest", "must not target"),
        ("https://10.0.0.1/h", "must not target"),
        ("https://localhost/h", "must not target"),
        ("https://2130706433/", "must not target"),
    ];
    for (url, message) in cases {
        let response = app
            .request(Method::POST, "/api/v1/webhooks")
            .json(&webhook_body(url))
            .send()
            .await
            .unwrap();
        let (status, body) = status_and_json(response).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
        let got = body["errors"]["url"][0].as_str().unwrap_or_default();
        assert!(
            got.contains(message),
            "{url}: expected '{message}', got {body}"
        );
    }
    let long = format!("https://example.com/{}", "a".repeat(10 * 1024));
    assert_create_refused(
        &app,
        webhook_body(&long).to_string(),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("url"),
    )
    .await;
    assert_eq!(app.event_count(None).await, 0);
}

async fn dev_mode_allows_local_http_targets(backend: Backend) {
    let app = TestApp::spawn_dev(backend).await;
    let created = app
        .create_webhook(webhook_body("http://127.0.0.1:9/hook"))
        .await;
    assert_eq!(created["url"], "http://127.0.0.1:9/hook");
}

async fn bad_events(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .request(Method::POST, "/api/v1/webhooks")
        .json(&json!({"url": "https://example.com/h", "events": ["invoice.lost"]}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = body["errors"]["events"][0].as_str().unwrap();
    assert!(message.contains("invoice.lost"), "{message}");
    assert!(
        message.contains("webhook_config.test"),
        "names the valid ones: {message}"
    );
    assert_create_refused(
        &app,
        with("events", json!([])),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("events"),
    )
    .await;
    assert_create_refused(
        &app,
        with("events", json!(["*", "webhook_config.test"])),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("events"),
    )
    .await;
}

async fn out_of_range_limits(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (field, value) in [
        ("retry_count", 11),
        ("retry_count", -1),
        ("timeout_seconds", 0),
        ("timeout_seconds", 61),
    ] {
        assert_create_refused(
            &app,
            with(field, json!(value)),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(field),
        )
        .await;
    }
}

async fn forbidden_and_mistyped_headers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for name in [
        "Host",
        "Content-Length",
        "webhook-signature",
        "Transfer-Encoding",
    ] {
        let body = with("headers", json!({ name: "x" }));
        assert_create_refused(
            &app,
            body,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("headers"),
        )
        .await;
    }
    for value in [json!(1), json!(null), json!(["a"]), json!({"a": "b"})] {
        let body = with("headers", json!({ "X-Custom": value }));
        assert_create_refused(
            &app,
            body,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("headers"),
        )
        .await;
    }
}

async fn ids_that_name_nothing_are_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for id in ["abc", "0", "-1", "99999999999999999999", "1.5", "424242"] {
        for method in [Method::GET, Method::PATCH, Method::DELETE] {
            let response = app
                .request(method.clone(), &format!("/api/v1/webhooks/{id}"))
                .json(&json!({"name": "x"}))
                .send()
                .await
                .unwrap();
            let (status, body) = status_and_json(response).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {id}: {body}");
            assert_eq!(body["error"], "webhook not found");
        }
    }
}

async fn oversized_bodies_are_refused_with_413(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let huge = format!(
        "{{\"url\": \"https://example.com/h\", \"events\": [\"webhook_config.test\"], \"name\": \"{}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    assert_create_refused(&app, huge, StatusCode::PAYLOAD_TOO_LARGE, None).await;
}

async fn invalid_patches_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app
        .create_webhook(webhook_body("https://example.com/h"))
        .await;
    let path = format!("/api/v1/webhooks/{}", created["id"]);
    for body in [
        json!({"url": "http://example.com/h"}),
        json!({"events": []}),
        json!({"retry_count": 11, "name": "changed"}),
        json!({"url": null}),
    ] {
        let response = app
            .request(Method::PATCH, &path)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, json) = status_and_json(response).await;
        if body == json!({"url": null}) {
            // null means "not given" for url: nothing to change
            assert_eq!(status, StatusCode::OK, "{json}");
        } else {
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {json}");
        }
    }
    let (_, shown) = status_and_json(app.request(Method::GET, &path).send().await.unwrap()).await;
    assert_eq!(shown["data"]["name"], "");
    assert_eq!(shown["data"]["url"], "https://example.com/h");
    assert_eq!(app.event_count(None).await, 1);
}

on_both_backends!(
    malformed_and_mistyped_bodies,
    bad_urls,
    dev_mode_allows_local_http_targets,
    bad_events,
    out_of_range_limits,
    forbidden_and_mistyped_headers,
    ids_that_name_nothing_are_not_found,
    oversized_bodies_are_refused_with_413,
    invalid_patches_change_nothing,
);
