//! The `webhookd` binary itself: first-run bootstrap and the admin commands.
use crate::helpers::{Backend, TestDatabase};
use crate::on_both_backends;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub fn webhookd(database: &TestDatabase, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_webhookd"))
        .args(args)
        .env("DATABASE_URL", &database.url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("webhookd runs")
}

pub fn stdout_of(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// The first line from `lines` that satisfies `wanted`, each within `wait`.
fn first_line(
    lines: &mpsc::Receiver<String>,
    wait: Duration,
    wanted: impl Fn(&str) -> bool,
) -> String {
    loop {
        let line = lines
            .recv_timeout(wait)
            .expect("webhookd writes the expected line");
        if wanted(&line) {
            return line;
        }
    }
}

/// `webhookd serve` on a free port; killed when dropped.
pub struct Served {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    pub port: u16,
}

fn forward_lines(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    lines
}

impl Served {
    fn start(database: &TestDatabase) -> Self {
        Self::start_with(database, &[])
    }

    /// `webhookd serve` with extra flags.
    pub fn start_with(database: &TestDatabase, flags: &[&str]) -> Self {
        Self::start_with_env(database, flags, &[])
    }

    /// `webhookd serve` with extra flags and environment variables.
    pub fn start_with_env(database: &TestDatabase, flags: &[&str], env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_at(database, port, flags, env)
    }

    /// `webhookd serve` on a given port (a node restarted where it was).
    pub fn start_at(
        database: &TestDatabase,
        port: u16,
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_webhookd"))
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .args(flags)
            .env("DATABASE_URL", &database.url)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("webhookd serve starts");
        let stdout = forward_lines(child.stdout.take().unwrap());
        let stderr = forward_lines(child.stderr.take().unwrap());
        Self {
            child,
            stdout,
            stderr,
            port,
        }
    }

    /// Waits for the first stdout line that satisfies `wanted`.
    pub fn stdout_line(&self, wanted: impl Fn(&str) -> bool) -> String {
        first_line(&self.stdout, Duration::from_secs(60), wanted)
    }

    /// Where this server answers, e.g. `http://127.0.0.1:43123`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a v1 webhook for `url` subscribed to every event type,
    /// expecting 201; returns its `data`.
    pub async fn subscribe(&self, key: &str, url: &str) -> serde_json::Value {
        let response = reqwest::Client::new()
            .post(format!("{}/api/v1/webhooks", self.base()))
            .bearer_auth(key)
            .json(&serde_json::json!({"url": url, "events": ["*"]}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 201);
        let created: serde_json::Value = response.json().await.expect("JSON");
        created["data"].clone()
    }

    /// Waits for the first stderr (log) line that satisfies `wanted`.
    pub fn stderr_line(&self, wanted: impl Fn(&str) -> bool) -> String {
        first_line(&self.stderr, Duration::from_secs(30), wanted)
    }

    pub fn wait_until_listening(&self) {
        loop {
            let line = self
                .stderr
                .recv_timeout(Duration::from_secs(60))
                .expect("webhookd serve reports that it listens");
            if line.contains("webhookd is listening") {
                return;
            }
        }
    }

    /// `SIGTERM`, then waits up to `within` for the process to exit;
    /// returns its exit status (`None`: still running, then killed).
    pub fn terminate(mut self, within: Duration) -> Option<std::process::ExitStatus> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// `kill -9`: no chance to finish anything.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server and returns everything it printed on stdout.
    pub fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stdout.iter().collect()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn serve_prints_a_working_key_once(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let first = Served::start(&database);
    first.stdout_line(|l| l.contains("shown only this once"));
    let token = first.stdout_line(|l| l.starts_with("whk_"));
    first.wait_until_listening();

    let response = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/api/v1/webhooks", first.port))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    first.stop();

    let second = Served::start(&database);
    second.wait_until_listening();
    assert_eq!(
        second.stop(),
        Vec::<String>::new(),
        "the key is printed only once"
    );
}

async fn admin_commands_print_ids_and_tokens(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let org = stdout_of(&webhookd(
        &database,
        &[
            "org",
            "create",
            "--name",
            "Acme",
            "--plan",
            "enterprise",
            "--features",
            "webhooks,beta",
        ],
    ));
    let org: i64 = org.trim().parse().expect("org create prints only the id");

    let token = stdout_of(&webhookd(
        &database,
        &[
            "key",
            "create",
            "--org",
            &org.to_string(),
            "--scopes",
            "webhooks,audit",
        ],
    ));
    let token = token.trim();
    assert!(token.starts_with("whk_") && !token.contains(char::is_whitespace));

    let added = stdout_of(&webhookd(
        &database,
        &[
            "event-types",
            "add",
            "invoice.paid",
            "--description",
            "An invoice was paid",
        ],
    ));
    assert_eq!(added.trim(), "invoice.paid");
    let listed = stdout_of(&webhookd(&database, &["event-types", "list"]));
    assert!(listed.contains("invoice.paid") && listed.contains("An invoice was paid"));
    assert!(listed.contains("webhook_config.test"));

    let orgs = stdout_of(&webhookd(&database, &["org", "list"]));
    assert!(orgs.contains("Acme") && orgs.contains("enterprise") && orgs.contains("webhooks,beta"));
    let keys = stdout_of(&webhookd(
        &database,
        &["key", "list", "--org", &org.to_string()],
    ));
    assert!(keys.contains("webhooks,audit"));
    assert!(!keys.contains(token), "key list never shows tokens");

    for bad in [
        vec!["key", "create", "--org", "999", "--scopes", "webhooks"],
        vec!["key", "create", "--org", "1", "--scopes", "root"],
        vec!["org", "create", "--name", "X", "--plan", "gold"],
        vec!["event-types", "add", "NotAType", "--description", "x"],
    ] {
        let output = webhookd(&database, &bad);
        assert!(!output.status.success(), "{bad:?} should fail");
        assert!(output.stdout.is_empty(), "{bad:?} printed to stdout");
        assert!(!output.stderr.is_empty(), "{bad:?} explains itself");
    }

    // The key works against the service.
    let served = Served::start(&database);
    served.wait_until_listening();
    let response = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{}/api/v1/webhooks/events",
            served.port
        ))
        .header("Authorization", format!("Token {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn listen_shows_each_signature_verifying(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    stdout_of(&webhookd(
        &database,
        &["event-types", "add", "invoice.paid", "--description", "x"],
    ));
    let served = Served::start_with(&database, &["--dev"]);
    let key = served.stdout_line(|line| line.starts_with("whk_"));
    served.wait_until_listening();
    let listen_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{}", served.port);
    let client = reqwest::Client::new();
    let created: serde_json::Value = client
        .post(format!("{base}/api/v1/webhooks"))
        .bearer_auth(&key)
        .json(&serde_json::json!({
            "url": format!("http://127.0.0.1:{listen_port}/"),
            "events": ["invoice.paid"]
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = created["data"]["secret"].as_str().unwrap();
    let mut listener = Command::new(env!("CARGO_BIN_EXE_webhookd"))
        .args([
            "listen",
            "--port",
            &listen_port.to_string(),
            "--secret",
            secret,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("webhookd listen starts");
    let lines = forward_lines(listener.stdout.take().unwrap());
    let next = || {
        lines
            .recv_timeout(Duration::from_secs(30))
            .expect("listen prints")
    };
    assert!(next().contains("waiting for webhooks"));
    let response = client
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"type": "invoice.paid", "data": {"amount": 5}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let mut printed = Vec::new();
    while !printed
        .iter()
        .any(|l: &String| l.contains("ricloud-signature"))
    {
        printed.push(next());
    }
    let _ = listener.kill();
    let _ = listener.wait();
    let text = printed.join("\n");
    assert!(text.contains("\"amount\": 5"), "{text}");
    for scheme in [
        "webhook-signature",
        "x-webhook-signature",
        "ricloud-signature",
    ] {
        let line = printed.iter().find(|l| l.contains(scheme)).unwrap();
        assert!(
            line.trim_end().ends_with("valid") && !line.contains("INVALID"),
            "{line}"
        );
    }
}

/// Polls (every 25 ms) until `GET /api/v1/webhooks` with `token` answers
/// `status` with a body containing `saying`; panics if that takes over
/// `within`.
async fn until_answered(port: u16, token: &str, status: u16, saying: &str, within: Duration) {
    let deadline = std::time::Instant::now() + within;
    loop {
        let response = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/api/v1/webhooks"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let answered = response.status().as_u16();
        let body = response.text().await.unwrap();
        if answered == status && body.contains(saying) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {answered} after {within:?}, wanted {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A running server sees the operator's key and organisation changes at
/// once (within a second), and the audit shows each of them, no token.
async fn key_and_organisation_changes_take_effect_at_once(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let org = stdout_of(&webhookd(
        &database,
        &["org", "create", "--name", "Acme", "--features", "webhooks"],
    ));
    let org = org.trim().to_owned();
    let token = stdout_of(&webhookd(
        &database,
        &["key", "create", "--org", &org, "--scopes", "webhooks"],
    ))
    .trim()
    .to_owned();
    let served = Served::start(&database);
    served.wait_until_listening();
    let port = served.port;
    let second = Duration::from_secs(1);
    until_answered(port, &token, 200, "", second).await;
    let listed = stdout_of(&webhookd(&database, &["key", "list", "--org", &org]));
    let key_id = listed
        .lines()
        .nth(1)
        .and_then(|line| line.split_whitespace().next())
        .expect("the key is listed")
        .to_owned();

    let rotated = stdout_of(&webhookd(&database, &["key", "rotate", &key_id]));
    let rotated = rotated.trim();
    assert!(rotated.starts_with("whk_") && rotated != token);
    until_answered(port, &token, 401, "invalid API key", second).await;
    until_answered(port, rotated, 200, "", second).await;

    stdout_of(&webhookd(
        &database,
        &["org", "update", &org, "--plan", "standard"],
    ));
    until_answered(port, rotated, 403, "standard plan", second).await;
    stdout_of(&webhookd(
        &database,
        &[
            "org",
            "update",
            &org,
            "--plan",
            "business",
            "--features",
            "",
        ],
    ));
    until_answered(port, rotated, 403, "feature", second).await;
    stdout_of(&webhookd(
        &database,
        &["org", "update", &org, "--features", "webhooks"],
    ));
    until_answered(port, rotated, 200, "", second).await;

    assert_eq!(
        stdout_of(&webhookd(&database, &["key", "revoke", &key_id])).trim(),
        key_id
    );
    until_answered(port, rotated, 401, "invalid API key", second).await;
    let again = webhookd(&database, &["key", "revoke", &key_id]);
    assert!(!again.status.success(), "a second revoke is refused");
    let rotate_revoked = webhookd(&database, &["key", "rotate", &key_id]);
    assert!(
        !rotate_revoked.status.success(),
        "a revoked key cannot be rotated"
    );
    let listed = stdout_of(&webhookd(&database, &["key", "list", "--org", &org]));
    let line = listed
        .lines()
        .find(|line| line.split_whitespace().next() == Some(key_id.as_str()))
        .unwrap();
    assert!(
        line.trim_end().ends_with('Z'),
        "listed with when it was revoked: {line}"
    );

    let audit = stdout_of(&webhookd(&database, &["audit", "--json", "--org", &org]));
    let actions: Vec<String> = audit
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|record| record["aggregate_type"] == "Admin")
        .map(|record| {
            assert_eq!(record["metadata"]["actor"], "cli", "{record}");
            record["event_type"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        actions,
        [
            "OrganisationCreated",
            "KeyCreated",
            "KeyRotated",
            "OrganisationUpdated",
            "OrganisationUpdated",
            "OrganisationUpdated",
            "KeyRevoked"
        ]
    );
    assert!(
        !audit.contains(&token) && !audit.contains(rotated),
        "no token in the audit"
    );
    let revoked_only = stdout_of(&webhookd(&database, &["audit", "--type", "KeyRevoked"]));
    assert!(revoked_only.contains("KeyRevoked") && !revoked_only.contains("KeyRotated"));
}

/// `--log-format json` at `RUST_LOG=info,webhookd=debug`: every line is a
/// JSON object, and a grep for one event id finds its publish (with the
/// request id) and its attempt (with the delivery and config ids).
async fn json_logs_follow_one_event(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let served = Served::start_with_env(
        &database,
        &["--dev", "--log-format", "json"],
        &[("RUST_LOG", "info,webhookd=debug")],
    );
    let key = served.stdout_line(|line| line.starts_with("whk_"));
    served.wait_until_listening();
    let receiver = crate::receiver::Receiver::ok();
    served.subscribe(&key, &receiver.url).await;
    let base = served.base();
    let client = reqwest::Client::new();
    let published: serde_json::Value = client
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"type": "webhook_config.test"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let event_id = published["data"]["id"].as_str().unwrap().to_owned();
    let line = |message: &'static str| {
        let found = served.stderr_line(|l| l.contains(&event_id) && l.contains(message));
        let json: serde_json::Value = serde_json::from_str(&found).expect("a JSON line");
        json
    };
    let publish = line("event published");
    assert!(publish["span"]["request_id"]
        .as_str()
        .unwrap()
        .starts_with("req_"));
    assert_eq!(publish["fields"]["event_id"], event_id.as_str());
    let attempt = line("attempt recorded");
    assert_eq!(attempt["span"]["event_id"], event_id.as_str());
    assert!(attempt["span"]["delivery_id"].is_i64() && attempt["span"]["config_id"].is_i64());
    assert_eq!(attempt["fields"]["status"], 200);
}

/// The value of a Prometheus sample (`name{labels} value`) in a scrape.
pub fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// `GET /metrics` (Prometheus text) follows what happened: the deliveries
/// the receiver counted are `webhookd_deliveries_total{outcome="succeeded"}`;
/// with `--metrics-bind` it is served there and not on the API's address.
async fn metrics_count_what_the_receiver_saw(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics_bind = format!("127.0.0.1:{metrics_port}");
    let served = Served::start_with(&database, &["--dev", "--metrics-bind", &metrics_bind]);
    let key = served.stdout_line(|line| line.starts_with("whk_"));
    served.wait_until_listening();
    let receiver = crate::receiver::Receiver::ok();
    served.subscribe(&key, &receiver.url).await;
    let base = served.base();
    let client = reqwest::Client::new();
    for n in 0..30 {
        let response = client
            .post(format!("{base}/api/v1/events"))
            .bearer_auth(&key)
            .json(&serde_json::json!({"type": "webhook_config.test", "data": {"n": n}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }
    let arrived = receiver.wait_for(30, Duration::from_secs(20)).await.len();
    let scrape_url = format!("http://{metrics_bind}/metrics");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let scrape = loop {
        let response = client.get(&scrape_url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        let succeeded = sample(&text, r#"webhookd_deliveries_total{outcome="succeeded"}"#);
        if succeeded == Some(arrived as f64) {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "succeeded deliveries {succeeded:?}, the receiver saw {arrived}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        sample(&scrape, r#"webhookd_publishes_total{result="accepted"}"#),
        Some(30.0)
    );
    assert_eq!(
        sample(&scrape, r#"webhookd_attempts_total{class="2xx"}"#),
        Some(30.0)
    );
    // Every publish counted exactly once, whichever worker answered it.
    assert_eq!(
        sample(
            &scrape,
            r#"webhookd_http_requests_total{route="/api/v1/events",method="POST",status="202"}"#
        ),
        Some(30.0),
        "{scrape}"
    );
    assert!(scrape.contains("webhookd_attempt_duration_seconds_bucket"));
    assert!(!scrape.contains(&receiver.url), "no URLs in labels");
    // Not on the API's address.
    let public = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(public.status(), 404);
}

/// SQLite is one node: a second `serve` on the same file refuses to start,
/// saying why; once the first is gone, it starts.
#[actix_web::test]
async fn a_second_serve_on_one_sqlite_file_refuses_to_start() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let first = Served::start(&database);
    first.wait_until_listening();
    let second = Command::new(env!("CARGO_BIN_EXE_webhookd"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("DATABASE_URL", &database.url)
        .output()
        .expect("webhookd runs");
    assert!(!second.status.success());
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(
        said.contains("another `webhookd serve` is running"),
        "{said}"
    );
    let roles = Command::new(env!("CARGO_BIN_EXE_webhookd"))
        .args(["serve", "--bind", "127.0.0.1:0", "--role", "worker"])
        .env("DATABASE_URL", &database.url)
        .output()
        .expect("webhookd runs");
    assert!(!roles.status.success());
    assert!(String::from_utf8_lossy(&roles.stderr).contains("needs PostgreSQL"));
    first.kill();
    let third = Served::start(&database);
    third.wait_until_listening();
}

on_both_backends!(
    json_logs_follow_one_event,
    metrics_count_what_the_receiver_saw,
    key_and_organisation_changes_take_effect_at_once,
    serve_prints_a_working_key_once,
    admin_commands_print_ids_and_tokens,
    listen_shows_each_signature_verifying,
);
