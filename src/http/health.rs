//! Health for load balancers and orchestrators; no key, no data.
//!
//! * `GET /health/live`: the process answers (200).
//! * `GET /health/ready`: it can serve: the database answers within a
//!   second (its schema was brought up to date before the listener
//!   opened) and, on PostgreSQL, this node's membership is current (its
//!   last heartbeat reached the database within the node timeout). 503
//!   with `Retry-After` otherwise.
use super::{AppState, RETRY_AFTER_SECONDS};
use actix_web::{web, HttpResponse};
use serde::Serialize;
use serde_json::json;
use std::time::Duration;
use utoipa::ToSchema;

const READY_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// The health part of the OpenAPI document (see `http::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(live, ready))]
pub struct Api;

/// What the health routes answer.
#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ready")]
    status: &'static str,
    /// Why not, when it is not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    let not_allowed = || {
        web::to(|| async {
            let mut response = HttpResponse::MethodNotAllowed()
                .json(json!({ "error": "only GET is allowed here" }));
            super::set_allow(&mut response, "GET");
            response
        })
    };
    cfg.service(
        web::resource("/health/live")
            .get(live)
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/health/ready")
            .get(ready)
            .default_service(not_allowed()),
    );
}

#[utoipa::path(
    get, path = "/health/live", tag = "health", operation_id = "live", security(()),
    responses((status = 200, description = "The process answers", body = Health)),
)]
async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "live",
        reason: None,
    })
}

#[utoipa::path(
    get, path = "/health/ready", tag = "health", operation_id = "ready", security(()),
    responses(
        (status = 200, description = "It can serve", body = Health),
        (status = 503, description = "It cannot: the database does not answer within a second, or (cluster) this node's membership is not current",
            body = Health, headers(("Retry-After" = u32, description = "Seconds"))),
    ),
)]
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let ping = state.db.ping();
    let reason = match tokio::time::timeout(READY_CHECK_TIMEOUT, ping).await {
        Ok(Ok(())) if state.node.as_ref().is_none_or(|node| node.is_current()) => {
            return HttpResponse::Ok().json(Health {
                status: "ready",
                reason: None,
            })
        }
        Ok(Ok(())) => "this node's cluster membership is not current",
        Ok(Err(_)) | Err(_) => "the database cannot be reached",
    };
    HttpResponse::ServiceUnavailable()
        .insert_header(("Retry-After", RETRY_AFTER_SECONDS.to_string()))
        .json(Health {
            status: "not ready",
            reason: Some(reason),
        })
}
