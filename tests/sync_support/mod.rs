//! Helpers shared by the sync end-to-end tests (tests/sync_*.rs): the seeded devnet and
//! private PostgreSQL of `testkit`, a worker run in-process, waiting for it to reach the tip,
//! and the check that the read model equals the ledger record for record.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use devnet::Node;
use ledger::canonical::hash_jcs;
use ledger::model::{Block, Record};
use ledger::Hash32;
use migrations::sqlx::{self, PgPool};
use serde_json::Value;

#[allow(unused_imports)] // each test binary uses its own subset
pub use testkit::{database, seeded_devnet, serve_dir, Devnet};

pub fn options(ledger_url: &str, database_url: &str) -> sync::SyncOptions {
    sync::SyncOptions {
        batch_max_events: 700,
        batch_window: Duration::from_millis(20),
        ..sync::SyncOptions::new(ledger_url, database_url)
    }
}

/// A worker running in this process until `stop` is called.
pub struct Running {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<Result<(), sync::SyncError>>,
}

impl Running {
    pub fn start(opts: sync::SyncOptions) -> Self {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(sync::run(opts, async move {
            let _ = rx.await;
        }));
        Running {
            stop: Some(tx),
            task,
        }
    }

    pub async fn stop(mut self) -> Result<(), sync::SyncError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(Duration::from_secs(20), &mut self.task)
            .await
            .expect("the worker stops within 20 s")
            .expect("worker task")
    }
}

/// (channel, checkpoint block) pairs, or nothing while the database is away.
pub async fn checkpoints(pool: &PgPool) -> Option<HashMap<String, i64>> {
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT channel, block_number FROM checkpoints")
        .fetch_all(pool)
        .await
        .ok()?;
    Some(rows.into_iter().collect())
}

/// Blocks the read model is behind the node, summed over channels (None if unknown).
pub async fn blocks_behind(node: &Node, pool: &PgPool) -> Option<u64> {
    let cps: Vec<(String, i64)> = checkpoints(pool).await?.into_iter().collect();
    Some(sync::blocks_behind(&node.info(), &cps))
}

/// Waits until every channel's checkpoint is at the node's tip.
pub async fn wait_synced(node: &Node, pool: &PgPool, limit: Duration) {
    let started = Instant::now();
    loop {
        if blocks_behind(node, pool).await == Some(0) {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "not synced after {limit:?}: {:?} blocks behind",
            blocks_behind(node, pool).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The read model's secondary indexes (not primary keys or unique indexes): name →
/// (definition, oid), so a test can tell that one was dropped and built again.
pub async fn secondary_indexes(pool: &PgPool) -> BTreeMap<String, (String, u32)> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT c.relname::text, pg_get_indexdef(i.indexrelid), i.indexrelid::oid::bigint \
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND NOT i.indisprimary AND NOT i.indisunique",
    )
    .fetch_all(pool)
    .await
    .expect("listing indexes");
    rows.into_iter()
        .map(|(n, d, oid)| (n, (d, oid as u32)))
        .collect()
}

/// Waits until no index dropped by a bulk catch-up is left to build.
pub async fn wait_indexes_built(pool: &PgPool, limit: Duration) {
    let started = Instant::now();
    loop {
        let left: Option<i64> = sqlx::query_scalar("SELECT count(*) FROM sync_dropped_indexes")
            .fetch_one(pool)
            .await
            .ok();
        if left == Some(0) {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "{left:?} dropped indexes still not built after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every block of every channel of the node, in order.
pub fn all_blocks(node: &Node) -> Vec<Block> {
    let mut out = Vec::new();
    for c in node.info().channels {
        for n in 0..c.height {
            let bytes = node
                .block_bytes(&c.name, n)
                .expect("block")
                .expect("block exists");
            out.push(serde_json::from_slice(&bytes).expect("block parses"));
        }
    }
    out
}

/// What the ledger says should be in the read model.
pub struct Expected {
    pub property_keys: Vec<String>,
    pub doc_keys: Vec<String>,
    pub invalid_tx_ids: Vec<String>,
    /// Valid writes in each channel's order: (channel, block, tx_index, key).
    pub writes: Vec<(String, u64, u64, String)>,
}

pub fn expected(node: &Node) -> Expected {
    let mut props = BTreeMap::new();
    let mut docs = BTreeMap::new();
    let mut invalid = Vec::new();
    let mut writes = Vec::new();
    for b in all_blocks(node) {
        for (i, tx) in b.txs.iter().enumerate() {
            if !tx.is_valid() {
                invalid.push(tx.tx_id.to_hex());
                continue;
            }
            for w in &tx.writes {
                writes.push((
                    b.header.channel.clone(),
                    b.header.number,
                    i as u64,
                    w.key.clone(),
                ));
                if w.key.starts_with("DOC:") {
                    docs.insert(w.key.clone(), ());
                } else {
                    props.insert(w.key.clone(), ());
                }
            }
        }
    }
    Expected {
        property_keys: props.into_keys().collect(),
        doc_keys: docs.into_keys().collect(),
        invalid_tx_ids: invalid,
        writes,
    }
}

/// Asserts that the read model equals the ledger record for record (see the module docs of
/// each test for what that covers). Returns the number of change-log rows.
pub async fn assert_matches_ledger(node: &Node, pool: &PgPool) -> i64 {
    let exp = expected(node);
    assert!(!exp.property_keys.is_empty());

    // properties: every row re-hashed equals the ledger's record_hash, same version.
    type PropRow = (String, Value, String, String, i64, i32, String);
    let rows: Vec<PropRow> = sqlx::query_as(
        "SELECT id, record, record_hash, channel, block_number, tx_index, tx_id FROM properties",
    )
    .fetch_all(pool)
    .await
    .expect("properties");
    assert_eq!(rows.len(), exp.property_keys.len(), "property count");
    let mut by_id: HashMap<String, PropRow> = rows.into_iter().map(|r| (r.0.clone(), r)).collect();
    for key in &exp.property_keys {
        let want = node.record(key).expect("ledger record");
        let row = by_id
            .remove(key)
            .unwrap_or_else(|| panic!("{key} missing from properties"));
        let rehash = hash_jcs(&row.1).expect("hash");
        assert_eq!(rehash, want.record_hash, "{key}: re-hashed record");
        assert_eq!(
            row.2,
            want.record_hash.to_hex(),
            "{key}: record_hash column"
        );
        assert_eq!(row.3, want.version.channel, "{key}: channel");
        assert_eq!(row.4 as u64, want.version.block_number, "{key}: block");
        assert_eq!(row.5 as u64, want.version.tx_index, "{key}: tx index");
        assert_eq!(row.6, want.version.tx_id.to_hex(), "{key}: tx id");
    }

    // history: same versions, same hashes, same order, nothing twice.
    let hist: Vec<(String, String, i64, i32)> = sqlx::query_as(
        "SELECT property_id, record_hash, block_number, tx_index FROM property_versions \
         ORDER BY property_id, block_number, tx_index",
    )
    .fetch_all(pool)
    .await
    .expect("history");
    let mut db_hist: HashMap<&str, Vec<(String, u64, u64)>> = HashMap::new();
    for (id, h, b, i) in &hist {
        db_hist
            .entry(id.as_str())
            .or_default()
            .push((h.clone(), *b as u64, *i as u64));
    }
    let mut ledger_versions = 0;
    for key in &exp.property_keys {
        let want: Vec<(String, u64, u64)> = node
            .history(key)
            .into_iter()
            .map(|v| {
                (
                    v.record_hash.to_hex(),
                    v.version.block_number,
                    v.version.tx_index,
                )
            })
            .collect();
        ledger_versions += want.len();
        assert_eq!(db_hist.get(key.as_str()), Some(&want), "{key}: history");
    }
    assert_eq!(hist.len(), ledger_versions, "history row count");

    // documents.
    let docs: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT property_id, doc_hash, doc_type, (extract(epoch FROM linked_at) * 1000)::bigint \
         FROM documents",
    )
    .fetch_all(pool)
    .await
    .expect("documents");
    assert_eq!(docs.len(), exp.doc_keys.len(), "document count");
    let docs: HashMap<String, (String, i64)> = docs
        .into_iter()
        .map(|(p, h, t, at)| (format!("DOC:{p}:{h}"), (t, at)))
        .collect();
    for key in &exp.doc_keys {
        let want = node.record(key).expect("ledger document").record;
        let got = docs.get(key).unwrap_or_else(|| panic!("{key} missing"));
        assert_eq!(Some(got.0.as_str()), want["doc_type"].as_str(), "{key}");
        assert_eq!(Some(got.1), want["linked_at"].as_i64(), "{key}");
    }

    // ownerships follow the current records; every owner is known.
    let owns: Vec<(String, i32, String, i64)> = sqlx::query_as(
        "SELECT property_id, position, owner_ref, share_pct FROM ownerships \
         ORDER BY property_id, position",
    )
    .fetch_all(pool)
    .await
    .expect("ownerships");
    let mut db_owns: HashMap<&str, Vec<(String, i64)>> = HashMap::new();
    for (p, _, r, s) in &owns {
        db_owns.entry(p.as_str()).or_default().push((r.clone(), *s));
    }
    for key in &exp.property_keys {
        let rec: Record =
            serde_json::from_value(node.record(key).expect("record").record).expect("a record");
        let want: Vec<(String, i64)> = rec
            .owners
            .iter()
            .map(|o| (o.owner_ref.clone(), o.share_pct))
            .collect();
        assert_eq!(db_owns.get(key.as_str()), Some(&want), "{key}: ownerships");
    }
    let unknown: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ownerships o WHERE NOT EXISTS \
         (SELECT 1 FROM owners w WHERE w.owner_ref = o.owner_ref)",
    )
    .fetch_one(pool)
    .await
    .expect("owners");
    assert_eq!(unknown, 0, "ownerships naming unknown owners");
    let total: Option<i64> = sqlx::query_scalar(
        "SELECT properties FROM location_counts WHERE state = '' AND district = '' \
         AND mandal = '' AND village = ''",
    )
    .fetch_optional(pool)
    .await
    .expect("location counts");
    assert_eq!(
        total,
        Some(exp.property_keys.len() as i64),
        "location_counts total"
    );

    // invalid transactions left no trace.
    for table in ["property_versions", "change_log", "documents", "properties"] {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE tx_id = ANY($1)"
        )))
        .bind(&exp.invalid_tx_ids)
        .fetch_one(pool)
        .await
        .expect("invalid txs");
        assert_eq!(n, 0, "invalid transactions in {table}");
    }

    assert_change_log(pool, exp.writes.len() as i64).await
}

/// The change log has seqs 1..=n with no gap or duplicate, one row per ledger write, and
/// follows each channel's commit order. Returns n.
pub async fn assert_change_log(pool: &PgPool, expected_rows: i64) -> i64 {
    let (count, min, max): (i64, Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT count(*), min(seq), max(seq) FROM change_log")
            .fetch_one(pool)
            .await
            .expect("change log");
    assert_eq!(count, expected_rows, "change_log rows = ledger writes");
    assert_eq!(min, Some(1), "change_log starts at 1");
    assert_eq!(max, Some(count), "change_log has no gap");
    let dups: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT 1 FROM change_log \
         GROUP BY channel, block_number, tx_index, property_id HAVING count(*) > 1) d",
    )
    .fetch_one(pool)
    .await
    .expect("dups");
    assert_eq!(dups, 0, "an event is in the change log twice");
    let disorder: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT block_number, tx_index, \
            lag(block_number) OVER w AS pb, lag(tx_index) OVER w AS pi \
            FROM change_log WINDOW w AS (PARTITION BY channel ORDER BY seq)) x \
         WHERE (block_number, tx_index) < (pb, pi)",
    )
    .fetch_one(pool)
    .await
    .expect("order");
    assert_eq!(
        disorder, 0,
        "change log out of commit order within a channel"
    );
    count
}

/// A fingerprint of the read model: (property id, record hash, version) rows, history and
/// change-log counts, documents, errors.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub properties: Vec<(String, String, i64, i32)>,
    pub versions: i64,
    pub changes: (i64, Option<i64>),
    pub documents: i64,
    pub errors: i64,
    pub owners: i64,
    pub ownerships: i64,
}

pub async fn snapshot(pool: &PgPool) -> Snapshot {
    let q = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(pool)
            .await
            .expect(sql)
    };
    Snapshot {
        properties: sqlx::query_as(
            "SELECT id, record_hash, block_number, tx_index FROM properties ORDER BY id",
        )
        .fetch_all(pool)
        .await
        .expect("properties"),
        versions: q("SELECT count(*) FROM property_versions").await,
        changes: sqlx::query_as("SELECT count(*), max(seq) FROM change_log")
            .fetch_one(pool)
            .await
            .expect("change log"),
        documents: q("SELECT count(*) FROM documents").await,
        errors: q("SELECT count(*) FROM indexing_errors").await,
        owners: q("SELECT count(*) FROM owners").await,
        ownerships: q("SELECT count(*) FROM ownerships").await,
    }
}

/// A unique-enough hash, for synthetic test values.
pub fn test_hash(i: u64) -> Hash32 {
    ledger::canonical::sha256(&i.to_le_bytes())
}

/// Reads a log file, for failure messages.
pub fn read_log(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(40).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// The keys that must not be in the read model.
pub fn invalid_set(exp: &Expected) -> HashSet<String> {
    exp.invalid_tx_ids.iter().cloned().collect()
}
