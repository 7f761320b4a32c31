//! `ceiling`: what this machine does without webhookd — the bench's own
//! load generator sending signed requests straight to its own receiver
//! (which checks every signature, as in every other scenario), 64 at a
//! time by default, for `--events` requests. Its rate is the most any
//! scenario could deliver here, and its CPU per request is what the bench
//! itself costs a delivery; the other scenarios' figures read as a
//! fraction of these.
use crate::cpu;
use crate::receiver::{Behaviour, Receiver};
use crate::scenarios::{percentiles, Report};
use crate::Options;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::atomic::Ordering;
use std::time::Instant;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let receiver = Receiver::start()?;
    receiver.register(0, SECRET, Behaviour::Ok);
    let key = STANDARD.decode(SECRET.trim_start_matches("whsec_"))?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let requests = options
        .events
        .unwrap_or(if options.quick { 2_000 } else { 100_000 });
    let url = receiver.url(0);
    let tally = receiver.tally();
    // The bench's own process is both sides here: `webhookd` is itself.
    let from = cpu::Sample::now(std::process::id());
    let started = Instant::now();
    let results: Vec<Option<f64>> = futures_util::stream::iter(0..requests)
        .map(|i| {
            let (client, url, key) = (&client, &url, &key);
            async move {
                let id = format!("msg_{i}");
                let timestamp = chrono::Utc::now().timestamp().to_string();
                let body = format!(r#"{{"type":"bench.ceiling","data":{{"i":{i}}}}}"#);
                let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
                mac.update(format!("{id}.{timestamp}.").as_bytes());
                mac.update(body.as_bytes());
                let signature = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
                let sent = Instant::now();
                let answer = client
                    .post(url)
                    .header("webhook-id", &id)
                    .header("webhook-timestamp", &timestamp)
                    .header("webhook-signature", signature)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .ok()?;
                answer
                    .status()
                    .is_success()
                    .then(|| sent.elapsed().as_secs_f64() * 1000.0)
            }
        })
        .buffer_unordered(options.publishers.max(1))
        .collect()
        .await;
    let elapsed = started.elapsed();
    let to = cpu::Sample::now(std::process::id());
    let answered: Vec<f64> = results.iter().flatten().copied().collect();
    let mut cost = from.per_delivery(&to, answered.len() as u64);
    // One process: its CPU is the bench's, not a server's.
    cost.bench_us = cost.webhookd_us;
    cost.webhookd_us = 0.0;
    cost.database_us = 0.0;
    Ok(Report {
        scenario: "ceiling".to_owned(),
        backend: "none".to_owned(),
        endpoints: 1,
        events: requests,
        deliveries: answered.len() as u64,
        duration_s: elapsed.as_secs_f64(),
        deliveries_per_s: answered.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        latency_ms: percentiles(answered.clone()),
        errors: requests - answered.len() as u64,
        lost: requests - answered.len() as u64,
        duplicates: 0,
        bad_signatures: tally.bad_signatures.load(Ordering::Relaxed),
        server_peak_rss_mb: 0.0,
        cpu: Some(cost),
        extra: serde_json::Value::Null,
    })
}
