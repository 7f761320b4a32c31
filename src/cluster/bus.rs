//! The cluster bus: this node's changes go out as PostgreSQL notifications
//! on one channel, and the other nodes' come in, onto the local
//! [`ChangeBus`]. A notification is delivered when its transaction commits
//! (what one round sends is one statement, its own transaction), holds at
//! most 8 000 bytes (long lists are split), and is lost to a listener whose
//! connection dropped — so a reconnect is taken as "everything may have
//! changed".
//!
//! Payload: `<node id>|<kind>|<list>` (list items separated by U+001F)
//! with kinds `c` (config id), `s` (config ids whose statistics moved), `t`
//! (keys or organisations), `m` (a node joined, left or freed partitions),
//! and `d` / `r` (deliveries committed / made pending again by a manual
//! retry, for their owner to take on: each `config:` and then the delivery
//! whole as JSON when small, so the owner sends it without a read, else its
//! id; every node hears every notification, and one that does not own the
//! config skips the item without parsing its JSON).
use super::Ownership;
use crate::changes::{Change, ChangeBus, Committed};
use aggregates::values::ConfigId;
use projections::cluster::ClusterStore;
use std::collections::BTreeSet;
use std::time::Duration;

/// Notifications stay under PostgreSQL's 8 000-byte payload limit.
const MAX_PAYLOAD: usize = 7_000;

/// Statistics changes are sent at most this often (they follow every
/// outcome batch; other nodes' caches only need them within a second).
const STATS_EVERY: Duration = Duration::from_millis(100);

/// Starts both directions.
pub fn start(store: ClusterStore, node: String, changes: ChangeBus, ownership: Ownership) {
    tokio::spawn(send_local_changes(
        store.clone(),
        node.clone(),
        changes.clone(),
    ));
    tokio::spawn(receive_remote_changes(store, node, changes, ownership));
}

async fn send_local_changes(store: ClusterStore, node: String, changes: ChangeBus) {
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
                notify(&store, pending.payloads(&node)).await;
            }
            _ = flush.tick() => {
                if !stats.is_empty() {
                    let ids = std::mem::take(&mut stats);
                    notify(&store, encode(&node, 's', ids.iter().map(i64::to_string))).await;
                }
            }
        }
    }
}

/// This node's changes waiting to be sent.
#[derive(Default)]
struct Outgoing {
    configs: BTreeSet<ConfigId>,
    deliveries: Vec<Committed>,
    /// Manual retries (a separate notification: their owner must send
    /// them even if it finished them before).
    again: Vec<Committed>,
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
            Change::Deliveries { deliveries, again } => {
                if again {
                    self.again.extend(deliveries);
                } else {
                    self.deliveries.extend(deliveries);
                }
            }
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
        payloads.extend(encode(node, 'd', self.deliveries.iter().map(wire::encode)));
        payloads.extend(encode(node, 'r', self.again.iter().map(wire::encode)));
        if self.tenancy {
            payloads.push(format!("{node}|t|"));
        }
        if self.membership {
            payloads.push(format!("{node}|m|"));
        }
        payloads
    }
}

/// `node|kind|a<US>b<US>c`, split so that each payload stays under the limit.
fn encode(node: &str, kind: char, items: impl Iterator<Item = String>) -> Vec<String> {
    let prefix = format!("{node}|{kind}|");
    let mut payloads = Vec::new();
    let mut current = prefix.clone();
    for item in items {
        if current.len() + item.len() + 1 > MAX_PAYLOAD && current.len() > prefix.len() {
            payloads.push(std::mem::replace(&mut current, prefix.clone()));
        }
        if current.len() > prefix.len() {
            current.push(SEPARATOR);
        }
        current.push_str(&item);
    }
    if current.len() > prefix.len() {
        payloads.push(current);
    }
    payloads
}

/// Tells the other nodes at once that this one joined, left or freed
/// partitions.
pub async fn announce_membership(store: &ClusterStore, node: &str) {
    notify(store, vec![format!("{node}|m|")]).await;
}

async fn notify(store: &ClusterStore, payloads: Vec<String>) {
    if payloads.is_empty() {
        return;
    }
    if let Err(error) = store.notify(&payloads).await {
        // The others find out by their own means: deliveries by the
        // owner's poll, caches by their reconnect or max age.
        tracing::warn!(%error, "cannot notify the other nodes");
    }
}

async fn receive_remote_changes(
    store: ClusterStore,
    node: String,
    changes: ChangeBus,
    ownership: Ownership,
) {
    loop {
        let mut notifications = match store.listen().await {
            Ok(notifications) => notifications,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for other nodes' changes; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // Whatever was sent before this connection listened is unknown.
        changes.arrived(Change::Everything);
        loop {
            match notifications.next().await {
                Ok(Some(payload)) => {
                    let ours = |config| ownership.owns(config);
                    if let Some(change) = decode(&node, &payload, ours) {
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

/// Between the items of a list: a character JSON text never holds raw.
const SEPARATOR: char = '\u{1f}';

/// A change of another node's (`None` for our own, or a payload we do not
/// read); of the deliveries, those of the configs `ours` says we own.
fn decode(me: &str, payload: &str, ours: impl Fn(ConfigId) -> bool) -> Option<Change> {
    let mut parts = payload.splitn(3, '|');
    let (node, kind, list) = (parts.next()?, parts.next()?, parts.next().unwrap_or(""));
    if node == me {
        return None;
    }
    let items = || list.split(SEPARATOR).filter(|item| !item.is_empty());
    match kind {
        "c" => ConfigId::parse(list).map(Change::Config),
        "s" => Some(Change::Stats(
            items().filter_map(|id| id.parse().ok()).collect(),
        )),
        "t" => Some(Change::Tenancy),
        "m" => Some(Change::Membership),
        "d" | "r" => {
            let deliveries: Vec<Committed> = items()
                .filter_map(|item| wire::decode(item, &ours))
                .collect();
            (!deliveries.is_empty()).then_some(Change::Deliveries {
                deliveries,
                again: kind == "r",
            })
        }
        _ => None,
    }
}

/// A committed delivery on the wire: `config:` and then the delivery whole
/// (JSON) while it is small, so that its owner sends it without reading the
/// database, else its id, and the owner reads it. The config comes first so
/// that the nodes that do not own it skip it unparsed (each node hears
/// every notification). Items of nodes from before the prefix (whole
/// deliveries as bare JSON) are still read; such a node cannot read the
/// prefixed wholes and leaves them to their owner's poll (rolling upgrade:
/// at most the watchdog interval late).
mod wire {
    use crate::changes::Committed;
    use aggregates::values::ConfigId;
    use projections::deliveries::EventRecord;
    use projections::deliveries::{DeliveryKind, PendingDelivery};
    use serde::{Deserialize, Serialize};
    use serde_json::value::RawValue;

    /// Deliveries whose JSON is longer travel by id.
    const WHOLE_UP_TO: usize = 2_000;

    #[derive(Serialize, Deserialize)]
    struct Whole<'a> {
        id: i64,
        config: ConfigId,
        test: bool,
        task: Option<&'a str>,
        attempts: i64,
        due: i64,
        /// The FIFO place, if any (absent from older nodes' notices).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        place: Option<i64>,
        event: &'a str,
        #[serde(rename = "type")]
        event_type: &'a str,
        published: i64,
        #[serde(borrow)]
        data: &'a RawValue,
    }

    pub fn encode(committed: &Committed) -> String {
        match committed {
            Committed::Whole(d) => {
                let whole = Whole {
                    id: d.id,
                    config: d.config_id,
                    test: d.kind == DeliveryKind::Test,
                    task: d.task_id.as_deref(),
                    attempts: d.attempts,
                    due: d.next_attempt_at,
                    place: d.fifo_seq,
                    event: &d.event.id,
                    event_type: &d.event.event_type,
                    published: d.event.published_at,
                    data: &d.event.data,
                };
                match serde_json::to_string(&whole) {
                    Ok(json) if json.len() <= WHOLE_UP_TO => format!("{}:{json}", d.config_id),
                    _ => format!("{}:{}", d.config_id, d.id),
                }
            }
            Committed::Id {
                config_id,
                delivery_id,
            } => format!("{config_id}:{delivery_id}"),
        }
    }

    /// The item if `ours` says its config is ours.
    pub fn decode(item: &str, ours: impl Fn(ConfigId) -> bool) -> Option<Committed> {
        if item.starts_with('{') {
            // A node from before the config prefix.
            return whole(item).filter(|committed| ours(committed.config_id()));
        }
        let (config, rest) = item.split_once(':')?;
        let config_id = ConfigId::parse(config)?;
        if !ours(config_id) {
            return None;
        }
        if rest.starts_with('{') {
            return whole(rest).filter(|committed| committed.config_id() == config_id);
        }
        Some(Committed::Id {
            config_id,
            delivery_id: rest.parse().ok()?,
        })
    }

    fn whole(json: &str) -> Option<Committed> {
        let whole: Whole = serde_json::from_str(json).ok()?;
        Some(Committed::Whole(PendingDelivery {
            id: whole.id,
            config_id: whole.config,
            kind: if whole.test {
                DeliveryKind::Test
            } else {
                DeliveryKind::Event
            },
            task_id: whole.task.map(str::to_owned),
            attempts: whole.attempts,
            next_attempt_at: whole.due,
            fifo_seq: whole.place,
            event: std::sync::Arc::new(EventRecord {
                id: whole.event.to_owned(),
                event_type: whole.event_type.to_owned(),
                data: whole.data.to_owned().into(),
                published_at: whole.published,
            }),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_stay_under_the_limit() {
        use crate::changes::Committed;
        use projections::deliveries::{event_data, EventRecord};
        use projections::deliveries::{DeliveryKind, PendingDelivery};
        let whole = |i: i64, data: String| {
            Committed::Whole(PendingDelivery {
                id: 1_000_000 + i,
                config_id: ConfigId::new(i % 7 + 1),
                kind: DeliveryKind::Event,
                task_id: None,
                attempts: 0,
                next_attempt_at: 5,
                fifo_seq: (i % 2 == 0).then_some(i),
                event: std::sync::Arc::new(EventRecord {
                    id: format!("event-{i}"),
                    event_type: "invoice.paid".into(),
                    data: event_data(data),
                    published_at: 4,
                }),
            })
        };
        let mut committed: Vec<Committed> = (0..300)
            .map(|i| {
                whole(
                    i,
                    format!(r#"{{"n": {i}, "big": 123456789012345678901234567890}}"#),
                )
            })
            .collect();
        // Too big to travel whole: by id.
        committed.push(whole(
            999,
            format!(r#"{{"blob": "{}"}}"#, "x".repeat(5_000)),
        ));
        let all = |_: ConfigId| true;
        let payloads = encode("a", 'd', committed.iter().map(wire::encode));
        assert!(payloads.len() > 1);
        let mut decoded = Vec::new();
        for payload in &payloads {
            assert!(payload.len() <= MAX_PAYLOAD);
            assert_eq!(decode("a", payload, all), None, "our own");
            match decode("b", payload, all) {
                Some(Change::Deliveries { deliveries, again }) => {
                    assert!(!again);
                    decoded.extend(deliveries)
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(decoded.len(), committed.len());
        match (&decoded[5], &committed[5]) {
            (Committed::Whole(got), Committed::Whole(sent)) => {
                assert_eq!((got.id, got.config_id), (sent.id, sent.config_id));
                assert_eq!(got.event.data.get(), sent.event.data.get());
                assert_eq!(got.event.id, sent.event.id);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decoded.last(),
            Some(Committed::Id {
                delivery_id: 1_000_999,
                config_id,
            }) if config_id.get() == 6
        ));
        // A node that owns some configs reads only theirs.
        let mut only_threes = Vec::new();
        for payload in &payloads {
            if let Some(Change::Deliveries { deliveries, .. }) =
                decode("b", payload, |config| config.get() == 3)
            {
                only_threes.extend(deliveries);
            }
        }
        let threes: Vec<&Committed> = committed
            .iter()
            .filter(|c| c.config_id().get() == 3)
            .collect();
        assert_eq!(only_threes.len(), threes.len());
        assert!(only_threes.iter().all(|c| c.config_id().get() == 3));
        // A whole delivery as a node before the config prefix sent it.
        let Committed::Whole(sent) = &committed[5] else {
            unreachable!()
        };
        let bare = wire::encode(&committed[5]);
        let bare = bare.split_once(':').unwrap().1;
        assert!(bare.starts_with('{'));
        match decode("b", &format!("a|d|{bare}"), all) {
            Some(Change::Deliveries { deliveries, .. }) => match &deliveries[..] {
                [Committed::Whole(got)] => assert_eq!(got.id, sent.id),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        // A prefix that disagrees with the delivery inside is not believed.
        let lying = format!("a|d|{}:{bare}", sent.config_id.get() + 1);
        assert_eq!(decode("b", &lying, all), None);
        assert_eq!(
            decode("b", "a|c|42", all),
            Some(Change::Config(ConfigId::new(42)))
        );
        assert_eq!(decode("b", "a|t|", all), Some(Change::Tenancy));
        assert_eq!(decode("b", "a|m|", all), Some(Change::Membership));
        assert_eq!(
            decode("b", &format!("a|s|1{SEPARATOR}2"), all),
            Some(Change::Stats(vec![1, 2]))
        );
        assert_eq!(decode("b", "garbage", all), None);
    }
}
