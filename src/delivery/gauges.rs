//! The gauges that cost a query or a look at an actor (pending deliveries
//! and the oldest one's age, pool connections, live endpoint actors, leases
//! held, live nodes), sampled in the background while metrics are on. Here
//! rather than in `telemetry`, which is below the delivery engine.
/// Reads the gauges that cost a query (or a look at another actor) every
/// [`crate::telemetry::SAMPLE_EVERY`], while metrics are on.
pub fn sample_periodically(
    db: projections::Db,
    supervisor: super::SupervisorHandle,
    ownership: crate::cluster::Ownership,
) {
    if crate::telemetry::handle().is_none() {
        return;
    }
    tokio::spawn(async move {
        let mut every = tokio::time::interval(crate::telemetry::SAMPLE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pending = PendingCount::default();
        loop {
            every.tick().await;
            sample(&db, &supervisor, &ownership, &mut pending).await;
        }
    });
}

/// Counting the pending deliveries reads every pending row: 35 ms in a
/// 150 000-delivery backlog, most of a second in a backlog of millions —
/// sampled every 2 s, that was a third of a database core taken from the
/// writers (`cluster`, one node, 200 000 events at fan-out 10), just when
/// the backlog needed them. So the count waits 19 times as long as it took
/// before it runs again: at most 5 % of a core, the gauge a little older in
/// a deep backlog (a 0.7 s count: every ~14 s).
#[derive(Default)]
struct PendingCount {
    next: Option<tokio::time::Instant>,
}

impl PendingCount {
    /// How long a count waits, after it finished, per unit of its own time.
    const PAUSE_PER_UNIT: u32 = 19;

    /// Whether a count may run at `now`.
    fn due(&self, now: tokio::time::Instant) -> bool {
        self.next.is_none_or(|next| now >= next)
    }

    /// A count ran from `started` to `finished`.
    fn ran(&mut self, started: tokio::time::Instant, finished: tokio::time::Instant) {
        self.next = Some(finished + (finished - started) * Self::PAUSE_PER_UNIT);
    }

    async fn sample(&mut self, db: &projections::Db) -> Option<(f64, f64)> {
        let started = tokio::time::Instant::now();
        if !self.due(started) {
            return None;
        }
        let now = projections::db::now_micros();
        let summary = projections::deliveries::pending_summary(db).await;
        self.ran(started, tokio::time::Instant::now());
        summary.ok().map(|(count, oldest)| {
            let age = oldest.map_or(0.0, |due| ((now - due).max(0) as f64) / 1e6);
            (count as f64, age)
        })
    }
}

async fn sample(
    db: &projections::Db,
    supervisor: &super::SupervisorHandle,
    ownership: &crate::cluster::Ownership,
    pending: &mut PendingCount,
) {
    // The pending deliveries are the cluster's, not a node's: one node
    // counts — the holder of partition 0 — and the others say 0, so that
    // `max` or `sum` over the nodes is the cluster's figure.
    let counts = !ownership.is_clustered() || ownership.held().contains(&0);
    let summary = if counts {
        pending.sample(db).await
    } else {
        Some((0.0, 0.0))
    };
    if let Some((count, age)) = summary {
        metrics::gauge!("webhookd_deliveries_pending").set(count);
        metrics::gauge!("webhookd_oldest_due_delivery_age_seconds").set(age);
    }
    let (size, idle) = db.pool_usage();
    let (size, idle) = (size as f64, idle as f64);
    metrics::gauge!("webhookd_db_pool_connections", "state" => "in_use").set(size - idle);
    metrics::gauge!("webhookd_db_pool_connections", "state" => "idle").set(idle);
    if let Some(stats) = supervisor.stats().await {
        metrics::gauge!("webhookd_endpoint_actors").set(stats.live_endpoints as f64);
    }
    metrics::gauge!("webhookd_leases_held").set(if ownership.is_clustered() {
        ownership.held().len() as f64
    } else {
        0.0
    });
    let nodes = projections::deliveries::live_nodes(db).await.unwrap_or(0);
    metrics::gauge!("webhookd_cluster_nodes").set(nodes as f64);
}

#[cfg(test)]
mod tests {
    use super::PendingCount;
    use std::time::Duration;
    use tokio::time::Instant;

    #[test]
    fn a_slow_count_waits_nineteen_times_its_length() {
        let start = Instant::now();
        let mut pending = PendingCount::default();
        assert!(pending.due(start), "the first count runs at once");
        // A quick count (1 ms): the next tick, 2 s later, counts again.
        pending.ran(start, start + Duration::from_millis(1));
        assert!(!pending.due(start + Duration::from_millis(10)));
        assert!(pending.due(start + crate::telemetry::SAMPLE_EVERY));
        // A count of 700 ms: nothing for the next 13.3 s.
        let at = start + Duration::from_secs(10);
        pending.ran(at, at + Duration::from_millis(700));
        let after = at + Duration::from_millis(700);
        assert!(!pending.due(after + Duration::from_millis(13_299)));
        assert!(pending.due(after + Duration::from_millis(13_300)));
    }
}
