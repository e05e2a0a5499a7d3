//! The store interface: one repository, in a registry or in an OCI image layout on disk.
//!
//! Everything above this crate (verification, publishing, mirroring) talks to a
//! [`Repository`] and does not care which of the two it is. Both check every manifest and blob
//! they hand back against its digest.

use signet_core::digest::Digest;
use signet_core::oci::Descriptor;
use signet_core::reference::{ImageRef, PinnedRef};

use crate::TagOrDigest;
use crate::client::{Client, FetchedManifest, Precondition, PutManifest};
use crate::error::RegistryError;
use crate::layout::Layout;
use crate::referrers::Referrers;
use crate::store::Remote;
use crate::stream::ByteStream;

/// One repository: a registry repository, or an OCI image layout (directory or tarball).
#[derive(Clone)]
pub struct Repository {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Remote(Remote),
    Layout(Layout),
}

/// Dispatches a call to whichever backend the repository has.
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match &$self.backend {
            Backend::Remote(r) => r.$method($($arg),*).await,
            Backend::Layout(l) => l.$method($($arg),*).await,
        }
    };
}

impl Repository {
    /// The registry repository of `image` (its registry host as contacted, and its path).
    pub fn new(client: &Client, image: &ImageRef) -> Repository {
        Repository {
            backend: Backend::Remote(Remote::new(client, image)),
        }
    }

    /// A repository in an OCI image layout.
    pub fn layout(layout: Layout) -> Repository {
        Repository {
            backend: Backend::Layout(layout),
        }
    }

    /// The layout, when this repository is one.
    pub fn as_layout(&self) -> Option<&Layout> {
        match &self.backend {
            Backend::Layout(l) => Some(l),
            Backend::Remote(_) => None,
        }
    }

    /// The registry client, when this repository is in a registry.
    pub fn client(&self) -> Option<&Client> {
        match &self.backend {
            Backend::Remote(r) => Some(r.client()),
            Backend::Layout(_) => None,
        }
    }

    /// Whether this is a registry repository on `registry` (host as contacted).
    pub fn registry(&self) -> Option<&str> {
        match &self.backend {
            Backend::Remote(r) => Some(r.registry()),
            Backend::Layout(_) => None,
        }
    }

    /// The repository path in its registry (`team/app`), or the layout path.
    pub fn name(&self) -> String {
        match &self.backend {
            Backend::Remote(r) => r.name().to_string(),
            Backend::Layout(l) => l.path().display().to_string(),
        }
    }

    /// Where this repository is, for messages: `registry/path` or `oci:PATH`.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Remote(r) => format!("{}/{}", r.registry(), r.name()),
            Backend::Layout(l) => l.describe(),
        }
    }

    /// How many requests (or file reads) to run at once.
    pub fn concurrency(&self) -> usize {
        match &self.backend {
            Backend::Remote(r) => r.client().limits().concurrency,
            Backend::Layout(_) => 16,
        }
    }

    /// Resolves `image` to a digest, once. A reference that already carries a digest is
    /// returned as is.
    pub async fn resolve(&self, image: &ImageRef) -> Result<PinnedRef, RegistryError> {
        dispatch!(self.resolve(image))
    }

    /// Fetches the manifest `digest`, checking the bytes against it.
    pub async fn get_manifest(&self, digest: &Digest) -> Result<FetchedManifest, RegistryError> {
        dispatch!(self.get_manifest(digest))
    }

    /// Fetches the manifest a tag points at, or `None` if the tag does not exist.
    pub async fn get_manifest_by_tag(
        &self,
        tag: &str,
    ) -> Result<Option<FetchedManifest>, RegistryError> {
        dispatch!(self.get_manifest_by_tag(tag))
    }

    /// The digest `tag` points at, or `None` if the tag does not exist (a HEAD where the
    /// registry answers one with the digest).
    pub async fn resolve_tag(&self, tag: &str) -> Result<Option<Digest>, RegistryError> {
        match &self.backend {
            Backend::Remote(r) => r.resolve_tag(tag).await,
            Backend::Layout(l) => Ok(l.get_manifest_by_tag(tag).await?.map(|m| m.digest)),
        }
    }

    /// Whether the manifest `digest` is stored here.
    pub async fn manifest_exists(&self, digest: &Digest) -> Result<bool, RegistryError> {
        dispatch!(self.manifest_exists(digest))
    }

    /// Fetches a small blob (attestation, signature payload) into memory, bounded and checked.
    pub async fn get_blob(&self, digest: &Digest) -> Result<Vec<u8>, RegistryError> {
        dispatch!(self.get_blob(digest))
    }

    /// Fetches the small blob `descriptor` names, checked against its digest and its declared
    /// size, reading no more than that size from a registry (a registry that declares 1 KiB and
    /// sends 16 MiB is cut off as it streams).
    pub async fn get_blob_sized(&self, descriptor: &Descriptor) -> Result<Vec<u8>, RegistryError> {
        let bytes = match &self.backend {
            Backend::Remote(r) => {
                r.get_blob_limited(&descriptor.digest, descriptor.size)
                    .await?
            }
            Backend::Layout(l) => l.get_blob(&descriptor.digest).await?,
        };
        if bytes.len() as u64 != descriptor.size {
            return Err(RegistryError::Malformed {
                what: format!("blob {}", descriptor.digest),
                reason: format!(
                    "{} bytes, but its descriptor says {}",
                    bytes.len(),
                    descriptor.size
                ),
            });
        }
        Ok(bytes)
    }

    /// Whether the blob exists here.
    pub async fn blob_exists(&self, digest: &Digest) -> Result<bool, RegistryError> {
        dispatch!(self.blob_exists(digest))
    }

    /// Stores `bytes` as a blob, unless it is already there.
    pub async fn put_blob(&self, bytes: &[u8]) -> Result<Digest, RegistryError> {
        dispatch!(self.put_blob(bytes))
    }

    /// Opens the blob `digest` for streaming (any size). The bytes are not checked here: the
    /// receiver hashes them as they pass ([`Repository::put_blob_stream`] does).
    pub async fn blob_stream(&self, digest: &Digest) -> Result<ByteStream, RegistryError> {
        dispatch!(self.blob_stream(digest))
    }

    /// Stores a blob of `size` bytes from `body`, hashing as it goes. Bytes that do not hash to
    /// `digest` (or are not `size` long) are refused and nothing is committed.
    pub async fn put_blob_stream(
        &self,
        digest: &Digest,
        size: u64,
        body: ByteStream,
    ) -> Result<(), RegistryError> {
        dispatch!(self.put_blob_stream(digest, size, body))
    }

    /// Stores manifest `bytes` of `media_type` under `reference` (a tag, or the digest), with
    /// an optional precondition for tags.
    pub async fn put_manifest(
        &self,
        reference: TagOrDigest<'_>,
        media_type: &str,
        bytes: &[u8],
        precondition: Precondition,
    ) -> Result<PutManifest, RegistryError> {
        dispatch!(self.put_manifest(reference, media_type, bytes, precondition))
    }

    /// Tags that start with `prefix`.
    pub async fn tags_with_prefix(&self, prefix: &str) -> Result<Vec<String>, RegistryError> {
        dispatch!(self.tags_with_prefix(prefix))
    }

    /// The referrers of `subject`, optionally of one artifact type.
    pub async fn referrers(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Referrers, RegistryError> {
        dispatch!(self.referrers(subject, artifact_type))
    }

    /// Stores a referrer manifest (its blobs must already be there) so that
    /// [`Repository::referrers`] finds it; returns its descriptor.
    pub async fn attach_referrer(
        &self,
        subject: &Digest,
        media_type: &str,
        manifest: &[u8],
    ) -> Result<Descriptor, RegistryError> {
        dispatch!(self.attach_referrer(subject, media_type, manifest))
    }
}

impl Repository {
    /// Attaches several referrer manifests (`(media type, bytes)`, their blobs already here)
    /// to `subject` at once, leaving alone those [`Repository::referrers`] already finds. In a
    /// registry without the referrers API each gets its own tag and the fallback index is
    /// repaired once for the batch (see [`Repository::attach_referrer`]). Returns each
    /// referrer's descriptor, in order, and whether it was written (`false`: already there).
    pub async fn attach_referrers(
        &self,
        subject: &Digest,
        manifests: &[(String, Vec<u8>)],
    ) -> Result<Vec<(Descriptor, bool)>, RegistryError> {
        match &self.backend {
            Backend::Remote(r) => r.attach_referrers(subject, manifests).await,
            Backend::Layout(l) => {
                let present = l.referrers(subject, None).await?;
                let mut out = Vec::with_capacity(manifests.len());
                for (media_type, bytes) in manifests {
                    let digest = Digest::sha256_of(bytes);
                    match present.descriptors.iter().find(|d| d.digest == digest) {
                        Some(d) => out.push((d.clone(), false)),
                        None => {
                            let d = l.attach_referrer(subject, media_type, bytes).await?;
                            out.push((d, true));
                        }
                    }
                }
                Ok(out)
            }
        }
    }

    /// Makes the blob `digest` of `from` available here without copying it, when both are
    /// repositories of the same registry (a cross-repository mount). `Ok(false)` when that is
    /// not possible and the blob must be copied.
    pub async fn mount_blob(
        &self,
        digest: &Digest,
        from: &Repository,
    ) -> Result<bool, RegistryError> {
        match (&self.backend, &from.backend) {
            (Backend::Remote(to), Backend::Remote(from)) if to.registry() == from.registry() => {
                to.mount_blob(digest, from.name()).await
            }
            _ => Ok(false),
        }
    }
}
