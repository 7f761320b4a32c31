//! Delivery: publishing events and getting them, signed, to every endpoint.
//!
//! * [`publish`] routes an event to its target configs and commits the event
//!   and one delivery row per target in one transaction, grouped with
//!   concurrent publishes (`group_commit`, `publish_writer`); attempts are
//!   recorded the same way (`outcome_writer`).
//! * [`supervisor`] owns one [`endpoint`] actor per config with pending work,
//!   notices actors that died (actix does not restart a panicked actor) and
//!   restarts them from the database, and polls for pending rows nobody holds.
//! * [`attempt`] sends one request and judges the answer; [`policy`] decides
//!   what happens next (retry, give up, deactivate) and records it.
//! * [`signing`], [`wire`], [`retry`] and [`http_client`] are the parts:
//!   three signature schemes, the body shapes, the backoff schedule, and the
//!   shared HTTP client with its SSRF guard.
pub mod attempt;
pub mod budget;
pub mod endpoint;
mod group_commit;
pub mod http_client;
pub mod lanes;
mod outcome_writer;
pub mod policy;
pub mod publish;
mod publish_writer;
mod recording;
pub mod retry;
pub mod routing;
pub mod settings;
pub mod signing;
pub mod store;
pub mod supervisor;
mod task;
pub mod tasks;
pub mod wire;

pub use settings::DeliverySettings;
pub use supervisor::{DeliverySupervisor, SupervisorHandle};
