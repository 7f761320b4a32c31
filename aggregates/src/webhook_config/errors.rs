/// Why a command was refused. Each variant is a rule of the state machine or
/// of the catalog; none of them is a fault of webhookd.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookConfigError {
    #[error("a webhook config with this id already exists")]
    AlreadyExists,
    #[error("webhook config not found")]
    NotFound,
    #[error("unknown event types: {}; valid types are: {}", unknown.join(", "), valid.join(", "))]
    UnknownEventTypes {
        unknown: Vec<String>,
        valid: Vec<String>,
    },
    #[error("the webhook config is already deactivated")]
    AlreadyDeactivated,
    #[error("the webhook config is not deactivated")]
    NotDeactivated,
    #[error("a deactivated webhook config cannot record a test; reactivate it first")]
    TestWhileDeactivated,
    #[error("the event type catalog could not be read: {0}")]
    CatalogUnavailable(String),
}
