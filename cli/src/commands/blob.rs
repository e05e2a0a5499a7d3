//! `signet sign-blob` and `signet verify-blob`: the signing core on local files.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use secrecy::ExposeSecret as _;
use signet_core::bundle::Bundle;
use signet_core::digest::Digest;
use signet_core::intoto::{COSIGN_SIGN_PREDICATE, Statement};
use signet_core::keys::{KeyPair, PublicKey};

use crate::cli::Output;

use crate::password;

fn default_bundle(file: &Path, bundle: Option<PathBuf>) -> PathBuf {
    bundle.unwrap_or_else(|| {
        let mut name = file.as_os_str().to_owned();
        name.push(".sigstore.json");
        PathBuf::from(name)
    })
}

fn subject_name(file: &Path) -> String {
    file.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Loads a cosign-format encrypted private key, asking for its password.
pub fn load_private_key(path: &Path) -> anyhow::Result<KeyPair> {
    let pem = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let password = password::for_existing_key()?;
    KeyPair::from_encrypted_pem(&pem, password.expose_secret().as_bytes())
        .with_context(|| format!("loading private key {}", path.display()))
}

/// Loads a PEM public key.
pub fn load_public_key(path: &Path) -> anyhow::Result<PublicKey> {
    let pem = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    PublicKey::from_pem(&pem).with_context(|| format!("loading public key {}", path.display()))
}

pub fn sign(
    file: &Path,
    key: &Path,
    bundle: Option<PathBuf>,
    certificate: &crate::cli::CertificateArgs,
) -> anyhow::Result<ExitCode> {
    let bytes = fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let signer = crate::commands::signer::load_certified_signer(key, certificate)?;
    let digest = Digest::sha256_of(&bytes);
    let mut statement = Statement::new(
        &subject_name(file),
        &digest,
        COSIGN_SIGN_PREDICATE,
        serde_json::json!({}),
    );
    statement.set_signed_at(std::time::SystemTime::now());
    let out = default_bundle(file, bundle);
    let bundle = Bundle::sign_statement(&statement, signer.as_ref())?;
    fs::write(&out, bundle.to_json()).with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "Signed {} ({digest}) with key {}; bundle written to {}",
        file.display(),
        signer.public_key().id(),
        out.display()
    );
    crate::output::line(&format!("{digest}"));
    Ok(ExitCode::SUCCESS)
}

pub fn verify(
    file: &Path,
    key: Option<&Path>,
    certificate: &crate::cli::CertificateIdentityArgs,
    bundle: Option<PathBuf>,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let bytes = fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let bundle_path = default_bundle(file, bundle);
    let bundle_bytes =
        fs::read(&bundle_path).with_context(|| format!("reading {}", bundle_path.display()))?;
    let digest = Digest::sha256_of(&bytes);
    // What verified (or failed), the key id or certificate identity, the reason, and the
    // certificate's report when it verified by certificate.
    let (verified, signer, reason, certified) = match (key, certificate.given()) {
        (Some(_), true) => {
            anyhow::bail!(
                "give --key or a certificate identity (--certificate-identity…), not both"
            )
        }
        (None, false) => anyhow::bail!(
            "give --key PUB, or a certificate identity: --certificate-identity ID \
             --certificate-oidc-issuer ISSUER (keyless), or --ca-roots FILE"
        ),
        (Some(key), false) => {
            let public = load_public_key(key)?;
            let result = Bundle::parse(&bundle_bytes)
                .and_then(|b| b.verify_statement(std::slice::from_ref(&public), &digest));
            match &result {
                Ok(v) => (
                    true,
                    public.id().to_string(),
                    format!("bundle signed by key {} for {digest}", v.key_id()),
                    None,
                ),
                Err(e) => (
                    false,
                    public.id().to_string(),
                    format!("{}: {e}", bundle_path.display()),
                    None,
                ),
            }
        }
        (None, true) => {
            let (trust, name) = crate::commands::certificates::trust(certificate)?;
            let result = Bundle::parse(&bundle_bytes)
                .map_err(signet_core::keyless::KeylessError::from)
                .and_then(|b| {
                    signet_core::keyless::verify_blob(
                        &b,
                        &trust,
                        &bytes,
                        std::time::SystemTime::now(),
                    )
                });
            match result {
                Ok((signed, proof)) => {
                    let what = match signed {
                        signet_core::keyless::BlobSigned::Statement(s) => {
                            format!("statement {}", s.value().predicate_type)
                        }
                        signet_core::keyless::BlobSigned::Message => "message signature".into(),
                    };
                    let report = signet_policy::decision::CertificateReport::from(&proof);
                    let when = proof
                        .times()
                        .iter()
                        .map(|t| {
                            format!("{} ({})", signet_core::signed_time::format(t.at), t.source)
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    (
                        true,
                        name,
                        format!(
                            "{what} for {digest} signed by certificate for {report}, issued by \
                             {}, signed at {when}",
                            report.authority
                        ),
                        Some(report),
                    )
                }
                Err(e) => (false, name, format!("{}: {e}", bundle_path.display()), None),
            }
        }
    };
    match output {
        Output::Json => {
            // `key`: the key id, or the identity asked for when verifying by certificate;
            // `certificate`: what the certificate said, when it verified.
            let mut json = serde_json::json!({
                "verified": verified,
                "file": file.display().to_string(),
                "digest": digest.to_string(),
                "key": signer,
                "reason": reason,
            });
            if let Some(report) = certified {
                json["certificate"] = serde_json::to_value(report)?;
            }
            crate::output::line(&format!("{json}"));
        }
        Output::Text if verified => crate::output::line(&format!("Verified OK: {reason}")),
        Output::Text => crate::output::line(&format!("Verification FAILED: {reason}")),
    }
    Ok(if verified {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
