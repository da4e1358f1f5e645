//! How the rest of landql reads a ledger.
//!
//! [`Ledger`] is deliberately shaped after what a Hyperledger Fabric peer offers, so that a
//! Fabric implementation can sit beside [`HttpLedger`] later:
//! - [`Ledger::blocks`] is the Deliver service: blocks of one channel, in order, from a
//!   height, following the tip; each transaction carries its validation code and write set;
//! - [`Ledger::record`] / [`Ledger::history`] are chaincode queries (GetState /
//!   GetHistoryForKey) answered with the version (block, tx) that wrote the value;
//! - [`Ledger::proof`] has no Fabric twin; a Fabric implementation would build it from the
//!   block (its header and data hash) the transaction sits in.
//!
//! Nothing here retries: callers (the sync worker, the API) decide how long to wait.

mod http;

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::canonical::Hash32;
use crate::id::PropertyId;
use crate::model::{Block, ChainInfo, Proof, Proposal, Receipt, RecordVersion};

pub use http::HttpLedger;

/// Blocks of one channel, in order, following the tip until dropped or the connection ends.
pub type BlockStream = BoxStream<'static, Result<Block, LedgerError>>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum LedgerError {
    /// The ledger could not be reached or did not answer in time; try again later.
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
    /// The ledger refused the request (a 4xx with its error code).
    #[error("ledger refused the request ({code}): {message}")]
    Refused { code: String, message: String },
    /// The ledger answered something this client cannot read.
    #[error("ledger answer does not decode: {0}")]
    Decode(String),
}

/// A proof document exactly as the ledger sent it (so it can be handed on unchanged), with
/// its parsed form.
#[derive(Debug, Clone)]
pub struct ProofDocument {
    pub json: String,
    pub proof: Proof,
}

/// Read access to a ledger (and submission, for the load generator and tests).
#[async_trait]
pub trait Ledger: Send + Sync + 'static {
    /// Channels with their heights and tip hashes, and the orderer's public key.
    async fn info(&self) -> Result<ChainInfo, LedgerError>;
    /// Blocks of `channel` from number `from` on, then new ones as they are cut.
    async fn blocks(&self, channel: &str, from: u64) -> Result<BlockStream, LedgerError>;
    /// The current value of a property and the version that wrote it.
    async fn record(&self, id: &PropertyId) -> Result<Option<RecordVersion>, LedgerError>;
    /// Every version of a property, oldest first (empty if there is none).
    async fn history(&self, id: &PropertyId) -> Result<Vec<RecordVersion>, LedgerError>;
    /// The inclusion proof of a committed transaction.
    async fn proof(&self, tx_id: &Hash32) -> Result<Option<ProofDocument>, LedgerError>;
    /// Proposes transactions to a channel and waits until they are committed.
    async fn submit(
        &self,
        channel: &str,
        proposals: &[Proposal],
    ) -> Result<Vec<Receipt>, LedgerError>;
}
