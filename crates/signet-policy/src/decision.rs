//! The decision: allow or deny, always with reasons a person can act on.
//!
//! Its JSON form is the contract of `signet verify --output json` and of the daemon's verify API.

use serde::Serialize;

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
    /// In dry-run, whether the rule would have denied (then `reasons` say why).
    #[serde(rename = "wouldDeny", skip_serializing_if = "std::ops::Not::not")]
    pub would_deny: bool,
}

/// A piece of evidence that did not count, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Rejected {
    /// Where it is.
    pub location: String,
    /// Why it was rejected.
    pub reason: String,
}
