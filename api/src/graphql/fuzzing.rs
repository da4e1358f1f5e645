//! The body of the `graphql_request` fuzz target (README, "Fuzzing"), and the corpus replay
//! that runs it on stable. A child of `graphql` so that it drives the transport's own private
//! parsers and response shaping rather than copies of them.
//!
//! The input is tried as a `POST /graphql` body and as a `GET /graphql` query string. Each
//! request then goes the way `graphql::execute` takes it — `graphql::prepare` (persisted-query
//! lookup, the nesting check, the document cache, the operation check per transport) — into
//! the real schema with the API's error-code and limits extension, which parses and
//! validates it, and `graphql::finish`, which labels the errors. Execution itself is
//! skipped (see [`ValidateOnly`]): resolvers need `Services`, that is a database, and a
//! resolver's behaviour on real data is the integration tests' business.
//!
//! Whatever the input, the answer must be a response with a 2xx or 4xx status and every
//! error in it must carry `extensions.code`.

use std::sync::{Arc, OnceLock};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute};
use async_graphql::{EmptyMutation, Schema};
use axum::body::Body;
use axum::http::Uri;

use super::{
    finish, parse_body, parse_query_string, prepare, single_response, Body1, Prepared, Refusal,
    Transport,
};
use crate::codes;
use crate::documents::Documents;
use crate::negotiate::MediaType;
use crate::persisted::Persisted;
use crate::trace::OpRecord;
use crate::Options;

/// The schema and the per-node stores a request meets, built once per process.
struct Harness {
    schema: Schema<schema::Query, EmptyMutation, schema::Subscription>,
    documents: Documents,
    persisted: Persisted,
    opts: Options,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let opts = Options::default();
        // The served schema is `crate::schema(services, opts)`; this is the same schema and
        // the same extension, minus the services, which only execution reads.
        let schema = Schema::build(schema::Query, EmptyMutation, schema::Subscription)
            .extension(codes::Codes::new(
                opts.max_depth,
                opts.max_complexity,
                opts.max_aliases,
            ))
            .extension(ValidateOnly)
            .finish();
        Harness {
            schema,
            documents: Documents::default(),
            persisted: Persisted::default(),
            opts,
        }
    })
}

/// Ends a request once it has parsed and validated, before any resolver runs.
struct ValidateOnly;

impl ExtensionFactory for ValidateOnly {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ValidateOnly)
    }
}

#[async_trait::async_trait]
impl Extension for ValidateOnly {
    async fn execute(
        &self,
        _ctx: &ExtensionContext<'_>,
        _operation_name: Option<&str>,
        _next: NextExecute<'_>,
    ) -> async_graphql::Response {
        async_graphql::Response::new(async_graphql::Value::Object(Default::default()))
    }
}

/// Stack of the thread a request runs on: tokio's worker threads have 2 MiB, and an input
/// that needs more brings the whole server down (stack overflow is an abort, not a panic).
const WORKER_STACK: usize = 2 << 20;

/// Target `graphql_request`: the input as a POST body and as a GET query string, on a
/// thread with a tokio worker's stack.
pub fn graphql_request(data: &[u8]) {
    std::thread::scope(|s| {
        let worker = std::thread::Builder::new()
            .stack_size(WORKER_STACK)
            .spawn_scoped(s, || {
                post(data);
                get(data);
            });
        match worker.map(|w| w.join()) {
            Ok(Ok(())) => {}
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(e) => panic!("cannot start a request thread: {e}"),
        }
    });
}

/// `POST /graphql` with `data` as the body (the Content-Type and Accept checks are header
/// matters and not fuzzed).
fn post(data: &[u8]) {
    let h = harness();
    if data.len() > h.opts.max_body_bytes {
        return; // 413 before any parsing
    }
    match parse_body(data) {
        Err(refusal) => check_refusal(refusal),
        Ok(Body1::Single(req)) => answer(run(*req, Transport::Post), Transport::Post),
        Ok(Body1::Batch(reqs)) => {
            if reqs.len() <= h.opts.max_batch {
                for req in reqs {
                    answer(run(req, Transport::Post), Transport::Post);
                }
            }
        }
    }
}

/// `GET /graphql?<data>`, when `data` can be a request target at all (the HTTP server
/// refuses anything else before the handler sees it).
fn get(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(uri) = Uri::try_from(format!("/graphql?{text}")) else {
        return;
    };
    let Ok(req) = axum::extract::Request::builder()
        .uri(uri)
        .body(Body::empty())
    else {
        return;
    };
    match parse_query_string(&req) {
        Err(refusal) => check_refusal(refusal),
        Ok(gql) => answer(run(gql, Transport::Get), Transport::Get),
    }
}

/// `graphql::execute` with the validate-only schema: the same preparation, then parsing and
/// validation, then the same labelling.
fn run(
    req: async_graphql::Request,
    transport: Transport,
) -> (Result<async_graphql::Response, Refusal>, OpRecord) {
    let h = harness();
    let Prepared { req, name, ty } = match prepare(&h.persisted, &h.documents, req, transport) {
        Ok(p) => p,
        Err((refusal, op)) => return (Err(refusal), op),
    };
    let mut resp = futures::executor::block_on(h.schema.execute(req));
    let outcome = finish(&mut resp);
    for e in &resp.errors {
        assert!(
            codes::code_of(e).is_some(),
            "an error without a code: {e:?}"
        );
    }
    (
        Ok(resp),
        OpRecord {
            name,
            ty,
            outcome,
            errors: Vec::new(),
        },
    )
}

/// The answer as the handler shapes it: never a 5xx (an answer that does not serialise
/// becomes a 500).
fn answer(result: (Result<async_graphql::Response, Refusal>, OpRecord), transport: Transport) {
    let (resp, op) = result;
    let r = single_response(resp, op, MediaType::Json, transport);
    assert!(!r.status().is_server_error(), "answered {}", r.status());
}

fn check_refusal(refusal: Refusal) {
    assert!(codes::code_of(&refusal.error).is_some());
    let r = refusal.into_response(MediaType::Json);
    assert!(r.status().is_client_error(), "refused with {}", r.status());
}

/// The seed corpus: `(file name, bytes)` — bodies and query strings that reach validation.
pub fn seed_corpus() -> Vec<(String, Vec<u8>)> {
    let body = |q: &str| serde_json::json!({ "query": q }).to_string();
    let mut out: Vec<(String, String)> = vec![
        (
            "property".into(),
            serde_json::json!({
                "query": "query P($id: ID!) { property(id: $id, consistency: FRESH) { id state owners { sharePct owner { name } } provenance { source stale } } }",
                "variables": {"id": "LRI-IND-TS-2026-03-00567"},
                "operationName": "P"
            })
            .to_string(),
        ),
        (
            "properties-fragments".into(),
            body("query { properties(first: 2, filter: {state: \"TS\"}) { totalCount edges { cursor node { ...F } } pageInfo { hasNextPage endCursor } } } fragment F on Property { id history(first: 1) { edges { node { __typename } } } documents { docHash } }"),
        ),
        (
            "search".into(),
            body("{ search(text: \"laxmi reddy\", first: 3) { total hits { score property { id } highlights { field text ranges matchKind } } facets { field values { value label count } } } }"),
        ),
        (
            "verify".into(),
            body("{ verifyProperty(id: \"LRI-IND-TS-2026-03-00567\") { outcome proof { json auditPath } } _meta { changeLogSeq channels { channel lagBlocks stale } } }"),
        ),
        ("introspection".into(), body("{ __schema { types { name fields { name type { name kind ofType { name } } } } } }")),
        ("parse-error".into(), body("{ property(id: ")),
        ("validation-error".into(), body("{ nope }")),
        ("subscription".into(), body("subscription { progress { changeLogSeq } }")),
        ("aliases-directives".into(), body("query ($s: Boolean = true) { a: _meta @include(if: $s) { changeLogSeq } b: locations(state: \"TS\") { name level properties } }")),
        (
            "batch".into(),
            format!("[{},{}]", body("{ _meta { changeLogSeq } }"), body("{ owners(name: \"ravi\") { totalCount nodes { id name } } }")),
        ),
        (
            "persisted".into(),
            serde_json::json!({
                "query": "{ _meta { changeLogSeq } }",
                "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "0000000000000000000000000000000000000000000000000000000000000000"}}
            })
            .to_string(),
        ),
        (
            "get-query".into(),
            "query=query%20Q(%24id%3A%20ID!)%20%7B%20property(id%3A%20%24id)%20%7B%20id%20%7D%20%7D&variables=%7B%22id%22%3A%22LRI-IND-TS-2026-03-00567%22%7D&operationName=Q".into(),
        ),
        ("get-mutation".into(), "query=mutation%20%7B%20x%20%7D".into()),
        ("get-extensions".into(), "query=%7B__typename%7D&extensions=%7B%22a%22%3A1%7D".into()),
    ];
    out.retain(|(_, b)| !b.is_empty());
    out.into_iter().map(|(n, b)| (n, b.into_bytes())).collect()
}

/// The checked-in corpus: `fuzz/seeds/graphql_request/` at the workspace root.
pub fn corpus_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/graphql_request")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The target's body over the checked-in corpus (seeds and crash inputs found), so that
    /// stable CI re-checks them without nightly.
    #[test]
    fn corpus_replays_cleanly() {
        let mut files: Vec<_> = std::fs::read_dir(corpus_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty());
        for f in files {
            eprintln!("{}", f.display());
            graphql_request(&std::fs::read(&f).unwrap());
        }
    }

    #[test]
    fn fresh_seeds_pass_and_reach_validation() {
        for (_, bytes) in seed_corpus() {
            graphql_request(&bytes);
        }
        // A valid query passes validation (no errors), an invalid one is a request error.
        let (ok, _) = run(
            async_graphql::Request::new("{ _meta { changeLogSeq } }"),
            Transport::Post,
        );
        assert!(ok.unwrap().errors.is_empty());
        let (bad, _) = run(async_graphql::Request::new("{ nope }"), Transport::Post);
        assert!(codes::is_request_error(&bad.unwrap()));
    }

    /// Writes the seed corpus into `fuzz/seeds/graphql_request/`:
    /// `cargo test -p landql-api fuzzing -- --ignored write_seed_corpus`.
    #[test]
    #[ignore]
    fn write_seed_corpus() {
        let dir = corpus_dir();
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in seed_corpus() {
            std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
        }
    }
}
