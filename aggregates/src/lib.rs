//! The pure domain of webhookd: no HTTP, no SQL, no clocks, no randomness.
//!
//! * [`values`] holds validated newtypes (`WebhookUrl::parse`, `RetryCount::parse`, …):
//!   once a value exists it is known to be valid, so the aggregate never re-checks input.
//! * [`webhook_config`] holds the event-sourced `WebhookConfig` aggregate:
//!   commands in, events out, state folded from events.
pub mod values;
pub mod webhook_config;

pub use values::ValidationError;
