//! The checker: what a fault run's record says about webhookd's promises.
//! Pure: it reads the receiver's requests and the load's publishes, and
//! computes each invariant's violations (see the fields of [`Findings`]).
use super::recorder::Request;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// One publish the load made.
#[derive(Debug, Clone)]
pub struct Publish {
    /// Which node it went to (index).
    pub node: usize,
    pub started: Instant,
    pub finished: Instant,
    /// The event id when it was accepted (2xx); otherwise why not.
    pub outcome: Result<String, String>,
}

/// An endpoint of the run; every one is subscribed to every event.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    pub n: u32,
    pub fifo: bool,
    pub rate_limit: Option<u32>,
}

/// How soon an answered attempt is recorded, at the latest: a fault may
/// make webhookd send again what it was answered just before (at-least-once
/// delivery), but never what it had this long to record. Today's outcome
/// batches wait up to 15 ms for company and commit in milliseconds; the
/// rest is room for a loaded machine (and debug builds in CI).
pub const RECORDED_WITHIN: Duration = Duration::from_secs(1);

/// What the checker found. Zero is the promise for `lost`, `overlaps`,
/// `fifo_inversions`, `rate_excess`, `bad_signatures` and
/// `stale_duplicates`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Findings {
    pub scenario: String,
    /// Publishes answered 2xx, and all publishes.
    pub accepted: usize,
    pub published: usize,
    /// (endpoint, accepted event) pairs never answered 200.
    pub lost: usize,
    pub lost_examples: Vec<String>,
    /// Requests beyond the first per (endpoint, event).
    pub duplicates: usize,
    /// How long before the fault the earliest-answered of the duplicated
    /// deliveries was first answered 2xx (negative: after it began); `None`
    /// without duplicates.
    pub oldest_duplicate_ms: Option<i64>,
    /// Duplicates of a delivery first answered 2xx more than
    /// [`RECORDED_WITHIN`] before the fault: an answer webhookd had that
    /// long to record and did not.
    pub stale_duplicates: usize,
    /// Requests that arrived while another node's request to the same
    /// endpoint was in flight (arrived, not yet answered).
    pub overlaps: usize,
    /// FIFO endpoint: events that arrived before an event whose publish
    /// was answered before theirs was sent.
    pub fifo_inversions: usize,
    /// Requests over `rate_limit` in the busiest second of any
    /// rate-limited endpoint.
    pub rate_excess: usize,
    pub bad_signatures: usize,
    /// The longest time an endpoint went without a request while load ran.
    pub longest_gap_ms: u64,
    /// Publishes not answered 2xx: through any node, and through nodes
    /// the fault did not touch.
    pub publish_errors: usize,
    pub healthy_publish_errors: usize,
    /// Publish latency through the untouched nodes.
    pub healthy_publish_p99_ms: f64,
    pub healthy_publish_max_ms: f64,
    /// The largest |signature timestamp − the receiver's clock|, seconds.
    pub max_signature_skew_s: i64,
    /// From the fault to the first request by another node to every
    /// endpoint the faulted node owned (the slowest of them).
    pub takeover_ms: Option<u64>,
    /// Anything the scenario itself measured (takeover time, 503s, …).
    pub notes: Vec<String>,
}

impl Findings {
    /// The promises held.
    pub fn held(&self) -> bool {
        self.lost == 0
            && self.overlaps == 0
            && self.fifo_inversions == 0
            && self.rate_excess == 0
            && self.bad_signatures == 0
            && self.stale_duplicates == 0
    }
}

pub struct Record<'a> {
    pub requests: &'a [Request],
    pub publishes: &'a [Publish],
    pub endpoints: &'a [Endpoint],
    /// Nodes the fault touched (their publishes are not "healthy").
    pub faulted: &'a HashSet<usize>,
    /// When the load ran.
    pub load: (Instant, Instant),
    /// When the fault began (a freeze that had to be aimed: its last
    /// `SIGSTOP`).
    pub fault_at: Instant,
}

pub fn check(scenario: &str, record: &Record<'_>) -> Findings {
    let accepted: Vec<&Publish> = record
        .publishes
        .iter()
        .filter(|p| p.outcome.is_ok())
        .collect();
    let mut by_endpoint: HashMap<u32, Vec<&Request>> = HashMap::new();
    for request in record.requests {
        by_endpoint
            .entry(request.endpoint)
            .or_default()
            .push(request);
    }
    for requests in by_endpoint.values_mut() {
        requests.sort_by_key(|r| r.arrived);
    }
    // Lost and duplicated count what was answered 2xx; overlaps and the
    // rate count every request.
    let ok: Vec<&Request> = record.requests.iter().filter(|r| r.status_ok).collect();
    let pairs: HashSet<(u32, &str)> = ok.iter().map(|r| (r.endpoint, r.event.as_str())).collect();
    let lost: Vec<String> = record
        .endpoints
        .iter()
        .flat_map(|e| {
            let pairs = &pairs;
            accepted.iter().filter_map(move |p| {
                let id = p.outcome.as_deref().unwrap_or_default();
                (!pairs.contains(&(e.n, id))).then(|| {
                    format!(
                        "{id} to endpoint {} (published through node {})",
                        e.n,
                        p.node + 1
                    )
                })
            })
        })
        .collect();
    let (oldest_duplicate_ms, stale_duplicates) = duplicates_before(&ok, record.fault_at);
    let healthy: Vec<&Publish> = record
        .publishes
        .iter()
        .filter(|p| !record.faulted.contains(&p.node))
        .collect();
    let mut healthy_ms: Vec<f64> = healthy
        .iter()
        .map(|p| (p.finished - p.started).as_secs_f64() * 1000.0)
        .collect();
    healthy_ms.sort_by(f64::total_cmp);
    let p99 = healthy_ms
        .get((healthy_ms.len() * 99 / 100).min(healthy_ms.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default();
    Findings {
        scenario: scenario.to_owned(),
        accepted: accepted.len(),
        published: record.publishes.len(),
        lost: lost.len(),
        lost_examples: lost.into_iter().take(5).collect(),
        duplicates: ok.len() - pairs.len(),
        oldest_duplicate_ms,
        stale_duplicates,
        overlaps: by_endpoint.values().map(|r| overlaps(r)).sum(),
        fifo_inversions: record
            .endpoints
            .iter()
            .filter(|e| e.fifo)
            .map(|e| fifo_inversions(by_endpoint.get(&e.n).map_or(&[][..], |r| r), &accepted))
            .sum(),
        rate_excess: record
            .endpoints
            .iter()
            .filter_map(|e| Some((e.n, e.rate_limit?)))
            .map(|(n, limit)| rate_excess(by_endpoint.get(&n).map_or(&[][..], |r| r), limit))
            .max()
            .unwrap_or_default(),
        bad_signatures: record.requests.iter().filter(|r| !r.signed).count(),
        longest_gap_ms: record
            .endpoints
            .iter()
            .map(|e| longest_gap(by_endpoint.get(&e.n).map_or(&[][..], |r| r), record.load))
            .max()
            .unwrap_or_default()
            .as_millis() as u64,
        publish_errors: record.publishes.len() - accepted.len(),
        healthy_publish_errors: healthy.iter().filter(|p| p.outcome.is_err()).count(),
        healthy_publish_p99_ms: p99,
        healthy_publish_max_ms: healthy_ms.last().copied().unwrap_or_default(),
        max_signature_skew_s: record
            .requests
            .iter()
            .map(|r| r.clock_skew)
            .max()
            .unwrap_or_default(),
        takeover_ms: None,
        notes: Vec::new(),
    }
}

/// Of the 2xx-answered requests, the repeats: how long before `fault_at`
/// the earliest-answered repeated delivery was first answered (ms,
/// negative when after), and how many repeats are of a delivery first
/// answered more than [`RECORDED_WITHIN`] before it.
fn duplicates_before(ok: &[&Request], fault_at: Instant) -> (Option<i64>, usize) {
    let mut first: HashMap<(u32, &str), (Instant, usize)> = HashMap::new();
    for request in ok {
        let entry = first
            .entry((request.endpoint, request.event.as_str()))
            .or_insert((request.answered, 0));
        entry.0 = entry.0.min(request.answered);
        entry.1 += 1;
    }
    let signed_ms = |answered: Instant| match fault_at.checked_duration_since(answered) {
        Some(before) => before.as_millis() as i64,
        None => -(answered.duration_since(fault_at).as_millis() as i64),
    };
    let repeated = first.values().filter(|(_, n)| *n > 1);
    let oldest = repeated
        .clone()
        .map(|(answered, _)| signed_ms(*answered))
        .max();
    let stale = repeated
        .filter(|(answered, _)| *answered + RECORDED_WITHIN < fault_at)
        .map(|(_, n)| n - 1)
        .sum();
    (oldest, stale)
}

/// Requests (sorted by arrival) that arrived while a request from another
/// sender was still unanswered.
fn overlaps(requests: &[&Request]) -> usize {
    let mut latest_answer: HashMap<Option<IpAddr>, Instant> = HashMap::new();
    let mut count = 0;
    for request in requests {
        if latest_answer
            .iter()
            .any(|(sender, answered)| *sender != request.sender && *answered > request.arrived)
        {
            count += 1;
        }
        let latest = latest_answer
            .entry(request.sender)
            .or_insert(request.answered);
        *latest = (*latest).max(request.answered);
    }
    count
}

/// Events B delivered before some A although A's publish was answered
/// before B's was sent (so A committed first; FIFO promises commit order).
fn fifo_inversions(requests: &[&Request], accepted: &[&Publish]) -> usize {
    let mut first_arrival: HashMap<&str, Instant> = HashMap::new();
    for request in requests {
        first_arrival
            .entry(request.event.as_str())
            .or_insert(request.arrived);
    }
    // (answered, sent, arrival) of every delivered accepted event.
    let mut events: Vec<(Instant, Instant, Instant)> = accepted
        .iter()
        .filter_map(|p| {
            let arrival = *first_arrival.get(p.outcome.as_deref().ok()?)?;
            Some((p.finished, p.started, arrival))
        })
        .collect();
    events.sort_by_key(|e| e.0);
    let mut latest_arrival = Vec::with_capacity(events.len());
    let mut latest: Option<Instant> = None;
    for event in &events {
        latest = Some(latest.map_or(event.2, |l| l.max(event.2)));
        latest_arrival.push(latest.unwrap());
    }
    events
        .iter()
        .filter(|(_, sent, arrival)| {
            let before = events.partition_point(|e| e.0 < *sent);
            before > 0 && latest_arrival[before - 1] > *arrival
        })
        .count()
}

/// Requests over `limit` in the busiest one-second window.
fn rate_excess(requests: &[&Request], limit: u32) -> usize {
    let mut busiest = 0;
    let mut end = 0;
    for (start, request) in requests.iter().enumerate() {
        while end < requests.len()
            && requests[end].arrived < request.arrived + Duration::from_secs(1)
        {
            end += 1;
        }
        busiest = busiest.max(end - start);
    }
    busiest.saturating_sub(limit as usize)
}

/// The longest stretch without an arrival while the load ran.
fn longest_gap(requests: &[&Request], (start, end): (Instant, Instant)) -> Duration {
    let mut previous = start;
    let mut longest = Duration::ZERO;
    for request in requests.iter().filter(|r| r.arrived <= end) {
        longest = longest.max(request.arrived.saturating_duration_since(previous));
        previous = previous.max(request.arrived);
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    fn request(base: Instant, sender: u8, event: &str, from: u64, to: u64) -> Request {
        Request {
            endpoint: 0,
            sender: Some(IpAddr::from([127, 0, 0, sender])),
            event: event.to_owned(),
            arrived: at(base, from),
            answered: at(base, to),
            signed: true,
            clock_skew: 0,
            status_ok: true,
        }
    }

    #[test]
    fn two_senders_in_flight_at_once_overlap_one_after_the_other_do_not() {
        let base = Instant::now();
        let a = request(base, 2, "a", 0, 20);
        let b = request(base, 3, "b", 10, 30);
        let c = request(base, 3, "c", 40, 50);
        let d = request(base, 2, "d", 45, 60);
        assert_eq!(overlaps(&[&a, &c]), 0);
        assert_eq!(overlaps(&[&a, &b, &c, &d]), 2);
        // The same sender twice at once is a window, not an overlap.
        let e = request(base, 2, "e", 5, 25);
        assert_eq!(overlaps(&[&a, &e]), 0);
    }

    fn refs(requests: &[Request]) -> Vec<&Request> {
        requests.iter().collect()
    }

    #[test]
    fn an_event_delivered_before_one_committed_earlier_is_an_inversion() {
        let base = Instant::now();
        let publish = |id: &str, from, to| Publish {
            node: 0,
            started: at(base, from),
            finished: at(base, to),
            outcome: Ok(id.to_owned()),
        };
        // a answered at 10, b sent at 20: a must arrive first.
        let (a, b) = (publish("a", 0, 10), publish("b", 20, 30));
        let in_order = [request(base, 2, "a", 40, 41), request(base, 2, "b", 50, 51)];
        let reversed = [request(base, 2, "b", 40, 41), request(base, 2, "a", 50, 51)];
        assert_eq!(fifo_inversions(&refs(&in_order), &[&a, &b]), 0);
        assert_eq!(fifo_inversions(&refs(&reversed), &[&a, &b]), 1);
        // Concurrent publishes may go in either order.
        let (c, d) = (publish("a", 0, 30), publish("b", 10, 40));
        assert_eq!(fifo_inversions(&refs(&reversed), &[&c, &d]), 0);
    }

    #[test]
    fn a_repeat_of_an_answer_older_than_the_recording_bound_is_stale() {
        let base = Instant::now();
        let fault_at = at(base, 5_000);
        let ok = |event: &str, from, to| request(base, 2, event, from, to);
        // a: answered 3 s before the fault and sent again (stale, twice);
        // b: answered 10 ms before it (in flight, fair); c: once.
        let requests = [
            ok("a", 1_990, 2_000),
            ok("a", 6_000, 6_010),
            ok("a", 6_100, 6_110),
            ok("b", 4_980, 4_990),
            ok("b", 6_000, 6_010),
            ok("c", 1_000, 1_010),
        ];
        assert_eq!(
            duplicates_before(&refs(&requests), fault_at),
            (Some(3_000), 2)
        );
        assert_eq!(
            duplicates_before(&refs(&requests[3..]), fault_at),
            (Some(10), 0)
        );
        // Only after the fault: negative, never stale.
        let after = [ok("d", 5_100, 5_110), ok("d", 6_000, 6_010)];
        assert_eq!(duplicates_before(&refs(&after), fault_at), (Some(-110), 0));
        assert_eq!(
            duplicates_before(&refs(&requests[5..]), fault_at),
            (None, 0)
        );
    }

    #[test]
    fn the_busiest_second_counts_against_the_limit() {
        let base = Instant::now();
        let requests: Vec<Request> = (0..12)
            .map(|i| request(base, 2, &i.to_string(), i * 90, i * 90 + 1))
            .collect();
        let refs: Vec<&Request> = requests.iter().collect();
        // 0, 90, …, 990 ms: 12 requests within one second.
        assert_eq!(rate_excess(&refs, 10), 2);
        assert_eq!(rate_excess(&refs, 12), 0);
        assert_eq!(
            longest_gap(&refs, (base, at(base, 2000))),
            Duration::from_millis(90)
        );
    }
}
