//! The fault harness: real webhookd nodes on PostgreSQL, a recording
//! receiver, a steady publish load, and one fault (Jepsen-style); then the
//! checker ([`checker`]) reads the record and says which promise broke.
//!
//! Shared by `webhookd-bench faults` (long runs, the soak) and the
//! black-box tests (`tests/api/faults.rs`, short runs in CI): one library,
//! so CI checks exactly what the soak measures.
//!
//! Every run: three nodes (`--node-timeout`, each sending from its own
//! loopback address) on a fresh database; endpoints that answer after
//! 20 ms, one `ordering: "fifo"` endpoint, one with a `rate_limit`, one
//! that refuses every event's first attempt (so retries run across the
//! fault); events published at a steady rate through the nodes the
//! scenario names; the fault a third of the way in. Everything the run
//! started is stopped, paused nodes continued and clusters dropped when it
//! ends, also when it fails.
pub mod checker;
mod nodes;
mod proxy;
mod recorder;
mod standby;

use anyhow::{bail, Context};
use checker::{Endpoint, Findings, Publish, Record};
use nodes::{NodeSpec, Nodes};
use proxy::PartitionProxy;
use recorder::Recorder;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The faults (`webhookd-bench faults --fault NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// `SIGSTOP` the node that owns the most endpoints for 2× the node
    /// timeout, then `SIGCONT`; publishes go through the others.
    PauseOwner,
    /// The same to a node that takes publishes.
    PausePublisher,
    /// Freeze and thaw a node (one that owns endpoints and takes
    /// publishes) in a loop until it freezes with a database session busy
    /// (a publish's group commit, an attempt's record, a read under way),
    /// then keep it frozen for 2× the node timeout.
    PauseInTransaction,
    /// Freeze the owner of the most endpoints in the middle of its lease
    /// renewal — after the renewal's statement reached the database and
    /// before the heartbeat's next — found by predicting its next
    /// heartbeat from `pg_stat_activity` and freezing at it (thawed and
    /// tried again until it lands there), then keep it frozen for 2× the
    /// node timeout.
    PauseInRenewal,
    /// One node reaches PostgreSQL through a proxy that stops forwarding
    /// (no reset) for 2× the node timeout.
    Partition,
    /// A synchronous streaming standby; the primary is killed under load
    /// and the standby promoted; nodes use a multi-host URL.
    Failover,
    /// The same with asynchronous replication: measures the window.
    FailoverAsync,
    /// One node's clock 30 s ahead, another's 30 s behind (libfaketime).
    ClockSkew,
    /// Nodes stopped (`SIGTERM`) and started again in turn under load.
    Rebalance,
}

impl Fault {
    /// Its name on the command line (`pause-owner`, …).
    pub fn name(self) -> String {
        use clap::ValueEnum;
        self.to_possible_value()
            .map(|value| value.get_name().to_owned())
            .unwrap_or_default()
    }
}

/// The size of a run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The `webhookd` binary.
    pub binary: PathBuf,
    /// A PostgreSQL URL to create the run's database through.
    pub admin_url: String,
    pub node_timeout: Duration,
    /// Events per second, and for how long.
    pub rate: f64,
    pub seconds: f64,
    /// Endpoints answering after 20 ms (besides the FIFO, rate-limited and
    /// refusing ones).
    pub plain_endpoints: u32,
    /// The rate-limited endpoint's limit: below the publish rate, so that
    /// it runs at its limit with a backlog through the fault.
    pub rate_limit: u32,
    /// Where the nodes' logs go (`webhookd-faults-<fault>.log.<node>` beside it).
    pub log: PathBuf,
}

impl Settings {
    /// Seconds-long runs for CI (debug builds).
    pub fn short(binary: PathBuf, admin_url: String) -> Self {
        Self {
            binary,
            admin_url,
            node_timeout: Duration::from_secs(3),
            rate: 25.0,
            seconds: 12.0,
            plain_endpoints: 4,
            rate_limit: 20,
            log: std::env::temp_dir().join("webhookd-faults.log"),
        }
    }
}

/// Runs one fault scenario and checks its record.
pub async fn run(fault: Fault, settings: &Settings) -> anyhow::Result<Findings> {
    let database = Database::create(&settings.admin_url, fault).await?;
    let standby = match fault {
        Fault::Failover => Some(standby::Pair::create(true).await?),
        Fault::FailoverAsync => Some(standby::Pair::create(false).await?),
        _ => None,
    };
    let result = run_on(fault, settings, &database, standby.as_ref()).await;
    if let Some(pair) = standby {
        pair.drop_clusters();
    }
    if std::env::var_os("WEBHOOKD_FAULTS_KEEP").is_none() {
        database.drop().await;
    }
    result
}

/// The run's database: created fresh, dropped at the end.
struct Database {
    admin: String,
    name: String,
    url: String,
}

impl Database {
    async fn create(admin: &str, fault: Fault) -> anyhow::Result<Self> {
        let name = format!(
            "webhookd_faults_{}_{}",
            fault.name().replace('-', "_"),
            std::process::id()
        );
        let url = with_database(admin, &name);
        admin_sql(
            admin,
            &format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#),
        )
        .await?;
        admin_sql(admin, &format!(r#"CREATE DATABASE "{name}""#)).await?;
        Ok(Self {
            admin: admin.to_owned(),
            name,
            url,
        })
    }

    async fn drop(&self) {
        let _ = admin_sql(
            &self.admin,
            &format!(r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#, self.name),
        )
        .await;
    }
}

/// `url` with its database part replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (path, query) = url
        .split_once('?')
        .map_or((url, None), |(p, q)| (p, Some(q)));
    let base = path.rsplit_once('/').map_or(path, |(b, _)| b);
    format!(
        "{base}/{name}{}",
        query.map(|q| format!("?{q}")).unwrap_or_default()
    )
}

pub async fn admin_sql(admin_url: &str, sql: &str) -> anyhow::Result<()> {
    use sqlx::{Connection, Executor};
    let mut connection = sqlx::PgConnection::connect(admin_url)
        .await
        .context("cannot reach PostgreSQL")?;
    connection.execute(sql).await?;
    Ok(())
}

const EVENT_TYPE: &str = "fault.tick";
const NODES: usize = 3;

async fn run_on(
    fault: Fault,
    settings: &Settings,
    database: &Database,
    standby: Option<&standby::Pair>,
) -> anyhow::Result<Findings> {
    // Who reaches the database how.
    let mut proxy = None;
    let mut specs: Vec<NodeSpec> = (0..NODES)
        .map(|_| NodeSpec {
            database_url: database.url.clone(),
            env: Vec::new(),
        })
        .collect();
    let run_url = match standby {
        Some(pair) => {
            let url = pair.url(&database.name);
            pair.create_database(&database.name).await?;
            for spec in &mut specs {
                spec.database_url = pair.multi_host_url(&database.name);
            }
            url
        }
        None => database.url.clone(),
    };
    if fault == Fault::Partition {
        let upstream = upstream_of(&database.url)?;
        let cut = PartitionProxy::start(upstream).await?;
        specs[1].database_url = database.url.replacen(
            &upstream_of(&database.url)?,
            &format!("127.0.0.1:{}", cut.port),
            1,
        );
        proxy = Some(cut);
    }
    if fault == Fault::ClockSkew {
        specs[0].env = faketime("+30s");
        specs[1].env = faketime("-30s");
        skew_in_effect(&specs[0].env, 30)?;
    }
    // One log per fault: the last run of each is there to read.
    let log = settings
        .log
        .with_file_name(format!("webhookd-faults-{}.log", fault.name()));
    for k in 1..=NODES {
        let _ = std::fs::remove_file(format!("{}.n{k}", log.display()));
    }
    let mut nodes =
        Nodes::start(settings.binary.clone(), specs, settings.node_timeout, log).await?;
    add_event_type(&settings.binary, &run_url)?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&run_url)
        .await?;
    until_balanced(&pool, NODES, Duration::from_secs(30)).await?;
    let recorder = Recorder::start()?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let (endpoints, config_ids) = create_endpoints(&client, &nodes, &recorder, settings).await?;

    // Which node the fault hits, and which nodes take publishes.
    let owners = owners(&pool, &config_ids).await?;
    let busiest = (0..NODES)
        .max_by_key(|k| owners.iter().filter(|o| **o == Some(*k)).count())
        .unwrap_or(0);
    let (target, publishers): (Option<usize>, Vec<usize>) = match fault {
        Fault::PauseOwner | Fault::PauseInRenewal => (
            Some(busiest),
            (0..NODES).filter(|k| *k != busiest).collect(),
        ),
        // The node in a transaction also takes publishes: its transaction
        // may be a publish's group commit.
        Fault::PausePublisher | Fault::PauseInTransaction => (Some(busiest), (0..NODES).collect()),
        Fault::Partition => (Some(1), (0..NODES).collect()),
        Fault::Rebalance => (None, (0..NODES).collect()),
        Fault::ClockSkew | Fault::Failover | Fault::FailoverAsync => (None, (0..NODES).collect()),
    };
    let mut faulted: HashSet<usize> = target.into_iter().collect();
    if fault == Fault::Rebalance {
        faulted.extend(0..NODES);
    }

    // The load, beside the fault.
    let publishes = Arc::new(Mutex::new(Vec::new()));
    let load_started = Instant::now();
    let (fault_over, fault_ended) = tokio::sync::watch::channel(None);
    let load = tokio::spawn(publish_load(
        client.clone(),
        nodes.nodes.iter().map(|n| n.base.clone()).collect(),
        publishers,
        nodes.key.clone(),
        settings.rate,
        Duration::from_secs_f64(settings.seconds),
        fault_ended,
        publishes.clone(),
    ));
    let fault_at = load_started + Duration::from_secs_f64(settings.seconds / 3.0);
    tokio::time::sleep_until(fault_at.into()).await;
    let mut notes = Vec::new();
    let outcome = inject(
        fault,
        settings,
        &mut nodes,
        target,
        &pool,
        proxy.as_ref(),
        standby,
        &client,
        &mut notes,
    )
    .await;
    // Whatever happened, everything is running again before the checks.
    for node in &mut nodes.nodes {
        if node.is_running() {
            node.resume();
        }
    }
    if let Some(proxy) = &proxy {
        proxy.heal();
    }
    let _ = fault_over.send(Some(Instant::now() + AFTER_THE_FAULT));
    load.await.context("the load panicked")?;
    outcome?;
    let load_ended = Instant::now();
    let publishes = publishes.lock().unwrap().clone();

    // Every accepted event at every endpoint, or the patience runs out.
    // (A count would not do: events the clients gave up on may commit and
    // arrive too — a frozen node takes its queued publishes at the thaw.)
    let accepted: Vec<&str> = publishes
        .iter()
        .filter_map(|p| p.outcome.as_deref().ok())
        .collect();
    let numbers: Vec<u32> = endpoints.iter().map(|e| e.n).collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    while recorder.missing(&numbers, &accepted) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let requests = recorder.requests();
    let mut findings = checker::check(
        &fault.name(),
        &Record {
            requests: &requests,
            publishes: &publishes,
            endpoints: &endpoints,
            faulted: &faulted,
            load: (load_started, load_ended),
            // A freeze that had to be aimed began at its last SIGSTOP.
            fault_at: target
                .and_then(|k| nodes.nodes[k].paused_at)
                .unwrap_or(fault_at),
        },
    );
    if let Some(k) = target {
        let frozen_endpoints: Vec<u32> = owners
            .iter()
            .zip(&endpoints)
            .filter(|(owner, _)| **owner == Some(k))
            .map(|(_, e)| e.n)
            .collect();
        findings.takeover_ms = takeover(
            &requests,
            &frozen_endpoints,
            nodes.nodes[k].source,
            // A freeze that had to be aimed began at its last SIGSTOP.
            nodes.nodes[k].paused_at.unwrap_or(fault_at),
        )
        .map(|d| d.as_millis() as u64);
    }
    findings.notes = notes;
    recorder.stop().await;
    pool.close().await;
    drop(nodes);
    Ok(findings)
}

/// `host:port` of a single-host URL.
fn upstream_of(url: &str) -> anyhow::Result<String> {
    let rest = url.split_once("://").context("not a URL")?.1;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Ok(if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    })
}

pub fn faketime(offset: &str) -> Vec<(String, String)> {
    vec![
        (
            "LD_PRELOAD".to_owned(),
            "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1".to_owned(),
        ),
        ("FAKETIME".to_owned(), offset.to_owned()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".to_owned(), "1".to_owned()),
        ("FAKETIME_DONT_RESET".to_owned(), "1".to_owned()),
    ]
}

/// `date +%s` under `env` is `seconds` off this clock: libfaketime is
/// there and works (without it, the skew scenario would prove nothing).
pub fn skew_in_effect(env: &[(String, String)], seconds: i64) -> anyhow::Result<()> {
    let output = std::process::Command::new("date")
        .arg("+%s")
        .envs(env.iter().cloned())
        .output()?;
    let faked: i64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .context("date printed no time")?;
    let off = faked - chrono::Utc::now().timestamp();
    if (off - seconds).abs() > 2 {
        bail!("libfaketime does not skew the clock (off by {off} s): apt-get install faketime");
    }
    Ok(())
}

fn add_event_type(binary: &PathBuf, database_url: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new(binary)
        .args([
            "event-types",
            "add",
            EVENT_TYPE,
            "--description",
            "fault run",
        ])
        .env("DATABASE_URL", database_url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()?;
    if !status.success() {
        bail!("cannot add the event type");
    }
    Ok(())
}

/// Every partition leased by a live node, none over its fair share.
pub async fn until_balanced(
    pool: &sqlx::PgPool,
    live: usize,
    patience: Duration,
) -> anyhow::Result<()> {
    let fair = 64_usize.div_ceil(live) as i64;
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        let held: Vec<(String, i64)> = sqlx::query_as(
            "SELECT node, COUNT(*) FROM partition_leases \
             WHERE node IS NOT NULL AND expires_at > now() GROUP BY node",
        )
        .fetch_all(pool)
        .await?;
        let total: i64 = held.iter().map(|(_, n)| n).sum();
        if held.len() == live && total == 64 && held.iter().all(|(_, n)| *n <= fair) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the cluster did not balance within {patience:?}")
}

/// The node (index) holding each config's partition now.
async fn owners(pool: &sqlx::PgPool, configs: &[i64]) -> anyhow::Result<Vec<Option<usize>>> {
    let mut owners = Vec::new();
    for config in configs {
        let partition = webhookd::cluster::ownership::partition_of(*config) as i32;
        let node: Option<String> = sqlx::query_scalar(
            "SELECT node FROM partition_leases WHERE partition = $1 AND expires_at > now()",
        )
        .bind(partition)
        .fetch_optional(pool)
        .await?
        .flatten();
        owners.push(
            node.and_then(|id| id.trim_start_matches('n').parse::<usize>().ok())
                .map(|n| n - 1),
        );
    }
    Ok(owners)
}

/// The run's endpoints: plain ones (20 ms), a FIFO one, a rate-limited
/// one and one that refuses every event's first attempt (500).
async fn create_endpoints(
    client: &reqwest::Client,
    nodes: &Nodes,
    recorder: &Recorder,
    settings: &Settings,
) -> anyhow::Result<(Vec<Endpoint>, Vec<i64>)> {
    let mut endpoints = Vec::new();
    let mut ids = Vec::new();
    let plain = settings.plain_endpoints;
    for n in 0..plain + 3 {
        let (fifo, rate_limit, refuses_first) = match n - plain.min(n) {
            _ if n < plain => (false, None, false),
            0 => (true, None, false),
            1 => (false, Some(settings.rate_limit), false),
            _ => (false, None, true),
        };
        let mut body = json!({"url": recorder.url(n), "events": [EVENT_TYPE]});
        if fifo {
            body["ordering"] = json!("fifo");
        }
        if let Some(limit) = rate_limit {
            body["rate_limit"] = json!(limit);
        }
        let created: Value = client
            .post(format!("{}/api/v1/webhooks", nodes.nodes[0].base))
            .bearer_auth(&nodes.key)
            .json(&body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let delay = if n < plain {
            Duration::from_millis(20)
        } else {
            Duration::from_millis(1)
        };
        recorder.register(
            n,
            created["data"]["secret"].as_str().unwrap_or_default(),
            delay,
            refuses_first,
        );
        ids.push(created["data"]["id"].as_i64().context("no id")?);
        endpoints.push(Endpoint {
            n,
            fifo,
            rate_limit,
        });
    }
    Ok((endpoints, ids))
}

/// Publishes at `rate` per second for `duration`, round-robin through
/// `through`, each publish recorded with its node and times.
/// How long the load goes on at least once the fault is over.
const AFTER_THE_FAULT: Duration = Duration::from_secs(1);

/// Publishes at `rate` for `duration`, and in any case until
/// [`AFTER_THE_FAULT`] past the fault's end (`fault_ended` says when): a
/// fault that had to be aimed (a freeze in a lease renewal may take many
/// tries) can begin late, and the takeover it causes must still meet a
/// load to show in the arrivals.
#[allow(clippy::too_many_arguments)]
async fn publish_load(
    client: reqwest::Client,
    bases: Vec<String>,
    through: Vec<usize>,
    key: String,
    rate: f64,
    duration: Duration,
    fault_ended: tokio::sync::watch::Receiver<Option<Instant>>,
    record: Arc<Mutex<Vec<Publish>>>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut running = Vec::new();
    let mut i = 0usize;
    // (A runner gone without saying ends the load too.)
    let going_on = || {
        started.elapsed() < duration
            || match *fault_ended.borrow() {
                Some(end) => Instant::now() < end,
                None => fault_ended.has_changed().is_ok(),
            }
    };
    while going_on() {
        tick.tick().await;
        let node = through[i % through.len()];
        let (client, url, key, record) = (
            client.clone(),
            format!("{}/api/v1/events", bases[node]),
            key.clone(),
            record.clone(),
        );
        running.push(tokio::spawn(async move {
            let started = Instant::now();
            let answer = client
                .post(url)
                .bearer_auth(key)
                .json(&json!({"type": EVENT_TYPE, "data": {"i": i}}))
                .send()
                .await;
            let outcome = match answer {
                Ok(response) if response.status().is_success() => response
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v["data"]["id"].as_str().map(str::to_owned))
                    .ok_or_else(|| "no event id".to_owned()),
                Ok(response) => Err(response.status().to_string()),
                Err(error) => Err(error.to_string()),
            };
            record.lock().unwrap().push(Publish {
                node,
                started,
                finished: Instant::now(),
                outcome,
            });
        }));
        i += 1;
    }
    for task in running {
        let _ = task.await;
    }
}

/// Freezes `node` in the middle of a heartbeat tick (its lease renewal):
/// its heartbeat connections' most recent statement is the renewal
/// (`UPDATE partition_leases SET expires_at …`), which the tick always
/// follows with another statement, so the node stopped in between — the
/// renewal sent and maybe applied, its answer perhaps not yet read, the
/// leases' local deadlines not yet moved.
/// The window is a few round trips every `heartbeat`, far too short to hit
/// by chance: the next tick is predicted from the last statement's start
/// (`pg_stat_activity.query_start`, on this machine's clock like the
/// node's) and the freeze lands a little before or after it, scanning
/// the offsets from try to try. Returns the tries and the statement.
async fn freeze_in_renewal(
    node: &mut nodes::Node,
    pool: &sqlx::PgPool,
    application: &str,
    heartbeat: Duration,
) -> anyhow::Result<(u32, String)> {
    const TRIES: u32 = 200;
    let period = heartbeat.as_micros() as i64;
    for tries in 1..=TRIES {
        let (last_start, database_now): (Option<i64>, i64) = sqlx::query_as(
            "SELECT (extract(epoch FROM max(query_start)) * 1000000)::bigint, \
                    (extract(epoch FROM clock_timestamp()) * 1000000)::bigint \
             FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind(application)
        .fetch_one(pool)
        .await?;
        let Some(mut next) = last_start else {
            tokio::time::sleep(heartbeat).await;
            continue;
        };
        while next < database_now + 20_000 {
            next += period;
        }
        // -2 ms … +4 ms around the predicted start, in 0.25 ms steps.
        let offset = (tries as i64 % 24) * 250 - 2_000;
        let at = Instant::now() + Duration::from_micros((next + offset - database_now) as u64);
        tokio::time::sleep_until((at - Duration::from_millis(3)).into()).await;
        while Instant::now() < at {
            std::hint::spin_loop();
        }
        node.pause();
        let last: Option<String> = sqlx::query_scalar(
            "SELECT query FROM pg_stat_activity WHERE application_name = $1 \
             ORDER BY query_start DESC NULLS LAST LIMIT 1",
        )
        .bind(application)
        .fetch_optional(pool)
        .await?;
        let last = last.unwrap_or_default();
        if last.starts_with("UPDATE partition_leases SET expires_at") {
            return Ok((tries, last.chars().take(60).collect()));
        }
        node.resume();
    }
    bail!("no freeze landed in a lease renewal in {TRIES} tries")
}

/// The longest time, over `endpoints`, from `from` to the first request
/// from a node other than `frozen`.
fn takeover(
    requests: &[recorder::Request],
    endpoints: &[u32],
    frozen: std::net::IpAddr,
    from: Instant,
) -> Option<Duration> {
    endpoints
        .iter()
        .filter_map(|n| {
            requests
                .iter()
                .filter(|r| r.endpoint == *n && r.arrived > from && r.sender != Some(frozen))
                .map(|r| r.arrived - from)
                .min()
        })
        .max()
}

#[allow(clippy::too_many_arguments)]
async fn inject(
    fault: Fault,
    settings: &Settings,
    nodes: &mut Nodes,
    target: Option<usize>,
    pool: &sqlx::PgPool,
    proxy: Option<&PartitionProxy>,
    standby: Option<&standby::Pair>,
    client: &reqwest::Client,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    let freeze = settings.node_timeout * 2;
    match fault {
        Fault::PauseOwner | Fault::PausePublisher => {
            let node = &mut nodes.nodes[target.unwrap_or(0)];
            node.pause();
            tokio::time::sleep(freeze).await;
            node.resume();
        }
        Fault::PauseInTransaction => {
            let k = target.unwrap_or(0);
            let application = format!("webhookd:{}", nodes.nodes[k].id);
            let mut tries = 0;
            loop {
                tries += 1;
                nodes.nodes[k].pause();
                // The query pool's and the group-commit writers' sessions
                // (publishes, attempt records); the heartbeat's is
                // `PauseInRenewal`'s.
                let busy: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM pg_stat_activity \
                     WHERE application_name IN ($1, $1 || ':writers') \
                     AND (state = 'active' OR state LIKE 'idle in transaction%')",
                )
                .bind(&application)
                .fetch_one(pool)
                .await?;
                if busy > 0 || tries >= 500 {
                    notes.push(format!(
                        "frozen with {busy} busy sessions after {tries} tries"
                    ));
                    break;
                }
                nodes.nodes[k].resume();
                let wait = rand::random::<u64>() % 30;
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            tokio::time::sleep(freeze).await;
            nodes.nodes[k].resume();
        }
        Fault::PauseInRenewal => {
            let k = target.unwrap_or(0);
            let application = format!("webhookd:{}:heartbeat", nodes.nodes[k].id);
            let heartbeat = settings.node_timeout / 4;
            let (tries, statement) =
                freeze_in_renewal(&mut nodes.nodes[k], pool, &application, heartbeat).await?;
            notes.push(format!(
                "frozen in a lease renewal after {tries} tries, its last statement: {statement}"
            ));
            tokio::time::sleep(freeze).await;
            nodes.nodes[k].resume();
        }
        Fault::Partition => {
            let proxy = proxy.context("no proxy")?;
            let base = nodes.nodes[1].base.clone();
            proxy.cut();
            let cut_at = Instant::now();
            // Publishes through the cut-off node: answered, and how fast.
            let mut slowest = Duration::ZERO;
            let mut statuses = Vec::new();
            let mut not_ready_after = None;
            while cut_at.elapsed() < freeze {
                let sent = Instant::now();
                let answer = client
                    .post(format!("{base}/api/v1/events"))
                    .bearer_auth(&nodes.key)
                    .json(&json!({"type": EVENT_TYPE, "data": {"probe": true}}))
                    .send()
                    .await;
                slowest = slowest.max(sent.elapsed());
                statuses.push(answer.map(|r| r.status().as_u16()).unwrap_or(0));
                let ready = client
                    .get(format!("{base}/health/ready"))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                if ready == 503 && not_ready_after.is_none() {
                    not_ready_after = Some(cut_at.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            proxy.heal();
            let healed = Instant::now();
            let mut ready_after = None;
            while healed.elapsed() < Duration::from_secs(20) {
                let ready = client
                    .get(format!("{base}/health/ready"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ready {
                    ready_after = Some(healed.elapsed());
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let answered_503 = statuses.iter().filter(|s| **s == 503).count();
            notes.push(format!(
                "cut-off node: {answered_503}/{} publishes 503, slowest answer {} ms, \
                 not ready after {} ms, ready again {} ms after the heal",
                statuses.len(),
                slowest.as_millis(),
                not_ready_after.map_or(-1, |d| d.as_millis() as i64),
                ready_after.map_or(-1, |d| d.as_millis() as i64),
            ));
            if slowest > Duration::from_millis(2500)
                || not_ready_after.is_none()
                || ready_after.is_none()
            {
                bail!("the cut-off node did not answer in time or did not recover: {notes:?}");
            }
        }
        Fault::Failover | Fault::FailoverAsync => {
            let pair = standby.context("no standby")?;
            let killed = Instant::now();
            pair.kill_primary()?;
            pair.promote()?;
            notes.push(format!(
                "primary killed, standby promoted in {} ms",
                killed.elapsed().as_millis()
            ));
            // Every node takes publishes again, without a restart.
            for node in &nodes.nodes {
                let mut accepted = false;
                while !accepted && killed.elapsed() < Duration::from_secs(20) {
                    accepted = client
                        .post(format!("{}/api/v1/events", node.base))
                        .bearer_auth(&nodes.key)
                        .json(&json!({"type": EVENT_TYPE, "data": {"probe": true}}))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    if !accepted {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                if !accepted {
                    bail!("{} took no publish within 20 s of the failover", node.id);
                }
            }
            notes.push(format!(
                "every node publishing again {} ms after the kill",
                killed.elapsed().as_millis()
            ));
        }
        Fault::ClockSkew => {
            // The skew is in place from the start; let the load run.
        }
        Fault::Rebalance => {
            let end = Instant::now() + Duration::from_secs_f64(settings.seconds / 2.0);
            let mut k = 0;
            let mut takeovers = Vec::new();
            while Instant::now() < end {
                let id = nodes.nodes[k].id.clone();
                nodes.nodes[k].terminate(Duration::from_secs(10)).await;
                let stopped = Instant::now();
                // The others hold every partition, none of it the leaver's.
                loop {
                    let (held, theirs): (i64, i64) = sqlx::query_as(
                        "SELECT COUNT(*) FILTER (WHERE node IS NOT NULL AND node <> $1), \
                         COUNT(*) FILTER (WHERE node = $1 AND expires_at > now()) \
                         FROM partition_leases WHERE expires_at > now()",
                    )
                    .bind(&id)
                    .fetch_one(pool)
                    .await?;
                    if held == 64 && theirs == 0 {
                        takeovers.push(stopped.elapsed());
                        break;
                    }
                    if stopped.elapsed() > settings.node_timeout * 3 {
                        bail!("the partitions of {id} were not taken over");
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                nodes.launch(k).await?;
                k = (k + 1) % nodes.len();
            }
            let slowest = takeovers.iter().max().copied().unwrap_or_default();
            notes.push(format!(
                "{} restarts; partitions taken over at most {} ms after a SIGTERM exit",
                takeovers.len(),
                slowest.as_millis()
            ));
            if slowest > Duration::from_secs(1) {
                bail!("a SIGTERM left leases behind: {notes:?}");
            }
        }
    }
    Ok(())
}
