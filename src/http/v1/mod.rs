//! The v1 webhooks API (`/api/v1/webhooks…`), modelled on a SaaS "Webhooks"
//! API: `{"data", "meta"}` envelopes, `{"error", "errors"}` failures.
mod caller;
mod deliveries;
mod envelope;
mod error;
mod event_types;
mod events;
mod history;
mod webhook_request;
mod webhook_response;
mod webhooks;

pub use error::ApiError;

use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            // Before `/webhooks/{id}`, which would otherwise take "events" as an id.
            .route("/webhooks/events", web::get().to(event_types::list))
            .service(
                web::resource("/webhooks")
                    .get(webhooks::list)
                    .post(webhooks::create)
                    .default_service(web::to(error::method_not_allowed)),
            )
            .route("/events", web::post().to(events::publish))
            .route("/webhooks/{id}/deliveries", web::get().to(deliveries::list))
            .route(
                "/webhooks/{id}/deliveries/{delivery_id}/retry",
                web::post().to(deliveries::retry),
            )
            .route("/webhooks/{id}/test", web::post().to(deliveries::test))
            .route("/webhooks/{id}/history", web::get().to(history::history))
            .route(
                "/webhooks/{id}/rotate-secret",
                web::post().to(webhooks::rotate_secret),
            )
            .service(
                web::resource("/webhooks/{id}")
                    .get(webhooks::show)
                    .patch(webhooks::update)
                    .delete(webhooks::delete)
                    .default_service(web::to(error::method_not_allowed)),
            ),
    );
}

/// Answers unknown paths in the v1 error format.
pub async fn not_found(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
    use actix_web::ResponseError;
    ApiError::not_found(format!("no route for {} {}", req.method(), req.path())).error_response()
}
