//! Metrics: Prometheus text on `SyncOptions::metrics_listen` (`GET /metrics`), and a one-line
//! progress summary in the log every few seconds.
//!
//! Built on `prometheus-client` (the Prometheus project's own Rust client): labelled families,
//! histograms and the exposition format come for free and stay correct, which a hand-rolled
//! renderer would have to re-earn. Lag needs two inputs that arrive separately — the chain
//! height (polled from `Ledger::info` about once a second) and the checkpoint (after every
//! committed batch) — so both are kept in [`Tracker`] and the lag gauges are recomputed
//! whenever either changes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::error::SyncError;

/// The `channel` label of per-channel series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Ch {
    pub channel: String,
}

/// The `target` label of reconnects: what the worker lost and connects to again.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Target {
    pub target: &'static str,
}

/// The `kind` label of statement times.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Kind {
    pub kind: &'static str,
}

/// The `state` label of the connection gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct State {
    pub state: &'static str,
}

pub(crate) fn ch(channel: &str) -> Ch {
    Ch {
        channel: channel.to_string(),
    }
}

/// Every series the worker exports (names are prefixed `landql_sync_`).
pub(crate) struct Metrics {
    pub leader: Gauge,
    pub chain_height: Family<Ch, Gauge>,
    pub checkpoint_block: Family<Ch, Gauge>,
    pub lag_blocks: Family<Ch, Gauge>,
    pub lag_seconds: Family<Ch, Gauge<f64, AtomicU64>>,
    pub halted: Family<Ch, Gauge>,
    pub blocks: Family<Ch, Counter>,
    pub events_applied: Family<Ch, Counter>,
    pub events_replayed: Family<Ch, Counter>,
    pub tx_invalid: Family<Ch, Counter>,
    pub tx_failed: Family<Ch, Counter>,
    pub ledger_errors: Family<Ch, Counter>,
    pub db_errors: Counter,
    pub ledger_up: Gauge,
    pub reconnects: Family<Target, Counter>,
    pub statement_seconds: Family<Kind, Histogram, fn() -> Histogram>,
    pub db_connections: Family<State, Gauge>,
    pub db_connections_max: Gauge,
    pub events_per_second: Gauge<f64, AtomicU64>,
    pub batch_events: Histogram,
    pub batch_seconds: Histogram,
    /// Totals for the progress line.
    pub applied_total: AtomicU64,
    pub batches_total: AtomicU64,
    pub last_seq: AtomicI64,
    pub tracker: Tracker,
    registry: Registry,
    exposition: telemetry::Exposition,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut m = Metrics {
            leader: Gauge::default(),
            chain_height: Family::default(),
            checkpoint_block: Family::default(),
            lag_blocks: Family::default(),
            lag_seconds: Family::default(),
            halted: Family::default(),
            blocks: Family::default(),
            events_applied: Family::default(),
            events_replayed: Family::default(),
            tx_invalid: Family::default(),
            tx_failed: Family::default(),
            ledger_errors: Family::default(),
            db_errors: Counter::default(),
            ledger_up: Gauge::default(),
            reconnects: Family::default(),
            statement_seconds: Family::new_with_constructor(|| {
                // 100 µs … ~13 s, doubling.
                Histogram::new(exponential_buckets(0.0001, 2.0, 18))
            }),
            db_connections: Family::default(),
            // One connection: the leader's session, which holds the lock and writes.
            db_connections_max: Gauge::default(),
            events_per_second: Gauge::default(),
            batch_events: Histogram::new(exponential_buckets(1.0, 4.0, 9)),
            batch_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            applied_total: AtomicU64::new(0),
            batches_total: AtomicU64::new(0),
            last_seq: AtomicI64::new(0),
            tracker: Tracker::default(),
            registry: Registry::with_prefix("landql_sync"),
            exposition: telemetry::Exposition::default(),
        };
        let r = &mut m.registry;
        r.register(
            "leader",
            "1 while this worker holds the leader lock and writes",
            m.leader.clone(),
        );
        r.register(
            "chain_height",
            "Blocks on the ledger per channel (last block number + 1), polled from the ledger",
            m.chain_height.clone(),
        );
        r.register(
            "checkpoint_block",
            "Last block applied to the read model per channel",
            m.checkpoint_block.clone(),
        );
        r.register(
            "lag_blocks",
            "Blocks on the ledger not yet applied, per channel",
            m.lag_blocks.clone(),
        );
        r.register(
            "lag_seconds",
            "Ledger time between the chain tip and the last applied block (0 when caught up)",
            m.lag_seconds.clone(),
        );
        r.register(
            "halted",
            "1 when a channel refused a block and stopped",
            m.halted.clone(),
        );
        r.register("blocks", "Blocks applied", m.blocks.clone());
        r.register(
            "events_applied",
            "Events written to the read model (history rows and documents)",
            m.events_applied.clone(),
        );
        r.register(
            "events_replayed",
            "Events already in the read model (replays, no-ops)",
            m.events_replayed.clone(),
        );
        r.register(
            "transactions_invalid",
            "Invalid ledger transactions skipped",
            m.tx_invalid.clone(),
        );
        r.register(
            "transactions_failed",
            "Valid transactions that could not be projected (indexing_errors rows)",
            m.tx_failed.clone(),
        );
        r.register(
            "ledger_errors",
            "Ledger connection or stream errors, each followed by a reconnect",
            m.ledger_errors.clone(),
        );
        r.register(
            "db_errors",
            "PostgreSQL errors, each followed by a reconnect",
            m.db_errors.clone(),
        );
        r.register(
            "ledger_up",
            "1 while the last call to the ledger (chain heights) was answered",
            m.ledger_up.clone(),
        );
        r.register(
            "reconnects",
            "Connections lost and made again, by what was lost (ledger: a channel's block \
             stream; database: the leader's session)",
            m.reconnects.clone(),
        );
        r.register(
            "db_statement_duration_seconds",
            "Time of a batch's statements by kind (copy: the staging COPY; write: the \
             inserts, upserts, change log, checkpoints and commit)",
            m.statement_seconds.clone(),
        );
        r.register(
            "db_connections",
            "The worker's database connection by state (in_use while a batch is written)",
            m.db_connections.clone(),
        );
        r.register(
            "db_connections_max",
            "Connections the worker may hold (its one leader session)",
            m.db_connections_max.clone(),
        );
        r.register(
            "events_per_second",
            "Events applied per second over the last progress interval",
            m.events_per_second.clone(),
        );
        r.register(
            "batch_events",
            "Events per written batch",
            m.batch_events.clone(),
        );
        r.register(
            "batch_seconds",
            "Time to write and commit one batch",
            m.batch_seconds.clone(),
        );
        m.db_connections_max.set(1);
        m.set_db_connection(None);
        for target in ["ledger", "database"] {
            let _ = m.reconnects.get_or_create(&Target { target });
        }
        Arc::new(m)
    }

    /// The leader's session: `None` when there is none, else whether a batch is being
    /// written on it.
    pub fn set_db_connection(&self, busy: Option<bool>) {
        let (in_use, idle) = match busy {
            None => (0, 0),
            Some(true) => (1, 0),
            Some(false) => (0, 1),
        };
        self.db_connections
            .get_or_create(&State { state: "in_use" })
            .set(in_use);
        self.db_connections
            .get_or_create(&State { state: "idle" })
            .set(idle);
    }

    /// One more reconnect to `target` (`ledger` or `database`).
    pub fn reconnect(&self, target: &'static str) {
        self.reconnects.get_or_create(&Target { target }).inc();
    }

    /// The steps of a committed batch (see `writer::Outcome::steps`) as statement times.
    pub fn record_steps(&self, steps: &[(&'static str, Duration)]) {
        for (step, took) in steps {
            let kind = match *step {
                // Planning is the worker's own CPU, and BEGIN.
                "plan" => continue,
                "copy" => "copy",
                _ => "write",
            };
            self.statement_seconds
                .get_or_create(&Kind { kind })
                .observe(took.as_secs_f64());
        }
    }

    /// Every series with the process's own, as the Accept header `accept` asks:
    /// (content type, body).
    pub fn render(&self, accept: Option<&str>) -> (&'static str, String) {
        self.exposition.render(&self.registry, accept)
    }

    /// The chain's height and tip time of `channel`, as just polled.
    pub fn set_chain(&self, channel: &str, height: u64, tip_time_ms: i64) {
        let c = ch(channel);
        self.chain_height.get_or_create(&c).set(clamp(height));
        let mut t = self.tracker.lock();
        let e = t.entry(channel.to_string()).or_default();
        e.height = Some(height);
        e.tip_time_ms = tip_time_ms;
        self.update_lag(&c, e);
    }

    /// The read model now holds `channel` up to `block` (ledger time `time_ms`).
    pub fn set_checkpoint(&self, channel: &str, block: u64, time_ms: Option<i64>) {
        let c = ch(channel);
        self.checkpoint_block.get_or_create(&c).set(clamp(block));
        let mut t = self.tracker.lock();
        let e = t.entry(channel.to_string()).or_default();
        e.checkpoint = Some(block);
        if time_ms.is_some() {
            e.checkpoint_time_ms = time_ms;
        }
        self.update_lag(&c, e);
    }

    fn update_lag(&self, c: &Ch, e: &ChannelProgress) {
        let Some(height) = e.height else { return };
        let lag = e.lag_blocks();
        self.lag_blocks.get_or_create(c).set(clamp(lag));
        let secs = match (lag, e.checkpoint_time_ms) {
            (0, _) => 0.0,
            (_, Some(at)) => (e.tip_time_ms - at).max(0) as f64 / 1000.0,
            // Nothing applied yet: behind by the whole chain, whose age we do not know.
            (_, None) => f64::from(u32::from(height > 0)),
        };
        self.lag_seconds.get_or_create(c).set(secs);
    }

    /// Creates every per-channel series at zero, so that dashboards and alerts see them
    /// before the first event.
    pub fn register_channel(&self, channel: &str) {
        let c = ch(channel);
        self.halted.get_or_create(&c).set(0);
        for f in [
            &self.blocks,
            &self.events_applied,
            &self.events_replayed,
            &self.tx_invalid,
            &self.tx_failed,
            &self.ledger_errors,
        ] {
            let _ = f.get_or_create(&c);
        }
    }

    pub fn set_halted(&self, channel: &str) {
        self.halted.get_or_create(&ch(channel)).set(1);
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Height and checkpoint of one channel.
#[derive(Debug, Default, Clone)]
pub(crate) struct ChannelProgress {
    pub height: Option<u64>,
    pub tip_time_ms: i64,
    pub checkpoint: Option<u64>,
    pub checkpoint_time_ms: Option<i64>,
}

impl ChannelProgress {
    pub fn lag_blocks(&self) -> u64 {
        let height = self.height.unwrap_or(0);
        match self.checkpoint {
            Some(cp) => height.saturating_sub(cp + 1),
            None => height,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Tracker(Mutex<BTreeMap<String, ChannelProgress>>);

impl Tracker {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, ChannelProgress>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Serves `GET /metrics` on `addr` until the process ends.
pub(crate) async fn serve(metrics: Arc<Metrics>, addr: SocketAddr) -> Result<(), SyncError> {
    use axum::http::header;
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| SyncError::Metrics { addr, source })?;
    let app = axum::Router::new().route(
        "/metrics",
        get(move |headers: axum::http::HeaderMap| {
            let m = metrics.clone();
            async move {
                let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
                let (content_type, body) = m.render(accept);
                ([(header::CONTENT_TYPE, content_type)], body)
            }
        }),
    );
    tracing::info!(%addr, "serving metrics on /metrics");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "metrics server stopped");
        }
    });
    Ok(())
}

/// How often the progress line is logged.
pub(crate) const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Logs one progress line every [`PROGRESS_EVERY`] while the worker runs.
pub(crate) async fn report_progress(metrics: Arc<Metrics>) {
    let mut last = (
        Instant::now(),
        metrics.applied_total.load(Ordering::Relaxed),
    );
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    tick.tick().await;
    let mut logged: Option<(u64, u64)> = None;
    loop {
        tick.tick().await;
        let now = Instant::now();
        let applied = metrics.applied_total.load(Ordering::Relaxed);
        let rate = (applied - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
        last = (now, applied);
        metrics.events_per_second.set(rate);
        let (lag, channels) = {
            let t = metrics.tracker.lock();
            let lag: u64 = t.values().map(ChannelProgress::lag_blocks).sum();
            let channels = t
                .iter()
                .map(|(name, p)| {
                    let cp = p
                        .checkpoint
                        .map_or_else(|| "-".to_string(), |c| c.to_string());
                    let h = p.height.map_or_else(|| "?".to_string(), |h| h.to_string());
                    format!("{name}={cp}/{h}")
                })
                .collect::<Vec<_>>()
                .join(" ");
            (lag, channels)
        };
        // A quiet, caught-up worker says so once rather than every few seconds.
        if logged == Some((applied, lag)) && lag == 0 {
            continue;
        }
        logged = Some((applied, lag));
        tracing::info!(
            leader = metrics.leader.get() == 1,
            events_per_s = rate.round() as u64,
            events_applied = applied,
            batches = metrics.batches_total.load(Ordering::Relaxed),
            last_seq = metrics.last_seq.load(Ordering::Relaxed),
            lag_blocks = lag,
            channels = %channels,
            "sync progress"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_follows_height_and_checkpoint() {
        let m = Metrics::new();
        m.set_chain("p", 10, 10_000);
        assert_eq!(m.lag_blocks.get_or_create(&ch("p")).get(), 10);
        m.set_checkpoint("p", 4, Some(4_000));
        assert_eq!(m.lag_blocks.get_or_create(&ch("p")).get(), 5);
        assert_eq!(m.lag_seconds.get_or_create(&ch("p")).get(), 6.0);
        m.set_checkpoint("p", 9, Some(10_000));
        assert_eq!(m.lag_blocks.get_or_create(&ch("p")).get(), 0);
        assert_eq!(m.lag_seconds.get_or_create(&ch("p")).get(), 0.0);
        let (_, text) = m.render(None);
        assert!(
            text.contains("landql_sync_lag_blocks{channel=\"p\"} 0"),
            "{text}"
        );
        assert!(text.contains("landql_sync_batch_seconds_bucket"), "{text}");
    }
}
