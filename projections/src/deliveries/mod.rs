//! Everything the delivery engine keeps: the delivery rows as values (what
//! a pending delivery is, its kind and status, the published event it
//! carries, the lease an attempt was made under), the [`DeliveryStore`]
//! that writes and reads them, the configs-API tasks ([`TaskStore`]) and
//! [`retention`]. The values live here, in the storage layer, because
//! several layers above share them — the delivery engine that sends them,
//! the change bus and the cluster bus that carry committed ones to the node
//! that owns their endpoint — and none of those may import another
//! sideways. All SQL of delivery is here too: the engine above never asks
//! which database it runs on.
mod group_commit;
mod home;
mod outcome_writer;
mod publish_writer;
pub mod retention;
mod sqlite_thread;
mod store;
mod tasks;
mod writers;

use aggregates::values::ConfigId;
use aggregates::webhook_config::UnknownValue;
pub use group_commit::{WaitObserver, Waited};
use serde_json::value::RawValue;
use std::sync::Arc;
pub use store::{
    AttemptRecord, AttemptRow, DeliveryRow, DeliveryStore, EndpointConfig, FailureRun, NewEvent,
    NextStep, PendingRead, Published, RecoveryCounts, StoreHooks, Target, OUTCOME_LINGER,
    PUBLISH_DEADLINE,
};
pub use tasks::{TaskRow, TaskState, TaskStore, TaskType};
pub use writers::POSTGRES_WRITER_CONNECTIONS;

/// A regular delivery, or a config test (one attempt, then a `Tested` event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryKind {
    Event,
    Test,
}

impl DeliveryKind {
    pub const ALL: [Self; 2] = [Self::Event, Self::Test];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryKind::Event => "event",
            DeliveryKind::Test => "test",
        }
    }
}

/// Stored as text: anything else is an unreadable row, an error.
impl TryFrom<String> for DeliveryKind {
    type Error = UnknownValue;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        UnknownValue::find(&Self::ALL, Self::as_str, "delivery kind", value)
    }
}

/// Where a delivery stands: waiting for (another) attempt, or done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
}

impl DeliveryStatus {
    pub const ALL: [Self; 3] = [Self::Pending, Self::Succeeded, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

impl TryFrom<String> for DeliveryStatus {
    type Error = UnknownValue;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        UnknownValue::find(&Self::ALL, Self::as_str, "delivery status", value)
    }
}

/// A delivery that still has to reach its endpoint.
#[derive(Debug, Clone)]
pub struct PendingDelivery {
    pub id: i64,
    pub config_id: ConfigId,
    pub kind: DeliveryKind,
    pub task_id: Option<String>,
    /// Attempts made so far.
    pub attempts: i64,
    pub next_attempt_at: i64,
    /// Its place in a FIFO config's line (see `endpoint::fifo`); `None`
    /// for a config without ordering (when it was published) and tests.
    pub fifo_seq: Option<i64>,
    /// Shared by the event's deliveries: a clone of a delivery (a fan-out,
    /// a hand-over) copies no strings.
    pub event: Arc<EventRecord>,
}

impl PendingDelivery {
    /// The configs-API task this delivery carries out, if any.
    pub fn task(&self) -> Option<i64> {
        self.task_id.as_deref().and_then(|t| t.parse().ok())
    }
}

/// An event's `data` exactly as the publisher sent it: raw JSON text, kept
/// from the parse of the publish to the body of every attempt. A number of
/// any size or precision (`123456789012345678901234567890`) arrives as it
/// was accepted, and no delivery parses or re-serializes it.
pub type EventData = Arc<RawValue>;

/// `data` from its stored text (written from a [`RawValue`], so valid JSON;
/// a row that is not is delivered as `null` rather than not at all).
pub fn event_data(json: String) -> EventData {
    RawValue::from_string(json)
        .unwrap_or_else(|_| RawValue::from_string("null".to_owned()).expect("null is JSON"))
        .into()
}

/// `data` as a delivery row's event stored it: written from a
/// [`RawValue`], so JSON — and a row whose text is not is corrupt (an
/// error for the read, not a `null` sent to the receiver).
pub fn stored_event_data(event_id: &str, json: String) -> Result<EventData, crate::Error> {
    RawValue::from_string(json).map(Arc::from).map_err(|error| {
        crate::Error::Corrupt(format!("event {event_id}: its data is not JSON: {error}"))
    })
}

/// `data` made by webhookd itself (a test event's).
pub fn event_data_of(value: &serde_json::Value) -> EventData {
    event_data(value.to_string())
}

/// A published event as the delivery side needs it.
#[derive(Debug, Clone)]
pub struct EventRecord {
    /// UUID; also the `webhook-id`, stable across retries for dedupe.
    pub id: String,
    pub event_type: String,
    pub data: EventData,
    pub published_at: i64,
}

/// The lease an attempt was made under: its outcome is written only while
/// the lease still has this epoch (see `cluster::ownership`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence {
    pub partition: i32,
    pub epoch: i64,
}

/// How many deliveries are pending, and the soonest due time among them
/// (for the gauges).
pub async fn pending_summary(db: &crate::Db) -> Result<(i64, Option<i64>), crate::Error> {
    let sql = "SELECT COUNT(*), MIN(next_attempt_at) FROM deliveries WHERE status = 'pending'";
    Ok(crate::on_pool!(db, |pool| sqlx::query_as(sql)
        .fetch_one(pool)
        .await?))
}

/// The cluster's live nodes (a heartbeat in the last 30 s); a SQLite node
/// is alone.
pub async fn live_nodes(db: &crate::Db) -> Result<i64, crate::Error> {
    let sql = "SELECT COUNT(*) FROM cluster_nodes WHERE stopped_at IS NULL \
        AND heartbeat_at > now() - interval '30 seconds'";
    Ok(match db {
        crate::Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await?,
        crate::Db::Sqlite(_) => 1,
    })
}

/// A config's attempts since `since` (µs), by hour after it: (hour,
/// successes, failures), hours without attempts left out.
pub async fn attempts_by_hour(
    db: &crate::Db,
    config_id: i64,
    since: i64,
) -> Result<Vec<(i64, i64, i64)>, crate::Error> {
    let sql = "SELECT (a.attempted_at - $2) / 3600000000 AS hour, \
               SUM(CASE WHEN a.success THEN 1 ELSE 0 END), \
               SUM(CASE WHEN a.success THEN 0 ELSE 1 END) \
               FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id \
               WHERE d.config_id = $1 AND a.attempted_at >= $2 GROUP BY 1";
    Ok(crate::on_pool!(db, |pool| sqlx::query_as(sql)
        .bind(config_id)
        .bind(since)
        .fetch_all(pool)
        .await?))
}
