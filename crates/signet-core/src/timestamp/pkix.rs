//! Certificate path validation for timestamp authorities and signing certificates
//! ([`crate::keyless`]): rustls-webpki builds and checks the path, with signature algorithms
//! that signet supplies over its own keys ([`crate::keys`]), so that one RustCrypto stack
//! verifies everything and signet-core does not link *ring*.

use std::fmt;
use std::time::SystemTime;

use der::Encode as _;
use der::asn1::{AnyRef, BitStringRef, ObjectIdentifier};
use rustls_pki_types::{
    AlgorithmIdentifier, CertificateDer, InvalidSignature, SignatureVerificationAlgorithm,
    UnixTime, alg_id,
};
use spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};

use super::HashAlgorithm;
use crate::keys::{KeyAlgorithm, PkixSignature, PublicKey};

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// The smallest RSA modulus accepted in a TSA's chain, as rustls-webpki's own RSA algorithms.
pub(crate) const MIN_RSA_BITS: usize = 2048;

/// The value of id-kp-timeStamping (1.3.6.1.5.5.7.3.8), without tag and length, as
/// rustls-webpki's `KeyUsage` takes it.
const EKU_TIME_STAMPING_VALUE: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08];

/// One signature algorithm for rustls-webpki: which SPKI algorithm and which signature
/// algorithm identifiers it answers to, and how signet's keys check it.
struct Algorithm {
    name: &'static str,
    public_key: AlgorithmIdentifier,
    signature: AlgorithmIdentifier,
    /// The SPKI algorithm (and curve) a key from a certificate is rebuilt with.
    curve: Option<ObjectIdentifier>,
    kind: PkixSignature,
    hash: HashAlgorithm,
}

impl fmt::Debug for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl SignatureVerificationAlgorithm for Algorithm {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        let key = public_key_from_bits(self.curve, public_key).ok_or(InvalidSignature)?;
        if key.rsa_bits().is_some_and(|bits| bits < MIN_RSA_BITS) {
            return Err(InvalidSignature);
        }
        key.verify_pkix(self.kind, self.hash, message, signature)
            .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        self.public_key
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.signature
    }
}

/// signet's key for the `subjectPublicKey` bits rustls-webpki hands over: the SPKI is rebuilt
/// (EC: id-ecPublicKey with the curve; RSA: rsaEncryption with NULL) and parsed as any other.
fn public_key_from_bits(curve: Option<ObjectIdentifier>, bits: &[u8]) -> Option<PublicKey> {
    let algorithm = match &curve {
        Some(curve) => AlgorithmIdentifierRef {
            oid: OID_EC_PUBLIC_KEY,
            parameters: Some(AnyRef::from(curve)),
        },
        None => AlgorithmIdentifierRef {
            oid: OID_RSA,
            parameters: Some(AnyRef::NULL),
        },
    };
    let spki = SubjectPublicKeyInfoRef {
        algorithm,
        subject_public_key: BitStringRef::from_bytes(bits).ok()?,
    };
    PublicKey::from_der(&spki.to_der().ok()?).ok()
}

macro_rules! algorithm {
    ($id:ident, $pk:ident, $sig:ident, $curve:expr, $kind:ident, $hash:ident) => {
        static $id: Algorithm = Algorithm {
            name: stringify!($id),
            public_key: alg_id::$pk,
            signature: alg_id::$sig,
            curve: $curve,
            kind: PkixSignature::$kind,
            hash: HashAlgorithm::$hash,
        };
    };
}

algorithm!(
    ECDSA_P256_SHA256,
    ECDSA_P256,
    ECDSA_SHA256,
    Some(OID_P256),
    Ecdsa,
    Sha256
);
algorithm!(
    ECDSA_P256_SHA384,
    ECDSA_P256,
    ECDSA_SHA384,
    Some(OID_P256),
    Ecdsa,
    Sha384
);
algorithm!(
    ECDSA_P256_SHA512,
    ECDSA_P256,
    ECDSA_SHA512,
    Some(OID_P256),
    Ecdsa,
    Sha512
);
algorithm!(
    ECDSA_P384_SHA256,
    ECDSA_P384,
    ECDSA_SHA256,
    Some(OID_P384),
    Ecdsa,
    Sha256
);
algorithm!(
    ECDSA_P384_SHA384,
    ECDSA_P384,
    ECDSA_SHA384,
    Some(OID_P384),
    Ecdsa,
    Sha384
);
algorithm!(
    ECDSA_P384_SHA512,
    ECDSA_P384,
    ECDSA_SHA512,
    Some(OID_P384),
    Ecdsa,
    Sha512
);
algorithm!(
    RSA_PKCS1_SHA256,
    RSA_ENCRYPTION,
    RSA_PKCS1_SHA256,
    None,
    RsaPkcs1,
    Sha256
);
algorithm!(
    RSA_PKCS1_SHA384,
    RSA_ENCRYPTION,
    RSA_PKCS1_SHA384,
    None,
    RsaPkcs1,
    Sha384
);
algorithm!(
    RSA_PKCS1_SHA512,
    RSA_ENCRYPTION,
    RSA_PKCS1_SHA512,
    None,
    RsaPkcs1,
    Sha512
);

/// Every certificate signature algorithm accepted in a TSA's chain.
static ALGORITHMS: &[&dyn SignatureVerificationAlgorithm] = &[
    &ECDSA_P256_SHA256,
    &ECDSA_P256_SHA384,
    &ECDSA_P256_SHA512,
    &ECDSA_P384_SHA256,
    &ECDSA_P384_SHA384,
    &ECDSA_P384_SHA512,
    &RSA_PKCS1_SHA256,
    &RSA_PKCS1_SHA384,
    &RSA_PKCS1_SHA512,
];

/// Whether `key` is of a kind a TSA may sign with here: ECDSA P-256 or P-384, RSA of at least
/// [`MIN_RSA_BITS`].
pub(crate) fn supported_tsa_key(key: &PublicKey) -> bool {
    match key.algorithm() {
        KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => true,
        KeyAlgorithm::Rsa => key.rsa_bits().is_some_and(|bits| bits >= MIN_RSA_BITS),
        _ => false,
    }
}

/// The value of id-kp-codeSigning (1.3.6.1.5.5.7.3.3), without tag and length.
pub(crate) const EKU_CODE_SIGNING_VALUE: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];

/// Why [`verify_path`] failed, for each caller to put in its own words.
#[derive(Debug)]
pub(crate) enum PathError {
    /// The time is before 1970.
    BeforeEpoch,
    /// The root certificate cannot be made a trust anchor.
    Anchor(webpki::Error),
    /// The end-entity certificate does not parse as rustls-webpki wants it.
    EndEntity(webpki::Error),
    /// Path building or checking failed.
    Path(webpki::Error),
}

/// Checks that `end_entity` (DER) chains to `root` through `intermediates` with every
/// certificate valid at `at`, no CA misused as a leaf, path-length limits kept, and every
/// certificate that states an extended key usage including `eku` (its OID value, without tag and
/// length). Returns the DER SubjectPublicKeyInfo of the certificate that issued `end_entity`
/// (for RFC 6962's issuer key hash). As in rustls-webpki and sigstore-go, the root is trusted as
/// configured: its own validity is not checked.
pub(crate) fn verify_path(
    end_entity: &[u8],
    root: &[u8],
    intermediates: &[Vec<u8>],
    at: SystemTime,
    eku: &'static [u8],
) -> Result<Vec<u8>, PathError> {
    let since_epoch = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| PathError::BeforeEpoch)?;
    let root = CertificateDer::from(root);
    let anchor = webpki::anchor_from_trusted_cert(&root).map_err(PathError::Anchor)?;
    let end_entity = CertificateDer::from(end_entity);
    let leaf = webpki::EndEntityCert::try_from(&end_entity).map_err(PathError::EndEntity)?;
    let intermediates: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .map(|der| CertificateDer::from(der.as_slice()))
        .collect();
    let anchors = [anchor];
    let path = leaf
        .verify_for_usage(
            ALGORITHMS,
            &anchors,
            &intermediates,
            UnixTime::since_unix_epoch(since_epoch),
            // The leaf's own usage is checked strictly by each caller (RFC 3161 section 2.3,
            // Fulcio's code signing); here any certificate of the path that names usages must
            // include it.
            webpki::KeyUsage::required_if_present(eku),
            None,
            None,
        )
        .map_err(PathError::Path)?;
    Ok(path.issuer_spki().as_ref().to_vec())
}

/// Checks that `signer` (DER) chains to `root` through `intermediates` with every certificate
/// valid at `at`, no CA misused as a leaf, path-length limits kept, and every certificate that
/// states an extended key usage allowing timestamping. On failure, says what failed, in words.
pub(crate) fn validate_path(
    signer: &[u8],
    root: &[u8],
    intermediates: &[Vec<u8>],
    at: SystemTime,
) -> Result<(), String> {
    match verify_path(signer, root, intermediates, at, EKU_TIME_STAMPING_VALUE) {
        Ok(_) => Ok(()),
        Err(PathError::BeforeEpoch) => Err("the signing time is before 1970".to_string()),
        Err(PathError::Anchor(e)) => Err(format!(
            "the authority's root certificate is unusable: {}",
            describe(&e)
        )),
        Err(PathError::EndEntity(e)) => {
            Err(format!("the TSA certificate is unusable: {}", describe(&e)))
        }
        Err(PathError::Path(e)) => Err(describe(&e)),
    }
}

/// rustls-webpki's error in the words of this verifier.
fn describe(error: &webpki::Error) -> String {
    use webpki::Error as E;
    match error {
        E::UnknownIssuer => "the TSA certificate does not chain to the authority's root".into(),
        E::CertExpired { .. } => {
            "a certificate of the chain had expired at the signing time".into()
        }
        E::CertNotValidYet { .. } => {
            "a certificate of the chain was not yet valid at the signing time".into()
        }
        E::InvalidSignatureForPublicKey => {
            "a certificate signature in the chain does not verify".into()
        }
        E::RequiredEkuNotFoundContext(_) => {
            "a certificate of the chain does not allow timestamping (extended key usage)".into()
        }
        E::CaUsedAsEndEntity => "the TSA certificate is a CA certificate".into(),
        other => format!("certificate path validation failed: {other:?}"),
    }
}
