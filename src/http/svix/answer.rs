//! An answer of the dialect as bytes with a status, so that the answer to a
//! POST can be kept for its `Idempotency-Key` and given again, byte for
//! byte, to a repeat of the request (the SDKs send a key with every POST and
//! retry on 5xx and network errors).
use super::caller::SvixCaller;
use super::error::SvixError;
use crate::http::AppState;
use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, Responder};
use projections::svix::{self, Idempotency};
use serde::Serialize;
use std::future::Future;

/// The longest `Idempotency-Key` taken.
const MAX_KEY_CHARS: usize = 256;

pub struct Answer {
    status: StatusCode,
    /// JSON, or empty for 204.
    body: String,
}

impl Answer {
    pub fn json(status: StatusCode, value: &impl Serialize) -> Self {
        Self {
            status,
            body: serde_json::to_string(value).expect("answers serialize"),
        }
    }

    pub fn ok(value: &impl Serialize) -> Self {
        Self::json(StatusCode::OK, value)
    }

    pub fn no_content() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            body: String::new(),
        }
    }

    /// JSON text written by the caller (a message with its payload as sent).
    pub fn raw(status: StatusCode, body: String) -> Self {
        Self { status, body }
    }
}

impl Responder for Answer {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.body.is_empty() {
            response.finish()
        } else {
            response.content_type("application/json").body(self.body)
        }
    }
}

/// The request's `Idempotency-Key`, if it has one.
pub fn idempotency_key(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get("idempotency-key")
        .map(|value| value.to_str().unwrap_or("\u{FFFD}").trim().to_owned())
        .filter(|key| !key.is_empty())
}

/// Runs `handler` once per `Idempotency-Key` of the caller's organisation:
/// a repeat gets the first answer (a success), 409 while the first is still
/// running or when the key was used for another request; a failure frees
/// the key. Without the header the handler just runs.
pub async fn idempotent<F>(
    req: &HttpRequest,
    state: &AppState,
    caller: &SvixCaller,
    handler: F,
) -> Result<Answer, SvixError>
where
    F: Future<Output = Result<Answer, SvixError>>,
{
    let Some(key) = idempotency_key(req) else {
        return handler.await;
    };
    if key.chars().count() > MAX_KEY_CHARS || key.chars().any(char::is_control) {
        return Err(SvixError::invalid(vec![super::error::ValidationItem {
            loc: vec!["header".to_owned(), "idempotency-key".to_owned()],
            msg: format!("must be 1 to {MAX_KEY_CHARS} printable characters"),
            kind: "value_error".to_owned(),
        }]));
    }
    let organisation = caller.organisation_id();
    let request = format!("{} {}", req.method(), req.path());
    match svix::claim_idempotency(&state.db, organisation, &key, &request).await? {
        Idempotency::Claimed => {}
        Idempotency::Answered { status, body } => {
            return Ok(Answer::raw(
                StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                body,
            ))
        }
        Idempotency::InProgress => {
            return Err(SvixError::conflict(
                "a request with this idempotency key is still being processed",
            ))
        }
        Idempotency::Mismatch => {
            return Err(SvixError::conflict(
                "this idempotency key was used for another request",
            ))
        }
    }
    match handler.await {
        Ok(answer) => {
            // The request happened: its answer goes out even when it
            // cannot be kept (a repeat then runs it again).
            let kept = svix::finish_idempotency(
                &state.db,
                organisation,
                &key,
                answer.status.as_u16(),
                &answer.body,
            )
            .await;
            if let Err(error) = kept {
                tracing::warn!(%error, "cannot keep the answer of an idempotency key");
                let _ = svix::release_idempotency(&state.db, organisation, &key).await;
            }
            Ok(answer)
        }
        Err(error) => {
            if let Err(release) = svix::release_idempotency(&state.db, organisation, &key).await {
                tracing::warn!(%release, "cannot free an idempotency key after a failed request");
            }
            Err(error)
        }
    }
}
