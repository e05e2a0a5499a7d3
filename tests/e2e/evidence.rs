//! Regression tests for how evidence is gathered and reported (issues 11 and 12): a broken
//! piece of evidence is rejected with its reason and never hides the rest.

use crate::cli::signet;
use crate::harness::{Options, Registry};
use crate::images::push_image;

const PASSWORD: &str = "evidence-e2e";

/// Issue 12, finding 6: a legacy `.sig` tag that is not an image manifest made `verify` fail
/// with exit 2 (and the daemon fail closed on every pod using the image) although a valid
/// bundle signature was there. It is now one rejected piece of evidence.
#[test]
fn one_malformed_legacy_tag_does_not_make_an_image_unverifiable() {
    let registry = Registry::start(Options::plain());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| signet(d, args, Some(PASSWORD));
    run(&["keygen", "--output-prefix", "ci"]).expect_code(0);
    let (image, digest) = push_image(&registry, "team/app", "v1", b"malformed legacy tag");
    run(&["sign", &image, "--key", "ci.key"]).expect_code(0);

    // Someone (or a broken tool) put an index where cosign's `.sig` manifest belongs.
    let tag = format!("{}.sig", digest.replace(':', "-"));
    let index = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    let put = reqwest::blocking::Client::new()
        .put(format!("{}/v2/team/app/manifests/{tag}", registry.url()))
        .header("Content-Type", "application/vnd.oci.image.index.v1+json")
        .body(index)
        .send()
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());

    let out = run(&["verify", &image, "--key", "ci.pub", "--output", "json"]).expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["allowed"], true, "{}", out.stdout);
    let rejected = json["rejected"].as_array().unwrap();
    assert!(
        rejected.iter().any(|r| {
            r["location"] == format!("{tag} (legacy .sig)")
                && r["reason"]
                    .as_str()
                    .unwrap()
                    .contains("is an index, not an image manifest")
        }),
        "{}",
        out.stdout
    );

    // Under a policy too: the attestor is satisfied by the bundle.
    std::fs::write(
        d.join("policy.yaml"),
        "defaultAdmissionRule: {evaluationMode: REQUIRE_ATTESTATION, enforcementMode: \
         ENFORCED_BLOCK_AND_AUDIT_LOG, requireAttestationsBy: [ci]}\nattestors:\n  - name: ci\n    \
         publicKeys: [{file: ci.pub}]\n",
    )
    .unwrap();
    run(&["verify", &image, "--policy", "policy.yaml"]).expect_code(0);
}

/// Issue 12, finding 2: 60 bundle referrers that all name one 16 MiB blob made `verify` fetch
/// and hold it 60 times (1.0 GB peak). Each distinct blob is now fetched once, and all blobs of
/// one verification together stay within `--max-evidence-bytes`; what would exceed it is
/// rejected unread, with a reason that says so.
#[test]
fn evidence_memory_is_bounded_referrers_naming_one_blob_fetch_it_once() {
    use crate::fake_registry::{FakeRegistry, RequestKind};

    let registry = FakeRegistry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| signet(d, args, Some(PASSWORD));
    run(&["keygen", "--output-prefix", "ci"]).expect_code(0);
    let digest = registry.seed_image("team/app", "v1", b"hostile referrers");
    let image_manifest = format!("{}/v2/team/app/manifests/{digest}", registry.url());
    let image_size = reqwest::blocking::get(&image_manifest)
        .unwrap()
        .bytes()
        .unwrap()
        .len();
    let big: Vec<u8> = (0..2u32 << 20).map(|i| (i % 251) as u8).collect();
    let blob = registry.seed_blob("team/app", big.clone());
    let empty = registry.seed_blob("team/app", b"{}".to_vec());
    for i in 0..60 {
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                        "digest": blob, "size": big.len()}],
            "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": digest, "size": image_size},
            "annotations": {"n": i.to_string()},
        });
        let bytes = manifest.to_string().into_bytes();
        let referrer = format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
        );
        registry.seed_manifest(
            "team/app",
            &referrer,
            "application/vnd.oci.image.manifest.v1+json",
            bytes,
        );
    }
    let pinned = format!("{}/team/app@{digest}", registry.host());

    registry.reset_counters();
    let out = run(&["verify", &pinned, "--key", "ci.pub", "--output", "json"]).expect_code(1);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        json["rejected"].as_array().unwrap().len(),
        60,
        "{}",
        out.stdout
    );
    assert_eq!(
        registry.requests(RequestKind::BlobGet),
        1,
        "the shared blob is fetched once"
    );

    // A budget smaller than the blob: nothing is fetched, and every piece says why.
    registry.reset_counters();
    let out = run(&[
        "verify",
        &pinned,
        "--key",
        "ci.pub",
        "--output",
        "json",
        "--max-evidence-bytes",
        "1000000",
    ])
    .expect_code(1);
    assert_eq!(registry.requests(RequestKind::BlobGet), 0);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let rejected = json["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 60, "{}", out.stdout);
    assert!(
        rejected.iter().all(|r| r["reason"]
            .as_str()
            .unwrap()
            .starts_with("evidence exceeds 1000000 bytes for this verification")),
        "{}",
        out.stdout
    );
}

/// The same hostile shape on the real registry (no referrers API: the fallback index and the
/// per-referrer tags): every referrer is listed and rejected, the shared blob is read within
/// the budget, and a budget below the blob's size leaves all 60 unread.
#[test]
fn evidence_memory_is_bounded_on_the_real_registry_too() {
    use signet_core::oci;
    use signet_registry::{Client, ClientOptions, Repository, publish};

    let registry = Registry::start(Options::plain());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| signet(d, args, Some(PASSWORD));
    run(&["keygen", "--output-prefix", "ci"]).expect_code(0);
    let (image, digest) = push_image(&registry, "team/app", "v1", b"hostile on distribution");
    crate::harness::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let image: signet_core::reference::ImageRef = image.parse().unwrap();
        let client = Client::new(ClientOptions::default()).unwrap();
        let repo = Repository::new(&client, &image);
        let digest = digest.parse().unwrap();
        let subject = publish::subject_descriptor(&repo, &digest).await.unwrap();
        repo.put_blob(oci::EMPTY_JSON_BYTES).await.unwrap();
        let big: Vec<u8> = (0..2u32 << 20).map(|i| (i % 251) as u8).collect();
        repo.put_blob(&big).await.unwrap();
        let manifests: Vec<(String, Vec<u8>)> = (0..60)
            .map(|i| {
                let layer = oci::Descriptor::of(signet_core::bundle::BUNDLE_V03_MEDIA_TYPE, &big);
                let bytes =
                    publish::bundle_manifest(&subject, layer, Some(format!("https://hostile/{i}")))
                        .unwrap();
                (oci::OCI_MANIFEST.to_string(), bytes)
            })
            .collect();
        repo.attach_referrers(&digest, &manifests).await.unwrap();
    });
    let pinned = format!("{}/team/app@{digest}", registry.host());
    let out = run(&["verify", &pinned, "--key", "ci.pub", "--output", "json"]).expect_code(1);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        json["rejected"].as_array().unwrap().len(),
        60,
        "{}",
        out.stdout
    );
    let out = run(&[
        "verify",
        &pinned,
        "--key",
        "ci.pub",
        "--output",
        "json",
        "--max-evidence-bytes",
        "1000000",
    ])
    .expect_code(1);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let rejected = json["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 60, "{}", out.stdout);
    assert!(
        rejected.iter().all(|r| r["reason"]
            .as_str()
            .unwrap()
            .starts_with("evidence exceeds")),
        "{}",
        out.stdout
    );
}
