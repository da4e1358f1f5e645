//! The sync worker: projects the ledger into landql's PostgreSQL read model, exactly once,
//! following the tip (design/system.md, invariants 1–3).
//!
//! Shaped like a Vector pipeline, one module per stage:
//!
//! ```text
//!  source (one tailer per channel) ──► decode ──► batch ──► writer (one PG transaction)
//!  checks every block: orderer          valid txs   size or   rows + history + change log
//!  signature, header hash, tx root,     → rows;     time      + checkpoints, then NOTIFY
//!  link to the checkpoint               bad → errors window
//! ```
//!
//! - `source`: tails a channel from its checkpoint, checks every block with
//!   `Block::check`, reconnects with backoff; a block that fails halts its channel.
//! - `decode`: valid transactions → property and document changes; invalid ones are counted
//!   and skipped; undecodable valid ones become `indexing_errors` rows.
//! - `batch`: cuts batches at `batch_max_events` or `batch_window`.
//! - `writer`: writes a batch in one transaction on the leader's connection.
//! - `leader`: that connection — migration, the leader lock, the pinned orderer key, the
//!   stored checkpoints.
//! - `bulk`: when a large catch-up drops the secondary indexes and builds them again, and
//!   the statements that do it; refreshing the planner's statistics after a catch-up.
//! - `worker`: sessions — connect, migrate, take the leader lock (or wait as standby), run
//!   the pipeline, start over from the stored checkpoints when PostgreSQL goes away;
//!   `metrics`: Prometheus series and the progress line.
//!
//! # Contract with readers (index followers, caches, the API)
//!
//! After each committed batch that added change-log rows the worker sends
//! `NOTIFY landql_changes, '<seq>'` ([`NOTIFY_CHANNEL`]) in the same transaction, so it is
//! delivered exactly when the rows become visible. `<seq>` is the decimal text of the
//! highest `change_log.seq` that transaction committed. Seqs are gap-free and increase in
//! commit order, so a follower keeps its last applied seq, `LISTEN landql_changes`, and on
//! each notification (or on a timer, as notifications are not delivered while it is
//! disconnected) reads `SELECT … FROM change_log WHERE seq > $last ORDER BY seq`.
//! A replayed block adds no change-log rows and sends no notification.
//!
//! # Leadership
//!
//! The writer holds the session-level advisory lock [`LEADER_LOCK_KEY`]
//! (`pg_try_advisory_lock`) on the very connection it writes with, for as long as it lives.
//! A second worker polls for the lock as a hot standby and takes over when the leader's
//! connection drops (process killed, network gone); a worker whose connection dropped cannot
//! commit anything more, so two writers never interleave.

mod backoff;
mod batch;
mod bulk;
mod copy;
mod decode;
mod error;
mod leader;
mod metrics;
mod source;
mod worker;
mod writer;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ledger::client::{HttpLedger, Ledger};

pub use error::{ChannelHalt, SyncError};

/// Blocks of the chain the read model has not applied, summed over channels, from the
/// chain's heights and the checkpoints `(channel, block)` (a channel without one lacks all).
pub fn blocks_behind(info: &ledger::model::ChainInfo, checkpoints: &[(String, i64)]) -> u64 {
    info.channels
        .iter()
        .map(|c| {
            let at = checkpoints
                .iter()
                .find(|(n, _)| *n == c.name)
                .map_or(-1, |(_, b)| *b);
            (c.height as i64 - 1 - at).max(0) as u64
        })
        .sum()
}

/// The PostgreSQL notification channel the worker notifies after each batch that added
/// change-log rows; the payload is the batch's highest `change_log.seq` in decimal.
pub const NOTIFY_CHANNEL: &str = "landql_changes";

/// The key of the session-level advisory lock that makes a worker the single writer
/// (ASCII "landqlsy").
pub const LEADER_LOCK_KEY: i64 = 0x6c61_6e64_716c_7379;

/// How long a request to the ledger may take (block streams are bounded by idleness).
const LEDGER_TIMEOUT: Duration = Duration::from_secs(10);

/// How `landql sync` runs.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// The ledger's HTTP API, e.g. `http://127.0.0.1:7050`.
    pub ledger_url: String,
    /// The primary database.
    pub database_url: String,
    /// The orderer key to trust (64 hex digits); `None` trusts the key the ledger
    /// presents on first sync and pins it in the database.
    pub orderer_key: Option<String>,
    /// A batch is written when it holds this many events…
    pub batch_max_events: usize,
    /// …or this long after its first block arrived.
    pub batch_window: Duration,
    /// Serve Prometheus metrics here.
    pub metrics_listen: Option<SocketAddr>,
    /// A catch-up of at least this many events (and more than the rows already in the read
    /// model) drops the secondary indexes and builds them again near the tip (migration
    /// 0004); 0 never does.
    pub bulk_min_events: u64,
}

impl SyncOptions {
    /// `landql sync`'s defaults for a ledger and a database: batches of at most 5 000 events
    /// or 50 ms, the orderer key pinned on first sync, no metrics listener, bulk catch-up
    /// from 100 000 events.
    pub fn new(ledger_url: &str, database_url: &str) -> Self {
        SyncOptions {
            ledger_url: ledger_url.to_string(),
            database_url: database_url.to_string(),
            orderer_key: None,
            batch_max_events: 5000,
            batch_window: Duration::from_millis(50),
            metrics_listen: None,
            bulk_min_events: 100_000,
        }
    }
}

/// Runs the sync worker against the devnet HTTP API at `opts.ledger_url` until `shutdown`
/// completes (`Ok`) or no channel can make progress (`Err`, naming each channel, block and
/// reason). The ledger or PostgreSQL being away is waited out, never an error.
pub async fn run(
    opts: SyncOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SyncError> {
    let ledger =
        HttpLedger::new(&opts.ledger_url, LEDGER_TIMEOUT).map_err(|e| SyncError::Config {
            option: "ledger_url",
            why: e.to_string(),
        })?;
    run_with_ledger(opts, Arc::new(ledger), shutdown).await
}

/// [`run`] against any [`Ledger`] (a Fabric peer later); `opts.ledger_url` is not used.
pub async fn run_with_ledger(
    opts: SyncOptions,
    ledger: Arc<dyn Ledger>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SyncError> {
    let explicit_key = match &opts.orderer_key {
        None => None,
        Some(hex) => {
            let key = ledger::signing::parse_public_key(hex).map_err(|e| SyncError::Config {
                option: "orderer_key",
                why: e.to_string(),
            })?;
            Some((hex.to_ascii_lowercase(), key))
        }
    };
    if let Err(e) = opts
        .database_url
        .parse::<migrations::sqlx::postgres::PgConnectOptions>()
    {
        return Err(SyncError::Config {
            option: "database_url",
            why: e.to_string(),
        });
    }
    let metrics = metrics::Metrics::new();
    if let Some(addr) = opts.metrics_listen {
        metrics::serve(metrics.clone(), addr).await?;
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let signal = tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
        // Keep the sender alive until the worker has seen it.
        std::future::pending::<()>().await;
    });
    let progress = tokio::spawn(metrics::report_progress(metrics.clone()));
    let worker = worker::Worker {
        opts,
        ledger,
        metrics,
        explicit_key,
    };
    let result = worker.run(stop_rx).await;
    signal.abort();
    progress.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Callers spawn the worker (`tokio::spawn(sync::run(…))`), so its future must be `Send`;
    /// this fails to compile when it is not.
    #[test]
    fn the_worker_can_be_spawned() {
        fn spawnable<F: Future + Send + 'static>(_: F) {}
        spawnable(run(
            SyncOptions::new("http://127.0.0.1:1", "postgres://x@/x"),
            std::future::pending(),
        ));
    }
}
