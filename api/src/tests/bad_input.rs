//! Bad input over real HTTP, as a table: each row is a request a careless or hostile client
//! sends, with the status and `extensions.code` it must get. For every row the answer must
//! also come back promptly (no hang), never be a 5xx, carry a code on every error, stay
//! small, and say nothing about our internals.

use std::time::Duration;

use serde_json::{json, Value};

use super::{code, Env};
use crate::Options;

/// What to send.
enum Send {
    /// `POST /graphql` with a JSON body.
    Json(Value),
    /// `POST /graphql` with these bytes and this content type.
    Raw(&'static str, Vec<u8>),
    /// `GET /graphql?` + this query string, as written (already percent-encoded).
    Get(String),
    /// `POST /graphql` with a JSON body and `Authorization: Bearer <token>`.
    Bearer(String, Value),
}

const SECRET: &[u8] = b"bad-input-suite-secret-0123456789abcdef";
const AUDIENCE: &str = "landql-bad-input";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A citizen's claims, changed by `edit`.
fn claims(edit: impl FnOnce(&mut Value)) -> Value {
    let mut c = json!({ "sub": "c-1", "role": "citizen", "aud": AUDIENCE, "exp": now() + 600 });
    edit(&mut c);
    c
}

fn signed(secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret).expect("key"),
    )
    .expect("sign")
}

/// An unsigned token (`alg: none`) with valid claims.
fn unsigned() -> String {
    use base64::Engine;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.",
        b64(json!({ "alg": "none", "typ": "JWT" })),
        b64(claims(|_| {}))
    )
}

fn bearer(token: String) -> Send {
    Send::Bearer(token, json!({ "query": "{ _meta { changeLogSeq } }" }))
}

struct Case {
    name: &'static str,
    send: Send,
    status: u16,
    /// The first error's code; `None` when the answer must have no errors.
    code: Option<&'static str>,
    /// Words the first error's message must contain (what is wrong, and the limit).
    says: &'static str,
}

fn case(
    name: &'static str,
    send: Send,
    status: u16,
    code: &'static str,
    says: &'static str,
) -> Case {
    Case {
        name,
        send,
        status,
        code: Some(code),
        says,
    }
}

fn q(query: &str) -> Send {
    Send::Json(json!({ "query": query }))
}

/// `{ properties { nodes { owners { owner { properties { nodes { … id` nested `levels` deep.
fn nested(levels: usize) -> String {
    let mut open = String::from("{ properties { nodes { ");
    let mut close = String::from("} } }");
    let mut depth = 2;
    while depth + 4 <= levels {
        open.push_str("owners { owner { properties { nodes { ");
        close.push_str(" } } } }");
        depth += 4;
    }
    format!("{open} id {close}")
}

fn cases(id: &str) -> Vec<Case> {
    let sha = "0".repeat(64);
    vec![
        // Property IDs and arguments.
        case(
            "malformed property ID",
            q(r#"{ property(id: "XX-2024-00-1") { id } }"#),
            200,
            "BAD_USER_INPUT",
            "invalid property ID",
        ),
        case(
            "empty property ID",
            q(r#"{ property(id: "") { id } }"#),
            200,
            "BAD_USER_INPUT",
            "invalid property ID",
        ),
        case(
            "60 KB property ID",
            Send::Json(json!({
                "query": "query($id: ID!) { property(id: $id) { id } }",
                "variables": { "id": "T".repeat(60_000) },
            })),
            200,
            "BAD_USER_INPUT",
            "invalid property ID",
        ),
        case(
            "verify a malformed ID",
            q(r#"{ verifyProperty(id: "TS/2024/1") { outcome } }"#),
            200,
            "BAD_USER_INPUT",
            "invalid property ID",
        ),
        case(
            "history of a malformed ID",
            q(r#"{ propertyHistory(id: "nonsense") { totalCount } }"#),
            200,
            "BAD_USER_INPUT",
            "invalid property ID",
        ),
        // Wrong types.
        case(
            "string where Int is expected",
            q(r#"{ properties(first: "ten") { totalCount } }"#),
            400,
            "GRAPHQL_VALIDATION_FAILED",
            "first",
        ),
        case(
            "variable of the wrong type",
            Send::Json(json!({
                "query": "query($n: Int) { properties(first: $n) { totalCount } }",
                "variables": { "n": "ten" },
            })),
            400,
            "GRAPHQL_VALIDATION_FAILED",
            "n",
        ),
        case(
            "unknown enum value",
            q(r#"{ properties(orderBy: NEWEST) { totalCount } }"#),
            400,
            "GRAPHQL_VALIDATION_FAILED",
            "NEWEST",
        ),
        case(
            "variables not an object",
            Send::Json(json!({ "query": "{ _meta { changeLogSeq } }", "variables": [1, 2] })),
            400,
            "BAD_REQUEST",
            "`variables` must be an object, not an array",
        ),
        case(
            "query not a string",
            Send::Json(json!({ "query": 42 })),
            400,
            "BAD_REQUEST",
            "`query` must be a string, not a number",
        ),
        // Unknown fields and arguments.
        case(
            "unknown field",
            q("{ property(id: \"x\") { ownerPassword } }"),
            400,
            "GRAPHQL_VALIDATION_FAILED",
            "ownerPassword",
        ),
        case(
            "unknown argument",
            q("{ properties(limit: 5) { totalCount } }"),
            400,
            "GRAPHQL_VALIDATION_FAILED",
            "limit",
        ),
        case(
            "unknown root field",
            q("{ users { password } }"),
            400,
            "GRAPHQL_VALIDATION_FAILED",
            "users",
        ),
        // Shape and size limits.
        case(
            "too deep",
            q(&nested(14)),
            400,
            "QUERY_TOO_COMPLEX",
            "the limit is 12",
        ),
        case(
            "nesting bomb (parser recursion)",
            q(&format!("{}{}", "{ a ".repeat(2_000), "}".repeat(2_000))),
            400,
            "QUERY_TOO_COMPLEX",
            "2000 deep; the limit is",
        ),
        case(
            "too complex",
            q(&format!("{{ {} }}", "_meta { changeLogSeq } ".repeat(2_100))),
            400,
            "QUERY_TOO_COMPLEX",
            "the limit is 2000",
        ),
        case(
            "alias bomb",
            q(&format!(
                "{{ {} }}",
                (0..200)
                    .map(|i| format!("p{i}: property(id: \"{id}\") {{ id }}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )),
            400,
            "QUERY_TOO_COMPLEX",
            "200 aliases; the limit is 30",
        ),
        case(
            "batch bomb",
            Send::Json(Value::Array(
                (0..500)
                    .map(|_| json!({ "query": "{ _meta { changeLogSeq } }" }))
                    .collect(),
            )),
            400,
            "BATCH_TOO_LARGE",
            "500 operations; the limit is 10",
        ),
        case(
            "empty batch",
            Send::Json(json!([])),
            400,
            "BAD_REQUEST",
            "empty",
        ),
        case(
            "oversized body",
            Send::Raw(
                "application/json",
                format!(r#"{{"query":"{{ _meta {{ changeLogSeq }} }}","x":"{}"}}"#, "a".repeat(70_000))
                    .into_bytes(),
            ),
            413,
            "PAYLOAD_TOO_LARGE",
            "limit of 65536 bytes",
        ),
        case(
            "page over the limit",
            q("{ properties(first: 1000) { totalCount } }"),
            200,
            "BAD_USER_INPUT",
            "page limit of 20 for the anonymous role",
        ),
        case(
            "negative page",
            q("{ properties(first: -1) { totalCount } }"),
            200,
            "BAD_USER_INPUT",
            "between 0 and",
        ),
        case(
            "search page over the limit",
            q(r#"{ search(text: "ramu", first: 5000) { total } }"#),
            200,
            "BAD_USER_INPUT",
            "limit",
        ),
        case(
            "forged cursor",
            q(r#"{ properties(after: "bm90IGEgY3Vyc29y") { totalCount } }"#),
            200,
            "BAD_USER_INPUT",
            "cursor",
        ),
        case(
            "cursor of another order",
            q(r#"{ properties(orderBy: UPDATED_AT_DESC, after: "not base64 at all!") { totalCount } }"#),
            200,
            "BAD_USER_INPUT",
            "cursor",
        ),
        // Malformed bodies and transports.
        case(
            "invalid UTF-8 body",
            Send::Raw("application/json", b"{\"query\": \"{ _meta \xff\xfe }\"}".to_vec()),
            400,
            "BAD_REQUEST",
            "not a GraphQL request",
        ),
        case(
            "invalid UTF-8 in a GET query",
            Send::Get("query=%7B%20_meta%20%FF%20%7D".into()),
            400,
            "BAD_REQUEST",
            "not valid UTF-8",
        ),
        case(
            "not JSON",
            Send::Raw("application/json", b"query { _meta { changeLogSeq } }".to_vec()),
            400,
            "BAD_REQUEST",
            "JSON object",
        ),
        case(
            "truncated JSON",
            Send::Raw("application/json", br#"{"query": "{ _meta { chan"#.to_vec()),
            400,
            "BAD_REQUEST",
            "not a GraphQL request",
        ),
        case(
            "JSON nested 100 000 deep",
            Send::Raw(
                "application/json",
                format!(r#"{{"query":"{{ a }}","variables":{{"v":{}}}}}"#, "[".repeat(100_000))
                    .into_bytes(),
            ),
            413,
            "PAYLOAD_TOO_LARGE",
            "limit",
        ),
        case(
            "JSON nested 1 000 deep",
            Send::Raw(
                "application/json",
                format!(
                    r#"{{"query":"{{ _meta {{ changeLogSeq }} }}","variables":{{"v":{}{}}}}}"#,
                    "[".repeat(1_000),
                    "]".repeat(1_000)
                )
                .into_bytes(),
            ),
            400,
            "BAD_REQUEST",
            "recursion limit",
        ),
        case(
            "empty body",
            Send::Raw("application/json", Vec::new()),
            400,
            "BAD_REQUEST",
            "empty",
        ),
        case(
            "form-encoded body",
            Send::Raw("application/x-www-form-urlencoded", b"query=%7B%7D".to_vec()),
            415,
            "BAD_REQUEST",
            "application/json",
        ),
        case(
            "no query",
            Send::Json(json!({ "variables": {} })),
            400,
            "BAD_REQUEST",
            "no `query`",
        ),
        case(
            "syntax error",
            q("{ property(id: \"x\" { id } }"),
            400,
            "GRAPHQL_PARSE_FAILED",
            "",
        ),
        case(
            "fragment cycle",
            q("{ _meta { ...A } } fragment A on Meta { ...B } fragment B on Meta { ...A }"),
            400,
            "QUERY_TOO_COMPLEX",
            "fragment",
        ),
        case(
            "unknown operation name",
            Send::Json(json!({ "query": "query A { _meta { changeLogSeq } }", "operationName": "B" })),
            400,
            "GRAPHQL_VALIDATION_FAILED",
            "B",
        ),
        case(
            "mutation over GET",
            Send::Get("query=mutation%20%7B%20a%20%7D".into()),
            405,
            "METHOD_NOT_ALLOWED",
            "POST",
        ),
        case(
            "subscription over POST",
            q("subscription { propertyChanged(id: \"x\") { id } }"),
            400,
            "BAD_REQUEST",
            "WebSocket",
        ),
        // Persisted queries.
        case(
            "unknown persisted query",
            Send::Json(json!({
                "extensions": { "persistedQuery": { "version": 1, "sha256Hash": sha } }
            })),
            200,
            "PERSISTED_QUERY_NOT_FOUND",
            "PersistedQueryNotFound",
        ),
        case(
            "persisted query over GET, unknown",
            Send::Get(format!(
                "extensions=%7B%22persistedQuery%22%3A%7B%22version%22%3A1%2C%22sha256Hash%22%3A%22{sha}%22%7D%7D"
            )),
            200,
            "PERSISTED_QUERY_NOT_FOUND",
            "PersistedQueryNotFound",
        ),
        case(
            "persisted query whose text does not match its hash",
            Send::Json(json!({
                "query": "{ _meta { changeLogSeq } }",
                "extensions": { "persistedQuery": { "version": 1, "sha256Hash": sha } }
            })),
            400,
            "BAD_REQUEST",
            "hashes to",
        ),
        case(
            "persisted query of another version",
            Send::Json(json!({
                "extensions": { "persistedQuery": { "version": 3, "sha256Hash": sha } }
            })),
            400,
            "BAD_REQUEST",
            "version 3",
        ),
        // Tokens: a bad one is refused, never served as anonymous.
        case(
            "forged token",
            bearer(signed(b"another-secret-another-secret-0123456789", &claims(|_| {}))),
            401,
            "UNAUTHENTICATED",
            "signature",
        ),
        case(
            "expired token",
            bearer(signed(SECRET, &claims(|c| c["exp"] = json!(now() - 3_600)))),
            401,
            "UNAUTHENTICATED",
            "expired",
        ),
        case(
            "token for another audience",
            bearer(signed(SECRET, &claims(|c| c["aud"] = json!("someone-else")))),
            401,
            "UNAUTHENTICATED",
            "audience",
        ),
        case(
            "token with alg: none",
            bearer(unsigned()),
            401,
            "UNAUTHENTICATED",
            "none",
        ),
        case(
            "token that is not a JWT",
            bearer("not-a-token".into()),
            401,
            "UNAUTHENTICATED",
            "",
        ),
        case(
            "token with an unknown role",
            bearer(signed(SECRET, &claims(|c| c["role"] = json!("superuser")))),
            401,
            "UNAUTHENTICATED",
            "superuser",
        ),
        case(
            "anonymous listing of a person's holdings",
            q(r#"{ owners(name: "ra") { totalCount } }"#),
            200,
            "FORBIDDEN",
            "signed-in",
        ),
        case(
            "citizen asking for sync errors",
            Send::Bearer(
                signed(SECRET, &claims(|_| {})),
                json!({ "query": "{ _meta { syncErrors { pageInfo { hasNextPage } } } }" }),
            ),
            200,
            "FORBIDDEN",
            "registrar",
        ),
        // Odd but valid input is answered, not refused.
        Case {
            name: "search text with control characters and emoji",
            send: Send::Json(json!({
                "query": "query($t: String!) { search(text: $t) { total } }",
                "variables": { "t": "ra\u{0}mu\u{7}\u{202e} 🏠 \u{0c24}\u{0c46}" },
            })),
            status: 200,
            code: None,
            says: "",
        },
        case(
            "search text of 10 000 characters",
            Send::Json(json!({
                "query": "query($t: String!) { search(text: $t) { total } }",
                "variables": { "t": "lakshmi ".repeat(1_250) },
            })),
            200,
            "BAD_USER_INPUT",
            "longer than 200 characters",
        ),
    ]
}

/// Text that must never reach a client: it would mean a database error, a panic, or a
/// source path leaked into a message.
const INTERNALS: &[&str] = &[
    "sqlx",
    "panick",
    ".rs:",
    "SELECT ",
    "FROM properties",
    "/root/",
    "/tmp/",
    "backtrace",
    "connection refused",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_gets_its_status_and_code() {
    // One client sends every row in quick succession: rate limits are another test's.
    let env = Env::start_with_index(Options {
        rate_limits: crate::RateLimits::unlimited(),
        auth: crate::Auth::hs256(
            SECRET,
            crate::TokenRules {
                audience: Some(AUDIENCE.into()),
                ..crate::TokenRules::default()
            },
        )
        .expect("hs256 key"),
        ..Options::default()
    })
    .await;
    let id = env.some_property_id().await;
    // A connection per row: the server closes a connection whose body it refused unread
    // (413), and a pooled client could send the next row on it as it closes.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let mut failures = Vec::new();
    for c in cases(&id) {
        // The spec's media type, whose statuses tell request errors (4xx) from field errors;
        // `application/json` answers request errors with 200 (tests.rs covers both).
        let req = match &c.send {
            Send::Json(v) => http.post(env.url("/graphql")).json(v),
            Send::Raw(ct, bytes) => http
                .post(env.url("/graphql"))
                .header("content-type", *ct)
                .body(bytes.clone()),
            Send::Get(qs) => http.get(format!("{}?{qs}", env.url("/graphql"))),
            Send::Bearer(token, v) => http
                .post(env.url("/graphql"))
                .header("authorization", format!("Bearer {token}"))
                .json(v),
        }
        .header("accept", "application/graphql-response+json");
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{}: no answer: {e}", c.name));
                continue;
            }
        };
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let mut wrong = Vec::new();
        if status != c.status {
            wrong.push(format!("status {status}, want {}", c.status));
        }
        if status >= 500 {
            wrong.push("a 5xx".into());
        }
        match c.code {
            Some(want) => {
                if code(&body) != want {
                    wrong.push(format!("code {}, want {want}", code(&body)));
                }
                let message = body["errors"][0]["message"].as_str().unwrap_or("");
                if !message.contains(c.says) {
                    wrong.push(format!("message {message:?} does not say {:?}", c.says));
                }
            }
            None => {
                if body.get("errors").is_some() {
                    wrong.push("errors where none were expected".into());
                }
            }
        }
        let errors = body["errors"].as_array().cloned().unwrap_or_default();
        if errors
            .iter()
            .any(|e| e["extensions"]["code"].as_str().is_none())
        {
            wrong.push("an error without extensions.code".into());
        }
        if text.len() > 16 * 1024 {
            wrong.push(format!("an answer of {} bytes", text.len()));
        }
        if let Some(leak) = INTERNALS.iter().find(|s| text.contains(**s)) {
            wrong.push(format!("the answer mentions {leak:?}"));
        }
        if !wrong.is_empty() {
            let shown: String = text.chars().take(400).collect();
            failures.push(format!("{}: {} — {shown}", c.name, wrong.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of the bad-input rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A request over its time limit is answered at the limit, and the statement it was waiting
/// on does not keep running in the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_is_cancelled_in_the_database_too() {
    let env = Env::start_with(Options {
        request_timeout: Duration::from_millis(500),
        rate_limits: crate::RateLimits::unlimited(),
        ..Options::default()
    })
    .await;
    let admin = migrations::connect(&env._pg.database_url())
        .await
        .expect("admin connection");
    // Hold a lock the page query must wait for.
    let mut blocker = admin.begin().await.expect("begin");
    migrations::sqlx::query("LOCK TABLE properties IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *blocker)
        .await
        .expect("lock");
    let started = std::time::Instant::now();
    let (status, _, body) = env
        .post(
            json!({ "query": "{ properties(first: 5) { nodes { id } } }" }),
            None,
        )
        .await;
    let took = started.elapsed();
    assert_eq!((status, code(&body)), (200, "REQUEST_TIMEOUT"), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            // Whichever stops first, the API's timer or the database's statement_timeout
            // at the same bound, the answer says why.
            .is_some_and(|m| m.contains("took longer than its time limit")),
        "{body}"
    );
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    // The statement the request started is gone from the server within the bound,
    // although the lock is still held.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let waiting: i64 = migrations::sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE wait_event_type = 'Lock' AND query ILIKE '%properties%'",
        )
        .fetch_one(&admin)
        .await
        .expect("pg_stat_activity");
        if waiting == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{waiting} statements still wait on the lock after the request was cancelled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    blocker.rollback().await.expect("rollback");
    // And the API answers normally once the lock is gone.
    let (status, _, body) = env
        .post(
            json!({ "query": "{ properties(first: 5) { totalCount } }" }),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
}

/// A persisted query registered over POST is then served from its hash, over GET too; GET
/// answers say how long caches may keep them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persisted_queries_hash_first_then_text() {
    use sha2::Digest;
    let env = Env::start().await;
    let text = "query Meta { _meta { changeLogSeq } }";
    let hash = hex::encode(sha2::Sha256::digest(text.as_bytes()));
    let ext = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
    let (status, _, body) = env.post(json!({ "extensions": ext }), None).await;
    assert_eq!((status, code(&body)), (200, "PERSISTED_QUERY_NOT_FOUND"));
    let (status, _, body) = env
        .post(json!({ "query": text, "extensions": ext }), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["_meta"]["changeLogSeq"], 0);
    let (status, _, body) = env.post(json!({ "extensions": ext }), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["_meta"]["changeLogSeq"], 0);
    let resp = env
        .http
        .get(env.url("/graphql"))
        .query(&[("extensions", ext.to_string())])
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 200);
    // `_meta` is progress now: never cached.
    assert_eq!(resp.headers()["cache-control"], "no-cache");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["data"]["_meta"]["changeLogSeq"], 0, "{body}");

    // Reads of the registry may be kept for 5 s by HTTP caches; only over GET, only when
    // the answer has no errors.
    let page = "{ properties(first: 1) { totalCount } }";
    let resp = env
        .http
        .get(env.url("/graphql"))
        .query(&[("query", page)])
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "max-age=5");
    let resp = env
        .http
        .post(env.url("/graphql"))
        .json(&json!({ "query": page }))
        .send()
        .await
        .expect("POST");
    assert!(resp.headers().get("cache-control").is_none());
    let resp = env
        .http
        .get(env.url("/graphql"))
        .query(&[("query", "{ property(id: \"nonsense\") { id } }")])
        .send()
        .await
        .expect("GET");
    assert!(resp.headers().get("cache-control").is_none());
}
