//! `index.json`: reading it, updating it under a lock, and finding entries in it.

use std::io;
use std::path::Path;
use std::sync::atomic::Ordering;

use signet_core::digest::{Algorithm, Digest};
use signet_core::oci::{self, AnyManifest, Descriptor, Index};

use super::LAYOUT_VERSION;
use super::Layout;
use super::LayoutKind;
use super::files::{Durability, io_err, layout_err, open_inside, read_bounded, write_atomic};
use crate::error::RegistryError;
use crate::referrers::referrer_descriptor;

/// The annotation that names an `index.json` entry (its tag).
pub(crate) const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// The annotation containerd and `docker save` put on entries: the full image name.
pub(crate) const CONTAINERD_NAME_ANNOTATION: &str = "io.containerd.image.name";
/// Which annotations of an `index.json` entry a tag is looked up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TagMatch {
    /// `org.opencontainers.image.ref.name` only: tags written next to an image.
    RefName,
    /// Also `io.containerd.image.name`: an image the user named (`docker save` output).
    RefNameOrImageName,
}

/// Largest `index.json` read: bigger than a manifest, since it lists every referrer.
pub(super) const MAX_INDEX_JSON_BYTES: u64 = 64 << 20;

impl Layout {
    pub(super) fn read_index(&self) -> Result<Index, RegistryError> {
        read_index_at(&self.inner.root, &self.describe())
    }

    /// Read-modify-write of `index.json` under an exclusive lock on `oci-layout` (a file that
    /// is never replaced, unlike `index.json`). `change` says whether it changed anything;
    /// the new index replaces the old one by rename. Nothing here awaits, so the lock is never
    /// held across a suspension point.
    pub(super) fn update_index(
        &self,
        change: impl FnOnce(&mut Index) -> Result<bool, RegistryError>,
    ) -> Result<(), RegistryError> {
        let describe = self.describe();
        let lock = open_inside(&self.inner.root, "oci-layout")
            .map_err(|e| io_err(&describe, "cannot open oci-layout to lock the layout", e))?;
        lock.lock()
            .map_err(|e| io_err(&describe, "cannot lock oci-layout", e))?;
        let mut index = self.read_index()?;
        // Whatever the change, the referrers map of the old index is not to be used again.
        if let Ok(mut cached) = self.inner.referrers.lock() {
            *cached = None;
        }
        if change(&mut index)? {
            write_atomic(
                &self.inner.root,
                "index.json",
                &index.to_json(),
                if self.inner.kind == LayoutKind::Directory {
                    Durability::Synced
                } else {
                    Durability::Unsynced
                },
                &describe,
            )?;
            self.inner.dirty.store(true, Ordering::SeqCst);
        }
        drop(lock);
        Ok(())
    }

    /// The entry tag `tag` names: `<scope>:tag` first, then a plain `tag`; with
    /// [`TagMatch::RefNameOrImageName`], also an entry whose `io.containerd.image.name` is
    /// `tag`.
    pub(super) fn find_tag<'a>(
        &self,
        index: &'a Index,
        tag: &str,
        matching: TagMatch,
    ) -> Option<&'a Descriptor> {
        let named = |name: &str| {
            index
                .manifests
                .iter()
                .find(|d| ref_name(d).is_some_and(|n| n == name))
        };
        self.scope
            .as_ref()
            .and_then(|scope| named(&format!("{scope}:{tag}")))
            .or_else(|| named(tag))
            .or_else(|| {
                (matching == TagMatch::RefNameOrImageName).then(|| {
                    index.manifests.iter().find(|d| {
                        d.annotations
                            .get(CONTAINERD_NAME_ANNOTATION)
                            .is_some_and(|n| n == tag)
                    })
                })?
            })
    }

    /// What the manifest of `entry` refers to, and its descriptor as a referrer; `None` for
    /// entries that are not manifests with a subject.
    pub(super) fn subject_of(
        &self,
        entry: &Descriptor,
    ) -> Result<Option<(Digest, Descriptor)>, RegistryError> {
        if !oci::MANIFEST_MEDIA_TYPES.contains(&entry.media_type.as_str())
            || entry.size > self.inner.limits.max_manifest_bytes
        {
            return Ok(None);
        }
        if let Ok(cache) = self.inner.subjects.lock()
            && let Some(known) = cache.get(&entry.digest)
        {
            return Ok(known.clone());
        }
        let fetched = self.read_manifest(&entry.digest)?;
        let found = AnyManifest::parse(&fetched.media_type, &fetched.bytes)
            .ok()
            .and_then(|m| m.subject().map(|s| s.digest.clone()))
            .and_then(|subject| {
                let mut d = referrer_descriptor(&fetched.media_type, &fetched.bytes, &subject)?;
                d.annotations.remove(REF_NAME_ANNOTATION);
                Some((subject, d))
            });
        if let Ok(mut cache) = self.inner.subjects.lock() {
            cache.insert(entry.digest.clone(), found.clone());
        }
        Ok(found)
    }

    /// The one image of the layout, for a reference with neither tag nor digest.
    pub(super) fn only_image(&self, index: &Index) -> Result<Descriptor, RegistryError> {
        let mut images: Vec<Descriptor> = Vec::new();
        for entry in &index.manifests {
            if ref_name(entry).is_some_and(|n| is_signature_tag(tag_part(n)))
                || !oci::MANIFEST_MEDIA_TYPES.contains(&entry.media_type.as_str())
                || self.subject_of(entry)?.is_some()
            {
                continue;
            }
            if let Some(known) = images.iter_mut().find(|d| d.digest == entry.digest) {
                if ref_name(known).is_none() {
                    *known = entry.clone();
                }
            } else {
                images.push(entry.clone());
            }
        }
        match images.len() {
            1 => Ok(images.remove(0)),
            0 => Err(RegistryError::NotFound {
                what: format!("image in {}", self.describe()),
            }),
            n => {
                let names: Vec<String> = images
                    .iter()
                    .map(|d| match ref_name(d) {
                        Some(name) => format!("{}:{name}", self.describe()),
                        None => format!("{}@{}", self.describe(), d.digest),
                    })
                    .collect();
                Err(RegistryError::Usage(format!(
                    "{} holds {n} images; name one: {}",
                    self.describe(),
                    names.join(", ")
                )))
            }
        }
    }
}

pub(super) fn ref_name(d: &Descriptor) -> Option<&String> {
    d.annotations.get(REF_NAME_ANNOTATION)
}

/// The tag part of a ref name: after the last `:` that follows the last `/` (`v1` of
/// `127.0.0.1:5000/app:v1`), or the whole name.
pub(super) fn tag_part(name: &str) -> &str {
    let after_slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[after_slash..].rfind(':') {
        Some(i) => &name[after_slash + i + 1..],
        None => name,
    }
}

/// A tag cosign or the referrers fallback uses: `<alg>-<hex>` with an optional `.suffix`.
pub(super) fn is_signature_tag(tag: &str) -> bool {
    let head = tag.split('.').next().unwrap_or(tag);
    head.split_once('-').is_some_and(|(alg, hex)| {
        alg.parse::<Algorithm>()
            .is_ok_and(|alg| Digest::from_hex(alg, hex).is_ok())
    })
}

pub(super) fn read_index_at(root: &Path, describe: &str) -> Result<Index, RegistryError> {
    let bytes = match read_bounded(root, "index.json", MAX_INDEX_JSON_BYTES) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            return Err(RegistryError::TooLarge {
                what: format!("index.json of {describe}"),
                limit: MAX_INDEX_JSON_BYTES,
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(layout_err(
                describe,
                "not an OCI image layout: there is no index.json",
            ));
        }
        Err(e) => return Err(io_err(describe, "cannot read index.json", e)),
    };
    let index: Index = serde_json::from_slice(&bytes).map_err(|e| RegistryError::Malformed {
        what: format!("index.json of {describe}"),
        reason: e.to_string(),
    })?;
    if index.schema_version != 2
        || index
            .media_type
            .as_deref()
            .is_some_and(|m| m != oci::OCI_INDEX)
    {
        return Err(RegistryError::Malformed {
            what: format!("index.json of {describe}"),
            reason: "not an OCI image index (schemaVersion 2, mediaType of an OCI index)".into(),
        });
    }
    Ok(index)
}

/// Makes an empty layout in `root` (created if missing).
pub(super) fn init_layout(root: &Path, describe: &str) -> Result<(), RegistryError> {
    std::fs::create_dir_all(root.join("blobs").join("sha256"))
        .map_err(|e| io_err(describe, "cannot create the layout", e))?;
    write_atomic(
        root,
        "oci-layout",
        format!("{{\"imageLayoutVersion\":\"{LAYOUT_VERSION}\"}}").as_bytes(),
        Durability::Synced,
        describe,
    )?;
    write_atomic(
        root,
        "index.json",
        &Index::empty().to_json(),
        Durability::Synced,
        describe,
    )
}
