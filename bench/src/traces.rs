//! `landql bench tracing`: what traces cost the API. Peak `property(id)` throughput and the
//! server's CPU per request with traces off, exported at a 0.1 % ratio, and at 100 %, in one
//! run on one dataset (target: < 5 % throughput lost at 0.1 %).
//!
//! One run:
//! 1. the backend of `bench api` (a private PostgreSQL, a seeded devnet and the sync worker
//!    until synced, or an existing synced pair);
//! 2. an OTLP/HTTP sink in this process on loopback that accepts every export and discards
//!    it (it counts requests and bytes, so the report can say that spans went out);
//! 3. for each round, for each variant — off, `--trace-sample 0.001`, `--trace-sample 1.0` —
//!    `landql serve` as a child process (the index directory kept between them, so only the
//!    first builds it), a closed-loop warm-up, then peak `property(id)` over random IDs for
//!    `--peak-seconds` on `--peak-connections` connections; the server's CPU from /proc.
//!    The variants alternate within a round so that drift in the shared machine falls on
//!    all three; each variant's best round is reported, beside every round's figure.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use migrations::sqlx;
use serde_json::json;

use crate::api::PROPERTY_QUERY;
use crate::backend::{Backend, BackendArgs};
use crate::load::http::{self as loadgen, GraphqlClient, Report};
use crate::machine::load_average;
use crate::proc::Proc;
use crate::random::pick;
use crate::server::Server;

#[derive(clap::Args)]
pub struct TracesBenchArgs {
    #[command(flatten)]
    backend: BackendArgs,
    /// Connections of the closed-loop peak.
    #[arg(long, default_value_t = 64)]
    peak_connections: usize,
    /// Seconds of each peak.
    #[arg(long, default_value_t = 10.0)]
    peak_seconds: f64,
    /// Seconds of the warm-up before each peak.
    #[arg(long, default_value_t = 3.0)]
    warm_seconds: f64,
    /// Rounds of the three variants.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// RUST_LOG of the server (as `bench api`: one access line per request, as in production).
    #[arg(long, default_value = "info,tantivy=warn")]
    server_log: String,
    #[command(flatten)]
    out: crate::BenchOut,
}

/// One way of running the server.
#[derive(Debug, Clone, Copy)]
struct Variant {
    name: &'static str,
    /// `None`: no `--otlp-endpoint`.
    ratio: Option<&'static str>,
}

const VARIANTS: [Variant; 3] = [
    Variant {
        name: "traces off",
        ratio: None,
    },
    Variant {
        name: "OTLP, --trace-sample 0.001",
        ratio: Some("0.001"),
    },
    Variant {
        name: "OTLP, --trace-sample 1.0",
        ratio: Some("1.0"),
    },
];

/// The sink's counters.
#[derive(Default)]
struct Sink {
    requests: AtomicU64,
    bytes: AtomicU64,
}

impl Sink {
    fn counts(&self) -> (u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

/// An OTLP/HTTP receiver that answers every export with an empty
/// `ExportTraceServiceResponse` (an empty protobuf message) and keeps nothing.
async fn start_sink(sink: Arc<Sink>) -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                sink.requests.fetch_add(1, Ordering::Relaxed);
                sink.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "the OTLP sink stopped");
        }
    });
    Ok((format!("http://{addr}"), task))
}

/// One variant's run.
struct Run {
    variant: usize,
    peak: Report,
    /// Server CPU per completed request, µs.
    server_us: f64,
    exports: u64,
    export_bytes: u64,
}

pub async fn run(args: TracesBenchArgs) -> anyhow::Result<()> {
    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let load_before = load_average();
    let (backend, pool) = Backend::start_settled(&args.backend).await?;
    let ids: Arc<Vec<String>> = Arc::new(
        sqlx::query_scalar("SELECT id FROM properties")
            .fetch_all(&pool)
            .await?,
    );
    pool.close().await;
    if ids.is_empty() {
        bail!("the database holds no properties");
    }
    let sink = Arc::new(Sink::default());
    let (sink_url, sink_task) = start_sink(sink.clone()).await?;
    let http = reqwest::Client::new();
    let mut runs = Vec::new();
    let result = async {
        for round in 0..args.rounds {
            for (v, variant) in VARIANTS.iter().enumerate() {
                tracing::info!(round, variant = variant.name, "starting landql serve");
                let run = measure(
                    &args,
                    &backend,
                    backend.root.path(),
                    &http,
                    &sink,
                    &sink_url,
                    v,
                    &ids,
                )
                .await?;
                tracing::info!(
                    round,
                    variant = variant.name,
                    peak = run.peak.achieved_per_s,
                    server_us = run.server_us,
                    "done"
                );
                runs.push(run);
            }
        }
        anyhow::Ok(())
    }
    .await;
    sink_task.abort();
    let records_note = backend.records_note.clone();
    backend.stop().await;
    result?;
    let body = markdown(&args, &runs, &records_note, &load_before);
    args.out
        .write("tracing", "Tracing cost (property by ID)", &body)
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    args: &TracesBenchArgs,
    backend: &Backend,
    dir: &Path,
    http: &reqwest::Client,
    sink: &Sink,
    sink_url: &str,
    variant: usize,
    ids: &Arc<Vec<String>>,
) -> anyhow::Result<Run> {
    let v = VARIANTS[variant];
    let mut flags: Vec<&str> = Vec::new();
    if let Some(ratio) = v.ratio {
        flags.extend(["--otlp-endpoint", sink_url, "--trace-sample", ratio]);
    }
    let mut server = Server::start(backend, dir, &args.server_log, &flags).await?;
    let measured = async {
        server.wait_ready(http).await?;
        let client = GraphqlClient::new(&format!("{}/graphql", server.base))?;
        let property = {
            let ids = ids.clone();
            move |i: u64| {
                let id = &ids[pick(i, ids.len())];
                let body =
                    json!({ "query": PROPERTY_QUERY, "variables": { "id": id } }).to_string();
                client.post(body)
            }
        };
        let warm = loadgen::closed_loop(
            args.peak_connections,
            Duration::from_secs_f64(args.warm_seconds),
            property.clone(),
        )
        .await?;
        if warm.errors > 0 {
            bail!(
                "property(id) fails during the warm-up: {}",
                warm.first_error.unwrap_or_default()
            );
        }
        let (exports_before, bytes_before) = sink.counts();
        let pid = server.pid().context("the server has exited")?;
        let cpu_before = Proc::Pid(pid).cpu_secs();
        let peak = loadgen::closed_loop(
            args.peak_connections,
            Duration::from_secs_f64(args.peak_seconds),
            property,
        )
        .await?;
        let server_us = (Proc::Pid(pid).cpu_secs() - cpu_before) * 1e6 / peak.ok.max(1) as f64;
        server.check()?;
        // The exports of the last half second of spans land after the peak; wait for them.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (exports, bytes) = sink.counts();
        anyhow::Ok(Run {
            variant,
            peak,
            server_us,
            exports: exports - exports_before,
            export_bytes: bytes - bytes_before,
        })
    }
    .await;
    server.stop().await;
    measured
}

fn markdown(args: &TracesBenchArgs, runs: &[Run], records_note: &str, load_before: &str) -> String {
    use std::fmt::Write as _;
    let best = |v: usize| {
        runs.iter()
            .filter(|r| r.variant == v)
            .max_by(|a, b| a.peak.achieved_per_s.total_cmp(&b.peak.achieved_per_s))
    };
    let off = best(0).map_or(0.0, |r| r.peak.achieved_per_s);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "`landql bench tracing` — {records_note}; peak `property(id)` over random IDs, closed \
         loop, {} connections, {} s per run after a {} s warm-up, {} round(s) of the three \
         variants alternated; the best round of each is shown. Traces go to an OTLP/HTTP sink \
         in the benchmark process that discards them (slow threshold at its default, 1 s). \
         The generator, the server, PostgreSQL and the sink share the machine's cores.\n",
        args.peak_connections, args.peak_seconds, args.warm_seconds, args.rounds
    );
    let _ = writeln!(
        s,
        "Machine: {}; load average {load_before} at the start.\n",
        crate::machine::machine()
    );
    let _ = writeln!(
        s,
        "| variant | peak req/s | vs off | p50 ms | p99 ms | server CPU µs/req | OTLP exports (bytes) | every round, req/s |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---|");
    for (v, variant) in VARIANTS.iter().enumerate() {
        let Some(r) = best(v) else { continue };
        let all: Vec<String> = runs
            .iter()
            .filter(|x| x.variant == v)
            .map(|x| format!("{:.0}", x.peak.achieved_per_s))
            .collect();
        let vs = if v == 0 || off <= 0.0 {
            "—".to_string()
        } else {
            format!("{:+.1} %", (r.peak.achieved_per_s / off - 1.0) * 100.0)
        };
        let _ = writeln!(
            s,
            "| {} | {:.0} | {} | {:.2} | {:.2} | {:.0} | {} ({:.1} MB) | {} |",
            variant.name,
            r.peak.achieved_per_s,
            vs,
            r.peak.p50_ms,
            r.peak.p99_ms,
            r.server_us,
            r.exports,
            r.export_bytes as f64 / 1e6,
            all.join(", ")
        );
    }
    s
}
