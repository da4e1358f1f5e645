//! SearchIndex behaviour: commits with seq payloads, upsert/delete, filters, facets,
//! highlights across scripts and typos, stable paging.

mod fixture;

use ledger::model::VerificationStatus;
use search_index::search::{MatchKind, Route};
use search_index::{Filter, SearchIndex, SearchRequest};

fn req(text: &str) -> SearchRequest {
    SearchRequest {
        text: text.into(),
        first: 10,
        ..Default::default()
    }
}

fn hand(label: &str) -> ledger::model::Record {
    fixture::hand()
        .into_iter()
        .find(|(l, _)| l == label)
        .expect("label")
        .1
}

#[test]
fn commit_payload_survives_reopen_and_upsert_replaces() {
    let dir = tempfile::tempdir().unwrap();
    {
        let idx = SearchIndex::open_or_create(dir.path()).unwrap();
        assert_eq!(idx.last_seq().unwrap(), None);
        idx.upsert(&hand("h01"), &[]).unwrap();
        idx.upsert(&hand("h02"), &[]).unwrap();
        idx.commit(41).unwrap();
        assert_eq!(idx.num_docs(), 2);
        // A correction of the same parcel replaces its document.
        let mut r = hand("h01");
        r.owners[0].name = "Yarlagadda Padmavathi".into();
        idx.upsert(&r, &[]).unwrap();
        idx.commit(42).unwrap();
        assert_eq!(idx.num_docs(), 2);
        assert!(idx
            .search(&req("yarlagadda lakshmi"))
            .unwrap()
            .hits
            .iter()
            .all(|h| h.record.owners[0].name != "Yarlagadda Lakshmi"));
    }
    let idx = SearchIndex::open_or_create(dir.path()).unwrap();
    assert_eq!(idx.last_seq().unwrap(), Some(42));
    assert_eq!(idx.num_docs(), 2);
    // Delete by another spelling of the ID.
    idx.delete(&"lri-ind-ts-2026-9900002".parse().unwrap())
        .unwrap();
    idx.commit(43).unwrap();
    assert_eq!(idx.num_docs(), 1);

    // `landql search` opens read-only next to the writer of a running server.
    let ro = SearchIndex::open_read_only(dir.path()).unwrap();
    assert_eq!(ro.last_seq().unwrap(), Some(43));
    assert!(matches!(
        ro.upsert(&hand("h03"), &[]),
        Err(search_index::Error::ReadOnly)
    ));
    let res = search_index::search::search_dir(dir.path(), "yarlagadda padmavathi", 5).unwrap();
    assert_eq!(res.hits.len(), 1);
}

#[test]
fn filters_facets_highlights_and_paging() {
    let (_dir, idx, labels) = fixture::build(1500);

    // Cross-script highlight: a Telugu query on a Latin record marks the right chars.
    let res = idx.search(&req("యార్లగడ్డ లక్ష్మి")).unwrap();
    let top = &res.hits[0];
    assert_eq!(top.id, labels["h01"]);
    let h = top
        .highlights
        .iter()
        .find(|h| h.field == "owners[0].name")
        .unwrap();
    assert_eq!(h.text, "Yarlagadda Lakshmi");
    assert_eq!(h.ranges, vec![(0, 10), (11, 18)]);
    // యార్లగడ్డ folds to "yaarlagadda" (long ā): a phonetic, not a fold, match.
    assert_eq!(h.kind, MatchKind::Phonetic);

    // Fuzzy highlight.
    let res = idx.search(&req("Chilukri Ravikumar")).unwrap();
    assert_eq!(res.hits[0].id, labels["h08"]);
    assert!(res.hits[0]
        .highlights
        .iter()
        .any(|h| h.kind == MatchKind::Fuzzy && h.ranges.contains(&(0, 9))));

    // Filters: a place filter in another spelling of the district.
    let mut r = req("yarlagadda");
    r.filter = Filter {
        district: Some("Ranga Reddy".into()),
        ..Default::default()
    };
    let res = idx.search(&r).unwrap();
    let ids: Vec<_> = res.hits.iter().map(|h| h.id).collect();
    assert!(
        ids.contains(&labels["h01"])
            && ids.contains(&labels["h31"])
            && ids.contains(&labels["h34"])
    );
    r.filter.status = Some(VerificationStatus::Pending);
    assert!(idx.search(&r).unwrap().hits.is_empty());
    r.filter = Filter {
        land_type: Some("commercial".into()),
        ..Default::default()
    };
    assert!(idx.search(&r).unwrap().hits.is_empty());

    // Facets: counts per state at the root, per district under a state filter.
    let res = idx.search(&req("lakshmi")).unwrap();
    assert!(res.total > 10);
    let sum: u64 = res.facets.places.iter().map(|p| p.count).sum();
    assert_eq!(sum as usize, res.total);
    assert!(res.facets.statuses.iter().any(|s| s.value == "verified"));
    assert!(res
        .facets
        .land_types
        .iter()
        .any(|t| t.label == "Agricultural"));
    let mut r = req("lakshmi");
    r.filter.state = Some("ts".into());
    let res_ts = idx.search(&r).unwrap();
    assert!(res_ts.total < res.total);
    assert!(res_ts.facets.places.iter().all(|d| !d.value.is_empty()));
    // Districts under TS: variant spellings share one value; the label is a real spelling.
    let mut r = req("yarlagadda");
    r.filter.state = Some("TS".into());
    let res = idx.search(&r).unwrap();
    let rr = res
        .facets
        .places
        .iter()
        .find(|d| d.value == search_index::analysis::place_key("Rangareddy"))
        .unwrap();
    assert_eq!(rr.count, 3, "{:?}", res.facets.places);
    assert!(["K.V.Rangareddy", "Ranga Reddy", "Rangareddy"].contains(&rr.label.as_str()));
    // Filtering by the facet value gives the same three.
    r.filter.district = Some(rr.value.clone());
    assert_eq!(idx.search(&r).unwrap().total, 3);

    // Stable paging: pages concatenate to the first 30 of one ordered list, no repeats.
    let mut seen = Vec::new();
    let mut after = None;
    for _ in 0..3 {
        let mut r = req("reddy");
        r.after = after.clone();
        let res = idx.search(&r).unwrap();
        seen.extend(res.hits.iter().map(|h| h.id));
        after = res.next.clone();
        assert!(after.is_some());
    }
    let mut r = req("reddy");
    r.first = 30;
    let all: Vec<_> = idx.search(&r).unwrap().hits.iter().map(|h| h.id).collect();
    assert_eq!(seen, all);
    let mut r = req("reddy");
    r.after = Some("garbage".into());
    assert!(idx.search(&r).is_err());

    // Routes.
    assert_eq!(
        idx.search(&req("LRIINDTS20269900001")).unwrap().route,
        Route::PropertyId
    );
    assert_eq!(
        idx.search(&req("218/A Kothwalguda")).unwrap().route,
        Route::Survey
    );
    assert!(matches!(
        idx.search(&req("ravi")).unwrap().route,
        Route::Names(_)
    ));
}

#[test]
fn a_misspelt_name_is_answered_by_the_records_matching_every_word() {
    let (_dir, idx, labels) = fixture::build(1500);
    // "chilukri" is a typo of "Chilukuri" (one letter, not a phonetic variant): no record
    // has both words as typed, so the second intersection (every word, with typos)
    // answers, and only records matching both words are listed.
    let res = idx.search(&req("Chilukri Narasimha")).unwrap();
    assert_eq!(res.route, Route::Names(2));
    let ids: Vec<_> = res.hits.iter().map(|h| h.id).collect();
    assert!(
        ids.contains(&labels["h08"]) && ids.contains(&labels["h33"]),
        "{ids:?}"
    );
    assert_eq!(res.total, res.hits.len());
    assert!(res
        .hits
        .iter()
        .all(|h| h.matched_words == 2 && h.typos >= 1));
    // A word that matches nothing at all, even with typos, still lets the others find
    // records (the union of the words, at the deepest tier that can match).
    let res = idx.search(&req("Chilukuri Qqqqqq")).unwrap();
    assert!(matches!(res.route, Route::Names(_)));
    let ids: Vec<_> = res.hits.iter().map(|h| h.id).collect();
    assert!(
        ids.contains(&labels["h08"]) && ids.contains(&labels["h33"]),
        "{ids:?}"
    );
}

/// An index directory holding one record, committed at seq 7, and the temporary directory
/// it is in (its moved-aside copies land there too).
fn committed_index() -> (tempfile::TempDir, std::path::PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("index");
    let idx = SearchIndex::open_or_create(&dir).unwrap();
    idx.upsert(&hand("h01"), &[]).unwrap();
    idx.commit(7).unwrap();
    (root, dir)
}

#[test]
fn a_corrupt_index_is_moved_aside_and_recreated() {
    let (root, dir) = committed_index();
    std::fs::write(dir.join("meta.json"), b"{ not json").unwrap();
    assert!(SearchIndex::open_or_create(&dir).is_err());
    let idx = search_index::follower::open_or_reset(&dir).unwrap();
    assert_eq!(idx.num_docs(), 0);
    assert_eq!(
        idx.last_seq().unwrap(),
        None,
        "a fresh index makes the follower rebuild"
    );
    let aside = std::fs::read_dir(root.path()).unwrap().count();
    assert_eq!(aside, 2, "the broken index is kept aside for inspection");
}

/// An index written by older analysers (their names in the schema of `meta.json` carry
/// no version) holds tokens the searcher no longer asks for: it must be rebuilt, not
/// searched, so it fails the schema check and the follower starts a fresh one.
#[test]
fn an_index_of_older_analysers_is_rebuilt() {
    let (_root, dir) = committed_index();
    let meta = std::fs::read_to_string(dir.join("meta.json")).unwrap();
    assert!(meta.contains("\"lq2_prefix\""));
    std::fs::write(dir.join("meta.json"), meta.replace("\"lq2_", "\"lq_")).unwrap();
    assert!(SearchIndex::open_or_create(&dir).is_err());
    assert!(SearchIndex::open_read_only(&dir).is_err());
    let idx = search_index::follower::open_or_reset(&dir).unwrap();
    assert_eq!(idx.num_docs(), 0);
    assert_eq!(idx.last_seq().unwrap(), None, "the follower rebuilds it");
}

#[test]
fn odd_input_is_answered_not_panicked_on() {
    let dir = tempfile::tempdir().unwrap();
    let idx = SearchIndex::open_or_create(dir.path()).unwrap();
    idx.upsert(&hand("h01"), &[]).unwrap();
    idx.commit(1).unwrap();
    for q in [
        "",
        "   ",
        "////",
        "LRI-IND-",
        "lriind",
        "k v",
        "123",
        "ా్",
        "a",
        "🙂 lakshmi",
        "\u{0C4D}",
    ] {
        let res = idx.search(&req(q)).unwrap_or_else(|e| panic!("{q:?}: {e}"));
        assert!(res.hits.len() <= 10);
    }
    assert!(idx.search(&req("")).unwrap().hits.is_empty());
    assert_eq!(idx.search(&req("🙂 lakshmi")).unwrap().hits.len(), 1);
}

#[test]
fn former_names_are_found_marked_and_ranked_below_current_ones() {
    let dir = tempfile::tempdir().unwrap();
    let idx = SearchIndex::open_or_create(dir.path()).unwrap();
    // h01 was "Yarlagadda Laxmi Devi" before a correction; h02's owner is called so now.
    let fixed = hand("h01");
    let mut current = hand("h02");
    current.owners[0].name = "Yarlagadda Laxmi Devi".into();
    let former = search_index::index::former_names(
        &fixed,
        [
            "Yarlagadda Laxmi Devi",
            "Yarlagadda Lakshmi",
            "Yarlagadda Laxmi Devi",
        ],
    );
    assert_eq!(
        former,
        ["Yarlagadda Laxmi Devi"],
        "current names and repeats left out"
    );
    idx.upsert(&fixed, &former).unwrap();
    idx.upsert(&current, &[]).unwrap();
    idx.commit(1).unwrap();

    for text in [
        "yarlagadda laxmi devi",
        "laxmi devi yarlagada",
        "yarlagadda laxmi de",
    ] {
        let hits = idx.search(&req(text)).unwrap().hits;
        let ids: Vec<_> = hits.iter().map(|h| h.id).collect();
        assert_eq!(ids, [current.property_id, fixed.property_id], "{text:?}");
        assert!(!hits[0].former_name, "{text:?}");
        assert!(hits[1].former_name, "{text:?}");
        let hl = hits[1]
            .highlights
            .iter()
            .find(|h| h.field == "former_names[0]")
            .unwrap_or_else(|| panic!("{text:?}: {:?}", hits[1].highlights));
        assert_eq!(hl.text, "Yarlagadda Laxmi Devi");
        assert!(!hl.ranges.is_empty());
    }
    // By its current name it is found as it is now.
    let hits = idx.search(&req("yarlagadda lakshmi")).unwrap().hits;
    assert_eq!(hits[0].id, fixed.property_id);
    assert!(!hits[0].former_name);
}
