//! The organisations of a made-up channel: for each, a CA (a P-256 key and a self-signed
//! X.509 certificate) and one member (a key and a certificate the CA issued), every byte
//! of them derived from a seed.
//!
//! Keys are SHA-256 of the seed and a label (retried with a counter in the 2^-32 case that
//! the hash is not a valid P-256 scalar); ECDSA signatures are RFC 6979 deterministic,
//! over SHA-256, ASN.1 DER and low-S as Fabric's BCCSP requires. The certificates look
//! like `cryptogen`'s: a CA with `basicConstraints CA:TRUE`, `keyCertSign`, a subject key
//! identifier of SHA-256 of the public key point, and members with `digitalSignature`,
//! the CA's key identifier and an OU naming their role (`orderer`, `client`). The
//! application org's one member is both the client that creates transactions and the
//! peer that endorses them; the MSPs do not enable NodeOUs, so Fabric would not ask an
//! endorser to be a `peer`.

use std::str::FromStr;
use std::time::Duration;

use p256::ecdsa::signature::{Keypair, Signer};
use p256::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use prost::Message;
use sha2::{Digest, Sha256};
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::der::asn1::{AnyRef, GeneralizedTime, OctetString};
use x509_cert::der::oid::db::rfc5912::ECDSA_WITH_SHA_256;
use x509_cert::der::pem::LineEnding;
use x509_cert::der::{DateTime, Encode, EncodePem};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{
    AlgorithmIdentifier, SignatureAlgorithmIdentifier, SubjectPublicKeyInfo,
    SubjectPublicKeyInfoRef,
};
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate};

use super::OrdererError;
use crate::proto::SerializedIdentity;

/// How long the certificates are valid from their `notBefore`: ten years, as `cryptogen`'s.
const VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Attempts at turning a hash into a P-256 private key (each fails with probability 2^-32).
const KEY_ATTEMPTS: u32 = 8;

/// A signing identity: an MSP ID, a P-256 key and its certificate.
#[derive(Clone)]
pub struct Identity {
    msp_id: String,
    key: SigningKey,
    cert_der: Vec<u8>,
    cert_pem: String,
}

impl std::fmt::Debug for Identity {
    // Not the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("msp_id", &self.msp_id)
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// The MSP the identity belongs to.
    pub fn msp_id(&self) -> &str {
        &self.msp_id
    }

    /// The certificate, PEM (what Fabric puts in `SerializedIdentity.id_bytes` and in an
    /// MSP config).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        *self.key.verifying_key()
    }

    /// The serialized `msp.SerializedIdentity`: a transaction's creator, an endorser, an
    /// orderer signature's signer.
    pub fn serialized(&self) -> Vec<u8> {
        SerializedIdentity {
            mspid: self.msp_id.clone(),
            id_bytes: self.cert_pem.as_bytes().to_vec(),
        }
        .encode_to_vec()
    }

    /// Signs `message` as Fabric does: ECDSA P-256 over SHA-256, ASN.1 DER, low-S.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, OrdererError> {
        let signature: Signature = self
            .key
            .try_sign(message)
            .map_err(|e| OrdererError::Crypto(format!("signing: {e}")))?;
        Ok(signature.normalize_s().to_der().as_bytes().to_vec())
    }
}

/// One organisation: its CA and its one member.
#[derive(Debug, Clone)]
pub struct Org {
    /// The self-signed root CA (also an [`Identity`]: its key signed the member's
    /// certificate).
    pub ca: Identity,
    /// The member the CA issued: the orderer node, or the application org's client and
    /// endorsing peer.
    pub member: Identity,
}

impl Org {
    /// The organisation `msp_id` with domain `domain` (e.g. `orderer.landql.test`), its
    /// member named `member` with role `role` (the OU), all derived from `seed` and
    /// `label`, valid from `not_before` (seconds since the Unix epoch) for ten years.
    pub(crate) fn generate(
        seed: &[u8; 32],
        label: &str,
        msp_id: &str,
        domain: &str,
        member: &str,
        role: &str,
        not_before: u64,
    ) -> Result<Org, OrdererError> {
        let validity = validity(not_before)?;
        let ca_key = derive_key(seed, &format!("{label}/ca"))?;
        let ca_name = name(&format!("CN=ca.{domain},O={domain},C=US"))?;
        let ca_cert = issue(
            CaProfile {
                subject: ca_name.clone(),
                issuer: ca_name.clone(),
                ca: true,
            },
            serial(seed, &format!("{label}/ca"))?,
            validity,
            &ca_key,
            &ca_key,
        )?;
        let ca = identity(msp_id, ca_key, &ca_cert)?;

        let member_key = derive_key(seed, &format!("{label}/{member}"))?;
        let member_name = name(&format!("CN={member}.{domain},OU={role},O={domain},C=US"))?;
        let member_cert = issue(
            CaProfile {
                subject: member_name,
                issuer: ca_name,
                ca: false,
            },
            serial(seed, &format!("{label}/{member}"))?,
            validity,
            &member_key,
            &ca.key,
        )?;
        let member = identity(msp_id, member_key, &member_cert)?;
        Ok(Org { ca, member })
    }
}

fn crypto<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> OrdererError {
    move |e| OrdererError::Crypto(format!("{what}: {e}"))
}

fn identity(msp_id: &str, key: SigningKey, cert: &Certificate) -> Result<Identity, OrdererError> {
    Ok(Identity {
        msp_id: msp_id.to_string(),
        key,
        cert_der: cert.to_der().map_err(crypto("certificate DER"))?,
        cert_pem: cert
            .to_pem(LineEnding::LF)
            .map_err(crypto("certificate PEM"))?,
    })
}

/// SHA-256 of a domain tag, the seed and `label`.
pub(crate) fn derive(seed: &[u8; 32], label: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"landql-fabric orderer\0");
    h.update(seed);
    h.update(label.as_bytes());
    h.finalize().into()
}

fn derive_key(seed: &[u8; 32], label: &str) -> Result<SigningKey, OrdererError> {
    for attempt in 0..KEY_ATTEMPTS {
        let bytes = derive(seed, &format!("key/{label}/{attempt}"));
        if let Ok(key) = SigningKey::from_slice(&bytes) {
            return Ok(key);
        }
    }
    Err(OrdererError::Crypto(format!(
        "no P-256 key derived for {label} in {KEY_ATTEMPTS} attempts"
    )))
}

/// A positive 16-byte serial number.
fn serial(seed: &[u8; 32], label: &str) -> Result<SerialNumber, OrdererError> {
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&derive(seed, &format!("serial/{label}"))[..16]);
    // Positive and of full length: top bit clear, first byte non-zero.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::new(&bytes).map_err(crypto("serial number"))
}

fn name(rfc4514: &str) -> Result<Name, OrdererError> {
    Name::from_str(rfc4514).map_err(crypto("certificate name"))
}

fn validity(not_before: u64) -> Result<Validity, OrdererError> {
    let start = Duration::from_secs(not_before);
    let end = start
        .checked_add(VALIDITY)
        .ok_or_else(|| OrdererError::Crypto("certificate validity overflows".into()))?;
    // GeneralizedTime here; the builder writes UTCTime for dates before 2050 (RFC 5280).
    let time = |d: Duration| {
        DateTime::from_unix_duration(d)
            .map(|t| Time::GeneralTime(GeneralizedTime::from_date_time(t)))
            .map_err(|e| {
                OrdererError::Crypto(format!(
                    "certificate time {}s after the epoch: {e}",
                    d.as_secs()
                ))
            })
    };
    Ok(Validity::new(time(start)?, time(end)?))
}

/// The SHA-256 of a public key's point, as `cryptogen` computes key identifiers.
fn key_id(spki: &SubjectPublicKeyInfoRef<'_>) -> x509_cert::der::Result<OctetString> {
    OctetString::new(Sha256::digest(spki.subject_public_key.raw_bytes()).to_vec())
}

/// The extensions of a `cryptogen`-like CA or member certificate.
struct CaProfile {
    subject: Name,
    issuer: Name,
    ca: bool,
}

impl BuilderProfile for CaProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        issuer_spk: SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let subject = tbs.subject();
        let mut extensions: Vec<Extension> = Vec::new();
        let usage = if self.ca {
            KeyUsages::DigitalSignature
                | KeyUsages::KeyEncipherment
                | KeyUsages::KeyCertSign
                | KeyUsages::CRLSign
        } else {
            KeyUsages::DigitalSignature.into()
        };
        extensions.push((&KeyUsage(usage)).to_extension(subject, &extensions)?);
        let basic = BasicConstraints {
            ca: self.ca,
            path_len_constraint: None,
        };
        extensions.push((&basic).to_extension(subject, &extensions)?);
        if self.ca {
            let ski = SubjectKeyIdentifier(key_id(&spk)?);
            extensions.push((&ski).to_extension(subject, &extensions)?);
        } else {
            let aki = AuthorityKeyIdentifier {
                key_identifier: Some(key_id(&issuer_spk)?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            };
            extensions.push((&aki).to_extension(subject, &extensions)?);
        }
        Ok(extensions)
    }
}

/// Issues a certificate for `subject_key`'s public key, signed by `issuer_key`.
fn issue(
    profile: CaProfile,
    serial: SerialNumber,
    validity: Validity,
    subject_key: &SigningKey,
    issuer_key: &SigningKey,
) -> Result<Certificate, OrdererError> {
    let spki = SubjectPublicKeyInfo::from_key(subject_key.verifying_key())
        .map_err(crypto("public key"))?;
    let builder =
        CertificateBuilder::new(profile, serial, validity, spki).map_err(crypto("certificate"))?;
    builder
        .build::<_, DerSignature>(&CertSigner(issuer_key))
        .map_err(crypto("certificate"))
}

/// A certificate signer whose ECDSA signatures are low-S, like every other signature here.
struct CertSigner<'a>(&'a SigningKey);

impl Keypair for CertSigner<'_> {
    type VerifyingKey = VerifyingKey;

    fn verifying_key(&self) -> VerifyingKey {
        *self.0.verifying_key()
    }
}

impl Signer<DerSignature> for CertSigner<'_> {
    fn try_sign(&self, message: &[u8]) -> Result<DerSignature, p256::ecdsa::Error> {
        let signature: Signature = self.0.try_sign(message)?;
        Ok(signature.normalize_s().to_der())
    }
}

impl SignatureAlgorithmIdentifier for CertSigner<'_> {
    type Params = AnyRef<'static>;

    const SIGNATURE_ALGORITHM_IDENTIFIER: AlgorithmIdentifier<AnyRef<'static>> =
        AlgorithmIdentifier {
            oid: ECDSA_WITH_SHA_256,
            parameters: None,
        };
}
