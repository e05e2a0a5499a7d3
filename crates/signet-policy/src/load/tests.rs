use super::attestors::{ATTESTOR_FIELDS, attestor_name};
use super::rules::{ENFORCEMENT_MODES, RuleKey, TOP_FIELDS};
use super::yaml::{edit_distance, suggest, unclosed_bracket};
use super::*;
use crate::model::{AttestorName, EnforcementMode, EvaluationMode, SignedIdentity};
use signet_core::keyless::StringMatch;

fn keys_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/keys")
}

fn check(yaml: &str) -> Result<Policy, PolicyErrors> {
    parse(yaml, Path::new("p.yaml"), &keys_dir())
}

fn errors(yaml: &str) -> Vec<String> {
    match check(yaml) {
        Ok(_) => panic!("policy loaded:\n{yaml}"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

const DENY: &str = "defaultAdmissionRule: {evaluationMode: ALWAYS_DENY, enforcementMode: \
                    ENFORCED_BLOCK_AND_AUDIT_LOG}\n";

#[test]
fn minimal_policy() {
    let p = check(DENY).unwrap();
    assert_eq!(p.default_rule.evaluation, EvaluationMode::AlwaysDeny);
    assert_eq!(p.default_rule.span, Span { line: 1, column: 1 });
    assert!(p.registry_allowlist.is_none());
}

#[test]
fn empty_and_comment_only_are_errors() {
    for yaml in ["", "# nothing\n", "---\n", "~\n"] {
        let e = errors(yaml);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("p.yaml:1:1: the policy is empty"), "{e:?}");
    }
}

#[test]
fn collects_all_errors_in_order() {
    let e = errors(
        "attestors:\n  - name: a\n    publicKeys: []\nfoo: 1\ndefaultAdmissionRule:\n  \
         evaluationMode: NOPE\n  requireAttestationsBy: [b]\n",
    );
    assert_eq!(
        e,
        [
            "p.yaml:3:5: attestor `a` has no public keys; add one under `publicKeys` \
             (`- file: key.pub` or `- pem: ...`), or trust certificates with `keyless` or \
             `certificates`",
            "p.yaml:4:1: unknown field `foo`; expected one of `registryAllowlist`, \
             `admissionWhitelistPatterns`, `admissionAllowlistPatterns`, \
             `defaultAdmissionRule`, `clusterAdmissionRules`, \
             `kubernetesNamespaceAdmissionRules`, `kubernetesServiceAccountAdmissionRules`, \
             `attestors`, `globalPolicyEvaluationMode`, `multiPlatform`, `revokedKeys`, `timestampAuthorities`, `name`, `etag`, \
             `updateTime`, `description`",
            "p.yaml:5:1: `defaultAdmissionRule` is missing `enforcementMode` (one of \
             `ENFORCED_BLOCK_AND_AUDIT_LOG`, `DRYRUN_AUDIT_LOG_ONLY`)",
            "p.yaml:6:19: invalid `evaluationMode` `NOPE`; expected one of `ALWAYS_ALLOW`, \
             `ALWAYS_DENY`, `REQUIRE_ATTESTATION`",
            "p.yaml:7:27: `defaultAdmissionRule` requires undefined attestor `b` (did you \
             mean `a`?); defined attestors: `a`",
        ]
    );
}

#[test]
fn rules_and_attestor_references() {
    let p = check(
        r#"
defaultAdmissionRule:
  evaluationMode: REQUIRE_ATTESTATION
  enforcementMode: DRYRUN_AUDIT_LOG_ONLY
  requireAttestationsBy: [projects/p/attestors/build, qa]
clusterAdmissionRules:
  us-central1-a.prod: {evaluationMode: ALWAYS_ALLOW, enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG, requireAttestationsBy: []}
kubernetesServiceAccountAdmissionRules:
  "payments:deployer": {evaluationMode: ALWAYS_DENY, enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG}
attestors:
  - name: projects/p/attestors/build
    publicKeys: [{file: p256.pub}, {file: other.pub}]
  - name: qa
    publicKeys: [{file: other.pub}]
    predicateType: https://cosign.sigstore.dev/attestation/vuln/v1
    conditions: ["statement.predicate.ok == true"]
    signedIdentity: {type: remapIdentity, prefix: registry.corp/team, signedPrefix: ghcr.io/team}
"#,
    )
    .unwrap();
    assert_eq!(p.default_rule.enforcement, EnforcementMode::DryRun);
    assert_eq!(
        p.default_rule.require,
        [AttestorName("build".into()), AttestorName("qa".into())]
    );
    assert_eq!(p.cluster_rules.len(), 1);
    assert!(p.service_account_rules.contains_key("payments:deployer"));
    let build = &p.attestors[&AttestorName("build".into())];
    assert_eq!(build.keys.len(), 2);
    assert_eq!(build.signed_identity, SignedIdentity::MatchDigest);
    let qa = &p.attestors[&AttestorName("qa".into())];
    assert_eq!(qa.conditions.len(), 1);
    assert_eq!(
        qa.span,
        Span {
            line: 13,
            column: 5
        }
    );
    assert_eq!(
        qa.signed_identity,
        SignedIdentity::RemapIdentity {
            prefix: "registry.corp/team".into(),
            signed_prefix: "ghcr.io/team".into()
        }
    );
    let summary = p.summary();
    assert!(
        summary.contains("default rule: REQUIRE_ATTESTATION (DRYRUN_AUDIT_LOG_ONLY) by build, qa"),
        "{summary}"
    );
    assert!(summary.contains("build: 2 keys (sha256:"), "{summary}");
    assert!(summary.contains("1 condition"), "{summary}");
    // The pieces the daemon's decision explorer lays out are the summary's own.
    let scopes: Vec<(&str, Option<&str>, String)> = p
        .rules_by_scope()
        .into_iter()
        .map(|(scope, key, rule)| (scope, key, rule.summary()))
        .collect();
    assert_eq!(
        scopes,
        [
            (
                "default",
                None,
                "REQUIRE_ATTESTATION (DRYRUN_AUDIT_LOG_ONLY) by build, qa".to_string()
            ),
            (
                "cluster",
                Some("us-central1-a.prod"),
                "ALWAYS_ALLOW (ENFORCED_BLOCK_AND_AUDIT_LOG)".to_string()
            ),
            (
                "serviceAccount",
                Some("payments:deployer"),
                "ALWAYS_DENY (ENFORCED_BLOCK_AND_AUDIT_LOG)".to_string()
            ),
        ]
    );
    assert!(
        summary.contains(&format!(
            "qa: 1 key ({}), {}, 1 condition, identity {}",
            qa.key_labels().join(", "),
            qa.predicate_summary(),
            qa.signed_identity.summary().unwrap()
        )),
        "{summary}"
    );
    assert_eq!(build.signed_identity.summary(), None);
    assert_eq!(p.allowlist_summary(), "none (images from any registry)");
    assert_eq!(p.exempt_summary(), "none");
}

#[test]
fn rule_errors() {
    let e = errors(&format!(
        "{DENY}attestors: [{{name: a, publicKeys: [{{file: p256.pub}}]}}]\n\
         kubernetesNamespaceAdmissionRules:\n  \
         one: {{evaluationMode: REQUIRE_ATTESTATION, enforcementMode: DRYRUN_AUDIT_LOG_ONLY}}\n  \
         two: {{evaluationMode: ALWAYS_ALLOW, enforcementMode: DRYRUN_AUDIT_LOG_ONLY, requireAttestationsBy: [a]}}\n  \
         three: {{evaluationMode: REQUIRE_ATTESTATION, enforcementMode: DRYRUN_AUDIT_LOG_ONLY, requireAttestationsBy: [a, projects/x/attestors/a]}}\n  \
         Four: {{evaluationMode: EVALUATION_MODE_UNSPECIFIED, enforcementMode: DRYRUN_AUDIT_LOG_ONLY}}\n"
    ));
    let joined = e.join("\n");
    assert!(
        joined.contains(
            "p.yaml:4:9: namespace rule `one` is REQUIRE_ATTESTATION but names no attestor"
        ),
        "{joined}"
    );
    assert!(joined.contains("p.yaml:5:79: `requireAttestationsBy` in namespace rule `two` has no effect with `evaluationMode: ALWAYS_ALLOW`"), "{joined}");
    assert!(
        joined.contains("p.yaml:6:115: attestor `a` is listed twice"),
        "{joined}"
    );
    assert!(
        joined.contains("p.yaml:7:3: `Four` is not a Kubernetes namespace name"),
        "{joined}"
    );
    assert!(
        joined.contains(
            "invalid `evaluationMode` `EVALUATION_MODE_UNSPECIFIED`: a rule must say what it does"
        ),
        "{joined}"
    );
}

#[test]
fn service_account_keys() {
    assert!(RuleKey::ServiceAccount.check("ns:sa.name-1").is_ok());
    for bad in ["ns/sa", "ns:", ":sa", "NS:sa", "ns:Sa", "ns:sa:x"] {
        assert!(RuleKey::ServiceAccount.check(bad).is_err(), "{bad}");
    }
}

#[test]
fn attestor_names() {
    assert_eq!(attestor_name("projects/p/attestors/x").unwrap().0, "x");
    assert_eq!(attestor_name("x-1_y.z").unwrap().0, "x-1_y.z");
    for bad in [
        "",
        "projects//attestors/x",
        "p/x",
        "projects/p/attestors/",
        "a b",
    ] {
        assert!(attestor_name(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn strings_are_not_numbers() {
    let e = errors(&format!("{DENY}name: 12\n"));
    assert_eq!(
        e,
        [
            "p.yaml:2:7: `name` must be a string, found the number `12` (quote it to make it a string)"
        ]
    );
}

#[test]
fn null_values_point_at_the_key() {
    let e = errors(&format!("{DENY}attestors:\nregistryAllowlist:\n"));
    assert_eq!(
        e,
        [
            "p.yaml:2:1: `attestors` must be a list, found nothing (write `[]` for none)",
            "p.yaml:3:1: `registryAllowlist` must be a list, found nothing (write `[]` for none)",
        ]
    );
}

#[test]
fn condition_errors_point_into_the_expression() {
    let yaml = format!(
        "{DENY}attestors:\n  - name: a\n    publicKeys: [{{file: p256.pub}}]\n    conditions:\n      - \"a.b(\"\n      - a &&\n      - |\n        x ==\n"
    );
    let e = errors(&yaml);
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(
        e[0].starts_with("p.yaml:6:14: attestor `a`: condition does not compile: "),
        "{e:?}"
    );
    assert!(
        e[1].starts_with("p.yaml:7:13: attestor `a`: condition does not compile: "),
        "{e:?}"
    );
    assert!(
        e[2].starts_with("p.yaml:9:9: attestor `a`: condition does not compile: "),
        "{e:?}"
    );
    assert!(
        e[2].ends_with("(line 2, column 1 of the condition)"),
        "{e:?}"
    );
}

#[test]
fn binauthz_attestor_keys() {
    let pem = std::fs::read_to_string(keys_dir().join("p256.pub")).unwrap();
    let indented = pem.replace('\n', "\n              ");
    let yaml = format!(
        "{DENY}attestors:\n  - name: projects/p/attestors/a\n    userOwnedGrafeasNote:\n      \
         noteReference: projects/p/notes/a\n      publicKeys:\n        - id: x\n          \
         pkixPublicKey:\n            signatureAlgorithm: ECDSA_P384_SHA384\n            \
         publicKeyPem: |\n              {indented}\n        - asciiArmoredPgpPublicKey: x\n"
    );
    let e = errors(&yaml);
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].contains("9:33: attestor `a`: `signatureAlgorithm` `ECDSA_P384_SHA384` does not fit the key, which is ecdsa-p256-sha256"), "{e:?}");
    assert!(e[1].contains("16:37: attestor `a`: PGP key: "), "{e:?}");
}

#[test]
fn unreadable_policy_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.yaml");
    let e = load(&path).unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert!(
        e.to_string().ends_with(
            "missing.yaml: cannot read the policy file: No such file or directory (os error 2)"
        ),
        "{e}"
    );
}

#[test]
fn load_resolves_key_files_next_to_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("keys")).unwrap();
    std::fs::copy(keys_dir().join("p256.pub"), dir.path().join("keys/k.pub")).unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(
        &path,
        format!("{DENY}attestors: [{{name: a, publicKeys: [{{file: keys/k.pub}}]}}]\n"),
    )
    .unwrap();
    let p = load(&path).unwrap();
    assert_eq!(p.attestors.len(), 1);
    assert_eq!(p.path, path);
}

#[test]
fn odd_yaml_shapes() {
    let cases: Vec<(String, &str)> = vec![
        (
            "- a\n- b\n".to_owned(),
            "p.yaml:1:1: the policy must be a mapping of fields, found a list",
        ),
        (
            format!("{DENY}---\n{DENY}"),
            "p.yaml:3:1: a policy file holds a single YAML document",
        ),
        (
            format!("{DENY}name: !custom x\n"),
            "p.yaml:2:7: `name` must be a string, found a value tagged `!custom`",
        ),
        (
            format!("{DENY}name: a\nname: b\n"),
            "p.yaml:3:1: invalid YAML: duplicated key in mapping",
        ),
        (
            format!("{DENY}? [a]\n: b\n"),
            "p.yaml:2:3: field names in the policy are strings, found a list",
        ),
        (
            "\u{feff}defaultAdmissionRule: {evaluationMode: ALWAYS_DENY}\n".to_owned(),
            "p.yaml:1:1: `defaultAdmissionRule` is missing `enforcementMode`",
        ),
        (
            format!(
                "{DENY}clusterAdmissionRules:\n  \"\": {{evaluationMode: ALWAYS_DENY, enforcementMode: DRYRUN_AUDIT_LOG_ONLY}}\n"
            ),
            "p.yaml:3:3: invalid cluster name \"\"",
        ),
    ];
    for (yaml, want) in cases {
        let e = errors(&yaml);
        assert!(e[0].starts_with(want), "{yaml:?}: {e:?}");
    }
}

#[test]
fn aliases_and_absolute_key_paths() {
    let key = keys_dir().join("p256.pub").canonicalize().unwrap();
    let yaml = "rule: &r {evaluationMode: ALWAYS_DENY, enforcementMode: DRYRUN_AUDIT_LOG_ONLY}\n";
    // Unknown top-level anchors are still unknown fields.
    assert!(
        errors(yaml)
            .iter()
            .any(|e| e.contains("unknown field `rule`"))
    );
    let yaml = format!(
        "defaultAdmissionRule: &r {{evaluationMode: ALWAYS_DENY, enforcementMode: DRYRUN_AUDIT_LOG_ONLY}}\n\
         clusterAdmissionRules: {{a: *r, b: *r}}\n\
         attestors: [{{name: k, publicKeys: [{{file: {}}}]}}]\n",
        key.display()
    );
    let p = check(&yaml).unwrap();
    assert_eq!(p.cluster_rules.len(), 2);
    assert_eq!(p.attestors.len(), 1);
}

#[test]
fn unclosed_brackets() {
    assert_eq!(unclosed_bracket("a: [b, c\nd: e", 12), Some(('[', 1)));
    assert_eq!(unclosed_bracket("a: [b]\nd: {e: [f]", 17), Some(('{', 2)));
    assert_eq!(unclosed_bracket("a: x[b\nc: 'd[' # [\n", 19), None);
}

#[test]
fn suggestions() {
    assert_eq!(
        suggest("defaultAdmisionRule", TOP_FIELDS.iter().copied()),
        Some("defaultAdmissionRule")
    );
    assert_eq!(suggest("ENFORCED", ENFORCEMENT_MODES.iter().copied()), None);
    assert_eq!(
        suggest("publickeys", ATTESTOR_FIELDS.iter().copied()),
        Some("publicKeys")
    );
    assert_eq!(edit_distance("kitten", "sitting"), 3);
}

/// A keyless attestor whose one identity ends with `extensions:`; the claims follow from line
/// 12, indented by 12 spaces (column 13).
fn keyless_with_claims(claims: &str) -> String {
    format!(
        "defaultAdmissionRule:\n  evaluationMode: REQUIRE_ATTESTATION\n  \
         enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG\n  requireAttestationsBy: [release]\n\
         attestors:\n  - name: release\n    keyless:\n      identities:\n        \
         - issuer: https://token.actions.githubusercontent.com\n          \
         subjectRegExp: ^https://github\\.com/shop/.*$\n          extensions:{claims}"
    )
}

#[test]
fn keyless_identities_take_fulcio_claims_exact_or_by_anchored_regexp() {
    let p = check(&keyless_with_claims(
        "\n            githubWorkflowTrigger: push\n            \
         sourceRepositoryRef: {regExp: ^refs/tags/v.*$}\n            \
         1.3.6.1.4.1.57264.1.11: github-hosted\n            \
         1.3.6.1.4.1.57264.1.24: 'repo:shop/cart:ref:refs/heads/main'\n",
    ))
    .unwrap();
    let attestor = &p.attestors[&AttestorName("release".into())];
    let identity = &attestor.keyless[0].identities[0];
    assert_eq!(
        identity.extensions,
        [
            (
                "githubWorkflowTrigger".to_string(),
                StringMatch::exact("push")
            ),
            (
                "sourceRepositoryRef".to_string(),
                StringMatch::regex("^refs/tags/v.*$").unwrap()
            ),
            // By OID: read under its name when signet knows one, else under the OID.
            (
                "runnerEnvironment".to_string(),
                StringMatch::exact("github-hosted")
            ),
            (
                "1.3.6.1.4.1.57264.1.24".to_string(),
                StringMatch::exact("repo:shop/cart:ref:refs/heads/main")
            ),
        ]
    );
    let summary = p.summary();
    assert!(
        summary.contains(
            "identity subject /^https://github\\.com/shop/.*$/ issuer \
             \"https://token.actions.githubusercontent.com\" githubWorkflowTrigger \"push\" \
             sourceRepositoryRef /^refs/tags/v.*$/ runnerEnvironment \"github-hosted\" \
             1.3.6.1.4.1.57264.1.24 \"repo:shop/cart:ref:refs/heads/main\""
        ),
        "{summary}"
    );

    // Without `extensions`, no claim is required.
    let p = check(&keyless_with_claims(" {}\n").replace("          extensions: {}\n", "")).unwrap();
    assert!(
        p.attestors[&AttestorName("release".into())].keyless[0].identities[0]
            .extensions
            .is_empty()
    );
}

#[test]
fn keyless_claim_errors_point_at_the_claim() {
    let e = errors(&keyless_with_claims(
        "\n            githubWorkflowTriger: push\n            \
         sourceRepositoryRef: {regExp: refs/tags/v.*}\n            \
         buildTrigger: {regexp: ^push$}\n            runnerEnvironment: ''\n            \
         1.3.6.1.4.1.57264.1.8: https://issuer.example\n            \
         2.5.29.17: x\n            githubWorkflowRef: [refs/heads/main]\n            \
         1.3.6.1.4.1.57264.1.2: push\n            githubWorkflowTrigger: push\n",
    ));
    let what = "`extensions` of identity #1 of `keyless` of attestor `release`";
    assert_eq!(e.len(), 8, "{e:#?}");
    assert!(
        e[0].starts_with(&format!(
            "p.yaml:12:13: {what}: unknown Fulcio claim \"githubWorkflowTriger\": expected one \
             of githubWorkflowTrigger, githubWorkflowSha, "
        )),
        "{}",
        e[0]
    );
    assert!(
        e[0].ends_with(
            "sourceRepositoryVisibilityAtSigning, or a dotted OID under 1.3.6.1.4.1.57264.1 for \
             a claim newer than signet (did you mean `githubWorkflowTrigger`?)"
        ),
        "{}",
        e[0]
    );
    assert!(
        e[1].starts_with(&format!(
            "p.yaml:13:43: `regExp` of `sourceRepositoryRef` of {what}: identity regular \
             expression \"refs/tags/v.*\" must be anchored"
        )),
        "{}",
        e[1]
    );
    assert!(
        e[2].starts_with(&format!(
            "p.yaml:14:28: unknown field `regexp` in `buildTrigger` of {what} (did you mean \
             `regExp`?)"
        )),
        "{}",
        e[2]
    );
    assert_eq!(
        e[3],
        format!("p.yaml:15:32: `runnerEnvironment` of {what} is empty")
    );
    assert!(
        e[4].starts_with(&format!(
            "p.yaml:16:13: {what}: unknown Fulcio claim \"1.3.6.1.4.1.57264.1.8\": that is the \
             OIDC issuer"
        )),
        "{}",
        e[4]
    );
    assert!(
        e[5].starts_with(&format!(
            "p.yaml:17:13: {what}: unknown Fulcio claim \"2.5.29.17\": expected one of"
        )),
        "{}",
        e[5]
    );
    assert_eq!(
        e[6],
        format!(
            "p.yaml:18:32: `githubWorkflowRef` of {what} must be a string (the exact value) or \
             `{{regExp: ^…$}}`, found a list"
        )
    );
    // The OID of a named claim is that claim.
    assert_eq!(
        e[7],
        format!("p.yaml:20:13: {what} names the claim githubWorkflowTrigger twice; keep one")
    );

    let e = errors(&keyless_with_claims(" [githubWorkflowTrigger]\n"));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(
        e[0].starts_with(&format!(
            "p.yaml:11:23: {what} must be a mapping from Fulcio claim to value"
        )),
        "{}",
        e[0]
    );
    let e = errors(&keyless_with_claims(" {}\n"));
    assert_eq!(
        e,
        [format!(
            "p.yaml:11:23: {what} is empty; leave it out for none"
        )]
    );
}
