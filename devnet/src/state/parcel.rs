//! The parcel registry's keys: a parcel is held as a digest of its normalised key, in maps
//! that do not hash it again.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use ledger::canonical::sha256;

/// A parcel as the registry holds it: the first 128 bits of the sha256 of its key
/// ([`chaincode::parcel_key`]).
///
/// Fixed-size rather than the key's text: the registry of a million parcels held as
/// strings was the largest part of the seeder's memory (≈ 180 MB in two million
/// allocations), and first touches of memory are slow on VMs. A cryptographic hash, so
/// that no two parcels share an entry, by accident or by design.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Parcel(u128);

impl Parcel {
    pub fn of(key: &str) -> Self {
        let mut first = [0u8; 16];
        first.copy_from_slice(&sha256(key.as_bytes()).0[..16]);
        Parcel(u128::from_le_bytes(first))
    }
}

/// A map keyed by [`Parcel`]s, which are uniformly distributed already: hashing them
/// again (SipHash, the default) would only cost time.
pub(crate) type ParcelMap<V> = HashMap<Parcel, V, BuildHasherDefault<ParcelHasher>>;

/// Takes a [`Parcel`]'s low 64 bits as its hash.
#[derive(Default)]
pub(crate) struct ParcelHasher(u64);

impl Hasher for ParcelHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Not reached for a `Parcel` (its Hash writes one u128), but correct for any input.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
