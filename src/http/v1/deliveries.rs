//! The attempt log of a config, manual retries and tests.
use super::caller::V1Caller;
use super::envelope::{respond, respond_page};
use super::error::{ApiError, FieldErrors};
use super::webhooks::{owned_config, paging};
use crate::delivery::store::{AttemptRow, DeliveryRow};
use crate::http::request_id::RequestId;
use crate::http::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use aggregates::values::Scope;
use aggregates::webhook_config::ConfigState;
use projections::db::micros_to_rfc3339;
use serde_json::{json, Value};

const STATUSES: [&str; 3] = ["pending", "succeeded", "failed"];

fn delivery_json(row: &DeliveryRow, attempts: &[AttemptRow]) -> Value {
    let log: Vec<Value> = attempts
        .iter()
        .filter(|a| a.delivery_id == row.id)
        .map(|a| {
            json!({
                "attempted_at": micros_to_rfc3339(a.attempted_at),
                "duration_ms": a.duration_ms,
                "status_code": a.status_code,
                "success": a.success,
                "response_body": a.response_body,
                "error": a.error,
            })
        })
        .collect();
    json!({
        "id": row.id,
        "event_id": row.event_id,
        "event_type": row.event_type,
        "kind": row.kind,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": (row.status == "pending").then(|| micros_to_rfc3339(row.next_attempt_at)),
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "created_at": micros_to_rfc3339(row.created_at),
        "updated_at": micros_to_rfc3339(row.updated_at),
        "attempt_log": log,
    })
}

/// `GET /api/v1/webhooks/{id}/deliveries?status=&page=&per_page=`
pub async fn list(
    req: HttpRequest,
    caller: V1Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Webhooks)?;
    let config = owned_config(&state, &caller, &path).await?;
    let (page, per_page) = paging(&req)?;
    let status = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(name, _)| name == "status")
        .map(|(_, value)| value.into_owned());
    if let Some(status) = status.as_deref().filter(|s| !STATUSES.contains(s)) {
        return Err(ApiError::invalid(FieldErrors::single(
            "status",
            format!("'{status}' is not one of pending, succeeded, failed"),
        )));
    }
    let store = state.publisher.store();
    let (rows, total) = store
        .list_deliveries(config.id, status.as_deref(), page, per_page)
        .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let attempts = store.attempts_of(&ids).await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|row| delivery_json(row, &attempts))
        .collect();
    Ok(respond_page(data, &request_id, page, per_page, total))
}

/// `POST /api/v1/webhooks/{id}/deliveries/{delivery_id}/retry`: sends a
/// delivery again with a fresh retry budget.
pub async fn retry(
    caller: V1Caller,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Webhooks)?;
    let (config_path, delivery_path) = path.into_inner();
    let config = owned_config(&state, &caller, &config_path).await?;
    let not_found = || ApiError::not_found("delivery not found");
    let delivery_id = delivery_path.parse::<i64>().map_err(|_| not_found())?;
    if !ConfigState::parse(&config.state).is_some_and(ConfigState::may_receive) {
        return Err(ApiError::conflict(format!(
            "the webhook is {}; reactivate it before retrying deliveries",
            config.state
        )));
    }
    let store = state.publisher.store();
    let pending = store
        .retry(config.id, delivery_id)
        .await?
        .ok_or_else(not_found)?;
    state.publisher.supervisor().enqueue_again(vec![pending]);
    let row = store
        .find_delivery(config.id, delivery_id)
        .await?
        .ok_or_else(not_found)?;
    let attempts = store.attempts_of(&[delivery_id]).await?;
    Ok(respond(
        StatusCode::ACCEPTED,
        delivery_json(&row, &attempts),
        &request_id,
    ))
}

/// `POST /api/v1/webhooks/{id}/test`: one signed `webhook_config.test`
/// delivery; its outcome makes the config `valid` or `invalid`.
pub async fn test(
    caller: V1Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Webhooks)?;
    let config = owned_config(&state, &caller, &path).await?;
    if config.state == ConfigState::Deactivated.as_str() {
        return Err(ApiError::conflict(
            "a deactivated webhook cannot be tested; reactivate it first",
        ));
    }
    let published = state
        .publisher
        .test(config.organisation, config.id, None)
        .await
        .map_err(ApiError::internal)?;
    let delivery = published.deliveries.first().map(|d| d.id);
    Ok(respond(
        StatusCode::ACCEPTED,
        json!({ "event_id": published.event.id, "delivery_id": delivery, "status": "pending" }),
        &request_id,
    ))
}
