use super::retry::RetrySchedule;
use aggregates::values::UrlPolicy;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

/// The time signatures and secret overlaps go by: the cluster's clock
/// (`projections::db::now_micros`), or, in tests, that clock moved by an
/// offset the test holds — a test of an overlap's end moves the clock on
/// instead of waiting for it.
#[derive(Clone, Default)]
pub struct Clock(Option<std::sync::Arc<std::sync::atomic::AtomicI64>>);

impl Clock {
    /// A clock `offset` µs off the cluster's, `offset` kept by the caller.
    pub fn offset_by(offset: std::sync::Arc<std::sync::atomic::AtomicI64>) -> Self {
        Self(Some(offset))
    }

    pub fn now_micros(&self) -> i64 {
        let offset = self.0.as_ref().map_or(0, |offset| {
            offset.load(std::sync::atomic::Ordering::Relaxed)
        });
        projections::db::now_micros() + offset
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Clock(offset)"
        } else {
            "Clock"
        })
    }
}

/// Deployment-wide delivery policy (`webhookd serve` flags).
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Waits between retries (`--retry-schedule`).
    pub retry_schedule: RetrySchedule,
    /// Deactivate an endpoint after this many consecutive failed attempts…
    pub disable_after_failures: i64,
    /// …spanning at least this long (`--disable-after`).
    pub disable_after: Duration,
    /// Concurrent requests to one endpoint.
    pub max_in_flight_per_endpoint: usize,
    /// Pending deliveries an endpoint actor keeps in memory
    /// (`--max-queued-per-endpoint`); the rest wait in the database.
    pub max_queued_per_endpoint: usize,
    /// Pending deliveries all the endpoint actors of this node keep in
    /// memory together (`--max-queued-deliveries`).
    pub max_queued_deliveries: usize,
    /// Threads the endpoint actors run on (`--delivery-threads`; default
    /// one per core).
    pub delivery_threads: usize,
    /// An endpoint actor with nothing to do stops after this long.
    pub idle_timeout: Duration,
    /// How often the supervisor checks that its actors are alive and looks
    /// for pending deliveries no actor holds.
    pub watchdog_interval: Duration,
    /// What targets may be connected to (the same rule as at create time).
    pub url_policy: UrlPolicy,
    /// Fixed name → address answers, consulted before DNS (`--resolve`).
    pub resolve_overrides: HashMap<String, IpAddr>,
    /// The local address deliveries are sent from (`--delivery-source-address`).
    pub source_address: Option<IpAddr>,
    /// What signing and secret overlaps take for now (tests move it).
    pub clock: Clock,
    /// How long an outcome batch waits for company
    /// (`projections::deliveries::OUTCOME_LINGER`; tests lengthen it).
    pub outcome_linger: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            retry_schedule: RetrySchedule::default(),
            disable_after_failures: 50,
            disable_after: Duration::from_secs(24 * 3600),
            max_in_flight_per_endpoint: 32,
            max_queued_per_endpoint: 10_000,
            max_queued_deliveries: 200_000,
            delivery_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            idle_timeout: Duration::from_secs(30),
            watchdog_interval: Duration::from_millis(500),
            url_policy: UrlPolicy::production(),
            resolve_overrides: HashMap::new(),
            source_address: None,
            clock: Clock::default(),
            outcome_linger: projections::deliveries::OUTCOME_LINGER,
        }
    }
}
