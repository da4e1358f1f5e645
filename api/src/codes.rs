//! `extensions.code` for every error (design/api.md, "HTTP").
//!
//! Resolver errors carry their codes from the `schema` crate. The errors async-graphql makes
//! itself do not, so the [`Codes`] extension labels them where they arise — the parse hook
//! (GRAPHQL_PARSE_FAILED) and the validation hook (GRAPHQL_VALIDATION_FAILED) — for HTTP and
//! WebSocket alike. The same hook enforces depth and complexity itself rather than through
//! async-graphql's limits, because its own refusal ("Query is too complex.") names neither
//! the limit nor the query's figure, and design/api.md wants a message that says the limit.
//! Whatever still lacks a code after execution is labelled by [`fill_missing`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, Selection};
use async_graphql::{Response, ServerError, ServerResult, ValidationResult, Value, Variables};

/// The codes the API adds to those of the `schema` crate, and those of the schema's the API
/// raises itself ([`Code::Schema`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The query text is not GraphQL (HTTP 400).
    ParseFailed,
    /// The query does not fit the schema, or names no runnable operation (HTTP 400).
    ValidationFailed,
    /// Deeper or more complex than the limits (HTTP 400).
    QueryTooComplex,
    /// The HTTP request is malformed: not JSON, no query, a subscription over HTTP (400),
    /// or an unsupported content type (415).
    BadRequest,
    /// The body is over the size limit (HTTP 413).
    PayloadTooLarge,
    /// More operations in one batch than allowed (HTTP 400).
    BatchTooLarge,
    /// A mutation or subscription sent with GET, or a method `/graphql` does not take (405).
    MethodNotAllowed,
    /// The client accepts no media type the API can answer with (HTTP 406).
    NotAcceptable,
    /// Over the caller's per-client rate limit (HTTP 429 with Retry-After; see `ratelimit`).
    RateLimited,
    /// An automatic persisted query's hash is not known here: send the text with it (HTTP
    /// 200, see `persisted`).
    PersistedQueryNotFound,
    /// One of the schema's own codes, raised by the API itself: BAD_USER_INPUT for a value
    /// that did not coerce, INTERNAL_SERVER_ERROR (the message carries no internals), and
    /// REQUEST_TIMEOUT when the body did not arrive in time (408) or execution was cancelled
    /// (200, `data: null`).
    Schema(schema::Code),
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::ParseFailed => "GRAPHQL_PARSE_FAILED",
            Code::ValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            Code::QueryTooComplex => "QUERY_TOO_COMPLEX",
            Code::BadRequest => "BAD_REQUEST",
            Code::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Code::BatchTooLarge => "BATCH_TOO_LARGE",
            Code::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Code::NotAcceptable => "NOT_ACCEPTABLE",
            Code::RateLimited => "RATE_LIMITED",
            Code::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            Code::Schema(code) => code.as_str(),
        }
    }

    /// Codes of errors raised before execution started: the response has no `data` and the
    /// HTTP status is 4xx (GraphQL-over-HTTP, "request errors").
    pub fn is_request_error(code: &str) -> bool {
        matches!(
            code,
            "GRAPHQL_PARSE_FAILED" | "GRAPHQL_VALIDATION_FAILED" | "QUERY_TOO_COMPLEX"
        )
    }
}

/// An error with a code and nothing else.
pub(crate) fn error(code: Code, message: impl Into<String>) -> ServerError {
    let mut e = ServerError::new(message, None);
    set_code(&mut e, code.as_str());
    e
}

/// The error's `extensions.code`, if any.
pub(crate) fn code_of(e: &ServerError) -> Option<&str> {
    match e.extensions.as_ref()?.get("code")? {
        Value::String(s) => Some(s.as_str()),
        Value::Enum(n) => Some(n.as_str()),
        _ => None,
    }
}

fn set_code(e: &mut ServerError, code: &str) {
    e.extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
}

fn set_code_if_missing(e: &mut ServerError, code: Code) {
    if code_of(e).is_none() {
        set_code(e, code.as_str());
    }
}

/// Labels whatever reached the response without a code. Before execution (no `data`, no
/// path) that is a request error async-graphql raised outside the hooks, such as an unknown
/// `operationName`; during execution, a value that did not coerce (BAD_USER_INPUT) or
/// anything else, which is ours (INTERNAL_SERVER_ERROR).
pub(crate) fn fill_missing(resp: &mut Response) {
    let executed =
        !matches!(resp.data, Value::Null) || resp.errors.iter().any(|e| !e.path.is_empty());
    for e in &mut resp.errors {
        if code_of(e).is_some() {
            continue;
        }
        let code = if !executed && e.path.is_empty() {
            Code::ValidationFailed
        } else if e.message.starts_with("Invalid value for argument")
            || e.message.starts_with("Failed to parse")
            || e.message.starts_with("Invalid value for variable")
        {
            Code::Schema(schema::Code::BadUserInput)
        } else {
            Code::Schema(schema::Code::Internal)
        };
        set_code(e, code.as_str());
    }
}

/// Whether the response is a request error (nothing was executed): its errors all carry
/// request-error codes and there is no data.
pub(crate) fn is_request_error(resp: &Response) -> bool {
    matches!(resp.data, Value::Null)
        && !resp.errors.is_empty()
        && resp
            .errors
            .iter()
            .all(|e| e.path.is_empty() && code_of(e).is_some_and(Code::is_request_error))
}

/// async-graphql's default recursion depth, checked after parsing with fragment spreads
/// followed; a fragment cycle always exceeds it.
const PARSE_DEPTH: usize = 32;

/// How deep an operation that only introspects may nest, whatever the depth limit: the
/// introspection queries of GraphiQL and graphql-js are 13 to 15 levels deep, and refusing
/// them would break every GraphQL tool. Introspection reads the in-memory schema only.
pub const INTROSPECTION_DEPTH: usize = 16;

/// The extension factory; each request gets its own extension (see [`PerRequest`]).
pub(crate) struct Codes {
    max_depth: usize,
    max_complexity: usize,
    max_aliases: usize,
}

impl Codes {
    pub(crate) fn new(max_depth: usize, max_complexity: usize, max_aliases: usize) -> Self {
        Codes {
            max_depth,
            max_complexity,
            max_aliases,
        }
    }
}

impl ExtensionFactory for Codes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PerRequest {
            max_depth: self.max_depth,
            max_complexity: self.max_complexity,
            max_aliases: self.max_aliases,
            introspection_only: AtomicBool::new(false),
        })
    }
}

/// The extension of one request: the parse hook notes whether the document only
/// introspects, for the validation hook's depth limit.
struct PerRequest {
    max_depth: usize,
    max_complexity: usize,
    max_aliases: usize,
    introspection_only: AtomicBool,
}

/// Aliased fields in the whole document, fragments included. Counted on the text as
/// written: a fragment spread many times is the complexity limit's business.
fn aliases(doc: &ExecutableDocument) -> usize {
    fn count(set: &async_graphql::parser::types::SelectionSet) -> usize {
        set.items
            .iter()
            .map(|s| match &s.node {
                Selection::Field(f) => {
                    usize::from(f.node.alias.is_some()) + count(&f.node.selection_set.node)
                }
                Selection::InlineFragment(i) => count(&i.node.selection_set.node),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    doc.operations
        .iter()
        .map(|(_, op)| count(&op.node.selection_set.node))
        .chain(
            doc.fragments
                .values()
                .map(|f| count(&f.node.selection_set.node)),
        )
        .sum()
}

/// Whether every operation of the document selects only `__schema`, `__type` or
/// `__typename` at its root (fragments at the root count as not introspecting).
fn introspection_only(doc: &ExecutableDocument) -> bool {
    doc.operations.iter().all(|(_, op)| {
        op.node
            .selection_set
            .node
            .items
            .iter()
            .all(|s| matches!(&s.node, Selection::Field(f) if f.node.name.node.starts_with("__")))
    })
}

#[async_trait::async_trait]
impl Extension for PerRequest {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        // WebSocket operations reach the parser only through here (see `nesting`).
        crate::nesting::check(query)?;
        let parsed = next.run(ctx, query, variables).await;
        if let Ok(doc) = &parsed {
            let n = aliases(doc);
            if n > self.max_aliases {
                return Err(error(
                    Code::QueryTooComplex,
                    format!(
                        "the query uses {n} aliases; the limit is {}: send fewer fields per \
                         request or use a batch",
                        self.max_aliases
                    ),
                ));
            }
            self.introspection_only
                .store(introspection_only(doc), Ordering::Relaxed);
        }
        parsed.map_err(|mut e| {
            // async-graphql also refuses absurd nesting while parsing: the parser's own
            // recursion limit, then a depth check that follows fragment spreads. Those are
            // limits, not syntax errors; say so in our words.
            if e.message.starts_with("recursion limit exceeded") {
                e.message = format!(
                    "the query is nested deeper than the parser allows; the depth limit is {}",
                    self.max_depth
                );
                set_code_if_missing(&mut e, Code::QueryTooComplex);
            } else if e.message.starts_with("The recursion depth") {
                e.message = format!(
                    "the query is nested deeper than {PARSE_DEPTH} levels counting fragment \
                     spreads (a fragment that spreads itself, directly or not, never ends); \
                     the depth limit is {}",
                    self.max_depth
                );
                set_code_if_missing(&mut e, Code::QueryTooComplex);
            } else {
                set_code_if_missing(&mut e, Code::ParseFailed);
            }
            e
        })
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await.map_err(|mut errors| {
            for e in &mut errors {
                set_code_if_missing(e, Code::ValidationFailed);
            }
            errors
        })?;
        let max_depth = if self.introspection_only.load(Ordering::Relaxed) {
            self.max_depth.max(INTROSPECTION_DEPTH)
        } else {
            self.max_depth
        };
        if result.depth > max_depth {
            return Err(vec![error(
                Code::QueryTooComplex,
                format!(
                    "the query is nested {} levels deep; the limit is {}",
                    result.depth, max_depth
                ),
            )]);
        }
        if result.complexity > self.max_complexity {
            return Err(vec![error(
                Code::QueryTooComplex,
                format!(
                    "the query's complexity is {} (one per field selected); the limit is {}: \
                     select fewer fields or split the query",
                    result.complexity, self.max_complexity
                ),
            )]);
        }
        Ok(result)
    }
}
