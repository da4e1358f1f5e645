//! `/metrics`: Prometheus series of the API node, in the OpenMetrics text format (as the sync
//! worker serves its own).
//!
//! Request series are recorded as requests end (by the `trace` layer). The node's own
//! counters — caches, SQL statements, pool, subscribers, per-channel lag — live in the
//! `schema` crate's services and are read once per scrape by a [`Collector`], so they are
//! never stale and cost nothing between scrapes.
//!
//! Operation names are chosen by clients, so as labels they are bounded: the first
//! [`MAX_OPERATION_NAMES`] distinct names are kept, later ones are counted as `other`.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use schema::Services;

use crate::trace::OpRecord;
use crate::AppState;

/// Distinct operation names kept as label values.
pub const MAX_OPERATION_NAMES: usize = 200;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    operation: String,
    r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    operation: String,
    r#type: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabel {
    channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabel {
    role: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

type HistogramFamily = Family<OpLabels, Histogram, fn() -> Histogram>;

/// The API node's metrics registry (series prefixed `landql_api_`).
pub struct Metrics {
    duration: HistogramFamily,
    requests: Family<OutcomeLabels, Counter>,
    http: Family<HttpLabels, Counter>,
    rate_limited: Family<RoleLabel, Counter>,
    unauthenticated: Family<ReasonLabel, Counter>,
    rate_limit_keys: Gauge,
    names: Mutex<HashSet<String>>,
    registry: Registry,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn latency_histogram() -> Histogram {
    // 100 µs … ~13 s, doubling: property reads sit in the first buckets, ledger reads and
    // searches further up.
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

impl Metrics {
    /// The registry, with a collector reading `services`' counters at scrape time.
    pub fn new(services: Services) -> Self {
        let duration: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let requests = Family::<OutcomeLabels, Counter>::default();
        let http = Family::<HttpLabels, Counter>::default();
        let mut registry = Registry::with_prefix("landql_api");
        registry.register(
            "request_duration_seconds",
            "Time from request received to response ready, by GraphQL operation name \
             (\"anonymous\" when unnamed) and type; each operation of a batch is recorded \
             with the batch's time",
            duration.clone(),
        );
        registry.register(
            "requests",
            "GraphQL operations by name, type and outcome (ok, field_errors, \
             internal_errors, invalid, refused)",
            requests.clone(),
        );
        registry.register(
            "http_responses",
            "HTTP responses by route and status code",
            http.clone(),
        );
        let rate_limited = Family::<RoleLabel, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests refused with 429 by the per-client rate limit, by the caller's role",
            rate_limited.clone(),
        );
        let unauthenticated = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "unauthenticated",
            "Requests refused with 401 for their bearer token, by reason",
            unauthenticated.clone(),
        );
        let rate_limit_keys = Gauge::default();
        registry.register(
            "rate_limit_clients",
            "Clients (subjects or addresses) the rate limiter remembers, as of its last sweep",
            rate_limit_keys.clone(),
        );
        registry.register_collector(Box::new(StatsCollector(services)));
        Metrics {
            duration,
            requests,
            http,
            rate_limited,
            unauthenticated,
            rate_limit_keys,
            names: Mutex::new(HashSet::new()),
            registry,
        }
    }

    /// Records one GraphQL operation that took part in a request of `elapsed`.
    pub(crate) fn record(&self, op: &OpRecord, elapsed: Duration) {
        let operation = self.label(op.name.as_deref());
        let ty = op.ty.as_str().to_string();
        self.duration
            .get_or_create(&OpLabels {
                operation: operation.clone(),
                r#type: ty.clone(),
            })
            .observe(elapsed.as_secs_f64());
        self.requests
            .get_or_create(&OutcomeLabels {
                operation,
                r#type: ty,
                outcome: op.outcome.as_str().to_string(),
            })
            .inc();
    }

    /// Counts one HTTP response.
    pub(crate) fn record_http(&self, route: &str, status: u16) {
        self.http
            .get_or_create(&HttpLabels {
                route: route.to_string(),
                status,
            })
            .inc();
    }

    /// Counts a request refused by the rate limit.
    pub(crate) fn record_rate_limited(&self, role: schema::Role) {
        self.rate_limited
            .get_or_create(&RoleLabel {
                role: role.as_str().to_string(),
            })
            .inc();
    }

    /// Counts a request refused for its token (`reason` is one of a fixed set).
    pub(crate) fn record_unauthenticated(&self, reason: &'static str) {
        self.unauthenticated
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// The rate limiter's client count after a sweep.
    pub(crate) fn set_rate_limit_clients(&self, n: usize) {
        self.rate_limit_keys.set(clamp(n as u64));
    }

    /// The operation-name label: bounded (see the module docs).
    fn label(&self, name: Option<&str>) -> String {
        let Some(name) = name else {
            return "anonymous".into();
        };
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        if names.contains(name) {
            return name.to_string();
        }
        if names.len() >= MAX_OPERATION_NAMES {
            return "other".into();
        }
        names.insert(name.to_string());
        name.to_string()
    }

    /// The OpenMetrics text of every series.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        out
    }
}

/// `GET /metrics`.
pub(crate) async fn render(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

/// Reads `Services::stats` at scrape time.
struct StatsCollector(Services);

impl std::fmt::Debug for StatsCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatsCollector")
    }
}

fn counter(e: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(e: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: i64) -> std::fmt::Result {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

/// A gauge with one value per channel; channels without a value are left out.
fn per_channel<N>(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    values: impl Iterator<Item = (String, Option<N>)>,
) -> std::fmt::Result
where
    N: prometheus_client::encoding::EncodeGaugeValue,
{
    let mut m = e.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Gauge,
    )?;
    for (channel, v) in values {
        if let Some(v) = v {
            ConstGauge::new(v).encode(m.encode_family(&ChannelLabel { channel })?)?;
        }
    }
    Ok(())
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Collector for StatsCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> std::fmt::Result {
        let s = self.0.stats();
        for (cache, c) in [
            ("property", s.property_cache),
            ("location", s.location_cache),
            ("search", s.search_cache),
        ] {
            counter(
                &mut e,
                &format!("{cache}_cache_hits"),
                &format!("Lookups answered by the {cache} cache"),
                c.hits,
            )?;
            counter(
                &mut e,
                &format!("{cache}_cache_misses"),
                &format!("Lookups the {cache} cache could not answer"),
                c.misses,
            )?;
            gauge(
                &mut e,
                &format!("{cache}_cache_entries"),
                &format!("Entries in the {cache} cache"),
                clamp(c.entries),
            )?;
        }
        counter(
            &mut e,
            "sql_statements",
            "SQL statements sent to the replica by resolvers",
            s.sql_statements,
        )?;
        gauge(
            &mut e,
            "pool_connections",
            "Connections open in the replica pool",
            i64::from(s.pool_size),
        )?;
        gauge(
            &mut e,
            "pool_idle_connections",
            "Idle connections in the replica pool",
            clamp(s.pool_idle as u64),
        )?;
        gauge(
            &mut e,
            "change_log_seq",
            "Last change-log seq this node has applied (cache invalidation, subscriptions)",
            s.change_log_seq,
        )?;
        gauge(
            &mut e,
            "subscribers",
            "Open subscriptions listening for changes",
            clamp(s.subscribers as u64),
        )?;
        per_channel(
            &mut e,
            "indexed_block",
            "Last block of the channel in the replica",
            s.channels
                .iter()
                .map(|c| (c.channel.clone(), c.indexed_block.map(clamp))),
        )?;
        per_channel(
            &mut e,
            "chain_height",
            "Blocks on the ledger per channel, as last polled",
            s.channels
                .iter()
                .map(|c| (c.channel.clone(), c.chain_height.map(clamp))),
        )?;
        per_channel(
            &mut e,
            "lag_blocks",
            "Blocks on the ledger not yet in the replica, per channel",
            s.channels
                .iter()
                .map(|c| (c.channel.clone(), c.lag_blocks.map(clamp))),
        )?;
        per_channel(
            &mut e,
            "lag_seconds",
            "How long the replica has been behind the chain, per channel",
            s.channels
                .iter()
                .map(|c| (c.channel.clone(), c.lag_seconds)),
        )?;
        Ok(())
    }
}
