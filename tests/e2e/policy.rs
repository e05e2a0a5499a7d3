//! `signet verify --policy` end to end against the real registry, `signet policy check` and
//! `signet policy init` through the binary.

use std::path::Path;

use crate::cli::{Run, fixture, repo_root, signet};
use crate::harness::{Options, Registry};
use crate::images::push_image;

const PASSWORD: &str = "policy-e2e";

fn run(dir: &Path, args: &[&str]) -> Run {
    signet(dir, args, Some(PASSWORD))
}

const POLICY: &str = r#"
registryAllowlist: ["127.0.0.1:*/**"]
defaultAdmissionRule:
  evaluationMode: REQUIRE_ATTESTATION
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
  requireAttestationsBy: [build, qa]
kubernetesNamespaceAdmissionRules:
  sandbox: {evaluationMode: ALWAYS_ALLOW, enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG}
  payments:
    evaluationMode: REQUIRE_ATTESTATION
    enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
    requireAttestationsBy: [build, qa, vuln-scanned]
  trial:
    evaluationMode: REQUIRE_ATTESTATION
    enforcementMode: DRYRUN_AUDIT_LOG_ONLY
    requireAttestationsBy: [build, qa]
attestors:
  - name: build
    publicKeys: [{file: build.pub}]
  - name: qa
    publicKeys: [{file: qa.pub}]
  - name: vuln-scanned
    publicKeys: [{file: scanner.pub}]
    predicateType: https://cosign.sigstore.dev/attestation/vuln/v1
    conditions:
      - "!statement.predicate.scanner.result.exists(f, f.severity == 'CRITICAL')"
"#;

fn setup() -> (Registry, tempfile::TempDir) {
    let registry = Registry::start(Options::plain());
    let dir = tempfile::tempdir().unwrap();
    for name in ["build", "qa", "scanner"] {
        run(dir.path(), &["keygen", "--output-prefix", name]).expect_code(0);
    }
    std::fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
    (registry, dir)
}

fn verify(dir: &Path, image: &str, extra: &[&str]) -> (Run, serde_json::Value) {
    let mut args = vec![
        "verify",
        image,
        "--policy",
        "policy.yaml",
        "--output",
        "json",
    ];
    args.extend(extra);
    let out = run(dir, &args);
    let json = serde_json::from_str(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out, json)
}

#[test]
fn both_attestors_pass_one_missing_is_named_and_namespace_rules_apply() {
    let (registry, dir) = setup();
    let d = dir.path();
    let (both, _) = push_image(&registry, "team/app", "both", b"both");
    let (build_only, _) = push_image(&registry, "team/app", "build-only", b"build only");
    run(d, &["sign", &both, "--key", "build.key"]).expect_code(0);
    run(d, &["sign", &both, "--key", "qa.key", "--format", "legacy"]).expect_code(0);
    run(d, &["sign", &build_only, "--key", "build.key"]).expect_code(0);

    let (out, json) = verify(d, &both, &[]);
    let out = out.expect_code(0);
    assert_eq!(json["allowed"], true, "{}", out.stdout);
    assert_eq!(json["rule"], "default");
    assert_eq!(json["enforcement"], "enforced");

    let (out, json) = verify(d, &build_only, &[]);
    out.expect_code(1);
    assert_eq!(json["allowed"], false);
    let reasons = json["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0]
            .as_str()
            .unwrap()
            .starts_with("attestor qa: no attestation signed by key")
    );
    assert_eq!(json["attestors"][0]["name"], "build");
    assert_eq!(json["attestors"][0]["satisfied"], true);
    assert_eq!(json["attestors"][1]["name"], "qa");
    assert_eq!(json["attestors"][1]["satisfied"], false);

    // Text output explains the same.
    let text = run(d, &["verify", &build_only, "--policy", "policy.yaml"]).expect_code(1);
    assert!(text.stdout.starts_with("DENIED"), "{}", text.stdout);
    assert!(
        text.stdout.contains("✗ qa: no attestation signed by key"),
        "{}",
        text.stdout
    );

    // The same image in a namespace whose rule is ALWAYS_ALLOW.
    let (out, json) = verify(d, &build_only, &["--namespace", "sandbox"]);
    out.expect_code(0);
    assert_eq!(json["rule"], "namespace sandbox");

    // A dry-run rule that would deny exits 0 and says so.
    let (out, json) = verify(d, &build_only, &["--namespace", "trial"]);
    out.expect_code(0);
    assert_eq!(json["enforcement"], "dryrun");
    assert_eq!(json["wouldDeny"], true);
    assert!(
        json["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("attestor qa:")
    );
}

#[test]
fn vulnerability_attestation_with_a_critical_finding_fails_the_condition() {
    let (registry, dir) = setup();
    let d = dir.path();
    let (clean, _) = push_image(&registry, "team/pay", "clean", b"clean");
    let (critical, _) = push_image(&registry, "team/pay", "critical", b"critical");
    std::fs::write(
        d.join("clean.json"),
        r#"{"scanner":{"result":[{"id":"CVE-1","severity":"LOW"}]}}"#,
    )
    .unwrap();
    std::fs::write(
        d.join("critical.json"),
        r#"{"scanner":{"result":[{"id":"CVE-1","severity":"LOW"},{"id":"CVE-2","severity":"CRITICAL"}]}}"#,
    )
    .unwrap();
    for (image, scan) in [(&clean, "clean.json"), (&critical, "critical.json")] {
        run(d, &["sign", image, "--key", "build.key"]).expect_code(0);
        run(d, &["sign", image, "--key", "qa.key"]).expect_code(0);
        run(
            d,
            &[
                "attest",
                image,
                "--key",
                "scanner.key",
                "--type",
                "vuln",
                "--predicate",
                scan,
            ],
        )
        .expect_code(0);
    }
    let (out, json) = verify(d, &clean, &["--namespace", "payments"]);
    out.expect_code(0);
    assert_eq!(json["rule"], "namespace payments");

    let (out, json) = verify(d, &critical, &["--namespace", "payments"]);
    out.expect_code(1);
    let reason = json["reasons"][0].as_str().unwrap();
    assert!(reason.starts_with("attestor vuln-scanned:"), "{reason}");
    assert!(reason.contains("is false"), "{reason}");
}

#[test]
fn untrusted_registry_is_denied_without_contacting_it() {
    let (_registry, dir) = setup();
    let (out, json) = verify(
        dir.path(),
        "evil.example/app:v1",
        &["--namespace", "sandbox"],
    );
    out.expect_code(1);
    assert_eq!(json["rule"], "registryAllowlist");
}

#[test]
fn binary_authorization_export_loads_and_evaluates() {
    let registry = Registry::start(Options::plain());
    let dir = tempfile::tempdir().unwrap();
    let (image, _) = push_image(&registry, "team/app", "v1", b"binauthz");
    let key = fixture("keys/p256.key");
    signet(
        dir.path(),
        &["sign", &image, "--key", key.to_str().unwrap()],
        Some("signet-fixture-password"),
    )
    .expect_code(0);
    let policy = fixture("policies/binauthz-export.yaml");
    let check = signet(
        dir.path(),
        &["policy", "check", policy.to_str().unwrap()],
        None,
    )
    .expect_code(0);
    assert!(check.stdout.contains("OK"), "{}", check.stdout);
    let decide = |cluster: &str| {
        let out = signet(
            dir.path(),
            &[
                "verify",
                &image,
                "--policy",
                policy.to_str().unwrap(),
                "--cluster",
                cluster,
                "--output",
                "json",
            ],
            None,
        );
        let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        (out.code, json)
    };
    // Staging requires built-by-ci (the fixture p256 key signed): allowed.
    let (code, json) = decide("europe-west1-b.staging");
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["rule"], "cluster europe-west1-b.staging");
    assert_eq!(json["attestors"][0]["name"], "built-by-ci");
    assert_eq!(json["attestors"][0]["satisfied"], true);
    // Prod also requires qa-approved: denied, naming it.
    let (code, json) = decide("us-central1-a.prod");
    assert_eq!(code, 1, "{json}");
    assert!(
        json["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("attestor qa-approved:"),
        "{json}"
    );
    // Anywhere else the default rule denies everything.
    let (code, json) = decide("elsewhere");
    assert_eq!(code, 1, "{json}");
    assert_eq!(json["rule"], "default");
}

#[test]
fn policy_check_reports_errors_with_positions_and_init_writes_a_valid_policy() {
    let dir = tempfile::tempdir().unwrap();
    let broken = repo_root().join("fixtures/policies/broken");
    let mut files: Vec<_> = std::fs::read_dir(&broken)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    for file in &files {
        let out = signet(
            dir.path(),
            &["policy", "check", file.to_str().unwrap()],
            None,
        )
        .expect_code(2);
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(
            out.stderr.contains(&format!("{name}:")),
            "{name}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"));
    }

    run(dir.path(), &["keygen", "--output-prefix", "ci"]).expect_code(0);
    run(dir.path(), &["policy", "init", "--output", "policy.yaml"]).expect_code(0);
    let again = run(dir.path(), &["policy", "init", "--output", "policy.yaml"]).expect_code(2);
    assert!(again.stderr.contains("must not exist"), "{}", again.stderr);
    let check = run(dir.path(), &["policy", "check", "policy.yaml"]).expect_code(0);
    assert!(check.stdout.contains("built-by-ci"), "{}", check.stdout);
}

/// Issue 19, finding 1: a condition of 10,000 chained terms (and chains of members and
/// indexes) is refused with its position by `policy check`, `verify --policy` and `serve`
/// alike; none of them aborts on a stack overflow.
#[test]
fn conditions_too_large_for_a_stack_are_refused_with_their_position_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(d, &["keygen", "--output-prefix", "ci"]).expect_code(0);
    let conditions = [
        vec!["1"; 10_000].join("+") + " > 0",
        vec!["1"; 1_000].join("+") + " > 0",
        format!("statement{} == 1", ".a".repeat(1_000)),
        format!("statement{} == 1", "[0]".repeat(1_000)),
    ];
    for condition in conditions {
        std::fs::write(
            d.join("policy.yaml"),
            format!(
                "defaultAdmissionRule:\n  evaluationMode: REQUIRE_ATTESTATION\n  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG\n  requireAttestationsBy: [ci]\nattestors:\n  - name: ci\n    publicKeys: [{{file: ci.pub}}]\n    conditions: ['{condition}']\n"
            ),
        )
        .unwrap();
        let check = run(d, &["policy", "check", "policy.yaml"]).expect_code(2);
        assert!(
            check.stderr.contains("policy.yaml:8:") && check.stderr.contains("condition"),
            "{}",
            check.stderr
        );
        let verify = run(d, &["verify", "oci:nowhere", "--policy", "policy.yaml"]);
        assert_ne!(verify.code, 134, "{}", verify.all());
        assert!(verify.stderr.contains("policy.yaml:8:"), "{}", verify.all());
        let serve = run(
            d,
            &[
                "serve",
                "--policy",
                "policy.yaml",
                "--insecure-http",
                "--listen",
                "127.0.0.1:0",
            ],
        );
        assert_eq!(serve.code, 2, "{}", serve.all());
        assert!(serve.stderr.contains("policy.yaml:8:"), "{}", serve.all());
    }
}
