//! cosign's legacy `.sig` and `.att` layers signed keyless (issue 13), verified offline with
//! [`verify_legacy_signature`] and [`verify_legacy_attestation`] under a private Sigstore made
//! here at test time: the Fulcio look-alike of [`super::test_pki`], a test Rekor log signing
//! SETs, and an OpenSSL TSA (`openssl ts`) for the `dev.sigstore.cosign/rfc3161timestamp`
//! annotation.
//!
//! These tests need the `openssl` command (installed by `scripts/setup-tests.sh`). Without it
//! they fail saying so; they never skip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rcgen::KeyPair as RcKey;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::test_pki::{LeafSpec, OpensslTsa, TestFulcio};
use super::{
    IdentityMatcher, KeylessError, KeylessTrust, LegacyCertificate, StringMatch, TrustedRoot,
    verify_legacy_attestation, verify_legacy_signature,
};
use crate::digest::Digest;
use crate::dsse::Envelope;
use crate::intoto::{PAYLOAD_TYPE, Statement};
use crate::keys::KeyPair;
use crate::signed_time::TimeSource;
use crate::simplesigning::SimpleSigning;

const SUBJECT: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";
const OIDC_ISSUER: &str = "https://token.actions.githubusercontent.com";
const LOG_INDEX: u64 = 4242;
const IMAGE: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// The name [`TestFulcio::trusted_root_json`] gives the first timestamp authority.
const TSA_NAME: &str = "tsa-0";

fn image() -> Digest {
    IMAGE.parse().unwrap()
}

/// cosign's annotation value for `tsa`'s timestamp over `data`.
fn annotation_over(tsa: &OpensslTsa, data: &[u8]) -> String {
    json!({"SignedRFC3161Timestamp": B64.encode(tsa.reply_over(data))}).to_string()
}

// ---------------------------------------------------------------------------------------------
// The private Sigstore

/// The whole private Sigstore: made once per test run.
struct Sigstore {
    _dir: tempfile::TempDir,
    fulcio: TestFulcio,
    rekor: KeyPair,
    tsa: OpensslTsa,
    /// A TSA no trusted root here names.
    other_tsa: OpensslTsa,
    /// When the leaves are issued (a minute ago: the TSA stamps the current time); the Rekor
    /// entries are integrated 30 s later.
    issued: SystemTime,
    trusted_root: TrustedRoot,
}

fn sigstore() -> &'static Sigstore {
    static SIGSTORE: OnceLock<Sigstore> = OnceLock::new();
    SIGSTORE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let tsa = OpensslTsa::new(dir.path(), "Legacy Test TSA");
        let other_tsa = OpensslTsa::new(dir.path(), "Other TSA");
        let fulcio = TestFulcio::new();
        let rekor = KeyPair::from_p256_scalar(&[9u8; 32]).unwrap();
        let mut root_json =
            fulcio.trusted_root_json("2025-01-01T00:00:00Z", None, &[tsa.chain_der()]);
        root_json["tlogs"] = json!([{
            "baseUrl": "https://rekor.test.example",
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": B64.encode(rekor.public_key().der()),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": {"start": "2025-01-01T00:00:00Z"},
            },
            "logId": {"keyId": B64.encode(Sha256::digest(rekor.public_key().der()))},
        }]);
        let trusted_root = TrustedRoot::from_json(root_json.to_string().as_bytes()).unwrap();
        // Whole seconds: Rekor's integrated time has no finer grain.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        Sigstore {
            _dir: dir,
            fulcio,
            rekor,
            tsa,
            other_tsa,
            issued: UNIX_EPOCH + Duration::from_secs(now - 60),
            trusted_root,
        }
    })
}

impl Sigstore {
    /// A legacy `.att` layer verified against this Sigstore for [`SUBJECT`] and [`IMAGE`], now.
    fn attestation(
        &self,
        layer: &[u8],
        material: &LegacyCertificate,
    ) -> Result<
        (
            crate::verified::Verified<Statement>,
            super::CertifiedSignature,
        ),
        KeylessError,
    > {
        verify_legacy_attestation(
            layer,
            material,
            &self.trust(SUBJECT),
            &image(),
            SystemTime::now(),
        )
    }

    /// A legacy `.sig` layer verified against this Sigstore for [`SUBJECT`] and [`IMAGE`], now.
    fn signature(
        &self,
        payload: &[u8],
        signature: &str,
        material: &LegacyCertificate,
    ) -> Result<
        (
            crate::verified::Verified<SimpleSigning>,
            super::CertifiedSignature,
        ),
        KeylessError,
    > {
        verify_legacy_signature(
            payload,
            signature,
            material,
            &self.trust(SUBJECT),
            &image(),
            SystemTime::now(),
        )
    }

    fn trust(&self, subject: &str) -> KeylessTrust {
        KeylessTrust::keyless(
            &self.trusted_root,
            vec![IdentityMatcher::new(
                StringMatch::exact(subject),
                StringMatch::exact(OIDC_ISSUER),
            )],
        )
    }

    /// A signer: its key, and its Fulcio certificate (DER).
    fn signer(&self) -> (KeyPair, Vec<u8>) {
        let rc = RcKey::generate().unwrap();
        let key = KeyPair::from_pkcs8_der(&rc.serialize_der()).unwrap();
        let leaf = self
            .fulcio
            .leaf(&rc, &LeafSpec::github(SUBJECT, self.issued));
        (key, leaf)
    }

    /// When the test Rekor integrated its entries, in seconds since the epoch.
    fn integrated(&self) -> u64 {
        self.issued.duration_since(UNIX_EPOCH).unwrap().as_secs() + 30
    }

    /// cosign's Rekor bundle annotation for `body`, with a SET by the test Rekor.
    fn rekor_annotation(&self, body: &[u8]) -> String {
        let time = self.integrated();
        let log_id = hex::encode(Sha256::digest(self.rekor.public_key().der()));
        let set = self.rekor.sign(
            format!(
                "{{\"body\":\"{}\",\"integratedTime\":{time},\"logID\":\"{log_id}\",\"logIndex\":{LOG_INDEX}}}",
                B64.encode(body)
            )
            .as_bytes(),
        );
        json!({
            "SignedEntryTimestamp": B64.encode(set),
            "Payload": {
                "body": B64.encode(body),
                "integratedTime": time,
                "logIndex": LOG_INDEX,
                "logID": log_id,
            },
        })
        .to_string()
    }
}

fn pem_of(der: &[u8]) -> String {
    crate::certified::to_pem(der).unwrap()
}

/// The material of a layer signed with `leaf`: certificate and chain annotations.
fn annotations_of(leaf: &[u8]) -> LegacyCertificate {
    let s = sigstore();
    LegacyCertificate {
        certificate: pem_of(leaf),
        chain: Some(s.fulcio.chain_pem()),
        rekor_bundle: None,
        rfc3161_timestamp: None,
    }
}

/// A legacy `.att` layer: a DSSE envelope over an in-toto statement about [`IMAGE`], signed
/// with `key`; the layer's bytes.
fn att_layer(key: &KeyPair) -> (Envelope, Vec<u8>) {
    let statement = Statement::new(
        "registry.test/acme/app",
        &image(),
        "https://slsa.dev/provenance/v1",
        json!({"buildDefinition": {"buildType": "https://example.test/build"}}),
    );
    let envelope = Envelope::sign(PAYLOAD_TYPE, &statement.to_json(), key).unwrap();
    let bytes = envelope.to_json();
    (envelope, bytes)
}

/// Rekor's intoto 0.0.2 body for `envelope` signed with certificate `leaf` (the envelope's
/// base64 strings stored as bytes, so base64 of base64; the verifier the certificate PEM).
fn intoto_body(envelope: &Envelope, leaf: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "0.0.2",
        "kind": "intoto",
        "spec": {"content": {
            "envelope": {
                "payloadType": envelope.payload_type,
                "signatures": [{
                    "sig": B64.encode(envelope.signatures[0].sig.as_bytes()),
                    "publicKey": B64.encode(pem_of(leaf)),
                }],
            },
            "hash": {"algorithm": "sha256", "value": hex::encode(Sha256::digest(envelope.to_json()))},
            "payloadHash": {
                "algorithm": "sha256",
                "value": hex::encode(Sha256::digest(envelope.payload_bytes().unwrap())),
            },
        }},
    }))
    .unwrap()
}

/// A legacy `.sig` layer: the simple-signing payload about [`IMAGE`] and its base64 signature
/// with `key`.
fn sig_layer(key: &KeyPair) -> (Vec<u8>, String) {
    let payload = SimpleSigning::cosign("registry.test/acme/app", &image(), BTreeMap::new())
        .to_cosign_bytes();
    let signature = B64.encode(key.sign(&payload));
    (payload, signature)
}

fn times_by_timestamp(times: &[crate::signed_time::SignedTime]) -> Vec<String> {
    times
        .iter()
        .filter_map(|t| match &t.source {
            TimeSource::Timestamp { authority } => Some(authority.clone()),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// `.att` layers with a Rekor bundle

#[test]
fn legacy_att_with_a_certificate_verifies_by_its_rekor_set_and_identity() {
    let s = sigstore();
    let (key, leaf) = s.signer();
    let (envelope, layer) = att_layer(&key);
    let material = LegacyCertificate {
        rekor_bundle: Some(s.rekor_annotation(&intoto_body(&envelope, &leaf))),
        ..annotations_of(&leaf)
    };
    let (statement, certified) = s.attestation(&layer, &material).unwrap();
    assert_eq!(
        statement.value().predicate_type,
        "https://slsa.dev/provenance/v1"
    );
    assert_eq!(certified.certificate().identity().subject, SUBJECT);
    assert_eq!(
        certified.log_entries(),
        &[("https://rekor.test.example".to_string(), LOG_INDEX)]
    );
    assert_eq!(certified.times().len(), 1);
    assert_eq!(
        certified.times()[0].at,
        UNIX_EPOCH + Duration::from_secs(s.integrated())
    );

    // Without its Rekor bundle (and no timestamp), a Fulcio certificate has no trusted time.
    let err = s
        .attestation(&layer, &material_without_times(&material))
        .unwrap_err();
    assert_eq!(err, KeylessError::NoTrustedTime);
}

fn material_without_times(m: &LegacyCertificate) -> LegacyCertificate {
    LegacyCertificate {
        rekor_bundle: None,
        rfc3161_timestamp: None,
        ..m.clone()
    }
}

#[test]
fn legacy_att_for_another_identity_is_rejected() {
    let s = sigstore();
    let (key, leaf) = s.signer();
    let (envelope, layer) = att_layer(&key);
    let material = LegacyCertificate {
        rekor_bundle: Some(s.rekor_annotation(&intoto_body(&envelope, &leaf))),
        ..annotations_of(&leaf)
    };
    let err = verify_legacy_attestation(
        &layer,
        &material,
        &s.trust("https://github.com/acme/other/.github/workflows/release.yml@refs/heads/main"),
        &image(),
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(matches!(err, KeylessError::Identity(_)), "{err}");
    assert!(err.to_string().contains(SUBJECT), "{err}");
}

#[test]
fn legacy_att_whose_rekor_body_is_for_another_envelope_is_rejected() {
    let s = sigstore();
    let (key, leaf) = s.signer();
    let (_, layer) = att_layer(&key);
    // Another envelope by the same certificate: the SET is good, the body is not this layer's.
    let other = Envelope::sign(PAYLOAD_TYPE, b"{\"another\":\"statement\"}", &key).unwrap();
    let material = LegacyCertificate {
        rekor_bundle: Some(s.rekor_annotation(&intoto_body(&other, &leaf))),
        ..annotations_of(&leaf)
    };
    let err = s.attestation(&layer, &material).unwrap_err();
    assert!(matches!(err, KeylessError::LogEntry { .. }), "{err}");
    assert!(err.to_string().contains("another"), "{err}");
}

#[test]
fn legacy_att_about_another_image_is_rejected() {
    let s = sigstore();
    let (key, leaf) = s.signer();
    let (envelope, layer) = att_layer(&key);
    let material = LegacyCertificate {
        rekor_bundle: Some(s.rekor_annotation(&intoto_body(&envelope, &leaf))),
        ..annotations_of(&leaf)
    };
    let other: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
    let err = verify_legacy_attestation(
        &layer,
        &material,
        &s.trust(SUBJECT),
        &other,
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(matches!(err, KeylessError::Signature(_)), "{err}");
}

// ---------------------------------------------------------------------------------------------
// The `dev.sigstore.cosign/rfc3161timestamp` annotation

#[test]
fn legacy_sig_with_an_rfc3161_timestamp_and_no_rekor_bundle_verifies_at_the_tsa_time() {
    let s = sigstore();
    let (key, leaf) = s.signer();
    let (payload, signature) = sig_layer(&key);
    // cosign stamps a `.sig` layer's raw signature bytes.
    let raw = B64.decode(&signature).unwrap();
    let material = LegacyCertificate {
        rfc3161_timestamp: Some(annotation_over(&s.tsa, &raw)),
        ..annotations_of(&leaf)
    };
    let before = SystemTime::now() - Duration::from_secs(5);
    let (verified, certified) = s.signature(&payload, &signature, &material).unwrap();
    assert_eq!(verified.value().manifest_digest, image());
    assert!(certified.log_entries().is_empty());
    assert_eq!(
        times_by_timestamp(certified.times()),
        vec![TSA_NAME.to_string()]
    );
    assert!(certified.times()[0].at >= before);

    // The same layer without the timestamp has no trusted time.
    let err = s
        .signature(&payload, &signature, &material_without_times(&material))
        .unwrap_err();
    assert_eq!(err, KeylessError::NoTrustedTime);
}

#[test]
fn legacy_att_with_an_rfc3161_timestamp_over_its_envelope_verifies_at_the_tsa_time() {
    let s = sigstore();
    let (key, leaf) = s.signer();
    let (_, layer) = att_layer(&key);
    // cosign stamps an `.att` layer's payload: the envelope JSON as stored.
    let material = LegacyCertificate {
        rfc3161_timestamp: Some(annotation_over(&s.tsa, &layer)),
        ..annotations_of(&leaf)
    };
    let (_, certified) = s.attestation(&layer, &material).unwrap();
    assert_eq!(
        times_by_timestamp(certified.times()),
        vec![TSA_NAME.to_string()]
    );
}

#[test]
fn a_legacy_timestamp_with_a_rekor_bundle_gives_both_times() {
    let s = sigstore();
    let (key, leaf) = s.signer();
    let (envelope, layer) = att_layer(&key);
    let material = LegacyCertificate {
        rekor_bundle: Some(s.rekor_annotation(&intoto_body(&envelope, &leaf))),
        rfc3161_timestamp: Some(annotation_over(&s.tsa, &layer)),
        ..annotations_of(&leaf)
    };
    let (_, certified) = s.attestation(&layer, &material).unwrap();
    assert_eq!(certified.times().len(), 2);
    assert_eq!(certified.log_entries().len(), 1);
}

#[test]
fn a_legacy_timestamp_from_a_tsa_outside_the_trusted_root_is_rejected() {
    let s = sigstore();
    let (key, leaf) = s.signer();
    let (payload, signature) = sig_layer(&key);
    let raw = B64.decode(&signature).unwrap();
    let material = LegacyCertificate {
        rfc3161_timestamp: Some(annotation_over(&s.other_tsa, &raw)),
        ..annotations_of(&leaf)
    };
    let err = s.signature(&payload, &signature, &material).unwrap_err();
    assert!(matches!(err, KeylessError::LegacyTimestamp { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "RFC 3161 timestamp in the dev.sigstore.cosign/rfc3161timestamp annotation: "
        ),
        "{text}"
    );
    assert!(text.contains("Other TSA"), "{text}");

    // Fail closed even when a Rekor entry would have given a trusted time: a bad timestamp is
    // never ignored.
    let (envelope, layer) = att_layer(&key);
    let material = LegacyCertificate {
        rekor_bundle: Some(s.rekor_annotation(&intoto_body(&envelope, &leaf))),
        rfc3161_timestamp: Some(annotation_over(&s.other_tsa, &layer)),
        ..annotations_of(&leaf)
    };
    let err = s.attestation(&layer, &material).unwrap_err();
    assert!(matches!(err, KeylessError::LegacyTimestamp { .. }), "{err}");
}

#[test]
fn a_legacy_timestamp_over_other_bytes_is_rejected() {
    let s = sigstore();
    let (key, leaf) = s.signer();
    // A `.sig` timestamp over the payload rather than the signature.
    let (payload, signature) = sig_layer(&key);
    let material = LegacyCertificate {
        rfc3161_timestamp: Some(annotation_over(&s.tsa, &payload)),
        ..annotations_of(&leaf)
    };
    let err = s.signature(&payload, &signature, &material).unwrap_err();
    assert!(matches!(err, KeylessError::LegacyTimestamp { .. }), "{err}");
    assert!(err.to_string().contains("message imprint"), "{err}");

    // An `.att` timestamp over the DSSE signature rather than the envelope.
    let (envelope, layer) = att_layer(&key);
    let dsse_signature = B64.decode(&envelope.signatures[0].sig).unwrap();
    let material = LegacyCertificate {
        rfc3161_timestamp: Some(annotation_over(&s.tsa, &dsse_signature)),
        ..annotations_of(&leaf)
    };
    let err = s.attestation(&layer, &material).unwrap_err();
    assert!(matches!(err, KeylessError::LegacyTimestamp { .. }), "{err}");
    assert!(err.to_string().contains("message imprint"), "{err}");
}

#[test]
fn a_malformed_legacy_timestamp_annotation_is_rejected() {
    let s = sigstore();
    let (key, leaf) = s.signer();
    let (_, layer) = att_layer(&key);
    for bad in [
        "not json",
        r#"{"SignedRFC3161Timestamp":"%%%"}"#,
        r#"{"SignedRFC3161Timestamp":"MAMCAQA="}"#,
    ] {
        let material = LegacyCertificate {
            rfc3161_timestamp: Some(bad.to_string()),
            ..annotations_of(&leaf)
        };
        let err = s.attestation(&layer, &material).unwrap_err();
        assert!(
            matches!(err, KeylessError::LegacyTimestamp { .. }),
            "{bad}: {err}"
        );
    }
}
