//! A running devnet node: the orderer thread that batches proposals into blocks, and the
//! read side (records, history, blocks, proofs) that the HTTP API serves.
//!
//! Proposals from all callers go into one queue. The orderer takes the first, keeps
//! collecting until `max_txs` are pending or `batch_timeout` has passed, then cuts one block
//! per channel (more if a channel has over `max_txs`), syncs each to disk and only then
//! answers the callers and wakes block streams. Concurrent proposals therefore share blocks
//! and fsyncs instead of paying one each.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::Instant;

use tokio::sync::{oneshot, watch};

use crate::chain::{now_ms, Chains, DevnetConfig, DevnetError, OpenReport};
use crate::metrics::LedgerMetrics;
use crate::state::{tx_id, ChannelIx, Entry};
use ledger::canonical::Hash32;
use ledger::model::{
    Block, ChainInfo, ChannelInfo, Proof, Proposal, Receipt, RecordVersion, Version,
};

/// Why a submission was not committed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubmitError {
    #[error("unknown channel {0:?}")]
    UnknownChannel(String),
    #[error("proposal {index} cannot be hashed: {why}")]
    BadProposal { index: usize, why: String },
    #[error("the node has stopped accepting transactions: {0}")]
    Stopped(String),
}

struct Submission {
    channel: ChannelIx,
    /// When the node received it (commit latency).
    received: Instant,
    items: Vec<(Hash32, Proposal)>,
    reply: oneshot::Sender<Result<Vec<Receipt>, SubmitError>>,
}

struct Shared {
    chains: RwLock<Chains>,
    names: Vec<String>,
    public_key: String,
    heights: Vec<watch::Sender<u64>>,
    queue: Mutex<Option<mpsc::Sender<Submission>>>,
    failed: AtomicBool,
    metrics: LedgerMetrics,
}

/// A handle on a running node; clones share it.
#[derive(Clone)]
pub struct Node {
    shared: Arc<Shared>,
}

impl Node {
    /// Opens the data directory (see [`Chains::open`]) and starts the orderer thread.
    pub fn start(dir: &Path, cfg: DevnetConfig) -> Result<(Self, OpenReport), DevnetError> {
        let (chains, report) = Chains::open(dir, &cfg)?;
        let names = chains.channel_names();
        let metrics_names = names.clone();
        let heights = chains
            .channels
            .iter()
            .map(|c| watch::channel(c.height()).0)
            .collect();
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            public_key: chains.public_key_hex(),
            chains: RwLock::new(chains),
            names,
            heights,
            queue: Mutex::new(Some(tx)),
            failed: AtomicBool::new(false),
            metrics: LedgerMetrics::new(&metrics_names),
        });
        let orderer = shared.clone();
        std::thread::Builder::new()
            .name("orderer".into())
            .spawn(move || run_orderer(&orderer, rx, &cfg))
            .map_err(|source| DevnetError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        Ok((Self { shared }, report))
    }

    /// Stops taking proposals; the orderer finishes what it has and exits.
    pub fn stop(&self) {
        if let Ok(mut q) = self.shared.queue.lock() {
            q.take();
        }
    }

    fn chains(&self) -> RwLockReadGuard<'_, Chains> {
        // A poisoned lock means a panic mid-commit elsewhere; the data on disk is still
        // sound and the state was only merged after a sync, so reading on is safe.
        self.shared
            .chains
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn channel_names(&self) -> &[String] {
        &self.shared.names
    }

    pub fn orderer_public_key(&self) -> &str {
        &self.shared.public_key
    }

    fn channel_ix(&self, name: &str) -> Option<ChannelIx> {
        self.shared
            .names
            .iter()
            .position(|n| n == name)
            .map(|i| i as ChannelIx)
    }

    /// Proposes to `channel` and waits until every proposal is committed (valid or not).
    /// A proposal already committed is answered with its original receipt.
    pub async fn submit(
        &self,
        channel: &str,
        proposals: Vec<Proposal>,
    ) -> Result<Vec<Receipt>, SubmitError> {
        let ix = self
            .channel_ix(channel)
            .ok_or_else(|| SubmitError::UnknownChannel(channel.to_string()))?;
        let mut items = Vec::with_capacity(proposals.len());
        for (index, p) in proposals.into_iter().enumerate() {
            let id = tx_id(&p, channel).map_err(|e| SubmitError::BadProposal {
                index,
                why: e.to_string(),
            })?;
            items.push((id, p));
        }
        let (reply, answer) = oneshot::channel();
        let n = items.len();
        self.shared.metrics.submitted(channel, n);
        let sent = match self.shared.queue.lock() {
            Ok(q) => q.as_ref().map(|q| {
                q.send(Submission {
                    channel: ix,
                    received: Instant::now(),
                    items,
                    reply,
                })
                .is_ok()
            }),
            Err(_) => None,
        };
        if sent != Some(true) {
            self.shared.metrics.answered(channel, n);
            return Err(SubmitError::Stopped("the node is shutting down".into()));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(SubmitError::Stopped("the orderer has stopped".into())))
    }

    /// The node's metrics as the Accept header `accept` asks: (content type, body) (see
    /// `metrics`).
    pub fn metrics(&self, accept: Option<&str>) -> (&'static str, String) {
        let heights: Vec<(String, u64)> = {
            let chains = self.chains();
            self.shared
                .names
                .iter()
                .cloned()
                .zip(chains.channels.iter().map(|c| c.height()))
                .collect()
        };
        self.shared.metrics.render(heights.into_iter(), accept)
    }

    pub fn info(&self) -> ChainInfo {
        let chains = self.chains();
        ChainInfo {
            channels: chains
                .channels
                .iter()
                .map(|c| ChannelInfo {
                    name: c.name.clone(),
                    height: c.height(),
                    tip_hash: c.tip_hash,
                    tip_time: c.tip_time,
                })
                .collect(),
            orderer_public_key: self.shared.public_key.clone(),
        }
    }

    /// Follows the height of a channel (number of blocks); `None` for an unknown channel.
    pub fn watch_height(&self, channel: &str) -> Option<watch::Receiver<u64>> {
        let ix = self.channel_ix(channel)?;
        Some(self.shared.heights[ix as usize].subscribe())
    }

    /// The stored JSON bytes of a block. `Ok(None)` when the block does not exist (yet).
    pub fn block_bytes(&self, channel: &str, number: u64) -> Result<Option<Vec<u8>>, SubmitError> {
        let ix = self
            .channel_ix(channel)
            .ok_or_else(|| SubmitError::UnknownChannel(channel.to_string()))?;
        let Some(at) = self.chains().block_ref(ix, number) else {
            return Ok(None);
        };
        at.read()
            .map(Some)
            .map_err(|e| SubmitError::Stopped(format!("reading block {number}: {e}")))
    }

    fn version_of(&self, e: &Entry) -> RecordVersion {
        RecordVersion {
            record: serde_json::from_str(&e.text()).unwrap_or_default(),
            record_hash: e.hash(),
            version: self.version_of_loc(e),
        }
    }

    /// The current value under `key` as its stored canonical JSON text, with its hash and
    /// version — for answers that pass the record through without re-encoding it.
    pub fn record_raw(&self, key: &str) -> Option<(Arc<str>, Hash32, Version)> {
        let chains = self.chains();
        let e = chains.state.current(key)?;
        let v = self.version_of_loc(e);
        Some((e.text(), e.hash(), v))
    }

    fn version_of_loc(&self, e: &Entry) -> Version {
        Version {
            channel: self.shared.names[e.loc.channel as usize].clone(),
            block_number: e.loc.block,
            tx_index: u64::from(e.loc.tx_index),
            tx_id: e.loc.tx_id,
        }
    }

    /// The current value under `key` (a property ID as printed, or a `DOC:` key).
    pub fn record(&self, key: &str) -> Option<RecordVersion> {
        let chains = self.chains();
        chains.state.current(key).map(|e| self.version_of(e))
    }

    /// Every version of the value under `key`, oldest first.
    pub fn history(&self, key: &str) -> Vec<RecordVersion> {
        let chains = self.chains();
        chains
            .state
            .values
            .get(key)
            .map(|v| v.iter().map(|e| self.version_of(e)).collect())
            .unwrap_or_default()
    }

    /// The receipt of a committed transaction.
    pub fn receipt(&self, tx_id: &Hash32) -> Option<Receipt> {
        self.chains().state.txs.get(tx_id).map(|t| t.receipt())
    }

    /// The proof document of a committed transaction.
    pub fn proof(&self, tx_id: &Hash32) -> Result<Option<Proof>, SubmitError> {
        let at = {
            let chains = self.chains();
            let Some(info) = chains.state.txs.get(tx_id) else {
                return Ok(None);
            };
            let loc = info.loc;
            chains
                .block_ref(loc.channel, loc.block)
                .map(|r| (r, loc.tx_index))
        };
        let Some((at, tx_index)) = at else {
            return Ok(None);
        };
        let broken =
            |why: String| SubmitError::Stopped(format!("reading a block for a proof: {why}"));
        let bytes = at.read().map_err(|e| broken(e.to_string()))?;
        let block: Block = serde_json::from_slice(&bytes).map_err(|e| broken(e.to_string()))?;
        block
            .proof(tx_index as usize)
            .map_err(|e| broken(e.to_string()))
    }
}

/// One proposal waiting for its block: which submission and slot its receipt goes to.
struct Pending {
    sub: usize,
    slot: usize,
    tx_id: Hash32,
    proposal: Proposal,
}

fn run_orderer(shared: &Shared, rx: mpsc::Receiver<Submission>, cfg: &DevnetConfig) {
    let max_txs = cfg.max_txs.max(1);
    while let Ok(first) = rx.recv() {
        let deadline = Instant::now() + cfg.batch_timeout;
        let mut count = first.items.len();
        let mut batch = vec![first];
        while count < max_txs {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(s) => {
                    count += s.items.len();
                    batch.push(s);
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        if shared.failed.load(Ordering::Acquire) {
            for s in batch {
                shared
                    .metrics
                    .answered(&shared.names[s.channel as usize], s.items.len());
                let _ = s.reply.send(Err(SubmitError::Stopped(
                    "an earlier block could not be written".into(),
                )));
            }
            continue;
        }
        if let Err(e) = order_batch(shared, batch, max_txs) {
            tracing::error!(error = %e, "block could not be committed; the node stops writing");
            shared.failed.store(true, Ordering::Release);
        }
    }
}

fn order_batch(shared: &Shared, batch: Vec<Submission>, max_txs: usize) -> Result<(), DevnetError> {
    let mut receipts: Vec<Vec<Option<Receipt>>> =
        batch.iter().map(|s| vec![None; s.items.len()]).collect();
    let mut replies = Vec::with_capacity(batch.len());
    // Per submission: its channel, size and arrival, for the metrics.
    let mut arrivals = Vec::with_capacity(batch.len());
    // Per channel, in arrival order; a tx_id seen before waits for its first copy.
    let mut queues: HashMap<ChannelIx, Vec<Pending>> = HashMap::new();
    let mut copies: Vec<(usize, usize, Hash32)> = Vec::new();
    {
        let chains = shared.chains.read().unwrap_or_else(|p| p.into_inner());
        let mut seen = std::collections::HashSet::new();
        for (sub, s) in batch.into_iter().enumerate() {
            arrivals.push((s.channel, s.items.len(), s.received));
            for (slot, (tx_id, proposal)) in s.items.into_iter().enumerate() {
                if let Some(info) = chains.state.txs.get(&tx_id) {
                    receipts[sub][slot] = Some(info.receipt());
                } else if !seen.insert(tx_id) {
                    copies.push((sub, slot, tx_id));
                } else {
                    queues.entry(s.channel).or_default().push(Pending {
                        sub,
                        slot,
                        tx_id,
                        proposal,
                    });
                }
            }
            replies.push(s.reply);
        }
    }
    let mut by_tx: HashMap<Hash32, Receipt> = HashMap::new();
    let mut failure = None;
    let mut channels: Vec<_> = queues.into_iter().collect();
    channels.sort_by_key(|(ch, _)| *ch);
    'outer: for (ch, queue) in channels {
        let mut rest = queue.into_iter().peekable();
        while rest.peek().is_some() {
            let chunk: Vec<Pending> = rest.by_ref().take(max_txs).collect();
            let items = chunk
                .iter()
                .map(|p| (p.tx_id, p.proposal.clone()))
                .collect();
            let mut chains = shared.chains.write().unwrap_or_else(|p| p.into_inner());
            match chains.commit(ch, now_ms(), items) {
                Ok((rs, _block)) => {
                    let height = chains.channels[ch as usize].height();
                    drop(chains);
                    shared.heights[ch as usize].send_replace(height);
                    shared.metrics.block(
                        ch as usize,
                        &shared.names[ch as usize],
                        chunk.iter().zip(&rs).map(|(p, r)| {
                            (p.proposal.kind, r.validation, arrivals[p.sub].2.elapsed())
                        }),
                    );
                    for (p, r) in chunk.iter().zip(rs) {
                        by_tx.insert(p.tx_id, r.clone());
                        receipts[p.sub][p.slot] = Some(r);
                    }
                }
                Err(e) => {
                    failure = Some(e);
                    break 'outer;
                }
            }
        }
    }
    for (sub, slot, tx_id) in copies {
        receipts[sub][slot] = by_tx.get(&tx_id).cloned();
    }
    for &(ch, n, _) in &arrivals {
        shared.metrics.answered(&shared.names[ch as usize], n);
    }
    for (reply, rs) in replies.into_iter().zip(receipts) {
        let answer = match rs.into_iter().collect::<Option<Vec<_>>>() {
            Some(all) => Ok(all),
            None => Err(SubmitError::Stopped(
                "a block could not be written to disk".into(),
            )),
        };
        let _ = reply.send(answer);
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
