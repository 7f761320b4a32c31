//! The HTTP layer: turns requests into commands and queries, and their
//! results into the dialect's JSON. No business rule lives here.
pub(crate) mod auth;
pub(crate) mod body;
pub(crate) mod configs;
pub mod connections;
pub(crate) mod console;
pub mod deadline;
pub(crate) mod docs;
pub(crate) mod health;
pub(crate) mod key_cache;
pub mod openapi;
pub(crate) mod query_guard;
pub(crate) mod request_id;
pub(crate) mod svix;
pub(crate) mod v1;

use crate::config_commands::ConfigCommands;
use actix_web::web;
use aggregates::values::UrlPolicy;
use key_cache::KeyCache;
use projections::config_reads::ConfigReads;
use projections::deliveries::TaskStore;
use projections::Db;

/// What a 503 (the database is unavailable) tells the client to wait
/// before trying again, in seconds.
pub const RETRY_AFTER_SECONDS: u32 = 2;

/// What every handler may use.
pub struct AppState {
    pub db: Db,
    /// API keys by token, for authentication.
    pub keys: KeyCache,
    /// The v1 API's config rows, list pages and list totals, kept until a
    /// config changes (and the configs API's list totals).
    pub config_reads: ConfigReads,
    pub commands: ConfigCommands,
    pub url_policy: UrlPolicy,
    /// The endpoint use cases (create, update, rotate, delete) every
    /// dialect and the console call.
    pub endpoints: crate::app::Endpoints,
    /// The Svix dialect's applications (create, change, delete).
    pub applications: crate::app::Applications,
    /// Publish, send again, test, recover: every dialect's and the console's.
    pub deliveries: crate::app::Deliveries,
    pub tasks: TaskStore,
    /// This node's cluster membership (PostgreSQL), for `/health/ready`.
    pub node: Option<crate::cluster::ClusterNode>,
}

/// Mounts every route of every dialect.
pub fn routes(cfg: &mut web::ServiceConfig) {
    health::routes(cfg);
    docs::routes(cfg);
    console::routes(cfg);
    // Before v1's `/api/v1` scope, which would answer its paths with 404.
    svix::routes(cfg);
    v1::routes(cfg);
    configs::routes(cfg);
}

/// A 405 names the methods the resource has (RFC 9110 requires `Allow`).
pub fn set_allow(response: &mut actix_web::HttpResponse, allow: &'static str) {
    response.headers_mut().insert(
        actix_web::http::header::ALLOW,
        actix_web::http::header::HeaderValue::from_static(allow),
    );
}

/// Unmatched paths answer 404 in the format of the dialect they resemble.
pub async fn not_found(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
    if configs::is_configs_path(req.path()) {
        configs::not_found(req).await
    } else if svix::is_svix_path(req.path()) {
        svix::not_found(req).await
    } else {
        v1::not_found(req).await
    }
}
