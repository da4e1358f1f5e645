//! What the schema measures while it answers: records served by where they came from,
//! search and verification, the time of the statements resolvers send, and whether the
//! ledger answers. The handles are `prometheus-client`'s (atomics; recording costs a few
//! nanoseconds), and [`Instruments::register`] puts them in the API node's registry, so
//! the schema stays free of HTTP while its series sit beside the API's.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::types::verification::VerificationOutcome;

/// Where a record a resolver served came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadSource {
    Cache,
    Replica,
    Ledger,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// The schema's series (see the module docs).
#[derive(Debug)]
pub(crate) struct Instruments {
    reads: Family<SourceLabel, Counter>,
    search_seconds: Histogram,
    verifications: Family<OutcomeLabel, Counter>,
    statement_seconds: Family<KindLabel, Histogram, fn() -> Histogram>,
    /// Resolver statements started and not finished: waiting for a connection or running.
    statements_in_flight: AtomicI64,
    ledger_up: AtomicBool,
}

/// The `outcome` label values of `verifications`.
const OUTCOMES: [&str; 6] = [
    "match",
    "mismatch",
    "missing_in_replica",
    "not_on_ledger",
    "ledger_unavailable",
    "error",
];

fn latency() -> Histogram {
    // 100 µs … ~13 s, doubling, as the API's request histogram.
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

impl Instruments {
    /// Every label value is created at zero, so dashboards and alerts see the series
    /// before the first event.
    pub fn new() -> Self {
        let i = Instruments {
            reads: Family::default(),
            search_seconds: latency(),
            verifications: Family::default(),
            statement_seconds: Family::new_with_constructor(latency),
            statements_in_flight: AtomicI64::new(0),
            ledger_up: AtomicBool::new(false),
        };
        for source in ["cache", "replica", "ledger"] {
            let _ = i.reads.get_or_create(&SourceLabel { source });
        }
        for outcome in OUTCOMES {
            let _ = i.verifications.get_or_create(&OutcomeLabel { outcome });
        }
        let _ = i
            .statement_seconds
            .get_or_create(&KindLabel { kind: "read" });
        i
    }

    pub fn read(&self, source: ReadSource) {
        let source = match source {
            ReadSource::Cache => "cache",
            ReadSource::Replica => "replica",
            ReadSource::Ledger => "ledger",
        };
        self.reads.get_or_create(&SourceLabel { source }).inc();
    }

    pub fn searched(&self, started: Instant) {
        self.search_seconds.observe(started.elapsed().as_secs_f64());
    }

    /// A `verifyProperty` answer, or `None` for one that ended in an error.
    pub fn verified(&self, outcome: Option<VerificationOutcome>) {
        let outcome = match outcome {
            Some(VerificationOutcome::Match) => OUTCOMES[0],
            Some(VerificationOutcome::Mismatch) => OUTCOMES[1],
            Some(VerificationOutcome::MissingInReplica) => OUTCOMES[2],
            Some(VerificationOutcome::NotOnLedger) => OUTCOMES[3],
            Some(VerificationOutcome::LedgerUnavailable) => OUTCOMES[4],
            None => OUTCOMES[5],
        };
        self.verifications
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// Times one resolver statement from now until the guard drops (finished, failed or
    /// cancelled with its request).
    pub fn statement(&self) -> StatementTimer<'_> {
        self.statements_in_flight.fetch_add(1, Ordering::Relaxed);
        StatementTimer {
            of: self,
            started: Instant::now(),
        }
    }

    pub fn statements_in_flight(&self) -> i64 {
        self.statements_in_flight.load(Ordering::Relaxed)
    }

    pub fn set_ledger_up(&self, up: bool) {
        self.ledger_up.store(up, Ordering::Relaxed);
    }

    pub fn ledger_up(&self) -> bool {
        self.ledger_up.load(Ordering::Relaxed)
    }

    /// Adds the series to `registry` (the API node's, prefixed `landql_api`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "reads",
            "Property records served by resolvers, by where they came from (cache, replica, ledger)",
            self.reads.clone(),
        );
        registry.register(
            "search_duration_seconds",
            "Time to answer one search from the index (cache hits excluded)",
            self.search_seconds.clone(),
        );
        registry.register(
            "verifications",
            "verifyProperty answers by outcome (error: the request failed)",
            self.verifications.clone(),
        );
        registry.register(
            "db_statement_duration_seconds",
            "Time of the statements resolvers send to the database, waiting for a connection \
             included, by kind",
            self.statement_seconds.clone(),
        );
    }
}

/// See [`Instruments::statement`].
pub(crate) struct StatementTimer<'a> {
    of: &'a Instruments,
    started: Instant,
}

impl Drop for StatementTimer<'_> {
    fn drop(&mut self) {
        self.of.statements_in_flight.fetch_sub(1, Ordering::Relaxed);
        self.of
            .statement_seconds
            .get_or_create(&KindLabel { kind: "read" })
            .observe(self.started.elapsed().as_secs_f64());
    }
}
