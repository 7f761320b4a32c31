//! The webhook config read model: one row per config, folded from the log.
use crate::db::{Db, Error};
use crate::event_log::{fold_config, load_aggregate, FoldedConfig};
use crate::on_pool;
use aggregates::webhook_config::{ConfigState, Lifecycle, WebhookConfig};
use cqrs_es::{Aggregate, EventEnvelope, Query};
use std::collections::BTreeMap;

/// A row of `webhook_configs`, as the list and show endpoints read it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ConfigRow {
    pub id: i64,
    pub organisation: i64,
    pub profile: String,
    pub url: String,
    pub name: String,
    pub events: String,
    pub headers: String,
    pub retry_count: i64,
    pub timeout_seconds: i64,
    pub secret: String,
    pub state: String,
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

const COLUMNS: &str = "id, organisation, profile, url, name, events, headers, retry_count, \
    timeout_seconds, secret, state, deactivation_reason, deleted, version, created_at, \
    updated_at, last_triggered_at, last_success_at, last_failure_at, failure_count";

impl ConfigRow {
    pub fn event_types(&self) -> Vec<String> {
        serde_json::from_str(&self.events).unwrap_or_default()
    }

    pub fn header_map(&self) -> BTreeMap<String, String> {
        serde_json::from_str(&self.headers).unwrap_or_default()
    }

    /// The v1 dialect's `is_active`: anything but deactivated.
    pub fn is_active(&self) -> bool {
        self.state != ConfigState::Deactivated.as_str()
    }
}

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
}

impl ConfigProjector {
    pub fn new(db: Db) -> Self {
        Self { db }
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
        let sql = "SELECT e.aggregate_id FROM \
              (SELECT aggregate_id, MAX(sequence) AS head FROM events \
               WHERE aggregate_type = $1 GROUP BY aggregate_id) e \
             LEFT JOIN webhook_configs w ON w.id = CAST(e.aggregate_id AS BIGINT) \
             WHERE w.version IS NULL OR w.version < e.head";
        let behind: Vec<String> = on_pool!(&self.db, |pool| {
            sqlx::query_scalar(sql)
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
        if let Err(error) = self.catch_up(aggregate_id).await {
            // The events are committed; the row is repaired by the next
            // catch-up of this config or at the next start.
            tracing::error!(%aggregate_id, %error, "projection update failed");
        }
    }
}

async fn upsert(db: &Db, folded: &FoldedConfig) -> Result<(), Error> {
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
    let events_json = serde_json::to_string(events.names()).expect("strings serialize");
    let headers_json = serde_json::to_string(config.headers.as_map()).expect("strings serialize");
    let reason = config.deactivation_reason.map(|r| {
        serde_json::to_value(r)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    });
    let sql =
        "INSERT INTO webhook_configs (id, organisation, profile, url, name, events, headers, \
           retry_count, timeout_seconds, secret, state, deactivation_reason, deleted, version, \
           created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         ON CONFLICT (id) DO UPDATE SET organisation = excluded.organisation, \
           profile = excluded.profile, url = excluded.url, name = excluded.name, \
           events = excluded.events, headers = excluded.headers, \
           retry_count = excluded.retry_count, timeout_seconds = excluded.timeout_seconds, \
           secret = excluded.secret, state = excluded.state, \
           deactivation_reason = excluded.deactivation_reason, deleted = excluded.deleted, \
           version = excluded.version, created_at = excluded.created_at, \
           updated_at = excluded.updated_at \
         WHERE webhook_configs.version < excluded.version";
    // The row and its subscriptions change together, and only when this
    // fold is newer than what the row holds.
    let live = config.lifecycle == Lifecycle::Live;
    on_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        let written = sqlx::query(sql)
            .bind(id.get())
            .bind(organisation.get())
            .bind(config.profile.as_str())
            .bind(url.as_str())
            .bind(config.name.as_str())
            .bind(&events_json)
            .bind(&headers_json)
            .bind(i64::from(config.retry_count.get()))
            .bind(i64::from(config.timeout_seconds.get()))
            .bind(secret.expose())
            .bind(config.state.as_str())
            .bind(reason.as_deref())
            .bind(!live)
            .bind(folded.version)
            .bind(folded.created_at)
            .bind(folded.updated_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if written > 0 {
            sqlx::query("DELETE FROM webhook_config_subscriptions WHERE config_id = $1")
                .bind(id.get())
                .execute(&mut *tx)
                .await?;
            for event_type in events.names().iter().filter(|_| live) {
                sqlx::query(
                    "INSERT INTO webhook_config_subscriptions (config_id, organisation, event_type) \
                     VALUES ($1, $2, $3)",
                )
                .bind(id.get())
                .bind(organisation.get())
                .bind(event_type)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
    });
    Ok(())
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
         WHERE id = $1 AND organisation = $2 AND deleted = FALSE"
    );
    Ok(on_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(id)
        .bind(organisation)
        .fetch_optional(pool)
        .await?))
}

/// A config by id, whatever its organisation, deleted or not (for delivery).
pub async fn find_any(db: &Db, id: i64) -> Result<Option<ConfigRow>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM webhook_configs WHERE id = $1");
    Ok(on_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await?))
}

/// A page of an organisation's live configs, newest first, and their total.
pub async fn list_page(
    db: &Db,
    organisation: i64,
    page: i64,
    per_page: i64,
) -> Result<(Vec<ConfigRow>, i64), Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM webhook_configs \
         WHERE organisation = $1 AND deleted = FALSE \
         ORDER BY id DESC LIMIT $2 OFFSET $3"
    );
    let count_sql =
        "SELECT COUNT(*) FROM webhook_configs WHERE organisation = $1 AND deleted = FALSE";
    let offset = (page - 1).saturating_mul(per_page);
    Ok(on_pool!(db, |pool| {
        let rows = sqlx::query_as(&sql)
            .bind(organisation)
            .bind(per_page)
            .bind(offset)
            .fetch_all(pool)
            .await?;
        let total: i64 = sqlx::query_scalar(count_sql)
            .bind(organisation)
            .fetch_one(pool)
            .await?;
        (rows, total)
    }))
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
    filter: &ConfigFilter,
    cursor: crate::paging::Cursor,
    limit: i64,
) -> Result<(Vec<ConfigRow>, bool, i64), Error> {
    let page = crate::paging::CursorPage::new(cursor, limit);
    // $1 organisation, $2 from, $3 until, $4 cursor, $5 limit, $6… states
    let mut conditions = vec![
        "organisation = $1".to_owned(),
        "deleted = FALSE".to_owned(),
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
    let (rows, total): (Vec<ConfigRow>, i64) = on_pool!(db, |pool| {
        let mut query = sqlx::query_as(&sql)
            .bind(filter.organisation)
            .bind(filter.created_from)
            .bind(filter.created_until)
            .bind(page.cursor_value())
            .bind(limit + 1);
        let mut count = sqlx::query_scalar(&count_sql)
            .bind(filter.organisation)
            .bind(filter.created_from)
            .bind(filter.created_until)
            .bind(page.cursor_value())
            .bind(limit + 1);
        for state in &states {
            query = query.bind(state);
            count = count.bind(state);
        }
        (query.fetch_all(pool).await?, count.fetch_one(pool).await?)
    });
    let (rows, has_more) = page.finish(rows);
    Ok((rows, has_more, total))
}
