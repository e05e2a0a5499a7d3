//! Multi-platform images: evidence on an index covering a platform manifest it lists, and the
//! policy's demand that every platform manifest of an index be attested.
//!
//! An index digest fixes the digests of its manifests, so evidence on the index speaks for each
//! manifest it lists, provided the index can be found and shown to list it. signet finds it
//! from the tag the reference carries (`repo:tag@sha256:<platform>`, what the mutating webhook
//! writes), verifies the index's own evidence like any image's, and accepts only when the
//! index's manifest list names the platform digest. A digest the index does not list is never
//! covered, whatever the tag says.
//!
//! These are follow-ups to a decision already made for the digest itself, so the common path
//! (an image attested on its own digest) costs nothing extra. Requests go through a [`Source`]:
//! the CLI reads the repository directly, the daemon through its caches.

use std::future::Future;
use std::sync::Arc;

use signet_core::digest::Digest;
use signet_core::oci::{AnyManifest, Descriptor};
use signet_core::reference::{ImageRef, PinnedRef};
use signet_policy::Policy;
use signet_policy::decision::{Decision, Enforcement, Outcome};
use signet_policy::evaluate::AdmissionContext;
use signet_policy::model::IndexRequirement;
use signet_registry::FetchedManifest;

use crate::gather::Evidence;
use crate::policy::decide_with_evidence;

/// Where follow-ups read from, in the image's repository.
pub trait Source: Sync {
    /// A failure to reach the store (not a verdict).
    type Error: Send;

    /// The evidence about `pinned`.
    fn evidence(
        &self,
        pinned: &PinnedRef,
    ) -> impl Future<Output = Result<Arc<Vec<Evidence>>, Self::Error>> + Send;

    /// The manifest `image`'s repository has under `tag`, or `None` when there is no such tag.
    fn manifest_by_tag(
        &self,
        image: &ImageRef,
        tag: &str,
    ) -> impl Future<Output = Result<Option<FetchedManifest>, Self::Error>> + Send;

    /// The manifest `digest` in `image`'s repository.
    fn manifest(
        &self,
        image: &ImageRef,
        digest: &Digest,
    ) -> impl Future<Output = Result<FetchedManifest, Self::Error>> + Send;
}

/// Completes `first`, the decision for `pinned` on its own evidence: an index that must have
/// every platform attested is checked platform by platform, and a platform manifest denied for
/// want of evidence is tried through the index its tag names.
///
/// `index`, when given, is the index to try instead of the one the tag names (`verify --index`);
/// it must list the digest all the same.
pub async fn follow_up<S: Source>(
    policy: &Policy,
    image: &ImageRef,
    pinned: &PinnedRef,
    ctx: &AdmissionContext,
    source: &S,
    first: Decision,
    index: Option<&Digest>,
) -> Result<Decision, S::Error> {
    // Only a decision about attestations has anything to follow up: allowlists, exemptions and
    // ALWAYS_* rules need no evidence.
    if first.attestors.is_empty() {
        return Ok(first);
    }
    let multi = &policy.multi_platform;
    if multi.require == IndexRequirement::EveryPlatform && first.outcome == Outcome::Allowed {
        let fetched = source.manifest(image, pinned.digest()).await?;
        if let Ok(AnyManifest::Index(index)) =
            AnyManifest::parse(&fetched.media_type, &fetched.bytes)
        {
            return every_platform(policy, image, pinned, ctx, source, first, &index.manifests)
                .await;
        }
        return Ok(first);
    }
    if first.outcome == Outcome::Allowed || !multi.index_covers_platforms {
        return Ok(first);
    }
    through_index(policy, image, pinned, ctx, source, first, index).await
}

/// A platform manifest denied on its own evidence, tried through the index its tag names.
async fn through_index<S: Source>(
    policy: &Policy,
    image: &ImageRef,
    pinned: &PinnedRef,
    ctx: &AdmissionContext,
    source: &S,
    mut first: Decision,
    explicit: Option<&Digest>,
) -> Result<Decision, S::Error> {
    let digest = pinned.digest();
    let (fetched, tag) = match (explicit, pinned.tag()) {
        (Some(index), _) => (
            source.manifest(image, index).await?,
            "the index given".to_string(),
        ),
        (None, Some(tag)) => {
            let Some(fetched) = source.manifest_by_tag(image, tag).await? else {
                first.reasons.push(format!(
                    "tag {tag} does not exist, so no index can cover {digest}"
                ));
                return Ok(first);
            };
            (fetched, format!("tag {tag}"))
        }
        (None, None) => {
            first.reasons.push(format!(
                "if {digest} is one platform of a multi-platform image, pin it with the tag of \
                 its index ({}:TAG@{digest}) so that the index's attestations can cover it, or \
                 attest every platform manifest (signet sign --recursive)",
                pinned.name()
            ));
            return Ok(first);
        }
    };
    let via = tag.as_str();
    let Ok(AnyManifest::Index(index)) = AnyManifest::parse(&fetched.media_type, &fetched.bytes)
    else {
        // The tag names a single manifest (this one, or another): no index to speak for it.
        return Ok(first);
    };
    if fetched.digest == *digest {
        return Ok(first);
    }
    if !index.manifests.iter().any(|m| m.digest == *digest) {
        first.reasons.push(format!(
            "{via} names the index {}, which does not list {digest}: its attestations do not \
             cover this image",
            fetched.digest
        ));
        return Ok(first);
    }
    let index_pinned = pinned.to_image_ref().with_digest(fetched.digest.clone());
    let found = source.evidence(&index_pinned).await?;
    let mut through = decide_with_evidence(policy, image, &index_pinned, ctx, &found);
    if through.outcome != Outcome::Allowed {
        first.reasons.push(format!(
            "the index {} ({via}) lists {digest} but is not attested either",
            fetched.digest
        ));
        return Ok(first);
    }
    through.image = first.image;
    through.digest = Some(digest.clone());
    through.through_index = Some(fetched.digest.clone());
    through.reasons.push(format!(
        "allowed through the index {} ({via}), which lists {digest}",
        fetched.digest
    ));
    Ok(through)
}

/// An index allowed on its own evidence, under `requireEvidenceOn: everyPlatform`: each
/// platform manifest (or each of `platforms`) must satisfy the rule on its own evidence too.
async fn every_platform<S: Source>(
    policy: &Policy,
    image: &ImageRef,
    pinned: &PinnedRef,
    ctx: &AdmissionContext,
    source: &S,
    mut decision: Decision,
    manifests: &[Descriptor],
) -> Result<Decision, S::Error> {
    let wanted = &policy.multi_platform.platforms;
    let listed: Vec<(String, &Descriptor)> = manifests
        .iter()
        .filter(|m| !m.is_attestation_manifest())
        .map(|m| (platform_name(m), m))
        .collect();
    let mut failures = Vec::new();
    for platform in wanted {
        if !listed.iter().any(|(name, _)| name == platform) {
            failures.push(format!(
                "the index {} has no {platform} manifest",
                pinned.digest()
            ));
        }
    }
    for (name, manifest) in &listed {
        if !wanted.is_empty() && !wanted.contains(name) {
            continue;
        }
        let child = pinned.to_image_ref().with_digest(manifest.digest.clone());
        let found = source.evidence(&child).await?;
        let verdict = decide_with_evidence(policy, image, &child, ctx, &found);
        if verdict.outcome == Outcome::Allowed {
            decision.accepted.extend(verdict.accepted);
        } else {
            let why = verdict
                .reasons
                .first()
                .cloned()
                .unwrap_or_else(|| "not attested".into());
            failures.push(format!("platform {name} ({}): {why}", manifest.digest));
        }
    }
    if !failures.is_empty() {
        decision.outcome = match decision.enforcement {
            Enforcement::DryRun => Outcome::AllowedDryRunWouldDeny,
            Enforcement::Enforced => Outcome::Denied,
        };
        decision.reasons.push(format!(
            "multiPlatform.requireEvidenceOn is everyPlatform: every platform manifest of the \
             index must be attested; {} of them {} not",
            failures.len(),
            if failures.len() == 1 { "is" } else { "are" }
        ));
        decision.reasons.extend(failures);
    }
    Ok(decision)
}

/// `os/architecture[/variant]` of an index entry; `unknown/unknown` without a platform.
pub(crate) fn platform_name(m: &Descriptor) -> String {
    let field = |name: &str| {
        m.platform
            .as_ref()
            .and_then(|p| p.get(name))
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    let mut name = format!(
        "{}/{}",
        field("os").unwrap_or_else(|| "unknown".into()),
        field("architecture").unwrap_or_else(|| "unknown".into())
    );
    if let Some(variant) = field("variant") {
        name.push('/');
        name.push_str(&variant);
    }
    name
}
