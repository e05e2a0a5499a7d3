//! Issue 15, first part of continuous validation: `signet audit --pods` over what `kubectl get
//! pods -A -o json` prints, against the real registry: compliant, violating (after the policy
//! is tightened, or an attestation withdrawn) and error (registry down) are three outcomes.

use std::path::Path;

use crate::cli::{Run, signet};
use crate::harness::{Options, Registry};
use crate::images::push_image;

const PASSWORD: &str = "audit-e2e";

fn run(dir: &Path, args: &[&str]) -> Run {
    signet(dir, args, Some(PASSWORD))
}

fn pod(namespace: &str, name: &str, sa: &str, images: [&str; 3]) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "serviceAccountName": sa,
            "initContainers": [{"name": "setup", "image": images[0]}],
            "containers": [{"name": "app", "image": images[1]}],
            "ephemeralContainers": [{"name": "debug", "image": images[2]}]
        },
        "status": {"phase": "Running"}
    })
}

fn policy(dir: &Path, name: &str, payments_rule: &str) {
    std::fs::write(
        dir.join(name),
        format!(
            "defaultAdmissionRule:\n  evaluationMode: REQUIRE_ATTESTATION\n  enforcementMode: \
             ENFORCED_BLOCK_AND_AUDIT_LOG\n  requireAttestationsBy: [build]\n\
             kubernetesNamespaceAdmissionRules:\n  payments: {payments_rule}\nattestors:\n  - \
             name: build\n    publicKeys: [{{file: ci.pub}}]\n  - name: qa\n    publicKeys: \
             [{{file: qa.pub}}]\n"
        ),
    )
    .unwrap();
}

#[test]
fn audit_reports_compliant_violating_and_error_per_pod_and_image() {
    let registry = Registry::start(Options::plain());
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    for name in ["ci", "qa"] {
        run(dir, &["keygen", "--output-prefix", name]).expect_code(0);
    }
    let (app, _) = push_image(&registry, "shop/app", "v1", b"app");
    let (init, _) = push_image(&registry, "shop/init", "v1", b"init");
    let (debug, _) = push_image(&registry, "shop/debug", "v1", b"debug");
    for image in [&app, &init, &debug] {
        run(dir, &["sign", image, "--key", "ci.key"]).expect_code(0);
    }
    let list = serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            pod("shop", "web-1", "web", [&init, &app, &debug]),
            pod("payments", "pay-1", "payer", [&init, &app, &debug]),
        ],
        "metadata": {"resourceVersion": ""}
    });
    std::fs::write(dir.join("pods.json"), serde_json::to_vec(&list).unwrap()).unwrap();

    policy(
        dir,
        "policy.yaml",
        "{evaluationMode: REQUIRE_ATTESTATION, enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG, requireAttestationsBy: [build]}",
    );
    let all = run(
        dir,
        &["audit", "--policy", "policy.yaml", "--pods", "pods.json"],
    )
    .expect_code(0);
    assert!(
        all.stdout
            .contains("6 compliant, 0 violating, 0 error(s) in 2 pod(s)"),
        "{}",
        all.stdout
    );

    // Tightened: payments now also needs QA, which nobody gave.
    policy(
        dir,
        "tight.yaml",
        "{evaluationMode: REQUIRE_ATTESTATION, enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG, requireAttestationsBy: [build, qa]}",
    );
    let tight = run(
        dir,
        &[
            "audit",
            "--policy",
            "tight.yaml",
            "--pods",
            "pods.json",
            "--output",
            "json",
        ],
    )
    .expect_code(1);
    let json: serde_json::Value = serde_json::from_str(&tight.stdout).unwrap();
    assert_eq!(json["compliant"], 3, "{json}");
    assert_eq!(json["violating"], 3, "{json}");
    let violating: Vec<&serde_json::Value> = json["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["outcome"] == "violating")
        .collect();
    assert!(
        violating
            .iter()
            .all(|f| f["namespace"] == "payments" && f["pod"] == "pay-1")
    );
    let containers: Vec<&str> = violating
        .iter()
        .map(|f| f["container"].as_str().unwrap())
        .collect();
    assert_eq!(containers, ["init:setup", "app", "ephemeral:debug"]);
    assert!(
        violating[1]["reasons"].to_string().contains("attestor qa"),
        "{json}"
    );

    // A withdrawal makes what runs violate without any policy change.
    let tree = run(dir, &["tree", &app, "--output", "json"]).expect_code(0);
    let tree: serde_json::Value = serde_json::from_str(&tree.stdout).unwrap();
    let signature = tree["referrers"][0]["digest"].as_str().unwrap().to_string();
    run(
        dir,
        &[
            "withdraw",
            &app,
            "--attestation",
            &signature,
            "--key",
            "ci.key",
        ],
    )
    .expect_code(0);
    let withdrawn = run(
        dir,
        &["audit", "--policy", "policy.yaml", "--pods", "pods.json"],
    )
    .expect_code(1);
    assert!(
        withdrawn
            .stdout
            .contains(&format!("VIOLATING shop/web-1 app {app}")),
        "{}",
        withdrawn.stdout
    );

    // The registry down: error, not violating and not compliant.
    drop(registry);
    let down = run(
        dir,
        &[
            "audit",
            "--policy",
            "policy.yaml",
            "--pods",
            "pods.json",
            "--output",
            "json",
        ],
    )
    .expect_code(2);
    let json: serde_json::Value = serde_json::from_str(&down.stdout).unwrap();
    assert_eq!(json["error"], 6, "{json}");
    assert_eq!(json["compliant"], 0, "{json}");
    assert_eq!(json["violating"], 0, "{json}");

    // Not a pod list: a clear error.
    std::fs::write(
        dir.join("policy-as-pods.json"),
        b"{\"kind\": \"Deployment\"}",
    )
    .unwrap();
    let wrong = run(
        dir,
        &[
            "audit",
            "--policy",
            "policy.yaml",
            "--pods",
            "policy-as-pods.json",
        ],
    )
    .expect_code(2);
    assert!(
        wrong.stderr.contains("not a List of Pods"),
        "{}",
        wrong.stderr
    );
}
