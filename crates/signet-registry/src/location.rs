//! Opening what a [`Location`] names: a registry repository or an image in a layout, with the
//! name the image is judged and signed as. The CLI only parses and prints.

use signet_core::digest::Digest;
use signet_core::oci::Descriptor;
use signet_core::reference::ImageRef;

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
    /// For a layout: whether the reference carried a digest.
    layout_digest_given: Option<bool>,
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
                layout_digest_given: None,
            }),
            Location::Layout(r) => {
                let found = Layout::open(r.kind, &r.path, OpenMode::MustExist)?.resolve_ref(r)?;
                Ok(OpenedImage {
                    repo: Repository::layout(found.layout),
                    image: found.pinned.to_image_ref(),
                    layout_digest_given: Some(r.digest.is_some()),
                })
            }
        }
    }
}

impl OpenedImage {
    /// Whether the image is in a layout.
    pub fn is_layout(&self) -> bool {
        self.layout_digest_given.is_some()
    }

    /// Whether the image is in a layout and was named with its digest.
    pub fn layout_digest_given(&self) -> bool {
        self.layout_digest_given == Some(true)
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
    /// Where the image `index.json` names `name` (with `entry`) is imported to, under the
    /// registry `host` and the path `prefix` (`to` is both as the user gave them, for
    /// messages): its full reference's repository under the prefix, with its tag, or by
    /// digest when its name has a digest and no tag (a digest-pinned export).
    ///
    /// An entry not named by a full reference (its repository is unknown), or named by
    /// repository alone (importing it as `latest` would replace the target's `latest`), or
    /// whose name's digest is not the entry's, is refused with the `signet mirror` command
    /// that copies it instead.
    pub fn import_image(
        &self,
        name: &str,
        entry: &Descriptor,
        host: &str,
        prefix: &str,
        to: &str,
    ) -> Result<ImportImage, RegistryError> {
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
                RegistryError::Usage(format!("cannot name {name} under {to}: {e}"))
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
