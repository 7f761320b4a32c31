//! The webhook config read model: one row per config, folded from the log.
use crate::config_reads::ConfigReads;
use crate::db::{Db, Error, JsonText};
use crate::event_log::{fold_config, load_aggregate, FoldedConfig};
use crate::on_pool;
use aggregates::values::DeliveryOrdering;
use aggregates::webhook_config::{ConfigState, Lifecycle, PreviousSecret, Profile, WebhookConfig};
use cqrs_es::{Aggregate, EventEnvelope, Query};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

/// A row of `webhook_configs`, as the list and show endpoints read it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ConfigRow {
    pub id: i64,
    pub organisation: i64,
    #[sqlx(try_from = "String")]
    pub profile: Profile,
    pub url: String,
    pub name: String,
    /// The subscribed event types (`*` for all).
    #[sqlx(try_from = "String")]
    pub events: JsonText<Vec<String>>,
    /// Custom headers, by lowercase name.
    #[sqlx(try_from = "String")]
    pub headers: JsonText<BTreeMap<String, String>>,
    pub retry_count: i64,
    pub timeout_seconds: i64,
    /// Deliveries per second; `None` for no limit.
    pub rate_limit: Option<i64>,
    #[sqlx(try_from = "String")]
    pub ordering: DeliveryOrdering,
    pub secret: String,
    /// JSON: the secrets replaced by rotations that still sign until their
    /// expiry (see [`ConfigRow::previous_secrets`]).
    pub previous_secrets: String,
    #[sqlx(try_from = "String")]
    pub state: ConfigState,
    pub deactivation_reason: Option<String>,
    pub deleted: bool,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_triggered_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub last_failure_at: Option<i64>,
    pub failure_count: i64,
}

pub(crate) const COLUMNS: &str =
    "id, organisation, profile, url, name, events, headers, retry_count, \
    timeout_seconds, rate_limit, ordering, secret, previous_secrets, state, deactivation_reason, deleted, version, created_at, \
    updated_at, last_triggered_at, last_success_at, last_failure_at, failure_count";

impl ConfigRow {
    pub fn event_types(&self) -> Vec<String> {
        self.events.0.clone()
    }

    pub fn header_map(&self) -> BTreeMap<String, String> {
        self.headers.0.clone()
    }

    /// The replaced secrets with their expiries, newest first (whether one
    /// has expired is decided when a request is signed). A value that does
    /// not decode is an error: its config's deliveries must not go out
    /// signed with less than they should.
    pub fn previous_secrets(&self) -> Result<Vec<PreviousSecret>, serde_json::Error> {
        serde_json::from_str(&self.previous_secrets)
    }

    /// The v1 dialect's `is_active`: anything but deactivated.
    pub fn is_active(&self) -> bool {
        self.state != ConfigState::Deactivated
    }
}

/// Configs whose row is missing or older than their log (as `e`), with `$1`
/// bound to the aggregate type: what catch-up repairs and status counts.
pub(crate) const ROWS_BEHIND_THE_LOG: &str = "(SELECT aggregate_id, MAX(sequence) AS head \
     FROM events WHERE aggregate_type = $1 GROUP BY aggregate_id) e \
     LEFT JOIN webhook_configs w ON w.id = CAST(e.aggregate_id AS BIGINT) \
     WHERE w.version IS NULL OR w.version < e.head";

/// Brings config rows level with the event log.
///
/// It never trusts the events it is handed: it re-reads the aggregate's whole
/// stream (a config has tens of events) and writes the fold, guarded by
/// `version`, so concurrent or repeated catch-ups of one config converge on
/// the newest state, and a commit whose projection update was lost (crash,
/// failed dispatch) is repaired by the next catch-up of that config or by
/// [`ConfigProjector::catch_up_all`] at start.
#[derive(Clone)]
pub struct ConfigProjector {
    db: Db,
    /// Configs whose last dispatch failed to write their row (see
    /// [`Self::repair`]); shared by the clones.
    unprojected: Arc<Mutex<HashSet<String>>>,
}

impl ConfigProjector {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            unprojected: Default::default(),
        }
    }

    /// After a command: brings the config's row level with its log if
    /// the dispatch after the commit could not (the database stalled or
    /// dropped the connection in between). The command side answers only
    /// once this is done — its caller reads the row next, and a create
    /// answered with "not found" was seen when it was not. Still failing:
    /// the error (the change is stored; the row follows at the next
    /// catch-up of the config or at start).
    pub async fn repair(&self, aggregate_id: &str) -> Result<(), Error> {
        if !self.unprojected.lock().unwrap().contains(aggregate_id) {
            return Ok(());
        }
        self.catch_up(aggregate_id).await?;
        self.unprojected.lock().unwrap().remove(aggregate_id);
        Ok(())
    }

    pub async fn catch_up(&self, aggregate_id: &str) -> Result<(), Error> {
        let events = load_aggregate(&self.db, WebhookConfig::TYPE, aggregate_id).await?;
        match fold_config(&events)? {
            Some(folded) => upsert(&self.db, &folded).await,
            None => Ok(()),
        }
    }

    /// Catches up every config whose row is missing or behind its log.
    /// Returns how many rows it repaired.
    pub async fn catch_up_all(&self) -> Result<usize, Error> {
        let sql = format!("SELECT e.aggregate_id FROM {ROWS_BEHIND_THE_LOG}");
        let behind: Vec<String> = on_pool!(&self.db, |pool| {
            sqlx::query_scalar(&sql)
                .bind(WebhookConfig::TYPE)
                .fetch_all(pool)
                .await?
        });
        for aggregate_id in &behind {
            self.catch_up(aggregate_id).await?;
        }
        Ok(behind.len())
    }
}

#[async_trait::async_trait]
impl Query<WebhookConfig> for ConfigProjector {
    async fn dispatch(&self, aggregate_id: &str, _events: &[EventEnvelope<WebhookConfig>]) {
        match self.catch_up(aggregate_id).await {
            Ok(()) => {
                self.unprojected.lock().unwrap().remove(aggregate_id);
            }
            Err(error) => {
                // The events are committed; the command side tries again
                // before it answers (`repair`), and a later catch-up of
                // this config or the next start repairs the row.
                tracing::error!(%aggregate_id, %error, "projection update failed");
                self.unprojected
                    .lock()
                    .unwrap()
                    .insert(aggregate_id.to_owned());
            }
        }
    }
}

/// The columns a fold determines, as they are stored.
struct FoldedRow<'a> {
    id: i64,
    organisation: i64,
    profile: &'static str,
    url: &'a str,
    name: &'a str,
    events: String,
    headers: String,
    retry_count: i64,
    timeout_seconds: i64,
    rate_limit: Option<i64>,
    ordering: &'static str,
    secret: &'a str,
    previous_secrets: String,
    state: &'static str,
    deactivation_reason: Option<String>,
    deleted: bool,
    version: i64,
    created_at: i64,
    updated_at: i64,
    subscriptions: &'a [String],
}

fn folded_row(folded: &FoldedConfig) -> Result<FoldedRow<'_>, Error> {
    let config = &folded.config;
    let (Some(id), Some(organisation), Some(url), Some(events), Some(secret)) = (
        config.id,
        config.organisation,
        config.url.as_ref(),
        config.events.as_ref(),
        config.secret.as_ref(),
    ) else {
        return Err(Error::Corrupt(
            "a config stream does not start with Created".into(),
        ));
    };
    let live = config.lifecycle == Lifecycle::Live;
    Ok(FoldedRow {
        id: id.get(),
        organisation: organisation.get(),
        profile: config.profile.as_str(),
        url: url.as_str(),
        name: config.name.as_str(),
        events: serde_json::to_string(events.names()).expect("strings serialize"),
        headers: serde_json::to_string(config.headers.as_map()).expect("strings serialize"),
        retry_count: i64::from(config.retry_count.get()),
        timeout_seconds: i64::from(config.timeout_seconds.get()),
        rate_limit: config.rate_limit.per_second().map(i64::from),
        ordering: config.ordering.as_str(),
        secret: secret.expose(),
        previous_secrets: serde_json::to_string(&config.previous_secrets)
            .expect("secrets serialize"),
        state: config.state.as_str(),
        deactivation_reason: config.deactivation_reason.and_then(|r| {
            serde_json::to_value(r)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
        }),
        deleted: !live,
        version: folded.version,
        created_at: folded.created_at,
        updated_at: folded.updated_at,
        subscriptions: if live { events.names() } else { &[] },
    })
}

/// The names of the tables a fold is written to.
#[derive(Clone, Copy)]
pub(crate) struct Tables {
    pub configs: &'static str,
    pub subscriptions: &'static str,
}

pub(crate) const LIVE: Tables = Tables {
    configs: "webhook_configs",
    subscriptions: "webhook_config_subscriptions",
};

async fn upsert(db: &Db, folded: &FoldedConfig) -> Result<(), Error> {
    let row = folded_row(folded)?;
    let vault = crate::vault::of(db);
    // The row and its subscriptions change together, and only when this
    // fold is newer than what the row holds.
    on_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        write_folded!(&mut *tx, LIVE, &row, vault);
        tx.commit().await?;
    });
    Ok(())
}

/// Writes one folded row (guarded by `version`) and, when it was written,
/// its subscriptions, on any connection or transaction.
macro_rules! write_folded {
    ($executor:expr, $tables:expr, $row:expr, $vault:expr) => {{
        let tables: Tables = $tables;
        let row: &FoldedRow = $row;
        let sql = format!(
            "INSERT INTO {configs} (id, organisation, profile, url, name, events, headers, \
               retry_count, timeout_seconds, secret, state, deactivation_reason, deleted, version, \
               created_at, updated_at, previous_secrets, rate_limit, ordering) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
               $18, $19) \
             ON CONFLICT (id) DO UPDATE SET organisation = excluded.organisation, \
               profile = excluded.profile, url = excluded.url, name = excluded.name, \
               events = excluded.events, headers = excluded.headers, \
               retry_count = excluded.retry_count, timeout_seconds = excluded.timeout_seconds, \
               secret = excluded.secret, state = excluded.state, \
               deactivation_reason = excluded.deactivation_reason, deleted = excluded.deleted, \
               version = excluded.version, created_at = excluded.created_at, \
               updated_at = excluded.updated_at, previous_secrets = excluded.previous_secrets, \
               rate_limit = excluded.rate_limit, ordering = excluded.ordering \
             WHERE {configs}.version < excluded.version",
            configs = tables.configs
        );
        let written = sqlx::query(&sql)
            .bind(row.id)
            .bind(row.organisation)
            .bind(row.profile)
            .bind(row.url)
            .bind(row.name)
            .bind(&row.events)
            .bind(&row.headers)
            .bind(row.retry_count)
            .bind(row.timeout_seconds)
            .bind($vault.seal_column(row.secret))
            .bind(row.state)
            .bind(row.deactivation_reason.as_deref())
            .bind(row.deleted)
            .bind(row.version)
            .bind(row.created_at)
            .bind(row.updated_at)
            .bind($vault.seal_column(&row.previous_secrets))
            .bind(row.rate_limit)
            .bind(row.ordering)
            .execute(&mut *$executor)
            .await?
            .rows_affected();
        if written > 0 {
            sqlx::query(&format!(
                "DELETE FROM {} WHERE config_id = $1",
                tables.subscriptions
            ))
            .bind(row.id)
            .execute(&mut *$executor)
            .await?;
            let insert = format!(
                "INSERT INTO {} (config_id, organisation, event_type) VALUES ($1, $2, $3)",
                tables.subscriptions
            );
            for event_type in row.subscriptions {
                sqlx::query(&insert)
                    .bind(row.id)
                    .bind(row.organisation)
                    .bind(event_type)
                    .execute(&mut *$executor)
                    .await?;
            }
        }
    }};
}
pub(crate) use write_folded;

/// Writes folds into fresh (shadow) tables in one transaction: plain
/// multi-row inserts, since every id is written once (for rebuilds).
pub(crate) async fn write_batch(
    db: &Db,
    tables: Tables,
    batch: &[FoldedConfig],
) -> Result<(), Error> {
    // 16 parameters a row; 500 rows stay far below both backends' limits.
    const ROWS_PER_INSERT: usize = 500;
    let rows = batch
        .iter()
        .map(folded_row)
        .collect::<Result<Vec<_>, _>>()?;
    let vault = crate::vault::of(db);
    let subscriptions: Vec<(i64, i64, &String)> = rows
        .iter()
        .flat_map(|row| {
            row.subscriptions
                .iter()
                .map(move |t| (row.id, row.organisation, t))
        })
        .collect();
    let insert_configs = format!(
        "INSERT INTO {} (id, organisation, profile, url, name, events, headers, retry_count, \
         timeout_seconds, secret, state, deactivation_reason, deleted, version, created_at, \
         updated_at, failure_count, previous_secrets, rate_limit, ordering) ",
        tables.configs
    );
    let insert_subscriptions = format!(
        "INSERT INTO {} (config_id, organisation, event_type) ",
        tables.subscriptions
    );
    on_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut insert = sqlx::QueryBuilder::new(&insert_configs);
            insert.push_values(chunk, |mut values, row| {
                values
                    .push_bind(row.id)
                    .push_bind(row.organisation)
                    .push_bind(row.profile)
                    .push_bind(row.url)
                    .push_bind(row.name)
                    .push_bind(&row.events)
                    .push_bind(&row.headers)
                    .push_bind(row.retry_count)
                    .push_bind(row.timeout_seconds)
                    .push_bind(vault.seal_column(row.secret))
                    .push_bind(row.state)
                    .push_bind(row.deactivation_reason.as_deref())
                    .push_bind(row.deleted)
                    .push_bind(row.version)
                    .push_bind(row.created_at)
                    .push_bind(row.updated_at)
                    .push_bind(0_i64)
                    .push_bind(vault.seal_column(&row.previous_secrets))
                    .push_bind(row.rate_limit)
                    .push_bind(row.ordering);
            });
            insert.build().execute(&mut *tx).await?;
        }
        for chunk in subscriptions.chunks(ROWS_PER_INSERT * 5) {
            let mut insert = sqlx::QueryBuilder::new(&insert_subscriptions);
            insert.push_values(chunk, |mut values, (id, organisation, event_type)| {
                values
                    .push_bind(*id)
                    .push_bind(*organisation)
                    .push_bind(event_type.as_str());
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

/// Where a read model row differs from the fold of its log: one line per
/// field, naming the field (a secret's values are never shown).
pub fn drift(folded: &FoldedConfig, row: &ConfigRow) -> Result<Vec<String>, Error> {
    let expected = folded_row(folded)?;
    let mut differences = Vec::new();
    let mut check = |field: &str, log: String, model: String| {
        if log != model {
            differences.push(format!(
                "{field}: the log says {log}, the read model says {model}"
            ));
        }
    };
    check(
        "organisation",
        expected.organisation.to_string(),
        row.organisation.to_string(),
    );
    check(
        "profile",
        expected.profile.to_owned(),
        row.profile.as_str().to_owned(),
    );
    check("url", expected.url.to_owned(), row.url.clone());
    check(
        "name",
        format!("{:?}", expected.name),
        format!("{:?}", row.name),
    );
    check(
        "events",
        expected.events.clone(),
        serde_json::to_string(&row.events.0).expect("strings serialize"),
    );
    check(
        "headers",
        expected.headers.clone(),
        serde_json::to_string(&row.headers.0).expect("strings serialize"),
    );
    check(
        "retry_count",
        expected.retry_count.to_string(),
        row.retry_count.to_string(),
    );
    check(
        "timeout_seconds",
        expected.timeout_seconds.to_string(),
        row.timeout_seconds.to_string(),
    );
    check(
        "rate_limit",
        format!("{:?}", expected.rate_limit),
        format!("{:?}", row.rate_limit),
    );
    check(
        "ordering",
        expected.ordering.to_owned(),
        row.ordering.as_str().to_owned(),
    );
    check(
        "state",
        expected.state.to_owned(),
        row.state.as_str().to_owned(),
    );
    check(
        "deleted",
        expected.deleted.to_string(),
        row.deleted.to_string(),
    );
    check(
        "version",
        expected.version.to_string(),
        row.version.to_string(),
    );
    if expected.secret != row.secret {
        differences.push("secret: differs from the log (values not shown)".to_owned());
    }
    if expected.previous_secrets != row.previous_secrets {
        differences.push("previous_secrets: differ from the log (values not shown)".to_owned());
    }
    Ok(differences)
}

/// Every row, by id (deleted ones too): what `--verify` walks beside the log.
pub fn stream_all(db: &Db) -> futures_util::stream::BoxStream<'_, Result<ConfigRow, Error>> {
    use futures_util::StreamExt;
    static SQL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| format!("SELECT {COLUMNS} FROM webhook_configs ORDER BY id"));
    let vault = crate::vault::of(db);
    on_pool!(db, |pool| sqlx::query_as::<_, ConfigRow>(SQL.as_str())
        .fetch(pool)
        .map(move |row| row.map_err(Error::from).and_then(|row| opened(&vault, row)))
        .boxed())
}

/// Reserves a new config id. Ids are never reused, even when the Created
/// command that asked for one is refused.
pub async fn allocate_id(db: &Db) -> Result<i64, Error> {
    let sql = "INSERT INTO webhook_config_ids DEFAULT VALUES RETURNING id";
    Ok(on_pool!(db, |pool| sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await?))
}

/// One live (not deleted) config of an organisation.
pub async fn find(db: &Db, organisation: i64, id: i64) -> Result<Option<ConfigRow>, Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM webhook_configs \
         WHERE id = $1 AND organisation = $2 AND deleted = FALSE AND profile <> 'operational'"
    );
    let row: Option<ConfigRow> = on_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(id)
        .bind(organisation)
        .fetch_optional(pool)
        .await?);
    let vault = crate::vault::of(db);
    row.map(|row| opened(&vault, row)).transpose()
}

/// A cursor page of an organisation's live configs in id order (the Svix
/// dialect's endpoint list), and whether more follow in that direction.
pub async fn list_page(
    db: &Db,
    organisation: i64,
    cursor: crate::paging::Cursor,
    limit: i64,
) -> Result<(Vec<ConfigRow>, bool), Error> {
    let page = crate::paging::CursorPage::new(cursor, limit);
    let sql = format!(
        "SELECT {COLUMNS} FROM webhook_configs WHERE organisation = $1 AND deleted = FALSE \
         AND profile <> 'operational' AND {} ORDER BY id {} LIMIT $3",
        page.condition("id", "$2"),
        page.order()
    );
    let rows: Vec<ConfigRow> = on_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(organisation)
        .bind(page.cursor_value())
        .bind(limit + 1)
        .fetch_all(pool)
        .await?);
    let vault = crate::vault::of(db);
    let rows = rows
        .into_iter()
        .map(|row| opened(&vault, row))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page.finish(rows))
}

/// A config by id, whatever its organisation, deleted or not (for delivery).
pub async fn find_any(db: &Db, id: i64) -> Result<Option<ConfigRow>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM webhook_configs WHERE id = $1");
    let row: Option<ConfigRow> = on_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await?);
    let vault = crate::vault::of(db);
    row.map(|row| opened(&vault, row)).transpose()
}

/// A row as read, its secrets opened (see `vault`).
pub(crate) fn opened(vault: &crate::vault::Vault, mut row: ConfigRow) -> Result<ConfigRow, Error> {
    row.secret = vault.open_column(&row.secret)?;
    row.previous_secrets = vault.open_column(&row.previous_secrets)?;
    Ok(row)
}

/// The filters of the configs API list.
#[derive(Debug, Clone, Default)]
pub struct ConfigFilter {
    pub organisation: i64,
    /// Empty: every state but `deactivated` (hidden unless asked for).
    pub states: Vec<String>,
    /// `created_at >= this` (µs).
    pub created_from: Option<i64>,
    /// `created_at < this` (µs).
    pub created_until: Option<i64>,
}

/// A cursor page of an organisation's live configs in id order: the rows,
/// whether more follow in that direction, and how many match the filter.
pub async fn list_filtered(
    db: &Db,
    reads: &ConfigReads,
    filter: &ConfigFilter,
    cursor: crate::paging::Cursor,
    limit: i64,
) -> Result<(Vec<ConfigRow>, bool, i64), Error> {
    let page = crate::paging::CursorPage::new(cursor, limit);
    // $1 organisation, $2 from, $3 until, $4 cursor, $5 limit, $6… states
    let mut conditions = vec![
        "organisation = $1".to_owned(),
        "deleted = FALSE".to_owned(),
        // An operational webhook is the organisation's, not a webhook of its list.
        "profile <> 'operational'".to_owned(),
        "($2 IS NULL OR created_at >= $2)".to_owned(),
        "($3 IS NULL OR created_at < $3)".to_owned(),
    ];
    let states: Vec<String> = if filter.states.is_empty() {
        ["new", "valid", "invalid"].map(str::to_owned).to_vec()
    } else {
        filter.states.clone()
    };
    let placeholders: Vec<String> = (0..states.len()).map(|n| format!("${}", n + 6)).collect();
    conditions.push(format!("state IN ({})", placeholders.join(", ")));
    let filtered = conditions.join(" AND ");
    let sql = format!(
        "SELECT {COLUMNS} FROM webhook_configs WHERE {filtered} AND {} ORDER BY id {} LIMIT $5",
        page.condition("id", "$4"),
        page.order()
    );
    // The count binds the same parameters; $4 and $5 are neutral there.
    let count_sql =
        format!("SELECT COUNT(*) FROM webhook_configs WHERE {filtered} AND $4 >= 0 AND $5 >= 0");
    let rows: Vec<ConfigRow> = on_pool!(db, |pool| {
        let mut query = sqlx::query_as(&sql)
            .bind(filter.organisation)
            .bind(filter.created_from)
            .bind(filter.created_until)
            .bind(page.cursor_value())
            .bind(limit + 1);
        for state in &states {
            query = query.bind(state);
        }
        query.fetch_all(pool).await?
    });
    let vault = crate::vault::of(db);
    let rows = rows
        .into_iter()
        .map(|row| opened(&vault, row))
        .collect::<Result<Vec<_>, _>>()?;
    let total = reads
        .total(format!("{filter:?}"), async {
            Ok::<i64, Error>(on_pool!(db, |pool| {
                let mut count = sqlx::query_scalar(&count_sql)
                    .bind(filter.organisation)
                    .bind(filter.created_from)
                    .bind(filter.created_until)
                    .bind(page.cursor_value())
                    .bind(limit + 1);
                for state in &states {
                    count = count.bind(state);
                }
                count.fetch_one(pool).await?
            }))
        })
        .await?;
    let (rows, has_more) = page.finish(rows);
    Ok((rows, has_more, total))
}

/// The config as it was at `as_of` (µs), folded from its events up to then;
/// `None` when it did not exist yet, or had been deleted. Delivery
/// statistics are not in the log and show as never set.
pub async fn as_of(db: &Db, id: i64, as_of: i64) -> Result<Option<ConfigRow>, Error> {
    let mut events = load_aggregate(db, WebhookConfig::TYPE, &id.to_string()).await?;
    events.retain(|event| event.recorded_at <= as_of);
    let Some(folded) = fold_config(&events)? else {
        return Ok(None);
    };
    if folded.config.lifecycle != Lifecycle::Live {
        return Ok(None);
    }
    let row = folded_row(&folded)?;
    let corrupt = |error: serde_json::Error| Error::Corrupt(format!("config {id}: {error}"));
    Ok(Some(ConfigRow {
        id: row.id,
        organisation: row.organisation,
        profile: folded.config.profile,
        url: row.url.to_owned(),
        name: row.name.to_owned(),
        events: JsonText(serde_json::from_str(&row.events).map_err(corrupt)?),
        headers: JsonText(serde_json::from_str(&row.headers).map_err(corrupt)?),
        retry_count: row.retry_count,
        timeout_seconds: row.timeout_seconds,
        rate_limit: row.rate_limit,
        ordering: folded.config.ordering,
        secret: row.secret.to_owned(),
        previous_secrets: row.previous_secrets.clone(),
        state: folded.config.state,
        deactivation_reason: row.deactivation_reason.clone(),
        deleted: row.deleted,
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
        last_triggered_at: None,
        last_success_at: None,
        last_failure_at: None,
        failure_count: 0,
    }))
}
