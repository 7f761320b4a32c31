//! Every request gets an id (`req_…`): in the `X-Request-Id` header, in the
//! v1 envelope's `meta`, in the event metadata of the commands it sends, and
//! in the log line. The log line shows the path without the query string,
//! which may hold an API key.
use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest};
use rand::distributions::Alphanumeric;
use rand::Rng;
use std::future::{ready, Ready};
use std::time::Instant;
use tracing::Instrument;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    pub(crate) fn generate() -> Self {
        let mut id = String::with_capacity(24);
        id.push_str("req_");
        id.extend(
            rand::thread_rng()
                .sample_iter(&Alphanumeric)
                .take(20)
                .map(char::from),
        );
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Middleware: assigns the id, sets the header, logs the request.
pub async fn assign_request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = RequestId::generate();
    req.extensions_mut().insert(id.clone());
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_owned();
    // Everything the request causes here logs inside this span: a JSON log
    // line carries the request id.
    let span = tracing::info_span!("request", request_id = id.as_str(), %method, %path);
    let mut response = next.call(req).instrument(span).await?;
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    crate::telemetry::http_request_answered(
        route,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    tracing::info!(
        request_id = id.as_str(),
        %method,
        %path,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    Ok(response)
}

impl FromRequest for RequestId {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let id = req.extensions().get::<RequestId>().cloned();
        ready(Ok(id.unwrap_or_else(RequestId::generate)))
    }
}
