//! Batcher: decoded blocks from every channel → batches, cut by size or by time.
//!
//! A batch is cut when it holds `max_events` events, when `window` has passed since its first
//! block arrived, or at once when a channel halts (so that the good blocks before the refused
//! one are written without waiting). Blocks keep their arrival order, which keeps each
//! channel's commit order; the writer numbers the change log in that order.
//!
//! The channel to the writer holds one batch: while the writer commits batch n, batch n+1
//! waits and batch n+2 fills, so a slow database slows the tailers down instead of filling
//! memory.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::decode::DecodedBlock;
use crate::error::ChannelHalt;
use crate::source::TailMsg;

/// Blocks to be written in one PostgreSQL transaction.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// In arrival order; within a channel, in block order.
    pub blocks: Vec<DecodedBlock>,
    /// Changes and failures in `blocks`.
    pub events: usize,
    /// Channels that halted after the last of their blocks in `blocks`.
    pub halts: Vec<ChannelHalt>,
}

impl Batch {
    fn push(&mut self, b: DecodedBlock) {
        self.events += b.changes.len() + b.failures.len();
        self.blocks.push(b);
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty() && self.halts.is_empty()
    }
}

/// Runs until `input` closes (every tailer gone) or `output` does (the writer gone).
pub(crate) async fn run(
    mut input: mpsc::Receiver<TailMsg>,
    output: mpsc::Sender<Batch>,
    max_events: usize,
    window: Duration,
) {
    let mut batch = Batch::default();
    let mut deadline: Option<Instant> = None;
    loop {
        let msg = match deadline {
            Some(at) => tokio::select! {
                m = input.recv() => m,
                () = tokio::time::sleep_until(at) => {
                    if output.send(std::mem::take(&mut batch)).await.is_err() {
                        return;
                    }
                    deadline = None;
                    continue;
                }
            },
            None => input.recv().await,
        };
        let flush = match msg {
            None => {
                if !batch.is_empty() {
                    let _ = output.send(batch).await;
                }
                return;
            }
            Some(TailMsg::Block(b)) => {
                batch.push(b);
                deadline.get_or_insert_with(|| Instant::now() + window);
                batch.events >= max_events
            }
            Some(TailMsg::Halt(h)) => {
                batch.halts.push(h);
                true
            }
        };
        if flush {
            if output.send(std::mem::take(&mut batch)).await.is_err() {
                return;
            }
            deadline = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn block(n: u64, events: usize) -> DecodedBlock {
        let ch: Arc<str> = "c".into();
        DecodedBlock {
            channel: ch.clone(),
            number: n,
            hash: ledger::Hash32::ZERO,
            time_ms: 0,
            changes: Vec::new(),
            invalid: 0,
            failures: (0..events)
                .map(|_| crate::decode::Failure {
                    channel: ch.clone(),
                    block: n,
                    tx_index: None,
                    tx_id: None,
                    error: String::new(),
                    raw: None,
                })
                .collect(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn cuts_by_size_by_window_and_on_halt() {
        let (tx, rx) = mpsc::channel(16);
        let (out_tx, mut out) = mpsc::channel(16);
        let task = tokio::spawn(run(rx, out_tx, 10, Duration::from_millis(50)));
        tx.send(TailMsg::Block(block(0, 6))).await.unwrap();
        tx.send(TailMsg::Block(block(1, 6))).await.unwrap();
        let b = out.recv().await.unwrap();
        assert_eq!((b.blocks.len(), b.events), (2, 12));

        let start = Instant::now();
        tx.send(TailMsg::Block(block(2, 1))).await.unwrap();
        let b = out.recv().await.unwrap();
        assert_eq!(b.blocks.len(), 1);
        assert!(start.elapsed() >= Duration::from_millis(50));

        tx.send(TailMsg::Block(block(3, 1))).await.unwrap();
        tx.send(TailMsg::Halt(ChannelHalt {
            channel: "c".into(),
            block: 4,
            reason: "bad".into(),
        }))
        .await
        .unwrap();
        let b = out.recv().await.unwrap();
        assert_eq!((b.blocks.len(), b.halts.len()), (1, 1));
        drop(tx);
        task.await.unwrap();
        assert!(out.recv().await.is_none());
    }
}
