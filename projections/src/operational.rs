//! Which config is an organisation's operational webhook (one at most).
use crate::db::{Db, Error};
use crate::on_pool;

/// The config id of `organisation`'s operational webhook, if it has one.
pub async fn find(db: &Db, organisation: i64) -> Result<Option<i64>, Error> {
    let sql = "SELECT config_id FROM operational_webhooks WHERE organisation = $1";
    Ok(on_pool!(db, |pool| sqlx::query_scalar(sql)
        .bind(organisation)
        .fetch_optional(pool)
        .await?))
}

/// Makes `config_id` the organisation's operational webhook unless it has
/// one already; returns the one it has afterwards (a concurrent request
/// may have set another first).
pub async fn set_if_none(db: &Db, organisation: i64, config_id: i64) -> Result<i64, Error> {
    let insert = "INSERT INTO operational_webhooks (organisation, config_id) VALUES ($1, $2) \
                  ON CONFLICT (organisation) DO NOTHING";
    on_pool!(db, |pool| sqlx::query(insert)
        .bind(organisation)
        .bind(config_id)
        .execute(pool)
        .await?
        .rows_affected());
    find(db, organisation)
        .await?
        .ok_or_else(|| Error::Corrupt("an operational webhook vanished as it was set".into()))
}

/// Removes the organisation's operational webhook; returns its config id.
pub async fn clear(db: &Db, organisation: i64) -> Result<Option<i64>, Error> {
    let sql = "DELETE FROM operational_webhooks WHERE organisation = $1 RETURNING config_id";
    Ok(on_pool!(db, |pool| sqlx::query_scalar(sql)
        .bind(organisation)
        .fetch_optional(pool)
        .await?))
}
