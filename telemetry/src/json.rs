//! `--log-format json`: one JSON object a line.
//!
//! `{"timestamp", "level", "target", "message", …the event's fields, "span": the innermost
//! span {name, fields}, "spans": the stack from the root, "trace_id", "span_id"}`. The ids
//! are those of the event's span (its explicit parent, else the span entered when it was
//! written), or of the nearest span above it that is an OpenTelemetry span (those below
//! INFO are not); they appear only while traces are on.

use std::fmt;

use opentelemetry::trace::{SpanContext, TraceContextExt};
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::{LookupSpan, Registry};

/// The event formatter (see the module docs).
pub(crate) struct JsonLines;

/// An event's fields into a JSON map.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(
            field.name().to_string(),
            Value::String(format!("{value:?}")),
        );
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_string(), Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), value.into());
    }
}

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        let mut ts = String::new();
        SystemTime.format_time(&mut Writer::new(&mut ts))?;
        line.insert("timestamp".into(), ts.into());
        let meta = event.metadata();
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        event.record(&mut Fields(&mut line));
        if let Some(scope) = ctx.event_scope() {
            let mut spans = Vec::new();
            for span in scope.from_root() {
                let mut s = Map::new();
                s.insert("name".into(), span.name().into());
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<JsonFields>>() {
                    if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(fields) {
                        s.extend(m);
                    }
                }
                spans.push(Value::Object(s));
            }
            if let Some(last) = spans.last() {
                line.insert("span".into(), last.clone());
            }
            line.insert("spans".into(), Value::Array(spans));
        }
        let ids = otel_span_context(event);
        if let Some(sc) = ids {
            line.insert("trace_id".into(), sc.trace_id().to_string().into());
            line.insert("span_id".into(), sc.span_id().to_string().into());
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// The OpenTelemetry span context of `event`'s span or the nearest one above it. The span
/// tree is walked in the registry itself: the fmt layer's own view leaves out the spans its
/// log filter does not enable, and the OpenTelemetry layer does not make its spans the
/// thread's current context (`lib.rs`, context activation).
fn otel_span_context(event: &Event<'_>) -> Option<SpanContext> {
    // The global dispatcher (the binary's, set by `init`); a nested `get_default` under a
    // scoped one would see none, and the line would go without ids.
    tracing::dispatcher::get_default(|dispatch| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let leaf = match event.parent() {
            Some(id) => id.clone(),
            None if event.is_contextual() => registry.current_span().id()?.clone(),
            None => return None,
        };
        let mut span = registry.span(&leaf);
        while let Some(s) = span {
            if let Some(cx) = tracing_opentelemetry::get_otel_context(&s.id(), dispatch) {
                let sc = cx.span().span_context().clone();
                if sc.is_valid() {
                    return Some(sc);
                }
            }
            span = s.parent();
        }
        None
    })
}
