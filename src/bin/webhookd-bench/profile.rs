//! `--profile`: where a scenario's time goes and where its deliveries wait,
//! over the same window as its CPU figures.
//!
//! * **The waiting.** webhookd runs with `WEBHOOKD_HANDOFF_TIMINGS=1`, so it
//!   times every delivery at each hand-off (`telemetry::Handoff`: publish
//!   queue, publish commit, hand-over to the actor, held, in flight,
//!   recording, outcome queue, outcome commit) into
//!   `webhookd_handoff_seconds{stage}`. Its `/metrics` is read when the
//!   window opens and when it closes; per stage the difference gives the
//!   count, the mean (Δsum / Δcount) and p50/p99 (from the buckets, so
//!   rounded up to a bucket bound).
//! * **The work.** `perf record` samples webhookd's process on the software
//!   clock (this VM has no hardware counters) over the window; the flat
//!   report by symbol goes to `<dir>/<label>.perf.txt` and its top lines
//!   into the report. Where `perf` is missing or refused, the report says
//!   so; `valgrind --tool=callgrind` (instruction counts, repeatable under
//!   any load) is the manual fallback, see the book's benchmark chapter.
use crate::server::Server;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The stages in the order a delivery passes them (webhookd's own list).
fn stages() -> impl Iterator<Item = &'static str> {
    webhookd::telemetry::Handoff::ALL
        .into_iter()
        .map(|stage| stage.name())
}

/// The hot symbols shown in the report.
const TOP_SYMBOLS: usize = 15;

pub struct Profiler {
    before: Handoffs,
    perf: Option<(Child, PathBuf)>,
    report: PathBuf,
}

impl Profiler {
    /// Opens the window: the hand-off histograms now, and `perf record`.
    pub async fn start(server: &Server, dir: &Path, label: &str) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let before = Handoffs::scrape(server).await?;
        let data = dir.join(format!("{label}.perf.data"));
        let perf = Command::new("perf")
            .args(["record", "-e", "cpu-clock", "-F", "999", "-q", "-o"])
            .arg(&data)
            .args(["-p", &server.pid().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()
            .map(|child| (child, data));
        Ok(Self {
            before,
            perf,
            report: dir.join(format!("{label}.perf.txt")),
        })
    }

    /// Closes the window: what the deliveries waited at each hand-off, and
    /// where webhookd's CPU went.
    pub async fn finish(self, server: &Server) -> anyhow::Result<Value> {
        let after = Handoffs::scrape(server).await?;
        let waits = after.since(&self.before);
        let hot = match self.perf {
            Some((child, data)) => stop_perf(child, &data, &self.report)?,
            None => json!("perf is not available here"),
        };
        Ok(json!({ "handoffs": waits, "hot_symbols": hot }))
    }
}

/// Stops `perf record` (SIGINT: it writes its file and exits), then writes
/// the flat report and answers its top symbols.
fn stop_perf(mut child: Child, data: &Path, report: &Path) -> anyhow::Result<Value> {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    // It exits 130 (interrupted) having written its file.
    child.wait()?;
    if !data.exists() {
        return Ok(json!("perf record failed (perf_event_paranoid?)"));
    }
    let output = Command::new("perf")
        .args([
            "report",
            "--no-children",
            "--sort",
            "dso,symbol",
            "--stdio",
            "-i",
        ])
        .arg(data)
        .stderr(Stdio::null())
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    std::fs::write(report, text.as_bytes())?;
    let top: Vec<Value> = text
        .lines()
        .filter(|line| !line.starts_with('#') && line.contains('%'))
        .take(TOP_SYMBOLS)
        .map(|line| {
            let mut parts = line.split_whitespace();
            let share = parts.next().unwrap_or_default().to_owned();
            // perf pads the columns it was not asked for with `-`.
            let rest: Vec<&str> = parts.filter(|part| *part != "-").collect();
            json!(format!("{share} {}", rest.join(" ")))
        })
        .collect();
    Ok(json!({ "report": report.display().to_string(), "top": top }))
}

/// `webhookd_handoff_seconds` by stage: cumulative buckets, sum, count.
#[derive(Debug, Default, Clone)]
struct Handoffs(BTreeMap<String, Stage>);

#[derive(Debug, Default, Clone)]
struct Stage {
    /// (upper bound in seconds, cumulative count), in bound order.
    buckets: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

impl Handoffs {
    async fn scrape(server: &Server) -> anyhow::Result<Self> {
        let text = reqwest::get(format!("{}/metrics", server.base))
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(Self::parse(&text))
    }

    fn parse(text: &str) -> Self {
        let mut stages: BTreeMap<String, Stage> = BTreeMap::new();
        for sample in crate::exposition::samples(text, "webhookd_handoff_seconds") {
            let Some(stage) = sample.label("stage") else {
                continue;
            };
            let entry = stages.entry(stage.to_owned()).or_default();
            if sample.is("_bucket") {
                let bound = sample
                    .label("le")
                    .map_or(f64::INFINITY, |le| le.parse().unwrap_or(f64::INFINITY));
                entry.buckets.push((bound, sample.value));
            } else if sample.is("_sum") {
                entry.sum = sample.value;
            } else if sample.is("_count") {
                entry.count = sample.value;
            }
        }
        for stage in stages.values_mut() {
            stage.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        Self(stages)
    }

    /// Per stage, in the order a delivery passes them: count, mean, p50 and
    /// p99 over what happened between `before` and now, in µs.
    fn since(&self, before: &Handoffs) -> Value {
        let mut table = serde_json::Map::new();
        for name in stages() {
            let Some(after) = self.0.get(name) else {
                continue;
            };
            let empty = Stage::default();
            let before = before.0.get(name).unwrap_or(&empty);
            let count = after.count - before.count;
            if count <= 0.0 {
                continue;
            }
            let buckets: Vec<(f64, f64)> = after
                .buckets
                .iter()
                .map(|&(bound, total)| {
                    let earlier = before
                        .buckets
                        .iter()
                        .find(|(b, _)| *b == bound)
                        .map_or(0.0, |(_, c)| *c);
                    (bound, total - earlier)
                })
                .collect();
            let quantile = |q: f64| {
                let wanted = q * count;
                buckets
                    .iter()
                    .find(|(_, cumulative)| *cumulative >= wanted)
                    .map_or(f64::INFINITY, |(bound, _)| *bound)
                    * 1e6
            };
            table.insert(
                name.to_owned(),
                json!({
                    "count": count as u64,
                    "mean_us": ((after.sum - before.sum) / count * 1e6 * 10.0).round() / 10.0,
                    "p50_us_at_most": quantile(0.5),
                    "p99_us_at_most": quantile(0.99),
                }),
            );
        }
        Value::Object(table)
    }
}

/// One line per stage, for the table output.
pub fn print(profile: &Value) {
    if let Some(measured) = profile["handoffs"].as_object() {
        println!("  hand-offs (per delivery, µs): stage  count  mean  p50≤  p99≤");
        for (name, stage) in
            stages().filter_map(|name| measured.get(name).map(|stage| (name, stage)))
        {
            println!(
                "    {name:<15} {:>8} {:>9.1} {:>8} {:>8}",
                stage["count"],
                stage["mean_us"].as_f64().unwrap_or_default(),
                stage["p50_us_at_most"],
                stage["p99_us_at_most"]
            );
        }
    }
    match &profile["hot_symbols"] {
        Value::Object(hot) => {
            println!(
                "  webhookd's CPU by symbol ({}):",
                hot["report"].as_str().unwrap_or_default()
            );
            for line in hot["top"].as_array().into_iter().flatten() {
                println!("    {}", line.as_str().unwrap_or_default());
            }
        }
        other => println!("  webhookd's CPU by symbol: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handoff_histograms_are_read_and_differenced() {
        let before = Handoffs::parse(
            "webhookd_handoff_seconds_bucket{stage=\"held\",le=\"0.00001\"} 1\n\
             webhookd_handoff_seconds_bucket{stage=\"held\",le=\"0.001\"} 2\n\
             webhookd_handoff_seconds_bucket{stage=\"held\",le=\"+Inf\"} 2\n\
             webhookd_handoff_seconds_sum{stage=\"held\"} 0.0005\n\
             webhookd_handoff_seconds_count{stage=\"held\"} 2\n",
        );
        let after = Handoffs::parse(
            "webhookd_handoff_seconds_bucket{stage=\"held\",le=\"0.00001\"} 1\n\
             webhookd_handoff_seconds_bucket{stage=\"held\",le=\"0.001\"} 101\n\
             webhookd_handoff_seconds_bucket{stage=\"held\",le=\"+Inf\"} 102\n\
             webhookd_handoff_seconds_sum{stage=\"held\"} 0.0505\n\
             webhookd_handoff_seconds_count{stage=\"held\"} 102\n\
             webhookd_other_seconds_count 7\n",
        );
        let table = after.since(&before);
        let held = &table["held"];
        assert_eq!(held["count"], 100);
        assert_eq!(held["mean_us"], 500.0);
        assert_eq!(held["p50_us_at_most"], 1000.0);
        assert_eq!(held["p99_us_at_most"], 1000.0);
        assert!(table.get("in_flight").is_none());
    }
}
