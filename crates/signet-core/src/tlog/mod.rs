//! Transparency logs: the keys of logs whose signed word on an entry (Rekor) or a certificate
//! (certificate-transparency logs) signet trusts, as a Sigstore trusted root lists them, and
//! the offline verification of Rekor entries against them.
//!
//! A [`TransparencyLog`] is only data: a name, the log id that entries and SCTs name it by, its
//! public key and the period in which what it signs is accepted.
//!
//! [`verify_entry`] checks a [`LogEntry`] (from a bundle, or from a cosign legacy layer's
//! annotation) with no network: the log's signed entry timestamp (Rekor v1's inclusion
//! promise), the inclusion proof up to a checkpoint the log signed (Rekor v1 and v2), and that
//! the entry's body is the signature being verified ([`EntryExpectation`]). Only an entry whose
//! signed entry timestamp verified yields a trusted time; Rekor v2 entries have none and need
//! an RFC 3161 timestamp ([`crate::timestamp`]) instead.

mod body;
mod checkpoint;
mod entry;
mod merkle;
mod promise;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use body::{EntryExpectation, EntryKind, ExpectedSigner};
pub use checkpoint::{Checkpoint, MAX_CHECKPOINT_BYTES};
pub use entry::{
    COSIGN_BUNDLE_ANNOTATION, InclusionProof, LogEntry, MAX_BODY_BYTES, MAX_PROOF_HASHES,
};
pub use merkle::{TreeHash, leaf_hash, node_hash};

use crate::keys::PublicKey;
use crate::signed_time::{SignedTime, TimeSource};
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

/// Why a log entry was rejected.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum TlogError {
    /// The entry is not the JSON shape of a log entry.
    #[error("malformed transparency-log entry: {reason}")]
    MalformedEntry {
        /// What is wrong.
        reason: String,
    },
    /// The checkpoint is not a signed note with a size and a root hash.
    #[error("malformed checkpoint: {reason}")]
    MalformedCheckpoint {
        /// What is wrong.
        reason: String,
    },
    /// The body is of a known kind but lacks what that kind holds.
    #[error("malformed {kind} log entry body: {reason}")]
    MalformedBody {
        /// The body's kind.
        kind: EntryKind,
        /// What is wrong.
        reason: String,
    },
    /// What the entry was to be matched against cannot be read.
    #[error("cannot match a log entry: {reason}")]
    MalformedExpectation {
        /// What is wrong.
        reason: String,
    },
    /// A part of the entry is larger than signet accepts.
    #[error("{what} is too large: {size}, at most {limit} accepted")]
    TooLarge {
        /// Which part.
        what: &'static str,
        /// Its size (bytes, or items for lists).
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// No trusted log has the entry's log id.
    #[error("unknown log id {log_id}: no transparency log of the trusted root has it")]
    UnknownLog {
        /// The log id, hex.
        log_id: String,
    },
    /// The log's key was not valid when the entry claims to have been integrated.
    #[error("log {log} was not valid at integrated time {at}")]
    LogNotValidAt {
        /// The log's name.
        log: String,
        /// The integrated time, RFC 3339.
        at: String,
    },
    /// Neither a signed entry timestamp nor an inclusion proof: nothing vouches for the entry.
    #[error(
        "log entry has neither a signed entry timestamp nor an inclusion proof: nothing vouches \
         for it"
    )]
    NothingVouches,
    /// A signed entry timestamp, but no integrated time for it to sign.
    #[error("log entry has a signed entry timestamp but no integrated time")]
    PromiseWithoutTime,
    /// The signed entry timestamp does not verify: the body, time, index or log id it was made
    /// over differ from the entry's (a signature cannot say which).
    #[error(
        "signed entry timestamp does not verify with log {log}: it was made over another body, \
         integrated time, log index or log id"
    )]
    PromiseInvalid {
        /// The log's name.
        log: String,
    },
    /// The proof's index is not in its tree.
    #[error("inclusion proof index {index} is not below the tree size {size}")]
    ProofIndexOutOfRange {
        /// The index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The proof holds the wrong number of hashes for its index and tree size.
    #[error("inclusion proof has {got} hashes; leaf {index} of a tree of {size} needs {expected}")]
    ProofLength {
        /// Hashes present.
        got: usize,
        /// Hashes needed.
        expected: usize,
        /// The index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The proof leads to another root than the one it claims.
    #[error(
        "inclusion proof does not lead to its root hash: it leads to {computed}, claims {claimed}"
    )]
    ProofRootMismatch {
        /// The root computed, hex.
        computed: String,
        /// The root claimed, hex.
        claimed: String,
    },
    /// The proof is about another tree than the checkpoint.
    #[error(
        "inclusion proof does not lead to the checkpoint's root hash: the proof is for size \
         {proof_size}, root {proof_root}; the checkpoint for size {checkpoint_size}, root \
         {checkpoint_root}"
    )]
    CheckpointMismatch {
        /// The tree size of the proof.
        proof_size: u64,
        /// The root the proof leads to, hex.
        proof_root: String,
        /// The checkpoint's size.
        checkpoint_size: u64,
        /// The checkpoint's root, hex.
        checkpoint_root: String,
    },
    /// No signature on the checkpoint names a trusted log.
    #[error("checkpoint is signed by no log of the trusted root: its signers are {signers}")]
    CheckpointSignedByNoLog {
        /// The signature lines' names and key hints.
        signers: String,
    },
    /// A signature names a trusted log but does not verify: the checkpoint was altered.
    #[error("checkpoint signature of log {log} does not verify: the checkpoint was altered")]
    CheckpointSignatureInvalid {
        /// The log's name.
        log: String,
    },
    /// The checkpoint is signed by a trusted log, but not the one the entry names.
    #[error("checkpoint is signed by log {checkpoint_log}, but the entry is in log {entry_log}")]
    CheckpointOfAnotherLog {
        /// Who signed the checkpoint.
        checkpoint_log: String,
        /// The entry's log.
        entry_log: String,
    },
    /// The entry's `kindVersion` and its body disagree.
    #[error("log entry declares kind {declared}, but its body is {body}")]
    KindMismatch {
        /// What `kindVersion` says.
        declared: String,
        /// What the body says.
        body: String,
    },
    /// A kind of entry signet cannot match against a signature.
    #[error("unsupported log entry kind \"{kind}\" version \"{version}\"")]
    UnsupportedKind {
        /// The kind.
        kind: String,
        /// The version.
        version: String,
    },
    /// The entry is genuine but about something else.
    #[error("log entry vouches for another {what}")]
    BodyMismatch {
        /// What differs, with the values that matter.
        what: String,
    },
}

/// A log entry that [`verify_entry`] checked. Only the verifier constructs one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEntry {
    log_name: String,
    log_valid_for: ValidFor,
    log_index: u64,
    integrated_time: Option<SystemTime>,
    inclusion_proven: bool,
    kind: EntryKind,
}

impl VerifiedEntry {
    /// The log the entry is in, by its trusted-root name.
    pub fn log_name(&self) -> &str {
        &self.log_name
    }

    /// When the log is trusted. For entries without a trusted integrated time (Rekor v2), the
    /// caller checks its trusted time (an RFC 3161 timestamp) against this.
    pub fn log_valid_for(&self) -> ValidFor {
        self.log_valid_for
    }

    /// The entry's index in the log.
    pub fn log_index(&self) -> u64 {
        self.log_index
    }

    /// When the log integrated the entry: present only when the log's signed entry timestamp
    /// over it verified, and then a trusted signing time.
    pub fn integrated_time(&self) -> Option<SystemTime> {
        self.integrated_time
    }

    /// Whether an inclusion proof up to a checkpoint the log signed verified.
    pub fn inclusion_proven(&self) -> bool {
        self.inclusion_proven
    }

    /// The kind of the entry's body.
    pub fn kind(&self) -> EntryKind {
        self.kind
    }

    /// The trusted signing time the entry gives, when it gives one.
    pub fn signed_time(&self) -> Option<SignedTime> {
        self.integrated_time.map(|at| SignedTime {
            at,
            source: TimeSource::TransparencyLog {
                log: self.log_name.clone(),
            },
        })
    }
}

/// Verifies `entry` against the trusted `logs` and checks that it vouches for `expected`.
///
/// The entry's log is chosen by log id. A signed entry timestamp, when present, must verify
/// with that log's key and the log must be valid at the integrated time, which then becomes a
/// trusted time. An inclusion proof, when present, must lead from the entry's body to the root
/// hash of a checkpoint signed by the same log. At least one of the two must be present; every
/// one present must verify. (A proof without a checkpoint, as bundles v0.1 have, must lead to
/// its root but proves nothing by itself.) The body must describe the expected signature and
/// signer.
pub fn verify_entry(
    entry: &LogEntry,
    logs: &[TransparencyLog],
    expected: &EntryExpectation,
) -> Result<VerifiedEntry, TlogError> {
    let log = logs
        .iter()
        .find(|l| l.log_id() == entry.log_id())
        .ok_or_else(|| TlogError::UnknownLog {
            log_id: hex::encode(entry.log_id()),
        })?;
    // A proof without a checkpoint (bundle v0.1) leads to a root nobody signed: it is checked
    // for consistency but vouches for nothing.
    let checkpointed = entry
        .inclusion_proof
        .as_ref()
        .is_some_and(|p| p.checkpoint.is_some());
    if entry.signed_entry_timestamp.is_none() && !checkpointed {
        return Err(TlogError::NothingVouches);
    }

    let mut integrated_time = None;
    if let Some(set) = &entry.signed_entry_timestamp {
        let seconds = entry.integrated_time.ok_or(TlogError::PromiseWithoutTime)?;
        let at = UNIX_EPOCH
            .checked_add(Duration::from_secs(seconds))
            .ok_or_else(|| TlogError::MalformedEntry {
                reason: format!("integratedTime {seconds} is out of range"),
            })?;
        if !promise::verifies(log, set, &entry.body, seconds, entry.log_index) {
            return Err(TlogError::PromiseInvalid {
                log: log.name().to_string(),
            });
        }
        if !log.valid_for().contains(at) {
            return Err(TlogError::LogNotValidAt {
                log: log.name().to_string(),
                at: humantime::format_rfc3339_seconds(at).to_string(),
            });
        }
        integrated_time = Some(at);
    }

    let inclusion_proven = match &entry.inclusion_proof {
        None => false,
        Some(proof) => verify_inclusion(entry, proof, log, logs)?,
    };

    let kind = body::match_body(&entry.body, entry.kind_version(), expected)?;
    Ok(VerifiedEntry {
        log_name: log.name().to_string(),
        log_valid_for: log.valid_for(),
        log_index: entry.log_index,
        integrated_time,
        inclusion_proven,
        kind,
    })
}

/// Checks that `proof` leads from the entry's body to its root hash and, when it has a
/// checkpoint, that `log` signed that root. Returns whether the inclusion is proven (whether
/// there was a checkpoint).
fn verify_inclusion(
    entry: &LogEntry,
    proof: &InclusionProof,
    log: &TransparencyLog,
    logs: &[TransparencyLog],
) -> Result<bool, TlogError> {
    let leaf = leaf_hash(&entry.body);
    let (index, size) = (proof.log_index, proof.tree_size);
    let root = merkle::root_from_inclusion_proof(index, size, &leaf, &proof.hashes).map_err(
        |e| match e {
            merkle::ProofShapeError::IndexOutOfRange => {
                TlogError::ProofIndexOutOfRange { index, size }
            }
            merkle::ProofShapeError::WrongLength { expected } => TlogError::ProofLength {
                got: proof.hashes.len(),
                expected,
                index,
                size,
            },
        },
    )?;
    if root != proof.root_hash {
        return Err(TlogError::ProofRootMismatch {
            computed: hex::encode(root),
            claimed: hex::encode(proof.root_hash),
        });
    }
    let Some(checkpoint) = &proof.checkpoint else {
        return Ok(false);
    };
    let checkpoint = Checkpoint::parse(checkpoint)?;
    if checkpoint.size() != size || *checkpoint.root_hash() != root {
        return Err(TlogError::CheckpointMismatch {
            proof_size: size,
            proof_root: hex::encode(root),
            checkpoint_size: checkpoint.size(),
            checkpoint_root: hex::encode(checkpoint.root_hash()),
        });
    }
    let signer = checkpoint.signer(logs)?;
    if signer.log_id() != log.log_id() {
        return Err(TlogError::CheckpointOfAnotherLog {
            checkpoint_log: signer.name().to_string(),
            entry_log: log.name().to_string(),
        });
    }
    Ok(true)
}
