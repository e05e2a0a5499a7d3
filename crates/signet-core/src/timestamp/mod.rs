//! RFC 3161 timestamps: a third party's signed word on when a signature existed.
//!
//! A timestamp authority (TSA) signs a `TSTInfo` (the time, `genTime`, and a hash of what was
//! stamped, the message imprint) inside a CMS `SignedData` (RFC 5652): the *timestamp token*.
//! Sigstore bundles carry them in `verificationMaterial.timestampVerificationData
//! .rfc3161Timestamps[].signedTimestamp` over the signature bytes (for a DSSE bundle, its
//! envelope's signature; for a message-signature bundle, the signature), see
//! [`Bundle::rfc3161_timestamps`](crate::bundle::Bundle::rfc3161_timestamps) and
//! [`Bundle::timestamped_signature`](crate::bundle::Bundle::timestamped_signature); cosign's
//! legacy `.sig`/`.att` layers carry one in the `dev.sigstore.cosign/rfc3161timestamp`
//! annotation ([`token_from_cosign_annotation`]), over a `.sig` layer's raw signature or an
//! `.att` layer's envelope JSON (see `keyless::verify_legacy_signature` and
//! `keyless::verify_legacy_attestation`).
//!
//! [`verify_timestamp`] checks a token against the bytes it should stamp and a list of trusted
//! [`TimestampAuthority`]s, and returns a [`VerifiedTimestamp`], which only it constructs. It
//! fails closed, with an error naming what failed, unless all of this holds:
//!
//! - the token is a DER CMS `ContentInfo` holding `SignedData` (or a `TimeStampResp` whose
//!   status is granted and which holds one), of at most [`MAX_TOKEN_BYTES`], whose
//!   encapsulated content type is id-ct-TSTInfo and whose content parses as a v1 `TSTInfo`;
//! - the message imprint's algorithm is SHA-256, SHA-384 or SHA-512, and its hash equals that
//!   hash of the stamped bytes;
//! - there is exactly one `SignerInfo` (RFC 3161 section 2.4.2); its digest algorithm is SHA-2;
//!   its signed attributes hold exactly one content-type, equal to id-ct-TSTInfo, and exactly one
//!   message-digest, equal to the hash of the `TSTInfo` bytes;
//! - the signer's certificate, found by the signer identifier among the certificates in the
//!   token and the authorities' own TSA certificates, has an ECDSA P-256/P-384 or RSA (2048
//!   bits or more) key, and the signature (ECDSA, or RSASSA-PKCS1-v1_5, with the hash the
//!   signature algorithm names) over the DER of the signed attributes (as a SET OF, RFC 5652
//!   section 5.4) verifies with it;
//! - that certificate has the extended key usage id-kp-timeStamping, alone and critical
//!   (RFC 3161 section 2.3), and `genTime` lies within its validity;
//! - an authority in the list vouches for it: the certificate is the authority's TSA
//!   certificate when the authority names one, it chains (rustls-webpki path validation, at
//!   `genTime`: signatures, validity, CA flags, path lengths, extended key usage wherever
//!   stated) to the authority's root, through the authority's intermediates and any the token
//!   carries, and `genTime` lies within the authority's `validFor` window. (As in rustls-webpki
//!   and sigstore-go, the root is trusted as configured: its own validity is not checked; every
//!   other certificate's is.) A token signed by a TSA no authority in the list knows is
//!   refused, and so is any token when the list is empty.
//!
//! Not checked: the nonce (signet never asks a TSA for anything, so there is no request to
//! match), the TSA policy OID (reported in the proof for callers to judge), `accuracy`
//! (reported nowhere; `genTime` is taken as is), the ESS signing-certificate attribute (the
//! signer is already bound by its identifier, its key and the path to the authority), revocation
//! of TSA certificates (no CRL or OCSP: signet is offline; Sigstore's trusted root expresses
//! retirement through `validFor`), RSASSA-PSS, Ed25519 and P-521 TSA keys, and BER-encoded
//! tokens (DER only; signed attributes that are not in DER order fail).
//!
//! No ASN.1 is decoded by hand: RustCrypto's `cms`, `x509-cert` and `der` parse; rustls-webpki
//! validates the certificate path; signet's own [`keys`](crate::keys) verify signatures.
//!
//! ```
//! use signet_core::timestamp::{TimestampAuthority, verify_timestamp};
//!
//! // A TSA's chain (leaf first) and a token it issued over some signature bytes.
//! let chain = include_str!("../../../../fixtures/timestamp/tsa-chain.pem");
//! let token = include_bytes!("../../../../fixtures/timestamp/token.der");
//! let signature = include_bytes!("../../../../fixtures/timestamp/signed.bin");
//!
//! let authorities = [TimestampAuthority::from_pem_chain("test TSA", chain)?];
//! let verified = verify_timestamp(token, signature, &authorities)?;
//! assert_eq!(verified.authority(), "test TSA");
//! println!("the signature existed at {:?}", verified.time());
//! assert!(verify_timestamp(token, b"other bytes", &authorities).is_err());
//! # Ok::<(), signet_core::timestamp::TimestampError>(())
//! ```

mod asn1;
pub(crate) mod authority;
pub(crate) mod pkix;

use std::fmt;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode as _, Encode as _, Tag, Tagged as _};
use sha2::Digest as _;
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::ext::pkix::{ExtendedKeyUsage, SubjectKeyIdentifier};

pub use authority::{TimestampAuthority, ValidFor};

use crate::keys::{KeyId, PkixSignature, PublicKey};

/// The annotation in which cosign's legacy signature layers carry an RFC 3161 timestamp.
pub const COSIGN_RFC3161_ANNOTATION: &str = "dev.sigstore.cosign/rfc3161timestamp";

/// The largest token read. Real ones, with a certificate chain, are a few KiB.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;

const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const OID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const OID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const OID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const OID_KP_TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const OID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const OID_SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const OID_ECDSA_WITH_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");

/// A hash function a token may use for its message imprint or its signature.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlgorithm {
    /// The name, as in `sha256`.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha384 => "sha384",
            HashAlgorithm::Sha512 => "sha512",
        }
    }

    /// The hash of `bytes`.
    pub fn digest(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            HashAlgorithm::Sha256 => sha2::Sha256::digest(bytes).to_vec(),
            HashAlgorithm::Sha384 => sha2::Sha384::digest(bytes).to_vec(),
            HashAlgorithm::Sha512 => sha2::Sha512::digest(bytes).to_vec(),
        }
    }

    /// The algorithm an AlgorithmIdentifier names, with absent or NULL parameters.
    fn from_identifier(id: &AlgorithmIdentifierOwned) -> Option<HashAlgorithm> {
        let params_ok = id
            .parameters
            .as_ref()
            .is_none_or(|p| p.tag() == Tag::Null && p.value().is_empty());
        if !params_ok {
            return None;
        }
        match id.oid {
            OID_SHA256 => Some(HashAlgorithm::Sha256),
            OID_SHA384 => Some(HashAlgorithm::Sha384),
            OID_SHA512 => Some(HashAlgorithm::Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a timestamp token, an authority or a trusted root was refused.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum TimestampError {
    /// Bigger than [`MAX_TOKEN_BYTES`].
    #[error("timestamp token of {size} bytes is larger than the {max} bytes accepted")]
    TooLarge {
        /// The token's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not the DER structure of a timestamp token.
    #[error("malformed timestamp token: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// A `TimeStampResp` whose status is not granted, or that holds no token.
    #[error("timestamp response does not grant a token: {reason}")]
    NotGranted {
        /// The status and what the TSA said.
        reason: String,
    },
    /// The `ContentInfo` does not hold `SignedData`.
    #[error(
        "timestamp token content type is {found}, expected id-signedData (1.2.840.113549.1.7.2)"
    )]
    NotSignedData {
        /// The content type found.
        found: String,
    },
    /// The signed content is not a `TSTInfo`.
    #[error(
        "timestamp token eContentType is {found}, expected id-ct-TSTInfo (1.2.840.113549.1.9.16.1.4)"
    )]
    NotTstInfo {
        /// The content type found.
        found: String,
    },
    /// A hash algorithm other than SHA-256, SHA-384 or SHA-512.
    #[error(
        "unsupported hash algorithm {oid} in the timestamp token's {field}: accepted are SHA-256, SHA-384 and SHA-512"
    )]
    UnsupportedHashAlgorithm {
        /// Which field names it.
        field: &'static str,
        /// The algorithm's OID (and parameters, when not NULL).
        oid: String,
    },
    /// The token stamps other bytes than those given.
    #[error(
        "timestamp message imprint does not match the signed bytes: the token has {algorithm}:{in_token}, the bytes hash to {algorithm}:{of_signed}"
    )]
    ImprintMismatch {
        /// The imprint's hash algorithm.
        algorithm: HashAlgorithm,
        /// The imprint in the token, hex.
        in_token: String,
        /// The hash of the bytes given, hex.
        of_signed: String,
    },
    /// Not exactly one `SignerInfo`.
    #[error("timestamp token has {found} signer infos, expected exactly one")]
    SignerCount {
        /// How many there are.
        found: usize,
    },
    /// The signed attributes are missing, or their content-type is missing or wrong.
    #[error("timestamp token signed attributes: {reason}")]
    SignedAttributes {
        /// What is wrong.
        reason: String,
    },
    /// The message-digest attribute is not the hash of the `TSTInfo`: the content was altered.
    #[error(
        "timestamp token message-digest attribute does not match its TSTInfo (altered content): attribute {algorithm}:{attribute}, TSTInfo hashes to {algorithm}:{content}"
    )]
    ContentDigestMismatch {
        /// The signer's digest algorithm.
        algorithm: HashAlgorithm,
        /// The attribute's value, hex.
        attribute: String,
        /// The hash of the `TSTInfo` bytes, hex.
        content: String,
    },
    /// No certificate in the token or among the authorities matches the signer identifier.
    #[error(
        "timestamp token signer certificate not found ({signer}): neither in the token nor among the trusted authorities"
    )]
    SignerCertificateNotFound {
        /// The signer identifier, in words.
        signer: String,
    },
    /// The signer's key is of a kind not accepted for TSAs.
    #[error("TSA certificate \"{subject}\" has an unsupported key: {reason}")]
    UnsupportedKey {
        /// The certificate's subject.
        subject: String,
        /// What kind of key, and what is accepted.
        reason: String,
    },
    /// A signature algorithm not accepted, or one that does not fit the signer's key.
    #[error("unsupported timestamp token signature algorithm {oid}: {reason}")]
    UnsupportedSignatureAlgorithm {
        /// The algorithm's OID.
        oid: String,
        /// Why.
        reason: String,
    },
    /// The signature over the signed attributes does not verify.
    #[error(
        "timestamp token signature does not verify with the key {key_id} of TSA certificate \"{subject}\""
    )]
    BadSignature {
        /// The certificate's subject.
        subject: String,
        /// The key tried.
        key_id: KeyId,
    },
    /// The signer's certificate is not a timestamping certificate (RFC 3161 section 2.3).
    #[error("TSA certificate \"{subject}\" may not sign timestamps: {reason}")]
    NotTimestampingCertificate {
        /// The certificate's subject.
        subject: String,
        /// What its extended key usage lacks.
        reason: String,
    },
    /// `genTime` lies outside the validity of the signer's certificate.
    #[error(
        "timestamp genTime {} is outside the validity of TSA certificate \"{subject}\" ({} to {})",
        fmt_time(*gen_time), fmt_time(*not_before), fmt_time(*not_after)
    )]
    CertificateNotValidAt {
        /// The certificate's subject.
        subject: String,
        /// The time stamped.
        gen_time: SystemTime,
        /// Start of the validity.
        not_before: SystemTime,
        /// End of the validity.
        not_after: SystemTime,
    },
    /// The authority names its TSA certificate, and the token was signed by another one.
    #[error(
        "timestamp token was signed by \"{subject}\", which is not the TSA certificate of timestamp authority {authority}"
    )]
    NotAuthorityCertificate {
        /// The authority.
        authority: String,
        /// The signer certificate's subject.
        subject: String,
    },
    /// Path validation to the authority's root failed.
    #[error(
        "TSA certificate \"{subject}\" is not vouched for by timestamp authority {authority}: {reason}"
    )]
    Chain {
        /// The authority.
        authority: String,
        /// The signer certificate's subject.
        subject: String,
        /// What failed.
        reason: String,
    },
    /// `genTime` lies outside the authority's `validFor` window.
    #[error(
        "timestamp genTime {} is outside the validity period of timestamp authority {authority} ({})",
        fmt_time(*gen_time), fmt_window(valid_for)
    )]
    OutsideValidFor {
        /// The authority.
        authority: String,
        /// The time stamped.
        gen_time: SystemTime,
        /// The authority's window.
        valid_for: ValidFor,
    },
    /// No authority in the list knows the TSA that signed.
    #[error(
        "timestamp token was signed by \"{subject}\", issued by \"{issuer}\": not a trusted timestamp authority"
    )]
    UntrustedAuthority {
        /// The signer certificate's subject.
        subject: String,
        /// Its issuer.
        issuer: String,
    },
    /// Verification was asked with no authority at all; fail closed.
    #[error("no trusted timestamp authorities to verify the timestamp token with")]
    NoAuthorities,
    /// An authority's chain could not be loaded.
    #[error("invalid timestamp authority {name}: {reason}")]
    InvalidAuthority {
        /// The authority.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A trusted root file is not the JSON shape of one.
    #[error("malformed trusted root: {reason}")]
    InvalidTrustedRoot {
        /// What is wrong.
        reason: String,
    },
    /// cosign's timestamp annotation is not the JSON it writes.
    #[error("malformed {COSIGN_RFC3161_ANNOTATION} annotation: {reason}")]
    CosignAnnotation {
        /// What is wrong.
        reason: String,
    },
}

/// A time for messages. humantime panics on times before 1970 and fails on times after 9999,
/// and a [`ValidFor`] can hold either, so those are written out another way.
fn fmt_time(t: SystemTime) -> String {
    /// The first second of the year 10000.
    const YEAR_10000: u64 = 253_402_300_800;
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) if since.as_secs() < YEAR_10000 => {
            humantime::format_rfc3339_millis(t).to_string()
        }
        Ok(since) => format!("{} s after 1970 (after the year 9999)", since.as_secs()),
        Err(before) => format!("{} s before 1970", before.duration().as_secs()),
    }
}

fn fmt_window(window: &ValidFor) -> String {
    let end = |t: Option<SystemTime>, open: &str| t.map_or_else(|| open.to_string(), fmt_time);
    format!(
        "{} to {}",
        end(window.start, "the beginning"),
        end(window.end, "no end")
    )
}

/// A timestamp that [`verify_timestamp`] checked: a trusted time at which the stamped bytes
/// existed, and who says so. Only the verifier constructs one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTimestamp {
    time: SystemTime,
    authority: String,
    authority_uri: Option<String>,
    tsa_subject: String,
    tsa_key_id: KeyId,
    serial_number: String,
    policy: String,
    imprint_algorithm: HashAlgorithm,
}

impl VerifiedTimestamp {
    /// `genTime`: when the TSA saw the stamped bytes.
    pub fn time(&self) -> SystemTime {
        self.time
    }

    /// The name of the authority that vouched for it.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The trusted signing time it proves: `genTime`, by this authority.
    pub fn signed_time(&self) -> crate::signed_time::SignedTime {
        crate::signed_time::SignedTime {
            at: self.time,
            source: crate::signed_time::TimeSource::Timestamp {
                authority: self.authority.clone(),
            },
        }
    }

    /// The authority's URI, when known.
    pub fn authority_uri(&self) -> Option<&str> {
        self.authority_uri.as_deref()
    }

    /// The subject of the TSA certificate that signed.
    pub fn tsa_subject(&self) -> &str {
        &self.tsa_subject
    }

    /// The id of the TSA's key.
    pub fn tsa_key_id(&self) -> &KeyId {
        &self.tsa_key_id
    }

    /// The token's serial number, hex (unique per TSA).
    pub fn serial_number(&self) -> &str {
        &self.serial_number
    }

    /// The TSA policy the token was issued under (an OID).
    pub fn policy(&self) -> &str {
        &self.policy
    }

    /// The hash algorithm of the message imprint.
    pub fn imprint_algorithm(&self) -> HashAlgorithm {
        self.imprint_algorithm
    }
}

/// Verifies an RFC 3161 timestamp token (`token`: DER `TimeStampToken`, or a whole DER
/// `TimeStampResp`) over `signed` against `authorities`; see the [module docs](self) for
/// everything checked.
pub fn verify_timestamp(
    token: &[u8],
    signed: &[u8],
    authorities: &[TimestampAuthority],
) -> Result<VerifiedTimestamp, TimestampError> {
    if authorities.is_empty() {
        return Err(TimestampError::NoAuthorities);
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TimestampError::TooLarge {
            size: token.len(),
            max: MAX_TOKEN_BYTES,
        });
    }
    let content_info = parse_token(token)?;
    if content_info.content_type != OID_SIGNED_DATA {
        return Err(TimestampError::NotSignedData {
            found: content_info.content_type.to_string(),
        });
    }
    let signed_data: SignedData = content_info
        .content
        .decode_as()
        .map_err(|e| malformed(format!("SignedData: {e}")))?;

    // The TSTInfo and what it stamps.
    let encap = &signed_data.encap_content_info;
    if encap.econtent_type != OID_CT_TST_INFO {
        return Err(TimestampError::NotTstInfo {
            found: encap.econtent_type.to_string(),
        });
    }
    let econtent = encap
        .econtent
        .as_ref()
        .ok_or_else(|| malformed("the TSTInfo content is absent".into()))?;
    if econtent.tag() != Tag::OctetString {
        return Err(malformed(format!(
            "the encapsulated content is a {}, expected an OCTET STRING",
            econtent.tag()
        )));
    }
    let tst_der = econtent.value();
    let tst = asn1::TstInfo::from_der(tst_der).map_err(|e| malformed(format!("TSTInfo: {e}")))?;
    let gen_time = asn1::gen_time(&tst.gen_time)
        .map_err(|e| malformed(format!("TSTInfo genTime: {}", e.0)))?;
    let imprint = &tst.message_imprint;
    let imprint_algorithm =
        HashAlgorithm::from_identifier(&imprint.hash_algorithm).ok_or_else(|| {
            TimestampError::UnsupportedHashAlgorithm {
                field: "message imprint",
                oid: describe_algorithm(&imprint.hash_algorithm),
            }
        })?;
    let of_signed = imprint_algorithm.digest(signed);
    if imprint.hashed_message.as_bytes() != of_signed.as_slice() {
        return Err(TimestampError::ImprintMismatch {
            algorithm: imprint_algorithm,
            in_token: hex::encode(imprint.hashed_message.as_bytes()),
            of_signed: hex::encode(of_signed),
        });
    }

    // The one signer and its signed attributes.
    let signer_info = match signed_data.signer_infos.0.as_slice() {
        [one] => one,
        many => return Err(TimestampError::SignerCount { found: many.len() }),
    };
    let digest_algorithm =
        HashAlgorithm::from_identifier(&signer_info.digest_alg).ok_or_else(|| {
            TimestampError::UnsupportedHashAlgorithm {
                field: "signer digest algorithm",
                oid: describe_algorithm(&signer_info.digest_alg),
            }
        })?;
    let signed_attrs_der = check_signed_attributes(signer_info, digest_algorithm, tst_der)?;

    // The signer's certificate and its signature.
    let token_certs = token_certificates(&signed_data)?;
    let signer = find_signer(&signer_info.sid, &token_certs, authorities)?;
    let subject = signer.cert.tbs_certificate().subject().to_string();
    let key = signer_key(&signer.cert, &subject)?;
    let (kind, hash) = signature_scheme(&signer_info.signature_algorithm, digest_algorithm, &key)?;
    key.verify_pkix(
        kind,
        hash,
        &signed_attrs_der,
        signer_info.signature.as_bytes(),
    )
    .map_err(|_| TimestampError::BadSignature {
        subject: subject.clone(),
        key_id: key.id().clone(),
    })?;
    check_timestamping_usage(&signer.cert, &subject)?;
    check_validity(&signer.cert, &subject, gen_time)?;

    // Who vouches for the signer.
    let intermediates: Vec<Vec<u8>> = token_certs
        .iter()
        .filter(|c| c.der != signer.der)
        .map(|c| c.der.clone())
        .collect();
    let mut first_failure = None;
    for authority in authorities {
        if !claims(authority, &signer) {
            continue;
        }
        match vouch(authority, &signer, &subject, &intermediates, gen_time) {
            Ok(()) => {
                return Ok(VerifiedTimestamp {
                    time: gen_time,
                    authority: authority.name().to_string(),
                    authority_uri: authority.uri().map(str::to_string),
                    tsa_subject: subject,
                    tsa_key_id: key.id().clone(),
                    serial_number: hex::encode(tst.serial_number.as_bytes()),
                    policy: tst.policy.to_string(),
                    imprint_algorithm,
                });
            }
            Err(e) => {
                first_failure.get_or_insert(e);
            }
        }
    }
    Err(
        first_failure.unwrap_or_else(|| TimestampError::UntrustedAuthority {
            subject,
            issuer: signer.cert.tbs_certificate().issuer().to_string(),
        }),
    )
}

/// The token inside cosign's `dev.sigstore.cosign/rfc3161timestamp` annotation: JSON
/// `{"SignedRFC3161Timestamp": "<base64 DER>"}` (cosign's `bundle.RFC3161Timestamp`), the DER
/// being a `TimeStampResp` over a `.sig` layer's raw signature bytes (the base64-decoded
/// `dev.cosignproject.cosign/signature`) or over an `.att` layer's payload (its DSSE envelope
/// JSON as stored; cosign's `.att` layers have an empty signature annotation).
pub fn token_from_cosign_annotation(value: &str) -> Result<Vec<u8>, TimestampError> {
    #[derive(serde::Deserialize)]
    struct Annotation {
        #[serde(rename = "SignedRFC3161Timestamp")]
        signed: String,
    }
    let annotation: Annotation =
        serde_json::from_str(value).map_err(|e| TimestampError::CosignAnnotation {
            reason: e.to_string(),
        })?;
    let der =
        B64.decode(annotation.signed.as_bytes())
            .map_err(|e| TimestampError::CosignAnnotation {
                reason: format!("SignedRFC3161Timestamp is not base64: {e}"),
            })?;
    if der.is_empty() {
        return Err(TimestampError::CosignAnnotation {
            reason: "SignedRFC3161Timestamp is empty".into(),
        });
    }
    Ok(der)
}

/// A DER `TimeStampReq` (RFC 3161 section 2.4.1) for `signed`: a SHA-256 message imprint, a
/// random 64-bit nonce and a request for the TSA's certificate, as `signet sign
/// --timestamp-server-url` posts it (`application/timestamp-query`).
pub fn request(signed: &[u8]) -> Result<Vec<u8>, TimestampError> {
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce)
        .map_err(|e| malformed(format!("no randomness for a nonce: {e}")))?;
    // A positive INTEGER: clear the top bit rather than prepend a zero byte.
    nonce[0] &= 0x7f;
    nonce[0] |= 0x01;
    let request = asn1::TimeStampReq {
        version: asn1::TstVersion::V1,
        message_imprint: asn1::MessageImprint {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: OID_SHA256,
                parameters: None,
            },
            hashed_message: OctetString::new(HashAlgorithm::Sha256.digest(signed))
                .map_err(|e| malformed(e.to_string()))?,
        },
        req_policy: None,
        nonce: Some(der::asn1::Int::new(&nonce).map_err(|e| malformed(e.to_string()))?),
        cert_req: true,
        extensions: None,
    };
    request.to_der().map_err(|e| malformed(e.to_string()))
}

/// Checks that `response` (a TSA's `application/timestamp-reply`) grants a token, saying why
/// not otherwise. Nothing else is checked: [`verify_timestamp`] does that when it counts.
pub fn check_granted(response: &[u8]) -> Result<(), TimestampError> {
    if response.len() > MAX_TOKEN_BYTES {
        return Err(malformed(format!(
            "the response is larger than {MAX_TOKEN_BYTES} bytes"
        )));
    }
    parse_token(response).map(|_| ())
}

fn malformed(reason: String) -> TimestampError {
    TimestampError::Malformed { reason }
}

/// The `ContentInfo` of a bare token, or of the token in a granted `TimeStampResp`.
fn parse_token(token: &[u8]) -> Result<ContentInfo, TimestampError> {
    let token_error = match ContentInfo::from_der(token) {
        Ok(content_info) => return Ok(content_info),
        Err(e) => e,
    };
    let Ok(response) = asn1::TimeStampResp::from_der(token) else {
        return Err(malformed(format!(
            "neither a TimeStampToken nor a TimeStampResp: {token_error}"
        )));
    };
    // PKIStatus: granted (0) or grantedWithMods (1).
    let status = response.status.status.as_bytes();
    if status != [0] && status != [1] {
        let text = response
            .status
            .status_string
            .iter()
            .flatten()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        return Err(TimestampError::NotGranted {
            reason: format!("status {}: {text}", hex::encode(status)),
        });
    }
    response.time_stamp_token.ok_or(TimestampError::NotGranted {
        reason: "the response holds no token".into(),
    })
}

fn describe_algorithm(id: &AlgorithmIdentifierOwned) -> String {
    match &id.parameters {
        Some(p) if p.tag() != Tag::Null => format!("{} (with {} parameters)", id.oid, p.tag()),
        _ => id.oid.to_string(),
    }
}

/// Checks the content-type and message-digest attributes and returns the DER the signature
/// covers: the attributes as a SET OF (RFC 5652 section 5.4), not as the `[0] IMPLICIT` field.
fn check_signed_attributes(
    signer_info: &SignerInfo,
    digest_algorithm: HashAlgorithm,
    tst_der: &[u8],
) -> Result<Vec<u8>, TimestampError> {
    let attrs_error = |reason: String| TimestampError::SignedAttributes { reason };
    let attrs = signer_info
        .signed_attrs
        .as_ref()
        .ok_or_else(|| attrs_error("absent; RFC 3161 tokens must have them".into()))?;
    let single = |oid: ObjectIdentifier, name: &str| {
        let mut found = attrs.iter().filter(|a| a.oid == oid);
        match (found.next(), found.next()) {
            (Some(attr), None) => match attr.values.as_slice() {
                [value] => Ok(value),
                values => Err(attrs_error(format!(
                    "the {name} attribute has {} values, expected one",
                    values.len()
                ))),
            },
            (None, _) => Err(attrs_error(format!("no {name} attribute"))),
            (Some(_), Some(_)) => Err(attrs_error(format!("more than one {name} attribute"))),
        }
    };
    let content_type = single(OID_CONTENT_TYPE, "content-type")?
        .decode_as::<ObjectIdentifier>()
        .map_err(|e| attrs_error(format!("the content-type attribute is not an OID: {e}")))?;
    if content_type != OID_CT_TST_INFO {
        return Err(attrs_error(format!(
            "the content-type attribute is {content_type}, expected id-ct-TSTInfo (1.2.840.113549.1.9.16.1.4)"
        )));
    }
    let digest = single(OID_MESSAGE_DIGEST, "message-digest")?
        .decode_as::<OctetString>()
        .map_err(|e| {
            attrs_error(format!(
                "the message-digest attribute is not an OCTET STRING: {e}"
            ))
        })?;
    let content = digest_algorithm.digest(tst_der);
    if digest.as_bytes() != content.as_slice() {
        return Err(TimestampError::ContentDigestMismatch {
            algorithm: digest_algorithm,
            attribute: hex::encode(digest.as_bytes()),
            content: hex::encode(content),
        });
    }
    attrs
        .to_der()
        .map_err(|e| attrs_error(format!("cannot be re-encoded: {e}")))
}

/// A certificate with the DER it came as.
struct Cert {
    cert: Certificate,
    der: Vec<u8>,
}

fn token_certificates(signed_data: &SignedData) -> Result<Vec<Cert>, TimestampError> {
    let mut out = Vec::new();
    for choice in signed_data.certificates.iter().flat_map(|set| set.0.iter()) {
        // Other certificate formats (attribute certificates and the like) cannot sign a
        // token; they are skipped, not trusted.
        if let CertificateChoices::Certificate(cert) = choice {
            let der = cert
                .to_der()
                .map_err(|e| malformed(format!("embedded certificate: {e}")))?;
            out.push(Cert {
                cert: cert.clone(),
                der,
            });
        }
    }
    Ok(out)
}

/// The certificate the signer identifier names: from the token, else an authority's TSA
/// certificate (tokens need not embed it).
fn find_signer(
    sid: &SignerIdentifier,
    token_certs: &[Cert],
    authorities: &[TimestampAuthority],
) -> Result<Cert, TimestampError> {
    let matches = |cert: &Certificate| {
        let tbs = cert.tbs_certificate();
        match sid {
            SignerIdentifier::IssuerAndSerialNumber(isn) => {
                tbs.issuer() == &isn.issuer && tbs.serial_number() == &isn.serial_number
            }
            SignerIdentifier::SubjectKeyIdentifier(ski) => matches!(
                tbs.get_extension::<SubjectKeyIdentifier>(),
                Ok(Some((_, own))) if own == *ski
            ),
        }
    };
    if let Some(found) = token_certs.iter().find(|c| matches(&c.cert)) {
        return Ok(Cert {
            cert: found.cert.clone(),
            der: found.der.clone(),
        });
    }
    for der in authorities.iter().filter_map(TimestampAuthority::leaf_der) {
        if let Ok(cert) = Certificate::from_der(der)
            && matches(&cert)
        {
            return Ok(Cert {
                cert,
                der: der.to_vec(),
            });
        }
    }
    let signer = match sid {
        SignerIdentifier::IssuerAndSerialNumber(isn) => format!(
            "issuer \"{}\", serial {}",
            isn.issuer,
            hex::encode(isn.serial_number.as_bytes())
        ),
        SignerIdentifier::SubjectKeyIdentifier(ski) => {
            format!("subject key identifier {}", hex::encode(ski.0.as_bytes()))
        }
    };
    Err(TimestampError::SignerCertificateNotFound { signer })
}

fn signer_key(cert: &Certificate, subject: &str) -> Result<PublicKey, TimestampError> {
    let unsupported = |reason: String| TimestampError::UnsupportedKey {
        subject: subject.to_string(),
        reason,
    };
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| unsupported(e.to_string()))?;
    let key = PublicKey::from_der(&spki).map_err(|e| unsupported(e.to_string()))?;
    if !pkix::supported_tsa_key(&key) {
        return Err(unsupported(format!(
            "{}{}; accepted are ECDSA P-256, P-384 and RSA of {} bits or more",
            key.algorithm(),
            key.rsa_bits()
                .map(|bits| format!(" of {bits} bits"))
                .unwrap_or_default(),
            pkix::MIN_RSA_BITS
        )));
    }
    Ok(key)
}

/// The signature kind and hash a SignerInfo's signature algorithm names: `rsaEncryption` (what
/// OpenSSL writes) and bare `id-ecPublicKey` take the signer's digest algorithm; the
/// `…WithRSAEncryption` and `ecdsa-with-…` algorithms name their own.
fn signature_scheme(
    algorithm: &AlgorithmIdentifierOwned,
    digest: HashAlgorithm,
    key: &PublicKey,
) -> Result<(PkixSignature, HashAlgorithm), TimestampError> {
    use HashAlgorithm::{Sha256, Sha384, Sha512};
    let (kind, hash) = match algorithm.oid {
        OID_RSA_ENCRYPTION => (PkixSignature::RsaPkcs1, digest),
        OID_SHA256_WITH_RSA => (PkixSignature::RsaPkcs1, Sha256),
        OID_SHA384_WITH_RSA => (PkixSignature::RsaPkcs1, Sha384),
        OID_SHA512_WITH_RSA => (PkixSignature::RsaPkcs1, Sha512),
        OID_EC_PUBLIC_KEY => (PkixSignature::Ecdsa, digest),
        OID_ECDSA_WITH_SHA256 => (PkixSignature::Ecdsa, Sha256),
        OID_ECDSA_WITH_SHA384 => (PkixSignature::Ecdsa, Sha384),
        OID_ECDSA_WITH_SHA512 => (PkixSignature::Ecdsa, Sha512),
        other => {
            return Err(TimestampError::UnsupportedSignatureAlgorithm {
                oid: other.to_string(),
                reason: "accepted are ECDSA and RSASSA-PKCS1-v1_5 with SHA-256, SHA-384 or SHA-512"
                    .into(),
            });
        }
    };
    let fits = match kind {
        PkixSignature::Ecdsa => matches!(
            key.algorithm(),
            crate::keys::KeyAlgorithm::EcdsaP256 | crate::keys::KeyAlgorithm::EcdsaP384
        ),
        PkixSignature::RsaPkcs1 => key.algorithm() == crate::keys::KeyAlgorithm::Rsa,
    };
    if !fits {
        return Err(TimestampError::UnsupportedSignatureAlgorithm {
            oid: algorithm.oid.to_string(),
            reason: format!("it does not fit the TSA's {} key", key.algorithm()),
        });
    }
    Ok((kind, hash))
}

/// RFC 3161 section 2.3: "The corresponding certificate MUST contain only one instance of the
/// extended key usage field extension [...] with KeyPurposeID having value id-kp-timeStamping.
/// This extension MUST be critical."
fn check_timestamping_usage(cert: &Certificate, subject: &str) -> Result<(), TimestampError> {
    let refuse = |reason: String| TimestampError::NotTimestampingCertificate {
        subject: subject.to_string(),
        reason,
    };
    match cert.tbs_certificate().get_extension::<ExtendedKeyUsage>() {
        Err(e) => Err(refuse(format!("unreadable extended key usage extension: {e}"))),
        Ok(None) => Err(refuse(
            "it has no extended key usage extension; id-kp-timeStamping (1.3.6.1.5.5.7.3.8) is required"
                .into(),
        )),
        Ok(Some((critical, usage))) => {
            let listed = usage
                .0
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            if !usage.0.contains(&OID_KP_TIME_STAMPING) {
                Err(refuse(format!(
                    "its extended key usage ({listed}) lacks id-kp-timeStamping (1.3.6.1.5.5.7.3.8)"
                )))
            } else if usage.0.len() != 1 {
                Err(refuse(format!(
                    "its extended key usage ({listed}) must be id-kp-timeStamping alone"
                )))
            } else if !critical {
                Err(refuse(
                    "its extended key usage extension is not critical".into(),
                ))
            } else {
                Ok(())
            }
        }
    }
}

fn check_validity(
    cert: &Certificate,
    subject: &str,
    gen_time: SystemTime,
) -> Result<(), TimestampError> {
    let validity = cert.tbs_certificate().validity();
    let not_before = validity.not_before.to_system_time();
    let not_after = validity.not_after.to_system_time();
    if not_before <= gen_time && gen_time <= not_after {
        Ok(())
    } else {
        Err(TimestampError::CertificateNotValidAt {
            subject: subject.to_string(),
            gen_time,
            not_before,
            not_after,
        })
    }
}

/// Whether `authority` is the one to judge `signer`: the signer is its TSA certificate, or was
/// issued by one of its certificates (by name; the signature is checked in [`vouch`]).
fn claims(authority: &TimestampAuthority, signer: &Cert) -> bool {
    if authority.leaf_der() == Some(signer.der.as_slice()) {
        return true;
    }
    let issuer = signer.cert.tbs_certificate().issuer();
    authority
        .intermediates_der()
        .iter()
        .map(Vec::as_slice)
        .chain(std::iter::once(authority.root_der()))
        .filter_map(|der| Certificate::from_der(der).ok())
        .any(|cert| cert.tbs_certificate().subject() == issuer)
}

fn vouch(
    authority: &TimestampAuthority,
    signer: &Cert,
    subject: &str,
    token_intermediates: &[Vec<u8>],
    gen_time: SystemTime,
) -> Result<(), TimestampError> {
    if let Some(leaf) = authority.leaf_der()
        && leaf != signer.der.as_slice()
    {
        return Err(TimestampError::NotAuthorityCertificate {
            authority: authority.name().to_string(),
            subject: subject.to_string(),
        });
    }
    let mut intermediates = authority.intermediates_der().to_vec();
    intermediates.extend(token_intermediates.iter().cloned());
    pkix::validate_path(&signer.der, authority.root_der(), &intermediates, gen_time).map_err(
        |reason| TimestampError::Chain {
            authority: authority.name().to_string(),
            subject: subject.to_string(),
            reason,
        },
    )?;
    if !authority.valid_for().contains(gen_time) {
        return Err(TimestampError::OutsideValidFor {
            authority: authority.name().to_string(),
            gen_time,
            valid_for: authority.valid_for(),
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const FIXTURE_CHAIN: &str = include_str!("../../../../fixtures/timestamp/tsa-chain.pem");
    const FIXTURE_TOKEN: &[u8] = include_bytes!("../../../../fixtures/timestamp/token.der");
    const FIXTURE_SIGNED: &[u8] = include_bytes!("../../../../fixtures/timestamp/signed.bin");

    /// The committed `openssl ts` token (scripts/gen-timestamp-fixtures.sh) verifies without
    /// openssl at hand; tests/timestamp.rs covers the rest with TSAs made at test time.
    #[test]
    fn the_fixture_token_verifies() {
        let authority = TimestampAuthority::from_pem_chain("fixture", FIXTURE_CHAIN).unwrap();
        assert!(authority.leaf_der().is_some());
        assert!(authority.intermediates_der().is_empty());
        let verified = verify_timestamp(FIXTURE_TOKEN, FIXTURE_SIGNED, &[authority]).unwrap();
        assert_eq!(verified.authority(), "fixture");
        assert_eq!(verified.tsa_subject(), "CN=Signet Fixture TSA");
        assert_eq!(verified.policy(), "1.3.6.1.4.1.55738.1");
        assert!(verified.time() > SystemTime::UNIX_EPOCH);
    }

    #[test]
    fn a_chain_that_does_not_load_is_refused() {
        for pem in [
            "",
            "-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n",
        ] {
            assert!(matches!(
                TimestampAuthority::from_pem_chain("x", pem),
                Err(TimestampError::InvalidAuthority { .. })
            ));
        }
        assert!(matches!(
            TimestampAuthority::from_der_chain("x", vec![]),
            Err(TimestampError::InvalidAuthority { .. })
        ));
    }

    #[test]
    fn no_authorities_fails_closed_before_parsing() {
        assert_eq!(
            verify_timestamp(b"anything", b"x", &[]),
            Err(TimestampError::NoAuthorities)
        );
    }

    #[test]
    fn cosign_annotation_is_read() {
        let der = token_from_cosign_annotation(r#"{"SignedRFC3161Timestamp":"MAMCAQA="}"#).unwrap();
        assert_eq!(der, vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        for bad in [
            "",
            "{}",
            r#"{"SignedRFC3161Timestamp":""}"#,
            r#"{"SignedRFC3161Timestamp":"***"}"#,
            r#"{"SignedRFC3161Timestamp":1}"#,
        ] {
            assert!(
                matches!(
                    token_from_cosign_annotation(bad),
                    Err(TimestampError::CosignAnnotation { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn times_humantime_cannot_write_do_not_panic_in_messages() {
        use std::time::Duration;
        let err = TimestampError::OutsideValidFor {
            authority: "a".into(),
            gen_time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            valid_for: ValidFor {
                start: SystemTime::UNIX_EPOCH.checked_sub(Duration::from_secs(5)),
                end: SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(300_000_000_000)),
            },
        };
        assert_eq!(
            err.to_string(),
            "timestamp genTime 2023-11-14T22:13:20.000Z is outside the validity period of \
             timestamp authority a (5 s before 1970 to 300000000000 s after 1970 (after the year \
             9999))"
        );
    }

    #[test]
    fn valid_for_bounds_are_inclusive_and_open_ends_are_open() {
        use std::time::Duration;
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let second = Duration::from_secs(1);
        let window = ValidFor {
            start: Some(t),
            end: Some(t + second),
        };
        assert!(window.contains(t) && window.contains(t + second));
        assert!(!window.contains(t - second) && !window.contains(t + second * 2));
        assert!(ValidFor::default().contains(t));
        let open_end = ValidFor {
            start: Some(t),
            end: None,
        };
        assert!(open_end.contains(t + second * 1_000_000));
        assert!(!open_end.contains(t - second));
    }
}
