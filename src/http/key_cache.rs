//! API keys by token hash, kept in memory for a few seconds.
//!
//! Every request is authenticated, and the lookup (key, then organisation)
//! was two queries on every request of the profile. Keys and organisations
//! change rarely: webhookd itself changes only the routing config of a key or
//! an organisation (it then calls [`KeyCache::forget_all`]); the operator's
//! CLI, in another process, revokes and rotates keys and changes plans and
//! flags, and writes each change to the admin log, whose head every server
//! watches ([`KeyCache::watch_admin_log`]): a revoked key is refused within
//! [`ADMIN_LOG_POLL`]. A found key is reused for at most [`KEY_TTL`] (a
//! change made by hand in the database); a token not found is never
//! remembered, so a key created a moment ago works at once.
use projections::admin_log;
use projections::cache::InvalidatedCache;
use projections::tenancy::{self, ApiKey, Organisation};
use projections::{Db, Error};
use std::sync::Arc;
use std::time::Duration;

/// How long a changed organisation (by hand, in the database) may still be
/// seen as it was.
pub const KEY_TTL: Duration = Duration::from_secs(5);

/// How often a server looks for operator changes in the admin log.
pub const ADMIN_LOG_POLL: Duration = Duration::from_millis(200);

/// Tokens remembered at most (then the cache starts over).
const CAPACITY: usize = 100_000;

/// A key and its organisation, as requests share them.
pub type Found = (Arc<ApiKey>, Arc<Organisation>);

#[derive(Clone)]
pub struct KeyCache {
    db: Db,
    /// Shared with the requests that found them: a cache hit copies no
    /// strings (names, plan, flags, scopes).
    keys: Arc<InvalidatedCache<String, Found>>,
}

impl KeyCache {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            keys: Arc::new(InvalidatedCache::with_max_age(CAPACITY, KEY_TTL)),
        }
    }

    /// The key with this token hash and its organisation.
    pub async fn find(&self, token_hash: &str) -> Result<Option<Found>, Error> {
        let db = &self.db;
        self.keys
            .get_or_find(token_hash, async move {
                let found = tenancy::find_key_by_token_hash(db, token_hash).await?;
                Ok(found.map(|(key, organisation)| (Arc::new(key), Arc::new(organisation))))
            })
            .await
    }

    /// A key or an organisation changed: read them afresh (a lookup under
    /// way is not kept: it may have read before the change).
    pub fn forget_all(&self) {
        self.keys.invalidate();
    }

    /// Forgets every cached key whenever the admin log has a new entry
    /// (checked every [`ADMIN_LOG_POLL`]; an unreadable log is tried again
    /// at the next tick). Call inside the Tokio runtime.
    pub fn watch_admin_log(&self) {
        let cache = self.clone();
        tokio::spawn(async move {
            let mut seen = admin_log::head(&cache.db).await.unwrap_or(0);
            let mut tick = tokio::time::interval(ADMIN_LOG_POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match admin_log::head(&cache.db).await {
                    Ok(head) if head != seen => {
                        seen = head;
                        cache.forget_all();
                    }
                    Ok(_) => {}
                    // The database is away: whatever changed meanwhile is
                    // seen when it is back (the head moved).
                    Err(_) => {}
                }
            }
        });
    }
}

/// Keys change with tenancy (created, revoked, an organisation's plan).
impl crate::changes::ReadCache for KeyCache {
    fn forget(&self, change: &crate::changes::Change) {
        use crate::changes::Change;
        if matches!(change, Change::Tenancy | Change::Everything) {
            self.forget_all();
        }
    }
}
