//! `landql bench tracing`: what traces cost the API. Peak `property(id)` throughput and the
//! server's CPU per request with traces off, exported at a 0.1 % ratio, and at 100 %, in one
//! run on one dataset (target: < 5 % throughput lost at 0.1 %).
//!
//! One run:
//! 1. the backend of `bench api` (a private PostgreSQL, a seeded devnet and the sync worker
//!    until synced, or an existing synced pair);
//! 2. one OTLP/HTTP sink per variant in this process on loopback, each accepting every
//!    export and discarding it (it counts requests and bytes, so the report can say that
//!    spans went out);
//! 3. one `landql serve` child process per variant — off, `--trace-sample 0.001`,
//!    `--trace-sample 1.0` — all running at once, each with its own index directory, and a
//!    closed-loop warm-up of each;
//! 4. `--cycles` cycles of short closed-loop slices of peak `property(id)` over random IDs,
//!    one slice per variant, on `--connections` connections, each cycle starting one
//!    variant later; the loaded server's CPU from /proc over its slice. Only one server is
//!    loaded at a time; the others sit idle.
//!
//! Why slices and not one long run per variant: this machine drifts by ±10 % from one
//! minute to the next (checkpoints, autovacuum, the shared cores), far more than the 5 %
//! being measured. Adjacent slices share the drift, so each variant is compared with the
//! off slice of the same cycle, and the median (with the quartiles) of those ratios over
//! the cycles is reported.

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
    /// Connections of each closed-loop slice.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds of each slice (shorter slices drift less apart but each is noisier: at 3 s
    /// one slice's throughput ranged ±20 % of the median here).
    #[arg(long, default_value_t = 10.0)]
    slice_seconds: f64,
    /// Seconds of each server's warm-up.
    #[arg(long, default_value_t = 5.0)]
    warm_seconds: f64,
    /// Cycles of one slice per variant (a multiple of 3 puts each variant in each position
    /// equally often).
    #[arg(long, default_value_t = 9)]
    cycles: usize,
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

/// One slice of one variant.
struct Run {
    variant: usize,
    cycle: usize,
    peak: Report,
    /// Server CPU per completed request, µs.
    server_us: f64,
}

/// A variant's server and its sink.
struct Running {
    server: Server,
    sink: Arc<Sink>,
    sink_task: tokio::task::JoinHandle<()>,
}

pub async fn run(args: TracesBenchArgs) -> anyhow::Result<()> {
    if args.cycles == 0 {
        bail!("--cycles must be at least 1");
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
    let http = reqwest::Client::new();
    let mut variants: Vec<Running> = Vec::new();
    let mut runs = Vec::new();
    let result = async {
        for (v, variant) in VARIANTS.iter().enumerate() {
            let sink = Arc::new(Sink::default());
            let (sink_url, sink_task) = start_sink(sink.clone()).await?;
            let dir = backend.root.path().join(format!("variant-{v}"));
            std::fs::create_dir_all(&dir)?;
            let mut flags: Vec<&str> = Vec::new();
            if let Some(ratio) = variant.ratio {
                flags.extend(["--otlp-endpoint", &sink_url, "--trace-sample", ratio]);
            }
            tracing::info!(variant = variant.name, "starting landql serve");
            let server = Server::start(&backend, &dir, &args.server_log, &flags).await?;
            variants.push(Running {
                server,
                sink,
                sink_task,
            });
            variants[v].server.wait_ready(&http).await?;
            let warm = slice(&args, &variants[v].server, &ids, args.warm_seconds).await?;
            if warm.0.errors > 0 {
                bail!(
                    "property(id) fails during the warm-up: {}",
                    warm.0.first_error.unwrap_or_default()
                );
            }
        }
        for cycle in 0..args.cycles {
            for position in 0..VARIANTS.len() {
                let v = (cycle + position) % VARIANTS.len();
                let (peak, server_us) =
                    slice(&args, &variants[v].server, &ids, args.slice_seconds).await?;
                variants[v].server.check()?;
                tracing::info!(
                    cycle,
                    variant = VARIANTS[v].name,
                    per_s = peak.achieved_per_s,
                    server_us,
                    "slice"
                );
                runs.push(Run {
                    variant: v,
                    cycle,
                    peak,
                    server_us,
                });
            }
            tracing::info!(cycle, "cycle done");
        }
        // The exports of the last half second of spans land after the slices; wait for them.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        anyhow::Ok(())
    }
    .await;
    let exports: Vec<(u64, u64)> = variants.iter().map(|v| v.sink.counts()).collect();
    for v in variants {
        v.server.stop().await;
        v.sink_task.abort();
    }
    let records_note = backend.records_note.clone();
    backend.stop().await;
    result?;
    let body = markdown(&args, &runs, &exports, &records_note, &load_before);
    args.out
        .write("tracing", "Tracing cost (property by ID)", &body)
}

/// One closed-loop slice of `property(id)` against `server`: the load report and the
/// server's CPU per completed request (µs).
async fn slice(
    args: &TracesBenchArgs,
    server: &Server,
    ids: &Arc<Vec<String>>,
    seconds: f64,
) -> anyhow::Result<(Report, f64)> {
    let client = GraphqlClient::new(&format!("{}/graphql", server.base))?;
    let property = {
        let ids = ids.clone();
        move |i: u64| {
            let id = &ids[pick(i, ids.len())];
            let body = json!({ "query": PROPERTY_QUERY, "variables": { "id": id } }).to_string();
            client.post(body)
        }
    };
    let pid = server.pid().context("the server has exited")?;
    let cpu_before = Proc::Pid(pid).cpu_secs();
    let peak =
        loadgen::closed_loop(args.connections, Duration::from_secs_f64(seconds), property).await?;
    let server_us = (Proc::Pid(pid).cpu_secs() - cpu_before) * 1e6 / peak.ok.max(1) as f64;
    if peak.errors > 0 {
        bail!(
            "property(id) failed {} times: {}",
            peak.errors,
            peak.first_error.unwrap_or_default()
        );
    }
    Ok((peak, server_us))
}

/// The quantile `q` (0 to 1) of `xs`, by linear interpolation; `None` when empty.
fn quantile(mut xs: Vec<f64>, q: f64) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let at = q.clamp(0.0, 1.0) * (xs.len() - 1) as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    Some(xs[lo] + (xs[hi] - xs[lo]) * (at - lo as f64))
}

fn median(xs: Vec<f64>) -> Option<f64> {
    quantile(xs, 0.5)
}

fn markdown(
    args: &TracesBenchArgs,
    runs: &[Run],
    exports: &[(u64, u64)],
    records_note: &str,
    load_before: &str,
) -> String {
    use std::fmt::Write as _;
    let of = |v: usize| runs.iter().filter(move |r| r.variant == v);
    // A variant's figure over the off slice of the same cycle, per cycle.
    let paired = |v: usize, figure: fn(&Run) -> f64| -> Vec<f64> {
        of(v)
            .filter_map(|r| {
                let off = figure(of(0).find(|o| o.cycle == r.cycle)?);
                (off > 0.0).then(|| figure(r) / off)
            })
            .collect()
    };
    // "−4.1 % (−7.0 … −1.2)": the median ratio and its quartiles, as changes.
    let change = |xs: Vec<f64>| -> String {
        let pct = |x: f64| format!("{:+.1} %", (x - 1.0) * 100.0);
        match (
            median(xs.clone()),
            quantile(xs.clone(), 0.25),
            quantile(xs, 0.75),
        ) {
            (Some(m), Some(a), Some(b)) => format!("{} ({} … {})", pct(m), pct(a), pct(b)),
            _ => "—".to_string(),
        }
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "`landql bench tracing` — {records_note}; one `landql serve` per variant, all running, \
         each warmed up for {} s; then {} cycles of one {} s closed-loop slice of peak \
         `property(id)` over random IDs per variant ({} connections), each cycle starting \
         one variant later. *vs off* is the median over the cycles of the variant's figure \
         divided by the same cycle's off slice, with the quartiles in brackets (the machine \
         drifts more between minutes than the cost measured). Traces go to an OTLP/HTTP sink \
         per variant in the benchmark process that discards them (slow threshold at its \
         default, 1 s). The generator, the servers, PostgreSQL and the sinks share the \
         machine's cores.\n",
        args.warm_seconds, args.cycles, args.slice_seconds, args.connections
    );
    let _ = writeln!(
        s,
        "Machine: {}; load average {load_before} at the start.\n",
        crate::machine::machine()
    );
    let _ = writeln!(
        s,
        "| variant | req/s (median) | req/s vs off | server CPU µs/req (median) | CPU vs off | p50 / p99 ms (median) | OTLP exports (bytes) |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
    for (v, variant) in VARIANTS.iter().enumerate() {
        let figures = |f: fn(&Run) -> f64| median(of(v).map(f).collect());
        let Some(rate) = figures(|r| r.peak.achieved_per_s) else {
            continue;
        };
        let (vs, cpu_vs) = if v == 0 {
            ("—".to_string(), "—".to_string())
        } else {
            (
                change(paired(v, |r| r.peak.achieved_per_s)),
                change(paired(v, |r| r.server_us)),
            )
        };
        let (n, bytes) = exports.get(v).copied().unwrap_or_default();
        let _ = writeln!(
            s,
            "| {} | {:.0} | {} | {:.0} | {} | {:.2} / {:.2} | {} ({:.1} MB) |",
            variant.name,
            rate,
            vs,
            figures(|r| r.server_us).unwrap_or(0.0),
            cpu_vs,
            figures(|r| r.peak.p50_ms).unwrap_or(0.0),
            figures(|r| r.peak.p99_ms).unwrap_or(0.0),
            n,
            bytes as f64 / 1e6,
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_and_medians_of_even_counts_are_the_middle_pair_s_mean() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(quantile(vec![1.0, 2.0, 3.0, 4.0, 5.0], 0.25), Some(2.0));
        assert_eq!(quantile(vec![1.0, 3.0], 0.75), Some(2.5));
        assert_eq!(quantile(vec![7.0], 0.9), Some(7.0));
        assert_eq!(median(Vec::new()), None);
    }
}
