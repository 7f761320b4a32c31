//! webhookd's read side: the relational tables behind every list and lookup.
//!
//! * [`db`]: one handle over SQLite or PostgreSQL; queries are written once.
//! * [`event_store`]: the cqrs-es event repository of the backend, chosen once.
//! * [`event_log`]: our own reader of the cqrs-es event table (per aggregate,
//!   in sequence order) — cqrs-es's `replay_all` interleaves aggregates and
//!   hides database errors, so nothing here uses it.
//! * [`webhook_configs`]: the config read model, folded from the log by the
//!   [`webhook_configs::ConfigProjector`], and its queries.
//! * [`config_reads`]: the v1 API's config reads, cached until a change.
//! * [`tenancy`] and [`event_types`]: reference tables written directly.
//! * [`svix`]: what the Svix dialect keeps beside configs and events.
//! * [`deliveries`]: everything delivery keeps (rows, writers, tasks,
//!   retention) — all SQL of the delivery engine.
//! * [`cluster`]: the cluster's nodes, leases and notification channel
//!   (PostgreSQL only: the coordination engine).
//! * [`console_sessions`]: the console's sessions and portal links.
pub mod admin_log;
pub mod cache;
pub mod cluster;
pub mod config_reads;
pub mod console_sessions;
pub mod db;
pub mod deliveries;
pub mod event_log;
pub mod event_store;
pub mod event_types;
mod kept;
pub mod operational;
pub mod paging;
pub mod rebuild;
pub mod redact;
pub mod svix;
pub mod tenancy;
pub mod vault;
pub mod webhook_configs;

pub use db::{Db, Error};
