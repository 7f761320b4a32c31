//! A crash between an event commit and its projection update loses nothing:
//! start-up brings the read model level with the log.
use crate::helpers::{status_and_json, webhook_body, Backend, TestApp};
use crate::on_both_backends;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn start_up_repairs_missing_and_stale_rows(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let lost = app
        .create_webhook(webhook_body("https://example.com/lost"))
        .await;
    let stale = app
        .create_webhook(webhook_body("https://example.com/stale"))
        .await;
    let stale_path = format!("/api/v1/webhooks/{}", stale["id"]);
    let response = app
        .request(Method::PATCH, &stale_path)
        .json(&json!({"name": "after", "retry_count": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // Simulate the crash: one row never written, one left at its first version.
    app.execute_sql(&format!(
        "DELETE FROM webhook_configs WHERE id = {}",
        lost["id"]
    ))
    .await;
    app.execute_sql(&format!(
        "UPDATE webhook_configs SET name = 'before', retry_count = 3, version = 1 WHERE id = {}",
        stale["id"]
    ))
    .await;

    let restarted = app.restart().await;
    let get = |path: String| {
        app.client
            .get(format!("{restarted}{path}"))
            .bearer_auth(&app.key)
            .send()
    };
    let (status, shown) = status_and_json(
        get(format!("/api/v1/webhooks/{}", lost["id"]))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["data"]["url"], "https://example.com/lost");
    assert_eq!(shown["data"]["secret"], lost["secret"]);
    let (_, shown) = status_and_json(get(stale_path).await.unwrap()).await;
    assert_eq!(shown["data"]["name"], "after");
    assert_eq!(shown["data"]["retry_count"], 7);
}

on_both_backends!(start_up_repairs_missing_and_stale_rows);
