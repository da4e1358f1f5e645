//! `landql load`: a live load generator at a fixed rate, with the devnet's realistic mix.
//!
//! Open loop: every tick (10 ms) the proposals due by then are sent as one batch per
//! channel, whatever the ledger's answers are doing, so a slow ledger shows up as latency
//! and a falling achieved rate rather than as a politely slower client. Commit latency is
//! measured from when a batch was *due*, not when it was sent, so that queueing inside the
//! generator is not hidden (no coordinated omission).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use devnet::chaincode::CreateArgs;
use devnet::generate::{proposal_state, DemoData, Generator, Target};
use ledger::client::{HttpLedger, Ledger, LedgerError};
use ledger::model::{channels, Proposal, Record, TxKind, Validation, VerificationStatus};

/// `landql load`'s flags.
#[derive(clap::Args)]
pub struct LoadArgs {
    /// The ledger's HTTP API.
    #[arg(long, env = "LANDQL_LEDGER", default_value = "http://127.0.0.1:7050")]
    ledger: String,
    /// Proposals per second.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seed of the generator.
    #[arg(long, default_value_t = 2)]
    seed: u64,
    /// Batches waiting for their block at once, at most.
    #[arg(long, default_value_t = 256)]
    max_in_flight: usize,
    /// Number new parcels after the first N of every village: against a ledger seeded with
    /// fewer than N parcels a village, every create is then a new parcel (else the first
    /// ones repeat the seeded survey numbers and are refused as DUPLICATE_PARCEL).
    #[arg(long, default_value_t = 0)]
    after_parcels: u32,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// `landql load`: runs the load and prints what the ledger achieved.
pub async fn command(args: LoadArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let opts = LoadOptions {
        ledger: args.ledger.clone(),
        rate: args.rate,
        duration: Duration::from_secs_f64(args.duration),
        seed: args.seed,
        max_in_flight: args.max_in_flight,
        after_parcels: args.after_parcels,
    };
    let r = run(&opts)
        .await
        .with_context(|| format!("loading {}", args.ledger))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "target {:.0} tx/s for {:.1}s: {} submitted, {} committed, achieved {:.0} tx/s; \
             commit latency p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
             {} failed, {} ticks skipped; codes {:?}",
            r.target_rate,
            r.seconds,
            r.submitted,
            r.committed,
            r.achieved_tx_per_s,
            r.latency_ms_p50,
            r.latency_ms_p90,
            r.latency_ms_p99,
            r.latency_ms_max,
            r.errors,
            r.skipped_ticks,
            r.by_code
        );
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub ledger: String,
    /// Proposals per second.
    pub rate: f64,
    pub duration: Duration,
    pub seed: u64,
    /// Batches that may be waiting for their block at once; past it the generator drops
    /// ticks (and counts them) rather than pile up unbounded work.
    pub max_in_flight: usize,
    /// New parcels are numbered after the first this many of every village
    /// (`Generator::after_parcels`); 0: from the first.
    pub after_parcels: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub target_rate: f64,
    pub seconds: f64,
    pub submitted: u64,
    pub committed: u64,
    pub achieved_tx_per_s: f64,
    pub by_code: HashMap<String, u64>,
    pub errors: u64,
    pub skipped_ticks: u64,
    pub latency_ms_p50: f64,
    pub latency_ms_p90: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_max: f64,
}

const TICK: Duration = Duration::from_millis(10);

struct Shared {
    gen: Mutex<Generator>,
    hist: Mutex<Histogram<u64>>,
    codes: Mutex<HashMap<String, u64>>,
    committed: std::sync::atomic::AtomicU64,
    errors: std::sync::atomic::AtomicU64,
}

/// Runs the load and reports what the ledger achieved.
pub async fn run(opts: &LoadOptions) -> Result<LoadReport, LedgerError> {
    use std::sync::atomic::Ordering::Relaxed;
    let ledger = Arc::new(HttpLedger::new(&opts.ledger, Duration::from_secs(10))?);
    let info = ledger.info().await?;
    let regional: Vec<String> = info
        .channels
        .iter()
        .filter(|c| c.name.starts_with("land-registry-region-"))
        .map(|c| c.name.clone())
        .collect();
    let route = move |target: Target, p: &Proposal| -> String {
        match target {
            Target::Docs => channels::DOCS.to_string(),
            Target::Records => {
                let st = proposal_state(p).unwrap_or_default();
                let r = channels::regional(st);
                if regional.contains(&r) {
                    r
                } else {
                    channels::PRIMARY.to_string()
                }
            }
        }
    };
    let shared = Arc::new(Shared {
        gen: Mutex::new(
            Generator::new(opts.seed, DemoData::embedded()).after_parcels(opts.after_parcels),
        ),
        hist: Mutex::new(
            Histogram::new_with_bounds(1, 600_000_000, 3)
                .map_err(|e| LedgerError::Decode(format!("histogram: {e}")))?,
        ),
        codes: Mutex::new(HashMap::new()),
        committed: 0.into(),
        errors: 0.into(),
    });
    let slots = Arc::new(Semaphore::new(opts.max_in_flight.max(1)));
    let start = Instant::now();
    let mut due = 0.0f64;
    let mut submitted = 0u64;
    let mut skipped = 0u64;
    let mut tasks = tokio::task::JoinSet::new();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tick_no = 0u64;
    while start.elapsed() < opts.duration {
        ticker.tick().await;
        tick_no += 1;
        let due_at = start + TICK * tick_no as u32;
        due += opts.rate * TICK.as_secs_f64();
        let n = due.floor() as usize;
        due -= n as f64;
        if n == 0 {
            continue;
        }
        let mut batches: HashMap<String, Vec<Proposal>> = HashMap::new();
        {
            let mut gen = shared.gen.lock().unwrap_or_else(|p| p.into_inner());
            for _ in 0..n {
                // Two creates for each follow-up, so the pool of known records grows.
                let (target, p) = if gen.remembered() < 100 || !submitted.is_multiple_of(3) {
                    (Target::Records, gen.create())
                } else {
                    gen.follow_up()
                        .unwrap_or_else(|| (Target::Records, gen.create()))
                };
                submitted += 1;
                batches.entry(route(target, &p)).or_default().push(p);
            }
        }
        for (channel, proposals) in batches {
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                skipped += 1;
                continue;
            };
            let (ledger, shared) = (ledger.clone(), shared.clone());
            tasks.spawn(async move {
                let _permit = permit;
                let result = ledger.submit(&channel, &proposals).await;
                let waited = due_at.elapsed().as_micros() as u64;
                match result {
                    Ok(receipts) => {
                        if let Ok(mut h) = shared.hist.lock() {
                            for _ in &receipts {
                                let _ = h.record(waited.max(1));
                            }
                        }
                        shared.committed.fetch_add(receipts.len() as u64, Relaxed);
                        let mut fetch = Vec::new();
                        {
                            let mut codes = shared.codes.lock().unwrap_or_else(|p| p.into_inner());
                            let mut gen = shared.gen.lock().unwrap_or_else(|p| p.into_inner());
                            for (p, r) in proposals.iter().zip(&receipts) {
                                *codes.entry(r.validation.as_str().to_string()).or_default() += 1;
                                if r.validation != Validation::Valid {
                                    continue;
                                }
                                match (p.kind, &r.property_id) {
                                    (TxKind::CreateLandRecord, Some(id)) => {
                                        if let Some(rec) = record_from_create(p, id) {
                                            gen.remember(&rec, r.tx_id);
                                        }
                                    }
                                    (TxKind::LinkDocumentHash, _) => {}
                                    (_, Some(id)) => fetch.push(id.clone()),
                                    _ => {}
                                }
                            }
                        }
                        // Learn the new version of records that follow-ups changed.
                        for id in fetch {
                            if let Ok(pid) = id.parse() {
                                if let Ok(Some(v)) = ledger.record(&pid).await {
                                    if let Ok(rec) = serde_json::from_value::<Record>(v.record) {
                                        let mut gen =
                                            shared.gen.lock().unwrap_or_else(|p| p.into_inner());
                                        gen.remember(&rec, v.version.tx_id);
                                    }
                                }
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "submission failed");
                        shared.errors.fetch_add(proposals.len() as u64, Relaxed);
                    }
                }
            });
        }
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let seconds = start.elapsed().as_secs_f64();
    let hist = shared.hist.lock().unwrap_or_else(|p| p.into_inner());
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let committed = shared.committed.load(Relaxed);
    Ok(LoadReport {
        target_rate: opts.rate,
        seconds,
        submitted,
        committed,
        achieved_tx_per_s: committed as f64 / seconds,
        by_code: shared.codes.lock().map(|c| c.clone()).unwrap_or_default(),
        errors: shared.errors.load(Relaxed),
        skipped_ticks: skipped,
        latency_ms_p50: ms(0.50),
        latency_ms_p90: ms(0.90),
        latency_ms_p99: ms(0.99),
        latency_ms_max: hist.max() as f64 / 1000.0,
    })
}

/// The record a valid create wrote, rebuilt from its arguments and receipt (times are not
/// known here and not needed by follow-ups).
fn record_from_create(p: &Proposal, id: &str) -> Option<Record> {
    let args = CreateArgs::deserialize(&p.args).ok()?;
    Some(args.into_record(id.parse().ok()?, VerificationStatus::Pending, 0))
}
