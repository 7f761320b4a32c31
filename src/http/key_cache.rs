//! API keys by token hash, kept in memory for a few seconds.
//!
//! Every request is authenticated, and the lookup (key, then organisation)
//! was two queries on every request of the profile. Keys and organisations
//! change rarely: webhookd itself changes only the routing config of a key or
//! an organisation (it then calls [`KeyCache::forget_all`]); the operator's
//! CLI, in another process, only adds. So a found key is reused for
//! [`KEY_TTL`]; a token not found is never remembered, so a key created a
//! moment ago works at once.
use projections::tenancy::{self, ApiKey, Organisation};
use projections::{Db, Error};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a changed organisation (by hand, in the database) may still be
/// seen as it was.
pub const KEY_TTL: Duration = Duration::from_secs(5);

type Entry = (Instant, ApiKey, Organisation);

#[derive(Clone)]
pub struct KeyCache {
    db: Db,
    keys: Arc<Mutex<HashMap<String, Entry>>>,
}

impl KeyCache {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            keys: Arc::default(),
        }
    }

    /// The key with this token hash and its organisation.
    pub async fn find(&self, token_hash: &str) -> Result<Option<(ApiKey, Organisation)>, Error> {
        if let Some((loaded, key, organisation)) = self.lock().get(token_hash) {
            if loaded.elapsed() < KEY_TTL {
                return Ok(Some((key.clone(), organisation.clone())));
            }
        }
        let found = tenancy::find_key_by_token_hash(&self.db, token_hash).await?;
        if let Some((key, organisation)) = &found {
            self.lock().insert(
                token_hash.to_owned(),
                (Instant::now(), key.clone(), organisation.clone()),
            );
        }
        Ok(found)
    }

    /// A key or an organisation changed: read them afresh.
    pub fn forget_all(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
