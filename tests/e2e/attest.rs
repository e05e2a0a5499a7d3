//! Signatures and attestations in a real registry (distribution 2.8, no referrers API), through
//! the real binary: sign, attest, tree and verify, in bundle and legacy formats.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use signet_core::bundle::Bundle;
use signet_core::digest::Digest;
use signet_core::intoto::{COSIGN_SIGN_PREDICATE, Statement};
use signet_core::keys::KeyPair;
use signet_core::oci;
use signet_core::reference::ImageRef;
use signet_core::simplesigning::SimpleSigning;
use signet_registry::publish::{self, StorageFormat};
use signet_registry::{Client, ClientOptions, Repository};

use crate::cli::{Run, signet};
use crate::harness::{Options, Registry};
use crate::images::push_image;

const PASSWORD: &str = "e2e password";

/// A temporary directory with two key pairs: `ci` and `other`.
struct Keys {
    dir: tempfile::TempDir,
}

impl Keys {
    fn new() -> Keys {
        let dir = tempfile::tempdir().unwrap();
        for name in ["ci", "other"] {
            signet(
                dir.path(),
                &["keygen", "--output-prefix", name],
                Some(PASSWORD),
            )
            .expect_code(0);
        }
        Keys { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn key_id(&self, name: &str) -> String {
        let pem = std::fs::read_to_string(self.file(&format!("{name}.pub"))).unwrap();
        signet_core::keys::PublicKey::from_pem(&pem)
            .unwrap()
            .id()
            .to_string()
    }
    fn pair(&self, name: &str) -> KeyPair {
        let pem = std::fs::read_to_string(self.file(&format!("{name}.key"))).unwrap();
        KeyPair::from_encrypted_pem(&pem, PASSWORD.as_bytes()).unwrap()
    }
    fn run(&self, args: &[&str]) -> Run {
        signet(self.path(), args, Some(PASSWORD))
    }
}

fn block_on<T>(fut: impl std::future::Future<Output = T>) -> T {
    crate::harness::install_crypto_provider();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(fut)
}

fn repo_for(image: &str) -> (Repository, ImageRef) {
    // The library client needs the provider the `signet` binary installs for itself.
    crate::harness::install_crypto_provider();
    let image: ImageRef = image.parse().unwrap();
    let client = Client::new(ClientOptions::default()).unwrap();
    (Repository::new(&client, &image), image)
}

#[test]
fn sign_then_verify_with_right_key_other_key_and_no_evidence() {
    let registry = Registry::start(Options::plain());
    let keys = Keys::new();
    let (image, digest) = push_image(&registry, "team/app", "v1", b"app v1");
    let (unsigned, _) = push_image(&registry, "team/app", "v2", b"app v2");

    let run = keys
        .run(&["sign", &image, "--key", "ci.key"])
        .expect_code(0);
    assert!(run.stdout.trim().starts_with("sha256:"), "{}", run.stdout);
    assert!(run.stderr.contains(&digest), "{}", run.stderr);

    let run = keys
        .run(&["verify", &image, "--key", "ci.pub"])
        .expect_code(0);
    assert!(run.stdout.starts_with("ALLOWED"), "{}", run.stdout);

    let run = keys
        .run(&["verify", &image, "--key", "other.pub", "--output", "json"])
        .expect_code(1);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["allowed"], false);
    assert_eq!(json["digest"], digest.as_str());
    assert_eq!(json["rule"], "key");
    assert_eq!(json["enforcement"], "enforced");
    assert_eq!(json["attestors"][0]["satisfied"], false);
    let reasons = json["reasons"].to_string();
    // The reasons name the key that was asked for and the key that was seen.
    assert!(reasons.contains(&keys.key_id("other")[..19]), "{reasons}");
    assert!(
        reasons.contains(&format!("the bundle names key {}", keys.key_id("ci"))),
        "{reasons}"
    );
    assert!(
        reasons.contains("does not verify") || reasons.contains("verifies with"),
        "{reasons}"
    );

    let run = keys
        .run(&["verify", &unsigned, "--key", "ci.pub"])
        .expect_code(1);
    assert!(
        run.stdout.contains("no signatures or attestations found"),
        "{}",
        run.stdout
    );
}

#[test]
fn legacy_and_bundle_formats_are_all_found_and_accepted() {
    let registry = Registry::start(Options::plain());
    let keys = Keys::new();
    let (image, _) = push_image(&registry, "team/app", "v1", b"formats");
    std::fs::write(
        keys.file("sbom.json"),
        br#"{"bomFormat":"CycloneDX","components":[]}"#,
    )
    .unwrap();

    keys.run(&["sign", &image, "--key", "ci.key"])
        .expect_code(0);
    keys.run(&["sign", &image, "--key", "other.key", "--format", "legacy"])
        .expect_code(0);
    keys.run(&[
        "sign", &image, "--key", "ci.key", "--format", "legacy", "-a", "team=qa",
    ])
    .expect_code(0);
    let sbom = keys
        .run(&[
            "attest",
            &image,
            "--key",
            "ci.key",
            "--predicate",
            "sbom.json",
            "--type",
            "cyclonedx",
        ])
        .expect_code(0);
    keys.run(&[
        "attest",
        &image,
        "--key",
        "other.key",
        "--predicate",
        "sbom.json",
        "--type",
        "cyclonedx",
        "--format",
        "legacy",
    ])
    .expect_code(0);
    // A signature on the SBOM attestation: a nested referrer.
    let sbom_ref = format!("{}/team/app@{}", registry.host(), sbom.stdout.trim());
    let nested = keys
        .run(&["sign", &sbom_ref, "--key", "other.key"])
        .expect_code(0);

    let tree = keys
        .run(&["tree", &image, "--output", "json"])
        .expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&tree.stdout).unwrap();
    let referrers = json["referrers"].as_array().unwrap();
    assert_eq!(referrers.len(), 2, "{}", tree.stdout);
    let sbom_node = referrers
        .iter()
        .find(|n| n["digest"] == sbom.stdout.trim())
        .unwrap();
    assert_eq!(sbom_node["predicateType"], "https://cyclonedx.org/bom");
    assert_eq!(sbom_node["referrers"][0]["digest"], nested.stdout.trim());
    let legacy = json["legacy"].as_array().unwrap();
    assert_eq!(legacy.len(), 2, "{}", tree.stdout);
    assert_eq!(
        legacy[0]["layers"].as_array().unwrap().len(),
        2,
        "both .sig signers kept"
    );
    assert_eq!(legacy[1]["layers"].as_array().unwrap().len(), 1);

    let text = keys.run(&["tree", &image]).expect_code(0).stdout;
    assert!(text.contains(".sig (legacy cosign tag)"), "{text}");
    assert!(text.contains("[https://cyclonedx.org/bom]"), "{text}");

    // Each key has evidence in several formats on the image (the nested signature is on the
    // SBOM, not the image); all of it verifies.
    for (key, expected) in [("ci", 3), ("other", 2)] {
        let run = keys
            .run(&[
                "verify",
                &image,
                "--key",
                &format!("{key}.pub"),
                "--output",
                "json",
            ])
            .expect_code(0);
        let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        let accepted = json["accepted"].as_array().unwrap();
        assert_eq!(accepted.len(), expected, "{key}: {}", run.stdout);
    }
}

#[test]
fn statement_about_another_digest_is_denied() {
    let registry = Registry::start(Options::plain());
    let keys = Keys::new();
    let (image, digest) = push_image(&registry, "team/app", "v1", b"bound");
    let (repo, _) = repo_for(&image);
    let pair = keys.pair("ci");
    let other = Digest::sha256_of(b"some other image");
    block_on(async {
        let statement = Statement::new(
            "team/app",
            &other,
            COSIGN_SIGN_PREDICATE,
            serde_json::json!({}),
        );
        let subject = publish::subject_descriptor(&repo, &digest.parse().unwrap())
            .await
            .unwrap();
        publish::push_statement(
            &repo,
            &subject,
            &statement,
            &pair,
            StorageFormat::Bundle,
            None,
        )
        .await
        .unwrap();
    });
    let run = keys
        .run(&["verify", &image, "--key", "ci.pub"])
        .expect_code(1);
    assert!(
        run.stdout
            .contains(&format!("statement is about {other}, not {digest}")),
        "{}",
        run.stdout
    );
}

#[test]
fn bundle_with_edited_payload_is_denied() {
    let registry = Registry::start(Options::plain());
    let keys = Keys::new();
    let (image, digest) = push_image(&registry, "team/app", "v1", b"edited");
    let (repo, _) = repo_for(&image);
    let pair = keys.pair("ci");
    let digest: Digest = digest.parse().unwrap();
    block_on(async {
        let statement = Statement::new(
            "team/app",
            &digest,
            "https://cosign.sigstore.dev/attestation/vuln/v1",
            serde_json::json!({"scanner": {"result": [{"severity": "CRITICAL"}]}}),
        );
        let mut bundle = Bundle::sign_statement(&statement, &pair).unwrap();
        // Edit the signed bytes (hide the CRITICAL finding), keep the signature.
        let envelope = bundle.dsse_envelope.as_mut().unwrap();
        let edited = String::from_utf8(envelope.payload_bytes().unwrap())
            .unwrap()
            .replace("CRITICAL", "LOW");
        envelope.payload = base64::engine::general_purpose::STANDARD.encode(edited);
        let subject = publish::subject_descriptor(&repo, &digest).await.unwrap();
        publish::push_bundle(&repo, &subject, &bundle)
            .await
            .unwrap();
    });
    let run = keys
        .run(&["verify", &image, "--key", "ci.pub"])
        .expect_code(1);
    assert!(
        run.stdout
            .contains("(bundle): none of the 1 DSSE signature(s) verifies"),
        "{}",
        run.stdout
    );
}

#[test]
fn legacy_signature_for_another_digest_is_denied() {
    let registry = Registry::start(Options::plain());
    let keys = Keys::new();
    let (image, digest) = push_image(&registry, "team/app", "v1", b"legacy");
    let (repo, _) = repo_for(&image);
    let pair = keys.pair("ci");
    let digest: Digest = digest.parse().unwrap();
    let other = Digest::sha256_of(b"another image");
    block_on(async {
        let payload = SimpleSigning::cosign("team/app", &other, BTreeMap::new()).to_cosign_bytes();
        publish::push_simple_signing(&repo, &digest, payload, &pair)
            .await
            .unwrap();
    });
    let run = keys
        .run(&["verify", &image, "--key", "ci.pub"])
        .expect_code(1);
    assert!(
        run.stdout.contains(&format!(
            "simple-signing payload signs {other}, not {digest}"
        )),
        "{}",
        run.stdout
    );
}

#[test]
fn sixteen_concurrent_attest_processes_all_land_in_the_fallback_index() {
    let registry = Registry::start(Options::plain());
    let keys = Keys::new();
    let (image, digest) = push_image(&registry, "team/app", "v1", b"concurrent");
    let mut children = Vec::new();
    for i in 0..16 {
        let predicate = keys.file(&format!("p{i}.json"));
        std::fs::write(&predicate, format!(r#"{{"run":{i}}}"#)).unwrap();
        let child = std::process::Command::new(crate::cli::signet_bin())
            .args([
                "attest",
                &image,
                "--key",
                "ci.key",
                "--type",
                "custom",
                "--predicate",
            ])
            .arg(&predicate)
            .current_dir(keys.path())
            .env("SIGNET_PASSWORD", PASSWORD)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        children.push(child);
    }
    let mut pushed = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        pushed.push(String::from_utf8(out.stdout).unwrap().trim().to_string());
    }
    pushed.sort();
    pushed.dedup();
    assert_eq!(pushed.len(), 16);

    // The fallback index itself (not only the per-referrer tags) lists all 16.
    let (repo, _) = repo_for(&image);
    let digest: Digest = digest.parse().unwrap();
    let index = block_on(repo.get_manifest_by_tag(&digest.fallback_tag()))
        .unwrap()
        .unwrap();
    let index: oci::Index = serde_json::from_slice(&index.bytes).unwrap();
    let mut listed: Vec<String> = index
        .manifests
        .iter()
        .map(|d| d.digest.to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, pushed);
    for d in &index.manifests {
        assert_eq!(
            d.artifact_type.as_deref(),
            Some(signet_core::bundle::BUNDLE_V03_MEDIA_TYPE)
        );
        assert_eq!(
            d.annotations
                .get(oci::BUNDLE_PREDICATE_TYPE_ANNOTATION)
                .map(String::as_str),
            Some("https://cosign.sigstore.dev/attestation/v1")
        );
    }

    let tree = keys
        .run(&["tree", &image, "--output", "json"])
        .expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&tree.stdout).unwrap();
    assert_eq!(json["referrers"].as_array().unwrap().len(), 16);
}
