//! A config's event log (`/history`) and the config as it was (`?as_of=`).
use super::caller::V1Caller;
use super::envelope::{respond, respond_page, Envelope};
use super::error::{ApiError, FieldErrors};
use super::resources::HistoryEntry;
use super::webhook_response::{Secret, WebhookResource};
use super::webhooks::{owned_config, paging};
use crate::http::request_id::RequestId;
use crate::http::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use aggregates::values::{ConfigId, Scope};
use aggregates::webhook_config::WebhookConfig;
use cqrs_es::Aggregate;
use projections::event_log::load_aggregate;
use projections::redact::redact;
use projections::webhook_configs;

#[utoipa::path(
    get, path = "/api/v1/webhooks/{id}/history", tag = "webhooks", operation_id = "getWebhookHistory",
    params(
        ("id" = i64, Path, minimum = 1, description = "The webhook's id"),
        ("page" = Option<i64>, Query, minimum = 1),
        ("per_page" = Option<i64>, Query, minimum = 1, maximum = 100),
    ),
    responses((status = 200, description = "The webhook's events, oldest first (scope `audit`)", body = Envelope<Vec<HistoryEntry>>)),
)]
/// `GET /api/v1/webhooks/{id}/history?page=&per_page=` (scope `audit`):
/// the config's events, oldest first, with time and actor, secrets redacted.
pub async fn history(
    req: HttpRequest,
    caller: V1Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Audit)?;
    let config = owned_config(&state, &caller, &path).await?;
    let (page, per_page) = paging(&req)?;
    let events = load_aggregate(&state.db, WebhookConfig::TYPE, &config.id.to_string()).await?;
    let total = events.len() as i64;
    let data: Vec<_> = events
        .iter()
        // Saturating: a page past the end is empty, however large its number.
        .skip(usize::try_from((page - 1).saturating_mul(per_page)).unwrap_or(usize::MAX))
        .take(per_page as usize)
        .map(|event| {
            let mut payload = event.payload.clone();
            redact(&mut payload);
            HistoryEntry {
                sequence: event.sequence,
                event_type: event.event_type.clone(),
                event_version: event.event_version.clone(),
                time: chrono::DateTime::from_timestamp_micros(event.recorded_at)
                    .unwrap_or_default()
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                actor: event.metadata.get("actor").cloned(),
                request_id: event.metadata.get("request_id").cloned(),
                payload,
            }
        })
        .collect();
    Ok(respond_page(data, &request_id, page, per_page, total))
}

/// `GET /api/v1/webhooks/{id}?as_of=<RFC 3339>`: the config folded from its
/// log up to that instant; 404 before its creation or after its deletion.
pub async fn show_as_of(
    caller: &V1Caller,
    raw_id: &str,
    as_of: &str,
    state: &AppState,
    request_id: &RequestId,
) -> Result<HttpResponse, ApiError> {
    let at = chrono::DateTime::parse_from_rfc3339(as_of).map_err(|_| {
        ApiError::invalid(FieldErrors::single(
            "as_of",
            "must be an RFC 3339 time, e.g. 2026-11-22T10:25:05Z",
        ))
    })?;
    let id = ConfigId::parse(raw_id).ok_or_else(ApiError::webhook_not_found)?;
    let row = webhook_configs::as_of(&state.db, id.get(), at.timestamp_micros())
        .await?
        .filter(|row| row.organisation == caller.organisation_id())
        .ok_or_else(ApiError::webhook_not_found)?;
    Ok(respond(
        StatusCode::OK,
        WebhookResource::from_row(row, Secret::Shown),
        request_id,
    ))
}
