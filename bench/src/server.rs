//! `landql serve` as a child process of the benchmark: started on a backend with a new
//! index directory, waited for until its index has caught up, its CPU, faults and memory
//! read from /proc, stopped with SIGTERM.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::backend::Backend;
use crate::proc::Proc;

/// `landql serve` as a child process.
pub struct Server {
    child: tokio::process::Child,
    pub base: String,
    log: PathBuf,
}

impl Server {
    /// Starts `landql serve` on `backend`, with its index in `dir` and `args` added to its
    /// command line.
    pub async fn start(
        backend: &Backend,
        dir: &Path,
        log_filter: &str,
        args: &[&str],
    ) -> anyhow::Result<Server> {
        Self::start_on(
            &backend.database_url,
            &backend.ledger_url,
            dir,
            log_filter,
            args,
        )
        .await
    }

    /// [`start`](Self::start) with the primary's URL (`DATABASE_URL`) and the ledger given
    /// apart: `bench regions` reaches the primary through a delay proxy.
    pub async fn start_on(
        database_url: &str,
        ledger_url: &str,
        dir: &Path,
        log_filter: &str,
        args: &[&str],
    ) -> anyhow::Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = dir.join("serve.log");
        let program = std::env::current_exe().context("finding the landql binary")?;
        let child = tokio::process::Command::new(program)
            .arg("serve")
            .args(args)
            .env("DATABASE_URL", database_url)
            .env("LANDQL_LEDGER", ledger_url)
            .env("LANDQL_LISTEN", format!("127.0.0.1:{port}"))
            .env("LANDQL_INDEX_DIR", dir.join("index"))
            .env_remove("LANDQL_REPLICA_URL")
            // The load comes from one address at thousands of requests a second.
            .env("LANDQL_RATE_LIMIT", "anonymous=off")
            .env("LANDQL_ANONYMOUS_LIST_QUOTA", "off")
            .env("RUST_LOG", log_filter)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .kill_on_drop(true)
            .spawn()
            .context("starting landql serve")?;
        Ok(Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        })
    }

    pub fn check(&mut self) -> anyhow::Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            bail!("landql serve exited ({status}); see {}", self.log.display());
        }
        Ok(())
    }

    /// Waits for `/readyz` and for the index to reach the change log; the seconds taken.
    pub async fn wait_ready(&mut self, http: &reqwest::Client) -> anyhow::Result<f64> {
        let started = Instant::now();
        let mut last_log = Instant::now();
        loop {
            self.check()?;
            let ready = match http.get(format!("{}/readyz", self.base)).send().await {
                Ok(r) => r.status() == 200,
                Err(_) => false,
            };
            if ready {
                let meta = graphql(
                    http,
                    &self.base,
                    json!({ "query": "{ _meta { changeLogSeq searchIndexSeq } }" }),
                )
                .await?;
                let log_seq = meta["data"]["_meta"]["changeLogSeq"].as_i64().unwrap_or(0);
                let index_seq = meta["data"]["_meta"]["searchIndexSeq"]
                    .as_i64()
                    .unwrap_or(-1);
                if log_seq > 0 && index_seq >= log_seq {
                    return Ok(started.elapsed().as_secs_f64());
                }
                if last_log.elapsed() > Duration::from_secs(10) {
                    tracing::info!(log_seq, index_seq, "waiting for the search index");
                    last_log = Instant::now();
                }
            }
            if started.elapsed() > Duration::from_secs(1800) {
                bail!(
                    "landql serve not ready after 30 minutes; see {}",
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// CPU seconds the server has used (user + system).
    pub fn cpu_secs(&self) -> f64 {
        self.child.id().map_or(0.0, |pid| Proc::Pid(pid).cpu_secs())
    }

    /// The server's major page faults so far.
    pub fn major_faults(&self) -> f64 {
        self.child
            .id()
            .map_or(0.0, |pid| Proc::Pid(pid).major_faults())
    }

    /// Peak and current RSS in KiB.
    pub fn rss(&self) -> (u64, u64) {
        let Some(pid) = self.child.id() else {
            return (0, 0);
        };
        let p = Proc::Pid(pid);
        (p.peak_rss_kib(), p.status_kib("VmRSS"))
    }

    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SIGTERM: the server's graceful shutdown.
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

pub(crate) async fn graphql(
    http: &reqwest::Client,
    base: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let r = http
        .post(format!("{base}/graphql"))
        .json(&body)
        .send()
        .await?;
    Ok(r.json().await?)
}
