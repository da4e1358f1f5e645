//! Transform: a checked block → the rows it adds to the read model.
//!
//! Only `VALID` transactions change state; invalid ones are counted and dropped (ledger.md:
//! "Readers must skip them"). Each write of a valid transaction becomes a [`Change`]: a
//! [`Record`] under a property ID, or a [`Document`] under a `DOC:` key. A valid transaction
//! whose writes cannot be projected (a value that is neither, a key that does not match its
//! value, a value PostgreSQL would refuse) becomes a [`Failure`] — an `indexing_errors` row —
//! and is skipped whole, so one odd transaction never stalls its channel.

use std::sync::Arc;

use ledger::canonical::{sha256, to_jcs};
use ledger::model::{Block, Document, EventType, Record, Transaction};
use ledger::{Hash32, PropertyId};
use serde::Deserialize;
use serde_json::Value;

/// The transaction that wrote a value: (channel, block, tx index, tx id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Version {
    pub channel: Arc<str>,
    pub block: u64,
    pub tx_index: u32,
    pub tx_id: Hash32,
}

impl Version {
    /// Whether `self` is a later write than `other` of the same key. Within a channel,
    /// (block, tx index) orders writes. A property lives on one channel (chaincode rule);
    /// should a key ever be written on two, the later ledger time wins, then the channel
    /// name — an arbitrary but deterministic rule, so replays give the same answer. The SQL
    /// guards in `writer` mirror this.
    pub fn is_newer_than(&self, self_ms: i64, other: &Version, other_ms: i64) -> bool {
        if self.channel == other.channel {
            (self.block, self.tx_index) > (other.block, other.tx_index)
        } else {
            (self_ms, &*self.channel) > (other_ms, &*other.channel)
        }
    }
}

/// A record written under a property ID, with everything the `properties` row needs.
#[derive(Debug, Clone)]
pub(crate) struct PropertyChange {
    /// The key exactly as on chain.
    pub id: String,
    pub pid: PropertyId,
    pub record: Record,
    /// The record's canonical JSON (JCS) text: what `record_hash` is over.
    pub record_jcs: String,
    pub record_hash: Hash32,
}

/// One value written by a valid transaction.
#[derive(Debug, Clone)]
pub(crate) enum ChangeKind {
    Property(Box<PropertyChange>),
    Document(DocumentChange),
}

/// A document linked to a property.
#[derive(Debug, Clone)]
pub(crate) struct DocumentChange {
    /// The property ID as printed in the document's key.
    pub property_id: String,
    pub doc: Document,
}

/// One applied-or-replayed event: a value, its version and its event type.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub version: Version,
    pub event: &'static str,
    /// The transaction's ledger time (Unix ms).
    pub tx_time_ms: i64,
    pub kind: ChangeKind,
}

impl Change {
    /// The property the change is about (a document's property for documents).
    pub fn property_id(&self) -> &str {
        match &self.kind {
            ChangeKind::Property(p) => &p.id,
            ChangeKind::Document(d) => &d.property_id,
        }
    }
}

/// A valid transaction that could not be projected: an `indexing_errors` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub channel: Arc<str>,
    pub block: u64,
    pub tx_index: Option<u32>,
    pub tx_id: Option<Hash32>,
    pub error: String,
    pub raw: Option<String>,
}

/// What a checked block contributes to the read model.
#[derive(Debug, Clone)]
pub(crate) struct DecodedBlock {
    pub channel: Arc<str>,
    pub number: u64,
    pub hash: Hash32,
    /// The block's ledger time (Unix ms).
    pub time_ms: i64,
    pub changes: Vec<Change>,
    /// Invalid transactions skipped.
    pub invalid: u64,
    pub failures: Vec<Failure>,
}

/// Ledger times PostgreSQL can hold as timestamptz: years 1 to 9999.
const MIN_MS: i64 = -62_135_596_800_000;
const MAX_MS: i64 = 253_402_300_799_999;

/// Decodes a block that has passed `Block::check`.
pub(crate) fn decode_block(channel: &Arc<str>, block: Block) -> DecodedBlock {
    let mut out = DecodedBlock {
        channel: channel.clone(),
        number: block.header.number,
        hash: block.header_hash,
        time_ms: block.header.timestamp,
        changes: Vec::new(),
        invalid: 0,
        failures: Vec::new(),
    };
    for (i, tx) in block.txs.into_iter().enumerate() {
        if !tx.is_valid() {
            out.invalid += 1;
            continue;
        }
        let version = Version {
            channel: channel.clone(),
            block: out.number,
            // Blocks hold at most max_txs (hundreds) transactions; anything past u32 is a
            // block that `check` would not have let through in practice.
            tx_index: u32::try_from(i).unwrap_or(u32::MAX),
            tx_id: tx.tx_id,
        };
        match decode_tx(&version, &tx) {
            Ok(changes) => out.changes.extend(changes),
            Err((error, raw)) => out.failures.push(Failure {
                channel: channel.clone(),
                block: out.number,
                tx_index: Some(version.tx_index),
                tx_id: Some(tx.tx_id),
                error: scrub(&error),
                raw: raw.map(|r| scrub(&r)),
            }),
        }
    }
    out
}

type TxError = (String, Option<String>);

fn decode_tx(version: &Version, tx: &Transaction) -> Result<Vec<Change>, TxError> {
    let event = match &tx.event {
        Some(e) => e.kind,
        None => tx.kind.event_type(),
    };
    if !(MIN_MS..=MAX_MS).contains(&tx.timestamp) {
        return Err((
            format!("transaction timestamp {} is out of range", tx.timestamp),
            None,
        ));
    }
    let mut changes = Vec::with_capacity(tx.writes.len());
    for w in &tx.writes {
        let raw = || Some(serde_json::to_string(&w.value).unwrap_or_default());
        let kind = if let Some(rest) = w.key.strip_prefix("DOC:") {
            let doc = decode_document(rest, &w.value).map_err(|e| (e, raw()))?;
            ChangeKind::Document(DocumentChange {
                property_id: doc.property_id.to_string(),
                doc,
            })
        } else {
            let p = decode_record(&w.key, &w.value).map_err(|e| (e, raw()))?;
            ChangeKind::Property(Box::new(p))
        };
        changes.push(Change {
            version: version.clone(),
            event: event_name(event),
            tx_time_ms: tx.timestamp,
            kind,
        });
    }
    Ok(changes)
}

fn decode_record(key: &str, value: &Value) -> Result<PropertyChange, String> {
    let record = Record::deserialize(value)
        .map_err(|e| format!("the value under {key:?} is not a land record: {e}"))?;
    let printed = record.property_id.to_string();
    if printed != key {
        return Err(format!(
            "the record under {key:?} names property {printed:?}"
        ));
    }
    for (what, ms) in [
        ("created_at", record.created_at),
        ("updated_at", record.updated_at),
    ] {
        if !(MIN_MS..=MAX_MS).contains(&ms) {
            return Err(format!("{what} {ms} of {key} is out of range"));
        }
    }
    let jcs = to_jcs(value).map_err(|e| format!("record {key}: {e}"))?;
    let record_hash = sha256(&jcs);
    let record_jcs =
        String::from_utf8(jcs).map_err(|e| format!("record {key} is not UTF-8: {e}"))?;
    // PostgreSQL text and jsonb cannot hold U+0000.
    if record_jcs.contains("\\u0000") {
        return Err(format!("record {key} contains a NUL character"));
    }
    Ok(PropertyChange {
        id: key.to_string(),
        pid: record.property_id,
        record,
        record_jcs,
        record_hash,
    })
}

fn decode_document(rest: &str, value: &Value) -> Result<Document, String> {
    let doc = Document::deserialize(value)
        .map_err(|e| format!("the value under \"DOC:{rest}\" is not a document: {e}"))?;
    let expected = format!("{}:{}", doc.property_id, doc.doc_hash);
    if rest != expected {
        return Err(format!(
            "the document under \"DOC:{rest}\" names \"DOC:{expected}\""
        ));
    }
    if !(MIN_MS..=MAX_MS).contains(&doc.linked_at) {
        return Err(format!(
            "linked_at {} of DOC:{rest} is out of range",
            doc.linked_at
        ));
    }
    if doc.doc_type.contains('\0') || doc.doc_hash.contains('\0') {
        return Err(format!("document DOC:{rest} contains a NUL character"));
    }
    Ok(doc)
}

/// Text PostgreSQL accepts: U+0000 replaced.
fn scrub(s: &str) -> String {
    s.replace('\0', "\u{fffd}")
}

pub(crate) fn event_name(e: EventType) -> &'static str {
    match e {
        EventType::PropertyCreated => "PropertyCreated",
        EventType::PropertyTransferred => "PropertyTransferred",
        EventType::VerificationUpdated => "VerificationUpdated",
        EventType::PropertyCorrected => "PropertyCorrected",
        EventType::DocumentLinked => "DocumentLinked",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::model::{Event, TxKind, Validation, Write};
    use serde_json::json;

    fn record_value(id: &str) -> Value {
        json!({
            "property_id": id, "state": "TS", "district": "K.V.Rangareddy",
            "mandal": "Saroornagar", "village": "Balapur", "survey_no": "123/A",
            "owners": [{"owner_ref": "ab", "name": "Ravi Kumar", "share_pct": 100}],
            "area_sq_m": 201, "area_text": "240 sq.yds", "land_type": "Residential",
            "market_value": 4500000, "verification_status": "pending",
            "created_at": 1767225600000_i64, "updated_at": 1767225600000_i64
        })
    }

    fn tx(key: &str, value: Value, validation: Validation) -> Transaction {
        Transaction {
            tx_id: sha256(key.as_bytes()),
            kind: TxKind::CreateLandRecord,
            creator: "registrar@TS".into(),
            timestamp: 1_767_225_600_000,
            args: json!({}),
            writes: vec![Write {
                key: key.into(),
                value,
            }],
            event: Some(Event {
                kind: EventType::PropertyCreated,
                id: key.into(),
                t: 1,
                tx: sha256(key.as_bytes()),
            }),
            validation,
        }
    }

    fn block(txs: Vec<Transaction>) -> Block {
        let key = ledger::signing::OrdererKey::generate();
        ledger::block::seal("c", 1, Hash32::ZERO, 5, txs, &key).unwrap()
    }

    #[test]
    fn records_documents_invalid_and_undecodable() {
        let id = "LRI-IND-TS-2026-03-00567";
        let doc_hash = "ab".repeat(32);
        let doc_key = format!("DOC:{id}:{doc_hash}");
        let doc = json!({"property_id": id, "doc_hash": doc_hash, "doc_type": "sale_deed", "linked_at": 5});
        let b = block(vec![
            tx(id, record_value(id), Validation::Valid),
            tx(id, record_value(id), Validation::DuplicateParcel),
            tx(&doc_key, doc, Validation::Valid),
            tx(
                "LRI-IND-TS-2026-03-00568",
                json!({"hello": "world"}),
                Validation::Valid,
            ),
            tx(
                "LRI-IND-TS-2026-03-00569",
                record_value(id),
                Validation::Valid,
            ),
        ]);
        let ch: Arc<str> = "c".into();
        let d = decode_block(&ch, b);
        assert_eq!(d.invalid, 1);
        assert_eq!(d.changes.len(), 2);
        let ChangeKind::Property(p) = &d.changes[0].kind else {
            panic!("expected a property")
        };
        assert_eq!(p.id, id);
        assert_eq!(
            p.record_hash,
            ledger::canonical::hash_jcs(&record_value(id)).unwrap()
        );
        assert_eq!(d.changes[0].event, "PropertyCreated");
        assert_eq!(d.changes[0].version.tx_index, 0);
        assert!(matches!(d.changes[1].kind, ChangeKind::Document(_)));
        assert_eq!(d.changes[1].property_id(), id);
        assert_eq!(d.failures.len(), 2);
        assert_eq!(d.failures[0].tx_index, Some(3));
        assert!(
            d.failures[0].error.contains("not a land record"),
            "{}",
            d.failures[0].error
        );
        assert_eq!(d.failures[0].raw.as_deref(), Some(r#"{"hello":"world"}"#));
        assert!(
            d.failures[1].error.contains("names property"),
            "{}",
            d.failures[1].error
        );
    }

    #[test]
    fn out_of_range_times_and_nul_are_failures_not_rows() {
        let id = "LRI-IND-TS-2026-03-00567";
        let mut v = record_value(id);
        v["created_at"] = json!(i64::MAX);
        let mut n = record_value(id);
        n["village"] = json!("Bala\u{0}pur");
        let ch: Arc<str> = "c".into();
        let d = decode_block(
            &ch,
            block(vec![
                tx(id, v, Validation::Valid),
                tx(id, n, Validation::Valid),
            ]),
        );
        assert!(d.changes.is_empty());
        assert_eq!(d.failures.len(), 2);
        assert!(d.failures[0].error.contains("out of range"));
        assert!(d.failures[1].error.contains("NUL"));
    }

    #[test]
    fn newer_compares_within_and_across_channels() {
        let v = |ch: &str, block, tx_index| Version {
            channel: ch.into(),
            block,
            tx_index,
            tx_id: Hash32::ZERO,
        };
        assert!(v("a", 2, 0).is_newer_than(0, &v("a", 1, 9), 10));
        assert!(v("a", 1, 3).is_newer_than(0, &v("a", 1, 2), 0));
        assert!(!v("a", 1, 2).is_newer_than(0, &v("a", 1, 2), 0));
        assert!(v("b", 1, 0).is_newer_than(11, &v("a", 9, 0), 10));
        assert!(v("b", 1, 0).is_newer_than(10, &v("a", 9, 0), 10));
        assert!(!v("a", 9, 0).is_newer_than(10, &v("b", 1, 0), 10));
    }
}
