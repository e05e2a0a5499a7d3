//! Where private-key passwords come from: `SIGNET_PASSWORD`, else `COSIGN_PASSWORD`, else a
//! prompt on the terminal. The password is zeroized when dropped and never printed.

use std::io::IsTerminal as _;

use anyhow::{Context as _, bail};
use zeroize::Zeroizing;

/// Environment variables consulted, in order.
pub const PASSWORD_VARS: [&str; 2] = ["SIGNET_PASSWORD", "COSIGN_PASSWORD"];

/// The password for an existing key.
pub fn for_existing_key() -> anyhow::Result<Zeroizing<String>> {
    if let Some(pw) = from_env() {
        return Ok(pw);
    }
    prompt("Enter password for private key: ")
}

/// A password for a new key: from the environment, or asked twice on the terminal.
pub fn for_new_key() -> anyhow::Result<Zeroizing<String>> {
    if let Some(pw) = from_env() {
        return Ok(pw);
    }
    let first = prompt("Enter password for private key: ")?;
    let second = prompt("Enter password for private key again: ")?;
    if *first != *second {
        bail!("the two passwords do not match");
    }
    Ok(first)
}

fn from_env() -> Option<Zeroizing<String>> {
    PASSWORD_VARS
        .iter()
        .find_map(|var| std::env::var(var).ok())
        .map(Zeroizing::new)
}

fn prompt(text: &str) -> anyhow::Result<Zeroizing<String>> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "no password: set SIGNET_PASSWORD (or COSIGN_PASSWORD), or run on a terminal to be asked"
        );
    }
    rpassword::prompt_password(text)
        .map(Zeroizing::new)
        .context("reading the password from the terminal")
}
