//! Operational webhooks: an organisation's own URL hears, signed with its
//! own secret, when one of its endpoints is switched off (and why), on
//! again, has its secret rotated, or exhausts a delivery's retries (once a
//! minute per endpoint).
use crate::cluster::signed_by;
use crate::helpers::{status_and_json, Backend, TestApp};
use crate::on_both_backends;
use crate::receiver::{Received, Receiver, Reply};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

async fn patch_organisation(app: &TestApp, body: Value) -> (u16, Value) {
    let (status, json) = status_and_json(
        app.request(Method::PATCH, "/api/v1/organisation")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    (status.as_u16(), json)
}

fn notices<'a>(received: &'a [Received], event_type: &str) -> Vec<&'a Received> {
    received
        .iter()
        .filter(|r| r.json()["type"] == event_type)
        .collect()
}

async fn an_organisation_hears_about_its_endpoints_on_its_operational_webhook(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    app.add_event_type("order.placed").await;
    let ops = Receiver::ok();

    let (status, body) = patch_organisation(&app, json!({"operational_webhook_url": 7})).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["errors"]["operational_webhook_url"].is_array(),
        "{body}"
    );
    let (status, body) =
        patch_organisation(&app, json!({"operational_webhook_url": ops.url})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["operational_webhook_url"], ops.url.as_str());
    let ops_secret = body["data"]["operational_webhook_secret"]
        .as_str()
        .expect("a secret")
        .to_owned();
    assert!(ops_secret.starts_with("whsec_"));
    // The change is in the admin log (with the URL, never the secret).
    let logged = app
        .strings_sql("SELECT details FROM admin_log WHERE action = 'OperationalWebhookChanged'")
        .await;
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(logged[0].contains(&ops.url) && !logged[0].contains("whsec_"));
    // The operational webhook is not one of the organisation's webhooks.
    let (_, list) = status_and_json(
        app.request(Method::GET, "/api/v1/webhooks")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["meta"]["total"], 0, "{list}");

    // A delivery that fails after its retries, twice: told once.
    let failing = Receiver::scripted(|_| Reply::Status(500));
    let exhausting = app
        .subscribe(
            &failing.url,
            json!(["order.placed"]),
            json!({"retry_count": 0}),
        )
        .await;
    let exhausting_id = exhausting["id"].as_i64().unwrap();
    app.publish("order.placed", json!({"n": 1})).await;
    app.publish("order.placed", json!({"n": 2})).await;
    app.deliveries_until(exhausting_id, Duration::from_secs(20), |d| {
        d.len() == 2 && d.iter().all(|d| d["status"] == "failed")
    })
    .await;

    // A receiver that answers 410 Gone: its endpoint is switched off.
    let gone = Receiver::scripted(|_| Reply::Status(410));
    let leaving = app
        .subscribe(&gone.url, json!(["order.placed"]), json!({}))
        .await;
    let leaving_id = leaving["id"].as_i64().unwrap();
    app.publish("order.placed", json!({"n": 3})).await;
    let disabled = ops
        .wait_until(Duration::from_secs(20), |r| {
            !notices(r, "endpoint.disabled").is_empty()
        })
        .await;
    let disabled = notices(&disabled, "endpoint.disabled")[0].json();
    assert_eq!(disabled["data"]["endpoint_id"], leaving_id);
    assert_eq!(disabled["data"]["reason"], "gone");
    assert_eq!(disabled["data"]["endpoint_url"], gone.url.as_str());

    // Switched on again by its owner; its secret rotated.
    app.patch_webhook(leaving_id, json!({"is_active": true}))
        .await;
    let (status, _) = status_and_json(
        app.request(
            Method::POST,
            &format!("/api/v1/webhooks/{exhausting_id}/rotate-secret"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    // Notices are published in the order they happened, one after the
    // other: once the rotation's has arrived, every earlier one is stored
    // and handed over.
    let received = ops
        .wait_until(Duration::from_secs(20), |r| {
            !notices(r, "endpoint.enabled").is_empty()
                && !notices(r, "endpoint.secret_rotated").is_empty()
        })
        .await;
    let enabled = notices(&received, "endpoint.enabled")[0].json();
    assert_eq!(enabled["data"]["endpoint_id"], leaving_id);
    let rotated = notices(&received, "endpoint.secret_rotated")[0].json();
    assert_eq!(rotated["data"]["endpoint_id"], exhausting_id);
    assert!(rotated["data"]["previous_secret_expires_at"].is_string());
    let received = ops
        .wait_until(Duration::from_secs(20), |r| {
            !notices(r, "delivery.exhausted").is_empty()
        })
        .await;
    let exhausted = notices(&received, "delivery.exhausted");
    assert_eq!(exhausted.len(), 1, "one delivery.exhausted a minute");
    let stored = app
        .count_sql("SELECT COUNT(*) FROM published_events WHERE event_type = 'delivery.exhausted'")
        .await;
    assert_eq!(stored, 1, "one delivery.exhausted a minute");
    let exhausted = exhausted[0].json();
    assert_eq!(exhausted["data"]["endpoint_id"], exhausting_id);
    assert_eq!(exhausted["data"]["last_status_code"], 500);
    assert_eq!(exhausted["data"]["attempts"], 1);
    assert!(exhausted["data"]["event_id"].is_string());

    // Every notice is signed with the operational webhook's own secret,
    // and with no endpoint's.
    let endpoint_secret = app.webhook(exhausting_id).await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    for notice in ops.received() {
        assert!(signed_by(&notice, &ops_secret), "signed with its secret");
        assert!(!signed_by(&notice, &endpoint_secret));
    }

    // Removed: the organisation shows none.
    let (status, body) = patch_organisation(&app, json!({"operational_webhook_url": null})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["operational_webhook_url"], Value::Null);
    assert_eq!(body["data"]["operational_webhook_secret"], Value::Null);
}

/// Another organisation does not see (or hear) the first one's.
async fn an_operational_webhook_belongs_to_its_organisation(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    let ops = Receiver::ok();
    let (status, _) = patch_organisation(&app, json!({"operational_webhook_url": ops.url})).await;
    assert_eq!(status, 200);
    let (other_org, other_key) = app.new_tenant("business", &["webhooks"], "webhooks").await;
    let (status, body) = status_and_json(
        app.request_as(&other_key, Method::GET, "/api/v1/organisation")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["id"], other_org);
    assert_eq!(body["data"]["operational_webhook_url"], Value::Null);
    let (status, body) = status_and_json(
        app.request_as(&other_key, Method::PATCH, "/api/v1/organisation")
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 422, "{body}");
}

on_both_backends!(
    an_organisation_hears_about_its_endpoints_on_its_operational_webhook,
    an_operational_webhook_belongs_to_its_organisation,
);
