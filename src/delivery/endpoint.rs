//! One actor per endpoint (config) with pending work. It owns the queue of
//! that endpoint, keeps up to `max_in_flight_per_endpoint` requests going,
//! schedules retries, and stops when it has been idle for a while. Its
//! pending work always lives in the database too, so a dead actor loses
//! nothing: the supervisor starts a new one, which reloads it.
use super::policy::{DeliveryEngine, Verdict};
use super::store::{DeliveryKind, EndpointConfig, PendingDelivery};
use super::supervisor::{DeliverySupervisor, EndpointGone, EndpointIdle};
use super::task;
use actix::prelude::*;
use futures_util::FutureExt;
use projections::db::now_micros;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// retry), by id, with the `next_attempt_at` it arrived with (its
    /// version: a manual retry makes it pending again with a new one), so
    /// that the same row arriving twice is sent once.
    held: HashMap<i64, i64>,
    /// Versions of the deliveries this actor finished lately. A `Deliver`
    /// can arrive after its delivery is done: a reload read the committed
    /// row, sent it and recorded it before the publish's hand-over reached
    /// the actor (seen with 40 concurrent publishes).
    finished: RecentlyFinished,
    /// HTTP requests under way (bounded by `max_in_flight_per_endpoint`).
    in_flight: usize,
    /// Attempts answered and being recorded (bounded with `in_flight`, see
    /// `pump`).
    settling: usize,
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
    /// Deliveries finished while a reload was reading: its list of pending
    /// rows may predate their records, and must not send them again.
    finished_while_loading: HashSet<i64>,
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
            held: HashMap::new(),
            finished: RecentlyFinished::default(),
            in_flight: 0,
            settling: 0,
            retries: BinaryHeap::new(),
            retry_timer: None,
            retries_queued: 0,
            received: 0,
            idle_since: Instant::now(),
            reloads: 0,
            finished_while_loading: HashSet::new(),
        }
    }

    fn hold(&mut self, deliveries: Vec<PendingDelivery>) {
        for delivery in deliveries {
            let version = (delivery.id, delivery.next_attempt_at);
            if self.held.contains_key(&delivery.id) || self.finished.contains(version) {
                continue;
            }
            self.held.insert(delivery.id, delivery.next_attempt_at);
            self.ready.push_back(delivery);
        }
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
        self.finished_while_loading.clear();
        let this_reload = self.reloads;
        let engine = self.engine.clone();
        let config_id = self.config_id;
        let load = async move {
            let config = engine.store.endpoint_config(config_id).await?;
            let accepts = |kind| config.as_ref().is_some_and(|c| c.accepts(kind));
            if !accepts(DeliveryKind::Event) && !accepts(DeliveryKind::Test) {
                engine
                    .store
                    .fail_pending(
                        config_id,
                        "the webhook config was deactivated or deleted before delivery",
                    )
                    .await?;
            }
            let pending = engine.store.pending_for_config(config_id).await?;
            Ok::<_, projections::Error>((config, pending))
        };
        let load = task::run(load);
        ctx.spawn(load.into_actor(self).map(move |loaded, actor, ctx| match loaded {
            _ if this_reload != actor.reloads => {}
            Ok((Some(config), mut pending)) => {
                actor.config = Some(Arc::new(config));
                let finished = std::mem::take(&mut actor.finished_while_loading);
                pending.retain(|delivery| !finished.contains(&delivery.id));
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
        let limit = self.engine.settings.max_in_flight_per_endpoint;
        let now = now_micros();
        // Attempts still being recorded count too, up to three times the
        // limit again: while the database lags behind the receiver, the
        // actor stops taking on more than it can record.
        while self.in_flight < limit && self.in_flight + self.settling < 4 * limit {
            let Some(delivery) = self.ready.pop_front() else {
                break;
            };
            if !config.accepts(delivery.kind) {
                self.held.remove(&delivery.id);
                continue;
            }
            if delivery.next_attempt_at > now {
                let wait = Duration::from_micros((delivery.next_attempt_at - now) as u64);
                self.retry_later(delivery, wait, ctx);
                continue;
            }
            self.launch(delivery, config.clone(), ctx);
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
        ctx: &mut Context<Self>,
    ) {
        self.in_flight += 1;
        let (engine, client) = (self.engine.clone(), self.client.clone());
        let actor = ctx.address();
        tokio::spawn(async move {
            let attempt = std::panic::AssertUnwindSafe(async {
                let result = engine.send(&client, &config, &delivery).await;
                actor.do_send(Finished::Answered);
                engine.settle(&config, &delivery, result).await
            });
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

    fn finish(&mut self, delivery_id: i64) {
        if let Some(version) = self.held.remove(&delivery_id) {
            self.finished.insert((delivery_id, version));
        }
        if self.config.is_none() {
            self.finished_while_loading.insert(delivery_id);
        }
    }

    fn is_idle(&self) -> bool {
        self.ready.is_empty()
            && self.in_flight == 0
            && self.settling == 0
            && self.retries.is_empty()
    }
}

/// The last [`RecentlyFinished::CAPACITY`] finished deliveries (id,
/// version), oldest forgotten first.
#[derive(Default)]
struct RecentlyFinished {
    set: HashSet<(i64, i64)>,
    order: VecDeque<(i64, i64)>,
}

impl RecentlyFinished {
    const CAPACITY: usize = 10_000;

    fn insert(&mut self, version: (i64, i64)) {
        if self.set.insert(version) {
            self.order.push_back(version);
            if self.order.len() > Self::CAPACITY {
                if let Some(oldest) = self.order.pop_front() {
                    self.set.remove(&oldest);
                }
            }
        }
    }

    fn contains(&self, version: (i64, i64)) -> bool {
        self.set.contains(&version)
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
    /// The HTTP exchange is over; the attempt is being recorded.
    Answered,
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
            Finished::Answered => {
                // The slot is free while the attempt is recorded.
                self.in_flight -= 1;
                self.settling += 1;
            }
            Finished::Settled { delivery, verdict } => {
                self.settling -= 1;
                match verdict {
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

/// New deliveries for this endpoint.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Deliver(pub Vec<PendingDelivery>);

impl Handler<Deliver> for EndpointActor {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Context<Self>) {
        self.received += 1;
        self.hold(msg.0);
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

/// Fault injection for tests: the handler panics, as a bug would.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Panic;

impl Handler<Panic> for EndpointActor {
    type Result = ();

    fn handle(&mut self, _: Panic, _: &mut Context<Self>) {
        panic!(
            "injected panic in the endpoint actor of config {}",
            self.config_id
        );
    }
}
