//! The API contract: the OpenAPI document is what the code generates (and
//! the committed `docs/src/openapi.json` is a copy of it), it is served with its
//! viewer, and a live webhookd keeps it — schemathesis with all its checks
//! and stateful links finds nothing, on both backends.
use crate::helpers::{schemathesis, Backend, TestApp};
use crate::on_both_backends;
use reqwest::StatusCode;

const COMMITTED: &str = include_str!("../../docs/src/openapi.json");

#[test]
fn the_committed_openapi_json_is_what_the_code_generates() {
    let generated = webhookd::http::openapi::document_json();
    assert!(
        generated == COMMITTED,
        "openapi.json differs from the generated document; \
         run `cargo run -- openapi > docs/src/openapi.json` and commit it"
    );
}

#[test]
fn the_document_is_openapi_3_1_with_every_route_and_the_four_ways_in() {
    let document: serde_json::Value = serde_json::from_str(COMMITTED).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/api/v1/webhooks",
        "/api/v1/webhooks/{id}",
        "/api/v1/webhooks/events",
        "/api/v1/events",
        "/api/v1/webhooks/{id}/deliveries",
        "/api/v1/webhooks/{id}/deliveries/{delivery_id}/retry",
        "/api/v1/webhooks/{id}/history",
        "/api/v1/webhooks/{id}/rotate-secret",
        "/api/v1/webhooks/{id}/test",
        "/configs/webhook",
        "/configs/webhook/{id}",
        "/configs/webhook/{id}/test",
        "/tasks",
        "/tasks/{id}",
        "/key",
        "/keys",
        "/keys/{id}",
        "/organisation",
        "/health/live",
        "/health/ready",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    let schemes = document["components"]["securitySchemes"]
        .as_object()
        .unwrap();
    assert_eq!(schemes.len(), 4, "{schemes:?}");
    // Every secured operation documents the dialect's 401 with its error schema.
    let create = &paths["/api/v1/webhooks"]["post"]["responses"];
    assert_eq!(
        create["401"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/V1Error"
    );
    assert_eq!(
        create["201"]["links"]["getWebhook"]["operationId"],
        "getWebhook"
    );
    let configs = &paths["/configs/webhook"]["post"]["responses"];
    assert_eq!(
        configs["400"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ConfigsError"
    );
}

async fn the_document_and_its_viewer_are_served_without_a_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let served = app
        .client
        .get(format!("{}/api/v1/openapi.json", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.text().await.unwrap(), COMMITTED);

    let page = app
        .client
        .get(format!("{}/docs", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("https://"),
        "the page loads nothing from elsewhere"
    );
    for (asset, content_type) in [
        ("/docs/swagger-ui-bundle.js", "text/javascript"),
        ("/docs/swagger-ui.css", "text/css"),
        ("/docs/init.js", "text/javascript"),
    ] {
        assert!(html.contains(asset), "the page uses {asset}");
        let response = app
            .client
            .get(format!("{}{asset}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(content_type),
            "{asset}"
        );
        assert!(!response.bytes().await.unwrap().is_empty(), "{asset}");
    }
}

/// The server runs in `--dev` mode so that schema-valid URLs (any host,
/// http) are not refused by the address rules; `*` and one catalog type
/// give the event lists something to accept.
async fn schemathesis_finds_no_server_error_and_no_schema_violation(backend: Backend) {
    let _turn = crate::helpers::MACHINE.lock().await;
    let app = TestApp::spawn_dev(backend).await;
    app.add_event_type("invoice.paid").await;
    let document = format!("{}/api/v1/openapi.json", app.address);
    let config =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contract/schemathesis.toml");
    let key = app.key.clone();
    // schemathesis keeps a cache of what it found in its working directory.
    let scratch = tempfile::tempdir().unwrap();
    let workdir = scratch.path().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(schemathesis())
            .current_dir(workdir)
            .arg("--no-color")
            .arg("--config-file")
            .arg(config)
            .args(["run", &document, "--checks", "all"])
            .args(["--max-examples", "25", "--seed", "20261129"])
            .args(["--phases", "examples,coverage,fuzzing,stateful"])
            .env("WEBHOOKD_KEY", key)
            .output()
            .expect("schemathesis runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("Stateful"),
        "the stateful phase ran:\n{stdout}"
    );
    assert!(!stdout.contains("0 generated"), "{stdout}");
}

on_both_backends!(
    the_document_and_its_viewer_are_served_without_a_key,
    schemathesis_finds_no_server_error_and_no_schema_violation,
);
