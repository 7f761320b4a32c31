//! The line of a FIFO endpoint (`ordering: "fifo"`): its deliveries go out
//! one at a time in the order of their places (`fifo_seq`), which a
//! publish takes when it commits (see `publish_writer`: the places of one
//! config follow the commit order of its publishes, without gaps). The
//! next one goes only when the one before it is done — succeeded, or
//! failed after its retries.
//!
//! Hand-overs reach the actor in any order (each publish hands its
//! deliveries over from a task of its own, and on a cluster another node
//! announces them), so the line sends its first delivery only when it
//! knows that no pending delivery with an earlier place exists outside it:
//! it knows every pending place below `known_below`. A read of the
//! database sets that bound ([`vouched_by_read`]); a hand-over of the place
//! just at the bound moves it up. A line whose first place is above the
//! bound waits for the missing hand-over, and after [`GAP_PATIENCE`] asks
//! for a read (the hand-over may have been lost, or the place was done by
//! another node before this one took the endpoint over).
use projections::deliveries::PendingDelivery;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a gap in the line may last before the database is read.
pub const GAP_PATIENCE: Duration = Duration::from_millis(250);

/// What a read of the database vouches for: it read `last_place`, the
/// last place taken, before the pending rows, so every place up to it had
/// committed and the read saw each one still pending — unless the read
/// was cut short by its limit (`complete` false: it vouches only for the
/// places it returned) or the actor had no room for some of them (it
/// vouches only below the lowest it did not take).
pub fn vouched_by_read(
    last_place: i64,
    places_read: &[i64],
    complete: bool,
    lowest_not_taken: Option<i64>,
) -> i64 {
    let read = if complete {
        last_place + 1
    } else {
        places_read.iter().max().map_or(0, |place| place + 1)
    };
    lowest_not_taken.map_or(read, |place| read.min(place))
}

#[derive(Debug, Default)]
pub struct FifoLine {
    /// Held deliveries not yet sent, by place.
    waiting: BTreeMap<i64, PendingDelivery>,
    /// Every pending place below this one is in `waiting` or `current`.
    known_below: i64,
    /// The delivery under way (sent, being recorded or waiting for its
    /// retry): (place, delivery id).
    current: Option<(i64, i64)>,
    /// Since when the first waiting place has been above `known_below`.
    gap_since: Option<Instant>,
}

/// What the line can do now.
#[derive(Debug)]
pub enum Next {
    /// Send this one (the line is busy with it until [`FifoLine::done`]).
    Send(Box<PendingDelivery>),
    /// Nothing to send, or the one under way is not done.
    Wait,
    /// An earlier place is missing: read the pending deliveries again.
    Read,
}

impl FifoLine {
    /// Takes a delivery that has a place (`fifo_seq`).
    pub fn hold(&mut self, delivery: PendingDelivery) {
        let Some(place) = delivery.fifo_seq else {
            return;
        };
        if self.current.is_some_and(|(_, id)| id == delivery.id) {
            return;
        }
        self.waiting.insert(place, delivery);
        self.advance_bound();
    }

    /// Every pending place below `below` is held (see [`vouched_by_read`]).
    pub fn vouch(&mut self, below: i64) {
        self.known_below = self.known_below.max(below);
        self.advance_bound();
    }

    /// Whether this delivery is the one under way.
    pub fn is_current(&self, delivery_id: i64) -> bool {
        self.current.is_some_and(|(_, id)| id == delivery_id)
    }

    /// What to do next (`now` for the gap's patience).
    pub fn next(&mut self, now: Instant) -> Next {
        if self.current.is_some() {
            return Next::Wait;
        }
        let Some((&place, _)) = self.waiting.first_key_value() else {
            self.gap_since = None;
            return Next::Wait;
        };
        if place < self.known_below {
            self.gap_since = None;
            let (_, delivery) = self.waiting.pop_first().expect("first exists");
            self.current = Some((place, delivery.id));
            return Next::Send(Box::new(delivery));
        }
        let since = *self.gap_since.get_or_insert(now);
        if now.duration_since(since) >= GAP_PATIENCE {
            self.gap_since = Some(now);
            Next::Read
        } else {
            Next::Wait
        }
    }

    /// How long until a waiting gap should be read (for a timer).
    pub fn gap_deadline(&self) -> Option<Instant> {
        self.gap_since.map(|since| since + GAP_PATIENCE)
    }

    /// The delivery under way went back (the rate limit held it): it is
    /// first again.
    pub fn put_back(&mut self, delivery: PendingDelivery) {
        if self.current.is_some_and(|(_, id)| id == delivery.id) {
            self.current = None;
        }
        self.hold(delivery);
    }

    /// A delivery is done (succeeded, failed for good, or dropped): the
    /// next may go if it was the one under way.
    pub fn done(&mut self, delivery_id: i64) {
        if self.current.is_some_and(|(_, id)| id == delivery_id) {
            self.current = None;
        } else {
            self.waiting.retain(|_, d| d.id != delivery_id);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.current.is_none()
    }

    /// The waiting deliveries from `place` on leave the line, to make room
    /// for earlier ones (see `EndpointState::take_read`); the line no
    /// longer vouches for anything from there.
    pub fn give_up_from(&mut self, place: i64) -> Vec<PendingDelivery> {
        self.known_below = self.known_below.min(place);
        self.waiting.split_off(&place).into_values().collect()
    }

    /// Everything waiting leaves the line (the config no longer wants
    /// FIFO); the one under way finishes as it is.
    pub fn drain(&mut self) -> Vec<PendingDelivery> {
        self.gap_since = None;
        std::mem::take(&mut self.waiting).into_values().collect()
    }

    fn advance_bound(&mut self) {
        while self.waiting.contains_key(&self.known_below) {
            self.known_below += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::wire::{event_data, EventRecord};
    use projections::deliveries::DeliveryKind;

    fn delivery(place: i64) -> PendingDelivery {
        PendingDelivery {
            id: 1000 + place,
            config_id: aggregates::values::ConfigId::new(1),
            kind: DeliveryKind::Event,
            task_id: None,
            attempts: 0,
            next_attempt_at: 0,
            fifo_seq: Some(place),
            event: std::sync::Arc::new(EventRecord {
                id: format!("evt_{place}"),
                event_type: "a.b".into(),
                data: event_data("{}".into()),
                published_at: 0,
            }),
        }
    }

    fn sent(next: Next) -> i64 {
        match next {
            Next::Send(delivery) => delivery.fifo_seq.unwrap(),
            other => panic!("expected a send, got {other:?}"),
        }
    }

    #[test]
    fn one_at_a_time_in_place_order() {
        let now = Instant::now();
        let mut line = FifoLine::default();
        line.vouch(vouched_by_read(0, &[], true, None));
        for place in [3, 1, 2] {
            line.hold(delivery(place));
        }
        assert_eq!(sent(line.next(now)), 1);
        assert!(matches!(line.next(now), Next::Wait), "one in flight");
        line.done(1001);
        assert_eq!(sent(line.next(now)), 2);
        line.done(1002);
        assert_eq!(sent(line.next(now)), 3);
        line.done(1003);
        assert!(matches!(line.next(now), Next::Wait));
        assert!(line.is_empty());
    }

    /// A retry keeps the line busy: nothing behind it goes.
    #[test]
    fn the_one_under_way_holds_the_rest_until_done() {
        let now = Instant::now();
        let mut line = FifoLine::default();
        line.vouch(vouched_by_read(0, &[], true, None));
        line.hold(delivery(1));
        line.hold(delivery(2));
        assert_eq!(sent(line.next(now)), 1);
        // Its hand-over or a reload brings it again while it waits.
        line.hold(delivery(1));
        for _ in 0..3 {
            assert!(matches!(line.next(now), Next::Wait));
        }
        line.done(1001);
        assert_eq!(sent(line.next(now)), 2);
    }

    /// Place 2's hand-over comes after place 3's: 3 waits for it, and a
    /// gap that lasts asks for a read.
    #[test]
    fn a_later_place_waits_for_an_earlier_hand_over() {
        let now = Instant::now();
        let mut line = FifoLine::default();
        line.vouch(vouched_by_read(1, &[1], true, None));
        line.hold(delivery(1));
        assert_eq!(sent(line.next(now)), 1);
        line.done(1001);
        line.hold(delivery(3));
        assert!(matches!(line.next(now), Next::Wait));
        assert!(matches!(line.next(now + GAP_PATIENCE), Next::Read));
        line.hold(delivery(2));
        assert_eq!(sent(line.next(now + GAP_PATIENCE)), 2);
        line.done(1002);
        assert_eq!(sent(line.next(now + GAP_PATIENCE)), 3);
    }

    /// Nothing is known before the first read: even place 1 waits.
    #[test]
    fn nothing_goes_before_a_read_vouches_for_it() {
        let now = Instant::now();
        let mut line = FifoLine::default();
        line.hold(delivery(5));
        assert!(matches!(line.next(now), Next::Wait));
        // Places 1–4 are done (the read saw 5 as the lowest pending).
        line.vouch(vouched_by_read(5, &[5], true, None));
        assert_eq!(sent(line.next(now)), 5);
    }

    /// A read cut short by its limit vouches only for what it returned.
    #[test]
    fn a_truncated_read_vouches_for_its_rows_only() {
        let now = Instant::now();
        let mut line = FifoLine::default();
        line.vouch(vouched_by_read(100, &[10, 11], false, None));
        line.hold(delivery(10));
        line.hold(delivery(11));
        line.hold(delivery(13));
        assert_eq!(sent(line.next(now)), 10);
        line.done(1010);
        assert_eq!(sent(line.next(now)), 11);
        line.done(1011);
        assert!(matches!(line.next(now), Next::Wait), "12 may be pending");
    }

    #[test]
    fn a_read_vouches_below_the_lowest_place_the_actor_could_not_take() {
        assert_eq!(vouched_by_read(9, &[3, 4, 5], true, None), 10);
        assert_eq!(vouched_by_read(9, &[3, 4, 5], false, None), 6);
        assert_eq!(vouched_by_read(9, &[3, 4, 5], true, Some(4)), 4);
        assert_eq!(vouched_by_read(0, &[], true, None), 1);
    }

    #[test]
    fn a_held_back_delivery_is_first_again() {
        let now = Instant::now();
        let mut line = FifoLine::default();
        line.vouch(vouched_by_read(2, &[1, 2], true, None));
        line.hold(delivery(1));
        line.hold(delivery(2));
        let Next::Send(first) = line.next(now) else {
            panic!("expected a send");
        };
        line.put_back(*first);
        assert_eq!(sent(line.next(now)), 1);
    }
}
