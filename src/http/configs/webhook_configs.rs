//! `/configs/webhook…`: webhook configs in the ricloud dialect.
use super::caller::ConfigsCaller;
use super::error::{ConfigsError, ErrorBody};
use super::list_params;
use super::resources;
use crate::app::NewEndpoint;
use crate::http::body::{members, read_json_object, Member};
use crate::http::request_id::RequestId;
use crate::http::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use aggregates::values::{ConfigId, WebhookUrl};
use aggregates::webhook_config::{ConfigChanges, ConfigState, Profile};
use projections::deliveries::TaskRow;
use projections::webhook_configs::{self, ConfigFilter, ConfigRow};
use serde_json::Value;

const LIST_URL: &str = "/configs/webhook";

#[utoipa::path(
    post, path = "/configs/webhook", tag = "configs", operation_id = "createWebhookConfig",
    request_body = CreateWebhookConfigBody,
    responses((status = 201, description = "Created in state `new`; a `webhook_config.test` task runs in the background", body = resources::WebhookConfig,
        links(
            ("getWebhookConfig" = (operation_id = "getWebhookConfig", parameters(("id" = "$response.body#/id")))),
            ("updateWebhookConfig" = (operation_id = "updateWebhookConfig", parameters(("id" = "$response.body#/id")))),
            ("deleteWebhookConfig" = (operation_id = "deleteWebhookConfig", parameters(("id" = "$response.body#/id")))),
            ("testWebhookConfig" = (operation_id = "testWebhookConfig", parameters(("id" = "$response.body#/id")))),
            ("testWebhookConfigWithGet" = (operation_id = "testWebhookConfigWithGet", parameters(("id" = "$response.body#/id")))),
        ))),
)]
/// `POST /configs/webhook {url}`: a configs-profile config (events `*`) in
/// state `new`, and a `webhook_config.test` task started in the background.
pub async fn create(
    req: HttpRequest,
    caller: ConfigsCaller,
    payload: web::Payload,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, ConfigsError> {
    caller.require_webhooks()?;
    let body: CreateWebhookConfigBody = members(read_json_object(&req, payload).await?);
    let url = match body.url.get() {
        Some(Value::String(url)) => parse_url(&state, url)?,
        None | Some(Value::Null) => {
            return Err(ConfigsError::invalid_parameter("url", "is required"))
        }
        Some(_) => return Err(ConfigsError::invalid_parameter("url", "must be a string")),
    };
    // A configs-profile config: every event type, every default.
    let metadata = caller.command_metadata(&request_id);
    let id = state
        .endpoints
        .create(
            caller.actor(&metadata),
            NewEndpoint::new(Profile::Configs, url),
        )
        .await?;
    // Read before the test starts: the answer shows the config as created
    // (`new`), not a test's outcome that may already be recorded.
    let row = owned(&state, &caller, &id.to_string()).await?;
    start_test(&state, &caller, &row).await?;
    Ok(HttpResponse::Created().json(resources::WebhookConfig::from(&row)))
}

#[utoipa::path(
    get, path = "/configs/webhook/{id}", tag = "configs", operation_id = "getWebhookConfig",
    params(("id" = i64, Path, minimum = 1, description = "The config's id")),
    responses((status = 200, description = "The config", body = resources::WebhookConfig)),
)]
/// `GET /configs/webhook/{id}`
pub async fn show(
    caller: ConfigsCaller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConfigsError> {
    caller.require_webhooks()?;
    let row = owned(&state, &caller, &path).await?;
    Ok(HttpResponse::Ok().json(resources::WebhookConfig::from(&row)))
}

#[utoipa::path(
    get, path = "/configs/webhook", tag = "configs", operation_id = "listWebhookConfigs",
    params(
        ("state" = Option<String>, Query, description = "Comma-separated states: new, valid, invalid, deactivated"),
        ("date_created" = Option<String>, Query, description = "ISO 8601 date or date-time (also `date_created__gt`, `__gte`, `__lt`, `__lte`, or `date_created[gt]`…)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size (default 10)"),
        ("after_id" = Option<i64>, Query, description = "Items after this id (not with before_id)"),
        ("before_id" = Option<i64>, Query, description = "Items before this id (not with after_id)"),
    ),
    responses((status = 200, description = "The organisation's configs, by id", body = resources::List<resources::WebhookConfig>)),
)]
/// `GET /configs/webhook?state=&date_created…=&limit=&after_id=&before_id=`
pub async fn list(
    req: HttpRequest,
    caller: ConfigsCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConfigsError> {
    caller.require_webhooks()?;
    let params = list_params::parse(req.query_string())?;
    let filter = ConfigFilter {
        organisation: caller.organisation_id(),
        states: params.states,
        created_from: params.created_from,
        created_until: params.created_until,
    };
    let (rows, has_more, total) = webhook_configs::list_filtered(
        &state.db,
        &state.config_reads,
        &filter,
        params.cursor,
        params.limit,
    )
    .await?;
    let data = rows.iter().map(resources::WebhookConfig::from).collect();
    Ok(HttpResponse::Ok().json(resources::List::new(data, has_more, total, LIST_URL)))
}

#[utoipa::path(
    post, path = "/configs/webhook/{id}", tag = "configs", operation_id = "updateWebhookConfig",
    params(("id" = i64, Path, minimum = 1, description = "The config's id")),
    request_body = UpdateWebhookConfigBody,
    responses((status = 200, description = "The config after the change; any change but a deactivation starts a test task", body = resources::WebhookConfig)),
)]
/// `POST /configs/webhook/{id} {url?, state?}`: `state` only `new` or
/// `deactivated`; any change but a deactivation starts a test task.
pub async fn update(
    req: HttpRequest,
    caller: ConfigsCaller,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, ConfigsError> {
    caller.require_webhooks()?;
    let before = owned(&state, &caller, &path).await?;
    let body: UpdateWebhookConfigBody = members(read_json_object(&req, payload).await?);
    let url = match body.url.get() {
        None | Some(Value::Null) => None,
        Some(Value::String(url)) => Some(parse_url(&state, url)?),
        Some(_) => return Err(ConfigsError::invalid_parameter("url", "must be a string")),
    };
    let active = match body.state.get() {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s == "new" => Some(true),
        Some(Value::String(s)) if s == "deactivated" => Some(false),
        Some(other) => {
            return Err(ConfigsError::invalid_parameter(
                "state",
                format!(
                "{other} is not allowed; a config's state can only be set to new or deactivated"
            ),
            ))
        }
    };
    let id = ConfigId::new(before.id);
    let changes = ConfigChanges {
        url,
        active,
        ..ConfigChanges::default()
    };
    let metadata = caller.command_metadata(&request_id);
    state
        .endpoints
        .update(caller.actor(&metadata), id, changes)
        .await?;
    let after = owned(&state, &caller, &path).await?;
    let changed = after.version != before.version;
    if changed && after.state != ConfigState::Deactivated {
        start_test(&state, &caller, &after).await?;
    }
    // The config as the update left it; the test's outcome follows later.
    Ok(HttpResponse::Ok().json(resources::WebhookConfig::from(&after)))
}

#[utoipa::path(
    delete, path = "/configs/webhook/{id}", tag = "configs", operation_id = "deleteWebhookConfig",
    params(("id" = i64, Path, minimum = 1, description = "The config's id")),
    responses((status = 200, description = "Deleted; the answer is the config as it was", body = resources::WebhookConfig)),
)]
/// `DELETE /configs/webhook/{id}`: answers the config as it was.
pub async fn delete(
    caller: ConfigsCaller,
    path: web::Path<String>,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, ConfigsError> {
    caller.require_webhooks()?;
    let row = owned(&state, &caller, &path).await?;
    let metadata = caller.command_metadata(&request_id);
    state
        .endpoints
        .delete(caller.actor(&metadata), ConfigId::new(row.id))
        .await?;
    Ok(HttpResponse::Ok().json(resources::WebhookConfig::from(&row)))
}

#[utoipa::path(
    post, path = "/configs/webhook/{id}/test", tag = "configs", operation_id = "testWebhookConfig",
    params(("id" = i64, Path, minimum = 1, description = "The config's id")),
    responses(
        (status = 200, description = "A `webhook_config.test` task", body = resources::Task),
        (status = 409, description = "The config is deactivated", body = ErrorBody),
    ),
)]
/// `POST /configs/webhook/{id}/test` (also `GET`, as in the seed's curl
/// example): a `webhook_config.test` task.
pub async fn test(
    caller: ConfigsCaller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConfigsError> {
    caller.require_webhooks()?;
    let row = owned(&state, &caller, &path).await?;
    if row.state == ConfigState::Deactivated {
        return Err(ConfigsError::conflict(
            "a deactivated webhook config cannot be tested; set its state to new first",
        ));
    }
    let task = start_test(&state, &caller, &row).await?;
    Ok(HttpResponse::Ok().json(resources::Task::from(&task)))
}

#[utoipa::path(
    get, path = "/configs/webhook/{id}/test", tag = "configs", operation_id = "testWebhookConfigWithGet",
    params(("id" = i64, Path, minimum = 1, description = "The config's id")),
    responses(
        (status = 200, description = "The same as POST (the seed's curl example uses GET)", body = resources::Task),
        (status = 409, description = "The config is deactivated", body = ErrorBody),
    ),
)]
pub async fn test_with_get(
    caller: ConfigsCaller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConfigsError> {
    test(caller, path, state).await
}

/// Creates a pending test task and hands its delivery to the engine.
/// A `webhook_config.test` task for `config` (see `app::Deliveries::test`).
async fn start_test(
    state: &AppState,
    caller: &ConfigsCaller,
    config: &ConfigRow,
) -> Result<TaskRow, ConfigsError> {
    let record = crate::app::TestRecord::Task {
        key_id: Some(caller.key.id),
    };
    let started = state.deliveries.test(config, record).await?;
    let task_id = started.task.expect("a test with a task record has a task");
    state
        .tasks
        .find(caller.organisation_id(), task_id)
        .await?
        .ok_or_else(|| ConfigsError::server_error("a task vanished"))
}

/// The URL's form and policy; its address is the use case's to check.
fn parse_url(state: &AppState, raw: &str) -> Result<WebhookUrl, ConfigsError> {
    WebhookUrl::parse(raw, &state.url_policy)
        .map_err(|e| ConfigsError::invalid_parameter("url", e.0))
}

/// The caller's live config named by the path; another organisation's is
/// `not-found`, like one that does not exist.
async fn owned(
    state: &AppState,
    caller: &ConfigsCaller,
    raw_id: &str,
) -> Result<ConfigRow, ConfigsError> {
    let not_found = || ConfigsError::not_found("webhook_config", raw_id);
    let id = ConfigId::parse(raw_id).ok_or_else(not_found)?;
    webhook_configs::find(&state.db, caller.organisation_id(), id.get())
        .await?
        .ok_or_else(not_found)
}

/// The body of `POST /configs/webhook`, read member by member.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"url": "https://example.com/webhooks"}))]
pub struct CreateWebhookConfigBody {
    /// Absolute `https://` URL, not an internal address (`--dev` lifts both rules).
    #[serde(default)]
    #[schema(value_type = String, required = true, max_length = 2048, format = "uri")]
    url: Member,
}

/// The body of `POST /configs/webhook/{id}`: what it names changes.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"state": "deactivated"}))]
pub struct UpdateWebhookConfigBody {
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 2048, format = "uri")]
    url: Member,
    /// Only `new` (reactivate, and test) or `deactivated`.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^(new|deactivated)$")]
    state: Member,
}
