//! Organisations (tenants) and their API keys.
use crate::db::{now_micros, Db, Error, JsonText};
use crate::on_pool;
use aggregates::values::{Plan, Scope};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Organisation {
    pub id: i64,
    pub name: String,
    pub plan: String,
    /// Feature flags (`webhooks`, …); a value that does not decode fails
    /// the row's query.
    #[sqlx(try_from = "String")]
    pub features: JsonText<Vec<String>>,
    pub webhook_config_default: Option<i64>,
    pub created_at: i64,
}

impl Organisation {
    pub fn plan(&self) -> Option<Plan> {
        Plan::parse(&self.plan).ok()
    }

    pub fn feature_flags(&self) -> Vec<String> {
        self.features.0.clone()
    }

    pub fn has_feature(&self, flag: &str) -> bool {
        self.features.0.iter().any(|f| f == flag)
    }
}

/// An API key; the token itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiKey {
    pub id: i64,
    pub organisation: i64,
    /// Scope names as stored; a value that does not decode fails the row's
    /// query (an unknown name is skipped: it grants nothing).
    #[sqlx(try_from = "String")]
    pub scopes: JsonText<Vec<String>>,
    pub webhook_config: Option<i64>,
    pub created_at: i64,
    /// When it was revoked: it is refused from then on, and stays listed.
    pub revoked_at: Option<i64>,
}

impl ApiKey {
    pub fn scopes(&self) -> Vec<Scope> {
        self.scopes
            .0
            .iter()
            .filter_map(|n| Scope::parse(n).ok())
            .collect()
    }

    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes().contains(&scope)
    }
}

const ORG_COLUMNS: &str = "id, name, plan, features, webhook_config_default, created_at";
const KEY_COLUMNS: &str = "id, organisation, scopes, webhook_config, created_at, revoked_at";

pub async fn create_organisation(
    db: &Db,
    name: &str,
    plan: Plan,
    features: &[String],
) -> Result<i64, Error> {
    let sql = "INSERT INTO organisations (name, plan, features, created_at) \
               VALUES ($1, $2, $3, $4) RETURNING id";
    let features = serde_json::to_string(features).expect("strings serialize");
    Ok(on_pool!(db, |pool| sqlx::query_scalar(sql)
        .bind(name)
        .bind(plan.as_str())
        .bind(&features)
        .bind(now_micros())
        .fetch_one(pool)
        .await?))
}

pub async fn list_organisations(db: &Db) -> Result<Vec<Organisation>, Error> {
    let sql = format!("SELECT {ORG_COLUMNS} FROM organisations ORDER BY id");
    Ok(on_pool!(db, |pool| sqlx::query_as(&sql)
        .fetch_all(pool)
        .await?))
}

pub async fn find_organisation(db: &Db, id: i64) -> Result<Option<Organisation>, Error> {
    let sql = format!("SELECT {ORG_COLUMNS} FROM organisations WHERE id = $1");
    Ok(on_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await?))
}

pub async fn count_organisations(db: &Db) -> Result<i64, Error> {
    let sql = "SELECT COUNT(*) FROM organisations";
    Ok(on_pool!(db, |pool| sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await?))
}

pub async fn create_key(
    db: &Db,
    organisation: i64,
    token_hash: &str,
    scopes: &[Scope],
    webhook_config: Option<i64>,
) -> Result<i64, Error> {
    let sql =
        "INSERT INTO api_keys (organisation, token_hash, scopes, webhook_config, created_at) \
               VALUES ($1, $2, $3, $4, $5) RETURNING id";
    let scopes: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    let scopes = serde_json::to_string(&scopes).expect("strings serialize");
    Ok(on_pool!(db, |pool| sqlx::query_scalar(sql)
        .bind(organisation)
        .bind(token_hash)
        .bind(&scopes)
        .bind(webhook_config)
        .bind(now_micros())
        .fetch_one(pool)
        .await?))
}

/// Keys of one organisation, or of all when `organisation` is `None`;
/// revoked ones too if `with_revoked`.
pub async fn list_keys(
    db: &Db,
    organisation: Option<i64>,
    with_revoked: bool,
) -> Result<Vec<ApiKey>, Error> {
    let sql = format!(
        "SELECT {KEY_COLUMNS} FROM api_keys \
         WHERE ($1 IS NULL OR organisation = $1) AND ($2 OR revoked_at IS NULL) ORDER BY id"
    );
    Ok(on_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(organisation)
        .bind(with_revoked)
        .fetch_all(pool)
        .await?))
}

/// Any key by id, revoked or not (the operator's view).
pub async fn find_key_any(db: &Db, id: i64) -> Result<Option<ApiKey>, Error> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1");
    Ok(on_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await?))
}

/// Revokes a live key (`false` if there is none by that id, or it was
/// revoked already).
pub async fn revoke_key(db: &Db, id: i64) -> Result<bool, Error> {
    let sql = "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
    Ok(on_pool!(db, |pool| sqlx::query(sql)
        .bind(id)
        .bind(now_micros())
        .execute(pool)
        .await?
        .rows_affected())
        == 1)
}

/// Gives a live key a new token (by its hash); the old one no longer
/// matches anything. `false` if there is no live key by that id.
pub async fn replace_key_token(db: &Db, id: i64, token_hash: &str) -> Result<bool, Error> {
    let sql = "UPDATE api_keys SET token_hash = $2 WHERE id = $1 AND revoked_at IS NULL";
    Ok(on_pool!(db, |pool| sqlx::query(sql)
        .bind(id)
        .bind(token_hash)
        .execute(pool)
        .await?
        .rows_affected())
        == 1)
}

/// Changes an organisation's plan and/or feature flags (`None`: unchanged).
pub async fn update_organisation(
    db: &Db,
    id: i64,
    plan: Option<Plan>,
    features: Option<&[String]>,
) -> Result<bool, Error> {
    let sql = "UPDATE organisations SET plan = COALESCE($2, plan), \
               features = COALESCE($3, features) WHERE id = $1";
    let features = features.map(|f| serde_json::to_string(f).expect("strings serialize"));
    Ok(on_pool!(db, |pool| sqlx::query(sql)
        .bind(id)
        .bind(plan.map(Plan::as_str))
        .bind(features.as_deref())
        .execute(pool)
        .await?
        .rows_affected())
        == 1)
}

/// The key with this token hash and its organisation: what every
/// authenticated request looks up.
pub async fn find_key_by_token_hash(
    db: &Db,
    token_hash: &str,
) -> Result<Option<(ApiKey, Organisation)>, Error> {
    let key_sql =
        format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE token_hash = $1 AND revoked_at IS NULL");
    let org_sql = format!("SELECT {ORG_COLUMNS} FROM organisations WHERE id = $1");
    Ok(on_pool!(db, |pool| {
        let key: Option<ApiKey> = sqlx::query_as(&key_sql)
            .bind(token_hash)
            .fetch_optional(pool)
            .await?;
        match key {
            None => None,
            Some(key) => {
                let org: Organisation = sqlx::query_as(&org_sql)
                    .bind(key.organisation)
                    .fetch_one(pool)
                    .await?;
                Some((key, org))
            }
        }
    }))
}

/// One live key of an organisation.
pub async fn find_key(db: &Db, organisation: i64, id: i64) -> Result<Option<ApiKey>, Error> {
    let sql = format!(
        "SELECT {KEY_COLUMNS} FROM api_keys \
         WHERE organisation = $1 AND id = $2 AND revoked_at IS NULL"
    );
    Ok(on_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(organisation)
        .bind(id)
        .fetch_optional(pool)
        .await?))
}

/// Points a key at the config that routes its published events (or none).
pub async fn set_key_webhook_config(
    db: &Db,
    key: i64,
    webhook_config: Option<i64>,
) -> Result<(), Error> {
    let sql = "UPDATE api_keys SET webhook_config = $2 WHERE id = $1";
    on_pool!(db, |pool| {
        sqlx::query(sql)
            .bind(key)
            .bind(webhook_config)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Sets the organisation's default config (or none).
pub async fn set_default_webhook_config(
    db: &Db,
    organisation: i64,
    webhook_config: Option<i64>,
) -> Result<(), Error> {
    let sql = "UPDATE organisations SET webhook_config_default = $2 WHERE id = $1";
    on_pool!(db, |pool| {
        sqlx::query(sql)
            .bind(organisation)
            .bind(webhook_config)
            .execute(pool)
            .await?;
    });
    Ok(())
}
