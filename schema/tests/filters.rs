//! Every filter of `properties`, alone and with location, against a real synced replica:
//! the exact set returned (through every page) and `totalCount` equal what a direct
//! computation over the same records gives — the records decoded and filtered here, in
//! Rust, not through the read model's denormalised columns or its SQL.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};
use ledger::model::Record;
use migrations::sqlx;
use schema::Config;
use serde_json::{json, Value};
use testkit::world;

fn time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .expect("a ledger time")
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The most common value of `f` over the records.
fn most_common<K: std::hash::Hash + Eq + Clone + Ord>(
    records: &[Record],
    f: impl Fn(&Record) -> Option<K>,
) -> K {
    let mut counts: HashMap<K, usize> = HashMap::new();
    for r in records {
        if let Some(k) = f(r) {
            *counts.entry(k).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(k, _)| k)
        .expect("some value")
}

type Case = (&'static str, Value, Box<dyn Fn(&Record) -> bool>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_filter_returns_exactly_the_matching_records() {
    let w = world(1500, Config::default()).await;
    let stored: Vec<(String, sqlx::types::Json<Record>)> =
        sqlx::query_as("SELECT id, record FROM properties")
            .fetch_all(&w.pool)
            .await
            .expect("records");
    let records: Vec<Record> = stored
        .iter()
        .map(|(id, r)| {
            assert_eq!(r.0.property_id.to_string(), *id);
            r.0.clone()
        })
        .collect();
    assert!(records.len() >= 1500, "{}", records.len());

    // Values that select several records each, taken from the data.
    let (state, district, mandal, village) = most_common(&records, |r| {
        Some((
            r.state.clone(),
            r.district.clone(),
            r.mandal.clone(),
            r.village.clone(),
        ))
    });
    let survey = most_common(&records, |r| Some(r.survey_no.clone()));
    let village_survey = most_common(&records, |r| {
        (r.village == village && r.mandal == mandal).then(|| r.survey_no.clone())
    });
    let khata = most_common(&records, |r| r.khata_no.clone());
    let district_khata = most_common(&records, |r| {
        (r.state == state && r.district == district)
            .then(|| r.khata_no.clone())
            .flatten()
    });
    let land_type = most_common(&records, |r| Some(r.land_type.clone()));
    let year = most_common(&records, |r| Some(i32::from(r.property_id.year())));
    let shard = most_common(&records, |r| r.property_id.shard().map(i32::from));
    let mut created: Vec<i64> = records.iter().map(|r| r.created_at).collect();
    created.sort_unstable();
    let (t1, t2) = (created[created.len() / 4], created[created.len() * 3 / 4]);
    assert!(t1 < t2, "the records span some time");

    let s = state.clone();
    let (d, m, v) = (district.clone(), mandal.clone(), village.clone());
    let loc = move |r: &Record| r.state == s && r.district == d;
    let loc3 = {
        let (loc, m) = (loc.clone(), m.clone());
        move |r: &Record| loc(r) && r.mandal == m
    };
    let cases: Vec<Case> = vec![
        ("surveyNo", json!({"surveyNo": survey}), {
            let x = survey.clone();
            Box::new(move |r| r.survey_no == x)
        }),
        ("landType", json!({"landType": land_type}), {
            let x = land_type.clone();
            Box::new(move |r| r.land_type == x)
        }),
        (
            "year",
            json!({"year": year}),
            Box::new(move |r| i32::from(r.property_id.year()) == year),
        ),
        (
            "shard",
            json!({"shard": shard}),
            Box::new(move |r| r.property_id.shard().map(i32::from) == Some(shard)),
        ),
        // Strict bounds: the record created exactly at t1 is not "after" t1.
        (
            "createdAfter",
            json!({"createdAfter": time(t1)}),
            Box::new(move |r| r.created_at > t1),
        ),
        (
            "createdBefore",
            json!({"createdBefore": time(t2)}),
            Box::new(move |r| r.created_at < t2),
        ),
        (
            "createdAfter+createdBefore",
            json!({"createdAfter": time(t1), "createdBefore": time(t2)}),
            Box::new(move |r| r.created_at > t1 && r.created_at < t2),
        ),
        (
            "state+landType",
            json!({"state": state, "landType": land_type}),
            {
                let (s, x) = (state.clone(), land_type.clone());
                Box::new(move |r| r.state == s && r.land_type == x)
            },
        ),
        (
            "state+district+year",
            json!({"state": state, "district": district, "year": year}),
            {
                let loc = loc.clone();
                Box::new(move |r| loc(r) && i32::from(r.property_id.year()) == year)
            },
        ),
        (
            "state+district+mandal+shard",
            json!({"state": state, "district": district, "mandal": mandal, "shard": shard}),
            {
                let loc3 = loc3.clone();
                Box::new(move |r| loc3(r) && r.property_id.shard().map(i32::from) == Some(shard))
            },
        ),
        (
            "village+surveyNo (the citizen's lookup)",
            json!({"state": state, "district": district, "mandal": mandal, "village": village,
                   "surveyNo": village_survey}),
            {
                let (loc3, v, x) = (loc3.clone(), v.clone(), village_survey.clone());
                Box::new(move |r| loc3(r) && r.village == v && r.survey_no == x)
            },
        ),
        (
            "state+district+khataNo",
            json!({"state": state, "district": district, "khataNo": district_khata}),
            {
                let (loc, x) = (loc.clone(), district_khata.clone());
                Box::new(move |r| loc(r) && r.khata_no.as_deref() == Some(x.as_str()))
            },
        ),
        (
            "state (any case)+created range",
            json!({"state": state.to_lowercase(), "createdAfter": time(t1), "createdBefore": time(t2)}),
            {
                let s = state.clone();
                Box::new(move |r| r.state == s && r.created_at > t1 && r.created_at < t2)
            },
        ),
        (
            "district+mandal+village+landType (no state)",
            json!({"district": district, "mandal": mandal, "village": village, "landType": land_type}),
            {
                let (d, m, v, x) = (
                    district.clone(),
                    mandal.clone(),
                    village.clone(),
                    land_type.clone(),
                );
                Box::new(move |r| {
                    r.district == d && r.mandal == m && r.village == v && r.land_type == x
                })
            },
        ),
        (
            "mandal+landType+year+shard+createdAfter",
            json!({"state": state, "district": district, "mandal": mandal, "landType": land_type,
                   "year": year, "shard": shard, "createdAfter": time(t1)}),
            {
                let (loc3, x) = (loc3.clone(), land_type.clone());
                Box::new(move |r| {
                    loc3(r)
                        && r.land_type == x
                        && i32::from(r.property_id.year()) == year
                        && r.property_id.shard().map(i32::from) == Some(shard)
                        && r.created_at > t1
                })
            },
        ),
        (
            "state+verificationStatus+landType",
            json!({"state": state, "verificationStatus": "VERIFIED", "landType": land_type}),
            {
                let (s, x) = (state.clone(), land_type.clone());
                Box::new(move |r| {
                    r.state == s
                        && r.land_type == x
                        && r.verification_status == ledger::model::VerificationStatus::Verified
                })
            },
        ),
        (
            "surveyNo that no record has",
            json!({"state": state, "surveyNo": "no-such-survey/0"}),
            Box::new(|_| false),
        ),
    ];

    // A khata number alone, or a shard out of range, is refused, saying why.
    for (filter, says) in [
        (json!({"khataNo": khata}), "`state` and `district`"),
        (
            json!({"state": state, "khataNo": khata}),
            "`state` and `district`",
        ),
        (json!({"shard": 100}), "between 0 and 99"),
        (json!({"shard": -1}), "between 0 and 99"),
    ] {
        let v = w
            .query_vars(
                "query($f: PropertyFilter) { properties(filter: $f) { totalCount } }",
                json!({"f": filter}),
            )
            .await;
        assert_eq!(
            v["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{v}"
        );
        let message = v["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(says), "{filter}: {message}");
    }

    let q =
        "query($f: PropertyFilter, $a: String) { properties(filter: $f, first: 100, after: $a) { \
             totalCount edges { node { id } } pageInfo { hasNextPage endCursor } } }";
    let mut empty = Vec::new();
    for (name, filter, keep) in &cases {
        let want: BTreeSet<String> = records
            .iter()
            .filter(|r| keep(r))
            .map(|r| r.property_id.to_string())
            .collect();
        let mut got = Vec::new();
        let mut after = Value::Null;
        let mut total = None;
        loop {
            let v = w.query_vars(q, json!({"f": filter, "a": after})).await;
            assert!(v.get("errors").is_none(), "{name}: {v}");
            let page = &v["data"]["properties"];
            total.get_or_insert(page["totalCount"].as_i64().expect("count"));
            got.extend(
                page["edges"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["node"]["id"].as_str().unwrap().to_string()),
            );
            if page["pageInfo"]["hasNextPage"] != true {
                break;
            }
            after = page["pageInfo"]["endCursor"].clone();
        }
        let got_set: BTreeSet<String> = got.iter().cloned().collect();
        assert_eq!(got_set.len(), got.len(), "{name}: a record came twice");
        assert_eq!(got_set, want, "{name}: {filter}");
        assert_eq!(total, Some(want.len() as i64), "{name}: totalCount");
        if want.is_empty() {
            empty.push(*name);
        }
    }
    // Each filter alone selects records (a combination may select none, and is checked all
    // the same).
    for (name, _, _) in &cases[..7] {
        assert!(
            !empty.contains(name),
            "{name} selects nothing: pick another value"
        );
    }
}
