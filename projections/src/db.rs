use sqlx::{PgPool, SqlitePool};
use std::sync::atomic::{AtomicI64, Ordering};

/// A connection pool to whichever database `DATABASE_URL` names.
///
/// Both backends understand the same SQL for everything webhookd asks
/// (`$1` placeholders, `ON CONFLICT`, `RETURNING`), so a query is written once
/// and run through [`on_pool!`], which expands it for each concrete pool type.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Db {
    pub fn backend_name(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Whether the database answers (`SELECT 1`).
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        crate::on_pool!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|_| ()))
    }

    /// The pool's connections: (open, idle).
    pub fn pool_usage(&self) -> (u32, usize) {
        crate::on_pool!(self, |pool| (pool.size(), pool.num_idle()))
    }
}

/// Runs `$body` with `$pool` bound to the concrete pool of a [`Db`].
#[macro_export]
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}

/// Errors of the read side.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// An error of the SQLite hot-path writer's own connection (see
    /// `deliveries::sqlite_thread`), which does not go through sqlx.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    /// The failure of a group commit, shared by every caller in the batch.
    #[error(transparent)]
    Shared(std::sync::Arc<Error>),
    #[error("{0}")]
    Unavailable(&'static str),
}

impl Error {
    /// A conflict between concurrent transactions (PostgreSQL's deadlock
    /// or serialization failure, SQLite's busy database): the transaction
    /// was rolled back and may simply be run again.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Database(sqlx::Error::Database(error)) => matches!(
                error.code().as_deref(),
                Some("40P01" | "40001" | "5" | "517")
            ),
            Error::Sqlite(rusqlite::Error::SqliteFailure(error, _)) => {
                error.code == rusqlite::ErrorCode::DatabaseBusy
            }
            Error::Shared(error) => error.is_transient(),
            _ => false,
        }
    }

    /// The database cannot be reached or refuses work for now (down,
    /// restarting, out of connections): the caller should answer 503 and
    /// the client try again later. Nothing about the request is wrong.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Database(error) => is_unavailable(error),
            Error::Shared(error) => error.is_unavailable(),
            Error::Unavailable(_) => true,
            Error::Corrupt(_) | Error::Sqlite(_) => false,
        }
    }

    /// A unique index refused the row: something with the same key
    /// (a `uid`, an idempotency key) is there already.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            Error::Database(sqlx::Error::Database(error)) => error.is_unique_violation(),
            Error::Shared(error) => error.is_unique_violation(),
            _ => false,
        }
    }

    /// The database refused a value of the request itself (PostgreSQL's
    /// class 22, "data exception": a NUL byte in text, a number out of
    /// range). Only that request is at fault; the same row written alone
    /// fails again, and other rows of its batch would not.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Database(sqlx::Error::Database(error)) => {
                error.code().is_some_and(|code| code.starts_with("22"))
            }
            Error::Shared(error) => error.is_bad_input(),
            _ => false,
        }
    }
}

/// Whether a sqlx error means "the database is not there right now":
/// connection and pool failures, and PostgreSQL's connection-exception
/// (08), insufficient-resources (53), operator-intervention (57) and
/// system-error (58) classes, and the limits of `database::failover`.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(error) => error.code().is_some_and(|code| {
            ["08", "53", "57", "58"]
                .iter()
                .any(|class| code.starts_with(class))
                // A session ended for idling in its transaction (a frozen
                // node's), a lock not had within `lock_timeout`, a server
                // that turned read-only (a failover under way).
                || ["25P03", "55P03", "25006"].contains(&code.as_ref())
        }),
        _ => false,
    }
}

/// [`is_unavailable`] for an error that came back boxed (through cqrs-es's
/// event store): `false` unless it is a database error that says so.
pub fn is_unavailable_source(error: &(dyn std::error::Error + 'static)) -> bool {
    error
        .downcast_ref::<sqlx::Error>()
        .is_some_and(is_unavailable)
}

/// The time now in microseconds since the Unix epoch (how every time is
/// stored), by the cluster's clock:
/// this machine's wall clock corrected by the offset to the database's
/// clock that the last heartbeat measured (see [`set_clock_offset`]; 0 on
/// SQLite and until the first heartbeat). Every timestamp webhookd stores
/// or compares with stored ones (deliveries' due times, retention's
/// cutoff, signatures) comes from here, so nodes whose clocks disagree
/// still agree on when a retry is due.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros() + CLOCK_OFFSET_MICROS.load(Ordering::Relaxed)
}

/// [`now_micros`] read from the database itself where there is one to
/// ask (PostgreSQL: `clock_timestamp()`), for work that compares with
/// stored times and may run before any heartbeat measured the offset —
/// `webhookd retention run` is a process of its own, on a machine whose
/// clock may be off. SQLite: this machine's clock is the only clock.
pub async fn database_now_micros(db: &Db) -> Result<i64, Error> {
    match db {
        Db::Sqlite(_) => Ok(now_micros()),
        Db::Postgres(pool) => Ok(sqlx::query_scalar(
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint",
        )
        .fetch_one(pool)
        .await?),
    }
}

/// [`now_micros`] as a date and time.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(now_micros()).unwrap_or_else(chrono::Utc::now)
}

static CLOCK_OFFSET_MICROS: AtomicI64 = AtomicI64::new(0);

/// Offsets smaller than this are measurement noise (half a round trip):
/// kept as they are, so that timestamps do not jitter at every heartbeat.
const CLOCK_OFFSET_NOISE_MICROS: i64 = 10_000;

/// Records the database's clock minus this machine's, as measured by a
/// heartbeat; returns the offset it replaced when it changed.
pub fn set_clock_offset(micros: i64) -> Option<i64> {
    let current = CLOCK_OFFSET_MICROS.load(Ordering::Relaxed);
    if (micros - current).abs() < CLOCK_OFFSET_NOISE_MICROS {
        return None;
    }
    CLOCK_OFFSET_MICROS.store(micros, Ordering::Relaxed);
    Some(current)
}

/// Formats stored microseconds as RFC 3339 UTC with second precision (`2026-11-22T10:25:05Z`).
pub fn micros_to_rfc3339(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A JSON value kept in a text column, decoded with its row
/// (`#[sqlx(try_from = "String")]`): text that does not decode fails the
/// row's query — a corrupt row is an error, never a default ("no headers").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JsonText<T>(pub T);

impl<T: serde::de::DeserializeOwned> TryFrom<String> for JsonText<T> {
    type Error = serde_json::Error;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        serde_json::from_str(&text).map(JsonText)
    }
}
