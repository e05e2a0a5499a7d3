//! The example policies load, in both forms, and mean what they say.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers of tests: a failing test should stop loudly"
)]

use std::path::{Path, PathBuf};

use signet_policy::Policy;
use signet_policy::model::{
    AttestorName, EnforcementMode, EvaluationMode, GlobalEvaluationMode, SignedIdentity,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/policies")
        .join(name)
}

fn load(name: &str) -> Policy {
    match signet_policy::load(&fixture(name)) {
        Ok(policy) => policy,
        Err(errors) => panic!("{name} does not load:\n{errors}"),
    }
}

fn names(names: &[&str]) -> Vec<AttestorName> {
    names
        .iter()
        .map(|n| AttestorName((*n).to_owned()))
        .collect()
}

fn key_ids(policy: &Policy, attestor: &str) -> Vec<String> {
    policy.attestors[&AttestorName(attestor.to_owned())]
        .keys
        .iter()
        .map(|k| k.id().to_string())
        .collect()
}

fn fixture_key_id(file: &str) -> String {
    let pem = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/keys")
            .join(file),
    )
    .unwrap();
    signet_core::keys::PublicKey::from_pem(&pem)
        .unwrap()
        .id()
        .to_string()
}

#[test]
fn binauthz_export_loads() {
    let p = load("binauthz-export.yaml");
    assert_eq!(p.name.as_deref(), Some("projects/my-project/policy"));
    assert_eq!(p.global_evaluation_mode, GlobalEvaluationMode::Enable);
    assert!(p.registry_allowlist.is_none());
    assert_eq!(p.exempt.len(), 5);
    assert!(p.exempt.iter().any(|g| g.matches("k8s.gcr.io/pause")));
    assert!(
        p.exempt
            .iter()
            .any(|g| g.matches("gcr.io/google_containers/pause"))
    );
    assert!(!p.exempt.iter().any(|g| g.matches("gcr.io/my-project/app")));

    assert_eq!(p.default_rule.evaluation, EvaluationMode::AlwaysDeny);
    let prod = &p.cluster_rules["us-central1-a.prod"];
    assert_eq!(prod.evaluation, EvaluationMode::RequireAttestation);
    assert_eq!(prod.enforcement, EnforcementMode::Enforced);
    assert_eq!(prod.require, names(&["built-by-ci", "qa-approved"]));
    let staging = &p.cluster_rules["europe-west1-b.staging"];
    assert_eq!(staging.enforcement, EnforcementMode::DryRun);
    assert_eq!(
        p.namespace_rules["kube-system"].evaluation,
        EvaluationMode::AlwaysAllow
    );
    assert_eq!(
        p.service_account_rules["payments:break-glass"].evaluation,
        EvaluationMode::AlwaysDeny
    );

    assert_eq!(p.attestors.len(), 2);
    assert_eq!(key_ids(&p, "built-by-ci"), [fixture_key_id("p256.pub")]);
    assert_eq!(key_ids(&p, "qa-approved"), [fixture_key_id("other.pub")]);
    let ci = &p.attestors[&AttestorName("built-by-ci".into())];
    assert_eq!(ci.predicate_type, None);
    assert_eq!(ci.signed_identity, SignedIdentity::MatchDigest);
}

#[test]
fn signet_example_loads() {
    let p = load("example.yaml");
    let allow = p.registry_allowlist.as_ref().unwrap();
    assert!(
        allow
            .iter()
            .any(|g| g.matches("registry.corp.example/team/app"))
    );
    assert!(allow.iter().any(|g| g.matches("localhost:5000/app")));
    assert!(!allow.iter().any(|g| g.matches("docker.io/library/alpine")));
    assert_eq!(p.exempt.len(), 1);
    assert_eq!(
        p.default_rule.require,
        names(&["built-by-ci", "qa-approved"])
    );
    assert_eq!(
        p.namespace_rules["payments"].require,
        names(&["built-by-ci", "qa-approved", "vuln-scanned"])
    );
    assert_eq!(
        p.namespace_rules["sandbox"].enforcement,
        EnforcementMode::DryRun
    );
    assert!(p.service_account_rules.contains_key("payments:deployer"));
    assert_eq!(
        key_ids(&p, "built-by-ci"),
        [fixture_key_id("p256.pub"), fixture_key_id("other.pub")]
    );
    let qa = &p.attestors[&AttestorName("qa-approved".into())];
    assert_eq!(qa.signed_identity, SignedIdentity::MatchRepository);
    let vuln = &p.attestors[&AttestorName("vuln-scanned".into())];
    assert_eq!(
        vuln.predicate_type.as_deref(),
        Some("https://cosign.sigstore.dev/attestation/vuln/v1")
    );
    assert_eq!(vuln.conditions.len(), 1);
    assert_eq!(vuln.conditions[0].span.line, 43);
}

#[test]
fn summaries() {
    let summary = load("example.yaml").summary();
    let p256 = fixture_key_id("p256.pub");
    let short = &p256[..19];
    assert!(
        summary.starts_with(
            "default rule: REQUIRE_ATTESTATION (ENFORCED_BLOCK_AND_AUDIT_LOG) by built-by-ci, \
             qa-approved\ncluster rules: 1\n  dev-eu: ALWAYS_ALLOW (ENFORCED_BLOCK_AND_AUDIT_LOG)\n"
        ),
        "{summary}"
    );
    assert!(
        summary.contains("registry allowlist: registry.corp.example/**, localhost:5000/**\n"),
        "{summary}"
    );
    assert!(
        summary.contains("exempt patterns: registry.corp.example/base/*\n"),
        "{summary}"
    );
    assert!(summary.contains("attestors: 3\n"), "{summary}");
    assert!(
        summary.contains(&format!("  built-by-ci: 2 keys ({short}, ")),
        "{summary}"
    );
    assert!(
        summary.contains(
            "predicate type https://cosign.sigstore.dev/attestation/vuln/v1, 1 condition"
        ),
        "{summary}"
    );
    assert!(summary.ends_with('\n'));

    let summary = load("binauthz-export.yaml").summary();
    assert!(
        summary.starts_with("name: projects/my-project/policy\ndefault rule: ALWAYS_DENY"),
        "{summary}"
    );
    assert!(
        summary.contains("registry allowlist: none (images from any registry)"),
        "{summary}"
    );
    assert!(
        summary.ends_with("globalPolicyEvaluationMode: ENABLE\n"),
        "{summary}"
    );
}
