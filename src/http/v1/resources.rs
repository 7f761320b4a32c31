//! What the v1 dialect answers besides the webhook itself: the event type
//! catalog, publish receipts, deliveries with their attempt log, the event
//! log. Each is serialized as it is documented (`ToSchema`).
use crate::http::openapi::enums;
use projections::db::micros_to_rfc3339;
use projections::deliveries::{AttemptRow, DeliveryKind, DeliveryRow, DeliveryStatus};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// One entry of the event type catalog.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeResource {
    #[schema(example = "invoice.paid")]
    pub name: String,
    #[schema(example = "An invoice was paid")]
    pub description: String,
    /// The JSON Schema a publish's `data` must satisfy, if the type has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub schema: Option<Value>,
}

/// A publish's receipt.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublishReceipt {
    /// The event id: the `webhook-id` receivers deduplicate on.
    #[schema(example = "evt_2f1c6a0b9d3e4f5a8b7c6d5e4f3a2b1c")]
    pub id: String,
    #[serde(rename = "type")]
    #[schema(example = "invoice.paid")]
    pub event_type: String,
    /// How many endpoints it goes to (for a duplicate: the first publish's).
    pub deliveries: i64,
    /// The `id` was published before; nothing new was stored or sent.
    pub duplicate: bool,
}

/// One delivery of an event (or a test) to one webhook, with every attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryResource {
    pub id: i64,
    pub event_id: String,
    pub event_type: String,
    #[schema(schema_with = enums::delivery_kind)]
    pub kind: DeliveryKind,
    #[schema(schema_with = enums::delivery_status)]
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: i64,
    /// When the next attempt is due (RFC 3339); only while `pending`.
    pub next_attempt_at: Option<String>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Oldest first.
    pub attempt_log: Vec<AttemptResource>,
}

/// One HTTP request to the receiver and what came of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptResource {
    pub attempted_at: String,
    pub duration_ms: i64,
    /// The receiver's status code; `null` when no answer came.
    pub status_code: Option<i64>,
    pub success: bool,
    /// The start of the receiver's answer.
    pub response_body: Option<String>,
    /// Why no answer came (timeout, refused connection, …).
    pub error: Option<String>,
}

impl DeliveryResource {
    /// `attempts` may hold other deliveries' attempts: only this one's are taken.
    pub fn new(row: &DeliveryRow, attempts: &[AttemptRow]) -> Self {
        let attempt_log = attempts
            .iter()
            .filter(|a| a.delivery_id == row.id)
            .map(|a| AttemptResource {
                attempted_at: micros_to_rfc3339(a.attempted_at),
                duration_ms: a.duration_ms,
                status_code: a.status_code,
                success: a.success,
                response_body: a.response_body.clone(),
                error: a.error.clone(),
            })
            .collect();
        Self {
            id: row.id,
            event_id: row.event_id.clone(),
            event_type: row.event_type.clone(),
            kind: row.kind,
            status: row.status,
            attempts: row.attempts,
            next_attempt_at: (row.status == DeliveryStatus::Pending)
                .then(|| micros_to_rfc3339(row.next_attempt_at)),
            last_status_code: row.last_status_code,
            last_error: row.last_error.clone(),
            created_at: micros_to_rfc3339(row.created_at),
            updated_at: micros_to_rfc3339(row.updated_at),
            attempt_log,
        }
    }
}

/// `POST /webhooks/{id}/test`: the test delivery that was queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestStarted {
    pub event_id: String,
    pub delivery_id: Option<i64>,
    #[schema(schema_with = enums::delivery_status)]
    pub status: DeliveryStatus,
}

/// One event of a webhook's event log, secrets redacted.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    /// 1 for `Created`, then one up per event.
    pub sequence: i64,
    #[schema(example = "Updated")]
    pub event_type: String,
    pub event_version: String,
    /// When it was recorded (RFC 3339, µs).
    pub time: String,
    /// Who caused it (`key:<id>`, `cli`, `system`…).
    pub actor: Option<String>,
    pub request_id: Option<String>,
    /// What changed, as stored in the log (secrets replaced by `[redacted]`).
    pub payload: Value,
}
