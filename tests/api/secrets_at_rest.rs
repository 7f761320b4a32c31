//! Secrets at rest: a database dump alone reveals no endpoint secret, a
//! deleted config's secret cannot be recovered even from its log, secrets
//! stored before a key was configured stay readable, and
//! `webhookd secrets rotate-key` re-seals everything under a new key.
use crate::cli::{stdout_of, Served};
use crate::helpers::{status_and_json, Backend, TestApp, TestDatabase};
use crate::on_both_backends;
use projections::vault::{MasterKey, SHREDDED_SECRET};
use reqwest::Method;
use serde_json::json;
use std::process::Command;

/// Every text in the database where a secret could be: the event log, the
/// read model's secret columns and the wrapped data keys.
async fn dump(app: &TestApp) -> String {
    let mut all = Vec::new();
    for sql in [
        "SELECT CAST(payload AS TEXT) FROM events",
        "SELECT secret FROM webhook_configs",
        "SELECT previous_secrets FROM webhook_configs",
        "SELECT wrapped FROM config_keys",
    ] {
        all.extend(app.strings_sql(sql).await);
    }
    all.join("\n")
}

/// The part of a `whsec_` secret that is the key.
fn key_part(secret: &str) -> &str {
    secret.trim_start_matches("whsec_")
}

async fn keyed_app(backend: Backend) -> TestApp {
    TestApp::spawn_configured(backend, |settings| {
        // SQLite would make its own key file; PostgreSQL needs one given.
        settings.encryption.key = Some(MasterKey::generate());
    })
    .await
}

async fn a_database_dump_reveals_no_endpoint_secret(backend: Backend) {
    let app = keyed_app(backend).await;
    let created = app
        .create_webhook(json!({"url": "https://example.com/h", "events": ["*"]}))
        .await;
    let id = created["id"].as_i64().unwrap();
    let first = created["secret"].as_str().unwrap().to_owned();
    let (status, rotated) = status_and_json(
        app.request(
            Method::POST,
            &format!("/api/v1/webhooks/{id}/rotate-secret"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let second = rotated["data"]["secret"].as_str().unwrap().to_owned();

    let dump = dump(&app).await;
    assert!(dump.contains("wd1:"), "the log holds sealed secrets");
    assert!(dump.contains("wk1:"), "the read model holds sealed secrets");
    for secret in [&first, &second] {
        assert!(!dump.contains(key_part(secret)), "a secret is in the dump");
    }
    // Opened wherever webhookd needs them.
    assert_eq!(app.webhook(id).await["secret"], second.as_str());
}

async fn a_deleted_configs_secret_cannot_be_recovered_from_its_log(backend: Backend) {
    let app = keyed_app(backend).await;
    let created = app
        .create_webhook(json!({"url": "https://example.com/h", "events": ["*"]}))
        .await;
    let id = created["id"].as_i64().unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let keys = app
        .count_sql(&format!(
            "SELECT COUNT(*) FROM config_keys WHERE aggregate_id = '{id}'"
        ))
        .await;
    assert_eq!(keys, 1, "a config has its data key");
    app.delete_webhook(id).await;

    let keys = app
        .count_sql(&format!(
            "SELECT COUNT(*) FROM config_keys WHERE aggregate_id = '{id}'"
        ))
        .await;
    assert_eq!(keys, 0, "a deleted config's data key is destroyed");
    // The events stay, sealed; read back, the secret is gone for good.
    let events = projections::event_log::load_aggregate(&app.db, "WebhookConfig", &id.to_string())
        .await
        .unwrap();
    assert!(events.iter().any(|e| e.event_type == "Deleted"));
    let created_event = &events[0].payload["Created"];
    assert_eq!(created_event["secret"], SHREDDED_SECRET);
    assert!(!dump(&app).await.contains(key_part(&secret)));
}

on_both_backends!(
    a_database_dump_reveals_no_endpoint_secret,
    a_deleted_configs_secret_cannot_be_recovered_from_its_log,
);

fn served(database: &TestDatabase, env: &[(&str, &str)]) -> Served {
    let served = Served::start_with_env(database, &["--dev"], env);
    served.wait_until_listening();
    served
}

async fn get_secret(served: &Served, key: &str, id: i64) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/webhooks/{id}", served.base()))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

/// PostgreSQL without a key stores secrets in plaintext and says so at
/// every start; started later with a key, it still reads them, and seals
/// what it writes. Then the key is rotated: `secrets rotate-key` with the
/// new key and the old one as previous, after which the new key alone
/// opens everything.
#[actix_web::test]
async fn plaintext_stays_readable_and_a_key_rotation_reseals_everything() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let unkeyed = Served::start_with(&database, &["--dev"]);
    let key = unkeyed.stdout_line(|line| line.starts_with("whk_"));
    let warning = unkeyed.stderr_line(|line| line.contains("unencrypted"));
    assert!(warning.contains("WEBHOOKD_ENCRYPTION_KEY"), "{warning}");
    let plain = unkeyed.subscribe(&key, "http://127.0.0.1:9/h").await;
    let plain_id = plain["id"].as_i64().unwrap();
    let plain_secret = plain["secret"].as_str().unwrap().to_owned();
    unkeyed.stop();

    let (old, new) = (MasterKey::generate(), MasterKey::generate());
    let keyed = served(&database, &[("WEBHOOKD_ENCRYPTION_KEY", &old)]);
    let (status, shown) = get_secret(&keyed, &key, plain_id).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(
        shown["data"]["secret"],
        plain_secret.as_str(),
        "plaintext is read as it is"
    );
    let sealed = keyed.subscribe(&key, "http://127.0.0.1:9/h").await;
    let sealed_id = sealed["id"].as_i64().unwrap();
    let sealed_secret = sealed["secret"].as_str().unwrap().to_owned();
    keyed.stop();

    let rotation = Command::new(env!("CARGO_BIN_EXE_webhookd"))
        .args(["secrets", "rotate-key"])
        .env("DATABASE_URL", &database.url)
        .env("WEBHOOKD_ENCRYPTION_KEY", &new)
        .env("WEBHOOKD_PREVIOUS_ENCRYPTION_KEYS", &old)
        .output()
        .unwrap();
    let said = stdout_of(&rotation);
    assert!(
        said.contains("re-wrapped 1 data keys and re-sealed the secrets of 2 configs"),
        "{said}"
    );

    let rotated = served(&database, &[("WEBHOOKD_ENCRYPTION_KEY", &new)]);
    for (id, secret) in [(plain_id, &plain_secret), (sealed_id, &sealed_secret)] {
        let (status, shown) = get_secret(&rotated, &key, id).await;
        assert_eq!(status, 200, "{shown}");
        assert_eq!(shown["data"]["secret"], secret.as_str());
    }
    rotated.stop();
    // The old key alone no longer opens the read model.
    let old_only = served(&database, &[("WEBHOOKD_ENCRYPTION_KEY", &old)]);
    let (status, _) = get_secret(&old_only, &key, sealed_id).await;
    assert_eq!(status, 500, "sealed with a key the node does not have");
    old_only.stop();
}

/// Without a configured key, SQLite keeps a generated one beside the
/// database, and the same key is used at the next start.
#[actix_web::test]
async fn sqlite_keeps_a_generated_key_beside_the_database() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let first = Served::start_with(&database, &["--dev"]);
    let key = first.stdout_line(|line| line.starts_with("whk_"));
    first.wait_until_listening();
    let created = first.subscribe(&key, "http://127.0.0.1:9/h").await;
    first.stop();
    let path = database.url.trim_start_matches("sqlite://").to_owned() + ".key";
    let text = std::fs::read_to_string(&path).expect("a key file beside the database");
    assert!(MasterKey::parse(&text).is_ok());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let second = served(&database, &[]);
    let (status, shown) = get_secret(&second, &key, created["id"].as_i64().unwrap()).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["data"]["secret"], created["secret"]);
    second.stop();
}
