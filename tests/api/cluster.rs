//! Several real `webhookd serve` processes on one PostgreSQL database:
//! exactly-once delivery with no fault, nothing lost when a node is killed
//! or stopped, a node cut off from the database recovers, and a change made
//! through one node is used by the others. Every process is killed when its
//! handle drops, also when a test fails.
use crate::cli::{stdout_of, webhookd, Served};
use crate::faults::harness::checker::RECORDED_WITHIN;
use crate::helpers::{Backend, TestDatabase};
use crate::receiver::{Received, Receiver, Reply};
use base64::Engine;
use futures_util::future::join_all;
use futures_util::{stream, StreamExt};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// The flags of a test node: `--dev`, its id, the short node timeout, a
/// fast retry schedule and a small pool (three nodes and the rest of the
/// suite share one PostgreSQL), then `extra`.
fn node_flags<'a>(id: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut flags = vec![
        "--dev",
        "--node-id",
        id,
        "--node-timeout",
        NODE_TIMEOUT,
        "--retry-schedule",
        "300ms",
        "--max-db-connections",
        "4",
    ];
    flags.extend_from_slice(extra);
    flags
}

/// Short, so that failover fits in a test: a dead node's endpoints move
/// within this plus 5 s.
const NODE_TIMEOUT: &str = "3s";

/// One cluster test at a time: each runs three processes, and their
/// timing bounds are about webhookd, not about a machine running fifteen.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Cluster {
    _turn: tokio::sync::MutexGuard<'static, ()>,
    database: TestDatabase,
    pool: PgPool,
    nodes: Vec<Option<Served>>,
    key: String,
    client: reqwest::Client,
}

impl Cluster {
    /// `count` nodes `n1`…, started one after the other (the first
    /// bootstraps the database and prints the key), then balanced.
    async fn start(count: usize) -> Self {
        let turn = ONE_AT_A_TIME.lock().await;
        let database = TestDatabase::create(Backend::Postgres).await;
        let mut nodes = Vec::new();
        let mut key = String::new();
        for n in 1..=count {
            let node = Self::node(&database, n);
            if n == 1 {
                key = node.stdout_line(|line| line.starts_with("whk_"));
            }
            node.wait_until_listening();
            nodes.push(Some(node));
        }
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&database.url)
            .await
            .expect("database");
        let cluster = Self {
            _turn: turn,
            database,
            pool,
            nodes,
            key,
            client: reqwest::Client::new(),
        };
        cluster.until_balanced(count).await;
        cluster
    }

    fn node(database: &TestDatabase, n: usize) -> Served {
        Self::node_with(database, &format!("n{n}"), &[])
    }

    /// A node with this id, the suite's settings and `extra` flags.
    fn node_with(database: &TestDatabase, id: &str, extra: &[&str]) -> Served {
        Served::start_with(database, &node_flags(id, extra))
    }

    /// Waits until `live` nodes hold every partition between them, none
    /// more than its fair share.
    async fn until_balanced(&self, live: usize) {
        let fair = 64_usize.div_ceil(live) as i64;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let held: Vec<(String, i64)> = sqlx::query_as(
                "SELECT node, COUNT(*) FROM partition_leases \
                 WHERE node IS NOT NULL AND expires_at > now() GROUP BY node",
            )
            .fetch_all(&self.pool)
            .await
            .unwrap();
            let total: i64 = held.iter().map(|(_, n)| n).sum();
            if held.len() == live && total == 64 && held.iter().all(|(_, n)| *n <= fair) {
                return;
            }
            assert!(Instant::now() < deadline, "not balanced: {held:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn base(&self, n: usize) -> String {
        let node = self.nodes[n - 1].as_ref().expect("a running node");
        format!("http://127.0.0.1:{}", node.port)
    }

    async fn call(
        &self,
        n: usize,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> (u16, Value) {
        let response = self
            .client
            .request(method, format!("{}{path}", self.base(n)))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A v1 endpoint for `url` (through node 1); returns (id, secret).
    async fn endpoint(&self, url: &str) -> (i64, String) {
        let (status, created) = self
            .call(
                1,
                reqwest::Method::POST,
                "/api/v1/webhooks",
                json!({"url": url, "events": ["*"]}),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        (
            created["data"]["id"].as_i64().unwrap(),
            created["data"]["secret"].as_str().unwrap().to_owned(),
        )
    }

    /// Publishes events `range` through the nodes `via` in turn, 16 at a
    /// time, as a client that retries would: each carries its own `id`
    /// (`e<i>`, the idempotency key) and is sent again to the same node
    /// after a 5xx or a transport error, for up to 30 s — a loaded test
    /// machine may make a publish miss its deadline, and a 503 is the
    /// product's documented answer then. Returns the accepted event ids, in
    /// no particular order; a 4xx, or a publish still refused at its
    /// deadline, fails the test with what the node answered.
    async fn publish(&self, range: std::ops::Range<usize>, via: &[usize]) -> Vec<String> {
        let requests = range.map(|i| {
            let n = via[i % via.len()];
            let (client, base, key) = (self.client.clone(), self.base(n), self.key.clone());
            async move {
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    let answer = client
                        .post(format!("{base}/api/v1/events"))
                        .bearer_auth(&key)
                        .json(&json!({"id": format!("e{i}"), "type": "webhook_config.test", "data": {"i": i}}))
                        .send()
                        .await;
                    let refused = match answer {
                        Ok(response) if response.status().is_success() => {
                            let body: Value = response.json().await.expect("a JSON answer");
                            return body["data"]["id"].as_str().expect("an event id").to_owned();
                        }
                        Ok(response) => {
                            let status = response.status();
                            let body = response.text().await.unwrap_or_default();
                            assert!(status.is_server_error(), "publish e{i} through n{n}: {status} {body}");
                            format!("{status} {body}")
                        }
                        Err(error) => error.to_string(),
                    };
                    assert!(
                        Instant::now() < deadline,
                        "publish e{i} through n{n} still refused after 30 s: {refused}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        stream::iter(requests).buffer_unordered(16).collect().await
    }

    /// Publishes `count` events one after the other, one every `pace`,
    /// through the nodes `via` in turn, in a task of its own; the task
    /// answers the accepted event ids (and when it stopped publishing).
    fn steady_publish(
        &self,
        via: &[usize],
        count: usize,
        pace: Duration,
    ) -> tokio::task::JoinHandle<(Vec<String>, Instant)> {
        let bases: Vec<String> = via.iter().map(|n| self.base(*n)).collect();
        let (client, key) = (self.client.clone(), self.key.clone());
        tokio::spawn(async move {
            let mut accepted = Vec::new();
            let mut tick = tokio::time::interval(pace);
            for i in 0..count {
                tick.tick().await;
                let response = client
                    .post(format!("{}/api/v1/events", bases[i % bases.len()]))
                    .bearer_auth(&key)
                    .json(&json!({"type": "webhook_config.test", "data": {"i": i}}))
                    .send()
                    .await;
                if let Ok(response) = response {
                    if let Ok(body) = response.json::<Value>().await {
                        if let Some(id) = body["data"]["id"].as_str() {
                            accepted.push(id.to_owned());
                        }
                    }
                }
            }
            (accepted, Instant::now())
        })
    }

    /// Every partition's lease: (partition, node, epoch).
    async fn leases(&self) -> Vec<(i32, Option<String>, i64)> {
        sqlx::query_as("SELECT partition, node, epoch FROM partition_leases ORDER BY partition")
            .fetch_all(&self.pool)
            .await
            .unwrap()
    }

    /// Waits until no delivery is pending: whatever a dead node left
    /// unrecorded has been sent again by then.
    async fn until_nothing_pending(&self, within: Duration) {
        let db = projections::Db::Postgres(self.pool.clone());
        crate::helpers::until_nothing_pending(&db, within).await;
    }

    /// Which node leases the partition of config `id`.
    async fn owner_of(&self, id: i64) -> String {
        sqlx::query_scalar("SELECT node FROM partition_leases WHERE partition = $1")
            .bind(webhookd::cluster::ownership::partition_of(id) as i32)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

/// The Standard Webhooks signature, checked with the HMAC crates directly
/// (not webhookd's signing code).
pub fn signed_by(received: &Received, secret: &str) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap();
    let content = format!(
        "{}.{}.{}",
        received.header("webhook-id"),
        received.header("webhook-timestamp"),
        String::from_utf8_lossy(&received.body)
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(content.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    received
        .header("webhook-signature")
        .split(' ')
        .any(|signature| signature == format!("v1,{expected}"))
}

/// Waits until every accepted event has arrived at every receiver; returns
/// how many arrived more than once.
async fn until_all_arrived(receivers: &[Receiver], accepted: &[String], within: Duration) -> usize {
    let wanted: HashSet<&str> = accepted.iter().map(String::as_str).collect();
    let deadline = Instant::now() + within;
    loop {
        let mut missing = 0;
        let mut duplicates = 0;
        let mut missing_per_receiver = Vec::new();
        for receiver in receivers {
            let mut seen: HashMap<String, usize> = HashMap::new();
            for received in receiver.received() {
                *seen
                    .entry(received.header("webhook-id").to_owned())
                    .or_default() += 1;
            }
            let here = wanted.iter().filter(|id| !seen.contains_key(**id)).count();
            missing_per_receiver.push(here);
            missing += here;
            duplicates += seen.values().map(|n| n - 1).sum::<usize>();
        }
        if missing == 0 {
            return duplicates;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} deliveries never arrived (per receiver: {missing_per_receiver:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The longest pause between two arrivals at a receiver in `[from, to]`
/// (the ends count as arrivals: a stall at either end shows too).
fn longest_gap(receiver: &Receiver, from: Instant, to: Instant) -> Duration {
    let mut times: Vec<Instant> = receiver
        .received()
        .iter()
        .map(|r| r.at)
        .filter(|at| *at >= from && *at <= to)
        .chain([from, to])
        .collect();
    times.sort();
    times
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .max()
        .unwrap_or_default()
}

#[actix_web::test]
async fn three_nodes_deliver_every_event_exactly_once() {
    let cluster = Cluster::start(3).await;
    let receivers: Vec<Receiver> = (0..4).map(|_| Receiver::ok()).collect();
    let mut secrets = Vec::new();
    for receiver in &receivers {
        secrets.push(cluster.endpoint(&receiver.url).await.1);
    }
    let leases_before = cluster.leases().await;
    let accepted = cluster.publish(0..5000, &[1, 2, 3]).await;
    assert_eq!(accepted.len(), 5000, "every publish is accepted");
    let duplicates = until_all_arrived(&receivers, &accepted, Duration::from_secs(120)).await;
    let leases_after = cluster.leases().await;
    assert_eq!(
        duplicates, 0,
        "no node fails: exactly once (leases (partition, node, epoch) before: \
         {leases_before:?}; after: {leases_after:?})"
    );
    for (receiver, secret) in receivers.iter().zip(&secrets) {
        assert!(receiver.received().iter().all(|r| signed_by(r, secret)));
    }
    let status = webhookd(
        &cluster.database,
        &["cluster", "status", "--node-timeout", NODE_TIMEOUT],
    );
    let text = stdout_of(&status);
    assert!(text.contains("healthy: 3 live node(s)"), "{text}");
}

/// A node is killed (`kill -9`) under steady load: every accepted event
/// arrives; duplicates only for the attempts it had in flight; its
/// endpoints are delivered by the survivors within the node timeout + 5 s.
#[actix_web::test]
async fn a_killed_node_loses_nothing_and_its_endpoints_move() {
    let mut cluster = Cluster::start(3).await;
    let receivers: Vec<Receiver> = (0..6).map(|_| Receiver::ok()).collect();
    let mut ids = Vec::new();
    for receiver in &receivers {
        ids.push(cluster.endpoint(&receiver.url).await.0);
    }
    // The node that owns the first endpoint dies; publishes go through the
    // other two all along.
    let victim: usize = cluster.owner_of(ids[0]).await[1..].parse().unwrap();
    let survivors: Vec<usize> = (1..=3).filter(|n| *n != victim).collect();
    let mut on_victim = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        if cluster.owner_of(*id).await == format!("n{victim}") {
            on_victim.push(i);
        }
    }
    let load = cluster.steady_publish(&survivors, 2000, Duration::from_millis(5));
    receivers[0].wait_for(300, Duration::from_secs(30)).await;
    let killed_at = Instant::now();
    cluster.nodes[victim - 1].take().unwrap().kill();
    let (accepted, load_ended) = load.await.unwrap();
    assert_eq!(
        accepted.len(),
        2000,
        "every publish to a live node is accepted"
    );
    until_all_arrived(&receivers, &accepted, Duration::from_secs(120)).await;
    cluster.until_nothing_pending(Duration::from_secs(60)).await;
    let duplicates = until_all_arrived(&receivers, &accepted, Duration::ZERO).await;
    let deliveries = accepted.len() * receivers.len();
    eprintln!("kill -9 of one of three nodes: {deliveries} deliveries, {duplicates} duplicates");
    assert!(
        duplicates * 50 < deliveries,
        "{duplicates} duplicates of {deliveries}"
    );
    // Only what the victim was answered just before it died is sent again:
    // an answer it had a second to record, it recorded.
    let stale: usize = receivers
        .iter()
        .map(|r| r.repeats_of_answers_before(killed_at - RECORDED_WITHIN))
        .sum();
    assert_eq!(
        stale, 0,
        "{stale} deliveries sent again although answered more than {RECORDED_WITHIN:?} before the kill"
    );
    for i in on_victim {
        let gap = longest_gap(&receivers[i], killed_at, load_ended);
        eprintln!(
            "endpoint {} (was on n{victim}): longest gap {gap:?}",
            ids[i]
        );
        assert!(
            gap < Duration::from_secs(8),
            "a dead node's endpoint waited {gap:?}"
        );
    }
}

/// `SIGTERM` under steady load: the node exits 0 within its grace, nothing
/// is lost or duplicated, and no endpoint's deliveries stop for 2 s.
#[actix_web::test]
async fn a_terminated_node_hands_over_without_loss_or_duplicates() {
    let mut cluster = Cluster::start(3).await;
    let receivers: Vec<Receiver> = (0..6).map(|_| Receiver::ok()).collect();
    for receiver in &receivers {
        cluster.endpoint(&receiver.url).await;
    }
    let load = cluster.steady_publish(&[2, 3], 2000, Duration::from_millis(5));
    receivers[0].wait_for(300, Duration::from_secs(30)).await;
    let stopped_at = Instant::now();
    let node = cluster.nodes[0].take().unwrap();
    let status = tokio::task::spawn_blocking(move || node.terminate(Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "exit status {status:?}"
    );
    let (accepted, load_ended) = load.await.unwrap();
    assert_eq!(accepted.len(), 2000);
    let duplicates = until_all_arrived(&receivers, &accepted, Duration::from_secs(60)).await;
    assert_eq!(duplicates, 0);
    for receiver in &receivers {
        let gap = longest_gap(receiver, stopped_at, load_ended);
        assert!(
            gap < Duration::from_secs(2),
            "deliveries stopped for {gap:?}"
        );
    }
    cluster.until_balanced(2).await;
}

/// A node's database connections are terminated under load: it recovers
/// by itself (no restart), and nothing accepted is lost.
#[actix_web::test]
async fn a_node_cut_off_from_the_database_recovers() {
    let cluster = Cluster::start(2).await;
    let receivers: Vec<Receiver> = (0..4).map(|_| Receiver::ok()).collect();
    for receiver in &receivers {
        cluster.endpoint(&receiver.url).await;
    }
    let mut accepted = cluster.publish(0..500, &[1, 2]).await;
    for _ in 0..3 {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = 'webhookd:n2'",
        )
        .execute(&cluster.pool)
        .await
        .unwrap();
        accepted.extend(
            cluster
                .publish(accepted.len()..accepted.len() + 200, &[1, 2])
                .await,
        );
    }
    until_all_arrived(&receivers, &accepted, Duration::from_secs(60)).await;
    // n2 serves again: a publish through it is accepted.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = cluster
            .call(
                2,
                reqwest::Method::POST,
                "/api/v1/events",
                json!({"type": "webhook_config.test"}),
            )
            .await;
        if status == 202 {
            break;
        }
        assert!(Instant::now() < deadline, "n2 still answers {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A URL change, a secret rotation and a deactivation made through one
/// node are used by whichever node owns the endpoint, at its next attempt;
/// a revoked key is refused by every node within a second.
#[actix_web::test]
async fn changes_through_one_node_reach_the_others() {
    let cluster = Cluster::start(3).await;
    let (old, new) = (Receiver::ok(), Receiver::ok());
    // One endpoint per node, so that every node owns one.
    let mut endpoints = Vec::new();
    while endpoints.len() < 3 {
        let (id, secret) = cluster.endpoint(&old.url).await;
        let owner = cluster.owner_of(id).await;
        if endpoints
            .iter()
            .all(|(_, _, o): &(i64, String, String)| o != &owner)
        {
            endpoints.push((id, secret, owner));
        } else {
            let (status, _) = cluster
                .call(
                    1,
                    reqwest::Method::DELETE,
                    &format!("/api/v1/webhooks/{id}"),
                    Value::Null,
                )
                .await;
            assert_eq!(status, 204);
        }
    }
    // Each changed through a node that does not own it.
    let mut secrets = Vec::new();
    for (id, _, owner) in &endpoints {
        let changer = (1..=3).find(|n| format!("n{n}") != *owner).unwrap();
        let (status, _) = cluster
            .call(
                changer,
                reqwest::Method::PATCH,
                &format!("/api/v1/webhooks/{id}"),
                json!({"url": new.url}),
            )
            .await;
        assert_eq!(status, 200);
        let (status, rotated) = cluster
            .call(
                changer,
                reqwest::Method::POST,
                &format!("/api/v1/webhooks/{id}/rotate-secret"),
                json!({}),
            )
            .await;
        assert_eq!(status, 200);
        secrets.push(rotated["data"]["secret"].as_str().unwrap().to_owned());
    }
    // Published through each node in turn: every owner sends to the new
    // URL, signed with the new secret, at its next attempt.
    for publisher in 1..=3 {
        let before = new.received().len();
        let (status, _) = cluster
            .call(
                publisher,
                reqwest::Method::POST,
                "/api/v1/events",
                json!({"type": "webhook_config.test"}),
            )
            .await;
        assert_eq!(status, 202);
        let arrived = new.wait_for(before + 3, Duration::from_secs(10)).await;
        for secret in &secrets {
            assert!(
                arrived[before..].iter().any(|r| signed_by(r, secret)),
                "an endpoint's new secret signed nothing"
            );
        }
    }
    assert!(old.received().is_empty(), "nothing went to the old URL");
    // Deactivated through a node that does not own it: no more deliveries.
    for (id, _, owner) in &endpoints {
        let changer = (1..=3).rev().find(|n| format!("n{n}") != *owner).unwrap();
        let (status, _) = cluster
            .call(
                changer,
                reqwest::Method::PATCH,
                &format!("/api/v1/webhooks/{id}"),
                json!({"is_active": false}),
            )
            .await;
        assert_eq!(status, 200);
    }
    let (status, published) = cluster
        .call(
            2,
            reqwest::Method::POST,
            "/api/v1/events",
            json!({"type": "webhook_config.test"}),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(published["data"]["deliveries"], 0, "every endpoint is off");

    let key_id = stdout_of(&webhookd(&cluster.database, &["key", "list"]))
        .lines()
        .nth(1)
        .and_then(|line| line.split_whitespace().next().map(str::to_owned))
        .unwrap();
    stdout_of(&webhookd(&cluster.database, &["key", "revoke", &key_id]));
    let revoked = Instant::now();
    for n in 1..=3 {
        loop {
            let (status, _) = cluster
                .call(n, reqwest::Method::GET, "/api/v1/webhooks", Value::Null)
                .await;
            if status == 401 {
                break;
            }
            assert!(
                revoked.elapsed() < Duration::from_secs(1),
                "n{n} still answers {status}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// `--role api` publishes and serves reads, delivers nothing; `--role
/// worker` delivers and serves only health. Same binary, one database.
#[actix_web::test]
async fn api_and_worker_roles_split_the_work() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let database = TestDatabase::create(Backend::Postgres).await;
    let role = |role: &str, n: usize| {
        Cluster::node_with(&database, &format!("{role}{n}"), &["--role", role])
    };
    let api = role("api", 1);
    let key = api.stdout_line(|line| line.starts_with("whk_"));
    api.wait_until_listening();
    let worker = role("worker", 1);
    worker.wait_until_listening();
    let client = reqwest::Client::new();
    let at = |served: &Served, path: &str| format!("http://127.0.0.1:{}{path}", served.port);

    let receiver = Receiver::ok();
    api.subscribe(&key, &receiver.url).await;
    for n in 0..20 {
        let response = client
            .post(at(&api, "/api/v1/events"))
            .bearer_auth(&key)
            .json(&json!({"type": "webhook_config.test", "data": {"n": n}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }
    receiver.wait_for(20, Duration::from_secs(20)).await;
    // The worker owns every partition; the API node none.
    let held: Vec<(String, i64)> = sqlx::query_as(
        "SELECT node, COUNT(*) FROM partition_leases WHERE expires_at > now() GROUP BY node",
    )
    .fetch_all(&PgPool::connect(&database.url).await.unwrap())
    .await
    .unwrap();
    assert_eq!(held, [("worker1".to_owned(), 64)]);
    // The worker serves health only.
    let response = client
        .get(at(&worker, "/api/v1/webhooks"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let ready = client
        .get(at(&worker, "/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

/// A rolling restart of all three nodes under steady load (each `SIGTERM`,
/// started again, the cluster balanced, then the next): nothing lost, and
/// no endpoint's deliveries stop for 2 s.
#[actix_web::test]
async fn a_rolling_restart_loses_nothing_and_never_stops_deliveries() {
    let mut cluster = Cluster::start(3).await;
    let receivers: Vec<Receiver> = (0..6).map(|_| Receiver::ok()).collect();
    for receiver in &receivers {
        cluster.endpoint(&receiver.url).await;
    }
    // Publishes go through whichever nodes are up: all three URLs, each
    // node's port kept across its restart.
    let ports: Vec<u16> = cluster
        .nodes
        .iter()
        .map(|n| n.as_ref().unwrap().port)
        .collect();
    let started = Instant::now();
    let load = cluster.steady_publish(&[1, 2, 3], 3000, Duration::from_millis(5));
    receivers[0].wait_for(100, Duration::from_secs(30)).await;
    for n in 1..=3 {
        let node = cluster.nodes[n - 1].take().unwrap();
        let status = tokio::task::spawn_blocking(move || node.terminate(Duration::from_secs(30)))
            .await
            .unwrap();
        assert!(status.is_some_and(|s| s.success()), "n{n}: {status:?}");
        let id = format!("n{n}");
        let restarted =
            Served::start_at(&cluster.database, ports[n - 1], &node_flags(&id, &[]), &[]);
        restarted.wait_until_listening();
        cluster.nodes[n - 1] = Some(restarted);
        cluster.until_balanced(3).await;
    }
    let (accepted, load_ended) = load.await.unwrap();
    // Publishes sent to a node while it restarted fail (its port is
    // closed): the client retries elsewhere; every accepted one counts.
    assert!(accepted.len() > 2500, "only {} accepted", accepted.len());
    until_all_arrived(&receivers, &accepted, Duration::from_secs(60)).await;
    let gaps: Vec<Duration> = receivers
        .iter()
        .map(|receiver| longest_gap(receiver, started, load_ended))
        .collect();
    eprintln!("rolling restart of three nodes: longest gaps {gaps:?}");
    assert!(
        gaps.iter().all(|gap| *gap < Duration::from_secs(2)),
        "deliveries stopped: {gaps:?}"
    );
}

/// Two nodes race for the same partitions under load (the second joins
/// while the first delivers, and takes half of them over): per endpoint,
/// no request from one node overlaps one from the other — the lease moves
/// only after the first node's attempts are recorded. Each node sends from
/// its own loopback address, so the receiver tells them apart.
#[actix_web::test]
async fn racing_nodes_never_send_to_one_endpoint_at_once() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let database = TestDatabase::create(Backend::Postgres).await;
    let node = |n: usize| {
        let source = format!("127.0.0.{}", n + 1);
        Cluster::node_with(
            &database,
            &format!("n{n}"),
            &["--delivery-source-address", &source],
        )
    };
    let first = node(1);
    let key = first.stdout_line(|line| line.starts_with("whk_"));
    first.wait_until_listening();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}", first.port);
    // Each request held 30 ms at the receiver, so that overlaps would show.
    let receivers: Vec<Receiver> = (0..8)
        .map(|_| Receiver::scripted(|_| Reply::After(200, 30)))
        .collect();
    for receiver in &receivers {
        first.subscribe(&key, &receiver.url).await;
    }
    let publishing = {
        let (client, base, key) = (client.clone(), base.clone(), key.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            for i in 0..800 {
                tick.tick().await;
                let response = client
                    .post(format!("{base}/api/v1/events"))
                    .bearer_auth(&key)
                    .json(&json!({"type": "webhook_config.test", "data": {"i": i}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 202);
            }
        })
    };
    receivers[0].wait_for(50, Duration::from_secs(30)).await;
    let second = node(2);
    second.wait_until_listening();
    publishing.await.unwrap();
    for receiver in &receivers {
        receiver.wait_for(800, Duration::from_secs(60)).await;
    }
    // Every request answered (the last ones may still be held).
    let deadline = Instant::now() + Duration::from_secs(10);
    while receivers.iter().any(|r| {
        r.received()
            .iter()
            .any(|request| request.answered.is_none())
    }) {
        assert!(Instant::now() < deadline, "requests left unanswered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut both = 0;
    for receiver in &receivers {
        let requests = receiver.received();
        assert_eq!(requests.len(), 800, "each event once");
        let senders: HashSet<_> = requests.iter().map(|r| r.peer).collect();
        both += usize::from(senders.len() > 1);
        for a in &requests {
            for b in &requests {
                if a.peer == b.peer {
                    continue;
                }
                let a_end = a.answered.expect("answered");
                assert!(
                    a_end <= b.at || b.answered.expect("answered") <= a.at,
                    "two nodes sent to one endpoint at once ({:?} and {:?})",
                    a.peer,
                    b.peer
                );
            }
        }
    }
    assert!(both > 0, "no endpoint moved between the nodes");
    drop((first, second));
}

/// Three nodes started at once on an empty database: exactly one creates
/// the `default` organisation and prints its key.
#[actix_web::test]
async fn nodes_started_together_bootstrap_once() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let database = TestDatabase::create(Backend::Postgres).await;
    let nodes: Vec<Served> = (1..=3).map(|n| Cluster::node(&database, n)).collect();
    for node in &nodes {
        node.wait_until_listening();
    }
    let keys: usize = nodes
        .into_iter()
        .map(|node| node.stop().iter().filter(|l| l.starts_with("whk_")).count())
        .sum();
    assert_eq!(keys, 1);
    let organisations = stdout_of(&webhookd(&database, &["org", "list"]));
    assert_eq!(organisations.lines().count(), 2, "{organisations}");
}

/// An endpoint's rate limit and a rotation's overlap hold after the
/// endpoint moves: its owner is killed, and the node that takes it over
/// still spaces its deliveries at the limit and signs with both secrets.
#[actix_web::test]
async fn a_rate_limit_and_a_rotation_overlap_hold_after_the_endpoint_moves() {
    let mut cluster = Cluster::start(2).await;
    let receiver = Receiver::ok();
    let (id, first) = cluster.endpoint(&receiver.url).await;
    let path = format!("/api/v1/webhooks/{id}");
    let (status, body) = cluster
        .call(1, reqwest::Method::PATCH, &path, json!({"rate_limit": 20}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, rotated) = cluster
        .call(
            1,
            reqwest::Method::POST,
            &format!("{path}/rotate-secret"),
            json!({"previous_valid_for": "1h"}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let second = rotated["data"]["secret"].as_str().unwrap().to_owned();

    let owner: usize = cluster.owner_of(id).await[1..].parse().unwrap();
    let survivor = 3 - owner;
    cluster.nodes[owner - 1].take().unwrap().kill();
    let accepted = cluster.publish(0..60, &[survivor]).await;
    assert_eq!(accepted.len(), 60);
    let received = receiver.wait_for(60, Duration::from_secs(60)).await;
    assert_eq!(cluster.owner_of(id).await, format!("n{survivor}"));
    let busiest = crate::throttle::busiest_second(received.iter().map(|r| r.at).collect());
    assert!(
        busiest <= 22,
        "{busiest} deliveries in one second at a limit of 20"
    );
    for delivery in &received {
        assert!(
            signed_by(delivery, &first),
            "the replaced secret still signs"
        );
        assert!(signed_by(delivery, &second), "the new secret signs");
    }
}

/// A FIFO endpoint keeps its order when it moves: events published by
/// concurrent clients through one node, its owner killed while they
/// arrive, and the node that takes it over goes on from the first one not
/// yet done — one at a time, no inversion, every event accepted.
#[actix_web::test]
async fn a_fifo_endpoint_keeps_its_order_when_its_owner_is_killed() {
    use crate::fifo::{assert_fifo, failing_at_random, wait_until_all_accepted, Publish};
    let mut cluster = Cluster::start(2).await;
    let receiver = failing_at_random();
    let (id, _) = cluster.endpoint(&receiver.url).await;
    let (status, body) = cluster
        .call(
            1,
            reqwest::Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            json!({"ordering": "fifo"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let owner: usize = cluster.owner_of(id).await[1..].parse().unwrap();
    let survivor = 3 - owner;

    let (client, base, key) = (
        cluster.client.clone(),
        cluster.base(survivor),
        cluster.key.clone(),
    );
    let (publishers, each) = (16_u64, 6_u64);
    let publishing = join_all((0..publishers).map(|p| {
        let (client, base, key) = (client.clone(), base.clone(), key.clone());
        async move {
            let mut done = Vec::new();
            for i in 0..each {
                let n = p * each + i;
                let started = Instant::now();
                let response = client
                    .post(format!("{base}/api/v1/events"))
                    .bearer_auth(&key)
                    .json(&json!({"type": "webhook_config.test", "data": {"i": n}}))
                    .send()
                    .await
                    .expect("publish");
                assert_eq!(response.status(), 202);
                done.push(Publish {
                    n,
                    started,
                    accepted: Instant::now(),
                });
            }
            done
        }
    }));
    let killing = async {
        receiver.wait_for(20, Duration::from_secs(30)).await;
        cluster.nodes[owner - 1].take().unwrap().kill();
    };
    let (published, ()) = tokio::join!(publishing, killing);
    let published: Vec<Publish> = published.into_iter().flatten().collect();
    let events = published.len();
    let number = |r: &Received| r.json()["data"]["i"].as_u64().expect("data.i");
    wait_until_all_accepted(&receiver, events, Duration::from_secs(90), number).await;
    assert_eq!(cluster.owner_of(id).await, format!("n{survivor}"));
    assert_fifo(&published, &receiver.received(), number);
}

/// The pending-deliveries gauges are the cluster's: one node counts them
/// (the holder of partition 0) and the others report 0, so that `max` or
/// `sum` over the nodes is the figure — not each node scanning every
/// pending row to report the same number.
#[actix_web::test]
async fn one_node_counts_the_clusters_pending_deliveries() {
    let cluster = Cluster::start(2).await;
    // Attempts that never answer keep their deliveries pending.
    let receiver = Receiver::scripted(|_| Reply::Hang);
    // Endpoints until each node owns one: then each node has a live
    // actor once the deliveries are pending, and its actor gauge says
    // when a sample was taken after that.
    let mut owners = HashSet::new();
    let mut endpoints = 0;
    while owners.len() < 2 {
        let (id, _) = cluster.endpoint(&receiver.url).await;
        owners.insert(cluster.owner_of(id).await);
        endpoints += 1;
        assert!(endpoints <= 32, "two nodes, and one owns every endpoint");
    }
    let accepted = cluster.publish(0..1, &[1]).await;
    assert_eq!(accepted.len(), 1);
    receiver.wait_for(endpoints, Duration::from_secs(20)).await;
    let counter: String =
        sqlx::query_scalar("SELECT node FROM partition_leases WHERE partition = 0")
            .fetch_one(&cluster.pool)
            .await
            .unwrap();
    let expected: Vec<Option<f64>> = (1..=2)
        .map(|n| {
            Some(if format!("n{n}") == counter {
                endpoints as f64
            } else {
                0.0
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut pending = Vec::new();
    for n in 1..=2 {
        // A sample after the deliveries were pending has an actor counted.
        // Its pending figure may still be an earlier count's: a count that
        // took long waits 19 times as long before the next (see
        // `delivery::gauges`), so wait for the figure, until the deadline.
        let scrape = loop {
            let scrape = cluster
                .client
                .get(format!("{}/metrics", cluster.base(n)))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let sampled =
                crate::cli::sample(&scrape, "webhookd_endpoint_actors").unwrap_or(0.0) >= 1.0;
            let counted =
                crate::cli::sample(&scrape, "webhookd_deliveries_pending") == expected[n - 1];
            if (sampled && counted) || Instant::now() >= deadline {
                assert!(sampled, "n{n} sampled no actor");
                break scrape;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        pending.push(crate::cli::sample(&scrape, "webhookd_deliveries_pending"));
    }
    assert_eq!(
        pending, expected,
        "only {counter}, the holder of partition 0, counts the {endpoints} pending deliveries"
    );
}
