//! The simple-signing payload: what cosign's legacy `.sig` signatures, containers/image and
//! Binary Authorization's PKIX attestations sign.
//!
//! ```json
//! {"critical":{"identity":{"docker-reference":"…"},"image":{"docker-manifest-digest":"sha256:…"},
//!  "type":"cosign container image signature"},"optional":null}
//! ```
//!
//! Readers accept any `type` string: cosign, containers/image (`atomic container signature`)
//! and Binary Authorization each write their own. The writer produces cosign's exact byte form
//! (Go `encoding/json` output: keys sorted, HTML characters escaped, `"optional":null` when
//! there are no annotations), so cosign verifies what signet signs.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;

use crate::digest::{Digest, DigestError};
use crate::keys::{KeyId, PublicKey};
use crate::verified::Verified;

/// The `type` cosign writes.
pub const COSIGN_TYPE: &str = "cosign container image signature";

/// Why a simple-signing payload was rejected.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum SimpleSigningError {
    /// Not the JSON shape of a simple-signing payload.
    #[error("malformed simple-signing payload: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// The `docker-manifest-digest` is not a digest.
    #[error("simple-signing payload has an invalid docker-manifest-digest: {0}")]
    BadDigest(#[source] DigestError),
    /// The payload signs another image.
    #[error("simple-signing payload signs {found}, not {expected}")]
    DigestMismatch {
        /// The image digest being verified.
        expected: Digest,
        /// The digest the payload names.
        found: Digest,
    },
    /// Verification was asked with no key at all; fail closed.
    #[error("no public keys to verify with")]
    NoKeys,
    /// The signature (cosign's `dev.cosignproject.cosign/signature` annotation) is not base64.
    #[error("signature annotation is not base64")]
    SignatureEncoding,
    /// The signature verifies with none of the keys.
    #[error("signature does not verify with key(s) {}", short_list(.tried))]
    NotVerified {
        /// The keys tried.
        tried: Vec<KeyId>,
    },
}

fn short_list(keys: &[KeyId]) -> String {
    keys.iter().map(KeyId::short).collect::<Vec<_>>().join(", ")
}

/// Verifies a simple-signing signature over `payload` (the bytes as stored) with one of `keys`,
/// then parses the payload and checks that it signs `digest`. The one place where a legacy
/// signature becomes a proof: key check and digest binding together, in this order, so that an
/// unsigned payload is never parsed for anything but the error message.
pub fn verify(
    payload: &[u8],
    signature_base64: &str,
    keys: &[PublicKey],
    digest: &Digest,
) -> Result<Verified<SimpleSigning>, SimpleSigningError> {
    if keys.is_empty() {
        return Err(SimpleSigningError::NoKeys);
    }
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature_base64.trim())
        .map_err(|_| SimpleSigningError::SignatureEncoding)?;
    let key = keys
        .iter()
        .find(|k| k.verify(payload, &signature).is_ok())
        .ok_or_else(|| SimpleSigningError::NotVerified {
            tried: keys.iter().map(|k| k.id().clone()).collect(),
        })?;
    let parsed = SimpleSigning::parse(payload)?;
    parsed.check_digest(digest)?;
    Ok(Verified::new(parsed, key.id().clone()))
}

/// A parsed simple-signing payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleSigning {
    /// `critical.identity.docker-reference`.
    pub docker_reference: String,
    /// `critical.image.docker-manifest-digest`.
    pub manifest_digest: Digest,
    /// `critical.type`, whatever it says.
    pub signature_type: String,
    /// `optional`, as string annotations; non-string values are kept as their JSON text.
    pub optional: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Wire {
    critical: WireCritical,
    #[serde(default)]
    optional: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct WireCritical {
    identity: WireIdentity,
    image: WireImage,
    #[serde(rename = "type")]
    signature_type: String,
}

#[derive(Deserialize)]
struct WireIdentity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Deserialize)]
struct WireImage {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

impl SimpleSigning {
    /// A cosign-typed payload for `docker_reference` (cosign writes the repository, without
    /// tag) at `digest`, with optional annotations.
    pub fn cosign(
        docker_reference: &str,
        digest: &Digest,
        annotations: BTreeMap<String, String>,
    ) -> SimpleSigning {
        SimpleSigning {
            docker_reference: docker_reference.to_string(),
            manifest_digest: digest.clone(),
            signature_type: COSIGN_TYPE.to_string(),
            optional: annotations,
        }
    }

    /// Parses a payload of any `type`.
    pub fn parse(bytes: &[u8]) -> Result<SimpleSigning, SimpleSigningError> {
        let wire: Wire =
            serde_json::from_slice(bytes).map_err(|e| SimpleSigningError::Malformed {
                reason: e.to_string(),
            })?;
        let manifest_digest = wire
            .critical
            .image
            .docker_manifest_digest
            .parse()
            .map_err(SimpleSigningError::BadDigest)?;
        let optional = wire
            .optional
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect();
        Ok(SimpleSigning {
            docker_reference: wire.critical.identity.docker_reference,
            manifest_digest,
            signature_type: wire.critical.signature_type,
            optional,
        })
    }

    /// Checks that the payload signs `expected`.
    pub fn check_digest(&self, expected: &Digest) -> Result<(), SimpleSigningError> {
        if &self.manifest_digest == expected {
            Ok(())
        } else {
            Err(SimpleSigningError::DigestMismatch {
                expected: expected.clone(),
                found: self.manifest_digest.clone(),
            })
        }
    }

    /// cosign's exact byte form (as Go's `encoding/json` marshals cosign's payload struct).
    pub fn to_cosign_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(256);
        out.push_str("{\"critical\":{\"identity\":{\"docker-reference\":");
        go_json_string(&mut out, &self.docker_reference);
        out.push_str("},\"image\":{\"docker-manifest-digest\":");
        go_json_string(&mut out, &self.manifest_digest.to_string());
        out.push_str("},\"type\":");
        go_json_string(&mut out, &self.signature_type);
        out.push_str("},\"optional\":");
        if self.optional.is_empty() {
            out.push_str("null");
        } else {
            out.push('{');
            for (i, (k, v)) in self.optional.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json_string(&mut out, k);
                out.push(':');
                go_json_string(&mut out, v);
            }
            out.push('}');
        }
        out.push('}');
        out.into_bytes()
    }
}

/// A JSON string literal as Go's `encoding/json` writes it (HTML-safe escaping).
fn go_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const HEX: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn cosign_byte_form_known_answer() {
        let d: Digest = format!("sha256:{HEX}").parse().unwrap();
        let p = SimpleSigning::cosign("registry.example/team/app", &d, BTreeMap::new());
        let expected = format!(
            "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"registry.example/team/app\"}},\"image\":{{\"docker-manifest-digest\":\"sha256:{HEX}\"}},\"type\":\"cosign container image signature\"}},\"optional\":null}}"
        );
        assert_eq!(String::from_utf8(p.to_cosign_bytes()).unwrap(), expected);
    }

    #[test]
    fn annotations_sorted_and_html_escaped_like_go() {
        let d: Digest = format!("sha256:{HEX}").parse().unwrap();
        let ann = BTreeMap::from([
            ("z".to_string(), "a<b>&c".to_string()),
            ("a".to_string(), "x\"y\n".to_string()),
        ]);
        let p = SimpleSigning::cosign("r/x", &d, ann);
        let text = String::from_utf8(p.to_cosign_bytes()).unwrap();
        assert!(
            text.ends_with(
                "\"optional\":{\"a\":\"x\\\"y\\n\",\"z\":\"a\\u003cb\\u003e\\u0026c\"}}"
            )
        );
        // And it parses back to the same payload.
        assert_eq!(SimpleSigning::parse(text.as_bytes()).unwrap(), p);
    }

    #[test]
    fn reads_any_type_and_checks_digest() {
        for ty in [
            "atomic container signature",
            "Google cloud binauthz container signature",
            COSIGN_TYPE,
        ] {
            let json = format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"gcr.io/p/i"}},"image":{{"docker-manifest-digest":"sha256:{HEX}"}},"type":"{ty}"}},"optional":{{"creator":"x","timestamp":1}}}}"#
            );
            let p = SimpleSigning::parse(json.as_bytes()).unwrap();
            assert_eq!(p.signature_type, ty);
            assert_eq!(p.optional["timestamp"], "1");
            p.check_digest(&format!("sha256:{HEX}").parse().unwrap())
                .unwrap();
            assert!(matches!(
                p.check_digest(&Digest::sha256_of(b"other")),
                Err(SimpleSigningError::DigestMismatch { .. })
            ));
        }
    }

    #[test]
    fn rejects_bad_digest() {
        let json = br#"{"critical":{"identity":{"docker-reference":"x"},"image":{"docker-manifest-digest":"sha256:abc"},"type":"t"},"optional":null}"#;
        assert!(matches!(
            SimpleSigning::parse(json),
            Err(SimpleSigningError::BadDigest(_))
        ));
    }
}
