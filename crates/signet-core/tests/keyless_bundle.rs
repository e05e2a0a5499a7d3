//! Whole keyless bundles from the Sigstore public-good instance verified offline with
//! `keyless::verify_blob` and `keyless::verify_statement` against the shipped public-good
//! trusted root: the npm provenance of `sigstore@5.0.0` with the npm tarball it names
//! (`fixtures/sigstore/sigstore-5.0.0.tgz`, from registry.npmjs.org) and a cosign v3 image
//! signature. Every change an attacker could make is rejected with a reason naming it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use signet_core::bundle::Bundle;
use signet_core::digest::Digest;
use signet_core::keyless::{
    BlobSigned, IdentityMatcher, KeylessError, KeylessTrust, StringMatch, TrustedRoot, verify_blob,
    verify_statement,
};
use signet_core::signed_time::TimeSource;

const NPM_BUNDLE: &[u8] = include_bytes!("../../../fixtures/sigstore/npm_slsa_bundle_v03.json");
const NPM_TARBALL: &[u8] = include_bytes!("../../../fixtures/sigstore/sigstore-5.0.0.tgz");
const COSIGN_BUNDLE: &[u8] = include_bytes!("../../../fixtures/sigstore/bundle_v03.json");
const COSIGN_IMAGE: &str =
    "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";

const GITHUB: &str = "https://token.actions.githubusercontent.com";
const NPM_WORKFLOW: &str =
    "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main";
const KUBEWARDEN_WORKFLOW: &str = "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0";

fn trust(subject: StringMatch, issuer: StringMatch) -> KeylessTrust {
    KeylessTrust::keyless(
        &TrustedRoot::public_good().unwrap(),
        vec![IdentityMatcher::new(subject, issuer)],
    )
}

fn npm_trust() -> KeylessTrust {
    trust(StringMatch::exact(NPM_WORKFLOW), StringMatch::exact(GITHUB))
}

fn bundle(json: &[u8]) -> Bundle {
    Bundle::parse(json).unwrap()
}

fn edited(json: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Bundle {
    let mut value: serde_json::Value = serde_json::from_slice(json).unwrap();
    edit(&mut value);
    Bundle::parse(&serde_json::to_vec(&value).unwrap()).unwrap()
}

/// Flips one bit of the base64 field at `pointer`.
fn flip(value: &mut serde_json::Value, pointer: &str, at: usize) {
    let field = value.pointer_mut(pointer).unwrap();
    let mut bytes = B64.decode(field.as_str().unwrap()).unwrap();
    bytes[at] ^= 0x01;
    *field = serde_json::Value::String(B64.encode(bytes));
}

#[test]
fn npm_provenance_verifies_for_its_tarball_with_the_log_time_and_identity() {
    let (signed, proof) = verify_blob(
        &bundle(NPM_BUNDLE),
        &npm_trust(),
        NPM_TARBALL,
        SystemTime::now(),
    )
    .unwrap();
    let BlobSigned::Statement(statement) = signed else {
        panic!("a DSSE statement");
    };
    assert_eq!(
        statement.value().predicate_type,
        "https://slsa.dev/provenance/v1"
    );
    assert_eq!(proof.certificate().identity().subject, NPM_WORKFLOW);
    assert_eq!(
        proof.log_entries(),
        &[("https://rekor.sigstore.dev".to_string(), 1697019812)]
    );
    assert!(proof.times().iter().any(|t| matches!(
        &t.source,
        TimeSource::TransparencyLog { log } if log == "https://rekor.sigstore.dev"
    )));
    // Anchored regular expressions do as well.
    let by_regex = trust(
        StringMatch::regex(r"^https://github\.com/sigstore/sigstore-js/\.github/workflows/.*$")
            .unwrap(),
        StringMatch::regex(r"^https://token\.actions\.githubusercontent\.com$").unwrap(),
    );
    verify_blob(
        &bundle(NPM_BUNDLE),
        &by_regex,
        NPM_TARBALL,
        SystemTime::now(),
    )
    .unwrap();
}

#[test]
fn npm_provenance_is_rejected_for_another_identity_or_issuer() {
    let other_workflow = trust(
        StringMatch::exact(
            "https://github.com/sigstore/sigstore-js/.github/workflows/ci.yml@refs/heads/main",
        ),
        StringMatch::exact(GITHUB),
    );
    let err = verify_blob(
        &bundle(NPM_BUNDLE),
        &other_workflow,
        NPM_TARBALL,
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(matches!(err, KeylessError::Identity(_)), "{err}");
    assert!(
        err.to_string().contains("matches no allowed identity"),
        "{err}"
    );
    assert!(err.to_string().contains("ci.yml"), "{err}");

    let other_issuer = trust(
        StringMatch::exact(NPM_WORKFLOW),
        StringMatch::exact("https://gitlab.com"),
    );
    let err = verify_blob(
        &bundle(NPM_BUNDLE),
        &other_issuer,
        NPM_TARBALL,
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(matches!(err, KeylessError::Identity(_)), "{err}");
    assert!(err.to_string().contains("gitlab.com"), "{err}");
}

#[test]
fn a_flipped_byte_in_the_artifact_is_rejected() {
    let mut tarball = NPM_TARBALL.to_vec();
    tarball[100] ^= 0x01;
    let err = verify_blob(
        &bundle(NPM_BUNDLE),
        &npm_trust(),
        &tarball,
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(matches!(err, KeylessError::Signature(_)), "{err}");
    assert!(err.to_string().contains("about another artifact"), "{err}");
}

#[test]
fn a_flipped_byte_in_the_bundle_is_rejected() {
    // The signature over the statement.
    let b = edited(NPM_BUNDLE, |v| {
        flip(v, "/dsseEnvelope/signatures/0/sig", 10)
    });
    let err = verify_blob(&b, &npm_trust(), NPM_TARBALL, SystemTime::now()).unwrap_err();
    assert!(matches!(err, KeylessError::Signature(_)), "{err}");
    // The certificate (its signature no longer verifies under Fulcio's key).
    let b = edited(NPM_BUNDLE, |v| {
        flip(v, "/verificationMaterial/certificate/rawBytes", 600);
    });
    let err = verify_blob(&b, &npm_trust(), NPM_TARBALL, SystemTime::now()).unwrap_err();
    assert!(
        matches!(
            err,
            KeylessError::Signature(_)
                | KeylessError::Certificate(_)
                | KeylessError::LogEntry { .. }
        ),
        "{err}"
    );
}

#[test]
fn a_flipped_byte_in_the_log_proof_is_rejected() {
    // The signed entry timestamp.
    let b = edited(NPM_BUNDLE, |v| {
        flip(
            v,
            "/verificationMaterial/tlogEntries/0/inclusionPromise/signedEntryTimestamp",
            12,
        );
    });
    let err = verify_blob(&b, &npm_trust(), NPM_TARBALL, SystemTime::now()).unwrap_err();
    assert!(matches!(err, KeylessError::LogEntry { .. }), "{err}");
    assert!(err.to_string().contains("signed entry timestamp"), "{err}");
    // A hash of the inclusion proof.
    let b = edited(NPM_BUNDLE, |v| {
        flip(
            v,
            "/verificationMaterial/tlogEntries/0/inclusionProof/hashes/0",
            3,
        );
    });
    let err = verify_blob(&b, &npm_trust(), NPM_TARBALL, SystemTime::now()).unwrap_err();
    assert!(matches!(err, KeylessError::LogEntry { .. }), "{err}");
    assert!(err.to_string().contains("root hash"), "{err}");
    // The logged body.
    let b = edited(NPM_BUNDLE, |v| {
        flip(
            v,
            "/verificationMaterial/tlogEntries/0/canonicalizedBody",
            40,
        );
    });
    let err = verify_blob(&b, &npm_trust(), NPM_TARBALL, SystemTime::now()).unwrap_err();
    assert!(matches!(err, KeylessError::LogEntry { .. }), "{err}");
}

#[test]
fn without_a_log_entry_or_timestamp_there_is_no_trusted_time() {
    let b = edited(NPM_BUNDLE, |v| {
        let vm = v.pointer_mut("/verificationMaterial").unwrap();
        vm.as_object_mut().unwrap().remove("tlogEntries");
        vm.as_object_mut()
            .unwrap()
            .remove("timestampVerificationData");
    });
    let err = verify_blob(&b, &npm_trust(), NPM_TARBALL, SystemTime::now()).unwrap_err();
    assert_eq!(err, KeylessError::NoTrustedTime);
}

#[test]
fn cosign_image_signature_verifies_for_its_digest_and_no_other() {
    let image: Digest = COSIGN_IMAGE.parse().unwrap();
    let kubewarden = trust(
        StringMatch::exact(KUBEWARDEN_WORKFLOW),
        StringMatch::exact(GITHUB),
    );
    let (statement, proof) = verify_statement(
        &bundle(COSIGN_BUNDLE),
        &kubewarden,
        &image,
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(
        statement.value().predicate_type,
        "https://sigstore.dev/cosign/sign/v1"
    );
    assert_eq!(proof.certificate().identity().subject, KUBEWARDEN_WORKFLOW);
    // The log's time and the public-good TSA's timestamp both count.
    assert!(
        proof
            .times()
            .iter()
            .any(|t| matches!(t.source, TimeSource::Timestamp { .. })),
        "{:?}",
        proof.times()
    );
    let other: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
    let err = verify_statement(
        &bundle(COSIGN_BUNDLE),
        &kubewarden,
        &other,
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(matches!(err, KeylessError::Signature(_)), "{err}");
}

/// `json` (a v0.3 bundle) rewritten in the v0.1/v0.2 shape: the leaf in
/// `x509CertificateChain`, and without the inclusion proof unless `keep_proof`.
fn in_older_shape(json: &[u8], version: &str, keep_proof: bool) -> Bundle {
    edited(json, |b| {
        b["mediaType"] =
            format!("application/vnd.dev.sigstore.bundle+json;version={version}").into();
        let material = b["verificationMaterial"].as_object_mut().unwrap();
        let leaf = material.remove("certificate").unwrap();
        material.insert(
            "x509CertificateChain".into(),
            serde_json::json!({"certificates": [leaf]}),
        );
        if !keep_proof {
            material["tlogEntries"][0]
                .as_object_mut()
                .unwrap()
                .remove("inclusionProof");
        }
    })
}

/// The same real evidence in the older bundle shapes: v0.2 (`x509CertificateChain`, SET and
/// inclusion proof) and v0.1 (the chain with the SET alone, no inclusion proof). The bundle's
/// wrapper is not signed, so these are what a v0.1/v0.2 client would have written.
#[test]
fn npm_provenance_verifies_in_the_v0_1_and_v0_2_bundle_shapes() {
    for bundle in [
        in_older_shape(NPM_BUNDLE, "0.2", true),
        in_older_shape(NPM_BUNDLE, "0.1", false),
    ] {
        let (_, proof) =
            verify_blob(&bundle, &npm_trust(), NPM_TARBALL, SystemTime::now()).unwrap();
        assert_eq!(proof.certificate().identity().subject, NPM_WORKFLOW);
        assert_eq!(
            proof.log_entries(),
            &[("https://rekor.sigstore.dev".to_string(), 1697019812)]
        );
    }
    // A v0.1 bundle whose SET was flipped has nothing else to vouch for the entry.
    let mut forged: serde_json::Value = serde_json::from_slice(NPM_BUNDLE).unwrap();
    flip(
        &mut forged,
        "/verificationMaterial/tlogEntries/0/inclusionPromise/signedEntryTimestamp",
        10,
    );
    let forged = in_older_shape(&serde_json::to_vec(&forged).unwrap(), "0.1", false);
    let err = verify_blob(&forged, &npm_trust(), NPM_TARBALL, SystemTime::now()).unwrap_err();
    assert!(err.to_string().contains("signed entry timestamp"), "{err}");
}
