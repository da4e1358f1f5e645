//! An index written by an older landql: tantivy still reads it, and landql, whose index
//! schema has moved since (former owner names have fields of their own), sets it aside
//! instead of misreading it, so that the follower rebuilds it from PostgreSQL.
//!
//! `data/index-tantivy-0.25/` was written by landql when it was built on tantivy 0.25 and
//! had no former-name fields: the hand records of `fixture::hand()`, committed at
//! change-log seq 17. tantivy 0.27 reads that index format (checked below with tantivy
//! alone: its documents and their stored records); a binary whose schema differs from the
//! index's must not serve it, and `open_or_reset` moves it aside (kept beside, not deleted)
//! and opens a new one, which reports no change-log position — what makes the follower
//! rebuild.

mod fixture;

use std::path::Path;

use search_index::follower::open_or_reset;
use search_index::{SearchIndex, SearchRequest};
use tantivy::schema::Value;

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
fn an_index_of_an_older_schema_is_read_by_tantivy_and_set_aside_by_landql() {
    let fixture_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/index-tantivy-0.25");
    let records = fixture::hand();

    // tantivy 0.27 reads what 0.25 wrote: every document, and each stored record (from a
    // copy: opening an index writes a lock file beside it).
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&fixture_dir, copy.path());
    let raw = tantivy::Index::open_in_dir(copy.path()).unwrap();
    let record_field = raw.schema().get_field("record").unwrap();
    assert!(
        raw.schema().get_field("former").is_err(),
        "the fixture predates former names"
    );
    let searcher = raw.reader().unwrap().searcher();
    assert_eq!(searcher.num_docs(), records.len() as u64);
    let mut stored = 0;
    for segment in searcher.segment_readers() {
        let store = segment.get_store_reader(1).unwrap();
        for doc in 0..segment.max_doc() {
            let d: tantivy::TantivyDocument = store.get(doc).unwrap();
            let json = d.get_first(record_field).and_then(|v| v.as_str()).unwrap();
            let r: ledger::model::Record = serde_json::from_str(json).unwrap();
            assert!(records.iter().any(|(_, h)| h.property_id == r.property_id));
            stored += 1;
        }
    }
    assert_eq!(stored, records.len());

    // landql sets it aside and starts a new index with no change-log position.
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("index");
    copy_dir(&fixture_dir, &dir);
    let new = open_or_reset(&dir).unwrap();
    let moved_aside: Vec<_> = std::fs::read_dir(parent.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "index")
        .collect();
    assert_eq!(
        moved_aside.len(),
        1,
        "the old index is kept beside: {moved_aside:?}"
    );
    assert_eq!(new.num_docs(), 0);
    assert_eq!(
        new.last_seq().unwrap(),
        None,
        "no position: the follower rebuilds"
    );

    // Written to, it answers as any new index does.
    for (_, r) in &records {
        new.upsert(r, &[]).unwrap();
    }
    new.commit(WRITTEN_AT_SEQ).unwrap();
    drop(new);
    let reopened = SearchIndex::open_or_create(&dir).unwrap();
    assert_eq!(reopened.last_seq().unwrap(), Some(WRITTEN_AT_SEQ));
    let r = &records[0].1;
    assert_eq!(
        ids(&reopened, &r.owners[0].name).first(),
        Some(&r.property_id.to_string())
    );
}
