//! Where a piece of evidence was found, and the typed reason it was rejected.
//!
//! These are plain data shared by the verifier (which produces them), the policy engine (which
//! reports them in a decision) and the daemon (which counts rejections by cause). The proof of
//! an *accepted* piece of evidence is not here: only `signet-verify` can build one.

use std::fmt;

use crate::binauthz::BinAuthzError;
use crate::bundle::BundleError;
use crate::digest::Digest;
use crate::dsse::DsseError;
use crate::intoto::{AttestationError, StatementError};
use crate::simplesigning::SimpleSigningError;

/// Which of signet's readable formats a piece of evidence came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// A Sigstore bundle referrer (cosign v3).
    Bundle,
    /// A layer of the legacy `.sig` tag (simple signing).
    LegacySignature,
    /// A layer of the legacy `.att` tag (DSSE).
    LegacyAttestation,
    /// A Binary Authorization attestation occurrence stored as a referrer.
    BinAuthz,
}

impl Format {
    /// The name people read in reports: `bundle`, `legacy .sig`, `legacy .att`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Bundle => "bundle",
            Format::LegacySignature => "legacy .sig",
            Format::LegacyAttestation => "legacy .att",
            Format::BinAuthz => "binauthz",
        }
    }
}

/// Where a piece of evidence is in the store.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Location {
    /// A bundle referrer: the digest of its manifest.
    Referrer(Digest),
    /// A Binary Authorization occurrence referrer: the digest of its manifest.
    Occurrence(Digest),
    /// A legacy cosign tag (`sha256-<hex>.sig` or `.att`) as a whole, when its manifest could
    /// not be read.
    LegacyTag {
        /// `.sig` (simple signing) or `.att` (DSSE).
        format: Format,
        /// The tag.
        tag: String,
    },
    /// A layer of a legacy cosign tag (`sha256-<hex>.sig` or `.att`).
    LegacyLayer {
        /// `.sig` (simple signing) or `.att` (DSSE).
        format: Format,
        /// The tag.
        tag: String,
        /// The layer's position in the tag's manifest, from 0.
        index: usize,
    },
}

impl Location {
    /// The format the evidence at this location is read in.
    pub fn format(&self) -> Format {
        match self {
            Location::Referrer(_) => Format::Bundle,
            Location::Occurrence(_) => Format::BinAuthz,
            Location::LegacyTag { format, .. } | Location::LegacyLayer { format, .. } => *format,
        }
    }

    /// The location with its format, as rejections are reported:
    /// `referrer sha256:… (bundle)`, `sha256-….sig layer 0 (legacy .sig)`.
    pub fn with_format(&self) -> String {
        format!("{self} ({})", self.format().as_str())
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Referrer(digest) | Location::Occurrence(digest) => {
                write!(f, "referrer {digest}")
            }
            Location::LegacyTag { tag, .. } => write!(f, "{tag}"),
            Location::LegacyLayer { tag, index, .. } => write!(f, "{tag} layer {index}"),
        }
    }
}

impl serde::Serialize for Location {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Why a piece of evidence did not count, by cause. `Display` is the sentence a person reads;
/// [`Rejection::cause`] is a stable label to count by.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rejection {
    /// It could not be fetched or read from the store.
    #[error("{reason}")]
    Unreadable {
        /// What went wrong, as the store said it.
        reason: String,
    },
    /// It, or what it points at, is larger than a limit.
    #[error("{reason}")]
    TooLarge {
        /// Which limit.
        reason: String,
    },
    /// Not the shape its format requires (manifest, envelope, bundle, statement, payload).
    #[error("{reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// A well-formed kind of evidence signet does not verify with keys (keyless bundles,
    /// message signatures, unknown bundle media types).
    #[error("{reason}")]
    Unsupported {
        /// What it is.
        reason: String,
    },
    /// There was no key to verify with; fail closed.
    #[error("{reason}")]
    NoKeys {
        /// The sentence, which names the format.
        reason: String,
    },
    /// No signature verifies with the keys, and nothing says it was made with one of them.
    #[error("{reason}{}", named_key(.named))]
    UnknownKey {
        /// Which keys were tried.
        reason: String,
        /// The key the evidence says it was signed with (an unauthenticated hint, for people).
        named: Option<String>,
    },
    /// The evidence says it was signed with one of the keys, but the signature does not verify.
    #[error("{reason}{}", named_key(.named))]
    BadSignature {
        /// Which keys were tried.
        reason: String,
        /// The key the evidence names.
        named: Option<String>,
    },
    /// The signed content is about another digest.
    #[error("{reason}")]
    WrongDigest {
        /// Which digest it names.
        reason: String,
    },
    /// The signed content is not of the type its format requires (a DSSE payload that is not
    /// an in-toto statement).
    #[error(
        "DSSE payload type is \"{found}\", expected {}",
        crate::intoto::PAYLOAD_TYPE
    )]
    WrongPayloadType {
        /// The payload type found.
        found: String,
    },
    /// Its attestor withdrew it: a withdrawal statement signed by the same attestor's key names
    /// this referrer.
    #[error("{reason}")]
    Withdrawn {
        /// Who withdrew it, and why.
        reason: String,
    },
    /// Signed with a certificate that is not trusted here: the chain, the trusted signing time
    /// (transparency log, timestamp), the SCT or the identity failed, or the attestor trusts no
    /// certificates.
    #[error("{reason}")]
    Certificate {
        /// What failed.
        reason: String,
    },
    /// The evidence would take more than a verification's byte budget.
    #[error("evidence exceeds {limit} bytes for this verification; {what} was not read")]
    OverBudget {
        /// The budget in bytes.
        limit: u64,
        /// What was left unread.
        what: String,
    },
}

fn named_key(named: &Option<String>) -> String {
    match named {
        Some(key) => format!("; the bundle names key {key}"),
        None => String::new(),
    }
}

impl Rejection {
    /// Every cause label, for metrics that should show zeros rather than gaps.
    pub const CAUSES: [&'static str; 12] = [
        "unreadable",
        "too_large",
        "malformed",
        "unsupported",
        "no_keys",
        "unknown_key",
        "bad_signature",
        "wrong_digest",
        "wrong_payload_type",
        "over_budget",
        "withdrawn",
        "certificate",
    ];

    /// A stable label for the cause, e.g. for a metrics label: `wrong_digest`, `unknown_key`.
    pub fn cause(&self) -> &'static str {
        match self {
            Rejection::Unreadable { .. } => "unreadable",
            Rejection::TooLarge { .. } => "too_large",
            Rejection::Malformed { .. } => "malformed",
            Rejection::Unsupported { .. } => "unsupported",
            Rejection::NoKeys { .. } => "no_keys",
            Rejection::UnknownKey { .. } => "unknown_key",
            Rejection::BadSignature { .. } => "bad_signature",
            Rejection::WrongDigest { .. } => "wrong_digest",
            Rejection::WrongPayloadType { .. } => "wrong_payload_type",
            Rejection::OverBudget { .. } => "over_budget",
            Rejection::Withdrawn { .. } => "withdrawn",
            Rejection::Certificate { .. } => "certificate",
        }
    }

    /// A malformed-evidence rejection.
    pub fn malformed(reason: impl Into<String>) -> Rejection {
        Rejection::Malformed {
            reason: reason.into(),
        }
    }
}

impl From<DsseError> for Rejection {
    fn from(e: DsseError) -> Rejection {
        let reason = e.to_string();
        match e {
            DsseError::NoKeys => Rejection::NoKeys { reason },
            DsseError::NotVerified { .. } => Rejection::UnknownKey {
                reason,
                named: None,
            },
            _ => Rejection::Malformed { reason },
        }
    }
}

impl From<StatementError> for Rejection {
    fn from(e: StatementError) -> Rejection {
        let reason = e.to_string();
        match e {
            StatementError::SubjectMismatch { .. } => Rejection::WrongDigest { reason },
            StatementError::UnsupportedType { .. } => Rejection::Unsupported { reason },
            _ => Rejection::Malformed { reason },
        }
    }
}

impl From<AttestationError> for Rejection {
    fn from(e: AttestationError) -> Rejection {
        match e {
            AttestationError::Dsse(e) => e.into(),
            AttestationError::NotInToto { found } => Rejection::WrongPayloadType { found },
            AttestationError::Statement(e) => e.into(),
        }
    }
}

impl From<BundleError> for Rejection {
    fn from(e: BundleError) -> Rejection {
        let reason = e.to_string();
        match e {
            BundleError::Dsse(e) => e.into(),
            BundleError::NotInToto { found } => Rejection::WrongPayloadType { found },
            BundleError::Statement(e) => e.into(),
            BundleError::UnsupportedMediaType { .. }
            | BundleError::CertificateBased
            | BundleError::MessageSignature => Rejection::Unsupported { reason },
            _ => Rejection::Malformed { reason },
        }
    }
}

impl From<crate::keyless::KeylessError> for Rejection {
    fn from(e: crate::keyless::KeylessError) -> Rejection {
        use crate::keyless::KeylessError as K;
        let reason = e.to_string();
        match e {
            K::Bundle(e) => e.into(),
            K::Signature(_) => Rejection::BadSignature {
                reason,
                named: None,
            },
            _ => Rejection::Certificate { reason },
        }
    }
}

impl From<SimpleSigningError> for Rejection {
    fn from(e: SimpleSigningError) -> Rejection {
        let reason = e.to_string();
        match e {
            SimpleSigningError::DigestMismatch { .. } => Rejection::WrongDigest { reason },
            SimpleSigningError::NoKeys => Rejection::NoKeys { reason },
            SimpleSigningError::NotVerified { .. } => Rejection::UnknownKey {
                reason,
                named: None,
            },
            _ => Rejection::Malformed { reason },
        }
    }
}

impl From<BinAuthzError> for Rejection {
    fn from(e: BinAuthzError) -> Rejection {
        let reason = e.to_string();
        match e {
            BinAuthzError::NoKeys => Rejection::NoKeys { reason },
            BinAuthzError::UnknownKeyId { .. } => Rejection::UnknownKey {
                reason,
                named: None,
            },
            BinAuthzError::BadSignature { .. } | BinAuthzError::EmbeddedPayloadMismatch { .. } => {
                Rejection::BadSignature {
                    reason,
                    named: None,
                }
            }
            BinAuthzError::Payload(e) => e.into(),
        }
    }
}

/// A piece of evidence that did not count, where it is and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rejected {
    /// Where it is.
    pub location: Location,
    /// Why it was rejected.
    pub reason: Rejection,
}

impl serde::Serialize for Rejected {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut s = serializer.serialize_struct("Rejected", 2)?;
        s.serialize_field("location", &self.location.with_format())?;
        s.serialize_field("reason", &self.reason.to_string())?;
        s.end()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn digest() -> Digest {
        format!("sha256:{}", "ab".repeat(32)).parse().unwrap()
    }

    #[test]
    fn locations_read_as_before() {
        let referrer = Location::Referrer(digest());
        assert_eq!(referrer.to_string(), format!("referrer {}", digest()));
        assert_eq!(
            referrer.with_format(),
            format!("referrer {} (bundle)", digest())
        );
        let layer = Location::LegacyLayer {
            format: Format::LegacySignature,
            tag: "sha256-ab.sig".into(),
            index: 2,
        };
        assert_eq!(layer.with_format(), "sha256-ab.sig layer 2 (legacy .sig)");
    }

    #[test]
    fn rejected_serialises_to_the_old_json_shape() {
        let r = Rejected {
            location: Location::Referrer(digest()),
            reason: Rejection::malformed("not json"),
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            format!(
                r#"{{"location":"referrer {} (bundle)","reason":"not json"}}"#,
                digest()
            )
        );
    }

    #[test]
    fn errors_map_to_their_cause() {
        let wrong = SimpleSigningError::DigestMismatch {
            expected: digest(),
            found: digest(),
        };
        assert_eq!(Rejection::from(wrong).cause(), "wrong_digest");
        assert_eq!(
            Rejection::from(BundleError::CertificateBased).cause(),
            "unsupported"
        );
        assert_eq!(Rejection::from(DsseError::NoKeys).cause(), "no_keys");
        let causes: std::collections::BTreeSet<_> = Rejection::CAUSES.iter().collect();
        assert_eq!(causes.len(), Rejection::CAUSES.len());
    }
}
