//! Google Binary Authorization's own attestations: the gcloud signature payload, Grafeas
//! (Container Analysis) attestation occurrences, and their verification with the PKIX or PGP
//! keys of a Binary Authorization attestor.
//!
//! An attestation is a simple-signing payload (what `gcloud container binauthz
//! create-signature-payload` prints) and one or more signatures over its exact bytes, each
//! naming the key that made it by `publicKeyId`: for PKIX keys the attestor key's `id` (an RFC
//! 6920 `ni:///sha-256;…` URI unless the user chose one), for PGP keys its fingerprint. A PGP
//! signature is a signed OpenPGP message that carries the payload itself; the payload it
//! carries must be the stored payload, byte for byte.
//!
//! signet stores each occurrence in the image's registry as a referrer of the digest its
//! `resourceUri` names: an OCI manifest of artifact type [`ARTIFACT_TYPE`] whose one layer is
//! the occurrence in Grafeas v1 JSON ([`Occurrence::to_json`]), so it can go back to Container
//! Analysis unchanged.
//!
//! ```
//! use signet_core::binauthz;
//! let digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
//! let payload = binauthz::payload("gcr.io/shop/cart", &digest);
//! assert!(payload.starts_with(b"{\n  \"critical\": {\n    \"identity\": {\n"));
//! assert!(payload.ends_with(b"}\n"));
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::keys::{KeyId, PublicKey, SignatureScheme};
use crate::pgp::{PgpError, PgpPublicKey};
use crate::reference::ImageRef;
use crate::simplesigning::{SimpleSigning, SimpleSigningError};
use crate::verified::Verified;

/// The artifact type (and layer media type) of a stored Binary Authorization occurrence.
pub const ARTIFACT_TYPE: &str = "application/vnd.dev.signet.binauthz.occurrence.v1+json";
/// The `critical.type` gcloud writes.
pub const PAYLOAD_TYPE: &str = "Google cloud binauthz container signature";
/// Annotation on the stored manifest: the occurrence's `noteName`.
pub const NOTE_ANNOTATION: &str = "dev.signet.binauthz.note";
/// Annotation on the stored manifest: the occurrence's `name`.
pub const OCCURRENCE_ANNOTATION: &str = "dev.signet.binauthz.occurrence";
/// Annotation on the stored manifest: the signatures' `publicKeyId`s, comma-separated.
pub const KEY_IDS_ANNOTATION: &str = "dev.signet.binauthz.publicKeyIds";

/// Largest payload accepted (a gcloud payload is about 300 bytes).
pub const MAX_PAYLOAD_BYTES: usize = 64 << 10;
/// Largest signature accepted (a PGP message carries the payload, so it may be larger).
pub const MAX_SIGNATURE_BYTES: usize = 256 << 10;
/// Most signatures on one occurrence.
pub const MAX_SIGNATURES: usize = 16;
/// Most occurrences in one file given to `signet binauthz import`.
pub const MAX_OCCURRENCES: usize = 10_000;
/// Largest occurrence list read from one file.
pub const MAX_LIST_BYTES: usize = 64 << 20;
/// Longest name, note name, resource URI or key id.
const MAX_NAME_BYTES: usize = 2048;

/// The exact payload `gcloud container binauthz create-signature-payload` prints for
/// `repository@digest`: JSON with sorted keys, two-space indentation, ASCII only, and a
/// trailing newline (gcloud's `MakeSignaturePayload`).
pub fn payload(repository: &str, digest: &Digest) -> Vec<u8> {
    let mut out = String::with_capacity(256);
    out.push_str("{\n  \"critical\": {\n    \"identity\": {\n      \"docker-reference\": ");
    ascii_json_string(&mut out, repository);
    out.push_str("\n    },\n    \"image\": {\n      \"docker-manifest-digest\": ");
    ascii_json_string(&mut out, &digest.to_string());
    out.push_str("\n    },\n    \"type\": ");
    ascii_json_string(&mut out, PAYLOAD_TYPE);
    out.push_str("\n  }\n}\n");
    out.into_bytes()
}

/// A JSON string as Python's `json.dumps(ensure_ascii=True)` writes it.
fn ascii_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

/// The `id` Binary Authorization gives a PKIX key when the user sets none: the RFC 6920
/// `ni:///sha-256;` URI of its DER SubjectPublicKeyInfo (base64url, no padding).
pub fn ni_key_id(key: &PublicKey) -> String {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(key.der());
    format!("ni:///sha-256;{}", URL_SAFE_NO_PAD.encode(digest))
}

/// Binary Authorization's `signatureAlgorithm` names and the scheme each one is; `None` for a
/// name it does not define. `SIGNATURE_ALGORITHM_UNSPECIFIED` is not here: it names no scheme.
pub fn signature_algorithm(name: &str) -> Option<SignatureScheme> {
    Some(match name {
        "ECDSA_P256_SHA256" | "EC_SIGN_P256_SHA256" => SignatureScheme::EcdsaP256Sha256,
        "ECDSA_P384_SHA384" | "EC_SIGN_P384_SHA384" => SignatureScheme::EcdsaP384Sha384,
        "ECDSA_P521_SHA512" | "EC_SIGN_P521_SHA512" => SignatureScheme::EcdsaP521Sha512,
        "RSA_PSS_2048_SHA256"
        | "RSA_PSS_3072_SHA256"
        | "RSA_PSS_4096_SHA256"
        | "RSA_SIGN_PSS_2048_SHA256"
        | "RSA_SIGN_PSS_3072_SHA256"
        | "RSA_SIGN_PSS_4096_SHA256" => SignatureScheme::RsaPssSha256,
        "RSA_PSS_4096_SHA512" | "RSA_SIGN_PSS_4096_SHA512" => SignatureScheme::RsaPssSha512,
        "RSA_SIGN_PKCS1_2048_SHA256"
        | "RSA_SIGN_PKCS1_3072_SHA256"
        | "RSA_SIGN_PKCS1_4096_SHA256" => SignatureScheme::RsaPkcs1Sha256,
        "RSA_SIGN_PKCS1_4096_SHA512" => SignatureScheme::RsaPkcs1Sha512,
        _ => return None,
    })
}

/// The RSA modulus size a `signatureAlgorithm` name fixes (`RSA_PSS_3072_SHA256`: 3072).
pub fn signature_algorithm_rsa_bits(name: &str) -> Option<usize> {
    ["2048", "3072", "4096"]
        .into_iter()
        .find(|bits| name.starts_with("RSA_") && name.contains(&format!("_{bits}_")))
        .and_then(|bits| bits.parse().ok())
}

/// One signature of an attestation occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The key it names (`publicKeyId`).
    pub public_key_id: String,
    /// The signature bytes (for PGP keys: the signed OpenPGP message).
    pub signature: Vec<u8>,
}

/// What an occurrence attests with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attestation {
    /// Grafeas v1 `attestation` (and v1beta1 `genericSignedAttestation`): the payload and
    /// signatures over its exact bytes.
    Signed {
        /// `serializedPayload`, decoded.
        payload: Vec<u8>,
        /// `signatures`.
        signatures: Vec<Signature>,
    },
    /// The older `pgpSignedAttestation`: a signed OpenPGP message that carries the payload.
    Pgp {
        /// The OpenPGP message (armoured or binary), as stored.
        message: Vec<u8>,
        /// `pgpKeyId`: the fingerprint of the key that signed.
        key_id: String,
    },
}

/// A Grafeas attestation occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// `name` (`projects/P/occurrences/ID`), when it has one.
    pub name: Option<String>,
    /// `noteName` (`projects/P/notes/N`), when it has one.
    pub note_name: Option<String>,
    /// `resourceUri`, as written (`https://REGISTRY/PATH@sha256:…`, with or without scheme).
    pub resource_uri: String,
    /// `createTime`, as written, when present.
    pub create_time: Option<String>,
    /// The attestation.
    pub attestation: Attestation,
}

/// Why an occurrence could not be read.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum OccurrenceError {
    /// Not JSON, or not the shape of an occurrence list.
    #[error("malformed occurrence JSON: {reason}")]
    Json {
        /// What is wrong.
        reason: String,
    },
    /// A field is missing, of the wrong type, or not valid.
    #[error("{field}: {reason}")]
    Field {
        /// Which field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A size or count limit.
    #[error("{what} is {size}, more than the limit of {limit}")]
    TooLarge {
        /// What.
        what: &'static str,
        /// How large it is.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A kind of occurrence that is not an attestation.
    #[error("occurrence kind is `{kind}`, not ATTESTATION")]
    NotAttestation {
        /// The kind found.
        kind: String,
    },
    /// The resource URI does not name an image by digest.
    #[error("resourceUri `{uri}` does not name an image by digest: {reason}")]
    ResourceUri {
        /// The URI.
        uri: String,
        /// Why.
        reason: String,
    },
    /// The payload names another digest than the resource URI.
    #[error("the payload attests {payload}, but resourceUri names {resource}")]
    DigestMismatch {
        /// The digest in the payload.
        payload: Digest,
        /// The digest in the resource URI.
        resource: Digest,
    },
    /// The payload is not a simple-signing payload.
    #[error("{0}")]
    Payload(#[source] SimpleSigningError),
    /// The payload a PGP message carries cannot be read.
    #[error("{0}")]
    Pgp(#[source] PgpError),
}

fn field(field: &'static str, reason: impl Into<String>) -> OccurrenceError {
    OccurrenceError::Field {
        field,
        reason: reason.into(),
    }
}

/// Decodes base64 as Google's JSON APIs write bytes (standard or URL-safe, padded or not).
fn decode_bytes(name: &'static str, text: &str, limit: usize) -> Result<Vec<u8>, OccurrenceError> {
    let text = text.trim();
    // The decoded size, known from the length: refuse before decoding what cannot fit.
    let padding = text.bytes().rev().take_while(|&b| b == b'=').count();
    let size = (text.len() / 4 * 3 + [0, 0, 1, 2][text.len() % 4]).saturating_sub(padding);
    if size > limit {
        return Err(OccurrenceError::TooLarge {
            what: name,
            size,
            limit,
        });
    }
    let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
        .ok_or_else(|| field(name, "not base64"))?;
    if bytes.len() > limit {
        return Err(OccurrenceError::TooLarge {
            what: name,
            size: bytes.len(),
            limit,
        });
    }
    Ok(bytes)
}

fn string<'v>(
    object: &'v Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'v str>, OccurrenceError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() > MAX_NAME_BYTES => Err(OccurrenceError::TooLarge {
            what: name,
            size: s.len(),
            limit: MAX_NAME_BYTES,
        }),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(field(name, "not a string")),
    }
}

fn object<'v>(
    value: &'v Value,
    name: &'static str,
) -> Result<&'v Map<String, Value>, OccurrenceError> {
    value
        .as_object()
        .ok_or_else(|| field(name, "not a JSON object"))
}

impl Occurrence {
    /// Reads a file of occurrences: a JSON list (what `gcloud container binauthz attestations
    /// list --format=json` prints), a Grafeas `ListOccurrencesResponse` (`{"occurrences":
    /// […]}`), or one occurrence. The outer error is about the file; each item is read on its
    /// own, so one bad occurrence does not hide the others; each comes with its `name` when it
    /// has a readable one, so a refusal can name it.
    #[allow(
        clippy::type_complexity,
        reason = "a list of (name, result) pairs reads plainly"
    )]
    pub fn parse_list(
        bytes: &[u8],
    ) -> Result<Vec<(Option<String>, Result<Occurrence, OccurrenceError>)>, OccurrenceError> {
        if bytes.len() > MAX_LIST_BYTES {
            return Err(OccurrenceError::TooLarge {
                what: "occurrence file",
                size: bytes.len(),
                limit: MAX_LIST_BYTES,
            });
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| OccurrenceError::Json {
            reason: e.to_string(),
        })?;
        let items = match value {
            Value::Array(items) => items,
            Value::Object(mut map) if map.contains_key("occurrences") => {
                match map.remove("occurrences") {
                    Some(Value::Array(items)) => items,
                    _ => return Err(field("occurrences", "not a JSON list")),
                }
            }
            one @ Value::Object(_) => vec![one],
            _ => {
                return Err(OccurrenceError::Json {
                    reason: "expected a list of occurrences, a ListOccurrencesResponse or one \
                             occurrence"
                        .into(),
                });
            }
        };
        if items.len() > MAX_OCCURRENCES {
            return Err(OccurrenceError::TooLarge {
                what: "number of occurrences in one file",
                size: items.len(),
                limit: MAX_OCCURRENCES,
            });
        }
        Ok(items
            .iter()
            .map(|item| {
                let name = item
                    .get("name")
                    .and_then(Value::as_str)
                    .filter(|n| n.len() <= MAX_NAME_BYTES)
                    .map(str::to_string);
                (name, Occurrence::from_value(item))
            })
            .collect())
    }

    /// Parses the stored form ([`Occurrence::to_json`]) or any one occurrence.
    pub fn from_json(bytes: &[u8]) -> Result<Occurrence, OccurrenceError> {
        if bytes.len() > MAX_PAYLOAD_BYTES + MAX_SIGNATURES * MAX_SIGNATURE_BYTES * 2 {
            return Err(OccurrenceError::TooLarge {
                what: "occurrence",
                size: bytes.len(),
                limit: MAX_PAYLOAD_BYTES + MAX_SIGNATURES * MAX_SIGNATURE_BYTES * 2,
            });
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| OccurrenceError::Json {
            reason: e.to_string(),
        })?;
        Occurrence::from_value(&value)
    }

    /// Reads one occurrence in Grafeas v1 (`resourceUri`, `attestation.serializedPayload`) or
    /// v1beta1 (`resource.uri`, `attestation.attestation.{generic,pgp}SignedAttestation`) JSON.
    pub fn from_value(value: &Value) -> Result<Occurrence, OccurrenceError> {
        let o = object(value, "occurrence")?;
        if let Some(kind) = string(o, "kind")?
            && kind != "ATTESTATION"
        {
            return Err(OccurrenceError::NotAttestation {
                kind: kind.to_string(),
            });
        }
        let resource_uri = match (string(o, "resourceUri")?, o.get("resource")) {
            (Some(uri), _) => uri.to_string(),
            (None, Some(resource)) => string(object(resource, "resource")?, "uri")?
                .ok_or_else(|| field("resource.uri", "missing"))?
                .to_string(),
            (None, None) => return Err(field("resourceUri", "missing")),
        };
        let note_name = match string(o, "noteName")? {
            Some(n) => Some(n),
            None => string(o, "note_name")?,
        }
        .map(str::to_string);
        let attestation = o
            .get("attestation")
            .ok_or_else(|| field("attestation", "missing"))?;
        let attestation = object(attestation, "attestation")?;
        // v1beta1 nests the details one level deeper.
        let inner = match attestation.get("attestation") {
            Some(nested) => object(nested, "attestation.attestation")?,
            None => attestation,
        };
        let attestation = if let Some(pgp) = inner.get("pgpSignedAttestation") {
            Self::pgp_attestation(object(pgp, "pgpSignedAttestation")?)?
        } else {
            let generic = match inner.get("genericSignedAttestation") {
                Some(g) => object(g, "genericSignedAttestation")?,
                None => inner,
            };
            Self::signed_attestation(generic)?
        };
        Ok(Occurrence {
            name: string(o, "name")?.map(str::to_string),
            note_name,
            resource_uri,
            create_time: string(o, "createTime")?.map(str::to_string),
            attestation,
        })
    }

    fn signed_attestation(a: &Map<String, Value>) -> Result<Attestation, OccurrenceError> {
        let payload = match a.get("serializedPayload") {
            Some(Value::String(text)) => {
                decode_bytes("serializedPayload", text, MAX_PAYLOAD_BYTES)?
            }
            Some(_) => return Err(field("serializedPayload", "not a string")),
            None => return Err(field("attestation.serializedPayload", "missing")),
        };
        let list = match a.get("signatures") {
            Some(Value::Array(list)) => list,
            Some(_) => return Err(field("signatures", "not a JSON list")),
            None => return Err(field("attestation.signatures", "missing")),
        };
        if list.is_empty() {
            return Err(field("attestation.signatures", "empty: nothing is signed"));
        }
        if list.len() > MAX_SIGNATURES {
            return Err(OccurrenceError::TooLarge {
                what: "number of signatures",
                size: list.len(),
                limit: MAX_SIGNATURES,
            });
        }
        let signatures = list
            .iter()
            .map(|s| {
                let s = object(s, "signatures[]")?;
                let public_key_id = string(s, "publicKeyId")?
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| field("signatures[].publicKeyId", "missing"))?
                    .to_string();
                let signature = match s.get("signature") {
                    Some(Value::String(text)) => {
                        decode_bytes("signature", text, MAX_SIGNATURE_BYTES)?
                    }
                    _ => return Err(field("signatures[].signature", "missing or not a string")),
                };
                if signature.is_empty() {
                    return Err(field("signatures[].signature", "empty"));
                }
                Ok(Signature {
                    public_key_id,
                    signature,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Attestation::Signed {
            payload,
            signatures,
        })
    }

    fn pgp_attestation(a: &Map<String, Value>) -> Result<Attestation, OccurrenceError> {
        let key_id = string(a, "pgpKeyId")?
            .filter(|id| !id.is_empty())
            .ok_or_else(|| field("pgpSignedAttestation.pgpKeyId", "missing"))?
            .to_string();
        if let Some(kind) = string(a, "contentType")?
            && kind != "SIMPLE_SIGNING_JSON"
            && kind != "CONTENT_TYPE_UNSPECIFIED"
        {
            return Err(field(
                "pgpSignedAttestation.contentType",
                format!("`{kind}`, expected SIMPLE_SIGNING_JSON"),
            ));
        }
        let text = string(a, "signature")?
            .ok_or_else(|| field("pgpSignedAttestation.signature", "missing"))?;
        // The field is a string holding the armoured message as gpg wrote it; some tools
        // base64 it as they would bytes.
        let message = if is_armoured(text) {
            text.as_bytes().to_vec()
        } else {
            decode_bytes("pgpSignedAttestation.signature", text, MAX_SIGNATURE_BYTES)?
        };
        Ok(Attestation::Pgp { message, key_id })
    }

    /// The image the occurrence is about: `resourceUri` without its scheme, parsed as a
    /// digest reference.
    pub fn resource(&self) -> Result<ImageRef, OccurrenceError> {
        let uri = &self.resource_uri;
        let bad = |reason: String| OccurrenceError::ResourceUri {
            uri: uri.clone(),
            reason,
        };
        let bare = uri
            .strip_prefix("https://")
            .or_else(|| uri.strip_prefix("http://"))
            .unwrap_or(uri);
        let image: ImageRef = bare.parse().map_err(|e| bad(format!("{e}")))?;
        if image.digest().is_none() {
            return Err(bad("it has no @sha256: digest".into()));
        }
        Ok(image)
    }

    /// The payload bytes without verifying anything: the serialized payload, or the literal
    /// data of a PGP message. For reports and checks before storage, never for a verdict.
    pub fn unverified_payload(&self) -> Result<Vec<u8>, OccurrenceError> {
        match &self.attestation {
            Attestation::Signed { payload, .. } => Ok(payload.clone()),
            Attestation::Pgp { message, .. } => {
                crate::pgp::unverified_literal_data(message).map_err(OccurrenceError::Pgp)
            }
        }
    }

    /// Checks what can be checked without keys: the resource URI names an image by digest,
    /// and the payload is a simple-signing payload about that very digest.
    pub fn check_consistent(&self) -> Result<(ImageRef, SimpleSigning), OccurrenceError> {
        let image = self.resource()?;
        let payload = self.unverified_payload()?;
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(OccurrenceError::TooLarge {
                what: "payload",
                size: payload.len(),
                limit: MAX_PAYLOAD_BYTES,
            });
        }
        let parsed = SimpleSigning::parse(&payload).map_err(OccurrenceError::Payload)?;
        let resource = image.digest().cloned();
        match resource {
            Some(resource) if resource == parsed.manifest_digest => Ok((image, parsed)),
            Some(resource) => Err(OccurrenceError::DigestMismatch {
                payload: parsed.manifest_digest,
                resource,
            }),
            None => Err(OccurrenceError::ResourceUri {
                uri: self.resource_uri.clone(),
                reason: "it has no digest".into(),
            }),
        }
    }

    /// The key ids the signatures name.
    pub fn key_ids(&self) -> Vec<&str> {
        match &self.attestation {
            Attestation::Signed { signatures, .. } => signatures
                .iter()
                .map(|s| s.public_key_id.as_str())
                .collect(),
            Attestation::Pgp { key_id, .. } => vec![key_id.as_str()],
        }
    }

    /// The occurrence as Grafeas v1 JSON, the form signet stores and exports: `name`,
    /// `noteName`, `resourceUri`, `kind`, `createTime` when known, and `attestation` (or the
    /// older `pgpSignedAttestation` kept as it came). Byte-stable for equal occurrences, so a
    /// second import of the same occurrence stores the same manifest.
    pub fn to_json(&self) -> Vec<u8> {
        let mut o = Map::new();
        if let Some(name) = &self.name {
            o.insert("name".into(), Value::String(name.clone()));
        }
        o.insert(
            "resourceUri".into(),
            Value::String(self.resource_uri.clone()),
        );
        if let Some(note) = &self.note_name {
            o.insert("noteName".into(), Value::String(note.clone()));
        }
        o.insert("kind".into(), Value::String("ATTESTATION".into()));
        if let Some(time) = &self.create_time {
            o.insert("createTime".into(), Value::String(time.clone()));
        }
        let attestation = match &self.attestation {
            Attestation::Signed {
                payload,
                signatures,
            } => serde_json::json!({
                "serializedPayload": STANDARD.encode(payload),
                "signatures": signatures.iter().map(|s| serde_json::json!({
                    "publicKeyId": s.public_key_id,
                    "signature": STANDARD.encode(&s.signature),
                })).collect::<Vec<_>>(),
            }),
            Attestation::Pgp { message, key_id } => serde_json::json!({
                "pgpSignedAttestation": {
                    "signature": armoured_text(message)
                        .unwrap_or_else(|| STANDARD.encode(message)),
                    "contentType": "SIMPLE_SIGNING_JSON",
                    "pgpKeyId": key_id,
                }
            }),
        };
        o.insert("attestation".into(), attestation);
        // serde_json's map keeps keys sorted, so equal occurrences give equal bytes.
        serde_json::to_vec(&Value::Object(o)).unwrap_or_default()
    }
}

fn is_armoured(text: &str) -> bool {
    text.trim_start().starts_with("-----BEGIN PGP")
}

/// The message as the text `pgpSignedAttestation.signature` holds, when it is armoured (read
/// back as such by [`Occurrence::from_value`]); `None`: it is written as base64.
fn armoured_text(message: &[u8]) -> Option<String> {
    std::str::from_utf8(message)
        .ok()
        .filter(|text| is_armoured(text))
        .map(str::to_string)
}

/// A key of a Binary Authorization attestor (`userOwnedGrafeasNote.publicKeys[]`).
#[derive(Debug, Clone)]
pub enum NoteKey {
    /// `pkixPublicKey`.
    Pkix {
        /// The key's `id`; `None` matches every `publicKeyId` (`signet verify --key`).
        id: Option<String>,
        /// The key.
        key: PublicKey,
        /// `signatureAlgorithm`, when it names one.
        scheme: Option<SignatureScheme>,
    },
    /// `asciiArmoredPgpPublicKey`; its `id` is its fingerprint.
    Pgp(PgpPublicKey),
}

impl NoteKey {
    /// Whether a signature's `publicKeyId` names this key.
    fn named_by(&self, public_key_id: &str) -> bool {
        match self {
            NoteKey::Pkix { id: None, .. } => true,
            NoteKey::Pkix { id: Some(id), .. } => id == public_key_id,
            NoteKey::Pgp(key) => key.matches_id(public_key_id),
        }
    }

    /// The key id proofs carry.
    pub fn key_id(&self) -> KeyId {
        match self {
            NoteKey::Pkix { key, .. } => key.id().clone(),
            NoteKey::Pgp(key) => KeyId::of_pgp_fingerprint(&key.fingerprint()),
        }
    }

    /// The `id` as the attestor lists it.
    pub fn listed_id(&self) -> String {
        match self {
            NoteKey::Pkix { id: Some(id), .. } => id.clone(),
            NoteKey::Pkix { id: None, key, .. } => ni_key_id(key),
            NoteKey::Pgp(key) => key.fingerprint(),
        }
    }
}

/// Why a Binary Authorization attestation did not verify.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum BinAuthzError {
    /// Verification was asked with no key at all; fail closed.
    #[error("no Binary Authorization keys to verify with")]
    NoKeys,
    /// No signature names a key of the attestor.
    #[error(
        "signed by key id(s) {}, none of which is a key of this attestor ({})",
        .named.join(", "), .known.join(", ")
    )]
    UnknownKeyId {
        /// The `publicKeyId`s of the signatures.
        named: Vec<String>,
        /// The ids of the keys tried.
        known: Vec<String>,
    },
    /// A signature names a key of the attestor but does not verify with it.
    #[error("signature by key id {id} does not verify: {reason}")]
    BadSignature {
        /// The `publicKeyId`.
        id: String,
        /// Why.
        reason: String,
    },
    /// A PGP message verified, but the payload it carries is not the stored payload.
    #[error("the PGP message signed by {fingerprint} carries another payload than the stored one")]
    EmbeddedPayloadMismatch {
        /// The key.
        fingerprint: String,
    },
    /// The verified payload is not a simple-signing payload, or signs another digest.
    #[error("{0}")]
    Payload(#[source] SimpleSigningError),
}

/// Verifies an occurrence with an attestor's keys and checks that its payload signs `digest`.
/// A signature counts only with a key its `publicKeyId` names (as Binary Authorization
/// matches them); the payload is parsed only after a signature over it verified.
pub fn verify(
    occurrence: &Occurrence,
    keys: &[NoteKey],
    digest: &Digest,
) -> Result<Verified<SimpleSigning>, BinAuthzError> {
    if keys.is_empty() {
        return Err(BinAuthzError::NoKeys);
    }
    let mut failure: Option<BinAuthzError> = None;
    // (publicKeyId, signature, the stored payload it signs; none for a PGP message alone)
    type Candidate<'o> = (&'o str, &'o [u8], Option<&'o [u8]>);
    let candidates: Vec<Candidate<'_>> = match &occurrence.attestation {
        Attestation::Signed {
            payload,
            signatures,
        } => signatures
            .iter()
            .map(|s| {
                (
                    s.public_key_id.as_str(),
                    s.signature.as_slice(),
                    Some(payload.as_slice()),
                )
            })
            .collect(),
        Attestation::Pgp { message, key_id } => vec![(key_id.as_str(), message.as_slice(), None)],
    };
    for (id, signature, payload) in &candidates {
        for key in keys.iter().filter(|k| k.named_by(id)) {
            match verify_one(key, signature, *payload) {
                Ok(signed) => {
                    let parsed = SimpleSigning::parse(&signed).map_err(BinAuthzError::Payload)?;
                    parsed
                        .check_digest(digest)
                        .map_err(BinAuthzError::Payload)?;
                    return Ok(Verified::new(parsed, key.key_id()));
                }
                Err(reason) => {
                    failure.get_or_insert(match reason {
                        One::Mismatch(fingerprint) => {
                            BinAuthzError::EmbeddedPayloadMismatch { fingerprint }
                        }
                        One::Failed(reason) => BinAuthzError::BadSignature {
                            id: (*id).to_string(),
                            reason,
                        },
                    });
                }
            }
        }
    }
    Err(failure.unwrap_or_else(|| BinAuthzError::UnknownKeyId {
        named: candidates
            .iter()
            .map(|(id, ..)| (*id).to_string())
            .collect(),
        known: keys.iter().map(NoteKey::listed_id).collect(),
    }))
}

enum One {
    Failed(String),
    Mismatch(String),
}

/// One signature with one key; the signed payload bytes when it verifies.
fn verify_one(key: &NoteKey, signature: &[u8], payload: Option<&[u8]>) -> Result<Vec<u8>, One> {
    match key {
        NoteKey::Pkix { key, scheme, .. } => {
            let Some(payload) = payload else {
                return Err(One::Failed(
                    "a PGP-signed attestation cannot be verified with a PKIX key".into(),
                ));
            };
            let checked = match scheme {
                Some(scheme) => key.verify_scheme(*scheme, payload, signature),
                None => key.verify(payload, signature),
            };
            checked
                .map(|()| payload.to_vec())
                .map_err(|e| One::Failed(e.to_string()))
        }
        NoteKey::Pgp(key) => {
            let carried = key
                .verify_message(signature)
                .map_err(|e| One::Failed(e.to_string()))?;
            match payload {
                Some(stored) if stored != carried.as_slice() => {
                    Err(One::Mismatch(key.fingerprint()))
                }
                _ => Ok(carried),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::keys::KeyPair;

    fn digest(byte: &str) -> Digest {
        format!("sha256:{}", byte.repeat(32)).parse().unwrap()
    }

    #[test]
    fn payload_is_gclouds_byte_form() {
        let d = digest("ab");
        let expected = format!(
            "{{\n  \"critical\": {{\n    \"identity\": {{\n      \"docker-reference\": \
             \"gcr.io/shop/cart\"\n    }},\n    \"image\": {{\n      \
             \"docker-manifest-digest\": \"{d}\"\n    }},\n    \"type\": \"Google cloud \
             binauthz container signature\"\n  }}\n}}\n"
        );
        assert_eq!(
            String::from_utf8(payload("gcr.io/shop/cart", &d)).unwrap(),
            expected
        );
        let parsed = SimpleSigning::parse(&payload("gcr.io/shop/cart", &d)).unwrap();
        assert_eq!(parsed.manifest_digest, d);
        assert_eq!(parsed.signature_type, PAYLOAD_TYPE);
    }

    #[test]
    fn ni_id_is_base64url_of_the_spki_digest() {
        let key = KeyPair::generate_p256().unwrap();
        let id = ni_key_id(key.public_key());
        assert!(id.starts_with("ni:///sha-256;"));
        let raw = URL_SAFE_NO_PAD
            .decode(&id["ni:///sha-256;".len()..])
            .unwrap();
        assert_eq!(
            hex::encode(raw),
            key.public_key().id().spki_digest().unwrap().hex()
        );
    }

    fn occurrence_json(payload: &[u8], id: &str, sig: &[u8], uri: &str) -> Value {
        serde_json::json!({
            "name": "projects/p/occurrences/1",
            "noteName": "projects/p/notes/qa",
            "resourceUri": uri,
            "kind": "ATTESTATION",
            "attestation": {
                "serializedPayload": STANDARD.encode(payload),
                "signatures": [{"publicKeyId": id, "signature": STANDARD.encode(sig)}]
            }
        })
    }

    #[test]
    fn pkix_attestation_verifies_only_with_the_named_key() {
        let d = digest("cd");
        let pair = KeyPair::generate_p256().unwrap();
        let body = payload("gcr.io/shop/cart", &d);
        let sig = pair.sign(&body);
        let uri = format!("https://gcr.io/shop/cart@{d}");
        let occ = Occurrence::from_value(&occurrence_json(&body, "key-1", &sig, &uri)).unwrap();
        let (image, _) = occ.check_consistent().unwrap();
        assert_eq!(image.name(), "gcr.io/shop/cart");
        let key = |id: &str| NoteKey::Pkix {
            id: Some(id.into()),
            key: pair.public_key().clone(),
            scheme: Some(SignatureScheme::EcdsaP256Sha256),
        };
        let verified = verify(&occ, &[key("key-1")], &d).unwrap();
        assert_eq!(verified.key_id(), pair.public_key().id());
        assert!(matches!(
            verify(&occ, &[key("key-2")], &d),
            Err(BinAuthzError::UnknownKeyId { .. })
        ));
        assert!(matches!(
            verify(&occ, &[key("key-1")], &digest("ef")),
            Err(BinAuthzError::Payload(
                SimpleSigningError::DigestMismatch { .. }
            ))
        ));
        let mut edited = body.clone();
        edited[10] ^= 1;
        let occ = Occurrence::from_value(&occurrence_json(&edited, "key-1", &sig, &uri)).unwrap();
        assert!(matches!(
            verify(&occ, &[key("key-1")], &d),
            Err(BinAuthzError::BadSignature { .. })
        ));
        assert!(matches!(verify(&occ, &[], &d), Err(BinAuthzError::NoKeys)));
    }

    #[test]
    fn stored_form_round_trips_byte_stably() {
        let d = digest("12");
        let body = payload("gcr.io/a/b", &d);
        let value = occurrence_json(&body, "k", b"sig", &format!("gcr.io/a/b@{d}"));
        let occ = Occurrence::from_value(&value).unwrap();
        let stored = occ.to_json();
        let again = Occurrence::from_json(&stored).unwrap();
        assert_eq!(again, occ);
        assert_eq!(again.to_json(), stored);
    }

    #[test]
    fn lists_in_every_shape_and_bad_items_are_named() {
        let d = digest("34");
        let body = payload("gcr.io/a/b", &d);
        let good = occurrence_json(&body, "k", b"sig", &format!("gcr.io/a/b@{d}"));
        let list =
            serde_json::to_vec(&serde_json::json!([good, {"kind": "VULNERABILITY"}])).unwrap();
        let items = Occurrence::parse_list(&list).unwrap();
        assert!(items[0].1.is_ok());
        assert_eq!(items[0].0.as_deref(), Some("projects/p/occurrences/1"));
        assert!(matches!(
            items[1].1,
            Err(OccurrenceError::NotAttestation { .. })
        ));
        let response = serde_json::to_vec(&serde_json::json!({"occurrences": [good]})).unwrap();
        assert_eq!(Occurrence::parse_list(&response).unwrap().len(), 1);
        assert!(Occurrence::parse_list(b"[1,").is_err());
    }

    #[test]
    fn limits_are_refused_with_a_clear_error() {
        let d = digest("56");
        let huge = vec![b' '; 10 << 20];
        let value = occurrence_json(&huge, "k", b"sig", &format!("gcr.io/a/b@{d}"));
        let err = Occurrence::from_value(&value).unwrap_err();
        assert!(err.to_string().contains("serializedPayload is"), "{err}");
        let many: Vec<Value> = (0..MAX_OCCURRENCES + 1).map(|_| Value::Null).collect();
        let err = Occurrence::parse_list(&serde_json::to_vec(&many).unwrap()).unwrap_err();
        assert!(err.to_string().contains("number of occurrences"), "{err}");
    }

    #[test]
    fn a_payload_about_another_digest_is_refused_before_storage() {
        let body = payload("gcr.io/a/b", &digest("78"));
        let value = occurrence_json(&body, "k", b"sig", &format!("gcr.io/a/b@{}", digest("9a")));
        let occ = Occurrence::from_value(&value).unwrap();
        assert!(matches!(
            occ.check_consistent(),
            Err(OccurrenceError::DigestMismatch { .. })
        ));
    }

    #[test]
    fn algorithm_names_fix_scheme_and_size() {
        assert_eq!(
            signature_algorithm("RSA_SIGN_PKCS1_4096_SHA512"),
            Some(SignatureScheme::RsaPkcs1Sha512)
        );
        assert_eq!(
            signature_algorithm_rsa_bits("RSA_PSS_3072_SHA256"),
            Some(3072)
        );
        assert_eq!(signature_algorithm_rsa_bits("ECDSA_P256_SHA256"), None);
        assert_eq!(signature_algorithm("DSA"), None);
    }
}
