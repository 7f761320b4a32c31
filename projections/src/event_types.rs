//! The event type catalog: names tenants may subscribe to, managed by the operator.
use crate::db::{now_micros, Db, Error};
use crate::on_pool;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EventType {
    pub name: String,
    pub description: String,
    /// A JSON Schema (text) that a publish's `data` must satisfy.
    pub schema: Option<String>,
    /// Hidden from the Svix dialect's lists; still valid everywhere
    /// (types are never removed: configs and the log name them).
    pub archived: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "name, description, schema, archived, created_at, updated_at";

/// One type of the catalog.
pub async fn find(db: &Db, name: &str) -> Result<Option<EventType>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM event_types WHERE name = $1");
    Ok(on_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(name)
        .fetch_optional(pool)
        .await?))
}

/// Adds a type unless one of that name exists; whether it was added.
pub async fn insert(
    db: &Db,
    name: &str,
    description: &str,
    archived: bool,
    schema: Option<&str>,
) -> Result<bool, Error> {
    let sql =
        "INSERT INTO event_types (name, description, schema, archived, created_at, updated_at) \
               VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (name) DO NOTHING";
    let now = now_micros();
    Ok(on_pool!(db, |pool| sqlx::query(sql)
        .bind(name)
        .bind(description)
        .bind(schema)
        .bind(archived)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected())
        == 1)
}

/// Replaces a type's description, archived flag and schema.
pub async fn update(
    db: &Db,
    name: &str,
    description: &str,
    archived: bool,
    schema: Option<&str>,
) -> Result<(), Error> {
    let sql =
        "UPDATE event_types SET description = $2, archived = $3, schema = $4, updated_at = $5 \
               WHERE name = $1";
    on_pool!(db, |pool| {
        sqlx::query(sql)
            .bind(name)
            .bind(description)
            .bind(archived)
            .bind(schema)
            .bind(now_micros())
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Adds a type, or updates its description when it exists.
pub async fn upsert(db: &Db, name: &str, description: &str) -> Result<(), Error> {
    let sql = "INSERT INTO event_types (name, description, created_at, updated_at) \
               VALUES ($1, $2, $3, $3) ON CONFLICT (name) \
               DO UPDATE SET description = excluded.description, updated_at = excluded.updated_at";
    on_pool!(db, |pool| {
        sqlx::query(sql)
            .bind(name)
            .bind(description)
            .bind(now_micros())
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Sets (or with `None` removes) a type's JSON Schema.
pub async fn set_schema(db: &Db, name: &str, schema: Option<&str>) -> Result<(), Error> {
    let sql = "UPDATE event_types SET schema = $2 WHERE name = $1";
    on_pool!(db, |pool| {
        sqlx::query(sql)
            .bind(name)
            .bind(schema)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Every type that has a schema, with it.
pub async fn schemas(db: &Db) -> Result<Vec<(String, String)>, Error> {
    let sql = "SELECT name, schema FROM event_types WHERE schema IS NOT NULL";
    Ok(on_pool!(db, |pool| sqlx::query_as(sql)
        .fetch_all(pool)
        .await?))
}

/// The whole catalog, by name.
pub async fn list(db: &Db) -> Result<Vec<EventType>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM event_types ORDER BY name");
    Ok(on_pool!(db, |pool| sqlx::query_as(&sql)
        .fetch_all(pool)
        .await?))
}

/// The catalog as the aggregate's services see it.
#[derive(Clone)]
pub struct DbEventTypeCatalog {
    db: Db,
}

impl DbEventTypeCatalog {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait::async_trait]
impl aggregates::webhook_config::EventTypeCatalog for DbEventTypeCatalog {
    async fn known_event_types(&self) -> Result<Vec<String>, String> {
        list(&self.db)
            .await
            .map(|types| types.into_iter().map(|t| t.name).collect())
            .map_err(|e| e.to_string())
    }
}

/// The catalog's names, kept in memory for the publish path. Types are only
/// ever added (by the operator's CLI, possibly in another process), so a
/// name found is final, and a name not found re-reads the catalog once
/// before it is refused.
#[derive(Clone)]
pub struct EventTypeNames {
    db: Db,
    known: std::sync::Arc<std::sync::RwLock<std::sync::Arc<Vec<String>>>>,
}

impl EventTypeNames {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            known: Default::default(),
        }
    }

    /// `Ok(None)` when `name` is in the catalog, else `Ok(Some(every name))`.
    pub async fn check(&self, name: &str) -> Result<Option<Vec<String>>, Error> {
        if self.cached().iter().any(|known| known == name) {
            return Ok(None);
        }
        let names: Vec<String> = list(&self.db).await?.into_iter().map(|t| t.name).collect();
        let found = names.iter().any(|known| known == name);
        *self.known.write().unwrap_or_else(|p| p.into_inner()) = std::sync::Arc::new(names.clone());
        Ok((!found).then_some(names))
    }

    fn cached(&self) -> std::sync::Arc<Vec<String>> {
        self.known.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
