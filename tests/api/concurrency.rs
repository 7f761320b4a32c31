//! Concurrent commands on one config are retried, never lost, never a 500.
use crate::helpers::{status_and_json, webhook_body, Backend, TestApp};
use crate::on_both_backends;
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn twenty_concurrent_patches_all_land(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app
        .create_webhook(webhook_body("https://example.com/h"))
        .await;
    let id = created["id"].as_i64().unwrap();
    let path = format!("/api/v1/webhooks/{id}");

    let patches = (0..20).map(|n| {
        app.request(Method::PATCH, &path)
            .json(&json!({ "name": format!("change-{n}") }))
            .send()
    });
    for response in join_all(patches).await {
        let (status, body) = status_and_json(response.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    // The log holds Created and all 20 changes, each exactly once.
    assert_eq!(app.event_count(Some(id)).await, 21);
    let names = logged_names(&app, id).await;
    let mut sorted = names.clone();
    sorted.sort();
    let mut expected: Vec<String> = (0..20).map(|n| format!("change-{n}")).collect();
    expected.sort();
    assert_eq!(sorted, expected);

    // The read model shows the fold of the whole log: the last change wins.
    let (_, shown) = status_and_json(app.request(Method::GET, &path).send().await.unwrap()).await;
    assert_eq!(shown["data"]["name"], names.last().unwrap().as_str());
}

/// The names set by SettingsUpdated events of config `id`, in log order.
async fn logged_names(app: &TestApp, id: i64) -> Vec<String> {
    let sql = "SELECT CAST(payload AS TEXT) FROM events \
               WHERE aggregate_id = $1 AND event_type = 'SettingsUpdated' ORDER BY sequence";
    let payloads: Vec<String> = projections::on_pool!(&app.db, |pool| sqlx::query_scalar(sql)
        .bind(id.to_string())
        .fetch_all(pool)
        .await
        .unwrap());
    payloads
        .iter()
        .map(|p| {
            let v: Value = serde_json::from_str(p).unwrap();
            v["SettingsUpdated"]["name"].as_str().unwrap().to_owned()
        })
        .collect()
}

on_both_backends!(twenty_concurrent_patches_all_land);
