//! The pending changes of the block being built ([`Overlay`]), read through by later
//! transactions of the same block, and detached as [`Changes`] to be merged into the world
//! state once the block is on disk.

use std::collections::HashMap;
use std::sync::Arc;

use ledger::canonical::{sha256, Hash32};
use ledger::id::PropertyId;

use super::{Entry, Loc, Parcel, ParcelMap, Stored, TxInfo, WorldState};

/// The pending changes of the block being built.
pub(crate) struct Overlay<'a> {
    pub(super) base: &'a WorldState,
    /// Writes in block order.
    pub(super) writes: Vec<(Box<str>, Entry)>,
    /// Key → index in `writes` of its latest pending version.
    pub(super) latest: HashMap<Box<str>, usize>,
    /// Parcels claimed (`Some`) or released (`None`) by the block.
    pub(super) parcels: ParcelMap<Option<PropertyId>>,
    pub(super) counters: HashMap<([u8; 2], u16, u8), u64>,
    /// Index entries of the block's transactions, in block order: nothing looks them up
    /// before the merge, which inserts them in this order (so a repeated tx_id ends up
    /// with its last entry, as with a map).
    pub(super) txs: Vec<(Hash32, TxInfo)>,
    /// The JCS of the value being written, in one buffer for the whole block: encoding
    /// each value into a fresh `Vec` grew it four or five times per record.
    pub(super) scratch: Vec<u8>,
}

impl<'a> Overlay<'a> {
    pub fn new(base: &'a WorldState) -> Self {
        Self {
            base,
            writes: Vec::new(),
            latest: HashMap::new(),
            parcels: ParcelMap::default(),
            counters: HashMap::new(),
            txs: Vec::new(),
            scratch: Vec::new(),
        }
    }

    pub fn current(&self, key: &str) -> Option<&Entry> {
        match self.latest.get(key) {
            Some(&i) => Some(&self.writes[i].1),
            None => self.base.current(key),
        }
    }

    pub(super) fn parcel_holder(&self, parcel: Parcel) -> Option<PropertyId> {
        match self.parcels.get(&parcel) {
            Some(v) => *v,
            None => self.base.parcels.get(&parcel).copied(),
        }
    }

    pub(super) fn next_sequence(&mut self, st: [u8; 2], year: u16, shard: u8) -> u64 {
        let base = self.base.counters.get(&(st, year, shard)).copied();
        let c = self
            .counters
            .entry((st, year, shard))
            .or_insert(base.unwrap_or(0));
        *c += 1;
        *c
    }

    /// Records a pending write of `value`.
    pub(super) fn put(&mut self, key: &str, value: Stored, loc: Loc) {
        let entry = Entry { value, loc };
        self.latest.insert(key.into(), self.writes.len());
        self.writes.push((key.into(), entry));
    }

    /// `self.scratch`, which holds a value's JCS, as shared text with its hash.
    pub(super) fn canonical(&self) -> (Arc<str>, Hash32) {
        // JCS output of a serde_json value is UTF-8 by construction.
        let text: Arc<str> = std::str::from_utf8(&self.scratch)
            .unwrap_or_default()
            .into();
        let hash = sha256(text.as_bytes());
        (text, hash)
    }

    /// Folds the block into the committed state.
    pub fn into_changes(self) -> Changes {
        Changes {
            writes: self.writes,
            parcels: self.parcels,
            counters: self.counters,
            txs: self.txs,
        }
    }
}

/// An executed block's changes, detached from the state so they can be merged after sync.
pub(crate) struct Changes {
    writes: Vec<(Box<str>, Entry)>,
    parcels: ParcelMap<Option<PropertyId>>,
    counters: HashMap<([u8; 2], u16, u8), u64>,
    txs: Vec<(Hash32, TxInfo)>,
}

impl Changes {
    /// Each pending write's key and the hash of the bytes the node will serve for it.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn written(&self) -> impl Iterator<Item = (&str, Hash32)> {
        self.writes.iter().map(|(k, e)| (&**k, e.hash()))
    }

    /// Folds the block into the committed state, history and transaction index included
    /// (the live node and opening a data directory).
    pub fn merge_into(self, state: &mut WorldState) {
        self.merge(state, true);
    }

    /// [`Changes::merge_into`] for a state that only executes blocks (the seeder's): each
    /// key keeps only its current version and the transaction index is not kept. The
    /// chaincode sees the state only through current values, parcels and counters (see
    /// [`Overlay`]), so its results are the same; the history and the index are what a
    /// node rebuilds from the logs when it opens them. Keeping them while seeding a million
    /// records cost over a gigabyte and much of the time, spent in fresh pages and rehashes.
    pub fn merge_current_into(self, state: &mut WorldState) {
        self.merge(state, false);
    }

    /// Folds the block into `state`, appending each write to its key's versions and the
    /// transaction index when `history`, else replacing the versions with the write.
    fn merge(self, state: &mut WorldState, history: bool) {
        for (k, e) in self.writes {
            match state.values.get_mut(&k) {
                Some(versions) => {
                    if !history {
                        versions.clear();
                    }
                    versions.push(e);
                }
                None => {
                    state.values.insert(k, vec![e]);
                }
            }
        }
        for (k, v) in self.parcels {
            match v {
                Some(id) => state.parcels.insert(k, id),
                None => state.parcels.remove(&k),
            };
        }
        state.counters.extend(self.counters);
        if history {
            state.txs.extend(self.txs);
        }
    }
}
