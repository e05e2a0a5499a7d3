//! Keyless bundles and their parts, as a registry could serve them: whole bundles verified
//! against the shipped public-good trusted root (certificates, SCTs, Rekor entries with their
//! SETs, inclusion proofs and checkpoints, RFC 3161 timestamps, identities), transparency-log
//! entries and checkpoints on their own, trusted roots, and cosign's legacy `.sig` / `.att` layers
//! (the input as payload, envelope, Rekor bundle and RFC 3161 annotations, under the real
//! sample's certificate or as the certificate itself). Nothing panics, every refusal has a
//! message, and nothing but the real sample verifies: the identity below is the sample's, and
//! any change to what is signed must fail (a legacy layer could verify only as the sample's own
//! signed parts repackaged, and then only for its image).
#![no_main]

use std::sync::LazyLock;
use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use signet_core::bundle::Bundle;
use signet_core::digest::Digest;
use signet_core::keyless::{
    IdentityMatcher, KeylessTrust, LegacyCertificate, StringMatch, TrustedRoot, verify_blob,
    verify_legacy_attestation, verify_legacy_signature, verify_statement,
};
use signet_core::tlog::{Checkpoint, LogEntry};

static TRUST: LazyLock<KeylessTrust> = LazyLock::new(|| {
    KeylessTrust::keyless(
        &TrustedRoot::public_good().expect("the shipped root loads"),
        vec![IdentityMatcher::new(
            StringMatch::regex("^https://github\\.com/.*$").expect("anchored"),
            StringMatch::exact("https://token.actions.githubusercontent.com"),
        )],
    )
});

/// The real sample's signing certificate, PEM.
static SAMPLE_CERTIFICATE: LazyLock<String> = LazyLock::new(|| {
    let bundle = Bundle::parse(include_bytes!("../../fixtures/sigstore/bundle_v03.json"))
        .expect("the sample parses");
    let (leaf, _) = bundle
        .signing_certificate()
        .expect("the sample's certificate reads")
        .expect("the sample has a certificate");
    signet_core::certified::to_pem(&leaf).expect("a certificate")
});

const SAMPLE_IMAGE: &str =
    "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";

fuzz_target!(|data: &[u8]| {
    let now = SystemTime::now();
    if let Ok(bundle) = Bundle::parse(data) {
        let image: Digest = SAMPLE_IMAGE.parse().expect("a digest");
        match verify_statement(&bundle, &TRUST, &image, now) {
            // Only the real sample signs this image; a change to its signed parts cannot pass.
            Ok((statement, _)) => assert!(statement.value().check_subject(&image).is_ok()),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
        if let Err(e) = verify_blob(&bundle, &TRUST, data, now) {
            assert!(!e.to_string().is_empty());
        }
        for entry in &bundle.verification_material.tlog_entries {
            if let Err(e) = LogEntry::from_bundle_json(entry) {
                assert!(!e.to_string().is_empty());
            }
        }
    }
    if let Err(e) = LogEntry::parse(data) {
        assert!(!e.to_string().is_empty());
    }
    if let Err(e) = LogEntry::from_cosign_bundle_annotation(data) {
        assert!(!e.to_string().is_empty());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = Checkpoint::parse(text) {
            assert!(!e.to_string().is_empty());
        }
    }
    if let Err(e) = TrustedRoot::from_json(data) {
        assert!(!e.to_string().is_empty());
    }
    legacy_layers(data, now);
});

/// The input as every part of a legacy layer that a registry controls.
fn legacy_layers(data: &[u8], now: SystemTime) {
    let image: Digest = SAMPLE_IMAGE.parse().expect("a digest");
    let text = String::from_utf8_lossy(data).into_owned();
    let annotations = |certificate: String| LegacyCertificate {
        certificate,
        chain: Some(text.clone()),
        rekor_bundle: Some(text.clone()),
        rfc3161_timestamp: Some(text.clone()),
    };
    for material in [
        annotations(SAMPLE_CERTIFICATE.clone()),
        annotations(text.clone()),
        LegacyCertificate {
            certificate: SAMPLE_CERTIFICATE.clone(),
            chain: None,
            rekor_bundle: Some(text.clone()),
            rfc3161_timestamp: None,
        },
    ] {
        // Only the real sample's signed parts, repackaged, could pass, and only for its image.
        match verify_legacy_attestation(data, &material, &TRUST, &image, now) {
            Ok((statement, _)) => assert!(statement.value().check_subject(&image).is_ok()),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
        match verify_legacy_signature(data, &text, &material, &TRUST, &image, now) {
            Ok((signed, _)) => assert_eq!(signed.value().manifest_digest, image),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}
