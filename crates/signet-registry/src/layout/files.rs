//! Files of a layout: blob names, bounded reads, hashing, atomic writes, errors.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use signet_core::digest::{Algorithm, Digest};

use crate::error::RegistryError;
use crate::hashing::Hasher;

/// How much is read or written at a time when streaming a blob.
pub(super) const CHUNK: usize = 256 << 10;

pub(super) fn blob_name(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm(), digest.hex())
}

pub(super) fn layout_err(layout: &str, reason: impl Into<String>) -> RegistryError {
    RegistryError::Layout {
        layout: layout.to_string(),
        reason: reason.into(),
        source: None,
    }
}

pub(super) fn io_err(layout: &str, reason: impl Into<String>, source: io::Error) -> RegistryError {
    RegistryError::Layout {
        layout: layout.to_string(),
        reason: reason.into(),
        source: Some(source),
    }
}

/// Opens the regular file `rel` (a `/`-separated path inside the layout at `root`) for
/// reading: one directory at a time, following no symbolic link below `root` (the root itself
/// is the user's choice), opening a FIFO or device without blocking and refusing it, and
/// refusing anything that is not a regular file. A layout from outside can so neither make
/// signet read a file elsewhere (a blob that is a link to `/etc/shadow`, `blobs/sha256` a link
/// to another directory) nor hang it (a manifest that is a FIFO).
#[cfg(unix)]
pub(super) fn open_inside(root: &Path, rel: &str) -> io::Result<File> {
    use rustix::fs::{FileType, Mode, OFlags, fstat, open, openat};
    let (dirs, name) = rel.rsplit_once('/').unwrap_or(("", rel));
    let mut dir = open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for component in dirs.split('/').filter(|c| !c.is_empty()) {
        dir = openat(
            &dir,
            component,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| not_followed(e, component))?;
    }
    let fd = openat(
        &dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| not_followed(e, rel))?;
    let kind = FileType::from_raw_mode(fstat(&fd)?.st_mode);
    if kind != FileType::RegularFile {
        return Err(io::Error::other(format!(
            "{rel} is a {kind:?}, not a regular file; signet reads only regular files inside a \
             layout"
        )));
    }
    Ok(File::from(fd))
}

/// Without `openat`: the same refusals, checked before the open.
#[cfg(not(unix))]
pub(super) fn open_inside(root: &Path, rel: &str) -> io::Result<File> {
    let mut path = root.to_path_buf();
    for component in rel.split('/').filter(|c| !c.is_empty()) {
        path.push(component);
        if std::fs::symlink_metadata(&path)?.file_type().is_symlink() {
            return Err(io::Error::other(format!(
                "{component} is a symbolic link; signet follows no link inside a layout"
            )));
        }
    }
    let file = File::open(&path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other(format!("{rel} is not a regular file")));
    }
    Ok(file)
}

/// `ELOOP`/`ENOTDIR` from `O_NOFOLLOW` said plainly.
#[cfg(unix)]
fn not_followed(e: rustix::io::Errno, what: &str) -> io::Error {
    if e == rustix::io::Errno::LOOP || e == rustix::io::Errno::NOTDIR {
        io::Error::other(format!(
            "{what} is a symbolic link or not a directory; signet follows no link inside a layout"
        ))
    } else {
        e.into()
    }
}

/// Makes sure the directories of `rel` (`/`-separated, inside the layout at `root`) exist and
/// are directories, not links: blobs are written only inside the layout.
pub(super) fn real_dirs(root: &Path, rel: &str) -> io::Result<std::path::PathBuf> {
    let mut path = root.to_path_buf();
    for component in rel.split('/').filter(|c| !c.is_empty()) {
        path.push(component);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_dir() => {}
            Ok(_) => {
                return Err(io::Error::other(format!(
                    "{} is a symbolic link or not a directory; signet writes only inside a layout",
                    path.display()
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => match std::fs::create_dir(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    // Made meanwhile: check it again.
                    if !std::fs::symlink_metadata(&path)?.file_type().is_dir() {
                        return Err(io::Error::other(format!(
                            "{} is not a directory",
                            path.display()
                        )));
                    }
                }
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
    Ok(path)
}

/// Reads at most `limit` bytes of the regular file `rel` inside `root` (see
/// [`open_inside`]); `None` when it is longer.
pub(super) fn read_bounded(root: &Path, rel: &str, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let file = open_inside(root, rel)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

pub(super) fn hash_reader(mut reader: impl Read, algorithm: Algorithm) -> io::Result<Digest> {
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
pub(super) fn blob_files(
    root: &Path,
    describe: &str,
) -> Result<Vec<(String, Digest)>, RegistryError> {
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

/// Whether a file is flushed to disk before it is renamed into place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Durability {
    /// Flushed: a directory layout, and a new layout's own files.
    Synced,
    /// Not flushed: an archive's unpacked copy is temporary, and the archive is written whole
    /// (and flushed) by `Layout::save`.
    Unsynced,
}

/// Writes `bytes` to `dir/name` through a temporary file and a rename.
pub(super) fn write_atomic(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    durability: Durability,
    describe: &str,
) -> Result<(), RegistryError> {
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .tempfile_in(dir)
        .map_err(|e| io_err(describe, format!("cannot write {name}"), e))?;
    tmp.write_all(bytes)
        .and_then(|()| {
            if durability == Durability::Synced {
                tmp.as_file().sync_all()
            } else {
                Ok(())
            }
        })
        .map_err(|e| io_err(describe, format!("cannot write {name}"), e))?;
    // The replacement keeps the mode of the file it replaces (a temporary file is 0600);
    // a new one is 0644, as other tools write layouts.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::symlink_metadata(dir.join(name))
            .ok()
            .filter(|m| m.is_file())
            .map_or(0o644, |m| m.permissions().mode() & 0o777);
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| io_err(describe, format!("cannot write {name}"), e))?;
    }
    tmp.persist(dir.join(name))
        .map_err(|e| io_err(describe, format!("cannot replace {name}"), e.error))?;
    Ok(())
}
