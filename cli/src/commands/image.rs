//! `signet sign`, `attest`, `tree` and `verify` on images in a registry or an OCI layout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use signet_core::intoto;
use signet_core::keys::PublicKey;
use signet_core::oci::{AnyManifest, Descriptor};
use signet_core::reference::{ImageRef, PinnedRef};
use signet_registry::publish;
use signet_registry::{Location, OpenedImage, Repository};
use signet_verify::{Decision, Outcome};

use crate::cli::{Output, RegistryArgs, StorageFormat};
use crate::commands::blob::load_public_key;
use crate::commands::registry;
use crate::commands::signer::{load_certified_signer, load_signer};

/// An image as the user named it: in a registry (`registry/repository[:tag][@digest]`) or in
/// an OCI layout (`oci:PATH[:tag|@digest]`, `oci-archive:FILE[:tag|@digest]`).
pub struct Target {
    /// The store the image is in.
    pub repo: Repository,
    /// The name the image is known by: the reference as given, or a layout image's identity
    /// (pinned to its digest), which policies match and statements sign.
    pub image: ImageRef,
    opened: OpenedImage,
}

impl Target {
    /// Opens the registry repository or the layout `given` names (a layout must exist).
    pub fn open(args: &RegistryArgs, given: &str) -> anyhow::Result<Target> {
        let opened = given
            .parse::<Location>()?
            .open(|image| registry::client(args, &[image.registry()]))?;
        Ok(Target {
            repo: opened.repo.clone(),
            image: opened.image.clone(),
            opened,
        })
    }

    /// How to show `pinned` to the user (see [`OpenedImage::show`]).
    pub fn show(&self, pinned: &PinnedRef) -> String {
        self.opened.show(pinned)
    }

    /// For a layout, the identity the image is judged and signed as.
    pub fn identity(&self) -> Option<String> {
        self.opened.identity()
    }

    /// Writes an archive back after a write (nothing for a registry or a directory).
    pub fn save(&self) -> anyhow::Result<()> {
        if let Some(layout) = self.repo.as_layout() {
            layout.save()?;
        }
        Ok(())
    }

    /// The repository, the pinned image and its descriptor (for a referrer's `subject`), from
    /// one manifest fetch.
    pub async fn resolve_subject(&self) -> anyhow::Result<(PinnedRef, Descriptor)> {
        publish::resolve_subject(&self.repo, &self.image)
            .await
            .with_context(|| format!("resolving {}", self.shown_given()))
    }

    pub async fn resolve(&self) -> anyhow::Result<PinnedRef> {
        self.repo
            .resolve(&self.image)
            .await
            .with_context(|| format!("resolving {}", self.shown_given()))
    }

    /// The reference as given (a registry reference normalised).
    pub fn shown_given(&self) -> String {
        self.opened.shown_given()
    }

    /// " (as IDENTITY)" for a layout, for messages about writes.
    pub fn as_identity(&self) -> String {
        self.identity()
            .map(|i| format!(" (as {i})"))
            .unwrap_or_default()
    }
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

/// The image, and with `recursive` every platform manifest its index lists, each pinned and
/// described for a referrer's `subject`: what `--recursive` signs.
async fn subjects(
    target: &Target,
    recursive: bool,
) -> anyhow::Result<Vec<(PinnedRef, Descriptor)>> {
    let (pinned, subject) = target.resolve_subject().await?;
    if !recursive {
        return Ok(vec![(pinned, subject)]);
    }
    let fetched = target.repo.get_manifest(pinned.digest()).await?;
    let children = match AnyManifest::parse(&fetched.media_type, &fetched.bytes)? {
        AnyManifest::Index(index) => index.manifests,
        AnyManifest::Image(_) => bail!(
            "--recursive: {} is a single-platform image, not an index; sign it without \
             --recursive",
            target.show(&pinned)
        ),
    };
    let mut out = vec![(pinned.clone(), subject)];
    for child in children {
        if child.is_attestation_manifest() {
            continue;
        }
        let described = publish::subject_descriptor(&target.repo, &child.digest)
            .await
            .with_context(|| format!("reading platform manifest {}", child.digest))?;
        out.push((pinned.to_image_ref().with_digest(child.digest), described));
    }
    Ok(out)
}

/// The HTTP client for `--timestamp-server-url`, when given (the registry options' TLS trust).
fn stamp_client(
    args: &RegistryArgs,
    url: Option<&signet_registry::Url>,
) -> anyhow::Result<Option<signet_registry::Client>> {
    url.map(|_| crate::commands::registry::client(args, &[]))
        .transpose()
}

fn stamp<'a>(
    client: &'a Option<signet_registry::Client>,
    url: Option<&'a signet_registry::Url>,
) -> Option<publish::Stamp<'a>> {
    match (client, url) {
        (Some(client), Some(url)) => Some(publish::Stamp { client, url }),
        _ => None,
    }
}

#[allow(clippy::too_many_arguments, reason = "one per command-line option")]
pub async fn sign(
    args: &RegistryArgs,
    image: &str,
    key: &Path,
    certificate: &crate::cli::CertificateArgs,
    format: StorageFormat,
    annotations: &[String],
    recursive: bool,
    timestamp_server: Option<&signet_registry::Url>,
) -> anyhow::Result<ExitCode> {
    let annotations = parse_annotations(annotations)?;
    let signer = load_certified_signer(key, certificate)?;
    let target = Target::open(args, image)?;
    let stamper = stamp_client(args, timestamp_server)?;
    let stamp = stamp(&stamper, timestamp_server);
    for (pinned, subject) in subjects(&target, recursive).await? {
        let pushed = publish::sign(
            &target.repo,
            &pinned,
            &subject,
            signer.as_ref(),
            format.into(),
            annotations.clone(),
            stamp.as_ref(),
        )
        .await?;
        target.save()?;
        eprintln!(
            "Signed {}{} with key {}; pushed {pushed}",
            target.show(&pinned),
            target.as_identity(),
            signer.public_key().id(),
        );
        crate::output::line(&format!("{pushed}"));
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::too_many_arguments, reason = "one per command-line option")]
pub async fn attest(
    args: &RegistryArgs,
    image: &str,
    key: &Path,
    certificate: &crate::cli::CertificateArgs,
    predicate_path: &PathBuf,
    predicate_type: &str,
    format: StorageFormat,
    recursive: bool,
    timestamp_server: Option<&signet_registry::Url>,
) -> anyhow::Result<ExitCode> {
    let predicate_type = intoto::predicate_type(predicate_type)?;
    let raw = std::fs::read(predicate_path)
        .with_context(|| format!("reading {}", predicate_path.display()))?;
    let predicate = intoto::predicate_from_file(&predicate_type, &raw)
        .map_err(|e| anyhow::anyhow!("predicate {} is not JSON: {e}", predicate_path.display()))?;
    let signer = load_certified_signer(key, certificate)?;
    let target = Target::open(args, image)?;
    let stamper = stamp_client(args, timestamp_server)?;
    let stamp = stamp(&stamper, timestamp_server);
    for (pinned, subject) in subjects(&target, recursive).await? {
        let pushed = publish::attest(
            &target.repo,
            &pinned,
            &subject,
            signer.as_ref(),
            format.into(),
            &predicate_type,
            predicate.clone(),
            stamp.as_ref(),
        )
        .await?;
        target.save()?;
        eprintln!(
            "Attested {}{} ({predicate_type}) with key {}; pushed {pushed}",
            target.show(&pinned),
            target.as_identity(),
            signer.public_key().id(),
        );
        crate::output::line(&format!("{pushed}"));
    }
    Ok(ExitCode::SUCCESS)
}

/// `signet withdraw`: a signed withdrawal statement naming a referrer of the image.
pub async fn withdraw(
    args: &RegistryArgs,
    image: &str,
    attestation: &str,
    key: &Path,
    reason: Option<String>,
) -> anyhow::Result<ExitCode> {
    let withdrawn: signet_core::digest::Digest = attestation
        .parse()
        .map_err(|e| anyhow::anyhow!("--attestation {attestation}: {e}"))?;
    let signer = load_signer(key)?;
    let target = Target::open(args, image)?;
    let (pinned, subject) = target.resolve_subject().await?;
    let referrers = target
        .repo
        .referrers(pinned.digest(), None)
        .await
        .with_context(|| format!("listing referrers of {}", target.show(&pinned)))?;
    if !referrers.descriptors.iter().any(|d| d.digest == withdrawn) {
        bail!(
            "{withdrawn} is not a referrer of {}; `signet tree` lists its attestations",
            target.show(&pinned)
        );
    }
    let mut predicate = serde_json::json!({ "withdrawn": withdrawn.to_string() });
    if let Some(reason) = reason {
        predicate["reason"] = serde_json::Value::String(reason);
    }
    let pushed = publish::attest(
        &target.repo,
        &pinned,
        &subject,
        signer.as_ref(),
        StorageFormat::Bundle.into(),
        intoto::WITHDRAWAL_PREDICATE,
        predicate,
        None,
    )
    .await?;
    target.save()?;
    eprintln!(
        "Withdrew {withdrawn} from {}{} with key {}; pushed {pushed}",
        target.show(&pinned),
        target.as_identity(),
        signer.public_key().id(),
    );
    crate::output::line(&format!("{pushed}"));
    Ok(ExitCode::SUCCESS)
}

pub async fn tree(args: &RegistryArgs, image: &str, output: Output) -> anyhow::Result<ExitCode> {
    let target = Target::open(args, image)?;
    let pinned = target.resolve().await?;
    let mut tree = signet_verify::tree::build(&target.repo, &pinned).await?;
    tree.image = target.show(&pinned);
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
    max_evidence_bytes: u64,
) -> anyhow::Result<ExitCode> {
    let keys: Vec<PublicKey> = keys
        .iter()
        .map(|k| load_public_key(k))
        .collect::<anyhow::Result<_>>()?;
    let target = Target::open(args, image)?;
    let decision =
        signet_verify::verify_with_keys_in(&target.repo, &target.image, &keys, max_evidence_bytes)
            .await
            .with_context(|| format!("verifying {}", target.shown_given()))?;
    print_decision(&target, decision, output)
}

/// `signet verify IMAGE --certificate-identity … | --ca-roots …`: evidence signed with a
/// certificate the options accept, checked offline.
pub async fn verify_certificates(
    args: &RegistryArgs,
    image: &str,
    certificate: &crate::cli::CertificateIdentityArgs,
    output: Output,
    max_evidence_bytes: u64,
) -> anyhow::Result<ExitCode> {
    let (trust, name) = crate::commands::certificates::trust(certificate)?;
    let target = Target::open(args, image)?;
    let decision = signet_verify::verify_with_certificates_in(
        &target.repo,
        &target.image,
        &trust,
        name,
        max_evidence_bytes,
    )
    .await
    .with_context(|| format!("verifying {}", target.shown_given()))?;
    print_decision(&target, decision, output)
}

/// Prints a decision (for a layout: the location as given, and the identity judged) and
/// returns the exit code: 0 allowed, 1 denied.
pub fn print_decision(
    target: &Target,
    mut decision: Decision,
    output: Output,
) -> anyhow::Result<ExitCode> {
    if let Some(pinned) = target.image.pinned()
        && target.identity().is_some()
    {
        decision.image = target.show(&pinned);
    }
    match output {
        Output::Json => crate::output::line(&serde_json::to_string_pretty(&decision)?),
        Output::Text => {
            let mut text = decision_text(&decision);
            if let Some(identity) = target.identity() {
                let at = text.find('\n').map_or(text.len(), |i| i + 1);
                text.insert_str(at, &format!("  identity: {identity}\n"));
            }
            crate::output::stdout(&text);
        }
    }
    Ok(if decision.allowed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn decision_text(d: &Decision) -> String {
    let verdict = match d.outcome {
        Outcome::AllowedDryRunWouldDeny => "ALLOWED (dry run: the rule would DENY)",
        Outcome::Allowed => "ALLOWED",
        Outcome::Denied => "DENIED",
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
    for a in &d.accepted {
        if let Some(c) = &a.certificate {
            out.push_str(&format!(
                "  certificate: {c} ({}): {}\n",
                c.authority,
                a.location.with_format()
            ));
        }
        if let Some(t) = &a.signed_at {
            out.push_str(&format!(
                "  signed at {} ({}): {}\n",
                t.time,
                t.source,
                a.location.with_format()
            ));
        }
    }
    if let Some(until) = d.valid_until {
        out.push_str(&format!(
            "  valid until {} (maxAge or key validUntil)\n",
            signet_core::signed_time::format(until)
        ));
    }
    // Reasons not already shown as an attestor line (allowlist, ALWAYS_DENY, exemptions).
    for r in &d.reasons {
        if !d.attestors.iter().any(|a| r.ends_with(&a.reason)) {
            out.push_str(&format!("  {r}\n"));
        }
    }
    // Evidence that verified for one attestor is "rejected" by the others' keys; that is noise
    // here (the JSON output keeps it).
    for r in d
        .rejected
        .iter()
        .filter(|r| !d.accepted.iter().any(|a| r.location == a.location))
    {
        out.push_str(&format!(
            "  rejected {}: {}\n",
            r.location.with_format(),
            r.reason
        ));
    }
    out
}
