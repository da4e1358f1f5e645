//! The embedded devnet ledger node: chaincode, block log, orderer and HTTP API, plus the
//! offline seeder and the demo-data generator it shares with the load generator.

pub mod chain;
pub mod chaincode;
#[cfg(test)]
mod chaincode_tests;
pub mod generate;
pub mod http;
pub(crate) mod log;
pub mod node;
pub mod seed;
mod serve;
pub(crate) mod state;

pub use chain::{Chains, DevnetConfig, DevnetError, OpenReport};
pub use node::{Node, SubmitError};
pub use serve::serve;
pub use state::tx_id;
