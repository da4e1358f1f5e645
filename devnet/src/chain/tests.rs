//! Committed blocks seen by a verifier: `ledger::proof::verify_proof` over proofs cut from
//! them. Every position of several block sizes verifies, any changed byte is caught, and
//! each of ledger.md's five steps names itself when it is the one that fails.

use ed25519_dalek::VerifyingKey;

use crate::chain::{Chains, DevnetConfig};
use crate::tx_id;
use ledger::canonical::{hash_jcs, Canonical};
use ledger::model::{Proof, Proposal, TxKind};
use ledger::proof::{verify_proof, Expect, Step};
use ledger::signing::parse_public_key;
use serde_json::Value;

/// A block of `n` creates on a fresh chain, and the proof of its transaction `pick`.
fn proof_of(n: usize, pick: usize) -> (Proof, VerifyingKey) {
    let dir = tempfile::tempdir().unwrap();
    let (mut chains, _) = Chains::open(dir.path(), &DevnetConfig::default()).unwrap();
    let items = (0..n)
        .map(|i| {
            let p = Proposal {
                kind: TxKind::CreateLandRecord,
                creator: "registrar@TS".into(),
                nonce: i.to_string(),
                args: serde_json::json!({
                    "request_id": format!("r{i}"), "state": "TS", "district": "Hyderabad",
                    "mandal": "Amberpet", "village": "Bagh Amberpet", "survey_no": format!("{i}/A"),
                    "owners": [{"owner_ref": "x", "name": "లక్ష్మి దేవి", "share_pct": 100}],
                    "area_sq_m": 100 + i, "area_text": "120 sq.yds", "land_type": "Residential",
                    "market_value": 1_000_000
                }),
            };
            (tx_id(&p, "land-registry-primary").unwrap(), p)
        })
        .collect();
    let (_, block) = chains.commit(0, 0, items).unwrap();
    let key = parse_public_key(&chains.public_key_hex()).unwrap();
    (block.proof(pick).unwrap().unwrap(), key)
}

#[test]
fn proofs_hold_for_every_position_of_several_block_sizes() {
    for n in [1, 2, 3, 7, 8, 13] {
        for pick in [0, n / 2, n - 1] {
            let (proof, key) = proof_of(n, pick);
            let doc = serde_json::to_value(&proof).unwrap();
            let want = hash_jcs(&Canonical(&proof.tx.writes[0].value)).unwrap();
            let v = verify_proof(
                &doc,
                &key,
                &Expect {
                    key: None,
                    record_hash: Some(want),
                },
            )
            .unwrap();
            assert_eq!((v.block_number, v.record_hash), (1, want));
        }
    }
}

#[test]
fn any_changed_byte_of_record_header_or_path_is_caught() {
    let (proof, key) = proof_of(5, 3);
    let text = serde_json::to_string(&proof).unwrap();
    let spans = [
        serde_json::to_string(&proof.tx.writes[0].value).unwrap(),
        serde_json::to_string(&proof.header).unwrap(),
        serde_json::to_string(&proof.audit_path).unwrap(),
        serde_json::to_string(&proof.signature).unwrap(),
    ];
    let expect = Expect::default();
    assert!(verify_proof(&serde_json::from_str(&text).unwrap(), &key, &expect).is_ok());
    let mut checked = 0;
    for span in &spans {
        let start = text.find(span.as_str()).unwrap();
        for i in start..start + span.len() {
            let mut bytes = text.clone().into_bytes();
            bytes[i] = match bytes[i] {
                b'0'..=b'8' | b'a'..=b'e' | b'A'..=b'Y' => bytes[i] + 1,
                b'9' => b'0',
                b'f' => b'a',
                b'g'..=b'z' => b'a' + (bytes[i] - b'a' + 1) % 26,
                b'Z' => b'A',
                other => other ^ 0x01,
            };
            checked += 1;
            let Ok(s) = String::from_utf8(bytes) else {
                continue;
            };
            let Ok(doc) = serde_json::from_str::<Value>(&s) else {
                continue;
            };
            assert!(
                verify_proof(&doc, &key, &expect).is_err(),
                "a change at byte {i} ({:?}) went unnoticed",
                &text[i.saturating_sub(20)..(i + 20).min(text.len())]
            );
        }
    }
    assert!(checked > 500);
}

#[test]
fn each_step_names_itself() {
    let (proof, key) = proof_of(4, 1);
    let good = serde_json::to_value(&proof).unwrap();
    let step = |doc: &Value, expect: &Expect| verify_proof(doc, &key, expect).unwrap_err().step;
    let e = Expect::default();

    let mut d = good.clone();
    d["header"]["timestamp"] = serde_json::json!(1);
    assert_eq!(step(&d, &e), Step::HeaderHash);

    let other = ledger::signing::OrdererKey::generate();
    let other_key = parse_public_key(&other.public_hex()).unwrap();
    assert_eq!(
        verify_proof(&good, &other_key, &e).unwrap_err().step,
        Step::Signature
    );

    let mut d = good.clone();
    d["tx_index"] = serde_json::json!(2);
    assert_eq!(step(&d, &e), Step::Inclusion);
    let mut d = good.clone();
    d["tree_size"] = serde_json::json!(5);
    assert_eq!(step(&d, &e), Step::Inclusion);

    let mut d = good.clone();
    d["tx"]["validation"] = serde_json::json!("BAD_ARGUMENT");
    assert_eq!(
        step(&d, &e),
        Step::Inclusion,
        "the leaf covers the validation code"
    );

    let wrong = Expect {
        key: None,
        record_hash: Some(ledger::canonical::sha256(b"x")),
    };
    assert_eq!(step(&good, &wrong), Step::RecordHash);
    let absent = Expect {
        key: Some("LRI-IND-TS-2026-00-00001".into()),
        record_hash: None,
    };
    assert_eq!(step(&good, &absent), Step::RecordHash);
    assert_eq!(step(&serde_json::json!([1]), &e), Step::Shape);
    assert_eq!(step(&serde_json::json!({"header": {}}), &e), Step::Shape);
}

#[test]
fn an_invalid_transaction_is_refused_at_step_4() {
    let dir = tempfile::tempdir().unwrap();
    let (mut chains, _) = Chains::open(dir.path(), &DevnetConfig::default()).unwrap();
    let p = Proposal {
        kind: TxKind::TransferLandRecord,
        creator: "registrar@TS".into(),
        nonce: "1".into(),
        args: serde_json::json!({"property_id": "LRI-IND-TS-2026-00-00001", "owners": []}),
    };
    let id = tx_id(&p, "land-registry-primary").unwrap();
    let (_, block) = chains.commit(0, 0, vec![(id, p)]).unwrap();
    let key = parse_public_key(&chains.public_key_hex()).unwrap();
    let doc = serde_json::to_value(block.proof(0).unwrap().unwrap()).unwrap();
    assert_eq!(
        verify_proof(&doc, &key, &Expect::default())
            .unwrap_err()
            .step,
        Step::Validation
    );
}
