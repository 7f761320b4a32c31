//! webhookd: a self-hosted webhook service.
//!
//! The modules form layers, each importing only those below it (lowest
//! first: `database`, `crypto`, `telemetry`, `sealed_event_store`;
//! `changes`; `cluster`, `config_commands`; `delivery`; `admin`, `audit`,
//! `listen`; `app`; `http`; `settings`; `startup`). `tests/layers.rs` holds them.
//!
//! * [`startup`] builds the application once, for `main` and for the tests.
//! * [`database`] connects to SQLite or PostgreSQL and applies `migrations/`.
//! * [`changes`] announces what changed to the caches and the delivery
//!   side; [`cluster`] carries it to the other nodes and decides which node
//!   delivers to which endpoint.
//! * [`config_commands`] sends commands to the WebhookConfig aggregate
//!   (cqrs-es event store) and retries concurrent appends.
//! * [`http`] turns requests into commands and queries, nothing more.
//! * [`admin`] is what the operator CLI does (organisations, keys, event types).
//! * [`delivery`] publishes events and owns the delivery actors.
//! * [`listen`] is the developers' local receiver (`webhookd listen`).
pub mod admin;
pub mod app;
pub mod audit;
pub mod changes;
pub mod cluster;
pub mod config_commands;
pub mod crypto;
pub mod database;
pub mod delivery;
pub mod http;
pub mod listen;
pub mod sealed_event_store;
pub mod settings;
pub mod startup;
pub mod telemetry;
