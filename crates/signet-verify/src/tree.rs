//! The referrers graph of an image, nested referrers included, like `oras discover`.

use std::collections::{BTreeSet, HashMap, HashSet};

use futures_util::future::BoxFuture;
use futures_util::stream::{self, StreamExt as _, TryStreamExt as _};
use serde::Serialize;
use signet_core::binauthz;
use signet_core::digest::Digest;
use signet_core::oci::{self, AnyManifest, Descriptor};
use signet_core::reference::PinnedRef;
use signet_registry::{FetchedManifest, RegistryError, Repository};

/// Deepest nesting shown (a signature on an SBOM attestation on an image is depth 2).
pub const MAX_DEPTH: usize = 8;

/// Most listed referrer entries the walk looks at, in all: each becomes a node, a node marked
/// as already shown, or a note saying why it was left out, and costs at most one manifest
/// read. Fallback indexes listing each other (issue 12, finding 3) made the tree grow as
/// 8^depth; 4,096 still shows an image with the 1,000 referrers the design plans for.
pub const MAX_NODES: usize = 4096;

/// Most notes about left-out referrers kept; the rest are counted in one last note.
const MAX_NOTES: usize = 64;

/// One referrer and what refers to it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// The referrer manifest's digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its artifact type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The predicate type its annotations claim, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
    /// For a Binary Authorization attestation: its note and the key ids its signatures name
    /// (from the referrer's annotations, unverified).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binauthz: Option<BinAuthzInfo>,
    /// Its size.
    pub size: u64,
    /// This manifest is shown earlier in the tree, with its referrers; not expanded here.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub already_shown: bool,
    /// Referrers of this referrer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub referrers: Vec<Node>,
}

/// What the annotations of a Binary Authorization referrer say (unverified).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BinAuthzInfo {
    /// The Container Analysis note (`projects/P/notes/N`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The occurrence's name, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurrence: Option<String>,
    /// The `publicKeyId`s of its signatures.
    pub key_ids: Vec<String>,
}

impl BinAuthzInfo {
    fn from_annotations(annotations: &std::collections::BTreeMap<String, String>) -> Self {
        BinAuthzInfo {
            note: annotations.get(binauthz::NOTE_ANNOTATION).cloned(),
            occurrence: annotations.get(binauthz::OCCURRENCE_ANNOTATION).cloned(),
            key_ids: annotations
                .get(binauthz::KEY_IDS_ANNOTATION)
                .map(|ids| {
                    ids.split(',')
                        .filter(|id| !id.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// A legacy cosign tag (`.sig`, `.att`, `.sbom`) and its layers.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LegacyTag {
    /// The tag.
    pub tag: String,
    /// The manifest digest.
    pub digest: Digest,
    /// One entry per layer (one signature or attestation each).
    pub layers: Vec<LegacyLayer>,
}

/// A layer of a legacy tag.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LegacyLayer {
    /// The layer digest.
    pub digest: Digest,
    /// The layer media type.
    pub media_type: String,
    /// The predicate type, for attestations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
}

/// The graph.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Tree {
    /// The image, pinned.
    pub image: String,
    /// Its digest.
    pub digest: Digest,
    /// Its referrers, nested.
    pub referrers: Vec<Node>,
    /// cosign's legacy tags for this digest.
    pub legacy: Vec<LegacyTag>,
    /// Whether the tree was cut at [`MAX_DEPTH`] or [`MAX_NODES`]: there is more than shown.
    pub truncated: bool,
    /// Why listed referrers are not shown (missing, naming another subject, past a bound),
    /// one sentence each.
    pub notes: Vec<String>,
    /// For an index: each platform manifest it lists, with its own referrers and legacy tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformTree>,
}

/// One platform manifest of an index, and what refers to it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PlatformTree {
    /// `os/architecture[/variant]`.
    pub platform: String,
    /// The platform manifest's digest.
    pub digest: Digest,
    /// Its referrers, nested.
    pub referrers: Vec<Node>,
    /// cosign's legacy tags for it.
    pub legacy: Vec<LegacyTag>,
}

/// Builds the referrers graph of `image`.
///
/// A listed referrer is shown only if its manifest names, as its `subject`, the manifest it is
/// listed for: anyone who can push a tag can write a fallback index listing anything, and
/// indexes listing each other would otherwise make a graph with cycles (the mirror applies the
/// same rule). A manifest is expanded once; a later listing of it is marked as already shown.
/// Depth and the number of entries looked at are bounded, and the tree says when it was cut.
pub async fn build(repo: &Repository, image: &PinnedRef) -> Result<Tree, RegistryError> {
    let mut tree = build_one(repo, image).await?;
    let fetched = repo.get_manifest(image.digest()).await?;
    if let Ok(AnyManifest::Index(index)) = AnyManifest::parse(&fetched.media_type, &fetched.bytes) {
        for child in index.manifests.into_iter().take(MAX_PLATFORMS) {
            if child.is_attestation_manifest() {
                continue;
            }
            let pinned = image.to_image_ref().with_digest(child.digest.clone());
            let sub = build_one(repo, &pinned).await?;
            tree.truncated |= sub.truncated;
            tree.notes.extend(sub.notes);
            tree.platforms.push(PlatformTree {
                platform: crate::platforms::platform_name(&child),
                digest: child.digest,
                referrers: sub.referrers,
                legacy: sub.legacy,
            });
        }
    }
    Ok(tree)
}

/// Most platform manifests of an index shown.
const MAX_PLATFORMS: usize = 64;

async fn build_one(repo: &Repository, image: &PinnedRef) -> Result<Tree, RegistryError> {
    let digest = image.digest().clone();
    let tags = oci::LEGACY_TAG_SUFFIXES.map(|s| format!("{}.{s}", digest.fallback_tag()));
    let (walked, legacy) = futures_util::future::join(
        walk(repo, &digest, Bounds::default()),
        stream::iter(tags)
            .map(|tag| async move { (repo.get_manifest_by_tag(&tag).await, tag) })
            .buffered(3)
            .collect::<Vec<_>>(),
    )
    .await;
    let mut legacy_tags = Vec::new();
    for (fetched, tag) in legacy {
        let Some(fetched) = fetched? else { continue };
        let layers = match AnyManifest::parse(&fetched.media_type, &fetched.bytes) {
            Ok(AnyManifest::Image(m)) => m
                .layers
                .into_iter()
                .map(|l| LegacyLayer {
                    predicate_type: l
                        .annotations
                        .get(oci::LEGACY_PREDICATE_TYPE_ANNOTATION)
                        .cloned(),
                    digest: l.digest,
                    media_type: l.media_type,
                })
                .collect(),
            _ => Vec::new(),
        };
        legacy_tags.push(LegacyTag {
            tag,
            digest: fetched.digest,
            layers,
        });
    }
    let walked = walked?;
    Ok(Tree {
        image: image.to_string(),
        digest,
        referrers: walked.referrers,
        legacy: legacy_tags,
        truncated: walked.truncated,
        notes: walked.notes,
        platforms: Vec::new(),
    })
}

/// Where the walk reads from: a [`Repository`], or a map in the unit tests.
trait Source: Sync {
    fn referrers<'a>(
        &'a self,
        subject: &'a Digest,
    ) -> BoxFuture<'a, Result<Vec<Descriptor>, RegistryError>>;
    fn manifest<'a>(
        &'a self,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<FetchedManifest, RegistryError>>;
    fn concurrency(&self) -> usize;
}

impl Source for Repository {
    fn referrers<'a>(
        &'a self,
        subject: &'a Digest,
    ) -> BoxFuture<'a, Result<Vec<Descriptor>, RegistryError>> {
        Box::pin(async move {
            Ok(Repository::referrers(self, subject, None)
                .await?
                .descriptors)
        })
    }

    fn manifest<'a>(
        &'a self,
        digest: &'a Digest,
    ) -> BoxFuture<'a, Result<FetchedManifest, RegistryError>> {
        Box::pin(self.get_manifest(digest))
    }

    fn concurrency(&self) -> usize {
        Repository::concurrency(self).max(1)
    }
}

#[derive(Debug, Clone, Copy)]
struct Bounds {
    depth: usize,
    nodes: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            depth: MAX_DEPTH,
            nodes: MAX_NODES,
        }
    }
}

#[derive(Debug, Default)]
struct Walked {
    referrers: Vec<Node>,
    truncated: bool,
    notes: Vec<String>,
}

/// A node while the tree is built breadth-first: children by index into the arena.
struct Flat {
    node: Node,
    children: Vec<usize>,
}

/// What the manifest of a listed referrer names as its subject.
enum Named {
    Subject(Digest),
    Nothing,
    /// It could not be read as a manifest (missing, wrong digest, too large, malformed).
    Unreadable(String),
}

/// Walks the referrers of `root` breadth-first, a level at a time, so that the bound on
/// entries keeps the shallow part of the tree and each level's listings and reads run
/// concurrently.
async fn walk<S: Source>(
    source: &S,
    root: &Digest,
    bounds: Bounds,
) -> Result<Walked, RegistryError> {
    let concurrency = source.concurrency();
    let mut arena: Vec<Flat> = Vec::new();
    let mut top: Vec<usize> = Vec::new();
    let mut shown: HashSet<Digest> = HashSet::from([root.clone()]);
    let mut named: HashMap<Digest, Named> = HashMap::new();
    let mut notes = Notes::default();
    let mut truncated = false;
    let mut looked_at = 0usize;
    // Subjects to list at this level: (their node, or None for the image; digest).
    let mut frontier: Vec<(Option<usize>, Digest)> = vec![(None, root.clone())];

    for depth in 0..=bounds.depth {
        if frontier.is_empty() {
            break;
        }
        // Listed as they come, in order, and no further than the bounds: a level may list far
        // more than the tree will show.
        let mut listings = stream::iter(std::mem::take(&mut frontier))
            .map(|(parent, subject)| async move {
                let listed = source.referrers(&subject).await;
                (parent, subject, listed)
            })
            .buffered(concurrency);
        let mut entries: Vec<(Option<usize>, Digest, Descriptor)> = Vec::new();
        while let Some((parent, subject, listed)) = listings.next().await {
            let mut listed = listed?;
            if listed.is_empty() {
                continue;
            }
            if depth == bounds.depth {
                truncated = true;
                notes.always(format!(
                    "tree cut at depth {}: referrers nested deeper are not shown",
                    bounds.depth
                ));
                break;
            }
            listed.sort_by(|a, b| {
                (a.artifact_type.as_deref(), &a.digest)
                    .cmp(&(b.artifact_type.as_deref(), &b.digest))
            });
            let room = bounds.nodes.saturating_sub(looked_at);
            let full = listed.len() > room;
            listed.truncate(room);
            looked_at += listed.len();
            entries.extend(listed.into_iter().map(|d| (parent, subject.clone(), d)));
            if full {
                truncated = true;
                notes.always(format!(
                    "tree cut after {} listed referrers: the rest are not shown",
                    bounds.nodes
                ));
                break;
            }
        }
        drop(listings);

        // Each manifest is read once, whatever it is listed for.
        let to_read: Vec<Digest> = entries
            .iter()
            .map(|(_, _, d)| &d.digest)
            .filter(|d| !named.contains_key(*d))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .cloned()
            .collect();
        let read: Vec<(Digest, Named)> = stream::iter(to_read)
            .map(|digest| async move {
                let what = match source.manifest(&digest).await {
                    Ok(m) => match AnyManifest::parse(&m.media_type, &m.bytes) {
                        Ok(m) => m
                            .subject()
                            .map_or(Named::Nothing, |s| Named::Subject(s.digest.clone())),
                        Err(e) => Named::Unreadable(e.to_string()),
                    },
                    Err(e) if left_out(&e) => Named::Unreadable(e.to_string()),
                    Err(e) => return Err(e),
                };
                Ok((digest, what))
            })
            .buffered(concurrency)
            .try_collect()
            .await?;
        named.extend(read);

        for (parent, subject, d) in entries {
            match named.get(&d.digest) {
                Some(Named::Subject(s)) if *s == subject => {}
                Some(Named::Subject(s)) => {
                    notes.push(format!(
                        "referrer {} is listed for {subject} but names {s} as its subject; \
                         not shown there",
                        d.digest
                    ));
                    continue;
                }
                Some(Named::Nothing) => {
                    notes.push(format!(
                        "referrer {} is listed for {subject} but names no subject; not shown",
                        d.digest
                    ));
                    continue;
                }
                Some(Named::Unreadable(why)) => {
                    notes.push(format!(
                        "referrer {} of {subject} cannot be read ({why}); not shown",
                        d.digest
                    ));
                    continue;
                }
                // Every entry's manifest was read above; fail closed all the same.
                None => {
                    notes.push(format!(
                        "referrer {} of {subject} was not read; not shown",
                        d.digest
                    ));
                    continue;
                }
            }
            let already_shown = !shown.insert(d.digest.clone());
            let index = arena.len();
            arena.push(Flat {
                node: Node {
                    predicate_type: d
                        .annotations
                        .get(oci::BUNDLE_PREDICATE_TYPE_ANNOTATION)
                        .cloned(),
                    binauthz: (d.artifact_type.as_deref() == Some(binauthz::ARTIFACT_TYPE))
                        .then(|| BinAuthzInfo::from_annotations(&d.annotations)),
                    digest: d.digest.clone(),
                    media_type: d.media_type,
                    artifact_type: d.artifact_type,
                    size: d.size,
                    already_shown,
                    referrers: Vec::new(),
                },
                children: Vec::new(),
            });
            match parent {
                Some(p) => arena[p].children.push(index),
                None => top.push(index),
            }
            if !already_shown {
                frontier.push((Some(index), d.digest));
            }
        }
    }
    Ok(Walked {
        referrers: assemble(&mut arena, &top),
        truncated,
        notes: notes.finish(),
    })
}

/// Errors that belong to one listed referrer (anyone who can push a tag can list garbage), as
/// opposed to the registry failing: the referrer is left out with a note.
fn left_out(e: &RegistryError) -> bool {
    matches!(
        e,
        RegistryError::NotFound { .. }
            | RegistryError::Malformed { .. }
            | RegistryError::DigestMismatch { .. }
            | RegistryError::TooLarge { .. }
    )
}

/// The nested nodes of `indexes`, taken out of the arena. Recursion depth is at most the walk's
/// depth bound.
fn assemble(arena: &mut [Flat], indexes: &[usize]) -> Vec<Node> {
    indexes
        .iter()
        .map(|&i| {
            let children = std::mem::take(&mut arena[i].children);
            let mut node = arena[i].node.clone();
            node.referrers = assemble(arena, &children);
            node
        })
        .collect()
}

/// Notes about left-out referrers, at most [`MAX_NOTES`] of them plus a count of the rest;
/// notes about the tree being cut are always kept.
#[derive(Default)]
struct Notes {
    kept: Vec<String>,
    cut: Vec<String>,
    more: usize,
}

impl Notes {
    fn push(&mut self, note: String) {
        if self.kept.len() < MAX_NOTES {
            self.kept.push(note);
        } else {
            self.more += 1;
        }
    }

    fn always(&mut self, note: String) {
        self.cut.push(note);
    }

    fn finish(mut self) -> Vec<String> {
        if self.more > 0 {
            self.kept.push(format!(
                "{} more listed referrers are not shown for the same kinds of reasons",
                self.more
            ));
        }
        self.kept.extend(self.cut);
        self.kept
    }
}

impl Tree {
    /// The tree as text, one line per node.
    pub fn to_text(&self) -> String {
        let mut out = format!("{}\n", self.image);
        let total = self.referrers.len() + self.legacy.len();
        let mut i = 0;
        for node in &self.referrers {
            i += 1;
            write_node(&mut out, node, "", i == total);
        }
        for tag in &self.legacy {
            i += 1;
            let last = i == total;
            out.push_str(&format!(
                "{}{} (legacy cosign tag) {}\n",
                if last { "└── " } else { "├── " },
                tag.tag,
                tag.digest
            ));
            let prefix = if last { "    " } else { "│   " };
            for (j, layer) in tag.layers.iter().enumerate() {
                let branch = if j + 1 == tag.layers.len() {
                    "└── "
                } else {
                    "├── "
                };
                out.push_str(&format!(
                    "{prefix}{branch}{} {}",
                    layer.media_type, layer.digest
                ));
                if let Some(p) = &layer.predicate_type {
                    out.push_str(&format!(" [{p}]"));
                }
                out.push('\n');
            }
        }
        if total == 0 {
            out.push_str("└── (no referrers)\n");
        }
        for platform in &self.platforms {
            out.push_str(&format!(
                "platform {} {}\n",
                platform.platform, platform.digest
            ));
            let count = platform.referrers.len() + platform.legacy.len();
            for (j, node) in platform.referrers.iter().enumerate() {
                write_node(&mut out, node, "", j + 1 == count);
            }
            for (j, tag) in platform.legacy.iter().enumerate() {
                let last = platform.referrers.len() + j + 1 == count;
                out.push_str(&format!(
                    "{}{} (legacy cosign tag) {}\n",
                    if last { "└── " } else { "├── " },
                    tag.tag,
                    tag.digest
                ));
            }
            if count == 0 {
                out.push_str("└── (no referrers)\n");
            }
        }
        if self.truncated {
            out.push_str("(tree cut: there is more than shown; see the notes)\n");
        }
        for note in &self.notes {
            out.push_str(&format!("note: {note}\n"));
        }
        out
    }
}

fn write_node(out: &mut String, node: &Node, prefix: &str, last: bool) {
    out.push_str(prefix);
    out.push_str(if last { "└── " } else { "├── " });
    out.push_str(node.artifact_type.as_deref().unwrap_or(&node.media_type));
    out.push(' ');
    out.push_str(&node.digest.to_string());
    if let Some(p) = &node.predicate_type {
        out.push_str(&format!(" [{p}]"));
    }
    if let Some(info) = &node.binauthz {
        out.push_str(&format!(
            " [binauthz note {}, key {}]",
            info.note.as_deref().unwrap_or("(none)"),
            info.key_ids.join(", ")
        ));
    }
    if node.already_shown {
        out.push_str(" (already shown above, not expanded again)");
    }
    out.push('\n');
    let child_prefix = format!("{prefix}{}", if last { "    " } else { "│   " });
    for (i, child) in node.referrers.iter().enumerate() {
        write_node(out, child, &child_prefix, i + 1 == node.referrers.len());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    /// Listings and manifests held in memory, counting manifest reads.
    #[derive(Default)]
    struct Fake {
        listings: HashMap<Digest, Vec<Descriptor>>,
        manifests: HashMap<Digest, Vec<u8>>,
        reads: std::sync::atomic::AtomicUsize,
    }

    impl Fake {
        /// A referrer manifest naming `subject` (or none), made distinct by `n`; returns its
        /// descriptor as a listing would carry it.
        fn referrer(&mut self, subject: Option<&Digest>, n: usize) -> Descriptor {
            let subject = subject.map(
                |s| serde_json::json!({"mediaType": oci::OCI_MANIFEST, "digest": s, "size": 1}),
            );
            let mut manifest = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": oci::OCI_MANIFEST,
                "artifactType": "application/example",
                "config": Descriptor::of(oci::EMPTY_JSON, oci::EMPTY_JSON_BYTES),
                "layers": [],
                "annotations": {"n": n.to_string()},
            });
            if let Some(subject) = subject {
                manifest["subject"] = subject;
            }
            let bytes = serde_json::to_vec(&manifest).unwrap();
            let mut d = Descriptor::of(oci::OCI_MANIFEST, &bytes);
            d.artifact_type = Some("application/example".into());
            self.manifests.insert(d.digest.clone(), bytes);
            d
        }

        fn list(&mut self, subject: &Digest, descriptors: &[Descriptor]) {
            self.listings
                .entry(subject.clone())
                .or_default()
                .extend(descriptors.iter().cloned());
        }

        fn walk(&self, root: &Digest, bounds: Bounds) -> Walked {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(walk(self, root, bounds))
                .unwrap()
        }
    }

    impl Source for Fake {
        fn referrers<'a>(
            &'a self,
            subject: &'a Digest,
        ) -> BoxFuture<'a, Result<Vec<Descriptor>, RegistryError>> {
            let listed = self.listings.get(subject).cloned().unwrap_or_default();
            Box::pin(async move { Ok(listed) })
        }

        fn manifest<'a>(
            &'a self,
            digest: &'a Digest,
        ) -> BoxFuture<'a, Result<FetchedManifest, RegistryError>> {
            self.reads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let found = self.manifests.get(digest).cloned();
            Box::pin(async move {
                match found {
                    Some(bytes) => Ok(FetchedManifest {
                        digest: digest.clone(),
                        media_type: oci::OCI_MANIFEST.into(),
                        bytes,
                        etag: None,
                    }),
                    None => Err(RegistryError::NotFound {
                        what: format!("manifest {digest}"),
                    }),
                }
            })
        }

        fn concurrency(&self) -> usize {
            4
        }
    }

    fn count(nodes: &[Node]) -> usize {
        nodes.iter().map(|n| 1 + count(&n.referrers)).sum()
    }

    fn image() -> Digest {
        Digest::sha256_of(b"image")
    }

    /// Issue 12, finding 3: eight referrers whose fallback indexes each list all eight made
    /// the walk grow as 8^depth. Each names the image as its subject, so under another
    /// referrer each is left out, and the tree is the eight, once.
    #[test]
    fn tree_of_fallback_indexes_listing_each_other_shows_each_referrer_once() {
        let mut fake = Fake::default();
        let image = image();
        let all: Vec<Descriptor> = (0..8).map(|n| fake.referrer(Some(&image), n)).collect();
        fake.list(&image, &all);
        for d in &all {
            fake.list(&d.digest, &all);
        }
        let walked = fake.walk(&image, Bounds::default());
        assert_eq!(walked.referrers.len(), 8);
        assert_eq!(count(&walked.referrers), 8, "{:#?}", walked.referrers);
        assert!(!walked.truncated);
        assert_eq!(walked.notes.len(), 64, "{:#?}", walked.notes);
        assert!(
            walked.notes[0].contains(&format!("names {image} as its subject; not shown there")),
            "{}",
            walked.notes[0]
        );
        // Each manifest read once, however often it is listed.
        assert_eq!(fake.reads.load(std::sync::atomic::Ordering::Relaxed), 8);
    }

    #[test]
    fn tree_leaves_out_a_listed_referrer_that_names_no_or_another_subject_or_is_missing() {
        let mut fake = Fake::default();
        let image = image();
        let other = Digest::sha256_of(b"other image");
        let good = fake.referrer(Some(&image), 0);
        let elsewhere = fake.referrer(Some(&other), 1);
        let nothing = fake.referrer(None, 2);
        let mut missing = good.clone();
        missing.digest = Digest::sha256_of(b"not stored");
        fake.list(&image, &[good.clone(), elsewhere, nothing, missing]);
        let walked = fake.walk(&image, Bounds::default());
        let shown: Vec<&Digest> = walked.referrers.iter().map(|n| &n.digest).collect();
        assert_eq!(shown, [&good.digest]);
        let notes = walked.notes.join("\n");
        assert!(
            notes.contains(&format!("names {other} as its subject")),
            "{notes}"
        );
        assert!(notes.contains("names no subject"), "{notes}");
        assert!(notes.contains("cannot be read"), "{notes}");
        assert!(!walked.truncated);
    }

    #[test]
    fn tree_marks_a_manifest_listed_twice_as_already_shown_and_does_not_expand_it_again() {
        let mut fake = Fake::default();
        let image = image();
        let attestation = fake.referrer(Some(&image), 0);
        let signature = fake.referrer(Some(&attestation.digest), 1);
        fake.list(&image, &[attestation.clone(), attestation.clone()]);
        fake.list(&attestation.digest, &[signature]);
        let walked = fake.walk(&image, Bounds::default());
        let flags: Vec<(bool, usize)> = walked
            .referrers
            .iter()
            .map(|n| (n.already_shown, n.referrers.len()))
            .collect();
        assert_eq!(flags, [(false, 1), (true, 0)]);
        let text = Tree {
            image: "example/app@sha256:…".into(),
            digest: image,
            referrers: walked.referrers,
            legacy: Vec::new(),
            truncated: walked.truncated,
            notes: walked.notes,
            platforms: Vec::new(),
        }
        .to_text();
        assert!(
            text.contains("(already shown above, not expanded again)"),
            "{text}"
        );
    }

    /// A chain deeper than the bound: cut, and saying so in text and JSON.
    #[test]
    fn tree_is_cut_at_the_depth_bound_and_says_so() {
        let mut fake = Fake::default();
        let image = image();
        let mut subject = image.clone();
        for n in 0..5 {
            let d = fake.referrer(Some(&subject), n);
            fake.list(&subject, std::slice::from_ref(&d));
            subject = d.digest;
        }
        let walked = fake.walk(
            &image,
            Bounds {
                depth: 3,
                nodes: 100,
            },
        );
        assert_eq!(count(&walked.referrers), 3);
        assert!(walked.truncated);
        assert_eq!(
            walked.notes,
            ["tree cut at depth 3: referrers nested deeper are not shown"]
        );
        // Exactly as deep as the bound: nothing cut.
        let walked = fake.walk(
            &image,
            Bounds {
                depth: 5,
                nodes: 100,
            },
        );
        assert_eq!(count(&walked.referrers), 5);
        assert!(!walked.truncated, "{:?}", walked.notes);
    }

    #[test]
    fn tree_is_cut_at_the_node_bound_keeping_the_shallow_levels() {
        let mut fake = Fake::default();
        let image = image();
        let top: Vec<Descriptor> = (0..4).map(|n| fake.referrer(Some(&image), n)).collect();
        fake.list(&image, &top);
        for (i, d) in top.iter().enumerate() {
            let children: Vec<Descriptor> = (0..4)
                .map(|n| fake.referrer(Some(&d.digest), 100 + 10 * i + n))
                .collect();
            fake.list(&d.digest, &children);
        }
        let walked = fake.walk(
            &image,
            Bounds {
                depth: 8,
                nodes: 10,
            },
        );
        assert_eq!(walked.referrers.len(), 4);
        assert_eq!(count(&walked.referrers), 10);
        assert!(walked.truncated);
        assert_eq!(
            walked.notes,
            ["tree cut after 10 listed referrers: the rest are not shown"]
        );
        let tree = Tree {
            image: "example/app".into(),
            digest: image,
            referrers: walked.referrers,
            legacy: Vec::new(),
            truncated: walked.truncated,
            notes: walked.notes,
            platforms: Vec::new(),
        };
        let json = serde_json::to_value(&tree).unwrap();
        assert_eq!(json["truncated"], true);
        assert_eq!(
            json["notes"][0],
            "tree cut after 10 listed referrers: the rest are not shown"
        );
        let text = tree.to_text();
        assert!(
            text.contains("(tree cut: there is more than shown"),
            "{text}"
        );
        assert!(
            text.contains("note: tree cut after 10 listed referrers"),
            "{text}"
        );
    }
}
