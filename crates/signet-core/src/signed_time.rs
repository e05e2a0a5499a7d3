//! When a piece of evidence was signed, as far as its signed content says.
//!
//! Two kinds of time exist. A *trusted* time comes from a third party whose signature was
//! checked (an RFC 3161 timestamp, a transparency log's integrated time): the signer cannot
//! choose it. An *asserted* time is one the signer wrote inside what it signed: it is
//! authenticated (it cannot be changed without breaking the signature) but the signer could
//! have written any value. Policies use them differently: attestation age (`maxAge`) may rest
//! on either; a revoked key's evidence counts only with a trusted time before the revocation.
//!
//! Asserted times signet reads (and nothing else):
//!
//! | where | field |
//! |---|---|
//! | any in-toto statement signet wrote | `subject[].annotations["dev.signet.signedAt"]` of the subject naming the image |
//! | a simple-signing payload signet wrote | `optional["dev.signet.signedAt"]` |
//! | SLSA provenance v1 | `predicate.runDetails.metadata.finishedOn` |
//! | SLSA provenance v0.2 | `predicate.metadata.buildFinishedOn` |
//! | cosign vulnerability scan | `predicate.metadata.scanFinishedOn` |
//! | cosign custom predicate (`https://cosign.sigstore.dev/attestation/v1`) | `predicate.Timestamp` |
//!
//! All are RFC 3339 times. A field that is present but not a valid time is reported as
//! invalid, never skipped: skipping it could let another, newer field decide.

use std::fmt;
use std::time::SystemTime;

use crate::digest::Digest;
use crate::intoto::Statement;
use crate::simplesigning::SimpleSigning;

/// The annotation signet's `sign` and `attest` write the signing time into: on the in-toto
/// statement's subject (the ResourceDescriptor's `annotations`, which the in-toto spec keeps
/// for such metadata and which cosign and sigstore-js ignore), or in a simple-signing
/// payload's `optional` map.
pub const SIGNED_AT_ANNOTATION: &str = "dev.signet.signedAt";

/// Where a time came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeSource {
    /// Written by the signer inside the signed content, in this field.
    Asserted {
        /// The field, as a path people can find (`predicate.metadata.scanFinishedOn`).
        field: String,
    },
    /// A verified RFC 3161 timestamp from this authority.
    Timestamp {
        /// The authority, as the trusted root names it.
        authority: String,
    },
    /// A verified transparency-log entry's time, from this log.
    TransparencyLog {
        /// The log, as the trusted root names it.
        log: String,
    },
}

impl fmt::Display for TimeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeSource::Asserted { field } => write!(f, "signer-asserted {field}"),
            TimeSource::Timestamp { authority } => write!(f, "RFC 3161 timestamp by {authority}"),
            TimeSource::TransparencyLog { log } => write!(f, "transparency log {log}"),
        }
    }
}

/// A time at which evidence was signed, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTime {
    /// The time.
    pub at: SystemTime,
    /// Its source.
    pub source: TimeSource,
}

impl SignedTime {
    /// Whether a third party vouches for it (timestamp or log), rather than the signer.
    pub fn is_trusted(&self) -> bool {
        !matches!(self.source, TimeSource::Asserted { .. })
    }
}

impl fmt::Display for SignedTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({})",
            humantime::format_rfc3339_seconds(self.at),
            self.source
        )
    }
}

/// Every signing time a piece of evidence carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignedTimes {
    /// Valid times, trusted and asserted.
    pub times: Vec<SignedTime>,
    /// Fields that are present but do not hold a valid time, with what is wrong.
    pub invalid: Vec<String>,
}

impl SignedTimes {
    /// The earliest trusted time, if any.
    pub fn trusted(&self) -> Option<&SignedTime> {
        self.times
            .iter()
            .filter(|t| t.is_trusted())
            .min_by_key(|t| t.at)
    }

    /// The time reports show: the trusted one when there is one (what revocations and key
    /// windows go by), else the one age is measured from.
    pub fn shown(&self) -> Option<&SignedTime> {
        self.trusted().or_else(|| self.age_basis())
    }

    /// The time age is measured from: the earliest trusted time, or without one the earliest
    /// asserted time; an asserted time earlier than the trusted one also wins (the signer
    /// itself says the content is older, which only makes it stale sooner). `None` when the
    /// evidence carries no time.
    pub fn age_basis(&self) -> Option<&SignedTime> {
        let trusted = self.trusted();
        let earliest_asserted = self
            .times
            .iter()
            .filter(|t| !t.is_trusted())
            .min_by_key(|t| t.at);
        match (trusted, earliest_asserted) {
            (Some(t), Some(a)) if a.at < t.at => Some(a),
            (Some(t), _) => Some(t),
            (None, a) => a,
        }
    }

    fn read(&mut self, field: String, value: Option<&serde_json::Value>) {
        let Some(value) = value else { return };
        match value.as_str().map(humantime::parse_rfc3339_weak) {
            Some(Ok(at)) if value.as_str().is_some_and(is_rfc3339_with_zone) => {
                self.times.push(SignedTime {
                    at,
                    source: TimeSource::Asserted { field },
                });
            }
            _ => self
                .invalid
                .push(format!("{field} is not an RFC 3339 time: {value}")),
        }
    }
}

/// `parse_rfc3339_weak` accepts times without a zone (and fractions of a second, which the
/// strict parser refuses); a signed time must say it is UTC (`Z`). Offsets are refused.
fn is_rfc3339_with_zone(text: &str) -> bool {
    text.ends_with('Z')
}

/// The asserted times of a verified in-toto statement about `digest` (see the module docs for
/// the fields).
pub fn statement_times(statement: &Statement, digest: &Digest) -> SignedTimes {
    let mut times = SignedTimes::default();
    let algorithm = digest.algorithm().as_str();
    for subject in &statement.subject {
        let names_digest = subject
            .digest
            .get(algorithm)
            .is_some_and(|hex| hex.eq_ignore_ascii_case(digest.hex()));
        if names_digest {
            times.read(
                format!("subject annotation {SIGNED_AT_ANNOTATION}"),
                subject.annotations.get(SIGNED_AT_ANNOTATION),
            );
        }
    }
    let predicate = &statement.predicate;
    let fields: &[&[&str]] = match statement.predicate_type.as_str() {
        "https://slsa.dev/provenance/v1" => &[&["runDetails", "metadata", "finishedOn"]],
        "https://slsa.dev/provenance/v0.2" => &[&["metadata", "buildFinishedOn"]],
        "https://cosign.sigstore.dev/attestation/vuln/v1" => &[&["metadata", "scanFinishedOn"]],
        "https://cosign.sigstore.dev/attestation/v1" => &[&["Timestamp"]],
        _ => &[],
    };
    for path in fields {
        let value = path.iter().try_fold(predicate, |node, key| node.get(*key));
        times.read(format!("predicate.{}", path.join(".")), value);
    }
    times
}

/// The asserted time of a verified simple-signing payload: `optional["dev.signet.signedAt"]`.
pub fn simple_signing_times(payload: &SimpleSigning) -> SignedTimes {
    let mut times = SignedTimes::default();
    let value = payload
        .optional
        .get(SIGNED_AT_ANNOTATION)
        .map(|s| serde_json::Value::String(s.clone()));
    times.read(format!("optional {SIGNED_AT_ANNOTATION}"), value.as_ref());
    times
}

/// `at` as signet writes it: RFC 3339 UTC to the second.
pub fn format(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn digest() -> Digest {
        Digest::sha256_of(b"image")
    }

    fn at(text: &str) -> SystemTime {
        humantime::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn reads_signets_annotation_on_the_subject_naming_the_digest() {
        let mut st = Statement::new("r/x", &digest(), "https://example/p", serde_json::json!({}));
        st.set_signed_at(at("2026-12-01T10:00:00Z"));
        let times = statement_times(&st, &digest());
        assert_eq!(times.times.len(), 1);
        assert_eq!(times.times[0].at, at("2026-12-01T10:00:00Z"));
        assert!(!times.times[0].is_trusted());
        // The same annotation on a subject about another digest says nothing about this one.
        let other = Digest::sha256_of(b"other");
        assert!(statement_times(&st, &other).times.is_empty());
    }

    #[test]
    fn reads_standard_predicate_times() {
        let cases = [
            (
                "https://slsa.dev/provenance/v1",
                serde_json::json!({"runDetails": {"metadata": {"finishedOn": "2026-11-30T08:00:00Z"}}}),
            ),
            (
                "https://slsa.dev/provenance/v0.2",
                serde_json::json!({"metadata": {"buildFinishedOn": "2026-11-30T08:00:00Z"}}),
            ),
            (
                "https://cosign.sigstore.dev/attestation/vuln/v1",
                serde_json::json!({"metadata": {"scanFinishedOn": "2026-11-30T08:00:00Z"}}),
            ),
            (
                "https://cosign.sigstore.dev/attestation/v1",
                serde_json::json!({"Data": "x", "Timestamp": "2026-11-30T08:00:00Z"}),
            ),
        ];
        for (predicate_type, predicate) in cases {
            let st = Statement::new("r/x", &digest(), predicate_type, predicate);
            let times = statement_times(&st, &digest());
            assert_eq!(times.times.len(), 1, "{predicate_type}");
            assert_eq!(times.times[0].at, at("2026-11-30T08:00:00Z"));
        }
        // Another predicate type's field of the same name is not read.
        let st = Statement::new(
            "r/x",
            &digest(),
            "https://example/p",
            serde_json::json!({"metadata": {"scanFinishedOn": "2026-11-30T08:00:00Z"}}),
        );
        assert!(statement_times(&st, &digest()).times.is_empty());
    }

    #[test]
    fn invalid_times_are_reported_not_skipped() {
        for bad in [
            serde_json::json!("yesterday"),
            serde_json::json!(1700000000),
            serde_json::json!("2026-11-30T08:00:00"),
        ] {
            let st = Statement::new(
                "r/x",
                &digest(),
                "https://slsa.dev/provenance/v0.2",
                serde_json::json!({"metadata": {"buildFinishedOn": bad}}),
            );
            let times = statement_times(&st, &digest());
            assert!(times.times.is_empty());
            assert_eq!(times.invalid.len(), 1, "{:?}", times.invalid);
            assert!(times.invalid[0].contains("buildFinishedOn"));
        }
    }

    #[test]
    fn age_is_measured_from_the_trusted_time_unless_the_signer_admits_an_earlier_one() {
        let trusted = SignedTime {
            at: at("2026-12-01T00:00:00Z"),
            source: TimeSource::Timestamp {
                authority: "tsa".into(),
            },
        };
        let later = SignedTime {
            at: at("2026-12-01T05:00:00Z"),
            source: TimeSource::Asserted { field: "f".into() },
        };
        let times = SignedTimes {
            times: vec![later.clone(), trusted.clone()],
            invalid: Vec::new(),
        };
        assert_eq!(times.age_basis(), Some(&trusted));
        let earlier = SignedTime {
            at: trusted.at - Duration::from_secs(3600),
            source: TimeSource::Asserted { field: "g".into() },
        };
        let times = SignedTimes {
            times: vec![later, trusted, earlier.clone()],
            invalid: Vec::new(),
        };
        assert_eq!(times.age_basis(), Some(&earlier));
        assert_eq!(SignedTimes::default().age_basis(), None);
    }

    #[test]
    fn simple_signing_optional_time() {
        let mut p = SimpleSigning::cosign("r/x", &digest(), Default::default());
        p.optional
            .insert(SIGNED_AT_ANNOTATION.into(), "2026-12-01T10:00:00Z".into());
        let parsed = SimpleSigning::parse(&p.to_cosign_bytes()).unwrap();
        let times = simple_signing_times(&parsed);
        assert_eq!(times.times[0].at, at("2026-12-01T10:00:00Z"));
        let bare = SimpleSigning::cosign("r/x", &digest(), Default::default());
        assert_eq!(simple_signing_times(&bare), SignedTimes::default());
    }
}
