//! The node-wide budget of deliveries held in memory, across every
//! endpoint actor (`--max-queued-deliveries`). Each actor also has its own
//! cap (`--max-queued-per-endpoint`), but a thousand dead endpoints at
//! 10 000 each would still be ten million deliveries in memory: past the
//! node's budget, backlogs wait in the database and are read back, soonest
//! due first, as room frees.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Clone)]
pub struct HeldBudget {
    held: Arc<AtomicUsize>,
    limit: usize,
}

impl HeldBudget {
    pub fn new(limit: usize) -> Self {
        Self {
            held: Arc::default(),
            limit: limit.max(1),
        }
    }

    /// Takes room for one delivery; `false` when the node is full.
    pub fn take(&self) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < self.limit).then_some(held + 1)
            })
            .is_ok()
    }

    /// Gives back room for `count` deliveries.
    pub fn give(&self, count: usize) {
        if count > 0 {
            self.held.fetch_sub(count, Ordering::AcqRel);
        }
    }

    /// Whether reading a backlog back is worth it: a tenth of the budget
    /// is free (else the rows read would mostly be turned away again).
    pub fn has_room(&self) -> bool {
        self.held.load(Ordering::Acquire) < self.limit - self.limit / 10
    }

    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::HeldBudget;

    #[test]
    fn room_is_taken_and_given_back() {
        let budget = HeldBudget::new(10);
        assert!((0..10).all(|_| budget.take()));
        assert!(!budget.take());
        assert!(!budget.has_room());
        budget.give(2);
        assert!(budget.has_room());
        assert!(budget.take());
        assert_eq!(budget.held(), 9);
    }
}
