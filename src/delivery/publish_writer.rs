//! Committing publishes in batches: the events and all their delivery rows
//! of many concurrent publishes in one transaction (see
//! [`super::group_commit`] for why). An idempotency key seen before —
//! in an earlier transaction or earlier in the same batch — stores nothing
//! and answers the first event.
use super::store::{DeliveryKind, PendingDelivery, Published};
use super::wire::EventRecord;
use projections::db::now_micros;
use projections::{on_pool, Db, Error};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A new event and the configs it goes to.
pub struct NewEvent {
    pub organisation: i64,
    pub idempotency_key: Option<String>,
    pub event_type: String,
    pub data: Arc<Value>,
    pub key_id: Option<i64>,
    pub kind: DeliveryKind,
    pub task_id: Option<String>,
    /// Distinct config ids.
    pub targets: Vec<i64>,
}

/// 7 parameters an event row and 6 a delivery row: far below both
/// backends' parameter limits.
const ROWS_PER_STATEMENT: usize = 500;

const FIND_FIRST: &str = "SELECT e.id, e.event_type, e.data, e.published_at, \
    (SELECT COUNT(*) FROM deliveries d WHERE d.event_id = e.id) AS deliveries \
    FROM published_events e WHERE e.organisation = $1 AND e.idempotency_key = $2";

pub async fn write_publishes(db: &Db, batch: &[NewEvent]) -> Result<Vec<Published>, Error> {
    let now = now_micros();
    let events: Vec<EventRecord> = batch
        .iter()
        .map(|new| EventRecord {
            id: uuid::Uuid::new_v4().to_string(),
            event_type: new.event_type.clone(),
            data: new.data.clone(),
            published_at: now,
        })
        .collect();
    let bodies: Vec<String> = batch
        .iter()
        .map(|new| serde_json::to_string(&*new.data).expect("JSON values serialize"))
        .collect();
    // Inserted in idempotency-key order: concurrent batches that share keys
    // then take the unique index's locks in the same order (no deadlock).
    let mut rows: Vec<usize> = (0..batch.len()).collect();
    rows.sort_by(|&a, &b| {
        let key = |i: usize| (batch[i].organisation, batch[i].idempotency_key.as_deref());
        key(a).cmp(&key(b))
    });
    on_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        let mut inserted: HashSet<String> = HashSet::new();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO published_events (id, organisation, idempotency_key, event_type, \
                 data, published_at, key_id) ",
            );
            insert.push_values(chunk, |mut row, &i| {
                let new = &batch[i];
                row.push_bind(events[i].id.clone())
                    .push_bind(new.organisation)
                    .push_bind(new.idempotency_key.clone())
                    .push_bind(new.event_type.clone())
                    .push_bind(bodies[i].clone())
                    .push_bind(now)
                    .push_bind(new.key_id);
            });
            insert.push(" ON CONFLICT (organisation, idempotency_key) DO NOTHING RETURNING id");
            let ids: Vec<String> = insert.build_query_scalar().fetch_all(&mut *tx).await?;
            inserted.extend(ids);
        }
        let delivery_rows: Vec<(usize, i64)> = rows
            .iter()
            .filter(|&&i| inserted.contains(&events[i].id))
            .flat_map(|&i| batch[i].targets.iter().map(move |&config| (i, config)))
            .collect();
        // Rows come back in no promised order: match them by (event, config).
        let batch_index: HashMap<&str, usize> = events
            .iter()
            .enumerate()
            .map(|(i, event)| (event.id.as_str(), i))
            .collect();
        let mut delivery_ids: HashMap<(usize, i64), i64> = HashMap::new();
        for chunk in delivery_rows.chunks(ROWS_PER_STATEMENT) {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO deliveries (event_id, config_id, organisation, kind, task_id, \
                 status, attempts, next_attempt_at, created_at, updated_at) ",
            );
            insert.push_values(chunk, |mut row, &(i, config)| {
                let new = &batch[i];
                row.push_bind(events[i].id.clone())
                    .push_bind(config)
                    .push_bind(new.organisation)
                    .push_bind(new.kind.as_str())
                    .push_bind(new.task_id.clone())
                    .push_bind("pending")
                    .push_bind(0_i64)
                    .push_bind(now)
                    .push_bind(now)
                    .push_bind(now);
            });
            insert.push(" RETURNING id, event_id, config_id");
            let created: Vec<(i64, String, i64)> =
                insert.build_query_as().fetch_all(&mut *tx).await?;
            for (id, event_id, config) in created {
                if let Some(&i) = batch_index.get(event_id.as_str()) {
                    delivery_ids.insert((i, config), id);
                }
            }
        }
        let mut published = Vec::with_capacity(batch.len());
        for (i, new) in batch.iter().enumerate() {
            let event = &events[i];
            if inserted.contains(&event.id) {
                let deliveries = new
                    .targets
                    .iter()
                    .map(|&config_id| {
                        let id = delivery_ids.get(&(i, config_id)).ok_or_else(|| {
                            Error::Corrupt(format!(
                                "no delivery row came back for event {} and config {config_id}",
                                event.id
                            ))
                        })?;
                        Ok(PendingDelivery {
                            id: *id,
                            config_id,
                            kind: new.kind,
                            task_id: new.task_id.clone(),
                            attempts: 0,
                            next_attempt_at: now,
                            event: event.clone(),
                        })
                    })
                    .collect::<Result<Vec<_>, Error>>()?;
                published.push(Published {
                    delivery_count: deliveries.len() as i64,
                    event: event.clone(),
                    deliveries,
                    duplicate: false,
                });
            } else {
                let (id, event_type, data, published_at, count): (
                    String,
                    String,
                    String,
                    i64,
                    i64,
                ) = sqlx::query_as(FIND_FIRST)
                    .bind(new.organisation)
                    .bind(new.idempotency_key.as_deref())
                    .fetch_one(&mut *tx)
                    .await?;
                published.push(Published {
                    event: EventRecord {
                        id,
                        event_type,
                        data: Arc::new(serde_json::from_str(&data).unwrap_or(Value::Null)),
                        published_at,
                    },
                    deliveries: Vec::new(),
                    duplicate: true,
                    delivery_count: count,
                });
            }
        }
        tx.commit().await?;
        Ok(published)
    })
}
