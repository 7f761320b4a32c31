//! `--instructions`: the instructions webhookd executes per delivery, a
//! figure that does not move with the machine.
//!
//! The CPU µs per delivery are what the goals are written in, but
//! they move with the VM: the same build measured 57–70 000 requests/s on
//! the `ceiling` of one machine and 24–28 000 on another's, and two runs of
//! an A/B pair differ by more than most single changes save. Callgrind
//! counts instructions instead — the same for the same build and load,
//! whatever else the machine is doing — so a change's effect on the hot
//! path can be stated exactly.
//!
//! webhookd then runs under `valgrind --tool=callgrind` (~50× slower: the
//! scenario's load saturates it at a few hundred deliveries a second, so
//! its batches are larger than at full speed; compare runs of the same
//! scenario and `--events` only). The counters are zeroed when the
//! scenario's measured window opens (`callgrind_control --zero`) and
//! dumped when it closes (`--dump`): the count covers that window only,
//! not start-up or migrations.
use crate::server::Server;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The command line `Server::start` runs webhookd under, with its dumps in
/// `dir`.
pub fn wrapper(dir: &Path) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let dir = std::fs::canonicalize(dir)?;
    Ok(vec![
        "valgrind".to_owned(),
        "--tool=callgrind".to_owned(),
        "--dump-instr=no".to_owned(),
        format!("--callgrind-out-file={}/webhookd.%p", dir.display()),
    ])
}

/// Callgrind's counters of one server, zeroed when the window opened.
pub struct Counter {
    pid: u32,
    dir: PathBuf,
}

impl Counter {
    /// Opens the window: zeroes the server's counters.
    pub fn zero(server: &Server, dir: &Path) -> anyhow::Result<Self> {
        let counter = Self {
            pid: server.pid(),
            dir: std::fs::canonicalize(dir)?,
        };
        counter.control(&["--zero"])?;
        Ok(counter)
    }

    /// Closes the window: the instructions executed since [`Self::zero`].
    pub fn read(self) -> anyhow::Result<u64> {
        let before = self.dumps()?;
        self.control(&["--dump=window"])?;
        // The dump is written by the server's own thread: wait for it.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            for path in self.dumps()? {
                if before.contains(&path) {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                if let Some(count) = summary(&text) {
                    return Ok(count);
                }
            }
            if Instant::now() > deadline {
                bail!("callgrind wrote no dump for pid {}", self.pid);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's numbered dumps (`webhookd.<pid>.<n>`).
    fn dumps(&self) -> anyhow::Result<Vec<PathBuf>> {
        let prefix = format!("webhookd.{}.", self.pid);
        Ok(std::fs::read_dir(&self.dir)?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with(&prefix))
            })
            .collect())
    }

    fn control(&self, args: &[&str]) -> anyhow::Result<()> {
        let status = Command::new("callgrind_control")
            .args(args)
            .arg(self.pid.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("callgrind_control (valgrind) is not installed")?;
        if !status.success() {
            bail!("callgrind_control {args:?} failed: {status}");
        }
        Ok(())
    }
}

/// The instructions a callgrind dump counted (its `summary:` line; absent
/// while the dump is still being written).
fn summary(dump: &str) -> Option<u64> {
    dump.lines()
        .find_map(|line| line.strip_prefix("summary: "))
        .and_then(|count| count.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::summary;

    /// The head of a dump as callgrind 3.19 writes it for `--dump=window`.
    #[test]
    fn reads_the_count_of_a_dump_and_waits_for_an_unfinished_one() {
        let dump = "version: 1\ncreator: callgrind-3.19.0\npid: 25481\n\
                    desc: Trigger: dump window\nevents: Ir\nsummary: 212448443\n\
                    totals: 212633059\n";
        assert_eq!(summary(dump), Some(212_448_443));
        assert_eq!(summary("version: 1\ncreator: callgrind-3.19.0\n"), None);
    }
}
