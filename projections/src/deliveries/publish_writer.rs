//! Committing publishes in batches: the events and all their delivery rows
//! of many concurrent publishes in one transaction (see
//! [`super::group_commit`] for why). An idempotency key seen before —
//! in an earlier transaction or earlier in the same batch — stores nothing
//! and answers the first event.
//!
//! PostgreSQL writes a batch as one statement of fixed text over arrays
//! (`UNNEST`): it is prepared once per connection, needs no `BEGIN` or
//! `COMMIT` round trip, and its plan is cached. Multi-row `VALUES`, whose
//! text changes with the batch size, were parsed and planned almost every
//! time (the profile: ~20 % of PostgreSQL's CPU in parse and plan, and
//! four to six round trips per batch). SQLite runs in-process on the
//! writer thread (see [`super::sqlite_thread`]): there a batch is one
//! transaction of prepared one-row statements, each a function call.
//!
//! A delivery to a FIFO config takes the config's next place
//! (`fifo_seq`, see `endpoint::fifo`) from `fifo_sequences` in the same
//! transaction: the row stays locked until the batch commits, so a
//! concurrent batch to the same config waits and takes the places after
//! it — the places of a config follow the commit order, without gaps (a
//! batch that rolls back gives its places back). Only batches with a FIFO
//! target pay for this.
use super::store::{Published, Target};
use super::{stored_event_data, DeliveryKind, EventData, EventRecord, PendingDelivery};
use crate::db::now_micros;
use crate::Error;
use foldhash::{HashMap, HashMapExt, HashSet};
use rusqlite::{params, OptionalExtension};
use sqlx::PgConnection;
use std::sync::Arc;

/// A new event and the configs it goes to.
pub struct NewEvent {
    pub organisation: i64,
    pub idempotency_key: Option<String>,
    pub event_type: String,
    pub data: EventData,
    pub key_id: Option<i64>,
    pub kind: DeliveryKind,
    pub task_id: Option<String>,
    /// Distinct configs.
    pub targets: Vec<Target>,
}

/// The first event of an idempotency key and how many deliveries it made:
/// stored on the event since migration 0018, counted for older events.
const FIND_FIRST: &str = "SELECT e.id, e.event_type, e.data, e.published_at, \
    COALESCE(e.delivery_count, \
        (SELECT COUNT(*) FROM deliveries d WHERE d.event_id = e.id)) AS deliveries \
    FROM published_events e WHERE e.organisation = $1 AND e.idempotency_key = $2";

/// What the insert statements stored: the events that were new (by id)
/// and the delivery row id and FIFO place of each (batch index, config).
#[derive(Default)]
struct Written {
    inserted: HashSet<String>,
    delivery_ids: HashMap<(usize, i64), (i64, Option<i64>)>,
}

impl Written {
    /// A delivery row came back (rows come back in no promised order).
    fn delivery(
        &mut self,
        index: &HashMap<&str, usize>,
        event_id: &str,
        config: i64,
        id: i64,
        place: Option<i64>,
    ) {
        if let Some(&i) = index.get(event_id) {
            self.delivery_ids.insert((i, config), (id, place));
        }
    }
}

/// The rows of one batch, ready to bind: one event per publish, inserted in
/// idempotency-key order (concurrent batches that share keys then take the
/// unique index's locks in the same order: no deadlock).
struct Rows<'a> {
    batch: &'a [NewEvent],
    /// Shared with every delivery of the event (and its answer).
    events: Vec<Arc<EventRecord>>,
    /// The events' data as the statements bind it (borrowed, not copied).
    bodies: Vec<&'a str>,
    order: Vec<usize>,
    now: i64,
}

impl<'a> Rows<'a> {
    fn new(batch: &'a [NewEvent]) -> Self {
        let now = now_micros();
        let events = batch
            .iter()
            .map(|new| {
                Arc::new(EventRecord {
                    id: uuid::Uuid::now_v7().to_string(),
                    event_type: new.event_type.clone(),
                    data: new.data.clone(),
                    published_at: now,
                })
            })
            .collect();
        let bodies = batch.iter().map(|new| new.data.get()).collect();
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.sort_by(|&a, &b| {
            let key = |i: usize| (batch[i].organisation, batch[i].idempotency_key.as_deref());
            key(a).cmp(&key(b))
        });
        Self {
            batch,
            events,
            bodies,
            order,
            now,
        }
    }

    /// Batch index of each event id (rows come back in no promised order).
    fn index(&self) -> HashMap<&str, usize> {
        self.events
            .iter()
            .enumerate()
            .map(|(i, event)| (event.id.as_str(), i))
            .collect()
    }

    /// Batch indexes of the publishes whose idempotency key was stored
    /// before (each is answered with the first event, read by the caller).
    fn duplicates(&self, written: &Written) -> Vec<usize> {
        (0..self.batch.len())
            .filter(|&i| !written.inserted.contains(&self.events[i].id))
            .collect()
    }

    /// Every publish's answer, in batch order, given the first events of
    /// the duplicates (by batch index).
    fn answers(
        &self,
        written: &Written,
        mut firsts: HashMap<usize, FirstEvent>,
    ) -> Result<Vec<Published>, Error> {
        (0..self.batch.len())
            .map(|i| match firsts.remove(&i) {
                Some(first) => duplicate_of(first),
                None => self.stored(i, written),
            })
            .collect()
    }

    /// The answer for publish `i` once its event is stored.
    fn stored(&self, i: usize, written: &Written) -> Result<Published, Error> {
        let (new, event) = (&self.batch[i], &self.events[i]);
        let deliveries = new
            .targets
            .iter()
            .map(|&Target { config_id, .. }| {
                let (id, place) =
                    written
                        .delivery_ids
                        .get(&(i, config_id.get()))
                        .ok_or_else(|| {
                            Error::Corrupt(format!(
                                "no delivery row came back for event {} and config {config_id}",
                                event.id
                            ))
                        })?;
                Ok(PendingDelivery {
                    id: *id,
                    fifo_seq: *place,
                    config_id,
                    kind: new.kind,
                    task_id: new.task_id.clone(),
                    attempts: 0,
                    next_attempt_at: self.now,
                    event: event.clone(),
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Published {
            delivery_count: deliveries.len() as i64,
            event: event.clone(),
            deliveries,
            duplicate: false,
        })
    }
}

/// The stored event an idempotency key names: (id, type, data, published
/// at, deliveries).
type FirstEvent = (String, String, String, i64, i64);

fn duplicate_of(
    (id, event_type, data, published_at, count): FirstEvent,
) -> Result<Published, Error> {
    Ok(Published {
        event: Arc::new(EventRecord {
            data: stored_event_data(&id, data)?,
            id,
            event_type,
            published_at,
        }),
        deliveries: Vec::new(),
        duplicate: true,
        delivery_count: count,
    })
}

/// Writes a batch on PostgreSQL, on a connection of the writers' (see
/// [`super::writers`]; an empty batch readies it: `Writers::warm_up`).
pub(super) async fn postgres_on(
    connection: &mut PgConnection,
    batch: &[NewEvent],
) -> Result<Vec<Published>, Error> {
    write_postgres(connection, &Rows::new(batch)).await
}

/// Writes a batch on SQLite, on its writer thread (see [`super::writers`]).
pub(super) fn sqlite(
    db: &rusqlite::Connection,
    batch: &[NewEvent],
) -> Result<Vec<Published>, Error> {
    write_sqlite(db, &Rows::new(batch))
}

/// The events of a batch (`$1`…`$7` and their delivery counts `$13`), the
/// ones stored returned as `ev`:
/// how both PostgreSQL statements begin.
macro_rules! insert_events_as_ev {
    () => {
        "WITH ev AS ( \
            INSERT INTO published_events (id, organisation, idempotency_key, event_type, data, \
                published_at, key_id, delivery_count) \
            SELECT id, organisation, idempotency_key, event_type, data, $6, key_id, \
                delivery_count \
            FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], \
                $7::bigint[], $13::bigint[]) \
                AS i (id, organisation, idempotency_key, event_type, data, key_id, \
                    delivery_count) \
            ON CONFLICT (organisation, idempotency_key) WHERE idempotency_key IS NOT NULL \
             DO NOTHING \
            RETURNING id \
        ) "
    };
}

const POSTGRES_PUBLISH: &str = concat!(
    insert_events_as_ev!(),
    ", d AS ( \
        INSERT INTO deliveries (event_id, config_id, organisation, kind, task_id, status, \
            attempts, next_attempt_at, created_at, updated_at) \
        SELECT t.event_id, t.config_id, t.organisation, t.kind, t.task_id, 'pending', 0, \
            $6, $6, $6 \
        FROM UNNEST($8::text[], $9::bigint[], $10::bigint[], $11::text[], $12::text[]) \
            AS t (event_id, config_id, organisation, kind, task_id) \
        WHERE t.event_id IN (SELECT id FROM ev) \
        RETURNING id, event_id, config_id \
    ) \
    SELECT id, NULL::bigint, NULL::bigint, NULL::bigint FROM ev \
    UNION ALL SELECT event_id, id, config_id, NULL::bigint FROM d"
);

/// A row the PostgreSQL statements return: an event id alone (a stored
/// event), or an event id with a delivery id, its config and its FIFO
/// place.
type ReturnedRow = (String, Option<i64>, Option<i64>, Option<i64>);

/// [`POSTGRES_PUBLISH`] for a batch with a FIFO target: `places` takes
/// each FIFO config's places (in config order, so that two batches lock
/// their rows in the same order: no deadlock), and each of its deliveries
/// gets one, in batch order.
const POSTGRES_PUBLISH_FIFO: &str = concat!(
    insert_events_as_ev!(),
    ", t AS ( \
        SELECT * FROM UNNEST($8::text[], $9::bigint[], $10::bigint[], $11::text[], \
            $12::text[], $14::bool[]) WITH ORDINALITY \
            AS t (event_id, config_id, organisation, kind, task_id, fifo, n) \
        WHERE t.event_id IN (SELECT id FROM ev) \
    ), places AS ( \
        INSERT INTO fifo_sequences AS f (config_id, last_seq) \
        SELECT config_id, COUNT(*) FROM t WHERE fifo GROUP BY config_id ORDER BY config_id \
        ON CONFLICT (config_id) DO UPDATE SET last_seq = f.last_seq + excluded.last_seq \
        RETURNING config_id, last_seq \
    ), d AS ( \
        INSERT INTO deliveries (event_id, config_id, organisation, kind, task_id, status, \
            attempts, next_attempt_at, created_at, updated_at, fifo_seq) \
        SELECT t.event_id, t.config_id, t.organisation, t.kind, t.task_id, 'pending', 0, \
            $6, $6, $6, \
            CASE WHEN t.fifo THEN p.last_seq - COUNT(*) OVER w + ROW_NUMBER() OVER (w ORDER BY t.n) \
            END \
        FROM t LEFT JOIN places p ON p.config_id = t.config_id AND t.fifo \
        WINDOW w AS (PARTITION BY t.config_id, t.fifo) \
        RETURNING id, event_id, config_id, fifo_seq \
    ) \
    SELECT id, NULL::bigint, NULL::bigint, NULL::bigint FROM ev \
    UNION ALL SELECT event_id, id, config_id, fifo_seq FROM d"
);

/// One statement, its own transaction: every event and delivery of the
/// batch, or nothing.
async fn write_postgres(
    connection: &mut PgConnection,
    rows: &Rows<'_>,
) -> Result<Vec<Published>, Error> {
    let (batch, events) = (rows.batch, &rows.events);
    // One array per column, events in idempotency-key order; strings are
    // bound borrowed (sqlx copies them into the message once).
    let mut ids = Vec::with_capacity(batch.len());
    let mut organisations = Vec::with_capacity(batch.len());
    let mut keys = Vec::with_capacity(batch.len());
    let mut types = Vec::with_capacity(batch.len());
    let mut bodies = Vec::with_capacity(batch.len());
    let mut key_ids = Vec::with_capacity(batch.len());
    let mut counts = Vec::with_capacity(batch.len());
    // One row per (event, config); only the stored events' rows are kept.
    let mut target_events = Vec::new();
    let mut target_configs = Vec::new();
    let mut target_organisations = Vec::new();
    let mut target_kinds = Vec::new();
    let mut target_tasks = Vec::new();
    let mut target_fifo = Vec::new();
    for &i in &rows.order {
        let new = &batch[i];
        ids.push(events[i].id.as_str());
        organisations.push(new.organisation);
        keys.push(new.idempotency_key.as_deref());
        types.push(new.event_type.as_str());
        bodies.push(rows.bodies[i]);
        key_ids.push(new.key_id);
        counts.push(new.targets.len() as i64);
        for target in &new.targets {
            target_events.push(events[i].id.as_str());
            target_configs.push(target.config_id.get());
            target_fifo.push(target.fifo);
            target_organisations.push(new.organisation);
            target_kinds.push(new.kind.as_str());
            target_tasks.push(new.task_id.as_deref());
        }
    }
    let fifo = target_fifo.contains(&true);
    let statement = if fifo {
        POSTGRES_PUBLISH_FIFO
    } else {
        POSTGRES_PUBLISH
    };
    let query = sqlx::query_as(statement)
        .bind(ids)
        .bind(organisations)
        .bind(keys)
        .bind(types)
        .bind(bodies)
        .bind(rows.now)
        .bind(key_ids)
        .bind(target_events)
        .bind(target_configs)
        .bind(target_organisations)
        .bind(target_kinds)
        .bind(target_tasks);
    let query = query.bind(counts);
    let query = if fifo { query.bind(target_fifo) } else { query };
    let returned: Vec<ReturnedRow> = query.fetch_all(&mut *connection).await?;
    let index = rows.index();
    let mut written = Written::default();
    for (event_id, delivery, config, place) in returned {
        match (delivery, config) {
            (Some(delivery), Some(config)) => {
                written.delivery(&index, &event_id, config, delivery, place);
            }
            _ => {
                written.inserted.insert(event_id);
            }
        }
    }
    let mut firsts = HashMap::new();
    for i in rows.duplicates(&written) {
        // The first event is committed: `ON CONFLICT` waited for it.
        let first = sqlx::query_as(FIND_FIRST)
            .bind(batch[i].organisation)
            .bind(batch[i].idempotency_key.as_deref())
            .fetch_one(&mut *connection)
            .await?;
        firsts.insert(i, first);
    }
    rows.answers(&written, firsts)
}

/// One-row statements, in the writer thread's transaction: there a
/// statement is a function call, so nothing is gained by multi-row text
/// (which SQLite would parse again for every batch size).
fn write_sqlite(tx: &rusqlite::Connection, rows: &Rows<'_>) -> Result<Vec<Published>, Error> {
    let (batch, events) = (rows.batch, &rows.events);
    let mut written = Written::default();
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO published_events (id, organisation, idempotency_key, event_type, \
             data, published_at, key_id, delivery_count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT (organisation, idempotency_key) WHERE idempotency_key IS NOT NULL \
             DO NOTHING",
        )?;
        for &i in &rows.order {
            let new = &batch[i];
            let stored = insert.execute(params![
                events[i].id,
                new.organisation,
                new.idempotency_key,
                new.event_type,
                rows.bodies[i],
                rows.now,
                new.key_id,
                new.targets.len() as i64,
            ])?;
            if stored == 1 {
                written.inserted.insert(events[i].id.clone());
            }
        }
    }
    let delivery_rows: Vec<(usize, Target)> = rows
        .order
        .iter()
        .filter(|&&i| written.inserted.contains(&events[i].id))
        .flat_map(|&i| batch[i].targets.iter().map(move |&target| (i, target)))
        .collect();
    let places = take_fifo_places(tx, &delivery_rows)?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO deliveries (event_id, config_id, organisation, kind, task_id, \
             status, attempts, next_attempt_at, created_at, updated_at, fifo_seq) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?6, ?6, ?7)",
        )?;
        for &(i, target) in &delivery_rows {
            let new = &batch[i];
            let place = places.get(&(i, target.config_id.get())).copied();
            insert.execute(params![
                events[i].id,
                target.config_id.get(),
                new.organisation,
                new.kind.as_str(),
                new.task_id,
                rows.now,
                place,
            ])?;
            let id = tx.last_insert_rowid();
            written
                .delivery_ids
                .insert((i, target.config_id.get()), (id, place));
        }
    }
    let mut firsts = HashMap::new();
    {
        let mut find = tx.prepare_cached(FIND_FIRST)?;
        for i in rows.duplicates(&written) {
            let first = find
                .query_row(
                    params![batch[i].organisation, batch[i].idempotency_key],
                    |row| {
                        Ok((
                            row.get(0)?,
                            row.get(1)?,
                            row.get(2)?,
                            row.get(3)?,
                            row.get(4)?,
                        ))
                    },
                )
                .optional()?
                .ok_or_else(|| {
                    Error::Corrupt("a duplicate idempotency key has no first event".into())
                })?;
            firsts.insert(i, first);
        }
    }
    rows.answers(&written, firsts)
}

/// SQLite: the FIFO places of a batch's deliveries, by (batch index,
/// config), taken in its transaction (SQLite has one writer, so they follow
/// the commit order as on PostgreSQL).
fn take_fifo_places(
    tx: &rusqlite::Connection,
    delivery_rows: &[(usize, Target)],
) -> Result<HashMap<(usize, i64), i64>, Error> {
    let mut counts: std::collections::BTreeMap<i64, i64> = Default::default();
    for (_, target) in delivery_rows.iter().filter(|(_, target)| target.fifo) {
        *counts.entry(target.config_id.get()).or_default() += 1;
    }
    let mut next = HashMap::new();
    if !counts.is_empty() {
        let mut take = tx.prepare_cached(
            "INSERT INTO fifo_sequences (config_id, last_seq) VALUES (?1, ?2) \
             ON CONFLICT (config_id) DO UPDATE SET last_seq = last_seq + excluded.last_seq \
             RETURNING last_seq",
        )?;
        for (config_id, count) in counts {
            let last: i64 = take.query_row(params![config_id, count], |row| row.get(0))?;
            next.insert(config_id, last - count + 1);
        }
    }
    let mut places = HashMap::new();
    for &(i, target) in delivery_rows.iter().filter(|(_, target)| target.fifo) {
        let place = next
            .get_mut(&target.config_id.get())
            .expect("counted above");
        places.insert((i, target.config_id.get()), *place);
        *place += 1;
    }
    Ok(places)
}
