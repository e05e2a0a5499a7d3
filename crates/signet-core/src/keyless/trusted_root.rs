//! The Sigstore trusted root (`trusted_root.json`): which certificate authorities, transparency
//! logs, CT logs and timestamp authorities a keyless verification trusts.
//!
//! Spec: `sigstore/protobuf-specs`, `TrustedRoot` in `sigstore_trustroot.proto`, JSON by proto3's
//! canonical mapping (camelCase, bytes as base64, times as RFC 3339).

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use der::Decode as _;
use serde::Deserialize;
use x509_cert::Certificate;

use crate::keys::PublicKey;
use crate::timestamp::authority::{CertChainJson, SubjectJson, ValidForJson};
use crate::timestamp::{TimestampAuthority, ValidFor};
use crate::tlog::TransparencyLog;

/// The media type of the trusted roots read here.
pub const TRUSTED_ROOT_MEDIA_TYPE: &str =
    "application/vnd.dev.sigstore.trustedroot+json;version=0.1";

/// The largest trusted root read. The public-good one is about 7 KiB; a private deployment
/// with years of rotations stays far below this.
pub const MAX_TRUSTED_ROOT_BYTES: usize = 1024 * 1024;

/// The most certificates read in one authority's chain.
const MAX_CHAIN_LEN: usize = 8;

/// The public-good instance's trusted root, as shipped (see `trust/README.md`).
const PUBLIC_GOOD_JSON: &[u8] = include_bytes!("../../trust/public-good-trusted-root.json");

/// Why a trusted root (or a set of own CA certificates) did not load.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum TrustedRootError {
    /// Larger than [`MAX_TRUSTED_ROOT_BYTES`].
    #[error("trusted root is {size} bytes, more than the {max} read")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not the JSON shape of a trusted root.
    #[error("malformed trusted root: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// A media type other than [`TRUSTED_ROOT_MEDIA_TYPE`].
    #[error("unsupported trusted root media type \"{found}\", expected {TRUSTED_ROOT_MEDIA_TYPE}")]
    UnsupportedMediaType {
        /// The media type found.
        found: String,
    },
    /// A field holds a value that cannot be used.
    #[error("trusted root field {field}: {reason}")]
    InvalidField {
        /// The field, as a path (`certificateAuthorities[1].certChain.certificates[0].rawBytes`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Own CA certificates given as PEM did not load.
    #[error("CA certificates: {reason}")]
    InvalidCertificates {
        /// What is wrong.
        reason: String,
    },
}

/// A certificate authority trusted to issue signing certificates: Fulcio in a trusted root, or
/// one of a site's own roots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateAuthority {
    name: String,
    uri: Option<String>,
    intermediates: Vec<Vec<u8>>,
    root: Vec<u8>,
    valid_for: ValidFor,
}

impl CertificateAuthority {
    /// An authority from its chain of DER certificates, issuing side first, root last (the
    /// order of a trusted root's `certChain`), trusted in `valid_for`.
    pub fn from_der_chain(
        name: impl Into<String>,
        chain: Vec<Vec<u8>>,
        valid_for: ValidFor,
    ) -> Result<CertificateAuthority, TrustedRootError> {
        let name = name.into();
        let invalid = |reason: String| TrustedRootError::InvalidCertificates {
            reason: format!("authority {name}: {reason}"),
        };
        for (i, der) in chain.iter().enumerate() {
            Certificate::from_der(der)
                .map_err(|e| invalid(format!("certificate {i} is not X.509 DER: {e}")))?;
        }
        let mut intermediates = chain;
        let Some(root) = intermediates.pop() else {
            return Err(invalid("empty certificate chain".into()));
        };
        let anchor = rustls_pki_types::CertificateDer::from(root.as_slice());
        webpki::anchor_from_trusted_cert(&anchor).map_err(|e| {
            invalid(format!(
                "the root certificate is not a usable anchor: {e:?}"
            ))
        })?;
        Ok(CertificateAuthority {
            name,
            uri: None,
            intermediates,
            root,
            valid_for,
        })
    }

    /// The authority's name (the subject's organisation and common name in a trusted root; the
    /// root certificate's subject for own CAs).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URI it is served at (Fulcio's), when known.
    pub fn uri(&self) -> Option<&str> {
        self.uri.as_deref()
    }

    /// The intermediate certificates (DER), issuing side first.
    pub fn intermediates_der(&self) -> &[Vec<u8>] {
        &self.intermediates
    }

    /// The root certificate (DER), the trust anchor.
    pub fn root_der(&self) -> &[u8] {
        &self.root
    }

    /// When certificates it issued are accepted: every signing time must lie in this window.
    pub fn valid_for(&self) -> ValidFor {
        self.valid_for
    }

    /// Its certificates, issuing side first and the root last, summarised for display
    /// (`signet trusted-root show`).
    pub fn certificates(&self) -> Vec<CertificateSummary> {
        self.intermediates
            .iter()
            .chain(std::iter::once(&self.root))
            .filter_map(|der| Certificate::from_der(der).ok())
            .map(|cert| {
                let tbs = cert.tbs_certificate();
                CertificateSummary {
                    subject: tbs.subject().to_string(),
                    not_before: tbs.validity().not_before.to_system_time(),
                    not_after: tbs.validity().not_after.to_system_time(),
                }
            })
            .collect()
    }
}

/// One certificate of an authority's chain, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSummary {
    /// The subject DN (RFC 4514).
    pub subject: String,
    /// Its notBefore.
    pub not_before: SystemTime,
    /// Its notAfter.
    pub not_after: SystemTime,
}

/// A Sigstore trusted root: certificate authorities (Fulcio), transparency logs (Rekor), CT logs
/// and timestamp authorities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedRoot {
    certificate_authorities: Vec<CertificateAuthority>,
    tlogs: Vec<TransparencyLog>,
    ctlogs: Vec<TransparencyLog>,
    timestamp_authorities: Vec<TimestampAuthority>,
}

impl TrustedRoot {
    /// Parses a trusted root (`application/vnd.dev.sigstore.trustedroot+json;version=0.1`).
    /// Every entry must load: a trust configuration is not guessed at, so one bad certificate
    /// or key fails the whole root, with the field named.
    pub fn from_json(json: &[u8]) -> Result<TrustedRoot, TrustedRootError> {
        if json.len() > MAX_TRUSTED_ROOT_BYTES {
            return Err(TrustedRootError::TooLarge {
                size: json.len(),
                max: MAX_TRUSTED_ROOT_BYTES,
            });
        }
        let root: TrustedRootJson =
            serde_json::from_slice(json).map_err(|e| TrustedRootError::Malformed {
                reason: e.to_string(),
            })?;
        if root.media_type != TRUSTED_ROOT_MEDIA_TYPE {
            return Err(TrustedRootError::UnsupportedMediaType {
                found: root.media_type,
            });
        }
        let mut certificate_authorities = Vec::with_capacity(root.certificate_authorities.len());
        for (i, ca) in root.certificate_authorities.iter().enumerate() {
            certificate_authorities.push(ca.load(&format!("certificateAuthorities[{i}]"))?);
        }
        let mut tlogs = Vec::with_capacity(root.tlogs.len());
        for (i, log) in root.tlogs.iter().enumerate() {
            tlogs.push(log.load(&format!("tlogs[{i}]"))?);
        }
        let mut ctlogs = Vec::with_capacity(root.ctlogs.len());
        for (i, log) in root.ctlogs.iter().enumerate() {
            ctlogs.push(log.load(&format!("ctlogs[{i}]"))?);
        }
        let timestamp_authorities =
            TimestampAuthority::from_trusted_root_json(json).map_err(|e| {
                TrustedRootError::InvalidField {
                    field: "timestampAuthorities".into(),
                    reason: e.to_string(),
                }
            })?;
        Ok(TrustedRoot {
            certificate_authorities,
            tlogs,
            ctlogs,
            timestamp_authorities,
        })
    }

    /// The Sigstore public-good instance's trusted root, as shipped with this version of signet
    /// (`crates/signet-core/trust/public-good-trusted-root.json`, from the `sigstore` crate
    /// 0.15.0).
    pub fn public_good() -> Result<TrustedRoot, TrustedRootError> {
        TrustedRoot::from_json(PUBLIC_GOOD_JSON)
    }

    /// The certificate authorities (Fulcio instances) that issue signing certificates.
    pub fn certificate_authorities(&self) -> &[CertificateAuthority] {
        &self.certificate_authorities
    }

    /// The transparency logs (Rekor) whose entries are trusted.
    pub fn tlogs(&self) -> &[TransparencyLog] {
        &self.tlogs
    }

    /// The certificate-transparency logs whose SCTs are trusted.
    pub fn ctlogs(&self) -> &[TransparencyLog] {
        &self.ctlogs
    }

    /// The RFC 3161 timestamp authorities.
    pub fn timestamp_authorities(&self) -> &[TimestampAuthority] {
        &self.timestamp_authorities
    }
}

/// The subject's organisation and common name, as `O/CN`, else what is there, else `fallback`.
fn subject_name(subject: Option<&SubjectJson>, uri: Option<&str>, fallback: &str) -> String {
    let org = subject
        .and_then(|s| s.organization.as_deref())
        .filter(|s| !s.is_empty());
    let cn = subject
        .and_then(|s| s.common_name.as_deref())
        .filter(|s| !s.is_empty());
    match (org, cn) {
        (Some(o), Some(c)) => format!("{o}/{c}"),
        (Some(one), None) | (None, Some(one)) => one.to_string(),
        (None, None) => uri
            .filter(|u| !u.is_empty())
            .unwrap_or(fallback)
            .to_string(),
    }
}

fn parse_valid_for(
    window: Option<&ValidForJson>,
    field: &str,
) -> Result<ValidFor, TrustedRootError> {
    let Some(window) = window else {
        return Ok(ValidFor::default());
    };
    let parse = |text: Option<&str>, which: &str| -> Result<Option<SystemTime>, TrustedRootError> {
        text.map(|t| {
            humantime::parse_rfc3339(t).map_err(|_| TrustedRootError::InvalidField {
                field: format!("{field}.{which}"),
                reason: format!("\"{t}\" is not an RFC 3339 UTC time"),
            })
        })
        .transpose()
    };
    Ok(ValidFor {
        start: parse(window.start.as_deref(), "start")?,
        end: parse(window.end.as_deref(), "end")?,
    })
}

fn decode_b64(text: &str, field: &str) -> Result<Vec<u8>, TrustedRootError> {
    B64.decode(text.as_bytes())
        .map_err(|e| TrustedRootError::InvalidField {
            field: field.to_string(),
            reason: format!("not base64: {e}"),
        })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrustedRootJson {
    media_type: String,
    #[serde(default)]
    tlogs: Vec<LogJson>,
    #[serde(default)]
    certificate_authorities: Vec<AuthorityJson>,
    #[serde(default)]
    ctlogs: Vec<LogJson>,
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
    fn load(&self, field: &str) -> Result<CertificateAuthority, TrustedRootError> {
        let certs = &self.cert_chain.certificates;
        if certs.is_empty() || certs.len() > MAX_CHAIN_LEN {
            return Err(TrustedRootError::InvalidField {
                field: format!("{field}.certChain.certificates"),
                reason: format!(
                    "{} certificates; between 1 and {MAX_CHAIN_LEN} are read",
                    certs.len()
                ),
            });
        }
        let mut chain = Vec::with_capacity(certs.len());
        for (j, cert) in certs.iter().enumerate() {
            let cert_field = format!("{field}.certChain.certificates[{j}].rawBytes");
            let der = decode_b64(&cert.raw_bytes, &cert_field)?;
            Certificate::from_der(&der).map_err(|e| TrustedRootError::InvalidField {
                field: cert_field.clone(),
                reason: format!("not an X.509 DER certificate: {e}"),
            })?;
            chain.push(der);
        }
        let valid_for = parse_valid_for(self.valid_for.as_ref(), &format!("{field}.validFor"))?;
        let name = subject_name(self.subject.as_ref(), self.uri.as_deref(), field);
        let mut ca = CertificateAuthority::from_der_chain(name, chain, valid_for).map_err(|e| {
            TrustedRootError::InvalidField {
                field: format!("{field}.certChain"),
                reason: e.to_string(),
            }
        })?;
        ca.uri = self.uri.clone().filter(|u| !u.is_empty());
        Ok(ca)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogJson {
    base_url: String,
    #[serde(default)]
    hash_algorithm: Option<String>,
    public_key: LogKeyJson,
    log_id: LogIdJson,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogKeyJson {
    #[serde(default)]
    raw_bytes: Option<String>,
    #[serde(default)]
    key_details: Option<String>,
    #[serde(default)]
    valid_for: Option<ValidForJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogIdJson {
    key_id: String,
}

impl LogJson {
    fn load(&self, field: &str) -> Result<TransparencyLog, TrustedRootError> {
        // Every Sigstore log hashes its tree with SHA-256; another value means a root this
        // version does not understand, which is refused rather than half-read.
        if let Some(hash) = self.hash_algorithm.as_deref()
            && hash != "SHA2_256"
        {
            return Err(TrustedRootError::InvalidField {
                field: format!("{field}.hashAlgorithm"),
                reason: format!("\"{hash}\" is not supported (only SHA2_256)"),
            });
        }
        let key_field = format!("{field}.publicKey.rawBytes");
        let raw =
            self.public_key
                .raw_bytes
                .as_deref()
                .ok_or_else(|| TrustedRootError::InvalidField {
                    field: key_field.clone(),
                    reason: "missing".into(),
                })?;
        let key = PublicKey::from_der(&decode_b64(raw, &key_field)?).map_err(|e| {
            TrustedRootError::InvalidField {
                field: key_field.clone(),
                reason: format!(
                    "not a usable public key ({}): {e}",
                    self.public_key
                        .key_details
                        .as_deref()
                        .unwrap_or("no keyDetails")
                ),
            }
        })?;
        let log_id = decode_b64(&self.log_id.key_id, &format!("{field}.logId.keyId"))?;
        let valid_for = parse_valid_for(
            self.public_key.valid_for.as_ref(),
            &format!("{field}.publicKey.validFor"),
        )?;
        Ok(TransparencyLog::new(
            self.base_url.clone(),
            log_id,
            key,
            valid_for,
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use sha2::Digest as _;

    #[test]
    fn the_public_good_root_loads_with_its_authorities_and_logs() {
        let root = TrustedRoot::public_good().unwrap();
        let cas = root.certificate_authorities();
        assert_eq!(cas.len(), 2);
        assert_eq!(cas[0].name(), "sigstore.dev/sigstore");
        assert_eq!(cas[1].uri(), Some("https://fulcio.sigstore.dev"));
        assert_eq!(cas[1].intermediates_der().len(), 1);
        let certs = cas[1].certificates();
        assert_eq!(certs.len(), 2);
        assert_eq!(certs[0].subject, "CN=sigstore-intermediate,O=sigstore.dev");
        assert_eq!(certs[1].subject, "CN=sigstore,O=sigstore.dev");
        assert!(certs[0].not_before < certs[0].not_after);
        assert!(cas[0].valid_for().end.is_some());
        assert!(cas[1].valid_for().end.is_none());
        let names: Vec<&str> = root.tlogs().iter().map(TransparencyLog::name).collect();
        assert_eq!(
            names,
            [
                "https://rekor.sigstore.dev",
                "https://log2025-1.rekor.sigstore.dev"
            ]
        );
        // Rekor v1 and CT logs are named by the SHA-256 of their key.
        let rekor = &root.tlogs()[0];
        assert_eq!(
            rekor.log_id(),
            sha2::Sha256::digest(rekor.key().der()).as_slice()
        );
        assert_eq!(root.ctlogs().len(), 2);
        assert_eq!(root.ctlogs()[1].name(), "https://ctfe.sigstore.dev/2022");
        assert_eq!(root.timestamp_authorities().len(), 1);
    }

    #[test]
    fn errors_name_the_field() {
        let json = String::from_utf8(PUBLIC_GOOD_JSON.to_vec()).unwrap();
        let broken = json.replacen("\"keyId\": \"", "\"keyId\": \"!", 1);
        let err = TrustedRoot::from_json(broken.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("tlogs[0].logId.keyId"), "{err}");

        let broken = json.replacen("MIIB+DCC", "MIIB+DCD", 1);
        let err = TrustedRoot::from_json(broken.as_bytes()).unwrap_err();
        assert!(
            err.to_string()
                .contains("certificateAuthorities[0].certChain.certificates[0].rawBytes"),
            "{err}"
        );

        let broken = json.replacen("2021-03-14T00:00:00Z", "yesterday", 1);
        let err = TrustedRoot::from_json(broken.as_bytes()).unwrap_err();
        assert!(
            err.to_string()
                .contains("ctlogs[0].publicKey.validFor.start"),
            "{err}"
        );

        let err = TrustedRoot::from_json(&vec![b' '; MAX_TRUSTED_ROOT_BYTES + 1]).unwrap_err();
        assert!(matches!(err, TrustedRootError::TooLarge { .. }));

        let err = TrustedRoot::from_json(br#"{"mediaType":"x"}"#).unwrap_err();
        assert!(matches!(err, TrustedRootError::UnsupportedMediaType { .. }));
    }
}
