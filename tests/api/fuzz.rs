//! Hostile input to every route: control characters and NUL in every
//! string field and query parameter, over-long ids, overflowing numbers,
//! deep nesting, invalid UTF-8, repeated and malformed query parameters,
//! wrong methods, unread chunked bodies. No answer is a 5xx, every error
//! is in its dialect's format, and the server stays healthy (a valid
//! request afterwards works, and the read model verifies).
//!
//! The inputs are generated from a fixed seed, so a failure reproduces.
use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(hostile_input_never_gets_a_server_error);

/// Routes with their methods; `{id}` is a live config, `{other}` another
/// organisation's config.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/webhooks"),
    ("POST", "/api/v1/webhooks"),
    ("GET", "/api/v1/webhooks/events"),
    ("GET", "/api/v1/webhooks/{id}"),
    ("PATCH", "/api/v1/webhooks/{id}"),
    ("DELETE", "/api/v1/webhooks/{other}"),
    ("POST", "/api/v1/webhooks/{id}/test"),
    ("POST", "/api/v1/webhooks/{id}/rotate-secret"),
    ("GET", "/api/v1/webhooks/{id}/deliveries"),
    ("POST", "/api/v1/webhooks/{id}/deliveries/1/retry"),
    ("GET", "/api/v1/webhooks/{id}/history"),
    ("POST", "/api/v1/events"),
    ("GET", "/configs/webhook"),
    ("POST", "/configs/webhook"),
    ("GET", "/configs/webhook/{id}"),
    ("POST", "/configs/webhook/{id}"),
    ("POST", "/configs/webhook/{id}/test"),
    ("GET", "/tasks"),
    ("GET", "/tasks/1"),
    ("GET", "/key"),
    ("GET", "/keys"),
    ("POST", "/keys/1"),
    ("GET", "/organisation"),
    ("POST", "/organisation"),
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
];

/// Strings that have broken servers.
const NASTY_STRINGS: &[&str] = &[
    "\u{0}",
    "a\u{0}b",
    "\u{1}\u{7f}\u{1b}[31m",
    "\r\nX-Injected: 1",
    "\u{feff}\u{202e}",
    "😀\u{10ffff}",
    "%00",
    "../../etc/passwd",
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "",
    " ",
];

const NASTY_NUMBERS: &[&str] = &[
    "-1",
    "0",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "1e309",
    "123456789012345678901234567890",
    "0.5",
    "NaN",
    "1e-400",
];

/// Fields any body of either dialect might carry.
const FIELDS: &[&str] = &[
    "url",
    "events",
    "name",
    "headers",
    "is_active",
    "retry_count",
    "timeout_seconds",
    "type",
    "id",
    "data",
    "state",
    "webhook_config",
    "webhook_config_default",
];

const QUERY_PARAMETERS: &[&str] = &[
    "page",
    "per_page",
    "status",
    "as_of",
    "limit",
    "after_id",
    "before_id",
    "state",
    "date_created",
    "date_created__gt",
    "date_created[lte]",
    "api_key",
];

fn nasty_value(rng: &mut StdRng) -> Value {
    match rng.gen_range(0..8) {
        0 => json!(NASTY_STRINGS[rng.gen_range(0..NASTY_STRINGS.len())]),
        1 => serde_json::from_str(&format!(
            "[{}]",
            NASTY_NUMBERS[rng.gen_range(0..NASTY_NUMBERS.len())]
        ))
        .map(|v: Value| v[0].clone())
        .unwrap_or(Value::Null),
        2 => json!("x".repeat(rng.gen_range(1000..70_000))),
        3 => json!([NASTY_STRINGS[rng.gen_range(0..NASTY_STRINGS.len())]]),
        4 => json!({ NASTY_STRINGS[rng.gen_range(0..NASTY_STRINGS.len())]: "v\u{0}" }),
        5 => Value::Null,
        6 => json!(rng.gen::<bool>()),
        _ => json!(format!(
            "https://example.com/{}",
            NASTY_STRINGS[rng.gen_range(0..NASTY_STRINGS.len())]
        )),
    }
}

/// A raw body: JSON with nasty fields, or something that is not JSON at all.
fn nasty_body(rng: &mut StdRng) -> Vec<u8> {
    match rng.gen_range(0..10) {
        0 => b"\xff\xfe{\"url\": \"\xc3\x28\"}".to_vec(),
        1 => format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
        2 => format!(r#"{{"data": {}1{}}}"#, "[".repeat(200), "]".repeat(200)).into_bytes(),
        3 => b"{\"url\": \"https://example.com\", \"url\": 5}".to_vec(),
        4 => b"{\"type\": \"webhook_config.test\", \"data\": {\"n\": 1e999999}}".to_vec(),
        5 => b"not json".to_vec(),
        6 => b"{\"a\":".to_vec(),
        _ => {
            let mut body = serde_json::Map::new();
            for _ in 0..rng.gen_range(1..5) {
                let field = FIELDS[rng.gen_range(0..FIELDS.len())];
                body.insert(field.to_owned(), nasty_value(rng));
            }
            serde_json::to_vec(&Value::Object(body)).unwrap()
        }
    }
}

fn nasty_query(rng: &mut StdRng) -> String {
    let mut parts = Vec::new();
    for _ in 0..rng.gen_range(0..4) {
        let name = QUERY_PARAMETERS[rng.gen_range(0..QUERY_PARAMETERS.len())];
        let value = match rng.gen_range(0..5) {
            0 => "%00".to_owned(),
            1 => "%ff%fe".to_owned(),
            2 => NASTY_NUMBERS[rng.gen_range(0..NASTY_NUMBERS.len())].to_owned(),
            3 => "%".to_owned(),
            _ => url::form_urlencoded::byte_serialize(
                NASTY_STRINGS[rng.gen_range(0..NASTY_STRINGS.len())].as_bytes(),
            )
            .collect(),
        };
        parts.push(format!("{name}={value}"));
        if rng.gen_bool(0.2) {
            parts.push(format!("{name}={value}"));
        }
    }
    if rng.gen_bool(0.1) {
        parts.push("&&==&".to_owned());
    }
    parts.join("&")
}

fn nasty_id(rng: &mut StdRng) -> String {
    match rng.gen_range(0..6) {
        0 => "9".repeat(300),
        1 => "-1".to_owned(),
        2 => "%00".to_owned(),
        3 => "1%2F..%2F2".to_owned(),
        4 => "0x10".to_owned(),
        _ => "18446744073709551616".to_owned(),
    }
}

/// Checks one answer: no 5xx, and an error in the dialect's format.
fn check(method: &str, path: &str, status: StatusCode, body: &str) {
    assert!(
        !status.is_server_error(),
        "{method} {path} answered {status}: {body}"
    );
    if status.is_client_error() && status != StatusCode::REQUEST_TIMEOUT {
        let json: Value = serde_json::from_str(body)
            .unwrap_or_else(|_| panic!("{method} {path} {status}: not JSON: {body:?}"));
        let is_configs = ["/configs", "/tasks", "/key", "/organisation"]
            .iter()
            .any(|p| path.starts_with(p));
        if is_configs {
            assert!(
                json["error"].is_string()
                    && json["message"].is_string()
                    && json["params"].is_object(),
                "{method} {path} {status}: not the configs error format: {body}"
            );
        } else {
            assert!(
                json["error"].is_string(),
                "{method} {path} {status}: {body}"
            );
        }
    }
}

async fn hostile_input_never_gets_a_server_error(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mine = app
        .create_webhook(json!({"url": "https://example.com/h", "events": ["*"]}))
        .await;
    let (_, other_key) = app
        .new_tenant("business", &["webhooks"], "webhooks,publish,audit")
        .await;
    let response = app
        .request_as(&other_key, Method::POST, "/api/v1/webhooks")
        .json(&json!({"url": "https://example.com/o", "events": ["*"]}))
        .send()
        .await
        .unwrap();
    let other: Value = response.json().await.unwrap();
    let (id, other_id) = (mine["id"].to_string(), other["data"]["id"].to_string());

    let mut rng = StdRng::seed_from_u64(0x5eed_f00d);
    let mut requests = 0;
    for round in 0..12 {
        for (method, template) in ROUTES {
            let id_here = if rng.gen_bool(0.2) {
                nasty_id(&mut rng)
            } else {
                id.clone()
            };
            let path = template
                .replace("{id}", &id_here)
                .replace("{other}", &other_id);
            let query = nasty_query(&mut rng);
            let target = if query.is_empty() {
                path.clone()
            } else {
                format!("{path}?{query}")
            };
            // Now and then the wrong method.
            let method = if round % 4 == 3 {
                ["PUT", "PATCH", "DELETE", "OPTIONS", "GET", "POST"][rng.gen_range(0..6)]
            } else {
                method
            };
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let mut request = app.request(method.clone(), &target);
            if method != Method::GET && method != Method::DELETE {
                request = request
                    .header("content-type", "application/json")
                    .body(nasty_body(&mut rng));
            }
            let response = request.send().await.expect("the server answers");
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            check(method.as_str(), &path, status, &body);
            requests += 1;
        }
    }
    // Unread chunked bodies (one never finished) on routes that take none.
    for path in ["/api/v1/webhooks", "/configs/webhook", "/health/live"] {
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             Transfer-Encoding: chunked\r\n\r\n7\r\n{{\"a\":\0}}\r\n",
            app.key
        );
        let mut stream = crate::helpers::raw_connection(&app, &head);
        let (answer, closed) = tokio::task::spawn_blocking(move || {
            crate::helpers::read_until_closed(&mut stream, std::time::Duration::from_secs(5))
        })
        .await
        .unwrap();
        assert!(closed, "still open after the answer: {answer:?}");
        let status: u16 = answer
            .get(9..12)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no answer: {answer:?}"));
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        check("GET", path, StatusCode::from_u16(status).unwrap(), body);
    }
    assert!(requests > 300);

    // Still healthy: a valid request works, nothing stored is corrupt.
    assert_eq!(app.health("ready").await, StatusCode::OK);
    app.create_webhook(json!({"url": "https://example.com/after", "events": ["*"]}))
        .await;
    app.publish("webhook_config.test", json!({"still": "fine"}))
        .await;
    let report = webhookd::audit::verify(&app.db).await.expect("verify");
    assert!(report.drifts.is_empty(), "{:?}", report.drifts);
}
