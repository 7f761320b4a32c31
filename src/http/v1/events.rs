//! `POST /api/v1/events`: publish an event to every endpoint subscribed to it.
use super::caller::V1Caller;
use super::envelope::respond;
use super::error::{ApiError, FieldErrors};
use crate::delivery::publish::PublishError;
use crate::http::body::read_json_object;
use crate::http::request_id::RequestId;
use crate::http::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use aggregates::values::Scope;
use serde_json::{json, Value};

const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// 202 with the event id (also the `webhook-id` receivers dedupe on) and
/// the number of deliveries; 200 with `"duplicate": true` when the `id`
/// was published before (nothing new is stored or sent).
pub async fn publish(
    req: HttpRequest,
    caller: V1Caller,
    payload: web::Payload,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Publish)?;
    let body = read_json_object(&req, payload).await?;
    let mut errors = FieldErrors::default();
    let event_type = match body.get("type") {
        Some(Value::String(t)) if !t.is_empty() => Some(t.as_str()),
        None | Some(Value::Null) => {
            errors.add("type", "is required");
            None
        }
        Some(_) => {
            errors.add("type", "must be an event type name");
            None
        }
    };
    let idempotency_key = match body.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id))
            if (1..=MAX_IDEMPOTENCY_KEY_CHARS).contains(&id.chars().count()) =>
        {
            Some(id.as_str())
        }
        Some(_) => {
            errors.add(
                "id",
                format!("must be a string of 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters"),
            );
            None
        }
    };
    let data = body.get("data").cloned().unwrap_or_else(|| json!({}));
    let Some(event_type) = event_type.filter(|_| errors.is_empty()) else {
        return Err(ApiError::invalid(errors));
    };
    let published = state
        .publisher
        .publish(
            &caller.organisation,
            &caller.key,
            event_type,
            data,
            idempotency_key,
        )
        .await
        .map_err(|error| match error {
            PublishError::UnknownEventType { .. } => {
                ApiError::invalid(FieldErrors::single("type", error.to_string()))
            }
            PublishError::Store(store) => ApiError::internal(store),
        })?;
    let status = if published.duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok(respond(
        status,
        json!({
            "id": published.event.id,
            "type": published.event.event_type,
            "deliveries": published.delivery_count,
            "duplicate": published.duplicate,
        }),
        &request_id,
    ))
}
