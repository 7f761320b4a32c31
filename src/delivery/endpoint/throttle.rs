//! An endpoint's rate limit (`rate_limit`, deliveries per second) as a
//! token bucket that holds one token: deliveries go out evenly spaced,
//! `1/rate` apart, so that no one-second window sees more than the limit
//! (a bucket a whole second deep would let a backlog through at twice the
//! rate in its first second). Deliveries over the limit wait in the
//! endpoint's queue; none fails for it.
//!
//! A receiver that answers 429 or 503 slows its whole endpoint down, as
//! the Standard Webhooks specification recommends. With a `Retry-After`,
//! nothing more goes to it until that has passed (at most
//! [`MAX_PUSHBACK`]). Without one, the endpoint backs off and recovers the
//! way TCP does: each refusal halves how many requests may be under way at
//! once (down to one), each accepted delivery allows one more again (up
//! to the node's per-endpoint limit). A pause for every refusal would stall
//! a receiver that refuses only some requests (first attempts, say).
use std::time::{Duration, Instant};

/// The longest an endpoint is held back for one `Retry-After`.
pub const MAX_PUSHBACK: Duration = Duration::from_secs(600);

#[derive(Debug)]
pub struct Throttle {
    /// Seconds between two deliveries; `None`: no limit.
    spacing: Option<Duration>,
    /// When the next delivery may go.
    next: Instant,
    /// The receiver asked for a pause (429/503 with `Retry-After`) until then.
    paused_until: Option<Instant>,
    /// How many requests may be under way at once, while backing off;
    /// `None`: as many as the node allows.
    window: Option<usize>,
}

impl Throttle {
    pub fn new(per_second: Option<u32>, now: Instant) -> Self {
        Self {
            spacing: per_second.map(spacing_of),
            next: now,
            paused_until: None,
            window: None,
        }
    }

    /// The receiver answered 429 or 503 while `in_flight` requests (this
    /// one included) were under way. Answers to requests sent before a
    /// pause began do not lengthen it.
    pub fn pushed_back(&mut self, retry_after: Option<Duration>, in_flight: usize, now: Instant) {
        match retry_after {
            Some(asked) => {
                if self.paused_until.is_some_and(|until| now < until) {
                    return;
                }
                self.paused_until = Some(now + asked.min(MAX_PUSHBACK));
            }
            None => {
                let current = self.window.unwrap_or(in_flight.max(1));
                self.window = Some((current / 2).max(1));
            }
        }
    }

    /// The receiver accepted a delivery: one more may be under way, up to
    /// `limit` (then the window is gone).
    pub fn accepted(&mut self, limit: usize) {
        if let Some(window) = self.window {
            self.window = (window + 1 < limit).then_some(window + 1);
        }
    }

    /// How many requests may be under way at once now.
    pub fn in_flight_limit(&self, limit: usize) -> usize {
        self.window.map_or(limit, |window| window.min(limit))
    }

    /// Whether a rate applies.
    pub fn is_limited(&self) -> bool {
        self.spacing.is_some()
    }

    /// Nothing goes before `at` under a rate limit: the endpoint's
    /// previous sender (another node, before a lease changed hands) may
    /// have used the second up to then.
    pub fn not_before(&mut self, at: Instant) {
        if self.spacing.is_some() && self.next < at {
            self.next = at;
        }
    }

    /// The config changed: a new rate applies from the next delivery on.
    pub fn set_rate(&mut self, per_second: Option<u32>) {
        self.spacing = per_second.map(spacing_of);
    }

    /// Takes the right to send one delivery now, or says how long to wait.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        if let Some(until) = self.paused_until {
            if now < until {
                return Err(until - now);
            }
            self.paused_until = None;
        }
        let Some(spacing) = self.spacing else {
            return Ok(());
        };
        if now < self.next {
            return Err(self.next - now);
        }
        // A quiet spell does not save up a burst: the next one goes
        // `spacing` after this one, not after the last.
        self.next = now + spacing;
        Ok(())
    }
}

/// `rate` requests span a little over a second, not exactly one: the
/// receiver counts arrivals, and an arrival late by a few tens of
/// milliseconds (scheduling on a busy machine, the network) would
/// otherwise put `rate + 1` of them into one second of its clock. The
/// fault harness's checker saw exactly that: with 25 ms of room, once in
/// a full test run on the 2-core CI machine; with 50 ms, once again (the
/// frozen-in-a-transaction scenario, 2026-12-06, on the slowest VM yet);
/// the room is now 100 ms (a limited endpoint gets at most ~91 % of its
/// limit when it is saturated).
pub(super) fn spacing_of(per_second: u32) -> Duration {
    (Duration::from_secs(1) + ARRIVAL_JITTER_ROOM) / per_second.max(1)
}

const ARRIVAL_JITTER_ROOM: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_limit_never_waits() {
        let now = Instant::now();
        let mut throttle = Throttle::new(None, now);
        for _ in 0..10_000 {
            assert!(throttle.try_take(now).is_ok());
        }
    }

    /// Over any one-second window, at most `rate` (+1 for the window's
    /// edge) go out however much is waiting.
    #[test]
    fn a_backlog_goes_out_evenly_at_the_rate() {
        let start = Instant::now();
        let mut throttle = Throttle::new(Some(50), start);
        let mut now = start;
        let mut sent = Vec::new();
        while sent.len() < 200 {
            match throttle.try_take(now) {
                Ok(()) => sent.push(now),
                Err(wait) => now += wait,
            }
        }
        for (i, at) in sent.iter().enumerate() {
            let in_window = sent[i..]
                .iter()
                .take_while(|t| **t < *at + Duration::from_secs(1))
                .count();
            assert!(in_window <= 50, "{in_window} in a second");
        }
        let took = *sent.last().unwrap() - start;
        assert!(took >= Duration::from_millis(3_980), "{took:?}");
    }

    #[test]
    fn a_new_holder_waits_out_the_second_of_the_previous_one() {
        let start = Instant::now();
        let mut limited = Throttle::new(Some(10), start);
        limited.not_before(start + Duration::from_secs(1));
        assert_eq!(limited.try_take(start), Err(Duration::from_secs(1)));
        let mut free = Throttle::new(None, start);
        free.not_before(start + Duration::from_secs(1));
        assert_eq!(free.try_take(start), Ok(()));
    }

    #[test]
    fn a_quiet_spell_saves_up_no_burst() {
        let start = Instant::now();
        let mut throttle = Throttle::new(Some(10), start);
        assert!(throttle.try_take(start).is_ok());
        let later = start + Duration::from_secs(60);
        assert!(throttle.try_take(later).is_ok());
        assert_eq!(
            throttle.try_take(later),
            Err(Duration::from_micros(110_000))
        );
    }

    #[test]
    fn a_refusal_pauses_for_its_retry_after() {
        let start = Instant::now();
        let mut throttle = Throttle::new(None, start);
        throttle.pushed_back(Some(Duration::from_secs(2)), 1, start);
        assert_eq!(throttle.try_take(start), Err(Duration::from_secs(2)));
        // Refusals of requests already under way do not lengthen it.
        throttle.pushed_back(
            Some(Duration::from_secs(30)),
            1,
            start + Duration::from_secs(1),
        );
        assert!(throttle.try_take(start + Duration::from_secs(2)).is_ok());
        throttle.pushed_back(Some(Duration::from_secs(86_400)), 1, start);
        assert_eq!(throttle.try_take(start), Err(MAX_PUSHBACK));
    }

    #[test]
    fn refusals_without_retry_after_halve_the_window_and_successes_widen_it() {
        let now = Instant::now();
        let mut throttle = Throttle::new(None, now);
        assert_eq!(throttle.in_flight_limit(32), 32);
        throttle.pushed_back(None, 32, now);
        assert_eq!(throttle.in_flight_limit(32), 16);
        for _ in 0..10 {
            throttle.pushed_back(None, 16, now);
        }
        assert_eq!(throttle.in_flight_limit(32), 1, "never below one");
        assert!(
            throttle.try_take(now).is_ok(),
            "no pause without Retry-After"
        );
        for _ in 0..30 {
            throttle.accepted(32);
        }
        assert_eq!(throttle.in_flight_limit(32), 31);
        throttle.accepted(32);
        assert_eq!(throttle.in_flight_limit(32), 32);
        assert!(throttle.window.is_none(), "recovered");
    }

    #[test]
    fn a_new_rate_applies_from_the_next_delivery() {
        let start = Instant::now();
        let mut throttle = Throttle::new(Some(1), start);
        assert!(throttle.try_take(start).is_ok());
        throttle.set_rate(None);
        assert!(throttle.try_take(start).is_ok());
    }
}
