//! `/api/v1/organisation`: the caller's organisation, and its operational
//! webhook (see `delivery/operational.rs`). The operational webhook is a
//! config of profile `operational`, created, changed and deleted through
//! the same commands as any other (its changes are events in its log).
use super::caller::V1Caller;
use super::envelope::{respond, Envelope};
use super::error::{ApiError, FieldErrors};
use crate::app::{Actor, NewEndpoint};
use crate::http::body::{read_json_object, Member};
use crate::http::request_id::RequestId;
use crate::http::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use aggregates::values::{ConfigId, ConfigName, Scope, ValidationError, WebhookUrl};
use aggregates::webhook_config::{ConfigChanges, Profile};
use projections::webhook_configs;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// The caller's organisation.
#[derive(Serialize, ToSchema)]
pub struct V1OrganisationResource {
    pub id: i64,
    pub name: String,
    /// Where notices about this organisation's endpoints go
    /// (`endpoint.disabled`, `endpoint.enabled`, `endpoint.secret_rotated`,
    /// `delivery.exhausted`); `null`: nowhere.
    pub operational_webhook_url: Option<String>,
    /// The secret that signs those notices (Standard Webhooks and the other
    /// signature headers, as for any webhook); `null` without a URL.
    pub operational_webhook_secret: Option<String>,
}

/// The body of `PATCH /api/v1/organisation`, read member by member; no
/// other member is taken.
#[derive(Debug, Default, serde::Deserialize, ToSchema)]
#[schema(example = json!({"operational_webhook_url": "https://ops.example.com/webhookd"}))]
pub struct V1UpdateOrganisationBody {
    /// An `https://` URL (the same rules as a webhook's); `null` removes
    /// the operational webhook.
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 2048, format = "uri", nullable)]
    operational_webhook_url: Member,
}

#[utoipa::path(
    get, path = "/api/v1/organisation", tag = "organisation", operation_id = "getV1Organisation",
    responses((status = 200, description = "The caller's organisation", body = Envelope<V1OrganisationResource>)),
)]
/// `GET /api/v1/organisation`.
pub async fn show(
    caller: V1Caller,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Webhooks)?;
    let resource = resource(&state, &caller).await?;
    Ok(respond(StatusCode::OK, resource, &request_id))
}

#[utoipa::path(
    patch, path = "/api/v1/organisation", tag = "organisation", operation_id = "updateV1Organisation",
    request_body(content = V1UpdateOrganisationBody),
    responses((status = 200, description = "The organisation as changed", body = Envelope<V1OrganisationResource>)),
)]
/// `PATCH /api/v1/organisation {"operational_webhook_url": …}`: sets,
/// changes or (`null`) removes the operational webhook.
pub async fn update(
    req: HttpRequest,
    caller: V1Caller,
    payload: web::Payload,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Webhooks)?;
    let body = read_json_object(&req, payload).await?;
    let url = parse_update(&body, &state)?;
    let metadata = caller.command_metadata(&request_id);
    let organisation = caller.organisation_id();
    let changed_to = match url {
        Some(Some(url)) => {
            let shown = url.as_str().to_owned();
            set_url(&state, caller.actor(&metadata), url).await?;
            Some(serde_json::Value::String(shown))
        }
        Some(None) => {
            if let Some(config) = projections::operational::clear(&state.db, organisation).await? {
                state
                    .endpoints
                    .delete(caller.actor(&metadata), ConfigId::new(config))
                    .await?;
            }
            Some(serde_json::Value::Null)
        }
        None => None,
    };
    if let Some(url) = changed_to {
        caller
            .log_change(
                &state.db,
                &request_id,
                "OperationalWebhookChanged",
                format!("organisation:{organisation}"),
                serde_json::json!({ "operational_webhook_url": url }),
            )
            .await?;
    }
    let resource = resource(&state, &caller).await?;
    Ok(respond(StatusCode::OK, resource, &request_id))
}

/// `None`: not given; `Some(None)`: `null`.
fn parse_update(
    body: &Map<String, Value>,
    state: &AppState,
) -> Result<Option<Option<WebhookUrl>>, ApiError> {
    const FIELD: &str = "operational_webhook_url";
    let invalid = |message: String| ApiError::invalid(FieldErrors::single(FIELD, message));
    if let Some(unknown) = body.keys().find(|key| key.as_str() != FIELD) {
        return Err(ApiError::invalid(FieldErrors::single(
            unknown,
            "is not a field of the organisation that can be changed",
        )));
    }
    let body: V1UpdateOrganisationBody = crate::http::body::members(body.clone());
    match body.operational_webhook_url.get() {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(raw)) => WebhookUrl::parse(raw, &state.url_policy)
            .map(|url| Some(Some(url)))
            .map_err(|ValidationError(message)| invalid(message)),
        Some(_) => Err(invalid("must be a URL string or null".into())),
    }
}

/// Points the operational webhook at `url`: a new config the first time,
/// else a URL change of the one there is.
async fn set_url(state: &AppState, actor: Actor<'_>, url: WebhookUrl) -> Result<(), ApiError> {
    let organisation = actor.organisation.get();
    if let Some(existing) = projections::operational::find(&state.db, organisation).await? {
        return update_url(state, actor, existing, url).await;
    }
    let new = NewEndpoint {
        name: ConfigName::parse("operational webhook").expect("a valid name"),
        ..NewEndpoint::new(Profile::Operational, url.clone())
    };
    let id = state.endpoints.create(actor, new).await?;
    let kept = projections::operational::set_if_none(&state.db, organisation, id.get()).await?;
    if kept != id.get() {
        // Another request set one first: that one is the organisation's.
        state.endpoints.delete(actor, id).await?;
        update_url(state, actor, kept, url).await?;
    }
    Ok(())
}

async fn update_url(
    state: &AppState,
    actor: Actor<'_>,
    config: i64,
    url: WebhookUrl,
) -> Result<(), ApiError> {
    let changes = ConfigChanges {
        url: Some(url),
        ..ConfigChanges::default()
    };
    Ok(state
        .endpoints
        .update(actor, ConfigId::new(config), changes)
        .await?)
}

async fn resource(state: &AppState, caller: &V1Caller) -> Result<V1OrganisationResource, ApiError> {
    let organisation = &caller.organisation;
    let operational = match projections::operational::find(&state.db, organisation.id).await? {
        Some(config) => webhook_configs::find_any(&state.db, config)
            .await?
            .filter(|row| !row.deleted),
        None => None,
    };
    Ok(V1OrganisationResource {
        id: organisation.id,
        name: organisation.name.clone(),
        operational_webhook_url: operational.as_ref().map(|row| row.url.clone()),
        operational_webhook_secret: operational.map(|row| row.secret),
    })
}
