//! Gathering evidence about an image digest from its registry, and checking it against keys.
//!
//! Evidence is every signature or attestation signet reads: cosign v3 bundle referrers, the
//! legacy `sha256-<hex>.sig` simple-signing layers and `sha256-<hex>.att` DSSE layers. All
//! bytes come through the store, which has checked them against their digests; nothing here is
//! trusted until a signature verifies over the stored bytes and binds the image digest.
//!
//! Fetch plan for a digest-pinned image, which bounds the sequential round trips to three
//! whatever the number of attestations: (1) the referrers listing and the two legacy tags, at
//! once; (2) the referrer manifests and the legacy layers, in parallel; (3) the bundle blobs,
//! in parallel. Referrers whose artifact type or annotations rule them out are never fetched.

use std::collections::BTreeMap;

use base64::Engine as _;
use futures_util::stream::{self, StreamExt as _};
use signet_core::bundle::{self, Bundle, BundleError};
use signet_core::digest::Digest;
use signet_core::dsse::{DsseError, Envelope};
use signet_core::intoto::{self, Statement};
use signet_core::keys::{KeyId, PublicKey};
use signet_core::oci::{self, AnyManifest, Descriptor};
use signet_core::reference::PinnedRef;
use signet_core::simplesigning::SimpleSigning;
use signet_registry::{RegistryError, Repository};

pub use signet_policy::decision::Rejected;

/// Which of signet's readable formats a piece of evidence came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// A Sigstore bundle referrer (cosign v3).
    Bundle,
    /// A layer of the legacy `.sig` tag (simple signing).
    LegacySignature,
    /// A layer of the legacy `.att` tag (DSSE).
    LegacyAttestation,
}

/// The signed content of one piece of evidence, as fetched (unverified).
#[derive(Debug, Clone)]
pub enum Payload {
    /// Bundle JSON.
    Bundle(Vec<u8>),
    /// A simple-signing payload and its base64 signature from the layer annotation.
    SimpleSigning {
        /// The payload bytes as stored.
        payload: Vec<u8>,
        /// The `dev.cosignproject.cosign/signature` annotation.
        signature: String,
    },
    /// A DSSE envelope (legacy attestation layer).
    Dsse(Vec<u8>),
    /// It could not be fetched or read; the reason is reported as a rejection.
    Unreadable(String),
}

/// One piece of evidence about the image digest, not yet verified.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// The format.
    pub format: Format,
    /// Where it is: the referrer manifest digest, or the legacy tag and layer.
    pub location: String,
    /// The predicate type claimed by annotations (unverified; for filtering and display).
    pub claimed_predicate_type: Option<String>,
    /// The content.
    pub payload: Payload,
}

/// What to fetch.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only evidence that may carry one of these predicate types (signatures count as
    /// `https://sigstore.dev/cosign/sign/v1`). Empty: everything.
    pub predicate_types: Vec<String>,
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

/// Gathers the evidence about `image` from `repo`.
pub async fn gather(
    repo: &Repository,
    image: &PinnedRef,
    filter: &Filter,
) -> Result<Vec<Evidence>, RegistryError> {
    let digest = image.digest();
    let sig_tag = format!("{}.sig", digest.fallback_tag());
    let att_tag = format!("{}.att", digest.fallback_tag());
    let (referrers, sig, att) = futures_util::future::join3(
        repo.referrers(digest, None),
        repo.get_manifest_by_tag(&sig_tag),
        repo.get_manifest_by_tag(&att_tag),
    )
    .await;
    let referrers = referrers?;
    let concurrency = repo.concurrency();

    // Round trip 2: referrer manifests, and legacy layers.
    let bundle_referrers: Vec<Descriptor> = referrers
        .descriptors
        .into_iter()
        .filter(|d| is_bundle_type(d.artifact_type.as_deref()))
        .filter(|d| {
            filter.admits(
                d.annotations
                    .get(oci::BUNDLE_PREDICATE_TYPE_ANNOTATION)
                    .map(String::as_str),
            )
        })
        .collect();
    let manifests = stream::iter(bundle_referrers)
        .map(|d| async move {
            let fetched = repo.get_manifest(&d.digest).await;
            (d, fetched)
        })
        .buffered(concurrency);

    let mut legacy_layers: Vec<(Format, String, Descriptor)> = Vec::new();
    for (format, tag, fetched) in [
        (Format::LegacySignature, &sig_tag, sig),
        (Format::LegacyAttestation, &att_tag, att),
    ] {
        let Some(fetched) = fetched? else { continue };
        match AnyManifest::parse(&fetched.media_type, &fetched.bytes) {
            Ok(AnyManifest::Image(m)) => {
                for (i, layer) in m.layers.into_iter().enumerate() {
                    legacy_layers.push((format, format!("{tag} layer {i}"), layer));
                }
            }
            _ => {
                return Err(RegistryError::Malformed {
                    what: format!("legacy signature manifest {tag}"),
                    reason: "not an image manifest".into(),
                });
            }
        }
    }
    let legacy = stream::iter(legacy_layers)
        .filter(|(format, _, layer)| {
            let claimed = match format {
                Format::LegacySignature => Some(intoto::COSIGN_SIGN_PREDICATE),
                _ => layer
                    .annotations
                    .get(oci::LEGACY_PREDICATE_TYPE_ANNOTATION)
                    .map(String::as_str),
            };
            std::future::ready(filter.admits(claimed))
        })
        .map(|(format, location, layer)| async move {
            let payload = match repo.get_blob(&layer.digest).await {
                Err(e) => Payload::Unreadable(e.to_string()),
                Ok(bytes) => match format {
                    Format::LegacySignature => {
                        match layer.annotations.get(oci::COSIGN_SIGNATURE_ANNOTATION) {
                            Some(signature) => Payload::SimpleSigning {
                                payload: bytes,
                                signature: signature.clone(),
                            },
                            None => Payload::Unreadable(format!(
                                "no {} annotation",
                                oci::COSIGN_SIGNATURE_ANNOTATION
                            )),
                        }
                    }
                    _ => Payload::Dsse(bytes),
                },
            };
            let claimed_predicate_type = match format {
                Format::LegacySignature => Some(intoto::COSIGN_SIGN_PREDICATE.to_string()),
                _ => layer
                    .annotations
                    .get(oci::LEGACY_PREDICATE_TYPE_ANNOTATION)
                    .cloned(),
            };
            Evidence {
                format,
                location,
                claimed_predicate_type,
                payload,
            }
        })
        .buffered(concurrency);

    // Round trip 3: bundle blobs, as soon as each manifest is in.
    let bundles = manifests
        .map(|(descriptor, fetched)| async move {
            let location = format!("referrer {}", descriptor.digest);
            let claimed_predicate_type = descriptor
                .annotations
                .get(oci::BUNDLE_PREDICATE_TYPE_ANNOTATION)
                .cloned();
            let payload = match fetched {
                Err(e) => Payload::Unreadable(e.to_string()),
                Ok(fetched) => match bundle_layer(&fetched.media_type, &fetched.bytes) {
                    Err(reason) => Payload::Unreadable(reason),
                    Ok(layer) => match repo.get_blob(&layer).await {
                        Ok(bytes) => Payload::Bundle(bytes),
                        Err(e) => Payload::Unreadable(e.to_string()),
                    },
                },
            };
            Evidence {
                format: Format::Bundle,
                location,
                claimed_predicate_type,
                payload,
            }
        })
        .buffered(concurrency);

    let (mut bundles, legacy): (Vec<Evidence>, Vec<Evidence>) =
        futures_util::future::join(bundles.collect(), legacy.collect()).await;
    bundles.extend(legacy);
    Ok(bundles)
}

fn is_bundle_type(artifact_type: Option<&str>) -> bool {
    artifact_type.is_some_and(|t| {
        t == bundle::BUNDLE_V03_MEDIA_TYPE || bundle::BUNDLE_OLDER_MEDIA_TYPES.contains(&t)
    })
}

/// The digest of the bundle layer of a bundle referrer manifest.
fn bundle_layer(media_type: &str, bytes: &[u8]) -> Result<Digest, String> {
    match AnyManifest::parse(media_type, bytes) {
        Ok(AnyManifest::Image(m)) => m
            .layers
            .iter()
            .find(|l| is_bundle_type(Some(&l.media_type)))
            .or(m.layers.first())
            .map(|l| l.digest.clone())
            .ok_or_else(|| "bundle referrer has no layer".to_string()),
        Ok(AnyManifest::Index(_)) => Err("bundle referrer is an index, not a manifest".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// A piece of evidence whose signature verified with a trusted key and that binds the image.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// Where it is.
    pub location: String,
    /// The format.
    pub format: Format,
    /// The key that verified it.
    pub key_id: KeyId,
    /// The predicate type (`https://sigstore.dev/cosign/sign/v1` for plain signatures).
    pub predicate_type: String,
    /// The verified statement, for attestations (conditions run over it).
    pub statement: Option<Statement>,
    /// Simple-signing annotations (`optional`), for legacy signatures.
    pub annotations: BTreeMap<String, String>,
    /// The `docker-reference` a simple-signing payload signed, for identity checks.
    pub signed_reference: Option<String>,
}

/// The outcome of checking evidence against a set of keys.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// Evidence that verified.
    pub accepted: Vec<Accepted>,
    /// Evidence that did not, with reasons.
    pub rejected: Vec<Rejected>,
}

/// Checks every piece of `evidence` against `keys` for `digest`. Pure: no I/O.
pub fn check(evidence: &[Evidence], keys: &[PublicKey], digest: &Digest) -> Checked {
    let mut out = Checked::default();
    for e in evidence {
        match check_one(e, keys, digest) {
            Ok(accepted) => out.accepted.push(accepted),
            Err(reason) => out.rejected.push(Rejected {
                location: format!("{} ({})", e.location, format_name(e.format)),
                reason,
            }),
        }
    }
    out
}

/// The key id a bundle's public-key hint names, when it is cosign's form (base64 SHA-256).
fn hinted_key(bundle: &Bundle) -> Option<String> {
    let hint = &bundle.verification_material.public_key.as_ref()?.hint;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(hint)
        .ok()?;
    (raw.len() == 32).then(|| {
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    })
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Bundle => "bundle",
        Format::LegacySignature => "legacy .sig",
        Format::LegacyAttestation => "legacy .att",
    }
}

fn check_one(e: &Evidence, keys: &[PublicKey], digest: &Digest) -> Result<Accepted, String> {
    match &e.payload {
        Payload::Unreadable(reason) => Err(reason.clone()),
        Payload::Bundle(bytes) => {
            let bundle = Bundle::parse(bytes).map_err(|e| e.to_string())?;
            let verified = bundle.verify_statement(keys, digest).map_err(|e| {
                // Name the key the bundle says it was signed with, so a person can see whose
                // signature this is (the hint is unauthenticated: for the message only).
                match (&e, hinted_key(&bundle)) {
                    (BundleError::Dsse(DsseError::NotVerified { .. }), Some(seen)) => {
                        format!("{e}; the bundle names key {seen}")
                    }
                    _ => e.to_string(),
                }
            })?;
            let key_id = verified.key_id().clone();
            let statement = verified.into_inner();
            Ok(Accepted {
                location: e.location.clone(),
                format: e.format,
                key_id,
                predicate_type: statement.predicate_type.clone(),
                statement: Some(statement),
                annotations: BTreeMap::new(),
                signed_reference: None,
            })
        }
        Payload::Dsse(bytes) => {
            let envelope = Envelope::from_json(bytes).map_err(|e| e.to_string())?;
            let verified = envelope.verify(keys).map_err(|e| e.to_string())?;
            if verified.value().payload_type != intoto::PAYLOAD_TYPE {
                return Err(format!(
                    "DSSE payload type is {:?}, expected {}",
                    verified.value().payload_type,
                    intoto::PAYLOAD_TYPE
                ));
            }
            let statement = Statement::parse(&verified.value().bytes).map_err(|e| e.to_string())?;
            statement.check_subject(digest).map_err(|e| e.to_string())?;
            Ok(Accepted {
                location: e.location.clone(),
                format: e.format,
                key_id: verified.key_id().clone(),
                predicate_type: statement.predicate_type.clone(),
                statement: Some(statement),
                annotations: BTreeMap::new(),
                signed_reference: None,
            })
        }
        Payload::SimpleSigning { payload, signature } => {
            if keys.is_empty() {
                return Err("no public keys to verify with".into());
            }
            let sig = base64::engine::general_purpose::STANDARD
                .decode(signature.trim())
                .map_err(|_| "signature annotation is not base64".to_string())?;
            let key = keys
                .iter()
                .find(|k| k.verify(payload, &sig).is_ok())
                .ok_or_else(|| {
                    format!(
                        "signature does not verify with key(s) {}",
                        keys.iter()
                            .map(|k| k.id().short())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
            let parsed = SimpleSigning::parse(payload).map_err(|e| e.to_string())?;
            parsed.check_digest(digest).map_err(|e| e.to_string())?;
            Ok(Accepted {
                location: e.location.clone(),
                format: e.format,
                key_id: key.id().clone(),
                predicate_type: intoto::COSIGN_SIGN_PREDICATE.to_string(),
                statement: None,
                annotations: parsed.optional,
                signed_reference: Some(parsed.docker_reference),
            })
        }
    }
}
