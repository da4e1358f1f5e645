//! The embedded devnet ledger node of landql: chaincode, block log, orderer and the HTTP API
//! of ledger.md, plus the offline seeder and the demo-data generator it shares with the load
//! generator (`bench::load::ledger`).
//!
//! It is one implementation of the contract in the `ledger` crate (IDs, JCS, blocks,
//! proofs, the `Ledger` trait): readers of the chain depend on that crate, never on this one.

pub mod chain;
pub mod chaincode;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod generate;
pub mod http;
pub(crate) mod log;
mod metrics;
pub mod node;
pub mod seed;
mod serve;
pub(crate) mod state;

pub use chain::{Chains, DevnetConfig, DevnetError, OpenReport};

/// The seeder's way of writing past the page cache (4 MiB aligned chunks, `O_DIRECT` where
/// the file system allows it), for `landql bench ledger`'s raw-write baseline, which must
/// write as the seeder writes.
pub mod bulk_io {
    pub use crate::log::bulk::{open_direct, Chunk, CHUNK};
}
pub use node::{Node, SubmitError};
pub use serve::serve;
pub use state::tx_id;
