//! The front door as shipped (`deploy/haproxy/haproxy.cfg`, Debian's HAProxy) before three
//! regions' API nodes, all real processes: a private primary PostgreSQL with one streaming
//! replica per region (`pg_basebackup`), a seeded devnet ledger on HTTP, `landql sync`, and
//! one `landql serve --region R` per region reading its region's replica. The configuration
//! is used as committed with only the addresses swapped for the test's ports.
//!
//! - each region's entry reaches that region's node (`_meta.region`);
//! - AP's node killed with SIGKILL under a steady load through AP's entry: no more requests
//!   fail than were in flight, none once the health check has noticed, and AP's users are
//!   served by the hub (TS); when AP's node is back and ready, they are home again;
//! - `/readyz` of a node whose replica and every fallback (the other replicas, the primary)
//!   are gone says not ready, which is what takes it out of the front door.
//!
//! Needs `haproxy` (Debian: `apt-get install haproxy`); CI installs it.

mod common;

use common::Process;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use migrations::PrivatePostgres;
use serde_json::{json, Value};

const RECORDS: u64 = 200;
const REGIONS: [&str; 3] = ["TS", "AP", "KA"];

/// `landql serve --region R` reading its region's replica first, then the others.
fn serve(
    region: &str,
    port: u16,
    ledger: &str,
    primary: &str,
    replicas: &[(&str, String)],
    index: &Path,
) -> Process {
    common::serve(
        ledger,
        primary,
        port,
        index,
        &common::region_flags(region, replicas),
    )
}

/// deploy/haproxy/haproxy.cfg with the test's ports for the nodes and the entries.
fn haproxy_config(dir: &Path, nodes: &[u16; 3], entries: &[u16; 3]) -> std::path::PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/haproxy/haproxy.cfg");
    let mut text = std::fs::read_to_string(&path).expect("deploy/haproxy/haproxy.cfg");
    for (i, (node, entry)) in nodes.iter().zip(entries).enumerate() {
        let (from_node, from_entry) = (8080 + i, 9080 + i);
        assert!(
            text.contains(&format!("127.0.0.1:{from_node} check")),
            "haproxy.cfg should name the node 127.0.0.1:{from_node}"
        );
        text = text.replace(
            &format!("127.0.0.1:{from_node} check"),
            &format!("127.0.0.1:{node} check"),
        );
        let bind = format!("bind 127.0.0.1:{from_entry}");
        assert_eq!(text.matches(&bind).count(), 1, "haproxy.cfg: {bind}");
        text = text.replace(&bind, &format!("bind 127.0.0.1:{entry}"));
    }
    let out = dir.join("haproxy.cfg");
    std::fs::write(&out, text).expect("write haproxy.cfg");
    out
}

async fn graphql(http: &reqwest::Client, base: &str, query: &str) -> Result<Value, String> {
    let r = http
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": query }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status();
    let v: Value = r.json().await.map_err(|e| e.to_string())?;
    if status != 200 || !v["errors"].is_null() {
        return Err(format!("{status}: {v}"));
    }
    Ok(v)
}

async fn region_behind(http: &reqwest::Client, entry: &str) -> Option<String> {
    graphql(http, entry, "{ _meta { region } }")
        .await
        .ok()
        .and_then(|v| v["data"]["_meta"]["region"].as_str().map(str::to_string))
}

async fn wait_region(http: &reqwest::Client, entry: &str, region: &str, within: Duration) {
    let start = Instant::now();
    loop {
        let now = region_behind(http, entry).await;
        if now.as_deref() == Some(region) {
            return;
        }
        assert!(
            start.elapsed() < within,
            "{entry} did not reach {region}'s node within {within:?} (now {now:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_region_reaches_its_node_and_the_hub_when_its_node_is_gone() {
    let haproxy = which("haproxy");
    let primary = PrivatePostgres::temporary()
        .await
        .expect("private PostgreSQL");
    let devnet = testkit::seeded_devnet(RECORDS, 21).await;
    let _sync = common::sync(&devnet.url, &primary.database_url());
    let mut replicas = Vec::new();
    for r in REGIONS {
        replicas.push((r, primary.temporary_replica().await.expect("replica")));
    }
    let urls: Vec<(&str, String)> = replicas
        .iter()
        .map(|(r, pg)| (*r, pg.database_url()))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let ports = [
        common::free_port(),
        common::free_port(),
        common::free_port(),
    ];
    let entries = [
        common::free_port(),
        common::free_port(),
        common::free_port(),
    ];
    let start_node = |i: usize| {
        let index = dir.path().join(format!("index-{}", REGIONS[i]));
        serve(
            REGIONS[i],
            ports[i],
            &devnet.url,
            &primary.database_url(),
            &urls,
            &index,
        )
    };
    let mut nodes: Vec<Process> = (0..3).map(start_node).collect();
    let http = reqwest::Client::new();
    for port in ports {
        common::caught_up(
            &http,
            &format!("http://127.0.0.1:{port}"),
            RECORDS as i64,
            Duration::from_secs(120),
        )
        .await;
    }
    let config = haproxy_config(dir.path(), &ports, &entries);
    let checked = Command::new(&haproxy)
        .arg("-c")
        .arg("-f")
        .arg(&config)
        .output()
        .expect("haproxy -c");
    assert!(checked.status.success(), "haproxy -c: {checked:?}");
    let _haproxy = Process(
        Command::new(&haproxy)
            .arg("-f")
            .arg(&config)
            .arg("-db")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start haproxy"),
    );
    let entry = |i: usize| format!("http://127.0.0.1:{}", entries[i]);

    // Each entry reaches its region's node.
    for (i, r) in REGIONS.iter().enumerate() {
        wait_region(&http, &entry(i), r, Duration::from_secs(20)).await;
    }

    // AP's node killed under load through AP's entry.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let killed_at = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let load = tokio::spawn({
        let (http, base) = (http.clone(), entry(1));
        let (stop, ok, failed, killed_at) =
            (stop.clone(), ok.clone(), failed.clone(), killed_at.clone());
        async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match graphql(
                    &http,
                    &base,
                    "{ properties(first: 3) { edges { node { id } } } }",
                )
                .await
                {
                    Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        let since = killed_at
                            .lock()
                            .map(|k| k.map(|k| k.elapsed()))
                            .unwrap_or(None);
                        failures.push((since, e));
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
            failures
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    nodes[1].kill9();
    *killed_at.lock().expect("lock") = Some(Instant::now());
    wait_region(&http, &entry(1), "TS", Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    nodes[1] = start_node(1);
    wait_region(&http, &entry(1), "AP", Duration::from_secs(60)).await;
    stop.store(true, Ordering::Relaxed);
    let failures = load.await.expect("load task");
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("AP's node killed: {ok} requests answered through AP's entry, {failed} failed: {failures:?}");
    assert!(ok > 20, "the load hardly ran: {ok}");
    // One client sends one request at a time: at most the one in flight fails, and none
    // after the check has taken the node out (two failed checks at 500 ms, plus slack).
    assert!(failed <= 1, "{failed} requests failed: {failures:?}");
    assert!(
        failures
            .iter()
            .all(|(since, _)| since.is_none_or(|s| s < Duration::from_secs(2))),
        "requests failed after the health check had noticed: {failures:?}"
    );

    // KA's node loses every database it reads: not ready.
    let ka = format!("http://127.0.0.1:{}", ports[2]);
    for (_, pg) in replicas.iter_mut() {
        pg.stop().await.expect("stop replica");
    }
    // The primary too: nothing is left to read.
    let mut primary = primary;
    primary.stop().await.expect("stop primary");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = http
            .get(format!("{ka}/readyz"))
            .send()
            .await
            .expect("readyz");
        if r.status() == 503 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "KA's /readyz stayed ready with no database"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(nodes);
}

/// The path of `program` on PATH, or a failure that says how to install it.
fn which(program: &str) -> std::path::PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(program))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!("{program} is not installed: apt-get install {program} (CI installs it)")
        })
}
