//! Copying an image and everything that refers to it from one [`Repository`] to another:
//! registry to registry, registry to OCI layout, layout to registry.
//!
//! Digests never change, so the signatures and attestations that name the image stay valid
//! at the destination. A copy runs in two steps:
//!
//! 1. [`Plan::discover`] reads the source graph, writing nothing: the image (an index, its
//!    platform manifests, their configs and layers), then for every manifest of it the
//!    referrers, recursively (a signature on an SBOM attestation comes along), and cosign's
//!    legacy `sha256-<hex>.sig`/`.att`/`.sbom` tags. Depth and size are bounded; every
//!    manifest is checked against its digest as it is read.
//! 2. [`copy`] writes it in an order that keeps the destination consistent at every moment:
//!    blobs (several at a time, streamed, mounted when both sides are the same registry), then
//!    manifests children first, then tags, then referrers level by level (each attached batch
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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt as _, TryStreamExt as _};
use signet_core::digest::Digest;
use signet_core::oci::{self, AnyManifest, Descriptor};

use crate::client::{FetchedManifest, Precondition};
use crate::error::RegistryError;
use crate::repository::{ByteStream, Repository};

/// The legacy cosign tag suffixes copied along with each manifest.
pub const LEGACY_SUFFIXES: [&str; 3] = ["sig", "att", "sbom"];

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
        self.copied += other.copied;
        self.skipped += other.skipped;
        self.mounted += other.mounted;
        self.tags += other.tags;
        self.bytes += other.bytes;
        self.elapsed += other.elapsed;
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
    /// What discovery left out, for the user.
    warnings: Vec<String>,
    /// The total size of the manifests read (they are held in memory).
    manifest_bytes: u64,
}

impl Plan {
    /// Reads the graph of image `root` in `from`: the image, the referrers of each of its
    /// manifests, recursively, and their legacy tags. Writes nothing.
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
            warnings: Vec::new(),
            manifest_bytes: 0,
        };
        let mut cache = Prefetched::new();
        plan.image = plan.walk(from, root, options, &mut cache).await?;

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
            // Every manifest this level adds, read at once.
            let wanted: BTreeSet<Digest> = found
                .iter()
                .flat_map(|(_, descriptors, legacy)| {
                    descriptors
                        .iter()
                        .map(|d| &d.digest)
                        .chain(legacy.iter().map(|(_, d)| d))
                })
                .filter(|d| !seen.contains(*d) && !plan.manifests.contains_key(*d))
                .cloned()
                .collect();
            cache.extend(prefetch(from, wanted.into_iter().collect()).await);
            let mut next = Vec::new();
            let mut attachments = Vec::new();
            for (subject, descriptors, legacy) in found {
                for (tag, digest) in legacy {
                    if !plan.manifests.contains_key(&digest) {
                        plan.walk(from, &digest, options, &mut cache).await?;
                    }
                    plan.legacy.push((tag, digest));
                }
                for d in descriptors {
                    if !seen.insert(d.digest.clone()) {
                        continue;
                    }
                    let mut order = match plan.walk(from, &d.digest, options, &mut cache).await {
                        Ok(order) => order,
                        Err(RegistryError::NotFound { what }) => {
                            // A stale index entry: nothing to copy, and nothing lost.
                            plan.warnings.push(format!(
                                "referrer {} of {subject} is listed but missing ({what}); \
                                 not copied",
                                d.digest
                            ));
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    order.pop(); // the referrer itself; `order` keeps its children
                    next.push(d.digest.clone());
                    attachments.push(Attachment {
                        subject: subject.clone(),
                        digest: d.digest,
                        children: order,
                    });
                }
            }
            if !attachments.is_empty() {
                plan.referrers.push(attachments);
            }
            subjects = next;
            if level + 1 == options.max_depth && !subjects.is_empty() {
                plan.warnings.push(format!(
                    "referrers nested more than {} deep are not looked for",
                    options.max_depth
                ));
            }
        }
        Ok(plan)
    }

    /// Reads manifest `digest` and, for an index, the manifests it lists; records their
    /// blobs. Returns the manifests children first, `digest` last (those already in the plan
    /// are not read again, and not returned).
    async fn walk(
        &mut self,
        from: &Repository,
        digest: &Digest,
        options: &Options,
        cache: &mut Prefetched,
    ) -> Result<Vec<Digest>, RegistryError> {
        let mut order = Vec::new();
        let mut stack: Vec<(Digest, bool)> = vec![(digest.clone(), false)];
        // Iterative depth-first: (digest, children done).
        let mut pending: BTreeSet<Digest> = BTreeSet::new();
        while let Some((d, expanded)) = stack.pop() {
            if expanded {
                order.push(d);
                continue;
            }
            if self.manifests.contains_key(&d) || !pending.insert(d.clone()) {
                continue;
            }
            if self.objects() >= options.max_objects {
                return Err(RegistryError::TooMany {
                    what: format!("the graph of {}", self.root),
                    limit: options.max_objects,
                    unit: "objects",
                });
            }
            let fetched = match cache.remove(&d) {
                Some(fetched) => fetched?,
                None => from.get_manifest(&d).await?,
            };
            self.manifest_bytes += fetched.bytes.len() as u64;
            if self.manifest_bytes > options.max_manifest_bytes {
                return Err(RegistryError::TooLarge {
                    what: format!("the manifests of the graph of {}", self.root),
                    limit: options.max_manifest_bytes,
                });
            }
            let parsed = AnyManifest::parse(&fetched.media_type, &fetched.bytes).map_err(|e| {
                RegistryError::Malformed {
                    what: format!("manifest {d} in {}", from.describe()),
                    reason: e.to_string(),
                }
            })?;
            let media_type = media_type_of(&parsed, &fetched.bytes, &fetched.media_type);
            let mut children = Vec::new();
            match &parsed {
                AnyManifest::Index(index) => {
                    children = index.manifests.iter().map(|m| m.digest.clone()).collect();
                    // Read the platform manifests at once rather than one after the other.
                    let wanted = children
                        .iter()
                        .filter(|c| !self.manifests.contains_key(*c) && !cache.contains_key(*c))
                        .cloned()
                        .collect();
                    cache.extend(prefetch(from, wanted).await);
                }
                AnyManifest::Image(manifest) => {
                    for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
                        if is_non_distributable(&blob.media_type) {
                            continue;
                        }
                        self.blobs
                            .entry(blob.digest.clone())
                            .or_insert_with(|| blob.clone());
                    }
                }
            }
            stack.push((d.clone(), true));
            for child in children.iter().rev() {
                stack.push((child.clone(), false));
            }
            self.manifests.insert(
                d,
                Node {
                    media_type,
                    bytes: fetched.bytes,
                    children,
                },
            );
        }
        Ok(order)
    }

    /// The image's digest.
    pub fn root(&self) -> &Digest {
        &self.root
    }

    /// How many manifests and blobs the plan holds.
    pub fn objects(&self) -> usize {
        self.manifests.len() + self.blobs.len()
    }

    /// The total size of its blobs and manifests.
    pub fn bytes(&self) -> u64 {
        self.blobs.values().map(|b| b.size).sum::<u64>()
            + self
                .manifests
                .values()
                .map(|m| m.bytes.len() as u64)
                .sum::<u64>()
    }

    /// How many referrers (at any depth) the plan attaches.
    pub fn referrer_count(&self) -> usize {
        self.referrers.iter().map(Vec::len).sum()
    }

    /// What discovery left out (a listed referrer that is missing, nesting past the limit).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The legacy tags the plan copies.
    pub fn legacy_tags(&self) -> impl Iterator<Item = &str> {
        self.legacy.iter().map(|(t, _)| t.as_str())
    }

    /// Checks that every blob of the plan is in `from` (manifests were read already): for a
    /// source that must be complete before anything is written, such as an archive to import.
    pub async fn check_blobs(&self, from: &Repository) -> Result<(), RegistryError> {
        let concurrency = from.concurrency().max(1);
        stream::iter(self.blobs.values())
            .map(|b| async move {
                if from.blob_exists(&b.digest).await? {
                    Ok(())
                } else {
                    Err(RegistryError::NotFound {
                        what: format!("blob {} in {}", b.digest, from.describe()),
                    })
                }
            })
            .buffer_unordered(concurrency)
            .try_collect::<Vec<()>>()
            .await
            .map(drop)
    }
}

/// Manifests read ahead of the walk that records them, by digest.
type Prefetched = HashMap<Digest, Result<FetchedManifest, RegistryError>>;

/// Reads `digests` from `from`, several at a time.
async fn prefetch(from: &Repository, digests: Vec<Digest>) -> Prefetched {
    stream::iter(digests)
        .map(|d| async move {
            let fetched = from.get_manifest(&d).await;
            (d, fetched)
        })
        .buffer_unordered(from.concurrency().max(1))
        .collect()
        .await
}

/// What one subject has: its referrers and its legacy tags (tag, manifest digest).
type Found = (Digest, Vec<Descriptor>, Vec<(String, Digest)>);

/// The legacy tags of `subject` that exist in `from`, with the manifest each points at.
async fn legacy_tags(
    from: &Repository,
    subject: &Digest,
) -> Result<Vec<(String, Digest)>, RegistryError> {
    let tags = LEGACY_SUFFIXES.map(|s| format!("{}.{s}", subject.fallback_tag()));
    let found = futures_util::future::join_all(tags.iter().map(|tag| from.resolve_tag(tag))).await;
    let mut out = Vec::new();
    for (tag, digest) in tags.into_iter().zip(found) {
        if let Some(digest) = digest? {
            out.push((tag, digest));
        }
    }
    Ok(out)
}

/// The media type to push a manifest with: the one it declares, else the one it was served
/// with when that is a manifest type, else what its shape says.
fn media_type_of(parsed: &AnyManifest, bytes: &[u8], served: &str) -> String {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Declared {
        media_type: Option<String>,
    }
    if let Ok(Declared {
        media_type: Some(declared),
    }) = serde_json::from_slice(bytes)
    {
        return declared;
    }
    if oci::MANIFEST_MEDIA_TYPES.contains(&served) {
        return served.to_string();
    }
    parsed.media_type().to_string()
}

/// Layers that registries do not serve (Windows base layers): skipped, as `skopeo copy` does.
fn is_non_distributable(media_type: &str) -> bool {
    media_type.contains(".foreign.") || media_type.contains("nondistributable")
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
            self.bytes.fetch_add(object.size, Ordering::Relaxed);
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
    progress.planned(
        (plan.objects() + tags.len()) as u64,
        plan.blobs.values().map(|b| b.size).sum(),
    );

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
            put_tag(to, tag, digest, node, progress, &totals).await?;
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
    // of numbers rather than a borrow.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let counted: ByteStream = Box::pin(body.inspect(move |chunk| {
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
                    &digest.to_string(),
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
    to.put_manifest(tag, &node.media_type, &node.bytes, Precondition::None)
        .await?;
    totals.record(progress, &object, Outcome::Copied);
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

    #[test]
    fn declared_media_type_wins() {
        let docker = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"a","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
        let parsed = AnyManifest::parse("text/plain", docker).unwrap();
        assert_eq!(
            media_type_of(&parsed, docker, "text/plain"),
            oci::DOCKER_MANIFEST
        );
        let bare = br#"{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
        let parsed = AnyManifest::parse("", bare).unwrap();
        assert_eq!(media_type_of(&parsed, bare, ""), oci::OCI_MANIFEST);
        assert_eq!(
            media_type_of(&parsed, bare, oci::DOCKER_MANIFEST),
            oci::DOCKER_MANIFEST
        );
    }

    #[test]
    fn foreign_layers_are_not_copied() {
        assert!(is_non_distributable(
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
        ));
        assert!(is_non_distributable(
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        ));
        assert!(!is_non_distributable(
            "application/vnd.oci.image.layer.v1.tar+gzip"
        ));
    }
}
