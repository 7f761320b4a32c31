//! Publishing: route an event, commit it with its deliveries, hand them to
//! the supervisor. The answer never waits for a delivery.
use super::store::{DeliveryKind, DeliveryStore, NewEvent, Published};
use super::supervisor::SupervisorHandle;
use aggregates::values::TEST_EVENT_TYPE;
use projections::event_types;
use projections::tenancy::{ApiKey, Organisation};
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("unknown event type '{event_type}'; valid types are: {}", valid.join(", "))]
    UnknownEventType {
        event_type: String,
        valid: Vec<String>,
    },
    #[error(transparent)]
    Store(#[from] projections::Error),
}

#[derive(Clone)]
pub struct Publisher {
    store: DeliveryStore,
    supervisor: SupervisorHandle,
}

impl Publisher {
    pub fn new(store: DeliveryStore, supervisor: SupervisorHandle) -> Self {
        Self { store, supervisor }
    }

    pub fn supervisor(&self) -> &SupervisorHandle {
        &self.supervisor
    }

    pub fn store(&self) -> &DeliveryStore {
        &self.store
    }

    /// Publishes `data` as an event of `event_type` for the key's organisation.
    pub async fn publish(
        &self,
        organisation: &Organisation,
        key: &ApiKey,
        event_type: &str,
        data: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<Published, PublishError> {
        let catalog: Vec<String> = event_types::list(self.store.db())
            .await?
            .into_iter()
            .map(|t| t.name)
            .collect();
        if !catalog.iter().any(|known| known == event_type) {
            return Err(PublishError::UnknownEventType {
                event_type: event_type.to_owned(),
                valid: catalog,
            });
        }
        // The configs-profile config that routes this publisher: its key's
        // own, else the organisation's default.
        let routed = key.webhook_config.or(organisation.webhook_config_default);
        let targets = self
            .store
            .routing_targets(organisation.id, event_type, routed)
            .await?;
        let new = NewEvent {
            organisation: organisation.id,
            idempotency_key,
            event_type,
            data,
            key_id: Some(key.id),
            kind: DeliveryKind::Event,
            task_id: None,
        };
        let published = self.store.publish(new, &targets).await?;
        self.supervisor.enqueue(published.deliveries.clone());
        Ok(published)
    }

    /// Sends one `webhook_config.test` event to one config; its outcome is
    /// recorded on the config as a `Tested` event.
    pub async fn test(
        &self,
        organisation: i64,
        config_id: i64,
        task_id: Option<&str>,
    ) -> Result<Published, PublishError> {
        let data = json!({ "webhook_config": config_id });
        let new = NewEvent {
            organisation,
            idempotency_key: None,
            event_type: TEST_EVENT_TYPE,
            data: &data,
            key_id: None,
            kind: DeliveryKind::Test,
            task_id,
        };
        let published = self.store.publish(new, &[config_id]).await?;
        self.supervisor.enqueue(published.deliveries.clone());
        Ok(published)
    }
}
