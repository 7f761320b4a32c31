//! Event-type schemas: a publish whose `data` does not satisfy its type's
//! JSON Schema is refused with the schema's errors; the catalog lists it.
use crate::cli::webhookd;
use crate::helpers::{status_and_json, Backend, TestApp};
use crate::on_both_backends;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const SCHEMA: &str = r#"{
  "type": "object",
  "required": ["invoice", "amount"],
  "properties": {
    "invoice": {"type": "string"},
    "amount": {"type": "integer", "minimum": 0}
  }
}"#;

async fn publish(app: &TestApp, data: Value) -> (u16, Value) {
    let response = app
        .request(Method::POST, "/api/v1/events")
        .json(&json!({"type": "invoice.paid", "data": data}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    (status.as_u16(), body)
}

async fn a_publish_must_satisfy_its_types_schema(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_event_type("invoice.paid").await;
    assert_eq!(
        publish(&app, json!({"anything": true})).await.0,
        202,
        "no schema yet"
    );

    // Set by the operator's CLI (another process) from a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("invoice.paid.json");
    std::fs::write(&file, SCHEMA).unwrap();
    let output = webhookd(
        &app.database,
        &[
            "event-types",
            "add",
            "invoice.paid",
            "--schema",
            file.to_str().unwrap(),
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // A running server applies it within its second of freshness.
    let deadline = Instant::now() + Duration::from_secs(5);
    let refused = loop {
        let (status, body) = publish(&app, json!({"invoice": "in_1", "amount": -5})).await;
        if status == 422 {
            break body;
        }
        assert!(Instant::now() < deadline, "the schema was never applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let errors = refused["errors"]["data"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().unwrap().starts_with("/amount")),
        "{refused}"
    );
    let (status, body) = publish(&app, json!({"invoice": "in_1"})).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["errors"]["data"][0]
            .as_str()
            .unwrap()
            .contains("amount"),
        "{body}"
    );
    assert_eq!(
        publish(&app, json!({"invoice": "in_1", "amount": 5}))
            .await
            .0,
        202
    );

    // The catalog shows the schema, for integrators to generate types from.
    let catalog = app
        .request(Method::GET, "/api/v1/webhooks/events")
        .send()
        .await
        .unwrap();
    let (_, catalog) = status_and_json(catalog).await;
    let paid = catalog["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "invoice.paid")
        .unwrap()
        .clone();
    assert_eq!(
        paid["schema"],
        serde_json::from_str::<Value>(SCHEMA).unwrap()
    );

    // Not a schema: refused, nothing changes.
    std::fs::write(&file, r#"{"type": "no such type"}"#).unwrap();
    let output = webhookd(
        &app.database,
        &[
            "event-types",
            "add",
            "invoice.paid",
            "--schema",
            file.to_str().unwrap(),
        ],
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a valid JSON Schema"));
}

on_both_backends!(a_publish_must_satisfy_its_types_schema);
