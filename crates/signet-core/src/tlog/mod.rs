//! Transparency logs: the keys of logs whose signed word on an entry (Rekor) or a certificate
//! (certificate-transparency logs) signet trusts, as a Sigstore trusted root lists them.
//!
//! A [`TransparencyLog`] is only data: a name, the log id that entries and SCTs name it by, its
//! public key and the period in which what it signs is accepted.

mod merkle;

pub use merkle::{TreeHash, leaf_hash, node_hash};

use crate::keys::PublicKey;
use crate::timestamp::ValidFor;

/// A transparency log trusted to vouch for entries (Rekor) or for certificates (a CT log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransparencyLog {
    name: String,
    log_id: Vec<u8>,
    key: PublicKey,
    valid_for: ValidFor,
}

impl TransparencyLog {
    /// A log named `name` (its base URL in a trusted root), identified in entries by `log_id`
    /// (for Rekor v1 and CT logs the SHA-256 of its DER public key; for Rekor v2 the checkpoint
    /// key id the trusted root gives), signing with `key` in `valid_for`.
    pub fn new(
        name: impl Into<String>,
        log_id: Vec<u8>,
        key: PublicKey,
        valid_for: ValidFor,
    ) -> TransparencyLog {
        TransparencyLog {
            name: name.into(),
            log_id,
            key,
            valid_for,
        }
    }

    /// The log's name (its base URL).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The id entries and SCTs name the log by.
    pub fn log_id(&self) -> &[u8] {
        &self.log_id
    }

    /// The log's public key.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }

    /// When what the log signs is accepted.
    pub fn valid_for(&self) -> ValidFor {
        self.valid_for
    }
}
