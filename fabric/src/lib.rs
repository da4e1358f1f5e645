//! Hyperledger Fabric blocks for landql: Fabric's protobuf messages ([`proto`]), reading a
//! peer's block file or a serialized block ([`read`]), verifying a chain as Fabric does —
//! hashes, glued transactions and the orderers' signatures ([`verify`], [`msp`]) — and a
//! chaincode's write sets out of valid transactions ([`writes`]) — and the other way
//! round, a block writer ([`orderer`]) making a channel's genesis block and signed blocks
//! of endorser transactions from a seed, so that a Fabric-format ledger can run
//! in-process and the reading side is tested on blocks it did not come with.
//!
//! Pure functions of their input: no disk, network or clock. Live network access (the
//! Deliver service, the Gateway) is not here yet, nor is consensus: [`orderer`] is one
//! orderer signing every block, without Raft and without endorsement policies.

pub mod msp;
pub mod orderer;
pub mod proto;
pub mod read;
pub mod verify;
pub mod writes;

#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;

pub use read::{read_block, read_block_file, FileBlock, ReadError};
pub use verify::{verify_chain, BlockReport, ChainVerifier, Signatures};
