//! The console in a real browser: `tests/console/browser_test.py` drives
//! Debian's Chromium (Playwright) against a live webhookd on each backend —
//! sign in, a field error, create, a delivery and its attempt, retry,
//! rotate, history and `as_of`, an XSS name, CSRF, a portal link, log out.
//! The SQLite run saves the README's screenshots (`docs/console/`).
use crate::helpers::{browser_python, status_and_json, Backend, TestApp};
use crate::on_both_backends;
use crate::receiver::{Receiver, Reply};
use reqwest::Method;
use serde_json::json;
use std::path::Path;

const CHROMIUM: &str = "/usr/bin/chromium";

async fn the_console_works_in_a_real_browser(backend: Backend) {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
    );
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    app.add_event_type("order.placed").await;
    // Fails the first request, accepts the rest.
    let receiver = Receiver::scripted(|n| {
        if n == 0 {
            Reply::Status(500)
        } else {
            Reply::Status(200)
        }
    });
    let (_, key_b) = app.new_tenant("business", &["webhooks"], "webhooks").await;
    let b_endpoint = "Tenant B endpoint";
    let (status, body) = status_and_json(
        app.request_as(&key_b, Method::POST, "/api/v1/webhooks")
            .json(&json!({"url": "http://127.0.0.1:9/b", "events": ["*"], "name": b_endpoint}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console/browser_test.py");
    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/console");
    let mut command = std::process::Command::new(browser_python());
    command
        .arg(&script)
        .env("WEBHOOKD_URL", &app.address)
        .env("KEY_A", &app.key)
        .env("KEY_B", &key_b)
        .env("B_ENDPOINT", b_endpoint)
        .env("RECEIVER_URL", &receiver.url)
        .env("CHROMIUM", CHROMIUM);
    if backend == Backend::Sqlite {
        std::fs::create_dir_all(&screenshots).unwrap();
        command.env("SCREENSHOTS", &screenshots);
    }
    // Off the runtime's thread: the server under test runs on it.
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("the browser test runs");
    assert!(
        output.status.success(),
        "browser checks failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

on_both_backends!(the_console_works_in_a_real_browser);
