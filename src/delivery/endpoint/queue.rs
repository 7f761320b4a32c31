//! What an endpoint actor holds: the deliveries ready to go, in arrival
//! order, and which ones it holds or finished lately, so that the same
//! row arriving twice is sent once.
//!
//! An actor learns of a delivery twice, from the publish's hand-over and
//! from a read of the pending rows, and either can come after the delivery
//! is done: a read saw the committed row, sent and recorded it before the
//! hand-over arrived (seen with 40 concurrent publishes), or a read saw
//! the row just before its attempt's record (seen in the URL-change test).
//! Only a manual retry or a recovery sends a finished delivery again, and
//! it says so ([`DeliveryQueue::send_again`]).
use foldhash::HashSet;
use projections::deliveries::PendingDelivery;
use std::collections::VecDeque;

#[derive(Default)]
pub struct DeliveryQueue {
    ready: VecDeque<PendingDelivery>,
    /// Every delivery the actor holds: ready, in a FIFO line, under way or
    /// waiting for a retry.
    held: HashSet<i64>,
    finished: RecentlyFinished,
}

/// What [`DeliveryQueue::admit`] made of a delivery.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Held now: the caller puts it where it goes.
    Held,
    /// Held already, or finished lately: nothing to do.
    Known,
    /// No room (the actor's cap or the node's budget): it stays in the
    /// database for a later read.
    NoRoom,
}

impl DeliveryQueue {
    /// Holds a delivery if it is new and there is room: at most `cap`
    /// held, and `room()` (the node's budget, taken only for a delivery
    /// that is held) agrees.
    pub fn admit(
        &mut self,
        delivery_id: i64,
        cap: usize,
        room: impl FnOnce() -> bool,
    ) -> Admission {
        if self.finished.contains(delivery_id) || self.held.contains(&delivery_id) {
            return Admission::Known;
        }
        if self.held.len() >= cap || !room() {
            return Admission::NoRoom;
        }
        self.held.insert(delivery_id);
        Admission::Held
    }

    pub fn push_back(&mut self, delivery: PendingDelivery) {
        self.ready.push_back(delivery);
    }

    /// First again (the rate limit held it back).
    pub fn push_front(&mut self, delivery: PendingDelivery) {
        self.ready.push_front(delivery);
    }

    pub fn pop_front(&mut self) -> Option<PendingDelivery> {
        self.ready.pop_front()
    }

    /// The ready deliveries for which `take` is true leave the queue
    /// (still held).
    pub fn take_ready_where(
        &mut self,
        mut take: impl FnMut(&PendingDelivery) -> bool,
    ) -> Vec<PendingDelivery> {
        let (taken, kept): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.ready)
            .into_iter()
            .partition(|delivery| take(delivery));
        self.ready = kept;
        taken.into()
    }

    /// No longer held; `true` if it was (its room in the node's budget
    /// goes back).
    pub fn forget(&mut self, delivery_id: i64) -> bool {
        self.held.remove(&delivery_id)
    }

    /// Done: no longer held, and a late notice of it is ignored.
    pub fn finish(&mut self, delivery_id: i64) -> bool {
        self.finished.insert(delivery_id);
        self.forget(delivery_id)
    }

    /// A finished delivery is to be sent again on request.
    pub fn send_again(&mut self, delivery_id: i64) {
        self.finished.forget(delivery_id);
    }

    pub fn held(&self) -> usize {
        self.held.len()
    }

    #[cfg(test)]
    pub fn is_held(&self, delivery_id: i64) -> bool {
        self.held.contains(&delivery_id)
    }

    pub fn ready_is_empty(&self) -> bool {
        self.ready.is_empty()
    }
}

/// The ids of the last [`RecentlyFinished::CAPACITY`] finished
/// deliveries, oldest forgotten first (a late notice of a delivery older
/// than that sends it again: at-least-once allows it).
#[derive(Default)]
struct RecentlyFinished {
    set: HashSet<i64>,
    order: VecDeque<i64>,
}

impl RecentlyFinished {
    const CAPACITY: usize = 10_000;

    fn insert(&mut self, delivery_id: i64) {
        if self.set.insert(delivery_id) {
            self.order.push_back(delivery_id);
            if self.order.len() > Self::CAPACITY {
                if let Some(oldest) = self.order.pop_front() {
                    self.set.remove(&oldest);
                }
            }
        }
    }

    /// Its stale entry in `order` stays until it ages out (an `insert` of
    /// the same id meanwhile is then forgotten early: harmless).
    fn forget(&mut self, delivery_id: i64) {
        self.set.remove(&delivery_id);
    }

    fn contains(&self, delivery_id: i64) -> bool {
        self.set.contains(&delivery_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_delivery_is_held_once_and_ignored_after_it_finished() {
        let mut queue = DeliveryQueue::default();
        assert_eq!(queue.admit(1, 10, || true), Admission::Held);
        assert_eq!(queue.admit(1, 10, || true), Admission::Known);
        assert!(queue.finish(1));
        assert_eq!(queue.admit(1, 10, || true), Admission::Known);
        queue.send_again(1);
        assert_eq!(queue.admit(1, 10, || true), Admission::Held);
    }

    #[test]
    fn no_room_past_the_cap_or_the_budget_and_the_budget_is_asked_last() {
        let mut queue = DeliveryQueue::default();
        assert_eq!(queue.admit(1, 1, || true), Admission::Held);
        let mut asked = false;
        assert_eq!(
            queue.admit(2, 1, || {
                asked = true;
                true
            }),
            Admission::NoRoom
        );
        assert!(!asked, "the budget is not taken when the cap refuses");
        assert_eq!(queue.admit(3, 10, || false), Admission::NoRoom);
        assert!(!queue.is_held(3));
        assert_eq!(queue.held(), 1);
    }

    #[test]
    fn forgetting_says_whether_it_was_held() {
        let mut queue = DeliveryQueue::default();
        queue.admit(1, 10, || true);
        assert!(queue.forget(1));
        assert!(!queue.forget(1));
        // Forgotten, not finished: it may come again.
        assert_eq!(queue.admit(1, 10, || true), Admission::Held);
    }

    #[test]
    fn the_oldest_finished_ids_are_forgotten_first() {
        let mut queue = DeliveryQueue::default();
        for id in 0..=RecentlyFinished::CAPACITY as i64 {
            queue.finish(id);
        }
        assert_eq!(queue.admit(0, 10, || true), Admission::Held);
        assert_eq!(queue.admit(1, 10, || true), Admission::Known);
    }
}
