//! `webhookd cluster status`: the nodes, what each owns, and whether the
//! cluster is healthy (a live node that delivers, every partition leased
//! by a live node).
use super::ownership::partition_sql;
use sqlx::PgPool;
use std::time::Duration;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NodeRow {
    pub id: String,
    pub address: String,
    pub role: String,
    pub started_at: String,
    pub heartbeat_at: String,
    pub heartbeat_age_ms: i64,
    pub stopped: bool,
    pub partitions: i64,
    pub endpoints: i64,
}

impl NodeRow {
    pub fn is_live(&self, timeout: Duration) -> bool {
        !self.stopped && self.heartbeat_age_ms < timeout.as_millis() as i64
    }
}

pub struct ClusterStatus {
    pub nodes: Vec<NodeRow>,
    /// Partitions whose lease no live node holds now.
    pub unowned_partitions: i64,
}

impl ClusterStatus {
    pub fn healthy(&self, timeout: Duration) -> bool {
        self.unowned_partitions == 0
            && self
                .nodes
                .iter()
                .any(|n| n.is_live(timeout) && n.role != "api")
    }
}

pub async fn read(pool: &PgPool) -> Result<ClusterStatus, sqlx::Error> {
    let nodes: Vec<NodeRow> = sqlx::query_as(&format!(
        "WITH owned AS ( \
             SELECT node, COUNT(*) AS partitions, array_agg(partition) AS list \
             FROM partition_leases WHERE node IS NOT NULL AND expires_at > now() GROUP BY node) \
         SELECT n.id, n.address, n.role, \
             to_char(n.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS started_at, \
             to_char(n.heartbeat_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS heartbeat_at, \
             (EXTRACT(EPOCH FROM now() - n.heartbeat_at) * 1000)::bigint AS heartbeat_age_ms, \
             n.stopped_at IS NOT NULL AS stopped, \
             COALESCE(o.partitions, 0) AS partitions, \
             COALESCE((SELECT COUNT(*) FROM webhook_configs w \
                 WHERE NOT w.deleted AND {partition} = ANY(o.list)), 0) AS endpoints \
         FROM cluster_nodes n LEFT JOIN owned o ON o.node = n.id \
         ORDER BY n.started_at, n.id",
        partition = partition_sql("w.id")
    ))
    .fetch_all(pool)
    .await?;
    let unowned_partitions: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM partition_leases l WHERE l.node IS NULL OR l.expires_at <= now() \
         OR NOT EXISTS (SELECT 1 FROM cluster_nodes n WHERE n.id = l.node AND n.stopped_at IS NULL)",
    )
    .fetch_one(pool)
    .await?;
    Ok(ClusterStatus {
        nodes,
        unowned_partitions,
    })
}
