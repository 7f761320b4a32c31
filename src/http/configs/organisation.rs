//! `/organisation`: the caller's organisation and its default webhook config.
use super::caller::ConfigsCaller;
use super::error::{ConfigsError, ErrorBody};
use super::keys::routable_config;
use super::resources;
use crate::http::body::{members, read_json_object, Member};
use crate::http::request_id::RequestId;
use crate::http::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use projections::tenancy;
use serde_json::json;

#[utoipa::path(
    get, path = "/organisation", tag = "configs", operation_id = "getOrganisation",
    responses((status = 200, description = "The caller's organisation", body = resources::OrganisationResource)),
)]
pub async fn show(caller: ConfigsCaller) -> HttpResponse {
    HttpResponse::Ok().json(resources::OrganisationResource::from(&*caller.organisation))
}

#[utoipa::path(
    post, path = "/organisation", tag = "configs", operation_id = "updateOrganisation",
    request_body = UpdateOrganisationBody,
    responses(
        (status = 200, description = "The organisation after the change", body = resources::OrganisationResource),
        (status = 404, description = "No such config in the organisation", body = ErrorBody),
    ),
)]
/// `POST /organisation {webhook_config_default}`
pub async fn update(
    req: HttpRequest,
    caller: ConfigsCaller,
    payload: web::Payload,
    state: web::Data<AppState>,
    request_id: RequestId,
) -> Result<HttpResponse, ConfigsError> {
    caller.require_webhooks()?;
    let body: UpdateOrganisationBody = members(read_json_object(&req, payload).await?);
    let organisation = caller.organisation_id();
    if let Some(value) = body.webhook_config_default.get() {
        let config = routable_config(&state, organisation, value).await?;
        tenancy::set_default_webhook_config(&state.db, organisation, config).await?;
        caller
            .log_change(
                &state.db,
                &request_id,
                "OrganisationDefaultConfigChanged",
                format!("organisation:{organisation}"),
                json!({ "webhook_config_default": config }),
            )
            .await?;
        state.keys.forget_all();
    }
    let updated = tenancy::find_organisation(&state.db, organisation)
        .await?
        .ok_or_else(|| ConfigsError::server_error("the caller's organisation vanished"))?;
    Ok(HttpResponse::Ok().json(resources::OrganisationResource::from(&updated)))
}

/// The body of `POST /organisation`, read member by member.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"webhook_config_default": 7}))]
pub struct UpdateOrganisationBody {
    /// A config created through `/configs/webhook`, or `null` for none.
    #[serde(default)]
    #[schema(value_type = Option<i64>, nullable)]
    webhook_config_default: Member,
}
