//! The orderer organisations of a channel, from its config block, and checking the
//! orderers' block signatures against them.
//!
//! What Fabric's `BlockSignatureVerifier` (`protoutil/blockutils.go`) does with the block's
//! SIGNATURES metadata, for the X.509 MSPs and ECDSA P-256 keys Fabric networks use: each
//! `MetadataSignature` signs `metadata.value || signature_header || BlockHeaderBytes(header)`
//! (the header's ASN.1 DER, [`crate::verify::header_bytes`]) with the key of the
//! `SignatureHeader.creator`'s certificate; the signature is ASN.1 DER, must be low-S (as
//! Fabric's BCCSP demands) and verifies over SHA-256 of those bytes. The creator names an
//! MSP, which must be one of the orderer organisations of the channel's latest config, and
//! its certificate must chain to that MSP's root certificates, through its intermediate
//! certificates if any.
//!
//! Like Fabric's MSP, chain validation does not look at the clock (Fabric validates the
//! chain as of the certificate's own `notBefore`), so old ledgers stay verifiable. Not
//! done here: certificate revocation lists, NodeOU roles, and BFT signatures that name a
//! consenter by number (`identifier_header`) instead of carrying a certificate — such a
//! signature is reported as not verifiable.

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use prost::Message;
use x509_cert::der::asn1::AnyRef;
use x509_cert::der::{Decode, Encode, SliceReader};
use x509_cert::Certificate;

use crate::proto::{
    header_type, Block, ChannelHeader, ConfigEnvelope, Envelope, FabricMspConfig, MspConfig,
    Payload, SerializedIdentity,
};

/// `ecdsa-with-SHA256`, the signature algorithm of Fabric's P-256 certificates.
const ECDSA_WITH_SHA256: &str = "1.2.840.10045.4.3.2";
/// Longest certificate chain followed (signer, intermediates, root).
const MAX_CHAIN: usize = 6;

/// Why a config block gives no orderer trust.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("block {number} is not a config block ({why})")]
    NotConfig { number: u64, why: String },
    #[error("config of block {number} has no Orderer group")]
    NoOrdererGroup { number: u64 },
    #[error("config of block {number}: orderer organisation {org}: {why}")]
    BadOrg {
        number: u64,
        org: String,
        why: String,
    },
}

/// Why one orderer signature does not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("signature header does not decode: {0}")]
    BadHeader(String),
    #[error("signer identity does not decode: {0}")]
    BadIdentity(String),
    #[error("signer's MSP {0:?} is not an orderer organisation of the channel")]
    UnknownMsp(String),
    #[error("signer certificate of {msp}: {why}")]
    BadCertificate { msp: String, why: String },
    #[error("signer certificate does not chain to a CA of {msp}")]
    NotChained { msp: String },
    #[error("signature is not ASN.1 DER ECDSA")]
    Malformed,
    #[error("signature has a high S value (Fabric accepts low-S signatures only)")]
    HighS,
    #[error("signature does not verify")]
    Invalid,
    #[error("signature names consenter {0} by number; BFT consenter sets are not supported")]
    ConsenterId(u32),
}

/// A certificate with the DER bytes it was decoded from.
#[derive(Debug, Clone)]
struct Cert {
    der: Vec<u8>,
    cert: Certificate,
}

impl Cert {
    fn from_pem(pem: &[u8]) -> Result<Vec<Cert>, String> {
        let certs = Certificate::load_pem_chain(pem).map_err(|e| e.to_string())?;
        certs
            .into_iter()
            .map(|cert| {
                let der = cert.to_der().map_err(|e| e.to_string())?;
                Ok(Cert { der, cert })
            })
            .collect()
    }

    fn key(&self) -> Result<VerifyingKey, String> {
        let spki = self.cert.tbs_certificate().subject_public_key_info();
        let point = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| "public key is not a whole number of bytes".to_string())?;
        VerifyingKey::from_sec1_bytes(point)
            .map_err(|_| "public key is not an ECDSA P-256 key".to_string())
    }

    /// Whether `issuer`'s key signed this certificate.
    fn issued_by(&self, issuer: &Cert) -> bool {
        if self.cert.tbs_certificate().issuer() != issuer.cert.tbs_certificate().subject() {
            return false;
        }
        if self.cert.signature_algorithm().oid.to_string() != ECDSA_WITH_SHA256 {
            return false;
        }
        let (Ok(key), Some(tbs), Some(sig)) = (
            issuer.key(),
            tbs_bytes(&self.der),
            self.cert.signature().as_bytes(),
        ) else {
            return false;
        };
        let Ok(sig) = Signature::from_der(sig) else {
            return false;
        };
        key.verify(&tbs, &sig).is_ok()
    }
}

/// The DER bytes of a certificate's `tbsCertificate`, exactly as they were signed.
fn tbs_bytes(cert_der: &[u8]) -> Option<Vec<u8>> {
    let outer = AnyRef::from_der(cert_der).ok()?;
    let mut reader = SliceReader::new(outer.value()).ok()?;
    let tbs = AnyRef::decode(&mut reader).ok()?;
    tbs.to_der().ok()
}

/// One orderer organisation: its MSP ID and CA certificates.
#[derive(Debug, Clone)]
struct OrdererOrg {
    msp_id: String,
    roots: Vec<Cert>,
    intermediates: Vec<Cert>,
}

/// The orderer organisations of a channel's configuration: whose signatures a block needs.
#[derive(Debug, Clone)]
pub struct OrdererTrust {
    /// The config block they were read from.
    pub config_block: u64,
    orgs: Vec<OrdererOrg>,
}

/// The channel configuration a config block carries, or `None` for another block.
pub fn config_of(block: &Block) -> Result<Option<ConfigEnvelope>, String> {
    let number = block.number();
    let data = block.transactions();
    let [tx] = data else {
        return Ok(None);
    };
    let env =
        Envelope::decode(tx.as_slice()).map_err(|e| format!("block {number}: envelope: {e}"))?;
    let payload = Payload::decode(env.payload.as_slice())
        .map_err(|e| format!("block {number}: payload: {e}"))?;
    let Some(header) = payload.header else {
        return Ok(None);
    };
    let ch = ChannelHeader::decode(header.channel_header.as_slice())
        .map_err(|e| format!("block {number}: channel header: {e}"))?;
    if ch.r#type != header_type::CONFIG {
        return Ok(None);
    }
    ConfigEnvelope::decode(payload.data.as_slice())
        .map(Some)
        .map_err(|e| format!("block {number}: config envelope: {e}"))
}

impl OrdererTrust {
    /// The orderer organisations of a config block (a channel's genesis block or a later
    /// config update).
    pub fn from_config_block(block: &Block) -> Result<Self, TrustError> {
        let number = block.number();
        let not_config = |why: String| TrustError::NotConfig { number, why };
        let envelope = config_of(block)
            .map_err(not_config)?
            .ok_or_else(|| not_config("its transaction is not a CONFIG transaction".into()))?;
        let orderer = envelope
            .config
            .and_then(|c| c.channel_group)
            .and_then(|mut g| g.groups.remove("Orderer"))
            .ok_or(TrustError::NoOrdererGroup { number })?;
        let mut groups: Vec<_> = orderer.groups.iter().collect();
        groups.sort_by(|a, b| a.0.cmp(b.0));
        let mut orgs = Vec::new();
        for (name, group) in groups {
            let bad = |why: String| TrustError::BadOrg {
                number,
                org: name.clone(),
                why,
            };
            let value = group
                .values
                .get("MSP")
                .ok_or_else(|| bad("no MSP value".into()))?;
            let msp = MspConfig::decode(value.value.as_slice())
                .map_err(|e| bad(format!("MSP config: {e}")))?;
            if msp.r#type != 0 {
                // Idemix and other MSP types cannot sign blocks as orderers.
                continue;
            }
            let fabric = FabricMspConfig::decode(msp.config.as_slice())
                .map_err(|e| bad(format!("Fabric MSP config: {e}")))?;
            let mut roots = Vec::new();
            for pem in &fabric.root_certs {
                roots.extend(
                    Cert::from_pem(pem).map_err(|e| bad(format!("root certificate: {e}")))?,
                );
            }
            let mut intermediates = Vec::new();
            for pem in &fabric.intermediate_certs {
                intermediates.extend(
                    Cert::from_pem(pem)
                        .map_err(|e| bad(format!("intermediate certificate: {e}")))?,
                );
            }
            if roots.is_empty() {
                return Err(bad("no root certificate".into()));
            }
            orgs.push(OrdererOrg {
                msp_id: fabric.name,
                roots,
                intermediates,
            });
        }
        Ok(OrdererTrust {
            config_block: number,
            orgs,
        })
    }

    /// The orderer organisations' MSP IDs.
    pub fn msp_ids(&self) -> impl Iterator<Item = &str> {
        self.orgs.iter().map(|o| o.msp_id.as_str())
    }

    /// Checks one signature over `signed` by the identity in the serialized
    /// `SignatureHeader`; returns the signer's MSP ID.
    pub fn verify(
        &self,
        signature_header: &[u8],
        signed: &[u8],
        signature: &[u8],
    ) -> Result<String, SignatureError> {
        let header = crate::proto::SignatureHeader::decode(signature_header)
            .map_err(|e| SignatureError::BadHeader(e.to_string()))?;
        let identity = SerializedIdentity::decode(header.creator.as_slice())
            .map_err(|e| SignatureError::BadIdentity(e.to_string()))?;
        let org = self
            .orgs
            .iter()
            .find(|o| o.msp_id == identity.mspid)
            .ok_or_else(|| SignatureError::UnknownMsp(identity.mspid.clone()))?;
        let bad_cert = |why: String| SignatureError::BadCertificate {
            msp: org.msp_id.clone(),
            why,
        };
        let signer = Cert::from_pem(&identity.id_bytes)
            .map_err(bad_cert)?
            .into_iter()
            .next()
            .ok_or_else(|| bad_cert("no certificate".into()))?;
        if !org.chains(&signer) {
            return Err(SignatureError::NotChained {
                msp: org.msp_id.clone(),
            });
        }
        let key = signer.key().map_err(bad_cert)?;
        let sig = Signature::from_der(signature).map_err(|_| SignatureError::Malformed)?;
        if sig.normalize_s() != sig {
            return Err(SignatureError::HighS);
        }
        key.verify(signed, &sig)
            .map_err(|_| SignatureError::Invalid)?;
        Ok(org.msp_id.clone())
    }
}

impl OrdererOrg {
    /// Whether `cert` chains to one of the roots, through intermediates.
    fn chains(&self, cert: &Cert) -> bool {
        let mut current = cert.clone();
        for _ in 0..MAX_CHAIN {
            if self.roots.iter().any(|root| current.issued_by(root)) {
                return true;
            }
            match self.intermediates.iter().find(|i| current.issued_by(i)) {
                Some(next) if next.der != current.der => current = next.clone(),
                _ => return false,
            }
        }
        false
    }
}
