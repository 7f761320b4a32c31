//! One actor per endpoint (config) with pending work. It owns the queue of
//! that endpoint, keeps up to `max_in_flight_per_endpoint` requests going,
//! schedules retries, and stops when it has been idle for a while. Its
//! pending work always lives in the database too, so a dead actor loses
//! nothing: the supervisor starts a new one, which reloads it.
//!
//! The actor composes plain parts, each with its own tests: the
//! [`queue::DeliveryQueue`] (what it holds, and what is ready), the
//! [`fifo::FifoLine`] of a FIFO endpoint, the [`retries::RetryHeap`], the
//! [`attempts::Attempts`] under way and the [`throttle::Throttle`]. The
//! actor itself moves deliveries between them, reads the database and
//! talks to the supervisor.
mod attempts;
pub mod fifo;
mod queue;
mod retries;
pub mod throttle;

use super::policy::{DeliveryEngine, Verdict};
use super::store::{DeliveryKind, EndpointConfig, PendingDelivery, PendingRead};
use super::supervisor::{DeliverySupervisor, EndpointGone, EndpointIdle};
use super::task;
use crate::cluster::Fence;
use crate::telemetry;
use actix::prelude::*;
use attempts::Attempts;
use fifo::{FifoLine, Next};
use futures_util::FutureExt;
use projections::db::now_micros;
use queue::{Admission, DeliveryQueue};
use retries::RetryHeap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use throttle::Throttle;
use tracing::Instrument;

pub struct EndpointActor {
    config_id: i64,
    engine: Arc<DeliveryEngine>,
    supervisor: Addr<DeliverySupervisor>,
    /// The HTTP client of this actor's lane.
    client: reqwest::Client,
    /// `None` until loaded from the database.
    config: Option<Arc<EndpointConfig>>,
    queue: DeliveryQueue,
    /// A FIFO endpoint's deliveries with a place, in place order.
    line: FifoLine,
    attempts: Attempts,
    retries: RetryHeap,
    /// The one timer armed, for the soonest waiting retry.
    retry_timer: Option<(Instant, SpawnHandle)>,
    /// The config's `rate_limit` and the receiver's push-back.
    throttle: Throttle,
    /// A pump is due when the throttle allows the next delivery.
    throttled: bool,
    /// A pump is due when a gap in the FIFO line has waited long enough.
    gap_timer: bool,
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
            queue: DeliveryQueue::default(),
            line: FifoLine::default(),
            attempts: Attempts::default(),
            retries: RetryHeap::default(),
            retry_timer: None,
            throttle: Throttle::new(None, Instant::now()),
            throttled: false,
            gap_timer: false,
            received: 0,
            idle_since: Instant::now(),
            reloads: 0,
            spilled: false,
            refilling: false,
            last_nudged: None,
            waiting_for_room: false,
        }
    }

    /// Takes on deliveries, up to the cap; the ones over it stay in the
    /// database for a later [`Self::refill`]. Returns the lowest FIFO place
    /// it had no room for.
    fn hold(&mut self, deliveries: Vec<PendingDelivery>) -> Option<i64> {
        let cap = self.engine.settings.max_queued_per_endpoint;
        let mut lowest_not_taken: Option<i64> = None;
        for delivery in deliveries {
            if self.engine.recording.contains(delivery.id) {
                continue;
            }
            let budget = &self.engine.budget;
            match self.queue.admit(delivery.id, cap, || budget.take()) {
                Admission::Known => {}
                Admission::NoRoom => {
                    self.spilled = true;
                    if let Some(place) = delivery.fifo_seq {
                        lowest_not_taken = Some(lowest_not_taken.map_or(place, |p| p.min(place)));
                    }
                }
                Admission::Held => self.place(delivery),
            }
        }
        lowest_not_taken
    }

    /// A held delivery goes to the FIFO line if it has a place there, else
    /// to the ready queue.
    fn place(&mut self, delivery: PendingDelivery) {
        if self.in_line(&delivery) {
            self.line.hold(delivery);
        } else {
            self.queue.push_back(delivery);
        }
    }

    fn in_line(&self, delivery: &PendingDelivery) -> bool {
        delivery.fifo_seq.is_some() && self.config.as_ref().is_some_and(|c| c.is_fifo())
    }

    /// After the config was (re)loaded: deliveries that arrived before it
    /// (or under another ordering) move to where its ordering puts them.
    /// A FIFO delivery waiting for its retry in the ready queue stays.
    fn arrange(&mut self) {
        if self.config.as_ref().is_some_and(|c| c.is_fifo()) {
            let line = &self.line;
            let moved = self
                .queue
                .take_ready_where(|d| d.fifo_seq.is_some() && !line.is_current(d.id));
            for delivery in moved {
                self.line.hold(delivery);
            }
        } else {
            for delivery in self.line.drain() {
                self.queue.push_back(delivery);
            }
        }
    }

    /// Takes what a read of the pending rows found.
    fn take_read(&mut self, read: PendingRead) {
        let cap = self.engine.settings.max_queued_per_endpoint;
        let complete = read.deliveries.len() < cap;
        self.spilled |= !complete;
        let places: Vec<i64> = read.deliveries.iter().filter_map(|d| d.fifo_seq).collect();
        let lowest_not_taken = self.hold(read.deliveries);
        if let Some(last_place) = read.last_fifo_place {
            self.line.vouch(fifo::vouched_by_read(
                last_place,
                &places,
                complete,
                lowest_not_taken,
            ));
        }
    }

    /// Reads the soonest pending deliveries again (those held already are
    /// skipped by `hold`): the queue ran low while some were left in the
    /// database, or the FIFO line has a gap. Every one committed before
    /// the read starts is seen by it, and a notice turned away after that
    /// sets `spilled` again.
    fn refill(&mut self, ctx: &mut Context<Self>) {
        self.refilling = true;
        self.spilled = false;
        let (config_id, engine, config) =
            (self.config_id, self.engine.clone(), self.config.clone());
        let read =
            task::run(async move { read_pending(&engine, config_id, config.as_deref()).await });
        ctx.spawn(read.into_actor(self).map(move |read, actor, ctx| {
            actor.refilling = false;
            match read {
                Ok(read) => actor.take_read(read),
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
        // Nothing is launched until the reload is read, so this is every
        // attempt under way while it reads.
        let attempting = self.attempts.delivery_ids();
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
            let pending = read_pending(&engine, config_id, config.as_ref()).await?;
            Ok::<_, projections::Error>((config, pending))
        };
        let load = task::run(load);
        ctx.spawn(load.into_actor(self).map(move |loaded, actor, ctx| match loaded {
            _ if this_reload != actor.reloads => {}
            Ok((Some(config), pending)) => {
                actor.throttle.set_rate(config.rate_limit);
                actor.config = Some(Arc::new(config));
                actor.arrange();
                actor.drop_waiting_retries_not_accepted(ctx);
                actor.take_read(pending);
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
        if self.throttle.is_limited() {
            // Rate limits hold cluster-wide: a lease that changed hands
            // lately gives the previous holder's last second to it.
            if let Some(since) = ownership.held_since(self.config_id) {
                self.throttle.not_before(since + RATE_WINDOW);
            }
        }
        let limit = self.engine.settings.max_in_flight_per_endpoint;
        // A receiver that refused (429/503) gets fewer at once for a while.
        let request_limit = self.throttle.in_flight_limit(limit);
        let now = now_micros();
        // Attempts still being recorded count too, up to three times the
        // limit again.
        while self.attempts.may_start(request_limit, 4 * limit) {
            let Some(delivery) = self.next_delivery(ctx) else {
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
                // Over the rate limit: it waits, first in its queue.
                if self.line.is_current(delivery.id) {
                    self.line.put_back(delivery);
                } else {
                    self.queue.push_front(delivery);
                }
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
        if self.spilled && !self.refilling && self.queue.held() <= low_water {
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

    /// The next delivery to start: the ready queue's first (fresh
    /// deliveries of a non-FIFO endpoint, tests, due retries), else the
    /// FIFO line's, when its turn has come.
    fn next_delivery(&mut self, ctx: &mut Context<Self>) -> Option<PendingDelivery> {
        if let Some(delivery) = self.queue.pop_front() {
            return Some(delivery);
        }
        match self.line.next(Instant::now()) {
            Next::Send(delivery) => Some(*delivery),
            Next::Wait => {
                if let Some(deadline) = self.line.gap_deadline() {
                    if !self.gap_timer {
                        self.gap_timer = true;
                        let wait = deadline.saturating_duration_since(Instant::now());
                        ctx.run_later(wait, |actor, ctx| {
                            actor.gap_timer = false;
                            actor.pump(ctx);
                        });
                    }
                }
                None
            }
            Next::Read => {
                if !self.refilling {
                    self.refill(ctx);
                }
                None
            }
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
        self.attempts.start(delivery.id);
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
                    if result.not_sent {
                        // The lease ran out before the request left: not an
                        // attempt. The delivery stays pending for the new
                        // holder (or for this node, should it win the lease
                        // back).
                        drop(under_way);
                        tracing::debug!("not sent: the lease ran out");
                        return Verdict::RetryIn(Duration::ZERO);
                    }
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
        self.retries.push(delivery, Instant::now() + wait);
        self.arm_retry_timer(ctx);
    }

    /// Arms the timer for the soonest waiting retry, unless one is armed
    /// for that time or earlier.
    fn arm_retry_timer(&mut self, ctx: &mut Context<Self>) {
        let Some(due) = self.retries.soonest() else {
            return;
        };
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
            for due in actor.retries.pop_due(Instant::now()) {
                actor.queue.push_back(due);
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
        let dropped = self
            .retries
            .remove_unless(|delivery| config.accepts(delivery.kind));
        if dropped.is_empty() {
            return;
        }
        let ids: Vec<i64> = dropped.iter().map(|delivery| delivery.id).collect();
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

    /// Done with it: a late notice of it is ignored, and the FIFO line
    /// moves on.
    fn finish(&mut self, delivery_id: i64) {
        if self.queue.finish(delivery_id) {
            self.engine.budget.give(1);
        }
        self.line.done(delivery_id);
    }

    /// No longer held (its room in the node's budget goes back).
    fn forget(&mut self, delivery_id: i64) {
        if self.queue.forget(delivery_id) {
            self.engine.budget.give(1);
        }
        self.line.done(delivery_id);
    }

    fn is_idle(&self) -> bool {
        !self.spilled
            && !self.refilling
            && self.queue.ready_is_empty()
            && self.line.is_empty()
            && self.attempts.is_empty()
            && self.retries.is_empty()
    }
}

impl Drop for EndpointActor {
    /// A stopped (or panicked) actor's deliveries leave memory with it.
    fn drop(&mut self) {
        self.engine.budget.give(self.queue.held());
    }
}

/// An endpoint's pending rows, as much as an actor holds: only what the
/// config takes now (rows read and dropped as not accepted would make the
/// queue look low again, and the actor would read them over and over), in
/// place order for a FIFO config.
async fn read_pending(
    engine: &DeliveryEngine,
    config_id: i64,
    config: Option<&EndpointConfig>,
) -> Result<PendingRead, projections::Error> {
    let with_events = config.is_some_and(|c| c.accepts(DeliveryKind::Event));
    let fifo = config.is_some_and(|c| c.is_fifo());
    let cap = engine.settings.max_queued_per_endpoint;
    engine
        .store
        .pending_for_config(config_id, cap, with_events, fifo)
        .await
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
                // The slot is free while the attempt is recorded.
                let under_way = self.attempts.answered();
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
                self.attempts.settled(delivery.id);
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
                self.queue.send_again(delivery.id);
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

/// The window a rate limit counts in.
const RATE_WINDOW: Duration = Duration::from_secs(1);

impl Handler<Nudge> for EndpointActor {
    type Result = ();

    fn handle(&mut self, _: Nudge, ctx: &mut Context<Self>) {
        let nothing_to_do =
            self.queue.ready_is_empty() && self.line.is_empty() && self.retries.is_empty();
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

/// Fault injection for tests: the handler panics, as a bug would. With the
/// `fault-injection` feature only (the test suite's).
#[cfg(feature = "fault-injection")]
#[derive(Message)]
#[rtype(result = "()")]
pub struct Panic;

#[cfg(feature = "fault-injection")]
impl Handler<Panic> for EndpointActor {
    type Result = ();

    fn handle(&mut self, _: Panic, _: &mut Context<Self>) {
        panic!(
            "injected panic in the endpoint actor of config {}",
            self.config_id
        );
    }
}
