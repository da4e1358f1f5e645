//! Traces end to end: `landql serve` and `landql ledger` as real processes exporting over
//! OTLP/HTTP to a receiver in this test, which decodes the requests with the official
//! protobuf definitions (`opentelemetry-proto`).
//!
//! 1. One `verifyProperty` request carrying a caller's `traceparent` makes one trace across
//!    both processes: the caller's span → HTTP request → GraphQL operation → field → SQL
//!    statement, and field → ledger client call (the proof fetch) → the ledger node's
//!    request span → its handler's span.
//! 2. Sampling over 10 000 requests: at ratio 0.1 about a tenth of the traces arrive (a
//!    binomial bound of 6σ), every request that erred arrives (503s from `/readyz`), a
//!    caller's sampled `traceparent` is kept and an unsampled one dropped; with the slow
//!    threshold at 0 ms, every trace is slow and arrives, unsampled callers' included — as
//!    the request's span alone, since below the root only sampled traces are recorded.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use migrations::sqlx;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use prost::Message;
use serde_json::{json, Value};

/// One exported span, as the receiver decoded it.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    /// Empty for a root.
    parent: String,
    /// OTLP's status code: 0 unset, 1 ok, 2 error.
    status: i32,
    attributes: HashMap<String, String>,
}

/// An OTLP/HTTP receiver on loopback.
struct Receiver {
    url: String,
    spans: Arc<Mutex<Vec<Span>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn string_of(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        _ => String::new(),
    }
}

async fn receiver() -> Receiver {
    let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
    let store = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                let req = match ExportTraceServiceRequest::decode(body) {
                    Ok(r) => r,
                    Err(e) => {
                        return (
                            axum::http::StatusCode::BAD_REQUEST,
                            [("content-type", "text/plain")],
                            e.to_string().into_bytes(),
                        )
                    }
                };
                let mut out = Vec::new();
                for rs in req.resource_spans {
                    let service = rs
                        .resource
                        .iter()
                        .flat_map(|r| r.attributes.iter())
                        .find(|kv| kv.key == "service.name")
                        .map(|kv| string_of(&kv.value))
                        .unwrap_or_default();
                    for ss in rs.scope_spans {
                        for s in ss.spans {
                            out.push(Span {
                                service: service.clone(),
                                name: s.name,
                                trace_id: hex::encode(&s.trace_id),
                                span_id: hex::encode(&s.span_id),
                                parent: hex::encode(&s.parent_span_id),
                                status: s.status.map_or(0, |st| st.code),
                                attributes: s
                                    .attributes
                                    .iter()
                                    .map(|kv| (kv.key.clone(), string_of(&kv.value)))
                                    .collect(),
                            });
                        }
                    }
                }
                store.lock().unwrap().extend(out);
                (
                    axum::http::StatusCode::OK,
                    [("content-type", "application/x-protobuf")],
                    Vec::new(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Receiver { url, spans, task }
}

impl Receiver {
    fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }

    /// Waits until `done` holds for the spans received, or fails after `within`.
    async fn wait_for(&self, within: Duration, what: &str, done: impl Fn(&[Span]) -> bool) {
        let deadline = Instant::now() + within;
        loop {
            if done(&self.spans()) {
                return;
            }
            if Instant::now() > deadline {
                let names: Vec<String> = self
                    .spans()
                    .iter()
                    .map(|s| format!("{}:{}", s.service, s.name))
                    .collect();
                panic!("{what}: not within {within:?}; received {names:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The spans received once the exporters have flushed what was queued `wait` ago (they
    /// flush every 0.5 s). Background work (the ledger's polls) keeps exporting, so there is
    /// no quiet moment to wait for.
    async fn settle(&self, wait: Duration) -> Vec<Span> {
        tokio::time::sleep(wait).await;
        self.spans()
    }
}

/// A child process, killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `landql serve` on `database_url` exporting to `otlp`, with `extra` flags; returns it and
/// its base URL once `/graphql` answers.
async fn serve(
    ledger: &str,
    database_url: &str,
    otlp: &str,
    extra: &[&str],
    log: Option<&std::path::Path>,
) -> (Proc, String) {
    let port = common::free_port();
    let child = common::landql()
        .args(["serve", "--ledger", ledger, "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--rate-limit", "anonymous=off", "--otlp-endpoint", otlp])
        .args(extra)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", if log.is_some() { "info" } else { "warn" })
        .stdout(Stdio::null())
        .stderr(match log {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("log file")),
            None => Stdio::inherit(),
        })
        .spawn()
        .expect("start landql serve");
    let proc = Proc(child);
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = http
            .post(format!("{url}/graphql"))
            .json(&json!({"query": "query Ping { __typename }"}))
            .send()
            .await;
        if r.is_ok_and(|r| r.status() == 200) {
            return (proc, url);
        }
        assert!(Instant::now() < deadline, "landql serve did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// The one span named `name` of `service` in `spans`.
fn one_span<'a>(spans: &'a [Span], service: &str, name: &str) -> &'a Span {
    let found: Vec<&Span> = spans
        .iter()
        .filter(|s| s.service == service && s.name == name)
        .collect();
    assert_eq!(found.len(), 1, "{service}:{name} in {spans:#?}");
    found[0]
}

/// The trace ids of the spans named `name`.
fn traces_named<'a>(spans: &'a [Span], name: &str) -> HashSet<&'a str> {
    spans
        .iter()
        .filter(|s| s.name == name)
        .map(|s| s.trace_id.as_str())
        .collect()
}

/// The chain of ancestors of `span` within `by_id`, nearest first.
fn ancestors<'a>(span: &'a Span, by_id: &HashMap<&str, &'a Span>) -> Vec<&'a Span> {
    let mut out = Vec::new();
    let mut at = span;
    while let Some(p) = by_id.get(at.parent.as_str()) {
        out.push(*p);
        at = p;
        if out.len() > 64 {
            break;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_verify_property_is_one_trace_across_the_api_and_the_ledger() {
    let otlp = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    let seeded = common::landql()
        .args(["seed", "--records", "200", "--data"])
        .arg(&data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .status()
        .expect("landql seed");
    assert!(seeded.success());
    // Every trace slow at the ledger: its part of a trace the API did not sample is kept.
    let ledger = common::LedgerProcess::start(
        &data,
        &["--otlp-endpoint", &otlp.url, "--trace-slow-ms", "0"],
    );
    let (pg, pool) = testkit::database().await;
    let mut sync = Proc(
        common::landql()
            .args(["sync", "--ledger", &ledger.url])
            .env("DATABASE_URL", pg.database_url())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start landql sync"),
    );
    // The API at ratio 0: only the caller's sampled flag brings the trace in.
    let index = dir.path().join("index");
    let log = dir.path().join("serve.log");
    let index = index.to_str().unwrap();
    let (_api, api) = serve(
        &ledger.url,
        &pg.database_url(),
        &otlp.url,
        &[
            "--trace-sample",
            "0",
            "--index-dir",
            index,
            "--log-format",
            "json",
        ],
        Some(&log),
    )
    .await;
    let http = reqwest::Client::new();
    common::caught_up(&http, &api, 200, Duration::from_secs(120)).await;
    let _ = sync.0.kill();
    let id: String = sqlx::query_scalar("SELECT id FROM properties ORDER BY id LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap();

    let (trace, caller) = (random_hex(16), random_hex(8));
    let spans = verify_traced(&http, &api, &id, &trace, &caller, "01", &otlp).await;
    let by_id: HashMap<&str, &Span> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let one = |service, name| one_span(&spans, service, name);
    let request = one("landql-serve", "POST /graphql");
    assert_eq!(
        request.parent, caller,
        "the request continues the caller's span"
    );
    assert_eq!(
        request
            .attributes
            .get("http.response.status_code")
            .map(String::as_str),
        Some("200")
    );
    let operation = one("landql-serve", "graphql Verify");
    assert_eq!(operation.parent, request.span_id);
    let field = one("landql-serve", "verifyProperty");
    assert_eq!(field.parent, operation.span_id);
    let sql: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name.starts_with("sql."))
        .collect();
    assert!(!sql.is_empty(), "no SQL statement span in {spans:#?}");
    for s in &sql {
        assert!(
            ancestors(s, &by_id)
                .iter()
                .any(|a| a.span_id == field.span_id),
            "{} is not under the field",
            s.name
        );
    }
    // The proof fetch: the client's span, then the node's request span as its child.
    let call = one("landql-serve", "ledger.proof");
    assert!(ancestors(call, &by_id)
        .iter()
        .any(|a| a.span_id == field.span_id));
    let node = one("landql-ledger", "GET /v1/transactions/{tx_id}/proof");
    assert_eq!(
        node.parent, call.span_id,
        "the ledger node's span is the client call's child"
    );
    let handler = one("landql-ledger", "ledger.node.proof");
    assert_eq!(handler.parent, node.span_id);
    // The record fetch reaches the node within the field's trace too.
    let record = one("landql-ledger", "GET /v1/records/{id}");
    assert!(ancestors(record, &by_id)
        .iter()
        .any(|a| a.span_id == field.span_id));
    assert!(spans.iter().all(|s| s.status != 2), "{spans:#?}");

    // The JSON log line of the request names the trace and the request's span; no line
    // carries colour codes (stderr is a file).
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains('\u{1b}'), "ANSI codes in a log file");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let line = lines
        .iter()
        .find(|l| l["message"] == "request" && l["trace_id"] == trace.as_str())
        .unwrap_or_else(|| panic!("no request line of trace {trace} in {text}"));
    assert_eq!(line["span_id"], request.span_id.as_str(), "{line}");
    assert_eq!(line["span"]["name"], "request", "{line}");
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["status"], 200);

    // A caller that did not sample, at an API that keeps every trace as slow: of such a
    // trace only the spans that start or cross a process's part are recorded — the API's
    // request span, its ledger calls, the ledger node's request spans (the node follows the
    // caller's decision, so not its handlers' spans) — all in the caller's trace.
    let index2 = dir.path().join("index2");
    let (_api2, api2) = serve(
        &ledger.url,
        &pg.database_url(),
        &otlp.url,
        &[
            "--trace-sample",
            "0",
            "--trace-slow-ms",
            "0",
            "--index-dir",
            index2.to_str().unwrap(),
        ],
        None,
    )
    .await;
    let (trace2, caller2) = (random_hex(16), random_hex(8));
    let spans = verify_traced(&http, &api2, &id, &trace2, &caller2, "00", &otlp).await;
    let one = |service, name| one_span(&spans, service, name);
    let request = one("landql-serve", "POST /graphql");
    assert_eq!(request.parent, caller2);
    assert_eq!(
        request
            .attributes
            .get("graphql.operation.name")
            .map(String::as_str),
        Some("Verify")
    );
    let call = one("landql-serve", "ledger.proof");
    assert_eq!(call.parent, request.span_id, "the call hangs off the root");
    let node = one("landql-ledger", "GET /v1/transactions/{tx_id}/proof");
    assert_eq!(node.parent, call.span_id);
    let unexpected: Vec<&Span> = spans
        .iter()
        .filter(|s| match s.service.as_str() {
            "landql-serve" => s.name != "POST /graphql" && !s.name.starts_with("ledger."),
            _ => !s.name.starts_with("GET ") && !s.name.starts_with("POST "),
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "spans below the roots of an unsampled trace: {unexpected:#?}"
    );
}

/// Verifies property `id` at `api` as a caller whose span `caller` of trace `trace` has the
/// W3C `flags`; returns the spans of that trace once the API's and the ledger's have arrived.
async fn verify_traced(
    http: &reqwest::Client,
    api: &str,
    id: &str,
    trace: &str,
    caller: &str,
    flags: &str,
    otlp: &Receiver,
) -> Vec<Span> {
    let r: Value = http
        .post(format!("{api}/graphql"))
        .header("traceparent", format!("00-{trace}-{caller}-{flags}"))
        .json(&json!({
            "query": "query Verify($id: ID!) { verifyProperty(id: $id) { outcome } }",
            "variables": {"id": id},
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["data"]["verifyProperty"]["outcome"], "MATCH", "{r}");
    let of_trace = |spans: &[Span]| -> Vec<Span> {
        spans
            .iter()
            .filter(|s| s.trace_id == trace)
            .cloned()
            .collect()
    };
    otlp.wait_for(Duration::from_secs(30), "the trace", |spans| {
        let t = of_trace(spans);
        t.iter().any(|s| s.name == "POST /graphql")
            && t.iter().any(|s| s.service == "landql-ledger")
    })
    .await;
    of_trace(&otlp.settle(Duration::from_secs(2)).await)
}

/// Sends `n` requests made by `make`, `concurrency` at a time; returns the statuses.
async fn send_all<F>(n: usize, concurrency: usize, make: F) -> Vec<u16>
where
    F: Fn(usize) -> reqwest::RequestBuilder,
{
    futures::stream::iter((0..n).map(make))
        .map(|req| async move { req.send().await.map(|r| r.status().as_u16()).unwrap_or(0) })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_keeps_the_ratio_the_errors_the_slow_and_the_callers_decision() {
    let otlp = receiver().await;
    let (pg, _pool) = testkit::database().await;
    // No ledger and nothing synced: `/readyz` answers 503 ("no channel synced yet").
    let dead_ledger = format!("http://127.0.0.1:{}", common::free_port());
    let (api_proc, api) = serve(
        &dead_ledger,
        &pg.database_url(),
        &otlp.url,
        &["--trace-sample", "0.1"],
        None,
    )
    .await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let started = Instant::now();
    const N: usize = 10_000;
    let statuses = send_all(N, 32, |_| {
        http.post(format!("{api}/graphql"))
            .json(&json!({"query": "query Bulk { _meta { changeLogSeq } }"}))
    })
    .await;
    assert!(statuses.iter().all(|s| *s == 200), "{:?}", &statuses[..10]);
    const ERRS: usize = 200;
    let statuses = send_all(ERRS, 16, |_| http.get(format!("{api}/readyz"))).await;
    assert!(statuses.iter().all(|s| *s == 503), "{statuses:?}");
    let callers = |flags: &'static str| -> Vec<(String, String, &'static str)> {
        (0..200)
            .map(|_| (random_hex(16), random_hex(8), flags))
            .collect()
    };
    let sampled = callers("01");
    let unsampled = callers("00");
    for set in [&sampled, &unsampled] {
        let statuses = send_all(set.len(), 16, |i| {
            let (trace, parent, flags) = &set[i];
            http.post(format!("{api}/graphql"))
                .header("traceparent", format!("00-{trace}-{parent}-{flags}"))
                .json(&json!({"query": "query Caller { __typename }"}))
        })
        .await;
        assert!(statuses.iter().all(|s| *s == 200));
    }
    eprintln!("{} requests in {:?}", N + ERRS + 400, started.elapsed());
    let spans = otlp.settle(Duration::from_secs(3)).await;
    drop(api_proc);

    // Ratio: a binomial(10 000, 0.1) count, mean 1000, σ = 30; 6σ either side.
    let bulk = traces_named(&spans, "graphql Bulk").len();
    assert!(
        (820..=1180).contains(&bulk),
        "{bulk} of {N} traces kept at 0.1"
    );
    // Each kept trace arrived whole: request, operation and field.
    let requests: HashMap<&str, &Span> = spans
        .iter()
        .filter(|s| s.name == "POST /graphql")
        .map(|s| (s.trace_id.as_str(), s))
        .collect();
    for t in traces_named(&spans, "graphql Bulk") {
        let request = requests.get(t).expect("the kept trace's request span");
        assert!(request.parent.is_empty());
        assert!(spans.iter().any(|s| s.trace_id == t && s.name == "_meta"));
    }
    // Every error, whatever the ratio.
    let errors: Vec<&Span> = spans.iter().filter(|s| s.name == "GET /readyz").collect();
    assert_eq!(errors.len(), ERRS);
    assert!(errors.iter().all(|s| s.status == 2
        && s.attributes
            .get("http.response.status_code")
            .map(String::as_str)
            == Some("503")));
    // Parent-based: the caller's sampled flag decides.
    let kept: HashSet<&str> = traces_named(&spans, "POST /graphql");
    for (trace, parent, _) in &sampled {
        assert!(
            kept.contains(trace.as_str()),
            "sampled caller {trace} dropped"
        );
        assert_eq!(&requests[trace.as_str()].parent, parent);
    }
    for (trace, _, _) in &unsampled {
        assert!(
            !kept.contains(trace.as_str()),
            "unsampled caller {trace} kept"
        );
    }

    // Slow threshold 0: every trace is slow, so every trace arrives, at ratio 0 and for a
    // caller that did not sample.
    let slow = receiver().await;
    let (_slow_proc, slow_api) = serve(
        &dead_ledger,
        &pg.database_url(),
        &slow.url,
        &["--trace-sample", "0", "--trace-slow-ms", "0"],
        None,
    )
    .await;
    let slow_callers = callers("00");
    let statuses = send_all(300, 16, |i| {
        let req = http
            .post(format!("{slow_api}/graphql"))
            .json(&json!({"query": "query Slow { __typename }"}));
        match slow_callers.get(i) {
            Some((trace, parent, flags)) => {
                req.header("traceparent", format!("00-{trace}-{parent}-{flags}"))
            }
            None => req,
        }
    })
    .await;
    assert!(statuses.iter().all(|s| *s == 200));
    // Of a trace the head did not pick only the request's span is recorded; it names the
    // operation.
    let is_slow_request = |s: &Span| {
        s.name == "POST /graphql"
            && s.attributes
                .get("graphql.operation.name")
                .map(String::as_str)
                == Some("Slow")
    };
    slow.wait_for(Duration::from_secs(30), "every slow trace", |spans| {
        spans.iter().filter(|s| is_slow_request(s)).count() >= 300
    })
    .await;
    let spans = slow.settle(Duration::from_secs(2)).await;
    let slow_traces: HashSet<&str> = spans
        .iter()
        .filter(|s| is_slow_request(s))
        .map(|s| s.trace_id.as_str())
        .collect();
    assert_eq!(slow_traces.len(), 300);
    for (trace, parent, _) in &slow_callers {
        assert!(slow_traces.contains(trace.as_str()));
        let request = spans.iter().find(|s| &s.trace_id == trace).expect("span");
        assert_eq!(&request.parent, parent, "the caller's span is the parent");
    }
    assert!(
        spans
            .iter()
            .filter(|s| slow_traces.contains(s.trace_id.as_str()))
            .all(is_slow_request),
        "an unpicked trace is its root span alone: {:#?}",
        spans
            .iter()
            .filter(|s| !is_slow_request(s))
            .take(3)
            .collect::<Vec<_>>()
    );
}
