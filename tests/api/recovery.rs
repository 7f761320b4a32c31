//! Bulk recovery: the failed deliveries of a window go again in the
//! background, and the task tells how many were found, sent and delivered.
use crate::helpers::{status_and_json, Backend, TestApp};
use crate::on_both_backends;
use crate::receiver::{Receiver, Reply};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn recover(app: &TestApp, id: i64, body: Value) -> (u16, Value) {
    let response = app
        .request(Method::POST, &format!("/api/v1/webhooks/{id}/recover"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, json) = status_and_json(response).await;
    (status.as_u16(), json)
}

async fn recovery(app: &TestApp, id: i64, task: i64) -> (u16, Value) {
    let response = app
        .request(
            Method::GET,
            &format!("/api/v1/webhooks/{id}/recover/{task}"),
        )
        .send()
        .await
        .unwrap();
    let (status, json) = status_and_json(response).await;
    (status.as_u16(), json)
}

fn an_hour_ago() -> String {
    (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339()
}

async fn failed_deliveries_of_a_window_are_sent_again(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    app.add_event_type("invoice.paid").await;
    let healthy = Arc::new(AtomicBool::new(false));
    let receiver = Receiver::scripted({
        let healthy = healthy.clone();
        move |_| {
            Reply::Status(if healthy.load(Ordering::SeqCst) {
                200
            } else {
                500
            })
        }
    });
    let created = app
        .subscribe(
            &receiver.url,
            json!(["invoice.paid"]),
            json!({"retry_count": 0}),
        )
        .await;
    let id = created["id"].as_i64().unwrap();
    for n in 0..5 {
        app.publish("invoice.paid", json!({ "n": n })).await;
    }
    app.deliveries_until(id, Duration::from_secs(20), |all| {
        all.len() == 5 && all.iter().all(|d| d["status"] == "failed")
    })
    .await;

    healthy.store(true, Ordering::SeqCst);
    let (status, started) = recover(&app, id, json!({ "since": an_hour_ago() })).await;
    assert_eq!(status, 202, "{started}");
    let task = started["data"]["id"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let done = loop {
        let (status, now) = recovery(&app, id, task).await;
        assert_eq!(status, 200, "{now}");
        if now["data"]["state"] == "completed" && now["data"]["succeeded"] == 5 {
            break now["data"].clone();
        }
        assert!(Instant::now() < deadline, "recovery never finished: {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done["found"], 5, "{done}");
    assert_eq!(done["sent"], 5, "{done}");
    assert_eq!(done["failed"], 0, "{done}");
    assert_eq!(
        receiver.wait_for(10, Duration::from_secs(10)).await.len(),
        10
    );
    // Nothing failed is left in the window: a second recovery finds none.
    let (_, again) = recover(&app, id, json!({ "since": an_hour_ago() })).await;
    let again_id = again["data"]["id"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, now) = recovery(&app, id, again_id).await;
        if now["data"]["state"] == "completed" {
            assert_eq!(now["data"]["found"], 0, "{now}");
            break;
        }
        assert!(Instant::now() < deadline, "{now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Another webhook's path does not show this recovery.
    let other = app
        .subscribe(&receiver.url, json!(["invoice.paid"]), json!({}))
        .await;
    let other_id = other["id"].as_i64().unwrap();
    assert_eq!(recovery(&app, other_id, task).await.0, 404);
}

async fn a_recovery_is_refused_for_a_deactivated_webhook_or_a_bad_window(backend: Backend) {
    let app = TestApp::spawn_dev(backend).await;
    let created = app
        .create_webhook(json!({"url": "http://127.0.0.1:9/h", "events": ["*"]}))
        .await;
    let id = created["id"].as_i64().unwrap();
    let long_ago = (chrono::Utc::now() - chrono::Duration::days(15)).to_rfc3339();
    for (body, field) in [
        (json!({}), "since"),
        (json!({ "since": "yesterday" }), "since"),
        (json!({ "since": long_ago }), "since"),
        (
            json!({ "since": an_hour_ago(), "until": long_ago }),
            "until",
        ),
    ] {
        let (status, error) = recover(&app, id, body).await;
        assert_eq!(status, 422, "{error}");
        assert!(error["errors"][field].is_array(), "{error}");
    }
    app.patch_webhook(id, json!({"is_active": false})).await;
    let (status, error) = recover(&app, id, json!({ "since": an_hour_ago() })).await;
    assert_eq!(status, 409, "{error}");
}

on_both_backends!(
    failed_deliveries_of_a_window_are_sent_again,
    a_recovery_is_refused_for_a_deactivated_webhook_or_a_bad_window,
);
