//! The happy paths of the v1 webhooks API.
use crate::helpers::{status_and_json, webhook_body, Backend, TestApp};
use crate::on_both_backends;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn create_show_list_update_delete(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_event_type("invoice.paid").await;

    let created = app
        .create_webhook(json!({
            "url": "https://example.com/hooks",
            "events": ["invoice.paid"],
            "name": "Billing",
            "headers": {"X-Tenant": "acme"},
            "retry_count": 5,
            "timeout_seconds": 10
        }))
        .await;
    let id = created["id"].as_i64().expect("integer id");
    assert_eq!(created["url"], "https://example.com/hooks");
    assert_eq!(created["events"], json!(["invoice.paid"]));
    assert_eq!(created["name"], "Billing");
    assert_eq!(created["headers"], json!({"x-tenant": "acme"}));
    assert_eq!(created["is_active"], true);
    assert_eq!(created["retry_count"], 5);
    assert_eq!(created["timeout_seconds"], 10);
    assert_eq!(created["failure_count"], 0);
    assert_eq!(created["last_triggered_at"], json!(null));
    let secret = created["secret"].as_str().expect("secret on create");
    assert!(
        secret.starts_with("whsec_") && secret.len() == 6 + 44,
        "{secret}"
    );
    assert!(chrono::DateTime::parse_from_rfc3339(created["created_at"].as_str().unwrap()).is_ok());

    // show: with the secret, same request id in header and envelope
    let response = app
        .request(Method::GET, &format!("/api/v1/webhooks/{id}"))
        .send()
        .await
        .unwrap();
    let header_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let (status, shown) = status_and_json(response).await;
    assert_eq!(status, StatusCode::OK);
    assert!(header_id.starts_with("req_"));
    assert_eq!(shown["meta"]["request_id"], header_id.as_str());
    assert_eq!(shown["data"]["secret"], secret);

    // list: no secret
    let (status, listed) = status_and_json(
        app.request(Method::GET, "/api/v1/webhooks")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["meta"]["total"], 1);
    assert_eq!(listed["data"][0]["id"], id);
    assert!(listed["data"][0].get("secret").is_none());

    // patch
    let (status, patched) = status_and_json(
        app.request(Method::PATCH, &format!("/api/v1/webhooks/{id}"))
            .json(&json!({
                "url": "https://example.org/new",
                "events": ["*"],
                "name": "Renamed",
                "headers": null,
                "retry_count": 0,
                "timeout_seconds": 60
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let data = &patched["data"];
    assert_eq!(data["url"], "https://example.org/new");
    assert_eq!(data["events"], json!(["*"]));
    assert_eq!(data["name"], "Renamed");
    assert_eq!(data["headers"], json!({}));
    assert_eq!(data["retry_count"], 0);
    assert_eq!(data["timeout_seconds"], 60);
    assert_eq!(data["state"], "new");
    // Created, UrlUpdated, SettingsUpdated
    assert_eq!(app.event_count(Some(id)).await, 3);

    // delete, then it is gone from every route but stays in the log
    app.delete_webhook(id).await;
    for method in [Method::GET, Method::DELETE] {
        let (status, body) = status_and_json(
            app.request(method, &format!("/api/v1/webhooks/{id}"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"], "webhook not found");
    }
    let (_, listed) = status_and_json(
        app.request(Method::GET, "/api/v1/webhooks")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(listed["meta"]["total"], 0);
    assert_eq!(app.event_count(Some(id)).await, 4);
}

async fn is_active_deactivates_and_reactivates(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut body = webhook_body("https://example.com/h");
    body["is_active"] = json!(false);
    let created = app.create_webhook(body).await;
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["is_active"], false);
    assert_eq!(created["state"], "deactivated");

    let path = format!("/api/v1/webhooks/{id}");
    let (status, patched) = status_and_json(
        app.request(Method::PATCH, &path)
            .json(&json!({"is_active": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["data"]["is_active"], true);
    assert_eq!(patched["data"]["state"], "new");
    // Created, Deactivated, Reactivated
    assert_eq!(app.event_count(Some(id)).await, 3);
}

async fn a_patch_that_changes_nothing_records_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app
        .create_webhook(webhook_body("https://example.com/h"))
        .await;
    let id = created["id"].as_i64().unwrap();
    let (status, patched) = status_and_json(
        app.request(Method::PATCH, &format!("/api/v1/webhooks/{id}"))
            .json(&json!({"url": "https://example.com/h", "is_active": true, "retry_count": 3}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["data"]["updated_at"], created["updated_at"]);
    assert_eq!(app.event_count(Some(id)).await, 1);
}

async fn pagination_is_newest_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut ids = Vec::new();
    for n in 0..30 {
        let created = app
            .create_webhook(webhook_body(&format!("https://example.com/{n}")))
            .await;
        ids.push(created["id"].as_i64().unwrap());
    }
    ids.reverse(); // newest first

    let page = |query: &'static str| {
        let app = &app;
        async move {
            status_and_json(
                app.request(Method::GET, &format!("/api/v1/webhooks{query}"))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let ids_of = |body: &serde_json::Value| -> Vec<i64> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["id"].as_i64().unwrap())
            .collect()
    };

    let (status, first) = page("").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["meta"]["page"], 1);
    assert_eq!(first["meta"]["per_page"], 25);
    assert_eq!(first["meta"]["total"], 30);
    assert_eq!(ids_of(&first), ids[..25]);

    let (_, second) = page("?page=2").await;
    assert_eq!(ids_of(&second), ids[25..]);

    let (_, third) = page("?page=3&per_page=10").await;
    assert_eq!(ids_of(&third), ids[20..30]);

    let (_, beyond) = page("?page=9&per_page=10").await;
    assert_eq!(ids_of(&beyond), Vec::<i64>::new());
    assert_eq!(beyond["meta"]["total"], 30);

    for (query, field) in [
        ("?per_page=101", "per_page"),
        ("?per_page=0", "per_page"),
        ("?page=0", "page"),
        ("?page=abc", "page"),
    ] {
        let (status, body) = page(query).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert!(body["errors"][field].is_array(), "{query}: {body}");
    }
}

async fn event_type_catalog_lists_and_gates_subscriptions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, catalog) = status_and_json(
        app.request(Method::GET, "/api/v1/webhooks/events")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<_> = catalog["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["webhook_config.test"]);

    app.add_event_type("invoice.paid").await;
    let (_, catalog) = status_and_json(
        app.request(Method::GET, "/api/v1/webhooks/events")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(catalog["data"][0]["name"], "invoice.paid");
    assert_eq!(catalog["data"][0]["description"], "test event");

    let created = app
        .create_webhook(json!({"url": "https://example.com/h", "events": ["invoice.paid"]}))
        .await;
    assert_eq!(created["events"], json!(["invoice.paid"]));
}

async fn unknown_routes_and_methods_answer_in_the_error_format(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, body) = status_and_json(
        app.request(Method::GET, "/api/v1/nothing")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("/api/v1/nothing"));
    let (status, body) = status_and_json(
        app.request(Method::PUT, "/api/v1/webhooks")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body["error"].is_string());
}

on_both_backends!(
    create_show_list_update_delete,
    is_active_deactivates_and_reactivates,
    a_patch_that_changes_nothing_records_nothing,
    pagination_is_newest_first,
    event_type_catalog_lists_and_gates_subscriptions,
    unknown_routes_and_methods_answer_in_the_error_format,
);
