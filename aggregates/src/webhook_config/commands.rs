use super::state::{DeactivationReason, Profile};
use crate::values::{
    ConfigId, ConfigName, CustomHeaders, DeliveryOrdering, OrganisationId, RateLimit, RetryCount,
    SubscribedEvents, TimeoutSeconds, WebhookSecret, WebhookUrl,
};

/// What a caller may ask of a webhook config. Every field is already a
/// validated value: parsing happens at the edge, deciding happens here.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookConfigCommand {
    Create(NewWebhookConfig),
    /// A partial update (v1 `PATCH`, configs `POST /configs/webhook/{id}`):
    /// applied atomically, emitting one event per kind of change.
    Update(ConfigChanges),
    RecordTest(TestOutcome),
    Deactivate {
        reason: DeactivationReason,
    },
    Reactivate,
    /// A new signing secret; the current one stays valid beside it until
    /// `previous_expires_at` (µs since the epoch; `None`: it ends at once).
    RotateSecret {
        secret: WebhookSecret,
        previous_expires_at: Option<i64>,
    },
    Delete,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewWebhookConfig {
    pub id: ConfigId,
    pub organisation: OrganisationId,
    pub profile: Profile,
    pub url: WebhookUrl,
    pub name: ConfigName,
    pub events: SubscribedEvents,
    pub headers: CustomHeaders,
    pub retry_count: RetryCount,
    pub timeout_seconds: TimeoutSeconds,
    pub secret: WebhookSecret,
    /// `false` creates the config already deactivated (v1 `is_active: false`).
    pub active: bool,
    pub rate_limit: RateLimit,
    pub ordering: DeliveryOrdering,
}

/// A partial update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigChanges {
    pub url: Option<WebhookUrl>,
    pub name: Option<ConfigName>,
    pub events: Option<SubscribedEvents>,
    pub headers: Option<CustomHeaders>,
    pub retry_count: Option<RetryCount>,
    pub timeout_seconds: Option<TimeoutSeconds>,
    pub rate_limit: Option<RateLimit>,
    pub ordering: Option<DeliveryOrdering>,
    /// `Some(false)` deactivates (reason `owner`), `Some(true)` reactivates.
    pub active: Option<bool>,
}

/// The result of one test delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct TestOutcome {
    pub success: bool,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub task_id: Option<String>,
}
