//! The README's quick start: `landql dev` on a fresh data directory brings up a private
//! PostgreSQL, a seeded devnet, sync, the search index and the GraphQL API, prints its URLs,
//! answers queries, and stops cleanly on Ctrl-C.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn landql_dev_serves_the_whole_system_and_stops_on_ctrl_c() {
    let data = tempfile::tempdir().expect("temp dir");
    let (api_port, ledger_port) = (common::free_port(), common::free_port());
    let mut child = common::landql()
        .args(["dev", "--records", "400", "--data"])
        .arg(data.path())
        .args(["--listen", &format!("127.0.0.1:{api_port}")])
        .args(["--ledger-listen", &format!("127.0.0.1:{ledger_port}")])
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start landql dev");

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
    let deadline = Instant::now() + Duration::from_secs(60);
    let v: Value = loop {
        let v: Value = client
            .post(format!("{api}/graphql"))
            .json(&json!({"query": "{ properties(first: 1) { totalCount edges { node { id owners { owner { name } } } } } _meta { searchIndexSeq changeLogSeq } }"}))
            .send()
            .await
            .expect("POST")
            .json()
            .await
            .expect("JSON");
        let meta = &v["data"]["_meta"];
        if v["data"]["properties"]["totalCount"].as_i64() >= Some(400)
            && meta["searchIndexSeq"] == meta["changeLogSeq"]
        {
            break v;
        }
        assert!(Instant::now() < deadline, "not caught up: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
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
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("waiter")
        .expect("wait");
    assert!(status.success(), "{status:?}");
    let pid_file = data.path().join("pg").join("postmaster.pid");
    assert!(!pid_file.exists(), "PostgreSQL left running");
}
