//! Request deadlines: a client must send its whole body within
//! `--request-timeout` of its headers, and at `--min-body-rate` bytes a
//! second once a short grace has passed. actix-web times out the headers
//! (408 after `client_request_timeout`) but not the body: without this, a
//! connection that dribbles a body (or never ends a chunked one) holds a
//! socket and a file descriptor for as long as the client likes, and a
//! thousand of them take the server down.
//!
//! The body is wrapped in a stream that fails with `TimedOut` when either
//! limit is broken; the handler reading it answers 408 (see
//! [`super::body::BodyError::TimedOut`]). After the answer, a connection
//! whose body was not read to its end is closed: its next bytes would be the
//! rest of a body nobody reads, not a request. (actix closes such a
//! connection only while the body's stream is alive; once a handler drops
//! it, actix reads a chunked body to its end however long that takes — so
//! the stream is kept alive here until the answer has been sent.)
use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::Error;
use actix_web::HttpMessage;
use futures_util::Stream;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// How the body of a request must arrive.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline {
    /// The whole body, from the moment its headers were read.
    pub timeout: Duration,
    /// Bytes per second, averaged from the end of the grace on.
    pub min_rate: u64,
}

impl Default for BodyDeadline {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            min_rate: 1024,
        }
    }
}

/// Time a body gets before the rate counts (a client may pause after its
/// headers, e.g. for `Expect: 100-continue`).
const RATE_GRACE: Duration = Duration::from_secs(5);
/// How often a slow body's rate is checked.
const RATE_CHECK: Duration = Duration::from_secs(1);

/// Middleware: bounds the body's arrival and closes connections whose body
/// was left unread.
pub async fn enforce_body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + Unpin>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let limits = req
        .app_data::<actix_web::web::Data<BodyDeadline>>()
        .map(|data| *data.get_ref())
        .unwrap_or_default();
    let has_body = req
        .headers()
        .get("content-length")
        .is_none_or(|length| length.as_bytes() != b"0")
        && (req.headers().contains_key("content-length")
            || req.headers().contains_key("transfer-encoding"));
    let ended = Rc::new(Cell::new(!has_body));
    let mut unread = None;
    if has_body {
        let inner = Rc::new(RefCell::new(req.take_payload()));
        let bounded = DeadlinePayload::new(inner.clone(), limits, ended.clone());
        req.set_payload(Payload::Stream {
            payload: Box::pin(bounded),
        });
        unread = Some(inner);
    }
    let mut response = next.call(req).await?;
    if ended.get() {
        unread = None;
    } else {
        response
            .response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(response.map_body(|_, body| HoldingPayload {
        body,
        _unread: unread,
    }))
}

/// A response body that keeps the request's unread body stream alive
/// until the response has been sent (see the module's doc).
struct HoldingPayload<B> {
    body: B,
    _unread: Option<Rc<RefCell<Payload>>>,
}

impl<B: MessageBody + Unpin> MessageBody for HoldingPayload<B> {
    type Error = B::Error;

    fn size(&self) -> actix_web::body::BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}

struct DeadlinePayload {
    inner: Rc<RefCell<Payload>>,
    limits: BodyDeadline,
    started: Instant,
    received: u64,
    /// Fires at the deadline or at the next rate check, whichever is first.
    timer: Pin<Box<Sleep>>,
    ended: Rc<Cell<bool>>,
    failed: bool,
}

impl DeadlinePayload {
    fn new(inner: Rc<RefCell<Payload>>, limits: BodyDeadline, ended: Rc<Cell<bool>>) -> Self {
        let started = Instant::now();
        let first_check = started + limits.timeout.min(RATE_GRACE + RATE_CHECK);
        Self {
            inner,
            limits,
            started,
            received: 0,
            timer: Box::pin(tokio::time::sleep_until(first_check)),
            ended,
            failed: false,
        }
    }

    /// Why the body must stop now, if it must.
    fn broken_limit(&self, now: Instant) -> Option<String> {
        let elapsed = now.duration_since(self.started);
        if elapsed >= self.limits.timeout {
            return Some(format!(
                "the request body did not arrive within {} s",
                self.limits.timeout.as_secs()
            ));
        }
        let counted = elapsed.saturating_sub(RATE_GRACE).as_secs_f64();
        let expected = counted * self.limits.min_rate as f64;
        (counted > 0.0 && (self.received as f64) < expected).then(|| {
            format!(
                "the request body arrived too slowly (under {} bytes a second)",
                self.limits.min_rate
            )
        })
    }
}

impl Stream for DeadlinePayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut *this.inner.borrow_mut()).poll_next(cx);
        match polled {
            Poll::Ready(Some(Ok(chunk))) => {
                this.received += chunk.len() as u64;
                return Poll::Ready(Some(Ok(chunk)));
            }
            Poll::Ready(None) => {
                this.ended.set(true);
                return Poll::Ready(None);
            }
            Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
            Poll::Pending => {}
        }
        while this.timer.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            if let Some(reason) = this.broken_limit(now) {
                this.failed = true;
                return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    reason,
                )))));
            }
            let deadline = this.started + this.limits.timeout;
            this.timer.as_mut().reset((now + RATE_CHECK).min(deadline));
        }
        Poll::Pending
    }
}
