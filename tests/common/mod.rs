//! Helpers shared by the end-to-end tests: real `landql` processes on loopback.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound and released; a tiny race the tests can live with).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

pub fn landql() -> Command {
    Command::new(env!("CARGO_BIN_EXE_landql"))
}

/// A `landql ledger` process; killed when dropped.
pub struct LedgerProcess {
    pub child: Child,
    pub url: String,
    pub data: PathBuf,
    pub port: u16,
}

impl LedgerProcess {
    pub fn start(data: &Path, extra: &[&str]) -> Self {
        Self::start_on(data, free_port(), extra)
    }

    pub fn start_on(data: &Path, port: u16, extra: &[&str]) -> Self {
        let child = landql()
            .args(["ledger", "--data"])
            .arg(data)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start landql ledger");
        let url = format!("http://127.0.0.1:{port}");
        let p = Self {
            child,
            url,
            data: data.to_path_buf(),
            port,
        };
        p.wait_ready();
        p
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("ledger on port {} did not come up", self.port);
    }

    /// SIGKILL: no chance to flush or say goodbye.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LedgerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls `{api}/graphql` until the replica holds at least `records` properties and the
/// search index has every change; returns that answer, which lists the first property and
/// its owners.
pub async fn caught_up(
    client: &reqwest::Client,
    api: &str,
    records: i64,
    within: Duration,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let answer = client
            .post(format!("{api}/graphql"))
            .json(&serde_json::json!({"query": "{ properties(first: 1) { totalCount edges { node { id owners { owner { name } } } } } _meta { searchIndexSeq changeLogSeq } }"}))
            .send()
            .await;
        // Refused while it seeds and catches up: it listens once the replica is there.
        let last = match answer {
            Ok(response) => {
                let v: serde_json::Value = response.json().await.expect("JSON");
                let meta = &v["data"]["_meta"];
                if v["data"]["properties"]["totalCount"].as_i64() >= Some(records)
                    && meta["searchIndexSeq"] == meta["changeLogSeq"]
                {
                    return v;
                }
                v.to_string()
            }
            Err(e) => e.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "not caught up within {within:?}: {last}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A child process, killed (SIGKILL) and reaped when dropped.
pub struct Process(pub Child);

impl Process {
    /// SIGKILL: no chance to flush or say goodbye.
    pub fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `landql sync --ledger URL` writing `database_url`; its stderr shown.
pub fn sync(ledger: &str, database_url: &str) -> Process {
    Process(
        landql()
            .args(["sync", "--ledger", ledger])
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start landql sync"),
    )
}

/// `landql serve` on 127.0.0.1:`port` over `database_url` with its index in `index`, the
/// anonymous rate limit off (tests send fast), and `args` (e.g. regions and replicas).
pub fn serve<S: AsRef<std::ffi::OsStr>>(
    ledger: &str,
    database_url: &str,
    port: u16,
    index: &Path,
    args: &[S],
) -> Process {
    Process(
        landql()
            .args(["serve", "--ledger", ledger, "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--index-dir")
            .arg(index)
            .args(["--rate-limit", "anonymous=off"])
            .args(args)
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start landql serve"),
    )
}

/// `serve`'s flags for a node of region `home` reading `replicas` (region, URL) in order.
pub fn region_flags(home: &str, replicas: &[(&str, String)]) -> Vec<String> {
    let mut args = vec!["--region".to_string(), home.to_string()];
    for (region, url) in replicas {
        args.push("--replica-url".into());
        args.push(format!("{region}={url}"));
    }
    args
}

/// POSTs a GraphQL request to `base` and returns the answer's JSON, errors included.
pub async fn graphql(
    http: &reqwest::Client,
    base: &str,
    query: &str,
    variables: serde_json::Value,
) -> serde_json::Value {
    http.post(format!("{base}/graphql"))
        .json(&serde_json::json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("POST /graphql")
        .json()
        .await
        .expect("a JSON answer")
}
