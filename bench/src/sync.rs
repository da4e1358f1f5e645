//! The sync benchmark (design/targets.md): catch-up rate from a seeded ledger, the raw COPY
//! rate of the same rows on the same PostgreSQL in the same run (the baseline ratio),
//! freshness under live load, and the worker's peak RSS.
//!
//! One run:
//! 1. seeds `records` records with the devnet seeder into a temporary directory and starts
//!    the node in-process on 127.0.0.1:0;
//! 2. starts a private PostgreSQL (durable: fsync on, as in production; `BENCH_NONDURABLE=1`
//!    turns fsync off for comparison) and migrates it;
//! 3. starts the worker — as a child process (so its peak RSS is its own: `VmHWM` of
//!    `/proc/<pid>/status`) or in-process — and times the catch-up until every channel's
//!    checkpoint is at the chain's tip: events/s = change-log rows / seconds;
//! 4. submits a live load at `live_rate` tx/s with `bench::load::ledger` and, through
//!    `LISTEN landql_changes`, timestamps when each property event becomes visible;
//!    freshness = that moment − the transaction's ledger time (block cut, same clock);
//! 5. measures the *floor*: server-side `COPY` of every row the catch-up left in the read
//!    model's tables into primary-key-only copies of them, one after the other on one
//!    connection. A catch-up writes at least those rows through one backend (each batch is
//!    one transaction, invariant 2), so no catch-up on this machine can beat that time;
//!    `events / floor seconds` is the ceiling its events/s is measured against. Its
//!    `properties` step is the primary-key-only COPY baseline;
//! 6. server-side `COPY`s the same `properties` rows into an identically indexed copy of
//!    the table: the indexed baseline.
//!
//! `landql bench sync` ([`run`]) calls [`measure`] with [`WorkerMode::Command`] naming
//! the `landql` binary and `["sync"]`: the worker gets its configuration from the same
//! environment variables `landql sync` reads (`LANDQL_LEDGER`, `DATABASE_URL`,
//! `LANDQL_BATCH_MAX_EVENTS`, `LANDQL_BATCH_WINDOW_MS`) and is stopped with SIGTERM.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use devnet::seed::{seed, SeedOptions};
use devnet::{DevnetConfig, Node};
use hdrhistogram::Histogram;
use migrations::sqlx::postgres::PgListener;
use migrations::sqlx::{self, PgPool};
use migrations::{PgOptions, PrivatePostgres};

use crate::machine::{machine, postgres_version, set_mode};
use crate::proc::Proc;
use crate::synced::{blocks_behind, wait_synced, Tip, Wait};

/// `landql bench sync`'s flags.
#[derive(clap::Args)]
pub struct SyncBenchArgs {
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Live load for the freshness phase, tx/s (0 skips it).
    #[arg(long, default_value_t = 1000.0)]
    live_rate: f64,
    /// Seconds of live load.
    #[arg(long, default_value_t = 20.0)]
    live_seconds: f64,
    #[arg(long, default_value_t = 5000)]
    batch_max_events: usize,
    #[arg(long, default_value_t = 50)]
    batch_window_ms: u64,
    #[command(flatten)]
    out: crate::BenchOut,
}

/// `landql bench sync`: the worker runs as `landql sync`, a child process of this binary.
pub async fn run(args: SyncBenchArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let program = std::env::current_exe().context("finding the landql binary")?;
    let opts = BenchOptions {
        records: args.records,
        live_rate: args.live_rate,
        live_duration: Duration::from_secs_f64(args.live_seconds),
        batch_max_events: args.batch_max_events,
        batch_window: Duration::from_millis(args.batch_window_ms),
        worker: WorkerMode::Command {
            program,
            args: vec!["sync".into()],
        },
        ..Default::default()
    };
    let report = measure(&opts).await?;
    let md = report.markdown();
    let body = md
        .lines()
        .skip_while(|l| l.starts_with("## ") || l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    args.out.write("sync", "Sync worker", &body)
}

/// How the worker under test runs.
#[derive(Debug, Clone)]
pub enum WorkerMode {
    /// `sync::run` on this process's runtime; peak RSS then includes the node and the bench.
    InProcess,
    /// A child process configured through the environment (see the module docs), stopped
    /// with SIGTERM; peak RSS is the child's own.
    Command {
        program: PathBuf,
        args: Vec<OsString>,
    },
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub records: u64,
    pub seed: u64,
    pub batch_max_events: usize,
    pub batch_window: Duration,
    /// Live load for the freshness phase (proposals per second); 0 skips the phase.
    pub live_rate: f64,
    pub live_duration: Duration,
    pub worker: WorkerMode,
    /// Where the temporary ledger and database go (default: the system temp dir).
    pub work_dir: Option<PathBuf>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            records: 1_000_000,
            seed: 1,
            batch_max_events: 5_000,
            batch_window: Duration::from_millis(50),
            live_rate: 1_000.0,
            live_duration: Duration::from_secs(20),
            worker: WorkerMode::InProcess,
            work_dir: None,
        }
    }
}

/// The figures of one run.
#[derive(Debug, Clone, Default)]
pub struct BenchReport {
    pub machine: String,
    pub postgres: String,
    pub records: u64,
    pub transactions: u64,
    pub invalid: u64,
    pub blocks: u64,
    pub seed_secs: f64,
    pub batch_max_events: usize,
    pub batch_window_ms: u64,
    /// Change-log rows written during catch-up (applied events).
    pub events: u64,
    pub properties: u64,
    pub catchup_secs: f64,
    pub events_per_s: f64,
    pub copy_rows: u64,
    pub copy_indexed_rows_per_s: f64,
    pub copy_pk_rows_per_s: f64,
    /// Rows in the floor's tables, and the seconds their primary-key-only COPY took.
    pub floor_rows: u64,
    pub floor_secs: f64,
    pub live_rate: f64,
    pub live_achieved_tx_per_s: f64,
    pub freshness_samples: u64,
    pub freshness_ms_p50: f64,
    pub freshness_ms_p90: f64,
    pub freshness_ms_p99: f64,
    pub freshness_ms_max: f64,
    /// Peak RSS of the worker (KiB) and what it covers.
    pub peak_rss_kib: u64,
    pub peak_rss_of: &'static str,
}

impl BenchReport {
    /// The catch-up rate as a fraction of raw COPY into the identically indexed table.
    pub fn ratio(&self) -> f64 {
        if self.copy_indexed_rows_per_s > 0.0 {
            self.events_per_s / self.copy_indexed_rows_per_s
        } else {
            0.0
        }
    }

    /// The most events/s a one-writer catch-up could reach here: the catch-up's events over
    /// the floor's seconds (0 when not measured).
    pub fn floor_events_per_s(&self) -> f64 {
        if self.floor_secs > 0.0 {
            self.events as f64 / self.floor_secs
        } else {
            0.0
        }
    }

    /// A markdown section for BENCHMARKS.md.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "## Sync worker: catch-up, COPY baseline, freshness, memory\n"
        );
        let _ = writeln!(s, "Machine: {}. {}.", self.machine, self.postgres);
        let _ = writeln!(
            s,
            "Ledger: {} records seeded in {} transactions ({} invalid) and {} blocks in {:.1} s. \
             Worker: batches of ≤ {} events or {} ms; bulk catch-up from 100 000 events (the \
             secondary indexes are dropped while it loads and built again near the tip, inside \
             the catch-up's time).\n",
            self.records,
            self.transactions,
            self.invalid,
            self.blocks,
            self.seed_secs,
            self.batch_max_events,
            self.batch_window_ms
        );
        let _ = writeln!(s, "| what | figure | target |");
        let _ = writeln!(s, "|---|---|---|");
        let _ = writeln!(
            s,
            "| catch-up | {} events ({} properties) in {:.1} s = **{:.0} events/s** | ≥ 50 000 events/s |",
            self.events, self.properties, self.catchup_secs, self.events_per_s
        );
        let _ = writeln!(
            s,
            "| raw COPY of the {} final rows, identically indexed copy of `properties` | {:.0} rows/s | baseline |",
            self.copy_rows, self.copy_indexed_rows_per_s
        );
        let _ = writeln!(
            s,
            "| raw COPY of the same rows, primary key only | {:.0} rows/s | |",
            self.copy_pk_rows_per_s
        );
        let _ = writeln!(s, "| catch-up ÷ indexed COPY | {:.2} | |", self.ratio());
        if self.floor_secs > 0.0 {
            let _ = writeln!(
                s,
                "| floor: raw COPY of all {} rows the catch-up left in {}, each into a primary-key-only copy, one connection | {:.1} s = **{:.0} events/s** at most for any one-writer catch-up here | |",
                self.floor_rows,
                FLOOR_TABLES.map(|t| format!("`{t}`")).join(", "),
                self.floor_secs,
                self.floor_events_per_s()
            );
            let _ = writeln!(
                s,
                "| catch-up ÷ floor | {:.2} | |",
                self.events_per_s / self.floor_events_per_s()
            );
        }
        if self.freshness_samples > 0 {
            let _ = writeln!(
                s,
                "| freshness at {:.0} tx/s offered ({:.0} achieved): ledger block time → row visible (NOTIFY seen), {} events | p50 {:.0} ms, p90 {:.0} ms, **p99 {:.0} ms**, max {:.0} ms | p99 < 250 ms |",
                self.live_rate,
                self.live_achieved_tx_per_s,
                self.freshness_samples,
                self.freshness_ms_p50,
                self.freshness_ms_p90,
                self.freshness_ms_p99,
                self.freshness_ms_max
            );
        }
        let _ = writeln!(
            s,
            "| peak RSS ({}) | {:.0} MiB | < 512 MiB |",
            self.peak_rss_of,
            self.peak_rss_kib as f64 / 1024.0
        );
        s
    }
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[error("sync benchmark: {0}")]
pub struct BenchError(String);

fn err(what: &str) -> impl FnOnce(String) -> BenchError + '_ {
    move |e| BenchError(format!("{what}: {e}"))
}

/// Runs the benchmark (see the module docs); progress goes to the log.
pub async fn measure(opts: &BenchOptions) -> Result<BenchReport, BenchError> {
    let mut report = BenchReport {
        machine: machine(),
        batch_max_events: opts.batch_max_events,
        batch_window_ms: opts.batch_window.as_millis() as u64,
        live_rate: opts.live_rate,
        ..BenchReport::default()
    };
    let base = opts.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let root = tempfile::Builder::new()
        .prefix("landql-bench-sync-")
        .tempdir_in(&base)
        .map_err(|e| err("temporary directory")(e.to_string()))?;
    // The postgres user must be able to reach its data directory inside.
    set_mode(root.path(), 0o711);
    let ledger_dir = root.path().join("ledger");

    // 1. The ledger.
    tracing::info!(records = opts.records, "seeding the ledger");
    let seed_opts = SeedOptions {
        records: opts.records,
        seed: opts.seed,
        ..SeedOptions::default()
    };
    let dir = ledger_dir.clone();
    let seeded = tokio::task::spawn_blocking(move || seed(&dir, &seed_opts, |_| {}))
        .await
        .map_err(|e| err("seeding")(e.to_string()))?
        .map_err(|e| err("seeding")(e.to_string()))?;
    report.records = seeded.records;
    report.transactions = seeded.transactions;
    report.invalid = seeded.invalid;
    report.blocks = seeded.blocks;
    report.seed_secs = seeded.elapsed.as_secs_f64();
    let dir = ledger_dir.clone();
    let (node, _) = tokio::task::spawn_blocking(move || Node::start(&dir, DevnetConfig::default()))
        .await
        .map_err(|e| err("starting the node")(e.to_string()))?
        .map_err(|e| err("starting the node")(e.to_string()))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| err("binding the ledger")(e.to_string()))?;
    let ledger_url = format!(
        "http://{}",
        listener
            .local_addr()
            .map_err(|e| err("ledger address")(e.to_string()))?
    );
    let (ledger_stop, ledger_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(devnet::serve(node.clone(), listener, async move {
        let _ = ledger_stopped.await;
    }));

    // 2. PostgreSQL.
    let mut pg = PrivatePostgres::start_with(
        &root.path().join("pg"),
        PgOptions {
            durable: std::env::var_os("BENCH_NONDURABLE").is_none(),
            ..PgOptions::from_env()
        },
    )
    .await
    .map_err(|e| err("starting PostgreSQL")(e.to_string()))?;
    let url = pg.database_url();
    let pool = migrations::connect(&url)
        .await
        .map_err(|e| err("connecting")(e.to_string()))?;
    migrations::migrate(&pool)
        .await
        .map_err(|e| err("migrating")(e.to_string()))?;
    report.postgres = postgres_version(&pool)
        .await
        .map_err(|e| err("version")(e.to_string()))?;

    // 3. Catch-up.
    let started = Instant::now();
    let mut worker = Worker::start(opts, &ledger_url, &url)?;
    tracing::info!("catching up");
    let wait = Wait {
        limit: Duration::from_secs(3600),
        every: Duration::from_millis(50),
        indexes_built: true,
    };
    wait_synced(&Tip::Node(&node), &pool, &wait, || worker.check())
        .await
        .map_err(|e| BenchError(format!("catching up: {e:#}")))?;
    report.catchup_secs = started.elapsed().as_secs_f64();
    report.events = count(&pool, "SELECT count(*) FROM change_log").await?;
    report.properties = count(&pool, "SELECT count(*) FROM properties").await?;
    report.events_per_s = report.events as f64 / report.catchup_secs;
    tracing::info!(
        events = report.events,
        secs = report.catchup_secs,
        events_per_s = report.events_per_s as u64,
        "caught up"
    );

    // 4. Freshness under live load.
    if opts.live_rate > 0.0 {
        let (achieved, hist) =
            freshness(opts, &ledger_url, &url, &node, &pool, &mut worker).await?;
        report.live_achieved_tx_per_s = achieved;
        report.freshness_samples = hist.len();
        let q = |p: f64| hist.value_at_quantile(p) as f64 / 1000.0;
        report.freshness_ms_p50 = q(0.50);
        report.freshness_ms_p90 = q(0.90);
        report.freshness_ms_p99 = q(0.99);
        report.freshness_ms_max = hist.max() as f64 / 1000.0;
    }
    let (rss, of) = worker.stop().await;
    report.peak_rss_kib = rss;
    report.peak_rss_of = of;

    // 5. and 6. The floor and the COPY baselines, with the worker gone.
    let b = copy_baselines(&pool, pg.data_dir()).await?;
    report.copy_rows = b.properties;
    report.copy_indexed_rows_per_s = b.indexed_rows_per_s;
    report.copy_pk_rows_per_s = b.pk_rows_per_s;
    report.floor_rows = b.floor_rows;
    report.floor_secs = b.floor_secs;

    pool.close().await;
    let _ = pg.stop().await;
    let _ = ledger_stop.send(());
    let _ = server.await;
    Ok(report)
}

/// The worker under test.
enum Worker {
    InProcess {
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        task: tokio::task::JoinHandle<Result<(), sync::SyncError>>,
    },
    Child(tokio::process::Child),
}

impl Worker {
    fn start(
        opts: &BenchOptions,
        ledger_url: &str,
        database_url: &str,
    ) -> Result<Self, BenchError> {
        match &opts.worker {
            WorkerMode::InProcess => {
                let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                let sync_opts = sync::SyncOptions {
                    batch_max_events: opts.batch_max_events,
                    batch_window: opts.batch_window,
                    ..sync::SyncOptions::new(ledger_url, database_url)
                };
                let task = tokio::spawn(sync::run(sync_opts, async move {
                    let _ = rx.await;
                }));
                Ok(Worker::InProcess {
                    stop: Some(tx),
                    task,
                })
            }
            WorkerMode::Command { program, args } => {
                let child = tokio::process::Command::new(program)
                    .args(args)
                    .env("LANDQL_LEDGER", ledger_url)
                    .env("DATABASE_URL", database_url)
                    .env("LANDQL_BATCH_MAX_EVENTS", opts.batch_max_events.to_string())
                    .env(
                        "LANDQL_BATCH_WINDOW_MS",
                        opts.batch_window.as_millis().to_string(),
                    )
                    .kill_on_drop(true)
                    .spawn()
                    .map_err(|e| err("starting the worker")(e.to_string()))?;
                Ok(Worker::Child(child))
            }
        }
    }

    /// Fails when the worker has ended on its own.
    fn check(&mut self) -> anyhow::Result<()> {
        match self {
            Worker::InProcess { task, .. } if task.is_finished() => {
                anyhow::bail!("the in-process worker stopped")
            }
            Worker::Child(c) => match c.try_wait() {
                Ok(Some(status)) => anyhow::bail!("the worker exited: {status}"),
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// Stops the worker; its peak RSS in KiB and what that figure covers.
    async fn stop(self) -> (u64, &'static str) {
        match self {
            Worker::InProcess { mut stop, task } => {
                let rss = Proc::This.peak_rss_kib();
                if let Some(s) = stop.take() {
                    let _ = s.send(());
                }
                let _ = task.await;
                (rss, "whole bench process: worker + in-process node + bench")
            }
            Worker::Child(mut c) => {
                let rss = c.id().map(|pid| Proc::Pid(pid).peak_rss_kib()).unwrap_or(0);
                if let Some(pid) = c.id() {
                    // SIGTERM: the worker's graceful shutdown.
                    let _ = std::process::Command::new("kill")
                        .args(["-TERM", &pid.to_string()])
                        .status();
                }
                if tokio::time::timeout(Duration::from_secs(10), c.wait())
                    .await
                    .is_err()
                {
                    let _ = c.kill().await;
                }
                (rss, "the sync worker process alone")
            }
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Live load and visibility timestamps: (achieved tx/s, freshness histogram in µs).
async fn freshness(
    opts: &BenchOptions,
    ledger_url: &str,
    database_url: &str,
    node: &Node,
    pool: &PgPool,
    worker: &mut Worker,
) -> Result<(f64, Histogram<u64>), BenchError> {
    let mut listener = PgListener::connect(database_url)
        .await
        .map_err(|e| err("LISTEN")(e.to_string()))?;
    listener
        .listen(sync::NOTIFY_CHANNEL)
        .await
        .map_err(|e| err("LISTEN")(e.to_string()))?;
    let mut last: i64 = sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM change_log")
        .fetch_one(pool)
        .await
        .map_err(|e| err("max seq")(e.to_string()))?;
    let load_opts = crate::load::ledger::LoadOptions {
        ledger: ledger_url.to_string(),
        rate: opts.live_rate,
        duration: opts.live_duration,
        seed: opts.seed + 1000,
        max_in_flight: 256,
        after_parcels: 0,
    };
    tracing::info!(
        rate = opts.live_rate,
        secs = opts.live_duration.as_secs_f64(),
        "live load"
    );
    let load = tokio::spawn(async move { crate::load::ledger::run(&load_opts).await });
    let mut hist = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)
        .map_err(|e| err("histogram")(e.to_string()))?;
    let mut load = Some(load);
    let mut achieved = 0.0;
    let mut drain_until: Option<Instant> = None;
    loop {
        if let Some(l) = &load {
            if l.is_finished() {
                if let Some(l) = load.take() {
                    let r = l
                        .await
                        .map_err(|e| err("load")(e.to_string()))?
                        .map_err(|e| err("load")(e.to_string()))?;
                    achieved = r.achieved_tx_per_s;
                }
                drain_until = Some(Instant::now() + Duration::from_secs(5));
            }
        }
        if let Some(until) = drain_until {
            if Instant::now() > until {
                break;
            }
            let caught_up = blocks_behind(&Tip::Node(node), pool)
                .await
                .map_err(|e| BenchError(format!("checkpoints: {e:#}")))?
                == 0;
            if caught_up {
                break;
            }
        }
        worker.check().map_err(|e| BenchError(format!("{e:#}")))?;
        let note = match tokio::time::timeout(Duration::from_millis(200), listener.recv()).await {
            Err(_) => continue,
            Ok(Err(e)) => return Err(err("notification")(e.to_string())),
            Ok(Ok(n)) => n,
        };
        let seen = now_ms();
        let upto: i64 = note.payload().parse().unwrap_or(i64::MAX);
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT c.seq, (extract(epoch FROM v.committed_at) * 1000)::bigint
             FROM change_log c JOIN property_versions v ON v.property_id = c.property_id
                AND v.block_number = c.block_number AND v.tx_index = c.tx_index
                AND v.channel = c.channel
             WHERE c.seq > $1 AND c.seq <= $2 ORDER BY c.seq",
        )
        .bind(last)
        .bind(upto)
        .fetch_all(pool)
        .await
        .map_err(|e| err("change log")(e.to_string()))?;
        for (seq, committed) in rows {
            last = last.max(seq);
            let lag_us = (seen - committed).max(0) as u64 * 1000;
            let _ = hist.record(lag_us.max(1));
        }
        last = last.max(upto.min(i64::MAX - 1));
    }
    Ok((achieved, hist))
}

/// The tables a catch-up writes (`location_counts` aside: its triggers write it, and its
/// few rows would not move the floor).
const FLOOR_TABLES: [&str; 6] = [
    "property_versions",
    "properties",
    "change_log",
    "ownerships",
    "owners",
    "documents",
];

/// What the COPY baselines measured.
struct Baselines {
    /// Rows of `properties`, and their rates into an identically indexed copy and into the
    /// floor's primary-key-only one.
    properties: u64,
    indexed_rows_per_s: f64,
    pk_rows_per_s: f64,
    /// Rows of every floor table, and the seconds their primary-key-only COPYs took.
    floor_rows: u64,
    floor_secs: f64,
}

/// Server-side COPYs, with the worker gone: every row of [`FLOOR_TABLES`] is exported to a
/// file once, then
/// - the floor (see the module docs): each file `COPY`d into a copy of its table that keeps
///   only the primary key (and the table's storage options), one table after another on
///   one connection, from a checkpoint. Server-side COPY from a file is the fastest way
///   PostgreSQL has to take rows: no client, no protocol, no staging, no upsert, no trigger,
///   and each row written once, where a catch-up also rewrites the properties that change.
///   Its `properties` step is also the primary-key-only baseline;
/// - the baseline: the `properties` file into an identically indexed copy, from a checkpoint.
async fn copy_baselines(pool: &PgPool, data_dir: &Path) -> Result<Baselines, BenchError> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(|e| err("COPY baselines")(e.to_string()))?;
    let mut exec = async |sql: String| {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.as_str()))
            .execute(&mut *conn)
            .await
            .map_err(|e| err("COPY baselines")(format!("{sql}: {e}")))
    };
    let path = |table: &str| data_dir.join(format!("bench_floor_{table}.copy"));
    let file = |table: &str| path(table).display().to_string().replace('\'', "''");
    for table in FLOOR_TABLES {
        let copy = format!("bench_floor_{table}");
        exec(format!(
            "DROP TABLE IF EXISTS {copy}; CREATE TABLE {copy} (LIKE {table} INCLUDING ALL); \
             DO $$ DECLARE i regclass; o text[]; BEGIN \
                 FOR i IN SELECT indexrelid::regclass FROM pg_index \
                     WHERE indrelid = '{copy}'::regclass AND NOT indisprimary LOOP \
                     EXECUTE 'DROP INDEX ' || i; \
                 END LOOP; \
                 SELECT reloptions INTO o FROM pg_class WHERE oid = '{table}'::regclass; \
                 IF o IS NOT NULL THEN \
                     EXECUTE format('ALTER TABLE {copy} SET (%s)', array_to_string(o, ', ')); \
                 END IF; END $$; \
             COPY (SELECT * FROM {table}) TO '{}'",
            file(table)
        ))
        .await?;
    }
    exec("CHECKPOINT".into()).await?;
    let started = Instant::now();
    let (mut floor_rows, mut properties, mut pk_rows_per_s) = (0, 0, 0.0);
    for table in FLOOR_TABLES {
        let t = Instant::now();
        let rows = exec(format!("COPY bench_floor_{table} FROM '{}'", file(table)))
            .await?
            .rows_affected();
        let secs = t.elapsed().as_secs_f64();
        floor_rows += rows;
        if table == "properties" {
            (properties, pk_rows_per_s) = (rows, rows as f64 / secs);
        }
        tracing::info!(table, rows, secs, "floor COPY");
    }
    let floor_secs = started.elapsed().as_secs_f64();

    exec(
        "DROP TABLE IF EXISTS bench_copy_indexed; \
         CREATE TABLE bench_copy_indexed (LIKE properties INCLUDING ALL) WITH (fillfactor = 90)"
            .into(),
    )
    .await?;
    exec("CHECKPOINT".into()).await?;
    let t = Instant::now();
    let rows = exec(format!(
        "COPY bench_copy_indexed FROM '{}'",
        file("properties")
    ))
    .await?
    .rows_affected();
    let secs = t.elapsed().as_secs_f64();
    tracing::info!(rows, secs, "indexed COPY baseline");

    exec("DROP TABLE bench_copy_indexed".into()).await?;
    for table in FLOOR_TABLES {
        exec(format!("DROP TABLE bench_floor_{table}")).await?;
        let _ = std::fs::remove_file(path(table));
    }
    Ok(Baselines {
        properties,
        indexed_rows_per_s: rows as f64 / secs,
        pk_rows_per_s,
        floor_rows,
        floor_secs,
    })
}

async fn count(pool: &PgPool, sql: &str) -> Result<u64, BenchError> {
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(pool)
        .await
        .map_err(|e| err("counting")(e.to_string()))?;
    Ok(n.max(0) as u64)
}
