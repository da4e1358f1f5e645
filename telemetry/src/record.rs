//! Which `tracing` spans and events become OpenTelemetry spans and span events.
//!
//! - Spans at INFO and above (not tantivy's: its INFO spans are its own bookkeeping);
//!   dependencies' spans are at DEBUG or TRACE and stay out, whatever `RUST_LOG` says of the
//!   log lines.
//! - Events at WARN and above: the access line at INFO would repeat the request span's own
//!   attributes; an ERROR event marks the span it lands on as an error.
//! - Of a trace the head did not sample, only the spans that start or cross a process's
//!   part of it: the local root (a request's span, a background task's) and the calls to
//!   other processes (spans declaring `otel.kind`, e.g. `ledger.record`, so that the callee
//!   gets the trace's context and follows its decision). The spans below them — operations,
//!   fields, SQL statements — are not recorded at all, and an event inside them lands on
//!   the nearest recorded span (so an ERROR still marks the root, which the tail keeps).
//!
//! Why: recording every span of every request so that the tail could keep a slow or failed
//! request whole cost about a tenth of a `property(id)` request's CPU, the same at a ratio
//! of 0.001 as at 1 — the ratio bought nothing. Now a request the head did not pick costs
//! its root span (and its ledger calls'), a slow or failed one is still kept — its root with
//! the route, status, duration and operation names, the ledger calls it made — and a sampled
//! one is recorded whole. BENCHMARKS.md, "Tracing cost", has the figures.

use opentelemetry::trace::TraceContextExt;
use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::registry::LookupSpan;

/// The OpenTelemetry layer's filter (see the module docs).
pub(crate) struct Recorded;

/// By level and target alone: could this callsite ever be recorded?
fn wanted(meta: &Metadata<'_>) -> bool {
    let most = if meta.is_span() && !meta.target().starts_with("tantivy") {
        Level::INFO
    } else {
        Level::WARN
    };
    *meta.level() <= most
}

/// A span that makes a call to another process, in OpenTelemetry's terms.
fn crosses_processes(meta: &Metadata<'_>) -> bool {
    meta.fields().field("otel.kind").is_some()
}

impl<S> Filter<S> for Recorded
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn enabled(&self, meta: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        if !wanted(meta) {
            return false;
        }
        if !meta.is_span() || crosses_processes(meta) {
            return true;
        }
        // The nearest recorded span is the new span's parent in the trace (spans with an
        // explicit parent are judged by the entered one: they are recorded unless that is
        // an unsampled trace's).
        let Some(parent) = cx.lookup_current() else {
            return true;
        };
        let parent = parent.id();
        tracing::dispatcher::get_default(|dispatch| {
            tracing_opentelemetry::get_otel_context(&parent, dispatch)
                .is_none_or(|cx| cx.span().span_context().is_sampled())
        })
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        match (wanted(meta), meta.is_span() && !crosses_processes(meta)) {
            (false, _) => Interest::never(),
            // Decided span by span, by the trace it starts in.
            (true, true) => Interest::sometimes(),
            (true, false) => Interest::always(),
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::INFO)
    }
}
