//! Sealing blocks (tx root, header hash, orderer signature), checking blocks received from a
//! ledger, and cutting proofs out of them.

use ed25519_dalek::VerifyingKey;
use rayon::prelude::*;

use crate::canonical::{hash_jcs, to_jcs, CanonicalError, Hash32};
use crate::merkle;
use crate::model::{Block, BlockHeader, Proof, Transaction};
use crate::signing::{verify_header_signature, OrdererKey, SignatureError};

/// Below this many transactions a block's leaves are hashed on one thread.
const PARALLEL_LEAVES: usize = 64;

/// Leaf hashes of a block's transactions, in block order.
pub fn leaves(txs: &[Transaction]) -> Result<Vec<Hash32>, CanonicalError> {
    let leaf = |tx: &Transaction| to_jcs(tx).map(|b| merkle::leaf_hash(&b));
    if txs.len() < PARALLEL_LEAVES {
        txs.iter().map(leaf).collect()
    } else {
        txs.par_iter().map(leaf).collect()
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
        txs.par_iter().map(encode).collect::<Result<_, _>>()?
    };
    let leaves: Vec<Hash32> = encoded.iter().map(|b| merkle::leaf_hash(b)).collect();
    let tx_root = merkle::root(&leaves);
    let header = BlockHeader {
        channel: channel.to_string(),
        number,
        prev_hash,
        tx_root,
        tx_count: txs.len() as u64,
        timestamp,
    };
    let header_hash = hash_jcs(&header)?;
    let signature = key.sign(&header_hash);
    let mut json = Vec::with_capacity(512 + encoded.iter().map(|e| e.len() + 1).sum::<usize>());
    json.extend_from_slice(b"{\"header\":");
    serde_json::to_writer(&mut json, &header)?;
    json.extend_from_slice(b",\"header_hash\":");
    serde_json::to_writer(&mut json, &header_hash)?;
    json.extend_from_slice(b",\"signature\":");
    serde_json::to_writer(&mut json, &signature)?;
    json.extend_from_slice(b",\"txs\":[");
    for (i, e) in encoded.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        json.extend_from_slice(e);
    }
    json.extend_from_slice(b"]}");
    let block = Block {
        header,
        header_hash,
        signature,
        txs,
    };
    Ok((block, json))
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
