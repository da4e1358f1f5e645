//! Reading committed transactions back from a block log: decoding one stored transaction
//! (no state needed, so a block's transactions decode in parallel) and applying it, in
//! order, to the world state.

use std::sync::Arc;

use serde_json::Value;

use ledger::canonical::{sha256, to_jcs, value_to_jcs, Hash32};
use ledger::id::PropertyId;
use ledger::model::{Document, Event, Record, TxKind, Validation};

use super::{counter_of, CounterKey, Entry, Loc, Parcel, Stored, TxInfo, WorldState};
use crate::chaincode::{self, parcel_key};
use crate::state::ChannelIx;

impl WorldState {
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
