//! Replica progress (`_meta`, `progress`) and change notifications.

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};

use super::Property;

#[derive(SimpleObject, Clone)]
pub struct Meta {
    pub channels: Vec<ChannelProgress>,
    /// Whether the sync worker recorded transactions it could not project.
    pub has_indexing_errors: bool,
    /// The last change-log seq this node has seen.
    pub change_log_seq: i64,
    /// The change-log seq the search index has committed (-1 without an index).
    pub search_index_seq: i64,
}

#[derive(SimpleObject, Clone)]
pub struct ChannelProgress {
    pub channel: String,
    /// The last block applied to the replica (-1 before the first).
    pub indexed_block: i64,
    /// Blocks on the chain; null when the ledger is unreachable.
    pub chain_height: Option<i64>,
    pub lag_blocks: Option<i64>,
    /// Since when the oldest block the replica lacks was first seen, in seconds.
    pub lag_seconds: Option<f64>,
    pub indexed_at: Option<DateTime<Utc>>,
    /// Outside the freshness bound (or the chain height unknown).
    pub stale: bool,
}

/// A committed change to a property, as the replica applied it.
#[derive(SimpleObject)]
pub struct PropertyChange {
    /// The property after the change (null if the replica no longer holds it).
    pub property: Option<Property>,
    pub event: String,
    pub block_number: i64,
    pub tx_id: String,
    pub channel: String,
    /// Position in the change log.
    pub seq: i64,
}
