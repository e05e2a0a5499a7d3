//! Verification against bare keys (`signet verify --key`): no policy, one implicit attestor.

use signet_core::keys::PublicKey;
use signet_core::reference::PinnedRef;
use signet_policy::decision::{
    AcceptedReport, AttestorResult, CertificateReport, Decision, Enforcement, Outcome,
    SignedAtReport,
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
    with_trust(image, name, !keys.is_empty(), checked)
}

/// The decision for verification against one implicit attestor named `name` (keys, or a
/// certificate identity): allowed when any evidence verified. `has_trust` false (nothing to
/// verify with) is a denial.
pub fn with_trust(image: &PinnedRef, name: String, has_trust: bool, checked: &Checked) -> Decision {
    let satisfied = has_trust && !checked.accepted.is_empty();
    let reason = if !has_trust {
        "no public key to verify with".to_string()
    } else if let Some(first) = checked.accepted.first() {
        let by = match first.certified() {
            Some(c) => format!("certificate for {}", CertificateReport::from(c)),
            None => first.key_id().to_string(),
        };
        format!(
            "{} verified: {} signed by {by}",
            first.location(),
            first.predicate_type(),
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
        rule: if name.starts_with("key") {
            "key".to_string()
        } else {
            "certificate".to_string()
        },
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
                certificate: a.certified().map(CertificateReport::from),
            })
            .collect(),
        rejected: checked.rejected.clone(),
        through_index: None,
        valid_until: None,
    }
}
