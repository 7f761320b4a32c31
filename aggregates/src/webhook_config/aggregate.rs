use super::commands::{ConfigChanges, NewWebhookConfig, TestOutcome, WebhookConfigCommand};
use super::errors::WebhookConfigError;
use super::events::{SettingsChanged, WebhookConfigEvent};
use super::services::WebhookConfigServices;
use super::state::{ConfigState, DeactivationReason, Profile};
use crate::values::{
    ConfigId, ConfigName, CustomHeaders, DeliveryOrdering, OrganisationId, RateLimit, RetryCount,
    SubscribedEvents, TimeoutSeconds, WebhookSecret, WebhookUrl,
};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

/// Whether the config exists at all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lifecycle {
    /// No `Created` yet.
    #[default]
    Absent,
    Live,
    /// Gone from every API; its events stay in the log.
    Deleted,
}

/// How many replaced secrets may still sign at once (the oldest goes first).
pub const MAX_PREVIOUS_SECRETS: usize = 5;

/// A secret replaced by a rotation, valid until `expires_at` (µs since the epoch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviousSecret {
    pub secret: WebhookSecret,
    pub expires_at: i64,
}

/// A webhook config folded from its events. The fields are what the read
/// model stores; `audit --verify` compares the two.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebhookConfig {
    pub lifecycle: Lifecycle,
    pub id: Option<ConfigId>,
    pub organisation: Option<OrganisationId>,
    pub profile: Profile,
    pub url: Option<WebhookUrl>,
    pub name: ConfigName,
    pub events: Option<SubscribedEvents>,
    pub headers: CustomHeaders,
    pub retry_count: RetryCount,
    pub timeout_seconds: TimeoutSeconds,
    #[serde(default)]
    pub rate_limit: RateLimit,
    #[serde(default)]
    pub ordering: DeliveryOrdering,
    pub secret: Option<WebhookSecret>,
    /// Secrets replaced by a rotation that still sign beside the current
    /// one until their expiry, newest first; at most
    /// [`MAX_PREVIOUS_SECRETS`]. Whether one has expired is decided where
    /// the clock is read (the delivery side), not here.
    #[serde(default)]
    pub previous_secrets: Vec<PreviousSecret>,
    pub state: ConfigState,
    pub deactivation_reason: Option<DeactivationReason>,
}

impl Aggregate for WebhookConfig {
    const TYPE: &'static str = "WebhookConfig";
    type Command = WebhookConfigCommand;
    type Event = WebhookConfigEvent;
    type Error = WebhookConfigError;
    type Services = WebhookConfigServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let events = match command {
            WebhookConfigCommand::Create(new) => self.create(new, services).await?,
            other => {
                self.ensure_live()?;
                match other {
                    WebhookConfigCommand::Create(_) => unreachable!("handled above"),
                    WebhookConfigCommand::Update(changes) => self.update(changes, services).await?,
                    WebhookConfigCommand::RecordTest(outcome) => self.record_test(outcome)?,
                    WebhookConfigCommand::Deactivate { reason } => self.deactivate(reason)?,
                    WebhookConfigCommand::Reactivate => self.reactivate()?,
                    WebhookConfigCommand::RotateSecret {
                        secret,
                        previous_expires_at,
                    } => vec![WebhookConfigEvent::SecretRotated {
                        secret,
                        previous_expires_at,
                    }],
                    WebhookConfigCommand::Delete => vec![WebhookConfigEvent::Deleted {}],
                }
            }
        };
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            WebhookConfigEvent::Created {
                id,
                organisation,
                profile,
                url,
                name,
                events,
                headers,
                retry_count,
                timeout_seconds,
                secret,
            } => {
                *self = Self {
                    lifecycle: Lifecycle::Live,
                    id: Some(id),
                    organisation: Some(organisation),
                    profile,
                    url: Some(url),
                    name,
                    events: Some(events),
                    headers,
                    retry_count,
                    timeout_seconds,
                    rate_limit: RateLimit::UNLIMITED,
                    ordering: DeliveryOrdering::None,
                    secret: Some(secret),
                    previous_secrets: Vec::new(),
                    state: ConfigState::New,
                    deactivation_reason: None,
                }
            }
            WebhookConfigEvent::UrlUpdated { url } => {
                self.url = Some(url);
                if self.state != ConfigState::Deactivated {
                    self.state = ConfigState::New;
                }
            }
            WebhookConfigEvent::SettingsUpdated(changed) => {
                if let Some(name) = changed.name {
                    self.name = name;
                }
                if let Some(events) = changed.events {
                    self.events = Some(events);
                }
                if let Some(headers) = changed.headers {
                    self.headers = headers;
                }
                if let Some(retry_count) = changed.retry_count {
                    self.retry_count = retry_count;
                }
                if let Some(timeout_seconds) = changed.timeout_seconds {
                    self.timeout_seconds = timeout_seconds;
                }
                if let Some(rate_limit) = changed.rate_limit {
                    self.rate_limit = rate_limit;
                }
                if let Some(ordering) = changed.ordering {
                    self.ordering = ordering;
                }
            }
            WebhookConfigEvent::Tested { success, .. } => {
                self.state = if success {
                    ConfigState::Valid
                } else {
                    ConfigState::Invalid
                };
            }
            WebhookConfigEvent::Deactivated { reason } => {
                self.state = ConfigState::Deactivated;
                self.deactivation_reason = Some(reason);
            }
            WebhookConfigEvent::Reactivated {} => {
                self.state = ConfigState::New;
                self.deactivation_reason = None;
            }
            WebhookConfigEvent::SecretRotated {
                secret,
                previous_expires_at,
            } => {
                let previous = self.secret.replace(secret);
                if let (Some(previous), Some(expires_at)) = (previous, previous_expires_at) {
                    self.previous_secrets.insert(
                        0,
                        PreviousSecret {
                            secret: previous,
                            expires_at,
                        },
                    );
                    self.previous_secrets.truncate(MAX_PREVIOUS_SECRETS);
                }
            }
            WebhookConfigEvent::Deleted {} => self.lifecycle = Lifecycle::Deleted,
        }
    }
}

impl WebhookConfig {
    /// Folds a config from its events, oldest first.
    pub fn from_events(events: impl IntoIterator<Item = WebhookConfigEvent>) -> Self {
        let mut config = Self::default();
        for event in events {
            config.apply(event);
        }
        config
    }

    fn ensure_live(&self) -> Result<(), WebhookConfigError> {
        match self.lifecycle {
            Lifecycle::Live => Ok(()),
            Lifecycle::Absent | Lifecycle::Deleted => Err(WebhookConfigError::NotFound),
        }
    }

    async fn create(
        &self,
        new: NewWebhookConfig,
        services: &WebhookConfigServices,
    ) -> Result<Vec<WebhookConfigEvent>, WebhookConfigError> {
        if self.lifecycle != Lifecycle::Absent {
            return Err(WebhookConfigError::AlreadyExists);
        }
        ensure_known(&new.events, services).await?;
        let mut events = vec![WebhookConfigEvent::Created {
            id: new.id,
            organisation: new.organisation,
            profile: new.profile,
            url: new.url,
            name: new.name,
            events: new.events,
            headers: new.headers,
            retry_count: new.retry_count,
            timeout_seconds: new.timeout_seconds,
            secret: new.secret,
        }];
        // `Created` keeps its shape (older events stay readable as they
        // are): a limit or an ordering given at creation is a settings
        // change after it.
        let settings = SettingsChanged {
            rate_limit: Some(new.rate_limit).filter(|v| *v != RateLimit::UNLIMITED),
            ordering: Some(new.ordering).filter(|v| *v != DeliveryOrdering::None),
            ..SettingsChanged::default()
        };
        if !settings.is_empty() {
            events.push(WebhookConfigEvent::SettingsUpdated(settings));
        }
        if !new.active {
            events.push(WebhookConfigEvent::Deactivated {
                reason: DeactivationReason::Owner,
            });
        }
        Ok(events)
    }

    /// Emits only what actually changes: an update that changes nothing
    /// records nothing.
    async fn update(
        &self,
        changes: ConfigChanges,
        services: &WebhookConfigServices,
    ) -> Result<Vec<WebhookConfigEvent>, WebhookConfigError> {
        if let Some(subscribed) = &changes.events {
            ensure_known(subscribed, services).await?;
        }
        let mut events = Vec::new();
        if let Some(url) = changes.url.filter(|url| Some(url) != self.url.as_ref()) {
            events.push(WebhookConfigEvent::UrlUpdated { url });
        }
        let settings = SettingsChanged {
            name: changes.name.filter(|v| *v != self.name),
            events: changes.events.filter(|v| Some(v) != self.events.as_ref()),
            headers: changes.headers.filter(|v| *v != self.headers),
            retry_count: changes.retry_count.filter(|v| *v != self.retry_count),
            timeout_seconds: changes
                .timeout_seconds
                .filter(|v| *v != self.timeout_seconds),
            rate_limit: changes.rate_limit.filter(|v| *v != self.rate_limit),
            ordering: changes.ordering.filter(|v| *v != self.ordering),
        };
        if !settings.is_empty() {
            events.push(WebhookConfigEvent::SettingsUpdated(settings));
        }
        let deactivated = self.state == ConfigState::Deactivated;
        match changes.active {
            Some(false) if !deactivated => events.push(WebhookConfigEvent::Deactivated {
                reason: DeactivationReason::Owner,
            }),
            Some(true) if deactivated => events.push(WebhookConfigEvent::Reactivated {}),
            _ => {}
        }
        Ok(events)
    }

    fn record_test(
        &self,
        outcome: TestOutcome,
    ) -> Result<Vec<WebhookConfigEvent>, WebhookConfigError> {
        if self.state == ConfigState::Deactivated {
            return Err(WebhookConfigError::TestWhileDeactivated);
        }
        Ok(vec![WebhookConfigEvent::Tested {
            success: outcome.success,
            status_code: outcome.status_code,
            error: outcome.error,
            task_id: outcome.task_id,
        }])
    }

    fn deactivate(
        &self,
        reason: DeactivationReason,
    ) -> Result<Vec<WebhookConfigEvent>, WebhookConfigError> {
        if self.state == ConfigState::Deactivated {
            return Err(WebhookConfigError::AlreadyDeactivated);
        }
        Ok(vec![WebhookConfigEvent::Deactivated { reason }])
    }

    fn reactivate(&self) -> Result<Vec<WebhookConfigEvent>, WebhookConfigError> {
        if self.state != ConfigState::Deactivated {
            return Err(WebhookConfigError::NotDeactivated);
        }
        Ok(vec![WebhookConfigEvent::Reactivated {}])
    }
}

async fn ensure_known(
    subscribed: &SubscribedEvents,
    services: &WebhookConfigServices,
) -> Result<(), WebhookConfigError> {
    if subscribed.is_wildcard() {
        return Ok(());
    }
    let catalog = services
        .catalog
        .known_event_types()
        .await
        .map_err(WebhookConfigError::CatalogUnavailable)?;
    let unknown = subscribed.unknown_in(&catalog);
    if unknown.is_empty() {
        Ok(())
    } else {
        let mut valid = catalog;
        valid.sort();
        Err(WebhookConfigError::UnknownEventTypes {
            unknown: unknown.into_iter().map(str::to_owned).collect(),
            valid,
        })
    }
}

#[cfg(test)]
#[path = "aggregate_tests.rs"]
mod tests;
