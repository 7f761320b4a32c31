//! The `WebhookConfig` aggregate: one webhook endpoint of one organisation.
//!
//! Split as commands (what a caller asks), events (what happened, stored for
//! ever), the aggregate (decides and folds), errors (why a command was
//! refused) and services (what the decision needs from outside).
mod aggregate;
mod commands;
mod errors;
mod events;
mod services;
mod state;
pub mod upcasting;

pub use aggregate::{Lifecycle, PreviousSecret, WebhookConfig, MAX_PREVIOUS_SECRETS};
pub use commands::{ConfigChanges, NewWebhookConfig, TestOutcome, WebhookConfigCommand};
pub use errors::WebhookConfigError;
pub use events::{SettingsChanged, WebhookConfigEvent, EVENT_VERSION};
pub use services::{EventTypeCatalog, WebhookConfigServices};
pub use state::{ConfigState, DeactivationReason, Profile, UnknownValue};
