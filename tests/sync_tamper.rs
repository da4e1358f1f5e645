//! Block streams that must not be trusted: a tiny ledger HTTP server in the test serves a
//! chain of real transactions (taken from a seeded devnet) sealed with a test orderer key,
//! with one block tampered with. The worker must halt the channel naming the block, write
//! nothing from it, and keep everything before it.
//!
//! Also: an undecodable valid transaction becomes an `indexing_errors` row and is skipped;
//! a ledger that later presents another orderer key than the pinned one is refused; an
//! explicit `--orderer-key` that does not sign the chain halts at genesis.

mod sync_support;

use std::sync::Arc;
use std::time::Duration;

use ledger::block::seal;
use ledger::model::{channels, Block, Event, EventType, Transaction, TxKind, Validation, Write};
use ledger::signing::OrdererKey;
use ledger::Hash32;
use migrations::sqlx::{self, PgPool};
use migrations::PrivatePostgres;
use sync_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CH: &str = channels::PRIMARY;
const BAD: u64 = 3;

/// What the fake ledger serves: `/v1/info` and the NDJSON block stream of one channel.
struct Fake {
    info: String,
    lines: Vec<String>,
}

async fn serve_fake(fake: Fake) -> String {
    let fake = Arc::new(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let fake = fake.clone();
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&req);
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                if path == "/v1/info" {
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                        fake.info.len(),
                        fake.info
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                } else if let Some(from) = path
                    .strip_prefix(&format!("/v1/channels/{CH}/blocks?from="))
                    .and_then(|n| n.parse::<usize>().ok())
                {
                    let mut body = String::from(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n",
                    );
                    for line in fake.lines.iter().skip(from) {
                        body.push_str(line);
                        body.push('\n');
                    }
                    let _ = sock.write_all(body.as_bytes()).await;
                    // Follow the "tip": keep the stream open until the client goes.
                    while let Ok(n) = sock.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                } else {
                    let body = r#"{"error":{"code":"NOT_FOUND","message":"no"}}"#;
                    let resp = format!(
                        "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                }
            });
        }
    });
    url
}

/// Real transactions of a seeded devnet's primary channel.
async fn real_txs() -> Vec<Transaction> {
    let devnet = seeded_devnet(300, 21).await;
    all_blocks(&devnet.node)
        .into_iter()
        .filter(|b| b.header.channel == CH)
        .flat_map(|b| b.txs)
        .collect()
}

/// Genesis plus blocks of 40 transactions, sealed by `key`.
fn chain(txs: &[Transaction], key: &OrdererKey) -> Vec<Block> {
    let mut blocks = vec![seal(CH, 0, Hash32::ZERO, 1_000, vec![], key).unwrap()];
    for (i, chunk) in txs.chunks(40).enumerate() {
        let prev = blocks[i].header_hash;
        let n = i as u64 + 1;
        blocks.push(seal(CH, n, prev, 1_000 + n as i64, chunk.to_vec(), key).unwrap());
    }
    blocks
}

fn fake(blocks: &[Block], presented: &OrdererKey) -> Fake {
    let tip = blocks.last().unwrap();
    let info = serde_json::json!({
        "channels": [{ "name": CH, "height": blocks.len(), "tip_hash": tip.header_hash,
                       "tip_time": tip.header.timestamp }],
        "orderer_public_key": presented.public_hex(),
    });
    Fake {
        info: info.to_string(),
        lines: blocks
            .iter()
            .map(|b| serde_json::to_string(b).unwrap())
            .collect(),
    }
}

/// A fresh database in the shared cluster.
async fn new_db(pg: &PrivatePostgres, admin: &PgPool, name: &str) -> (String, PgPool) {
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(admin)
        .await
        .unwrap();
    let url = pg
        .database_url()
        .replace(&format!("/{}?", migrations::DATABASE), &format!("/{name}?"));
    let pool = migrations::connect(&url).await.unwrap();
    migrations::migrate(&pool).await.unwrap();
    (url, pool)
}

async fn run_until_error(url: &str, db: &str, key: Option<String>) -> sync::SyncError {
    let mut opts = options(url, db);
    opts.orderer_key = key;
    tokio::time::timeout(
        Duration::from_secs(60),
        sync::run(opts, std::future::pending()),
    )
    .await
    .expect("the worker gives up within 60 s")
    .expect_err("the worker must refuse the chain")
}

/// The halt names the channel and block 3; blocks 0–2 are applied, nothing of block 3.
async fn assert_halted_at_bad_block(err: &sync::SyncError, pool: &PgPool, why: &str) {
    let text = err.to_string();
    match err {
        sync::SyncError::Halted(h) => {
            assert_eq!(h.len(), 1, "{text}");
            assert_eq!((h[0].channel.as_str(), h[0].block), (CH, BAD), "{text}");
            assert!(h[0].reason.contains(why), "{text}");
        }
        other => panic!("expected a halt, got {other}"),
    }
    assert!(text.contains(CH) && text.contains("block 3"), "{text}");
    let cp: i64 = sqlx::query_scalar("SELECT block_number FROM checkpoints WHERE channel = $1")
        .bind(CH)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(cp, BAD as i64 - 1);
    for table in ["property_versions", "change_log", "properties"] {
        let (min, max): (Option<i64>, Option<i64>) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT min(block_number), max(block_number) FROM {table}"
        )))
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(
            min,
            Some(1),
            "{table}: blocks before the bad one are applied"
        );
        assert_eq!(
            max,
            Some(BAD as i64 - 1),
            "{table}: nothing from block {BAD}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_blocks_halt_the_channel_and_write_nothing_from_them() {
    let txs = real_txs().await;
    assert!(txs.len() > 40 * (BAD as usize + 1), "{}", txs.len());
    let (pg, admin) = database().await;
    let key = OrdererKey::generate();
    let good = chain(&txs, &key);

    // 1. One byte changed inside a transaction of block 3.
    let mut f = fake(&good, &key);
    let line = &mut f.lines[BAD as usize];
    let at = line.find("\"area_sq_m\":").expect("a record in block 3") + "\"area_sq_m\":".len();
    let old = line.as_bytes()[at];
    let new = if old == b'9' { '1' } else { (old + 1) as char };
    line.replace_range(at..at + 1, &new.to_string());
    let url = serve_fake(f).await;
    let (db, pool) = new_db(&pg, &admin, "tamper_byte").await;
    let err = run_until_error(&url, &db, None).await;
    assert_halted_at_bad_block(&err, &pool, "tx_root").await;

    // 2. A block whose prev_hash does not link to block 2 (properly signed).
    let mut blocks = good.clone();
    let b = &good[BAD as usize];
    blocks[BAD as usize] = seal(
        CH,
        BAD,
        test_hash(7),
        b.header.timestamp,
        b.txs.clone(),
        &key,
    )
    .unwrap();
    let url = serve_fake(fake(&blocks, &key)).await;
    let (db, pool) = new_db(&pg, &admin, "tamper_link").await;
    let err = run_until_error(&url, &db, None).await;
    assert_halted_at_bad_block(&err, &pool, "does not link").await;

    // 3. A block signed by another key.
    let other = OrdererKey::generate();
    let mut blocks = good.clone();
    blocks[BAD as usize] = seal(
        CH,
        BAD,
        b.header.prev_hash,
        b.header.timestamp,
        b.txs.clone(),
        &other,
    )
    .unwrap();
    let url = serve_fake(fake(&blocks, &key)).await;
    let (db, pool) = new_db(&pg, &admin, "tamper_key").await;
    let err = run_until_error(&url, &db, None).await;
    assert_halted_at_bad_block(&err, &pool, "not the trusted orderer key").await;

    // 4. A line that is not a block at all, every time it is asked for.
    let mut f = fake(&good, &key);
    f.lines[BAD as usize] = "{\"header\": not json".into();
    let url = serve_fake(f).await;
    let (db, pool) = new_db(&pg, &admin, "tamper_garbage").await;
    let err = run_until_error(&url, &db, None).await;
    assert_halted_at_bad_block(&err, &pool, "does not decode").await;

    // 5. An explicit orderer key that did not sign the chain: refused from genesis on.
    let url = serve_fake(fake(&good, &key)).await;
    let (db, pool) = new_db(&pg, &admin, "tamper_explicit").await;
    let err = run_until_error(&url, &db, Some(other.public_hex())).await;
    match &err {
        sync::SyncError::Halted(h) => assert_eq!(h[0].block, 0, "{err}"),
        e => panic!("expected a halt, got {e}"),
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM checkpoints")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_transactions_are_recorded_and_a_changed_orderer_key_is_refused() {
    let mut txs = real_txs().await;
    let (pg, admin) = database().await;
    let key = OrdererKey::generate();

    // A valid transaction whose write is not a record, in block 2.
    let bogus_id = "LRI-IND-TS-2026-03-99999";
    let bogus = Transaction {
        tx_id: test_hash(42),
        kind: TxKind::CreateLandRecord,
        creator: "registrar@TS".into(),
        timestamp: 1_767_225_600_000,
        args: serde_json::json!({}),
        writes: vec![Write {
            key: bogus_id.into(),
            value: serde_json::json!({"hello": "world"}),
        }],
        event: Some(Event {
            kind: EventType::PropertyCreated,
            id: bogus_id.into(),
            t: 1_767_225_600_000,
            tx: test_hash(42),
        }),
        validation: Validation::Valid,
    };
    txs.insert(45, bogus);
    let blocks = chain(&txs, &key);
    let last = blocks.len() as i64 - 1;
    let url = serve_fake(fake(&blocks, &key)).await;
    let (db, pool) = new_db(&pg, &admin, "bogus").await;
    let worker = Running::start(options(&url, &db));
    let started = std::time::Instant::now();
    loop {
        let cp: Option<i64> = sqlx::query_scalar("SELECT block_number FROM checkpoints")
            .fetch_optional(&pool)
            .await
            .unwrap();
        if cp == Some(last) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "stuck at {cp:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.stop().await.expect("clean shutdown");
    let errors: Vec<IndexingErrorRow> = sqlx::query_as(
        "SELECT channel, block_number, tx_index, tx_id, error, raw FROM indexing_errors",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert_eq!((e.0.as_str(), e.1, e.2), (CH, 2, Some(5)));
    assert_eq!(e.3.as_deref(), Some(test_hash(42).to_hex().as_str()));
    assert!(e.4.contains("not a land record"), "{}", e.4);
    assert_eq!(e.5.as_deref(), Some(r#"{"hello":"world"}"#));
    let valid_writes = txs
        .iter()
        .filter(|t| t.is_valid())
        .map(|t| t.writes.len())
        .sum::<usize>()
        - 1;
    let versions: i64 = sqlx::query_scalar("SELECT count(*) FROM property_versions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(versions as usize, valid_writes);
    assert_change_log(&pool, versions).await;

    // The same database later faces a ledger presenting (and signing with) another key.
    let other = OrdererKey::generate();
    let url = serve_fake(fake(&chain(&txs, &other), &other)).await;
    match run_until_error(&url, &db, None).await {
        sync::SyncError::OrdererKeyChanged { pinned, presented } => {
            assert_eq!(pinned, key.public_hex());
            assert_eq!(presented, other.public_hex());
        }
        e => panic!("expected OrdererKeyChanged, got {e}"),
    }
}

/// channel, block_number, tx_index, tx_id, error, raw
type IndexingErrorRow = (
    String,
    i64,
    Option<i32>,
    Option<String>,
    String,
    Option<String>,
);
