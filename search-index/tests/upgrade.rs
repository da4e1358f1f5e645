//! An index written by the tantivy landql used before keeps working after the upgrade.
//!
//! `data/index-tantivy-0.25/` was written by landql when it was built on tantivy 0.25: the
//! hand records of `fixture::hand()`, committed at change-log seq 17. tantivy 0.27 reads
//! that index format, and landql's schema serializes as it did (a raw-tokenized fast text
//! field is still `"fast": true`), so an API node restarted on the new binary keeps its
//! index and its change-log position: no rebuild. Were either to change, `open_or_reset`
//! would move the old index aside and the follower would rebuild it from PostgreSQL — the
//! check below that nothing was moved aside is what tells the two apart.

mod fixture;

use std::path::Path;

use search_index::follower::open_or_reset;
use search_index::{SearchIndex, SearchRequest};

const WRITTEN_AT_SEQ: i64 = 17;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn ids(idx: &SearchIndex, text: &str) -> Vec<String> {
    let req = SearchRequest {
        text: text.into(),
        first: 10,
        ..Default::default()
    };
    let hits = idx.search(&req).unwrap().hits;
    hits.iter().map(|h| h.id.to_string()).collect()
}

#[test]
fn an_index_written_by_tantivy_0_25_opens_as_it_is_and_answers_as_a_new_one() {
    let fixture_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/index-tantivy-0.25");
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("index");
    copy_dir(&fixture_dir, &dir);

    let old = open_or_reset(&dir).unwrap();
    let moved_aside: Vec<_> = std::fs::read_dir(parent.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "index")
        .collect();
    assert!(
        moved_aside.is_empty(),
        "the old index was set aside: {moved_aside:?}"
    );
    assert_eq!(old.last_seq().unwrap(), Some(WRITTEN_AT_SEQ));
    let records = fixture::hand();
    assert_eq!(old.num_docs(), records.len() as u64);

    // The same records indexed now give the same answers, in the same order.
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = SearchIndex::open_or_create(fresh_dir.path()).unwrap();
    for (_, r) in &records {
        fresh.upsert(r).unwrap();
    }
    fresh.commit(WRITTEN_AT_SEQ).unwrap();
    let mut asked = 0;
    for (_, r) in records.iter().take(12) {
        for text in [
            r.owners[0].name.clone(),
            format!("{} {}", r.village, r.survey_no),
        ] {
            let want = ids(&fresh, &text);
            assert!(!want.is_empty(), "{text:?} finds nothing in a new index");
            assert_eq!(ids(&old, &text), want, "{text:?}");
            asked += 1;
        }
    }
    assert!(asked >= 12);

    // And it takes writes on top of the old segments.
    let mut changed = records[0].1.clone();
    changed.owners[0].name = "Yarlagadda Padmavathi".into();
    old.upsert(&changed).unwrap();
    old.commit(WRITTEN_AT_SEQ + 1).unwrap();
    drop(old);
    let reopened = SearchIndex::open_or_create(&dir).unwrap();
    assert_eq!(reopened.last_seq().unwrap(), Some(WRITTEN_AT_SEQ + 1));
    assert_eq!(reopened.num_docs(), records.len() as u64);
    assert_eq!(
        ids(&reopened, "yarlagadda padmavathi").first(),
        Some(&changed.property_id.to_string())
    );
}
