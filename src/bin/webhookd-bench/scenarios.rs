//! The scenarios: each sets endpoints up through the public API, publishes
//! through `POST /api/v1/events`, waits for the receiver, and reports.
use crate::receiver::{Behaviour, Receiver, Tally};
use crate::server::{server_log, Server};
use crate::{Options, Scenario};
use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const EVENT_TYPE: &str = "bench.event";
/// What the idle endpoints of `idle-endpoints` subscribe to: nothing publishes it.
pub const IDLE_EVENT_TYPE: &str = "bench.idle";

#[derive(Debug, Default, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub scenario: String,
    pub backend: String,
    pub endpoints: u32,
    pub events: u64,
    pub deliveries: u64,
    pub duration_s: f64,
    pub deliveries_per_s: f64,
    /// Publish request sent → signed request arrived at the receiver.
    pub latency_ms: Latency,
    pub errors: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub bad_signatures: u64,
    pub server_peak_rss_mb: f64,
    /// CPU per delivery over the publishing and delivering window
    /// (scenarios that deliver).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<crate::cpu::PerDelivery>,
    /// Scenario-specific figures (`api` rates, idle RSS…).
    #[serde(skip_serializing_if = "Value::is_null")]
    pub extra: Value,
}

impl Report {
    pub fn print_row(&self) {
        // The profile gets lines of its own (`profile::print`).
        let mut extra = self.extra.clone();
        if let Value::Object(map) = &mut extra {
            map.remove("profile");
            if map.is_empty() {
                extra = Value::Null;
            }
        }
        println!(
            "{:<15} {:<8} endpoints {:>6}  events {:>7}  deliveries {:>7} in {:>7.2} s = {:>8.0}/s  \
             latency ms p50 {:>7.1} p90 {:>7.1} p99 {:>7.1} max {:>7.1}  errors {} lost {} dup {} badsig {}  rss {:.0} MB{} {}",
            self.scenario, self.backend, self.endpoints, self.events, self.deliveries, self.duration_s,
            self.deliveries_per_s, self.latency_ms.p50, self.latency_ms.p90, self.latency_ms.p99,
            self.latency_ms.max, self.errors, self.lost, self.duplicates, self.bad_signatures,
            self.server_peak_rss_mb,
            self.cpu.map(|cpu| format!("  {cpu}")).unwrap_or_default(),
            if extra.is_null() { String::new() } else { extra.to_string() }
        );
    }
}

struct Bench {
    server: Server,
    receiver: Receiver,
    client: reqwest::Client,
    /// Arrivals before the measured window (see [`Bench::warm_up`]).
    warmed: u64,
}

/// How long `latency`, `slow-endpoint` and `idle-endpoints` publish at
/// their rate before the measured window opens (see [`Bench::warm_up`]).
const WARM_UP: Duration = Duration::from_secs(1);

impl Bench {
    /// Opens the measured window: the CPU counters now, and under
    /// `--instructions` callgrind's zeroed.
    fn open_window(
        &self,
        options: &Options,
        counted: &mut Option<crate::instructions::Counter>,
    ) -> anyhow::Result<crate::cpu::Sample> {
        if options.instructions {
            *counted = Some(crate::instructions::Counter::zero(
                &self.server,
                &options.profile_dir,
            )?);
        }
        Ok(crate::cpu::Sample::now(self.server.pid()))
    }

    async fn start(options: &Options) -> anyhow::Result<Self> {
        let env: &[(&str, &str)] = if options.profile {
            &[(webhookd::telemetry::HANDOFF_TIMINGS_ENV, "1")]
        } else {
            &[]
        };
        let wrapper = if options.instructions {
            crate::instructions::wrapper(&options.profile_dir)?
        } else {
            Vec::new()
        };
        let server = Server::start(
            options.backend,
            &options.postgres_url,
            &server_flags(options),
            env,
            &wrapper,
        )
        .await?;
        server.add_event_type(EVENT_TYPE)?;
        server.add_event_type(IDLE_EVENT_TYPE)?;
        Ok(Self {
            server,
            receiver: Receiver::start()?,
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .build()?,
            warmed: 0,
        })
    }

    /// Publishes at `rate` for [`WARM_UP`] (a fifth of it with `quick`)
    /// and waits until those deliveries arrived at the endpoints `to`;
    /// the window opens after it. A new endpoint's first deliveries wait
    /// for what a config change leaves cold — the endpoint actor's first
    /// read of its config and pending rows, the receiver's first
    /// connection, the publish's emptied route cache — 6–27 ms on these VMs
    /// (the sixteenth session's page): once per endpoint, not the steady
    /// state a rate measures, yet 1–3 % of a short window — in the
    /// 5-second one of `idle-endpoints`, most of its top 1 %. What it took
    /// is reported (`extra.warm_up`: the first delivery's latency, the p99
    /// and max of the warm-up's), and a warm-up delivery that never
    /// arrives counts as lost.
    async fn warm_up(&mut self, rate: f64, quick: bool, to: std::ops::Range<u32>) -> Value {
        let seconds = WARM_UP.as_secs_f64() / if quick { 5.0 } else { 1.0 };
        let (sent, errors) = self.publish_at_rate(rate, seconds).await;
        let expected = sent.len() as u64 * u64::from(to.end - to.start);
        self.wait(expected, Duration::from_secs(60), &sent, errors)
            .await;
        let tally = self.receiver.tally();
        let timed = deliveries_to(&tally, &sent, to);
        self.warmed = tally.arrivals.lock().unwrap().len() as u64;
        let first_ms = timed.iter().min_by_key(|t| t.sent).map(Timed::latency_ms);
        let delivered = timed.len() as u64;
        let latency = percentiles(timed.iter().map(Timed::latency_ms).collect());
        json!({
            "events": sent.len(),
            "errors": errors,
            "lost": expected.saturating_sub(delivered),
            "first_ms": first_ms,
            "p99_ms": latency.p99,
            "max_ms": latency.max,
        })
    }

    /// Creates `count` endpoints (ids `first..first+count`) through the API.
    async fn endpoints(
        &self,
        first: u32,
        count: u32,
        behaviour: Behaviour,
        settings: Value,
    ) -> anyhow::Result<Vec<f64>> {
        let latencies = Arc::new(Mutex::new(Vec::new()));
        let results: Vec<anyhow::Result<()>> = stream::iter(first..first + count)
            .map(|n| {
                let latencies = latencies.clone();
                let mut body = json!({"url": self.receiver.url(n), "events": [EVENT_TYPE]});
                for (k, v) in settings.as_object().into_iter().flatten() {
                    body[k] = v.clone();
                }
                async move {
                    let started = Instant::now();
                    let created: Value = self
                        .client
                        .post(format!("{}/api/v1/webhooks", self.server.base))
                        .bearer_auth(&self.server.key)
                        .json(&body)
                        .send()
                        .await?
                        .error_for_status()?
                        .json()
                        .await?;
                    latencies
                        .lock()
                        .unwrap()
                        .push(started.elapsed().as_secs_f64() * 1000.0);
                    let secret = created["data"]["secret"].as_str().unwrap_or_default();
                    self.receiver.register(n, secret, behaviour);
                    Ok(())
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
        let latencies = latencies.lock().unwrap().clone();
        Ok(latencies)
    }

    /// `events` publishes by `publishers` concurrent clients, as fast as
    /// they are accepted. Returns event id → send time, and the failures.
    async fn publish_burst(
        &self,
        events: u64,
        publishers: usize,
    ) -> (HashMap<String, Instant>, u64) {
        let bases = [self.server.base.clone()];
        publish(
            &self.client,
            &bases,
            &self.server.key,
            events,
            publishers,
            None,
        )
        .await
    }

    /// Publishes at a fixed rate for a while.
    async fn publish_at_rate(&self, rate: f64, seconds: f64) -> (HashMap<String, Instant>, u64) {
        let total = (rate * seconds).round() as u64;
        let pace = Duration::from_secs_f64(1.0 / rate);
        let bases = [self.server.base.clone()];
        publish(
            &self.client,
            &bases,
            &self.server.key,
            total,
            usize::MAX,
            Some(pace),
        )
        .await
    }

    /// Waits until `expected` deliveries of `sent` arrived (or `patience`
    /// passed). When publishes failed (`errors`: a 503 when a commit
    /// outlived its deadline, as under `--instructions`' valgrind) their
    /// events may still have been stored and delivered: only arrivals of
    /// `sent` count then, or the wait would end before every acknowledged
    /// event arrived and report the rest lost. Without errors every arrival
    /// is one of `sent`, and counting them all is cheaper in the window.
    async fn wait(
        &self,
        expected: u64,
        patience: Duration,
        sent: &HashMap<String, Instant>,
        errors: u64,
    ) -> Duration {
        let started = Instant::now();
        let tally = self.receiver.tally();
        let mut last_line = Instant::now();
        loop {
            let arrivals = if errors == 0 {
                (tally.arrivals.lock().unwrap().len() as u64).saturating_sub(self.warmed)
            } else {
                let arrivals = tally.arrivals.lock().unwrap();
                arrivals
                    .keys()
                    .filter(|(_, event)| sent.contains_key(event))
                    .count() as u64
            };
            let arrived = arrivals + tally.refused_every_attempt.load(Ordering::Relaxed);
            if arrived >= expected || started.elapsed() > patience {
                return started.elapsed();
            }
            if last_line.elapsed() > Duration::from_secs(1) {
                if self.server.has_exited() {
                    eprintln!("  webhookd has exited: see {}", server_log().display());
                    return started.elapsed();
                }
                eprintln!("  … {arrived}/{expected} delivered");
                last_line = Instant::now();
            }
            let pause = if errors == 0 { 2 } else { 50 };
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }
}

/// Publishes through `bases` in turn; returns the event id → send time and
/// the failures.
pub async fn publish(
    client: &reqwest::Client,
    bases: &[String],
    key: &str,
    events: u64,
    concurrency: usize,
    pace: Option<Duration>,
) -> (HashMap<String, Instant>, u64) {
    let mut ticker = pace.map(tokio::time::interval);
    let one = |i: u64| {
        let url = format!("{}/api/v1/events", bases[i as usize % bases.len()]);
        async move {
            let at = Instant::now();
            let response = client
                .post(url)
                .bearer_auth(key)
                .json(&json!({"type": EVENT_TYPE, "data": {"i": i}}))
                .send()
                .await
                .ok();
            let id = match response {
                Some(response) if response.status() == 202 => response
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|body| body["data"]["id"].as_str().map(str::to_owned)),
                _ => None,
            };
            (at, id)
        }
    };
    let mut pending = futures_util::stream::FuturesUnordered::new();
    let mut results: Vec<(Instant, Option<String>)> = Vec::new();
    for i in 0..events {
        if let Some(ticker) = ticker.as_mut() {
            ticker.tick().await;
        }
        while pending.len() >= concurrency {
            if let Some(done) = pending.next().await {
                results.push(done);
            }
        }
        pending.push(one(i));
        while let Some(Some(done)) = futures_util::FutureExt::now_or_never(pending.next()) {
            results.push(done);
        }
    }
    while let Some(done) = pending.next().await {
        results.push(done);
    }
    split(results)
}

fn split(results: Vec<(Instant, Option<String>)>) -> (HashMap<String, Instant>, u64) {
    let mut sent = HashMap::with_capacity(results.len());
    let mut errors = 0;
    for (at, id) in results {
        match id {
            Some(id) => {
                sent.insert(id, at);
            }
            None => errors += 1,
        }
    }
    (sent, errors)
}

pub fn percentiles(mut samples: Vec<f64>) -> Latency {
    if samples.is_empty() {
        return Latency::default();
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Latency {
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        max: *samples.last().unwrap(),
    }
}

/// One line per delivery, in send order: ms since the first send, latency
/// in ms.
fn write_trace(dir: &std::path::Path, report: &Report, timed: &[Timed]) -> anyhow::Result<()> {
    let Some(first) = timed.iter().map(|t| t.sent).min() else {
        return Ok(());
    };
    let mut lines: Vec<(f64, f64)> = timed
        .iter()
        .map(|t| ((t.sent - first).as_secs_f64() * 1000.0, t.latency_ms()))
        .collect();
    lines.sort_by(|a, b| a.0.total_cmp(&b.0));
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{}-{}.csv", report.backend, report.scenario));
    // The first send in wall-clock time, to line the trace up with others
    // (say, `perf record -k CLOCK_REALTIME`).
    let first_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .saturating_sub(first.elapsed());
    let mut csv = format!(
        "# first send at {:.6} s since the Unix epoch\nsent_ms,latency_ms\n",
        first_unix.as_secs_f64()
    );
    for (sent_ms, latency_ms) in lines {
        csv.push_str(&format!("{sent_ms:.3},{latency_ms:.3}\n"));
    }
    std::fs::write(path, csv)?;
    Ok(())
}

/// One delivery: its event's publish request sent, the receiver's arrival.
struct Timed {
    sent: Instant,
    arrived: Instant,
}

impl Timed {
    fn latency_ms(&self) -> f64 {
        (self.arrived - self.sent).as_secs_f64() * 1000.0
    }
}

/// The deliveries to `endpoints` of the events in `sent`.
fn deliveries_to(
    tally: &Tally,
    sent: &HashMap<String, Instant>,
    endpoints: std::ops::Range<u32>,
) -> Vec<Timed> {
    tally
        .arrivals
        .lock()
        .unwrap()
        .iter()
        .filter(|((endpoint, _), _)| endpoints.contains(endpoint))
        .filter_map(|((_, id), arrived)| {
            sent.get(id).map(|at| Timed {
                sent: *at,
                arrived: *arrived,
            })
        })
        .collect()
}

/// The `webhookd serve` flags the options ask for.
fn server_flags(options: &Options) -> Vec<String> {
    let mut flags = Vec::new();
    if options.no_metrics {
        flags.push("--no-metrics".to_owned());
    }
    if let Some(retention) = &options.retention {
        flags.extend(["--retention".to_owned(), retention.clone()]);
    }
    flags.extend(options.serve_flags.iter().cloned());
    flags
}

pub async fn run(scenario: Scenario, options: &Options) -> anyhow::Result<Report> {
    let mut bench = Bench::start(options).await?;
    let quick = options.quick;
    // What the warm-up before a latency window took (`Bench::warm_up`).
    let mut warm_up: Option<Value> = None;
    let mut report = Report {
        scenario: format!("{scenario:?}").to_lowercase(),
        backend: options.backend.name().to_owned(),
        ..Report::default()
    };
    let tally = bench.receiver.tally();
    // The CPU window: from the first publish to the last delivery, for
    // the scenarios that deliver (set where their publishing starts).
    let mut cpu_from: Option<crate::cpu::Sample> = None;
    // `--instructions`: zeroed when the CPU window opens.
    let mut counted: Option<crate::instructions::Counter> = None;
    // `--profile`: opened with the CPU window, where it is.
    let mut profiler: Option<crate::profile::Profiler> = None;
    let label = format!(
        "{}-{}-{}",
        options.backend.name(),
        report.scenario,
        options
            .endpoints
            .map_or("default".to_owned(), |n| n.to_string())
    );
    let (endpoints, sent, errors, elapsed) = match scenario {
        Scenario::Throughput | Scenario::Flaky => {
            let endpoints =
                options
                    .endpoints
                    .unwrap_or(if scenario == Scenario::Flaky { 10 } else { 1 });
            let events = options.events.unwrap_or(match (quick, scenario) {
                (true, _) => 200,
                (false, Scenario::Flaky) => 2_000,
                _ => 20_000,
            });
            let (behaviour, settings) = match scenario {
                Scenario::Flaky => (
                    Behaviour::Flaky {
                        share: 0.3,
                        attempts: 11,
                    },
                    json!({"retry_count": 10}),
                ),
                _ => (Behaviour::Ok, json!({})),
            };
            bench.endpoints(0, endpoints, behaviour, settings).await?;
            if options.profile {
                profiler = Some(
                    crate::profile::Profiler::start(&bench.server, &options.profile_dir, &label)
                        .await?,
                );
            }
            cpu_from = Some(bench.open_window(options, &mut counted)?);
            let started = Instant::now();
            let (sent, errors) = bench.publish_burst(events, options.publishers).await;
            bench
                .wait(
                    sent.len() as u64 * u64::from(endpoints),
                    Duration::from_secs(300),
                    &sent,
                    errors,
                )
                .await;
            (endpoints, sent, errors, started.elapsed())
        }
        Scenario::Latency | Scenario::SlowEndpoint => {
            // The same healthy load as `latency`, plus (for slow-endpoint) one
            // endpoint that never answers: the healthy tails must match.
            let healthy = 1;
            bench
                .endpoints(0, healthy, Behaviour::Ok, json!({}))
                .await?;
            if scenario == Scenario::SlowEndpoint {
                bench
                    .endpoints(
                        healthy,
                        1,
                        Behaviour::Hang,
                        json!({"timeout_seconds": 60, "retry_count": 0}),
                    )
                    .await?;
            }
            let rate = options.rate.unwrap_or(if quick { 100.0 } else { 1_000.0 });
            let seconds = options.duration.unwrap_or(if quick { 2.0 } else { 10.0 });
            warm_up = Some(bench.warm_up(rate, quick, 0..healthy).await);
            if options.profile {
                profiler = Some(
                    crate::profile::Profiler::start(&bench.server, &options.profile_dir, &label)
                        .await?,
                );
            }
            cpu_from = Some(bench.open_window(options, &mut counted)?);
            let started = Instant::now();
            let (sent, errors) = bench.publish_at_rate(rate, seconds).await;
            bench
                .wait(
                    sent.len() as u64 * u64::from(healthy),
                    Duration::from_secs(120),
                    &sent,
                    errors,
                )
                .await;
            (healthy, sent, errors, started.elapsed())
        }
        Scenario::Fanout => {
            let endpoints = options.endpoints.unwrap_or(if quick { 50 } else { 1_000 });
            bench
                .endpoints(0, endpoints, Behaviour::Ok, json!({}))
                .await?;
            cpu_from = Some(bench.open_window(options, &mut counted)?);
            let started = Instant::now();
            let (sent, errors) = bench.publish_burst(1, 1).await;
            bench
                .wait(
                    u64::from(endpoints),
                    Duration::from_secs(120),
                    &sent,
                    errors,
                )
                .await;
            (endpoints, sent, errors, started.elapsed())
        }
        Scenario::IdleEndpoints => {
            // Many configured endpoints that get nothing (subscribed to
            // another event type), one live one beside them: memory should
            // not grow with the idle ones, nor publishing and listing slow.
            let configs = options.configs.unwrap_or(if quick { 500 } else { 100_000 });
            let before = bench.server.rss_mb();
            let started = Instant::now();
            bench
                .endpoints(
                    0,
                    configs,
                    Behaviour::Ok,
                    json!({"events": [IDLE_EVENT_TYPE]}),
                )
                .await?;
            let created_in = started.elapsed();
            let rss_idle = bench.server.rss_mb();
            // Measured in the steady state (see `settle_database`); the
            // first list after the creates is timed on its own: it counts
            // the organisation's endpoints, as every first list after a
            // change does.
            bench.server.settle_database().await?;
            let list_path = "/api/v1/webhooks?per_page=25&page=2";
            let first_list = Instant::now();
            bench
                .client
                .get(format!("{}{list_path}", bench.server.base))
                .bearer_auth(&bench.server.key)
                .send()
                .await?
                .error_for_status()?;
            let first_list_ms = first_list.elapsed().as_secs_f64() * 1000.0;
            // What serving the list costs each process: the pages and their
            // total come from memory, so the database should be idle; if it
            // is not, its background work (not the list) shares the cores.
            let list_seconds = if quick { 1.0 } else { 3.0 };
            let list_from = crate::cpu::Sample::now(bench.server.pid());
            let (list_rate, list) = bench.hammer(list_path, list_seconds).await;
            let list_cpu = list_from.per_delivery(
                &crate::cpu::Sample::now(bench.server.pid()),
                (list_rate * list_seconds).round() as u64,
            );
            bench
                .endpoints(configs, 1, Behaviour::Ok, json!({}))
                .await?;
            let rate = options.rate.unwrap_or(if quick { 100.0 } else { 1_000.0 });
            let seconds = options.duration.unwrap_or(if quick { 2.0 } else { 5.0 });
            // The live endpoint is the last one created.
            warm_up = Some(bench.warm_up(rate, quick, configs..configs + 1).await);
            // Where a publish waits with this many configs beside it.
            if options.profile {
                profiler = Some(
                    crate::profile::Profiler::start(&bench.server, &options.profile_dir, &label)
                        .await?,
                );
            }
            cpu_from = Some(bench.open_window(options, &mut counted)?);
            let published = Instant::now();
            let (sent, errors) = bench.publish_at_rate(rate, seconds).await;
            bench
                .wait(sent.len() as u64, Duration::from_secs(120), &sent, errors)
                .await;
            let elapsed = published.elapsed();
            report.extra = json!({
                "configs": configs,
                "rss_before_mb": before,
                "rss_idle_mb": rss_idle,
                "rss_after_mb": bench.server.rss_mb(),
                "created_per_s": f64::from(configs) / created_in.as_secs_f64(),
                "first_list_ms": first_list_ms,
                "list": {"per_s": list_rate, "latency_ms": list, "cpu_us_per_request": list_cpu},
            });
            (1, sent, errors, elapsed)
        }
        Scenario::Api => {
            let configs = options.configs.unwrap_or(if quick { 500 } else { 100_000 });
            let started = Instant::now();
            let create = bench
                .endpoints(0, configs, Behaviour::Ok, json!({}))
                .await?;
            let create_rate = f64::from(configs) / started.elapsed().as_secs_f64();
            let seconds = if quick { 1.0 } else { 5.0 };
            let (get_rate, get) = bench.hammer("/api/v1/webhooks/1", seconds).await;
            let (list_rate, list) = bench
                .hammer("/api/v1/webhooks?per_page=25&page=2", seconds)
                .await;
            report.extra = json!({
                "configs": configs,
                "create": {"per_s": create_rate, "latency_ms": percentiles(create)},
                "get": {"per_s": get_rate, "latency_ms": get},
                "list": {"per_s": list_rate, "latency_ms": list},
            });
            (configs, HashMap::new(), 0, started.elapsed())
        }
        Scenario::Console => {
            let configs = options.configs.unwrap_or(if quick { 500 } else { 10_000 });
            let started = Instant::now();
            bench
                .endpoints(0, configs, Behaviour::Ok, json!({}))
                .await?;
            let cookie = bench.console_session().await?;
            let last_page = configs.div_ceil(25);
            let rounds = if quick { 20 } else { 200 };
            let mut pages = serde_json::Map::new();
            for (name, path) in [
                ("endpoints_first_page", "/console/endpoints".to_owned()),
                (
                    "endpoints_last_page",
                    format!("/console/endpoints?page={last_page}"),
                ),
                ("endpoint", "/console/endpoints/1".to_owned()),
                ("history", "/console/endpoints/1/history".to_owned()),
                ("event_types", "/console/event-types".to_owned()),
            ] {
                let latencies = bench.one_at_a_time(&path, &cookie, rounds).await?;
                pages.insert(name.into(), json!(percentiles(latencies)));
            }
            report.extra = json!({"configs": configs, "pages_ms": pages});
            (configs, HashMap::new(), 0, started.elapsed())
        }
        Scenario::All | Scenario::Cluster | Scenario::Faults | Scenario::Ceiling => {
            unreachable!("expanded or run by main")
        }
    };
    let cpu_to = crate::cpu::Sample::now(bench.server.pid());
    let instructions = counted
        .map(crate::instructions::Counter::read)
        .transpose()?;
    if let Some(profiler) = profiler {
        report.extra["profile"] = profiler.finish(&bench.server).await?;
    }
    let healthy = match scenario {
        Scenario::SlowEndpoint => 0..endpoints,
        _ => 0..u32::MAX,
    };
    let timed = deliveries_to(&tally, &sent, healthy);
    if let Some(dir) = &options.trace_dir {
        write_trace(dir, &report, &timed)?;
    }
    let delivered: Vec<f64> = timed.iter().map(Timed::latency_ms).collect();
    let expected = match scenario {
        Scenario::Api | Scenario::Console => 0,
        _ => sent.len() as u64 * u64::from(endpoints),
    };
    report.endpoints = endpoints;
    report.events = sent.len() as u64;
    report.deliveries = delivered.len() as u64;
    report.duration_s = elapsed.as_secs_f64();
    report.deliveries_per_s = report.deliveries as f64 / report.duration_s.max(1e-9);
    report.latency_ms = percentiles(delivered);
    report.errors = errors;
    let refused_every_attempt = tally.refused_every_attempt.load(Ordering::Relaxed);
    report.lost = expected.saturating_sub(report.deliveries + refused_every_attempt);
    if let Some(warm_up) = warm_up {
        report.lost += warm_up["lost"].as_u64().unwrap_or(0);
        report.extra["warm_up"] = warm_up;
    }
    if refused_every_attempt > 0 {
        report.extra["refused_every_attempt"] = json!(refused_every_attempt);
    }
    report.duplicates = tally.duplicates.load(Ordering::Relaxed);
    report.bad_signatures = tally.bad_signatures.load(Ordering::Relaxed);
    report.server_peak_rss_mb = bench.server.peak_rss_mb();
    report.cpu = cpu_from.map(|from| from.per_delivery(&cpu_to, report.deliveries));
    if let Some(instructions) = instructions {
        report.extra["instructions_per_delivery"] = json!(instructions / report.deliveries.max(1));
    }
    bench.server.stop().await;
    Ok(report)
}

impl Bench {
    /// GETs `path` from 32 clients for `seconds`: the rate and latencies.
    /// Signs in to the console with the bench's key; returns the cookie.
    async fn console_session(&self) -> anyhow::Result<String> {
        // The answer's cookie, not the page its redirect leads to.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let url = format!("{}/console/login", self.server.base);
        // The sign-in form's CSRF token: in its cookie and in the form.
        let form = client.get(&url).send().await?;
        let login_cookie = first_cookie(&form)?;
        let token = login_cookie
            .split_once('=')
            .map(|(_, value)| value.to_owned())
            .unwrap_or_default();
        let response = client
            .post(&url)
            .header(reqwest::header::COOKIE, &login_cookie)
            .form(&[("key", self.server.key.as_str()), ("csrf", token.as_str())])
            .send()
            .await?;
        first_cookie(&response)
    }

    /// `rounds` GETs of a console page, one after the other (ms each).
    async fn one_at_a_time(
        &self,
        path: &str,
        cookie: &str,
        rounds: usize,
    ) -> anyhow::Result<Vec<f64>> {
        let url = format!("{}{path}", self.server.base);
        let mut latencies = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let started = Instant::now();
            let response = self
                .client
                .get(&url)
                .header(reqwest::header::COOKIE, cookie)
                .send()
                .await?;
            let status = response.status();
            response.bytes().await?;
            anyhow::ensure!(status.is_success(), "{path} answered {status}");
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        Ok(latencies)
    }

    async fn hammer(&self, path: &str, seconds: f64) -> (f64, Latency) {
        let deadline = Instant::now() + Duration::from_secs_f64(seconds);
        let url = format!("{}{path}", self.server.base);
        let workers = (0..32).map(|_| {
            let (client, url, key) = (self.client.clone(), url.clone(), self.server.key.clone());
            async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let started = Instant::now();
                    if let Ok(response) = client.get(&url).bearer_auth(&key).send().await {
                        if response.status().is_success() && response.bytes().await.is_ok() {
                            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
                        }
                    }
                }
                latencies
            }
        });
        let latencies: Vec<f64> = futures_util::future::join_all(workers)
            .await
            .into_iter()
            .flatten()
            .collect();
        (latencies.len() as f64 / seconds, percentiles(latencies))
    }
}

/// `name=value` of the first cookie an answer sets.
fn first_cookie(response: &reqwest::Response) -> anyhow::Result<String> {
    response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("the console set no cookie"))
}
