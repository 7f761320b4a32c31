//! One actor per endpoint (config) with pending work: the shell around
//! the endpoint's state machine ([`state::EndpointState`]). The machine
//! decides — what it holds, what goes out when, what to read, when to wake
//! up; the actor runs what it decided (database reads, attempts on their
//! own Tokio tasks, timers, messages to the supervisor) and feeds the
//! answers back to it. Its pending work always lives in the database too,
//! so a dead actor loses nothing: the supervisor starts a new one, which
//! reloads it.
//!
//! The machine composes plain parts, each with its own tests: the
//! [`queue::DeliveryQueue`] (what it holds, and what is ready), the
//! [`fifo::FifoLine`] of a FIFO endpoint, the [`retries::RetryHeap`], the
//! [`attempts::Attempts`] under way and the [`throttle::Throttle`]; its
//! own property tests drive it through simulated databases, receivers and
//! clocks.
mod attempts;
pub mod fifo;
mod queue;
mod retries;
mod state;
pub mod throttle;

use super::engine::DeliveryEngine;
use super::policy::Verdict;
use super::supervisor::{DeliverySupervisor, EndpointGone, EndpointIdle};
use super::task;
use crate::cluster::Fence;
use crate::telemetry::{self, Handoff};
use actix::prelude::*;
use aggregates::values::ConfigId;
use futures_util::FutureExt;
use projections::db::now_micros;
use projections::deliveries::{DeliveryKind, EndpointConfig, PendingDelivery, PendingRead};
use state::{Effect, EndpointState, Input, Limits, Loaded, Moment, Surroundings};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

pub struct EndpointActor {
    config_id: ConfigId,
    engine: Arc<DeliveryEngine>,
    supervisor: Addr<DeliverySupervisor>,
    /// The HTTP client of this actor's lane.
    client: reqwest::Client,
    state: EndpointState,
    /// When each delivery reached this actor, while the hand-offs are
    /// timed (`telemetry::Handoff`); `None` otherwise.
    arrived: Option<HashMap<i64, Instant>>,
}

impl EndpointActor {
    pub fn new(
        config_id: ConfigId,
        engine: Arc<DeliveryEngine>,
        supervisor: Addr<DeliverySupervisor>,
        client: reqwest::Client,
    ) -> Self {
        let settings = &engine.settings;
        let limits = Limits {
            max_in_flight: settings.max_in_flight_per_endpoint,
            max_queued: settings.max_queued_per_endpoint,
            retry_pause: settings.watchdog_interval,
            idle_timeout: settings.idle_timeout,
        };
        Self {
            config_id,
            supervisor,
            client,
            state: EndpointState::new(limits, Instant::now()),
            engine,
            arrived: telemetry::handoffs_timed().then(HashMap::new),
        }
    }

    /// Gives the machine one input and runs what it decided.
    fn feed(&mut self, input: Input, ctx: &mut Context<Self>) {
        let node = Node {
            engine: &self.engine,
            config_id: self.config_id,
        };
        let at = Moment {
            instant: Instant::now(),
            micros: now_micros(),
        };
        let effects = self.state.on(input, at, &node);
        // One fence for every attempt this input started (as one pump).
        let mut fence = None;
        for effect in effects {
            match effect {
                Effect::Load { reload, attempting } => self.load(reload, attempting, ctx),
                Effect::Read { config } => self.read(config, ctx),
                Effect::Launch { delivery, config } => {
                    let fence = *fence
                        .get_or_insert_with(|| self.engine.node.ownership.fence(self.config_id));
                    self.launch(delivery, config, fence, ctx);
                }
                Effect::Fail(ids) => self.fail_in_database(ids, ctx),
                Effect::Wake { after, timer } => {
                    ctx.run_later(after, move |actor, ctx| actor.feed(Input::Wake(timer), ctx));
                }
                Effect::Gone => {
                    self.supervisor.do_send(EndpointGone {
                        config_id: self.config_id,
                    });
                    ctx.stop();
                }
                Effect::Idle { received } => self.supervisor.do_send(EndpointIdle {
                    config_id: self.config_id,
                    received,
                }),
            }
        }
    }

    /// Reads the config and its pending rows; a config that no longer
    /// takes events first has its pending rows failed (except those with
    /// an attempt under way: their record says what comes next).
    fn load(&mut self, reload: u64, attempting: Vec<i64>, ctx: &mut Context<Self>) {
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
        ctx.spawn(load.into_actor(self).map(move |loaded, actor, ctx| {
            let outcome = match loaded {
                Ok((Some(config), pending)) => Loaded::Found(Box::new(config), pending),
                Ok((None, _)) => Loaded::Gone,
                Err(error) => {
                    tracing::error!(config = config_id.get(), %error, "cannot load an endpoint; retrying");
                    Loaded::Failed
                }
            };
            actor.feed(Input::Loaded { reload, outcome }, ctx);
        }));
    }

    /// Reads the soonest pending rows (see [`read_pending`]).
    fn read(&mut self, config: Option<Arc<EndpointConfig>>, ctx: &mut Context<Self>) {
        let (config_id, engine) = (self.config_id, self.engine.clone());
        let read =
            task::run(async move { read_pending(&engine, config_id, config.as_deref()).await });
        ctx.spawn(read.into_actor(self).map(move |read, actor, ctx| {
            let read = read
                .inspect_err(|error| {
                    tracing::error!(config = config_id.get(), %error, "cannot read pending deliveries");
                })
                .ok();
            actor.feed(Input::Read(read), ctx);
        }));
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
        let (engine, client) = (self.engine.clone(), self.client.clone());
        let actor = ctx.address();
        let timed = self.arrived.as_mut().map(|arrived| {
            let launched = Instant::now();
            if let Some(at) = arrived.remove(&delivery.id) {
                telemetry::handoff(Handoff::Held, launched - at);
            }
            launched
        });
        // Counts against the partition until recorded: a node giving the
        // partition up waits for it (see `cluster::node`).
        let under_way = engine.node.ownership.attempt_started(self.config_id);
        // One span per attempt: a JSON log line of it carries the event,
        // delivery and config ids (`serve --log-format json`).
        let span = tracing::debug_span!(
            "attempt",
            event_id = %delivery.event.id,
            delivery_id = delivery.id,
            config_id = delivery.config_id.get(),
            attempt = delivery.attempts + 1,
        );
        let task = async move {
            let attempt = std::panic::AssertUnwindSafe(
                async {
                    let result = engine.attempts.send(&client, &config, &delivery).await;
                    let answered = timed.map(|launched| {
                        telemetry::handoff(Handoff::InFlight, launched.elapsed());
                        Instant::now()
                    });
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
                    let recording = engine.node.recording.start(delivery.id);
                    let verdict = engine
                        .attempts
                        .settle(&config, &delivery, result, fence)
                        .await;
                    drop(recording);
                    drop(under_way);
                    if let Some(answered) = answered {
                        telemetry::handoff(Handoff::Recording, answered.elapsed());
                    }
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
        };
        // Boxed: the attempt's future (the HTTP client's among it) is
        // ~4.7 KB, and a task stores its future inline — moved in when
        // spawned and overwritten by the output when done, two copies of
        // it per attempt. Boxed, the task holds a pointer (fan-out 10:
        // −9 % webhookd CPU per delivery, +7 % deliveries/s).
        tokio::spawn(Box::pin(task));
    }

    fn fail_in_database(&mut self, delivery_ids: Vec<i64>, ctx: &mut Context<Self>) {
        let store = self.engine.store.clone();
        let config_id = self.config_id;
        let fail =
            task::run(async move { store.fail_if_pending(&delivery_ids, SWITCHED_OFF).await });
        ctx.spawn(fail.into_actor(self).map(move |failed, _, _| {
            if let Err(error) = failed {
                // Still pending in the database: the next reload fails it.
                tracing::error!(config = config_id.get(), %error, "cannot fail deliveries");
            }
        }));
    }
}

/// The node around an endpoint, as its machine sees it.
struct Node<'a> {
    engine: &'a DeliveryEngine,
    config_id: ConfigId,
}

impl Surroundings for Node<'_> {
    fn owns(&self) -> bool {
        self.engine.node.ownership.owns(self.config_id)
    }

    fn held_since(&self) -> Option<Instant> {
        self.engine.node.ownership.held_since(self.config_id)
    }

    fn being_recorded(&self, delivery_id: i64) -> bool {
        self.engine.node.recording.contains(delivery_id)
    }

    fn take_room(&self) -> bool {
        self.engine.node.budget.take()
    }

    fn give_room(&self, count: usize) {
        self.engine.node.budget.give(count)
    }

    fn has_room(&self) -> bool {
        self.engine.node.budget.has_room()
    }
}

impl Drop for EndpointActor {
    /// A stopped (or panicked) actor's deliveries leave memory with it.
    fn drop(&mut self) {
        self.engine.node.budget.give(self.state.held());
    }
}

/// An endpoint's pending rows, as much as an actor holds: only what the
/// config takes now (rows read and dropped as not accepted would make the
/// queue look low again, and the actor would read them over and over), in
/// place order for a FIFO config.
async fn read_pending(
    engine: &DeliveryEngine,
    config_id: ConfigId,
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
        self.feed(Input::Reload, ctx);
        let idle_timeout = self.engine.settings.idle_timeout;
        ctx.run_interval(idle_timeout / 2, |actor, ctx| actor.feed(Input::Tick, ctx));
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
            } => self.feed(
                Input::Answered {
                    status,
                    retry_after,
                },
                ctx,
            ),
            Finished::Settled { delivery, verdict } => {
                self.feed(Input::Settled { delivery, verdict }, ctx)
            }
            Finished::Panicked(panic) => std::panic::resume_unwind(panic),
        }
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
    /// When they were committed (the start of their hand-over), while the
    /// hand-offs are timed.
    pub since: Option<Instant>,
}

impl Handler<Deliver> for EndpointActor {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Context<Self>) {
        if let Some(arrived) = &mut self.arrived {
            let now = Instant::now();
            if let Some(since) = msg.since {
                telemetry::handoffs(Handoff::HandOver, now - since, msg.deliveries.len());
            }
            arrived.extend(msg.deliveries.iter().map(|delivery| (delivery.id, now)));
        }
        let input = Input::Deliver {
            deliveries: msg.deliveries,
            again: msg.again,
        };
        self.feed(input, ctx);
    }
}

/// The config changed: re-read it (and drop work it no longer accepts).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reload;

impl Handler<Reload> for EndpointActor {
    type Result = ();

    fn handle(&mut self, _: Reload, ctx: &mut Context<Self>) {
        self.feed(Input::Reload, ctx);
    }
}

/// The supervisor's poll found pending deliveries of this endpoint in the
/// database. On a cluster a delivery another node committed reaches this
/// actor by that node's announcement, which can be lost (a dropped
/// notification connection): an actor with nothing of its own to do reads
/// its pending rows again (at most every two seconds; those it holds are
/// skipped).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Nudge;

impl Handler<Nudge> for EndpointActor {
    type Result = ();

    fn handle(&mut self, _: Nudge, ctx: &mut Context<Self>) {
        self.feed(Input::Nudge, ctx);
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
