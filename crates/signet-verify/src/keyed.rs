//! Verification against bare keys (`signet verify --key`): no policy, one implicit attestor.

use signet_core::keys::PublicKey;
use signet_core::reference::PinnedRef;
use signet_policy::decision::{
    AcceptedReport, AttestorResult, Decision, Enforcement, Outcome, SignedAtReport,
};

use crate::proof::Checked;

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
            first.location(),
            first.predicate_type(),
            first.key_id()
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
                .map(|r| format!("{}: {}", r.location.with_format(), r.reason)),
        );
    }
    Decision {
        outcome: if satisfied {
            Outcome::Allowed
        } else {
            Outcome::Denied
        },
        image: image.to_string(),
        digest: Some(image.digest().clone()),
        rule: "key".to_string(),
        enforcement: Enforcement::Enforced,
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
                location: a.location().clone(),
                predicate_type: a.predicate_type().to_string(),
                key_id: a.key_id().clone(),
                digest: Some(a.digest().clone()),
                signed_at: a.signed_times().shown().map(SignedAtReport::from),
            })
            .collect(),
        rejected: checked.rejected.clone(),
        through_index: None,
        valid_until: None,
    }
}
