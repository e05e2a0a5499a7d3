//! Layout tarballs: unpacking one (every member checked, every blob hashed) and packing one
//! back, atomically and only when no other process changed it.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Mutex, PoisonError};

use signet_core::digest::{Algorithm, Digest};

use super::files::{CHUNK, blob_files, blob_name, hash_reader, io_err, layout_err, read_bounded};
use super::index::{MAX_INDEX_JSON_BYTES, init_layout};
use super::{Layout, LayoutKind, MAX_OCI_LAYOUT_BYTES, OpenMode};
use crate::error::RegistryError;
use crate::hashing::Hasher;

/// Largest GNU long-name or long-link entry and PAX header of an archive: the tar reader
/// holds them in memory whole, and a layout's names are short.
pub(super) const MAX_TAR_EXTENSION_BYTES: u64 = 64 << 10;
/// How much of an archive member's name an error message shows.
pub(super) const SHOWN_NAME_CHARS: usize = 200;

impl Layout {
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
}

/// The unpacked copies of archives that exist right now, so that an interrupted program can
/// remove them (see [`remove_unpacked_archives`]).
static LIVE: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// A private (0700) temporary directory, such as an archive's unpacked copy; removed when
/// dropped, or by [`remove_unpacked_archives`] when the program is interrupted.
pub struct ScratchDir(tempfile::TempDir);

impl ScratchDir {
    fn new(describe: &str) -> Result<ScratchDir, RegistryError> {
        Self::create(None, "signet-layout-")
            .map_err(|e| io_err(describe, "cannot make a temporary directory", e))
    }

    /// A new one in `parent` (the system's temporary directory if `None`), its name starting
    /// with `prefix`.
    pub fn create(parent: Option<&Path>, prefix: &str) -> io::Result<ScratchDir> {
        let mut builder = tempfile::Builder::new();
        builder.prefix(prefix);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            // Only the owner may read an archive's contents, whatever the archive's own mode.
            builder.permissions(std::fs::Permissions::from_mode(0o700));
        }
        let dir = match parent {
            Some(parent) => builder.tempdir_in(parent)?,
            None => builder.tempdir()?,
        };
        LIVE.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(dir.path().to_path_buf());
        Ok(ScratchDir(dir))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        LIVE.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(self.0.path());
    }
}

/// Removes every [`ScratchDir`] of this process (the unpacked copies of open archives among
/// them), for a program that is being interrupted (SIGINT, SIGTERM) and will not run its
/// destructors. Layouts still in use
/// fail on their next file access afterwards.
pub fn remove_unpacked_archives() {
    let live = std::mem::take(&mut *LIVE.lock().unwrap_or_else(PoisonError::into_inner));
    for dir in live {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// An archive unpacked by [`open_archive`].
pub(super) struct Unpacked {
    /// The private directory holding the layout's files.
    pub(super) dir: ScratchDir,
    /// There was no archive: an empty layout was made, to be written by [`Layout::save`].
    pub(super) created: bool,
    /// What the archive file held.
    pub(super) state: ArchiveState,
}

/// Unpacks the archive at `path` into a private temporary directory, every blob checked
/// against its name on the way; with [`OpenMode::CreateIfMissing`], a missing file gives an
/// empty layout.
pub(super) fn open_archive(
    path: &Path,
    mode: OpenMode,
    describe: &str,
) -> Result<Unpacked, RegistryError> {
    let dir = ScratchDir::new(describe)?;
    let (created, state) = match File::open(path) {
        Ok(file) => {
            unpack(file, dir.path(), describe)?;
            let state = match File::open(dir.path().join("index.json")) {
                Ok(index) => ArchiveState::Index(
                    hash_reader(index, Algorithm::Sha256)
                        .map_err(|e| io_err(describe, "cannot read index.json", e))?,
                ),
                Err(e) if e.kind() == io::ErrorKind::NotFound => ArchiveState::NoIndex,
                Err(e) => return Err(io_err(describe, "cannot read index.json", e)),
            };
            (false, state)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound && mode == OpenMode::CreateIfMissing => {
            init_layout(dir.path(), describe)?;
            (true, ArchiveState::NoFile)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(layout_err(describe, "no such file"));
        }
        Err(e) => return Err(io_err(describe, "cannot open the archive", e)),
    };
    Ok(Unpacked {
        dir,
        created,
        state,
    })
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
///
/// Why a second walker rather than `tar`'s raw mode (`Entries::raw(true)`, which yields the
/// long-name and PAX entries with their headers, so their sizes could be checked before they
/// are read): in raw mode `tar` 0.4 applies no PAX record to the member that follows, in
/// particular not `size`, and it computes where the next header is from that size. An archive
/// with a member larger than 8 GiB written by Go's `archive/tar` (skopeo, Docker) gives the
/// size only in a PAX record, so a raw walk would read that member's content as headers.
/// Honouring `size` ourselves is not possible either, as the iterator keeps the offset. The
/// cooked iterator that `unpack` uses gets the sizes right but reads those entries whole before
/// anything sees them; hence this header-only pass first.
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
pub(super) enum ArchiveState {
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
        let index = match read_bounded(root, "index.json", MAX_INDEX_JSON_BYTES) {
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

/// Entry points for the fuzz targets in `fuzz/` (re-exported as `signet_registry::fuzzing`).
/// Opening an archive is public ([`super::Layout::open`]); the check `save` makes of an archive
/// that may have been replaced meanwhile is not.
#[cfg(feature = "fuzzing")]
pub(crate) mod fuzzing {
    use super::*;

    /// Reads the archive at `path` as `Layout::save` does before replacing it: `Ok(None)`
    /// without an `index.json` member, else that member's SHA-256.
    pub fn archive_index_digest(path: &Path) -> Result<Option<Digest>, RegistryError> {
        match archive_state(path, "oci-archive:fuzz")? {
            ArchiveState::Index(digest) => Ok(Some(digest)),
            ArchiveState::NoFile | ArchiveState::NoIndex => Ok(None),
        }
    }
}
