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
        loop {
            every.tick().await;
            sample(&db, &supervisor, &ownership).await;
        }
    });
}

async fn sample(
    db: &projections::Db,
    supervisor: &super::SupervisorHandle,
    ownership: &crate::cluster::Ownership,
) {
    // The pending deliveries are the cluster's, not a node's, and counting
    // them reads every pending row (35 ms in a 150 000-delivery backlog):
    // one node counts — the holder of partition 0 — and the others say 0,
    // so that `max` or `sum` over the nodes is the cluster's figure.
    let counts = !ownership.is_clustered() || ownership.held().contains(&0);
    let summary = if counts {
        let now = projections::db::now_micros();
        projections::deliveries::pending_summary(db)
            .await
            .ok()
            .map(|(count, oldest)| {
                let age = oldest.map_or(0.0, |due| ((now - due).max(0) as f64) / 1e6);
                (count as f64, age)
            })
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
