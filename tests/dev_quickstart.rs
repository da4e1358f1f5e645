//! The README's quick start: `landql dev` on a fresh data directory brings up a private
//! PostgreSQL, a seeded devnet, sync, the search index and the GraphQL API, prints its URLs,
//! answers queries, and stops cleanly on Ctrl-C.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn landql_dev_serves_the_whole_system_and_stops_on_ctrl_c() {
    let data = tempfile::tempdir().expect("temp dir");
    let (api_port, ledger_port) = (common::free_port(), common::free_port());
    let mut child = start_dev(data.path(), 400, api_port, ledger_port, &[]);

    // It prints every URL once everything is up.
    let stdout = child.stdout.take().expect("stdout");
    let printed = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("stdout line");
            let search_line = line.contains("search index");
            lines.push(line);
            if search_line {
                break;
            }
        }
        lines.join("\n")
    });
    let printed = tokio::time::timeout(Duration::from_secs(180), printed)
        .await
        .expect("landql dev comes up within 3 minutes")
        .expect("reader");
    let api = format!("http://127.0.0.1:{api_port}");
    for url in [
        format!("{api}/"),
        format!("{api}/graphql"),
        format!("{api}/metrics"),
        format!("http://127.0.0.1:{ledger_port}/v1/info"),
    ] {
        assert!(printed.contains(&url), "{url} not printed:\n{printed}");
    }

    // The API answers from the synced replica (wait for the index to be ready too).
    let client = reqwest::Client::new();
    let v = common::caught_up(&client, &api, 400, Duration::from_secs(60)).await;
    let name = v["data"]["properties"]["edges"][0]["node"]["owners"][0]["owner"]["name"]
        .as_str()
        .expect("an owner name")
        .to_string();
    let v: Value = client
        .post(format!("{api}/graphql"))
        .json(&json!({"query": "query($t: String!) { search(text: $t) { total } }", "variables": {"t": name}}))
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    assert!(v["data"]["search"]["total"].as_i64() > Some(0), "{v}");

    // Ctrl-C stops everything, PostgreSQL included, and exits 0.
    stop_with_ctrl_c(child, data.path()).await;
}

/// `landql dev --regions TS,AP,KA`: a streaming replica and an API node per region, each
/// node reading its own region's replica, the replication state printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn landql_dev_with_regions_runs_a_replica_and_a_node_per_region() {
    let data = tempfile::tempdir().expect("temp dir");
    let (api_port, ledger_port) = (three_free_ports(), common::free_port());
    let mut child = start_dev(
        data.path(),
        200,
        api_port,
        ledger_port,
        &["--regions", "TS,AP,KA"],
    );
    let stdout = child.stdout.take().expect("stdout");
    let printed = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("stdout line");
            let last = line.trim_start().starts_with("KA ");
            lines.push(line);
            if last {
                break;
            }
        }
        lines.join("\n")
    });
    let printed = tokio::time::timeout(Duration::from_secs(240), printed)
        .await
        .expect("landql dev --regions comes up within 4 minutes")
        .expect("reader");
    assert!(
        printed.contains("3 replicas streaming"),
        "replication state not printed:\n{printed}"
    );
    let client = reqwest::Client::new();
    for (i, region) in ["TS", "AP", "KA"].iter().enumerate() {
        let api = format!("http://127.0.0.1:{}", api_port + i as u16);
        assert!(printed.contains(&api), "{api} not printed:\n{printed}");
        assert!(
            printed.contains(&format!("pg-{region}")),
            "{region}'s replica not printed:\n{printed}"
        );
        common::caught_up(&client, &api, 200, Duration::from_secs(60)).await;
        let v: Value = client
            .post(format!("{api}/graphql"))
            .json(&json!({"query": "{ _meta { region databases { name reading } } properties(first: 1) { edges { node { provenance { database } } } } }"}))
            .send()
            .await
            .expect("POST")
            .json()
            .await
            .expect("JSON");
        assert_eq!(v["data"]["_meta"]["region"], *region, "{v}");
        let replica = format!("replica {region}");
        assert_eq!(
            v["data"]["properties"]["edges"][0]["node"]["provenance"]["database"], replica,
            "{v}"
        );
        assert_eq!(v["data"]["_meta"]["databases"][0]["name"], replica, "{v}");
        assert_eq!(v["data"]["_meta"]["databases"][0]["reading"], true, "{v}");
    }
    stop_with_ctrl_c(child, data.path()).await;
    for region in ["TS", "AP", "KA"] {
        let pid_file = data
            .path()
            .join(format!("pg-{region}"))
            .join("postmaster.pid");
        assert!(!pid_file.exists(), "{region}'s replica left running");
    }
}

/// The first of three free loopback ports in a row.
fn three_free_ports() -> u16 {
    for _ in 0..100 {
        let first = common::free_port();
        let all_free = (0..3u16).all(|i| {
            first
                .checked_add(i)
                .is_some_and(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        });
        if all_free {
            return first;
        }
    }
    panic!("no three free ports in a row");
}

/// Nobody reading its standard output (`landql dev | head`, a closed terminal) is no reason
/// for `landql dev` to stop: it serves as usual and still stops cleanly on Ctrl-C.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn landql_dev_keeps_serving_when_its_stdout_is_closed() {
    let data = tempfile::tempdir().expect("temp dir");
    let (api_port, ledger_port) = (common::free_port(), common::free_port());
    let mut child = start_dev(data.path(), 200, api_port, ledger_port, &[]);
    // The read end closed before anything is printed: every write to stdout fails.
    drop(child.stdout.take());
    let api = format!("http://127.0.0.1:{api_port}");
    common::caught_up(&reqwest::Client::new(), &api, 200, Duration::from_secs(180)).await;
    stop_with_ctrl_c(child, data.path()).await;
}

/// `landql dev` on a fresh data directory with `records` demo records and its own private
/// PostgreSQL, its standard output piped.
fn start_dev(
    data: &std::path::Path,
    records: u64,
    api_port: u16,
    ledger_port: u16,
    extra: &[&str],
) -> std::process::Child {
    common::landql()
        .args(["dev", "--records", &records.to_string(), "--data"])
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{api_port}")])
        .args(["--ledger-listen", &format!("127.0.0.1:{ledger_port}")])
        .args([
            "--sync-metrics-listen",
            &format!("127.0.0.1:{}", common::free_port()),
        ])
        .args(extra)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start landql dev")
}

/// Sends SIGINT and checks that `landql dev` exits 0 with its PostgreSQL stopped.
async fn stop_with_ctrl_c(mut child: std::process::Child, data: &std::path::Path) {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("waiter")
        .expect("wait");
    assert!(status.success(), "{status:?}");
    let pid_file = data.join("pg").join("postmaster.pid");
    assert!(!pid_file.exists(), "PostgreSQL left running");
}
