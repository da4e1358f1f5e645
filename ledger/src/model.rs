//! The values that live on the chain: records, documents, proposals, committed transactions,
//! events and blocks — field for field as ledger.md defines them.
//!
//! Fields are declared in sorted order and free-form values serialise through
//! [`crate::canonical::value`], so that serde_json's output of these types is RFC 8785
//! canonical JSON (see [`crate::canonical`]); keep it so when adding fields.
//!
//! Hashes are never taken over these structs re-serialised from parsed input: a verifier
//! hashes the JSON it was given (see [`crate::proof`]), and the node hashes what it writes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical::Hash32;
use crate::id::PropertyId;

/// The value written under a property ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub area_sq_m: i64,
    pub area_text: String,
    pub created_at: i64,
    pub district: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub khata_no: Option<String>,
    pub land_type: String,
    pub mandal: String,
    pub market_value: i64,
    pub owners: Vec<Owner>,
    pub property_id: PropertyId,
    pub state: String,
    pub survey_no: String,
    pub updated_at: i64,
    pub verification_status: VerificationStatus,
    pub village: String,
}

/// One owner of a record. `owner_ref` is stable across all the parcels a person owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub father_name: Option<String>,
    pub name: String,
    pub owner_ref: String,
    pub share_pct: i64,
}

impl Record {
    /// Appends the record's JCS to `out`: the bytes `serde_json` writes for it (see
    /// [`crate::canonical`]; `tests::hand_written_encoders_match_serde` holds them equal),
    /// in a third of the time. Keep the members in the order of the fields above.
    pub fn encode_jcs(&self, out: &mut Vec<u8>) {
        crate::canonical::Members::new(out)
            .int("area_sq_m", self.area_sq_m)
            .str("area_text", &self.area_text)
            .int("created_at", self.created_at)
            .str("district", &self.district)
            .opt_str("khata_no", self.khata_no.as_deref())
            .str("land_type", &self.land_type)
            .str("mandal", &self.mandal)
            .int("market_value", self.market_value)
            .with("owners", |out| Owner::encode_all_jcs(&self.owners, out))
            .with("property_id", |out| self.property_id.write_json(out))
            .str("state", &self.state)
            .str("survey_no", &self.survey_no)
            .int("updated_at", self.updated_at)
            .str("verification_status", self.verification_status.as_str())
            .str("village", &self.village)
            .end();
    }
}

impl Owner {
    /// Appends the JCS of a list of owners to `out` (see [`Record::encode_jcs`]).
    pub fn encode_all_jcs(owners: &[Owner], out: &mut Vec<u8>) {
        out.push(b'[');
        for (i, o) in owners.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            crate::canonical::Members::new(out)
                .opt_str("father_name", o.father_name.as_deref())
                .str("name", &o.name)
                .str("owner_ref", &o.owner_ref)
                .int("share_pct", o.share_pct)
                .end();
        }
        out.push(b']');
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerificationStatus {
    Pending,
    Verified,
    Disputed,
    Rejected,
}

impl VerificationStatus {
    pub const ALL: [VerificationStatus; 4] = [
        Self::Pending,
        Self::Verified,
        Self::Disputed,
        Self::Rejected,
    ];
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Verified => "verified",
            Self::Disputed => "disputed",
            Self::Rejected => "rejected",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// A document linked to a property, stored under `DOC:<property_id>:<doc_hash>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub doc_hash: String,
    pub doc_type: String,
    pub linked_at: i64,
    pub property_id: PropertyId,
}

impl Document {
    pub fn key(property_id: &PropertyId, doc_hash: &str) -> String {
        format!("DOC:{property_id}:{doc_hash}")
    }
}

/// The five transaction kinds of the registry chaincode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TxKind {
    CreateLandRecord,
    TransferLandRecord,
    UpdateVerificationStatus,
    CorrectLandRecord,
    LinkDocumentHash,
}

impl TxKind {
    pub const ALL: [TxKind; 5] = [
        Self::CreateLandRecord,
        Self::TransferLandRecord,
        Self::UpdateVerificationStatus,
        Self::CorrectLandRecord,
        Self::LinkDocumentHash,
    ];
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::CreateLandRecord => "CreateLandRecord",
            Self::TransferLandRecord => "TransferLandRecord",
            Self::UpdateVerificationStatus => "UpdateVerificationStatus",
            Self::CorrectLandRecord => "CorrectLandRecord",
            Self::LinkDocumentHash => "LinkDocumentHash",
        }
    }
    /// The event a valid transaction of this kind emits.
    pub fn event_type(&self) -> EventType {
        match self {
            Self::CreateLandRecord => EventType::PropertyCreated,
            Self::TransferLandRecord => EventType::PropertyTransferred,
            Self::UpdateVerificationStatus => EventType::VerificationUpdated,
            Self::CorrectLandRecord => EventType::PropertyCorrected,
            Self::LinkDocumentHash => EventType::DocumentLinked,
        }
    }
}

/// What a client submits to a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    #[serde(serialize_with = "crate::canonical::value")]
    pub args: Value,
    pub creator: String,
    pub kind: TxKind,
    pub nonce: String,
}

/// A transaction as committed inside a block, valid or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    #[serde(serialize_with = "crate::canonical::value")]
    pub args: Value,
    pub creator: String,
    pub event: Option<Event>,
    pub kind: TxKind,
    pub timestamp: i64,
    pub tx_id: Hash32,
    pub validation: Validation,
    pub writes: Vec<Write>,
}

impl Transaction {
    pub fn is_valid(&self) -> bool {
        self.validation == Validation::Valid
    }
}

/// One key written by a transaction; `value` is a [`Record`] or a [`Document`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Write {
    pub key: String,
    #[serde(serialize_with = "crate::canonical::value")]
    pub value: Value,
}

/// The small event a valid transaction carries; the full value is in `writes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub t: i64,
    pub tx: Hash32,
    #[serde(rename = "type")]
    pub kind: EventType,
}

impl Event {
    /// Appends the event's JCS to `out`: the bytes `serde_json` writes for it (see
    /// [`Record::encode_jcs`]; `tests::hand_written_encoders_match_serde` holds them equal).
    pub fn encode_jcs(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        let mut kind = Ok(());
        crate::canonical::Members::new(out)
            .str("id", &self.id)
            .int("t", self.t)
            .with("tx", |out| self.tx.write_json(out))
            .with("type", |out| kind = serde_json::to_writer(out, &self.kind))
            .end();
        kind
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    PropertyCreated,
    PropertyTransferred,
    VerificationUpdated,
    PropertyCorrected,
    DocumentLinked,
}

/// The validation code of a committed transaction. Only `VALID` ones change state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Validation {
    Valid,
    PropertyNotFound,
    DuplicateParcel,
    BadArgument,
    VersionConflict,
    Unauthorized,
}

impl Validation {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Valid => "VALID",
            Self::PropertyNotFound => "PROPERTY_NOT_FOUND",
            Self::DuplicateParcel => "DUPLICATE_PARCEL",
            Self::BadArgument => "BAD_ARGUMENT",
            Self::VersionConflict => "VERSION_CONFLICT",
            Self::Unauthorized => "UNAUTHORIZED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockHeader {
    pub channel: String,
    pub number: u64,
    pub prev_hash: Hash32,
    pub timestamp: i64,
    pub tx_count: u64,
    pub tx_root: Hash32,
}

/// The orderer's signature over the 32 raw bytes of `header_hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub alg: String,
    /// The orderer's Ed25519 public key, 64 hex digits.
    pub key: String,
    /// The 64-byte signature, 128 hex digits.
    pub sig: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Block {
    pub header: BlockHeader,
    pub header_hash: Hash32,
    pub signature: Signature,
    pub txs: Vec<Transaction>,
}

/// Where a value was written: the version that ledger.md's record answers carry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Version {
    pub block_number: u64,
    pub channel: String,
    pub tx_id: Hash32,
    pub tx_index: u64,
}

/// `GET /v1/records/{id}`: a value, its hash and its version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordVersion {
    pub record: Value,
    pub record_hash: Hash32,
    pub version: Version,
}

/// What `POST /v1/channels/{ch}/transactions` answers for each proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub block_number: u64,
    pub property_id: Option<String>,
    pub tx_id: Hash32,
    pub tx_index: u64,
    pub validation: Validation,
}

/// The proof document of `GET /v1/transactions/{tx_id}/proof`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proof {
    pub audit_path: Vec<Hash32>,
    pub block_number: u64,
    pub channel: String,
    pub header: BlockHeader,
    pub header_hash: Hash32,
    pub signature: Signature,
    pub tree_size: u64,
    pub tx: Transaction,
    pub tx_index: u64,
}

/// Channel names of ledger.md.
pub mod channels {
    pub const PRIMARY: &str = "land-registry-primary";
    pub const DOCS: &str = "land-registry-docs";

    /// The regional channel of a state (`land-registry-region-ts`).
    pub fn regional(state: &str) -> String {
        format!("land-registry-region-{}", state.to_ascii_lowercase())
    }
}

/// One channel in `GET /v1/info`. `height` is the number of the last block + 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelInfo {
    pub height: u64,
    pub name: String,
    pub tip_hash: Hash32,
    pub tip_time: i64,
}

/// `GET /v1/info`: the chain's channels and the orderer's public key (64 hex digits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainInfo {
    pub channels: Vec<ChannelInfo>,
    pub orderer_public_key: String,
}

impl ChainInfo {
    pub fn channel(&self, name: &str) -> Option<&ChannelInfo> {
        self.channels.iter().find(|c| c.name == name)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Text as the ledger's fields may hold it: any printable characters, the controls,
    /// quotes and backslashes a careless client might send, Telugu.
    pub(crate) fn arb_text() -> impl Strategy<Value = String> {
        "(\\PC|[\u{0}-\u{1f}\"\\\\\u{c00}-\u{c7f}]){0,12}"
    }

    pub(crate) fn arb_owners() -> impl Strategy<Value = Vec<Owner>> {
        proptest::collection::vec(
            (
                proptest::option::of(arb_text()),
                arb_text(),
                arb_text(),
                any::<i64>(),
            )
                .prop_map(|(father_name, name, owner_ref, share_pct)| Owner {
                    father_name,
                    name,
                    owner_ref,
                    share_pct,
                }),
            0..4,
        )
    }

    fn arb_record() -> impl Strategy<Value = Record> {
        let text = || arb_text();
        (
            (
                any::<i64>(),
                text(),
                any::<i64>(),
                text(),
                proptest::option::of(text()),
            ),
            (text(), text(), any::<i64>(), arb_owners()),
            (
                "[A-Z]{2}",
                2000u16..2100,
                0u8..100,
                0u64..100_000,
                text(),
                text(),
                any::<i64>(),
                0usize..4,
                text(),
            ),
        )
            .prop_map(|(a, b, c)| {
                let (area_sq_m, area_text, created_at, district, khata_no) = a;
                let (land_type, mandal, market_value, owners) = b;
                let (st, year, shard, seq, state, survey_no, updated_at, status, village) = c;
                Record {
                    area_sq_m,
                    area_text,
                    created_at,
                    district,
                    khata_no,
                    land_type,
                    mandal,
                    market_value,
                    owners,
                    property_id: PropertyId::sharded(&st, year, shard, seq)
                        .expect("a valid sharded ID"),
                    state,
                    survey_no,
                    updated_at,
                    verification_status: VerificationStatus::ALL[status],
                    village,
                }
            })
    }

    fn arb_event() -> impl Strategy<Value = Event> {
        const KINDS: [EventType; 5] = [
            EventType::PropertyCreated,
            EventType::PropertyTransferred,
            EventType::VerificationUpdated,
            EventType::PropertyCorrected,
            EventType::DocumentLinked,
        ];
        (arb_text(), any::<i64>(), any::<[u8; 32]>(), 0usize..5).prop_map(|(id, t, tx, k)| Event {
            id,
            t,
            tx: Hash32(tx),
            kind: KINDS[k],
        })
    }

    proptest! {
        #[test]
        fn hand_written_encoders_match_serde(r in arb_record(), e in arb_event()) {
            let mut ours = Vec::new();
            r.encode_jcs(&mut ours);
            prop_assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&r).unwrap()
            );
            let mut ours = Vec::new();
            e.encode_jcs(&mut ours).unwrap();
            prop_assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&e).unwrap()
            );
        }
    }
}
