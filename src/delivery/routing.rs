//! Which configs an event goes to, remembered between publishes.
//!
//! Routing is a query over the subscriptions of an organisation; publishes
//! far outnumber config changes, so the answer is kept per (organisation,
//! event type, routing config) and forgotten whenever any config changes
//! ([`RoutingCache::invalidate`], called by the command side after the read
//! model is written and before the command answers). A generation counter
//! keeps a query that raced a change from storing its stale answer.
use super::store::DeliveryStore;
use projections::Error;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

type RouteKey = (i64, String, Option<i64>);

#[derive(Clone, Default)]
pub struct RoutingCache {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    generation: AtomicU64,
    routes: Mutex<HashMap<RouteKey, Arc<Vec<i64>>>>,
}

impl RoutingCache {
    /// The distinct configs an event of `event_type` goes to (see
    /// [`DeliveryStore::routing_targets`]).
    pub async fn targets(
        &self,
        store: &DeliveryStore,
        organisation: i64,
        event_type: &str,
        routed_config: Option<i64>,
    ) -> Result<Arc<Vec<i64>>, Error> {
        let key = (organisation, event_type.to_owned(), routed_config);
        if let Some(targets) = self.lock().get(&key) {
            return Ok(targets.clone());
        }
        let generation = self.inner.generation.load(Ordering::Acquire);
        let mut targets = store
            .routing_targets(organisation, event_type, routed_config)
            .await?;
        targets.sort_unstable();
        targets.dedup();
        let targets = Arc::new(targets);
        let mut routes = self.lock();
        if self.inner.generation.load(Ordering::Acquire) == generation {
            routes.insert(key, targets.clone());
        }
        Ok(targets)
    }

    /// Forgets every route: some config changed.
    pub fn invalidate(&self) {
        let mut routes = self.lock();
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        routes.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RouteKey, Arc<Vec<i64>>>> {
        // A panic while holding the lock leaves a plain map: still usable.
        self.inner
            .routes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
