//! Black-box tests of webhookd through HTTP (and its CLI), each run against
//! both SQLite and PostgreSQL.
mod helpers;

mod audit;
mod auth;
mod cli;
mod concurrency;
mod configs_api;
mod crash;
mod delivery;
mod hot_path;
mod projection_catch_up;
mod receiver;
mod signatures;
mod ssrf;
mod validation;
mod webhooks;
