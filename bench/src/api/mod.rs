//! `landql bench api`: the GraphQL API under load (design/targets.md, "property by ID",
//! "search", "memory"), with the direct-SQL floor measured in the same run.
//!
//! One run:
//! 1. a private PostgreSQL, a devnet seeded with `--records` records (served in-process on
//!    loopback) and the sync worker (in-process) until every channel's checkpoint is at the
//!    tip — or, with `--database-url` and `--ledger`, an existing synced pair (e.g. the one
//!    `landql dev` runs);
//! 2. `landql serve` as a child process on a free loopback port with a new, empty index
//!    directory (so its follower rebuilds the index from PostgreSQL, timed), until
//!    `/readyz` is 200 and `_meta.searchIndexSeq` has reached `changeLogSeq`;
//! 3. with `bench::load::http` (open loop, latency from each request's due time; keep-alive
//!    connections): a warm-up; `property(id)` over random existing IDs at `--rate`; the same
//!    lookup as one SQL statement through a sqlx pool at the same rate (the floor the API
//!    adds to); peak `property(id)` throughput, closed loop over `--peak-connections`; a
//!    district-filtered `properties` page (first 20, owners and documents) at `--page-rate`;
//!    `search` with names, places and survey numbers from the data at `--search-rate`,
//!    after a 5 s warm-up at that rate (its figures and the server's major page faults are
//!    reported) — last, because searches the server cannot keep up with go on running
//!    after their clients gave up, and would slow whatever came next;
//! 4. the server's peak RSS (`VmHWM` of the child — the server alone, its index follower
//!    included) and its cache and SQL counters from `/metrics`.
//!
//! The generator, the server, PostgreSQL and the idle ledger and sync worker share the
//! machine, as they would on a one-box deployment; the report says so.

mod cpu;
#[macro_use]
mod postgraphile;
mod report;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use migrations::sqlx;
use serde_json::{json, Value};

use crate::backend::{settle, Backend, BackendArgs};
use crate::load::http::{self as loadgen, GraphqlClient, Report};
use crate::machine::{load_average, postgres_version};
use crate::proc::machine_major_faults;
use crate::random::pick;
use crate::server::Server;
use cpu::{Cpu, CpuMark, ProcessTreeCpu};
use postgraphile::{launch_postgraphile, PostGraphileMeasured};

#[derive(clap::Args)]
pub struct ApiBenchArgs {
    #[command(flatten)]
    backend: BackendArgs,
    /// property(id) requests per second (open loop), and for the SQL baseline.
    #[arg(long, default_value_t = 2000.0)]
    rate: f64,
    /// Seconds at that rate.
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Connections of the closed-loop peak-throughput phase.
    #[arg(long, default_value_t = 64)]
    peak_connections: usize,
    /// Seconds of the peak-throughput phase.
    #[arg(long, default_value_t = 10.0)]
    peak_seconds: f64,
    /// search requests per second (open loop).
    #[arg(long, default_value_t = 200.0)]
    search_rate: f64,
    /// Filtered properties pages per second (open loop).
    #[arg(long, default_value_t = 200.0)]
    page_rate: f64,
    /// Seconds of the search and page phases each.
    #[arg(long, default_value_t = 20.0)]
    other_seconds: f64,
    /// Requests in flight at most (open loop); the wait for a slot counts in the latency.
    #[arg(long, default_value_t = 1024)]
    max_in_flight: usize,
    /// RUST_LOG of the server (the default logs one access line per request, as in
    /// production; `warn` shows what that line costs).
    #[arg(long, default_value = "info,tantivy=warn")]
    server_log: String,
    /// Skip the PostGraphile baseline of the peak (design/targets.md: ≥ 3× PostGraphile).
    #[arg(long)]
    no_postgraphile: bool,
    /// PostGraphile's node processes (its `--cluster-workers`; 1 = one process, no cluster).
    /// Default: one per core, as landql serve's runtime has one worker thread per core.
    #[arg(long)]
    postgraphile_workers: Option<usize>,
    /// The node project pinning PostGraphile; `npm ci` runs there when node_modules is
    /// missing.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/postgraphile"))]
    postgraphile_dir: PathBuf,
    #[command(flatten)]
    out: crate::BenchOut,
}

/// The property(id) query every API benchmark sends (`bench tracing` too).
pub(crate) const PROPERTY_QUERY: &str = "query Property($id: ID!) { property(id: $id) { \
    id surveyNo khataNo areaSqM landType marketValue verificationStatus updatedAt \
    location { district mandal village } owners { sharePct owner { id name } } \
    provenance { source blockNumber txId stale } } }";

const SEARCH_QUERY: &str = "query Search($text: String!) { search(text: $text, first: 10) { \
    total hits { score property { id location { district village } owners { owner { name } } } \
    highlights { field text } } pageInfo { hasNextPage endCursor } } }";

const PAGE_QUERY: &str = "query DistrictPage($state: String!, $district: String!) { \
    properties(filter: { state: $state, district: $district }, first: 20) { \
    edges { cursor node { id surveyNo marketValue location { mandal village } \
    owners { sharePct owner { id name } } documents { docType docHash } } } \
    pageInfo { hasNextPage endCursor } } }";

/// The SQL floor: the same row by primary key, its record decoded.
const BASELINE_SQL: &str =
    "SELECT id, record, record_hash, channel, block_number, tx_index, tx_id \
    FROM properties WHERE id = $1";

/// The search warm-up before the measured search run.
const SEARCH_WARM_UP: Duration = Duration::from_secs(5);

/// A counter or gauge from the metrics text (0 when absent).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn scrape(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    Ok(http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?)
}

/// Search texts as citizens would type them, from the data: full names in their script,
/// lower-cased names with the village, given names, villages, survey numbers with villages.
async fn search_texts(pool: &sqlx::PgPool) -> anyhow::Result<Vec<String>> {
    let rows: Vec<(Option<String>, String, String)> = sqlx::query_as(
        "SELECT record->'owners'->0->>'name', village, survey_no FROM properties \
         ORDER BY md5(id) LIMIT 400",
    )
    .fetch_all(pool)
    .await?;
    let mut texts = Vec::new();
    for (i, (name, village, survey)) in rows.into_iter().enumerate() {
        let name = name.unwrap_or_default();
        let given = name.split_whitespace().next().unwrap_or("").to_string();
        let text = match i % 5 {
            0 => name,
            1 => format!("{} {}", name.to_lowercase(), village),
            2 => given,
            3 => village,
            _ => format!("{survey} {village}"),
        };
        if !text.trim().is_empty() {
            texts.push(text);
        }
    }
    if texts.is_empty() {
        bail!("no properties to take search texts from");
    }
    Ok(texts)
}

pub async fn run(args: ApiBenchArgs) -> anyhow::Result<()> {
    let load_before = load_average();
    let backend = Backend::start(&args.backend).await?;
    let pool = migrations::connect(&backend.database_url).await?;
    let sync_secs = backend.wait_synced(&pool).await?;
    tracing::info!(secs = sync_secs, "synced");
    let settled = backend.private.is_some();
    if settled {
        settle(&pool).await?;
    }
    let postgres = postgres_version(&pool).await?;
    let properties: i64 = sqlx::query_scalar("SELECT count(*) FROM properties")
        .fetch_one(&pool)
        .await?;
    let changes: i64 = sqlx::query_scalar("SELECT count(*) FROM change_log")
        .fetch_one(&pool)
        .await?;

    let http = reqwest::Client::new();
    let mut server = Server::start(&backend, backend.root.path(), &args.server_log, &[]).await?;
    let result = measure(
        &args,
        &backend.database_url,
        &pool,
        &http,
        &mut server,
        backend.root.path(),
        backend.postmaster_pid(),
    )
    .await;
    let (peak_kib, current_kib) = server.rss();
    server.stop().await;
    pool.close().await;
    let log = backend.root.path().join("serve.log");
    if result.is_err() {
        if let Ok(text) = std::fs::read_to_string(&log) {
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            eprintln!("last lines of the server's log:");
            for l in tail.into_iter().rev() {
                eprintln!("  {l}");
            }
        }
    }
    let records_note = backend.records_note.clone();
    backend.stop().await;
    let m = result?;

    let body = report::markdown(&report::RunInfo {
        load_before,
        postgres,
        records_note,
        properties,
        changes,
        settled,
        server_log: &args.server_log,
        peak_kib,
        current_kib,
        m: &m,
    });
    args.out.write("api", "GraphQL API", &body)
}

struct Measured {
    ready_secs: f64,
    property: Report,
    sql: Report,
    peak: Report,
    search: Report,
    page: Report,
    /// Per phase, in the order of the fields above.
    cpu: [Cpu; 5],
    /// The search warm-up before `search`.
    search_warm: Report,
    /// Major page faults of every process during the fixed-rate property(id) run.
    property_faults: f64,
    /// The server's major page faults during the page run, the search warm-up and the
    /// search run.
    page_faults: f64,
    search_warm_faults: f64,
    search_faults: f64,
    /// The server's peak RSS (KiB) as it stood after each step.
    rss: Vec<(&'static str, u64)>,
    cache_hits: f64,
    cache_misses: f64,
    sql_statements: f64,
    /// Property cache hits and misses during landql's peak.
    peak_cache: (f64, f64),
    /// The PostGraphile baseline, or why there is none.
    postgraphile: Result<PostGraphileMeasured, String>,
}

async fn measure(
    args: &ApiBenchArgs,
    database_url: &str,
    pool: &sqlx::PgPool,
    http: &reqwest::Client,
    server: &mut Server,
    work: &Path,
    postmaster: Option<u32>,
) -> anyhow::Result<Measured> {
    tracing::info!("waiting for landql serve and its search index");
    let ready_secs = server.wait_ready(http).await?;
    tracing::info!(secs = ready_secs, "landql serve ready");

    let ids: Arc<Vec<String>> = Arc::new(
        sqlx::query_scalar("SELECT id FROM properties")
            .fetch_all(pool)
            .await?,
    );
    if ids.is_empty() {
        bail!("the database holds no properties");
    }
    let texts = Arc::new(search_texts(pool).await?);
    let districts: Arc<Vec<(String, String)>> = Arc::new(
        sqlx::query_as(
            "SELECT state, district FROM properties GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 50",
        )
        .fetch_all(pool)
        .await?,
    );
    let client = GraphqlClient::new(&format!("{}/graphql", server.base))?;
    let property = {
        let (client, ids) = (client.clone(), ids.clone());
        move |i: u64| {
            let id = &ids[pick(i, ids.len())];
            let body = json!({ "query": PROPERTY_QUERY, "variables": { "id": id } }).to_string();
            client.post(body)
        }
    };
    let seconds = Duration::from_secs_f64(args.seconds);

    tracing::info!("warm-up");
    let warm = loadgen::open_loop(
        500.0,
        Duration::from_secs(5),
        args.max_in_flight,
        property.clone(),
    )
    .await?;
    if warm.errors > 0 {
        bail!(
            "property(id) fails during the warm-up: {}",
            warm.first_error.unwrap_or_default()
        );
    }
    server.check()?;

    let mut rss = vec![("index rebuilt, before any load", server.rss().0)];
    tracing::info!(rate = args.rate, "property(id), fixed rate");
    let before = scrape(http, &server.base).await?;
    let mark = CpuMark::now(server);
    let faults = machine_major_faults();
    let property_report =
        loadgen::open_loop(args.rate, seconds, args.max_in_flight, property.clone()).await?;
    let property_cpu = mark.per_request(server, property_report.sent);
    let property_faults = machine_major_faults() - faults;
    let after = scrape(http, &server.base).await?;
    let delta = |name: &str| metric(&after, name) - metric(&before, name);
    let cache_hits = delta("landql_api_cache_hits_total{cache=\"property\"}");
    let cache_misses = delta("landql_api_cache_misses_total{cache=\"property\"}");
    let sql_statements = delta("landql_api_sql_statements_total");
    tracing::info!(?property_report, "property(id) done");
    server.check()?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    tracing::info!(rate = args.rate, "SQL baseline, fixed rate");
    // A pool of its own with the options the API's has (16 connections), so both sides get
    // the same parallelism.
    let sql_pool = migrations::connect(database_url).await?;
    let mark = CpuMark::now(server);
    let sql_report = {
        let (sql_pool, ids) = (sql_pool.clone(), ids.clone());
        loadgen::open_loop(args.rate, seconds, args.max_in_flight, move |i| {
            let id = ids[pick(i, ids.len())].clone();
            let pool = sql_pool.clone();
            async move {
                type Row = (
                    String,
                    sqlx::types::Json<Value>,
                    String,
                    String,
                    i64,
                    i32,
                    String,
                );
                let row: Option<Row> = sqlx::query_as(BASELINE_SQL)
                    .bind(&id)
                    .fetch_optional(&pool)
                    .await
                    .map_err(|e| e.to_string())?;
                match row {
                    Some(_) => Ok(()),
                    None => Err(format!("{id} not found")),
                }
            }
        })
        .await?
    };
    let sql_cpu = Cpu {
        server_us: None,
        ..mark.per_request(server, sql_report.sent)
    };
    sql_pool.close().await;
    tracing::info!(?sql_report, "SQL baseline done");
    tokio::time::sleep(Duration::from_secs(2)).await;

    // PostGraphile is started, checked and warmed up before landql's peak, so that the two
    // peaks run back to back.
    let launched = if args.no_postgraphile {
        Err("skipped (`--no-postgraphile`)".to_string())
    } else {
        tracing::info!(dir = %args.postgraphile_dir.display(), "starting PostGraphile");
        launch_postgraphile(args, database_url, work, http, &server.base, &ids)
            .await
            .map_err(|e| {
                tracing::warn!(error = format!("{e:#}"), "PostGraphile not run");
                format!("not run: {e:#}")
            })
    };
    if launched.is_ok() {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    let postgres_cpu = postmaster.map(ProcessTreeCpu);
    tracing::info!(connections = args.peak_connections, "peak property(id)");
    let before = scrape(http, &server.base).await?;
    let mark = CpuMark::now(server);
    let pg_mark = postgres_cpu.as_ref().map(CpuMark::now);
    let peak = loadgen::closed_loop(
        args.peak_connections,
        Duration::from_secs_f64(args.peak_seconds),
        property,
    )
    .await?;
    let peak_cpu = mark.per_request(server, peak.sent);
    let peak_postgres_us = postgres_cpu
        .as_ref()
        .zip(pg_mark)
        .and_then(|(p, m)| m.per_request(p, peak.sent).server_us);
    let after = scrape(http, &server.base).await?;
    let delta = |name: &str| metric(&after, name) - metric(&before, name);
    let peak_cache = (
        delta("landql_api_cache_hits_total{cache=\"property\"}"),
        delta("landql_api_cache_misses_total{cache=\"property\"}"),
    );
    rss.push(("after the property(id) runs", server.rss().0));
    tracing::info!(?peak, "peak done");
    server.check()?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let postgraphile = match launched {
        Ok((mut pg, ready_secs, bytes, pg_client)) => {
            let measured = async {
                tracing::info!(connections = args.peak_connections, "PostGraphile peak");
                let mark = CpuMark::now(&pg);
                let pg_mark = postgres_cpu.as_ref().map(CpuMark::now);
                let pg_peak = loadgen::closed_loop(
                    args.peak_connections,
                    Duration::from_secs_f64(args.peak_seconds),
                    postgraphile_request!(pg_client, ids),
                )
                .await?;
                let pg_peak_cpu = mark.per_request(&pg, pg_peak.sent);
                let pg_postgres_us = postgres_cpu
                    .as_ref()
                    .zip(pg_mark)
                    .and_then(|(p, m)| m.per_request(p, pg_peak.sent).server_us);
                tracing::info!(peak = ?pg_peak, "PostGraphile peak done");
                pg.check()?;
                if pg_peak.errors > 0 {
                    bail!(
                        "{} of {} PostGraphile requests failed at the peak: {}",
                        pg_peak.errors,
                        pg_peak.sent,
                        pg_peak.first_error.clone().unwrap_or_default()
                    );
                }
                // Below its peak the open loop would only measure a growing queue (and take
                // long to drain it).
                let fixed = if pg_peak.achieved_per_s >= args.rate {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    tracing::info!(rate = args.rate, "PostGraphile, fixed rate");
                    let mark = CpuMark::now(&pg);
                    let report = loadgen::open_loop(
                        args.rate,
                        seconds,
                        args.max_in_flight,
                        postgraphile_request!(pg_client, ids),
                    )
                    .await?;
                    let cpu = mark.per_request(&pg, report.sent);
                    tracing::info!(?report, "PostGraphile fixed rate done");
                    pg.check()?;
                    Ok((report, cpu))
                } else {
                    Err(format!(
                        "not run: PostGraphile's peak ({:.0}/s) is below {:.0}/s, where the \
                         latencies would only measure a growing queue",
                        pg_peak.achieved_per_s, args.rate
                    ))
                };
                anyhow::Ok(PostGraphileMeasured {
                    setup: pg.setup.clone(),
                    ready_secs,
                    bytes,
                    peak: pg_peak,
                    peak_cpu: pg_peak_cpu,
                    postgres_us: peak_postgres_us.zip(pg_postgres_us),
                    fixed,
                    peak_rss_kib: pg.peak_rss(),
                })
            }
            .await;
            pg.stop().await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            measured.map_err(|e| {
                tracing::warn!(error = format!("{e:#}"), "PostGraphile phase failed");
                format!("failed: {e:#}")
            })
        }
        Err(why) => Err(why),
    };

    let other = Duration::from_secs_f64(args.other_seconds);
    tracing::info!(rate = args.page_rate, "filtered pages, fixed rate");
    let mark = CpuMark::now(server);
    let faults = server.major_faults();
    let page = {
        let (client, districts) = (client.clone(), districts.clone());
        loadgen::open_loop(args.page_rate, other, args.max_in_flight, move |i| {
            let (state, district) = &districts[pick(i, districts.len())];
            client.post(
                json!({ "query": PAGE_QUERY,
                        "variables": { "state": state, "district": district } })
                .to_string(),
            )
        })
        .await?
    };
    let page_cpu = mark.per_request(server, page.sent);
    let page_faults = server.major_faults() - faults;
    rss.push(("after the page run", server.rss().0));
    tracing::info!(?page, "pages done");
    server.check()?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // A warm-up first, as for property(id): the runs before left the index's pages unused
    // for minutes, and the kernel may have dropped them (its major faults are reported).
    let run_search = |seconds: Duration, offset: u64| {
        let (client, texts) = (client.clone(), texts.clone());
        loadgen::open_loop(args.search_rate, seconds, args.max_in_flight, move |i| {
            let text = &texts[pick(i + offset, texts.len())];
            client.post(json!({ "query": SEARCH_QUERY, "variables": { "text": text } }).to_string())
        })
    };
    tracing::info!(rate = args.search_rate, "search warm-up");
    let faults = server.major_faults();
    let search_warm = run_search(SEARCH_WARM_UP, 1 << 30).await?;
    let search_warm_faults = server.major_faults() - faults;
    tokio::time::sleep(Duration::from_secs(1)).await;
    tracing::info!(rate = args.search_rate, "search, fixed rate");
    let mark = CpuMark::now(server);
    let faults = server.major_faults();
    let search = run_search(other, 0).await?;
    let search_cpu = mark.per_request(server, search.sent);
    let search_faults = server.major_faults() - faults;
    rss.push(("after the search run", server.rss().0));
    tracing::info!(?search, "search done");
    server.check()?;

    Ok(Measured {
        ready_secs,
        property: property_report,
        sql: sql_report,
        peak,
        search,
        page,
        cpu: [property_cpu, sql_cpu, peak_cpu, search_cpu, page_cpu],
        search_warm,
        property_faults,
        page_faults,
        search_warm_faults,
        search_faults,
        rss,
        cache_hits,
        cache_misses,
        sql_statements,
        peak_cache,
        postgraphile,
    })
}
