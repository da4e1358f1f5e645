//! Latency benchmark (ignored by default): `LANDQL_BENCH_N=100000 cargo test --release -p
//! landql-search-index --test latency -- --ignored --nocapture`. Indexes N generated
//! records plus the hand records and runs every golden query and a mix of queries made from
//! the generated records (name, given name alone, name + village, survey number + village,
//! prefix), printing percentiles and CPU per search by kind.
//!
//! `LANDQL_BENCH_DIR=/some/dir` keeps the index there and reuses it on the next run (a 1 M
//! index takes a minute or more to build); `LANDQL_BENCH_ROUNDS` repeats the mix.

mod fixture;

use std::collections::BTreeMap;
use std::time::Instant;

use search_index::{SearchIndex, SearchRequest};

/// CPU seconds this process has used (user + system), from /proc/self/stat.
fn cpu_secs() -> f64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(rest) = text.rsplit(')').next() else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

#[test]
#[ignore]
fn latency_percentiles() {
    let n: usize = std::env::var("LANDQL_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rounds: usize = std::env::var("LANDQL_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::env::var("LANDQL_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| tmp.path().to_path_buf());
    let idx = SearchIndex::open_or_create(&dir).unwrap();
    let records = fixture::generated(n, 11);
    if idx.num_docs() < n as u64 {
        idx.clear().unwrap();
        let t = Instant::now();
        for r in &records {
            idx.upsert(r, &[]).unwrap();
        }
        for (_, r) in fixture::hand() {
            idx.upsert(&r, &[]).unwrap();
        }
        idx.commit(n as i64).unwrap();
        let s = t.elapsed().as_secs_f64();
        println!(
            "indexed {n} records in {s:.1} s: {:.0} docs/s",
            n as f64 / s
        );
    } else {
        println!("reusing the index in {}", dir.display());
    }
    let mut queries: Vec<(&str, String)> = fixture::GOLDEN
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split('\t').nth(1))
        .map(|q| ("golden", q.to_string()))
        .collect();
    for (i, r) in records.iter().step_by((n / 200).max(1)).enumerate() {
        let name = r.owners[0].name.clone();
        let given = name.split_whitespace().next().unwrap_or("").to_string();
        let (kind, q) = match i % 5 {
            0 => ("name", name),
            1 => (
                "name+village",
                format!("{} {}", name.to_lowercase(), r.village),
            ),
            2 => ("given", given),
            3 => ("survey", format!("{} {}", r.survey_no, r.village)),
            _ => {
                let cut: String = name.chars().take(name.chars().count() * 2 / 3).collect();
                ("prefix", cut)
            }
        };
        if !q.trim().is_empty() {
            queries.push((kind, q));
        }
    }
    let mut by_kind: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut cpu_by_kind: BTreeMap<&str, f64> = BTreeMap::new();
    let mut all = Vec::new();
    let cpu0 = cpu_secs();
    for _ in 0..rounds {
        for (kind, q) in &queries {
            let c = cpu_secs();
            let t = Instant::now();
            idx.search(&SearchRequest {
                text: q.clone(),
                first: 10,
                ..Default::default()
            })
            .unwrap();
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            *cpu_by_kind.entry(kind).or_default() += cpu_secs() - c;
            by_kind.entry(kind).or_default().push(ms);
            all.push(ms);
        }
    }
    let cpu = cpu_secs() - cpu0;
    let pct = |v: &mut Vec<f64>, q: f64| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[((v.len() as f64 - 1.0) * q) as usize]
    };
    for (kind, v) in by_kind.iter_mut() {
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        println!(
            "{kind:14} {:5} searches: mean {mean:.2} ms, p50 {:.2}, p99 {:.2}, max {:.2}; CPU {:.2} ms/search",
            v.len(),
            pct(v, 0.5),
            pct(v, 0.99),
            pct(v, 1.0),
            cpu_by_kind[kind] * 1000.0 / v.len() as f64
        );
    }
    let len = all.len();
    println!(
        "{len} searches: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms; CPU {:.2} ms/search",
        pct(&mut all, 0.5),
        pct(&mut all, 0.95),
        pct(&mut all, 0.99),
        pct(&mut all, 1.0),
        cpu * 1000.0 / len as f64
    );
}
