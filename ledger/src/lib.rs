//! The ledger contract of landql: what a reader of the chain and a verifier rely on.
//!
//! - [`id`]: property IDs in their three forms;
//! - [`canonical`], [`merkle`], [`signing`]: the hashing and signing rules of ledger.md;
//! - [`model`]: records, proposals, transactions, events, blocks, proofs;
//! - [`block`] and [`proof`]: sealing and checking blocks, verifying proof documents offline;
//! - [`client`]: the [`client::Ledger`] trait that the sync worker and the API read through,
//!   and its implementation over ledger.md's HTTP API.
//!
//! The embedded node that serves that API (chaincode, block log, orderer, seeder) is the
//! `devnet` crate; nothing here knows it.

pub mod block;
pub mod canonical;
pub mod client;
pub mod id;
pub mod merkle;
pub mod model;
mod par;
pub mod proof;
pub mod signing;

pub use canonical::Hash32;
pub use id::{IdError, IdForm, PropertyId};
