//! Fabric's protobuf messages, the subset a block reader needs.
//!
//! **Why hand-declared.** Each struct below is a `#[derive(prost::Message)]` whose field
//! numbers and types were taken from Hyperledger Fabric's official definitions
//! (`hyperledger/fabric-protos`: `common/common.proto`, `common/configtx.proto`,
//! `peer/transaction.proto`, `peer/proposal.proto`, `peer/proposal_response.proto`,
//! `ledger/rwset/rwset.proto`, `ledger/rwset/kvrwset/kv_rwset.proto`,
//! `msp/identities.proto`, `msp/msp_config.proto`). Generating them at build time would
//! need `protoc` (or vendoring the `.proto` files and a build script) on every machine that
//! builds landql, and a third-party crate of generated Fabric messages would tie landql to
//! its prost (and tonic) versions and its upkeep. The wire format is stable — Fabric never
//! renumbers a field — so a few dozen declared fields are the smaller, reviewable
//! dependency; the tests decode Fabric's own block files with them.
//!
//! Only the fields landql reads, or [`crate::orderer`] writes, are declared; prost skips
//! the others when decoding. That is deliberate for private data: `NsReadWriteSet.collection_hashed_rwset` (field 3) is
//! not declared, so collection hashes are never even decoded. Consequence: re-encoding a
//! message here drops undeclared fields, so re-encoding is only used on [`Envelope`],
//! whose two fields are both declared (the trailing-bytes check of `verify`).
//!
//! Maps are `BTreeMap`s so that encoding is deterministic, with keys in order, as Go's
//! deterministic marshalling writes them: [`crate::orderer`] must give the same bytes for
//! the same input.

use std::collections::BTreeMap;

/// `common.HeaderType` values landql tells apart.
pub mod header_type {
    /// `CONFIG`: a config block's transaction.
    pub const CONFIG: i32 = 1;
    /// `ENDORSER_TRANSACTION`: a chaincode invocation.
    pub const ENDORSER_TRANSACTION: i32 = 3;
}

/// `common.BlockMetadataIndex`.
pub mod metadata_index {
    /// `SIGNATURES`: a `Metadata` with the orderers' signatures.
    pub const SIGNATURES: usize = 0;
    /// `LAST_CONFIG`: a `Metadata` whose value is a `LastConfig` (deprecated since Fabric
    /// 1.4.1 in favour of the `OrdererBlockMetadata` in SIGNATURES, still written).
    pub const LAST_CONFIG: usize = 1;
    /// `TRANSACTIONS_FILTER`: one validation code byte per transaction, set by the peer.
    pub const TRANSACTIONS_FILTER: usize = 2;
    /// `ORDERER`: unused since Fabric 2.0, left empty.
    pub const ORDERER: usize = 3;
    /// `COMMIT_HASH`: a `Metadata` whose value is the peer's commit hash.
    pub const COMMIT_HASH: usize = 4;
    /// How many metadata entries a Fabric 2.x block has.
    pub const COUNT: usize = 5;
}

/// `common.Block`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Block {
    #[prost(message, optional, tag = "1")]
    pub header: Option<BlockHeader>,
    #[prost(message, optional, tag = "2")]
    pub data: Option<BlockData>,
    #[prost(message, optional, tag = "3")]
    pub metadata: Option<BlockMetadata>,
}

impl Block {
    /// The header's block number (0 when the header is missing).
    pub fn number(&self) -> u64 {
        self.header.as_ref().map_or(0, |h| h.number)
    }

    /// The transaction envelopes' bytes, as they are hashed (none when data is missing).
    pub fn transactions(&self) -> &[Vec<u8>] {
        self.data.as_ref().map_or(&[], |d| d.data.as_slice())
    }
}

/// `common.BlockHeader`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BlockHeader {
    #[prost(uint64, tag = "1")]
    pub number: u64,
    #[prost(bytes = "vec", tag = "2")]
    pub previous_hash: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub data_hash: Vec<u8>,
}

/// `common.BlockData`: the transactions, each a serialized [`Envelope`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct BlockData {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub data: Vec<Vec<u8>>,
}

/// `common.BlockMetadata`, indexed by [`metadata_index`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct BlockMetadata {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub metadata: Vec<Vec<u8>>,
}

/// `common.Metadata`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Metadata {
    #[prost(bytes = "vec", tag = "1")]
    pub value: Vec<u8>,
    #[prost(message, repeated, tag = "2")]
    pub signatures: Vec<MetadataSignature>,
}

/// `common.MetadataSignature`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetadataSignature {
    /// A serialized [`SignatureHeader`] (empty when `identifier_header` is used, BFT).
    #[prost(bytes = "vec", tag = "1")]
    pub signature_header: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub signature: Vec<u8>,
    /// A serialized [`IdentifierHeader`].
    #[prost(bytes = "vec", tag = "3")]
    pub identifier_header: Vec<u8>,
}

/// `common.IdentifierHeader` (BFT orderers name themselves by consenter id).
#[derive(Clone, PartialEq, prost::Message)]
pub struct IdentifierHeader {
    #[prost(uint32, tag = "1")]
    pub identifier: u32,
    #[prost(bytes = "vec", tag = "2")]
    pub nonce: Vec<u8>,
}

/// `common.LastConfig`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LastConfig {
    #[prost(uint64, tag = "1")]
    pub index: u64,
}

/// `common.OrdererBlockMetadata`: the value of the SIGNATURES metadata since Fabric 1.4.1.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OrdererBlockMetadata {
    #[prost(message, optional, tag = "1")]
    pub last_config: Option<LastConfig>,
    #[prost(bytes = "vec", tag = "2")]
    pub consenter_metadata: Vec<u8>,
}

/// `common.Envelope`: one transaction as stored in a block.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Envelope {
    /// A serialized [`Payload`].
    #[prost(bytes = "vec", tag = "1")]
    pub payload: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub signature: Vec<u8>,
}

/// `common.Payload`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Payload {
    #[prost(message, optional, tag = "1")]
    pub header: Option<Header>,
    #[prost(bytes = "vec", tag = "2")]
    pub data: Vec<u8>,
}

/// `common.Header`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Header {
    /// A serialized [`ChannelHeader`].
    #[prost(bytes = "vec", tag = "1")]
    pub channel_header: Vec<u8>,
    /// A serialized [`SignatureHeader`].
    #[prost(bytes = "vec", tag = "2")]
    pub signature_header: Vec<u8>,
}

/// `common.ChannelHeader` (`tls_cert_hash` is not declared).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChannelHeader {
    /// A [`header_type`].
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(int32, tag = "2")]
    pub version: i32,
    #[prost(message, optional, tag = "3")]
    pub timestamp: Option<Timestamp>,
    #[prost(string, tag = "4")]
    pub channel_id: String,
    #[prost(string, tag = "5")]
    pub tx_id: String,
    #[prost(uint64, tag = "6")]
    pub epoch: u64,
    /// For an endorser transaction: a serialized [`ChaincodeHeaderExtension`].
    #[prost(bytes = "vec", tag = "7")]
    pub extension: Vec<u8>,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `protos.ChaincodeHeaderExtension`: which chaincode an endorser transaction invokes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChaincodeHeaderExtension {
    #[prost(message, optional, tag = "2")]
    pub chaincode_id: Option<ChaincodeId>,
}

/// `common.SignatureHeader`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SignatureHeader {
    /// A serialized [`SerializedIdentity`].
    #[prost(bytes = "vec", tag = "1")]
    pub creator: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub nonce: Vec<u8>,
}

/// `msp.SerializedIdentity`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SerializedIdentity {
    #[prost(string, tag = "1")]
    pub mspid: String,
    /// For an X.509 MSP: the PEM certificate.
    #[prost(bytes = "vec", tag = "2")]
    pub id_bytes: Vec<u8>,
}

/// `common.ConfigEnvelope`: the data of a CONFIG transaction.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConfigEnvelope {
    #[prost(message, optional, tag = "1")]
    pub config: Option<Config>,
}

/// `common.Config`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Config {
    #[prost(uint64, tag = "1")]
    pub sequence: u64,
    #[prost(message, optional, tag = "2")]
    pub channel_group: Option<ConfigGroup>,
}

/// `common.ConfigGroup` (policies are not read).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConfigGroup {
    #[prost(uint64, tag = "1")]
    pub version: u64,
    #[prost(btree_map = "string, message", tag = "2")]
    pub groups: BTreeMap<String, ConfigGroup>,
    #[prost(btree_map = "string, message", tag = "3")]
    pub values: BTreeMap<String, ConfigValue>,
    #[prost(string, tag = "5")]
    pub mod_policy: String,
}

/// `common.ConfigValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConfigValue {
    #[prost(uint64, tag = "1")]
    pub version: u64,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
    #[prost(string, tag = "3")]
    pub mod_policy: String,
}

/// `common.HashingAlgorithm`, the channel's `HashingAlgorithm` config value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HashingAlgorithm {
    #[prost(string, tag = "1")]
    pub name: String,
}

/// `common.BlockDataHashingStructure`, the channel's `BlockDataHashingStructure` value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BlockDataHashingStructure {
    #[prost(uint32, tag = "1")]
    pub width: u32,
}

/// `common.OrdererAddresses`, the channel's `OrdererAddresses` value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OrdererAddresses {
    #[prost(string, repeated, tag = "1")]
    pub addresses: Vec<String>,
}

/// `common.Capabilities`, a group's `Capabilities` value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Capabilities {
    #[prost(btree_map = "string, message", tag = "1")]
    pub capabilities: BTreeMap<String, Capability>,
}

/// `common.Capability` (an empty message: the name is the map key).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Capability {}

/// `orderer.BatchSize`, the Orderer group's `BatchSize` value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BatchSize {
    #[prost(uint32, tag = "1")]
    pub max_message_count: u32,
    #[prost(uint32, tag = "2")]
    pub absolute_max_bytes: u32,
    #[prost(uint32, tag = "3")]
    pub preferred_max_bytes: u32,
}

/// `orderer.BatchTimeout`, the Orderer group's `BatchTimeout` value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BatchTimeout {
    /// A Go duration, e.g. `2s`.
    #[prost(string, tag = "1")]
    pub timeout: String,
}

/// `msp.MSPConfig`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MspConfig {
    /// 0: FABRIC (X.509), 1: IDEMIX.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// For FABRIC: a serialized [`FabricMspConfig`].
    #[prost(bytes = "vec", tag = "2")]
    pub config: Vec<u8>,
}

/// `msp.FabricMSPConfig` (only what chain validation needs).
#[derive(Clone, PartialEq, prost::Message)]
pub struct FabricMspConfig {
    #[prost(string, tag = "1")]
    pub name: String,
    /// PEM certificates.
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub root_certs: Vec<Vec<u8>>,
    /// PEM certificates.
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub intermediate_certs: Vec<Vec<u8>>,
    #[prost(message, optional, tag = "8")]
    pub crypto_config: Option<FabricCryptoConfig>,
    /// PEM certificates of the TLS CAs.
    #[prost(bytes = "vec", repeated, tag = "9")]
    pub tls_root_certs: Vec<Vec<u8>>,
}

/// `msp.FabricCryptoConfig`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FabricCryptoConfig {
    /// `SHA2` on every Fabric network.
    #[prost(string, tag = "1")]
    pub signature_hash_family: String,
    /// `SHA256` on every Fabric network.
    #[prost(string, tag = "2")]
    pub identity_identifier_hash_function: String,
}

/// `protos.Transaction`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Transaction {
    #[prost(message, repeated, tag = "1")]
    pub actions: Vec<TransactionAction>,
}

/// `protos.TransactionAction`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TransactionAction {
    #[prost(bytes = "vec", tag = "1")]
    pub header: Vec<u8>,
    /// A serialized [`ChaincodeActionPayload`].
    #[prost(bytes = "vec", tag = "2")]
    pub payload: Vec<u8>,
}

/// `protos.ChaincodeActionPayload`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChaincodeActionPayload {
    #[prost(bytes = "vec", tag = "1")]
    pub chaincode_proposal_payload: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    pub action: Option<ChaincodeEndorsedAction>,
}

/// `protos.ChaincodeEndorsedAction` (endorsements are not read, only written).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChaincodeEndorsedAction {
    /// A serialized [`ProposalResponsePayload`].
    #[prost(bytes = "vec", tag = "1")]
    pub proposal_response_payload: Vec<u8>,
    #[prost(message, repeated, tag = "2")]
    pub endorsements: Vec<Endorsement>,
}

/// `protos.Endorsement`: a peer's signature over `proposal_response_payload || endorser`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Endorsement {
    /// A serialized [`SerializedIdentity`].
    #[prost(bytes = "vec", tag = "1")]
    pub endorser: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub signature: Vec<u8>,
}

/// `protos.ChaincodeProposalPayload` as it is stored in a block (no transient map).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChaincodeProposalPayload {
    /// A serialized [`ChaincodeInvocationSpec`].
    #[prost(bytes = "vec", tag = "1")]
    pub input: Vec<u8>,
}

/// `protos.ChaincodeInvocationSpec`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChaincodeInvocationSpec {
    #[prost(message, optional, tag = "1")]
    pub chaincode_spec: Option<ChaincodeSpec>,
}

/// `protos.ChaincodeSpec` (`timeout` is not declared).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChaincodeSpec {
    /// `ChaincodeSpec.Type`: 1 GOLANG, 2 NODE, 3 CAR, 4 JAVA.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(message, optional, tag = "2")]
    pub chaincode_id: Option<ChaincodeId>,
    #[prost(message, optional, tag = "3")]
    pub input: Option<ChaincodeInput>,
}

/// `protos.ChaincodeInput` (`decorations` and `is_init` are not declared).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChaincodeInput {
    /// The function name, then its arguments.
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub args: Vec<Vec<u8>>,
}

/// `protos.ProposalResponsePayload`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProposalResponsePayload {
    #[prost(bytes = "vec", tag = "1")]
    pub proposal_hash: Vec<u8>,
    /// For a chaincode: a serialized [`ChaincodeAction`].
    #[prost(bytes = "vec", tag = "2")]
    pub extension: Vec<u8>,
}

/// `protos.ChaincodeAction` (events are not declared; the response is not read).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChaincodeAction {
    /// A serialized [`TxReadWriteSet`].
    #[prost(bytes = "vec", tag = "1")]
    pub results: Vec<u8>,
    #[prost(message, optional, tag = "3")]
    pub response: Option<Response>,
    #[prost(message, optional, tag = "4")]
    pub chaincode_id: Option<ChaincodeId>,
}

/// `protos.Response`: the chaincode's answer to the proposal.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Response {
    /// An HTTP-like status: 200 for success.
    #[prost(int32, tag = "1")]
    pub status: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(bytes = "vec", tag = "3")]
    pub payload: Vec<u8>,
}

/// `protos.ChaincodeID`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChaincodeId {
    #[prost(string, tag = "1")]
    pub path: String,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, tag = "3")]
    pub version: String,
}

/// `rwset.TxReadWriteSet`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TxReadWriteSet {
    /// 0: KV, the only data model.
    #[prost(int32, tag = "1")]
    pub data_model: i32,
    #[prost(message, repeated, tag = "2")]
    pub ns_rwset: Vec<NsReadWriteSet>,
}

/// `rwset.NsReadWriteSet`, without `collection_hashed_rwset` (private data is never read).
#[derive(Clone, PartialEq, prost::Message)]
pub struct NsReadWriteSet {
    #[prost(string, tag = "1")]
    pub namespace: String,
    /// A serialized [`KvRwSet`].
    #[prost(bytes = "vec", tag = "2")]
    pub rwset: Vec<u8>,
}

/// `kvrwset.KVRWSet` (reads, range queries and metadata writes are not read).
#[derive(Clone, PartialEq, prost::Message)]
pub struct KvRwSet {
    #[prost(message, repeated, tag = "3")]
    pub writes: Vec<KvWrite>,
}

/// `kvrwset.KVWrite`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KvWrite {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(bool, tag = "2")]
    pub is_delete: bool,
    #[prost(bytes = "vec", tag = "3")]
    pub value: Vec<u8>,
}
