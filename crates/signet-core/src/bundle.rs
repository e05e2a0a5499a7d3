//! Sigstore bundle v0.3 with a public-key hint and a DSSE envelope: the form cosign v3 writes
//! for `cosign sign --key` / `cosign attest --key` in its new bundle format.
//!
//! Spec: `sigstore/protobuf-specs`, `Bundle` in `sigstore_bundle.proto`, JSON by proto3's
//! canonical mapping (camelCase, empty fields omitted). signet writes no transparency-log
//! entry; readers ignore what they do not need (log entries) so that bundles from other tools
//! still load. RFC 3161 timestamps are read and attached on request
//! ([`Bundle::rfc3161_timestamps`], [`Bundle::add_rfc3161_timestamp`]) and verified by
//! [`crate::timestamp`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::dsse::{DsseError, Envelope};
use crate::intoto::{self, AttestationError, Statement, StatementError};
use crate::keys::{PublicKey, SignError, Signer};
use crate::verified::Verified;

/// Media type of a v0.3 bundle; also the `artifactType` of the OCI manifest that carries one.
pub const BUNDLE_V03_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Older media types, read but never written.
pub const BUNDLE_OLDER_MEDIA_TYPES: [&str; 3] = [
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
];

/// `timestampVerificationData.rfc3161Timestamps`: the RFC 3161 timestamps of a bundle.
const RFC3161_TIMESTAMPS: &str = "rfc3161Timestamps";
/// The DER token (base64) in each of them.
const SIGNED_TIMESTAMP: &str = "signedTimestamp";

/// Why a bundle was rejected.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum BundleError {
    /// Not the JSON shape of a bundle.
    #[error("malformed Sigstore bundle: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// A media type this version of signet does not read.
    #[error("unsupported Sigstore bundle media type \"{found}\"")]
    UnsupportedMediaType {
        /// The media type found.
        found: String,
    },
    /// The bundle is signed with a certificate (keyless), which a key cannot verify.
    #[error(
        "bundle is signed with a certificate (keyless or a CA's); give a policy attestor \
         `keyless` or `certificates` trust (or --certificate-identity/--ca-roots) to verify it"
    )]
    CertificateBased,
    /// A message-signature bundle: it signs a blob's digest, not a statement.
    #[error("bundle holds a message signature, not a DSSE envelope")]
    MessageSignature,
    /// The envelope did not verify.
    #[error(transparent)]
    Dsse(#[from] DsseError),
    /// The envelope verified but does not hold an in-toto statement.
    #[error("DSSE payload type is \"{found}\", expected {}", intoto::PAYLOAD_TYPE)]
    NotInToto {
        /// The payload type found.
        found: String,
    },
    /// The statement is malformed or about another digest.
    #[error(transparent)]
    Statement(#[from] StatementError),
}

/// `verificationMaterial.publicKey`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PublicKeyIdentifier {
    /// Opaque hint; cosign writes base64 of the SHA-256 of the DER public key.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hint: String,
}

/// `verificationMaterial`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct VerificationMaterial {
    /// Present for key-based signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<PublicKeyIdentifier>,
    /// Present for keyless signing (v0.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<serde_json::Value>,
    /// Present for keyless signing (v0.1, v0.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x509_certificate_chain: Option<serde_json::Value>,
    /// Transparency-log entries; kept, not interpreted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tlog_entries: Vec<serde_json::Value>,
    /// Signed timestamps; kept as JSON. RFC 3161 tokens are read with
    /// [`Bundle::rfc3161_timestamps`] and added with [`Bundle::add_rfc3161_timestamp`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_verification_data: Option<serde_json::Value>,
}

/// The largest number of certificates read from `x509CertificateChain`.
const MAX_BUNDLE_CHAIN: usize = 10;

/// `messageSignature.messageDigest`: the digest of the blob that was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageDigest {
    /// The hash algorithm as the bundle names it (`SHA2_256`, `SHA2_384`, `SHA2_512`).
    pub algorithm: String,
    /// The digest.
    pub digest: Vec<u8>,
}

/// `messageSignature`: a signature over a blob (not a statement), as `cosign sign-blob` and
/// legacy keyless signatures make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSignature {
    /// The digest of the signed blob, when the bundle states it.
    pub message_digest: Option<MessageDigest>,
    /// The signature.
    pub signature: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytesJson {
    raw_bytes: String,
}

#[derive(Deserialize)]
struct CertificateChainJson {
    #[serde(default)]
    certificates: Vec<RawBytesJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageSignatureJson {
    #[serde(default)]
    message_digest: Option<MessageDigestJson>,
    signature: String,
}

#[derive(Deserialize)]
struct MessageDigestJson {
    algorithm: String,
    digest: String,
}

/// A Sigstore bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    /// The bundle's media type (its version).
    pub media_type: String,
    /// What a verifier needs besides the signature.
    pub verification_material: VerificationMaterial,
    /// The signed content, when it is a DSSE envelope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dsse_envelope: Option<Envelope>,
    /// The signed content, when it is a message signature; kept, not interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_signature: Option<serde_json::Value>,
}

impl Bundle {
    /// Signs `statement` with `signer` into a v0.3 bundle with a public-key hint.
    pub fn sign_statement(statement: &Statement, signer: &dyn Signer) -> Result<Bundle, SignError> {
        let envelope = Envelope::sign(intoto::PAYLOAD_TYPE, &statement.to_json(), signer)?;
        // Signed with a certificate: the leaf goes in `certificate` (v0.3 has no chain), and
        // there is no key hint.
        let verification_material = match signer.certificate() {
            Some(der) => VerificationMaterial {
                certificate: Some(serde_json::json!({ "rawBytes": B64.encode(der) })),
                ..VerificationMaterial::default()
            },
            None => VerificationMaterial {
                public_key: Some(PublicKeyIdentifier {
                    hint: signer.public_key().id().hint(),
                }),
                ..VerificationMaterial::default()
            },
        };
        Ok(Bundle {
            media_type: BUNDLE_V03_MEDIA_TYPE.to_string(),
            verification_material,
            dsse_envelope: Some(envelope),
            message_signature: None,
        })
    }

    /// Parses bundle JSON and checks its media type.
    pub fn parse(bytes: &[u8]) -> Result<Bundle, BundleError> {
        let bundle: Bundle = serde_json::from_slice(bytes).map_err(|e| BundleError::Malformed {
            reason: e.to_string(),
        })?;
        if bundle.media_type != BUNDLE_V03_MEDIA_TYPE
            && !BUNDLE_OLDER_MEDIA_TYPES.contains(&bundle.media_type.as_str())
        {
            return Err(BundleError::UnsupportedMediaType {
                found: bundle.media_type,
            });
        }
        Ok(bundle)
    }

    /// The bundle as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // Strings, vectors and JSON values always serialise.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The predicate type the bundle claims, read without verification (for filtering and
    /// display only).
    pub fn unverified_predicate_type(&self) -> Option<String> {
        let env = self.dsse_envelope.as_ref()?;
        let bytes = env.payload_bytes().ok()?;
        Statement::parse(&bytes).ok().map(|s| s.predicate_type)
    }

    /// Verifies the DSSE envelope under `keys`, parses the in-toto statement it carries, and
    /// checks that the statement is about `subject`. The statement returned is the one the
    /// signature covers, parsed from the signed bytes.
    pub fn verify_statement(
        &self,
        keys: &[PublicKey],
        subject: &Digest,
    ) -> Result<Verified<Statement>, BundleError> {
        let envelope = self.envelope()?;
        intoto::verify_envelope(envelope, keys, subject).map_err(|e| match e {
            AttestationError::Dsse(e) => BundleError::Dsse(e),
            AttestationError::NotInToto { found } => BundleError::NotInToto { found },
            AttestationError::Statement(e) => BundleError::Statement(e),
        })
    }

    /// The bytes an RFC 3161 timestamp in this bundle stamps: the signature of its DSSE
    /// envelope (which must hold exactly one, as Sigstore bundles do), or its message
    /// signature's `signature`, base64-decoded.
    pub fn timestamped_signature(&self) -> Result<Vec<u8>, BundleError> {
        let malformed = |reason: String| BundleError::Malformed { reason };
        if let Some(envelope) = &self.dsse_envelope {
            return match envelope.signatures.as_slice() {
                [one] => B64
                    .decode(one.sig.as_bytes())
                    .map_err(|e| malformed(format!("DSSE signature is not base64: {e}"))),
                many => Err(malformed(format!(
                    "the DSSE envelope has {} signatures; a bundle's timestamps stamp exactly one",
                    many.len()
                ))),
            };
        }
        if let Some(message) = &self.message_signature {
            let sig = message
                .get("signature")
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| malformed("messageSignature.signature is not a string".into()))?;
            return B64
                .decode(sig.as_bytes())
                .map_err(|e| malformed(format!("messageSignature.signature is not base64: {e}")));
        }
        Err(malformed(
            "neither dsseEnvelope nor messageSignature present".into(),
        ))
    }

    /// The RFC 3161 timestamp tokens the bundle carries
    /// (`verificationMaterial.timestampVerificationData.rfc3161Timestamps[].signedTimestamp`),
    /// DER, unverified: give each to [`crate::timestamp::verify_timestamp`] with
    /// [`Bundle::timestamped_signature`]. None is an empty list; an entry that is not base64 is
    /// an error, not skipped.
    pub fn rfc3161_timestamps(&self) -> Result<Vec<Vec<u8>>, BundleError> {
        let malformed = |reason: String| BundleError::Malformed {
            reason: format!("timestampVerificationData: {reason}"),
        };
        let Some(data) = &self.verification_material.timestamp_verification_data else {
            return Ok(Vec::new());
        };
        let data = data
            .as_object()
            .ok_or_else(|| malformed("not an object".into()))?;
        let Some(list) = data.get(RFC3161_TIMESTAMPS) else {
            return Ok(Vec::new());
        };
        let list = list
            .as_array()
            .ok_or_else(|| malformed(format!("{RFC3161_TIMESTAMPS} is not a list")))?;
        list.iter()
            .enumerate()
            .map(|(i, entry)| {
                let text = entry
                    .get(SIGNED_TIMESTAMP)
                    .and_then(serde_json::Value::as_str)
                    .ok_or_else(|| {
                        malformed(format!(
                            "{RFC3161_TIMESTAMPS}[{i}].{SIGNED_TIMESTAMP} is not a string"
                        ))
                    })?;
                B64.decode(text.as_bytes()).map_err(|e| {
                    malformed(format!(
                        "{RFC3161_TIMESTAMPS}[{i}].{SIGNED_TIMESTAMP} is not base64: {e}"
                    ))
                })
            })
            .collect()
    }

    /// Appends an RFC 3161 timestamp token (DER) to
    /// `verificationMaterial.timestampVerificationData.rfc3161Timestamps`, creating them when
    /// absent and keeping whatever else is there. Nothing is checked about the token: that is
    /// the verifier's job.
    pub fn add_rfc3161_timestamp(&mut self, token_der: &[u8]) -> Result<(), BundleError> {
        let malformed = |reason: &str| BundleError::Malformed {
            reason: format!("timestampVerificationData: {reason}"),
        };
        let data = self
            .verification_material
            .timestamp_verification_data
            .get_or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
        let data = data
            .as_object_mut()
            .ok_or_else(|| malformed("not an object"))?;
        let list = data
            .entry(RFC3161_TIMESTAMPS)
            .or_insert_with(|| serde_json::Value::Array(Vec::new()))
            .as_array_mut()
            .ok_or_else(|| malformed("rfc3161Timestamps is not a list"))?;
        list.push(serde_json::json!({ SIGNED_TIMESTAMP: B64.encode(token_der) }));
        Ok(())
    }

    /// The signing certificate (DER) and the other certificates the bundle carries, unverified:
    /// v0.3's `verificationMaterial.certificate.rawBytes` (no chain), or v0.1/v0.2's
    /// `x509CertificateChain.certificates[].rawBytes` (leaf first). `None` for a bundle signed
    /// with a key. Give them to [`crate::keyless::verify_certificate`].
    #[allow(clippy::type_complexity)] // (leaf, chain), as the verifier takes them
    pub fn signing_certificate(&self) -> Result<Option<(Vec<u8>, Vec<Vec<u8>>)>, BundleError> {
        let malformed = |reason: String| BundleError::Malformed { reason };
        let decode = |text: &str, field: &str| {
            B64.decode(text.as_bytes())
                .map_err(|e| malformed(format!("{field} is not base64: {e}")))
        };
        let vm = &self.verification_material;
        if let Some(cert) = &vm.certificate {
            let cert: RawBytesJson = serde_json::from_value(cert.clone())
                .map_err(|e| malformed(format!("verificationMaterial.certificate: {e}")))?;
            let leaf = decode(&cert.raw_bytes, "verificationMaterial.certificate.rawBytes")?;
            return Ok(Some((leaf, Vec::new())));
        }
        if let Some(chain) = &vm.x509_certificate_chain {
            let chain: CertificateChainJson =
                serde_json::from_value(chain.clone()).map_err(|e| {
                    malformed(format!("verificationMaterial.x509CertificateChain: {e}"))
                })?;
            if chain.certificates.len() > MAX_BUNDLE_CHAIN {
                return Err(malformed(format!(
                    "x509CertificateChain holds {} certificates, more than the {MAX_BUNDLE_CHAIN} read",
                    chain.certificates.len()
                )));
            }
            let mut certs = chain
                .certificates
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    decode(
                        &c.raw_bytes,
                        &format!("x509CertificateChain.certificates[{i}].rawBytes"),
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            if certs.is_empty() {
                return Err(malformed(
                    "x509CertificateChain holds no certificate".into(),
                ));
            }
            let leaf = certs.remove(0);
            return Ok(Some((leaf, certs)));
        }
        Ok(None)
    }

    /// The message signature, when the bundle holds one rather than a DSSE envelope.
    pub fn message_signature(&self) -> Result<Option<MessageSignature>, BundleError> {
        let malformed = |reason: String| BundleError::Malformed {
            reason: format!("messageSignature: {reason}"),
        };
        let Some(value) = &self.message_signature else {
            return Ok(None);
        };
        let json: MessageSignatureJson =
            serde_json::from_value(value.clone()).map_err(|e| malformed(e.to_string()))?;
        let signature = B64
            .decode(json.signature.as_bytes())
            .map_err(|e| malformed(format!("signature is not base64: {e}")))?;
        let message_digest = json
            .message_digest
            .map(|d| {
                Ok::<_, BundleError>(MessageDigest {
                    digest: B64.decode(d.digest.as_bytes()).map_err(|e| {
                        malformed(format!("messageDigest.digest is not base64: {e}"))
                    })?,
                    algorithm: d.algorithm,
                })
            })
            .transpose()?;
        Ok(Some(MessageSignature {
            message_digest,
            signature,
        }))
    }

    /// The DSSE envelope, or why there is none.
    pub fn envelope(&self) -> Result<&Envelope, BundleError> {
        if let Some(envelope) = &self.dsse_envelope {
            return Ok(envelope);
        }
        if self.message_signature.is_some() {
            return Err(BundleError::MessageSignature);
        }
        let vm = &self.verification_material;
        if vm.certificate.is_some() || vm.x509_certificate_chain.is_some() {
            return Err(BundleError::CertificateBased);
        }
        Err(BundleError::Malformed {
            reason: "neither dsseEnvelope nor messageSignature present".into(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::keys::KeyPair;

    fn key() -> KeyPair {
        KeyPair::from_p256_scalar(&[9u8; 32]).unwrap()
    }

    /// Found by `scripts/fuzz.sh` (target `bundle`): a number in a field kept as JSON changed
    /// in its last digits when the bundle was written back, because serde_json parsed floats
    /// fast rather than exactly. With `float_roundtrip` a bundle written back is the bundle
    /// read.
    #[test]
    fn a_bundle_written_back_keeps_its_numbers_exactly() {
        let json = br#"{"mediaType":"application/vnd.dev.sigstore.bundle+json;version=0.1","verificationMaterial":{"x509CertificateChain":{"certificates":[1111111115111111111111111111]},"tlogEntries":[{"logIndex":"1"}]}}"#;
        let bundle = Bundle::parse(json).unwrap();
        assert_eq!(Bundle::parse(&bundle.to_json()).unwrap(), bundle);
    }

    #[test]
    fn signing_certificates_are_read_from_v03_and_v01_bundles() {
        let v03 =
            Bundle::parse(include_bytes!("../../../fixtures/sigstore/bundle_v03.json")).unwrap();
        let (leaf, chain) = v03.signing_certificate().unwrap().unwrap();
        assert_eq!(&leaf[..2], &[0x30, 0x82]);
        assert!(chain.is_empty());

        let v01 = Bundle::parse(
            br#"{"mediaType":"application/vnd.dev.sigstore.bundle+json;version=0.1","verificationMaterial":{"x509CertificateChain":{"certificates":[{"rawBytes":"AQI="},{"rawBytes":"AwQ="}]}},"messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"AA=="},"signature":"BQY="}}"#,
        )
        .unwrap();
        assert_eq!(
            v01.signing_certificate().unwrap(),
            Some((vec![1, 2], vec![vec![3, 4]]))
        );
        assert_eq!(
            v01.message_signature().unwrap(),
            Some(MessageSignature {
                message_digest: Some(MessageDigest {
                    algorithm: "SHA2_256".into(),
                    digest: vec![0]
                }),
                signature: vec![5, 6],
            })
        );
        // Key-based bundles have neither.
        let d = Digest::sha256_of(b"image");
        let st = Statement::new("r/x", &d, "p", serde_json::json!({}));
        let keyed = Bundle::sign_statement(&st, &key()).unwrap();
        assert_eq!(keyed.signing_certificate().unwrap(), None);
        assert_eq!(keyed.message_signature().unwrap(), None);
        // A certificate that is not base64 is an error naming the field.
        let bad = Bundle::parse(
            br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"certificate":{"rawBytes":"!"}}}"#,
        )
        .unwrap();
        assert!(
            bad.signing_certificate()
                .unwrap_err()
                .to_string()
                .contains("certificate.rawBytes")
        );
    }

    #[test]
    fn sign_parse_verify_round_trip() {
        let d = Digest::sha256_of(b"image");
        let st = Statement::new(
            "r/x",
            &d,
            intoto::COSIGN_SIGN_PREDICATE,
            serde_json::json!({}),
        );
        let k = key();
        let json = Bundle::sign_statement(&st, &k).unwrap().to_json();
        let text = String::from_utf8(json.clone()).unwrap();
        assert!(text.starts_with(
            "{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\",\"verificationMaterial\":{\"publicKey\":{\"hint\":"
        ));
        let bundle = Bundle::parse(&json).unwrap();
        let verified = bundle
            .verify_statement(std::slice::from_ref(k.public_key()), &d)
            .unwrap();
        assert_eq!(verified.value(), &st);
        assert_eq!(
            bundle.unverified_predicate_type().as_deref(),
            Some(intoto::COSIGN_SIGN_PREDICATE)
        );
    }

    #[test]
    fn statement_about_another_digest_is_rejected() {
        let d = Digest::sha256_of(b"image");
        let st = Statement::new(
            "r/x",
            &Digest::sha256_of(b"other"),
            "p",
            serde_json::json!({}),
        );
        let k = key();
        let bundle = Bundle::sign_statement(&st, &k).unwrap();
        assert!(matches!(
            bundle.verify_statement(std::slice::from_ref(k.public_key()), &d),
            Err(BundleError::Statement(
                StatementError::SubjectMismatch { .. }
            ))
        ));
    }

    #[test]
    fn timestamps_added_are_read_back_and_the_rest_is_kept() {
        let d = Digest::sha256_of(b"image");
        let st = Statement::new("r/x", &d, "p", serde_json::json!({}));
        let k = key();
        let mut bundle = Bundle::sign_statement(&st, &k).unwrap();
        assert_eq!(bundle.rfc3161_timestamps().unwrap(), Vec::<Vec<u8>>::new());
        bundle.add_rfc3161_timestamp(b"first").unwrap();
        bundle.add_rfc3161_timestamp(b"second").unwrap();
        let again = Bundle::parse(&bundle.to_json()).unwrap();
        assert_eq!(
            again.rfc3161_timestamps().unwrap(),
            vec![b"first".to_vec(), b"second".to_vec()]
        );
        assert_eq!(
            again.verification_material.timestamp_verification_data,
            Some(serde_json::json!({"rfc3161Timestamps": [
                {"signedTimestamp": "Zmlyc3Q="}, {"signedTimestamp": "c2Vjb25k"}
            ]}))
        );
        // The signature they stamp is the envelope's, and the bundle still verifies.
        let sig = &bundle.dsse_envelope.as_ref().unwrap().signatures[0].sig;
        assert_eq!(
            again.timestamped_signature().unwrap(),
            B64.decode(sig).unwrap()
        );
        again
            .verify_statement(std::slice::from_ref(k.public_key()), &d)
            .unwrap();

        // Other timestamp data (RFC 3161 entries from elsewhere, unknown fields) is kept.
        let mut other = Bundle::parse(
            br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"timestampVerificationData":{"x":1,"rfc3161Timestamps":[{"signedTimestamp":"AQI="}]}},"messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"AA=="},"signature":"AwQ="}}"#,
        )
        .unwrap();
        other.add_rfc3161_timestamp(&[5]).unwrap();
        assert_eq!(
            other.rfc3161_timestamps().unwrap(),
            vec![vec![1, 2], vec![5]]
        );
        assert_eq!(
            other
                .verification_material
                .timestamp_verification_data
                .as_ref()
                .unwrap()["x"],
            1
        );
        assert_eq!(other.timestamped_signature().unwrap(), vec![3, 4]);
    }

    #[test]
    fn malformed_timestamp_data_is_an_error_not_skipped() {
        for data in [
            r#"[]"#,
            r#"{"rfc3161Timestamps":{}}"#,
            r#"{"rfc3161Timestamps":[{}]}"#,
            r#"{"rfc3161Timestamps":[{"signedTimestamp":"not base64!"}]}"#,
            r#"{"rfc3161Timestamps":[{"signedTimestamp":"AQI="},{"signedTimestamp":7}]}"#,
        ] {
            let json = format!(
                r#"{{"mediaType":"{BUNDLE_V03_MEDIA_TYPE}","verificationMaterial":{{"timestampVerificationData":{data}}}}}"#
            );
            let bundle = Bundle::parse(json.as_bytes()).unwrap();
            assert!(
                matches!(
                    bundle.rfc3161_timestamps(),
                    Err(BundleError::Malformed { .. })
                ),
                "{data}"
            );
        }
        let mut not_an_object = Bundle::parse(
            format!(r#"{{"mediaType":"{BUNDLE_V03_MEDIA_TYPE}","verificationMaterial":{{"timestampVerificationData":[]}}}}"#)
                .as_bytes(),
        )
        .unwrap();
        assert!(not_an_object.add_rfc3161_timestamp(b"t").is_err());
        let empty = Bundle::parse(
            format!(r#"{{"mediaType":"{BUNDLE_V03_MEDIA_TYPE}","verificationMaterial":{{}}}}"#)
                .as_bytes(),
        )
        .unwrap();
        assert!(empty.timestamped_signature().is_err());
    }

    #[test]
    fn unknown_media_type_is_rejected() {
        let json = br#"{"mediaType":"application/x","verificationMaterial":{}}"#;
        assert!(matches!(
            Bundle::parse(json),
            Err(BundleError::UnsupportedMediaType { .. })
        ));
    }
}
