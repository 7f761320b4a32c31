//! The configs API (ricloud dialect): the official client, every list
//! filter and paging edge, its error format, and the routing it drives.
use crate::helpers::{receiver_script, status_and_json, test_python, Backend, TestApp};
use crate::on_both_backends;
use crate::receiver::Receiver;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

async fn the_official_ricloud_client_works_unchanged(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    let (url, token) = (app.address.clone(), app.key.clone());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(test_python())
            .arg(receiver_script("ricloud_flow.py"))
            .env("RICLOUD_URL", url)
            .env("RICLOUD_TOKEN", token)
            .output()
            .expect("python runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "ricloud flow failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("FLOW OK"), "{stdout}");
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .request(method, app.url(path))
        .header("Authorization", format!("Token {}", app.key));
    if let Some(body) = body {
        request = request.json(&body);
    }
    status_and_json(request.send().await.unwrap()).await
}

async fn create_config(app: &TestApp, url: &str) -> Value {
    let (status, config) = call(
        app,
        Method::POST,
        "/configs/webhook",
        Some(json!({"url": url})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{config}");
    config
}

async fn wait_for_state(app: &TestApp, id: i64, state: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, config) = call(app, Method::GET, &format!("/configs/webhook/{id}"), None).await;
        if config["state"] == state {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "config {id} never became {state}: {config}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn ids(list: &Value) -> Vec<i64> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect()
}

async fn list_filters_and_paging_edges(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    let receiver = Receiver::ok();
    let mut created = Vec::new();
    for _ in 0..5 {
        let config = create_config(&app, &receiver.url).await;
        assert_eq!(config["resource"], "webhook_config");
        created.push(config["id"].as_i64().unwrap());
    }
    for id in &created {
        wait_for_state(&app, *id, "valid").await;
    }
    // One deactivated, one deleted.
    let (status, off) = call(
        &app,
        Method::POST,
        &format!("/configs/webhook/{}", created[1]),
        Some(json!({"state": "deactivated"})),
    )
    .await;
    assert_eq!(
        (status, off["state"].clone()),
        (StatusCode::OK, json!("deactivated"))
    );
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/configs/webhook/{}", created[2]),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let live = [created[0], created[3], created[4]];

    let (status, list) = call(&app, Method::GET, "/configs/webhook", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["resource"], "list");
    assert_eq!(list["url"], "/configs/webhook");
    assert_eq!(list["has_more"], false);
    assert_eq!(list["total_count"], 3, "deactivated hidden, deleted gone");
    assert_eq!(ids(&list), live);

    let (_, page) = call(&app, Method::GET, "/configs/webhook?limit=2", None).await;
    assert_eq!(
        (ids(&page), page["has_more"].clone()),
        (live[..2].to_vec(), json!(true))
    );
    let (_, next) = call(
        &app,
        Method::GET,
        &format!("/configs/webhook?limit=2&after_id={}", live[1]),
        None,
    )
    .await;
    assert_eq!(
        (ids(&next), next["has_more"].clone()),
        (live[2..].to_vec(), json!(false))
    );
    let (_, before) = call(
        &app,
        Method::GET,
        &format!("/configs/webhook?limit=1&before_id={}", live[2]),
        None,
    )
    .await;
    assert_eq!(
        (ids(&before), before["has_more"].clone()),
        (vec![live[1]], json!(true))
    );
    // A deleted config still works as a cursor.
    let (_, after_deleted) = call(
        &app,
        Method::GET,
        &format!("/configs/webhook?after_id={}", created[2]),
        None,
    )
    .await;
    assert_eq!(ids(&after_deleted), live[1..]);

    let (_, deactivated) = call(
        &app,
        Method::GET,
        "/configs/webhook?state=deactivated",
        None,
    )
    .await;
    assert_eq!(ids(&deactivated), vec![created[1]]);
    let (_, several) = call(
        &app,
        Method::GET,
        "/configs/webhook?state=valid,deactivated",
        None,
    )
    .await;
    assert_eq!(several["total_count"], 4);

    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let now = chrono::Utc::now();
    let later =
        (now + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let earlier =
        (now - chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for (query, expected) in [
        (format!("date_created={today}"), 3),
        (format!("date_created__gte={earlier}"), 3),
        (format!("date_created%5Bgte%5D={earlier}"), 3),
        (format!("date_created__gt={later}"), 0),
        (format!("date_created__lt={earlier}"), 0),
        (format!("date_created[lte]={later}"), 3),
        (
            format!("date_created__gt={earlier}&date_created__lt={later}"),
            3,
        ),
    ] {
        let (status, list) = call(
            &app,
            Method::GET,
            &format!("/configs/webhook?{query}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{query}: {list}");
        assert_eq!(list["total_count"], expected, "{query}: {list}");
    }

    for (query, parameter) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("after_id=x", "after_id"),
        ("after_id=1&before_id=2", "before_id"),
        ("state=gone", "state"),
        ("date_created__gt=yesterday", "date_created__gt"),
        ("date_created=2026-13-40", "date_created"),
    ] {
        let (status, error) = call(
            &app,
            Method::GET,
            &format!("/configs/webhook?{query}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {error}");
        assert_eq!(error["error"], "invalid-parameter", "{query}");
        assert!(error["params"][parameter].is_string(), "{query}: {error}");
        assert!(error["message"].is_string());
    }
    let (status, _) = call(&app, Method::GET, "/configs/webhook?limit=1000", None).await;
    assert_eq!(status, StatusCode::OK);
}

async fn errors_come_in_the_ricloud_format(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    let config = create_config(&app, "http://127.0.0.1:9/webhooks").await;
    let path = format!("/configs/webhook/{}", config["id"]);

    let response = app
        .client
        .get(app.url("/configs/webhook"))
        .send()
        .await
        .unwrap();
    let (status, error) = status_and_json(response).await;
    assert_eq!(
        (status, error["error"].clone()),
        (StatusCode::UNAUTHORIZED, json!("missing-key"))
    );
    let response = app
        .client
        .get(app.url("/key"))
        .header("Authorization", "Token whk_nope")
        .send()
        .await
        .unwrap();
    let (status, error) = status_and_json(response).await;
    assert_eq!(
        (status, error["error"].clone()),
        (StatusCode::UNAUTHORIZED, json!("invalid-key"))
    );

    let (_, publish_only) = app.new_tenant("business", &["webhooks"], "publish").await;
    let response = app
        .request_as(&publish_only, Method::GET, "/configs/webhook")
        .send()
        .await
        .unwrap();
    let (status, error) = status_and_json(response).await;
    assert_eq!(
        (status, error["error"].clone()),
        (StatusCode::FORBIDDEN, json!("missing-scope"))
    );
    assert_eq!(error["params"]["scope"], "webhooks");

    let (_, other) = app.new_tenant("business", &["webhooks"], "webhooks").await;
    let response = app
        .request_as(&other, Method::GET, &path)
        .send()
        .await
        .unwrap();
    let (status, error) = status_and_json(response).await;
    assert_eq!(
        (status, error["error"].clone()),
        (StatusCode::NOT_FOUND, json!("not-found"))
    );

    let response = app
        .client
        .post(app.url(&path))
        .header("Authorization", format!("Token {}", app.key))
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, error) = status_and_json(response).await;
    assert_eq!(
        (status, error["error"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid-body"))
    );

    for body in [
        json!({"state": "valid"}),
        json!({"state": "invalid"}),
        json!({"url": "ftp://x"}),
        json!({"url": 5}),
    ] {
        let (status, error) = call(&app, Method::POST, &path, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(error["error"], "invalid-parameter", "{body}");
    }
    let (status, error) = call(&app, Method::POST, "/configs/webhook", Some(json!({}))).await;
    assert_eq!(
        (status, error["params"]["url"].clone()),
        (StatusCode::BAD_REQUEST, json!("is required"))
    );
    let (status, error) = call(&app, Method::GET, "/configs/nothing", None).await;
    assert_eq!(
        (status, error["error"].clone()),
        (StatusCode::NOT_FOUND, json!("not-found"))
    );
}

async fn the_key_or_the_organisation_default_routes_published_events(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    app.add_event_type("invoice.paid").await;
    let (default_rx, key_rx) = (Receiver::ok(), Receiver::ok());
    let default_config = create_config(&app, &default_rx.url).await;
    let key_config = create_config(&app, &key_rx.url).await;
    // Each creation's test event arrives first.
    default_rx.wait_for(1, WAIT).await;
    key_rx.wait_for(1, WAIT).await;

    // No routing yet: configs-profile configs get nothing.
    assert_eq!(
        app.publish("invoice.paid", json!({})).await["deliveries"],
        0
    );

    let (status, organisation) = call(
        &app,
        Method::POST,
        "/organisation",
        Some(json!({"webhook_config_default": default_config["id"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{organisation}");
    assert_eq!(organisation["webhook_config_default"], default_config["id"]);
    let published = app.publish("invoice.paid", json!({"amount": 3})).await;
    assert_eq!(published["deliveries"], 1);
    let event_id = published["id"].as_str().unwrap();
    let request = default_rx.wait_for(2, WAIT).await.remove(1);
    assert_eq!(
        request.path,
        format!("/hooks/{event_id}"),
        "URL joined with the event id"
    );
    let body = request.json();
    assert_eq!(body["resource"], "event");
    assert_eq!(
        (body["type"].clone(), body["action"].clone()),
        (json!("invoice"), json!("paid"))
    );
    assert_eq!(body["data"], json!({"amount": 3}));
    assert!(body["date_created"].is_string());

    // The publishing key's own config wins over the default.
    let (_, key) = call(&app, Method::GET, "/key", None).await;
    let (status, key) = call(
        &app,
        Method::POST,
        &format!("/keys/{}", key["id"]),
        Some(json!({"webhook_config": key_config["id"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{key}");
    assert_eq!(key["webhook_config"], key_config["id"]);
    app.publish("invoice.paid", json!({})).await;
    key_rx.wait_for(2, WAIT).await;
    assert_eq!(default_rx.received().len(), 2);

    // Another organisation's config is not found, and changes nothing.
    let (_, other_key) = app.new_tenant("business", &["webhooks"], "webhooks").await;
    let response = app
        .request_as(&other_key, Method::POST, "/configs/webhook")
        .json(&json!({"url": "http://127.0.0.1:9/x"}))
        .send()
        .await
        .unwrap();
    let (_, theirs) = status_and_json(response).await;
    let (status, error) = call(
        &app,
        Method::POST,
        &format!("/keys/{}", key["id"]),
        Some(json!({"webhook_config": theirs["id"]})),
    )
    .await;
    assert_eq!(
        (status, error["error"].clone()),
        (StatusCode::NOT_FOUND, json!("not-found"))
    );
    let (_, key_now) = call(&app, Method::GET, "/key", None).await;
    assert_eq!(key_now["webhook_config"], key_config["id"]);
}

async fn state_new_reactivates_and_re_tests(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    let receiver = Receiver::ok();
    let config = create_config(&app, &receiver.url).await;
    let id = config["id"].as_i64().unwrap();
    let path = format!("/configs/webhook/{id}");
    wait_for_state(&app, id, "valid").await;
    let (_, off) = call(
        &app,
        Method::POST,
        &path,
        Some(json!({"state": "deactivated"})),
    )
    .await;
    assert_eq!(off["state"], "deactivated");
    let (status, error) = call(&app, Method::POST, &format!("{path}/test"), None).await;
    assert_eq!(
        (status, error["error"].clone()),
        (StatusCode::CONFLICT, json!("conflict"))
    );
    let (status, on) = call(&app, Method::POST, &path, Some(json!({"state": "new"}))).await;
    assert_eq!(
        (status, on["state"].clone()),
        (StatusCode::OK, json!("new"))
    );
    wait_for_state(&app, id, "valid").await;
    receiver.wait_for(2, WAIT).await;
    // The config turns valid when its test is recorded; the task completes
    // just after (a finished task means the state is final, not the other
    // way round), so the tasks are awaited, not read once.
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, tasks) = call(&app, Method::GET, "/tasks", None).await;
        let for_config: Vec<Value> = tasks["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["target"] == id)
            .cloned()
            .collect();
        assert!(
            for_config.len() <= 2,
            "one test at creation, one at reactivation: {tasks}"
        );
        if for_config.len() == 2 && for_config.iter().all(|t| t["state"] == "succeeded") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "two succeeded tasks expected: {tasks}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

on_both_backends!(
    state_new_reactivates_and_re_tests,
    the_official_ricloud_client_works_unchanged,
    list_filters_and_paging_edges,
    errors_come_in_the_ricloud_format,
    the_key_or_the_organisation_default_routes_published_events,
);
