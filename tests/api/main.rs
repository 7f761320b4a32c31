//! Black-box tests of webhookd through HTTP (and its CLI), each run against
//! both SQLite and PostgreSQL.
mod fault_proxy;
mod helpers;

mod audit;
mod auth;
mod cli;
mod cluster;
mod concurrency;
mod configs_api;
mod conformance;
mod console;
mod contract;
mod crash;
mod delivery;
mod event_schemas;
mod faults;
mod fifo;
mod fuzz;
mod hardening;
mod hot_path;
mod operational;
mod projection_catch_up;
mod receiver;
mod recovery;
mod retention;
mod schema;
mod secrets_at_rest;
mod signatures;
mod ssrf;
mod svix;
mod throttle;
mod validation;
mod webhooks;
