use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;

use super::docker_config::{config_path_from, credentials_with};
use super::helpers::{HELPER_TIMEOUT, HelperRunner};
use super::*;

const SECRET: &str = "hunter2-very-secret";

fn parse(json: &str) -> DockerConfig {
    DockerConfig::parse(json.as_bytes(), Path::new("config.json")).unwrap()
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn basic(u: &str, p: &str) -> Option<Credentials> {
    Some(Credentials::basic(u, p))
}

/// Resolves without helpers: a runner pointed at an empty directory finds none.
async fn resolve(registry: &str, config: &DockerConfig) -> Option<Credentials> {
    let dir = tempfile::tempdir().unwrap();
    let runner = HelperRunner {
        dir: Some(dir.path().to_owned()),
        timeout: HELPER_TIMEOUT,
    };
    credentials_with(registry, Some(config), &runner)
        .await
        .unwrap()
}

#[test]
fn flag_credentials_are_not_sent_to_other_registries() {
    let bound = BoundCredentials::new("127.0.0.1:5000", Credentials::basic("u", SECRET)).unwrap();
    assert_eq!(
        bound.credentials_for("127.0.0.1:5000"),
        basic("u", SECRET).as_ref()
    );
    // Another port is another registry, as for Docker; so is another host.
    for other in [
        "127.0.0.1:5001",
        "127.0.0.1",
        "evil.example",
        "127.0.0.1:5000.evil.example",
    ] {
        assert_eq!(bound.credentials_for(other), None, "{other}");
    }
    let hub = BoundCredentials::new("docker.io", Credentials::basic("u", SECRET)).unwrap();
    for name in [
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
        "Docker.IO",
    ] {
        assert!(hub.credentials_for(name).is_some(), "{name}");
    }
    assert!(hub.credentials_for("docker.io.evil.example").is_none());
    assert!(hub.credentials_for("ghcr.io").is_none());
    let shown = format!("{bound:?}");
    assert!(
        shown.contains("127.0.0.1:5000") && !shown.contains(SECRET),
        "{shown}"
    );
}

#[test]
fn credentials_host_must_be_a_plain_host() {
    for (host, why) in [
        ("", "empty"),
        ("https://ghcr.io", "scheme"),
        ("ghcr.io/owner", "repository path"),
        ("user@ghcr.io", "host[:port]"),
        ("ghcr.io ", "host[:port]"),
    ] {
        let err = BoundCredentials::new(host, Credentials::basic("u", SECRET)).unwrap_err();
        assert!(
            matches!(err, AuthError::InvalidCredentialsHost { .. }),
            "{host}"
        );
        assert!(err.to_string().contains(why), "{host}: {err}");
        assert!(!err.to_string().contains(SECRET), "{err}");
    }
    for host in [
        "ghcr.io",
        "localhost:5000",
        "[::1]:5000",
        "my-registry.example:8443",
    ] {
        assert!(
            BoundCredentials::new(host, Credentials::basic("u", "p")).is_ok(),
            "{host}"
        );
    }
}

#[test]
fn credentials_bind_to_the_one_registry_named_or_the_one_given() {
    let c = || Credentials::basic("u", SECRET);
    // The one registry named on the command line.
    let bound = bind_credentials(c(), None, &["ghcr.io"]).unwrap().unwrap();
    assert_eq!(bound.host(), "ghcr.io");
    // The same registry twice (mirror within one registry, export of two of its images).
    let bound = bind_credentials(c(), None, &["ghcr.io", "GHCR.IO", "ghcr.io"])
        .unwrap()
        .unwrap();
    assert_eq!(bound.host(), "ghcr.io");
    let bound = bind_credentials(c(), None, &["docker.io", "registry-1.docker.io"])
        .unwrap()
        .unwrap();
    assert_eq!(bound.host(), "docker.io");
    // No registry (an OCI layout): bound to nothing.
    assert_eq!(bind_credentials(c(), None, &[]).unwrap(), None);
    // Several registries: an error naming them, never a guess.
    let err =
        bind_credentials(c(), None, &["a.example", "b.example:5000", "a.example"]).unwrap_err();
    assert!(
        matches!(&err, AuthError::AmbiguousCredentialsHost { registries }
            if registries == &["a.example", "b.example:5000"]),
        "{err}"
    );
    assert!(
        err.to_string().contains("a.example, b.example:5000"),
        "{err}"
    );
    assert!(!err.to_string().contains(SECRET), "{err}");
    // Given explicitly: that host, whatever is named.
    let bound = bind_credentials(
        c(),
        Some("b.example:5000"),
        &["a.example", "b.example:5000"],
    )
    .unwrap()
    .unwrap();
    assert!(bound.credentials_for("b.example:5000").is_some());
    assert!(bound.credentials_for("a.example").is_none());
    let bound = bind_credentials(c(), Some("c.example"), &["a.example"])
        .unwrap()
        .unwrap();
    assert!(bound.credentials_for("a.example").is_none());
    assert!(bind_credentials(c(), Some("https://a.example"), &["a.example"]).is_err());
}

#[test]
fn config_path_prefers_docker_config() {
    assert_eq!(
        config_path_from(Some("/etc/dc".into()), Some("/home/u".into())),
        Some(PathBuf::from("/etc/dc/config.json"))
    );
    assert_eq!(
        config_path_from(Some("".into()), Some("/home/u".into())),
        Some(PathBuf::from("/home/u/.docker/config.json"))
    );
    assert_eq!(config_path_from(None, None), None);
}

#[tokio::test]
async fn config_with_auth_field() {
    let config = parse(&format!(
        r#"{{"auths": {{"ghcr.io": {{"auth": "{}"}}}}, "HttpHeaders": {{"X": "y"}}, "psFormat": "x"}}"#,
        b64(&format!("alice:{SECRET}:with:colons"))
    ));
    assert_eq!(
        resolve("ghcr.io", &config).await,
        basic("alice", &format!("{SECRET}:with:colons"))
    );
    assert_eq!(resolve("quay.io", &config).await, None);
}

#[tokio::test]
async fn config_with_unpadded_auth_field() {
    let auth = b64("bob:pw").trim_end_matches('=').to_owned();
    let config = parse(&format!(
        r#"{{"auths": {{"r.example": {{"auth": "{auth}"}}}}}}"#
    ));
    assert_eq!(resolve("r.example", &config).await, basic("bob", "pw"));
}

#[tokio::test]
async fn config_with_username_and_password_fields() {
    let config = parse(
        r#"{"auths": {"localhost:5000": {"username": "u", "password": "p", "email": "x@y"}}}"#,
    );
    assert_eq!(resolve("localhost:5000", &config).await, basic("u", "p"));
}

#[tokio::test]
async fn config_with_identity_token() {
    let config = parse(&format!(
        r#"{{"auths": {{"myacr.azurecr.io": {{"auth": "{}", "identitytoken": "{SECRET}"}}}}}}"#,
        b64("00000000-0000-0000-0000-000000000000:")
    ));
    assert_eq!(
        resolve("myacr.azurecr.io", &config).await,
        Some(Credentials::IdentityToken(SECRET.into()))
    );
}

#[tokio::test]
async fn config_auth_with_token_username_is_identity_token() {
    let config = parse(&format!(
        r#"{{"auths": {{"r.example": {{"auth": "{}"}}}}}}"#,
        b64(&format!("<token>:{SECRET}"))
    ));
    assert_eq!(
        resolve("r.example", &config).await,
        Some(Credentials::IdentityToken(SECRET.into()))
    );
}

#[tokio::test]
async fn empty_entry_and_empty_file_mean_no_credentials() {
    let config = parse(r#"{"auths": {"ghcr.io": {}}, "credHelpers": null}"#);
    assert_eq!(resolve("ghcr.io", &config).await, None);
    assert_eq!(parse("  \n"), DockerConfig::default());
    assert_eq!(
        credentials_for("ghcr.io", None).await.unwrap(),
        None,
        "no config, no credentials"
    );
}

#[tokio::test]
async fn invalid_auth_field_names_server_not_secret() {
    let config = parse(&format!(
        r#"{{"auths": {{"ghcr.io": {{"auth": "{SECRET}!"}}}}}}"#
    ));
    let err = credentials_with("ghcr.io", Some(&config), &HelperRunner::default())
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::InvalidAuthField { .. }));
    let message = err.to_string();
    assert!(message.contains("ghcr.io"), "{message}");
    assert!(!message.contains(SECRET), "{message}");
}

#[test]
fn invalid_config_does_not_echo_secret() {
    let err = DockerConfig::parse(
        format!(r#"{{"auths": {{"ghcr.io": "{SECRET}"}}}}"#).as_bytes(),
        Path::new("/x/config.json"),
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("/x/config.json"), "{message}");
    assert!(!message.contains(SECRET), "{message}");
    assert!(!format!("{err:?}").contains(SECRET));
}

#[test]
fn load_missing_unreadable_and_valid_files() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        DockerConfig::load(&dir.path().join("nope.json"))
            .unwrap()
            .is_none()
    );

    // A directory cannot be read as a file.
    let err = DockerConfig::load(dir.path()).unwrap_err();
    assert!(matches!(err, AuthError::ConfigUnreadable { .. }), "{err}");
    assert!(err.to_string().contains(&dir.path().display().to_string()));

    let path = dir.path().join("config.json");
    std::fs::write(&path, "{not json").unwrap();
    let err = DockerConfig::load(&path).unwrap_err();
    assert!(
        matches!(err, AuthError::ConfigInvalid { line: 1, .. }),
        "{err}"
    );

    std::fs::write(&path, r#"{"credsStore": "desktop"}"#).unwrap();
    let config = DockerConfig::load(&path).unwrap().unwrap();
    assert_eq!(config.creds_store.as_deref(), Some("desktop"));
}

#[tokio::test]
async fn docker_hub_names_share_the_index_key() {
    let config = parse(&format!(
        r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{}"}}}}}}"#,
        b64("hubuser:hubpass")
    ));
    for registry in [
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
        "Docker.IO",
    ] {
        assert_eq!(
            resolve(registry, &config).await,
            basic("hubuser", "hubpass"),
            "{registry}"
        );
    }
    assert_eq!(resolve("ghcr.io", &config).await, None);
}

#[tokio::test]
async fn docker_hub_prefers_index_key_over_aliases() {
    let config = parse(&format!(
        r#"{{"auths": {{"docker.io": {{"auth": "{}"}}, "https://index.docker.io/v1/": {{"auth": "{}"}}}}}}"#,
        b64("alias:a"),
        b64("index:i")
    ));
    assert_eq!(resolve("docker.io", &config).await, basic("index", "i"));
    let config = parse(&format!(
        r#"{{"auths": {{"docker.io": {{"auth": "{}"}}}}}}"#,
        b64("alias:a")
    ));
    assert_eq!(
        resolve("registry-1.docker.io", &config).await,
        basic("alias", "a")
    );
}

#[tokio::test]
async fn keys_with_scheme_and_version_path_match_the_host() {
    for key in [
        "https://r.example:5000",
        "https://r.example:5000/",
        "http://r.example:5000/v2/",
        "https://r.example:5000/v1/",
    ] {
        let config = parse(&format!(
            r#"{{"auths": {{"{key}": {{"auth": "{}"}}}}}}"#,
            b64("u:p")
        ));
        assert_eq!(
            resolve("r.example:5000", &config).await,
            basic("u", "p"),
            "{key}"
        );
        assert_eq!(
            resolve("r.example", &config).await,
            None,
            "{key} without port"
        );
    }
    let config = parse(&format!(
        r#"{{"auths": {{"https://r.example/other/": {{"auth": "{}"}}}}}}"#,
        b64("u:p")
    ));
    assert_eq!(resolve("r.example", &config).await, None);
    // The exact host wins over a prefixed form.
    let config = parse(&format!(
        r#"{{"auths": {{"http://r.example/v2/": {{"auth": "{}"}}, "r.example": {{"auth": "{}"}}}}}}"#,
        b64("prefixed:1"),
        b64("exact:2")
    ));
    assert_eq!(resolve("r.example", &config).await, basic("exact", "2"));
}

#[cfg(unix)]
mod helpers {
    use super::*;

    /// Writes `docker-credential-<name>` into `dir`: a shell script with `body`.
    fn fake_helper(dir: &Path, name: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join(format!("docker-credential-{name}"));
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn runner(dir: &Path) -> HelperRunner {
        HelperRunner {
            dir: Some(dir.to_owned()),
            timeout: HELPER_TIMEOUT,
        }
    }

    /// Answers with the server URL it read as the user name, after checking its argument.
    const ECHO_HELPER: &str = r#"[ "$1" = get ] || exit 3
read -r url
printf '{"ServerURL":"%s","Username":"%s","Secret":"s3cret"}\n' "$url" "$url""#;

    #[tokio::test]
    async fn helper_answers_json_with_server_url_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        fake_helper(dir.path(), "fake", ECHO_HELPER);
        let config = parse(r#"{"credsStore": "fake"}"#);
        let got = credentials_with("ghcr.io", Some(&config), &runner(dir.path()))
            .await
            .unwrap();
        assert_eq!(got, basic("ghcr.io", "s3cret"));
        let got = credentials_with("docker.io", Some(&config), &runner(dir.path()))
            .await
            .unwrap();
        assert_eq!(got, basic(DOCKER_HUB_SERVER, "s3cret"));
    }

    #[tokio::test]
    async fn helper_token_username_means_identity_token() {
        let dir = tempfile::tempdir().unwrap();
        fake_helper(
            dir.path(),
            "tok",
            r#"echo '{"ServerURL":"x","Username":"<token>","Secret":"refresh"}'"#,
        );
        let config = parse(r#"{"credHelpers": {"ghcr.io": "tok"}}"#);
        let got = credentials_with("ghcr.io", Some(&config), &runner(dir.path()))
            .await
            .unwrap();
        assert_eq!(got, Some(Credentials::IdentityToken("refresh".into())));
    }

    #[tokio::test]
    async fn cred_helpers_take_precedence_over_auths_and_creds_store() {
        let dir = tempfile::tempdir().unwrap();
        fake_helper(dir.path(), "fake", ECHO_HELPER);
        fake_helper(dir.path(), "store", "exit 7");
        let config = parse(&format!(
            r#"{{"auths": {{"ghcr.io": {{"auth": "{}"}}, "quay.io": {{"auth": "{}"}}}},
                "credHelpers": {{"ghcr.io": "fake"}}, "credsStore": "store"}}"#,
            b64("inline:x"),
            b64("quay:q")
        ));
        let runner = runner(dir.path());
        let got = credentials_with("ghcr.io", Some(&config), &runner).await;
        assert_eq!(got.unwrap(), basic("ghcr.io", "s3cret"));
        // Inline credentials win over credsStore.
        let got = credentials_with("quay.io", Some(&config), &runner).await;
        assert_eq!(got.unwrap(), basic("quay", "q"));
        // No entry: credsStore is asked (and here fails).
        let got = credentials_with("other.example", Some(&config), &runner).await;
        assert!(
            matches!(got, Err(AuthError::HelperFailed { .. })),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn empty_auths_entry_defers_to_creds_store() {
        let dir = tempfile::tempdir().unwrap();
        fake_helper(dir.path(), "fake", ECHO_HELPER);
        let config = parse(r#"{"auths": {"ghcr.io": {}}, "credsStore": "fake"}"#);
        let got = credentials_with("ghcr.io", Some(&config), &runner(dir.path()))
            .await
            .unwrap();
        assert_eq!(got, basic("ghcr.io", "s3cret"));
    }

    #[tokio::test]
    async fn helper_credentials_not_found_means_none() {
        let dir = tempfile::tempdir().unwrap();
        fake_helper(
            dir.path(),
            "fake",
            "echo 'credentials not found in native keychain'; exit 1",
        );
        fake_helper(
            dir.path(),
            "errfake",
            "echo 'Credentials not found' >&2; exit 1",
        );
        for helper in ["fake", "errfake"] {
            let config = parse(&format!(r#"{{"credsStore": "{helper}"}}"#));
            let got = credentials_with("ghcr.io", Some(&config), &runner(dir.path()))
                .await
                .unwrap();
            assert_eq!(got, None, "{helper}");
        }
    }

    #[tokio::test]
    async fn failing_helper_names_helper_and_registry() {
        let dir = tempfile::tempdir().unwrap();
        fake_helper(
            dir.path(),
            "fake",
            "cat >/dev/null; echo 'gpg: decryption failed' >&2; exit 2",
        );
        let config = parse(r#"{"credHelpers": {"ghcr.io": "fake"}}"#);
        let err = credentials_with("ghcr.io", Some(&config), &runner(dir.path()))
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, AuthError::HelperFailed { .. }), "{message}");
        assert!(message.contains("docker-credential-fake"), "{message}");
        assert!(message.contains("ghcr.io"), "{message}");
        assert!(message.contains("gpg: decryption failed"), "{message}");
    }

    #[tokio::test]
    async fn failing_helper_with_json_output_does_not_echo_secret() {
        let dir = tempfile::tempdir().unwrap();
        fake_helper(
            dir.path(),
            "fake",
            &format!(r#"echo '{{"Username": "u", "Secret": "{SECRET}"}}'; exit 1"#),
        );
        let config = parse(r#"{"credsStore": "fake"}"#);
        let err = credentials_with("ghcr.io", Some(&config), &runner(dir.path()))
            .await
            .unwrap_err();
        assert!(matches!(err, AuthError::HelperFailed { .. }), "{err}");
        assert!(!err.to_string().contains(SECRET), "{err}");
        assert!(!format!("{err:?}").contains(SECRET));
    }

    #[tokio::test]
    async fn missing_helper_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let config = parse(r#"{"credsStore": "absent"}"#);
        let err = credentials_with("ghcr.io", Some(&config), &runner(dir.path()))
            .await
            .unwrap_err();
        assert!(matches!(err, AuthError::HelperUnavailable { .. }), "{err}");
        assert!(err.to_string().contains("docker-credential-absent"));
    }

    #[tokio::test]
    async fn helper_with_invalid_json_does_not_echo_secret() {
        let dir = tempfile::tempdir().unwrap();
        fake_helper(
            dir.path(),
            "fake",
            &format!(r#"echo '{{"Username": "u", "Secret": ["{SECRET}"]}}'"#),
        );
        let config = parse(r#"{"credsStore": "fake"}"#);
        let err = credentials_with("ghcr.io", Some(&config), &runner(dir.path()))
            .await
            .unwrap_err();
        assert!(
            matches!(err, AuthError::HelperResponseInvalid { .. }),
            "{err}"
        );
        assert!(!err.to_string().contains(SECRET));
        assert!(!format!("{err:?}").contains(SECRET));
    }

    #[tokio::test]
    async fn slow_helper_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        fake_helper(dir.path(), "slow", "exec sleep 30");
        let config = parse(r#"{"credsStore": "slow"}"#);
        let runner = HelperRunner {
            dir: Some(dir.path().to_owned()),
            timeout: Duration::from_millis(300),
        };
        let started = std::time::Instant::now();
        let err = credentials_with("ghcr.io", Some(&config), &runner)
            .await
            .unwrap_err();
        assert!(matches!(err, AuthError::HelperTimeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[tokio::test]
    async fn chatty_helper_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        fake_helper(dir.path(), "chatty", "head -c 200000 /dev/zero");
        let config = parse(r#"{"credsStore": "chatty"}"#);
        let err = credentials_with("ghcr.io", Some(&config), &runner(dir.path()))
            .await
            .unwrap_err();
        assert!(
            matches!(err, AuthError::HelperOutputTooLarge { .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn helper_name_cannot_be_a_path() {
        let config = parse(r#"{"credsStore": "../../bin/sh"}"#);
        let err = credentials_with("ghcr.io", Some(&config), &HelperRunner::default())
            .await
            .unwrap_err();
        assert!(matches!(err, AuthError::InvalidHelperName { .. }), "{err}");
    }
}

#[test]
fn challenge_table() {
    fn bearer(realm: &str, service: Option<&str>, scope: Option<&str>) -> Challenge {
        Challenge::Bearer {
            realm: realm.into(),
            service: service.map(Into::into),
            scope: scope.map(Into::into),
        }
    }
    let basic = |realm: &str| Challenge::Basic {
        realm: realm.into(),
    };
    let cases: Vec<(&str, Challenge)> = vec![
        (
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
            bearer(
                "https://auth.docker.io/token",
                Some("registry.docker.io"),
                Some("repository:library/alpine:pull"),
            ),
        ),
        (r#"Basic realm="Registry Realm""#, basic("Registry Realm")),
        (
            r#"bearer realm="https://ghcr.io/token""#,
            bearer("https://ghcr.io/token", None, None),
        ),
        (
            r#"BEARER Realm="https://r/t", SERVICE="svc""#,
            bearer("https://r/t", Some("svc"), None),
        ),
        (
            r#"Bearer realm="https://r/t",scope="repository:a/b:pull,push""#,
            bearer("https://r/t", None, Some("repository:a/b:pull,push")),
        ),
        (
            r#"  Bearer   realm = "https://r/t" ,  service = "s"  ,  "#,
            bearer("https://r/t", Some("s"), None),
        ),
        (
            r#"Bearer realm=https://r/t,service=registry"#,
            bearer("https://r/t", Some("registry"), None),
        ),
        (
            r#"Bearer realm="https://r/t",service="a \"quoted\" \\ name""#,
            bearer("https://r/t", Some(r#"a "quoted" \ name"#), None),
        ),
        (
            r#"Basic realm="basic", Bearer realm="https://r/t",service="s""#,
            bearer("https://r/t", Some("s"), None),
        ),
        (r#"Negotiate, Basic realm="fallback""#, basic("fallback")),
        (
            r#"Negotiate abc123==, Bearer realm="https://r/t",scope="repository:x:pull""#,
            bearer("https://r/t", None, Some("repository:x:pull")),
        ),
        (
            r#"Bearer realm="https://r/t",error="insufficient_scope",scope="repository:a:pull repository:b:pull""#,
            bearer(
                "https://r/t",
                None,
                Some("repository:a:pull repository:b:pull"),
            ),
        ),
        (r#"Basic"#, basic("")),
        (
            r#"Bearer realm="https://r/t",service="",scope="""#,
            bearer("https://r/t", None, None),
        ),
    ];
    for (header, want) in cases {
        assert_eq!(parse_www_authenticate(header).unwrap(), want, "{header}");
    }
}

#[test]
fn challenge_errors() {
    type Check = fn(&AuthError) -> bool;
    let cases: [(&str, Check); 10] = [
        ("", |e| matches!(e, AuthError::MalformedChallenge { .. })),
        (" , ", |e| matches!(e, AuthError::MalformedChallenge { .. })),
        (r#"Bearer realm="https://r/t"#, |e| {
            matches!(e, AuthError::MalformedChallenge { .. })
        }),
        (r#"Bearer realm="a" "b""#, |e| {
            matches!(e, AuthError::MalformedChallenge { .. })
        }),
        (r#"Bearer realm="a", realm="b""#, |e| {
            matches!(e, AuthError::MalformedChallenge { .. })
        }),
        // Reads as a token68 (`realm=` with padding), so the challenge has no realm.
        (r#"Bearer realm="#, |e| {
            matches!(e, AuthError::MissingRealm { .. })
        }),
        (r#"Bearer realm=,service="s""#, |e| {
            matches!(e, AuthError::MalformedChallenge { .. })
        }),
        (r#"Bearer service="s""#, |e| {
            matches!(e, AuthError::MissingRealm { .. })
        }),
        (r#"Digest realm="x", nonce="y""#, |e| {
            matches!(e, AuthError::UnsupportedChallenge { .. })
        }),
        (r#""Bearer" realm="x""#, |e| {
            matches!(e, AuthError::MalformedChallenge { .. })
        }),
    ];
    for (header, check) in cases {
        let err = parse_www_authenticate(header).unwrap_err();
        assert!(check(&err), "{header}: {err}");
    }
}

#[test]
fn token_url_encodes_service_and_scopes() {
    let url = token_request_url(
        "https://auth.example/token?client=x",
        Some("registry example"),
        &[
            scope_for("library/alpine", Access::Pull),
            scope_for("me/app", Access::Push),
            String::new(),
        ],
    )
    .unwrap();
    assert_eq!(
        url.as_str(),
        "https://auth.example/token?client=x&service=registry+example\
         &scope=repository%3Alibrary%2Falpine%3Apull&scope=repository%3Ame%2Fapp%3Apull%2Cpush"
    );
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert_eq!(pairs[3].1, "repository:me/app:pull,push");

    let url = token_request_url("http://127.0.0.1:5001/token", None, &[]).unwrap();
    assert_eq!(url.as_str(), "http://127.0.0.1:5001/token");

    assert!(matches!(
        token_request_url("/token", None, &[]),
        Err(AuthError::InvalidRealm { .. })
    ));
    assert!(matches!(
        token_request_url("file:///etc/passwd", None, &[]),
        Err(AuthError::UnsupportedRealmScheme { .. })
    ));
}

#[test]
fn token_response_variants() {
    let t: TokenResponse = serde_json::from_str(r#"{"access_token": "at"}"#).unwrap();
    assert_eq!(t.bearer(), Some("at"));
    assert_eq!(t.lifetime(), Duration::from_secs(50));

    let t: TokenResponse = serde_json::from_str(
        r#"{"token": "t", "access_token": "t", "expires_in": 300, "issued_at": "2024-01-01T00:00:00Z", "refresh_token": "r"}"#,
    )
    .unwrap();
    assert_eq!(t.bearer(), Some("t"));
    assert_eq!(t.lifetime(), Duration::from_secs(290));

    let t: TokenResponse =
        serde_json::from_str(r#"{"token": "", "access_token": "at", "expires_in": 99999999.5}"#)
            .unwrap();
    assert_eq!(t.bearer(), Some("at"));
    assert_eq!(t.lifetime(), Duration::from_secs(3590));

    let t: TokenResponse = serde_json::from_str(r#"{"expires_in": -5}"#).unwrap();
    assert_eq!(t.bearer(), None);
    assert_eq!(t.lifetime(), Duration::ZERO);
}

#[test]
fn scopes() {
    assert_eq!(scope_for("a/b", Access::Pull), "repository:a/b:pull");
    assert_eq!(scope_for("a/b", Access::Push), "repository:a/b:pull,push");
}

#[test]
fn debug_redacts_secrets() {
    let basic = Credentials::basic("alice", SECRET);
    let shown = format!("{basic:?}");
    assert!(shown.contains("alice"), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
    assert!(!shown.contains(SECRET), "{shown}");

    let token = format!("{:?}", Credentials::IdentityToken(SECRET.into()));
    assert!(!token.contains(SECRET), "{token}");

    let config = parse(&format!(
        r#"{{"auths": {{"r": {{"auth": "{}", "username": "alice", "password": "{SECRET}", "identitytoken": "{SECRET}"}}}}}}"#,
        b64(&format!("alice:{SECRET}"))
    ));
    let shown = format!("{config:?}");
    assert!(shown.contains("alice"), "{shown}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(!shown.contains(&b64(&format!("alice:{SECRET}"))), "{shown}");

    let response = TokenResponse {
        token: Some(SECRET.into()),
        access_token: Some(SECRET.into()),
        ..TokenResponse::default()
    };
    assert!(!format!("{response:?}").contains(SECRET));
}
