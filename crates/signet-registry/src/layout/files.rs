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

/// Reads at most `limit` bytes of `path`; `None` when it is longer.
pub(super) fn read_bounded(path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let file = File::open(path)?;
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
    tmp.persist(dir.join(name))
        .map_err(|e| io_err(describe, format!("cannot replace {name}"), e.error))?;
    Ok(())
}
