//! One actor per endpoint (config) with pending work. It owns the queue of
//! that endpoint, keeps up to `max_in_flight_per_endpoint` requests going,
//! schedules retries, and stops when it has been idle for a while. Its
//! pending work always lives in the database too, so a dead actor loses
//! nothing: the supervisor starts a new one, which reloads it.
use super::policy::{DeliveryEngine, Verdict};
use super::store::{DeliveryKind, EndpointConfig, PendingDelivery};
use super::supervisor::{DeliverySupervisor, EndpointGone, EndpointIdle};
use super::task;
use super::throttle::Throttle;
use crate::cluster::Fence;
use crate::telemetry;
use actix::prelude::*;
use futures_util::FutureExt;
use projections::db::now_micros;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

pub struct EndpointActor {
    config_id: i64,
    engine: Arc<DeliveryEngine>,
    supervisor: Addr<DeliverySupervisor>,
    /// The HTTP client of this actor's lane.
    client: reqwest::Client,
    /// `None` until loaded from the database.
    config: Option<Arc<EndpointConfig>>,
    ready: VecDeque<PendingDelivery>,
    /// Every delivery this actor holds (queued, in flight or waiting for a
    /// retry), so that the same row arriving twice is sent once.
    held: HashSet<i64>,
    /// The deliveries this actor finished lately. An actor learns of a
    /// delivery twice, from the publish's hand-over and from a reload of
    /// the pending rows, and either can come after the delivery is done:
    /// a reload read the committed row, sent and recorded it before the
    /// hand-over arrived (seen with 40 concurrent publishes), or a reload
    /// read the row just before its attempt's record (seen in the
    /// URL-change test). Only a manual retry sends a finished delivery
    /// again, and it says so ([`Deliver::again`]).
    finished: RecentlyFinished,
    /// Deliveries with an attempt under way, sent or being recorded
    /// (bounded, see `pump`): a config switched off meanwhile fails its
    /// other pending deliveries at once, and these when their attempt's
    /// record says what comes next.
    attempting: HashSet<i64>,
    /// Of those, the HTTP requests under way (bounded by
    /// `max_in_flight_per_endpoint`).
    in_flight: usize,
    /// Deliveries waiting for their next attempt, soonest first, and the
    /// one timer armed for the soonest (one timer per waiting retry would
    /// be one future each in the actor's context, all polled on every
    /// wake-up: thousands for an endpoint that is down).
    retries: BinaryHeap<Reverse<WaitingRetry>>,
    retry_timer: Option<(Instant, SpawnHandle)>,
    retries_queued: u64,
    /// `Deliver` batches received; the supervisor compares it with what it
    /// sent before letting the actor stop.
    received: u64,
    idle_since: Instant,
    /// Reloads started; the newest is the one whose answer counts.
    reloads: u64,
    /// Some of this endpoint's pending deliveries are in the database only:
    /// the actor holds at most `max_queued_per_endpoint`, so an endpoint
    /// that is down does not grow webhookd by its whole backlog. When its
    /// queue runs low it reads more ([`Self::refill`]).
    spilled: bool,
    refilling: bool,
    /// When a [`Nudge`] last made this actor read its pending rows.
    last_nudged: Option<Instant>,
    /// A backlog waits for room in the node's budget (a pump is due).
    waiting_for_room: bool,
    /// The config's `rate_limit`, and whether a pump is due when it allows
    /// the next delivery.
    throttle: Throttle,
    throttled: bool,
}

impl EndpointActor {
    pub fn new(
        config_id: i64,
        engine: Arc<DeliveryEngine>,
        supervisor: Addr<DeliverySupervisor>,
        client: reqwest::Client,
    ) -> Self {
        Self {
            config_id,
            engine,
            supervisor,
            client,
            config: None,
            ready: VecDeque::new(),
            held: HashSet::new(),
            finished: RecentlyFinished::default(),
            attempting: HashSet::new(),
            in_flight: 0,
            retries: BinaryHeap::new(),
            retry_timer: None,
            retries_queued: 0,
            received: 0,
            idle_since: Instant::now(),
            reloads: 0,
            spilled: false,
            refilling: false,
            last_nudged: None,
            waiting_for_room: false,
            throttle: Throttle::new(None, Instant::now()),
            throttled: false,
        }
    }

    /// Takes on deliveries, up to the cap; the ones over it stay in the
    /// database for a later [`Self::refill`].
    fn hold(&mut self, deliveries: Vec<PendingDelivery>) {
        let cap = self.engine.settings.max_queued_per_endpoint;
        for delivery in deliveries {
            if self.finished.contains(delivery.id)
                || self.held.contains(&delivery.id)
                || self.engine.recording.contains(delivery.id)
            {
                continue;
            }
            if self.held.len() >= cap || !self.engine.budget.take() {
                self.spilled = true;
                continue;
            }
            self.held.insert(delivery.id);
            self.ready.push_back(delivery);
        }
    }

    /// Reads the soonest pending deliveries again (those held already are
    /// skipped by `hold`): the queue ran low while some were left in the
    /// database. Every one committed before the read starts is seen by it,
    /// and a notice turned away after that sets `spilled` again.
    fn refill(&mut self, ctx: &mut Context<Self>) {
        self.refilling = true;
        self.spilled = false;
        let store = self.engine.store.clone();
        let (config_id, cap) = (self.config_id, self.engine.settings.max_queued_per_endpoint);
        // Only what the config takes now: rows read and dropped as not
        // accepted would make the queue look low again, and the actor
        // would read them over and over.
        let with_events = self
            .config
            .as_ref()
            .is_some_and(|config| config.accepts(DeliveryKind::Event));
        let read =
            task::run(async move { store.pending_for_config(config_id, cap, with_events).await });
        ctx.spawn(read.into_actor(self).map(move |read, actor, ctx| {
            actor.refilling = false;
            match read {
                Ok(pending) => {
                    actor.spilled |= pending.len() >= cap;
                    actor.hold(pending);
                }
                Err(error) => {
                    tracing::error!(config = config_id, %error, "cannot read pending deliveries");
                    actor.spilled = true;
                    let wait = actor.engine.settings.watchdog_interval;
                    ctx.run_later(wait, |actor, ctx| actor.pump(ctx));
                    return;
                }
            }
            actor.pump(ctx);
        }));
    }

    /// (Re)reads the config and the pending rows of this endpoint. Nothing
    /// is sent until it is read: a delivery that arrives meanwhile (say, the
    /// next publish after a URL change) must go out with the new config.
    ///
    /// Reloads may overlap (a config changed twice in a row) and their
    /// reads finish in any order: only the newest one's answer is used, or
    /// a read made before the second change could win with the old URL.
    fn reload(&mut self, ctx: &mut Context<Self>) {
        self.config = None;
        self.reloads += 1;
        let this_reload = self.reloads;
        // This read sees everything committed so far (see `refill`).
        self.spilled = false;
        let cap = self.engine.settings.max_queued_per_endpoint;
        // Nothing is launched until the reload is read, so this is every
        // attempt under way while it reads.
        let attempting: Vec<i64> = self.attempting.iter().copied().collect();
        let engine = self.engine.clone();
        let config_id = self.config_id;
        let load = async move {
            let config = engine.store.endpoint_config(config_id).await?;
            let accepts = |kind| config.as_ref().is_some_and(|c| c.accepts(kind));
            if !accepts(DeliveryKind::Event) && !accepts(DeliveryKind::Test) {
                engine
                    .store
                    .fail_pending(config_id, SWITCHED_OFF, &attempting)
                    .await?;
            }
            let with_events = accepts(DeliveryKind::Event);
            let pending = engine
                .store
                .pending_for_config(config_id, cap, with_events)
                .await?;
            Ok::<_, projections::Error>((config, pending))
        };
        let load = task::run(load);
        ctx.spawn(load.into_actor(self).map(move |loaded, actor, ctx| match loaded {
            _ if this_reload != actor.reloads => {}
            Ok((Some(config), pending)) => {
                actor.throttle.set_rate(config.rate_limit);
                actor.config = Some(Arc::new(config));
                actor.drop_waiting_retries_not_accepted(ctx);
                actor.spilled |= pending.len() >= cap;
                actor.hold(pending);
                actor.pump(ctx);
            }
            Ok((None, _)) => {
                // No such config (its pending rows were just failed).
                actor.supervisor.do_send(EndpointGone {
                    config_id: actor.config_id,
                });
                ctx.stop();
            }
            Err(error) => {
                tracing::error!(config = actor.config_id, %error, "cannot load an endpoint; retrying");
                let wait = actor.engine.settings.watchdog_interval;
                ctx.run_later(wait, |actor, ctx| actor.reload(ctx));
            }
        }));
    }

    /// Starts as many due deliveries as the in-flight limit allows.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        let Some(config) = self.config.clone() else {
            return;
        };
        // Not this node's endpoint (any more): nothing more goes out from
        // here; the supervisor stops this actor, and the owner sends.
        let ownership = &self.engine.ownership;
        if !ownership.owns(self.config_id) {
            return;
        }
        let fence = ownership.fence(self.config_id);
        let limit = self.engine.settings.max_in_flight_per_endpoint;
        // A receiver that refused (429/503) gets fewer at once for a while.
        let in_flight_limit = self.throttle.in_flight_limit(limit);
        let now = now_micros();
        // Attempts still being recorded count too, up to three times the
        // limit again: while the database lags behind the receiver, the
        // actor stops taking on more than it can record.
        while self.in_flight < in_flight_limit && self.attempting.len() < 4 * limit {
            let Some(delivery) = self.ready.pop_front() else {
                break;
            };
            if !config.accepts(delivery.kind) {
                self.forget(delivery.id);
                continue;
            }
            if delivery.next_attempt_at > now {
                let wait = Duration::from_micros((delivery.next_attempt_at - now) as u64);
                self.retry_later(delivery, wait, ctx);
                continue;
            }
            if let Err(wait) = self.throttle.try_take(Instant::now()) {
                // Over the rate limit: it waits at the head of the queue.
                self.ready.push_front(delivery);
                if !self.throttled {
                    self.throttled = true;
                    ctx.run_later(wait, |actor, ctx| {
                        actor.throttled = false;
                        actor.pump(ctx);
                    });
                }
                break;
            }
            self.launch(delivery, config.clone(), fence, ctx);
        }
        let low_water = self.engine.settings.max_queued_per_endpoint / 2;
        if self.spilled && !self.refilling && self.held.len() <= low_water {
            if self.engine.budget.has_room() {
                self.refill(ctx);
            } else if !self.waiting_for_room {
                // The node is full: look again later, not in a loop.
                self.waiting_for_room = true;
                let wait = self.engine.settings.watchdog_interval;
                ctx.run_later(wait, |actor, ctx| {
                    actor.waiting_for_room = false;
                    actor.pump(ctx);
                });
            }
        }
        if self.is_idle() {
            self.idle_since = Instant::now();
        }
    }

    /// Starts an attempt: one Tokio task (see [`task`]) sends, tells the
    /// actor the answer is in, records the outcome and tells the actor what
    /// comes next. Messages, not futures spawned in the actor's context:
    /// actix polls every future of an actor on each of its wake-ups, and
    /// with hundreds of attempts under way the thread did little else.
    fn launch(
        &mut self,
        delivery: PendingDelivery,
        config: Arc<EndpointConfig>,
        fence: Option<Fence>,
        ctx: &mut Context<Self>,
    ) {
        self.in_flight += 1;
        self.attempting.insert(delivery.id);
        let (engine, client) = (self.engine.clone(), self.client.clone());
        let actor = ctx.address();
        // Counts against the partition until recorded: a node giving the
        // partition up waits for it (see `cluster::node`).
        let under_way = engine.ownership.attempt_started(self.config_id);
        // One span per attempt: a JSON log line of it carries the event,
        // delivery and config ids (`serve --log-format json`).
        let span = tracing::debug_span!(
            "attempt",
            event_id = %delivery.event.id,
            delivery_id = delivery.id,
            config_id = delivery.config_id,
            attempt = delivery.attempts + 1,
        );
        tokio::spawn(async move {
            let attempt = std::panic::AssertUnwindSafe(
                async {
                    let result = engine.send(&client, &config, &delivery).await;
                    actor.do_send(Finished::Answered {
                        status: result.record.status_code,
                        retry_after: result.retry_after,
                    });
                    let (status, success) = (result.record.status_code, result.record.success);
                    let duration_ms = result.record.duration_ms;
                    record_attempt_metrics(&delivery, status, duration_ms);
                    let recording = engine.recording.start(delivery.id);
                    let verdict = engine.settle(&config, &delivery, result, fence).await;
                    drop(recording);
                    drop(under_way);
                    tracing::debug!(status, success, duration_ms, ?verdict, "attempt recorded");
                    verdict
                }
                .instrument(span),
            );
            // A stopped actor is gone with its work; its successor reloads it.
            actor.do_send(match attempt.catch_unwind().await {
                Ok(verdict) => Finished::Settled { delivery, verdict },
                Err(panic) => Finished::Panicked(panic),
            });
        });
    }

    fn retry_later(&mut self, delivery: PendingDelivery, wait: Duration, ctx: &mut Context<Self>) {
        self.retries_queued += 1;
        self.retries.push(Reverse(WaitingRetry {
            due: Instant::now() + wait,
            order: self.retries_queued,
            delivery,
        }));
        self.arm_retry_timer(ctx);
    }

    /// Arms the timer for the soonest waiting retry, unless one is armed
    /// for that time or earlier.
    fn arm_retry_timer(&mut self, ctx: &mut Context<Self>) {
        let Some(Reverse(soonest)) = self.retries.peek() else {
            return;
        };
        let due = soonest.due;
        match &self.retry_timer {
            Some((armed, _)) if *armed <= due => return,
            Some((_, handle)) => {
                ctx.cancel_future(*handle);
            }
            None => {}
        }
        let wait = due.saturating_duration_since(Instant::now());
        let handle = ctx.run_later(wait, |actor, ctx| {
            actor.retry_timer = None;
            let now = Instant::now();
            while actor
                .retries
                .peek()
                .is_some_and(|Reverse(soonest)| soonest.due <= now)
            {
                if let Some(Reverse(retry)) = actor.retries.pop() {
                    let mut due = retry.delivery;
                    due.next_attempt_at = 0;
                    actor.ready.push_back(due);
                }
            }
            actor.arm_retry_timer(ctx);
            actor.pump(ctx);
        });
        self.retry_timer = Some((due, handle));
    }

    /// After a reload: retries the config no longer accepts end here. An
    /// attempt that settled while the reload read was spared by its
    /// `fail_pending`, so it is failed now (the others are already).
    fn drop_waiting_retries_not_accepted(&mut self, ctx: &mut Context<Self>) {
        let Some(config) = self.config.clone() else {
            return;
        };
        if self
            .retries
            .iter()
            .all(|Reverse(retry)| config.accepts(retry.delivery.kind))
        {
            return;
        }
        let (kept, dropped): (Vec<_>, Vec<_>) = std::mem::take(&mut self.retries)
            .into_iter()
            .partition(|Reverse(retry)| config.accepts(retry.delivery.kind));
        self.retries = kept.into_iter().collect();
        let ids: Vec<i64> = dropped
            .into_iter()
            .map(|Reverse(retry)| retry.delivery.id)
            .collect();
        for id in &ids {
            self.finish(*id);
        }
        self.fail_in_database(ids, ctx);
    }

    fn fail_in_database(&mut self, delivery_ids: Vec<i64>, ctx: &mut Context<Self>) {
        let store = self.engine.store.clone();
        let config_id = self.config_id;
        let fail =
            task::run(async move { store.fail_if_pending(&delivery_ids, SWITCHED_OFF).await });
        ctx.spawn(fail.into_actor(self).map(move |failed, _, _| {
            if let Err(error) = failed {
                // Still pending in the database: the next reload fails it.
                tracing::error!(config = config_id, %error, "cannot fail deliveries");
            }
        }));
    }

    fn finish(&mut self, delivery_id: i64) {
        self.forget(delivery_id);
        self.finished.insert(delivery_id);
    }

    /// No longer held (its room in the node's budget goes back).
    fn forget(&mut self, delivery_id: i64) {
        if self.held.remove(&delivery_id) {
            self.engine.budget.give(1);
        }
    }

    fn is_idle(&self) -> bool {
        !self.spilled
            && !self.refilling
            && self.ready.is_empty()
            && self.attempting.is_empty()
            && self.retries.is_empty()
    }
}

impl Drop for EndpointActor {
    /// A stopped (or panicked) actor's deliveries leave memory with it.
    fn drop(&mut self) {
        self.engine.budget.give(self.held.len());
    }
}

/// An attempt's answer class and duration, and for a first attempt the
/// time since its publish.
fn record_attempt_metrics(delivery: &PendingDelivery, status: Option<u16>, duration_ms: i64) {
    let first = delivery.attempts == 0 && delivery.kind == DeliveryKind::Event;
    let since_publish = first
        .then(|| Duration::from_micros((now_micros() - delivery.event.published_at).max(0) as u64));
    telemetry::attempt_recorded(
        status,
        Duration::from_millis(duration_ms.max(0) as u64),
        since_publish,
    );
}

/// Why a pending delivery ends without being sent.
const SWITCHED_OFF: &str = "the webhook config was deactivated or deleted before delivery";

/// The ids of the last [`RecentlyFinished::CAPACITY`] finished
/// deliveries, oldest forgotten first (a late notice of a delivery older
/// than that sends it again: at-least-once allows it).
#[derive(Default)]
struct RecentlyFinished {
    set: HashSet<i64>,
    order: VecDeque<i64>,
}

impl RecentlyFinished {
    const CAPACITY: usize = 10_000;

    fn insert(&mut self, delivery_id: i64) {
        if self.set.insert(delivery_id) {
            self.order.push_back(delivery_id);
            if self.order.len() > Self::CAPACITY {
                if let Some(oldest) = self.order.pop_front() {
                    self.set.remove(&oldest);
                }
            }
        }
    }

    /// Its stale entry in `order` stays until it ages out (an `insert` of
    /// the same id meanwhile is then forgotten early: harmless).
    fn forget(&mut self, delivery_id: i64) {
        self.set.remove(&delivery_id);
    }

    fn contains(&self, delivery_id: i64) -> bool {
        self.set.contains(&delivery_id)
    }
}

/// A delivery waiting for its next attempt, ordered by when it is due
/// (then by when it started waiting).
struct WaitingRetry {
    due: Instant,
    order: u64,
    delivery: PendingDelivery,
}

impl WaitingRetry {
    fn key(&self) -> (Instant, u64) {
        (self.due, self.order)
    }
}

impl PartialEq for WaitingRetry {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for WaitingRetry {}

impl PartialOrd for WaitingRetry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for WaitingRetry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl Actor for EndpointActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.reload(ctx);
        let idle_timeout = self.engine.settings.idle_timeout;
        ctx.run_interval(idle_timeout / 2, move |actor, _| {
            if actor.is_idle() && actor.idle_since.elapsed() >= idle_timeout {
                actor.supervisor.do_send(EndpointIdle {
                    config_id: actor.config_id,
                    received: actor.received,
                });
            }
        });
    }
}

/// A step of an attempt ended.
#[derive(Message)]
#[rtype(result = "()")]
enum Finished {
    /// The HTTP exchange is over (with the receiver's status and
    /// `Retry-After`, for the throttle); the attempt is being recorded.
    Answered {
        status: Option<u16>,
        retry_after: Option<Duration>,
    },
    /// Recorded: retry, forget, or switch off.
    Settled {
        delivery: PendingDelivery,
        verdict: Verdict,
    },
    /// The step panicked: the actor dies of it, as if it had panicked
    /// itself, and the supervisor starts another.
    Panicked(Box<dyn std::any::Any + Send>),
}

impl Handler<Finished> for EndpointActor {
    type Result = ();

    fn handle(&mut self, finished: Finished, ctx: &mut Context<Self>) {
        match finished {
            Finished::Answered {
                status,
                retry_after,
            } => {
                let under_way = self.in_flight;
                // The slot is free while the attempt is recorded.
                self.in_flight -= 1;
                let limit = self.engine.settings.max_in_flight_per_endpoint;
                match status {
                    Some(429 | 503) => {
                        self.throttle
                            .pushed_back(retry_after, under_way, Instant::now())
                    }
                    Some(200..=299) => self.throttle.accepted(limit),
                    _ => {}
                }
            }
            Finished::Settled { delivery, verdict } => {
                self.attempting.remove(&delivery.id);
                let switched_off = self
                    .config
                    .as_ref()
                    .is_some_and(|config| !config.accepts(delivery.kind));
                match verdict {
                    Verdict::RetryIn(_) if switched_off => {
                        self.finish(delivery.id);
                        self.fail_in_database(vec![delivery.id], ctx);
                    }
                    Verdict::RetryIn(wait) => {
                        let mut retry = delivery;
                        retry.attempts += 1;
                        retry.next_attempt_at = 0;
                        self.retry_later(retry, wait, ctx);
                    }
                    Verdict::Done => self.finish(delivery.id),
                    Verdict::EndpointOff => {
                        self.finish(delivery.id);
                        self.reload(ctx);
                    }
                }
            }
            Finished::Panicked(panic) => std::panic::resume_unwind(panic),
        }
        self.pump(ctx);
    }
}

/// Deliveries for this endpoint, just committed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Deliver {
    pub deliveries: Vec<PendingDelivery>,
    /// Sent again on request (a manual retry): go out even if this actor
    /// finished them before.
    pub again: bool,
}

impl Handler<Deliver> for EndpointActor {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Context<Self>) {
        self.received += 1;
        if msg.again {
            for delivery in &msg.deliveries {
                self.finished.forget(delivery.id);
            }
        }
        self.hold(msg.deliveries);
        self.pump(ctx);
    }
}

/// The config changed: re-read it (and drop work it no longer accepts).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reload;

impl Handler<Reload> for EndpointActor {
    type Result = ();

    fn handle(&mut self, _: Reload, ctx: &mut Context<Self>) {
        self.reload(ctx);
    }
}

/// The supervisor's poll found pending deliveries of this endpoint in the
/// database. On a cluster a delivery another node committed reaches this
/// actor by that node's announcement, which can be lost (a dropped
/// notification connection): an actor with nothing of its own to do reads
/// its pending rows again (at most every [`NUDGE_EVERY`]; those it holds are
/// skipped).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Nudge;

const NUDGE_EVERY: Duration = Duration::from_secs(2);

impl Handler<Nudge> for EndpointActor {
    type Result = ();

    fn handle(&mut self, _: Nudge, ctx: &mut Context<Self>) {
        let nothing_to_do = self.ready.is_empty() && self.retries.is_empty();
        let recently = self
            .last_nudged
            .is_some_and(|at| at.elapsed() < NUDGE_EVERY);
        if nothing_to_do && !recently && !self.refilling && self.config.is_some() {
            self.last_nudged = Some(Instant::now());
            self.refill(ctx);
        }
    }
}

/// Stop now (sent by the supervisor once it agreed the actor is idle).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

impl Handler<Stop> for EndpointActor {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// Fault injection for tests: the handler panics, as a bug would. Debug
/// builds only (the test suite's): a release build has no such message.
#[cfg(debug_assertions)]
#[derive(Message)]
#[rtype(result = "()")]
pub struct Panic;

#[cfg(debug_assertions)]
impl Handler<Panic> for EndpointActor {
    type Result = ();

    fn handle(&mut self, _: Panic, _: &mut Context<Self>) {
        panic!(
            "injected panic in the endpoint actor of config {}",
            self.config_id
        );
    }
}
