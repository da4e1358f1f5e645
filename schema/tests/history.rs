//! History in depth over a real synced replica and a real devnet ledger: the record as it
//! stood at a block or a time (owners and shares included), its provenance, the proof of
//! that version against its block, and an owner's properties in one statement per level.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use ledger::client::Ledger;
use ledger::model::{Proposal, TxKind, Validation};
use migrations::sqlx;
use schema::Config;
use serde_json::{json, Value};
use testkit::{create, world, PRIMARY};

/// A transfer of `id` to two joint owners with shares.
fn joint_transfer(id: &str, nonce: &str, owners: &[(&str, &str, i64)]) -> Proposal {
    Proposal {
        kind: TxKind::TransferLandRecord,
        creator: "registrar@TS".into(),
        nonce: nonce.into(),
        args: json!({
            "property_id": id,
            "owners": owners.iter().map(|(r, n, s)| json!({"owner_ref": r, "name": n, "share_pct": s})).collect::<Vec<_>>(),
        }),
    }
}

/// `property(id, asOfBlock | asOf, consistency)`.
async fn ask(
    w: &testkit::World,
    id: &str,
    b: Option<i64>,
    t: Option<DateTime<Utc>>,
    c: &str,
) -> Value {
    w.query_vars(
        AS_OF,
        json!({"id": id, "b": b, "t": t.map(rfc3339), "c": c}),
    )
    .await
}

/// (owner_ref, share) of a property answer.
fn owners_of(p: &Value) -> Vec<(String, i64)> {
    p["owners"]
        .as_array()
        .expect("owners")
        .iter()
        .map(|o| {
            (
                o["owner"]["id"].as_str().expect("id").to_string(),
                o["sharePct"].as_i64().expect("share"),
            )
        })
        .collect()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

const AS_OF: &str = "query($id: ID!, $b: Int, $t: DateTime, $c: Consistency) { \
    property(id: $id, asOfBlock: $b, asOf: $t, consistency: $c) { id owners { owner { id name } sharePct } \
    provenance { source channel blockNumber txIndex txId recordHash stale historical committedAt \
                 supersededBy { blockNumber txId } } } }";

const VERIFY: &str = "query($id: ID!, $b: Int) { verifyProperty(id: $id, asOfBlock: $b) { \
    outcome asOfBlock replicaRecordHash ledgerRecordHash replicaVersion { blockNumber txId } \
    ledgerVersion { blockNumber txId } replicaInconsistencies proofVerified detail \
    proof { json blockNumber } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_travel_answers_and_proves_the_record_as_it_stood() {
    let config = Config {
        chain_poll: Duration::from_millis(50),
        ..Config::default()
    };
    let mut w = world(100, config).await;
    let ledger = w.ledger();

    // A parcel registered and then sold to joint owners, in two blocks at two times.
    let made = ledger
        .submit(PRIMARY, &[create("court", 1)])
        .await
        .expect("create");
    assert_eq!(made[0].validation, Validation::Valid, "{made:?}");
    let id = made[0].property_id.clone().expect("an ID");
    let created = made[0].block_number as i64;
    tokio::time::sleep(Duration::from_millis(30)).await;
    let sold = ledger
        .submit(
            PRIMARY,
            &[joint_transfer(
                &id,
                "court-sale",
                &[
                    ("court-buyer-a", "Lakshmi Devi", 60),
                    ("court-buyer-b", "Suresh Babu", 40),
                ],
            )],
        )
        .await
        .expect("transfer");
    assert_eq!(sold[0].validation, Validation::Valid, "{sold:?}");
    let transferred = sold[0].block_number as i64;
    assert!(transferred > created);
    w.wait_synced(Duration::from_secs(30)).await;

    // The direct computation: the history rows the sync worker wrote.
    let versions: Vec<(i64, String, DateTime<Utc>, String)> = sqlx::query_as(
        "SELECT block_number, tx_id, committed_at, record_hash FROM property_versions \
         WHERE property_id = $1 ORDER BY block_number, tx_index",
    )
    .bind(&id)
    .fetch_all(&w.pool)
    .await
    .expect("history");
    assert_eq!(versions.len(), 2, "{versions:?}");
    // The devnet stamps a live block with max(now, its tip's time), and the seeded chain's
    // times run ahead of now: both live versions may share a time (times are tested on a
    // seeded history below).
    let (create_time, sale_time) = (versions[0].2, versions[1].2);
    let seller = vec![("court-o1".to_string(), 100)];
    let buyers = vec![
        ("court-buyer-a".to_string(), 60),
        ("court-buyer-b".to_string(), 40),
    ];

    // As of blocks: the block that created it, the one before the sale, the sale's.
    for (b, owners, version) in [
        (created, &seller, &versions[0]),
        (transferred - 1, &seller, &versions[0]),
        (transferred, &buyers, &versions[1]),
    ] {
        let v = ask(&w, &id, Some(b), None, "FRESH").await;
        assert!(v.get("errors").is_none(), "block {b}: {v}");
        let p = &v["data"]["property"];
        assert_eq!(&owners_of(p), owners, "as of block {b}: {v}");
        let pv = &p["provenance"];
        assert_eq!(pv["source"], "REPLICA", "{v}");
        assert_eq!(pv["historical"], true);
        assert_eq!(pv["stale"], false, "a version at an applied block is final");
        assert_eq!(pv["channel"], PRIMARY);
        assert_eq!(pv["blockNumber"], json!(version.0), "{v}");
        assert_eq!(pv["txId"], json!(version.1));
        assert_eq!(pv["recordHash"], json!(version.3));
        let committed: DateTime<Utc> = pv["committedAt"].as_str().unwrap().parse().unwrap();
        assert_eq!(committed, version.2);
        if version.0 == created {
            assert_eq!(pv["supersededBy"]["blockNumber"], json!(transferred), "{v}");
            assert_eq!(pv["supersededBy"]["txId"], json!(versions[1].1));
        } else {
            assert_eq!(pv["supersededBy"], Value::Null, "{v}");
        }
    }
    // The names as recorded then come with the owners.
    let v = ask(&w, &id, Some(transferred), None, "REPLICA").await;
    assert_eq!(
        v["data"]["property"]["owners"][1]["owner"]["name"], "Suresh Babu",
        "{v}"
    );

    // As of a time: the sale's, and any later.
    for t in [
        sale_time,
        Utc::now().max(sale_time) + chrono::Duration::days(1),
    ] {
        let v = ask(&w, &id, None, Some(t), "FRESH").await;
        assert!(v.get("errors").is_none(), "{t}: {v}");
        assert_eq!(owners_of(&v["data"]["property"]), buyers, "as of {t}: {v}");
        assert_eq!(v["data"]["property"]["provenance"]["historical"], true);
    }

    // "Who owned it on that day?" over a seeded history spread in time: the property with
    // the most versions, asked at, just before and just after each version's time, against
    // the direct computation — the last version (in chain order) committed by then.
    let busiest: String = sqlx::query_scalar(
        "SELECT property_id FROM property_versions GROUP BY property_id \
         ORDER BY count(DISTINCT committed_at) DESC, property_id LIMIT 1",
    )
    .fetch_one(&w.pool)
    .await
    .expect("a property with history");
    let seeded: Vec<(DateTime<Utc>, String, sqlx::types::Json<Value>)> = sqlx::query_as(
        "SELECT committed_at, record_hash, record FROM property_versions \
         WHERE property_id = $1 ORDER BY block_number, tx_index",
    )
    .bind(&busiest)
    .fetch_all(&w.pool)
    .await
    .expect("its history");
    assert!(
        seeded.windows(2).any(|p| p[0].0 < p[1].0),
        "versions at distinct times: {seeded:?}"
    );
    let ms = chrono::Duration::milliseconds(1);
    for t in seeded.iter().flat_map(|(t, _, _)| [*t - ms, *t, *t + ms]) {
        let want = seeded.iter().rev().find(|(c, _, _)| *c <= t);
        let v = ask(&w, &busiest, None, Some(t), "FRESH").await;
        assert!(v.get("errors").is_none(), "{t}: {v}");
        let p = &v["data"]["property"];
        match want {
            None => assert_eq!(*p, Value::Null, "before it existed ({t}): {v}"),
            Some((committed, hash, record)) => {
                assert_eq!(p["provenance"]["recordHash"], json!(hash), "as of {t}: {v}");
                let at: DateTime<Utc> = p["provenance"]["committedAt"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert_eq!(at, *committed);
                let recorded: Vec<(String, i64)> = record.0["owners"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| {
                        (
                            o["owner_ref"].as_str().unwrap().to_string(),
                            o["share_pct"].as_i64().unwrap(),
                        )
                    })
                    .collect();
                assert_eq!(owners_of(p), recorded, "owners as of {t}");
            }
        }
    }

    // Before it existed: null, by block and by time.
    let v = ask(&w, &id, Some(created - 1), None, "FRESH").await;
    assert_eq!(v["data"]["property"], Value::Null, "{v}");
    let v = ask(
        &w,
        &id,
        None,
        Some(create_time - chrono::Duration::milliseconds(1)),
        "FRESH",
    )
    .await;
    assert_eq!(v["data"]["property"], Value::Null, "{v}");

    // The ledger's history says the same as the replica's.
    let from_replica = ask(&w, &id, Some(created), None, "REPLICA").await;
    let from_ledger = ask(&w, &id, Some(created), None, "LEDGER").await;
    assert_eq!(
        from_ledger["data"]["property"]["provenance"]["source"], "LEDGER",
        "{from_ledger}"
    );
    for field in [
        "recordHash",
        "blockNumber",
        "txId",
        "committedAt",
        "supersededBy",
    ] {
        assert_eq!(
            from_ledger["data"]["property"]["provenance"][field],
            from_replica["data"]["property"]["provenance"][field],
            "{field}"
        );
    }
    assert_eq!(
        owners_of(&from_ledger["data"]["property"]),
        owners_of(&from_replica["data"]["property"])
    );

    // Bad input says what is wrong.
    let v = ask(&w, &id, Some(created), Some(create_time), "FRESH").await;
    assert_eq!(
        v["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{v}"
    );
    assert!(v["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("not both"));
    let v = ask(&w, &id, Some(-1), None, "FRESH").await;
    assert_eq!(
        v["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{v}"
    );

    // The old version's proof, against the block that carries it.
    let v = w
        .query_vars(VERIFY, json!({"id": id, "b": transferred - 1}))
        .await;
    let ver = &v["data"]["verifyProperty"];
    assert_eq!(ver["outcome"], "MATCH", "{v}");
    assert_eq!(ver["asOfBlock"], json!(transferred - 1));
    assert_eq!(ver["proofVerified"], true, "{v}");
    assert_eq!(ver["ledgerVersion"]["blockNumber"], json!(created));
    assert_eq!(ver["ledgerVersion"]["txId"], json!(versions[0].1));
    assert_eq!(ver["replicaVersion"], ver["ledgerVersion"]);
    assert_eq!(ver["replicaRecordHash"], json!(versions[0].3));
    assert_eq!(ver["proof"]["blockNumber"], json!(created));
    // Independently, with the ledger's own key: the proof holds for the old record's hash…
    let doc: Value = serde_json::from_str(ver["proof"]["json"].as_str().unwrap()).unwrap();
    let key = ledger::signing::parse_public_key(&w.devnet.node.info().orderer_public_key).unwrap();
    let expect = |hash: &str| ledger::proof::Expect {
        key: Some(id.clone()),
        record_hash: Some(hash.parse().unwrap()),
    };
    let proved = ledger::proof::verify_proof(&doc, &key, &expect(&versions[0].3))
        .expect("the old version's proof verifies");
    assert_eq!(proved.block_number as i64, created);
    assert_eq!(proved.tx_id, versions[0].1);
    // …and fails for any other expectation: the current record's hash is not what that
    // block wrote.
    let wrong = ledger::proof::verify_proof(&doc, &key, &expect(&versions[1].3))
        .expect_err("a tampered expectation fails");
    assert_eq!(wrong.step, ledger::proof::Step::RecordHash, "{wrong}");
    // The newer version verifies against its own block.
    let v = w
        .query_vars(VERIFY, json!({"id": id, "b": transferred}))
        .await;
    assert_eq!(v["data"]["verifyProperty"]["outcome"], "MATCH", "{v}");
    assert_eq!(
        v["data"]["verifyProperty"]["proof"]["blockNumber"],
        json!(transferred)
    );
    // Before it existed, the ledger has no version.
    let v = w
        .query_vars(VERIFY, json!({"id": id, "b": created - 1}))
        .await;
    assert_eq!(
        v["data"]["verifyProperty"]["outcome"], "NOT_ON_LEDGER",
        "{v}"
    );

    // Alter the old version in the replica's history: verification says MISMATCH, a REPLICA
    // read serves it marked stale, a FRESH read goes to the ledger.
    sqlx::query(
        "UPDATE property_versions SET record = jsonb_set(record, '{owners,0,share_pct}', '50') \
         WHERE property_id = $1 AND block_number = $2",
    )
    .bind(&id)
    .bind(created)
    .execute(&w.pool)
    .await
    .expect("tamper");
    let v = w.query_vars(VERIFY, json!({"id": id, "b": created})).await;
    let ver = &v["data"]["verifyProperty"];
    assert_eq!(ver["outcome"], "MISMATCH", "{v}");
    assert_ne!(ver["replicaRecordHash"], ver["ledgerRecordHash"]);
    assert!(ver["replicaInconsistencies"][0]
        .as_str()
        .unwrap()
        .contains("stored record hash"));
    assert_eq!(
        ver["proofVerified"], true,
        "the ledger's own proof still holds"
    );
    let v = ask(&w, &id, Some(created), None, "REPLICA").await;
    assert_eq!(owners_of(&v["data"]["property"])[0].1, 50, "{v}");
    assert_eq!(v["data"]["property"]["provenance"]["stale"], true);
    let v = ask(&w, &id, Some(created), None, "FRESH").await;
    assert_eq!(
        v["data"]["property"]["provenance"]["source"], "LEDGER",
        "{v}"
    );
    assert_eq!(owners_of(&v["data"]["property"]), seller);

    // Beyond the replica: sync stopped, the parcel sold again.
    w.stop_sync().await;
    let resold = ledger
        .submit(
            PRIMARY,
            &[joint_transfer(
                &id,
                "court-resale",
                &[("court-buyer-c", "Anil Reddy", 100)],
            )],
        )
        .await
        .expect("resale");
    let later = resold[0].block_number as i64;
    tokio::time::sleep(Duration::from_millis(400)).await;
    // FRESH and LEDGER read the ledger's history.
    for c in ["FRESH", "LEDGER"] {
        let v = ask(&w, &id, Some(later), None, c).await;
        assert!(v.get("errors").is_none(), "{c}: {v}");
        let p = &v["data"]["property"];
        assert_eq!(p["provenance"]["source"], "LEDGER", "{c}: {v}");
        assert_eq!(p["provenance"]["historical"], true);
        assert_eq!(p["provenance"]["blockNumber"], json!(later));
        assert_eq!(owners_of(p), vec![("court-buyer-c".to_string(), 100)]);
    }
    // The sale's version, asked at a block the replica has, now says what replaced it —
    // in the ledger's answer, which knows the resale.
    let v = ask(&w, &id, Some(transferred), None, "LEDGER").await;
    assert_eq!(
        v["data"]["property"]["provenance"]["supersededBy"]["blockNumber"],
        json!(later),
        "{v}"
    );
    // REPLICA says plainly that it is behind, and how far it has got.
    let applied: i64 =
        sqlx::query_scalar("SELECT block_number FROM checkpoints WHERE channel = $1")
            .bind(PRIMARY)
            .fetch_one(&w.pool)
            .await
            .expect("checkpoint");
    assert!(applied < later);
    let v = ask(&w, &id, Some(later), None, "REPLICA").await;
    assert_eq!(
        v["errors"][0]["extensions"]["code"], "REPLICA_BEHIND",
        "{v}"
    );
    let message = v["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("up to block {applied}")) && message.contains(PRIMARY),
        "{message}"
    );
    // A block the chain has not cut is refused, whatever the consistency.
    for c in ["FRESH", "LEDGER", "REPLICA"] {
        let v = ask(&w, &id, Some(later + 1000), None, c).await;
        assert_eq!(
            v["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{c}: {v}"
        );
        assert!(
            v["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("not been cut"),
            "{c}: {v}"
        );
    }
    // Verifying the version the replica lacks says so.
    let v = w.query_vars(VERIFY, json!({"id": id, "b": later})).await;
    let ver = &v["data"]["verifyProperty"];
    assert_eq!(ver["outcome"], "MISSING_IN_REPLICA", "{v}");
    assert_eq!(ver["proofVerified"], true, "{v}");
    assert!(ver["detail"]
        .as_str()
        .unwrap()
        .contains(&format!("up to block {applied}")));
}

/// Statements a query used.
async fn statements(w: &testkit::World, q: &str, vars: Value) -> (u64, Value) {
    let before = w.services.stats().sql_statements;
    let v = w.query_vars(q, vars).await;
    assert!(v.get("errors").is_none(), "{v}");
    (
        w.services.stats().sql_statements - before,
        v["data"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_properties_cost_one_statement_per_level() {
    let w = world(600, Config::default()).await;
    // The direct computation: every owner's properties, by ID.
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT o.owner_ref, o.property_id FROM ownerships o \
         JOIN properties p ON p.id = o.property_id ORDER BY o.owner_ref, o.property_id",
    )
    .fetch_all(&w.pool)
    .await
    .expect("ownerships");
    let mut held: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (owner, property) in rows {
        held.entry(owner).or_default().push(property);
    }
    assert!(
        held.values().any(|p| p.len() > 2),
        "the seeded ledger has owners of several parcels"
    );
    // A name prefix shared by many owners.
    let prefix: String = sqlx::query_scalar(
        "SELECT left(lower(name), 1) FROM owners GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
    )
    .fetch_one(&w.pool)
    .await
    .expect("prefix");

    let check = |owners: &Value, first: usize| {
        let edges = owners["edges"].as_array().expect("edges");
        for e in edges {
            let owner = e["node"]["id"].as_str().unwrap();
            let props = &e["node"]["properties"];
            let got: Vec<&str> = props["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["node"]["id"].as_str().unwrap())
                .collect();
            let all = held.get(owner).cloned().unwrap_or_default();
            let want: Vec<&str> = all.iter().take(first).map(String::as_str).collect();
            assert_eq!(got, want, "owner {owner}");
            assert_eq!(props["totalCount"], json!(all.len()), "owner {owner}");
            assert_eq!(props["pageInfo"]["hasNextPage"], json!(all.len() > first));
        }
        edges.len()
    };

    // owners { properties }: the owners, their properties, their counts — whatever the
    // number of owners.
    let q = "query($p: String!, $n: Int) { owners(name: $p, first: $n) { edges { node { id \
             properties(first: 2) { totalCount pageInfo { hasNextPage endCursor } \
             edges { node { id owners { owner { id } sharePct } } } } } } } }";
    let mut used_by_size = Vec::new();
    for n in [2, 10, 50] {
        let (used, d) = statements(&w, q, json!({"p": prefix, "n": n})).await;
        let owners = check(&d["owners"], 2);
        assert_eq!(owners, n as usize, "the prefix matches at least {n} owners");
        used_by_size.push((n, used));
    }
    assert!(
        used_by_size.iter().all(|(_, used)| *used == 3),
        "owners → properties → counts should be 3 statements at every size: {used_by_size:?}"
    );

    // Owners reached through properties' owners: batched by the owner DataLoaders.
    let q = "query($n: Int) { properties(first: $n) { edges { node { id owners { owner { id \
             properties(first: 3) { totalCount pageInfo { hasNextPage } edges { node { id } } } } } } } } }";
    let mut used_by_size = Vec::new();
    for n in [3, 30, 90] {
        let (used, d) = statements(&w, q, json!({"n": n})).await;
        let mut seen = BTreeSet::new();
        for p in d["properties"]["edges"].as_array().unwrap() {
            for o in p["node"]["owners"].as_array().unwrap() {
                let owner = &o["owner"];
                let id = owner["id"].as_str().unwrap().to_string();
                let wrapped = json!({"edges": [{"node": owner}]});
                check(&wrapped, 3);
                seen.insert(id);
            }
        }
        assert!(
            seen.len() >= n as usize / 2,
            "{n} properties: {} owners",
            seen.len()
        );
        used_by_size.push((n, used));
    }
    assert!(
        used_by_size.iter().all(|(_, used)| *used == 3),
        "properties → owners' properties → counts should be 3 statements at every size: {used_by_size:?}"
    );

    // The next page of one owner's properties follows from the cursor, as before.
    let (owner, all) = held
        .iter()
        .find(|(_, p)| p.len() > 2)
        .map(|(o, p)| (o.clone(), p.clone()))
        .unwrap();
    let (_, d) = statements(
        &w,
        "query($o: ID!) { owner(id: $o) { properties(first: 1) { pageInfo { endCursor } } } }",
        json!({"o": owner}),
    )
    .await;
    let cursor = d["owner"]["properties"]["pageInfo"]["endCursor"].clone();
    let (_, d) = statements(
        &w,
        "query($o: ID!, $a: String) { owner(id: $o) { properties(first: 100, after: $a) { edges { node { id } } } } }",
        json!({"o": owner, "a": cursor}),
    )
    .await;
    let rest: Vec<String> = d["owner"]["properties"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(rest, all[1..].to_vec());
}
