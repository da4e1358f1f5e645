//! The orderer's Ed25519 key: it signs the 32 raw bytes of every block's header hash.
//!
//! The devnet keeps the key pair in its data directory (`orderer.key`, the 32-byte secret in
//! hex, mode 0600; `orderer.pub`, the public key in hex) so that signatures stay checkable
//! across restarts and verifiers can pin the key.

use std::fs;
use std::io::Write as _;
use std::path::Path;

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};

use crate::canonical::Hash32;
use crate::model::Signature;

pub const ALG: &str = "Ed25519";

/// The orderer's signing key.
pub struct OrdererKey {
    key: SigningKey,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or write the orderer key at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("orderer key file {path} is damaged: {why}")]
    Damaged { path: String, why: String },
}

/// Why a signature does not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("public key {0:?} is not 64 hex digits of a valid Ed25519 key")]
    BadKey(String),
    #[error("signature algorithm is {0:?}, expected Ed25519")]
    BadAlg(String),
    #[error("signature is not 128 hex digits")]
    BadEncoding,
    #[error("the block is signed by key {signed_by}, not the trusted orderer key {trusted}")]
    WrongKey { signed_by: String, trusted: String },
    #[error("the Ed25519 signature does not verify over the header hash")]
    Invalid,
}

impl OrdererKey {
    pub fn generate() -> Self {
        // A secret key is 32 random bytes (RFC 8032 §5.1.5); drawing them here keeps
        // ed25519-dalek's own `rand_core` (a newer major than the workspace's rand) out.
        let mut secret = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
        Self::from_secret(secret)
    }

    pub fn from_secret(secret: [u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(&secret),
        }
    }

    /// Loads `orderer.key` from `dir`, or creates it (and `orderer.pub`) on first start.
    pub fn load_or_create(dir: &Path) -> Result<Self, KeyError> {
        let path = dir.join("orderer.key");
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        match fs::read_to_string(&path) {
            Ok(text) => {
                let mut secret = [0u8; 32];
                hex::decode_to_slice(text.trim(), &mut secret).map_err(|e| KeyError::Damaged {
                    path: path.display().to_string(),
                    why: e.to_string(),
                })?;
                let key = Self::from_secret(secret);
                key.write_public(dir).map_err(io)?;
                Ok(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                let tmp = dir.join("orderer.key.tmp");
                let mut opts = fs::OpenOptions::new();
                opts.write(true).create(true).truncate(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                let mut f = opts.open(&tmp).map_err(io)?;
                f.write_all(hex::encode(key.key.to_bytes()).as_bytes())
                    .map_err(io)?;
                f.sync_all().map_err(io)?;
                fs::rename(&tmp, &path).map_err(io)?;
                key.write_public(dir).map_err(io)?;
                Ok(key)
            }
            Err(e) => Err(io(e)),
        }
    }

    fn write_public(&self, dir: &Path) -> std::io::Result<()> {
        fs::write(dir.join("orderer.pub"), format!("{}\n", self.public_hex()))
    }

    pub fn public_hex(&self) -> String {
        hex::encode(self.key.verifying_key().to_bytes())
    }

    pub fn sign(&self, header_hash: &Hash32) -> Signature {
        Signature {
            alg: ALG.to_string(),
            key: self.public_hex(),
            sig: hex::encode(self.key.sign(header_hash.as_bytes()).to_bytes()),
        }
    }
}

/// Parses a trusted public key given as 64 hex digits.
pub fn parse_public_key(hex_key: &str) -> Result<VerifyingKey, SignatureError> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_key.trim(), &mut bytes)
        .map_err(|_| SignatureError::BadKey(hex_key.to_string()))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| SignatureError::BadKey(hex_key.to_string()))
}

/// Checks `sig` over `header_hash` under the `trusted` key — not under whatever key the
/// signature claims to be from.
pub fn verify_header_signature(
    trusted: &VerifyingKey,
    header_hash: &Hash32,
    sig: &Signature,
) -> Result<(), SignatureError> {
    if sig.alg != ALG {
        return Err(SignatureError::BadAlg(sig.alg.clone()));
    }
    let trusted_hex = hex::encode(trusted.to_bytes());
    if !sig.key.eq_ignore_ascii_case(&trusted_hex) {
        return Err(SignatureError::WrongKey {
            signed_by: sig.key.clone(),
            trusted: trusted_hex,
        });
    }
    let mut raw = [0u8; 64];
    hex::decode_to_slice(&sig.sig, &mut raw).map_err(|_| SignatureError::BadEncoding)?;
    let signature = ed25519_dalek::Signature::from_bytes(&raw);
    trusted
        .verify(header_hash.as_bytes(), &signature)
        .map_err(|_| SignatureError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::sha256;

    #[test]
    fn signs_and_verifies_and_refuses_tampering() {
        let key = OrdererKey::generate();
        let trusted = parse_public_key(&key.public_hex()).unwrap();
        let h = sha256(b"header");
        let sig = key.sign(&h);
        assert_eq!(verify_header_signature(&trusted, &h, &sig), Ok(()));
        assert_eq!(
            verify_header_signature(&trusted, &sha256(b"other"), &sig),
            Err(SignatureError::Invalid)
        );
        let mut bad = sig.clone();
        bad.sig
            .replace_range(0..2, if &bad.sig[0..2] == "00" { "01" } else { "00" });
        assert_eq!(
            verify_header_signature(&trusted, &h, &bad),
            Err(SignatureError::Invalid)
        );
        let other = OrdererKey::generate();
        let forged = other.sign(&h);
        assert!(matches!(
            verify_header_signature(&trusted, &h, &forged),
            Err(SignatureError::WrongKey { .. })
        ));
        let mut wrong_alg = sig.clone();
        wrong_alg.alg = "none".into();
        assert!(matches!(
            verify_header_signature(&trusted, &h, &wrong_alg),
            Err(SignatureError::BadAlg(_))
        ));
    }

    #[test]
    fn key_persists_across_loads() {
        let dir = tempfile::tempdir().unwrap();
        let a = OrdererKey::load_or_create(dir.path()).unwrap();
        let b = OrdererKey::load_or_create(dir.path()).unwrap();
        assert_eq!(a.public_hex(), b.public_hex());
        let pubfile = fs::read_to_string(dir.path().join("orderer.pub")).unwrap();
        assert_eq!(pubfile.trim(), a.public_hex());
        fs::write(dir.path().join("orderer.key"), "nonsense").unwrap();
        assert!(matches!(
            OrdererKey::load_or_create(dir.path()),
            Err(KeyError::Damaged { .. })
        ));
    }
}
