//! What the supervisor and the endpoint actors of one node share, built
//! once at start-up from [`EngineParts`] and read only inside `delivery`.
//!
//! Grouped by who needs what, not one bag of services: the actors' reads
//! of pending rows go to [`DeliveryEngine::store`]; what every actor
//! consults about the node (may it send to this endpoint, is there room
//! for one more held delivery, is this one being recorded) is
//! [`NodeShare`]; the sending and the policy after an answer are
//! [`Attempts`], which the actors reach only through `send` and `settle`.
use super::budget::HeldBudget;
use super::operational::OperationalWebhooks;
use super::policy::Attempts;
use super::recording::Recording;
use super::settings::DeliverySettings;
use crate::cluster::Ownership;
use crate::config_commands::ConfigCommands;
use projections::deliveries::{DeliveryStore, TaskStore};

/// The delivery engine's shared parts (see the module docs).
pub struct DeliveryEngine {
    /// The pending rows: loads, reads, failing what cannot be sent.
    pub(super) store: DeliveryStore,
    pub(super) settings: DeliverySettings,
    pub(super) node: NodeShare,
    pub(super) attempts: Attempts,
}

/// What every endpoint actor asks of the node.
pub(super) struct NodeShare {
    /// Which endpoints this node may send to (all, on a single node).
    pub(super) ownership: Ownership,
    /// Deliveries held in memory by all the actors together.
    pub(super) budget: HeldBudget,
    /// Deliveries whose answered attempt is being recorded.
    pub(super) recording: Recording,
}

/// What start-up hands the engine.
pub struct EngineParts {
    pub store: DeliveryStore,
    pub tasks: TaskStore,
    pub settings: DeliverySettings,
    pub commands: ConfigCommands,
    pub ownership: Ownership,
    pub operational: OperationalWebhooks,
}

impl DeliveryEngine {
    pub fn new(parts: EngineParts) -> Self {
        let EngineParts {
            store,
            tasks,
            settings,
            commands,
            ownership,
            operational,
        } = parts;
        Self {
            node: NodeShare {
                ownership: ownership.clone(),
                budget: HeldBudget::new(settings.max_queued_deliveries),
                recording: Recording::default(),
            },
            attempts: Attempts {
                store: store.clone(),
                tasks,
                settings: settings.clone(),
                commands,
                ownership,
                operational,
            },
            store,
            settings,
        }
    }
}
