//! Gathering evidence about an image digest from its store (registry or OCI layout).
//!
//! Evidence is every signature or attestation signet reads: cosign v3 bundle referrers, the
//! legacy `sha256-<hex>.sig` simple-signing layers and `sha256-<hex>.att` DSSE layers. All
//! bytes come through the store, which has checked them against their digests; nothing here is
//! trusted: [`crate::check`] turns evidence into proofs, or into typed rejections.
//!
//! Fetch plan for a digest-pinned image, which bounds the sequential round trips to three
//! whatever the number of attestations: (1) the referrers listing and the two legacy tags, at
//! once; (2) the referrer manifests and the legacy layers, in parallel; (3) the bundle blobs,
//! in parallel. The referrers and the legacy tags are separate pipelines, each going on as soon
//! as its own answers are in. Referrers whose artifact type or annotations rule them out are
//! never fetched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::stream::{self, StreamExt as _};
use signet_core::binauthz;
use signet_core::bundle;
use signet_core::digest::Digest;
use signet_core::evidence::{Format, Location, Rejection};
use signet_core::intoto;
use signet_core::oci::{self, AnyManifest, Descriptor};
use signet_core::reference::PinnedRef;
use signet_registry::{RegistryError, Repository};

/// The signed content of one piece of evidence, as fetched (unverified).
#[derive(Debug, Clone)]
pub enum Payload {
    /// Bundle JSON.
    Bundle(Blob),
    /// A simple-signing payload and its base64 signature from the layer annotation.
    SimpleSigning {
        /// The payload bytes as stored.
        payload: Blob,
        /// The `dev.cosignproject.cosign/signature` annotation.
        signature: String,
        /// cosign's certificate, chain, Rekor bundle and RFC 3161 timestamp annotations, when
        /// the layer was signed with a certificate (keyless or a CA's).
        certificate: Option<Box<signet_core::keyless::LegacyCertificate>>,
    },
    /// A DSSE envelope (legacy attestation layer).
    Dsse {
        /// The envelope JSON as stored.
        envelope: Blob,
        /// cosign's certificate annotations, as for [`Payload::SimpleSigning`].
        certificate: Option<Box<signet_core::keyless::LegacyCertificate>>,
    },
    /// A Binary Authorization occurrence (its stored JSON).
    BinAuthz(Blob),
    /// It could not be fetched or read; reported as this rejection.
    Unreadable(Rejection),
}

/// One piece of evidence about the image digest, not yet verified.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// Where it is: the referrer manifest digest, or the legacy tag and layer (and so the
    /// format).
    pub location: Location,
    /// The predicate type claimed by annotations (unverified; for filtering and display).
    pub claimed_predicate_type: Option<String>,
    /// The content.
    pub payload: Payload,
}

/// Blob bytes as fetched, shared: evidence that names the same blob (60 referrers pointing at
/// one 16 MiB layer) holds it once.
pub type Blob = Arc<[u8]>;

/// The default for [`Filter::max_bytes`]: 16 MiB, one attestation blob of the largest size the
/// store reads. Measured with `scripts/bench-verify.sh`: 60 referrers naming one 16 MiB blob
/// (issue 12) stay well under 64 MiB of peak memory for the whole `signet verify` process.
pub const DEFAULT_MAX_EVIDENCE_BYTES: u64 = 16 << 20;

/// What to fetch.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Only evidence that may carry one of these predicate types (signatures count as
    /// `https://sigstore.dev/cosign/sign/v1`). Empty: everything.
    pub predicate_types: Vec<String>,
    /// Most bytes of evidence blobs fetched for one verification, each distinct blob counted
    /// once at its declared size. Evidence past it is not fetched and is rejected ("evidence
    /// exceeds N bytes"), so memory stays bounded whatever a registry lists.
    pub max_bytes: u64,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            predicate_types: Vec::new(),
            max_bytes: DEFAULT_MAX_EVIDENCE_BYTES,
        }
    }
}

impl Filter {
    fn admits(&self, claimed: Option<&str>) -> bool {
        match claimed {
            _ if self.predicate_types.is_empty() => true,
            // No claim: we cannot rule it out without fetching.
            None => true,
            Some(t) => self.predicate_types.iter().any(|p| p == t),
        }
    }
}

/// Gathers the evidence about `image` from `repo`: the referrers and the legacy tags are two
/// independent pipelines, so that a slow answer on one does not hold up the other.
pub async fn gather(
    repo: &Repository,
    image: &PinnedRef,
    filter: &Filter,
) -> Result<Vec<Evidence>, RegistryError> {
    let blobs = Blobs::new(repo, filter.max_bytes);
    let (bundles, (found, legacy)) = futures_util::future::try_join(
        referrer_evidence(repo, image.digest(), filter, &blobs),
        legacy_evidence(repo, image.digest(), filter, &blobs),
    )
    .await?;
    let mut all = bundles;
    all.extend(found);
    all.extend(legacy);
    Ok(all)
}

/// The bundle referrers: the listing (round trip 1), the manifests of those the filter admits
/// (2), and their bundle blobs (3), each blob fetched as soon as its manifest is in.
async fn referrer_evidence(
    repo: &Repository,
    digest: &Digest,
    filter: &Filter,
    blobs: &Blobs<'_>,
) -> Result<Vec<Evidence>, RegistryError> {
    let referrers = repo.referrers(digest, None).await?;
    let wanted: Vec<(Descriptor, Format)> = referrers
        .descriptors
        .into_iter()
        .filter_map(|d| {
            let format = referrer_format(d.artifact_type.as_deref())?;
            filter
                .admits(claimed_referrer_type(format, &d))
                .then_some((d, format))
        })
        .collect();
    let evidence = stream::iter(wanted)
        .map(|(descriptor, format)| async move {
            let fetched = repo.get_manifest(&descriptor.digest).await;
            let claimed_predicate_type =
                claimed_referrer_type(format, &descriptor).map(str::to_string);
            let payload = match fetched {
                Err(e) => Payload::Unreadable(rejection(e)),
                Ok(fetched) => match referrer_layer(format, &fetched.media_type, &fetched.bytes) {
                    Err(reason) => Payload::Unreadable(reason),
                    Ok(layer) => match blobs.get(&layer).await {
                        Ok(bytes) if format == Format::BinAuthz => Payload::BinAuthz(bytes),
                        Ok(bytes) => Payload::Bundle(bytes),
                        Err(reason) => Payload::Unreadable(reason),
                    },
                },
            };
            let location = if format == Format::BinAuthz {
                Location::Occurrence(descriptor.digest)
            } else {
                Location::Referrer(descriptor.digest)
            };
            Evidence {
                location,
                claimed_predicate_type,
                payload,
            }
        })
        .buffered(repo.concurrency())
        .collect()
        .await;
    Ok(evidence)
}

/// cosign's legacy tags, `sha256-<hex>.sig` and `.att` (round trip 1), and their layers (2).
/// Returns the tags that were unreadable as a whole, and the layers' evidence.
///
/// A legacy tag that is not a readable image manifest is one rejected piece of evidence, not a
/// reason to stop: the rest (a valid bundle, say) is still evaluated (issue 12, finding 6).
/// Only failures to reach the store stop the gathering.
async fn legacy_evidence(
    repo: &Repository,
    digest: &Digest,
    filter: &Filter,
    blobs: &Blobs<'_>,
) -> Result<(Vec<Evidence>, Vec<Evidence>), RegistryError> {
    let sig_tag = format!("{}.sig", digest.fallback_tag());
    let att_tag = format!("{}.att", digest.fallback_tag());
    let (sig, att) = futures_util::future::join(
        repo.get_manifest_by_tag(&sig_tag),
        repo.get_manifest_by_tag(&att_tag),
    )
    .await;
    let mut found: Vec<Evidence> = Vec::new();
    let mut legacy_layers: Vec<(Location, Descriptor)> = Vec::new();
    for (format, tag, fetched) in [
        (Format::LegacySignature, &sig_tag, sig),
        (Format::LegacyAttestation, &att_tag, att),
    ] {
        let tag_location = || Location::LegacyTag {
            format,
            tag: tag.clone(),
        };
        let fetched = match fetched {
            Ok(Some(fetched)) => fetched,
            Ok(None) => continue,
            Err(e) if is_content_error(&e) => {
                found.push(Evidence::unreadable(tag_location(), format, rejection(e)));
                continue;
            }
            Err(e) => return Err(e),
        };
        match AnyManifest::parse(&fetched.media_type, &fetched.bytes) {
            Ok(AnyManifest::Image(m)) => {
                for (index, layer) in m.layers.into_iter().enumerate() {
                    let location = Location::LegacyLayer {
                        format,
                        tag: tag.clone(),
                        index,
                    };
                    legacy_layers.push((location, layer));
                }
            }
            Ok(AnyManifest::Index(_)) => found.push(Evidence::unreadable(
                tag_location(),
                format,
                Rejection::malformed(format!(
                    "legacy signature manifest {tag} is an index, not an image manifest"
                )),
            )),
            Err(e) => found.push(Evidence::unreadable(
                tag_location(),
                format,
                Rejection::malformed(format!("legacy signature manifest {tag}: {e}")),
            )),
        }
    }
    let legacy = stream::iter(legacy_layers)
        .filter(|(location, layer)| {
            std::future::ready(filter.admits(claimed_legacy_type(location.format(), Some(layer))))
        })
        .map(|(location, layer)| async move {
            let format = location.format();
            let payload = match blobs.get(&layer).await {
                Err(reason) => Payload::Unreadable(reason),
                Ok(bytes) => match format {
                    Format::LegacySignature => {
                        match layer.annotations.get(oci::COSIGN_SIGNATURE_ANNOTATION) {
                            Some(signature) => Payload::SimpleSigning {
                                payload: bytes,
                                signature: signature.clone(),
                                certificate: legacy_certificate(&layer.annotations),
                            },
                            None => Payload::Unreadable(Rejection::malformed(format!(
                                "no {} annotation",
                                oci::COSIGN_SIGNATURE_ANNOTATION
                            ))),
                        }
                    }
                    _ => Payload::Dsse {
                        envelope: bytes,
                        certificate: legacy_certificate(&layer.annotations),
                    },
                },
            };
            Evidence {
                claimed_predicate_type: claimed_legacy_type(format, Some(&layer))
                    .map(str::to_string),
                location,
                payload,
            }
        })
        .buffered(repo.concurrency())
        .collect()
        .await;
    Ok((found, legacy))
}

/// The predicate type a legacy layer claims: signatures are cosign's plain signature, `.att`
/// layers say it in an annotation (unverified; for filtering and display).
fn claimed_legacy_type(format: Format, layer: Option<&Descriptor>) -> Option<&str> {
    match format {
        Format::LegacySignature => Some(intoto::COSIGN_SIGN_PREDICATE),
        _ => layer?
            .annotations
            .get(oci::LEGACY_PREDICATE_TYPE_ANNOTATION)
            .map(String::as_str),
    }
}

/// Whether a store error is about the content (which makes that piece of evidence unreadable)
/// rather than about reaching the store (which stops the verification: fail closed, and an
/// error rather than a denial, so `--fail-open` and the exit code say what happened).
fn is_content_error(e: &RegistryError) -> bool {
    matches!(
        e,
        RegistryError::Malformed { .. }
            | RegistryError::DigestMismatch { .. }
            | RegistryError::TooLarge { .. }
            | RegistryError::TooMany { .. }
    )
}

/// A store error about one piece of evidence, as the reason it is rejected.
fn rejection(e: RegistryError) -> Rejection {
    let reason = e.to_string();
    match e {
        RegistryError::TooLarge { .. } | RegistryError::TooMany { .. } => {
            Rejection::TooLarge { reason }
        }
        RegistryError::Malformed { .. } | RegistryError::DigestMismatch { .. } => {
            Rejection::Malformed { reason }
        }
        _ => Rejection::Unreadable { reason },
    }
}

impl Evidence {
    fn unreadable(location: Location, format: Format, reason: Rejection) -> Evidence {
        Evidence {
            location,
            claimed_predicate_type: claimed_legacy_type(format, None).map(str::to_string),
            payload: Payload::Unreadable(reason),
        }
    }
}

/// The format of a referrer signet reads, by artifact type; `None` for others.
fn referrer_format(artifact_type: Option<&str>) -> Option<Format> {
    if is_bundle_type(artifact_type) {
        Some(Format::Bundle)
    } else if artifact_type == Some(binauthz::ARTIFACT_TYPE) {
        Some(Format::BinAuthz)
    } else {
        None
    }
}

/// The predicate type a referrer claims (unverified): a bundle says it in an annotation; a
/// Binary Authorization attestation is a signature.
fn claimed_referrer_type(format: Format, descriptor: &Descriptor) -> Option<&str> {
    match format {
        Format::BinAuthz => Some(intoto::COSIGN_SIGN_PREDICATE),
        _ => descriptor
            .annotations
            .get(oci::BUNDLE_PREDICATE_TYPE_ANNOTATION)
            .map(String::as_str),
    }
}

fn is_bundle_type(artifact_type: Option<&str>) -> bool {
    artifact_type.is_some_and(|t| {
        t == bundle::BUNDLE_V03_MEDIA_TYPE || bundle::BUNDLE_OLDER_MEDIA_TYPES.contains(&t)
    })
}

/// The layer holding the evidence of a referrer manifest: the bundle, or the occurrence.
fn referrer_layer(format: Format, media_type: &str, bytes: &[u8]) -> Result<Descriptor, Rejection> {
    match AnyManifest::parse(media_type, bytes) {
        Ok(AnyManifest::Image(m)) if format == Format::BinAuthz => m
            .layers
            .iter()
            .find(|l| l.media_type == binauthz::ARTIFACT_TYPE)
            .cloned()
            .ok_or_else(|| {
                Rejection::malformed(format!(
                    "Binary Authorization referrer has no {} layer",
                    binauthz::ARTIFACT_TYPE
                ))
            }),
        Ok(AnyManifest::Image(m)) => m
            .layers
            .iter()
            .find(|l| is_bundle_type(Some(&l.media_type)))
            .or(m.layers.first())
            .cloned()
            .ok_or_else(|| Rejection::malformed("bundle referrer has no layer")),
        Ok(AnyManifest::Index(_)) => {
            Err(Rejection::malformed("referrer is an index, not a manifest"))
        }
        Err(e) => Err(Rejection::malformed(e.to_string())),
    }
}

/// The blobs of one verification: each distinct blob fetched once, at most at its declared
/// size, and all of them together within the byte budget.
struct Blobs<'r> {
    repo: &'r Repository,
    limit: u64,
    state: Mutex<BlobState>,
}

#[derive(Default)]
struct BlobState {
    /// Bytes reserved so far (declared sizes of the distinct blobs asked for).
    reserved: u64,
    /// One cell per digest: the first asker fetches, the others wait for the same result.
    cells: HashMap<Digest, Arc<tokio::sync::OnceCell<Result<Blob, Rejection>>>>,
}

impl<'r> Blobs<'r> {
    fn new(repo: &'r Repository, limit: u64) -> Self {
        Blobs {
            repo,
            limit,
            state: Mutex::new(BlobState::default()),
        }
    }

    async fn get(&self, descriptor: &Descriptor) -> Result<Blob, Rejection> {
        let cell = {
            // A poisoned lock means another fetch panicked; the state is still consistent
            // (plain counters and a map), so go on with it.
            let mut state = self
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(cell) = state.cells.get(&descriptor.digest) {
                cell.clone()
            } else {
                let cell = Arc::new(tokio::sync::OnceCell::new());
                let within = state
                    .reserved
                    .checked_add(descriptor.size)
                    .is_some_and(|total| total <= self.limit);
                if within {
                    state.reserved += descriptor.size;
                } else {
                    // Over budget: decided now, never fetched.
                    let _ = cell.set(Err(Rejection::OverBudget {
                        limit: self.limit,
                        what: format!("blob {} ({} bytes)", descriptor.digest, descriptor.size),
                    }));
                }
                state.cells.insert(descriptor.digest.clone(), cell.clone());
                cell
            }
        };
        cell.get_or_init(|| async {
            self.repo
                .get_blob_sized(descriptor)
                .await
                .map(Blob::from)
                .map_err(rejection)
        })
        .await
        .clone()
    }
}

/// cosign's certificate annotations on a legacy layer (`.sig` or `.att`), when it has a
/// certificate.
fn legacy_certificate(
    annotations: &std::collections::BTreeMap<String, String>,
) -> Option<Box<signet_core::keyless::LegacyCertificate>> {
    use signet_core::certified::{COSIGN_CERTIFICATE_ANNOTATION, COSIGN_CHAIN_ANNOTATION};
    let certificate = annotations.get(COSIGN_CERTIFICATE_ANNOTATION)?;
    Some(Box::new(signet_core::keyless::LegacyCertificate {
        certificate: certificate.clone(),
        chain: annotations.get(COSIGN_CHAIN_ANNOTATION).cloned(),
        rekor_bundle: annotations
            .get(signet_core::tlog::COSIGN_BUNDLE_ANNOTATION)
            .cloned(),
        rfc3161_timestamp: annotations
            .get(signet_core::timestamp::COSIGN_RFC3161_ANNOTATION)
            .cloned(),
    }))
}
