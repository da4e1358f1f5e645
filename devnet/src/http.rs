//! The devnet's HTTP API, exactly as ledger.md lists it. Handlers are thin: they parse,
//! call [`Node`], and shape the answer; every refusal is `{ "error": { "code", "message" } }`.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use tracing::Instrument;

use crate::node::{Node, SubmitError};
use ledger::canonical::Hash32;
use ledger::id::PropertyId;
use ledger::model::Proposal;

/// Largest request body: a batch of proposals.
const MAX_BODY: usize = 32 * 1024 * 1024;
/// Most proposals in one request.
pub const MAX_BATCH: usize = 10_000;
/// A block stream with nothing new sends a blank line this often, so that proxies and
/// clients can tell a quiet chain from a dead connection.
const KEEPALIVE: Duration = Duration::from_secs(10);

/// A refusal with its HTTP status, code and a message that says what is wrong.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::UnknownChannel(c) => {
                Self::not_found("CHANNEL_NOT_FOUND", format!("no channel named {c:?}"))
            }
            SubmitError::BadProposal { .. } => Self::bad("BAD_PROPOSAL", e.to_string()),
            SubmitError::Stopped(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                e.to_string(),
            ),
        }
    }
}

/// The router of the devnet's HTTP API.
pub fn router(node: Node) -> Router {
    Router::new()
        .route("/v1/info", get(info))
        .route("/v1/channels/{ch}/transactions", post(submit))
        .route("/v1/channels/{ch}/blocks", get(stream_blocks))
        .route("/v1/channels/{ch}/blocks/{n}", get(block))
        .route("/v1/records/{id}", get(record))
        .route("/v1/records/{id}/history", get(history))
        .route("/v1/transactions/{tx_id}/proof", get(proof))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            ApiError::not_found("NOT_FOUND", "no such endpoint; see ledger.md for the API")
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(traced))
        .with_state(node)
}

/// `GET /metrics`: the node's series, OpenMetrics when asked for, else the classic text
/// (not part of ledger.md: an operator's endpoint, as every landql process has).
async fn metrics(State(node): State<Node>, headers: axum::http::HeaderMap) -> impl IntoResponse {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (content_type, body) = node.metrics(accept);
    ([(header::CONTENT_TYPE, content_type)], body)
}

/// One `ledger.request` span per request, a child of the caller's span when the request
/// carries a W3C `traceparent` (landql's ledger client sends one while traces are on), so a
/// trace shows the API's call and the node's work together. A 5xx marks it as an error.
async fn traced(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str());
    let span = tracing::info_span!(
        "ledger.request",
        otel.kind = "server",
        otel.name = %format_args!("{} {route}", req.method()),
        http.request.method = %req.method(),
        http.route = route,
    );
    telemetry::accept_parent(&span, req.headers());
    let resp = next.run(req).instrument(span.clone()).await;
    telemetry::set_http_status(&span, resp.status().as_u16());
    resp
}

async fn info(State(node): State<Node>) -> impl IntoResponse {
    Json(node.info())
}

pub(crate) fn parse_proposals(body: &[u8]) -> Result<Vec<Proposal>, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad("BAD_JSON", format!("the body is not JSON: {e}")))?;
    let items = match value {
        Value::Array(items) => items,
        one @ Value::Object(_) => vec![one],
        _ => {
            return Err(ApiError::bad(
                "BAD_PROPOSAL",
                "the body must be one proposal object or an array of them",
            ))
        }
    };
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(ApiError::bad(
            "BAD_PROPOSAL",
            format!("send 1 to {MAX_BATCH} proposals, not {}", items.len()),
        ));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let p: Proposal = serde_json::from_value(v)
                .map_err(|e| ApiError::bad("BAD_PROPOSAL", format!("proposal {i}: {e}")))?;
            if !p.args.is_object() {
                return Err(ApiError::bad(
                    "BAD_PROPOSAL",
                    format!("proposal {i}: args must be an object"),
                ));
            }
            Ok(p)
        })
        .collect()
}

#[tracing::instrument(name = "ledger.node.submit", skip_all)]
async fn submit(
    State(node): State<Node>,
    Path(ch): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    if node.watch_height(&ch).is_none() {
        return Err(SubmitError::UnknownChannel(ch).into());
    }
    let proposals = parse_proposals(&body)?;
    Ok(Json(node.submit(&ch, proposals).await?))
}

#[derive(Deserialize)]
struct FromQuery {
    from: Option<String>,
}

fn parse_number(what: &str, s: &str) -> Result<u64, ApiError> {
    s.parse().map_err(|_| {
        ApiError::bad(
            "BAD_ARGUMENT",
            format!("{what} must be a block number, found {s:?}"),
        )
    })
}

async fn stream_blocks(
    State(node): State<Node>,
    Path(ch): Path<String>,
    Query(q): Query<FromQuery>,
) -> Result<Response, ApiError> {
    let from = match q.from.as_deref() {
        Some(s) => parse_number("from", s)?,
        None => 0,
    };
    let Some(height) = node.watch_height(&ch) else {
        return Err(SubmitError::UnknownChannel(ch).into());
    };
    struct Follow {
        node: Node,
        ch: String,
        next: u64,
        height: tokio::sync::watch::Receiver<u64>,
    }
    let state = Follow {
        node,
        ch,
        next: from,
        height,
    };
    let stream = futures::stream::unfold(state, |mut s| async move {
        loop {
            let tip = *s.height.borrow_and_update();
            if s.next < tip {
                return match s.node.block_bytes(&s.ch, s.next) {
                    Ok(Some(mut bytes)) => {
                        bytes.push(b'\n');
                        s.next += 1;
                        Some((Ok::<_, std::io::Error>(Bytes::from(bytes)), s))
                    }
                    Ok(None) => None,
                    Err(e) => Some((Err(std::io::Error::other(e.to_string())), s)),
                };
            }
            tokio::select! {
                changed = s.height.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                () = tokio::time::sleep(KEEPALIVE) => {
                    return Some((Ok(Bytes::from_static(b"\n")), s));
                }
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}

async fn block(
    State(node): State<Node>,
    Path((ch, n)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let n = parse_number("the block number", &n)?;
    match node.block_bytes(&ch, n)? {
        Some(bytes) => Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response()),
        None => Err(ApiError::not_found(
            "BLOCK_NOT_FOUND",
            format!("channel {ch} has no block {n} yet"),
        )),
    }
}

fn parse_id(s: &str) -> Result<String, ApiError> {
    s.parse::<PropertyId>()
        .map(|id| id.to_string())
        .map_err(|e| ApiError::bad("BAD_PROPERTY_ID", e.to_string()))
}

/// A record answer whose record is the stored canonical JSON, passed through unparsed.
#[derive(serde::Serialize)]
struct RawRecord<'a> {
    record: &'a RawValue,
    record_hash: Hash32,
    version: ledger::model::Version,
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "internal error");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL",
        "internal error",
    )
}

#[tracing::instrument(name = "ledger.node.record", skip_all)]
async fn record(State(node): State<Node>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let key = parse_id(&id)?;
    match node.record_raw(&key) {
        Some((value, record_hash, version)) => {
            let record: &RawValue = serde_json::from_str(&value).map_err(internal)?;
            Ok(Json(RawRecord {
                record,
                record_hash,
                version,
            })
            .into_response())
        }
        None => Err(ApiError::not_found(
            "RECORD_NOT_FOUND",
            format!("no property {key} on the ledger"),
        )),
    }
}

#[tracing::instrument(name = "ledger.node.history", skip_all)]
async fn history(State(node): State<Node>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let key = parse_id(&id)?;
    let versions = node.history(&key);
    if versions.is_empty() {
        return Err(ApiError::not_found(
            "RECORD_NOT_FOUND",
            format!("no property {key} on the ledger"),
        ));
    }
    Ok(Json(versions).into_response())
}

#[tracing::instrument(name = "ledger.node.proof", skip_all)]
async fn proof(State(node): State<Node>, Path(tx_id): Path<String>) -> Result<Response, ApiError> {
    let h: Hash32 = tx_id
        .parse()
        .map_err(|e| ApiError::bad("BAD_TX_ID", format!("tx_id: {e}")))?;
    match node.proof(&h)? {
        Some(p) => Ok(Json(p).into_response()),
        None => Err(ApiError::not_found(
            "TX_NOT_FOUND",
            format!("no transaction {h} on the ledger"),
        )),
    }
}
