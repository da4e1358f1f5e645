//! `landql bench ledger`: the devnet's figures — offline seeding and live submission — each
//! beside a baseline measured in the same run on the same disk.
//!
//! - Seeding is set against the raw cost of writing the same log bytes (write + fsync of
//!   a copy, past the page cache as the seeder writes, and through it for reference): the
//!   gap is what chaincode, hashing, signing and JSON cost.
//! - Live load is set against the disk's fsync latency, the floor under any commit
//!   latency since a block is synced before it is announced.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use devnet::bulk_io::{open_direct, Chunk, CHUNK};
use devnet::{seed, DevnetConfig, Node};

use crate::load::ledger::{self as loadgen, LoadOptions, LoadReport};
use crate::proc::Proc;

/// `landql bench ledger`'s flags.
#[derive(clap::Args)]
pub struct LedgerBenchArgs {
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Load rates to try, tx/s.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1000.0, 5000.0, 8000.0])]
    rates: Vec<f64>,
    /// Seconds at each rate.
    #[arg(long, default_value_t = 15.0)]
    seconds: f64,
    #[command(flatten)]
    out: crate::BenchOut,
}

/// `landql bench ledger`: runs the benchmark and writes its section. The binary tunes its
/// allocator for bulk jobs before calling this.
pub async fn run(args: LedgerBenchArgs) -> anyhow::Result<()> {
    let opts = LedgerBenchOptions {
        records: args.records,
        load_rates: args.rates,
        load_seconds: args.seconds,
    };
    let body = measure(&opts).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    args.out.write("ledger", "Devnet ledger", &body)
}

#[derive(Debug, Clone)]
pub struct LedgerBenchOptions {
    pub records: u64,
    pub load_rates: Vec<f64>,
    pub load_seconds: f64,
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Copies every log in `from` to `to`, timing only the writing: in 4 MiB chunks, past the
/// page cache (`O_DIRECT`, as the seeder writes) when `direct` and the file system allows
/// it, else through it; then one fsync per file. The raw write baselines.
fn raw_copy(from: &Path, to: &Path, direct: bool) -> std::io::Result<(u64, Duration)> {
    use std::io::Read as _;
    use std::os::unix::fs::FileExt as _;

    std::fs::create_dir_all(to)?;
    let mut chunk = Chunk::new();
    let mut writing = Duration::ZERO;
    let mut bytes = 0;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let mut src = std::fs::File::open(e.path())?;
        let path = to.join(e.file_name());
        let buffered = std::fs::File::create(&path)?;
        let fast = if direct { open_direct(&path) } else { None };
        let mut offset = 0u64;
        loop {
            // Fill the chunk (untimed); only a file's last chunk comes up short.
            let buf = chunk.bytes();
            let mut n = 0;
            while n < buf.len() {
                match src.read(&mut buf[n..])? {
                    0 => break,
                    k => n += k,
                }
            }
            if n == 0 {
                break;
            }
            let t = Instant::now();
            match (&fast, n == CHUNK) {
                (Some(f), true) => f.write_all_at(buf, offset)?,
                _ => buffered.write_all_at(&buf[..n], offset)?,
            }
            writing += t.elapsed();
            offset += n as u64;
        }
        let t = Instant::now();
        buffered.sync_all()?;
        writing += t.elapsed();
        bytes += offset;
    }
    Ok((bytes, writing))
}

/// Median latency of appending a 256 KiB block-sized frame and syncing it.
fn fsync_latency(dir: &Path) -> std::io::Result<Duration> {
    let mut f = std::fs::File::create(dir.join("fsync.probe"))?;
    let chunk = vec![7u8; 256 * 1024];
    let mut times = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        f.write_all(&chunk)?;
        f.sync_data()?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// Runs the benchmark and returns its markdown section.
pub async fn measure(opts: &LedgerBenchOptions) -> Result<String, Box<dyn std::error::Error>> {
    let tmp = tempfile::Builder::new().prefix("landql-bench-").tempdir()?;
    let data = tmp.path().join("ledger");
    let mut md = String::new();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    writeln!(
        md,
        "Machine: {cores} cores; data in {}; figures from one run.\n",
        tmp.path().display()
    )?;

    // 1. Offline seed.
    let seed_opts = seed::SeedOptions {
        records: opts.records,
        ..seed::SeedOptions::default()
    };
    let data2 = data.clone();
    let report =
        tokio::task::spawn_blocking(move || seed::seed(&data2, &seed_opts, |_| {})).await??;
    let secs = report.elapsed.as_secs_f64();
    let channels = data.join("channels");
    let (bytes, copy) = raw_copy(&channels, &tmp.path().join("direct"), true)?;
    let copy_secs = copy.as_secs_f64().max(1e-9);
    let (_, buffered) = raw_copy(&channels, &tmp.path().join("buffered"), false)?;
    let buffered_secs = buffered.as_secs_f64();
    writeln!(md, "### Offline seed (`landql seed`)\n")?;
    writeln!(md, "| what | figure |\n|---|---|")?;
    writeln!(md, "| records | {} |", report.records)?;
    writeln!(
        md,
        "| transactions (all kinds, {} invalid) | {} |",
        report.invalid, report.transactions
    )?;
    writeln!(md, "| blocks | {} |", report.blocks)?;
    writeln!(md, "| seconds | {secs:.2} |")?;
    writeln!(
        md,
        "| **records/s** (target ≥ 100 000) | **{:.0}** |",
        report.records as f64 / secs
    )?;
    writeln!(
        md,
        "| transactions/s | {:.0} |",
        report.transactions as f64 / secs
    )?;
    writeln!(md, "| log size | {:.1} MiB |", bytes as f64 / 1048576.0)?;
    writeln!(
        md,
        "| baseline: raw write + fsync of the same bytes past the page cache (4 MiB `O_DIRECT` writes, as the seeder writes) | {copy_secs:.2} s ({:.0} MiB/s) — seeding takes {:.1}× the raw write |",
        bytes as f64 / 1048576.0 / copy_secs,
        secs / copy_secs
    )?;
    writeln!(
        md,
        "| the same through the page cache (buffered writes + fsync) | {buffered_secs:.2} s ({:.0} MiB/s) |",
        bytes as f64 / 1048576.0 / buffered_secs.max(1e-9),
    )?;

    // 2. Reopen: the node rebuilds its world state from the logs.
    let t = Instant::now();
    let (node, open) = Node::start(&data, DevnetConfig::default())?;
    let reopen = t.elapsed().as_secs_f64();
    writeln!(
        md,
        "| node start on that ledger (scan, verify links, rebuild state) | {reopen:.2} s ({:.0} tx/s) |",
        open.transactions as f64 / reopen
    )?;
    writeln!(
        md,
        "| ledger data on disk | {:.1} MiB |\n",
        dir_bytes(&data.join("channels")) as f64 / 1048576.0
    )?;

    // 3. Live load over HTTP on loopback.
    let fsync = fsync_latency(tmp.path())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(devnet::serve(node, listener, async move {
        let _ = stop_rx.await;
    }));
    writeln!(
        md,
        "### Live submission (`landql load` against `landql ledger`, loopback HTTP)\n"
    )?;
    writeln!(
        md,
        "Open-loop load: every 10 ms the proposals due are sent as one batch per channel; latency is from when a batch was due until its receipts arrived (block cut, executed, synced, answered). Mix: 2 creates per follow-up (transfers, verifications, corrections, document links, ~2% invalid). Blocks are cut at 500 transactions or 50 ms.\n"
    )?;
    writeln!(md, "| target tx/s | achieved tx/s | p50 ms | p90 ms | p99 ms | max ms | failed |\n|---|---|---|---|---|---|---|")?;
    let mut reports: Vec<LoadReport> = Vec::new();
    for (i, rate) in opts.load_rates.iter().enumerate() {
        let r = loadgen::run(&LoadOptions {
            ledger: format!("http://{addr}"),
            rate: *rate,
            duration: Duration::from_secs_f64(opts.load_seconds),
            seed: 1000 + i as u64,
            max_in_flight: 512,
            after_parcels: 0,
        })
        .await?;
        writeln!(
            md,
            "| {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            r.target_rate,
            r.achieved_tx_per_s,
            r.latency_ms_p50,
            r.latency_ms_p90,
            r.latency_ms_p99,
            r.latency_ms_max,
            r.errors
        )?;
        reports.push(r);
    }
    writeln!(
        md,
        "\nBaseline in the same run: append + fdatasync of a 256 KiB frame takes {:.2} ms (median of 50) on this disk — the floor under any commit latency. Peak RSS of the benchmark process (seeder, node and load generator together): {:.0} MiB.",
        fsync.as_secs_f64() * 1000.0,
        Proc::This.peak_rss_kib() as f64 / 1024.0
    )?;
    let _ = stop_tx.send(());
    let _ = server.await;
    Ok(md)
}
