//! The cluster bus: this node's changes go out as PostgreSQL notifications
//! on one channel, and the other nodes' come in, onto the local
//! [`ChangeBus`]. A notification is delivered when its transaction commits
//! (each `pg_notify` here is its own), holds at most 8 000 bytes (long lists
//! are split), and is lost to a listener whose connection dropped — so a
//! reconnect is taken as "everything may have changed".
//!
//! Payload: `<node id>|<kind>|<list>` with kinds `c` (config id), `s`
//! (config ids whose statistics moved), `t` (keys or organisations), `m`
//! (a node joined, left or freed partitions) and `d` (`config:delivery`
//! pairs committed for their owner to take on).
use crate::changes::{Change, ChangeBus};
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use std::collections::BTreeSet;
use std::time::Duration;

pub const CHANNEL: &str = "webhookd_changes";

/// Notifications stay under PostgreSQL's 8 000-byte payload limit.
const MAX_PAYLOAD: usize = 7_000;

/// Statistics changes are sent at most this often (they follow every
/// outcome batch; other nodes' caches only need them within a second).
const STATS_EVERY: Duration = Duration::from_millis(100);

/// Starts both directions.
pub fn start(pool: PgPool, node: String, changes: ChangeBus) {
    tokio::spawn(send_local_changes(
        pool.clone(),
        node.clone(),
        changes.clone(),
    ));
    tokio::spawn(receive_remote_changes(pool, node, changes));
}

async fn send_local_changes(pool: PgPool, node: String, changes: ChangeBus) {
    let mut subscription = changes.subscribe();
    let mut stats: BTreeSet<i64> = BTreeSet::new();
    let mut flush = tokio::time::interval(STATS_EVERY);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            announced = subscription.next() => {
                let Some(first) = announced else { return };
                // Everything waiting goes out together: one notification
                // per kind, not one round trip per publish.
                let mut pending = Outgoing::default();
                pending.add(first, &mut stats);
                while let Some(next) = subscription.try_next() {
                    pending.add(next, &mut stats);
                }
                notify(&pool, pending.payloads(&node)).await;
            }
            _ = flush.tick() => {
                if !stats.is_empty() {
                    let ids = std::mem::take(&mut stats);
                    notify(&pool, encode(&node, 's', ids.iter().map(i64::to_string))).await;
                }
            }
        }
    }
}

/// This node's changes waiting to be sent.
#[derive(Default)]
struct Outgoing {
    configs: BTreeSet<i64>,
    deliveries: Vec<(i64, i64)>,
    tenancy: bool,
    membership: bool,
}

impl Outgoing {
    fn add(&mut self, announced: crate::changes::Announced, stats: &mut BTreeSet<i64>) {
        if announced.remote {
            return;
        }
        match announced.change {
            Change::Config(id) => {
                self.configs.insert(id);
            }
            Change::Deliveries(pairs) => self.deliveries.extend(pairs),
            Change::Stats(ids) => stats.extend(ids),
            Change::Tenancy => self.tenancy = true,
            Change::Membership => self.membership = true,
            // Local: not for the others. (A lag here lost announcements;
            // their owners' polls find the deliveries, see the supervisor.)
            Change::Everything | Change::Claimed => {}
        }
    }

    fn payloads(self, node: &str) -> Vec<String> {
        let mut payloads: Vec<String> = self
            .configs
            .iter()
            .map(|id| format!("{node}|c|{id}"))
            .collect();
        payloads.extend(encode(
            node,
            'd',
            self.deliveries.iter().map(|(c, d)| format!("{c}:{d}")),
        ));
        if self.tenancy {
            payloads.push(format!("{node}|t|"));
        }
        if self.membership {
            payloads.push(format!("{node}|m|"));
        }
        payloads
    }
}

/// `node|kind|a,b,c`, split so that each payload stays under the limit.
fn encode(node: &str, kind: char, items: impl Iterator<Item = String>) -> Vec<String> {
    let prefix = format!("{node}|{kind}|");
    let mut payloads = Vec::new();
    let mut current = prefix.clone();
    for item in items {
        if current.len() + item.len() + 1 > MAX_PAYLOAD && current.len() > prefix.len() {
            payloads.push(std::mem::replace(&mut current, prefix.clone()));
        }
        if current.len() > prefix.len() {
            current.push(',');
        }
        current.push_str(&item);
    }
    if current.len() > prefix.len() {
        payloads.push(current);
    }
    payloads
}

async fn notify(pool: &PgPool, payloads: Vec<String>) {
    for payload in payloads {
        if let Err(error) = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(&payload)
            .execute(pool)
            .await
        {
            // The others find out by their own means: deliveries by the
            // owner's poll, caches by their reconnect or max age.
            tracing::warn!(%error, "cannot notify the other nodes");
        }
    }
}

async fn receive_remote_changes(pool: PgPool, node: String, changes: ChangeBus) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for other nodes' changes; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(error) = listener.listen(CHANNEL).await {
            tracing::warn!(%error, "cannot listen for other nodes' changes; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        // Whatever was sent before this connection listened is unknown.
        changes.arrived(Change::Everything);
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    if let Some(change) = decode(&node, notification.payload()) {
                        changes.arrived(change);
                    }
                }
                // The connection dropped; it reconnects on the next call,
                // and what was sent meanwhile is lost.
                Ok(None) => changes.arrived(Change::Everything),
                Err(error) => {
                    tracing::warn!(%error, "lost the notification connection; reconnecting");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    break;
                }
            }
        }
    }
}

/// A change of another node's (`None` for our own, or a payload we do not read).
fn decode(me: &str, payload: &str) -> Option<Change> {
    let mut parts = payload.splitn(3, '|');
    let (node, kind, list) = (parts.next()?, parts.next()?, parts.next().unwrap_or(""));
    if node == me {
        return None;
    }
    let ids = || list.split(',').filter_map(|id| id.parse().ok());
    match kind {
        "c" => list.parse().ok().map(Change::Config),
        "s" => Some(Change::Stats(ids().collect())),
        "t" => Some(Change::Tenancy),
        "m" => Some(Change::Membership),
        "d" => Some(Change::Deliveries(
            list.split(',')
                .filter_map(|pair| {
                    let (config, delivery) = pair.split_once(':')?;
                    Some((config.parse().ok()?, delivery.parse().ok()?))
                })
                .collect(),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_stay_under_the_limit() {
        let pairs: Vec<(i64, i64)> = (0..2_000).map(|i| (i % 7, 1_000_000 + i)).collect();
        let payloads = encode("a", 'd', pairs.iter().map(|(c, d)| format!("{c}:{d}")));
        assert!(payloads.len() > 1);
        let mut decoded = Vec::new();
        for payload in &payloads {
            assert!(payload.len() <= MAX_PAYLOAD);
            assert_eq!(decode("a", payload), None, "our own");
            match decode("b", payload) {
                Some(Change::Deliveries(part)) => decoded.extend(part),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(decoded, pairs);
        assert_eq!(decode("b", "a|c|42"), Some(Change::Config(42)));
        assert_eq!(decode("b", "a|t|"), Some(Change::Tenancy));
        assert_eq!(decode("b", "a|s|1,2"), Some(Change::Stats(vec![1, 2])));
        assert_eq!(decode("b", "garbage"), None);
    }
}
