//! GraphQL over HTTP (POST and GET) and over WebSocket, all at `/graphql`.
//!
//! The transport rules are GraphQL-over-HTTP's:
//! - POST takes `application/json`: one request object, or a batch (a JSON array, at most
//!   `Options::max_batch`); other media types get 415, bodies over the limit 413.
//! - GET takes `query`, `variables` (JSON), `operationName` and `extensions` (JSON) in the
//!   query string, and only runs queries: a mutation or subscription gets 405, so that GET
//!   stays safe to cache and to retry.
//! - Answers are `application/graphql-response+json` when the client's Accept allows it,
//!   else `application/json` (406 when it accepts neither).
//! - A request error (the document does not parse or validate, a variable does not
//!   coerce, or the operation is over a limit) has no `data`; its status is 400 with
//!   `application/graphql-response+json` and 200 with `application/json`, as the spec says
//!   for each (a legacy client reads a non-2xx answer as a transport failure and never
//!   shows the errors). Once execution has started the answer is 200, field errors and all.
//!   Refusals of the HTTP request itself (body not JSON, no query, too large, wrong method
//!   or content type, rate limited) keep their 4xx status with either type.
//! - A batch answers 200 with one response per operation, each shaped as above.
//! - A GET with `Upgrade: websocket` becomes a subscription socket speaking
//!   `graphql-transport-ws` (or the older `graphql-ws`), chosen by Sec-WebSocket-Protocol.

use std::collections::BTreeMap;

use tokio::time::Instant;

use async_graphql::parser::types::OperationType;
use async_graphql::{Response as GqlResponse, ServerError, Value};
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use futures::StreamExt;
use schema::Principal;
use serde::{Deserialize, Serialize};

use crate::codes::{self, Code};
use crate::documents::Documents;
use crate::negotiate::{negotiate, MediaType};
use crate::persisted::{Lookup, Persisted};
use crate::ratelimit::Charge;
use crate::trace::{OpInfo, OpRecord, OpType, Outcome};
use crate::AppState;

#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod socket;

/// How a request arrived: decides what may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Get,
    Post,
}

/// The request header naming the blocks a request must see: `CHANNEL:BLOCK[,…]`, as the
/// ledger's receipts give them (read your own writes; see `schema`'s `read_after`).
pub(crate) const READ_AFTER: &str = "x-landql-read-after";

/// The request's read-after header, parsed; a refusal that says what is wrong with it.
fn read_after(headers: &HeaderMap) -> Result<Option<schema::ReadAfter>, Refusal> {
    let Some(v) = headers.get(READ_AFTER) else {
        return Ok(None);
    };
    let text = v.to_str().map_err(|_| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            Code::Schema(schema::Code::BadUserInput),
            "X-Landql-Read-After is not text",
        )
    })?;
    schema::ReadAfter::parse(text).map(Some).map_err(|e| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            Code::Schema(schema::Code::BadUserInput),
            format!("X-Landql-Read-After: {e}"),
        )
    })
}

/// One operation's data from the caller: who they are and, for anonymous callers, what
/// they may still list today (schema's `list_quota`).
fn caller(
    req: async_graphql::Request,
    principal: Principal,
    charge: Option<&Charge>,
) -> async_graphql::Request {
    let req = req.data(principal);
    match charge.and_then(Charge::list_allowance) {
        Some(allowance) => req.data(allowance),
        None => req,
    }
}

/// `POST /graphql`.
pub(crate) async fn post(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    charge: Option<Extension<Charge>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let principal = principal.map_or(Principal::ANONYMOUS, |p| p.0);
    let Some(media) = accept(&headers) else {
        return not_acceptable();
    };
    if let Err(refusal) = check_content_type(&headers) {
        return refusal.into_response(media);
    }
    let deadline = Instant::now() + state.opts.request_timeout;
    let bytes = match tokio::time::timeout_at(
        deadline,
        read_body(body, &headers, state.opts.max_body_bytes),
    )
    .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(refusal)) => return refusal.into_response(media),
        Err(_) => {
            return Refusal::new(
                StatusCode::REQUEST_TIMEOUT,
                Code::Schema(schema::Code::RequestTimeout),
                format!(
                    "the request body did not arrive within the limit of {} ms",
                    state.opts.request_timeout.as_millis()
                ),
            )
            .with_header(header::CONNECTION, HeaderValue::from_static("close"))
            .into_response(media)
        }
    };
    let batch = match parse_body(&bytes) {
        Ok(b) => b,
        Err(refusal) => return refusal.into_response(media),
    };
    let after = match read_after(&headers) {
        Ok(a) => a,
        Err(refusal) => return refusal.into_response(media),
    };
    let after = after.as_ref();
    match batch {
        Body1::Single(req) => {
            let (resp, op) = execute(
                &state,
                caller(*req, principal, charge.as_deref()),
                Transport::Post,
                deadline,
                after,
            )
            .await;
            single_response(resp, op, media, Transport::Post)
        }
        Body1::Batch(reqs) => {
            if reqs.len() > state.opts.max_batch {
                return Refusal::new(
                    StatusCode::BAD_REQUEST,
                    Code::BatchTooLarge,
                    format!(
                        "the batch holds {} operations; the limit is {}",
                        reqs.len(),
                        state.opts.max_batch
                    ),
                )
                .into_response(media);
            }
            // A batch costs one request per operation; the rate limit layer charged one.
            if let Some(Extension(charge)) = &charge {
                if let Some(refused) = charge.more(reqs.len() - 1, &headers) {
                    return refused;
                }
            }
            let results = futures::future::join_all(reqs.into_iter().map(|r| {
                execute(
                    &state,
                    caller(r, principal.clone(), charge.as_deref()),
                    Transport::Post,
                    deadline,
                    after,
                )
            }))
            .await;
            let bodies: Vec<Item<'_>> = results
                .iter()
                .map(|(resp, _)| match resp {
                    Ok(resp) => Item::Answered(shape(resp).1),
                    Err(refusal) => Item::Refused(ErrorsOnly {
                        errors: std::slice::from_ref(&*refusal.error),
                    }),
                })
                .collect();
            let mut r = json_response(StatusCode::OK, media, &bodies);
            let ops = results.into_iter().map(|(_, op)| op).collect();
            r.extensions_mut().insert(OpInfo(ops));
            r
        }
    }
}

/// `GET /graphql`: a query in the query string, or a WebSocket upgrade.
pub(crate) async fn get_or_upgrade(State(state): State<AppState>, req: Request) -> Response {
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if upgrade {
        return socket::websocket(state, req).await;
    }
    let headers = req.headers();
    if req.uri().query().is_none_or(str::is_empty) && prefers_html(headers) {
        // A person who typed the endpoint into a browser: show them GraphiQL.
        return Redirect::to("/graphiql").into_response();
    }
    let Some(media) = accept(headers) else {
        return not_acceptable();
    };
    let gql = match parse_query_string(&req) {
        Ok(r) => r,
        Err(refusal) => return refusal.into_response(media),
    };
    let deadline = Instant::now() + state.opts.request_timeout;
    let principal = req
        .extensions()
        .get::<Principal>()
        .cloned()
        .unwrap_or(Principal::ANONYMOUS);
    let after = match read_after(req.headers()) {
        Ok(a) => a,
        Err(refusal) => return refusal.into_response(media),
    };
    let (resp, op) = execute(
        &state,
        caller(gql, principal, req.extensions().get::<Charge>()),
        Transport::Get,
        deadline,
        after.as_ref(),
    )
    .await;
    single_response(resp, op, media, Transport::Get)
}

/// Any other method on `/graphql`.
pub(crate) async fn method_not_allowed(method: Method, headers: HeaderMap) -> Response {
    let media = accept(&headers).unwrap_or(MediaType::Json);
    let mut r = Refusal::new(
        StatusCode::METHOD_NOT_ALLOWED,
        Code::MethodNotAllowed,
        format!("/graphql takes GET (queries) and POST, not {method}"),
    )
    .into_response(media);
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    r
}

/// An HTTP-level refusal: a status, a code and a message, as a GraphQL error body.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    /// Boxed: refusals travel in `Result`s whose Ok side is small.
    error: Box<ServerError>,
    /// Headers the answer must carry (e.g. `Allow`, `Cache-Control`).
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl Refusal {
    fn new(status: StatusCode, code: Code, message: impl Into<String>) -> Self {
        Refusal {
            status,
            error: Box::new(codes::error(code, message)),
            headers: Vec::new(),
        }
    }

    fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    fn into_response(self, media: MediaType) -> Response {
        let mut r = json_response(
            self.status,
            media,
            &ErrorsOnly {
                errors: std::slice::from_ref(&*self.error),
            },
        );
        for (name, value) in self.headers {
            r.headers_mut().insert(name, value);
        }
        let errors = codes::code_of(&self.error)
            .map(str::to_string)
            .into_iter()
            .collect();
        r.extensions_mut().insert(OpInfo(vec![OpRecord {
            name: None,
            ty: OpType::Unknown,
            outcome: Outcome::Refused,
            errors,
        }]));
        r
    }
}

/// One answer of a batch.
#[derive(Serialize)]
#[serde(untagged)]
enum Item<'a> {
    Answered(Shaped<'a>),
    Refused(ErrorsOnly<'a>),
}

#[derive(Serialize)]
struct ErrorsOnly<'a> {
    errors: &'a [ServerError],
}

/// A GraphQL response as sent: `data` is left out when execution never started.
#[derive(Serialize)]
struct Shaped<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
    #[serde(skip_serializing_if = "<[ServerError]>::is_empty")]
    errors: &'a [ServerError],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    extensions: &'a BTreeMap<String, Value>,
}

/// Whether the response is a request error, and its body.
fn shape(resp: &GqlResponse) -> (bool, Shaped<'_>) {
    let request_error = codes::is_request_error(resp);
    (
        request_error,
        Shaped {
            data: (!request_error).then_some(&resp.data),
            errors: &resp.errors,
            extensions: &resp.extensions,
        },
    )
}

fn single_response(
    resp: Result<GqlResponse, Refusal>,
    op: OpRecord,
    media: MediaType,
    transport: Transport,
) -> Response {
    let resp = match resp {
        Ok(r) => r,
        Err(refusal) => {
            let mut r = refusal.into_response(media);
            r.extensions_mut().insert(OpInfo(vec![op]));
            if r.status() == StatusCode::METHOD_NOT_ALLOWED {
                r.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            return r;
        }
    };
    let (request_error, body) = shape(&resp);
    let status = if request_error && media == MediaType::GraphqlResponseJson {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut r = json_response(status, media, &body);
    let headers = r.headers_mut();
    for (name, value) in &resp.http_headers {
        headers.append(name, value.clone());
    }
    if transport == Transport::Get && status == StatusCode::OK && resp.errors.is_empty() {
        if let Some(cc) = resp.cache_control.value() {
            if let Ok(v) = HeaderValue::from_str(&cc) {
                headers.insert(header::CACHE_CONTROL, v);
            }
        }
    }
    r.extensions_mut().insert(OpInfo(vec![op]));
    r
}

fn json_response(status: StatusCode, media: MediaType, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(media.content_type()),
                ),
                (header::VARY, HeaderValue::from_static("Accept")),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a GraphQL response did not serialize");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, HeaderValue::from_static(media.content_type()))],
                r#"{"errors":[{"message":"internal error: the response could not be encoded","extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}"#,
            )
                .into_response()
        }
    }
}

fn accept(headers: &HeaderMap) -> Option<MediaType> {
    let values: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        negotiate(None)
    } else {
        negotiate(Some(&values.join(",")))
    }
}

fn prefers_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

fn not_acceptable() -> Response {
    Refusal::new(
        StatusCode::NOT_ACCEPTABLE,
        Code::NotAcceptable,
        "the API answers with application/graphql-response+json or application/json; \
         the Accept header allows neither",
    )
    .into_response(MediaType::Json)
}

fn check_content_type(headers: &HeaderMap) -> Result<(), Refusal> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        return Ok(());
    }
    let got = if essence.is_empty() {
        "no Content-Type".to_string()
    } else {
        format!("Content-Type {essence}")
    };
    Err(Refusal::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Code::BadRequest,
        format!("POST /graphql takes Content-Type: application/json; the request has {got}"),
    ))
}

/// Reads the body, refusing (413) as soon as it passes `limit` — before it is all in memory.
async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, Refusal> {
    // The rest of the body is never read, so the connection cannot carry another request:
    // say so (RFC 9112 §9.6), or a keep-alive client sends its next request on a socket
    // the server is closing.
    let too_large = || {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::PayloadTooLarge,
            format!("the request body is larger than the limit of {limit} bytes"),
        )
        .with_header(header::CONNECTION, HeaderValue::from_static("close"))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut stream = body.into_data_stream();
    let mut buf = Vec::with_capacity(declared.map_or(1024, |n| n as usize));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                Code::BadRequest,
                format!("the request body could not be read: {e}"),
            )
        })?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

/// A POST body: one request or a batch.
enum Body1 {
    Single(Box<async_graphql::Request>),
    Batch(Vec<async_graphql::Request>),
}

/// Parses a POST body. The first character decides between a request and a batch, so that a
/// malformed body gets serde's precise message rather than "matches no variant".
fn parse_body(bytes: &[u8]) -> Result<Body1, Refusal> {
    let bad = |what: String| Refusal::new(StatusCode::BAD_REQUEST, Code::BadRequest, what);
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        Some(b'[') => {
            let reqs: Vec<async_graphql::Request> = serde_json::from_slice(bytes).map_err(|e| {
                bad(format!(
                    "the body is not a batch of GraphQL requests: {}",
                    explain(bytes, e)
                ))
            })?;
            if reqs.is_empty() {
                return Err(bad("the batch is empty".into()));
            }
            Ok(Body1::Batch(reqs))
        }
        Some(b'{') => serde_json::from_slice(bytes)
            .map(|r| Body1::Single(Box::new(r)))
            .map_err(|e| {
                bad(format!(
                    "the body is not a GraphQL request: {}",
                    explain(bytes, e)
                ))
            }),
        Some(_) => Err(bad(
            "the body must be a JSON object {\"query\": …} or an array of them".into(),
        )),
        None => Err(bad("the body is empty".into())),
    }
}

/// Why a body that did not deserialize as GraphQL requests is wrong: serde's message when
/// the JSON itself is broken, else the member that has the wrong type ("`variables` must be
/// a JSON object, not an array"), which serde's "expected a map at column 50" leaves the
/// client to work out. Runs on the error path only.
fn explain(bytes: &[u8], e: serde_json::Error) -> String {
    use serde_json::Value;
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        return e.to_string();
    };
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    let check = |req: &Value| -> Option<String> {
        let Value::Object(fields) = req else {
            return Some(format!(
                "a request must be a JSON object, not {}",
                kind(req)
            ));
        };
        for (name, want) in [
            ("query", "a string"),
            ("operationName", "a string"),
            ("variables", "an object"),
            ("extensions", "an object"),
        ] {
            match fields.get(name) {
                None | Some(Value::Null) => {}
                Some(v) if kind(v) == want => {}
                Some(v) => return Some(format!("`{name}` must be {want}, not {}", kind(v))),
            }
        }
        None
    };
    let found = match &value {
        Value::Array(items) => items.iter().enumerate().find_map(|(i, r)| {
            check(r).map(|why| format!("operation {} of the batch: {why}", i + 1))
        }),
        other => check(other),
    };
    found.unwrap_or_else(|| e.to_string())
}

/// The GET query string.
#[derive(Debug, Deserialize)]
struct GetParams {
    query: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

fn parse_query_string(req: &Request) -> Result<async_graphql::Request, Refusal> {
    let bad = |what: String| Refusal::new(StatusCode::BAD_REQUEST, Code::BadRequest, what);
    // The form decoder replaces bytes that are not UTF-8 with U+FFFD; a query must not be
    // run as something other than what was sent.
    if let Some(raw) = req.uri().query() {
        if percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .is_err()
        {
            return Err(bad(
                "the query string is not valid UTF-8 once percent-decoded".into(),
            ));
        }
    }
    let Query(p) = Query::<GetParams>::try_from_uri(req.uri())
        .map_err(|e| bad(format!("the query string does not parse: {e}")))?;
    let mut gql = async_graphql::Request::new(p.query.unwrap_or_default());
    if let Some(name) = p.operation_name.filter(|n| !n.is_empty()) {
        gql = gql.operation_name(name);
    }
    if let Some(v) = p.variables.filter(|v| !v.trim().is_empty()) {
        let value: serde_json::Value =
            serde_json::from_str(&v).map_err(|e| bad(format!("`variables` is not JSON: {e}")))?;
        match value {
            serde_json::Value::Object(_) => {
                gql = gql.variables(async_graphql::Variables::from_json(value))
            }
            serde_json::Value::Null => {}
            _ => return Err(bad("`variables` must be a JSON object".into())),
        }
    }
    if let Some(e) = p.extensions.filter(|e| !e.trim().is_empty()) {
        gql.extensions = serde_json::from_str(&e)
            .map_err(|e| bad(format!("`extensions` is not a JSON object: {e}")))?;
    }
    Ok(gql)
}

/// The operation a request selects: its name and type, from the parsed document (which the
/// request keeps, so the schema does not parse it again; see `documents`). `Unknown` when it does not parse
/// or selects nothing; execution then reports why.
fn operation_of(req: &mut async_graphql::Request) -> (Option<String>, OpType) {
    let wanted = req.operation_name.clone();
    let Ok(doc) = req.parsed_query() else {
        return (wanted, OpType::Unknown);
    };
    let mut found = None;
    for (name, op) in doc.operations.iter() {
        let name = name.map(|n| n.to_string());
        let hit = match &wanted {
            Some(w) => name.as_deref() == Some(w.as_str()),
            None => true,
        };
        if hit {
            if found.is_some() && wanted.is_none() {
                // Several operations and no operationName: execution says so.
                return (None, OpType::Unknown);
            }
            found = Some((name, op.node.ty));
        }
    }
    match found {
        Some((name, ty)) => (
            name,
            match ty {
                OperationType::Query => OpType::Query,
                OperationType::Mutation => OpType::Mutation,
                OperationType::Subscription => OpType::Subscription,
            },
        ),
        None => (wanted, OpType::Unknown),
    }
}

/// A request that may run: its query text resolved (persisted queries), its document
/// parsed (or found in the cache), and the operation it names.
struct Prepared {
    req: async_graphql::Request,
    name: Option<String>,
    ty: OpType,
}

/// The steps before execution, none of which needs the database: the persisted-query
/// lookup, the nesting check, the document cache, and whether the transport allows the
/// operation. A refusal comes with the record of what was refused.
fn prepare(
    persisted: &Persisted,
    documents: &Documents,
    mut req: async_graphql::Request,
    transport: Transport,
) -> Result<Prepared, (Refusal, OpRecord)> {
    let asked = req.operation_name.clone();
    let unnamed = |refusal: Refusal| {
        (
            refusal,
            OpRecord {
                name: asked.clone(),
                ty: OpType::Unknown,
                outcome: Outcome::Refused,
                errors: Vec::new(),
            },
        )
    };
    match persisted.resolve(&req) {
        Lookup::NotPersisted => {}
        Lookup::Found(text) => {
            if req.query.is_empty() {
                req.query = text.to_string();
            }
        }
        Lookup::NotFound => {
            return Err(unnamed(
                Refusal::new(
                    StatusCode::OK,
                    Code::PersistedQueryNotFound,
                    "PersistedQueryNotFound: this server does not know the query's hash; \
                     send the query text with it",
                )
                .with_header(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("private, no-cache, must-revalidate"),
                ),
            ))
        }
        Lookup::Invalid(why) => {
            return Err(unnamed(Refusal::new(
                StatusCode::BAD_REQUEST,
                Code::BadRequest,
                why,
            )))
        }
    }
    // Before anything parses the text: the parser's recursion is unbounded (see `nesting`).
    if let Err(e) = crate::nesting::check(&req.query) {
        return Err(unnamed(Refusal::new(
            StatusCode::BAD_REQUEST,
            Code::QueryTooComplex,
            e.message,
        )));
    }
    documents.prepare(&mut req);
    let (name, ty) = operation_of(&mut req);
    let refuse = |status, code, message: &str| {
        (
            Refusal::new(status, code, message),
            OpRecord {
                name: name.clone(),
                ty,
                outcome: Outcome::Refused,
                errors: Vec::new(),
            },
        )
    };
    if req.query.trim().is_empty() {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            Code::BadRequest,
            "the request has no `query`",
        ));
    }
    match (transport, ty) {
        (Transport::Get, OpType::Mutation) => Err(refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            Code::MethodNotAllowed,
            "a mutation must be sent with POST; GET runs queries only",
        )),
        (Transport::Get, OpType::Subscription) => Err(refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            Code::MethodNotAllowed,
            "subscriptions are served over WebSocket at /graphql (graphql-transport-ws); \
             GET runs queries only",
        )),
        (Transport::Post, OpType::Subscription) => Err(refuse(
            StatusCode::BAD_REQUEST,
            Code::BadRequest,
            "subscriptions are served over WebSocket at /graphql (graphql-transport-ws)",
        )),
        _ => Ok(Prepared { req, name, ty }),
    }
}

/// Labels the errors that lack a code and says how the operation ended.
fn finish(resp: &mut GqlResponse) -> Outcome {
    codes::fill_missing(resp);
    if codes::is_request_error(resp) {
        Outcome::Invalid
    } else if resp
        .errors
        .iter()
        .any(|e| codes::code_of(e) == Some(schema::Code::Internal.as_str()))
    {
        Outcome::InternalErrors
    } else if resp.errors.is_empty() {
        Outcome::Ok
    } else {
        Outcome::FieldErrors
    }
}

/// Runs one request (checking first that the transport allows it) and labels its errors.
/// Execution stops at `deadline`, the request's time limit. With `after`, the request reads
/// a database that has applied those blocks (or the ledger), as planned before it runs.
async fn execute(
    state: &AppState,
    req: async_graphql::Request,
    transport: Transport,
    deadline: Instant,
    after: Option<&schema::ReadAfter>,
) -> (Result<GqlResponse, Refusal>, OpRecord) {
    let Prepared { req, name, ty } =
        match prepare(&state.persisted, &state.documents, req, transport) {
            Ok(p) => p,
            Err((refusal, mut op)) => {
                op.errors
                    .extend(codes::code_of(&refusal.error).map(str::to_string));
                return (Err(refusal), op);
            }
        };
    // Dropping the execution future on timeout stops its resolvers; the statement a
    // resolver was waiting on is stopped by the database's own statement_timeout.
    let limit = state.opts.request_timeout;
    let run = async {
        match after {
            None => state.schema.execute(req).await,
            Some(after) => {
                let plan = state.services.plan_read_after(after).await;
                let req = schema::with_own_loaders(req, &state.services);
                schema::read_after_scoped(plan, state.schema.execute(req)).await
            }
        }
    };
    let mut resp = match tokio::time::timeout_at(deadline, run).await {
        Ok(resp) => resp,
        Err(_) => GqlResponse::from_errors(vec![codes::error(
            Code::Schema(schema::Code::RequestTimeout),
            format!(
                "the request took longer than its time limit of {} ms and was cancelled",
                limit.as_millis()
            ),
        )]),
    };
    let outcome = finish(&mut resp);
    let errors = resp
        .errors
        .iter()
        .filter_map(|e| codes::code_of(e).map(str::to_string))
        .collect();
    (
        Ok(resp),
        OpRecord {
            name,
            ty,
            outcome,
            errors,
        },
    )
}
