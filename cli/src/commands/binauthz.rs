//! `signet binauthz import`, `signet binauthz export` and `signet attest --format binauthz`:
//! Binary Authorization attestations between Container Analysis and registries.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context as _, bail};
use secrecy::ExposeSecret as _;
use signet_core::binauthz::{self, Attestation, Occurrence, Signature};
use signet_core::digest::Digest;
use signet_core::keys::KeyPair;
use signet_core::pgp::PgpSecretKey;
use signet_core::reference::ImageRef;
use signet_registry::publish;
use signet_registry::{RegistryError, Repository};

use crate::cli::{Output, RegistryArgs};
use crate::commands::image::Target;
use crate::commands::registry;
use crate::commands::signer::load_signer;

/// Largest armoured OpenPGP secret key read.
const MAX_PGP_KEY_BYTES: u64 = 1 << 20;

/// What signs a Binary Authorization attestation.
pub enum Signer {
    /// A cosign-format or unencrypted PKCS#8 PEM key (ECDSA P-256), or a PKCS#11 URI, as a
    /// PKIX attestor key.
    Pkix(PathBuf),
    /// An armoured OpenPGP secret key.
    Pgp(PathBuf),
}

impl Signer {
    /// From `--key` / `--pgp-key` (clap makes sure one is given).
    pub fn from_args(key: Option<PathBuf>, pgp_key: Option<PathBuf>) -> anyhow::Result<Signer> {
        match (key, pgp_key) {
            (Some(key), None) => Ok(Signer::Pkix(key)),
            (None, Some(pgp)) => Ok(Signer::Pgp(pgp)),
            _ => bail!("give one of --key and --pgp-key"),
        }
    }
}

/// `signet attest IMAGE --format binauthz`.
pub async fn attest(
    args: &RegistryArgs,
    image: &str,
    signer: Signer,
    note: Option<String>,
    public_key_id: Option<String>,
    predicate_given: bool,
) -> anyhow::Result<ExitCode> {
    if predicate_given {
        bail!(
            "--format binauthz signs the gcloud signature payload for the image; it takes no \
             --predicate"
        );
    }
    if let Some(note) = &note {
        check_note(note)?;
    }
    // Keys first: a wrong password should not cost a registry round trip.
    enum Loaded {
        Pkix(Box<dyn signet_core::keys::Signer>),
        Pgp(Box<PgpSecretKey>),
    }
    let loaded = match &signer {
        Signer::Pkix(path)
            if path
                .to_str()
                .is_some_and(signet_pkcs11::Pkcs11Uri::is_pkcs11_uri) =>
        {
            Loaded::Pkix(load_signer(path)?)
        }
        Signer::Pkix(path) => {
            let text = read_bounded(path, MAX_PGP_KEY_BYTES)?;
            if text.contains("-----BEGIN PRIVATE KEY-----") {
                Loaded::Pkix(Box::new(KeyPair::from_pkcs8_pem(&text).with_context(
                    || format!("loading private key {}", path.display()),
                )?))
            } else {
                Loaded::Pkix(load_signer(path)?)
            }
        }
        Signer::Pgp(path) => {
            let text = read_bounded(path, MAX_PGP_KEY_BYTES)?;
            let passphrase = crate::password::for_existing_key()?;
            let key = PgpSecretKey::from_armor(&text, passphrase.expose_secret())
                .with_context(|| format!("loading OpenPGP secret key {}", path.display()))?;
            Loaded::Pgp(Box::new(key))
        }
    };
    let target = Target::open(args, image)?;
    let (pinned, subject) = target.resolve_subject().await?;
    let payload = binauthz::payload(&pinned.name(), pinned.digest());
    let (signature, default_id, signer_name) = match &loaded {
        Loaded::Pkix(pair) => (
            pair.sign(&payload)?,
            binauthz::ni_key_id(pair.public_key()),
            format!("key {}", pair.public_key().id()),
        ),
        Loaded::Pgp(key) => (
            key.sign_message(&payload)
                .context("signing with the OpenPGP key")?
                .into_bytes(),
            key.fingerprint(),
            format!("PGP key {}", key.fingerprint()),
        ),
    };
    let occurrence = Occurrence {
        name: None,
        note_name: note,
        resource_uri: format!("https://{}@{}", pinned.name(), pinned.digest()),
        create_time: Some(publish::rfc3339(SystemTime::now())),
        attestation: Attestation::Signed {
            payload,
            signatures: vec![Signature {
                public_key_id: public_key_id.unwrap_or(default_id),
                signature,
            }],
        },
    };
    let (pushed, _) = publish::push_occurrence(&target.repo, &subject, &occurrence).await?;
    target.save()?;
    eprintln!(
        "Attested {}{} (Binary Authorization) with {signer_name}; pushed {}",
        target.show(&pinned),
        target.as_identity(),
        pushed.digest
    );
    crate::output::line(&format!("{}", pushed.digest));
    Ok(ExitCode::SUCCESS)
}

fn check_note(note: &str) -> anyhow::Result<()> {
    match note.split('/').collect::<Vec<_>>().as_slice() {
        ["projects", project, "notes", name] if !project.is_empty() && !name.is_empty() => Ok(()),
        _ => bail!("note `{note}` is not a Container Analysis note name (projects/P/notes/N)"),
    }
}

fn read_bounded(path: &Path, limit: u64) -> anyhow::Result<String> {
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut text = String::new();
    file.take(limit + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {}", path.display()))?;
    if text.len() as u64 > limit {
        bail!("{} is larger than {limit} bytes", path.display());
    }
    Ok(text)
}

/// A `--registry-map FROM=TO` rule.
struct Rewrite {
    from: String,
    to: String,
}

fn rewrites(pairs: &[String]) -> anyhow::Result<Vec<Rewrite>> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((from, to)) if !from.is_empty() && !to.is_empty() => Ok(Rewrite {
                from: from.trim_end_matches('/').to_string(),
                to: to.trim_end_matches('/').to_string(),
            }),
            _ => bail!("--registry-map {pair:?} is not FROM=TO (e.g. gcr.io/p=registry.corp/p)"),
        })
        .collect()
}

/// The image name after the first rule whose prefix matches at a path boundary.
fn rewrite(name: &str, rules: &[Rewrite]) -> String {
    for rule in rules {
        if let Some(rest) = name.strip_prefix(&rule.from)
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return format!("{}{rest}", rule.to);
        }
    }
    name.to_string()
}

/// One occurrence's fate.
#[derive(serde::Serialize)]
struct Outcome {
    /// The occurrence's name, or its place in the file.
    occurrence: String,
    /// `stored`, `skipped` (already there) or `refused`.
    result: &'static str,
    /// Where it went (for stored and skipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<String>,
    /// The referrer manifest (for stored and skipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    referrer: Option<String>,
    /// Why it was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// With --policy: the attestors it counts for.
    #[serde(skip_serializing_if = "Option::is_none")]
    counts_for: Option<Vec<String>>,
    /// With --policy: why it counts for none of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    policy_note: Option<String>,
}

impl Outcome {
    fn refused(occurrence: String, reason: String) -> Outcome {
        Outcome {
            occurrence,
            result: "refused",
            image: None,
            referrer: None,
            reason: Some(reason),
            counts_for: None,
            policy_note: None,
        }
    }
}

/// `signet binauthz import`.
pub async fn import(
    args: &RegistryArgs,
    files: &[PathBuf],
    registry_map: &[String],
    policy: Option<&Path>,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let rules = rewrites(registry_map)?;
    let policy = match policy {
        Some(path) => Some(
            signet_policy::load(path)
                .map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))?,
        ),
        None => None,
    };
    // Read and check everything first: what is refused is known before anything is written.
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut ready: Vec<(usize, Occurrence, ImageRef, Digest)> = Vec::new();
    for file in files {
        let bytes = read_bounded(file, binauthz::MAX_LIST_BYTES as u64)?;
        let items = Occurrence::parse_list(bytes.as_bytes())
            .with_context(|| format!("reading occurrences from {}", file.display()))?;
        for (index, (name, item)) in items.into_iter().enumerate() {
            let fallback =
                name.unwrap_or_else(|| format!("{} occurrence #{}", file.display(), index + 1));
            let occurrence = match item {
                Ok(occurrence) => occurrence,
                Err(e) => {
                    outcomes.push(Outcome::refused(fallback, e.to_string()));
                    continue;
                }
            };
            let label = occurrence.name.clone().unwrap_or(fallback);
            let (image, _) = match occurrence.check_consistent() {
                Ok(checked) => checked,
                Err(e) => {
                    outcomes.push(Outcome::refused(label, e.to_string()));
                    continue;
                }
            };
            let Some(digest) = image.digest().cloned() else {
                outcomes.push(Outcome::refused(label, "resourceUri has no digest".into()));
                continue;
            };
            let target = format!("{}@{digest}", rewrite(&image.name(), &rules));
            let target: ImageRef = match target.parse() {
                Ok(target) => target,
                Err(e) => {
                    outcomes.push(Outcome::refused(label, format!("image {target}: {e}")));
                    continue;
                }
            };
            outcomes.push(Outcome {
                occurrence: label,
                result: "pending",
                image: Some(target.to_string()),
                referrer: None,
                reason: None,
                counts_for: None,
                policy_note: None,
            });
            ready.push((outcomes.len() - 1, occurrence, target, digest));
        }
    }

    let registries: Vec<String> = ready
        .iter()
        .map(|(_, _, image, _)| image.registry().to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let named: Vec<&str> = registries.iter().map(String::as_str).collect();
    if !ready.is_empty() {
        let client = registry::client(args, &named)?;
        for (at, occurrence, image, digest) in &ready {
            let outcome = &mut outcomes[*at];
            if let Some(policy) = &policy {
                let (counts, note) = judge(policy, occurrence, digest);
                outcome.counts_for = Some(counts);
                outcome.policy_note = note;
            }
            let repo = Repository::new(&client, image);
            let subject = match publish::subject_descriptor(&repo, digest).await {
                Ok(subject) => subject,
                Err(RegistryError::NotFound { .. }) => {
                    outcome.result = "refused";
                    outcome.reason = Some(format!("image {image} is not in the registry"));
                    continue;
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("storing {} for {image}", outcome.occurrence)));
                }
            };
            let (descriptor, written) = publish::push_occurrence(&repo, &subject, occurrence)
                .await
                .with_context(|| format!("storing {} for {image}", outcome.occurrence))?;
            outcome.result = if written { "stored" } else { "skipped" };
            outcome.referrer = Some(descriptor.digest.to_string());
        }
    }

    let count = |what: &str| outcomes.iter().filter(|o| o.result == what).count();
    let (stored, skipped, refused) = (count("stored"), count("skipped"), count("refused"));
    match output {
        Output::Json => crate::output::line(&serde_json::to_string_pretty(&serde_json::json!({
            "stored": stored,
            "skipped": skipped,
            "refused": refused,
            "occurrences": outcomes,
        }))?),
        Output::Text => {
            let mut text = String::new();
            for o in &outcomes {
                let line = match o.result {
                    "refused" => format!(
                        "refused {}: {}\n",
                        o.occurrence,
                        o.reason.as_deref().unwrap_or("")
                    ),
                    result => format!(
                        "{result} {} -> {} ({})\n",
                        o.occurrence,
                        o.image.as_deref().unwrap_or(""),
                        o.referrer.as_deref().unwrap_or("")
                    ),
                };
                text.push_str(&line);
                if let Some(counts) = &o.counts_for {
                    if counts.is_empty() {
                        text.push_str(&format!(
                            "  counts for no attestor of the policy: {}\n",
                            o.policy_note
                                .as_deref()
                                .unwrap_or("no attestor has its key")
                        ));
                    } else {
                        text.push_str(&format!("  counts for {}\n", counts.join(", ")));
                    }
                }
            }
            text.push_str(&format!(
                "{stored} stored, {skipped} already there, {refused} refused\n"
            ));
            crate::output::stdout(&text);
        }
    }
    Ok(if refused > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The attestors of `policy` whose keys verify `occurrence` for `digest`, and, when none, the
/// first reason.
fn judge(
    policy: &signet_policy::Policy,
    occurrence: &Occurrence,
    digest: &Digest,
) -> (Vec<String>, Option<String>) {
    let mut counts = Vec::new();
    let mut first_reason = None;
    for attestor in policy.attestors.values() {
        if attestor.note_keys.is_empty() {
            continue;
        }
        match binauthz::verify(occurrence, &attestor.note_keys, digest) {
            Ok(_) => counts.push(attestor.name.to_string()),
            Err(e) => {
                first_reason.get_or_insert_with(|| format!("attestor {}: {e}", attestor.name));
            }
        }
    }
    let note = if counts.is_empty() {
        first_reason
    } else {
        None
    };
    (counts, note)
}

/// `signet binauthz export`.
pub async fn export(
    args: &RegistryArgs,
    image: &str,
    note: Option<&str>,
    output: &Path,
    force: bool,
) -> anyhow::Result<ExitCode> {
    if let Some(note) = note {
        check_note(note)?;
    }
    let to_stdout = output == Path::new("-");
    if !to_stdout && !force && output.exists() {
        bail!("{} exists; give --force to replace it", output.display());
    }
    let target = Target::open(args, image)?;
    let pinned = target.resolve().await?;
    let referrers = target
        .repo
        .referrers(pinned.digest(), Some(binauthz::ARTIFACT_TYPE))
        .await
        .with_context(|| format!("listing referrers of {}", target.show(&pinned)))?;
    let mut occurrences: BTreeMap<Digest, serde_json::Value> = BTreeMap::new();
    let mut skipped = 0usize;
    for descriptor in referrers
        .descriptors
        .iter()
        .filter(|d| d.artifact_type.as_deref() == Some(binauthz::ARTIFACT_TYPE))
    {
        let occurrence = match read_occurrence(&target.repo, &descriptor.digest).await {
            Ok(occurrence) => occurrence,
            Err(e) => {
                eprintln!("warning: skipping referrer {}: {e:#}", descriptor.digest);
                skipped += 1;
                continue;
            }
        };
        if note.is_some_and(|n| occurrence.note_name.as_deref() != Some(n)) {
            continue;
        }
        let value: serde_json::Value = serde_json::from_slice(&occurrence.to_json())?;
        occurrences.insert(descriptor.digest.clone(), value);
    }
    let list: Vec<serde_json::Value> = occurrences.into_values().collect();
    let mut text = serde_json::to_string_pretty(&list)?;
    text.push('\n');
    if to_stdout {
        crate::output::stdout(&text);
    } else {
        let dir = output
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut file = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("writing {}", output.display()))?;
        std::io::Write::write_all(&mut file, text.as_bytes())?;
        file.persist(output)
            .with_context(|| format!("writing {}", output.display()))?;
    }
    eprintln!(
        "Exported {} Binary Authorization attestation(s) of {}{}{}",
        list.len(),
        target.show(&pinned),
        if to_stdout {
            String::new()
        } else {
            format!(" to {}", output.display())
        },
        if skipped > 0 {
            format!(" ({skipped} unreadable referrer(s) skipped)")
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads a stored occurrence: its manifest, then its layer (both checked against digests by
/// the store).
async fn read_occurrence(repo: &Repository, digest: &Digest) -> anyhow::Result<Occurrence> {
    let fetched = repo.get_manifest(digest).await?;
    let manifest = signet_core::oci::AnyManifest::parse(&fetched.media_type, &fetched.bytes)?;
    let signet_core::oci::AnyManifest::Image(manifest) = manifest else {
        bail!("it is an index, not a manifest");
    };
    let layer = manifest
        .layers
        .iter()
        .find(|l| l.media_type == binauthz::ARTIFACT_TYPE)
        .context("it has no occurrence layer")?;
    let bytes = repo.get_blob_sized(layer).await?;
    Ok(Occurrence::from_json(&bytes)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn registry_map_rewrites_at_path_boundaries_only() {
        let rules = rewrites(&["gcr.io/old=registry.corp/new".to_string()]).unwrap();
        assert_eq!(rewrite("gcr.io/old/app", &rules), "registry.corp/new/app");
        assert_eq!(rewrite("gcr.io/old", &rules), "registry.corp/new");
        assert_eq!(rewrite("gcr.io/older/app", &rules), "gcr.io/older/app");
        assert!(rewrites(&["nope".to_string()]).is_err());
    }

    #[test]
    fn note_names_are_checked() {
        assert!(check_note("projects/p/notes/n").is_ok());
        assert!(check_note("projects/p/attestors/n").is_err());
    }
}
