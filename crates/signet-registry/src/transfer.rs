//! Streaming blob transfer and cross-repository mounts over the distribution API.

use signet_core::digest::Digest;

use crate::error::RegistryError;
use crate::repository::ByteStream;
use crate::store::Remote;

impl Remote {
    /// Whether the manifest `digest` exists in this repository (HEAD).
    pub(crate) async fn manifest_exists(&self, digest: &Digest) -> Result<bool, RegistryError> {
        todo!("{digest}")
    }

    /// Opens the blob for streaming.
    pub(crate) async fn blob_stream(&self, digest: &Digest) -> Result<ByteStream, RegistryError> {
        todo!("{digest}")
    }

    /// Uploads a blob from a stream, hashing as it goes.
    pub(crate) async fn put_blob_stream(
        &self,
        digest: &Digest,
        size: u64,
        body: ByteStream,
    ) -> Result<(), RegistryError> {
        let _ = (size, body);
        todo!("{digest}")
    }

    /// Mounts the blob from another repository of the same registry.
    pub(crate) async fn mount_blob(
        &self,
        digest: &Digest,
        from: &str,
    ) -> Result<bool, RegistryError> {
        todo!("{digest} {from}")
    }
}
