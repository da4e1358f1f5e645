//! The body of the cargo-fuzz target `fabric_block_file` (README, "Fuzzing"), and the
//! replay of its seeds that runs it on stable.
//!
//! [`block_file`] takes the input as a peer's block file and, when it reads, verifies the
//! chain (signatures included) and extracts a chaincode's writes from every block; then
//! the same input as one serialized block. Whatever the input, nothing may panic, and a
//! block file that reads, written out again, reads back as the same blocks (not always
//! the same bytes: like Fabric's reader it accepts varints that are not minimal).
//!
//! Built only with the `fuzzing` feature or for this crate's tests.

use crate::read::{read_block, read_block_file, write_block_entry};
use crate::verify::ChainVerifier;
use crate::writes::chaincode_writes;

/// One fuzz input.
pub fn block_file(data: &[u8]) {
    if let Ok(blocks) = read_block_file(data) {
        let mut out = Vec::with_capacity(data.len());
        let mut verifier = ChainVerifier::new(true);
        for b in &blocks {
            write_block_entry(&b.block, &mut out);
            let report = verifier.check(&b.block);
            assert_eq!(report.valid(), report.errors.is_empty());
            let _ = chaincode_writes(&b.block, "marbles");
        }
        let again = read_block_file(&out).expect("a block file written out reads back");
        let same = again
            .iter()
            .map(|b| &b.block)
            .eq(blocks.iter().map(|b| &b.block));
        assert!(
            same,
            "a block file written out reads back as the same blocks"
        );
    }
    if let Ok(block) = read_block(data) {
        let _ = ChainVerifier::new(true).check(&block);
        let _ = chaincode_writes(&block, "marbles");
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// fuzz/seeds/fabric_block_file, beside this crate.
    fn seeds() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/fabric_block_file")
    }

    #[test]
    fn replays_the_seed_corpus() {
        let mut n = 0;
        for entry in std::fs::read_dir(seeds()).expect("fuzz/seeds/fabric_block_file") {
            let path = entry.unwrap().path();
            super::block_file(&std::fs::read(&path).unwrap());
            n += 1;
        }
        assert!(n >= 3, "{n} seeds");
    }

    #[test]
    fn survives_damaged_copies_of_a_real_file() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/sample_prod.blockfile");
        let file = std::fs::read(path).unwrap();
        let file = &file[..file.len().min(6000)];
        for i in (0..file.len()).step_by(37) {
            let mut copy = file.to_vec();
            copy[i] ^= 0x55;
            super::block_file(&copy);
            super::block_file(&file[..i]);
        }
    }
}
