//! A small thread-safe LRU cache for results that are expensive to recompute.
//!
//! Catalogue runs repeat themselves: the same rule sentence for every photo, the
//! same photo for every rule. The engine keeps what it computed for recent
//! images (keyed by a BLAKE3 hash of their bytes, `image_key`), sentences
//! and words, so a repeated input costs a hash lookup instead of a model
//! run. Bounded, so a worker's memory does not grow with the catalogue.

use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lru::LruCache;

/// A bounded map from keys to shared values.
#[derive(Debug)]
pub struct BoundedCache<K: Hash + Eq, V> {
    inner: Mutex<LruCache<K, Arc<V>>>,
    /// Lookups answered from the cache, and computed: reported in
    /// `/metrics` (`verdict_cache_hits_total`), which is how a run shows
    /// that repeated inputs were not recomputed.
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<K: Hash + Eq, V> BoundedCache<K, V> {
    /// A cache holding at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        BoundedCache {
            inner: Mutex::new(LruCache::new(capacity)),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The cached value for `key`, computing and storing it on a miss. The
    /// computation runs outside the lock; two threads that miss at once may
    /// both compute, which is harmless (the results are equal).
    pub fn get_or_try_insert<E>(
        &self,
        key: K,
        compute: impl FnOnce() -> Result<V, E>,
    ) -> Result<Arc<V>, E>
    where
        K: Clone,
    {
        if let Some(hit) = self.lock().get(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Arc::clone(hit));
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let value = Arc::new(compute()?);
        self.lock().put(key, Arc::clone(&value));
        Ok(value)
    }

    /// Stores `value` under `key`, replacing what was there (a fuller value
    /// computed after the first).
    pub fn insert(&self, key: K, value: Arc<V>) {
        self.lock().put(key, value);
    }

    /// Hits and misses since the cache was made (a miss is a computation,
    /// successful or not).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<K, Arc<V>>> {
        // A panic while holding the lock cannot leave the map inconsistent
        // (LruCache's operations are not interrupted half-way by our code), so a
        // poisoned lock is still usable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computes_once_and_evicts_the_least_recent() {
        let cache = BoundedCache::new(2);
        let calls = std::cell::Cell::new(0);
        let get = |k: u32| {
            *cache
                .get_or_try_insert(k, || {
                    calls.set(calls.get() + 1);
                    Ok::<_, ()>(k * 10)
                })
                .unwrap()
        };
        assert_eq!(get(1), 10);
        assert_eq!(get(1), 10);
        assert_eq!(get(2), 20);
        assert_eq!(get(3), 30); // evicts 1
        assert_eq!(get(1), 10); // recomputed
        assert_eq!(calls.get(), 4);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.counts(), (1, 4));
    }

    #[test]
    fn errors_are_not_cached() {
        let cache: BoundedCache<u8, u8> = BoundedCache::new(4);
        assert!(cache.get_or_try_insert(1, || Err("boom")).is_err());
        assert!(cache.is_empty());
        assert_eq!(*cache.get_or_try_insert(1, || Ok::<_, &str>(7)).unwrap(), 7);
    }
}
