//! An endpoint's rate limit (`rate_limit`, deliveries per second) as a
//! token bucket that holds one token: deliveries go out evenly spaced,
//! `1/rate` apart, so that no one-second window sees more than the limit
//! (a bucket a whole second deep would let a backlog through at twice the
//! rate in its first second). Deliveries over the limit wait in the
//! endpoint's queue; none fails for it.
//!
//! A receiver that answers 429 or 503 slows its whole endpoint down, as
//! the Standard Webhooks specification recommends: nothing more goes to
//! it until its `Retry-After` has passed, or without one for a back-off
//! that doubles (1 s, 2 s, … [`MAX_PUSHBACK`]) while it keeps refusing and
//! starts again at 1 s once it accepts a delivery.
use std::time::{Duration, Instant};

/// The longest an endpoint is held back for one refusal.
pub const MAX_PUSHBACK: Duration = Duration::from_secs(600);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Throttle {
    /// Seconds between two deliveries; `None`: no limit.
    spacing: Option<Duration>,
    /// When the next delivery may go.
    next: Instant,
    /// The receiver asked for a pause (429/503) until then.
    paused_until: Option<Instant>,
    /// The next pause without `Retry-After`.
    backoff: Duration,
}

impl Throttle {
    pub fn new(per_second: Option<u32>, now: Instant) -> Self {
        Self {
            spacing: per_second.map(spacing_of),
            next: now,
            paused_until: None,
            backoff: FIRST_BACKOFF,
        }
    }

    /// The receiver answered 429 or 503. Answers to requests sent before
    /// the pause began do not lengthen it: 32 refusals in flight at once
    /// are one refusal.
    pub fn pushed_back(&mut self, retry_after: Option<Duration>, now: Instant) {
        if self.paused_until.is_some_and(|until| now < until) {
            return;
        }
        let pause = match retry_after {
            Some(asked) => asked.min(MAX_PUSHBACK),
            None => {
                let pause = self.backoff;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                pause
            }
        };
        self.paused_until = Some(now + pause);
    }

    /// The receiver accepted a delivery: the back-off starts over.
    pub fn accepted(&mut self) {
        self.backoff = FIRST_BACKOFF;
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

fn spacing_of(per_second: u32) -> Duration {
    Duration::from_secs(1) / per_second.max(1)
}

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
    fn a_quiet_spell_saves_up_no_burst() {
        let start = Instant::now();
        let mut throttle = Throttle::new(Some(10), start);
        assert!(throttle.try_take(start).is_ok());
        let later = start + Duration::from_secs(60);
        assert!(throttle.try_take(later).is_ok());
        assert_eq!(throttle.try_take(later), Err(Duration::from_millis(100)));
    }

    #[test]
    fn a_refusal_pauses_for_its_retry_after() {
        let start = Instant::now();
        let mut throttle = Throttle::new(None, start);
        throttle.pushed_back(Some(Duration::from_secs(2)), start);
        assert_eq!(throttle.try_take(start), Err(Duration::from_secs(2)));
        // Refusals of requests already under way do not lengthen it.
        throttle.pushed_back(
            Some(Duration::from_secs(30)),
            start + Duration::from_secs(1),
        );
        assert!(throttle.try_take(start + Duration::from_secs(2)).is_ok());
        throttle.pushed_back(Some(Duration::from_secs(86_400)), start);
        assert_eq!(throttle.try_take(start), Err(MAX_PUSHBACK));
    }

    #[test]
    fn refusals_without_retry_after_back_off_and_recover() {
        let mut now = Instant::now();
        let mut throttle = Throttle::new(None, now);
        let mut pauses = Vec::new();
        for _ in 0..8 {
            throttle.pushed_back(None, now);
            let pause = throttle.try_take(now).unwrap_err();
            pauses.push(pause.as_secs());
            now += pause;
        }
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 60, 60]);
        throttle.accepted();
        throttle.pushed_back(None, now);
        assert_eq!(throttle.try_take(now), Err(Duration::from_secs(1)));
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
