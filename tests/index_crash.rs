//! The search index follower of `landql serve` under SIGKILL: the process is killed at
//! random moments — during its start-up rebuild, while it applies live changes, between
//! commits — and once its index directory is deleted outright; each time it is started
//! again on the same directory. At the end the index must hold exactly the read model:
//! every property, with the record the replica holds (hash by hash), and nothing else, with
//! the last change-log seq in its commit.
//!
//! Everything is real: a seeded devnet on loopback, the sync worker writing a private
//! PostgreSQL, `landql serve` as a child process, and writes submitted to the ledger while
//! it runs.

mod common;
mod sync_support;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use ledger::canonical::hash_jcs;
use ledger::client::{HttpLedger, Ledger};
use ledger::model::{Proposal, Validation};
use migrations::sqlx::{self, PgPool};
use rand::{Rng, SeedableRng};
use search_index::{SearchIndex, SearchRequest};
use serde_json::{json, Value};
use sync_support::{database, options, seeded_devnet, wait_synced, Running};
use testkit::{create, transfer, PRIMARY};

/// Starts `landql serve` with its index in `index_dir`; does not wait for it.
fn start_serve(ledger_url: &str, database_url: &str, index_dir: &Path, port: u16) -> Child {
    common::landql()
        .args(["serve", "--ledger", ledger_url, "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--index-dir")
        .arg(index_dir)
        .args(["--rate-limit", "anonymous=off"])
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start landql serve")
}

fn kill(child: &mut Child) {
    // `Child::kill` is SIGKILL on Unix: no shutdown code runs.
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
}

async fn last_seq(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM change_log")
        .fetch_one(pool)
        .await
        .expect("change log")
}

/// `_meta.searchIndexSeq` of a running server, once it answers.
async fn index_seq(url: &str) -> Option<i64> {
    let r = reqwest::Client::new()
        .post(format!("{url}/graphql"))
        .json(&json!({ "query": "{ _meta { searchIndexSeq } }" }))
        .send()
        .await
        .ok()?;
    let v: Value = r.json().await.ok()?;
    v["data"]["_meta"]["searchIndexSeq"].as_i64()
}

async fn submit(ledger: &HttpLedger, proposals: &[Proposal]) {
    for r in ledger.submit(PRIMARY, proposals).await.expect("submit") {
        assert_eq!(r.validation, Validation::Valid, "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_follower_survives_sigkill_and_a_deleted_index() {
    let devnet = seeded_devnet(1_500, 5).await;
    let (pg, pool) = database().await;
    let worker = Running::start(options(&devnet.url, &pg.database_url()));
    wait_synced(&devnet.node, &pool, Duration::from_secs(120)).await;
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM properties ORDER BY id LIMIT 60")
        .fetch_all(&pool)
        .await
        .expect("ids");
    let dir = tempfile::tempdir().expect("temp dir");
    let index_dir = dir.path().join("index");
    let port = common::free_port();

    let seed: u64 = rand::random();
    eprintln!("kill timings from seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // (the index's committed seq, the change log's) at each kill.
    let mut at_kill = Vec::new();
    // Writes land all the while: new records and transfers of old ones, ~200 a second,
    // so that kills find the follower with changes applied but not yet committed.
    let (stop_writing, mut stopped) = tokio::sync::watch::channel(false);
    let writer = {
        let ledger = HttpLedger::new(&devnet.url, Duration::from_secs(10)).expect("client");
        let ids = ids.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            while !*stopped.borrow_and_update() {
                let mut proposals: Vec<Proposal> =
                    (0..4).map(|i| create("idx", n * 10 + i)).collect();
                let id = &ids[n as usize % ids.len()];
                proposals.push(transfer(
                    id,
                    &format!("idx-owner-{n}"),
                    &format!("idx-t{n}"),
                ));
                submit(&ledger, &proposals).await;
                n += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            n
        })
    };
    for round in 0..8u64 {
        let mut serve = start_serve(&devnet.url, &pg.database_url(), &index_dir, port);
        if round == 0 {
            // Once, the first rebuild is let finish (its time depends on the machine's
            // load), so that at least one kill finds a committed index to resume from.
            let url = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(120);
            while index_seq(&url).await.is_none_or(|s| s < 0) {
                assert!(
                    Instant::now() < deadline,
                    "the first rebuild never committed"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(300..2000))).await;
        kill(&mut serve);
        let log_seq = last_seq(&pool).await;
        let committed = SearchIndex::open_read_only(&index_dir)
            .ok()
            .and_then(|i| i.last_seq().ok().flatten());
        at_kill.push((committed, log_seq));
        if round == 4 {
            // The index directory goes away while the node is down.
            std::fs::remove_dir_all(&index_dir).expect("delete the index");
        }
    }
    let _ = stop_writing.send(true);
    let batches = writer.await.expect("writer");
    assert!(batches > 20, "only {batches} batches written");
    eprintln!("at each kill, (index seq, change-log seq): {at_kill:?}");
    assert!(
        at_kill.iter().any(|(committed, _)| committed.is_some()),
        "no kill came after a commit: the follower never got to work"
    );
    assert!(
        at_kill
            .iter()
            .any(|(committed, log)| committed.is_some_and(|c| c < *log)),
        "no kill found the follower behind the change log"
    );

    // Run to the end: the follower catches up with the change log.
    wait_synced(&devnet.node, &pool, Duration::from_secs(60)).await;
    let want_seq = last_seq(&pool).await;
    let mut serve = start_serve(&devnet.url, &pg.database_url(), &index_dir, port);
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(90);
    while index_seq(&url).await != Some(want_seq) {
        assert!(
            Instant::now() < deadline,
            "the index did not reach seq {want_seq} (at {:?})",
            index_seq(&url).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    kill(&mut serve);
    worker.stop().await.expect("sync worker");

    // The index holds exactly the read model.
    let index = SearchIndex::open_read_only(&index_dir).expect("open the index");
    assert_eq!(index.last_seq().expect("commit payload"), Some(want_seq));
    let rows: Vec<(String, Value, String)> =
        sqlx::query_as("SELECT id, record, record_hash FROM properties ORDER BY id")
            .fetch_all(&pool)
            .await
            .expect("properties");
    assert_eq!(
        index.num_docs(),
        rows.len() as u64,
        "documents vs properties"
    );
    for (id, record, record_hash) in &rows {
        assert_eq!(
            hash_jcs(record).expect("hash").to_hex(),
            *record_hash,
            "{id}: the replica itself"
        );
        let found = index
            .search(&SearchRequest {
                text: id.clone(),
                filter: Default::default(),
                first: 1,
                after: None,
            })
            .expect("search by id");
        let hit = found
            .hits
            .first()
            .unwrap_or_else(|| panic!("{id} is not in the index"));
        assert_eq!(hit.id.to_string(), *id);
        assert_eq!(
            hash_jcs(&hit.record).expect("hash").to_hex(),
            *record_hash,
            "{id}: the index holds another version of the record"
        );
    }
}
