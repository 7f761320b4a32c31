//! API keys by token hash, kept in memory for a few seconds.
//!
//! Every request is authenticated, and the lookup (key, then organisation)
//! was two queries on every request of the profile. Keys and organisations
//! change rarely: webhookd itself changes only the routing config of a key or
//! an organisation (it then calls [`KeyCache::forget_all`]); the operator's
//! CLI, in another process, only adds. So a found key is reused for
//! [`KEY_TTL`]; a token not found is never remembered, so a key created a
//! moment ago works at once.
use projections::cache::InvalidatedCache;
use projections::tenancy::{self, ApiKey, Organisation};
use projections::{Db, Error};
use std::sync::Arc;
use std::time::Duration;

/// How long a changed organisation (by hand, in the database) may still be
/// seen as it was.
pub const KEY_TTL: Duration = Duration::from_secs(5);

/// Tokens remembered at most (then the cache starts over).
const CAPACITY: usize = 100_000;

#[derive(Clone)]
pub struct KeyCache {
    db: Db,
    keys: Arc<InvalidatedCache<String, (ApiKey, Organisation)>>,
}

impl KeyCache {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            keys: Arc::new(InvalidatedCache::with_max_age(CAPACITY, KEY_TTL)),
        }
    }

    /// The key with this token hash and its organisation.
    pub async fn find(&self, token_hash: &str) -> Result<Option<(ApiKey, Organisation)>, Error> {
        self.keys
            .get_or_find(
                token_hash.to_owned(),
                tenancy::find_key_by_token_hash(&self.db, token_hash),
            )
            .await
    }

    /// A key or an organisation changed: read them afresh (a lookup under
    /// way is not kept: it may have read before the change).
    pub fn forget_all(&self) {
        self.keys.invalidate();
    }
}
