//! Which configs an event goes to, remembered between publishes.
//!
//! Routing is a query over the subscriptions of an organisation; publishes
//! far outnumber config changes, so the answer is kept per (organisation,
//! event type, routing config) and forgotten whenever any config changes
//! (the command side calls [`RoutingCache::invalidate`] after the read
//! model is written and before the command answers).
use projections::cache::InvalidatedCache;
use projections::deliveries::{DeliveryStore, Target};
use projections::Error;
use std::sync::Arc;

type RouteKey = (i64, String, Option<i64>);

#[derive(Clone, Default)]
pub struct RoutingCache {
    routes: Arc<InvalidatedCache<RouteKey, Arc<Vec<Target>>>>,
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
    ) -> Result<Arc<Vec<Target>>, Error> {
        let key = (organisation, event_type.to_owned(), routed_config);
        self.routes
            .get_or_load(key, async {
                let mut targets = store
                    .routing_targets(organisation, event_type, routed_config)
                    .await?;
                targets.sort_unstable_by_key(|target| target.config_id);
                targets.dedup_by_key(|target| target.config_id);
                Ok(Arc::new(targets))
            })
            .await
    }

    /// Forgets every route: some config changed.
    pub fn invalidate(&self) {
        self.routes.invalidate();
    }
}

/// Routes depend on configs and on organisations (keys, plans, flags).
impl crate::changes::ReadCache for RoutingCache {
    fn forget(&self, change: &crate::changes::Change) {
        use crate::changes::Change;
        match change {
            Change::Config(_) | Change::Tenancy | Change::Everything => self.invalidate(),
            Change::Stats(_) | Change::Deliveries { .. } | Change::Membership | Change::Claimed => {
            }
        }
    }
}
