//! The bodies of the cargo-fuzz targets in `fuzz/` (README, "Fuzzing"), and the corpus
//! replay that runs them on stable.
//!
//! Each target is one function here, so that the libFuzzer binary and `cargo test` run the
//! same code: a crash input found on nightly is checked in under `fuzz/seeds/<target>/` and
//! from then on every test run replays it. Each body drives the path the node or a reader
//! really takes and asserts what must hold whatever the input — a panic is the finding.
//!
//! - [`property_id`]: parsing, and printing in every form re-parses to the same ID;
//! - [`proposal`]: an HTTP body of proposals through the node's submit path (parse, tx_id,
//!   dedupe, execute a block on each channel against a seeded world, seal); the block it
//!   would write must decode, check, replay on restart, and prove every transaction;
//! - [`block`]: block JSON through [`Block::check`], the restart replay and proof cutting,
//!   and a block log file (raw, or framed from the input's lines and then damaged) through
//!   the log reader's torn-tail handling;
//! - [`proof`]: any JSON document through [`verify_proof`], and through [`jcs`].
//!
//! Built only with the `fuzzing` feature or for this crate's tests.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ed25519_dalek::VerifyingKey;
use serde_json::Value;

use crate::chain::{replay_block, Chains, DevnetConfig};
use crate::http::parse_proposals;
use crate::log::{BlockLog, Tail};
use crate::state::{tx_id, ChannelIx, WorldState};
use ledger::canonical::{hash_jcs, sha256, to_jcs, value_to_jcs, Canonical, Hash32};
use ledger::id::{IdForm, PropertyId};
use ledger::model::{channels, Block, Proposal, TxKind};
use ledger::proof::{verify_proof, Expect, Step};
use ledger::signing::parse_public_key;

/// 2026-01-01T00:00:00Z: the genesis time of the fuzz world.
const GENESIS_TIME: i64 = 1_767_225_600_000;
/// When the fuzz world's own blocks were cut.
const SEED_TIME: i64 = GENESIS_TIME + 3_600_000;
/// When fuzzed proposals execute: a fixed time, so that an input always does the same.
const FUZZ_TIME: i64 = GENESIS_TIME + 86_400_000;
/// The fuzz world's orderer secret: fixed, so that the checked-in blocks and proofs of the
/// seed corpus verify in every run and the fuzzer can mutate past the signature check.
const SECRET: [u8; 32] = [0x5a; 32];
/// Transactions per block whose proofs are cut and verified (each costs a signature check).
const PROOFS_PER_BLOCK: usize = 16;

/// A small devnet — primary, docs and a regional channel for KA — holding a few records,
/// a transfer and a linked document, for proposals to act on.
pub struct World {
    chains: Chains,
    trusted: VerifyingKey,
    /// The property IDs the world's records got, in creation order.
    ids: Vec<String>,
}

/// The fuzz world, built once per process.
pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| match build_world() {
        Ok(w) => w,
        // The harness cannot run without it; this is a broken machine, not a finding.
        Err(e) => panic!("cannot build the fuzz world: {e}"),
    })
}

fn create(creator: &str, nonce: &str, state: &str, survey: &str, owner: &str) -> Proposal {
    Proposal {
        kind: TxKind::CreateLandRecord,
        creator: creator.into(),
        nonce: nonce.into(),
        args: serde_json::json!({
            "request_id": format!("req-{nonce}"), "state": state, "district": "K.V.Rangareddy",
            "mandal": "Saroornagar", "village": "Balapur", "survey_no": survey,
            "khata_no": "1045",
            "owners": [{"owner_ref": format!("ref-{owner}"), "name": owner,
                        "father_name": "వెంకట రావు", "share_pct": 100}],
            "area_sq_m": 201, "area_text": "240 sq.yds", "land_type": "Residential",
            "market_value": 4_500_000
        }),
    }
}

fn build_world() -> Result<World, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::fs::write(dir.path().join("orderer.key"), hex::encode(SECRET))
        .map_err(|e| e.to_string())?;
    let cfg = DevnetConfig {
        regional_states: vec!["KA".into()],
        ..DevnetConfig::default()
    };
    let (mut chains, _) =
        Chains::open_at(dir.path(), &cfg, GENESIS_TIME).map_err(|e| e.to_string())?;
    chains.durable = false;
    let ix = |name: &str| {
        chains
            .channel_index(name)
            .ok_or_else(|| format!("no channel {name}"))
    };
    let (primary, docs, ka) = (
        ix(channels::PRIMARY)?,
        ix(channels::DOCS)?,
        ix(&channels::regional("KA"))?,
    );
    let mut ids = Vec::new();
    let commit =
        |chains: &mut Chains, ch: ChannelIx, ps: Vec<Proposal>| -> Result<Vec<_>, String> {
            let name = chains.channel_names()[ch as usize].clone();
            let items = ps
                .into_iter()
                .map(|p| Ok((tx_id(&p, &name).map_err(|e| e.to_string())?, p)))
                .collect::<Result<Vec<_>, String>>()?;
            let (receipts, _) = chains
                .commit(ch, SEED_TIME, items)
                .map_err(|e| e.to_string())?;
            Ok(receipts)
        };
    let receipts = commit(
        &mut chains,
        primary,
        vec![
            create("registrar@TS", "1", "TS", "123/A", "Ravi Kumar"),
            create("registrar@TS", "2", "TS", "124", "లక్ష్మి దేవి"),
            create("registrar@AP", "3", "AP", "7/1", "Sita Rao"),
            // The same parcel again: committed as DUPLICATE_PARCEL.
            create("registrar@TS", "4", "TS", "123-a", "Ravi Kumar"),
        ],
    )?;
    ids.extend(
        receipts
            .iter()
            .filter_map(|r| r.property_id.clone())
            .take(3),
    );
    let ka_receipts = commit(
        &mut chains,
        ka,
        vec![create("registrar@KA", "5", "KA", "55", "ಲಕ್ಷ್ಮಿ")],
    )?;
    ids.extend(ka_receipts.iter().filter_map(|r| r.property_id.clone()));
    if ids.len() != 4 {
        return Err(format!("the world's creates gave {ids:?}"));
    }
    commit(
        &mut chains,
        primary,
        vec![Proposal {
            kind: TxKind::TransferLandRecord,
            creator: "registrar@TS".into(),
            nonce: "6".into(),
            args: serde_json::json!({"property_id": ids[0],
                "owners": [{"owner_ref": "ref-b", "name": "Anil Reddy", "share_pct": 60},
                           {"owner_ref": "ref-c", "name": "अनिल", "share_pct": 40}]}),
        }],
    )?;
    commit(
        &mut chains,
        docs,
        vec![Proposal {
            kind: TxKind::LinkDocumentHash,
            creator: "registrar@TS".into(),
            nonce: "7".into(),
            args: serde_json::json!({"property_id": ids[0],
                "doc_hash": sha256(b"sale deed").to_hex(), "doc_type": "SaleDeed"}),
        }],
    )?;
    let trusted = parse_public_key(&chains.public_key_hex()).map_err(|e| e.to_string())?;
    // The logs stay open; their files are no longer needed once unlinked.
    drop(dir);
    Ok(World {
        chains,
        trusted,
        ids,
    })
}

impl World {
    /// The stored JSON of block `number` of `channel`.
    fn block_bytes(&self, channel: &str, number: u64) -> Option<Vec<u8>> {
        let ix = self.chains.channel_index(channel)?;
        self.chains.block_ref(ix, number)?.read().ok()
    }
}

/// Target `property_id`: any text either is refused or parses to an ID whose every printed
/// form parses back to the same parcel, in that form.
pub fn property_id(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(id) = text.parse::<PropertyId>() else {
        return;
    };
    let printed = id.to_string();
    assert_eq!(printed.parse::<PropertyId>().as_ref(), Ok(&id), "{printed}");
    assert_eq!(
        printed.to_ascii_lowercase().parse::<PropertyId>().as_ref(),
        Ok(&id)
    );
    for form in [IdForm::Sharded, IdForm::Encoded, IdForm::Legacy] {
        let other = id.in_form(form);
        let s = other.to_string();
        let back = s.parse::<PropertyId>();
        assert_eq!(
            back.as_ref(),
            Ok(&other),
            "{id:?} in form {form:?} prints {s}"
        );
        assert_eq!(
            (other.state(), other.year(), other.shard(), other.sequence()),
            (id.state(), id.year(), id.shard(), id.sequence())
        );
    }
    let json = serde_json::to_string(&id).unwrap_or_default();
    assert_eq!(serde_json::from_str::<PropertyId>(&json).ok(), Some(id));
}

/// Target `proposal`: a body of `POST /v1/channels/{ch}/transactions` through the node's
/// path on every channel. Refusing the body is fine; once it is accepted, executing it must
/// produce a block (an error there would stop the node's orderer for good) that the node
/// can read back on restart and that proves each of its transactions.
pub fn proposal(data: &[u8]) {
    let Ok(proposals) = parse_proposals(data) else {
        return;
    };
    let w = world();
    for (ix, name) in w.chains.channel_names().iter().enumerate() {
        let ix = ix as ChannelIx;
        // Node::submit: every proposal gets its tx_id first (a failure refuses the request).
        let Ok(items) = proposals
            .iter()
            .map(|p| tx_id(p, name).map(|id| (id, p.clone())))
            .collect::<Result<Vec<_>, _>>()
        else {
            continue;
        };
        // order_batch: a committed tx_id gets its old receipt, a repeated one waits for the
        // first copy; the rest go into the block.
        let mut seen = HashSet::new();
        let fresh: Vec<(Hash32, Proposal)> = items
            .into_iter()
            .filter(|(id, _)| !w.chains.state.txs.contains_key(id) && seen.insert(*id))
            .collect();
        if fresh.is_empty() {
            continue;
        }
        let ids: Vec<Hash32> = fresh.iter().map(|(id, _)| *id).collect();
        let built = match w.chains.build(ix, FUZZ_TIME, fresh) {
            Ok(b) => b,
            Err(e) => panic!("a block of accepted proposals failed on {name}: {e}"),
        };
        let block = &built.block;
        let height = w.chains.channels[ix as usize].height();
        assert_eq!(block.header.number, height);
        assert_eq!(built.receipts.len(), ids.len());
        for (i, ((r, tx), id)) in built.receipts.iter().zip(&block.txs).zip(&ids).enumerate() {
            assert_eq!((r.tx_id, tx.tx_id, r.tx_index), (*id, *id, i as u64));
            assert_eq!((r.validation, r.block_number), (tx.validation, height));
            if tx.is_valid() {
                assert_eq!(tx.writes.len(), 1, "a valid transaction writes one key");
                let event = tx.event.as_ref().map(|e| e.id.as_str());
                assert_eq!(event, r.property_id.as_deref());
                assert!(event.is_some());
            } else {
                assert!(tx.writes.is_empty() && tx.event.is_none());
            }
        }
        // What the node will serve under each key hashes as a verifier hashes the write.
        let served: Vec<(&str, Hash32)> = built.changes.written().collect();
        let writes: Vec<_> = block.txs.iter().flat_map(|t| &t.writes).collect();
        assert_eq!(served.len(), writes.len());
        for ((key, hash), write) in served.iter().zip(&writes) {
            assert_eq!(*key, write.key);
            assert_eq!(
                Ok(*hash),
                hash_jcs(&Canonical(&write.value)).map_err(|_| ())
            );
        }
        // The block as it would be written: it decodes to the same bytes, passes a reader's
        // check, and the node's restart accepts it.
        let decoded: Block = match serde_json::from_slice(&built.bytes) {
            Ok(b) => b,
            Err(e) => panic!("the node's own block does not decode: {e}"),
        };
        assert_eq!(to_jcs(&decoded).ok().as_deref(), Some(&built.bytes[..]));
        let tip = w.chains.channels[ix as usize].tip_hash;
        if let Err(e) = decoded.check(&w.trusted, height, &tip) {
            panic!("the node's own block fails a reader's check: {e}");
        }
        let mut state = WorldState::default();
        let mut at = (tip, 0);
        if let Err(e) = replay_block(&mut state, ix, name, height, &mut at, &built.bytes) {
            panic!("a restart would refuse the node's own block: {e}");
        }
        // Every transaction's proof verifies, up to its validation code.
        for i in 0..block.txs.len().min(PROOFS_PER_BLOCK) {
            let doc = match decoded.proof(i) {
                Ok(Some(p)) => serde_json::to_value(&p).unwrap_or_default(),
                other => panic!("no proof of transaction {i}: {other:?}"),
            };
            let verdict = verify_proof(&doc, &w.trusted, &Expect::default());
            if block.txs[i].is_valid() {
                let hash = hash_jcs(&Canonical(&block.txs[i].writes[0].value)).ok();
                assert_eq!(verdict.map(|v| Some(v.record_hash)), Ok(hash));
            } else {
                assert_eq!(verdict.map_err(|e| e.step), Err(Step::Validation));
            }
        }
    }
}

/// Target `block`. The input is `[mode][cut][flip_at: u16 LE][flip_xor][payload]`. Every
/// line of the payload is tried as a block's JSON ([`block_json`]). The payload is also a
/// channel's log file ([`block_log`]): as it is when `mode` is even, else each line framed
/// correctly (length, CRC32C) so that the reader gets past the checksum; then `cut` bytes
/// are taken off the end and the byte at `flip_at` is XORed with `flip_xor`.
pub fn block(data: &[u8]) {
    let (head, payload) = data.split_at(data.len().min(5));
    let mut h = [0u8; 5];
    h[..head.len()].copy_from_slice(head);
    let [mode, cut, f0, f1, xor] = h;
    for line in payload.split(|b| *b == b'\n') {
        block_json(line);
    }
    let mut file: Vec<u8> = if mode & 1 == 1 {
        payload
            .split(|b| *b == b'\n')
            .flat_map(|line| {
                let mut frame = Vec::with_capacity(8 + line.len());
                frame.extend_from_slice(&(line.len() as u32).to_le_bytes());
                frame.extend_from_slice(&crc32c::crc32c(line).to_le_bytes());
                frame.extend_from_slice(line);
                frame
            })
            .collect()
    } else {
        payload.to_vec()
    };
    file.truncate(file.len().saturating_sub(usize::from(cut)));
    if xor != 0 && !file.is_empty() {
        let at = usize::from(u16::from_le_bytes([f0, f1])) % file.len();
        file[at] ^= xor;
    }
    block_log(&file);
}

/// One block's JSON: a reader's check, the restart replay, and proofs of its transactions.
/// A block that passes the check yields proofs that pass the first three steps.
pub fn block_json(bytes: &[u8]) {
    let Ok(block) = serde_json::from_slice::<Block>(bytes) else {
        return;
    };
    // model.rs's sorted fields: the typed encoding is the JCS of the same value.
    let typed = to_jcs(&block).ok();
    let generic = serde_json::to_value(&block)
        .ok()
        .and_then(|v| value_to_jcs(&v).ok());
    assert!(
        typed.is_some() && typed == generic,
        "typed encoding is not JCS"
    );
    let w = world();
    let checked = block
        .check(&w.trusted, block.header.number, &block.header.prev_hash)
        .is_ok();
    let ix = w.chains.channel_index(&block.header.channel).unwrap_or(0);
    let mut tip = (block.header.prev_hash, 0);
    let _ = replay_block(
        &mut WorldState::default(),
        ix,
        &block.header.channel,
        block.header.number,
        &mut tip,
        bytes,
    );
    for i in 0..block.txs.len().min(PROOFS_PER_BLOCK) {
        let doc = match block.proof(i) {
            Ok(Some(p)) => serde_json::to_value(&p).unwrap_or_default(),
            other => panic!(
                "no proof of transaction {i} of {}: {other:?}",
                block.txs.len()
            ),
        };
        proof_doc(&doc);
        if checked {
            let verdict = verify_proof(&doc, &w.trusted, &Expect::default());
            if let Err(e) = verdict {
                assert!(
                    matches!(e.step, Step::Validation | Step::RecordHash),
                    "a checked block's proof fails early: {e}"
                );
            }
        }
    }
}

/// A scratch file for log images, one per thread (tests run the bodies concurrently).
fn scratch() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        };
        match dir {
            Ok(d) => d,
            Err(e) => panic!("no scratch directory: {e}"),
        }
    });
    dir.path()
        .join(format!("{:?}.log", std::thread::current().id()))
}

/// A log file image through the reader the node opens its logs with, replaying each block
/// as a restart does. An open that fails leaves the file as it was; one that succeeds cut
/// at most a tail, serves back exactly the blocks it accepted, and takes appends after them.
pub fn block_log(file: &[u8]) {
    let path = &scratch();
    if let Err(e) = std::fs::write(path, file) {
        panic!("cannot write the scratch log: {e}");
    }
    let mut state = WorldState::default();
    let mut tip = (Hash32::ZERO, 0);
    let mut seen: Vec<Vec<u8>> = Vec::new();
    let opened = BlockLog::open(path, |n, bytes| {
        replay_block(&mut state, 0, channels::PRIMARY, n, &mut tip, bytes)?;
        seen.push(bytes.to_vec());
        Ok(())
    });
    let after = std::fs::read(path).unwrap_or_default();
    let (mut log, tail) = match opened {
        Err(_) => {
            assert!(after == file, "a refused open changed the log");
            return;
        }
        Ok(x) => x,
    };
    let kept: usize = seen.iter().map(|b| 8 + b.len()).sum();
    assert!(after.len() == kept && after[..] == file[..kept]);
    assert_eq!(tail == Tail::Clean, kept == file.len());
    assert_eq!(log.len(), seen.len() as u64);
    for (n, b) in seen.iter().enumerate() {
        let read = log.block(n as u64).and_then(|r| r.read().ok());
        assert!(read.as_ref() == Some(b), "block {n} reads back differently");
    }
    if let Err(e) = log.append(b"{}", false) {
        panic!("cannot append after opening: {e}");
    }
    drop(log);
    match BlockLog::open(path, |_, _| Ok(())) {
        Ok((log, Tail::Clean)) => assert_eq!(log.len(), seen.len() as u64 + 1),
        Ok((_, tail)) => panic!("an append after a clean cut left a tail: {tail:?}"),
        Err(e) => panic!("the log does not reopen after an append: {e}"),
    }
}

/// Target `proof`: any JSON document through [`verify_proof`] and [`jcs`].
pub fn proof(data: &[u8]) {
    let Ok(doc) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    jcs(&doc);
    proof_doc(&doc);
}

/// A proof document: verification answers (never panics), and a proof that holds also holds
/// when the caller names the key and record hash it found.
fn proof_doc(doc: &Value) {
    let w = world();
    if let Ok(v) = verify_proof(doc, &w.trusted, &Expect::default()) {
        let again = verify_proof(
            doc,
            &w.trusted,
            &Expect {
                key: Some(v.key.clone()),
                record_hash: Some(v.record_hash),
            },
        );
        assert_eq!(again, Ok(v));
    }
}

/// JCS of any JSON value is deterministic, parses back to the same value (numbers compared
/// as the doubles JCS defines them to be), is a fixed point, and equals an independent
/// implementation's output.
pub fn jcs(v: &Value) {
    let Ok(bytes) = value_to_jcs(v) else {
        panic!("no JCS for {v}");
    };
    assert_eq!(value_to_jcs(v).ok().as_ref(), Some(&bytes));
    let back: Value = match serde_json::from_slice(&bytes) {
        Ok(b) => b,
        Err(e) => panic!("JCS output does not parse: {e}"),
    };
    assert!(same_json(v, &back), "JCS changed the value: {v} → {back}");
    assert_eq!(value_to_jcs(&back).ok().as_ref(), Some(&bytes));
    if let Ok(reference) = serde_json_canonicalizer::to_vec(v) {
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            String::from_utf8_lossy(&reference),
            "differs from the reference JCS"
        );
    }
}

/// JSON equality with numbers compared as IEEE doubles, as JCS reads them.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_json(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, p)| y.get(k).is_some_and(|q| same_json(p, q)))
        }
        _ => a == b,
    }
}

/// The seed corpus: `(target, file name, bytes)`, from the fuzz world itself.
pub fn seed_corpus() -> Vec<(&'static str, String, Vec<u8>)> {
    let w = world();
    let mut out: Vec<(&'static str, String, Vec<u8>)> = Vec::new();
    let mut add = |t: &'static str, name: &str, bytes: Vec<u8>| out.push((t, name.into(), bytes));

    // property_id: the three forms, messy spellings, and near misses.
    for (name, text) in [
        ("sharded", "LRI-IND-TS-2026-03-00567"),
        ("encoded", "LRI-IND-TS-2026-0300567"),
        ("legacy", "LRI-IND-TS-2026-000123"),
        ("long-sequence", "LRI-IND-KA-2019-07-123456789012"),
        ("messy", "  lri-ind-ka-2019-07-12345 \n"),
        ("bad-year", "LRI-IND-TS-1066-03-00567"),
        ("bad-zeros", "LRI-IND-TS-2026-03-005670"),
        ("too-long", "LRI-IND-TS-2026-99999999999999999999999"),
    ] {
        add("property_id", name, text.as_bytes().to_vec());
    }
    for (i, id) in w.ids.iter().enumerate() {
        add("property_id", &format!("world-{i}"), id.as_bytes().to_vec());
    }

    // proposal: each kind against the world, valid and refused, and a batch.
    let (ts, ap, ka) = (&w.ids[0], &w.ids[2], &w.ids[3]);
    let current = w
        .chains
        .state
        .current(ts)
        .map(|e| e.loc.tx_id.to_hex())
        .unwrap_or_default();
    let p = |kind: &str, creator: &str, args: Value| serde_json::json!({"kind": kind, "creator": creator, "nonce": "n1", "args": args});
    let owners = serde_json::json!([{"owner_ref": "r9", "name": "Meena", "share_pct": 100}]);
    let proposals = [
        (
            "create",
            p(
                "CreateLandRecord",
                "registrar@TS",
                serde_json::json!({
                    "request_id": "fz-1", "state": "TS", "district": "Hyderabad",
                    "mandal": "Amberpet", "village": "Bagh Amberpet", "survey_no": "9/B",
                    "owners": [{"owner_ref": "r1", "name": "రవి", "share_pct": 50},
                               {"owner_ref": "r2", "name": "Ravi", "father_name": "Rao", "share_pct": 50}],
                    "area_sq_m": 100, "area_text": "120 sq.yds", "land_type": "Agricultural",
                    "market_value": 0
                }),
            ),
        ),
        (
            "create-regional",
            p(
                "CreateLandRecord",
                "registrar@KA",
                serde_json::json!({
                    "request_id": "fz-2", "state": "KA", "district": "Mysuru",
                    "mandal": "Hunsur", "village": "Bilikere", "survey_no": "12",
                    "khata_no": "7", "owners": owners, "area_sq_m": 5,
                    "area_text": "5 sq.m", "land_type": "Residential", "market_value": 1
                }),
            ),
        ),
        (
            "create-duplicate",
            p(
                "CreateLandRecord",
                "admin",
                serde_json::json!({
                    "request_id": "fz-3", "state": "TS", "district": "K.V. Rangareddy",
                    "mandal": "Saroornagar", "village": "Balapur", "survey_no": "123 / A",
                    "owners": owners, "area_sq_m": 5, "area_text": "5",
                    "land_type": "Residential", "market_value": 1
                }),
            ),
        ),
        (
            "transfer",
            p(
                "TransferLandRecord",
                "registrar@TS",
                serde_json::json!({"property_id": ts, "owners": owners, "expected_tx": current}),
            ),
        ),
        (
            "transfer-conflict",
            p(
                "TransferLandRecord",
                "registrar@TS",
                serde_json::json!({"property_id": ts, "owners": owners,
                    "expected_tx": sha256(b"old").to_hex()}),
            ),
        ),
        (
            "transfer-unauthorized",
            p(
                "TransferLandRecord",
                "registrar@TS",
                serde_json::json!({"property_id": ap, "owners": owners}),
            ),
        ),
        (
            "verify",
            p(
                "UpdateVerificationStatus",
                "verifier@KA",
                serde_json::json!({"property_id": ka, "status": "verified", "note": "ok"}),
            ),
        ),
        (
            "correct",
            p(
                "CorrectLandRecord",
                "registrar@TS",
                serde_json::json!({"property_id": ts, "survey_no": "124", "area_sq_m": 300,
                    "khata_no": "1", "note": "typo"}),
            ),
        ),
        (
            "link",
            p(
                "LinkDocumentHash",
                "registrar@AP",
                serde_json::json!({"property_id": ap, "doc_hash": sha256(b"deed").to_hex(),
                    "doc_type": "SaleDeed"}),
            ),
        ),
        (
            "not-found",
            p(
                "UpdateVerificationStatus",
                "admin",
                serde_json::json!({"property_id": "LRI-IND-TS-2026-000001", "status": "disputed"}),
            ),
        ),
    ];
    let mut batch = Vec::new();
    for (name, v) in proposals {
        add("proposal", name, v.to_string().into_bytes());
        batch.push(v);
    }
    add(
        "proposal",
        "batch",
        Value::Array(batch).to_string().into_bytes(),
    );

    // block and proof: the world's own blocks and the proofs of their transactions.
    let block_input = |mode: u8, lines: &[Vec<u8>]| {
        let mut v = vec![mode, 0, 0, 0, 0];
        v.extend(lines.join(&b'\n'));
        v
    };
    for ch in w.chains.channel_names() {
        let blocks: Vec<Vec<u8>> = (0..3).filter_map(|n| w.block_bytes(&ch, n)).collect();
        let short = ch.trim_start_matches("land-registry-");
        if ch == channels::PRIMARY {
            add("block", "primary-log-framed", block_input(1, &blocks));
            let raw: Vec<u8> = blocks
                .iter()
                .flat_map(|b| {
                    let mut f = (b.len() as u32).to_le_bytes().to_vec();
                    f.extend(crc32c::crc32c(b).to_le_bytes());
                    f.extend(b);
                    f
                })
                .collect();
            let mut torn = vec![0, 0, 0, 0, 0];
            torn.extend(&raw[..raw.len() - 3]);
            add("block", "primary-log-raw-torn", torn);
        }
        for (n, b) in blocks.iter().enumerate() {
            add(
                "block",
                &format!("{short}-{n}"),
                block_input(0, std::slice::from_ref(b)),
            );
            let Ok(block) = serde_json::from_slice::<Block>(b) else {
                continue;
            };
            for i in 0..block.txs.len() {
                if let Ok(Some(p)) = block.proof(i) {
                    let doc = serde_json::to_vec(&p).unwrap_or_default();
                    add("proof", &format!("{short}-{n}-{i}"), doc);
                }
            }
        }
    }
    add(
        "proof",
        "jcs-keys-and-numbers",
        r#"{"\u20ac":1.5,"\r":[1e21,1e-7,-0.0,9007199254740993],"\ufb33":{"\ud83d\ude00":"ల"},"a":null}"#
            .as_bytes()
            .to_vec(),
    );
    out
}

/// A target's body.
pub type Body = fn(&[u8]);

/// The checked-in corpus of `target`: `fuzz/seeds/<target>/` at the workspace root.
pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target)
}

/// Runs `body` over every file of `target`'s checked-in corpus; returns how many.
pub fn replay_corpus(target: &str, body: Body) -> usize {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_default();
        eprintln!("{}", f.display());
        body(&bytes);
    }
    files.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::model::Validation;

    /// The fuzz targets' bodies over the checked-in corpus (seeds and every crash input
    /// found so far), so that stable CI re-checks them without nightly.
    #[test]
    fn corpus_replays_cleanly() {
        let targets: [(&str, Body); 4] = [
            ("property_id", property_id),
            ("proposal", proposal),
            ("block", block),
            ("proof", proof),
        ];
        for (target, body) in targets {
            let n = replay_corpus(target, body);
            assert!(n > 0, "no corpus in {}", corpus_dir(target).display());
        }
    }

    /// The seeds as the world builds them today pass the bodies too (the checked-in ones
    /// may lag a change of the world).
    #[test]
    fn fresh_seeds_pass() {
        for (target, _, bytes) in seed_corpus() {
            match target {
                "property_id" => property_id(&bytes),
                "proposal" => proposal(&bytes),
                "block" => block(&bytes),
                "proof" => proof(&bytes),
                other => panic!("unknown target {other}"),
            }
        }
    }

    /// Seeds that reach the interesting paths: valid proposals of every kind, and proofs
    /// that verify.
    #[test]
    fn seeds_reach_past_the_checks() {
        let w = world();
        let seeds = seed_corpus();
        let mut codes = HashSet::new();
        for (target, _, bytes) in &seeds {
            if *target == "proposal" {
                let ps = parse_proposals(bytes).unwrap();
                for ch in w.chains.channel_names() {
                    let ix = w.chains.channel_index(&ch).unwrap();
                    let items = ps
                        .iter()
                        .map(|p| (tx_id(p, &ch).unwrap(), p.clone()))
                        .collect();
                    let built = w.chains.build(ix, FUZZ_TIME, items).unwrap();
                    codes.extend(built.receipts.iter().map(|r| (r.validation, ch.clone())));
                }
            }
        }
        for want in [
            Validation::Valid,
            Validation::DuplicateParcel,
            Validation::VersionConflict,
            Validation::Unauthorized,
            Validation::PropertyNotFound,
            Validation::BadArgument,
        ] {
            assert!(
                codes.iter().any(|(c, _)| *c == want),
                "no seed gives {want:?}"
            );
        }
        let verified = seeds
            .iter()
            .filter(|(t, _, b)| {
                *t == "proof"
                    && serde_json::from_slice::<Value>(b)
                        .ok()
                        .is_some_and(|d| verify_proof(&d, &w.trusted, &Expect::default()).is_ok())
            })
            .count();
        assert!(verified >= 4, "{verified} seed proofs verify");
    }

    /// Writes the seed corpus into `fuzz/seeds/` (run after changing the world or the
    /// seeds): `cargo test -p landql-devnet fuzzing -- --ignored write_seed_corpus`.
    #[test]
    #[ignore]
    fn write_seed_corpus() {
        for (target, name, bytes) in seed_corpus() {
            let dir = corpus_dir(target);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
        }
    }
}
