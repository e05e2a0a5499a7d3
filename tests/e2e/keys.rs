//! Key compatibility through the real binary: keys signet writes decrypt with an independent
//! implementation (Python: PyNaCl + cryptography), keys that implementation writes sign with
//! signet, and bad input gets a precise error and exit code 2.

use std::process::Command;

use crate::cli::{fixture, python, repo_root, signet};

const FIXTURE_PASSWORD: &str = "signet-fixture-password";

#[test]
fn keygen_output_decrypts_with_pynacl_and_matches_the_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let run = signet(
        dir.path(),
        &["keygen", "--output-prefix", "k"],
        Some("s3cret pw"),
    )
    .expect_code(0);
    let key_id = run.stdout.trim().to_string();
    assert!(key_id.starts_with("sha256:"), "{key_id}");

    let out = Command::new(python())
        .arg(repo_root().join("tests/compat/cosign_key.py"))
        .args([dir.path().join("k.key"), dir.path().join("k.pub")])
        .arg("s3cret pw")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "independent check failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Same key id computed on both sides.
    assert_eq!(stdout.trim(), key_id);

    // The private key file is readable by its owner only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("k.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn keys_written_by_python_sign_with_signet() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.txt"), b"artifact").unwrap();
    let key = fixture("keys/p256.key");
    let public = fixture("keys/p256.pub");
    signet(
        dir.path(),
        &["sign-blob", "f.txt", "--key", key.to_str().unwrap()],
        Some(FIXTURE_PASSWORD),
    )
    .expect_code(0);
    let run = signet(
        dir.path(),
        &["verify-blob", "f.txt", "--key", public.to_str().unwrap()],
        None,
    )
    .expect_code(0);
    assert!(run.stdout.starts_with("Verified OK"), "{}", run.stdout);
}

#[test]
fn cosign_password_variable_is_honoured_after_signet_password() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.txt"), b"artifact").unwrap();
    let key = fixture("keys/p256.key");
    let status = Command::new(crate::cli::signet_bin())
        .args(["sign-blob", "f.txt", "--key", key.to_str().unwrap()])
        .current_dir(dir.path())
        .env_remove("SIGNET_PASSWORD")
        .env("COSIGN_PASSWORD", FIXTURE_PASSWORD)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
}

#[test]
fn no_password_and_no_terminal_says_how_to_give_one() {
    let dir = tempfile::tempdir().unwrap();
    let run = signet(dir.path(), &["keygen"], None).expect_code(2);
    assert!(run.stderr.contains("SIGNET_PASSWORD"), "{}", run.stderr);
    assert!(!dir.path().join("signet.key").exists());
}

#[test]
fn keygen_never_overwrites_an_existing_key() {
    let dir = tempfile::tempdir().unwrap();
    signet(dir.path(), &["keygen", "--output-prefix", "k"], Some("a")).expect_code(0);
    let before = std::fs::read(dir.path().join("k.key")).unwrap();
    let run = signet(dir.path(), &["keygen", "--output-prefix", "k"], Some("b")).expect_code(2);
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);
    assert_eq!(std::fs::read(dir.path().join("k.key")).unwrap(), before);
}

/// Issue 19, finding 6: keygen never writes through a symlink, and a key file is 0600 whatever
/// was there before.
#[test]
fn keygen_follows_no_links_and_sets_the_key_mode() {
    use std::os::unix::fs::{PermissionsExt as _, symlink};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A dangling link where the private key would go: refused, its target never created.
    symlink(d.join("stolen.key"), d.join("k.key")).unwrap();
    let run = signet(d, &["keygen", "--output-prefix", "k"], Some("a")).expect_code(2);
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);
    assert!(!d.join("stolen.key").exists());

    // With --force: a 0666 key becomes a new 0600 file; a link at the public key is replaced
    // by a file, its target left alone.
    std::fs::remove_file(d.join("k.key")).unwrap();
    std::fs::write(d.join("k.key"), b"old").unwrap();
    std::fs::set_permissions(d.join("k.key"), std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::write(d.join("precious.txt"), b"keep me").unwrap();
    symlink(d.join("precious.txt"), d.join("k.pub")).unwrap();
    signet(d, &["keygen", "--output-prefix", "k", "--force"], Some("a")).expect_code(0);
    let key = std::fs::symlink_metadata(d.join("k.key")).unwrap();
    assert!(key.file_type().is_file());
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    let public = std::fs::symlink_metadata(d.join("k.pub")).unwrap();
    assert!(public.file_type().is_file(), "k.pub is still a link");
    assert_eq!(std::fs::read(d.join("precious.txt")).unwrap(), b"keep me");
    assert!(
        std::fs::read_to_string(d.join("k.pub"))
            .unwrap()
            .contains("PUBLIC KEY")
    );
}

#[test]
fn bad_keys_give_precise_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.txt"), b"artifact").unwrap();
    std::fs::write(dir.path().join("garbage.key"), b"hello\n").unwrap();
    let cases = [
        (
            "keys/p256.key",
            "wrong",
            "wrong password for the encrypted private key",
        ),
        (
            "keys/truncated.key",
            FIXTURE_PASSWORD,
            "truncated ciphertext",
        ),
        (
            "keys/p256.pub",
            FIXTURE_PASSWORD,
            "expected an encrypted private key, found a public key",
        ),
        (
            "keys/p384.key",
            FIXTURE_PASSWORD,
            "unsupported elliptic curve P-384",
        ),
        (
            "keys/scrypt-n20.key",
            FIXTURE_PASSWORD,
            "unsupported scrypt parameters N=1048576",
        ),
    ];
    for (key, password, message) in cases {
        let key = fixture(key);
        let run = signet(
            dir.path(),
            &["sign-blob", "f.txt", "--key", key.to_str().unwrap()],
            Some(password),
        )
        .expect_code(2);
        assert!(run.stderr.contains(message), "{key:?}: {}", run.stderr);
        // The password never shows up in what signet prints.
        assert!(
            password.len() < 6 || !run.all().contains(password),
            "{}",
            run.all()
        );
    }
    let run = signet(
        dir.path(),
        &["sign-blob", "f.txt", "--key", "garbage.key"],
        Some("x"),
    )
    .expect_code(2);
    assert!(run.stderr.contains("malformed PEM"), "{}", run.stderr);
}

#[test]
fn verify_blob_denies_other_key_and_edited_file_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.txt"), b"artifact").unwrap();
    let key = fixture("keys/p256.key");
    signet(
        dir.path(),
        &["sign-blob", "f.txt", "--key", key.to_str().unwrap()],
        Some(FIXTURE_PASSWORD),
    )
    .expect_code(0);
    let other = fixture("keys/other.pub");
    let run = signet(
        dir.path(),
        &["verify-blob", "f.txt", "--key", other.to_str().unwrap()],
        None,
    )
    .expect_code(1);
    assert!(
        run.stdout.contains("does not verify") || run.stdout.contains("verifies with key"),
        "{}",
        run.stdout
    );

    std::fs::write(dir.path().join("f.txt"), b"artifact, edited").unwrap();
    let public = fixture("keys/p256.pub");
    let run = signet(
        dir.path(),
        &[
            "verify-blob",
            "f.txt",
            "--key",
            public.to_str().unwrap(),
            "--output",
            "json",
        ],
        None,
    )
    .expect_code(1);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["verified"], false);
    assert!(
        json["reason"]
            .as_str()
            .unwrap()
            .contains("statement is about")
    );
}
