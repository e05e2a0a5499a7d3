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

/// An OCI image layout opened for reading and writing.
#[derive(Clone)]
pub struct Layout {
    path: PathBuf,
}

#[allow(clippy::unused_async, unused_variables)]
impl Layout {
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
