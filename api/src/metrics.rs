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
//! Error codes are labels only when they are codes this API gives ([`KNOWN_CODES`]).
//!
//! Readiness, whether the database answers and a standby's replay lag need the database,
//! so the `/metrics` handler asks for them (bounded by a second or two) before encoding;
//! everything else is read from memory. `deploy/METRICS.md` lists every series.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use schema::{ReplicaLag, Services};

use crate::documents::Documents;
use crate::trace::OpRecord;
use crate::AppState;

/// Distinct operation names kept as label values.
pub const MAX_OPERATION_NAMES: usize = 200;

/// The error codes counted by name in `landql_api_errors_total`; any other is `other`.
pub const KNOWN_CODES: [&str; 19] = [
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
    "QUERY_TOO_COMPLEX",
    "BAD_REQUEST",
    "PAYLOAD_TOO_LARGE",
    "BATCH_TOO_LARGE",
    "METHOD_NOT_ALLOWED",
    "NOT_ACCEPTABLE",
    "RATE_LIMITED",
    "PERSISTED_QUERY_NOT_FOUND",
    "BAD_USER_INPUT",
    "LEDGER_UNAVAILABLE",
    "REPLICA_BEHIND",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "REQUEST_TIMEOUT",
    "NARROW_OR_SIGN_IN",
    "DAILY_LIST_LIMIT",
    "INTERNAL_SERVER_ERROR",
];

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
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabel {
    cache: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabel {
    pool: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolStateLabels {
    pool: &'static str,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DatabaseLabel {
    database: String,
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
    errors: Family<CodeLabel, Counter>,
    in_flight: Gauge,
    websockets: Gauge,
    names: Mutex<HashSet<String>>,
    /// What the last scrape learnt from the database (see the module docs).
    probed: Arc<Mutex<Probed>>,
    services: Services,
    registry: Registry,
    exposition: telemetry::Exposition,
}

/// Checked against the database at each scrape.
#[derive(Debug, Clone, Copy, Default)]
struct Probed {
    ready: bool,
    database_up: bool,
    replica: Option<ReplicaLag>,
}

/// Decrements a gauge when dropped: a request or socket counted while it lasts, however it
/// ends (a client that goes away cancels the future holding it).
pub(crate) struct Live(Gauge);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.dec();
    }
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
    /// The registry, with a collector reading `services`' counters (and the parsed-document
    /// cache's) at scrape time.
    pub(crate) fn new(services: Services, documents: Arc<Documents>) -> Self {
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
            "HTTP responses by route (\"unmatched\" for none) and status class (2xx, 4xx, …)",
            http.clone(),
        );
        let errors = Family::<CodeLabel, Counter>::default();
        registry.register(
            "errors",
            "Errors in responses by code (extensions.code; codes this API does not give are \
             \"other\")",
            errors.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "requests_in_flight",
            "HTTP requests received and not yet answered",
            in_flight.clone(),
        );
        let websockets = Gauge::default();
        registry.register(
            "websocket_connections",
            "Open GraphQL WebSocket connections",
            websockets.clone(),
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
            "Buckets the rate limiter remembers (a client's per role, an anonymous client's daily list allowance), as of its last sweep",
            rate_limit_keys.clone(),
        );
        services.register_metrics(&mut registry);
        let probed = Arc::new(Mutex::new(Probed::default()));
        registry.register_collector(Box::new(StatsCollector {
            services: services.clone(),
            documents,
            probed: probed.clone(),
        }));
        Metrics {
            duration,
            requests,
            http,
            rate_limited,
            unauthenticated,
            rate_limit_keys,
            errors,
            in_flight,
            websockets,
            names: Mutex::new(HashSet::new()),
            probed,
            services,
            registry,
            exposition: telemetry::Exposition::default(),
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
        for code in &op.errors {
            let code = KNOWN_CODES
                .iter()
                .find(|k| **k == code.as_str())
                .copied()
                .unwrap_or("other");
            self.errors.get_or_create(&CodeLabel { code }).inc();
        }
    }

    /// Counts one HTTP response.
    pub(crate) fn record_http(&self, route: &str, status: u16) {
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.http
            .get_or_create(&HttpLabels {
                route: route.to_string(),
                class,
            })
            .inc();
    }

    /// Counts a request in flight until the guard drops.
    pub(crate) fn request_started(&self) -> Live {
        self.in_flight.inc();
        Live(self.in_flight.clone())
    }

    /// Counts an open WebSocket until the guard drops.
    pub(crate) fn websocket_opened(&self) -> Live {
        self.websockets.inc();
        Live(self.websockets.clone())
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

    /// Asks the database what the series of readiness and replica lag need.
    async fn probe(&self) {
        let readiness = self.services.readiness().await;
        let replica = self.services.replica_lag();
        *self.probed.lock().unwrap_or_else(|p| p.into_inner()) = Probed {
            ready: readiness.ready,
            database_up: readiness.database.ok,
            replica,
        };
    }

    /// Every series with the process's own, as the Accept header `accept` asks:
    /// (content type, body).
    pub fn render(&self, accept: Option<&str>) -> (&'static str, String) {
        self.exposition.render(&self.registry, accept)
    }
}

/// `GET /metrics`: OpenMetrics when asked for (Prometheus does), else the classic text.
pub(crate) async fn render(State(state): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    state.metrics.probe().await;
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (content_type, body) = state.metrics.render(accept);
    ([(header::CONTENT_TYPE, content_type)], body)
}

/// Reads `Services::stats`, the document cache and the last probe at scrape time.
struct StatsCollector {
    services: Services,
    documents: Arc<Documents>,
    probed: Arc<Mutex<Probed>>,
}

impl std::fmt::Debug for StatsCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatsCollector")
    }
}

fn counter(e: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge<N>(e: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: N) -> std::fmt::Result
where
    N: prometheus_client::encoding::EncodeGaugeValue,
{
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

/// One series per label set of a family, of one metric type.
fn family<L, M>(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    values: impl IntoIterator<Item = (L, M)>,
) -> std::fmt::Result
where
    L: EncodeLabelSet,
    M: EncodeMetric,
{
    let mut values = values.into_iter().peekable();
    let Some((_, first)) = values.peek() else {
        return Ok(());
    };
    let mut m = e.encode_descriptor(name, help, None, first.metric_type())?;
    for (labels, v) in values {
        v.encode(m.encode_family(&labels)?)?;
    }
    Ok(())
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
    family(
        e,
        name,
        help,
        values.filter_map(|(channel, v)| v.map(|v| (ChannelLabel { channel }, ConstGauge::new(v)))),
    )
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Collector for StatsCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> std::fmt::Result {
        let s = self.services.stats();
        let d = self.documents.stats();
        let caches = [
            (
                "property",
                s.property_cache.hits,
                s.property_cache.misses,
                s.property_cache.entries,
            ),
            (
                "location",
                s.location_cache.hits,
                s.location_cache.misses,
                s.location_cache.entries,
            ),
            (
                "search",
                s.search_cache.hits,
                s.search_cache.misses,
                s.search_cache.entries,
            ),
            ("document", d.hits, d.misses, d.entries),
        ];
        family(
            &mut e,
            "cache_hits",
            "Lookups answered by a cache (property, location, search: resolvers' caches; \
             document: parsed query texts)",
            caches
                .iter()
                .map(|&(cache, hits, ..)| (CacheLabel { cache }, ConstCounter::new(hits))),
        )?;
        family(
            &mut e,
            "cache_misses",
            "Lookups a cache could not answer",
            caches
                .iter()
                .map(|&(cache, _, misses, _)| (CacheLabel { cache }, ConstCounter::new(misses))),
        )?;
        family(
            &mut e,
            "cache_entries",
            "Entries in a cache",
            caches
                .iter()
                .map(|&(cache, .., n)| (CacheLabel { cache }, ConstGauge::new(clamp(n)))),
        )?;
        counter(
            &mut e,
            "sql_statements",
            "SQL statements sent to the replica by resolvers",
            s.sql_statements,
        )?;
        family(
            &mut e,
            "db_connections",
            "Connections of a pool by state (requests: resolvers' pool; background: the \
             change-log listener's, when it is another database or pool)",
            s.pools.iter().flat_map(|p| {
                let in_use = i64::from(p.open) - clamp(p.idle as u64);
                [
                    (
                        PoolStateLabels {
                            pool: p.name,
                            state: "in_use",
                        },
                        ConstGauge::new(in_use.max(0)),
                    ),
                    (
                        PoolStateLabels {
                            pool: p.name,
                            state: "idle",
                        },
                        ConstGauge::new(clamp(p.idle as u64)),
                    ),
                ]
            }),
        )?;
        family(
            &mut e,
            "db_connections_max",
            "Connections a pool may open",
            s.pools.iter().map(|p| {
                (
                    PoolLabel { pool: p.name },
                    ConstGauge::new(i64::from(p.max)),
                )
            }),
        )?;
        family(
            &mut e,
            "db_pool_waiters",
            "Statements waiting for a connection of the pool (resolver statements in flight \
             beyond the connections in use)",
            s.pools.iter().filter_map(|p| {
                p.waiters
                    .map(|w| (PoolLabel { pool: p.name }, ConstGauge::new(clamp(w))))
            }),
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
        gauge(
            &mut e,
            "ledger_up",
            "1 while the node's last poll of the ledger's chain heights was answered",
            i64::from(s.ledger_up),
        )?;
        let probed = *self.probed.lock().unwrap_or_else(|p| p.into_inner());
        gauge(
            &mut e,
            "ready",
            "1 when /readyz says this node should get traffic",
            i64::from(probed.ready),
        )?;
        gauge(
            &mut e,
            "database_up",
            "1 while the database this node reads answers",
            i64::from(probed.database_up),
        )?;
        if let Some(r) = probed.replica {
            gauge(
                &mut e,
                "replica_lag_bytes",
                "WAL bytes the hot standby this node reads has not replayed",
                r.bytes,
            )?;
            gauge(
                &mut e,
                "replica_lag_seconds",
                "Age of the standby's last replayed transaction while WAL waits to be replayed",
                r.seconds,
            )?;
        }
        if let Some(ix) = &s.index {
            if let Some(seq) = ix.seq {
                gauge(
                    &mut e,
                    "index_seq",
                    "Change-log seq of the search index's last commit",
                    seq,
                )?;
                gauge(
                    &mut e,
                    "index_lag_changes",
                    "Changes the node has seen in the change log that the search index has not \
                     committed",
                    (s.change_log_seq - seq).max(0),
                )?;
            }
            gauge(
                &mut e,
                "index_documents",
                "Documents searchable in the index",
                clamp(ix.documents),
            )?;
            gauge(
                &mut e,
                "index_disk_bytes",
                "Bytes of the search index's files on disk (live segments and files not yet \
                 collected)",
                clamp(ix.disk_bytes),
            )?;
            counter(
                &mut e,
                "index_errors",
                "Errors the index follower met and waited out (database reads, LISTEN)",
                ix.errors,
            )?;
        }
        // The databases the node routes between (one per configured replica, and the
        // primary): a bounded label set, fixed at start.
        let databases = self.services.databases();
        if databases.len() > 1 {
            let by_database = |f: &dyn Fn(&schema::DatabaseState) -> Option<i64>| {
                databases
                    .iter()
                    .filter_map(|d| {
                        f(d).map(|v| {
                            (
                                DatabaseLabel {
                                    database: d.name.clone(),
                                },
                                ConstGauge::new(v),
                            )
                        })
                    })
                    .collect::<Vec<_>>()
            };
            family(
                &mut e,
                "database_reachable",
                "1 while a database this node routes reads between answers its probes",
                by_database(&|d| Some(i64::from(d.up))),
            )?;
            family(
                &mut e,
                "database_usable",
                "1 while reads may go to the database: answering and within the lag bound",
                by_database(&|d| Some(i64::from(d.usable))),
            )?;
            family(
                &mut e,
                "database_reading",
                "1 for the database reads go to now",
                by_database(&|d| Some(i64::from(d.reading))),
            )?;
            family(
                &mut e,
                "database_lag_bytes",
                "WAL bytes a replica has not replayed, against the primary's position",
                by_database(&|d| d.lag_bytes.map(clamp)),
            )?;
            family(
                &mut e,
                "database_lag_blocks",
                "Blocks the primary has applied and a replica has not, over all channels",
                by_database(&|d| d.lag_blocks.map(clamp)),
            )?;
        }
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
