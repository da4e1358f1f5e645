//! The chain side of landql.
//!
//! - [`id`]: property IDs in their three forms;
//! - [`canonical`], [`merkle`], [`signing`]: the hashing and signing rules of ledger.md;
//! - [`model`]: records, proposals, transactions, events, blocks, proofs;
//! - [`block`] and [`proof`]: sealing and checking blocks, verifying proof documents offline;
//! - [`client`]: the [`client::Ledger`] trait that the sync worker and the API read through,
//!   and its HTTP implementation against a devnet node;
//! - [`devnet`]: the embedded ledger node (chaincode, block log, orderer, HTTP API), the
//!   offline seeder and the load generator.

pub mod bench;
pub mod block;
pub mod canonical;
pub mod client;
pub mod devnet;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod id;
pub mod loadgen;
pub mod merkle;
pub mod model;
mod par;
pub mod proof;
pub mod signing;

pub use canonical::Hash32;
pub use id::{IdError, IdForm, PropertyId};
