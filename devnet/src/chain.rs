//! The devnet's chains: one block log per channel, the world state rebuilt from them, and
//! the one operation that changes them — committing a block.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rayon::prelude::*;
use serde_json::value::RawValue;

use crate::log::{BlockLog, BlockRef, Tail};
use crate::state::{
    decode_committed, BlockCtx, Changes, ChannelIx, Decoded, Executed, Overlay, Proposed, Routing,
    Stored, WorldState,
};
use ledger::block::{seal_body, seal_body_into, Sealed, TxBody};
use ledger::canonical::{CanonicalError, Hash32};
use ledger::model::{channels, Block, BlockHeader, Proposal, Receipt, Signature};
use ledger::signing::{KeyError, OrdererKey};

/// How a devnet node is set up. The channel list follows from it.
#[derive(Debug, Clone)]
pub struct DevnetConfig {
    /// States that get their own regional channel (`land-registry-region-<st>`); their
    /// records go there instead of the primary channel.
    pub regional_states: Vec<String>,
    /// Blocks are cut at this many transactions…
    pub max_txs: usize,
    /// …or this long after the first pending proposal, whichever comes first.
    pub batch_timeout: Duration,
    /// Shards per (state, year) for new property IDs.
    pub shards: u8,
}

impl Default for DevnetConfig {
    fn default() -> Self {
        Self {
            regional_states: Vec::new(),
            max_txs: 500,
            batch_timeout: Duration::from_millis(50),
            shards: 10,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    #[error("ledger data directory {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    #[error("unknown channel {0:?}")]
    UnknownChannel(String),
    #[error("the node stopped writing after a storage failure; restart it")]
    Failed,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DevnetError + '_ {
    move |source| DevnetError::Io {
        path: path.display().to_string(),
        source,
    }
}

pub(crate) struct Channel {
    pub name: String,
    pub log: BlockLog,
    pub tip_hash: Hash32,
    pub tip_time: i64,
}

impl Channel {
    pub fn height(&self) -> u64 {
        self.log.len()
    }

    /// Seals `executed` as block `number` of this channel, after its current tip, encoding
    /// the transactions of a large block on rayon's pool (the live node; the seeder's
    /// sealer thread uses [`Channel::seal_into`]).
    pub(crate) fn seal(
        &self,
        key: &OrdererKey,
        number: u64,
        timestamp: i64,
        executed: &[Executed],
    ) -> Result<Sealed, CanonicalError> {
        /// Transactions per rayon task when encoding in parallel.
        const CHUNK: usize = 64;
        let body = if executed.len() > CHUNK {
            let parts = executed
                .par_chunks(CHUNK)
                .map(encode_txs)
                .collect::<Result<Vec<_>, _>>()?;
            let mut body = TxBody::with_capacity(executed.len(), 0);
            for part in parts {
                body.append(part);
            }
            body
        } else {
            encode_txs(executed)?
        };
        seal_body(&self.name, number, self.tip_hash, timestamp, &body, key)
    }

    /// [`Channel::seal`] on one thread into buffers the caller keeps across blocks (the
    /// seeder's sealer): `body` and `json` are overwritten; `json` receives the block.
    pub(crate) fn seal_into(
        &self,
        key: &OrdererKey,
        number: u64,
        timestamp: i64,
        executed: &[Executed],
        body: &mut TxBody,
        json: &mut Vec<u8>,
    ) -> Result<Hash32, CanonicalError> {
        body.clear();
        for e in executed {
            body.push_with(|out| e.encode(out))?;
        }
        let (_, header_hash, _) = seal_body_into(
            &self.name,
            number,
            self.tip_hash,
            timestamp,
            body,
            key,
            json,
            false,
        )?;
        Ok(header_hash)
    }

    /// Appends a sealed block's bytes to the log (and syncs them when `durable`).
    pub(crate) fn append(&mut self, bytes: &[u8], durable: bool) -> Result<(), DevnetError> {
        let path = self.log.path().to_path_buf();
        self.log.append(bytes, durable).map_err(io_err(&path))
    }
}

/// The canonical JSON of some executed transactions, one after another.
fn encode_txs(executed: &[Executed]) -> Result<TxBody, CanonicalError> {
    let guess = executed
        .iter()
        .map(|e| {
            512 + e.write.as_ref().map_or(0, |w| match &w.1 {
                Stored::Canonical { text, .. } => 2 * text.len(),
                Stored::Record(_) => 2048,
            })
        })
        .sum();
    let mut body = TxBody::with_capacity(executed.len(), guess);
    for e in executed {
        body.push_with(|out| e.encode(out))?;
    }
    Ok(body)
}

/// Executes `proposals` as block `number` of `channel` at `timestamp` against `state`,
/// which it does not change: the block's changes come back to be merged once the block is
/// safe. The chaincode step of both the live node ([`Chains::build`]) and the seeder.
pub(crate) fn execute_block(
    state: &WorldState,
    routing: &Routing,
    channel: ChannelIx,
    number: u64,
    timestamp: i64,
    proposals: impl IntoIterator<Item = Proposed>,
) -> Result<(Vec<Executed>, Changes), CanonicalError> {
    let ctx = BlockCtx {
        channel,
        number,
        timestamp,
        routing,
    };
    let mut overlay = Overlay::new(state);
    let proposals = proposals.into_iter();
    // Sized up front: an `Executed` is large, and growing the vector moved each one again.
    let mut executed = Vec::with_capacity(proposals.size_hint().0);
    for (i, p) in proposals.enumerate() {
        let ex = overlay.execute(&ctx, i as u32, p)?;
        if let Some(why) = &ex.why {
            tracing::debug!(tx_id = %ex.tx_id, code = ex.validation.as_str(), reason = %why, "transaction invalid");
        }
        executed.push(ex);
    }
    Ok((executed, overlay.into_changes()))
}

/// A block executed and sealed but not yet written: see [`Chains::build`].
pub(crate) struct Built {
    pub receipts: Vec<Receipt>,
    pub block: Block,
    /// The block's JSON, as it goes into the log.
    pub bytes: Vec<u8>,
    pub changes: Changes,
}

/// Replays block `n` of channel `ix` (named `name`), read back from its log, into `state`:
/// it must follow the block whose header hash and time are `tip`, which it then becomes.
/// Returns its number of transactions. Opening a data directory runs every block through
/// this, and so does the block fuzz target.
///
/// Only the header is parsed whole; each transaction is decoded from its own text
/// ([`decode_committed`]), on rayon's pool for a full block, and applied in block order.
pub(crate) fn replay_block(
    state: &mut WorldState,
    ix: ChannelIx,
    name: &str,
    n: u64,
    tip: &mut (Hash32, i64),
    bytes: &[u8],
) -> Result<usize, String> {
    /// A stored block with its transactions left as raw text.
    #[derive(serde::Deserialize)]
    struct Stored<'a> {
        header: BlockHeader,
        header_hash: Hash32,
        #[allow(dead_code)] // required, as in a Block; checked by readers, not here
        signature: Signature,
        #[serde(borrow)]
        txs: Vec<&'a RawValue>,
    }
    /// Below this many transactions a block is decoded on the calling thread.
    const PARALLEL: usize = 32;
    let b: Stored<'_> = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if b.header.number != n || b.header.prev_hash != tip.0 || b.header.channel != name {
        return Err(format!(
            "block {} of {} does not follow block {} (hash {})",
            b.header.number,
            b.header.channel,
            n.wrapping_sub(1),
            tip.0
        ));
    }
    let decode = |raw: &&RawValue| decode_committed(raw.get());
    let decoded: Vec<Decoded> = if b.txs.len() < PARALLEL {
        b.txs.iter().map(decode).collect::<Result<_, _>>()?
    } else {
        b.txs.par_iter().map(decode).collect::<Result<_, _>>()?
    };
    let count = decoded.len();
    for (i, tx) in decoded.into_iter().enumerate() {
        state.apply_decoded(ix, n, i as u32, tx);
    }
    *tip = (b.header_hash, b.header.timestamp);
    Ok(count)
}

/// All channels of a data directory and the state built from them.
pub struct Chains {
    pub(crate) key: OrdererKey,
    pub(crate) channels: Vec<Channel>,
    pub(crate) state: WorldState,
    pub(crate) routing: Routing,
    pub(crate) dir: PathBuf,
    /// Sync each block before it counts as committed (the live node). The offline seeder
    /// turns this off and syncs once at the end: nobody is told of its blocks before then.
    pub(crate) durable: bool,
}

/// What opening a data directory found and did.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    pub blocks: u64,
    pub transactions: u64,
    /// (channel, bytes cut, why) for each log whose torn tail was cut off.
    pub truncated: Vec<(String, u64, String)>,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Chains {
    /// Opens the data directory, creating it, the orderer key and each channel's genesis
    /// block as needed, cutting torn log tails, and rebuilding the world state.
    pub fn open(dir: &Path, cfg: &DevnetConfig) -> Result<(Self, OpenReport), DevnetError> {
        Self::open_at(dir, cfg, now_ms())
    }

    /// [`Chains::open`], with `genesis_time` as the time of any genesis block it creates —
    /// the offline seeder builds a chain whose history starts in the past.
    pub fn open_at(
        dir: &Path,
        cfg: &DevnetConfig,
        genesis_time: i64,
    ) -> Result<(Self, OpenReport), DevnetError> {
        let chan_dir = dir.join("channels");
        fs::create_dir_all(&chan_dir).map_err(io_err(&chan_dir))?;
        let key = OrdererKey::load_or_create(dir)?;
        let mut names = vec![channels::PRIMARY.to_string(), channels::DOCS.to_string()];
        let mut regional = HashMap::new();
        let mut states = cfg.regional_states.clone();
        states.sort();
        states.dedup();
        for st in states {
            let st = st.to_ascii_uppercase();
            regional.insert(st.clone(), names.len() as ChannelIx);
            names.push(channels::regional(&st));
        }
        let routing = Routing {
            primary: 0,
            docs: 1,
            regional,
            shards: cfg.shards.clamp(1, 100),
        };
        let mut state = WorldState::default();
        let mut report = OpenReport::default();
        let mut chans = Vec::new();
        for (ix, name) in names.into_iter().enumerate() {
            let path = chan_dir.join(format!("{name}.log"));
            let mut tip = (Hash32::ZERO, 0i64);
            let (log, tail) = BlockLog::open(&path, |n, bytes| {
                report.transactions +=
                    replay_block(&mut state, ix as ChannelIx, &name, n, &mut tip, bytes)? as u64;
                Ok(())
            })
            .map_err(io_err(&path))?;
            if let Tail::Truncated { cut, why, .. } = tail {
                tracing::warn!(channel = %name, cut_bytes = cut, reason = %why, "cut a torn tail off the block log");
                report.truncated.push((name.clone(), cut, why));
            }
            report.blocks += log.len();
            chans.push(Channel {
                name,
                log,
                tip_hash: tip.0,
                tip_time: tip.1,
            });
        }
        let mut chains = Self {
            key,
            channels: chans,
            state,
            routing,
            dir: dir.to_path_buf(),
            durable: true,
        };
        for ix in 0..chains.channels.len() {
            if chains.channels[ix].height() == 0 {
                chains.commit(ix as ChannelIx, genesis_time, Vec::new())?;
            }
        }
        Ok((chains, report))
    }

    pub fn channel_index(&self, name: &str) -> Option<ChannelIx> {
        self.channels
            .iter()
            .position(|c| c.name == name)
            .map(|i| i as ChannelIx)
    }

    pub fn channel_names(&self) -> Vec<String> {
        self.channels.iter().map(|c| c.name.clone()).collect()
    }

    pub fn public_key_hex(&self) -> String {
        self.key.public_hex()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Executes `proposals` (already deduplicated by tx_id) as the next block of `channel`,
    /// appends it to the log, syncs, and only then merges it into the world state.
    /// Returns the receipts and the block.
    pub(crate) fn commit(
        &mut self,
        channel: ChannelIx,
        timestamp: i64,
        proposals: Vec<(Hash32, Proposal)>,
    ) -> Result<(Vec<Receipt>, Block), DevnetError> {
        let built = self.build(channel, timestamp, proposals)?;
        let ch = &mut self.channels[channel as usize];
        ch.append(&built.bytes, self.durable)?;
        ch.tip_hash = built.block.header_hash;
        ch.tip_time = built.block.header.timestamp;
        built.changes.merge_into(&mut self.state);
        Ok((built.receipts, built.block))
    }

    /// The first half of [`Chains::commit`]: executes `proposals` as the next block of
    /// `channel` and seals it, touching neither the log nor the state. Kept apart so that
    /// the proposal fuzz target runs exactly the node's path without growing a log.
    pub(crate) fn build(
        &self,
        channel: ChannelIx,
        timestamp: i64,
        proposals: Vec<(Hash32, Proposal)>,
    ) -> Result<Built, DevnetError> {
        let ch = &self.channels[channel as usize];
        let number = ch.height();
        let timestamp = timestamp.max(ch.tip_time);
        let (executed, changes) = execute_block(
            &self.state,
            &self.routing,
            channel,
            number,
            timestamp,
            proposals.into_iter().map(Proposed::from),
        )?;
        let sealed = ch.seal(&self.key, number, timestamp, &executed)?;
        let mut txs = Vec::with_capacity(executed.len());
        let mut receipts = Vec::with_capacity(executed.len());
        for ex in executed {
            receipts.push(ex.receipt.clone());
            txs.push(ex.into_transaction()?);
        }
        let block = Block {
            header: sealed.header,
            header_hash: sealed.header_hash,
            signature: sealed.signature,
            txs,
        };
        Ok(Built {
            receipts,
            block,
            bytes: sealed.bytes,
            changes,
        })
    }

    /// Syncs every channel's log to disk.
    pub fn sync_all(&self) -> Result<(), DevnetError> {
        for c in &self.channels {
            c.log.sync().map_err(io_err(c.log.path()))?;
        }
        Ok(())
    }

    pub(crate) fn block_ref(&self, channel: ChannelIx, number: u64) -> Option<BlockRef> {
        self.channels.get(channel as usize)?.log.block(number)
    }
}

#[cfg(test)]
mod tests;
