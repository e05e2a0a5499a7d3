//! Copying an image and everything that refers to it from one [`Repository`] to another:
//! registry to registry, registry to OCI layout, layout to registry.
//!
//! Digests never change, so the signatures and attestations that name the image stay valid
//! at the destination. A copy runs in two steps:
//!
//! 1. [`Plan::discover`] reads the source graph, writing nothing: the image (an index, its
//!    platform manifests, their configs and layers), then for every manifest of it the
//!    referrers, recursively (a signature on an SBOM attestation comes along), and cosign's
//!    legacy `sha256-<hex>.sig`/`.att`/`.sbom` tags. Depth, objects and manifest bytes are
//!    bounded, from the descriptors before what they list is read; every manifest is checked
//!    against its digest and its descriptor's size as it is read, and one digest listed with
//!    two sizes is an error. A listed referrer that does not name its subject is left out.
//! 2. [`copy`] writes it in an order that keeps the destination consistent at every moment:
//!    blobs (several at a time, streamed, mounted when both sides are the same registry), then
//!    manifests children first, then tags (a legacy tag the destination holds already is
//!    merged with the source's, never replaced: [`publish::merge_legacy`]), then referrers
//!    level by level (each attached batch
//!    repairs the fallback index of its subject once, where the registry has no referrers
//!    API). What the destination already has is skipped, so re-running an interrupted copy
//!    finishes it and copies only what is missing.
//!
//! ```no_run
//! # async fn demo(from: signet_registry::Repository, to: signet_registry::Repository,
//! #               digest: signet_core::digest::Digest) -> Result<(), signet_registry::RegistryError> {
//! use signet_registry::mirror::{self, Options, Plan, Silent};
//!
//! let options = Options::default();
//! let plan = Plan::discover(&from, &digest, &options).await?;
//! let summary = mirror::copy(&plan, &from, &to, &["v1".to_string()], &options, &Silent).await?;
//! println!("{summary}");
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt as _, TryStreamExt as _};
use signet_core::digest::Digest;
use signet_core::oci::{self, AnyManifest, Descriptor};

use crate::TagOrDigest;
use crate::client::{FetchedManifest, Limits, Precondition};
use crate::error::RegistryError;
use crate::publish::{self, LegacyMerge};
use crate::repository::Repository;
use crate::stream::ByteStream;

/// Bounds and parallelism of a copy.
#[derive(Debug, Clone)]
pub struct Options {
    /// Blobs transferred at once.
    pub jobs: usize,
    /// Deepest referrer nesting followed (a signature on an attestation on an image is 2).
    pub max_depth: usize,
    /// Most objects (manifests and blobs) in one plan.
    pub max_objects: usize,
    /// Most bytes of manifests in one plan (they are held in memory until written).
    pub max_manifest_bytes: u64,
    /// Attempts per blob when a transfer fails on the way (connection, 5xx, stalled stream);
    /// a streamed upload cannot be resumed, so each attempt sends the whole blob.
    pub attempts: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            jobs: 4,
            max_depth: 8,
            max_objects: 20_000,
            max_manifest_bytes: 256 << 20,
            attempts: 3,
        }
    }
}

/// What kind of object an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A blob (config, layer, signature payload).
    Blob,
    /// A manifest or index of the image, stored by digest.
    Manifest,
    /// A referrer manifest, attached to its subject.
    Referrer,
    /// A tag: one named on the command line, or a cosign legacy tag.
    Tag,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Blob => "blob",
            Kind::Manifest => "manifest",
            Kind::Referrer => "referrer",
            Kind::Tag => "tag",
        })
    }
}

/// One object of a copy, for progress reports.
#[derive(Debug, Clone)]
pub struct Object {
    /// What it is.
    pub kind: Kind,
    /// Its digest (for a tag: the manifest it points at).
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// The tag, for [`Kind::Tag`].
    pub tag: Option<String>,
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tag {
            Some(tag) => write!(f, "tag {tag} -> {}", self.digest),
            None => write!(
                f,
                "{} {} ({})",
                self.kind,
                self.digest,
                human_bytes(self.size)
            ),
        }
    }
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Its bytes were copied.
    Copied,
    /// The destination had it already.
    Skipped,
    /// The registry mounted it from the source repository (same registry): no bytes moved.
    Mounted,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Copied => "copied",
            Outcome::Skipped => "skipped",
            Outcome::Mounted => "mounted",
        })
    }
}

/// Receives the progress of a copy; every method has a do-nothing default. Called from
/// several tasks at once.
pub trait Progress: Send + Sync {
    /// The plan is known: how many objects and blob bytes the copy covers at most.
    fn planned(&self, objects: u64, bytes: u64) {
        let _ = (objects, bytes);
    }
    /// `bytes` more bytes of a blob went through.
    fn transferred(&self, bytes: u64) {
        let _ = bytes;
    }
    /// A blob transfer failed and is tried again; the `undo` bytes already reported for it
    /// will pass again.
    fn retrying(&self, object: &Object, undo: u64, error: &RegistryError) {
        let _ = (object, undo, error);
    }
    /// An object is done.
    fn finished(&self, object: &Object, outcome: Outcome) {
        let _ = (object, outcome);
    }
    /// Something worth telling that does not stop the copy.
    fn warning(&self, message: &str) {
        let _ = message;
    }
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {}

/// What a copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Manifests and blobs whose bytes were copied.
    pub copied: u64,
    /// Manifests and blobs the destination had already.
    pub skipped: u64,
    /// Blobs mounted from the source repository.
    pub mounted: u64,
    /// Tags written.
    pub tags: u64,
    /// Bytes copied (blobs and manifests).
    pub bytes: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl Summary {
    /// Adds another copy's counts (for several images into one destination).
    pub fn add(&mut self, other: &Summary) {
        self.copied = self.copied.saturating_add(other.copied);
        self.skipped = self.skipped.saturating_add(other.skipped);
        self.mounted = self.mounted.saturating_add(other.mounted);
        self.tags = self.tags.saturating_add(other.tags);
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.elapsed = self.elapsed.saturating_add(other.elapsed);
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "copied {} objects ({}), skipped {}, mounted {} in {:.1} s; {} tags written",
            self.copied,
            human_bytes(self.bytes),
            self.skipped,
            self.mounted,
            self.elapsed.as_secs_f64(),
            self.tags,
        )
    }
}

/// Bytes for people: `512 B`, `1.5 KiB`, `200.0 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// One manifest of the plan, as read (bytes exactly as stored).
#[derive(Debug, Clone)]
struct Node {
    media_type: String,
    bytes: Vec<u8>,
    /// Manifests an index lists, in order.
    children: Vec<Digest>,
}

/// A referrer to attach: its subject, and its own child manifests (when it is an index),
/// children first.
#[derive(Debug, Clone)]
struct Attachment {
    subject: Digest,
    digest: Digest,
    children: Vec<Digest>,
}

/// Everything a copy of one image writes, read from the source.
#[derive(Debug, Clone)]
pub struct Plan {
    root: Digest,
    manifests: BTreeMap<Digest, Node>,
    /// The image's manifests, children before parents; the root is last.
    image: Vec<Digest>,
    /// Legacy tags and the manifest each points at (its graph is in `manifests`).
    legacy: Vec<(String, Digest)>,
    /// Referrers by nesting level (level 0 refers to the image's manifests).
    referrers: Vec<Vec<Attachment>>,
    blobs: BTreeMap<Digest, Descriptor>,
    /// The size of every object of the plan: as its descriptors say (they must agree), and
    /// for a manifest as read.
    sizes: BTreeMap<Digest, u64>,
    /// What discovery left out, for the user.
    warnings: Vec<String>,
    /// The total size of the manifests read (they are held in memory).
    manifest_bytes: u64,
}

/// A manifest to read, and the size the descriptor that lists it gives (`None` for one named
/// by digest alone: the image, a legacy tag's target, a listed referrer).
#[derive(Debug, Clone)]
struct Wanted {
    digest: Digest,
    size: Option<u64>,
}

/// What one walk added to the plan, to take it out again when the referrer it was for is
/// left out.
#[derive(Debug, Default)]
struct Added {
    manifests: Vec<Digest>,
    blobs: Vec<Digest>,
    sizes: Vec<Digest>,
    manifest_bytes: u64,
}

impl Plan {
    /// Reads the graph of image `root` in `from`: the image, the referrers of each of its
    /// manifests, recursively, and their legacy tags. Writes nothing.
    ///
    /// Bounds are applied from the descriptors before anything they list is read (a manifest
    /// said to be larger than the manifest limit, more objects or manifest bytes than
    /// `options` allow), and manifests are read a few at a time and taken into the plan as
    /// they come, so memory stays within `max_manifest_bytes` plus a few manifests. One
    /// digest listed with two sizes is an error. A listed referrer that is missing, does not
    /// name its subject, or lists content in a way the plan cannot take is left out with a
    /// warning: it is the image that is copied, and anyone who can push a signature can list
    /// one.
    pub async fn discover(
        from: &Repository,
        root: &Digest,
        options: &Options,
    ) -> Result<Plan, RegistryError> {
        let mut plan = Plan {
            root: root.clone(),
            manifests: BTreeMap::new(),
            image: Vec::new(),
            legacy: Vec::new(),
            referrers: Vec::new(),
            blobs: BTreeMap::new(),
            sizes: BTreeMap::new(),
            warnings: Vec::new(),
            manifest_bytes: 0,
        };
        let wanted = vec![Wanted {
            digest: root.clone(),
            size: None,
        }];
        let mut orders = plan
            .walk(from, wanted, options, &mut Added::default())
            .await?;
        plan.image = orders.pop().unwrap_or_default();

        // Referrers and legacy tags of every manifest of the image, then of every referrer
        // found, level by level.
        let concurrency = from.concurrency().max(1);
        let mut subjects: Vec<Digest> = plan.image.clone();
        let mut seen: BTreeSet<Digest> = subjects.iter().cloned().collect();
        for level in 0..options.max_depth {
            if subjects.is_empty() {
                break;
            }
            let found: Vec<Found> = stream::iter(subjects.iter().cloned())
                .map(|subject| async move {
                    let (referrers, legacy) = futures_util::future::join(
                        from.referrers(&subject, None),
                        legacy_tags(from, &subject),
                    )
                    .await;
                    Ok::<_, RegistryError>((subject, referrers?.descriptors, legacy?))
                })
                .buffered(concurrency)
                .try_collect()
                .await?;

            // Legacy tags: their manifests, all at once.
            let targets: Vec<Wanted> = found
                .iter()
                .flat_map(|(_, _, legacy)| legacy.iter().map(|(_, d)| d))
                .filter(|d| !plan.manifests.contains_key(*d))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .map(|d| Wanted {
                    digest: d.clone(),
                    size: None,
                })
                .collect();
            plan.walk(from, targets, options, &mut Added::default())
                .await?;
            let mut listed: Vec<(Digest, Descriptor)> = Vec::new();
            for (subject, descriptors, legacy) in found {
                plan.legacy.extend(legacy);
                listed.extend(descriptors.into_iter().map(|d| (subject.clone(), d)));
            }

            let attachments = plan
                .read_referrers(from, listed, &mut seen, options)
                .await?;
            subjects = attachments.iter().map(|a| a.digest.clone()).collect();
            if !attachments.is_empty() {
                plan.referrers.push(attachments);
            }
            if level + 1 == options.max_depth && !subjects.is_empty() {
                plan.warnings.push(format!(
                    "referrers nested more than {} deep are not looked for",
                    options.max_depth
                ));
            }
        }
        Ok(plan)
    }

    /// Reads the referrers `listed` (subject, descriptor as listed) of one level, in order,
    /// and takes into the plan those whose manifest names the subject they are listed for;
    /// the others are left out with a warning. `seen` holds the manifests already taken as
    /// subjects or referrers.
    async fn read_referrers(
        &mut self,
        from: &Repository,
        listed: Vec<(Digest, Descriptor)>,
        seen: &mut BTreeSet<Digest>,
        options: &Options,
    ) -> Result<Vec<Attachment>, RegistryError> {
        // Each manifest is read once, whatever subjects it is listed for; its own subject
        // decides which listing is right. One the plan holds already (a legacy tag's target)
        // is not read again.
        let limit = manifest_limit(from);
        let mut claims: BTreeMap<Digest, Vec<Digest>> = BTreeMap::new();
        let mut order: Vec<(Wanted, Option<FetchedManifest>)> = Vec::new();
        for (subject, d) in listed {
            if seen.contains(&d.digest) {
                continue;
            }
            if d.size > limit {
                self.warnings.push(format!(
                    "referrer {} of {subject} is listed with {} bytes, more than the \
                     {limit}-byte manifest limit; not copied",
                    d.digest, d.size
                ));
                continue;
            }
            let subjects = claims.entry(d.digest.clone()).or_default();
            if subjects.is_empty() {
                let held = self.manifests.get(&d.digest).map(|node| FetchedManifest {
                    digest: d.digest.clone(),
                    media_type: node.media_type.clone(),
                    bytes: node.bytes.clone(),
                    etag: None,
                });
                let wanted = Wanted {
                    digest: d.digest.clone(),
                    size: Some(d.size),
                };
                order.push((wanted, held));
            }
            if !subjects.contains(&subject) {
                subjects.push(subject);
            }
        }
        let to_read: Vec<Wanted> = order
            .iter()
            .filter(|(_, held)| held.is_none())
            .map(|(w, _)| w.clone())
            .collect();
        self.check_room(from, &to_read, options)?;
        let concurrency = from.concurrency().max(1);
        let mut reads = stream::iter(order)
            .map(|(w, held)| async move {
                let in_plan = held.is_some();
                let fetched = match held {
                    Some(held) => Ok(held),
                    None => from.get_manifest(&w.digest).await,
                };
                (w.digest, in_plan, fetched)
            })
            .buffered(concurrency);
        // Taken: subject, referrer, and whether it is an index (read whole later).
        let mut taken: Vec<(Digest, Digest, bool)> = Vec::new();
        while let Some((digest, in_plan, fetched)) = reads.next().await {
            let subjects = claims.remove(&digest).unwrap_or_default();
            let fetched = match fetched {
                Ok(fetched) => fetched,
                Err(RegistryError::NotFound { what }) => {
                    for subject in subjects {
                        self.warnings.push(format!(
                            "referrer {digest} of {subject} is listed but missing ({what}); \
                             not copied"
                        ));
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            let parsed = AnyManifest::parse(&fetched.media_type, &fetched.bytes).ok();
            let named = parsed
                .as_ref()
                .and_then(|m| m.subject().map(|s| s.digest.clone()));
            let mut subject = None;
            for claimed in subjects {
                if subject.is_none() && named.as_ref() == Some(&claimed) {
                    subject = Some(claimed);
                    continue;
                }
                self.warnings.push(match &named {
                    Some(named) => format!(
                        "referrer {digest} is listed for {claimed} but names {named} as its \
                         subject; not copied for {claimed}"
                    ),
                    None => format!(
                        "referrer {digest} is listed for {claimed} but names no subject; \
                         not copied"
                    ),
                });
            }
            let Some(subject) = subject else { continue };
            if !seen.insert(digest.clone()) {
                continue;
            }
            if in_plan {
                taken.push((subject, digest, false));
                continue;
            }
            if matches!(parsed, Some(AnyManifest::Index(_))) {
                // Read again below, with what it lists, as one piece.
                taken.push((subject, digest, true));
                continue;
            }
            let mut added = Added::default();
            let wanted = Wanted {
                digest: digest.clone(),
                size: None,
            };
            match self.admit(from, &wanted, fetched, options, &mut added) {
                Ok(_) => taken.push((subject, digest, false)),
                Err(e) if left_out(&e) => {
                    self.rollback(added);
                    self.warnings
                        .push(format!("referrer {digest} of {subject}: {e}; not copied"));
                }
                Err(e) => return Err(e),
            }
        }
        drop(reads);

        // A referrer index with the manifests it lists, one at a time, each as one piece: one
        // that cannot be read whole is left out, and what it added is taken out again
        // (nothing else was added meanwhile, so that restores the plan exactly).
        let mut attachments = Vec::new();
        for (subject, digest, index) in taken {
            let mut children = Vec::new();
            if index {
                let wanted = vec![Wanted {
                    digest: digest.clone(),
                    size: None,
                }];
                let mut added = Added::default();
                match self.walk(from, wanted, options, &mut added).await {
                    Ok(orders) => {
                        children = orders.into_iter().flatten().collect();
                        children.pop(); // the referrer itself, last
                    }
                    Err(e) if left_out(&e) => {
                        self.rollback(added);
                        self.warnings
                            .push(format!("referrer {digest} of {subject}: {e}; not copied"));
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            attachments.push(Attachment {
                subject,
                digest,
                children,
            });
        }
        Ok(attachments)
    }

    /// Reads the manifests `roots` and, through indexes, every manifest they list, a level
    /// at a time; records them and their blobs (in `added` too). Returns, for each root, the
    /// manifests it added, children first and the root last (empty for a root the plan had).
    async fn walk(
        &mut self,
        from: &Repository,
        roots: Vec<Wanted>,
        options: &Options,
        added: &mut Added,
    ) -> Result<Vec<Vec<Digest>>, RegistryError> {
        let firsts: Vec<Digest> = roots.iter().map(|w| w.digest.clone()).collect();
        let concurrency = from.concurrency().max(1);
        let mut level = roots;
        let start = added.manifests.len();
        loop {
            let mut queued = BTreeSet::new();
            level.retain(|w| {
                !self.manifests.contains_key(&w.digest) && queued.insert(w.digest.clone())
            });
            if level.is_empty() {
                break;
            }
            self.check_room(from, &level, options)?;
            let mut next = Vec::new();
            let mut reads = stream::iter(level)
                .map(|w| async move {
                    let fetched = from.get_manifest(&w.digest).await;
                    (w, fetched)
                })
                .buffered(concurrency);
            while let Some((wanted, fetched)) = reads.next().await {
                next.extend(self.admit(from, &wanted, fetched?, options, added)?);
            }
            level = next;
        }
        let new: BTreeSet<&Digest> = added.manifests[start..].iter().collect();
        let mut emitted = BTreeSet::new();
        Ok(firsts
            .iter()
            .map(|root| self.post_order(root, &new, &mut emitted))
            .collect())
    }

    /// Refuses to read the manifests `wanted` when the plan could not take them, judging from
    /// their descriptors before anything is read: one said to be larger than the manifest
    /// limit, more objects than `max_objects`, more manifest bytes than `max_manifest_bytes`.
    fn check_room(
        &self,
        from: &Repository,
        wanted: &[Wanted],
        options: &Options,
    ) -> Result<(), RegistryError> {
        let limit = manifest_limit(from);
        if let Some((w, size)) = wanted
            .iter()
            .find_map(|w| w.size.filter(|s| *s > limit).map(|s| (w, s)))
        {
            return Err(RegistryError::TooLarge {
                what: format!(
                    "manifest {} in {} ({size} bytes, its descriptor says)",
                    w.digest,
                    from.describe()
                ),
                limit,
            });
        }
        if self.objects().saturating_add(wanted.len()) > options.max_objects {
            return Err(self.too_many(options));
        }
        let declared = wanted
            .iter()
            .filter_map(|w| w.size)
            .fold(self.manifest_bytes, u64::saturating_add);
        if declared > options.max_manifest_bytes {
            return Err(self.too_large(options));
        }
        Ok(())
    }

    fn too_many(&self, options: &Options) -> RegistryError {
        RegistryError::TooMany {
            what: format!("the graph of {}", self.root),
            limit: options.max_objects,
            unit: "objects",
        }
    }

    fn too_large(&self, options: &Options) -> RegistryError {
        RegistryError::TooLarge {
            what: format!("the manifests of the graph of {}", self.root),
            limit: options.max_manifest_bytes,
        }
    }

    /// Takes a manifest read into the plan: checks its size against its descriptor's and the
    /// plan's limits, records its blobs (and everything in `added`). Returns the manifests
    /// it lists that the plan lacks (an index's), to read next.
    fn admit(
        &mut self,
        from: &Repository,
        wanted: &Wanted,
        fetched: FetchedManifest,
        options: &Options,
        added: &mut Added,
    ) -> Result<Vec<Wanted>, RegistryError> {
        let digest = &wanted.digest;
        let what = || format!("manifest {digest} in {}", from.describe());
        let size = fetched.bytes.len() as u64;
        if let Some(declared) = wanted.size
            && declared != size
        {
            return Err(RegistryError::Malformed {
                what: what(),
                reason: format!("{size} bytes where its descriptor says {declared}"),
            });
        }
        if self.objects() >= options.max_objects {
            return Err(self.too_many(options));
        }
        if self.manifest_bytes.saturating_add(size) > options.max_manifest_bytes {
            return Err(self.too_large(options));
        }
        let parsed = AnyManifest::parse(&fetched.media_type, &fetched.bytes).map_err(|e| {
            RegistryError::Malformed {
                what: what(),
                reason: e.to_string(),
            }
        })?;
        self.declare(from, digest, size, added)?;
        let media_type = oci::manifest_media_type(&fetched.bytes, &fetched.media_type);
        let mut children = Vec::new();
        let mut next = Vec::new();
        match &parsed {
            AnyManifest::Index(index) => {
                for m in &index.manifests {
                    self.declare(from, &m.digest, m.size, added)?;
                    children.push(m.digest.clone());
                    if !self.manifests.contains_key(&m.digest) {
                        next.push(Wanted {
                            digest: m.digest.clone(),
                            size: Some(m.size),
                        });
                    }
                }
            }
            AnyManifest::Image(manifest) => {
                for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
                    if oci::is_non_distributable(&blob.media_type) {
                        continue;
                    }
                    self.declare(from, &blob.digest, blob.size, added)?;
                    if !self.blobs.contains_key(&blob.digest) {
                        self.blobs.insert(blob.digest.clone(), blob.clone());
                        added.blobs.push(blob.digest.clone());
                    }
                }
                if self.objects() >= options.max_objects {
                    return Err(self.too_many(options));
                }
            }
        }
        self.manifest_bytes = self.manifest_bytes.saturating_add(size);
        added.manifest_bytes = added.manifest_bytes.saturating_add(size);
        self.manifests.insert(
            digest.clone(),
            Node {
                media_type,
                bytes: fetched.bytes,
                children,
            },
        );
        added.manifests.push(digest.clone());
        Ok(next)
    }

    /// Records that `digest` has `size` bytes; another size for it is an error that names
    /// both.
    fn declare(
        &mut self,
        from: &Repository,
        digest: &Digest,
        size: u64,
        added: &mut Added,
    ) -> Result<(), RegistryError> {
        match self.sizes.get(digest) {
            None => {
                self.sizes.insert(digest.clone(), size);
                added.sizes.push(digest.clone());
                Ok(())
            }
            Some(known) if *known == size => Ok(()),
            Some(known) => Err(RegistryError::Malformed {
                what: format!("the graph of {} in {}", self.root, from.describe()),
                reason: format!("{digest} is listed with {known} bytes and with {size} bytes"),
            }),
        }
    }

    /// Takes out what one walk added.
    fn rollback(&mut self, added: Added) {
        for d in &added.manifests {
            self.manifests.remove(d);
        }
        for d in &added.blobs {
            self.blobs.remove(d);
        }
        for d in &added.sizes {
            self.sizes.remove(d);
        }
        self.manifest_bytes = self.manifest_bytes.saturating_sub(added.manifest_bytes);
    }

    /// The manifests of `new` that `root` reaches and `emitted` does not hold yet, children
    /// first, `root` last.
    fn post_order(
        &self,
        root: &Digest,
        new: &BTreeSet<&Digest>,
        emitted: &mut BTreeSet<Digest>,
    ) -> Vec<Digest> {
        let mut order = Vec::new();
        // Iterative depth-first: (digest, children done).
        let mut stack: Vec<(Digest, bool)> = vec![(root.clone(), false)];
        while let Some((d, expanded)) = stack.pop() {
            if expanded {
                order.push(d);
                continue;
            }
            if !new.contains(&d) || !emitted.insert(d.clone()) {
                continue;
            }
            stack.push((d.clone(), true));
            if let Some(node) = self.manifests.get(&d) {
                for child in node.children.iter().rev() {
                    stack.push((child.clone(), false));
                }
            }
        }
        order
    }

    /// The image's digest.
    pub fn root(&self) -> &Digest {
        &self.root
    }

    /// How many manifests and blobs the plan holds.
    pub fn objects(&self) -> usize {
        self.manifests.len() + self.blobs.len()
    }

    /// The total size of its blobs and manifests (sizes come from the source: the sum stops
    /// at `u64::MAX`).
    pub fn bytes(&self) -> u64 {
        let manifests = self.manifests.values().map(|m| m.bytes.len() as u64);
        self.blob_bytes()
            .saturating_add(manifests.fold(0, u64::saturating_add))
    }

    /// The total size of its blobs, at most `u64::MAX`.
    fn blob_bytes(&self) -> u64 {
        self.blobs
            .values()
            .map(|b| b.size)
            .fold(0, u64::saturating_add)
    }

    /// How many referrers (at any depth) the plan attaches.
    pub fn referrer_count(&self) -> usize {
        self.referrers.iter().map(Vec::len).sum()
    }

    /// What discovery left out (a listed referrer that is missing or names another subject,
    /// nesting past the limit).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The legacy tags the plan copies.
    pub fn legacy_tags(&self) -> impl Iterator<Item = &str> {
        self.legacy.iter().map(|(t, _)| t.as_str())
    }

    /// Checks that every blob of the plan is in `from` with the size the plan gives it
    /// (manifests were read already): for a source that must be complete before anything is
    /// written, such as an archive to import. In a layout each blob is read through and
    /// counted (no further than one byte past its size); in a registry only its presence is
    /// checked here, and the copy checks its size as it streams it.
    pub async fn check_blobs(&self, from: &Repository) -> Result<(), RegistryError> {
        let concurrency = from.concurrency().max(1);
        stream::iter(self.blobs.values())
            .map(|b| async move {
                let what = || format!("blob {} in {}", b.digest, from.describe());
                let Some(layout) = from.as_layout() else {
                    return if from.blob_exists(&b.digest).await? {
                        Ok(())
                    } else {
                        Err(RegistryError::NotFound { what: what() })
                    };
                };
                // The file's size; its content is hashed when it is copied.
                let Some(stored) = layout.blob_size(&b.digest)? else {
                    return Err(RegistryError::NotFound { what: what() });
                };
                if stored == b.size {
                    return Ok(());
                }
                let found = if stored > b.size {
                    format!("more than {} bytes", b.size)
                } else {
                    format!("{stored} bytes")
                };
                Err(RegistryError::Malformed {
                    what: what(),
                    reason: format!(
                        "the blob has {found}, the image's descriptor says {}",
                        b.size
                    ),
                })
            })
            .buffer_unordered(concurrency)
            .try_collect::<Vec<()>>()
            .await
            .map(drop)
    }
}

/// Whether a problem reading one listed referrer's graph leaves that referrer out (with a
/// warning) rather than stopping discovery: its content is missing or not what it should be.
/// Limits, transport and digest errors stop it.
fn left_out(e: &RegistryError) -> bool {
    matches!(
        e,
        RegistryError::NotFound { .. } | RegistryError::Malformed { .. }
    )
}

/// The largest manifest `from` serves.
fn manifest_limit(from: &Repository) -> u64 {
    from.client()
        .map_or(Limits::default().max_manifest_bytes, |c| {
            c.limits().max_manifest_bytes
        })
}

/// What one subject has: its referrers and its legacy tags (tag, manifest digest).
type Found = (Digest, Vec<Descriptor>, Vec<(String, Digest)>);

/// The legacy tags of `subject` that exist in `from`, with the manifest each points at.
async fn legacy_tags(
    from: &Repository,
    subject: &Digest,
) -> Result<Vec<(String, Digest)>, RegistryError> {
    let tags = oci::LEGACY_TAG_SUFFIXES.map(|s| format!("{}.{s}", subject.fallback_tag()));
    let found = futures_util::future::join_all(tags.iter().map(|tag| from.resolve_tag(tag))).await;
    let mut out = Vec::new();
    for (tag, digest) in tags.into_iter().zip(found) {
        if let Some(digest) = digest? {
            out.push((tag, digest));
        }
    }
    Ok(out)
}

/// Running totals of a copy.
#[derive(Default)]
struct Totals {
    copied: AtomicU64,
    skipped: AtomicU64,
    mounted: AtomicU64,
    tags: AtomicU64,
    bytes: AtomicU64,
}

impl Totals {
    fn record(&self, progress: &dyn Progress, object: &Object, outcome: Outcome) {
        let counter = match (object.kind, outcome) {
            (Kind::Tag, Outcome::Copied) => &self.tags,
            (Kind::Tag, _) => {
                progress.finished(object, outcome);
                return;
            }
            (_, Outcome::Copied) => &self.copied,
            (_, Outcome::Skipped) => &self.skipped,
            (_, Outcome::Mounted) => &self.mounted,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if outcome == Outcome::Copied {
            let add = |b: u64| Some(b.saturating_add(object.size));
            let _ = self
                .bytes
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, add);
        }
        progress.finished(object, outcome);
    }

    fn summary(&self, started: Instant) -> Summary {
        Summary {
            copied: self.copied.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            mounted: self.mounted.load(Ordering::Relaxed),
            tags: self.tags.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            elapsed: started.elapsed(),
        }
    }
}

/// Writes `plan` from `from` into `to`, and tags its image there with `tags`. Skips what `to`
/// has; see the module docs for the order of writes.
pub async fn copy(
    plan: &Plan,
    from: &Repository,
    to: &Repository,
    tags: &[String],
    options: &Options,
    progress: &dyn Progress,
) -> Result<Summary, RegistryError> {
    let started = Instant::now();
    let totals = Totals::default();
    for warning in &plan.warnings {
        progress.warning(warning);
    }
    progress.planned((plan.objects() + tags.len()) as u64, plan.blob_bytes());

    // 1. Blobs, largest first so that the longest transfers start early.
    let mut blobs: Vec<&Descriptor> = plan.blobs.values().collect();
    blobs.sort_by(|a, b| b.size.cmp(&a.size).then(a.digest.cmp(&b.digest)));
    stream::iter(blobs)
        .map(Ok::<_, RegistryError>)
        .try_for_each_concurrent(options.jobs.max(1), |blob| {
            copy_blob(from, to, blob, options, progress, &totals)
        })
        .await?;

    // 2. The image's manifests, children before parents; the root last.
    copy_manifests(plan, &plan.image, to, Kind::Manifest, progress, &totals).await?;

    // 3. Tags: those asked for, then cosign's legacy tags.
    if let Some(root) = plan.manifests.get(&plan.root) {
        for tag in tags {
            put_tag(to, tag, &plan.root, root, progress, &totals).await?;
        }
    }
    for (tag, digest) in &plan.legacy {
        if let Some(node) = plan.manifests.get(digest) {
            put_legacy_tag(to, tag, digest, node, progress, &totals).await?;
        }
    }

    // 4. Referrers, level by level: a referrer's subject is always written before it.
    let concurrency = to.concurrency().max(1);
    for level in &plan.referrers {
        let children: Vec<Digest> = level
            .iter()
            .flat_map(|a| a.children.iter().cloned())
            .collect();
        copy_manifests(plan, &children, to, Kind::Manifest, progress, &totals).await?;
        let mut by_subject: BTreeMap<&Digest, Vec<&Attachment>> = BTreeMap::new();
        for a in level {
            by_subject.entry(&a.subject).or_default().push(a);
        }
        stream::iter(by_subject)
            .map(Ok::<_, RegistryError>)
            .try_for_each_concurrent(concurrency, |(subject, attachments)| {
                attach(plan, to, subject, attachments, progress, &totals)
            })
            .await?;
    }
    Ok(totals.summary(started))
}

/// Copies one blob: skipped if there, mounted if the registry can, else streamed, retried
/// whole a bounded number of times.
async fn copy_blob(
    from: &Repository,
    to: &Repository,
    blob: &Descriptor,
    options: &Options,
    progress: &dyn Progress,
    totals: &Totals,
) -> Result<(), RegistryError> {
    let object = Object {
        kind: Kind::Blob,
        digest: blob.digest.clone(),
        size: blob.size,
        tag: None,
    };
    if to.blob_exists(&blob.digest).await? {
        totals.record(progress, &object, Outcome::Skipped);
        return Ok(());
    }
    if from.registry().is_some()
        && from.registry() == to.registry()
        && from.name() != to.name()
        && to.mount_blob(&blob.digest, from).await?
    {
        totals.record(progress, &object, Outcome::Mounted);
        return Ok(());
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        let sent = AtomicU64::new(0);
        let result = stream_blob(from, to, blob, progress, &sent).await;
        match result {
            Ok(()) => {
                totals.record(progress, &object, Outcome::Copied);
                return Ok(());
            }
            Err(e) if attempt < options.attempts && retryable(&e) => {
                progress.retrying(&object, sent.load(Ordering::Relaxed), &e);
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
            // Bytes that are not what the digest says came from the source: say so.
            Err(RegistryError::DigestMismatch {
                expected, actual, ..
            }) => {
                return Err(RegistryError::DigestMismatch {
                    what: format!("blob {} read from {}", blob.digest, from.describe()),
                    expected,
                    actual,
                });
            }
            Err(e) => return Err(e),
        }
    }
}

async fn stream_blob(
    from: &Repository,
    to: &Repository,
    blob: &Descriptor,
    progress: &dyn Progress,
    sent: &AtomicU64,
) -> Result<(), RegistryError> {
    let body = from.blob_stream(&blob.digest).await?;
    // Count what passes; the stream must be 'static, so the counts travel through a channel
    // of numbers rather than a borrow. A size other than the descriptor's is the source's
    // fault, and said so before the destination sees the end of the stream.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let what = format!("blob {} read from {}", blob.digest, from.describe());
    let sized = of_size(body, blob.size, what);
    let counted: ByteStream = Box::pin(sized.inspect(move |chunk| {
        if let Ok(chunk) = chunk {
            let _ = tx.send(chunk.len() as u64);
        }
    }));
    let upload = to.put_blob_stream(&blob.digest, blob.size, counted);
    tokio::pin!(upload);
    let report = |n: u64| {
        sent.fetch_add(n, Ordering::Relaxed);
        progress.transferred(n);
    };
    loop {
        tokio::select! {
            result = &mut upload => {
                // The body may outlive the request a little: count what it passed, and stop.
                while let Ok(n) = rx.try_recv() {
                    report(n);
                }
                return result;
            }
            Some(n) = rx.recv() => report(n),
        }
    }
}

/// Passes `body` through, ending it with an error (about `what`) as soon as it has more than
/// `size` bytes, or at its end when it has fewer.
fn of_size(
    body: ByteStream,
    size: u64,
    what: String,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, RegistryError>> + Send + 'static {
    stream::unfold(Some((body, 0u64)), move |state| {
        let what = what.clone();
        async move {
            let (mut body, seen) = state?;
            match body.next().await {
                Some(Ok(chunk)) => {
                    let seen = seen.saturating_add(chunk.len() as u64);
                    if seen > size {
                        let e = RegistryError::Malformed {
                            what,
                            reason: format!("more than the {size} bytes its descriptor says"),
                        };
                        return Some((Err(e), None));
                    }
                    Some((Ok(chunk), Some((body, seen))))
                }
                Some(Err(e)) => Some((Err(e), None)),
                None if seen != size => {
                    let e = RegistryError::Malformed {
                        what,
                        reason: format!("{seen} bytes where its descriptor says {size}"),
                    };
                    Some((Err(e), None))
                }
                None => None,
            }
        }
    })
}

/// Whether a failed blob transfer is worth sending again.
fn retryable(e: &RegistryError) -> bool {
    e.is_transient() || matches!(e, RegistryError::DeadlineExceeded { .. })
}

/// Writes manifests of the plan by digest, skipping those present. Manifests of the same
/// height go together; a parent only after all its children.
async fn copy_manifests(
    plan: &Plan,
    order: &[Digest],
    to: &Repository,
    kind: Kind,
    progress: &dyn Progress,
    totals: &Totals,
) -> Result<(), RegistryError> {
    // Height: 0 for a manifest without children in `order`, else one more than its highest.
    let mut height: BTreeMap<&Digest, usize> = BTreeMap::new();
    for d in order {
        let h = plan.manifests.get(d).map_or(0, |n| {
            n.children
                .iter()
                .filter_map(|c| height.get(c))
                .map(|h| h + 1)
                .max()
                .unwrap_or(0)
        });
        height.insert(d, h);
    }
    let top = height.values().copied().max().unwrap_or(0);
    let concurrency = to.concurrency().max(1);
    for level in 0..=top {
        let batch: Vec<&Digest> = order
            .iter()
            .filter(|d| height.get(d) == Some(&level))
            .collect();
        stream::iter(batch)
            .map(Ok::<_, RegistryError>)
            .try_for_each_concurrent(concurrency, |digest| async move {
                let Some(node) = plan.manifests.get(digest) else {
                    return Ok(());
                };
                let object = Object {
                    kind,
                    digest: digest.clone(),
                    size: node.bytes.len() as u64,
                    tag: None,
                };
                if to.manifest_exists(digest).await? {
                    totals.record(progress, &object, Outcome::Skipped);
                    return Ok(());
                }
                to.put_manifest(
                    TagOrDigest::Digest(digest),
                    &node.media_type,
                    &node.bytes,
                    Precondition::None,
                )
                .await?;
                totals.record(progress, &object, Outcome::Copied);
                Ok(())
            })
            .await?;
    }
    Ok(())
}

/// Points `tag` at manifest `digest`, unless it already does.
async fn put_tag(
    to: &Repository,
    tag: &str,
    digest: &Digest,
    node: &Node,
    progress: &dyn Progress,
    totals: &Totals,
) -> Result<(), RegistryError> {
    let object = Object {
        kind: Kind::Tag,
        digest: digest.clone(),
        size: node.bytes.len() as u64,
        tag: Some(tag.to_string()),
    };
    if to.resolve_tag(tag).await?.as_ref() == Some(digest) {
        totals.record(progress, &object, Outcome::Skipped);
        return Ok(());
    }
    to.put_manifest(
        TagOrDigest::Tag(tag),
        &node.media_type,
        &node.bytes,
        Precondition::None,
    )
    .await?;
    totals.record(progress, &object, Outcome::Copied);
    Ok(())
}

/// Writes the legacy tag `tag` from the source's manifest `digest`, keeping the layers the
/// destination's tag holds and the source's lacks (another signer's signatures: see
/// [`publish::merge_legacy`]), and says so when it kept any.
async fn put_legacy_tag(
    to: &Repository,
    tag: &str,
    digest: &Digest,
    node: &Node,
    progress: &dyn Progress,
    totals: &Totals,
) -> Result<(), RegistryError> {
    let mut object = Object {
        kind: Kind::Tag,
        digest: digest.clone(),
        size: node.bytes.len() as u64,
        tag: Some(tag.to_string()),
    };
    let outcome =
        match publish::merge_legacy(to, tag, &node.media_type, &node.bytes, digest).await? {
            LegacyMerge::Present => Outcome::Skipped,
            LegacyMerge::Copied => Outcome::Copied,
            LegacyMerge::Merged { kept, digest } => {
                progress.warning(&format!(
                    "merged {kept} destination layer{} into {tag} in {}: the destination's own \
                 signatures are kept next to the source's (now {digest})",
                    if kept == 1 { "" } else { "s" },
                    to.describe(),
                ));
                object.digest = digest;
                Outcome::Copied
            }
        };
    totals.record(progress, &object, outcome);
    Ok(())
}

/// Attaches the referrers of one subject in one batch.
async fn attach(
    plan: &Plan,
    to: &Repository,
    subject: &Digest,
    attachments: Vec<&Attachment>,
    progress: &dyn Progress,
    totals: &Totals,
) -> Result<(), RegistryError> {
    let manifests: Vec<(String, Vec<u8>)> = attachments
        .iter()
        .filter_map(|a| plan.manifests.get(&a.digest))
        .map(|n| (n.media_type.clone(), n.bytes.clone()))
        .collect();
    let attached = to.attach_referrers(subject, &manifests).await?;
    for (descriptor, written) in attached {
        let object = Object {
            kind: Kind::Referrer,
            size: descriptor.size,
            digest: descriptor.digest,
            tag: None,
        };
        let outcome = if written {
            Outcome::Copied
        } else {
            Outcome::Skipped
        };
        totals.record(progress, &object, outcome);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{Layout, LayoutKind, OpenMode};

    const CONFIG: &[u8] = br#"{"architecture":"amd64","os":"linux"}"#;
    const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
    const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

    /// A new OCI layout directory `name` under `dir`.
    fn layout(dir: &tempfile::TempDir, name: &str) -> Repository {
        let path = dir.path().join(name);
        Repository::layout(
            Layout::open(LayoutKind::Directory, &path, OpenMode::CreateIfMissing).unwrap(),
        )
    }

    fn descriptor(media_type: &str, digest: &Digest, size: u64) -> serde_json::Value {
        serde_json::json!({"mediaType": media_type, "digest": digest.to_string(), "size": size})
    }

    /// Stores `manifest` by digest (nothing it lists need be there); returns its digest.
    async fn put(repo: &Repository, manifest: serde_json::Value) -> Digest {
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let media_type = manifest["mediaType"].as_str().unwrap();
        let digest = Digest::sha256_of(&bytes);
        repo.put_manifest(
            TagOrDigest::Digest(&digest),
            media_type,
            &bytes,
            Precondition::None,
        )
        .await
        .unwrap();
        digest
    }

    fn image(config: serde_json::Value, layers: Vec<serde_json::Value>) -> serde_json::Value {
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": oci::OCI_MANIFEST,
            "config": config,
            "layers": layers,
        })
    }

    fn index(manifests: Vec<serde_json::Value>) -> serde_json::Value {
        serde_json::json!({"schemaVersion": 2, "mediaType": oci::OCI_INDEX, "manifests": manifests})
    }

    /// The limits are applied to what an index lists before any of it is read: the children
    /// here do not exist, so reading them first would end in "not found" instead.
    #[tokio::test]
    async fn limits_apply_before_the_manifests_an_index_lists_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let from = layout(&dir, "from");
        let children: Vec<Digest> = (0..10u8).map(|i| Digest::sha256_of(&[i])).collect();
        let listed = children
            .iter()
            .map(|c| descriptor(oci::OCI_MANIFEST, c, 1000))
            .collect();
        let root = put(&from, index(listed)).await;

        let small = Options {
            max_manifest_bytes: 5000,
            ..Options::default()
        };
        let e = Plan::discover(&from, &root, &small).await.unwrap_err();
        assert!(
            matches!(e, RegistryError::TooLarge { limit: 5000, .. }),
            "{e}"
        );
        let few = Options {
            max_objects: 5,
            ..Options::default()
        };
        let e = Plan::discover(&from, &root, &few).await.unwrap_err();
        assert!(matches!(e, RegistryError::TooMany { limit: 5, .. }), "{e}");

        // One child said to be larger than a manifest may be is refused by its descriptor.
        let huge = descriptor(oci::OCI_MANIFEST, &children[0], 5 << 20);
        let root = put(&from, index(vec![huge])).await;
        let e = Plan::discover(&from, &root, &Options::default())
            .await
            .unwrap_err();
        assert!(matches!(e, RegistryError::TooLarge { .. }), "{e}");
        assert!(e.to_string().contains(&children[0].to_string()), "{e}");
    }

    /// A digest listed with two sizes (a config 5 bytes longer than the layer of the same
    /// digest) is refused when planning, naming the digest and both sizes, before any copy.
    #[tokio::test]
    async fn one_digest_with_two_sizes_is_refused_when_planning() {
        let dir = tempfile::tempdir().unwrap();
        let from = layout(&dir, "from");
        let shared = Digest::sha256_of(CONFIG);
        let n = CONFIG.len() as u64;
        let root = put(
            &from,
            image(
                descriptor(CONFIG_TYPE, &shared, n + 5),
                vec![descriptor(LAYER_TYPE, &shared, n)],
            ),
        )
        .await;
        let e = Plan::discover(&from, &root, &Options::default())
            .await
            .unwrap_err();
        let message = e.to_string();
        assert!(matches!(e, RegistryError::Malformed { .. }), "{message}");
        for part in [shared.to_string(), n.to_string(), (n + 5).to_string()] {
            assert!(message.contains(&part), "{part} not in {message}");
        }
    }

    /// Sizes come from the source: sums of them stop at `u64::MAX` instead of overflowing.
    #[tokio::test]
    async fn sizes_from_the_source_do_not_overflow() {
        let dir = tempfile::tempdir().unwrap();
        let from = layout(&dir, "from");
        let to = layout(&dir, "to");
        let layers = (0..2u8)
            .map(|i| descriptor(LAYER_TYPE, &Digest::sha256_of(&[i]), 1 << 63))
            .collect();
        let config = descriptor(CONFIG_TYPE, &Digest::sha256_of(CONFIG), CONFIG.len() as u64);
        let root = put(&from, image(config, layers)).await;
        let plan = Plan::discover(&from, &root, &Options::default())
            .await
            .unwrap();
        assert_eq!(plan.bytes(), u64::MAX);
        // The blobs are not there: the copy fails, it does not panic.
        assert!(
            copy(&plan, &from, &to, &[], &Options::default(), &Silent)
                .await
                .is_err()
        );
        let mut sum = Summary {
            bytes: u64::MAX,
            ..Summary::default()
        };
        sum.add(&sum.clone());
        assert_eq!(sum.bytes, u64::MAX);
    }

    /// A blob whose size is not its descriptor's is refused before anything is written when
    /// checked (an import), and during a copy the error blames the source.
    #[tokio::test]
    async fn a_blob_of_another_size_is_found_and_blamed_on_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let from = layout(&dir, "from");
        let to = layout(&dir, "to");
        let config = from.put_blob(CONFIG).await.unwrap();
        let layer = from.put_blob(b"layer").await.unwrap();
        let n = CONFIG.len() as u64;
        let root = put(
            &from,
            image(
                descriptor(CONFIG_TYPE, &config, n + 3),
                vec![descriptor(LAYER_TYPE, &layer, 5)],
            ),
        )
        .await;
        let plan = Plan::discover(&from, &root, &Options::default())
            .await
            .unwrap();
        let e = plan.check_blobs(&from).await.unwrap_err().to_string();
        assert!(e.contains(&config.to_string()), "{e}");
        assert!(e.contains(&format!("{n} bytes")), "{e}");

        let e = copy(&plan, &from, &to, &[], &Options::default(), &Silent)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("blob {config} read from {}", from.describe())),
            "{e}"
        );
        assert!(!to.blob_exists(&config).await.unwrap());
        assert!(!to.manifest_exists(&root).await.unwrap());
    }

    /// A referrer whose graph cannot be read whole (an index listing a manifest that is not
    /// there) is left out with a warning, and takes nothing into the plan; the other
    /// referrers of the image come along.
    #[tokio::test]
    async fn a_referrer_that_cannot_be_read_whole_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let from = layout(&dir, "from");
        let config = from.put_blob(CONFIG).await.unwrap();
        let layer = from.put_blob(b"layer").await.unwrap();
        let root = put(
            &from,
            image(
                descriptor(CONFIG_TYPE, &config, CONFIG.len() as u64),
                vec![descriptor(LAYER_TYPE, &layer, 5)],
            ),
        )
        .await;
        let subject = descriptor(oci::OCI_MANIFEST, &root, 0);
        let payload = from.put_blob(b"signature").await.unwrap();
        let mut good = image(
            descriptor(CONFIG_TYPE, &config, CONFIG.len() as u64),
            vec![descriptor("application/example", &payload, 9)],
        );
        good["subject"] = subject.clone();
        let good = put(&from, good).await;
        let gone = Digest::sha256_of(b"gone");
        let mut broken = index(vec![descriptor(oci::OCI_MANIFEST, &gone, 100)]);
        broken["subject"] = subject;
        let broken = put(&from, broken).await;

        let plan = Plan::discover(&from, &root, &Options::default())
            .await
            .unwrap();
        assert_eq!(plan.referrer_count(), 1);
        assert_eq!(plan.referrers[0][0].digest, good);
        assert!(!plan.manifests.contains_key(&broken));
        assert!(!plan.sizes.contains_key(&gone));
        let warnings = plan.warnings().join("\n");
        assert!(
            warnings.contains(&broken.to_string()) && warnings.contains("not copied"),
            "{warnings}"
        );
    }

    /// Collects warnings.
    #[derive(Default)]
    struct Warnings(std::sync::Mutex<Vec<String>>);

    impl Progress for Warnings {
        fn warning(&self, message: &str) {
            self.0.lock().unwrap().push(message.to_string());
        }
    }

    /// The layers of the legacy tag `tag` in `repo`.
    async fn legacy_layers(repo: &Repository, tag: &str) -> Vec<Descriptor> {
        let fetched = repo.get_manifest_by_tag(tag).await.unwrap().unwrap();
        match AnyManifest::parse(&fetched.media_type, &fetched.bytes).unwrap() {
            AnyManifest::Image(m) => m.layers,
            AnyManifest::Index(_) => panic!("{tag} is an index"),
        }
    }

    /// Issue 12, finding 5, at the layer level: two keys signing the same image write the same
    /// simple-signing payload, so a layer is the destination's own only by its whole
    /// descriptor (the signature annotation differs), not by its digest. The destination's
    /// signature over the very payload the source signed is kept; the source's layers come
    /// first; a second copy writes nothing.
    #[tokio::test]
    async fn mirror_replaces_the_destinations_legacy_sig_tag_even_for_the_same_payload() {
        let dir = tempfile::tempdir().unwrap();
        let from = layout(&dir, "from");
        let to = layout(&dir, "to");
        let config = from.put_blob(CONFIG).await.unwrap();
        let layer = from.put_blob(b"layer").await.unwrap();
        let root = put(
            &from,
            image(
                descriptor(CONFIG_TYPE, &config, CONFIG.len() as u64),
                vec![descriptor(LAYER_TYPE, &layer, 5)],
            ),
        )
        .await;
        let signed = |signature: &str| publish::LegacyLayer {
            media_type: oci::SIMPLE_SIGNING_LAYER,
            bytes: b"the same payload".to_vec(),
            annotations: BTreeMap::from([(
                oci::COSIGN_SIGNATURE_ANNOTATION.to_string(),
                signature.to_string(),
            )]),
        };
        publish::append_legacy(&from, &root, "sig", signed("source"))
            .await
            .unwrap();
        publish::append_legacy(&to, &root, "sig", signed("site"))
            .await
            .unwrap();
        let tag = format!("{}.sig", root.fallback_tag());
        let source = legacy_layers(&from, &tag).await;
        let site = legacy_layers(&to, &tag).await;
        assert_eq!(source[0].digest, site[0].digest);

        let plan = Plan::discover(&from, &root, &Options::default())
            .await
            .unwrap();
        let warnings = Warnings::default();
        let summary = copy(&plan, &from, &to, &[], &Options::default(), &warnings)
            .await
            .unwrap();
        assert_eq!(summary.tags, 1);
        assert_eq!(legacy_layers(&to, &tag).await, [source, site].concat());
        let said = warnings.0.lock().unwrap().join("\n");
        assert!(
            said.contains(&format!("merged 1 destination layer into {tag}")),
            "{said}"
        );
        let merged = to.resolve_tag(&tag).await.unwrap();

        let again = Warnings::default();
        let summary = copy(&plan, &from, &to, &[], &Options::default(), &again)
            .await
            .unwrap();
        assert_eq!((summary.tags, summary.copied), (0, 0));
        assert!(again.0.lock().unwrap().is_empty());
        assert_eq!(to.resolve_tag(&tag).await.unwrap(), merged);
    }

    #[test]
    fn summary_reads_well() {
        let s = Summary {
            copied: 7,
            skipped: 2,
            mounted: 1,
            tags: 2,
            bytes: 3 * 1024 * 1024 + 512 * 1024,
            elapsed: Duration::from_millis(1250),
        };
        assert_eq!(
            s.to_string(),
            "copied 7 objects (3.5 MiB), skipped 2, mounted 1 in 1.2 s; 2 tags written"
        );
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }

    /// The mirror skipped any layer whose media type merely contained "nondistributable",
    /// where the layout's check wanted the dotted component: one rule now (issue 11), and a
    /// layer it does not name is copied, not silently left out of the mirror.
    #[tokio::test]
    async fn layer_merely_named_nondistributable_is_copied() {
        let dir = tempfile::tempdir().unwrap();
        let from = layout(&dir, "from");
        let layer = b"layer bytes";
        from.put_blob(CONFIG).await.unwrap();
        from.put_blob(layer).await.unwrap();
        let odd = "application/vnd.example.nondistributable-notes+tar";
        let root = put(
            &from,
            image(
                descriptor(CONFIG_TYPE, &Digest::sha256_of(CONFIG), CONFIG.len() as u64),
                vec![descriptor(
                    odd,
                    &Digest::sha256_of(layer),
                    layer.len() as u64,
                )],
            ),
        )
        .await;
        let plan = Plan::discover(&from, &root, &Options::default())
            .await
            .unwrap();
        // The manifest, its config and the layer.
        assert_eq!(plan.objects(), 3);
    }
}
