//! The HTTP contract, against a real PostgreSQL (migrated, left empty: no sync runs here)
//! and a real devnet node seeded with a few records and served on loopback. With an empty
//! replica, `property(id)` reads through to the ledger, which exercises the whole path.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use devnet::seed::SeedOptions;
use futures::{SinkExt, StreamExt};
use ledger::client::HttpLedger;
use migrations::PrivatePostgres;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::Options;

/// Tokens, roles, rate limits, CORS, compression and draining, over a synced replica.
mod access;
/// The table-driven bad-input suite.
mod bad_input;

/// A running API over a seeded devnet and an empty, migrated database.
struct Env {
    api: SocketAddr,
    ledger_url: String,
    http: reqwest::Client,
    _pg: PrivatePostgres,
    _devnet: testkit::Devnet,
    _dir: tempfile::TempDir,
    stop: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl Env {
    /// With the default limits but no rate limit: the tests send bursts from one address
    /// (rate limits are `access`'s to test).
    async fn start() -> Env {
        Env::start_with(Options {
            rate_limits: crate::RateLimits::unlimited(),
            ..Options::default()
        })
        .await
    }

    async fn start_with(opts: Options) -> Env {
        Env::start_inner(opts, false).await
    }

    /// [`Env::start_with`], with an (empty) search index, so `search` runs.
    async fn start_with_index(opts: Options) -> Env {
        Env::start_inner(opts, true).await
    }

    async fn start_inner(opts: Options, with_index: bool) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = with_index.then(|| {
            Arc::new(
                search_index::follower::open_or_reset(&dir.path().join("index")).expect("index"),
            )
        });
        let devnet = testkit::seeded_devnet(20, SeedOptions::default().seed).await;
        let ledger_url = devnet.url.clone();
        let (pg, pool) = testkit::database().await;
        let client = HttpLedger::new(&ledger_url, Duration::from_secs(2)).expect("ledger client");
        // Queries read through a pool whose statements stop at the request time limit, as
        // `landql serve` sets it up.
        let reads = migrations::connect_for_requests(&pg.database_url(), opts.request_timeout)
            .await
            .expect("connect for requests");
        let services = schema::Services::start_routed(
            schema::Databases::primary_only(reads),
            pool,
            Arc::new(client),
            index,
            Default::default(),
        )
        .await
        .expect("services");

        let router = crate::router(crate::schema(services.clone(), &opts), services, opts);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let api = listener.local_addr().expect("addr");
        let (api_stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(crate::serve(listener, router, async move {
            let _ = stopped.await;
        }));
        Env {
            api,
            ledger_url,
            http: reqwest::Client::new(),
            _pg: pg,
            _devnet: devnet,
            _dir: dir,
            stop: vec![api_stop],
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api)
    }

    /// POSTs a JSON body; (status, content type, body as JSON).
    async fn post(&self, body: Value, accept: Option<&str>) -> (u16, String, Value) {
        let mut req = self.http.post(self.url("/graphql")).json(&body);
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        answer(req.send().await.expect("send")).await
    }

    async fn get(&self, query: &str) -> (u16, String, Value) {
        let req = self
            .http
            .get(self.url("/graphql"))
            .header("accept", SPEC_TYPE)
            .query(&[("query", query)]);
        answer(req.send().await.expect("send")).await
    }

    /// A property the ledger holds: the first record of block 1 on the primary channel.
    async fn some_property_id(&self) -> String {
        let block: Value = self
            .http
            .get(format!(
                "{}/v1/channels/land-registry-primary/blocks/1",
                self.ledger_url
            ))
            .send()
            .await
            .expect("ledger")
            .json()
            .await
            .expect("block json");
        block["txs"][0]["event"]["id"]
            .as_str()
            .expect("an event id in block 1")
            .to_string()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for s in self.stop.drain(..) {
            let _ = s.send(());
        }
    }
}

async fn answer(resp: reqwest::Response) -> (u16, String, Value) {
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, ct, body)
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<no code>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_over_http() {
    let env = Env::start().await;

    // Content negotiation: the spec's type when asked for, JSON for legacy clients (no
    // Accept, */*, application/json), 406 else.
    let q = json!({ "query": "query Meta { _meta { changeLogSeq hasIndexingErrors } }" });
    let (status, ct, body) = env.post(q.clone(), SPEC).await;
    assert_eq!(status, 200, "{body}");
    assert!(ct.starts_with("application/graphql-response+json"), "{ct}");
    assert_eq!(body["data"]["_meta"]["changeLogSeq"], 0);
    for legacy in [None, Some("*/*"), Some("application/json")] {
        let (status, ct, body) = env.post(q.clone(), legacy).await;
        assert_eq!(status, 200, "{legacy:?}: {body}");
        assert!(ct.starts_with("application/json"), "{legacy:?}: {ct}");
    }
    let (status, _, body) = env.post(q.clone(), Some("text/html")).await;
    assert_eq!((status, code(&body)), (406, "NOT_ACCEPTABLE"));

    // Request errors have no `data`: 400 with the spec's type, 200 with application/json
    // (GraphQL-over-HTTP's rule for each), for parse, validation and variable errors.
    let request_errors = [
        (json!({ "query": "{ _meta {" }), "GRAPHQL_PARSE_FAILED"),
        (json!({ "query": "{ nope }" }), "GRAPHQL_VALIDATION_FAILED"),
        (
            json!({ "query": "query V($id: ID!) { property(id: $id) { id } }",
                    "variables": { "id": null } }),
            "GRAPHQL_VALIDATION_FAILED",
        ),
    ];
    for (accept, want) in [(SPEC, 400), (None, 200), (Some("application/json"), 200)] {
        for (request, error) in &request_errors {
            let (status, ct, body) = env.post(request.clone(), accept).await;
            assert_eq!((status, code(&body)), (want, *error), "{accept:?}: {body}");
            assert!(body.get("data").is_none(), "{accept:?}: {body}");
            assert!(
                ct.starts_with(if accept == SPEC {
                    SPEC_TYPE
                } else {
                    "application/json"
                }),
                "{accept:?}: {ct}"
            );
        }
    }
    // Refusals of the HTTP request itself stay 4xx for legacy clients too.
    let (status, _, body) = env.post(json!({ "variables": {} }), None).await;
    assert_eq!((status, code(&body)), (400, "BAD_REQUEST"), "{body}");
    let (status, _, body) = env
        .post(
            json!({ "query": "query A { _meta { changeLogSeq } } query B { _meta { changeLogSeq } }",
                    "operationName": "C" }),
            SPEC,
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (400, "GRAPHQL_VALIDATION_FAILED"),
        "{body}"
    );

    // Limits: depth and complexity say the limit.
    let mut deep = String::from("id");
    for _ in 0..2 {
        deep = format!("owners {{ owner {{ properties {{ edges {{ node {{ {deep} }} }} }} }} }}");
    }
    let (status, _, body) = env
        .post(
            json!({ "query": format!("{{ properties {{ edges {{ node {{ {deep} }} }} }} }}") }),
            SPEC,
        )
        .await;
    assert_eq!((status, code(&body)), (400, "QUERY_TOO_COMPLEX"), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("limit is 12"),
        "{body}"
    );
    // The introspection query every GraphQL tool sends (13 levels deep) is not refused.
    let (status, _, body) = env.post(json!({ "query": INTROSPECTION }), SPEC).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
    // Connections cost their page size times each item's selection, so pages nested in
    // pages multiply; one page of 100 with owners fits.
    let nested_pages =
        "{ properties(first: 100) { nodes { id history(first: 100) { totalCount } } } }";
    let (status, _, body) = env.post(json!({ "query": nested_pages }), SPEC).await;
    assert_eq!((status, code(&body)), (400, "QUERY_TOO_COMPLEX"), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("limit is 2000"),
        "{body}"
    );
    let one_page =
        "{ properties(first: 20) { nodes { id surveyNo owners { sharePct owner { id name } } \
                    location { district village } } pageInfo { endCursor } } }";
    let (status, _, body) = env.post(json!({ "query": one_page }), SPEC).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");

    // A field error is 200, with data, and carries the resolver's code.
    let (status, _, body) = env
        .post(
            json!({ "query": "{ property(id: \"LRI-IND-XX\") { id } }" }),
            SPEC,
        )
        .await;
    assert_eq!((status, code(&body)), (200, "BAD_USER_INPUT"), "{body}");
    assert_eq!(body["data"]["property"], Value::Null);

    // A property the replica lacks is read through to the ledger.
    let id = env.some_property_id().await;
    let query = json!({
        "query": "query P($id: ID!) { property(id: $id) { id provenance { source channel } } }",
        "variables": { "id": id }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (status, _, body) = env.post(query.clone(), SPEC).await;
        assert_eq!(status, 200, "{body}");
        // Until the first chain poll lands, the ledger counts as unreachable.
        if body.get("errors").is_none() || Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(body["data"]["property"]["id"], id.as_str(), "{body}");
    assert_eq!(body["data"]["property"]["provenance"]["source"], "LEDGER");

    // GET runs queries only; a mutation or subscription gets 405 (Allow: POST).
    let (status, _, body) = env.get("query Meta { _meta { changeLogSeq } }").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["_meta"]["changeLogSeq"], 0);
    for doc in [
        "mutation { x }",
        "subscription { progress { changeLogSeq } }",
    ] {
        let resp = env
            .http
            .get(env.url("/graphql"))
            .query(&[("query", doc)])
            .send()
            .await
            .expect("send");
        assert_eq!(
            resp.headers().get("allow").map(|v| v.as_bytes()),
            Some(&b"POST"[..])
        );
        let (status, _, body) = answer(resp).await;
        assert_eq!(
            (status, code(&body)),
            (405, "METHOD_NOT_ALLOWED"),
            "{doc}: {body}"
        );
    }
    let (status, _, body) = env.get("{ nope }").await;
    assert_eq!((status, code(&body)), (400, "GRAPHQL_VALIDATION_FAILED"));
    let resp = env
        .http
        .get(env.url("/graphql?query=%7B_meta%7BchangeLogSeq%7D%7D&variables=%5B1%5D"))
        .send()
        .await
        .expect("send");
    let (status, _, body) = answer(resp).await;
    assert_eq!((status, code(&body)), (400, "BAD_REQUEST"), "{body}");

    // A subscription over POST is told where subscriptions live.
    let (status, _, body) = env
        .post(
            json!({ "query": "subscription { progress { changeLogSeq } }" }),
            SPEC,
        )
        .await;
    assert_eq!((status, code(&body)), (400, "BAD_REQUEST"), "{body}");

    // Transport refusals.
    let big = "x".repeat(70 * 1024);
    let (status, _, body) = env
        .post(
            json!({ "query": format!("{{ _meta {{ changeLogSeq }} }} # {big}") }),
            SPEC,
        )
        .await;
    assert_eq!((status, code(&body)), (413, "PAYLOAD_TOO_LARGE"), "{body}");
    // The same without a Content-Length: refused while streaming, and the connection is
    // closed (the rest of the body is never read), which the answer says.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..70).map(|_| Ok(vec![b' '; 1024])).collect();
    let resp = env
        .http
        .post(env.url("/graphql"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .expect("send");
    assert_eq!(
        resp.headers().get("connection").map(|v| v.as_bytes()),
        Some(&b"close"[..])
    );
    let (status, _, body) = answer(resp).await;
    assert_eq!((status, code(&body)), (413, "PAYLOAD_TOO_LARGE"), "{body}");
    let resp = env
        .http
        .post(env.url("/graphql"))
        .header("content-type", "text/plain")
        .body("{ _meta { changeLogSeq } }")
        .send()
        .await
        .expect("send");
    let (status, _, body) = answer(resp).await;
    assert_eq!((status, code(&body)), (415, "BAD_REQUEST"), "{body}");
    let resp = env
        .http
        .post(env.url("/graphql"))
        .header("content-type", "application/json")
        .body("{\"query\": 5}")
        .send()
        .await
        .expect("send");
    let (status, _, body) = answer(resp).await;
    assert_eq!((status, code(&body)), (400, "BAD_REQUEST"), "{body}");
    let resp = env
        .http
        .put(env.url("/graphql"))
        .send()
        .await
        .expect("send");
    let (status, _, body) = answer(resp).await;
    assert_eq!((status, code(&body)), (405, "METHOD_NOT_ALLOWED"), "{body}");

    // Batches: one answer per operation, each shaped on its own; bounded.
    let (status, _, body) = env
        .post(
            json!([{ "query": "{ _meta { changeLogSeq } }" }, { "query": "{ nope }" }]),
            SPEC,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["data"]["_meta"]["changeLogSeq"], 0);
    assert_eq!(
        body[1]["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    assert!(body[1].get("data").is_none());
    let many: Vec<Value> = (0..11)
        .map(|_| json!({ "query": "{ __typename }" }))
        .collect();
    let (status, _, body) = env.post(Value::Array(many), SPEC).await;
    assert_eq!((status, code(&body)), (400, "BATCH_TOO_LARGE"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_page_and_request_ids() {
    let env = Env::start().await;

    let resp = env
        .http
        .get(env.url("/healthz"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    assert!(
        !resp.headers()["x-request-id"].is_empty(),
        "a request id is generated"
    );
    assert_eq!(resp.text().await.expect("body"), "ok");
    let resp = env
        .http
        .get(env.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .expect("send");
    assert_eq!(
        resp.headers()["x-request-id"],
        "abc-123",
        "a given id is echoed"
    );

    // No search index on this node (configuration, not a fault) and nothing synced yet: the
    // answer says which check stands where, and the status follows `ready`.
    let (status, _, body) =
        answer(env.http.get(env.url("/readyz")).send().await.expect("send")).await;
    let ready = body["ready"].as_bool().expect("ready");
    assert_eq!(status, if ready { 200 } else { 503 }, "{body}");
    assert_eq!(body["database"]["ok"], true, "{body}");
    assert_eq!(body["index"]["ok"], true, "{body}");
    assert!(
        body["index"]["detail"]
            .as_str()
            .unwrap_or("")
            .contains("disabled"),
        "{body}"
    );
    assert!(body["lag"]["detail"].is_string(), "{body}");

    // The pages: each at its route, under a policy that allows nothing off the origin;
    // HTML revalidated by ETag, hashed assets cached for good, br copies to br clients.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_gzip()
        .no_brotli()
        .build()
        .expect("client");
    let mut assets = Vec::new();
    for path in [
        "/",
        "/search",
        "/property/LRI-IND-TS-2026-03-00567",
        "/verify",
        "/graphiql",
        "/status",
    ] {
        let resp = http.get(env.url(path)).send().await.expect("send");
        assert_eq!(resp.status(), 200, "{path}");
        let h = resp.headers().clone();
        assert_eq!(h["content-type"], "text/html; charset=utf-8", "{path}");
        assert_eq!(h["cache-control"], "no-cache", "{path}");
        assert_eq!(h["content-security-policy"], crate::pages::CSP, "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        let etag = h["etag"].clone();
        let html = resp.text().await.expect("body");
        assert!(
            !html.contains("src=\"http") && !html.contains("href=\"http") && !html.contains("//"),
            "{path} refers to something off the origin:\n{html}"
        );
        for part in html.split("\"/assets/").skip(1) {
            assets.push(format!(
                "/assets/{}",
                &part[..part.find('"').expect("quote")]
            ));
        }
        let again = http
            .get(env.url(path))
            .header("if-none-match", etag)
            .send()
            .await
            .expect("send");
        assert_eq!(again.status(), 304, "{path} revalidates");
    }
    assert!(!assets.is_empty(), "the pages load assets");
    for asset in &assets {
        let resp = http.get(env.url(asset)).send().await.expect("send");
        assert_eq!(resp.status(), 200, "{asset}");
        assert_eq!(
            resp.headers()["cache-control"],
            "public, max-age=31536000, immutable",
            "{asset}"
        );
        assert!(
            resp.headers().get("content-encoding").is_none(),
            "{asset}: no br asked for"
        );
        let raw = resp.bytes().await.expect("body");
        let resp = http
            .get(env.url(asset))
            .header("accept-encoding", "br")
            .send()
            .await
            .expect("send");
        if raw.len() >= 1024 {
            assert_eq!(resp.headers()["content-encoding"], "br", "{asset}");
            assert!(
                resp.bytes().await.expect("body").len() < raw.len(),
                "{asset}"
            );
        }
    }
    let resp = http
        .get(env.url("/assets/nope-12345678.js"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 404);
    let sdl = http
        .get(env.url("/schema.graphql"))
        .send()
        .await
        .expect("send");
    assert_eq!(sdl.status(), 200);
    assert!(
        sdl.text().await.expect("body").contains("type Query"),
        "the SDL"
    );

    // A browser pointed at the endpoint is sent to GraphiQL.
    let resp = http
        .get(env.url("/graphql"))
        .header("accept", "text/html,*/*;q=0.8")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/graphiql");

    // Metrics: request series by operation, and the node's counters read at scrape time.
    env.post(
        json!({ "query": "query Meta { _meta { changeLogSeq } }" }),
        SPEC,
    )
    .await;
    env.post(json!({ "query": "{ nope }" }), SPEC).await;
    let metrics = env
        .http
        .get(env.url("/metrics"))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("body");
    for series in [
        "landql_api_request_duration_seconds_count{operation=\"Meta\",type=\"query\"}",
        "landql_api_requests_total{operation=\"Meta\",type=\"query\",outcome=\"ok\"}",
        "landql_api_requests_total{operation=\"anonymous\",type=\"query\",outcome=\"invalid\"}",
        "landql_api_http_responses_total{route=\"/graphql\",class=\"2xx\"}",
        "landql_api_errors_total{code=\"GRAPHQL_VALIDATION_FAILED\"}",
        "landql_api_cache_hits_total{cache=\"property\"}",
        "landql_api_cache_entries{cache=\"location\"}",
        "landql_api_cache_misses_total{cache=\"document\"}",
        "landql_api_sql_statements_total",
        "landql_api_db_connections{pool=\"requests\",state=\"idle\"}",
        "landql_api_db_connections_max{pool=\"requests\"}",
        "landql_api_db_pool_waiters{pool=\"requests\"}",
        "landql_api_db_statement_duration_seconds_count{kind=\"read\"}",
        "landql_api_reads_total{source=\"ledger\"}",
        "landql_api_verifications_total{outcome=\"match\"}",
        "landql_api_requests_in_flight 1",
        "landql_api_websocket_connections 0",
        "landql_api_subscribers",
        "landql_api_ready 1",
        "landql_api_database_up 1",
        "landql_api_ledger_up 1",
        "landql_api_chain_height{channel=\"land-registry-primary\"}",
    ] {
        assert!(metrics.contains(series), "{series} missing from\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_over_websocket() {
    let env = Env::start().await;
    for protocol in ["graphql-transport-ws", "graphql-ws"] {
        let mut req = format!("ws://{}/graphql", env.api)
            .into_client_request()
            .expect("request");
        req.headers_mut()
            .insert("sec-websocket-protocol", protocol.parse().expect("header"));
        let (mut ws, resp) = tokio_tungstenite::connect_async(req)
            .await
            .expect("connect");
        assert_eq!(resp.headers()["sec-websocket-protocol"], protocol);
        ws.send(Message::text(
            json!({ "type": "connection_init", "payload": {} }).to_string(),
        ))
        .await
        .expect("init");
        let start = if protocol == "graphql-ws" {
            "start"
        } else {
            "subscribe"
        };
        let data = if protocol == "graphql-ws" {
            "data"
        } else {
            "next"
        };
        let mut subscribed = false;
        let deadline = Instant::now() + Duration::from_secs(10);
        let payload = loop {
            assert!(
                Instant::now() < deadline,
                "no progress message over {protocol}"
            );
            let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .expect("a message in time")
                .expect("open")
                .expect("message");
            let Message::Text(text) = msg else { continue };
            let v: Value = serde_json::from_str(&text).expect("json");
            match v["type"].as_str() {
                Some("connection_ack") if !subscribed => {
                    subscribed = true;
                    ws.send(Message::text(
                        json!({ "id": "1", "type": start, "payload": {
                            "query": "subscription { progress { changeLogSeq } }" } })
                        .to_string(),
                    ))
                    .await
                    .expect("subscribe");
                }
                Some(t) if t == data => break v["payload"].clone(),
                _ => {}
            }
        };
        assert_eq!(payload["data"]["progress"]["changeLogSeq"], 0, "{payload}");
        let _ = ws.close(None).await;
    }

    // An upgrade without a GraphQL subprotocol is refused.
    let req = format!("ws://{}/graphql", env.api)
        .into_client_request()
        .expect("request");
    assert!(tokio_tungstenite::connect_async(req).await.is_err());
}

/// graphql-js's `getIntrospectionQuery()`, as GraphiQL sends it.
/// The spec's response media type: request errors are 4xx with it.
const SPEC_TYPE: &str = "application/graphql-response+json";
const SPEC: Option<&str> = Some(SPEC_TYPE);

const INTROSPECTION: &str = "query IntrospectionQuery { __schema { queryType { name } \
    mutationType { name } subscriptionType { name } types { ...FullType } \
    directives { name description locations args { ...InputValue } } } } \
    fragment FullType on __Type { kind name description \
    fields(includeDeprecated: true) { name description args { ...InputValue } \
    type { ...TypeRef } isDeprecated deprecationReason } inputFields { ...InputValue } \
    interfaces { ...TypeRef } enumValues(includeDeprecated: true) { name description \
    isDeprecated deprecationReason } possibleTypes { ...TypeRef } } \
    fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue } \
    fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { \
    kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name \
    } } } } } } } }";
