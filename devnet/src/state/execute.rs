//! Executing one proposal as a transaction of the block being built: the chaincode's rules
//! applied against the [`Overlay`], giving the committed transaction ([`Executed`]) and its
//! receipt.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::Value;

use ledger::canonical::{sha256, write_int, write_jcs, write_str, CanonicalError, Hash32};
use ledger::id::PropertyId;
use ledger::model::{
    Document, Event, Proposal, Receipt, Record, Transaction, TxKind, Validation,
    VerificationStatus, Write,
};

use super::{receipt, ChannelIx, Entry, Loc, Overlay, Parcel, Routing, Stored, TxInfo};
use crate::chaincode::*;

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

/// A proposal on its way into a block: its tx_id and, when the caller already has them,
/// the JCS bytes of its args (from [`tx_id_and_args`](super::tx_id::tx_id_and_args)).
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
                    None => named_property(&p.args),
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
