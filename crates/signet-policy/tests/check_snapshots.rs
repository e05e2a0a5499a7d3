//! Snapshots of what `signet policy check` prints for broken policies.
//!
//! Each `fixtures/policies/broken/NN-what.yaml` is loaded and its errors rendered as the CLI
//! prints them (`PolicyErrors`' `Display`), with the file shown relative to the repository
//! root, then compared with `NN-what.expected` next to it. Run with `UPDATE_SNAPSHOTS=1` to
//! rewrite the `.expected` files, then review the diff: every line must name the file, line and
//! column, and say what is wrong in words a user can act on.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers of tests: a failing test should stop loudly"
)]

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The errors for `policy` as `signet policy check` prints them, paths relative to `root`.
fn render(root: &Path, policy: &Path) -> String {
    match signet_policy::load(policy) {
        Ok(_) => panic!("{} loaded, but it is meant to be broken", policy.display()),
        Err(mut errors) => {
            for error in &mut errors.0 {
                if let Ok(relative) = error.file.strip_prefix(root) {
                    error.file = relative.to_path_buf();
                }
            }
            format!("{errors}\n")
        }
    }
}

#[test]
fn broken_policies_match_their_snapshots() {
    let root = repo_root();
    let dir = root.join("fixtures/policies/broken");
    let mut policies: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    policies.sort();
    assert!(policies.len() >= 10, "{} broken policies", policies.len());

    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for policy in &policies {
        let got = render(&root, policy);
        let relative = policy.strip_prefix(&root).unwrap();
        let prefix = format!("{}:", relative.display());
        for line in got.lines() {
            // FILE:LINE:COL: message, with a line and column from 1.
            let position = line.strip_prefix(&prefix).and_then(|rest| {
                let mut parts = rest.splitn(3, ':');
                let line: usize = parts.next()?.parse().ok()?;
                let column: usize = parts.next()?.parse().ok()?;
                let message = parts.next()?;
                (line >= 1 && column >= 1 && message.starts_with(' ') && message.len() > 10)
                    .then_some(())
            });
            assert!(position.is_some(), "not FILE:LINE:COL: message: {line}");
        }

        let expected_path = policy.with_extension("expected");
        if update {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == got => {}
            Ok(expected) => failures.push(format!(
                "{}:\n--- expected\n{expected}+++ got\n{got}",
                relative.display()
            )),
            Err(e) => failures.push(format!(
                "{}: {e}; run with UPDATE_SNAPSHOTS=1 to create it\n{got}",
                expected_path.display()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "snapshots differ (UPDATE_SNAPSHOTS=1 rewrites them):\n\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_snapshot_has_its_policy() {
    let dir = repo_root().join("fixtures/policies/broken");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "expected") {
            assert!(
                path.with_extension("yaml").exists(),
                "{} has no policy",
                path.display()
            );
        }
    }
}
