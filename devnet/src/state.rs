//! The devnet's world state — current values, their history, the parcel registry, ID
//! counters and the transaction index — and the execution of one block of proposals
//! against it.
//!
//! A block executes against an [`Overlay`] on top of the committed state, so that later
//! transactions in a block see earlier ones, while readers of the node keep seeing only
//! blocks that are on disk. The overlay is merged once the block has been synced.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use serde_json::Value;

use crate::chaincode::{self, *};
use ledger::canonical::{
    sha256, to_jcs, value_to_jcs, write_int, write_jcs, write_str, CanonicalError, Hash32,
};
use ledger::id::PropertyId;
use ledger::model::{
    Document, Event, Proposal, Receipt, Record, Transaction, TxKind, Validation,
    VerificationStatus, Write,
};

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
fn receipt(loc: Loc, validation: Validation, property_id: Option<String>) -> Receipt {
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

    /// Applies a committed transaction read back from a block log and decoded by
    /// [`decode_committed`].
    pub fn apply_decoded(&mut self, channel: ChannelIx, block: u64, tx_index: u32, tx: Decoded) {
        let loc = Loc {
            channel,
            block,
            tx_index,
            tx_id: tx.tx_id,
        };
        self.txs.insert(
            tx.tx_id,
            TxInfo {
                loc,
                validation: tx.validation,
                property_id: tx.property_id,
            },
        );
        for w in tx.writes {
            if let Some((parcel, id, counter)) = w.record {
                if let Some(Stored::Canonical { text, .. }) = self.current(&w.key).map(|e| &e.value)
                {
                    if let Some(old_key) = stored_parcel_key(text) {
                        self.parcels.remove(&Parcel::of(&old_key));
                    }
                }
                self.parcels.insert(parcel, id);
                if let Some((at, seq)) = counter {
                    let c = self.counters.entry(at).or_default();
                    *c = (*c).max(seq);
                }
            }
            let entry = Entry {
                value: Stored::Canonical {
                    text: w.text,
                    hash: w.hash,
                },
                loc,
            };
            match self.values.get_mut(&w.key) {
                Some(versions) => versions.push(entry),
                None => {
                    self.values.insert(w.key, vec![entry]);
                }
            }
        }
    }
}

/// A committed transaction decoded from a stored block, ready for
/// [`WorldState::apply_decoded`]. Decoding needs no state, so a block's transactions are
/// decoded in parallel and only applied in order.
pub(crate) struct Decoded {
    tx_id: Hash32,
    validation: Validation,
    property_id: Option<Box<str>>,
    /// Empty unless the transaction is valid.
    writes: Vec<DecodedWrite>,
}

struct DecodedWrite {
    key: Box<str>,
    /// The value's JCS text and its hash.
    text: Arc<str>,
    hash: Hash32,
    /// For a record: its parcel, its ID and the ID's (state, year, shard) counter position.
    record: Option<(Parcel, PropertyId, Option<Counter>)>,
}

type Counter = (CounterKey, u64);

/// The (state, year, shard) whose sequence numbers a property ID draws from.
pub(crate) type CounterKey = ([u8; 2], u16, u8);

/// The counter `id` was issued from, if it is of the sharded form the devnet issues.
pub(crate) fn counter_of(id: &PropertyId) -> Option<CounterKey> {
    let mut st = [0u8; 2];
    st.copy_from_slice(id.state().as_bytes());
    id.shard().map(|shard| (st, id.year(), shard))
}

/// A committed transaction as stored, with `args` and each write's value left as raw
/// text: only invalid transactions need their args parsed, and a value's stored text is
/// its canonical form already (checked in [`decode_committed`]).
#[derive(serde::Deserialize)]
struct StoredTx<'a> {
    #[serde(borrow)]
    args: &'a serde_json::value::RawValue,
    #[serde(borrow)]
    #[allow(dead_code)] // required, as in a Transaction, but not needed to rebuild state
    creator: &'a serde_json::value::RawValue,
    event: Option<Event>,
    #[allow(dead_code)]
    kind: TxKind,
    #[allow(dead_code)]
    timestamp: i64,
    tx_id: Hash32,
    validation: Validation,
    #[serde(borrow)]
    writes: Vec<StoredWrite<'a>>,
}

#[derive(serde::Deserialize)]
struct StoredWrite<'a> {
    key: String,
    #[serde(borrow)]
    value: &'a serde_json::value::RawValue,
}

/// Decodes one stored transaction (its JSON text inside a block) for
/// [`WorldState::apply_decoded`]: what the node serves under each key is the JCS of the
/// written value and its hash. The stored text is used as it is when it is already
/// canonical — the node writes values so — which is checked by re-encoding the typed value
/// and comparing bytes; anything else is canonicalised from its JSON tree.
pub(crate) fn decode_committed(raw: &str) -> Result<Decoded, String> {
    let tx: StoredTx<'_> = serde_json::from_str(raw).map_err(|e| e.to_string())?;
    let property_id = match &tx.event {
        Some(e) => Some(e.id.clone().into_boxed_str()),
        None => {
            let args: Value = serde_json::from_str(tx.args.get()).map_err(|e| e.to_string())?;
            chaincode::named_property(&args).map(String::into_boxed_str)
        }
    };
    let mut writes = Vec::new();
    if tx.validation == Validation::Valid {
        writes.reserve(tx.writes.len());
        for w in tx.writes {
            let stored = w.value.get();
            let (text, record) = if w.key.starts_with("DOC:") {
                let canonical = serde_json::from_str::<Document>(stored)
                    .ok()
                    .and_then(|d| to_jcs(&d).ok())
                    .is_some_and(|b| b == stored.as_bytes());
                (canonical_text(stored, canonical)?, None)
            } else {
                let record: Record = serde_json::from_str(stored).map_err(|e| e.to_string())?;
                let mut jcs = Vec::with_capacity(stored.len());
                record.encode_jcs(&mut jcs);
                let canonical = jcs == stored.as_bytes();
                let id = record.property_id;
                let counter = counter_of(&id).map(|at| (at, id.sequence()));
                (
                    canonical_text(stored, canonical)?,
                    Some((Parcel::of(&parcel_key(&record)), id, counter)),
                )
            };
            writes.push(DecodedWrite {
                key: w.key.into_boxed_str(),
                hash: sha256(text.as_bytes()),
                text: text.into(),
                record,
            });
        }
    }
    Ok(Decoded {
        tx_id: tx.tx_id,
        validation: tx.validation,
        property_id,
        writes,
    })
}

/// `stored` itself when `canonical`, else the JCS of the JSON it holds.
fn canonical_text(stored: &str, canonical: bool) -> Result<String, String> {
    if canonical {
        return Ok(stored.to_string());
    }
    let value: Value = serde_json::from_str(stored).map_err(|e| e.to_string())?;
    let bytes = value_to_jcs(&value).map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

/// The parcel key of a stored record's text, reading only the fields it is made of.
fn stored_parcel_key(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Parcel<'a> {
        #[serde(borrow)]
        state: std::borrow::Cow<'a, str>,
        #[serde(borrow)]
        district: std::borrow::Cow<'a, str>,
        #[serde(borrow)]
        mandal: std::borrow::Cow<'a, str>,
        #[serde(borrow)]
        village: std::borrow::Cow<'a, str>,
        #[serde(borrow)]
        survey_no: std::borrow::Cow<'a, str>,
    }
    let p: Parcel<'_> = serde_json::from_str(text).ok()?;
    Some(chaincode::parcel_key_of(
        &p.state,
        &p.district,
        &p.mandal,
        &p.village,
        &p.survey_no,
    ))
}

/// A parcel as the registry holds it: the first 128 bits of the sha256 of its key
/// ([`chaincode::parcel_key`]).
///
/// Fixed-size rather than the key's text: the registry of a million parcels held as
/// strings was the largest part of the seeder's memory (≈ 180 MB in two million
/// allocations), and first touches of memory are slow on VMs. A cryptographic hash, so
/// that no two parcels share an entry, by accident or by design.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Parcel(u128);

impl Parcel {
    pub fn of(key: &str) -> Self {
        let mut first = [0u8; 16];
        first.copy_from_slice(&sha256(key.as_bytes()).0[..16]);
        Parcel(u128::from_le_bytes(first))
    }
}

/// A map keyed by [`Parcel`]s, which are uniformly distributed already: hashing them
/// again (SipHash, the default) would only cost time.
pub(crate) type ParcelMap<V> = HashMap<Parcel, V, BuildHasherDefault<ParcelHasher>>;

/// Takes a [`Parcel`]'s low 64 bits as its hash.
#[derive(Default)]
pub(crate) struct ParcelHasher(u64);

impl Hasher for ParcelHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Not reached for a `Parcel` (its Hash writes one u128), but correct for any input.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The pending changes of the block being built.
pub(crate) struct Overlay<'a> {
    base: &'a WorldState,
    /// Writes in block order.
    writes: Vec<(Box<str>, Entry)>,
    /// Key → index in `writes` of its latest pending version.
    latest: HashMap<Box<str>, usize>,
    /// Parcels claimed (`Some`) or released (`None`) by the block.
    parcels: ParcelMap<Option<PropertyId>>,
    counters: HashMap<([u8; 2], u16, u8), u64>,
    /// Index entries of the block's transactions, in block order: nothing looks them up
    /// before the merge, which inserts them in this order (so a repeated tx_id ends up
    /// with its last entry, as with a map).
    txs: Vec<(Hash32, TxInfo)>,
    /// The JCS of the value being written, in one buffer for the whole block: encoding
    /// each value into a fresh `Vec` grew it four or five times per record.
    scratch: Vec<u8>,
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

    fn parcel_holder(&self, parcel: Parcel) -> Option<PropertyId> {
        match self.parcels.get(&parcel) {
            Some(v) => *v,
            None => self.base.parcels.get(&parcel).copied(),
        }
    }

    fn next_sequence(&mut self, st: [u8; 2], year: u16, shard: u8) -> u64 {
        let base = self.base.counters.get(&(st, year, shard)).copied();
        let c = self
            .counters
            .entry((st, year, shard))
            .or_insert(base.unwrap_or(0));
        *c += 1;
        *c
    }

    /// Records a pending write of `value`.
    fn put(&mut self, key: &str, value: Stored, loc: Loc) {
        let entry = Entry { value, loc };
        self.latest.insert(key.into(), self.writes.len());
        self.writes.push((key.into(), entry));
    }

    /// `self.scratch`, which holds a value's JCS, as shared text with its hash.
    fn canonical(&self) -> (Arc<str>, Hash32) {
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

/// Everything about the block being built that a transaction needs.
pub(crate) struct BlockCtx<'r> {
    pub channel: ChannelIx,
    pub number: u64,
    pub timestamp: i64,
    pub routing: &'r Routing,
}

/// One executed transaction: its committed form with the parts that cost most to encode
/// (args, the written value) already canonical, and the receipt.
///
/// The committed [`Transaction`] holds the written value as a `serde_json::Value`; building
/// that tree only to print it again was a large part of sealing a block. [`Executed::encode`]
/// writes the transaction's JCS straight from these parts instead, and
/// [`Executed::into_transaction`] builds the tree only for callers that want it.
pub(crate) struct Executed {
    pub tx_id: Hash32,
    pub kind: TxKind,
    pub creator: String,
    pub timestamp: i64,
    pub args: Value,
    /// JCS of `args`, when known before execution.
    pub args_jcs: Option<Vec<u8>>,
    /// The key written and its value (shared with the world state's entry).
    pub write: Option<(String, Stored)>,
    pub event: Option<Event>,
    pub validation: Validation,
    pub receipt: Receipt,
    pub why: Option<String>,
    /// The record written, typed (the seeder remembers it without parsing it back).
    pub record: Option<Arc<Record>>,
}

impl Executed {
    /// Appends the transaction's JCS to `out`: the same bytes as
    /// `to_jcs(&self.into_transaction())`, in the field order of [`Transaction`].
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
        out.extend_from_slice(b"{\"args\":");
        match &self.args_jcs {
            Some(a) => out.extend_from_slice(a),
            None => serde_json::to_writer(&mut *out, &ledger::canonical::Canonical(&self.args))?,
        }
        out.extend_from_slice(b",\"creator\":");
        write_str(&self.creator, out);
        out.extend_from_slice(b",\"event\":");
        match &self.event {
            Some(e) => e.encode_jcs(out)?,
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"kind\":");
        serde_json::to_writer(&mut *out, &self.kind)?;
        out.extend_from_slice(b",\"timestamp\":");
        write_int(self.timestamp, out);
        out.extend_from_slice(b",\"tx_id\":");
        self.tx_id.write_json(out);
        out.extend_from_slice(b",\"validation\":");
        serde_json::to_writer(&mut *out, &self.validation)?;
        out.extend_from_slice(b",\"writes\":[");
        if let Some((key, value)) = &self.write {
            out.extend_from_slice(b"{\"key\":");
            write_str(key, out);
            out.extend_from_slice(b",\"value\":");
            match value {
                Stored::Canonical { text, .. } => out.extend_from_slice(text.as_bytes()),
                Stored::Record(r) => r.encode_jcs(out),
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
        Ok(())
    }

    /// The committed transaction as the model type (the written value parsed into a tree).
    pub fn into_transaction(self) -> Result<Transaction, CanonicalError> {
        let args = match &self.args_jcs {
            // The arguments may have come typed, leaving `args` null (see `Proposed`).
            Some(jcs) => serde_json::from_slice(jcs)?,
            None => self.args,
        };
        let writes = match self.write {
            Some((key, value)) => vec![Write {
                key,
                value: match value {
                    Stored::Canonical { text, .. } => serde_json::from_str(&text)?,
                    Stored::Record(r) => serde_json::to_value(&*r)?,
                },
            }],
            None => Vec::new(),
        };
        Ok(Transaction {
            tx_id: self.tx_id,
            kind: self.kind,
            creator: self.creator,
            timestamp: self.timestamp,
            args,
            writes,
            event: self.event,
            validation: self.validation,
        })
    }
}

/// Year of a Unix-millisecond timestamp (UTC), for new property IDs.
pub(crate) fn year_of(ms: i64) -> u16 {
    // Days since 1970-01-01 → civil year (Howard Hinnant's algorithm).
    let days = ms.div_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    year.clamp(1900, 2999) as u16
}

/// Shard of a new property: a stable hash of its request ID.
pub(crate) fn shard_of(request_id: &str, shards: u8) -> u8 {
    let h = sha256(request_id.as_bytes());
    let n = u64::from_be_bytes(h.0[..8].try_into().unwrap_or([0; 8]));
    (n % u64::from(shards.max(1))) as u8
}

/// The transaction ID of a proposal on a channel: sha256(JCS(proposal + {"channel"})).
pub fn tx_id(proposal: &Proposal, channel: &str) -> Result<Hash32, CanonicalError> {
    tx_id_and_args(proposal, channel).map(|(id, _)| id)
}

/// [`tx_id`], also returning the JCS bytes of the proposal's `args`: the committed
/// transaction starts with the same bytes, so its encoding can reuse them instead of
/// walking the argument tree a second time (see [`Executed::encode`]).
pub(crate) fn tx_id_and_args(
    proposal: &Proposal,
    channel: &str,
) -> Result<(Hash32, Vec<u8>), CanonicalError> {
    let args = value_to_jcs(&proposal.args)?;
    let id = tx_id_of(
        &args,
        channel,
        &proposal.creator,
        proposal.kind,
        &proposal.nonce,
    )?;
    Ok((id, args))
}

/// The transaction ID of a proposal whose `args` encode as `args_jcs`.
pub(crate) fn tx_id_of(
    args_jcs: &[u8],
    channel: &str,
    creator: &str,
    kind: TxKind,
    nonce: &str,
) -> Result<Hash32, CanonicalError> {
    use sha2::{Digest, Sha256};
    // The members of proposal + {"channel"} in JCS order: args, channel, creator, kind,
    // nonce (all ASCII names, so byte order is UTF-16 order), hashed as they are written:
    // copying the args into one buffer first cost an allocation and a copy per proposal.
    let mut h = Sha256::new();
    h.update(b"{\"args\":");
    h.update(args_jcs);
    h.update(b",\"channel\":");
    serde_json::to_writer(&mut h, channel)?;
    h.update(b",\"creator\":");
    serde_json::to_writer(&mut h, creator)?;
    h.update(b",\"kind\":");
    serde_json::to_writer(&mut h, &kind)?;
    h.update(b",\"nonce\":");
    serde_json::to_writer(&mut h, nonce)?;
    h.update(b"}");
    Ok(Hash32(h.finalize().into()))
}

/// A proposal on its way into a block: its tx_id and, when the caller already has them,
/// the JCS bytes of its args (from [`tx_id_and_args`]).
pub(crate) struct Proposed {
    pub tx_id: Hash32,
    pub proposal: Proposal,
    pub args_jcs: Option<Vec<u8>>,
    /// The arguments, typed by whoever planned the proposal (the seeder's generator):
    /// `proposal.args` is then `null`, `proposal.kind` theirs, and `args_jcs` holds their
    /// JCS.
    pub typed: Option<Args>,
}

impl From<(Hash32, Proposal)> for Proposed {
    fn from((tx_id, proposal): (Hash32, Proposal)) -> Self {
        Self {
            tx_id,
            proposal,
            args_jcs: None,
            typed: None,
        }
    }
}

impl Overlay<'_> {
    /// Runs one proposal as transaction `tx_index` of the block.
    pub fn execute(
        &mut self,
        ctx: &BlockCtx<'_>,
        tx_index: u32,
        proposed: Proposed,
    ) -> Result<Executed, CanonicalError> {
        let Proposed {
            tx_id,
            proposal: p,
            args_jcs,
            typed,
        } = proposed;
        let loc = Loc {
            channel: ctx.channel,
            block: ctx.number,
            tx_index,
            tx_id,
        };
        // Named in the receipt of a refusal, as `named_property` reads it from JSON args.
        let named = typed.as_ref().and_then(Args::property_id);
        let outcome = self.run(ctx, &p, typed);
        let (validation, write, event, property_id, why, record) = match outcome {
            Ok((key, value)) => {
                // The typed value's serde_json output is already JCS (see ledger::canonical).
                self.scratch.clear();
                let (property_id, record, stored) = match value {
                    Written::Record(r) => {
                        let r = Arc::new(r);
                        let stored = if self.base.typed {
                            Stored::Record(r.clone())
                        } else {
                            r.encode_jcs(&mut self.scratch);
                            let (text, hash) = self.canonical();
                            Stored::Canonical { text, hash }
                        };
                        // A record is written under its property ID (see `run`).
                        (key.clone(), Some(r), stored)
                    }
                    Written::Document(d) => {
                        write_jcs(&d, &mut self.scratch)?;
                        let (text, hash) = self.canonical();
                        let stored = Stored::Canonical { text, hash };
                        (d.property_id.to_string(), None, stored)
                    }
                };
                self.put(&key, stored.clone(), loc);
                let event = Event {
                    kind: p.kind.event_type(),
                    id: property_id.clone(),
                    t: ctx.timestamp,
                    tx: tx_id,
                };
                (
                    Validation::Valid,
                    Some((key, stored)),
                    Some(event),
                    Some(property_id),
                    None,
                    record,
                )
            }
            Err(r) => (
                r.code,
                None,
                None,
                match named {
                    Some(id) => Some(id.to_string()),
                    None => chaincode::named_property(&p.args),
                },
                Some(r.why),
                None,
            ),
        };
        let receipt = receipt(loc, validation, property_id);
        // A typed state keeps no transaction index (see `Changes::merge_current_into`).
        if !self.base.typed {
            let info = TxInfo {
                loc,
                validation,
                property_id: receipt.property_id.as_deref().map(Box::from),
            };
            self.txs.push((tx_id, info));
        }
        Ok(Executed {
            tx_id,
            kind: p.kind,
            creator: p.creator,
            timestamp: ctx.timestamp,
            args: p.args,
            args_jcs,
            write,
            event,
            validation,
            receipt,
            why,
            record,
        })
    }

    /// The current record of `id`: borrowed from a typed state, parsed from a node's.
    fn record(&self, id: &PropertyId) -> Result<(Cow<'_, Record>, &Entry), Refusal> {
        let key = id.text();
        let key = key.as_str();
        match self.current(key) {
            Some(e) => match &e.value {
                Stored::Record(r) => Ok((Cow::Borrowed(&**r), e)),
                Stored::Canonical { text, .. } => match serde_json::from_str::<Record>(text) {
                    Ok(r) => Ok((Cow::Owned(r), e)),
                    Err(err) => bad(format!("record {key} on chain does not decode: {err}")),
                },
            },
            None => refuse(
                Validation::PropertyNotFound,
                format!("no property {key} on the ledger"),
            ),
        }
    }

    /// A record for a record-kind transaction on this channel.
    fn own_record(
        &self,
        ctx: &BlockCtx<'_>,
        id: &PropertyId,
    ) -> Result<(Cow<'_, Record>, Loc), Refusal> {
        let (r, e) = self.record(id)?;
        if e.loc.channel != ctx.channel {
            return refuse(
                Validation::PropertyNotFound,
                format!("property {id} is not on this channel"),
            );
        }
        Ok((r, e.loc))
    }

    /// Registers `record`'s corrected parcel to it, releasing `old`, the parcel of the
    /// version it replaces, if that differs.
    fn claim_parcel(&mut self, record: &Record, old: Parcel) -> Result<(), Refusal> {
        let key = parcel_key(record);
        let parcel = Parcel::of(&key);
        if let Some(holder) = self.parcel_holder(parcel) {
            if holder != record.property_id {
                return refuse(
                    Validation::DuplicateParcel,
                    format!("parcel {key} is already registered as {holder}"),
                );
            }
        }
        if old != parcel {
            self.parcels.insert(old, None);
        }
        self.parcels.insert(parcel, Some(record.property_id));
        Ok(())
    }

    fn run(
        &mut self,
        ctx: &BlockCtx<'_>,
        p: &Proposal,
        typed: Option<Args>,
    ) -> Result<(String, Written), Refusal> {
        // The typed arguments of this kind of transaction, else those parsed from JSON.
        macro_rules! args {
            ($variant:ident) => {
                match typed {
                    Some(Args::$variant(a)) => a,
                    _ => parse_args(p)?,
                }
            };
        }
        let docs = ctx.channel == ctx.routing.docs;
        if docs != (p.kind == TxKind::LinkDocumentHash) {
            return bad(format!(
                "{} does not run on this channel: documents are linked on the docs channel, records live on the others",
                p.kind.as_str()
            ));
        }
        match p.kind {
            TxKind::CreateLandRecord => {
                let a: CreateArgs = args!(Create);
                if !STATE_CODES.contains(&a.state.as_str()) {
                    return bad(format!("state {:?} is not a known state code", a.state));
                }
                authorize(&p.creator, p.kind, &a.state)?;
                check_text("request_id", &a.request_id, 200)?;
                if ctx.routing.records_channel(&a.state) != ctx.channel {
                    return bad(format!(
                        "records of {} are kept on another channel",
                        a.state
                    ));
                }
                let st = [a.state.as_bytes()[0], a.state.as_bytes()[1]];
                let year = year_of(ctx.timestamp);
                let shard = shard_of(&a.request_id, ctx.routing.shards);
                // Check before issuing a number, so refusals do not burn sequence numbers.
                let placeholder = PropertyId::sharded(&a.state, year, shard, 0)
                    .or_else(|e| bad(e.to_string()))?;
                let mut record =
                    a.into_record(placeholder, VerificationStatus::Pending, ctx.timestamp);
                check_record(&record)?;
                let parcel = Parcel::of(&parcel_key(&record));
                if let Some(holder) = self.parcel_holder(parcel) {
                    return refuse(
                        Validation::DuplicateParcel,
                        format!("the parcel is already registered as {holder}"),
                    );
                }
                let seq = self.next_sequence(st, year, shard);
                record.property_id = PropertyId::sharded(&record.state, year, shard, seq)
                    .or_else(|e| bad(e.to_string()))?;
                self.parcels.insert(parcel, Some(record.property_id));
                Ok((record.property_id.to_string(), Written::Record(record)))
            }
            TxKind::TransferLandRecord => {
                let a: TransferArgs = args!(Transfer);
                let (r, loc) = self.own_record(ctx, &a.property_id)?;
                authorize(&p.creator, p.kind, &r.state)?;
                if let Some(expected) = a.expected_tx {
                    if expected != loc.tx_id {
                        return refuse(
                            Validation::VersionConflict,
                            format!("current version is {}, not {expected}", loc.tx_id),
                        );
                    }
                }
                check_owners(&a.owners)?;
                let mut r = r.into_owned();
                r.owners = a.owners;
                r.updated_at = ctx.timestamp;
                Ok((r.property_id.to_string(), Written::Record(r)))
            }
            TxKind::UpdateVerificationStatus => {
                let a: VerificationArgs = args!(Verification);
                let (r, _) = self.own_record(ctx, &a.property_id)?;
                authorize(&p.creator, p.kind, &r.state)?;
                if let Some(n) = &a.note {
                    if n.chars().count() > 1000 {
                        return bad("note must be at most 1000 characters");
                    }
                }
                let mut r = r.into_owned();
                r.verification_status = a.status;
                r.updated_at = ctx.timestamp;
                Ok((r.property_id.to_string(), Written::Record(r)))
            }
            TxKind::CorrectLandRecord => {
                let a: CorrectArgs = args!(Correction);
                let Some(id) = a.property_id else {
                    return bad("CorrectLandRecord needs property_id");
                };
                let (old, _) = self.own_record(ctx, &id)?;
                authorize(&p.creator, p.kind, &old.state)?;
                let old_parcel = Parcel::of(&parcel_key(&old));
                let mut r = old.into_owned();
                let mut changed = false;
                macro_rules! set {
                    ($f:ident) => {
                        if let Some(v) = a.$f {
                            r.$f = v;
                            changed = true;
                        }
                    };
                }
                set!(district);
                set!(mandal);
                set!(village);
                set!(survey_no);
                set!(owners);
                set!(area_sq_m);
                set!(area_text);
                set!(land_type);
                set!(market_value);
                if let Some(k) = a.khata_no {
                    r.khata_no = Some(k);
                    changed = true;
                }
                if !changed {
                    return bad("CorrectLandRecord names no field to correct");
                }
                check_record(&r)?;
                r.updated_at = ctx.timestamp;
                self.claim_parcel(&r, old_parcel)?;
                Ok((r.property_id.to_string(), Written::Record(r)))
            }
            TxKind::LinkDocumentHash => {
                let a: LinkArgs = args!(Link);
                let (r, _) = self.record(&a.property_id)?;
                authorize(&p.creator, p.kind, &r.state)?;
                check_doc_hash(&a.doc_hash)?;
                check_text("doc_type", &a.doc_type, 60)?;
                let doc = Document {
                    property_id: r.property_id,
                    doc_hash: a.doc_hash,
                    doc_type: a.doc_type,
                    linked_at: ctx.timestamp,
                };
                Ok((
                    Document::key(&doc.property_id, &doc.doc_hash),
                    Written::Document(doc),
                ))
            }
        }
    }
}

enum Written {
    Record(Record),
    Document(Document),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{DemoData, Generator};

    #[test]
    fn tx_ids_are_the_digest_of_the_proposal_with_its_channel() {
        // ledger.md: tx_id = sha256(JCS(proposal + {"channel"})). Checked against an
        // independent JCS implementation, for creates and every kind of follow-up, in
        // Latin, Telugu and Kannada script, and for a creator and nonce that need escaping.
        let mut gen = Generator::new(3, DemoData::embedded());
        let mut proposals = Vec::new();
        for i in 0..400u64 {
            let p = match (i % 2 == 1).then(|| gen.follow_up()).flatten() {
                Some((_, p)) => p,
                None => {
                    let p = gen.create();
                    let args: CreateArgs = serde_json::from_value(p.args.clone()).unwrap();
                    let id = PropertyId::sharded(&args.state, 2026, 1, i + 1).unwrap();
                    let r = args.into_record(id, VerificationStatus::Pending, 0);
                    gen.remember(&r, sha256(&i.to_le_bytes()));
                    p
                }
            };
            proposals.push(p);
        }
        let mut odd = proposals[0].clone();
        odd.creator = "registrar@TS \"\\\n".into();
        odd.nonce = "ఒకటి\u{1}".into();
        proposals.push(odd);
        for p in proposals {
            let mut whole = serde_json::to_value(&p).unwrap();
            whole["channel"] = "land-registry-primary".into();
            let expected = sha256(&serde_json_canonicalizer::to_vec(&whole).unwrap());
            assert_eq!(
                tx_id(&p, "land-registry-primary").unwrap(),
                expected,
                "{p:?}"
            );
        }
    }
}
