//! `POST /api/v1/webhooks/{id}/recover` and `GET …/recover/{task_id}`:
//! send every delivery that ended `failed` in a time window again, in the
//! background (see `delivery::recovery`).
use super::caller::V1Caller;
use super::envelope::{respond, Envelope};
use super::error::{ApiError, ErrorBody, FieldErrors};
use super::webhooks::owned_config;
use crate::http::body::{read_json_object, Member};
use crate::http::request_id::RequestId;
use crate::http::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use aggregates::values::Scope;
use chrono::{DateTime, Utc};
use projections::db::{micros_to_rfc3339, now_micros};
use projections::deliveries::{TaskRow, TaskType};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// How far back a recovery may reach.
const MAX_LOOKBACK_MICROS: i64 = 14 * 24 * 3_600_000_000;

/// A recovery and how it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryResource {
    /// The task's id (also listed by the configs API's `/tasks`).
    pub id: i64,
    /// `pending`, `processing`, `completed` or `failed`.
    #[schema(example = "completed")]
    pub state: String,
    /// Failed deliveries found in the window (so far).
    pub found: i64,
    /// Of those, sent again (so far).
    pub sent: i64,
    /// Of those sent again: delivered, failed again, still under way.
    pub succeeded: i64,
    pub failed: i64,
    pub pending: i64,
    pub error: Option<String>,
    pub created_at: String,
    pub completed_at: Option<String>,
}

/// The body of `POST /api/v1/webhooks/{id}/recover`, read member by
/// member ([`parse_window`]).
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"since": "2026-11-28T00:00:00Z"}))]
pub struct RecoverBody {
    /// Deliveries that ended failed at or after this time (RFC 3339; at
    /// most 14 days back).
    #[serde(default)]
    #[schema(value_type = String, required = true, format = DateTime)]
    since: Member,
    /// … and before this one (default: now).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    until: Member,
}

impl From<Map<String, Value>> for RecoverBody {
    fn from(object: Map<String, Value>) -> Self {
        crate::http::body::members(object)
    }
}

#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/recover", tag = "deliveries", operation_id = "recoverDeliveries",
    params(("id" = i64, Path, minimum = 1, description = "The webhook's id")),
    request_body = RecoverBody,
    responses(
        (status = 202, description = "The recovery runs in the background; GET its task for progress", body = Envelope<RecoveryResource>,
            links(("getRecovery" = (operation_id = "getRecovery", parameters(("id" = "$request.path.id"), ("task_id" = "$response.body#/data/id")))))),
        (status = 409, description = "The webhook is deactivated", body = ErrorBody),
    ),
)]
/// Starts a recovery of the webhook's failed deliveries in the window.
pub async fn start(
    req: HttpRequest,
    caller: V1Caller,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Webhooks)?;
    let config = owned_config(&state, &caller, &path).await?;
    let body = read_json_object(&req, payload).await?;
    let (since, until) = parse_window(&body.into(), now_micros()).map_err(ApiError::invalid)?;
    let task = state
        .deliveries
        .recover(&config, Some(caller.key.id), (since, until))
        .await
        .map_err(|error| ApiError::from_delivery(error, "webhook"))?;
    let resource = resource_of(&state, &caller, config.id, task).await?;
    Ok(respond(StatusCode::ACCEPTED, resource, &request_id))
}

#[utoipa::path(
    get, path = "/api/v1/webhooks/{id}/recover/{task_id}", tag = "deliveries", operation_id = "getRecovery",
    params(
        ("id" = i64, Path, minimum = 1, description = "The webhook's id"),
        ("task_id" = i64, Path, minimum = 1, description = "The recovery's id"),
    ),
    responses((status = 200, description = "How the recovery stands", body = Envelope<RecoveryResource>)),
)]
/// How a recovery stands.
pub async fn show(
    caller: V1Caller,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Webhooks)?;
    let (config_path, task_path) = path.into_inner();
    let config = owned_config(&state, &caller, &config_path).await?;
    let task = task_path
        .parse::<i64>()
        .map_err(|_| ApiError::not_found("recovery not found"))?;
    let resource = resource_of(&state, &caller, config.id, task).await?;
    Ok(respond(StatusCode::OK, resource, &request_id))
}

async fn resource_of(
    state: &AppState,
    caller: &V1Caller,
    config_id: i64,
    task: i64,
) -> Result<RecoveryResource, ApiError> {
    let row: TaskRow = state
        .tasks
        .find(caller.organisation_id(), task)
        .await?
        .filter(|row| row.task_type == TaskType::WebhookRecover && row.target == config_id)
        .ok_or_else(|| ApiError::not_found("recovery not found"))?;
    let counts = state.deliveries.store().recovery_counts(task).await?;
    let results: Value = row
        .results
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_default();
    let count = |name: &str| results[name].as_i64().unwrap_or(0);
    Ok(RecoveryResource {
        id: row.id,
        state: row.state.as_str().to_owned(),
        found: count("found"),
        sent: count("sent"),
        succeeded: counts.succeeded,
        failed: counts.failed,
        pending: counts.pending,
        error: row.error,
        created_at: micros_to_rfc3339(row.date_created),
        completed_at: row.date_completed.map(micros_to_rfc3339),
    })
}

/// `since` (required) and `until` (default now) as µs; `since` at most 14
/// days before `now`, `until` after `since`.
pub(crate) fn parse_window(body: &RecoverBody, now: i64) -> Result<(i64, i64), FieldErrors> {
    let mut errors = FieldErrors::default();
    let mut time = |name: &str, member: &Member, required: bool| match member.get() {
        None | Some(Value::Null) => {
            if required {
                errors.add(name, "is required (an RFC 3339 time)");
            }
            None
        }
        Some(Value::String(raw)) => match DateTime::parse_from_rfc3339(raw) {
            Ok(at) => Some(at.with_timezone(&Utc).timestamp_micros()),
            Err(_) => {
                errors.add(name, "must be an RFC 3339 time, e.g. 2026-11-22T10:25:05Z");
                None
            }
        },
        Some(_) => {
            errors.add(name, "must be an RFC 3339 time, e.g. 2026-11-22T10:25:05Z");
            None
        }
    };
    let since = time("since", &body.since, true);
    let until = time("until", &body.until, false);
    if let Some(since) = since {
        if since < now - MAX_LOOKBACK_MICROS {
            errors.add("since", "must be at most 14 days ago");
        }
        if until.unwrap_or(now) <= since {
            errors.add("until", "must be after since");
        }
    }
    match since {
        Some(since) if errors.is_empty() => Ok((since, until.unwrap_or(now).min(now + 1))),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000_000_000;

    fn window(body: Value) -> Result<(i64, i64), FieldErrors> {
        parse_window(&body.as_object().unwrap().clone().into(), NOW)
    }

    #[test]
    fn windows() {
        let (since, until) = window(json!({"since": "2027-01-15T07:00:00Z"})).unwrap();
        assert!(since < until && until <= NOW + 1);
        assert!(window(json!({})).is_err());
        assert!(window(json!({"since": "yesterday"})).is_err());
        assert!(
            window(json!({"since": "2026-01-01T00:00:00Z"})).is_err(),
            "too far back"
        );
        assert!(window(json!({
            "since": "2027-01-15T07:00:00Z",
            "until": "2027-01-15T06:00:00Z"
        }))
        .is_err());
    }
}
