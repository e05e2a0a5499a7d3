//! The decision: allow or deny, always with reasons a person can act on.

use serde::Serialize;
use signet_core::keys::PublicKey;
use signet_core::reference::PinnedRef;

use crate::evidence::{Checked, Rejected};

/// One attestor's part in a decision.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AttestorResult {
    /// The attestor's name (for `--key`, `key sha256:…`).
    pub name: String,
    /// Whether it attested the digest.
    pub satisfied: bool,
    /// Why, or why not.
    pub reason: String,
}

/// One accepted piece of evidence, for reports.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AcceptedReport {
    /// Where it is.
    pub location: String,
    /// Its predicate type.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The key that verified it.
    #[serde(rename = "keyId")]
    pub key_id: String,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// Whether the image may run.
    pub allowed: bool,
    /// The image as given.
    pub image: String,
    /// The digest that was verified.
    pub digest: String,
    /// The rule that applied.
    pub rule: String,
    /// `enforced` or `dryrun`.
    pub enforcement: String,
    /// Each required attestor and whether it was satisfied.
    pub attestors: Vec<AttestorResult>,
    /// Why, in order: what failed first.
    pub reasons: Vec<String>,
    /// Evidence that verified.
    pub accepted: Vec<AcceptedReport>,
    /// Evidence that did not, with reasons.
    pub rejected: Vec<Rejected>,
}

/// The decision for `--key` verification: allowed when any evidence verified with one of
/// `keys`. Fails closed: no keys, or no evidence, is a denial with a reason.
pub fn with_keys(image: &PinnedRef, keys: &[PublicKey], checked: &Checked) -> Decision {
    let name = match keys {
        [one] => format!("key {}", one.id()),
        _ => format!(
            "keys {}",
            keys.iter()
                .map(|k| k.id().short())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let satisfied = !keys.is_empty() && !checked.accepted.is_empty();
    let reason = if keys.is_empty() {
        "no public key to verify with".to_string()
    } else if let Some(first) = checked.accepted.first() {
        format!(
            "{} verified: {} signed by {}",
            first.location, first.predicate_type, first.key_id
        )
    } else if checked.rejected.is_empty() {
        format!("no signatures or attestations found for {}", image.digest())
    } else {
        let seen = checked.rejected.len();
        format!(
            "none of the {seen} signature(s)/attestation(s) found for {} verifies with {name}",
            image.digest()
        )
    };
    let mut reasons = Vec::new();
    if !satisfied {
        reasons.push(reason.clone());
        reasons.extend(
            checked
                .rejected
                .iter()
                .map(|r| format!("{}: {}", r.location, r.reason)),
        );
    }
    Decision {
        allowed: satisfied,
        image: image.to_string(),
        digest: image.digest().to_string(),
        rule: "key".to_string(),
        enforcement: "enforced".to_string(),
        attestors: vec![AttestorResult {
            name,
            satisfied,
            reason,
        }],
        reasons,
        accepted: checked
            .accepted
            .iter()
            .map(|a| AcceptedReport {
                location: a.location.clone(),
                predicate_type: a.predicate_type.clone(),
                key_id: a.key_id.to_string(),
            })
            .collect(),
        rejected: checked.rejected.clone(),
    }
}
