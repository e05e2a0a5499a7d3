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
            if path.exists() {
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
    write_private(&key_path, encrypted.as_bytes())?;
    fs::write(&pub_path, pair.public_key().to_pem())
        .with_context(|| format!("writing {}", pub_path.display()))?;
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

/// Writes the encrypted key readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}
