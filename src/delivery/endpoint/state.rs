//! What an endpoint does, as a pure state machine: [`EndpointState::on`]
//! takes one [`Input`] (deliveries handed over, a read answered, an attempt
//! answered or recorded, a timer, a reload, a nudge, the idle tick) at one
//! [`Moment`] and returns the [`Effect`]s to run (read the database, send
//! an attempt, fail rows, wake me later, report idle). No actix, no clock,
//! no database in here: the actor ([`super::EndpointActor`]) is the shell
//! that runs the effects and feeds their answers back as inputs, and the
//! property tests below drive the same machine with a simulated database,
//! receiver and clock.
//!
//! What it keeps (the invariants the tests check on every step):
//! - never more requests under way than the window (the node's per-endpoint
//!   limit, narrowed by a receiver's push-back),
//! - a FIFO endpoint sends one delivery at a time, in place order, and the
//!   next only when the one before it is done,
//! - a retry goes no earlier than its due time, and no delivery is sent
//!   twice at once,
//! - a rate limit spaces deliveries `1/rate` apart,
//! - at most `max_queued` deliveries held (the rest stay in the database,
//!   and are read back when the queue runs low), and never more than the
//!   node's budget allows,
//! - nothing pending is left behind once the receiver accepts everything.
use super::attempts::Attempts;
use super::fifo::{self, FifoLine, Next};
use super::queue::{Admission, DeliveryQueue};
use super::retries::RetryHeap;
use super::throttle::Throttle;
use crate::delivery::policy::Verdict;
use projections::deliveries::{EndpointConfig, PendingDelivery, PendingRead};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The window a rate limit counts in.
const RATE_WINDOW: Duration = Duration::from_secs(1);

/// How often an endpoint with nothing of its own to do reads its pending
/// rows again on a [`Input::Nudge`].
const NUDGE_EVERY: Duration = Duration::from_secs(2);

/// How many attempts per request slot may be answered but not yet
/// recorded. An answered attempt frees its request slot, but stays under
/// way until its outcome is committed — up to the outcome batch's linger
/// window (`OUTCOME_LINGER`: 5 ms when this was sized, 15 ms since) and the
/// commit after it, several times a request's ~1 ms on loopback. At 4
/// (until 2026-12-06) one endpoint's 32 slots allowed 128 attempts under
/// way: at ~16 000/s × (1 + 6.7) ms the actor held
/// deliveries back (85 ms on average) with the machine at 76 %. At 16,
/// 512: one endpoint +12–18 % deliveries/s on both backends and its p50
/// 300 → 5 ms; 64 measured no better. It still bounds what is sent while
/// the database does not record (an outage): each such attempt is sent
/// again later.
const RECORDED_PER_REQUEST: usize = 16;

/// The node's settings an endpoint works within.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Requests under way at once.
    pub max_in_flight: usize,
    /// Deliveries held in memory; the rest wait in the database.
    pub max_queued: usize,
    /// How long to wait before trying a failed read again.
    pub retry_pause: Duration,
    /// How long an endpoint stays idle before it offers to stop.
    pub idle_timeout: Duration,
}

/// "Now", as the two clocks the machine needs: the monotonic one for its
/// timers, and the database's microseconds for rows' due times.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Moment {
    pub instant: Instant,
    pub micros: i64,
}

/// What the machine asks of the node around it (its answers may change
/// between inputs, never during one).
pub(crate) trait Surroundings {
    /// Whether this node holds the endpoint's lease (always, single-node).
    fn owns(&self) -> bool;
    /// Since when this node holds it, if it changed hands.
    fn held_since(&self) -> Option<Instant>;
    /// An attempt of this delivery is being recorded on this node.
    fn being_recorded(&self, delivery_id: i64) -> bool;
    /// Takes room for one delivery in the node's budget.
    fn take_room(&self) -> bool;
    /// Gives room back.
    fn give_room(&self, count: usize);
    fn has_room(&self) -> bool;
}

/// What happens to the endpoint.
#[derive(Debug)]
pub(crate) enum Input {
    /// Deliveries just committed. `again`: sent again on request (a manual
    /// retry): they go out even if this endpoint finished them before.
    Deliver {
        deliveries: Vec<PendingDelivery>,
        again: bool,
    },
    /// The config changed (or the actor started): read it again.
    Reload,
    /// A [`Effect::Load`] finished.
    Loaded { reload: u64, outcome: Loaded },
    /// A [`Effect::Read`] finished (`None`: it failed).
    Read(Option<PendingRead>),
    /// An attempt's HTTP exchange is over; it is being recorded.
    Answered {
        status: Option<u16>,
        retry_after: Option<Duration>,
    },
    /// An attempt is recorded: what comes next for its delivery.
    Settled {
        delivery: PendingDelivery,
        verdict: Verdict,
    },
    /// A [`Effect::Wake`] is due.
    Wake(Timer),
    /// The database holds pending rows of this endpoint (the supervisor's
    /// poll): read them, if there is nothing else to do.
    Nudge,
    /// The periodic idle check.
    Tick,
}

/// What a load of the config and its pending rows found.
#[derive(Debug)]
pub(crate) enum Loaded {
    Found(Box<EndpointConfig>, PendingRead),
    /// No such config (its pending rows were failed).
    Gone,
    Failed,
}

/// Why the machine asked to be woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The soonest waiting retry is due (the number tells a timer since
    /// replaced by an earlier one).
    Retry(u64),
    /// The rate limit lets the next delivery go.
    Throttle,
    /// A gap in the FIFO line has waited long enough.
    Gap,
    /// Look again whether the node's budget has room.
    Room,
    /// A failed read: try again.
    Pump,
    /// A failed load: try again.
    Reload,
}

/// What the shell runs for the machine.
#[derive(Debug)]
pub(crate) enum Effect {
    /// Read the config and its pending rows (first failing the pending
    /// rows it no longer takes, except `attempting`'s); answer with
    /// [`Input::Loaded`] carrying `reload`.
    Load { reload: u64, attempting: Vec<i64> },
    /// Read the soonest pending rows the config takes; answer with
    /// [`Input::Read`].
    Read { config: Option<Arc<EndpointConfig>> },
    /// Send an attempt; answer with [`Input::Answered`], then
    /// [`Input::Settled`].
    Launch {
        delivery: PendingDelivery,
        config: Arc<EndpointConfig>,
    },
    /// Fail these pending rows: the config no longer takes them.
    Fail(Vec<i64>),
    /// Feed [`Input::Wake`] back after this long.
    Wake { after: Duration, timer: Timer },
    /// The config is gone: stop.
    Gone,
    /// Idle long enough to stop (the supervisor decides).
    Idle { received: u64 },
}

pub(crate) struct EndpointState {
    limits: Limits,
    /// `None` until loaded.
    config: Option<Arc<EndpointConfig>>,
    queue: DeliveryQueue,
    /// A FIFO endpoint's deliveries with a place, in place order.
    line: FifoLine,
    attempts: Attempts,
    retries: RetryHeap,
    /// The retry timer armed (its due time and number), if any.
    retry_timer: Option<(Instant, u64)>,
    retry_timers: u64,
    /// The config's `rate_limit` and the receiver's push-back.
    throttle: Throttle,
    /// A wake-up is due when the throttle allows the next delivery.
    throttled: bool,
    /// A wake-up is due when a gap in the FIFO line has waited long enough.
    gap_timer: bool,
    /// A backlog waits for room in the node's budget (a wake-up is due).
    waiting_for_room: bool,
    /// `Deliver` batches received; the supervisor compares it with what it
    /// sent before letting the actor stop.
    received: u64,
    idle_since: Instant,
    /// Loads started; the newest is the one whose answer counts.
    reloads: u64,
    /// Some of this endpoint's pending deliveries are in the database only
    /// (more than `max_queued`, or no room in the node's budget): when the
    /// queue runs low, it reads more.
    spilled: bool,
    refilling: bool,
    /// When a nudge last made it read its pending rows.
    last_nudged: Option<Instant>,
}

impl EndpointState {
    pub fn new(limits: Limits, now: Instant) -> Self {
        Self {
            limits,
            config: None,
            queue: DeliveryQueue::default(),
            line: FifoLine::default(),
            attempts: Attempts::default(),
            retries: RetryHeap::default(),
            retry_timer: None,
            retry_timers: 0,
            throttle: Throttle::new(None, now),
            throttled: false,
            gap_timer: false,
            waiting_for_room: false,
            received: 0,
            idle_since: now,
            reloads: 0,
            spilled: false,
            refilling: false,
            last_nudged: None,
        }
    }

    /// How many deliveries it holds (each has room in the node's budget).
    pub fn held(&self) -> usize {
        self.queue.held()
    }

    /// Takes one input; returns what to do.
    pub fn on(&mut self, input: Input, at: Moment, world: &dyn Surroundings) -> Vec<Effect> {
        let mut out = Vec::new();
        let step = &mut Step {
            at,
            world,
            out: &mut out,
        };
        match input {
            Input::Deliver { deliveries, again } => {
                self.received += 1;
                if again {
                    for delivery in &deliveries {
                        self.queue.send_again(delivery.id);
                    }
                }
                self.hold(deliveries, step);
                self.pump(step);
            }
            Input::Reload => self.reload(step),
            Input::Loaded { reload, outcome } => self.loaded(reload, outcome, step),
            Input::Read(read) => {
                self.refilling = false;
                match read {
                    Some(read) => {
                        self.take_read(read, step);
                        self.pump(step);
                    }
                    None => {
                        self.spilled = true;
                        step.wake(self.limits.retry_pause, Timer::Pump);
                    }
                }
            }
            Input::Answered {
                status,
                retry_after,
            } => {
                // The slot is free while the attempt is recorded.
                let under_way = self.attempts.answered();
                match status {
                    Some(429 | 503) => {
                        self.throttle
                            .pushed_back(retry_after, under_way, at.instant)
                    }
                    Some(200..=299) => self.throttle.accepted(self.limits.max_in_flight),
                    _ => {}
                }
                self.pump(step);
            }
            Input::Settled { delivery, verdict } => {
                self.settled(delivery, verdict, step);
                self.pump(step);
            }
            Input::Wake(timer) => self.wake(timer, step),
            Input::Nudge => {
                let nothing_to_do =
                    self.queue.ready_is_empty() && self.line.is_empty() && self.retries.is_empty();
                let recently = self
                    .last_nudged
                    .is_some_and(|last| at.instant.saturating_duration_since(last) < NUDGE_EVERY);
                if nothing_to_do && !recently && !self.refilling && self.config.is_some() {
                    self.last_nudged = Some(at.instant);
                    self.refill(step);
                }
            }
            Input::Tick => {
                let idle_for = at.instant.saturating_duration_since(self.idle_since);
                if self.is_idle() && idle_for >= self.limits.idle_timeout {
                    step.out.push(Effect::Idle {
                        received: self.received,
                    });
                }
            }
        }
        out
    }

    fn wake(&mut self, timer: Timer, step: &mut Step) {
        match timer {
            Timer::Retry(number) => {
                if self.retry_timer.map(|(_, armed)| armed) != Some(number) {
                    return; // replaced by an earlier one
                }
                self.retry_timer = None;
                for due in self.retries.pop_due(step.at.instant) {
                    self.queue.push_back(due);
                }
                self.arm_retry_timer(step);
            }
            Timer::Throttle => self.throttled = false,
            Timer::Gap => self.gap_timer = false,
            Timer::Room => self.waiting_for_room = false,
            Timer::Pump => {}
            Timer::Reload => return self.reload(step),
        }
        self.pump(step);
    }

    /// Takes on deliveries, up to the cap; the ones over it stay in the
    /// database for a later read. Returns those with a FIFO place it had
    /// no room for.
    fn hold(&mut self, deliveries: Vec<PendingDelivery>, step: &mut Step) -> Vec<PendingDelivery> {
        let cap = self.limits.max_queued;
        let mut not_taken = Vec::new();
        for delivery in deliveries {
            if step.world.being_recorded(delivery.id) {
                continue;
            }
            let world = step.world;
            match self.queue.admit(delivery.id, cap, || world.take_room()) {
                Admission::Known => {}
                Admission::NoRoom => {
                    self.spilled = true;
                    if delivery.fifo_seq.is_some() {
                        not_taken.push(delivery);
                    }
                }
                Admission::Held => self.place(delivery),
            }
        }
        not_taken
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
        delivery.fifo_seq.is_some() && self.is_fifo()
    }

    fn is_fifo(&self) -> bool {
        self.config.as_ref().is_some_and(|c| c.is_fifo())
    }

    /// After the config was (re)loaded: deliveries that arrived before it
    /// (or under another ordering) move to where its ordering puts them.
    /// A FIFO delivery waiting for its retry in the ready queue stays.
    fn arrange(&mut self) {
        if self.is_fifo() {
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
    ///
    /// A FIFO read holds the earliest pending places, and the line must
    /// hold them to move on: later places it took from hand-overs give way
    /// to them (they stay in the database, read again in their turn), or a
    /// line full of later places would wait forever for an earlier one it
    /// has no room for (the property tests found both cases: the
    /// endpoint's cap, and the node's budget).
    fn take_read(&mut self, read: PendingRead, step: &mut Step) {
        let complete = read.deliveries.len() < self.limits.max_queued;
        self.spilled |= !complete;
        let places: Vec<i64> = read.deliveries.iter().filter_map(|d| d.fifo_seq).collect();
        let fifo = self.is_fifo();
        if fifo && !complete {
            if let Some(last_read) = places.iter().max() {
                self.give_way_from(last_read + 1, step);
            }
        }
        let mut not_taken = self.hold(read.deliveries, step);
        if fifo {
            if let Some(lowest) = not_taken.iter().filter_map(|d| d.fifo_seq).min() {
                // Everything from the first place without room is taken
                // again, earliest first.
                let released = self.give_way_from(lowest, step);
                if !released.is_empty() {
                    not_taken.extend(released);
                    not_taken.sort_by_key(|d| d.fifo_seq);
                    not_taken = self.hold(not_taken, step);
                }
            }
        }
        let lowest_not_taken = not_taken.iter().filter_map(|d| d.fifo_seq).min();
        if let Some(last_place) = read.last_fifo_place {
            self.line.vouch(fifo::vouched_by_read(
                last_place,
                &places,
                complete,
                lowest_not_taken,
            ));
        }
    }

    /// The line's waiting deliveries from `place` on are no longer held
    /// (they stay in the database); returns them.
    fn give_way_from(&mut self, place: i64, step: &mut Step) -> Vec<PendingDelivery> {
        let released = self.line.give_up_from(place);
        for delivery in &released {
            self.forget(delivery.id, step);
        }
        self.spilled |= !released.is_empty();
        released
    }

    /// Reads the soonest pending deliveries again (those held already are
    /// skipped by `hold`): the queue ran low while some were left in the
    /// database, or the FIFO line has a gap. Every one committed before
    /// the read starts is seen by it, and a hand-over turned away after
    /// that sets `spilled` again.
    fn refill(&mut self, step: &mut Step) {
        self.refilling = true;
        self.spilled = false;
        step.out.push(Effect::Read {
            config: self.config.clone(),
        });
    }

    /// (Re)reads the config and the pending rows. Nothing is sent until it
    /// is read: a delivery that arrives meanwhile (say, the next publish
    /// after a URL change) must go out with the new config.
    ///
    /// Loads may overlap (a config changed twice in a row) and finish in
    /// any order: only the newest one's answer is used, or a read made
    /// before the second change could win with the old URL.
    fn reload(&mut self, step: &mut Step) {
        self.config = None;
        self.reloads += 1;
        // This read sees everything committed so far (see `refill`).
        self.spilled = false;
        // Nothing is launched until it is read, so this is every attempt
        // under way while it reads.
        step.out.push(Effect::Load {
            reload: self.reloads,
            attempting: self.attempts.delivery_ids(),
        });
    }

    fn loaded(&mut self, reload: u64, outcome: Loaded, step: &mut Step) {
        if reload != self.reloads {
            return;
        }
        match outcome {
            Loaded::Found(config, pending) => {
                self.throttle.set_rate(config.rate_limit);
                self.config = Some(Arc::from(config));
                self.arrange();
                self.drop_waiting_retries_not_accepted(step);
                self.take_read(pending, step);
                self.pump(step);
            }
            Loaded::Gone => step.out.push(Effect::Gone),
            Loaded::Failed => step.wake(self.limits.retry_pause, Timer::Reload),
        }
    }

    fn settled(&mut self, delivery: PendingDelivery, verdict: Verdict, step: &mut Step) {
        self.attempts.settled(delivery.id);
        let switched_off = self
            .config
            .as_ref()
            .is_some_and(|config| !config.accepts(delivery.kind));
        match verdict {
            Verdict::RetryIn(_) if switched_off => {
                self.finish(delivery.id, step);
                step.out.push(Effect::Fail(vec![delivery.id]));
            }
            Verdict::RetryIn(wait) => {
                let mut retry = delivery;
                retry.attempts += 1;
                retry.next_attempt_at = 0;
                self.retries.push(retry, step.at.instant + wait);
                self.arm_retry_timer(step);
            }
            Verdict::Done => self.finish(delivery.id, step),
            Verdict::EndpointOff => {
                self.finish(delivery.id, step);
                self.reload(step);
            }
        }
    }

    /// Starts as many due deliveries as the in-flight limit allows.
    fn pump(&mut self, step: &mut Step) {
        let Some(config) = self.config.clone() else {
            return;
        };
        // Not this node's endpoint (any more): nothing more goes out from
        // here; the supervisor stops this actor, and the owner sends.
        if !step.world.owns() {
            return;
        }
        let now = step.at;
        if self.throttle.is_limited() {
            // Rate limits hold cluster-wide: a lease that changed hands
            // lately gives the previous holder's last second to it.
            if let Some(since) = step.world.held_since() {
                self.throttle.not_before(since + RATE_WINDOW);
            }
        }
        let limit = self.limits.max_in_flight;
        // A receiver that refused (429/503) gets fewer at once for a while.
        let request_limit = self.throttle.in_flight_limit(limit);
        // Attempts still being recorded count too, up to
        // `RECORDED_PER_REQUEST` times the limit.
        while self
            .attempts
            .may_start(request_limit, RECORDED_PER_REQUEST * limit)
        {
            let Some(delivery) = self.next_delivery(step) else {
                break;
            };
            if !config.accepts(delivery.kind) {
                self.forget(delivery.id, step);
                continue;
            }
            if delivery.next_attempt_at > now.micros {
                let wait = Duration::from_micros((delivery.next_attempt_at - now.micros) as u64);
                self.retries.push(delivery, now.instant + wait);
                self.arm_retry_timer(step);
                continue;
            }
            if let Err(wait) = self.throttle.try_take(now.instant) {
                // Over the rate limit: it waits, first in its queue.
                if self.line.is_current(delivery.id) {
                    self.line.put_back(delivery);
                } else {
                    self.queue.push_front(delivery);
                }
                if !self.throttled {
                    self.throttled = true;
                    step.wake(wait, Timer::Throttle);
                }
                break;
            }
            self.attempts.start(delivery.id);
            step.out.push(Effect::Launch {
                delivery,
                config: config.clone(),
            });
        }
        let low_water = self.limits.max_queued / 2;
        if self.spilled && !self.refilling && self.queue.held() <= low_water {
            if step.world.has_room() {
                self.refill(step);
            } else if !self.waiting_for_room {
                // The node is full: look again later, not in a loop.
                self.waiting_for_room = true;
                step.wake(self.limits.retry_pause, Timer::Room);
            }
        }
        if self.is_idle() {
            self.idle_since = now.instant;
        }
    }

    /// The next delivery to start: the ready queue's first (fresh
    /// deliveries of a non-FIFO endpoint, tests, due retries), else the
    /// FIFO line's, when its turn has come.
    fn next_delivery(&mut self, step: &mut Step) -> Option<PendingDelivery> {
        if let Some(delivery) = self.queue.pop_front() {
            return Some(delivery);
        }
        match self.line.next(step.at.instant) {
            Next::Send(delivery) => Some(*delivery),
            Next::Wait => {
                if let Some(deadline) = self.line.gap_deadline() {
                    if !self.gap_timer {
                        self.gap_timer = true;
                        step.wake(
                            deadline.saturating_duration_since(step.at.instant),
                            Timer::Gap,
                        );
                    }
                }
                None
            }
            Next::Read => {
                if !self.refilling {
                    self.refill(step);
                }
                None
            }
        }
    }

    /// Asks to be woken for the soonest waiting retry, unless a wake-up is
    /// armed for that time or earlier.
    fn arm_retry_timer(&mut self, step: &mut Step) {
        let Some(due) = self.retries.soonest() else {
            return;
        };
        if self.retry_timer.is_some_and(|(armed, _)| armed <= due) {
            return;
        }
        self.retry_timers += 1;
        self.retry_timer = Some((due, self.retry_timers));
        step.wake(
            due.saturating_duration_since(step.at.instant),
            Timer::Retry(self.retry_timers),
        );
    }

    /// After a reload: retries the config no longer accepts end here. An
    /// attempt that settled while the reload read was spared by the load's
    /// failing of pending rows, so it is failed now (the others are).
    fn drop_waiting_retries_not_accepted(&mut self, step: &mut Step) {
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
            self.finish(*id, step);
        }
        step.out.push(Effect::Fail(ids));
    }

    /// Done with it: a late hand-over of it is ignored, and the FIFO line
    /// moves on.
    fn finish(&mut self, delivery_id: i64, step: &mut Step) {
        if self.queue.finish(delivery_id) {
            step.world.give_room(1);
        }
        self.line.done(delivery_id);
    }

    /// No longer held (its room in the node's budget goes back).
    fn forget(&mut self, delivery_id: i64, step: &mut Step) {
        if self.queue.forget(delivery_id) {
            step.world.give_room(1);
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

/// One input's context: when, the node around, and the effects so far.
struct Step<'a> {
    at: Moment,
    world: &'a dyn Surroundings,
    out: &'a mut Vec<Effect>,
}

impl Step<'_> {
    fn wake(&mut self, after: Duration, timer: Timer) {
        self.out.push(Effect::Wake { after, timer });
    }
}

#[cfg(test)]
mod tests;
