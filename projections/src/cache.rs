//! Read-side answers kept in memory until the data under them changes.
//!
//! Whoever changes the data calls [`InvalidatedCache::forget`] (one key) or
//! [`InvalidatedCache::invalidate`] (all) after the change is committed. A
//! clock keeps a load that raced a change of its key (it read before the
//! commit, and finishes after the forgetting) from storing its stale answer.
//!
//! A key missed by many callers at once is loaded once ("single flight"):
//! the first caller loads, the others wait for its answer. Without it, 32
//! clients listing 200 000 endpoints right after a change each counted
//! them at once (the first answers took 1.5 s), and every publish after a
//! config change asked for its route at once.
use std::borrow::Borrow;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Held by the caller loading a key while the others wait on it.
type Flight = Arc<tokio::sync::Mutex<()>>;

pub struct InvalidatedCache<K, V> {
    state: Mutex<State<K, V>>,
    /// Past this many entries the cache starts over (keys may be unbounded,
    /// as with a list's date filters).
    capacity: usize,
    /// For data that may also change behind webhookd's back (say, edited
    /// by hand): how long an answer may be used at most.
    max_age: Option<Duration>,
    /// The loads under way, by key.
    flights: Mutex<HashMap<K, Flight>>,
}

struct State<K, V> {
    /// Counts changes; a load notes it when it starts.
    clock: u64,
    /// When every answer was last forgotten.
    invalidated_at: u64,
    entries: HashMap<K, Entry<V>>,
}

enum Entry<V> {
    Cached(V, Instant),
    /// Forgotten at this tick: a load of this key that started earlier
    /// may have read the old data, and is not stored. Other keys' loads
    /// are, so a busy key does not keep the rest of the cache empty.
    Forgotten(u64),
}

impl<K: Hash + Eq + Clone, V: Clone> InvalidatedCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                clock: 0,
                invalidated_at: 0,
                entries: HashMap::new(),
            }),
            capacity,
            max_age: None,
            flights: Mutex::new(HashMap::new()),
        }
    }

    /// A cache whose answers are used for `max_age` at most.
    pub fn with_max_age(capacity: usize, max_age: Duration) -> Self {
        Self {
            max_age: Some(max_age),
            ..Self::new(capacity)
        }
    }

    /// The cached answer for `key`, else `load`'s (stored unless the data
    /// under it changed meanwhile). While another caller loads `key`, this
    /// one waits for that answer; should it not have been stored (it
    /// failed, or raced a change), this caller loads for itself.
    pub async fn get_or_load<E, F>(&self, key: K, load: F) -> Result<V, E>
    where
        F: Future<Output = Result<V, E>>,
    {
        if let Ok(value) = self.cached(&key) {
            return Ok(value);
        }
        let flight = self.flight(&key);
        let leading = match flight.clone().try_lock_owned() {
            Ok(guard) => Some(Leading {
                cache: self,
                key: key.clone(),
                flight,
                _guard: guard,
            }),
            Err(_) => {
                // Another caller is loading: wait until it is done.
                drop(flight.lock().await);
                None
            }
        };
        // The tick is taken after waiting: a follower's own load must not
        // be stored over a change made while it waited.
        let started = match self.cached(&key) {
            Ok(value) => return Ok(value),
            Err(started) => started,
        };
        let value = load.await;
        if let Ok(value) = &value {
            self.store(key, value, started);
        }
        drop(leading);
        value
    }

    /// The flight of `key`: the one under way, or a new one.
    fn flight(&self, key: &K) -> Flight {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        flights.entry(key.clone()).or_default().clone()
    }

    /// Like [`Self::get_or_load`], but a `None` is not remembered: what is
    /// missing now may be added by someone webhookd does not hear from.
    /// The key is borrowed: a hit (every request's API key) copies nothing.
    pub async fn get_or_find<Q, E, F>(&self, key: &Q, find: F) -> Result<Option<V>, E>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        F: Future<Output = Result<Option<V>, E>>,
    {
        let started = match self.cached(key) {
            Ok(value) => return Ok(Some(value)),
            Err(started) => started,
        };
        let found = find.await?;
        if let Some(value) = &found {
            self.store(key.to_owned(), value, started);
        }
        Ok(found)
    }

    /// The answer for `key`, or the tick a load of it starts at.
    fn cached<Q>(&self, key: &Q) -> Result<V, u64>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let state = self.lock();
        match state.entries.get(key) {
            Some(Entry::Cached(value, stored))
                if self.max_age.is_none_or(|max| stored.elapsed() < max) =>
            {
                Ok(value.clone())
            }
            _ => Err(state.clock),
        }
    }

    /// Stores a load's answer, unless the data under it changed since the
    /// load started.
    fn store(&self, key: K, value: &V, started: u64) {
        let mut state = self.lock();
        let changed_since = match state.entries.get(&key) {
            _ if state.invalidated_at > started => true,
            Some(Entry::Forgotten(at)) => *at > started,
            // Another load stored it meanwhile (or an expired answer is
            // there): this one is as current.
            Some(Entry::Cached(..)) | None => false,
        };
        if !changed_since {
            if state.entries.len() >= self.capacity {
                state.forget_all();
            }
            state
                .entries
                .insert(key, Entry::Cached(value.clone(), Instant::now()));
        }
    }

    /// The data under `key` changed: forget its answer. Loads of it under
    /// way are not stored (they may have read before the change).
    pub fn forget(&self, key: K) {
        let mut state = self.lock();
        state.clock += 1;
        let now = state.clock;
        if state.entries.len() >= self.capacity {
            state.forget_all();
        }
        state.entries.insert(key, Entry::Forgotten(now));
    }

    /// The data changed: forget every answer; no load under way is stored.
    pub fn invalidate(&self) {
        self.lock().forget_all();
    }

    fn lock(&self) -> MutexGuard<'_, State<K, V>> {
        // A panic while holding the lock leaves a plain map: still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The caller loading a key. When its load is done — or dropped half-way —
/// the waiting callers go on and later misses start a new flight.
struct Leading<'a, K: Hash + Eq, V> {
    cache: &'a InvalidatedCache<K, V>,
    key: K,
    flight: Flight,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl<K: Hash + Eq, V> Drop for Leading<'_, K, V> {
    fn drop(&mut self) {
        let mut flights = self.cache.flights.lock().unwrap_or_else(|p| p.into_inner());
        if flights
            .get(&self.key)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
        {
            flights.remove(&self.key);
        }
    }
}

impl<K, V> State<K, V> {
    fn forget_all(&mut self) {
        self.clock += 1;
        self.invalidated_at = self.clock;
        self.entries.clear();
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Default for InvalidatedCache<K, V> {
    fn default() -> Self {
        Self::new(10_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    fn ready(value: u32) -> impl Future<Output = Result<u32, Infallible>> {
        std::future::ready(Ok(value))
    }

    async fn cached(cache: &InvalidatedCache<&'static str, u32>, key: &'static str) -> u32 {
        cache.get_or_load(key, ready(0)).await.unwrap()
    }

    #[tokio::test]
    async fn an_answer_stays_until_its_key_is_forgotten() {
        let cache = InvalidatedCache::new(10);
        assert_eq!(cache.get_or_load("a", ready(1)).await.unwrap(), 1);
        assert_eq!(cached(&cache, "a").await, 1);
        cache.forget("a");
        assert_eq!(cached(&cache, "a").await, 0);
    }

    #[tokio::test]
    async fn a_load_that_raced_a_change_of_its_key_is_not_stored() {
        let cache = InvalidatedCache::new(10);
        let load = async {
            cache.forget("a");
            Ok::<_, Infallible>(1)
        };
        assert_eq!(cache.get_or_load("a", load).await.unwrap(), 1);
        assert_eq!(cached(&cache, "a").await, 0, "the racing load was stored");
    }

    #[tokio::test]
    async fn a_change_of_another_key_does_not_stop_a_load_being_stored() {
        let cache = InvalidatedCache::new(10);
        let load = async {
            cache.forget("b");
            Ok::<_, Infallible>(1)
        };
        assert_eq!(cache.get_or_load("a", load).await.unwrap(), 1);
        assert_eq!(cached(&cache, "a").await, 1);
    }

    #[tokio::test]
    async fn invalidating_stops_every_load_under_way_being_stored() {
        let cache = InvalidatedCache::new(10);
        let load = async {
            cache.invalidate();
            Ok::<_, Infallible>(1)
        };
        assert_eq!(cache.get_or_load("a", load).await.unwrap(), 1);
        assert_eq!(cached(&cache, "a").await, 0);
    }

    #[tokio::test]
    async fn a_found_answer_is_kept_and_a_miss_is_not() {
        let cache = InvalidatedCache::with_max_age(10, Duration::from_secs(3600));
        assert_eq!(cache.get_or_find(&"a", ready_none()).await.unwrap(), None);
        assert_eq!(
            cache.get_or_find(&"a", ready_some(1)).await.unwrap(),
            Some(1)
        );
        assert_eq!(
            cache.get_or_find(&"a", ready_some(2)).await.unwrap(),
            Some(1)
        );
    }

    #[tokio::test]
    async fn an_answer_past_the_max_age_is_loaded_again() {
        // Every answer is past a max age of zero: no waiting needed.
        let cache = InvalidatedCache::with_max_age(10, Duration::ZERO);
        assert_eq!(
            cache.get_or_find(&"a", ready_some(1)).await.unwrap(),
            Some(1)
        );
        assert_eq!(
            cache.get_or_find(&"a", ready_some(2)).await.unwrap(),
            Some(2)
        );
    }

    fn ready_some(value: u32) -> impl Future<Output = Result<Option<u32>, Infallible>> {
        std::future::ready(Ok(Some(value)))
    }

    fn ready_none() -> impl Future<Output = Result<Option<u32>, Infallible>> {
        std::future::ready(Ok(None))
    }

    /// Callers that miss the same key at once load it once.
    #[tokio::test]
    async fn a_key_missed_by_many_at_once_is_loaded_once() {
        let cache = InvalidatedCache::new(10);
        let loads = std::sync::atomic::AtomicUsize::new(0);
        let answered = tokio::sync::Notify::new();
        let callers = (0..32).map(|_| {
            cache.get_or_load("a", async {
                loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                answered.notified().await;
                Ok::<_, Infallible>(7)
            })
        });
        let (answers, ()) = tokio::join!(futures_util::future::join_all(callers), async {
            // Every caller has missed and is waiting (one on the load).
            tokio::task::yield_now().await;
            answered.notify_waiters();
        });
        assert!(answers.into_iter().all(|a| a.unwrap() == 7));
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(
            cache.flights.lock().unwrap().is_empty(),
            "the flight landed"
        );
    }

    /// A load that fails is not waited for by the others in vain: each
    /// then loads for itself.
    #[tokio::test]
    async fn callers_behind_a_failed_load_load_for_themselves() {
        let cache: InvalidatedCache<&str, u32> = InvalidatedCache::new(10);
        let loads = std::sync::atomic::AtomicUsize::new(0);
        let answered = tokio::sync::Notify::new();
        let first = cache.get_or_load("a", async {
            loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            answered.notified().await;
            Err::<u32, &str>("the database is away")
        });
        let second = cache.get_or_load("a", async {
            loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, &str>(2)
        });
        let (first, second, ()) = tokio::join!(first, second, async {
            tokio::task::yield_now().await;
            answered.notify_waiters();
        });
        assert!(first.is_err());
        assert_eq!(second.unwrap(), 2);
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    /// A follower never takes an answer that raced a change of its key (it
    /// may have asked after the change was acknowledged): it loads anew.
    #[tokio::test]
    async fn callers_behind_a_load_that_raced_a_change_load_anew() {
        let cache = InvalidatedCache::new(10);
        let answered = tokio::sync::Notify::new();
        let first = cache.get_or_load("a", async {
            answered.notified().await;
            // The key changes while this load is under way.
            cache.forget("a");
            Ok::<_, Infallible>(1)
        });
        let second = cache.get_or_load("a", ready(2));
        let (first, second, ()) = tokio::join!(first, second, async {
            tokio::task::yield_now().await;
            answered.notify_waiters();
        });
        assert_eq!(first.unwrap(), 1);
        assert_eq!(second.unwrap(), 2, "the follower took the stale answer");
        assert_eq!(cached(&cache, "a").await, 2);
    }

    /// A loading caller that is dropped half-way (its client went away)
    /// leaves no flight behind: the next miss loads.
    #[tokio::test]
    async fn a_load_dropped_half_way_leaves_no_flight_behind() {
        let cache = InvalidatedCache::new(10);
        let leader = cache.get_or_load("a", std::future::pending::<Result<u32, Infallible>>());
        tokio::select! {
            biased;
            _ = leader => unreachable!("the load never ends"),
            () = tokio::task::yield_now() => {}
        }
        assert!(cache.flights.lock().unwrap().is_empty());
        assert_eq!(cache.get_or_load("a", ready(3)).await.unwrap(), 3);
    }

    #[tokio::test]
    async fn a_full_cache_starts_over_and_refuses_the_loads_it_raced() {
        let cache = InvalidatedCache::new(2);
        cache.get_or_load("a", ready(1)).await.unwrap();
        let load = async {
            // Fills the cache with tombstones: the next insert starts over,
            // which forgets "b"'s tombstone with the rest.
            cache.forget("b");
            cache.forget("c");
            Ok::<_, Infallible>(1)
        };
        cache.get_or_load("b", load).await.unwrap();
        assert_eq!(cached(&cache, "b").await, 0, "the racing load was stored");
    }
}
