//! Verifying a chain of blocks as Fabric does.
//!
//! The checks of Fabric's `ledgerutil verify` (`internal/ledgerutil/verify/verify.go`),
//! with its error strings, in its order:
//!
//! - the transactions are well formed ([`transactions_well_formed`]): each envelope
//!   decodes whole, re-encoded it is as long as stored, else `transaction N has M trailing
//!   bytes` (CVE-2023-46132: the data hash is over the envelopes concatenated, so bytes
//!   moved from one envelope to the next leave it unchanged); Fabric then computes no data
//!   hash, so the block also gets `DataHash mismatch`;
//! - the header's data hash is SHA-256 over the concatenated envelopes
//!   (`protoutil.BlockDataHash`), else `DataHash mismatch`;
//! - the header's previous hash is the previous block's header hash
//!   (`protoutil.BlockHeaderHash`: SHA-256 of the ASN.1 DER `SEQUENCE { INTEGER number,
//!   OCTET STRING previous_hash, OCTET STRING data_hash }`), else `PreviousHash mismatch`;
//!   the first block read has no previous block to compare with.
//!
//! Beyond `ledgerutil`, as the peer does when it accepts a block: block numbers follow
//! each other, and the orderers' signatures in the SIGNATURES metadata verify against the
//! orderer organisations of the latest config block before the block ([`crate::msp`]). A
//! block verifies when at least one signature of an orderer organisation's member does,
//! Fabric's default `BlockValidation` policy (`ANY Writers` of the orderer orgs). The
//! first config block read is the trust anchor, unless one is given
//! ([`ChainVerifier::with_trust`]); a config block that fails a check sets no trust; blocks
//! before any (intact) config block cannot have their signatures checked and say so
//! ([`Signatures::NoTrust`]).

use prost::Message;
use sha2::{Digest, Sha256};

use crate::msp::{config_of, OrdererTrust, SignatureError};
use crate::proto::{metadata_index, Block, BlockHeader, Envelope, Metadata};

/// `ledgerutil verify`'s error for a data hash that does not match the transactions.
pub const DATA_HASH_MISMATCH: &str = "DataHash mismatch";
/// `ledgerutil verify`'s error for a previous hash that is not the previous header's hash.
pub const PREVIOUS_HASH_MISMATCH: &str = "PreviousHash mismatch";

/// `protoutil.BlockHeaderBytes`: the ASN.1 DER encoding of the header that Fabric hashes
/// and orderers sign (Go's `encoding/asn1` of a struct of a `*big.Int` and two `[]byte`).
pub fn header_bytes(header: &BlockHeader) -> Vec<u8> {
    fn tlv(tag: u8, value: &[u8], out: &mut Vec<u8>) {
        out.push(tag);
        let len = value.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(value);
    }
    // INTEGER: minimal big-endian two's complement of a non-negative number.
    let be = header.number.to_be_bytes();
    let skip = be.iter().take_while(|b| **b == 0).count().min(7);
    let mut integer = Vec::with_capacity(9);
    if be[skip] & 0x80 != 0 {
        integer.push(0);
    }
    integer.extend_from_slice(&be[skip..]);
    let mut body = Vec::new();
    tlv(0x02, &integer, &mut body);
    tlv(0x04, &header.previous_hash, &mut body);
    tlv(0x04, &header.data_hash, &mut body);
    let mut out = Vec::with_capacity(body.len() + 4);
    tlv(0x30, &body, &mut out);
    out
}

/// `protoutil.BlockHeaderHash`: SHA-256 of [`header_bytes`].
pub fn header_hash(header: &BlockHeader) -> [u8; 32] {
    Sha256::digest(header_bytes(header)).into()
}

/// `protoutil.BlockDataHash`: SHA-256 of the transaction envelopes concatenated.
pub fn data_hash(transactions: &[Vec<u8>]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for tx in transactions {
        hasher.update(tx);
    }
    hasher.finalize().into()
}

/// Fabric's `protoutil.VerifyTransactionsAreWellFormed`, with its error strings: a block
/// has transactions; unless it is a config block (one CONFIG transaction), each is an
/// envelope with a payload and a signature that re-encodes to exactly its stored bytes.
///
/// One difference: Go's protobuf keeps fields unknown to `Envelope` when re-encoding,
/// prost drops them, so an envelope carrying unknown fields is reported here as having
/// trailing bytes where Fabric would compare the bytes.
pub fn transactions_well_formed(transactions: &[Vec<u8>]) -> Result<(), String> {
    if transactions.is_empty() {
        return Err("empty block".to_string());
    }
    if let [tx] = transactions {
        if is_config_transaction(tx) {
            return Ok(());
        }
    }
    for (i, tx) in transactions.iter().enumerate() {
        let envelope = Envelope::decode(tx.as_slice())
            .map_err(|e| format!("transaction {i} is invalid: {e}"))?;
        if envelope.payload.is_empty() {
            return Err(format!("transaction {i} has no payload"));
        }
        if envelope.signature.is_empty() {
            return Err(format!("transaction {i} has no signature"));
        }
        let expected = envelope.encode_to_vec();
        if expected.len() < tx.len() {
            return Err(format!(
                "transaction {i} has {} trailing bytes",
                tx.len() - expected.len()
            ));
        }
        if expected != *tx {
            return Err(format!(
                "transaction {i} does not match its re-encoded form"
            ));
        }
    }
    Ok(())
}

/// Fabric's `protoutil.HasConfigTx` for one transaction.
fn is_config_transaction(tx: &[u8]) -> bool {
    let Ok(envelope) = Envelope::decode(tx) else {
        return false;
    };
    let Ok(payload) = crate::proto::Payload::decode(envelope.payload.as_slice()) else {
        return false;
    };
    let Some(header) = payload.header else {
        return false;
    };
    crate::proto::ChannelHeader::decode(header.channel_header.as_slice())
        .is_ok_and(|ch| ch.r#type == crate::proto::header_type::CONFIG)
}

/// What became of a block's orderer signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signatures {
    /// At least one verified; the MSP IDs of those that did.
    Verified(Vec<String>),
    /// None verified (the block's errors say why).
    Failed,
    /// No config block was read before this block: nothing to check them against.
    NoTrust,
    /// Signature checking was turned off.
    Skipped,
}

/// The findings on one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockReport {
    /// The block number its header states.
    pub number: u64,
    /// What is wrong with it, `ledgerutil`'s checks first; empty when it is intact.
    pub errors: Vec<String>,
    pub signatures: Signatures,
}

impl BlockReport {
    /// Whether no check failed.
    pub fn valid(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Checks blocks in chain order, carrying the previous header hash and the orderer trust
/// from block to block.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    check_signatures: bool,
    previous: Option<(u64, [u8; 32])>,
    trust: Option<OrdererTrust>,
}

impl ChainVerifier {
    /// A verifier for a chain read from its start (or from any block: the first block's
    /// previous hash is taken on trust, as `ledgerutil` does). `check_signatures: false`
    /// does only `ledgerutil`'s checks and the numbering.
    pub fn new(check_signatures: bool) -> Self {
        ChainVerifier {
            check_signatures,
            previous: None,
            trust: None,
        }
    }

    /// Checks signatures against `trust` from the first block on (a config block read from
    /// elsewhere, e.g. when the chain does not start at a config block).
    pub fn with_trust(trust: OrdererTrust) -> Self {
        ChainVerifier {
            check_signatures: true,
            previous: None,
            trust: Some(trust),
        }
    }

    /// The orderer trust in force after the blocks checked so far.
    pub fn trust(&self) -> Option<&OrdererTrust> {
        self.trust.as_ref()
    }

    /// Checks the next block of the chain.
    pub fn check(&mut self, block: &Block) -> BlockReport {
        let header = block.header.clone().unwrap_or_default();
        let transactions = block.transactions();
        let mut errors = Vec::new();

        // protoutil.BlockDataHash: no hash over transactions that are not well formed.
        match transactions_well_formed(transactions) {
            Ok(()) => {
                if header.data_hash != data_hash(transactions) {
                    errors.push(DATA_HASH_MISMATCH.to_string());
                }
            }
            Err(e) => {
                errors.push(e);
                errors.push(DATA_HASH_MISMATCH.to_string());
            }
        }
        if let Some((number, hash)) = self.previous {
            if header.previous_hash != hash {
                errors.push(PREVIOUS_HASH_MISMATCH.to_string());
            }
            if Some(header.number) != number.checked_add(1) {
                errors.push(format!(
                    "block number {} does not follow block {number}",
                    header.number
                ));
            }
        }

        let signatures = if !self.check_signatures {
            Signatures::Skipped
        } else if let Some(trust) = &self.trust {
            match check_signatures(trust, block, &header) {
                Ok(msps) => Signatures::Verified(msps),
                Err(why) => {
                    errors.push(why);
                    Signatures::Failed
                }
            }
        } else {
            Signatures::NoTrust
        };

        // A config block sets the trust for the blocks after it — only an intact one: a
        // config whose data hash, chain link or signature fails could be anybody's.
        if self.check_signatures && errors.is_empty() {
            match config_of(block) {
                Ok(None) => {}
                Ok(Some(_)) => match OrdererTrust::from_config_block(block) {
                    Ok(trust) => self.trust = Some(trust),
                    Err(e) => errors.push(format!("config: {e}")),
                },
                // A transaction that does not decode is reported above already.
                Err(_) => {}
            }
        }

        self.previous = Some((header.number, header_hash(&header)));
        BlockReport {
            number: header.number,
            errors,
            signatures,
        }
    }
}

/// Checks every signature of the block's SIGNATURES metadata; `Ok` with the MSPs whose
/// signatures verified when at least one did, else the reasons as one error string.
fn check_signatures(
    trust: &OrdererTrust,
    block: &Block,
    header: &BlockHeader,
) -> Result<Vec<String>, String> {
    let raw = block
        .metadata
        .as_ref()
        .and_then(|m| m.metadata.get(metadata_index::SIGNATURES))
        .ok_or_else(|| "no orderer signatures in block metadata".to_string())?;
    let metadata = Metadata::decode(raw.as_slice())
        .map_err(|e| format!("orderer signatures metadata does not decode: {e}"))?;
    if metadata.signatures.is_empty() {
        return Err("no orderer signatures in block metadata".to_string());
    }
    let header_der = header_bytes(header);
    let mut verified = Vec::new();
    let mut failures = Vec::new();
    for (i, sig) in metadata.signatures.iter().enumerate() {
        let result = if sig.signature_header.is_empty() && !sig.identifier_header.is_empty() {
            let id = crate::proto::IdentifierHeader::decode(sig.identifier_header.as_slice())
                .map(|h| h.identifier)
                .unwrap_or_default();
            Err(SignatureError::ConsenterId(id))
        } else {
            let mut signed = Vec::with_capacity(
                metadata.value.len() + sig.signature_header.len() + header_der.len(),
            );
            signed.extend_from_slice(&metadata.value);
            signed.extend_from_slice(&sig.signature_header);
            signed.extend_from_slice(&header_der);
            trust.verify(&sig.signature_header, &signed, &sig.signature)
        };
        match result {
            Ok(msp) => verified.push(msp),
            Err(e) => failures.push(format!("orderer signature {i}: {e}")),
        }
    }
    if verified.is_empty() {
        Err(failures.join("; "))
    } else {
        Ok(verified)
    }
}

/// Checks a whole chain from its first block ([`ChainVerifier::new`]).
pub fn verify_chain<'a>(
    blocks: impl IntoIterator<Item = &'a Block>,
    check_signatures: bool,
) -> Vec<BlockReport> {
    let mut verifier = ChainVerifier::new(check_signatures);
    blocks.into_iter().map(|b| verifier.check(b)).collect()
}

/// The blocks a verification found damaged, with their errors (the crate's tests).
#[cfg(test)]
pub(crate) fn damaged(reports: &[BlockReport]) -> Vec<(u64, Vec<String>)> {
    reports
        .iter()
        .filter(|r| !r.valid())
        .map(|r| (r.number, r.errors.clone()))
        .collect()
}

/// Owned strings, for comparing with a report's errors (the crate's tests).
#[cfg(test)]
pub(crate) fn strings(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

/// Flips bits (`mask`) of the last byte of a block's transaction `tx` — inside the
/// envelope's signature, so it still decodes (the crate's tamper tests).
#[cfg(test)]
pub(crate) fn flip_last_tx_byte(block: &mut Block, tx: usize, mask: u8) {
    let tx = &mut block.data.as_mut().expect("a block with data").data[tx];
    let last = tx.len() - 1;
    tx[last] ^= mask;
}

/// Flips one bit of a block's first orderer signature, `from_end` bytes from its end (the
/// crate's tamper tests, on Fabric's blocks and on `orderer`'s).
#[cfg(test)]
pub(crate) fn flip_signature_byte(block: &mut Block, from_end: usize) {
    let md = &mut block
        .metadata
        .as_mut()
        .expect("a block with metadata")
        .metadata[metadata_index::SIGNATURES];
    let mut m = Metadata::decode(md.as_slice()).expect("SIGNATURES metadata");
    let sig = &mut m.signatures[0].signature;
    let at = sig.len() - from_end;
    sig[at] ^= 0x01;
    *md = m.encode_to_vec();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msp::OrdererTrust;
    use crate::read::{read_block, read_block_file};

    fn chain(name: &str) -> Vec<Block> {
        let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).unwrap();
        read_block_file(&bytes)
            .unwrap()
            .into_iter()
            .map(|b| b.block)
            .collect()
    }

    #[test]
    fn header_bytes_are_go_asn1() {
        let h = |number, p: &[u8], d: &[u8]| BlockHeader {
            number,
            previous_hash: p.to_vec(),
            data_hash: d.to_vec(),
        };
        assert_eq!(
            header_bytes(&h(0, &[], &[])),
            [0x30, 7, 2, 1, 0, 4, 0, 4, 0]
        );
        assert_eq!(
            header_bytes(&h(127, &[1], &[])),
            [0x30, 8, 2, 1, 127, 4, 1, 1, 4, 0]
        );
        assert_eq!(
            header_bytes(&h(128, &[], &[])),
            [0x30, 8, 2, 2, 0, 128, 4, 0, 4, 0]
        );
        let big = header_bytes(&h(u64::MAX, &[7; 200], &[]));
        assert_eq!(&big[..4], &[0x30, 0x81, 216, 2]);
        assert_eq!(&big[4..14], &[9, 0, 255, 255, 255, 255, 255, 255, 255, 255]);
        assert_eq!(&big[14..17], &[4, 0x81, 200]);
    }

    #[test]
    fn sample_prod_is_intact_and_every_signature_verifies() {
        let blocks = chain("sample_prod.blockfile");
        // The chain links: each previous hash is our hash of the header before.
        for pair in blocks.windows(2) {
            let (a, b) = (
                pair[0].header.as_ref().unwrap(),
                pair[1].header.as_ref().unwrap(),
            );
            assert_eq!(b.previous_hash, header_hash(a));
        }
        let reports = verify_chain(&blocks, true);
        assert_eq!(damaged(&reports), vec![]);
        assert_eq!(reports[0].signatures, Signatures::NoTrust);
        for r in &reports[1..] {
            assert_eq!(
                r.signatures,
                Signatures::Verified(vec!["SampleOrg".into()]),
                "{r:?}"
            );
        }
    }

    #[test]
    fn bad_ledger_findings_are_ledgerutils() {
        // Fabric's internal/ledgerutil/testdata/sample_verifications/hash_error_blocks.json.
        let reports = verify_chain(&chain("sample_bad_ledger.blockfile"), false);
        assert_eq!(
            damaged(&reports),
            vec![
                (0, strings(&[DATA_HASH_MISMATCH])),
                (1, strings(&[PREVIOUS_HASH_MISMATCH])),
            ]
        );
        // Signatures add nothing here. Blocks 0, 1 and 2 are config blocks; 0 and 1 are
        // damaged, and a damaged config block is trusted by nobody, so the intact block 2
        // is the trust anchor for the blocks after it.
        let with_signatures = verify_chain(&chain("sample_bad_ledger.blockfile"), true);
        assert_eq!(damaged(&with_signatures), damaged(&reports));
        for r in &with_signatures {
            let expected = match r.number {
                0..=2 => Signatures::NoTrust,
                _ => Signatures::Verified(vec!["OrdererMSP".into()]),
            };
            assert_eq!(r.signatures, expected, "block {}", r.number);
        }
    }

    #[test]
    fn glued_transactions_are_found() {
        // Fabric's internal/ledgerutil/testdata/sample_verifications/glued_together.json.
        let blocks = chain("glued_together.blockfile");
        let expected = strings(&["transaction 0 has 3183 trailing bytes", DATA_HASH_MISMATCH]);
        assert_eq!(
            damaged(&verify_chain(&blocks, false)),
            vec![(8, expected.clone())]
        );
        // Block 8 carries block 7's orderer signature, which the peer would refuse too.
        let reports = verify_chain(&blocks, true);
        let (number, errors) = damaged(&reports).remove(0);
        assert_eq!((number, &errors[..2]), (8, &expected[..]));
        assert_eq!(errors[2], "orderer signature 0: signature does not verify");
        assert_eq!(reports[8].signatures, Signatures::Failed);
    }

    #[test]
    fn a_flipped_data_hash_breaks_this_block_and_the_next() {
        let mut blocks = chain("sample_prod.blockfile");
        blocks[4].header.as_mut().unwrap().data_hash[5] ^= 1;
        let reports = verify_chain(&blocks, true);
        let found = damaged(&reports);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].0, 4);
        assert_eq!(found[0].1[0], DATA_HASH_MISMATCH);
        // The orderer signed the header with the true hash.
        assert!(found[0].1[1].contains("does not verify"), "{found:?}");
        assert_eq!(found[1], (5, strings(&[PREVIOUS_HASH_MISMATCH])));
    }

    #[test]
    fn a_flipped_transaction_byte_is_a_data_hash_mismatch() {
        let mut blocks = chain("sample_prod.blockfile");
        flip_last_tx_byte(&mut blocks[6], 0, 0x40);
        assert_eq!(
            damaged(&verify_chain(&blocks, true)),
            vec![(6, strings(&[DATA_HASH_MISMATCH]))]
        );
    }

    #[test]
    fn a_flipped_signature_byte_fails_the_signature_only() {
        let mut blocks = chain("sample_prod.blockfile");
        flip_signature_byte(&mut blocks[3], 3);
        let reports = verify_chain(&blocks, true);
        assert_eq!(
            damaged(&reports),
            vec![(
                3,
                strings(&["orderer signature 0: signature does not verify"])
            )]
        );
        assert_eq!(reports[3].signatures, Signatures::Failed);
        // ledgerutil's checks do not look at signatures.
        assert_eq!(damaged(&verify_chain(&blocks, false)), vec![]);
    }

    #[test]
    fn a_high_s_signature_is_refused_as_fabric_does() {
        use p256::ecdsa::Signature;
        let mut blocks = chain("sample_prod.blockfile");
        let md = &mut blocks[2].metadata.as_mut().unwrap().metadata[metadata_index::SIGNATURES];
        let mut m = Metadata::decode(md.as_slice()).unwrap();
        let sig = Signature::from_der(&m.signatures[0].signature).unwrap();
        let (r, s) = sig.split_scalars();
        let high = Signature::from_scalars(r, -*s.as_ref()).unwrap();
        m.signatures[0].signature = high.to_der().as_bytes().to_vec();
        *md = m.encode_to_vec();
        let errors = &damaged(&verify_chain(&blocks, true))[0].1;
        assert_eq!(errors, &strings(&["orderer signature 0: signature has a high S value (Fabric accepts low-S signatures only)"]));
    }

    #[test]
    fn a_dropped_block_breaks_the_numbering_and_the_chain() {
        let mut blocks = chain("sample_prod.blockfile");
        blocks.remove(5);
        assert_eq!(
            damaged(&verify_chain(&blocks, true)),
            vec![(
                6,
                strings(&[
                    PREVIOUS_HASH_MISMATCH,
                    "block number 6 does not follow block 4"
                ])
            )]
        );
    }

    #[test]
    fn signatures_need_an_orderer_of_the_channel() {
        // The bad ledger's channel trusts OrdererMSP; sample_prod is signed by SampleOrg.
        let other = &chain("sample_bad_ledger.blockfile")[0];
        let trust = OrdererTrust::from_config_block(other).unwrap();
        assert_eq!(trust.msp_ids().collect::<Vec<_>>(), ["OrdererMSP"]);
        let mut verifier = ChainVerifier::with_trust(trust);
        let blocks = chain("sample_prod.blockfile");
        let report = verifier.check(&blocks[1]);
        assert_eq!(
            report.errors,
            strings(&["orderer signature 0: signer's MSP \"SampleOrg\" is not an orderer organisation of the channel"])
        );
        assert_eq!(report.signatures, Signatures::Failed);
    }

    #[test]
    fn the_genesis_block_is_intact_and_a_trust_anchor() {
        let path = format!(
            "{}/testdata/mychannel_genesis.block",
            env!("CARGO_MANIFEST_DIR")
        );
        let block = read_block(&std::fs::read(path).unwrap()).unwrap();
        let reports = verify_chain([&block], true);
        assert!(reports[0].valid(), "{reports:?}");
        let trust = OrdererTrust::from_config_block(&block).unwrap();
        assert_eq!(trust.msp_ids().collect::<Vec<_>>(), ["OrdererMSP"]);
        assert!(OrdererTrust::from_config_block(&chain("sample_prod.blockfile")[4]).is_err());
    }

    #[test]
    fn malformed_transactions_get_fabrics_errors() {
        let ok = Envelope {
            payload: vec![1],
            signature: vec![2],
        }
        .encode_to_vec();
        assert_eq!(transactions_well_formed(&[ok.clone(), ok.clone()]), Ok(()));
        assert_eq!(transactions_well_formed(&[]), Err("empty block".into()));
        let no_sig = Envelope {
            payload: vec![1],
            signature: vec![],
        }
        .encode_to_vec();
        assert_eq!(
            transactions_well_formed(&[ok.clone(), no_sig]),
            Err("transaction 1 has no signature".into())
        );
        let mut glued = ok.clone();
        glued.extend_from_slice(&ok);
        assert_eq!(
            transactions_well_formed(&[glued]),
            Err("transaction 0 has 6 trailing bytes".into())
        );
        let err = transactions_well_formed(&[vec![0x0a, 0x09]]).unwrap_err();
        assert!(err.starts_with("transaction 0 is invalid:"), "{err}");
    }
}
