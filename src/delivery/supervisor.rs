//! The delivery supervisor: one per process. It starts an endpoint actor
//! when work arrives for an endpoint, lets idle actors stop, and restarts
//! actors that died (a panic in an actix 0.13 handler kills the actor and
//! `actix::Supervisor` does not bring it back) — the new actor reloads the
//! endpoint's pending deliveries from the database. It also polls the
//! database for pending deliveries no actor holds: those of a previous run
//! (crash, restart) and any whose notification was lost.
#[cfg(feature = "fault-injection")]
use super::endpoint::Panic;
use super::endpoint::{Deliver, EndpointActor, Nudge, Reload, Stop};
use super::engine::DeliveryEngine;
use super::lanes::Lanes;
use super::task;
use crate::changes::{Change, ChangeBus, Committed};
use crate::cluster::Ownership;
use actix::prelude::*;
use aggregates::values::ConfigId;
use foldhash::{HashMap, HashMapExt};
use projections::db::now_micros;
use projections::deliveries::PendingDelivery;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

struct Slot {
    addr: Addr<EndpointActor>,
    /// `Deliver` batches sent to this actor.
    sent: u64,
}

impl Slot {
    /// Sends the actor a batch, counted (see [`EndpointIdle`]).
    fn deliver(&mut self, deliveries: Vec<PendingDelivery>, again: bool, since: Option<Instant>) {
        self.sent += 1;
        self.addr.do_send(Deliver {
            deliveries,
            again,
            since,
        });
    }
}

/// Deliveries grouped by their endpoint.
fn by_endpoint(deliveries: Vec<PendingDelivery>) -> HashMap<ConfigId, Vec<PendingDelivery>> {
    let mut grouped: HashMap<ConfigId, Vec<PendingDelivery>> = HashMap::new();
    for delivery in deliveries {
        grouped
            .entry(delivery.config_id)
            .or_default()
            .push(delivery);
    }
    grouped
}

/// The live endpoint actors, shared by the supervisor and its handles.
///
/// A publish hands its deliveries straight to a live actor from here
/// instead of through the supervisor's mailbox: one cross-thread wake-up
/// fewer on every publish (at 1 000/s on PostgreSQL the hand-over 105 → 58
/// µs on average). The supervisor alone adds and removes actors, and counts
/// and sends under the same lock as a handle does, so an actor is never
/// stopped with a batch on its way (see [`EndpointIdle`]) and one started
/// by the supervisor gets its first batch before any handle's.
#[derive(Clone, Default)]
struct Directory(Arc<Mutex<HashMap<ConfigId, Slot>>>);

impl Directory {
    fn lock(&self) -> MutexGuard<'_, HashMap<ConfigId, Slot>> {
        // Nothing panics while holding it; should something, the map is
        // still whole (each change is one insert or remove).
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub struct DeliverySupervisor {
    engine: Arc<DeliveryEngine>,
    lanes: Lanes,
    endpoints: Directory,
    restarts: u64,
    polling: bool,
    /// Test hook (see [`HoldIdleReports`]): while `Some`, idle reports
    /// wait here, unsettled, until [`ReleaseIdleReports`].
    #[cfg(feature = "fault-injection")]
    held_idle: Option<Vec<EndpointIdle>>,
}

impl DeliverySupervisor {
    fn new(engine: Arc<DeliveryEngine>, endpoints: Directory) -> Self {
        Self {
            lanes: Lanes::start(&engine.settings),
            engine,
            endpoints,
            restarts: 0,
            polling: false,
            #[cfg(feature = "fault-injection")]
            held_idle: None,
        }
    }

    /// The live actor of `config_id` in `endpoints` (the locked
    /// directory), started (again) if there is none.
    fn endpoint<'a>(
        &mut self,
        endpoints: &'a mut HashMap<ConfigId, Slot>,
        config_id: ConfigId,
        ctx: &mut Context<Self>,
    ) -> &'a mut Slot {
        let dead = endpoints
            .get(&config_id)
            .is_some_and(|slot| !slot.addr.connected());
        if dead {
            self.restarts += 1;
            metrics::counter!("webhookd_endpoint_actor_restarts_total").increment(1);
            tracing::warn!(
                config = config_id.get(),
                "endpoint actor died; restarting it with its pending work"
            );
            endpoints.remove(&config_id);
        }
        let engine = self.engine.clone();
        let me = ctx.address();
        let lane = self.lanes.for_endpoint(config_id);
        endpoints.entry(config_id).or_insert_with(|| {
            let client = lane.client.clone();
            Slot {
                addr: EndpointActor::start_in_arbiter(&lane.arbiter, move |_| {
                    EndpointActor::new(config_id, engine, me, client)
                }),
                sent: 0,
            }
        })
    }

    /// Restarts dead actors, stops those of endpoints this node no longer
    /// owns, and picks up pending rows no actor holds.
    fn watch(&mut self, ctx: &mut Context<Self>) {
        let ownership = self.engine.node.ownership.clone();
        let directory = self.endpoints.clone();
        let mut endpoints = directory.lock();
        endpoints.retain(|&id, slot| {
            let owned = ownership.owns(id);
            if !owned {
                slot.addr.do_send(Stop);
            }
            owned
        });
        let dead: Vec<ConfigId> = endpoints
            .iter()
            .filter(|(_, slot)| !slot.addr.connected())
            .map(|(id, _)| *id)
            .collect();
        for config_id in dead {
            self.endpoint(&mut endpoints, config_id, ctx);
        }
        drop(endpoints);
        if self.polling {
            return;
        }
        self.polling = true;
        let store = self.engine.store.clone();
        let horizon = now_micros() + self.engine.settings.watchdog_interval.as_micros() as i64;
        let poll = task::run(async move { store.configs_with_pending(horizon).await });
        ctx.spawn(poll.into_actor(self).map(|found, supervisor, ctx| {
            supervisor.polling = false;
            match found {
                Ok(config_ids) => {
                    let directory = supervisor.endpoints.clone();
                    let mut endpoints = directory.lock();
                    for config_id in config_ids {
                        let ours = supervisor.engine.node.ownership.owns(config_id);
                        if let Some(slot) = endpoints.get(&config_id) {
                            // On a cluster it may have missed some (another
                            // node's announcement lost): it looks if it has
                            // nothing. A single node hands every delivery
                            // over in-process: nothing to miss.
                            if supervisor.engine.node.ownership.is_clustered() {
                                slot.addr.do_send(Nudge);
                            }
                            continue;
                        }
                        if ours {
                            supervisor.endpoint(&mut endpoints, config_id, ctx);
                        }
                    }
                }
                Err(error) => tracing::error!(%error, "cannot look for pending deliveries"),
            }
        }));
    }
}

impl Actor for DeliverySupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.watch(ctx);
        ctx.run_interval(self.engine.settings.watchdog_interval, |supervisor, ctx| {
            supervisor.watch(ctx)
        });
    }
}

/// Deliveries just committed by a publish or a test, or made pending again
/// by a manual retry (`again`, see [`Deliver::again`]).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Enqueue {
    pub deliveries: Vec<PendingDelivery>,
    pub again: bool,
    /// When they were committed (or learnt of): the start of their
    /// hand-over (`telemetry::Handoff::HandOver`), read only while the
    /// hand-offs are timed.
    pub since: Option<Instant>,
}

impl Handler<Enqueue> for DeliverySupervisor {
    type Result = ();

    fn handle(&mut self, msg: Enqueue, ctx: &mut Context<Self>) {
        let directory = self.endpoints.clone();
        let mut endpoints = directory.lock();
        for (config_id, deliveries) in by_endpoint(msg.deliveries) {
            if !self.engine.node.ownership.owns(config_id) {
                // Lost meanwhile: the new owner's poll finds them.
                continue;
            }
            self.endpoint(&mut endpoints, config_id, ctx)
                .deliver(deliveries, msg.again, msg.since);
        }
    }
}

/// Something changed (see [`crate::changes`]): a live actor re-reads its
/// config; everything changing re-reads every actor and looks for work.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Changed(pub Change);

impl Handler<Changed> for DeliverySupervisor {
    type Result = ();

    fn handle(&mut self, Changed(change): Changed, ctx: &mut Context<Self>) {
        match change {
            Change::Config(config_id) => {
                if let Some(slot) = self.endpoints.lock().get(&config_id) {
                    slot.addr.do_send(Reload);
                }
            }
            Change::Everything => {
                for slot in self.endpoints.lock().values() {
                    slot.addr.do_send(Reload);
                }
                self.watch(ctx);
            }
            Change::Deliveries { deliveries, again } => {
                let ownership = &self.engine.node.ownership;
                let mut whole = Vec::new();
                let mut by_id = Vec::new();
                for committed in deliveries {
                    if !ownership.owns(committed.config_id()) {
                        continue;
                    }
                    match committed {
                        Committed::Whole(delivery) => whole.push(delivery),
                        Committed::Id { delivery_id, .. } => by_id.push(delivery_id),
                    }
                }
                if !whole.is_empty() {
                    ctx.notify(Enqueue {
                        deliveries: whole,
                        again,
                        since: handed_over_now(),
                    });
                }
                if by_id.is_empty() {
                    return;
                }
                let store = self.engine.store.clone();
                let read = task::run(async move { store.pending_by_ids(&by_id).await });
                ctx.spawn(read.into_actor(self).map(move |read, _, ctx| match read {
                    Ok(deliveries) => ctx.notify(Enqueue {
                        deliveries,
                        again,
                        since: handed_over_now(),
                    }),
                    // The poll finds them.
                    Err(error) => tracing::warn!(%error, "cannot read another node's deliveries"),
                }));
            }
            // New partitions: their pending work, now rather than at the next poll.
            Change::Claimed => self.watch(ctx),
            Change::Stats(_) | Change::Tenancy | Change::Membership => {}
        }
    }
}

/// An actor reports it has had nothing to do for its idle timeout.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndpointIdle {
    pub config_id: ConfigId,
    pub received: u64,
}

impl Handler<EndpointIdle> for DeliverySupervisor {
    type Result = ();

    fn handle(&mut self, msg: EndpointIdle, _ctx: &mut Context<Self>) {
        #[cfg(feature = "fault-injection")]
        if let Some(held) = &mut self.held_idle {
            held.push(msg);
            return;
        }
        self.settle_idle(msg);
    }
}

impl DeliverySupervisor {
    fn settle_idle(&mut self, msg: EndpointIdle) {
        // Only when it has seen every batch sent to it: otherwise work is
        // on its way and it must stay. Under the directory's lock, so that
        // no handle sends it a batch between the check and the removal.
        let mut endpoints = self.endpoints.lock();
        if endpoints
            .get(&msg.config_id)
            .is_some_and(|slot| slot.sent == msg.received)
        {
            if let Some(slot) = endpoints.remove(&msg.config_id) {
                slot.addr.do_send(Stop);
            }
        }
    }
}

/// An actor found that its config no longer exists and stops for good.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndpointGone {
    pub config_id: ConfigId,
}

impl Handler<EndpointGone> for DeliverySupervisor {
    type Result = ();

    fn handle(&mut self, msg: EndpointGone, _: &mut Context<Self>) {
        self.endpoints.lock().remove(&msg.config_id);
    }
}

/// Counters for tests and operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupervisorStats {
    pub live_endpoints: usize,
    pub restarts: u64,
    /// Deliveries held in memory now (at most `--max-queued-deliveries`).
    pub held_deliveries: usize,
}

#[derive(Message)]
#[rtype(result = "SupervisorStats")]
pub struct GetStats;

impl Handler<GetStats> for DeliverySupervisor {
    type Result = MessageResult<GetStats>;

    fn handle(&mut self, _: GetStats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(SupervisorStats {
            live_endpoints: self
                .endpoints
                .lock()
                .values()
                .filter(|slot| slot.addr.connected())
                .count(),
            restarts: self.restarts,
            held_deliveries: self.engine.node.budget.held(),
        })
    }
}

/// Test hook: idle reports wait, unsettled, until [`ReleaseIdleReports`]
/// (feature `fault-injection`), so that batches sent to an actor after it
/// reported itself idle — a race of microseconds otherwise — can be made
/// to happen at will. Answers how many reports are held now.
#[cfg(feature = "fault-injection")]
#[derive(Message)]
#[rtype(result = "usize")]
pub struct HoldIdleReports;

#[cfg(feature = "fault-injection")]
impl Handler<HoldIdleReports> for DeliverySupervisor {
    type Result = usize;

    fn handle(&mut self, _: HoldIdleReports, _: &mut Context<Self>) -> usize {
        self.held_idle.get_or_insert_with(Vec::new).len()
    }
}

/// Test hook: the held idle reports are looked at now, in the order they
/// came, and later ones at once again. Answers how many there were.
#[cfg(feature = "fault-injection")]
#[derive(Message)]
#[rtype(result = "usize")]
pub struct ReleaseIdleReports;

#[cfg(feature = "fault-injection")]
impl Handler<ReleaseIdleReports> for DeliverySupervisor {
    type Result = usize;

    fn handle(&mut self, _: ReleaseIdleReports, _: &mut Context<Self>) -> usize {
        let held = self.held_idle.take().unwrap_or_default();
        let count = held.len();
        for report in held {
            self.settle_idle(report);
        }
        count
    }
}

/// Test hook: make the endpoint actor of a config panic (feature `fault-injection`).
#[cfg(feature = "fault-injection")]
#[derive(Message)]
#[rtype(result = "bool")]
pub struct InjectPanic {
    pub config_id: ConfigId,
}

#[cfg(feature = "fault-injection")]
impl Handler<InjectPanic> for DeliverySupervisor {
    type Result = bool;

    fn handle(&mut self, msg: InjectPanic, _: &mut Context<Self>) -> bool {
        match self.endpoints.lock().get(&msg.config_id) {
            Some(slot) => {
                slot.addr.do_send(Panic);
                true
            }
            None => false,
        }
    }
}

/// The start of a hand-over, if the hand-offs are timed (no clock read
/// on the publish path otherwise).
fn handed_over_now() -> Option<Instant> {
    crate::telemetry::handoffs_timed().then(Instant::now)
}

/// How the rest of webhookd talks to the supervisor.
#[derive(Clone)]
pub struct SupervisorHandle {
    addr: Addr<DeliverySupervisor>,
    endpoints: Directory,
    ownership: Ownership,
    changes: ChangeBus,
}

impl SupervisorHandle {
    /// Starts the supervisor; it follows `changes` from then on.
    pub fn start(engine: Arc<DeliveryEngine>, bus: ChangeBus) -> Self {
        let ownership = engine.node.ownership.clone();
        let mut changes = bus.subscribe();
        let endpoints = Directory::default();
        let addr = DeliverySupervisor::new(engine, endpoints.clone()).start();
        let forward = addr.clone();
        actix::spawn(async move {
            while let Some(announced) = changes.next().await {
                let wanted = match &announced.change {
                    Change::Config(_) | Change::Everything | Change::Claimed => true,
                    // Committed by another node for endpoints this one may own.
                    Change::Deliveries { .. } => announced.remote,
                    Change::Stats(_) | Change::Tenancy | Change::Membership => false,
                };
                if wanted {
                    forward.do_send(Changed(announced.change));
                }
            }
        });
        Self {
            addr,
            endpoints,
            ownership,
            changes: bus,
        }
    }

    pub fn enqueue(&self, deliveries: Vec<PendingDelivery>) {
        self.send(Enqueue {
            deliveries,
            again: false,
            since: handed_over_now(),
        });
    }

    /// Deliveries a manual retry made pending again.
    pub fn enqueue_again(&self, deliveries: Vec<PendingDelivery>) {
        self.send(Enqueue {
            deliveries,
            again: true,
            since: handed_over_now(),
        });
    }

    /// Deliveries for endpoints this node owns go to their actors; the
    /// others are announced, for the node that owns them (whose poll finds
    /// them too, should the announcement be lost).
    fn send(&self, enqueue: Enqueue) {
        let (ours, theirs): (Vec<_>, Vec<_>) = enqueue
            .deliveries
            .into_iter()
            .partition(|delivery| self.ownership.owns(delivery.config_id));
        if !theirs.is_empty() {
            self.changes.announce(Change::Deliveries {
                deliveries: theirs.into_iter().map(Committed::Whole).collect(),
                again: enqueue.again,
            });
        }
        if ours.is_empty() {
            return;
        }
        // Straight to the live actors; the supervisor starts the others.
        let mut rest = Vec::new();
        {
            let mut endpoints = self.endpoints.lock();
            for (config_id, deliveries) in by_endpoint(ours) {
                match endpoints.get_mut(&config_id) {
                    Some(slot) if slot.addr.connected() => {
                        slot.deliver(deliveries, enqueue.again, enqueue.since);
                    }
                    _ => rest.extend(deliveries),
                }
            }
        }
        if !rest.is_empty() {
            self.addr.do_send(Enqueue {
                deliveries: rest,
                again: enqueue.again,
                since: enqueue.since,
            });
        }
    }

    pub async fn stats(&self) -> Option<SupervisorStats> {
        self.addr.send(GetStats).await.ok()
    }

    /// Test hook (see [`HoldIdleReports`]): holds idle reports from now
    /// on; answers how many are held already.
    #[cfg(feature = "fault-injection")]
    pub async fn hold_idle_reports(&self) -> usize {
        self.addr.send(HoldIdleReports).await.unwrap_or(0)
    }

    /// Test hook (see [`ReleaseIdleReports`]).
    #[cfg(feature = "fault-injection")]
    pub async fn release_idle_reports(&self) -> usize {
        self.addr.send(ReleaseIdleReports).await.unwrap_or(0)
    }

    /// Test hook (see [`InjectPanic`]); false when no actor is live for it.
    #[cfg(feature = "fault-injection")]
    pub async fn inject_panic(&self, config_id: ConfigId) -> bool {
        self.addr
            .send(InjectPanic { config_id })
            .await
            .unwrap_or(false)
    }
}
