//! What a log entry's body vouches for, and whether that is the signature being verified.
//!
//! Bodies are the JSON Rekor canonicalized and hashed into the tree:
//!
//! - Rekor v1 (`sigstore/rekor`, `pkg/types/*`): `hashedrekord` 0.0.1, `dsse` 0.0.1,
//!   `intoto` 0.0.1 and 0.0.2; verifiers there are base64 of a PEM certificate or public key.
//! - Rekor v2 (`sigstore/rekor-tiles`, `api/proto/rekor/v2/*.proto`, proto3 JSON):
//!   `hashedrekord` 0.0.2 and `dsse` 0.0.2; verifiers are DER (`x509Certificate.rawBytes` or
//!   `publicKey.rawBytes`). rekor-tiles deprecates `dsse` 0.0.2 in favour of a `hashedrekord`
//!   over the SHA-256 of the envelope's PAE, so a DSSE signature is matched by that too.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::TlogError;
use super::entry::decode_b64;
use crate::digest::{Algorithm, Digest};
use crate::dsse::{Envelope, pae};
use crate::keys::PublicKey;

/// The kinds of entries signet can match against a signature.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// Rekor v1 `hashedrekord` 0.0.1: an artifact digest, a signature and its verifier.
    HashedRekordV001,
    /// Rekor v1 `dsse` 0.0.1: a DSSE payload hash and its signatures with verifiers.
    DsseV001,
    /// Rekor v1 `intoto` 0.0.1: a DSSE payload hash and the key that signed it.
    IntotoV001,
    /// Rekor v1 `intoto` 0.0.2: a DSSE envelope's payload hash and signatures with verifiers.
    IntotoV002,
    /// Rekor v2 `hashedrekord` 0.0.2.
    HashedRekordV002,
    /// Rekor v2 `dsse` 0.0.2.
    DsseV002,
}

impl EntryKind {
    /// The kind as Rekor names it.
    pub fn kind(self) -> &'static str {
        match self {
            EntryKind::HashedRekordV001 | EntryKind::HashedRekordV002 => "hashedrekord",
            EntryKind::DsseV001 | EntryKind::DsseV002 => "dsse",
            EntryKind::IntotoV001 | EntryKind::IntotoV002 => "intoto",
        }
    }

    /// The kind's version.
    pub fn version(self) -> &'static str {
        match self {
            EntryKind::HashedRekordV001 | EntryKind::DsseV001 | EntryKind::IntotoV001 => "0.0.1",
            EntryKind::IntotoV002 | EntryKind::HashedRekordV002 | EntryKind::DsseV002 => "0.0.2",
        }
    }

    fn of(kind: &str, version: &str) -> Option<EntryKind> {
        Some(match (kind, version) {
            ("hashedrekord", "0.0.1") => EntryKind::HashedRekordV001,
            ("dsse", "0.0.1") => EntryKind::DsseV001,
            ("intoto", "0.0.1") => EntryKind::IntotoV001,
            ("intoto", "0.0.2") => EntryKind::IntotoV002,
            ("hashedrekord", "0.0.2") => EntryKind::HashedRekordV002,
            ("dsse", "0.0.2") => EntryKind::DsseV002,
            _ => return None,
        })
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), self.version())
    }
}

/// Who signed, as the log must name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedSigner(Signer);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Signer {
    /// A certificate, as DER.
    Certificate(Vec<u8>),
    /// A public key, as DER SubjectPublicKeyInfo.
    PublicKey(Vec<u8>),
}

impl ExpectedSigner {
    /// A certificate (keyless signing), as DER: the log must name this very certificate.
    pub fn certificate(der: impl Into<Vec<u8>>) -> ExpectedSigner {
        ExpectedSigner(Signer::Certificate(der.into()))
    }

    /// A public key: the log must name this key (not a certificate for it).
    pub fn public_key(key: &PublicKey) -> ExpectedSigner {
        ExpectedSigner(Signer::PublicKey(key.der().to_vec()))
    }

    fn what(&self) -> &'static str {
        match self.0 {
            Signer::Certificate(_) => "certificate",
            Signer::PublicKey(_) => "public key",
        }
    }

    /// Whether the verifier a body names is this signer (compared as DER).
    fn is(&self, verifier: &Verifier) -> bool {
        match (&self.0, verifier) {
            (Signer::Certificate(der), Verifier::Certificate(got)) => der == got,
            (Signer::PublicKey(der), Verifier::PublicKey(got)) => der == got,
            _ => false,
        }
    }
}

/// The signed content, as the entry must describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Content {
    /// A signature over an artifact, known by its digest.
    Message { digest: Digest, signature: Vec<u8> },
    /// A DSSE envelope.
    Dsse {
        payload_type: String,
        payload: Vec<u8>,
        signatures: Vec<Vec<u8>>,
    },
}

/// What a log entry must vouch for: this signed content, signed by this signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryExpectation {
    content: Content,
    signer: ExpectedSigner,
}

impl EntryExpectation {
    /// A signature over an artifact whose digest is `digest` (for a cosign `.sig` layer: the
    /// SHA-256 of the simple-signing payload bytes; for a bundle's message signature: the
    /// artifact digest). As with DSSE, the caller verifies the signature itself; the entry
    /// vouches that the log saw it.
    pub fn message_signature(
        digest: Digest,
        signature: Vec<u8>,
        signer: ExpectedSigner,
    ) -> EntryExpectation {
        EntryExpectation {
            content: Content::Message { digest, signature },
            signer,
        }
    }

    /// A DSSE envelope, one of whose signatures is `signer`'s. Fails when the envelope's
    /// payload or signatures are not base64.
    ///
    /// The entry is matched on the payload hash and a (signature, signer) pair; the payload
    /// type is bound through that signature, so the caller must have verified it over the
    /// envelope's PAE (as it does anyway before trusting the payload).
    pub fn dsse(
        envelope: &Envelope,
        signer: ExpectedSigner,
    ) -> Result<EntryExpectation, TlogError> {
        let bad = |what: &str| TlogError::MalformedExpectation {
            reason: format!("the DSSE envelope's {what} is not base64"),
        };
        let payload = decode_b64(&envelope.payload).ok_or_else(|| bad("payload"))?;
        let signatures = envelope
            .signatures
            .iter()
            .map(|s| decode_b64(&s.sig).ok_or_else(|| bad("signature")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EntryExpectation {
            content: Content::Dsse {
                payload_type: envelope.payload_type.clone(),
                payload,
                signatures,
            },
            signer,
        })
    }
}

/// A verifier named in a body.
enum Verifier {
    Certificate(Vec<u8>),
    PublicKey(Vec<u8>),
}

fn malformed(kind: EntryKind, reason: impl Into<String>) -> TlogError {
    TlogError::MalformedBody {
        kind,
        reason: reason.into(),
    }
}

fn mismatch(what: impl Into<String>) -> TlogError {
    TlogError::BodyMismatch { what: what.into() }
}

fn str_at<'a>(v: &'a Value, kind: EntryKind, pointer: &str) -> Result<&'a str, TlogError> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .ok_or_else(|| malformed(kind, format!("{} is not a string", &pointer[1..])))
}

fn b64_at(v: &Value, kind: EntryKind, pointer: &str) -> Result<Vec<u8>, TlogError> {
    decode_b64(str_at(v, kind, pointer)?)
        .ok_or_else(|| malformed(kind, format!("{} is not base64", &pointer[1..])))
}

/// A Rekor v1 verifier: base64 of a PEM certificate or public key.
fn pem_verifier(v: &Value, kind: EntryKind, pointer: &str) -> Result<Verifier, TlogError> {
    let pem = b64_at(v, kind, pointer)?;
    let pem = std::str::from_utf8(&pem)
        .map_err(|_| malformed(kind, format!("{} is not a PEM block", &pointer[1..])))?;
    let (label, der) = decode_pem(pem)
        .ok_or_else(|| malformed(kind, format!("{} is not a PEM block", &pointer[1..])))?;
    match label.as_str() {
        "CERTIFICATE" => Ok(Verifier::Certificate(der)),
        "PUBLIC KEY" => Ok(Verifier::PublicKey(der)),
        other => Err(malformed(
            kind,
            format!("{} is a PEM \"{other}\"", &pointer[1..]),
        )),
    }
}

/// A Rekor v2 verifier: `{"x509Certificate": {"rawBytes"}}` or `{"publicKey": {"rawBytes"}}`.
fn der_verifier(v: &Value, kind: EntryKind, pointer: &str) -> Result<Verifier, TlogError> {
    let verifier = v
        .pointer(pointer)
        .ok_or_else(|| malformed(kind, format!("{} is missing", &pointer[1..])))?;
    if verifier.get("x509Certificate").is_some() {
        Ok(Verifier::Certificate(b64_at(
            verifier,
            kind,
            "/x509Certificate/rawBytes",
        )?))
    } else if verifier.get("publicKey").is_some() {
        Ok(Verifier::PublicKey(b64_at(
            verifier,
            kind,
            "/publicKey/rawBytes",
        )?))
    } else {
        Err(malformed(
            kind,
            format!(
                "{} has neither x509Certificate nor publicKey",
                &pointer[1..]
            ),
        ))
    }
}

/// Decodes one PEM block (any line length, surrounding whitespace). `None` if it is not one.
fn decode_pem(text: &str) -> Option<(String, Vec<u8>)> {
    let mut lines = text.lines().map(str::trim).skip_while(|l| l.is_empty());
    let label = lines
        .next()?
        .strip_prefix("-----BEGIN ")?
        .strip_suffix("-----")?
        .to_string();
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    for line in lines {
        if line == end {
            return B64.decode(body).ok().map(|der| (label, der));
        }
        if line.starts_with("-----") {
            return None;
        }
        body.push_str(line);
    }
    None
}

/// A v1 `{algorithm, value}` hash (hex) equals `expected`'s SHA-256.
fn hex_hash_is(
    v: &Value,
    kind: EntryKind,
    pointer: &str,
    expected: &[u8],
) -> Result<bool, TlogError> {
    let algorithm = str_at(v, kind, &format!("{pointer}/algorithm"))?;
    if algorithm != "sha256" {
        return Err(malformed(
            kind,
            format!(
                "{} algorithm is \"{algorithm}\", expected sha256",
                &pointer[1..]
            ),
        ));
    }
    let value = str_at(v, kind, &format!("{pointer}/value"))?;
    Ok(value.eq_ignore_ascii_case(&hex::encode(Sha256::digest(expected))))
}

/// A v2 `HashOutput` (`{algorithm: "SHA2_256", digest: b64}`) as our digest type.
fn hash_output(v: &Value, kind: EntryKind, pointer: &str) -> Result<Digest, TlogError> {
    let algorithm = match str_at(v, kind, &format!("{pointer}/algorithm"))? {
        "SHA2_256" => Algorithm::Sha256,
        "SHA2_512" => Algorithm::Sha512,
        other => {
            return Err(malformed(
                kind,
                format!("{} algorithm {other} is not supported", &pointer[1..]),
            ));
        }
    };
    let raw = b64_at(v, kind, &format!("{pointer}/digest"))?;
    Digest::from_hex(algorithm, &hex::encode(raw)).map_err(|e| malformed(kind, e.to_string()))
}

/// Reads the body, checks it against the entry's declared kind (when it declares one), and
/// checks that it vouches for `expected`. Returns the body's kind.
pub(crate) fn match_body(
    body: &[u8],
    declared: Option<(&str, &str)>,
    expected: &EntryExpectation,
) -> Result<EntryKind, TlogError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| TlogError::MalformedEntry {
        reason: format!("canonicalizedBody is not JSON: {e}"),
    })?;
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or_default();
    let version = v
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let Some((dk, dv)) = declared
        && (dk, dv) != (kind, version)
    {
        return Err(TlogError::KindMismatch {
            declared: format!("{dk} {dv}"),
            body: format!("{kind} {version}"),
        });
    }
    let entry_kind = EntryKind::of(kind, version).ok_or_else(|| TlogError::UnsupportedKind {
        kind: kind.to_string(),
        version: version.to_string(),
    })?;
    let signer = &expected.signer;
    let wrong_signer = || {
        mismatch(format!(
            "signer: the signature it logs was made by another {}",
            signer.what()
        ))
    };
    match (&expected.content, entry_kind) {
        (Content::Message { digest, signature }, EntryKind::HashedRekordV001) => {
            let algorithm = str_at(&v, entry_kind, "/spec/data/hash/algorithm")?;
            let value = str_at(&v, entry_kind, "/spec/data/hash/value")?;
            if algorithm != digest.algorithm().as_str() || !value.eq_ignore_ascii_case(digest.hex())
            {
                return Err(mismatch(format!(
                    "artifact: it logs {algorithm}:{value}, the signature is over {digest}"
                )));
            }
            if b64_at(&v, entry_kind, "/spec/signature/content")? != *signature {
                return Err(mismatch("signature"));
            }
            if !signer.is(&pem_verifier(
                &v,
                entry_kind,
                "/spec/signature/publicKey/content",
            )?) {
                return Err(wrong_signer());
            }
        }
        (Content::Message { digest, signature }, EntryKind::HashedRekordV002) => {
            let logged = hash_output(&v, entry_kind, "/spec/hashedRekordV002/data")?;
            if logged != *digest {
                return Err(mismatch(format!(
                    "artifact: it logs {logged}, the signature is over {digest}"
                )));
            }
            if b64_at(&v, entry_kind, "/spec/hashedRekordV002/signature/content")? != *signature {
                return Err(mismatch("signature"));
            }
            if !signer.is(&der_verifier(
                &v,
                entry_kind,
                "/spec/hashedRekordV002/signature/verifier",
            )?) {
                return Err(wrong_signer());
            }
        }
        (Content::Message { .. }, _) => {
            return Err(mismatch(format!(
                "kind of content: a {entry_kind} entry logs a DSSE envelope, not a message signature"
            )));
        }
        (
            Content::Dsse {
                payload_type,
                payload,
                signatures,
            },
            kind,
        ) => {
            match_dsse(&v, kind, signer, payload_type, payload, signatures)?;
        }
    }
    Ok(entry_kind)
}

/// Whether some logged (signature, verifier) pair is one of the envelope's signatures made by
/// `signer`.
fn has_pair(
    pairs: impl IntoIterator<Item = Result<(Vec<u8>, Verifier), TlogError>>,
    signatures: &[Vec<u8>],
    signer: &ExpectedSigner,
) -> Result<(bool, bool), TlogError> {
    let (mut sig_seen, mut pair_seen) = (false, false);
    for pair in pairs {
        let (sig, verifier) = pair?;
        if signatures.contains(&sig) {
            sig_seen = true;
            if signer.is(&verifier) {
                pair_seen = true;
            }
        }
    }
    Ok((sig_seen, pair_seen))
}

fn match_dsse(
    v: &Value,
    kind: EntryKind,
    signer: &ExpectedSigner,
    payload_type: &str,
    payload: &[u8],
    signatures: &[Vec<u8>],
) -> Result<(), TlogError> {
    let wrong_payload = || mismatch("DSSE payload: its payload hash differs from the envelope's");
    let list = |pointer: &str| -> Result<Vec<Value>, TlogError> {
        match v.pointer(pointer) {
            Some(Value::Array(items)) if items.len() <= 64 => Ok(items.clone()),
            Some(Value::Array(items)) => Err(malformed(
                kind,
                format!("{} has {} items", &pointer[1..], items.len()),
            )),
            _ => Err(malformed(kind, format!("{} is not a list", &pointer[1..]))),
        }
    };
    let (sig_seen, pair_seen) = match kind {
        EntryKind::DsseV001 => {
            if !hex_hash_is(v, kind, "/spec/payloadHash", payload)? {
                return Err(wrong_payload());
            }
            // `envelopeHash` is not checked: Rekor hashes the envelope JSON exactly as the
            // client submitted it (rekor `pkg/types/dsse/v0.0.1/entry.go`, `Unmarshal`), so it
            // depends on that client's serialisation (key order, an empty `keyid` kept or not)
            // and cannot be recomputed from the bundle's envelope in general. It adds nothing:
            // the payload hash binds the payload, and the logged signature, made over
            // PAE(payloadType, payload), binds the payload type.
            let items = list("/spec/signatures")?;
            has_pair(
                items.iter().map(|s| {
                    Ok((
                        b64_at(s, kind, "/signature")?,
                        pem_verifier(s, kind, "/verifier")?,
                    ))
                }),
                signatures,
                signer,
            )?
        }
        EntryKind::IntotoV002 => {
            if !hex_hash_is(v, kind, "/spec/content/payloadHash", payload)? {
                return Err(wrong_payload());
            }
            let logged_type = str_at(v, kind, "/spec/content/envelope/payloadType")?;
            if logged_type != payload_type {
                return Err(mismatch(format!(
                    "DSSE payload type: it logs \"{logged_type}\", the envelope has \"{payload_type}\""
                )));
            }
            let items = list("/spec/content/envelope/signatures")?;
            has_pair(
                items.iter().map(|s| {
                    // Rekor stores the envelope's base64 signature string as bytes, so the
                    // body holds base64 of base64.
                    let inner = b64_at(s, kind, "/sig")?;
                    let sig = std::str::from_utf8(&inner)
                        .ok()
                        .and_then(decode_b64)
                        .ok_or_else(|| malformed(kind, "envelope signature is not base64"))?;
                    Ok((sig, pem_verifier(s, kind, "/publicKey")?))
                }),
                signatures,
                signer,
            )?
        }
        EntryKind::IntotoV001 => {
            // intoto 0.0.1 logs the payload hash and the key, not the signature: it vouches
            // that this signer submitted an envelope over this payload.
            if !hex_hash_is(v, kind, "/spec/content/payloadHash", payload)? {
                return Err(wrong_payload());
            }
            let ok = signer.is(&pem_verifier(v, kind, "/spec/publicKey")?);
            (true, ok)
        }
        EntryKind::DsseV002 => {
            let logged = hash_output(v, kind, "/spec/dsseV002/payloadHash")?;
            if logged != Digest::of(logged.algorithm(), payload) {
                return Err(wrong_payload());
            }
            let items = list("/spec/dsseV002/signatures")?;
            has_pair(
                items.iter().map(|s| {
                    Ok((
                        b64_at(s, kind, "/content")?,
                        der_verifier(s, kind, "/verifier")?,
                    ))
                }),
                signatures,
                signer,
            )?
        }
        EntryKind::HashedRekordV001 | EntryKind::HashedRekordV002 => {
            // A DSSE signature logged as a hashedrekord over the SHA-256 of its PAE, what
            // rekor-tiles asks clients to do instead of dsse 0.0.2.
            let pae_digest = Digest::sha256_of(&pae(payload_type, payload));
            let (logged, sig, verifier) = if kind == EntryKind::HashedRekordV001 {
                let algorithm = str_at(v, kind, "/spec/data/hash/algorithm")?;
                let value = str_at(v, kind, "/spec/data/hash/value")?;
                let logged = algorithm
                    .parse::<Algorithm>()
                    .ok()
                    .and_then(|a| Digest::from_hex(a, &value.to_ascii_lowercase()).ok())
                    .ok_or_else(|| malformed(kind, "spec.data.hash is not a digest"))?;
                (
                    logged,
                    b64_at(v, kind, "/spec/signature/content")?,
                    pem_verifier(v, kind, "/spec/signature/publicKey/content")?,
                )
            } else {
                (
                    hash_output(v, kind, "/spec/hashedRekordV002/data")?,
                    b64_at(v, kind, "/spec/hashedRekordV002/signature/content")?,
                    der_verifier(v, kind, "/spec/hashedRekordV002/signature/verifier")?,
                )
            };
            if logged != pae_digest {
                return Err(mismatch(format!(
                    "artifact: it logs {logged}, the envelope's signed bytes (PAE) are {pae_digest}"
                )));
            }
            has_pair([Ok((sig, verifier))], signatures, signer)?
        }
    };
    if !sig_seen {
        return Err(mismatch("signature: none it logs is the envelope's"));
    }
    if !pair_seen {
        return Err(mismatch(format!(
            "signer: the envelope's signature it logs was made by another {}",
            signer.what()
        )));
    }
    Ok(())
}
