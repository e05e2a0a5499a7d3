//! Docker's `config.json`: where it is, what it holds, and which of its entries names a
//! registry, the way the Docker CLI matches them.

use std::collections::BTreeMap;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Deserializer};
use signet_core::reference::{DOCKER_HUB_HOSTS, is_docker_hub};
use zeroize::Zeroizing;

use super::AuthError;
use super::credentials::{Credentials, IDENTITY_TOKEN_USERNAME};
use super::helpers::HelperRunner;

/// The key Docker uses for Docker Hub in `auths` and `credHelpers`, and the server URL it
/// hands to credential helpers for Docker Hub.
pub const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// The largest `config.json` read; real ones are a few kilobytes.
const CONFIG_SIZE_LIMIT: u64 = 4 * 1024 * 1024;

/// Where Docker keeps its client configuration: `$DOCKER_CONFIG/config.json`, else
/// `$HOME/.docker/config.json`; `None` when neither variable is set.
pub fn docker_config_path() -> Option<PathBuf> {
    config_path_from(
        std::env::var_os("DOCKER_CONFIG"),
        std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE")),
    )
}

/// [`docker_config_path`] without the environment, so tests need not mutate it.
pub(super) fn config_path_from(
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
/// `Debug` prints the user name but never `auth`, the password or the identity token: they
/// are [`SecretString`]s.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AuthEntry {
    /// Base64 of `user:password`, as `docker login` writes it.
    #[serde(default)]
    pub auth: Option<SecretString>,
    /// A user name given on its own.
    #[serde(default)]
    pub username: Option<String>,
    /// A password given on its own; secret.
    #[serde(default)]
    pub password: Option<SecretString>,
    /// An identity token (OAuth2 refresh token); secret.
    #[serde(default, alias = "identityToken")]
    pub identitytoken: Option<SecretString>,
}

impl PartialEq for AuthEntry {
    fn eq(&self, other: &Self) -> bool {
        exposed(&self.auth) == exposed(&other.auth)
            && self.username == other.username
            && exposed(&self.password) == exposed(&other.password)
            && exposed(&self.identitytoken) == exposed(&other.identitytoken)
    }
}

impl Eq for AuthEntry {}

impl AuthEntry {
    /// The credentials this entry holds inline, if any; `server` is its key, for errors.
    ///
    /// An identity token wins over a password, as in Docker.
    pub fn credentials(&self, server: &str) -> Result<Option<Credentials>, AuthError> {
        if let Some(token) = exposed(&self.identitytoken).filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials::IdentityToken(token.into())));
        }
        if let Some(auth) = exposed(&self.auth).map(str::trim).filter(|a| !a.is_empty()) {
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
            let decoded = Zeroizing::new(String::from_utf8(decoded).map_err(|_| invalid())?);
            let (username, password) = decoded.split_once(':').ok_or_else(invalid)?;
            // Docker trims NULs that some Windows tools leave at the end of the password.
            let password = password.trim_end_matches('\0');
            return Ok(credentials_from(username, password));
        }
        let username = self.username.as_deref().unwrap_or_default();
        let password = exposed(&self.password).unwrap_or_default();
        Ok(credentials_from(username, password))
    }
}

fn exposed(secret: &Option<SecretString>) -> Option<&str> {
    secret.as_ref().map(|s| s.expose_secret())
}

/// Credentials from a user name and secret as Docker stores them: `<token>` marks an identity
/// token, and an empty pair means none.
pub(super) fn credentials_from(username: &str, secret: &str) -> Option<Credentials> {
    if username == IDENTITY_TOKEN_USERNAME {
        return (!secret.is_empty()).then(|| Credentials::IdentityToken(secret.into()));
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

    pub(super) fn parse(bytes: &[u8], path: &Path) -> Result<Self, AuthError> {
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
pub(super) struct Target {
    /// The host (and port), without scheme or path.
    pub(super) host: String,
    /// Whether the host is one of Docker Hub's names.
    pub(super) hub: bool,
}

impl Target {
    pub(super) fn new(registry: &str) -> Self {
        let (_, rest) = strip_scheme(registry.trim());
        let host = rest.split('/').next().unwrap_or(rest);
        let hub = is_docker_hub(host);
        Self {
            host: host.to_owned(),
            hub,
        }
    }

    /// The server URL Docker uses as the key and hands to credential helpers.
    pub(super) fn server_url(&self) -> &str {
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

pub(super) async fn credentials_with(
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
