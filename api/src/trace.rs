//! One log line and the metrics per request, as a layer.
//!
//! The GraphQL handlers attach an [`OpInfo`] to their response saying which operations ran
//! and how each ended; this layer times the whole request, writes one `request` log line
//! (method, path, status, duration_ms, operation, type, outcome) inside a span that carries
//! the request id and the client's address — so anything a resolver logs names the request
//! too — and records the operations in [`Metrics`].
//!
//! The span is also the request's OpenTelemetry server span when traces are on: it
//! continues the client's trace when the request carries a W3C `traceparent`, and is marked
//! as an error — which the tail sampler always keeps — for a 5xx or an operation that ended
//! with INTERNAL_SERVER_ERROR (errors the client caused, or the ledger's, do not count).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::metrics::Metrics;

/// What kind of operation ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum OpType {
    Query,
    Mutation,
    Subscription,
    /// The document did not parse, or named no operation in it.
    Unknown,
}

impl OpType {
    pub fn as_str(self) -> &'static str {
        match self {
            OpType::Query => "query",
            OpType::Mutation => "mutation",
            OpType::Subscription => "subscription",
            OpType::Unknown => "unknown",
        }
    }
}

/// How one operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Outcome {
    /// Data and no errors.
    Ok,
    /// Executed, with field errors the client caused or the ledger's (not ours).
    FieldErrors,
    /// Executed, with at least one INTERNAL_SERVER_ERROR.
    InternalErrors,
    /// Refused before execution: parse, validation or limits (400).
    Invalid,
    /// Refused at the HTTP level: method, media type, size, malformed body.
    Refused,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::FieldErrors => "field_errors",
            Outcome::InternalErrors => "internal_errors",
            Outcome::Invalid => "invalid",
            Outcome::Refused => "refused",
        }
    }
}

/// One operation of a request.
#[derive(Debug, Clone)]
pub(crate) struct OpRecord {
    /// The operation's name; `None` for an anonymous operation.
    pub name: Option<String>,
    pub ty: OpType,
    pub outcome: Outcome,
    /// The codes of the errors answered (empty for most operations: no allocation).
    pub errors: Vec<String>,
}

/// The operations a GraphQL response answered (a batch has several), as a response
/// extension for this layer.
#[derive(Debug, Clone, Default)]
pub(crate) struct OpInfo(pub Vec<OpRecord>);

/// The layer (see the module docs).
pub(crate) async fn layer(
    State(metrics): State<Arc<Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let _in_flight = metrics.request_started();
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let client = crate::client::ClientAddr::of(&req);
    let route_name = route.as_deref().unwrap_or("unmatched");
    let span = match client {
        Some(client) => tracing::info_span!(
            "request",
            id = %id,
            %client,
            otel.kind = "server",
            otel.name = %format_args!("{method} {route_name}")
        ),
        None => tracing::info_span!(
            "request",
            id = %id,
            otel.kind = "server",
            otel.name = %format_args!("{method} {route_name}")
        ),
    };
    telemetry::accept_parent(&span, req.headers());
    let resp = next.run(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = resp.status().as_u16();
    let duration_ms = elapsed.as_secs_f64() * 1000.0;
    telemetry::set_http_status(&span, status);
    // The request line is written inside the span so that JSON logs carry its trace id.
    let entered = span.enter();
    match resp.extensions().get::<OpInfo>() {
        Some(OpInfo(ops)) if !ops.is_empty() => {
            if ops.iter().any(|o| o.outcome == Outcome::InternalErrors) {
                telemetry::mark_error(&span, "INTERNAL_SERVER_ERROR");
            }
            for op in ops {
                metrics.record(op, elapsed);
            }
            let names: Vec<&str> = ops
                .iter()
                .map(|o| o.name.as_deref().unwrap_or("anonymous"))
                .collect();
            let operation = names.join(",");
            // On the request's span too: of a trace the head did not sample, that span is
            // all that is recorded, and what a slow or failed request kept by the tail shows.
            telemetry::set_attribute(&span, "graphql.operation.name", operation.clone());
            let types: Vec<&str> = ops.iter().map(|o| o.ty.as_str()).collect();
            let outcomes: Vec<&str> = ops.iter().map(|o| o.outcome.as_str()).collect();
            tracing::info!(
                parent: &span,
                %method,
                path,
                status,
                duration_ms,
                operation,
                r#type = types.join(","),
                outcome = outcomes.join(","),
                "request"
            );
        }
        _ => {
            tracing::info!(parent: &span, %method, path, status, duration_ms, "request");
        }
    }
    drop(entered);
    metrics.record_http(route.as_deref().unwrap_or("unmatched"), status);
    resp
}
