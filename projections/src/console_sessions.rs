//! The console's sessions and portal links, stored by the hash of their
//! token (the cookie or the link holds the token; the database never
//! does). What they mean — cookies, CSRF, expiry — is `src/http/console/
//! session.rs`'s; this is only their rows.
use crate::db::now_micros;
use crate::{on_pool, Db, Error};

/// A live session's row: (organisation, actor, key id, CSRF token).
pub type SessionRow = (i64, String, Option<i64>, String);

/// A new session's row.
pub struct NewSession<'a> {
    pub token_hash: &'a str,
    pub organisation: i64,
    pub actor: &'a str,
    pub key_id: Option<i64>,
    pub csrf: &'a str,
    pub expires_at: i64,
}

pub async fn insert(db: &Db, session: NewSession<'_>) -> Result<(), Error> {
    let sql = "INSERT INTO console_sessions (token_hash, organisation, actor, key_id, csrf, \
               created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
    on_pool!(db, |pool| sqlx::query(sql)
        .bind(session.token_hash)
        .bind(session.organisation)
        .bind(session.actor)
        .bind(session.key_id)
        .bind(session.csrf)
        .bind(now_micros())
        .bind(session.expires_at)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(())
}

/// The session of this token hash, unless it was revoked, has expired, or
/// was opened with a key since revoked.
pub async fn find_live(db: &Db, token_hash: &str) -> Result<Option<SessionRow>, Error> {
    let sql = "SELECT s.organisation, s.actor, s.key_id, s.csrf FROM console_sessions s \
               WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 \
               AND (s.key_id IS NULL OR EXISTS (SELECT 1 FROM api_keys k \
                    WHERE k.id = s.key_id AND k.revoked_at IS NULL))";
    Ok(on_pool!(db, |pool| sqlx::query_as(sql)
        .bind(token_hash)
        .bind(now_micros())
        .fetch_optional(pool)
        .await?))
}

pub async fn revoke(db: &Db, token_hash: &str) -> Result<(), Error> {
    let sql = "UPDATE console_sessions SET revoked_at = $1 WHERE token_hash = $2";
    on_pool!(db, |pool| sqlx::query(sql)
        .bind(now_micros())
        .bind(token_hash)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(())
}

/// Stores a portal link.
pub async fn insert_portal_link(
    db: &Db,
    id: &str,
    token_hash: &str,
    organisation: i64,
    key_id: i64,
    expires_at: i64,
) -> Result<(), Error> {
    let sql = "INSERT INTO portal_links (id, token_hash, organisation, key_id, created_at, \
               expires_at) VALUES ($1, $2, $3, $4, $5, $6)";
    on_pool!(db, |pool| sqlx::query(sql)
        .bind(id)
        .bind(token_hash)
        .bind(organisation)
        .bind(key_id)
        .bind(now_micros())
        .bind(expires_at)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(())
}

/// Uses a portal link up (once, before it expires): (its id, organisation,
/// expiry).
pub async fn redeem_portal_link(
    db: &Db,
    token_hash: &str,
) -> Result<Option<(String, i64, i64)>, Error> {
    let sql = "UPDATE portal_links SET used_at = $1 \
               WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 \
               RETURNING id, organisation, expires_at";
    Ok(on_pool!(db, |pool| sqlx::query_as(sql)
        .bind(now_micros())
        .bind(token_hash)
        .fetch_optional(pool)
        .await?))
}
