//! The console in a real browser: `tests/console/browser_test.py` drives
//! Debian's Chromium (Playwright) against a live webhookd on each backend —
//! sign in, a field error, create, a delivery and its attempt, retry,
//! rotate, history and `as_of`, an XSS name, CSRF, a portal link, log out.
//! The SQLite run saves the README's screenshots (`docs/src/console/`).
use crate::helpers::{browser_python, status_and_json, Backend, TestApp};
use crate::on_both_backends;
use crate::receiver::{Receiver, Reply};
use reqwest::Method;
use serde_json::json;
use std::path::Path;

const CHROMIUM: &str = "/usr/bin/chromium";

async fn the_console_works_in_a_real_browser(backend: Backend) {
    let _turn = crate::helpers::MACHINE.lock().await;
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
    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/src/console");
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

/// Signs in without a browser; returns the session cookie and the CSRF
/// token of its forms.
async fn sign_in(app: &TestApp) -> (String, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The sign-in form's CSRF token is in its cookie and in the form.
    let form = client.get(app.url("/console/login")).send().await.unwrap();
    let login_cookie = form
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("the sign-in form's cookie")
        .to_owned();
    let token = login_cookie.split_once('=').unwrap().1.to_owned();
    let forged = client
        .post(app.url("/console/login"))
        .form(&[("key", app.key.as_str()), ("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403, "a sign-in without the form's cookie");
    let response = client
        .post(app.url("/console/login"))
        .header("cookie", &login_cookie)
        .form(&[("key", app.key.as_str()), ("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let page = client
        .get(app.url("/console/endpoints/new"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF field")
        .to_owned();
    (cookie, csrf)
}

/// Hostile form input gets a page that names the field (422) or refuses
/// the request (4xx), never a 500 — also NUL bytes, which PostgreSQL text
/// cannot hold.
async fn hostile_console_input_is_refused_with_a_4xx(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    let (cookie, csrf) = sign_in(&app).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |path: &str, form: Vec<(&str, String)>| {
        client
            .post(app.url(path))
            .header("cookie", &cookie)
            .form(&form)
            .send()
    };
    let good = |field: &str, value: &str| {
        let mut form = vec![
            ("csrf", csrf.clone()),
            ("url", "http://127.0.0.1:9/h".to_owned()),
            ("events", "*".to_owned()),
            ("name", "n".to_owned()),
            ("retry_count", "3".to_owned()),
            ("timeout_seconds", "30".to_owned()),
            ("rate_limit", String::new()),
            ("ordering", "none".to_owned()),
        ];
        for entry in &mut form {
            if entry.0 == field {
                entry.1 = value.to_owned();
            }
        }
        form
    };
    for (field, value) in [
        ("url", "http://127.0.0.1:9/h\0"),
        ("name", "a\0b"),
        ("events", "a\0b"),
        ("retry_count", "99999999999999999999"),
        ("timeout_seconds", "-1"),
        ("rate_limit", "\0"),
        ("ordering", "lifo\0"),
    ] {
        let response = post("/console/endpoints", good(field, value))
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{field}={value:?}");
        let page = response.text().await.unwrap();
        assert!(
            page.contains(&format!("data-field=\"{field}\"")),
            "{field}: {page}"
        );
    }
    // The good form works (and the refused ones stored nothing).
    let response = post("/console/endpoints", good("name", "fine"))
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let endpoint = response.headers()["location"]
        .to_str()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    // A recovery window goes through the API's rules: within 14 days.
    let local = |ago: chrono::Duration| {
        (chrono::Utc::now() - ago)
            .format("%Y-%m-%dT%H:%M")
            .to_string()
    };
    for (since, status) in [
        (local(chrono::Duration::hours(1)), 303),
        (local(chrono::Duration::days(20)), 422),
    ] {
        let form = vec![("csrf", csrf.clone()), ("since", since.clone())];
        let answer = post(&format!("{endpoint}/recover"), form).await.unwrap();
        assert_eq!(answer.status(), status, "since {since}");
    }
    let (_, list) = status_and_json(
        app.request(Method::GET, "/api/v1/webhooks")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["meta"]["total"], 1, "{list}");

    let anonymous = reqwest::Client::new();
    for (path, form) in [
        ("/console/login", vec![("key", "whk_\0".to_owned())]),
        ("/console/endpoints/1\0/test", vec![("csrf", csrf.clone())]),
        (
            "/console/endpoints/1/recover",
            vec![("csrf", csrf.clone()), ("since", "\0".into())],
        ),
    ] {
        let status = post(path, form).await.unwrap().status();
        assert!(
            status.is_client_error() || status.is_redirection(),
            "{path}: {status}"
        );
    }
    for path in [
        "/console/portal/%00",
        "/console/endpoints?page=%00",
        "/console/endpoints/1/history?as_of=%00",
    ] {
        let status = anonymous.get(app.url(path)).send().await.unwrap().status();
        assert!(status.as_u16() < 500, "{path}: {status}");
    }
}

/// A session is checked on every request: when its organisation loses the
/// `webhooks` flag, its pages answer 403 (as the API does), and when its
/// key is revoked it is sent to sign in again.
async fn a_session_ends_with_its_organisations_access_or_its_key(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    let (cookie, _) = sign_in(&app).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let endpoints = || {
        client
            .get(app.url("/console/endpoints"))
            .header("cookie", &cookie)
            .send()
    };
    assert_eq!(endpoints().await.unwrap().status(), 200);
    app.execute_sql("UPDATE organisations SET features = '[]'")
        .await;
    let refused = endpoints().await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("webhooks"));
    app.execute_sql("UPDATE organisations SET features = '[\"webhooks\"]'")
        .await;
    assert_eq!(endpoints().await.unwrap().status(), 200);
    // Handing out a portal link is in the admin log, without its token.
    let (status, link) = status_and_json(
        app.request(Method::POST, "/api/v1/portal-links")
            .json(&json!({"ttl": "10m"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{link}");
    let token = link["data"]["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let logged = app
        .strings_sql(
            "SELECT target || ' ' || details FROM admin_log WHERE action = 'PortalLinkCreated'",
        )
        .await;
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(logged[0].contains(link["data"]["id"].as_str().unwrap()));
    assert!(!logged[0].contains(&token), "the token is in the admin log");
    app.execute_sql("UPDATE api_keys SET revoked_at = 1").await;
    let signed_out = endpoints().await.unwrap();
    assert_eq!(signed_out.status(), 303);
    assert_eq!(signed_out.headers()["location"], "/console/login");
}

on_both_backends!(
    the_console_works_in_a_real_browser,
    hostile_console_input_is_refused_with_a_4xx,
    a_session_ends_with_its_organisations_access_or_its_key,
);
