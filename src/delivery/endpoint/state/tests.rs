//! The endpoint machine driven through random histories: publishes whose
//! hand-overs arrive late, out of order or never; reads and loads that
//! answer late or fail; receivers that accept, refuse (429 with or without
//! `Retry-After`), fail or time out; retries; reloads, switch-offs and
//! nudges; a small node budget; time passing. A simulated database keeps
//! the pending rows as the real one would (a publish takes the next FIFO
//! place, a recorded attempt updates or ends its row, a switched-off config
//! fails its rows), and every step is checked against the machine's
//! invariants (see the module docs of [`super`]). Each history then drains
//! — the receiver accepts everything, the supervisor's poll nudges — and
//! nothing may be left pending.
use super::*;
use crate::delivery::wire::{event_data, EventRecord};
use aggregates::values::{ConfigId, CustomHeaders, DeliveryOrdering, WebhookSecret};
use aggregates::webhook_config::{ConfigState, Profile};
use projections::deliveries::DeliveryKind;
use proptest::prelude::*;
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};

const CONFIG: ConfigId = ConfigId::new(7);
/// The database's clock at the simulation's start (µs).
const EPOCH_MICROS: i64 = 1_700_000_000_000_000;

/// The node's budget, shared by this endpoint alone.
struct FakeNode {
    held: Cell<usize>,
    budget: usize,
}

impl Surroundings for FakeNode {
    fn owns(&self) -> bool {
        true
    }
    fn held_since(&self) -> Option<Instant> {
        None
    }
    fn being_recorded(&self, _: i64) -> bool {
        false
    }
    fn take_room(&self) -> bool {
        let held = self.held.get();
        (held < self.budget)
            .then(|| self.held.set(held + 1))
            .is_some()
    }
    fn give_room(&self, count: usize) {
        let held = self.held.get();
        assert!(count <= held, "gave back {count} with {held} taken");
        self.held.set(held - count);
    }
    fn has_room(&self) -> bool {
        self.held.get() < self.budget
    }
}

#[derive(Debug, Clone)]
struct Setup {
    fifo: bool,
    rate: Option<u32>,
    max_in_flight: usize,
    max_queued: usize,
    budget: usize,
}

#[derive(Debug, Clone)]
enum Answer {
    Accepted,
    Failed,
    Refused { retry_after_ms: Option<u64> },
    TimedOut,
}

#[derive(Debug, Clone)]
enum Op {
    /// Commits `count` deliveries; their hand-over is queued, or lost.
    Publish {
        count: usize,
        lost: bool,
    },
    /// One queued hand-over (picked by index) arrives.
    HandOver(usize),
    ResolveLoad {
        pick: usize,
        fail: bool,
    },
    ResolveRead {
        pick: usize,
        fail: bool,
    },
    Answer {
        pick: usize,
        answer: Answer,
    },
    /// A recorded attempt settles: done, or retried after this wait (ms).
    Settle {
        pick: usize,
        retry_ms: Option<u64>,
    },
    Advance(u64),
    Reload,
    SwitchOff,
    SwitchOn,
    Nudge,
    Tick,
}

fn setups() -> impl Strategy<Value = Setup> {
    (
        any::<bool>(),
        prop_oneof![Just(None), (1u32..20).prop_map(Some)],
        1usize..5,
        2usize..9,
        2usize..12,
    )
        .prop_map(|(fifo, rate, max_in_flight, max_queued, budget)| Setup {
            fifo,
            rate,
            max_in_flight,
            max_queued,
            budget,
        })
}

fn answers() -> impl Strategy<Value = Answer> {
    prop_oneof![
        4 => Just(Answer::Accepted),
        1 => Just(Answer::Failed),
        1 => prop_oneof![Just(None), (1u64..1500).prop_map(Some)]
            .prop_map(|retry_after_ms| Answer::Refused { retry_after_ms }),
        1 => Just(Answer::TimedOut),
    ]
}

fn ops() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..6, proptest::bool::weighted(0.15))
            .prop_map(|(count, lost)| Op::Publish { count, lost }),
        5 => any::<usize>().prop_map(Op::HandOver),
        3 => (any::<usize>(), proptest::bool::weighted(0.1))
            .prop_map(|(pick, fail)| Op::ResolveLoad { pick, fail }),
        4 => (any::<usize>(), proptest::bool::weighted(0.1))
            .prop_map(|(pick, fail)| Op::ResolveRead { pick, fail }),
        8 => (any::<usize>(), answers()).prop_map(|(pick, answer)| Op::Answer { pick, answer }),
        8 => (any::<usize>(), prop_oneof![Just(None), (0u64..2000).prop_map(Some)])
            .prop_map(|(pick, retry_ms)| Op::Settle { pick, retry_ms }),
        6 => (0u64..1200).prop_map(Op::Advance),
        1 => Just(Op::Reload),
        1 => Just(Op::SwitchOff),
        1 => Just(Op::SwitchOn),
        1 => Just(Op::Nudge),
        1 => Just(Op::Tick),
    ]
}

/// The machine, the world around it, and what was seen.
struct Sim {
    setup: Setup,
    state: EndpointState,
    node: FakeNode,
    start: Instant,
    /// Time since the start.
    now: Duration,
    switched_off: bool,
    /// The database's pending rows, by id.
    pending: BTreeMap<i64, PendingDelivery>,
    /// Rows a load of the switched-off config failed.
    failed_by_switch_off: BTreeMap<i64, PendingDelivery>,
    next_id: i64,
    last_place: i64,
    /// Hand-overs not yet arrived.
    mail: Vec<Vec<PendingDelivery>>,
    loads: Vec<(u64, Vec<i64>)>,
    reads: Vec<Option<Arc<EndpointConfig>>>,
    /// Requests out (launched, not answered), and attempts being recorded
    /// with their answer.
    requests: Vec<PendingDelivery>,
    recording: Vec<(PendingDelivery, Answer)>,
    timers: Vec<(Duration, Timer)>,
    /// Ids with an attempt under way (sent or being recorded).
    attempting: HashSet<i64>,
    /// When a retried delivery is due.
    due: HashMap<i64, Duration>,
    last_launch: Option<Duration>,
    launches: usize,
}

impl Sim {
    fn new(setup: Setup) -> Self {
        let limits = Limits {
            max_in_flight: setup.max_in_flight,
            max_queued: setup.max_queued,
            retry_pause: Duration::from_millis(500),
            idle_timeout: Duration::from_secs(5),
        };
        let start = Instant::now();
        Self {
            node: FakeNode {
                held: Cell::new(0),
                budget: setup.budget,
            },
            state: EndpointState::new(limits, start),
            setup,
            start,
            now: Duration::ZERO,
            switched_off: false,
            pending: BTreeMap::new(),
            failed_by_switch_off: BTreeMap::new(),
            next_id: 1,
            last_place: 0,
            mail: Vec::new(),
            loads: Vec::new(),
            reads: Vec::new(),
            requests: Vec::new(),
            recording: Vec::new(),
            timers: Vec::new(),
            attempting: HashSet::new(),
            due: HashMap::new(),
            last_launch: None,
            launches: 0,
        }
    }

    /// The machine started, its first load answered.
    fn start_loaded(&mut self) {
        self.feed(Input::Reload);
        let (reload, attempting) = self.loads.remove(0);
        let outcome = self.load(attempting, false);
        self.feed(Input::Loaded { reload, outcome });
    }

    fn micros(&self) -> i64 {
        EPOCH_MICROS + self.now.as_micros() as i64
    }

    fn config(&self) -> EndpointConfig {
        EndpointConfig {
            id: CONFIG,
            organisation: 1,
            profile: Profile::V1,
            url: "http://receiver.test/hook".into(),
            parsed_url: url::Url::parse("http://receiver.test/hook"),
            headers: CustomHeaders::default(),
            secret: WebhookSecret::from_key_bytes(&[7; 32]),
            previous_secrets: Vec::new(),
            retry_count: 5,
            timeout: Duration::from_secs(5),
            rate_limit: self.setup.rate,
            ordering: if self.setup.fifo {
                DeliveryOrdering::Fifo
            } else {
                DeliveryOrdering::default()
            },
            state: if self.switched_off {
                ConfigState::Deactivated
            } else {
                ConfigState::Valid
            },
            deleted: false,
        }
    }

    fn feed(&mut self, input: Input) {
        let at = Moment {
            instant: self.start + self.now,
            micros: self.micros(),
        };
        let effects = self.state.on(input, at, &self.node);
        for effect in effects {
            self.run(effect);
        }
        self.check();
    }

    fn run(&mut self, effect: Effect) {
        match effect {
            Effect::Load { reload, attempting } => self.loads.push((reload, attempting)),
            Effect::Read { config } => self.reads.push(config),
            Effect::Launch { delivery, config } => self.launched(delivery, &config),
            Effect::Fail(ids) => {
                for id in ids {
                    self.pending.remove(&id);
                }
            }
            Effect::Wake { after, timer } => self.timers.push((self.now + after, timer)),
            Effect::Gone => panic!("the config never goes away here"),
            Effect::Idle { .. } => {}
        }
    }

    /// Checks a launch against the invariants.
    fn launched(&mut self, delivery: PendingDelivery, config: &EndpointConfig) {
        let id = delivery.id;
        assert!(!self.switched_off, "{id} sent to a switched-off endpoint");
        assert!(config.accepts(delivery.kind));
        if let Some(row) = self.failed_by_switch_off.remove(&id) {
            // A race the machine does not close (nor could without a read
            // per attempt): a switch-off's load failed the row while its
            // hand-over was on the way, and a switch-on came before the
            // machine heard of the switch-off. It is sent once, and its
            // record makes the row what the attempt says.
            self.pending.insert(id, row);
        }
        assert!(
            self.pending.contains_key(&id),
            "{id} sent but not pending (done, or failed)"
        );
        assert!(
            self.attempting.insert(id),
            "{id} sent while an attempt of it is under way"
        );
        assert!(
            self.requests.len() < self.setup.max_in_flight,
            "more than {} requests under way",
            self.setup.max_in_flight
        );
        assert!(
            self.attempting.len() <= RECORDED_PER_REQUEST * self.setup.max_in_flight,
            "{} attempts under way (sent or being recorded), over {RECORDED_PER_REQUEST} per request slot",
            self.attempting.len()
        );
        if let Some(due) = self.due.get(&id) {
            assert!(
                self.now >= *due,
                "{id} retried at {:?}, due {due:?}",
                self.now
            );
        }
        let stored = &self.pending[&id];
        assert!(
            stored.next_attempt_at <= self.micros(),
            "{id} sent before its row's due time"
        );
        if let Some(place) = stored.fifo_seq.filter(|_| self.setup.fifo) {
            let earlier = self
                .pending
                .values()
                .filter_map(|d| d.fifo_seq)
                .find(|p| *p < place);
            assert!(
                earlier.is_none(),
                "place {place} sent while place {earlier:?} is pending"
            );
            let others = self
                .attempting
                .iter()
                .filter(|other| **other != id && self.pending[other].fifo_seq.is_some())
                .count();
            assert_eq!(others, 0, "two FIFO deliveries under way at once");
        }
        if let (Some(rate), Some(last)) = (self.setup.rate, self.last_launch) {
            // The throttle's own spacing: the room it leaves is its choice.
            let spacing = crate::delivery::endpoint::throttle::spacing_of(rate);
            assert!(
                self.now - last >= spacing,
                "launches {:?} apart under a rate of {rate}/s",
                self.now - last
            );
        }
        self.last_launch = Some(self.now);
        self.launches += 1;
        self.requests.push(delivery);
    }

    /// What holds after every step.
    fn check(&self) {
        let held = self.state.held();
        assert!(held <= self.setup.max_queued, "{held} held over the cap");
        assert_eq!(self.node.held.get(), held, "budget and holdings disagree");
        assert!(held <= self.setup.budget);
    }

    fn publish(&mut self, count: usize, lost: bool) {
        let mut batch = Vec::new();
        for _ in 0..count {
            let id = self.next_id;
            self.next_id += 1;
            self.last_place += 1;
            let delivery = PendingDelivery {
                id,
                config_id: CONFIG,
                kind: DeliveryKind::Event,
                task_id: None,
                attempts: 0,
                next_attempt_at: self.micros(),
                fifo_seq: self.setup.fifo.then_some(self.last_place),
                event: std::sync::Arc::new(EventRecord {
                    id: format!("evt_{id}"),
                    event_type: "a.b".into(),
                    data: event_data("{}".into()),
                    published_at: self.micros(),
                }),
            };
            self.pending.insert(id, delivery.clone());
            batch.push(delivery);
        }
        if !lost {
            self.mail.push(batch);
        }
    }

    /// The pending rows as the store reads them.
    fn read_rows(&self, config: Option<&EndpointConfig>) -> PendingRead {
        let with_events = config.is_some_and(|c| c.accepts(DeliveryKind::Event));
        let fifo = config.is_some_and(|c| c.is_fifo());
        let mut rows: Vec<PendingDelivery> = self
            .pending
            .values()
            .filter(|_| with_events)
            .cloned()
            .collect();
        if fifo {
            rows.sort_by_key(|d| (d.fifo_seq.is_none(), d.fifo_seq, d.id));
        } else {
            rows.sort_by_key(|d| (d.next_attempt_at, d.id));
        }
        rows.truncate(self.setup.max_queued);
        PendingRead {
            deliveries: rows,
            last_fifo_place: (fifo && with_events).then_some(self.last_place),
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Publish { count, lost } => self.publish(count, lost),
            Op::HandOver(pick) => {
                if !self.mail.is_empty() {
                    let deliveries = self.mail.remove(pick % self.mail.len());
                    self.feed(Input::Deliver {
                        deliveries,
                        again: false,
                    });
                }
            }
            Op::ResolveLoad { pick, fail } => {
                if !self.loads.is_empty() {
                    let (reload, attempting) = self.loads.remove(pick % self.loads.len());
                    let outcome = self.load(attempting, fail);
                    self.feed(Input::Loaded { reload, outcome });
                }
            }
            Op::ResolveRead { pick, fail } => {
                if !self.reads.is_empty() {
                    let config = self.reads.remove(pick % self.reads.len());
                    let read = (!fail).then(|| self.read_rows(config.as_deref()));
                    self.feed(Input::Read(read));
                }
            }
            Op::Answer { pick, answer } => {
                if !self.requests.is_empty() {
                    let delivery = self.requests.remove(pick % self.requests.len());
                    let (status, retry_after) = match &answer {
                        Answer::Accepted => (Some(200), None),
                        Answer::Failed => (Some(500), None),
                        Answer::Refused { retry_after_ms } => {
                            (Some(429), retry_after_ms.map(Duration::from_millis))
                        }
                        Answer::TimedOut => (None, None),
                    };
                    self.recording.push((delivery, answer));
                    self.feed(Input::Answered {
                        status,
                        retry_after,
                    });
                }
            }
            Op::Settle { pick, retry_ms } => {
                if !self.recording.is_empty() {
                    let (delivery, answer) = self.recording.remove(pick % self.recording.len());
                    let retry = retry_ms.filter(|_| !matches!(answer, Answer::Accepted));
                    self.settle(delivery, retry.map(Duration::from_millis));
                }
            }
            Op::Advance(ms) => self.advance(Duration::from_millis(ms)),
            Op::Reload => self.feed(Input::Reload),
            Op::SwitchOff => {
                self.switched_off = true;
                self.feed(Input::Reload);
            }
            Op::SwitchOn => {
                self.switched_off = false;
                self.feed(Input::Reload);
            }
            Op::Nudge => self.feed(Input::Nudge),
            Op::Tick => self.feed(Input::Tick),
        }
    }

    /// The load as the shell runs it, against the config as it is now.
    fn load(&mut self, attempting: Vec<i64>, fail: bool) -> Loaded {
        if fail {
            return Loaded::Failed;
        }
        let config = self.config();
        if !config.accepts(DeliveryKind::Event) {
            let failed: Vec<i64> = (self.pending.keys())
                .filter(|id| !attempting.contains(id))
                .copied()
                .collect();
            for id in failed {
                let row = self.pending.remove(&id).expect("pending");
                self.failed_by_switch_off.insert(id, row);
            }
        }
        let read = self.read_rows(Some(&config));
        Loaded::Found(Box::new(config), read)
    }

    /// The attempt is recorded (the row ends, or waits for its retry), then
    /// the machine hears of it.
    fn settle(&mut self, delivery: PendingDelivery, retry: Option<Duration>) {
        let id = delivery.id;
        self.attempting.remove(&id);
        let verdict = match retry {
            Some(wait) => {
                let due = self.now + wait;
                // The record writes the row whatever its status (a late
                // load of the switched-off config may have failed it
                // meanwhile): it is pending again.
                if let Some(row) = self.failed_by_switch_off.remove(&id) {
                    self.pending.insert(id, row);
                }
                let row = self.pending.get_mut(&id).expect("pending while attempted");
                row.attempts += 1;
                row.next_attempt_at = EPOCH_MICROS + due.as_micros() as i64;
                self.due.insert(id, due);
                Verdict::RetryIn(wait)
            }
            None => {
                self.pending.remove(&id);
                self.failed_by_switch_off.remove(&id);
                self.due.remove(&id);
                Verdict::Done
            }
        };
        self.feed(Input::Settled { delivery, verdict });
    }

    /// Time passes; the timers due fire in order.
    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        loop {
            self.timers.sort_by_key(|(at, _)| *at);
            match self.timers.first() {
                Some((at, _)) if *at <= until => {
                    let (at, timer) = self.timers.remove(0);
                    self.now = self.now.max(at);
                    self.feed(Input::Wake(timer));
                }
                _ => break,
            }
        }
        self.now = until;
    }

    /// Everything arrives, every answer is an acceptance, the supervisor's
    /// poll nudges now and then: every pending row must end.
    fn drain(&mut self) {
        if self.switched_off {
            self.switched_off = false;
            self.feed(Input::Reload);
        }
        for _ in 0..20_000 {
            if let Some(deliveries) = self.mail.pop() {
                self.feed(Input::Deliver {
                    deliveries,
                    again: false,
                });
            } else if !self.loads.is_empty() {
                let (reload, attempting) = self.loads.remove(0);
                let outcome = self.load(attempting, false);
                self.feed(Input::Loaded { reload, outcome });
            } else if !self.reads.is_empty() {
                let config = self.reads.remove(0);
                let read = self.read_rows(config.as_deref());
                self.feed(Input::Read(Some(read)));
            } else if !self.requests.is_empty() {
                let delivery = self.requests.remove(0);
                self.recording.push((delivery, Answer::Accepted));
                self.feed(Input::Answered {
                    status: Some(200),
                    retry_after: None,
                });
            } else if !self.recording.is_empty() {
                let (delivery, _) = self.recording.remove(0);
                self.settle(delivery, None);
            } else if !self.timers.is_empty() {
                let soonest = self.timers.iter().map(|(at, _)| *at).min().unwrap();
                self.advance(soonest.saturating_sub(self.now));
            } else if !self.pending.is_empty() {
                // The supervisor's poll finds due rows and nudges.
                self.advance(Duration::from_secs(2));
                self.feed(Input::Nudge);
            } else {
                self.feed(Input::Tick);
                return;
            }
        }
        panic!(
            "not drained: {} pending, {} held, {} launches",
            self.pending.len(),
            self.state.held(),
            self.launches
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Every history keeps the invariants, and drains.
    #[test]
    fn every_history_keeps_the_invariants_and_drains(
        setup in setups(),
        history in proptest::collection::vec(ops(), 1..120),
    ) {
        let mut sim = Sim::new(setup);
        sim.feed(Input::Reload);
        for op in history {
            sim.apply(op);
        }
        sim.drain();
        prop_assert!(sim.pending.is_empty());
        prop_assert_eq!(sim.state.held(), 0);
        prop_assert_eq!(sim.node.held.get(), 0);
    }
}

/// A FIFO backlog over the cap goes out whole, in place order, one at a
/// time (the spill and refill).
#[test]
fn a_fifo_backlog_over_the_cap_goes_out_in_place_order() {
    let mut sim = Sim::new(Setup {
        fifo: true,
        rate: None,
        max_in_flight: 4,
        max_queued: 3,
        budget: 100,
    });
    sim.feed(Input::Reload);
    sim.publish(10, true);
    let mut sent = Vec::new();
    for _ in 0..1000 {
        if !sim.loads.is_empty() {
            let (reload, attempting) = sim.loads.remove(0);
            let outcome = sim.load(attempting, false);
            sim.feed(Input::Loaded { reload, outcome });
        } else if !sim.reads.is_empty() {
            let config = sim.reads.remove(0);
            let read = sim.read_rows(config.as_deref());
            sim.feed(Input::Read(Some(read)));
        } else if let Some(delivery) = sim.requests.pop() {
            assert!(sim.requests.is_empty(), "one at a time");
            sent.push(delivery.fifo_seq.unwrap());
            sim.feed(Input::Answered {
                status: Some(200),
                retry_after: None,
            });
            sim.settle(delivery, None);
        } else {
            break;
        }
    }
    assert_eq!(sent, (1..=10).collect::<Vec<_>>());
    assert!(sim.pending.is_empty());
}

/// While nothing gets recorded (the database is away), every request is
/// answered but its attempt stays under way: an endpoint sends at most
/// `RECORDED_PER_REQUEST` per request slot, then waits — those are what
/// goes out again after the outage, not the whole backlog. Once the
/// records land, the rest goes.
#[test]
fn an_outage_of_the_records_bounds_what_is_sent() {
    let max_in_flight = 2;
    let mut sim = Sim::new(Setup {
        fifo: false,
        rate: None,
        max_in_flight,
        max_queued: 1_000,
        budget: 1_000,
    });
    sim.start_loaded();
    sim.publish(200, false);
    sim.apply(Op::HandOver(0));
    while let Some(delivery) = sim.requests.pop() {
        sim.recording.push((delivery, Answer::Accepted));
        sim.feed(Input::Answered {
            status: Some(200),
            retry_after: None,
        });
    }
    let bound = RECORDED_PER_REQUEST * max_in_flight;
    assert_eq!(sim.launches, bound, "sent while nothing was recorded");
    assert_eq!(sim.recording.len(), bound);
    sim.drain();
    assert!(sim.pending.is_empty());
    assert_eq!(sim.launches, 200, "each sent once");
}

/// A retry waits for its due time, then goes.
#[test]
fn a_retry_goes_at_its_due_time() {
    let mut sim = Sim::new(Setup {
        fifo: false,
        rate: None,
        max_in_flight: 1,
        max_queued: 4,
        budget: 10,
    });
    sim.start_loaded();
    sim.publish(1, false);
    sim.apply(Op::HandOver(0));
    let first = sim.requests.remove(0);
    sim.recording.push((first.clone(), Answer::Failed));
    sim.feed(Input::Answered {
        status: Some(500),
        retry_after: None,
    });
    let (delivery, _) = sim.recording.remove(0);
    sim.settle(delivery, Some(Duration::from_millis(300)));
    sim.advance(Duration::from_millis(299));
    assert!(sim.requests.is_empty(), "retried early");
    sim.advance(Duration::from_millis(1));
    assert_eq!(sim.requests.len(), 1, "not retried when due");
    assert_eq!(sim.requests[0].attempts, 1);
}

/// Under a rate limit a burst goes out spaced, none dropped.
#[test]
fn a_rate_limit_spaces_a_burst() {
    let mut sim = Sim::new(Setup {
        fifo: false,
        rate: Some(4),
        max_in_flight: 8,
        max_queued: 8,
        budget: 8,
    });
    sim.start_loaded();
    sim.publish(4, false);
    sim.apply(Op::HandOver(0));
    assert_eq!(sim.requests.len(), 1, "the first goes at once, alone");
    sim.advance(Duration::from_millis(1000));
    // 1 050 ms / 4 = 262.5 ms apart: three more within the second.
    assert_eq!(sim.requests.len(), 4);
}
