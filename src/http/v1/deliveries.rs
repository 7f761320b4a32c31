//! The attempt log of a config, manual retries and tests.
use super::caller::V1Caller;
use super::envelope::{respond, respond_page, Envelope};
use super::error::{ApiError, ErrorBody, FieldErrors};
use super::resources::{DeliveryResource, TestStarted};
use super::webhooks::{owned_config, paging};
use crate::http::request_id::RequestId;
use crate::http::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use aggregates::values::{ConfigId, Scope};
use projections::deliveries::DeliveryStatus;

#[utoipa::path(
    get, path = "/api/v1/webhooks/{id}/deliveries", tag = "deliveries", operation_id = "listDeliveries",
    params(
        ("id" = i64, Path, minimum = 1, description = "The webhook's id"),
        ("status" = Option<String>, Query, description = "pending, succeeded or failed"),
        ("page" = Option<i64>, Query, minimum = 1),
        ("per_page" = Option<i64>, Query, minimum = 1, maximum = 100),
    ),
    responses((status = 200, description = "The webhook's deliveries, newest first, each with its attempt log", body = Envelope<Vec<DeliveryResource>>)),
)]
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
        .map(|(_, value)| {
            DeliveryStatus::parse(&value).ok_or_else(|| {
                ApiError::invalid(FieldErrors::single(
                    "status",
                    format!("'{value}' is not one of pending, succeeded, failed"),
                ))
            })
        })
        .transpose()?;
    let store = state.deliveries.store();
    let (rows, total) = store
        .list_deliveries(ConfigId::new(config.id), status, page, per_page)
        .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let attempts = store.attempts_of(&ids).await?;
    let data: Vec<_> = rows
        .iter()
        .map(|row| DeliveryResource::new(row, &attempts))
        .collect();
    Ok(respond_page(data, &request_id, page, per_page, total))
}

#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}/retry", tag = "deliveries", operation_id = "retryDelivery",
    params(
        ("id" = i64, Path, minimum = 1, description = "The webhook's id"),
        ("delivery_id" = i64, Path, minimum = 1, description = "The delivery's id"),
    ),
    responses(
        (status = 202, description = "Queued again with a fresh retry budget", body = Envelope<DeliveryResource>),
        (status = 409, description = "The webhook cannot receive (deactivated or invalid)", body = ErrorBody),
    ),
)]
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
    state
        .deliveries
        .send_again(&config, delivery_id)
        .await
        .map_err(|error| match error {
            crate::app::DeliveryError::NotFound => not_found(),
            other => ApiError::from_delivery(other, "webhook"),
        })?;
    let store = state.deliveries.store();
    let row = store
        .find_delivery(ConfigId::new(config.id), delivery_id)
        .await?
        .ok_or_else(not_found)?;
    let attempts = store.attempts_of(&[delivery_id]).await?;
    Ok(respond(
        StatusCode::ACCEPTED,
        DeliveryResource::new(&row, &attempts),
        &request_id,
    ))
}

#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/test", tag = "deliveries", operation_id = "testWebhook",
    params(("id" = i64, Path, minimum = 1, description = "The webhook's id")),
    responses(
        (status = 202, description = "A webhook_config.test delivery is queued; its outcome makes the webhook valid or invalid", body = Envelope<TestStarted>,
            links(
                ("listDeliveries" = (operation_id = "listDeliveries", parameters(("id" = "$request.path.id")))),
                ("retryDelivery" = (operation_id = "retryDelivery", parameters(("id" = "$request.path.id"), ("delivery_id" = "$response.body#/data/delivery_id")))),
            )),
        (status = 409, description = "The webhook is deactivated", body = ErrorBody),
    ),
)]
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
    let published = state
        .deliveries
        .test(&config, crate::app::TestRecord::None)
        .await
        .map_err(|error| ApiError::from_delivery(error, "webhook"))?
        .published;
    let delivery = published.deliveries.first().map(|d| d.id);
    Ok(respond(
        StatusCode::ACCEPTED,
        TestStarted {
            event_id: published.event.id.clone(),
            delivery_id: delivery,
            status: DeliveryStatus::Pending,
        },
        &request_id,
    ))
}
