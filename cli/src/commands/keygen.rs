//! `signet keygen`.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use secrecy::ExposeSecret as _;
use signet_core::keys::KeyPair;

use crate::password;

pub fn run(prefix: &Path, force: bool) -> anyhow::Result<ExitCode> {
    let key_path = with_suffix(prefix, "key");
    let pub_path = with_suffix(prefix, "pub");
    if !force {
        for path in [&key_path, &pub_path] {
            // `symlink_metadata`: a dangling link counts as there (its target is never
            // written to).
            if fs::symlink_metadata(path).is_ok() {
                bail!(
                    "{} already exists; refusing to overwrite it (use --force)",
                    path.display()
                );
            }
        }
    }
    let password = password::for_new_key()?;
    let pair = KeyPair::generate_p256().context("generating the key")?;
    let encrypted = pair
        .to_encrypted_pem(password.expose_secret().as_bytes())
        .context("encrypting the private key")?;
    let replace = if force {
        Replace::Allowed
    } else {
        Replace::Refused
    };
    write_new(&key_path, encrypted.as_bytes(), 0o600, replace)?;
    write_new(
        &pub_path,
        pair.public_key().to_pem().as_bytes(),
        0o644,
        replace,
    )?;
    eprintln!("Private key written to {}", key_path.display());
    eprintln!("Public key written to {}", pub_path.display());
    crate::output::line(&format!("{}", pair.public_key().id()));
    Ok(ExitCode::SUCCESS)
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// Whether `--force` lets a key file replace an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replace {
    Allowed,
    Refused,
}

/// Writes `bytes` to `path` as a new file of mode `mode` (set explicitly, whatever the umask or
/// an old file's mode): written whole to a fresh temporary file beside it, then renamed into
/// place. A symlink at `path` is replaced (with `--force`) or refused, never followed, so no
/// key is ever written through a link; a reader never sees half a key.
fn write_new(path: &Path, bytes: &[u8], mode: u32, replace: Replace) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".signet-key")
        .tempfile_in(dir)
        .with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.as_file()
            .set_permissions(fs::Permissions::from_mode(mode))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    file.write_all(bytes)
        .and_then(|()| file.as_file().sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    match replace {
        Replace::Allowed => file.persist(path).map(drop),
        Replace::Refused => file.persist_noclobber(path).map(drop),
    }
    .map_err(|e| e.error)
    .with_context(|| format!("writing {}", path.display()))
}
