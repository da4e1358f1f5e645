//! Latency benchmark (ignored by default): `LANDQL_BENCH_N=100000 cargo test --release -p
//! landql-search-index --test latency -- --ignored --nocapture`. Indexes N generated
//! records plus the hand records and runs every golden query, printing percentiles.

mod fixture;

use std::time::Instant;

use search_index::{SearchIndex, SearchRequest};

#[test]
#[ignore]
fn latency_percentiles() {
    let n: usize = std::env::var("LANDQL_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let idx = SearchIndex::open_or_create(dir.path()).unwrap();
    let t = Instant::now();
    for (i, r) in fixture::generated(n, 11).iter().enumerate() {
        idx.upsert(r).unwrap();
        if i % 100_000 == 99_999 {
            idx.commit(i as i64).unwrap();
        }
    }
    for (_, r) in fixture::hand() {
        idx.upsert(&r).unwrap();
    }
    idx.commit(n as i64).unwrap();
    println!("indexed {n} records in {:?}", t.elapsed());
    let queries: Vec<&str> = fixture::GOLDEN
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split('\t').nth(1))
        .collect();
    let mut ms = Vec::new();
    for _ in 0..3 {
        for q in &queries {
            let t = Instant::now();
            idx.search(&SearchRequest {
                text: q.to_string(),
                first: 10,
                ..Default::default()
            })
            .unwrap();
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    let p = |q: f64| ms[((ms.len() as f64 - 1.0) * q) as usize];
    println!(
        "{} searches: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms.len(),
        p(0.5),
        p(0.95),
        p(0.99),
        p(1.0)
    );
}
