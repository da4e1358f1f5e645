//! The embedded devnet ledger node of landql: chaincode, block log, orderer and the HTTP API
//! of ledger.md, plus the offline seeder, the demo-data generator it shares with the load
//! generator, and `landql bench ledger`.
//!
//! It is one implementation of the contract in the `ledger` crate (IDs, JCS, blocks,
//! proofs, the `Ledger` trait): readers of the chain depend on that crate, never on this one.

pub mod bench;
pub mod chain;
pub mod chaincode;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod generate;
pub mod http;
pub mod loadgen;
pub(crate) mod log;
pub mod node;
pub mod seed;
mod serve;
pub(crate) mod state;

pub use chain::{Chains, DevnetConfig, DevnetError, OpenReport};
pub use node::{Node, SubmitError};
pub use serve::serve;
pub use state::tx_id;
