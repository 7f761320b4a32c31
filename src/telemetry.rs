//! Prometheus metrics: the recorder, the gauges sampled from the database
//! and the process, and the `/metrics` answer.
//!
//! Counters and histograms are recorded where things happen (the HTTP
//! middleware, publish, attempts, group commit); gauges that would cost a
//! query are sampled every [`SAMPLE_EVERY`] by the delivery engine
//! (`delivery::gauges`: this module is below it and knows none of its
//! parts). Labels are bounded: route
//! templates, methods, status codes and classes, outcomes — never ids or URLs.
use actix_web::{HttpResponse, Responder};
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static HOT_PATH: OnceLock<HotPath> = OnceLock::new();
static HANDOFFS: OnceLock<[Histogram; Handoff::ALL.len()]> = OnceLock::new();

/// The environment variable that turns the hand-off timings on (the
/// bench's `--profile` sets it): off, nothing of them is measured.
pub const HANDOFF_TIMINGS_ENV: &str = "WEBHOOKD_HANDOFF_TIMINGS";

/// The hand-offs a delivery passes between its publish and its record:
/// where it waits rather than works. With [`HANDOFF_TIMINGS_ENV`]`=1` each
/// is timed per delivery into `webhookd_handoff_seconds{stage}`, whose
/// `_sum / _count` is the mean wait at that stage; the bench's `--profile`
/// reads them over its measured window. Off by default: the clock reads
/// and histogram records are work the hot path does not need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handoff {
    /// Submitted to the publish group commit → taken into a batch.
    PublishQueue,
    /// Taken into a batch → the batch committed.
    PublishCommit,
    /// Committed → its endpoint's actor has it (the publishing task, the
    /// supervisor's and the actor's mailboxes).
    HandOver,
    /// The actor has it → its attempt is launched (the in-flight window,
    /// a FIFO line, the rate limit).
    Held,
    /// Launched → the receiver's answer is in (the task's start, the
    /// lane's connection, the request, the answer).
    InFlight,
    /// Answered → recorded (the outcome group commit and the policy).
    Recording,
    /// Submitted to the outcome group commit → taken into a batch.
    OutcomeQueue,
    /// Taken into a batch → the batch committed.
    OutcomeCommit,
}

impl Handoff {
    pub const ALL: [Handoff; 8] = [
        Handoff::PublishQueue,
        Handoff::PublishCommit,
        Handoff::HandOver,
        Handoff::Held,
        Handoff::InFlight,
        Handoff::Recording,
        Handoff::OutcomeQueue,
        Handoff::OutcomeCommit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Handoff::PublishQueue => "publish_queue",
            Handoff::PublishCommit => "publish_commit",
            Handoff::HandOver => "hand_over",
            Handoff::Held => "held",
            Handoff::InFlight => "in_flight",
            Handoff::Recording => "recording",
            Handoff::OutcomeQueue => "outcome_queue",
            Handoff::OutcomeCommit => "outcome_commit",
        }
    }
}

/// Whether the hand-offs are being timed (see [`Handoff`]).
pub fn handoffs_timed() -> bool {
    HANDOFFS.get().is_some()
}

/// One delivery waited `waited` at `stage` (nothing unless timed).
pub fn handoff(stage: Handoff, waited: Duration) {
    if let Some(histograms) = HANDOFFS.get() {
        histograms[stage as usize].record(waited.as_secs_f64());
    }
}

/// `count` deliveries waited `waited` at `stage` together.
pub fn handoffs(stage: Handoff, waited: Duration, count: usize) {
    if let Some(histograms) = HANDOFFS.get() {
        for _ in 0..count {
            histograms[stage as usize].record(waited.as_secs_f64());
        }
    }
}

/// The handles of the metrics recorded once per publish, delivery or
/// attempt, registered when the recorder is installed: `counter!` and
/// `histogram!` look their key up in the registry on every call (a hash
/// and a lock). Without a recorder there are none and nothing is recorded.
pub struct HotPath {
    /// By [`status_class`], in [`STATUS_CLASSES`] order.
    attempts: [Counter; 6],
    attempt_duration: Histogram,
    publish_to_first_attempt: Histogram,
    deliveries_succeeded: Counter,
    deliveries_failed: Counter,
    publishes_accepted: Counter,
    publishes_duplicate: Counter,
    publishes_refused: Counter,
    publish_commit_wait: Histogram,
    outcome_commit_wait: Histogram,
}

const STATUS_CLASSES: [&str; 6] = ["2xx", "3xx", "4xx", "5xx", "other", "error"];

/// What became of a publish request.
#[derive(Debug, Clone, Copy)]
pub enum PublishResult {
    Accepted,
    Duplicate,
    Refused,
}

impl HotPath {
    fn register() -> Self {
        let class =
            |class: &'static str| metrics::counter!("webhookd_attempts_total", "class" => class);
        let wait = |writer: &'static str| metrics::histogram!("webhookd_group_commit_wait_seconds", "writer" => writer);
        Self {
            attempts: STATUS_CLASSES.map(class),
            attempt_duration: metrics::histogram!("webhookd_attempt_duration_seconds"),
            publish_to_first_attempt: metrics::histogram!(
                "webhookd_publish_to_first_attempt_seconds"
            ),
            deliveries_succeeded: metrics::counter!("webhookd_deliveries_total", "outcome" => "succeeded"),
            deliveries_failed: metrics::counter!("webhookd_deliveries_total", "outcome" => "failed"),
            publishes_accepted: metrics::counter!("webhookd_publishes_total", "result" => "accepted"),
            publishes_duplicate: metrics::counter!("webhookd_publishes_total", "result" => "duplicate"),
            publishes_refused: metrics::counter!("webhookd_publishes_total", "result" => "refused"),
            publish_commit_wait: wait("publish"),
            outcome_commit_wait: wait("outcome"),
        }
    }
}

/// An attempt's answer class and duration; for a delivery's first attempt
/// also the time since its publish.
pub fn attempt_recorded(status: Option<u16>, duration: Duration, since_publish: Option<Duration>) {
    let Some(hot) = HOT_PATH.get() else { return };
    let class = status_class(status);
    let index = STATUS_CLASSES.iter().position(|c| *c == class).unwrap_or(5);
    hot.attempts[index].increment(1);
    hot.attempt_duration.record(duration.as_secs_f64());
    if let Some(since) = since_publish {
        hot.publish_to_first_attempt.record(since.as_secs_f64());
    }
}

/// One HTTP request: by route template, method and status, with its
/// latency. Labels are static strings where they can be (no allocation).
pub fn http_request_answered(
    route: String,
    method: &actix_web::http::Method,
    status: u16,
    took: Duration,
) {
    if HOT_PATH.get().is_none() {
        return;
    }
    let method: &'static str = match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PATCH" => "PATCH",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let status = status_label(status);
    metrics::counter!(
        "webhookd_http_requests_total",
        "route" => route.clone(),
        "method" => method,
        "status" => status
    )
    .increment(1);
    metrics::histogram!(
        "webhookd_http_request_duration_seconds",
        "route" => route,
        "method" => method
    )
    .record(took.as_secs_f64());
}

fn status_label(status: u16) -> metrics::SharedString {
    const COMMON: [(u16, &str); 17] = [
        (200, "200"),
        (201, "201"),
        (202, "202"),
        (204, "204"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (405, "405"),
        (408, "408"),
        (409, "409"),
        (413, "413"),
        (422, "422"),
        (429, "429"),
        (500, "500"),
        (502, "502"),
        (503, "503"),
    ];
    match COMMON.iter().find(|(code, _)| *code == status) {
        Some((_, label)) => metrics::SharedString::const_str(label),
        None => status.to_string().into(),
    }
}

/// An event delivery ended: `succeeded` or `failed` (after its retries).
pub fn delivery_ended(succeeded: bool) {
    let Some(hot) = HOT_PATH.get() else { return };
    match succeeded {
        true => hot.deliveries_succeeded.increment(1),
        false => hot.deliveries_failed.increment(1),
    }
}

pub fn publish_answered(result: PublishResult) {
    let Some(hot) = HOT_PATH.get() else { return };
    match result {
        PublishResult::Accepted => hot.publishes_accepted.increment(1),
        PublishResult::Duplicate => hot.publishes_duplicate.increment(1),
        PublishResult::Refused => hot.publishes_refused.increment(1),
    }
}

/// How long an item of a group-commit writer waited for its batch: in
/// the queue, then while its batch was written.
pub fn group_commit_waited(writer: &str, waited: projections::deliveries::Waited) {
    let Some(hot) = HOT_PATH.get() else { return };
    let total = (waited.queued + waited.writing).as_secs_f64();
    match writer {
        "publish" => {
            hot.publish_commit_wait.record(total);
            handoff(Handoff::PublishQueue, waited.queued);
            handoff(Handoff::PublishCommit, waited.writing);
        }
        "outcome" => {
            hot.outcome_commit_wait.record(total);
            handoff(Handoff::OutcomeQueue, waited.queued);
            handoff(Handoff::OutcomeCommit, waited.writing);
        }
        other => {
            metrics::histogram!("webhookd_group_commit_wait_seconds", "writer" => other.to_owned())
                .record(total)
        }
    }
}

/// How often the sampled gauges are read.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(2);

/// Installs the process-wide recorder (once; later calls return the same
/// handle). Without it every metric call is a no-op (`--no-metrics`).
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let seconds = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0, 60.0,
            ];
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("webhookd_group_commit_batch_size".into()),
                        &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
                    )
                })
                .and_then(|b| {
                    // The hand-offs are µs to ms: finer than the others.
                    b.set_buckets_for_metric(
                        Matcher::Full("webhookd_handoff_seconds".into()),
                        &[
                            0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001,
                            0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
                        ],
                    )
                })
                .expect("bucket lists are not empty")
                .install_recorder()
                .expect("the metrics recorder is installed once");
            describe();
            let _ = HOT_PATH.set(HotPath::register());
            if std::env::var(HANDOFF_TIMINGS_ENV).is_ok_and(|on| on == "1") {
                let _ = HANDOFFS.set(Handoff::ALL.map(|stage| {
                    metrics::histogram!("webhookd_handoff_seconds", "stage" => stage.name())
                }));
            }
            handle
        })
        .clone()
}

/// The handle, if metrics are on.
pub fn handle() -> Option<PrometheusHandle> {
    HANDLE.get().cloned()
}

/// `GET /metrics`: the Prometheus text format (no key: serve it on an
/// internal address with `--metrics-bind` where that matters).
pub async fn scrape() -> impl Responder {
    match handle() {
        Some(handle) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(handle.render()),
        None => HttpResponse::NotFound()
            .json(serde_json::json!({ "error": "metrics are off (--no-metrics)" })),
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "webhookd_http_requests_total",
        "HTTP requests by route template, method and status"
    );
    describe_histogram!(
        "webhookd_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency by route template and method"
    );
    describe_counter!(
        "webhookd_publishes_total",
        "Publishes by result: accepted, duplicate, refused"
    );
    describe_counter!(
        "webhookd_deliveries_total",
        "Deliveries that ended, by outcome: succeeded, failed (after its retries), given_up (its endpoint was switched off)"
    );
    describe_counter!(
        "webhookd_attempts_total",
        "Delivery attempts by answer class: 2xx, 3xx, 4xx, 5xx, error"
    );
    describe_histogram!(
        "webhookd_attempt_duration_seconds",
        Unit::Seconds,
        "Delivery attempt duration, from connect to the answer"
    );
    describe_histogram!(
        "webhookd_publish_to_first_attempt_seconds",
        Unit::Seconds,
        "Time from a publish's commit to its delivery's first answer"
    );
    describe_gauge!(
        "webhookd_deliveries_pending",
        "Deliveries waiting in the database (all nodes)"
    );
    describe_gauge!(
        "webhookd_oldest_due_delivery_age_seconds",
        Unit::Seconds,
        "How long the oldest due pending delivery has been due"
    );
    describe_gauge!(
        "webhookd_endpoint_actors",
        "Live endpoint actors on this node"
    );
    describe_counter!(
        "webhookd_endpoint_actor_restarts_total",
        "Endpoint actors restarted after they died"
    );
    describe_histogram!(
        "webhookd_group_commit_batch_size",
        "Items per group-commit transaction, by writer (publish, outcome)"
    );
    describe_histogram!(
        "webhookd_group_commit_wait_seconds",
        Unit::Seconds,
        "Time from submitting to a group commit until its batch committed"
    );
    describe_histogram!(
        "webhookd_handoff_seconds",
        Unit::Seconds,
        "Per delivery, the wait at each hand-off between publish and record, by stage (only with WEBHOOKD_HANDOFF_TIMINGS=1)"
    );
    describe_gauge!(
        "webhookd_db_pool_connections",
        "Database pool connections by state: in_use, idle"
    );
    describe_gauge!(
        "webhookd_leases_held",
        "Endpoint partitions this node leases (64 in all)"
    );
    describe_gauge!(
        "webhookd_cluster_nodes",
        "Live nodes in the cluster (1 on SQLite)"
    );
}

/// The class label of an attempt's answer.
pub fn status_class(status: Option<u16>) -> &'static str {
    match status {
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        Some(_) => "other",
        None => "error",
    }
}
