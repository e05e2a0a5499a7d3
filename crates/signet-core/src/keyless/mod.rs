//! Keyless verification, the certificate half: is a signing certificate one that a trusted
//! certificate authority issued, at the time of signing, to whom?
//!
//! Sigstore's keyless signing binds a short-lived key to an identity (an OIDC subject and
//! issuer) in an X.509 certificate issued by Fulcio, and a certificate-transparency log promises
//! (an SCT, embedded in the certificate) that the certificate is public. A site may also sign
//! with certificates from its own CA. [`verify_certificate`] checks such a certificate offline
//! against a [`CertificateTrust`] and returns a [`SigningCertificate`], which only it
//! constructs: the key to verify the signature with, the identity, and the authority that
//! issued it. What time to check at is the caller's: the *trusted* signing times (a
//! transparency log's integrated time, an RFC 3161 timestamp), never the clock, since Fulcio's
//! certificates live ten minutes. The certificate must be valid at every one of them.
//!
//! It fails closed, with an error naming what failed, unless all of this holds:
//!
//! - the leaf is DER X.509, not a CA, with keyUsage digitalSignature and the extended key
//!   usage codeSigning, valid (notBefore..notAfter) at every signing time;
//! - rustls-webpki builds a path from it to the root of one authority of the trust, through
//!   that authority's intermediates and those the bundle carries, valid at every signing time
//!   (signatures, validity, CA flags, path lengths, extended key usage wherever stated), and
//!   every signing time lies in that authority's `validFor`;
//! - for Fulcio trust: the certificate embeds an SCT (RFC 6962) from a CT log of the trusted
//!   root, made inside that log's `validFor`, whose signature verifies with the log's key over
//!   the precertificate (the leaf's TBS without the SCT list, with the issuer's key hash). SCTs
//!   from unknown logs are passed over; one from a known log that fails is an error.
//!
//! Identities are read from the SAN and Fulcio's extensions ([`CertificateIdentity`]) and
//! compared with [`IdentityMatcher`], whose regular expressions must be anchored.
//!
//! Not here: the transparency-log entry (Rekor) that vouches for the signing time, which
//! [`crate::tlog`] verifies; revocation (signet is offline; the trusted root retires authorities
//! with `validFor`).
//!
//! ```
//! use signet_core::keyless::{CertificateTrust, TrustedRoot};
//!
//! let root = TrustedRoot::public_good()?;
//! for ca in root.certificate_authorities() {
//!     println!("{} {:?}", ca.name(), ca.valid_for());
//! }
//! let trust = CertificateTrust::fulcio(&root);
//! # let _ = trust;
//! # Ok::<(), signet_core::keyless::TrustedRootError>(())
//! ```

mod bundle;
mod identity;
mod sct;
mod trusted_root;

use std::time::SystemTime;

use der::asn1::ObjectIdentifier;
use der::{Decode as _, Encode as _};
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};

pub use bundle::{
    BlobSigned, CertifiedSignature, KeylessError, KeylessTrust, LegacyCertificate, verify_blob,
    verify_legacy_attestation, verify_legacy_signature, verify_statement,
};
pub use identity::{
    CertificateIdentity, IdentityError, IdentityMatcher, StringMatch, claim_key, fulcio_claim_names,
};
pub use sct::CtTimestamp;
pub use trusted_root::{
    CertificateAuthority, CertificateSummary, MAX_TRUSTED_ROOT_BYTES, TRUSTED_ROOT_MEDIA_TYPE,
    TrustedRoot, TrustedRootError,
};

use crate::keys::PublicKey;
use crate::timestamp::ValidFor;
use crate::timestamp::pkix::{self, EKU_CODE_SIGNING_VALUE, PathError};
use crate::tlog::TransparencyLog;

/// The largest certificate read.
pub const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;
/// The most chain certificates read from a bundle.
pub const MAX_CHAIN_CERTIFICATES: usize = 8;

const OID_KP_CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");

/// Why a signing certificate was rejected.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum CertificateError {
    /// No signing time was given to check at.
    #[error("no trusted signing time to check the certificate at")]
    NoSigningTime,
    /// Not a certificate, or too large.
    #[error("malformed signing certificate: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// The certificate had expired at a signing time.
    #[error("certificate had expired at the signing time {at} (valid until {not_after})")]
    Expired {
        /// The signing time (RFC 3339).
        at: String,
        /// The certificate's notAfter (RFC 3339).
        not_after: String,
    },
    /// The certificate was not yet valid at a signing time.
    #[error("certificate was not yet valid at the signing time {at} (valid from {not_before})")]
    NotYetValid {
        /// The signing time (RFC 3339).
        at: String,
        /// The certificate's notBefore (RFC 3339).
        not_before: String,
    },
    /// The leaf is a CA certificate.
    #[error("the signing certificate is a CA certificate")]
    CaCertificate,
    /// No extended key usage codeSigning.
    #[error("certificate lacks the code-signing extended key usage")]
    MissingCodeSigning,
    /// No key usage digitalSignature.
    #[error("certificate lacks the digitalSignature key usage")]
    MissingDigitalSignature,
    /// The certificate's key is not one signet verifies with.
    #[error("certificate key is unsupported: {reason}")]
    UnsupportedKey {
        /// Why.
        reason: String,
    },
    /// No authority of the trust issued it.
    #[error("certificate does not chain to a CA of the trusted root")]
    NotChained,
    /// A path to an authority was found but failed a check.
    #[error("certificate chain to {authority} is invalid: {reason}")]
    InvalidChain {
        /// The authority.
        authority: String,
        /// What failed.
        reason: String,
    },
    /// The authority was not trusted at a signing time.
    #[error("the signing time {at} is outside the trusted period of {authority}")]
    OutsideAuthorityWindow {
        /// The authority.
        authority: String,
        /// The signing time (RFC 3339).
        at: String,
    },
    /// No SCT from a CT log the trusted root knows.
    #[error("no SCT from a CT log of the trusted root (the certificate carries {found})")]
    NoTrustedSct {
        /// How many SCTs the certificate carries.
        found: usize,
    },
    /// An SCT from a known log does not verify.
    #[error("SCT signature does not verify (CT log {log})")]
    SctSignature {
        /// The log.
        log: String,
    },
    /// An SCT from a known log was made outside the period the log is trusted for.
    #[error("SCT from CT log {log} was made at {time}, outside the log's trusted period")]
    SctOutsideLogWindow {
        /// The log.
        log: String,
        /// The SCT's time (RFC 3339).
        time: String,
    },
    /// The SCT list does not parse.
    #[error("malformed SCT: {reason}")]
    MalformedSct {
        /// What is wrong.
        reason: String,
    },
    /// The identity extensions do not parse.
    #[error("certificate identity: {reason}")]
    Identity {
        /// What is wrong.
        reason: String,
    },
}

/// Which certificates are trusted to sign: Fulcio's (a trusted root's authorities, with an SCT
/// required from one of its CT logs) or a site's own CA (no SCT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateTrust {
    authorities: Vec<CertificateAuthority>,
    /// `Some` for Fulcio: an SCT from one of these logs is required (even when the list is
    /// empty, which then admits nothing).
    ct_logs: Option<Vec<TransparencyLog>>,
}

impl CertificateTrust {
    /// Fulcio's certificates as `root` trusts them: its certificate authorities, and an
    /// embedded SCT required from one of its CT logs.
    pub fn fulcio(root: &TrustedRoot) -> CertificateTrust {
        CertificateTrust {
            authorities: root.certificate_authorities().to_vec(),
            ct_logs: Some(root.ctlogs().to_vec()),
        }
    }

    /// A site's own CA: `roots_pem` holds its root certificates (each a trust anchor),
    /// `intermediates_pem` any intermediates (possibly empty). No SCT is required, and the roots
    /// are trusted at any time.
    pub fn from_pems(
        roots_pem: &str,
        intermediates_pem: &str,
    ) -> Result<CertificateTrust, TrustedRootError> {
        let load = |pem: &str, what: &str| -> Result<Vec<(String, Vec<u8>)>, TrustedRootError> {
            if pem.trim().is_empty() {
                return Ok(Vec::new());
            }
            let certs = Certificate::load_pem_chain(pem.as_bytes()).map_err(|e| {
                TrustedRootError::InvalidCertificates {
                    reason: format!("{what} are not PEM certificates: {e}"),
                }
            })?;
            certs
                .into_iter()
                .map(|c| {
                    let der = c
                        .to_der()
                        .map_err(|e| TrustedRootError::InvalidCertificates {
                            reason: e.to_string(),
                        })?;
                    Ok((c.tbs_certificate().subject().to_string(), der))
                })
                .collect()
        };
        let roots = load(roots_pem, "roots")?;
        if roots.is_empty() {
            return Err(TrustedRootError::InvalidCertificates {
                reason: "no root certificate".into(),
            });
        }
        let intermediates: Vec<Vec<u8>> = load(intermediates_pem, "intermediates")?
            .into_iter()
            .map(|(_, der)| der)
            .collect();
        let authorities = roots
            .into_iter()
            .map(|(name, root)| {
                let mut chain = intermediates.clone();
                chain.push(root);
                CertificateAuthority::from_der_chain(name, chain, ValidFor::default())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CertificateTrust {
            authorities,
            ct_logs: None,
        })
    }

    /// The authorities trusted.
    pub fn authorities(&self) -> &[CertificateAuthority] {
        &self.authorities
    }

    /// Whether an SCT is required (Fulcio).
    pub fn requires_sct(&self) -> bool {
        self.ct_logs.is_some()
    }
}

/// A signing certificate that [`verify_certificate`] accepted. Only it constructs one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningCertificate {
    der: Vec<u8>,
    public_key: PublicKey,
    identity: CertificateIdentity,
    authority: String,
    not_before: SystemTime,
    not_after: SystemTime,
    sct: Option<CtTimestamp>,
}

impl SigningCertificate {
    /// The certificate (DER).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The key the signature must verify with.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// Whom it was issued to.
    pub fn identity(&self) -> &CertificateIdentity {
        &self.identity
    }

    /// The authority that issued it, as the trust names it.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Its notBefore.
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    /// Its notAfter.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// The SCT that verified (Fulcio trust only).
    pub fn sct(&self) -> Option<&CtTimestamp> {
        self.sct.as_ref()
    }

    /// Whether the certificate was issued to the identity `matcher` describes; if not, says
    /// what differed. A certificate accepted under Fulcio trust must be matched on its OIDC
    /// issuer too: a matcher without one is refused, since the same subject (an email, a
    /// workflow path) vouched for by another issuer is someone else.
    pub fn check_identity(&self, matcher: &IdentityMatcher) -> Result<(), String> {
        // An SCT is present exactly when the certificate was checked under Fulcio trust.
        if self.sct.is_some() && matcher.issuer.is_none() {
            return Err(
                "a keyless identity must name the OIDC issuer; the matcher names none".into(),
            );
        }
        matcher.matches(&self.identity)
    }
}

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// Checks `leaf_der` as a signing certificate under `trust` at every one of the trusted
/// signing times `at`, with `chain_der` the other certificates the evidence carries (a bundle's
/// chain, intermediates; the leaf and roots among them are harmless). See the module
/// documentation for what is checked.
pub fn verify_certificate(
    leaf_der: &[u8],
    chain_der: &[Vec<u8>],
    trust: &CertificateTrust,
    at: &[SystemTime],
) -> Result<SigningCertificate, CertificateError> {
    let malformed = |reason: String| CertificateError::Malformed { reason };
    if at.is_empty() {
        return Err(CertificateError::NoSigningTime);
    }
    if leaf_der.len() > MAX_CERTIFICATE_BYTES {
        return Err(malformed(format!(
            "{} bytes, more than the {MAX_CERTIFICATE_BYTES} read",
            leaf_der.len()
        )));
    }
    if chain_der.len() > MAX_CHAIN_CERTIFICATES
        || chain_der.iter().any(|c| c.len() > MAX_CERTIFICATE_BYTES)
    {
        return Err(malformed(format!(
            "the chain holds more than {MAX_CHAIN_CERTIFICATES} certificates or one larger than {MAX_CERTIFICATE_BYTES} bytes"
        )));
    }
    let cert = Certificate::from_der(leaf_der)
        .map_err(|e| malformed(format!("not an X.509 DER certificate: {e}")))?;
    let tbs = cert.tbs_certificate();

    // The leaf's own properties first, in words a person can act on; rustls-webpki then checks
    // them again along with the path.
    let not_before = tbs.validity().not_before.to_system_time();
    let not_after = tbs.validity().not_after.to_system_time();
    for &t in at {
        if t < not_before {
            return Err(CertificateError::NotYetValid {
                at: rfc3339(t),
                not_before: rfc3339(not_before),
            });
        }
        if t > not_after {
            return Err(CertificateError::Expired {
                at: rfc3339(t),
                not_after: rfc3339(not_after),
            });
        }
    }
    if let Ok(Some((_, bc))) = tbs.get_extension::<BasicConstraints>()
        && bc.ca
    {
        return Err(CertificateError::CaCertificate);
    }
    match tbs.get_extension::<KeyUsage>() {
        Ok(Some((_, ku))) if ku.digital_signature() => {}
        Ok(_) => return Err(CertificateError::MissingDigitalSignature),
        Err(e) => return Err(malformed(format!("key usage does not parse: {e}"))),
    }
    match tbs.get_extension::<ExtendedKeyUsage>() {
        Ok(Some((_, eku))) if eku.0.contains(&OID_KP_CODE_SIGNING) => {}
        Ok(_) => return Err(CertificateError::MissingCodeSigning),
        Err(e) => return Err(malformed(format!("extended key usage does not parse: {e}"))),
    }
    let spki = tbs
        .subject_public_key_info()
        .to_der()
        .map_err(|e| malformed(e.to_string()))?;
    let public_key = PublicKey::from_der(&spki).map_err(|e| CertificateError::UnsupportedKey {
        reason: e.to_string(),
    })?;

    let (authority, issuer_spki) = find_authority(leaf_der, chain_der, trust, at)?;
    let sct = match &trust.ct_logs {
        Some(logs) => Some(sct::verify_embedded_sct(
            leaf_der,
            &cert,
            &issuer_spki,
            logs,
        )?),
        None => None,
    };
    let identity =
        CertificateIdentity::of(&cert).map_err(|reason| CertificateError::Identity { reason })?;
    Ok(SigningCertificate {
        der: leaf_der.to_vec(),
        public_key,
        identity,
        authority: authority.name().to_string(),
        not_before,
        not_after,
        sct,
    })
}

/// The authority of `trust` that `leaf_der` chains to at every time of `at`, and the DER
/// SubjectPublicKeyInfo of the leaf's issuer. When none does, the most telling failure: a path
/// that was found but failed a check says more than "unknown issuer".
fn find_authority<'t>(
    leaf_der: &[u8],
    chain_der: &[Vec<u8>],
    trust: &'t CertificateTrust,
    at: &[SystemTime],
) -> Result<(&'t CertificateAuthority, Vec<u8>), CertificateError> {
    let mut failure = None;
    'authorities: for ca in &trust.authorities {
        let mut intermediates = ca.intermediates_der().to_vec();
        intermediates.extend(chain_der.iter().cloned());
        let mut issuer_spki = None;
        for &t in at {
            match pkix::verify_path(
                leaf_der,
                ca.root_der(),
                &intermediates,
                t,
                EKU_CODE_SIGNING_VALUE,
            ) {
                Ok(spki) => {
                    issuer_spki.get_or_insert(spki);
                }
                Err(PathError::Path(webpki::Error::UnknownIssuer)) => continue 'authorities,
                Err(e) => {
                    failure.get_or_insert(CertificateError::InvalidChain {
                        authority: ca.name().to_string(),
                        reason: describe(&e, t),
                    });
                    continue 'authorities;
                }
            }
        }
        if let Some(t) = at.iter().find(|t| !ca.valid_for().contains(**t)) {
            failure.get_or_insert(CertificateError::OutsideAuthorityWindow {
                authority: ca.name().to_string(),
                at: rfc3339(*t),
            });
            continue;
        }
        if let Some(spki) = issuer_spki {
            return Ok((ca, spki));
        }
    }
    Err(failure.unwrap_or(CertificateError::NotChained))
}

/// A path failure in words.
fn describe(error: &PathError, at: SystemTime) -> String {
    use webpki::Error as E;
    match error {
        PathError::BeforeEpoch => "the signing time is before 1970".into(),
        PathError::Anchor(e) => format!("the root certificate is unusable: {e:?}"),
        PathError::EndEntity(e) => format!("the signing certificate is unusable: {e:?}"),
        PathError::Path(e) => match e {
            E::CertExpired { .. } => format!(
                "a certificate of the chain had expired at the signing time {}",
                rfc3339(at)
            ),
            E::CertNotValidYet { .. } => format!(
                "a certificate of the chain was not yet valid at the signing time {}",
                rfc3339(at)
            ),
            E::InvalidSignatureForPublicKey => {
                "a certificate signature in the chain does not verify".into()
            }
            E::RequiredEkuNotFoundContext(_) => {
                "a certificate of the chain does not allow code signing (extended key usage)".into()
            }
            E::CaUsedAsEndEntity => "the signing certificate is a CA certificate".into(),
            other => format!("certificate path validation failed: {other:?}"),
        },
    }
}

#[cfg(test)]
mod legacy_tests;
#[cfg(any(test, feature = "test-pki"))]
pub mod test_pki;
#[cfg(test)]
mod tests;
