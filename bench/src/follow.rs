//! `landql bench follow`: how soon a new record is searchable while the ledger takes writes
//! (target: p99 ≤ 1 s at 1 000 tx/s).
//!
//! One run:
//! 1. the backend of `bench api` (a private PostgreSQL, a seeded devnet and the sync worker
//!    until synced);
//! 2. `landql serve` with its search index, built from the synced database and then kept
//!    by its follower from the change log, as in production;
//! 3. two phases, each `--seconds` long: **quiet** (no other writes) and **loaded** (the
//!    devnet's realistic mix at `--write-rate`, as `landql load` sends it). In both, a probe
//!    creates one property every `--probe-ms` and, from the ledger's receipt, asks every
//!    10 ms (a) the read model whether it holds the row and (b) the node's `search` for the
//!    property's ID (`bench::visible`).
//!
//! The read model is the baseline of the same run: the follower reads the change log that
//! the sync worker writes with the row, so the search cannot see a record before the
//! database does; the difference is what the follower adds (its commit interval, indexing,
//! the reader's reload).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use devnet::generate::{DemoData, Generator};
use migrations::sqlx;

use crate::backend::{Backend, BackendArgs};
use crate::load::ledger::{LoadOptions, LoadReport};
use crate::machine::{load_average, machine};
use crate::regions::quantile;
use crate::server::Server;
use crate::visible::{self, Look};

#[derive(clap::Args)]
pub struct FollowBenchArgs {
    #[command(flatten)]
    backend: BackendArgs,
    /// Transactions per second of the loaded phase (the devnet's realistic mix).
    #[arg(long, default_value_t = 1000.0)]
    write_rate: f64,
    /// Seconds of each phase.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// One probe (a new property) every this many ms.
    #[arg(long, default_value_t = 200)]
    probe_ms: u64,
    /// RUST_LOG of the server.
    #[arg(long, default_value = "warn")]
    server_log: String,
    #[command(flatten)]
    out: crate::BenchOut,
}

/// One phase's figures.
struct Phase {
    name: &'static str,
    /// Milliseconds from receipt to visible: in the read model, in search.
    database_ms: Vec<f64>,
    search_ms: Vec<f64>,
    /// Probes not seen within [`visible::LIMIT`]: in the read model, in search.
    database_missed: u64,
    search_missed: u64,
    probes: u64,
    /// The write load, in the loaded phase.
    load: Option<LoadReport>,
    /// Changes the sync worker applied a second (the change log's growth): what the follower
    /// had to index; invalid transactions (e.g. a parcel registered twice) change nothing.
    changes_per_s: f64,
}

/// The probe's parcels are numbered after this many a village (times the phase's number), so
/// that they collide neither with the seeded ledger's nor with the other phase's.
const PROBE_PARCELS: u32 = 1_000_000;

/// The write load's parcels are numbered after this many a village (beyond both phases').
const LOAD_PARCELS: u32 = 10 * PROBE_PARCELS;

pub async fn run(args: FollowBenchArgs) -> anyhow::Result<()> {
    if !(args.seconds > 0.0 && args.write_rate > 0.0) {
        bail!("--seconds and --write-rate must be above 0");
    }
    let load_before = load_average();
    let (backend, pool) = Backend::start_settled(&args.backend).await?;
    let http = reqwest::Client::new();
    let dir = backend.root.path().join("serve");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut server = Server::start(&backend, &dir, &args.server_log, &[]).await?;
    let result = async {
        server.wait_ready(&http).await?;
        let mut phases = Vec::new();
        for (i, (name, rate)) in [("quiet", None), ("loaded", Some(args.write_rate))]
            .into_iter()
            .enumerate()
        {
            tracing::info!(phase = name, "probing");
            let gen = Generator::new(0x666f_6c6c_6f77 + i as u64, DemoData::embedded())
                .after_parcels(PROBE_PARCELS * (i as u32 + 1));
            let phase = measure(&args, &backend, &server, &pool, &http, gen, name, rate).await?;
            server.check()?;
            phases.push(phase);
        }
        anyhow::Ok(phases)
    }
    .await;
    pool.close().await;
    drop(server);
    let records_note = backend.records_note.clone();
    backend.stop().await;
    let phases = result?;
    let body = markdown(&args, &phases, &records_note, &load_before);
    args.out
        .write("follow", "Search under write load (index follower)", &body)
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    args: &FollowBenchArgs,
    backend: &Backend,
    server: &Server,
    pool: &sqlx::PgPool,
    http: &reqwest::Client,
    gen: Generator,
    name: &'static str,
    rate: Option<f64>,
) -> anyhow::Result<Phase> {
    let duration = Duration::from_secs_f64(args.seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let seq = || async {
        sqlx::query_scalar::<_, i64>("SELECT coalesce(max(seq), 0) FROM change_log")
            .fetch_one(pool)
            .await
            .context("the change log's position")
    };
    let (seq_before, started) = (seq().await?, std::time::Instant::now());
    let probe = tokio::spawn(visible::probe(
        backend.ledger_url.clone(),
        gen,
        vec![
            Look::Database(pool.clone()),
            Look::Search {
                http: http.clone(),
                base: server.base.clone(),
            },
        ],
        Duration::from_millis(args.probe_ms.max(10)),
        stop.clone(),
    ));
    let load = match rate {
        Some(rate) => {
            let opts = LoadOptions {
                ledger: backend.ledger_url.clone(),
                rate,
                duration,
                seed: 0x6c6f_6164,
                max_in_flight: 256,
                // Every create a new parcel, as the probe's: writes that change records.
                after_parcels: LOAD_PARCELS,
            };
            let r = crate::load::ledger::run(&opts)
                .await
                .with_context(|| format!("the write load on {}", backend.ledger_url))?;
            tracing::info!(
                achieved = r.achieved_tx_per_s,
                errors = r.errors,
                "write load"
            );
            Some(r)
        }
        None => {
            tokio::time::sleep(duration).await;
            None
        }
    };
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let changes_per_s = (seq().await? - seq_before) as f64 / started.elapsed().as_secs_f64();
    let (mut seen, missed, probes) = probe.await.context("the probe")??;
    let search_ms = seen.pop().unwrap_or_default();
    let database_ms = seen.pop().unwrap_or_default();
    Ok(Phase {
        name,
        database_ms,
        search_ms,
        database_missed: missed.first().copied().unwrap_or(0),
        search_missed: missed.get(1).copied().unwrap_or(0),
        probes,
        load,
        changes_per_s,
    })
}

fn markdown(
    args: &FollowBenchArgs,
    phases: &[Phase],
    records_note: &str,
    load_before: &str,
) -> String {
    use std::fmt::Write as _;
    let ms = |v: &[f64], q: f64| quantile(v, q).map_or("—".into(), |x| format!("{x:.0}"));
    let mut s = String::new();
    let _ = writeln!(
        s,
        "`landql bench follow --records … --write-rate {} --seconds {} --probe-ms {}` — {records_note}; \
         one `landql serve` with its index follower; machine: {}; load average before: {load_before}.\n",
        args.write_rate,
        args.seconds,
        args.probe_ms,
        machine()
    );
    let _ = writeln!(
        s,
        "A probe creates one property every {} ms; from the ledger's receipt the read model \
         (its row) and the node's `search` (its ID) are asked every 10 ms. The read model is \
         the baseline: the follower indexes what the sync worker has written, so the search \
         cannot be earlier; the difference is the follower's share. Target: searchable p99 ≤ \
         1 000 ms at 1 000 tx/s.\n",
        args.probe_ms
    );
    let _ = writeln!(
        s,
        "| phase | writes (tx/s achieved) | changes applied /s | probes | read model p50 / p99 / max ms | search p50 / p90 / p99 / max ms | not seen in {} s (read model / search) |",
        visible::LIMIT.as_secs()
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for p in phases {
        let writes = p.load.as_ref().map_or("none".into(), |l| {
            format!("{:.0} of {:.0}", l.achieved_tx_per_s, l.target_rate)
        });
        let _ = writeln!(
            s,
            "| {} | {writes} | {:.0} | {} | {} / {} / {} | {} / {} / {} / {} | {} / {} |",
            p.name,
            p.changes_per_s,
            p.probes,
            ms(&p.database_ms, 0.5),
            ms(&p.database_ms, 0.99),
            ms(&p.database_ms, 1.0),
            ms(&p.search_ms, 0.5),
            ms(&p.search_ms, 0.9),
            ms(&p.search_ms, 0.99),
            ms(&p.search_ms, 1.0),
            p.database_missed,
            p.search_missed,
        );
    }
    for p in phases {
        if let Some(l) = &p.load {
            let mut codes: Vec<(&String, &u64)> = l.by_code.iter().collect();
            codes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let codes: Vec<String> = codes.iter().map(|(c, n)| format!("{c} {n}")).collect();
            let _ = writeln!(
                s,
                "\nThe {} phase's transactions by validation code: {}. Only valid ones change a \
                 record, and so the change log the follower indexes.",
                p.name,
                codes.join(", ")
            );
        }
    }
    s
}
