//! Spans for GraphQL execution, as an async-graphql extension: one `graphql.operation` per
//! operation executed (a batch has several) and one `graphql.field` per top-level field,
//! under the HTTP request's span. Nested fields get none: a page of properties would make
//! hundreds, and the work below the top level shows as the SQL statements' and ledger
//! calls' own spans. (async-graphql's own `Tracing` extension opens a span for every field
//! and for parsing and validation, which costs more than the request it describes.)
//!
//! An operation whose response holds an INTERNAL_SERVER_ERROR is marked as an error, so the
//! tail sampler keeps its trace whatever the ratio.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextResolve, ResolveInfo,
};
use async_graphql::{Response, ServerResult, Value};
use tracing::Instrument;

/// The extension (see the module docs).
pub(crate) struct Spans;

impl ExtensionFactory for Spans {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(SpansExtension)
    }
}

struct SpansExtension;

fn is_internal(e: &async_graphql::ServerError) -> bool {
    e.extensions
        .as_ref()
        .and_then(|x| x.get("code"))
        .is_some_and(|c| matches!(c, Value::String(s) if s == "INTERNAL_SERVER_ERROR"))
}

#[async_trait::async_trait]
impl Extension for SpansExtension {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let span = tracing::info_span!(
            "graphql.operation",
            otel.name = %format_args!("graphql {}", operation_name.unwrap_or("anonymous")),
            graphql.operation.name = operation_name.unwrap_or(""),
        );
        let resp = next.run(ctx, operation_name).instrument(span.clone()).await;
        if resp.errors.iter().any(is_internal) {
            telemetry::mark_error(&span, "INTERNAL_SERVER_ERROR");
        }
        resp
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if info.path_node.parent.is_some() || info.is_for_introspection {
            return next.run(ctx, info).await;
        }
        let span = tracing::info_span!(
            "graphql.field",
            otel.name = info.name,
            graphql.field.name = info.name,
            graphql.field.type = info.return_type,
        );
        next.run(ctx, info).instrument(span).await
    }
}
