//! Opening what a [`Location`] names: a registry repository or an image in a layout, with the
//! name the image is judged and signed as. The CLI only parses and prints.

use signet_core::digest::Digest;
use signet_core::oci::Descriptor;
use signet_core::reference::{ImageRef, PinnedRef};

use crate::client::Client;
use crate::error::RegistryError;
use crate::layout::{Layout, LayoutRef, Location, OpenMode};
use crate::repository::Repository;

/// An image opened where its [`Location`] says it is.
#[derive(Clone)]
pub struct OpenedImage {
    /// The store the image is in (a layout scoped to the image's repository name).
    pub repo: Repository,
    /// The name the image is known by: the registry reference as given, or a layout image's
    /// identity pinned to its digest (see [`Layout::resolve_ref`]), which policies match and
    /// statements sign.
    pub image: ImageRef,
    /// For a layout: the reference as given.
    layout: Option<LayoutRef>,
}

impl Location {
    /// Opens the image: a registry repository through the client `client` makes for the
    /// image's registry, or the layout (which must exist) and the image in it.
    pub fn open<E: From<RegistryError>>(
        &self,
        client: impl FnOnce(&ImageRef) -> Result<Client, E>,
    ) -> Result<OpenedImage, E> {
        match self {
            Location::Registry(image) => Ok(OpenedImage {
                repo: Repository::new(&client(image)?, image),
                image: image.clone(),
                layout: None,
            }),
            Location::Layout(r) => {
                let found = Layout::open(r.kind, &r.path, OpenMode::MustExist)?.resolve_ref(r)?;
                Ok(OpenedImage {
                    repo: Repository::layout(found.layout),
                    image: found.pinned.to_image_ref(),
                    layout: Some(r.clone()),
                })
            }
        }
    }
}

impl OpenedImage {
    /// Whether the image is in a layout.
    pub fn is_layout(&self) -> bool {
        self.layout.is_some()
    }

    /// How to show the image, resolved to `pinned`, to the user: the pinned reference for a
    /// registry; for a layout the reference as given, with the digest added when it had none.
    pub fn show(&self, pinned: &PinnedRef) -> String {
        match &self.layout {
            None => pinned.to_string(),
            Some(given) if given.digest.is_some() => given.to_string(),
            Some(given) => format!("{given}@{}", pinned.digest()),
        }
    }

    /// The image as the user named it (a registry reference normalised), for messages.
    pub fn shown_given(&self) -> String {
        match &self.layout {
            Some(given) => given.to_string(),
            None => self.image.to_string(),
        }
    }

    /// For a layout, the identity the image is judged and signed as (`name[:tag]`, without
    /// the digest).
    pub fn identity(&self) -> Option<String> {
        self.is_layout().then(|| match self.image.tag() {
            Some(tag) => format!("{}:{tag}", self.image.name()),
            None => self.image.name(),
        })
    }
}

impl Layout {
    /// This layout as the destination of a copy of an image known as `source_name`
    /// (`registry/path`) with `source_tag`: the layout scoped to the repository name its tags
    /// are written under, and the tag the image gets. `reference` is what followed `oci:DIR:`:
    /// none (the image is named by its full reference, as `signet export` names images), a
    /// full reference (`registry/path[:tag]`), or a plain tag.
    pub fn destination(
        &self,
        reference: Option<&str>,
        source_name: &str,
        source_tag: Option<&str>,
    ) -> Result<(Layout, Option<String>), RegistryError> {
        let Some(reference) = reference else {
            return Ok((
                self.scoped(Some(source_name)),
                source_tag.map(str::to_string),
            ));
        };
        if reference.contains('/') {
            let image: ImageRef =
                reference
                    .parse()
                    .map_err(|e: signet_core::reference::ReferenceError| {
                        RegistryError::Usage(format!(
                            "invalid reference {reference:?} in the layout: {e}"
                        ))
                    })?;
            let tag = image
                .tag()
                .map(str::to_string)
                .or(source_tag.map(str::to_string));
            let scope = reference
                .strip_suffix(&format!(":{}", image.tag().unwrap_or_default()))
                .unwrap_or(reference);
            return Ok((self.scoped(Some(scope)), tag));
        }
        Ok((self.scoped(None), Some(reference.to_string())))
    }
}

/// Where `signet import` writes: a registry host and an optional path prefix under it
/// (`REGISTRY[/PREFIX]`), parsed from `--to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportTarget {
    /// The registry host (`host[:port]`).
    pub host: String,
    /// The path prefix every imported repository goes under (may be empty).
    pub prefix: String,
    /// The text as given, for messages.
    given: String,
}

impl std::str::FromStr for ImportTarget {
    type Err = RegistryError;

    /// Parses `REGISTRY[/PREFIX]`; a trailing `/` is ignored. The first component must be a
    /// registry host by the rule of image references: it has a dot or a port, or is
    /// `localhost`.
    ///
    /// ```
    /// use signet_registry::ImportTarget;
    ///
    /// let to: ImportTarget = "registry.example/mirror/eu/".parse().unwrap();
    /// assert_eq!((to.host.as_str(), to.prefix.as_str()), ("registry.example", "mirror/eu"));
    /// assert!("mirror".parse::<ImportTarget>().is_err());
    /// ```
    fn from_str(given: &str) -> Result<ImportTarget, RegistryError> {
        let to = given.trim_end_matches('/');
        let (host, prefix) = to.split_once('/').unwrap_or((to, ""));
        let probe: ImageRef = format!("{host}/probe").parse().map_err(
            |e: signet_core::reference::ReferenceError| {
                RegistryError::Usage(format!("--to {to:?} is not REGISTRY[/PREFIX]: {e}"))
            },
        )?;
        if probe.registry() != host {
            return Err(RegistryError::Usage(format!(
                "--to {to:?} must start with a registry host (host[:port]), e.g. 127.0.0.1:5000"
            )));
        }
        Ok(ImportTarget {
            host: host.to_string(),
            prefix: prefix.to_string(),
            given: given.to_string(),
        })
    }
}

/// An image of a layout to import into a registry (see [`Layout::import_image`]).
pub struct ImportImage {
    /// The layout, scoped to the image's repository name.
    pub from: Repository,
    /// The image's digest.
    pub digest: Digest,
    /// The registry repository it goes to.
    pub target: ImageRef,
    /// The tag it gets there; `None`: it is pushed by digest only.
    pub tag: Option<String>,
}

impl Layout {
    /// Where the image `index.json` names `name` (with `entry`) is imported to under `to`:
    /// its full reference's repository under the prefix, with its tag, or by digest when its
    /// name has a digest and no tag (a digest-pinned export).
    ///
    /// An entry not named by a full reference (its repository is unknown), or named by
    /// repository alone (importing it as `latest` would replace the target's `latest`), or
    /// whose name's digest is not the entry's, is refused with the `signet mirror` command
    /// that copies it instead.
    pub fn import_image(
        &self,
        name: &str,
        entry: &Descriptor,
        to: &ImportTarget,
    ) -> Result<ImportImage, RegistryError> {
        let ImportTarget { host, prefix, .. } = to;
        let file = self.path().display();
        let image: ImageRef = name
            .parse()
            .ok()
            .filter(|_| name.contains('/'))
            .ok_or_else(|| {
                RegistryError::Usage(format!(
                    "image {name:?} in {file} is not named by a full reference \
                     (registry/repository:tag or registry/repository@sha256:…), so its \
                     repository is unknown; copy it with `signet mirror oci-archive:{file}:{name} REGISTRY/REPOSITORY:TAG`",
                ))
            })?;
        let tag = image.tag().map(str::to_string);
        match (&tag, image.digest()) {
            (None, None) => {
                return Err(RegistryError::Usage(format!(
                    "image {name:?} in {file} has no tag and no digest (it is named by repository \
                     alone), and import writes each image under its tag or its digest; refusing \
                     it rather than guessing a tag. Copy it with \
                     `signet mirror oci-archive:{file}@{} REGISTRY/REPOSITORY:TAG`",
                    entry.digest
                )));
            }
            (_, Some(digest)) if digest != &entry.digest => {
                return Err(RegistryError::Usage(format!(
                    "image {name:?} in {file} names digest {digest}, but its entry is {}; refusing \
                     {file}",
                    entry.digest,
                )));
            }
            _ => {}
        }
        let repository = if prefix.is_empty() {
            image.repository().to_string()
        } else {
            format!("{prefix}/{}", image.repository())
        };
        let target: ImageRef = format!("{host}/{repository}").parse().map_err(
            |e: signet_core::reference::ReferenceError| {
                RegistryError::Usage(format!("cannot name {name} under {}: {e}", to.given))
            },
        )?;
        let found = self.resolve_ref(&LayoutRef {
            kind: self.kind(),
            path: self.path().to_path_buf(),
            tag: Some(name.to_string()),
            digest: None,
        })?;
        Ok(ImportImage {
            from: Repository::layout(found.layout),
            digest: found.pinned.digest().clone(),
            target,
            tag,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::layout::LayoutKind;

    #[test]
    fn import_targets_are_a_registry_host_and_an_optional_prefix() {
        let to: ImportTarget = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(
            (to.host.as_str(), to.prefix.as_str()),
            ("127.0.0.1:5000", "")
        );
        let to: ImportTarget = "registry.example/mirror/eu/".parse().unwrap();
        assert_eq!(
            (to.host.as_str(), to.prefix.as_str()),
            ("registry.example", "mirror/eu")
        );
        for bad in ["mirror", "", "mirror/eu"] {
            let err = bad.parse::<ImportTarget>().unwrap_err().to_string();
            assert!(err.contains("--to"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_layout_reference_is_written_back_as_it_was_given() {
        let dir = tempfile::tempdir().unwrap();
        let given: Location = format!("oci:{}:app:v1", dir.path().display())
            .parse()
            .unwrap();
        let Location::Layout(r) = &given else {
            panic!("a layout reference")
        };
        assert_eq!(
            r.to_string(),
            format!("oci:{}:app:v1", dir.path().display())
        );
        let digest = signet_core::digest::Digest::sha256_of(b"m");
        let with_digest = LayoutRef {
            digest: Some(digest.clone()),
            ..r.clone()
        };
        assert_eq!(
            with_digest.to_string(),
            format!("oci:{}:app:v1@{digest}", dir.path().display())
        );
        assert_eq!(
            with_digest.to_string().parse::<Location>().unwrap(),
            Location::Layout(with_digest)
        );
    }

    #[test]
    fn layout_destinations() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open(
            LayoutKind::Directory,
            &dir.path().join("l"),
            OpenMode::CreateIfMissing,
        )
        .unwrap();
        let (name, tag) = ("127.0.0.1:5000/team/app", Some("v1"));
        let (l, tag2) = layout.destination(None, name, tag).unwrap();
        assert_eq!(l.scope(), Some("127.0.0.1:5000/team/app"));
        assert_eq!(tag2.as_deref(), Some("v1"));
        let (l, tag2) = layout
            .destination(Some("reg.example/x/y:v2"), name, tag)
            .unwrap();
        assert_eq!(l.scope(), Some("reg.example/x/y"));
        assert_eq!(tag2.as_deref(), Some("v2"));
        let (l, tag2) = layout.destination(Some("v3"), name, tag).unwrap();
        assert_eq!(l.scope(), None);
        assert_eq!(tag2.as_deref(), Some("v3"));
    }
}
