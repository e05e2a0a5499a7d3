//! Keys that sign: a cosign key file, or a key in a PKCS#11 token named by a `pkcs11:` URI
//! (`--key` of `sign`, `attest`, `sign-blob`), and `signet public-key`.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use secrecy::SecretString;
use signet_core::keys::{KeyPair, PublicKey, Signer};
use signet_pkcs11::{MODULE_ENV, PIN_ENV, Pkcs11Signer, Pkcs11Uri, TokenInfo};

use crate::commands::blob::load_private_key;

/// What `--key` names.
pub enum KeyRef {
    /// A key file.
    File(PathBuf),
    /// A key in a PKCS#11 token.
    Pkcs11(Box<Pkcs11Uri>),
}

impl KeyRef {
    /// A value starting with `pkcs11:` is a URI; anything else a file (write `./pkcs11:x` for
    /// a file of that name).
    pub fn parse(key: &Path) -> anyhow::Result<KeyRef> {
        match key.to_str() {
            Some(text) if Pkcs11Uri::is_pkcs11_uri(text) => Ok(KeyRef::Pkcs11(Box::new(
                text.parse().context("reading the --key PKCS#11 URI")?,
            ))),
            _ => Ok(KeyRef::File(key.to_path_buf())),
        }
    }
}

/// The module a URI without `module-path` uses: `SIGNET_PKCS11_MODULE`.
pub fn default_module() -> Option<PathBuf> {
    std::env::var_os(MODULE_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// A token's user PIN: `SIGNET_PKCS11_PIN`, else a prompt on the terminal, else none.
pub fn pin(token: &TokenInfo) -> Option<SecretString> {
    if let Ok(pin) = std::env::var(PIN_ENV) {
        return Some(SecretString::from(pin));
    }
    if !std::io::stdin().is_terminal() {
        return None;
    }
    rpassword::prompt_password(format!("Enter PIN for PKCS#11 token \"{}\": ", token.label))
        .ok()
        .map(SecretString::from)
}

/// Opens the key `--key` names for signing: a cosign key file (its password from
/// `SIGNET_PASSWORD`/`COSIGN_PASSWORD` or a prompt) or a PKCS#11 key (its PIN from the URI,
/// `SIGNET_PKCS11_PIN` or a prompt).
pub fn load_signer(key: &Path) -> anyhow::Result<Box<dyn Signer>> {
    match KeyRef::parse(key)? {
        KeyRef::File(path) => Ok(Box::new(load_private_key(&path)?)),
        KeyRef::Pkcs11(uri) => Ok(Box::new(open_pkcs11(&uri)?)),
    }
}

/// [`load_signer`], with the certificate (and chain) of `--certificate` when given.
pub fn load_certified_signer(
    key: &Path,
    certificate: &crate::cli::CertificateArgs,
) -> anyhow::Result<Box<dyn Signer>> {
    let signer = load_signer(key)?;
    let Some(cert_path) = &certificate.certificate else {
        return Ok(signer);
    };
    let read = |path: &Path| -> anyhow::Result<Vec<Vec<u8>>> {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(signet_core::certified::certificates_from_pem(
            &pem,
            &path.display().to_string(),
        )?)
    };
    let mut leaf = read(cert_path)?;
    if leaf.len() != 1 {
        anyhow::bail!(
            "{} holds {} certificates; give the signing certificate alone, and the ones above \
             it with --certificate-chain",
            cert_path.display(),
            leaf.len()
        );
    }
    let chain = match &certificate.certificate_chain {
        Some(path) => read(path)?,
        None => Vec::new(),
    };
    let certified = signet_core::certified::CertifiedSigner::new(signer, leaf.remove(0), chain)
        .with_context(|| format!("--certificate {}", cert_path.display()))?;
    Ok(Box::new(certified))
}

/// Opens a PKCS#11 key, with the URI (its PIN redacted) in the error.
pub fn open_pkcs11(uri: &Pkcs11Uri) -> anyhow::Result<Pkcs11Signer> {
    Pkcs11Signer::open(uri, default_module().as_deref(), &pin)
        .with_context(|| format!("opening PKCS#11 key {uri}"))
}

/// `signet public-key --key KEY`: the PEM public key of a key signet signs with.
pub fn public_key(key: &Path) -> anyhow::Result<ExitCode> {
    let public: PublicKey = match KeyRef::parse(key)? {
        KeyRef::File(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            if text.contains("-----BEGIN PRIVATE KEY-----") {
                KeyPair::from_pkcs8_pem(&text)
                    .with_context(|| format!("loading private key {}", path.display()))?
                    .public_key()
                    .clone()
            } else {
                load_private_key(&path)?.public_key().clone()
            }
        }
        KeyRef::Pkcs11(uri) => {
            signet_pkcs11::public_key(&uri, default_module().as_deref(), &pin)
                .with_context(|| format!("reading the public key of PKCS#11 key {uri}"))?
        }
    };
    eprintln!("Public key {} ({})", public.id(), public.algorithm());
    crate::output::stdout(&public.to_pem());
    Ok(ExitCode::SUCCESS)
}
