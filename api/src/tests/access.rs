//! Who may do what, and how often, over real HTTP and WebSocket: bearer tokens (every way a
//! token can be bad is a 401, never anonymous), roles (what anonymous callers may not list),
//! page limits per role, rate limits (429 with Retry-After), CORS, compression, request ids
//! and draining on shutdown. The replica is real: a seeded devnet synced into a private
//! PostgreSQL by the sync worker, with a search index — roles are about data, so there is
//! data to list.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use migrations::{sqlx, PgPool};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use schema::Role;

use crate::{Auth, Options, RateLimits, TokenRules};

const SECRET: &[u8] = b"test-only-secret-test-only-secret-0123";
const AUDIENCE: &str = "landql-tests";
const ISSUER: &str = "https://id.example.test";

// TEST-ONLY keys (see testdata/README.md).
const RSA_PRIVATE: &[u8] = include_bytes!("../testdata/rsa-private.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("../testdata/rsa-public.pem");
const EC_PRIVATE: &[u8] = include_bytes!("../testdata/ec-private.pem");
const EC_PUBLIC: &[u8] = include_bytes!("../testdata/ec-public.pem");
const ED_PRIVATE: &[u8] = include_bytes!("../testdata/ed25519-private.pem");
const ED_PUBLIC: &[u8] = include_bytes!("../testdata/ed25519-public.pem");

/// A synced, indexed replica of a seeded devnet (`testkit`); API servers are started over
/// it with the options each check needs.
struct World {
    /// Kept for its lifetime: dropping it stops the ledger and the sync worker.
    _inner: testkit::World,
    pool: PgPool,
    services: schema::Services,
}

/// One API server; stopped when dropped (or by [`Api::shutdown`]).
struct Api {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), crate::ApiError>>>,
}

impl Drop for Api {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Api {
    fn url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }
}

impl World {
    async fn start() -> World {
        let inner = testkit::world(60, schema::Config::default()).await;
        World {
            pool: inner.pool.clone(),
            services: inner.services.clone(),
            _inner: inner,
        }
    }

    /// An API server over this world.
    async fn serve(&self, opts: Options) -> Api {
        let router = crate::router(
            crate::schema(self.services.clone(), &opts),
            self.services.clone(),
            opts,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(crate::serve(listener, router, async move {
            let _ = stopped.await;
        }));
        Api {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }
}

fn rules() -> TokenRules {
    TokenRules {
        audience: Some(AUDIENCE.into()),
        issuer: Some(ISSUER.into()),
        leeway: Duration::from_secs(30),
    }
}

/// Options with a token key, no rate limit (unless a check sets one).
fn with_auth(auth: Auth) -> Options {
    Options {
        auth,
        rate_limits: RateLimits::unlimited(),
        ..Options::default()
    }
}

/// These roles limited to so many requests a second; every other role unlimited.
fn limited(rates: &[(Role, u32)]) -> RateLimits {
    let mut limits = RateLimits::unlimited();
    for &(role, n) in rates {
        limits.set(role, std::num::NonZeroU32::new(n));
    }
    limits
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// Valid claims for `role`, changed by `edit`.
fn claims(role: &str, edit: impl FnOnce(&mut Value)) -> Value {
    let mut c = json!({
        "sub": format!("{role}-1"),
        "role": role,
        "aud": AUDIENCE,
        "iss": ISSUER,
        "iat": now(),
        "exp": now() + 600,
    });
    edit(&mut c);
    c
}

fn sign(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).expect("sign")
}

fn hs(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET).expect("key"),
        claims,
    )
}

fn token(role: &str) -> String {
    hs(&claims(role, |_| {}))
}

fn b64(v: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

/// POSTs a query, with a token if given; (status, headers, body).
async fn post(
    http: &reqwest::Client,
    api: &Api,
    token: Option<&str>,
    body: Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = http.post(api.url()).json(&body);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

fn first_error(body: &Value) -> (&str, &str) {
    let e = &body["errors"][0];
    (
        e["extensions"]["code"].as_str().unwrap_or("<no code>"),
        e["message"].as_str().unwrap_or(""),
    )
}

/// Asserts a 401 for a bad token whose message contains `says`.
async fn assert_refused(http: &reqwest::Client, api: &Api, token: &str, says: &str) {
    let (status, headers, body) =
        post(http, api, Some(token), json!({ "query": "{ __typename }" })).await;
    assert_eq!(status, 401, "{says}: {body}");
    assert_eq!(
        headers.get("www-authenticate").map(|v| v.as_bytes()),
        Some(&b"Bearer error=\"invalid_token\""[..]),
        "{says}"
    );
    assert!(headers.contains_key("x-request-id"), "{says}: a request id");
    let (code, message) = first_error(&body);
    assert_eq!(code, "UNAUTHENTICATED", "{says}: {body}");
    assert!(message.contains(says), "wanted {says:?} in {message:?}");
    assert!(body.get("data").is_none(), "{body}");
    let secret = String::from_utf8_lossy(SECRET);
    assert!(!message.contains(secret.as_ref()), "never the key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_roles_and_page_limits() {
    let world = World::start().await;
    let http = reqwest::Client::new();
    let api = world
        .serve(with_auth(Auth::hs256(SECRET, rules()).expect("hs256")))
        .await;

    // A valid token is accepted, by POST and GET.
    let (status, _, body) = post(
        &http,
        &api,
        Some(&token("citizen")),
        json!({ "query": "{ __typename }" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let resp = http
        .get(api.url())
        .query(&[("query", "{ __typename }")])
        .header("authorization", format!("Bearer {}", token("admin")))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);

    // Every kind of bad token: 401, never anonymous.
    let forged = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"another-secret-another-secret-0123456").expect("key"),
        &claims("citizen", |_| {}),
    );
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "typ": "JWT" })),
        b64(&claims("admin", |_| {}))
    );
    let cases: Vec<(String, &str)> = vec![
        (forged, "signature does not verify"),
        (
            hs(&claims("citizen", |c| c["exp"] = json!(now() - 120))),
            "expired at",
        ),
        (
            hs(&claims("citizen", |c| c["nbf"] = json!(now() + 600))),
            "not valid before",
        ),
        (
            hs(&claims("citizen", |c| c["aud"] = json!("someone-else"))),
            "audience (aud) is not \"landql-tests\"",
        ),
        (
            hs(&claims("citizen", |c| {
                c["iss"] = json!("https://evil.example")
            })),
            "issuer (iss) is not",
        ),
        (unsigned, "unsigned (alg: none)"),
        ("not-a-jwt".into(), "malformed"),
        ("a.b.c".into(), "malformed"),
        (
            hs(&claims("superuser", |_| {})),
            "role \"superuser\" is not one of",
        ),
        (
            hs(&claims("citizen", |c| {
                c.as_object_mut().map(|o| o.remove("exp"));
            })),
            "no `exp` claim",
        ),
        (
            hs(&claims("citizen", |c| {
                c.as_object_mut().map(|o| o.remove("role"));
            })),
            "no `role` claim",
        ),
    ];
    for (t, says) in &cases {
        assert_refused(&http, &api, t, says).await;
    }
    // Not a bearer token at all.
    let (status, _, body) = {
        let resp = http
            .post(api.url())
            .header("authorization", "Basic dXNlcjpwYXNz")
            .json(&json!({ "query": "{ __typename }" }))
            .send()
            .await
            .expect("send");
        let s = resp.status().as_u16();
        (s, (), resp.json::<Value>().await.expect("json"))
    };
    assert_eq!(
        (status, first_error(&body).0),
        (401, "UNAUTHENTICATED"),
        "{body}"
    );
    // Health is not behind tokens.
    let resp = http
        .get(format!("http://{}/healthz", api.addr))
        .header("authorization", "Bearer nonsense")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);

    // Public-key servers: the key's type decides the algorithm, and nothing else passes.
    let rs = world
        .serve(with_auth(
            Auth::public_key_pem(RSA_PUBLIC, rules()).expect("rsa"),
        ))
        .await;
    let es = world
        .serve(with_auth(
            Auth::public_key_pem(EC_PUBLIC, rules()).expect("ec"),
        ))
        .await;
    let ed = world
        .serve(with_auth(
            Auth::public_key_pem(ED_PUBLIC, rules()).expect("ed"),
        ))
        .await;
    let c = claims("verifier", |_| {});
    let rs_token = sign(
        Algorithm::RS256,
        &EncodingKey::from_rsa_pem(RSA_PRIVATE).expect("key"),
        &c,
    );
    let es_token = sign(
        Algorithm::ES256,
        &EncodingKey::from_ec_pem(EC_PRIVATE).expect("key"),
        &c,
    );
    let ed_token = sign(
        Algorithm::EdDSA,
        &EncodingKey::from_ed_pem(ED_PRIVATE).expect("key"),
        &c,
    );
    for (server, good) in [(&rs, &rs_token), (&es, &es_token), (&ed, &ed_token)] {
        let (status, _, body) = post(
            &http,
            server,
            Some(good),
            json!({ "query": "{ __typename }" }),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    // Algorithm confusion: an HS256 token "signed" with the RSA public key's own bytes.
    let confused = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(RSA_PUBLIC).expect("key"),
        &c,
    );
    assert_refused(
        &http,
        &rs,
        &confused,
        "signed with HS256; this server accepts RS256",
    )
    .await;
    assert_refused(
        &http,
        &ed,
        &rs_token,
        "signed with RS256; this server accepts EdDSA",
    )
    .await;
    assert_refused(
        &http,
        &es,
        &ed_token,
        "signed with EdDSA; this server accepts ES256",
    )
    .await;
    assert_refused(&http, &api, &rs_token, "accepts HS256 tokens only").await;
    // A server without a key refuses every token, even a well-formed one.
    let keyless = world.serve(with_auth(Auth::disabled())).await;
    assert_refused(&http, &keyless, &token("admin"), "accepts no bearer tokens").await;

    // Roles. Some data to ask about: a property, one of its owners, and a sync error.
    let (pid, owner, name): (String, String, String) = sqlx::query_as(
        "SELECT o.property_id, o.owner_ref, w.name FROM ownerships o \
         JOIN owners w USING (owner_ref) ORDER BY o.property_id LIMIT 1",
    )
    .fetch_one(&world.pool)
    .await
    .expect("an ownership");
    sqlx::query(
        "INSERT INTO indexing_errors (channel, block_number, tx_index, tx_id, error, raw) \
         VALUES ('land-registry-primary', 3, 0, 'tx-test', 'a test error', '{}')",
    )
    .execute(&world.pool)
    .await
    .expect("insert a sync error");

    let listing = [
        (
            "query($n: String!) { owners(name: $n) { edges { node { id } } } }",
            "`owners`",
        ),
        (
            "query($o: ID!) { owner(id: $o) { name properties { edges { node { id } } } } }",
            "`Owner.properties`",
        ),
        (
            "query($p: ID!) { property(id: $p) { owners { owner { properties { edges { node { id } } } } } } }",
            "`Owner.properties`",
        ),
        (
            "query($o: ID!) { properties(filter: { ownerId: $o }) { edges { node { id } } } }",
            "ownerId",
        ),
    ];
    // The first letter, not byte: names may be in Telugu, Kannada or Devanagari.
    let initial: String = name.chars().take(1).collect();
    let vars = json!({ "n": initial, "o": owner, "p": pid });
    for (q, what) in listing {
        let (status, _, body) =
            post(&http, &api, None, json!({ "query": q, "variables": vars })).await;
        assert_eq!(status, 200, "{body}");
        let (code, message) = first_error(&body);
        assert_eq!(code, "FORBIDDEN", "{q}: {body}");
        assert!(
            message.contains(what) && message.contains("needs a signed-in role"),
            "{message}"
        );
        // Signed in, the same query lists.
        let (status, _, body) = post(
            &http,
            &api,
            Some(&token("citizen")),
            json!({ "query": q, "variables": vars }),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{q}: {body}");
    }
    let (_, _, body) = post(
        &http,
        &api,
        Some(&token("citizen")),
        json!({ "query": "query($o: ID!) { owner(id: $o) { properties { edges { node { id } } } } }",
                "variables": vars }),
    )
    .await;
    let held: Vec<&str> = body["data"]["owner"]["properties"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|e| e["node"]["id"].as_str())
        .collect();
    assert!(held.contains(&pid.as_str()), "{body}");

    // Anonymous callers may read, search and verify.
    let (status, _, body) = post(
        &http,
        &api,
        None,
        json!({ "query": "query($p: ID!, $n: String!) { property(id: $p, consistency: REPLICA) { id owners { owner { name } } } \
                          search(text: $n) { total hits { property { id } } } \
                          verifyProperty(id: $p) { outcome } _meta { hasIndexingErrors } }",
                "variables": { "p": pid, "n": name } }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["property"]["id"], pid.as_str());
    assert!(body["data"]["search"]["total"].as_i64() > Some(0), "{body}");
    assert!(
        body["data"]["verifyProperty"]["outcome"].is_string(),
        "{body}"
    );

    // Sync errors: registrar and admin only.
    let q = json!({ "query": "{ _meta { syncErrors(first: 5) { edges { node { error txId channel } } pageInfo { hasNextPage } } } }" });
    for role in ["registrar", "admin"] {
        let (status, _, body) = post(&http, &api, Some(&token(role)), q.clone()).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{role}: {body}");
        assert_eq!(
            body["data"]["_meta"]["syncErrors"]["edges"][0]["node"]["error"], "a test error",
            "{body}"
        );
    }
    for who in [Some(token("citizen")), Some(token("verifier")), None] {
        let (status, _, body) = post(&http, &api, who.as_deref(), q.clone()).await;
        assert_eq!(status, 200, "{body}");
        let (code, message) = first_error(&body);
        assert_eq!(code, "FORBIDDEN", "{body}");
        assert!(message.contains("registrar and admin"), "{message}");
    }

    // Page limits per role, named in the refusal.
    let page = |n: i64| json!({ "query": format!("{{ properties(first: {n}) {{ edges {{ node {{ id }} }} }} }}") });
    let (_, _, body) = post(&http, &api, None, page(20)).await;
    assert!(body.get("errors").is_none(), "{body}");
    let (_, _, body) = post(&http, &api, None, page(21)).await;
    let (code, message) = first_error(&body);
    assert_eq!(code, "BAD_USER_INPUT", "{body}");
    assert!(
        message.contains("page limit of 20 for the anonymous role"),
        "{message}"
    );
    let (_, _, body) = post(&http, &api, Some(&token("citizen")), page(21)).await;
    assert!(body.get("errors").is_none(), "{body}");
    let (_, _, body) = post(&http, &api, Some(&token("citizen")), page(101)).await;
    assert!(
        first_error(&body)
            .1
            .contains("page limit of 100 for the citizen role"),
        "{body}"
    );

    // The refusals are counted.
    let metrics = http
        .get(format!("http://{}/metrics", api.addr))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    for series in [
        "landql_api_unauthenticated_total{reason=\"expired\"}",
        "landql_api_unauthenticated_total{reason=\"unsigned\"}",
    ] {
        assert!(metrics.contains(series), "{series} missing");
    }
}

/// Anonymous callers read only the first page of the lists that show owner names, unless
/// they narrow to a village or a survey number; signed-in callers page on
/// (schema/src/list_depth.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_lists_stop_after_the_first_page_unless_narrowed() {
    let world = World::start().await;
    let http = reqwest::Client::new();
    let api = world
        .serve(with_auth(Auth::hs256(SECRET, rules()).expect("hs256")))
        .await;
    let page = |filter: Value, after: Value| {
        json!({
            "query": "query($f: PropertyFilter, $a: String) { properties(filter: $f, first: 20, after: $a) { \
                      nodes { id surveyNo location { state district mandal village } owners { owner { name } } } \
                      pageInfo { hasNextPage endCursor } } }",
            "variables": { "f": filter, "a": after },
        })
    };

    // The first page is open to everyone, owner names and all.
    let (status, _, first) = post(&http, &api, None, page(Value::Null, Value::Null)).await;
    assert_eq!(status, 200, "{first}");
    assert!(first.get("errors").is_none(), "{first}");
    let nodes = first["data"]["properties"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(nodes.len(), 20, "{first}");
    assert!(
        nodes[0]["owners"][0]["owner"]["name"].is_string(),
        "{first}"
    );
    assert_eq!(first["data"]["properties"]["pageInfo"]["hasNextPage"], true);
    let cursor = first["data"]["properties"]["pageInfo"]["endCursor"].clone();

    // The next page is not, without narrowing: the error says how to narrow or sign in.
    let (status, _, body) = post(&http, &api, None, page(Value::Null, cursor.clone())).await;
    assert_eq!(status, 200, "{body}");
    let (code, message) = first_error(&body);
    assert_eq!(code, "NARROW_OR_SIGN_IN", "{body}");
    for says in [
        "first page (at most 20 items) of `properties`",
        "village",
        "surveyNo",
        "Bearer",
    ] {
        assert!(message.contains(says), "{says}: {message}");
    }
    assert!(body["data"].is_null(), "{body}");
    // A coarse filter does not narrow; a time range does not page around the bound.
    let state = json!({ "state": nodes[0]["location"]["state"] });
    let (_, _, body) = post(&http, &api, None, page(state, cursor.clone())).await;
    assert_eq!(first_error(&body).0, "NARROW_OR_SIGN_IN", "{body}");
    let since = json!({ "createdAfter": "2000-01-01T00:00:00Z" });
    let (_, _, body) = post(&http, &api, None, page(since, Value::Null)).await;
    assert_eq!(first_error(&body).0, "NARROW_OR_SIGN_IN", "{body}");
    // Search too (refused before its cursor is even read).
    let (_, _, body) = post(
        &http,
        &api,
        None,
        json!({ "query": "{ search(text: \"a\", after: \"x\") { total hits { property { id } } } }" }),
    )
    .await;
    let (code, message) = first_error(&body);
    assert_eq!(code, "NARROW_OR_SIGN_IN", "{body}");
    assert!(message.contains("`search`"), "{message}");

    // Narrowed to one village, or one survey number, an anonymous caller pages on.
    let loc = &nodes[0]["location"];
    let village = json!({ "state": loc["state"], "district": loc["district"],
                          "mandal": loc["mandal"], "village": loc["village"] });
    let one = |filter: &Value, after: Value| {
        json!({
            "query": "query($f: PropertyFilter, $a: String) { properties(filter: $f, first: 1, after: $a) { \
                      nodes { id owners { owner { name } } } pageInfo { endCursor } } }",
            "variables": { "f": filter, "a": after },
        })
    };
    for filter in [village, json!({ "surveyNo": nodes[0]["surveyNo"] })] {
        let (_, _, body) = post(&http, &api, None, one(&filter, Value::Null)).await;
        assert!(body.get("errors").is_none(), "{filter}: {body}");
        let next = body["data"]["properties"]["pageInfo"]["endCursor"].clone();
        assert!(next.is_string(), "{filter}: {body}");
        let (status, _, body) = post(&http, &api, None, one(&filter, next)).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{filter}: {body}");
    }

    // Signed-in callers page as before.
    let citizen = token("citizen");
    let (_, _, body) = post(&http, &api, Some(&citizen), page(Value::Null, cursor)).await;
    assert!(body.get("errors").is_none(), "{body}");
    let second = body["data"]["properties"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(second.len(), 20, "{body}");
    assert_ne!(second[0]["id"], nodes[0]["id"]);
    let (_, _, body) = post(
        &http,
        &api,
        Some(&citizen),
        json!({ "query": "{ properties(filter: { createdAfter: \"2000-01-01T00:00:00Z\" }, first: 5) { nodes { id } } }" }),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
}

/// Every record with owner names an anonymous client lists — narrowed or not, `properties`
/// or `search` — is taken from a daily allowance per address (schema/src/list_quota.rs);
/// counts take nothing, other addresses and signed-in callers have their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_lists_spend_a_daily_allowance_per_address() {
    let world = World::start().await;
    let http = reqwest::Client::new();
    let api = world
        .serve(Options {
            anonymous_list_quota: std::num::NonZeroU32::new(50),
            ..with_auth(Auth::hs256(SECRET, rules()).expect("hs256"))
        })
        .await;
    let list = |first: u32| {
        json!({ "query": format!(
            "{{ properties(first: {first}) {{ nodes {{ id owners {{ owner {{ name }} }} }} }} }}"
        ) })
    };
    let listed = |body: &Value| {
        assert!(body.get("errors").is_none(), "{body}");
        body["data"]["properties"]["nodes"]
            .as_array()
            .map_or(0, Vec::len)
    };

    // Counts take nothing, however often.
    for _ in 0..5 {
        let (_, _, body) = post(
            &http,
            &api,
            None,
            json!({ "query": "{ properties(first: 20) { totalCount } }" }),
        )
        .await;
        assert!(
            body["data"]["properties"]["totalCount"].as_i64() > Some(40),
            "{body}"
        );
    }
    // 20 + 20 records listed, then a search's 5 hits: 45 of 50.
    let (_, _, body) = post(&http, &api, None, list(20)).await;
    assert_eq!(listed(&body), 20);
    let name = body["data"]["properties"]["nodes"][0]["owners"][0]["owner"]["name"].clone();
    let id = body["data"]["properties"]["nodes"][0]["id"].clone();
    assert_eq!(listed(&post(&http, &api, None, list(20)).await.2), 20);
    let search = |hits: bool| {
        let what = if hits {
            "hits { property { id } }"
        } else {
            "total"
        };
        json!({ "query": format!("query($t: String!) {{ search(text: $t, first: 5) {{ {what} }} }}"),
                "variables": { "t": name } })
    };
    let (_, _, body) = post(&http, &api, None, search(true)).await;
    assert!(body.get("errors").is_none(), "{body}");
    let hits = body["data"]["search"]["hits"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(hits >= 1, "{body}");
    let left = 50 - 40 - hits;
    // A search's total takes nothing either.
    let (_, _, body) = post(&http, &api, None, search(false)).await;
    assert!(
        body["data"]["search"]["total"].as_i64() >= Some(1),
        "{body}"
    );

    // More than is left: refused whole, saying the allowance, when, and the ways on.
    let (status, _, body) = post(&http, &api, None, list(left as u32 + 1)).await;
    assert_eq!(status, 200, "{body}");
    let (code, message) = first_error(&body);
    assert_eq!(code, "DAILY_LIST_LIMIT", "{body}");
    for says in ["50 records", "`properties`", "property(id)", "Bearer"] {
        assert!(message.contains(says), "{says}: {message}");
    }
    let retry = body["errors"][0]["extensions"]["retryAfter"].as_u64();
    // One record comes back every 86 400 / 50 s.
    assert!(retry.is_some_and(|s| (1000..=1800).contains(&s)), "{body}");
    assert!(body["data"].is_null(), "{body}");
    // What is left is still there; then nothing is.
    assert_eq!(
        listed(&post(&http, &api, None, list(left as u32)).await.2),
        left
    );
    let (_, _, body) = post(&http, &api, None, list(1)).await;
    assert_eq!(first_error(&body).0, "DAILY_LIST_LIMIT", "{body}");
    let (_, _, body) = post(&http, &api, None, search(true)).await;
    let (code, message) = first_error(&body);
    assert_eq!(code, "DAILY_LIST_LIMIT", "{body}");
    assert!(message.contains("`search`"), "{message}");
    // One parcel is always open.
    let (_, _, body) = post(
        &http,
        &api,
        None,
        json!({ "query": "query($id: ID!) { property(id: $id) { owners { owner { name } } } }",
                "variables": { "id": id } }),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert!(
        body["data"]["property"]["owners"][0]["owner"]["name"].is_string(),
        "{body}"
    );

    // Another address has its own allowance; a signed-in caller is not counted.
    let other = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().expect("ip"))
        .build()
        .expect("client");
    assert_eq!(listed(&post(&other, &api, None, list(20)).await.2), 20);
    let citizen = token("citizen");
    for _ in 0..4 {
        assert_eq!(
            listed(&post(&http, &api, Some(&citizen), list(20)).await.2),
            20
        );
    }
    let metrics = http
        .get(format!("http://{}/metrics", api.addr))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("code=\"DAILY_LIST_LIMIT\""),
        "the refusals are counted by code"
    );
}

/// Reads WebSocket messages until one of type `want`, a close frame or the deadline;
/// (the message or `None` on close, close code and reason).
async fn ws_until(ws: &mut Socket, want: &str) -> Result<Value, (u16, String)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no {want} in time");
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message in time");
        match msg {
            Some(Ok(Message::Text(text))) => {
                let v: Value = serde_json::from_str(&text).expect("json");
                if v["type"] == want || v["type"] == "connection_error" {
                    return Ok(v);
                }
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(frame
                    .map(|f| (u16::from(f.code), f.reason.to_string()))
                    .unwrap_or((0, String::new())))
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Err((0, String::new())),
        }
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_connect(
    api: &Api,
    protocol: &str,
    authorization: Option<&str>,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let headers: Vec<(&'static str, &str)> = authorization
        .map(|a| ("authorization", a))
        .into_iter()
        .collect();
    ws_connect_with(api, protocol, &headers).await
}

async fn ws_connect_with(
    api: &Api,
    protocol: &str,
    headers: &[(&'static str, &str)],
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://{}/graphql", api.addr)
        .into_client_request()
        .expect("request");
    req.headers_mut()
        .insert("sec-websocket-protocol", protocol.parse().expect("header"));
    for (name, value) in headers {
        req.headers_mut().insert(
            reqwest::header::HeaderName::from_static(name),
            value.parse().expect("header"),
        );
    }
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_tokens_come_from_connection_init() {
    let world = World::start().await;
    let api = world
        .serve(with_auth(Auth::hs256(SECRET, rules()).expect("hs256")))
        .await;
    let sub =
        "subscription { progress { changeLogSeq syncErrors(first: 1) { edges { node { id } } } } }";

    // A bad token in connection_init: refused there (graphql-transport-ws closes the
    // socket; the older graphql-ws sends connection_error).
    for payload in [
        json!({ "authToken": "not-a-jwt" }),
        json!({ "Authorization": format!("Bearer {}", hs(&claims("citizen", |c| c["exp"] = json!(now() - 3600)))) }),
    ] {
        let mut ws = ws_connect(&api, "graphql-transport-ws", None)
            .await
            .expect("connect");
        ws.send(Message::text(
            json!({ "type": "connection_init", "payload": payload }).to_string(),
        ))
        .await
        .expect("init");
        match ws_until(&mut ws, "connection_ack").await {
            Err((code, reason)) => {
                assert_ne!(code, 1000, "not a normal close");
                assert!(reason.starts_with("UNAUTHENTICATED"), "{reason}");
            }
            Ok(v) => panic!("a bad token was acknowledged: {v}"),
        }
    }
    let mut ws = ws_connect(&api, "graphql-ws", None).await.expect("connect");
    ws.send(Message::text(
        json!({ "type": "connection_init", "payload": { "authToken": "x.y.z" } }).to_string(),
    ))
    .await
    .expect("init");
    let v = ws_until(&mut ws, "connection_ack")
        .await
        .expect("a message");
    assert_eq!(v["type"], "connection_error", "{v}");

    // A bad token on the upgrade request itself: 401 before any socket.
    assert!(
        ws_connect(&api, "graphql-transport-ws", Some("Bearer nonsense"))
            .await
            .is_err()
    );

    // A registrar's token in connection_init reaches the resolvers; anonymous does not.
    for (payload, allowed) in [
        (json!({ "authToken": token("registrar") }), true),
        (
            json!({ "Authorization": format!("Bearer {}", token("admin")) }),
            true,
        ),
        (json!({}), false),
    ] {
        let mut ws = ws_connect(&api, "graphql-transport-ws", None)
            .await
            .expect("connect");
        ws.send(Message::text(
            json!({ "type": "connection_init", "payload": payload }).to_string(),
        ))
        .await
        .expect("init");
        ws_until(&mut ws, "connection_ack").await.expect("ack");
        ws.send(Message::text(
            json!({ "id": "1", "type": "subscribe", "payload": { "query": sub } }).to_string(),
        ))
        .await
        .expect("subscribe");
        let v = ws_until(&mut ws, "next").await.expect("next");
        if allowed {
            assert!(v["payload"].get("errors").is_none(), "{v}");
        } else {
            assert_eq!(
                v["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
                "{v}"
            );
        }
        let _ = ws.close(None).await;
    }
}

/// Starts `ids.len()` subscriptions to `progress` at once (`subscribe`, or `start` on
/// `graphql-ws`) and reads until each has an answer: which ids were started (a `next` or
/// `data`) and the refusals' (id, code, message).
async fn start_subscriptions(
    ws: &mut Socket,
    legacy: bool,
    ids: &[&str],
) -> (Vec<String>, Vec<(String, String, String)>) {
    let kind = if legacy { "start" } else { "subscribe" };
    for id in ids {
        ws.send(Message::text(
            json!({ "id": id, "type": kind, "payload": { "query": "subscription { progress { changeLogSeq } }" } })
                .to_string(),
        ))
        .await
        .expect("subscribe");
    }
    let mut started = Vec::new();
    let mut refused = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while started.len() + refused.len() < ids.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, ws.next())
            .await
            .expect("an answer for every subscription in time");
        let Some(Ok(Message::Text(text))) = msg else {
            panic!("socket ended: {msg:?}");
        };
        let v: Value = serde_json::from_str(&text).expect("json");
        let id = v["id"].as_str().unwrap_or_default().to_string();
        if started.contains(&id) || refused.iter().any(|(r, _, _)| *r == id) {
            continue; // a later progress update
        }
        match v["type"].as_str() {
            Some("next" | "data") => started.push(id),
            Some("error") => {
                let e = if legacy {
                    &v["payload"]
                } else {
                    &v["payload"][0]
                };
                refused.push((
                    id,
                    e["extensions"]["code"].as_str().unwrap_or_default().into(),
                    e["message"].as_str().unwrap_or_default().into(),
                ));
            }
            _ => {}
        }
    }
    (started, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_and_proxied_clients_are_limited_per_client() {
    let world = World::start().await;
    let http = reqwest::Client::new();
    let limits = limited(&[(Role::Anonymous, 3), (Role::Citizen, 2)]);
    let api = world
        .serve(Options {
            auth: Auth::hs256(SECRET, rules()).expect("hs256"),
            rate_limits: limits,
            trusted_proxies: "127.0.0.0/8".parse().expect("range"),
            ..Options::default()
        })
        .await;

    // Each subscription started on an open socket costs one request, charged to the
    // caller that connection_init named (here a citizen: 2 a second). The refused ones
    // get an error with RATE_LIMITED; the socket and the admitted ones carry on.
    let mut ws = ws_connect(&api, "graphql-transport-ws", None)
        .await
        .expect("connect");
    ws.send(Message::text(
        json!({ "type": "connection_init", "payload": { "authToken": token("citizen") } })
            .to_string(),
    ))
    .await
    .expect("init");
    ws_until(&mut ws, "connection_ack").await.expect("ack");
    let (started, refused) = start_subscriptions(&mut ws, false, &["1", "2", "3", "4", "5"]).await;
    assert!((2..=3).contains(&started.len()), "started {started:?}");
    assert!(refused.len() >= 2, "refused {refused:?}");
    for (_, code, message) in &refused {
        assert_eq!(code, "RATE_LIMITED");
        assert!(message.contains("the citizen role"), "{message}");
    }
    ws.send(Message::text(json!({ "type": "ping" }).to_string()))
        .await
        .expect("ping");
    ws_until(&mut ws, "pong")
        .await
        .expect("the socket is still open");
    let _ = ws.close(None).await;

    // The older graphql-ws protocol, anonymous, behind the trusted proxy: a client of its
    // own (3 a second), whose upgrade cost one of them.
    let mut ws = ws_connect_with(&api, "graphql-ws", &[("x-forwarded-for", "203.0.113.50")])
        .await
        .expect("connect");
    ws.send(Message::text(
        json!({ "type": "connection_init", "payload": {} }).to_string(),
    ))
    .await
    .expect("init");
    ws_until(&mut ws, "connection_ack").await.expect("ack");
    let (started, refused) = start_subscriptions(&mut ws, true, &["a", "b", "c", "d", "e"]).await;
    assert!((2..=3).contains(&started.len()), "started {started:?}");
    assert!(refused.len() >= 2, "refused {refused:?}");
    assert!(
        refused
            .iter()
            .all(|(_, code, m)| code == "RATE_LIMITED"
                && m.contains("anonymous clients (per address)")),
        "{refused:?}"
    );
    let _ = ws.close(None).await;

    // Over HTTP, one request a second per anonymous client (so that no bucket refills
    // while a check runs): behind a trusted proxy each forwarded client has its own bucket,
    // and the entries a client writes itself (left of the proxy's) change nothing. A
    // server that trusts no proxy ignores X-Forwarded-For: all come from one address.
    let one_a_second = limited(&[(Role::Anonymous, 1)]);
    let proxied = world
        .serve(Options {
            rate_limits: one_a_second,
            trusted_proxies: "127.0.0.1".parse().expect("address"),
            ..Options::default()
        })
        .await;
    let direct = world
        .serve(Options {
            rate_limits: one_a_second,
            ..Options::default()
        })
        .await;
    let q = json!({ "query": "{ __typename }" });
    let send = |api: &Api, xff: &str| {
        let req = http.post(api.url()).header("x-forwarded-for", xff).json(&q);
        async move { req.send().await.expect("send").status().as_u16() }
    };
    let cases: &[(&Api, &str, u16, &str)] = &[
        (&proxied, "203.0.113.1", 200, "a first client"),
        (&proxied, "203.0.113.1", 429, "the same client again"),
        (&proxied, "203.0.113.2", 200, "another client"),
        (
            &proxied,
            "198.51.100.7, 203.0.113.1",
            429,
            "a forged entry is no new client",
        ),
        (&direct, "203.0.113.3", 200, "the peer's first request"),
        (
            &direct,
            "203.0.113.4",
            429,
            "the peer again, whatever it forwards",
        ),
    ];
    for (api, xff, want, why) in cases {
        assert_eq!(send(api, xff).await, *want, "{why} ({xff})");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_cors_compression_and_drain() {
    let world = World::start().await;
    let http = reqwest::Client::new();
    let limits = limited(&[(Role::Anonymous, 5), (Role::Citizen, 3)]);
    let api = world
        .serve(Options {
            auth: Auth::hs256(SECRET, rules()).expect("hs256"),
            rate_limits: limits,
            ..Options::default()
        })
        .await;

    // A burst of 10× the anonymous limit: 429s with Retry-After, no 5xx, and what is
    // admitted is answered.
    let q = json!({ "query": "{ __typename }" });
    let answers =
        futures::future::join_all((0..50).map(|_| post(&http, &api, None, q.clone()))).await;
    let mut ok = 0;
    let mut limited = 0;
    for (status, headers, body) in &answers {
        match status {
            200 => {
                ok += 1;
                assert_eq!(body["data"]["__typename"], "Query");
            }
            429 => {
                limited += 1;
                let retry: u64 = headers
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .expect("Retry-After in seconds");
                assert!(retry >= 1);
                assert!(headers.contains_key("x-request-id"));
                let (code, message) = first_error(body);
                assert_eq!(code, "RATE_LIMITED", "{body}");
                assert!(message.contains("5 requests per second"), "{message}");
            }
            s => panic!("status {s}: {body}"),
        }
    }
    assert!((5..=15).contains(&ok), "{ok} admitted");
    assert!(limited >= 35, "{limited} refused");
    // Health, readiness and metrics are never limited.
    for path in ["/healthz", "/readyz", "/metrics"] {
        for _ in 0..10 {
            let s = http
                .get(format!("http://{}{path}", api.addr))
                .send()
                .await
                .expect("send")
                .status()
                .as_u16();
            assert_ne!(s, 429, "{path}");
        }
    }
    // A signed-in caller has a bucket of their own; a batch costs one per operation.
    let citizen = token("citizen");
    let batch = |n: usize| Value::Array((0..n).map(|_| q.clone()).collect());
    let (status, _, body) = post(&http, &api, Some(&citizen), batch(3)).await;
    assert_eq!(status, 200, "{body}");
    let (status, headers, body) = post(&http, &api, Some(&citizen), q.clone()).await;
    assert_eq!(status, 429, "the batch of 3 used the citizen's 3: {body}");
    assert!(headers.contains_key("retry-after"));
    assert!(first_error(&body).1.contains("the citizen role"), "{body}");
    let (status, _, body) = post(&http, &api, Some(&token("admin")), batch(10)).await;
    assert_eq!(status, 200, "admins are unlimited here: {body}");
    // After waiting as told, the anonymous client is admitted again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _, body) = post(&http, &api, None, q.clone()).await;
    assert_eq!(status, 200, "{body}");
    let metrics = http
        .get(format!("http://{}/metrics", api.addr))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("landql_api_rate_limited_total{role=\"anonymous\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("landql_api_rate_limit_clients"),
        "{metrics}"
    );
    // A flood of forged tokens is limited like anonymous traffic from that address: 401s,
    // then 429s — never served.
    let forged = "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl";
    let answers =
        futures::future::join_all((0..20).map(|_| post(&http, &api, Some(forged), q.clone())))
            .await;
    let statuses: Vec<u16> = answers.iter().map(|(s, _, _)| *s).collect();
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&401) && statuses.contains(&429),
        "{statuses:?}"
    );

    // Memory stays bounded under a flood of distinct clients: idle ones are forgotten.
    let limiter = crate::ratelimit::Limiter::new(
        &RateLimits::default(),
        None,
        Arc::new(crate::Metrics::new(world.services.clone(), Arc::default())),
    );
    for i in 0..50_000u32 {
        let ip = std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        assert!(limiter.admit_addr(ip));
    }
    assert!(limiter.remembered() >= 50_000);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    limiter.admit_addr("192.0.2.1".parse().expect("ip"));
    assert!(
        limiter.remembered() <= 1,
        "{} clients remembered after the sweep",
        limiter.remembered()
    );

    // CORS: any origin by default, the headers a GraphQL client sends, no credentials.
    let open = world.serve(with_auth(Auth::disabled())).await;
    let preflight = |api: &Api, origin: &str| {
        http.request(reqwest::Method::OPTIONS, api.url())
            .header("origin", origin.to_string())
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let resp = preflight(&open, "https://app.example").await.expect("send");
    assert!(resp.status().is_success(), "{}", resp.status());
    let h = resp.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    let methods = h["access-control-allow-methods"].to_str().unwrap_or("");
    assert!(
        methods.contains("POST") && methods.contains("GET"),
        "{methods}"
    );
    let allowed = h["access-control-allow-headers"]
        .to_str()
        .unwrap_or("")
        .to_ascii_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );
    assert!(!h.contains_key("access-control-allow-credentials"));
    let resp = http
        .post(open.url())
        .header("origin", "https://app.example")
        .json(&q)
        .send()
        .await
        .expect("send");
    let expose = resp.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap_or("")
        .to_ascii_lowercase();
    assert!(
        expose.contains("retry-after") && expose.contains("x-request-id"),
        "{expose}"
    );
    // Restricted to named origins.
    let closed = world
        .serve(Options {
            cors_origins: vec!["https://ok.example".parse().expect("origin")],
            ..with_auth(Auth::disabled())
        })
        .await;
    let resp = preflight(&closed, "https://ok.example")
        .await
        .expect("send");
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://ok.example"
    );
    let resp = preflight(&closed, "https://evil.example")
        .await
        .expect("send");
    assert!(!resp.headers().contains_key("access-control-allow-origin"));

    // Compression: a large answer is gzipped (or br) when asked; a small one is not.
    let big = json!({ "query": "{ __schema { types { name description fields { name description } } } }" });
    let resp = http
        .post(open.url())
        .header("accept-encoding", "gzip")
        .json(&big)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let bytes = resp.bytes().await.expect("body");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
        .expect("gunzip");
    let v: Value = serde_json::from_str(&text).expect("json");
    assert!(v["data"]["__schema"]["types"].is_array());
    assert!(
        text.len() > bytes.len() * 3,
        "{} → {}",
        text.len(),
        bytes.len()
    );
    let resp = http
        .post(open.url())
        .header("accept-encoding", "br")
        .json(&big)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.headers()["content-encoding"], "br");
    let resp = http
        .post(open.url())
        .header("accept-encoding", "gzip, br")
        .json(&q)
        .send()
        .await
        .expect("send");
    assert!(
        !resp.headers().contains_key("content-encoding"),
        "small bodies go as they are"
    );

    // Draining: a request in flight when shutdown begins is answered; then the server stops.
    let mut draining = world.serve(with_auth(Auth::disabled())).await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = serde_json::to_vec(&q).expect("json");
    let (head, tail) = body.split_at(5);
    tx.send(Ok(head.to_vec())).await.expect("chunk");
    let in_flight = tokio::spawn(
        http.post(draining.url())
            .header("content-type", "application/json")
            .header("x-request-id", "drain-1")
            .body(reqwest::Body::wrap_stream(futures::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) },
            )))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Some(stop) = draining.stop.take() {
        let _ = stop.send(());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.send(Ok(tail.to_vec())).await.expect("chunk");
    drop(tx);
    let resp = in_flight.await.expect("task").expect("answered");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], "drain-1");
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["data"]["__typename"], "Query");
    let task = draining.task.take().expect("task");
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stopped after draining")
        .expect("task")
        .expect("served");
    assert!(
        http.post(draining.url()).json(&q).send().await.is_err(),
        "no longer listening"
    );
}
