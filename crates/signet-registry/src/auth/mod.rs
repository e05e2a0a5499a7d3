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
//! use signet_registry::auth::{
//!     Access, Challenge, parse_www_authenticate, scope_for, token_request_url,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let header = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io""#;
//! let Challenge::Bearer { realm, service, .. } = parse_www_authenticate(header)? else {
//!     return Err("expected a bearer challenge".into());
//! };
//! let url = token_request_url(&realm, service.as_deref(), &[scope_for("library/alpine", Access::Pull)])?;
//! assert_eq!(
//!     url.as_str(),
//!     "https://auth.docker.io/token?service=registry.docker.io&scope=repository%3Alibrary%2Falpine%3Apull"
//! );
//! # Ok(())
//! # }
//! ```

mod challenge;
mod credentials;
mod docker_config;
mod error;
mod helpers;
#[cfg(test)]
mod tests;
mod token;

pub use challenge::{Challenge, parse_www_authenticate};
pub use credentials::{BoundCredentials, Credentials, bind_credentials, same_registry};
pub use docker_config::{
    AuthEntry, DOCKER_HUB_SERVER, DockerConfig, credentials_for, docker_config_path,
};
pub use error::AuthError;
pub use token::{Access, TokenResponse, scope_for, token_request_url};

#[cfg(feature = "fuzzing")]
pub(crate) use docker_config::fuzzing;
