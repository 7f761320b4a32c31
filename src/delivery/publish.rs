//! Publishing: route an event, commit it with its deliveries, hand them to
//! the supervisor. The answer never waits for a delivery.
use super::event_schemas::EventSchemas;
use super::routing::RoutingCache;
use super::supervisor::SupervisorHandle;
use super::wire::{event_data_of, EventData};
use aggregates::values::ConfigId;
use aggregates::values::TEST_EVENT_TYPE;
use projections::deliveries::{
    DeliveryKind, DeliveryStore, NewEvent, Published, Target, PUBLISH_DEADLINE,
};
use projections::event_types::EventTypeNames;
use projections::tenancy::{ApiKey, Organisation};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("unknown event type '{event_type}'; valid types are: {}", valid.join(", "))]
    UnknownEventType {
        event_type: String,
        valid: Vec<String>,
    },
    /// The data does not satisfy the event type's JSON Schema.
    #[error("the data does not match the schema of '{event_type}'")]
    SchemaViolation {
        event_type: String,
        violations: Vec<String>,
    },
    #[error(transparent)]
    Store(#[from] projections::Error),
}

#[derive(Clone)]
pub struct Publisher {
    store: DeliveryStore,
    supervisor: SupervisorHandle,
    event_types: EventTypeNames,
    schemas: EventSchemas,
    routes: RoutingCache,
}

impl Publisher {
    /// `routes` must be the cache the command side invalidates.
    /// `store`'s committed deliveries go to `supervisor` from now on.
    pub fn new(store: DeliveryStore, supervisor: SupervisorHandle, routes: RoutingCache) -> Self {
        let to = supervisor.clone();
        store.hand_over_to(Box::new(move |deliveries| to.enqueue(deliveries)));
        Self {
            event_types: EventTypeNames::new(store.db().clone()),
            schemas: EventSchemas::new(store.db().clone()),
            store,
            supervisor,
            routes,
        }
    }

    pub fn supervisor(&self) -> &SupervisorHandle {
        &self.supervisor
    }

    pub fn store(&self) -> &DeliveryStore {
        &self.store
    }

    /// Publishes `data` as an event of `event_type` for the key's
    /// organisation, answering within [`PUBLISH_DEADLINE`] — the
    /// group commit's own deadline, here over all of the publish's database
    /// work (the event-type and schema reads, routing, the commit): a
    /// database that does not answer (cut off without a reset, its locks
    /// held by a frozen node) is "unavailable", and the client tries again.
    /// A commit under way may still land after the deadline — the event is
    /// then delivered although the client was told 503, which a retry with
    /// the same idempotency key turns into the one event (at least once,
    /// never lost once acknowledged).
    pub async fn publish(
        &self,
        organisation: &Organisation,
        key: &ApiKey,
        event_type: &str,
        data: EventData,
        idempotency_key: Option<&str>,
    ) -> Result<Published, PublishError> {
        self.publish_to(organisation, key, event_type, data, idempotency_key, None)
            .await
    }

    /// [`Self::publish`] of a message of the Svix dialect, with its
    /// `channels`: an endpoint that names channels gets it only when they
    /// share one (one more indexed read of the organisation's endpoints
    /// with channels, for these publishes only).
    pub async fn publish_to(
        &self,
        organisation: &Organisation,
        key: &ApiKey,
        event_type: &str,
        data: EventData,
        idempotency_key: Option<&str>,
        channels: Option<&[String]>,
    ) -> Result<Published, PublishError> {
        let publish = async {
            if let Some(valid) = self.event_types.check(event_type).await? {
                return Err(PublishError::UnknownEventType {
                    event_type: event_type.to_owned(),
                    valid,
                });
            }
            let violations = self.schemas.violations(event_type, data.get()).await?;
            if !violations.is_empty() {
                return Err(PublishError::SchemaViolation {
                    event_type: event_type.to_owned(),
                    violations,
                });
            }
            // The configs-profile config that routes this publisher: its key's
            // own, else the organisation's default.
            let routed = key.webhook_config.or(organisation.webhook_config_default);
            let targets = self
                .routes
                .targets(&self.store, organisation.id, event_type, routed)
                .await?;
            let mut targets = targets.to_vec();
            if let Some(channels) = channels {
                let restricted =
                    projections::svix::channel_endpoints(self.store.db(), organisation.id).await?;
                if !restricted.is_empty() {
                    targets.retain(|target| {
                        restricted
                            .get(&target.config_id.get())
                            .is_none_or(|allowed| allowed.admit(channels))
                    });
                }
            }
            let new = NewEvent {
                organisation: organisation.id,
                idempotency_key: idempotency_key.map(str::to_owned),
                event_type: event_type.to_owned(),
                data,
                key_id: Some(key.id),
                kind: DeliveryKind::Event,
                task_id: None,
                targets,
            };
            self.commit(new).await
        };
        tokio::time::timeout(PUBLISH_DEADLINE, publish)
            .await
            .unwrap_or(Err(PublishError::Store(projections::Error::Unavailable(
                "the database did not answer in time",
            ))))
    }

    /// Commits the event with its deliveries; the store hands them to the
    /// supervisor as it commits (see `Self::new`), whether or not this
    /// caller is still waiting then.
    async fn commit(&self, new: NewEvent) -> Result<Published, PublishError> {
        let organisation = new.organisation;
        let published = self.store.publish(new).await?;
        tracing::debug!(
            event_id = %published.event.id,
            event_type = %published.event.event_type,
            organisation,
            deliveries = published.delivery_count,
            duplicate = published.duplicate,
            "event published"
        );
        Ok(published)
    }

    /// Sends a finished delivery of config `config_id` again with a fresh
    /// retry budget (a manual retry); `false` when there is no such delivery.
    pub async fn send_again(
        &self,
        config_id: ConfigId,
        delivery_id: i64,
    ) -> Result<bool, projections::Error> {
        let Some(pending) = self.store.retry(config_id, delivery_id).await? else {
            return Ok(false);
        };
        self.supervisor.enqueue_again(vec![pending]);
        Ok(true)
    }

    /// Sends a notice to an organisation's operational webhook (config
    /// `target`; see `operational.rs`): an event of its own, outside the
    /// catalog, for that config only.
    pub async fn publish_operational(
        &self,
        organisation: i64,
        target: ConfigId,
        event_type: &str,
        data: &serde_json::Value,
    ) -> Result<Published, PublishError> {
        let new = to_one_config(organisation, target, event_type, data, DeliveryKind::Event);
        self.commit(new).await
    }

    /// Sends one `webhook_config.test` event to one config; its outcome is
    /// recorded on the config as a `Tested` event.
    pub async fn test(
        &self,
        organisation: i64,
        config_id: ConfigId,
        task_id: Option<&str>,
    ) -> Result<Published, PublishError> {
        let data = json!({ "webhook_config": config_id });
        let new = NewEvent {
            task_id: task_id.map(str::to_owned),
            ..to_one_config(
                organisation,
                config_id,
                TEST_EVENT_TYPE,
                &data,
                DeliveryKind::Test,
            )
        };
        self.commit(new).await
    }
}

/// An event of webhookd's own for one config, whatever it subscribes to.
/// It takes no place in a FIFO line: it goes out at once.
fn to_one_config(
    organisation: i64,
    config_id: ConfigId,
    event_type: &str,
    data: &serde_json::Value,
    kind: DeliveryKind,
) -> NewEvent {
    NewEvent {
        organisation,
        idempotency_key: None,
        event_type: event_type.to_owned(),
        data: event_data_of(data),
        key_id: None,
        kind,
        task_id: None,
        targets: vec![Target {
            config_id,
            fifo: false,
        }],
    }
}
