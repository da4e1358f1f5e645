//! The sync benchmark as a program (see `bench::sync`):
//!
//! ```text
//! cargo run --release -p landql-bench --example bench_sync -- [--records N] [--seed S]
//!     [--batch-max-events N] [--batch-window-ms MS] [--live-rate R] [--live-seconds S]
//!     [--in-process] [--work-dir DIR]
//! ```
//!
//! By default the worker runs as a child process (this program re-run with `--worker`,
//! configured like `landql sync` through `LANDQL_LEDGER`, `DATABASE_URL`,
//! `LANDQL_BATCH_MAX_EVENTS`, `LANDQL_BATCH_WINDOW_MS`), so that its peak RSS is its own.
//! Prints a markdown section for BENCHMARKS.md on stdout.

use std::process::ExitCode;
use std::time::Duration;

use bench::sync::{BenchOptions, WorkerMode};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = if args.first().map(String::as_str) == Some("--worker") {
        rt.block_on(worker())
    } else {
        match parse(&args) {
            Ok(opts) => rt.block_on(async {
                let report = bench::sync::measure(&opts)
                    .await
                    .map_err(|e| e.to_string())?;
                println!("{}", report.markdown());
                Ok(())
            }),
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: &[String]) -> Result<BenchOptions, String> {
    let mut opts = BenchOptions {
        worker: WorkerMode::Command {
            program: std::env::current_exe().map_err(|e| e.to_string())?,
            args: vec!["--worker".into()],
        },
        ..BenchOptions::default()
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        let num = |v: String| v.parse::<f64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--records" => opts.records = num(value()?)? as u64,
            "--seed" => opts.seed = num(value()?)? as u64,
            "--batch-max-events" => opts.batch_max_events = num(value()?)? as usize,
            "--batch-window-ms" => opts.batch_window = Duration::from_millis(num(value()?)? as u64),
            "--live-rate" => opts.live_rate = num(value()?)?,
            "--live-seconds" => opts.live_duration = Duration::from_secs_f64(num(value()?)?),
            "--work-dir" => opts.work_dir = Some(value()?.into()),
            "--in-process" => opts.worker = WorkerMode::InProcess,
            other => return Err(format!("unknown flag {other}; see the example's docs")),
        }
    }
    Ok(opts)
}

/// `--worker`: the sync worker alone, configured like `landql sync`, until SIGTERM/SIGINT.
async fn worker() -> Result<(), String> {
    let env = |k: &str| std::env::var(k).map_err(|_| format!("{k} is not set"));
    let num = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let opts = sync::SyncOptions {
        ledger_url: env("LANDQL_LEDGER")?,
        database_url: env("DATABASE_URL")?,
        orderer_key: None,
        batch_max_events: num("LANDQL_BATCH_MAX_EVENTS", 5000) as usize,
        batch_window: Duration::from_millis(num("LANDQL_BATCH_WINDOW_MS", 50)),
        metrics_listen: None,
        bulk_min_events: num("LANDQL_BULK_MIN_EVENTS", 100_000),
    };
    sync::run(opts, async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
    })
    .await
    .map_err(|e| e.to_string())
}
