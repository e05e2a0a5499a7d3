//! Issue 15: an attestor withdraws one of its attestations with a signed withdrawal statement
//! pushed as a referrer of the same image (`signet withdraw`); the withdrawn attestation then
//! no longer counts, while a withdrawal signed by another attestor's key changes nothing.

use std::path::Path;

use crate::cli::{Run, signet};
use crate::harness::{Options, Registry};
use crate::images::push_image;

const PASSWORD: &str = "withdraw-e2e";

fn run(dir: &Path, args: &[&str]) -> Run {
    signet(dir, args, Some(PASSWORD))
}

#[test]
fn a_withdrawn_attestation_no_longer_counts_and_only_its_attestor_can_withdraw_it() {
    let registry = Registry::start(Options::plain());
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    for name in ["ci", "qa"] {
        run(dir, &["keygen", "--output-prefix", name]).expect_code(0);
    }
    std::fs::write(dir.join("qa.json"), br#"{"approved": true}"#).unwrap();
    // Every attestor demands a predicate type, so the verifier fetches only those types (and
    // withdrawals, which it must never filter out).
    std::fs::write(
        dir.join("policy.yaml"),
        "defaultAdmissionRule:\n  evaluationMode: REQUIRE_ATTESTATION\n  enforcementMode: \
         ENFORCED_BLOCK_AND_AUDIT_LOG\n  requireAttestationsBy: [build, qa]\nattestors:\n  - \
         name: build\n    publicKeys: [{file: ci.pub}]\n    predicateType: \
         https://sigstore.dev/cosign/sign/v1\n  - name: qa\n    publicKeys: [{file: qa.pub}]\n    \
         predicateType: https://example.com/qa/v1\n",
    )
    .unwrap();

    let attest = |image: &str| {
        run(dir, &["sign", image, "--key", "ci.key"]).expect_code(0);
        run(
            dir,
            &[
                "attest",
                image,
                "--key",
                "qa.key",
                "--predicate",
                "qa.json",
                "--type",
                "https://example.com/qa/v1",
            ],
        )
        .expect_code(0)
        .stdout
        .trim()
        .to_string()
    };
    let (image, _) = push_image(&registry, "shop/cart", "v1", b"cart v1");
    let approval = attest(&image);
    run(dir, &["verify", &image, "--policy", "policy.yaml"]).expect_code(0);

    // Another attestor's key cannot withdraw QA's approval.
    run(
        dir,
        &[
            "withdraw",
            &image,
            "--attestation",
            &approval,
            "--key",
            "ci.key",
            "--reason",
            "not mine",
        ],
    )
    .expect_code(0);
    run(dir, &["verify", &image, "--policy", "policy.yaml"]).expect_code(0);

    // QA withdraws it: denied, saying by whom and why; the withdrawal is not a signature of
    // QA's either.
    let withdrawal = run(
        dir,
        &[
            "withdraw",
            &image,
            "--attestation",
            &approval,
            "--key",
            "qa.key",
            "--reason",
            "regression QA-77",
        ],
    )
    .expect_code(0);
    assert!(
        withdrawal.stdout.trim().starts_with("sha256:"),
        "{}",
        withdrawal.stdout
    );
    let denied = run(
        dir,
        &[
            "verify",
            &image,
            "--policy",
            "policy.yaml",
            "--output",
            "json",
        ],
    )
    .expect_code(1);
    let json: serde_json::Value = serde_json::from_str(&denied.stdout).unwrap();
    let qa = json["attestors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "qa")
        .unwrap();
    assert_eq!(qa["satisfied"], false, "{json}");
    let rejected = json["rejected"].to_string();
    assert!(
        rejected.contains(&format!("referrer {approval} (bundle)"))
            && rejected.contains("withdrawn by key sha256:")
            && rejected.contains(": regression QA-77"),
        "{rejected}"
    );
    let keyed = run(dir, &["verify", &image, "--key", "qa.pub"]).expect_code(1);
    assert!(
        keyed.stdout.contains("withdrawn by key"),
        "{}",
        keyed.stdout
    );

    // A new approval counts again.
    run(
        dir,
        &[
            "attest",
            &image,
            "--key",
            "qa.key",
            "--predicate",
            "qa.json",
            "--type",
            "https://example.com/qa/v1",
        ],
    )
    .expect_code(0);
    run(dir, &["verify", &image, "--policy", "policy.yaml"]).expect_code(0);

    // Only a referrer of the image can be withdrawn.
    let (other, other_digest) = push_image(&registry, "shop/cart", "v2", b"cart v2");
    let refused = run(
        dir,
        &[
            "withdraw",
            &other,
            "--attestation",
            &other_digest,
            "--key",
            "qa.key",
        ],
    )
    .expect_code(2);
    assert!(
        refused.stderr.contains("is not a referrer of"),
        "{}",
        refused.stderr
    );
}
