//! `/api/v1/auth/app-portal-access/{app_id}` and `/api/v1/health`.
//!
//! The open-source Svix server has no application portal; webhookd has
//! its console. An app-portal access is a one-time console link scoped to
//! the application (its endpoints, their deliveries and history) and a key
//! of the application's own organisation, which reaches that application
//! only — what Svix's app-portal token is.
use super::answer::{idempotent, Answer};
use super::applications::{optional_json_body, ApplicationIn};
use super::caller::SvixCaller;
use super::error::SvixError;
use super::AppPath;
use crate::http::console::session::portal;
use crate::http::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use aggregates::values::Scope;
use projections::db::now_micros;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How long a portal link lasts when the body does not say (Svix's default).
const DEFAULT_EXPIRY_SECONDS: i64 = 7 * 24 * 3600;

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct AppPortalAccessIn {
    /// Seconds the link lasts (60 to 7 days; default 7 days).
    expiry: Option<i64>,
    /// Creates the application (with the path's uid) when there is none.
    application: Option<ApplicationIn>,
}

#[derive(Serialize, ToSchema)]
pub struct AppPortalAccessOut {
    /// Opens webhookd's console for this application (once).
    url: String,
    /// An API key that reaches this application only.
    token: String,
}

#[utoipa::path(
    post, path = "/api/v1/auth/app-portal-access/{app_id}", tag = "svix", operation_id = "v1.authentication.app-portal-access",
    params(AppPath),
    request_body(content = Option<AppPortalAccessIn>, description = "Optional: how long the link lasts"),
    responses((status = 200, description = "A console link and a key for this application", body = AppPortalAccessOut)),
)]
pub async fn app_portal_access(
    req: HttpRequest,
    caller: SvixCaller,
    path: web::Path<AppPath>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<Answer, SvixError> {
    idempotent(&req, &state, &caller, async {
        let body: AppPortalAccessIn = optional_json_body(&req, payload).await?.unwrap_or_default();
        let app = match caller
            .application(&state, &path.app_id, Scope::Webhooks)
            .await
        {
            Err(error) if error.status().as_u16() == 404 && body.application.is_some() => {
                let fields = body.application.expect("checked").into_fields()?;
                if fields.uid.as_deref() != Some(path.app_id.as_str()) {
                    return Err(SvixError::invalid_field(
                        "application",
                        "its uid must be the application uid of the path",
                    ));
                }
                state
                    .applications
                    .create(caller.actor(), caller.environment()?, fields)
                    .await?
            }
            other => other?,
        };
        let expiry = body.expiry.unwrap_or(DEFAULT_EXPIRY_SECONDS);
        if !(60..=DEFAULT_EXPIRY_SECONDS).contains(&expiry) {
            return Err(SvixError::invalid_field(
                "expiry",
                "must be between 60 seconds and 7 days",
            ));
        }
        let expires_at = now_micros() + expiry * 1_000_000;
        let (link, link_token) =
            portal::create(&state.db, app.organisation, caller.key.id, expires_at).await?;
        caller
            .log_change(
                &state.db,
                "PortalLinkCreated",
                format!("portal_link:{link}"),
                serde_json::json!({
                    "application": projections::svix::application_id(app.organisation),
                    "expires_at": projections::db::micros_to_rfc3339(expires_at),
                }),
            )
            .await?;
        let token = state.applications.scoped_key(caller.actor(), &app).await?;
        let connection = req.connection_info();
        Ok(Answer::ok(&AppPortalAccessOut {
            url: format!(
                "{}://{}/console/portal/{link_token}",
                connection.scheme(),
                connection.host()
            ),
            token,
        }))
    })
    .await
}

#[utoipa::path(
    get, path = "/api/v1/health", tag = "svix", operation_id = "v1.health.get", security(()),
    responses((status = 204, description = "Up")),
)]
pub async fn health() -> HttpResponse {
    HttpResponse::NoContent().finish()
}
