//! Certificates from a private Fulcio look-alike (`test_pki`): chains, SCTs, validity at the
//! signing time, code signing and identities; and a real SCT with a flipped byte.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, SystemTime};

use der::{Decode as _, Encode as _};
use rcgen::{KeyPair as RcKey, PublicKeyData as _};
use x509_cert::Certificate;
use x509_cert::ext::pkix::sct::SignedCertificateTimestampList;

use super::test_pki::{Ca, LeafSpec, Sct, TestFulcio, leaf as leaf_with};
use super::*;
use crate::keys::KeyPair;

/// 2026-01-01T00:00:00Z, when the test leaves are issued.
const ISSUED: u64 = 1_767_225_600;
const SUBJECT: &str = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";
const OIDC_ISSUER: &str = "https://token.actions.githubusercontent.com";

fn at(offset_secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(ISSUED + offset_secs)
}

fn root_ca(name: &str) -> Ca {
    Ca::root(name)
}

fn intermediate_ca(name: &str, root: &Ca) -> Ca {
    Ca::intermediate(name, root)
}

/// A Fulcio-style leaf: URI SAN, both issuer extensions, trigger and ref claims, valid ten
/// minutes from [`ISSUED`].
fn leaf(issuer: &Ca, leaf_key: &RcKey, code_signing: bool, sct: Sct<'_>) -> Vec<u8> {
    let mut spec = LeafSpec::github(SUBJECT, at(0))
        .with_claim(2, "push")
        .with_claim(14, "refs/heads/main");
    spec.code_signing = code_signing;
    leaf_with(issuer, leaf_key, &spec, sct)
}

/// The test PKI and a trusted root naming its CA (trusted 2025-06-01 to 2026-06-01) and CT log.
struct Pki {
    root: Ca,
    intermediate: Ca,
    ct: KeyPair,
    trusted_root: TrustedRoot,
}

fn pki() -> Pki {
    let fulcio = TestFulcio::new();
    let json = fulcio.trusted_root_json("2025-06-01T00:00:00Z", Some("2026-06-01T00:00:00Z"), &[]);
    let trusted_root = TrustedRoot::from_json(json.to_string().as_bytes()).unwrap();
    let TestFulcio {
        root,
        intermediate,
        ct,
    } = fulcio;
    Pki {
        root,
        intermediate,
        ct,
        trusted_root,
    }
}

impl Pki {
    fn trust(&self) -> CertificateTrust {
        CertificateTrust::fulcio(&self.trusted_root)
    }

    fn good_leaf(&self, key: &RcKey) -> Vec<u8> {
        leaf(
            &self.intermediate,
            key,
            true,
            Sct::Signed {
                signer: &self.ct,
                log_key: &self.ct,
            },
        )
    }
}

#[test]
fn a_fulcio_style_certificate_verifies_with_its_sct_and_identity() {
    let pki = pki();
    let key = RcKey::generate().unwrap();
    let der = pki.good_leaf(&key);
    // The precertificate this verifier rebuilds is the TBS the log signed.
    let cert = verify_certificate(&der, &[], &pki.trust(), &[at(60), at(120)]).unwrap();
    assert_eq!(cert.authority(), "test.example/test");
    assert_eq!(cert.public_key().der(), key.subject_public_key_info());
    assert_eq!(cert.sct().unwrap().log(), "https://ct.test.example");
    assert_eq!(
        cert.sct().unwrap().time(),
        SystemTime::UNIX_EPOCH + Duration::from_millis(ISSUED * 1000 + 5)
    );
    assert_eq!(cert.not_after(), at(600));
    let id = cert.identity();
    assert_eq!(id.subject, SUBJECT);
    assert_eq!(id.issuer.as_deref(), Some(OIDC_ISSUER));
    assert_eq!(
        id.extensions,
        std::collections::BTreeMap::from([
            ("githubWorkflowTrigger".to_string(), "push".to_string()),
            (
                "sourceRepositoryRef".to_string(),
                "refs/heads/main".to_string()
            ),
        ])
    );
    IdentityMatcher::new(
        StringMatch::regex("^https://github\\.com/acme/.*$").unwrap(),
        StringMatch::exact(OIDC_ISSUER),
    )
    .matches(id)
    .unwrap();
    // The same chain handed over by the bundle (v0.1 style, root included) changes nothing.
    let chain = vec![pki.intermediate.der.clone(), pki.root.der.clone()];
    verify_certificate(&der, &chain, &pki.trust(), &[at(60)]).unwrap();
}

#[test]
fn a_certificate_expired_at_the_signing_time_is_refused() {
    let pki = pki();
    let der = pki.good_leaf(&RcKey::generate().unwrap());
    let err = verify_certificate(&der, &[], &pki.trust(), &[at(60), at(601)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "certificate had expired at the signing time 2026-01-01T00:10:01Z (valid until 2026-01-01T00:10:00Z)"
    );
    let before = SystemTime::UNIX_EPOCH + Duration::from_secs(ISSUED - 1);
    let err = verify_certificate(&der, &[], &pki.trust(), &[before]).unwrap_err();
    assert!(matches!(err, CertificateError::NotYetValid { .. }), "{err}");
}

#[test]
fn a_certificate_without_an_sct_is_refused_for_fulcio_trust() {
    let pki = pki();
    let der = leaf(
        &pki.intermediate,
        &RcKey::generate().unwrap(),
        true,
        Sct::Missing,
    );
    let err = verify_certificate(&der, &[], &pki.trust(), &[at(60)]).unwrap_err();
    assert_eq!(err, CertificateError::NoTrustedSct { found: 0 });
    assert_eq!(
        err.to_string(),
        "no SCT from a CT log of the trusted root (the certificate carries 0)"
    );
}

#[test]
fn a_forged_sct_is_refused() {
    let pki = pki();
    let forger = KeyPair::from_p256_scalar(&[8u8; 32]).unwrap();
    let der = leaf(
        &pki.intermediate,
        &RcKey::generate().unwrap(),
        true,
        Sct::Signed {
            signer: &forger,
            log_key: &pki.ct,
        },
    );
    let err = verify_certificate(&der, &[], &pki.trust(), &[at(60)]).unwrap_err();
    assert_eq!(
        err,
        CertificateError::SctSignature {
            log: "https://ct.test.example".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "SCT signature does not verify (CT log https://ct.test.example)"
    );
}

#[test]
fn an_sct_from_an_unknown_log_is_refused() {
    let pki = pki();
    let other = KeyPair::from_p256_scalar(&[8u8; 32]).unwrap();
    let der = leaf(
        &pki.intermediate,
        &RcKey::generate().unwrap(),
        true,
        Sct::Signed {
            signer: &other,
            log_key: &other,
        },
    );
    let err = verify_certificate(&der, &[], &pki.trust(), &[at(60)]).unwrap_err();
    assert_eq!(err, CertificateError::NoTrustedSct { found: 1 });
}

#[test]
fn a_certificate_from_another_ca_does_not_chain() {
    let pki = pki();
    let other_root = root_ca("test-root");
    let other = intermediate_ca("test-intermediate", &other_root);
    let der = leaf(
        &other,
        &RcKey::generate().unwrap(),
        true,
        Sct::Signed {
            signer: &pki.ct,
            log_key: &pki.ct,
        },
    );
    let err = verify_certificate(&der, &[], &pki.trust(), &[at(60)]).unwrap_err();
    assert!(
        matches!(
            err,
            CertificateError::NotChained | CertificateError::InvalidChain { .. }
        ),
        "{err}"
    );
    // Even when the bundle carries the other CA's intermediate.
    let err = verify_certificate(
        &der,
        std::slice::from_ref(&other.der),
        &pki.trust(),
        &[at(60)],
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            CertificateError::NotChained | CertificateError::InvalidChain { .. }
        ),
        "{err}"
    );
    // With a root of a different name, it is plainly unknown.
    let stranger = intermediate_ca("stranger", &root_ca("stranger-root"));
    let der = leaf(&stranger, &RcKey::generate().unwrap(), true, Sct::Missing);
    assert_eq!(
        verify_certificate(&der, &[], &pki.trust(), &[at(60)]).unwrap_err(),
        CertificateError::NotChained
    );
}

#[test]
fn a_certificate_without_code_signing_is_refused() {
    let pki = pki();
    let der = leaf(
        &pki.intermediate,
        &RcKey::generate().unwrap(),
        false,
        Sct::Signed {
            signer: &pki.ct,
            log_key: &pki.ct,
        },
    );
    let err = verify_certificate(&der, &[], &pki.trust(), &[at(60)]).unwrap_err();
    assert_eq!(err, CertificateError::MissingCodeSigning);
    assert_eq!(
        err.to_string(),
        "certificate lacks the code-signing extended key usage"
    );
}

#[test]
fn a_signing_time_outside_the_authority_window_is_refused() {
    let root = root_ca("test-root");
    let intermediate = intermediate_ca("test-intermediate", &root);
    let ca = CertificateAuthority::from_der_chain(
        "retired",
        vec![intermediate.der.clone(), root.der.clone()],
        ValidFor {
            start: None,
            end: Some(at(0)),
        },
    )
    .unwrap();
    let trust = CertificateTrust {
        authorities: vec![ca],
        ct_logs: None,
    };
    let der = leaf(
        &intermediate,
        &RcKey::generate().unwrap(),
        true,
        Sct::Missing,
    );
    let err = verify_certificate(&der, &[], &trust, &[at(60)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the signing time 2026-01-01T00:01:00Z is outside the trusted period of retired"
    );
}

#[test]
fn identity_mismatches_and_unanchored_patterns_are_refused() {
    let pki = pki();
    let der = pki.good_leaf(&RcKey::generate().unwrap());
    let cert = verify_certificate(&der, &[], &pki.trust(), &[at(60)]).unwrap();
    let wrong_subject = IdentityMatcher::new(
        StringMatch::exact(
            "https://github.com/acme/other/.github/workflows/release.yml@refs/heads/main",
        ),
        StringMatch::exact(OIDC_ISSUER),
    );
    assert!(
        wrong_subject
            .matches(cert.identity())
            .unwrap_err()
            .starts_with(&format!("certificate subject \"{SUBJECT}\" does not match"))
    );
    let wrong_issuer = IdentityMatcher::new(
        StringMatch::exact(SUBJECT),
        StringMatch::exact("https://accounts.google.com"),
    );
    assert_eq!(
        wrong_issuer.matches(cert.identity()).unwrap_err(),
        format!(
            "certificate issuer \"{OIDC_ISSUER}\" does not match \"https://accounts.google.com\""
        )
    );
    // A keyless certificate must be matched on its issuer as well.
    assert_eq!(
        cert.check_identity(&IdentityMatcher::subject_only(StringMatch::exact(SUBJECT)))
            .unwrap_err(),
        "a keyless identity must name the OIDC issuer; the matcher names none"
    );
    cert.check_identity(&IdentityMatcher::new(
        StringMatch::exact(SUBJECT),
        StringMatch::exact(OIDC_ISSUER),
    ))
    .unwrap();
    assert!(matches!(
        StringMatch::regex("https://github.com/acme/.*"),
        Err(IdentityError::Unanchored { .. })
    ));
}

#[test]
fn own_pki_certificates_verify_without_an_sct_and_others_do_not() {
    let root = root_ca("corp-root");
    let intermediate = intermediate_ca("corp-signing", &root);
    let trust = CertificateTrust::from_pems(&root.pem(), &intermediate.pem()).unwrap();
    assert!(!trust.requires_sct());
    let der = leaf(
        &intermediate,
        &RcKey::generate().unwrap(),
        true,
        Sct::Missing,
    );
    let cert = verify_certificate(&der, &[], &trust, &[at(60)]).unwrap();
    assert_eq!(cert.identity().subject, SUBJECT);
    assert!(cert.sct().is_none());
    cert.check_identity(&IdentityMatcher::subject_only(StringMatch::exact(SUBJECT)))
        .unwrap();
    assert!(
        cert.authority().contains("corp-root"),
        "{}",
        cert.authority()
    );

    // Intermediates may come with the evidence instead of the configuration.
    let roots_only = CertificateTrust::from_pems(&root.pem(), "").unwrap();
    verify_certificate(
        &der,
        std::slice::from_ref(&intermediate.der),
        &roots_only,
        &[at(60)],
    )
    .unwrap();
    assert_eq!(
        verify_certificate(&der, &[], &roots_only, &[at(60)]).unwrap_err(),
        CertificateError::NotChained
    );

    let elsewhere = intermediate_ca("elsewhere", &root_ca("elsewhere-root"));
    let der = leaf(&elsewhere, &RcKey::generate().unwrap(), true, Sct::Missing);
    assert_eq!(
        verify_certificate(
            &der,
            std::slice::from_ref(&elsewhere.der),
            &trust,
            &[at(60)]
        )
        .unwrap_err(),
        CertificateError::NotChained
    );
    assert!(CertificateTrust::from_pems("", "").is_err());
}

/// The real npm provenance certificate's SCT, with one byte of its signature flipped, checked by
/// the SCT verifier alone (the chain check would refuse the altered certificate first).
#[test]
fn a_flipped_byte_in_a_real_sct_signature_is_refused() {
    let bundle = crate::bundle::Bundle::parse(include_bytes!(
        "../../../../fixtures/sigstore/npm_slsa_bundle_v03.json"
    ))
    .unwrap();
    let (leaf_der, _) = bundle.signing_certificate().unwrap().unwrap();
    let root = TrustedRoot::public_good().unwrap();
    let fulcio = &root.certificate_authorities()[1];
    let issuer = Certificate::from_der(&fulcio.intermediates_der()[0]).unwrap();
    let issuer_spki = issuer
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .unwrap();
    let cert = Certificate::from_der(&leaf_der).unwrap();
    let good = sct::verify_embedded_sct(&leaf_der, &cert, &issuer_spki, root.ctlogs()).unwrap();
    assert_eq!(good.log(), "https://ctfe.sigstore.dev/2022");

    // The SCT list is the last extension; its last byte is the last of the SCT's signature.
    let (_, list) = cert
        .tbs_certificate()
        .get_extension::<SignedCertificateTimestampList>()
        .unwrap()
        .unwrap();
    let list_der = list.to_der().unwrap();
    let pos = leaf_der
        .windows(list_der.len())
        .position(|w| w == list_der.as_slice())
        .unwrap();
    let mut flipped = leaf_der.clone();
    flipped[pos + list_der.len() - 1] ^= 0x01;
    let cert = Certificate::from_der(&flipped).unwrap();
    assert_eq!(
        sct::verify_embedded_sct(&flipped, &cert, &issuer_spki, root.ctlogs()).unwrap_err(),
        CertificateError::SctSignature {
            log: "https://ctfe.sigstore.dev/2022".into()
        }
    );
}

/// A message-signature bundle (what `cosign sign-blob --bundle` writes) from the private Fulcio,
/// its signing time from the OpenSSL TSA: `verify_blob` accepts it for its file under the
/// right identity only.
#[test]
fn a_message_signature_bundle_verifies_for_its_file_by_its_timestamp() {
    use super::test_pki::OpensslTsa;
    use sha2::Digest as _;
    let dir = tempfile::tempdir().unwrap();
    let tsa = OpensslTsa::new(dir.path(), "Blob TSA");
    let fulcio = TestFulcio::new();
    let json = fulcio.trusted_root_json("2025-01-01T00:00:00Z", None, &[tsa.chain_der()]);
    let root = TrustedRoot::from_json(json.to_string().as_bytes()).unwrap();
    let key = RcKey::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let now = SystemTime::now();
    let leaf = fulcio.leaf(
        &key,
        &LeafSpec::github(SUBJECT, now - Duration::from_secs(60)),
    );
    let signer = KeyPair::from_pkcs8_pem(&key.serialize_pem()).unwrap();
    let file = b"release tarball";
    let signature = signer.sign(file);
    let b64 = |bytes: &[u8]| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    let bundle = crate::bundle::Bundle::parse(
        serde_json::json!({
            "mediaType": crate::bundle::BUNDLE_V03_MEDIA_TYPE,
            "verificationMaterial": {
                "certificate": {"rawBytes": b64(&leaf)},
                "timestampVerificationData": {
                    "rfc3161Timestamps": [{"signedTimestamp": b64(&tsa.reply_over(&signature))}],
                },
            },
            "messageSignature": {
                "messageDigest": {
                    "algorithm": "SHA2_256",
                    "digest": b64(&sha2::Sha256::digest(file)),
                },
                "signature": b64(&signature),
            },
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let trust = |subject: &str| {
        KeylessTrust::keyless(
            &root,
            vec![IdentityMatcher::new(
                StringMatch::exact(subject),
                StringMatch::exact(OIDC_ISSUER),
            )],
        )
    };
    let (signed, proof) = verify_blob(&bundle, &trust(SUBJECT), file, now).unwrap();
    assert!(matches!(signed, BlobSigned::Message));
    assert_eq!(proof.certificate().identity().subject, SUBJECT);
    assert!(proof.times().iter().any(|t| matches!(
        &t.source,
        crate::signed_time::TimeSource::Timestamp { authority } if authority == "tsa-0"
    )));
    let err = verify_blob(&bundle, &trust(SUBJECT), b"another tarball", now).unwrap_err();
    assert!(err.to_string().contains("not the file's"), "{err}");
    let other = "https://github.com/acme/app/.github/workflows/pr.yml@refs/pull/1/merge";
    let err = verify_blob(&bundle, &trust(other), file, now).unwrap_err();
    assert!(err.to_string().contains(SUBJECT), "{err}");
}
