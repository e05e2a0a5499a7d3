//! Finding and attaching referrers: the OCI 1.1 referrers API where the registry has it, and
//! otherwise the fallback index at tag `sha256-<hex>`, kept loss-free.
//!
//! Why loss-free needs more than the fallback index: on registries without conditional writes
//! (distribution 2.x has none) two writers that read the index before either writes will lose
//! one update. So each referrer written here also gets a tag of its own,
//! `sha256-<subject hex>.<first 16 hex of the referrer digest>`. Readers take the union of the
//! index and those tags; writers repair the index from them until a read shows nothing
//! missing. Writes to distinct tags never conflict, so nothing is lost, and the index converges:
//! the last writer's final read sees every tag written before it, and any later tag belongs to a
//! writer that reads after it.

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::future::{join, join3};
use signet_core::digest::Digest;
use signet_core::oci::{self, AnyManifest, Descriptor, Index};

use crate::TagOrDigest;
use crate::client::Precondition;
use crate::client::ReferrersSupport;
use crate::error::RegistryError;
use crate::store::{ReferrersApi, Remote, TagList};

/// Most read-repair rounds for the fallback index before giving up.
const MAX_INDEX_ROUNDS: u32 = 64;

/// Where the referrers of a subject were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferrersSource {
    /// The registry's referrers API.
    Api,
    /// The fallback index tag and per-referrer tags.
    FallbackTags,
    /// The `subject` fields of the manifests listed in an OCI image layout.
    Layout,
}

/// The referrers of one subject.
#[derive(Debug, Clone)]
pub struct Referrers {
    /// The descriptors, deduplicated by digest, in a stable order.
    pub descriptors: Vec<Descriptor>,
    /// Where they came from.
    pub source: ReferrersSource,
}

fn api_referrers(descriptors: Vec<Descriptor>) -> Referrers {
    Referrers {
        descriptors: dedup(descriptors),
        source: ReferrersSource::Api,
    }
}

/// The tag of a referrer's own entry: `sha256-<subject hex>.<first 16 hex of referrer>`.
pub fn referrer_tag(subject: &Digest, referrer: &Digest) -> String {
    let hex = referrer.hex();
    format!("{}.{}", subject.fallback_tag(), &hex[..hex.len().min(16)])
}

fn is_referrer_tag(tag: &str, prefix: &str) -> bool {
    tag.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == 16
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

impl Remote {
    /// Lists the referrers of `subject`, optionally of one artifact type: through the API when
    /// the registry has one, else the fallback index united with the per-referrer tags.
    ///
    /// A registry not yet known is asked the API, the index and the tag list at once, so that
    /// discovery costs one round trip whichever it supports; what it showed is remembered for
    /// a while (see [`Client::referrers_support`](crate::Client::referrers_support)), and
    /// later lookups ask only what can answer.
    pub async fn referrers(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Referrers, RegistryError> {
        let prefix = format!("{}.", subject.fallback_tag());
        match self.client().referrers_support(self.registry()) {
            ReferrersSupport::Supported => {
                if let ReferrersApi::Supported(descriptors) =
                    self.referrers_api(subject, artifact_type).await?
                {
                    return Ok(api_referrers(descriptors));
                }
                // 404: gone, or this repository does not exist; the fallback tags decide.
                self.fallback_lookup(subject, artifact_type).await
            }
            ReferrersSupport::Unsupported => self.fallback_lookup(subject, artifact_type).await,
            ReferrersSupport::Unknown => {
                let (api, index, tags) = join3(
                    self.referrers_api(subject, artifact_type),
                    self.get_manifest_by_tag(&subject.fallback_tag()),
                    self.tag_list(&prefix),
                )
                .await;
                if let ReferrersApi::Supported(descriptors) = api? {
                    self.client()
                        .remember_referrers_support(self.registry(), ReferrersSupport::Supported);
                    return Ok(api_referrers(descriptors));
                }
                let tags = tags?;
                // A 404 from the API says the registry has none only where the repository
                // exists (a missing repository is 404 everywhere): a listing of its tags shows
                // it does. An image named in a repository that is not there must not teach the
                // client that the whole registry lacks the API.
                if tags.repository_exists {
                    self.client()
                        .remember_referrers_support(self.registry(), ReferrersSupport::Unsupported);
                }
                self.fallback_referrers(subject, artifact_type, index?, tags)
                    .await
            }
        }
    }

    /// The referrers the fallback index and the per-referrer tags name, both asked at once.
    async fn fallback_lookup(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Referrers, RegistryError> {
        let prefix = format!("{}.", subject.fallback_tag());
        let (index, tags) = join(
            self.get_manifest_by_tag(&subject.fallback_tag()),
            self.tag_list(&prefix),
        )
        .await;
        self.fallback_referrers(subject, artifact_type, index?, tags?)
            .await
    }

    /// The referrers the fallback index (`index`, if the tag exists) and the per-referrer
    /// `tags` name.
    async fn fallback_referrers(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
        index: Option<crate::FetchedManifest>,
        tags: TagList,
    ) -> Result<Referrers, RegistryError> {
        let mut descriptors = match index {
            Some(fetched) => parse_index(&fetched.bytes, &subject.fallback_tag())?.manifests,
            None => Vec::new(),
        };
        let tagged = self
            .tagged_referrers(subject, &tags.tags, &descriptors)
            .await?;
        descriptors.extend(tagged);
        if let Some(t) = artifact_type {
            descriptors.retain(|d| d.artifact_type.as_deref() == Some(t));
        }
        Ok(Referrers {
            descriptors: dedup(descriptors),
            source: ReferrersSource::FallbackTags,
        })
    }

    /// Descriptors of referrers that have their own tag but are missing from `known`. Each is
    /// fetched and must name `subject` as its subject; others are ignored.
    async fn tagged_referrers(
        &self,
        subject: &Digest,
        tags: &[String],
        known: &[Descriptor],
    ) -> Result<Vec<Descriptor>, RegistryError> {
        let prefix = format!("{}.", subject.fallback_tag());
        let known_prefixes: BTreeSet<String> = known
            .iter()
            .map(|d| d.digest.hex().chars().take(16).collect())
            .collect();
        let wanted: Vec<&String> = tags
            .iter()
            .filter(|t| is_referrer_tag(t, &prefix))
            .filter(|t| !known_prefixes.contains(&t[prefix.len()..]))
            .collect();
        let mut out = Vec::new();
        // Sequential on purpose: this only runs for entries the index lost, normally none.
        for tag in wanted {
            let Some(fetched) = self.get_manifest_by_tag(tag).await? else {
                continue;
            };
            if let Some(descriptor) =
                referrer_descriptor(&fetched.media_type, &fetched.bytes, subject)
            {
                out.push(descriptor);
            }
        }
        Ok(out)
    }

    /// Pushes a referrer manifest (its blobs must already be there) and makes sure it can be
    /// found: the registry indexes it if it answers `OCI-Subject`; otherwise it gets its own
    /// tag and the fallback index is repaired until it lists every tagged referrer.
    pub async fn attach_referrer(
        &self,
        subject: &Digest,
        media_type: &str,
        manifest: &[u8],
    ) -> Result<Descriptor, RegistryError> {
        let descriptor = referrer_descriptor(media_type, manifest, subject).ok_or_else(|| {
            RegistryError::Usage(format!(
                "the manifest to attach does not name {subject} as its subject"
            ))
        })?;
        let put = self
            .put_manifest(
                TagOrDigest::Digest(&descriptor.digest),
                media_type,
                manifest,
                Precondition::None,
            )
            .await?;
        if put.oci_subject.is_some() {
            return Ok(descriptor);
        }
        self.put_manifest(
            TagOrDigest::Tag(&referrer_tag(subject, &descriptor.digest)),
            media_type,
            manifest,
            Precondition::None,
        )
        .await?;
        self.repair_fallback_index(subject, std::slice::from_ref(&descriptor))
            .await?;
        Ok(descriptor)
    }

    /// Attaches several referrer manifests (`(media type, bytes)`, blobs already there) to
    /// `subject` at once, as a mirror needs: those the registry lists and has are left alone
    /// (a listed manifest that is gone, say collected, is pushed again), the others are
    /// pushed (several at a time). On a registry without the referrers API each gets its own
    /// tag (also one that was there but had lost it) and the fallback index is repaired once
    /// for all, also when nothing was pushed (it heals an index an interrupted run left
    /// behind). Returns each referrer's descriptor, and whether its manifest was written
    /// (`false`: present).
    pub async fn attach_referrers(
        &self,
        subject: &Digest,
        manifests: &[(String, Vec<u8>)],
    ) -> Result<Vec<(Descriptor, bool)>, RegistryError> {
        let mut descriptors = Vec::with_capacity(manifests.len());
        for (media_type, bytes) in manifests {
            descriptors.push(
                referrer_descriptor(media_type, bytes, subject).ok_or_else(|| {
                    RegistryError::Usage(format!(
                        "the manifest to attach does not name {subject} as its subject"
                    ))
                })?,
            );
        }
        let present = self.referrers(subject, None).await?;
        let listed: BTreeSet<&Digest> = present.descriptors.iter().map(|d| &d.digest).collect();
        let fallback = present.source == ReferrersSource::FallbackTags;
        // The per-referrer tags there are, where they matter.
        let tags: BTreeSet<String> = if fallback {
            let prefix = format!("{}.", subject.fallback_tag());
            self.tags_with_prefix(&prefix).await?.into_iter().collect()
        } else {
            BTreeSet::new()
        };
        let (listed, tags) = (&listed, &tags);
        let concurrency = self.client().limits().concurrency;
        let pushes = futures_util::stream::iter(manifests.iter().zip(&descriptors))
            .map(|((media_type, bytes), descriptor)| async move {
                let own_tag = referrer_tag(subject, &descriptor.digest);
                // Listed is not enough: the manifest itself must be there.
                if listed.contains(&descriptor.digest)
                    && self.manifest_exists(&descriptor.digest).await?
                {
                    if !fallback || tags.contains(&own_tag) {
                        return Ok::<_, RegistryError>((false, None));
                    }
                    self.put_manifest(
                        TagOrDigest::Tag(&own_tag),
                        media_type,
                        bytes,
                        Precondition::None,
                    )
                    .await?;
                    return Ok((false, Some(descriptor.clone())));
                }
                let put = self
                    .put_manifest(
                        TagOrDigest::Digest(&descriptor.digest),
                        media_type,
                        bytes,
                        Precondition::None,
                    )
                    .await?;
                if put.oci_subject.is_some() {
                    return Ok((true, None));
                }
                self.put_manifest(
                    TagOrDigest::Tag(&own_tag),
                    media_type,
                    bytes,
                    Precondition::None,
                )
                .await?;
                Ok((true, Some(descriptor.clone())))
            })
            // In order, so that the fallback index lists them as the source did (readers that
            // take the first match then decide the same on both sides).
            .buffered(concurrency)
            .collect::<Vec<_>>()
            .await;
        let mut tagged = Vec::new();
        let mut written = Vec::with_capacity(pushes.len());
        for push in pushes {
            let (w, t) = push?;
            written.push(w);
            tagged.extend(t);
        }
        if fallback || !tagged.is_empty() {
            self.repair_fallback_index(subject, &tagged).await?;
        }
        Ok(descriptors.into_iter().zip(written).collect())
    }

    /// Brings the fallback index of `subject` to include `ours` and every tagged referrer,
    /// re-reading after each write until a read shows nothing missing.
    pub async fn repair_fallback_index(
        &self,
        subject: &Digest,
        ours: &[Descriptor],
    ) -> Result<(), RegistryError> {
        let tag = subject.fallback_tag();
        let prefix = format!("{tag}.");
        let mut last_obstacle = String::from("no attempt made");
        for round in 0..MAX_INDEX_ROUNDS {
            let (index, tags) = futures_util::future::join(
                self.get_manifest_by_tag(&tag),
                self.tags_with_prefix(&prefix),
            )
            .await;
            let (mut current, precondition) = match index? {
                Some(fetched) => {
                    let index = parse_index(&fetched.bytes, &tag)?;
                    let precondition = fetched
                        .etag
                        .map(Precondition::Matches)
                        .unwrap_or(Precondition::None);
                    (index, precondition)
                }
                None => (Index::empty(), Precondition::Absent),
            };
            // Ours first, in the order given (a mirror gives the source's order, so that both
            // sides list the same referrers in the same order); then whatever else has a tag
            // but no entry. Ours are not fetched again through their tags.
            let mut missing: Vec<Descriptor> = ours
                .iter()
                .filter(|o| !current.manifests.iter().any(|d| d.digest == o.digest))
                .cloned()
                .collect();
            let mut known = current.manifests.clone();
            known.extend(ours.iter().cloned());
            missing.extend(self.tagged_referrers(subject, &tags?, &known).await?);
            if missing.is_empty() {
                return Ok(());
            }
            current.manifests.extend(missing);
            current.manifests = dedup(std::mem::take(&mut current.manifests));
            match self
                .put_manifest(
                    TagOrDigest::Tag(&tag),
                    oci::OCI_INDEX,
                    &current.to_json(),
                    precondition,
                )
                .await
            {
                Ok(_) => {}
                Err(RegistryError::Status { status: 412, .. }) => {
                    last_obstacle = "a concurrent writer changed the index".into();
                }
                Err(e) => return Err(e),
            }
            // A little jitter so that concurrent writers stop colliding.
            tokio::time::sleep(jitter(round)).await;
        }
        Err(RegistryError::IndexUpdate {
            tag,
            attempts: MAX_INDEX_ROUNDS,
            reason: last_obstacle,
        })
    }
}

/// The index descriptor of a referrer manifest: media type, digest, size, artifact type and
/// annotations carried over, as the referrers API would list it. `None` when the manifest does
/// not name `subject`.
pub fn referrer_descriptor(media_type: &str, bytes: &[u8], subject: &Digest) -> Option<Descriptor> {
    let manifest = AnyManifest::parse(media_type, bytes).ok()?;
    if manifest.subject().map(|s| &s.digest) != Some(subject) {
        return None;
    }
    let mut descriptor = Descriptor::of(manifest.media_type(), bytes);
    match &manifest {
        AnyManifest::Image(m) => {
            descriptor.artifact_type = Some(m.effective_artifact_type().to_string());
            descriptor.annotations = m.annotations.clone();
        }
        AnyManifest::Index(i) => {
            descriptor.artifact_type = i.artifact_type.clone();
            descriptor.annotations = i.annotations.clone();
        }
    }
    Some(descriptor)
}

fn parse_index(bytes: &[u8], tag: &str) -> Result<Index, RegistryError> {
    serde_json::from_slice(bytes).map_err(|e| RegistryError::Malformed {
        what: format!("referrers index at tag {tag}"),
        reason: e.to_string(),
    })
}

fn dedup(mut descriptors: Vec<Descriptor>) -> Vec<Descriptor> {
    let mut seen = BTreeSet::new();
    descriptors.retain(|d| seen.insert(d.digest.clone()));
    descriptors
}

fn jitter(round: u32) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let spread = 20 + 10 * u64::from(round.min(10));
    Duration::from_millis(u64::from(nanos ^ std::process::id()) % spread)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referrer_tags() {
        let s = Digest::sha256_of(b"s");
        let r = Digest::sha256_of(b"r");
        let tag = referrer_tag(&s, &r);
        assert_eq!(tag, format!("sha256-{}.{}", s.hex(), &r.hex()[..16]));
        let prefix = format!("sha256-{}.", s.hex());
        assert!(is_referrer_tag(&tag, &prefix));
        assert!(!is_referrer_tag(&format!("{prefix}sig"), &prefix));
        assert!(!is_referrer_tag(&format!("{prefix}att"), &prefix));
    }
}

/// Entry points for the fuzz targets in `fuzz/` (re-exported as `signet_registry::fuzzing`).
#[cfg(feature = "fuzzing")]
pub(crate) mod fuzzing {
    use super::*;

    /// The fallback path of `Remote::referrers` without a registry: the fallback index's
    /// bytes (`None`: no such tag) united with the referrers found through their own tags,
    /// each given as (tag, media type, manifest bytes), filtered and deduplicated. The steps
    /// are the private helpers `referrers` and `tagged_referrers` call, in their order; the
    /// async glue between them fetches and cannot run here.
    pub fn merge_fallback(
        subject: &Digest,
        index: Option<&[u8]>,
        tagged: &[(String, String, Vec<u8>)],
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>, RegistryError> {
        let tag = subject.fallback_tag();
        let prefix = format!("{tag}.");
        let mut descriptors = match index {
            Some(bytes) => parse_index(bytes, &tag)?.manifests,
            None => Vec::new(),
        };
        let known: BTreeSet<String> = descriptors
            .iter()
            .map(|d| d.digest.hex().chars().take(16).collect())
            .collect();
        for (t, media_type, bytes) in tagged {
            if !is_referrer_tag(t, &prefix) || known.contains(&t[prefix.len()..]) {
                continue;
            }
            descriptors.extend(referrer_descriptor(media_type, bytes, subject));
        }
        if let Some(t) = artifact_type {
            descriptors.retain(|d| d.artifact_type.as_deref() == Some(t));
        }
        Ok(dedup(descriptors))
    }
}
