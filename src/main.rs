//! `landql`: command-line wiring only. Each subcommand parses its flags and calls into the
//! crates; behaviour lives there.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

mod dev;
mod fabric_verify;
mod serve;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Allocator settings by kind of job.
mod alloc {
    use libmimalloc_sys::{mi_option_set, mi_option_t};

    /// `mi_option_arena_eager_commit` in mimalloc's `mi_option_e` (v3, which
    /// libmimalloc-sys builds by default); the Rust bindings do not name it. `tests::option_numbers_match_mimalloc` checks the
    /// number against the option's documented default.
    const ARENA_EAGER_COMMIT: mi_option_t = 4;
    /// `mi_option_purge_delay` (milliseconds), likewise.
    const PURGE_DELAY: mi_option_t = 15;

    /// For the bulk jobs (`seed`, `bench ledger`): commit arena memory up front and keep
    /// freed pages for 100 s instead of 1 s.
    ///
    /// The seeder allocates and frees gigabytes within seconds in the same few size classes.
    /// With the defaults mimalloc hands freed pages back to the OS after a second and commits
    /// arena memory page by page, so the same memory is unmapped and faulted in again and
    /// again: seeding 100 000 records took 2.86 s with the defaults and 2.14 s with these
    /// settings. Long-running processes (`serve`, `sync`, `ledger`) keep the defaults, which
    /// give memory back.
    pub(crate) fn for_bulk_jobs() {
        // SAFETY: mi_option_set stores an integer in mimalloc's option table; the option
        // numbers are checked by the test below. The options are read when the allocator
        // next reserves an arena or purges, so setting them now, after the runtime's first
        // allocations, takes effect for everything the job allocates.
        unsafe {
            mi_option_set(ARENA_EAGER_COMMIT, 1);
            mi_option_set(PURGE_DELAY, 100_000);
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use libmimalloc_sys::mi_option_get;

        #[test]
        fn option_numbers_match_mimalloc() {
            // The defaults of mimalloc v3's option table (src/options.c): arena_eager_commit
            // = 2 ("only on overcommit systems"), purge_delay = 1000 ms. A shifted enum reads
            // another option, whose default differs.
            // SAFETY: mi_option_get only reads the option table.
            let (eager, delay) = unsafe {
                (
                    mi_option_get(ARENA_EAGER_COMMIT),
                    mi_option_get(PURGE_DELAY),
                )
            };
            assert_eq!((eager, delay), (2, 1000));
        }
    }
}

#[derive(Parser)]
#[command(
    name = "landql",
    version,
    about = "The read side of a land registry kept on a permissioned ledger"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    telemetry: TelemetryFlags,
}

/// Logs and traces, for every subcommand (they matter for the long-running ones: `serve`,
/// `sync`, `ledger`, `dev`). README, "Tracing and logs".
#[derive(clap::Args)]
struct TelemetryFlags {
    /// Export traces over OTLP/HTTP (protobuf) to this collector, e.g.
    /// `http://127.0.0.1:4318` (`/v1/traces` is appended). Off when not given.
    #[arg(long, env = "LANDQL_OTLP_ENDPOINT", global = true)]
    otlp_endpoint: Option<String>,
    /// The share of traces exported, by trace id, from 0 to 1 (e.g. 1.0, 0.1, 0.001); a
    /// caller's `traceparent` decides for its trace instead. Traces with an error, or slower
    /// than --trace-slow-ms, are exported whatever the ratio.
    #[arg(long, env = "LANDQL_TRACE_SAMPLE", default_value = "1.0", value_parser = parse_ratio, global = true)]
    trace_sample: f64,
    /// A trace whose root span lasts at least this many milliseconds is exported whatever
    /// the ratio.
    #[arg(
        long,
        env = "LANDQL_TRACE_SLOW_MS",
        default_value_t = 1000,
        global = true
    )]
    trace_slow_ms: u64,
    /// Log lines as `text` (coloured only on a terminal) or `json` (one object a line, with
    /// trace_id and span_id while a trace is active).
    #[arg(long, env = "LANDQL_LOG_FORMAT", default_value = "text", value_parser = parse_log_format, global = true)]
    log_format: telemetry::LogFormat,
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    telemetry::parse_ratio(s).map_err(|e| e.to_string())
}

fn parse_log_format(s: &str) -> Result<telemetry::LogFormat, String> {
    s.parse()
        .map_err(|e: telemetry::TelemetryError| e.to_string())
}

impl Command {
    /// `service.name` of this process's spans.
    fn service(&self) -> &'static str {
        match self {
            Command::Dev(_) => "landql-dev",
            Command::Ledger(_) => "landql-ledger",
            Command::Sync(_) => "landql-sync",
            Command::Serve(_) => "landql-serve",
            _ => "landql",
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole system on this machine: a private PostgreSQL, the devnet ledger with
    /// demo records and its HTTP API, and the sync worker.
    Dev(dev::DevArgs),
    /// Run the devnet ledger node: chaincode, block log and its HTTP API.
    Ledger(LedgerArgs),
    /// Build a realistic ledger offline, deterministically, into a new data directory.
    Seed(SeedArgs),
    /// Submit a live, realistic load to a ledger at a fixed rate and report what it achieved.
    Load(bench::load::ledger::LoadArgs),
    /// Project the ledger into PostgreSQL, exactly once, following the tip.
    Sync(SyncArgs),
    /// Serve the GraphQL API (HTTP and WebSocket at /graphql, /healthz, /readyz, /metrics,
    /// and a page with examples at /), with this node's own search index follower.
    Serve(serve::ServeArgs),
    /// Search a local index from the shell: names in any script and spelling, places,
    /// survey numbers, property IDs. Prints the hits as JSON.
    Search(SearchArgs),
    /// Bring the database named by DATABASE_URL to the current read-model schema.
    Migrate(MigrateArgs),
    /// Run a benchmark and write its figures into BENCHMARKS.md.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Check a proof document offline: exit 0 when it holds, 1 (naming the failing step)
    /// when it does not, 2 when the input cannot be read.
    VerifyProof(VerifyProofArgs),
    /// Hyperledger Fabric: `landql fabric verify FILE…` checks block files as Fabric does.
    #[command(subcommand)]
    Fabric(fabric_verify::FabricCommand),
}

#[derive(clap::Args)]
struct LedgerArgs {
    /// Data directory (block logs, orderer key).
    #[arg(long, env = "LANDQL_LEDGER_DATA")]
    data: PathBuf,
    /// Address of the HTTP API.
    #[arg(long, env = "LANDQL_LEDGER_LISTEN", default_value = "127.0.0.1:7050")]
    listen: SocketAddr,
    #[command(flatten)]
    devnet: DevnetFlags,
}

/// How the devnet cuts blocks and routes records.
#[derive(clap::Args, Clone)]
struct DevnetFlags {
    /// Cut a block at this many transactions…
    #[arg(long, env = "LANDQL_MAX_TXS", default_value_t = 500)]
    max_txs: usize,
    /// …or this many milliseconds after the first pending proposal.
    #[arg(long, env = "LANDQL_BATCH_TIMEOUT_MS", default_value_t = 50)]
    batch_timeout_ms: u64,
    /// Shards per state and year for new property IDs.
    #[arg(long, env = "LANDQL_SHARDS", default_value_t = 10)]
    shards: u8,
    /// States whose records go to their own regional channel, e.g. `TS,KA`.
    #[arg(long, env = "LANDQL_REGIONAL", value_delimiter = ',')]
    regional: Vec<String>,
}

impl DevnetFlags {
    fn config(&self) -> devnet::DevnetConfig {
        devnet::DevnetConfig {
            regional_states: self.regional.clone(),
            max_txs: self.max_txs,
            batch_timeout: Duration::from_millis(self.batch_timeout_ms),
            shards: self.shards,
        }
    }
}

#[derive(clap::Args)]
struct SeedArgs {
    /// Data directory of the new ledger.
    #[arg(long, env = "LANDQL_LEDGER_DATA")]
    data: PathBuf,
    /// Records to create (history transactions come on top).
    #[arg(long, default_value_t = 20_000)]
    records: u64,
    /// Seed of the generator: the same seed gives the same ledger.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Follow-up transactions (transfers, corrections, documents…) per record.
    #[arg(long, default_value_t = 0.5)]
    follow_ups: f64,
    #[command(flatten)]
    devnet: DevnetFlags,
}

#[derive(clap::Args)]
struct SyncArgs {
    /// The ledger's HTTP API.
    #[arg(long, env = "LANDQL_LEDGER", default_value = "http://127.0.0.1:7050")]
    ledger: String,
    /// The primary database.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// The orderer public key to trust; by default the key seen on first sync is pinned.
    #[arg(long, env = "LANDQL_ORDERER_KEY")]
    orderer_key: Option<String>,
    /// Write a batch when it holds this many events…
    #[arg(long, env = "LANDQL_BATCH_MAX_EVENTS", default_value_t = 5000)]
    batch_max_events: usize,
    /// …or this many milliseconds after its first block arrived.
    #[arg(long, env = "LANDQL_BATCH_WINDOW_MS", default_value_t = 50)]
    batch_window_ms: u64,
    /// A catch-up of at least this many events (and more than the read model holds) drops
    /// the secondary indexes while it loads and builds them again near the tip; 0 never.
    #[arg(long, env = "LANDQL_BULK_MIN_EVENTS", default_value_t = 100_000)]
    bulk_min_events: u64,
    /// Serve Prometheus metrics on this address.
    #[arg(long, env = "LANDQL_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
}

#[derive(clap::Args)]
struct SearchArgs {
    /// What a citizen would type, e.g. "laxmi reddy balapur" or "123/A".
    text: String,
    /// The index directory (`landql dev` keeps one in .landql/index).
    #[arg(long, env = "LANDQL_INDEX_DIR", default_value = ".landql/index")]
    index_dir: PathBuf,
    /// Hits to show.
    #[arg(long, default_value_t = 10)]
    first: usize,
}

#[derive(clap::Args)]
struct MigrateArgs {
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// The devnet: offline seeding and live submission, against raw-write and fsync baselines.
    Ledger(bench::ledger::LedgerBenchArgs),
    /// The sync worker: catch-up against a raw COPY baseline, freshness under live load,
    /// memory. Runs `landql sync` as a child process so its peak memory is its own.
    Sync(bench::sync::SyncBenchArgs),
    /// The GraphQL API: property by ID at a fixed rate against a direct-SQL baseline, peak
    /// throughput, search and filtered pages, memory. Runs `landql serve` as a child
    /// process so its peak memory is its own.
    Api(bench::api::ApiBenchArgs),
    /// Citizen search at 1 M records: the tantivy index (rebuild rate, size, memory) and
    /// its searcher against PostgreSQL tsvector and pg_trgm on the same data and queries —
    /// latency at a fixed rate and recall@10 for names, place + name, survey numbers and
    /// prefixes.
    Search(bench::search::SearchBenchArgs),
    /// Rate limits under a burst of 10× a role's limit: 429s with Retry-After, no 5xx, and
    /// the latency of a well-behaved client during the burst against without it.
    Limits(bench::limits::LimitsBenchArgs),
    /// The web pages: each page's JavaScript and CSS compressed (the search page's budget is
    /// 150 kB), and the time from the last key typed in `/search` to its results painted, in
    /// headless Chromium on a 1 M-record replica, against the `search` request alone.
    Pages(bench::pages::PagesBenchArgs),
    /// What traces cost the API: peak property(id) throughput and server CPU per request
    /// with traces off, exported at 0.1 % and at 100 %, one run (`landql serve` each time
    /// as a child process, exporting to an OTLP sink in the benchmark).
    Tracing(bench::traces::TracesBenchArgs),
    /// Reads in three regions (TS, AP, KA) on one machine: a primary, a hot standby and a
    /// `landql serve --region` per region, links delayed by a proxy (50/100/150 ms), under
    /// 1000 tx/s of writes — reads from the home replica, local and cross-region latency,
    /// replica lag, commit → visible, a replica SIGKILLed; against one node on the primary.
    Regions(bench::regions::RegionsBenchArgs),
    /// How soon a new record is searchable under writes: one `landql serve` with its index
    /// follower, a probe creating a property every 200 ms and polling the read model and the
    /// node's search for it, quiet and at 1000 tx/s (target: p99 ≤ 1 s).
    Follow(bench::follow::FollowBenchArgs),
}

#[derive(clap::Args)]
struct VerifyProofArgs {
    /// The proof document (as `GET /v1/transactions/{tx_id}/proof` returns it); `-` for stdin.
    file: PathBuf,
    /// The orderer public key you trust, 64 hex digits.
    #[arg(long)]
    orderer_key: String,
    /// The key whose write is checked (default: the property the transaction names).
    #[arg(long)]
    property_id: Option<String>,
    /// The record hash the write must have (default: report the hash found).
    #[arg(long)]
    record_hash: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let flags = &cli.telemetry;
    let _telemetry = match telemetry::init(telemetry::Config {
        service: cli.command.service().to_string(),
        otlp_endpoint: flags.otlp_endpoint.clone(),
        sample_ratio: flags.trace_sample,
        slow: Duration::from_millis(flags.trace_slow_ms),
        log_format: flags.log_format,
        default_log_filter: "info,tantivy=warn".into(),
        limits: telemetry::BufferLimits::default(),
    }) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::VerifyProof(args) => return verify_proof(&args),
        Command::Fabric(command) => return fabric_verify::run(command),
        Command::Dev(args) => run_async(dev::run(args, shutdown_signal())),
        Command::Ledger(args) => run_async(run_ledger(args)),
        Command::Seed(args) => {
            alloc::for_bulk_jobs();
            run_seed(&args)
        }
        Command::Load(args) => run_async(bench::load::ledger::command(args)),
        Command::Sync(args) => run_async(run_sync(args)),
        Command::Serve(args) => run_async(serve::run(args, shutdown_signal())),
        Command::Bench(BenchCommand::Api(args)) => run_async(bench::api::run(args)),
        Command::Bench(BenchCommand::Search(args)) => run_async(bench::search::run(args)),
        Command::Bench(BenchCommand::Limits(args)) => run_async(bench::limits::run(args)),
        Command::Bench(BenchCommand::Pages(args)) => run_async(bench::pages::run(args)),
        Command::Bench(BenchCommand::Tracing(args)) => run_async(bench::traces::run(args)),
        Command::Bench(BenchCommand::Regions(args)) => run_async(bench::regions::run(args)),
        Command::Bench(BenchCommand::Follow(args)) => run_async(bench::follow::run(args)),
        Command::Bench(BenchCommand::Ledger(args)) => run_async(async move {
            alloc::for_bulk_jobs();
            bench::ledger::run(args).await
        }),
        Command::Bench(BenchCommand::Sync(args)) => run_async(bench::sync::run(args)),
        Command::Search(args) => (|| {
            let hits = search_index::search::search_dir(&args.index_dir, &args.text, args.first)
                .with_context(|| format!("searching the index in {}", args.index_dir.display()))?;
            println!("{}", serde_json::to_string_pretty(&hits)?);
            Ok(())
        })(),
        Command::Migrate(args) => run_async(async move {
            let pool = migrations::connect(&args.database_url).await?;
            migrations::migrate(&pool).await?;
            println!("database is at the current schema");
            Ok(())
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_async(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(fut)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn run_ledger(args: LedgerArgs) -> anyhow::Result<()> {
    let data = args.data.clone();
    let cfg = args.devnet.config();
    let (node, report) = tokio::task::spawn_blocking(move || devnet::Node::start(&data, cfg))
        .await?
        .with_context(|| format!("opening ledger data in {}", args.data.display()))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    tracing::info!(
        listen = %args.listen,
        data = %args.data.display(),
        blocks = report.blocks,
        transactions = report.transactions,
        torn_tails_cut = report.truncated.len(),
        orderer_key = node.orderer_public_key(),
        "devnet ledger ready"
    );
    devnet::serve(node, listener, shutdown_signal()).await?;
    Ok(())
}

fn run_seed(args: &SeedArgs) -> anyhow::Result<()> {
    use devnet::seed::{seed, SeedOptions};
    let opts = SeedOptions {
        records: args.records,
        seed: args.seed,
        follow_ups_per_record: args.follow_ups,
        devnet: args.devnet.config(),
    };
    let step = (args.records / 20).max(1);
    let mut next = step;
    let report = seed(&args.data, &opts, |done| {
        if done >= next {
            eprintln!("seeded {done} of {} records", args.records);
            next = done + step;
        }
    })
    .with_context(|| format!("seeding {}", args.data.display()))?;
    let secs = report.elapsed.as_secs_f64();
    println!(
        "seeded {} records in {} transactions ({} invalid) and {} blocks in {:.2}s: {:.0} records/s, {:.0} tx/s",
        report.records,
        report.transactions,
        report.invalid,
        report.blocks,
        secs,
        report.records as f64 / secs,
        report.transactions as f64 / secs
    );
    Ok(())
}

async fn run_sync(args: SyncArgs) -> anyhow::Result<()> {
    let opts = sync::SyncOptions {
        ledger_url: args.ledger,
        database_url: args.database_url,
        orderer_key: args.orderer_key,
        batch_max_events: args.batch_max_events,
        batch_window: Duration::from_millis(args.batch_window_ms),
        metrics_listen: args.metrics_listen,
        bulk_min_events: args.bulk_min_events,
    };
    sync::run(opts, shutdown_signal()).await?;
    Ok(())
}

fn verify_proof(args: &VerifyProofArgs) -> ExitCode {
    use ledger::proof::{verify_proof, Expect};
    let text = if args.file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map(|_| s)
    } else {
        std::fs::read_to_string(&args.file)
    };
    let text = match text {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", args.file.display());
            return ExitCode::from(2);
        }
    };
    let key = match ledger::signing::parse_public_key(&args.orderer_key) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: --orderer-key: {e}");
            return ExitCode::from(2);
        }
    };
    let record_hash = match args
        .record_hash
        .as_deref()
        .map(str::parse::<ledger::Hash32>)
    {
        None => None,
        Some(Ok(h)) => Some(h),
        Some(Err(e)) => {
            eprintln!("error: --record-hash: {e}");
            return ExitCode::from(2);
        }
    };
    let doc: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            println!("INVALID: step 0 (document shape): the file is not JSON: {e}");
            return ExitCode::from(1);
        }
    };
    let expect = Expect {
        key: args.property_id.clone(),
        record_hash,
    };
    match verify_proof(&doc, &key, &expect) {
        Ok(v) => {
            println!(
                "VALID: {} block {} tx {} wrote {} with record hash {}",
                v.channel, v.block_number, v.tx_id, v.key, v.record_hash
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("INVALID: {e}");
            ExitCode::from(1)
        }
    }
}
