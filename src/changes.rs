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
use crate::delivery::routing::RoutingCache;
use crate::delivery::store::PendingDelivery;
use crate::http::key_cache::KeyCache;
use projections::config_reads::ConfigReads;
use tokio::sync::broadcast;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A config command committed (create, update, deactivation, deletion…).
    Config(i64),
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
    Id { config_id: i64, delivery_id: i64 },
}

impl Committed {
    pub fn config_id(&self) -> i64 {
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

/// The caches every change is applied to, synchronously.
#[derive(Clone)]
pub struct ReadCaches {
    pub routes: RoutingCache,
    pub reads: ConfigReads,
    pub keys: KeyCache,
}

impl ReadCaches {
    fn forget(&self, change: &Change) {
        match change {
            Change::Config(id) => {
                self.routes.invalidate();
                self.reads.config_changed(Some(*id));
            }
            Change::Stats(ids) => self.reads.stats_changed(ids.iter().copied()),
            Change::Tenancy => {
                self.keys.forget_all();
                self.routes.invalidate();
            }
            Change::Deliveries { .. } | Change::Membership | Change::Claimed => {}
            Change::Everything => {
                self.routes.invalidate();
                self.reads.config_changed(None);
                self.keys.forget_all();
            }
        }
    }
}

/// Changes a slow subscriber may fall behind by before it is told
/// [`Change::Everything`] instead.
const BACKLOG: usize = 4096;

#[derive(Clone)]
pub struct ChangeBus {
    caches: ReadCaches,
    sender: broadcast::Sender<Announced>,
}

impl ChangeBus {
    pub fn new(caches: ReadCaches) -> Self {
        Self {
            caches,
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
        self.caches.forget(&change);
        // No subscriber yet (or any more) is not an error.
        let _ = self.sender.send(Announced { change, remote });
    }

    pub fn subscribe(&self) -> Subscription {
        Subscription(self.sender.subscribe())
    }

    pub fn caches(&self) -> &ReadCaches {
        &self.caches
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
