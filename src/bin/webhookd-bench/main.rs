//! `webhookd-bench`: starts webhookd (the release binary next to this one)
//! on a fresh database, a signature-checking receiver on loopback, drives
//! load through the public API and reports what arrived and when.
//!
//! `cargo run --release --bin webhookd-bench -- <scenario> [--backend sqlite|postgres] [--json]`
mod ceiling;
mod cluster;
mod cpu;
mod exposition;
mod faults;
mod instructions;
mod profile;
mod receiver;
mod scenarios;
mod server;
mod versus;

use clap::Parser;
use server::Backend;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    Throughput,
    Latency,
    Fanout,
    Flaky,
    SlowEndpoint,
    IdleEndpoints,
    Api,
    /// The console's pages with `--configs` (default 10 000) endpoints in
    /// the organisation: one request at a time, so each time is the
    /// server's (and the loopback's).
    Console,
    /// Several nodes on one PostgreSQL (`--nodes`): throughput with 1…N
    /// nodes, latency through non-owner nodes, and a node killed under load.
    Cluster,
    /// The fault harness (PostgreSQL): `--fault NAME` (or all of them)
    /// `--runs N` times each, or with `--minutes M` a soak of random faults;
    /// prints the checker's table and fails when a promise broke.
    Faults,
    /// What the machine does without webhookd: the bench's load generator
    /// sending signed requests straight to its own receiver (`--events`,
    /// default 100 000, `--publishers` at a time): the most any scenario
    /// could deliver here, and what the bench itself costs per request.
    Ceiling,
    /// Every single-node scenario, one after the other.
    All,
}

#[derive(Debug, Clone, Parser)]
#[command(name = "webhookd-bench", about = "Benchmark harness for webhookd")]
pub struct Options {
    #[arg(value_enum)]
    pub scenario: Scenario,
    #[arg(long, value_enum, default_value = "sqlite")]
    pub backend: Backend,
    /// One JSON object per scenario instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Small sizes and seconds, for CI: checks the harness works, not speed.
    #[arg(long)]
    pub quick: bool,
    /// Endpoints for `throughput` (default 1).
    #[arg(long)]
    pub endpoints: Option<u32>,
    /// Events to publish (`throughput`, `flaky`).
    #[arg(long)]
    pub events: Option<u64>,
    /// Concurrent publishers.
    #[arg(long, default_value_t = 64)]
    pub publishers: usize,
    /// Events per second for `latency` and `slow-endpoint`.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seconds of load for `latency` and `slow-endpoint`.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Write each delivery's send time and latency (ms, CSV) to
    /// `<dir>/<backend>-<scenario>.csv`: a tail made of stalls shows as
    /// clusters in time.
    #[arg(long)]
    pub trace_dir: Option<std::path::PathBuf>,
    /// Where the time goes and where deliveries wait (`throughput`, `flaky`,
    /// `latency`, `idle-endpoints`' publishing): webhookd times each
    /// delivery at every hand-off, and `perf` samples its CPU over the
    /// measured window; both are printed
    /// under the scenario's row (and in `--json`'s `extra.profile`), the
    /// perf report written to `--profile-dir`.
    #[arg(long)]
    pub profile: bool,
    /// Count the instructions webhookd executes per delivery over the
    /// measured window (`throughput`, `flaky`, `latency`): it runs under
    /// `valgrind --tool=callgrind`, ~50× slower, so the figure is for A/B
    /// pairs of one scenario and `--events`, not for the rate; unlike the
    /// CPU µs it does not move with the machine. Dumps go to
    /// `--profile-dir`.
    #[arg(long)]
    pub instructions: bool,
    /// Where `--profile` writes its perf data and reports.
    #[arg(long, default_value = "target/bench-profile")]
    pub profile_dir: std::path::PathBuf,
    /// Start webhookd with `--no-metrics` (to measure what metrics cost).
    #[arg(long)]
    pub no_metrics: bool,
    /// Start webhookd with `--retention` (a long `latency` run at a steady
    /// rate then shows whether the delivery tables stop growing).
    #[arg(long)]
    pub retention: Option<String>,
    /// More flags for `webhookd serve` (repeatable; `--serve-flag=--x=y`):
    /// what a setting does to a scenario, without a build between.
    #[arg(long = "serve-flag", allow_hyphen_values = true)]
    pub serve_flags: Vec<String>,
    /// Nodes for `cluster`.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Configured endpoints for `idle-endpoints` and `api`.
    #[arg(long)]
    pub configs: Option<u32>,
    /// Where to create the benchmark's database. By default without TLS:
    /// the database is on the same machine, and TLS on loopback cost ~5 %
    /// of the CPU in the profile (PostgreSQL's libssl and webhookd's rustls).
    #[arg(
        long,
        env = "WEBHOOKD_TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
    )]
    pub postgres_url: String,
    /// `faults`: the fault to inject (default: each in turn).
    #[arg(long, value_enum)]
    pub fault: Option<faults::Fault>,
    /// `faults`: runs of each fault.
    #[arg(long, default_value_t = 1)]
    pub runs: u32,
    /// `faults`: a soak of this many minutes: random faults, each on a
    /// fresh cluster with 20 s of load.
    #[arg(long)]
    pub minutes: Option<f64>,
    /// Compare with another build: the scenario runs `--rounds` times with
    /// each `webhookd` — A, the one next to the bench, and B, this one —
    /// in pairs whose order alternates, and a summary gives each pair's
    /// change in CPU per delivery over the bench's own (`w/b`, `db/b`: the
    /// bench's work is the same in both runs, so the ratio cancels most of
    /// the machine's drift), in µs, in rate and in p99.
    #[arg(long)]
    pub versus: Option<std::path::PathBuf>,
    /// Pairs for `--versus`.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    if options.scenario == Scenario::Faults {
        return run_faults(&options).await;
    }
    if let Some(other) = &options.versus {
        return versus::run(&options, other).await;
    }
    let mut failed = false;
    run_scenario(&options, &mut |report| {
        failed |= show(&report, options.json)?;
        Ok(())
    })
    .await?;
    verdict(failed)
}

/// One run of the scenario, each report handed to `each` as it is made
/// (`cluster` and `all` make several).
async fn run_scenario(
    options: &Options,
    each: &mut dyn FnMut(scenarios::Report) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    if options.scenario == Scenario::Ceiling {
        return each(ceiling::run(options).await?);
    }
    if options.scenario == Scenario::Cluster {
        if options.backend != Backend::Postgres {
            anyhow::bail!("`cluster` needs --backend postgres");
        }
        for report in cluster::run(options).await? {
            each(report)?;
        }
        return Ok(());
    }
    let scenarios = match options.scenario {
        Scenario::All => vec![
            Scenario::Throughput,
            Scenario::Latency,
            Scenario::Fanout,
            Scenario::Flaky,
            Scenario::SlowEndpoint,
            Scenario::IdleEndpoints,
            Scenario::Api,
            Scenario::Console,
        ],
        Scenario::Cluster | Scenario::Faults | Scenario::Ceiling => unreachable!("run above"),
        one => vec![one],
    };
    for scenario in scenarios {
        let runs: Vec<Option<u32>> = match (scenario, options.endpoints, options.scenario) {
            // `all` measures both throughput targets: 1 and 10 endpoints.
            (Scenario::Throughput, None, Scenario::All) => vec![Some(1), Some(10)],
            _ => vec![options.endpoints],
        };
        for endpoints in runs {
            let mut run = options.clone();
            run.endpoints = endpoints;
            each(scenarios::run(scenario, &run).await?)?;
        }
    }
    Ok(())
}

/// Prints a report as a row or a JSON line; `true` when it lost deliveries
/// or saw bad signatures.
fn show(report: &scenarios::Report, json: bool) -> anyhow::Result<bool> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        report.print_row();
        if !report.extra["profile"].is_null() {
            profile::print(&report.extra["profile"]);
        }
    }
    Ok(broke_a_promise(report))
}

/// Lost or badly signed deliveries, or (`cluster-kill`) a delivery sent
/// again although answered long before the kill (`stale_duplicates`).
fn broke_a_promise(report: &scenarios::Report) -> bool {
    report.lost > 0
        || report.bad_signatures > 0
        || report.extra["stale_duplicates"].as_u64().unwrap_or(0) > 0
}

fn verdict(failed: bool) -> anyhow::Result<()> {
    if failed {
        anyhow::bail!(
            "deliveries were lost, badly signed, or sent again long after they were answered"
        );
    }
    Ok(())
}

/// `faults`: each run's checker line, then the table; fails when any run
/// lost, overlapped, reordered, exceeded a rate or could not run.
async fn run_faults(options: &Options) -> anyhow::Result<()> {
    let binary = server::webhookd_binary()?;
    let mut settings = faults::Settings::short(binary, options.postgres_url.clone());
    if !options.quick {
        settings.rate = options.rate.unwrap_or(100.0);
        settings.seconds = options.duration.unwrap_or(30.0);
        settings.plain_endpoints = options.endpoints.unwrap_or(14);
        settings.rate_limit = (settings.rate * 0.8).max(1.0) as u32;
    }
    let every = <faults::Fault as clap::ValueEnum>::value_variants();
    let (plan, soak_until): (Vec<faults::Fault>, _) = match (options.minutes, options.fault) {
        // A soak: random faults, each on a fresh cluster with 20 s of load,
        // until the minutes are up (the run under way finishes).
        (Some(minutes), _) => {
            settings.seconds = 20.0;
            let until =
                std::time::Instant::now() + std::time::Duration::from_secs_f64(minutes * 60.0);
            let random = (0..100_000).map(|_| every[rand::random::<usize>() % every.len()]);
            (random.collect(), Some(until))
        }
        (None, Some(fault)) => (vec![fault; options.runs as usize], None),
        (None, None) => (
            every
                .iter()
                .flat_map(|f| std::iter::repeat_n(*f, options.runs as usize))
                .collect(),
            None,
        ),
    };
    let mut all = Vec::new();
    let mut failed = false;
    for fault in plan {
        if soak_until.is_some_and(|until| std::time::Instant::now() >= until) {
            break;
        }
        match faults::run(fault, &settings).await {
            Ok(findings) => {
                failed |= !findings.held();
                if options.json {
                    println!("{}", serde_json::to_string(&findings)?);
                } else {
                    print_findings(&findings);
                }
                all.push(findings);
            }
            Err(error) => {
                failed = true;
                println!("{:<22} could not run: {error:#}", fault.name());
            }
        }
    }
    if !options.json {
        print_table(&all);
    }
    verdict(failed)
}

fn print_findings(f: &faults::checker::Findings) {
    println!(
        "{:<22} accepted {:>5}/{:<5} lost {} dup {} (stale {}, oldest {}) overlaps {} fifo-inv {} \
         rate-excess {} bad-sig {} gap {} ms, healthy publish p99 {:.0} ms max {:.0} ms errors {}, \
         skew {} s, takeover {}; {}",
        f.scenario,
        f.accepted,
        f.published,
        f.lost,
        f.duplicates,
        f.stale_duplicates,
        f.oldest_duplicate_ms
            .map_or("-".to_owned(), |ms| format!("{ms} ms before the fault")),
        f.overlaps,
        f.fifo_inversions,
        f.rate_excess,
        f.bad_signatures,
        f.longest_gap_ms,
        f.healthy_publish_p99_ms,
        f.healthy_publish_max_ms,
        f.healthy_publish_errors,
        f.max_signature_skew_s,
        f.takeover_ms
            .map_or("-".to_owned(), |ms| format!("{ms} ms")),
        f.notes.join("; ")
    );
    if !f.lost_examples.is_empty() {
        println!("{:<22} lost, e.g.: {}", "", f.lost_examples.join(", "));
    }
}

/// One line per fault: runs, and the worst of each measure over them.
fn print_table(all: &[faults::checker::Findings]) {
    let mut names: Vec<&str> = all.iter().map(|f| f.scenario.as_str()).collect();
    names.dedup();
    names.sort_unstable();
    names.dedup();
    println!(
        "\n| fault | runs | lost | overlaps | FIFO inversions | rate excess | stale duplicates | duplicates (max) | oldest duplicate before the fault (max) | longest gap (max) | healthy publish p99 (max) | healthy publish errors |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for name in names {
        let runs: Vec<_> = all.iter().filter(|f| f.scenario == name).collect();
        let sum =
            |f: fn(&faults::checker::Findings) -> usize| runs.iter().map(|r| f(r)).sum::<usize>();
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} ms | {:.0} ms | {} |",
            runs.len(),
            sum(|f| f.lost),
            sum(|f| f.overlaps),
            sum(|f| f.fifo_inversions),
            sum(|f| f.rate_excess),
            sum(|f| f.stale_duplicates),
            runs.iter().map(|r| r.duplicates).max().unwrap_or_default(),
            runs.iter()
                .filter_map(|r| r.oldest_duplicate_ms)
                .max()
                .map_or("-".to_owned(), |ms| format!("{ms} ms")),
            runs.iter()
                .map(|r| r.longest_gap_ms)
                .max()
                .unwrap_or_default(),
            runs.iter()
                .map(|r| r.healthy_publish_p99_ms)
                .fold(0.0, f64::max),
            sum(|f| f.healthy_publish_errors),
        );
    }
}
