//! The store over an OCI image layout: a directory (`oci-layout`, `index.json`, `blobs/`) or a
//! tarball of one.

use std::path::{Path, PathBuf};

use signet_core::digest::Digest;
use signet_core::oci::Descriptor;
use signet_core::reference::{ImageRef, PinnedRef};

use crate::client::{FetchedManifest, Precondition, PutManifest};
use crate::error::RegistryError;
use crate::referrers::Referrers;
use crate::repository::ByteStream;

/// Whether a layout is a directory or a tarball.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutKind {
    /// `oci:PATH`: a directory holding `oci-layout`, `index.json` and `blobs/`.
    Directory,
    /// `oci-archive:FILE`: a tar file holding the same.
    Archive,
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
    fn from_str(s: &str) -> Result<Location, RegistryError> {
        todo!("{s}")
    }
}

/// An OCI image layout opened for reading and writing.
#[derive(Clone)]
pub struct Layout {
    path: PathBuf,
}

#[allow(clippy::unused_async, unused_variables)]
impl Layout {
    /// Opens the layout at `path`; with `create`, makes an empty one if there is none.
    /// An archive is unpacked into a private temporary directory, every blob checked against
    /// its name on the way; [`Layout::save`] writes it back.
    pub fn open(kind: LayoutKind, path: &Path, create: bool) -> Result<Layout, RegistryError> {
        todo!()
    }

    /// Writes an archive back (atomically, only when something changed); a no-op for a
    /// directory.
    pub fn save(&self) -> Result<(), RegistryError> {
        todo!()
    }

    /// The name `r` is known by, for policies and signed statements (see the module docs).
    pub fn identity(&self, r: &LayoutRef) -> Result<ImageRef, RegistryError> {
        todo!()
    }

    /// The images the layout's `index.json` names: each tagged entry that is not a referrer
    /// or a cosign legacy tag, with its tag (`org.opencontainers.image.ref.name`).
    pub fn images(&self) -> Result<Vec<(String, Descriptor)>, RegistryError> {
        todo!()
    }

    /// The layout's path as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `oci:PATH` or `oci-archive:FILE`.
    pub fn describe(&self) -> String {
        format!("oci:{}", self.path.display())
    }

    pub(crate) async fn resolve(&self, image: &ImageRef) -> Result<PinnedRef, RegistryError> {
        todo!()
    }
    pub(crate) async fn get_manifest(
        &self,
        digest: &Digest,
    ) -> Result<FetchedManifest, RegistryError> {
        todo!()
    }
    pub(crate) async fn get_manifest_by_tag(
        &self,
        tag: &str,
    ) -> Result<Option<FetchedManifest>, RegistryError> {
        todo!()
    }
    pub(crate) async fn manifest_exists(&self, digest: &Digest) -> Result<bool, RegistryError> {
        todo!()
    }
    pub(crate) async fn get_blob(&self, digest: &Digest) -> Result<Vec<u8>, RegistryError> {
        todo!()
    }
    pub(crate) async fn blob_exists(&self, digest: &Digest) -> Result<bool, RegistryError> {
        todo!()
    }
    pub(crate) async fn put_blob(&self, bytes: &[u8]) -> Result<Digest, RegistryError> {
        todo!()
    }
    pub(crate) async fn blob_stream(&self, digest: &Digest) -> Result<ByteStream, RegistryError> {
        todo!()
    }
    pub(crate) async fn put_blob_stream(
        &self,
        digest: &Digest,
        size: u64,
        body: ByteStream,
    ) -> Result<(), RegistryError> {
        todo!()
    }
    pub(crate) async fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
        precondition: Precondition,
    ) -> Result<PutManifest, RegistryError> {
        todo!()
    }
    pub(crate) async fn tags_with_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<String>, RegistryError> {
        todo!()
    }
    pub(crate) async fn referrers(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Referrers, RegistryError> {
        todo!()
    }
    pub(crate) async fn attach_referrer(
        &self,
        subject: &Digest,
        media_type: &str,
        manifest: &[u8],
    ) -> Result<Descriptor, RegistryError> {
        todo!()
    }
}
