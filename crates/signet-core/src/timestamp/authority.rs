//! Timestamp authorities: whose word on the time is trusted, loaded from PEM or from a Sigstore
//! trusted root's `timestampAuthorities`.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use der::{Decode as _, Encode as _};
use serde::Deserialize;
use x509_cert::Certificate;
use x509_cert::ext::pkix::BasicConstraints;

use super::TimestampError;

/// The period in which an authority's timestamps are accepted (Sigstore's `validFor`): a
/// genTime before `start` or after `end` is refused. Both ends are inclusive; a missing end is
/// open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ValidFor {
    /// The first instant accepted.
    pub start: Option<SystemTime>,
    /// The last instant accepted.
    pub end: Option<SystemTime>,
}

impl ValidFor {
    /// Whether `at` lies in the window.
    pub fn contains(&self, at: SystemTime) -> bool {
        self.start.is_none_or(|start| start <= at) && self.end.is_none_or(|end| at <= end)
    }
}

/// A timestamp authority trusted to say when something was signed: a name, its certificate
/// chain and the period in which its timestamps count.
///
/// The chain is given leaf first, root last (as Sigstore's trusted root and PEM chain files
/// order it). The last certificate is the trust anchor. The first is the TSA's own certificate
/// unless it is a CA certificate; when there is one, a token must be signed by exactly that
/// certificate (as sigstore-go pins it), otherwise by any certificate that chains to the root
/// with the timestamping usage. Certificates in between are intermediates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampAuthority {
    name: String,
    uri: Option<String>,
    leaf: Option<Vec<u8>>,
    intermediates: Vec<Vec<u8>>,
    root: Vec<u8>,
    valid_for: ValidFor,
}

impl TimestampAuthority {
    /// An authority from its chain of DER certificates, leaf first, root last.
    pub fn from_der_chain(
        name: impl Into<String>,
        chain: Vec<Vec<u8>>,
    ) -> Result<TimestampAuthority, TimestampError> {
        let name = name.into();
        let invalid = |reason: String| TimestampError::InvalidAuthority {
            name: name.clone(),
            reason,
        };
        let mut certs = Vec::with_capacity(chain.len());
        for (i, der) in chain.iter().enumerate() {
            let cert = Certificate::from_der(der)
                .map_err(|e| invalid(format!("certificate {i} is not X.509 DER: {e}")))?;
            certs.push(cert);
        }
        let (Some(first), Some(root)) = (certs.first(), chain.last()) else {
            return Err(invalid("empty certificate chain".into()));
        };
        let root_der = rustls_pki_types::CertificateDer::from(root.as_slice());
        webpki::anchor_from_trusted_cert(&root_der).map_err(|e| {
            invalid(format!(
                "the root certificate is not a usable anchor: {e:?}"
            ))
        })?;
        let has_leaf = !is_ca(first);
        let mut rest = chain;
        let root = rest.pop().unwrap_or_default();
        let leaf = if has_leaf {
            if rest.is_empty() {
                // A lone self-signed TSA certificate: it is leaf and root at once.
                Some(root.clone())
            } else {
                Some(rest.remove(0))
            }
        } else {
            None
        };
        Ok(TimestampAuthority {
            name,
            uri: None,
            leaf,
            intermediates: rest,
            root,
            valid_for: ValidFor::default(),
        })
    }

    /// An authority from PEM text holding its chain (`CERTIFICATE` blocks, leaf first, root
    /// last), as a TSA publishes it (`/api/v1/timestamp/certchain`, `openssl` output).
    pub fn from_pem_chain(
        name: impl Into<String>,
        pem: &str,
    ) -> Result<TimestampAuthority, TimestampError> {
        let name = name.into();
        let certs = Certificate::load_pem_chain(pem.as_bytes()).map_err(|e| {
            TimestampError::InvalidAuthority {
                name: name.clone(),
                reason: format!("not a PEM certificate chain: {e}"),
            }
        })?;
        let mut chain = Vec::with_capacity(certs.len());
        for cert in certs {
            chain.push(
                cert.to_der()
                    .map_err(|e| TimestampError::InvalidAuthority {
                        name: name.clone(),
                        reason: e.to_string(),
                    })?,
            );
        }
        TimestampAuthority::from_der_chain(name, chain)
    }

    /// Every timestamp authority of a Sigstore trusted root (`trusted_root.json`, media type
    /// `application/vnd.dev.sigstore.trustedroot+json;version=0.1`): its
    /// `timestampAuthorities[]`, each with `certChain.certificates[].rawBytes` (base64 DER,
    /// leaf first), `validFor.start`/`end` (RFC 3339), `uri` and `subject`. The rest of the
    /// trusted root is not read here. An entry that does not load fails the whole root: a
    /// trust configuration is not guessed at.
    pub fn from_trusted_root_json(json: &[u8]) -> Result<Vec<TimestampAuthority>, TimestampError> {
        let root: TrustedRootJson =
            serde_json::from_slice(json).map_err(|e| TimestampError::InvalidTrustedRoot {
                reason: e.to_string(),
            })?;
        let mut out = Vec::with_capacity(root.timestamp_authorities.len());
        for (i, entry) in root.timestamp_authorities.into_iter().enumerate() {
            let name = entry.display_name(i);
            let invalid = |reason: String| TimestampError::InvalidAuthority {
                name: name.clone(),
                reason,
            };
            let mut chain = Vec::with_capacity(entry.cert_chain.certificates.len());
            for (j, cert) in entry.cert_chain.certificates.iter().enumerate() {
                chain.push(B64.decode(&cert.raw_bytes).map_err(|e| {
                    invalid(format!(
                        "certChain.certificates[{j}].rawBytes is not base64: {e}"
                    ))
                })?);
            }
            let valid_for = match &entry.valid_for {
                None => ValidFor::default(),
                Some(window) => ValidFor {
                    start: parse_time(window.start.as_deref(), "validFor.start")
                        .map_err(&invalid)?,
                    end: parse_time(window.end.as_deref(), "validFor.end").map_err(&invalid)?,
                },
            };
            let mut authority = TimestampAuthority::from_der_chain(name.clone(), chain)?;
            authority.uri = entry.uri.filter(|u| !u.is_empty());
            authority.valid_for = valid_for;
            out.push(authority);
        }
        Ok(out)
    }

    /// The same authority, accepted only for genTimes in `valid_for`.
    pub fn with_valid_for(mut self, valid_for: ValidFor) -> TimestampAuthority {
        self.valid_for = valid_for;
        self
    }

    /// The same authority, with the URI it serves timestamps at (informational).
    pub fn with_uri(mut self, uri: impl Into<String>) -> TimestampAuthority {
        self.uri = Some(uri.into());
        self
    }

    /// The authority's name, for messages and proofs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URI it serves timestamps at, when known.
    pub fn uri(&self) -> Option<&str> {
        self.uri.as_deref()
    }

    /// The period in which its timestamps are accepted.
    pub fn valid_for(&self) -> ValidFor {
        self.valid_for
    }

    /// The TSA certificate (DER) tokens must be signed with, when the chain names one.
    pub fn leaf_der(&self) -> Option<&[u8]> {
        self.leaf.as_deref()
    }

    /// The intermediate certificates (DER), leaf side first.
    pub fn intermediates_der(&self) -> &[Vec<u8>] {
        &self.intermediates
    }

    /// The root certificate (DER), the trust anchor.
    pub fn root_der(&self) -> &[u8] {
        &self.root
    }
}

/// Whether a certificate says it is a CA (basicConstraints cA = TRUE).
pub(crate) fn is_ca(cert: &Certificate) -> bool {
    matches!(
        cert.tbs_certificate().get_extension::<BasicConstraints>(),
        Ok(Some((_, constraints))) if constraints.ca
    )
}

fn parse_time(text: Option<&str>, field: &str) -> Result<Option<SystemTime>, String> {
    text.map(|t| {
        humantime::parse_rfc3339(t)
            .ok()
            .ok_or_else(|| format!("{field} \"{t}\" is not an RFC 3339 UTC time"))
    })
    .transpose()
}

/// The part of a trusted root read here. Unknown fields are ignored: the file has many more
/// (logs, CAs), and protobuf JSON grows fields over time.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrustedRootJson {
    #[serde(default)]
    timestamp_authorities: Vec<AuthorityJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthorityJson {
    #[serde(default)]
    subject: Option<SubjectJson>,
    #[serde(default)]
    uri: Option<String>,
    cert_chain: CertChainJson,
    #[serde(default)]
    valid_for: Option<ValidForJson>,
}

impl AuthorityJson {
    /// The subject's common name, else its organisation, else the URI, else the position.
    fn display_name(&self, index: usize) -> String {
        let subject = self.subject.as_ref();
        [
            subject.and_then(|s| s.common_name.as_deref()),
            subject.and_then(|s| s.organization.as_deref()),
            self.uri.as_deref(),
        ]
        .into_iter()
        .flatten()
        .find(|s| !s.is_empty())
        .map_or_else(|| format!("timestampAuthorities[{index}]"), str::to_string)
    }
}

// The trusted root's JSON shapes, shared with `keyless::trusted_root`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SubjectJson {
    #[serde(default)]
    pub(crate) organization: Option<String>,
    #[serde(default)]
    pub(crate) common_name: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct CertChainJson {
    #[serde(default)]
    pub(crate) certificates: Vec<RawBytesJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawBytesJson {
    pub(crate) raw_bytes: String,
}

#[derive(Deserialize)]
pub(crate) struct ValidForJson {
    #[serde(default)]
    pub(crate) start: Option<String>,
    #[serde(default)]
    pub(crate) end: Option<String>,
}
