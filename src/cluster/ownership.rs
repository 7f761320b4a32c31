//! Which endpoints this node delivers to, as far as this node knows.
//!
//! Endpoints are grouped into [`PARTITIONS`] partitions by config id; the
//! node delivers to an endpoint only while it holds the lease of its
//! partition. A lease is held until a local deadline set when it was last
//! renewed — measured from before the renewal was sent, less a margin — so
//! a node that cannot renew (paused, cut off from the database) stops
//! counting the partition as its own before the database lets another node
//! take it: [`Ownership::owns`] turns false by itself, no timer needed.
//!
//! Each attempt holds an [`AttemptGuard`] on its partition, so that a node
//! giving a partition up (shutdown, rebalancing) can wait until the
//! attempts it started are recorded, and the records carry the lease's
//! epoch ([`Fence`]): a record from an older holder does not move the
//! delivery.
use aggregates::values::ConfigId;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub use projections::cluster::{partition_of, PARTITIONS};
pub use projections::deliveries::Fence;

#[derive(Debug, Clone, Copy)]
struct Lease {
    epoch: i64,
    valid_until: Instant,
    /// When this node learnt it holds the lease under this epoch.
    since: Instant,
}

struct Inner {
    /// `None` for a single node (SQLite, or `--role` that owns everything
    /// by definition): every endpoint is its own, unfenced.
    leases: Option<RwLock<[Option<Lease>; PARTITIONS]>>,
    /// Attempts under way, per partition.
    attempts: [AtomicUsize; PARTITIONS],
    /// The node is shutting down: nothing new goes out.
    stopping: AtomicBool,
    /// Woken whenever an attempt is recorded (see [`Ownership::drained`]).
    settled: tokio::sync::Notify,
}

#[derive(Clone)]
pub struct Ownership {
    inner: Arc<Inner>,
}

impl Ownership {
    /// A single node: owns every endpoint, for good.
    pub fn everything() -> Self {
        Self::with(None)
    }

    /// A cluster node: owns what its leases say (nothing yet).
    pub fn leased() -> Self {
        Self::with(Some(RwLock::new([None; PARTITIONS])))
    }

    fn with(leases: Option<RwLock<[Option<Lease>; PARTITIONS]>>) -> Self {
        Self {
            inner: Arc::new(Inner {
                leases,
                attempts: std::array::from_fn(|_| AtomicUsize::new(0)),
                stopping: AtomicBool::new(false),
                settled: tokio::sync::Notify::new(),
            }),
        }
    }

    pub fn is_clustered(&self) -> bool {
        self.inner.leases.is_some()
    }

    /// Whether this node may send to the endpoint of `config_id` now.
    pub fn owns(&self, config_id: ConfigId) -> bool {
        !self.inner.stopping.load(Ordering::Acquire)
            && (self.inner.leases.is_none() || self.fence(config_id).is_some())
    }

    /// Shutting down: from now on nothing is owned (attempts under way run
    /// to their record; see [`Self::attempts_in`]).
    pub fn stop(&self) {
        self.inner.stopping.store(true, Ordering::Release);
    }

    /// The lease to record an attempt under; `None` when not owned (or,
    /// for a single node, when there is nothing to fence).
    pub fn fence(&self, config_id: ConfigId) -> Option<Fence> {
        let leases = self.inner.leases.as_ref()?;
        let partition = partition_of(config_id.get());
        let lease = read(leases)[partition]?;
        (lease.valid_until > Instant::now()).then_some(Fence {
            partition: partition as i32,
            epoch: lease.epoch,
        })
    }

    /// Since when this node holds `config_id`'s lease without a break
    /// (`None` for a single node, which always has, or when not held). The
    /// previous holder may have sent until just before then.
    pub fn held_since(&self, config_id: ConfigId) -> Option<Instant> {
        let leases = self.inner.leases.as_ref()?;
        let lease = read(leases)[partition_of(config_id.get())]?;
        (lease.valid_until > Instant::now()).then_some(lease.since)
    }

    /// The partitions held now.
    pub fn held(&self) -> Vec<usize> {
        match &self.inner.leases {
            None => (0..PARTITIONS).collect(),
            Some(leases) => {
                let now = Instant::now();
                read(leases)
                    .iter()
                    .enumerate()
                    .filter(|(_, lease)| lease.is_some_and(|l| l.valid_until > now))
                    .map(|(partition, _)| partition)
                    .collect()
            }
        }
    }

    /// The leases renewed or won by a request sent at `sent`: valid until
    /// `sent + duration - margin`. Partitions not named are lost.
    pub fn set(&self, sent: Instant, duration: Duration, held: &[(usize, i64)]) {
        let Some(leases) = &self.inner.leases else {
            return;
        };
        let valid_until = sent + duration.saturating_sub(LEASE_MARGIN);
        let now = Instant::now();
        let mut leases = leases.write().unwrap_or_else(|p| p.into_inner());
        let mut next = [None; PARTITIONS];
        for &(partition, epoch) in held {
            if partition < PARTITIONS {
                // A renewal keeps when the lease was won; a new epoch (or a
                // lease lost and won back) starts now.
                let since = leases[partition]
                    .filter(|old| old.epoch == epoch && old.valid_until > now)
                    .map_or(now, |old| old.since);
                next[partition] = Some(Lease {
                    epoch,
                    valid_until,
                    since,
                });
            }
        }
        *leases = next;
    }

    /// Stops counting these partitions as held (they are being given up).
    pub fn drop_partitions(&self, partitions: &[usize]) {
        if let Some(leases) = &self.inner.leases {
            let mut leases = leases.write().unwrap_or_else(|p| p.into_inner());
            for &partition in partitions {
                if partition < PARTITIONS {
                    leases[partition] = None;
                }
            }
        }
    }

    /// An attempt to `config_id`'s endpoint starts; it counts until the
    /// guard is dropped (after its record).
    pub fn attempt_started(&self, config_id: ConfigId) -> AttemptGuard {
        let partition = partition_of(config_id.get());
        self.inner.attempts[partition].fetch_add(1, Ordering::AcqRel);
        AttemptGuard {
            inner: self.inner.clone(),
            partition,
        }
    }

    /// Waits until the attempts under way in `partitions` are recorded, or
    /// `grace` has passed; `true` when none is left.
    pub async fn drained(&self, partitions: &[usize], grace: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let settled = self.inner.settled.notified();
            if self.attempts_in(partitions) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, settled).await.is_err() {
                return self.attempts_in(partitions) == 0;
            }
        }
    }

    /// Attempts under way in these partitions.
    pub fn attempts_in(&self, partitions: &[usize]) -> usize {
        partitions
            .iter()
            .filter(|&&p| p < PARTITIONS)
            .map(|&p| self.inner.attempts[p].load(Ordering::Acquire))
            .sum()
    }
}

/// Time a lease is given up locally before the database's expiry: room for
/// the clocks of this machine and the database's drifting apart a little.
const LEASE_MARGIN: Duration = Duration::from_secs(1);

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

pub struct AttemptGuard {
    inner: Arc<Inner>,
    partition: usize,
}

impl Drop for AttemptGuard {
    fn drop(&mut self) {
        self.inner.attempts[self.partition].fetch_sub(1, Ordering::AcqRel);
        self.inner.settled.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aggregates::values::ConfigId;

    #[test]
    fn a_single_node_owns_everything_unfenced() {
        let ownership = Ownership::everything();
        assert!(ownership.owns(ConfigId::new(1)) && ownership.owns(ConfigId::new(12_345)));
        assert_eq!(ownership.fence(ConfigId::new(1)), None);
        assert_eq!(ownership.held().len(), PARTITIONS);
    }

    #[test]
    fn a_lease_counts_until_its_local_deadline() {
        let ownership = Ownership::leased();
        let config = 7; // partition (7 * 37) % 64 = 3
        assert_eq!(partition_of(config), 3);
        assert!(!ownership.owns(ConfigId::new(config)));
        ownership.set(Instant::now(), Duration::from_secs(10), &[(3, 7)]);
        assert!(
            ownership.owns(ConfigId::new(config))
                && ownership.owns(ConfigId::new(config + PARTITIONS as i64))
        );
        assert!(!ownership.owns(ConfigId::new(config + 1)));
        let fence = Fence {
            partition: 3,
            epoch: 7,
        };
        assert_eq!(ownership.fence(ConfigId::new(config)), Some(fence));
        // Renewed long ago: the deadline (sent + duration - margin) passed.
        let long_ago = Instant::now() - Duration::from_secs(20);
        ownership.set(long_ago, Duration::from_secs(10), &[(3, 7)]);
        assert!(!ownership.owns(ConfigId::new(config)));
        assert_eq!(ownership.held(), Vec::<usize>::new());
    }

    #[test]
    fn consecutive_ids_spread_over_every_partition() {
        let partitions: std::collections::HashSet<usize> = (1..=64).map(partition_of).collect();
        assert_eq!(partitions.len(), PARTITIONS);
        assert_ne!(partition_of(1) / 22, partition_of(2) / 22);
    }

    #[tokio::test]
    async fn drained_wakes_when_the_last_attempt_is_recorded() {
        let ownership = Ownership::everything();
        let guard = ownership.attempt_started(ConfigId::new(5));
        let partition = partition_of(5);
        assert!(
            !ownership
                .drained(&[partition], Duration::from_millis(10))
                .await
        );
        let waiting = {
            let ownership = ownership.clone();
            tokio::spawn(async move {
                ownership
                    .drained(&[partition], Duration::from_secs(30))
                    .await
            })
        };
        tokio::task::yield_now().await;
        drop(guard);
        assert!(waiting.await.unwrap());
    }

    #[test]
    fn a_stopping_node_owns_nothing() {
        let ownership = Ownership::everything();
        ownership.stop();
        assert!(!ownership.owns(ConfigId::new(1)));
    }

    #[test]
    fn attempts_are_counted_per_partition_until_recorded() {
        let ownership = Ownership::leased();
        let guard = ownership.attempt_started(ConfigId::new(5));
        let other = ownership.attempt_started(ConfigId::new(5 + PARTITIONS as i64));
        let partition = partition_of(5);
        assert_eq!(ownership.attempts_in(&[partition]), 2);
        assert_eq!(ownership.attempts_in(&[partition_of(6)]), 0);
        drop(guard);
        drop(other);
        assert_eq!(ownership.attempts_in(&[partition]), 0);
    }
}
