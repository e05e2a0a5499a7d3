//! Hashing content as it streams past, for blobs too large to hold in memory.

use sha2::Digest as _;
use signet_core::digest::{Algorithm, Digest};

/// An incremental hash in the algorithm of a digest signet can check.
pub(crate) enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// A fresh hash for `algorithm`.
    pub(crate) fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    /// Feeds `bytes`.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    /// The digest of everything fed.
    pub(crate) fn finish(self) -> Digest {
        let (algorithm, hex) = match self {
            Hasher::Sha256(h) => (Algorithm::Sha256, hex::encode(h.finalize())),
            Hasher::Sha512(h) => (Algorithm::Sha512, hex::encode(h.finalize())),
        };
        // The hex of a hash of the algorithm's own length is always a valid digest; the
        // fallback only keeps this free of panics.
        Digest::from_hex(algorithm, &hex).unwrap_or_else(|_| Digest::of(algorithm, &[]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_hash_equals_one_shot() {
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let mut h = Hasher::new(algorithm);
            h.update(b"hello ");
            h.update(b"world");
            assert_eq!(h.finish(), Digest::of(algorithm, b"hello world"));
        }
    }
}
