//! The benchmarks' deterministic random source: the same request numbers draw the same
//! items in every run and in every process (landql's run and its baseline's).

/// Request `i`'s item of a list of `len` (0 for an empty one): splitmix64's finaliser of
/// `i`, reduced modulo `len`.
pub fn pick(i: u64, len: usize) -> usize {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % len.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_same_items_every_run_and_within_bounds() {
        assert!((0..10_000).all(|i| pick(i, 7) < 7));
        assert_eq!(pick(3, 0), 0);
    }
}
