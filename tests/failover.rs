//! Losing the primary: a seeded devnet, the sync worker writing a private primary, a hot
//! standby made from it with `pg_basebackup`, and `landql serve` reading the standby. The
//! primary is stopped: reads go on from the replica, marked stale once the chain has moved
//! past the freshness bound, while the sync worker waits. Then the replica is promoted
//! (`pg_ctl promote`) and a sync worker pointed at it resumes from its checkpoints: the read
//! model equals the ledger record for record, every change applied exactly once.

mod common;
mod sync_support;

use std::time::{Duration, Instant};

use ledger::client::{HttpLedger, Ledger};
use ledger::model::channels;
use serde_json::json;
use sync_support::{assert_matches_ledger, database, options, seeded_devnet, wait_synced, Running};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_primary_lost_reads_go_on_and_a_promoted_replica_resumes_exactly_once() {
    let devnet = seeded_devnet(1_000, 13).await;
    let (mut primary, pool) = database().await;
    let worker = Running::start(options(&devnet.url, &primary.database_url()));
    wait_synced(&devnet.node, &pool, Duration::from_secs(120)).await;
    let mut replica = primary.temporary_replica().await.expect("replica");

    let port = common::free_port();
    let api = format!("http://127.0.0.1:{port}");
    let index = tempfile::tempdir().expect("temp dir");
    let _serve = common::serve(
        &devnet.url,
        &primary.database_url(),
        port,
        index.path(),
        &common::region_flags("AP", &[("AP", replica.database_url())]),
    );
    let http = reqwest::Client::new();
    common::caught_up(&http, &api, 1_000, Duration::from_secs(120)).await;

    // The primary goes away; the sync worker waits for it, the replica keeps answering.
    pool.close().await;
    primary.stop().await.expect("stop the primary");
    let ledger = HttpLedger::new(&devnet.url, Duration::from_secs(10)).expect("ledger client");
    for i in 0..12 {
        ledger
            .submit(channels::PRIMARY, &[testkit::create("failover", i)])
            .await
            .expect("submit");
    }
    let page = "{ properties(first: 1) { edges { node { id provenance { database stale } } } } }";
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = common::graphql(&http, &api, page, json!({})).await;
        let p = &v["data"]["properties"]["edges"][0]["node"]["provenance"];
        assert_eq!(
            p["database"], "replica AP",
            "reads must go on from the replica: {v}"
        );
        if p["stale"] == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replica's answers were not marked stale as the chain moved on: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        !worker.task.is_finished(),
        "the sync worker gave up instead of waiting for its database"
    );
    worker
        .stop()
        .await
        .expect("the waiting worker stops cleanly");

    // The replica promoted, the sync worker pointed at it: it resumes from the promoted
    // database's checkpoints and the read model equals the ledger, record for record.
    replica.promote().await.expect("promote the replica");
    assert!(!replica.is_standby());
    let promoted = migrations::connect(&replica.database_url())
        .await
        .expect("connect to the promoted replica");
    let worker = Running::start(options(&devnet.url, &replica.database_url()));
    wait_synced(&devnet.node, &promoted, Duration::from_secs(120)).await;
    worker.stop().await.expect("clean shutdown");
    let changes = assert_matches_ledger(&devnet.node, &promoted).await;
    assert!(changes > 1_000, "{changes}");
}
