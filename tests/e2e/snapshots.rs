//! Snapshots of what `signet verify` and `signet tree` print, text and JSON, so that a change
//! to that output is deliberate. Pinned before the typed-evidence refactor (issue 11) and kept
//! byte-for-byte across it.
//!
//! Digests of referrers change from run to run (their manifests carry a creation time), and the
//! registry's port changes too, so the output is normalised first: the registry address becomes
//! `REGISTRY`, and every SHA-256 digest (full or shortened) becomes `sha256:<N>`, numbered in
//! order of first appearance. Key ids come from the fixture keys and are numbered the same way.
//! Run with `UPDATE_SNAPSHOTS=1` to rewrite `tests/e2e/snapshots/*.txt`, then review the diff.

use std::collections::HashMap;
use std::path::Path;

use crate::cli::{Run, fixture, repo_root, signet};
use crate::harness::{Options, Registry};
use crate::images::push_image;

fn password() -> String {
    std::fs::read_to_string(fixture("keys/password.txt"))
        .unwrap()
        .trim_end_matches(['\r', '\n'])
        .to_string()
}

/// Replaces every RFC 3339 UTC time to the second (`2026-12-02T06:49:15Z`, the signing times
/// signet writes) by `<TIME>`.
fn normalise_times(text: &str) -> String {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:ddZ";
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let fits = bytes.len() - i >= SHAPE.len()
            && SHAPE.iter().zip(&bytes[i..]).all(|(want, got)| match want {
                b'd' => got.is_ascii_digit(),
                other => got == other,
            });
        if fits {
            out.push_str("<TIME>");
            i += SHAPE.len();
        } else {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Replaces the registry address, every signing time and every digest, full or short, by
/// stable placeholders.
fn normalise(text: &str, registry: &str) -> String {
    let text = normalise_times(&text.replace(registry, "REGISTRY"));
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find("sha256:") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "sha256:".len()..];
        let hex_len = after
            .bytes()
            .take_while(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            .count();
        if hex_len < 12 {
            out.push_str("sha256:");
            rest = after;
            continue;
        }
        // A short digest names the same thing as the full one it abbreviates.
        let key = after[..12].to_string();
        let next = names.len() + 1;
        let n = *names.entry(key).or_insert(next);
        let shape = if hex_len >= 64 { "" } else { "-short" };
        out.push_str(&format!("sha256:<{n}{shape}>"));
        rest = &after[hex_len..];
    }
    out.push_str(rest);
    out
}

/// Compares `got` with the snapshot `name`, or rewrites it under `UPDATE_SNAPSHOTS=1`.
fn check(name: &str, got: &str) {
    let path = repo_root().join("tests/e2e/snapshots").join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_SNAPSHOTS=1)", path.display()));
    assert_eq!(
        got,
        want,
        "output differs from {} (run with UPDATE_SNAPSHOTS=1 and review the diff)",
        path.display()
    );
}

/// The output of one run as the snapshot stores it: exit code, stdout, stderr.
fn shown(run: &Run, registry: &str) -> String {
    normalise(
        &format!(
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            run.code, run.stdout, run.stderr
        ),
        registry,
    )
}

const POLICY: &str = r#"registryAllowlist: ["127.0.0.1:*/**"]
defaultAdmissionRule:
  evaluationMode: REQUIRE_ATTESTATION
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
  requireAttestationsBy: [build, qa]
kubernetesNamespaceAdmissionRules:
  trial:
    evaluationMode: REQUIRE_ATTESTATION
    enforcementMode: DRYRUN_AUDIT_LOG_ONLY
    requireAttestationsBy: [build, qa]
  scanned:
    evaluationMode: REQUIRE_ATTESTATION
    enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
    requireAttestationsBy: [build, vuln]
attestors:
  - name: build
    publicKeys: [{file: p256.pub}]
  - name: qa
    publicKeys: [{file: other.pub}]
  - name: vuln
    publicKeys: [{file: other.pub}]
    predicateType: https://cosign.sigstore.dev/attestation/vuln/v1
    conditions:
      - "!statement.predicate.scanner.result.exists(f, f.severity == 'CRITICAL')"
"#;

fn copy_keys(dir: &Path) {
    for name in ["p256.key", "p256.pub", "other.key", "other.pub"] {
        std::fs::copy(fixture(&format!("keys/{name}")), dir.join(name)).unwrap();
    }
    std::fs::write(dir.join("policy.yaml"), POLICY).unwrap();
}

#[test]
fn verify_and_tree_output_matches_snapshots() {
    let registry = Registry::start(Options::plain());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    copy_keys(d);
    let pw = password();
    let run = |args: &[&str]| signet(d, args, Some(&pw));
    let host = registry.host();

    // Signed by `build` (bundle) and `qa` (legacy .sig), with a vulnerability attestation by
    // `qa`'s key that has a CRITICAL finding: allowed by default, denied where `vuln` is needed.
    let (image, _) = push_image(&registry, "snap/app", "v1", b"snapshot image");
    run(&["sign", &image, "--key", "p256.key"]).expect_code(0);
    run(&["sign", &image, "--key", "other.key", "--format", "legacy"]).expect_code(0);
    let vuln = d.join("vuln.json");
    std::fs::write(
        &vuln,
        r#"{"scanner":{"uri":"scan","result":[{"id":"CVE-1","severity":"CRITICAL"}]}}"#,
    )
    .unwrap();
    run(&[
        "attest",
        &image,
        "--key",
        "other.key",
        "--predicate",
        "vuln.json",
        "--type",
        "vuln",
        "--format",
        "legacy",
    ])
    .expect_code(0);
    // Signed only by `build`: denied by the default rule, would-deny in dry run.
    let (half, _) = push_image(&registry, "snap/app", "half", b"half signed");
    run(&["sign", &half, "--key", "p256.key"]).expect_code(0);

    let mut cases: Vec<(&str, Vec<&str>)> = Vec::new();
    for output in ["text", "json"] {
        cases.push(("key-mixed", vec!["verify", &image, "--key", "p256.pub"]));
        cases.push(("key-denied", vec!["verify", &half, "--key", "other.pub"]));
        cases.push((
            "policy-allowed",
            vec!["verify", &image, "--policy", "policy.yaml"],
        ));
        cases.push((
            "policy-denied",
            vec!["verify", &half, "--policy", "policy.yaml"],
        ));
        cases.push((
            "policy-dryrun",
            vec![
                "verify",
                &half,
                "--policy",
                "policy.yaml",
                "--namespace",
                "trial",
            ],
        ));
        cases.push((
            "policy-condition",
            vec![
                "verify",
                &image,
                "--policy",
                "policy.yaml",
                "--namespace",
                "scanned",
            ],
        ));
        cases.push(("tree", vec!["tree", &image]));
        for (_, args) in cases.iter_mut() {
            if !args.is_empty() && !args.contains(&"--output") {
                args.extend(["--output", output]);
            }
        }
        for (name, args) in cases.drain(..) {
            let got = run(&args);
            check(&format!("{name}.{output}.txt"), &shown(&got, &host));
        }
    }
}
