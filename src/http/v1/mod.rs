//! The v1 webhooks API (`/api/v1/webhooks…`), modelled on a SaaS "Webhooks"
//! API: `{"data", "meta"}` envelopes, `{"error", "errors"}` failures.
mod caller;
mod deliveries;
pub mod envelope;
mod error;
mod event_types;
mod events;
mod history;
mod organisation;
mod portal_links;
pub(crate) mod recovery;
pub mod resources;
pub mod rotation_request;
pub mod webhook_request;
pub mod webhook_response;
mod webhooks;

pub use error::{ApiError, ErrorBody, FieldErrors};

/// The v1 dialect's part of the OpenAPI document (see `http::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    webhooks::list,
    webhooks::create,
    webhooks::show,
    webhooks::update,
    webhooks::delete,
    webhooks::rotate_secret,
    event_types::list,
    events::publish,
    deliveries::list,
    deliveries::retry,
    deliveries::test,
    history::history,
    recovery::start,
    recovery::show,
    organisation::show,
    organisation::update,
    portal_links::create,
))]
pub struct Api;

use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    // Every route is a resource with a fallback, so that a method it does
    // not have answers 405 (not 404) in this dialect's format.
    let fallback = |allow: &'static str| web::to(move |req| error::method_not_allowed(req, allow));
    cfg.service(
        web::scope("/api/v1")
            // First: every publish takes it. (The Svix dialect, mounted
            // before this scope, keeps its parameters behind static
            // prefixes, so a v1 path reaches here without a regex match.)
            .service(
                web::resource("/events")
                    .post(events::publish)
                    .default_service(fallback("POST")),
            )
            // Before `/webhooks/{id}`, which would otherwise take "events" as an id.
            .service(
                web::resource("/webhooks/events")
                    .get(event_types::list)
                    .default_service(fallback("GET")),
            )
            .service(
                web::resource("/webhooks")
                    .get(webhooks::list)
                    .post(webhooks::create)
                    .default_service(fallback("GET, POST")),
            )
            .service(
                web::resource("/webhooks/{id}/deliveries")
                    .get(deliveries::list)
                    .default_service(fallback("GET")),
            )
            .service(
                web::resource("/webhooks/{id}/deliveries/{delivery_id}/retry")
                    .post(deliveries::retry)
                    .default_service(fallback("POST")),
            )
            .service(
                web::resource("/webhooks/{id}/test")
                    .post(deliveries::test)
                    .default_service(fallback("POST")),
            )
            .service(
                web::resource("/webhooks/{id}/history")
                    .get(history::history)
                    .default_service(fallback("GET")),
            )
            .service(
                web::resource("/webhooks/{id}/recover")
                    .post(recovery::start)
                    .default_service(fallback("POST")),
            )
            .service(
                web::resource("/webhooks/{id}/recover/{task_id}")
                    .get(recovery::show)
                    .default_service(fallback("GET")),
            )
            .service(
                web::resource("/webhooks/{id}/rotate-secret")
                    .post(webhooks::rotate_secret)
                    .default_service(fallback("POST")),
            )
            .service(
                web::resource("/portal-links")
                    .post(portal_links::create)
                    .default_service(fallback("POST")),
            )
            .service(
                web::resource("/organisation")
                    .get(organisation::show)
                    .patch(organisation::update)
                    .default_service(fallback("GET, PATCH")),
            )
            .service(
                web::resource("/webhooks/{id}")
                    .get(webhooks::show)
                    .patch(webhooks::update)
                    .delete(webhooks::delete)
                    .default_service(fallback("GET, PATCH, DELETE")),
            ),
    );
}

/// A query parameter that cannot be taken (see `http::query_guard`): 422
/// naming it, as for a bad `page`.
pub fn invalid_query_parameter(name: &str) -> actix_web::Error {
    ApiError::invalid(error::FieldErrors::single(
        name,
        "must not contain control characters",
    ))
    .into()
}

/// 405 in the v1 error format, naming the methods the resource has.
pub async fn method_not_allowed_here(
    req: actix_web::HttpRequest,
    allow: &'static str,
) -> actix_web::HttpResponse {
    error::method_not_allowed(req, allow).await
}

/// Answers unknown paths in the v1 error format.
pub async fn not_found(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
    use actix_web::ResponseError;
    ApiError::not_found(format!("no route for {} {}", req.method(), req.path())).error_response()
}
