//! The nodes of a fault run: real `webhookd serve` processes on one
//! PostgreSQL database, node `k` sending from `127.0.0.<k+2>` so the
//! receiver can tell who sent what. Paused nodes are continued and every
//! process is killed when [`Nodes`] drops, also when a run fails.
use anyhow::{bail, Context};
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How a node is started.
#[derive(Debug, Clone, Default)]
pub struct NodeSpec {
    /// `DATABASE_URL` (through a proxy, or several hosts).
    pub database_url: String,
    /// Extra environment (libfaketime for clock skew).
    pub env: Vec<(String, String)>,
}

pub struct Node {
    pub id: String,
    pub base: String,
    pub source: IpAddr,
    pub spec: NodeSpec,
    port: u16,
    child: Option<Child>,
    paused: bool,
    /// When the last `SIGSTOP` was sent (the fault's start for takeover).
    pub paused_at: Option<Instant>,
}

impl Node {
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    fn signal(&self, signal: i32) {
        if let Some(pid) = self.pid() {
            // SAFETY: a plain syscall on a child process of ours.
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }

    /// `SIGSTOP`: the whole process freezes, as in a long GC pause.
    pub fn pause(&mut self) {
        self.signal(libc::SIGSTOP);
        self.paused = true;
        self.paused_at = Some(Instant::now());
    }

    pub fn resume(&mut self) {
        self.signal(libc::SIGCONT);
        self.paused = false;
    }

    /// `SIGTERM`, then waits for the process to exit (up to `patience`,
    /// then `SIGKILL`).
    pub async fn terminate(&mut self, patience: Duration) {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + patience;
        while let Some(child) = self.child.as_mut() {
            if matches!(child.try_wait(), Ok(Some(_))) || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.kill();
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.paused {
                self.resume();
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub struct Nodes {
    pub nodes: Vec<Node>,
    pub key: String,
    binary: PathBuf,
    node_timeout: Duration,
    log: PathBuf,
}

impl Nodes {
    /// Starts one node per spec, the first on an empty database (it
    /// prints the key).
    pub async fn start(
        binary: PathBuf,
        specs: Vec<NodeSpec>,
        node_timeout: Duration,
        log: PathBuf,
    ) -> anyhow::Result<Self> {
        let mut nodes = Nodes {
            nodes: Vec::new(),
            key: String::new(),
            binary,
            node_timeout,
            log,
        };
        for (k, spec) in specs.into_iter().enumerate() {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            nodes.nodes.push(Node {
                id: format!("n{}", k + 1),
                base: format!("http://127.0.0.1:{port}"),
                source: IpAddr::from([127, 0, 0, k as u8 + 2]),
                spec,
                port,
                child: None,
                paused: false,
                paused_at: None,
            });
            let printed = nodes.launch(k).await?;
            if k == 0 {
                nodes.key = printed.context("the first node printed no key")?;
            }
        }
        Ok(nodes)
    }

    /// Starts (or starts again) node `k`; returns the key it printed.
    pub async fn launch(&mut self, k: usize) -> anyhow::Result<Option<String>> {
        let node = &self.nodes[k];
        // One log per node: `<log>.n1`, …
        let mut path = self.log.clone().into_os_string();
        path.push(format!(".{}", node.id));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let timeout = format!("{}ms", self.node_timeout.as_millis());
        let mut child = Command::new(&self.binary)
            .args([
                "serve",
                "--dev",
                "--bind",
                &format!("127.0.0.1:{}", node.port),
            ])
            .args(["--node-id", &node.id, "--node-timeout", &timeout])
            .args(["--delivery-source-address", &node.source.to_string()])
            .args(["--retry-schedule", "300ms,600ms,1s,2s,5s,10s,20s"])
            .args(["--max-db-connections", "8", "--shutdown-grace", "5s"])
            .env("DATABASE_URL", &node.spec.database_url)
            .env(
                "RUST_LOG",
                std::env::var("WEBHOOKD_FAULTS_RUST_LOG")
                    .unwrap_or_else(|_| "warn,webhookd=info".into()),
            )
            .envs(node.spec.env.iter().cloned())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", self.binary.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let key = if k == 0 && self.key.is_empty() {
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
        let base = node.base.clone();
        self.nodes[k].child = Some(child);
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ready = client
                .get(format!("{base}/health/ready"))
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(key);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("node {} did not become ready", k + 1)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
    }
}
