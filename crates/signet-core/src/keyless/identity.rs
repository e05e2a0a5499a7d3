//! Who a signing certificate names: its subject alternative name, the OIDC issuer Fulcio
//! recorded, and Fulcio's other claims (workflow, repository, ref, ...); and the matchers an
//! attestor states them with.
//!
//! Fulcio's extensions: <https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md>.

use std::collections::BTreeMap;
use std::fmt;

use der::Decode as _;
use der::asn1::{ObjectIdentifier, Utf8StringRef};
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

/// The arc under which Fulcio's extensions live.
const FULCIO_ARC: &str = "1.3.6.1.4.1.57264.1.";
/// Fulcio's issuer, v1: the extension value is the raw string (deprecated by v2).
const FULCIO_ISSUER_V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
/// Fulcio's issuer, v2: a DER UTF8String.
const FULCIO_ISSUER_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
/// The otherName SAN type Fulcio uses for usernames.
const FULCIO_OTHER_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.7");

/// The longest identity pattern accepted, and the compiled size bound.
const MAX_PATTERN_LEN: usize = 4096;
const MAX_REGEX_SIZE: usize = 1 << 20;

/// Fulcio's named extensions: the last arc under [`FULCIO_ARC`], the name (sigstore-go's and
/// cosign's), and whether the value is a raw string (legacy 1.2–1.6) rather than DER UTF8String.
const FULCIO_EXTENSIONS: &[(u32, &str, bool)] = &[
    (2, "githubWorkflowTrigger", true),
    (3, "githubWorkflowSha", true),
    (4, "githubWorkflowName", true),
    (5, "githubWorkflowRepository", true),
    (6, "githubWorkflowRef", true),
    (9, "buildSignerURI", false),
    (10, "buildSignerDigest", false),
    (11, "runnerEnvironment", false),
    (12, "sourceRepositoryURI", false),
    (13, "sourceRepositoryDigest", false),
    (14, "sourceRepositoryRef", false),
    (15, "sourceRepositoryIdentifier", false),
    (16, "sourceRepositoryOwnerURI", false),
    (17, "sourceRepositoryOwnerIdentifier", false),
    (18, "buildConfigURI", false),
    (19, "buildConfigDigest", false),
    (20, "buildTrigger", false),
    (21, "runInvocationURI", false),
    (22, "sourceRepositoryVisibilityAtSigning", false),
];

/// The identity a signing certificate was issued to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateIdentity {
    /// The subject: the first subject alternative name (URI, email, DNS name or Fulcio
    /// username), or, for a certificate without one (own PKI only), its subject DN.
    pub subject: String,
    /// The OIDC issuer Fulcio recorded (v2 extension, else v1); `None` outside Fulcio.
    pub issuer: Option<String>,
    /// Fulcio's other claims, by name (`sourceRepositoryURI`, `githubWorkflowRef`, ...).
    pub extensions: BTreeMap<String, String>,
}

impl CertificateIdentity {
    /// Reads the identity of `cert`. Fails when a Fulcio extension it names is malformed: an
    /// identity is not guessed at.
    pub(crate) fn of(cert: &Certificate) -> Result<CertificateIdentity, String> {
        let tbs = cert.tbs_certificate();
        let subject = match tbs
            .get_extension::<SubjectAltName>()
            .map_err(|e| format!("malformed subject alternative name: {e}"))?
        {
            Some((_, san)) => san
                .0
                .iter()
                .find_map(general_name_text)
                .unwrap_or_else(|| tbs.subject().to_string()),
            None => tbs.subject().to_string(),
        };
        let mut issuer_v1 = None;
        let mut issuer_v2 = None;
        let mut extensions = BTreeMap::new();
        for ext in tbs.extensions().map(Vec::as_slice).unwrap_or_default() {
            let oid = ext.extn_id.to_string();
            let Some(arc) = oid
                .strip_prefix(FULCIO_ARC)
                .and_then(|a| a.parse::<u32>().ok())
            else {
                continue;
            };
            let value = ext.extn_value.as_bytes();
            let raw = || {
                String::from_utf8(value.to_vec())
                    .map_err(|_| format!("Fulcio extension {oid} is not UTF-8"))
            };
            let utf8 = || {
                Utf8StringRef::from_der(value)
                    .map(|s| s.as_str().to_string())
                    .map_err(|e| format!("Fulcio extension {oid} is not a DER UTF8String: {e}"))
            };
            if ext.extn_id == FULCIO_ISSUER_V1 {
                issuer_v1 = Some(raw()?);
            } else if ext.extn_id == FULCIO_ISSUER_V2 {
                issuer_v2 = Some(utf8()?);
            } else if let Some((_, name, legacy)) =
                FULCIO_EXTENSIONS.iter().find(|(a, _, _)| *a == arc)
            {
                let text = if *legacy { raw()? } else { utf8()? };
                extensions.insert((*name).to_string(), text);
            } else if let Ok(text) = utf8() {
                // A claim newer than this table: kept under its OID when it is a string.
                extensions.insert(oid, text);
            }
        }
        Ok(CertificateIdentity {
            subject,
            issuer: issuer_v2.or(issuer_v1),
            extensions,
        })
    }
}

/// The text of a subject alternative name signet matches identities on.
fn general_name_text(name: &GeneralName) -> Option<String> {
    match name {
        GeneralName::UniformResourceIdentifier(s)
        | GeneralName::Rfc822Name(s)
        | GeneralName::DnsName(s) => Some(s.to_string()),
        GeneralName::OtherName(other) if other.type_id == FULCIO_OTHER_NAME => other
            .value
            .decode_as::<Utf8StringRef<'_>>()
            .ok()
            .map(|s| s.as_str().to_string()),
        _ => None,
    }
}

/// Why an identity pattern was refused.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum IdentityError {
    /// A regular expression that is not anchored at both ends.
    #[error(
        "identity regular expression \"{pattern}\" must be anchored: start it with ^ and end it with $ (an unanchored pattern matches any identity that merely contains it)"
    )]
    Unanchored {
        /// The pattern.
        pattern: String,
    },
    /// Not a valid regular expression, or too large.
    #[error("invalid identity regular expression \"{pattern}\": {reason}")]
    InvalidRegex {
        /// The pattern.
        pattern: String,
        /// What is wrong.
        reason: String,
    },
}

/// How one field of an identity must look: exactly a string, or matching an anchored regular
/// expression.
#[derive(Clone)]
pub enum StringMatch {
    /// Equal to this string.
    Exact(String),
    /// Matching this regular expression, anchored at both ends.
    Regex(regex::Regex),
}

impl fmt::Debug for StringMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for StringMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StringMatch::Exact(s) => write!(f, "\"{s}\""),
            StringMatch::Regex(re) => write!(f, "/{}/", re.as_str()),
        }
    }
}

impl PartialEq for StringMatch {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (StringMatch::Exact(a), StringMatch::Exact(b)) => a == b,
            (StringMatch::Regex(a), StringMatch::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl Eq for StringMatch {}

impl StringMatch {
    /// Equal to `s`.
    pub fn exact(s: impl Into<String>) -> StringMatch {
        StringMatch::Exact(s.into())
    }

    /// Matching the regular expression `pattern`, which must start with `^` and end with an
    /// unescaped `$`. cosign's `--certificate-identity-regexp` searches rather than matches, so
    /// `https://github.com/org/` also admits `https://evil.example/?https://github.com/org/`;
    /// requiring the anchors makes the pattern say what it admits.
    pub fn regex(pattern: &str) -> Result<StringMatch, IdentityError> {
        if !is_anchored(pattern) {
            return Err(IdentityError::Unanchored {
                pattern: pattern.to_string(),
            });
        }
        let invalid = |reason: String| IdentityError::InvalidRegex {
            pattern: pattern.to_string(),
            reason,
        };
        if pattern.len() > MAX_PATTERN_LEN {
            return Err(invalid(format!("longer than {MAX_PATTERN_LEN} bytes")));
        }
        let re = regex::RegexBuilder::new(pattern)
            .size_limit(MAX_REGEX_SIZE)
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        Ok(StringMatch::Regex(re))
    }

    /// Whether `value` matches.
    pub fn is_match(&self, value: &str) -> bool {
        match self {
            StringMatch::Exact(s) => s == value,
            StringMatch::Regex(re) => re.is_match(value),
        }
    }
}

/// Whether `pattern` starts with `^` and ends with a `$` not escaped by a backslash. (A
/// top-level alternation such as `^a$|b` passes this test yet is unanchored on one side, so
/// the whole pattern is also checked to hold no top-level `|`.)
fn is_anchored(pattern: &str) -> bool {
    let Some(body) = pattern.strip_prefix('^').and_then(|p| p.strip_suffix('$')) else {
        return false;
    };
    let trailing_backslashes = body.bytes().rev().take_while(|b| *b == b'\\').count();
    if trailing_backslashes % 2 == 1 {
        return false;
    }
    // Reject `|` outside any group or class: `^a|b$` is `(^a)|(b$)`.
    let mut depth = 0usize;
    let mut in_class = false;
    let mut escaped = false;
    for c in body.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '(' if !in_class => depth += 1,
            ')' if !in_class => depth = depth.saturating_sub(1),
            '|' if !in_class && depth == 0 => return false,
            _ => {}
        }
    }
    true
}

/// The identity an attestor accepts: a subject, an OIDC issuer (which keyless attestors must
/// state: the same subject from another issuer is another person), and optionally Fulcio
/// claims by name (`sourceRepositoryRef`, `githubWorkflowTrigger`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityMatcher {
    /// The subject (SAN) required.
    pub subject: StringMatch,
    /// The OIDC issuer required; `None` only for certificates from a site's own CA.
    pub issuer: Option<StringMatch>,
    /// Further claims required, by extension name (or dotted OID for claims newer than signet).
    pub extensions: Vec<(String, StringMatch)>,
}

impl IdentityMatcher {
    /// A keyless identity: `subject` from `issuer`.
    pub fn new(subject: StringMatch, issuer: StringMatch) -> IdentityMatcher {
        IdentityMatcher {
            subject,
            issuer: Some(issuer),
            extensions: Vec::new(),
        }
    }

    /// A certificate from a site's own CA, matched on its subject alone (such certificates
    /// carry no OIDC issuer). Refused for Fulcio certificates by
    /// [`SigningCertificate::check_identity`](super::SigningCertificate::check_identity).
    pub fn subject_only(subject: StringMatch) -> IdentityMatcher {
        IdentityMatcher {
            subject,
            issuer: None,
            extensions: Vec::new(),
        }
    }

    /// The same, also requiring the claim `name` to match `value`.
    pub fn with_extension(
        mut self,
        name: impl Into<String>,
        value: StringMatch,
    ) -> IdentityMatcher {
        self.extensions.push((name.into(), value));
        self
    }

    /// Whether `identity` is acceptable; if not, says what differed.
    pub fn matches(&self, identity: &CertificateIdentity) -> Result<(), String> {
        if !self.subject.is_match(&identity.subject) {
            return Err(format!(
                "certificate subject \"{}\" does not match {}",
                identity.subject, self.subject
            ));
        }
        if let Some(want) = &self.issuer {
            match &identity.issuer {
                None => {
                    return Err(format!(
                        "certificate names no OIDC issuer; {want} is required"
                    ));
                }
                Some(issuer) if !want.is_match(issuer) => {
                    return Err(format!(
                        "certificate issuer \"{issuer}\" does not match {want}"
                    ));
                }
                Some(_) => {}
            }
        }
        for (name, want) in &self.extensions {
            match identity.extensions.get(name) {
                None => return Err(format!("certificate has no {name}; {want} is required")),
                Some(value) if !want.is_match(value) => {
                    return Err(format!(
                        "certificate {name} \"{value}\" does not match {want}"
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn unanchored_regexps_are_refused_with_a_reason() {
        for bad in [
            "https://github.com/org/.*",
            "^https://github.com/org/.*",
            "https://github.com/org/.*$",
            "^https://github.com/org/.*\\$",
            "^a$|^b$",
            "^a|b$",
        ] {
            let err = StringMatch::regex(bad).unwrap_err();
            assert!(matches!(err, IdentityError::Unanchored { .. }), "{bad}");
            assert!(err.to_string().contains("must be anchored"), "{err}");
        }
        for good in ["^https://github.com/org/.*$", "^(a|b)$", "^[|]$", "^a\\\\$"] {
            StringMatch::regex(good).unwrap();
        }
        assert!(matches!(
            StringMatch::regex("^(unclosed$"),
            Err(IdentityError::InvalidRegex { .. })
        ));
    }

    #[test]
    fn a_regex_matches_the_whole_value() {
        let m = StringMatch::regex("^https://github\\.com/org/.*$").unwrap();
        assert!(m.is_match("https://github.com/org/repo/.github/workflows/x.yml@refs/heads/main"));
        assert!(!m.is_match("https://evil.example/?https://github.com/org/"));
    }

    #[test]
    fn mismatches_name_what_differed() {
        let identity = CertificateIdentity {
            subject: "https://github.com/a/b/.github/workflows/r.yml@refs/heads/main".into(),
            issuer: Some("https://token.actions.githubusercontent.com".into()),
            extensions: BTreeMap::from([("sourceRepositoryRef".into(), "refs/heads/main".into())]),
        };
        let ok = IdentityMatcher::new(
            StringMatch::regex("^https://github.com/a/b/.*$").unwrap(),
            StringMatch::exact("https://token.actions.githubusercontent.com"),
        )
        .with_extension("sourceRepositoryRef", StringMatch::exact("refs/heads/main"));
        ok.matches(&identity).unwrap();

        let mut wrong = ok.clone();
        wrong.subject = StringMatch::exact("someone@example.com");
        assert_eq!(
            wrong.matches(&identity).unwrap_err(),
            "certificate subject \"https://github.com/a/b/.github/workflows/r.yml@refs/heads/main\" does not match \"someone@example.com\""
        );
        let mut wrong = ok.clone();
        wrong.issuer = Some(StringMatch::exact("https://accounts.google.com"));
        assert!(wrong.matches(&identity).unwrap_err().starts_with(
            "certificate issuer \"https://token.actions.githubusercontent.com\" does not match"
        ));
        let wrong = ok
            .clone()
            .with_extension("githubWorkflowTrigger", StringMatch::exact("push"));
        assert_eq!(
            wrong.matches(&identity).unwrap_err(),
            "certificate has no githubWorkflowTrigger; \"push\" is required"
        );
    }
}
