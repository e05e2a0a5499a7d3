//! Issue 15: decisions that hold over time. `maxAge` measured from the time signet's own
//! `sign` and `attest` put into what they sign, and from a SLSA provenance's `finishedOn`;
//! revoked keys. Time is moved with `verify --at`, never by sleeping.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::cli::{Run, signet};
use crate::harness::{Options, Registry};
use crate::images::push_image;

const PASSWORD: &str = "over-time-e2e";

fn run(dir: &Path, args: &[&str]) -> Run {
    signet(dir, args, Some(PASSWORD))
}

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

fn verify_at(
    dir: &Path,
    image: &str,
    policy: &str,
    at: SystemTime,
    code: i32,
) -> serde_json::Value {
    let out = run(
        dir,
        &[
            "verify",
            image,
            "--policy",
            policy,
            "--at",
            &rfc3339(at),
            "--output",
            "json",
        ],
    )
    .expect_code(code);
    serde_json::from_str(&out.stdout).unwrap()
}

/// Makes the key pair `ci.key`/`ci.pub` in `dir` and returns its key id.
fn ci_key(dir: &Path) -> String {
    run(dir, &["keygen", "--output-prefix", "ci"]).expect_code(0);
    // `public-key` says the key id on stderr: "Public key sha256:… (ECDSA P-256)".
    let shown = run(dir, &["public-key", "--key", "ci.key"])
        .expect_code(0)
        .stderr;
    shown
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("no key id in {shown}"))
        .to_string()
}

#[test]
fn max_age_counts_from_signets_own_signed_time_and_from_slsa_finished_on() {
    let registry = Registry::start(Options::plain());
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    run(dir, &["keygen", "--output-prefix", "ci"]).expect_code(0);
    std::fs::write(
        dir.join("fresh.yaml"),
        "defaultAdmissionRule:\n  evaluationMode: REQUIRE_ATTESTATION\n  enforcementMode: \
         ENFORCED_BLOCK_AND_AUDIT_LOG\n  requireAttestationsBy: [build]\nattestors:\n  - name: \
         build\n    publicKeys: [{file: ci.pub}]\n    maxAge: 1h\n",
    )
    .unwrap();
    let before = SystemTime::now() - Duration::from_secs(1);

    for format in ["bundle", "legacy"] {
        let (image, _) = push_image(&registry, &format!("shop/{format}"), "v1", b"app");
        run(
            dir,
            &["sign", &image, "--key", "ci.key", "--format", format],
        )
        .expect_code(0);
        let now = SystemTime::now();
        let allowed = verify_at(dir, &image, "fresh.yaml", now, 0);
        let signed = &allowed["accepted"][0]["signedAt"];
        let at = humantime::parse_rfc3339(signed["time"].as_str().unwrap()).unwrap();
        assert!(
            at >= before && at <= now + Duration::from_secs(1),
            "{allowed}"
        );
        assert!(
            signed["source"]
                .as_str()
                .unwrap()
                .contains("dev.signet.signedAt"),
            "{format}: {allowed}"
        );
        assert_eq!(signed["trusted"], false);
        assert_eq!(
            allowed["validUntil"],
            rfc3339(at + Duration::from_secs(3600))
        );

        // Two hours on, the same signature no longer counts.
        let later = now + Duration::from_secs(7200);
        let denied = verify_at(dir, &image, "fresh.yaml", later, 1);
        let reasons = denied["reasons"].to_string();
        assert!(reasons.contains("maxAge 1h"), "{format}: {reasons}");
        // The text form says the same.
        let text = run(
            dir,
            &[
                "verify",
                &image,
                "--policy",
                "fresh.yaml",
                "--at",
                &rfc3339(later),
            ],
        )
        .expect_code(1);
        assert!(text.stdout.contains("maxAge 1h"), "{}", text.stdout);
    }

    // A SLSA provenance attestation: its build-finished time decides, not the (later) time it
    // was attested.
    let finished = SystemTime::now() - Duration::from_secs(3 * 3600);
    std::fs::write(
        dir.join("provenance.json"),
        serde_json::to_vec(&serde_json::json!({
            "buildDefinition": {"buildType": "https://example.com/build/v1", "externalParameters": {}},
            "runDetails": {
                "builder": {"id": "https://ci.example.com"},
                "metadata": {"invocationId": "42", "finishedOn": rfc3339(finished)}
            }
        }))
        .unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("provenance.yaml"),
        "defaultAdmissionRule:\n  evaluationMode: REQUIRE_ATTESTATION\n  enforcementMode: \
         ENFORCED_BLOCK_AND_AUDIT_LOG\n  requireAttestationsBy: [provenance]\nattestors:\n  - \
         name: provenance\n    publicKeys: [{file: ci.pub}]\n    predicateType: \
         https://slsa.dev/provenance/v1\n    maxAge: 4h\n",
    )
    .unwrap();
    let (image, _) = push_image(&registry, "shop/built", "v1", b"built");
    run(
        dir,
        &[
            "attest",
            &image,
            "--key",
            "ci.key",
            "--predicate",
            "provenance.json",
            "--type",
            "slsaprovenance1",
        ],
    )
    .expect_code(0);
    let allowed = verify_at(dir, &image, "provenance.yaml", SystemTime::now(), 0);
    assert_eq!(
        allowed["accepted"][0]["signedAt"]["time"],
        rfc3339(finished),
        "{allowed}"
    );
    assert!(
        allowed["accepted"][0]["signedAt"]["source"]
            .as_str()
            .unwrap()
            .contains("runDetails.metadata.finishedOn")
    );
    // Two hours later the build is five hours old: denied, though it was attested three hours
    // before.
    let denied = verify_at(
        dir,
        &image,
        "provenance.yaml",
        SystemTime::now() + Duration::from_secs(2 * 3600),
        1,
    );
    assert!(
        denied["reasons"].to_string().contains("maxAge 4h"),
        "{denied}"
    );
}

#[test]
fn a_revoked_keys_evidence_is_denied_with_the_reason() {
    let registry = Registry::start(Options::plain());
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let id = ci_key(dir);
    let rule = "defaultAdmissionRule:\n  evaluationMode: REQUIRE_ATTESTATION\n  enforcementMode: \
                ENFORCED_BLOCK_AND_AUDIT_LOG\n  requireAttestationsBy: [build]\nattestors:\n  - \
                name: build\n    publicKeys: [{file: ci.pub}]\n";
    std::fs::write(
        dir.join("revoked.yaml"),
        format!("{rule}revokedKeys:\n  - keyId: {id}\n    reason: CI runner compromised\n"),
    )
    .unwrap();
    // Revoked since yesterday: the signature made now has only the signer's word for its
    // time, which a thief could write too.
    let yesterday = SystemTime::now() - Duration::from_secs(86400);
    std::fs::write(
        dir.join("revoked-since.yaml"),
        format!(
            "{rule}revokedKeys:\n  - keyId: {id}\n    revokedAt: {}\n    reason: CI runner \
             compromised\n",
            rfc3339(yesterday)
        ),
    )
    .unwrap();
    let (image, _) = push_image(&registry, "shop/cart", "v1", b"cart");
    run(dir, &["sign", &image, "--key", "ci.key"]).expect_code(0);
    let summary = run(dir, &["policy", "check", "revoked.yaml"]).expect_code(0);
    assert!(
        summary
            .stdout
            .contains(&format!("{id}: CI runner compromised")),
        "{}",
        summary.stdout
    );
    for policy in ["revoked.yaml", "revoked-since.yaml"] {
        let denied = run(dir, &["verify", &image, "--policy", policy]).expect_code(1);
        assert!(
            denied
                .stdout
                .contains(&format!("key {id} is revoked (CI runner compromised)")),
            "{policy}: {}",
            denied.stdout
        );
    }
    let denied = run(dir, &["verify", &image, "--policy", "revoked-since.yaml"]).expect_code(1);
    assert!(
        denied.stdout.contains("no trusted time"),
        "{}",
        denied.stdout
    );
}

#[test]
fn a_timestamp_before_revoked_at_keeps_a_revoked_keys_evidence() {
    let registry = Registry::start(Options::plain());
    let tsa = crate::tsa::TestTsa::start();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let id = ci_key(dir);
    std::fs::copy(tsa.chain_path(), dir.join("tsa-chain.pem")).unwrap();
    // Revoked an hour from now; decisions are asked for two hours from now.
    let now = SystemTime::now();
    let revoked_at = rfc3339(now + Duration::from_secs(3600));
    let later = now + Duration::from_secs(7200);
    let rule = "defaultAdmissionRule:\n  evaluationMode: REQUIRE_ATTESTATION\n  enforcementMode: \
                ENFORCED_BLOCK_AND_AUDIT_LOG\n  requireAttestationsBy: [build]\nattestors:\n  - \
                name: build\n    publicKeys: [{file: ci.pub}]\n";
    let revoked = format!(
        "revokedKeys:\n  - keyId: {id}\n    revokedAt: {revoked_at}\n    reason: key rotated \
         after a leak\n"
    );
    let trusted = "timestampAuthorities:\n  - name: test-tsa\n    certChain: {file: \
                   tsa-chain.pem}\n";
    std::fs::write(
        dir.join("with-tsa.yaml"),
        format!("{rule}{revoked}{trusted}"),
    )
    .unwrap();
    std::fs::write(dir.join("without-tsa.yaml"), format!("{rule}{revoked}")).unwrap();
    let summary = run(dir, &["policy", "check", "with-tsa.yaml"]).expect_code(0);
    assert!(
        summary.stdout.contains("timestamp authorities: 1"),
        "{}",
        summary.stdout
    );

    let (stamped, _) = push_image(&registry, "shop/stamped", "v1", b"stamped");
    run(
        dir,
        &[
            "sign",
            &stamped,
            "--key",
            "ci.key",
            "--timestamp-server-url",
            &tsa.url(),
        ],
    )
    .expect_code(0);
    assert_eq!(tsa.issued.load(std::sync::atomic::Ordering::SeqCst), 1);
    let (plain, _) = push_image(&registry, "shop/plain", "v1", b"plain");
    run(dir, &["sign", &plain, "--key", "ci.key"]).expect_code(0);

    // The timestamp proves the signature existed before the revocation: allowed.
    let allowed = verify_at(dir, &stamped, "with-tsa.yaml", later, 0);
    let signed = &allowed["accepted"][0]["signedAt"];
    assert_eq!(signed["trusted"], true, "{allowed}");
    assert_eq!(
        signed["source"], "RFC 3161 timestamp by test-tsa",
        "{allowed}"
    );
    // Without the authority in the policy the same timestamp proves nothing: denied.
    let denied = verify_at(dir, &stamped, "without-tsa.yaml", later, 1);
    let reasons = denied["reasons"].to_string();
    assert!(
        reasons.contains("is revoked (key rotated after a leak)")
            && reasons.contains("no trusted time"),
        "{reasons}"
    );
    // A signature without a timestamp has only the signer's word: denied.
    let denied = verify_at(dir, &plain, "with-tsa.yaml", later, 1);
    assert!(
        denied["reasons"].to_string().contains("no trusted time"),
        "{denied}"
    );
    // Before the revocation both count.
    verify_at(dir, &plain, "with-tsa.yaml", now, 0);

    // Legacy storage has no place for the timestamp: refused, not silently dropped.
    let refused = run(
        dir,
        &[
            "sign",
            &plain,
            "--key",
            "ci.key",
            "--format",
            "legacy",
            "--timestamp-server-url",
            &tsa.url(),
        ],
    )
    .expect_code(2);
    assert!(
        refused.stderr.contains("--format bundle"),
        "{}",
        refused.stderr
    );
}
