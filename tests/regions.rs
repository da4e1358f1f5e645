//! Reads across regions on PostgreSQL's own streaming replication: a private primary, two
//! hot standbys made from it with `pg_basebackup` (regions AP and KA), a seeded devnet
//! ledger on HTTP, `landql sync` writing the primary and `landql serve --region AP`
//! reading the replicas — all real processes. Then the things that go wrong:
//!
//! - AP's replay is paused (`pg_wal_replay_pause`) while the chain moves on: once AP is
//!   past the bound, reads go to KA; never is AP's stale copy served as AP's; after
//!   `pg_wal_replay_resume` reads come home;
//! - AP's server is killed with SIGKILL under a steady load of reads: no request fails,
//!   reads move to KA, and come back once AP is restarted and has caught up;
//! - configuration that cannot work (a replica that is not a standby, a region named
//!   twice, a home region without a replica) is refused at start with a sentence.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger::client::{HttpLedger, Ledger};
use ledger::model::channels;
use migrations::PrivatePostgres;
use serde_json::{json, Value};

const RECORDS: u64 = 300;

struct Regions {
    primary: PrivatePostgres,
    ap: PrivatePostgres,
    ka: PrivatePostgres,
    devnet: testkit::Devnet,
    sync: common::Process,
    _serve: common::Process,
    _index: tempfile::TempDir,
    api: String,
    http: reqwest::Client,
}

async fn regions() -> Regions {
    let primary = PrivatePostgres::temporary()
        .await
        .expect("private PostgreSQL");
    let devnet = testkit::seeded_devnet(RECORDS, 11).await;
    let sync = common::sync(&devnet.url, &primary.database_url());
    let ap = primary.temporary_replica().await.expect("replica AP");
    let ka = primary.temporary_replica().await.expect("replica KA");
    let port = common::free_port();
    let api = format!("http://127.0.0.1:{port}");
    let index = tempfile::tempdir().expect("temp dir");
    let serve = common::serve(
        &devnet.url,
        &primary.database_url(),
        port,
        index.path(),
        &common::region_flags(
            "AP",
            &[("AP", ap.database_url()), ("KA", ka.database_url())],
        ),
    );
    let http = reqwest::Client::new();
    common::caught_up(&http, &api, RECORDS as i64, Duration::from_secs(120)).await;
    Regions {
        primary,
        ap,
        ka,
        devnet,
        sync,
        _serve: serve,
        _index: index,
        api,
        http,
    }
}

/// A page of properties, read from a database on every request (the property cache holds
/// single lookups only).
const PAGE: &str =
    "{ properties(first: 5) { edges { node { id provenance { database region } } } } }";

const META: &str =
    "{ _meta { region databases { name role region up lagBlocks usable reading } } }";

impl Regions {
    async fn query(&self, query: &str, variables: Value) -> Value {
        common::graphql(&self.http, &self.api, query, variables).await
    }

    /// The database `_meta` says reads go to.
    async fn reading(&self) -> String {
        let v = self.query(META, json!({})).await;
        v["data"]["_meta"]["databases"]
            .as_array()
            .and_then(|d| d.iter().find(|d| d["reading"] == true))
            .and_then(|d| d["name"].as_str())
            .unwrap_or_else(|| panic!("no database reading: {v}"))
            .to_string()
    }

    async fn wait_reading(&self, name: &str, within: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let now = self.reading().await;
            if now == name {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < within,
                "reads did not move to {name} within {within:?}: {}",
                self.query(META, json!({})).await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `n` blocks on the chain, one create each; the IDs created.
    async fn blocks(&self, tag: &str, n: u64) -> Vec<String> {
        let ledger = HttpLedger::new(&self.devnet.url, Duration::from_secs(10)).expect("client");
        let mut ids = Vec::new();
        for i in 0..n {
            let receipts = ledger
                .submit(channels::PRIMARY, &[testkit::create(tag, i)])
                .await
                .expect("submit");
            ids.extend(receipts.iter().filter_map(|r| r.property_id.clone()));
        }
        ids
    }

    /// Waits until `pg` holds property `id`.
    async fn wait_holds(&self, pg: &PrivatePostgres, id: &str) {
        let pool = migrations::connect(&pg.database_url())
            .await
            .expect("connect");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let n: i64 =
                migrations::sqlx::query_scalar("SELECT count(*) FROM properties WHERE id = $1")
                    .bind(id)
                    .fetch_one(&pool)
                    .await
                    .expect("count");
            if n == 1 {
                break;
            }
            assert!(Instant::now() < deadline, "{id} never reached the database");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        pool.close().await;
    }

    async fn on(&self, pg: &PrivatePostgres, sql: &str) {
        let pool = migrations::connect(&pg.database_url())
            .await
            .expect("connect");
        migrations::sqlx::query(migrations::sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        pool.close().await;
    }

    /// Where a page of properties was read (pages are not cached, so it is read now):
    /// (provenance.database, provenance.region).
    async fn served_by(&self) -> (String, Value) {
        let v = self.query(PAGE, json!({})).await;
        let p = &v["data"]["properties"]["edges"][0]["node"]["provenance"];
        (
            p["database"]
                .as_str()
                .unwrap_or_else(|| panic!("{v}"))
                .to_string(),
            p["region"].clone(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_stay_home_move_when_home_falls_behind_or_dies_and_come_back() {
    let mut r = regions().await;

    // Home: AP's replica answers, and says so.
    let meta = r.query(META, json!({})).await;
    assert_eq!(meta["data"]["_meta"]["region"], "AP", "{meta}");
    let names: Vec<&str> = meta["data"]["_meta"]["databases"]
        .as_array()
        .map(|d| d.iter().filter_map(|d| d["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["replica AP", "replica KA", "primary"], "{meta}");
    r.wait_reading("replica AP", Duration::from_secs(10)).await;
    assert_eq!(r.served_by().await, ("replica AP".into(), json!("AP")));
    // The same, for Prometheus.
    let metrics = r
        .http
        .get(format!("{}/metrics", r.api))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("text");
    for series in [
        "landql_api_database_reading{database=\"replica AP\"} 1",
        "landql_api_database_reading{database=\"replica KA\"} 0",
        "landql_api_database_usable{database=\"primary\"} 1",
        "landql_api_database_lag_blocks{database=\"replica KA\"}",
    ] {
        assert!(
            metrics.contains(series),
            "{series} not in /metrics:\n{metrics}"
        );
    }

    // AP stops replaying while the chain moves on past the bound (10 blocks): reads go to
    // KA, which keeps up; AP's copy is not served meanwhile.
    r.on(&r.ap, "SELECT pg_wal_replay_pause()").await;
    // One block on: AP is within the bound but lacks the record written in it, which is
    // then read from the primary ("not found locally, ask the hub").
    let new = r.blocks("one", 1).await;
    r.wait_holds(&r.primary, &new[0]).await;
    let v = r
        .query(
            "query P($id: ID!) { property(id: $id, consistency: REPLICA) { id provenance { database } } }",
            json!({"id": new[0]}),
        )
        .await;
    assert_eq!(
        v["data"]["property"]["provenance"]["database"], "primary",
        "{v}"
    );
    assert_eq!(r.reading().await, "replica AP");
    r.blocks("paused", 15).await;
    r.wait_reading("replica KA", Duration::from_secs(30)).await;
    assert_eq!(r.served_by().await, ("replica KA".into(), json!("KA")));
    let meta = r.query(META, json!({})).await;
    let ap = &meta["data"]["_meta"]["databases"][0];
    assert_eq!(ap["name"], "replica AP");
    assert_eq!(ap["usable"], false, "{meta}");
    assert!(ap["lagBlocks"].as_i64() > Some(10), "{meta}");

    // Replay resumed: AP catches up and reads come home.
    r.on(&r.ap, "SELECT pg_wal_replay_resume()").await;
    r.wait_reading("replica AP", Duration::from_secs(30)).await;

    // Read your own writes: AP paused again, a transfer of the record made above; a read
    // without the header still sees the record as it was, a read after the receipt's block
    // is served by a database that has applied it.
    r.on(&r.ap, "SELECT pg_wal_replay_pause()").await;
    let ledger = HttpLedger::new(&r.devnet.url, Duration::from_secs(10)).expect("client");
    let receipt = ledger
        .submit(
            channels::PRIMARY,
            &[testkit::transfer(&new[0], "ryw-owner", "ryw-transfer")],
        )
        .await
        .expect("transfer")
        .remove(0);
    let owner_query = "query P($id: ID!) { property(id: $id, consistency: REPLICA) { provenance { database blockNumber txId } } }";
    let read = |header: Option<String>| {
        let mut req = r.http.post(format!("{}/graphql", r.api)).json(&json!({
            "query": owner_query, "variables": {"id": new[0]}
        }));
        if let Some(h) = header {
            req = req.header("X-Landql-Read-After", h);
        }
        req.send()
    };
    // (Without the header the version before the transfer is served: by AP, or by the
    // cache that still holds it, since AP has not replayed the change that invalidates it.)
    let v: Value = read(None).await.expect("POST").json().await.expect("JSON");
    let p = &v["data"]["property"];
    assert!(
        p["provenance"]["blockNumber"].as_u64() < Some(receipt.block_number),
        "{v}"
    );
    let after = format!("{}:{}", channels::PRIMARY, receipt.block_number);
    let v: Value = read(Some(after))
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    let p = &v["data"]["property"];
    assert_ne!(p["provenance"]["database"], "replica AP", "{v}");
    assert_eq!(p["provenance"]["blockNumber"], receipt.block_number, "{v}");
    assert_eq!(p["provenance"]["txId"], receipt.tx_id.to_hex(), "{v}");
    let refused = read(Some("land-registry-primary".into()))
        .await
        .expect("POST");
    assert_eq!(refused.status(), 400);
    let v: Value = refused.json().await.expect("JSON");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("X-Landql-Read-After") && m.contains("CHANNEL:BLOCK")),
        "{v}"
    );
    r.on(&r.ap, "SELECT pg_wal_replay_resume()").await;
    r.wait_reading("replica AP", Duration::from_secs(30)).await;

    // AP killed under a steady load of reads: none fails.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let load = tokio::spawn({
        let (http, api) = (r.http.clone(), r.api.clone());
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        async move {
            let mut errors = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let answer = http
                    .post(format!("{api}/graphql"))
                    .json(&json!({ "query": PAGE }))
                    .send()
                    .await;
                let good = match answer {
                    Ok(a) if a.status() == 200 => match a.json::<Value>().await {
                        Ok(v)
                            if v["data"]["properties"]["edges"][0]["node"]["id"].is_string()
                                && v["errors"].is_null() =>
                        {
                            true
                        }
                        Ok(v) => {
                            errors.push(v.to_string());
                            false
                        }
                        Err(e) => {
                            errors.push(e.to_string());
                            false
                        }
                    },
                    Ok(a) => {
                        errors.push(format!("status {}", a.status()));
                        false
                    }
                    Err(e) => {
                        errors.push(e.to_string());
                        false
                    }
                };
                if good { &ok } else { &failed }.fetch_add(1, Ordering::Relaxed);
            }
            errors
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    r.ap.kill().await.expect("kill AP's server");
    let moved = r.wait_reading("replica KA", Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Writes land while AP is down; it must catch up with them before reads come home.
    r.blocks("while-down", 3).await;
    r.ap.restart().await.expect("restart AP");
    r.wait_reading("replica AP", Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let errors = load.await.expect("load task");
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("AP killed: reads moved to KA after {moved:?}; {ok} reads answered, {failed} failed");
    assert!(ok > 20, "the load hardly ran: {ok} answered");
    assert_eq!(failed, 0, "reads failed while AP was killed: {errors:?}");
    assert_eq!(r.served_by().await, ("replica AP".into(), json!("AP")));

    // No database can catch up (the sync worker is gone): a read after a new block waits
    // its bound, then reads the ledger, which has it.
    r.sync.kill9();
    let ledger = HttpLedger::new(&r.devnet.url, Duration::from_secs(10)).expect("client");
    let receipt = ledger
        .submit(
            channels::PRIMARY,
            &[testkit::transfer(&new[0], "ryw-owner-2", "ryw-transfer-2")],
        )
        .await
        .expect("transfer")
        .remove(0);
    let v: Value = r
        .http
        .post(format!("{}/graphql", r.api))
        .header(
            "X-Landql-Read-After",
            format!("{}:{}", channels::PRIMARY, receipt.block_number),
        )
        .json(&json!({"query": "query P($id: ID!) { property(id: $id) { provenance { source database blockNumber } } }", "variables": {"id": new[0]}}))
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    let p = &v["data"]["property"]["provenance"];
    assert_eq!(p["source"], "LEDGER", "{v}");
    assert_eq!(p["database"], "ledger", "{v}");
    assert_eq!(p["blockNumber"], receipt.block_number, "{v}");
    drop(r.ka);
    drop(r.primary);
}

/// `landql serve` with `args`, to its exit; returns its stderr.
fn serve_refuses(primary_url: &str, args: &[String]) -> String {
    let out = common::landql()
        .args(["serve", "--ledger", "http://127.0.0.1:9", "--listen"])
        .arg(format!("127.0.0.1:{}", common::free_port()))
        .args(args)
        .env("DATABASE_URL", primary_url)
        .env("RUST_LOG", "warn")
        .env_remove("LANDQL_REPLICA_URL")
        .env_remove("LANDQL_REGION")
        .output()
        .expect("run landql serve");
    assert!(!out.status.success(), "serve {args:?} started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_that_cannot_work_is_refused_at_start() {
    let primary = PrivatePostgres::temporary()
        .await
        .expect("private PostgreSQL");
    let url = primary.database_url();
    let migrated = common::landql()
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .output()
        .expect("landql migrate");
    assert!(migrated.status.success(), "{migrated:?}");
    let replica = primary.temporary_replica().await.expect("replica");
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let err = serve_refuses(&url, &s(&["--replica-url", &format!("AP={url}")]));
    assert!(err.contains("is not a hot standby"), "{err}");

    let r = replica.database_url();
    let err = serve_refuses(
        &url,
        &s(&[
            "--replica-url",
            &format!("AP={r}"),
            "--replica-url",
            &format!("AP={r}"),
        ]),
    );
    assert!(err.contains("names the region AP twice"), "{err}");

    let err = serve_refuses(
        &url,
        &s(&["--region", "KA", "--replica-url", &format!("AP={r}")]),
    );
    assert!(err.contains("--region KA is not a region"), "{err}");

    let err = serve_refuses(&url, &s(&["--replica-url", &r]));
    assert!(err.contains("REGION=URL"), "{err}");
}
