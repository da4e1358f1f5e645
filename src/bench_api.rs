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
//! 3. with `api::loadgen` (open loop, latency from each request's due time; keep-alive
//!    connections): a warm-up; `property(id)` over random existing IDs at `--rate`; the same
//!    lookup as one SQL statement through a sqlx pool at the same rate (the floor the API
//!    adds to); peak `property(id)` throughput, closed loop over `--peak-connections`; a
//!    district-filtered `properties` page (first 20, owners and documents) at `--page-rate`;
//!    `search` with names, places and survey numbers from the data at `--search-rate` — last,
//!    because searches the server cannot keep up with go on running after their clients
//!    gave up, and would slow whatever came next;
//! 4. the server's peak RSS (`VmHWM` of the child — the server alone, its index follower
//!    included) and its cache and SQL counters from `/metrics`.
//!
//! The generator, the server, PostgreSQL and the idle ledger and sync worker share the
//! machine, as they would on a one-box deployment; the report says so.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use api::loadgen::{self, GraphqlClient, Report};
use ledger::client::{HttpLedger, Ledger};
use migrations::sqlx;
use serde_json::{json, Value};

#[derive(clap::Args)]
pub struct ApiBenchArgs {
    /// Records to seed into the private ledger.
    #[arg(long, default_value_t = 100_000)]
    records: u64,
    /// Use this (already synced) database instead of a private one; needs --ledger.
    #[arg(long, requires = "ledger", hide_env_values = true)]
    database_url: Option<String>,
    /// The ledger that database was synced from.
    #[arg(long, requires = "database_url")]
    ledger: Option<String>,
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
    /// Where the temporary ledger, database and index go (default: the system temp dir).
    #[arg(long)]
    work_dir: Option<PathBuf>,
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

/// The SQL floor: the same row by primary key, its record decoded.
const BASELINE_SQL: &str =
    "SELECT id, record, record_hash, channel, block_number, tx_index, tx_id \
    FROM properties WHERE id = $1";

/// A deterministic spread of request numbers over a list (splitmix64).
fn pick(i: u64, len: usize) -> usize {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % len.max(1) as u64) as usize
}

/// What the ledger and database under test are, and how to stop them.
struct Backend {
    database_url: String,
    ledger_url: String,
    records_note: String,
    root: tempfile::TempDir,
    private: Option<Private>,
}

struct Private {
    pg: migrations::PrivatePostgres,
    stop: tokio::sync::watch::Sender<bool>,
    ledger: tokio::task::JoinHandle<std::io::Result<()>>,
    sync: tokio::task::JoinHandle<Result<(), sync::SyncError>>,
}

impl Backend {
    async fn start(args: &ApiBenchArgs) -> anyhow::Result<Backend> {
        let base = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
        let root = tempfile::Builder::new()
            .prefix("landql-bench-api-")
            .tempdir_in(&base)
            .with_context(|| format!("temporary directory in {}", base.display()))?;
        sync::bench::set_mode(root.path(), 0o711);
        if let (Some(db), Some(ledger)) = (&args.database_url, &args.ledger) {
            return Ok(Backend {
                database_url: db.clone(),
                ledger_url: ledger.clone(),
                records_note: "an existing database and ledger (--database-url, --ledger)".into(),
                root,
                private: None,
            });
        }

        tracing::info!(records = args.records, "seeding the ledger");
        let ledger_dir = root.path().join("ledger");
        let (d, records) = (ledger_dir.clone(), args.records);
        let seeded = tokio::task::spawn_blocking(move || {
            ledger::devnet::seed::seed(
                &d,
                &ledger::devnet::seed::SeedOptions {
                    records,
                    ..Default::default()
                },
                |_| {},
            )
        })
        .await?
        .context("seeding")?;
        let d = ledger_dir.clone();
        let (node, _) = tokio::task::spawn_blocking(move || {
            ledger::devnet::Node::start(&d, ledger::devnet::DevnetConfig::default())
        })
        .await?
        .context("starting the devnet node")?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let ledger_url = format!("http://{}", listener.local_addr()?);
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let mut rx = stop_rx.clone();
        let ledger = tokio::spawn(ledger::devnet::serve(node, listener, async move {
            let _ = rx.wait_for(|s| *s).await;
        }));

        let pg = migrations::PrivatePostgres::start_with(
            &root.path().join("pg"),
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
            sync::SyncOptions {
                ledger_url: ledger_url.clone(),
                database_url: database_url.clone(),
                orderer_key: None,
                batch_max_events: 5000,
                batch_window: Duration::from_millis(50),
                metrics_listen: None,
            },
            async move {
                let _ = rx.wait_for(|s| *s).await;
            },
        ));
        Ok(Backend {
            database_url,
            ledger_url,
            records_note: format!(
                "{} records seeded ({} transactions, {} blocks)",
                seeded.records, seeded.transactions, seeded.blocks
            ),
            root,
            private: Some(Private {
                pg,
                stop,
                ledger,
                sync,
            }),
        })
    }

    /// Waits until every channel's checkpoint is at the ledger's tip.
    async fn wait_synced(&self, pool: &sqlx::PgPool) -> anyhow::Result<f64> {
        let started = Instant::now();
        let ledger = HttpLedger::new(&self.ledger_url, Duration::from_secs(5))?;
        let mut last_log = Instant::now();
        loop {
            if let Some(p) = &self.private {
                if p.sync.is_finished() {
                    bail!("the sync worker stopped");
                }
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
            if started.elapsed() > Duration::from_secs(3600) {
                bail!("not synced after an hour");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn stop(self) {
        if let Some(mut p) = self.private {
            let _ = p.stop.send(true);
            let _ = p.sync.await;
            let _ = p.ledger.await;
            let _ = p.pg.stop().await;
        }
        drop(self.root);
    }
}

/// `landql serve` as a child process.
struct Server {
    child: tokio::process::Child,
    base: String,
    log: PathBuf,
}

impl Server {
    async fn start(backend: &Backend, dir: &Path, log_filter: &str) -> anyhow::Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = dir.join("serve.log");
        let program = std::env::current_exe().context("finding the landql binary")?;
        let child = tokio::process::Command::new(program)
            .arg("serve")
            .env("DATABASE_URL", &backend.database_url)
            .env("LANDQL_LEDGER", &backend.ledger_url)
            .env("LANDQL_LISTEN", format!("127.0.0.1:{port}"))
            .env("LANDQL_INDEX_DIR", dir.join("index"))
            .env_remove("LANDQL_REPLICA_URL")
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

    fn check(&mut self) -> anyhow::Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            bail!("landql serve exited ({status}); see {}", self.log.display());
        }
        Ok(())
    }

    /// Waits for `/readyz` and for the index to reach the change log; the seconds taken.
    async fn wait_ready(&mut self, http: &reqwest::Client) -> anyhow::Result<f64> {
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
        self.child
            .id()
            .map_or(0.0, |pid| cpu_secs(&format!("/proc/{pid}/stat")))
    }

    /// Peak and current RSS in KiB.
    fn rss(&self) -> (u64, u64) {
        let Some(pid) = self.child.id() else {
            return (0, 0);
        };
        let status = format!("/proc/{pid}/status");
        (
            sync::bench::vm_hwm_kib(&status),
            sync::bench::proc_status_kib(&status, "VmRSS"),
        )
    }

    async fn stop(mut self) {
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
    let Ok(text) = std::fs::read_to_string(stat_path) else {
        return 0.0;
    };
    // The command name (field 2) may hold spaces; the fields after it are plain.
    let Some(rest) = text.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(11) + tick(12)) / 100.0
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

impl CpuMark {
    fn now(server: &Server) -> Self {
        CpuMark {
            server: server.cpu_secs(),
            this: cpu_secs("/proc/self/stat"),
        }
    }

    fn per_request(&self, server: &Server, requests: u64) -> Cpu {
        let n = requests.max(1) as f64;
        Cpu {
            server_us: Some((server.cpu_secs() - self.server) * 1e6 / n),
            generator_us: (cpu_secs("/proc/self/stat") - self.this) * 1e6 / n,
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
    let load_before = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    let backend = Backend::start(&args).await?;
    let pool = migrations::connect(&backend.database_url).await?;
    let sync_secs = backend.wait_synced(&pool).await?;
    tracing::info!(secs = sync_secs, "synced");
    let settled = backend.private.is_some();
    if settled {
        // Settle the bulk load as a replica in steady state would be: otherwise autovacuum
        // and the checkpointer pick it up in the middle of the runs.
        tracing::info!("VACUUM (ANALYZE) and CHECKPOINT after the bulk load");
        // One statement each: several in one string would run as one transaction block,
        // where VACUUM may not.
        sqlx::raw_sql("VACUUM (ANALYZE)").execute(&pool).await?;
        sqlx::raw_sql("CHECKPOINT").execute(&pool).await?;
    }
    let postgres: String = sqlx::query_scalar("SELECT split_part(version(), ' on ', 1)")
        .fetch_one(&pool)
        .await?;
    let properties: i64 = sqlx::query_scalar("SELECT count(*) FROM properties")
        .fetch_one(&pool)
        .await?;
    let changes: i64 = sqlx::query_scalar("SELECT count(*) FROM change_log")
        .fetch_one(&pool)
        .await?;

    let http = reqwest::Client::new();
    let mut server = Server::start(&backend, backend.root.path(), &args.server_log).await?;
    let result = measure(&args, &backend.database_url, &pool, &http, &mut server).await;
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
        sync::bench::machine()
    );
    let _ = writeln!(
        s,
        "Data: {records_note}; {properties} properties, {changes} change-log rows. \
         {}`landql serve` ran as a child process (its own index follower rebuilt the search \
         index from PostgreSQL in {:.1} s before the runs); the load generator \
         (`api::loadgen`, open loop: latency from each request's due time, keep-alive \
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
            "≥ 3× PostGraphile (not run here)"
        )
    );
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
    let _ = writeln!(
        s,
        "- During the fixed-rate `property(id)` run: property cache {:.0} hits / {:.0} misses \
         ({:.0} % hits; 10 000 entries, 10 s TTL, IDs drawn uniformly from all properties), \
         {:.2} SQL statements per request.",
        m.cache_hits,
        m.cache_misses,
        100.0 * ratio(m.cache_hits, m.cache_hits + m.cache_misses),
        ratio(m.sql_statements, m.property.sent as f64)
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
    /// The server's peak RSS (KiB) as it stood after each step.
    rss: Vec<(&'static str, u64)>,
    cache_hits: f64,
    cache_misses: f64,
    sql_statements: f64,
}

async fn measure(
    args: &ApiBenchArgs,
    database_url: &str,
    pool: &sqlx::PgPool,
    http: &reqwest::Client,
    server: &mut Server,
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
    let property_report =
        loadgen::open_loop(args.rate, seconds, args.max_in_flight, property.clone()).await?;
    let property_cpu = mark.per_request(server, property_report.sent);
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

    tracing::info!(connections = args.peak_connections, "peak property(id)");
    let mark = CpuMark::now(server);
    let peak = loadgen::closed_loop(
        args.peak_connections,
        Duration::from_secs_f64(args.peak_seconds),
        property,
    )
    .await?;
    let peak_cpu = mark.per_request(server, peak.sent);
    rss.push(("after the property(id) runs", server.rss().0));
    tracing::info!(?peak, "peak done");
    server.check()?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let other = Duration::from_secs_f64(args.other_seconds);
    tracing::info!(rate = args.page_rate, "filtered pages, fixed rate");
    let mark = CpuMark::now(server);
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
    rss.push(("after the page run", server.rss().0));
    tracing::info!(?page, "pages done");
    server.check()?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    tracing::info!(rate = args.search_rate, "search, fixed rate");
    let mark = CpuMark::now(server);
    let search = {
        let (client, texts) = (client.clone(), texts.clone());
        loadgen::open_loop(args.search_rate, other, args.max_in_flight, move |i| {
            let text = &texts[pick(i, texts.len())];
            client.post(json!({ "query": SEARCH_QUERY, "variables": { "text": text } }).to_string())
        })
        .await?
    };
    let search_cpu = mark.per_request(server, search.sent);
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
        rss,
        cache_hits,
        cache_misses,
        sql_statements,
    })
}
