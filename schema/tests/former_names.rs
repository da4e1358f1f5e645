//! Former names stay findable. A correction fixes a misspelt owner name, and people still
//! search with the old spelling from old papers: the record is found by every name it has
//! carried, marked as found by a former name, and ranked below records that carry that
//! name now — through the follower's live path and through a rebuild alike.

use std::time::Duration;

use ledger::client::Ledger;
use ledger::model::{Proposal, TxKind, Validation};
use schema::Config;
use search_index::follower::{follow, rebuild, FollowOptions};
use serde_json::{json, Value};
use testkit::{create, world, PRIMARY};

const OLD: &str = "Venkata Narasimha Bandary";
const NEW: &str = "Venkata Narasimha Bandaru";

fn named(tag: &str, name: &str) -> Proposal {
    let mut p = create(tag, 1);
    p.args["owners"][0]["name"] = json!(name);
    p
}

fn correction(id: &str, name: &str) -> Proposal {
    Proposal {
        kind: TxKind::CorrectLandRecord,
        creator: "registrar@TS".into(),
        nonce: format!("fix-{id}"),
        args: json!({"property_id": id, "note": "owner name misspelt",
                     "owners": [{"owner_ref": "misspelt-o1", "name": name, "share_pct": 100}]}),
    }
}

/// The hits of a search as (id, formerName, highlighted fields).
async fn search(w: &testkit::World, text: &str) -> Vec<(String, bool, Vec<String>)> {
    let d = w
        .data(&format!(
            "{{ search(text: \"{text}\", first: 10) {{ hits {{ property {{ id }} formerName \
             highlights {{ field text }} }} }} }}"
        ))
        .await;
    d["search"]["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h: &Value| {
            let fields = h["highlights"]
                .as_array()
                .expect("highlights")
                .iter()
                .map(|x| format!("{}={}", x["field"].as_str().unwrap_or(""), x["text"]))
                .collect();
            (
                h["property"]["id"].as_str().unwrap_or("").to_string(),
                h["formerName"].as_bool().expect("formerName"),
                fields,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrected_name_is_found_by_its_old_spelling_below_current_ones() {
    let w = world(200, Config::default()).await;
    let ledger = w.ledger();
    let created = ledger
        .submit(PRIMARY, &[named("misspelt", OLD), named("current", OLD)])
        .await
        .expect("creates");
    assert!(
        created.iter().all(|r| r.validation == Validation::Valid),
        "{created:?}"
    );
    let fixed = created[0].property_id.clone().expect("an ID");
    let current = created[1].property_id.clone().expect("an ID");

    // The live path: a follower on the schema's own index applies the correction.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let follower = tokio::spawn(follow(
        w.index.clone(),
        w.pool.clone(),
        FollowOptions {
            commit_interval: Duration::from_millis(100),
            ..FollowOptions::default()
        },
        async move {
            let _ = stopped.await;
        },
    ));
    let r = ledger
        .submit(PRIMARY, &[correction(&fixed, NEW)])
        .await
        .expect("correction");
    assert_eq!(r[0].validation, Validation::Valid, "{r:?}");
    w.wait_synced(Duration::from_secs(30)).await;

    let mut waited = Duration::ZERO;
    let hits = loop {
        let hits = search(&w, "venkata narasimha bandary").await;
        if hits.iter().any(|h| h.0 == fixed && h.1) || waited > Duration::from_secs(10) {
            break hits;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += Duration::from_millis(100);
    };
    let check = |hits: &[(String, bool, Vec<String>)], how: &str| {
        let pos = |id: &str| hits.iter().position(|h| h.0 == id);
        let (Some(c), Some(f)) = (pos(&current), pos(&fixed)) else {
            panic!("{how}: both records are found by the old spelling: {hits:?}");
        };
        assert!(c < f, "{how}: the current name ranks first: {hits:?}");
        assert!(
            !hits[c].1,
            "{how}: a current name is not a former one: {hits:?}"
        );
        assert!(hits[f].1, "{how}: the corrected record is marked: {hits:?}");
        assert!(
            hits[f].2.contains(&format!("formerNames[0]=\"{OLD}\"")),
            "{how}: the old spelling is highlighted as a former name: {hits:?}"
        );
    };
    check(&hits, "follower");
    // By its new name it is found as current, not as a former name.
    let by_new = search(&w, "venkata narasimha bandaru").await;
    let first = by_new.first().expect("found by the new name");
    assert_eq!(first.0, fixed, "{by_new:?}");
    assert!(!first.1, "{by_new:?}");

    let _ = stop.send(());
    let _ = follower.await;

    // The same from a rebuild, which reads every version's names at once.
    rebuild(&w.index, &w.pool).await.expect("rebuild");
    let hits = search(&w, "narasimha bandary venkata").await;
    check(&hits, "rebuild");
}
