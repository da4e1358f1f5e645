//! The errors `run` can end with. Everything transient (the ledger or PostgreSQL being away)
//! is retried inside the worker and never surfaces here; these are the conditions an
//! operator must act on.

use std::fmt;
use std::net::SocketAddr;

/// Why a channel stopped: a block that cannot be trusted or written. Nothing from `block`
/// (or after it) was written; the channel's checkpoint stays at `block - 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelHalt {
    pub channel: String,
    /// The block that was refused.
    pub block: u64,
    pub reason: String,
}

impl fmt::Display for ChannelHalt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "channel {} halted at block {}: {}",
            self.channel, self.block, self.reason
        )
    }
}

/// Why the sync worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// An option does not make sense (a malformed key or URL, a zero batch size).
    #[error("invalid sync option {option}: {why}")]
    Config { option: &'static str, why: String },
    /// Trust on first use: the ledger now presents another orderer key than the one pinned
    /// in the database when the read model was first synced.
    #[error(
        "the ledger presents orderer key {presented}, but the read model was synced under key \
         {pinned} (pinned in table sync_trust); refusing blocks from an unknown orderer — if \
         the key was rotated deliberately, pass --orderer-key or delete the pinned row"
    )]
    OrdererKeyChanged { pinned: String, presented: String },
    /// Every channel refused a block; no further progress is possible.
    #[error("sync halted: {}", halts_text(.0))]
    Halted(Vec<ChannelHalt>),
    /// The read model's schema could not be brought up to date for a reason other than the
    /// database being unreachable (e.g. a changed migration).
    #[error("migrating the read model failed: {0}")]
    Migrate(String),
    /// The metrics address could not be bound.
    #[error("cannot serve metrics on {addr}: {source}")]
    Metrics {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

fn halts_text(halts: &[ChannelHalt]) -> String {
    halts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
