//! Time travel: a property as it stood after a block of its channel (`asOfBlock`) or at a
//! ledger time (`asOf`), from the history the read model keeps (`property_versions`).
//!
//! Block numbers are per channel: a property lives on one channel, and `asOfBlock: N` means
//! "after block N of that channel". A time means "the versions committed (ledger time) at or
//! before it".
//!
//! The policy follows the consistency levels of current reads:
//! - The replica answers when its history covers the point: for a block, when it has applied
//!   that block of the property's channel (a cut block never changes, so such an answer is
//!   final and never stale); for a time, when the replica already holds a later version, or
//!   has applied the chain up to its tip. The checkpoint is read in the same statement as the
//!   version, so the two agree.
//! - Otherwise FRESH and LEDGER read the ledger's history (`Ledger::history`, a Fabric peer's
//!   GetHistoryForKey), and the answer says `source: LEDGER`. REPLICA refuses a block beyond
//!   its checkpoint with REPLICA_BEHIND, naming the checkpoint; for a time it answers from
//!   what it holds, marked stale.
//! - A block the chain has not cut yet is refused (BAD_USER_INPUT, naming the tip). Before
//!   the record existed the answer is null.

use std::sync::Arc;

use async_graphql::Result;
use ledger::client::LedgerError;
use ledger::model::{Record, RecordVersion};
use ledger::PropertyId;

use crate::db::{record_hash, AsOf, AsOfRow, Historical, PropertyRow, VersionRef, VersionRow};
use crate::errors::{bad_input, db_error, internal, ledger_unavailable, replica_behind};
use crate::query::replica_property;
use crate::routing::Served;
use crate::services::Services;
use crate::types::property::ms_time;
use crate::types::{Consistency, Source};

/// The property as it stood at `at`, under `consistency` (see the module's policy).
pub(crate) async fn property_as_of(
    s: &Services,
    id: &PropertyId,
    at: AsOf,
    consistency: Consistency,
) -> Result<Option<Arc<PropertyRow>>> {
    if let AsOf::Block(b) = at {
        if b < 0 {
            return Err(bad_input(format!(
                "`asOfBlock` must be a block number (0 or more), got {b}"
            )));
        }
    }
    if consistency == Consistency::Ledger {
        return ledger_as_of(s, id, at).await;
    }
    let Some(current) = replica_property(s, id).await? else {
        // Not in the replica: under FRESH it may be newer than the replica.
        return match consistency {
            Consistency::Replica => Ok(None),
            _ => ledger_as_of(s, id, at).await,
        };
    };
    let channel = current.version.channel.clone();
    let row =
        s.0.db
            .version_as_of(&current.id, &channel, at)
            .await
            .map_err(db_error)?;
    let covered = match at {
        AsOf::Block(b) => row.applied.is_some_and(|a| b <= a),
        AsOf::Time(_) => row.next.is_some() || at_tip(s, &channel, row.applied),
    };
    if covered && (row.intact || consistency == Consistency::Replica) {
        return replica_answer(row, false);
    }
    let key: PropertyId = current.id.parse().unwrap_or(*id);
    match (consistency, at) {
        (Consistency::Replica, AsOf::Block(b)) => {
            beyond_tip(s, &channel, b)?;
            Err(replica_behind(&channel, row.applied, b))
        }
        (Consistency::Replica, AsOf::Time(_)) => replica_answer(row, true),
        (_, AsOf::Block(_)) => ledger_as_of(s, &key, at).await,
        // A time the replica may not cover: the ledger's answer, or, when the ledger cannot
        // be asked, what the replica holds, marked stale (as FRESH does for current reads).
        (_, AsOf::Time(_)) => match ledger_as_of(s, &key, at).await {
            Ok(answer) => Ok(answer),
            Err(e) if row.intact => {
                tracing::warn!(id = %key, error = %e.message, "as-of read from the ledger failed; serving the replica's history marked stale");
                replica_answer(row, true)
            }
            Err(e) => Err(e),
        },
    }
}

/// Whether the replica has applied `channel` up to the chain's tip (as last polled).
fn at_tip(s: &Services, channel: &str, applied: Option<i64>) -> bool {
    let view = s.0.freshness.channel(channel);
    match (view.chain_height, applied) {
        (Some(height), Some(applied)) => height as i64 <= applied + 1,
        _ => false,
    }
}

/// Refuses a block the chain (as last polled) has not cut yet.
fn beyond_tip(s: &Services, channel: &str, block: i64) -> Result<()> {
    match s.0.freshness.channel(channel).chain_height {
        Some(height) if block >= height as i64 => Err(not_cut(channel, block, height)),
        _ => Ok(()),
    }
}

fn not_cut(channel: &str, block: i64, height: u64) -> async_graphql::Error {
    bad_input(format!(
        "block {block} of channel {channel} has not been cut yet: the chain's last block is {}",
        height.saturating_sub(1)
    ))
}

fn replica_answer(row: AsOfRow, incomplete: bool) -> Result<Option<Arc<PropertyRow>>> {
    let Some(v) = row.version else {
        return Ok(None);
    };
    let next = row.next;
    Ok(Some(Arc::new(historical_row(
        v, row.intact, next, incomplete,
    )?)))
}

fn historical_row(
    v: VersionRow,
    intact: bool,
    superseded_by: Option<VersionRef>,
    incomplete: bool,
) -> Result<PropertyRow> {
    let hash = record_hash(&v.record).map_err(|e| internal(&e))?;
    let record: Record = serde_json::from_value(v.record).map_err(|e| {
        internal(&format!(
            "history record of {} does not decode: {e}",
            v.property_id
        ))
    })?;
    Ok(PropertyRow {
        id: v.property_id,
        record,
        record_hash: hash,
        intact,
        served: v.served,
        version: v.version,
        source: Source::Replica,
        sort: Default::default(),
        historical: Some(Historical {
            committed_at: v.committed_at,
            superseded_by,
            incomplete,
        }),
    })
}

/// A version from the ledger's history, decoded.
pub(crate) struct LedgerVersionAt {
    pub record: Record,
    /// The ledger's record hash, as it sent it.
    pub record_hash: ledger::Hash32,
    /// The hash recomputed from the record as received (what an answer serves).
    pub served_hash: String,
    pub version: VersionRef,
}

/// The ledger's versions of a property as of `at`: the one in force, and the one after it.
/// A block not cut yet is refused (the chain's height is asked for, not taken from the
/// last poll).
pub(crate) async fn ledger_versions_as_of(
    s: &Services,
    id: &PropertyId,
    at: AsOf,
) -> Result<(Option<LedgerVersionAt>, Option<VersionRef>)> {
    let i = &s.0;
    let timeout = i.config.ledger_timeout;
    let history = match tokio::time::timeout(timeout, i.ledger.history(id)).await {
        Ok(Ok(h)) => h,
        Ok(Err(LedgerError::Refused { message, .. })) => {
            return Err(bad_input(format!(
                "the ledger refused the history lookup: {message}"
            )))
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, id = %id, "ledger history read failed");
            return Err(ledger_unavailable("history lookup"));
        }
        Err(_) => return Err(ledger_unavailable("history lookup timed out")),
    };
    let mut versions = Vec::with_capacity(history.len());
    for rv in history {
        versions.push(decode(id, rv)?);
    }
    if let (AsOf::Block(b), Some(first)) = (at, versions.first()) {
        let channel = first.version.channel.clone();
        let info = match tokio::time::timeout(timeout, i.ledger.info()).await {
            Ok(Ok(info)) => info,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "ledger info failed");
                return Err(ledger_unavailable("chain height"));
            }
            Err(_) => return Err(ledger_unavailable("chain height timed out")),
        };
        if let Some(c) = info.channels.iter().find(|c| c.name == channel) {
            if b >= c.height as i64 {
                return Err(not_cut(&channel, b, c.height));
            }
        }
    }
    // The chaincode stamps every write's `updated_at` with its transaction's time, so that
    // is the version's commit time.
    let Some(p) = versions.iter().rposition(|v| match at {
        AsOf::Block(b) => v.version.block_number <= b,
        AsOf::Time(t) => ms_time(v.record.updated_at) <= t,
    }) else {
        return Ok((None, None));
    };
    let next = versions.get(p + 1).map(|v| v.version.clone());
    Ok((Some(versions.swap_remove(p)), next))
}

fn decode(id: &PropertyId, rv: RecordVersion) -> Result<LedgerVersionAt> {
    let served_hash = record_hash(&rv.record).map_err(|e| internal(&e))?;
    let record: Record = serde_json::from_value(rv.record).map_err(|e| {
        internal(&format!(
            "the ledger's history record of {id} does not decode: {e}"
        ))
    })?;
    Ok(LedgerVersionAt {
        record,
        record_hash: rv.record_hash,
        served_hash,
        version: VersionRef {
            channel: rv.version.channel,
            block_number: rv.version.block_number as i64,
            tx_index: rv.version.tx_index as i64,
            tx_id: rv.version.tx_id.to_hex(),
        },
    })
}

/// The property as of `at` from the ledger's history.
async fn ledger_as_of(s: &Services, id: &PropertyId, at: AsOf) -> Result<Option<Arc<PropertyRow>>> {
    let (found, next) = ledger_versions_as_of(s, id, at).await?;
    let Some(v) = found else { return Ok(None) };
    Ok(Some(Arc::new(PropertyRow {
        id: v.record.property_id.to_string(),
        record_hash: v.served_hash,
        intact: true,
        // Read from the ledger (`source`), not from a database.
        served: Served::default(),
        historical: Some(Historical {
            committed_at: ms_time(v.record.updated_at),
            superseded_by: next,
            incomplete: false,
        }),
        record: v.record,
        version: v.version,
        source: Source::Ledger,
        sort: Default::default(),
    })))
}
