//! Replica progress (`_meta`, `progress`) and change notifications.

use async_graphql::{ComplexObject, Context, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::{PageInfo, Property};
use crate::cursor;
use crate::errors::db_error;
use crate::services::Services;

#[ComplexObject]
impl Meta {
    /// This node's region: the one whose replica it reads first (null when it reads the
    /// primary only).
    async fn region(&self, ctx: &Context<'_>) -> Option<String> {
        let s = ctx.data_unchecked::<Services>();
        s.0.db.router().home().map(str::to_string)
    }

    /// The databases this node reads, in order of preference (its region's replica, the
    /// other replicas nearest first, the primary), how far each trails the primary, and
    /// which one answers now.
    async fn databases(&self, ctx: &Context<'_>) -> Vec<DatabaseProgress> {
        let s = ctx.data_unchecked::<Services>();
        s.databases()
            .into_iter()
            .map(|d| DatabaseProgress {
                name: d.name,
                role: d.role,
                region: d.region,
                up: d.up,
                lag_bytes: d.lag_bytes.map(|b| b as f64),
                lag_blocks: d.lag_blocks.map(|b| i64::try_from(b).unwrap_or(i64::MAX)),
                usable: d.usable,
                reading: d.reading,
            })
            .collect()
    }

    /// What the sync worker could not project (newest first): the transaction, the error,
    /// and the input as received. Operational detail for the registrar and admin roles
    /// (FORBIDDEN for others).
    #[graphql(guard = "crate::auth::Operators { what: \"`syncErrors`\" }")]
    async fn sync_errors(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> Result<SyncErrorConnection> {
        let s = ctx.data_unchecked::<Services>();
        let limit = super::page_size(ctx, first)?;
        let before: Option<i64> = after
            .as_deref()
            .map(|c| cursor::decode("syncErrors", c))
            .transpose()?;
        let mut rows =
            s.0.db
                .sync_errors(before, limit + 1)
                .await
                .map_err(db_error)?;
        let has_next = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let edges: Vec<SyncErrorEdge> = rows
            .into_iter()
            .map(|node| SyncErrorEdge {
                cursor: cursor::encode("syncErrors", node.id),
                node,
            })
            .collect();
        Ok(SyncErrorConnection {
            page_info: PageInfo {
                has_next_page: has_next,
                has_previous_page: before.is_some(),
                start_cursor: edges.first().map(|e| e.cursor.clone()),
                end_cursor: edges.last().map(|e| e.cursor.clone()),
            },
            edges,
        })
    }
}

/// A database an API node reads, as its router last measured it.
#[derive(SimpleObject)]
pub struct DatabaseProgress {
    /// `primary`, or `replica` and the region.
    pub name: String,
    pub role: crate::routing::DatabaseRole,
    pub region: Option<String>,
    /// Answered its last probe (or statement).
    pub up: bool,
    /// WAL bytes the replica has not replayed; null when the primary does not answer.
    pub lag_bytes: Option<f64>,
    /// Blocks the primary has applied and the replica has not, over all channels; null when
    /// the primary does not answer.
    pub lag_blocks: Option<i64>,
    /// Answering and within the bound: reads may go to it.
    pub usable: bool,
    /// Reads go to it now.
    pub reading: bool,
}

/// A page of sync errors.
#[derive(SimpleObject)]
pub struct SyncErrorConnection {
    pub edges: Vec<SyncErrorEdge>,
    pub page_info: PageInfo,
}

#[derive(SimpleObject)]
pub struct SyncErrorEdge {
    pub cursor: String,
    pub node: SyncError,
}

/// A transaction (or whole block) the sync worker recorded instead of projecting it.
#[derive(SimpleObject)]
pub struct SyncError {
    /// Increasing in the order the errors were recorded.
    pub id: i64,
    pub channel: String,
    pub block_number: i64,
    /// Null when the whole block was at fault.
    pub tx_index: Option<i64>,
    pub tx_id: Option<String>,
    /// What went wrong, as the sync worker put it.
    pub error: String,
    /// The offending input as text (it may not be valid JSON).
    pub raw: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Meta {
    pub channels: Vec<ChannelProgress>,
    /// Whether the sync worker recorded transactions it could not project (open to all;
    /// the errors themselves are `syncErrors`).
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
