//! This node's membership and leases: a heartbeat every quarter of
//! `--node-timeout`, and with it (for a node that delivers) the renewal of
//! its partition leases, claims of free or expired ones up to its fair
//! share, and the release of those over it, once their attempts are
//! recorded. All in the database's time.
use super::ownership::{Ownership, PARTITIONS};
use super::Role;
use crate::changes::{Change, ChangeBus};
use projections::cluster::{ClusterStore, NodeRecord};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct NodeSettings {
    pub id: String,
    /// Where this node's API listens (for `cluster status`).
    pub address: String,
    pub role: Role,
    /// A node whose heartbeat is older than this is dead to the others,
    /// and its leases run out after this long.
    pub timeout: Duration,
}

#[derive(Clone)]
pub struct ClusterNode {
    store: ClusterStore,
    settings: Arc<NodeSettings>,
    ownership: Ownership,
    state: Arc<Mutex<NodeState>>,
    changes: ChangeBus,
}

#[derive(Default)]
struct NodeState {
    /// When the last heartbeat was sent that the database took.
    last_heartbeat: Option<Instant>,
    /// Partitions being given up: not renewed, released once drained.
    releasing: HashSet<usize>,
    leaving: bool,
}

impl ClusterNode {
    /// Registers the node and starts its heartbeat.
    pub async fn join(
        store: ClusterStore,
        settings: NodeSettings,
        ownership: Ownership,
        changes: ChangeBus,
    ) -> Result<Self, projections::Error> {
        store.join(&record(&settings)).await?;
        let node = Self {
            store,
            settings: Arc::new(settings),
            ownership,
            state: Arc::default(),
            changes,
        };
        node.tick().await;
        node.changes.announce(Change::Membership);
        let ticking = node.clone();
        let mut membership = node.changes.subscribe();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(ticking.settings.timeout / 4);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            every.tick().await;
            loop {
                // Another node joined or left: look at the leases now.
                tokio::select! {
                    _ = every.tick() => {}
                    changed = membership.next() => match changed {
                        Some(announced) if announced.remote
                            && matches!(announced.change, Change::Membership) => {}
                        Some(_) => continue,
                        None => return,
                    },
                }
                if ticking.state().leaving {
                    return;
                }
                ticking.tick().await;
            }
        });
        Ok(node)
    }

    pub fn id(&self) -> &str {
        &self.settings.id
    }

    /// The node's membership is current: its last heartbeat reached the
    /// database within the node timeout.
    pub fn is_current(&self) -> bool {
        self.state()
            .last_heartbeat
            .is_some_and(|at| at.elapsed() < self.settings.timeout)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, NodeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn tick(&self) {
        let sent = Instant::now();
        // A heartbeat that hangs (the database cut off without a reset) is
        // given up, so the next tick tries again on another connection.
        // What it would have renewed counts from `sent` anyway.
        let deadline = self.settings.timeout / 2;
        match tokio::time::timeout(deadline, self.heartbeat_and_lease(sent)).await {
            Ok(Ok(())) => self.state().last_heartbeat = Some(sent),
            // The leases run out by themselves (see `Ownership`): nothing
            // is sent for them once their local deadline passes.
            Ok(Err(error)) => tracing::warn!(%error, "cluster heartbeat failed"),
            Err(_) => tracing::warn!(?deadline, "cluster heartbeat timed out"),
        }
    }

    async fn heartbeat_and_lease(&self, sent: Instant) -> Result<(), projections::Error> {
        let timeout = self.settings.timeout;
        // The database's clock, read beside this machine's: their offset
        // corrects every timestamp this node writes (`now_micros`).
        let before = chrono::Utc::now().timestamp_micros();
        let database_micros = self.store.heartbeat(&record(&self.settings)).await?;
        let after = chrono::Utc::now().timestamp_micros();
        if let Some(database_micros) = database_micros {
            let offset = database_micros - (before + (after - before) / 2);
            let replaced = projections::db::set_clock_offset(offset);
            if replaced.is_some_and(|before| (offset - before).abs() > 1_000_000) {
                tracing::warn!(
                    offset_ms = offset / 1000,
                    "this machine's clock differs from the database's: webhookd uses the database's"
                );
            }
        }
        if !self.settings.role.delivers() {
            return Ok(());
        }
        let releasing: Vec<usize> = self.state().releasing.iter().copied().collect();
        // At the first tick, leases under this node's own id are a previous
        // life's (a restart with the same `--node-id`): not renewed but
        // claimed again below, under a new epoch that fences whatever that
        // life may still record.
        let first = self.state().last_heartbeat.is_none();
        let mut held = if first {
            Vec::new()
        } else {
            self.store
                .renew(&self.settings.id, timeout, &releasing)
                .await?
        };
        let live_workers = self.store.live_workers(timeout).await?;
        let fair = PARTITIONS.div_ceil(live_workers.max(1));
        let leaving = self.state().leaving;
        let mut claimed_some = false;
        if held.len() < fair && !leaving {
            let claimed = self
                .store
                .claim(
                    &self.settings.id,
                    timeout,
                    fair - held.len(),
                    &releasing,
                    first,
                )
                .await?;
            let any = !claimed.is_empty();
            if any {
                tracing::info!(
                    partitions = ?claimed.iter().map(|(p, _)| p).collect::<Vec<_>>(),
                    "claimed endpoint partitions"
                );
            }
            held.extend(claimed);
            claimed_some = any;
        }
        self.ownership.set(sent, self.settings.timeout, &held);
        if claimed_some {
            self.changes.announce(Change::Claimed);
        }
        if held.len() > fair {
            // Over the fair share (a node joined): give the highest up.
            let mut partitions: Vec<usize> = held.iter().map(|(p, _)| *p).collect();
            partitions.sort_unstable();
            let extra = partitions.split_off(fair);
            self.release(extra, self.settings.timeout * 3);
        }
        Ok(())
    }

    /// Gives partitions up: stops sending for them at once, waits (up to
    /// `grace`) until their attempts under way are recorded, then frees
    /// their leases so another node may take them without waiting out the
    /// timeout.
    fn release(&self, partitions: Vec<usize>, grace: Duration) {
        {
            let mut state = self.state();
            let new: Vec<usize> = partitions
                .iter()
                .copied()
                .filter(|p| state.releasing.insert(*p))
                .collect();
            if new.is_empty() {
                return;
            }
        }
        self.ownership.drop_partitions(&partitions);
        tracing::info!(?partitions, "giving endpoint partitions up");
        let node = self.clone();
        tokio::spawn(async move {
            node.ownership.drained(&partitions, grace).await;
            match node.free(&partitions).await {
                Ok(()) => node.changes.announce(Change::Membership),
                // They expire by themselves within the node timeout.
                Err(error) => tracing::warn!(%error, "cannot free partitions"),
            }
            let mut state = node.state();
            for partition in &partitions {
                state.releasing.remove(partition);
            }
        });
    }

    async fn free(&self, partitions: &[usize]) -> Result<(), projections::Error> {
        self.store.free(&self.settings.id, partitions).await
    }

    /// Leaves the cluster (on `SIGTERM`): stops sending, waits up to
    /// `grace` for the attempts under way to be recorded, frees every lease
    /// at once and marks the node stopped.
    pub async fn leave(&self, grace: Duration) {
        self.state().leaving = true;
        let held = self.ownership.held();
        self.ownership.drop_partitions(&held);
        let all: Vec<usize> = (0..PARTITIONS).collect();
        self.ownership.drained(&all, grace).await;
        // Bounded: a node cut off from the database leaves all the same
        // (its leases then run out by themselves).
        let deadline = self.settings.timeout;
        match tokio::time::timeout(deadline, self.free(&all)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot free partitions; they expire by themselves")
            }
            Err(_) => tracing::warn!("cannot free partitions in time; they expire by themselves"),
        }
        let stopped = self.store.mark_stopped(&self.settings.id);
        match tokio::time::timeout(deadline, stopped).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "cannot mark the node stopped"),
            Err(_) => tracing::warn!("cannot mark the node stopped in time"),
        }
        // The others take the partitions over now, not at their next
        // heartbeat. Sent here and awaited (not through the bus's sender
        // task): the process is about to exit.
        let announced = super::bus::announce_membership(&self.store, &self.settings.id);
        let _ = tokio::time::timeout(deadline, announced).await;
        tracing::info!(partitions = held.len(), "left the cluster");
    }
}

/// The node as its row records it.
fn record(settings: &NodeSettings) -> NodeRecord<'_> {
    NodeRecord {
        id: &settings.id,
        address: &settings.address,
        role: settings.role.as_str(),
    }
}
