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

fn json_run(dir: &Path, args: &[&str], code: i32) -> serde_json::Value {
    let out = run(dir, args).expect_code(code);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

/// `signet audit` asks the registry the same whether one pod or sixty run an image: each tag is
/// resolved once and each digest's evidence fetched once per run, then the policy is evaluated
/// per rule from that same evidence.
#[test]
fn audit_verifies_each_digest_once_however_many_pods_run_it() {
    let registry = Registry::start(Options::plain());
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    run(dir, &["keygen", "--output-prefix", "ci"]).expect_code(0);
    std::fs::write(
        dir.join("policy.yaml"),
        "defaultAdmissionRule:\n  evaluationMode: REQUIRE_ATTESTATION\n  enforcementMode: \
         ENFORCED_BLOCK_AND_AUDIT_LOG\n  requireAttestationsBy: [build]\n\
         kubernetesNamespaceAdmissionRules:\n  tools: {evaluationMode: ALWAYS_ALLOW, \
         enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG}\n\
         kubernetesServiceAccountAdmissionRules:\n  'ns-1:deployer': {evaluationMode: \
         REQUIRE_ATTESTATION, enforcementMode: DRYRUN_AUDIT_LOG_ONLY, requireAttestationsBy: \
         [build]}\nattestors:\n  - name: build\n    publicKeys: [{file: ci.pub}]\n",
    )
    .unwrap();
    let mut images = Vec::new();
    for name in ["app", "sidecar", "init"] {
        let (tag, digest) = push_image(&registry, &format!("shop/{name}"), "v1", name.as_bytes());
        run(dir, &["sign", &tag, "--key", "ci.key"]).expect_code(0);
        let pinned = format!("{}/shop/{name}@{digest}", registry.host());
        images.push((tag, pinned));
    }
    let pods = |count: usize, which: &[usize]| {
        let items: Vec<serde_json::Value> = (0..count)
            .map(|i| {
                let ns = ["ns-0", "ns-1", "ns-2", "tools", "ns-4"][i % 5];
                let sa = ["default", "deployer", "web"][i % 3];
                // By tag in some pods, by digest in others: one digest either way.
                let image = |k: usize| {
                    let (tag, pinned) = &images[which[k % which.len()]];
                    if i % 2 == 0 {
                        tag.clone()
                    } else {
                        pinned.clone()
                    }
                };
                pod(ns, &format!("p-{i}"), sa, [&image(2), &image(0), &image(1)])
            })
            .chain(std::iter::once(serde_json::json!({
                "metadata": {"name": "done", "namespace": "ns-0"},
                "spec": {"containers": [{"name": "c", "image": "127.0.0.1:1/gone:v1"}]},
                "status": {"phase": "Succeeded"}
            })))
            .collect();
        serde_json::to_vec(&serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}))
            .unwrap()
    };
    let audit = |file: &str| {
        json_run(
            dir,
            &[
                "audit",
                "--policy",
                "policy.yaml",
                "--pods",
                file,
                "--output",
                "json",
            ],
            0,
        )
    };

    // One image: one pod (by tag) against sixty in five namespaces and three service accounts
    // under three rules, by tag and by digest.
    std::fs::write(dir.join("one.json"), pods(1, &[0])).unwrap();
    std::fs::write(dir.join("sixty.json"), pods(60, &[0])).unwrap();
    let one = audit("one.json");
    let sixty = audit("sixty.json");
    assert_eq!(one["compliant"], 3, "{one:#}");
    assert_eq!(sixty["compliant"], 180, "{sixty:#}");
    assert_eq!(
        (&one["finishedPods"], &sixty["pods"]),
        (&1.into(), &61.into())
    );
    assert_eq!(one["digestsVerified"], 1);
    assert_eq!(sixty["digestsVerified"], 1);
    let requests = one["registryRequests"].as_u64().unwrap();
    assert!(requests > 0, "{one:#}");
    assert_eq!(
        sixty["registryRequests"].as_u64().unwrap(),
        requests,
        "{sixty:#}"
    );

    // Three images: each verified once, at most what three single-image runs would cost.
    std::fs::write(dir.join("three.json"), pods(60, &[0, 1, 2])).unwrap();
    let three = audit("three.json");
    assert_eq!(three["compliant"], 180, "{three:#}");
    assert_eq!(three["digestsVerified"], 3, "{three:#}");
    assert!(
        three["registryRequests"].as_u64().unwrap() <= 3 * requests,
        "{three:#}"
    );
    // The dry-run rule of ns-1:deployer applied (it allows: signed), the tools namespace's
    // ALWAYS_ALLOW needed no registry at all.
    let rules: std::collections::BTreeSet<&str> = three["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        ["default", "namespace tools", "serviceAccount ns-1:deployer"]
            .into_iter()
            .collect()
    );
}

/// A metric sample from a `/metrics` page: `name{labels} value`.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Polls `check` until it gives a value, for at most `seconds`; never one long sleep.
fn eventually<T>(seconds: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not within {seconds}s: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn audit_lines(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &serde_json::Value| e["event"] == "continuous-validation")
        .collect()
}

/// Issue 15 acceptance: the daemon with `--continuous-validation` on a short interval reports
/// what runs as compliant, then, after a withdrawal and without a restart, writes the
/// violation's audit line and moves the gauge; with the registry gone, `error`. The admission
/// caches are set to live ten minutes, so only reading the registry afresh on each run can
/// see the withdrawal in time.
#[test]
fn continuous_validation_in_the_daemon_sees_a_withdrawal_without_a_restart() {
    let registry = Registry::start(Options::plain());
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    run(dir, &["keygen", "--output-prefix", "ci"]).expect_code(0);
    let (app, app_digest) = push_image(&registry, "shop/app", "v1", b"app");
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
    });
    std::fs::write(dir.join("pods.json"), serde_json::to_vec(&list).unwrap()).unwrap();
    let policy = dir.join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "registryAllowlist: [\"{}/**\"]\ndefaultAdmissionRule:\n  evaluationMode: \
             REQUIRE_ATTESTATION\n  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG\n  \
             requireAttestationsBy: [build]\nattestors:\n  - name: build\n    publicKeys: \
             [{{file: ci.pub}}]\n",
            registry.host()
        ),
    )
    .unwrap();
    let daemon = crate::serve::Daemon::start(
        dir,
        &policy,
        &[
            "--continuous-validation",
            "500ms",
            "--pods",
            "pods.json",
            "--cache-evidence-ttl",
            "600",
            "--cache-tag-ttl",
            "600",
            "--cache-allow-ttl",
            "600",
        ],
    );
    let compliant = r#"signet_running_images{outcome="compliant"}"#;
    let violating = r#"signet_running_images{outcome="violating"}"#;
    let error = r#"signet_running_images{outcome="error"}"#;
    let metrics = eventually(30, "all six images compliant", || {
        let m = daemon.metrics();
        (sample(&m, compliant) == Some(6.0)).then_some(m)
    });
    assert_eq!(sample(&metrics, violating), Some(0.0));
    assert_eq!(
        sample(&metrics, "signet_continuous_validation_last_run_digests"),
        Some(3.0),
        "six containers, three digests, each verified once per run"
    );
    assert!(audit_lines(dir).is_empty(), "{:?}", audit_lines(dir));
    // Admission goes on beside it, through its caches: the signed image is admitted.
    let admitted = daemon.post(
        "/admission/validate",
        &crate::serve::with_images(
            crate::serve::fixture("pod.json"),
            &format!("{}/shop/app@{app_digest}", registry.host()),
        ),
    );
    assert_eq!(
        crate::serve::response(&admitted)["allowed"],
        true,
        "{admitted}"
    );

    // CI withdraws its signature of the app image; the daemon keeps running.
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
            "--reason",
            "CVE-2026-0001",
        ],
    )
    .expect_code(0);
    let line = eventually(30, "the violation's audit line", || {
        audit_lines(dir)
            .into_iter()
            .find(|e| e["namespace"] == "shop" && e["container"] == "app")
    });
    assert_eq!(line["outcome"], "violating", "{line}");
    assert_eq!(line["object"], "Pod/web-1", "{line}");
    assert_eq!(line["serviceAccount"], "web", "{line}");
    assert_eq!(line["images"], serde_json::json!([app]), "{line}");
    assert_eq!(line["rule"], "default", "{line}");
    assert!(
        line["digests"][0].as_str().unwrap().starts_with("sha256:"),
        "{line}"
    );
    let reasons = line["reasons"].to_string();
    assert!(
        reasons.contains("withdrawn") && reasons.contains("CVE-2026-0001"),
        "{line}"
    );
    let run_number = line["run"].as_u64().unwrap();
    // The same run has the other pod's line, and nothing for the images still signed.
    let of_run: Vec<serde_json::Value> = eventually(10, "both pods' lines of one run", || {
        let lines: Vec<serde_json::Value> = audit_lines(dir)
            .into_iter()
            .filter(|e| e["run"] == run_number)
            .collect();
        (lines.len() == 2).then_some(lines)
    });
    assert!(
        of_run
            .iter()
            .all(|e| e["images"] == serde_json::json!([app])),
        "{of_run:?}"
    );
    eventually(30, "the gauges: 2 violating, 4 compliant", || {
        let m = daemon.metrics();
        (sample(&m, violating) == Some(2.0) && sample(&m, compliant) == Some(4.0)).then_some(())
    });

    // The registry gone: error, neither violating nor compliant.
    drop(registry);
    eventually(30, "all six images in error", || {
        let m = daemon.metrics();
        (sample(&m, error) == Some(6.0) && sample(&m, violating) == Some(0.0)).then_some(())
    });
    let errors: Vec<serde_json::Value> = audit_lines(dir)
        .into_iter()
        .filter(|e| e["outcome"] == "error")
        .collect();
    assert!(errors.len() >= 6, "{errors:?}");
    assert!(
        errors.iter().all(|e| !e["reasons"].to_string().is_empty()),
        "{errors:?}"
    );
}
