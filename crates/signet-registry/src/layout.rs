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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt as _;
use signet_core::digest::{Algorithm, Digest};
use signet_core::oci::{self, AnyManifest, Descriptor, Index};
use signet_core::reference::{ImageRef, PinnedRef};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::client::{FetchedManifest, Limits, Precondition, PutManifest};
use crate::error::RegistryError;
use crate::hashing::Hasher;
use crate::referrers::{Referrers, ReferrersSource, referrer_descriptor};
use crate::repository::ByteStream;

/// The annotation that names an `index.json` entry (its tag).
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// The annotation containerd and `docker save` put on entries: the full image name.
pub const CONTAINERD_NAME_ANNOTATION: &str = "io.containerd.image.name";
/// The registry part of the identity of an image whose layout does not name it fully.
pub const LAYOUT_REGISTRY: &str = "layout.invalid";
/// The only `imageLayoutVersion` there is.
const LAYOUT_VERSION: &str = "1.0.0";
/// How much is read or written at a time when streaming a blob.
const CHUNK: usize = 256 << 10;
/// Largest `index.json` read: bigger than a manifest, since it lists every referrer.
const MAX_INDEX_JSON_BYTES: u64 = 64 << 20;
/// Largest `oci-layout` read.
const MAX_OCI_LAYOUT_BYTES: u64 = 4 << 10;
/// Largest GNU long-name or long-link entry and PAX header of an archive: the tar reader
/// holds them in memory whole, and a layout's names are short.
const MAX_TAR_EXTENSION_BYTES: u64 = 64 << 10;
/// How much of an archive member's name an error message shows.
const SHOWN_NAME_CHARS: usize = 200;

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
    _unpacked: Option<tempfile::TempDir>,
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
}

impl Layout {
    /// Opens the layout at `path`; with `create`, makes an empty one if there is none (a
    /// missing or empty directory, a missing archive file).
    /// An archive is unpacked into a private temporary directory, every blob checked against
    /// its name on the way; [`Layout::save`] writes it back.
    pub fn open(kind: LayoutKind, path: &Path, create: bool) -> Result<Layout, RegistryError> {
        let describe = format!("{}:{}", kind.prefix(), path.display());
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
                let unpacked = tempfile::Builder::new()
                    .prefix("signet-layout-")
                    .tempdir()
                    .map_err(|e| io_err(&describe, "cannot make a temporary directory", e))?;
                let (created, state) = match File::open(path) {
                    Ok(file) => {
                        unpack(file, unpacked.path(), &describe)?;
                        let state = match File::open(unpacked.path().join("index.json")) {
                            Ok(index) => ArchiveState::Index(
                                hash_reader(index, Algorithm::Sha256)
                                    .map_err(|e| io_err(&describe, "cannot read index.json", e))?,
                            ),
                            Err(e) if e.kind() == io::ErrorKind::NotFound => ArchiveState::NoIndex,
                            Err(e) => return Err(io_err(&describe, "cannot read index.json", e)),
                        };
                        (false, state)
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                        init_layout(unpacked.path(), &describe)?;
                        (true, ArchiveState::NoFile)
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        return Err(layout_err(&describe, "no such file"));
                    }
                    Err(e) => return Err(io_err(&describe, "cannot open the archive", e)),
                };
                (
                    unpacked.path().to_path_buf(),
                    Some(unpacked),
                    created,
                    true,
                    state,
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
            }),
            scope: None,
        };
        layout.check_oci_layout()?;
        layout.read_index()?;
        Ok(layout)
    }

    /// Writes an archive back (atomically, only when something changed); a no-op for a
    /// directory. The tarball is deterministic: `oci-layout`, `index.json`, then the blobs in
    /// name order, with zero times and owners.
    ///
    /// Another process may have written the archive since it was opened (two `signet sign`
    /// runs on one file, each with its own unpacked copy): then nothing is written, and the
    /// error says so, rather than replacing the other's changes. The check and the rename
    /// happen under an exclusive lock on the archive's directory (when the system can lock a
    /// directory; signet's writers all take it), and the archive's `index.json` is what is
    /// compared.
    pub fn save(&self) -> Result<(), RegistryError> {
        if self.inner.kind != LayoutKind::Archive || !self.inner.dirty.swap(false, Ordering::SeqCst)
        {
            return Ok(());
        }
        let result = self.save_archive();
        if result.is_err() {
            self.inner.dirty.store(true, Ordering::SeqCst);
        }
        result
    }

    fn save_archive(&self) -> Result<(), RegistryError> {
        let describe = self.describe();
        let path = &self.inner.path;
        let parent = parent_dir(path);
        // Best effort: without a lock the comparison below still catches a writer that
        // finished before it.
        let lock = File::open(&parent).ok().filter(|dir| dir.lock().is_ok());
        let mut known = self
            .inner
            .archive_state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A file that is gone holds no one's changes: writing it back loses nothing.
        let current = archive_state(path, &describe)?;
        if current != ArchiveState::NoFile && current != *known {
            return Err(layout_err(
                &describe,
                format!(
                    "{} was changed by another process since signet opened it; nothing \
                     written — run the command again",
                    path.display()
                ),
            ));
        }
        let written = write_archive(&self.inner.root, path, &describe)?;
        *known = ArchiveState::Index(written);
        drop(known);
        drop(lock);
        Ok(())
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
                let entry =
                    self.find_tag(&index, tag, true)
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

    /// Checks the whole layout before it is trusted wholesale (an import): every blob file
    /// hashes to its name, and every descriptor reachable from `index.json` (through indexes,
    /// manifests, configs and layers) points at a present blob of the size it says.
    /// Non-distributable layers may be absent.
    pub fn verify_all(&self) -> Result<(), RegistryError> {
        let describe = self.describe();
        if !self.inner.hashed {
            for (name, digest) in blob_files(&self.inner.root, &describe)? {
                let path = self.inner.root.join(&name);
                let file = File::open(&path)
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
                if is_non_distributable(&d.media_type) {
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
        match std::fs::metadata(self.blob_path(digest)) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Err(layout_err(
                &self.describe(),
                format!("{} is not a regular file", blob_name(digest)),
            )),
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
            .find_tag(&index, tag, false)
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
        match self.find_tag(&index, tag, false) {
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
        let file = match tokio::fs::File::open(self.blob_path(digest)).await {
            Ok(file) => file,
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
        reference: &str,
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
        let digest = match reference.parse::<Digest>() {
            Ok(expected) => {
                let actual = Digest::of(expected.algorithm(), bytes);
                if actual != expected {
                    return Err(RegistryError::DigestMismatch {
                        what: format!("manifest for {}", self.describe()),
                        expected,
                        actual,
                    });
                }
                expected
            }
            Err(_) => Digest::sha256_of(bytes),
        };
        if !self.blob_present(&digest)? {
            self.write_blob(&digest, bytes)?;
        }
        if reference.parse::<Digest>().is_ok() {
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
        let tag = reference;
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
        let index = self.read_index()?;
        let mut seen = BTreeSet::new();
        let mut descriptors = Vec::new();
        for entry in &index.manifests {
            if let Some((of, descriptor)) = self.subject_of(entry)?
                && &of == subject
                && artifact_type.is_none_or(|t| descriptor.artifact_type.as_deref() == Some(t))
                && seen.insert(descriptor.digest.clone())
            {
                descriptors.push(descriptor);
            }
        }
        Ok(Referrers {
            descriptors,
            source: ReferrersSource::Layout,
        })
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
            &descriptor.digest.to_string(),
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
        match std::fs::metadata(self.blob_path(digest)) {
            Ok(m) => Ok(m.is_file()),
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
        let bytes = match read_bounded(&self.blob_path(digest), limit) {
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
            media_type: media_type_of(&bytes),
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
        let dir = self.inner.root.join(&dir_name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| io_err(&self.describe(), format!("cannot create {dir_name}"), e))?;
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
        let bytes = match read_bounded(&self.inner.root.join("oci-layout"), MAX_OCI_LAYOUT_BYTES) {
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

    fn read_index(&self) -> Result<Index, RegistryError> {
        read_index_at(&self.inner.root, &self.describe())
    }

    /// Read-modify-write of `index.json` under an exclusive lock on `oci-layout` (a file that
    /// is never replaced, unlike `index.json`). `change` says whether it changed anything;
    /// the new index replaces the old one by rename. Nothing here awaits, so the lock is never
    /// held across a suspension point.
    fn update_index(
        &self,
        change: impl FnOnce(&mut Index) -> Result<bool, RegistryError>,
    ) -> Result<(), RegistryError> {
        let describe = self.describe();
        let lock = File::open(self.inner.root.join("oci-layout"))
            .map_err(|e| io_err(&describe, "cannot open oci-layout to lock the layout", e))?;
        lock.lock()
            .map_err(|e| io_err(&describe, "cannot lock oci-layout", e))?;
        let mut index = self.read_index()?;
        if change(&mut index)? {
            write_atomic(
                &self.inner.root,
                "index.json",
                &index.to_json(),
                self.inner.kind == LayoutKind::Directory,
                &describe,
            )?;
            self.inner.dirty.store(true, Ordering::SeqCst);
        }
        drop(lock);
        Ok(())
    }

    /// The entry tag `tag` names: `<scope>:tag` first, then a plain `tag`; with `by_name`,
    /// also an entry whose `io.containerd.image.name` is `tag`.
    fn find_tag<'a>(&self, index: &'a Index, tag: &str, by_name: bool) -> Option<&'a Descriptor> {
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
                by_name.then(|| {
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
    fn subject_of(
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
    fn only_image(&self, index: &Index) -> Result<Descriptor, RegistryError> {
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

    /// The identity of `entry` (see the module docs) and the scope its tags live in.
    ///
    /// `index.json` is not trusted: anyone who can edit the file can write any name into its
    /// annotations, so a name from there would let a layout choose how policies judge it (an
    /// exempt pattern, a trusted registry). A full reference is the identity only when the
    /// user typed it as the tag (`oci:DIR:registry.example/app:v1`), as with a registry
    /// reference; `resolve_ref` found the entry by exactly that name. Otherwise the identity is
    /// `layout.invalid/<file or directory name>[:tag]`, whatever the annotations say.
    ///
    /// The scope only says where tags next to the image (legacy cosign tags) are looked up:
    /// the typed full reference, else the entry's own full ref name. Evidence found there is
    /// still checked against the digest and the identity, so it decides nothing by itself.
    fn identity(
        &self,
        entry: Option<&Descriptor>,
        given_tag: Option<&str>,
    ) -> Result<(ImageRef, Option<String>), RegistryError> {
        if let Some(given) = given_tag
            && let Some(image) = qualified(given)
        {
            let scope = repository_of(given, &image);
            return Ok((image, Some(scope)));
        }
        let ref_name = entry.and_then(ref_name).map(String::as_str);
        let scope = ref_name.and_then(|name| qualified(name).map(|i| repository_of(name, &i)));
        let base = format!("{LAYOUT_REGISTRY}/{}", sanitized_name(&self.inner.path));
        let image: ImageRef =
            base.parse()
                .map_err(|e: signet_core::reference::ReferenceError| {
                    layout_err(&self.describe(), format!("cannot name the image: {e}"))
                })?;
        // The tag only tells images of one layout apart: `layout.invalid` is no registry a
        // policy trusts by accident, and policies match names, not tags.
        let tag = given_tag.or_else(|| ref_name.map(tag_part));
        let image = match tag.map(|t| image.with_tag(t)) {
            Some(Ok(tagged)) => tagged,
            _ => image,
        };
        Ok((image, scope))
    }
}

/// The repository part of the full reference `name` (parsed as `image`), as written: without
/// its tag or digest.
fn repository_of(name: &str, image: &ImageRef) -> String {
    let name = name.split('@').next().unwrap_or(name);
    match image.tag() {
        Some(tag) => name.strip_suffix(&format!(":{tag}")).unwrap_or(name),
        None => name,
    }
    .to_string()
}

/// `name` as an image reference if it names its registry (the first path component has a
/// `.` or `:` or is `localhost`, as in Docker's grammar).
fn qualified(name: &str) -> Option<ImageRef> {
    let (first, _) = name.split_once('/')?;
    if first.contains('.') || first.contains(':') || first == "localhost" {
        name.parse().ok()
    } else {
        None
    }
}

/// The layout's file or directory name (without `.tar`) as a repository path component.
fn sanitized_name(path: &Path) -> String {
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .or_else(|| {
            std::fs::canonicalize(path)
                .ok()?
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default()
        .to_lowercase();
    let base = base.strip_suffix(".tar").unwrap_or(&base);
    let mut out = String::new();
    for c in base.chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(128);
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        "image".to_string()
    } else {
        out.to_string()
    }
}

fn ref_name(d: &Descriptor) -> Option<&String> {
    d.annotations.get(REF_NAME_ANNOTATION)
}

/// The tag part of a ref name: after the last `:` that follows the last `/` (`v1` of
/// `127.0.0.1:5000/app:v1`), or the whole name.
fn tag_part(name: &str) -> &str {
    let after_slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[after_slash..].rfind(':') {
        Some(i) => &name[after_slash + i + 1..],
        None => name,
    }
}

/// A tag cosign or the referrers fallback uses: `<alg>-<hex>` with an optional `.suffix`.
fn is_signature_tag(tag: &str) -> bool {
    let head = tag.split('.').next().unwrap_or(tag);
    head.split_once('-').is_some_and(|(alg, hex)| {
        alg.parse::<Algorithm>()
            .is_ok_and(|alg| Digest::from_hex(alg, hex).is_ok())
    })
}

fn is_non_distributable(media_type: &str) -> bool {
    media_type.contains(".nondistributable.") || media_type.contains(".foreign.")
}

fn blob_name(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm(), digest.hex())
}

/// The media type manifest bytes declare, else what their shape says.
fn media_type_of(bytes: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        manifests: Option<serde::de::IgnoredAny>,
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(Probe {
            media_type: Some(m),
            ..
        }) => m,
        Ok(Probe {
            manifests: Some(_), ..
        }) => oci::OCI_INDEX.to_string(),
        _ => oci::OCI_MANIFEST.to_string(),
    }
}

fn layout_err(layout: &str, reason: impl Into<String>) -> RegistryError {
    RegistryError::Layout {
        layout: layout.to_string(),
        reason: reason.into(),
        source: None,
    }
}

fn io_err(layout: &str, reason: impl Into<String>, source: io::Error) -> RegistryError {
    RegistryError::Layout {
        layout: layout.to_string(),
        reason: reason.into(),
        source: Some(source),
    }
}

/// Reads at most `limit` bytes of `path`; `None` when it is longer.
fn read_bounded(path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let file = File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

fn hash_reader(mut reader: impl Read, algorithm: Algorithm) -> io::Result<Digest> {
    let mut hasher = Hasher::new(algorithm);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buf[..n]);
    }
}

/// Every `blobs/<alg>/<hex>` file of the layout at `root`, with the digest its name says, in
/// name order. Temporary files of interrupted writes (`.signet-*`) are skipped; anything else
/// is an error.
fn blob_files(root: &Path, describe: &str) -> Result<Vec<(String, Digest)>, RegistryError> {
    let blobs = root.join("blobs");
    let mut out = Vec::new();
    let algorithms = match std::fs::read_dir(&blobs) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(describe, "cannot read blobs/", e)),
    };
    for algorithm in algorithms {
        let algorithm = algorithm.map_err(|e| io_err(describe, "cannot read blobs/", e))?;
        let alg_name = algorithm.file_name().to_string_lossy().into_owned();
        let Ok(alg) = alg_name.parse::<Algorithm>() else {
            return Err(layout_err(
                describe,
                format!("unexpected blobs/{alg_name} (not a digest algorithm signet reads)"),
            ));
        };
        let dir = format!("blobs/{alg_name}");
        let files = std::fs::read_dir(algorithm.path())
            .map_err(|e| io_err(describe, format!("cannot read {dir}"), e))?;
        for file in files {
            let file = file.map_err(|e| io_err(describe, format!("cannot read {dir}"), e))?;
            let hex = file.file_name().to_string_lossy().into_owned();
            if hex.starts_with(".signet-") {
                continue;
            }
            let name = format!("{dir}/{hex}");
            let digest = Digest::from_hex(alg, &hex).map_err(|_| {
                layout_err(
                    describe,
                    format!("unexpected {name} (not named by its digest)"),
                )
            })?;
            if !file.file_type().is_ok_and(|t| t.is_file()) {
                return Err(layout_err(
                    describe,
                    format!("{name} is not a regular file"),
                ));
            }
            out.push((name, digest));
        }
    }
    out.sort();
    Ok(out)
}

fn read_index_at(root: &Path, describe: &str) -> Result<Index, RegistryError> {
    let bytes = match read_bounded(&root.join("index.json"), MAX_INDEX_JSON_BYTES) {
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

/// Writes `bytes` to `dir/name` through a temporary file and a rename.
fn write_atomic(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    sync: bool,
    describe: &str,
) -> Result<(), RegistryError> {
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .tempfile_in(dir)
        .map_err(|e| io_err(describe, format!("cannot write {name}"), e))?;
    tmp.write_all(bytes)
        .and_then(|()| {
            if sync {
                tmp.as_file().sync_all()
            } else {
                Ok(())
            }
        })
        .map_err(|e| io_err(describe, format!("cannot write {name}"), e))?;
    tmp.persist(dir.join(name))
        .map_err(|e| io_err(describe, format!("cannot replace {name}"), e.error))?;
    Ok(())
}

/// Makes an empty layout in `root` (created if missing).
fn init_layout(root: &Path, describe: &str) -> Result<(), RegistryError> {
    std::fs::create_dir_all(root.join("blobs").join("sha256"))
        .map_err(|e| io_err(describe, "cannot create the layout", e))?;
    write_atomic(
        root,
        "oci-layout",
        format!("{{\"imageLayoutVersion\":\"{LAYOUT_VERSION}\"}}").as_bytes(),
        true,
        describe,
    )?;
    write_atomic(
        root,
        "index.json",
        &Index::empty().to_json(),
        true,
        describe,
    )
}

/// What a member of a layout tarball may be.
enum Member {
    /// `.`, `blobs`, `blobs/<alg>`.
    Directory,
    /// `oci-layout` or `index.json`, with the largest size accepted.
    LayoutFile(&'static str, u64),
    /// `blobs/<alg>/<hex>`.
    Blob(Digest),
}

/// Classifies a tarball member by name and type; anything that is not part of an OCI layout
/// (links, devices, `..`, absolute paths, other names) is refused, naming the member.
fn classify(name: &str, entry_type: tar::EntryType) -> Result<Member, String> {
    let refuse = |why: &str| Err(format!("refusing archive member {}: {why}", shown(name)));
    if name.starts_with('/') {
        return refuse("absolute path");
    }
    let mut rel = name;
    while let Some(rest) = rel.strip_prefix("./") {
        rel = rest;
    }
    if rel.split('/').any(|c| c == "..") {
        return refuse("it points outside the layout (\"..\")");
    }
    if entry_type.is_symlink() {
        return refuse("symbolic link (a layout holds only regular files)");
    }
    if entry_type.is_hard_link() {
        return refuse("hard link (a layout holds only regular files)");
    }
    if entry_type.is_dir() {
        let rel = rel.trim_end_matches('/');
        return match rel.split('/').collect::<Vec<_>>().as_slice() {
            [""] | ["."] | ["blobs"] => Ok(Member::Directory),
            ["blobs", alg] if alg.parse::<Algorithm>().is_ok() => Ok(Member::Directory),
            _ => refuse("not a directory of an OCI layout"),
        };
    }
    if !(entry_type.is_file() || entry_type.is_contiguous()) {
        return refuse("not a regular file");
    }
    match rel.split('/').collect::<Vec<_>>().as_slice() {
        ["oci-layout"] => Ok(Member::LayoutFile("oci-layout", MAX_OCI_LAYOUT_BYTES)),
        ["index.json"] => Ok(Member::LayoutFile("index.json", MAX_INDEX_JSON_BYTES)),
        ["blobs", alg, hex] => match alg.parse::<Algorithm>() {
            Ok(alg) => match Digest::from_hex(alg, hex) {
                Ok(digest) => Ok(Member::Blob(digest)),
                Err(e) => refuse(&format!("not named by a digest: {e}")),
            },
            Err(_) => refuse("unsupported digest algorithm"),
        },
        _ => refuse("not a file of an OCI layout"),
    }
}

/// `name` quoted for a message, cut to its first [`SHOWN_NAME_CHARS`] characters.
fn shown(name: &str) -> String {
    match name.char_indices().nth(SHOWN_NAME_CHARS) {
        Some((at, _)) => format!("{:?}", format!("{}…", &name[..at])),
        None => format!("{name:?}"),
    }
}

/// Refuses an archive whose GNU long-name or long-link entries or PAX headers are larger than
/// [`MAX_TAR_EXTENSION_BYTES`], and GNU sparse members, reading headers only (the content of
/// other members is skipped with a seek), so that the pass that reads names never holds a
/// large one in memory: the tar reader reads those entries whole, and a sparse member's chain
/// of extension headers into a list. Leaves `file` at its start.
///
/// The walk follows the tar reader's (a PAX `size` record sets the next member's size) up to
/// the first header that reader stops at (end, damaged header); whatever it reports there,
/// it reports before reading on.
fn check_extension_headers(file: &mut File, describe: &str) -> Result<(), RegistryError> {
    use std::io::{Seek as _, SeekFrom};
    const BLOCK: u64 = 512;
    let read_err = |e: io::Error| io_err(describe, "cannot read the archive", e);
    let mut block = [0u8; BLOCK as usize];
    let mut next: u64 = 0;
    let mut pax_size: Option<u64> = None;
    loop {
        let at = next;
        file.seek(SeekFrom::Start(at)).map_err(read_err)?;
        let mut filled = 0;
        while filled < block.len() {
            match file.read(&mut block[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_err(e)),
            }
        }
        if filled < block.len() || block.iter().all(|b| *b == 0) {
            break;
        }
        let header = tar::Header::from_byte_slice(&block);
        let sum = block[..148]
            .iter()
            .chain(&block[156..])
            .fold(0u32, |a, b| a + u32::from(*b))
            + 8 * 32;
        if header.cksum().ok() != Some(sum) {
            break;
        }
        let Ok(header_size) = header.entry_size() else {
            break;
        };
        let entry_type = header.entry_type();
        let extension = if entry_type.is_gnu_longname() {
            Some("a GNU long-name entry")
        } else if entry_type.is_gnu_longlink() {
            Some("a GNU long-link entry")
        } else if entry_type.is_pax_local_extensions() {
            Some("a PAX header")
        } else if entry_type.is_pax_global_extensions() {
            Some("a PAX global header")
        } else {
            None
        };
        let size = match extension {
            Some(what) => {
                if header_size > MAX_TAR_EXTENSION_BYTES {
                    return Err(layout_err(
                        describe,
                        format!(
                            "refusing {what} of {header_size} bytes at offset {at} (more than \
                             {MAX_TAR_EXTENSION_BYTES}): a layout's names are short"
                        ),
                    ));
                }
                if entry_type.is_pax_local_extensions() {
                    let mut records = Vec::new();
                    (&mut *file)
                        .take(header_size)
                        .read_to_end(&mut records)
                        .map_err(read_err)?;
                    pax_size = tar::PaxExtensions::new(&records)
                        .map_while(Result::ok)
                        .find(|e| e.key() == Ok("size"))
                        .and_then(|e| e.value().ok()?.parse::<u64>().ok());
                } else if entry_type.is_pax_global_extensions() {
                    pax_size = None;
                }
                header_size
            }
            None => {
                if entry_type.is_gnu_sparse() {
                    return Err(layout_err(
                        describe,
                        format!(
                            "refusing the sparse archive member at offset {at}: a layout \
                             holds only regular files"
                        ),
                    ));
                }
                pax_size.take().unwrap_or(header_size)
            }
        };
        let Some(following) = size
            .checked_add(BLOCK - 1)
            .map(|s| s & !(BLOCK - 1))
            .and_then(|s| s.checked_add(BLOCK))
            .and_then(|s| at.checked_add(s))
        else {
            break;
        };
        next = following;
    }
    file.seek(SeekFrom::Start(0)).map_err(read_err)?;
    Ok(())
}

/// Unpacks the layout tarball `file` into `into`, hashing every blob against its name.
fn unpack(mut file: File, into: &Path, describe: &str) -> Result<(), RegistryError> {
    let read_err = |e: io::Error| io_err(describe, "cannot read the archive", e);
    check_extension_headers(&mut file, describe)?;
    let mut archive = tar::Archive::new(BufReader::with_capacity(CHUNK, file));
    let mut seen = BTreeSet::new();
    let mut buf = vec![0u8; CHUNK];
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let entry_type = entry.header().entry_type();
        if entry_type.is_pax_global_extensions() {
            continue;
        }
        let name = String::from_utf8(entry.path_bytes().into_owned()).map_err(|_| {
            layout_err(describe, "refusing an archive member with a non-UTF-8 name")
        })?;
        let member = classify(&name, entry_type).map_err(|reason| layout_err(describe, reason))?;
        let mut key = name.as_str();
        while let Some(rest) = key.strip_prefix("./") {
            key = rest;
        }
        let key = key.trim_end_matches('/').to_string();
        if !seen.insert(key.clone()) {
            return Err(layout_err(
                describe,
                format!("refusing archive member {}: it appears twice", shown(&name)),
            ));
        }
        let (path, limit, digest) = match member {
            Member::Directory => continue,
            Member::LayoutFile(file_name, limit) => (into.join(file_name), Some(limit), None),
            Member::Blob(digest) => (into.join(blob_name(&digest)), None, Some(digest)),
        };
        if let Some(limit) = limit
            && entry.size() > limit
        {
            return Err(layout_err(
                describe,
                format!(
                    "refusing archive member {}: larger than {limit} bytes",
                    shown(&name)
                ),
            ));
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| io_err(describe, format!("cannot unpack {}", shown(&name)), e))?;
        }
        let write_err =
            |e: io::Error| io_err(describe, format!("cannot unpack {}", shown(&name)), e);
        let mut out = BufWriter::with_capacity(CHUNK, File::create(&path).map_err(write_err)?);
        let mut hasher = digest.as_ref().map(|d| Hasher::new(d.algorithm()));
        loop {
            let n = entry.read(&mut buf).map_err(read_err)?;
            if n == 0 {
                break;
            }
            if let Some(h) = hasher.as_mut() {
                h.update(&buf[..n]);
            }
            out.write_all(&buf[..n]).map_err(write_err)?;
        }
        out.flush().map_err(write_err)?;
        if let (Some(digest), Some(hasher)) = (digest, hasher) {
            let actual = hasher.finish();
            if actual != digest {
                return Err(layout_err(
                    describe,
                    format!(
                        "blob {digest} in {} hashes to {actual}",
                        describe_file(describe)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The file part of `oci-archive:FILE`.
fn describe_file(describe: &str) -> &str {
    describe.strip_prefix("oci-archive:").unwrap_or(describe)
}

/// The directory `path` is in (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// What an archive file holds, as far as [`Layout::save`] compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ArchiveState {
    /// There is no file.
    NoFile,
    /// A tarball without an `index.json` member.
    NoIndex,
    /// A tarball whose `index.json` has this SHA-256.
    Index(Digest),
}

/// What the archive at `path` holds now: its `index.json` is hashed as it streams past, and
/// reading stops there (signet writes it second).
fn archive_state(path: &Path, describe: &str) -> Result<ArchiveState, RegistryError> {
    let read_err = |e: io::Error| io_err(describe, "cannot read the archive", e);
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ArchiveState::NoFile),
        Err(e) => return Err(read_err(e)),
    };
    check_extension_headers(&mut file, describe)?;
    // Small buffer: members before index.json are skipped with a seek, which empties it.
    let mut archive = tar::Archive::new(BufReader::with_capacity(8 << 10, file));
    for entry in archive.entries_with_seek().map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let entry_type = entry.header().entry_type();
        let is_index = {
            let name = entry.path_bytes();
            let mut name: &[u8] = &name;
            while let Some(rest) = name.strip_prefix(b"./") {
                name = rest;
            }
            name == b"index.json"
        };
        if is_index && (entry_type.is_file() || entry_type.is_contiguous()) {
            return hash_reader(entry, Algorithm::Sha256)
                .map(ArchiveState::Index)
                .map_err(read_err);
        }
    }
    Ok(ArchiveState::NoIndex)
}

/// Writes the layout in `root` as a tarball at `path`: to a temporary file beside it, then a
/// rename, so readers see the old archive or the new one, never a part. Returns the SHA-256
/// of the `index.json` written.
fn write_archive(root: &Path, path: &Path, describe: &str) -> Result<Digest, RegistryError> {
    let parent = parent_dir(path);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "layout.tar".into());
    let write_err = |e: io::Error| io_err(describe, "cannot write the archive", e);
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .suffix(".tmp")
        .tempfile_in(&parent)
        .map_err(write_err)?;
    let index_digest;
    {
        let mut builder = tar::Builder::new(BufWriter::with_capacity(CHUNK, tmp.as_file()));
        let file = File::open(root.join("oci-layout"))
            .map_err(|e| io_err(describe, "cannot read oci-layout", e))?;
        append_file(&mut builder, "oci-layout", file).map_err(write_err)?;
        // Read once: what is written is what is hashed, whatever a concurrent update does.
        let index = match read_bounded(&root.join("index.json"), MAX_INDEX_JSON_BYTES) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                return Err(RegistryError::TooLarge {
                    what: format!("index.json of {describe}"),
                    limit: MAX_INDEX_JSON_BYTES,
                });
            }
            Err(e) => return Err(io_err(describe, "cannot read index.json", e)),
        };
        index_digest = Digest::sha256_of(&index);
        let mut h = header(tar::EntryType::Regular, index.len() as u64, 0o644);
        builder
            .append_data(&mut h, "index.json", index.as_slice())
            .map_err(write_err)?;
        append_dir(&mut builder, "blobs/").map_err(write_err)?;
        let mut last_dir = String::new();
        for (name, _) in blob_files(root, describe)? {
            let dir = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("blobs");
            if dir != last_dir {
                append_dir(&mut builder, &format!("{dir}/")).map_err(write_err)?;
                last_dir = dir.to_string();
            }
            let file = File::open(root.join(&name))
                .map_err(|e| io_err(describe, format!("cannot read {name}"), e))?;
            append_file(&mut builder, &name, file).map_err(write_err)?;
        }
        let mut out = builder.into_inner().map_err(write_err)?;
        out.flush().map_err(write_err)?;
    }
    tmp.as_file().sync_all().map_err(write_err)?;
    match std::fs::metadata(path) {
        Ok(m) => std::fs::set_permissions(tmp.path(), m.permissions()).map_err(write_err)?,
        Err(_) => set_default_permissions(tmp.path()).map_err(write_err)?,
    }
    tmp.persist(path)
        .map_err(|e| io_err(describe, "cannot replace the archive", e.error))?;
    Ok(index_digest)
}

#[cfg(unix)]
fn set_default_permissions(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn set_default_permissions(_path: &Path) -> io::Result<()> {
    Ok(())
}

fn header(entry_type: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(entry_type);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn append_dir<W: Write>(builder: &mut tar::Builder<W>, name: &str) -> io::Result<()> {
    let mut h = header(tar::EntryType::Directory, 0, 0o755);
    builder.append_data(&mut h, name, io::empty())
}

fn append_file<W: Write>(builder: &mut tar::Builder<W>, name: &str, file: File) -> io::Result<()> {
    let size = file.metadata()?.len();
    let mut h = header(tar::EntryType::Regular, size, 0o644);
    builder.append_data(&mut h, name, file.take(size))
}

#[cfg(test)]
mod tests;

/// Entry points for the fuzz targets in `fuzz/` (re-exported as `signet_registry::fuzzing`).
/// Opening an archive is public ([`Layout::open`]); the check `save` makes of an archive that
/// may have been replaced meanwhile is not.
#[cfg(feature = "fuzzing")]
pub(crate) mod fuzzing {
    use super::*;

    /// Reads the archive at `path` as [`Layout::save`] does before replacing it: `Ok(None)`
    /// without an `index.json` member, else that member's SHA-256.
    pub fn archive_index_digest(path: &Path) -> Result<Option<Digest>, RegistryError> {
        match archive_state(path, "oci-archive:fuzz")? {
            ArchiveState::Index(digest) => Ok(Some(digest)),
            ArchiveState::NoFile | ArchiveState::NoIndex => Ok(None),
        }
    }
}
