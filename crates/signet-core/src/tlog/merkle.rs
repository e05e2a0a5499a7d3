//! RFC 6962 Merkle tree hashing and inclusion-proof verification.
//!
//! The algorithm is RFC 9162 §2.1.3.2 ("Verifying an Inclusion Proof"); the proof's expected
//! length is computed first so that a proof with hashes missing or extra is named as such
//! instead of as a wrong root.

use sha2::{Digest as _, Sha256};

/// A SHA-256 tree hash.
pub type TreeHash = [u8; 32];

/// The hash of a leaf: `SHA-256(0x00 || leaf)` (RFC 6962 §2.1).
pub fn leaf_hash(leaf: &[u8]) -> TreeHash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    h.finalize().into()
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)` (RFC 6962 §2.1).
pub fn node_hash(left: &TreeHash, right: &TreeHash) -> TreeHash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Why an inclusion proof could not even be evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProofShapeError {
    /// The leaf index is not below the tree size.
    IndexOutOfRange,
    /// The proof has the wrong number of hashes for this index and size.
    WrongLength {
        /// How many the index and size call for.
        expected: usize,
    },
}

/// How many hashes an inclusion proof of leaf `index` in a tree of `size` leaves holds.
/// `index < size` is the caller's to check.
pub(crate) fn inclusion_proof_len(index: u64, size: u64) -> usize {
    // The path climbs through the levels where the index and the last index differ (`inner`),
    // then through the right border of the tree, one hash per set bit above them.
    let last = size - 1;
    let inner = (u64::BITS - (index ^ last).leading_zeros()) as usize;
    let border = if inner >= 64 {
        0
    } else {
        (index >> inner).count_ones() as usize
    };
    inner + border
}

/// The root hash an inclusion proof leads to, for the leaf hashed as `leaf` at `index` in a
/// tree of `size` leaves, with the audit path `proof` (RFC 9162 §2.1.3.2).
pub(crate) fn root_from_inclusion_proof(
    index: u64,
    size: u64,
    leaf: &TreeHash,
    proof: &[TreeHash],
) -> Result<TreeHash, ProofShapeError> {
    if index >= size {
        return Err(ProofShapeError::IndexOutOfRange);
    }
    let expected = inclusion_proof_len(index, size);
    if proof.len() != expected {
        return Err(ProofShapeError::WrongLength { expected });
    }
    let mut f_n = index;
    let mut s_n = size - 1;
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            // Unreachable with the length checked above; kept so the loop stands on its own.
            return Err(ProofShapeError::WrongLength { expected });
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofShapeError::WrongLength { expected });
    }
    Ok(r)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The root of `leaves` by RFC 6962's recursive definition (MTH).
    fn mth(leaves: &[TreeHash]) -> TreeHash {
        match leaves.len() {
            0 => Sha256::digest([]).into(),
            1 => leaves[0],
            n => {
                let k = n.next_power_of_two() / 2;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    /// The audit path of leaf `m` (RFC 6962 §2.1.1, PATH).
    fn path(m: usize, leaves: &[TreeHash]) -> Vec<TreeHash> {
        let n = leaves.len();
        if n <= 1 {
            return vec![];
        }
        let k = n.next_power_of_two() / 2;
        if m < k {
            let mut p = path(m, &leaves[..k]);
            p.push(mth(&leaves[k..]));
            p
        } else {
            let mut p = path(m - k, &leaves[k..]);
            p.push(mth(&leaves[..k]));
            p
        }
    }

    #[test]
    fn every_leaf_of_trees_up_to_40_leaves_proves_to_the_root() {
        for size in 1..=40usize {
            let leaves: Vec<TreeHash> = (0..size).map(|i| leaf_hash(&[i as u8])).collect();
            let root = mth(&leaves);
            for (index, leaf) in leaves.iter().enumerate() {
                let proof = path(index, &leaves);
                assert_eq!(
                    inclusion_proof_len(index as u64, size as u64),
                    proof.len(),
                    "length for {index} of {size}"
                );
                let got =
                    root_from_inclusion_proof(index as u64, size as u64, leaf, &proof).unwrap();
                assert_eq!(got, root, "leaf {index} of {size}");
            }
        }
    }

    #[test]
    fn index_at_or_beyond_the_size_is_refused() {
        let leaf = leaf_hash(b"x");
        assert_eq!(
            root_from_inclusion_proof(3, 3, &leaf, &[]),
            Err(ProofShapeError::IndexOutOfRange)
        );
        assert_eq!(
            root_from_inclusion_proof(0, 0, &leaf, &[]),
            Err(ProofShapeError::IndexOutOfRange)
        );
    }

    #[test]
    fn proofs_with_a_hash_missing_or_extra_are_refused() {
        let leaves: Vec<TreeHash> = (0..7u8).map(|i| leaf_hash(&[i])).collect();
        let mut proof = path(2, &leaves);
        let expected = proof.len();
        proof.push([0; 32]);
        assert_eq!(
            root_from_inclusion_proof(2, 7, &leaves[2], &proof),
            Err(ProofShapeError::WrongLength { expected })
        );
        proof.truncate(expected - 1);
        assert_eq!(
            root_from_inclusion_proof(2, 7, &leaves[2], &proof),
            Err(ProofShapeError::WrongLength { expected })
        );
    }

    #[test]
    fn huge_trees_have_bounded_proofs() {
        assert_eq!(inclusion_proof_len(0, u64::MAX), 64);
        assert_eq!(inclusion_proof_len(u64::MAX - 1, u64::MAX), 63);
    }
}
