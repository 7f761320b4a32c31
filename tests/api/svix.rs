//! The Svix dialect: the official SDKs (Python `svix==2.9.1`, npm
//! `svix@2.5.0`), unchanged but for their server URL, against a live
//! webhookd; and what they do not show — tenants kept apart, the dialect's
//! error format, idempotency keys, routing by application.
use crate::helpers::{receiver_script, status_and_json, test_python, Backend, TestApp};
use crate::on_both_backends;
use crate::receiver::Receiver;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

/// The npm package the JavaScript flow runs against.
const JS_SDK: &str = "svix@2.5.0";

/// Runs `program args…`, expecting "OK" on its last line.
async fn run_flow(mut command: std::process::Command, what: &str) {
    let _turn = crate::helpers::MACHINE.lock().await;
    let output = tokio::task::spawn_blocking(move || command.output().expect("the flow runs"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.trim_end().ends_with("OK"),
        "{what} failed:\n{stdout}\n{stderr}"
    );
}

async fn the_official_python_sdk_works_unchanged(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    let mut command = std::process::Command::new(test_python());
    command
        .arg(receiver_script("svix_flow.py"))
        .arg(&app.address)
        .arg(&app.key);
    run_flow(command, "the Python SDK flow").await;
}

/// A directory under `target/` with the JavaScript SDK installed and the
/// flow script beside it (ES modules resolve packages from their own
/// location).
fn javascript_flow() -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/svix-js");
        let marker = dir.join("installed");
        if std::fs::read_to_string(&marker).ok().as_deref() != Some(JS_SDK) {
            std::fs::create_dir_all(&dir).unwrap();
            let status = std::process::Command::new("npm")
                .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
                .arg(&dir)
                .arg(JS_SDK)
                .status()
                .expect("npm runs");
            assert!(status.success(), "npm install {JS_SDK} failed");
            std::fs::write(&marker, JS_SDK).unwrap();
        }
        std::fs::copy(receiver_script("svix_flow.mjs"), dir.join("svix_flow.mjs")).unwrap();
        dir
    })
    .clone()
}

async fn the_official_javascript_sdk_works_unchanged(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    let dir = javascript_flow();
    let mut command = std::process::Command::new("node");
    command
        .current_dir(&dir)
        .arg("svix_flow.mjs")
        .arg(&app.address)
        .arg(&app.key);
    run_flow(command, "the JavaScript SDK flow").await;
}

async fn call(
    app: &TestApp,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app.request_as(key, method, path);
    if let Some(body) = body {
        request = request.json(&body);
    }
    status_and_json(request.send().await.unwrap()).await
}

/// Applications belong to the environment that made them: another
/// organisation's key finds none of them, and an application's own key
/// reaches that application only.
async fn applications_are_kept_apart(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, created) = call(
        &app,
        &app.key,
        Method::POST,
        "/api/v1/app",
        Some(json!({"name": "A", "uid": "a"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let (_, other_key) = app
        .new_tenant("business", &["webhooks"], "webhooks,publish")
        .await;
    for path in [format!("/api/v1/app/{id}"), "/api/v1/app/a".to_owned()] {
        let (status, body) = call(&app, &other_key, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["code"], "not_found");
    }
    let (status, listed) = call(&app, &other_key, Method::GET, "/api/v1/app", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["data"], json!([]));
    assert_eq!(listed["done"], true);

    let (status, access) = call(
        &app,
        &app.key,
        Method::POST,
        &format!("/api/v1/auth/app-portal-access/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{access}");
    let scoped = access["token"].as_str().unwrap().to_owned();
    let (status, _) = call(
        &app,
        &scoped,
        Method::GET,
        &format!("/api/v1/app/{id}/endpoint"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(&app, &scoped, Method::GET, "/api/v1/app", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = call(
        &app,
        &app.key,
        Method::POST,
        "/api/v1/app",
        Some(json!({"name": "B", "uid": "b"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = call(&app, &scoped, Method::GET, "/api/v1/app/b", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A message reaches its application's endpoints and no one else's; a v1
/// publish of the environment reaches none of them.
async fn messages_go_to_their_application_only(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    app.add_event_type("invoice.paid").await;
    let receiver = Receiver::ok();
    let mut endpoints = Vec::new();
    for uid in ["one", "two"] {
        let (status, _) = call(
            &app,
            &app.key,
            Method::POST,
            "/api/v1/app",
            Some(json!({"name": uid, "uid": uid})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        let body = json!({"url": format!("{}/{uid}", receiver.url.trim_end_matches('/'))});
        let (status, endpoint) = call(
            &app,
            &app.key,
            Method::POST,
            &format!("/api/v1/app/{uid}/endpoint"),
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{endpoint}");
        endpoints.push(endpoint);
    }
    let message = json!({"eventType": "invoice.paid", "payload": {"n": 1}});
    let (status, sent) = call(
        &app,
        &app.key,
        Method::POST,
        "/api/v1/app/one/msg",
        Some(message),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    app.publish("invoice.paid", json!({"n": 2})).await;
    let requests = receiver.wait_for(1, Duration::from_secs(20)).await;
    assert!(requests[0].path.ends_with("/one"), "{}", requests[0].path);
    assert_eq!(requests[0].header("svix-id"), sent["id"].as_str().unwrap());
    // The other application and the v1 publish: nothing, shown by the
    // delivery rows (every publish commits its deliveries before it answers).
    let total = app.count_sql("SELECT COUNT(*) FROM deliveries").await;
    assert_eq!(total, 1, "one delivery in all");
    let (_, destinations) = call(
        &app,
        &app.key,
        Method::GET,
        &format!(
            "/api/v1/app/two/endpoint/{}/msg",
            endpoints[1]["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(destinations["data"], json!([]));
}

/// An endpoint with channels gets the messages that share one; an
/// endpoint without gets every message of its types.
async fn channels_choose_which_endpoints_get_a_message(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    app.add_event_type("invoice.paid").await;
    let receiver = Receiver::ok();
    let (status, _) = call(
        &app,
        &app.key,
        Method::POST,
        "/api/v1/app",
        Some(json!({"name": "c", "uid": "c"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let base = receiver.url.trim_end_matches('/').to_owned();
    for (uid, channels) in [("eu", json!(["eu"])), ("any", Value::Null)] {
        let body = json!({"url": format!("{base}/{uid}"), "uid": uid, "channels": channels});
        let (status, endpoint) = call(
            &app,
            &app.key,
            Method::POST,
            "/api/v1/app/c/endpoint",
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{endpoint}");
        assert_eq!(endpoint["channels"], channels);
    }
    let mut sent = Vec::new();
    for channels in [json!(["us"]), json!(["eu", "us"]), Value::Null] {
        let message = json!({"eventType": "invoice.paid", "payload": {}, "channels": channels});
        let (status, body) = call(
            &app,
            &app.key,
            Method::POST,
            "/api/v1/app/c/msg",
            Some(message),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        sent.push(body["id"].as_str().unwrap().to_owned());
    }
    // 1 (eu, us) to "eu"; all 3 to "any".
    let requests = receiver.wait_for(4, Duration::from_secs(20)).await;
    let to_eu: Vec<&str> = requests
        .iter()
        .filter(|r| r.path.ends_with("/eu"))
        .map(|r| r.header("svix-id"))
        .collect();
    assert_eq!(to_eu, [sent[1].as_str()]);
    let deliveries = app.count_sql("SELECT COUNT(*) FROM deliveries").await;
    assert_eq!(deliveries, 4, "no other delivery was made");
    let (_, listed) = call(
        &app,
        &app.key,
        Method::GET,
        "/api/v1/app/c/msg?channel=eu",
        None,
    )
    .await;
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [sent[1].as_str()]);
    let (status, body) = call(
        &app,
        &app.key,
        Method::PATCH,
        "/api/v1/app/c/endpoint/eu",
        Some(json!({"channels": ["bad channel"]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "channels"]));
}

/// A node that dies after a message's commit and before its answer was
/// kept leaves the key claimed and unanswered: the client's repeat (after
/// the claim is abandoned) finds the message instead of storing a second.
async fn a_message_whose_answer_was_lost_is_stored_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_event_type("invoice.paid").await;
    let (status, _) = call(
        &app,
        &app.key,
        Method::POST,
        "/api/v1/app",
        Some(json!({"name": "i", "uid": "i"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let send = || {
        app.request(Method::POST, "/api/v1/app/i/msg")
            .header("idempotency-key", "order-7")
            .json(&json!({"eventType": "invoice.paid", "payload": {"order": 7}}))
    };
    let (status, first) = status_and_json(send().send().await.unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    // As the dead node left it: claimed, never answered, long ago.
    app.execute_sql(
        "UPDATE idempotency_keys SET status = 0, body = NULL, created_at = 0 \
         WHERE idempotency_key = 'order-7'",
    )
    .await;
    let (status, again) = status_and_json(send().send().await.unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(
        again["id"], first["id"],
        "the message stored the first time"
    );
    assert_eq!(
        again["eventId"],
        Value::Null,
        "the key is not shown as an eventId"
    );
    let events = app.count_sql("SELECT COUNT(*) FROM published_events").await;
    assert_eq!(events, 1);
    // A claim still within its request's time is a request still running.
    app.execute_sql(&format!(
        "UPDATE idempotency_keys SET status = 0, body = NULL, created_at = {} \
         WHERE idempotency_key = 'order-7'",
        chrono::Utc::now().timestamp_micros()
    ))
    .await;
    let (status, body) = status_and_json(send().send().await.unwrap()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

/// `{code, detail}`, 422 `{detail: [{loc, msg, type}]}`, 405 with `Allow`,
/// 401 for a key that is malformed, and idempotency keys kept per request.
async fn the_dialect_answers_in_its_own_format(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, body) = call(
        &app,
        &app.key,
        Method::GET,
        "/api/v1/app/app_1/nothing",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found", "{body}");
    let (status, body) = call(
        &app,
        &app.key,
        Method::POST,
        "/api/v1/app",
        Some(json!({"uid": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body"]), "{body}");
    let (status, body) = call(
        &app,
        &app.key,
        Method::POST,
        "/api/v1/app",
        Some(json!({"name": "", "uid": "app_7"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&Value> = body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["loc"][1])
        .collect();
    assert_eq!(fields, [&json!("name"), &json!("uid")], "{body}");
    let response = app
        .request(Method::DELETE, "/api/v1/app")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "GET, POST");
    let response = app
        .client
        .get(app.url("/api/v1/app?api_key=%00"))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "authentication_failed");

    let create = |key: &'static str, name: &str| {
        app.request(Method::POST, "/api/v1/app")
            .header("idempotency-key", key)
            .json(&json!({"name": name}))
    };
    let (status, first) = status_and_json(create("k1", "first").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, again) = status_and_json(create("k1", "second").send().await.unwrap()).await;
    assert_eq!(
        (status, &again),
        (StatusCode::CREATED, &first),
        "the first answer, again"
    );
    let (status, _) = status_and_json(create("k2", "second").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, listed) = call(&app, &app.key, Method::GET, "/api/v1/app", None).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    let response = app
        .request(Method::POST, "/api/v1/event-type")
        .header("idempotency-key", "k1")
        .json(&json!({"name": "a.b", "description": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::CONFLICT,
        "a key of another request"
    );
}

on_both_backends!(
    the_official_python_sdk_works_unchanged,
    the_official_javascript_sdk_works_unchanged,
    applications_are_kept_apart,
    messages_go_to_their_application_only,
    channels_choose_which_endpoints_get_a_message,
    a_message_whose_answer_was_lost_is_stored_once,
    the_dialect_answers_in_its_own_format,
);
