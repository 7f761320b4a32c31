//! Recording attempts in batches: the attempt rows, the deliveries' new
//! status and the configs' statistics of many attempts in one transaction
//! of three statements (see [`super::group_commit`] for why).
use super::store::{AttemptRecord, FailureRun, NextStep};
use super::{DeliveryKind, Fence};
use crate::Error;
use foldhash::{HashMap, HashMapExt};
use rusqlite::{params, OptionalExtension};
use sqlx::PgConnection;

/// One attempt and where its delivery goes next.
pub struct Outcome {
    pub delivery_id: i64,
    pub config_id: i64,
    pub kind: DeliveryKind,
    pub attempt: AttemptRecord,
    pub next: NextStep,
    /// The lease the attempt was made under (clustered PostgreSQL): the
    /// delivery moves only while that lease's epoch is current, so a node
    /// that lost the endpoint cannot overwrite what its new owner recorded.
    pub fence: Option<Fence>,
}

impl Outcome {
    fn status(&self) -> (&'static str, i64) {
        match self.next {
            NextStep::Succeeded => ("succeeded", self.attempt.attempted_at),
            NextStep::Failed => ("failed", self.attempt.attempted_at),
            NextStep::RetryAt(at) => ("pending", at),
        }
    }
}

/// A delivery's change in this batch: its last outcome and how many
/// attempts it made (more than one only when a restarted actor overlapped
/// a request still in flight).
struct DeliveryChange<'a> {
    last: &'a Outcome,
    attempts: i64,
}

/// A config's statistics change in this batch, in attempt order: a success
/// resets the failure run, failures after it extend it.
#[derive(Default)]
struct StatsChange {
    triggered_at: i64,
    success_at: Option<i64>,
    failure_at: Option<i64>,
    reset: bool,
    failures: i64,
    first_failure: Option<i64>,
}

impl StatsChange {
    fn add(&mut self, attempt: &AttemptRecord) {
        let at = attempt.attempted_at;
        self.triggered_at = self.triggered_at.max(at);
        if attempt.success {
            self.success_at = Some(self.success_at.map_or(at, |s| s.max(at)));
            self.reset = true;
            self.failures = 0;
            self.first_failure = None;
        } else {
            self.failure_at = Some(self.failure_at.map_or(at, |f| f.max(at)));
            self.failures += 1;
            self.first_failure.get_or_insert(at);
        }
    }
}

/// Writes a batch on PostgreSQL, on a connection of the writers' (see
/// [`super::writers`]; an empty batch readies it: `Writers::warm_up`);
/// answers each outcome with its config's failure run after the batch
/// (tests do not count: theirs is a default run).
pub(super) async fn postgres_on(
    connection: &mut PgConnection,
    batch: &[Outcome],
) -> Result<Vec<FailureRun>, Error> {
    let (deliveries, stats) = changes_of(batch);
    let runs = write_postgres(connection, batch, &deliveries, &stats).await?;
    Ok(runs_of(batch, &runs))
}

/// Writes a batch on SQLite, on its writer thread (see [`postgres`]).
pub(super) fn sqlite(
    db: &rusqlite::Connection,
    batch: &[Outcome],
) -> Result<Vec<FailureRun>, Error> {
    let (deliveries, stats) = changes_of(batch);
    let runs = write_sqlite(db, batch, &deliveries, &stats)?;
    Ok(runs_of(batch, &runs))
}

/// A batch's changes: one per delivery (its last outcome and how many
/// attempts), one per config's statistics.
#[allow(clippy::type_complexity)]
fn changes_of(batch: &[Outcome]) -> (Vec<(i64, DeliveryChange<'_>)>, Vec<(i64, StatsChange)>) {
    let mut deliveries: Vec<(i64, DeliveryChange)> = Vec::with_capacity(batch.len());
    let mut delivery_index: HashMap<i64, usize> = HashMap::with_capacity(batch.len());
    let mut stats: Vec<(i64, StatsChange)> = Vec::new();
    let mut stats_index: HashMap<i64, usize> = HashMap::new();
    for outcome in batch {
        match delivery_index.get(&outcome.delivery_id) {
            Some(&i) => {
                deliveries[i].1.last = outcome;
                deliveries[i].1.attempts += 1;
            }
            None => {
                delivery_index.insert(outcome.delivery_id, deliveries.len());
                deliveries.push((
                    outcome.delivery_id,
                    DeliveryChange {
                        last: outcome,
                        attempts: 1,
                    },
                ));
            }
        }
        if outcome.kind == DeliveryKind::Event {
            let i = *stats_index.entry(outcome.config_id).or_insert_with(|| {
                stats.push((outcome.config_id, StatsChange::default()));
                stats.len() - 1
            });
            stats[i].1.add(&outcome.attempt);
        }
    }
    (deliveries, stats)
}

/// Each outcome's failure run, from the runs the batch left.
fn runs_of(batch: &[Outcome], runs: &HashMap<i64, FailureRun>) -> Vec<FailureRun> {
    batch
        .iter()
        .map(|outcome| match outcome.kind {
            DeliveryKind::Event => runs.get(&outcome.config_id).copied(),
            DeliveryKind::Test => None,
        })
        .map(|run| {
            run.unwrap_or(FailureRun {
                consecutive_failures: 0,
                failing_since: None,
            })
        })
        .collect()
}

/// One-row statements in the writer thread's transaction (in-process,
/// each a function call; see `publish_writer::write_sqlite`).
fn write_sqlite(
    tx: &rusqlite::Connection,
    batch: &[Outcome],
    deliveries: &[(i64, DeliveryChange<'_>)],
    stats: &[(i64, StatsChange)],
) -> Result<HashMap<i64, FailureRun>, Error> {
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO delivery_attempts (delivery_id, attempted_at, duration_ms, \
             status_code, response_body, error, success) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for outcome in batch {
            let attempt = &outcome.attempt;
            insert.execute(params![
                outcome.delivery_id,
                attempt.attempted_at,
                attempt.duration_ms,
                attempt.status_code.map(i64::from),
                attempt.response_body,
                attempt.error,
                attempt.success,
            ])?;
        }
    }
    {
        let mut update = tx.prepare_cached(
            "UPDATE deliveries SET status = ?2, attempts = attempts + ?4, \
             next_attempt_at = ?3, last_status_code = ?5, last_error = ?6, updated_at = ?7 \
             WHERE id = ?1",
        )?;
        for (id, change) in deliveries {
            let (status, next_attempt_at) = change.last.status();
            let attempt = &change.last.attempt;
            update.execute(params![
                id,
                status,
                next_attempt_at,
                change.attempts,
                attempt.status_code.map(i64::from),
                attempt.error,
                attempt.attempted_at,
            ])?;
        }
    }
    let mut runs = HashMap::new();
    {
        let mut update = tx.prepare_cached(
            "UPDATE webhook_configs SET last_triggered_at = ?2, \
             last_success_at = COALESCE(?3, last_success_at), \
             last_failure_at = COALESCE(?4, last_failure_at), \
             failure_count = CASE WHEN ?5 THEN ?6 ELSE failure_count + ?6 END, \
             failing_since = CASE WHEN ?5 THEN ?7 ELSE COALESCE(failing_since, ?7) END \
             WHERE id = ?1 \
             RETURNING failure_count, failing_since",
        )?;
        for (id, change) in stats {
            let run = update
                .query_row(
                    params![
                        id,
                        change.triggered_at,
                        change.success_at,
                        change.failure_at,
                        change.reset,
                        change.failures,
                        change.first_failure,
                    ],
                    |row| {
                        Ok(FailureRun {
                            consecutive_failures: row.get(0)?,
                            failing_since: row.get(1)?,
                        })
                    },
                )
                .optional()?;
            if let Some(run) = run {
                runs.insert(*id, run);
            }
        }
    }
    Ok(runs)
}

/// A delivery's update is fenced by its lease (the partition still has
/// the epoch it was attempted under). The leases are read once per
/// statement, as a hashed set (`IN (SELECT …)`), not looked up per row: a
/// correlated `EXISTS` under the `OR` could not become a join, and on a
/// cluster, where every outcome carries a fence, it was one index lookup
/// per delivery (three nodes: the outcome statement's time −6 to −12 %).
const POSTGRES_OUTCOMES: &str = "WITH attempts AS ( \
        INSERT INTO delivery_attempts (delivery_id, attempted_at, duration_ms, status_code, \
            response_body, error, success) \
        SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], \
            $5::text[], $6::text[], $7::boolean[]) \
    ), delivered AS ( \
        UPDATE deliveries SET status = v.status, attempts = deliveries.attempts + v.attempts, \
            next_attempt_at = v.next_attempt_at, last_status_code = v.status_code, \
            last_error = v.error, updated_at = v.at \
        FROM UNNEST($8::bigint[], $9::text[], $10::bigint[], $11::bigint[], $12::bigint[], \
            $13::text[], $14::bigint[], $22::integer[], $23::bigint[]) \
            AS v (id, status, next_attempt_at, attempts, status_code, error, at, partition, epoch) \
        WHERE deliveries.id = v.id AND (v.epoch IS NULL OR (v.partition, v.epoch) IN ( \
            SELECT l.partition, l.epoch FROM partition_leases l)) \
    ), locked AS MATERIALIZED ( \
        SELECT id FROM webhook_configs WHERE id = ANY($15::bigint[]) ORDER BY id FOR UPDATE \
    ) \
    UPDATE webhook_configs SET last_triggered_at = v.triggered_at, \
        last_success_at = COALESCE(v.success_at, webhook_configs.last_success_at), \
        last_failure_at = COALESCE(v.failure_at, webhook_configs.last_failure_at), \
        failure_count = CASE WHEN v.reset THEN v.failures \
            ELSE webhook_configs.failure_count + v.failures END, \
        failing_since = CASE WHEN v.reset THEN v.first_failure \
            ELSE COALESCE(webhook_configs.failing_since, v.first_failure) END \
    FROM UNNEST($15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[], $19::boolean[], \
        $20::bigint[], $21::bigint[]) \
        AS v (id, triggered_at, success_at, failure_at, reset, failures, first_failure) \
    WHERE webhook_configs.id = v.id AND webhook_configs.id IN (SELECT id FROM locked) \
    RETURNING webhook_configs.id, webhook_configs.failure_count, webhook_configs.failing_since";

/// One statement over arrays, its own transaction (see
/// [`super::publish_writer`] for why). Batches written at once — by a
/// cluster's nodes; one node has one outcome writer (see
/// `Writers::concurrency`) — lock the statistics rows they share in one
/// order, by id (`locked`): updated in join order, two writers' batches
/// deadlocked now and then (PostgreSQL's log, ten-endpoint runs), and the
/// loser waited out `deadlock_timeout` before its rewrite.
async fn write_postgres(
    connection: &mut PgConnection,
    batch: &[Outcome],
    deliveries: &[(i64, DeliveryChange<'_>)],
    stats: &[(i64, StatsChange)],
) -> Result<HashMap<i64, FailureRun>, Error> {
    let rows: Vec<(i64, i64, Option<i64>)> = sqlx::query_as(POSTGRES_OUTCOMES)
        .bind(column(batch, |o| o.delivery_id))
        .bind(column(batch, |o| o.attempt.attempted_at))
        .bind(column(batch, |o| o.attempt.duration_ms))
        .bind(column(batch, |o| o.attempt.status_code.map(i64::from)))
        .bind(column(batch, |o| o.attempt.response_body.as_deref()))
        .bind(column(batch, |o| o.attempt.error.as_deref()))
        .bind(column(batch, |o| o.attempt.success))
        .bind(column(deliveries, |(id, _)| *id))
        .bind(column(deliveries, |(_, c)| c.last.status().0))
        .bind(column(deliveries, |(_, c)| c.last.status().1))
        .bind(column(deliveries, |(_, c)| c.attempts))
        .bind(column(deliveries, |(_, c)| {
            c.last.attempt.status_code.map(i64::from)
        }))
        .bind(column(deliveries, |(_, c)| c.last.attempt.error.as_deref()))
        .bind(column(deliveries, |(_, c)| c.last.attempt.attempted_at))
        .bind(column(stats, |(id, _)| *id))
        .bind(column(stats, |(_, s)| s.triggered_at))
        .bind(column(stats, |(_, s)| s.success_at))
        .bind(column(stats, |(_, s)| s.failure_at))
        .bind(column(stats, |(_, s)| s.reset))
        .bind(column(stats, |(_, s)| s.failures))
        .bind(column(stats, |(_, s)| s.first_failure))
        .bind(column(deliveries, |(_, c)| {
            c.last.fence.map(|f| f.partition)
        }))
        .bind(column(deliveries, |(_, c)| c.last.fence.map(|f| f.epoch)))
        .fetch_all(connection)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, consecutive_failures, failing_since)| {
            (
                id,
                FailureRun {
                    consecutive_failures,
                    failing_since,
                },
            )
        })
        .collect())
}

/// One bound array: a field of every item.
fn column<'a, T, U>(items: &'a [T], field: impl Fn(&'a T) -> U) -> Vec<U> {
    items.iter().map(field).collect()
}
