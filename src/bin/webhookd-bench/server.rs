//! The webhookd under test: the binary next to this one, on a fresh
//! database of the chosen backend, with `--dev` (receivers on loopback).
use anyhow::{bail, Context};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A directory of its own under the system's temporary directory, removed
/// with everything in it when dropped.
struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    fn create() -> std::io::Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "webhookd-bench-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir(&path)?;
        Ok(Self(path))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct Server {
    child: Child,
    pub base: String,
    pub key: String,
    database_url: String,
    _sqlite_dir: Option<ScratchDir>,
    postgres: Option<(String, String)>,
}

impl Server {
    pub async fn start(
        backend: Backend,
        postgres_admin: &str,
        flags: &[String],
        env: &[(&str, &str)],
        wrapper: &[String],
    ) -> anyhow::Result<Self> {
        let (database_url, sqlite_dir, postgres) = match backend {
            Backend::Sqlite => {
                let dir = ScratchDir::create()?;
                let url = format!("sqlite://{}", dir.0.join("bench.db").display());
                (url, Some(dir), None)
            }
            Backend::Postgres => {
                let name = format!("webhookd_bench_{}", std::process::id());
                // The server's URL: the admin URL's, with our database and
                // the admin URL's parameters (such as `sslmode`).
                let (path, query) = postgres_admin
                    .split_once('?')
                    .map_or((postgres_admin, None), |(p, q)| (p, Some(q)));
                let base = path.rsplit_once('/').map_or(path, |(b, _)| b);
                let query = query.map(|q| format!("?{q}")).unwrap_or_default();
                crate::faults::admin_sql(
                    postgres_admin,
                    &format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#),
                )
                .await?;
                crate::faults::admin_sql(postgres_admin, &format!(r#"CREATE DATABASE "{name}""#))
                    .await?;
                (
                    format!("{base}/{name}{query}"),
                    None,
                    Some((postgres_admin.to_owned(), name)),
                )
            }
        };
        let binary = webhookd_binary()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        // Under a wrapper (`--instructions`: valgrind) webhookd is its
        // argument; the wrapper runs it in its own process, the pid ours.
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(&binary);
                command
            }
            None => Command::new(&binary),
        };
        let mut child = command
            .args(["serve", "--dev", "--bind", &format!("127.0.0.1:{port}")])
            .args(["--retry-schedule", "200ms,500ms,1s"])
            .args(flags)
            .env("DATABASE_URL", &database_url)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log_file()?)
            .spawn()
            .with_context(|| format!("cannot start {} (build it first)", binary.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let key = tokio::task::spawn_blocking(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .find(|line| line.starts_with("whk_"))
        })
        .await?
        .context("webhookd printed no key")?;
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        // Minutes under valgrind, a second otherwise.
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while std::time::Instant::now() < deadline {
            if client
                .get(format!("{base}/api/v1/webhooks/events"))
                .bearer_auth(&key)
                .send()
                .await
                .is_ok()
            {
                return Ok(Self {
                    child,
                    base,
                    key,
                    database_url,
                    _sqlite_dir: sqlite_dir,
                    postgres,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("webhookd did not answer")
    }

    /// `webhookd event-types add` on the server's database.
    pub fn add_event_type(&self, name: &str) -> anyhow::Result<()> {
        add_event_type(&self.database_url, name)
    }

    /// Brings the database to the steady state of a long-running one after
    /// a bulk of writes: on PostgreSQL `VACUUM ANALYZE` (what autovacuum
    /// would otherwise do in the middle of the next measured window, on a
    /// table just grown by a million rows) and a `CHECKPOINT` (else the
    /// pages those writes dirtied are flushed in the window); SQLite needs
    /// nothing.
    pub async fn settle_database(&self) -> anyhow::Result<()> {
        if self.postgres.is_some() {
            crate::faults::admin_sql(&self.database_url, "VACUUM ANALYZE").await?;
            crate::faults::admin_sql(&self.database_url, "CHECKPOINT").await?;
        }
        Ok(())
    }

    /// The server's peak resident memory so far (Linux VmHWM), in MB.
    pub fn peak_rss_mb(&self) -> f64 {
        self.status_mb("VmHWM:")
    }

    /// Current resident memory (VmRSS), in MB.
    pub fn rss_mb(&self) -> f64 {
        self.status_mb("VmRSS:")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the server process has ended (a zombie until we reap it).
    pub fn has_exited(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).map_or(true, |stat| {
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
        })
    }

    /// A kB field of `/proc/<pid>/status`, in MB (0 when unreadable).
    fn status_mb(&self, field: &str) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find(|l| l.starts_with(field))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .map_or(0.0, |kb| kb / 1024.0)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some((admin, name)) = self.postgres.take() {
            let _ = crate::faults::admin_sql(
                &admin,
                &format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#),
            )
            .await;
        }
    }
}

/// A scenario that fails part-way (`?`) leaves no server running behind
/// it (its database stays, named after the bench's pid).
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `webhookd` that `--versus` measures now, instead of the one next to
/// the bench (see [`webhookd_binary`]).
static CHOSEN: std::sync::RwLock<Option<std::path::PathBuf>> = std::sync::RwLock::new(None);

/// From now on scenarios start this `webhookd` (`None`: the one next to
/// the bench).
pub fn use_binary(binary: Option<std::path::PathBuf>) {
    *CHOSEN
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = binary;
}

/// The `webhookd` binary scenarios start: the release binary next to this
/// one, unless `--versus` chose the other.
pub fn webhookd_binary() -> anyhow::Result<std::path::PathBuf> {
    let chosen = CHOSEN
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    if let Some(binary) = chosen {
        return Ok(binary);
    }
    Ok(std::env::current_exe()?
        .parent()
        .context("no directory")?
        .join("webhookd"))
}

/// `webhookd event-types add NAME` on a database.
pub fn add_event_type(database_url: &str, name: &str) -> anyhow::Result<()> {
    let status = Command::new(webhookd_binary()?)
        .args([
            "event-types",
            "add",
            name,
            "--description",
            "benchmark event",
        ])
        .env("DATABASE_URL", database_url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("cannot add the event type");
    }
    Ok(())
}

/// The server's warnings and errors go to `webhookd-bench-server.log` in the
/// system's temp directory, so a failed publish can be looked up.
pub fn log_file() -> anyhow::Result<std::fs::File> {
    let path = server_log();
    std::fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))
}

pub fn server_log() -> std::path::PathBuf {
    std::env::temp_dir().join("webhookd-bench-server.log")
}
