//! The explain view: why an image typed into the form is allowed or denied.
//!
//! The verdict is the daemon's own ([`App::verdict`], with the decision, evidence and tag
//! caches admission uses), so it is what an admission review or `/v1/verify` would get now. The
//! details around it (which attestor accepted or rejected each piece of evidence, and the
//! referrers tree) are read only when the verdict itself went to the registry: an image outside
//! the `registryAllowlist`, exempt, or under a rule that needs no evidence makes no registry
//! request here either. The input is bounded and parsed as `/v1/verify` parses it; registry
//! connections go through the daemon's client and so its egress rules (no loopback, link-local
//! or metadata host unless the policy names it); the work holds one of the daemon's verification
//! slots and ends at the daemon's deadline; and at most [`MAX_EXPLAINING`] explanations run at
//! once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use moka::future::Cache;
use serde::Deserialize;
use signet_core::digest::Digest;
use signet_core::reference::{ImageRef, PinnedRef};
use signet_policy::evaluate::Need;
use signet_registry::Repository;
use signet_verify::AdmissionContext;
use signet_verify::tree::{Node, Tree};
use tokio::time::Instant;

use super::pages::{
    AttestorVerdict, EvidenceRow, ExplainForm, ExplainPage, Explained, Mark, TreeRow,
};
use crate::app::{App, Loaded, Tags, Verdict};
use crate::check::truncate;

/// Longest image reference accepted, in bytes: a repository name has at most 255 characters and
/// a tag 128; with a digest and some room, 512.
pub(crate) const MAX_IMAGE: usize = 512;
/// Longest namespace (a DNS label).
const MAX_NAMESPACE: usize = 63;
/// Longest service account name (a DNS subdomain).
const MAX_SERVICE_ACCOUNT: usize = 253;
/// Most explanations running at once; more are refused with 503, not queued.
const MAX_EXPLAINING: usize = 2;
/// Most referrers trees kept (they are built for explanations only).
const MAX_TREES: u64 = 64;

/// The query of `/explain`: the form's fields.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ExplainQuery {
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default, rename = "serviceAccount")]
    service_account: Option<String>,
}

/// What the explain view keeps: trees by repository and digest, and its slots.
pub(crate) struct Explain {
    trees: Cache<(String, Digest), Arc<Tree>>,
    slots: tokio::sync::Semaphore,
}

impl Explain {
    /// Trees are kept as long as the evidence they go with.
    pub(crate) fn new(ttl: Duration) -> Explain {
        Explain {
            trees: Cache::builder()
                .max_capacity(MAX_TREES)
                .time_to_live(ttl)
                .build(),
            slots: tokio::sync::Semaphore::new(MAX_EXPLAINING),
        }
    }

    /// The page for `query`: the form alone, the form with why the input is refused, or the
    /// explanation.
    pub(crate) async fn page(&self, app: &App, query: ExplainQuery) -> (StatusCode, ExplainPage) {
        let form = ExplainForm {
            // Echoed into the form, bounded (the input may be anything up to the URI limit).
            image: truncate(
                query.image.as_deref().unwrap_or_default().trim(),
                MAX_IMAGE + 1,
            ),
            namespace: truncate(
                query.namespace.as_deref().unwrap_or_default().trim(),
                MAX_SERVICE_ACCOUNT + 1,
            ),
            service_account: truncate(
                query.service_account.as_deref().unwrap_or_default().trim(),
                MAX_SERVICE_ACCOUNT + 1,
            ),
        };
        let mut page = ExplainPage {
            form,
            error: None,
            explained: None,
            cluster: app.cluster.clone(),
        };
        let raw_image = query.image.as_deref().unwrap_or_default().trim();
        if raw_image.is_empty() {
            return (StatusCode::OK, page);
        }
        let (image, ctx) = match parse(app, &query) {
            Ok(parsed) => parsed,
            Err(why) => {
                page.error = Some(why);
                return (StatusCode::BAD_REQUEST, page);
            }
        };
        let Ok(_slot) = self.slots.try_acquire() else {
            page.error = Some(format!(
                "{MAX_EXPLAINING} explanations are already running; retry in a moment"
            ));
            return (StatusCode::SERVICE_UNAVAILABLE, page);
        };
        page.explained = Some(self.explain(app, &image, &ctx).await);
        (StatusCode::OK, page)
    }

    async fn explain(&self, app: &App, image: &ImageRef, ctx: &AdmissionContext) -> Explained {
        let deadline = Instant::now() + app.deadline;
        let loaded = app.policy();
        let chosen = loaded.policy.rule_for(ctx);
        let needs_evidence = matches!(loaded.policy.needs(image, ctx), Need::Attestors(_));
        let mut out = Explained::new(image.to_string());
        out.rule = match chosen.key {
            Some(key) => format!("{} {key}", chosen.label),
            None => chosen.label.to_string(),
        };
        out.rule_summary = chosen.rule.summary();
        let verdict =
            tokio::time::timeout_at(deadline, app.verdict(&loaded, image, ctx, Tags::Resolve))
                .await
                .unwrap_or_else(|_| Verdict::Failed(deadline_passed(app)));
        let decision = match verdict {
            Verdict::Decided(decision) => decision,
            Verdict::Failed(reason) => {
                out.set_error(format!("cannot verify {image}: {reason}"));
                return out;
            }
            // Tags are resolved here, as by the verify API; kept for completeness.
            Verdict::TagOnly { .. } => {
                out.set_error(format!("{image} is not pinned to a digest"));
                return out;
            }
        };
        out.set_decision(&decision);
        if !needs_evidence {
            out.notes.push(
                "decided without the registry (registry allowlist, exemption, or a rule that \
                 needs no evidence): there is no evidence to show"
                    .into(),
            );
            return out;
        }
        let Some(digest) = decision.digest.clone() else {
            return out;
        };
        if image.digest().is_none() {
            out.notes.push(format!(
                "{image} names a tag, resolved here to {digest}; the validating webhook denies \
                 tag-only images under this rule unless signet's mutating webhook pins them \
                 first"
            ));
        }
        let pinned = image.with_digest(digest);
        match tokio::time::timeout_at(deadline, self.details(app, &loaded, image, ctx, &pinned))
            .await
        {
            Ok((evidence, tree)) => {
                match evidence {
                    Ok(rows) => out.evidence = rows,
                    Err(why) => out.evidence_error = Some(why),
                }
                match tree {
                    Ok(tree) => {
                        out.tree = tree_rows(&tree, &marks(&out.evidence));
                        out.tree_notes.clone_from(&tree.notes);
                        out.tree_truncated = tree.truncated;
                    }
                    Err(why) => out.tree_error = Some(why),
                }
            }
            Err(_) => out.notes.push(format!(
                "{}; evidence and referrers are not shown",
                deadline_passed(app)
            )),
        }
        out
    }

    /// Each piece of evidence with each attestor's verdict on it, and the referrers tree; with
    /// one of the daemon's verification slots, as admission takes one.
    async fn details(
        &self,
        app: &App,
        loaded: &Arc<Loaded>,
        image: &ImageRef,
        ctx: &AdmissionContext,
        pinned: &PinnedRef,
    ) -> (Result<Vec<EvidenceRow>, String>, Result<Arc<Tree>, String>) {
        // Never closed, so `None` cannot happen.
        let slot = Arc::clone(&app.verifications).acquire_owned().await.ok();
        let evidence = match app.evidence(pinned).await {
            Ok(found) => {
                let (loaded, image, ctx, digest) = (
                    Arc::clone(loaded),
                    image.clone(),
                    ctx.clone(),
                    pinned.digest().clone(),
                );
                // Signature checks are CPU work; off the request threads, as in admission.
                tokio::task::spawn_blocking(move || {
                    evidence_rows(&loaded, &image, &ctx, &found, &digest)
                })
                .await
                .map_err(|e| format!("checking the evidence failed: {e}"))
            }
            Err(why) => Err(format!("cannot read the evidence: {why}")),
        };
        let tree = self.tree(app, pinned).await;
        drop(slot);
        (evidence, tree)
    }

    /// The referrers tree of `pinned`, built once per repository and digest while kept.
    async fn tree(&self, app: &App, pinned: &PinnedRef) -> Result<Arc<Tree>, String> {
        let key = (pinned.name(), pinned.digest().clone());
        self.trees
            .try_get_with(key, async {
                let image = pinned.to_image_ref();
                let repo = Repository::new(&app.client, &image);
                match Box::pin(signet_verify::tree::build(&repo, pinned)).await {
                    Ok(tree) => Ok(Arc::new(tree)),
                    Err(e) => {
                        app.metrics.registry_error(&e);
                        Err(format!("cannot read the referrers: {e}"))
                    }
                }
            })
            .await
            .map_err(|e: Arc<String>| e.to_string())
    }
}

fn deadline_passed(app: &App) -> String {
    format!(
        "verification did not finish within the {}s deadline",
        app.deadline.as_secs_f32()
    )
}

/// The image and admission context of `query`, checked as `/v1/verify` checks its body, with
/// bounds on every field.
fn parse(app: &App, query: &ExplainQuery) -> Result<(ImageRef, AdmissionContext), String> {
    let image = query.image.as_deref().unwrap_or_default().trim();
    if image.len() > MAX_IMAGE {
        return Err(format!(
            "image reference too long: {} bytes, at most {MAX_IMAGE}",
            image.len()
        ));
    }
    let image: ImageRef = image
        .parse()
        .map_err(|e| format!("not a valid image reference: {e}"))?;
    let field = |value: &Option<String>, what: &str, max: usize, dots: bool| {
        let value = value.as_deref().unwrap_or_default().trim();
        if value.is_empty() {
            return Ok(None);
        }
        let valid = value.len() <= max
            && value.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || (dots && b == b'.')
            });
        if valid {
            Ok(Some(value.to_string()))
        } else {
            Err(format!(
                "{what} must be a Kubernetes name: at most {max} lowercase letters, digits{}                  and '-'",
                if dots { ", '.'" } else { "" }
            ))
        }
    };
    let namespace = field(&query.namespace, "namespace", MAX_NAMESPACE, false)?;
    let service_account = field(
        &query.service_account,
        "service account",
        MAX_SERVICE_ACCOUNT,
        true,
    )?;
    if service_account.is_some() && namespace.is_none() {
        return Err(
            "a service account needs a namespace: service account rules are keyed \
             \"namespace:serviceaccount\""
                .into(),
        );
    }
    Ok((
        image,
        AdmissionContext {
            cluster: app.cluster.clone(),
            namespace,
            service_account,
        },
    ))
}

/// One row per piece of evidence, with each attestor of the rule: accepted (the key that
/// verified it) or rejected (the typed reason). Pure.
fn evidence_rows(
    loaded: &Loaded,
    image: &ImageRef,
    ctx: &AdmissionContext,
    found: &[signet_verify::Evidence],
    digest: &Digest,
) -> Vec<EvidenceRow> {
    let mut rows: Vec<EvidenceRow> = found
        .iter()
        .map(|e| EvidenceRow {
            location: e.location.to_string(),
            format: e.location.format().as_str(),
            claimed_predicate_type: e.claimed_predicate_type.clone().unwrap_or_default(),
            verdicts: Vec::new(),
        })
        .collect();
    let attestors = match loaded.policy.needs(image, ctx) {
        Need::Attestors(attestors) => attestors,
        Need::Nothing => Vec::new(),
    };
    for attestor in attestors {
        let checked = signet_verify::check_for_attestor(
            attestor,
            found,
            digest,
            &loaded.policy.timestamp_authorities,
        );
        let name = attestor.name.to_string();
        let mut add = |location: String, verdict: AttestorVerdict| {
            if let Some(row) = rows.iter_mut().find(|r| r.location == location) {
                row.verdicts.push(verdict);
            }
        };
        for accepted in &checked.accepted {
            add(
                accepted.location().to_string(),
                AttestorVerdict {
                    attestor: name.clone(),
                    accepted: true,
                    text: format!(
                        "verified with key {} ({})",
                        accepted.key_id(),
                        accepted.predicate_type()
                    ),
                },
            );
        }
        for rejected in &checked.rejected {
            add(
                rejected.location.to_string(),
                AttestorVerdict {
                    attestor: name.clone(),
                    accepted: false,
                    text: format!("{}: {}", rejected.reason.cause(), rejected.reason),
                },
            );
        }
    }
    rows
}

/// What the tree shows next to a referrer or legacy layer that is evidence, by location.
fn marks(rows: &[EvidenceRow]) -> HashMap<String, Mark> {
    rows.iter()
        .map(|row| {
            let by: Vec<&str> = row
                .verdicts
                .iter()
                .filter(|v| v.accepted)
                .map(|v| v.attestor.as_str())
                .collect();
            let mark = if by.is_empty() {
                Mark {
                    accepted: false,
                    text: "not accepted by any attestor of the rule".into(),
                }
            } else {
                Mark {
                    accepted: true,
                    text: format!("accepted by {}", by.join(", ")),
                }
            };
            (row.location.clone(), mark)
        })
        .collect()
}

/// The tree as rows with box-drawing prefixes, as `signet tree` prints it.
fn tree_rows(tree: &Tree, marks: &HashMap<String, Mark>) -> Vec<TreeRow> {
    let mut rows = vec![TreeRow {
        prefix: String::new(),
        kind: "image".into(),
        digest: tree.digest.to_string(),
        detail: String::new(),
        mark: None,
    }];
    let count = tree.referrers.len() + tree.legacy.len();
    for (i, node) in tree.referrers.iter().enumerate() {
        node_rows(&mut rows, node, "", i + 1 == count, marks);
    }
    legacy_rows(
        &mut rows,
        &tree.legacy,
        tree.referrers.len(),
        count,
        "",
        marks,
    );
    if count == 0 {
        rows.push(TreeRow::note("└── ", "(no referrers)"));
    }
    for platform in &tree.platforms {
        rows.push(TreeRow {
            prefix: String::new(),
            kind: format!("platform {}", platform.platform),
            digest: platform.digest.to_string(),
            detail: String::new(),
            mark: None,
        });
        let count = platform.referrers.len() + platform.legacy.len();
        for (j, node) in platform.referrers.iter().enumerate() {
            node_rows(&mut rows, node, "", j + 1 == count, marks);
        }
        legacy_rows(
            &mut rows,
            &platform.legacy,
            platform.referrers.len(),
            count,
            "",
            marks,
        );
        if count == 0 {
            rows.push(TreeRow::note("└── ", "(no referrers)"));
        }
    }
    rows
}

fn branch(prefix: &str, last: bool) -> String {
    format!("{prefix}{}", if last { "└── " } else { "├── " })
}

fn node_rows(
    rows: &mut Vec<TreeRow>,
    node: &Node,
    prefix: &str,
    last: bool,
    marks: &HashMap<String, Mark>,
) {
    let mut detail = Vec::new();
    if let Some(p) = &node.predicate_type {
        detail.push(p.clone());
    }
    if let Some(info) = &node.binauthz {
        detail.push(format!(
            "binauthz note {}, key {}",
            info.note.as_deref().unwrap_or("(none)"),
            info.key_ids.join(", ")
        ));
    }
    if node.already_shown {
        detail.push("already shown above, not expanded again".into());
    }
    rows.push(TreeRow {
        prefix: branch(prefix, last),
        kind: node
            .artifact_type
            .clone()
            .unwrap_or_else(|| node.media_type.clone()),
        digest: node.digest.to_string(),
        detail: detail.join("; "),
        mark: marks.get(&format!("referrer {}", node.digest)).cloned(),
    });
    let child_prefix = format!("{prefix}{}", if last { "    " } else { "│   " });
    for (i, child) in node.referrers.iter().enumerate() {
        node_rows(
            rows,
            child,
            &child_prefix,
            i + 1 == node.referrers.len(),
            marks,
        );
    }
}

fn legacy_rows(
    rows: &mut Vec<TreeRow>,
    legacy: &[signet_verify::tree::LegacyTag],
    before: usize,
    count: usize,
    prefix: &str,
    marks: &HashMap<String, Mark>,
) {
    for (j, tag) in legacy.iter().enumerate() {
        let last = before + j + 1 == count;
        rows.push(TreeRow {
            prefix: branch(prefix, last),
            kind: format!("{} (legacy cosign tag)", tag.tag),
            digest: tag.digest.to_string(),
            detail: String::new(),
            mark: None,
        });
        let child_prefix = format!("{prefix}{}", if last { "    " } else { "│   " });
        for (i, layer) in tag.layers.iter().enumerate() {
            rows.push(TreeRow {
                prefix: branch(&child_prefix, i + 1 == tag.layers.len()),
                kind: layer.media_type.clone(),
                digest: layer.digest.to_string(),
                detail: layer.predicate_type.clone().unwrap_or_default(),
                mark: marks.get(&format!("{} layer {i}", tag.tag)).cloned(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use signet_verify::tree::{LegacyLayer, LegacyTag};

    use super::*;

    #[test]
    fn tree_rows_draw_the_tree_and_mark_evidence() {
        let image = Digest::sha256_of(b"image");
        let bundle = Digest::sha256_of(b"bundle");
        let nested = Digest::sha256_of(b"nested");
        let node = |digest: &Digest, referrers: Vec<Node>| Node {
            digest: digest.clone(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            artifact_type: Some("application/vnd.dev.sigstore.bundle.v0.3+json".into()),
            predicate_type: Some("https://sigstore.dev/cosign/sign/v1".into()),
            binauthz: None,
            size: 1,
            already_shown: false,
            referrers,
        };
        let tree = Tree {
            image: "r.example/app@sha256:…".into(),
            digest: image.clone(),
            referrers: vec![node(&bundle, vec![node(&nested, Vec::new())])],
            legacy: vec![LegacyTag {
                tag: format!("{}.sig", image.fallback_tag()),
                digest: Digest::sha256_of(b"sig manifest"),
                layers: vec![LegacyLayer {
                    digest: Digest::sha256_of(b"layer"),
                    media_type: "application/vnd.dev.cosign.simplesigning.v1+json".into(),
                    predicate_type: None,
                }],
            }],
            truncated: false,
            notes: Vec::new(),
            platforms: Vec::new(),
        };
        let rows = vec![
            EvidenceRow {
                location: format!("referrer {bundle}"),
                format: "bundle",
                claimed_predicate_type: String::new(),
                verdicts: vec![AttestorVerdict {
                    attestor: "build".into(),
                    accepted: true,
                    text: "verified".into(),
                }],
            },
            EvidenceRow {
                location: format!("{}.sig layer 0", image.fallback_tag()),
                format: "legacy .sig",
                claimed_predicate_type: String::new(),
                verdicts: vec![AttestorVerdict {
                    attestor: "build".into(),
                    accepted: false,
                    text: "unknown_key: …".into(),
                }],
            },
        ];
        let drawn = tree_rows(&tree, &marks(&rows));
        let lines: Vec<(String, Option<String>)> = drawn
            .iter()
            .map(|r| {
                (
                    format!("{}{}", r.prefix, r.digest),
                    r.mark.as_ref().map(|m| m.text.clone()),
                )
            })
            .collect();
        assert_eq!(
            lines,
            [
                (image.to_string(), None),
                (
                    format!("├── {bundle}"),
                    Some("accepted by build".to_string())
                ),
                (format!("│   └── {nested}"), None),
                (format!("└── {}", tree.legacy[0].digest), None),
                (
                    format!("    └── {}", tree.legacy[0].layers[0].digest),
                    Some("not accepted by any attestor of the rule".to_string())
                ),
            ]
        );
    }
}
