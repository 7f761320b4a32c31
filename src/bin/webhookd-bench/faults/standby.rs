//! A primary and a streaming standby on this machine, for failover runs:
//! two new PostgreSQL clusters (Debian's `pg_createcluster`, trust on
//! loopback; the machine's `main` cluster is left alone), the standby made
//! with `pg_basebackup -R`, replication synchronous or not. Both clusters
//! are stopped and dropped when the pair drops, also when a run fails.
use anyhow::{bail, Context};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Pair {
    version: String,
    primary: (String, u16),
    standby: (String, u16),
    dropped: std::sync::atomic::AtomicBool,
}

fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !output.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// One statement through `psql` on a cluster of the pair, unaligned.
fn psql(port: u16, sql: &str) -> anyhow::Result<String> {
    let port = port.to_string();
    run(
        "psql",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "postgres",
            "-Atc",
            sql,
        ],
    )
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Pair {
    pub async fn create(synchronous: bool) -> anyhow::Result<Self> {
        let version = std::fs::read_dir("/etc/postgresql")
            .context("PostgreSQL's clusters (Debian's postgresql-common) are not installed")?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .max()
            .context("no PostgreSQL version")?;
        let id = std::process::id();
        let pair = Self {
            version,
            primary: (format!("wh_primary_{id}"), free_port()?),
            standby: (format!("wh_standby_{id}"), free_port()?),
            dropped: Default::default(),
        };
        pair.set_up(synchronous).await?;
        Ok(pair)
    }

    async fn set_up(&self, synchronous: bool) -> anyhow::Result<()> {
        let v = self.version.as_str();
        let (primary, primary_port) = (&self.primary.0, self.primary.1.to_string());
        let (standby, standby_port) = (&self.standby.0, self.standby.1.to_string());
        run(
            "pg_createcluster",
            &[v, primary, "--port", &primary_port, "--", "--auth=trust"],
        )?;
        let settings = format!(
            "\nlisten_addresses = '127.0.0.1'\nshared_buffers = 32MB\nmax_wal_senders = 5\n\
             wal_level = replica\nsynchronous_commit = on\nsynchronous_standby_names = '{}'\n",
            if synchronous { "*" } else { "" }
        );
        append(
            &format!("/etc/postgresql/{v}/{primary}/postgresql.conf"),
            &settings,
        )?;
        run(
            "pg_ctlcluster",
            &["--skip-systemctl-redirect", v, primary, "start"],
        )?;
        run(
            "pg_createcluster",
            &[v, standby, "--port", &standby_port, "--", "--auth=trust"],
        )?;
        append(
            &format!("/etc/postgresql/{v}/{standby}/postgresql.conf"),
            "\nlisten_addresses = '127.0.0.1'\nshared_buffers = 32MB\nhot_standby = on\n",
        )?;
        // The standby's data is the primary's, copied; its directory
        // is made anew, owned by postgres.
        let data = format!("/var/lib/postgresql/{v}/{standby}");
        std::fs::remove_dir_all(&data).ok();
        std::fs::create_dir_all(&data)?;
        run("chown", &["postgres:postgres", &data])?;
        run("chmod", &["700", &data])?;
        run(
            "runuser",
            &[
                "-u",
                "postgres",
                "--",
                "pg_basebackup",
                "-h",
                "127.0.0.1",
                "-p",
                &primary_port,
                "-U",
                "postgres",
                "-D",
                &data,
                "-R",
                "-X",
                "stream",
            ],
        )?;
        run(
            "pg_ctlcluster",
            &["--skip-systemctl-redirect", v, standby, "start"],
        )?;
        // Replicating (synchronously, when asked) before the run starts.
        let want = if synchronous { "sync" } else { "async" };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let state = psql(self.primary.1, "SELECT sync_state FROM pg_stat_replication")
                .unwrap_or_default();
            if state.trim() == want {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the standby is not replicating ({want}): {state:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The primary alone.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}?sslmode=disable",
            self.primary.1
        )
    }

    /// Both, as a node is given them.
    pub fn multi_host_url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{database}?sslmode=disable&target_session_attrs=read-write",
            self.primary.1, self.standby.1
        )
    }

    pub async fn create_database(&self, name: &str) -> anyhow::Result<()> {
        let admin = format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
            self.primary.1
        );
        super::admin_sql(&admin, &format!(r#"CREATE DATABASE "{name}""#)).await
    }

    /// `stop -m immediate`: the primary dies as in a crash.
    pub fn kill_primary(&self) -> anyhow::Result<()> {
        run(
            "pg_ctlcluster",
            &[
                "--skip-systemctl-redirect",
                &self.version,
                &self.primary.0,
                "stop",
                "-m",
                "immediate",
            ],
        )
        .map(drop)
    }

    pub fn promote(&self) -> anyhow::Result<()> {
        run(
            "pg_ctlcluster",
            &[
                "--skip-systemctl-redirect",
                &self.version,
                &self.standby.0,
                "promote",
            ],
        )
        .map(drop)
    }

    pub fn drop_clusters(&self) {
        if self.dropped.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return;
        }
        for (name, _) in [&self.primary, &self.standby] {
            let _ = run("pg_dropcluster", &[&self.version, name, "--stop"]);
        }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        self.drop_clusters();
    }
}

fn append(path: &str, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {path}"))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}
