//! The PostGraphile baseline (design/targets.md: peak throughput ≥ 3× PostGraphile on the
//! same query and database): the pinned npm project in `bench/postgraphile/` run as child
//! processes, checked to answer as landql does, warmed up, and its CPU and memory.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use super::cpu::{Cpu, ServerCpu};
use super::{ApiBenchArgs, PROPERTY_QUERY};
use crate::load::http::{self as loadgen, GraphqlClient, Report};
use crate::proc::{process_tree, Proc};
use crate::random::pick;

/// PROPERTY_QUERY in PostGraphile's generated schema (bench/postgraphile): the row by primary
/// key with the same columns, and the owners through ownerships → owners, the two relations
/// bench/postgraphile/postgraphile.tags.json5 declares (the read model has no foreign keys).
/// blockNumber and txId stand in for landql's provenance, less what PostGraphile cannot know
/// (where the answer came from, and whether it is stale against the chain).
pub(super) const POSTGRAPHILE_QUERY: &str =
    "query Property($id: String!) { propertyById(id: $id) { \
    id surveyNo khataNo areaSqM landType marketValue verificationStatus updatedAt \
    district mandal village \
    ownershipsByPropertyId { nodes { sharePct ownerByOwnerRef { ownerRef name } } } \
    blockNumber txId } }";

/// property(id) as PostGraphile's request, over the same IDs in the same order as landql's
/// (a macro: a closure returning `impl Future` cannot be named as a function's return type).
macro_rules! postgraphile_request {
    ($client:expr, $ids:expr) => {{
        let (client, ids): (
            $crate::load::http::GraphqlClient,
            ::std::sync::Arc<Vec<String>>,
        ) = ($client.clone(), $ids.clone());
        move |i: u64| {
            let id = &ids[$crate::random::pick(i, ids.len())];
            let body = ::serde_json::json!({
                "query": $crate::api::postgraphile::POSTGRAPHILE_QUERY,
                "variables": { "id": id }
            })
            .to_string();
            client.post(body)
        }
    }};
}

/// PostGraphile (bench/postgraphile) as a child process on the same database: the baseline of
/// design/targets.md's "peak throughput ≥ 3× PostGraphile on the same query and database".
pub(super) struct PostGraphile {
    child: tokio::process::Child,
    base: String,
    log: PathBuf,
    /// What ran, for the report: versions, processes, pool and flags.
    pub setup: String,
}

impl PostGraphile {
    /// Installs the pinned PostGraphile when its node_modules is missing, then starts it on
    /// `database_url`. The errors say why it cannot run (no node, no npm, a failed install),
    /// which the report then states instead of a figure.
    async fn start(
        project: &Path,
        database_url: &str,
        log_dir: &Path,
        workers: usize,
    ) -> anyhow::Result<PostGraphile> {
        let node = command_version("node")
            .await
            .context("node is not available")?;
        let cli = project.join("node_modules/postgraphile/cli.js");
        if !cli.exists() {
            if !project.join("package-lock.json").exists() {
                bail!(
                    "no PostGraphile project at {} (see --postgraphile-dir)",
                    project.display()
                );
            }
            let npm = command_version("npm")
                .await
                .context("npm is not available to install PostGraphile")?;
            tracing::info!(dir = %project.display(), npm, "installing PostGraphile (npm ci)");
            let out = tokio::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(project)
                .stdin(Stdio::null())
                .output()
                .await
                .context("running npm ci")?;
            if !out.status.success() {
                bail!(
                    "npm ci in {} failed ({}): {}",
                    project.display(),
                    out.status,
                    last_lines(&String::from_utf8_lossy(&out.stderr), 5)
                );
            }
        }
        let package = project.join("node_modules/postgraphile/package.json");
        let version = std::fs::read_to_string(&package)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["version"].as_str().map(str::to_string))
            .unwrap_or_else(|| "?".into());
        // The same 16 PostgreSQL connections in all as landql serve's pool, split over the
        // processes (each has a pool of its own).
        let pool = 16usize.div_ceil(workers.max(1));
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = log_dir.join("postgraphile.log");
        let out = std::fs::File::create(&log)?;
        let mut cmd = tokio::process::Command::new("node");
        cmd.arg(&cli)
            .args(["--connection", database_url, "--schema", "public"])
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--max-pool-size", &pool.to_string()])
            // Production settings: no GraphiQL, no line per query on the console, and no
            // mutations (this is a read side).
            .args([
                "--disable-graphiql",
                "--disable-query-log",
                "--disable-default-mutations",
            ]);
        if workers >= 2 {
            cmd.args(["--cluster-workers", &workers.to_string()]);
        }
        let child = cmd
            // The CLI loads postgraphile.tags.json5 (the relations) from its working directory.
            .current_dir(project)
            .env("NODE_ENV", "production")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .context("starting PostGraphile")?;
        let processes = if workers >= 2 {
            format!("`--cluster-workers {workers}` ({workers} node processes behind one port)")
        } else {
            "one node process (no cluster)".to_string()
        };
        let setup = format!(
            "PostGraphile {version} (the v4 CLI; v5 needs Node ≥ 22) on Node {node}, {processes}, \
             `--max-pool-size {pool}` per process, `--disable-graphiql --disable-query-log \
             --disable-default-mutations`, NODE_ENV=production"
        );
        tracing::info!(version, node, workers, pool, port, "PostGraphile started");
        Ok(PostGraphile {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            setup,
        })
    }

    pub fn check(&mut self) -> anyhow::Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            bail!(
                "PostGraphile exited ({status}): {}",
                last_lines(&std::fs::read_to_string(&self.log).unwrap_or_default(), 10)
            );
        }
        Ok(())
    }

    /// Waits until the GraphQL endpoint answers (the schema is built from introspection
    /// first); the seconds taken.
    async fn wait_ready(&mut self, http: &reqwest::Client) -> anyhow::Result<f64> {
        let started = Instant::now();
        loop {
            self.check()?;
            let answer = http
                .post(format!("{}/graphql", self.base))
                .json(&json!({ "query": "{ __typename }" }))
                .send()
                .await;
            if matches!(answer, Ok(ref r) if r.status() == 200) {
                return Ok(started.elapsed().as_secs_f64());
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!(
                    "PostGraphile not answering after 2 minutes: {}",
                    last_lines(&std::fs::read_to_string(&self.log).unwrap_or_default(), 10)
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The node processes: the CLI and its cluster workers, if any (forked children).
    fn pids(&self) -> Vec<u32> {
        self.child.id().map_or_else(Vec::new, process_tree)
    }

    /// Peak RSS in KiB, summed over the processes.
    pub fn peak_rss(&self) -> u64 {
        self.pids()
            .iter()
            .map(|pid| Proc::Pid(*pid).peak_rss_kib())
            .sum()
    }

    pub async fn stop(mut self) {
        let pids = self.pids();
        // SIGTERM to the workers first: the cluster master then sees them exit and follows.
        for pid in pids.iter().rev() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        // A worker outliving its master (it should exit when the master's IPC channel
        // closes); still ours if it still runs PostGraphile.
        for pid in pids.iter().skip(1) {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains("postgraphile") {
                tracing::warn!(pid, "PostGraphile worker outlived its master; killing it");
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

impl ServerCpu for PostGraphile {
    fn cpu_secs(&self) -> f64 {
        self.pids()
            .iter()
            .map(|pid| Proc::Pid(*pid).cpu_secs())
            .sum()
    }
}

/// `PROGRAM --version`, trimmed; an error when it cannot be run.
async fn command_version(program: &str) -> anyhow::Result<String> {
    let out = tokio::process::Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("`{program} --version` could not be run"))?;
    if !out.status.success() {
        bail!("`{program} --version` failed ({})", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().rev().take(n).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" / ")
}

/// (field, value) pairs of one answer, in a fixed order.
type Fields = Vec<(String, String)>;

/// One property as both APIs answered it, as (field, value) strings: landql's numbers are
/// JSON numbers and its status an enum, PostGraphile's bigints are strings. Owner names are
/// left out: landql answers with the name as spelt on this parcel's record, PostGraphile
/// with `owners.name`, the latest spelling across all of the owner's parcels.
fn comparable(landql: &Value, postgraphile: &Value) -> (Fields, Fields) {
    fn text(v: &Value) -> String {
        match v {
            Value::String(s) => s.to_lowercase(),
            other => other.to_string(),
        }
    }
    let fields = [
        "id",
        "surveyNo",
        "khataNo",
        "areaSqM",
        "landType",
        "marketValue",
        "verificationStatus",
        "updatedAt",
    ];
    let (l, p) = (
        &landql["data"]["property"],
        &postgraphile["data"]["propertyById"],
    );
    let mut a: Fields = fields
        .iter()
        .map(|f| (f.to_string(), text(&l[*f])))
        .collect();
    let mut b: Fields = fields
        .iter()
        .map(|f| (f.to_string(), text(&p[*f])))
        .collect();
    for f in ["district", "mandal", "village"] {
        a.push((f.into(), text(&l["location"][f])));
        b.push((f.into(), text(&p[f])));
    }
    for f in ["blockNumber", "txId"] {
        a.push((f.into(), text(&l["provenance"][f])));
        b.push((f.into(), text(&p[f])));
    }
    let empty = Vec::new();
    for (i, o) in l["owners"].as_array().unwrap_or(&empty).iter().enumerate() {
        a.push((format!("owner {i}"), text(&o["owner"]["id"])));
        a.push((format!("share {i}"), text(&o["sharePct"])));
    }
    let nodes = p["ownershipsByPropertyId"]["nodes"].as_array();
    for (i, o) in nodes.unwrap_or(&empty).iter().enumerate() {
        b.push((
            format!("owner {i}"),
            text(&o["ownerByOwnerRef"]["ownerRef"]),
        ));
        b.push((format!("share {i}"), text(&o["sharePct"])));
    }
    (a, b)
}

/// What PostGraphile measured, or why it was not.
pub(super) struct PostGraphileMeasured {
    pub setup: String,
    pub ready_secs: f64,
    /// Mean response bytes of the checked properties: landql, PostGraphile.
    pub bytes: (f64, f64),
    pub peak: Report,
    pub peak_cpu: Cpu,
    /// PostgreSQL CPU per request (µs) during the peaks: landql's, PostGraphile's.
    pub postgres_us: Option<(f64, f64)>,
    /// At `--rate`, or why it was not run.
    pub fixed: Result<(Report, Cpu), String>,
    pub peak_rss_kib: u64,
}

/// Starts PostGraphile, checks that it answers the same as landql for a sample of IDs, and
/// warms it up as landql was warmed up (JIT, prepared statements, pool).
pub(super) async fn launch_postgraphile(
    args: &ApiBenchArgs,
    database_url: &str,
    work: &Path,
    http: &reqwest::Client,
    landql_base: &str,
    ids: &Arc<Vec<String>>,
) -> anyhow::Result<(PostGraphile, f64, (f64, f64), GraphqlClient)> {
    let workers = args.postgraphile_workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let mut pg = PostGraphile::start(&args.postgraphile_dir, database_url, work, workers).await?;
    let result = async {
        let ready = pg.wait_ready(http).await?;
        tracing::info!(secs = ready, "PostGraphile ready");
        let (mut landql_bytes, mut pg_bytes, checked) = (0usize, 0usize, 20u64);
        for i in 0..checked {
            let id = &ids[pick(i, ids.len())];
            let l = graphql_text(
                http,
                landql_base,
                json!({ "query": PROPERTY_QUERY, "variables": { "id": id } }),
            )
            .await?;
            let p = graphql_text(
                http,
                &pg.base,
                json!({ "query": POSTGRAPHILE_QUERY, "variables": { "id": id } }),
            )
            .await?;
            landql_bytes += l.len();
            pg_bytes += p.len();
            let (lv, pv): (Value, Value) = (serde_json::from_str(&l)?, serde_json::from_str(&p)?);
            if pv.get("errors").is_some() || pv["data"]["propertyById"].is_null() {
                bail!("PostGraphile's answer for {id}: {}", last_lines(&p, 3));
            }
            let (a, b) = comparable(&lv, &pv);
            if a != b {
                let differ: Vec<String> = a
                    .iter()
                    .zip(
                        b.iter()
                            .chain(std::iter::repeat(&(String::new(), String::new()))),
                    )
                    .filter(|(x, y)| x != y)
                    .map(|(x, y)| format!("{}: landql {} / PostGraphile {}", x.0, x.1, y.1))
                    .collect();
                bail!(
                    "landql and PostGraphile disagree on {id}: {}",
                    differ.join("; ")
                );
            }
        }
        let bytes = (
            landql_bytes as f64 / checked as f64,
            pg_bytes as f64 / checked as f64,
        );
        let client = GraphqlClient::new(&format!("{}/graphql", pg.base))?;
        tracing::info!("PostGraphile warm-up");
        let warm = loadgen::open_loop(
            500.0,
            Duration::from_secs(5),
            args.max_in_flight,
            postgraphile_request!(client, ids),
        )
        .await?;
        if warm.errors > 0 {
            bail!(
                "PostGraphile fails during the warm-up: {}",
                warm.first_error.unwrap_or_default()
            );
        }
        pg.check()?;
        anyhow::Ok((ready, bytes, client))
    }
    .await;
    match result {
        Ok((ready, bytes, client)) => Ok((pg, ready, bytes, client)),
        Err(e) => {
            pg.stop().await;
            Err(e)
        }
    }
}

/// The answer's text, as sent (its size is compared in the report).
async fn graphql_text(http: &reqwest::Client, base: &str, body: Value) -> anyhow::Result<String> {
    let r = http
        .post(format!("{base}/graphql"))
        .json(&body)
        .send()
        .await?;
    Ok(r.text().await?)
}
