//! Helpers to run the real `signet` binary in a temporary directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `signet` binary cargo built for this test run.
pub(crate) fn signet_bin() -> &'static str {
    env!("CARGO_BIN_EXE_signet")
}

/// The repository root.
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A file under `fixtures/`.
pub(crate) fn fixture(rel: &str) -> PathBuf {
    repo_root().join("fixtures").join(rel)
}

/// The result of one `signet` run.
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Everything the process printed.
    pub(crate) fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub(crate) fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "exit code {} (expected {code})\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

/// Runs `signet ARGS` in `dir` with a clean environment for passwords and no terminal.
pub(crate) fn signet(dir: &Path, args: &[&str], password: Option<&str>) -> Run {
    let mut cmd = Command::new(signet_bin());
    cmd.args(args)
        .current_dir(dir)
        .env_remove("SIGNET_PASSWORD")
        .env_remove("COSIGN_PASSWORD")
        .stdin(Stdio::null());
    if let Some(pw) = password {
        cmd.env("SIGNET_PASSWORD", pw);
    }
    Run::from(cmd.output().expect("running signet"))
}

/// The Python interpreter with PyNaCl and cryptography (made by `scripts/python-env.sh`).
pub(crate) fn python() -> PathBuf {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/python-env.sh"))
        .output()
        .expect("running scripts/python-env.sh");
    assert!(
        out.status.success(),
        "scripts/python-env.sh failed (run scripts/setup-tests.sh):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// `signet completion SHELL` prints a script each shell takes, and `signet man` writes a page
/// per command, rendered from the same definition as `--help`.
#[test]
fn completion_scripts_and_manual_pages_come_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (shell, marker) in [
        ("bash", "complete -F _signet"),
        ("zsh", "#compdef signet"),
        ("fish", "complete -c signet"),
    ] {
        let run = signet(d, &["completion", shell], None).expect_code(0);
        assert!(
            run.stdout.contains(marker),
            "{shell}: {}",
            &run.stdout[..200.min(run.stdout.len())]
        );
        assert!(run.stdout.contains("verify"), "{shell}");
    }
    let run = signet(d, &["man", "--output-dir", "pages"], None).expect_code(0);
    assert!(run.stdout.contains("signet-verify.1"), "{}", run.stdout);
    let page = std::fs::read_to_string(d.join("pages/signet-verify.1")).unwrap();
    assert!(page.contains(".TH signet-verify 1"), "{page}");
    assert!(page.contains("\\-\\-policy"), "{page}");
    assert!(
        std::fs::read_to_string(d.join("pages/signet.1"))
            .unwrap()
            .contains("signet\\-mirror")
    );
}
