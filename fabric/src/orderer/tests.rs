//! The blocks [`Orderer`] makes, read back by the crate's reading side.

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::Signature;
use std::collections::BTreeSet;

use super::*;
use crate::msp::OrdererTrust;
use crate::proto::{ChaincodeProposalPayload, SerializedIdentity};
use crate::read::{read_block, read_block_file};
use crate::verify::{
    damaged, flip_last_tx_byte, flip_signature_byte, strings, PREVIOUS_HASH_MISMATCH,
};
use crate::verify::{verify_chain, ChainVerifier, Signatures, DATA_HASH_MISMATCH};
use crate::writes::{chaincode_writes, Skipped, TxWrites};

const SEED: [u8; 32] = [7; 32];

fn orderer() -> Orderer {
    Orderer::new(OrdererConfig::new("landql", SEED)).expect("a valid config")
}

fn put(key: &str, value: &str) -> Write {
    Write {
        key: key.to_string(),
        value: Some(value.as_bytes().to_vec()),
    }
}

fn del(key: &str) -> Write {
    Write {
        key: key.to_string(),
        value: None,
    }
}

/// The genesis block and three blocks of transactions.
fn chain(o: &mut Orderer) -> Vec<Block> {
    let mut blocks = vec![o.genesis().clone()];
    blocks.push(
        o.cut(&[TxSpec::new("land-registry")
            .arg("register")
            .arg("parcel-1")
            .put("parcel-1", "{\"owner\":\"alice\"}")])
            .unwrap(),
    );
    blocks.push(
        o.cut(&[
            TxSpec::new("land-registry")
                .put("parcel-2", "{\"owner\":\"bob\"}")
                .put("parcel-1", "{\"owner\":\"carol\"}"),
            TxSpec::new("land-registry")
                .put("parcel-3", "x")
                .validation(ValidationCode::MVCC_READ_CONFLICT),
        ])
        .unwrap(),
    );
    blocks.push(
        o.cut(&[TxSpec::new("land-registry").delete("parcel-2")])
            .unwrap(),
    );
    blocks
}

fn envelope(block: &Block, tx: usize) -> (Envelope, Payload, ChannelHeader, SignatureHeader) {
    let envelope = Envelope::decode(block.transactions()[tx].as_slice()).unwrap();
    let payload = Payload::decode(envelope.payload.as_slice()).unwrap();
    let header = payload.header.clone().unwrap();
    let channel = ChannelHeader::decode(header.channel_header.as_slice()).unwrap();
    let signature = SignatureHeader::decode(header.signature_header.as_slice()).unwrap();
    (envelope, payload, channel, signature)
}

fn orderer_signatures(block: &Block) -> Metadata {
    let raw = &block.metadata.as_ref().unwrap().metadata[metadata_index::SIGNATURES];
    Metadata::decode(raw.as_slice()).unwrap()
}

fn is_low_s_der(bytes: &[u8]) -> bool {
    let sig = Signature::from_der(bytes).expect("an ASN.1 DER ECDSA signature");
    sig.to_der().as_bytes() == bytes && sig.normalize_s() == sig
}

#[test]
fn the_genesis_block_is_a_config_block_trusting_the_orderer_org() {
    let o = orderer();
    let genesis = o.genesis();
    assert_eq!(genesis.number(), 0);
    assert!(genesis.header.as_ref().unwrap().previous_hash.is_empty());
    let trust = OrdererTrust::from_config_block(genesis).unwrap();
    assert_eq!(trust.msp_ids().collect::<Vec<_>>(), [ORDERER_MSP]);
    let reports = verify_chain([genesis], true);
    assert_eq!(damaged(&reports), vec![]);
    // configtxgen signs no genesis block: nothing to check it against but itself.
    assert_eq!(reports[0].signatures, Signatures::NoTrust);
    // The application org is there too, with its CA.
    let config = crate::msp::config_of(genesis).unwrap().unwrap();
    let channel = config.config.unwrap().channel_group.unwrap();
    let app = &channel.groups["Application"].groups["Org1"].values["MSP"];
    let msp = MspConfig::decode(app.value.as_slice()).unwrap();
    let fabric = FabricMspConfig::decode(msp.config.as_slice()).unwrap();
    assert_eq!(fabric.name, APP_MSP);
    assert_eq!(fabric.root_certs, [o.app_org().ca.cert_pem().as_bytes()]);
    let batch = BatchSize::decode(
        channel.groups["Orderer"].values["BatchSize"]
            .value
            .as_slice(),
    )
    .unwrap();
    assert_eq!(batch, o.config().batch_size);
}

#[test]
fn made_blocks_verify_with_their_orderer_signatures() {
    let mut o = orderer();
    let blocks = chain(&mut o);
    assert_eq!(o.height(), 4);
    let reports = verify_chain(&blocks, true);
    assert_eq!(damaged(&reports), vec![]);
    assert_eq!(reports[0].signatures, Signatures::NoTrust);
    for r in &reports[1..] {
        assert_eq!(
            r.signatures,
            Signatures::Verified(vec![ORDERER_MSP.into()]),
            "{r:?}"
        );
    }
    for pair in blocks.windows(2) {
        let (a, b) = (
            pair[0].header.as_ref().unwrap(),
            pair[1].header.as_ref().unwrap(),
        );
        assert_eq!(b.number, a.number + 1);
        assert_eq!(b.previous_hash, header_hash(a));
        assert_eq!(b.data_hash, data_hash(pair[1].transactions()));
    }
    // A verifier given the genesis block's trust checks from block 1 on.
    let trust = OrdererTrust::from_config_block(&blocks[0]).unwrap();
    let mut verifier = ChainVerifier::with_trust(trust);
    for b in &blocks[1..] {
        let report = verifier.check(b);
        assert!(report.valid(), "{report:?}");
    }
}

#[test]
fn metadata_is_laid_out_as_fabric_2_peers_store_it() {
    let mut o = orderer();
    let blocks = chain(&mut o);
    // A Fabric 2.x peer's block of sample_prod, for comparison.
    let sample = sample_block();
    let theirs = sample.metadata.clone().unwrap().metadata;
    for b in &blocks {
        let ours = &b.metadata.as_ref().unwrap().metadata;
        assert_eq!(ours.len(), theirs.len());
        // SIGNATURES' value: OrdererBlockMetadata { last_config: { index: 0 } } with no
        // consenter metadata, byte for byte as the sample's.
        let signatures = orderer_signatures(b);
        assert_eq!(signatures.value, orderer_signatures(&sample).value);
        let value = OrdererBlockMetadata::decode(signatures.value.as_slice()).unwrap();
        assert_eq!(value.last_config, Some(LastConfig { index: 0 }));
        // LAST_CONFIG: Metadata { value: LastConfig { index: 0 } }, which encodes to
        // nothing, as the sample's empty slot.
        assert_eq!(
            ours[metadata_index::LAST_CONFIG],
            theirs[metadata_index::LAST_CONFIG]
        );
        let last = Metadata::decode(ours[metadata_index::LAST_CONFIG].as_slice()).unwrap();
        assert_eq!(LastConfig::decode(last.value.as_slice()).unwrap().index, 0);
        assert_eq!(
            ours[metadata_index::ORDERER],
            theirs[metadata_index::ORDERER]
        );
        assert_eq!(
            ours[metadata_index::TRANSACTIONS_FILTER].len(),
            b.transactions().len()
        );
    }
    assert_eq!(
        blocks[2].metadata.as_ref().unwrap().metadata[metadata_index::TRANSACTIONS_FILTER],
        [0, 11]
    );
    assert!(orderer_signatures(&blocks[0]).signatures.is_empty());
    assert_eq!(orderer_signatures(&blocks[1]).signatures.len(), 1);
}

fn sample_block() -> Block {
    let path = format!(
        "{}/testdata/sample_prod.blockfile",
        env!("CARGO_MANIFEST_DIR")
    );
    read_block_file(&std::fs::read(path).unwrap()).unwrap()[4]
        .block
        .clone()
}

#[test]
fn transactions_are_endorser_transactions_signed_by_the_app_member() {
    let mut o = orderer();
    let blocks = chain(&mut o);
    let member = &o.app_org().member;
    let key = member.verifying_key();
    for (tx, block) in [(0, &blocks[1]), (0, &blocks[2]), (1, &blocks[2])] {
        let (env, payload, channel, signature) = envelope(block, tx);
        assert_eq!(channel.r#type, header_type::ENDORSER_TRANSACTION);
        assert_eq!(channel.channel_id, "landql");
        assert_eq!(
            channel.timestamp.as_ref().unwrap().seconds,
            o.config().genesis_time as i64 + block.number() as i64
        );
        let extension = ChaincodeHeaderExtension::decode(channel.extension.as_slice()).unwrap();
        assert_eq!(extension.chaincode_id.unwrap().name, "land-registry");
        // The creator: the app org's member, its certificate in PEM.
        let creator = SerializedIdentity::decode(signature.creator.as_slice()).unwrap();
        assert_eq!(creator.mspid, APP_MSP);
        assert_eq!(creator.id_bytes, member.cert_pem().as_bytes());
        assert!(creator
            .id_bytes
            .starts_with(b"-----BEGIN CERTIFICATE-----\n"));
        // protoutil.ComputeTxID, computed here from scratch.
        assert_eq!(signature.nonce.len(), 24);
        let mut preimage = signature.nonce.clone();
        preimage.extend_from_slice(&signature.creator);
        let expected: String = Sha256::digest(&preimage)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(channel.tx_id, expected);
        // The creator signed the payload.
        let sig = Signature::from_der(&env.signature).unwrap();
        key.verify(&env.payload, &sig).unwrap();
        assert!(is_low_s_der(&env.signature));
        // The endorsement, over the response payload and the endorser, and the proposal
        // hash over the header and the proposal payload.
        let transaction = Transaction::decode(payload.data.as_slice()).unwrap();
        let action = &transaction.actions[0];
        assert_eq!(
            action.header,
            payload.header.as_ref().unwrap().signature_header
        );
        let cap = ChaincodeActionPayload::decode(action.payload.as_slice()).unwrap();
        let endorsed = cap.action.as_ref().unwrap();
        let endorsement = &endorsed.endorsements[0];
        let mut signed = endorsed.proposal_response_payload.clone();
        signed.extend_from_slice(&endorsement.endorser);
        key.verify(
            &signed,
            &Signature::from_der(&endorsement.signature).unwrap(),
        )
        .unwrap();
        let prp =
            ProposalResponsePayload::decode(endorsed.proposal_response_payload.as_slice()).unwrap();
        let header = payload.header.as_ref().unwrap();
        let mut h = Sha256::new();
        h.update(&header.channel_header);
        h.update(&header.signature_header);
        h.update(&cap.chaincode_proposal_payload);
        assert_eq!(prp.proposal_hash, h.finalize().to_vec());
        let spec = invocation_spec(&cap);
        assert_eq!(spec.chaincode_id.unwrap().name, "land-registry");
        let cc_action = ChaincodeAction::decode(prp.extension.as_slice()).unwrap();
        assert_eq!(cc_action.response.unwrap().status, 200);
        assert_eq!(cc_action.chaincode_id.unwrap().version, CHAINCODE_VERSION);
    }
    let (_, payload, _, _) = envelope(&blocks[1], 0);
    let transaction = Transaction::decode(payload.data.as_slice()).unwrap();
    let cap = ChaincodeActionPayload::decode(transaction.actions[0].payload.as_slice()).unwrap();
    let spec = invocation_spec(&cap);
    assert_eq!(
        spec.input.unwrap().args,
        [b"register".to_vec(), b"parcel-1".to_vec()]
    );
}

#[test]
fn every_signature_is_der_and_low_s() {
    // About 45 ECDSA signatures: were S left as it comes, about half would be high.
    let mut o = orderer();
    let mut blocks = chain(&mut o);
    for i in 0..6 {
        let txs: Vec<TxSpec> = (0..5)
            .map(|j| TxSpec::new("cc").put(format!("k{i}-{j}"), "v"))
            .collect();
        blocks.push(o.cut(&txs).unwrap());
    }
    let mut count = 0;
    for b in &blocks[1..] {
        for s in &orderer_signatures(b).signatures {
            assert!(is_low_s_der(&s.signature));
            count += 1;
        }
        for tx in b.transactions() {
            let env = Envelope::decode(tx.as_slice()).unwrap();
            assert!(is_low_s_der(&env.signature));
            let payload = Payload::decode(env.payload.as_slice()).unwrap();
            let t = Transaction::decode(payload.data.as_slice()).unwrap();
            let cap = ChaincodeActionPayload::decode(t.actions[0].payload.as_slice()).unwrap();
            for e in cap.action.unwrap().endorsements {
                assert!(is_low_s_der(&e.signature));
                count += 1;
            }
            count += 1;
        }
    }
    // The certificates' signatures too.
    for org in [o.orderer_org(), o.app_org()] {
        for id in [&org.ca, &org.member] {
            let cert = <x509_cert::Certificate as x509_cert::der::Decode>::from_der(id.cert_der())
                .unwrap();
            assert!(is_low_s_der(cert.signature().as_bytes().unwrap()));
            count += 1;
        }
    }
    assert!(count >= 40, "{count}");
}

#[test]
fn writes_are_exactly_the_valid_write_sets_put_in() {
    let mut o = orderer();
    let block = o
        .cut(&[
            TxSpec::new("land-registry")
                .put("parcel-9", "nine")
                .delete("parcel-3")
                .put("parcel-1", "one"),
            TxSpec::new("land-registry")
                .put("parcel-5", "conflicting")
                .validation(ValidationCode::MVCC_READ_CONFLICT),
            TxSpec::new("other-cc").put("parcel-1", "elsewhere"),
            TxSpec::new("land-registry")
                .put("parcel-2", "")
                .validation(ValidationCode::ENDORSEMENT_POLICY_FAILURE),
            TxSpec::new("land-registry").put("parcel-4", vec![0u8, 255, 1]),
        ])
        .unwrap();
    let tx_id = |i| envelope(&block, i).2.tx_id;
    let found = chaincode_writes(&block, "land-registry").unwrap();
    assert_eq!(
        found.transactions,
        vec![
            TxWrites {
                tx_index: 0,
                tx_id: tx_id(0),
                // Sorted by key, as Fabric's read-write set builder writes them.
                writes: vec![
                    put("parcel-1", "one"),
                    del("parcel-3"),
                    put("parcel-9", "nine")
                ],
            },
            TxWrites {
                tx_index: 4,
                tx_id: tx_id(4),
                writes: vec![Write {
                    key: "parcel-4".into(),
                    value: Some(vec![0, 255, 1]),
                }],
            },
        ]
    );
    assert_eq!(
        found.skipped,
        Skipped {
            invalid: 2,
            other_namespace: 1,
            ..Skipped::default()
        }
    );
    let other = chaincode_writes(&block, "other-cc").unwrap();
    assert_eq!(other.transactions.len(), 1);
    assert_eq!(other.transactions[0].writes, [put("parcel-1", "elsewhere")]);
    // The genesis block's one transaction is its config.
    let genesis = chaincode_writes(o.genesis(), "land-registry").unwrap();
    assert_eq!(
        genesis.skipped,
        Skipped {
            config: 1,
            ..Skipped::default()
        }
    );
}

#[test]
fn a_block_file_round_trips_through_the_reader() {
    let mut o = orderer();
    let blocks = chain(&mut o);
    let mut file = BlockFile::new(Vec::new());
    assert!(file.is_empty());
    let mut offsets = Vec::new();
    for b in &blocks {
        offsets.push(file.append(b).unwrap());
    }
    let length = file.len();
    let bytes = file.into_inner().unwrap();
    assert_eq!(bytes.len() as u64, length);
    assert_eq!(bytes, block_file(&blocks));
    let read = read_block_file(&bytes).unwrap();
    assert_eq!(read.len(), blocks.len());
    for ((r, b), offset) in read.iter().zip(&blocks).zip(&offsets) {
        assert_eq!(&r.block, b);
        assert_eq!(r.offset as u64, *offset);
    }
    assert_eq!(
        damaged(&verify_chain(read.iter().map(|r| &r.block), true)),
        vec![]
    );
    // The genesis block as a `.block` file (one serialized common.Block).
    let genesis = read_block(&o.genesis().encode_to_vec()).unwrap();
    assert_eq!(&genesis, o.genesis());
}

#[test]
fn the_same_seed_gives_the_same_bytes_another_seed_other_certificates() {
    let file = |seed: [u8; 32]| {
        let mut o = Orderer::new(OrdererConfig::new("landql", seed)).unwrap();
        let blocks = chain(&mut o);
        (block_file(&blocks), o)
    };
    let (a, oa) = file(SEED);
    let (b, _) = file(SEED);
    assert_eq!(a, b);
    let mut other_seed = SEED;
    other_seed[31] ^= 1;
    let (c, oc) = file(other_seed);
    assert_ne!(a, c);
    for (x, y) in [
        (&oa.orderer_org().ca, &oc.orderer_org().ca),
        (&oa.orderer_org().member, &oc.orderer_org().member),
        (&oa.app_org().ca, &oc.app_org().ca),
        (&oa.app_org().member, &oc.app_org().member),
    ] {
        assert_ne!(x.cert_der(), y.cert_der());
        assert_ne!(x.verifying_key(), y.verifying_key());
        assert_eq!(x.msp_id(), y.msp_id());
    }
    // The other seed's orderer has the same MSP ID but another CA: its blocks do not
    // verify against this channel's trust.
    let trust = OrdererTrust::from_config_block(oa.genesis()).unwrap();
    let other_blocks = read_block_file(&c).unwrap();
    let report = ChainVerifier::with_trust(trust).check(&other_blocks[1].block);
    assert_eq!(
        report.errors,
        strings(&["orderer signature 0: signer certificate does not chain to a CA of OrdererMSP"])
    );
}

#[test]
fn a_flipped_transaction_byte_is_a_data_hash_mismatch() {
    let mut blocks = chain(&mut orderer());
    flip_last_tx_byte(&mut blocks[2], 1, 0x01);
    // The orderer signed the header, whose data hash is the true one.
    assert_eq!(
        damaged(&verify_chain(&blocks, true)),
        vec![(2, strings(&[DATA_HASH_MISMATCH]))]
    );
}

#[test]
fn a_flipped_header_byte_breaks_the_signature_and_the_next_link() {
    for field in ["previous_hash", "data_hash"] {
        let mut blocks = chain(&mut orderer());
        let header = blocks[2].header.as_mut().unwrap();
        match field {
            "previous_hash" => header.previous_hash[0] ^= 0x80,
            _ => header.data_hash[31] ^= 0x01,
        }
        let first = if field == "previous_hash" {
            PREVIOUS_HASH_MISMATCH
        } else {
            DATA_HASH_MISMATCH
        };
        let reports = verify_chain(&blocks, true);
        assert_eq!(
            damaged(&reports),
            vec![
                (
                    2,
                    strings(&[first, "orderer signature 0: signature does not verify"])
                ),
                (3, strings(&[PREVIOUS_HASH_MISMATCH])),
            ],
            "{field}"
        );
        assert_eq!(reports[2].signatures, Signatures::Failed);
    }
    // And the block number, which the orderer signed too.
    let mut blocks = chain(&mut orderer());
    blocks[3].header.as_mut().unwrap().number = 4;
    assert_eq!(
        damaged(&verify_chain(&blocks, true)),
        vec![(
            4,
            strings(&[
                "block number 4 does not follow block 2",
                "orderer signature 0: signature does not verify"
            ])
        )]
    );
}

#[test]
fn a_flipped_signature_byte_fails_the_signature_only() {
    let mut blocks = chain(&mut orderer());
    flip_signature_byte(&mut blocks[1], 2);
    let reports = verify_chain(&blocks, true);
    assert_eq!(
        damaged(&reports),
        vec![(
            1,
            strings(&["orderer signature 0: signature does not verify"])
        )]
    );
    assert_eq!(reports[1].signatures, Signatures::Failed);
    // And the signed value (the last config index) is covered by it too.
    let mut blocks = chain(&mut orderer());
    let md = &mut blocks[3].metadata.as_mut().unwrap().metadata[metadata_index::SIGNATURES];
    let mut m = Metadata::decode(md.as_slice()).unwrap();
    m.value = OrdererBlockMetadata {
        last_config: Some(LastConfig { index: 2 }),
        consenter_metadata: Vec::new(),
    }
    .encode_to_vec();
    *md = m.encode_to_vec();
    assert_eq!(
        damaged(&verify_chain(&blocks, true)),
        vec![(
            3,
            strings(&["orderer signature 0: signature does not verify"])
        )]
    );
}

#[test]
fn the_transactions_filter_is_not_signed() {
    // As in Fabric: the peer writes the filter after the orderer signed, so a changed
    // validation code is not a verification error — only `writes` sees it.
    let mut blocks = chain(&mut orderer());
    blocks[2].metadata.as_mut().unwrap().metadata[metadata_index::TRANSACTIONS_FILTER] = vec![0, 0];
    assert_eq!(damaged(&verify_chain(&blocks, true)), vec![]);
    assert_eq!(
        chaincode_writes(&blocks[2], "land-registry")
            .unwrap()
            .transactions
            .len(),
        2
    );
}

#[test]
fn openssl_verifies_the_issued_certificates() {
    let o = orderer();
    let dir = std::env::temp_dir().join(format!("landql-fabric-openssl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, id: &Identity| {
        let path = dir.join(name);
        std::fs::write(&path, id.cert_pem()).unwrap();
        path
    };
    let orderer_ca = write("orderer-ca.pem", &o.orderer_org().ca);
    let orderer_member = write("orderer-member.pem", &o.orderer_org().member);
    let app_ca = write("app-ca.pem", &o.app_org().ca);
    let app_member = write("app-member.pem", &o.app_org().member);
    // Within the certificates' validity whatever today's date.
    let at = (o.config().genesis_time + 3600).to_string();
    let verify = |ca: &std::path::Path, cert: &std::path::Path| {
        std::process::Command::new("openssl")
            .args(["verify", "-x509_strict", "-attime", &at, "-CAfile"])
            .arg(ca)
            .arg(cert)
            .output()
    };
    let first = match verify(&orderer_ca, &orderer_member) {
        Ok(out) => out,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            eprintln!("SKIPPED openssl_verifies_the_issued_certificates: no `openssl` on PATH");
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
        Err(e) => panic!("running openssl: {e}"),
    };
    let second = verify(&app_ca, &app_member).unwrap();
    let crossed = verify(&orderer_ca, &app_member).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    for out in [&first, &second] {
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout)
            .trim_end()
            .ends_with(": OK"));
    }
    // A member of the other org does not chain to this CA.
    assert!(!crossed.status.success());
}

#[test]
fn bad_input_is_a_typed_error_and_changes_nothing() {
    let mut o = orderer();
    assert_eq!(o.cut(&[]), Err(OrdererError::NoTransactions));
    let eleven: Vec<TxSpec> = (0..11)
        .map(|i| TxSpec::new("cc").put(format!("k{i}"), "v"))
        .collect();
    assert_eq!(
        o.cut(&eleven),
        Err(OrdererError::TooManyTransactions { count: 11, max: 10 })
    );
    for name in ["", "_lifecycle", "lscc", "a--b", "-a", "a-", "my cc", "é"] {
        assert!(
            matches!(
                o.cut(&[TxSpec::new(name).put("k", "v")]),
                Err(OrdererError::BadChaincodeName { tx: 0, .. })
            ),
            "{name:?}"
        );
    }
    assert_eq!(
        o.cut(&[
            TxSpec::new("cc").put("k", "v"),
            TxSpec::new("cc").put("k", "v").delete("k"),
        ]),
        Err(OrdererError::DuplicateKey {
            tx: 1,
            key: "k".into()
        })
    );
    assert_eq!(
        o.cut(&[TxSpec::new("cc").put("", "v")]),
        Err(OrdererError::EmptyKey { tx: 0 })
    );
    // Nothing was made: the next block is block 1 and the chain verifies.
    let block = o.cut(&[TxSpec::new("cc").put("k", "v")]).unwrap();
    assert_eq!(block.number(), 1);
    let reports = verify_chain([o.genesis(), &block], true);
    assert_eq!(damaged(&reports), vec![]);
}

#[test]
fn oversized_transactions_and_blocks_are_refused() {
    let small = |max: u32| {
        let mut config = OrdererConfig::new("landql", SEED);
        config.batch_size.absolute_max_bytes = max;
        config.batch_size.preferred_max_bytes = max / 2;
        Orderer::new(config).unwrap()
    };
    // The size of one transaction with a 1000-byte value.
    let tx = TxSpec::new("cc").put("k", vec![b'x'; 1000]);
    let size = orderer()
        .cut(std::slice::from_ref(&tx))
        .unwrap()
        .transactions()[0]
        .len() as u32;
    assert!(size > 1000);

    // A value larger than the limit by itself, refused before anything is encoded.
    let mut o = small(size + size / 2);
    let huge = TxSpec::new("cc").put("k", vec![0u8; size as usize * 2]);
    assert_eq!(
        o.cut(&[tx.clone(), huge]),
        Err(OrdererError::TransactionTooLarge {
            tx: 1,
            size: 1 + 2 * u64::from(size),
            max: size + size / 2
        })
    );
    // A value under the limit whose envelope (certificates, signatures) is over it.
    let mut o = small(size - 1);
    assert_eq!(
        o.cut(std::slice::from_ref(&tx)),
        Err(OrdererError::TransactionTooLarge {
            tx: 0,
            size: u64::from(size),
            max: size - 1
        })
    );
    // Two transactions that fit one by one but not together.
    let mut o = small(size + size / 2);
    let mut other = tx.clone();
    other.writes[0].key = "k2".into();
    let two = o.cut(&[tx.clone(), other.clone()]);
    assert!(
        matches!(two, Err(OrdererError::BlockTooLarge { size: s, max }) if s > u64::from(max)),
        "{two:?}"
    );
    assert_eq!(o.cut(&[tx]).unwrap().number(), 1);
    assert_eq!(o.cut(&[other]).unwrap().number(), 2);
}

#[test]
fn bad_configs_are_refused() {
    for name in [
        "",
        "Landql",
        "1landql",
        "land_ql",
        "land ql",
        &"a".repeat(250),
    ] {
        assert!(
            matches!(
                Orderer::new(OrdererConfig::new(name, SEED)),
                Err(OrdererError::BadChannelName { .. })
            ),
            "{name:?}"
        );
    }
    assert!(Orderer::new(OrdererConfig::new("a.b-9", SEED)).is_ok());
    let mut config = OrdererConfig::new("landql", SEED);
    config.batch_size.max_message_count = 0;
    assert_eq!(
        Orderer::new(config).unwrap_err(),
        OrdererError::BadBatchSize("MaxMessageCount is 0")
    );
    let mut config = OrdererConfig::new("landql", SEED);
    config.batch_size.preferred_max_bytes = config.batch_size.absolute_max_bytes + 1;
    assert!(matches!(
        Orderer::new(config),
        Err(OrdererError::BadBatchSize(_))
    ));
    // Times a certificate cannot state are an error, not a panic.
    let mut config = OrdererConfig::new("landql", SEED);
    config.genesis_time = u64::MAX;
    assert!(matches!(Orderer::new(config), Err(OrdererError::Crypto(_))));
}

mod any_input {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    fn spec() -> impl Strategy<Value = TxSpec> {
        (
            // Mostly valid chaincode names, some invalid.
            prop_oneof![3 => "[a-c]{1,3}", 1 => "[a-c_-]{0,4}"],
            // Mostly distinct keys, some empty or repeated.
            vec(
                (
                    prop_oneof![6 => "[a-dé\u{0}]{1,4}", 1 => Just(String::new())],
                    proptest::option::of(vec(any::<u8>(), 0..8)),
                ),
                0..4,
            ),
            prop_oneof![Just(0u8), any::<u8>()],
        )
            .prop_map(|(chaincode, writes, code)| TxSpec {
                chaincode,
                args: vec![b"f".to_vec()],
                writes: writes
                    .into_iter()
                    .map(|(key, value)| Write { key, value })
                    .collect(),
                validation: ValidationCode(code),
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        #[test]
        fn any_transactions_give_a_verified_block_or_an_error(txs in vec(spec(), 0..5)) {
            let mut o = orderer();
            match o.cut(&txs) {
                Err(_) => prop_assert_eq!(o.height(), 1),
                Ok(block) => {
                    let reports = verify_chain([o.genesis(), &block], true);
                    prop_assert_eq!(damaged(&reports), vec![]);
                    for namespace in txs.iter().map(|t| t.chaincode.as_str()) {
                        let found = chaincode_writes(&block, namespace).unwrap();
                        let expected: Vec<(usize, Vec<Write>)> = txs
                            .iter()
                            .enumerate()
                            .filter(|(_, t)| {
                                t.validation == ValidationCode::VALID
                                    && t.chaincode == namespace
                                    && !t.writes.is_empty()
                            })
                            .map(|(i, t)| {
                                let mut w = t.writes.clone();
                                w.sort_by(|a, b| a.key.cmp(&b.key));
                                (i, w)
                            })
                            .collect();
                        let got: Vec<(usize, Vec<Write>)> = found
                            .transactions
                            .into_iter()
                            .map(|t| (t.tx_index, t.writes))
                            .collect();
                        prop_assert_eq!(got, expected);
                    }
                }
            }
        }
    }
}

/// The field paths (tag numbers joined by dots) present in a protobuf message, descending
/// into the fields `nested` names as messages. A reader of the wire format independent of
/// the prost declarations, to compare our messages with a Fabric peer's.
fn field_paths(bytes: &[u8], prefix: &str, nested: &[&str], out: &mut BTreeSet<String>) {
    fn varint(b: &[u8], at: &mut usize) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = b[*at];
            *at += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        v
    }
    let mut at = 0;
    while at < bytes.len() {
        let key = varint(bytes, &mut at);
        let path = format!("{prefix}{}", key >> 3);
        match key & 7 {
            0 => {
                varint(bytes, &mut at);
            }
            1 => at += 8,
            5 => at += 4,
            2 => {
                let len = varint(bytes, &mut at) as usize;
                if nested.contains(&path.as_str()) {
                    field_paths(&bytes[at..at + len], &format!("{path}."), nested, out);
                }
                at += len;
            }
            other => panic!("wire type {other} at {path}"),
        }
        out.insert(path);
    }
}

#[test]
fn transactions_have_the_fields_of_a_fabric_peers() {
    // Envelope → Payload → Header (ChannelHeader, SignatureHeader) and Transaction →
    // TransactionAction → ChaincodeActionPayload → proposal payload and endorsed action
    // → ProposalResponsePayload → ChaincodeAction → TxReadWriteSet → KVRWSet.
    const NESTED: &[&str] = &[
        "1",
        "1.1",
        "1.1.1",
        "1.1.1.3",
        "1.1.1.7",
        "1.1.1.7.2",
        "1.1.2",
        "1.2",
        "1.2.1",
        "1.2.1.2",
        "1.2.1.2.1",
        "1.2.1.2.1.1",
        "1.2.1.2.1.1.1",
        "1.2.1.2.1.1.1.2",
        "1.2.1.2.1.1.1.3",
        "1.2.1.2.2",
        "1.2.1.2.2.1",
        "1.2.1.2.2.1.2",
        "1.2.1.2.2.1.2.1",
        "1.2.1.2.2.1.2.1.2",
        "1.2.1.2.2.1.2.1.2.2",
        "1.2.1.2.2.1.2.1.2.2.3",
        "1.2.1.2.2.1.2.3",
        "1.2.1.2.2.1.2.4",
        "1.2.1.2.2.2",
    ];
    let paths = |tx: &[u8]| {
        let mut out = BTreeSet::new();
        field_paths(tx, "", NESTED, &mut out);
        out
    };
    // sample_prod's block 4: a marbles invocation by a Fabric 2.x peer's client.
    let theirs = paths(&sample_block().transactions()[0]);
    let mut o = orderer();
    let block = o
        .cut(&[TxSpec::new("marbles")
            .arg("initMarble")
            .put("marble1", "{}")])
        .unwrap();
    let ours = paths(&block.transactions()[0]);
    assert!(ours.is_subset(&theirs), "{:?}", ours.difference(&theirs));
    // What ours leaves out: the read set, and the timestamp's nanoseconds (zero here, so
    // not encoded).
    assert_eq!(
        theirs.difference(&ours).collect::<Vec<_>>(),
        ["1.1.1.3.2", "1.2.1.2.2.1.2.1.2.2.1"]
    );
}

/// The chain of [`chain`], then the orderer CA rotated (block 4) and two more blocks.
fn rotated_chain(o: &mut Orderer) -> Vec<Block> {
    let mut blocks = chain(o);
    blocks.push(o.rotate_orderer_ca().unwrap());
    blocks.push(
        o.cut(&[TxSpec::new("land-registry").put("parcel-7", "seven")])
            .unwrap(),
    );
    blocks.push(
        o.cut(&[TxSpec::new("land-registry").delete("parcel-7")])
            .unwrap(),
    );
    blocks
}

fn last_config(block: &Block) -> (u64, u64) {
    let value = OrdererBlockMetadata::decode(orderer_signatures(block).value.as_slice()).unwrap();
    let slot = &block.metadata.as_ref().unwrap().metadata[metadata_index::LAST_CONFIG];
    let slot = Metadata::decode(slot.as_slice()).unwrap();
    (
        value.last_config.unwrap().index,
        LastConfig::decode(slot.value.as_slice()).unwrap().index,
    )
}

#[test]
fn a_rotated_orderer_ca_takes_over_at_its_config_block() {
    let mut o = orderer();
    let old = o.orderer_org().clone();
    let blocks = rotated_chain(&mut o);
    assert_ne!(o.orderer_org().ca.cert_der(), old.ca.cert_der());
    assert_eq!(o.orderer_org().ca.msp_id(), ORDERER_MSP);

    let mut verifier = ChainVerifier::new(true);
    for b in &blocks {
        let report = verifier.check(b);
        assert!(report.valid(), "{report:?}");
        if b.number() > 0 {
            assert_eq!(
                report.signatures,
                Signatures::Verified(vec![ORDERER_MSP.into()])
            );
        }
    }
    // The verifier took its trust from the rotation's config block.
    assert_eq!(verifier.trust().unwrap().config_block, 4);
    // Last config: the genesis block before, the rotation from it on (itself included),
    // in both places Fabric writes it.
    let indexes: Vec<(u64, u64)> = blocks[1..].iter().map(last_config).collect();
    assert_eq!(indexes, [(0, 0), (0, 0), (0, 0), (4, 4), (4, 4), (4, 4)]);
    // The config: sequence 1, the new CA in the orderer org's MSP (value version 1).
    let config = crate::msp::config_of(&blocks[4])
        .unwrap()
        .unwrap()
        .config
        .unwrap();
    assert_eq!(config.sequence, 1);
    let msp_value =
        &config.channel_group.unwrap().groups["Orderer"].groups["OrdererOrg"].values["MSP"];
    assert_eq!(msp_value.version, 1);
    let msp = MspConfig::decode(msp_value.value.as_slice()).unwrap();
    let fabric = FabricMspConfig::decode(msp.config.as_slice()).unwrap();
    assert_eq!(
        fabric.root_certs,
        [o.orderer_org().ca.cert_pem().as_bytes()]
    );
    // The config envelope is signed by the outgoing orderer.
    let (env, _, channel, signature) = envelope(&blocks[4], 0);
    assert_eq!(channel.r#type, header_type::CONFIG);
    assert_eq!(signature.creator, old.member.serialized());
    old.member
        .verifying_key()
        .verify(&env.payload, &Signature::from_der(&env.signature).unwrap())
        .unwrap();
    assert_eq!(
        chaincode_writes(&blocks[4], "land-registry")
            .unwrap()
            .skipped,
        Skipped {
            config: 1,
            ..Skipped::default()
        }
    );

    // Under the genesis block's trust, the new orderer is a stranger.
    let genesis_trust = OrdererTrust::from_config_block(&blocks[0]).unwrap();
    let report = ChainVerifier::with_trust(genesis_trust).check(&blocks[5]);
    assert_eq!(
        report.errors,
        strings(&["orderer signature 0: signer certificate does not chain to a CA of OrdererMSP"])
    );
    // And the outgoing orderer cannot sign after the rotation: block 5 re-signed by it.
    let mut forged = blocks.clone();
    let header = SignatureHeader {
        creator: old.member.serialized(),
        nonce: vec![1; 24],
    };
    resign(&mut forged[5], &old.member, header.encode_to_vec());
    assert_eq!(
        damaged(&verify_chain(&forged, true)),
        vec![(
            5,
            strings(&[
                "orderer signature 0: signer certificate does not chain to a CA of OrdererMSP"
            ])
        )]
    );
    // The same before the rotation verifies: the recipe is right.
    let mut before = blocks.clone();
    resign(&mut before[2], &old.member, header.encode_to_vec());
    assert_eq!(damaged(&verify_chain(&before, true)), vec![]);
}

/// Replaces the block's orderer signature by one of `signer`, made by hand with Fabric's
/// recipe: over value || signature header || header DER.
fn resign(block: &mut Block, signer: &Identity, signature_header: Vec<u8>) {
    let header_der = header_bytes(block.header.as_ref().unwrap());
    let md = &mut block.metadata.as_mut().unwrap().metadata[metadata_index::SIGNATURES];
    let mut m = Metadata::decode(md.as_slice()).unwrap();
    let mut signed = m.value.clone();
    signed.extend_from_slice(&signature_header);
    signed.extend_from_slice(&header_der);
    m.signatures = vec![MetadataSignature {
        signature: signer.sign(&signed).unwrap(),
        signature_header,
        identifier_header: Vec::new(),
    }];
    *md = m.encode_to_vec();
}

#[test]
fn rotations_are_deterministic_too() {
    let file = || block_file(&rotated_chain(&mut orderer()));
    assert_eq!(file(), file());
    // A second rotation makes yet another CA.
    let mut o = orderer();
    let first = o.rotate_orderer_ca().unwrap();
    let ca1 = o.orderer_org().ca.cert_der().to_vec();
    let second = o.rotate_orderer_ca().unwrap();
    assert_ne!(o.orderer_org().ca.cert_der(), ca1);
    assert_eq!((first.number(), second.number()), (1, 2));
    let reports = verify_chain([o.genesis(), &first, &second], true);
    assert_eq!(damaged(&reports), vec![]);
    assert_eq!(last_config(&second), (2, 2));
}

/// The chaincode invocation a transaction's action carries.
fn invocation_spec(cap: &ChaincodeActionPayload) -> ChaincodeSpec {
    let proposal =
        ChaincodeProposalPayload::decode(cap.chaincode_proposal_payload.as_slice()).unwrap();
    ChaincodeInvocationSpec::decode(proposal.input.as_slice())
        .unwrap()
        .chaincode_spec
        .unwrap()
}
