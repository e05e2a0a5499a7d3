//! Registry credentials and authentication challenges.
//!
//! This module finds credentials the way the Docker CLI does (`~/.docker/config.json`, its
//! `auths`, `credHelpers` and `credsStore`, and the `docker-credential-*` helper protocol),
//! parses `WWW-Authenticate` challenges, and builds token-service requests. The HTTP exchange
//! itself lives in the client; nothing here talks to a registry.
//!
//! Secrets never leave this module through `Debug` or error messages: [`Credentials`],
//! [`AuthEntry`] and [`TokenResponse`] redact them, and no [`AuthError`] carries one.
//!
//! ```
//! use signet_registry::auth::{parse_www_authenticate, scope_for, token_request_url, Challenge};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let header = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io""#;
//! let Challenge::Bearer { realm, service, .. } = parse_www_authenticate(header)? else {
//!     return Err("expected a bearer challenge".into());
//! };
//! let url = token_request_url(&realm, service.as_deref(), &[scope_for("library/alpine", false)])?;
//! assert_eq!(
//!     url.as_str(),
//!     "https://auth.docker.io/token?service=registry.docker.io&scope=repository%3Alibrary%2Falpine%3Apull"
//! );
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Deserializer};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};

/// The key Docker uses for Docker Hub in `auths` and `credHelpers`, and the server URL it
/// hands to credential helpers for Docker Hub.
pub const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// Host names that all mean Docker Hub.
const DOCKER_HUB_HOSTS: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];

/// The user name by which credential helpers and `config.json` mark an identity token
/// (an OAuth2 refresh token) rather than a password.
const IDENTITY_TOKEN_USERNAME: &str = "<token>";

/// How long a credential helper may take before it is killed.
const HELPER_TIMEOUT: Duration = Duration::from_secs(10);

/// The most a credential helper may write to stdout or stderr.
const HELPER_OUTPUT_LIMIT: usize = 64 * 1024;

/// The largest `config.json` read; real ones are a few kilobytes.
const CONFIG_SIZE_LIMIT: u64 = 4 * 1024 * 1024;

/// Token lifetime when the token service does not say, per the distribution token spec.
const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 60;

/// Tokens are never cached for longer than this, whatever the token service says.
const MAX_TOKEN_LIFETIME_SECS: u64 = 60 * 60;

/// Subtracted from a token's lifetime so that it is not used in the last seconds of its life,
/// when clock skew and request latency could make it expire in flight.
const TOKEN_SAFETY_MARGIN_SECS: u64 = 10;

/// The longest helper diagnostic quoted in an error.
const DIAGNOSTIC_LIMIT: usize = 200;

/// Credentials for one registry.
///
/// `Debug` prints the user name but never the password or token.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A user name and password (or a personal access token used as one).
    Basic {
        /// The user name.
        username: String,
        /// The password; secret.
        password: String,
    },
    /// An identity token: an OAuth2 refresh token that Docker stores with the user name
    /// `<token>` and that is exchanged for a bearer token with `grant_type=refresh_token`.
    IdentityToken(String),
}

impl Credentials {
    /// Basic credentials from a user name and password.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The user name: the real one for basic credentials, `<token>` for an identity token.
    pub fn username(&self) -> &str {
        match self {
            Self::Basic { username, .. } => username,
            Self::IdentityToken(_) => IDENTITY_TOKEN_USERNAME,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Self::IdentityToken(_) => f.debug_tuple("IdentityToken").field(&"<redacted>").finish(),
        }
    }
}

/// Where Docker keeps its client configuration: `$DOCKER_CONFIG/config.json`, else
/// `$HOME/.docker/config.json`; `None` when neither variable is set.
pub fn docker_config_path() -> Option<PathBuf> {
    config_path_from(
        std::env::var_os("DOCKER_CONFIG"),
        std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE")),
    )
}

/// [`docker_config_path`] without the environment, so tests need not mutate it.
fn config_path_from(
    docker_config: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    if let Some(dir) = docker_config.filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    home.filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".docker").join("config.json"))
}

/// The parts of Docker's `config.json` that concern registry credentials.
///
/// Unknown fields (Docker's file has many) are ignored.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct DockerConfig {
    /// Inline credentials by server (`ghcr.io`, `https://index.docker.io/v1/`, ...).
    #[serde(default, deserialize_with = "null_as_default")]
    pub auths: BTreeMap<String, AuthEntry>,
    /// Credential helper (the suffix of `docker-credential-<name>`) by registry.
    #[serde(default, rename = "credHelpers", deserialize_with = "null_as_default")]
    pub cred_helpers: BTreeMap<String, String>,
    /// The credential helper for every registry without a `credHelpers` entry.
    #[serde(default, rename = "credsStore")]
    pub creds_store: Option<String>,
}

/// One entry of `auths` in `config.json`.
///
/// `Debug` prints the user name but never `auth`, the password or the identity token.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
pub struct AuthEntry {
    /// Base64 of `user:password`, as `docker login` writes it.
    #[serde(default)]
    pub auth: Option<String>,
    /// A user name given on its own.
    #[serde(default)]
    pub username: Option<String>,
    /// A password given on its own; secret.
    #[serde(default)]
    pub password: Option<String>,
    /// An identity token (OAuth2 refresh token); secret.
    #[serde(default, alias = "identityToken")]
    pub identitytoken: Option<String>,
}

impl fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("AuthEntry")
            .field("auth", &redacted(&self.auth))
            .field("username", &self.username)
            .field("password", &redacted(&self.password))
            .field("identitytoken", &redacted(&self.identitytoken))
            .finish()
    }
}

impl AuthEntry {
    /// The credentials this entry holds inline, if any; `server` is its key, for errors.
    ///
    /// An identity token wins over a password, as in Docker.
    pub fn credentials(&self, server: &str) -> Result<Option<Credentials>, AuthError> {
        if let Some(token) = self.identitytoken.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials::IdentityToken(token.to_owned())));
        }
        if let Some(auth) = self
            .auth
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            let invalid = || AuthError::InvalidAuthField {
                server: server.to_owned(),
            };
            // Docker writes padded standard base64; other tools sometimes drop the padding.
            let engine = base64::engine::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                base64::engine::GeneralPurposeConfig::new()
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
            );
            let decoded = engine.decode(auth).map_err(|_| invalid())?;
            let decoded = String::from_utf8(decoded).map_err(|_| invalid())?;
            let (username, password) = decoded.split_once(':').ok_or_else(invalid)?;
            // Docker trims NULs that some Windows tools leave at the end of the password.
            let password = password.trim_end_matches('\0');
            return Ok(credentials_from(username, password));
        }
        let username = self.username.as_deref().unwrap_or_default();
        let password = self.password.as_deref().unwrap_or_default();
        Ok(credentials_from(username, password))
    }
}

/// Credentials from a user name and secret as Docker stores them: `<token>` marks an identity
/// token, and an empty pair means none.
fn credentials_from(username: &str, secret: &str) -> Option<Credentials> {
    if username == IDENTITY_TOKEN_USERNAME {
        return (!secret.is_empty()).then(|| Credentials::IdentityToken(secret.to_owned()));
    }
    if username.is_empty() && secret.is_empty() {
        return None;
    }
    Some(Credentials::basic(username, secret))
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

impl DockerConfig {
    /// Reads `config.json` at `path`; `Ok(None)` when the file does not exist.
    ///
    /// An empty file is an empty configuration, as for Docker.
    pub fn load(path: &Path) -> Result<Option<Self>, AuthError> {
        let unreadable = |source| AuthError::ConfigUnreadable {
            path: path.to_owned(),
            source,
        };
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(unreadable(e)),
        };
        let mut bytes = Vec::new();
        file.take(CONFIG_SIZE_LIMIT + 1)
            .read_to_end(&mut bytes)
            .map_err(unreadable)?;
        if bytes.len() as u64 > CONFIG_SIZE_LIMIT {
            return Err(AuthError::ConfigTooLarge {
                path: path.to_owned(),
                limit: CONFIG_SIZE_LIMIT,
            });
        }
        Self::parse(&bytes, path).map(Some)
    }

    fn parse(bytes: &[u8], path: &Path) -> Result<Self, AuthError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        // serde_json's messages quote the offending value, which may be a secret
        // (`"auths": {"host": "<password>"}`), so only its position is kept.
        serde_json::from_slice(bytes).map_err(|e| AuthError::ConfigInvalid {
            path: path.to_owned(),
            line: e.line(),
            column: e.column(),
        })
    }
}

/// The registry credentials are looked up for, normalised.
struct Target {
    /// The host (and port), without scheme or path.
    host: String,
    /// Whether the host is one of Docker Hub's names.
    hub: bool,
}

impl Target {
    fn new(registry: &str) -> Self {
        let (_, rest) = strip_scheme(registry.trim());
        let host = rest.split('/').next().unwrap_or(rest);
        let hub = DOCKER_HUB_HOSTS
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host));
        Self {
            host: host.to_owned(),
            hub,
        }
    }

    /// The server URL Docker uses as the key and hands to credential helpers.
    fn server_url(&self) -> &str {
        if self.hub {
            DOCKER_HUB_SERVER
        } else {
            &self.host
        }
    }

    /// How well a key of `auths`/`credHelpers` names this registry (lower is better), or
    /// `None` when it names another one. Docker accepts the bare host and the host with a
    /// scheme and a `/v1/` or `/v2/` path, as left by old `docker login` versions.
    fn rank(&self, key: &str) -> Option<(u8, u8, u8, u8)> {
        if key == self.server_url() {
            return Some((0, 0, 0, 0));
        }
        let (scheme, rest) = strip_scheme(key.trim());
        let (host, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        let path = ["", "/", "/v2/", "/v2", "/v1/", "/v1"]
            .iter()
            .position(|p| *p == path)?;
        let host = if self.hub {
            DOCKER_HUB_HOSTS
                .iter()
                .position(|h| h.eq_ignore_ascii_case(host))?
        } else if host.eq_ignore_ascii_case(&self.host) {
            0
        } else {
            return None;
        };
        // The positions index arrays of at most six entries; they fit in a u8.
        Some((1, scheme, host as u8, path as u8))
    }

    /// The entry of `map` whose key names this registry best.
    fn best<'m, V>(&self, map: &'m BTreeMap<String, V>) -> Option<(&'m str, &'m V)> {
        map.iter()
            .filter_map(|(k, v)| Some((self.rank(k)?, k.as_str(), v)))
            .min_by_key(|(rank, _, _)| *rank)
            .map(|(_, k, v)| (k, v))
    }
}

/// Splits off an `https://` or `http://` prefix (any case): 0 for none, 1 https, 2 http.
fn strip_scheme(s: &str) -> (u8, &str) {
    for (rank, scheme) in [(1, "https://"), (2, "http://")] {
        if s.len() >= scheme.len() && s.is_char_boundary(scheme.len()) {
            let (head, tail) = s.split_at(scheme.len());
            if head.eq_ignore_ascii_case(scheme) {
                return (rank, tail);
            }
        }
    }
    (0, s)
}

/// The credentials Docker would use for `registry` (a host, optionally with port).
///
/// Follows Docker's order: a `credHelpers` entry for the registry runs that helper; otherwise
/// an `auths` entry with inline credentials is used; otherwise, if `credsStore` is set, that
/// helper is asked. A helper that answers "credentials not found" means `Ok(None)`, as does
/// having no configuration at all.
pub async fn credentials_for(
    registry: &str,
    config: Option<&DockerConfig>,
) -> Result<Option<Credentials>, AuthError> {
    credentials_with(registry, config, &HelperRunner::default()).await
}

async fn credentials_with(
    registry: &str,
    config: Option<&DockerConfig>,
    runner: &HelperRunner,
) -> Result<Option<Credentials>, AuthError> {
    let Some(config) = config else {
        return Ok(None);
    };
    let target = Target::new(registry);
    if let Some((_, helper)) = target.best(&config.cred_helpers)
        && !helper.is_empty()
    {
        return runner.get(helper, &target).await;
    }
    if let Some((key, entry)) = target.best(&config.auths)
        && let Some(credentials) = entry.credentials(key)?
    {
        tracing::debug!(registry = %target.host, key, "credentials from docker config");
        return Ok(Some(credentials));
    }
    match config.creds_store.as_deref().filter(|s| !s.is_empty()) {
        Some(helper) => runner.get(helper, &target).await,
        None => Ok(None),
    }
}

/// Runs `docker-credential-<name> get`.
struct HelperRunner {
    /// Where helpers are looked for; `None` means `$PATH`. Tests set it so that they need not
    /// change the process-wide `PATH`.
    dir: Option<PathBuf>,
    /// How long a helper may take before it is killed.
    timeout: Duration,
}

impl Default for HelperRunner {
    fn default() -> Self {
        Self {
            dir: None,
            timeout: HELPER_TIMEOUT,
        }
    }
}

/// A credential helper's answer to `get`.
#[derive(Deserialize)]
struct HelperResponse {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

impl HelperRunner {
    async fn get(&self, helper: &str, target: &Target) -> Result<Option<Credentials>, AuthError> {
        let server = target.server_url();
        // The name comes from a file; it must not turn into a path.
        if !helper
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+'))
        {
            return Err(AuthError::InvalidHelperName {
                helper: helper.to_owned(),
            });
        }
        let program = format!("docker-credential-{helper}");
        let program = match &self.dir {
            Some(dir) => dir.join(program),
            None => PathBuf::from(program),
        };
        tracing::debug!(registry = %server, helper, "asking credential helper");
        let (status, stdout, stderr) = self.run(&program, helper, server).await?;

        let not_found = |out: &[u8]| {
            String::from_utf8_lossy(out)
                .to_ascii_lowercase()
                .contains("credentials not found")
        };
        if !status.success() {
            if not_found(&stdout) || not_found(&stderr) {
                return Ok(None);
            }
            return Err(AuthError::HelperFailed {
                helper: helper.to_owned(),
                registry: server.to_owned(),
                status,
                message: failure_message(&stdout, &stderr),
            });
        }
        match serde_json::from_slice::<HelperResponse>(&stdout) {
            Ok(response) => Ok(credentials_from(&response.username, &response.secret)),
            Err(_) if not_found(&stdout) => Ok(None),
            // As for config.json, serde_json's message could quote the secret.
            Err(e) => Err(AuthError::HelperResponseInvalid {
                helper: helper.to_owned(),
                registry: server.to_owned(),
                line: e.line(),
                column: e.column(),
            }),
        }
    }

    /// Runs the helper with `server` on stdin; returns its status, stdout and stderr.
    async fn run(
        &self,
        program: &Path,
        helper: &str,
        server: &str,
    ) -> Result<(ExitStatus, Vec<u8>, Vec<u8>), AuthError> {
        let io_error = |source| AuthError::HelperIo {
            helper: helper.to_owned(),
            registry: server.to_owned(),
            source,
        };
        let mut command = tokio::process::Command::new(program);
        command
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child =
            spawn(&mut command)
                .await
                .map_err(|source| AuthError::HelperUnavailable {
                    helper: helper.to_owned(),
                    registry: server.to_owned(),
                    source,
                })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let exchange = async {
            let write = async move {
                if let Some(mut stdin) = stdin {
                    // A helper may exit without reading its input (a broken pipe then); what
                    // it answers is what counts. Dropping stdin closes it, marking the end.
                    let _ = stdin.write_all(server.as_bytes()).await;
                    let _ = stdin.shutdown().await;
                }
            };
            let ((), out, err) = tokio::join!(write, read_bounded(stdout), read_bounded(stderr));
            (out, err, child.wait().await)
        };
        let Ok((out, err, status)) = tokio::time::timeout(self.timeout, exchange).await else {
            // Best effort: the child may have exited at the last moment; kill_on_drop backs
            // this up.
            let _ = child.kill().await;
            return Err(AuthError::HelperTimeout {
                helper: helper.to_owned(),
                registry: server.to_owned(),
                timeout: self.timeout,
            });
        };
        let (out, err, status) = (out.map_err(io_error)?, err.map_err(io_error)?, status);
        let status = status.map_err(io_error)?;
        if out.len() > HELPER_OUTPUT_LIMIT || err.len() > HELPER_OUTPUT_LIMIT {
            return Err(AuthError::HelperOutputTooLarge {
                helper: helper.to_owned(),
                registry: server.to_owned(),
                limit: HELPER_OUTPUT_LIMIT,
            });
        }
        Ok((status, out, err))
    }
}

/// Spawns `command`, retrying briefly when the executable is busy: a helper script that was
/// just written (or is being replaced) can be held open for writing by a process forked at
/// that moment, and exec then fails with ETXTBSY (rust-lang/rust#114554).
async fn spawn(command: &mut tokio::process::Command) -> io::Result<tokio::process::Child> {
    let mut attempts = 0;
    loop {
        match command.spawn() {
            Err(e) if e.kind() == io::ErrorKind::ExecutableFileBusy && attempts < 5 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            result => return result,
        }
    }
}

/// Reads all of `reader` up to one byte over the helper output limit, so that the caller can
/// tell a full answer from an overlong one. Dropping the reader closes the pipe, which stops a
/// helper that keeps writing.
async fn read_bounded(reader: Option<impl AsyncRead + Unpin>) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    if let Some(reader) = reader {
        reader
            .take(HELPER_OUTPUT_LIMIT as u64 + 1)
            .read_to_end(&mut buf)
            .await?;
    }
    Ok(buf)
}

/// Why a helper failed, from its stderr, else its stdout (where docker-credential-helpers
/// write their errors). Output that looks like a JSON answer is withheld: it may hold the
/// secret.
fn failure_message(stdout: &[u8], stderr: &[u8]) -> String {
    if !stderr.iter().all(u8::is_ascii_whitespace) {
        return diagnostic(stderr);
    }
    if stdout.trim_ascii_start().starts_with(b"{") {
        return "JSON output withheld".to_owned();
    }
    diagnostic(stdout)
}

/// The first non-blank line of a failing helper's output, cleaned of control characters and
/// shortened, to show the user why it failed.
fn diagnostic(output: &[u8]) -> String {
    let text = String::from_utf8_lossy(output);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty());
    let mut message: String = line
        .unwrap_or("no output")
        .chars()
        .filter(|c| !c.is_control())
        .take(DIAGNOSTIC_LIMIT + 1)
        .collect();
    if message.chars().count() > DIAGNOSTIC_LIMIT {
        message = message.chars().take(DIAGNOSTIC_LIMIT).collect();
        message.push('…');
    }
    message
}

/// An authentication challenge from a registry's `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// Send basic credentials to the registry itself.
    Basic {
        /// The protection space; informative only, and empty when the registry sent none.
        realm: String,
    },
    /// Get a bearer token from the token service at `realm` (the distribution token spec).
    Bearer {
        /// The token service URL.
        realm: String,
        /// The `service` parameter to pass to the token service.
        service: Option<String>,
        /// The scope the registry asks for; may hold several scopes separated by spaces.
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value (RFC 7235), choosing Bearer over Basic when the
/// registry offers several challenges.
///
/// Schemes and parameter names are case-insensitive; values may be quoted (with `\`
/// escapes, and commas inside the quotes) or bare. Other schemes are skipped when Bearer or
/// Basic is offered too.
pub fn parse_www_authenticate(header: &str) -> Result<Challenge, AuthError> {
    let challenges = parse_challenges(header).map_err(|reason| AuthError::MalformedChallenge {
        header: header.to_owned(),
        reason,
    })?;
    if challenges.is_empty() {
        return Err(AuthError::MalformedChallenge {
            header: header.to_owned(),
            reason: "no challenge".to_owned(),
        });
    }
    let find = |scheme: &str| {
        challenges
            .iter()
            .find(|c| c.scheme.eq_ignore_ascii_case(scheme))
    };
    if let Some(bearer) = find("bearer") {
        let realm = bearer
            .param("realm")
            .ok_or_else(|| AuthError::MissingRealm {
                scheme: bearer.scheme.clone(),
            })?;
        return Ok(Challenge::Bearer {
            realm: realm.to_owned(),
            service: bearer.param("service").map(str::to_owned),
            scope: bearer.param("scope").map(str::to_owned),
        });
    }
    if let Some(basic) = find("basic") {
        // RFC 7617 requires a realm, but a client only displays it, and some registries
        // leave it out; refusing them would gain nothing.
        return Ok(Challenge::Basic {
            realm: basic.param("realm").unwrap_or_default().to_owned(),
        });
    }
    Err(AuthError::UnsupportedChallenge {
        schemes: challenges
            .iter()
            .map(|c| c.scheme.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// One challenge as written, before its scheme is interpreted.
struct RawChallenge {
    scheme: String,
    /// Parameters with lower-cased names, in order.
    params: Vec<(String, String)>,
}

impl RawChallenge {
    /// A parameter's value; an empty value counts as absent.
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// A cursor over a header value.
struct Scanner<'a> {
    s: &'a str,
    pos: usize,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn skip_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        // Only ASCII bytes were skipped, so both ends are character boundaries.
        self.s.get(start..self.pos).unwrap_or_default()
    }

    fn skip_ws(&mut self) {
        self.skip_while(|b| b == b' ' || b == b'\t');
    }

    fn token(&mut self) -> &'a str {
        self.skip_while(is_tchar)
    }

    fn unexpected(&self) -> String {
        match self.s.get(self.pos..).and_then(|rest| rest.chars().next()) {
            Some(c) => format!("unexpected {c:?} at byte {}", self.pos),
            None => "unexpected end".to_owned(),
        }
    }

    /// Whether a token68 (`Basic dXNlcjpwYXNz`) starts here; if so, skips it.
    fn token68(&mut self) -> bool {
        let start = self.pos;
        if self.skip_while(is_token68_char).is_empty() {
            return false;
        }
        self.skip_while(|b| b == b'=');
        self.skip_ws();
        if matches!(self.peek(), None | Some(b',')) {
            return true;
        }
        self.pos = start;
        false
    }

    /// A quoted-string, the cursor on its opening quote.
    fn quoted(&mut self) -> Result<String, String> {
        let start = self.pos;
        self.pos += 1;
        let mut value = String::new();
        let mut escaped = false;
        let rest = self.s.get(self.pos..).unwrap_or_default();
        for (i, c) in rest.char_indices() {
            if escaped {
                value.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                self.pos += i + 1;
                return Ok(value);
            } else {
                value.push(c);
            }
        }
        Err(format!("unterminated quoted string at byte {start}"))
    }

    /// A bare value. RFC 7235 allows only a token; registries have been seen to send URLs,
    /// so anything up to a comma or space is taken.
    fn bare(&mut self) -> Result<String, String> {
        let value = self.skip_while(|b| !matches!(b, b',' | b' ' | b'\t' | b'"'));
        if value.is_empty() {
            return Err(self.unexpected());
        }
        Ok(value.to_owned())
    }
}

/// Splits a header into challenges: `1#( scheme [ 1*SP ( token68 / #auth-param ) ] )`.
fn parse_challenges(header: &str) -> Result<Vec<RawChallenge>, String> {
    let mut p = Scanner { s: header, pos: 0 };
    let mut challenges = Vec::new();
    loop {
        p.skip_while(|b| matches!(b, b' ' | b'\t' | b','));
        if p.peek().is_none() {
            return Ok(challenges);
        }
        let scheme = p.token();
        if scheme.is_empty() {
            return Err(p.unexpected());
        }
        let mut challenge = RawChallenge {
            scheme: scheme.to_owned(),
            params: Vec::new(),
        };
        match p.peek() {
            None | Some(b',') => {
                challenges.push(challenge);
                continue;
            }
            Some(b' ' | b'\t') => p.skip_ws(),
            Some(_) => return Err(p.unexpected()),
        }
        if p.token68() {
            challenges.push(challenge);
            continue;
        }
        loop {
            p.skip_ws();
            match p.peek() {
                None => break,
                Some(b',') => {
                    p.pos += 1;
                    continue;
                }
                Some(_) => {}
            }
            let start = p.pos;
            let name = p.token();
            if name.is_empty() {
                return Err(p.unexpected());
            }
            p.skip_ws();
            if p.peek() != Some(b'=') {
                // A token without `=` starts the next challenge.
                p.pos = start;
                break;
            }
            p.pos += 1;
            p.skip_ws();
            let value = if p.peek() == Some(b'"') {
                p.quoted()?
            } else {
                p.bare()?
            };
            let name = name.to_ascii_lowercase();
            // Two realms would leave it open where credentials go; refuse to guess.
            if challenge.params.iter().any(|(n, _)| *n == name) {
                return Err(format!("parameter {name} given twice"));
            }
            challenge.params.push((name, value));
            p.skip_ws();
            match p.peek() {
                None => break,
                Some(b',') => p.pos += 1,
                Some(_) => return Err(p.unexpected()),
            }
        }
        challenges.push(challenge);
    }
}

/// The token-service URL for `realm`: `realm?service=...&scope=...&scope=...`, each value
/// percent-encoded; a query already in the realm is kept.
pub fn token_request_url(
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
) -> Result<reqwest::Url, AuthError> {
    let mut url = reqwest::Url::parse(realm).map_err(|e| AuthError::InvalidRealm {
        realm: realm.to_owned(),
        source: Box::new(e),
    })?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(AuthError::UnsupportedRealmScheme {
            realm: realm.to_owned(),
            scheme: url.scheme().to_owned(),
        });
    }
    let service = service.filter(|s| !s.is_empty());
    let scopes = scopes.iter().filter(|s| !s.is_empty());
    if service.is_some() || scopes.clone().next().is_some() {
        // Only when there is something to add: `query_pairs_mut` leaves a bare `?` otherwise.
        let mut query = url.query_pairs_mut();
        if let Some(service) = service {
            query.append_pair("service", service);
        }
        for scope in scopes {
            query.append_pair("scope", scope);
        }
    }
    Ok(url)
}

/// A token service's answer (distribution token spec, and its OAuth2 variant).
///
/// `Debug` never prints the tokens.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
pub struct TokenResponse {
    /// The bearer token.
    #[serde(default)]
    pub token: Option<String>,
    /// The same token under its OAuth2 name; some services send only this one.
    #[serde(default)]
    pub access_token: Option<String>,
    /// Seconds the token stays valid after `issued_at`; 60 when absent.
    #[serde(default, deserialize_with = "lenient_seconds")]
    pub expires_in: Option<i64>,
    /// When the token was issued (RFC 3339). Not used for [`lifetime`](Self::lifetime):
    /// comparing it with the local clock would only import the server's clock skew.
    #[serde(default)]
    pub issued_at: Option<String>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("TokenResponse")
            .field("token", &redacted(&self.token))
            .field("access_token", &redacted(&self.access_token))
            .field("expires_in", &self.expires_in)
            .field("issued_at", &self.issued_at)
            .finish()
    }
}

/// Accepts any JSON number of seconds (some services send `300.0`).
fn lenient_seconds<'de, D>(deserializer: D) -> Result<Option<i64>, D::Error>
where
    D: Deserializer<'de>,
{
    let seconds = Option::<f64>::deserialize(deserializer)?;
    // `as` saturates at the i64 bounds and maps NaN to 0; both are fine for a lifetime.
    Ok(seconds.map(|s| s as i64))
}

impl TokenResponse {
    /// The bearer token: `token`, else `access_token`; `None` when neither is set.
    pub fn bearer(&self) -> Option<&str> {
        [&self.token, &self.access_token]
            .into_iter()
            .filter_map(|t| t.as_deref())
            .find(|t| !t.is_empty())
    }

    /// How long the token may be reused: `expires_in` (60 s when absent), at most an hour,
    /// less a safety margin of ten seconds; zero when the service says it is already expired.
    pub fn lifetime(&self) -> Duration {
        let seconds = match self.expires_in {
            None => DEFAULT_TOKEN_LIFETIME_SECS,
            Some(s) => u64::try_from(s).unwrap_or(0).min(MAX_TOKEN_LIFETIME_SECS),
        };
        Duration::from_secs(seconds.saturating_sub(TOKEN_SAFETY_MARGIN_SECS))
    }
}

/// The token scope for `repository`: `repository:<repo>:pull`, or `...:pull,push`.
pub fn scope_for(repository: &str, push: bool) -> String {
    let actions = if push { "pull,push" } else { "pull" };
    format!("repository:{repository}:{actions}")
}

/// Why credentials or a challenge could not be worked out. No message contains a secret.
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum AuthError {
    /// The docker config exists but could not be read.
    #[error("cannot read docker config {}", path.display())]
    ConfigUnreadable {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The docker config is implausibly large.
    #[error("docker config {} is larger than {limit} bytes", path.display())]
    ConfigTooLarge {
        /// The config file.
        path: PathBuf,
        /// The size limit in bytes.
        limit: u64,
    },
    /// The docker config is not JSON of the expected shape. Only the position is kept: the
    /// parser's message could quote a secret.
    #[error(
        "docker config {} is not valid JSON of the expected shape (line {line}, column {column})",
        path.display()
    )]
    ConfigInvalid {
        /// The config file.
        path: PathBuf,
        /// The line of the error, from 1.
        line: usize,
        /// The column of the error, from 1.
        column: usize,
    },
    /// An `auths` entry's `auth` field is not base64 of `user:password`.
    #[error("the auth field for {server} in the docker config is not base64 of user:password")]
    InvalidAuthField {
        /// The `auths` key.
        server: String,
    },
    /// A `credHelpers`/`credsStore` value is not a plain helper name.
    #[error("credential helper name {helper:?} in the docker config is not a plain name")]
    InvalidHelperName {
        /// The configured name.
        helper: String,
    },
    /// The credential helper could not be started (usually: not installed).
    #[error("cannot run credential helper docker-credential-{helper} for {registry}")]
    HelperUnavailable {
        /// The helper name (after `docker-credential-`).
        helper: String,
        /// The server URL asked about.
        registry: String,
        /// The spawn error.
        #[source]
        source: io::Error,
    },
    /// Talking to the credential helper failed.
    #[error("cannot talk to credential helper docker-credential-{helper} for {registry}")]
    HelperIo {
        /// The helper name.
        helper: String,
        /// The server URL asked about.
        registry: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The credential helper did not answer in time and was killed.
    #[error(
        "credential helper docker-credential-{helper} did not answer for {registry} within {timeout:?}"
    )]
    HelperTimeout {
        /// The helper name.
        helper: String,
        /// The server URL asked about.
        registry: String,
        /// The time allowed.
        timeout: Duration,
    },
    /// The credential helper wrote more than a credential helper plausibly needs.
    #[error(
        "credential helper docker-credential-{helper} wrote more than {limit} bytes for {registry}"
    )]
    HelperOutputTooLarge {
        /// The helper name.
        helper: String,
        /// The server URL asked about.
        registry: String,
        /// The output limit in bytes.
        limit: usize,
    },
    /// The credential helper failed for another reason than missing credentials.
    #[error(
        "credential helper docker-credential-{helper} failed for {registry} ({status}): {message}"
    )]
    HelperFailed {
        /// The helper name.
        helper: String,
        /// The server URL asked about.
        registry: String,
        /// How it exited.
        status: ExitStatus,
        /// The first line of its error output, shortened.
        message: String,
    },
    /// The credential helper answered something other than its JSON. Only the position is
    /// kept: the parser's message could quote the secret.
    #[error(
        "credential helper docker-credential-{helper} gave an invalid answer for {registry} (line {line}, column {column})"
    )]
    HelperResponseInvalid {
        /// The helper name.
        helper: String,
        /// The server URL asked about.
        registry: String,
        /// The line of the error, from 1.
        line: usize,
        /// The column of the error, from 1.
        column: usize,
    },
    /// The `WWW-Authenticate` header does not follow RFC 7235.
    #[error("malformed WWW-Authenticate header {header:?}: {reason}")]
    MalformedChallenge {
        /// The header value.
        header: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The registry offers neither Bearer nor Basic authentication.
    #[error("unsupported authentication scheme in WWW-Authenticate: {schemes}")]
    UnsupportedChallenge {
        /// The schemes offered, comma-separated.
        schemes: String,
    },
    /// A challenge lacks the realm it needs.
    #[error("{scheme} challenge without a realm")]
    MissingRealm {
        /// The scheme as the registry wrote it.
        scheme: String,
    },
    /// The token realm is not a URL.
    #[error("token realm {realm:?} is not a valid URL")]
    InvalidRealm {
        /// The realm.
        realm: String,
        /// The URL parser's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The token realm is a URL, but not an HTTP(S) one.
    #[error("token realm {realm:?} has scheme {scheme}; only http and https are supported")]
    UnsupportedRealmScheme {
        /// The realm.
        realm: String,
        /// Its scheme.
        scheme: String,
    },
}

#[cfg(test)]
mod tests {
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
                scope_for("library/alpine", false),
                scope_for("me/app", true),
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

        let t: TokenResponse = serde_json::from_str(
            r#"{"token": "", "access_token": "at", "expires_in": 99999999.5}"#,
        )
        .unwrap();
        assert_eq!(t.bearer(), Some("at"));
        assert_eq!(t.lifetime(), Duration::from_secs(3590));

        let t: TokenResponse = serde_json::from_str(r#"{"expires_in": -5}"#).unwrap();
        assert_eq!(t.bearer(), None);
        assert_eq!(t.lifetime(), Duration::ZERO);
    }

    #[test]
    fn scopes() {
        assert_eq!(scope_for("a/b", false), "repository:a/b:pull");
        assert_eq!(scope_for("a/b", true), "repository:a/b:pull,push");
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
}

/// Entry points for the fuzz targets in `fuzz/` (re-exported as `signet_registry::fuzzing`).
#[cfg(feature = "fuzzing")]
pub(crate) mod fuzzing {
    use super::*;

    /// Reads `config.json` bytes as [`DockerConfig::load`] does, then picks the inline
    /// credentials Docker would use for `registry`; credential helpers are looked up but not run.
    pub fn docker_config_credentials(
        bytes: &[u8],
        registry: &str,
    ) -> Result<Option<Credentials>, AuthError> {
        let config = DockerConfig::parse(bytes, Path::new("config.json"))?;
        let target = Target::new(registry);
        let _ = target.server_url();
        let _ = target.best(&config.cred_helpers);
        match target.best(&config.auths) {
            Some((key, entry)) => entry.credentials(key),
            None => Ok(None),
        }
    }
}
