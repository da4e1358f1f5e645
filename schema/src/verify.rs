//! `verifyProperty`: is what this replica serves the ledger's current record?
//!
//! The replica's hash is recomputed from the record exactly as the API would serve it —
//! never read from the stored `record_hash` column, which a tamperer would update too — and
//! the denormalised columns that filters and orders use are checked against that record, so
//! a row altered in any one place is a MISMATCH. The ledger's proof document is returned as
//! the ledger sent it, so a verifier can check it without trusting this service.
//!
//! With `asOfBlock`, the version in force after that block of the property's channel is
//! checked instead: the replica's history row (its hash recomputed from the record it holds)
//! against the ledger's history, and the ledger's proof of the transaction that wrote that
//! version, whose signed header must be the block that carries it.

use std::sync::Arc;

use async_graphql::{Result, ID};
use chrono::Utc;
use ledger::model::Record;
use ledger::proof::{verify_proof, Expect};
use ledger::PropertyId;

use crate::db::{record_hash, AsOf, ColumnsRow, PropertyRow, VersionRef};
use crate::errors::{bad_input, code_of, db_error, internal, parse_id, Code};
use crate::services::Services;
use crate::types::verification::{LedgerProof, VerificationOutcome};
use crate::types::{LedgerVersion, Verification};

pub(crate) async fn verify(s: &Services, id: &str) -> Result<Verification> {
    let i = &s.0;
    let pid = parse_id(id)?;
    // Straight from the database: a cached copy would verify the cache, not the replica.
    let replica: Option<Arc<PropertyRow>> =
        i.db.property(&pid).await.map_err(db_error)?.map(Arc::new);
    let mut inconsistencies = Vec::new();
    if let Some(r) = &replica {
        if let Some(cols) = i.db.columns(&r.id).await.map_err(db_error)? {
            inconsistencies = check_columns(&r.record, &cols);
        }
    }
    let key: PropertyId = match &replica {
        Some(r) => r.id.parse().unwrap_or(pid),
        None => pid,
    };
    let mut v = Verification {
        property_id: ID(key.to_string()),
        outcome: VerificationOutcome::LedgerUnavailable,
        replica_record_hash: replica.as_ref().map(|r| r.record_hash.clone()),
        ledger_record_hash: None,
        ledger_version: None,
        replica_version: replica.as_ref().map(|r| LedgerVersion::from(&r.version)),
        replica_inconsistencies: inconsistencies,
        chain_height: None,
        checked_at: Utc::now(),
        proof: None,
        proof_verified: None,
        detail: None,
        as_of_block: None,
    };
    let timeout = i.config.ledger_timeout;
    let current = match tokio::time::timeout(timeout, i.ledger.record(&key)).await {
        Err(_) => {
            v.detail = Some(format!("the ledger did not answer within {timeout:?}"));
            return Ok(v);
        }
        Ok(Err(e)) => {
            v.detail = Some(e.to_string());
            return Ok(v);
        }
        Ok(Ok(None)) => {
            v.outcome = VerificationOutcome::NotOnLedger;
            return Ok(v);
        }
        Ok(Ok(Some(current))) => current,
    };
    let ledger_hash = current.record_hash.to_hex();
    v.chain_height = i
        .freshness
        .channel(&current.version.channel)
        .chain_height
        .map(|h| h as i64);
    v.ledger_version = Some(LedgerVersion {
        channel: current.version.channel.clone(),
        block_number: current.version.block_number as i64,
        tx_index: current.version.tx_index as i64,
        tx_id: current.version.tx_id.to_hex(),
    });
    v.outcome = match &replica {
        None => VerificationOutcome::MissingInReplica,
        Some(r) if r.record_hash == ledger_hash && v.replica_inconsistencies.is_empty() => {
            VerificationOutcome::Match
        }
        Some(_) => VerificationOutcome::Mismatch,
    };
    v.ledger_record_hash = Some(ledger_hash);
    attach_proof(
        s,
        &mut v,
        &key,
        &current.version.tx_id,
        &current.record_hash,
        None,
    )
    .await;
    Ok(v)
}

/// `verifyProperty(id, asOfBlock)`: the version in force after block `block` of the
/// property's channel.
pub(crate) async fn verify_as_of(s: &Services, id: &str, block: i64) -> Result<Verification> {
    if block < 0 {
        return Err(bad_input(format!(
            "`asOfBlock` must be a block number (0 or more), got {block}"
        )));
    }
    let i = &s.0;
    let pid = parse_id(id)?;
    // Straight from the database: a cached copy would verify the cache, not the replica.
    let current = i.db.property(&pid).await.map_err(db_error)?;
    let key: PropertyId = match &current {
        Some(r) => r.id.parse().unwrap_or(pid),
        None => pid,
    };
    let mut applied = None;
    let mut replica: Option<(String, VersionRef)> = None;
    let mut inconsistencies = Vec::new();
    if let Some(c) = &current {
        let row =
            i.db.version_as_of(&c.id, &c.version.channel, AsOf::Block(block))
                .await
                .map_err(db_error)?;
        applied = row.applied;
        if let Some(version) = row.version {
            if !row.intact {
                inconsistencies.push(format!(
                    "the history row of block {} has a stored record hash that is not its record's",
                    version.version.block_number
                ));
            }
            let hash = record_hash(&version.record).map_err(|e| internal(&e))?;
            replica = Some((hash, version.version));
        }
    }
    let mut v = Verification {
        property_id: ID(key.to_string()),
        outcome: VerificationOutcome::LedgerUnavailable,
        replica_record_hash: replica.as_ref().map(|r| r.0.clone()),
        ledger_record_hash: None,
        ledger_version: None,
        replica_version: replica.as_ref().map(|r| LedgerVersion::from(&r.1)),
        replica_inconsistencies: inconsistencies,
        chain_height: None,
        checked_at: Utc::now(),
        proof: None,
        proof_verified: None,
        detail: None,
        as_of_block: Some(block),
    };
    let found = match crate::history::ledger_versions_as_of(s, &key, AsOf::Block(block)).await {
        Ok((found, _)) => found,
        // A block not cut yet is the caller's mistake, not an outcome.
        Err(e) if code_of(&e) == Some(Code::BadUserInput.as_str()) => return Err(e),
        Err(e) => {
            v.detail = Some(e.message);
            return Ok(v);
        }
    };
    let Some(ledger_version) = found else {
        v.outcome = VerificationOutcome::NotOnLedger;
        v.detail = Some(format!(
            "the ledger holds no version of {key} as of block {block} of its channel"
        ));
        return Ok(v);
    };
    let lv = &ledger_version.version;
    let ledger_hash = ledger_version.record_hash.to_hex();
    v.chain_height = i
        .freshness
        .channel(&lv.channel)
        .chain_height
        .map(|h| h as i64);
    v.ledger_version = Some(LedgerVersion::from(lv));
    v.outcome = match &replica {
        Some((hash, version))
            if *hash == ledger_hash && version == lv && v.replica_inconsistencies.is_empty() =>
        {
            VerificationOutcome::Match
        }
        // The replica has not applied the block that wrote the ledger's version.
        _ if applied.is_none_or(|a| a < lv.block_number) => {
            v.detail = Some(match applied {
                Some(a) => format!(
                    "the replica has applied channel {} up to block {a}; the version is in block {}",
                    lv.channel, lv.block_number
                ),
                None => format!("the replica has not applied channel {}", lv.channel),
            });
            VerificationOutcome::MissingInReplica
        }
        None => VerificationOutcome::MissingInReplica,
        Some(_) => VerificationOutcome::Mismatch,
    };
    v.ledger_record_hash = Some(ledger_hash);
    let tx_id: ledger::Hash32 = lv.tx_id.parse().map_err(|e| {
        internal(&format!(
            "the ledger's tx_id {} does not parse: {e}",
            lv.tx_id
        ))
    })?;
    attach_proof(
        s,
        &mut v,
        &key,
        &tx_id,
        &ledger_version.record_hash,
        Some(lv),
    )
    .await;
    Ok(v)
}

/// Fetches the ledger's proof of transaction `tx_id` into `v` and checks it against the
/// pinned orderer key and `record_hash` (and, with `version`, that block and transaction);
/// a missing or unreachable proof is said in `v.detail`.
async fn attach_proof(
    s: &Services,
    v: &mut Verification,
    key: &PropertyId,
    tx_id: &ledger::Hash32,
    record_hash: &ledger::Hash32,
    version: Option<&VersionRef>,
) {
    let timeout = s.0.config.ledger_timeout;
    match tokio::time::timeout(timeout, s.0.ledger.proof(tx_id)).await {
        Ok(Ok(Some(doc))) => {
            v.proof_verified = check_proof(s, &doc.json, key, record_hash, version).await;
            v.proof = Some(LedgerProof {
                json: doc.json,
                block_number: doc.proof.block_number as i64,
                header_hash: doc.proof.header_hash.to_hex(),
                audit_path: doc.proof.audit_path.iter().map(|h| h.to_hex()).collect(),
            });
        }
        Ok(Ok(None)) => v.detail = Some("the ledger has no proof for its own version".into()),
        Ok(Err(e)) => v.detail = Some(format!("proof unavailable: {e}")),
        Err(_) => v.detail = Some(format!("proof unavailable: no answer within {timeout:?}")),
    }
}

/// Runs ledger.md's five steps over the proof with the orderer key the read model pinned,
/// and, given a version, checks that the proof is of that transaction in that block of that
/// channel (the signed header's number and channel). `None` when no key is pinned yet
/// (nothing synced), so nothing to check against.
async fn check_proof(
    s: &Services,
    json: &str,
    key: &PropertyId,
    record_hash: &ledger::Hash32,
    version: Option<&VersionRef>,
) -> Option<bool> {
    let pinned = s.0.db.pinned_orderer_key().await.ok()??;
    let trusted = ledger::signing::parse_public_key(&pinned).ok()?;
    let doc: serde_json::Value = match serde_json::from_str(json) {
        Ok(d) => d,
        Err(_) => return Some(false),
    };
    let expect = Expect {
        key: Some(key.to_string()),
        record_hash: Some(*record_hash),
    };
    Some(match verify_proof(&doc, &trusted, &expect) {
        Err(_) => false,
        Ok(proved) => version.is_none_or(|v| {
            proved.channel == v.channel
                && proved.block_number as i64 == v.block_number
                && proved.tx_id == v.tx_id
        }),
    })
}

/// The replica columns that disagree with the replica's record, by name.
fn check_columns(r: &Record, cols: &ColumnsRow) -> Vec<String> {
    let id = &r.property_id;
    let expected: Vec<(&str, String)> = vec![
        ("state", id.state().to_string()),
        ("year", id.year().to_string()),
        (
            "shard",
            id.shard().map(|s| s.to_string()).unwrap_or_default(),
        ),
        ("sequence", id.sequence().to_string()),
        ("district", r.district.clone()),
        ("mandal", r.mandal.clone()),
        ("village", r.village.clone()),
        ("survey_no", r.survey_no.clone()),
        ("khata_no", r.khata_no.clone().unwrap_or_default()),
        ("area_sq_m", r.area_sq_m.to_string()),
        ("area_text", r.area_text.clone()),
        ("land_type", r.land_type.clone()),
        ("market_value", r.market_value.to_string()),
        (
            "verification_status",
            r.verification_status.as_str().to_string(),
        ),
        ("created_at", r.created_at.to_string()),
        ("updated_at", r.updated_at.to_string()),
    ];
    let mut out = Vec::new();
    for ((name, want), (_, got)) in expected.iter().zip(&cols.columns) {
        if want != got {
            out.push(format!(
                "column {name} is {got:?} but the record says {want:?}"
            ));
        }
    }
    let owners: Vec<(String, i64)> = r
        .owners
        .iter()
        .map(|o| (o.owner_ref.clone(), o.share_pct))
        .collect();
    if owners != cols.owners {
        out.push("ownerships differ from the record's owners".to_string());
    }
    out
}
