//! `signet sign`, `attest`, `tree` and `verify` on images in a registry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use signet_core::bundle::Bundle;
use signet_core::dsse::Envelope;
use signet_core::intoto::{self, Statement};
use signet_core::keys::PublicKey;
use signet_core::oci::{self, Descriptor};
use signet_core::reference::{ImageRef, PinnedRef};
use signet_core::simplesigning::SimpleSigning;
use signet_registry::Repository;
use signet_registry::publish::{self, LegacyLayer};
use signet_verify::Decision;

use crate::cli::{Output, RegistryArgs, StorageFormat};
use crate::commands::blob::{load_private_key, load_public_key};
use crate::commands::registry;

fn parse_image(image: &str) -> anyhow::Result<ImageRef> {
    Ok(image.parse::<ImageRef>()?)
}

/// The repository, the pinned image and its descriptor (for a referrer's `subject`), from one
/// manifest fetch.
async fn resolve_subject(
    args: &RegistryArgs,
    image: &str,
) -> anyhow::Result<(Repository, PinnedRef, Descriptor)> {
    let image = parse_image(image)?;
    let repo = Repository::new(&registry::client(args)?, &image);
    let (pinned, subject) = publish::resolve_subject(&repo, &image)
        .await
        .with_context(|| format!("resolving {image}"))?;
    Ok((repo, pinned, subject))
}

async fn resolve(args: &RegistryArgs, image: &str) -> anyhow::Result<(Repository, PinnedRef)> {
    let image = parse_image(image)?;
    let client = registry::client(args)?;
    let repo = Repository::new(&client, &image);
    let pinned = repo
        .resolve(&image)
        .await
        .with_context(|| format!("resolving {image}"))?;
    Ok((repo, pinned))
}

/// cosign's `--type` names, or any URI.
pub fn predicate_type_uri(name: &str) -> anyhow::Result<String> {
    if let Some(uri) = intoto::cosign_predicate_type(name) {
        return Ok(uri.to_string());
    }
    if name.contains("://") {
        return Ok(name.to_string());
    }
    bail!(
        "unknown predicate type {name:?}: use slsaprovenance, slsaprovenance1, link, spdx, \
         spdxjson, cyclonedx, vuln, openvex, custom, or a URI"
    )
}

fn parse_annotations(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("annotation {pair:?} is not KEY=VALUE"),
        })
        .collect()
}

pub async fn sign(
    args: &RegistryArgs,
    image: &str,
    key: &Path,
    format: StorageFormat,
    annotations: &[String],
) -> anyhow::Result<ExitCode> {
    let annotations = parse_annotations(annotations)?;
    let pair = load_private_key(key)?;
    let (repo, pinned, subject) = resolve_subject(args, image).await?;
    let pushed = match format {
        StorageFormat::Bundle => {
            let predicate = if annotations.is_empty() {
                serde_json::json!({})
            } else {
                serde_json::json!({ "annotations": annotations })
            };
            let statement = Statement::new(
                &pinned.name(),
                pinned.digest(),
                intoto::COSIGN_SIGN_PREDICATE,
                predicate,
            );
            let bundle = Bundle::sign_statement(&statement, &pair);
            publish::push_bundle(&repo, &subject, &bundle).await?.digest
        }
        StorageFormat::Legacy => {
            let payload = SimpleSigning::cosign(&pinned.name(), pinned.digest(), annotations)
                .to_cosign_bytes();
            let signature = base64::engine::general_purpose::STANDARD.encode(pair.sign(&payload));
            publish::append_legacy(
                &repo,
                pinned.digest(),
                "sig",
                LegacyLayer {
                    media_type: oci::SIMPLE_SIGNING_LAYER,
                    bytes: payload,
                    annotations: BTreeMap::from([(
                        oci::COSIGN_SIGNATURE_ANNOTATION.to_string(),
                        signature,
                    )]),
                },
            )
            .await?
        }
    };
    eprintln!(
        "Signed {pinned} with key {}; pushed {pushed}",
        pair.public_key().id()
    );
    crate::output::line(&format!("{pushed}"));
    Ok(ExitCode::SUCCESS)
}

pub async fn attest(
    args: &RegistryArgs,
    image: &str,
    key: &Path,
    predicate_path: &PathBuf,
    predicate_type: &str,
    format: StorageFormat,
) -> anyhow::Result<ExitCode> {
    let predicate_type = predicate_type_uri(predicate_type)?;
    let raw = std::fs::read(predicate_path)
        .with_context(|| format!("reading {}", predicate_path.display()))?;
    let predicate: serde_json::Value = match serde_json::from_slice(&raw) {
        Ok(v) => v,
        Err(_) if predicate_type == "https://cosign.sigstore.dev/attestation/v1" => {
            serde_json::json!({ "Data": String::from_utf8_lossy(&raw) })
        }
        Err(e) => bail!("predicate {} is not JSON: {e}", predicate_path.display()),
    };
    let pair = load_private_key(key)?;
    let (repo, pinned, subject) = resolve_subject(args, image).await?;
    let statement = Statement::new(&pinned.name(), pinned.digest(), &predicate_type, predicate);
    let pushed = match format {
        StorageFormat::Bundle => {
            let bundle = Bundle::sign_statement(&statement, &pair);
            publish::push_bundle(&repo, &subject, &bundle).await?.digest
        }
        StorageFormat::Legacy => {
            let envelope = Envelope::sign(intoto::PAYLOAD_TYPE, &statement.to_json(), &pair);
            publish::append_legacy(
                &repo,
                pinned.digest(),
                "att",
                LegacyLayer {
                    media_type: oci::DSSE_LAYER,
                    bytes: envelope.to_json(),
                    annotations: BTreeMap::from([(
                        oci::LEGACY_PREDICATE_TYPE_ANNOTATION.to_string(),
                        predicate_type.clone(),
                    )]),
                },
            )
            .await?
        }
    };
    eprintln!(
        "Attested {pinned} ({predicate_type}) with key {}; pushed {pushed}",
        pair.public_key().id()
    );
    crate::output::line(&format!("{pushed}"));
    Ok(ExitCode::SUCCESS)
}

pub async fn tree(args: &RegistryArgs, image: &str, output: Output) -> anyhow::Result<ExitCode> {
    let (repo, pinned) = resolve(args, image).await?;
    let tree = signet_verify::tree::build(&repo, &pinned).await?;
    match output {
        Output::Text => crate::output::stdout(&tree.to_text()),
        Output::Json => crate::output::line(&serde_json::to_string_pretty(&tree)?),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn verify(
    args: &RegistryArgs,
    image: &str,
    keys: &[PathBuf],
    output: Output,
) -> anyhow::Result<ExitCode> {
    let keys: Vec<PublicKey> = keys
        .iter()
        .map(|k| load_public_key(k))
        .collect::<anyhow::Result<_>>()?;
    let image_ref = parse_image(image)?;
    let client = registry::client(args)?;
    let decision = signet_verify::verify_with_keys(&client, &image_ref, &keys)
        .await
        .with_context(|| format!("verifying {image_ref}"))?;
    match output {
        Output::Json => crate::output::line(&serde_json::to_string_pretty(&decision)?),
        Output::Text => crate::output::stdout(&decision_text(&decision)),
    }
    Ok(if decision.allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn decision_text(d: &Decision) -> String {
    let verdict = match (d.allowed, d.would_deny) {
        (true, true) => "ALLOWED (dry run: the rule would DENY)",
        (true, false) => "ALLOWED",
        (false, _) => "DENIED",
    };
    let mut out = format!("{verdict} {}\n", d.image);
    out.push_str(&format!("  rule: {} ({})\n", d.rule, d.enforcement));
    for a in &d.attestors {
        out.push_str(&format!(
            "  {} {}: {}\n",
            if a.satisfied { "✓" } else { "✗" },
            a.name,
            a.reason
        ));
    }
    // Reasons not already shown as an attestor line (allowlist, ALWAYS_DENY, exemptions).
    for r in &d.reasons {
        if !d.attestors.iter().any(|a| r.ends_with(&a.reason)) {
            out.push_str(&format!("  {r}\n"));
        }
    }
    for r in &d.rejected {
        out.push_str(&format!("  rejected {}: {}\n", r.location, r.reason));
    }
    out
}
