//! Where the CPU went during a measured window, from `/proc`: webhookd's
//! process, the database's (every process named `postgres`: the server
//! and its backends; SQLite is inside webhookd), the bench itself (its
//! load generator and its signature-checking receiver), and the whole
//! machine. Divided by the deliveries of the window it is the cost of one
//! delivery — the figure issue 23 asks to halve — and the machine's busy
//! share says whether a throughput was limited by the cores.
//!
//! A backend process that ends inside the window takes its CPU with it
//! (the pools keep theirs for the run, so in practice none does).
use serde::Serialize;

/// CPU seconds used so far, by whom.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    webhookd: f64,
    database: f64,
    bench: f64,
    machine_busy: f64,
    machine_total: f64,
}

/// CPU per delivery over a window, in µs, and the machine's busy share.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PerDelivery {
    pub webhookd_us: f64,
    pub database_us: f64,
    pub bench_us: f64,
    /// Of all cores, over the window (1.0: every core busy all the time).
    pub machine_busy: f64,
}

impl std::fmt::Display for PerDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cpu µs/delivery webhookd {:.1} db {:.1} bench {:.1}, machine {:.0}% busy",
            self.webhookd_us,
            self.database_us,
            self.bench_us,
            self.machine_busy * 100.0
        )
    }
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// utime + stime of a process, in seconds (0 when it is gone).
fn process_seconds(stat_path: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(stat_path) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces): state is
    // field 3, utime 14, stime 15.
    let Some((_, rest)) = stat.rsplit_once(") ") else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / ticks_per_second()
}

fn postgres_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|entry| {
            std::fs::read_to_string(entry.path().join("comm"))
                .is_ok_and(|comm| comm.trim() == "postgres")
        })
        .map(|entry| process_seconds(&entry.path().join("stat").to_string_lossy()))
        .sum()
}

/// The machine's busy and total CPU seconds (all cores), from `/proc/stat`.
fn machine_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().next() else {
        return (0.0, 0.0);
    };
    let values: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: f64 = values.iter().take(8).sum();
    // idle and iowait are not busy.
    let idle = values.get(3).copied().unwrap_or(0.0) + values.get(4).copied().unwrap_or(0.0);
    (
        (total - idle) / ticks_per_second(),
        total / ticks_per_second(),
    )
}

impl Sample {
    /// Now, with webhookd's process `pid`.
    pub fn now(webhookd_pid: u32) -> Self {
        Self::of_nodes(&[webhookd_pid])
    }

    /// Now, with webhookd's processes `pids` (a cluster's nodes) together.
    pub fn of_nodes(pids: &[u32]) -> Self {
        let (machine_busy, machine_total) = machine_seconds();
        Self {
            webhookd: pids
                .iter()
                .map(|pid| process_seconds(&format!("/proc/{pid}/stat")))
                .sum(),
            database: postgres_seconds(),
            bench: process_seconds("/proc/self/stat"),
            machine_busy,
            machine_total,
        }
    }

    /// From `self` to `later`, per delivery.
    pub fn per_delivery(&self, later: &Sample, deliveries: u64) -> PerDelivery {
        let per =
            |before: f64, after: f64| (after - before).max(0.0) * 1e6 / (deliveries.max(1) as f64);
        let total = later.machine_total - self.machine_total;
        PerDelivery {
            webhookd_us: per(self.webhookd, later.webhookd),
            database_us: per(self.database, later.database),
            bench_us: per(self.bench, later.bench),
            machine_busy: if total > 0.0 {
                (later.machine_busy - self.machine_busy) / total
            } else {
                0.0
            },
        }
    }
}
