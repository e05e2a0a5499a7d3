//! Keyless and certificate signatures (issue 13), through the real binary and a real registry,
//! all offline: real public-good bundles (`fixtures/sigstore/`, from the sigstore crate) checked
//! against the trusted root signet ships, with `verify-blob` (npm provenance and the npm
//! tarball it names) and with `verify` and the daemon after attaching a cosign v3 keyless
//! image signature as a referrer of its subject digest; and signatures made with
//! `sign --certificate` from a test CA, verified with `--ca-roots` and a `certificates` attestor.

use std::path::Path;

use signet_core::bundle::Bundle;
use signet_core::digest::Digest;
use signet_core::oci::{self, Descriptor};
use signet_core::reference::ImageRef;
use signet_registry::{Client, ClientOptions, Repository};

use crate::cli::{repo_root, signet};
use crate::harness::{Options, Registry};
use crate::images::push_image;

const GITHUB: &str = "https://token.actions.githubusercontent.com";
const NPM_WORKFLOW: &str =
    "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main";
const KUBEWARDEN_WORKFLOW: &str = "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0";
/// The image the cosign v3 sample bundle signs.
const KUBEWARDEN_DIGEST: &str =
    "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";
const PASSWORD: &str = "e2e password";

fn sample(name: &str) -> std::path::PathBuf {
    repo_root().join("fixtures/sigstore").join(name)
}

fn block_on<T>(fut: impl std::future::Future<Output = T>) -> T {
    crate::harness::install_crypto_provider();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(fut)
}

/// Attaches the real cosign v3 keyless bundle as a referrer of its subject digest in
/// `registry`, as `cosign` would have pushed it, and returns the image reference by digest.
/// The image manifest itself is not in the registry (only its signature is public material);
/// a digest-pinned verification never fetches it.
fn attach_real_bundle(registry: &Registry) -> String {
    let image = format!(
        "{}/kubewarden/controller@{KUBEWARDEN_DIGEST}",
        registry.host()
    );
    let bundle = Bundle::parse(&std::fs::read(sample("bundle_v03.json")).unwrap()).unwrap();
    let subject = Descriptor {
        media_type: oci::OCI_MANIFEST.to_string(),
        size: 1024,
        digest: KUBEWARDEN_DIGEST.parse::<Digest>().unwrap(),
        artifact_type: None,
        annotations: Default::default(),
        platform: None,
    };
    let reference: ImageRef = image.parse().unwrap();
    block_on(async {
        let client = Client::new(ClientOptions::default()).unwrap();
        let repo = Repository::new(&client, &reference);
        signet_registry::publish::push_bundle(&repo, &subject, &bundle)
            .await
            .unwrap();
    });
    image
}

#[test]
fn npm_provenance_verifies_offline_with_verify_blob_and_each_tampering_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = sample("sigstore-5.0.0.tgz");
    let bundle = sample("npm_slsa_bundle_v03.json");
    let args = |file: &Path, identity: &str, issuer: &str| {
        vec![
            "verify-blob".to_string(),
            file.display().to_string(),
            "--bundle".into(),
            bundle.display().to_string(),
            "--certificate-identity".into(),
            identity.into(),
            "--certificate-oidc-issuer".into(),
            issuer.into(),
        ]
    };
    let run = |a: Vec<String>| {
        signet(
            dir.path(),
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
            None,
        )
    };

    let ok = run(args(&tarball, NPM_WORKFLOW, GITHUB)).expect_code(0);
    assert!(ok.stdout.contains("Verified OK"), "{}", ok.stdout);
    assert!(
        ok.stdout.contains("https://slsa.dev/provenance/v1"),
        "{}",
        ok.stdout
    );
    assert!(
        ok.stdout
            .contains("https://rekor.sigstore.dev entry 1697019812"),
        "{}",
        ok.stdout
    );

    // JSON names the certificate's identity and log entry.
    let mut json_args = args(&tarball, NPM_WORKFLOW, GITHUB);
    json_args.extend(["--output".to_string(), "json".to_string()]);
    let json: serde_json::Value =
        serde_json::from_str(&run(json_args).expect_code(0).stdout).unwrap();
    assert_eq!(json["verified"], true, "{json}");
    assert_eq!(json["certificate"]["subject"], NPM_WORKFLOW, "{json}");
    assert_eq!(json["certificate"]["issuer"], GITHUB, "{json}");
    assert_eq!(
        json["certificate"]["logEntries"][0]["logIndex"], 1697019812,
        "{json}"
    );

    // Fulcio claims by flag: the npm certificate's trigger, and a claim newer than signet's
    // table (1.3.6.1.4.1.57264.1.24), by OID; a differing ref denies, naming the claim.
    let mut with_claims = args(&tarball, NPM_WORKFLOW, GITHUB);
    with_claims.extend([
        "--certificate-github-workflow-trigger".to_string(),
        "push".into(),
        "--certificate-extension".into(),
        "1.3.6.1.4.1.57264.1.24=repo:sigstore/sigstore-js:ref:refs/heads/main".into(),
    ]);
    run(with_claims.clone()).expect_code(0);
    with_claims.extend([
        "--certificate-github-workflow-ref".to_string(),
        "refs/tags/v5.0.0".into(),
    ]);
    let bad = run(with_claims).expect_code(1);
    assert!(
        bad.stdout.contains(
            r#"certificate claim githubWorkflowRef "refs/heads/main" does not match "refs/tags/v5.0.0""#
        ),
        "{}",
        bad.stdout
    );

    let other = NPM_WORKFLOW.replace("release.yml", "ci.yml");
    let bad = run(args(&tarball, &other, GITHUB)).expect_code(1);
    assert!(
        bad.stdout.contains("matches no allowed identity"),
        "{}",
        bad.stdout
    );
    let bad = run(args(&tarball, NPM_WORKFLOW, "https://gitlab.com")).expect_code(1);
    assert!(bad.stdout.contains("gitlab.com"), "{}", bad.stdout);

    // One flipped byte in the artifact.
    let mut bytes = std::fs::read(&tarball).unwrap();
    bytes[5000] ^= 1;
    let flipped = dir.path().join("sigstore-5.0.0.tgz");
    std::fs::write(&flipped, bytes).unwrap();
    let bad = run(args(&flipped, NPM_WORKFLOW, GITHUB)).expect_code(1);
    assert!(
        bad.stdout.contains("about another artifact"),
        "{}",
        bad.stdout
    );

    // Keyless needs the issuer; regular expressions must be anchored.
    let no_issuer = signet(
        dir.path(),
        &[
            "verify-blob",
            tarball.to_str().unwrap(),
            "--bundle",
            bundle.to_str().unwrap(),
            "--certificate-identity",
            NPM_WORKFLOW,
        ],
        None,
    )
    .expect_code(2);
    assert!(
        no_issuer.stderr.contains("OIDC issuer"),
        "{}",
        no_issuer.stderr
    );
    let unanchored = signet(
        dir.path(),
        &[
            "verify-blob",
            tarball.to_str().unwrap(),
            "--bundle",
            bundle.to_str().unwrap(),
            "--certificate-identity-regexp",
            "sigstore-js",
            "--certificate-oidc-issuer",
            GITHUB,
        ],
        None,
    )
    .expect_code(2);
    assert!(
        unanchored.stderr.contains("must be anchored"),
        "{}",
        unanchored.stderr
    );
}

#[test]
fn keyless_image_signature_verifies_on_a_registry_by_identity_and_policy() {
    let registry = Registry::start(Options::plain());
    let image = attach_real_bundle(&registry);
    let dir = tempfile::tempdir().unwrap();

    let ok = signet(
        dir.path(),
        &[
            "verify",
            &image,
            "--certificate-identity",
            KUBEWARDEN_WORKFLOW,
            "--certificate-oidc-issuer",
            GITHUB,
        ],
        None,
    )
    .expect_code(0);
    assert!(ok.stdout.starts_with("ALLOWED"), "{}", ok.stdout);
    assert!(
        ok.stdout
            .contains("certificate: https://github.com/kubewarden"),
        "{}",
        ok.stdout
    );
    assert!(
        ok.stdout
            .contains("https://rekor.sigstore.dev entry 1261105807"),
        "{}",
        ok.stdout
    );

    let denied = signet(
        dir.path(),
        &[
            "verify",
            &image,
            "--certificate-identity-regexp",
            "^https://github.com/shop/.*$",
            "--certificate-oidc-issuer",
            GITHUB,
            "--output",
            "json",
        ],
        None,
    )
    .expect_code(1);
    let json: serde_json::Value = serde_json::from_str(&denied.stdout).unwrap();
    assert_eq!(json["allowed"], false);
    assert!(
        json["reasons"]
            .to_string()
            .contains("matches no allowed identity"),
        "{json}"
    );

    // The same through a policy's keyless attestor (the shipped public-good root).
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "registryAllowlist: ['{host}/**']\n\
             defaultAdmissionRule:\n  evaluationMode: REQUIRE_ATTESTATION\n  \
             enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG\n  requireAttestationsBy: [release]\n\
             attestors:\n  - name: release\n    keyless:\n      identities:\n        \
             - issuer: {GITHUB}\n          subjectRegExp: ^https://github\\.com/kubewarden/kubewarden-controller/\\.github/workflows/release\\.yml@refs/tags/v.*$\n",
            host = registry.host()
        ),
    )
    .unwrap();
    let check = signet(dir.path(), &["policy", "check", "policy.yaml"], None).expect_code(0);
    assert!(
        check.stdout.contains("keyless (CA sigstore.dev/sigstore"),
        "{}",
        check.stdout
    );
    assert!(
        check.stdout.contains("identity subject /^https://github"),
        "{}",
        check.stdout
    );
    let ok = signet(
        dir.path(),
        &[
            "verify",
            &image,
            "--policy",
            "policy.yaml",
            "--output",
            "json",
        ],
        None,
    )
    .expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&ok.stdout).unwrap();
    assert_eq!(
        json["accepted"][0]["certificate"]["subject"],
        KUBEWARDEN_WORKFLOW
    );
    assert_eq!(json["accepted"][0]["certificate"]["issuer"], GITHUB);
    assert_eq!(
        json["accepted"][0]["certificate"]["logEntries"][0]["logIndex"],
        1261105807
    );
    assert_eq!(json["accepted"][0]["signedAt"]["trusted"], true);
}

/// Fulcio's claims as conditions on the real kubewarden-controller v1.34.0 release certificate
/// (trigger `push`, ref `refs/tags/v1.34.0`, repository `kubewarden/kubewarden-controller`, as
/// `openssl x509 -text` shows them): matching claims admit and a differing one denies, naming
/// the claim, through cosign's flags and through a policy's `extensions`.
#[test]
fn keyless_fulcio_claims_admit_or_deny_by_flags_and_policy() {
    let registry = Registry::start(Options::plain());
    let image = attach_real_bundle(&registry);
    let dir = tempfile::tempdir().unwrap();
    let verify = |claims: &[&str]| {
        let mut args = vec![
            "verify",
            &image,
            "--certificate-identity",
            KUBEWARDEN_WORKFLOW,
            "--certificate-oidc-issuer",
            GITHUB,
            "--output",
            "json",
        ];
        args.extend_from_slice(claims);
        signet(dir.path(), &args, None)
    };

    let ok = verify(&[
        "--certificate-github-workflow-trigger",
        "push",
        "--certificate-github-workflow-repository",
        "kubewarden/kubewarden-controller",
        "--certificate-github-workflow-ref",
        "refs/tags/v1.34.0",
        "--certificate-extension",
        "sourceRepositoryRef=refs/tags/v1.34.0",
        "--certificate-extension",
        "1.3.6.1.4.1.57264.1.11=github-hosted",
    ])
    .expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&ok.stdout).unwrap();
    assert_eq!(json["allowed"], true, "{json}");

    let denied = verify(&["--certificate-github-workflow-trigger", "pull_request"]).expect_code(1);
    let json: serde_json::Value = serde_json::from_str(&denied.stdout).unwrap();
    assert_eq!(json["allowed"], false);
    assert!(
        json["reasons"].to_string().contains(
            r#"certificate claim githubWorkflowTrigger \"push\" does not match \"pull_request\""#
        ),
        "{json}"
    );
    // A claim the certificate does not carry denies too.
    let denied = verify(&["--certificate-extension", "1.3.6.1.4.1.57264.1.99=x"]).expect_code(1);
    assert!(
        denied
            .stdout
            .contains("certificate has no 1.3.6.1.4.1.57264.1.99 claim"),
        "{}",
        denied.stdout
    );
    // A misspelt claim name is a usage error, not a certificate that never matches.
    let typo =
        verify(&["--certificate-extension", "sourceRepoRef=refs/tags/v1.34.0"]).expect_code(2);
    assert!(
        typo.stderr
            .contains("unknown Fulcio claim \"sourceRepoRef\""),
        "{}",
        typo.stderr
    );

    // The same through a policy attestor's `extensions`.
    let policy = |trigger: &str| {
        format!(
            "registryAllowlist: ['{host}/**']\n\
             defaultAdmissionRule:\n  evaluationMode: REQUIRE_ATTESTATION\n  \
             enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG\n  requireAttestationsBy: [release]\n\
             attestors:\n  - name: release\n    keyless:\n      identities:\n        \
             - issuer: {GITHUB}\n          \
             subjectRegExp: ^https://github\\.com/kubewarden/.*$\n          extensions:\n            \
             githubWorkflowTrigger: {trigger}\n            \
             sourceRepositoryRef: {{regExp: ^refs/tags/v.*$}}\n",
            host = registry.host()
        )
    };
    std::fs::write(dir.path().join("push.yaml"), policy("push")).unwrap();
    std::fs::write(dir.path().join("pr.yaml"), policy("pull_request")).unwrap();
    let check = signet(dir.path(), &["policy", "check", "push.yaml"], None).expect_code(0);
    assert!(
        check
            .stdout
            .contains(r#"githubWorkflowTrigger "push" sourceRepositoryRef /^refs/tags/v.*$/"#),
        "{}",
        check.stdout
    );
    let ok = signet(
        dir.path(),
        &["verify", &image, "--policy", "push.yaml"],
        None,
    )
    .expect_code(0);
    assert!(ok.stdout.starts_with("ALLOWED"), "{}", ok.stdout);
    let denied =
        signet(dir.path(), &["verify", &image, "--policy", "pr.yaml"], None).expect_code(1);
    assert!(
        denied.stdout.contains(
            r#"certificate claim githubWorkflowTrigger "push" does not match "pull_request""#
        ),
        "{}",
        denied.stdout
    );
}

/// A policy with an unanchored identity regexp, a missing issuer and an unreadable trusted
/// root: each refused with its position.
#[test]
fn policy_check_refuses_bad_keyless_attestors_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policy.yaml"),
        "defaultAdmissionRule:\n  evaluationMode: REQUIRE_ATTESTATION\n  \
         enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG\n  requireAttestationsBy: [a, b, c]\n\
         attestors:\n  - name: a\n    keyless:\n      identities:\n        \
         - issuer: https://issuer.example\n          subjectRegExp: shop\n  \
         - name: b\n    keyless:\n      identities:\n        - subject: x@example.com\n  \
         - name: c\n    keyless:\n      trustedRoot: {file: missing.json}\n      \
         identities: [{issuer: i, subject: s}]\n",
    )
    .unwrap();
    let run = signet(dir.path(), &["policy", "check", "policy.yaml"], None);
    assert_ne!(run.code, 0);
    let out = format!("{}{}", run.stdout, run.stderr);
    assert!(
        out.contains(":10:") && out.contains("must be anchored"),
        "{out}"
    );
    assert!(
        out.contains("is missing `issuer` or `issuerRegExp`"),
        "{out}"
    );
    assert!(
        out.contains("cannot read trusted root `missing.json`"),
        "{out}"
    );
}

#[test]
fn certificate_from_own_ca_signs_and_verifies_with_ca_roots_and_a_certificates_attestor() {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, SanType,
    };
    let registry = Registry::start(Options::plain());
    let (image, _) = push_image(&registry, "corp/app", "v1", b"corp app v1");
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);

    // Two CAs; the build key certified by the first (email SAN, code signing).
    let ca = |name: &str| {
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), Issuer::new(params, key))
    };
    let (corp_pem, corp) = ca("corp root");
    let (other_pem, _) = ca("other root");
    std::fs::write(path("corp-root.pem"), &corp_pem).unwrap();
    std::fs::write(path("other-root.pem"), &other_pem).unwrap();
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(Vec::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "corp build");
    params.subject_alt_names = vec![SanType::Rfc822Name(
        "build@corp.example".try_into().unwrap(),
    )];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    params.use_authority_key_identifier_extension = true;
    let leaf = params.signed_by(&leaf_key, &corp).unwrap();
    std::fs::write(path("build.crt"), leaf.pem()).unwrap();
    // The same key as a cosign-format key file for `signet sign`.
    let pair = signet_core::keys::KeyPair::from_pkcs8_pem(&leaf_key.serialize_pem()).unwrap();
    std::fs::write(
        path("build.key"),
        pair.to_encrypted_pem(PASSWORD.as_bytes()).unwrap(),
    )
    .unwrap();

    // A certificate for another key is refused before anything is pushed.
    signet(
        dir.path(),
        &["keygen", "--output-prefix", "other"],
        Some(PASSWORD),
    )
    .expect_code(0);
    let refused = signet(
        dir.path(),
        &[
            "sign",
            &image,
            "--key",
            "other.key",
            "--certificate",
            "build.crt",
        ],
        Some(PASSWORD),
    )
    .expect_code(2);
    assert!(
        refused.stderr.contains("the certificate is for key"),
        "{}",
        refused.stderr
    );

    signet(
        dir.path(),
        &[
            "sign",
            &image,
            "--key",
            "build.key",
            "--certificate",
            "build.crt",
        ],
        Some(PASSWORD),
    )
    .expect_code(0);

    let verify = |image: &str, roots: &str, identity: &str| {
        signet(
            dir.path(),
            &[
                "verify",
                image,
                "--ca-roots",
                roots,
                "--certificate-identity",
                identity,
            ],
            None,
        )
    };
    let ok = verify(&image, "corp-root.pem", "build@corp.example").expect_code(0);
    assert!(
        ok.stdout.contains("certificate: build@corp.example"),
        "{}",
        ok.stdout
    );
    let other_ca = verify(&image, "other-root.pem", "build@corp.example").expect_code(1);
    assert!(
        other_ca.stdout.contains("does not chain"),
        "{}",
        other_ca.stdout
    );
    let other_id = verify(&image, "corp-root.pem", "release@corp.example").expect_code(1);
    assert!(
        other_id.stdout.contains("matches no allowed identity"),
        "{}",
        other_id.stdout
    );
    // The key alone is not trusted by a policy of certificates, nor the certificate by a key.
    let policy = |roots: &str| {
        format!(
            "defaultAdmissionRule:\n  evaluationMode: REQUIRE_ATTESTATION\n  \
             enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG\n  requireAttestationsBy: [corp-build]\n\
             attestors:\n  - name: corp-build\n    certificates:\n      roots: {{file: {roots}}}\n      \
             identities: [{{subjectRegExp: '^build@corp\\.example$'}}]\n"
        )
    };
    std::fs::write(path("corp.yaml"), policy("corp-root.pem")).unwrap();
    std::fs::write(path("other.yaml"), policy("other-root.pem")).unwrap();
    let by_policy = |image: &str, policy: &str| {
        signet(dir.path(), &["verify", image, "--policy", policy], None)
    };
    by_policy(&image, "corp.yaml").expect_code(0);
    by_policy(&image, "other.yaml").expect_code(1);

    // cosign's legacy layout: the certificate and chain in the .sig layer's annotations.
    let (legacy, _) = push_image(&registry, "corp/app", "v2", b"corp app v2");
    signet(
        dir.path(),
        &[
            "sign",
            &legacy,
            "--key",
            "build.key",
            "--certificate",
            "build.crt",
            "--certificate-chain",
            "corp-root.pem",
            "--format",
            "legacy",
        ],
        Some(PASSWORD),
    )
    .expect_code(0);
    let ok = verify(&legacy, "corp-root.pem", "build@corp.example").expect_code(0);
    assert!(
        ok.stdout.contains("certificate: build@corp.example"),
        "{}",
        ok.stdout
    );
    by_policy(&legacy, "corp.yaml").expect_code(0);
    let other_ca = verify(&legacy, "other-root.pem", "build@corp.example").expect_code(1);
    assert!(
        other_ca.stdout.contains("does not chain"),
        "{}",
        other_ca.stdout
    );
    // Without certificate trust, the layer still verifies with the key, as before.
    let public = signet(
        dir.path(),
        &["public-key", "--key", "build.key"],
        Some(PASSWORD),
    )
    .expect_code(0)
    .stdout;
    std::fs::write(path("build.pub"), public).unwrap();
    signet(dir.path(), &["verify", &legacy, "--key", "build.pub"], None).expect_code(0);

    // The same for a legacy .att layer (issue 13): certificate trust verifies it, through the
    // registry's .att tag, by CA and identity; the key alone still does.
    let (attested, _) = push_image(&registry, "corp/app", "v3", b"corp app v3");
    std::fs::write(path("sbom.json"), r#"{"bomFormat":"CycloneDX"}"#).unwrap();
    signet(
        dir.path(),
        &[
            "attest",
            &attested,
            "--key",
            "build.key",
            "--certificate",
            "build.crt",
            "--predicate",
            "sbom.json",
            "--type",
            "cyclonedx",
            "--format",
            "legacy",
        ],
        Some(PASSWORD),
    )
    .expect_code(0);
    by_policy(&attested, "corp.yaml").expect_code(0);
    let other_ca = by_policy(&attested, "other.yaml").expect_code(1);
    assert!(
        other_ca.stdout.contains("does not chain"),
        "{}",
        other_ca.stdout
    );
    signet(
        dir.path(),
        &["verify", &attested, "--key", "build.pub"],
        None,
    )
    .expect_code(0);
}

/// The daemon admits the keyless-signed image where the policy allows its release workflow and
/// denies it where another workflow is required, over HTTPS, offline.
#[test]
fn the_daemon_admits_by_keyless_identity_over_https() {
    use crate::serve::{Daemon, fixture, response, set_namespace, with_images};
    let registry = Registry::start(Options::plain());
    let image = attach_real_bundle(&registry);
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "registryAllowlist: ['{host}/**']\n\
             defaultAdmissionRule:\n  evaluationMode: REQUIRE_ATTESTATION\n  \
             enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG\n  requireAttestationsBy: [kubewarden-release]\n\
             kubernetesNamespaceAdmissionRules:\n  shop:\n    evaluationMode: REQUIRE_ATTESTATION\n    \
             enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG\n    requireAttestationsBy: [shop-release]\n\
             attestors:\n  - name: kubewarden-release\n    keyless:\n      identities:\n        \
             - issuer: {GITHUB}\n          subject: {KUBEWARDEN_WORKFLOW}\n  \
             - name: shop-release\n    keyless:\n      identities:\n        \
             - issuer: {GITHUB}\n          subjectRegExp: ^https://github\\.com/shop/.*$\n",
            host = registry.host()
        ),
    )
    .unwrap();
    let daemon = Daemon::start(dir.path(), &policy, &[]);
    let review = with_images(fixture("pod.json"), &image);
    let allowed = daemon.post(
        "/admission/validate",
        &set_namespace(review.clone(), "default"),
    );
    assert_eq!(response(&allowed)["allowed"], true, "{allowed}");
    let denied = daemon.post("/admission/validate", &set_namespace(review, "shop"));
    assert_eq!(response(&denied)["allowed"], false, "{denied}");
    // The verify API's decision names the identity, issuer, log entry and signing time.
    let decision = daemon.post("/v1/verify", &serde_json::json!({"image": image}));
    assert_eq!(decision["allowed"], true, "{decision}");
    let used = &decision["accepted"][0];
    assert_eq!(
        used["certificate"]["subject"], KUBEWARDEN_WORKFLOW,
        "{decision}"
    );
    assert_eq!(used["certificate"]["issuer"], GITHUB, "{decision}");
    assert_eq!(used["certificate"]["logEntries"][0]["logIndex"], 1261105807);
    assert_eq!(used["signedAt"]["trusted"], true, "{decision}");
    let message = response(&denied)["status"]["message"].to_string();
    assert!(
        message.contains("signed with a certificate it trusts"),
        "{message}"
    );
}

/// Two images signed keyless by two workflows with certificates from a private Fulcio look-alike
/// (a test CA and CT log, `signet_core::keyless::test_pki`), each signature timestamped by the
/// test TSA for its trusted time. Over HTTPS the daemon admits the release workflow's image,
/// denies the pull-request workflow's, and denies a release-signed image whose timestamp comes
/// from a TSA the trusted root does not name.
#[test]
fn the_daemon_admits_the_allowed_workflow_and_denies_another_under_a_private_root() {
    use crate::serve::{Daemon, fixture, response, with_images};
    use crate::tsa::TestTsa;
    use signet_core::keyless::test_pki::{LeafSpec, TestFulcio};

    const RELEASE: &str =
        "https://github.com/shop/cart/.github/workflows/release.yml@refs/heads/main";
    const PULL_REQUEST: &str =
        "https://github.com/shop/cart/.github/workflows/pr.yml@refs/pull/7/merge";
    let registry = Registry::start(Options::plain());
    let (tsa, rogue_tsa) = (TestTsa::start(), TestTsa::start());
    let fulcio = TestFulcio::new();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    std::fs::write(path("chain.pem"), fulcio.chain_pem()).unwrap();

    // A short-lived certificate per workflow, and its key as a signet key file.
    let now = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    for (name, workflow) in [("release", RELEASE), ("pr", PULL_REQUEST)] {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let leaf = fulcio.leaf(&key, &LeafSpec::github(workflow, now));
        std::fs::write(
            path(&format!("{name}.crt")),
            signet_core::certified::to_pem(&leaf).unwrap(),
        )
        .unwrap();
        let pair = signet_core::keys::KeyPair::from_pkcs8_pem(&key.serialize_pem()).unwrap();
        std::fs::write(
            path(&format!("{name}.key")),
            pair.to_encrypted_pem(PASSWORD.as_bytes()).unwrap(),
        )
        .unwrap();
    }
    let sign = |image: &str, who: &str, tsa: &TestTsa| {
        signet(
            dir.path(),
            &[
                "sign",
                image,
                "--key",
                &format!("{who}.key"),
                "--certificate",
                &format!("{who}.crt"),
                "--certificate-chain",
                "chain.pem",
                "--timestamp-server-url",
                &tsa.url(),
            ],
            Some(PASSWORD),
        )
        .expect_code(0);
    };
    let pinned = |tag: &str| {
        let (image, digest) = push_image(&registry, "shop/cart", tag, tag.as_bytes());
        format!("{image}@{digest}")
    };
    let (released, proposed, rogue) = (pinned("v1"), pinned("pr-7"), pinned("rogue"));
    sign(&released, "release", &tsa);
    sign(&proposed, "pr", &tsa);
    sign(&rogue, "release", &rogue_tsa);

    let root = fulcio.trusted_root_json("2025-01-01T00:00:00Z", None, &[tsa.chain_der()]);
    std::fs::write(path("trusted_root.json"), root.to_string()).unwrap();
    let policy = path("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "registryAllowlist: ['{host}/**']\n\
             defaultAdmissionRule:\n  evaluationMode: REQUIRE_ATTESTATION\n  \
             enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG\n  requireAttestationsBy: [shop-release]\n\
             attestors:\n  - name: shop-release\n    keyless:\n      \
             trustedRoot: {{file: trusted_root.json}}\n      identities:\n        \
             - issuer: {GITHUB}\n          subject: {RELEASE}\n",
            host = registry.host()
        ),
    )
    .unwrap();
    let daemon = Daemon::start(dir.path(), &policy, &[]);
    let review = |image: &str| {
        let answer = daemon.post(
            "/admission/validate",
            &with_images(fixture("pod.json"), image),
        );
        response(&answer).clone()
    };

    let allowed = review(&released);
    assert_eq!(allowed["allowed"], true, "{allowed}");
    let denied = review(&proposed);
    assert_eq!(denied["allowed"], false, "{denied}");
    let message = denied["status"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("signed with a certificate it trusts"),
        "{message}"
    );
    let untrusted = review(&rogue);
    assert_eq!(untrusted["allowed"], false, "{untrusted}");
    // The verify API gives each rejection whole.
    let reasons = |image: &str| {
        let decision = daemon.post("/v1/verify", &serde_json::json!({"image": image}));
        assert_eq!(decision["allowed"], false, "{decision}");
        decision.to_string()
    };
    let why = reasons(&proposed);
    assert!(
        why.contains(&format!(
            "certificate subject \\\"{PULL_REQUEST}\\\" does not match"
        )),
        "{why}"
    );
    let why = reasons(&rogue);
    assert!(why.contains("RFC 3161 timestamp"), "{why}");

    // The decision names the workflow, the issuer and the TSA's time as the trusted time.
    let decision = daemon.post("/v1/verify", &serde_json::json!({"image": released}));
    assert_eq!(decision["allowed"], true, "{decision}");
    let used = &decision["accepted"][0];
    assert_eq!(used["certificate"]["subject"], RELEASE, "{decision}");
    assert_eq!(used["certificate"]["issuer"], GITHUB, "{decision}");
    assert_eq!(used["signedAt"]["trusted"], true, "{decision}");
    assert!(
        used["signedAt"]["source"]
            .as_str()
            .is_some_and(|s| s.contains("RFC 3161")),
        "{decision}"
    );

    // Mirrored with its evidence into an OCI layout, it verifies from disk the same way.
    let layout = format!("oci:{}", path("layout").display());
    signet(dir.path(), &["mirror", "--quiet", &released, &layout], None).expect_code(0);
    let on_disk = |image: &str, workflow: &str| {
        signet(
            dir.path(),
            &[
                "verify",
                image,
                "--trusted-root",
                "trusted_root.json",
                "--certificate-identity",
                workflow,
                "--certificate-oidc-issuer",
                GITHUB,
            ],
            None,
        )
    };
    let ok = on_disk(&layout, RELEASE).expect_code(0);
    assert!(ok.stdout.contains(RELEASE), "{}", ok.stdout);
    on_disk(&layout, PULL_REQUEST).expect_code(1);
}
