//! A chaincode's writes, out of a block's valid transactions.
//!
//! For each transaction the committing peer marked valid (code 0 in the block's
//! TRANSACTIONS_FILTER metadata) that is an endorser transaction, the public KV writes of
//! one chaincode namespace: envelope → payload → `Transaction` → each action's
//! `ChaincodeActionPayload` → `ProposalResponsePayload` → `ChaincodeAction` →
//! `TxReadWriteSet` → the namespace's `KVRWSet`. Everything else is skipped and counted:
//! invalid transactions, config transactions, lifecycle transactions (`_lifecycle`,
//! `lscc`), other transaction types, and transactions that write nothing in the namespace.
//! Private-data collections are never read: a block carries only their hashes, and
//! [`crate::proto::NsReadWriteSet`] does not even declare them.

use prost::Message;

use crate::proto::{
    header_type, metadata_index, Block, ChaincodeAction, ChaincodeActionPayload, ChannelHeader,
    Envelope, KvRwSet, Payload, ProposalResponsePayload, Transaction, TxReadWriteSet,
};

/// The chaincodes that manage chaincodes: their transactions are lifecycle, not data.
const LIFECYCLE: [&str; 2] = ["_lifecycle", "lscc"];

/// One key written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub key: String,
    /// The new value, `None` for a delete.
    pub value: Option<Vec<u8>>,
}

/// The writes of one transaction in the namespace, in write-set order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxWrites {
    /// The transaction's index in the block.
    pub tx_index: usize,
    pub tx_id: String,
    pub writes: Vec<Write>,
}

/// What was skipped, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Marked invalid by the peer (non-zero validation code).
    pub invalid: usize,
    /// CONFIG transactions.
    pub config: usize,
    /// Transactions of `_lifecycle` or `lscc`.
    pub lifecycle: usize,
    /// Valid endorser transactions that write nothing in the namespace.
    pub other_namespace: usize,
    /// Transactions of any other type.
    pub other_type: usize,
}

/// The namespace's writes in one block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChaincodeWrites {
    pub transactions: Vec<TxWrites>,
    pub skipped: Skipped,
}

/// Why a block's writes could not be extracted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WritesError {
    /// The block has no TRANSACTIONS_FILTER (an orderer's block, before a peer validated
    /// it): which transactions are valid is unknown.
    #[error("block {block} has no transactions filter ({count} transactions)")]
    NoFilter { block: u64, count: usize },
    /// A transaction the peer marked valid does not decode.
    #[error("block {block}, transaction {tx}: {what} does not decode: {error}")]
    Decode {
        block: u64,
        tx: usize,
        what: &'static str,
        error: String,
    },
}

/// The KV writes in `namespace` of the block's valid endorser transactions.
pub fn chaincode_writes(block: &Block, namespace: &str) -> Result<ChaincodeWrites, WritesError> {
    let number = block.number();
    let transactions = block.transactions();
    let filter = block
        .metadata
        .as_ref()
        .and_then(|m| m.metadata.get(metadata_index::TRANSACTIONS_FILTER))
        .filter(|f| f.len() >= transactions.len())
        .ok_or(WritesError::NoFilter {
            block: number,
            count: transactions.len(),
        })?;
    let mut out = ChaincodeWrites::default();
    for (i, (tx, code)) in transactions.iter().zip(filter.iter()).enumerate() {
        if *code != 0 {
            out.skipped.invalid += 1;
            continue;
        }
        let fail = |what: &'static str| {
            move |e: prost::DecodeError| WritesError::Decode {
                block: number,
                tx: i,
                what,
                error: e.to_string(),
            }
        };
        let envelope = Envelope::decode(tx.as_slice()).map_err(fail("envelope"))?;
        let payload = Payload::decode(envelope.payload.as_slice()).map_err(fail("payload"))?;
        let header = payload.header.unwrap_or_default();
        let channel = ChannelHeader::decode(header.channel_header.as_slice())
            .map_err(fail("channel header"))?;
        match channel.r#type {
            header_type::ENDORSER_TRANSACTION => {}
            header_type::CONFIG => {
                out.skipped.config += 1;
                continue;
            }
            _ => {
                out.skipped.other_type += 1;
                continue;
            }
        }
        let transaction =
            Transaction::decode(payload.data.as_slice()).map_err(fail("transaction"))?;
        let mut writes = Vec::new();
        let mut lifecycle = false;
        for action in &transaction.actions {
            let cap = ChaincodeActionPayload::decode(action.payload.as_slice())
                .map_err(fail("chaincode action payload"))?;
            let prp = cap.action.unwrap_or_default().proposal_response_payload;
            let prp = ProposalResponsePayload::decode(prp.as_slice())
                .map_err(fail("proposal response payload"))?;
            let action = ChaincodeAction::decode(prp.extension.as_slice())
                .map_err(fail("chaincode action"))?;
            let chaincode = action.chaincode_id.unwrap_or_default().name;
            if LIFECYCLE.contains(&chaincode.as_str()) {
                lifecycle = true;
                continue;
            }
            let rwset = TxReadWriteSet::decode(action.results.as_slice())
                .map_err(fail("read-write set"))?;
            for ns in rwset.ns_rwset.iter().filter(|ns| ns.namespace == namespace) {
                let kv = KvRwSet::decode(ns.rwset.as_slice()).map_err(fail("KV read-write set"))?;
                writes.extend(kv.writes.into_iter().map(|w| Write {
                    key: w.key,
                    value: (!w.is_delete).then_some(w.value),
                }));
            }
        }
        if lifecycle && writes.is_empty() {
            out.skipped.lifecycle += 1;
        } else if writes.is_empty() {
            out.skipped.other_namespace += 1;
        } else {
            out.transactions.push(TxWrites {
                tx_index: i,
                tx_id: channel.tx_id,
                writes,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::read_block_file;

    fn blocks() -> Vec<Block> {
        let path = format!(
            "{}/testdata/sample_prod.blockfile",
            env!("CARGO_MANIFEST_DIR")
        );
        read_block_file(&std::fs::read(path).unwrap())
            .unwrap()
            .into_iter()
            .map(|b| b.block)
            .collect()
    }

    #[test]
    fn marbles_writes_of_sample_prod() {
        let blocks = blocks();
        let all: Vec<ChaincodeWrites> = blocks
            .iter()
            .map(|b| chaincode_writes(b, "marbles").unwrap())
            .collect();
        // Block 0: the config block; 1-3: _lifecycle (install, approve, commit).
        assert_eq!(
            all[0].skipped,
            Skipped {
                config: 1,
                ..Skipped::default()
            }
        );
        for w in &all[1..4] {
            assert_eq!(
                w.skipped,
                Skipped {
                    lifecycle: 1,
                    ..Skipped::default()
                }
            );
            assert!(w.transactions.is_empty());
        }
        let counts: Vec<usize> = all[4..]
            .iter()
            .map(|w| w.transactions[0].writes.len())
            .collect();
        assert_eq!(counts, [2, 1, 1, 2]);
        let first = &all[4].transactions[0];
        assert_eq!(first.tx_index, 0);
        assert!(!first.tx_id.is_empty());
        for w in all[4..].iter().flat_map(|w| &w.transactions[0].writes) {
            assert!(!w.key.is_empty());
        }
        let text: Vec<String> = all[4..]
            .iter()
            .flat_map(|w| &w.transactions[0].writes)
            .map(|w| {
                format!(
                    "{}={}",
                    w.key,
                    w.value
                        .as_deref()
                        .map_or("<deleted>".into(), |v| String::from_utf8_lossy(v)
                            .into_owned())
                )
            })
            .collect();
        eprintln!("{text:#?}");
        assert!(text.iter().any(|t| t.contains("marble")), "{text:?}");
    }

    #[test]
    fn other_namespaces_and_invalid_transactions_are_skipped() {
        let mut blocks = blocks();
        let other = chaincode_writes(&blocks[4], "land-registry").unwrap();
        assert!(other.transactions.is_empty());
        assert_eq!(
            other.skipped,
            Skipped {
                other_namespace: 1,
                ..Skipped::default()
            }
        );
        // The peer marked it invalid (MVCC_READ_CONFLICT, 11): not read at all.
        blocks[4].metadata.as_mut().unwrap().metadata[metadata_index::TRANSACTIONS_FILTER] =
            vec![11];
        let invalid = chaincode_writes(&blocks[4], "marbles").unwrap();
        assert_eq!(
            invalid.skipped,
            Skipped {
                invalid: 1,
                ..Skipped::default()
            }
        );
        // Without a filter nobody knows which transactions are valid.
        blocks[4].metadata.as_mut().unwrap().metadata.truncate(2);
        assert_eq!(
            chaincode_writes(&blocks[4], "marbles"),
            Err(WritesError::NoFilter { block: 4, count: 1 })
        );
    }

    #[test]
    fn a_valid_transaction_that_does_not_decode_is_an_error() {
        let mut blocks = blocks();
        blocks[5].data.as_mut().unwrap().data[0] = vec![0x0a, 0x05, 1];
        let err = chaincode_writes(&blocks[5], "marbles").unwrap_err();
        assert!(
            matches!(
                err,
                WritesError::Decode {
                    block: 5,
                    tx: 0,
                    what: "envelope",
                    ..
                }
            ),
            "{err}"
        );
    }
}
