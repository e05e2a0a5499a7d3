//! Keys: PKIX public keys, cosign-compatible encrypted private keys, signing and verification.
//!
//! Public keys are PEM `PUBLIC KEY` (DER SubjectPublicKeyInfo). signet verifies ECDSA P-256 and
//! P-384 (ASN.1 DER signatures over SHA-256 / SHA-384), RSA (PKCS#1 v1.5 or PSS over SHA-256)
//! and Ed25519. It signs with ECDSA P-256/SHA-256, the default everywhere in Sigstore.
//!
//! Private keys are stored the way cosign stores them: a PEM block labelled
//! `ENCRYPTED SIGSTORE PRIVATE KEY` (older cosign: `ENCRYPTED COSIGN PRIVATE KEY`) whose body is
//! the JSON document of go-securesystemslib's `encrypted` package: scrypt derives a 32-byte key
//! from the password, NaCl secretbox (XSalsa20-Poly1305) seals the PKCS#8 DER of the key.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use serde::{Deserialize, Serialize};
use spki::der::{Decode as _, asn1::ObjectIdentifier as Oid};
use spki::{DecodePublicKey as _, EncodePublicKey as _};
use zeroize::Zeroizing;

use crate::digest::Digest;

/// PEM label cosign (v2 and later) writes for an encrypted private key.
pub const SIGSTORE_PRIVATE_KEY_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// PEM label older cosign releases wrote for an encrypted private key; still accepted.
pub const COSIGN_PRIVATE_KEY_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// PEM label of a PKIX public key.
pub const PUBLIC_KEY_LABEL: &str = "PUBLIC KEY";

/// scrypt cost cosign writes (N = 2^16, r = 8, p = 1).
const SCRYPT_LOG_N_WRITE: u8 = 16;
/// scrypt costs accepted when loading: cosign has written 2^15 and 2^16, go-securesystemslib's
/// "interactive" preset is 2^17. Anything else is refused, so a key file cannot make us burn
/// unbounded memory and time.
const SCRYPT_LOG_N_ACCEPTED: [u8; 3] = [15, 16, 17];
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
const SALT_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

const OID_EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
const OID_P256: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: Oid = Oid::new_unwrap("1.3.132.0.34");
const OID_P521: Oid = Oid::new_unwrap("1.3.132.0.35");
const OID_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
const OID_ED25519: Oid = Oid::new_unwrap("1.3.101.112");

/// Everything that can go wrong loading, decrypting or encoding a key.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The text is not a PEM block.
    #[error("malformed PEM: {reason}")]
    MalformedPem {
        /// What the PEM decoder said.
        reason: String,
    },
    /// A PEM block with a label we do not expect here.
    #[error("unexpected PEM label \"{found}\": expected {expected}")]
    UnexpectedLabel {
        /// The label found.
        found: String,
        /// What was expected, for the message.
        expected: &'static str,
    },
    /// A public key was given where a private key is needed.
    #[error("expected an encrypted private key, found a public key (PEM label \"{label}\")")]
    PublicKeyGiven {
        /// The label found.
        label: String,
    },
    /// The encrypted key document is not the JSON cosign writes.
    #[error("malformed encrypted private key: {reason}")]
    MalformedEncryptedKey {
        /// Which part is wrong.
        reason: String,
    },
    /// A key derivation function other than scrypt.
    #[error("unsupported key derivation function \"{name}\": expected scrypt")]
    UnsupportedKdf {
        /// The name found.
        name: String,
    },
    /// A cipher other than NaCl secretbox.
    #[error("unsupported cipher \"{name}\": expected nacl/secretbox")]
    UnsupportedCipher {
        /// The name found.
        name: String,
    },
    /// scrypt parameters outside the accepted set.
    #[error(
        "unsupported scrypt parameters N={n}, r={r}, p={p}: accepted are N of 2^15, 2^16 or 2^17 with r=8, p=1"
    )]
    UnsupportedScryptParams {
        /// Cost.
        n: u64,
        /// Block size.
        r: u32,
        /// Parallelism.
        p: u32,
    },
    /// The ciphertext was cut short.
    #[error("truncated ciphertext: the encrypted private key holds {got} bytes, {expected}")]
    TruncatedCiphertext {
        /// Bytes present.
        got: usize,
        /// What should be there, in words.
        expected: String,
    },
    /// Authentication of the ciphertext failed: the password is wrong.
    #[error("wrong password for the encrypted private key")]
    WrongPassword,
    /// The decrypted bytes are not a PKCS#8 private key.
    #[error("decrypted private key is not valid PKCS#8: {reason}")]
    InvalidPrivateKey {
        /// What the decoder said.
        reason: String,
    },
    /// The DER is not a SubjectPublicKeyInfo, or its key bytes are invalid.
    #[error("invalid public key: {reason}")]
    InvalidPublicKey {
        /// What the decoder said.
        reason: String,
    },
    /// An elliptic curve we do not support.
    #[error("unsupported elliptic curve {curve}: supported are P-256 and P-384")]
    UnsupportedCurve {
        /// The curve's name or OID.
        curve: String,
    },
    /// A key algorithm we do not support at all, or not for this operation.
    #[error("unsupported key type {algorithm}{hint}")]
    UnsupportedKeyType {
        /// The algorithm's name or OID.
        algorithm: String,
        /// Extra explanation, starting with a separator, or empty.
        hint: &'static str,
    },
    /// The operating system's random number generator failed.
    #[error("random number generator failed: {reason}")]
    Random {
        /// What the OS said.
        reason: String,
    },
}

/// Why a signature did not verify.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// The signature bytes are not a signature of the key's kind (bad DER, wrong length).
    #[error("malformed {algorithm} signature from key {key_id}")]
    Malformed {
        /// The key's algorithm.
        algorithm: KeyAlgorithm,
        /// The key tried.
        key_id: KeyId,
    },
    /// The scheme a verifier asked for does not fit the key.
    #[error("signature scheme {scheme} does not fit key {key_id}, which is {algorithm}")]
    SchemeMismatch {
        /// The scheme asked for.
        scheme: SignatureScheme,
        /// The key's algorithm.
        algorithm: KeyAlgorithm,
        /// The key.
        key_id: KeyId,
    },
    /// A well-formed signature that does not match the message under this key.
    #[error("signature does not verify with key {key_id}")]
    Mismatch {
        /// The key tried.
        key_id: KeyId,
    },
}

/// Why a [`Signer`] could not sign.
///
/// File keys never fail; keys held elsewhere (a PKCS#11 token, a KMS) can: the device refuses,
/// the session is gone, or what came back is not a signature of the key.
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum SignError {
    /// The device or service holding the private key failed or refused to sign.
    #[error("signing with key {key_id} failed: {reason}")]
    Backend {
        /// The key asked to sign.
        key_id: KeyId,
        /// What the backend said, without any secret.
        reason: String,
        /// The backend's error, when it has one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The backend answered with bytes that are not a signature of the key's kind (a raw
    /// ECDSA signature of the wrong length, for example).
    #[error("malformed {algorithm} signature from the signer of key {key_id}")]
    MalformedSignature {
        /// The key's algorithm.
        algorithm: KeyAlgorithm,
        /// The key asked to sign.
        key_id: KeyId,
    },
    /// The signature made does not verify with the signer's public key: the private key is
    /// not the public key's pair. Nothing signed this way would ever be accepted.
    #[error(
        "the signature made does not verify with public key {key_id}: the private key does not \
         belong to that public key"
    )]
    NotMatchingPublicKey {
        /// The public key the signer claims.
        key_id: KeyId,
    },
    /// The signer cannot sign for this kind of key.
    #[error("cannot sign with a {algorithm} key")]
    UnsupportedAlgorithm {
        /// The key's algorithm.
        algorithm: KeyAlgorithm,
    },
}

/// Something that signs with a private key: a key file in memory ([`KeyPair`]), or a key that
/// never leaves a device (a PKCS#11 token, in `signet-pkcs11`).
///
/// Signatures are what [`PublicKey::verify`] accepts for the key: ECDSA P-256 and P-384 as
/// ASN.1 DER over SHA-256 and SHA-384, RSA as PKCS#1 v1.5 over SHA-256 (what cosign writes).
pub trait Signer: Send + Sync {
    /// The public half, which verifiers are given.
    fn public_key(&self) -> &PublicKey;
    /// Signs exactly `message` (the signer hashes it).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError>;
    /// The DER certificate that vouches for the key, when signing with one
    /// ([`crate::certified::CertifiedSigner`]); verifiers then trust its CA, not the key.
    fn certificate(&self) -> Option<&[u8]> {
        None
    }
    /// The DER certificates above [`Signer::certificate`], issuer first.
    fn certificate_chain(&self) -> &[Vec<u8>] {
        &[]
    }
}

/// The kind of a public key.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 with SHA-256.
    EcdsaP256,
    /// ECDSA on NIST P-384 with SHA-384.
    EcdsaP384,
    /// ECDSA on NIST P-521 with SHA-512.
    EcdsaP521,
    /// RSA, PKCS#1 v1.5 or PSS, with SHA-256.
    Rsa,
    /// Ed25519.
    Ed25519,
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256-sha256",
            KeyAlgorithm::EcdsaP384 => "ecdsa-p384-sha384",
            KeyAlgorithm::EcdsaP521 => "ecdsa-p521-sha512",
            KeyAlgorithm::Rsa => "rsa-sha256",
            KeyAlgorithm::Ed25519 => "ed25519",
        })
    }
}

/// One signature scheme, named by the verifier rather than guessed from the key: Binary
/// Authorization's `signatureAlgorithm` values map onto these.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureScheme {
    /// ECDSA P-256, SHA-256, ASN.1 DER signature.
    EcdsaP256Sha256,
    /// ECDSA P-384, SHA-384, ASN.1 DER signature.
    EcdsaP384Sha384,
    /// ECDSA P-521, SHA-512, ASN.1 DER signature.
    EcdsaP521Sha512,
    /// RSASSA-PSS, SHA-256 (salt length read from the signature, as OpenSSL's `auto`).
    RsaPssSha256,
    /// RSASSA-PSS, SHA-512.
    RsaPssSha512,
    /// RSASSA-PKCS1-v1_5, SHA-256.
    RsaPkcs1Sha256,
    /// RSASSA-PKCS1-v1_5, SHA-512.
    RsaPkcs1Sha512,
    /// Ed25519.
    Ed25519,
}

impl SignatureScheme {
    /// The kind of key the scheme needs.
    pub fn key_algorithm(self) -> KeyAlgorithm {
        match self {
            SignatureScheme::EcdsaP256Sha256 => KeyAlgorithm::EcdsaP256,
            SignatureScheme::EcdsaP384Sha384 => KeyAlgorithm::EcdsaP384,
            SignatureScheme::EcdsaP521Sha512 => KeyAlgorithm::EcdsaP521,
            SignatureScheme::RsaPssSha256
            | SignatureScheme::RsaPssSha512
            | SignatureScheme::RsaPkcs1Sha256
            | SignatureScheme::RsaPkcs1Sha512 => KeyAlgorithm::Rsa,
            SignatureScheme::Ed25519 => KeyAlgorithm::Ed25519,
        }
    }
}

impl fmt::Display for SignatureScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignatureScheme::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            SignatureScheme::EcdsaP384Sha384 => "ecdsa-p384-sha384",
            SignatureScheme::EcdsaP521Sha512 => "ecdsa-p521-sha512",
            SignatureScheme::RsaPssSha256 => "rsa-pss-sha256",
            SignatureScheme::RsaPssSha512 => "rsa-pss-sha512",
            SignatureScheme::RsaPkcs1Sha256 => "rsa-pkcs1-sha256",
            SignatureScheme::RsaPkcs1Sha512 => "rsa-pkcs1-sha512",
            SignatureScheme::Ed25519 => "ed25519",
        })
    }
}

/// RSASSA-PSS with the salt length taken from the signature: OpenSSL signs with the longest
/// salt by default and Cloud KMS with the digest's length, and both are sound.
fn pss_verify<D>(key: &rsa::PublicKey, message: &[u8], signature: &[u8]) -> Result<(), ()>
where
    D: sha2::Digest + sha2::digest::FixedOutputReset + sha2::digest::Update + Default,
{
    use rsa::signature::Verifier as _;
    let signature = rsa::pss::Signature::try_from(signature).map_err(|_| ())?;
    rsa::pss::VerifyingKey::<D>::new_with_auto_salt_len(key.clone())
        .verify(message, &signature)
        .map_err(|_| ())
}

/// A key's identity. For PKIX keys, the SHA-256 digest of the DER SubjectPublicKeyInfo, shown
/// as `sha256:<hex>`: the same value cosign and Binary Authorization derive. For OpenPGP keys
/// (Binary Authorization's PGP attestors), the key's v4 fingerprint in upper-case hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(Id);

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Id {
    Spki(Digest),
    Pgp(String),
}

impl KeyId {
    /// The key id of a DER SubjectPublicKeyInfo.
    pub fn of_spki_der(der: &[u8]) -> KeyId {
        KeyId(Id::Spki(Digest::sha256_of(der)))
    }

    /// The key id of an OpenPGP key, from its fingerprint (hex, any case).
    pub fn of_pgp_fingerprint(fingerprint: &str) -> KeyId {
        KeyId(Id::Pgp(fingerprint.to_ascii_uppercase()))
    }

    /// The SHA-256 of the DER SubjectPublicKeyInfo, for PKIX keys.
    pub fn spki_digest(&self) -> Option<&Digest> {
        match &self.0 {
            Id::Spki(digest) => Some(digest),
            Id::Pgp(_) => None,
        }
    }

    /// The form cosign writes as a Sigstore bundle's `publicKey.hint`: standard base64 of the
    /// raw SHA-256 of the DER SubjectPublicKeyInfo. Empty for OpenPGP keys, which never sign
    /// bundles.
    pub fn hint(&self) -> String {
        match &self.0 {
            // The digest's hex was checked by the parser, so decoding cannot fail; an empty
            // hint would only lose an optimisation, never a check.
            Id::Spki(digest) => B64.encode(hex::decode(digest.hex()).unwrap_or_default()),
            Id::Pgp(_) => String::new(),
        }
    }

    /// The key id a `publicKey.hint` names, when it is in cosign's form (see
    /// [`KeyId::hint`]); `None` for any other hint. A hint is unauthenticated: it may shape
    /// messages, never a verdict.
    pub fn from_hint(hint: &str) -> Option<KeyId> {
        let raw = B64.decode(hint).ok()?;
        if raw.len() != 32 {
            return None;
        }
        Digest::from_hex(crate::digest::Algorithm::Sha256, &hex::encode(raw))
            .ok()
            .map(|d| KeyId(Id::Spki(d)))
    }

    /// A key id as people write it (what [`KeyId`]'s `Display` prints): `sha256:<64 hex>` for
    /// PKIX keys, or an OpenPGP v4 fingerprint (40 hex digits, any case). `None` for anything
    /// else.
    pub fn parse(text: &str) -> Option<KeyId> {
        if let Some(hex) = text.strip_prefix("sha256:") {
            return Digest::from_hex(crate::digest::Algorithm::Sha256, hex)
                .ok()
                .map(|d| KeyId(Id::Spki(d)));
        }
        (text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| KeyId::of_pgp_fingerprint(text))
    }

    /// A short form for human messages.
    pub fn short(&self) -> String {
        match &self.0 {
            Id::Spki(digest) => digest.short(),
            Id::Pgp(fingerprint) => {
                let start = fingerprint.len().saturating_sub(16);
                fingerprint.get(start..).unwrap_or(fingerprint).to_string()
            }
        }
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Id::Spki(digest) => digest.fmt(f),
            Id::Pgp(fingerprint) => f.write_str(fingerprint),
        }
    }
}

#[derive(Clone)]
enum VerifyingKey {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(p521::ecdsa::VerifyingKey),
    Rsa(Box<rsa::PublicKey>),
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// A public key that signatures can be checked against.
#[derive(Clone)]
pub struct PublicKey {
    key: VerifyingKey,
    der: Vec<u8>,
    id: KeyId,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("algorithm", &self.algorithm())
            .field("id", &self.id)
            .finish()
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}
impl Eq for PublicKey {}

impl PublicKey {
    /// Parses a PEM `PUBLIC KEY` block.
    pub fn from_pem(pem: &str) -> Result<PublicKey, KeyError> {
        let (label, der) = decode_pem(pem)?;
        if label != PUBLIC_KEY_LABEL {
            return Err(KeyError::UnexpectedLabel {
                found: label,
                expected: "\"PUBLIC KEY\" (a PKIX public key)",
            });
        }
        PublicKey::from_der(&der)
    }

    /// Parses a DER SubjectPublicKeyInfo.
    pub fn from_der(der: &[u8]) -> Result<PublicKey, KeyError> {
        let invalid = |e: &dyn fmt::Display| KeyError::InvalidPublicKey {
            reason: e.to_string(),
        };
        let spki = spki::SubjectPublicKeyInfoRef::from_der(der).map_err(|e| invalid(&e))?;
        let key = match spki.algorithm.oid {
            OID_EC_PUBLIC_KEY => {
                let curve = spki.algorithm.parameters_oid().map_err(|e| invalid(&e))?;
                match curve {
                    OID_P256 => VerifyingKey::P256(
                        p256::ecdsa::VerifyingKey::from_public_key_der(der)
                            .map_err(|e| invalid(&e))?,
                    ),
                    OID_P384 => VerifyingKey::P384(
                        p384::ecdsa::VerifyingKey::from_public_key_der(der)
                            .map_err(|e| invalid(&e))?,
                    ),
                    OID_P521 => VerifyingKey::P521(
                        p521::ecdsa::VerifyingKey::from_public_key_der(der)
                            .map_err(|e| invalid(&e))?,
                    ),
                    other => {
                        return Err(KeyError::UnsupportedCurve {
                            curve: curve_name(&other),
                        });
                    }
                }
            }
            OID_RSA => VerifyingKey::Rsa(Box::new(
                rsa::PublicKey::from_public_key_der(der).map_err(|e| invalid(&e))?,
            )),
            OID_ED25519 => VerifyingKey::Ed25519(
                ed25519_dalek::VerifyingKey::from_public_key_der(der).map_err(|e| invalid(&e))?,
            ),
            other => {
                return Err(KeyError::UnsupportedKeyType {
                    algorithm: other.to_string(),
                    hint: ": supported are ECDSA P-256/P-384, RSA and Ed25519",
                });
            }
        };
        Ok(PublicKey {
            key,
            der: der.to_vec(),
            id: KeyId::of_spki_der(der),
        })
    }

    /// The public key of an elliptic-curve key pair as PKCS#11 tokens and other devices give
    /// it: `params` is the DER of the named curve's OID (`CKA_EC_PARAMS`), `point` the SEC 1
    /// point (`CKA_EC_POINT`), either bare or wrapped in a DER OCTET STRING (PKCS#11 says
    /// wrapped; some tokens give it bare).
    pub fn from_ec_point(params: &[u8], point: &[u8]) -> Result<PublicKey, KeyError> {
        let invalid = |e: &dyn fmt::Display| KeyError::InvalidPublicKey {
            reason: e.to_string(),
        };
        let curve = Oid::from_der(params).map_err(|e| KeyError::InvalidPublicKey {
            reason: format!("EC parameters are not a named curve: {e}"),
        })?;
        let point = unwrap_ec_point(point);
        let der = match curve {
            OID_P256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                .map_err(|e| invalid(&e))?
                .to_public_key_der()
                .map_err(|e| invalid(&e))?,
            OID_P384 => p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
                .map_err(|e| invalid(&e))?
                .to_public_key_der()
                .map_err(|e| invalid(&e))?,
            other => {
                return Err(KeyError::UnsupportedCurve {
                    curve: curve_name(&other),
                });
            }
        };
        PublicKey::from_der(der.as_bytes())
    }

    /// The public key of an RSA key pair from its big-endian modulus and public exponent
    /// (`CKA_MODULUS`, `CKA_PUBLIC_EXPONENT`).
    pub fn from_rsa_components(modulus: &[u8], exponent: &[u8]) -> Result<PublicKey, KeyError> {
        let invalid = |e: &dyn fmt::Display| KeyError::InvalidPublicKey {
            reason: e.to_string(),
        };
        let key = rsa::PublicKey::new(
            rsa::BoxedUint::from_be_slice_vartime(modulus),
            rsa::BoxedUint::from_be_slice_vartime(exponent),
        )
        .map_err(|e| invalid(&e))?;
        let der = key.to_public_key_der().map_err(|e| invalid(&e))?;
        PublicKey::from_der(der.as_bytes())
    }

    /// The ASN.1 DER form of a raw ECDSA signature `r || s` (what PKCS#11's `CKM_ECDSA` and
    /// most devices return) for this key, which is what verifiers of cosign signatures expect.
    pub fn ecdsa_der_from_raw(&self, raw: &[u8]) -> Result<Vec<u8>, SignError> {
        let malformed = || SignError::MalformedSignature {
            algorithm: self.algorithm(),
            key_id: self.id.clone(),
        };
        match self.key {
            VerifyingKey::P256(_) => p256::ecdsa::Signature::from_slice(raw)
                .map(|sig| sig.to_der().as_bytes().to_vec())
                .map_err(|_| malformed()),
            VerifyingKey::P384(_) => p384::ecdsa::Signature::from_slice(raw)
                .map(|sig| sig.to_der().as_bytes().to_vec())
                .map_err(|_| malformed()),
            _ => Err(SignError::UnsupportedAlgorithm {
                algorithm: self.algorithm(),
            }),
        }
    }

    /// The PEM `PUBLIC KEY` encoding, with a trailing newline.
    pub fn to_pem(&self) -> String {
        pem_encode(PUBLIC_KEY_LABEL, &self.der)
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The key id (SHA-256 of the DER SubjectPublicKeyInfo).
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self.key {
            VerifyingKey::P256(_) => KeyAlgorithm::EcdsaP256,
            VerifyingKey::P384(_) => KeyAlgorithm::EcdsaP384,
            VerifyingKey::P521(_) => KeyAlgorithm::EcdsaP521,
            VerifyingKey::Rsa(_) => KeyAlgorithm::Rsa,
            VerifyingKey::Ed25519(_) => KeyAlgorithm::Ed25519,
        }
    }

    /// Checks `signature` over exactly `message` (the bytes as stored, never re-serialised).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        use p256::ecdsa::signature::Verifier as _;
        let malformed = || SignatureError::Malformed {
            algorithm: self.algorithm(),
            key_id: self.id.clone(),
        };
        let mismatch = || SignatureError::Mismatch {
            key_id: self.id.clone(),
        };
        match &self.key {
            VerifyingKey::P256(key) => {
                let sig =
                    p256::ecdsa::DerSignature::from_bytes(signature).map_err(|_| malformed())?;
                key.verify(message, &sig).map_err(|_| mismatch())
            }
            VerifyingKey::P384(key) => {
                let sig =
                    p384::ecdsa::DerSignature::from_bytes(signature).map_err(|_| malformed())?;
                key.verify(message, &sig).map_err(|_| mismatch())
            }
            VerifyingKey::P521(key) => {
                let sig =
                    p521::ecdsa::DerSignature::from_bytes(signature).map_err(|_| malformed())?;
                key.verify(message, &sig).map_err(|_| mismatch())
            }
            VerifyingKey::Rsa(key) => {
                // cosign signs with PKCS#1 v1.5 for RSA keys; other tools use PSS. Both are
                // sound with SHA-256, so either form is accepted.
                if key
                    .pkcs1v15_verify::<sha2::Sha256>(message, signature)
                    .is_ok()
                    || key.pss_verify::<sha2::Sha256>(message, signature).is_ok()
                {
                    Ok(())
                } else {
                    Err(mismatch())
                }
            }
            VerifyingKey::Ed25519(key) => {
                let sig =
                    ed25519_dalek::Signature::from_slice(signature).map_err(|_| malformed())?;
                key.verify_strict(message, &sig).map_err(|_| mismatch())
            }
        }
    }

    /// The modulus size in bits, for RSA keys.
    pub fn rsa_bits(&self) -> Option<usize> {
        use rsa::traits::PublicKeyParts as _;
        match &self.key {
            VerifyingKey::Rsa(key) => Some(key.size() * 8),
            _ => None,
        }
    }

    /// Checks `signature` over exactly `message` with one fixed scheme (Binary
    /// Authorization's `signatureAlgorithm`), where [`PublicKey::verify`] accepts every scheme
    /// cosign and its peers use with the key's type. A scheme for another key type is a
    /// mismatch, never a fallback.
    pub fn verify_scheme(
        &self,
        scheme: SignatureScheme,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        let mismatch = || SignatureError::Mismatch {
            key_id: self.id.clone(),
        };
        match (scheme, &self.key) {
            (SignatureScheme::EcdsaP256Sha256, VerifyingKey::P256(_))
            | (SignatureScheme::EcdsaP384Sha384, VerifyingKey::P384(_))
            | (SignatureScheme::EcdsaP521Sha512, VerifyingKey::P521(_))
            | (SignatureScheme::Ed25519, VerifyingKey::Ed25519(_)) => {
                self.verify(message, signature)
            }
            (SignatureScheme::RsaPkcs1Sha256, VerifyingKey::Rsa(key)) => key
                .pkcs1v15_verify::<sha2::Sha256>(message, signature)
                .map_err(|_| mismatch()),
            (SignatureScheme::RsaPkcs1Sha512, VerifyingKey::Rsa(key)) => key
                .pkcs1v15_verify::<sha2::Sha512>(message, signature)
                .map_err(|_| mismatch()),
            (SignatureScheme::RsaPssSha256, VerifyingKey::Rsa(key)) => {
                pss_verify::<sha2::Sha256>(key, message, signature).map_err(|()| mismatch())
            }
            (SignatureScheme::RsaPssSha512, VerifyingKey::Rsa(key)) => {
                pss_verify::<sha2::Sha512>(key, message, signature).map_err(|()| mismatch())
            }
            _ => Err(SignatureError::SchemeMismatch {
                scheme,
                algorithm: self.algorithm(),
                key_id: self.id.clone(),
            }),
        }
    }
}

/// The kind of signature an X.509 certificate or a CMS signer info names, for
/// [`PublicKey::verify_pkix`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PkixSignature {
    /// ECDSA, ASN.1 DER signature, on P-256 or P-384.
    Ecdsa,
    /// RSASSA-PKCS1-v1_5.
    RsaPkcs1,
}

impl PublicKey {
    /// Checks a certificate's or a CMS signer's signature: `kind` over `message` hashed with
    /// `hash`, the pairing the signature algorithm names. Unlike [`PublicKey::verify`] the hash
    /// is not the key's usual one: CAs and TSAs sign SHA-384 digests with P-256 keys and SHA-512
    /// ones with RSA keys. A key of another kind than `kind` asks for (or P-521 or Ed25519,
    /// which no TSA uses) fails as a mismatch, never a fallback.
    pub(crate) fn verify_pkix(
        &self,
        kind: PkixSignature,
        hash: crate::timestamp::HashAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        use crate::timestamp::HashAlgorithm as H;
        use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
        let malformed = || SignatureError::Malformed {
            algorithm: self.algorithm(),
            key_id: self.id.clone(),
        };
        let mismatch = || SignatureError::Mismatch {
            key_id: self.id.clone(),
        };
        match (kind, &self.key) {
            (PkixSignature::Ecdsa, VerifyingKey::P256(key)) => {
                let sig =
                    p256::ecdsa::DerSignature::from_bytes(signature).map_err(|_| malformed())?;
                key.verify_prehash(&hash.digest(message), &sig)
                    .map_err(|_| mismatch())
            }
            (PkixSignature::Ecdsa, VerifyingKey::P384(key)) => {
                let sig =
                    p384::ecdsa::DerSignature::from_bytes(signature).map_err(|_| malformed())?;
                key.verify_prehash(&hash.digest(message), &sig)
                    .map_err(|_| mismatch())
            }
            (PkixSignature::RsaPkcs1, VerifyingKey::Rsa(key)) => match hash {
                H::Sha256 => key.pkcs1v15_verify::<sha2::Sha256>(message, signature),
                H::Sha384 => key.pkcs1v15_verify::<sha2::Sha384>(message, signature),
                H::Sha512 => key.pkcs1v15_verify::<sha2::Sha512>(message, signature),
            }
            .map_err(|_| mismatch()),
            _ => Err(mismatch()),
        }
    }
}

/// A private signing key (ECDSA P-256) with its public half.
///
/// The secret scalar is zeroized on drop (the `p256` crate does this) and never appears in
/// `Debug` output.
pub struct KeyPair {
    signing: p256::ecdsa::SigningKey,
    public: PublicKey,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &self.public)
            .field("private", &"<redacted>")
            .finish()
    }
}

impl KeyPair {
    /// An unencrypted PKCS#8 `PRIVATE KEY` PEM block (what `openssl genpkey` writes), for an
    /// ECDSA P-256 key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<KeyPair, KeyError> {
        let (label, der) = decode_pem(pem)?;
        let der = Zeroizing::new(der);
        if label != "PRIVATE KEY" {
            return Err(KeyError::UnexpectedLabel {
                found: label,
                expected: "\"PRIVATE KEY\" (unencrypted PKCS#8)",
            });
        }
        KeyPair::from_pkcs8_der(&der)
    }

    /// A fresh ECDSA P-256 key from the operating system's random number generator.
    pub fn generate_p256() -> Result<KeyPair, KeyError> {
        // Rejection sampling: a random 32-byte string is a valid scalar with overwhelming
        // probability; the loop is bounded anyway.
        for _ in 0..16 {
            let mut bytes = Zeroizing::new([0u8; 32]);
            fill_random(bytes.as_mut())?;
            if let Ok(signing) = p256::ecdsa::SigningKey::from_slice(bytes.as_ref()) {
                return KeyPair::from_signing_key(signing);
            }
        }
        Err(KeyError::Random {
            reason: "no valid P-256 scalar after 16 draws".into(),
        })
    }

    /// A key from a 32-byte big-endian P-256 scalar. For deterministic fixtures and tests.
    pub fn from_p256_scalar(bytes: &[u8]) -> Result<KeyPair, KeyError> {
        let signing = p256::ecdsa::SigningKey::from_slice(bytes).map_err(|e| {
            KeyError::InvalidPrivateKey {
                reason: e.to_string(),
            }
        })?;
        KeyPair::from_signing_key(signing)
    }

    fn from_signing_key(signing: p256::ecdsa::SigningKey) -> Result<KeyPair, KeyError> {
        let der = signing.verifying_key().to_public_key_der().map_err(|e| {
            KeyError::InvalidPublicKey {
                reason: e.to_string(),
            }
        })?;
        let public = PublicKey::from_der(der.as_bytes())?;
        Ok(KeyPair { signing, public })
    }

    /// Loads an unencrypted PKCS#8 DER private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<KeyPair, KeyError> {
        let invalid = |e: &dyn fmt::Display| KeyError::InvalidPrivateKey {
            reason: e.to_string(),
        };
        let info = pkcs8::PrivateKeyInfoRef::from_der(der).map_err(|e| invalid(&e))?;
        match info.algorithm.oid {
            OID_EC_PUBLIC_KEY => {
                let curve = info.algorithm.parameters_oid().map_err(|e| invalid(&e))?;
                if curve != OID_P256 {
                    return Err(KeyError::UnsupportedCurve {
                        curve: format!(
                            "{} for signing (signet signs with P-256)",
                            curve_name(&curve)
                        ),
                    });
                }
                let signing =
                    p256::ecdsa::SigningKey::from_pkcs8_der(der).map_err(|e| invalid(&e))?;
                KeyPair::from_signing_key(signing)
            }
            other => Err(KeyError::UnsupportedKeyType {
                algorithm: algorithm_name(&other),
                hint: " for signing: signet signs with ECDSA P-256 keys",
            }),
        }
    }

    /// Loads a cosign encrypted private key (either PEM label) with `password`.
    pub fn from_encrypted_pem(pem: &str, password: &[u8]) -> Result<KeyPair, KeyError> {
        let (label, body) = decode_pem(pem)?;
        match label.as_str() {
            SIGSTORE_PRIVATE_KEY_LABEL | COSIGN_PRIVATE_KEY_LABEL => {}
            PUBLIC_KEY_LABEL => return Err(KeyError::PublicKeyGiven { label }),
            _ => {
                return Err(KeyError::UnexpectedLabel {
                    found: label,
                    expected: "\"ENCRYPTED SIGSTORE PRIVATE KEY\" or \"ENCRYPTED COSIGN PRIVATE KEY\"",
                });
            }
        }
        let der = decrypt(&body, password)?;
        KeyPair::from_pkcs8_der(&der)
    }

    /// Encrypts this key with `password` in cosign's format (scrypt N=2^16, r=8, p=1; NaCl
    /// secretbox), PEM-labelled `ENCRYPTED SIGSTORE PRIVATE KEY`.
    pub fn to_encrypted_pem(&self, password: &[u8]) -> Result<String, KeyError> {
        let der = self
            .signing
            .to_pkcs8_der()
            .map_err(|e| KeyError::InvalidPrivateKey {
                reason: e.to_string(),
            })?;
        let body = encrypt(der.as_bytes(), password, SCRYPT_LOG_N_WRITE)?;
        Ok(pem_encode(SIGSTORE_PRIVATE_KEY_LABEL, &body))
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Signs `message` with ECDSA P-256/SHA-256; the signature is ASN.1 DER.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer as _;
        let sig: p256::ecdsa::Signature = self.signing.sign(message);
        sig.to_der().as_bytes().to_vec()
    }
}

impl Signer for KeyPair {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Never fails: the key is in memory.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(KeyPair::sign(self, message))
    }
}

/// The JSON document inside an encrypted key PEM (go-securesystemslib `encrypted`).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EncryptedKey {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cipher {
    name: String,
    nonce: String,
}

fn scrypt_key(password: &[u8], salt: &[u8], log_n: u8) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let params = scrypt::Params::new(log_n, SCRYPT_R, SCRYPT_P).map_err(|e| {
        KeyError::MalformedEncryptedKey {
            reason: format!("scrypt parameters: {e}"),
        }
    })?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password, salt, &params, key.as_mut()).map_err(|e| {
        KeyError::MalformedEncryptedKey {
            reason: format!("scrypt: {e}"),
        }
    })?;
    Ok(key)
}

fn encrypt(plaintext: &[u8], password: &[u8], log_n: u8) -> Result<Vec<u8>, KeyError> {
    use crypto_secretbox::aead::{Aead as _, KeyInit as _};
    let mut salt = [0u8; SALT_LEN];
    fill_random(&mut salt)?;
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    let key = scrypt_key(password, &salt, log_n)?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(key.as_ref().into());
    let sealed =
        cipher
            .encrypt(&nonce.into(), plaintext)
            .map_err(|_| KeyError::MalformedEncryptedKey {
                reason: "secretbox encryption failed".into(),
            })?;
    let doc = EncryptedKey {
        kdf: Kdf {
            name: "scrypt".into(),
            params: ScryptParams {
                n: 1u64 << log_n,
                r: SCRYPT_R,
                p: SCRYPT_P,
            },
            salt: B64.encode(salt),
        },
        cipher: Cipher {
            name: "nacl/secretbox".into(),
            nonce: B64.encode(nonce),
        },
        ciphertext: B64.encode(sealed),
    };
    serde_json::to_vec(&doc).map_err(|e| KeyError::MalformedEncryptedKey {
        reason: e.to_string(),
    })
}

fn decrypt(body: &[u8], password: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    use crypto_secretbox::aead::{Aead as _, KeyInit as _};
    let malformed = |reason: String| KeyError::MalformedEncryptedKey { reason };
    let doc: EncryptedKey =
        serde_json::from_slice(body).map_err(|e| malformed(format!("not cosign's JSON: {e}")))?;
    if doc.kdf.name != "scrypt" {
        return Err(KeyError::UnsupportedKdf { name: doc.kdf.name });
    }
    if doc.cipher.name != "nacl/secretbox" {
        return Err(KeyError::UnsupportedCipher {
            name: doc.cipher.name,
        });
    }
    let ScryptParams { n, r, p } = doc.kdf.params;
    let log_n = SCRYPT_LOG_N_ACCEPTED
        .into_iter()
        .find(|log_n| 1u64 << log_n == n)
        .filter(|_| r == SCRYPT_R && p == SCRYPT_P)
        .ok_or(KeyError::UnsupportedScryptParams { n, r, p })?;
    let salt = B64
        .decode(&doc.kdf.salt)
        .map_err(|e| malformed(format!("salt is not base64: {e}")))?;
    if salt.is_empty() {
        return Err(malformed("salt is empty".into()));
    }
    let nonce = B64
        .decode(&doc.cipher.nonce)
        .map_err(|e| malformed(format!("nonce is not base64: {e}")))?;
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|v: Vec<u8>| {
        malformed(format!(
            "nonce is {} bytes, secretbox needs {NONCE_LEN}",
            v.len()
        ))
    })?;
    let ciphertext = B64.decode(&doc.ciphertext).map_err(|e| {
        // A ciphertext cut off in the middle of a base64 quantum is the common way to get here.
        KeyError::TruncatedCiphertext {
            got: doc.ciphertext.len() * 3 / 4,
            expected: format!("and its base64 does not decode ({e})"),
        }
    })?;
    if ciphertext.len() <= TAG_LEN {
        return Err(KeyError::TruncatedCiphertext {
            got: ciphertext.len(),
            expected: format!("fewer than the {TAG_LEN}-byte authenticator and any key"),
        });
    }
    let key = scrypt_key(password, &salt, log_n)?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(key.as_ref().into());
    match cipher.decrypt(&nonce.into(), ciphertext.as_slice()) {
        Ok(plain) => Ok(Zeroizing::new(plain)),
        Err(_) => Err(diagnose_failed_decryption(&key, &nonce, &ciphertext)),
    }
}

/// Tells a truncated ciphertext from a wrong password once authentication has failed.
///
/// Both make the Poly1305 check fail. With the right key, the first plaintext bytes (decrypted
/// without authentication, used for this message only and then dropped) are the DER header of
/// the PKCS#8 SEQUENCE, which states the full length; if that length is more than the
/// ciphertext holds, the file was cut short. With a wrong key those bytes are noise, and the
/// chance that noise forms such a header is about one in a thousand.
fn diagnose_failed_decryption(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    ciphertext: &[u8],
) -> KeyError {
    use salsa20::cipher::{KeyIvInit as _, StreamCipher as _};
    let body = &ciphertext[TAG_LEN..];
    // secretbox uses the first 32 keystream bytes for the Poly1305 key; the message follows.
    let mut head = Zeroizing::new([0u8; 32 + 4]);
    let mut stream = salsa20::XSalsa20::new(key.into(), nonce.into());
    stream.apply_keystream(head.as_mut());
    let mut der_head = [0u8; 4];
    for (i, b) in der_head.iter_mut().enumerate() {
        *b = body.get(i).copied().unwrap_or(0) ^ head[32 + i];
    }
    let declared = match der_head {
        [0x30, 0x81, len, _] if len >= 0x80 => Some(3 + usize::from(len)),
        [0x30, 0x82, hi, lo] => Some(4 + (usize::from(hi) << 8 | usize::from(lo))),
        [0x30, len, _, _] if len < 0x80 => Some(2 + usize::from(len)),
        _ => None,
    };
    match declared {
        Some(total) if total > body.len() && total < 16 * 1024 => KeyError::TruncatedCiphertext {
            got: ciphertext.len(),
            expected: format!("the key inside declares {} bytes", total + TAG_LEN),
        },
        _ => KeyError::WrongPassword,
    }
}

fn fill_random(buf: &mut [u8]) -> Result<(), KeyError> {
    getrandom::fill(buf).map_err(|e| KeyError::Random {
        reason: e.to_string(),
    })
}

/// Decodes one PEM block. Lenient on layout (any line length, CRLF, surrounding text and
/// whitespace), strict on framing and base64: tools disagree on the former, never the latter.
fn decode_pem(pem: &str) -> Result<(String, Vec<u8>), KeyError> {
    let malformed = |reason: &str| KeyError::MalformedPem {
        reason: reason.to_string(),
    };
    let mut lines = pem
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("-----BEGIN "));
    let begin = lines
        .next()
        .ok_or_else(|| malformed("no \"-----BEGIN\" line"))?;
    let label = begin
        .strip_prefix("-----BEGIN ")
        .and_then(|l| l.strip_suffix("-----"))
        .ok_or_else(|| malformed("bad \"-----BEGIN\" line"))?;
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    let mut ended = false;
    for line in lines {
        if line == end {
            ended = true;
            break;
        }
        if line.starts_with("-----") {
            return Err(malformed(&format!("expected \"{end}\", found \"{line}\"")));
        }
        body.push_str(line);
    }
    if !ended {
        return Err(malformed(&format!("no \"{end}\" line")));
    }
    let der = B64
        .decode(body.as_bytes())
        .map_err(|e| malformed(&format!("body is not base64: {e}")))?;
    if der.is_empty() {
        return Err(malformed("empty body"));
    }
    Ok((label.to_string(), der))
}

fn pem_encode(label: &str, bytes: &[u8]) -> String {
    let b64 = B64.encode(bytes);
    let mut out = format!("-----BEGIN {label}-----\n");
    // Base64 is ASCII, so splitting into 64-byte chunks never splits a character.
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The SEC 1 point inside `point`: a DER OCTET STRING holding an uncompressed or compressed
/// point is unwrapped; anything else is taken as the point itself. The two cannot be confused:
/// a bare point's length byte would have to equal the rest of its length, which no curve's
/// point sizes allow (P-256: 65 or 33 bytes, P-384: 97 or 49).
fn unwrap_ec_point(point: &[u8]) -> &[u8] {
    // DER OCTET STRING: tag 0x04, then the length in short form (< 128) or as 0x81 and one
    // byte (P-521's 133-byte point); nothing longer is a point of any curve.
    let inner = match point {
        [0x04, 0x81, len, rest @ ..] if usize::from(*len) == rest.len() && *len >= 0x80 => rest,
        [0x04, len, rest @ ..] if usize::from(*len) == rest.len() && *len < 0x80 => rest,
        _ => return point,
    };
    if matches!(inner.first(), Some(0x02..=0x04)) {
        inner
    } else {
        point
    }
}

fn curve_name(oid: &Oid) -> String {
    match oid.to_string().as_str() {
        "1.3.132.0.10" => "secp256k1 (1.3.132.0.10)".into(),
        "1.3.132.0.35" => "P-521 (1.3.132.0.35)".into(),
        "1.3.132.0.34" => "P-384 (1.3.132.0.34)".into(),
        "1.2.840.10045.3.1.7" => "P-256 (1.2.840.10045.3.1.7)".into(),
        other => other.into(),
    }
}

fn algorithm_name(oid: &Oid) -> String {
    match *oid {
        OID_RSA => "RSA".into(),
        OID_ED25519 => "Ed25519".into(),
        _ => oid.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_key_hint_names_its_key_id_and_other_hints_name_none() {
        let id = KeyId::of_spki_der(b"some key");
        assert_eq!(KeyId::from_hint(&id.hint()), Some(id));
        assert_eq!(KeyId::from_hint("not base64!"), None);
        assert_eq!(KeyId::from_hint(&B64.encode([7u8; 20])), None);
        assert_eq!(KeyId::from_hint(""), None);
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let pair = KeyPair::generate_p256().unwrap();
        let sig = pair.sign(b"payload");
        pair.public_key().verify(b"payload", &sig).unwrap();
        assert_eq!(
            pair.public_key().verify(b"payloaD", &sig),
            Err(SignatureError::Mismatch {
                key_id: pair.public_key().id().clone()
            })
        );
    }

    #[test]
    fn encrypted_key_round_trip_and_wrong_password() {
        let pair = KeyPair::from_p256_scalar(&[7u8; 32]).unwrap();
        let pem = pair.to_encrypted_pem(b"correct horse").unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        let loaded = KeyPair::from_encrypted_pem(&pem, b"correct horse").unwrap();
        assert_eq!(loaded.public_key(), pair.public_key());
        assert_eq!(
            KeyPair::from_encrypted_pem(&pem, b"wrong").unwrap_err(),
            KeyError::WrongPassword
        );
    }

    #[test]
    fn key_id_is_sha256_of_spki_der() {
        let pair = KeyPair::from_p256_scalar(&[7u8; 32]).unwrap();
        let public = pair.public_key();
        assert_eq!(
            public.id().spki_digest(),
            Some(&Digest::sha256_of(public.der()))
        );
        assert_eq!(PublicKey::from_pem(&public.to_pem()).unwrap(), *public);
    }

    #[test]
    fn a_key_pair_is_a_signer_whose_signatures_verify() {
        let pair = KeyPair::from_p256_scalar(&[7u8; 32]).unwrap();
        let signer: &dyn Signer = &pair;
        let sig = signer.sign(b"message").unwrap();
        signer.public_key().verify(b"message", &sig).unwrap();
    }

    #[test]
    fn ec_points_bare_or_wrapped_give_the_same_key() {
        let pair = KeyPair::from_p256_scalar(&[7u8; 32]).unwrap();
        let point = pair.signing.verifying_key().to_sec1_point(false);
        let point = point.as_bytes();
        let params = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        let bare = PublicKey::from_ec_point(&params, point).unwrap();
        let mut wrapped = vec![0x04, point.len() as u8];
        wrapped.extend_from_slice(point);
        let wrapped = PublicKey::from_ec_point(&params, &wrapped).unwrap();
        assert_eq!(&bare, pair.public_key());
        assert_eq!(&wrapped, pair.public_key());
        // P-521 is verified but not signed with: not a device key signet accepts.
        let p521 = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
        assert!(matches!(
            PublicKey::from_ec_point(&p521, point),
            Err(KeyError::UnsupportedCurve { .. })
        ));
    }

    #[test]
    fn raw_ecdsa_signatures_become_der_that_verifies() {
        use p256::ecdsa::signature::Signer as _;
        let pair = KeyPair::from_p256_scalar(&[7u8; 32]).unwrap();
        let raw: p256::ecdsa::Signature = pair.signing.sign(b"message");
        let der = pair
            .public_key()
            .ecdsa_der_from_raw(raw.to_bytes().as_slice())
            .unwrap();
        pair.public_key().verify(b"message", &der).unwrap();
        assert!(matches!(
            pair.public_key().ecdsa_der_from_raw(&[1u8; 63]),
            Err(SignError::MalformedSignature { .. })
        ));
    }

    #[test]
    fn rsa_components_give_the_spki_of_the_key() {
        // Any odd 2048-bit modulus makes a well-formed public key.
        let modulus = [0xc3u8; 256];
        let key = PublicKey::from_rsa_components(&modulus, &[1, 0, 1]).unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::Rsa);
        assert_eq!(key.rsa_bits(), Some(2048));
        // Leading zero bytes, as some tokens pad the modulus, change nothing.
        let mut padded = vec![0u8];
        padded.extend_from_slice(&modulus);
        assert_eq!(
            PublicKey::from_rsa_components(&padded, &[0, 1, 0, 1]).unwrap(),
            key
        );
    }

    #[test]
    fn debug_never_shows_private_key() {
        let pair = KeyPair::from_p256_scalar(&[7u8; 32]).unwrap();
        let debug = format!("{pair:?}");
        assert!(debug.contains("<redacted>"));
        assert!(!debug.contains("0707"));
    }
}
