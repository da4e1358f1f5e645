//! landql's logs and traces, set up once by the binary, and the `/metrics` answer every
//! landql process gives ([`exposition`]: its registry's series, the `process_*` series, in
//! the format the scraper asked for).
//!
//! - [`init`] installs the process's `tracing` subscriber: log lines on stderr as text (ANSI
//!   colours only on a terminal) or JSON lines ([`LogFormat`]), and, when an OTLP endpoint
//!   is given, every `tracing` span at INFO or above becomes an OpenTelemetry span exported
//!   over OTLP/HTTP (protobuf) to `{endpoint}/v1/traces`.
//! - Sampling is decided twice. At the head, by trace id with the configured ratio, or by the
//!   incoming `traceparent`'s sampled flag when there is one (parent-based); that decision is
//!   the flag sent on to the ledger. A sampled trace is recorded whole; of one the head did
//!   not pick, only the local root and the calls to other processes are recorded (`record`).
//!   At the tail, in process: those recorded spans of unpicked traces are buffered until the
//!   trace's local root ends, and exported anyway when any of them ended in error or the
//!   root took at least the slow threshold ([`tail`]). The buffer is bounded; what it drops
//!   is counted ([`Telemetry::stats`]).
//! - [`accept_parent`] continues a trace from an incoming `traceparent` (the API's and the
//!   devnet's request layers); [`set_http_status`] and [`mark_error`] mark what the tail
//!   keeps. Outgoing requests carry the entered span's context through the global W3C
//!   propagator that [`init`] installs (the ledger client injects it with the OpenTelemetry
//!   API and `tracing-opentelemetry` alone).
//!
//! Without an endpoint nothing OpenTelemetry is installed: spans are the fmt layer's alone and
//! cost what they cost before.

use std::io::IsTerminal;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{Status, TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

pub use exposition::Exposition;

pub mod exposition;
mod json;
mod process;
mod record;
pub mod tail;
mod text;

pub use tail::{BufferLimits, TailStats};

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines; coloured only when stderr is a terminal.
    #[default]
    Text,
    /// One JSON object a line: timestamp, level, target, message and fields, the span
    /// stack, and `trace_id`/`span_id` of the current span while a trace is active.
    Json,
}

impl FromStr for LogFormat {
    type Err = TelemetryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(TelemetryError::LogFormat(other.to_string())),
        }
    }
}

/// What [`init`] sets up.
#[derive(Debug, Clone)]
pub struct Config {
    /// `service.name` of the exported spans, e.g. `landql-serve`.
    pub service: String,
    /// The OTLP/HTTP collector's base URL (`http://host:4318`); `/v1/traces` is appended
    /// unless the URL already ends with it. `None`: no traces.
    pub otlp_endpoint: Option<String>,
    /// The head sampling ratio, 0 to 1 ([`parse_ratio`]).
    pub sample_ratio: f64,
    /// A trace whose root took at least this long is exported whatever the ratio.
    pub slow: Duration,
    pub log_format: LogFormat,
    /// The log filter when `RUST_LOG` is unset, e.g. `info,tantivy=warn`.
    pub default_log_filter: String,
    /// The tail buffer's bounds.
    pub limits: BufferLimits,
}

/// Why [`init`] failed, or a flag's value is wrong.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("--log-format must be `text` or `json`, not `{0}`")]
    LogFormat(String),
    #[error("--trace-sample must be a number from 0 to 1 (e.g. 1.0, 0.1, 0.001), not `{0}`")]
    Ratio(String),
    #[error("--otlp-endpoint must be an http:// or https:// URL, not `{0}`")]
    Endpoint(String),
    #[error("building the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("installing the tracing subscriber: {0}")]
    Subscriber(#[from] tracing_subscriber::util::TryInitError),
}

/// Parses a sampling ratio: a finite number from 0 to 1.
pub fn parse_ratio(s: &str) -> Result<f64, TelemetryError> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(TelemetryError::Ratio(s.to_string())),
    }
}

/// The URL spans are posted to for the collector at `endpoint`.
pub fn traces_url(endpoint: &str) -> Result<String, TelemetryError> {
    let e = endpoint.trim();
    if !(e.starts_with("http://") || e.starts_with("https://")) || e.len() <= "https://".len() {
        return Err(TelemetryError::Endpoint(endpoint.to_string()));
    }
    let e = e.trim_end_matches('/');
    Ok(if e.ends_with("/v1/traces") {
        e.to_string()
    } else {
        format!("{e}/v1/traces")
    })
}

/// The installed telemetry: keep it alive for the process's life. Dropping it flushes the
/// spans still queued (at most a few seconds) and stops the exporter.
#[must_use = "dropping it stops exporting"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    stats: Option<Arc<TailStats>>,
}

impl Telemetry {
    /// The tail buffer's counters; `None` when no traces are exported.
    pub fn stats(&self) -> Option<&TailStats> {
        self.stats.as_deref()
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            if let Err(e) = p.shutdown() {
                eprintln!("telemetry: flushing the last spans failed: {e}");
            }
        }
        if let Some(s) = &self.stats {
            let s = s.snapshot();
            if s.evicted_traces > 0 {
                eprintln!(
                    "telemetry: {} traces ({} spans) were dropped from the full tail buffer",
                    s.evicted_traces, s.evicted_spans
                );
            }
        }
    }
}

/// Installs the global subscriber (and, with an endpoint, the exporter and the W3C
/// propagator). Call once, before anything logs; the binary does it in `main`.
pub fn init(config: Config) -> Result<Telemetry, TelemetryError> {
    let log_filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(&config.default_log_filter));
    let fmt: Box<dyn Layer<Registry> + Send + Sync> = match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .fmt_fields(text::TextFields)
            .with_filter(log_filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(json::JsonLines)
            .with_filter(log_filter)
            .boxed(),
    };
    let Some(endpoint) = &config.otlp_endpoint else {
        tracing_subscriber::registry().with(fmt).try_init()?;
        return Ok(Telemetry {
            provider: None,
            stats: None,
        });
    };
    let url = traces_url(endpoint)?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(Duration::from_secs(10))
        .build()?;
    // Sized for the 100 % rate of a busy node: a second's spans of a few thousand requests.
    // Spans over the queue are dropped by the SDK (and counted in its own warnings).
    let batch = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(65_536)
                .with_max_export_batch_size(4_096)
                .with_scheduled_delay(Duration::from_millis(500))
                .build(),
        )
        .build();
    let stats = Arc::new(TailStats::default());
    let tail = tail::TailProcessor::new(batch, config.slow, config.limits, stats.clone());
    let provider = SdkTracerProvider::builder()
        .with_sampler(tail::HeadSampler::new(config.sample_ratio))
        .with_span_processor(tail)
        .with_resource(
            Resource::builder()
                .with_service_name(config.service.clone())
                .build(),
        )
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let tracer = provider.tracer("landql");
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        // Not the thread's current OpenTelemetry context on every enter: that is a context
        // clone and attach per poll of every instrumented future. Parents come from the
        // `tracing` span tree, the ledger client's `traceparent` and the JSON logs' ids from
        // the span's own context (`OpenTelemetrySpanExt::context`, `get_otel_context`).
        .with_context_activation(false)
        .with_tracked_inactivity(false)
        .with_location(false)
        .with_threads(false)
        .with_level(false)
        .with_target(false)
        .with_filter(record::Recorded)
        .boxed();
    tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init()?;
    Ok(Telemetry {
        provider: Some(provider),
        stats: Some(stats),
    })
}

/// Reads W3C trace-context headers.
struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Makes `span` (not yet entered) a child of the trace named by the request's
/// `traceparent` (and `tracestate`) header, keeping its sampled flag. A missing or malformed
/// header leaves `span` a new trace's root. Does nothing when traces are off.
pub fn accept_parent(span: &tracing::Span, headers: &http::HeaderMap) {
    if !headers.contains_key("traceparent") {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&Headers(headers));
    if cx.span().span_context().is_valid() {
        // Fails only when the span is not recorded as an OpenTelemetry span (traces off).
        let _ = span.set_parent(cx);
    }
}

/// Records the HTTP status on a server span; a 5xx marks it as an error, which the tail
/// sampler keeps.
pub fn set_http_status(span: &tracing::Span, status: u16) {
    span.set_attribute("http.response.status_code", i64::from(status));
    if status >= 500 {
        span.set_status(Status::error(format!("HTTP {status}")));
    }
}

/// Sets an attribute of `span`'s OpenTelemetry span (nothing when traces are off or the span
/// is not recorded).
pub fn set_attribute(span: &tracing::Span, key: &'static str, value: String) {
    span.set_attribute(key, value);
}

/// Marks `span` as ended in error, with a short description (no user data): its trace is
/// exported whatever the sampling ratio.
pub fn mark_error(span: &tracing::Span, description: &'static str) {
    span.set_status(Status::error(description));
}

/// The W3C `traceparent` of `span` (hex trace id and span id), when traces are on.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_endpoints_are_checked() {
        assert_eq!(parse_ratio("0.001").unwrap(), 0.001);
        assert_eq!(parse_ratio("1").unwrap(), 1.0);
        assert_eq!(parse_ratio("0").unwrap(), 0.0);
        for bad in ["1.5", "-0.1", "NaN", "inf", "ten", ""] {
            assert!(parse_ratio(bad).is_err(), "{bad}");
        }
        assert_eq!(
            traces_url("http://c:4318").unwrap(),
            "http://c:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://c:4318/").unwrap(),
            "http://c:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://c/otlp/v1/traces").unwrap(),
            "https://c/otlp/v1/traces"
        );
        assert!(traces_url("c:4318").is_err());
        assert!(traces_url("http://").is_err());
        assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert!("yaml".parse::<LogFormat>().is_err());
    }
}
