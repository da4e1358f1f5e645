//! Offline verification of a proof document — ledger.md's five steps, in order.
//!
//! The verifier works on the JSON it was handed, not on structs parsed from it and printed
//! again: a field this version does not know about must still count towards the hashes,
//! or a tampered document could slip through a lossy round trip.

use ed25519_dalek::VerifyingKey;
use serde_json::Value;

use crate::canonical::{hash_jcs, value_to_jcs, Canonical, Hash32};
use crate::merkle;
use crate::model::Signature;
use crate::signing::verify_header_signature;

/// The step of ledger.md's verification that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The document is not shaped like a proof at all.
    Shape,
    /// 1. sha256(JCS(header)) equals header_hash.
    HeaderHash,
    /// 2. The Ed25519 signature over header_hash verifies under the trusted key.
    Signature,
    /// 3. The leaf with audit_path, tx_index and tree_size gives header.tx_root.
    Inclusion,
    /// 4. tx.validation is VALID.
    Validation,
    /// 5. The write for the property has the record hash being checked.
    RecordHash,
}

impl Step {
    pub fn describe(&self) -> &'static str {
        match self {
            Step::Shape => "step 0 (document shape)",
            Step::HeaderHash => "step 1 (header hash)",
            Step::Signature => "step 2 (orderer signature)",
            Step::Inclusion => "step 3 (transaction inclusion)",
            Step::Validation => "step 4 (validation code)",
            Step::RecordHash => "step 5 (record hash)",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("proof fails at {}: {why}", step.describe())]
pub struct ProofError {
    pub step: Step,
    pub why: String,
}

/// What the caller wants the proof to establish in step 5.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// The key whose write is checked; by default the property the transaction's event names.
    pub key: Option<String>,
    /// The record hash the write must have; by default any (the hash found is reported).
    pub record_hash: Option<Hash32>,
}

/// A proof that held, and what it proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub channel: String,
    pub block_number: u64,
    pub tx_id: String,
    pub key: String,
    pub record_hash: Hash32,
}

fn fail<T>(step: Step, why: impl Into<String>) -> Result<T, ProofError> {
    Err(ProofError {
        step,
        why: why.into(),
    })
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value, ProofError> {
    match v.get(name) {
        Some(x) => Ok(x),
        None => fail(Step::Shape, format!("missing field {name:?}")),
    }
}

fn u64_field(v: &Value, name: &str) -> Result<u64, ProofError> {
    field(v, name)?.as_u64().map_or_else(
        || {
            fail(
                Step::Shape,
                format!("{name:?} must be a non-negative integer"),
            )
        },
        Ok,
    )
}

fn hash_field(v: &Value, name: &str, step: Step) -> Result<Hash32, ProofError> {
    match field(v, name)?.as_str().map(str::parse::<Hash32>) {
        Some(Ok(h)) => Ok(h),
        _ => fail(step, format!("{name:?} must be 64 lower-case hex digits")),
    }
}

fn jcs_hash(v: &Value, step: Step) -> Result<Hash32, ProofError> {
    hash_jcs(&Canonical(v)).or_else(|e| fail(step, e.to_string()))
}

/// Checks a proof document against the orderer key the verifier trusts.
pub fn verify_proof(
    doc: &Value,
    trusted: &VerifyingKey,
    expect: &Expect,
) -> Result<Verified, ProofError> {
    if !doc.is_object() {
        return fail(Step::Shape, "a proof document is a JSON object");
    }
    let header = field(doc, "header")?;
    let tx = field(doc, "tx")?;
    let tx_index = u64_field(doc, "tx_index")?;
    let tree_size = u64_field(doc, "tree_size")?;
    let Some(path) = field(doc, "audit_path")?.as_array() else {
        return fail(Step::Shape, "\"audit_path\" must be an array");
    };

    // 1. The header is the one that was hashed (and the document's summary fields agree).
    let claimed = hash_field(doc, "header_hash", Step::HeaderHash)?;
    let computed = jcs_hash(header, Step::HeaderHash)?;
    if computed != claimed {
        return fail(
            Step::HeaderHash,
            format!("sha256(JCS(header)) is {computed}, the proof says {claimed}"),
        );
    }
    if doc.get("block_number") != header.get("number")
        || doc.get("channel") != header.get("channel")
    {
        return fail(
            Step::HeaderHash,
            "channel and block_number do not match the signed header",
        );
    }

    // 2. The orderer signed that header hash.
    let sig: Signature = match serde_json::from_value(field(doc, "signature")?.clone()) {
        Ok(s) => s,
        Err(e) => return fail(Step::Signature, format!("signature is malformed: {e}")),
    };
    if let Err(e) = verify_header_signature(trusted, &claimed, &sig) {
        return fail(Step::Signature, e.to_string());
    }

    // 3. The transaction is in the block the header commits to.
    let tx_count = header.get("tx_count").and_then(Value::as_u64);
    if tx_count != Some(tree_size) {
        return fail(
            Step::Inclusion,
            format!("tree_size {tree_size} is not the header's tx_count {tx_count:?}"),
        );
    }
    let tx_root = hash_field(header, "tx_root", Step::Inclusion)?;
    let mut siblings = Vec::with_capacity(path.len());
    for p in path {
        match p.as_str().map(str::parse::<Hash32>) {
            Some(Ok(h)) => siblings.push(h),
            _ => {
                return fail(
                    Step::Inclusion,
                    "audit_path holds something other than a hash",
                )
            }
        }
    }
    let leaf = match value_to_jcs(tx) {
        Ok(bytes) => merkle::leaf_hash(&bytes),
        Err(e) => return fail(Step::Inclusion, e.to_string()),
    };
    match merkle::root_from_path(leaf, tx_index, tree_size, &siblings) {
        Some(root) if root == tx_root => {}
        Some(root) => {
            return fail(
                Step::Inclusion,
                format!("the audit path leads to {root}, the header's tx_root is {tx_root}"),
            )
        }
        None => {
            return fail(
                Step::Inclusion,
                format!(
                "an audit path of {} hashes cannot place leaf {tx_index} in a tree of {tree_size}",
                siblings.len()
            ),
            )
        }
    }

    // 4. The transaction was valid.
    match tx.get("validation").and_then(Value::as_str) {
        Some("VALID") => {}
        other => {
            return fail(
                Step::Validation,
                format!("validation is {}, not VALID", other.unwrap_or("missing")),
            )
        }
    }

    // 5. It wrote the value being checked.
    let writes = tx.get("writes").and_then(Value::as_array);
    let key = match &expect.key {
        Some(k) => k.clone(),
        None => match (tx.pointer("/event/id").and_then(Value::as_str), writes) {
            (Some(id), Some(w)) if w.iter().any(|x| x.get("key") == Some(&Value::from(id))) => {
                id.to_string()
            }
            (_, Some(w)) if w.len() == 1 => match w[0].get("key").and_then(Value::as_str) {
                Some(k) => k.to_string(),
                None => return fail(Step::RecordHash, "the write has no key"),
            },
            _ => {
                return fail(
                    Step::RecordHash,
                    "say which key to check: the transaction names none",
                )
            }
        },
    };
    let Some(write) = writes
        .into_iter()
        .flatten()
        .find(|w| w.get("key").and_then(Value::as_str) == Some(key.as_str()))
    else {
        return fail(
            Step::RecordHash,
            format!("the transaction writes nothing under {key}"),
        );
    };
    let Some(value) = write.get("value") else {
        return fail(
            Step::RecordHash,
            format!("the write under {key} has no value"),
        );
    };
    let record_hash = jcs_hash(value, Step::RecordHash)?;
    if let Some(want) = expect.record_hash {
        if want != record_hash {
            return fail(
                Step::RecordHash,
                format!("the ledger wrote record hash {record_hash} under {key}, not {want}"),
            );
        }
    }
    Ok(Verified {
        channel: header["channel"].as_str().unwrap_or_default().to_string(),
        block_number: header["number"].as_u64().unwrap_or_default(),
        tx_id: tx
            .get("tx_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        key,
        record_hash,
    })
}
