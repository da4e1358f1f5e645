//! `landql bench regions`: reads in three regions on one machine — TS (the hub, where the
//! primary, the ledger and the sync worker are), AP and KA — with the distance between
//! them made real by delay proxies, under live writes. All real processes.
//!
//! One run:
//! 1. a private PostgreSQL primary, a devnet seeded with `--records` and the sync worker
//!    until synced (as [`crate::backend::Private`]); VACUUM and CHECKPOINT; then one hot
//!    standby per region made by `pg_basebackup` ([`migrations::PrivatePostgres::temporary_replica`]).
//!    AP's and KA's standbys stream from the primary through a [`DelayProxy`] (their
//!    `primary_conninfo` is pointed at it and they are restarted), so replication crosses
//!    the same distance as reads;
//! 2. one `landql serve --region R` per region, its replica first, then the others nearest
//!    first (TS → TS, AP, KA; AP → AP, TS, KA; KA → KA, TS, AP). A node reaches its own
//!    region's database directly (unix socket) and every other region's replica, and the
//!    primary, through a proxy with that link's one-way delay (`--hub-ap-ms`,
//!    `--hub-ka-ms`, `--ap-ka-ms`). The ledger is reached directly by all (reads do not
//!    touch it here);
//! 3. **regional load** for `--seconds`: every node gets an open-loop read load of
//!    `--read-rate` requests/s, half `property(id)` over random IDs, half a district's
//!    `properties` page (first 20), while `landql load` submits `--write-rate` tx/s to the
//!    ledger. Each answer's `provenance.database` says which database served it (for a
//!    page, its first node's): the share from the home replica and the latency of local
//!    and cross-region answers come from there (latency from when the request was
//!    handed to the client, per answer; the open loop's own figures, from each request's
//!    due time, are shown for all reads). A cached `property(id)` answer keeps the
//!    provenance of the database it was read from. Meanwhile:
//!    - every 250 ms each node's `_meta.databases` gives its home replica's lag in WAL
//!      bytes and blocks (as the node's router measured it), and each replica is asked
//!      `now() - pg_last_xact_replay_timestamp()` directly (the age of the last replayed
//!      commit: an upper bound of the lag, as it also counts the gap since the primary's
//!      last commit);
//!    - every `--probe-ms` one create is submitted to the ledger; from its receipt, each
//!      region's replica is asked every 10 ms (one statement for all the probes it lacks)
//!      until it holds the record: commit → visible in that region (what its node serves
//!      while it reads its replica — the served-by counts and `_meta` samples say how
//!      often);
//! 4. **baseline**: a fourth node with no replicas (the primary only, direct), the same
//!    read mix at the three nodes' total rate, under the same write load;
//! 5. **replica kill**: AP's node alone under the read load; after `--kill-after` s AP's
//!    replica is SIGKILLed, after `--restart-after` s more restarted. Failed requests, the
//!    time from the kill to the first page served by another database, and the time from
//!    the restart to the first page served by AP's replica again (pages, because they are
//!    never cached).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use migrations::sqlx;
use serde_json::{json, Value};

use devnet::generate::{DemoData, Generator};

use crate::backend::{settle, Private};
use crate::delay::{DelayProxy, Target};
use crate::load::http::{self as loadgen, Report};
use crate::load::ledger::{LoadOptions, LoadReport};
use crate::machine::{load_average, machine, postgres_version, set_mode};
use crate::random::pick;
use crate::server::Server;
use crate::visible::{self, Look};

#[derive(clap::Args)]
pub struct RegionsBenchArgs {
    /// Records to seed into the private ledger.
    #[arg(long, default_value_t = 20_000)]
    records: u64,
    /// Where the temporary ledger, databases and indexes go (default: the system temp dir).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Reads per second on each node (open loop; half property(id), half a page).
    #[arg(long, default_value_t = 100.0)]
    read_rate: f64,
    /// Seconds of the regional load.
    #[arg(long, default_value_t = 30.0)]
    seconds: f64,
    /// Transactions per second submitted to the ledger during every phase.
    #[arg(long, default_value_t = 1000.0)]
    write_rate: f64,
    /// Seconds of the single-node baseline.
    #[arg(long, default_value_t = 15.0)]
    baseline_seconds: f64,
    /// Seconds of the replica-kill phase.
    #[arg(long, default_value_t = 20.0)]
    kill_seconds: f64,
    /// Seconds into the kill phase at which AP's replica is SIGKILLed.
    #[arg(long, default_value_t = 4.0)]
    kill_after: f64,
    /// Seconds after the kill at which it is restarted.
    #[arg(long, default_value_t = 6.0)]
    restart_after: f64,
    /// One-way delay between the hub (TS) and AP, ms.
    #[arg(long, default_value_t = 50)]
    hub_ap_ms: u64,
    /// One-way delay between the hub (TS) and KA, ms.
    #[arg(long, default_value_t = 100)]
    hub_ka_ms: u64,
    /// One-way delay between AP and KA, ms.
    #[arg(long, default_value_t = 150)]
    ap_ka_ms: u64,
    /// A commit → visible probe every this many ms.
    #[arg(long, default_value_t = 500)]
    probe_ms: u64,
    /// RUST_LOG of the servers.
    #[arg(long, default_value = "warn")]
    server_log: String,
    #[command(flatten)]
    out: crate::BenchOut,
}

/// The regions; the first is the hub (the primary's).
const REGIONS: [&str; 3] = ["TS", "AP", "KA"];

const PROPERTY: &str = "query P($id: ID!) { property(id: $id) { id surveyNo areaSqM \
    landType marketValue location { district village } owners { sharePct owner { id name } } \
    provenance { source database stale } } }";

const PAGE: &str = "query D($state: String!, $district: String!) { \
    properties(filter: { state: $state, district: $district }, first: 20) { \
    edges { node { id surveyNo marketValue owners { owner { name } } \
    provenance { database } } } } }";

const META: &str = "{ _meta { databases { name lagBytes lagBlocks reading } } }";

impl RegionsBenchArgs {
    /// One-way delay between two regions.
    fn delay(&self, a: &str, b: &str) -> Duration {
        let ms = match (a, b) {
            _ if a == b => 0,
            ("TS", "AP") | ("AP", "TS") => self.hub_ap_ms,
            ("TS", "KA") | ("KA", "TS") => self.hub_ka_ms,
            _ => self.ap_ka_ms,
        };
        Duration::from_millis(ms)
    }

    /// The regions in the order `home` reads them: itself, then the others nearest first.
    fn order(&self, home: &str) -> Vec<&'static str> {
        let mut r: Vec<&'static str> = REGIONS.to_vec();
        r.sort_by_key(|o| (*o != home, self.delay(home, o)));
        r
    }
}

/// The proxies, one per (target socket, delay), shared by every link that needs it.
#[derive(Default)]
struct Proxies(HashMap<(PathBuf, Duration), DelayProxy>);

impl Proxies {
    /// The URL through which a process `delay` away reaches the database at `url` (a
    /// private PostgreSQL's unix-socket URL); the URL itself when there is no delay.
    async fn url(&mut self, url: &str, delay: Duration) -> anyhow::Result<String> {
        if delay.is_zero() {
            return Ok(url.to_string());
        }
        let socket = socket_file(url)?;
        let user = url
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('@'))
            .map(|(u, _)| u.to_string())
            .with_context(|| format!("no user in {url}"))?;
        let key = (socket.clone(), delay);
        let addr = match self.0.get(&key) {
            Some(p) => p.addr(),
            None => {
                let p = DelayProxy::start(Target::Unix(socket), delay).await?;
                let addr = p.addr();
                self.0.insert(key, p);
                addr
            }
        };
        Ok(format!(
            "postgres://{user}@127.0.0.1:{}/landql?sslmode=disable",
            addr.port()
        ))
    }
}

/// The socket file of a private PostgreSQL's URL: `host=` is its socket directory.
fn socket_file(url: &str) -> anyhow::Result<PathBuf> {
    let dir = url
        .split_once("host=")
        .map(|(_, rest)| rest.split('&').next().unwrap_or(rest))
        .with_context(|| format!("no host= (socket directory) in {url}"))?;
    let port = url
        .split_once("@localhost:")
        .and_then(|(_, rest)| rest.split('/').next())
        .unwrap_or("5432");
    Ok(Path::new(dir).join(format!(".s.PGSQL.{port}")))
}

/// Points a standby's replication at `conninfo` and restarts it. The line is appended to
/// `postgresql.auto.conf`, where the last setting of a parameter wins over the one
/// `pg_basebackup -R` wrote.
async fn stream_through(
    replica: &mut migrations::PrivatePostgres,
    host: &str,
    port: u16,
    user: &str,
    name: &str,
) -> anyhow::Result<()> {
    use std::io::Write as _;
    let conf = replica.data_dir().join("postgresql.auto.conf");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&conf)
        .with_context(|| format!("opening {}", conf.display()))?;
    writeln!(
        f,
        "primary_conninfo = 'host={host} port={port} user={user} application_name={name} sslmode=disable'"
    )
    .with_context(|| format!("writing {}", conf.display()))?;
    drop(f);
    replica
        .restart()
        .await
        .with_context(|| format!("restarting replica {name} on its delayed link"))?;
    Ok(())
}

/// What the reads of one node saw.
#[derive(Clone)]
struct ReadStats {
    home: String,
    started: Instant,
    local: Histogram<u64>,
    cross: Histogram<u64>,
    by_database: BTreeMap<String, u64>,
    ok: u64,
    failed: u64,
    first_error: Option<String>,
    /// (seconds since `started`, the database of a page answer, or `None` for a failure).
    pages: Vec<(f64, Option<String>)>,
}

impl ReadStats {
    fn new(home: &str) -> anyhow::Result<ReadStats> {
        Ok(ReadStats {
            home: home.to_string(),
            started: Instant::now(),
            local: histogram()?,
            cross: histogram()?,
            by_database: BTreeMap::new(),
            ok: 0,
            failed: 0,
            first_error: None,
            pages: Vec::new(),
        })
    }

    fn home_share(&self) -> f64 {
        let home = self.by_database.get(&self.home).copied().unwrap_or(0);
        home as f64 / self.ok.max(1) as f64
    }

    fn served_by(&self) -> String {
        self.by_database
            .iter()
            .map(|(db, n)| format!("{db} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Latencies in µs, 1 µs to 120 s, 3 significant digits.
fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 120_000_000, 3).map_err(|e| anyhow::anyhow!("histogram: {e:?}"))
}

fn ms(h: &Histogram<u64>, q: f64) -> Option<f64> {
    (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0)
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.1}"))
}

/// The read mix on one node: request `i` is `property(id)` when even, a page when odd.
fn reads(
    http: reqwest::Client,
    base: &str,
    ids: Arc<Vec<String>>,
    districts: Arc<Vec<(String, String)>>,
    stats: Arc<Mutex<ReadStats>>,
) -> impl Fn(u64) -> futures::future::BoxFuture<'static, Result<(), String>> + Send + Sync + 'static
{
    let url: Arc<str> = Arc::from(format!("{base}/graphql"));
    move |i: u64| {
        let page = i % 2 == 1;
        let body = if page {
            let (state, district) = &districts[pick(i, districts.len())];
            json!({ "query": PAGE, "variables": { "state": state, "district": district } })
        } else {
            json!({ "query": PROPERTY, "variables": { "id": ids[pick(i, ids.len())] } })
        };
        let req = http.post(&*url).json(&body);
        let stats = stats.clone();
        let fut: futures::future::BoxFuture<'static, Result<(), String>> = Box::pin(async move {
            let sent = Instant::now();
            let result = ask(req).await.map(|v| {
                let p = if page {
                    &v["data"]["properties"]["edges"][0]["node"]["provenance"]
                } else {
                    &v["data"]["property"]["provenance"]
                };
                p["database"].as_str().unwrap_or("none").to_string()
            });
            let took = sent.elapsed();
            let mut s = stats.lock().unwrap_or_else(|p| p.into_inner());
            let at = s.started.elapsed().as_secs_f64();
            match result {
                Ok(db) => {
                    s.ok += 1;
                    let us = (took.as_micros() as u64).clamp(1, 120_000_000);
                    let h = if db == s.home {
                        &mut s.local
                    } else {
                        &mut s.cross
                    };
                    let _ = h.record(us);
                    if page {
                        s.pages.push((at, Some(db.clone())));
                    }
                    *s.by_database.entry(db).or_default() += 1;
                    Ok(())
                }
                Err(e) => {
                    s.failed += 1;
                    if page {
                        s.pages.push((at, None));
                    }
                    if s.first_error.is_none() {
                        s.first_error = Some(e.clone());
                    }
                    Err(e)
                }
            }
        });
        fut
    }
}

/// Sends a GraphQL request; the answer when it is a 200 without `errors`.
async fn ask(req: reqwest::RequestBuilder) -> Result<Value, String> {
    let resp = req.send().await.map_err(|e| format!("send: {e}"))?;
    let status = resp.status();
    let v: Value = resp.json().await.map_err(|e| format!("read: {e}"))?;
    if status != reqwest::StatusCode::OK || v.get("errors").is_some() {
        let text: String = v.to_string().chars().take(300).collect();
        return Err(format!("HTTP {status}: {text}"));
    }
    Ok(v)
}

/// Samples taken during the regional load, per region.
#[derive(Default, Clone)]
struct LagSamples {
    bytes: Vec<f64>,
    blocks: Vec<f64>,
    ms: Vec<f64>,
    /// Samples in which the node was reading its home replica.
    reading_home: u64,
    samples: u64,
}

/// The `q` quantile of `v` (nearest rank); `None` when empty.
pub(crate) fn quantile(v: &[f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let i = ((s.len() as f64 * q).ceil() as usize).clamp(1, s.len()) - 1;
    Some(s[i])
}

/// One region's running pieces.
struct Node {
    region: &'static str,
    server: Server,
    replica_name: String,
}

/// Everything a run measured.
struct Figures {
    records_note: String,
    pg_version: String,
    reads: Vec<(String, ReadStats, Report)>,
    lag: Vec<LagSamples>,
    visible: Vec<Vec<f64>>,
    visible_timeouts: Vec<u64>,
    probes: u64,
    writes: Vec<(&'static str, LoadReport)>,
    baseline: Report,
    baseline_stats: ReadStats,
    kill: KillFigures,
}

struct KillFigures {
    report: Report,
    stats: ReadStats,
    failed: u64,
    first_error: Option<String>,
    reroute_ms: Option<f64>,
    restart_s: f64,
    back_ms: Option<f64>,
}

pub async fn run(args: RegionsBenchArgs) -> anyhow::Result<()> {
    if !(args.read_rate > 0.0 && args.write_rate > 0.0 && args.seconds > 0.0) {
        bail!("--read-rate, --write-rate and --seconds must be positive");
    }
    if args.kill_after + args.restart_after >= args.kill_seconds {
        bail!("--kill-after + --restart-after must fall within --kill-seconds");
    }
    let load_before = load_average();
    let base = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let root = tempfile::Builder::new()
        .prefix("landql-bench-regions-")
        .tempdir_in(&base)
        .with_context(|| format!("temporary directory in {}", base.display()))?;
    set_mode(root.path(), 0o711);
    let private = Private::start(root.path(), args.records).await?;
    let result = measure(&args, &private, root.path()).await;
    let _ = private.stop_feeding().await.stop().await;
    let figures = result?;
    let body = markdown(&args, &figures, &load_before);
    args.out
        .write("regions", "Regions (three regions, delayed links)", &body)
}

async fn measure(
    args: &RegionsBenchArgs,
    private: &Private,
    root: &Path,
) -> anyhow::Result<Figures> {
    let pool = migrations::connect(&private.database_url)
        .await
        .context("connecting to the primary")?;
    let took = private.wait_synced(&pool).await?;
    tracing::info!(seconds = took, "synced");
    settle(&pool).await?;
    let pg_version = postgres_version(&pool).await.unwrap_or_default();
    let ids: Arc<Vec<String>> = Arc::new(
        sqlx::query_scalar("SELECT id FROM properties")
            .fetch_all(&pool)
            .await?,
    );
    let districts: Arc<Vec<(String, String)>> = Arc::new(
        sqlx::query_as(
            "SELECT state, district FROM properties GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 50",
        )
        .fetch_all(&pool)
        .await?,
    );
    if ids.is_empty() || districts.is_empty() {
        bail!("the database holds no properties");
    }

    // The replicas, AP's and KA's streaming over their delayed links.
    let mut proxies = Proxies::default();
    let primary_url = private.database_url.clone();
    let user = primary_url
        .split_once("://")
        .and_then(|(_, r)| r.split_once('@'))
        .map(|(u, _)| u.to_string())
        .context("no user in the primary's URL")?;
    let mut replicas = Vec::new();
    for region in REGIONS {
        tracing::info!(region, "making the replica");
        let mut replica = private
            .pg
            .temporary_replica()
            .await
            .with_context(|| format!("making replica {region}"))?;
        let delay = args.delay(REGIONS[0], region);
        if !delay.is_zero() {
            let via = proxies.url(&primary_url, delay).await?;
            let port = via
                .rsplit_once(':')
                .and_then(|(_, r)| r.split('/').next())
                .and_then(|p| p.parse::<u16>().ok())
                .context("the proxy's port")?;
            stream_through(
                &mut replica,
                "127.0.0.1",
                port,
                &user,
                &format!("replica_{region}"),
            )
            .await?;
        }
        replicas.push(replica);
    }
    for (region, replica) in REGIONS.iter().zip(&replicas) {
        wait_replayed(&pool, &replica.database_url(), region).await?;
    }

    // One node per region.
    let http = reqwest::Client::builder()
        .timeout(loadgen::REQUEST_TIMEOUT)
        .tcp_nodelay(true)
        .build()?;
    let mut nodes = Vec::new();
    for region in REGIONS {
        let mut flags: Vec<String> = vec!["--region".into(), region.into()];
        for other in args.order(region) {
            let i = REGIONS.iter().position(|r| *r == other).unwrap_or(0);
            let url = proxies
                .url(&replicas[i].database_url(), args.delay(region, other))
                .await?;
            flags.extend(["--replica-url".into(), format!("{other}={url}")]);
        }
        let primary = proxies
            .url(&primary_url, args.delay(region, REGIONS[0]))
            .await?;
        let dir = root.join(format!("node-{region}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        tracing::info!(region, ?flags, "starting landql serve");
        let server = Server::start_on(
            &primary,
            &private.ledger_url,
            &dir,
            &args.server_log,
            &flags,
        )
        .await?;
        nodes.push(Node {
            region,
            server,
            replica_name: format!("replica {region}"),
        });
    }
    let dir = root.join("node-baseline");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut baseline_server = Server::start_on(
        &primary_url,
        &private.ledger_url,
        &dir,
        &args.server_log,
        &[],
    )
    .await?;
    for n in &mut nodes {
        let s = n.server.wait_ready(&http).await?;
        tracing::info!(region = n.region, seconds = s, "node ready");
    }
    baseline_server.wait_ready(&http).await?;

    // Warm-up: pools, caches of plans.
    tracing::info!("warming up");
    let reads_on = ReadLoad {
        http: &http,
        ids: &ids,
        districts: &districts,
        rate: args.read_rate,
    };
    for (_, _, w) in reads_on.start(&nodes, Duration::from_secs(3), 256)? {
        w.await??;
    }

    // The regional load.
    tracing::info!(seconds = args.seconds, "regional load");
    let duration = Duration::from_secs_f64(args.seconds);
    let writes = tokio::spawn(write_load(
        args.write_rate,
        private.ledger_url.clone(),
        duration,
        3,
    ));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The samplers' own pools, one per replica, shared by both and straight to the
    // replica (not through the delay proxies).
    let mut replica_pools = Vec::new();
    for r in &replicas {
        replica_pools.push(
            migrations::connect(&r.database_url())
                .await
                .context("connecting to a replica")?,
        );
    }
    let lag_task = tokio::spawn(sample_lag(
        http.clone(),
        nodes
            .iter()
            .map(|n| (n.server.base.clone(), n.replica_name.clone()))
            .collect(),
        replica_pools.clone(),
        stop.clone(),
    ));
    let probe_task = tokio::spawn(visible::probe(
        private.ledger_url.clone(),
        Generator::new(0x7265_6769_6f6e, DemoData::embedded()),
        replica_pools.into_iter().map(Look::Database).collect(),
        Duration::from_millis(args.probe_ms.max(10)),
        stop.clone(),
    ));
    let mut read_figures = Vec::new();
    for (region, stats, task) in reads_on.start(&nodes, duration, 1024)? {
        let report = task.await??;
        let stats = take(stats);
        tracing::info!(
            region,
            ok = stats.ok,
            failed = stats.failed,
            home_share = stats.home_share(),
            p99_ms = report.p99_ms,
            "regional reads"
        );
        read_figures.push((region.to_string(), stats, report));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let lag = lag_task.await??;
    let (visible, visible_timeouts, probes) = probe_task.await??;
    let mut write_figures = vec![("regional load", writes.await??)];
    for n in &mut nodes {
        n.server.check()?;
    }

    // The baseline: one node, the primary only, the three nodes' total rate.
    tracing::info!(seconds = args.baseline_seconds, "baseline");
    let b_duration = Duration::from_secs_f64(args.baseline_seconds);
    let b_rate = args.read_rate * REGIONS.len() as f64;
    let warm_stats = Arc::new(Mutex::new(ReadStats::new("primary")?));
    let req = reads(
        http.clone(),
        &baseline_server.base,
        ids.clone(),
        districts.clone(),
        warm_stats,
    );
    loadgen::open_loop(b_rate, Duration::from_secs(3), 256, req).await?;
    let writes = tokio::spawn(write_load(
        args.write_rate,
        private.ledger_url.clone(),
        b_duration,
        4,
    ));
    let b_stats = Arc::new(Mutex::new(ReadStats::new("primary")?));
    let req = reads(
        http.clone(),
        &baseline_server.base,
        ids.clone(),
        districts.clone(),
        b_stats.clone(),
    );
    let baseline = loadgen::open_loop(b_rate, b_duration, 1024, req).await?;
    let baseline_stats = take(b_stats);
    write_figures.push(("baseline", writes.await??));
    baseline_server.check()?;
    baseline_server.stop().await;

    // The kill: AP's replica under AP's read load.
    tracing::info!("replica kill");
    let ap = 1;
    let k_duration = Duration::from_secs_f64(args.kill_seconds);
    let writes = tokio::spawn(write_load(
        args.write_rate,
        private.ledger_url.clone(),
        k_duration,
        5,
    ));
    let k_stats = Arc::new(Mutex::new(ReadStats::new(&nodes[ap].replica_name)?));
    let req = reads(
        http.clone(),
        &nodes[ap].server.base,
        ids.clone(),
        districts.clone(),
        k_stats.clone(),
    );
    let load = tokio::spawn(loadgen::open_loop(args.read_rate, k_duration, 1024, req));
    let epoch = k_stats.lock().unwrap_or_else(|p| p.into_inner()).started;
    tokio::time::sleep(Duration::from_secs_f64(args.kill_after)).await;
    let killed_at = epoch.elapsed().as_secs_f64();
    replicas[ap].kill().await.context("killing AP's replica")?;
    tracing::info!(at = killed_at, "AP's replica killed");
    tokio::time::sleep(Duration::from_secs_f64(args.restart_after)).await;
    let restart_at = epoch.elapsed().as_secs_f64();
    replicas[ap]
        .restart()
        .await
        .context("restarting AP's replica")?;
    let restarted_at = epoch.elapsed().as_secs_f64();
    tracing::info!(at = restarted_at, "AP's replica restarted");
    let report = load.await??;
    write_figures.push(("replica kill", writes.await??));
    let stats = take(k_stats);
    let home = nodes[ap].replica_name.clone();
    let reroute_ms = stats
        .pages
        .iter()
        .find(|(t, db)| *t >= killed_at && db.as_deref().is_some_and(|d| d != home))
        .map(|(t, _)| (t - killed_at) * 1000.0);
    let back_ms = stats
        .pages
        .iter()
        .find(|(t, db)| *t >= restart_at && db.as_deref() == Some(home.as_str()))
        .map(|(t, _)| (t - restart_at) * 1000.0);
    let kill = KillFigures {
        failed: stats.failed,
        first_error: stats.first_error.clone(),
        reroute_ms,
        restart_s: restarted_at - restart_at,
        back_ms,
        report,
        stats,
    };

    for n in nodes {
        n.server.stop().await;
    }
    drop(replicas);
    drop(proxies);
    pool.close().await;
    Ok(Figures {
        records_note: private.note.clone(),
        pg_version,
        reads: read_figures,
        lag,
        visible,
        visible_timeouts,
        probes,
        writes: write_figures,
        baseline,
        baseline_stats,
        kill,
    })
}

/// The read mix on every node at once, each with its own stats.
struct ReadLoad<'a> {
    http: &'a reqwest::Client,
    ids: &'a Arc<Vec<String>>,
    districts: &'a Arc<Vec<(String, String)>>,
    /// Requests per second on each node.
    rate: f64,
}

type Running = tokio::task::JoinHandle<Result<Report, loadgen::LoadError>>;
/// One node's open loop: its region, its stats as they fill, the loop itself.
type NodeLoad = (&'static str, Arc<Mutex<ReadStats>>, Running);

impl ReadLoad<'_> {
    /// Starts the open loop on each node for `duration`: (region, its stats, the loop).
    fn start(
        &self,
        nodes: &[Node],
        duration: Duration,
        max_in_flight: usize,
    ) -> anyhow::Result<Vec<NodeLoad>> {
        nodes
            .iter()
            .map(|n| {
                let stats = Arc::new(Mutex::new(ReadStats::new(&n.replica_name)?));
                let req = reads(
                    self.http.clone(),
                    &n.server.base,
                    self.ids.clone(),
                    self.districts.clone(),
                    stats.clone(),
                );
                let run = loadgen::open_loop(self.rate, duration, max_in_flight, req);
                Ok((n.region, stats, tokio::spawn(run)))
            })
            .collect()
    }
}

/// The stats out of their shared cell, once every request has finished.
fn take(stats: Arc<Mutex<ReadStats>>) -> ReadStats {
    match Arc::try_unwrap(stats) {
        Ok(m) => m.into_inner().unwrap_or_else(|p| p.into_inner()),
        // A request still holds it (not once the open loop has returned): a copy.
        Err(shared) => shared.lock().unwrap_or_else(|p| p.into_inner()).clone(),
    }
}

/// `landql load` at `--write-rate` for `duration` (the generator's seed differs per phase,
/// so that no phase repeats another's proposals).
async fn write_load(
    rate: f64,
    ledger: String,
    duration: Duration,
    seed: u64,
) -> anyhow::Result<LoadReport> {
    let opts = LoadOptions {
        ledger: ledger.clone(),
        rate,
        duration,
        seed,
        max_in_flight: 256,
        after_parcels: 0,
    };
    let r = crate::load::ledger::run(&opts)
        .await
        .with_context(|| format!("the write load on {ledger}"))?;
    tracing::info!(
        achieved = r.achieved_tx_per_s,
        p99_ms = r.latency_ms_p99,
        errors = r.errors,
        "write load"
    );
    Ok(r)
}

/// Waits until the replica at `url` has replayed the primary's WAL as of now.
async fn wait_replayed(primary: &sqlx::PgPool, url: &str, region: &str) -> anyhow::Result<()> {
    let lsn: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(primary)
        .await?;
    let replica = migrations::connect(url)
        .await
        .with_context(|| format!("connecting to replica {region}"))?;
    let started = Instant::now();
    loop {
        let done: Option<bool> =
            sqlx::query_scalar("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn")
                .bind(&lsn)
                .fetch_one(&replica)
                .await
                .with_context(|| format!("asking replica {region} how far it has replayed"))?;
        if done == Some(true) {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("replica {region} has not caught up with the primary in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    replica.close().await;
    tracing::info!(
        region,
        seconds = started.elapsed().as_secs_f64(),
        "replica caught up"
    );
    Ok(())
}

/// Every 250 ms until `stop`: each node's view of its home replica's lag (`_meta`), and
/// the age of each replica's last replayed commit (asked directly).
async fn sample_lag(
    http: reqwest::Client,
    nodes: Vec<(String, String)>,
    pools: Vec<sqlx::PgPool>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<Vec<LagSamples>> {
    let mut out = vec![LagSamples::default(); nodes.len()];
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        tick.tick().await;
        for (i, (base, home)) in nodes.iter().enumerate() {
            let req = http
                .post(format!("{base}/graphql"))
                .json(&json!({ "query": META }));
            match ask(req).await {
                Ok(v) => {
                    let dbs = v["data"]["_meta"]["databases"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    if let Some(d) = dbs.iter().find(|d| d["name"] == home.as_str()) {
                        let s = &mut out[i];
                        s.samples += 1;
                        if let Some(b) = d["lagBytes"].as_f64() {
                            s.bytes.push(b);
                        }
                        if let Some(b) = d["lagBlocks"].as_f64() {
                            s.blocks.push(b);
                        }
                        if d["reading"].as_bool() == Some(true) {
                            s.reading_home += 1;
                        }
                    }
                }
                Err(e) => tracing::warn!(%base, error = %e, "_meta sample failed"),
            }
            let age: Result<Option<f64>, _> = sqlx::query_scalar(
                "SELECT (EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) * 1000)::float8",
            )
            .fetch_one(&pools[i])
            .await;
            match age {
                Ok(Some(ms)) => out[i].ms.push(ms.max(0.0)),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "replay age sample failed"),
            }
        }
    }
    for p in pools {
        p.close().await;
    }
    Ok(out)
}

fn markdown(args: &RegionsBenchArgs, f: &Figures, load_before: &str) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "`landql bench regions` — {}; three regions on one machine, all real processes: \
         a private PostgreSQL primary ({}) with the ledger and the sync worker in TS (the \
         hub), one `pg_basebackup` hot standby per region, one `landql serve --region R` \
         per region (its replica first, then the others nearest first). Links between \
         regions go through a delay proxy in the benchmark (`bench/src/delay.rs`): {} ms \
         one way TS↔AP, {} ms TS↔KA, {} ms AP↔KA — node to remote replica, node to \
         primary, and AP's and KA's replication from the primary; a node reaches its own \
         region's replica over the unix socket.\n",
        f.records_note, f.pg_version, args.hub_ap_ms, args.hub_ka_ms, args.ap_ka_ms
    );
    let _ = writeln!(
        s,
        "Regional load: {} s, each node {:.0} reads/s open loop (half `property(id)` over \
         random IDs, half a district's `properties` page of 20), while `landql load` \
         submits {:.0} tx/s to the ledger. *Which database served* a read is its answer's \
         `provenance.database` (a page's first node); local and cross-region latencies are \
         per answer from the moment it was handed to the HTTP client, \"all reads\" is the \
         open loop's figure from each request's due time. *Replica lag*: the node's own \
         `_meta.databases` for its home replica every 250 ms (bytes, blocks); ms is the \
         replica's `now() - pg_last_xact_replay_timestamp()` (the age of the last commit \
         replayed — an upper bound, it includes the gap between the primary's commits). \
         *Commit → visible*: every {} ms one create is submitted; from its receipt each \
         region's replica is asked every 10 ms (one statement for all the probes it does \
         not hold yet) until it holds the record — what that region's node serves while it \
         reads its replica.\n",
        args.seconds, args.read_rate, args.write_rate, args.probe_ms
    );
    let _ = writeln!(
        s,
        "Machine: {}; load average {load_before} at the start. The ledger, the sync worker, \
         four PostgreSQL servers, four API nodes, the proxies and the load generators share \
         its cores, so absolute latencies are the shared machine's.\n",
        machine()
    );
    let _ = writeln!(
        s,
        "| region | reads ok (failed) | from home replica | served by | local p50 / p99 ms | cross-region p50 / p99 ms | all reads p50 / p99 ms | lag p99 bytes | lag p99 blocks | lag p99 ms | commit → visible p50 / p99 ms (probes) |"
    );
    let _ = writeln!(s, "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for (i, (region, st, rep)) in f.reads.iter().enumerate() {
        let lag = f.lag.get(i).cloned().unwrap_or_default();
        let vis = f.visible.get(i).cloned().unwrap_or_default();
        let timeouts = f.visible_timeouts.get(i).copied().unwrap_or(0);
        let _ = writeln!(
            s,
            "| {region} | {} ({}) | {:.2} % | {} | {} / {} | {} / {} | {:.1} / {:.1} | {} | {} | {} | {} / {} ({}{}) |",
            st.ok,
            st.failed,
            st.home_share() * 100.0,
            st.served_by(),
            fmt_ms(ms(&st.local, 0.5)),
            fmt_ms(ms(&st.local, 0.99)),
            fmt_ms(ms(&st.cross, 0.5)),
            fmt_ms(ms(&st.cross, 0.99)),
            rep.p50_ms,
            rep.p99_ms,
            quantile(&lag.bytes, 0.99).map_or("—".into(), |v| format!("{v:.0}")),
            quantile(&lag.blocks, 0.99).map_or("—".into(), |v| format!("{v:.0}")),
            fmt_ms(quantile(&lag.ms, 0.99)),
            fmt_ms(quantile(&vis, 0.5)),
            fmt_ms(quantile(&vis, 0.99)),
            vis.len(),
            if timeouts > 0 {
                format!(", {timeouts} not visible within {} s", visible::LIMIT.as_secs())
            } else {
                String::new()
            }
        );
    }
    let _ = writeln!(
        s,
        "\n{} commit probes; the routers' own view: AP's node read its home replica in {} \
         of its _meta samples, TS's in {}, KA's in {}.\n",
        f.probes,
        reading(&f.lag, 1),
        reading(&f.lag, 0),
        reading(&f.lag, 2)
    );
    let b = &f.baseline;
    let _ = writeln!(
        s,
        "**Baseline, same run**: one node with no replicas reading the primary directly, the \
         same mix at the three nodes' total rate ({:.0} reads/s) for {} s, under the same \
         write load: achieved {:.0} reads/s, p50 {:.1} ms, p99 {:.1} ms (from the due \
         time), {} failed; per answer p50 / p99 {} / {} ms.\n",
        b.target_rate.unwrap_or(0.0),
        args.baseline_seconds,
        b.achieved_per_s,
        b.p50_ms,
        b.p99_ms,
        b.errors,
        fmt_ms(ms(&f.baseline_stats.local, 0.5)),
        fmt_ms(ms(&f.baseline_stats.local, 0.99)),
    );
    let k = &f.kill;
    let _ = writeln!(
        s,
        "**Replica kill**: AP's node alone at {:.0} reads/s for {} s; AP's replica SIGKILLed \
         after {} s, restarted {} s later (the restart, crash recovery included, took \
         {:.1} s). Failed requests: {}{}; first page from another database {} after the \
         kill; first page from AP's replica again {} after the restart began. Served by: \
         {}; p99 over the phase {:.1} ms (from the due time).\n",
        args.read_rate,
        args.kill_seconds,
        args.kill_after,
        args.restart_after,
        k.restart_s,
        k.failed,
        k.first_error
            .as_deref()
            .map_or(String::new(), |e| format!(" (first: {e})")),
        k.reroute_ms
            .map_or("never".into(), |v| format!("{v:.0} ms")),
        k.back_ms.map_or("never".into(), |v| format!("{v:.0} ms")),
        k.stats.served_by(),
        k.report.p99_ms,
    );
    let _ = writeln!(
        s,
        "| write load (phase) | target tx/s | achieved tx/s | commit p50 / p99 ms | failed |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|");
    for (phase, w) in &f.writes {
        let _ = writeln!(
            s,
            "| {phase} | {:.0} | {:.0} | {:.1} / {:.1} | {} |",
            w.target_rate, w.achieved_tx_per_s, w.latency_ms_p50, w.latency_ms_p99, w.errors
        );
    }

    // Targets.
    let min_share = f
        .reads
        .iter()
        .map(|(_, st, _)| st.home_share())
        .fold(f64::INFINITY, f64::min);
    let worst_local = f
        .reads
        .iter()
        .filter_map(|(_, st, _)| ms(&st.local, 0.99))
        .fold(0.0f64, f64::max);
    let worst_visible = f
        .visible
        .iter()
        .map(|v| quantile(v, 0.99).unwrap_or(f64::INFINITY))
        .fold(0.0f64, f64::max);
    let all_visible = f.visible_timeouts.iter().all(|t| *t == 0);
    let met = |ok: bool| if ok { "met" } else { "**not met**" };
    let _ = writeln!(s, "\n| target | figure | |");
    let _ = writeln!(s, "|---|---:|---|");
    let _ = writeln!(
        s,
        "| ≥ 99 % of reads from the home region's replica | {:.2} % (lowest region) | {} |",
        min_share * 100.0,
        met(min_share >= 0.99)
    );
    let _ = writeln!(
        s,
        "| local read p99 < 10 ms | {worst_local:.1} ms (highest region) | {} |",
        met(worst_local < 10.0)
    );
    let _ = writeln!(
        s,
        "| failed requests during the replica kill: 0 | {} | {} |",
        k.failed,
        met(k.failed == 0)
    );
    let _ = writeln!(
        s,
        "| commit → visible p99 < 500 ms in every region | {} (highest region) | {} |",
        if worst_visible.is_finite() {
            format!("{worst_visible:.0} ms")
        } else {
            "no probe".into()
        },
        met(worst_visible < 500.0 && all_visible)
    );
    s
}

fn reading(lag: &[LagSamples], i: usize) -> String {
    lag.get(i).map_or("—".into(), |l| {
        format!("{} / {}", l.reading_home, l.samples)
    })
}
