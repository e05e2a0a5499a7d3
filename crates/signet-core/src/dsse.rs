//! DSSE (Dead Simple Signing Envelope) v1: the envelope and its pre-authentication encoding.
//!
//! Spec: <https://github.com/secure-systems-lab/dsse/blob/master/protocol.md>. The signature
//! covers `PAE(payloadType, payload)` over the payload bytes exactly as they were decoded from
//! the envelope, never a re-serialisation of them.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE as B64_URL};
use serde::{Deserialize, Serialize};

use crate::keys::{KeyId, PublicKey, SignError, Signer};
use crate::verified::Verified;

/// Why an envelope could not be parsed or verified.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum DsseError {
    /// Not the JSON shape of a DSSE envelope.
    #[error("malformed DSSE envelope: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// An envelope with an empty `signatures` list.
    #[error("DSSE envelope has no signatures")]
    NoSignatures,
    /// Verification was asked with no key at all; fail closed.
    #[error("no public keys to verify the DSSE envelope with")]
    NoKeys,
    /// No signature verified with any of the keys.
    #[error("none of the {signatures} DSSE signature(s) verifies with key(s) {}", key_list(.tried))]
    NotVerified {
        /// How many signatures the envelope carries.
        signatures: usize,
        /// The keys tried.
        tried: Vec<KeyId>,
    },
}

fn key_list(keys: &[KeyId]) -> String {
    keys.iter().map(KeyId::short).collect::<Vec<_>>().join(", ")
}

/// The pre-authentication encoding: `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// One signature in an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// Standard base64 of the signature bytes.
    pub sig: String,
    /// Optional, unauthenticated hint of the key that signed. cosign writes an empty string.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub keyid: String,
}

/// A DSSE envelope as it travels in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Standard base64 of the payload bytes.
    pub payload: String,
    /// The payload's media type, e.g. `application/vnd.in-toto+json`.
    pub payload_type: String,
    /// The signatures over `PAE(payloadType, payload)`.
    pub signatures: Vec<Signature>,
}

/// The payload of an envelope whose signature has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The payload type the signature covered.
    pub payload_type: String,
    /// The payload bytes the signature covered.
    pub bytes: Vec<u8>,
}

impl Envelope {
    /// Signs `payload` of type `payload_type` with `signer`.
    pub fn sign(
        payload_type: &str,
        payload: &[u8],
        signer: &dyn Signer,
    ) -> Result<Envelope, SignError> {
        let sig = signer.sign(&pae(payload_type, payload))?;
        Ok(Envelope {
            payload: B64.encode(payload),
            payload_type: payload_type.to_string(),
            signatures: vec![Signature {
                sig: B64.encode(sig),
                keyid: String::new(),
            }],
        })
    }

    /// Parses an envelope from JSON bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Envelope, DsseError> {
        serde_json::from_slice(bytes).map_err(|e| DsseError::Malformed {
            reason: e.to_string(),
        })
    }

    /// The envelope as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain strings and vectors cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The decoded payload bytes. Not yet verified: use [`Envelope::verify`] for anything that
    /// matters.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, DsseError> {
        decode_b64(&self.payload).ok_or_else(|| DsseError::Malformed {
            reason: "payload is not base64".into(),
        })
    }

    /// Verifies that at least one signature is valid under one of `keys`, and returns the
    /// payload with the proof. Fails closed on no signatures or no keys.
    pub fn verify(&self, keys: &[PublicKey]) -> Result<Verified<Payload>, DsseError> {
        if self.signatures.is_empty() {
            return Err(DsseError::NoSignatures);
        }
        if keys.is_empty() {
            return Err(DsseError::NoKeys);
        }
        let payload = self.payload_bytes()?;
        let message = pae(&self.payload_type, &payload);
        for signature in &self.signatures {
            let Some(sig) = decode_b64(&signature.sig) else {
                continue;
            };
            for key in keys {
                if key.verify(&message, &sig).is_ok() {
                    return Ok(Verified::new(
                        Payload {
                            payload_type: self.payload_type.clone(),
                            bytes: payload,
                        },
                        key.id().clone(),
                    ));
                }
            }
        }
        Err(DsseError::NotVerified {
            signatures: self.signatures.len(),
            tried: keys.iter().map(|k| k.id().clone()).collect(),
        })
    }
}

/// DSSE allows standard or URL-safe base64; accept both, padded.
fn decode_b64(text: &str) -> Option<Vec<u8>> {
    B64.decode(text).or_else(|_| B64_URL.decode(text)).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::keys::KeyPair;

    #[test]
    fn pae_known_answer() {
        // The example from the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
        // Lengths are byte lengths, not character counts.
        assert_eq!(
            pae("t", "é".as_bytes()),
            "DSSEv1 1 t 2 é".as_bytes().to_vec()
        );
    }

    #[test]
    fn sign_verify_and_tamper() {
        let key = KeyPair::from_p256_scalar(&[3u8; 32]).unwrap();
        let env = Envelope::sign("application/vnd.in-toto+json", b"{\"a\":1}", &key).unwrap();
        let verified = env.verify(std::slice::from_ref(key.public_key())).unwrap();
        assert_eq!(verified.value().bytes, b"{\"a\":1}");
        assert_eq!(verified.key_id(), key.public_key().id());

        let mut edited = env.clone();
        edited.payload = B64.encode(b"{\"a\":2}");
        assert!(matches!(
            edited.verify(std::slice::from_ref(key.public_key())),
            Err(DsseError::NotVerified { signatures: 1, .. })
        ));

        let mut retyped = env.clone();
        retyped.payload_type = "text/plain".into();
        assert!(
            retyped
                .verify(std::slice::from_ref(key.public_key()))
                .is_err()
        );
    }

    #[test]
    fn envelope_with_no_signatures_is_an_error() {
        let key = KeyPair::from_p256_scalar(&[3u8; 32]).unwrap();
        let env = Envelope::from_json(br#"{"payload":"e30=","payloadType":"x","signatures":[]}"#)
            .unwrap();
        assert_eq!(
            env.verify(std::slice::from_ref(key.public_key())),
            Err(DsseError::NoSignatures)
        );
        assert_eq!(
            DsseError::NoSignatures.to_string(),
            "DSSE envelope has no signatures"
        );
    }

    #[test]
    fn no_keys_fails_closed() {
        let key = KeyPair::from_p256_scalar(&[3u8; 32]).unwrap();
        let env = Envelope::sign("x", b"y", &key).unwrap();
        assert_eq!(env.verify(&[]), Err(DsseError::NoKeys));
    }

    #[test]
    fn other_key_is_named_in_the_error() {
        let signer = KeyPair::from_p256_scalar(&[3u8; 32]).unwrap();
        let other = KeyPair::from_p256_scalar(&[4u8; 32]).unwrap();
        let env = Envelope::sign("x", b"y", &signer).unwrap();
        let err = env
            .verify(std::slice::from_ref(other.public_key()))
            .unwrap_err();
        assert!(err.to_string().contains(&other.public_key().id().short()));
    }
}
