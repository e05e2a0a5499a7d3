//! Writing signatures and attestations next to an image, in the layouts cosign reads.
//!
//! - Bundle (default): cosign v3's layout. An OCI image manifest with `artifactType`
//!   `application/vnd.dev.sigstore.bundle.v0.3+json`, the empty config, one layer holding the
//!   bundle JSON, `subject` = the image, and the annotations cosign sets.
//! - Legacy: the `sha256-<hex>.sig` manifest (one simple-signing layer per signature, the
//!   signature in an annotation) or `sha256-<hex>.att` (one DSSE layer per attestation). New
//!   layers are appended; other signers' layers are never dropped.

use std::collections::BTreeMap;
#[cfg(test)]
use std::time::UNIX_EPOCH;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use signet_core::binauthz::{self, Occurrence};
use signet_core::bundle::{self, Bundle};
use signet_core::digest::Digest;
use signet_core::dsse::Envelope;
use signet_core::intoto::{self, Statement};
use signet_core::keys::Signer;
use signet_core::oci::{self, AnyManifest, Descriptor, Manifest};
use signet_core::reference::{ImageRef, PinnedRef};
use signet_core::signed_time;
use signet_core::simplesigning::SimpleSigning;

use crate::TagOrDigest;
use crate::client::{FetchedManifest, Precondition};
use crate::error::RegistryError;
use crate::repository::Repository;

/// Most attempts to append a layer to a legacy tag that concurrent writers keep changing.
const MAX_APPEND_ATTEMPTS: u32 = 32;

/// The descriptor of the image manifest `digest`, as a referrer's `subject` needs it (media
/// type and size come from the registry's copy, checked against the digest).
pub async fn subject_descriptor(
    repo: &Repository,
    digest: &Digest,
) -> Result<Descriptor, RegistryError> {
    Ok(describe(repo.get_manifest(digest).await?))
}

/// Resolves `image` (a tag once, or its digest) and describes its manifest for a referrer's
/// `subject`, in one request: the manifest fetched by tag gives the digest too.
pub async fn resolve_subject(
    repo: &Repository,
    image: &ImageRef,
) -> Result<(PinnedRef, Descriptor), RegistryError> {
    let fetched = match image.digest() {
        Some(digest) => repo.get_manifest(digest).await?,
        None => {
            let tag = image.tag().unwrap_or("latest");
            repo.get_manifest_by_tag(tag)
                .await?
                .ok_or_else(|| RegistryError::NotFound {
                    what: format!("manifest {image}"),
                })?
        }
    };
    let pinned = image.with_digest(fetched.digest.clone());
    Ok((pinned, describe(fetched)))
}

fn describe(fetched: FetchedManifest) -> Descriptor {
    let media_type = AnyManifest::parse(&fetched.media_type, &fetched.bytes)
        .map(|m| m.media_type().to_string())
        .unwrap_or(fetched.media_type);
    Descriptor {
        media_type,
        size: fetched.bytes.len() as u64,
        digest: fetched.digest,
        artifact_type: None,
        annotations: BTreeMap::new(),
        platform: None,
    }
}

/// Pushes `bundle` as a referrer of `subject` (cosign v3 layout) and returns the referrer's
/// descriptor.
pub async fn push_bundle(
    repo: &Repository,
    subject: &Descriptor,
    bundle: &Bundle,
) -> Result<Descriptor, RegistryError> {
    let bundle_json = bundle.to_json();
    repo.put_blob(oci::EMPTY_JSON_BYTES).await?;
    repo.put_blob(&bundle_json).await?;
    let layer = Descriptor::of(bundle::BUNDLE_V03_MEDIA_TYPE, &bundle_json);
    let bytes = bundle_manifest(subject, layer, bundle.unverified_predicate_type())?;
    repo.attach_referrer(&subject.digest, oci::OCI_MANIFEST, &bytes)
        .await
}

/// The referrer manifest of a bundle in cosign v3's layout: `layer` is the bundle blob's
/// descriptor, `predicate_type` the annotation readers filter on. The blobs (the empty config
/// and the bundle) must be stored first.
pub fn bundle_manifest(
    subject: &Descriptor,
    layer: Descriptor,
    predicate_type: Option<String>,
) -> Result<Vec<u8>, RegistryError> {
    let mut annotations = BTreeMap::from([
        (
            oci::BUNDLE_CONTENT_ANNOTATION.to_string(),
            "dsse-envelope".to_string(),
        ),
        (
            oci::CREATED_ANNOTATION.to_string(),
            rfc3339(SystemTime::now()),
        ),
    ]);
    if let Some(predicate_type) = predicate_type {
        annotations.insert(
            oci::BUNDLE_PREDICATE_TYPE_ANNOTATION.to_string(),
            predicate_type,
        );
    }
    referrer_manifest(subject, bundle::BUNDLE_V03_MEDIA_TYPE, layer, annotations)
}

/// A referrer manifest: `artifact_type`, the empty config, one `layer`, `subject` and
/// `annotations` (the blobs must be stored first).
fn referrer_manifest(
    subject: &Descriptor,
    artifact_type: &str,
    layer: Descriptor,
    annotations: BTreeMap<String, String>,
) -> Result<Vec<u8>, RegistryError> {
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(oci::OCI_MANIFEST.to_string()),
        artifact_type: Some(artifact_type.to_string()),
        config: Descriptor::of(oci::EMPTY_JSON, oci::EMPTY_JSON_BYTES),
        layers: vec![layer],
        subject: Some(subject.clone()),
        annotations,
    };
    serde_json::to_vec(&manifest).map_err(|e| RegistryError::Malformed {
        what: "referrer manifest".into(),
        reason: e.to_string(),
    })
}

/// The referrer manifest of a Binary Authorization occurrence: artifact type and layer
/// [`binauthz::ARTIFACT_TYPE`], the empty config, `subject` = the image, and annotations naming
/// the note, the occurrence and the key ids. Nothing in it depends on the time of writing (the
/// occurrence's own `createTime` is used when it has one), so storing the same occurrence twice
/// gives the same manifest, and a second import adds nothing.
pub fn occurrence_manifest(
    subject: &Descriptor,
    layer: Descriptor,
    occurrence: &Occurrence,
) -> Result<Vec<u8>, RegistryError> {
    let mut annotations = BTreeMap::from([(
        binauthz::KEY_IDS_ANNOTATION.to_string(),
        occurrence.key_ids().join(","),
    )]);
    if let Some(note) = &occurrence.note_name {
        annotations.insert(binauthz::NOTE_ANNOTATION.to_string(), note.clone());
    }
    if let Some(name) = &occurrence.name {
        annotations.insert(binauthz::OCCURRENCE_ANNOTATION.to_string(), name.clone());
    }
    if let Some(time) = &occurrence.create_time {
        annotations.insert(oci::CREATED_ANNOTATION.to_string(), time.clone());
    }
    referrer_manifest(subject, binauthz::ARTIFACT_TYPE, layer, annotations)
}

/// Stores a Binary Authorization occurrence as a referrer of `subject` (see
/// [`occurrence_manifest`]). Returns the referrer's descriptor and whether anything was
/// written (`false`: the same occurrence was already stored).
pub async fn push_occurrence(
    repo: &Repository,
    subject: &Descriptor,
    occurrence: &Occurrence,
) -> Result<(Descriptor, bool), RegistryError> {
    let json = occurrence.to_json();
    let layer = Descriptor::of(binauthz::ARTIFACT_TYPE, &json);
    let manifest = occurrence_manifest(subject, layer.clone(), occurrence)?;
    repo.put_blob(oci::EMPTY_JSON_BYTES).await?;
    repo.put_blob(&json).await?;
    let mut attached = repo
        .attach_referrers(
            &subject.digest,
            &[(oci::OCI_MANIFEST.to_string(), manifest)],
        )
        .await?;
    attached
        .pop()
        .ok_or_else(|| RegistryError::Usage("nothing was attached".into()))
}

/// A layer to append to a legacy cosign tag.
#[derive(Debug, Clone)]
pub struct LegacyLayer {
    /// The layer's media type (simple signing or DSSE).
    pub media_type: &'static str,
    /// The layer bytes (payload or envelope).
    pub bytes: Vec<u8>,
    /// Its annotations (the signature, or the predicate type).
    pub annotations: BTreeMap<String, String>,
}

/// Appends `layer` to the legacy tag `sha256-<hex>.<suffix>` (`sig` or `att`), keeping every
/// layer already there, and re-reads until the layer is present. Returns the digest of the
/// manifest that holds it.
pub async fn append_legacy(
    repo: &Repository,
    subject: &Digest,
    suffix: &str,
    layer: LegacyLayer,
) -> Result<Digest, RegistryError> {
    let tag = format!("{}.{suffix}", subject.fallback_tag());
    let mut descriptor = Descriptor::of(layer.media_type, &layer.bytes);
    descriptor.annotations = layer.annotations.clone();
    repo.put_blob(&layer.bytes).await?;
    for attempt in 0..MAX_APPEND_ATTEMPTS {
        let existing = repo.get_manifest_by_tag(&tag).await?;
        let (mut layers, precondition) = match &existing {
            Some(fetched) => match AnyManifest::parse(&fetched.media_type, &fetched.bytes) {
                Ok(AnyManifest::Image(m)) => (
                    m.layers,
                    fetched
                        .etag
                        .clone()
                        .map(Precondition::Matches)
                        .unwrap_or(Precondition::None),
                ),
                _ => {
                    return Err(RegistryError::Malformed {
                        what: format!("legacy tag {tag}"),
                        reason: "not an image manifest; refusing to overwrite it".into(),
                    });
                }
            },
            None => (Vec::new(), Precondition::Absent),
        };
        if let Some(fetched) = &existing
            && layers.contains(&descriptor)
        {
            return Ok(fetched.digest.clone());
        }
        if attempt > 0 {
            // Our earlier write was overwritten by a concurrent writer: wait a little.
            tokio::time::sleep(Duration::from_millis(10 + 7 * u64::from(attempt))).await;
        }
        layers.push(descriptor.clone());
        let bytes = put_legacy_config(repo, &tag, layers).await?;
        match repo
            .put_manifest(
                TagOrDigest::Tag(&tag),
                oci::OCI_MANIFEST,
                &bytes,
                precondition,
            )
            .await
        {
            Ok(_) | Err(RegistryError::Status { status: 412, .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Err(RegistryError::IndexUpdate {
        tag,
        attempts: MAX_APPEND_ATTEMPTS,
        reason: "concurrent writers kept replacing the manifest".into(),
    })
}

/// Stores the config of a legacy manifest over `layers` and returns the manifest's bytes.
async fn put_legacy_config(
    repo: &Repository,
    tag: &str,
    layers: Vec<Descriptor>,
) -> Result<Vec<u8>, RegistryError> {
    let config = legacy_config(&layers);
    repo.put_blob(&config).await?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(oci::OCI_MANIFEST.to_string()),
        artifact_type: None,
        config: Descriptor::of("application/vnd.oci.image.config.v1+json", &config),
        layers,
        subject: None,
        annotations: BTreeMap::new(),
    };
    serde_json::to_vec(&manifest).map_err(|e| RegistryError::Malformed {
        what: format!("legacy tag {tag}"),
        reason: e.to_string(),
    })
}

/// What [`merge_legacy`] did to a legacy tag.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LegacyMerge {
    /// The tag held every layer of the source already: nothing written.
    Present,
    /// The tag was missing, or held nothing but layers of the source: the source's manifest
    /// was written as it is.
    Copied,
    /// The tag held layers the source lacks: a manifest with the source's layers, then those
    /// `kept` layers, was written.
    Merged {
        /// The destination's layers kept next to the source's.
        kept: usize,
        /// The manifest written.
        digest: Digest,
    },
}

/// Writes the legacy tag `tag` (`sha256-<hex>.sig`, `.att` or `.sbom`) of a copy into `repo`
/// from the source's manifest (`media_type`, `bytes`, whose digest is `digest`), keeping what
/// the destination's tag holds: another signer's signature there is as much evidence as the
/// source's. Layers are united the way [`append_legacy`] appends: the source's first, in
/// order, then the destination's that are not among them; a layer is the same only when its
/// whole descriptor is (two keys signing the same image write the same payload, told apart by
/// the signature annotation). The source's layer blobs must be in `repo` already; the
/// destination's are there. Re-reads until the tag holds every layer of the source, as
/// `append_legacy` does against concurrent writers.
pub async fn merge_legacy(
    repo: &Repository,
    tag: &str,
    media_type: &str,
    bytes: &[u8],
    digest: &Digest,
) -> Result<LegacyMerge, RegistryError> {
    let source = match AnyManifest::parse(media_type, bytes) {
        Ok(AnyManifest::Image(m)) => Some(m.layers),
        _ => None,
    };
    let mut written = None;
    for attempt in 0..MAX_APPEND_ATTEMPTS {
        let existing = repo.get_manifest_by_tag(tag).await?;
        let (precondition, outcome, merged) = match existing {
            None => (Precondition::Absent, LegacyMerge::Copied, None),
            Some(fetched) if &fetched.digest == digest => {
                return Ok(written.unwrap_or(LegacyMerge::Present));
            }
            Some(fetched) => {
                let there = match AnyManifest::parse(&fetched.media_type, &fetched.bytes) {
                    Ok(AnyManifest::Image(m)) => Some(m.layers),
                    _ => None,
                };
                let (Some(source), Some(there)) = (&source, there) else {
                    return Err(RegistryError::Malformed {
                        what: format!("legacy tag {tag} in {}", repo.describe()),
                        reason: format!(
                            "it holds {} and the source {digest}, not both image manifests; \
                             refusing to replace it",
                            fetched.digest
                        ),
                    });
                };
                if source.iter().all(|l| there.contains(l)) {
                    return Ok(written.unwrap_or(LegacyMerge::Present));
                }
                let precondition = fetched
                    .etag
                    .map(Precondition::Matches)
                    .unwrap_or(Precondition::None);
                let mut kept: Vec<Descriptor> = Vec::new();
                for layer in there {
                    if !source.contains(&layer) && !kept.contains(&layer) {
                        kept.push(layer);
                    }
                }
                if kept.is_empty() {
                    // Nothing of the destination's would be lost: the source's bytes as they
                    // are, so that the digest is the source's.
                    (precondition, LegacyMerge::Copied, None)
                } else {
                    let count = kept.len();
                    let mut layers = source.clone();
                    layers.extend(kept);
                    let merged = put_legacy_config(repo, tag, layers).await?;
                    let outcome = LegacyMerge::Merged {
                        kept: count,
                        digest: Digest::sha256_of(&merged),
                    };
                    (precondition, outcome, Some(merged))
                }
            }
        };
        if attempt > 0 {
            // A concurrent writer replaced the tag after our write: wait a little.
            tokio::time::sleep(Duration::from_millis(10 + 7 * u64::from(attempt))).await;
        }
        let result = match &merged {
            Some(merged) => {
                repo.put_manifest(
                    TagOrDigest::Tag(tag),
                    oci::OCI_MANIFEST,
                    merged,
                    precondition,
                )
                .await
            }
            None => {
                repo.put_manifest(TagOrDigest::Tag(tag), media_type, bytes, precondition)
                    .await
            }
        };
        match result {
            Ok(_) => written = Some(outcome),
            Err(RegistryError::Status { status: 412, .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Err(RegistryError::IndexUpdate {
        tag: tag.to_string(),
        attempts: MAX_APPEND_ATTEMPTS,
        reason: "concurrent writers kept replacing the manifest".into(),
    })
}

/// The image config cosign writes for `.sig`/`.att` manifests: layer digests as diff ids.
fn legacy_config(layers: &[Descriptor]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| l.digest.to_string()).collect();
    serde_json::json!({
        "architecture": "",
        "os": "",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    })
    .to_string()
    .into_bytes()
}

/// An RFC 3161 timestamp authority to stamp bundles with (`--timestamp-server-url`): its
/// token over the bundle's signature goes into
/// `verificationMaterial.timestampVerificationData`, where a policy's `timestampAuthorities`
/// make it a trusted signing time.
#[derive(Clone, Copy)]
pub struct Stamp<'a> {
    /// The HTTP client (same TLS trust as the registries).
    pub client: &'a crate::Client,
    /// The authority's RFC 3161 endpoint.
    pub url: &'a reqwest::Url,
}

impl Stamp<'_> {
    /// Asks the authority for a timestamp over `bundle`'s signature and attaches it.
    async fn stamp(&self, bundle: &mut Bundle) -> Result<(), RegistryError> {
        let signature = bundle
            .timestamped_signature()
            .map_err(|e| RegistryError::Usage(format!("cannot timestamp the bundle: {e}")))?;
        let query = signet_core::timestamp::request(&signature)
            .map_err(|e| RegistryError::Usage(format!("timestamp request: {e}")))?;
        let reply = self.client.post_timestamp_query(self.url, query).await?;
        signet_core::timestamp::check_granted(&reply).map_err(|e| {
            RegistryError::Usage(format!("the timestamp authority {} refused: {e}", self.url))
        })?;
        bundle
            .add_rfc3161_timestamp(&reply)
            .map_err(|e| RegistryError::Usage(format!("cannot timestamp the bundle: {e}")))?;
        Ok(())
    }
}

/// How a signature or attestation is stored next to the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageFormat {
    /// cosign v3's layout: a Sigstore bundle pushed as an OCI 1.1 referrer.
    #[default]
    Bundle,
    /// cosign's legacy tags: a layer appended to `sha256-<hex>.sig` or `.att`.
    Legacy,
}

/// Signs the image `pinned` (described by `subject`, see [`resolve_subject`]) in `repo` with
/// `signer` (`signet sign`): cosign's plain-signature statement (predicate type
/// `https://sigstore.dev/cosign/sign/v1`, the annotations in the predicate) in a bundle, or a
/// cosign simple-signing payload in the legacy `.sig` tag, with the annotations in its
/// `optional` field. Either way the signing time goes into what is signed
/// ([`signed_time::SIGNED_AT_ANNOTATION`]). Returns the digest of the manifest pushed.
pub async fn sign(
    repo: &Repository,
    pinned: &PinnedRef,
    subject: &Descriptor,
    signer: &dyn Signer,
    format: StorageFormat,
    annotations: BTreeMap<String, String>,
    stamp: Option<&Stamp<'_>>,
) -> Result<Digest, RegistryError> {
    match format {
        StorageFormat::Bundle => {
            let predicate = if annotations.is_empty() {
                serde_json::json!({})
            } else {
                serde_json::json!({ "annotations": annotations })
            };
            let mut statement = Statement::new(
                &pinned.name(),
                pinned.digest(),
                intoto::COSIGN_SIGN_PREDICATE,
                predicate,
            );
            statement.set_signed_at(SystemTime::now());
            push_statement(repo, subject, &statement, signer, format, stamp).await
        }
        StorageFormat::Legacy => {
            no_stamp(stamp)?;
            let mut annotations = annotations;
            annotations.insert(
                signed_time::SIGNED_AT_ANNOTATION.to_string(),
                signed_time::format(SystemTime::now()),
            );
            let payload = SimpleSigning::cosign(&pinned.name(), pinned.digest(), annotations)
                .to_cosign_bytes();
            push_simple_signing(repo, pinned.digest(), payload, signer).await
        }
    }
}

/// Attests the image `pinned` (described by `subject`) in `repo` with `signer`
/// (`signet attest`): an in-toto statement about its digest with `predicate_type` and
/// `predicate`, the signing time on its subject, as a bundle referrer or in the legacy `.att` tag. Returns the digest of the
/// manifest pushed.
#[allow(
    clippy::too_many_arguments,
    reason = "where, what, who signs, how it is stored and stamped: each one a caller's choice"
)]
pub async fn attest(
    repo: &Repository,
    pinned: &PinnedRef,
    subject: &Descriptor,
    signer: &dyn Signer,
    format: StorageFormat,
    predicate_type: &str,
    predicate: serde_json::Value,
    stamp: Option<&Stamp<'_>>,
) -> Result<Digest, RegistryError> {
    let mut statement = Statement::new(&pinned.name(), pinned.digest(), predicate_type, predicate);
    statement.set_signed_at(SystemTime::now());
    push_statement(repo, subject, &statement, signer, format, stamp).await
}

fn no_stamp(stamp: Option<&Stamp<'_>>) -> Result<(), RegistryError> {
    match stamp {
        Some(_) => Err(RegistryError::Usage(
            "RFC 3161 timestamps are stored in bundles; use --format bundle".into(),
        )),
        None => Ok(()),
    }
}

/// Signs `statement` with `signer` (DSSE) and stores it next to `subject`: a bundle referrer,
/// or a layer of the legacy `.att` tag with the predicate type annotation cosign writes. The
/// statement is taken as given (tests use this to store statements about other digests).
pub async fn push_statement(
    repo: &Repository,
    subject: &Descriptor,
    statement: &Statement,
    signer: &dyn Signer,
    format: StorageFormat,
    stamp: Option<&Stamp<'_>>,
) -> Result<Digest, RegistryError> {
    match format {
        StorageFormat::Bundle => {
            let mut bundle = Bundle::sign_statement(statement, signer)?;
            if let Some(stamp) = stamp {
                stamp.stamp(&mut bundle).await?;
            }
            Ok(push_bundle(repo, subject, &bundle).await?.digest)
        }
        StorageFormat::Legacy => {
            no_stamp(stamp)?;
            let envelope = Envelope::sign(intoto::PAYLOAD_TYPE, &statement.to_json(), signer)?;
            let mut annotations = BTreeMap::from([(
                oci::LEGACY_PREDICATE_TYPE_ANNOTATION.to_string(),
                statement.predicate_type.clone(),
            )]);
            annotations.extend(
                signet_core::certified::legacy_annotations(signer)
                    .map_err(|e| RegistryError::Usage(format!("the signing certificate: {e}")))?,
            );
            let layer = LegacyLayer {
                media_type: oci::DSSE_LAYER,
                bytes: envelope.to_json(),
                annotations,
            };
            append_legacy(repo, &subject.digest, "att", layer).await
        }
    }
}

/// Signs the simple-signing `payload` bytes with `signer` and appends them to the legacy `.sig`
/// tag of `subject`, the signature (base64) in cosign's annotation. The payload is taken as
/// given (tests use this to store payloads about other digests).
pub async fn push_simple_signing(
    repo: &Repository,
    subject: &Digest,
    payload: Vec<u8>,
    signer: &dyn Signer,
) -> Result<Digest, RegistryError> {
    let signature = base64::engine::general_purpose::STANDARD.encode(signer.sign(&payload)?);
    let mut annotations =
        BTreeMap::from([(oci::COSIGN_SIGNATURE_ANNOTATION.to_string(), signature)]);
    // Signed with a certificate: cosign's certificate and chain annotations.
    annotations.extend(
        signet_core::certified::legacy_annotations(signer)
            .map_err(|e| RegistryError::Usage(format!("the signing certificate: {e}")))?,
    );
    let layer = LegacyLayer {
        media_type: oci::SIMPLE_SIGNING_LAYER,
        bytes: payload,
        annotations,
    };
    append_legacy(repo, subject, "sig", layer).await
}

/// `t` as RFC 3339 UTC with seconds (`2026-11-26T18:30:00Z`).
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_answers() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_711_800)),
            "2026-11-26T16:50:00Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }
}
