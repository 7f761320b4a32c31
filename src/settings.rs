use crate::cluster::Role;
use crate::delivery::DeliverySettings;
use crate::http::deadline::BodyDeadline;
use aggregates::values::{IpCidr, UrlPolicy};
use std::time::Duration;

/// Where the service stores its data when `DATABASE_URL` is unset.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://webhookd.db";
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// Everything `webhookd serve` needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    pub bind: String,
    /// Development mode: `http://` and loopback/private targets are allowed.
    pub dev: bool,
    /// Address ranges webhooks may target although they are private (`--allow-target`).
    pub allowed_targets: Vec<IpCidr>,
    /// HTTP worker threads; `None` means one per core.
    pub workers: Option<usize>,
    /// How a request body must arrive (`--request-timeout`, `--min-body-rate`).
    pub body_deadline: BodyDeadline,
    /// Concurrent client connections (`--max-connections`), lowered at
    /// start to fit the file descriptor limit.
    pub max_connections: usize,
    /// `--role`: what this node does.
    pub role: Role,
    /// `--node-id`; generated when `None`.
    pub node_id: Option<String>,
    /// `--node-timeout`: a node silent this long is dead to the others.
    pub node_timeout: Duration,
    /// Prometheus metrics on (`--no-metrics` turns them off).
    pub metrics: bool,
    /// `--metrics-bind`: serve `/metrics` there instead of on `bind`.
    pub metrics_bind: Option<String>,
    /// `--max-db-connections`: the PostgreSQL query pool's size.
    pub max_db_connections: u32,
    /// `--shutdown-grace`: how long `SIGTERM` waits for requests and
    /// attempts under way.
    pub shutdown_grace: Duration,
    /// `--retention`: what is older goes (see `delivery::retention`).
    pub retention: Duration,
    /// Retry schedule, failure limits, name overrides (its `url_policy` is
    /// filled from `dev` and `allowed_targets` at start).
    pub delivery: DeliverySettings,
    /// The master key for secrets at rest (see `database::EncryptionKeys`).
    pub encryption: crate::database::EncryptionKeys,
    /// `--sqlite-synchronous`: when a SQLite commit is durable.
    pub sqlite_synchronous: crate::database::SqliteSync,
}

impl Settings {
    pub fn new(database_url: &str, bind: &str) -> Self {
        Self {
            database_url: database_url.to_owned(),
            bind: bind.to_owned(),
            dev: false,
            encryption: Default::default(),
            sqlite_synchronous: Default::default(),
            allowed_targets: Vec::new(),
            workers: None,
            body_deadline: BodyDeadline::default(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            role: Role::All,
            node_id: None,
            node_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
            retention: Duration::from_secs(30 * 24 * 3600),
            max_db_connections: 20,
            metrics: true,
            metrics_bind: None,
            delivery: DeliverySettings::default(),
        }
    }

    pub fn url_policy(&self) -> UrlPolicy {
        let base = if self.dev {
            UrlPolicy::development()
        } else {
            UrlPolicy::production()
        };
        UrlPolicy {
            allowed_targets: self.allowed_targets.clone(),
            ..base
        }
    }
}
