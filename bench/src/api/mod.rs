//! `landql bench api`: the GraphQL API under load (design/targets.md, "property by ID",
//! "search", "memory"), with the direct-SQL floor measured in the same run.
//!
//! One run:
//! 1. a private PostgreSQL, a devnet seeded with `--records` records (served in-process on
//!    loopback) and the sync worker (in-process) until every channel's checkpoint is at the
//!    tip — or, with `--database-url` and `--ledger`, an existing synced pair (e.g. the one
//!    `landql dev` runs);
//! 2. `landql serve` as a child process on a free loopback port with a new, empty index
//!    directory (so its follower rebuilds the index from PostgreSQL, timed), until
//!    `/readyz` is 200 and `_meta.searchIndexSeq` has reached `changeLogSeq`;
//! 3. with `bench::load::http` (open loop, latency from each request's due time; keep-alive
//!    connections): a warm-up; `property(id)` over random existing IDs at `--rate`; the same
//!    lookup as one SQL statement through a sqlx pool at the same rate (the floor the API
//!    adds to); peak `property(id)` throughput, closed loop over `--peak-connections`; a
//!    district-filtered `properties` page (first 20, owners and documents) at `--page-rate`;
//!    `search` with names, places and survey numbers from the data at `--search-rate`,
//!    after a 5 s warm-up at that rate (its figures and the server's major page faults are
//!    reported) — last, because searches the server cannot keep up with go on running
//!    after their clients gave up, and would slow whatever came next;
//! 4. the server's peak RSS (`VmHWM` of the child — the server alone, its index follower
//!    included) and its cache and SQL counters from `/metrics`.
//!
//! The generator, the server, PostgreSQL and the idle ledger and sync worker share the
//! machine, as they would on a one-box deployment; the report says so.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::load::http::{self as loadgen, GraphqlClient, Report};
use anyhow::{bail, Context};
use ledger::client::{HttpLedger, Ledger};
use migrations::sqlx;
use serde_json::{json, Value};

/// The data a benchmark of the API runs on: a private seeded and synced pair, or an
/// existing one.
#[derive(clap::Args)]
pub struct BackendArgs {
    /// Records to seed into the private ledger.
    #[arg(long, default_value_t = 100_000)]
    records: u64,
    /// Use this (already synced) database instead of a private one; needs --ledger.
    #[arg(long, requires = "ledger", hide_env_values = true)]
    database_url: Option<String>,
    /// The ledger that database was synced from.
    #[arg(long, requires = "database_url")]
    ledger: Option<String>,
    /// Where the temporary ledger, database and index go (default: the system temp dir).
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct ApiBenchArgs {
    #[command(flatten)]
    backend: BackendArgs,
    /// property(id) requests per second (open loop), and for the SQL baseline.
    #[arg(long, default_value_t = 2000.0)]
    rate: f64,
    /// Seconds at that rate.
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Connections of the closed-loop peak-throughput phase.
    #[arg(long, default_value_t = 64)]
    peak_connections: usize,
    /// Seconds of the peak-throughput phase.
    #[arg(long, default_value_t = 10.0)]
    peak_seconds: f64,
    /// search requests per second (open loop).
    #[arg(long, default_value_t = 200.0)]
    search_rate: f64,
    /// Filtered properties pages per second (open loop).
    #[arg(long, default_value_t = 200.0)]
    page_rate: f64,
    /// Seconds of the search and page phases each.
    #[arg(long, default_value_t = 20.0)]
    other_seconds: f64,
    /// Requests in flight at most (open loop); the wait for a slot counts in the latency.
    #[arg(long, default_value_t = 1024)]
    max_in_flight: usize,
    /// RUST_LOG of the server (the default logs one access line per request, as in
    /// production; `warn` shows what that line costs).
    #[arg(long, default_value = "info,tantivy=warn")]
    server_log: String,
    /// Skip the PostGraphile baseline of the peak (design/targets.md: ≥ 3× PostGraphile).
    #[arg(long)]
    no_postgraphile: bool,
    /// PostGraphile's node processes (its `--cluster-workers`; 1 = one process, no cluster).
    /// Default: one per core, as landql serve's runtime has one worker thread per core.
    #[arg(long)]
    postgraphile_workers: Option<usize>,
    /// The node project pinning PostGraphile; `npm ci` runs there when node_modules is
    /// missing.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/postgraphile"))]
    postgraphile_dir: PathBuf,
    #[command(flatten)]
    out: crate::BenchOut,
}

const PROPERTY_QUERY: &str = "query Property($id: ID!) { property(id: $id) { \
    id surveyNo khataNo areaSqM landType marketValue verificationStatus updatedAt \
    location { district mandal village } owners { sharePct owner { id name } } \
    provenance { source blockNumber txId stale } } }";

const SEARCH_QUERY: &str = "query Search($text: String!) { search(text: $text, first: 10) { \
    total hits { score property { id location { district village } owners { owner { name } } } \
    highlights { field text } } pageInfo { hasNextPage endCursor } } }";

const PAGE_QUERY: &str = "query DistrictPage($state: String!, $district: String!) { \
    properties(filter: { state: $state, district: $district }, first: 20) { \
    edges { cursor node { id surveyNo marketValue location { mandal village } \
    owners { sharePct owner { id name } } documents { docType docHash } } } \
    pageInfo { hasNextPage endCursor } } }";

/// PROPERTY_QUERY in PostGraphile's generated schema (bench/postgraphile): the row by primary
/// key with the same columns, and the owners through ownerships → owners, the two relations
/// bench/postgraphile/postgraphile.tags.json5 declares (the read model has no foreign keys).
/// blockNumber and txId stand in for landql's provenance, less what PostGraphile cannot know
/// (where the answer came from, and whether it is stale against the chain).
const POSTGRAPHILE_QUERY: &str = "query Property($id: String!) { propertyById(id: $id) { \
    id surveyNo khataNo areaSqM landType marketValue verificationStatus updatedAt \
    district mandal village \
    ownershipsByPropertyId { nodes { sharePct ownerByOwnerRef { ownerRef name } } } \
    blockNumber txId } }";

/// The SQL floor: the same row by primary key, its record decoded.
const BASELINE_SQL: &str =
    "SELECT id, record, record_hash, channel, block_number, tx_index, tx_id \
    FROM properties WHERE id = $1";

/// A deterministic spread of request numbers over a list (splitmix64).
pub(crate) fn pick(i: u64, len: usize) -> usize {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % len.max(1) as u64) as usize
}

/// What the ledger and database under test are, and how to stop them.
pub(crate) struct Backend {
    pub database_url: String,
    ledger_url: String,
    pub records_note: String,
    pub root: tempfile::TempDir,
    private: Option<Private>,
}

/// A devnet seeded into `dir/ledger` and served on loopback, a private PostgreSQL in
/// `dir/pg` with the read model, and the sync worker projecting the one into the other: the
/// data every benchmark above the sync worker runs on (`bench api`, `bench limits`,
/// `bench search`).
pub(crate) struct Private {
    pub pg: migrations::PrivatePostgres,
    pub database_url: String,
    pub ledger_url: String,
    /// "N records seeded (T transactions, B blocks)".
    pub note: String,
    stop: tokio::sync::watch::Sender<bool>,
    ledger: tokio::task::JoinHandle<std::io::Result<()>>,
    sync: tokio::task::JoinHandle<Result<(), sync::SyncError>>,
}

impl Private {
    /// Seeds `records` records into `dir/ledger` (which must not exist yet), starts
    /// everything, and returns while the worker catches up (see [`Private::wait_synced`]).
    pub async fn start(dir: &Path, records: u64) -> anyhow::Result<Private> {
        tracing::info!(records, "seeding the ledger");
        let ledger_dir = dir.join("ledger");
        let d = ledger_dir.clone();
        let seeded = tokio::task::spawn_blocking(move || {
            devnet::seed::seed(
                &d,
                &devnet::seed::SeedOptions {
                    records,
                    ..Default::default()
                },
                |_| {},
            )
        })
        .await?
        .context("seeding")?;
        let (node, _) = tokio::task::spawn_blocking(move || {
            devnet::Node::start(&ledger_dir, devnet::DevnetConfig::default())
        })
        .await?
        .context("starting the devnet node")?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let ledger_url = format!("http://{}", listener.local_addr()?);
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let mut rx = stop_rx.clone();
        let ledger = tokio::spawn(devnet::serve(node, listener, async move {
            let _ = rx.wait_for(|s| *s).await;
        }));

        let pg = migrations::PrivatePostgres::start_with(
            &dir.join("pg"),
            migrations::PgOptions::from_env(),
        )
        .await
        .context("starting PostgreSQL")?;
        let database_url = pg.database_url();
        let pool = migrations::connect(&database_url).await?;
        migrations::migrate(&pool).await?;
        pool.close().await;

        tracing::info!("syncing");
        let mut rx = stop_rx.clone();
        let sync = tokio::spawn(sync::run(
            sync::SyncOptions::new(&ledger_url, &database_url),
            async move {
                let _ = rx.wait_for(|s| *s).await;
            },
        ));
        Ok(Private {
            pg,
            database_url,
            ledger_url,
            note: format!(
                "{} records seeded ({} transactions, {} blocks)",
                seeded.records, seeded.transactions, seeded.blocks
            ),
            stop,
            ledger,
            sync,
        })
    }

    /// Waits until every channel's checkpoint is at the ledger's tip; the seconds it took.
    pub async fn wait_synced(&self, pool: &sqlx::PgPool) -> anyhow::Result<f64> {
        wait_synced(&self.ledger_url, Some(&self.sync), pool).await
    }

    /// Stops the ledger and the sync worker, leaving the database running.
    pub async fn stop_feeding(self) -> migrations::PrivatePostgres {
        let _ = self.stop.send(true);
        let _ = self.sync.await;
        let _ = self.ledger.await;
        self.pg
    }
}

/// Settles a bulk load as a replica in steady state would be — VACUUM (ANALYZE), then a
/// CHECKPOINT — so that autovacuum and the checkpointer do not pick it up in the middle of
/// the measurements.
pub(crate) async fn settle(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    tracing::info!("VACUUM (ANALYZE) and CHECKPOINT after the bulk load");
    // One statement each: several in one string would run as one transaction block, where
    // VACUUM may not.
    sqlx::raw_sql("VACUUM (ANALYZE)").execute(pool).await?;
    sqlx::raw_sql("CHECKPOINT").execute(pool).await?;
    Ok(())
}

/// Waits until every channel's checkpoint in `pool` is at the tip of the ledger at
/// `ledger_url`; fails if `sync` (the worker, when it runs here) stops first.
async fn wait_synced(
    ledger_url: &str,
    sync: Option<&tokio::task::JoinHandle<Result<(), sync::SyncError>>>,
    pool: &sqlx::PgPool,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let ledger = HttpLedger::new(ledger_url, Duration::from_secs(5))?;
    let mut last_log = Instant::now();
    loop {
        if sync.is_some_and(|s| s.is_finished()) {
            bail!("the sync worker stopped");
        }
        let info = ledger.info().await?;
        let cps: Vec<(String, i64)> =
            sqlx::query_as("SELECT channel, block_number FROM checkpoints")
                .fetch_all(pool)
                .await?;
        let behind = sync::blocks_behind(&info, &cps);
        if behind == 0 {
            return Ok(started.elapsed().as_secs_f64());
        }
        if last_log.elapsed() > Duration::from_secs(10) {
            tracing::info!(blocks_behind = behind, "syncing");
            last_log = Instant::now();
        }
        if started.elapsed() > Duration::from_secs(3 * 3600) {
            bail!("not synced after three hours");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl Backend {
    pub async fn start(args: &BackendArgs) -> anyhow::Result<Backend> {
        let base = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
        let root = tempfile::Builder::new()
            .prefix("landql-bench-api-")
            .tempdir_in(&base)
            .with_context(|| format!("temporary directory in {}", base.display()))?;
        crate::sync::set_mode(root.path(), 0o711);
        if let (Some(db), Some(ledger)) = (&args.database_url, &args.ledger) {
            return Ok(Backend {
                database_url: db.clone(),
                ledger_url: ledger.clone(),
                records_note: "an existing database and ledger (--database-url, --ledger)".into(),
                root,
                private: None,
            });
        }
        let private = Private::start(root.path(), args.records).await?;
        Ok(Backend {
            database_url: private.database_url.clone(),
            ledger_url: private.ledger_url.clone(),
            records_note: private.note.clone(),
            root,
            private: Some(private),
        })
    }

    /// Waits until every channel's checkpoint is at the ledger's tip.
    pub async fn wait_synced(&self, pool: &sqlx::PgPool) -> anyhow::Result<f64> {
        wait_synced(
            &self.ledger_url,
            self.private.as_ref().map(|p| &p.sync),
            pool,
        )
        .await
    }

    /// The private PostgreSQL's postmaster (first line of its postmaster.pid), whose process
    /// tree's CPU the report compares; `None` for an existing database.
    fn postmaster_pid(&self) -> Option<u32> {
        let p = self.private.as_ref()?;
        std::fs::read_to_string(p.pg.data_dir().join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    pub async fn stop(self) {
        if let Some(p) = self.private {
            let _ = p.stop_feeding().await.stop().await;
        }
        drop(self.root);
    }
}

/// The search warm-up before the measured search run.
const SEARCH_WARM_UP: Duration = Duration::from_secs(5);

/// `landql serve` as a child process.
pub(crate) struct Server {
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
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = dir.join("serve.log");
        let program = std::env::current_exe().context("finding the landql binary")?;
        let child = tokio::process::Command::new(program)
            .arg("serve")
            .args(args)
            .env("DATABASE_URL", &backend.database_url)
            .env("LANDQL_LEDGER", &backend.ledger_url)
            .env("LANDQL_LISTEN", format!("127.0.0.1:{port}"))
            .env("LANDQL_INDEX_DIR", dir.join("index"))
            .env_remove("LANDQL_REPLICA_URL")
            // The load comes from one address at thousands of requests a second.
            .env("LANDQL_RATE_LIMIT", "anonymous=off")
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

    /// CPU seconds the server has used (user + system).
    fn cpu_secs(&self) -> f64 {
        self.stat_path().map_or(0.0, |p| cpu_secs(&p))
    }

    /// The server's major page faults so far.
    fn major_faults(&self) -> f64 {
        self.stat_path().map_or(0.0, |p| major_faults(&p))
    }

    fn stat_path(&self) -> Option<String> {
        self.child.id().map(|pid| format!("/proc/{pid}/stat"))
    }

    /// Peak and current RSS in KiB.
    pub fn rss(&self) -> (u64, u64) {
        let Some(pid) = self.child.id() else {
            return (0, 0);
        };
        let status = format!("/proc/{pid}/status");
        (
            crate::sync::vm_hwm_kib(&status),
            crate::sync::proc_status_kib(&status, "VmRSS"),
        )
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

/// User + system CPU seconds from a `/proc/<pid>/stat` file (fields 14 and 15, in the
/// kernel's USER_HZ of 100 ticks per second); 0 if unreadable.
fn cpu_secs(stat_path: &str) -> f64 {
    let f = stat_fields(stat_path);
    (f(11) + f(12)) / 100.0
}

/// Major page faults of a process so far: pages it had to wait on the disk for.
fn major_faults(stat_path: &str) -> f64 {
    stat_fields(stat_path)(9)
}

/// Major page faults of every process on the machine so far.
fn machine_major_faults() -> f64 {
    std::fs::read_to_string("/proc/vmstat")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("pgmajfault "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The numeric fields of `/proc/PID/stat` after the command name, by index from the
/// state (field 3) on; 0 for what cannot be read.
fn stat_fields(stat_path: &str) -> impl Fn(usize) -> f64 {
    let text = std::fs::read_to_string(stat_path).unwrap_or_default();
    // The command name (field 2) may hold spaces; the fields after it are plain.
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<f64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    move |i| fields.get(i).copied().unwrap_or(0.0)
}

/// CPU used by the server and by this process (the generator, plus the idle in-process
/// ledger and sync worker) over one phase, per completed request, in µs.
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    /// `None` where the server is not involved (the SQL baseline).
    server_us: Option<f64>,
    generator_us: f64,
}

struct CpuMark {
    server: f64,
    this: f64,
}

/// A server under test whose CPU time can be read: landql serve or PostGraphile.
trait ServerCpu {
    /// CPU seconds used so far (user + system).
    fn cpu_secs(&self) -> f64;
}

impl ServerCpu for Server {
    fn cpu_secs(&self) -> f64 {
        Server::cpu_secs(self)
    }
}

impl CpuMark {
    fn now(server: &impl ServerCpu) -> Self {
        CpuMark {
            server: server.cpu_secs(),
            this: cpu_secs("/proc/self/stat"),
        }
    }

    fn per_request(&self, server: &impl ServerCpu, requests: u64) -> Cpu {
        let n = requests.max(1) as f64;
        Cpu {
            server_us: Some((server.cpu_secs() - self.server) * 1e6 / n),
            generator_us: (cpu_secs("/proc/self/stat") - self.this) * 1e6 / n,
        }
    }
}

/// property(id) as PostGraphile's request, over the same IDs in the same order as landql's
/// (a macro: a closure returning `impl Future` cannot be named as a function's return type).
macro_rules! postgraphile_request {
    ($client:expr, $ids:expr) => {{
        let (client, ids): (GraphqlClient, Arc<Vec<String>>) = ($client.clone(), $ids.clone());
        move |i: u64| {
            let id = &ids[pick(i, ids.len())];
            let body =
                json!({ "query": POSTGRAPHILE_QUERY, "variables": { "id": id } }).to_string();
            client.post(body)
        }
    }};
}

/// PostGraphile (bench/postgraphile) as a child process on the same database: the baseline of
/// design/targets.md's "peak throughput ≥ 3× PostGraphile on the same query and database".
struct PostGraphile {
    child: tokio::process::Child,
    base: String,
    log: PathBuf,
    /// What ran, for the report: versions, processes, pool and flags.
    setup: String,
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

    fn check(&mut self) -> anyhow::Result<()> {
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
    fn peak_rss(&self) -> u64 {
        self.pids()
            .iter()
            .map(|pid| crate::sync::vm_hwm_kib(&format!("/proc/{pid}/status")))
            .sum()
    }

    async fn stop(mut self) {
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
            .map(|pid| cpu_secs(&format!("/proc/{pid}/stat")))
            .sum()
    }
}

/// CPU seconds of a process tree (e.g. PostgreSQL: the postmaster and its backends).
struct ProcessTreeCpu(u32);

impl ServerCpu for ProcessTreeCpu {
    fn cpu_secs(&self) -> f64 {
        process_tree(self.0)
            .iter()
            .map(|pid| cpu_secs(&format!("/proc/{pid}/stat")))
            .sum()
    }
}

/// `pid` and every process below it, from the parent IDs in /proc/*/stat.
fn process_tree(pid: u32) -> Vec<u32> {
    let mut links = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(p) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                continue;
            };
            // Field 4 (the parent) is the second after the command name's closing ')'.
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u32>().ok());
            if let Some(parent) = parent {
                links.push((p, parent));
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let cur = tree[i];
        tree.extend(links.iter().filter(|(_, pp)| *pp == cur).map(|(p, _)| *p));
        i += 1;
    }
    tree
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
struct PostGraphileMeasured {
    setup: String,
    ready_secs: f64,
    /// Mean response bytes of the checked properties: landql, PostGraphile.
    bytes: (f64, f64),
    peak: Report,
    peak_cpu: Cpu,
    /// PostgreSQL CPU per request (µs) during the peaks: landql's, PostGraphile's.
    postgres_us: Option<(f64, f64)>,
    /// At `--rate`, or why it was not run.
    fixed: Result<(Report, Cpu), String>,
    peak_rss_kib: u64,
}

/// Starts PostGraphile, checks that it answers the same as landql for a sample of IDs, and
/// warms it up as landql was warmed up (JIT, prepared statements, pool).
async fn launch_postgraphile(
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

async fn graphql(http: &reqwest::Client, base: &str, body: Value) -> anyhow::Result<Value> {
    let r = http
        .post(format!("{base}/graphql"))
        .json(&body)
        .send()
        .await?;
    Ok(r.json().await?)
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

/// A counter or gauge from the metrics text (0 when absent).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn scrape(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    Ok(http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?)
}

/// Search texts as citizens would type them, from the data: full names in their script,
/// lower-cased names with the village, given names, villages, survey numbers with villages.
async fn search_texts(pool: &sqlx::PgPool) -> anyhow::Result<Vec<String>> {
    let rows: Vec<(Option<String>, String, String)> = sqlx::query_as(
        "SELECT record->'owners'->0->>'name', village, survey_no FROM properties \
         ORDER BY md5(id) LIMIT 400",
    )
    .fetch_all(pool)
    .await?;
    let mut texts = Vec::new();
    for (i, (name, village, survey)) in rows.into_iter().enumerate() {
        let name = name.unwrap_or_default();
        let given = name.split_whitespace().next().unwrap_or("").to_string();
        let text = match i % 5 {
            0 => name,
            1 => format!("{} {}", name.to_lowercase(), village),
            2 => given,
            3 => village,
            _ => format!("{survey} {village}"),
        };
        if !text.trim().is_empty() {
            texts.push(text);
        }
    }
    if texts.is_empty() {
        bail!("no properties to take search texts from");
    }
    Ok(texts)
}

fn row(what: &str, r: &Report, cpu: Cpu, target: &str) -> String {
    let rate = match r.target_rate {
        Some(t) => format!("{t:.0}/s offered, {:.0}/s done", r.achieved_per_s),
        None => format!("**{:.0}/s**", r.achieved_per_s),
    };
    let cpu = match cpu.server_us {
        Some(server) => format!("{server:.0} / {:.0}", cpu.generator_us),
        None => format!("— / {:.0}", cpu.generator_us),
    };
    format!(
        "| {what} | {rate} | {:.2} | {:.2} | **{:.2}** | {:.2} | {} of {} | {cpu} | {target} |",
        r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms, r.errors, r.sent
    )
}

pub async fn run(args: ApiBenchArgs) -> anyhow::Result<()> {
    let load_before = crate::sync::load_average();
    let backend = Backend::start(&args.backend).await?;
    let pool = migrations::connect(&backend.database_url).await?;
    let sync_secs = backend.wait_synced(&pool).await?;
    tracing::info!(secs = sync_secs, "synced");
    let settled = backend.private.is_some();
    if settled {
        settle(&pool).await?;
    }
    let postgres = crate::sync::postgres_version(&pool).await?;
    let properties: i64 = sqlx::query_scalar("SELECT count(*) FROM properties")
        .fetch_one(&pool)
        .await?;
    let changes: i64 = sqlx::query_scalar("SELECT count(*) FROM change_log")
        .fetch_one(&pool)
        .await?;

    let http = reqwest::Client::new();
    let mut server = Server::start(&backend, backend.root.path(), &args.server_log, &[]).await?;
    let result = measure(
        &args,
        &backend.database_url,
        &pool,
        &http,
        &mut server,
        backend.root.path(),
        backend.postmaster_pid(),
    )
    .await;
    let (peak_kib, current_kib) = server.rss();
    server.stop().await;
    pool.close().await;
    let log = backend.root.path().join("serve.log");
    if result.is_err() {
        if let Ok(text) = std::fs::read_to_string(&log) {
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            eprintln!("last lines of the server's log:");
            for l in tail.into_iter().rev() {
                eprintln!("  {l}");
            }
        }
    }
    let records_note = backend.records_note.clone();
    backend.stop().await;
    let m = result?;

    let mut s = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(
        s,
        "Machine: {}; load average {load_before} at the start. {postgres}.",
        crate::sync::machine()
    );
    let _ = writeln!(
        s,
        "Data: {records_note}; {properties} properties, {changes} change-log rows. \
         {}`landql serve` ran as a child process (its own index follower rebuilt the search \
         index from PostgreSQL in {:.1} s before the runs); the load generator \
         (`bench::load::http`, open loop: latency from each request's due time, keep-alive \
         connections), PostgreSQL, the in-process devnet and the idle sync worker shared \
         the same 2 cores. Server log filter `{}` (`info` writes one access line per \
         request, as in production). CPU per request is the CPU time each process used over \
         the run divided by the requests done.\n",
        if settled {
            "The database was vacuumed and analysed after the bulk load. "
        } else {
            ""
        },
        m.ready_secs,
        args.server_log
    );
    let _ = writeln!(
        s,
        "| what | rate | p50 ms | p90 ms | p99 ms | max ms | errors | CPU µs/request: server / generator | target |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    let _ = writeln!(
        s,
        "{}",
        row(
            "`property(id)` over HTTP, random existing IDs",
            &m.property,
            m.cpu[0],
            "p99 < 5 ms"
        )
    );
    let _ = writeln!(
        s,
        "{}",
        row(
            "baseline: the same row by primary key, one SQL statement through a sqlx pool (16 connections)",
            &m.sql,
            m.cpu[1],
            "the floor"
        )
    );
    let _ = writeln!(
        s,
        "{}",
        row(
            &format!(
                "peak `property(id)`, closed loop over {} connections",
                m.peak.concurrency
            ),
            &m.peak,
            m.cpu[2],
            if m.postgraphile.is_ok() {
                "≥ 3× PostGraphile (below)"
            } else {
                "≥ 3× PostGraphile (not run here)"
            }
        )
    );
    if let Ok(pg) = &m.postgraphile {
        let _ = writeln!(
            s,
            "{}",
            row(
                &format!(
                    "PostGraphile: `propertyById`, the same columns, owners through ownerships → \
                     owners; closed loop over {} connections",
                    pg.peak.concurrency
                ),
                &pg.peak,
                pg.peak_cpu,
                "the baseline"
            )
        );
        if let Ok((fixed, cpu)) = &pg.fixed {
            let _ = writeln!(
                s,
                "{}",
                row(
                    "PostGraphile: the same query at the fixed rate, the same IDs",
                    fixed,
                    *cpu,
                    ""
                )
            );
        }
    }
    let _ = writeln!(
        s,
        "{}",
        row(
            "`properties(filter: {state, district}, first: 20)` with owners and documents",
            &m.page,
            m.cpu[4],
            ""
        )
    );
    let _ = writeln!(
        s,
        "{}",
        row(
            "`search` (names in four scripts, villages, survey numbers from the data)",
            &m.search,
            m.cpu[3],
            "p99 < 20 ms at 1 M records"
        )
    );
    let _ = writeln!(s);
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let _ = writeln!(
        s,
        "- API over SQL floor at {:.0} req/s: p50 {:.1}×, p99 {:.1}× (+{:.2} ms at p50).",
        m.property.target_rate.unwrap_or(0.0),
        ratio(m.property.p50_ms, m.sql.p50_ms),
        ratio(m.property.p99_ms, m.sql.p99_ms),
        m.property.p50_ms - m.sql.p50_ms
    );
    match &m.postgraphile {
        Ok(pg) => {
            let x = ratio(m.peak.achieved_per_s, pg.peak.achieved_per_s);
            let _ = writeln!(
                s,
                "- **peak landql / PostGraphile = {x:.1}×** (target ≥ 3×: {}); server CPU per \
                 request {:.0} µs against {:.0} µs{}. During landql's peak its property cache \
                 had {:.0} % hits (PostGraphile has no cache).",
                if x >= 3.0 { "met" } else { "**not met**" },
                m.cpu[2].server_us.unwrap_or(0.0),
                pg.peak_cpu.server_us.unwrap_or(0.0),
                match pg.postgres_us {
                    Some((l, p)) => format!(
                        "; PostgreSQL's CPU per request (postmaster and backends) {l:.0} µs \
                         against {p:.0} µs"
                    ),
                    None => String::new(),
                },
                100.0 * ratio(m.peak_cache.0, m.peak_cache.0 + m.peak_cache.1)
            );
            if let Ok((fixed, _)) = &pg.fixed {
                let _ = writeln!(
                    s,
                    "- At {:.0} req/s: p50 {:.2} ms (landql) against {:.2} ms (PostGraphile), \
                     p99 {:.2} ms against {:.2} ms.",
                    fixed.target_rate.unwrap_or(0.0),
                    m.property.p50_ms,
                    fixed.p50_ms,
                    m.property.p99_ms,
                    fixed.p99_ms
                );
            }
            let _ = writeln!(
                s,
                "- PostGraphile: {}; it ran from bench/postgraphile against the same database \
                 on the same 2 cores, answered in {:.1} s, was checked to answer 20 properties \
                 as landql does, then warmed up (5 s at 500/s) like landql; its peak ran right \
                 after landql's, its peak RSS was {:.0} MiB (all processes). The query: `{}`. \
                 What remains different: landql also computes provenance (source, block, \
                 transaction, and staleness against the chain height it polls), reads one row \
                 (owners come from the record as written on the chain, names as spelt on this \
                 parcel) and re-hashes it, and accepts any spelling of an ID; PostGraphile \
                 joins properties → ownerships → owners in one SQL statement (owner names as \
                 last recorded), by the text primary key, with blockNumber and txId as plain \
                 columns. Mean answer {:.0} bytes (landql) against {:.0} bytes. Its fixed-rate \
                 run: {}.",
                pg.setup,
                pg.ready_secs,
                pg.peak_rss_kib as f64 / 1024.0,
                POSTGRAPHILE_QUERY,
                pg.bytes.0,
                pg.bytes.1,
                match &pg.fixed {
                    Ok(_) => "in the table".to_string(),
                    Err(why) => why.clone(),
                }
            );
        }
        Err(why) => {
            let _ = writeln!(s, "- PostGraphile baseline: {why}.");
        }
    }
    let _ = writeln!(
        s,
        "- During the fixed-rate `property(id)` run: property cache {:.0} hits / {:.0} misses \
         ({:.0} % hits; 10 000 entries, 10 s TTL, IDs drawn uniformly from all properties), \
         {:.2} SQL statements per request; {:.0} major page faults on the whole machine \
         (the server's and PostgreSQL's reads that waited on the disk).",
        m.cache_hits,
        m.cache_misses,
        100.0 * ratio(m.cache_hits, m.cache_hits + m.cache_misses),
        ratio(m.sql_statements, m.property.sent as f64),
        m.property_faults
    );
    let steps: Vec<String> = m
        .rss
        .iter()
        .map(|(when, kib)| format!("{:.0} MiB {when}", *kib as f64 / 1024.0))
        .collect();
    let _ = writeln!(
        s,
        "- Peak RSS of `landql serve` (the server process alone, index follower included): \
         **{:.0} MiB** (VmHWM; {:.0} MiB resident at the end). Target < 1 GiB at 1 M records. \
         The peak as it stood: {}.",
        peak_kib as f64 / 1024.0,
        current_kib as f64 / 1024.0,
        steps.join("; ")
    );
    let _ = writeln!(
        s,
        "- Major page faults of `landql serve` (reads it waited on the disk for, e.g. index \
         pages the kernel had dropped from memory): {:.0} during the page run, {:.0} during \
         the search run. The search run came after a {:.0} s warm-up at the same rate, whose \
         requests took {:.0} major faults: p50 {:.2} ms, p99 **{:.2} ms**, max {:.2} ms.",
        m.page_faults,
        m.search_faults,
        SEARCH_WARM_UP.as_secs_f64(),
        m.search_warm_faults,
        m.search_warm.p50_ms,
        m.search_warm.p99_ms,
        m.search_warm.max_ms
    );
    let _ = writeln!(
        s,
        "- The generator's own send delay peaked at {:.2} ms (counted in the latencies).",
        m.property.max_send_lag_ms
    );
    let body = s;
    args.out.write("api", "GraphQL API", &body)
}

struct Measured {
    ready_secs: f64,
    property: Report,
    sql: Report,
    peak: Report,
    search: Report,
    page: Report,
    /// Per phase, in the order of the fields above.
    cpu: [Cpu; 5],
    /// The search warm-up before `search`.
    search_warm: Report,
    /// Major page faults of every process during the fixed-rate property(id) run.
    property_faults: f64,
    /// The server's major page faults during the page run, the search warm-up and the
    /// search run.
    page_faults: f64,
    search_warm_faults: f64,
    search_faults: f64,
    /// The server's peak RSS (KiB) as it stood after each step.
    rss: Vec<(&'static str, u64)>,
    cache_hits: f64,
    cache_misses: f64,
    sql_statements: f64,
    /// Property cache hits and misses during landql's peak.
    peak_cache: (f64, f64),
    /// The PostGraphile baseline, or why there is none.
    postgraphile: Result<PostGraphileMeasured, String>,
}

async fn measure(
    args: &ApiBenchArgs,
    database_url: &str,
    pool: &sqlx::PgPool,
    http: &reqwest::Client,
    server: &mut Server,
    work: &Path,
    postmaster: Option<u32>,
) -> anyhow::Result<Measured> {
    tracing::info!("waiting for landql serve and its search index");
    let ready_secs = server.wait_ready(http).await?;
    tracing::info!(secs = ready_secs, "landql serve ready");

    let ids: Arc<Vec<String>> = Arc::new(
        sqlx::query_scalar("SELECT id FROM properties")
            .fetch_all(pool)
            .await?,
    );
    if ids.is_empty() {
        bail!("the database holds no properties");
    }
    let texts = Arc::new(search_texts(pool).await?);
    let districts: Arc<Vec<(String, String)>> = Arc::new(
        sqlx::query_as(
            "SELECT state, district FROM properties GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 50",
        )
        .fetch_all(pool)
        .await?,
    );
    let client = GraphqlClient::new(&format!("{}/graphql", server.base))?;
    let property = {
        let (client, ids) = (client.clone(), ids.clone());
        move |i: u64| {
            let id = &ids[pick(i, ids.len())];
            let body = json!({ "query": PROPERTY_QUERY, "variables": { "id": id } }).to_string();
            client.post(body)
        }
    };
    let seconds = Duration::from_secs_f64(args.seconds);

    tracing::info!("warm-up");
    let warm = loadgen::open_loop(
        500.0,
        Duration::from_secs(5),
        args.max_in_flight,
        property.clone(),
    )
    .await?;
    if warm.errors > 0 {
        bail!(
            "property(id) fails during the warm-up: {}",
            warm.first_error.unwrap_or_default()
        );
    }
    server.check()?;

    let mut rss = vec![("index rebuilt, before any load", server.rss().0)];
    tracing::info!(rate = args.rate, "property(id), fixed rate");
    let before = scrape(http, &server.base).await?;
    let mark = CpuMark::now(server);
    let faults = machine_major_faults();
    let property_report =
        loadgen::open_loop(args.rate, seconds, args.max_in_flight, property.clone()).await?;
    let property_cpu = mark.per_request(server, property_report.sent);
    let property_faults = machine_major_faults() - faults;
    let after = scrape(http, &server.base).await?;
    let delta = |name: &str| metric(&after, name) - metric(&before, name);
    let cache_hits = delta("landql_api_property_cache_hits_total");
    let cache_misses = delta("landql_api_property_cache_misses_total");
    let sql_statements = delta("landql_api_sql_statements_total");
    tracing::info!(?property_report, "property(id) done");
    server.check()?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    tracing::info!(rate = args.rate, "SQL baseline, fixed rate");
    // A pool of its own with the options the API's has (16 connections), so both sides get
    // the same parallelism.
    let sql_pool = migrations::connect(database_url).await?;
    let mark = CpuMark::now(server);
    let sql_report = {
        let (sql_pool, ids) = (sql_pool.clone(), ids.clone());
        loadgen::open_loop(args.rate, seconds, args.max_in_flight, move |i| {
            let id = ids[pick(i, ids.len())].clone();
            let pool = sql_pool.clone();
            async move {
                type Row = (
                    String,
                    sqlx::types::Json<Value>,
                    String,
                    String,
                    i64,
                    i32,
                    String,
                );
                let row: Option<Row> = sqlx::query_as(BASELINE_SQL)
                    .bind(&id)
                    .fetch_optional(&pool)
                    .await
                    .map_err(|e| e.to_string())?;
                match row {
                    Some(_) => Ok(()),
                    None => Err(format!("{id} not found")),
                }
            }
        })
        .await?
    };
    let sql_cpu = Cpu {
        server_us: None,
        ..mark.per_request(server, sql_report.sent)
    };
    sql_pool.close().await;
    tracing::info!(?sql_report, "SQL baseline done");
    tokio::time::sleep(Duration::from_secs(2)).await;

    // PostGraphile is started, checked and warmed up before landql's peak, so that the two
    // peaks run back to back.
    let launched = if args.no_postgraphile {
        Err("skipped (`--no-postgraphile`)".to_string())
    } else {
        tracing::info!(dir = %args.postgraphile_dir.display(), "starting PostGraphile");
        launch_postgraphile(args, database_url, work, http, &server.base, &ids)
            .await
            .map_err(|e| {
                tracing::warn!(error = format!("{e:#}"), "PostGraphile not run");
                format!("not run: {e:#}")
            })
    };
    if launched.is_ok() {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    let postgres_cpu = postmaster.map(ProcessTreeCpu);
    tracing::info!(connections = args.peak_connections, "peak property(id)");
    let before = scrape(http, &server.base).await?;
    let mark = CpuMark::now(server);
    let pg_mark = postgres_cpu.as_ref().map(CpuMark::now);
    let peak = loadgen::closed_loop(
        args.peak_connections,
        Duration::from_secs_f64(args.peak_seconds),
        property,
    )
    .await?;
    let peak_cpu = mark.per_request(server, peak.sent);
    let peak_postgres_us = postgres_cpu
        .as_ref()
        .zip(pg_mark)
        .and_then(|(p, m)| m.per_request(p, peak.sent).server_us);
    let after = scrape(http, &server.base).await?;
    let delta = |name: &str| metric(&after, name) - metric(&before, name);
    let peak_cache = (
        delta("landql_api_property_cache_hits_total"),
        delta("landql_api_property_cache_misses_total"),
    );
    rss.push(("after the property(id) runs", server.rss().0));
    tracing::info!(?peak, "peak done");
    server.check()?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let postgraphile = match launched {
        Ok((mut pg, ready_secs, bytes, pg_client)) => {
            let measured = async {
                tracing::info!(connections = args.peak_connections, "PostGraphile peak");
                let mark = CpuMark::now(&pg);
                let pg_mark = postgres_cpu.as_ref().map(CpuMark::now);
                let pg_peak = loadgen::closed_loop(
                    args.peak_connections,
                    Duration::from_secs_f64(args.peak_seconds),
                    postgraphile_request!(pg_client, ids),
                )
                .await?;
                let pg_peak_cpu = mark.per_request(&pg, pg_peak.sent);
                let pg_postgres_us = postgres_cpu
                    .as_ref()
                    .zip(pg_mark)
                    .and_then(|(p, m)| m.per_request(p, pg_peak.sent).server_us);
                tracing::info!(peak = ?pg_peak, "PostGraphile peak done");
                pg.check()?;
                if pg_peak.errors > 0 {
                    bail!(
                        "{} of {} PostGraphile requests failed at the peak: {}",
                        pg_peak.errors,
                        pg_peak.sent,
                        pg_peak.first_error.clone().unwrap_or_default()
                    );
                }
                // Below its peak the open loop would only measure a growing queue (and take
                // long to drain it).
                let fixed = if pg_peak.achieved_per_s >= args.rate {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    tracing::info!(rate = args.rate, "PostGraphile, fixed rate");
                    let mark = CpuMark::now(&pg);
                    let report = loadgen::open_loop(
                        args.rate,
                        seconds,
                        args.max_in_flight,
                        postgraphile_request!(pg_client, ids),
                    )
                    .await?;
                    let cpu = mark.per_request(&pg, report.sent);
                    tracing::info!(?report, "PostGraphile fixed rate done");
                    pg.check()?;
                    Ok((report, cpu))
                } else {
                    Err(format!(
                        "not run: PostGraphile's peak ({:.0}/s) is below {:.0}/s, where the \
                         latencies would only measure a growing queue",
                        pg_peak.achieved_per_s, args.rate
                    ))
                };
                anyhow::Ok(PostGraphileMeasured {
                    setup: pg.setup.clone(),
                    ready_secs,
                    bytes,
                    peak: pg_peak,
                    peak_cpu: pg_peak_cpu,
                    postgres_us: peak_postgres_us.zip(pg_postgres_us),
                    fixed,
                    peak_rss_kib: pg.peak_rss(),
                })
            }
            .await;
            pg.stop().await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            measured.map_err(|e| {
                tracing::warn!(error = format!("{e:#}"), "PostGraphile phase failed");
                format!("failed: {e:#}")
            })
        }
        Err(why) => Err(why),
    };

    let other = Duration::from_secs_f64(args.other_seconds);
    tracing::info!(rate = args.page_rate, "filtered pages, fixed rate");
    let mark = CpuMark::now(server);
    let faults = server.major_faults();
    let page = {
        let (client, districts) = (client.clone(), districts.clone());
        loadgen::open_loop(args.page_rate, other, args.max_in_flight, move |i| {
            let (state, district) = &districts[pick(i, districts.len())];
            client.post(
                json!({ "query": PAGE_QUERY,
                        "variables": { "state": state, "district": district } })
                .to_string(),
            )
        })
        .await?
    };
    let page_cpu = mark.per_request(server, page.sent);
    let page_faults = server.major_faults() - faults;
    rss.push(("after the page run", server.rss().0));
    tracing::info!(?page, "pages done");
    server.check()?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // A warm-up first, as for property(id): the runs before left the index's pages unused
    // for minutes, and the kernel may have dropped them (its major faults are reported).
    let run_search = |seconds: Duration, offset: u64| {
        let (client, texts) = (client.clone(), texts.clone());
        loadgen::open_loop(args.search_rate, seconds, args.max_in_flight, move |i| {
            let text = &texts[pick(i + offset, texts.len())];
            client.post(json!({ "query": SEARCH_QUERY, "variables": { "text": text } }).to_string())
        })
    };
    tracing::info!(rate = args.search_rate, "search warm-up");
    let faults = server.major_faults();
    let search_warm = run_search(SEARCH_WARM_UP, 1 << 30).await?;
    let search_warm_faults = server.major_faults() - faults;
    tokio::time::sleep(Duration::from_secs(1)).await;
    tracing::info!(rate = args.search_rate, "search, fixed rate");
    let mark = CpuMark::now(server);
    let faults = server.major_faults();
    let search = run_search(other, 0).await?;
    let search_cpu = mark.per_request(server, search.sent);
    let search_faults = server.major_faults() - faults;
    rss.push(("after the search run", server.rss().0));
    tracing::info!(?search, "search done");
    server.check()?;

    Ok(Measured {
        ready_secs,
        property: property_report,
        sql: sql_report,
        peak,
        search,
        page,
        cpu: [property_cpu, sql_cpu, peak_cpu, search_cpu, page_cpu],
        search_warm,
        property_faults,
        page_faults,
        search_warm_faults,
        search_faults,
        rss,
        cache_hits,
        cache_misses,
        sql_statements,
        peak_cache,
        postgraphile,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_count_from_the_state_and_survive_spaces_in_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stat");
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        // utime stime …
        std::fs::write(
            &path,
            "4242 (landql serve) S 1 4242 4242 0 -1 4194560 900 0 37 0 250 50 0 0 20 0 3\n",
        )
        .unwrap();
        let path = path.to_str().unwrap();
        assert_eq!(major_faults(path), 37.0);
        assert_eq!(cpu_secs(path), 3.0);
        assert_eq!(major_faults("/nonexistent/stat"), 0.0);
    }
}
