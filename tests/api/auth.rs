//! API keys, scopes, plans, feature flags and tenant isolation.
use crate::helpers::{status_and_json, webhook_body, Backend, TestApp};
use crate::on_both_backends;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn keys_are_accepted_in_four_places(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = &app.key;
    let list = app.url("/api/v1/webhooks");
    let requests = [
        app.client
            .get(&list)
            .header("Authorization", format!("Bearer {key}")),
        app.client
            .get(&list)
            .header("Authorization", format!("Token {key}")),
        app.client.get(&list).header("X-API-Key", key.as_str()),
        app.client.get(format!("{list}?api_key={key}")),
    ];
    for request in requests {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}

async fn missing_or_unknown_keys_are_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let list = app.url("/api/v1/webhooks");
    let cases = [
        (app.client.get(&list), "missing API key"),
        (
            app.client.get(&list).bearer_auth("whk_nope"),
            "invalid API key",
        ),
        (
            app.client.get(&list).header("Authorization", "Basic abc"),
            "missing API key",
        ),
        (
            app.client.get(&list).header("X-API-Key", "whk_nope"),
            "invalid API key",
        ),
    ];
    for (request, message) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let (status, body) = status_and_json(response).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body["error"].as_str().unwrap().contains(message), "{body}");
    }
}

async fn scopes_plans_and_feature_flags_are_403(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, publish_only) = app.new_tenant("business", &["webhooks"], "publish").await;
    let (_, no_flag) = app.new_tenant("enterprise", &[], "webhooks").await;
    let (_, professional) = app
        .new_tenant("professional", &["webhooks"], "webhooks")
        .await;
    let cases = [
        (&publish_only, "lacks the 'webhooks' scope"),
        (&no_flag, "'webhooks' feature is not enabled"),
        (
            &professional,
            "business plan or above; this organisation is on the professional plan",
        ),
    ];
    for (key, message) in cases {
        for (method, path) in [
            (Method::GET, "/api/v1/webhooks"),
            (Method::POST, "/api/v1/webhooks"),
            (Method::GET, "/api/v1/webhooks/events"),
        ] {
            let response = app
                .request_as(key, method.clone(), path)
                .json(&webhook_body("https://example.com/h"))
                .send()
                .await
                .unwrap();
            let (status, body) = status_and_json(response).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
            assert!(body["error"].as_str().unwrap().contains(message), "{body}");
        }
    }
    assert_eq!(app.event_count(None).await, 0);
}

async fn tenants_see_only_their_own_configs(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, other_key) = app.new_tenant("business", &["webhooks"], "webhooks").await;
    let mine = app
        .create_webhook(webhook_body("https://example.com/mine"))
        .await;
    let response = app
        .request_as(&other_key, Method::POST, "/api/v1/webhooks")
        .json(&webhook_body("https://example.com/theirs"))
        .send()
        .await
        .unwrap();
    let (status, theirs) = status_and_json(response).await;
    assert_eq!(status, StatusCode::CREATED);
    let theirs_id = theirs["data"]["id"].as_i64().unwrap();

    for (key, own_url) in [
        (&app.key, "https://example.com/mine"),
        (&other_key, "https://example.com/theirs"),
    ] {
        let (_, listed) = status_and_json(
            app.request_as(key, Method::GET, "/api/v1/webhooks")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(listed["meta"]["total"], 1);
        assert_eq!(listed["data"][0]["url"], own_url);
    }

    // The other tenant's id is a 404 for every method, and nothing changes.
    let path = format!("/api/v1/webhooks/{theirs_id}");
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let response = app
            .request(method.clone(), &path)
            .json(&json!({"name": "hijacked"}))
            .send()
            .await
            .unwrap();
        let (status, body) = status_and_json(response).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}: {body}");
        assert_eq!(body["error"], "webhook not found");
    }
    let (_, still) = status_and_json(
        app.request_as(&other_key, Method::GET, &path)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(still["data"]["name"], "");
    assert_eq!(app.event_count(Some(theirs_id)).await, 1);
    assert_eq!(app.event_count(Some(mine["id"].as_i64().unwrap())).await, 1);
}

on_both_backends!(
    keys_are_accepted_in_four_places,
    missing_or_unknown_keys_are_401,
    scopes_plans_and_feature_flags_are_403,
    tenants_see_only_their_own_configs,
);
