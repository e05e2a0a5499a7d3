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

/// The names of the Fulcio claims signet reads from a certificate, in OID order
/// (`githubWorkflowTrigger` is 1.3.6.1.4.1.57264.1.2, ..., `sourceRepositoryVisibilityAtSigning`
/// is .1.22): what [`IdentityMatcher::with_claim`] accepts besides dotted OIDs.
pub fn fulcio_claim_names() -> impl Iterator<Item = &'static str> {
    FULCIO_EXTENSIONS.iter().map(|(_, name, _)| *name)
}

/// The key under which [`CertificateIdentity::extensions`] holds the claim `name`: a Fulcio
/// claim name as it is; a dotted OID under Fulcio's arc (`1.3.6.1.4.1.57264.1.N`) as the name
/// signet reads it under when it knows one (`...1.14` is `sourceRepositoryRef`), else as the
/// OID. Anything else is refused: a condition on a claim signet never reads could never hold.
pub fn claim_key(name: &str) -> Result<String, IdentityError> {
    if let Some((_, known, _)) = FULCIO_EXTENSIONS.iter().find(|(_, n, _)| *n == name) {
        return Ok((*known).to_string());
    }
    let unknown = |why: String| IdentityError::UnknownClaim {
        name: name.to_string(),
        why,
    };
    let Some(arc) = name.strip_prefix(FULCIO_ARC) else {
        return Err(unknown(format!(
            "expected one of {}, or a dotted OID under {} for a claim newer than signet",
            fulcio_claim_names().collect::<Vec<_>>().join(", "),
            FULCIO_ARC.trim_end_matches('.')
        )));
    };
    let Ok(arc) = arc.parse::<u32>() else {
        return Err(unknown(format!(
            "Fulcio's claims are one arc under {}: {FULCIO_ARC}N",
            FULCIO_ARC.trim_end_matches('.')
        )));
    };
    match arc {
        1 | 8 => Err(unknown(
            "that is the OIDC issuer; state it as `issuer` (or `issuerRegExp`)".into(),
        )),
        7 => Err(unknown(
            "that is the type of Fulcio's username SAN, not a claim; the username is the subject"
                .into(),
        )),
        _ => Ok(match FULCIO_EXTENSIONS.iter().find(|(a, _, _)| *a == arc) {
            Some((_, known, _)) => (*known).to_string(),
            None => format!("{FULCIO_ARC}{arc}"),
        }),
    }
}

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
    /// A claim name that is neither one of Fulcio's (see [`fulcio_claim_names`]) nor a dotted
    /// OID under Fulcio's arc.
    #[error("unknown Fulcio claim \"{name}\": {why}")]
    UnknownClaim {
        /// The name given.
        name: String,
        /// What was expected instead.
        why: String,
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

    /// The same, also requiring the claim `name`, a Fulcio claim name or a dotted OID under
    /// Fulcio's arc, to match `value`; an unknown name is refused (see [`claim_key`]).
    pub fn with_claim(
        self,
        name: &str,
        value: StringMatch,
    ) -> Result<IdentityMatcher, IdentityError> {
        Ok(self.with_extension(claim_key(name)?, value))
    }

    /// The same, also requiring the claim `name` to match `value`, where `name` is taken as
    /// the key of [`CertificateIdentity::extensions`] as it is; [`IdentityMatcher::with_claim`]
    /// checks it first.
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
                None => {
                    return Err(format!(
                        "certificate has no {name} claim; {name} {want} is required"
                    ));
                }
                Some(value) if !want.is_match(value) => {
                    return Err(format!(
                        "certificate claim {name} \"{value}\" does not match {want}"
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// `subject S issuer I` and each claim required (`githubWorkflowTrigger "push"`), as
/// summaries list identities.
impl fmt::Display for IdentityMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "subject {}", self.subject)?;
        if let Some(issuer) = &self.issuer {
            write!(f, " issuer {issuer}")?;
        }
        for (name, want) in &self.extensions {
            write!(f, " {name} {want}")?;
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
            "certificate has no githubWorkflowTrigger claim; githubWorkflowTrigger \"push\" is required"
        );
        let wrong = ok.clone().with_extension(
            "sourceRepositoryRef",
            StringMatch::regex("^refs/tags/v.*$").unwrap(),
        );
        assert_eq!(
            wrong.matches(&identity).unwrap_err(),
            "certificate claim sourceRepositoryRef \"refs/heads/main\" does not match /^refs/tags/v.*$/"
        );
    }

    #[test]
    fn claims_are_named_by_fulcio_name_or_oid_under_fulcio_arc() {
        assert_eq!(
            claim_key("githubWorkflowTrigger").unwrap(),
            "githubWorkflowTrigger"
        );
        assert_eq!(
            claim_key("sourceRepositoryRef").unwrap(),
            "sourceRepositoryRef"
        );
        // The OID of a named claim is read under its name, so it is matched under it too.
        assert_eq!(
            claim_key("1.3.6.1.4.1.57264.1.14").unwrap(),
            "sourceRepositoryRef"
        );
        assert_eq!(
            claim_key("1.3.6.1.4.1.57264.1.2").unwrap(),
            "githubWorkflowTrigger"
        );
        // A claim newer than the table is read under its OID.
        assert_eq!(
            claim_key("1.3.6.1.4.1.57264.1.24").unwrap(),
            "1.3.6.1.4.1.57264.1.24"
        );
        assert_eq!(
            claim_key("1.3.6.1.4.1.57264.1.024").unwrap(),
            "1.3.6.1.4.1.57264.1.24"
        );
        assert_eq!(fulcio_claim_names().count(), 19);

        let err = claim_key("githubWorkflowTriger").unwrap_err();
        assert!(matches!(err, IdentityError::UnknownClaim { .. }));
        let text = err.to_string();
        assert!(
            text.starts_with("unknown Fulcio claim \"githubWorkflowTriger\": expected one of githubWorkflowTrigger, githubWorkflowSha,"),
            "{text}"
        );
        assert!(
            text.contains(
                "sourceRepositoryVisibilityAtSigning, or a dotted OID under 1.3.6.1.4.1.57264.1 "
            ),
            "{text}"
        );
        for bad in [
            "",
            "2.5.29.17",
            "1.3.6.1.4.1.57264.1",
            "1.3.6.1.4.1.57264.1.x",
            "1.3.6.1.4.1.57264.1.14.1",
            "1.3.6.1.4.1.57264.1.1",
            "1.3.6.1.4.1.57264.1.7",
            "1.3.6.1.4.1.57264.1.8",
        ] {
            assert!(
                matches!(claim_key(bad), Err(IdentityError::UnknownClaim { .. })),
                "{bad}"
            );
        }
        assert!(
            claim_key("1.3.6.1.4.1.57264.1.8")
                .unwrap_err()
                .to_string()
                .contains("that is the OIDC issuer")
        );
    }

    #[test]
    fn claims_by_oid_match_the_claims_read_under_their_name() {
        let identity = CertificateIdentity {
            subject: "s".into(),
            issuer: Some("i".into()),
            extensions: BTreeMap::from([
                ("githubWorkflowTrigger".into(), "push".into()),
                ("1.3.6.1.4.1.57264.1.24".into(), "repo:a/b".into()),
            ]),
        };
        let matcher = IdentityMatcher::new(StringMatch::exact("s"), StringMatch::exact("i"))
            .with_claim("1.3.6.1.4.1.57264.1.2", StringMatch::exact("push"))
            .unwrap()
            .with_claim("1.3.6.1.4.1.57264.1.24", StringMatch::exact("repo:a/b"))
            .unwrap();
        matcher.matches(&identity).unwrap();
        assert_eq!(
            matcher.to_string(),
            "subject \"s\" issuer \"i\" githubWorkflowTrigger \"push\" 1.3.6.1.4.1.57264.1.24 \"repo:a/b\""
        );
        let wrong = matcher
            .with_claim("githubWorkflowTrigger", StringMatch::exact("pull_request"))
            .unwrap();
        assert_eq!(
            wrong.matches(&identity).unwrap_err(),
            "certificate claim githubWorkflowTrigger \"push\" does not match \"pull_request\""
        );
    }
}
