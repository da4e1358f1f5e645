//! The ledger node's series (`GET /metrics`, prefixed `landql_ledger_`): what an operator
//! of the ledger watches — transactions by kind and validation, commit latency, block time,
//! the queue, the chain heights. Recorded by the orderer thread as it commits; heights are
//! read from the chains at scrape time.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use ledger::model::{TxKind, Validation};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Ch {
    channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TxLabels {
    channel: String,
    kind: &'static str,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InvalidLabels {
    channel: String,
    code: &'static str,
}

type Hist = Family<Ch, Histogram, fn() -> Histogram>;

/// The series (see the module docs).
pub(crate) struct LedgerMetrics {
    transactions: Family<TxLabels, Counter>,
    invalid: Family<InvalidLabels, Counter>,
    commit_seconds: Hist,
    block_interval: Hist,
    blocks: Family<Ch, Counter>,
    height: Family<Ch, Gauge>,
    pending: Family<Ch, Gauge>,
    exposition: telemetry::Exposition,
    /// When each channel's last block was cut, for the block interval.
    last_block: Mutex<Vec<Option<Instant>>>,
    registry: Registry,
}

/// The label of a transaction kind: the chaincode function in snake case.
fn kind_label(kind: TxKind) -> &'static str {
    match kind {
        TxKind::CreateLandRecord => "create_land_record",
        TxKind::TransferLandRecord => "transfer_land_record",
        TxKind::UpdateVerificationStatus => "update_verification_status",
        TxKind::CorrectLandRecord => "correct_land_record",
        TxKind::LinkDocumentHash => "link_document_hash",
    }
}

impl LedgerMetrics {
    pub fn new(channels: &[String]) -> Self {
        // Commits wait for the batch timeout and an fsync: milliseconds to seconds.
        let commit: fn() -> Histogram = || Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        let interval: fn() -> Histogram = || Histogram::new(exponential_buckets(0.001, 2.0, 18));
        let mut m = LedgerMetrics {
            transactions: Family::default(),
            invalid: Family::default(),
            commit_seconds: Family::new_with_constructor(commit),
            block_interval: Family::new_with_constructor(interval),
            blocks: Family::default(),
            height: Family::default(),
            pending: Family::default(),
            exposition: telemetry::Exposition::default(),
            last_block: Mutex::new(vec![None; channels.len()]),
            registry: Registry::with_prefix("landql_ledger"),
        };
        let r = &mut m.registry;
        r.register(
            "transactions",
            "Transactions committed in blocks, by channel, kind (the chaincode function) and \
             state (valid or invalid)",
            m.transactions.clone(),
        );
        r.register(
            "transactions_invalid",
            "Invalid transactions committed, by channel and validation code",
            m.invalid.clone(),
        );
        r.register(
            "commit_duration_seconds",
            "Time from a submission's arrival to its block being on disk",
            m.commit_seconds.clone(),
        );
        r.register(
            "block_interval_seconds",
            "Time between consecutive blocks of a channel cut by this node",
            m.block_interval.clone(),
        );
        r.register(
            "blocks",
            "Blocks cut by this node since it started",
            m.blocks.clone(),
        );
        r.register(
            "height",
            "Blocks on the channel (last block number + 1)",
            m.height.clone(),
        );
        r.register(
            "pending_transactions",
            "Transactions submitted and not yet in a block",
            m.pending.clone(),
        );
        for channel in channels {
            let c = Ch {
                channel: channel.clone(),
            };
            let _ = m.pending.get_or_create(&c);
            let _ = m.blocks.get_or_create(&c);
        }
        m
    }

    pub fn submitted(&self, channel: &str, n: usize) {
        self.pending
            .get_or_create(&ch(channel))
            .inc_by(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// A submission left the queue (committed or refused).
    pub fn answered(&self, channel: &str, n: usize) {
        self.pending
            .get_or_create(&ch(channel))
            .dec_by(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// One block of `channel` (its index `ix`) is on disk, with these transactions.
    pub fn block(
        &self,
        ix: usize,
        channel: &str,
        txs: impl Iterator<Item = (TxKind, Validation, Duration)>,
    ) {
        let now = Instant::now();
        let c = ch(channel);
        self.blocks.get_or_create(&c).inc();
        {
            let mut last = self.last_block.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(slot) = last.get_mut(ix) {
                if let Some(prev) = slot.replace(now) {
                    self.block_interval
                        .get_or_create(&c)
                        .observe(now.duration_since(prev).as_secs_f64());
                }
            }
        }
        let commit = self.commit_seconds.get_or_create(&c);
        for (kind, validation, waited) in txs {
            let state = if validation == Validation::Valid {
                "valid"
            } else {
                self.invalid
                    .get_or_create(&InvalidLabels {
                        channel: channel.to_string(),
                        code: validation.as_str(),
                    })
                    .inc();
                "invalid"
            };
            self.transactions
                .get_or_create(&TxLabels {
                    channel: channel.to_string(),
                    kind: kind_label(kind),
                    state,
                })
                .inc();
            commit.observe(waited.as_secs_f64());
        }
    }

    /// The exposition as the Accept header `accept` asks (content type, body), with
    /// `heights` (channel, blocks) as they are now.
    pub fn render(
        &self,
        heights: impl Iterator<Item = (String, u64)>,
        accept: Option<&str>,
    ) -> (&'static str, String) {
        for (channel, h) in heights {
            self.height
                .get_or_create(&Ch { channel })
                .set(i64::try_from(h).unwrap_or(i64::MAX));
        }
        self.exposition.render(&self.registry, accept)
    }
}

fn ch(channel: &str) -> Ch {
    Ch {
        channel: channel.to_string(),
    }
}
