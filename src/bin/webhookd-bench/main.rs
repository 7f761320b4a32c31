//! `webhookd-bench`: starts webhookd (the release binary next to this one)
//! on a fresh database, a signature-checking receiver on loopback, drives
//! load through the public API and reports what arrived and when.
//!
//! `cargo run --release --bin webhookd-bench -- <scenario> [--backend sqlite|postgres] [--json]`
mod cluster;
mod receiver;
mod scenarios;
mod server;

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
    /// Start webhookd with `--no-metrics` (to measure what metrics cost).
    #[arg(long)]
    pub no_metrics: bool,
    /// Start webhookd with `--retention` (a long `latency` run at a steady
    /// rate then shows whether the delivery tables stop growing).
    #[arg(long)]
    pub retention: Option<String>,
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
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    if options.scenario == Scenario::Cluster {
        if options.backend != Backend::Postgres {
            anyhow::bail!("`cluster` needs --backend postgres");
        }
        let mut failed = false;
        for report in cluster::run(&options).await? {
            failed |= show(&report, options.json)?;
        }
        return verdict(failed);
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
        Scenario::Cluster => unreachable!("run above"),
        one => vec![one],
    };
    let mut failed = false;
    for scenario in scenarios {
        let runs: Vec<Option<u32>> = match (scenario, options.endpoints, options.scenario) {
            // `all` measures both throughput targets: 1 and 10 endpoints.
            (Scenario::Throughput, None, Scenario::All) => vec![Some(1), Some(10)],
            _ => vec![options.endpoints],
        };
        for endpoints in runs {
            let mut run = options.clone();
            run.endpoints = endpoints;
            let report = scenarios::run(scenario, &run).await?;
            failed |= show(&report, options.json)?;
        }
    }
    verdict(failed)
}

/// Prints a report as a row or a JSON line; `true` when it lost deliveries
/// or saw bad signatures.
fn show(report: &scenarios::Report, json: bool) -> anyhow::Result<bool> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        report.print_row();
    }
    Ok(report.lost > 0 || report.bad_signatures > 0)
}

fn verdict(failed: bool) -> anyhow::Result<()> {
    if failed {
        anyhow::bail!("deliveries were lost or badly signed");
    }
    Ok(())
}
