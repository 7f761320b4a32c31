//! One delivery attempt: build the signed request, send it within the
//! config's timeout, and read what came back.
//!
//! On a cluster, one node at a time may send to an endpoint: the holder of
//! its partition's lease. The actor checks the lease when it starts an
//! attempt, but between that and the bytes reaching the socket lie task
//! hand-offs, a connection from the pool, perhaps a connect — and a node
//! that freezes there (a pause, a stolen CPU) would send after thawing,
//! beside the lease's new holder. So the body checks the lease again when
//! hyper asks for it ([`LeasedBody`]): after the head is written into the
//! connection's buffer and before anything is flushed to the socket, in
//! the same poll. A lease found gone fails the request unsent (nothing of
//! it reaches the receiver) and the attempt is not recorded
//! ([`AttemptResult::not_sent`]): the delivery stays pending for the new
//! holder.
use super::http_client::literal_address_refusal;
use super::retry::parse_retry_after;
use super::settings::Clock;
use super::signing::signature_headers;
use super::wire;
use aggregates::values::UrlPolicy;
use aggregates::webhook_config::Profile;
use projections::db::now_micros;
use projections::deliveries::{AttemptRecord, EndpointConfig, PendingDelivery};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use std::sync::Arc;
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
    /// Nothing was sent: this node's lease on the endpoint ran out before
    /// the request left (see the module's docs). Not an attempt.
    pub not_sent: bool,
}

/// Whether this node may still send to the endpoint, asked at the last
/// moment before the request's bytes leave.
pub type SendPermit = Arc<dyn Fn() -> bool + Send + Sync>;

pub async fn send(
    client: &reqwest::Client,
    config: &EndpointConfig,
    delivery: &PendingDelivery,
    policy: &UrlPolicy,
    clock: &Clock,
    permit: SendPermit,
) -> AttemptResult {
    let attempted_at = now_micros();
    let started = Instant::now();
    // What arrived before the deadline: the status line may come in time
    // and the body drip past it; then the status decides, and the log
    // keeps what of the body came.
    let mut answered: Option<Answer> = None;
    let outcome = match request(config, delivery, policy, clock, permit) {
        Ok(request) => {
            // The timeout covers connecting, sending and reading the answer:
            // a receiver that hangs at any point is cut off here.
            let exchange = exchange(client, request, &mut answered);
            match tokio::time::timeout(config.timeout, exchange).await {
                Ok(Err(failed)) => Err(failed),
                Ok(Ok(())) | Err(_) => answered.take().ok_or_else(|| {
                    Failed::Error(format!("timed out after {} s", config.timeout.as_secs()))
                }),
            }
        }
        Err(refusal) => Err(Failed::Error(refusal)),
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
            not_sent: false,
        },
        Err(failed) => {
            let (error, not_sent) = match failed {
                Failed::NotSent => (LeaseLost.to_string(), true),
                Failed::Error(error) => (error, false),
            };
            AttemptResult {
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
                not_sent,
            }
        }
    }
}

/// Why an exchange brought no answer.
#[derive(Debug, PartialEq)]
enum Failed {
    /// The lease ran out before the request left ([`LeasedBody`]).
    NotSent,
    Error(String),
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
    config: &EndpointConfig,
    delivery: &PendingDelivery,
    policy: &UrlPolicy,
    clock: &Clock,
    permit: SendPermit,
) -> Result<reqwest::Request, String> {
    let event = &delivery.event;
    let url = wire::target(config.profile, &config.parsed_url, &event.id)
        .map_err(|e| format!("invalid target URL: {e}"))?;
    if let Some(refusal) = literal_address_refusal(&url, policy) {
        return Err(refusal);
    }
    let body = wire::body(config.profile, event);
    // The cluster's clock (the database's), not this machine's: a node
    // whose clock is off still signs with a timestamp receivers accept.
    let now = clock.now_micros();
    let timestamp = now.div_euclid(1_000_000);
    let previous = config.previous_secrets_at(now);
    // Room for every header the request will carry: the config's, the
    // content type, six signature headers and the three `svix-*` twins, and
    // reqwest's two defaults (user agent, accept) — the map never regrows.
    let mut headers = HeaderMap::with_capacity(config.headers.iter().count() + 12);
    for (name, value) in config.headers.iter() {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.insert(name, value);
        }
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let message_id = wire::message_id(config.profile, &event.id);
    for (name, value) in signature_headers(&config.secret, &previous, &message_id, timestamp, &body)
    {
        let value = HeaderValue::try_from(value).map_err(|e| e.to_string())?;
        // Svix's receivers read `svix-*`; the values are the Standard
        // Webhooks ones (the `svix` library verifies either set).
        if config.profile == Profile::Svix {
            if let Some(svix) = wire::svix_header(name) {
                headers.insert(HeaderName::from_static(svix), value.clone());
            }
        }
        headers.insert(HeaderName::from_static(name), value);
    }
    // Built whole rather than through `RequestBuilder`, whose `headers`
    // copies the map entry by entry into an empty one that grows as it goes.
    let mut request = reqwest::Request::new(reqwest::Method::POST, url);
    *request.headers_mut() = headers;
    *request.body_mut() = Some(reqwest::Body::wrap(LeasedBody {
        data: Some(bytes::Bytes::from(body)),
        permit,
    }));
    Ok(request)
}

/// A request body of known length that asks its [`SendPermit`] when hyper
/// polls it — once, for its only frame — and fails instead of yielding
/// the bytes when the permit is gone. hyper then drops the connection with
/// the request's head still in its buffer, unsent.
struct LeasedBody {
    data: Option<bytes::Bytes>,
    permit: SendPermit,
}

#[derive(Debug)]
struct LeaseLost;

impl std::fmt::Display for LeaseLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not sent: this node's lease on the endpoint ran out")
    }
}

impl std::error::Error for LeaseLost {}

impl http_body::Body for LeasedBody {
    type Data = bytes::Bytes;
    type Error = LeaseLost;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, LeaseLost>>> {
        let this = self.get_mut();
        std::task::Poll::Ready(this.data.take().map(|data| {
            if (this.permit)() {
                Ok(http_body::Frame::data(data))
            } else {
                Err(LeaseLost)
            }
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
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
) -> Result<(), Failed> {
    let mut response = client.execute(request).await.map_err(|error| {
        if caused_by_lease_lost(&error) {
            Failed::NotSent
        } else {
            Failed::Error(describe(error))
        }
    })?;
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

fn caused_by_lease_lost(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if cause.is::<LeaseLost>() {
            return true;
        }
        source = cause.source();
    }
    false
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// What a receiver sees of one request whose permit says `permit`.
    async fn received_with(permit: bool) -> (Vec<u8>, Result<(), Failed>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let reading = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut buffer = [0u8; 4096];
            // Until the head and body are in, or the client closed.
            loop {
                match tokio::time::timeout(Duration::from_millis(500), socket.read(&mut buffer))
                    .await
                {
                    Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                    Ok(Ok(n)) => seen.extend_from_slice(&buffer[..n]),
                }
                if seen.ends_with(b"{\"x\":1}") {
                    break;
                }
            }
            seen
        });
        let client = reqwest::Client::new();
        let request = client
            .post(format!("http://{address}/hook"))
            .body(reqwest::Body::wrap(LeasedBody {
                data: Some(bytes::Bytes::from_static(b"{\"x\":1}")),
                permit: Arc::new(move || permit),
            }))
            .build()
            .unwrap();
        let mut answered = None;
        let sent = tokio::time::timeout(
            Duration::from_millis(300),
            exchange(&client, request, &mut answered),
        )
        .await
        .unwrap_or(Ok(()));
        (reading.await.unwrap(), sent)
    }

    #[tokio::test]
    async fn a_request_whose_lease_ran_out_leaves_nothing_on_the_wire() {
        let (seen, sent) = received_with(false).await;
        assert!(
            seen.is_empty(),
            "the receiver saw {:?}",
            String::from_utf8_lossy(&seen)
        );
        assert_eq!(sent, Err(Failed::NotSent));
    }

    #[tokio::test]
    async fn a_request_with_its_lease_goes_out_whole_with_its_length() {
        let (seen, _) = received_with(true).await;
        let text = String::from_utf8_lossy(&seen).to_lowercase();
        assert!(text.starts_with("post /hook http/1.1"), "{text}");
        assert!(text.contains("content-length: 7"), "{text}");
        assert!(text.ends_with("{\"x\":1}"), "{text}");
    }
}
