//! `/key` (the calling key) and `/keys/{id}`: which config routes a key's
//! published events.
use super::caller::ConfigsCaller;
use super::error::{ConfigsError, ErrorBody};
use super::resources;
use crate::http::body::{members, read_json_object, Member};
use crate::http::request_id::RequestId;
use crate::http::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use aggregates::webhook_config::Profile;
use projections::{tenancy, webhook_configs};
use serde_json::{json, Value};

#[utoipa::path(
    get, path = "/key", tag = "configs", operation_id = "getCurrentKey",
    responses((status = 200, description = "The key this request was made with", body = resources::Key,
        links(("getKey" = (operation_id = "getKey", parameters(("id" = "$response.body#/id")))),
              ("updateKey" = (operation_id = "updateKey", parameters(("id" = "$response.body#/id"))))))),
)]
/// `GET /key`
pub async fn current(caller: ConfigsCaller) -> HttpResponse {
    HttpResponse::Ok().json(resources::Key::from(&*caller.key))
}

#[utoipa::path(
    get, path = "/keys/{id}", tag = "configs", operation_id = "getKey",
    params(("id" = i64, Path, minimum = 1, description = "The key's id")),
    responses((status = 200, description = "A key of the organisation", body = resources::Key)),
)]
/// `GET /keys/{id}`
pub async fn show(
    caller: ConfigsCaller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConfigsError> {
    caller.require_webhooks()?;
    let key = owned_key(&state, &caller, &path).await?;
    Ok(HttpResponse::Ok().json(resources::Key::from(&key)))
}

#[utoipa::path(
    get, path = "/keys", tag = "configs", operation_id = "listKeys",
    responses((status = 200, description = "The organisation's keys", body = resources::List<resources::Key>)),
)]
/// `GET /keys`
pub async fn list(
    caller: ConfigsCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConfigsError> {
    caller.require_webhooks()?;
    let keys = tenancy::list_keys(&state.db, Some(caller.organisation_id()), false).await?;
    let total = keys.len() as i64;
    let data = keys.iter().map(resources::Key::from).collect();
    Ok(HttpResponse::Ok().json(resources::List::new(data, false, total, "/keys")))
}

#[utoipa::path(
    post, path = "/keys/{id}", tag = "configs", operation_id = "updateKey",
    params(("id" = i64, Path, minimum = 1, description = "The key's id")),
    request_body = UpdateKeyBody,
    responses(
        (status = 200, description = "The key after the change", body = resources::Key),
        (status = 404, description = "No such key, or no such config, in the organisation", body = ErrorBody),
    ),
)]
/// `POST /keys/{id} {webhook_config}`: a config of the same organisation
/// created through this API, or `null`.
pub async fn update(
    req: HttpRequest,
    caller: ConfigsCaller,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, ConfigsError> {
    caller.require_webhooks()?;
    let key = owned_key(&state, &caller, &path).await?;
    let body: UpdateKeyBody = members(read_json_object(&req, payload).await?);
    if let Some(value) = body.webhook_config.get() {
        let config = routable_config(&state, caller.organisation_id(), value).await?;
        tenancy::set_key_webhook_config(&state.db, key.id, config).await?;
        caller
            .log_change(
                &state.db,
                &request_id,
                "KeyRoutingChanged",
                format!("key:{}", key.id),
                json!({ "webhook_config": config }),
            )
            .await?;
        state.keys.forget_all();
    }
    let key = owned_key(&state, &caller, &path).await?;
    Ok(HttpResponse::Ok().json(resources::Key::from(&key)))
}

async fn owned_key(
    state: &AppState,
    caller: &ConfigsCaller,
    raw_id: &str,
) -> Result<projections::tenancy::ApiKey, ConfigsError> {
    let not_found = || ConfigsError::not_found("key", raw_id);
    let id = raw_id.parse::<i64>().map_err(|_| not_found())?;
    tenancy::find_key(&state.db, caller.organisation_id(), id)
        .await?
        .ok_or_else(not_found)
}

/// Checks a `webhook_config` value: `null`, or the id of a live
/// configs-API config of `organisation` (another organisation's is not-found).
pub async fn routable_config(
    state: &AppState,
    organisation: i64,
    value: &Value,
) -> Result<Option<i64>, ConfigsError> {
    let id = match value {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse::<i64>().ok(),
        _ => None,
    }
    .ok_or_else(|| {
        ConfigsError::invalid_parameter("webhook_config", "must be a webhook_config id or null")
    })?;
    let config = webhook_configs::find(&state.db, organisation, id)
        .await?
        .ok_or_else(|| ConfigsError::not_found("webhook_config", &id.to_string()))?;
    if config.profile != Profile::Configs {
        return Err(ConfigsError::invalid_parameter(
            "webhook_config",
            "must be a config created through /configs/webhook (v1 webhooks are routed by their events)",
        ));
    }
    Ok(Some(id))
}

/// The body of `POST /keys/{id}`, read member by member.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"webhook_config": 7}))]
pub struct UpdateKeyBody {
    /// A config created through `/configs/webhook`, or `null` for none.
    #[serde(default)]
    #[schema(value_type = Option<i64>, nullable)]
    webhook_config: Member,
}
