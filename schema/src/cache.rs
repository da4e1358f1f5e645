//! The API node's caches (moka): properties by ID, location counts and search results.
//!
//! Invalidation comes from the change log (see `changes`): a property's entry is dropped when
//! a change to it is seen, the location counts on any change; search results are keyed by the
//! index generation they were computed on, so they retire when the index commits. A reader that raced a change —
//! loaded the old row, then the change was seen before it could insert — must not put the old
//! row back: each load notes the change-log position it started at, and the insert is skipped
//! if the listener has moved on since.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;

use crate::db::{LocationRow, PropertyRow};
use crate::services::CacheStats;

/// A property's key: the ID's parts, so that the three spellings of one ID share an entry.
pub(crate) type PropKey = (String, u16, Option<u8>, u64);

pub(crate) fn key(id: &ledger::PropertyId) -> PropKey {
    (id.state().to_string(), id.year(), id.shard(), id.sequence())
}

pub(crate) struct Counted<K, V> {
    pub cache: Cache<K, V>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<K, V> Counted<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn new(capacity: u64, ttl: Duration) -> Self {
        Counted {
            cache: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub async fn get(&self, k: &K) -> Option<V> {
        let v = self.cache.get(k).await;
        let counter = if v.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        v
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.cache.entry_count(),
        }
    }
}

/// A `locations` query's arguments: state, district, mandal.
pub(crate) type LocationKey = (Option<String>, Option<String>, Option<String>);

/// A search: the index generation it ran on, then the request (text, filter, first, after).
pub(crate) type SearchKey = (u64, String, String, usize, Option<String>);

pub(crate) struct Caches {
    pub properties: Counted<PropKey, Arc<PropertyRow>>,
    pub locations: Counted<LocationKey, Arc<Vec<LocationRow>>>,
    /// Keyed by the index generation, so a commit of the index retires every entry at once.
    pub searches: Counted<SearchKey, Arc<search_index::SearchResponse>>,
}

impl Caches {
    pub fn new(property_capacity: u64, property_ttl: Duration) -> Self {
        Caches {
            properties: Counted::new(property_capacity, property_ttl),
            locations: Counted::new(1_000, Duration::from_secs(300)),
            searches: Counted::new(10_000, Duration::from_secs(300)),
        }
    }
}
