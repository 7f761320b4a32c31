//! Command-line interface. Commands that create something print only its id
//! or token on stdout (details on stderr), so scripts can capture them.
use aggregates::values::{parse_features, IpCidr, Plan, Scope, WebhookSecret};
use anyhow::anyhow;
use clap::{Args, Parser, Subcommand};
use projections::{event_types, tenancy};
use std::net::IpAddr;
use std::time::Duration;
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
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the service (the default when no command is given).
    Serve(ServeArgs),
    /// Manage organisations (tenants).
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage the event type catalog.
    #[command(subcommand, name = "event-types")]
    EventTypes(EventTypesCommand),
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
    /// How long an endpoint actor with nothing to do lives on.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// HTTP worker threads (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
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
    /// List API keys (never their tokens).
    List {
        #[arg(long)]
        org: Option<i64>,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum EventTypesCommand {
    /// Add an event type (or change its description).
    Add {
        name: String,
        #[arg(long)]
        description: String,
    },
    /// List the catalog.
    List,
}

pub async fn run(cli: &Cli, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve(cli, args).await,
        Command::Listen { port, secret } => {
            let secret = secret
                .map(|s| WebhookSecret::parse(&s).map_err(|e| anyhow!("--secret: {e}")))
                .transpose()?;
            Ok(webhookd::listen::listen(port, secret).await?)
        }
        admin_command => {
            let db = database::connect(&cli.database_url).await?;
            match admin_command {
                Command::Serve(_) | Command::Listen { .. } => unreachable!("handled above"),
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
                    println!("{:>6}  {:>6}  {:<24} webhook_config", "id", "org", "scopes");
                    for key in tenancy::list_keys(&db, org).await? {
                        let names: Vec<_> = key.scopes().iter().map(|s| s.as_str()).collect();
                        println!(
                            "{:>6}  {:>6}  {:<24} {}",
                            key.id,
                            key.organisation,
                            names.join(","),
                            key.webhook_config.map_or("-".into(), |c| c.to_string())
                        );
                    }
                }
                Command::EventTypes(EventTypesCommand::Add { name, description }) => {
                    admin::add_event_type(&db, &name, &description).await?;
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

async fn serve(cli: &Cli, args: ServeArgs) -> anyhow::Result<()> {
    let mut settings = Settings::new(&cli.database_url, &args.bind);
    settings.dev = args.dev;
    settings.allowed_targets = args.allow_targets;
    settings.workers = args.workers;
    settings.delivery.retry_schedule = args.retry_schedule;
    settings.delivery.disable_after_failures = args.disable_after_failures;
    settings.delivery.disable_after = args.disable_after;
    settings.delivery.idle_timeout = args.idle_timeout;
    settings.delivery.resolve_overrides = args.resolve.into_iter().collect();
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
