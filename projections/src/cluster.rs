//! The cluster's tables and channel: PostgreSQL is the only coordination
//! engine of several nodes (no broker), so membership, leases and the
//! change channel are storage like any other and their SQL lives here. The
//! rules — when to renew, how much to claim, what a notification means —
//! are the service's (`src/cluster`); this module only says how each step
//! is written to and read from the database.
//!
//! * `cluster_nodes`: one row per node, its heartbeat in the database's time.
//! * `partition_leases`: [`PARTITIONS`] rows, each held by at most one node
//!   until `expires_at`, under an `epoch` that grows with every new holder
//!   (the fence of every attempt recorded under it).
//! * the channel [`CHANNEL`]: `pg_notify` out, a [`Notifications`] listener in.
use crate::kept::KeptConnections;
use crate::Error;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use std::time::Duration;

/// How many partitions the endpoints are spread over (fixed: it is the
/// number of rows of `partition_leases`).
pub const PARTITIONS: usize = 64;

/// Consecutive config ids land 37 partitions apart (37 is prime to 64, so
/// every partition still gets one id in 64): the endpoints an organisation
/// creates one after another spread over the nodes, which claim partitions
/// in ranges. [`partition_sql`] computes the same in SQL.
const SPREAD: i64 = 37;

/// The partition of an endpoint (its config id).
pub fn partition_of(config_id: i64) -> usize {
    (config_id.rem_euclid(PARTITIONS as i64) * SPREAD).rem_euclid(PARTITIONS as i64) as usize
}

/// [`partition_of`] in SQL, for a config id column.
fn partition_sql(column: &str) -> String {
    format!("(({column} % {PARTITIONS}) * {SPREAD}) % {PARTITIONS}")
}

/// The one channel of the cluster's notifications.
pub const CHANNEL: &str = "webhookd_changes";

/// A lease as the database granted it: (partition, epoch).
pub type Granted = (usize, i64);

/// The cluster's rows, on the PostgreSQL pool every node shares.
#[derive(Clone)]
pub struct ClusterStore {
    pool: PgPool,
    /// Where [`Self::notify`] sends from when not from `pool`: connections
    /// kept between rounds (see [`Self::notifying_from`]).
    notifier: Option<std::sync::Arc<KeptConnections>>,
}

/// Who a node is, as `cluster_nodes` records it.
pub struct NodeRecord<'a> {
    pub id: &'a str,
    pub address: &'a str,
    /// `all`, `api` or `worker`.
    pub role: &'a str,
}

fn millis(duration: Duration) -> i64 {
    duration.as_millis() as i64
}

fn granted(rows: Vec<(i32, i64)>) -> Vec<Granted> {
    rows.into_iter().map(|(p, e)| (p as usize, e)).collect()
}

fn as_i32(partitions: &[usize]) -> Vec<i32> {
    partitions.iter().map(|&p| p as i32).collect()
}

impl ClusterStore {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            notifier: None,
        }
    }

    /// Sends notifications from a connection of `pool` kept between rounds
    /// (see [`crate::kept`]): the bus sends a round for every publish
    /// batch with deliveries another node owns, and a connection returned
    /// to a pool after each was one more round trip each (through
    /// non-owners at 1 000 events/s, ~5 % of the database's CPU per
    /// delivery and of webhookd's). A pool of its own, because a kept
    /// connection is not available to anyone else.
    pub fn notifying_from(self, pool: PgPool) -> Self {
        Self {
            notifier: Some(std::sync::Arc::new(KeptConnections::new(pool))),
            ..self
        }
    }

    /// Registers a node (again, after a restart under the same id: its row
    /// starts over).
    pub async fn join(&self, node: &NodeRecord<'_>) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO cluster_nodes (id, address, role) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET address = $2, role = $3, started_at = now(), \
                 heartbeat_at = now(), stopped_at = NULL",
        )
        .bind(node.id)
        .bind(node.address)
        .bind(node.role)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The heartbeat: the node's row is touched, and the database's clock
    /// (µs since the epoch, read as the row was written) comes back — or
    /// `None` when the row is gone (someone removed it), after it has been
    /// registered again.
    pub async fn heartbeat(&self, node: &NodeRecord<'_>) -> Result<Option<i64>, Error> {
        let database_micros: Option<i64> = sqlx::query_scalar(
            "UPDATE cluster_nodes SET heartbeat_at = now(), stopped_at = NULL WHERE id = $1 \
             RETURNING (extract(epoch FROM clock_timestamp()) * 1000000)::bigint",
        )
        .bind(node.id)
        .fetch_optional(&self.pool)
        .await?;
        if database_micros.is_none() {
            sqlx::query(
                "INSERT INTO cluster_nodes (id, address, role) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(node.id)
            .bind(node.address)
            .bind(node.role)
            .execute(&self.pool)
            .await?;
        }
        Ok(database_micros)
    }

    /// Renews the node's unexpired leases for `timeout`, except those in
    /// `releasing`; returns what it renewed.
    pub async fn renew(
        &self,
        node: &str,
        timeout: Duration,
        releasing: &[usize],
    ) -> Result<Vec<Granted>, Error> {
        let rows = sqlx::query_as(
            "UPDATE partition_leases SET expires_at = now() + make_interval(secs => $2::float8 / 1000) \
             WHERE node = $1 AND expires_at > now() AND partition <> ALL($3) \
             RETURNING partition, epoch",
        )
        .bind(node)
        .bind(millis(timeout))
        .bind(as_i32(releasing))
        .fetch_all(&self.pool)
        .await?;
        Ok(granted(rows))
    }

    /// The nodes that deliver and whose heartbeat is younger than `timeout`.
    pub async fn live_workers(&self, timeout: Duration) -> Result<usize, Error> {
        let live: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM cluster_nodes WHERE stopped_at IS NULL \
             AND heartbeat_at > now() - make_interval(secs => $1::float8 / 1000) \
             AND role IN ('all', 'worker')",
        )
        .bind(millis(timeout))
        .fetch_one(&self.pool)
        .await?;
        Ok(live.max(0) as usize)
    }

    /// Claims up to `wanted` free or expired partitions (none of
    /// `releasing`), the node's own former ones first.
    ///
    /// A lease that ran out while this node was cut off (a database outage)
    /// and that nobody took meanwhile is taken back under the same epoch:
    /// the attempts answered during the outage, whose records waited in
    /// memory, still count. Any other claim — and every claim when
    /// `restarted` (the node's first after a start: its own leases are a
    /// previous life's) — starts a new epoch, fencing the previous holder.
    pub async fn claim(
        &self,
        node: &str,
        timeout: Duration,
        wanted: usize,
        releasing: &[usize],
        restarted: bool,
    ) -> Result<Vec<Granted>, Error> {
        let rows = sqlx::query_as(
            "UPDATE partition_leases \
             SET node = $1, epoch = CASE WHEN node = $1 AND NOT $5 THEN epoch ELSE epoch + 1 END, \
                 expires_at = now() + make_interval(secs => $2::float8 / 1000) \
             WHERE partition IN ( \
                 SELECT partition FROM partition_leases \
                 WHERE (node IS NULL OR expires_at <= now() OR (node = $1 AND $5)) \
                     AND partition <> ALL($4) \
                 ORDER BY node IS NOT DISTINCT FROM $1 DESC, partition \
                 LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING partition, epoch",
        )
        .bind(node)
        .bind(millis(timeout))
        .bind(wanted as i64)
        .bind(as_i32(releasing))
        .bind(restarted)
        .fetch_all(&self.pool)
        .await?;
        Ok(granted(rows))
    }

    /// Frees the node's leases of `partitions` at once, so another node may
    /// take them without waiting out the timeout.
    pub async fn free(&self, node: &str, partitions: &[usize]) -> Result<(), Error> {
        sqlx::query(
            "UPDATE partition_leases SET node = NULL, expires_at = '-infinity' \
             WHERE node = $1 AND partition = ANY($2)",
        )
        .bind(node)
        .bind(as_i32(partitions))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks the node stopped (it left the cluster).
    pub async fn mark_stopped(&self, node: &str) -> Result<(), Error> {
        sqlx::query("UPDATE cluster_nodes SET stopped_at = now() WHERE id = $1")
            .bind(node)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sends notifications on [`CHANNEL`], in order, in one statement (its
    /// own transaction: they go out at once, and one round trip and one
    /// commit carry them all). Each at most 8 000 bytes: the caller splits.
    pub async fn notify(&self, payloads: &[String]) -> Result<(), Error> {
        let query = sqlx::query("SELECT pg_notify($1, p) FROM UNNEST($2::text[]) WITH ORDINALITY AS n (p, i) ORDER BY i")
            .bind(CHANNEL)
            .bind(payloads);
        match &self.notifier {
            Some(notifier) => {
                let mut connection = notifier.take().await?;
                let sent = query.execute(&mut *connection).await;
                notifier.put_back(connection, sent.is_ok());
                sent?;
            }
            None => {
                query.execute(&self.pool).await?;
            }
        }
        Ok(())
    }

    /// A connection listening on [`CHANNEL`].
    pub async fn listen(&self) -> Result<Notifications, Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(Notifications { listener })
    }

    /// The nodes, what each owns, and the partitions no live node holds.
    pub async fn status(&self) -> Result<ClusterStatus, Error> {
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
        .fetch_all(&self.pool)
        .await?;
        let unowned_partitions: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM partition_leases l WHERE l.node IS NULL OR l.expires_at <= now() \
             OR NOT EXISTS (SELECT 1 FROM cluster_nodes n WHERE n.id = l.node AND n.stopped_at IS NULL)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(ClusterStatus {
            nodes,
            unowned_partitions,
        })
    }
}

/// The notifications of the other nodes, as they arrive.
pub struct Notifications {
    listener: PgListener,
}

impl Notifications {
    /// The next payload; `Ok(None)` when the connection dropped and was
    /// taken up again (whatever was sent meanwhile is lost: take it as
    /// "everything may have changed"); `Err` when it cannot be taken up.
    pub async fn next(&mut self) -> Result<Option<String>, Error> {
        Ok(self
            .listener
            .try_recv()
            .await?
            .map(|notification| notification.payload().to_owned()))
    }
}

/// One node as `cluster status` shows it.
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
        !self.stopped && self.heartbeat_age_ms < millis(timeout)
    }
}

/// What `cluster status` shows.
pub struct ClusterStatus {
    pub nodes: Vec<NodeRow>,
    /// Partitions whose lease no live node holds now.
    pub unowned_partitions: i64,
}

impl ClusterStatus {
    /// A live node delivers and every partition is held by a live node.
    pub fn healthy(&self, timeout: Duration) -> bool {
        self.unowned_partitions == 0
            && self
                .nodes
                .iter()
                .any(|n| n.is_live(timeout) && n.role != "api")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partitions_of_rust_and_sql_agree_on_their_formula() {
        // The SQL is the same arithmetic; negative ids never occur (BIGSERIAL).
        assert_eq!(partition_sql("id"), "((id % 64) * 37) % 64");
        for id in 0..1000 {
            assert_eq!(partition_of(id), ((id % 64) * 37 % 64) as usize);
        }
        let all: std::collections::HashSet<usize> = (0..64).map(partition_of).collect();
        assert_eq!(all.len(), PARTITIONS);
    }
}
