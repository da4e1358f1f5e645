//! The devnet's world state — current values, their history, the parcel registry, ID
//! counters and the transaction index — and the execution of one block of proposals
//! against it.
//!
//! A block executes against an [`Overlay`] on top of the committed state, so that later
//! transactions in a block see earlier ones, while readers of the node keep seeing only
//! blocks that are on disk. The overlay is merged once the block has been synced.
//!
//! - this file: what the state holds ([`WorldState`], [`Entry`], [`Stored`], [`Loc`],
//!   [`TxInfo`]) and how records are routed to channels ([`Routing`]);
//! - [`overlay`]: the pending changes of the block being built and their merge;
//! - [`execute`]: running a proposal against the overlay (the chaincode's effects);
//! - [`replay`]: decoding committed transactions read back from a block log;
//! - [`parcel`]: the parcel registry's fixed-size keys;
//! - [`tx_id`](mod@tx_id): the transaction ID of a proposal.

mod execute;
mod overlay;
mod parcel;
mod replay;
mod tx_id;

use std::collections::HashMap;
use std::sync::Arc;

use ledger::canonical::{sha256, Hash32};
use ledger::id::PropertyId;
use ledger::model::{Receipt, Record, Validation};

pub(crate) use execute::{BlockCtx, Executed, Proposed};
pub(crate) use overlay::{Changes, Overlay};
pub(crate) use parcel::{Parcel, ParcelMap};
pub(crate) use replay::{decode_committed, Decoded};
pub use tx_id::tx_id;
pub(crate) use tx_id::tx_id_of;

/// Index of a channel in the node's channel list.
pub(crate) type ChannelIx = u16;

/// Where a value version or a transaction sits on the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loc {
    pub channel: ChannelIx,
    pub block: u64,
    pub tx_index: u32,
    pub tx_id: Hash32,
}

/// One version of a value and where it was written.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub value: Stored,
    pub loc: Loc,
}

/// A value as a state holds it.
#[derive(Debug, Clone)]
pub(crate) enum Stored {
    /// Its canonical bytes (JCS, so serving and hashing need no re-encoding) and their
    /// hash: the node's state.
    Canonical { text: Arc<str>, hash: Hash32 },
    /// The record itself, in a state that only executes blocks (the seeder's, see
    /// [`WorldState::typed`]): the chaincode reads it without parsing it, its bytes are
    /// encoded once, into the block, and nobody asks for its hash.
    Record(Arc<Record>),
}

impl Entry {
    /// The value's canonical text.
    pub fn text(&self) -> Arc<str> {
        match &self.value {
            Stored::Canonical { text, .. } => text.clone(),
            // The encoder writes UTF-8 only.
            Stored::Record(r) => String::from_utf8(record_jcs(r)).unwrap_or_default().into(),
        }
    }

    /// The hash of the value's canonical text.
    pub fn hash(&self) -> Hash32 {
        match &self.value {
            Stored::Canonical { hash, .. } => *hash,
            Stored::Record(r) => sha256(&record_jcs(r)),
        }
    }
}

fn record_jcs(r: &Record) -> Vec<u8> {
    let mut jcs = Vec::new();
    r.encode_jcs(&mut jcs);
    jcs
}

/// What the node remembers of every committed transaction: enough to answer a resubmission
/// with the original receipt and to find the block for a proof.
#[derive(Debug, Clone)]
pub(crate) struct TxInfo {
    pub loc: Loc,
    pub validation: Validation,
    pub property_id: Option<Box<str>>,
}

impl TxInfo {
    pub fn receipt(&self) -> Receipt {
        let id = self.property_id.as_deref().map(str::to_string);
        receipt(self.loc, self.validation, id)
    }
}

/// The receipt of the transaction at `loc`.
pub(super) fn receipt(loc: Loc, validation: Validation, property_id: Option<String>) -> Receipt {
    Receipt {
        tx_id: loc.tx_id,
        block_number: loc.block,
        tx_index: u64::from(loc.tx_index),
        validation,
        property_id,
    }
}

/// How records are routed to channels.
#[derive(Debug, Clone)]
pub(crate) struct Routing {
    pub primary: ChannelIx,
    pub docs: ChannelIx,
    /// State code → its regional channel, for states with one.
    pub regional: HashMap<String, ChannelIx>,
    pub shards: u8,
}

impl Routing {
    pub fn records_channel(&self, state: &str) -> ChannelIx {
        self.regional.get(state).copied().unwrap_or(self.primary)
    }
}

#[derive(Default)]
pub(crate) struct WorldState {
    /// Whether blocks executed against this state keep records typed ([`Stored::Record`])
    /// rather than as canonical text, and build no transaction index: for a state that only
    /// executes blocks and is never served from (the seeder's, merged with
    /// [`Changes::merge_current_into`]).
    pub typed: bool,
    /// Key (property ID or `DOC:` key) → every version, oldest first.
    pub values: HashMap<Box<str>, Vec<Entry>>,
    /// Parcel → property ID holding it.
    pub parcels: ParcelMap<PropertyId>,
    /// (state, year, shard) → last issued sequence.
    pub counters: HashMap<([u8; 2], u16, u8), u64>,
    pub txs: HashMap<Hash32, TxInfo>,
}

impl WorldState {
    pub fn current(&self, key: &str) -> Option<&Entry> {
        self.values.get(key).and_then(|v| v.last())
    }
}

/// The (state, year, shard) whose sequence numbers a property ID draws from.
pub(crate) type CounterKey = ([u8; 2], u16, u8);

/// The counter `id` was issued from, if it is of the sharded form the devnet issues.
pub(crate) fn counter_of(id: &PropertyId) -> Option<CounterKey> {
    let mut st = [0u8; 2];
    st.copy_from_slice(id.state().as_bytes());
    id.shard().map(|shard| (st, id.year(), shard))
}
