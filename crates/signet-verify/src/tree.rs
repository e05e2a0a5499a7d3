//! The referrers graph of an image, nested referrers included, like `oras discover`.

use futures_util::future::BoxFuture;
use futures_util::stream::{self, StreamExt as _};
use serde::Serialize;
use signet_core::digest::Digest;
use signet_core::oci::{self, AnyManifest, Descriptor};
use signet_core::reference::PinnedRef;
use signet_registry::{RegistryError, Repository};

/// Deepest nesting followed (a signature on an SBOM attestation on an image is depth 2).
pub const MAX_DEPTH: usize = 8;

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
    /// Its size.
    pub size: u64,
    /// Referrers of this referrer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub referrers: Vec<Node>,
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
}

/// Builds the referrers graph of `image`.
pub async fn build(repo: &Repository, image: &PinnedRef) -> Result<Tree, RegistryError> {
    let digest = image.digest().clone();
    let tags = oci::LEGACY_TAG_SUFFIXES.map(|s| format!("{}.{s}", digest.fallback_tag()));
    let (referrers, legacy) = futures_util::future::join(
        children(repo, digest.clone(), 0),
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
    Ok(Tree {
        image: image.to_string(),
        digest,
        referrers: referrers?,
        legacy: legacy_tags,
    })
}

fn children(
    repo: &Repository,
    subject: Digest,
    depth: usize,
) -> BoxFuture<'_, Result<Vec<Node>, RegistryError>> {
    Box::pin(async move {
        if depth >= MAX_DEPTH {
            return Ok(Vec::new());
        }
        let found = repo.referrers(&subject, None).await?;
        let concurrency = repo.concurrency();
        let nodes: Vec<Result<Node, RegistryError>> = stream::iter(found.descriptors)
            .map(|d: Descriptor| async move {
                let referrers = children(repo, d.digest.clone(), depth + 1).await?;
                Ok(Node {
                    predicate_type: d
                        .annotations
                        .get(oci::BUNDLE_PREDICATE_TYPE_ANNOTATION)
                        .cloned(),
                    digest: d.digest,
                    media_type: d.media_type,
                    artifact_type: d.artifact_type,
                    size: d.size,
                    referrers,
                })
            })
            .buffered(concurrency)
            .collect()
            .await;
        let mut nodes = nodes.into_iter().collect::<Result<Vec<_>, _>>()?;
        nodes.sort_by(|a, b| {
            (a.artifact_type.as_deref(), &a.digest).cmp(&(b.artifact_type.as_deref(), &b.digest))
        });
        Ok(nodes)
    })
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
    out.push('\n');
    let child_prefix = format!("{prefix}{}", if last { "    " } else { "│   " });
    for (i, child) in node.referrers.iter().enumerate() {
        write_node(out, child, &child_prefix, i + 1 == node.referrers.len());
    }
}
