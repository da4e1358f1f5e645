//! Source: one tailer per channel, reading blocks in order from the checkpoint on.
//!
//! Every block is checked with [`Block::check`] against the trusted orderer key, its
//! expected number and the hash of the block before it — the stored checkpoint for the first
//! one, the previous block after that — before it is decoded and handed on. A block that
//! fails halts its channel with a [`ChannelHalt`] naming the block and the reason; nothing
//! from it is passed on. The ledger being away is not a halt: the tailer reconnects with
//! exponential backoff (capped at 5 s) and resumes where it was.

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use futures::StreamExt;
use ledger::client::{Ledger, LedgerError};
use ledger::model::Block;
use ledger::Hash32;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::backoff::Backoff;
use crate::decode::{decode_block, DecodedBlock};
use crate::error::ChannelHalt;
use crate::metrics::{ch, Metrics};

/// What a tailer hands on.
#[derive(Debug)]
pub(crate) enum TailMsg {
    Block(DecodedBlock),
    /// The channel stopped at this block; nothing more comes from it.
    Halt(ChannelHalt),
}

/// Where a tailer reads next: the block number and the hash its `prev_hash` must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub next: u64,
    pub prev: Hash32,
}

impl Cursor {
    /// A channel never applied starts at genesis, whose `prev_hash` is 64 zeros.
    pub const GENESIS: Cursor = Cursor {
        next: 0,
        prev: Hash32::ZERO,
    };
}

/// How often the same block may fail to decode before the channel halts on it: a garbled
/// line can be a transfer accident once, not three times in a row.
const DECODE_ATTEMPTS: u32 = 3;

/// Tails `channel` from `cursor` until `out` is closed or the channel halts.
pub(crate) async fn tail(
    ledger: Arc<dyn Ledger>,
    channel: Arc<str>,
    mut cursor: Cursor,
    trusted: VerifyingKey,
    out: mpsc::Sender<TailMsg>,
    metrics: Arc<Metrics>,
) {
    let mut backoff = Backoff::new(Duration::from_millis(100), crate::backoff::CAP);
    let mut decode_failures = 0u32;
    let errors = metrics.ledger_errors.get_or_create_owned(&ch(&channel));
    loop {
        if out.is_closed() {
            return;
        }
        let mut stream = match ledger.blocks(&channel, cursor.next).await {
            Ok(s) => s,
            Err(e) => {
                errors.inc();
                metrics.reconnect("ledger");
                let delay = backoff.next_delay();
                tracing::warn!(channel = %channel, from = cursor.next, error = %e, retry_in_ms = delay.as_millis() as u64, "cannot open the block stream");
                tokio::time::sleep(delay).await;
                continue;
            }
        };
        tracing::debug!(channel = %channel, from = cursor.next, "block stream open");
        let ended: LedgerError = loop {
            let item = tokio::select! {
                item = stream.next() => item,
                () = out.closed() => return,
            };
            match item {
                None => break LedgerError::Unavailable("block stream ended".into()),
                Some(Err(e)) => break e,
                Some(Ok(block)) => {
                    backoff.reset();
                    decode_failures = 0;
                    // One span per block: received, checked and decoded, handed to the
                    // batcher (its wait for room included).
                    let span = tracing::info_span!(
                        "sync.block",
                        channel = %channel,
                        block = block.header.number
                    );
                    let decoded = check_and_decode(&channel, block, cursor, trusted)
                        .instrument(tracing::info_span!(parent: &span, "sync.decode"))
                        .await;
                    match decoded {
                        Ok(decoded) => {
                            cursor = Cursor {
                                next: decoded.number + 1,
                                prev: decoded.hash,
                            };
                            if out
                                .send(TailMsg::Block(decoded))
                                .instrument(span)
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                        Err(reason) => {
                            halt(&out, &metrics, &channel, cursor.next, reason).await;
                            return;
                        }
                    }
                }
            }
        };
        errors.inc();
        metrics.reconnect("ledger");
        if let LedgerError::Decode(why) = &ended {
            decode_failures += 1;
            if decode_failures >= DECODE_ATTEMPTS {
                let reason =
                    format!("the block does not decode ({decode_failures} attempts): {why}");
                halt(&out, &metrics, &channel, cursor.next, reason).await;
                return;
            }
        }
        let delay = backoff.next_delay();
        tracing::warn!(channel = %channel, next = cursor.next, error = %ended, retry_in_ms = delay.as_millis() as u64, "block stream interrupted; reconnecting");
        tokio::time::sleep(delay).await;
    }
}

async fn halt(
    out: &mpsc::Sender<TailMsg>,
    metrics: &Metrics,
    channel: &str,
    block: u64,
    reason: String,
) {
    let h = ChannelHalt {
        channel: channel.to_string(),
        block,
        reason,
    };
    tracing::error!(channel = %h.channel, block = h.block, reason = %h.reason, "channel halted: block refused, nothing from it is written");
    metrics.set_halted(channel);
    let _ = out.send(TailMsg::Halt(h)).await;
}

/// Checks the block (CPU-bound: hashes every transaction) and decodes it, off the async
/// threads.
async fn check_and_decode(
    channel: &Arc<str>,
    block: Block,
    cursor: Cursor,
    trusted: VerifyingKey,
) -> Result<DecodedBlock, String> {
    let channel = channel.clone();
    let work = tokio::task::spawn_blocking(move || {
        if block.header.channel != *channel {
            return Err(format!(
                "the block belongs to channel {:?}",
                block.header.channel
            ));
        }
        block
            .check(&trusted, cursor.next, &cursor.prev)
            .map_err(|e| e.to_string())?;
        Ok(decode_block(&channel, block))
    });
    match work.await {
        Ok(r) => r,
        Err(e) => Err(format!("checking the block failed: {e}")),
    }
}
