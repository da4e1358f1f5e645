//! The answer of `verifyProperty`.

use async_graphql::{Enum, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::LedgerVersion;

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum VerificationOutcome {
    /// The replica serves exactly the ledger's current record.
    Match,
    /// The replica serves something else (altered, or behind the chain: see
    /// `replicaVersion` and `ledgerVersion`).
    Mismatch,
    MissingInReplica,
    NotOnLedger,
    LedgerUnavailable,
}

#[derive(SimpleObject)]
pub struct Verification {
    pub property_id: ID,
    pub outcome: VerificationOutcome,
    /// sha256 of the canonical JSON of the record the replica serves, recomputed now.
    pub replica_record_hash: Option<String>,
    /// The ledger's current record hash.
    pub ledger_record_hash: Option<String>,
    pub ledger_version: Option<LedgerVersion>,
    /// The version the replica holds.
    pub replica_version: Option<LedgerVersion>,
    /// Replica columns that disagree with the replica's own record (altered behind our
    /// back); empty when consistent.
    pub replica_inconsistencies: Vec<String>,
    pub chain_height: Option<i64>,
    pub checked_at: DateTime<Utc>,
    /// The ledger's proof of the transaction that wrote its current record (with
    /// `asOfBlock`, the version in force after that block).
    pub proof: Option<LedgerProof>,
    /// Whether this node checked `proof` (ledger.md's five steps) against the orderer key the
    /// read model trusts. A verifier should check it themselves: `landql verify-proof`.
    pub proof_verified: Option<bool>,
    /// Why the ledger could not be asked, for LEDGER_UNAVAILABLE; for a historical check,
    /// what the replica lacks.
    pub detail: Option<String>,
    /// The block (of the property's channel) whose version was checked; null when the
    /// current record was.
    pub as_of_block: Option<i64>,
}

#[derive(SimpleObject)]
pub struct LedgerProof {
    /// The ledger's proof document exactly as ledger.md defines it, byte for byte as the
    /// ledger sent it.
    pub json: String,
    pub block_number: i64,
    pub header_hash: String,
    pub audit_path: Vec<String>,
}
