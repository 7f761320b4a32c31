//! What changed, announced to whoever listens.
//!
//! The command side, the outcome writer and the publish path say what they
//! changed ([`ChangeBus::announce`]) and know nothing of who listens: the
//! read caches forget what the change touched (at once, before the command
//! answers, so a client reads its own writes), and every subscriber — the
//! delivery supervisor, and on PostgreSQL the cluster bus that carries the
//! change to the other nodes (`cluster::bus`) — gets it on a broadcast
//! channel. Changes from other nodes come in through [`ChangeBus::arrived`]
//! and reach the same caches and subscribers.
//!
//! The bus sits below everything that announces or caches: a cache joins
//! it by implementing [`ReadCache`] (the routing cache in `delivery`, the
//! key cache in `http`), so it imports none of them.
use aggregates::values::ConfigId;
use projections::config_reads::ConfigReads;
use projections::deliveries::PendingDelivery;
use std::sync::Arc;
use tokio::sync::broadcast;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A config command committed (create, update, deactivation, deletion…).
    Config(ConfigId),
    /// Attempts were recorded: these configs' delivery statistics moved.
    Stats(Vec<i64>),
    /// Keys or organisations changed.
    Tenancy,
    /// Deliveries were committed (or made pending again by a manual retry,
    /// `again`): the node that owns each endpoint takes them on.
    Deliveries {
        deliveries: Vec<Committed>,
        again: bool,
    },
    /// A node joined, left or gave partitions up: the others look at the
    /// leases now rather than at their next heartbeat.
    Membership,
    /// This node took partitions on (local only): look for their work now.
    Claimed,
    /// Anything may have changed: a node's notification connection dropped
    /// (what was sent meanwhile is lost), or a subscriber fell behind.
    Everything,
}

/// A committed delivery as the node that owns its endpoint learns of it:
/// whole (it goes straight to the endpoint's actor), or by id when it was
/// too big to travel whole (the owner reads it).
#[derive(Debug, Clone)]
pub enum Committed {
    Whole(PendingDelivery),
    Id {
        config_id: ConfigId,
        delivery_id: i64,
    },
}

impl Committed {
    pub fn config_id(&self) -> ConfigId {
        match self {
            Committed::Whole(delivery) => delivery.config_id,
            Committed::Id { config_id, .. } => *config_id,
        }
    }
}

impl PartialEq for Committed {
    fn eq(&self, other: &Self) -> bool {
        let key = |c: &Committed| match c {
            Committed::Whole(d) => (d.config_id, d.id, true),
            Committed::Id {
                config_id,
                delivery_id,
            } => (*config_id, *delivery_id, false),
        };
        key(self) == key(other)
    }
}

impl Eq for Committed {}

/// A change and where it was made.
#[derive(Debug, Clone)]
pub struct Announced {
    pub change: Change,
    /// Made by another node (and so not to be sent on again).
    pub remote: bool,
}

/// A cache that forgets what a change touched, synchronously, before the
/// change reaches any subscriber (so a client reads its own writes).
pub trait ReadCache: Send + Sync {
    fn forget(&self, change: &Change);
}

/// The caches every change is applied to.
pub type ReadCaches = Vec<Arc<dyn ReadCache>>;

/// The v1 API's config reads (rows, pages, totals).
impl ReadCache for ConfigReads {
    fn forget(&self, change: &Change) {
        match change {
            Change::Config(id) => self.config_changed(Some(id.get())),
            Change::Stats(ids) => self.stats_changed(ids.iter().copied()),
            Change::Everything => self.config_changed(None),
            Change::Tenancy | Change::Deliveries { .. } | Change::Membership | Change::Claimed => {}
        }
    }
}

/// Changes a slow subscriber may fall behind by before it is told
/// [`Change::Everything`] instead.
const BACKLOG: usize = 4096;

#[derive(Clone)]
pub struct ChangeBus {
    caches: Arc<ReadCaches>,
    sender: broadcast::Sender<Announced>,
}

impl ChangeBus {
    pub fn new(caches: ReadCaches) -> Self {
        Self {
            caches: Arc::new(caches),
            sender: broadcast::Sender::new(BACKLOG),
        }
    }

    /// This node changed something.
    pub fn announce(&self, change: Change) {
        self.publish(change, false);
    }

    /// Another node changed something.
    pub fn arrived(&self, change: Change) {
        self.publish(change, true);
    }

    fn publish(&self, change: Change, remote: bool) {
        for cache in self.caches.iter() {
            cache.forget(&change);
        }
        // No subscriber yet (or any more) is not an error.
        let _ = self.sender.send(Announced { change, remote });
    }

    pub fn subscribe(&self) -> Subscription {
        Subscription(self.sender.subscribe())
    }
}

/// One subscriber's view of the bus.
pub struct Subscription(broadcast::Receiver<Announced>);

impl Subscription {
    /// The next change; [`Change::Everything`] if this subscriber fell
    /// behind and missed some. `None` once the bus is gone.
    pub async fn next(&mut self) -> Option<Announced> {
        match self.0.recv().await {
            Ok(announced) => Some(announced),
            Err(broadcast::error::RecvError::Lagged(missed)) => Some(fell_behind(missed)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next change if one is waiting (see [`Self::next`]).
    pub fn try_next(&mut self) -> Option<Announced> {
        match self.0.try_recv() {
            Ok(announced) => Some(announced),
            Err(broadcast::error::TryRecvError::Lagged(missed)) => Some(fell_behind(missed)),
            Err(_) => None,
        }
    }
}

/// What a subscriber that missed changes is told instead.
fn fell_behind(missed: u64) -> Announced {
    tracing::warn!(
        missed,
        "a change subscriber fell behind; treating everything as changed"
    );
    Announced {
        change: Change::Everything,
        remote: false,
    }
}
