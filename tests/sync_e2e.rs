//! The sync worker end to end, in process: a seeded devnet, a private PostgreSQL, `sync::run`.
//!
//! - a seeded ledger synced into the read model equals the ledger's world state record for
//!   record (re-hashed rows, history, documents, ownerships; invalid transactions absent; a
//!   gap-free change log);
//! - resetting the checkpoints and replaying every block changes nothing;
//! - live transactions appear in commit order, announced by `NOTIFY landql_changes`.

mod sync_support;

use std::time::Duration;

use devnet::generate::{DemoData, Generator, Target};
use ledger::model::{channels, Record, Validation};
use migrations::sqlx::{self, postgres::PgListener};
use sync_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_ledger_syncs_record_for_record_and_replays_as_a_no_op() {
    let devnet = seeded_devnet(3_000, 11).await;
    let (pg, pool) = database().await;
    let url = pg.database_url();

    let worker = Running::start(options(&devnet.url, &url));
    wait_synced(&devnet.node, &pool, Duration::from_secs(120)).await;
    let changes = assert_matches_ledger(&devnet.node, &pool).await;
    assert!(changes > 3_000, "{changes}");
    worker.stop().await.expect("clean shutdown");
    let before = snapshot(&pool).await;
    let pinned: String = sqlx::query_scalar("SELECT orderer_key FROM sync_trust")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(pinned, devnet.node.orderer_public_key());

    // Replay everything from genesis over the same database: nothing changes, and no
    // notification is sent (a replay adds no change-log rows).
    let mut listener = PgListener::connect(&url).await.unwrap();
    listener.listen(sync::NOTIFY_CHANNEL).await.unwrap();
    sqlx::query("DELETE FROM checkpoints")
        .execute(&pool)
        .await
        .unwrap();
    let mut opts = options(&devnet.url, &url);
    opts.batch_max_events = 1_500; // other batch boundaries than the first run
    let worker = Running::start(opts);
    wait_synced(&devnet.node, &pool, Duration::from_secs(120)).await;
    worker.stop().await.expect("clean shutdown");
    assert_eq!(snapshot(&pool).await, before);
    assert_matches_ledger(&devnet.node, &pool).await;
    let note = tokio::time::timeout(Duration::from_millis(300), listener.recv()).await;
    assert!(note.is_err(), "a replay notified: {note:?}");
}

/// A catch-up larger than the read model drops the secondary indexes while it loads and
/// builds them again near the tip: the same read model, every index back as it was defined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_catch_up_builds_every_dropped_index_again() {
    let devnet = seeded_devnet(3_000, 12).await;
    let (pg, pool) = database().await;
    let url = pg.database_url();
    let before = secondary_indexes(&pool).await;
    assert!(before.len() >= 9, "{before:?}");

    // ~4 500 events in blocks of up to 500, batches of 100 (so a batch is a block): the
    // indexes go once at least 1 000 events are seen to be left, and come back when
    // 200 (two batches) are.
    let mut opts = options(&devnet.url, &url);
    opts.batch_max_events = 100;
    opts.bulk_min_events = 1_000;
    let worker = Running::start(opts);
    let mut seen_dropped = 0;
    let started = std::time::Instant::now();
    while blocks_behind(&devnet.node, &pool).await != Some(0) {
        assert!(started.elapsed() < Duration::from_secs(120), "not synced");
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_dropped_indexes")
            .fetch_one(&pool)
            .await
            .unwrap();
        seen_dropped = seen_dropped.max(n);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    wait_indexes_built(&pool, Duration::from_secs(60)).await;
    worker.stop().await.expect("clean shutdown");

    let after = secondary_indexes(&pool).await;
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    for (name, (def, oid)) in &before {
        assert_eq!(&after[name].0, def, "{name} is defined as before");
        assert_ne!(after[name].1, *oid, "{name} was dropped and built again");
    }
    assert!(
        seen_dropped >= 9,
        "the drop was seen while syncing: {seen_dropped}"
    );
    assert_matches_ledger(&devnet.node, &pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_transactions_appear_in_commit_order_with_notify() {
    let devnet = seeded_devnet(300, 12).await;
    let (pg, pool) = database().await;
    let url = pg.database_url();
    let worker = Running::start(options(&devnet.url, &url));
    wait_synced(&devnet.node, &pool, Duration::from_secs(60)).await;
    let mut listener = PgListener::connect(&url).await.unwrap();
    listener.listen(sync::NOTIFY_CHANNEL).await.unwrap();
    let start_seq: i64 = sqlx::query_scalar("SELECT max(seq) FROM change_log")
        .fetch_one(&pool)
        .await
        .unwrap();

    // Creates first, then follow-ups (transfers, corrections, status, documents) of them,
    // in several submissions so they land in several blocks.
    let mut gen = Generator::new(99, DemoData::embedded());
    let mut receipts = Vec::new();
    for round in 0..6 {
        let mut by_channel: Vec<(String, Vec<ledger::model::Proposal>)> = Vec::new();
        for _ in 0..40 {
            let (target, p) = if round < 2 || gen.remembered() == 0 {
                (Target::Records, gen.create())
            } else {
                gen.follow_up()
                    .unwrap_or_else(|| (Target::Records, gen.create()))
            };
            let ch = match target {
                Target::Docs => channels::DOCS.to_string(),
                Target::Records => channels::PRIMARY.to_string(),
            };
            match by_channel.iter_mut().find(|(c, _)| *c == ch) {
                Some((_, v)) => v.push(p),
                None => by_channel.push((ch, vec![p])),
            }
        }
        for (ch, ps) in by_channel {
            let rs = devnet.node.submit(&ch, ps).await.expect("submit");
            for r in &rs {
                if r.validation == Validation::Valid {
                    if let Some(id) = &r.property_id {
                        if let Some(v) = devnet.node.record(id) {
                            if let Ok(rec) = serde_json::from_value::<Record>(v.record) {
                                gen.remember(&rec, v.version.tx_id);
                            }
                        }
                    }
                }
            }
            receipts.extend(rs.into_iter().map(|r| (ch.clone(), r)));
        }
    }
    let valid: Vec<_> = receipts
        .iter()
        .filter(|(_, r)| r.validation == Validation::Valid)
        .collect();
    assert!(valid.len() > 100, "{}", valid.len());

    wait_synced(&devnet.node, &pool, Duration::from_secs(60)).await;
    // The last notification names the last seq.
    let final_seq: i64 = sqlx::query_scalar("SELECT max(seq) FROM change_log")
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut last_note = 0;
    while last_note < final_seq {
        let n = tokio::time::timeout(Duration::from_secs(5), listener.recv())
            .await
            .expect("a notification")
            .unwrap();
        let seq: i64 = n.payload().parse().expect("payload is a seq");
        assert!(seq > last_note, "notifications go forward");
        last_note = seq;
    }
    assert_eq!(last_note, final_seq);

    // Each live transaction is in the change log, and within a channel seq order is the
    // ledger's (block, tx index) order.
    let rows: Vec<(i64, String, String, i64, i32)> = sqlx::query_as(
        "SELECT seq, tx_id, channel, block_number, tx_index FROM change_log WHERE seq > $1 \
         ORDER BY seq",
    )
    .bind(start_seq)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), valid.len());
    for (ch, r) in &valid {
        let row = rows
            .iter()
            .find(|row| row.1 == r.tx_id.to_hex())
            .unwrap_or_else(|| panic!("{} missing from the change log", r.tx_id));
        assert_eq!(
            (&row.2, row.3 as u64, row.4 as u64),
            (ch, r.block_number, r.tx_index)
        );
    }
    for ch in [channels::PRIMARY, channels::DOCS] {
        let order: Vec<(i64, i32)> = rows
            .iter()
            .filter(|r| r.2 == ch)
            .map(|r| (r.3, r.4))
            .collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "{ch} out of order");
    }
    assert_matches_ledger(&devnet.node, &pool).await;
    worker.stop().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_as_prometheus_text() {
    let devnet = seeded_devnet(200, 13).await;
    let (pg, pool) = database().await;
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let mut opts = options(&devnet.url, &pg.database_url());
    opts.metrics_listen = Some(addr);
    let worker = Running::start(opts);
    wait_synced(&devnet.node, &pool, Duration::from_secs(60)).await;
    // The height poller runs once a second.
    let mut text = String::new();
    for _ in 0..50 {
        text = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains("landql_sync_lag_blocks{channel=\"land-registry-primary\"} 0") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for want in [
        "landql_sync_leader 1",
        "landql_sync_lag_blocks{channel=\"land-registry-primary\"} 0",
        "landql_sync_lag_seconds{channel=\"land-registry-docs\"}",
        "landql_sync_events_applied_total{channel=\"land-registry-primary\"}",
        "landql_sync_transactions_invalid_total{channel=\"land-registry-primary\"}",
        "landql_sync_batch_seconds_bucket",
        "landql_sync_ledger_up 1",
        "landql_sync_reconnects_total{target=\"database\"}",
        "landql_sync_db_statement_duration_seconds_count{kind=\"write\"}",
        "landql_sync_db_connections{state=\"in_use\"}",
        "landql_sync_db_connections_max 1",
        "landql_sync_checkpoint_block{channel=\"land-registry-docs\"}",
    ] {
        assert!(text.contains(want), "{want} not in:\n{text}");
    }
    worker.stop().await.expect("clean shutdown");
}
