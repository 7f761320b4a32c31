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
use projections::on_pool;
use serde_json::json;
use std::time::Duration;

const READY_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

pub fn routes(cfg: &mut web::ServiceConfig) {
    let not_allowed = || {
        web::to(|| async {
            HttpResponse::MethodNotAllowed().json(json!({ "error": "only GET is allowed here" }))
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

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "live" }))
}

async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let ping = async {
        on_pool!(&state.db, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|_| ()))
    };
    let reason = match tokio::time::timeout(READY_CHECK_TIMEOUT, ping).await {
        Ok(Ok(())) if state.node.as_ref().is_none_or(|node| node.is_current()) => {
            return HttpResponse::Ok().json(json!({ "status": "ready" }))
        }
        Ok(Ok(())) => "this node's cluster membership is not current",
        Ok(Err(_)) | Err(_) => "the database cannot be reached",
    };
    HttpResponse::ServiceUnavailable()
        .insert_header(("Retry-After", RETRY_AFTER_SECONDS.to_string()))
        .json(json!({ "status": "not ready", "reason": reason }))
}
