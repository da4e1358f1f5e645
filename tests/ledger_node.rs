//! The devnet node as a real process: its HTTP API, block streams that follow the tip,
//! proofs checked by `landql verify-proof`, and crash safety under SIGKILL.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{landql, LedgerProcess};
use futures::StreamExt;
use ledger::canonical::{hash_jcs, Canonical};
use ledger::client::{HttpLedger, Ledger, LedgerError};
use ledger::model::{Proposal, Receipt, TxKind, Validation};
use ledger::Hash32;
use serde_json::{json, Value};

const PRIMARY: &str = "land-registry-primary";

fn create(i: u64, tag: &str) -> Proposal {
    Proposal {
        kind: TxKind::CreateLandRecord,
        creator: "registrar@KA".into(),
        nonce: format!("{tag}-{i}"),
        args: json!({
            "request_id": format!("{tag}-{i}"), "state": "KA", "district": "Belgaum",
            "mandal": "Athni", "village": "Ainapur", "survey_no": format!("{tag}/{i}"),
            "owners": [{"owner_ref": format!("o{i}"), "name": "ರವಿ ಕುಮಾರ್", "father_name": "Basappa", "share_pct": 100}],
            "area_sq_m": 4047, "area_text": "1 acre", "land_type": "Agricultural", "market_value": 900000
        }),
    }
}

fn client(url: &str) -> HttpLedger {
    HttpLedger::new(url, Duration::from_secs(10)).unwrap()
}

async fn get(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_api_streams_and_proofs() {
    let dir = tempfile::tempdir().unwrap();
    let node = LedgerProcess::start(dir.path(), &["--batch-timeout-ms", "20"]);
    let l = client(&node.url);
    let info = l.info().await.unwrap();
    assert_eq!(info.channels.len(), 2);
    assert_eq!(info.channel(PRIMARY).unwrap().height, 1, "genesis only");
    let pubkey = std::fs::read_to_string(dir.path().join("orderer.pub")).unwrap();
    assert_eq!(pubkey.trim(), info.orderer_public_key);
    let trusted = ledger::signing::parse_public_key(&info.orderer_public_key).unwrap();

    // Follow the channel from genesis before anything is committed.
    let mut stream = l.blocks(PRIMARY, 0).await.unwrap();
    let genesis = stream.next().await.unwrap().unwrap();
    genesis.check(&trusted, 0, &Hash32::ZERO).unwrap();

    // A batch of proposals shares one block; receipts come back in order.
    let batch: Vec<Proposal> = (0..25).map(|i| create(i, "a")).collect();
    let receipts = l.submit(PRIMARY, &batch).await.unwrap();
    assert_eq!(receipts.len(), 25);
    assert!(receipts
        .iter()
        .all(|r| r.validation == Validation::Valid && r.block_number == 1));
    assert_eq!(
        receipts.iter().map(|r| r.tx_index).collect::<Vec<_>>(),
        (0..25).collect::<Vec<_>>()
    );
    // Resubmitting is idempotent: the original receipts, nothing committed twice.
    let again = l.submit(PRIMARY, &batch[..3]).await.unwrap();
    assert_eq!(again, receipts[..3].to_vec());

    // The live stream delivers the new block, linked and signed.
    let b1 = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    b1.check(&trusted, 1, &genesis.header_hash).unwrap();
    assert_eq!(b1.txs.len(), 25);

    // Record, hash and history.
    let id: ledger::PropertyId = receipts[7].property_id.clone().unwrap().parse().unwrap();
    let rv = l.record(&id).await.unwrap().unwrap();
    assert_eq!(hash_jcs(&Canonical(&rv.record)).unwrap(), rv.record_hash);
    assert_eq!(rv.version.tx_id, receipts[7].tx_id);
    let transfer = Proposal {
        kind: TxKind::TransferLandRecord,
        creator: "registrar@KA".into(),
        nonce: "t1".into(),
        args: json!({"property_id": id.to_string(), "expected_tx": rv.version.tx_id,
                     "owners": [{"owner_ref": "new", "name": "Lakshmi", "share_pct": 100}]}),
    };
    let r = l.submit(PRIMARY, &[transfer]).await.unwrap();
    assert_eq!(r[0].validation, Validation::Valid);
    let history = l.history(&id).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].record_hash, rv.record_hash);
    // Lower case and spaces in the ID are forgiven.
    let (status, body) = get(&format!(
        "{}/v1/records/%20{}",
        node.url,
        id.to_string().to_lowercase()
    ))
    .await;
    assert_eq!(status, 200, "{body}");

    // A stream from an old height replays history, then follows the live tip.
    let mut late = l.blocks(PRIMARY, 1).await.unwrap();
    assert_eq!(late.next().await.unwrap().unwrap().header.number, 1);
    assert_eq!(late.next().await.unwrap().unwrap().header.number, 2);
    l.submit(PRIMARY, &[create(99, "live")]).await.unwrap();
    let b3 = tokio::time::timeout(Duration::from_secs(10), late.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(b3.header.number, 3);

    // Errors are JSON with codes and say what is wrong.
    for (path, status, code) in [
        ("/v1/records/LRI-IND-TS-26-01-00001", 400, "BAD_PROPERTY_ID"),
        (
            "/v1/records/LRI-IND-TS-2026-01-99999",
            404,
            "RECORD_NOT_FOUND",
        ),
        ("/v1/transactions/xyz/proof", 400, "BAD_TX_ID"),
        (
            &format!("/v1/transactions/{}/proof", "0".repeat(64)),
            404,
            "TX_NOT_FOUND",
        ),
        ("/v1/channels/nope/blocks/0", 404, "CHANNEL_NOT_FOUND"),
        (
            "/v1/channels/land-registry-primary/blocks/99",
            404,
            "BLOCK_NOT_FOUND",
        ),
        (
            "/v1/channels/land-registry-primary/blocks/x",
            400,
            "BAD_ARGUMENT",
        ),
        ("/v1/nothing", 404, "NOT_FOUND"),
    ] {
        let (s, body) = get(&format!("{}{path}", node.url)).await;
        assert_eq!(
            (s, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{path}: {body}"
        );
        assert!(body["error"]["message"].as_str().unwrap().len() > 5);
    }
    let http = reqwest::Client::new();
    for (body, code) in [
        ("{not json", "BAD_JSON"),
        ("[]", "BAD_PROPOSAL"),
        ("42", "BAD_PROPOSAL"),
        (
            r#"{"kind":"Steal","creator":"x","nonce":"1","args":{}}"#,
            "BAD_PROPOSAL",
        ),
        (
            r#"{"kind":"CreateLandRecord","creator":"x","nonce":"1","args":[]}"#,
            "BAD_PROPOSAL",
        ),
    ] {
        let r = http
            .post(format!("{}/v1/channels/{PRIMARY}/transactions", node.url))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], code, "{body}: {v}");
    }
    match l.submit("no-such-channel", &[create(1, "x")]).await {
        Err(LedgerError::Refused { code, .. }) => assert_eq!(code, "CHANNEL_NOT_FOUND"),
        other => panic!("{other:?}"),
    }

    // A proof from the running node verifies offline and fails when tampered with.
    let proof = l.proof(&receipts[7].tx_id).await.unwrap().unwrap();
    let file = dir.path().join("proof.json");
    std::fs::write(&file, &proof.json).unwrap();
    let run = |path: &std::path::Path, extra: &[&str]| {
        landql()
            .arg("verify-proof")
            .arg(path)
            .args(["--orderer-key", &info.orderer_public_key])
            .args(extra)
            .output()
            .unwrap()
    };
    let ok = run(&file, &["--record-hash", &rv.record_hash.to_hex()]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let tampered = [
        (
            proof
                .json
                .replacen("\"area_sq_m\":4047", "\"area_sq_m\":4048", 1),
            "step 3",
        ),
        (
            proof
                .json
                .replacen(&proof.proof.header.tx_root.to_hex(), &"1".repeat(64), 1),
            "step 1",
        ),
        (
            proof
                .json
                .replacen(&proof.proof.audit_path[0].to_hex(), &"2".repeat(64), 1),
            "step 3",
        ),
    ];
    for (text, step) in tampered {
        assert_ne!(text, proof.json);
        std::fs::write(&file, &text).unwrap();
        let out = run(&file, &[]);
        let said = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{said}");
        assert!(said.contains(step), "{said}");
    }
    std::fs::write(&file, &proof.json).unwrap();
    let wrong_key = ledger::signing::OrdererKey::generate().public_hex();
    let out = landql()
        .arg("verify-proof")
        .arg(&file)
        .args(["--orderer-key", &wrong_key])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("step 2"));
    // The newest version's proof holds for the current record hash; the old one's does not.
    let out = run(&file, &["--record-hash", &history[1].record_hash.to_hex()]);
    assert_eq!(out.status.code(), Some(1));
}

/// Submits batches from several tasks until told to stop; returns every acknowledged
/// proposal with its receipt.
async fn hammer(
    url: String,
    tag: String,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<(Proposal, Receipt)> {
    let l = client(&url);
    let mut acked = Vec::new();
    let mut i = 0u64;
    while !*stop.borrow() {
        let batch: Vec<Proposal> = (0..20).map(|k| create(i * 20 + k, &tag)).collect();
        i += 1;
        match l.submit(PRIMARY, &batch).await {
            Ok(rs) => acked.extend(batch.into_iter().zip(rs)),
            Err(_) => break, // the node died under us: this batch was never acknowledged
        }
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_load_loses_no_acknowledged_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked: Vec<(Proposal, Receipt)> = Vec::new();
    for round in 0..4 {
        let node = LedgerProcess::start(dir.path(), &[]);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let tasks: Vec<_> = (0..4)
            .map(|t| {
                tokio::spawn(hammer(
                    node.url.clone(),
                    format!("r{round}t{t}"),
                    stop_rx.clone(),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(700 + 300 * round)).await;
        let mut node = node;
        node.kill9(); // mid-load: some batches are in flight, unacknowledged
        let _ = stop_tx.send(true);
        for t in tasks {
            acked.extend(t.await.unwrap());
        }
        drop(node);
    }
    assert!(
        acked.len() > 200,
        "too little load got through: {}",
        acked.len()
    );

    // Every acknowledged transaction is still where its receipt said.
    let node = LedgerProcess::start(dir.path(), &[]);
    let l = client(&node.url);
    let mut by_block: HashMap<u64, usize> = HashMap::new();
    for chunk in acked.chunks(500) {
        let proposals: Vec<Proposal> = chunk.iter().map(|(p, _)| p.clone()).collect();
        let again = l.submit(PRIMARY, &proposals).await.unwrap();
        for ((_, first), second) in chunk.iter().zip(again) {
            assert_eq!(
                first, &second,
                "an acknowledged transaction moved or vanished"
            );
            *by_block.entry(first.block_number).or_default() += 1;
        }
    }
    let height = l.info().await.unwrap().channel(PRIMARY).unwrap().height;
    // And the chain reads back whole and linked, block by block.
    let trusted =
        ledger::signing::parse_public_key(&l.info().await.unwrap().orderer_public_key).unwrap();
    let mut s = l.blocks(PRIMARY, 0).await.unwrap();
    let mut prev = Hash32::ZERO;
    for n in 0..height {
        let b = s.next().await.unwrap().unwrap();
        b.check(&trusted, n, &prev).unwrap();
        prev = b.header_hash;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_log_tail_is_cut_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = LedgerProcess::start(dir.path(), &[]);
    let l = client(&node.url);
    let receipts = l
        .submit(
            PRIMARY,
            &(0..10).map(|i| create(i, "torn")).collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    let height = l.info().await.unwrap().channel(PRIMARY).unwrap().height;
    node.kill9();
    let log = dir.path().join("channels").join(format!("{PRIMARY}.log"));
    let good = std::fs::metadata(&log).unwrap().len();
    // A torn frame: a header promising more bytes than follow.
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut f, &[200, 0, 0, 0, 1, 2, 3, 4, b'{', b'"']).unwrap();
    drop(f);
    let node = LedgerProcess::start(dir.path(), &[]);
    let l = client(&node.url);
    assert_eq!(std::fs::metadata(&log).unwrap().len(), good);
    assert_eq!(
        l.info().await.unwrap().channel(PRIMARY).unwrap().height,
        height
    );
    let id = receipts[3].property_id.clone().unwrap().parse().unwrap();
    assert!(l.record(&id).await.unwrap().is_some());
    // And it goes on writing after the cut.
    let r = l.submit(PRIMARY, &[create(11, "torn")]).await.unwrap();
    assert_eq!(r[0].block_number, height);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_are_cut_by_size_and_concurrent_proposals_share_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let node = LedgerProcess::start(
        dir.path(),
        &["--max-txs", "100", "--batch-timeout-ms", "200"],
    );
    let l = client(&node.url);
    // One request of 250 proposals: cut at 100, 100, 50.
    let receipts = l
        .submit(
            PRIMARY,
            &(0..250).map(|i| create(i, "size")).collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    let mut per_block: HashMap<u64, usize> = HashMap::new();
    for r in &receipts {
        *per_block.entry(r.block_number).or_default() += 1;
    }
    let mut sizes: Vec<usize> = per_block.values().copied().collect();
    sizes.sort();
    assert_eq!(sizes, vec![50, 100, 100]);

    // Thirty clients proposing one transaction each at the same time share blocks.
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let l = l.clone();
            tokio::spawn(async move { l.submit(PRIMARY, &[create(i, "conc")]).await.unwrap() })
        })
        .collect();
    let mut blocks = std::collections::HashSet::new();
    for t in tasks {
        blocks.insert(t.await.unwrap()[0].block_number);
    }
    assert!(
        blocks.len() <= 3,
        "30 concurrent proposals took {} blocks",
        blocks.len()
    );
}

/// `GET /metrics`: transactions by kind and validation, commit latency, block time, the
/// queue and the heights, as the node committed them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_was_committed() {
    let dir = tempfile::tempdir().unwrap();
    let node = LedgerProcess::start(dir.path(), &["--batch-timeout-ms", "20"]);
    let l = client(&node.url);
    let batch: Vec<Proposal> = (0..3).map(|i| create(i, "m")).collect();
    let receipts = l.submit(PRIMARY, &batch).await.unwrap();
    let id = receipts[0].property_id.clone().unwrap();
    // A transfer that names a transaction other than the record's last: refused by the
    // chaincode, committed as invalid.
    let stale = Proposal {
        kind: TxKind::TransferLandRecord,
        creator: "registrar@KA".into(),
        nonce: "m-stale".into(),
        args: json!({"property_id": id, "expected_tx": Hash32::ZERO,
                     "owners": [{"owner_ref": "new", "name": "Lakshmi", "share_pct": 100}]}),
    };
    let r = l.submit(PRIMARY, &[stale]).await.unwrap();
    assert_ne!(r[0].validation, Validation::Valid, "{r:?}");
    let code = r[0].validation.as_str();

    let text = reqwest::get(format!("{}/metrics", node.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let ch = format!("channel=\"{PRIMARY}\"");
    for line in [
        format!(
            "landql_ledger_transactions_total{{{ch},kind=\"create_land_record\",state=\"valid\"}} 3"
        ),
        format!(
            "landql_ledger_transactions_total{{{ch},kind=\"transfer_land_record\",state=\"invalid\"}} 1"
        ),
        format!("landql_ledger_transactions_invalid_total{{{ch},code=\"{code}\"}} 1"),
        format!("landql_ledger_commit_duration_seconds_count{{{ch}}} 4"),
        format!("landql_ledger_blocks_total{{{ch}}} 2"),
        format!("landql_ledger_block_interval_seconds_count{{{ch}}} 1"),
        format!("landql_ledger_height{{{ch}}} 3"),
        format!("landql_ledger_pending_transactions{{{ch}}} 0"),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from\n{text}"
        );
    }
}
