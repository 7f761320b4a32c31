//! Reading the event log ourselves, one aggregate at a time, in sequence order.
use crate::db::{Db, Error};
use crate::on_pool;
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
        serde_json::from_value(self.payload.clone()).map_err(|e| {
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
    rows.into_iter().map(StoredEvent::try_from).collect()
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
