//! Signing with a certificate (`sign --certificate`): a [`Signer`] whose public key is vouched
//! for by an X.509 certificate from the user's own CA, so that verifiers trust the CA rather
//! than the key (cosign's `--certificate` / `--certificate-chain`).
//!
//! The certificate goes where cosign puts it: in a v0.3 bundle, `verificationMaterial.certificate`
//! (the leaf only; the bundle format has no room for a chain, which verifiers are given with
//! `--ca-intermediates`); on a legacy `.sig` layer, the `dev.sigstore.cosign/certificate` and
//! `dev.sigstore.cosign/chain` annotations (PEM).

use der::{Decode as _, Encode as _, EncodePem as _};
use x509_cert::Certificate;

use crate::keys::{PublicKey, SignError, Signer};

/// The legacy `.sig` layer annotation holding the signing certificate (PEM).
pub const COSIGN_CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// The legacy `.sig` layer annotation holding the certificates above it (PEM, issuer first).
pub const COSIGN_CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";

/// Most certificates in a chain file.
pub const MAX_CHAIN_CERTIFICATES: usize = 10;

/// Why a certificate cannot be used to sign.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum CertifiedError {
    /// No `CERTIFICATE` block in the PEM.
    #[error("{what}: no PEM CERTIFICATE block in it")]
    Empty {
        /// Which file or input.
        what: String,
    },
    /// Not a certificate.
    #[error("{what}: not a readable X.509 certificate: {reason}")]
    Malformed {
        /// Which file or input.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// Too many certificates.
    #[error("{what}: {found} certificates, more than the limit of {MAX_CHAIN_CERTIFICATES}")]
    TooMany {
        /// Which file or input.
        what: String,
        /// How many there are.
        found: usize,
    },
    /// The certificate certifies another key than the one signing.
    #[error(
        "the certificate is for key {certified}, but the signing key is {signing}: give the \
         certificate issued for this key"
    )]
    KeyMismatch {
        /// The certificate's key.
        certified: String,
        /// The signer's key.
        signing: String,
    },
}

/// Reads the DER certificates of a PEM file (one or more `CERTIFICATE` blocks), in order.
pub fn certificates_from_pem(pem: &[u8], what: &str) -> Result<Vec<Vec<u8>>, CertifiedError> {
    let chain = Certificate::load_pem_chain(pem).map_err(|e| CertifiedError::Malformed {
        what: what.to_string(),
        reason: e.to_string(),
    })?;
    if chain.is_empty() {
        return Err(CertifiedError::Empty {
            what: what.to_string(),
        });
    }
    if chain.len() > MAX_CHAIN_CERTIFICATES {
        return Err(CertifiedError::TooMany {
            what: what.to_string(),
            found: chain.len(),
        });
    }
    chain
        .iter()
        .map(|c| {
            c.to_der().map_err(|e| CertifiedError::Malformed {
                what: what.to_string(),
                reason: e.to_string(),
            })
        })
        .collect()
}

/// The public key a DER certificate certifies.
pub fn certified_key(der: &[u8]) -> Result<PublicKey, String> {
    let cert = Certificate::from_der(der).map_err(|e| e.to_string())?;
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| e.to_string())?;
    PublicKey::from_der(&spki).map_err(|e| e.to_string())
}

/// A DER certificate as PEM.
pub fn to_pem(der: &[u8]) -> Result<String, String> {
    let cert = Certificate::from_der(der).map_err(|e| e.to_string())?;
    cert.to_pem(der::pem::LineEnding::LF)
        .map_err(|e| e.to_string())
}

/// The legacy `.sig` annotations for `signer`'s certificate and chain (none without one).
pub fn legacy_annotations(signer: &dyn Signer) -> Result<Vec<(String, String)>, String> {
    let Some(leaf) = signer.certificate() else {
        return Ok(Vec::new());
    };
    let mut out = vec![(COSIGN_CERTIFICATE_ANNOTATION.to_string(), to_pem(leaf)?)];
    if !signer.certificate_chain().is_empty() {
        let chain = signer
            .certificate_chain()
            .iter()
            .map(|der| to_pem(der))
            .collect::<Result<String, String>>()?;
        out.push((COSIGN_CHAIN_ANNOTATION.to_string(), chain));
    }
    Ok(out)
}

/// A signer with the certificate (and chain, up to and possibly including the root) that
/// vouches for its key.
pub struct CertifiedSigner {
    inner: Box<dyn Signer>,
    leaf: Vec<u8>,
    chain: Vec<Vec<u8>>,
}

impl CertifiedSigner {
    /// `inner` with the certificate `leaf` (DER) and the certificates above it (`chain`, DER,
    /// issuer first). Refused when `leaf` certifies another key than `inner`'s.
    pub fn new(
        inner: Box<dyn Signer>,
        leaf: Vec<u8>,
        chain: Vec<Vec<u8>>,
    ) -> Result<CertifiedSigner, CertifiedError> {
        let certified = certified_key(&leaf).map_err(|reason| CertifiedError::Malformed {
            what: "the certificate".into(),
            reason,
        })?;
        if certified.der() != inner.public_key().der() {
            return Err(CertifiedError::KeyMismatch {
                certified: certified.id().to_string(),
                signing: inner.public_key().id().to_string(),
            });
        }
        if chain.len() > MAX_CHAIN_CERTIFICATES {
            return Err(CertifiedError::TooMany {
                what: "the certificate chain".into(),
                found: chain.len(),
            });
        }
        Ok(CertifiedSigner { inner, leaf, chain })
    }
}

impl Signer for CertifiedSigner {
    fn public_key(&self) -> &PublicKey {
        self.inner.public_key()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        self.inner.sign(message)
    }

    fn certificate(&self) -> Option<&[u8]> {
        Some(&self.leaf)
    }

    fn certificate_chain(&self) -> &[Vec<u8>] {
        &self.chain
    }
}
