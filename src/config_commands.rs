//! Sending commands to WebhookConfig aggregates.
use crate::changes::{Change, ChangeBus};
use crate::sealed_event_store::SealedEventRepository;
use aggregates::values::ConfigId;
use aggregates::webhook_config::upcasting;
use aggregates::webhook_config::{
    WebhookConfig, WebhookConfigCommand, WebhookConfigError, WebhookConfigServices,
};
use cqrs_es::persist::{EventUpcaster, PersistedEventStore, SemanticVersionEventUpcaster};
use cqrs_es::CqrsFramework;
use cqrs_es::{AggregateError, Query};
use projections::event_store::EventRepository;
use projections::event_types::DbEventTypeCatalog;
use projections::webhook_configs::ConfigProjector;
use projections::Db;
use rand::Rng;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How often a command is retried when another command on the same config
/// committed first. Each retry reloads the aggregate, so it decides on fresh
/// state; 50 attempts absorb even a burst of writers on one config.
const MAX_ATTEMPTS: u32 = 50;

/// Who sent a command and in which request: stored as event metadata.
#[derive(Debug, Clone)]
pub struct CommandMetadata {
    /// `key:<id>` for API calls, `cli` for the operator's commands,
    /// `system` for webhookd itself.
    pub actor: String,
    pub request_id: Option<String>,
}

impl CommandMetadata {
    pub fn api_key(key_id: i64, request_id: &str) -> Self {
        Self {
            actor: format!("key:{key_id}"),
            request_id: Some(request_id.to_owned()),
        }
    }

    /// webhookd acting on its own (delivery outcomes, test results).
    pub fn system() -> Self {
        Self {
            actor: "system".to_owned(),
            request_id: None,
        }
    }

    fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::from([
            ("actor".to_owned(), self.actor.clone()),
            (
                "time".to_owned(),
                projections::db::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            ),
        ]);
        if let Some(request_id) = &self.request_id {
            map.insert("request_id".to_owned(), request_id.clone());
        }
        map
    }
}

/// Why a command did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The domain refused it; nothing was stored.
    #[error(transparent)]
    Rejected(#[from] WebhookConfigError),
    /// Other commands on the same config kept winning the race.
    #[error("the webhook config is changing too fast; try again")]
    Contended,
    /// The database cannot be reached; nothing was stored.
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    #[error("event store error: {0}")]
    Store(String),
}

impl CommandError {
    /// Sorts a store failure: the database being away (a 503 for the
    /// caller, who may try again) from anything else (a fault of ours).
    fn from_store<T: std::error::Error>(error: AggregateError<T>) -> Self {
        let unavailable = match &error {
            AggregateError::DatabaseConnectionError(_) => true,
            AggregateError::UnexpectedError(source) => {
                projections::db::is_unavailable_source(source.as_ref())
            }
            _ => false,
        };
        if unavailable {
            Self::Unavailable(error.to_string())
        } else {
            Self::Store(error.to_string())
        }
    }
}

/// The framework over the backend's event repository, secrets sealed.
type Framework = CqrsFramework<
    WebhookConfig,
    PersistedEventStore<SealedEventRepository<EventRepository>, WebhookConfig>,
>;

/// The write side for webhook configs: a cqrs-es framework over the plain
/// event store of the configured backend, with the config projector as its
/// query so that the read model is current when `execute` returns.
#[derive(Clone)]
pub struct ConfigCommands {
    framework: Arc<Framework>,
    /// The framework's projector (a clone sharing its state), to repair
    /// a row its dispatch could not write before the command answers.
    projector: ConfigProjector,
}

/// Announces every committed config change on the [`ChangeBus`]: the
/// read caches forget the config before the command answers, and the
/// delivery side (of this node and, through the cluster bus, of the
/// others) picks up a new URL, secret, policy or deactivation at once.
/// Runs after the projector, so whoever re-reads finds the new row.
#[derive(Clone)]
pub struct ConfigChangeNotifier {
    bus: ChangeBus,
}

impl ConfigChangeNotifier {
    pub fn new(bus: ChangeBus) -> Self {
        Self { bus }
    }
}

#[async_trait::async_trait]
impl Query<WebhookConfig> for ConfigChangeNotifier {
    async fn dispatch(&self, aggregate_id: &str, _: &[cqrs_es::EventEnvelope<WebhookConfig>]) {
        self.bus.announce(match ConfigId::parse(aggregate_id) {
            Some(id) => Change::Config(id),
            None => Change::Everything,
        });
    }
}

impl ConfigCommands {
    /// The projector runs first, so a notified actor reads the new row.
    /// `listeners` hear every committed event after them (operational
    /// webhooks).
    pub fn new(
        db: &Db,
        notifier: ConfigChangeNotifier,
        listeners: Vec<Box<dyn Query<WebhookConfig>>>,
    ) -> Self {
        let services = WebhookConfigServices::new(Arc::new(DbEventTypeCatalog::new(db.clone())));
        let projector = ConfigProjector::new(db.clone());
        let mut queries: Vec<Box<dyn Query<WebhookConfig>>> =
            vec![Box::new(projector.clone()), Box::new(notifier)];
        queries.extend(listeners);
        // With the `fault-injection` feature only (the test suite's): no
        // environment of a production build reaches it.
        if cfg!(feature = "fault-injection")
            && std::env::var_os("WEBHOOKD_FAULT_ABORT_BEFORE_PROJECTION").is_some()
        {
            queries.insert(0, Box::new(AbortBeforeProjection));
        }
        let framework = CqrsFramework::new(
            PersistedEventStore::new_event_store(SealedEventRepository::new(
                EventRepository::for_backend(db),
                db.clone(),
            ))
            .with_upcasters(upcasters()),
            queries,
            services,
        );
        Self {
            framework: Arc::new(framework),
            projector,
        }
    }

    /// Executes `command` on config `id`, retrying when a concurrent command
    /// on the same config committed in between (cqrs-es reports that as
    /// `AggregateConflict` and retries nothing itself).
    pub async fn execute(
        &self,
        id: ConfigId,
        command: WebhookConfigCommand,
        metadata: &CommandMetadata,
    ) -> Result<(), CommandError> {
        let aggregate_id = id.aggregate_id();
        for attempt in 1..=MAX_ATTEMPTS {
            let result = self
                .framework
                .execute_with_metadata(&aggregate_id, command.clone(), metadata.to_map())
                .await;
            match result {
                Ok(()) => {
                    return self.projector.repair(&aggregate_id).await.map_err(|error| {
                        CommandError::Unavailable(format!(
                            "the change is stored, but its read model is not written yet: {error}"
                        ))
                    })
                }
                Err(AggregateError::UserError(error)) => return Err(error.into()),
                Err(AggregateError::AggregateConflict) => {
                    tracing::debug!(%aggregate_id, attempt, "concurrent command; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(other) => return Err(CommandError::from_store(other)),
            }
        }
        Err(CommandError::Contended)
    }
}

/// cqrs-es's view of [`aggregates::webhook_config::upcasting`]: the same
/// function, applied to events older than the current version.
fn upcasters() -> Vec<Box<dyn EventUpcaster>> {
    vec![Box::new(SemanticVersionEventUpcaster::new(
        "Created",
        upcasting::CREATED_VERSION,
        Box::new(|payload| upcasting::upcast("Created", "1.0", payload)),
    ))]
}

/// Test-only fault injection (feature `fault-injection`): with `WEBHOOKD_FAULT_ABORT_BEFORE_PROJECTION=1`
/// the process aborts right after a command's events are committed, before
/// the read model is updated — the crash that start-up catch-up repairs.
struct AbortBeforeProjection;

#[async_trait::async_trait]
impl Query<WebhookConfig> for AbortBeforeProjection {
    async fn dispatch(&self, aggregate_id: &str, _: &[cqrs_es::EventEnvelope<WebhookConfig>]) {
        eprintln!("fault injection: aborting after committing events of config {aggregate_id}");
        std::process::abort();
    }
}

/// A short, jittered pause so that racing writers spread out.
fn backoff(attempt: u32) -> Duration {
    let ceiling_ms = u64::from(attempt.min(10)) * 2;
    Duration::from_micros(rand::thread_rng().gen_range(100..=ceiling_ms * 1000))
}
