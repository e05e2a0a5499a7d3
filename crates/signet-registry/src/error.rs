//! The store's one error type.

use std::time::Duration;

use signet_core::digest::Digest;

use crate::auth::AuthError;

/// Everything that can go wrong talking to a registry.
///
/// Messages are lowercase, name the registry and the object, and never contain credentials.
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum RegistryError {
    /// The registry could not be reached or the connection failed.
    #[error("cannot reach registry {registry}: {reason}")]
    Unreachable {
        /// The registry host.
        registry: String,
        /// The transport error, flattened to text (it may be a chain).
        reason: String,
    },
    /// The registry answered with an unexpected status.
    #[error("registry {registry} answered {status} for {what}{}", detail(.message))]
    Status {
        /// The registry host.
        registry: String,
        /// What was asked for.
        what: String,
        /// The HTTP status code.
        status: u16,
        /// The registry's error message, if it gave one (bounded).
        message: String,
    },
    /// The object does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was asked for.
        what: String,
    },
    /// The credentials were refused, or none were available where the registry needs them.
    #[error("authentication to {registry} failed: {reason}")]
    Authentication {
        /// The registry host.
        registry: String,
        /// Why, without any secret.
        reason: String,
    },
    /// Credentials could not be found or a token could not be obtained.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Content whose bytes do not hash to the digest they were fetched by.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was fetched.
        what: String,
        /// The digest asked for.
        expected: Digest,
        /// The digest of the bytes received.
        actual: Digest,
    },
    /// A body larger than the limit for its kind.
    #[error("{what} is larger than the {limit}-byte limit")]
    TooLarge {
        /// What was fetched.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// A body that is not what it should be (bad JSON, wrong shape).
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was fetched.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// More pages or entries than the limit.
    #[error("{what}: more than {limit} {unit}; giving up")]
    TooMany {
        /// What was listed.
        what: String,
        /// The limit.
        limit: usize,
        /// Pages, referrers, tags.
        unit: &'static str,
    },
    /// The operation's deadline passed.
    #[error("{operation} did not finish within {}s", .deadline.as_secs_f32())]
    DeadlineExceeded {
        /// What was being done.
        operation: String,
        /// The deadline.
        deadline: Duration,
    },
    /// The fallback referrers index could not be brought to include our descriptor.
    #[error("could not update the referrers index {tag} after {attempts} attempts: {reason}")]
    IndexUpdate {
        /// The fallback tag.
        tag: String,
        /// Attempts made.
        attempts: u32,
        /// The last obstacle.
        reason: String,
    },
    /// An OCI image layout (directory or tarball) that is missing, malformed or unsafe to
    /// read, or a file in it that cannot be read or written.
    #[error("{layout}: {reason}")]
    Layout {
        /// The layout: `oci:PATH` or `oci-archive:FILE`.
        layout: String,
        /// What is wrong, naming the file, entry or blob.
        reason: String,
        /// The I/O error behind it, if any.
        #[source]
        source: Option<std::io::Error>,
    },
    /// The key could not sign what was to be pushed (a device key, for example, whose token
    /// refused); nothing was written.
    #[error(transparent)]
    Sign(#[from] signet_core::keys::SignError),
    /// A reference or option signet cannot use (for example a tag where a digest is needed).
    #[error("{0}")]
    Usage(String),
    /// No rustls crypto provider is installed for the process. The workspace builds rustls
    /// without a default one, and choosing it is the application's call, not a library's.
    #[error(
        "no TLS crypto provider is installed: the program must call \
         rustls::crypto::ring::default_provider().install_default() before building a client"
    )]
    NoCryptoProvider,
}

fn detail(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

impl RegistryError {
    /// Whether retrying the same request later may succeed (429, 5xx, connection trouble).
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Unreachable { .. } => true,
            RegistryError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}
