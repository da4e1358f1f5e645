//! The RFC 6962 Merkle tree over a block's transactions, and audit paths through it.
//!
//! leaf = sha256(0x00 ‖ JCS(tx)), inner node = sha256(0x01 ‖ left ‖ right); a tree of n > 1
//! leaves splits at the largest power of two below n; the empty tree's root is sha256("").
//! Audit paths are listed bottom-up (the leaf's sibling first), as RFC 6962 §2.1.1 builds them.

use sha2::{Digest, Sha256};

use crate::canonical::{sha256, Hash32};

/// sha256(0x00 ‖ bytes), where `bytes` are the JCS bytes of a transaction.
pub fn leaf_hash(canonical_tx: &[u8]) -> Hash32 {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(canonical_tx);
    Hash32(h.finalize().into())
}

/// sha256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left.0);
    h.update(right.0);
    Hash32(h.finalize().into())
}

/// Largest power of two strictly below `n` (n ≥ 2).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The root over leaf hashes, in block order.
pub fn root(leaves: &[Hash32]) -> Hash32 {
    match leaves.len() {
        0 => sha256(b""),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The audit path of leaf `index`, bottom-up. `None` when `index` is outside the tree.
pub fn audit_path(leaves: &[Hash32], index: usize) -> Option<Vec<Hash32>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    fn walk(leaves: &[Hash32], m: usize, path: &mut Vec<Hash32>) {
        if leaves.len() <= 1 {
            return;
        }
        let k = split(leaves.len());
        if m < k {
            walk(&leaves[..k], m, path);
            path.push(root(&leaves[k..]));
        } else {
            walk(&leaves[k..], m - k, path);
            path.push(root(&leaves[..k]));
        }
    }
    walk(leaves, index, &mut path);
    Some(path)
}

/// Recomputes the root from a leaf and its audit path (RFC 9162 §2.1.3.2). `None` when the
/// path cannot belong to a leaf at `index` in a tree of `size` leaves.
pub fn root_from_path(leaf: Hash32, index: u64, size: u64, path: &[Hash32]) -> Option<Hash32> {
    if index >= size {
        return None;
    }
    let (mut f, mut s, mut r) = (index, size - 1, leaf);
    for p in path {
        if s == 0 {
            return None;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    (s == 0).then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash32> {
        (0..n)
            .map(|i| leaf_hash(format!("tx{i}").as_bytes()))
            .collect()
    }

    /// An independent construction: bottom-up levels where a lone last node is promoted
    /// unchanged. For RFC 6962 trees this yields the same root as the recursive split.
    fn root_by_levels(leaves: &[Hash32]) -> Hash32 {
        if leaves.is_empty() {
            return sha256(b"");
        }
        let mut level = leaves.to_vec();
        while level.len() > 1 {
            level = level
                .chunks(2)
                .map(|c| {
                    if c.len() == 2 {
                        node_hash(&c[0], &c[1])
                    } else {
                        c[0]
                    }
                })
                .collect();
        }
        level[0]
    }

    #[test]
    fn empty_and_single() {
        assert_eq!(root(&[]), sha256(b""));
        let l = leaves(1);
        assert_eq!(root(&l), l[0]);
        assert_eq!(audit_path(&l, 0).unwrap(), Vec::<Hash32>::new());
        assert_eq!(root_from_path(l[0], 0, 1, &[]), Some(l[0]));
    }

    #[test]
    fn three_leaves_by_hand() {
        let l = leaves(3);
        let expected = node_hash(&node_hash(&l[0], &l[1]), &l[2]);
        assert_eq!(root(&l), expected);
        assert_eq!(audit_path(&l, 2).unwrap(), vec![node_hash(&l[0], &l[1])]);
        assert_eq!(audit_path(&l, 0).unwrap(), vec![l[1], l[2]]);
    }

    #[test]
    fn every_size_to_130_and_every_leaf() {
        for n in 1..=130 {
            let l = leaves(n);
            let r = root(&l);
            assert_eq!(r, root_by_levels(&l), "root of {n}");
            for (i, leaf) in l.iter().enumerate() {
                let path = audit_path(&l, i).unwrap();
                assert_eq!(
                    root_from_path(*leaf, i as u64, n as u64, &path),
                    Some(r),
                    "leaf {i} of {n}"
                );
                // Any other leaf, index or size must not reach the root.
                let wrong = leaf_hash(b"other");
                assert_ne!(root_from_path(wrong, i as u64, n as u64, &path), Some(r));
                if n > 1 {
                    let j = (i + 1) % n;
                    assert_ne!(root_from_path(*leaf, j as u64, n as u64, &path), Some(r));
                }
                if !path.is_empty() {
                    let mut bad = path.clone();
                    bad[0].0[0] ^= 1;
                    assert_ne!(root_from_path(*leaf, i as u64, n as u64, &bad), Some(r));
                    assert_eq!(root_from_path(*leaf, i as u64, n as u64, &path[1..]), None);
                }
            }
            assert!(audit_path(&l, n).is_none());
            assert_eq!(root_from_path(l[0], n as u64, n as u64, &[]), None);
        }
    }
}
