//! `landql bench limits`: a burst of 10× a role's rate limit (design/targets.md, "survival":
//! 429s with Retry-After, no 5xx, admitted requests stay fast).
//!
//! One run, on the data of `bench api` (a private seeded and synced pair, or an existing
//! one), with `landql serve` as a child process whose anonymous rate limit is `--limit`:
//! 1. **quiet**: a well-behaved anonymous client (source address 127.0.0.2) asks for
//!    `property(id)` at half the limit, open loop — its latency with nobody else around;
//! 2. **burst**: the same client at the same rate, while another anonymous client (source
//!    address 127.0.0.3) sends `--factor` × the limit. The flood must get 429s with
//!    `Retry-After` and no 5xx, be admitted at about the limit, and leave the well-behaved
//!    client's latency where it was.
//!
//! Rate limits are per client address for anonymous callers, so the two clients are told
//! apart by their loopback source addresses (all of 127/8 is local on Linux).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use migrations::sqlx;
use serde_json::json;

use crate::backend::{Backend, BackendArgs};
use crate::load::http::{self as loadgen, Report};
use crate::machine::{load_average, machine};
use crate::random::pick;
use crate::server::Server;

#[derive(clap::Args)]
pub struct LimitsBenchArgs {
    #[command(flatten)]
    backend: BackendArgs,
    /// The anonymous role's rate limit the server runs with (requests per second per
    /// client address).
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// The flood sends this many times the limit.
    #[arg(long, default_value_t = 10.0)]
    factor: f64,
    /// Seconds of each phase.
    #[arg(long, default_value_t = 15.0)]
    seconds: f64,
    #[command(flatten)]
    out: crate::BenchOut,
}

const QUERY: &str = "query Property($id: ID!) { property(id: $id) { id surveyNo \
    location { district village } owners { sharePct owner { name } } } }";

/// What one client's answers were, by kind.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    limited: AtomicU64,
    /// 429s without a usable `Retry-After`.
    limited_bare: AtomicU64,
    server_errors: AtomicU64,
    other: AtomicU64,
    first_other: Mutex<Option<String>>,
    /// Latency of the admitted (200) answers, send to answer, in µs.
    admitted: Mutex<Option<Histogram<u64>>>,
}

impl Tally {
    fn new() -> anyhow::Result<Arc<Tally>> {
        let t = Tally::default();
        *t.admitted.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Histogram::new_with_bounds(1, 60_000_000, 3)?);
        Ok(Arc::new(t))
    }

    fn admitted_ms(&self, q: f64) -> f64 {
        self.admitted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map_or(0.0, |h| h.value_at_quantile(q) as f64 / 1000.0)
    }

    fn n(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// A client whose connections come from `source`, counting what it gets into `tally`.
fn client(
    url: &str,
    source: IpAddr,
    ids: Arc<Vec<String>>,
    tally: Arc<Tally>,
) -> anyhow::Result<impl Fn(u64) -> futures::future::BoxFuture<'static, Result<(), String>> + Clone>
{
    let http = reqwest::Client::builder()
        .local_address(source)
        .tcp_nodelay(true)
        .timeout(loadgen::REQUEST_TIMEOUT)
        .build()?;
    let url: Arc<str> = Arc::from(url);
    Ok(move |i: u64| {
        let id = ids[pick(i, ids.len())].clone();
        let req = http
            .post(&*url)
            .header("content-type", "application/json")
            .body(json!({ "query": QUERY, "variables": { "id": id } }).to_string());
        let tally = tally.clone();
        let fut = async move {
            let sent = Instant::now();
            let resp = req.send().await.map_err(|e| format!("send: {e}"))?;
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let body = resp.bytes().await.map_err(|e| format!("read: {e}"))?;
            let text = String::from_utf8_lossy(&body);
            match status {
                200 if !text.contains("\"errors\"") => {
                    tally.ok.fetch_add(1, Ordering::Relaxed);
                    let us = sent.elapsed().as_micros() as u64;
                    if let Some(h) = tally
                        .admitted
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .as_mut()
                    {
                        let _ = h.record(us.clamp(1, 60_000_000));
                    }
                    Ok(())
                }
                429 if text.contains("RATE_LIMITED") => {
                    tally.limited.fetch_add(1, Ordering::Relaxed);
                    if retry_after.is_none_or(|s| s == 0) {
                        tally.limited_bare.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                }
                s if s >= 500 => {
                    tally.server_errors.fetch_add(1, Ordering::Relaxed);
                    Err(format!("HTTP {s}: {}", &text[..text.len().min(200)]))
                }
                s => {
                    tally.other.fetch_add(1, Ordering::Relaxed);
                    let mut first = tally.first_other.lock().unwrap_or_else(|p| p.into_inner());
                    if first.is_none() {
                        *first = Some(format!("HTTP {s}: {}", &text[..text.len().min(200)]));
                    }
                    Err(format!("HTTP {s}"))
                }
            }
        };
        Box::pin(fut) as futures::future::BoxFuture<'static, Result<(), String>>
    })
}

pub async fn run(args: LimitsBenchArgs) -> anyhow::Result<()> {
    if args.limit == 0 || args.factor < 1.0 || args.seconds <= 0.0 {
        bail!("--limit must be at least 1, --factor at least 1 and --seconds positive");
    }
    let load_before = load_average();
    let backend = Backend::start(&args.backend).await?;
    let pool = migrations::connect(&backend.database_url).await?;
    backend.wait_synced(&pool).await?;
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
    let limit_arg = format!("anonymous={}", args.limit);
    let mut server = Server::start(
        &backend,
        backend.root.path(),
        "warn",
        &["--rate-limit", &limit_arg],
    )
    .await?;
    let result = measure(&args, &ids, &http, &mut server).await;
    server.stop().await;
    let records_note = backend.records_note.clone();
    backend.stop().await;
    let m = result?;

    let polite_rate = f64::from(args.limit) / 2.0;
    let flood_rate = f64::from(args.limit) * args.factor;
    let mut s = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(
        s,
        "Machine: {}; load average {load_before} at the start, {} at the end.",
        machine(),
        load_average()
    );
    let _ = writeln!(
        s,
        "Data: {records_note}. `landql serve` (child process, log filter `warn`) with \
         `--rate-limit anonymous={}`; anonymous clients are limited per address, so the two \
         clients send from different loopback addresses. Both ask for `property(id)` of \
         random existing IDs, open loop for {:.0} s per phase. Latency of the polite client \
         is from each request's due time; of the flood's admitted requests, from sending.\n",
        args.limit, args.seconds
    );
    let _ = writeln!(
        s,
        "| phase | client | offered | 200 | 429 (with Retry-After) | 5xx | other | admitted/s | p50 ms | p99 ms | max ms |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    let polite_row = |phase: &str, r: &Report, t: &Tally| {
        format!(
            "| {phase} | polite, {polite_rate:.0}/s | {} | {} | {} ({}) | {} | {} | {:.1} | {:.2} | {:.2} | {:.2} |",
            r.sent,
            Tally::n(&t.ok),
            Tally::n(&t.limited),
            Tally::n(&t.limited) - Tally::n(&t.limited_bare),
            Tally::n(&t.server_errors),
            Tally::n(&t.other),
            Tally::n(&t.ok) as f64 / r.seconds.max(1e-9),
            r.p50_ms,
            r.p99_ms,
            r.max_ms
        )
    };
    let _ = writeln!(s, "{}", polite_row("quiet", &m.quiet, &m.quiet_tally));
    let _ = writeln!(s, "{}", polite_row("burst", &m.polite, &m.polite_tally));
    let f = &m.flood_tally;
    let _ = writeln!(
        s,
        "| burst | flood, {flood_rate:.0}/s ({}× the limit) | {} | {} | {} ({}) | {} | {} | {:.1} | {:.2} | {:.2} | {:.2} |",
        args.factor,
        m.flood.sent,
        Tally::n(&f.ok),
        Tally::n(&f.limited),
        Tally::n(&f.limited) - Tally::n(&f.limited_bare),
        Tally::n(&f.server_errors),
        Tally::n(&f.other),
        Tally::n(&f.ok) as f64 / m.flood.seconds.max(1e-9),
        f.admitted_ms(0.5),
        f.admitted_ms(0.99),
        f.admitted_ms(1.0),
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "- The polite client's p99 went from {:.2} ms (quiet) to {:.2} ms during the burst.",
        m.quiet.p99_ms, m.polite.p99_ms
    );
    if let Some(e) = f
        .first_other
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
    {
        let _ = writeln!(s, "- First unexpected answer to the flood: `{e}`.");
    }
    args.out.write("limits", "Rate limits under a burst", &s)
}

struct Measured {
    quiet: Report,
    quiet_tally: Arc<Tally>,
    polite: Report,
    polite_tally: Arc<Tally>,
    flood: Report,
    flood_tally: Arc<Tally>,
}

async fn measure(
    args: &LimitsBenchArgs,
    ids: &Arc<Vec<String>>,
    http: &reqwest::Client,
    server: &mut Server,
) -> anyhow::Result<Measured> {
    server.wait_ready(http).await?;
    let url = format!("{}/graphql", server.base);
    let polite_ip: IpAddr = [127, 0, 0, 2].into();
    let flood_ip: IpAddr = [127, 0, 0, 3].into();
    let seconds = Duration::from_secs_f64(args.seconds);
    let polite_rate = f64::from(args.limit) / 2.0;

    // Warm the caches and connections, from an address of its own.
    let warm = Tally::new()?;
    let warm_client = client(&url, [127, 0, 0, 4].into(), ids.clone(), warm.clone())?;
    loadgen::open_loop(polite_rate, Duration::from_secs(3), 256, warm_client).await?;
    server.check()?;

    tracing::info!(rate = polite_rate, "quiet phase");
    let quiet_tally = Tally::new()?;
    let quiet = loadgen::open_loop(
        polite_rate,
        seconds,
        256,
        client(&url, polite_ip, ids.clone(), quiet_tally.clone())?,
    )
    .await?;
    server.check()?;
    // Let the polite client's bucket refill before it is measured again.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let flood_rate = f64::from(args.limit) * args.factor;
    tracing::info!(polite = polite_rate, flood = flood_rate, "burst phase");
    let polite_tally = Tally::new()?;
    let flood_tally = Tally::new()?;
    let (polite, flood) = tokio::join!(
        loadgen::open_loop(
            polite_rate,
            seconds,
            256,
            client(&url, polite_ip, ids.clone(), polite_tally.clone())?,
        ),
        loadgen::open_loop(
            flood_rate,
            seconds,
            1024,
            client(&url, flood_ip, ids.clone(), flood_tally.clone())?,
        ),
    );
    server.check().context("the server during the burst")?;
    Ok(Measured {
        quiet,
        quiet_tally,
        polite: polite?,
        polite_tally,
        flood: flood?,
        flood_tally,
    })
}
