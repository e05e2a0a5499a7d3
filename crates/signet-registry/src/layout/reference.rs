//! Reference syntax: `oci:PATH[:tag|@digest]`, `oci-archive:FILE[:tag|@digest]`, or an image
//! reference in a registry.

use std::path::PathBuf;

use signet_core::digest::Digest;
use signet_core::reference::ImageRef;

use crate::error::RegistryError;

/// Whether a layout is a directory or a tarball.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutKind {
    /// `oci:PATH`: a directory holding `oci-layout`, `index.json` and `blobs/`.
    Directory,
    /// `oci-archive:FILE`: a tar file holding the same.
    Archive,
}

impl LayoutKind {
    /// The reference prefix: `oci` or `oci-archive`.
    pub fn prefix(self) -> &'static str {
        match self {
            LayoutKind::Directory => "oci",
            LayoutKind::Archive => "oci-archive",
        }
    }
}

/// A reference into a layout: `oci:PATH[:tag|@digest]` or `oci-archive:FILE[:tag|@digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutRef {
    /// Directory or tarball.
    pub kind: LayoutKind,
    /// The directory or file.
    pub path: PathBuf,
    /// The tag (`org.opencontainers.image.ref.name`), if given.
    pub tag: Option<String>,
    /// The digest, if given.
    pub digest: Option<Digest>,
}

/// The reference as it is written: `oci:PATH[:tag][@digest]` (the inverse of parsing).
impl std::fmt::Display for LayoutRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind.prefix(), self.path.display())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Where an image is: in a registry, or in a layout on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A registry reference.
    Registry(ImageRef),
    /// A layout reference.
    Layout(LayoutRef),
}

impl std::str::FromStr for Location {
    type Err = RegistryError;

    /// Parses `oci:PATH[:tag|@digest]`, `oci-archive:FILE[:tag|@digest]`, or an image
    /// reference in a registry.
    ///
    /// ```
    /// use signet_registry::{LayoutKind, Location};
    ///
    /// let Ok(Location::Layout(r)) = "oci-archive:/tmp/x.tar:127.0.0.1:5000/app:v1".parse() else {
    ///     panic!()
    /// };
    /// assert_eq!(r.kind, LayoutKind::Archive);
    /// assert_eq!(r.path.to_str(), Some("/tmp/x.tar"));
    /// assert_eq!(r.tag.as_deref(), Some("127.0.0.1:5000/app:v1"));
    /// ```
    fn from_str(s: &str) -> Result<Location, RegistryError> {
        let (kind, rest) = if let Some(rest) = s.strip_prefix("oci:") {
            (LayoutKind::Directory, rest)
        } else if let Some(rest) = s.strip_prefix("oci-archive:") {
            (LayoutKind::Archive, rest)
        } else {
            return s
                .parse::<ImageRef>()
                .map(Location::Registry)
                .map_err(|e| RegistryError::Usage(e.to_string()));
        };
        let (rest, digest) = match rest.rsplit_once('@') {
            Some((before, after)) => match after.parse::<Digest>() {
                Ok(digest) => (before, Some(digest)),
                Err(_) => (rest, None),
            },
            None => (rest, None),
        };
        let (path, tag) = match rest.split_once(':') {
            Some((path, tag)) => (path, Some(tag)),
            None => (rest, None),
        };
        if path.is_empty() {
            return Err(RegistryError::Usage(format!(
                "invalid reference {s:?}: no path after \"{}:\"",
                kind.prefix()
            )));
        }
        if tag.is_some_and(|t| t.is_empty() || t.chars().any(char::is_whitespace)) {
            return Err(RegistryError::Usage(format!(
                "invalid reference {s:?}: empty tag or tag with white space after \"{path}:\""
            )));
        }
        Ok(Location::Layout(LayoutRef {
            kind,
            path: PathBuf::from(path),
            tag: tag.map(str::to_string),
            digest,
        }))
    }
}
