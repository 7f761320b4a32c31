//! Retention: deliveries created more than `--retention` ago that have
//! ended, their attempts, and published events older than that with no
//! delivery still pending are deleted in small batches in the background,
//! so the delivery tables stop growing under steady load. The event log
//! (config history) and the admin log are never touched.
//!
//! Deliveries are walked in id order, which is creation order: the pass
//! stops at the first one newer than the cutoff, so it reads only the old
//! prefix of the table (and the few old ones still pending, which stay).
//! Each batch is its own short transaction with a pause after it, so
//! deletes never hold the tables for long. On PostgreSQL one node at a time
//! runs a pass (an advisory lock); the others skip theirs, and a pass that
//! deleted rows ends with a plain `VACUUM` of the three tables so that
//! their space is used again — webhookd does not count on autovacuum being
//! on (it is off on some servers, and then the files grow though the rows
//! do not). SQLite reuses freed pages by itself.
use super::store::id_list;
use crate::db::database_now_micros;
use crate::{on_pool, Db, Error};
use std::time::Duration;

/// Rows per delete statement.
const BATCH: i64 = 500;
/// A breath between batches for the hot path's transactions.
const PAUSE: Duration = Duration::from_millis(5);
/// The advisory lock of a retention pass (PostgreSQL).
const LOCK_KEY: i64 = 0x7765_6268_6f6f_6b72; // "webhookr"

/// What one pass deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Deleted {
    pub deliveries: u64,
    pub attempts: u64,
    pub events: u64,
}

/// How often the background task runs a pass: a tenth of the retention
/// (so that nothing outlives it by much more), between 1 s and 1 min.
pub fn interval_for(retention: Duration) -> Duration {
    (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// Runs a pass every [`interval_for`] `retention`, for the life of the process.
pub fn spawn(db: Db, retention: Duration) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval_for(retention));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match run_pass(&db, retention).await {
                Ok(deleted) if deleted != Deleted::default() => {
                    tracing::info!(
                        deliveries = deleted.deliveries,
                        attempts = deleted.attempts,
                        events = deleted.events,
                        "retention pass deleted old deliveries"
                    );
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "retention pass failed; next time again"),
            }
        }
    });
}

/// One pass: everything older than `retention` that may go, in batches.
/// Another node's pass running at the same time (PostgreSQL): nothing.
pub async fn run_pass(db: &Db, retention: Duration) -> Result<Deleted, Error> {
    // By the database's clock: a node (or a `retention run`) whose clock
    // is ahead must not delete what is younger than `retention`.
    let now = database_now_micros(db).await?;
    let cutoff = now.saturating_sub(retention.as_micros().min(i64::MAX as u128) as i64);
    let Some(_lock) = PassLock::take(db).await? else {
        return Ok(Deleted::default());
    };
    let mut deleted = Deleted::default();
    let mut after = 0_i64;
    loop {
        let (ids, next, done) = old_finished_deliveries(db, cutoff, after).await?;
        if !ids.is_empty() {
            let (deliveries, attempts) = delete_deliveries(db, &ids).await?;
            deleted.deliveries += deliveries;
            deleted.attempts += attempts;
        }
        if done {
            break;
        }
        after = next;
        tokio::time::sleep(PAUSE).await;
    }
    loop {
        let events = delete_old_events(db, cutoff).await?;
        deleted.events += events;
        if events < BATCH as u64 {
            break;
        }
        tokio::time::sleep(PAUSE).await;
    }
    // The Svix dialect's idempotency keys (a day) and the channels of
    // the messages just deleted.
    crate::svix::expire(db, now).await?;
    if deleted != Deleted::default() {
        if let Db::Postgres(pool) = db {
            // Not in a transaction (VACUUM refuses one); it takes no lock
            // that blocks reads or writes.
            sqlx::query("VACUUM deliveries, delivery_attempts, published_events")
                .execute(pool)
                .await?;
        }
    }
    Ok(deleted)
}

/// The ids, after `after`, of ended deliveries created before `cutoff`;
/// the last id read; and whether the walk reached the cutoff (or the end).
async fn old_finished_deliveries(
    db: &Db,
    cutoff: i64,
    after: i64,
) -> Result<(Vec<i64>, i64, bool), Error> {
    let rows: Vec<(i64, i64, String)> = on_pool!(db, |pool| sqlx::query_as(
        "SELECT id, created_at, status FROM deliveries WHERE id > $1 ORDER BY id LIMIT $2"
    )
    .bind(after)
    .bind(BATCH)
    .fetch_all(pool)
    .await?);
    let mut ids = Vec::with_capacity(rows.len());
    let mut last = after;
    for (id, created_at, status) in &rows {
        if *created_at >= cutoff {
            return Ok((ids, last, true));
        }
        last = *id;
        if status != "pending" {
            ids.push(*id);
        }
    }
    Ok((ids, last, rows.len() < BATCH as usize))
}

/// Deletes the deliveries and their attempts in one transaction.
async fn delete_deliveries(db: &Db, ids: &[i64]) -> Result<(u64, u64), Error> {
    let list = id_list(ids);
    Ok(on_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        let attempts = sqlx::query(&format!(
            "DELETE FROM delivery_attempts WHERE delivery_id IN ({list})"
        ))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let deliveries = sqlx::query(&format!(
            "DELETE FROM deliveries WHERE id IN ({list}) AND status <> 'pending'"
        ))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        (deliveries, attempts)
    }))
}

/// Published events before `cutoff` with no delivery still pending (their
/// ended deliveries are gone by now): at most one batch.
async fn delete_old_events(db: &Db, cutoff: i64) -> Result<u64, Error> {
    let sql = "DELETE FROM published_events WHERE id IN ( \
        SELECT e.id FROM published_events e WHERE e.published_at < $1 \
          AND NOT EXISTS (SELECT 1 FROM deliveries d \
                          WHERE d.status = 'pending' AND d.event_id = e.id) \
        ORDER BY e.published_at LIMIT $2)";
    Ok(on_pool!(db, |pool| sqlx::query(sql)
        .bind(cutoff)
        .bind(BATCH)
        .execute(pool)
        .await?
        .rows_affected()))
}

/// A session-level advisory lock held on its own connection for a pass
/// (PostgreSQL); SQLite has one node and needs none.
struct PassLock {
    _connection: Option<sqlx::pool::PoolConnection<sqlx::Postgres>>,
}

impl PassLock {
    async fn take(db: &Db) -> Result<Option<Self>, Error> {
        match db {
            Db::Sqlite(_) => Ok(Some(Self { _connection: None })),
            Db::Postgres(pool) => {
                let mut connection = pool.acquire().await?;
                let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(LOCK_KEY)
                    .fetch_one(&mut *connection)
                    .await?;
                // A session lock outlives the connection's return to the
                // pool: it is unlocked explicitly when the pass ends.
                Ok(taken.then_some(Self {
                    _connection: Some(connection),
                }))
            }
        }
    }
}

impl Drop for PassLock {
    fn drop(&mut self) {
        if let Some(mut connection) = self._connection.take() {
            tokio::spawn(async move {
                let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(LOCK_KEY)
                    .execute(&mut *connection)
                    .await;
            });
        }
    }
}
