//! The admin log: every change an operator (or a tenant through the API)
//! makes to organisations, keys and the event-type catalog — the things
//! that are not event-sourced configs. `webhookd audit` shows it beside the
//! config events; running servers watch its head ([`head`]) to forget what
//! they cached about keys and organisations.
use crate::db::{now_micros, Db, Error};
use crate::on_pool;
use serde_json::Value;

/// One change, as it is written.
#[derive(Debug, Clone)]
pub struct AdminChange<'a> {
    /// `cli`, `key:<id>` or `system`.
    pub actor: &'a str,
    pub request_id: Option<&'a str>,
    /// What happened, past tense: `KeyRevoked`, `OrganisationUpdated`…
    pub action: &'a str,
    pub organisation: Option<i64>,
    /// What it happened to: `key:3`, `organisation:1`, `event_type:invoice.paid`.
    pub target: String,
    /// The change itself; never a token or a secret.
    pub details: Value,
}

/// One change, as it is read back.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AdminEntry {
    pub id: i64,
    pub recorded_at: i64,
    pub actor: String,
    pub request_id: Option<String>,
    pub action: String,
    pub organisation: Option<i64>,
    pub target: String,
    pub details: String,
}

pub async fn record(db: &Db, change: &AdminChange<'_>) -> Result<(), Error> {
    let sql = "INSERT INTO admin_log \
        (recorded_at, actor, request_id, action, organisation, target, details) \
        VALUES ($1, $2, $3, $4, $5, $6, $7)";
    on_pool!(db, |pool| {
        sqlx::query(sql)
            .bind(now_micros())
            .bind(change.actor)
            .bind(change.request_id)
            .bind(change.action)
            .bind(change.organisation)
            .bind(&change.target)
            .bind(change.details.to_string())
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// The newest entry's id (0 for none): a change is a new head.
pub async fn head(db: &Db) -> Result<i64, Error> {
    let sql = "SELECT COALESCE(MAX(id), 0) FROM admin_log";
    Ok(on_pool!(db, |pool| sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(pool)
        .await?))
}

/// Which entries to read (all `None`: every one).
#[derive(Debug, Clone, Default)]
pub struct AdminFilter {
    pub organisation: Option<i64>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub action: Option<String>,
}

/// The matching entries, oldest first. The admin log stays small (a row
/// per operator action), so it is read whole.
pub async fn list(db: &Db, filter: &AdminFilter) -> Result<Vec<AdminEntry>, Error> {
    let sql = "SELECT id, recorded_at, actor, request_id, action, organisation, target, details \
        FROM admin_log \
        WHERE ($1 IS NULL OR organisation = $1) AND ($2 IS NULL OR recorded_at >= $2) \
          AND ($3 IS NULL OR recorded_at < $3) AND ($4 IS NULL OR action = $4) \
        ORDER BY recorded_at, id";
    Ok(on_pool!(db, |pool| sqlx::query_as(sql)
        .bind(filter.organisation)
        .bind(filter.since)
        .bind(filter.until)
        .bind(filter.action.as_deref())
        .fetch_all(pool)
        .await?))
}
