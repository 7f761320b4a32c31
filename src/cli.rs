//! Command-line interface. Commands that create something print only its id
//! or token on stdout (details on stderr), so scripts can capture them.
use aggregates::values::{parse_features, IpCidr, Plan, Scope, WebhookSecret};
use anyhow::{anyhow, Context};
use clap::{Args, Parser, Subcommand};
use projections::{event_types, tenancy};
use std::net::IpAddr;
use std::time::Duration;
use webhookd::cluster::Role;
use webhookd::delivery::retry::RetrySchedule;
use webhookd::settings::{Settings, DEFAULT_BIND, DEFAULT_DATABASE_URL};
use webhookd::startup::Application;
use webhookd::{admin, database};

#[derive(Debug, Parser)]
#[command(name = "webhookd", version, about = "Self-hosted webhook service")]
pub struct Cli {
    /// sqlite://PATH (default, created if missing) or postgres://…
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    pub database_url: String,
    /// Log lines as text (for people) or JSON lines (for log pipelines:
    /// every line with its span fields, so one event id finds its whole life).
    #[arg(long, value_enum, env = "WEBHOOKD_LOG_FORMAT", default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// The master key that seals endpoint secrets at rest: base64 of 32
    /// random bytes (`openssl rand -base64 32`). Without one, SQLite keeps
    /// a generated key in `<database>.key`; PostgreSQL stores secrets
    /// unencrypted (with a warning at every start).
    #[arg(
        long,
        env = "WEBHOOKD_ENCRYPTION_KEY",
        hide_env_values = true,
        global = true
    )]
    pub encryption_key: Option<String>,
    /// A file holding the master key (instead of --encryption-key).
    #[arg(long, env = "WEBHOOKD_ENCRYPTION_KEY_FILE", global = true)]
    pub encryption_key_file: Option<std::path::PathBuf>,
    /// Earlier master keys, comma-separated: what they sealed stays
    /// readable while `webhookd secrets rotate-key` re-seals it.
    #[arg(
        long,
        env = "WEBHOOKD_PREVIOUS_ENCRYPTION_KEYS",
        hide_env_values = true,
        value_delimiter = ',',
        global = true
    )]
    pub previous_encryption_keys: Vec<String>,
    /// SQLite only: `full` (the default) makes every commit durable
    /// against power loss; `normal` trades that for faster commits (still
    /// safe against a crash of the process). See `database::SqliteSync`.
    #[arg(
        long,
        value_enum,
        env = "WEBHOOKD_SQLITE_SYNCHRONOUS",
        default_value_t = database::SqliteSync::Full,
        global = true
    )]
    pub sqlite_synchronous: database::SqliteSync,
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    pub fn encryption_keys(&self) -> database::EncryptionKeys {
        database::EncryptionKeys {
            key: self.encryption_key.clone(),
            key_file: self.encryption_key_file.clone(),
            previous: self.previous_encryption_keys.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the service (the default when no command is given).
    Serve(Box<ServeArgs>),
    /// Manage organisations (tenants).
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage the event type catalog.
    #[command(subcommand, name = "event-types")]
    EventTypes(EventTypesCommand),
    /// Replay the event log (secrets redacted); --verify checks the read models.
    Audit(AuditArgs),
    /// Read models: rebuild them from the log, or see how far behind they are.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// The cluster's nodes (PostgreSQL).
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Deleting old deliveries by hand (serve does it in the background).
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Secrets at rest: re-sealing them under a new master key.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Print the OpenAPI 3.1 document of the HTTP API (as served at
    /// /api/v1/openapi.json); needs no database.
    Openapi,
    /// Receive webhooks locally and show whether their signatures verify.
    Listen {
        #[arg(long, default_value_t = 9000)]
        port: u16,
        /// The webhook's secret (whsec_…), to check the signatures.
        #[arg(long)]
        secret: Option<String>,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "WEBHOOKD_BIND", default_value = DEFAULT_BIND)]
    pub bind: String,
    /// Development mode: allow http:// and loopback/private webhook targets.
    #[arg(long)]
    pub dev: bool,
    /// Let webhooks target this private range anyway (repeatable), e.g. 10.1.0.0/16.
    #[arg(long = "allow-target", value_name = "CIDR", value_parser = parse_cidr)]
    pub allow_targets: Vec<IpCidr>,
    /// Waits between retries; the last repeats.
    #[arg(long, default_value = "5s,30s,2m,10m,30m,1h", value_parser = RetrySchedule::parse)]
    pub retry_schedule: RetrySchedule,
    /// Deactivate an endpoint after this many consecutive failed attempts…
    #[arg(long, default_value_t = 50)]
    pub disable_after_failures: i64,
    /// …that span at least this long.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub disable_after: Duration,
    /// Answer a host name with a fixed address before DNS (repeatable), like
    /// curl's --resolve: HOST=IP. The address rules still apply.
    #[arg(long = "resolve", value_name = "HOST=IP", value_parser = parse_resolve)]
    pub resolve: Vec<(String, IpAddr)>,
    /// Send deliveries from this local address (receivers that allow-list
    /// senders; one per node makes each node's requests tell apart).
    #[arg(long, value_name = "IP")]
    pub delivery_source_address: Option<IpAddr>,
    /// How long an endpoint actor with nothing to do lives on.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// HTTP worker threads (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Threads the endpoint actors run on (default: one per core).
    #[arg(long)]
    pub delivery_threads: Option<usize>,
    /// Pending deliveries an endpoint keeps in memory; the rest of its
    /// backlog waits in the database (an endpoint that is down costs no
    /// more than this).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(100..))]
    pub max_queued_per_endpoint: u32,
    /// Pending deliveries all endpoints of this node keep in memory
    /// together; past it backlogs wait in the database (a thousand dead
    /// endpoints cost no more than this).
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u32).range(100..))]
    pub max_queued_deliveries: u32,
    /// A request's body must arrive within this of its headers (else 408
    /// and the connection is closed).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// A request body must arrive at least this fast, in bytes a second,
    /// after its first 5 s.
    #[arg(long, default_value_t = 1024)]
    pub min_body_rate: u64,
    /// Concurrent client connections; past it new ones wait to be accepted.
    /// Lowered at start to fit the file descriptor limit.
    #[arg(long, default_value_t = webhookd::settings::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// What this node does: all (API and delivery), api or worker
    /// (several roles need PostgreSQL).
    #[arg(long, value_enum, default_value_t = Role::All)]
    pub role: Role,
    /// This node's id in the cluster (default: host name, process id and a
    /// random suffix).
    #[arg(long)]
    pub node_id: Option<String>,
    /// A node whose heartbeat is older than this is dead to the others;
    /// its endpoints move to the survivors (at least 2 s: a lease counts
    /// locally for 1 s less than in the database).
    #[arg(long, default_value = "10s", value_parser = parse_node_timeout)]
    pub node_timeout: Duration,
    /// PostgreSQL connections of this node's query pool (9 more come on
    /// top: its 5 group-commit writers', 2 of its lease heartbeat, its
    /// notification listener and its notification sender).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(2..))]
    pub max_db_connections: u32,
    /// Serve `GET /metrics` on this address instead of on `--bind`.
    #[arg(long, value_name = "ADDR")]
    pub metrics_bind: Option<String>,
    /// No Prometheus metrics (every metric call becomes a no-op).
    #[arg(long)]
    pub no_metrics: bool,
    /// On SIGTERM: how long requests and attempts under way may take to finish.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
    /// Deliveries (with their attempts) and published events older than
    /// this are deleted in the background; the event log never is.
    #[arg(long, default_value = "30d", value_parser = parse_retention)]
    pub retention: Duration,
}

fn parse_retention(raw: &str) -> Result<Duration, String> {
    let retention = humantime::parse_duration(raw).map_err(|e| e.to_string())?;
    if retention < Duration::from_secs(60) {
        return Err("must be at least 1m".to_owned());
    }
    Ok(retention)
}

fn parse_node_timeout(raw: &str) -> Result<Duration, String> {
    let timeout = humantime::parse_duration(raw).map_err(|e| e.to_string())?;
    if timeout < Duration::from_secs(2) {
        return Err("must be at least 2s".to_owned());
    }
    Ok(timeout)
}

fn parse_cidr(raw: &str) -> Result<IpCidr, String> {
    IpCidr::parse(raw).map_err(|e| e.to_string())
}

fn parse_resolve(raw: &str) -> Result<(String, IpAddr), String> {
    let (host, ip) = raw
        .split_once('=')
        .ok_or_else(|| format!("'{raw}' is not HOST=IP"))?;
    let ip = ip
        .parse()
        .map_err(|_| format!("'{ip}' is not an IP address"))?;
    Ok((host.to_ascii_lowercase(), ip))
}

#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// Only this organisation's configs.
    #[arg(long)]
    pub org: Option<i64>,
    /// Only this webhook config.
    #[arg(long)]
    pub webhook: Option<i64>,
    /// From this time on (RFC 3339 or YYYY-MM-DD).
    #[arg(long, value_parser = parse_time)]
    pub since: Option<i64>,
    /// Before this time (RFC 3339 or YYYY-MM-DD).
    #[arg(long, value_parser = parse_time)]
    pub until: Option<i64>,
    /// Only events of this type, e.g. Deactivated.
    #[arg(long = "type")]
    pub event_type: Option<String>,
    /// JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Fold every config from the log and compare it with the read model;
    /// exit 1 on any drift.
    #[arg(long)]
    pub verify: bool,
}

fn parse_time(raw: &str) -> Result<i64, String> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Ok(at.timestamp_micros());
    }
    chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map(|at| at.and_utc().timestamp_micros())
        .ok_or_else(|| format!("'{raw}' is not an RFC 3339 time or a YYYY-MM-DD date"))
}

#[derive(Debug, Clone, Subcommand)]
pub enum ClusterCommand {
    /// Lists the nodes (id, address, role, started, last heartbeat, what
    /// each owns); exits 1 when the cluster is unhealthy (no live node that
    /// delivers, or endpoints that no live node owns).
    Status {
        /// The node timeout the nodes run with.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        node_timeout: Duration,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum RetentionCommand {
    /// One pass: deletes what is older than --retention and prints it.
    Run {
        #[arg(long, default_value = "30d", value_parser = parse_retention)]
        retention: Duration,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum SecretsCommand {
    /// Re-wraps every config's data key and re-seals the read model's
    /// secrets under --encryption-key; the keys they were sealed with must
    /// be in --previous-encryption-keys. Servers keep running meanwhile
    /// (give them both keys first; see docs/src/operator/configuration.md).
    RotateKey,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ProjectionsCommand {
    /// Rebuild a read model from the log into shadow tables and swap it in.
    Rebuild {
        /// Which projection (default: all).
        #[arg(long)]
        projection: Option<String>,
    },
    /// Each projection's position against the head of the log.
    Status,
}

#[derive(Debug, Clone, Subcommand)]
pub enum OrgCommand {
    /// Create an organisation; prints its id.
    Create {
        #[arg(long)]
        name: String,
        /// standard, professional, business or enterprise.
        #[arg(long, default_value = "business")]
        plan: String,
        /// Comma-separated feature flags, e.g. `webhooks`.
        #[arg(long, default_value = "")]
        features: String,
    },
    /// List organisations.
    List,
    /// Change an organisation's plan and/or feature flags (at once, on
    /// every running server).
    Update {
        id: i64,
        /// standard, professional, business or enterprise.
        #[arg(long)]
        plan: Option<String>,
        /// Comma-separated feature flags; replaces the current ones ("" for none).
        #[arg(long)]
        features: Option<String>,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum KeyCommand {
    /// Create an API key; prints its token (shown only this once).
    Create {
        #[arg(long)]
        org: i64,
        /// Comma-separated: webhooks, publish, audit.
        #[arg(long)]
        scopes: String,
        /// The config that routes this key's published events (configs API).
        #[arg(long)]
        webhook_config: Option<i64>,
    },
    /// List API keys (never their tokens), revoked ones with when.
    List {
        #[arg(long)]
        org: Option<i64>,
    },
    /// Revoke a key: refused at once; it stays listed as revoked.
    Revoke { id: i64 },
    /// Give a key a new token (printed once): same id, scopes and routing;
    /// the old token is refused at once.
    Rotate { id: i64 },
}

#[derive(Debug, Clone, Subcommand)]
pub enum EventTypesCommand {
    /// Add an event type (or change its description or schema).
    Add {
        name: String,
        /// Required for a new type; an existing one keeps its own if omitted.
        #[arg(long)]
        description: Option<String>,
        /// A JSON Schema file that a publish's `data` must satisfy (422
        /// with the schema's errors otherwise); listed in the catalog.
        #[arg(long, value_name = "FILE")]
        schema: Option<std::path::PathBuf>,
    },
    /// List the catalog.
    List,
}

pub async fn run(cli: &Cli, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve(cli, *args).await,
        Command::Openapi => {
            print!("{}", webhookd::http::openapi::document_json());
            Ok(())
        }
        Command::Listen { port, secret } => {
            let secret = secret
                .map(|s| WebhookSecret::parse(&s).map_err(|e| anyhow!("--secret: {e}")))
                .transpose()?;
            Ok(webhookd::listen::listen(port, secret).await?)
        }
        admin_command => {
            let db = database::connect(
                &cli.database_url,
                &cli.encryption_keys(),
                cli.sqlite_synchronous,
            )
            .await?;
            match admin_command {
                Command::Serve(_) | Command::Listen { .. } | Command::Openapi => {
                    unreachable!("handled above")
                }
                Command::Audit(args) => return audit_command(&db, args).await,
                Command::Cluster(ClusterCommand::Status { node_timeout }) => {
                    return cluster_status(&db, node_timeout).await
                }
                Command::Secrets(SecretsCommand::RotateKey) => {
                    let vault = projections::vault::of(&db);
                    let (data_keys, configs) = vault.rotate(&db).await?;
                    println!(
                        "re-wrapped {data_keys} data keys and re-sealed the secrets of {configs} configs"
                    );
                }
                Command::Retention(RetentionCommand::Run { retention }) => {
                    let deleted =
                        projections::deliveries::retention::run_pass(&db, retention).await?;
                    println!(
                        "deleted {} deliveries, {} attempts and {} published events older than {}",
                        deleted.deliveries,
                        deleted.attempts,
                        deleted.events,
                        humantime::format_duration(retention)
                    );
                }
                Command::Projections(ProjectionsCommand::Rebuild { projection }) => {
                    rebuild_command(&db, projection.as_deref()).await?
                }
                Command::Projections(ProjectionsCommand::Status) => {
                    let status = projections::rebuild::status(&db).await?;
                    println!(
                        "webhook_configs: {} rows; log head at position {} ({} events); {} rows behind the log",
                        status.rows, status.head_position, status.events, status.rows_behind
                    );
                }
                Command::Org(OrgCommand::Create {
                    name,
                    plan,
                    features,
                }) => {
                    let plan = Plan::parse(&plan).map_err(|e| anyhow!("--plan: {e}"))?;
                    let features =
                        parse_features(&features).map_err(|e| anyhow!("--features: {e}"))?;
                    let id = admin::create_organisation(&db, &name, plan, &features).await?;
                    eprintln!(
                        "created organisation {id} '{name}' (plan {plan}, features [{}])",
                        features.join(",")
                    );
                    println!("{id}");
                }
                Command::Org(OrgCommand::Update { id, plan, features }) => {
                    let plan = plan
                        .map(|p| Plan::parse(&p).map_err(|e| anyhow!("--plan: {e}")))
                        .transpose()?;
                    let features = features
                        .map(|f| parse_features(&f).map_err(|e| anyhow!("--features: {e}")))
                        .transpose()?;
                    let org =
                        admin::update_organisation(&db, id, plan, features.as_deref()).await?;
                    eprintln!(
                        "organisation {id} '{}' is now on plan {} with features [{}]",
                        org.name,
                        org.plan,
                        org.feature_flags().join(",")
                    );
                    println!("{id}");
                }
                Command::Org(OrgCommand::List) => {
                    println!(
                        "{:>6}  {:<24} {:<13} {:<24} default_config",
                        "id", "name", "plan", "features"
                    );
                    for org in tenancy::list_organisations(&db).await? {
                        println!(
                            "{:>6}  {:<24} {:<13} {:<24} {}",
                            org.id,
                            org.name,
                            org.plan,
                            org.feature_flags().join(","),
                            org.webhook_config_default
                                .map_or("-".into(), |c| c.to_string())
                        );
                    }
                }
                Command::Key(KeyCommand::Create {
                    org,
                    scopes,
                    webhook_config,
                }) => {
                    let scopes =
                        Scope::parse_list(&scopes).map_err(|e| anyhow!("--scopes: {e}"))?;
                    let key = admin::create_api_key(&db, org, &scopes, webhook_config).await?;
                    let names: Vec<_> = scopes.iter().map(|s| s.as_str()).collect();
                    eprintln!(
                        "created API key {} for organisation {org} (scopes {}); the token is shown only now",
                        key.id,
                        names.join(",")
                    );
                    println!("{}", key.token);
                }
                Command::Key(KeyCommand::List { org }) => {
                    println!(
                        "{:>6}  {:>6}  {:<24} {:<14} revoked",
                        "id", "org", "scopes", "webhook_config"
                    );
                    for key in tenancy::list_keys(&db, org, true).await? {
                        let names: Vec<_> = key.scopes().iter().map(|s| s.as_str()).collect();
                        println!(
                            "{:>6}  {:>6}  {:<24} {:<14} {}",
                            key.id,
                            key.organisation,
                            names.join(","),
                            key.webhook_config.map_or("-".into(), |c| c.to_string()),
                            key.revoked_at
                                .map_or("-".into(), projections::db::micros_to_rfc3339)
                        );
                    }
                }
                Command::Key(KeyCommand::Revoke { id }) => {
                    let key = admin::revoke_key(&db, id).await?;
                    eprintln!(
                        "revoked API key {id} of organisation {}; it is refused from now on",
                        key.organisation
                    );
                    println!("{id}");
                }
                Command::Key(KeyCommand::Rotate { id }) => {
                    let key = admin::rotate_key(&db, id).await?;
                    eprintln!(
                        "API key {id} of organisation {} has a new token (shown only now); the old one is refused",
                        key.organisation
                    );
                    println!("{}", key.token);
                }
                Command::EventTypes(EventTypesCommand::Add {
                    name,
                    description,
                    schema,
                }) => {
                    let schema = schema
                        .map(|path| {
                            std::fs::read_to_string(&path)
                                .with_context(|| format!("--schema {}", path.display()))
                        })
                        .transpose()?;
                    let known = event_types::list(&db).await?.iter().any(|t| t.name == name);
                    match description {
                        Some(description) => {
                            admin::add_event_type(&db, &name, &description).await?
                        }
                        None if !known => anyhow::bail!("a new event type needs --description"),
                        None => {}
                    }
                    if let Some(schema) = schema {
                        admin::set_event_type_schema(&db, &name, Some(&schema)).await?;
                    }
                    eprintln!("event type '{name}' is in the catalog");
                    println!("{name}");
                }
                Command::EventTypes(EventTypesCommand::List) => {
                    for event_type in event_types::list(&db).await? {
                        println!("{:<40} {}", event_type.name, event_type.description);
                    }
                }
            }
            Ok(())
        }
    }
}

async fn cluster_status(db: &projections::Db, node_timeout: Duration) -> anyhow::Result<()> {
    let projections::Db::Postgres(pool) = db else {
        println!("single node (SQLite): no cluster");
        return Ok(());
    };
    let status = projections::cluster::ClusterStore::new(pool.clone())
        .status()
        .await?;
    println!(
        "{:<32} {:<22} {:<7} {:<21} {:<25} {:>10} {:>9}  state",
        "node", "address", "role", "started", "last heartbeat", "partitions", "endpoints"
    );
    for node in &status.nodes {
        let state = if node.stopped {
            "stopped"
        } else if node.is_live(node_timeout) {
            "live"
        } else {
            "dead"
        };
        println!(
            "{:<32} {:<22} {:<7} {:<21} {:<25} {:>10} {:>9}  {state}",
            node.id,
            node.address,
            node.role,
            node.started_at,
            node.heartbeat_at,
            node.partitions,
            node.endpoints
        );
    }
    let healthy = status.healthy(node_timeout);
    println!(
        "{}: {} live node(s), {} of {} partitions without a live owner",
        if healthy { "healthy" } else { "UNHEALTHY" },
        status
            .nodes
            .iter()
            .filter(|n| n.is_live(node_timeout))
            .count(),
        status.unowned_partitions,
        webhookd::cluster::ownership::PARTITIONS
    );
    if !healthy {
        std::process::exit(1);
    }
    Ok(())
}

async fn audit_command(db: &projections::Db, args: AuditArgs) -> anyhow::Result<()> {
    if args.verify {
        let report = webhookd::audit::verify(db).await?;
        for drift in &report.drifts {
            println!("DRIFT {drift}");
        }
        eprintln!(
            "verified {} configs from {} events: {} drift(s)",
            report.configs,
            report.events,
            report.drifts.len()
        );
        if !report.drifts.is_empty() {
            std::process::exit(1);
        }
        return Ok(());
    }
    let query = webhookd::audit::AuditQuery {
        organisation: args.org,
        filter: projections::event_log::LogFilter {
            aggregate_id: args.webhook.map(|id| id.to_string()),
            since: args.since,
            until: args.until,
            event_type: args.event_type,
        },
        json: args.json,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let shown = webhookd::audit::audit(db, &query, &mut out).await?;
    eprintln!("{shown} event(s)");
    Ok(())
}

async fn rebuild_command(db: &projections::Db, projection: Option<&str>) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if let Some(name) = projection.filter(|n| !projections::rebuild::PROJECTIONS.contains(n)) {
        anyhow::bail!(
            "--projection: unknown projection '{name}'; known: {}",
            projections::rebuild::PROJECTIONS.join(", ")
        );
    }
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} events {per_sec} eta {eta}",
            )
            .expect("the template parses"),
        );
        bar
    });
    let mut last_line = std::time::Instant::now();
    let report = projections::rebuild::rebuild_webhook_configs(db, |done, total| match &bar {
        Some(bar) => {
            bar.set_length(total);
            bar.set_position(done);
        }
        None if last_line.elapsed() >= std::time::Duration::from_secs(2) || done == total => {
            eprintln!("rebuild webhook_configs: {done}/{total} events");
            last_line = std::time::Instant::now();
        }
        None => {}
    })
    .await
    .map_err(|e| anyhow!("rebuild failed, nothing was replaced: {e}"))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    println!(
        "rebuilt webhook_configs: {} configs from {} events in {:.2} s ({:.0} events/s)",
        report.configs,
        report.events,
        report.elapsed.as_secs_f64(),
        report.events_per_second()
    );
    Ok(())
}

async fn serve(cli: &Cli, args: ServeArgs) -> anyhow::Result<()> {
    let mut settings = Settings::new(&cli.database_url, &args.bind);
    settings.encryption = cli.encryption_keys();
    settings.sqlite_synchronous = cli.sqlite_synchronous;
    settings.dev = args.dev;
    settings.allowed_targets = args.allow_targets;
    settings.workers = args.workers;
    settings.body_deadline = webhookd::http::deadline::BodyDeadline {
        timeout: args.request_timeout,
        min_rate: args.min_body_rate,
    };
    settings.max_connections = args.max_connections;
    settings.role = args.role;
    settings.node_id = args.node_id;
    settings.node_timeout = args.node_timeout;
    settings.shutdown_grace = args.shutdown_grace;
    settings.retention = args.retention;
    settings.max_db_connections = args.max_db_connections;
    settings.metrics = !args.no_metrics;
    settings.metrics_bind = args.metrics_bind;
    settings.delivery.retry_schedule = args.retry_schedule;
    settings.delivery.disable_after_failures = args.disable_after_failures;
    settings.delivery.disable_after = args.disable_after;
    settings.delivery.idle_timeout = args.idle_timeout;
    settings.delivery.max_queued_per_endpoint = args.max_queued_per_endpoint as usize;
    settings.delivery.max_queued_deliveries = args.max_queued_deliveries as usize;
    if let Some(threads) = args.delivery_threads {
        settings.delivery.delivery_threads = threads;
    }
    settings.delivery.resolve_overrides = args.resolve.into_iter().collect();
    settings.delivery.source_address = args.delivery_source_address;
    let app = Application::build(&settings).await?;
    if let Some(key) = &app.bootstrap_key {
        println!(
            "webhookd: created organisation 'default' (id {}, plan business, feature webhooks)",
            key.organisation
        );
        println!("webhookd: and API key {} with scopes webhooks,publish,audit; it is shown only this once:", key.id);
        println!("{}", key.token);
    }
    tracing::info!(
        port = app.port(),
        backend = app.db().backend_name(),
        dev = settings.dev,
        "webhookd is listening"
    );
    app.run_until_stopped().await?;
    Ok(())
}
