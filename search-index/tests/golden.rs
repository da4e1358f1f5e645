//! The golden set: ≥ 200 queries (tests/data/golden.tsv) over thousands of generated records
//! plus hand-written ones; recall@10 must be ≥ 0.95 overall and `top1` rows must put the
//! right person first.

mod fixture;

use std::collections::BTreeMap;

use search_index::SearchRequest;

#[test]
fn golden_recall_at_10() {
    let t = std::time::Instant::now();
    let (_dir, idx, labels) = fixture::build(4000);
    println!("fixture built in {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let mut per_cat: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let (mut found, mut wanted, mut top1_fail, mut rows) = (0, 0, Vec::new(), 0);
    let mut misses = Vec::new();
    for line in fixture::GOLDEN
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let c: Vec<&str> = line.split('\t').collect();
        assert!(c.len() >= 3, "bad golden line {line:?}");
        rows += 1;
        let (cat, query) = (c[0], c[1]);
        let expect: Vec<_> = c[2]
            .split(',')
            .map(|l| {
                *labels
                    .get(l.trim())
                    .unwrap_or_else(|| panic!("unknown label {l}"))
            })
            .collect();
        let res = idx
            .search(&SearchRequest {
                text: query.to_string(),
                first: 10,
                ..Default::default()
            })
            .expect("search");
        let got: Vec<_> = res.hits.iter().map(|h| h.id).collect();
        let hit = expect.iter().filter(|e| got.contains(e)).count();
        let e = per_cat.entry(cat.to_string()).or_default();
        e.0 += hit;
        e.1 += expect.len();
        found += hit;
        wanted += expect.len();
        if hit < expect.len() {
            misses.push(format!(
                "{cat}: {query:?} route {:?} got {:?}",
                res.route,
                res.hits
                    .iter()
                    .take(3)
                    .map(|h| h
                        .record
                        .owners
                        .iter()
                        .map(|o| o.name.clone())
                        .collect::<Vec<_>>()
                        .join("+"))
                    .collect::<Vec<_>>()
            ));
        }
        if c.get(3) == Some(&"top1") && got.first() != expect.first() {
            top1_fail.push(format!(
                "{cat}: {query:?} first {:?}",
                res.hits
                    .first()
                    .map(|h| (h.record.owners[0].name.clone(), h.record.village.clone()))
            ));
        }
    }
    // Generated records: owner name (any script, variants, typos as the generator made
    // them) + village, as a citizen would type it; expected: that very parcel.
    for r in fixture::generated(4000, 7).iter().step_by(199) {
        let query = format!("{} {}", r.owners[0].name, r.village);
        let res = idx
            .search(&SearchRequest {
                text: query.clone(),
                first: 10,
                ..Default::default()
            })
            .expect("search");
        let hit = usize::from(res.hits.iter().any(|h| h.id == r.property_id));
        let e = per_cat.entry("generated".to_string()).or_default();
        e.0 += hit;
        e.1 += 1;
        found += hit;
        wanted += 1;
        rows += 1;
        if hit == 0 {
            misses.push(format!("generated: {query:?}"));
        }
    }
    println!("{rows} queries in {:?}", t.elapsed());
    let recall = found as f64 / wanted as f64;
    println!("golden rows {rows}, recall@10 {recall:.3}");
    for (cat, (f, w)) in &per_cat {
        println!("  {cat:10} {:.3} ({f}/{w})", *f as f64 / *w as f64);
    }
    for m in &misses {
        println!("MISS {m}");
    }
    for m in &top1_fail {
        println!("TOP1 {m}");
    }
    assert!(rows >= 250, "golden set too small: {rows}");
    assert!(recall >= 0.95, "recall@10 {recall:.3} < 0.95");
    let top1_rows = fixture::GOLDEN
        .lines()
        .filter(|l| l.ends_with("\ttop1"))
        .count();
    let top1 = 1.0 - top1_fail.len() as f64 / top1_rows as f64;
    println!("top-1 precision on top1 rows: {top1:.3}");
    assert!(
        top1 >= 0.95,
        "right person first in only {top1:.3} of top1 rows"
    );
}
