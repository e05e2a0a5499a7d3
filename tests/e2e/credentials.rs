//! Registry credentials through the real binary: `~/.docker/config.json` (via `DOCKER_CONFIG`)
//! and flags against a basic-auth registry; a wrong password is a clear authentication error;
//! no secret ever appears in what signet prints; credentials go only to the registry they are
//! for, never to another registry that asks (issue 12).

use std::process::{Command, Stdio};

use base64::Engine as _;

use crate::cli::{Run, signet_bin};
use crate::fake_registry::{Config, Demand, FakeRegistry};
use crate::harness::{Options, Registry};
use crate::images::push_image;

const KEY_PASSWORD: &str = "key-password-e2e";

fn run(dir: &std::path::Path, args: &[&str], docker_config: Option<&std::path::Path>) -> Run {
    run_with(dir, args, docker_config, &[])
}

/// [`run`] with more environment variables.
fn run_with(
    dir: &std::path::Path,
    args: &[&str],
    docker_config: Option<&std::path::Path>,
    env: &[(&str, &str)],
) -> Run {
    let mut cmd = Command::new(signet_bin());
    cmd.args(args)
        .current_dir(dir)
        .env("SIGNET_PASSWORD", KEY_PASSWORD)
        .env_remove("SIGNET_REGISTRY_USERNAME")
        .env_remove("SIGNET_REGISTRY_PASSWORD")
        .env_remove("SIGNET_REGISTRY_HOST")
        .envs(env.iter().copied())
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

/// A registry on 127.0.0.1 that demands `demand` of everyone, recording what it is sent, with
/// an unsigned image; returns it and the image reference.
fn asking_registry(demand: Demand) -> (FakeRegistry, String) {
    let registry = FakeRegistry::start_with(Config {
        auth: Some(demand),
        ..Config::default()
    });
    let digest = registry.seed_image("evil/app", "v1", b"evil");
    let image = format!("{}/evil/app@{digest}", registry.host());
    (registry, image)
}

/// Asserts that `registry` received no credentials: no `Authorization` at all, or only the
/// anonymous tokens of its own token service.
#[track_caller]
fn assert_no_credentials_received(registry: &FakeRegistry, what: &str) {
    let received = registry.authorizations();
    assert!(
        received
            .iter()
            .all(|a| a.starts_with("Bearer fake-anonymous-token-")),
        "{what}: the registry at {} received credentials: {received:?}",
        registry.host()
    );
}

/// Exit code of `signet verify` or `tree` against an asking registry: a Basic one lets nobody
/// in (an authentication error, 2); a Bearer one serves anonymously (the image is unsigned:
/// `verify` denies with 1, `tree` shows it with 0).
fn exit_code(command: &str, demand: Demand) -> i32 {
    match (demand, command) {
        (Demand::Basic, _) => 2,
        (Demand::Bearer, "verify") => 1,
        (Demand::Bearer, _) => 0,
    }
}

#[test]
fn credentials_are_not_sent_to_other_registries() {
    let good = Registry::start(Options::basic_auth());
    let creds = good.credentials().unwrap().clone();
    let good_host = good.host();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(d, &["keygen", "--output-prefix", "k"], None).expect_code(0);
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", creds.username, creds.password));
    let secrets = [creds.password.as_str(), auth.as_str()];

    for demand in [Demand::Basic, Demand::Bearer] {
        let (evil, image) = asking_registry(demand);
        let flags = [
            "--registry-username",
            creds.username.as_str(),
            "--registry-password",
            creds.password.as_str(),
        ];

        // Flags bound to the good registry by --registry-credentials-host.
        for command in [
            vec!["verify", image.as_str(), "--key", "k.pub"],
            vec!["tree", image.as_str()],
        ] {
            let mut args = command.clone();
            args.extend(flags);
            args.extend(["--registry-credentials-host", good_host.as_str()]);
            let out = run(d, &args, None);
            let code = exit_code(command[0], demand);
            let out = out.expect_code(code);
            assert_no_secret(&out, &secrets);
            assert_no_credentials_received(&evil, &format!("{demand:?} {command:?} flags"));
            if demand == Demand::Basic {
                assert!(
                    out.stderr
                        .contains(&format!("credentials given are for {good_host} only")),
                    "{}",
                    out.stderr
                );
            }
        }

        // The same through the environment (SIGNET_REGISTRY_USERNAME/PASSWORD/HOST).
        let out = run_with(
            d,
            &["verify", &image, "--key", "k.pub"],
            None,
            &[
                ("SIGNET_REGISTRY_USERNAME", &creds.username),
                ("SIGNET_REGISTRY_PASSWORD", &creds.password),
                ("SIGNET_REGISTRY_HOST", &good_host),
            ],
        )
        .expect_code(exit_code("verify", demand));
        assert_no_secret(&out, &secrets);
        assert_no_credentials_received(&evil, &format!("{demand:?} environment"));

        // A docker config holding credentials for the good registry only.
        let docker = d.join(format!("docker-{demand:?}"));
        std::fs::create_dir(&docker).unwrap();
        std::fs::write(
            docker.join("config.json"),
            serde_json::json!({"auths": {good_host.as_str(): {"auth": auth}}}).to_string(),
        )
        .unwrap();
        for command in [
            vec!["verify", image.as_str(), "--key", "k.pub"],
            vec!["tree", image.as_str()],
        ] {
            let code = exit_code(command[0], demand);
            let out = run(d, &command, Some(&docker)).expect_code(code);
            assert_no_secret(&out, &secrets);
            assert_no_credentials_received(&evil, &format!("{demand:?} {command:?} config"));
        }
        if demand == Demand::Bearer {
            assert!(
                !evil.authorizations().is_empty(),
                "the anonymous token was never used: the test did not exercise Bearer auth"
            );
        }
    }
}

#[test]
fn credential_helper_is_asked_only_about_the_registry_contacted() {
    use std::os::unix::fs::PermissionsExt as _;
    let (evil, image) = asking_registry(Demand::Basic);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(d, &["keygen", "--output-prefix", "k"], None).expect_code(0);
    // A credsStore helper that writes down every server it is asked about and knows none.
    let bin = d.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let asked = d.join("asked.txt");
    let helper = bin.join("docker-credential-spy");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread -r server\necho \"$server\" >> '{}'\necho 'credentials not found in native keychain'\nexit 1\n",
            asked.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let docker = d.join("docker");
    std::fs::create_dir(&docker).unwrap();
    std::fs::write(
        docker.join("config.json"),
        r#"{"auths": {"other.example": {"auth": "b3RoZXI6c2VjcmV0"}}, "credsStore": "spy"}"#,
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = run_with(
        d,
        &["verify", &image, "--key", "k.pub"],
        Some(&docker),
        &[("PATH", &path)],
    )
    .expect_code(2);
    assert!(out.stderr.contains("no credentials"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(&asked).unwrap(),
        format!("{}\n", evil.host()),
        "the helper must be asked about the registry contacted and no other"
    );
    assert_no_credentials_received(&evil, "credsStore");
}

#[test]
fn credentials_bound_to_the_right_host_still_work() {
    let plain = Registry::start(Options::plain());
    let secure = Registry::start(Options::basic_auth());
    let creds = secure.credentials().unwrap().clone();
    let (image, digest) = push_image(&plain, "team/app", "v1", b"bound");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(d, &["keygen", "--output-prefix", "k"], None).expect_code(0);
    let flags = [
        "--registry-username",
        creds.username.as_str(),
        "--registry-password",
        creds.password.as_str(),
    ];
    let target = format!("{}/team/app", secure.host());

    // Two registries named: which one the credentials are for must be said, never guessed.
    let mut args = vec!["mirror", image.as_str(), target.as_str(), "--quiet"];
    args.extend(flags);
    let out = run(d, &args, None).expect_code(2);
    assert!(
        out.stderr.contains("--registry-credentials-host")
            && out.stderr.contains(&plain.host())
            && out.stderr.contains(&secure.host()),
        "{}",
        out.stderr
    );
    assert_no_secret(&out, &[&creds.password]);
    let mut args = vec!["export", image.as_str(), "--output", "out.tar", "--quiet"];
    args.extend(["--registry-credentials-host", "https://example"]);
    args.extend(flags);
    let out = run(d, &args, None).expect_code(2);
    assert!(out.stderr.contains("without a scheme"), "{}", out.stderr);

    // Said: the mirror reads the plain registry anonymously and writes with the credentials.
    let mut args = vec!["mirror", image.as_str(), target.as_str(), "--quiet"];
    args.extend(flags);
    let secure_host = secure.host();
    args.extend(["--registry-credentials-host", secure_host.as_str()]);
    let out = run(d, &args, None).expect_code(0);
    assert_eq!(out.stdout.trim(), format!("{target}:v1@{digest}"));
    assert_no_secret(&out, &[&creds.password]);

    // One registry named: the credentials are for it without saying so.
    let mirrored = format!("{target}:v1");
    let mut args = vec!["sign", mirrored.as_str(), "--key", "k.key"];
    args.extend(flags);
    run(d, &args, None).expect_code(0);
    let mut args = vec!["verify", mirrored.as_str(), "--key", "k.pub"];
    args.extend(flags);
    run(d, &args, None).expect_code(0);
    // And `import` contacts only the registry of --to.
    let mut args = vec![
        "export",
        mirrored.as_str(),
        "--output",
        "out.tar",
        "--quiet",
    ];
    args.extend(flags);
    run(d, &args, None).expect_code(0);
    let to = format!("{}/copy", secure.host());
    let mut args = vec!["import", "out.tar", "--to", to.as_str(), "--quiet"];
    args.extend(flags);
    run(d, &args, None).expect_code(0);
}
