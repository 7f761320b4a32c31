//! Validated value types. Each has a `parse` constructor that is the only way
//! to build one from untrusted input; the error says what is wrong in words
//! an API user can act on.
mod event_types;
mod headers;
mod ids;
mod limits;
mod name;
mod secret;
mod tenancy;
mod url;

pub use event_types::{EventTypeName, SubscribedEvents, TEST_EVENT_TYPE, WILDCARD};
pub use headers::CustomHeaders;
pub use ids::{ConfigId, OrganisationId};
pub use limits::{DeliveryOrdering, RateLimit, RetryCount, TimeoutSeconds};
pub use name::ConfigName;
pub use secret::{StandardKey, WebhookSecret};
pub use tenancy::{parse_features, Plan, Scope, WEBHOOKS_FEATURE};
pub use url::{is_forbidden_target, IpCidr, UrlPolicy, WebhookUrl, MAX_URL_LENGTH};

/// Why a raw value was refused. The message is meant for the API user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidationError(pub String);

impl ValidationError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}
