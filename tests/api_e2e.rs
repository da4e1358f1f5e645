//! The API end to end: `landql serve` as a real process over HTTP and WebSocket, in front of
//! a real PostgreSQL kept up to date by the sync worker from a real devnet ledger.
//!
//! (The freshness and tamper policies are also exercised directly against the schema in
//! schema/tests/replica.rs; here they are checked through the wire.)

mod common;
mod sync_support;

use std::collections::HashSet;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use ledger::client::{HttpLedger, Ledger};
use ledger::model::{Proposal, Validation};
use migrations::sqlx;
use serde_json::{json, Value};
use sync_support::{database, options, seeded_devnet, wait_synced, Running};
use testkit::{create, transfer};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const PRIMARY: &str = "land-registry-primary";

/// A `landql serve` process; killed when dropped.
struct Serve {
    child: Child,
    url: String,
    _index: tempfile::TempDir,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn serve(ledger_url: &str, database_url: &str) -> Serve {
    let port = common::free_port();
    let index = tempfile::tempdir().expect("temp dir");
    let child = common::landql()
        .args(["serve", "--ledger", ledger_url, "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--index-dir")
        .arg(index.path())
        // This test pages through everything anonymously at ~50 requests a second; roles,
        // rate limits and the anonymous list depth have their own tests
        // (api/src/tests/access.rs).
        .args([
            "--rate-limit",
            "anonymous=off",
            "--max-page-anonymous",
            "100",
            "--anonymous-deep-lists",
        ])
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start landql serve");
    let s = Serve {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _index: index,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(format!("{}/readyz", s.url)).await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "landql serve did not get ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s
}

async fn post(url: &str, query: &str, variables: Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{url}/graphql"))
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .expect("POST /graphql");
    assert!(r.status().is_success(), "{}", r.status());
    r.json().await.expect("JSON answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_pages_under_writes_and_a_stopped_ledger() {
    let devnet = seeded_devnet(3_000, 11).await;
    let (pg, pool) = database().await;
    let worker = Running::start(options(&devnet.url, &pg.database_url()));
    wait_synced(&devnet.node, &pool, Duration::from_secs(120)).await;
    let api = serve(&devnet.url, &pg.database_url()).await;
    let ledger = HttpLedger::new(&devnet.url, Duration::from_secs(10)).expect("client");

    // 1. A subscriber over graphql-transport-ws sees a transfer; a query then returns it.
    let id: String = sqlx::query_scalar("SELECT id FROM properties ORDER BY id LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut req = format!("{}/graphql", api.url.replace("http", "ws"))
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("WebSocket");
    ws.send(Message::text(
        json!({"type": "connection_init"}).to_string(),
    ))
    .await
    .unwrap();
    let ack = ws.next().await.expect("ack").expect("ack frame");
    assert!(ack.to_text().unwrap().contains("connection_ack"), "{ack:?}");
    ws.send(Message::text(
        json!({"id": "1", "type": "subscribe", "payload": {
            "query": "subscription($id: ID!) { propertyChanged(id: $id) { event txId property { owners { owner { id } } provenance { source } } } }",
            "variables": {"id": id}}})
        .to_string(),
    ))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = ledger
        .submit(PRIMARY, &[transfer(&id, "e2e-owner", "e2e-t1")])
        .await
        .unwrap();
    assert_eq!(r[0].validation, Validation::Valid, "{r:?}");
    let msg = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let m = ws.next().await.expect("open").expect("frame");
            if let Ok(t) = m.to_text() {
                if t.contains("\"next\"") {
                    return serde_json::from_str::<Value>(t).unwrap();
                }
            }
        }
    })
    .await
    .expect("the change reaches the subscriber");
    let change = &msg["payload"]["data"]["propertyChanged"];
    assert_eq!(change["event"], "PropertyTransferred", "{msg}");
    assert_eq!(change["txId"], json!(r[0].tx_id.to_hex()));
    assert_eq!(change["property"]["owners"][0]["owner"]["id"], "e2e-owner");
    let v = post(
        &api.url,
        "query($id: ID!) { property(id: $id) { owners { owner { id } } provenance { source stale } } }",
        json!({"id": id}),
    )
    .await;
    assert_eq!(
        v["data"]["property"]["owners"][0]["owner"]["id"], "e2e-owner",
        "{v}"
    );
    assert_eq!(v["data"]["property"]["provenance"]["stale"], false);

    // 2. Paging through the whole table while records are created: every row that existed
    //    before is returned exactly once, and no row twice.
    let before: HashSet<String> = sqlx::query_scalar("SELECT id FROM properties")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let writer_url = devnet.url.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let writer = tokio::spawn(async move {
        let l = HttpLedger::new(&writer_url, Duration::from_secs(10)).expect("client");
        let mut n = 0u64;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            let batch: Vec<Proposal> = (0..10).map(|i| create("page", n * 10 + i)).collect();
            l.submit(PRIMARY, &batch).await.expect("submit");
            n += 1;
        }
        n * 10
    });
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let v = post(
            &api.url,
            "query($a: String) { properties(first: 100, after: $a) { edges { node { id } } pageInfo { hasNextPage endCursor } } }",
            json!({"a": after}),
        )
        .await;
        let p = &v["data"]["properties"];
        assert!(p.is_object(), "{v}");
        for e in p["edges"].as_array().unwrap() {
            seen.push(e["node"]["id"].as_str().unwrap().to_string());
        }
        if !p["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = p["pageInfo"]["endCursor"].clone();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let created = writer.await.unwrap();
    assert!(created > 0, "writes happened while paging");
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a row came twice");
    let missing: Vec<&String> = before.iter().filter(|id| !unique.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} rows missed, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(3)]
    );

    // 3. Health, readiness and metrics.
    let r = reqwest::get(format!("{}/healthz", api.url)).await.unwrap();
    assert_eq!(r.status(), 200);
    let metrics = reqwest::get(format!("{}/metrics", api.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in ["cache", "lag", "pool"] {
        assert!(metrics.contains(name), "/metrics lacks {name}:\n{metrics}");
    }

    // 4. The ledger stopped: replica answers marked stale, promptly; verification says
    //    LEDGER_UNAVAILABLE without hanging; readiness says why.
    drop(devnet);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let started = Instant::now();
    let v = post(
        &api.url,
        "query($id: ID!) { property(id: $id) { id provenance { source stale replicaLagBlocks } } }",
        json!({"id": id}),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        v["data"]["property"]["provenance"]["source"], "REPLICA",
        "{v}"
    );
    assert_eq!(v["data"]["property"]["provenance"]["stale"], true);
    let started = Instant::now();
    let v = post(
        &api.url,
        "query($id: ID!) { verifyProperty(id: $id) { outcome replicaRecordHash } }",
        json!({"id": id}),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        v["data"]["verifyProperty"]["outcome"], "LEDGER_UNAVAILABLE",
        "{v}"
    );
    let r = reqwest::get(format!("{}/readyz", api.url)).await.unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["lag"]["ok"], false, "{body}");

    worker.stop().await.ok();
}
