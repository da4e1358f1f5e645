//! Sealing blocks (tx root, header hash, orderer signature), checking blocks received from a
//! ledger, and cutting proofs out of them.

use ed25519_dalek::VerifyingKey;

use crate::canonical::{hash_jcs, to_jcs, CanonicalError, Hash32};
use crate::merkle;
use crate::model::{Block, BlockHeader, Proof, Signature, Transaction};
use crate::par;
use crate::signing::{verify_header_signature, OrdererKey, SignatureError};

/// Below this many transactions a block's leaves are hashed on one thread.
const PARALLEL_LEAVES: usize = 64;

/// Leaf hashes of a block's transactions, in block order.
pub fn leaves(txs: &[Transaction]) -> Result<Vec<Hash32>, CanonicalError> {
    let leaf = |tx: &Transaction| to_jcs(tx).map(|b| merkle::leaf_hash(&b));
    if txs.len() < PARALLEL_LEAVES {
        txs.iter().map(leaf).collect()
    } else {
        par::map(txs, leaf).into_iter().collect()
    }
}

/// Builds and signs block `number` of `channel` over `txs`.
pub fn seal(
    channel: &str,
    number: u64,
    prev_hash: Hash32,
    timestamp: i64,
    txs: Vec<Transaction>,
    key: &OrdererKey,
) -> Result<Block, CanonicalError> {
    Ok(seal_encoded(channel, number, prev_hash, timestamp, txs, key)?.0)
}

/// [`seal`], also returning the block's JSON. Each transaction is encoded once: its
/// canonical bytes give both its Merkle leaf and its part of the block's JSON.
pub fn seal_encoded(
    channel: &str,
    number: u64,
    prev_hash: Hash32,
    timestamp: i64,
    txs: Vec<Transaction>,
    key: &OrdererKey,
) -> Result<(Block, Vec<u8>), CanonicalError> {
    let encode = |tx: &Transaction| to_jcs(tx);
    let encoded: Vec<Vec<u8>> = if txs.len() < PARALLEL_LEAVES {
        txs.iter().map(encode).collect::<Result<_, _>>()?
    } else {
        par::map(&txs, encode)
            .into_iter()
            .collect::<Result<_, _>>()?
    };
    let mut body = TxBody::default();
    for e in &encoded {
        body.push_with(|out| {
            out.extend_from_slice(e);
            Ok(())
        })?;
    }
    let sealed = seal_body(channel, number, prev_hash, timestamp, &body, key)?;
    let block = Block {
        header: sealed.header,
        header_hash: sealed.header_hash,
        signature: sealed.signature,
        txs,
    };
    Ok((block, sealed.bytes))
}

/// A block's transactions as canonical JSON, comma-separated in one buffer (the block
/// JSON's `txs` array without its brackets), with where each one lies.
#[derive(Default)]
pub struct TxBody {
    bytes: Vec<u8>,
    spans: Vec<(usize, usize)>,
}

impl TxBody {
    pub fn with_capacity(txs: usize, bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bytes),
            spans: Vec::with_capacity(txs),
        }
    }

    /// Appends one transaction, written by `write` as JCS.
    pub fn push_with(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), CanonicalError>,
    ) -> Result<(), CanonicalError> {
        if !self.spans.is_empty() {
            self.bytes.push(b',');
        }
        let start = self.bytes.len();
        write(&mut self.bytes)?;
        self.spans.push((start, self.bytes.len()));
        Ok(())
    }

    /// Appends another body's transactions after these.
    pub fn append(&mut self, other: TxBody) {
        if other.spans.is_empty() {
            return;
        }
        if !self.spans.is_empty() {
            self.bytes.push(b',');
        }
        let shift = self.bytes.len();
        self.bytes.extend_from_slice(&other.bytes);
        self.spans
            .extend(other.spans.into_iter().map(|(a, b)| (a + shift, b + shift)));
    }

    /// Transactions in the body.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the body holds no transaction.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The Merkle leaf hash of each transaction, in block order; on several threads
    /// for a large block when `parallel` (see [`par::map`]).
    fn leaves(&self, parallel: bool) -> Vec<Hash32> {
        let leaf = |&(a, b): &(usize, usize)| merkle::leaf_hash(&self.bytes[a..b]);
        if !parallel || self.spans.len() < PARALLEL_LEAVES {
            self.spans.iter().map(leaf).collect()
        } else {
            par::map(&self.spans, leaf)
        }
    }
}

/// A sealed block without its transactions: what [`seal_body`] makes.
pub struct Sealed {
    pub header: BlockHeader,
    pub header_hash: Hash32,
    pub signature: Signature,
    /// The whole block's JSON, as it goes into the log and onto the wire.
    pub bytes: Vec<u8>,
}

impl TxBody {
    /// Empties the body, keeping its buffers for the next block.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.spans.clear();
    }
}

/// Seals block `number` of `channel` over transactions already encoded as JCS: computes
/// the tx root, hashes and signs the header, and writes the block's JSON (the same bytes
/// as serde_json's output of the [`Block`], which is JCS; a test holds the two equal).
pub fn seal_body(
    channel: &str,
    number: u64,
    prev_hash: Hash32,
    timestamp: i64,
    body: &TxBody,
    key: &OrdererKey,
) -> Result<Sealed, CanonicalError> {
    let mut json = Vec::with_capacity(512 + body.bytes.len());
    let (header, header_hash, signature) = seal_body_into(
        channel, number, prev_hash, timestamp, body, key, &mut json, true,
    )?;
    Ok(Sealed {
        header,
        header_hash,
        signature,
        bytes: json,
    })
}

/// [`seal_body`], writing the block's JSON into `json` (cleared first) so that a caller
/// sealing many blocks reuses one buffer instead of faulting in fresh pages for each.
/// `parallel`: hash the leaves of a large block on several threads (see `TxBody::leaves`).
#[allow(clippy::too_many_arguments)]
pub fn seal_body_into(
    channel: &str,
    number: u64,
    prev_hash: Hash32,
    timestamp: i64,
    body: &TxBody,
    key: &OrdererKey,
    json: &mut Vec<u8>,
    parallel: bool,
) -> Result<(BlockHeader, Hash32, Signature), CanonicalError> {
    let tx_root = merkle::root(&body.leaves(parallel));
    let header = BlockHeader {
        channel: channel.to_string(),
        number,
        prev_hash,
        tx_root,
        tx_count: body.len() as u64,
        timestamp,
    };
    let header_hash = hash_jcs(&header)?;
    let signature = key.sign(&header_hash);
    json.clear();
    json.reserve(512 + body.bytes.len());
    json.extend_from_slice(b"{\"header\":");
    serde_json::to_writer(&mut *json, &header)?;
    json.extend_from_slice(b",\"header_hash\":");
    serde_json::to_writer(&mut *json, &header_hash)?;
    json.extend_from_slice(b",\"signature\":");
    serde_json::to_writer(&mut *json, &signature)?;
    json.extend_from_slice(b",\"txs\":[");
    json.extend_from_slice(&body.bytes);
    json.extend_from_slice(b"]}");
    Ok((header, header_hash, signature))
}

/// Why a block received from a ledger cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("block {number} of {channel}: expected block {expected}")]
    OutOfOrder {
        channel: String,
        number: u64,
        expected: u64,
    },
    #[error("block {number} of {channel}: prev_hash {found} does not link to the previous block {expected}")]
    BrokenLink {
        channel: String,
        number: u64,
        found: Hash32,
        expected: Hash32,
    },
    #[error("block {number} of {channel}: header hash is {computed}, the block says {claimed}")]
    HeaderHash {
        channel: String,
        number: u64,
        computed: Hash32,
        claimed: Hash32,
    },
    #[error("block {number} of {channel}: {source}")]
    Signature {
        channel: String,
        number: u64,
        #[source]
        source: SignatureError,
    },
    #[error("block {number} of {channel}: its transactions do not hash to the header's tx_root (or tx_count)")]
    TxRoot { channel: String, number: u64 },
    #[error("block {number} of {channel}: {why}")]
    Malformed {
        channel: String,
        number: u64,
        why: String,
    },
}

impl Block {
    /// Checks the block against what the reader already trusts: it comes right after the
    /// block numbered `expected_number` - 1 whose header hash is `prev_hash`, it is signed by
    /// the `trusted` orderer key, and its transactions are the ones its header commits to.
    pub fn check(
        &self,
        trusted: &VerifyingKey,
        expected_number: u64,
        prev_hash: &Hash32,
    ) -> Result<(), BlockError> {
        let (channel, number) = (self.header.channel.clone(), self.header.number);
        if number != expected_number {
            return Err(BlockError::OutOfOrder {
                channel,
                number,
                expected: expected_number,
            });
        }
        if self.header.prev_hash != *prev_hash {
            return Err(BlockError::BrokenLink {
                channel,
                number,
                found: self.header.prev_hash,
                expected: *prev_hash,
            });
        }
        let malformed = |e: CanonicalError| BlockError::Malformed {
            channel: channel.clone(),
            number,
            why: e.to_string(),
        };
        let computed = hash_jcs(&self.header).map_err(malformed)?;
        if computed != self.header_hash {
            return Err(BlockError::HeaderHash {
                channel,
                number,
                computed,
                claimed: self.header_hash,
            });
        }
        verify_header_signature(trusted, &self.header_hash, &self.signature).map_err(|source| {
            BlockError::Signature {
                channel: channel.clone(),
                number,
                source,
            }
        })?;
        let root = merkle::root(&leaves(&self.txs).map_err(malformed)?);
        if root != self.header.tx_root || self.header.tx_count != self.txs.len() as u64 {
            return Err(BlockError::TxRoot { channel, number });
        }
        Ok(())
    }

    /// The proof document for transaction `tx_index` of this block.
    pub fn proof(&self, tx_index: usize) -> Result<Option<Proof>, CanonicalError> {
        let leaves = leaves(&self.txs)?;
        let Some(audit_path) = merkle::audit_path(&leaves, tx_index) else {
            return Ok(None);
        };
        Ok(Some(Proof {
            channel: self.header.channel.clone(),
            block_number: self.header.number,
            header: self.header.clone(),
            header_hash: self.header_hash,
            signature: self.signature.clone(),
            tx: self.txs[tx_index].clone(),
            tx_index: tx_index as u64,
            tree_size: self.txs.len() as u64,
            audit_path,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::sha256;
    use crate::model::{TxKind, Validation};
    use crate::signing::parse_public_key;

    fn tx(i: u8) -> Transaction {
        Transaction {
            tx_id: sha256(&[i]),
            kind: TxKind::UpdateVerificationStatus,
            creator: "verifier@TS".into(),
            timestamp: 1,
            args: serde_json::json!({"i": i}),
            writes: vec![],
            event: None,
            validation: Validation::BadArgument,
        }
    }

    #[test]
    fn encoded_block_is_the_blocks_json() {
        let key = OrdererKey::generate();
        for n in [0u8, 1, 3, 70] {
            let (block, json) =
                seal_encoded("c", 1, Hash32::ZERO, 2, (0..n).map(tx).collect(), &key).unwrap();
            let parsed: Block = serde_json::from_slice(&json).unwrap();
            assert_eq!(parsed, block);
            assert_eq!(json, serde_json::to_vec(&block).unwrap());
        }
    }

    #[test]
    fn check_accepts_a_chain_and_names_each_kind_of_tampering() {
        let key = OrdererKey::generate();
        let trusted = parse_public_key(&key.public_hex()).unwrap();
        let b0 = seal("c", 0, Hash32::ZERO, 1, vec![], &key).unwrap();
        let b1 = seal("c", 1, b0.header_hash, 2, (0..5).map(tx).collect(), &key).unwrap();
        b0.check(&trusted, 0, &Hash32::ZERO).unwrap();
        b1.check(&trusted, 1, &b0.header_hash).unwrap();

        assert!(matches!(
            b1.check(&trusted, 2, &b0.header_hash),
            Err(BlockError::OutOfOrder { .. })
        ));
        assert!(matches!(
            b1.check(&trusted, 1, &Hash32::ZERO),
            Err(BlockError::BrokenLink { .. })
        ));
        let mut t = b1.clone();
        t.txs[3].creator = "registrar@TS".into();
        assert!(matches!(
            t.check(&trusted, 1, &b0.header_hash),
            Err(BlockError::TxRoot { .. })
        ));
        let mut t = b1.clone();
        t.txs.pop();
        assert!(matches!(
            t.check(&trusted, 1, &b0.header_hash),
            Err(BlockError::TxRoot { .. })
        ));
        let mut t = b1.clone();
        t.header.timestamp += 1;
        assert!(matches!(
            t.check(&trusted, 1, &b0.header_hash),
            Err(BlockError::HeaderHash { .. })
        ));
        let mut t = b1.clone();
        t.signature.sig.replace_range(
            0..1,
            if t.signature.sig.starts_with('0') {
                "1"
            } else {
                "0"
            },
        );
        assert!(matches!(
            t.check(&trusted, 1, &b0.header_hash),
            Err(BlockError::Signature { .. })
        ));
        // Re-signed by another key: refused even though the signature itself is sound.
        let other = OrdererKey::generate();
        let forged = seal("c", 1, b0.header_hash, 2, (0..5).map(tx).collect(), &other).unwrap();
        assert!(matches!(
            forged.check(&trusted, 1, &b0.header_hash),
            Err(BlockError::Signature { .. })
        ));
    }
}
