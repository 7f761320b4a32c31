//! Reading the event log ourselves, one aggregate at a time, in sequence order.
use crate::db::{Db, Error};
use crate::on_pool;
use aggregates::webhook_config::upcasting::upcast;
use aggregates::webhook_config::{WebhookConfig, WebhookConfigEvent};
use cqrs_es::Aggregate;
use std::collections::HashMap;

/// One committed event as stored, with the columns webhookd added.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub position: i64,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: serde_json::Value,
    pub metadata: HashMap<String, String>,
    pub recorded_at: i64,
}

#[derive(sqlx::FromRow)]
struct EventRow {
    position: Option<i64>,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: String,
    metadata: String,
    recorded_at: i64,
}

impl TryFrom<EventRow> for StoredEvent {
    type Error = Error;

    fn try_from(row: EventRow) -> Result<Self, Error> {
        let corrupt = |what: &str, e: serde_json::Error| {
            Error::Corrupt(format!(
                "{what} of event {}#{} is not valid JSON: {e}",
                row.aggregate_id, row.sequence
            ))
        };
        Ok(Self {
            position: row.position.unwrap_or_default(),
            payload: serde_json::from_str(&row.payload).map_err(|e| corrupt("payload", e))?,
            metadata: serde_json::from_str(&row.metadata).map_err(|e| corrupt("metadata", e))?,
            aggregate_id: row.aggregate_id,
            sequence: row.sequence,
            event_type: row.event_type,
            event_version: row.event_version,
            recorded_at: row.recorded_at,
        })
    }
}

impl StoredEvent {
    /// Decodes the payload as a webhook config event. Older versions of an
    /// event are upcast here when a schema change needs it.
    pub fn webhook_config_event(&self) -> Result<WebhookConfigEvent, Error> {
        let payload = upcast(&self.event_type, &self.event_version, self.payload.clone());
        serde_json::from_value(payload).map_err(|e| {
            Error::Corrupt(format!(
                "event {}#{} ({} v{}) does not decode: {e}",
                self.aggregate_id, self.sequence, self.event_type, self.event_version
            ))
        })
    }
}

const SELECT_EVENTS: &str = "SELECT position, aggregate_id, sequence, event_type, event_version, \
     CAST(payload AS TEXT) AS payload, CAST(metadata AS TEXT) AS metadata, recorded_at \
     FROM events";

/// All events of one aggregate, oldest first.
pub async fn load_aggregate(
    db: &Db,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<StoredEvent>, Error> {
    let sql = format!(
        "{SELECT_EVENTS} WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence"
    );
    let rows: Vec<EventRow> = on_pool!(db, |pool| {
        sqlx::query_as(&sql)
            .bind(aggregate_type)
            .bind(aggregate_id)
            .fetch_all(pool)
            .await?
    });
    let vault = crate::vault::of(db);
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        let mut event = StoredEvent::try_from(row)?;
        vault
            .open_event(db, &event.aggregate_id, &mut event.payload)
            .await?;
        events.push(event);
    }
    Ok(events)
}

/// The stored payload of an aggregate's first event, as stored (sealed
/// members stay sealed).
pub async fn first_payload(
    db: &Db,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<serde_json::Value, Error> {
    let sql = "SELECT CAST(payload AS TEXT) FROM events \
               WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = 1";
    let text: String = on_pool!(db, |pool| sqlx::query_scalar(sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_one(pool)
        .await?);
    serde_json::from_str(&text)
        .map_err(|error| Error::Corrupt(format!("event payload of {aggregate_id}: {error}")))
}

/// A config folded from its stored events, with the times the read model shows.
pub struct FoldedConfig {
    pub config: WebhookConfig,
    /// Sequence of the last event folded in.
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Folds stored events of one config; `None` when there are none.
pub fn fold_config(events: &[StoredEvent]) -> Result<Option<FoldedConfig>, Error> {
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Ok(None);
    };
    let mut config = WebhookConfig::default();
    for stored in events {
        config.apply(stored.webhook_config_event()?);
    }
    Ok(Some(FoldedConfig {
        config,
        version: last.sequence,
        created_at: first.recorded_at,
        updated_at: last.recorded_at,
    }))
}

/// Which events an audit reads.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub aggregate_id: Option<String>,
    /// `recorded_at >= since` (µs).
    pub since: Option<i64>,
    /// `recorded_at < until` (µs).
    pub until: Option<i64>,
    pub event_type: Option<String>,
}

/// Every webhook config event matching `filter`, in commit order, streamed
/// (memory stays flat however long the log is). A database error ends the
/// stream with that error: a reader never mistakes a failure for an end.
pub fn stream<'a>(
    db: &'a Db,
    filter: &'a LogFilter,
) -> futures_util::stream::BoxStream<'a, Result<StoredEvent, Error>> {
    opening(db, stream_rows(db, FILTERED_IN_COMMIT_ORDER, filter))
}

/// Every webhook config event, one aggregate after the other (by numeric
/// id), each in sequence order: what rebuilds and `--verify` fold.
pub fn stream_by_aggregate(
    db: &Db,
) -> futures_util::stream::BoxStream<'_, Result<StoredEvent, Error>> {
    static NO_FILTER: LogFilter = LogFilter {
        aggregate_id: None,
        since: None,
        until: None,
        event_type: None,
    };
    opening(db, stream_rows(db, BY_AGGREGATE, &NO_FILTER))
}

const FILTERED_IN_COMMIT_ORDER: &str = "SELECT position, aggregate_id, sequence, event_type, \
     event_version, CAST(payload AS TEXT) AS payload, CAST(metadata AS TEXT) AS metadata, \
     recorded_at FROM events WHERE aggregate_type = $1 AND ($2 IS NULL OR aggregate_id = $2) \
     AND ($3 IS NULL OR recorded_at >= $3) AND ($4 IS NULL OR recorded_at < $4) \
     AND ($5 IS NULL OR event_type = $5) ORDER BY position";

/// Binds the same five parameters (unused ones are NULL and match all).
const BY_AGGREGATE: &str = "SELECT position, aggregate_id, sequence, event_type, \
     event_version, CAST(payload AS TEXT) AS payload, CAST(metadata AS TEXT) AS metadata, \
     recorded_at FROM events WHERE aggregate_type = $1 AND ($2 IS NULL OR aggregate_id = $2) \
     AND ($3 IS NULL OR recorded_at >= $3) AND ($4 IS NULL OR recorded_at < $4) \
     AND ($5 IS NULL OR event_type = $5) ORDER BY CAST(aggregate_id AS BIGINT), sequence";

/// Decodes streamed rows and opens their secrets (see `vault`).
fn opening<'a>(
    db: &'a Db,
    rows: futures_util::stream::BoxStream<'a, Result<EventRow, sqlx::Error>>,
) -> futures_util::stream::BoxStream<'a, Result<StoredEvent, Error>> {
    use futures_util::StreamExt;
    let vault = crate::vault::of(db);
    rows.then(move |row| {
        let vault = vault.clone();
        async move {
            let mut event = StoredEvent::try_from(row?)?;
            vault
                .open_event(db, &event.aggregate_id, &mut event.payload)
                .await?;
            Ok(event)
        }
    })
    .boxed()
}

fn stream_rows<'a>(
    db: &'a Db,
    sql: &'static str,
    filter: &'a LogFilter,
) -> futures_util::stream::BoxStream<'a, Result<EventRow, sqlx::Error>> {
    use futures_util::StreamExt;
    on_pool!(db, |pool| sqlx::query_as::<_, EventRow>(sql)
        .bind(WebhookConfig::TYPE)
        .bind(filter.aggregate_id.as_deref())
        .bind(filter.since)
        .bind(filter.until)
        .bind(filter.event_type.as_deref())
        .fetch(pool)
        .boxed())
}

/// The head of the log: the highest position and the number of events.
pub async fn head(db: &Db) -> Result<(i64, i64), Error> {
    let sql = "SELECT COALESCE(MAX(position), 0), COUNT(*) FROM events WHERE aggregate_type = $1";
    Ok(on_pool!(db, |pool| sqlx::query_as(sql)
        .bind(WebhookConfig::TYPE)
        .fetch_one(pool)
        .await?))
}
