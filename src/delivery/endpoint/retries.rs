//! Deliveries waiting for their next attempt, soonest first. The actor
//! arms one timer, for the soonest (one timer per waiting retry would be
//! one future each in the actor's context, all polled on every wake-up:
//! thousands for an endpoint that is down).
use projections::deliveries::PendingDelivery;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

#[derive(Default)]
pub struct RetryHeap {
    heap: BinaryHeap<Reverse<WaitingRetry>>,
    /// Arrival order, to break ties between retries due at the same time.
    arrivals: u64,
}

impl RetryHeap {
    pub fn push(&mut self, delivery: PendingDelivery, due: Instant) {
        self.arrivals += 1;
        self.heap.push(Reverse(WaitingRetry {
            due,
            order: self.arrivals,
            delivery,
        }));
    }

    /// When the soonest is due.
    pub fn soonest(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(retry)| retry.due)
    }

    /// Every retry due by `now`, soonest first, made due at once.
    pub fn pop_due(&mut self, now: Instant) -> Vec<PendingDelivery> {
        let mut due = Vec::new();
        while self.soonest().is_some_and(|soonest| soonest <= now) {
            if let Some(Reverse(retry)) = self.heap.pop() {
                let mut delivery = retry.delivery;
                delivery.next_attempt_at = 0;
                due.push(delivery);
            }
        }
        due
    }

    /// The retries for which `keep` is false leave the heap.
    pub fn remove_unless(
        &mut self,
        mut keep: impl FnMut(&PendingDelivery) -> bool,
    ) -> Vec<PendingDelivery> {
        if self.heap.iter().all(|Reverse(retry)| keep(&retry.delivery)) {
            return Vec::new();
        }
        let (kept, removed): (Vec<_>, Vec<_>) = std::mem::take(&mut self.heap)
            .into_iter()
            .partition(|Reverse(retry)| keep(&retry.delivery));
        self.heap = kept.into_iter().collect();
        removed
            .into_iter()
            .map(|Reverse(retry)| retry.delivery)
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::wire::{event_data, EventRecord};
    use projections::deliveries::DeliveryKind;
    use std::time::Duration;

    fn delivery(id: i64) -> PendingDelivery {
        PendingDelivery {
            id,
            config_id: aggregates::values::ConfigId::new(1),
            kind: DeliveryKind::Event,
            task_id: None,
            attempts: 1,
            next_attempt_at: 99,
            fifo_seq: None,
            event: std::sync::Arc::new(EventRecord {
                id: format!("evt_{id}"),
                event_type: "a.b".into(),
                data: event_data("{}".into()),
                published_at: 0,
            }),
        }
    }

    fn ids(deliveries: &[PendingDelivery]) -> Vec<i64> {
        deliveries.iter().map(|d| d.id).collect()
    }

    #[test]
    fn due_retries_come_out_soonest_first_then_in_arrival_order() {
        let now = Instant::now();
        let mut heap = RetryHeap::default();
        heap.push(delivery(1), now + Duration::from_secs(3));
        heap.push(delivery(2), now + Duration::from_secs(1));
        heap.push(delivery(3), now + Duration::from_secs(1));
        heap.push(delivery(4), now + Duration::from_secs(9));
        assert_eq!(heap.soonest(), Some(now + Duration::from_secs(1)));
        assert!(heap.pop_due(now).is_empty());
        let due = heap.pop_due(now + Duration::from_secs(3));
        assert_eq!(ids(&due), vec![2, 3, 1]);
        assert!(due.iter().all(|d| d.next_attempt_at == 0));
        assert_eq!(heap.soonest(), Some(now + Duration::from_secs(9)));
    }

    #[test]
    fn removed_retries_leave_and_the_rest_stay_in_order() {
        let now = Instant::now();
        let mut heap = RetryHeap::default();
        for id in 1..=4 {
            heap.push(delivery(id), now + Duration::from_secs(id as u64));
        }
        assert!(heap.remove_unless(|_| true).is_empty());
        let removed = heap.remove_unless(|d| d.id % 2 == 0);
        assert_eq!(ids(&removed).len(), 2);
        assert_eq!(
            ids(&heap.pop_due(now + Duration::from_secs(10))),
            vec![2, 4]
        );
        assert!(heap.is_empty());
    }
}
