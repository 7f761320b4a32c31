//! `/api/v1/webhooks` and `/api/v1/webhooks/{id}`.
use super::caller::V1Caller;
use super::envelope::{respond, respond_page, Envelope};
use super::error::{ApiError, FieldErrors};
use super::rotation_request::{parse_rotation, RotateSecretBody, Rotation};
use super::webhook_request::{parse_create, parse_update, CreateWebhookBody, UpdateWebhookBody};
use super::webhook_response::{Secret, WebhookResource};
use crate::http::body::{read_json_object, read_optional_json_object};
use crate::http::request_id::RequestId;
use crate::http::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use aggregates::values::{ConfigId, Scope};
use projections::webhook_configs::ConfigRow;

const DEFAULT_PER_PAGE: i64 = 25;
const MAX_PER_PAGE: i64 = 100;

#[utoipa::path(
    get, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "listWebhooks",
    params(
        ("page" = Option<i64>, Query, minimum = 1, description = "1-based page number"),
        ("per_page" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Page size (default 25)"),
    ),
    responses((status = 200, description = "A page of the organisation's webhooks, newest first, without secrets", body = Envelope<Vec<WebhookResource>>)),
)]
/// `GET /api/v1/webhooks?page=&per_page=`: newest first, without secrets.
pub async fn list(
    req: HttpRequest,
    caller: V1Caller,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Webhooks)?;
    let (page, per_page) = paging(&req)?;
    let (rows, total) = state
        .config_reads
        .list_page(&state.db, caller.organisation_id(), page, per_page)
        .await?;
    let data: Vec<_> = rows
        .iter()
        .map(|row| WebhookResource::from_row(row.clone(), Secret::Hidden))
        .collect();
    Ok(respond_page(data, &request_id, page, per_page, total))
}

#[utoipa::path(
    get, path = "/api/v1/webhooks/{id}", tag = "webhooks", operation_id = "getWebhook",
    params(
        ("id" = i64, Path, minimum = 1, description = "The webhook's id"),
        ("as_of" = Option<String>, Query, format = DateTime, description = "RFC 3339: the webhook as it was then, folded from its event log"),
    ),
    responses((status = 200, description = "The webhook, with its secret", body = Envelope<WebhookResource>)),
)]
/// `GET /api/v1/webhooks/{id}`: one config, with its secret; with
/// `?as_of=<RFC 3339>`, as it was then.
pub async fn show(
    req: HttpRequest,
    caller: V1Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Webhooks)?;
    let as_of = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(name, _)| name == "as_of")
        .map(|(_, value)| value.into_owned());
    if let Some(as_of) = as_of {
        return super::history::show_as_of(&caller, &path, &as_of, &state, &request_id).await;
    }
    let row = owned_config(&state, &caller, &path).await?;
    Ok(respond(
        StatusCode::OK,
        WebhookResource::from_row(row, Secret::Shown),
        &request_id,
    ))
}

#[utoipa::path(
    post, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "createWebhook",
    request_body = CreateWebhookBody,
    responses((status = 201, description = "Created; the answer shows the signing secret", body = Envelope<WebhookResource>,
        links(
            ("getWebhook" = (operation_id = "getWebhook", parameters(("id" = "$response.body#/data/id")))),
            ("updateWebhook" = (operation_id = "updateWebhook", parameters(("id" = "$response.body#/data/id")))),
            ("deleteWebhook" = (operation_id = "deleteWebhook", parameters(("id" = "$response.body#/data/id")))),
            ("rotateWebhookSecret" = (operation_id = "rotateWebhookSecret", parameters(("id" = "$response.body#/data/id")))),
            ("listDeliveries" = (operation_id = "listDeliveries", parameters(("id" = "$response.body#/data/id")))),
            ("getWebhookHistory" = (operation_id = "getWebhookHistory", parameters(("id" = "$response.body#/data/id")))),
            ("testWebhook" = (operation_id = "testWebhook", parameters(("id" = "$response.body#/data/id")))),
        ))),
)]
/// `POST /api/v1/webhooks`: 201 with the config and its new secret.
pub async fn create(
    req: HttpRequest,
    caller: V1Caller,
    payload: web::Payload,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Webhooks)?;
    let body = read_json_object(&req, payload).await?;
    let input = parse_create(&body.into(), &state.url_policy).map_err(ApiError::invalid)?;
    let metadata = caller.command_metadata(&request_id);
    let id = state
        .endpoints
        .create(caller.actor(&metadata), input)
        .await?;
    let row = read_back(&state, &caller, id).await?;
    Ok(respond(
        StatusCode::CREATED,
        WebhookResource::from_row(row, Secret::Shown),
        &request_id,
    ))
}

#[utoipa::path(
    patch, path = "/api/v1/webhooks/{id}", tag = "webhooks", operation_id = "updateWebhook",
    params(("id" = i64, Path, minimum = 1, description = "The webhook's id")),
    request_body = UpdateWebhookBody,
    responses((status = 200, description = "The webhook after the change, without its secret", body = Envelope<WebhookResource>)),
)]
/// `PATCH /api/v1/webhooks/{id}`: changes what the body names.
pub async fn update(
    req: HttpRequest,
    caller: V1Caller,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Webhooks)?;
    let id = ConfigId::new(owned_config(&state, &caller, &path).await?.id);
    let body = read_json_object(&req, payload).await?;
    let changes = parse_update(&body.into(), &state.url_policy).map_err(ApiError::invalid)?;
    let metadata = caller.command_metadata(&request_id);
    state
        .endpoints
        .update(caller.actor(&metadata), id, changes)
        .await?;
    let row = read_back(&state, &caller, id).await?;
    Ok(respond(
        StatusCode::OK,
        WebhookResource::from_row(row, Secret::Hidden),
        &request_id,
    ))
}

#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/rotate-secret", tag = "webhooks", operation_id = "rotateWebhookSecret",
    params(("id" = i64, Path, minimum = 1, description = "The webhook's id")),
    request_body(content = Option<RotateSecretBody>, description = "Optional: how long the replaced secret keeps signing, and your own new secret"),
    responses((status = 200, description = "The webhook with its new secret", body = Envelope<WebhookResource>)),
)]
/// `POST /api/v1/webhooks/{id}/rotate-secret`: a new secret, shown here;
/// deliveries from now on are signed with it and, until the overlap ends
/// (`previous_valid_for`, default 24 h), also with the replaced one.
pub async fn rotate_secret(
    req: HttpRequest,
    caller: V1Caller,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Webhooks)?;
    let id = ConfigId::new(owned_config(&state, &caller, &path).await?.id);
    // The body is optional: none (or a JSON `null`) asks for the defaults.
    let rotation = match read_optional_json_object(&req, payload).await? {
        Some(body) => parse_rotation(&body.into()).map_err(ApiError::invalid)?,
        None => Rotation::default(),
    };
    let metadata = caller.command_metadata(&request_id);
    state
        .endpoints
        .rotate_secret(caller.actor(&metadata), id, rotation)
        .await?;
    let row = read_back(&state, &caller, id).await?;
    Ok(respond(
        StatusCode::OK,
        WebhookResource::from_row(row, Secret::Shown),
        &request_id,
    ))
}

#[utoipa::path(
    delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", operation_id = "deleteWebhook",
    params(("id" = i64, Path, minimum = 1, description = "The webhook's id")),
    responses((status = 204, description = "Deleted; its event log stays")),
)]
/// `DELETE /api/v1/webhooks/{id}`: 204; the config's events stay in the log.
pub async fn delete(
    caller: V1Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Webhooks)?;
    let id = ConfigId::new(owned_config(&state, &caller, &path).await?.id);
    let metadata = caller.command_metadata(&request_id);
    state.endpoints.delete(caller.actor(&metadata), id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The caller's live config named by the path, or 404 — also for another
/// organisation's config, so ids of other tenants reveal nothing.
pub(super) async fn owned_config(
    state: &AppState,
    caller: &V1Caller,
    raw_id: &str,
) -> Result<ConfigRow, ApiError> {
    let id = ConfigId::parse(raw_id).ok_or_else(ApiError::webhook_not_found)?;
    read_back(state, caller, id).await
}

/// The caller's live config `id`. After a command it is the row the command
/// just wrote: the projector runs before `execute` returns.
async fn read_back(
    state: &AppState,
    caller: &V1Caller,
    id: ConfigId,
) -> Result<ConfigRow, ApiError> {
    state
        .config_reads
        .find(&state.db, caller.organisation_id(), id.get())
        .await?
        .ok_or_else(ApiError::webhook_not_found)
}

pub(super) fn paging(req: &HttpRequest) -> Result<(i64, i64), ApiError> {
    let mut errors = FieldErrors::default();
    let mut page = 1;
    let mut per_page = DEFAULT_PER_PAGE;
    for (name, value) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        match name.as_ref() {
            "page" => match value.parse::<i64>() {
                Ok(n) if n >= 1 => page = n,
                _ => errors.add("page", "must be a positive integer"),
            },
            "per_page" => match value.parse::<i64>() {
                Ok(n) if (1..=MAX_PER_PAGE).contains(&n) => per_page = n,
                _ => errors.add("per_page", format!("must be between 1 and {MAX_PER_PAGE}")),
            },
            _ => {}
        }
    }
    if errors.is_empty() {
        Ok((page, per_page))
    } else {
        Err(ApiError::invalid(errors))
    }
}
