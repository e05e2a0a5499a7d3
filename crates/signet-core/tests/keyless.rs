//! Keyless certificates from the Sigstore public-good instance, checked against the shipped
//! public-good trusted root: a cosign v3 image signature and npm's provenance for
//! `sigstore@5.0.0` (`fixtures/sigstore/`). The signing time is the Rekor entry's
//! `integratedTime`, read here directly (the entry's own verification is `tlog`'s).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, SystemTime};

use signet_core::bundle::Bundle;
use signet_core::keyless::{
    CertificateError, CertificateTrust, IdentityMatcher, StringMatch, TrustedRoot,
    verify_certificate,
};

const COSIGN_BUNDLE: &[u8] = include_bytes!("../../../fixtures/sigstore/bundle_v03.json");
const NPM_BUNDLE: &[u8] = include_bytes!("../../../fixtures/sigstore/npm_slsa_bundle_v03.json");

/// The bundle's signing certificate and its first tlog entry's integrated time.
fn material(json: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>, SystemTime) {
    let bundle = Bundle::parse(json).unwrap();
    let (leaf, chain) = bundle.signing_certificate().unwrap().unwrap();
    let integrated: u64 = bundle.verification_material.tlog_entries[0]["integratedTime"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    (
        leaf,
        chain,
        SystemTime::UNIX_EPOCH + Duration::from_secs(integrated),
    )
}

fn trust() -> CertificateTrust {
    CertificateTrust::fulcio(&TrustedRoot::public_good().unwrap())
}

#[test]
fn the_npm_provenance_certificate_verifies_with_its_identity() {
    let (leaf, chain, at) = material(NPM_BUNDLE);
    let cert = verify_certificate(&leaf, &chain, &trust(), &[at]).unwrap();
    assert_eq!(cert.authority(), "sigstore.dev/sigstore");
    assert_eq!(cert.sct().unwrap().log(), "https://ctfe.sigstore.dev/2022");
    let id = cert.identity();
    assert_eq!(
        id.subject,
        "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main"
    );
    assert_eq!(
        id.issuer.as_deref(),
        Some("https://token.actions.githubusercontent.com")
    );
    let ext = |name: &str| id.extensions.get(name).map(String::as_str);
    assert_eq!(ext("githubWorkflowTrigger"), Some("push"));
    assert_eq!(
        ext("githubWorkflowSha"),
        Some("7d2900eca1c22b3f87c13987c8d4b7c9a29b733a")
    );
    assert_eq!(ext("githubWorkflowName"), Some("Release"));
    assert_eq!(
        ext("githubWorkflowRepository"),
        Some("sigstore/sigstore-js")
    );
    assert_eq!(ext("githubWorkflowRef"), Some("refs/heads/main"));
    assert_eq!(
        ext("buildSignerURI"),
        Some(
            "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main"
        )
    );
    assert_eq!(ext("runnerEnvironment"), Some("github-hosted"));
    assert_eq!(
        ext("sourceRepositoryURI"),
        Some("https://github.com/sigstore/sigstore-js")
    );
    assert_eq!(ext("sourceRepositoryRef"), Some("refs/heads/main"));
    assert_eq!(ext("sourceRepositoryIdentifier"), Some("495574555"));
    assert_eq!(
        ext("sourceRepositoryOwnerURI"),
        Some("https://github.com/sigstore")
    );
    assert_eq!(ext("sourceRepositoryOwnerIdentifier"), Some("71096353"));
    assert_eq!(ext("buildTrigger"), Some("push"));
    assert_eq!(
        ext("runInvocationURI"),
        Some("https://github.com/sigstore/sigstore-js/actions/runs/26781866618/attempts/1")
    );
    assert_eq!(ext("sourceRepositoryVisibilityAtSigning"), Some("public"));
    // A claim newer than signet's table is kept under its OID.
    assert_eq!(
        ext("1.3.6.1.4.1.57264.1.24"),
        Some("repo:sigstore/sigstore-js:ref:refs/heads/main")
    );

    let matcher = IdentityMatcher::new(
        StringMatch::regex(
            "^https://github\\.com/sigstore/sigstore-js/\\.github/workflows/.*@refs/heads/main$",
        )
        .unwrap(),
        StringMatch::exact("https://token.actions.githubusercontent.com"),
    )
    .with_extension(
        "sourceRepositoryOwnerIdentifier",
        StringMatch::exact("71096353"),
    );
    matcher.matches(id).unwrap();
    let other = IdentityMatcher::new(
        StringMatch::exact(
            "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/other",
        ),
        StringMatch::exact("https://token.actions.githubusercontent.com"),
    );
    assert!(
        other
            .matches(id)
            .unwrap_err()
            .starts_with("certificate subject")
    );
}

#[test]
fn the_cosign_image_signature_certificate_verifies_with_its_identity() {
    let (leaf, chain, at) = material(COSIGN_BUNDLE);
    let cert = verify_certificate(&leaf, &chain, &trust(), &[at]).unwrap();
    let id = cert.identity();
    assert_eq!(
        id.subject,
        "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0"
    );
    assert_eq!(
        id.issuer.as_deref(),
        Some("https://token.actions.githubusercontent.com")
    );
    assert_eq!(
        id.extensions.get("sourceRepositoryRef").map(String::as_str),
        Some("refs/tags/v1.34.0")
    );
    assert_eq!(
        cert.public_key().algorithm(),
        signet_core::keys::KeyAlgorithm::EcdsaP256
    );
}

#[test]
fn a_signing_time_after_expiry_is_refused() {
    for json in [NPM_BUNDLE, COSIGN_BUNDLE] {
        let (leaf, chain, at) = material(json);
        let ok = verify_certificate(&leaf, &chain, &trust(), &[at]).unwrap();
        let late = ok.not_after() + Duration::from_secs(3600);
        let err = verify_certificate(&leaf, &chain, &trust(), &[at, late]).unwrap_err();
        assert!(matches!(err, CertificateError::Expired { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with("certificate had expired at the signing time 2026-"),
            "{err}"
        );
    }
}

#[test]
fn a_flipped_byte_in_the_sct_is_refused() {
    let (mut leaf, chain, at) = material(NPM_BUNDLE);
    // The SCT list is the last extension; its last byte is the last of the SCT's signature.
    // The certificate's own signature no longer verifies either, so the chain check refuses
    // it first (the SCT check alone is exercised by the keyless unit tests).
    let oid = [
        0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02,
    ];
    let pos = leaf.windows(oid.len()).position(|w| w == oid).unwrap();
    leaf[pos + oid.len() + 20] ^= 0x01;
    assert!(verify_certificate(&leaf, &chain, &trust(), &[at]).is_err());
}

#[test]
fn a_certificate_outside_the_trust_or_without_a_time_is_refused() {
    let (leaf, chain, at) = material(NPM_BUNDLE);
    let own = CertificateTrust::from_pems(
        &pem_of(TrustedRoot::public_good().unwrap().timestamp_authorities()[0].root_der()),
        "",
    )
    .unwrap();
    assert_eq!(
        verify_certificate(&leaf, &chain, &own, &[at]).unwrap_err(),
        CertificateError::NotChained
    );
    assert_eq!(
        verify_certificate(&leaf, &chain, &trust(), &[]).unwrap_err(),
        CertificateError::NoSigningTime
    );
}

fn pem_of(der: &[u8]) -> String {
    signet_core::certified::to_pem(der).unwrap()
}
