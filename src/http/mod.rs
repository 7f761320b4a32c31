//! The HTTP layer: turns requests into commands and queries, and their
//! results into the dialect's JSON. No business rule lives here.
pub mod auth;
pub mod body;
pub mod request_id;
pub mod v1;

use crate::config_commands::ConfigCommands;
use actix_web::web;
use aggregates::values::UrlPolicy;
use projections::Db;

/// What every handler may use.
pub struct AppState {
    pub db: Db,
    pub commands: ConfigCommands,
    pub url_policy: UrlPolicy,
}

/// Mounts every route of every dialect.
pub fn routes(cfg: &mut web::ServiceConfig) {
    v1::routes(cfg);
}
