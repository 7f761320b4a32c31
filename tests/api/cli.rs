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
        let mut child = Command::new(env!("CARGO_BIN_EXE_webhookd"))
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .args(flags)
            .envs(env.iter().copied())
            .env("DATABASE_URL", &database.url)
            .env("RUST_LOG", "info")
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
        loop {
            let line = self
                .stdout
                .recv_timeout(Duration::from_secs(60))
                .expect("webhookd serve prints the expected line");
            if wanted(&line) {
                return line;
            }
        }
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

    /// `kill -9`: no chance to finish anything.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server and returns everything it printed on stdout.
    fn stop(mut self) -> Vec<String> {
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

on_both_backends!(
    serve_prints_a_working_key_once,
    admin_commands_print_ids_and_tokens,
    listen_shows_each_signature_verifying,
);
