//! Verification against bare keys (`signet verify --key`): no policy, one implicit attestor.

use signet_core::keys::PublicKey;
use signet_core::reference::PinnedRef;
use signet_policy::decision::{AcceptedReport, AttestorResult, Decision};

use crate::evidence::Checked;

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
        would_deny: false,
    }
}
