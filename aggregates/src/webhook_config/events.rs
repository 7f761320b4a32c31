use super::state::{DeactivationReason, Profile};
use crate::values::{
    ConfigId, ConfigName, CustomHeaders, DeliveryOrdering, OrganisationId, RateLimit, RetryCount,
    SubscribedEvents, TimeoutSeconds, WebhookSecret, WebhookUrl,
};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

/// Version of the events whose payload never changed. Bump an event's own
/// version when its fields change, and upcast the older shape in
/// [`super::upcasting`].
pub const EVENT_VERSION: &str = "1.0";

/// What happened to a webhook config. Stored for ever: never change a field's
/// meaning, only add optional fields or new versions.
/// Who did it, the request id and the time travel as event metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WebhookConfigEvent {
    Created {
        id: ConfigId,
        organisation: OrganisationId,
        profile: Profile,
        url: WebhookUrl,
        name: ConfigName,
        events: SubscribedEvents,
        headers: CustomHeaders,
        retry_count: RetryCount,
        timeout_seconds: TimeoutSeconds,
        secret: WebhookSecret,
    },
    UrlUpdated {
        url: WebhookUrl,
    },
    SettingsUpdated(SettingsChanged),
    Tested {
        success: bool,
        status_code: Option<u16>,
        error: Option<String>,
        task_id: Option<String>,
    },
    Deactivated {
        reason: DeactivationReason,
    },
    Reactivated {},
    /// The previous secret is not repeated here: the fold knows it. Events
    /// written before overlaps existed have no expiry (it ended at once).
    SecretRotated {
        secret: WebhookSecret,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous_expires_at: Option<i64>,
    },
    Deleted {},
}

/// The settings a `SettingsUpdated` changed; `None` means unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SettingsChanged {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<ConfigName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<SubscribedEvents>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<CustomHeaders>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_count: Option<RetryCount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<TimeoutSeconds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering: Option<DeliveryOrdering>,
}

impl SettingsChanged {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl DomainEvent for WebhookConfigEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Created { .. } => "Created",
            Self::UrlUpdated { .. } => "UrlUpdated",
            Self::SettingsUpdated(_) => "SettingsUpdated",
            Self::Tested { .. } => "Tested",
            Self::Deactivated { .. } => "Deactivated",
            Self::Reactivated {} => "Reactivated",
            Self::SecretRotated { .. } => "SecretRotated",
            Self::Deleted {} => "Deleted",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        match self {
            Self::Created { .. } => super::upcasting::CREATED_VERSION,
            _ => EVENT_VERSION,
        }
        .to_owned()
    }
}
