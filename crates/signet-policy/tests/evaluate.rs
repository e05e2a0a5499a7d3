//! Evaluation: rule precedence, AND over attestors, dry run, exempt vs. registry allowlist,
//! predicate types, identity, and CEL conditions that pass, fail and error. Pure: evidence is
//! built by hand, as `signet-verify` would hand it over after checking signatures.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a broken fixture should fail the test loudly"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use signet_core::digest::Digest;
use signet_core::evidence::{Format, Location};
use signet_core::keys::KeyId;
use signet_core::reference::ImageRef;
use signet_core::signed_time::{SignedTime, SignedTimes, TimeSource};
use signet_policy::Policy;
use signet_policy::evaluate::{AdmissionContext, AttestorEvidence, Need, Proof};
use signet_policy::model::AttestorName;

/// Evidence as `signet-verify` hands it over once checked, built by hand for these tests
/// (the policy engine judges through the [`Proof`] trait).
#[derive(Debug, Clone, PartialEq)]
struct Attested {
    location: Location,
    key_id: KeyId,
    predicate_type: String,
    statement: Option<serde_json::Value>,
    signed_reference: Option<String>,
    times: SignedTimes,
}

impl Proof for Attested {
    fn location(&self) -> &Location {
        &self.location
    }
    fn key_id(&self) -> &KeyId {
        &self.key_id
    }
    fn predicate_type(&self) -> &str {
        &self.predicate_type
    }
    fn statement(&self) -> Option<&serde_json::Value> {
        self.statement.as_ref()
    }
    fn signed_reference(&self) -> Option<&str> {
        self.signed_reference.as_deref()
    }
    fn signed_times(&self) -> &SignedTimes {
        &self.times
    }
}

/// A location named after `name` (a legacy layer of a tag called `name`).
fn at(name: &str) -> Location {
    Location::LegacyLayer {
        format: Format::LegacySignature,
        tag: name.to_string(),
        index: 0,
    }
}

fn key() -> KeyId {
    KeyId::of_spki_der(b"test key")
}

fn keys_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/keys")
}

fn policy(yaml: &str) -> Policy {
    let path = keys_dir().join("inline-policy.yaml");
    match signet_policy::parse(yaml, &path, &keys_dir()) {
        Ok(p) => p,
        Err(e) => panic!("policy does not load:\n{e}"),
    }
}

/// Attestors `build` (p256 key), `qa` (other key), `vuln` (p256 key, vuln predicate, no
/// CRITICAL finding) and the rules given.
fn with_rules(rules: &str) -> Policy {
    policy(&format!(
        r#"
registryAllowlist: ["registry.corp/**", "localhost:5000/*"]
admissionWhitelistPatterns:
  - namePattern: registry.corp/base/*
  - namePattern: docker.io/library/*
{rules}
attestors:
  - name: build
    publicKeys: [{{file: p256.pub}}]
  - name: qa
    publicKeys: [{{file: other.pub}}]
  - name: vuln
    publicKeys: [{{file: p256.pub}}]
    predicateType: https://cosign.sigstore.dev/attestation/vuln/v1
    conditions:
      - "!statement.predicate.scanner.result.exists(f, f.severity == 'CRITICAL')"
"#
    ))
}

fn digest() -> Digest {
    Digest::sha256_of(b"the image")
}

fn image(s: &str) -> ImageRef {
    s.parse().unwrap()
}

fn signature(location: &str) -> Attested {
    Attested {
        location: at(location),
        key_id: key(),
        predicate_type: "https://sigstore.dev/cosign/sign/v1".into(),
        statement: Some(serde_json::json!({"predicate": {}})),
        signed_reference: None,
        times: SignedTimes::default(),
    }
}

fn vuln(severities: &[&str]) -> Attested {
    let results: Vec<_> = severities
        .iter()
        .map(|s| serde_json::json!({"id": "CVE-1", "severity": s}))
        .collect();
    Attested {
        location: Location::Referrer(Digest::sha256_of(b"v")),
        key_id: key(),
        predicate_type: "https://cosign.sigstore.dev/attestation/vuln/v1".into(),
        statement: Some(serde_json::json!({"predicate": {"scanner": {"result": results}}})),
        signed_reference: None,
        times: SignedTimes::default(),
    }
}

fn evidence<'e>(
    entries: &'e [(&str, Vec<Attested>)],
) -> BTreeMap<AttestorName, AttestorEvidence<'e>> {
    entries
        .iter()
        .map(|(name, accepted)| {
            (
                AttestorName(name.to_string()),
                AttestorEvidence {
                    accepted: accepted.iter().map(|a| a as &dyn Proof).collect(),
                    rejected: Vec::new(),
                },
            )
        })
        .collect()
}

const RULES: &str = r#"
defaultAdmissionRule:
  evaluationMode: REQUIRE_ATTESTATION
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
  requireAttestationsBy: [build, qa]
clusterAdmissionRules:
  dev: {evaluationMode: ALWAYS_ALLOW, enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG}
kubernetesNamespaceAdmissionRules:
  sandbox: {evaluationMode: ALWAYS_ALLOW, enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG}
  locked: {evaluationMode: ALWAYS_DENY, enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG}
  trial: {evaluationMode: REQUIRE_ATTESTATION, enforcementMode: DRYRUN_AUDIT_LOG_ONLY, requireAttestationsBy: [qa]}
  scanned: {evaluationMode: REQUIRE_ATTESTATION, enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG, requireAttestationsBy: [build, vuln]}
kubernetesServiceAccountAdmissionRules:
  "locked:deployer": {evaluationMode: ALWAYS_ALLOW, enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG}
"#;

fn ctx(cluster: Option<&str>, ns: Option<&str>, sa: Option<&str>) -> AdmissionContext {
    AdmissionContext {
        cluster: cluster.map(str::to_string),
        namespace: ns.map(str::to_string),
        service_account: sa.map(str::to_string),
    }
}

#[test]
fn rule_precedence_service_account_then_namespace_then_cluster_then_default() {
    let p = with_rules(RULES);
    let label = |c: AdmissionContext| {
        let chosen = p.rule_for(&c);
        format!("{} {}", chosen.label, chosen.key.unwrap_or("-"))
    };
    assert_eq!(label(ctx(None, None, None)), "default -");
    assert_eq!(label(ctx(Some("dev"), None, None)), "cluster dev");
    assert_eq!(
        label(ctx(Some("dev"), Some("locked"), None)),
        "namespace locked"
    );
    assert_eq!(
        label(ctx(Some("dev"), Some("locked"), Some("deployer"))),
        "serviceAccount locked:deployer"
    );
    // A service account with no rule of its own falls back to its namespace's.
    assert_eq!(
        label(ctx(None, Some("locked"), Some("other"))),
        "namespace locked"
    );
    // An unknown namespace falls back to the cluster, then the default.
    assert_eq!(label(ctx(Some("dev"), Some("nope"), None)), "cluster dev");
    assert_eq!(label(ctx(Some("prod"), Some("nope"), None)), "default -");
}

#[test]
fn every_required_attestor_must_have_attested() {
    let p = with_rules(RULES);
    let img = image("registry.corp/team/app:v1");
    let both = p.evaluate(
        &img,
        Some(&digest()),
        &ctx(None, None, None),
        &evidence(&[
            ("build", vec![signature("a")]),
            ("qa", vec![signature("b")]),
        ]),
    );
    assert!(both.allowed(), "{both:?}");
    assert_eq!(both.rule, "default");
    assert_eq!(both.attestors.len(), 2);

    let only_build = p.evaluate(
        &img,
        Some(&digest()),
        &ctx(None, None, None),
        &evidence(&[("build", vec![signature("a")])]),
    );
    assert!(!only_build.allowed());
    assert_eq!(only_build.reasons.len(), 1, "{:?}", only_build.reasons);
    assert!(only_build.reasons[0].starts_with("attestor qa: no attestation signed by key"));
    assert!(only_build.reasons[0].contains(&digest().to_string()));
    assert!(only_build.attestors[0].satisfied && !only_build.attestors[1].satisfied);
}

#[test]
fn always_allow_and_always_deny() {
    let p = with_rules(RULES);
    let img = image("registry.corp/team/app:v1");
    let none = BTreeMap::new();
    assert!(
        p.evaluate(
            &img,
            Some(&digest()),
            &ctx(None, Some("sandbox"), None),
            &none
        )
        .allowed()
    );
    let denied = p.evaluate(
        &img,
        Some(&digest()),
        &ctx(None, Some("locked"), None),
        &none,
    );
    assert!(!denied.allowed());
    assert_eq!(
        denied.reasons,
        ["rule namespace locked denies every image (ALWAYS_DENY)"]
    );
    assert!(matches!(
        p.needs(&img, &ctx(None, Some("sandbox"), None)),
        Need::Nothing
    ));
}

#[test]
fn dry_run_admits_and_reports_what_it_would_deny() {
    let p = with_rules(RULES);
    let d = p.evaluate(
        &image("registry.corp/team/app:v1"),
        Some(&digest()),
        &ctx(None, Some("trial"), None),
        &BTreeMap::new(),
    );
    assert!(d.allowed());
    assert!(d.would_deny());
    assert_eq!(d.enforcement.as_str(), "dryrun");
    assert!(d.reasons[0].starts_with("attestor qa:"), "{:?}", d.reasons);
}

#[test]
fn exempt_pattern_never_admits_an_untrusted_registry() {
    let p = with_rules(RULES);
    let none = BTreeMap::new();
    let c = ctx(None, None, None);
    let exempt = p.evaluate(&image("registry.corp/base/debian:12"), None, &c, &none);
    assert!(exempt.allowed());
    assert_eq!(exempt.rule, "admissionWhitelistPatterns");
    // docker.io/library/* is exempt, but docker.io is not an allowed registry.
    let hub = p.evaluate(&image("alpine:3.19"), None, &c, &none);
    assert!(!hub.allowed());
    assert_eq!(hub.rule, "registryAllowlist");
    assert!(hub.reasons[0].contains("docker.io/library/alpine is not in a trusted registry"));
    // Untrusted even in a namespace that allows everything.
    let anywhere = p.evaluate(
        &image("evil.example/app:v1"),
        None,
        &ctx(None, Some("sandbox"), None),
        &none,
    );
    assert!(!anywhere.allowed());
    assert!(matches!(
        p.needs(&image("evil.example/app"), &c),
        Need::Nothing
    ));
    // `*` does not cross `/`: localhost:5000/a/b is not under localhost:5000/*.
    assert!(
        !p.evaluate(
            &image("localhost:5000/a/b"),
            None,
            &ctx(None, Some("sandbox"), None),
            &none
        )
        .allowed()
    );
    assert!(
        p.evaluate(
            &image("localhost:5000/a"),
            None,
            &ctx(None, Some("sandbox"), None),
            &none
        )
        .allowed()
    );
}

#[test]
fn cel_conditions_pass_fail_and_error() {
    let p = with_rules(RULES);
    let img = image("registry.corp/team/app:v1");
    let c = ctx(None, Some("scanned"), None);
    let run = |v: Attested| {
        p.evaluate(
            &img,
            Some(&digest()),
            &c,
            &evidence(&[("build", vec![signature("a")]), ("vuln", vec![v])]),
        )
    };
    let clean = run(vuln(&["LOW", "HIGH"]));
    assert!(clean.allowed(), "{:?}", clean.reasons);

    let critical = run(vuln(&["LOW", "CRITICAL"]));
    assert!(!critical.allowed());
    assert!(
        critical.reasons[0].contains("is false"),
        "{:?}",
        critical.reasons
    );

    // The predicate lacks the field the condition reads: an error, which denies.
    let mut broken = vuln(&[]);
    broken.statement = Some(serde_json::json!({"predicate": {"unexpected": true}}));
    let errored = run(broken);
    assert!(!errored.allowed());
    assert!(
        errored.reasons[0].contains("failed"),
        "{:?}",
        errored.reasons
    );

    // A plain signature by the vuln key is not a vulnerability attestation.
    let wrong_type = run(signature("s"));
    assert!(!wrong_type.allowed());
    assert!(wrong_type.reasons[0].contains("not https://cosign.sigstore.dev/attestation/vuln/v1"));
}

/// Issue 12, finding 4: `prefix: registry.corp/prod` remapped `registry.corp/prodx/app` too,
/// so a signature for `ghcr.io/prodx/app` was taken for an image outside the remapped tree.
#[test]
fn remap_identity_prefix_matches_only_at_a_path_boundary() {
    let p = policy(
        r#"
defaultAdmissionRule: {evaluationMode: REQUIRE_ATTESTATION, enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG, requireAttestationsBy: [remap, slash]}
attestors:
  - name: remap
    publicKeys: [{file: p256.pub}]
    signedIdentity: {type: remapIdentity, prefix: registry.corp/prod, signedPrefix: ghcr.io/prod}
  - name: slash
    publicKeys: [{file: p256.pub}]
    signedIdentity: {type: remapIdentity, prefix: registry.corp/prod/, signedPrefix: ghcr.io/prod/}
"#,
    );
    // Whether each attestor accepts a signature for `signed` on `deployed`.
    let satisfied = |deployed: &str, signed: &str| -> Vec<bool> {
        let e = vec![Attested {
            signed_reference: Some(signed.into()),
            times: SignedTimes::default(),
            statement: None,
            ..signature(".sig layer 0")
        }];
        p.evaluate(
            &image(deployed),
            Some(&digest()),
            &ctx(None, None, None),
            &evidence(&[("remap", e.clone()), ("slash", e)]),
        )
        .attestors
        .iter()
        .map(|a| a.satisfied)
        .collect()
    };
    // Not at a boundary: no remapping, the name must be signed as it is.
    assert_eq!(
        satisfied("registry.corp/prodx/app:v1", "ghcr.io/prodx/app"),
        [false, false]
    );
    assert_eq!(
        satisfied("registry.corp/prodx/app:v1", "registry.corp/prodx/app"),
        [true, true]
    );
    // At a `/` boundary, with or without a trailing `/` in the prefix: remapped.
    assert_eq!(
        satisfied("registry.corp/prod/app:v1", "ghcr.io/prod/app"),
        [true, true]
    );
    assert_eq!(
        satisfied("registry.corp/prod/app:v1", "registry.corp/prod/app"),
        [false, false]
    );
    // The whole name: remapped.
    assert_eq!(
        satisfied("registry.corp/prod:v1", "ghcr.io/prod"),
        [true, false]
    );
}

#[test]
fn signed_identity_of_simple_signing_payloads() {
    let p = policy(
        r#"
defaultAdmissionRule: {evaluationMode: REQUIRE_ATTESTATION, enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG, requireAttestationsBy: [digest, repo, remap]}
attestors:
  - name: digest
    publicKeys: [{file: p256.pub}]
  - name: repo
    publicKeys: [{file: p256.pub}]
    signedIdentity: {type: matchRepository}
  - name: remap
    publicKeys: [{file: p256.pub}]
    signedIdentity: {type: remapIdentity, prefix: registry.corp/team, signedPrefix: ghcr.io/team}
"#,
    );
    let img = image("registry.corp/team/app:v1");
    let legacy = |reference: &str| Attested {
        signed_reference: Some(reference.into()),
        times: SignedTimes::default(),
        statement: None,
        ..signature(".sig layer 0")
    };
    let decide = |reference: &str| {
        let e = vec![legacy(reference)];
        p.evaluate(
            &img,
            Some(&digest()),
            &ctx(None, None, None),
            &evidence(&[("digest", e.clone()), ("repo", e.clone()), ("remap", e)]),
        )
    };
    let signed_here = decide("registry.corp/team/app");
    let sat: Vec<bool> = signed_here.attestors.iter().map(|a| a.satisfied).collect();
    assert_eq!(sat, [true, true, false]);
    let signed_upstream = decide("ghcr.io/team/app");
    let sat: Vec<bool> = signed_upstream
        .attestors
        .iter()
        .map(|a| a.satisfied)
        .collect();
    assert_eq!(sat, [true, false, true]);
}

#[test]
fn evaluation_is_deterministic() {
    let p = with_rules(RULES);
    let img = image("registry.corp/team/app:v1");
    let entries = [("build", vec![signature("a"), signature("b")])];
    let e = evidence(&entries);
    let first =
        serde_json::to_string(&p.evaluate(&img, Some(&digest()), &ctx(None, None, None), &e))
            .unwrap();
    for _ in 0..20 {
        let again =
            serde_json::to_string(&p.evaluate(&img, Some(&digest()), &ctx(None, None, None), &e))
                .unwrap();
        assert_eq!(first, again);
    }
}

/// Issue 15: M of N attestors. Two of three QA approvers: allowed with two approvals, denied with
/// one, naming who is missing; `build` is still required outright.
#[test]
fn two_of_three_threshold_names_who_is_missing() {
    let p = policy(
        r#"
defaultAdmissionRule:
  evaluationMode: REQUIRE_ATTESTATION
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
  requireAttestationsBy: [build]
  requireAttestationsThreshold:
    - count: 2
      from: [alice, bob, carol]
attestors:
  - name: build
    publicKeys: [{file: p256.pub}]
  - name: alice
    publicKeys: [{file: p256.pub}]
  - name: bob
    publicKeys: [{file: other.pub}]
  - name: carol
    publicKeys: [{file: p256.pub}]
"#,
    );
    assert!(
        p.summary().contains(
            "REQUIRE_ATTESTATION (ENFORCED_BLOCK_AND_AUDIT_LOG) by build and 2 of alice, bob, carol"
        ),
        "{}",
        p.summary()
    );
    let img = image(
        "registry.corp/app@sha256:0000000000000000000000000000000000000000000000000000000000000000",
    );
    let Need::Attestors(needed) = p.needs(&img, &ctx(None, None, None)) else {
        panic!("evidence is needed");
    };
    let names: Vec<&str> = needed.iter().map(|a| a.name.0.as_str()).collect();
    assert_eq!(names, ["build", "alice", "bob", "carol"]);

    let two = [
        ("build", vec![signature("b")]),
        ("alice", vec![signature("a")]),
        ("carol", vec![signature("c")]),
    ];
    let d = p.evaluate(
        &img,
        Some(&digest()),
        &ctx(None, None, None),
        &evidence(&two),
    );
    assert!(d.allowed(), "{:?}", d.reasons);

    let one = [
        ("build", vec![signature("b")]),
        ("bob", vec![signature("x")]),
    ];
    let d = p.evaluate(
        &img,
        Some(&digest()),
        &ctx(None, None, None),
        &evidence(&one),
    );
    assert!(!d.allowed());
    assert_eq!(d.reasons.len(), 1, "{:?}", d.reasons);
    let reason = &d.reasons[0];
    assert!(
        reason.starts_with("2 of alice, bob, carol attestors must attest, 1 did (bob); missing: alice (no attestation signed by key"),
        "{reason}"
    );
    assert!(reason.contains("; carol (no attestation"), "{reason}");

    // Without build, even three approvals are not enough.
    let no_build = [
        ("alice", vec![signature("a")]),
        ("bob", vec![signature("x")]),
        ("carol", vec![signature("c")]),
    ];
    let d = p.evaluate(
        &img,
        Some(&digest()),
        &ctx(None, None, None),
        &evidence(&no_build),
    );
    assert!(!d.allowed());
    assert!(
        d.reasons[0].starts_with("attestor build:"),
        "{:?}",
        d.reasons
    );
}

#[test]
fn thresholds_are_checked_when_loading() {
    let load = |rule: &str| {
        let yaml = format!(
            "defaultAdmissionRule:\n  evaluationMode: REQUIRE_ATTESTATION\n  enforcementMode: \
             ENFORCED_BLOCK_AND_AUDIT_LOG\n{rule}attestors:\n  - name: a\n    publicKeys: [{{file: \
             p256.pub}}]\n  - name: b\n    publicKeys: [{{file: other.pub}}]\n"
        );
        let path = keys_dir().join("inline-policy.yaml");
        signet_policy::parse(&yaml, &path, &keys_dir())
            .map(|_| String::new())
            .unwrap_or_else(|e| e.to_string())
    };
    assert_eq!(
        load("  requireAttestationsThreshold: [{count: 1, from: [a, b]}]\n"),
        ""
    );
    let e = load("  requireAttestationsThreshold: [{count: 3, from: [a, b]}]\n");
    assert!(
        e.contains("`count` 3 is more than the 2 attestor(s) in `from`"),
        "{e}"
    );
    let e = load("  requireAttestationsThreshold: [{count: 1, from: [a, c]}]\n");
    assert!(e.contains("requires undefined attestor `c`"), "{e}");
    let e = load("  requireAttestationsThreshold: [{count: 0, from: [a]}]\n");
    assert!(
        e.contains("`count` must be a whole number of at least 1"),
        "{e}"
    );
    let e = load("  requireAttestationsThreshold: [{count: 1, from: [a, a]}]\n");
    assert!(e.contains("listed twice"), "{e}");
}

fn time(text: &str) -> SystemTime {
    humantime::parse_rfc3339(text).unwrap()
}

/// The key id of `fixtures/keys/NAME.pub`.
fn key_of(name: &str) -> KeyId {
    let pem = std::fs::read_to_string(keys_dir().join(format!("{name}.pub"))).unwrap();
    signet_core::keys::PublicKey::from_pem(&pem)
        .unwrap()
        .id()
        .clone()
}

/// A signature by `fixtures/keys/p256.pub` carrying `times`.
fn signed_at(times: Vec<SignedTime>) -> Attested {
    Attested {
        key_id: key_of("p256"),
        times: SignedTimes {
            times,
            invalid: Vec::new(),
        },
        ..signature("s")
    }
}

fn asserted(text: &str) -> SignedTime {
    SignedTime {
        at: time(text),
        source: TimeSource::Asserted {
            field: "subject annotation dev.signet.signedAt".into(),
        },
    }
}

fn timestamped(text: &str) -> SignedTime {
    SignedTime {
        at: time(text),
        source: TimeSource::Timestamp {
            authority: "test TSA".into(),
        },
    }
}

fn one_attestor(attestor_extra: &str, key_extra: &str, top: &str) -> Policy {
    policy(&format!(
        r#"
defaultAdmissionRule:
  evaluationMode: REQUIRE_ATTESTATION
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
  requireAttestationsBy: [build]
attestors:
  - name: build
    publicKeys:
      - file: p256.pub
{key_extra}
{attestor_extra}
{top}
"#
    ))
}

fn decide(p: &Policy, proof: &Attested, now: &str) -> signet_policy::Decision {
    let img = image(
        "registry.corp/app@sha256:0000000000000000000000000000000000000000000000000000000000000000",
    );
    let entries = [("build", vec![proof.clone()])];
    p.evaluate_at(
        &img,
        Some(&digest()),
        &ctx(None, None, None),
        &evidence(&entries),
        time(now),
    )
}

#[test]
fn max_age_allows_fresh_and_denies_old_evidence() {
    let p = one_attestor("    maxAge: 7d", "", "");
    assert!(p.summary().contains("maxAge 7days"), "{}", p.summary());
    let proof = signed_at(vec![asserted("2026-12-01T00:00:00Z")]);
    let fresh = decide(&p, &proof, "2026-12-03T00:00:00Z");
    assert!(fresh.allowed(), "{:?}", fresh.reasons);
    assert_eq!(
        fresh.valid_until,
        Some(time("2026-12-08T00:00:00Z")),
        "the decision holds until the evidence is 7 days old"
    );
    let json = serde_json::to_value(&fresh).unwrap();
    assert_eq!(
        json["accepted"][0]["signedAt"]["time"],
        "2026-12-01T00:00:00Z"
    );
    assert_eq!(json["accepted"][0]["signedAt"]["trusted"], false);
    assert_eq!(json["validUntil"], "2026-12-08T00:00:00Z");

    let old = decide(&p, &proof, "2026-12-08T00:00:01Z");
    assert!(!old.allowed());
    let reason = old.reasons.join("\n");
    assert!(
        reason.contains("signed at 2026-12-01T00:00:00Z") && reason.contains("maxAge 7days"),
        "{reason}"
    );

    // No signed time at all: it cannot be shown to be fresh.
    let untimed = signed_at(Vec::new());
    let d = decide(&p, &untimed, "2026-12-03T00:00:00Z");
    assert!(!d.allowed());
    assert!(
        d.reasons.join("\n").contains("no signed time"),
        "{:?}",
        d.reasons
    );

    // A signer cannot keep evidence young by dating it in the future.
    let future = signed_at(vec![asserted("2027-01-01T00:00:00Z")]);
    let d = decide(&p, &future, "2026-12-03T00:00:00Z");
    assert!(!d.allowed());
    assert!(
        d.reasons.join("\n").contains("in the future"),
        "{:?}",
        d.reasons
    );

    // Without maxAge, time does not matter.
    let lax = one_attestor("", "", "");
    assert!(decide(&lax, &untimed, "2030-01-01T00:00:00Z").allowed());
}

#[test]
fn max_age_counts_from_the_trusted_time_unless_the_signer_admits_an_older_one() {
    let p = one_attestor("    maxAge: 12h", "", "");
    // The signer claims a fresh time, the timestamp authority says it is older: too old.
    let proof = signed_at(vec![
        asserted("2026-12-02T10:00:00Z"),
        timestamped("2026-12-01T00:00:00Z"),
    ]);
    let d = decide(&p, &proof, "2026-12-02T11:00:00Z");
    assert!(!d.allowed());
    assert!(
        d.reasons
            .join("\n")
            .contains("RFC 3161 timestamp by test TSA"),
        "{:?}",
        d.reasons
    );
}

#[test]
fn max_age_must_have_a_unit_and_be_positive() {
    for (bad, wanted) in [
        ("30", "duration with a unit"),
        ("\"0s\"", "positive duration"),
        ("1w", "positive duration"),
        ("7 d", "positive duration"),
        ("-1d", "positive duration"),
    ] {
        let yaml = format!(
            r#"
defaultAdmissionRule: {{evaluationMode: ALWAYS_ALLOW, enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG}}
attestors:
  - name: build
    publicKeys: [{{file: p256.pub}}]
    maxAge: {bad}
"#
        );
        let err = signet_policy::parse(&yaml, &keys_dir().join("p.yaml"), &keys_dir())
            .err()
            .unwrap_or_else(|| panic!("maxAge {bad} loaded"))
            .to_string();
        assert!(
            err.contains(wanted) && err.contains("maxAge"),
            "{bad}: {err}"
        );
    }
    for good in ["7d", "12h", "90m", "30s"] {
        one_attestor(&format!("    maxAge: {good}"), "", "");
    }
}

#[test]
fn key_windows_bound_when_a_key_may_sign() {
    let p = one_attestor(
        "",
        "        validFrom: 2026-01-01T00:00:00Z\n        validUntil: 2026-12-31T00:00:00Z",
        "",
    );
    assert!(
        p.summary()
            .contains("valid 2026-01-01T00:00:00Z to 2026-12-31T00:00:00Z"),
        "{}",
        p.summary()
    );
    let proof = signed_at(vec![asserted("2026-06-01T00:00:00Z")]);
    let d = decide(&p, &proof, "2026-06-02T00:00:00Z");
    assert!(d.allowed(), "{:?}", d.reasons);
    assert_eq!(d.valid_until, Some(time("2026-12-31T00:00:00Z")));
    // After validUntil, only a trusted time inside the window keeps it.
    let d = decide(&p, &proof, "2027-01-02T00:00:00Z");
    assert!(!d.allowed());
    assert!(
        d.reasons
            .join("\n")
            .contains("no trusted time shows it signed within its window"),
        "{:?}",
        d.reasons
    );
    let stamped = signed_at(vec![timestamped("2026-06-01T00:00:00Z")]);
    assert!(decide(&p, &stamped, "2027-01-02T00:00:00Z").allowed());
    let stamped_late = signed_at(vec![timestamped("2027-01-01T00:00:00Z")]);
    assert!(!decide(&p, &stamped_late, "2027-01-02T00:00:00Z").allowed());
    // The signer's own word that it signed before validFrom is believed.
    let early = signed_at(vec![asserted("2025-12-01T00:00:00Z")]);
    let d = decide(&p, &early, "2026-06-02T00:00:00Z");
    assert!(!d.allowed());
    assert!(
        d.reasons.join("\n").contains("but signed at 2025-12-01"),
        "{:?}",
        d.reasons
    );
    // Before validFrom, nothing counts.
    assert!(!decide(&p, &signed_at(Vec::new()), "2025-06-01T00:00:00Z").allowed());

    let err = signet_policy::parse(
        r#"
defaultAdmissionRule: {evaluationMode: ALWAYS_ALLOW, enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG}
attestors:
  - name: build
    publicKeys:
      - file: p256.pub
        validFrom: 2026-01-01T00:00:00Z
        validUntil: 2025-01-01T00:00:00Z
"#,
        &keys_dir().join("p.yaml"),
        &keys_dir(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("`validUntil` must be later than `validFrom`"),
        "{err}"
    );
    let err = signet_policy::parse(
        r#"
defaultAdmissionRule: {evaluationMode: ALWAYS_ALLOW, enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG}
attestors:
  - name: build
    publicKeys:
      - file: p256.pub
        validFrom: next tuesday
"#,
        &keys_dir().join("p.yaml"),
        &keys_dir(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("not an RFC 3339 time"), "{err}");
}

#[test]
fn revoked_keys_need_a_trusted_time_before_the_revocation() {
    let id = key_of("p256");
    let never = one_attestor(
        "",
        "",
        &format!("revokedKeys:\n  - keyId: {id}\n    reason: laptop stolen"),
    );
    assert!(
        never
            .summary()
            .contains(&format!("revoked keys: 1\n  {id}: laptop stolen")),
        "{}",
        never.summary()
    );
    let stamped = signed_at(vec![timestamped("2026-06-01T00:00:00Z")]);
    let d = decide(&never, &stamped, "2026-12-02T00:00:00Z");
    assert!(!d.allowed());
    let reason = d.reasons.join("\n");
    assert!(
        reason.contains(&format!("key {id} is revoked (laptop stolen)")),
        "{reason}"
    );

    let since = one_attestor(
        "",
        "",
        &format!(
            "revokedKeys:\n  - keyId: {id}\n    revokedAt: 2026-11-01T00:00:00Z\n    reason: \
             laptop stolen"
        ),
    );
    // A trusted time before the revocation: allowed.
    let d = decide(&since, &stamped, "2026-12-02T00:00:00Z");
    assert!(d.allowed(), "{:?}", d.reasons);
    // Signed (trusted) after it: denied.
    let late = signed_at(vec![timestamped("2026-11-02T00:00:00Z")]);
    let d = decide(&since, &late, "2026-12-02T00:00:00Z");
    assert!(!d.allowed());
    assert!(
        d.reasons.join("\n").contains("since 2026-11-01T00:00:00Z"),
        "{:?}",
        d.reasons
    );
    // Only the signer's word that it was before: denied, the thief could write that too.
    let claimed = signed_at(vec![asserted("2026-06-01T00:00:00Z")]);
    let d = decide(&since, &claimed, "2026-12-02T00:00:00Z");
    assert!(!d.allowed());
    assert!(
        d.reasons.join("\n").contains("no trusted time"),
        "{:?}",
        d.reasons
    );
    // Another key's revocation changes nothing.
    let other = one_attestor(
        "",
        "",
        &format!(
            "revokedKeys:\n  - keyId: {}\n    reason: other",
            key_of("other")
        ),
    );
    assert!(decide(&other, &claimed, "2026-12-02T00:00:00Z").allowed());

    for (entry, wanted) in [
        ("- keyId: nonsense\n    reason: x", "is not a key id"),
        (&format!("- keyId: {id}") as &str, "missing `reason`"),
        (
            &format!("- keyId: {id}\n    reason: x\n  - keyId: {id}\n    reason: y") as &str,
            "already revoked",
        ),
    ] {
        let yaml = format!(
            "defaultAdmissionRule: {{evaluationMode: ALWAYS_ALLOW, enforcementMode: \
             ENFORCED_BLOCK_AND_AUDIT_LOG}}\nrevokedKeys:\n  {entry}\n"
        );
        let err = signet_policy::parse(&yaml, &keys_dir().join("p.yaml"), &keys_dir())
            .err()
            .unwrap_or_else(|| panic!("{entry} loaded"))
            .to_string();
        assert!(err.contains(wanted), "{entry}: {err}");
    }
}
