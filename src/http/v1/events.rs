//! `POST /api/v1/events`: publish an event to every endpoint subscribed to it.
use super::caller::V1Caller;
use super::envelope::{respond, Envelope};
use super::error::{ApiError, FieldErrors};
use super::resources::PublishReceipt;
use crate::delivery::publish::PublishError;
use crate::delivery::wire::{event_data, EventData};
use crate::http::body::{parse_object, read_body, Member};
use crate::http::request_id::RequestId;
use crate::http::AppState;
use crate::telemetry::PublishResult;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use aggregates::values::Scope;
use serde_json::value::RawValue;
use serde_json::Value;

const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

#[utoipa::path(
    post, path = "/api/v1/events", tag = "events", operation_id = "publishEvent",
    request_body = PublishBody,
    responses(
        (status = 202, description = "Stored; deliveries are under way", body = Envelope<PublishReceipt>),
        (status = 200, description = "This `id` was published before: nothing new was stored or sent", body = Envelope<PublishReceipt>),
    ),
)]
/// `POST /api/v1/events` (scope `publish`).
///
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
    let answer = publish_event(req, caller, payload, state, request_id).await;
    let result = match &answer {
        Ok(response) if response.status() == StatusCode::ACCEPTED => PublishResult::Accepted,
        Ok(_) => PublishResult::Duplicate,
        Err(_) => PublishResult::Refused,
    };
    crate::telemetry::publish_answered(result);
    answer
}

async fn publish_event(
    req: HttpRequest,
    caller: V1Caller,
    payload: web::Payload,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Publish)?;
    let bytes = read_body(&req, payload).await?;
    let body: PublishBody = parse_object(&bytes)?;
    let mut errors = FieldErrors::default();
    let event_type = match body.event_type.0 {
        Some(Value::String(t)) if !t.is_empty() && !t.chars().any(char::is_control) => Some(t),
        Some(Value::String(t)) if !t.is_empty() => {
            errors.add("type", "must not contain control characters");
            None
        }
        None | Some(Value::Null) => {
            errors.add("type", "is required");
            None
        }
        Some(_) => {
            errors.add("type", "must be an event type name");
            None
        }
    };
    let idempotency_key = match body.id.0 {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if id.chars().any(char::is_control) => {
            errors.add("id", "must not contain control characters");
            None
        }
        Some(Value::String(id))
            if (1..=MAX_IDEMPOTENCY_KEY_CHARS).contains(&id.chars().count()) =>
        {
            Some(id)
        }
        Some(_) => {
            errors.add(
                "id",
                format!("must be a string of 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters"),
            );
            None
        }
    };
    // Kept as sent: see `wire::EventData`.
    let data: EventData = match body.data {
        Some(raw) => EventData::from(raw),
        None => event_data("{}".to_owned()),
    };
    let Some(event_type) = event_type.filter(|_| errors.is_empty()) else {
        return Err(ApiError::invalid(errors));
    };
    let published = state
        .deliveries
        .publish(
            &caller.organisation,
            &caller.key,
            &event_type,
            data,
            idempotency_key.as_deref(),
        )
        .await
        .map_err(|error| match error {
            PublishError::UnknownEventType { .. } => {
                ApiError::invalid(FieldErrors::single("type", error.to_string()))
            }
            PublishError::SchemaViolation { violations, .. } => {
                let mut errors = FieldErrors::default();
                for violation in violations {
                    errors.add("data", violation);
                }
                ApiError::invalid(errors)
            }
            // Checked above; should the database still refuse a value of
            // this request, it is this request's fault alone.
            PublishError::Store(store) if store.is_bad_input() => ApiError::invalid(
                FieldErrors::single("data", format!("cannot be stored: {store}")),
            ),
            PublishError::Store(store) => ApiError::store(store),
        })?;
    let status = if published.duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok(respond(
        status,
        PublishReceipt {
            id: published.event.id.clone(),
            event_type: published.event.event_type.clone(),
            deliveries: published.delivery_count,
            duplicate: published.duplicate,
        },
        &request_id,
    ))
}

/// The body of `POST /api/v1/events`, read member by member; `data` is
/// kept byte for byte.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"type": "invoice.paid", "id": "inv_42-paid", "data": {"invoice": "in_42", "amount": 1200}}))]
pub struct PublishBody {
    /// An event type of the catalog.
    #[serde(rename = "type", default)]
    #[schema(value_type = String, required = true, min_length = 1)]
    event_type: Member,
    /// Idempotency key: a second publish with the same `id` stores and
    /// sends nothing (200, `"duplicate": true`).
    #[serde(default)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 255, nullable)]
    id: Member,
    /// Any JSON; delivered exactly as sent (default `{}`).
    #[serde(default, deserialize_with = "raw_member")]
    #[schema(value_type = Option<serde_json::Value>)]
    data: Option<Box<RawValue>>,
}

/// A member kept as sent, `null` included.
fn raw_member<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Box<RawValue>>, D::Error> {
    <Box<RawValue> as serde::Deserialize>::deserialize(deserializer).map(Some)
}
