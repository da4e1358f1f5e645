//! The schema over a real synced replica, a real devnet ledger and a real search index:
//! reads, pages, statement counts, errors, freshness and verification.

use std::time::{Duration, Instant};

use ledger::client::Ledger;
use migrations::sqlx;
use schema::Config;
use serde_json::{json, Value};
use testkit::{create, transfer, world, PRIMARY};

fn ids_of(page: &Value) -> Vec<String> {
    page["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["id"].as_str().expect("id").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_pages_and_statement_counts() {
    let w = world(600, Config::default()).await;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM properties")
        .fetch_one(&w.pool)
        .await
        .unwrap();
    assert!(total >= 600, "{total}");

    // A page of 100 properties with owners, documents and the first page of history costs a
    // fixed number of statements: the page, the documents, the histories.
    let page_query = |n: i64| {
        format!(
            "{{ properties(first: {n}) {{ edges {{ node {{ id owners {{ owner {{ id name }} sharePct }} \
             documents {{ docHash docType }} history(first: 3) {{ edges {{ node {{ event }} }} }} \
             provenance {{ source stale recordHash }} }} }} }} }}"
        )
    };
    for n in [10, 100] {
        let before = w.services.stats().sql_statements;
        let d = w.data(&page_query(n)).await;
        let used = w.services.stats().sql_statements - before;
        assert_eq!(ids_of(&d["properties"]).len(), n as usize);
        assert_eq!(used, 3, "a page of {n} used {used} statements");
        let docs: usize = d["properties"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["documents"].as_array().unwrap().len())
            .sum();
        if n == 100 {
            assert!(
                docs > 0,
                "the seeded ledger links documents to some properties"
            );
        }
    }

    // Every order pages through every row exactly once, in order.
    for order in [
        "ID_ASC",
        "CREATED_AT_ASC",
        "CREATED_AT_DESC",
        "UPDATED_AT_DESC",
        "MARKET_VALUE_DESC",
        "AREA_DESC",
    ] {
        let mut seen = Vec::new();
        let mut after = Value::Null;
        loop {
            let v = w
                .query_vars(
                    "query($o: PropertyOrder, $a: String) { properties(orderBy: $o, first: 97, after: $a) { \
                     edges { node { id marketValue areaSqM createdAt updatedAt } } pageInfo { hasNextPage endCursor } } }",
                    json!({"o": order, "a": after}),
                )
                .await;
            assert!(v.get("errors").is_none(), "{v}");
            let p = &v["data"]["properties"];
            seen.extend(ids_of(p));
            if !p["pageInfo"]["hasNextPage"].as_bool().unwrap() {
                break;
            }
            after = p["pageInfo"]["endCursor"].clone();
        }
        let unique: std::collections::HashSet<_> = seen.iter().collect();
        assert_eq!(seen.len() as i64, total, "{order}: every row");
        assert_eq!(unique.len(), seen.len(), "{order}: no row twice");
    }
    // Market value order is by value, descending.
    let d = w
        .data("{ properties(orderBy: MARKET_VALUE_DESC, first: 50) { edges { node { marketValue } } } }")
        .await;
    let values: Vec<i64> = d["properties"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["marketValue"].as_i64().unwrap())
        .collect();
    assert!(values.windows(2).all(|p| p[0] >= p[1]), "{values:?}");

    // totalCount: from the maintained counts for a location filter, counted otherwise.
    let (state, district): (String, String) =
        sqlx::query_as("SELECT state, district FROM properties LIMIT 1")
            .fetch_one(&w.pool)
            .await
            .unwrap();
    let in_district: i64 =
        sqlx::query_scalar("SELECT count(*) FROM properties WHERE state = $1 AND district = $2")
            .bind(&state)
            .bind(&district)
            .fetch_one(&w.pool)
            .await
            .unwrap();
    let v = w
        .query_vars(
            "query($s: String, $d: String) { properties(filter: {state: $s, district: $d}) { totalCount } \
             verified: properties(filter: {state: $s, verificationStatus: VERIFIED}) { totalCount edges { node { verificationStatus location { state } } } } }",
            json!({"s": state.to_lowercase(), "d": district}),
        )
        .await;
    assert!(v.get("errors").is_none(), "{v}");
    assert_eq!(v["data"]["properties"]["totalCount"], json!(in_district));
    for e in v["data"]["verified"]["edges"].as_array().unwrap() {
        assert_eq!(e["node"]["verificationStatus"], "VERIFIED");
        assert_eq!(e["node"]["location"]["state"], json!(state));
    }

    // Locations: the states' counts add up to every property.
    let d = w.data("{ locations { name level properties } }").await;
    let sum: i64 = d["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["properties"].as_i64().unwrap())
        .sum();
    assert_eq!(sum, total);
    assert_eq!(d["locations"][0]["level"], "state");

    // One property, in any spelling of its ID, with its history.
    let id = &w.ids(1).await[0];
    let pid: ledger::PropertyId = id.parse().unwrap();
    let encoded = pid.in_form(ledger::IdForm::Encoded).to_string();
    for spelling in [id.clone(), encoded, id.to_lowercase()] {
        let v = w
            .query_vars(
                "query($id: ID!) { property(id: $id) { id provenance { source channel blockNumber recordHash stale } } \
                 propertyHistory(id: $id) { totalCount edges { node { event version { blockNumber txId } recordHash } } } }",
                json!({"id": spelling}),
            )
            .await;
        assert!(v.get("errors").is_none(), "{v}");
        assert_eq!(v["data"]["property"]["id"], json!(id), "{spelling}");
        assert_eq!(v["data"]["property"]["provenance"]["source"], "REPLICA");
        assert_eq!(v["data"]["property"]["provenance"]["stale"], false);
        let versions = v["data"]["propertyHistory"]["edges"].as_array().unwrap();
        assert!(!versions.is_empty());
        assert_eq!(versions[0]["node"]["event"], "PropertyCreated");
        assert_eq!(
            v["data"]["propertyHistory"]["totalCount"].as_i64().unwrap() as usize,
            versions.len()
        );
    }

    // Search over the index, with the replica's property behind each hit.
    let name: String =
        sqlx::query_scalar("SELECT record->'owners'->0->>'name' FROM properties LIMIT 1")
            .fetch_one(&w.pool)
            .await
            .unwrap();
    let v = w
        .query_vars(
            "query($t: String!) { search(text: $t, first: 5) { total hits { score property { id owners { owner { name } } } \
             highlights { field text ranges } } facets { field values { value count } } pageInfo { hasNextPage endCursor } } }",
            json!({"t": name}),
        )
        .await;
    assert!(v.get("errors").is_none(), "{v}");
    let hits = v["data"]["search"]["hits"].as_array().unwrap();
    assert!(!hits.is_empty(), "{v}");
    assert!(!hits[0]["highlights"].as_array().unwrap().is_empty());
    assert_eq!(v["data"]["search"]["facets"].as_array().unwrap().len(), 3);

    // Bad input: each gets BAD_USER_INPUT and says what is wrong.
    for (q, says) in [
        (
            "{ property(id: \"LRI-IND-T1-2026-03-00567\") { id } }",
            "state code",
        ),
        ("{ property(id: \"hello\") { id } }", "LRI-IND-"),
        (
            "{ properties(first: 101) { totalCount } }",
            "page limit of 100",
        ),
        (
            "{ properties(first: -1) { totalCount } }",
            "between 0 and 100",
        ),
        (
            "{ properties(after: \"garbage\") { totalCount } }",
            "not a properties cursor",
        ),
        ("{ search(text: \"  \") { total } }", "empty"),
        (
            "{ search(text: \"ravi\", filter: {ownerId: \"x\"}) { total } }",
            "ownerId",
        ),
        (
            "{ locations(district: \"Warangal\") { name } }",
            "needs `state`",
        ),
    ] {
        let (code, message) = w.error_code(q).await;
        assert_eq!(code, "BAD_USER_INPUT", "{q}: {message}");
        assert!(
            message.contains(says),
            "{q}: {message:?} should say {says:?}"
        );
    }
    // A cursor of one order is refused by another.
    let d = w
        .data("{ properties(orderBy: AREA_DESC, first: 1) { pageInfo { endCursor } } }")
        .await;
    let c = d["properties"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_string();
    let v = w
        .query_vars(
            "query($a: String) { properties(orderBy: CREATED_AT_ASC, after: $a) { totalCount } }",
            json!({"a": c}),
        )
        .await;
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("AREA_DESC"),
        "{v}"
    );

    // An unknown (well-formed) ID is null, after asking the ledger.
    let d = w
        .data("{ property(id: \"LRI-IND-TS-2026-99-99999\") { id } }")
        .await;
    assert_eq!(d["property"], Value::Null);

    // `property(id)` lookups of concurrent requests share statements while the database is
    // busy, and each still gets its own answer: hold the table locked so that the first
    // lookups' statements wait, and the rest queue behind them.
    let ids = w.ids(300).await;
    let ids = &ids[200..];
    let mut lock = w.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE properties IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let before = w.services.stats().sql_statements;
    let mut asks: Vec<(String, Option<String>)> = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let pid: ledger::PropertyId = id.parse().unwrap();
        let spelling = match i % 3 {
            0 => id.clone(),
            1 => pid.in_form(ledger::IdForm::Encoded).to_string(),
            _ => id.to_lowercase(),
        };
        asks.push((spelling, Some(id.clone())));
    }
    asks.push((ids[0].to_lowercase(), Some(ids[0].clone())));
    asks.push(("LRI-IND-TS-2026-99-99998".into(), None));
    let answers = futures::future::join_all(asks.iter().map(|(spelling, _)| {
        w.query_vars(
            "query($id: ID!) { property(id: $id, consistency: REPLICA) { id } }",
            json!({ "id": spelling }),
        )
    }));
    let release = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        lock.commit().await.unwrap();
    };
    let (answers, ()) = tokio::join!(answers, release);
    for ((spelling, want), v) in asks.iter().zip(&answers) {
        assert!(v.get("errors").is_none(), "{spelling}: {v}");
        assert_eq!(v["data"]["property"]["id"], json!(want), "{spelling}");
    }
    let used = w.services.stats().sql_statements - before;
    // At most 4 batches wait on the lock; everything else goes in the next one or two.
    assert!(used <= 6, "{} lookups used {used} statements", asks.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_and_tampering() {
    let w = world(200, Config::default()).await;
    let id = w.ids(3).await[1].clone();
    let q =
        "query($id: ID!) { verifyProperty(id: $id) { outcome replicaRecordHash ledgerRecordHash \
             ledgerVersion { blockNumber txId } replicaInconsistencies proofVerified chainHeight \
             proof { json blockNumber headerHash auditPath } } }";
    let v = w.query_vars(q, json!({"id": id})).await;
    let ver = &v["data"]["verifyProperty"];
    assert_eq!(ver["outcome"], "MATCH", "{v}");
    assert_eq!(ver["replicaRecordHash"], ver["ledgerRecordHash"]);
    assert_eq!(ver["proofVerified"], true);
    // The proof verifies independently, with the ledger's key, as the ledger sent it.
    let doc: Value = serde_json::from_str(ver["proof"]["json"].as_str().unwrap()).unwrap();
    let key = ledger::signing::parse_public_key(&w.devnet.node.info().orderer_public_key).unwrap();
    let proved = ledger::proof::verify_proof(
        &doc,
        &key,
        &ledger::proof::Expect {
            key: Some(id.clone()),
            record_hash: Some(ver["ledgerRecordHash"].as_str().unwrap().parse().unwrap()),
        },
    )
    .expect("the returned proof verifies");
    assert_eq!(proved.key, id);

    // Alter the record behind landql's back (the hash column left alone).
    sqlx::query(
        "UPDATE properties SET record = jsonb_set(record, '{market_value}', '1') WHERE id = $1",
    )
    .bind(&id)
    .execute(&w.pool)
    .await
    .unwrap();
    let read = "query($id: ID!, $c: Consistency) { property(id: $id, consistency: $c) { marketValue provenance { source stale } } }";
    let v = w.query_vars(read, json!({"id": id, "c": "REPLICA"})).await;
    assert_eq!(v["data"]["property"]["marketValue"], 1, "{v}");
    assert_eq!(
        v["data"]["property"]["provenance"]["stale"], true,
        "an altered row is never fresh"
    );
    let v = w.query_vars(read, json!({"id": id, "c": "FRESH"})).await;
    assert_eq!(
        v["data"]["property"]["provenance"]["source"], "LEDGER",
        "{v}"
    );
    assert_ne!(v["data"]["property"]["marketValue"], 1);
    let v = w.query_vars(q, json!({"id": id})).await;
    let ver = &v["data"]["verifyProperty"];
    assert_eq!(ver["outcome"], "MISMATCH", "{v}");
    assert!(
        ver["replicaInconsistencies"][0]
            .as_str()
            .unwrap()
            .contains("market_value"),
        "{v}"
    );

    // A coordinated alteration (record and its stored hash) still fails verification, which
    // never trusts the hash column.
    let other = w.ids(3).await[2].clone();
    sqlx::query(
        "UPDATE properties SET record = jsonb_set(record, '{area_text}', '\"99 acres\"'), \
         area_text = '99 acres', record_hash = 'x' WHERE id = $1",
    )
    .bind(&other)
    .execute(&w.pool)
    .await
    .unwrap();
    let fixed_hash: String =
        sqlx::query_scalar("SELECT record::text FROM properties WHERE id = $1")
            .bind(&other)
            .fetch_one(&w.pool)
            .await
            .map(|t: String| {
                let v: Value = serde_json::from_str(&t).unwrap();
                ledger::canonical::hash_jcs(&ledger::canonical::Canonical(&v))
                    .unwrap()
                    .to_hex()
            })
            .unwrap();
    sqlx::query("UPDATE properties SET record_hash = $2 WHERE id = $1")
        .bind(&other)
        .bind(&fixed_hash)
        .execute(&w.pool)
        .await
        .unwrap();
    let v = w.query_vars(q, json!({"id": other})).await;
    assert_eq!(v["data"]["verifyProperty"]["outcome"], "MISMATCH", "{v}");
    assert_eq!(
        v["data"]["verifyProperty"]["replicaInconsistencies"],
        json!([])
    );

    // Missing from the replica, present on the ledger.
    sqlx::query("DELETE FROM properties WHERE id = $1")
        .bind(&other)
        .execute(&w.pool)
        .await
        .unwrap();
    let v = w.query_vars(q, json!({"id": other})).await;
    assert_eq!(
        v["data"]["verifyProperty"]["outcome"], "MISSING_IN_REPLICA",
        "{v}"
    );
    let v = w
        .query_vars(q, json!({"id": "LRI-IND-TS-2026-42-99999"}))
        .await;
    assert_eq!(
        v["data"]["verifyProperty"]["outcome"], "NOT_ON_LEDGER",
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshness_follows_sync_and_ledger() {
    let config = Config {
        freshness_blocks: 2,
        freshness_time: Duration::from_millis(500),
        ledger_timeout: Duration::from_millis(800),
        chain_poll: Duration::from_millis(50),
        ..Config::default()
    };
    let mut w = world(100, config).await;
    let ledger = w.ledger();
    let meta = "{ _meta { channels { channel indexedBlock chainHeight lagBlocks stale } changeLogSeq hasIndexingErrors searchIndexSeq } }";

    // A change while sync runs reaches queries and the change feed.
    let id = w.ids(1).await[0].clone();
    // Consumed by a task so that the subscription is live before the change is submitted.
    let stream = w.schema.execute_stream(
        async_graphql::Request::new(
            "subscription($id: ID!) { propertyChanged(id: $id) { event blockNumber property { owners { owner { id } } } } }",
        )
        .variables(async_graphql::Variables::from_json(json!({"id": id}))),
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(futures::StreamExt::for_each(stream, move |r| {
        let _ = tx.send(r);
        async {}
    }));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = ledger
        .submit(PRIMARY, &[transfer(&id, "new-owner-1", "fresh-t1")])
        .await
        .unwrap();
    assert_eq!(r[0].validation, ledger::model::Validation::Valid, "{r:?}");
    let next = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a change arrives")
        .expect("stream open");
    let v = serde_json::to_value(&next).unwrap();
    assert_eq!(
        v["data"]["propertyChanged"]["event"], "PropertyTransferred",
        "{v}"
    );
    assert_eq!(
        v["data"]["propertyChanged"]["property"]["owners"][0]["owner"]["id"],
        "new-owner-1"
    );
    let d = w.data(&format!("{{ property(id: \"{id}\") {{ owners {{ owner {{ id }} }} provenance {{ source }} }} }}")).await;
    assert_eq!(d["property"]["owners"][0]["owner"]["id"], "new-owner-1");

    // Sync stopped, the chain moves on: answers say stale, FRESH reads come from the ledger.
    w.stop_sync().await;
    for i in 0..4 {
        ledger.submit(PRIMARY, &[create("stale", i)]).await.unwrap();
    }
    ledger
        .submit(PRIMARY, &[transfer(&id, "new-owner-2", "fresh-t2")])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let d = w.data(meta).await;
    let primary = d["_meta"]["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == PRIMARY)
        .unwrap()
        .clone();
    assert_eq!(primary["stale"], true, "{d}");
    assert!(primary["lagBlocks"].as_i64().unwrap() >= 3, "{d}");
    let read = |c: &str| {
        format!("{{ property(id: \"{id}\", consistency: {c}) {{ owners {{ owner {{ id }} }} provenance {{ source stale replicaLagBlocks }} }} }}")
    };
    let d = w.data(&read("REPLICA")).await;
    assert_eq!(d["property"]["owners"][0]["owner"]["id"], "new-owner-1");
    assert_eq!(d["property"]["provenance"]["stale"], true);
    let d = w.data(&read("FRESH")).await;
    assert_eq!(d["property"]["provenance"]["source"], "LEDGER");
    assert_eq!(d["property"]["owners"][0]["owner"]["id"], "new-owner-2");

    // Sync back: fresh again, from the replica.
    w.start_sync();
    w.wait_synced(Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let d = w.data(&read("FRESH")).await;
    assert_eq!(d["property"]["provenance"]["source"], "REPLICA", "{d}");
    assert_eq!(d["property"]["owners"][0]["owner"]["id"], "new-owner-2");

    // The ledger stopped: replica answers, marked stale, without waiting out the deadline;
    // verification says LEDGER_UNAVAILABLE; a record the replica lacks is an error.
    w.stop_ledger();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    let d = w.data(&read("FRESH")).await;
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(d["property"]["provenance"]["source"], "REPLICA");
    assert_eq!(d["property"]["provenance"]["stale"], true);
    assert_eq!(d["property"]["provenance"]["replicaLagBlocks"], -1);
    let started = Instant::now();
    let d = w
        .data(&format!(
            "{{ verifyProperty(id: \"{id}\") {{ outcome replicaRecordHash detail }} }}"
        ))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(d["verifyProperty"]["outcome"], "LEDGER_UNAVAILABLE", "{d}");
    assert!(d["verifyProperty"]["replicaRecordHash"].is_string());
    let (code, _) = w
        .error_code("{ property(id: \"LRI-IND-TS-2026-42-99999\") { id } }")
        .await;
    assert_eq!(code, "LEDGER_UNAVAILABLE");
    let (code, _) = w
        .error_code(&format!(
            "{{ property(id: \"{id}\", consistency: LEDGER) {{ id }} }}"
        ))
        .await;
    assert_eq!(code, "LEDGER_UNAVAILABLE");
    let d = w.data(meta).await;
    assert!(
        d["_meta"]["channels"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["chainHeight"].is_null() && c["stale"] == true),
        "{d}"
    );
}
