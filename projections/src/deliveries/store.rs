//! The delivery tables: what the publish path writes and the actors read.
//! Queries common to both backends are written once (see [`crate::db`]);
//! the hot path's writers are per backend (see [`super::writers`]).
use super::group_commit::{GroupCommit, WaitObserver};
use super::outcome_writer::Outcome;
pub use super::publish_writer::NewEvent;
use super::writers;
use super::{stored_event_data, DeliveryKind, DeliveryStatus, EventRecord, Fence, PendingDelivery};
use crate::db::now_micros;
use crate::webhook_configs::ConfigRow;
use crate::{on_pool, Db, Error};
use aggregates::values::{ConfigId, CustomHeaders, DeliveryOrdering, WebhookSecret};
use aggregates::webhook_config::{ConfigState, PreviousSecret, Profile};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A config an event goes to, and whether its deliveries take a place in
/// its FIFO line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub config_id: ConfigId,
    pub fifo: bool,
}

/// What a read of a config's pending rows found.
#[derive(Debug)]
pub struct PendingRead {
    pub deliveries: Vec<PendingDelivery>,
    /// For a FIFO read: the last place taken, read before the rows.
    pub last_fifo_place: Option<i64>,
}

/// A config as its delivery actor needs it.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    pub id: ConfigId,
    pub organisation: i64,
    pub profile: Profile,
    pub url: String,
    /// `url` parsed once, for every attempt (an error if it does not
    /// parse: each attempt then fails with it).
    pub parsed_url: Result<url::Url, url::ParseError>,
    pub headers: CustomHeaders,
    pub secret: WebhookSecret,
    /// Replaced secrets that sign beside `secret` until their expiry
    /// (checked at each attempt), newest first.
    pub previous_secrets: Vec<PreviousSecret>,
    pub retry_count: i64,
    pub timeout: Duration,
    /// Deliveries per second (see `throttle`); `None`: no limit.
    pub rate_limit: Option<u32>,
    pub ordering: DeliveryOrdering,
    pub state: ConfigState,
    pub deleted: bool,
}

impl EndpointConfig {
    /// The row as the delivery side needs it; a row that does not decode is
    /// an error (never taken for a deleted config: its pending deliveries
    /// would be failed for a fault of ours).
    pub fn from_row(row: ConfigRow) -> Result<Self, Error> {
        let corrupt =
            |what: &str| Error::Corrupt(format!("webhook config {}: unreadable {what}", row.id));
        Ok(Self {
            profile: row.profile,
            state: row.state,
            headers: CustomHeaders::parse(row.header_map()).map_err(|_| corrupt("headers"))?,
            secret: WebhookSecret::parse(&row.secret).map_err(|_| corrupt("secret"))?,
            previous_secrets: row
                .previous_secrets()
                .map_err(|_| corrupt("previous secrets"))?,
            timeout: Duration::from_secs(row.timeout_seconds.max(1) as u64),
            rate_limit: row.rate_limit.and_then(|n| u32::try_from(n).ok()),
            ordering: row.ordering,
            id: ConfigId::new(row.id),
            organisation: row.organisation,
            parsed_url: url::Url::parse(&row.url),
            url: row.url,
            retry_count: row.retry_count,
            deleted: row.deleted,
        })
    }

    /// The replaced secrets whose overlap has not ended at `now` (µs).
    pub fn previous_secrets_at(&self, now: i64) -> Vec<&WebhookSecret> {
        self.previous_secrets
            .iter()
            .filter(|previous| previous.expires_at > now)
            .map(|previous| &previous.secret)
            .collect()
    }

    pub fn is_fifo(&self) -> bool {
        self.ordering == DeliveryOrdering::Fifo
    }

    /// Regular events go to `new` and `valid` configs; tests to any live one.
    pub fn accepts(&self, kind: DeliveryKind) -> bool {
        !self.deleted
            && match kind {
                DeliveryKind::Event => self.state.may_receive(),
                DeliveryKind::Test => self.state != ConfigState::Deactivated,
            }
    }
}

/// One attempt, as stored in the attempt log.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub attempted_at: i64,
    pub duration_ms: i64,
    pub status_code: Option<u16>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub success: bool,
}

/// Where a delivery goes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Succeeded,
    Failed,
    RetryAt(i64),
}

/// The failure run of a config after an attempt.
#[derive(Debug, Clone, Copy)]
pub struct FailureRun {
    pub consecutive_failures: i64,
    pub failing_since: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    id: i64,
    config_id: i64,
    #[sqlx(try_from = "String")]
    kind: DeliveryKind,
    task_id: Option<String>,
    attempts: i64,
    next_attempt_at: i64,
    fifo_seq: Option<i64>,
    event_id: String,
    event_type: String,
    data: String,
    published_at: i64,
}

impl PendingRow {
    /// A row whose event data is not JSON is corrupt: an error, never sent
    /// as something else.
    fn into_pending(self) -> Result<PendingDelivery, Error> {
        let data = stored_event_data(&self.event_id, self.data)?;
        Ok(PendingDelivery {
            id: self.id,
            config_id: ConfigId::new(self.config_id),
            kind: self.kind,
            task_id: self.task_id,
            attempts: self.attempts,
            next_attempt_at: self.next_attempt_at,
            fifo_seq: self.fifo_seq,
            event: Arc::new(EventRecord {
                id: self.event_id,
                event_type: self.event_type,
                data,
                published_at: self.published_at,
            }),
        })
    }
}

/// The pending rows' reads. Every statement that looks for pending work
/// names the status as the literal `'pending'`, not as a parameter: the
/// partial index `deliveries_pending` (`WHERE status = 'pending'`, see
/// `migrations/postgres/0005_delivery_hot_path.sql`) is used only when the
/// planner can prove the query's predicate implies the index's, which a
/// bound value does not let it do under a generic plan.
const PENDING_SELECT: &str = "SELECT d.id, d.config_id, d.kind, d.task_id, d.attempts, \
    d.next_attempt_at, d.fifo_seq, e.id AS event_id, e.event_type, e.data, e.published_at \
    FROM deliveries d JOIN published_events e ON e.id = d.event_id";

/// Which deliveries a statement picks by id (`Only` an empty list: none;
/// `Except` an empty list: all).
enum Ids<'a> {
    Only(&'a [i64]),
    Except(&'a [i64]),
}

/// What a publish stored.
pub struct Published {
    pub event: Arc<EventRecord>,
    /// The new deliveries; empty for a duplicate.
    pub deliveries: Vec<PendingDelivery>,
    /// The idempotency key was seen before: nothing new was stored.
    pub duplicate: bool,
    /// How many deliveries the event has (for a duplicate, the first time's).
    pub delivery_count: i64,
}

#[derive(Clone)]
pub struct DeliveryStore {
    db: Db,
    writers: Arc<dyn writers::Writers>,
    publishes: GroupCommit<NewEvent, Published>,
    outcomes: GroupCommit<Outcome, FailureRun>,
    hand_over: Arc<OnceLock<HandOver>>,
}

/// Where committed deliveries go (see [`DeliveryStore::hand_over_to`]).
pub type HandOver = Box<dyn Fn(Vec<PendingDelivery>) + Send + Sync>;

/// How long a publish waits for its batch to commit before it answers 503:
/// while the database is away a batch waits 1.5 s for a connection, and
/// the publishes queued behind it would wait for the next one too. The
/// publisher holds all of a publish's database work to it as well.
pub const PUBLISH_DEADLINE: Duration = Duration::from_millis(1800);

/// Batches wait for nothing: each holds what queued while the previous
/// transaction committed.
const MAX_BATCH: usize = 256;

/// Past this many configs with pending deliveries the watchdog's poll reads
/// the pending rows rather than walking the configs (see
/// [`DeliveryStore::configs_with_pending`]): 256 descents cost ~1.3 ms.
const SKIP_SCAN_CONFIGS: i64 = 256;

/// How long an attempt's record may wait for others to share its
/// transaction (see `group_commit::next_batch`; a FIFO delivery's does not
/// wait: its line sends the next one only after it). Nothing waits for a
/// record on the way to a receiver: an endpoint's slot is free once the
/// exchange is over. At 1 000 events/s to one endpoint, 5 ms: the database's
/// CPU per delivery −37 % on PostgreSQL (600–620 → 358–397 µs), webhookd's
/// −11 % (−15 % on SQLite), the machine 64–70 → 49–55 % busy; throughput
/// unchanged. 15 ms since 2026-12-07: on PostgreSQL at 1 000/s the
/// database's CPU per delivery another −13 % (`db/b` 1.67–1.80 → 1.45–1.57,
/// three pairs) and webhookd's −3 %; on a cluster, whose nodes each batch
/// only their own endpoints' outcomes, −4 to −7 % at two and three nodes;
/// under load on one node and on SQLite no change (its batches are full
/// sooner, its writes cost no round trip). A `kill -9` may leave up to this
/// long's attempts unrecorded: each is sent again after the restart (at
/// least once); an endpoint's recording slots (see the endpoint actor's
/// `RECORDED_PER_REQUEST`) hold ~16 ms of its attempts, ~260 of 512 at
/// 16 000/s to one endpoint.
pub const OUTCOME_LINGER: Duration = Duration::from_millis(15);

/// What the store tells the layers above, which it may not import.
pub struct StoreHooks {
    /// An outcome batch moved these configs' statistics (sorted, once each).
    pub stats_moved: Arc<dyn Fn(Vec<i64>) + Send + Sync>,
    /// How long a submission waited for its batch's commit, per writer.
    pub commit_waited: WaitObserver,
    /// How long an outcome batch waits for company: [`OUTCOME_LINGER`]
    /// (tests lengthen it to show which outcomes may not wait).
    pub outcome_linger: Duration,
}

impl DeliveryStore {
    /// Starts the group-commit writers on `writer_db` (on PostgreSQL a pool
    /// of their own, of [`writers::POSTGRES_WRITER_CONNECTIONS`]): call
    /// inside the Tokio runtime.
    pub fn new(db: Db, writer_db: Db, hooks: StoreHooks) -> Self {
        let writers = writers::for_backend(writer_db);
        let (publish_writers, outcome_writers) = writers.concurrency();
        let runtime = writers
            .runtime()
            .unwrap_or_else(tokio::runtime::Handle::current);
        let waited = hooks.commit_waited;
        let hand_over: Arc<OnceLock<HandOver>> = Arc::default();
        let publishes = {
            let (writers, hand_over) = (writers.clone(), hand_over.clone());
            GroupCommit::start_on(
                &runtime,
                "publish",
                publish_writers,
                MAX_BATCH,
                Duration::ZERO,
                waited,
                move |batch| {
                    let (writers, hand_over) = (writers.clone(), hand_over.clone());
                    async move {
                        let published = writers.publishes(batch).await?;
                        if let Some(hand_over) = hand_over.get() {
                            let deliveries: Vec<PendingDelivery> = published
                                .iter()
                                .flat_map(|p| p.deliveries.iter().cloned())
                                .collect();
                            if !deliveries.is_empty() {
                                hand_over(deliveries);
                            }
                        }
                        Ok(published)
                    }
                },
            )
        };
        let outcomes = {
            let writers = writers.clone();
            let stats_moved = hooks.stats_moved;
            GroupCommit::start_on(
                &runtime,
                "outcome",
                outcome_writers,
                MAX_BATCH,
                hooks.outcome_linger,
                waited,
                move |batch| {
                    let (writers, stats_moved) = (writers.clone(), stats_moved.clone());
                    async move {
                        let runs = writers.outcomes(batch.clone()).await?;
                        let mut moved: Vec<i64> = batch.iter().map(|o| o.config_id).collect();
                        moved.sort_unstable();
                        moved.dedup();
                        stats_moved(moved);
                        Ok(runs)
                    }
                },
            )
        };
        Self {
            db,
            writers,
            publishes,
            outcomes,
            hand_over,
        }
    }

    /// Where every publish's new deliveries go once committed: called on
    /// the writer's thread with each batch's, before its publishers are
    /// answered (the first call wins; set by the layer that owns the
    /// endpoint actors). Handed over there, not by each publisher after its
    /// answer, they reach their actors one thread hop sooner, a batch's in
    /// one call, and also when the publisher stopped waiting (its deadline
    /// passed, its client hung up) after the commit.
    pub fn hand_over_to(&self, hand_over: HandOver) {
        if self.hand_over.set(hand_over).is_err() {
            tracing::warn!("the delivery store already hands its deliveries over");
        }
    }

    /// Readies the writers before the first publish needs them: on
    /// PostgreSQL every connection of the writers' pool (which connects
    /// lazily) is opened and has the batch statements parsed and planned,
    /// on SQLite the writer thread is started. Without it the first
    /// publishes after a start paid for all of that: the first delivery at
    /// 1 000 events/s took 21–25 ms on PostgreSQL and the ~45 after it
    /// queued behind it (see `docs/src/benchmarks/`). Writes no rows.
    pub async fn warm_up(&self) -> Result<(), Error> {
        self.writers.warm_up().await
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The configs an event of `event_type` goes to: the organisation's v1 and svix
    /// configs that may receive and subscribe to it (or to `*`), plus the
    /// configs-profile config that routes the publisher, if it may receive.
    pub async fn routing_targets(
        &self,
        organisation: i64,
        event_type: &str,
        routed_config: Option<i64>,
    ) -> Result<Vec<Target>, Error> {
        let subscribed = "SELECT s.config_id, w.ordering = 'fifo' \
            FROM webhook_config_subscriptions s \
            JOIN webhook_configs w ON w.id = s.config_id \
            WHERE s.organisation = $1 AND s.event_type IN ($2, '*') AND w.profile IN ('v1', 'svix') \
              AND w.deleted = FALSE AND w.state IN ('new', 'valid') \
            ORDER BY s.config_id";
        let routed = "SELECT id FROM webhook_configs WHERE id = $1 AND organisation = $2 \
            AND profile = 'configs' AND deleted = FALSE AND state IN ('new', 'valid')";
        Ok(on_pool!(&self.db, |pool| {
            let subscribed: Vec<(i64, bool)> = sqlx::query_as(subscribed)
                .bind(organisation)
                .bind(event_type)
                .fetch_all(pool)
                .await?;
            let mut targets: Vec<Target> = subscribed
                .into_iter()
                .map(|(config_id, fifo)| Target {
                    config_id: ConfigId::new(config_id),
                    fifo,
                })
                .collect();
            if let Some(config) = routed_config {
                let found: Option<i64> = sqlx::query_scalar(routed)
                    .bind(config)
                    .bind(organisation)
                    .fetch_optional(pool)
                    .await?;
                // The configs dialect has no ordering.
                targets.extend(found.map(|config_id| Target {
                    config_id: ConfigId::new(config_id),
                    fifo: false,
                }));
            }
            targets
        }))
    }

    /// Commits the event and one pending delivery per target (grouped with
    /// concurrent publishes into one transaction); an idempotency key seen
    /// before stores nothing.
    pub async fn publish(&self, new: NewEvent) -> Result<Published, Error> {
        self.publishes.submit_within(new, PUBLISH_DEADLINE).await
    }

    /// The first `limit` pending deliveries of a config, soonest due first;
    /// its tests only unless `with_events` (an `invalid` config takes tests
    /// only: its event deliveries wait in the database until it is valid).
    ///
    /// A FIFO read (`fifo`) takes the rows in place order — those without a
    /// place first: tests, and deliveries published before the config
    /// chose FIFO — and reads the last place taken before them (see
    /// `endpoint::fifo::vouched_by_read`).
    pub async fn pending_for_config(
        &self,
        config_id: ConfigId,
        limit: usize,
        with_events: bool,
        fifo: bool,
    ) -> Result<PendingRead, Error> {
        let order = if fifo {
            "(d.fifo_seq IS NOT NULL), d.fifo_seq, d.id"
        } else {
            "d.next_attempt_at, d.id"
        };
        let sql = format!(
            "{PENDING_SELECT} WHERE d.config_id = $1 AND d.status = 'pending' \
             AND (d.kind = 'test' OR $3) ORDER BY {order} LIMIT $2"
        );
        let last_place = "SELECT last_seq FROM fifo_sequences WHERE config_id = $1";
        // Only a read of the event rows vouches for the line's places (a
        // read made for a switched-off config reads none of them; the
        // endpoint's property tests found its answer, arriving after a
        // switch-on, letting a later place out before earlier ones).
        let vouches = fifo && with_events;
        let (rows, last_fifo_place): (Vec<PendingRow>, Option<i64>) = on_pool!(&self.db, |pool| {
            let last_fifo_place = if vouches {
                let last: Option<i64> = sqlx::query_scalar(last_place)
                    .bind(config_id.get())
                    .fetch_optional(pool)
                    .await?;
                Some(last.unwrap_or(0))
            } else {
                None
            };
            let rows = sqlx::query_as(&sql)
                .bind(config_id.get())
                .bind(limit as i64)
                .bind(with_events)
                .fetch_all(pool)
                .await?;
            (rows, last_fifo_place)
        });
        Ok(PendingRead {
            deliveries: rows
                .into_iter()
                .map(PendingRow::into_pending)
                .collect::<Result<_, _>>()?,
            last_fifo_place,
        })
    }

    /// Configs with pending deliveries due before `due_before` (µs).
    ///
    /// Every node's watchdog asks twice a second. A backlog is many pending
    /// rows for few configs, and a `DISTINCT` over the pending index reads
    /// every one of them (37 ms a poll in a 150 000-delivery backlog on a
    /// three-node cluster: a fifth of the database's time there). So the
    /// configs are walked instead, one index descent each (a loose index
    /// scan), and only when there are [`SKIP_SCAN_CONFIGS`] or more of them
    /// — few rows each, where reading the rows is the cheaper way — is the
    /// plain scan made. On PostgreSQL each descent also reads the config's
    /// soonest due time: an outcome leaves a dead entry at the front of its
    /// config's range in the pending index (until vacuum), and a second
    /// descent per config would step over them twice.
    pub async fn configs_with_pending(&self, due_before: i64) -> Result<Vec<ConfigId>, Error> {
        const WALK_POSTGRES: &str = "WITH RECURSIVE walked (config_id, due_at, n) AS ( \
                (SELECT config_id, next_attempt_at, 1 FROM deliveries \
                 WHERE status = 'pending' ORDER BY config_id, next_attempt_at LIMIT 1) \
              UNION ALL \
                SELECT next.config_id, next.next_attempt_at, w.n + 1 \
                FROM walked w CROSS JOIN LATERAL ( \
                    SELECT d.config_id, d.next_attempt_at FROM deliveries d \
                    WHERE d.status = 'pending' AND d.config_id > w.config_id \
                    ORDER BY d.config_id, d.next_attempt_at LIMIT 1) next \
                WHERE w.n < $2) \
            SELECT config_id, due_at <= $1 FROM walked";
        const WALK_SQLITE: &str = "WITH RECURSIVE walked (config_id, n) AS ( \
                SELECT (SELECT config_id FROM deliveries WHERE status = 'pending' \
                        ORDER BY config_id LIMIT 1), 1 \
              UNION ALL \
                SELECT (SELECT d.config_id FROM deliveries d \
                        WHERE d.status = 'pending' AND d.config_id > w.config_id \
                        ORDER BY d.config_id LIMIT 1), w.n + 1 \
                FROM walked w WHERE w.config_id IS NOT NULL AND w.n < $2) \
            SELECT w.config_id, EXISTS (SELECT 1 FROM deliveries d \
                WHERE d.status = 'pending' AND d.config_id = w.config_id \
                AND d.next_attempt_at <= $1) \
            FROM walked w WHERE w.config_id IS NOT NULL";
        const SCAN: &str = "SELECT DISTINCT config_id FROM deliveries \
                   WHERE status = 'pending' AND next_attempt_at <= $1";
        let walk = match &self.db {
            Db::Postgres(_) => WALK_POSTGRES,
            Db::Sqlite(_) => WALK_SQLITE,
        };
        let ids: Vec<i64> = on_pool!(&self.db, |pool| {
            let walked: Vec<(i64, bool)> = sqlx::query_as(walk)
                .bind(due_before)
                .bind(SKIP_SCAN_CONFIGS)
                .fetch_all(pool)
                .await?;
            if walked.len() < SKIP_SCAN_CONFIGS as usize {
                walked
                    .into_iter()
                    .filter_map(|(id, due)| due.then_some(id))
                    .collect()
            } else {
                sqlx::query_scalar(SCAN)
                    .bind(due_before)
                    .fetch_all(pool)
                    .await?
            }
        });
        Ok(ids.into_iter().map(ConfigId::new).collect())
    }

    pub async fn endpoint_config(
        &self,
        config_id: ConfigId,
    ) -> Result<Option<EndpointConfig>, Error> {
        crate::webhook_configs::find_any(&self.db, config_id.get())
            .await?
            .map(EndpointConfig::from_row)
            .transpose()
    }

    /// Stores an attempt and its consequence, and for regular deliveries
    /// the config's statistics (grouped with concurrent attempts into one
    /// transaction). Returns the config's failure run.
    pub async fn record_attempt(
        &self,
        delivery: &PendingDelivery,
        attempt: &AttemptRecord,
        next: NextStep,
        fence: Option<Fence>,
    ) -> Result<FailureRun, Error> {
        let outcome = Outcome {
            delivery_id: delivery.id,
            config_id: delivery.config_id.get(),
            kind: delivery.kind,
            attempt: attempt.clone(),
            next,
            fence,
        };
        if delivery.fifo_seq.is_some() {
            // Its FIFO line waits for this record before the next send.
            self.outcomes.submit_at_once(outcome).await
        } else {
            self.outcomes.submit(outcome).await
        }
    }

    /// These deliveries, if still pending (another node committed them for
    /// an endpoint this node owns).
    pub async fn pending_by_ids(&self, ids: &[i64]) -> Result<Vec<PendingDelivery>, Error> {
        let sql = format!("{PENDING_SELECT} WHERE d.id = ANY($1) AND d.status = 'pending'");
        let rows: Vec<PendingRow> = match &self.db {
            Db::Postgres(pool) => sqlx::query_as(&sql).bind(ids).fetch_all(pool).await?,
            // One node on SQLite: nobody else commits for it.
            Db::Sqlite(_) => Vec::new(),
        };
        rows.into_iter().map(PendingRow::into_pending).collect()
    }

    /// Ends every pending delivery of a config that can no longer receive,
    /// except those with an attempt under way (`attempting`): their
    /// attempt's record decides, and would otherwise land on a delivery
    /// already failed with no attempt (or make it pending again).
    pub async fn fail_pending(
        &self,
        config_id: ConfigId,
        reason: &str,
        attempting: &[i64],
    ) -> Result<u64, Error> {
        self.fail(reason, Some(config_id), Ids::Except(attempting))
            .await
    }

    /// Ends these deliveries if they are still pending (their config no
    /// longer receives; see [`Self::fail_pending`]).
    pub async fn fail_if_pending(&self, delivery_ids: &[i64], reason: &str) -> Result<u64, Error> {
        self.fail(reason, None, Ids::Only(delivery_ids)).await
    }

    /// Fails the pending deliveries of `config_id` (of any config if
    /// `None`) that `ids` picks.
    async fn fail(
        &self,
        reason: &str,
        config_id: Option<ConfigId>,
        ids: Ids<'_>,
    ) -> Result<u64, Error> {
        let (operator, ids) = match ids {
            Ids::Only([]) => return Ok(0),
            Ids::Only(ids) => ("IN", ids),
            Ids::Except(ids) => ("NOT IN", ids),
        };
        let now = now_micros();
        let failed = on_pool!(&self.db, |pool| {
            let mut update =
                sqlx::QueryBuilder::new("UPDATE deliveries SET status = 'failed', last_error = ");
            update.push_bind(reason);
            update.push(", updated_at = ").push_bind(now);
            update.push(" WHERE status = 'pending'");
            if let Some(config_id) = config_id {
                update.push(" AND config_id = ").push_bind(config_id.get());
            }
            if !ids.is_empty() {
                update.push(format_args!(" AND id {operator} ("));
                let mut list = update.separated(", ");
                for id in ids {
                    list.push_bind(*id);
                }
                update.push(")");
            }
            update.build().execute(pool).await?.rows_affected()
        });
        // Their endpoint was switched off: given up, not failed after retries.
        metrics::counter!("webhookd_deliveries_total", "outcome" => "given_up").increment(failed);
        Ok(failed)
    }

    /// Puts a finished delivery back in the queue with a fresh retry budget.
    pub async fn retry(
        &self,
        config_id: ConfigId,
        delivery_id: i64,
    ) -> Result<Option<PendingDelivery>, Error> {
        let now = now_micros();
        let update = "UPDATE deliveries SET status = 'pending', attempts = 0, \
            next_attempt_at = $3, updated_at = $3 \
            WHERE id = $1 AND config_id = $2 AND status <> 'pending'";
        let select = format!("{PENDING_SELECT} WHERE d.id = $1 AND d.config_id = $2");
        let row: Option<PendingRow> = on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(update)
                .bind(delivery_id)
                .bind(config_id.get())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let row = sqlx::query_as(&select)
                .bind(delivery_id)
                .bind(config_id.get())
                .fetch_optional(&mut *tx)
                .await?;
            tx.commit().await?;
            row
        });
        row.map(PendingRow::into_pending).transpose()
    }
}

/// Ids read from the database, for an `IN (…)` list: integers are written
/// into the statement, not bound (one text per batch on both backends).
pub(super) fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// How the deliveries a recovery task sent again stand now.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryCounts {
    pub succeeded: i64,
    pub failed: i64,
    pub pending: i64,
}

impl DeliveryStore {
    /// The next `limit` event deliveries of a config, after id `after`,
    /// that ended `failed` within `[since, until)` (µs): made pending again
    /// with a fresh retry budget and marked as `task`'s. Returns them and
    /// the last id looked at (the next batch starts after it).
    pub async fn recover_batch(
        &self,
        config_id: ConfigId,
        (since, until): (i64, i64),
        after: i64,
        task: i64,
        limit: i64,
    ) -> Result<(Vec<PendingDelivery>, Option<i64>), Error> {
        let select = "SELECT id FROM deliveries WHERE config_id = $1 AND id > $2 \
            AND status = 'failed' AND kind = 'event' AND updated_at >= $3 AND updated_at < $4 \
            ORDER BY id LIMIT $5";
        let now = now_micros();
        let (rows, last): (Vec<PendingRow>, Option<i64>) = on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let ids: Vec<i64> = sqlx::query_scalar(select)
                .bind(config_id.get())
                .bind(after)
                .bind(since)
                .bind(until)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
            if ids.is_empty() {
                return Ok((Vec::new(), None));
            }
            let list = id_list(&ids);
            sqlx::query(&format!(
                "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1, \
                 updated_at = $1, recovered_by = $2 WHERE id IN ({list}) AND status = 'failed'"
            ))
            .bind(now)
            .bind(task)
            .execute(&mut *tx)
            .await?;
            let rows = sqlx::query_as(&format!(
                "{PENDING_SELECT} WHERE d.id IN ({list}) AND d.status = 'pending'"
            ))
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            (rows, ids.last().copied())
        });
        Ok((
            rows.into_iter()
                .map(PendingRow::into_pending)
                .collect::<Result<_, _>>()?,
            last,
        ))
    }

    pub async fn recovery_counts(&self, task: i64) -> Result<RecoveryCounts, Error> {
        let sql = "SELECT status, COUNT(*) FROM deliveries WHERE recovered_by = $1 GROUP BY status";
        let rows: Vec<(String, i64)> = on_pool!(&self.db, |pool| sqlx::query_as(sql)
            .bind(task)
            .fetch_all(pool)
            .await?);
        let mut counts = RecoveryCounts::default();
        for (status, count) in rows {
            match status.as_str() {
                "succeeded" => counts.succeeded = count,
                "failed" => counts.failed = count,
                _ => counts.pending += count,
            }
        }
        Ok(counts)
    }
}

/// A delivery as the attempt log shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: i64,
    pub event_id: String,
    pub event_type: String,
    #[sqlx(try_from = "String")]
    pub kind: DeliveryKind,
    #[sqlx(try_from = "String")]
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub delivery_id: i64,
    pub attempted_at: i64,
    pub duration_ms: i64,
    pub status_code: Option<i64>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub success: bool,
}

const DELIVERY_SELECT: &str = "SELECT d.id, d.event_id, e.event_type, d.kind, d.status, \
    d.attempts, d.next_attempt_at, d.last_status_code, d.last_error, d.created_at, d.updated_at \
    FROM deliveries d JOIN published_events e ON e.id = d.event_id";

impl DeliveryStore {
    /// A page of a config's deliveries, newest first, with their total.
    pub async fn list_deliveries(
        &self,
        config_id: ConfigId,
        status: Option<DeliveryStatus>,
        page: i64,
        per_page: i64,
    ) -> Result<(Vec<DeliveryRow>, i64), Error> {
        let sql = format!(
            "{DELIVERY_SELECT} WHERE d.config_id = $1 AND ($2 IS NULL OR d.status = $2) \
             ORDER BY d.id DESC LIMIT $3 OFFSET $4"
        );
        let count =
            "SELECT COUNT(*) FROM deliveries WHERE config_id = $1 AND ($2 IS NULL OR status = $2)";
        let offset = (page - 1).saturating_mul(per_page);
        let status = status.map(DeliveryStatus::as_str);
        Ok(on_pool!(&self.db, |pool| {
            let rows = sqlx::query_as(&sql)
                .bind(config_id.get())
                .bind(status)
                .bind(per_page)
                .bind(offset)
                .fetch_all(pool)
                .await?;
            let total: i64 = sqlx::query_scalar(count)
                .bind(config_id.get())
                .bind(status)
                .fetch_one(pool)
                .await?;
            (rows, total)
        }))
    }

    /// One delivery of a config.
    pub async fn find_delivery(
        &self,
        config_id: ConfigId,
        delivery_id: i64,
    ) -> Result<Option<DeliveryRow>, Error> {
        let sql = format!("{DELIVERY_SELECT} WHERE d.config_id = $1 AND d.id = $2");
        Ok(on_pool!(&self.db, |pool| sqlx::query_as(&sql)
            .bind(config_id.get())
            .bind(delivery_id)
            .fetch_optional(pool)
            .await?))
    }

    /// The attempts of the given deliveries, oldest first.
    pub async fn attempts_of(&self, delivery_ids: &[i64]) -> Result<Vec<AttemptRow>, Error> {
        if delivery_ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=delivery_ids.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT delivery_id, attempted_at, duration_ms, status_code, response_body, error, success \
             FROM delivery_attempts WHERE delivery_id IN ({}) ORDER BY id",
            placeholders.join(", ")
        );
        Ok(on_pool!(&self.db, |pool| {
            let mut query = sqlx::query_as(&sql);
            for id in delivery_ids {
                query = query.bind(*id);
            }
            query.fetch_all(pool).await?
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::JsonText;

    fn row(headers: &str, secret: &str) -> ConfigRow {
        ConfigRow {
            id: 7,
            organisation: 1,
            profile: Profile::V1,
            url: "https://example.com/h".into(),
            name: String::new(),
            events: JsonText(vec!["*".into()]),
            headers: JsonText::try_from(headers.to_owned()).unwrap(),
            retry_count: 3,
            timeout_seconds: 30,
            rate_limit: None,
            ordering: DeliveryOrdering::None,
            secret: secret.into(),
            previous_secrets: "[]".into(),
            state: ConfigState::Valid,
            deactivation_reason: None,
            deleted: false,
            version: 1,
            created_at: 0,
            updated_at: 0,
            last_triggered_at: None,
            last_success_at: None,
            last_failure_at: None,
            failure_count: 0,
        }
    }

    /// An unreadable row is an error, not a config that is gone (whose
    /// pending deliveries the actor would fail). State and profile are
    /// enums decoded with the row (see `tests/api/hardening.rs`).
    #[test]
    fn a_row_that_does_not_decode_is_an_error() {
        const SECRET: &str = "whsec_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
        assert!(EndpointConfig::from_row(row("{}", SECRET)).is_ok());
        for (headers, secret) in [(r#"{"Host": "x"}"#, SECRET), ("{}", "bogus")] {
            match EndpointConfig::from_row(row(headers, secret)) {
                Err(Error::Corrupt(message)) => assert!(message.contains("config 7")),
                other => panic!("{other:?}"),
            }
        }
    }
}
