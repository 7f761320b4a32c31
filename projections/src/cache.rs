//! Read-side answers kept in memory until the data under them changes.
//!
//! Whoever changes the data calls [`InvalidatedCache::invalidate`] after the
//! change is committed. A generation counter keeps a load that raced a
//! change (it read before the commit, and finishes after the invalidation)
//! from storing its stale answer.
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

pub struct InvalidatedCache<K, V> {
    generation: AtomicU64,
    entries: Mutex<HashMap<K, V>>,
    /// Past this many entries the cache starts over (keys may be unbounded,
    /// as with a list's date filters).
    capacity: usize,
}

impl<K: Hash + Eq, V: Clone> InvalidatedCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            generation: AtomicU64::new(0),
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The cached answer for `key`, else `load`'s (stored unless the data
    /// changed meanwhile).
    pub async fn get_or_load<E, F>(&self, key: K, load: F) -> Result<V, E>
    where
        F: Future<Output = Result<V, E>>,
    {
        if let Some(value) = self.lock().get(&key) {
            return Ok(value.clone());
        }
        let generation = self.generation.load(Ordering::Acquire);
        let value = load.await?;
        let mut entries = self.lock();
        if self.generation.load(Ordering::Acquire) == generation {
            if entries.len() >= self.capacity {
                entries.clear();
            }
            entries.insert(key, value.clone());
        }
        Ok(value)
    }

    /// The data under `key` changed: forget its answer. Loads under way for
    /// any key are not stored (they may have read before the change).
    pub fn forget(&self, key: &K) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.remove(key);
    }

    /// The data changed: forget every answer.
    pub fn invalidate(&self) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, V>> {
        // A panic while holding the lock leaves a plain map: still usable.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<K: Hash + Eq, V: Clone> Default for InvalidatedCache<K, V> {
    fn default() -> Self {
        Self::new(10_000)
    }
}
