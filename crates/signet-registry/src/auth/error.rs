//! The error of this module.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

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
    /// The registry host given for explicit credentials is not a plain `host[:port]`.
    #[error("invalid registry host {host:?} for the credentials: {reason}")]
    InvalidCredentialsHost {
        /// The host as given.
        host: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Explicit credentials were given, the command names images on several registries, and
    /// nobody said which one the credentials are for.
    #[error(
        "credentials were given for one registry, but several are named ({}); say which one \
         they are for",
        registries.join(", ")
    )]
    AmbiguousCredentialsHost {
        /// The registries named, in order of appearance.
        registries: Vec<String>,
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
