//! One delivery attempt: build the signed request, send it within the
//! config's timeout, and read what came back.
use super::http_client::literal_address_refusal;
use super::retry::parse_retry_after;
use super::signing::signature_headers;
use super::store::{AttemptRecord, EndpointConfig, PendingDelivery};
use super::wire;
use aggregates::values::UrlPolicy;
use projections::db::now_micros;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use std::time::{Duration, Instant};

/// How much of a response body the attempt log keeps.
pub const KEPT_RESPONSE_BYTES: usize = 4096;

/// What one attempt found out.
#[derive(Debug)]
pub struct AttemptResult {
    pub record: AttemptRecord,
    pub retry_after: Option<Duration>,
    /// The receiver answered 410 Gone.
    pub gone: bool,
}

pub async fn send(
    client: &reqwest::Client,
    config: &EndpointConfig,
    delivery: &PendingDelivery,
    policy: &UrlPolicy,
) -> AttemptResult {
    let attempted_at = now_micros();
    let started = Instant::now();
    // What arrived before the deadline: the status line may come in time
    // and the body drip past it; then the status decides, and the log
    // keeps what of the body came.
    let mut answered: Option<Answer> = None;
    let outcome = match request(client, config, delivery, policy) {
        Ok(request) => {
            // The timeout covers connecting, sending and reading the answer:
            // a receiver that hangs at any point is cut off here.
            let exchange = exchange(client, request, &mut answered);
            match tokio::time::timeout(config.timeout, exchange).await {
                Ok(Err(error)) => Err(error),
                Ok(Ok(())) | Err(_) => answered
                    .take()
                    .ok_or_else(|| format!("timed out after {} s", config.timeout.as_secs())),
            }
        }
        Err(refusal) => Err(refusal),
    };
    let duration_ms = started.elapsed().as_millis() as i64;
    match outcome {
        Ok(answer) => AttemptResult {
            record: AttemptRecord {
                attempted_at,
                duration_ms,
                status_code: Some(answer.status),
                response_body: Some(storable(String::from_utf8_lossy(&answer.body).into_owned())),
                error: None,
                success: (200..300).contains(&answer.status),
            },
            retry_after: answer.retry_after,
            gone: answer.status == 410,
        },
        Err(error) => AttemptResult {
            record: AttemptRecord {
                attempted_at,
                duration_ms,
                status_code: None,
                response_body: None,
                error: Some(storable(error)),
                success: false,
            },
            retry_after: None,
            gone: false,
        },
    }
}

/// A receiver's text as the attempt log can hold it: PostgreSQL text has
/// no NUL, and one NUL would fail the record of every attempt written with
/// it (a hostile receiver could make other tenants' deliveries go again).
fn storable(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

fn request(
    client: &reqwest::Client,
    config: &EndpointConfig,
    delivery: &PendingDelivery,
    policy: &UrlPolicy,
) -> Result<reqwest::Request, String> {
    let event = &delivery.event;
    let url = wire::target_url(config.profile, &config.url, &event.id);
    let url = reqwest::Url::parse(&url).map_err(|e| format!("invalid target URL: {e}"))?;
    if let Some(refusal) = literal_address_refusal(&url, policy) {
        return Err(refusal);
    }
    let body = wire::body(config.profile, event);
    let now = chrono::Utc::now();
    let timestamp = now.timestamp();
    let previous = config.previous_secrets_at(now.timestamp_micros());
    let mut headers = HeaderMap::with_capacity(12);
    for (name, value) in config.headers.iter() {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.insert(name, value);
        }
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in signature_headers(&config.secret, &previous, &event.id, timestamp, &body) {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::try_from(value).map_err(|e| e.to_string())?,
        );
    }
    client
        .post(url)
        .headers(headers)
        .body(body)
        .build()
        .map_err(|e| e.to_string())
}

struct Answer {
    status: u16,
    /// The first [`KEPT_RESPONSE_BYTES`] of the body (what came of them).
    body: Vec<u8>,
    retry_after: Option<Duration>,
}

/// Sends the request and reads the answer into `answered` as it comes, so
/// that a deadline in the middle of the body leaves the status known.
async fn exchange(
    client: &reqwest::Client,
    request: reqwest::Request,
    answered: &mut Option<Answer>,
) -> Result<(), String> {
    let mut response = client.execute(request).await.map_err(describe)?;
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let answer = answered.insert(Answer {
        status: response.status().as_u16(),
        body: Vec::with_capacity(256),
        retry_after,
    });
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = KEPT_RESPONSE_BYTES - answer.body.len();
        answer
            .body
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
        if answer.body.len() >= KEPT_RESPONSE_BYTES {
            break;
        }
    }
    Ok(())
}

/// A transport error with its causes, e.g. "error sending request: … Connection refused".
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
