//! How far behind the chain the replica is, per channel.
//!
//! Two inputs: the replica's indexed block (the sync worker's checkpoint, re-read whenever the
//! change-log listener hears a NOTIFY) and the chain height (polled from `Ledger::info`). The
//! lag in *time* is measured from when this node first saw the oldest block the replica has
//! not applied yet — not from when the replica last moved, which would call a replica that
//! keeps up with a busy chain "behind for minutes".

use std::collections::{BTreeMap, VecDeque};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// What is known about one channel.
#[derive(Debug, Clone, Default)]
struct ChannelState {
    /// The last block the replica applied (checkpoint), if any.
    indexed_block: Option<u64>,
    /// When the checkpoint was written.
    indexed_at: Option<DateTime<Utc>>,
    /// Number of blocks on the chain (tip = height - 1), as last polled.
    chain_height: Option<u64>,
    /// Heights in the order this node first saw them, oldest first, pruned to those above the
    /// replica: the front entry says since when the replica has been missing a block.
    seen: VecDeque<(u64, Instant)>,
}

/// A channel's freshness at one moment.
#[derive(Debug, Clone)]
pub(crate) struct ChannelView {
    pub channel: String,
    pub indexed_block: Option<u64>,
    pub indexed_at: Option<DateTime<Utc>>,
    pub chain_height: Option<u64>,
    /// Blocks on the chain that the replica has not applied; `None` when the chain height is
    /// unknown (ledger unreachable).
    pub lag_blocks: Option<u64>,
    pub lag_seconds: Option<f64>,
    /// Outside the freshness bound, or not knowable because the ledger is unreachable.
    pub stale: bool,
}

pub(crate) struct Freshness {
    channels: RwLock<BTreeMap<String, ChannelState>>,
    /// When `Ledger::info` last answered.
    chain_ok_at: RwLock<Option<Instant>>,
    bound_blocks: u64,
    bound_time: Duration,
    /// How long without an answer from the ledger before the chain height counts as unknown.
    chain_expiry: Duration,
}

impl Freshness {
    pub fn new(bound_blocks: u64, bound_time: Duration, chain_expiry: Duration) -> Self {
        Freshness {
            channels: RwLock::default(),
            chain_ok_at: RwLock::new(None),
            bound_blocks,
            bound_time,
            chain_expiry,
        }
    }

    /// The replica's checkpoints, as just read: (channel, block, written at).
    pub fn set_checkpoints(&self, rows: &[(String, i64, DateTime<Utc>)]) {
        let mut channels = self.channels.write().unwrap_or_else(|p| p.into_inner());
        for (name, block, at) in rows {
            let c = channels.entry(name.clone()).or_default();
            let block = u64::try_from(*block).unwrap_or(0);
            c.indexed_block = Some(block);
            c.indexed_at = Some(*at);
            // Heights up to block + 1 hold nothing the replica is missing.
            while c.seen.front().is_some_and(|(h, _)| *h < block + 2) {
                c.seen.pop_front();
            }
        }
    }

    /// The chain's heights, as just polled.
    pub fn set_chain(&self, heights: &[(String, u64)]) {
        let now = Instant::now();
        let mut channels = self.channels.write().unwrap_or_else(|p| p.into_inner());
        for (name, height) in heights {
            let c = channels.entry(name.clone()).or_default();
            c.chain_height = Some(*height);
            let floor = c.indexed_block.map_or(1, |b| b + 2);
            let newest = c.seen.back().map_or(0, |(h, _)| *h);
            if *height >= floor && *height > newest {
                c.seen.push_back((*height, now));
                if c.seen.len() > 4096 {
                    c.seen.pop_front();
                }
            }
        }
        drop(channels);
        *self.chain_ok_at.write().unwrap_or_else(|p| p.into_inner()) = Some(now);
    }

    /// Whether the ledger answered recently enough for its heights to count.
    pub fn chain_known(&self) -> bool {
        self.chain_ok_at
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|t| t.elapsed() <= self.chain_expiry)
    }

    /// Every channel known from either side.
    pub fn all(&self) -> Vec<ChannelView> {
        let names: Vec<String> = self
            .channels
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        names.iter().map(|n| self.channel(n)).collect()
    }

    /// One channel's freshness now (stale if nothing is known about it).
    pub fn channel(&self, name: &str) -> ChannelView {
        let known = self.chain_known();
        let channels = self.channels.read().unwrap_or_else(|p| p.into_inner());
        let c = channels.get(name).cloned().unwrap_or_default();
        drop(channels);
        let chain_height = if known { c.chain_height } else { None };
        let lag_blocks = chain_height.map(|h| {
            let applied = c.indexed_block.map_or(0, |b| b + 1);
            h.saturating_sub(applied)
        });
        let lag_seconds = lag_blocks.map(|lag| {
            if lag == 0 {
                0.0
            } else {
                c.seen
                    .front()
                    .map_or(0.0, |(_, t)| t.elapsed().as_secs_f64())
            }
        });
        let stale = match (lag_blocks, lag_seconds) {
            (Some(b), Some(s)) => b > self.bound_blocks || s > self.bound_time.as_secs_f64(),
            _ => true,
        };
        ChannelView {
            channel: name.to_string(),
            indexed_block: c.indexed_block,
            indexed_at: c.indexed_at,
            chain_height,
            lag_blocks,
            lag_seconds,
            stale,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> Freshness {
        Freshness::new(10, Duration::from_secs(5), Duration::from_secs(60))
    }

    #[test]
    fn unknown_chain_is_stale() {
        let f = fresh();
        f.set_checkpoints(&[("primary".into(), 4, Utc::now())]);
        let v = f.channel("primary");
        assert_eq!(v.indexed_block, Some(4));
        assert_eq!(v.chain_height, None);
        assert!(v.stale);
    }

    #[test]
    fn caught_up_is_fresh_and_lag_counts_blocks() {
        let f = fresh();
        f.set_checkpoints(&[("primary".into(), 4, Utc::now())]);
        f.set_chain(&[("primary".into(), 5)]);
        let v = f.channel("primary");
        assert_eq!((v.lag_blocks, v.stale), (Some(0), false));
        assert_eq!(v.lag_seconds, Some(0.0));

        f.set_chain(&[("primary".into(), 8)]);
        let v = f.channel("primary");
        assert_eq!((v.lag_blocks, v.stale), (Some(3), false));

        f.set_chain(&[("primary".into(), 16)]);
        assert!(
            f.channel("primary").stale,
            "11 blocks behind is past the bound of 10"
        );

        f.set_checkpoints(&[("primary".into(), 15, Utc::now())]);
        let v = f.channel("primary");
        assert_eq!((v.lag_blocks, v.stale), (Some(0), false));
    }

    #[test]
    fn lag_in_time_runs_from_the_oldest_missing_block() {
        let f = Freshness::new(10, Duration::from_millis(30), Duration::from_secs(60));
        f.set_checkpoints(&[("primary".into(), 0, Utc::now())]);
        f.set_chain(&[("primary".into(), 2)]);
        std::thread::sleep(Duration::from_millis(40));
        // A newer block does not reset the clock of the older missing one.
        f.set_chain(&[("primary".into(), 3)]);
        let v = f.channel("primary");
        assert!(v.lag_seconds.unwrap() >= 0.04, "{v:?}");
        assert!(v.stale);
        // Applying block 1 leaves block 2 missing, first seen just now.
        f.set_checkpoints(&[("primary".into(), 1, Utc::now())]);
        let v = f.channel("primary");
        assert!(v.lag_seconds.unwrap() < 0.03, "{v:?}");
        assert!(!v.stale);
    }

    #[test]
    fn a_channel_never_heard_of_is_stale() {
        assert!(fresh().channel("nowhere").stale);
    }
}
