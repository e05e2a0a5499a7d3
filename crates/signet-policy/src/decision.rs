//! The decision: allow or deny, always with reasons a person can act on.
//!
//! Its JSON form is the contract of `signet verify --output json` and of the daemon's verify API;
//! the types here are typed (an outcome, an enforcement, an optional digest, typed locations and
//! rejections) and serialise to exactly the JSON of earlier releases (`tests/e2e/snapshots/`).

use std::fmt;

use serde::Serialize;
use signet_core::digest::Digest;
use signet_core::evidence::Location;
use signet_core::keys::KeyId;
use signet_core::signed_time::SignedTime;

pub use signet_core::evidence::{Rejected, Rejection};

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
    pub location: Location,
    /// Its predicate type.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The key that verified it.
    #[serde(rename = "keyId", serialize_with = "display")]
    pub key_id: KeyId,
    /// The digest it is about, where it sits: the image's, or for an image covered through its
    /// index, the index's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// When it was signed: the trusted time when there is one, else the signer's (see
    /// `SignedTimes::shown`).
    #[serde(rename = "signedAt", skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<SignedAtReport>,
    /// For evidence signed with a certificate: whose, vouched for by whom.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateReport>,
}

/// The certificate a piece of evidence was signed with, in reports.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CertificateReport {
    /// The identity (SAN: workflow URI, email…).
    pub subject: String,
    /// The OIDC issuer that vouched for it (Fulcio certificates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The CA that issued it.
    pub authority: String,
    /// The transparency-log entries that vouched for the signature.
    #[serde(rename = "logEntries", skip_serializing_if = "Vec::is_empty")]
    pub log_entries: Vec<LogEntryReport>,
}

/// A transparency-log entry in reports.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LogEntryReport {
    /// The log (its base URL).
    pub log: String,
    /// The entry's index.
    #[serde(rename = "logIndex")]
    pub log_index: u64,
}

impl From<&signet_core::keyless::CertifiedSignature> for CertificateReport {
    fn from(c: &signet_core::keyless::CertifiedSignature) -> CertificateReport {
        let identity = c.certificate().identity();
        CertificateReport {
            subject: identity.subject.clone(),
            issuer: identity.issuer.clone(),
            authority: c.certificate().authority().to_string(),
            log_entries: c
                .log_entries()
                .iter()
                .map(|(log, index)| LogEntryReport {
                    log: log.clone(),
                    log_index: *index,
                })
                .collect(),
        }
    }
}

impl fmt::Display for CertificateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.subject)?;
        if let Some(issuer) = &self.issuer {
            write!(f, " (issuer {issuer})")?;
        }
        for entry in &self.log_entries {
            write!(f, ", {} entry {}", entry.log, entry.log_index)?;
        }
        Ok(())
    }
}

/// A signing time in reports.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SignedAtReport {
    /// RFC 3339, UTC.
    pub time: String,
    /// Where it came from (`signer-asserted predicate.metadata.scanFinishedOn`,
    /// `RFC 3161 timestamp by …`).
    pub source: String,
    /// Whether a third party vouches for it.
    pub trusted: bool,
}

impl From<&SignedTime> for SignedAtReport {
    fn from(t: &SignedTime) -> SignedAtReport {
        SignedAtReport {
            time: signet_core::signed_time::format(t.at),
            source: t.source.to_string(),
            trusted: t.is_trusted(),
        }
    }
}

fn display<S: serde::Serializer>(value: &KeyId, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// Whether the image may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Admitted: the rule allows it.
    Allowed,
    /// Refused.
    Denied,
    /// Admitted by a dry-run rule that would have denied it (the reasons say why).
    AllowedDryRunWouldDeny,
}

impl Outcome {
    /// Whether the image may run (a dry-run would-deny may).
    pub fn allowed(self) -> bool {
        !matches!(self, Outcome::Denied)
    }
}

/// How the rule that decided is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Enforcement {
    /// Denials block (`ENFORCED_BLOCK_AND_AUDIT_LOG`; also `--key` verification).
    #[serde(rename = "enforced")]
    Enforced,
    /// Denials are only reported (`DRYRUN_AUDIT_LOG_ONLY`).
    #[serde(rename = "dryrun")]
    DryRun,
}

impl Enforcement {
    /// `enforced` or `dryrun`, as in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Enforced => "enforced",
            Enforcement::DryRun => "dryrun",
        }
    }
}

impl std::fmt::Display for Enforcement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone)]
pub struct Decision {
    /// Allowed, denied, or allowed by a dry-run rule that would deny.
    pub outcome: Outcome,
    /// The image as given.
    pub image: String,
    /// The digest that was verified; `None` when no registry was asked (allowlist, exemption,
    /// a rule that needs no evidence on a tag-only reference).
    pub digest: Option<Digest>,
    /// The rule that applied.
    pub rule: String,
    /// How that rule is enforced.
    pub enforcement: Enforcement,
    /// Each required attestor and whether it was satisfied.
    pub attestors: Vec<AttestorResult>,
    /// Why, in order: what failed first.
    pub reasons: Vec<String>,
    /// Evidence that verified.
    pub accepted: Vec<AcceptedReport>,
    /// Evidence that did not, with reasons.
    pub rejected: Vec<Rejected>,
    /// The index whose evidence covered this platform manifest (it lists the digest), when the
    /// image was allowed that way.
    pub through_index: Option<Digest>,
    /// When an admitting decision stops holding by time alone: the evidence it rests on
    /// reaches its attestor's `maxAge`, or its key's `validUntil`. Caches must not keep it
    /// longer.
    pub valid_until: Option<std::time::SystemTime>,
}

impl Decision {
    /// Whether the image may run (also when a dry-run rule would have denied it).
    pub fn allowed(&self) -> bool {
        self.outcome.allowed()
    }

    /// Whether a dry-run rule admitted what it would have denied.
    pub fn would_deny(&self) -> bool {
        self.outcome == Outcome::AllowedDryRunWouldDeny
    }
}

/// The JSON shape, field for field and in order, of the decision of earlier releases.
#[derive(Serialize)]
struct Wire<'d> {
    allowed: bool,
    image: &'d str,
    /// `""` when no digest was verified.
    digest: String,
    rule: &'d str,
    enforcement: Enforcement,
    attestors: &'d [AttestorResult],
    reasons: &'d [String],
    accepted: &'d [AcceptedReport],
    rejected: &'d [Rejected],
    #[serde(rename = "wouldDeny", skip_serializing_if = "std::ops::Not::not")]
    would_deny: bool,
    #[serde(rename = "throughIndex", skip_serializing_if = "Option::is_none")]
    through_index: Option<String>,
    #[serde(rename = "validUntil", skip_serializing_if = "Option::is_none")]
    valid_until: Option<String>,
}

impl Serialize for Decision {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Wire {
            allowed: self.allowed(),
            image: &self.image,
            digest: self
                .digest
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            rule: &self.rule,
            enforcement: self.enforcement,
            attestors: &self.attestors,
            reasons: &self.reasons,
            accepted: &self.accepted,
            rejected: &self.rejected,
            would_deny: self.would_deny(),
            through_index: self.through_index.as_ref().map(ToString::to_string),
            valid_until: self.valid_until.map(signet_core::signed_time::format),
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn decision(outcome: Outcome, enforcement: Enforcement) -> Decision {
        Decision {
            outcome,
            image: "r.example/app@sha256:x".into(),
            digest: None,
            rule: "default".into(),
            enforcement,
            attestors: Vec::new(),
            reasons: Vec::new(),
            accepted: Vec::new(),
            rejected: Vec::new(),
            through_index: None,
            valid_until: None,
        }
    }

    #[test]
    fn json_keeps_the_old_shape() {
        let allowed =
            serde_json::to_string(&decision(Outcome::Allowed, Enforcement::Enforced)).unwrap();
        assert_eq!(
            allowed,
            r#"{"allowed":true,"image":"r.example/app@sha256:x","digest":"","rule":"default","enforcement":"enforced","attestors":[],"reasons":[],"accepted":[],"rejected":[]}"#
        );
        let dry = serde_json::to_string(&decision(
            Outcome::AllowedDryRunWouldDeny,
            Enforcement::DryRun,
        ))
        .unwrap();
        assert!(dry.starts_with(r#"{"allowed":true,"#), "{dry}");
        assert!(dry.ends_with(r#""rejected":[],"wouldDeny":true}"#), "{dry}");
        let denied =
            serde_json::to_string(&decision(Outcome::Denied, Enforcement::Enforced)).unwrap();
        assert!(denied.starts_with(r#"{"allowed":false,"#), "{denied}");
        assert!(!denied.contains("wouldDeny"), "{denied}");
    }
}
