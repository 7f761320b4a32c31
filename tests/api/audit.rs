//! The event log as audit trail: `webhookd audit`, `--verify`, the history
//! API, `as_of`, rebuilds, crash repair and old event versions.
use crate::cli::{webhookd, Served};
use crate::helpers::{status_and_json, webhook_body, Backend, TestApp};
use crate::on_both_backends;
use crate::receiver::Receiver;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

async fn send(app: &TestApp, method: Method, path: &str, body: Value) -> Value {
    let response = app.request(method, path).json(&body).send().await.unwrap();
    let (status, json) = status_and_json(response).await;
    assert!(status.is_success(), "{path}: {json}");
    json
}

/// Create, patch, test, deactivate, reactivate, rotate, delete.
async fn a_whole_life(app: &TestApp) -> (i64, Vec<String>) {
    let receiver = Receiver::ok();
    let created = app
        .create_webhook(json!({"url": receiver.url, "events": ["*"], "name": "life"}))
        .await;
    let id = created["id"].as_i64().unwrap();
    let path = format!("/api/v1/webhooks/{id}");
    let mut secrets = vec![created["secret"].as_str().unwrap().to_owned()];
    send(
        app,
        Method::PATCH,
        &path,
        json!({"name": "renamed", "retry_count": 1}),
    )
    .await;
    send(app, Method::POST, &format!("{path}/test"), json!({})).await;
    receiver.wait_for(1, Duration::from_secs(20)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while app.webhook(id).await["state"] != "valid" {
        assert!(
            std::time::Instant::now() < deadline,
            "the test was never recorded"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    send(app, Method::PATCH, &path, json!({"is_active": false})).await;
    send(app, Method::PATCH, &path, json!({"is_active": true})).await;
    let rotated = send(
        app,
        Method::POST,
        &format!("{path}/rotate-secret"),
        json!({}),
    )
    .await;
    secrets.push(rotated["data"]["secret"].as_str().unwrap().to_owned());
    assert_ne!(secrets[0], secrets[1]);
    let response = app.request(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    (id, secrets)
}

fn assert_no_secret(output: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(!output.contains(secret.as_str()));
        assert!(
            !output.contains(&secret["whsec_".len()..]),
            "a secret's key leaked"
        );
    }
    assert!(
        output
            .replace("whsec_[redacted]", "")
            .find("whsec_")
            .is_none(),
        "{output}"
    );
}

async fn audit_replays_a_whole_life_without_secrets(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    let (id, secrets) = a_whole_life(&app).await;
    let expected = [
        "Created",
        "SettingsUpdated",
        "Tested",
        "Deactivated",
        "Reactivated",
        "SecretRotated",
        "Deleted",
    ];

    let output = webhookd(
        &app.database,
        &["audit", "--webhook", &id.to_string(), "--json"],
    );
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_no_secret(&stdout, &secrets);
    let records: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let types: Vec<&str> = records
        .iter()
        .map(|r| r["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, expected);
    for (n, record) in records.iter().enumerate() {
        assert_eq!(record["sequence"], n as i64 + 1);
        assert_eq!(record["aggregate_id"], id.to_string());
        assert!(record["position"].as_i64().unwrap() > 0);
        assert!(chrono::DateTime::parse_from_rfc3339(record["time"].as_str().unwrap()).is_ok());
        assert!(record["event_version"].is_string());
    }
    assert_eq!(records[0]["metadata"]["actor"], "key:1");
    assert!(records[0]["metadata"]["request_id"]
        .as_str()
        .unwrap()
        .starts_with("req_"));
    assert_eq!(
        records[2]["metadata"]["actor"], "system",
        "the test result is webhookd's own"
    );
    assert_eq!(
        records[0]["payload"]["Created"]["secret"],
        "whsec_[redacted]"
    );

    let table = webhookd(&app.database, &["audit", "--webhook", &id.to_string()]);
    let table = String::from_utf8(table.stdout).unwrap();
    assert_no_secret(&table, &secrets);
    assert!(table.starts_with("POSITION"));
    for event in expected {
        assert!(table.contains(event), "{event} missing from\n{table}");
    }

    // Filters: by type, by organisation, by time.
    let only = webhookd(&app.database, &["audit", "--json", "--type", "Deactivated"]);
    assert_eq!(String::from_utf8(only.stdout).unwrap().lines().count(), 1);
    let other_org = webhookd(&app.database, &["audit", "--json", "--org", "999"]);
    assert_eq!(
        String::from_utf8(other_org.stdout).unwrap().lines().count(),
        0
    );
    // The organisation's config events, and beside them its admin log:
    // the bootstrap's organisation and key.
    let mine = webhookd(&app.database, &["audit", "--json", "--org", "1"]);
    let mine: Vec<Value> = String::from_utf8(mine.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds = |kind: &str| {
        mine.iter()
            .filter(|r| r["aggregate_type"] == kind)
            .map(|r| r["event_type"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(kinds("WebhookConfig"), expected);
    assert_eq!(kinds("Admin"), ["OrganisationCreated", "KeyCreated"]);
    let future = webhookd(&app.database, &["audit", "--json", "--since", "2999-01-01"]);
    assert_eq!(String::from_utf8(future.stdout).unwrap().lines().count(), 0);
    let past = webhookd(&app.database, &["audit", "--json", "--until", "2000-01-01"]);
    assert_eq!(String::from_utf8(past.stdout).unwrap().lines().count(), 0);
}

async fn verify_passes_then_names_a_corrupted_config(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let created = app
            .create_webhook(webhook_body(&format!("https://example.com/{n}")))
            .await;
        ids.push(created["id"].as_i64().unwrap());
    }
    send(
        &app,
        Method::PATCH,
        &format!("/api/v1/webhooks/{}", ids[1]),
        json!({"name": "x"}),
    )
    .await;
    let clean = webhookd(&app.database, &["audit", "--verify"]);
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );

    app.execute_sql(&format!(
        "UPDATE webhook_configs SET state = 'valid', url = 'https://evil.example/' WHERE id = {}",
        ids[2]
    ))
    .await;
    let dirty = webhookd(&app.database, &["audit", "--verify"]);
    assert_eq!(dirty.status.code(), Some(1));
    let report = String::from_utf8(dirty.stdout).unwrap();
    assert!(
        report.contains(&format!("webhook config {}: state", ids[2])),
        "{report}"
    );
    assert!(
        report.contains(&format!("webhook config {}: url", ids[2])),
        "{report}"
    );
    assert!(
        !report.contains(&format!("webhook config {}:", ids[0])),
        "{report}"
    );
}

async fn history_and_as_of_fold_the_log_exactly(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app
        .create_webhook(json!({"url": "https://example.com/h", "events": ["*"], "name": "v1"}))
        .await;
    let id = created["id"].as_i64().unwrap();
    let path = format!("/api/v1/webhooks/{id}");
    send(&app, Method::PATCH, &path, json!({"name": "v2"})).await;
    send(
        &app,
        Method::PATCH,
        &path,
        json!({"url": "https://example.org/v3"}),
    )
    .await;
    send(&app, Method::PATCH, &path, json!({"is_active": false})).await;

    let history = send(&app, Method::GET, &format!("{path}/history"), json!(null)).await;
    assert_eq!(history["meta"]["total"], 4);
    let events = history["data"].as_array().unwrap();
    assert_eq!(
        events[0]["payload"]["Created"]["secret"],
        "whsec_[redacted]"
    );
    assert_eq!(events[1]["actor"], "key:1");
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = events
        .iter()
        .map(|e| chrono::DateTime::parse_from_rfc3339(e["time"].as_str().unwrap()).unwrap())
        .collect();
    let page = send(
        &app,
        Method::GET,
        &format!("{path}/history?page=2&per_page=3"),
        json!(null),
    )
    .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);

    let expected = [
        ("v1", "https://example.com/h", "new"),
        ("v2", "https://example.com/h", "new"),
        ("v2", "https://example.org/v3", "new"),
        ("v2", "https://example.org/v3", "deactivated"),
    ];
    for (n, (name, url, state)) in expected.iter().enumerate() {
        // At the event itself, and between it and the next one.
        let mut instants = vec![times[n]];
        if n + 1 < times.len() {
            instants.push(times[n] + (times[n + 1] - times[n]) / 2);
        }
        for at in instants {
            let at = at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let shown = send(
                &app,
                Method::GET,
                &format!("{path}?as_of={}", at.replace('+', "%2B")),
                json!(null),
            )
            .await;
            let data = &shown["data"];
            assert_eq!(
                (
                    data["name"].as_str().unwrap(),
                    data["url"].as_str().unwrap(),
                    data["state"].as_str().unwrap()
                ),
                (*name, *url, *state),
                "as_of {at}"
            );
        }
    }
    let before = (times[0] - chrono::Duration::microseconds(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let response = app
        .request(Method::GET, &format!("{path}?as_of={before}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = app
        .request(Method::GET, &format!("{path}?as_of=yesterday"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let (_, no_audit) = app.new_tenant("business", &["webhooks"], "webhooks").await;
    let response = app
        .request_as(&no_audit, Method::GET, &format!("{path}/history"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

async fn read_model_rows(app: &TestApp) -> Vec<Value> {
    let sql = "SELECT id, url, name, events, headers, retry_count, timeout_seconds, state, deleted, version, created_at, updated_at FROM webhook_configs ORDER BY id";
    projections::on_pool!(&app.db, |pool| {
        use sqlx::Row;
        sqlx::query(sql)
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                json!([
                    r.get::<i64, _>(0),
                    r.get::<String, _>(1),
                    r.get::<String, _>(2),
                    r.get::<String, _>(3),
                    r.get::<String, _>(4),
                    r.get::<i64, _>(5),
                    r.get::<i64, _>(6),
                    r.get::<String, _>(7),
                    r.get::<bool, _>(8),
                    r.get::<i64, _>(9),
                    r.get::<i64, _>(10),
                    r.get::<i64, _>(11)
                ])
            })
            .collect()
    })
}

async fn a_rebuild_under_read_load_changes_nothing_and_fails_no_read(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut ids = Vec::new();
    for n in 0..40 {
        let created = app
            .create_webhook(webhook_body(&format!("https://example.com/{n}")))
            .await;
        let id = created["id"].as_i64().unwrap();
        send(
            &app,
            Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            json!({"name": format!("n{n}")}),
        )
        .await;
        ids.push(id);
    }
    let response = app
        .request(Method::DELETE, &format!("/api/v1/webhooks/{}", ids[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let before = read_model_rows(&app).await;

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (reads, failures) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut readers = Vec::new();
    for reader in 0..4 {
        let (client, key, base) = (app.client.clone(), app.key.clone(), app.address.clone());
        let (stop, reads, failures, id) = (
            stop.clone(),
            reads.clone(),
            failures.clone(),
            ids[1 + reader],
        );
        readers.push(actix_web::rt::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                for path in [
                    "/api/v1/webhooks?per_page=100".to_owned(),
                    format!("/api/v1/webhooks/{id}"),
                ] {
                    let ok = match client
                        .get(format!("{base}{path}"))
                        .bearer_auth(&key)
                        .send()
                        .await
                    {
                        Ok(response) if response.status() == 200 => {
                            let body: Value = response.json().await.unwrap_or_default();
                            // A list mid-rebuild must never be empty or short.
                            !path.contains("per_page") || body["meta"]["total"] == 39
                        }
                        _ => false,
                    };
                    reads.fetch_add(1, Ordering::Relaxed);
                    if !ok {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let database = app.database.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_webhookd"))
            .args(["projections", "rebuild"])
            .env("DATABASE_URL", database)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("events/s") && stdout.contains("40 configs"),
        "{stdout}"
    );
    assert!(reads.load(Ordering::Relaxed) > 0);
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "reads failed during the rebuild"
    );
    assert_eq!(read_model_rows(&app).await, before);
    let status = webhookd(&app.database, &["projections", "status"]);
    assert!(String::from_utf8_lossy(&status.stdout).contains("0 rows behind"));
}

async fn a_rebuild_restores_a_lost_read_model(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.add_event_type("invoice.paid").await;
    for n in 0..3 {
        let body = json!({"url": format!("https://example.com/{n}"), "events": ["invoice.paid"]});
        app.create_webhook(body).await;
    }
    let before = read_model_rows(&app).await;
    app.execute_sql("DELETE FROM webhook_config_subscriptions")
        .await;
    app.execute_sql("DELETE FROM webhook_configs").await;
    let output = webhookd(
        &app.database,
        &["projections", "rebuild", "--projection", "webhook_configs"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(read_model_rows(&app).await, before);
    // The subscription index is back: routing finds all three again.
    assert_eq!(
        app.publish("invoice.paid", json!({})).await["deliveries"],
        3
    );
    let unknown = webhookd(
        &app.database,
        &["projections", "rebuild", "--projection", "nope"],
    );
    assert!(!unknown.status.success());
}

async fn a_crash_between_commit_and_projection_is_repaired_at_start(backend: Backend) {
    let database = crate::helpers::TestDatabase::create(backend).await;
    let first = Served::start_with(&database, &[]);
    let key = first.stdout_line(|l| l.starts_with("whk_"));
    first.wait_until_listening();
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("http://127.0.0.1:{}/api/v1/webhooks", first.port))
        .bearer_auth(&key)
        .json(&webhook_body("https://example.com/h"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["data"]["id"].as_i64().unwrap();
    first.kill();

    let faulty = Served::start_with_env(
        &database,
        &[],
        &[("WEBHOOKD_FAULT_ABORT_BEFORE_PROJECTION", "1")],
    );
    faulty.wait_until_listening();
    let patched = client
        .patch(format!(
            "http://127.0.0.1:{}/api/v1/webhooks/{id}",
            faulty.port
        ))
        .bearer_auth(&key)
        .json(&json!({"name": "committed"}))
        .send()
        .await;
    assert!(patched.is_err(), "the server died mid-request");
    faulty.kill();
    let status = webhookd(&database, &["projections", "status"]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("1 rows behind"),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );

    let restarted = Served::start_with(&database, &[]);
    restarted.wait_until_listening();
    let shown: Value = client
        .get(format!(
            "http://127.0.0.1:{}/api/v1/webhooks/{id}",
            restarted.port
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["data"]["name"], "committed");
    assert!(webhookd(&database, &["audit", "--verify"]).status.success());
}

async fn a_created_event_of_an_older_version_still_loads(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // What a build before profiles stored: Created 1.0, no "profile".
    let payload = json!({"Created": {
        "id": 900, "organisation": 1, "url": "https://example.com/old", "name": "old",
        "events": ["*"], "headers": {}, "retry_count": 3, "timeout_seconds": 30,
        "secret": "whsec_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
    }});
    let metadata = json!({"actor": "key:1"});
    let sql = format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('WebhookConfig', '900', 1, 'Created', '1.0', '{payload}', '{metadata}')"
    );
    app.execute_sql(&sql).await;
    let restarted = app.restart().await;
    let get = |path: String| {
        app.client
            .get(format!("{restarted}{path}"))
            .bearer_auth(&app.key)
            .send()
    };
    let (status, shown) = status_and_json(get("/api/v1/webhooks/900".into()).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["data"]["name"], "old");
    let patched = app
        .client
        .patch(format!("{restarted}/api/v1/webhooks/900"))
        .bearer_auth(&app.key)
        .json(&json!({"name": "upcast"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        patched.status(),
        StatusCode::OK,
        "cqrs-es loads the 1.0 event too"
    );
    assert!(webhookd(&app.database, &["audit", "--verify"])
        .status
        .success());
}

on_both_backends!(
    audit_replays_a_whole_life_without_secrets,
    verify_passes_then_names_a_corrupted_config,
    history_and_as_of_fold_the_log_exactly,
    a_rebuild_under_read_load_changes_nothing_and_fails_no_read,
    a_crash_between_commit_and_projection_is_repaired_at_start,
    a_rebuild_restores_a_lost_read_model,
    a_created_event_of_an_older_version_still_loads,
);
