//! Opening the database `DATABASE_URL` names and bringing its schema up to date.
use anyhow::{bail, Context};
use projections::vault::{MasterKey, MasterKeys};
use projections::Db;
use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::time::Duration;

/// How long a query waits for a PostgreSQL connection. It bounds what a
/// request waits while the database is down (sqlx keeps trying to connect
/// until then): the caller answers 503 with `Retry-After` within 2 s
/// instead of hanging. A healthy pool hands out a connection in
/// microseconds, so this only ever runs out in an outage.
pub const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_millis(1500);

mod failover;
use failover::PgTarget;
pub use failover::SessionLimits;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Where the master key that seals secrets at rest comes from (see
/// `projections::vault`): `--encryption-key` / `WEBHOOKD_ENCRYPTION_KEY`
/// (base64 of 32 bytes), or a file holding that text; earlier keys that
/// still open what they sealed while a rotation runs.
#[derive(Debug, Clone, Default)]
pub struct EncryptionKeys {
    pub key: Option<String>,
    pub key_file: Option<std::path::PathBuf>,
    pub previous: Vec<String>,
}

/// When a SQLite commit is durable (`--sqlite-synchronous`). Under WAL,
/// `full` syncs the log at every commit: a publish answered 202 survives a
/// power loss or an OS crash. `normal` syncs only at checkpoints: faster
/// commits, and still safe against the process crashing (`kill -9`), but
/// the last commits before a power loss may be gone — an opt-in trade of
/// durability for speed, named as such.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SqliteSync {
    #[default]
    Full,
    Normal,
}

/// Connects and applies the migrations of the backend the URL names:
/// `sqlite://path` (created if missing) or `postgres://…`.
pub async fn connect(
    database_url: &str,
    keys: &EncryptionKeys,
    sqlite: SqliteSync,
) -> anyhow::Result<Db> {
    connect_as(database_url, "webhookd", 20, None, keys, sqlite).await
}

/// [`connect`], naming the connections (PostgreSQL's `application_name`,
/// shown in `pg_stat_activity`): a cluster node's carry its node id.
pub async fn connect_as(
    database_url: &str,
    name: &str,
    max_connections: u32,
    limits: Option<SessionLimits>,
    keys: &EncryptionKeys,
    sqlite: SqliteSync,
) -> anyhow::Result<Db> {
    let db = open(database_url, name, max_connections, limits, sqlite).await?;
    let master = master_keys(&db, keys)?;
    projections::vault::install(&db, master);
    Ok(db)
}

/// The master keys for this database. Without a configured key, SQLite
/// keeps a generated one in a file beside the database (`<file>.key`,
/// mode 0600); PostgreSQL, whose nodes must all share the key, stores
/// secrets unencrypted and says so at every start.
fn master_keys(db: &Db, keys: &EncryptionKeys) -> anyhow::Result<Option<MasterKeys>> {
    let configured =
        match (&keys.key, &keys.key_file) {
            (Some(text), _) => Some(text.clone()),
            (None, Some(path)) => Some(std::fs::read_to_string(path).with_context(|| {
                format!("cannot read the encryption key file {}", path.display())
            })?),
            (None, None) => None,
        };
    let primary = match (configured, db) {
        (Some(text), _) => MasterKey::parse(&text).map_err(anyhow::Error::msg)?,
        (None, Db::Postgres(_)) => {
            tracing::warn!(
                "no encryption key is configured (WEBHOOKD_ENCRYPTION_KEY): endpoint secrets                  are stored unencrypted in PostgreSQL"
            );
            return Ok(None);
        }
        (None, Db::Sqlite(pool)) => sqlite_key_file(pool.connect_options().get_filename())?,
    };
    let previous = keys
        .previous
        .iter()
        .filter(|text| !text.trim().is_empty())
        .map(|text| MasterKey::parse(text).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()
        .context("WEBHOOKD_PREVIOUS_ENCRYPTION_KEYS")?;
    Ok(Some(MasterKeys { primary, previous }))
}

/// The key file beside a SQLite database, made on first use.
fn sqlite_key_file(database: &std::path::Path) -> anyhow::Result<MasterKey> {
    let in_memory =
        database.as_os_str().is_empty() || database.to_string_lossy().contains(":memory:");
    if in_memory {
        return MasterKey::parse(&MasterKey::generate()).map_err(anyhow::Error::msg);
    }
    let mut path = database.as_os_str().to_owned();
    path.push(".key");
    let path = std::path::PathBuf::from(path);
    if !path.exists() {
        write_new_key_file(&path)?;
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the encryption key file {}", path.display()))?;
    MasterKey::parse(&text).map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))
}

/// Writes a generated key to `path` unless another process got there
/// first: the key goes to a file of this process's own, which is then
/// linked in place (atomic, and refused when `path` exists), so a reader
/// never sees a key file half written.
fn write_new_key_file(path: &std::path::Path) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut draft = path.as_os_str().to_owned();
    draft.push(format!(".{}.new", std::process::id()));
    let draft = std::path::PathBuf::from(draft);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&draft)
        .with_context(|| format!("cannot create {}", draft.display()))?;
    file.write_all(MasterKey::generate().as_bytes())?;
    file.sync_all()?;
    let linked = std::fs::hard_link(&draft, path);
    let _ = std::fs::remove_file(&draft);
    match linked {
        Ok(()) => {
            tracing::info!(file = %path.display(), "generated the encryption key for secrets at rest");
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error).with_context(|| format!("cannot create {}", path.display())),
    }
}

async fn open(
    database_url: &str,
    name: &str,
    max_connections: u32,
    limits: Option<SessionLimits>,
    sqlite: SqliteSync,
) -> anyhow::Result<Db> {
    if is_postgres(database_url) {
        let target = postgres_target(database_url).await?;
        if !sqlx::Postgres::database_exists(target.url())
            .await
            .context("cannot connect to PostgreSQL")?
        {
            // Nodes starting together race to create it: losing is fine.
            if let Err(error) = sqlx::Postgres::create_database(target.url()).await {
                if !sqlx::Postgres::database_exists(target.url())
                    .await
                    .unwrap_or(false)
                {
                    return Err(error).context("cannot create the PostgreSQL database");
                }
            }
        }
        let pool = postgres_pool(&target, name, max_connections, limits).await?;
        POSTGRES_MIGRATIONS
            .run(&pool)
            .await
            .context("cannot apply the PostgreSQL migrations")?;
        Ok(Db::Postgres(pool))
    } else if database_url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(database_url)
            .context("DATABASE_URL is not a valid sqlite:// URL")?
            .create_if_missing(true)
            // WAL lets readers proceed while one writer commits; a busy
            // timeout makes concurrent writers queue instead of failing.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match sqlite {
                SqliteSync::Full => SqliteSynchronous::Full,
                SqliteSync::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(Duration::from_secs(30))
            // No foreign keys, as on PostgreSQL since its 0005 dropped the
            // delivery tables' (SQLite cannot drop a constraint without
            // rebuilding the table, so here they are not enforced): webhookd
            // writes both sides itself, and SQLite checks a parent's delete
            // by scanning the child table when its key has no index — a
            // retention pass deleting 500 old events scanned `deliveries`
            // 500 times, holding the one write lock for seconds (9.6 s with
            // 200 000 deliveries) while every publish waited past its
            // deadline.
            .foreign_keys(false)
            // SQLite checkpoints the WAL inside the commit that crosses
            // 1 000 pages: with per-event writes that was several times a
            // second, each time stalling the one writer (and every publish
            // queued behind it) on an fsync. A background task checkpoints
            // instead (see `checkpoint_periodically`).
            .pragma("wal_autocheckpoint", "0")
            // When the log starts over it is cut back to 64 MiB: a burst
            // does not leave its high-water mark on the disk for good.
            .pragma("journal_size_limit", "67108864");
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // No ping before every use (a hand-off to the connection's
            // worker thread and back, seen in the profile): a local file
            // does not drop the connection.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .context("cannot open the SQLite database")?;
        SQLITE_MIGRATIONS
            .run(&pool)
            .await
            .context("cannot apply the SQLite migrations")?;
        tokio::spawn(checkpoint_periodically(pool.clone()));
        Ok(Db::Sqlite(pool))
    } else {
        bail!("DATABASE_URL must start with sqlite:// or postgres:// (got a URL of another scheme)")
    }
}

fn is_postgres(database_url: &str) -> bool {
    database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")
}

/// The hosts of `DATABASE_URL`, probed in order until one takes writes.
async fn postgres_target(database_url: &str) -> anyhow::Result<PgTarget> {
    let target = PgTarget::parse(database_url)?;
    target.find_writable().await;
    Ok(target)
}

/// A pool on `target`'s writable host that follows it when it moves (see
/// [`failover`]); its sessions carry `limits` (a serving node's).
async fn postgres_pool(
    target: &PgTarget,
    name: &str,
    max_connections: u32,
    limits: Option<SessionLimits>,
) -> anyhow::Result<sqlx::PgPool> {
    let mut options = target.current_options().application_name(name);
    if let Some(limits) = limits {
        options = options.options(limits.settings());
    }
    let pool = postgres_pool_options(max_connections, target.read_write)
        .connect_with(options)
        .await
        .context("cannot connect to PostgreSQL")?;
    failover::register(&pool);
    failover::follow(target);
    Ok(pool)
}

/// A pool of its own beside `parent` — same database, host, limits and
/// failover — whose sessions also carry `settings` and whose connections
/// are named `<parent's name>:<role>`. Connects lazily: its connections
/// belong to the runtime of whoever first uses them.
pub fn derived_pool(
    parent: &sqlx::PgPool,
    role: &str,
    settings: &[(&str, &str)],
    max_connections: u32,
) -> sqlx::PgPool {
    let parent_options = parent.connect_options();
    let name = format!(
        "{}:{role}",
        parent_options.get_application_name().unwrap_or("webhookd")
    );
    let options = (*parent_options)
        .clone()
        .application_name(&name)
        .options(settings.iter().copied());
    let pool =
        postgres_pool_options(max_connections, failover::read_write()).connect_lazy_with(options);
    failover::register(&pool);
    pool
}

fn postgres_pool_options(max_connections: u32, read_write: bool) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        // sqlx pings a pooled connection before every use by default: a
        // second round trip per query in the profile. A connection the
        // server dropped now fails the one query that finds out (an
        // error answer) and is not returned to the pool.
        .test_before_acquire(false)
        .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
        // A standby (or a demoted primary) takes no writes: with several
        // hosts and `target_session_attrs=read-write`, a connection that
        // lands on one is refused, and the pool opens another.
        .after_connect(move |connection, _| {
            Box::pin(async move {
                if read_write && failover::is_read_only(connection).await? {
                    return Err(sqlx::Error::Protocol(
                        "the server is read-only (a standby): not a target".into(),
                    ));
                }
                Ok(())
            })
        })
}

/// Copies the WAL into the database file four times a second, beside the writers
/// (a passive checkpoint waits for nobody and blocks nobody), so that no
/// commit pays for a checkpoint. It cannot make SQLite start the log over
/// while writes go on (a write always comes between its end and the next
/// transaction): the hot path's writer thread checkpoints too, between its
/// own transactions, and that is what keeps the WAL small under load (see
/// `projections::deliveries::sqlite_thread`).
async fn checkpoint_periodically(pool: sqlx::SqlitePool) {
    let mut tick = tokio::time::interval(CHECKPOINT_INTERVAL);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            tracing::warn!(%error, "cannot checkpoint the SQLite WAL");
        }
    }
}

const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);

#[cfg(test)]
mod tests {
    use super::*;

    /// `PRAGMA synchronous` of a connection of the pool: 2 is FULL, 1 NORMAL.
    async fn synchronous_of(sqlite: SqliteSync) -> i64 {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        let db = connect(&url, &EncryptionKeys::default(), sqlite)
            .await
            .unwrap();
        let Db::Sqlite(pool) = db else {
            unreachable!("a sqlite:// URL")
        };
        sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&pool)
            .await
            .unwrap()
    }

    /// An acknowledged publish must survive a power loss, not only a killed
    /// process: SQLite syncs its log at every commit unless the operator
    /// chose otherwise.
    #[tokio::test]
    async fn sqlite_commits_are_synced_unless_normal_is_asked_for() {
        assert_eq!(synchronous_of(SqliteSync::default()).await, 2);
        assert_eq!(synchronous_of(SqliteSync::Normal).await, 1);
    }
}
