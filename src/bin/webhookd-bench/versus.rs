//! `--versus`: one scenario, two builds, interleaved pairs.
//!
//! This VM's speed drifts by ±5–20 % from hour to hour (the benchmark
//! pages' `ceiling` rows), more than most single changes move the CPU per
//! delivery; and a run's figures depend on what ran just before it (the
//! thirteenth session saw the second run of every pair cheaper). So a
//! comparison is made of pairs taken back to back, their order alternating
//! (A B, B A, A B, …), and of ratios the drift cancels in: each process's
//! CPU per delivery over the bench's own (`w/b`, `db/b`), the bench's work
//! per delivery being the same in both runs of a pair. The summary gives
//! each pair's change from A to B and their median; a change smaller than
//! the spread of the pairs is no change.
use crate::scenarios::Report;
use crate::server::use_binary;
use crate::Options;
use anyhow::Context;
use std::path::{Path, PathBuf};

/// Runs the scenario `options.rounds` times with each build and prints
/// every run and the comparison.
pub async fn run(options: &Options, other: &Path) -> anyhow::Result<()> {
    let other = other
        .canonicalize()
        .with_context(|| format!("no webhookd at {}", other.display()))?;
    let builds: [(&str, Option<PathBuf>); 2] = [("A", None), ("B", Some(other.clone()))];
    let mut runs: [Vec<Vec<Report>>; 2] = [Vec::new(), Vec::new()];
    let mut failed = false;
    for round in 0..options.rounds.max(1) {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for build in order {
            let (label, binary) = &builds[build];
            use_binary(binary.clone());
            let mut reports = Vec::new();
            let shown = crate::run_scenario(options, &mut |report| {
                if options.json {
                    failed |= crate::broke_a_promise(&report);
                    println!(
                        "{}",
                        serde_json::json!({"build": label, "round": round, "report": &report})
                    );
                } else {
                    print!("{label} ");
                    failed |= crate::show(&report, false)?;
                }
                reports.push(report);
                Ok(())
            })
            .await;
            use_binary(None);
            shown?;
            runs[build].push(reports);
        }
    }
    let [a, b] = runs;
    let comparison = compare(&a, &b);
    if options.json {
        println!("{}", serde_json::json!({ "versus": comparison }));
    } else {
        println!(
            "\nA = the webhookd next to the bench, B = {}; {} pairs, order alternating",
            other.display(),
            a.len()
        );
        for row in &comparison {
            println!("{}", row.line());
        }
    }
    if failed {
        anyhow::bail!("deliveries were lost or badly signed");
    }
    Ok(())
}

/// One figure of one report (say the second of `cluster`'s) over the pairs.
#[derive(Debug, serde::Serialize, PartialEq)]
pub struct Compared {
    pub report: String,
    pub figure: &'static str,
    pub a: Vec<f64>,
    pub b: Vec<f64>,
    /// B over A − 1 in each pair, in per cent.
    pub change_pct: Vec<f64>,
    pub median_change_pct: f64,
}

impl Compared {
    fn line(&self) -> String {
        let list = |values: &[f64]| {
            values
                .iter()
                .map(|v| match v.abs() {
                    v if v >= 100.0 => format!("{v:.0}"),
                    v if v >= 10.0 => format!("{v:.1}"),
                    _ => format!("{v:.3}"),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let changes = self
            .change_pct
            .iter()
            .map(|c| format!("{c:+.1}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "{:<28} {:<5} A {} | B {} | B vs A {} % (median {:+.1} %)",
            self.report,
            self.figure,
            list(&self.a),
            list(&self.b),
            changes,
            self.median_change_pct
        )
    }
}

/// The figures a comparison looks at, where the report has them.
fn figures(report: &Report) -> Vec<(&'static str, f64)> {
    let mut figures = vec![
        ("rate", report.deliveries_per_s),
        ("p99", report.latency_ms.p99),
    ];
    if let Some(cpu) = report.cpu.filter(|cpu| cpu.bench_us > 0.0) {
        figures.push(("w/b", cpu.webhookd_us / cpu.bench_us));
        // Beside the ratios, the µs: when they move together with the
        // rate while the ratios stay put, it is the machine (a same-binary
        // calibration on PostgreSQL: rate +7 %, µs −3 to −6 %, ratios
        // ±0.5 %, medians of four pairs).
        figures.push(("w µs", cpu.webhookd_us));
        if cpu.database_us > 0.0 {
            figures.push(("db/b", cpu.database_us / cpu.bench_us));
            figures.push(("db µs", cpu.database_us));
        }
    }
    figures
}

/// Pairs the runs' reports by position (`a[i]` with `b[i]`, report `k`
/// with report `k`) and compares each figure both have.
pub fn compare(a: &[Vec<Report>], b: &[Vec<Report>]) -> Vec<Compared> {
    let pairs: Vec<(&Vec<Report>, &Vec<Report>)> = a.iter().zip(b).collect();
    let reports = pairs
        .iter()
        .map(|(a, b)| a.len().min(b.len()))
        .min()
        .unwrap_or(0);
    let mut compared = Vec::new();
    for k in 0..reports {
        let (first, _) = pairs[0];
        let name = describe(&first[k]);
        for (figure, _) in figures(&first[k]) {
            let value = |report: &Report| {
                figures(report)
                    .into_iter()
                    .find(|(f, _)| *f == figure)
                    .map(|(_, v)| v)
            };
            let (mut xs, mut ys) = (Vec::new(), Vec::new());
            for (a, b) in &pairs {
                if let (Some(x), Some(y)) = (value(&a[k]), value(&b[k])) {
                    xs.push(x);
                    ys.push(y);
                }
            }
            let change_pct: Vec<f64> = xs
                .iter()
                .zip(&ys)
                .map(|(x, y)| {
                    if *x == 0.0 {
                        0.0
                    } else {
                        (y / x - 1.0) * 100.0
                    }
                })
                .collect();
            compared.push(Compared {
                report: name.clone(),
                figure,
                median_change_pct: median(&change_pct),
                a: xs,
                b: ys,
                change_pct,
            });
        }
    }
    compared
}

fn describe(report: &Report) -> String {
    let nodes = report.extra.get("nodes").and_then(|n| n.as_u64());
    let through = report
        .extra
        .get("published_through")
        .and_then(|t| t.as_str())
        .map(|t| format!(" via {t}"))
        .unwrap_or_default();
    match nodes {
        Some(nodes) => format!(
            "{} {} nodes {nodes}{through}",
            report.scenario, report.backend
        ),
        None => format!(
            "{} {} endpoints {}",
            report.scenario, report.backend, report.endpoints
        ),
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::PerDelivery;

    fn report(rate: f64, webhookd_us: f64, database_us: f64, bench_us: f64) -> Report {
        let mut report = Report {
            scenario: "throughput".into(),
            backend: "postgres".into(),
            endpoints: 10,
            deliveries_per_s: rate,
            cpu: Some(PerDelivery {
                webhookd_us,
                database_us,
                bench_us,
                machine_busy: 0.99,
            }),
            ..Report::default()
        };
        report.latency_ms.p99 = 5.0;
        report
    }

    #[test]
    fn pairs_are_compared_as_ratios_over_the_bench() {
        // The second pair ran on a machine 10 % slower: every process's
        // µs rose, B's ratio still 5 % under A's.
        let a = vec![
            vec![report(20_000.0, 40.0, 30.0, 20.0)],
            vec![report(18_000.0, 44.0, 33.0, 22.0)],
            vec![report(20_000.0, 40.0, 30.0, 20.0)],
        ];
        let b = vec![
            vec![report(20_000.0, 38.0, 28.5, 20.0)],
            vec![report(18_000.0, 41.8, 31.35, 22.0)],
            vec![report(21_000.0, 38.0, 30.0, 20.0)],
        ];
        let compared = compare(&a, &b);
        let figure = |name: &str| compared.iter().find(|c| c.figure == name).unwrap();
        let wb = figure("w/b");
        assert_eq!(wb.report, "throughput postgres endpoints 10");
        assert_eq!(wb.a, vec![2.0, 2.0, 2.0]);
        for change in &wb.change_pct {
            assert!((change + 5.0).abs() < 1e-9, "{change}");
        }
        let db = figure("db/b");
        assert!((db.median_change_pct + 5.0).abs() < 1e-9);
        assert!(db.change_pct[2].abs() < 1e-9);
        let rate = figure("rate");
        assert!(rate.median_change_pct.abs() < 1e-9);
        assert!((rate.change_pct[2] - 5.0).abs() < 1e-9);
    }

    #[test]
    fn a_figure_missing_from_a_run_is_left_out_of_its_pair() {
        let mut without_cpu = report(20_000.0, 0.0, 0.0, 0.0);
        without_cpu.cpu = None;
        let a = vec![vec![report(20_000.0, 40.0, 0.0, 20.0)], vec![without_cpu]];
        let b = vec![
            vec![report(20_000.0, 42.0, 0.0, 20.0)],
            vec![report(20_000.0, 40.0, 0.0, 20.0)],
        ];
        let compared = compare(&a, &b);
        assert!(compared.iter().all(|c| c.figure != "db/b"), "no database");
        let wb = compared.iter().find(|c| c.figure == "w/b").unwrap();
        assert_eq!(wb.a.len(), 1);
        assert!((wb.median_change_pct - 5.0).abs() < 1e-9);
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
