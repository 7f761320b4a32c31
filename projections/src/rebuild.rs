//! Rebuilding the config read model from the log, while the API keeps
//! answering: folds go into shadow tables; one transaction then replaces the
//! live rows with them (readers see the old rows or the new, never a gap).
use crate::db::{Db, Error};
use crate::event_log::{fold_config, head, stream_by_aggregate, StoredEvent};
use crate::on_pool;
use crate::webhook_configs::{write_batch, ConfigProjector, Tables, LIVE, ROWS_BEHIND_THE_LOG};
use aggregates::webhook_config::WebhookConfig;
use cqrs_es::Aggregate;
use futures_util::StreamExt;
use std::time::{Duration, Instant};

const SHADOW: Tables = Tables {
    configs: "webhook_configs_shadow",
    subscriptions: "webhook_config_subscriptions_shadow",
};
const BATCH: usize = 5000;

/// The projections `rebuild` knows.
pub const PROJECTIONS: [&str; 1] = ["webhook_configs"];

#[derive(Debug, Clone, Copy)]
pub struct RebuildReport {
    pub events: u64,
    pub configs: u64,
    pub elapsed: Duration,
}

impl RebuildReport {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Rebuilds `webhook_configs` (and its subscription index) from the log.
/// `progress(done, total)` is called as events are folded. Fails, swapping
/// nothing, when the log cannot be read to its end.
pub async fn rebuild_webhook_configs(
    db: &Db,
    mut progress: impl FnMut(u64, u64),
) -> Result<RebuildReport, Error> {
    let started = Instant::now();
    let (_, total) = head(db).await?;
    let total = total as u64;
    create_shadow(db).await?;
    let mut events = 0u64;
    let mut configs = 0u64;
    let mut batch = Vec::with_capacity(BATCH);
    let mut current: Vec<StoredEvent> = Vec::new();
    let mut stream = stream_by_aggregate(db);
    while let Some(event) = stream.next().await {
        let event = event?;
        if current
            .first()
            .is_some_and(|first| first.aggregate_id != event.aggregate_id)
        {
            batch.extend(fold_config(&current)?);
            configs += 1;
            current.clear();
            if batch.len() >= BATCH {
                write_batch(db, SHADOW, &batch).await?;
                batch.clear();
            }
        }
        current.push(event);
        events += 1;
        if events.is_multiple_of(10_000) {
            progress(events, total);
        }
    }
    drop(stream);
    if !current.is_empty() {
        batch.extend(fold_config(&current)?);
        configs += 1;
    }
    write_batch(db, SHADOW, &batch).await?;
    if events < total {
        return Err(Error::Corrupt(format!(
            "read {events} of the {total} events in the log; nothing was replaced"
        )));
    }
    progress(events, total);
    swap_in(db).await?;
    // Commands committed while the rebuild ran are folded in now.
    ConfigProjector::new(db.clone()).catch_up_all().await?;
    Ok(RebuildReport {
        events,
        configs,
        elapsed: started.elapsed(),
    })
}

async fn create_shadow(db: &Db) -> Result<(), Error> {
    let statements = [
        format!("DROP TABLE IF EXISTS {}", SHADOW.configs),
        format!("DROP TABLE IF EXISTS {}", SHADOW.subscriptions),
        // Same columns, no rows (and no defaults: writers set every column).
        format!(
            "CREATE TABLE {} AS SELECT * FROM {} WHERE 1 = 0",
            SHADOW.configs, LIVE.configs
        ),
        format!(
            "CREATE TABLE {} AS SELECT * FROM {} WHERE 1 = 0",
            SHADOW.subscriptions, LIVE.subscriptions
        ),
    ];
    on_pool!(db, |pool| {
        for statement in &statements {
            sqlx::query(statement).execute(pool).await?;
        }
    });
    Ok(())
}

/// One transaction: keep the delivery statistics (they are not in the log),
/// replace the live rows with the shadow's, drop the shadow.
async fn swap_in(db: &Db) -> Result<(), Error> {
    let (shadow, live) = (SHADOW.configs, LIVE.configs);
    let stats = "last_triggered_at, last_success_at, last_failure_at, failure_count, failing_since";
    let keep_stats = vec![format!(
        "UPDATE {shadow} SET ({stats}) = \
         (SELECT {stats} FROM {live} l WHERE l.id = {shadow}.id) \
         WHERE EXISTS (SELECT 1 FROM {live} l WHERE l.id = {shadow}.id)"
    )];
    let statements: Vec<String> = keep_stats
        .into_iter()
        .chain([
            format!("DELETE FROM {live}"),
            format!("INSERT INTO {live} SELECT * FROM {shadow}"),
            format!("DELETE FROM {}", LIVE.subscriptions),
            format!(
                "INSERT INTO {} SELECT * FROM {}",
                LIVE.subscriptions, SHADOW.subscriptions
            ),
            format!("DROP TABLE {shadow}"),
            format!("DROP TABLE {}", SHADOW.subscriptions),
        ])
        .collect();
    on_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        for statement in &statements {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

/// How far a projection is behind the log.
#[derive(Debug, Clone, Copy)]
pub struct ProjectionStatus {
    pub rows: i64,
    pub head_position: i64,
    pub events: i64,
    pub rows_behind: i64,
}

pub async fn status(db: &Db) -> Result<ProjectionStatus, Error> {
    let (head_position, events) = head(db).await?;
    let rows_sql = "SELECT COUNT(*) FROM webhook_configs";
    let behind_sql = format!("SELECT COUNT(*) FROM {ROWS_BEHIND_THE_LOG}");
    let (rows, rows_behind): (i64, i64) = on_pool!(db, |pool| (
        sqlx::query_scalar(rows_sql).fetch_one(pool).await?,
        sqlx::query_scalar(&behind_sql)
            .bind(WebhookConfig::TYPE)
            .fetch_one(pool)
            .await?
    ));
    Ok(ProjectionStatus {
        rows,
        head_position,
        events,
        rows_behind,
    })
}
