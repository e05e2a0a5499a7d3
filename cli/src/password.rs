//! Where private-key passwords come from: `SIGNET_PASSWORD`, else `COSIGN_PASSWORD`, else a
//! prompt on the terminal. The password is a `SecretString`: zeroized when dropped, redacted
//! in `Debug`, and read only through `expose_secret`.

use std::io::IsTerminal as _;

use anyhow::{Context as _, bail};
use secrecy::ExposeSecret as _;
use secrecy::SecretString;

/// Environment variables consulted, in order.
pub const PASSWORD_VARS: [&str; 2] = ["SIGNET_PASSWORD", "COSIGN_PASSWORD"];

/// The password for an existing key.
pub fn for_existing_key() -> anyhow::Result<SecretString> {
    if let Some(pw) = from_env() {
        return Ok(pw);
    }
    prompt("Enter password for private key: ")
}

/// A password for a new key: from the environment, or asked twice on the terminal.
pub fn for_new_key() -> anyhow::Result<SecretString> {
    if let Some(pw) = from_env() {
        return Ok(pw);
    }
    let first = prompt("Enter password for private key: ")?;
    let second = prompt("Enter password for private key again: ")?;
    if first.expose_secret() != second.expose_secret() {
        bail!("the two passwords do not match");
    }
    Ok(first)
}

fn from_env() -> Option<SecretString> {
    PASSWORD_VARS
        .iter()
        .find_map(|var| std::env::var(var).ok())
        .map(SecretString::from)
}

fn prompt(text: &str) -> anyhow::Result<SecretString> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "no password: set SIGNET_PASSWORD (or COSIGN_PASSWORD), or run on a terminal to be asked"
        );
    }
    rpassword::prompt_password(text)
        .map(SecretString::from)
        .context("reading the password from the terminal")
}
