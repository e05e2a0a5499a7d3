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
