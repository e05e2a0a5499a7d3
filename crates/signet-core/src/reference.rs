//! Image references (`registry/repository[:tag][@digest]`), parsed with Docker's grammar.
//!
//! The grammar and the Docker Hub normalisation follow
//! [distribution/reference](https://github.com/distribution/reference) (`reference.go`,
//! `regexp.go`, `normalize.go`): `alpine` means `docker.io/library/alpine`, `user/app` means
//! `docker.io/user/app`, and the first path component names a registry only if it contains `.`
//! or `:` or is `localhost`. Where distribution is lenient in ways that would surprise a policy
//! author, this parser is stricter and says why (see [`ImageRef`]'s `FromStr`).
//!
//! No tag means no tag: `alpine` does not become `alpine:latest` here; callers decide.
//!
//! ```
//! use signet_core::reference::ImageRef;
//!
//! let r: ImageRef = "alpine:3.19".parse().unwrap();
//! assert_eq!(r.to_string(), "docker.io/library/alpine:3.19");
//! assert_eq!(r.api_host(), "registry-1.docker.io");
//! assert_eq!(r.repository(), "library/alpine");
//! assert!(r.pinned().is_none());
//!
//! let err = "Foo/bar".parse::<ImageRef>().unwrap_err();
//! assert_eq!(err.to_string(), r#"invalid reference "Foo/bar": repository name must be lowercase"#);
//! ```

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// The registry name Docker Hub references are normalised to.
pub const DOCKER_HUB: &str = "docker.io";
/// Docker Hub's legacy name, normalised to [`DOCKER_HUB`].
const DOCKER_HUB_LEGACY: &str = "index.docker.io";
/// The host that actually serves Docker Hub's registry API.
const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
/// The namespace of Docker Hub's official images.
const DOCKER_HUB_OFFICIAL_NAMESPACE: &str = "library/";
/// Every name of Docker Hub, the canonical one first (the Docker CLI prefers credentials
/// stored under the earlier ones).
pub const DOCKER_HUB_HOSTS: [&str; 3] = [DOCKER_HUB, DOCKER_HUB_LEGACY, DOCKER_HUB_API_HOST];
/// distribution's `NameTotalLengthMax`: the longest `registry/repository`.
const NAME_MAX: usize = 255;
/// The longest tag (`[\w][\w.-]{0,127}`).
const TAG_MAX: usize = 128;

/// Why a string is not a valid image reference. Every message quotes the input.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum ReferenceError {
    /// The reference was empty.
    #[error("invalid reference \"\": empty image reference")]
    Empty,
    /// The reference names a registry (or only a tag or digest) but no repository.
    #[error("invalid reference {input:?}: missing repository name")]
    MissingRepository {
        /// The reference as given.
        input: String,
    },
    /// The reference is 64 hex characters, which Docker reads as an image id, not a name.
    #[error(
        "invalid reference {input:?}: a 64-character hex string is an image id, not a repository name"
    )]
    LooksLikeImageId {
        /// The reference as given.
        input: String,
    },
    /// The repository path contains uppercase letters.
    #[error("invalid reference {input:?}: repository name must be lowercase")]
    RepositoryNotLowercase {
        /// The reference as given.
        input: String,
    },
    /// A character that the reference grammar never allows in this part.
    #[error("invalid reference {input:?}: invalid character {character:?} in {part}")]
    InvalidCharacter {
        /// The reference as given.
        input: String,
        /// The offending character.
        character: char,
        /// Which part of the reference it was in: `"repository"` or `"tag"`.
        part: &'static str,
    },
    /// The repository path has an empty component (leading, trailing or doubled `/`).
    #[error(
        "invalid reference {input:?}: empty path component (leading, trailing or double \"/\")"
    )]
    EmptyPathComponent {
        /// The reference as given.
        input: String,
    },
    /// A repository path component breaks `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
    #[error(
        "invalid reference {input:?}: invalid path component {component:?}: it must start and end \
         with a lowercase letter or digit, with single \".\", \"_\" or \"__\" or runs of \"-\" between"
    )]
    InvalidPathComponent {
        /// The reference as given.
        input: String,
        /// The offending component.
        component: String,
    },
    /// `registry/repository` is longer than 255 characters.
    #[error(
        "invalid reference {input:?}: repository name too long: {length} characters, at most {NAME_MAX}"
    )]
    NameTooLong {
        /// The reference as given.
        input: String,
        /// The length of the normalised `registry/repository`.
        length: usize,
    },
    /// A `:` with nothing after it.
    #[error("invalid reference {input:?}: empty tag after \":\"")]
    EmptyTag {
        /// The reference as given.
        input: String,
    },
    /// The tag starts with `.` or `-`.
    #[error(
        "invalid reference {input:?}: invalid tag {tag:?}: a tag cannot start with \".\" or \"-\""
    )]
    InvalidTag {
        /// The reference as given.
        input: String,
        /// The offending tag.
        tag: String,
    },
    /// The tag is longer than 128 characters.
    #[error("invalid reference {input:?}: tag too long: {length} characters, at most {TAG_MAX}")]
    TagTooLong {
        /// The reference as given.
        input: String,
        /// The tag's length.
        length: usize,
    },
    /// The part after `@` is not a valid digest; the cause says why.
    #[error("invalid reference {input:?}: invalid digest")]
    InvalidDigest {
        /// The reference as given.
        input: String,
        /// Why the digest did not parse.
        #[source]
        source: DigestError,
    },
    /// The registry hostname breaks the DNS label grammar.
    #[error(
        "invalid reference {input:?}: invalid registry host {host:?}: labels are letters, digits \
         and inner \"-\", separated by single \".\""
    )]
    InvalidHostname {
        /// The reference as given.
        input: String,
        /// The offending host (without port).
        host: String,
    },
    /// The registry is written as an IP address, but not a valid one.
    #[error("invalid reference {input:?}: invalid IP address {host:?} in registry host")]
    InvalidIpAddress {
        /// The reference as given.
        input: String,
        /// The offending host (without port).
        host: String,
    },
    /// The registry port is not a number from 1 to 65535.
    #[error(
        "invalid reference {input:?}: invalid registry port {port:?}: must be a number from 1 to 65535"
    )]
    InvalidPort {
        /// The reference as given.
        input: String,
        /// The port as written.
        port: String,
    },
    /// A pinned reference was required but the reference has no digest.
    #[error("invalid reference {input:?}: missing digest (expected \"…@sha256:<hex>\")")]
    MissingDigest {
        /// The reference as given.
        input: String,
    },
}

/// A parsed, normalised image reference: `registry/repository[:tag][@digest]`.
///
/// `Display` prints the canonical form (`docker.io/library/alpine:3.19`), which parses back to
/// an equal value. Serde uses the same string.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageRef {
    /// The registry as written (with port if any), after Docker Hub normalisation:
    /// `docker.io`, `localhost:5000`, `[::1]:5000`, `ghcr.io`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path within the registry, e.g. `library/alpine`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if the reference had one. No tag is never read as `latest` here.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference had one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The host (and port) to contact for the registry API: `registry-1.docker.io` for Docker
    /// Hub, otherwise the registry as written.
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    /// This reference pinned to `digest`, keeping its tag for display.
    ///
    /// Any digest the reference already carried is replaced: a caller that resolved a reference
    /// which already had a digest must check that the two agree before calling this.
    pub fn with_digest(&self, digest: Digest) -> PinnedRef {
        PinnedRef {
            image: self.without_digest(),
            digest,
        }
    }

    /// This reference with its tag replaced by `tag` (checked against the tag grammar).
    pub fn with_tag(&self, tag: &str) -> Result<ImageRef, ReferenceError> {
        let input = format!("{}:{tag}", self.name());
        check_tag(&input, tag)?;
        Ok(Self {
            tag: Some(tag.to_owned()),
            ..self.clone()
        })
    }

    /// The reference as a [`PinnedRef`] if it carries a digest.
    pub fn pinned(&self) -> Option<PinnedRef> {
        self.digest.clone().map(|digest| self.with_digest(digest))
    }

    fn without_digest(&self) -> Self {
        Self {
            digest: None,
            ..self.clone()
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;

    /// Parses and normalises a reference.
    ///
    /// Stricter than distribution where its leniency would mislead: a single component that
    /// looks like a host (`localhost`, `localhost:5000`, `example.com`) is an error rather than
    /// `docker.io/library/localhost:5000`; an uppercase first component (`Foo/bar`) stays a Docker
    /// Hub path and fails as not lowercase rather than becoming a registry named `Foo`; ports must
    /// be 1–65535; an all-numeric host must be a valid IPv4 address; an IPv6 host must parse;
    /// only sha256 and sha512 digests are accepted.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        parse(input)
    }
}

/// A reference that always carries a digest: what signet verifies and what a decision names.
///
/// The tag, if known, is kept for display only; the digest is what identifies the content.
/// `Display` prints `registry/repository[:tag]@digest`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PinnedRef {
    /// The name and tag; its own digest is always `None` (the digest lives in `digest`).
    image: ImageRef,
    digest: Digest,
}

impl PinnedRef {
    /// The digest this reference is pinned to.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The registry, as in [`ImageRef::registry`].
    pub fn registry(&self) -> &str {
        &self.image.registry
    }

    /// The repository path, as in [`ImageRef::repository`].
    pub fn repository(&self) -> &str {
        &self.image.repository
    }

    /// The tag the reference was known by, if any (for display, not identity).
    pub fn tag(&self) -> Option<&str> {
        self.image.tag()
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        self.image.name()
    }

    /// The host to contact, as in [`ImageRef::api_host`].
    pub fn api_host(&self) -> &str {
        self.image.api_host()
    }

    /// The same reference as an [`ImageRef`] carrying the digest.
    pub fn to_image_ref(&self) -> ImageRef {
        ImageRef {
            digest: Some(self.digest.clone()),
            ..self.image.clone()
        }
    }
}

impl From<PinnedRef> for ImageRef {
    fn from(pinned: PinnedRef) -> Self {
        ImageRef {
            digest: Some(pinned.digest),
            ..pinned.image
        }
    }
}

impl fmt::Display for PinnedRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `image` never carries a digest, so this prints it exactly once.
        write!(f, "{}@{}", self.image, self.digest)
    }
}

impl FromStr for PinnedRef {
    type Err = ReferenceError;

    /// Parses a reference as [`ImageRef`] does, and requires a digest.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        parse(input)?
            .pinned()
            .ok_or_else(|| ReferenceError::MissingDigest {
                input: input.to_owned(),
            })
    }
}

macro_rules! serde_as_string {
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_as_string!(ImageRef);
serde_as_string!(PinnedRef);

/// Whether `host` is one of Docker Hub's names ([`DOCKER_HUB_HOSTS`]), in any case.
pub fn is_docker_hub(host: &str) -> bool {
    DOCKER_HUB_HOSTS
        .iter()
        .any(|h| h.eq_ignore_ascii_case(host))
}

/// Whether `first`, the first `/`-separated component of a name, names a registry: it
/// contains `.` or `:` or is `localhost` (distribution's `splitDockerDomain`, minus its
/// uppercase rule). Otherwise the name is on Docker Hub.
pub fn names_registry(first: &str) -> bool {
    first.contains(['.', ':']) || first == "localhost"
}

/// Whether a name of a single component (no `/`, maybe with `:tag`) looks like a registry
/// host rather than a Docker Hub image: `example.com`, `localhost:5000`, `[::1]:5000`. Such
/// a name lacks its repository; `localhost:latest` stays an image.
pub fn looks_like_host(single: &str) -> bool {
    let name = single.split_once(':').map_or(single, |(n, _)| n);
    name.contains('.') || name == "localhost" || single.starts_with('[')
}

/// The name references use for `registry`: [`DOCKER_HUB`] for its legacy name
/// `index.docker.io`, anything else unchanged.
pub fn canonical_registry(registry: &str) -> &str {
    if registry == DOCKER_HUB_LEGACY {
        DOCKER_HUB
    } else {
        registry
    }
}

/// The repository path of `path` on the canonical `registry`: on Docker Hub a single component
/// is an official image (`alpine` is `library/alpine`); elsewhere `path` unchanged.
pub fn repository_path<'a>(registry: &str, path: &'a str) -> std::borrow::Cow<'a, str> {
    if registry == DOCKER_HUB && !path.contains('/') {
        format!("{DOCKER_HUB_OFFICIAL_NAMESPACE}{path}").into()
    } else {
        path.into()
    }
}

fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_API_HOST
    } else {
        registry
    }
}

fn parse(input: &str) -> Result<ImageRef, ReferenceError> {
    let owned = || input.to_owned();
    if input.is_empty() {
        return Err(ReferenceError::Empty);
    }
    // distribution refuses these so that an image id is never mistaken for a repository name.
    if input.len() == 64
        && input
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(ReferenceError::LooksLikeImageId { input: owned() });
    }

    let (name_and_tag, digest) = match input.split_once('@') {
        Some((name_and_tag, digest)) => (name_and_tag, Some(digest)),
        None => (input, None),
    };

    let (registry, path_and_tag) = match name_and_tag.split_once('/') {
        Some((first, rest)) if names_registry(first) => (Some(first), rest),
        Some(_) => (None, name_and_tag),
        None => {
            // A single component that is a valid host (and port), and looks like one, is a
            // registry missing its repository. distribution would read "localhost:5000" as
            // docker.io/library/localhost:5000; its own FIXME says bare "localhost" and
            // "example.com" should be domains. "localhost:latest" stays an image on Docker Hub.
            if looks_like_host(name_and_tag) && check_registry(input, name_and_tag).is_ok() {
                return Err(ReferenceError::MissingRepository { input: owned() });
            }
            (None, name_and_tag)
        }
    };

    let (path, tag) = match path_and_tag.split_once(':') {
        Some((path, tag)) => (path, Some(tag)),
        None => (path_and_tag, None),
    };
    if path.is_empty() {
        return Err(ReferenceError::MissingRepository { input: owned() });
    }

    if let Some(registry) = registry {
        check_registry(input, registry)?;
    }
    let registry = registry.map_or(DOCKER_HUB, canonical_registry);

    check_path(input, path)?;
    let repository = repository_path(registry, path).into_owned();
    let length = registry.len() + 1 + repository.len();
    if length > NAME_MAX {
        return Err(ReferenceError::NameTooLong {
            input: owned(),
            length,
        });
    }

    if let Some(tag) = tag {
        check_tag(input, tag)?;
    }
    let digest = digest
        .map(|d| {
            d.parse::<Digest>()
                .map_err(|source| ReferenceError::InvalidDigest {
                    input: owned(),
                    source,
                })
        })
        .transpose()?;

    Ok(ImageRef {
        registry: registry.to_owned(),
        repository,
        tag: tag.map(str::to_owned),
        digest,
    })
}

/// Checks `host[:port]`, where host is a DNS name, an IPv4 address or a bracketed IPv6 address.
fn check_registry(input: &str, registry: &str) -> Result<(), ReferenceError> {
    let (host, port) = if registry.starts_with('[') {
        let Some((inside, after)) = registry.split_once(']') else {
            return Err(ReferenceError::InvalidIpAddress {
                input: input.to_owned(),
                host: registry.to_owned(),
            });
        };
        // Up to and including the "]" (ASCII, so a character boundary).
        let host = registry.get(..=inside.len()).unwrap_or(registry);
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => {
                return Err(ReferenceError::InvalidHostname {
                    input: input.to_owned(),
                    host: registry.to_owned(),
                });
            }
        };
        (host, port)
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        }
    };

    if let Some(port) = port {
        // Digits only: u16::from_str would also take a leading "+".
        let valid = !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p != 0);
        if !valid {
            return Err(ReferenceError::InvalidPort {
                input: input.to_owned(),
                port: port.to_owned(),
            });
        }
    }

    if let Some(inside) = host.strip_prefix('[') {
        // distribution allows only hex digits and ":" here (no zone, no embedded IPv4).
        let inside = inside.strip_suffix(']').unwrap_or(inside);
        let valid = inside.bytes().all(|b| b.is_ascii_hexdigit() || b == b':')
            && inside.parse::<Ipv6Addr>().is_ok();
        if !valid {
            return Err(ReferenceError::InvalidIpAddress {
                input: input.to_owned(),
                host: host.to_owned(),
            });
        }
        return Ok(());
    }

    let label_ok = |label: &str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if !host.split('.').all(label_ok) {
        return Err(ReferenceError::InvalidHostname {
            input: input.to_owned(),
            host: host.to_owned(),
        });
    }
    // No top-level domain is all digits, so an all-numeric host is meant as an IPv4 address.
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') && host.parse::<Ipv4Addr>().is_err() {
        return Err(ReferenceError::InvalidIpAddress {
            input: input.to_owned(),
            host: host.to_owned(),
        });
    }
    Ok(())
}

/// Checks the repository path: lowercase, `/`-separated components of the path grammar.
fn check_path(input: &str, path: &str) -> Result<(), ReferenceError> {
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ReferenceError::RepositoryNotLowercase {
            input: input.to_owned(),
        });
    }
    for component in path.split('/') {
        if component.is_empty() {
            return Err(ReferenceError::EmptyPathComponent {
                input: input.to_owned(),
            });
        }
        if let Some(character) = component
            .chars()
            .find(|&c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-'))
        {
            return Err(ReferenceError::InvalidCharacter {
                input: input.to_owned(),
                character,
                part: "repository",
            });
        }
        if !path_component_ok(component) {
            return Err(ReferenceError::InvalidPathComponent {
                input: input.to_owned(),
                component: component.to_owned(),
            });
        }
    }
    Ok(())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`, for a component already known to hold only
/// `[a-z0-9._-]`.
fn path_component_ok(component: &str) -> bool {
    // Splitting on alphanumerics leaves the separator runs: the first and last must be empty
    // (the component starts and ends alphanumeric), the others one of the allowed separators
    // (or empty, between two adjacent alphanumerics).
    let runs: Vec<&str> = component
        .split(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        .collect();
    let (Some(first), Some(last)) = (runs.first(), runs.last()) else {
        return false;
    };
    !component.is_empty()
        && first.is_empty()
        && last.is_empty()
        && runs
            .iter()
            .all(|run| matches!(*run, "" | "." | "_" | "__") || run.bytes().all(|b| b == b'-'))
}

/// Checks a tag against `[\w][\w.-]{0,127}`.
fn check_tag(input: &str, tag: &str) -> Result<(), ReferenceError> {
    if tag.is_empty() {
        return Err(ReferenceError::EmptyTag {
            input: input.to_owned(),
        });
    }
    if let Some(character) = tag
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(ReferenceError::InvalidCharacter {
            input: input.to_owned(),
            character,
            part: "tag",
        });
    }
    if tag.starts_with(['.', '-']) {
        return Err(ReferenceError::InvalidTag {
            input: input.to_owned(),
            tag: tag.to_owned(),
        });
    }
    // All characters are ASCII here, so the byte length is the character count.
    if tag.len() > TAG_MAX {
        return Err(ReferenceError::TagTooLong {
            input: input.to_owned(),
            length: tag.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::error::Error as _;

    use super::*;

    const D256: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    const D512: &str = "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";

    enum Expect {
        /// Parses, and displays as this canonical form ("" = the input is already canonical).
        Canonical(&'static str),
        /// Fails with this variant (Debug name) and a message containing this text.
        Fails(&'static str, &'static str),
    }
    use Expect::{Canonical as C, Fails as E};

    fn cases() -> Vec<(String, Expect)> {
        let s = |x: &str| x.to_owned();
        let long_tag_ok = format!("docker.io/library/foo:{}", "t".repeat(128));
        let long_tag_bad = format!("foo:{}", "t".repeat(129));
        // "example.com/" is 12 characters.
        let name_255 = format!("example.com/{}", "a".repeat(243));
        let name_256 = format!("example.com/{}", "a".repeat(244));
        let name_300 = format!("example.com/{}", "a".repeat(288));
        let hub_255 = format!("docker.io/{}/b", "a".repeat(255 - "docker.io/".len() - 2));
        let hub_256 = format!("{}/b", "a".repeat(255 - "docker.io/".len() - 1));
        vec![
            // Docker Hub normalisation.
            (s("alpine"), C("docker.io/library/alpine")),
            (s("alpine:3.19"), C("docker.io/library/alpine:3.19")),
            (s("user/app"), C("docker.io/user/app")),
            (s("docker.io/alpine"), C("docker.io/library/alpine")),
            (s("docker.io/library/alpine"), C("docker.io/library/alpine")),
            (s("index.docker.io/x"), C("docker.io/library/x")),
            (s("index.docker.io/user/app:v1"), C("docker.io/user/app:v1")),
            (
                s("registry-1.docker.io/library/alpine"),
                C("registry-1.docker.io/library/alpine"),
            ),
            (s("a/b/c/d"), C("docker.io/a/b/c/d")),
            (
                format!("docker.io/library/alpine:3.19@{D256}"),
                C(
                    "docker.io/library/alpine:3.19@sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
                ),
            ),
            (
                format!("alpine@{D256}"),
                C(
                    "docker.io/library/alpine@sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
                ),
            ),
            // Registries: localhost, ports, IPs, case.
            (s("localhost/foo"), C("localhost/foo")),
            (s("localhost:5000/foo:tag"), C("localhost:5000/foo:tag")),
            (s("127.0.0.1:5000/a/b"), C("127.0.0.1:5000/a/b")),
            (s("[::1]:5000/foo"), C("[::1]:5000/foo")),
            (s("[::1]/foo"), C("[::1]/foo")),
            (
                s("[2001:db8::1]:443/org/app:v2"),
                C("[2001:db8::1]:443/org/app:v2"),
            ),
            (s("Example.COM/foo"), C("Example.COM/foo")),
            (s("example.com:65535/foo"), C("example.com:65535/foo")),
            (
                s("xn--bcher-kva.example/foo"),
                C("xn--bcher-kva.example/foo"),
            ),
            (
                s("my-registry.local:5000/x/y:1"),
                C("my-registry.local:5000/x/y:1"),
            ),
            (
                s("ghcr.io/org/team/app:v1.2.3"),
                C("ghcr.io/org/team/app:v1.2.3"),
            ),
            // Separators, tags, digests.
            (
                s("foo__bar/baz--qux---x.y_z"),
                C("docker.io/foo__bar/baz--qux---x.y_z"),
            ),
            (
                s("foo:Latest_V1.0-rc"),
                C("docker.io/library/foo:Latest_V1.0-rc"),
            ),
            (s("foo:_x"), C("docker.io/library/foo:_x")),
            (long_tag_ok, C("")),
            (format!("ghcr.io/o/a:v1@{D512}"), C("")),
            (name_255, C("")),
            (hub_255, C("")),
            // Empty and missing parts.
            (s(""), E("Empty", "empty image reference")),
            (
                s("localhost"),
                E("MissingRepository", "missing repository name"),
            ),
            (
                s("localhost:5000"),
                E(
                    "MissingRepository",
                    "\"localhost:5000\": missing repository",
                ),
            ),
            (
                s("example.com"),
                E("MissingRepository", "missing repository"),
            ),
            (
                s("[::1]:5000"),
                E("MissingRepository", "missing repository"),
            ),
            (
                s("example.com/"),
                E("MissingRepository", "missing repository"),
            ),
            (
                s("example.com/:v1"),
                E("MissingRepository", "missing repository"),
            ),
            (s(":tag"), E("MissingRepository", "missing repository")),
            (
                format!("@{D256}"),
                E("MissingRepository", "missing repository"),
            ),
            (s("[::1]"), E("MissingRepository", "missing repository")),
            // Not a valid host:port, so an image on Docker Hub (as distribution reads it).
            (
                s("localhost:latest"),
                C("docker.io/library/localhost:latest"),
            ),
            (s("foo:5000"), C("docker.io/library/foo:5000")),
            (s("foo/"), E("EmptyPathComponent", "empty path component")),
            (s("/foo"), E("EmptyPathComponent", "empty path component")),
            (s("a//b"), E("EmptyPathComponent", "empty path component")),
            // Case and characters.
            (
                s("Foo/bar"),
                E(
                    "RepositoryNotLowercase",
                    "invalid reference \"Foo/bar\": repository name must be lowercase",
                ),
            ),
            (
                s("foo/Bar"),
                E(
                    "RepositoryNotLowercase",
                    "repository name must be lowercase",
                ),
            ),
            (
                s("example.com/Foo"),
                E("RepositoryNotLowercase", "must be lowercase"),
            ),
            (
                s("Alpine"),
                E("RepositoryNotLowercase", "must be lowercase"),
            ),
            (
                s("foo bar"),
                E("InvalidCharacter", "invalid character ' ' in repository"),
            ),
            (
                s("fóo"),
                E("InvalidCharacter", "invalid character 'ó' in repository"),
            ),
            (s("foo$/bar"), E("InvalidCharacter", "'$' in repository")),
            (
                s("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
                E("LooksLikeImageId", "image id"),
            ),
            // Path component grammar.
            (
                s("-foo"),
                E("InvalidPathComponent", "invalid path component \"-foo\""),
            ),
            (s("foo-"), E("InvalidPathComponent", "\"foo-\"")),
            (s("foo/_bar"), E("InvalidPathComponent", "\"_bar\"")),
            (s("foo..bar"), E("InvalidPathComponent", "\"foo..bar\"")),
            (s("foo___bar"), E("InvalidPathComponent", "\"foo___bar\"")),
            (s("foo._bar"), E("InvalidPathComponent", "\"foo._bar\"")),
            (s("foo-.bar"), E("InvalidPathComponent", "\"foo-.bar\"")),
            // Lengths.
            (
                name_256,
                E(
                    "NameTooLong",
                    "repository name too long: 256 characters, at most 255",
                ),
            ),
            (
                name_300,
                E(
                    "NameTooLong",
                    "repository name too long: 300 characters, at most 255",
                ),
            ),
            (hub_256, E("NameTooLong", "256 characters, at most 255")),
            (
                long_tag_bad,
                E("TagTooLong", "tag too long: 129 characters, at most 128"),
            ),
            // Tags.
            (s("foo:"), E("EmptyTag", "empty tag")),
            (format!("foo:@{D256}"), E("EmptyTag", "empty tag")),
            (s("foo:.bar"), E("InvalidTag", "invalid tag \".bar\"")),
            (s("foo:-bar"), E("InvalidTag", "invalid tag \"-bar\"")),
            (
                s("foo:a+b"),
                E("InvalidCharacter", "invalid character '+' in tag"),
            ),
            (
                s("foo:tag:more"),
                E("InvalidCharacter", "invalid character ':' in tag"),
            ),
            // Digests.
            (s("foo@sha256:abc"), E("InvalidDigest", "invalid digest")),
            (s("foo@"), E("InvalidDigest", "invalid digest")),
            (
                s("foo@md5:d41d8cd98f00b204e9800998ecf8427e"),
                E("InvalidDigest", "invalid digest"),
            ),
            (
                format!("foo@{D256}@{D256}"),
                E("InvalidDigest", "invalid digest"),
            ),
            (
                format!("foo@{}", D256.to_uppercase().replace("SHA256", "sha256")),
                E("InvalidDigest", "invalid digest"),
            ),
            // Registry hosts and ports.
            (
                s("example.com:0/foo"),
                E(
                    "InvalidPort",
                    "invalid registry port \"0\": must be a number from 1 to 65535",
                ),
            ),
            (s("example.com:65536/foo"), E("InvalidPort", "\"65536\"")),
            (s("example.com:http/foo"), E("InvalidPort", "\"http\"")),
            (s("example.com:/foo"), E("InvalidPort", "\"\"")),
            (s("example.com:+80/foo"), E("InvalidPort", "\"+80\"")),
            (s("foo:tag/bar"), E("InvalidPort", "\"tag\"")),
            (
                s("-example.com/foo"),
                E("InvalidHostname", "invalid registry host \"-example.com\""),
            ),
            (
                s("exa_mple.com/foo"),
                E("InvalidHostname", "\"exa_mple.com\""),
            ),
            (
                s("example..com/foo"),
                E("InvalidHostname", "\"example..com\""),
            ),
            (s("[::1]x/foo"), E("InvalidHostname", "\"[::1]x\"")),
            (
                s("256.1.1.1/foo"),
                E("InvalidIpAddress", "invalid IP address \"256.1.1.1\""),
            ),
            (s("[::g]:5000/foo"), E("InvalidIpAddress", "\"[::g]\"")),
            (s("[1:2:3]/foo"), E("InvalidIpAddress", "\"[1:2:3]\"")),
            (s("[::1/foo"), E("InvalidIpAddress", "\"[::1\"")),
            (
                s("[fe80::1%eth0]:5000/foo"),
                E("InvalidIpAddress", "invalid IP address"),
            ),
        ]
    }

    #[test]
    fn table() {
        let cases = cases();
        assert!(cases.len() >= 40);
        let mut failures = Vec::new();
        for (input, expect) in &cases {
            let got = input.parse::<ImageRef>();
            match (expect, &got) {
                (C(canonical), Ok(r)) => {
                    let shown = r.to_string();
                    let want = if canonical.is_empty() {
                        input.as_str()
                    } else {
                        *canonical
                    };
                    if shown != *want {
                        failures.push(format!("{input:?}: displayed {shown:?}, want {want:?}"));
                    }
                    // Canonical forms parse back to the same value.
                    if shown.parse::<ImageRef>().as_ref() != Ok(r) {
                        failures.push(format!("{input:?}: {shown:?} does not round-trip"));
                    }
                }
                (E(variant, text), Err(e)) => {
                    let debug = format!("{e:?}");
                    let message = e.to_string();
                    if !debug.starts_with(variant) || !message.contains(text) {
                        failures.push(format!(
                            "{input:?}: got {debug} / {message:?}, want {variant} containing {text:?}"
                        ));
                    }
                }
                (C(_), Err(e)) => failures.push(format!("{input:?}: unexpected error {e}")),
                (E(variant, _), Ok(r)) => {
                    failures.push(format!("{input:?}: parsed as {r}, want {variant}"));
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{} failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn parts_and_accessors() {
        let r: ImageRef = format!("localhost:5000/team/app:v1@{D256}")
            .parse()
            .unwrap();
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.repository(), "team/app");
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.digest().map(ToString::to_string).as_deref(), Some(D256));
        assert_eq!(r.name(), "localhost:5000/team/app");
        assert_eq!(r.api_host(), "localhost:5000");

        let hub: ImageRef = "alpine".parse().unwrap();
        assert_eq!(hub.registry(), "docker.io");
        assert_eq!(hub.api_host(), "registry-1.docker.io");
        assert_eq!(hub.tag(), None, "no implicit latest");
        assert_eq!(hub.digest(), None);
    }

    #[test]
    fn pinned_refs() {
        let digest: Digest = D256.parse().unwrap();
        let tagged: ImageRef = "ghcr.io/org/app:v1".parse().unwrap();
        assert!(tagged.pinned().is_none());

        let pinned = tagged.with_digest(digest.clone());
        assert_eq!(pinned.to_string(), format!("ghcr.io/org/app:v1@{D256}"));
        assert_eq!(pinned.digest(), &digest);
        assert_eq!(pinned.registry(), "ghcr.io");
        assert_eq!(pinned.repository(), "org/app");
        assert_eq!(pinned.tag(), Some("v1"));
        assert_eq!(pinned.name(), "ghcr.io/org/app");

        let full = pinned.to_image_ref();
        assert_eq!(full.pinned().as_ref(), Some(&pinned));
        assert_eq!(ImageRef::from(pinned.clone()), full);
        assert_eq!(
            format!("ghcr.io/org/app:v1@{D256}")
                .parse::<PinnedRef>()
                .unwrap(),
            pinned
        );

        // with_digest replaces an existing digest rather than printing two.
        let other = Digest::sha256_of(b"other");
        let repinned = full.with_digest(other.clone());
        assert_eq!(repinned.to_string(), format!("ghcr.io/org/app:v1@{other}"));

        let err = "ghcr.io/org/app:v1".parse::<PinnedRef>().unwrap_err();
        assert!(matches!(err, ReferenceError::MissingDigest { .. }));
        assert!(err.to_string().contains("\"ghcr.io/org/app:v1\""), "{err}");
    }

    #[test]
    fn with_tag_checks_the_tag() {
        let r: ImageRef = format!("alpine:3.18@{D256}").parse().unwrap();
        let retagged = r.with_tag("3.19").unwrap();
        assert_eq!(
            retagged.to_string(),
            format!("docker.io/library/alpine:3.19@{D256}")
        );
        assert!(matches!(
            r.with_tag(""),
            Err(ReferenceError::EmptyTag { .. })
        ));
        assert!(matches!(
            r.with_tag("a/b"),
            Err(ReferenceError::InvalidCharacter { .. })
        ));
    }

    #[test]
    fn invalid_digest_keeps_its_cause() {
        let err = "foo@sha256:abc".parse::<ImageRef>().unwrap_err();
        let source = err.source().expect("digest error as source");
        assert_eq!(
            source.to_string(),
            "sha256 digest must have 64 hex characters, got 3"
        );
        assert!(matches!(
            err,
            ReferenceError::InvalidDigest {
                source: DigestError::BadLength { got: 3, .. },
                ..
            }
        ));
    }

    #[test]
    fn serde_uses_the_canonical_string() {
        let r: ImageRef = "alpine:3.19".parse().unwrap();
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, "\"docker.io/library/alpine:3.19\"");
        assert_eq!(serde_json::from_str::<ImageRef>(&json).unwrap(), r);
        assert!(serde_json::from_str::<ImageRef>("\"Foo/bar\"").is_err());

        let pinned = r.with_digest(D256.parse().unwrap());
        let json = serde_json::to_string(&pinned).unwrap();
        assert_eq!(serde_json::from_str::<PinnedRef>(&json).unwrap(), pinned);
        assert!(serde_json::from_str::<PinnedRef>("\"alpine\"").is_err());
    }

    #[test]
    fn path_component_grammar() {
        for ok in [
            "a",
            "a0",
            "a.b",
            "a_b",
            "a__b",
            "a-b",
            "a---b",
            "a.b-c_d__e",
            "0",
        ] {
            assert!(path_component_ok(ok), "{ok}");
        }
        for bad in [
            "", ".", "-", "_a", "a_", "a..b", "a___b", "a._b", "a-_b", "a__-b",
        ] {
            assert!(!path_component_ok(bad), "{bad}");
        }
    }
}
