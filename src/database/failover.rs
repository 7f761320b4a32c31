//! PostgreSQL as production runs it: a primary that may fail over to a
//! standby, and nodes that may freeze or lose the network while they hold
//! locks.
//!
//! * **Several hosts.** `DATABASE_URL` may list hosts as libpq does,
//!   `postgres://u@h1:5432,h2:5432/db?target_session_attrs=read-write`
//!   (sqlx takes one host only). The pools are opened on the first host
//!   that takes writes, and every pool of the process — the query pool,
//!   the group-commit writers', the heartbeat's — is registered
//!   ([`register`]) with one watcher ([`follow`]). Twice a second it checks
//!   that the host still takes writes and, when it does not (the primary
//!   died, a standby was promoted), points every registered pool's new
//!   connections at the host that now does. No restart: connections to the
//!   old primary fail the one query that finds out and are not reused. With
//!   `read-write`, a connection that lands on a read-only server is refused
//!   at once. One database per process: the first multi-host target
//!   started is the one followed.
//! * **Session limits** ([`SessionLimits`]): a serving node's sessions
//!   carry server-side timeouts, so that PostgreSQL itself ends the
//!   transaction of a node that froze or was cut off in the middle of it
//!   and frees its locks — no lock of a sick node outlives its lease, and
//!   the healthy nodes wait at most that long for it.
use anyhow::{bail, Context};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Server-side limits of a serving node's sessions (PostgreSQL settings,
/// sent at connect).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// `idle_in_transaction_session_timeout`: a transaction whose client
    /// says nothing for this long is ended with its session. webhookd's
    /// transactions send their statements back to back, so only a frozen
    /// or cut-off node reaches it.
    pub idle_in_transaction: Duration,
    /// `lock_timeout`: a statement waits this long for a lock, then fails
    /// (the caller answers 503 or tries again).
    pub lock: Duration,
    /// `statement_timeout`.
    pub statement: Duration,
}

impl SessionLimits {
    /// The limits for a node whose leases last `node_timeout`: a
    /// transaction left idle ends within a quarter of it (at most 1 s, so
    /// the healthy nodes' publishes that wait on its locks stay under a
    /// second), and no lock wait lasts longer than a lease.
    pub fn for_lease(node_timeout: Duration) -> Self {
        Self {
            idle_in_transaction: (node_timeout / 4)
                .clamp(Duration::from_millis(250), Duration::from_secs(1)),
            lock: node_timeout,
            statement: Duration::from_secs(60).max(node_timeout * 2),
        }
    }

    /// As `-c name=value` pairs of the startup packet. TCP keepalives let
    /// the server notice a vanished client within ~10 s even when it holds
    /// no transaction. No JIT: webhookd's statements are short, and a
    /// plan whose estimated cost passes `jit_above_cost` (a count over a
    /// large table) was compiled on every execution (~0.1–0.5 s each).
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("jit", "off".to_owned()),
            (
                "idle_in_transaction_session_timeout",
                self.idle_in_transaction.as_millis().to_string(),
            ),
            ("lock_timeout", self.lock.as_millis().to_string()),
            ("statement_timeout", self.statement.as_millis().to_string()),
            ("tcp_keepalives_idle", "5".to_owned()),
            ("tcp_keepalives_interval", "1".to_owned()),
            ("tcp_keepalives_count", "5".to_owned()),
        ]
    }
}

/// The hosts `DATABASE_URL` names and which of them takes writes now.
#[derive(Clone, Debug)]
pub struct PgTarget {
    /// One single-host URL per host, in the order given.
    urls: Arc<Vec<String>>,
    options: Arc<Vec<PgConnectOptions>>,
    current: Arc<AtomicUsize>,
    /// `target_session_attrs=read-write` (or several hosts, where nothing
    /// else makes sense for a service that writes).
    pub(super) read_write: bool,
}

impl PgTarget {
    pub fn parse(database_url: &str) -> anyhow::Result<Self> {
        let (urls, attrs) = split_hosts(database_url)?;
        let read_write = match attrs.as_deref() {
            None => urls.len() > 1,
            Some("read-write" | "primary") => true,
            Some("any") => false,
            Some(other) => {
                bail!("target_session_attrs={other} is not supported (read-write, primary or any)")
            }
        };
        let options = urls
            .iter()
            .map(|url| {
                PgConnectOptions::from_str(url)
                    .context("DATABASE_URL is not a valid postgres:// URL")
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            urls: Arc::new(urls),
            options: Arc::new(options),
            current: Arc::default(),
            read_write,
        })
    }

    pub fn hosts(&self) -> usize {
        self.urls.len()
    }

    /// The single-host URL of the host in use.
    pub fn url(&self) -> &str {
        &self.urls[self.current.load(Ordering::Acquire)]
    }

    /// The connect options of the host in use.
    pub fn current_options(&self) -> PgConnectOptions {
        self.options[self.current.load(Ordering::Acquire)].clone()
    }

    fn host_of(&self, index: usize) -> (String, u16) {
        let options = &self.options[index];
        (options.get_host().to_owned(), options.get_port())
    }

    /// Probes the hosts in order and makes the first that takes writes (or,
    /// without `read-write`, answers) the one in use; `true` when that
    /// changed it. With one host, nothing to choose.
    pub async fn find_writable(&self) -> bool {
        if self.hosts() == 1 {
            return false;
        }
        for (index, options) in self.options.iter().enumerate() {
            if probe(options, self.read_write).await {
                let before = self.current.swap(index, Ordering::AcqRel);
                return before != index;
            }
        }
        false
    }
}

/// Whether a fresh connection to `options` answers within a second and,
/// when `read_write`, takes writes.
async fn probe(options: &PgConnectOptions, read_write: bool) -> bool {
    let options = options.clone().disable_statement_logging();
    let attempt = async {
        let mut connection = PgConnection::connect_with(&options).await?;
        let writable = !read_write || !is_read_only(&mut connection).await?;
        let _ = connection.close().await;
        Ok::<_, sqlx::Error>(writable)
    };
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, attempt).await,
        Ok(Ok(true))
    )
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
const FOLLOW_INTERVAL: Duration = Duration::from_millis(500);

/// Whether the server behind `connection` refuses writes (a standby).
pub(super) async fn is_read_only(connection: &mut PgConnection) -> Result<bool, sqlx::Error> {
    let read_only: String = sqlx::query_scalar("SHOW transaction_read_only")
        .fetch_one(&mut *connection)
        .await?;
    Ok(read_only == "on")
}

/// The pools that follow the writable host (see the module's docs).
static FOLLOWED: Mutex<Vec<PgPool>> = Mutex::new(Vec::new());
static FOLLOWING: AtomicBool = AtomicBool::new(false);
/// The followed target refuses read-only servers (see [`PgTarget`]).
static READ_WRITE: AtomicBool = AtomicBool::new(false);

/// Whether pools of this process refuse read-only servers.
pub(super) fn read_write() -> bool {
    READ_WRITE.load(Ordering::Acquire)
}

/// `pool`'s new connections go wherever the writable host goes.
pub(super) fn register(pool: &PgPool) {
    let mut pools = FOLLOWED.lock().unwrap_or_else(|p| p.into_inner());
    pools.retain(|p| !p.is_closed());
    pools.push(pool.clone());
}

/// Starts the one watcher of `target` (a no-op with one host, or when
/// one runs already).
pub(super) fn follow(target: &PgTarget) {
    if target.read_write {
        READ_WRITE.store(true, Ordering::Release);
    }
    if target.hosts() > 1 && !FOLLOWING.swap(true, Ordering::AcqRel) {
        tokio::spawn(watch(target.clone()));
    }
}

fn followed() -> Vec<PgPool> {
    let mut pools = FOLLOWED.lock().unwrap_or_else(|p| p.into_inner());
    pools.retain(|p| !p.is_closed());
    pools.clone()
}

/// Twice a second, the first registered pool is asked whether its server
/// is in recovery; when it cannot answer or is, the hosts are probed again
/// in order, and a new writable host becomes every registered pool's.
async fn watch(target: PgTarget) {
    let mut tick = tokio::time::interval(FOLLOW_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let pools = followed();
        let Some(first) = pools.first() else {
            continue;
        };
        let check = async {
            let mut connection = first.acquire().await?;
            sqlx::query_scalar::<_, bool>("SELECT pg_is_in_recovery()")
                .fetch_one(&mut *connection)
                .await
        };
        let healthy = matches!(
            tokio::time::timeout(PROBE_TIMEOUT, check).await,
            Ok(Ok(false))
        );
        if healthy {
            continue;
        }
        tracing::info!("the database's host does not answer as writable; probing the hosts");
        if !target.find_writable().await {
            continue;
        }
        let (host, port) = target.host_of(target.current.load(Ordering::Acquire));
        tracing::warn!(
            host,
            port,
            pools = pools.len(),
            "the database's writable host changed: new connections go there"
        );
        for pool in &pools {
            let options = (*pool.connect_options()).clone().host(&host).port(port);
            pool.set_connect_options(options);
        }
    }
}

/// Splits a libpq-style multi-host URL into one URL per host (each with
/// the same user, database and parameters, less `target_session_attrs`),
/// and returns that parameter's value.
fn split_hosts(database_url: &str) -> anyhow::Result<(Vec<String>, Option<String>)> {
    let (scheme, rest) = database_url
        .split_once("://")
        .context("DATABASE_URL is not a URL")?;
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    let (path, query) = tail
        .split_once('?')
        .map_or((tail, None), |(path, query)| (path, Some(query)));
    let mut attrs = None;
    let kept: Vec<&str> = query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| match pair.split_once('=') {
            Some(("target_session_attrs", value)) => {
                attrs = Some(value.to_owned());
                false
            }
            _ => true,
        })
        .collect();
    let query = if kept.is_empty() {
        String::new()
    } else {
        format!("?{}", kept.join("&"))
    };
    let userinfo = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
    let urls: Vec<String> = hosts
        .split(',')
        .map(|host| format!("{scheme}://{userinfo}{host}{path}{query}"))
        .collect();
    if urls
        .iter()
        .any(|url| url.contains("://@") || url.ends_with("://"))
    {
        bail!("DATABASE_URL names an empty host");
    }
    Ok((urls, attrs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multi_host_url_becomes_one_url_per_host() {
        let (urls, attrs) = split_hosts(
            "postgres://u:p@127.0.0.1:5433,127.0.0.1:5434/db?sslmode=disable&target_session_attrs=read-write",
        )
        .unwrap();
        assert_eq!(
            urls,
            [
                "postgres://u:p@127.0.0.1:5433/db?sslmode=disable",
                "postgres://u:p@127.0.0.1:5434/db?sslmode=disable"
            ]
        );
        assert_eq!(attrs.as_deref(), Some("read-write"));
        let target =
            PgTarget::parse("postgres://u@a:1,b:2/db?target_session_attrs=read-write").unwrap();
        assert_eq!(target.hosts(), 2);
        assert!(target.read_write);
        assert_eq!(target.host_of(1), ("b".to_owned(), 2));
    }

    #[test]
    fn a_single_host_url_is_kept_as_it_is() {
        let (urls, attrs) = split_hosts("postgres://postgres@127.0.0.1:5432/x").unwrap();
        assert_eq!(urls, ["postgres://postgres@127.0.0.1:5432/x"]);
        assert_eq!(attrs, None);
        assert!(!PgTarget::parse("postgres://h/x").unwrap().read_write);
        assert!(PgTarget::parse("postgres://h/x?target_session_attrs=standby").is_err());
    }

    #[test]
    fn limits_follow_the_lease() {
        let limits = SessionLimits::for_lease(Duration::from_secs(3));
        assert_eq!(limits.idle_in_transaction, Duration::from_millis(750));
        assert_eq!(limits.lock, Duration::from_secs(3));
        let default = SessionLimits::for_lease(Duration::from_secs(10));
        assert_eq!(default.idle_in_transaction, Duration::from_secs(1));
    }
}
