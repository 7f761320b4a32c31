//! Hostile input and faults: one request's bad data never fails another's,
//! payloads arrive as accepted, slow clients are cut off, a database outage
//! answers 503 at once and re-sends nothing.
use crate::helpers::{raw_connection, read_until_closed, status_and_json, Backend, TestApp};
use crate::on_both_backends;
use crate::receiver::{Receiver, Reply};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

on_both_backends!(
    control_characters_are_refused_naming_the_field,
    bad_publishes_fail_alone_among_valid_ones,
    event_data_is_delivered_exactly_as_accepted,
    every_documented_route_answers_405_to_other_methods,
    a_history_page_past_the_end_is_empty,
    a_status_that_arrived_in_time_is_logged_though_the_body_drips,
    slow_bodies_are_cut_off_while_other_requests_go_on,
    an_unread_body_closes_the_connection_after_the_answer,
    a_config_row_that_does_not_decode_is_an_error,
    a_publisher_that_hangs_up_and_retries_gets_each_event_delivered_once,
);

async fn control_characters_are_refused_naming_the_field(backend: Backend) {
    let app = TestApp::spawn_dev(backend).await;
    let publish = |body: Value| {
        app.request(Method::POST, "/api/v1/events")
            .json(&body)
            .send()
    };
    for (body, field) in [
        (
            json!({"type": "webhook_config.test", "id": "a\u{0}b"}),
            "id",
        ),
        (
            json!({"type": "webhook_config.test", "id": "line\nbreak"}),
            "id",
        ),
        (json!({"type": "webhook\u{0}config.test"}), "type"),
    ] {
        let (status, json) = status_and_json(publish(body).await.unwrap()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
        assert!(json["errors"][field].is_array(), "{field}: {json}");
    }
    let create = |body: Value| {
        app.request(Method::POST, "/api/v1/webhooks")
            .json(&body)
            .send()
    };
    let events = json!(["webhook_config.test"]);
    for (body, field) in [
        (
            json!({"url": "https://example.com/\u{0}", "events": events}),
            "url",
        ),
        (
            json!({"url": "https://example.com/", "events": events, "name": "a\u{0}"}),
            "name",
        ),
        (
            json!({"url": "https://example.com/", "events": events, "headers": {"x-a": "1\u{0}"}}),
            "headers",
        ),
        (
            json!({"url": "https://example.com/", "events": ["a\u{0}.b"]}),
            "events",
        ),
    ] {
        let (status, json) = status_and_json(create(body).await.unwrap()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
        assert!(json["errors"][field].is_array(), "{field}: {json}");
    }
    for path in [
        "/api/v1/webhooks?page=%00",
        "/api/v1/webhooks?per_page=1%00",
        "/api/v1/webhooks/1/deliveries?status=pending%00",
    ] {
        let response = app.request(Method::GET, path).send().await.unwrap();
        let (status, json) = status_and_json(response).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {json}");
        assert_eq!(json["errors"].as_object().unwrap().len(), 1, "{json}");
    }
    for (path, parameter) in [
        ("/configs/webhook?state=%00", "state"),
        ("/configs/webhook?after_id=1%00", "after_id"),
        ("/tasks?date_created=%00", "date_created"),
    ] {
        let response = app.request(Method::GET, path).send().await.unwrap();
        let (status, json) = status_and_json(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {json}");
        assert_eq!(json["error"], "invalid-parameter", "{json}");
        assert!(json["params"][parameter].is_string(), "{json}");
    }
    // A malformed key is a key that fits no caller: 401 in the dialect's
    // format, not a parameter error.
    for (path, header) in [
        ("/api/v1/webhooks?api_key=whk_%00", None),
        ("/configs/webhook?api_key=%01%02", None),
        ("/api/v1/webhooks", Some(&b"whk_\xffbad"[..])),
        ("/configs/webhook", Some(&b"\x80"[..])),
    ] {
        let mut request = app.client.get(app.url(path));
        if let Some(value) = header {
            let value = reqwest::header::HeaderValue::from_bytes(value).unwrap();
            request = request.header("X-API-Key", value);
        }
        let (status, json) = status_and_json(request.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {json}");
        assert_ne!(json["error"], "invalid-parameter", "{json}");
    }
    let response = app
        .request(Method::POST, "/configs/webhook")
        .json(&json!({"url": "https://example.com/\u{0}"}))
        .send()
        .await
        .unwrap();
    let (status, json) = status_and_json(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    assert_eq!(json["error"], "invalid-parameter", "{json}");
    // Nothing of it was stored.
    assert_eq!(app.event_count(None).await, 0);
}

/// Publishes with a NUL in their idempotency id mixed into valid ones, all
/// at once (so they share group-commit batches): every valid publish is
/// accepted and delivered, every bad one refused with a 422.
async fn bad_publishes_fail_alone_among_valid_ones(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    let receiver = Receiver::ok();
    app.subscribe(&receiver.url, json!(["*"]), json!({})).await;
    let (valid, bad) = (300usize, 60usize);
    let mut requests = Vec::new();
    for i in 0..valid + bad {
        let id = if i % 6 == 5 {
            format!("bad-{i}\u{0}")
        } else {
            format!("good-{i}")
        };
        let request = app
            .request(Method::POST, "/api/v1/events")
            .json(&json!({"type": "webhook_config.test", "id": id, "data": {"i": i}}));
        requests.push(tokio::spawn(async move {
            let response = request.send().await.expect("request");
            (id, response.status())
        }));
    }
    let mut accepted = HashSet::new();
    for request in requests {
        let (id, status) = request.await.unwrap();
        if id.starts_with("bad") {
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{id:?}");
        } else {
            assert_eq!(status, StatusCode::ACCEPTED, "{id}");
            accepted.insert(id);
        }
    }
    assert_eq!(accepted.len(), valid);
    let received = receiver.wait_for(valid, Duration::from_secs(30)).await;
    let delivered: HashSet<i64> = received
        .iter()
        .map(|r| r.json()["data"]["i"].as_i64().unwrap())
        .collect();
    assert_eq!(delivered.len(), valid);
    assert!(delivered.iter().all(|i| i % 6 != 5));
}

async fn event_data_is_delivered_exactly_as_accepted(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    let receiver = Receiver::ok();
    app.subscribe(&receiver.url, json!(["*"]), json!({})).await;
    let data = r#"{"big":123456789012345678901234567890,"negative":-98765432109876543210987654321,"decimal":0.1000000000000000055511151231257827021181583404541015625,"exp":1.5e+400,"nul":"a\u0000b","nested":[1,{"x":18446744073709551616}]}"#;
    let body = format!(r#"{{"type": "webhook_config.test", "data": {data}}}"#);
    let response = app
        .request(Method::POST, "/api/v1/events")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, json) = status_and_json(response).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{json}");
    let received = receiver.wait_for(1, Duration::from_secs(10)).await;
    let raw = String::from_utf8(received[0].body.clone()).unwrap();
    assert!(raw.contains(&format!(r#""data":{data}"#)), "{raw}");
}

async fn every_documented_route_answers_405_to_other_methods(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let config = app
        .create_webhook(json!({"url": "https://example.com/h", "events": ["webhook_config.test"]}))
        .await;
    let id = config["id"].as_i64().unwrap();
    for (method, path, allow) in [
        (Method::GET, "/api/v1/events".to_owned(), "POST"),
        (Method::POST, "/api/v1/webhooks/events".to_owned(), "GET"),
        (Method::PUT, "/api/v1/webhooks".to_owned(), "GET, POST"),
        (
            Method::PUT,
            format!("/api/v1/webhooks/{id}"),
            "GET, PATCH, DELETE",
        ),
        (Method::GET, format!("/api/v1/webhooks/{id}/test"), "POST"),
        (
            Method::GET,
            format!("/api/v1/webhooks/{id}/rotate-secret"),
            "POST",
        ),
        (
            Method::POST,
            format!("/api/v1/webhooks/{id}/history"),
            "GET",
        ),
        (
            Method::POST,
            format!("/api/v1/webhooks/{id}/deliveries"),
            "GET",
        ),
        (
            Method::GET,
            format!("/api/v1/webhooks/{id}/deliveries/1/retry"),
            "POST",
        ),
        (Method::POST, "/api/v1/openapi.json".to_owned(), "GET"),
        (Method::DELETE, "/health/ready".to_owned(), "GET"),
    ] {
        let response = app.request(method.clone(), &path).send().await.unwrap();
        // RFC 9110: a 405 names the methods the resource has.
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
        let (status, json) = status_and_json(response).await;
        assert_eq!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {json}"
        );
        assert!(json["error"].is_string(), "{json}");
    }
    for (method, path, allow) in [
        (Method::DELETE, "/configs/webhook", "GET, POST"),
        (Method::PATCH, "/tasks", "GET"),
        (Method::POST, "/key", "GET"),
    ] {
        let response = app.request(method.clone(), path).send().await.unwrap();
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
        let (status, json) = status_and_json(response).await;
        assert_eq!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {json}"
        );
        assert_eq!(json["error"], "method-not-allowed", "{json}");
    }
}

async fn a_history_page_past_the_end_is_empty(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let config = app
        .create_webhook(json!({"url": "https://example.com/h", "events": ["webhook_config.test"]}))
        .await;
    let id = config["id"].as_i64().unwrap();
    for page in ["4611686018427387905", "9223372036854775807", "2"] {
        let path = format!("/api/v1/webhooks/{id}/history?page={page}&per_page=4");
        let response = app.request(Method::GET, &path).send().await.unwrap();
        let (status, json) = status_and_json(response).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        assert_eq!(json["data"], json!([]), "page {page}: {json}");
        assert_eq!(json["meta"]["total"], 1, "{json}");
    }
    let path = format!("/api/v1/webhooks/{id}/history?page=9223372036854775808");
    let response = app.request(Method::GET, &path).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

/// The receiver answers 200 at once and then drips its body past the
/// config's timeout: the status line came in time, so the attempt is a
/// success with status 200 (the log keeps what of the body came).
async fn a_status_that_arrived_in_time_is_logged_though_the_body_drips(backend: Backend) {
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    let receiver = Receiver::scripted(|_| Reply::Drip(200));
    let config = app
        .subscribe(&receiver.url, json!(["*"]), json!({"timeout_seconds": 1}))
        .await;
    let id = config["id"].as_i64().unwrap();
    app.publish("webhook_config.test", json!({})).await;
    let deliveries = app
        .deliveries_until(id, Duration::from_secs(10), |d| {
            d.first().is_some_and(|d| d["status"] != "pending")
        })
        .await;
    let attempt = &deliveries[0]["attempt_log"][0];
    assert_eq!(deliveries[0]["status"], "succeeded", "{deliveries:#?}");
    assert_eq!(attempt["status_code"], 200, "{attempt}");
    assert!(
        attempt["response_body"].as_str().unwrap().starts_with('.'),
        "{attempt}"
    );
    assert_eq!(receiver.received().len(), 1);
}

/// Fifty connections send a body one byte a second (below the minimum
/// rate) or stop half-way: each gets a 408 and is closed by the deadline,
/// and a normal request answers at once throughout.
async fn slow_bodies_are_cut_off_while_other_requests_go_on(backend: Backend) {
    let app = TestApp::spawn_configured(backend, |settings| {
        settings.body_deadline.timeout = Duration::from_secs(8);
    })
    .await;
    let head = format!(
        "POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{\"type\":",
        app.key
    );
    let started = Instant::now();
    let slow: Vec<_> = (0..50)
        .map(|i| {
            let mut stream = raw_connection(&app, &head);
            std::thread::spawn(move || {
                // Half of them trickle a byte a second, half stop sending.
                let trickle = i % 2 == 0;
                stream
                    .set_read_timeout(Some(Duration::from_millis(1000)))
                    .unwrap();
                let mut got = Vec::new();
                let mut buffer = [0u8; 1024];
                for _ in 0..30 {
                    if trickle && stream.write_all(b" ").is_err() {
                        break;
                    }
                    match stream.read(&mut buffer) {
                        Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
                        Ok(n) => got.extend_from_slice(&buffer[..n]),
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) => {}
                        Err(_) => return (String::from_utf8_lossy(&got).into_owned(), true),
                    }
                }
                (String::from_utf8_lossy(&got).into_owned(), false)
            })
        })
        .collect();
    // Meanwhile the API answers at once.
    for _ in 0..5 {
        let asked = Instant::now();
        let response = app
            .request(Method::GET, "/api/v1/webhooks")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "{:?}",
            asked.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for handle in slow {
        let (answer, closed) = tokio::task::spawn_blocking(move || handle.join().unwrap())
            .await
            .unwrap();
        assert!(closed, "a slow connection stayed open: {answer:?}");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    }
    // Closed by the deadline (8 s), not later (plus slack for a loaded machine).
    assert!(
        started.elapsed() < Duration::from_secs(14),
        "{:?}",
        started.elapsed()
    );
}

/// A route that does not read its body answers, then closes the
/// connection, whether the body was complete or never ends.
async fn an_unread_body_closes_the_connection_after_the_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for head in [
        // Complete chunked body, Connection: close.
        "GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        // A chunked body that never ends.
        "GET /health/live HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        // A body shorter than announced, on a route that refuses before reading.
        "POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{",
    ] {
        let mut stream = raw_connection(&app, head);
        let (answer, closed) =
            tokio::task::spawn_blocking(move || read_until_closed(&mut stream, Duration::from_secs(5)))
                .await
                .unwrap();
        assert!(closed, "still open after the answer: {answer:?}");
        assert!(answer.starts_with("HTTP/1.1 "), "{answer:?}");
    }
}

/// PostgreSQL goes away (through a proxy only this server uses) for a few
/// seconds: every route that needs it answers 503 with `Retry-After`
/// within 2 s, ready says not ready, and an attempt answered during the
/// outage is recorded when the database is back, not sent again.
#[actix_web::test]
async fn a_database_outage_answers_503_fast_and_sends_nothing_twice() {
    let (app, proxy) = TestApp::spawn_behind_proxy(|_| {}).await;
    let receiver = Receiver::scripted(|_| Reply::AfterRelease(200));
    let config = app.subscribe(&receiver.url, json!(["*"]), json!({})).await;
    let id = config["id"].as_i64().unwrap();
    app.publish("webhook_config.test", json!({"n": 1})).await;
    receiver.wait_for(1, Duration::from_secs(10)).await;

    proxy.cut();
    // The receiver answers while the database is away.
    receiver.release();
    let v1_key = app.key.clone();
    let checks: [(Method, String, Option<Value>); 5] = [
        (
            Method::POST,
            "/api/v1/events".into(),
            Some(json!({"type": "webhook_config.test"})),
        ),
        (Method::GET, "/api/v1/webhooks".into(), None),
        (
            Method::GET,
            format!("/api/v1/webhooks/{id}/deliveries"),
            None,
        ),
        (
            Method::POST,
            "/api/v1/webhooks".into(),
            Some(json!({"url": "https://example.com/x", "events": ["*"]})),
        ),
        (Method::GET, "/configs/webhook".into(), None),
    ];
    for round in 0..3 {
        for (method, path, body) in &checks {
            let mut request = app.request_as(&v1_key, method.clone(), path);
            if let Some(body) = body {
                request = request.json(body);
            }
            let asked = Instant::now();
            let response = request.send().await.unwrap();
            let took = asked.elapsed();
            let retry_after = response.headers().get("retry-after").cloned();
            let (status, json) = status_and_json(response).await;
            assert_eq!(
                status,
                StatusCode::SERVICE_UNAVAILABLE,
                "round {round} {method} {path}: {json}"
            );
            assert!(retry_after.is_some(), "{path}");
            assert!(
                took < Duration::from_secs(2),
                "{method} {path} took {took:?}"
            );
            if path.starts_with("/configs") {
                assert_eq!(json["error"], "service-unavailable", "{json}");
            } else {
                assert!(json["error"].is_string(), "{json}");
            }
        }
    }
    assert_eq!(app.health("ready").await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(app.health("live").await, StatusCode::OK);

    proxy.restore();
    // Service resumes without a restart; the answered attempt is recorded
    // as it was answered, and the receiver saw the event once.
    let deliveries = app
        .deliveries_until(id, Duration::from_secs(20), |d| {
            d.len() == 1 && d[0]["status"] == "succeeded"
        })
        .await;
    assert_eq!(deliveries[0]["attempts"], 1, "{deliveries:#?}");
    assert_eq!(app.health("ready").await, StatusCode::OK);
    app.publish("webhook_config.test", json!({"n": 2})).await;
    let received = receiver.wait_for(2, Duration::from_secs(10)).await;
    let ids: Vec<&str> = received.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(received.len(), 2, "sent again: {ids:?}");
    assert_ne!(ids[0], ids[1]);
}

/// State and profile are enums in the row: a value that is neither is an
/// error (logged, a 500 for a request), never read as some default — an
/// unreadable row once made its pending deliveries fail as "deleted".
async fn a_config_row_that_does_not_decode_is_an_error(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let config = app
        .create_webhook(json!({"url": "https://example.com/h", "events": ["webhook_config.test"]}))
        .await;
    let id = config["id"].as_i64().unwrap();
    let organisation = 1;
    for (column, bad) in [
        ("state", "bogus"),
        ("profile", "v9"),
        ("events", "not json"),
        ("headers", "[1, 2]"),
    ] {
        app.execute_sql(&format!(
            "UPDATE webhook_configs SET {column} = '{bad}' WHERE id = {id}"
        ))
        .await;
        let error = projections::webhook_configs::find(&app.db, organisation, id)
            .await
            .expect_err("an unreadable row is an error");
        // sqlx 0.8.6 names the column, not the value (its `try_from`
        // loses the conversion's message).
        assert!(
            error.to_string().contains(&format!("column {column}")),
            "{column}: {error}"
        );
        assert!(
            projections::webhook_configs::find_any(&app.db, id)
                .await
                .is_err(),
            "{column}"
        );
        app.execute_sql(&format!(
            "UPDATE webhook_configs SET state = 'new', profile = 'v1', \
             events = '[\"webhook_config.test\"]', headers = '{{}}' WHERE id = {id}"
        ))
        .await;
    }
}

/// Publishers that hang up as soon as their request is out (the handler
/// may be dropped before its commit, during it or after it), then publish
/// again with the same idempotency `id`, as a client that gave up does:
/// each `id` is answered with one event id — 202 when the retry stored it,
/// 200 `duplicate` when the first had — and that event arrives exactly
/// once, whether or not anyone waited for the first answer.
async fn a_publisher_that_hangs_up_and_retries_gets_each_event_delivered_once(backend: Backend) {
    const PUBLISHES: usize = 200;
    let app = TestApp::spawn_for_delivery(backend, |_| {}).await;
    let receiver = Receiver::ok();
    app.subscribe(&receiver.url, json!(["*"]), json!({})).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let key = app.key.clone();
    let body = |i: usize| json!({"type": "webhook_config.test", "id": format!("hung-up-{i}"), "data": {"i": i}});
    let bodies: Vec<String> = (0..PUBLISHES).map(|i| body(i).to_string()).collect();
    tokio::task::spawn_blocking(move || {
        for body in bodies {
            let mut stream = std::net::TcpStream::connect(&address).expect("connect");
            let request = format!(
                "POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(request.as_bytes()).expect("send");
            // Hung up without reading a byte of the answer.
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    })
    .await
    .unwrap();
    let retries: Vec<_> = (0..PUBLISHES)
        .map(|i| {
            let request = app.request(Method::POST, "/api/v1/events").json(&body(i));
            tokio::spawn(
                async move { status_and_json(request.send().await.expect("request")).await },
            )
        })
        .collect();
    let mut event_of = Vec::new();
    let (mut stored_by_retry, mut stored_before) = (0, 0);
    for retry in retries {
        let (status, answer) = retry.await.unwrap();
        match status {
            StatusCode::ACCEPTED => stored_by_retry += 1,
            StatusCode::OK if answer["data"]["duplicate"] == true => stored_before += 1,
            _ => panic!("a retry answered {status}: {answer}"),
        }
        event_of.push(
            answer["data"]["id"]
                .as_str()
                .expect("an event id")
                .to_owned(),
        );
    }
    eprintln!(
        "hung up, then retried ({backend:?}): {stored_before} stored by the publish that hung \
         up, {stored_by_retry} by its retry"
    );
    // Every event once (the receiver answers every attempt 200, so nothing
    // is sent again), and nothing else.
    receiver.wait_for(PUBLISHES, Duration::from_secs(30)).await;
    app.until_nothing_pending(Duration::from_secs(30)).await;
    let received = receiver.received();
    assert_eq!(received.len(), PUBLISHES, "each event exactly once");
    for request in received {
        let i = request.json()["data"]["i"].as_u64().expect("i") as usize;
        assert_eq!(request.header("webhook-id"), event_of[i], "publish {i}");
    }
}
