//! Start-up order: `landql serve` started before its database is up, and then before the
//! database has landql's schema, waits — alive on `/healthz`, not ready on `/readyz` with the
//! reason, `NOT_READY` on `/graphql` — and serves once a `landql sync` process has migrated
//! and filled it. All real processes: a private PostgreSQL, a seeded devnet ledger on HTTP,
//! `landql serve` and `landql sync`.

mod common;

use std::time::{Duration, Instant};

use serde_json::Value;

const RECORDS: u64 = 300;

/// `/readyz` as (status, body), or `None` while nothing answers.
async fn readyz(http: &reqwest::Client, api: &str) -> Option<(u16, Value)> {
    let r = http.get(format!("{api}/readyz")).send().await.ok()?;
    let status = r.status().as_u16();
    Some((status, r.json().await.ok()?))
}

/// Waits until `/readyz` answers with a body that `done` accepts; returns it.
async fn wait_readyz(
    http: &reqwest::Client,
    api: &str,
    what: &str,
    done: impl Fn(u16, &Value) -> bool,
) -> (u16, Value) {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = None;
    loop {
        if let Some((status, body)) = readyz(http, api).await {
            if done(status, &body) {
                return (status, body);
            }
            last = Some((status, body));
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never showed {what}; last answer: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn detail(body: &Value) -> &str {
    body["database"]["detail"].as_str().unwrap_or("")
}

/// While waiting: alive, and `/graphql` says it is not ready and why.
async fn assert_alive_not_serving(http: &reqwest::Client, api: &str, reason: &str) {
    let health = http
        .get(format!("{api}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200, "alive while waiting");
    let answer = http
        .post(format!("{api}/graphql"))
        .json(&serde_json::json!({ "query": "{ _meta { changeLogSeq } }" }))
        .send()
        .await
        .expect("graphql");
    assert_eq!(answer.status(), 503);
    assert!(answer.headers().contains_key("retry-after"));
    let body: Value = answer.json().await.expect("JSON");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "NOT_READY",
        "{body}"
    );
    let message = body["errors"][0]["message"].as_str().unwrap_or("");
    assert!(message.contains(reason), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_waits_for_the_database_and_its_schema_then_serves() {
    let mut pg = migrations::PrivatePostgres::temporary()
        .await
        .expect("private PostgreSQL");
    let database_url = pg.database_url();
    // 1. The database is down when serve starts.
    pg.stop().await.expect("stop PostgreSQL");
    let devnet = testkit::seeded_devnet(RECORDS, 5).await;

    let port = common::free_port();
    let api = format!("http://127.0.0.1:{port}");
    let index = tempfile::tempdir().expect("temp dir");
    let _serve = common::serve(
        &devnet.url,
        &database_url,
        port,
        index.path(),
        &[] as &[&str],
    );
    let http = reqwest::Client::new();

    let (status, body) = wait_readyz(&http, &api, "the database unreachable", |_, b| {
        detail(b).contains("not reachable")
    })
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false, "{body}");
    assert!(
        detail(&body).starts_with("the database is not reachable yet"),
        "{body}"
    );
    assert!(
        !detail(&body).contains("password"),
        "no secrets in the reason: {body}"
    );
    assert_alive_not_serving(&http, &api, "not reachable").await;

    // 2. The database comes up, empty: serve says it waits for the schema.
    pg.restart().await.expect("start PostgreSQL");
    let (status, body) = wait_readyz(&http, &api, "the schema missing", |_, b| {
        detail(b).contains("no landql schema")
    })
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        detail(&body),
        "the database has no landql schema yet; waiting for the sync worker (or `landql migrate`) to migrate it"
    );
    assert_alive_not_serving(&http, &api, "no landql schema yet").await;
    // Still waiting a while later: it does not give up and exit.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, body) = readyz(&http, &api).await.expect("still answering");
    assert_eq!(status, 503, "{body}");
    assert!(detail(&body).contains("no landql schema"), "{body}");

    // 3. The sync worker starts, migrates and catches up: serve becomes ready and answers.
    let _sync = common::sync(&devnet.url, &database_url);
    let (_, body) = wait_readyz(&http, &api, "ready", |s, _| s == 200).await;
    assert_eq!(body["ready"], true, "{body}");
    let answer = common::caught_up(&http, &api, RECORDS as i64, Duration::from_secs(120)).await;
    let first = &answer["data"]["properties"]["edges"][0]["node"];
    assert!(first["id"].is_string(), "{answer}");
    let id = first["id"].as_str().unwrap_or_default();
    let one: Value = http
        .post(format!("{api}/graphql"))
        .json(&serde_json::json!({
            "query": "query P($id: ID!) { property(id: $id) { id owners { owner { name } } } }",
            "variables": { "id": id },
        }))
        .send()
        .await
        .expect("graphql")
        .json()
        .await
        .expect("JSON");
    assert_eq!(one["data"]["property"]["id"], id, "{one}");
    assert!(one.get("errors").is_none(), "{one}");
}
