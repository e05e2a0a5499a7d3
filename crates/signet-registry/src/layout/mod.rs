//! The store over an OCI image layout: a directory (`oci-layout`, `index.json`, `blobs/`) or a
//! tarball of one ([image-spec, image-layout.md](https://github.com/opencontainers/image-spec/blob/v1.1.0/image-layout.md)).
//!
//! - References: `oci:PATH[:tag|@digest]` and `oci-archive:FILE[:tag|@digest]`, split as skopeo
//!   does: a trailing `@<digest>`, else the tag after the *first* `:` following the prefix, so
//!   `oci-archive:x.tar:127.0.0.1:5000/app:v1` has the tag `127.0.0.1:5000/app:v1`.
//! - Tags are the `org.opencontainers.image.ref.name` annotations of `index.json` entries.
//!   A layout holding images of several repositories (what `signet export` writes) names them
//!   by full reference; a [`Layout`] can be *scoped* to one repository name, and then tag `T`
//!   means the entry `<scope>:T` (or a plain `T`), which is how legacy cosign tags such as
//!   `127.0.0.1:5000/app:sha256-<hex>.sig` are found next to `127.0.0.1:5000/app:v1`.
//! - Referrers are the `index.json` entries whose manifest's `subject` is the image (read and
//!   checked, top-level entries only); attaching one adds an untagged entry, as a registry with
//!   the referrers API would index it.
//! - Identity, the name policies match and statements sign: the tag the user typed when it is
//!   a fully qualified reference (`oci:DIR:registry.example/app:v1`; the entry is the one with
//!   exactly that `ref.name` or `io.containerd.image.name`), otherwise
//!   `layout.invalid/<file or directory name>[:tag]`, whatever `index.json` says: anyone who
//!   can edit that file could otherwise name an image into an exempt pattern or a trusted
//!   registry. `.invalid` is a reserved top-level domain (RFC 2606), so no real registry
//!   pattern matches a layout by accident.
//! - An archive is unpacked into a private temporary directory, every blob hashed on the way
//!   and every member checked (no links, no `..`, nothing but the layout's own files; long-name
//!   entries and PAX headers of at most 64 KiB, checked from their headers before any is read);
//!   [`Layout::save`] writes it back atomically when something changed, and refuses to when
//!   another process changed the archive since it was opened.
//! - Every manifest and blob read is bounded and checked against its digest; blobs are written
//!   to a temporary file and renamed into place only once their digest and size are right;
//!   `index.json` is updated under an exclusive lock on `oci-layout` and replaced by rename.

// By job: `reference` is the `oci:`/`oci-archive:` syntax, `index` reads and updates
// `index.json` (under a lock) and finds entries in it, `identity` names a layout image,
// `archive` unpacks and packs tarballs, `files` holds the file primitives they share; this
// module is the store itself (open, read, write, referrers).
mod archive;
mod files;
mod identity;
mod index;
mod reference;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt as _;
use signet_core::digest::Digest;
use signet_core::oci::{self, AnyManifest, Descriptor};
use signet_core::reference::{ImageRef, PinnedRef};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::TagOrDigest;
use crate::client::{FetchedManifest, Limits, Precondition, PutManifest};
use crate::error::RegistryError;
use crate::hashing::Hasher;
use crate::referrers::{Referrers, ReferrersSource, referrer_descriptor};
use crate::stream::ByteStream;

use self::archive::ArchiveState;
pub use self::archive::{ScratchDir, remove_unpacked_archives};
use self::files::{
    CHUNK, blob_files, blob_name, hash_reader, io_err, layout_err, open_inside, read_bounded,
    real_dirs,
};
use self::index::REF_NAME_ANNOTATION;
use self::index::{TagMatch, init_layout, is_signature_tag, ref_name, tag_part};
pub use self::reference::{LayoutKind, LayoutRef, Location};

/// The only `imageLayoutVersion` there is.
const LAYOUT_VERSION: &str = "1.0.0";
/// Largest `oci-layout` read.
const MAX_OCI_LAYOUT_BYTES: u64 = 4 << 10;

/// An image found in a layout by [`Layout::resolve_ref`].
#[derive(Clone)]
pub struct LayoutImage {
    /// The layout, scoped to the image's repository name (see [`Layout::scoped`]), so that
    /// tags written or looked up next to the image (legacy cosign tags) are its own.
    pub layout: Layout,
    /// The image's identity (the name policies match and statements sign), pinned.
    pub pinned: PinnedRef,
}

/// An OCI image layout opened for reading and writing. Clones share the layout (and an
/// archive's unpacked copy); they may differ in [scope](Layout::scoped).
#[derive(Clone)]
pub struct Layout {
    inner: Arc<Inner>,
    scope: Option<String>,
}

struct Inner {
    kind: LayoutKind,
    /// The path as given: the directory, or the archive file.
    path: PathBuf,
    /// Where the layout's files are: the directory, or the archive's unpacked copy.
    root: PathBuf,
    /// Keeps an archive's unpacked copy until the last clone goes.
    _unpacked: Option<archive::ScratchDir>,
    /// Something was written since the archive was unpacked or saved.
    dirty: AtomicBool,
    /// Every blob file was hashed against its name when the archive was unpacked (and every
    /// write since is checked), so [`Layout::verify_all`] need not hash them again.
    hashed: bool,
    /// What the archive file held when it was last read or written: [`Layout::save`] refuses
    /// to replace an archive another process changed since (its changes would be lost).
    archive_state: Mutex<ArchiveState>,
    limits: Limits,
    /// What each manifest listed in `index.json` refers to (its subject and its descriptor as
    /// a referrer), by manifest digest. Content-addressed, so it never goes stale.
    subjects: Mutex<HashMap<Digest, Option<(Digest, Descriptor)>>>,
    /// The referrers of every subject, as the `index.json` identified by the stamp lists
    /// them: built once per version of the index, so that a tree of N referrers reads and
    /// parses the index once rather than N times.
    referrers: Mutex<Option<(IndexStamp, Arc<ReferrerMap>)>>,
}

#[cfg(unix)]
fn stamp_of(m: &std::fs::Metadata) -> IndexStamp {
    use std::os::unix::fs::MetadataExt as _;
    IndexStamp {
        device: m.dev(),
        inode: m.ino(),
        len: m.len(),
        modified: m.modified().ok(),
        changed: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
    }
}

/// Without inodes nothing tells versions apart reliably: never reuse the map.
#[cfg(not(unix))]
fn stamp_of(_: &std::fs::Metadata) -> IndexStamp {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    IndexStamp {
        device: 0,
        inode: NEXT.fetch_add(1, Ordering::Relaxed),
        len: 0,
        modified: None,
        changed: 0,
    }
}

/// Referrer descriptors by subject, in index order, each listed once.
type ReferrerMap = HashMap<Digest, Vec<Descriptor>>;

/// What identifies one version of `index.json`: it is only ever replaced by rename, so a new
/// version is a new inode (and, in practice, a new size or time).
#[derive(Debug, Clone, PartialEq, Eq)]
struct IndexStamp {
    device: u64,
    inode: u64,
    len: u64,
    modified: Option<std::time::SystemTime>,
    /// The inode change time, in nanoseconds: a rename or write always moves it.
    changed: i128,
}

/// What [`Layout::open`] does when there is no layout at the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// The layout must exist: a missing or empty directory, or a missing archive file, is an
    /// error (reading, or writing next to an image that is there).
    MustExist,
    /// Make an empty layout when there is none (a missing or empty directory, a missing
    /// archive file): a destination.
    CreateIfMissing,
}

impl Layout {
    /// Opens the layout at `path`; with [`OpenMode::CreateIfMissing`], makes an empty one if
    /// there is none (a missing or empty directory, a missing archive file).
    /// An archive is unpacked into a private temporary directory, every blob checked against
    /// its name on the way; [`Layout::save`] writes it back.
    pub fn open(kind: LayoutKind, path: &Path, mode: OpenMode) -> Result<Layout, RegistryError> {
        let describe = format!("{}:{}", kind.prefix(), path.display());
        let create = mode == OpenMode::CreateIfMissing;
        let (root, unpacked, dirty, hashed, archive_state) = match kind {
            LayoutKind::Directory => {
                match std::fs::read_dir(path) {
                    Ok(mut entries) => {
                        if entries.next().is_none() {
                            if !create {
                                return Err(layout_err(
                                    &describe,
                                    "no OCI image layout here: the directory is empty",
                                ));
                            }
                            init_layout(path, &describe)?;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                        init_layout(path, &describe)?;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        return Err(layout_err(
                            &describe,
                            "no OCI image layout here: no such directory",
                        ));
                    }
                    Err(e) => {
                        return Err(io_err(&describe, "cannot read the directory", e));
                    }
                }
                (path.to_path_buf(), None, false, false, ArchiveState::NoFile)
            }
            LayoutKind::Archive => {
                let unpacked = archive::open_archive(path, mode, &describe)?;
                (
                    unpacked.dir.path().to_path_buf(),
                    Some(unpacked.dir),
                    unpacked.created,
                    true,
                    unpacked.state,
                )
            }
        };
        let layout = Layout {
            inner: Arc::new(Inner {
                kind,
                path: path.to_path_buf(),
                root,
                _unpacked: unpacked,
                dirty: AtomicBool::new(dirty),
                hashed,
                archive_state: Mutex::new(archive_state),
                limits: Limits::default(),
                subjects: Mutex::new(HashMap::new()),
                referrers: Mutex::new(None),
            }),
            scope: None,
        };
        layout.check_oci_layout()?;
        layout.read_index()?;
        Ok(layout)
    }

    /// Whether an archive has changes that [`Layout::save`] has not written yet.
    pub fn is_dirty(&self) -> bool {
        self.inner.dirty.load(Ordering::SeqCst)
    }

    /// The same layout, where tag `T` means the entry `<scope>:T` (falling back to a plain
    /// `T` on reads), or plain `T` again with `None`.
    pub fn scoped(&self, scope: Option<&str>) -> Layout {
        Layout {
            inner: Arc::clone(&self.inner),
            scope: scope.map(str::to_string),
        }
    }

    /// The repository name tags are scoped to, if any.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// Finds the image `r` names (its tag, its digest, or the only image of the layout) and
    /// its identity (see the module docs). A tag or digest the layout does not hold is
    /// [`RegistryError::NotFound`]; no tag and no digest in a layout of several images is an
    /// error that lists them.
    pub fn resolve_ref(&self, r: &LayoutRef) -> Result<LayoutImage, RegistryError> {
        let index = self.read_index()?;
        let entry: Option<Descriptor> = match (&r.tag, &r.digest) {
            (Some(tag), digest) => {
                // `oci-archive:FILE:REPO@sha256:…` is split into the tag `REPO` and the
                // digest; a digest-pinned image is named `REPO@sha256:…` whole (see
                // `name_by_digest`).
                let by_digest = digest.as_ref().map(|d| format!("{tag}@{d}"));
                let entry = self
                    .find_tag(&index, tag, TagMatch::RefNameOrImageName)
                    .or_else(|| self.find_tag(&index, by_digest.as_deref()?, TagMatch::RefName))
                    .ok_or_else(|| RegistryError::NotFound {
                        what: format!("tag {tag} in {}", self.describe()),
                    })?;
                if let Some(digest) = digest
                    && &entry.digest != digest
                {
                    return Err(RegistryError::Usage(format!(
                        "tag {tag} in {} is {}, not {digest}",
                        self.describe(),
                        entry.digest
                    )));
                }
                Some(entry.clone())
            }
            (None, Some(digest)) => {
                let listed = index
                    .manifests
                    .iter()
                    .filter(|d| &d.digest == digest)
                    .max_by_key(|d| d.annotations.contains_key(REF_NAME_ANNOTATION))
                    .cloned();
                if listed.is_none() {
                    // Not listed (a platform manifest of an index, say): it must be there and
                    // be a manifest.
                    let fetched = self.read_manifest(digest)?;
                    AnyManifest::parse(&fetched.media_type, &fetched.bytes).map_err(|e| {
                        RegistryError::Malformed {
                            what: format!("manifest {digest} in {}", self.describe()),
                            reason: e.to_string(),
                        }
                    })?;
                }
                listed
            }
            (None, None) => Some(self.only_image(&index)?),
        };
        let digest = match (&entry, &r.digest) {
            (Some(entry), _) => entry.digest.clone(),
            (None, Some(digest)) => digest.clone(),
            (None, None) => {
                return Err(layout_err(&self.describe(), "no image chosen"));
            }
        };
        let (identity, scope) = self.identity(entry.as_ref(), r.tag.as_deref())?;
        Ok(LayoutImage {
            layout: self.scoped(scope.as_deref()),
            pinned: identity.with_digest(digest),
        })
    }

    /// The images the layout's `index.json` names: each tagged entry that is not a referrer
    /// or a cosign legacy tag, with its tag (`org.opencontainers.image.ref.name`) as written.
    pub fn images(&self) -> Result<Vec<(String, Descriptor)>, RegistryError> {
        let index = self.read_index()?;
        let mut out = Vec::new();
        for entry in &index.manifests {
            let Some(name) = entry.annotations.get(REF_NAME_ANNOTATION) else {
                continue;
            };
            if is_signature_tag(tag_part(name)) || self.subject_of(entry)?.is_some() {
                continue;
            }
            out.push((name.clone(), entry.clone()));
        }
        Ok(out)
    }

    /// Lists manifest `digest` (stored already) in `index.json` under the name
    /// `<scope>@<digest>`, for an image that has no tag: a digest-pinned image `signet export`
    /// writes. skopeo reads the name as it reads a tag (`oci-archive:FILE:<scope>@<digest>`),
    /// and `import` pushes such an entry by digest, never under a tag. Returns the name.
    /// Needs a scope (the image's full repository name).
    pub fn name_by_digest(&self, digest: &Digest) -> Result<String, RegistryError> {
        let Some(scope) = &self.scope else {
            return Err(RegistryError::Usage(format!(
                "cannot name {digest} in {} without its repository",
                self.describe()
            )));
        };
        let name = format!("{scope}@{digest}");
        let fetched = self.read_manifest(digest)?;
        let parsed = AnyManifest::parse(&fetched.media_type, &fetched.bytes).map_err(|e| {
            RegistryError::Malformed {
                what: format!("manifest {digest} in {}", self.describe()),
                reason: e.to_string(),
            }
        })?;
        let entry = Descriptor {
            media_type: parsed.media_type().to_string(),
            digest: digest.clone(),
            size: fetched.bytes.len() as u64,
            artifact_type: match &parsed {
                AnyManifest::Image(m) => m.artifact_type.clone(),
                AnyManifest::Index(i) => i.artifact_type.clone(),
            },
            annotations: BTreeMap::from([(REF_NAME_ANNOTATION.to_string(), name.clone())]),
            platform: None,
        };
        self.update_index(|index| {
            if index.manifests.contains(&entry) {
                return Ok(false);
            }
            index.manifests.retain(|d| ref_name(d) != Some(&name));
            index.manifests.push(entry);
            Ok(true)
        })?;
        Ok(name)
    }

    /// Checks the whole layout before it is trusted wholesale (an import): every blob file
    /// hashes to its name, and every descriptor reachable from `index.json` (through indexes,
    /// manifests, configs and layers) points at a present blob of the size it says.
    /// Non-distributable layers may be absent.
    pub fn verify_all(&self) -> Result<(), RegistryError> {
        let describe = self.describe();
        if !self.inner.hashed {
            for (name, digest) in blob_files(&self.inner.root, &describe)? {
                let file = open_inside(&self.inner.root, &name)
                    .map_err(|e| io_err(&describe, format!("cannot read {name}"), e))?;
                let actual = hash_reader(file, digest.algorithm())
                    .map_err(|e| io_err(&describe, format!("cannot read {name}"), e))?;
                if actual != digest {
                    return Err(layout_err(
                        &describe,
                        format!("blob {digest} hashes to {actual}"),
                    ));
                }
            }
        }
        let index = self.read_index()?;
        // Every descriptor is checked where it occurs (one blob may be listed twice with
        // different sizes, a config and a layer say); a manifest is read once per media type
        // it is listed as (what it is parsed as depends on it).
        let mut sizes: HashMap<Digest, Option<u64>> = HashMap::new();
        let mut read: BTreeSet<(Digest, String)> = BTreeSet::new();
        let mut stack: Vec<(Descriptor, String)> = index
            .manifests
            .into_iter()
            .map(|d| (d, "index.json".to_string()))
            .collect();
        while let Some((d, parent)) = stack.pop() {
            let size = match sizes.get(&d.digest) {
                Some(known) => *known,
                None => {
                    let size = self.blob_size(&d.digest)?;
                    sizes.insert(d.digest.clone(), size);
                    size
                }
            };
            let Some(size) = size else {
                if oci::is_non_distributable(&d.media_type) {
                    continue;
                }
                return Err(layout_err(
                    &describe,
                    format!("{parent} lists {} but the blob is missing", d.digest),
                ));
            };
            if size != d.size {
                return Err(layout_err(
                    &describe,
                    format!(
                        "{parent} says {} has {} bytes, the blob has {size}",
                        d.digest, d.size
                    ),
                ));
            }
            if !oci::MANIFEST_MEDIA_TYPES.contains(&d.media_type.as_str())
                || !read.insert((d.digest.clone(), d.media_type.clone()))
            {
                continue;
            }
            let fetched = self.read_manifest(&d.digest)?;
            let manifest = AnyManifest::parse(&d.media_type, &fetched.bytes).map_err(|e| {
                RegistryError::Malformed {
                    what: format!("manifest {} in {describe}", d.digest),
                    reason: e.to_string(),
                }
            })?;
            let from = format!("manifest {}", d.digest);
            match manifest {
                AnyManifest::Image(m) => {
                    stack.push((m.config, from.clone()));
                    stack.extend(m.layers.into_iter().map(|l| (l, from.clone())));
                }
                AnyManifest::Index(i) => {
                    stack.extend(i.manifests.into_iter().map(|l| (l, from.clone())));
                }
            }
        }
        Ok(())
    }

    /// The size of the blob `digest`, `None` when it is missing; an error when it is not a
    /// regular file or cannot be read.
    /// The size of the blob file `digest`, or `None` when there is none. Not a content check:
    /// readers hash what they read.
    pub fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, RegistryError> {
        match open_inside(&self.inner.root, &blob_name(digest)).and_then(|f| f.metadata()) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(
                &self.describe(),
                format!("cannot read {}", blob_name(digest)),
                e,
            )),
        }
    }

    /// The layout's path as given.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Directory or archive.
    pub fn kind(&self) -> LayoutKind {
        self.inner.kind
    }

    /// `oci:PATH` or `oci-archive:FILE`.
    pub fn describe(&self) -> String {
        format!("{}:{}", self.inner.kind.prefix(), self.inner.path.display())
    }

    pub(crate) async fn resolve(&self, image: &ImageRef) -> Result<PinnedRef, RegistryError> {
        if let Some(pinned) = image.pinned() {
            return Ok(pinned);
        }
        let tag = image.tag().unwrap_or("latest");
        let index = self.read_index()?;
        let entry = self
            .find_tag(&index, tag, TagMatch::RefName)
            .or_else(|| {
                let full = format!("{}:{tag}", image.name());
                index.manifests.iter().find(|d| ref_name(d) == Some(&full))
            })
            .ok_or_else(|| RegistryError::NotFound {
                what: format!("tag {tag} in {}", self.describe()),
            })?;
        Ok(image.with_digest(entry.digest.clone()))
    }

    pub(crate) async fn get_manifest(
        &self,
        digest: &Digest,
    ) -> Result<FetchedManifest, RegistryError> {
        self.read_manifest(digest)
    }

    pub(crate) async fn get_manifest_by_tag(
        &self,
        tag: &str,
    ) -> Result<Option<FetchedManifest>, RegistryError> {
        let index = self.read_index()?;
        match self.find_tag(&index, tag, TagMatch::RefName) {
            Some(entry) => self.read_manifest(&entry.digest).map(Some),
            None => Ok(None),
        }
    }

    pub(crate) async fn manifest_exists(&self, digest: &Digest) -> Result<bool, RegistryError> {
        self.blob_present(digest)
    }

    pub(crate) async fn get_blob(&self, digest: &Digest) -> Result<Vec<u8>, RegistryError> {
        self.read_object(digest, self.inner.limits.max_blob_bytes, "blob")
    }

    pub(crate) async fn blob_exists(&self, digest: &Digest) -> Result<bool, RegistryError> {
        self.blob_present(digest)
    }

    pub(crate) async fn put_blob(&self, bytes: &[u8]) -> Result<Digest, RegistryError> {
        let digest = Digest::sha256_of(bytes);
        if !self.blob_present(&digest)? {
            self.write_blob(&digest, bytes)?;
        }
        Ok(digest)
    }

    pub(crate) async fn blob_stream(&self, digest: &Digest) -> Result<ByteStream, RegistryError> {
        let what = format!("blob {digest} in {}", self.describe());
        let file = match open_inside(&self.inner.root, &blob_name(digest)) {
            Ok(file) => tokio::fs::File::from_std(file),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(RegistryError::NotFound { what });
            }
            Err(e) => return Err(io_err(&self.describe(), format!("cannot read {what}"), e)),
        };
        let layout = self.describe();
        let stream = futures_util::stream::unfold(Some(file), move |state| {
            let what = what.clone();
            let layout = layout.clone();
            async move {
                let mut file = state?;
                let mut buf = bytes::BytesMut::with_capacity(CHUNK);
                match file.read_buf(&mut buf).await {
                    Ok(0) => None,
                    Ok(_) => Some((Ok(buf.freeze()), Some(file))),
                    Err(e) => Some((Err(io_err(&layout, format!("cannot read {what}"), e)), None)),
                }
            }
        });
        Ok(Box::pin(stream))
    }

    pub(crate) async fn put_blob_stream(
        &self,
        digest: &Digest,
        size: u64,
        mut body: ByteStream,
    ) -> Result<(), RegistryError> {
        if self.blob_present(digest)? {
            return Ok(());
        }
        let describe = self.describe();
        let what = format!("blob {digest}");
        let (tmp, dir) = self.blob_temp(digest)?;
        let std_file = tmp
            .as_file()
            .try_clone()
            .map_err(|e| io_err(&describe, format!("cannot write {what}"), e))?;
        let mut file = tokio::fs::File::from_std(std_file);
        let mut hasher = Hasher::new(digest.algorithm());
        let mut written: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk: Bytes = chunk?;
            written += chunk.len() as u64;
            if written > size {
                return Err(layout_err(
                    &describe,
                    format!("{what} is longer than the {size} bytes announced; not stored"),
                ));
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| io_err(&describe, format!("cannot write {what} in {dir}"), e))?;
        }
        file.flush()
            .await
            .map_err(|e| io_err(&describe, format!("cannot write {what} in {dir}"), e))?;
        if self.inner.kind == LayoutKind::Directory {
            file.sync_all()
                .await
                .map_err(|e| io_err(&describe, format!("cannot write {what} in {dir}"), e))?;
        }
        drop(file);
        if written != size {
            return Err(layout_err(
                &describe,
                format!("{what} has {written} bytes, {size} were announced; not stored"),
            ));
        }
        let actual = hasher.finish();
        if &actual != digest {
            return Err(RegistryError::DigestMismatch {
                what: format!("{what} for {describe}"),
                expected: digest.clone(),
                actual,
            });
        }
        self.commit_blob(tmp, digest)
    }

    pub(crate) async fn put_manifest(
        &self,
        reference: TagOrDigest<'_>,
        media_type: &str,
        bytes: &[u8],
        precondition: Precondition,
    ) -> Result<PutManifest, RegistryError> {
        let limit = self.inner.limits.max_manifest_bytes;
        if bytes.len() as u64 > limit {
            return Err(RegistryError::TooLarge {
                what: format!("manifest {reference} for {}", self.describe()),
                limit,
            });
        }
        let parsed =
            AnyManifest::parse(media_type, bytes).map_err(|e| RegistryError::Malformed {
                what: format!("manifest {reference} for {}", self.describe()),
                reason: e.to_string(),
            })?;
        let digest = match reference {
            TagOrDigest::Digest(expected) => {
                let actual = Digest::of(expected.algorithm(), bytes);
                if actual != *expected {
                    return Err(RegistryError::DigestMismatch {
                        what: format!("manifest for {}", self.describe()),
                        expected: expected.clone(),
                        actual,
                    });
                }
                expected.clone()
            }
            TagOrDigest::Tag(_) => Digest::sha256_of(bytes),
        };
        if !self.blob_present(&digest)? {
            self.write_blob(&digest, bytes)?;
        }
        let tag = match reference {
            TagOrDigest::Tag(tag) => tag,
            TagOrDigest::Digest(_) => {
                // As a registry with the referrers API indexes a manifest with a subject on push,
                // list it in index.json so that `referrers` finds it.
                let Some(subject) = parsed.subject().map(|s| s.digest.clone()) else {
                    return Ok(PutManifest {
                        digest,
                        oci_subject: None,
                    });
                };
                let Some(mut entry) = referrer_descriptor(media_type, bytes, &subject) else {
                    return Ok(PutManifest {
                        digest,
                        oci_subject: None,
                    });
                };
                entry.annotations.remove(REF_NAME_ANNOTATION);
                self.update_index(|index| {
                    if index.manifests.iter().any(|d| d.digest == entry.digest) {
                        return Ok(false);
                    }
                    index.manifests.push(entry);
                    Ok(true)
                })?;
                return Ok(PutManifest {
                    digest,
                    oci_subject: Some(subject.to_string()),
                });
            }
        };
        if tag.is_empty() || tag.chars().any(|c| c.is_whitespace() || c == '@') {
            return Err(RegistryError::Usage(format!("invalid tag {tag:?}")));
        }
        let name = match &self.scope {
            Some(scope) => format!("{scope}:{tag}"),
            None => tag.to_string(),
        };
        let mut entry = Descriptor {
            media_type: parsed.media_type().to_string(),
            digest: digest.clone(),
            size: bytes.len() as u64,
            artifact_type: match &parsed {
                AnyManifest::Image(m) => m.artifact_type.clone(),
                AnyManifest::Index(i) => i.artifact_type.clone(),
            },
            annotations: BTreeMap::new(),
            platform: None,
        };
        entry
            .annotations
            .insert(REF_NAME_ANNOTATION.to_string(), name.clone());
        let describe = self.describe();
        self.update_index(|index| {
            let existing = index
                .manifests
                .iter()
                .position(|d| ref_name(d) == Some(&name));
            let failed = || RegistryError::Status {
                registry: describe.clone(),
                what: format!("tag {name}"),
                status: 412,
                message: "precondition failed: changed since read".into(),
            };
            match (&precondition, existing) {
                (Precondition::None, _) => {}
                (Precondition::Absent, None) => {}
                (Precondition::Absent, Some(_)) => return Err(failed()),
                (Precondition::Matches(etag), Some(i))
                    if index.manifests[i].digest.to_string() == *etag => {}
                (Precondition::Matches(_), _) => return Err(failed()),
            }
            // One entry per name: replace the first in place, drop any others. A manifest
            // that loses its only name is simply no longer listed (its blob stays).
            let before = index.manifests.clone();
            index.manifests.retain(|d| ref_name(d) != Some(&name));
            match existing {
                Some(i) => index.manifests.insert(i.min(index.manifests.len()), entry),
                None => index.manifests.push(entry),
            }
            Ok(index.manifests != before)
        })?;
        Ok(PutManifest {
            digest,
            oci_subject: None,
        })
    }

    pub(crate) async fn tags_with_prefix(
        &self,
        prefix: &str,
    ) -> Result<Vec<String>, RegistryError> {
        let index = self.read_index()?;
        let scoped = self.scope.as_ref().map(|s| format!("{s}:"));
        let mut out = BTreeSet::new();
        for name in index.manifests.iter().filter_map(ref_name) {
            let tag = match &scoped {
                Some(scoped) if name.starts_with(scoped.as_str()) => &name[scoped.len()..],
                _ if name.contains('/') => continue,
                _ => name.as_str(),
            };
            if tag.starts_with(prefix) {
                out.insert(tag.to_string());
            }
        }
        Ok(out.into_iter().collect())
    }

    pub(crate) async fn referrers(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Referrers, RegistryError> {
        let map = self.referrer_map()?;
        let descriptors: Vec<Descriptor> = map
            .get(subject)
            .into_iter()
            .flatten()
            .filter(|d| artifact_type.is_none_or(|t| d.artifact_type.as_deref() == Some(t)))
            .cloned()
            .collect();
        // The same bound as for a registry's referrers.
        let limit = self.inner.limits.max_referrers;
        if descriptors.len() > limit {
            return Err(RegistryError::TooMany {
                what: format!("referrers of {subject} in {}", self.describe()),
                limit,
                unit: "referrers",
            });
        }
        Ok(Referrers {
            descriptors,
            source: ReferrersSource::Layout,
        })
    }

    /// The referrers of every subject in the current `index.json` (see
    /// [`Inner::referrers`]).
    fn referrer_map(&self) -> Result<Arc<ReferrerMap>, RegistryError> {
        let stamp = open_inside(&self.inner.root, "index.json")
            .and_then(|f| f.metadata())
            .ok()
            .map(|m| stamp_of(&m));
        if let Some(stamp) = &stamp
            && let Ok(cached) = self.inner.referrers.lock()
            && let Some((known, map)) = cached.as_ref()
            && known == stamp
        {
            return Ok(Arc::clone(map));
        }
        let index = self.read_index()?;
        let mut map = ReferrerMap::new();
        let mut seen = BTreeSet::new();
        for entry in &index.manifests {
            if let Some((of, descriptor)) = self.subject_of(entry)?
                && seen.insert((of.clone(), descriptor.digest.clone()))
            {
                map.entry(of).or_default().push(descriptor);
            }
        }
        let map = Arc::new(map);
        if let Some(stamp) = stamp
            && let Ok(mut cached) = self.inner.referrers.lock()
        {
            *cached = Some((stamp, Arc::clone(&map)));
        }
        Ok(map)
    }

    pub(crate) async fn attach_referrer(
        &self,
        subject: &Digest,
        media_type: &str,
        manifest: &[u8],
    ) -> Result<Descriptor, RegistryError> {
        let mut descriptor =
            referrer_descriptor(media_type, manifest, subject).ok_or_else(|| {
                RegistryError::Usage(format!(
                    "the manifest to attach does not name {subject} as its subject"
                ))
            })?;
        descriptor.annotations.remove(REF_NAME_ANNOTATION);
        self.put_manifest(
            TagOrDigest::Digest(&descriptor.digest),
            media_type,
            manifest,
            Precondition::None,
        )
        .await?;
        Ok(descriptor)
    }
}

// Internals: files, index.json, lookups.
impl Layout {
    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.inner.root.join(blob_name(digest))
    }

    fn blob_present(&self, digest: &Digest) -> Result<bool, RegistryError> {
        match open_inside(&self.inner.root, &blob_name(digest)) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(
                &self.describe(),
                format!("cannot read {}", blob_name(digest)),
                e,
            )),
        }
    }

    /// Reads the blob `digest`, at most `limit` bytes, and checks it against the digest.
    fn read_object(
        &self,
        digest: &Digest,
        limit: u64,
        kind: &str,
    ) -> Result<Vec<u8>, RegistryError> {
        let what = format!("{kind} {digest} in {}", self.describe());
        let bytes = match read_bounded(&self.inner.root, &blob_name(digest), limit) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(RegistryError::TooLarge { what, limit }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(RegistryError::NotFound { what });
            }
            Err(e) => return Err(io_err(&self.describe(), format!("cannot read {what}"), e)),
        };
        let actual = Digest::of(digest.algorithm(), &bytes);
        if &actual != digest {
            return Err(RegistryError::DigestMismatch {
                what,
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    fn read_manifest(&self, digest: &Digest) -> Result<FetchedManifest, RegistryError> {
        let bytes = self.read_object(digest, self.inner.limits.max_manifest_bytes, "manifest")?;
        Ok(FetchedManifest {
            digest: digest.clone(),
            media_type: oci::manifest_media_type(&bytes, ""),
            bytes,
            // A layout has no ETag: the digest a tag points at serves (see `put_manifest`).
            etag: Some(digest.to_string()),
        })
    }

    /// A temporary file in the blob's directory, and that directory for messages.
    fn blob_temp(
        &self,
        digest: &Digest,
    ) -> Result<(tempfile::NamedTempFile, String), RegistryError> {
        let dir_name = format!("blobs/{}", digest.algorithm());
        let dir = real_dirs(&self.inner.root, &dir_name)
            .map_err(|e| io_err(&self.describe(), format!("cannot write in {dir_name}"), e))?;
        let tmp = tempfile::Builder::new()
            .prefix(".signet-")
            .tempfile_in(&dir)
            .map_err(|e| io_err(&self.describe(), format!("cannot write in {dir_name}"), e))?;
        Ok((tmp, dir_name))
    }

    fn write_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), RegistryError> {
        let (mut tmp, dir) = self.blob_temp(digest)?;
        tmp.write_all(bytes)
            .and_then(|()| {
                if self.inner.kind == LayoutKind::Directory {
                    tmp.as_file().sync_all()
                } else {
                    Ok(())
                }
            })
            .map_err(|e| {
                io_err(
                    &self.describe(),
                    format!("cannot write blob {digest} in {dir}"),
                    e,
                )
            })?;
        self.commit_blob(tmp, digest)
    }

    fn commit_blob(
        &self,
        tmp: tempfile::NamedTempFile,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        tmp.persist(self.blob_path(digest)).map_err(|e| {
            io_err(
                &self.describe(),
                format!("cannot store {}", blob_name(digest)),
                e.error,
            )
        })?;
        self.inner.dirty.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn check_oci_layout(&self) -> Result<(), RegistryError> {
        let describe = self.describe();
        let bytes = match read_bounded(&self.inner.root, "oci-layout", MAX_OCI_LAYOUT_BYTES) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(layout_err(&describe, "oci-layout is too large")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(layout_err(
                    &describe,
                    "not an OCI image layout: there is no oci-layout file",
                ));
            }
            Err(e) => return Err(io_err(&describe, "cannot read oci-layout", e)),
        };
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct OciLayout {
            image_layout_version: String,
        }
        match serde_json::from_slice::<OciLayout>(&bytes) {
            Ok(l) if l.image_layout_version == LAYOUT_VERSION => Ok(()),
            Ok(l) => Err(layout_err(
                &describe,
                format!(
                    "oci-layout says imageLayoutVersion {:?}; only {LAYOUT_VERSION} is known",
                    l.image_layout_version
                ),
            )),
            Err(e) => Err(layout_err(&describe, format!("malformed oci-layout: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(feature = "fuzzing")]
pub(crate) use archive::fuzzing;
