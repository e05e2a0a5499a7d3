//! Multi-platform images in the real registry: `sign --recursive`, a platform manifest covered
//! by its index through the tag it is pinned with, the `everyPlatform` rule, and the tree of an
//! index — through the CLI and the daemon.

use std::path::Path;

use crate::cli::{Run, repo_root, signet};
use crate::harness::{Options, Registry};
use crate::serve::{Daemon, fixture, response, with_images};

const PASSWORD: &str = "platforms-e2e";

fn run(dir: &Path, args: &[&str]) -> Run {
    signet(dir, args, Some(PASSWORD))
}

/// `shop/multi:v1`..`v3`, two-platform images made by scripts/make-layout.sh, pushed to the
/// registry; returns (index digest, [platform digests]) for each.
fn push_indexes(registry: &Registry, dir: &Path) -> Vec<(String, Vec<String>)> {
    let status = std::process::Command::new("bash")
        .arg(repo_root().join("scripts/make-layout.sh"))
        .arg(dir.join("layout"))
        .args(["shop/multi:v1", "shop/multi:v2", "shop/multi:v3"])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let mut out = Vec::new();
    for tag in ["v1", "v2", "v3"] {
        let source = format!("oci:{}:shop/multi:{tag}", dir.join("layout").display());
        let destination = format!("{}/shop/multi:{tag}", registry.host());
        run(dir, &["mirror", "--quiet", &source, &destination]).expect_code(0);
        let tree = run(dir, &["tree", &destination, "--output", "json"]).expect_code(0);
        let tree: serde_json::Value = serde_json::from_str(&tree.stdout).unwrap();
        let platforms: Vec<String> = tree["platforms"]
            .as_array()
            .unwrap_or_else(|| panic!("no platforms in {tree}"))
            .iter()
            .map(|p| p["digest"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(platforms.len(), 2, "{tree}");
        out.push((tree["digest"].as_str().unwrap().to_string(), platforms));
    }
    out
}

fn policy(dir: &Path, name: &str, registry: &Registry, multi: &str) {
    std::fs::write(
        dir.join(name),
        format!(
            "registryAllowlist: ['{}/**']\ndefaultAdmissionRule:\n  evaluationMode: \
             REQUIRE_ATTESTATION\n  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG\n  \
             requireAttestationsBy: [ci]\nattestors:\n  - name: ci\n    publicKeys: [{{file: \
             ci.pub}}]\n{multi}",
            registry.host()
        ),
    )
    .unwrap();
}

#[test]
fn index_evidence_covers_listed_platforms_and_every_platform_rule() {
    let registry = Registry::start(Options::plain());
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    run(dir, &["keygen", "--output-prefix", "ci"]).expect_code(0);
    let images = push_indexes(&registry, dir);
    let host = registry.host();
    let (v1_index, v1_platforms) = &images[0];
    let (v2_index, v2_platforms) = &images[1];
    let (_, v3_platforms) = &images[2];

    // sign --recursive: the index and both platform manifests, three digests.
    let v1 = format!("{host}/shop/multi:v1");
    let signed = run(dir, &["sign", &v1, "--key", "ci.key", "--recursive"]).expect_code(0);
    assert_eq!(signed.stdout.lines().count(), 3, "{}", signed.stdout);
    for digest in std::iter::once(v1_index).chain(v1_platforms) {
        assert!(
            signed.stderr.contains(digest.as_str()),
            "{digest}: {}",
            signed.stderr
        );
    }
    let tree = run(dir, &["tree", &v1]).expect_code(0);
    assert_eq!(
        tree.stdout
            .matches("application/vnd.dev.sigstore.bundle")
            .count(),
        3,
        "{}",
        tree.stdout
    );
    assert!(
        tree.stdout.contains("platform linux/amd64 sha256:"),
        "{}",
        tree.stdout
    );
    assert!(
        tree.stdout.contains("platform linux/arm64"),
        "{}",
        tree.stdout
    );

    // v2: only the index is signed.
    let v2 = format!("{host}/shop/multi:v2");
    run(dir, &["sign", &v2, "--key", "ci.key"]).expect_code(0);
    policy(dir, "index.yaml", &registry, "");
    policy(
        dir,
        "every.yaml",
        &registry,
        "multiPlatform:\n  requireEvidenceOn: everyPlatform\n",
    );
    policy(
        dir,
        "strict.yaml",
        &registry,
        "multiPlatform:\n  indexEvidenceCoversPlatforms: false\n",
    );
    let summary = run(dir, &["policy", "check", "every.yaml"]).expect_code(0);
    assert!(
        summary
            .stdout
            .contains("multi-platform: evidence on everyPlatform"),
        "{}",
        summary.stdout
    );

    // A platform digest pinned with its tag is covered by the index, and says so.
    let with_tag = format!("{host}/shop/multi:v2@{}", v2_platforms[0]);
    let allowed = run(
        dir,
        &[
            "verify",
            &with_tag,
            "--policy",
            "index.yaml",
            "--output",
            "json",
        ],
    )
    .expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&allowed.stdout).unwrap();
    assert_eq!(json["throughIndex"], v2_index.as_str(), "{json}");
    assert_eq!(json["digest"], v2_platforms[0].as_str(), "{json}");
    assert_eq!(json["accepted"][0]["digest"], v2_index.as_str(), "{json}");
    // Not when the policy turns it off.
    run(dir, &["verify", &with_tag, "--policy", "strict.yaml"]).expect_code(1);

    // Without the tag, and with no evidence of its own: denied, saying how to fix it.
    let bare = format!("{host}/shop/multi@{}", v2_platforms[0]);
    let denied = run(dir, &["verify", &bare, "--policy", "index.yaml"]).expect_code(1);
    assert!(
        denied.stdout.contains("pin it with the tag of its index")
            && denied.stdout.contains("signet sign --recursive"),
        "{}",
        denied.stdout
    );

    // The index given explicitly instead: the same, and it must list the digest too.
    let via = run(
        dir,
        &[
            "verify",
            &bare,
            "--policy",
            "index.yaml",
            "--index",
            v2_index,
        ],
    )
    .expect_code(0);
    assert!(
        via.stdout.contains("allowed through the index"),
        "{}",
        via.stdout
    );
    let other = format!("{host}/shop/multi@{}", v3_platforms[1]);
    let denied = run(
        dir,
        &[
            "verify",
            &other,
            "--policy",
            "index.yaml",
            "--index",
            v2_index,
        ],
    )
    .expect_code(1);
    assert!(
        denied.stdout.contains("the index given names the index"),
        "{}",
        denied.stdout
    );

    // Regression: a digest the index does not list is never covered, whatever the tag.
    let unlisted = format!("{host}/shop/multi:v2@{}", v3_platforms[0]);
    let denied = run(dir, &["verify", &unlisted, "--policy", "index.yaml"]).expect_code(1);
    assert!(
        denied
            .stdout
            .contains(&format!("which does not list {}", v3_platforms[0])),
        "{}",
        denied.stdout
    );

    // The index itself: allowed under the index rule; under everyPlatform denied while its
    // platforms are unsigned, naming them; v1 (signed recursively) allowed under both.
    run(dir, &["verify", &v2, "--policy", "index.yaml"]).expect_code(0);
    let denied = run(dir, &["verify", &v2, "--policy", "every.yaml"]).expect_code(1);
    assert!(
        denied
            .stdout
            .contains("every platform manifest of the index must be attested; 2 of them are not")
            && denied.stdout.contains("platform linux/amd64 ("),
        "{}",
        denied.stdout
    );
    run(dir, &["verify", &v1, "--policy", "every.yaml"]).expect_code(0);
    policy(
        dir,
        "amd64.yaml",
        &registry,
        "multiPlatform:\n  requireEvidenceOn: everyPlatform\n  platforms: [linux/amd64, linux/s390x]\n",
    );
    let denied = run(dir, &["verify", &v1, "--policy", "amd64.yaml"]).expect_code(1);
    assert!(
        denied.stdout.contains("has no linux/s390x manifest"),
        "{}",
        denied.stdout
    );

    // The daemon: a pod pinned to the platform digest with the tag (what the mutating webhook
    // writes) is admitted through the index; the unlisted one is not.
    let daemon = Daemon::start(dir, &dir.join("index.yaml"), &[]);
    let review = daemon.post(
        "/admission/validate",
        &with_images(fixture("pod.json"), &with_tag),
    );
    assert_eq!(response(&review)["allowed"], true, "{review}");
    let review = daemon.post(
        "/admission/validate",
        &with_images(fixture("pod.json"), &unlisted),
    );
    assert_eq!(response(&review)["allowed"], false, "{review}");
    let decision = daemon.post("/v1/verify", &serde_json::json!({"image": with_tag}));
    assert_eq!(decision["throughIndex"], v2_index.as_str(), "{decision}");
}
