//! The devnet's world state — current values, their history, the parcel registry, ID
//! counters and the transaction index — and the execution of one block of proposals
//! against it.
//!
//! A block executes against an [`Overlay`] on top of the committed state, so that later
//! transactions in a block see earlier ones, while readers of the node keep seeing only
//! blocks that are on disk. The overlay is merged once the block has been synced.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::canonical::{hash_jcs, sha256, to_jcs, value_to_jcs, CanonicalError, Hash32};
use crate::devnet::chaincode::{self, *};
use crate::id::PropertyId;
use crate::model::{
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

/// One version of a value: its canonical bytes (JCS, so serving and hashing need no
/// re-encoding), their hash and where it was written.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub value: Arc<str>,
    pub hash: Hash32,
    pub loc: Loc,
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
        Receipt {
            tx_id: self.loc.tx_id,
            block_number: self.loc.block,
            tx_index: u64::from(self.loc.tx_index),
            validation: self.validation,
            property_id: self.property_id.as_deref().map(str::to_string),
        }
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
    /// Key (property ID or `DOC:` key) → every version, oldest first.
    pub values: HashMap<Box<str>, Vec<Entry>>,
    /// Parcel key → property ID holding it.
    pub parcels: HashMap<String, Box<str>>,
    /// (state, year, shard) → last issued sequence.
    pub counters: HashMap<([u8; 2], u16, u8), u64>,
    pub txs: HashMap<Hash32, TxInfo>,
}

impl WorldState {
    pub fn current(&self, key: &str) -> Option<&Entry> {
        self.values.get(key).and_then(|v| v.last())
    }

    /// Applies a committed transaction read back from a block log.
    pub fn apply_committed(
        &mut self,
        channel: ChannelIx,
        block: u64,
        tx_index: u32,
        tx: &Transaction,
    ) -> Result<(), String> {
        let loc = Loc {
            channel,
            block,
            tx_index,
            tx_id: tx.tx_id,
        };
        let property_id = match &tx.event {
            Some(e) => Some(e.id.clone().into_boxed_str()),
            None => chaincode::named_property(&tx.args).map(String::into_boxed_str),
        };
        self.txs.insert(
            tx.tx_id,
            TxInfo {
                loc,
                validation: tx.validation,
                property_id,
            },
        );
        if !tx.is_valid() {
            return Ok(());
        }
        for w in &tx.writes {
            let bytes = value_to_jcs(&w.value).map_err(|e| e.to_string())?;
            let text = String::from_utf8(bytes).map_err(|e| e.to_string())?;
            let entry = Entry {
                hash: sha256(text.as_bytes()),
                value: text.into(),
                loc,
            };
            if !w.key.starts_with("DOC:") {
                let record: Record =
                    serde_json::from_value(w.value.clone()).map_err(|e| e.to_string())?;
                if let Some(old) = self.current(&w.key) {
                    if let Ok(old) = serde_json::from_str::<Record>(&old.value) {
                        self.parcels.remove(&parcel_key(&old));
                    }
                }
                self.parcels
                    .insert(parcel_key(&record), w.key.clone().into_boxed_str());
                let id = record.property_id;
                if let Some(shard) = id.shard() {
                    let mut st = [0u8; 2];
                    st.copy_from_slice(id.state().as_bytes());
                    let c = self.counters.entry((st, id.year(), shard)).or_default();
                    *c = (*c).max(id.sequence());
                }
            }
            self.values
                .entry(w.key.clone().into_boxed_str())
                .or_default()
                .push(entry);
        }
        Ok(())
    }
}

/// The pending changes of the block being built.
pub(crate) struct Overlay<'a> {
    base: &'a WorldState,
    /// Writes in block order.
    writes: Vec<(Box<str>, Entry)>,
    /// Key → index in `writes` of its latest pending version.
    latest: HashMap<Box<str>, usize>,
    parcels: HashMap<String, Option<Box<str>>>,
    counters: HashMap<([u8; 2], u16, u8), u64>,
    txs: HashMap<Hash32, TxInfo>,
}

impl<'a> Overlay<'a> {
    pub fn new(base: &'a WorldState) -> Self {
        Self {
            base,
            writes: Vec::new(),
            latest: HashMap::new(),
            parcels: HashMap::new(),
            counters: HashMap::new(),
            txs: HashMap::new(),
        }
    }

    pub fn current(&self, key: &str) -> Option<&Entry> {
        match self.latest.get(key) {
            Some(&i) => Some(&self.writes[i].1),
            None => self.base.current(key),
        }
    }

    fn parcel_holder(&self, key: &str) -> Option<&str> {
        match self.parcels.get(key) {
            Some(v) => v.as_deref(),
            None => self.base.parcels.get(key).map(|b| &**b),
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

    /// Records a pending write whose canonical bytes are `bytes`.
    fn put(&mut self, key: &str, bytes: Vec<u8>, loc: Loc) {
        // JCS output of a serde_json value is UTF-8 by construction.
        let text = String::from_utf8(bytes).unwrap_or_default();
        let entry = Entry {
            hash: sha256(text.as_bytes()),
            value: text.into(),
            loc,
        };
        self.latest.insert(key.into(), self.writes.len());
        self.writes.push((key.into(), entry));
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
    parcels: HashMap<String, Option<Box<str>>>,
    counters: HashMap<([u8; 2], u16, u8), u64>,
    txs: HashMap<Hash32, TxInfo>,
}

impl Changes {
    /// Each pending write's key and the hash of the bytes the node will serve for it.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn written(&self) -> impl Iterator<Item = (&str, Hash32)> {
        self.writes.iter().map(|(k, e)| (&**k, e.hash))
    }

    pub fn merge_into(self, state: &mut WorldState) {
        for (k, e) in self.writes {
            state.values.entry(k).or_default().push(e);
        }
        for (k, v) in self.parcels {
            match v {
                Some(id) => state.parcels.insert(k, id),
                None => state.parcels.remove(&k),
            };
        }
        state.counters.extend(self.counters);
        state.txs.extend(self.txs);
    }
}

/// Everything about the block being built that a transaction needs.
pub(crate) struct BlockCtx<'r> {
    pub channel: ChannelIx,
    pub number: u64,
    pub timestamp: i64,
    pub routing: &'r Routing,
}

/// The result of one transaction for the caller: the committed form and the receipt.
pub(crate) struct Executed {
    pub tx: Transaction,
    pub receipt: Receipt,
    pub why: Option<String>,
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
    /// The proposal's members and the channel, declared in JCS order (see
    /// [`crate::canonical`]).
    #[derive(serde::Serialize)]
    struct TxIdInput<'a> {
        #[serde(serialize_with = "crate::canonical::value")]
        args: &'a Value,
        channel: &'a str,
        creator: &'a str,
        kind: TxKind,
        nonce: &'a str,
    }
    hash_jcs(&TxIdInput {
        args: &proposal.args,
        channel,
        creator: &proposal.creator,
        kind: proposal.kind,
        nonce: &proposal.nonce,
    })
}

impl Overlay<'_> {
    /// Runs one proposal as transaction `tx_index` of the block.
    pub fn execute(
        &mut self,
        ctx: &BlockCtx<'_>,
        tx_index: u32,
        tx_id: Hash32,
        p: Proposal,
    ) -> Result<Executed, CanonicalError> {
        let loc = Loc {
            channel: ctx.channel,
            block: ctx.number,
            tx_index,
            tx_id,
        };
        let outcome = self.run(ctx, &p);
        let (validation, writes, event, property_id, why) = match outcome {
            Ok((key, value)) => {
                let property_id = match &value {
                    Written::Record(r) => r.property_id.to_string(),
                    Written::Document(d) => d.property_id.to_string(),
                };
                // The typed value's serde_json output is already JCS (see crate::canonical).
                let (bytes, value) = match value {
                    Written::Record(r) => (to_jcs(&r)?, serde_json::to_value(&r)?),
                    Written::Document(d) => (to_jcs(&d)?, serde_json::to_value(&d)?),
                };
                self.put(&key, bytes, loc);
                let event = Event {
                    kind: p.kind.event_type(),
                    id: property_id.clone(),
                    t: ctx.timestamp,
                    tx: tx_id,
                };
                (
                    Validation::Valid,
                    vec![Write { key, value }],
                    Some(event),
                    Some(property_id),
                    None,
                )
            }
            Err(r) => (
                r.code,
                Vec::new(),
                None,
                chaincode::named_property(&p.args),
                Some(r.why),
            ),
        };
        let info = TxInfo {
            loc,
            validation,
            property_id: property_id.clone().map(String::into_boxed_str),
        };
        let receipt = info.receipt();
        self.txs.insert(tx_id, info);
        Ok(Executed {
            tx: Transaction {
                tx_id,
                kind: p.kind,
                creator: p.creator,
                timestamp: ctx.timestamp,
                args: p.args,
                writes,
                event,
                validation,
            },
            receipt,
            why,
        })
    }

    fn record(&self, id: &PropertyId) -> Result<(Record, &Entry), Refusal> {
        let key = id.to_string();
        match self.current(&key) {
            Some(e) => match serde_json::from_str::<Record>(&e.value) {
                Ok(r) => Ok((r, e)),
                Err(err) => bad(format!("record {key} on chain does not decode: {err}")),
            },
            None => refuse(
                Validation::PropertyNotFound,
                format!("no property {key} on the ledger"),
            ),
        }
    }

    /// A record for a record-kind transaction on this channel.
    fn own_record(&self, ctx: &BlockCtx<'_>, id: &PropertyId) -> Result<(Record, Loc), Refusal> {
        let (r, e) = self.record(id)?;
        if e.loc.channel != ctx.channel {
            return refuse(
                Validation::PropertyNotFound,
                format!("property {id} is not on this channel"),
            );
        }
        Ok((r, e.loc))
    }

    fn claim_parcel(&mut self, record: &Record, old: Option<&Record>) -> Result<(), Refusal> {
        let key = parcel_key(record);
        let id = record.property_id.to_string();
        if let Some(holder) = self.parcel_holder(&key) {
            if holder != id {
                return refuse(
                    Validation::DuplicateParcel,
                    format!("parcel {key} is already registered as {holder}"),
                );
            }
        }
        if let Some(old) = old {
            let old_key = parcel_key(old);
            if old_key != key {
                self.parcels.insert(old_key, None);
            }
        }
        self.parcels.insert(key, Some(id.into_boxed_str()));
        Ok(())
    }

    fn run(&mut self, ctx: &BlockCtx<'_>, p: &Proposal) -> Result<(String, Written), Refusal> {
        let docs = ctx.channel == ctx.routing.docs;
        if docs != (p.kind == TxKind::LinkDocumentHash) {
            return bad(format!(
                "{} does not run on this channel: documents are linked on the docs channel, records live on the others",
                p.kind.as_str()
            ));
        }
        match p.kind {
            TxKind::CreateLandRecord => {
                let a: CreateArgs = parse_args(p)?;
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
                if let Some(holder) = self.parcel_holder(&parcel_key(&record)) {
                    return refuse(
                        Validation::DuplicateParcel,
                        format!("the parcel is already registered as {holder}"),
                    );
                }
                let seq = self.next_sequence(st, year, shard);
                record.property_id = PropertyId::sharded(&record.state, year, shard, seq)
                    .or_else(|e| bad(e.to_string()))?;
                self.claim_parcel(&record, None)?;
                Ok((record.property_id.to_string(), Written::Record(record)))
            }
            TxKind::TransferLandRecord => {
                let a: TransferArgs = parse_args(p)?;
                let (mut r, loc) = self.own_record(ctx, &a.property_id)?;
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
                r.owners = a.owners;
                r.updated_at = ctx.timestamp;
                Ok((r.property_id.to_string(), Written::Record(r)))
            }
            TxKind::UpdateVerificationStatus => {
                let a: VerificationArgs = parse_args(p)?;
                let (mut r, _) = self.own_record(ctx, &a.property_id)?;
                authorize(&p.creator, p.kind, &r.state)?;
                if let Some(n) = &a.note {
                    if n.chars().count() > 1000 {
                        return bad("note must be at most 1000 characters");
                    }
                }
                r.verification_status = a.status;
                r.updated_at = ctx.timestamp;
                Ok((r.property_id.to_string(), Written::Record(r)))
            }
            TxKind::CorrectLandRecord => {
                let a: CorrectArgs = parse_args(p)?;
                let Some(id) = a.property_id else {
                    return bad("CorrectLandRecord needs property_id");
                };
                let (old, _) = self.own_record(ctx, &id)?;
                authorize(&p.creator, p.kind, &old.state)?;
                let mut r = old.clone();
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
                self.claim_parcel(&r, Some(&old))?;
                Ok((r.property_id.to_string(), Written::Record(r)))
            }
            TxKind::LinkDocumentHash => {
                let a: LinkArgs = parse_args(p)?;
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
