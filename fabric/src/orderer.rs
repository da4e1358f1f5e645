//! A Fabric block writer: a channel's genesis block and blocks of endorser transactions,
//! made in-process, in the encodings a Fabric 2.x orderer and peer write.
//!
//! **Why.** So that landql can run a Fabric-format ledger without a Fabric network (a
//! devnet speaking the Fabric protocol), and so that the reading side — [`crate::read`],
//! [`crate::verify`], [`crate::msp`], [`crate::writes`] — is tested on blocks whose every
//! field is known, next to the real Fabric block files of its own tests.
//!
//! **What it makes.** From a 32-byte seed, two organisations ([`identity`]): an orderer
//! org (`OrdererMSP`) and an application org (`Org1MSP`), each a self-signed P-256 CA and
//! one member it issued. [`Orderer::new`] makes block 0, a config block whose channel
//! group holds the `Orderer` group with the orderer org's MSP and `BatchSize`, and the
//! `Application` group with the application org's MSP, as `configtxgen` writes a genesis
//! block: its one CONFIG envelope unsigned, its SIGNATURES metadata an
//! `OrdererBlockMetadata` without signatures. [`Orderer::cut`] then makes each next block
//! from [`TxSpec`]s: each a chaincode invocation by the application org's member, who is
//! also its one endorser, with its write set (keys sorted, as Fabric's read-write set
//! builder writes them), a channel header of type ENDORSER_TRANSACTION whose tx ID is
//! `hex(SHA-256(nonce || creator))` (Fabric's `protoutil.ComputeTxID`), the envelope
//! signed by the creator; the block chained to the previous header's hash, its data hash
//! over the envelopes, its metadata as a Fabric 2.x orderer's block writer writes it
//! (SIGNATURES: an `OrdererBlockMetadata` with the last config block's number, signed by
//! the orderer over `value || signature_header || header DER`; LAST_CONFIG: a `Metadata`
//! whose value is the `LastConfig`) and, as a committing peer adds it, the
//! TRANSACTIONS_FILTER with the validation code each [`TxSpec`] asks for.
//! [`Orderer::rotate_orderer_ca`] makes a config block that replaces the orderer
//! organisation's CA, signed by the outgoing orderer, after which the new one signs.
//! [`BlockFile`] writes blocks in a peer's block-file framing
//! ([`crate::read::read_block_file`] reads it).
//!
//! Everything is a pure function of the seed, the [`OrdererConfig`] and the transactions:
//! no clock (timestamps are the config's `genesis_time` plus the block number, in
//! seconds), no randomness (nonces are derived from the seed, signatures are RFC 6979).
//! The same input gives byte-identical blocks.
//!
//! **What it does not do.** No consensus (no Raft, no BFT: one orderer signs every block),
//! no broadcast or deliver service, no endorsement policy evaluation and no MVCC
//! validation: the validation code of each transaction is what the caller says. The
//! transactions carry no read sets, no events and no private data. The config has no
//! policies, no consensus type and no TLS CAs, so it satisfies landql's verifier but not
//! a Fabric peer asked to join the channel. The only config update is the orderer CA's
//! rotation, and its config envelope has no `last_update` (the admins' signed
//! CONFIG_UPDATE). No COMMIT_HASH (a peer's commit hash over its state updates): that slot
//! is left empty.

pub mod identity;

use std::io;

use prost::Message;
use sha2::{Digest, Sha256};

use crate::proto::{
    header_type, metadata_index, BatchSize, BatchTimeout, Block, BlockData,
    BlockDataHashingStructure, BlockHeader, BlockMetadata, Capabilities, Capability,
    ChaincodeAction, ChaincodeActionPayload, ChaincodeEndorsedAction, ChaincodeHeaderExtension,
    ChaincodeId, ChaincodeInput, ChaincodeInvocationSpec, ChaincodeProposalPayload, ChaincodeSpec,
    ChannelHeader, Config, ConfigEnvelope, ConfigGroup, ConfigValue, Endorsement, Envelope,
    FabricCryptoConfig, FabricMspConfig, HashingAlgorithm, Header, KvRwSet, KvWrite, LastConfig,
    Metadata, MetadataSignature, MspConfig, NsReadWriteSet, OrdererAddresses, OrdererBlockMetadata,
    Payload, ProposalResponsePayload, Response, SignatureHeader, Timestamp, Transaction,
    TransactionAction, TxReadWriteSet,
};
use crate::read::write_block_entry;
use crate::verify::{data_hash, header_bytes, header_hash};
use crate::writes::Write;

pub use identity::{Identity, Org};

/// The orderer organisation's MSP ID.
pub const ORDERER_MSP: &str = "OrdererMSP";
/// The application organisation's MSP ID.
pub const APP_MSP: &str = "Org1MSP";
/// The version written in each transaction's `ChaincodeAction.chaincode_id`.
pub const CHAINCODE_VERSION: &str = "1.0";
/// Length of a signature header's nonce, as Fabric's `crypto.GetRandomNonce`.
const NONCE_LEN: usize = 24;
/// Fabric's longest channel name.
const MAX_CHANNEL_NAME: usize = 249;
/// `ChaincodeSpec.Type` GOLANG.
const GOLANG: i32 = 1;

/// `protos.TxValidationCode`: what the committing peer found of a transaction, one byte
/// of the TRANSACTIONS_FILTER.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ValidationCode(pub u8);

impl ValidationCode {
    pub const VALID: Self = Self(0);
    pub const BAD_CREATOR_SIGNATURE: Self = Self(4);
    pub const DUPLICATE_TXID: Self = Self(9);
    pub const ENDORSEMENT_POLICY_FAILURE: Self = Self(10);
    pub const MVCC_READ_CONFLICT: Self = Self(11);
    pub const PHANTOM_READ_CONFLICT: Self = Self(12);
    pub const NOT_VALIDATED: Self = Self(254);
    pub const INVALID_OTHER_REASON: Self = Self(255);
}

/// One transaction of a block to cut: a chaincode invocation and its writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxSpec {
    /// The chaincode, also the write set's namespace.
    pub chaincode: String,
    /// The invocation's function name and arguments (`ChaincodeInput.args`).
    pub args: Vec<Vec<u8>>,
    /// Key writes, a `None` value a delete. Each key at most once; they are written
    /// sorted by key, as Fabric does.
    pub writes: Vec<Write>,
    /// The validation code the peer gives the transaction.
    pub validation: ValidationCode,
}

impl TxSpec {
    /// A valid invocation of `chaincode` with no arguments and no writes yet.
    pub fn new(chaincode: impl Into<String>) -> Self {
        TxSpec {
            chaincode: chaincode.into(),
            args: Vec::new(),
            writes: Vec::new(),
            validation: ValidationCode::VALID,
        }
    }

    /// Adds an argument to the invocation (the first is the function name).
    pub fn arg(mut self, arg: impl Into<Vec<u8>>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Writes `value` at `key`.
    pub fn put(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.writes.push(Write {
            key: key.into(),
            value: Some(value.into()),
        });
        self
    }

    /// Deletes `key`.
    pub fn delete(mut self, key: impl Into<String>) -> Self {
        self.writes.push(Write {
            key: key.into(),
            value: None,
        });
        self
    }

    /// The validation code the peer gives the transaction.
    pub fn validation(mut self, code: ValidationCode) -> Self {
        self.validation = code;
        self
    }
}

/// Why a block could not be made. Nothing is changed when [`Orderer::cut`] fails: the
/// next block is still the one that failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum OrdererError {
    #[error("channel name {name:?}: {why}")]
    BadChannelName { name: String, why: &'static str },
    #[error("a block needs at least one transaction")]
    NoTransactions,
    #[error("{count} transactions for one block; the channel's BatchSize allows {max}")]
    TooManyTransactions { count: usize, max: u32 },
    #[error("transaction {tx}: chaincode name {name:?}: {why}")]
    BadChaincodeName {
        tx: usize,
        name: String,
        why: &'static str,
    },
    #[error("transaction {tx}: a key is empty")]
    EmptyKey { tx: usize },
    #[error("transaction {tx}: key {key:?} is written twice")]
    DuplicateKey { tx: usize, key: String },
    #[error("transaction {tx} is at least {size} bytes; the channel's AbsoluteMaxBytes is {max}")]
    TransactionTooLarge { tx: usize, size: u64, max: u32 },
    #[error("the block's transactions are {size} bytes; the channel's AbsoluteMaxBytes is {max}")]
    BlockTooLarge { size: u64, max: u32 },
    #[error("bad batch size: {0}")]
    BadBatchSize(&'static str),
    #[error("block number {0} has no successor")]
    ChainFull(u64),
    #[error("{0}")]
    Crypto(String),
}

/// The channel an [`Orderer`] writes.
#[derive(Debug, Clone, PartialEq)]
pub struct OrdererConfig {
    /// The channel name (Fabric's rule: lower-case letters, digits, `.` and `-`, starting
    /// with a letter, at most 249 characters).
    pub channel_id: String,
    /// Every key, certificate, nonce and so signature is derived from it.
    pub seed: [u8; 32],
    /// Seconds since the Unix epoch: the certificates' `notBefore` and the genesis
    /// block's timestamp; block `n`'s transactions are stamped `genesis_time + n`.
    pub genesis_time: u64,
    /// The channel's `BatchSize`, written into the config and enforced by [`Orderer::cut`].
    pub batch_size: BatchSize,
}

impl OrdererConfig {
    /// Channel `channel_id` from `seed`, stamped from 2025-01-01T00:00:00Z, with the
    /// `BatchSize` of the `configtx.yaml` of fabric-samples' test network (10
    /// transactions, AbsoluteMaxBytes 99 MB, PreferredMaxBytes 512 KB).
    pub fn new(channel_id: impl Into<String>, seed: [u8; 32]) -> Self {
        OrdererConfig {
            channel_id: channel_id.into(),
            seed,
            genesis_time: 1_735_689_600,
            batch_size: BatchSize {
                max_message_count: 10,
                absolute_max_bytes: 99 * 1024 * 1024,
                preferred_max_bytes: 512 * 1024,
            },
        }
    }
}

/// Writes a channel's blocks: the genesis block on creation, then each [`Orderer::cut`].
#[derive(Debug, Clone)]
pub struct Orderer {
    config: OrdererConfig,
    orderer_org: Org,
    app_org: Org,
    genesis: Block,
    /// The header of the last block made.
    last: BlockHeader,
    /// The number of the last config block.
    last_config: u64,
    /// The channel's current config and its sequence number.
    channel: ConfigGroup,
    sequence: u64,
    /// How many times the orderer CA was rotated.
    rotations: u32,
}

impl Orderer {
    /// The channel's organisations and its genesis block ([`Orderer::genesis`]).
    pub fn new(config: OrdererConfig) -> Result<Self, OrdererError> {
        check_channel_name(&config.channel_id)?;
        let batch = &config.batch_size;
        if batch.max_message_count == 0 {
            return Err(OrdererError::BadBatchSize("MaxMessageCount is 0"));
        }
        if batch.absolute_max_bytes == 0 {
            return Err(OrdererError::BadBatchSize("AbsoluteMaxBytes is 0"));
        }
        if batch.preferred_max_bytes > batch.absolute_max_bytes {
            return Err(OrdererError::BadBatchSize(
                "PreferredMaxBytes is greater than AbsoluteMaxBytes",
            ));
        }
        let seed = &config.seed;
        let orderer_org = Org::generate(
            seed,
            "orderer",
            ORDERER_MSP,
            "orderer.landql.test",
            "orderer0",
            "orderer",
            config.genesis_time,
        )?;
        let app_org = Org::generate(
            seed,
            "org1",
            APP_MSP,
            "org1.landql.test",
            "user1",
            "client",
            config.genesis_time,
        )?;
        let channel = channel_group(&config, &orderer_org, &app_org);
        let genesis = genesis_block(&config, channel.clone())?;
        let last = genesis.header.clone().unwrap_or_default();
        Ok(Orderer {
            config,
            orderer_org,
            app_org,
            genesis,
            last,
            last_config: 0,
            channel,
            sequence: 0,
            rotations: 0,
        })
    }

    /// Block 0: the channel's config block.
    pub fn genesis(&self) -> &Block {
        &self.genesis
    }

    /// The orderer organisation; its member signs the blocks.
    pub fn orderer_org(&self) -> &Org {
        &self.orderer_org
    }

    /// The application organisation; its member creates and endorses the transactions.
    pub fn app_org(&self) -> &Org {
        &self.app_org
    }

    /// The channel's configuration.
    pub fn config(&self) -> &OrdererConfig {
        &self.config
    }

    /// The number of blocks made so far, the genesis block included.
    pub fn height(&self) -> u64 {
        self.last.number + 1
    }

    /// The next block: one endorser transaction per [`TxSpec`], chained to the last block
    /// made and signed by the orderer. On error nothing changes.
    pub fn cut(&mut self, txs: &[TxSpec]) -> Result<Block, OrdererError> {
        let batch = &self.config.batch_size;
        if txs.is_empty() {
            return Err(OrdererError::NoTransactions);
        }
        if txs.len() > batch.max_message_count as usize {
            return Err(OrdererError::TooManyTransactions {
                count: txs.len(),
                max: batch.max_message_count,
            });
        }
        let number = self
            .last
            .number
            .checked_add(1)
            .ok_or(OrdererError::ChainFull(self.last.number))?;
        let max = u64::from(batch.absolute_max_bytes);
        let mut envelopes = Vec::with_capacity(txs.len());
        let mut total: u64 = 0;
        for (i, tx) in txs.iter().enumerate() {
            check_tx(i, tx, batch.absolute_max_bytes)?;
            let envelope = self.endorser_transaction(number, i, tx)?;
            let size = envelope.len() as u64;
            if size > max {
                return Err(OrdererError::TransactionTooLarge {
                    tx: i,
                    size,
                    max: batch.absolute_max_bytes,
                });
            }
            total = total.saturating_add(size);
            if total > max {
                return Err(OrdererError::BlockTooLarge {
                    size: total,
                    max: batch.absolute_max_bytes,
                });
            }
            envelopes.push(envelope);
        }
        let filter = txs.iter().map(|t| t.validation.0).collect();
        let block = self.seal(number, envelopes, filter, self.last_config)?;
        self.last = block.header.clone().unwrap_or_default();
        Ok(block)
    }

    /// A config block replacing the orderer organisation's CA and member with new ones
    /// (same MSP ID, keys derived from the seed and the rotation's count), as a channel
    /// config update would: the config's sequence and the MSP value's version go up by
    /// one, the CONFIG envelope and the block are signed by the current orderer, and the
    /// blocks after it are signed by the new member and name this block as their last
    /// config. On error nothing changes.
    pub fn rotate_orderer_ca(&mut self) -> Result<Block, OrdererError> {
        let number = self
            .last
            .number
            .checked_add(1)
            .ok_or(OrdererError::ChainFull(self.last.number))?;
        let rotations = self
            .rotations
            .checked_add(1)
            .ok_or_else(|| OrdererError::Crypto("too many CA rotations".into()))?;
        let new_org = Org::generate(
            &self.config.seed,
            &format!("orderer/rotation-{rotations}"),
            ORDERER_MSP,
            "orderer.landql.test",
            "orderer0",
            "orderer",
            self.config.genesis_time,
        )?;
        let mut channel = self.channel.clone();
        let org = channel
            .groups
            .get_mut("Orderer")
            .and_then(|o| o.groups.get_mut("OrdererOrg"))
            .ok_or_else(|| OrdererError::Crypto("config has no Orderer/OrdererOrg".into()))?;
        let version = org.values.get("MSP").map_or(0, |v| v.version) + 1;
        *org = org_group(&new_org);
        if let Some(msp) = org.values.get_mut("MSP") {
            msp.version = version;
        }
        let sequence = self.sequence + 1;
        let signer = &self.orderer_org.member;
        let signature_header = self.signature_header(signer, &format!("config/{number}"));
        let channel_header = ChannelHeader {
            r#type: header_type::CONFIG,
            version: 0,
            timestamp: Some(self.timestamp(number)),
            channel_id: self.config.channel_id.clone(),
            tx_id: tx_id(&signature_header.nonce, &signature_header.creator),
            epoch: 0,
            extension: Vec::new(),
        };
        let payload = Payload {
            header: Some(Header {
                channel_header: channel_header.encode_to_vec(),
                signature_header: signature_header.encode_to_vec(),
            }),
            data: ConfigEnvelope {
                config: Some(Config {
                    sequence,
                    channel_group: Some(channel.clone()),
                }),
            }
            .encode_to_vec(),
        }
        .encode_to_vec();
        let envelope = Envelope {
            signature: signer.sign(&payload)?,
            payload,
        }
        .encode_to_vec();
        let max = self.config.batch_size.absolute_max_bytes;
        if envelope.len() as u64 > u64::from(max) {
            return Err(OrdererError::TransactionTooLarge {
                tx: 0,
                size: envelope.len() as u64,
                max,
            });
        }
        let block = self.seal(
            number,
            vec![envelope],
            vec![ValidationCode::VALID.0],
            number,
        )?;
        self.last = block.header.clone().unwrap_or_default();
        self.last_config = number;
        self.channel = channel;
        self.sequence = sequence;
        self.rotations = rotations;
        self.orderer_org = new_org;
        Ok(block)
    }

    /// A signature header of `identity` with a nonce derived from the seed and `what`.
    fn signature_header(&self, identity: &Identity, what: &str) -> SignatureHeader {
        SignatureHeader {
            creator: identity.serialized(),
            nonce: nonce(&self.config.seed, what),
        }
    }

    /// One envelope of an endorser transaction, serialized.
    fn endorser_transaction(
        &self,
        number: u64,
        index: usize,
        tx: &TxSpec,
    ) -> Result<Vec<u8>, OrdererError> {
        let client = &self.app_org.member;
        let chaincode_id = ChaincodeId {
            name: tx.chaincode.clone(),
            ..ChaincodeId::default()
        };
        let signature_header = self.signature_header(client, &format!("tx/{number}/{index}"));
        let tx_id = tx_id(&signature_header.nonce, &signature_header.creator);
        let channel_header = ChannelHeader {
            r#type: header_type::ENDORSER_TRANSACTION,
            version: 0,
            timestamp: Some(self.timestamp(number)),
            channel_id: self.config.channel_id.clone(),
            tx_id,
            epoch: 0,
            extension: ChaincodeHeaderExtension {
                chaincode_id: Some(chaincode_id.clone()),
            }
            .encode_to_vec(),
        }
        .encode_to_vec();
        let signature_header = signature_header.encode_to_vec();

        let proposal_payload = ChaincodeProposalPayload {
            input: ChaincodeInvocationSpec {
                chaincode_spec: Some(ChaincodeSpec {
                    r#type: GOLANG,
                    chaincode_id: Some(chaincode_id),
                    input: Some(ChaincodeInput {
                        args: tx.args.clone(),
                    }),
                }),
            }
            .encode_to_vec(),
        }
        .encode_to_vec();
        // protoutil.GetProposalHash1: over the header's two parts and the proposal
        // payload as the block stores it (without the transient map).
        let mut proposal_hash = Sha256::new();
        proposal_hash.update(&channel_header);
        proposal_hash.update(&signature_header);
        proposal_hash.update(&proposal_payload);

        let mut writes: Vec<&Write> = tx.writes.iter().collect();
        writes.sort_by(|a, b| a.key.cmp(&b.key));
        let kv = KvRwSet {
            writes: writes
                .into_iter()
                .map(|w| KvWrite {
                    key: w.key.clone(),
                    is_delete: w.value.is_none(),
                    value: w.value.clone().unwrap_or_default(),
                })
                .collect(),
        };
        let results = TxReadWriteSet {
            data_model: 0,
            ns_rwset: vec![NsReadWriteSet {
                namespace: tx.chaincode.clone(),
                rwset: kv.encode_to_vec(),
            }],
        };
        let action = ChaincodeAction {
            results: results.encode_to_vec(),
            response: Some(Response {
                status: 200,
                ..Response::default()
            }),
            chaincode_id: Some(ChaincodeId {
                name: tx.chaincode.clone(),
                version: CHAINCODE_VERSION.to_string(),
                ..ChaincodeId::default()
            }),
        };
        let response_payload = ProposalResponsePayload {
            proposal_hash: proposal_hash.finalize().to_vec(),
            extension: action.encode_to_vec(),
        }
        .encode_to_vec();
        // The endorser signs the response payload followed by its own identity.
        let endorser = client.serialized();
        let mut endorsed = response_payload.clone();
        endorsed.extend_from_slice(&endorser);
        let endorsement = Endorsement {
            signature: client.sign(&endorsed)?,
            endorser,
        };
        let transaction = Transaction {
            actions: vec![TransactionAction {
                header: signature_header.clone(),
                payload: ChaincodeActionPayload {
                    chaincode_proposal_payload: proposal_payload,
                    action: Some(ChaincodeEndorsedAction {
                        proposal_response_payload: response_payload,
                        endorsements: vec![endorsement],
                    }),
                }
                .encode_to_vec(),
            }],
        };
        let payload = Payload {
            header: Some(Header {
                channel_header,
                signature_header,
            }),
            data: transaction.encode_to_vec(),
        }
        .encode_to_vec();
        Ok(Envelope {
            signature: client.sign(&payload)?,
            payload,
        }
        .encode_to_vec())
    }

    fn timestamp(&self, number: u64) -> Timestamp {
        Timestamp {
            seconds: i64::try_from(self.config.genesis_time.saturating_add(number))
                .unwrap_or(i64::MAX),
            nanos: 0,
        }
    }

    /// The block `number` of `envelopes`, with its metadata naming `last_config` and the
    /// orderer's signature.
    fn seal(
        &self,
        number: u64,
        envelopes: Vec<Vec<u8>>,
        filter: Vec<u8>,
        last_config: u64,
    ) -> Result<Block, OrdererError> {
        let header = BlockHeader {
            number,
            previous_hash: header_hash(&self.last).to_vec(),
            data_hash: data_hash(&envelopes).to_vec(),
        };
        let value = OrdererBlockMetadata {
            last_config: Some(LastConfig { index: last_config }),
            // A Raft orderer puts its consenter metadata here, wrapped in a `Metadata`;
            // with none, the empty `Metadata` encodes to nothing.
            consenter_metadata: Metadata::default().encode_to_vec(),
        }
        .encode_to_vec();
        let signer = &self.orderer_org.member;
        let signature_header = self
            .signature_header(signer, &format!("block/{number}"))
            .encode_to_vec();
        let mut signed = value.clone();
        signed.extend_from_slice(&signature_header);
        signed.extend_from_slice(&header_bytes(&header));
        let signature = signer.sign(&signed)?;
        let signatures = Metadata {
            value,
            signatures: vec![MetadataSignature {
                signature_header,
                signature,
                identifier_header: Vec::new(),
            }],
        };
        Ok(Block {
            header: Some(header),
            data: Some(BlockData { data: envelopes }),
            metadata: Some(metadata(signatures.encode_to_vec(), last_config, filter)),
        })
    }
}

/// The five metadata entries of a Fabric 2.x block as a peer stores it.
fn metadata(signatures: Vec<u8>, last_config: u64, filter: Vec<u8>) -> BlockMetadata {
    let mut metadata = vec![Vec::new(); metadata_index::COUNT];
    metadata[metadata_index::SIGNATURES] = signatures;
    metadata[metadata_index::LAST_CONFIG] = Metadata {
        value: LastConfig { index: last_config }.encode_to_vec(),
        signatures: Vec::new(),
    }
    .encode_to_vec();
    metadata[metadata_index::TRANSACTIONS_FILTER] = filter;
    BlockMetadata { metadata }
}

/// Fabric's `protoutil.ComputeTxID`: hex of SHA-256 of the nonce and the creator.
pub fn tx_id(nonce: &[u8], creator: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(nonce);
    h.update(creator);
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn nonce(seed: &[u8; 32], what: &str) -> Vec<u8> {
    identity::derive(seed, &format!("nonce/{what}"))[..NONCE_LEN].to_vec()
}

/// Fabric's channel name rule (`configtx.ValidateChannelID`).
fn check_channel_name(name: &str) -> Result<(), OrdererError> {
    let bad = |why| {
        Err(OrdererError::BadChannelName {
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_CHANNEL_NAME {
        return bad("longer than 249 characters");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return bad("does not start with a lower-case letter");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
    {
        return bad("has a character other than a-z, 0-9, '.' and '-'");
    }
    Ok(())
}

/// Fabric's chaincode name rule (`^[a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*$`), without the
/// lifecycle chaincodes, whose transactions are not data.
fn check_chaincode_name(tx: usize, name: &str) -> Result<(), OrdererError> {
    let bad = |why| {
        Err(OrdererError::BadChaincodeName {
            tx,
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    let mut previous_separator = true;
    for c in name.chars() {
        if c == '-' || c == '_' {
            if previous_separator {
                return bad("not of the form [a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*");
            }
            previous_separator = true;
        } else if c.is_ascii_alphanumeric() {
            previous_separator = false;
        } else {
            return bad("not of the form [a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*");
        }
    }
    if previous_separator {
        return bad("not of the form [a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*");
    }
    if name == "lscc" {
        return bad("a lifecycle chaincode");
    }
    Ok(())
}

/// The checks on one transaction before anything is encoded: its chaincode name, its
/// keys, and its writes' size against `max` bytes.
fn check_tx(tx: usize, spec: &TxSpec, max: u32) -> Result<(), OrdererError> {
    check_chaincode_name(tx, &spec.chaincode)?;
    let mut keys: Vec<&str> = Vec::with_capacity(spec.writes.len());
    let mut size: u64 = 0;
    for w in &spec.writes {
        if w.key.is_empty() {
            return Err(OrdererError::EmptyKey { tx });
        }
        keys.push(&w.key);
        size = size
            .saturating_add(w.key.len() as u64)
            .saturating_add(w.value.as_ref().map_or(0, |v| v.len() as u64));
    }
    size = spec
        .args
        .iter()
        .fold(size, |s, a| s.saturating_add(a.len() as u64));
    if size > u64::from(max) {
        return Err(OrdererError::TransactionTooLarge { tx, size, max });
    }
    keys.sort_unstable();
    if let Some(pair) = keys.windows(2).find(|p| p[0] == p[1]) {
        return Err(OrdererError::DuplicateKey {
            tx,
            key: pair[0].to_string(),
        });
    }
    Ok(())
}

/// A config value of `message`, modifiable by the group's admins.
fn value(message: &impl Message) -> ConfigValue {
    ConfigValue {
        version: 0,
        value: message.encode_to_vec(),
        mod_policy: "Admins".to_string(),
    }
}

fn capabilities(name: &str) -> ConfigValue {
    value(&Capabilities {
        capabilities: [(name.to_string(), Capability {})].into(),
    })
}

/// An organisation's group: its MSP (an X.509 MSP trusting the org's CA).
fn org_group(org: &Org) -> ConfigGroup {
    let msp = FabricMspConfig {
        name: org.ca.msp_id().to_string(),
        root_certs: vec![org.ca.cert_pem().as_bytes().to_vec()],
        intermediate_certs: Vec::new(),
        crypto_config: Some(FabricCryptoConfig {
            signature_hash_family: "SHA2".to_string(),
            identity_identifier_hash_function: "SHA256".to_string(),
        }),
        tls_root_certs: Vec::new(),
    };
    ConfigGroup {
        values: [(
            "MSP".to_string(),
            value(&MspConfig {
                r#type: 0,
                config: msp.encode_to_vec(),
            }),
        )]
        .into(),
        mod_policy: "Admins".to_string(),
        ..ConfigGroup::default()
    }
}

/// The channel group of the genesis config.
fn channel_group(config: &OrdererConfig, orderer_org: &Org, app_org: &Org) -> ConfigGroup {
    let orderer = ConfigGroup {
        groups: [("OrdererOrg".to_string(), org_group(orderer_org))].into(),
        values: [
            ("BatchSize".to_string(), value(&config.batch_size)),
            (
                "BatchTimeout".to_string(),
                value(&BatchTimeout {
                    timeout: "2s".to_string(),
                }),
            ),
            ("Capabilities".to_string(), capabilities("V2_0")),
        ]
        .into(),
        mod_policy: "Admins".to_string(),
        ..ConfigGroup::default()
    };
    let application = ConfigGroup {
        groups: [("Org1".to_string(), org_group(app_org))].into(),
        values: [("Capabilities".to_string(), capabilities("V2_5"))].into(),
        mod_policy: "Admins".to_string(),
        ..ConfigGroup::default()
    };
    ConfigGroup {
        version: 0,
        groups: [
            ("Application".to_string(), application),
            ("Orderer".to_string(), orderer),
        ]
        .into(),
        values: [
            (
                "HashingAlgorithm".to_string(),
                value(&HashingAlgorithm {
                    name: "SHA256".to_string(),
                }),
            ),
            (
                "BlockDataHashingStructure".to_string(),
                value(&BlockDataHashingStructure { width: u32::MAX }),
            ),
            (
                "OrdererAddresses".to_string(),
                ConfigValue {
                    mod_policy: "/Channel/Orderer/Admins".to_string(),
                    ..value(&OrdererAddresses {
                        addresses: vec!["orderer0.orderer.landql.test:7050".to_string()],
                    })
                },
            ),
            ("Capabilities".to_string(), capabilities("V2_0")),
        ]
        .into(),
        mod_policy: "Admins".to_string(),
    }
}

/// The genesis block, as `configtxgen` writes one and a peer stores it.
fn genesis_block(config: &OrdererConfig, channel: ConfigGroup) -> Result<Block, OrdererError> {
    let envelope = ConfigEnvelope {
        config: Some(Config {
            sequence: 0,
            channel_group: Some(channel),
        }),
    };
    // configtxgen: a signature header with a nonce and no creator, the tx ID computed
    // from them, no signature.
    let nonce = nonce(&config.seed, "genesis");
    let channel_header = ChannelHeader {
        r#type: header_type::CONFIG,
        version: 0,
        timestamp: Some(Timestamp {
            seconds: i64::try_from(config.genesis_time).unwrap_or(i64::MAX),
            nanos: 0,
        }),
        channel_id: config.channel_id.clone(),
        tx_id: tx_id(&nonce, &[]),
        epoch: 0,
        extension: Vec::new(),
    };
    let payload = Payload {
        header: Some(Header {
            channel_header: channel_header.encode_to_vec(),
            signature_header: SignatureHeader {
                creator: Vec::new(),
                nonce,
            }
            .encode_to_vec(),
        }),
        data: envelope.encode_to_vec(),
    };
    let envelopes = vec![Envelope {
        payload: payload.encode_to_vec(),
        signature: Vec::new(),
    }
    .encode_to_vec()];
    let header = BlockHeader {
        number: 0,
        previous_hash: Vec::new(),
        data_hash: data_hash(&envelopes).to_vec(),
    };
    let signatures = Metadata {
        value: OrdererBlockMetadata {
            last_config: Some(LastConfig { index: 0 }),
            consenter_metadata: Vec::new(),
        }
        .encode_to_vec(),
        signatures: Vec::new(),
    };
    Ok(Block {
        header: Some(header),
        data: Some(BlockData { data: envelopes }),
        metadata: Some(metadata(
            signatures.encode_to_vec(),
            0,
            vec![ValidationCode::VALID.0],
        )),
    })
}

/// Appends blocks to a peer-format block file (`blockfile_000000`): each block a varint
/// length and the block store's serialization ([`crate::read`] describes it).
#[derive(Debug)]
pub struct BlockFile<W: io::Write> {
    out: W,
    written: u64,
}

impl<W: io::Write> BlockFile<W> {
    /// A block file written to `out` from its start.
    pub fn new(out: W) -> Self {
        BlockFile { out, written: 0 }
    }

    /// Appends `block`; returns the byte offset of its entry.
    pub fn append(&mut self, block: &Block) -> io::Result<u64> {
        let mut entry = Vec::new();
        write_block_entry(block, &mut entry);
        self.out.write_all(&entry)?;
        let offset = self.written;
        self.written += entry.len() as u64;
        Ok(offset)
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.written
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    /// Flushes and returns the writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// The block file of `blocks`, in memory.
pub fn block_file<'a>(blocks: impl IntoIterator<Item = &'a Block>) -> Vec<u8> {
    let mut out = Vec::new();
    for block in blocks {
        write_block_entry(block, &mut out);
    }
    out
}

#[cfg(test)]
mod tests;
