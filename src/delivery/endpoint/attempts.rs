//! The attempts an endpoint has under way: the HTTP requests out (bounded
//! by the per-endpoint in-flight limit and the throttle's window), and the
//! deliveries whose attempt is sent or still being recorded (bounded too:
//! while the database lags behind the receiver, the actor stops taking on
//! more than it can record).
use foldhash::HashSet;

#[derive(Default)]
pub struct Attempts {
    /// Deliveries with an attempt under way, sent or being recorded. A
    /// config switched off meanwhile fails its other pending deliveries at
    /// once, and these when their attempt's record says what comes next.
    attempting: HashSet<i64>,
    /// Of those, the HTTP requests not yet answered.
    requests: usize,
}

impl Attempts {
    /// Whether another may start: fewer than `request_limit` requests out
    /// and fewer than `record_limit` attempts not yet recorded.
    pub fn may_start(&self, request_limit: usize, record_limit: usize) -> bool {
        self.requests < request_limit && self.attempting.len() < record_limit
    }

    pub fn start(&mut self, delivery_id: i64) {
        self.requests += 1;
        self.attempting.insert(delivery_id);
    }

    /// A request was answered (the attempt is being recorded); returns how
    /// many were out, this one included.
    pub fn answered(&mut self) -> usize {
        let out = self.requests;
        self.requests = self.requests.saturating_sub(1);
        out
    }

    /// An attempt was recorded.
    pub fn settled(&mut self, delivery_id: i64) {
        self.attempting.remove(&delivery_id);
    }

    /// The deliveries with an attempt under way.
    pub fn delivery_ids(&self) -> Vec<i64> {
        self.attempting.iter().copied().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.attempting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_records_are_bounded_apart() {
        let mut attempts = Attempts::default();
        attempts.start(1);
        attempts.start(2);
        assert!(!attempts.may_start(2, 8), "two requests out of two");
        assert_eq!(attempts.answered(), 2);
        assert!(
            attempts.may_start(2, 8),
            "a request slot is free while recording"
        );
        assert!(
            !attempts.may_start(2, 2),
            "but two attempts are not yet recorded"
        );
        attempts.settled(1);
        assert!(attempts.may_start(2, 2));
        let mut ids = attempts.delivery_ids();
        ids.sort();
        assert_eq!(ids, vec![2]);
        attempts.answered();
        attempts.settled(2);
        assert!(attempts.is_empty());
    }
}
