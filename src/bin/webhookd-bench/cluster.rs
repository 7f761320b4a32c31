//! `cluster`: several webhookd nodes on one PostgreSQL database (they share
//! this machine's cores: read the figures as costs, not as scaling). Each
//! of N nodes runs cores/N HTTP and delivery threads (at least one), so the
//! nodes together have about the threads one node has: what a cluster
//! costs is then coordination, not oversubscribed threads. (Measured on
//! 2026-12-06: with default threads 3 nodes made 67 % of one node's
//! throughput, sized so 69 % — the cost is not the threads.)
//!
//! * `cluster-throughput`: 10 endpoints, a burst published round-robin
//!   through 1, 2, … `--nodes` nodes; CPU per delivery of all the nodes
//!   together and of the database.
//! * `cluster-latency`: one endpoint at `--rate` events/s, published only
//!   through the nodes that do not own it (every delivery crosses
//!   `LISTEN/NOTIFY`), beside the same load through its owner; CPU per
//!   delivery as above.
//! * `cluster-kill`: 10 endpoints under steady load through all but one
//!   node, which is killed (`kill -9`) a third of the way in: lost
//!   deliveries (must be 0), duplicates, and the longest gap in arrivals at
//!   the endpoints the dead node owned (from the kill to their last
//!   arrival: the failover wait is one of the gaps).
use crate::faults::admin_sql;
use crate::receiver::{Behaviour, Receiver, Tally};
use crate::scenarios::{percentiles, publish, Report, EVENT_TYPE};
use crate::server::{add_event_type, log_file, webhookd_binary};
use crate::Options;
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

struct Node {
    id: String,
    child: Child,
    base: String,
}

struct Nodes {
    nodes: Vec<Node>,
    key: String,
    admin: String,
    name: String,
    pool: sqlx::PgPool,
}

impl Nodes {
    async fn start(options: &Options, count: usize) -> anyhow::Result<Self> {
        let admin = options.postgres_url.clone();
        let name = format!("webhookd_bench_cluster_{}", std::process::id());
        let (path, query) = admin
            .split_once('?')
            .map_or((admin.as_str(), None), |(p, q)| (p, Some(q)));
        let base = path.rsplit_once('/').map_or(path, |(b, _)| b);
        let database_url = format!(
            "{base}/{name}{}",
            query.map(|q| format!("?{q}")).unwrap_or_default()
        );
        admin_sql(
            &admin,
            &format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#),
        )
        .await?;
        admin_sql(&admin, &format!(r#"CREATE DATABASE "{name}""#)).await?;
        let mut nodes = Vec::new();
        let mut key = String::new();
        for n in 1..=count {
            let (node, printed) = start_node(&database_url, n, count).await?;
            if n == 1 {
                key = printed.context("the first node printed no key")?;
                add_event_type(&database_url, EVENT_TYPE)?;
            }
            nodes.push(node);
        }
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&database_url)
            .await?;
        let cluster = Self {
            nodes,
            key,
            admin,
            name,
            pool,
        };
        cluster.until_balanced().await?;
        Ok(cluster)
    }

    /// Every partition leased, by every node, none over its fair share.
    async fn until_balanced(&self) -> anyhow::Result<()> {
        let patience = Duration::from_secs(60);
        crate::faults::until_balanced(&self.pool, self.nodes.len(), patience).await
    }

    /// Waits until no delivery is pending (or `patience` runs out).
    async fn until_nothing_pending(&self, patience: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + patience;
        loop {
            let pending: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'pending'")
                    .fetch_one(&self.pool)
                    .await?;
            if pending == 0 || Instant::now() > deadline {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn owner_of(&self, config: i64) -> anyhow::Result<String> {
        let partition = webhookd::cluster::ownership::partition_of(config) as i32;
        Ok(
            sqlx::query_scalar("SELECT node FROM partition_leases WHERE partition = $1")
                .bind(partition)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Creates `count` endpoints through the first node; returns their ids.
    async fn endpoints(&self, receiver: &Receiver, count: u32) -> anyhow::Result<Vec<i64>> {
        let client = reqwest::Client::new();
        let mut ids = Vec::new();
        for n in 0..count {
            let created: Value = client
                .post(format!("{}/api/v1/webhooks", self.nodes[0].base))
                .bearer_auth(&self.key)
                .json(&json!({"url": receiver.url(n), "events": [EVENT_TYPE]}))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            receiver.register(
                n,
                created["data"]["secret"].as_str().unwrap_or_default(),
                Behaviour::Ok,
            );
            ids.push(created["data"]["id"].as_i64().context("no id")?);
        }
        Ok(ids)
    }

    /// Every node's group-commit batches so far, by writer: batches and
    /// the items in them (the nodes' `webhookd_group_commit_batch_size`
    /// histograms added up). A node that cannot be read counts nothing.
    async fn batches(&self) -> std::collections::BTreeMap<String, (f64, f64)> {
        let mut writers = std::collections::BTreeMap::new();
        for node in &self.nodes {
            let Ok(response) = reqwest::get(format!("{}/metrics", node.base)).await else {
                continue;
            };
            let Ok(text) = response.text().await else {
                continue;
            };
            for sample in crate::exposition::samples(&text, "webhookd_group_commit_batch_size") {
                let Some(writer) = sample.label("writer") else {
                    continue;
                };
                let entry: &mut (f64, f64) = writers.entry(writer.to_owned()).or_default();
                if sample.is("_count") {
                    entry.0 += sample.value;
                } else if sample.is("_sum") {
                    entry.1 += sample.value;
                }
            }
        }
        writers
    }

    /// The CPU used so far, every node's together (see [`crate::cpu`]).
    fn cpu(&self) -> crate::cpu::Sample {
        let pids: Vec<u32> = self.nodes.iter().map(|n| n.child.id()).collect();
        crate::cpu::Sample::of_nodes(&pids)
    }

    async fn stop(mut self) {
        for node in &mut self.nodes {
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
        self.pool.close().await;
        let _ = admin_sql(
            &self.admin,
            &format!(r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#, self.name),
        )
        .await;
    }
}

async fn start_node(
    database_url: &str,
    n: usize,
    count: usize,
) -> anyhow::Result<(Node, Option<String>)> {
    let binary = webhookd_binary()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let id = format!("n{n}");
    let mut child = Command::new(&binary)
        .args(["serve", "--dev", "--bind", &format!("127.0.0.1:{port}")])
        .args(["--node-id", &id, "--retry-schedule", "200ms,500ms,1s"])
        .args(share_the_cores(count))
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(log_file()?)
        .spawn()
        .with_context(|| format!("cannot start {} (build it first)", binary.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    // Only the first node on an empty database prints a key.
    let key = if n == 1 {
        tokio::task::spawn_blocking(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .find(|line| line.starts_with("whk_"))
        })
        .await?
    } else {
        None
    };
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client
            .get(format!("{base}/health/ready"))
            .send()
            .await
            .is_ok()
        {
            return Ok((Node { id, child, base }, key));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("node {n} did not answer")
}

/// The threads of each of `count` nodes on this one machine: together
/// about one per core, as one node has (see `Nodes::start`).
fn share_the_cores(count: usize) -> Vec<String> {
    if count == 1 {
        return Vec::new();
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / count).max(1).to_string();
    vec![
        "--workers".into(),
        threads.clone(),
        "--delivery-threads".into(),
        threads,
    ]
}

/// Waits until `expected` deliveries arrived or `patience` passed.
async fn wait(tally: &Tally, expected: u64, patience: Duration) {
    let started = Instant::now();
    while (tally.arrivals.lock().unwrap().len() as u64) < expected && started.elapsed() < patience {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn latencies(tally: &Tally, sent: &HashMap<String, Instant>) -> Vec<f64> {
    tally
        .arrivals
        .lock()
        .unwrap()
        .iter()
        .filter_map(|((_, id), arrived)| {
            sent.get(id)
                .map(|at| (*arrived - *at).as_secs_f64() * 1000.0)
        })
        .collect()
}

fn report(
    name: &str,
    endpoints: u32,
    sent: &HashMap<String, Instant>,
    errors: u64,
    tally: &Tally,
    elapsed: Duration,
    extra: Value,
) -> Report {
    let delivered = latencies(tally, sent);
    let expected = sent.len() as u64 * u64::from(endpoints);
    Report {
        scenario: name.to_owned(),
        backend: "postgres".to_owned(),
        endpoints,
        events: sent.len() as u64,
        deliveries: delivered.len() as u64,
        duration_s: elapsed.as_secs_f64(),
        deliveries_per_s: delivered.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        latency_ms: percentiles(delivered.clone()),
        errors,
        lost: expected.saturating_sub(delivered.len() as u64),
        duplicates: tally.duplicates.load(Ordering::Relaxed),
        bad_signatures: tally.bad_signatures.load(Ordering::Relaxed),
        server_peak_rss_mb: 0.0,
        cpu: None,
        extra,
    }
}

pub async fn run(options: &Options) -> anyhow::Result<Vec<Report>> {
    let count = options.nodes.max(2);
    let quick = options.quick;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let mut reports = Vec::new();

    for nodes in 1..=count {
        let cluster = Nodes::start(options, nodes).await?;
        let receiver = Receiver::start()?;
        let endpoints = 10;
        cluster.endpoints(&receiver, endpoints).await?;
        let bases: Vec<String> = cluster.nodes.iter().map(|n| n.base.clone()).collect();
        let events = options.events.unwrap_or(if quick { 200 } else { 20_000 });
        let batches_from = cluster.batches().await;
        let cpu_from = cluster.cpu();
        let started = Instant::now();
        let (sent, errors) = publish(
            &client,
            &bases,
            &cluster.key,
            events,
            options.publishers,
            None,
        )
        .await;
        let tally = receiver.tally();
        wait(
            &tally,
            sent.len() as u64 * u64::from(endpoints),
            Duration::from_secs(300),
        )
        .await;
        let elapsed = started.elapsed();
        let cpu_to = cluster.cpu();
        // The mean batch of each kind of writer over the window: a cluster
        // splits the same load among more writers, and a batch's statement
        // costs the database about the same whatever its size.
        let batches: serde_json::Map<String, Value> = cluster
            .batches()
            .await
            .into_iter()
            .map(|(writer, (count, items))| {
                let (count_before, items_before) =
                    batches_from.get(&writer).copied().unwrap_or_default();
                let (count, items) = (count - count_before, items - items_before);
                let mean = if count > 0.0 { items / count } else { 0.0 };
                (writer, json!({"batches": count, "mean_items": mean}))
            })
            .collect();
        let mut throughput = report(
            "cluster-throughput",
            endpoints,
            &sent,
            errors,
            &tally,
            elapsed,
            json!({"nodes": nodes, "batches": batches}),
        );
        // Every node's CPU together, per delivery: what the cluster costs
        // beside one node's figure.
        throughput.cpu = Some(cpu_from.per_delivery(&cpu_to, throughput.deliveries));
        reports.push(throughput);
        cluster.stop().await;
    }

    {
        let cluster = Nodes::start(options, count).await?;
        let receiver = Receiver::start()?;
        let ids = cluster.endpoints(&receiver, 1).await?;
        let owner = cluster.owner_of(ids[0]).await?;
        let rate = options.rate.unwrap_or(if quick { 100.0 } else { 1_000.0 });
        let seconds = options.duration.unwrap_or(if quick { 2.0 } else { 10.0 });
        let total = (rate * seconds) as u64;
        let pace = Duration::from_secs_f64(1.0 / rate);
        for (via, bases) in [
            (
                "owner",
                cluster
                    .nodes
                    .iter()
                    .filter(|n| n.id == owner)
                    .map(|n| n.base.clone())
                    .collect::<Vec<_>>(),
            ),
            (
                "non-owners",
                cluster
                    .nodes
                    .iter()
                    .filter(|n| n.id != owner)
                    .map(|n| n.base.clone())
                    .collect(),
            ),
        ] {
            let receiver = Receiver::start()?;
            // Same endpoint, this receiver: point the config at it.
            let secret = repoint(&client, &cluster, ids[0], &receiver.url(0)).await?;
            receiver.register(0, &secret, Behaviour::Ok);
            let cpu_from = cluster.cpu();
            let started = Instant::now();
            let (sent, errors) =
                publish(&client, &bases, &cluster.key, total, 256, Some(pace)).await;
            let tally = receiver.tally();
            wait(&tally, sent.len() as u64, Duration::from_secs(120)).await;
            let elapsed = started.elapsed();
            let cpu_to = cluster.cpu();
            let mut latency = report(
                "cluster-latency",
                1,
                &sent,
                errors,
                &tally,
                elapsed,
                json!({"nodes": count, "published_through": via}),
            );
            latency.cpu = Some(cpu_from.per_delivery(&cpu_to, latency.deliveries));
            reports.push(latency);
        }
        cluster.stop().await;
    }

    {
        let mut cluster = Nodes::start(options, count).await?;
        let receiver = Receiver::start()?;
        let endpoints = 10;
        let ids = cluster.endpoints(&receiver, endpoints).await?;
        let victim = cluster.nodes.len() - 1;
        let victim_id = cluster.nodes[victim].id.clone();
        let mut on_victim = Vec::new();
        for (n, id) in ids.iter().enumerate() {
            if cluster.owner_of(*id).await? == victim_id {
                on_victim.push(n as u32);
            }
        }
        let bases: Vec<String> = cluster.nodes[..victim]
            .iter()
            .map(|n| n.base.clone())
            .collect();
        let rate = if quick { 100.0 } else { 500.0 };
        let seconds = if quick { 3.0 } else { 30.0 };
        let total = (rate * seconds) as u64;
        let started = Instant::now();
        let load = publish(
            &client,
            &bases,
            &cluster.key,
            total,
            256,
            Some(Duration::from_secs_f64(1.0 / rate)),
        );
        let kill = async {
            tokio::time::sleep(Duration::from_secs_f64(seconds / 3.0)).await;
            let _ = cluster.nodes[victim].child.kill();
            let _ = cluster.nodes[victim].child.wait();
            Instant::now()
        };
        let ((sent, errors), killed_at) = tokio::join!(load, kill);
        let tally = receiver.tally();
        wait(
            &tally,
            sent.len() as u64 * u64::from(endpoints),
            Duration::from_secs(120),
        )
        .await;
        // What the dead node left unrecorded is sent again by its
        // successors; counted once nothing is pending.
        cluster
            .until_nothing_pending(Duration::from_secs(60))
            .await?;
        let (oldest_duplicate_ms, stale_duplicates) = {
            let repeated = tally.repeated_first.lock().unwrap();
            let oldest = repeated
                .iter()
                .map(|first| killed_at.saturating_duration_since(*first))
                .max();
            let stale = repeated
                .iter()
                .filter(|first| **first + crate::faults::checker::RECORDED_WITHIN < killed_at)
                .count();
            (oldest.map(|d| d.as_secs_f64() * 1000.0), stale)
        };
        let longest_gap = {
            let arrivals = tally.arrivals.lock().unwrap();
            on_victim
                .iter()
                .map(|endpoint| {
                    let mut times: Vec<Instant> = arrivals
                        .iter()
                        .filter(|((e, _), at)| e == endpoint && **at >= killed_at)
                        .map(|(_, at)| *at)
                        .chain([killed_at])
                        .collect();
                    times.sort();
                    times
                        .windows(2)
                        .map(|w| w[1] - w[0])
                        .max()
                        .unwrap_or_default()
                })
                .max()
                .unwrap_or_default()
        };
        reports.push(report(
            "cluster-kill",
            endpoints,
            &sent,
            errors,
            &tally,
            started.elapsed(),
            json!({
                "nodes": count,
                "killed": victim_id,
                "endpoints_on_killed_node": on_victim.len(),
                "longest_gap_ms": longest_gap.as_secs_f64() * 1000.0,
                "stale_duplicates": stale_duplicates,
                "oldest_duplicate_before_kill_ms": oldest_duplicate_ms,
            }),
        ));
        cluster.stop().await;
    }
    Ok(reports)
}

/// Points config `id` at `url` (its deliveries go to a fresh receiver);
/// returns its secret.
async fn repoint(
    client: &reqwest::Client,
    cluster: &Nodes,
    id: i64,
    url: &str,
) -> anyhow::Result<String> {
    let changed: Value = client
        .patch(format!("{}/api/v1/webhooks/{id}", cluster.nodes[0].base))
        .bearer_auth(&cluster.key)
        .json(&json!({"url": url}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let shown: Value = client
        .get(format!(
            "{}/api/v1/webhooks/{}",
            cluster.nodes[0].base, changed["data"]["id"]
        ))
        .bearer_auth(&cluster.key)
        .send()
        .await?
        .json()
        .await?;
    Ok(shown["data"]["secret"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}
