//! Credentials, and the binding of explicitly given ones to the one registry they are for.

use std::fmt;

use secrecy::{ExposeSecret as _, SecretString};

use super::AuthError;
use super::docker_config::Target;

/// (an OAuth2 refresh token) rather than a password.
pub(super) const IDENTITY_TOKEN_USERNAME: &str = "<token>";

/// Credentials for one registry.
///
/// `Debug` prints the user name but never the password or token.
#[derive(Clone)]
pub enum Credentials {
    /// A user name and password (or a personal access token used as one).
    Basic {
        /// The user name.
        username: String,
        /// The password; secret.
        password: SecretString,
    },
    /// An identity token: an OAuth2 refresh token that Docker stores with the user name
    /// `<token>` and that is exchanged for a bearer token with `grant_type=refresh_token`.
    IdentityToken(SecretString),
}

impl Credentials {
    /// Basic credentials from a user name and password.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self::Basic {
            username: username.into(),
            password: SecretString::from(password.into()),
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
    // By hand rather than derived: the user name helps debugging and is shown; the secret is
    // a `SecretString`, which never prints.
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

impl PartialEq for Credentials {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                Self::Basic { username, password },
                Self::Basic {
                    username: other_username,
                    password: other_password,
                },
            ) => {
                username == other_username
                    && password.expose_secret() == other_password.expose_secret()
            }
            (Self::IdentityToken(a), Self::IdentityToken(b)) => {
                a.expose_secret() == b.expose_secret()
            }
            _ => false,
        }
    }
}

impl Eq for Credentials {}

/// Credentials given for one registry, such as `--registry-username/--registry-password`:
/// they go to that registry and to no other.
///
/// Why a type: credentials that apply "to whatever registry asks" are handed to any registry a
/// pod or a `/v1/verify` caller names, an attacker's included (issue 12). Binding them to a
/// host when they are given makes that impossible to get wrong later.
///
/// Hosts compare as Docker compares them: case-insensitively, the port included (`r.example`
/// and `r.example:443` are different registries), and Docker Hub's names (`docker.io`,
/// `index.docker.io`, `registry-1.docker.io`) as one.
///
/// ```
/// use signet_registry::auth::{BoundCredentials, Credentials};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let bound = BoundCredentials::new("ghcr.io", Credentials::basic("ci", "secret"))?;
/// assert!(bound.credentials_for("GHCR.io").is_some());
/// assert!(bound.credentials_for("evil.example").is_none());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundCredentials {
    host: String,
    credentials: Credentials,
}

impl BoundCredentials {
    /// `credentials` for the registry `host` (`host[:port]`, nothing else: no scheme, no
    /// path, so that what the user wrote cannot be read two ways).
    pub fn new(host: &str, credentials: Credentials) -> Result<Self, AuthError> {
        let invalid = |reason: &str| AuthError::InvalidCredentialsHost {
            host: host.to_owned(),
            reason: reason.to_owned(),
        };
        if host.is_empty() {
            return Err(invalid("it is empty"));
        }
        if host.contains("://") {
            return Err(invalid("give the host without a scheme, e.g. ghcr.io"));
        }
        if host.contains('/') {
            return Err(invalid(
                "give the registry host only, without a repository path; credentials apply to \
                 the whole registry",
            ));
        }
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        {
            return Err(invalid("it is not a host[:port]"));
        }
        Ok(Self {
            host: host.to_owned(),
            credentials,
        })
    }

    /// The registry the credentials are for, as given.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The credentials if `registry` (a host, optionally with port) is the one they are
    /// bound to; `None` for every other registry.
    pub fn credentials_for(&self, registry: &str) -> Option<&Credentials> {
        same_registry(&self.host, registry).then_some(&self.credentials)
    }
}

/// Whether two registry hosts (with optional ports) name the same registry, as Docker keys
/// its credentials: case-insensitively, ports included, Docker Hub's names as one.
pub fn same_registry(a: &str, b: &str) -> bool {
    let (a, b) = (Target::new(a), Target::new(b));
    (a.hub && b.hub) || a.host.eq_ignore_ascii_case(&b.host)
}

/// Binds explicitly given credentials to one registry: `host` when the user named one,
/// otherwise the one registry among `named` (the registries of the images on the command
/// line). Several different registries and no `host` is [`AuthError::AmbiguousCredentialsHost`]:
/// which one the user meant is theirs to say, never a guess. No registry at all (an image in
/// an OCI layout) binds them to nothing: `Ok(None)`, and no registry gets them.
pub fn bind_credentials(
    credentials: Credentials,
    host: Option<&str>,
    named: &[&str],
) -> Result<Option<BoundCredentials>, AuthError> {
    if let Some(host) = host {
        return BoundCredentials::new(host, credentials).map(Some);
    }
    let mut registries: Vec<&str> = Vec::new();
    for registry in named {
        if !registries.iter().any(|r| same_registry(r, registry)) {
            registries.push(registry);
        }
    }
    match registries.as_slice() {
        [] => Ok(None),
        [one] => BoundCredentials::new(one, credentials).map(Some),
        several => Err(AuthError::AmbiguousCredentialsHost {
            registries: several.iter().map(|r| r.to_string()).collect(),
        }),
    }
}
