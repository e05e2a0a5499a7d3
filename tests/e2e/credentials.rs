//! Registry credentials through the real binary: `~/.docker/config.json` (via `DOCKER_CONFIG`)
//! and flags against a basic-auth registry; a wrong password is a clear authentication error;
//! no secret ever appears in what signet prints.

use std::process::{Command, Stdio};

use base64::Engine as _;

use crate::cli::{Run, signet_bin};
use crate::harness::{Options, Registry};
use crate::images::push_image;

const KEY_PASSWORD: &str = "key-password-e2e";

fn run(dir: &std::path::Path, args: &[&str], docker_config: Option<&std::path::Path>) -> Run {
    let mut cmd = Command::new(signet_bin());
    cmd.args(args)
        .current_dir(dir)
        .env("SIGNET_PASSWORD", KEY_PASSWORD)
        .env_remove("SIGNET_REGISTRY_USERNAME")
        .env_remove("SIGNET_REGISTRY_PASSWORD")
        .stdin(Stdio::null());
    match docker_config {
        Some(d) => cmd.env("DOCKER_CONFIG", d),
        // An empty config directory: no credentials from the machine running the tests.
        None => cmd.env("DOCKER_CONFIG", dir.join("no-docker-config")),
    };
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn assert_no_secret(run: &Run, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !run.all().contains(secret),
            "secret {secret:?} printed:\n{}",
            run.all()
        );
    }
}

#[test]
fn basic_auth_through_docker_config_and_through_flags() {
    let registry = Registry::start(Options::basic_auth());
    let creds = registry.credentials().unwrap().clone();
    let (image, _) = push_image(&registry, "secure/app", "v1", b"auth");
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), &["keygen", "--output-prefix", "k"], None).expect_code(0);

    // Through ~/.docker/config.json (DOCKER_CONFIG points at its directory).
    let docker = dir.path().join("docker");
    std::fs::create_dir(&docker).unwrap();
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", creds.username, creds.password));
    std::fs::write(
        docker.join("config.json"),
        serde_json::json!({"auths": {registry.host(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let signed = run(
        dir.path(),
        &["sign", &image, "--key", "k.key"],
        Some(&docker),
    )
    .expect_code(0);
    assert_no_secret(&signed, &[&creds.password, &auth, KEY_PASSWORD]);
    let verified = run(
        dir.path(),
        &["verify", &image, "--key", "k.pub"],
        Some(&docker),
    )
    .expect_code(0);
    assert_no_secret(&verified, &[&creds.password, &auth]);

    // Through flags, with no docker config at all.
    let flags = [
        "--registry-username",
        creds.username.as_str(),
        "--registry-password",
        creds.password.as_str(),
    ];
    let mut args = vec!["verify", image.as_str(), "--key", "k.pub"];
    args.extend(flags);
    let verified = run(dir.path(), &args, None).expect_code(0);
    assert_no_secret(&verified, &[&creds.password]);
    let mut args = vec!["tree", image.as_str()];
    args.extend(flags);
    run(dir.path(), &args, None).expect_code(0);

    // Without credentials: a clear authentication error, exit 2.
    let anonymous = run(dir.path(), &["verify", &image, "--key", "k.pub"], None).expect_code(2);
    assert!(
        anonymous.stderr.contains("authentication to 127.0.0.1")
            && anonymous.stderr.contains("no credentials"),
        "{}",
        anonymous.stderr
    );
}

#[test]
fn wrong_password_is_a_clear_authentication_error_without_the_secret() {
    let registry = Registry::start(Options::basic_auth());
    let creds = registry.credentials().unwrap().clone();
    let (image, _) = push_image(&registry, "secure/app", "v1", b"auth");
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), &["keygen", "--output-prefix", "k"], None).expect_code(0);
    let wrong = "not-the-password-0123";
    let out = run(
        dir.path(),
        &[
            "verify",
            &image,
            "--key",
            "k.pub",
            "--registry-username",
            &creds.username,
            "--registry-password",
            wrong,
        ],
        None,
    )
    .expect_code(2);
    assert!(out.stderr.contains("authentication to"), "{}", out.stderr);
    assert!(out.stderr.contains("401"), "{}", out.stderr);
    assert_no_secret(&out, &[wrong, &creds.password]);

    // The same through a docker config with a wrong inline auth.
    let docker = dir.path().join("docker");
    std::fs::create_dir(&docker).unwrap();
    let auth =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{wrong}", creds.username));
    std::fs::write(
        docker.join("config.json"),
        serde_json::json!({"auths": {registry.host(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let out = run(
        dir.path(),
        &["sign", &image, "--key", "k.key"],
        Some(&docker),
    )
    .expect_code(2);
    assert!(out.stderr.contains("authentication to"), "{}", out.stderr);
    assert_no_secret(&out, &[wrong, &auth, KEY_PASSWORD]);
}

#[test]
fn tls_registry_with_its_ca() {
    let registry = Registry::start(Options::tls());
    let (image, _) = push_image(&registry, "tls/app", "v1", b"tls");
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), &["keygen", "--output-prefix", "k"], None).expect_code(0);
    let ca = registry
        .ca_pem_path()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    run(
        dir.path(),
        &["sign", &image, "--key", "k.key", "--registry-ca", &ca],
        None,
    )
    .expect_code(0);
    run(
        dir.path(),
        &["verify", &image, "--key", "k.pub", "--registry-ca", &ca],
        None,
    )
    .expect_code(0);
    // Without the CA the certificate is not trusted: an error, never an allow.
    let out = run(dir.path(), &["verify", &image, "--key", "k.pub"], None).expect_code(2);
    assert!(
        out.stderr.to_lowercase().contains("certificate"),
        "{}",
        out.stderr
    );
}
