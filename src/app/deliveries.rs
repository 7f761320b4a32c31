//! Deliveries: publish an event, send one again, test an endpoint, send
//! one example, recover what failed — and the rules every dialect and
//! the console must apply alike (a deactivated endpoint is neither tested
//! nor recovered; a delivery is retried only to an endpoint that receives).
//! Reads of deliveries are queries of the store ([`Deliveries::store`]).
use crate::delivery::publish::{PublishError, Publisher};
use crate::delivery::recovery;
use crate::delivery::wire::EventData;
use aggregates::values::ConfigId;
use aggregates::webhook_config::ConfigState;
use projections::deliveries::TaskStore;
use projections::deliveries::{DeliveryStore, Published};
use projections::tenancy::{ApiKey, Organisation};
use projections::webhook_configs::ConfigRow;

/// What a delivery use case was asked to do, for a refusal's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Retry,
    Test,
    Recover,
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The endpoint is in a state that does not allow `action`.
    #[error("the endpoint is {state}")]
    NotReceiving { state: ConfigState, action: Action },
    /// No delivery of that id to that endpoint.
    #[error("delivery not found")]
    NotFound,
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Storage(#[from] projections::Error),
}

impl DeliveryError {
    /// A refusal for the endpoint's state, in the words of a dialect that
    /// calls endpoints `noun` ("webhook", "endpoint").
    pub fn refusal(&self, noun: &str) -> Option<String> {
        let DeliveryError::NotReceiving { state, action } = self else {
            return None;
        };
        Some(match action {
            Action::Retry => {
                format!("the {noun} is {state}; reactivate it before retrying deliveries")
            }
            Action::Test => format!("a deactivated {noun} cannot be tested; reactivate it first"),
            Action::Recover => format!(
                "a deactivated {noun} receives nothing; reactivate it before recovering deliveries"
            ),
        })
    }
}

/// A `webhook_config.test` delivery as the configs dialect records it: a
/// task of its own that ends with the test.
#[derive(Debug, Clone, Copy)]
pub enum TestRecord {
    /// No task (the v1 dialect, the console).
    None,
    /// A `webhook_config.test` task, created by the key `key_id`.
    Task { key_id: Option<i64> },
}

/// A test started: its event and delivery, and its task if one was made.
pub struct TestStarted {
    pub published: Published,
    pub task: Option<i64>,
}

/// The delivery use cases, with what they need.
#[derive(Clone)]
pub struct Deliveries {
    publisher: Publisher,
    tasks: TaskStore,
}

impl Deliveries {
    pub fn new(publisher: Publisher, tasks: TaskStore) -> Self {
        Self { publisher, tasks }
    }

    /// The rows of deliveries and attempts, for the dialects' lists.
    pub fn store(&self) -> &DeliveryStore {
        self.publisher.store()
    }

    /// Publishes an event of `event_type` for `organisation` (see
    /// `Publisher::publish`: the catalog, the type's schema, routing, the
    /// commit, all within the publish deadline).
    pub async fn publish(
        &self,
        organisation: &Organisation,
        key: &ApiKey,
        event_type: &str,
        data: EventData,
        idempotency_key: Option<&str>,
    ) -> Result<Published, PublishError> {
        self.publisher
            .publish(organisation, key, event_type, data, idempotency_key)
            .await
    }

    /// Publishes a message of the Svix dialect with its `channels` (empty:
    /// none): endpoints that name channels get it only when they share one.
    pub async fn publish_message(
        &self,
        organisation: &Organisation,
        key: &ApiKey,
        event_type: &str,
        data: EventData,
        event_id: Option<&str>,
        channels: &[String],
    ) -> Result<Published, PublishError> {
        self.publisher
            .publish_to(
                organisation,
                key,
                event_type,
                data,
                event_id,
                Some(channels),
            )
            .await
    }

    /// Sends a finished delivery to `config` again with a fresh retry
    /// budget; a delivery still under way goes on as it is.
    pub async fn send_again(
        &self,
        config: &ConfigRow,
        delivery_id: i64,
    ) -> Result<(), DeliveryError> {
        if !config.state.may_receive() {
            return Err(DeliveryError::NotReceiving {
                state: config.state,
                action: Action::Retry,
            });
        }
        if self
            .publisher
            .send_again(ConfigId::new(config.id), delivery_id)
            .await?
        {
            Ok(())
        } else {
            Err(DeliveryError::NotFound)
        }
    }

    /// One signed `webhook_config.test` delivery to `config`; its outcome
    /// makes the config `valid` or `invalid`.
    pub async fn test(
        &self,
        config: &ConfigRow,
        record: TestRecord,
    ) -> Result<TestStarted, DeliveryError> {
        if config.state == ConfigState::Deactivated {
            return Err(DeliveryError::NotReceiving {
                state: config.state,
                action: Action::Test,
            });
        }
        let task = match record {
            TestRecord::None => None,
            TestRecord::Task { key_id } => Some(
                self.tasks
                    .create_test(config.organisation, key_id, config.id)
                    .await?,
            ),
        };
        let task_id = task.map(|task| task.to_string());
        let published = self
            .publisher
            .test(
                config.organisation,
                ConfigId::new(config.id),
                task_id.as_deref(),
            )
            .await?;
        Ok(TestStarted { published, task })
    }

    /// One event of `event_type` with `data` to `config` alone (an
    /// example, outside the catalog's routing).
    pub async fn send_one(
        &self,
        config: &ConfigRow,
        event_type: &str,
        data: &serde_json::Value,
    ) -> Result<Published, DeliveryError> {
        Ok(self
            .publisher
            .publish_operational(
                config.organisation,
                ConfigId::new(config.id),
                event_type,
                data,
            )
            .await?)
    }

    /// Sends again, in the background, the deliveries to `config` that
    /// failed within `window` (µs); the task's id.
    pub async fn recover(
        &self,
        config: &ConfigRow,
        key_id: Option<i64>,
        window: (i64, i64),
    ) -> Result<i64, DeliveryError> {
        if config.state == ConfigState::Deactivated {
            return Err(DeliveryError::NotReceiving {
                state: config.state,
                action: Action::Recover,
            });
        }
        Ok(recovery::begin(
            &self.publisher,
            &self.tasks,
            (config.organisation, key_id),
            ConfigId::new(config.id),
            window,
        )
        .await?)
    }
}
