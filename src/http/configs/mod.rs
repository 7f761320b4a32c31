//! The configs API, modelled on ricloud's `webhook_config` API and usable
//! with the official `ricloud` Python client: resources with
//! `"resource": "<type>"`, lists as `{"resource": "list", …}`, errors as
//! `{"error": "<code>", "message", "params"}`.
mod caller;
mod error;
mod keys;
mod list_params;
mod organisation;
pub mod resources;
mod tasks;
mod webhook_configs;

use actix_web::web;

/// The configs dialect's part of the OpenAPI document (see `http::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    webhook_configs::list,
    webhook_configs::create,
    webhook_configs::show,
    webhook_configs::update,
    webhook_configs::delete,
    webhook_configs::test,
    webhook_configs::test_with_get,
    tasks::list,
    tasks::show,
    keys::current,
    keys::list,
    keys::show,
    keys::update,
    organisation::show,
    organisation::update,
))]
pub struct Api;

pub fn routes(cfg: &mut web::ServiceConfig) {
    let fallback = |allow: &'static str| web::to(move |req| error::method_not_allowed(req, allow));
    cfg.service(
        web::resource("/configs/webhook")
            .get(webhook_configs::list)
            .post(webhook_configs::create)
            .default_service(fallback("GET, POST")),
    )
    .service(
        web::resource("/configs/webhook/{id}")
            .get(webhook_configs::show)
            .post(webhook_configs::update)
            .delete(webhook_configs::delete)
            .default_service(fallback("GET, POST, DELETE")),
    )
    .service(
        web::resource("/configs/webhook/{id}/test")
            .post(webhook_configs::test)
            .get(webhook_configs::test_with_get)
            .default_service(fallback("GET, POST")),
    )
    .service(
        web::resource("/tasks")
            .get(tasks::list)
            .default_service(fallback("GET")),
    )
    .service(
        web::resource("/tasks/{id}")
            .get(tasks::show)
            .default_service(fallback("GET")),
    )
    .service(
        web::resource("/key")
            .get(keys::current)
            .default_service(fallback("GET")),
    )
    .service(
        web::resource("/keys")
            .get(keys::list)
            .default_service(fallback("GET")),
    )
    .service(
        web::resource("/keys/{id}")
            .get(keys::show)
            .post(keys::update)
            .default_service(fallback("GET, POST")),
    )
    .service(
        web::resource("/organisation")
            .get(organisation::show)
            .post(organisation::update)
            .default_service(fallback("GET, POST")),
    );
}

/// Unknown paths under the configs API's prefixes answer in its format.
pub fn is_configs_path(path: &str) -> bool {
    ["/configs", "/tasks", "/key", "/organisation"]
        .iter()
        .any(|prefix| path.starts_with(prefix))
}

pub use error::{not_found, ErrorBody};

/// A query parameter that cannot be taken (see `http::query_guard`).
pub fn invalid_query_parameter(name: &str) -> actix_web::Error {
    error::ConfigsError::invalid_parameter(name, "must not contain control characters").into()
}
