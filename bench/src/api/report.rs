//! `bench api`'s section of BENCHMARKS.md: the table of runs and the notes under it.

use std::fmt::Write as _;

use super::cpu::Cpu;
use super::postgraphile::POSTGRAPHILE_QUERY;
use super::{Measured, SEARCH_WARM_UP};
use crate::load::http::Report;
use crate::machine::machine;

/// What the report says besides the measurements.
pub(super) struct RunInfo<'a> {
    pub load_before: String,
    pub postgres: String,
    pub records_note: String,
    pub properties: i64,
    pub changes: i64,
    /// Whether the database was vacuumed and analysed after the bulk load.
    pub settled: bool,
    pub server_log: &'a str,
    /// The server's peak and final RSS, KiB.
    pub peak_kib: u64,
    pub current_kib: u64,
    pub m: &'a Measured,
}

fn row(what: &str, r: &Report, cpu: Cpu, target: &str) -> String {
    let rate = match r.target_rate {
        Some(t) => format!("{t:.0}/s offered, {:.0}/s done", r.achieved_per_s),
        None => format!("**{:.0}/s**", r.achieved_per_s),
    };
    let cpu = match cpu.server_us {
        Some(server) => format!("{server:.0} / {:.0}", cpu.generator_us),
        None => format!("— / {:.0}", cpu.generator_us),
    };
    format!(
        "| {what} | {rate} | {:.2} | {:.2} | **{:.2}** | {:.2} | {} of {} | {cpu} | {target} |",
        r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms, r.errors, r.sent
    )
}

/// The section's body.
pub(super) fn markdown(run: &RunInfo<'_>) -> String {
    let &RunInfo {
        ref load_before,
        ref postgres,
        ref records_note,
        properties,
        changes,
        settled,
        server_log,
        peak_kib,
        current_kib,
        m,
    } = run;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Machine: {}; load average {load_before} at the start. {postgres}.",
        machine()
    );
    let _ = writeln!(
        s,
        "Data: {records_note}; {properties} properties, {changes} change-log rows. \
         {}`landql serve` ran as a child process (its own index follower rebuilt the search \
         index from PostgreSQL in {:.1} s before the runs); the load generator \
         (`bench::load::http`, open loop: latency from each request's due time, keep-alive \
         connections), PostgreSQL, the in-process devnet and the idle sync worker shared \
         the same 2 cores. Server log filter `{}` (`info` writes one access line per \
         request, as in production). CPU per request is the CPU time each process used over \
         the run divided by the requests done.\n",
        if settled {
            "The database was vacuumed and analysed after the bulk load. "
        } else {
            ""
        },
        m.ready_secs,
        server_log
    );
    let _ = writeln!(
        s,
        "| what | rate | p50 ms | p90 ms | p99 ms | max ms | errors | CPU µs/request: server / generator | target |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    let _ = writeln!(
        s,
        "{}",
        row(
            "`property(id)` over HTTP, random existing IDs",
            &m.property,
            m.cpu[0],
            "p99 < 5 ms"
        )
    );
    let _ = writeln!(
        s,
        "{}",
        row(
            "baseline: the same row by primary key, one SQL statement through a sqlx pool (16 connections)",
            &m.sql,
            m.cpu[1],
            "the floor"
        )
    );
    let _ = writeln!(
        s,
        "{}",
        row(
            &format!(
                "peak `property(id)`, closed loop over {} connections",
                m.peak.concurrency
            ),
            &m.peak,
            m.cpu[2],
            if m.postgraphile.is_ok() {
                "≥ 3× PostGraphile (below)"
            } else {
                "≥ 3× PostGraphile (not run here)"
            }
        )
    );
    if let Ok(pg) = &m.postgraphile {
        let _ = writeln!(
            s,
            "{}",
            row(
                &format!(
                    "PostGraphile: `propertyById`, the same columns, owners through ownerships → \
                     owners; closed loop over {} connections",
                    pg.peak.concurrency
                ),
                &pg.peak,
                pg.peak_cpu,
                "the baseline"
            )
        );
        if let Ok((fixed, cpu)) = &pg.fixed {
            let _ = writeln!(
                s,
                "{}",
                row(
                    "PostGraphile: the same query at the fixed rate, the same IDs",
                    fixed,
                    *cpu,
                    ""
                )
            );
        }
    }
    let _ = writeln!(
        s,
        "{}",
        row(
            "`properties(filter: {state, district}, first: 20)` with owners and documents",
            &m.page,
            m.cpu[4],
            ""
        )
    );
    let _ = writeln!(
        s,
        "{}",
        row(
            "`search` (names in four scripts, villages, survey numbers from the data)",
            &m.search,
            m.cpu[3],
            "p99 < 20 ms at 1 M records"
        )
    );
    let _ = writeln!(s);
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let _ = writeln!(
        s,
        "- API over SQL floor at {:.0} req/s: p50 {:.1}×, p99 {:.1}× (+{:.2} ms at p50).",
        m.property.target_rate.unwrap_or(0.0),
        ratio(m.property.p50_ms, m.sql.p50_ms),
        ratio(m.property.p99_ms, m.sql.p99_ms),
        m.property.p50_ms - m.sql.p50_ms
    );
    match &m.postgraphile {
        Ok(pg) => {
            let x = ratio(m.peak.achieved_per_s, pg.peak.achieved_per_s);
            let _ = writeln!(
                s,
                "- **peak landql / PostGraphile = {x:.1}×** (target ≥ 3×: {}); server CPU per \
                 request {:.0} µs against {:.0} µs{}. During landql's peak its property cache \
                 had {:.0} % hits (PostGraphile has no cache).",
                if x >= 3.0 { "met" } else { "**not met**" },
                m.cpu[2].server_us.unwrap_or(0.0),
                pg.peak_cpu.server_us.unwrap_or(0.0),
                match pg.postgres_us {
                    Some((l, p)) => format!(
                        "; PostgreSQL's CPU per request (postmaster and backends) {l:.0} µs \
                         against {p:.0} µs"
                    ),
                    None => String::new(),
                },
                100.0 * ratio(m.peak_cache.0, m.peak_cache.0 + m.peak_cache.1)
            );
            if let Ok((fixed, _)) = &pg.fixed {
                let _ = writeln!(
                    s,
                    "- At {:.0} req/s: p50 {:.2} ms (landql) against {:.2} ms (PostGraphile), \
                     p99 {:.2} ms against {:.2} ms.",
                    fixed.target_rate.unwrap_or(0.0),
                    m.property.p50_ms,
                    fixed.p50_ms,
                    m.property.p99_ms,
                    fixed.p99_ms
                );
            }
            let _ = writeln!(
                s,
                "- PostGraphile: {}; it ran from bench/postgraphile against the same database \
                 on the same 2 cores, answered in {:.1} s, was checked to answer 20 properties \
                 as landql does, then warmed up (5 s at 500/s) like landql; its peak ran right \
                 after landql's, its peak RSS was {:.0} MiB (all processes). The query: `{}`. \
                 What remains different: landql also computes provenance (source, block, \
                 transaction, and staleness against the chain height it polls), reads one row \
                 (owners come from the record as written on the chain, names as spelt on this \
                 parcel) and re-hashes it, and accepts any spelling of an ID; PostGraphile \
                 joins properties → ownerships → owners in one SQL statement (owner names as \
                 last recorded), by the text primary key, with blockNumber and txId as plain \
                 columns. Mean answer {:.0} bytes (landql) against {:.0} bytes. Its fixed-rate \
                 run: {}.",
                pg.setup,
                pg.ready_secs,
                pg.peak_rss_kib as f64 / 1024.0,
                POSTGRAPHILE_QUERY,
                pg.bytes.0,
                pg.bytes.1,
                match &pg.fixed {
                    Ok(_) => "in the table".to_string(),
                    Err(why) => why.clone(),
                }
            );
        }
        Err(why) => {
            let _ = writeln!(s, "- PostGraphile baseline: {why}.");
        }
    }
    let _ = writeln!(
        s,
        "- During the fixed-rate `property(id)` run: property cache {:.0} hits / {:.0} misses \
         ({:.0} % hits; 10 000 entries, 10 s TTL, IDs drawn uniformly from all properties), \
         {:.2} SQL statements per request; {:.0} major page faults on the whole machine \
         (the server's and PostgreSQL's reads that waited on the disk).",
        m.cache_hits,
        m.cache_misses,
        100.0 * ratio(m.cache_hits, m.cache_hits + m.cache_misses),
        ratio(m.sql_statements, m.property.sent as f64),
        m.property_faults
    );
    let steps: Vec<String> = m
        .rss
        .iter()
        .map(|(when, kib)| format!("{:.0} MiB {when}", *kib as f64 / 1024.0))
        .collect();
    let _ = writeln!(
        s,
        "- Peak RSS of `landql serve` (the server process alone, index follower included): \
         **{:.0} MiB** (VmHWM; {:.0} MiB resident at the end). Target < 1 GiB at 1 M records. \
         The peak as it stood: {}.",
        peak_kib as f64 / 1024.0,
        current_kib as f64 / 1024.0,
        steps.join("; ")
    );
    let _ = writeln!(
        s,
        "- Major page faults of `landql serve` (reads it waited on the disk for, e.g. index \
         pages the kernel had dropped from memory): {:.0} during the page run, {:.0} during \
         the search run. The search run came after a {:.0} s warm-up at the same rate, whose \
         requests took {:.0} major faults: p50 {:.2} ms, p99 **{:.2} ms**, max {:.2} ms.",
        m.page_faults,
        m.search_faults,
        SEARCH_WARM_UP.as_secs_f64(),
        m.search_warm_faults,
        m.search_warm.p50_ms,
        m.search_warm.p99_ms,
        m.search_warm.max_ms
    );
    let _ = writeln!(
        s,
        "- The generator's own send delay peaked at {:.2} ms (counted in the latencies).",
        m.property.max_send_lag_ms
    );
    s
}
