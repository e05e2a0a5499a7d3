//! The daemon's shared state and its one way to decide about an image: policy in force,
//! caches with coalescing, registry client.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;
use signet_core::digest::Digest;
use signet_core::reference::{ImageRef, PinnedRef};
use signet_policy::Policy;
use signet_policy::evaluate::Need;
use signet_policy::model::EnforcementMode;
use signet_registry::{AllowedHosts, Client, Repository};
use signet_verify::{AdmissionContext, Decision};
use signet_verify::{Evidence, Filter, Payload};

use crate::audit::Audit;
use crate::metrics::{CacheKind, CacheResult, Metrics};
use crate::{CacheConfig, OnVerificationError, RequestLimits, ServerConfig};

/// A policy in force, with its generation (1 for the policy loaded at start-up, then one more
/// for each reload that took effect).
pub(crate) struct Loaded {
    /// Shared, so that continuous validation can check signatures on blocking threads.
    pub(crate) policy: Arc<Policy>,
    pub(crate) generation: u64,
}

/// What the policy reloader last saw, to act on changes only.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// The bytes of the policy file last tried (loaded or refused).
    pub(crate) contents: Option<Vec<u8>>,
    /// The last error reading the file, reported once.
    pub(crate) read_error: Option<String>,
}

/// Decisions are reused per image (as written, with its digest), per rule and per policy
/// generation. Keying by the rule the context selects, rather than by the whole context, is
/// equivalent (evaluation depends on the context only through the rule) and lets pods in many
/// namespaces under the same rule share one decision.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct DecisionKey {
    image: ImageRef,
    rule: String,
    generation: u64,
}

/// Evidence lives in a repository, next to the digest: the same digest in two repositories
/// may have different signatures.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct EvidenceKey {
    repository: String,
    digest: Digest,
}

/// Admitting decisions live `allow`, denying ones (and dry-run would-be denials) `deny`, and
/// none past its `valid_until`.
struct DecisionExpiry {
    allow: Duration,
    deny: Duration,
}

impl Expiry<DecisionKey, Arc<Decision>> for DecisionExpiry {
    fn expire_after_create(
        &self,
        _key: &DecisionKey,
        decision: &Arc<Decision>,
        _created_at: Instant,
    ) -> Option<Duration> {
        let ttl = if decision.outcome == signet_verify::Outcome::Allowed {
            self.allow
        } else {
            self.deny
        };
        // Never past the moment the evidence stops counting by time (`maxAge`, `validUntil`).
        let left = decision.valid_until.map(|until| {
            until
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default()
        });
        Some(left.map_or(ttl, |left| left.min(ttl)))
    }
}

struct Caches {
    decisions: Cache<DecisionKey, Arc<Decision>>,
    evidence: Cache<EvidenceKey, Arc<Vec<Evidence>>>,
    tags: Cache<ImageRef, Digest>,
}

impl Caches {
    fn new(config: &CacheConfig) -> Caches {
        Caches {
            decisions: Cache::builder()
                .max_capacity(config.max_entries)
                .expire_after(DecisionExpiry {
                    allow: config.allow_ttl,
                    deny: config.deny_ttl,
                })
                .build(),
            // Bounded in bytes, not entries: one entry can hold up to a verification's whole
            // evidence budget (issue 12: three hostile digests held 2.96 GB by entry count).
            evidence: Cache::builder()
                .max_capacity(config.max_evidence_bytes)
                .weigher(|_key, found: &Arc<Vec<Evidence>>| evidence_weight(found))
                .time_to_live(config.evidence_ttl)
                .build(),
            tags: Cache::builder()
                .max_capacity(config.max_entries)
                .time_to_live(config.tag_ttl)
                .build(),
        }
    }
}

/// The bytes an evidence cache entry holds, roughly: its blobs (a blob shared by several pieces
/// of evidence is counted for each, which errs on the safe side) and a small overhead each.
fn evidence_weight(found: &[Evidence]) -> u32 {
    const OVERHEAD: u64 = 512;
    let bytes: u64 = found
        .iter()
        .map(|e| {
            let blob = match &e.payload {
                Payload::Bundle(b) | Payload::BinAuthz(b) => b.len(),
                Payload::Dsse {
                    envelope,
                    certificate,
                } => envelope.len() + certificate_weight(certificate.as_deref()),
                Payload::SimpleSigning {
                    payload,
                    signature,
                    certificate,
                } => payload.len() + signature.len() + certificate_weight(certificate.as_deref()),
                Payload::Unreadable(_) => 0,
            };
            blob as u64 + OVERHEAD
        })
        .sum();
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// The bytes of a legacy layer's certificate annotations.
fn certificate_weight(certificate: Option<&signet_core::keyless::LegacyCertificate>) -> usize {
    certificate.map_or(0, |c| {
        [&c.chain, &c.rekor_bundle, &c.rfc3161_timestamp]
            .into_iter()
            .flatten()
            .map(String::len)
            .sum::<usize>()
            + c.certificate.len()
    })
}

/// What became of one image.
#[derive(Debug, Clone)]
pub(crate) enum Verdict {
    /// The policy decided (allowed, denied, or allowed in dry run with a would-be denial).
    Decided(Arc<Decision>),
    /// The rule needs evidence, and the image is named by tag only: what runs could differ
    /// from what was verified.
    TagOnly {
        /// The rule that applies, as decisions name it.
        rule: String,
        /// Whether that rule is dry-run (then this is a would-be denial).
        dry_run: bool,
    },
    /// Verification could not finish: registry error or deadline.
    Failed(String),
}

/// The registries `policy`'s `registryAllowlist` names outright (not through a wildcard): the
/// only loopback, link-local or metadata hosts the daemon will connect to.
pub(crate) fn literal_registries(policy: &Policy) -> Vec<String> {
    policy
        .registry_allowlist
        .iter()
        .flatten()
        .filter_map(|g| g.literal_registry().map(str::to_string))
        .collect()
}

/// Whether tag-only images are resolved (verify API) or refused (admission).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tags {
    Resolve,
    Refuse,
}

pub(crate) struct App {
    policy: RwLock<Arc<Loaded>>,
    ready: AtomicBool,
    pub(crate) client: Client,
    caches: Caches,
    pub(crate) metrics: Metrics,
    pub(crate) audit: Audit,
    pub(crate) cluster: Option<String>,
    pub(crate) on_verification_error: OnVerificationError,
    pub(crate) deadline: Duration,
    pub(crate) limits: RequestLimits,
    /// The verify API's bearer token file, if it needs one.
    pub(crate) api_token_file: Option<std::path::PathBuf>,
    /// Registries the policy names outright: only they may be loopback or link-local.
    allowed_hosts: AllowedHosts,
    /// One permit per image verification in flight, across all requests.
    pub(crate) verifications: Arc<tokio::sync::Semaphore>,
    pub(crate) policy_path: std::path::PathBuf,
    /// Held for the whole of a reload, so that a SIGHUP and a file change do not race.
    pub(crate) reload_state: tokio::sync::Mutex<Seen>,
    /// Recent decisions, for the decision explorer (keeps nothing when it is off).
    pub(crate) recent: crate::explorer::Recent,
}

impl App {
    pub(crate) fn new(
        config: &ServerConfig,
        policy: Policy,
        contents: Vec<u8>,
        client: Client,
        audit: Audit,
        allowed_hosts: AllowedHosts,
    ) -> App {
        allowed_hosts.set(literal_registries(&policy));
        let metrics = Metrics::new();
        metrics.policy_generation.set(1);
        App {
            policy: RwLock::new(Arc::new(Loaded {
                policy: Arc::new(policy),
                generation: 1,
            })),
            ready: AtomicBool::new(false),
            client,
            caches: Caches::new(&config.cache),
            metrics,
            audit,
            cluster: config.cluster.clone(),
            on_verification_error: config.on_verification_error,
            deadline: config.request_deadline,
            limits: config.limits.clone(),
            api_token_file: config.api_token_file.clone(),
            allowed_hosts,
            verifications: Arc::new(tokio::sync::Semaphore::new(
                config.limits.verifications_in_flight.max(1),
            )),
            policy_path: config.policy_path.clone(),
            reload_state: tokio::sync::Mutex::new(Seen {
                contents: Some(contents),
                read_error: None,
            }),
            recent: crate::explorer::Recent::new(
                config.explorer.as_ref().map_or(0, |e| e.recent_decisions),
            ),
        }
    }

    /// The policy in force.
    pub(crate) fn policy(&self) -> Arc<Loaded> {
        match self.policy.read() {
            Ok(guard) => guard.clone(),
            // A writer panicked mid-swap; the Arc inside is still a whole policy.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `policy` in force with the next generation; returns that generation.
    pub(crate) fn install_policy(&self, policy: Policy) -> u64 {
        let mut guard = match self.policy.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let generation = guard.generation + 1;
        self.allowed_hosts.set(literal_registries(&policy));
        *guard = Arc::new(Loaded {
            policy: Arc::new(policy),
            generation,
        });
        drop(guard);
        // Decisions of older generations can never be hit again; free their room now.
        self.caches.decisions.invalidate_all();
        self.metrics
            .policy_generation
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
        generation
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    pub(crate) fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Entry counts of the caches, for the metrics page.
    pub(crate) fn cache_sizes(&self) -> [(CacheKind, u64); 3] {
        [
            (CacheKind::Decision, self.caches.decisions.entry_count()),
            (CacheKind::Evidence, self.caches.evidence.entry_count()),
            (CacheKind::Tag, self.caches.tags.entry_count()),
        ]
    }

    /// Decides about `image` in `ctx` under `loaded`. Registry work happens only when the rule
    /// needs evidence; identical concurrent verifications share one computation.
    pub(crate) async fn verdict(
        &self,
        loaded: &Arc<Loaded>,
        image: &ImageRef,
        ctx: &AdmissionContext,
        tags: Tags,
    ) -> Verdict {
        let policy = &loaded.policy;
        if let Need::Nothing = policy.needs(image, ctx) {
            // Allowlist, exemptions, ALWAYS_ALLOW, ALWAYS_DENY: pure and cheap, no registry.
            return Verdict::Decided(Arc::new(policy.evaluate(
                image,
                image.digest(),
                ctx,
                &BTreeMap::new(),
            )));
        }
        let chosen = policy.rule_for(ctx);
        let rule = match chosen.key {
            Some(key) => format!("{} {key}", chosen.label),
            None => chosen.label.to_string(),
        };
        let pinned = match (image.pinned(), tags) {
            (Some(pinned), _) => pinned,
            (None, Tags::Refuse) => {
                return Verdict::TagOnly {
                    rule,
                    dry_run: chosen.rule.enforcement == EnforcementMode::DryRun,
                };
            }
            (None, Tags::Resolve) => match self.resolve(image).await {
                Ok(pinned) => pinned,
                Err(e) => return Verdict::Failed(e),
            },
        };
        let shown = pinned.to_image_ref();
        let key = DecisionKey {
            image: shown.clone(),
            rule,
            generation: loaded.generation,
        };
        let entry = self
            .caches
            .decisions
            .entry(key)
            .or_try_insert_with(Box::pin(async move {
                // A slot among the verifications in flight across the daemon; waiting for one
                // counts against the caller's deadline. Never closed, so `None` cannot happen.
                let slot = Arc::clone(&self.verifications).acquire_owned().await.ok();
                let found = self.evidence(&pinned).await?;
                let (task_loaded, task_ctx) = (loaded.clone(), ctx.clone());
                let (task_shown, task_pinned) = (shown.clone(), pinned.clone());
                // Signature checks are CPU work; keep them off the request threads. The slot
                // goes with them: a blocking task runs to its end even when nobody waits.
                let first = tokio::task::spawn_blocking(move || {
                    signet_verify::decide_with_evidence(
                        &task_loaded.policy,
                        &task_shown,
                        &task_pinned,
                        &task_ctx,
                        &found,
                    )
                })
                .await
                .map_err(|e| format!("verification task failed: {e}"))?;
                // Multi-platform follow-ups (an index to check platform by platform, a platform
                // manifest covered by its index): rare, and read through the same caches.
                let decision = signet_verify::platforms::follow_up(
                    &loaded.policy,
                    &shown,
                    &pinned,
                    ctx,
                    self,
                    first,
                    None,
                )
                .await?;
                drop(slot);
                self.metrics.rejected(&decision.rejected);
                Ok::<_, String>(Arc::new(decision))
            }))
            .await;
        match entry {
            Ok(entry) => {
                self.metrics
                    .cache(CacheKind::Decision, CacheResult::of_fresh(entry.is_fresh()));
                Verdict::Decided(entry.into_value())
            }
            Err(e) => Verdict::Failed(e.to_string()),
        }
    }

    /// The evidence about `pinned`, gathered once per digest and repository while cached.
    pub(crate) async fn evidence(&self, pinned: &PinnedRef) -> Result<Arc<Vec<Evidence>>, String> {
        let key = EvidenceKey {
            repository: pinned.name(),
            digest: pinned.digest().clone(),
        };
        let entry = self
            .caches
            .evidence
            .entry(key)
            .or_try_insert_with(Box::pin(async {
                let image = pinned.to_image_ref();
                let repo = Repository::new(&self.client, &image);
                // Everything signet reads, whatever the rule asks for: the evidence is shared
                // by every rule and attestor that looks at this digest.
                match Box::pin(signet_verify::gather(&repo, pinned, &Filter::default())).await {
                    Ok(found) => Ok(Arc::new(found)),
                    Err(e) => {
                        self.metrics.registry_error(&e);
                        Err(e.to_string())
                    }
                }
            }))
            .await
            .map_err(|e| e.to_string())?;
        self.metrics
            .cache(CacheKind::Evidence, CacheResult::of_fresh(entry.is_fresh()));
        Ok(entry.into_value())
    }

    /// The manifest `reference` names in `image`'s repository, uncached (multi-platform
    /// follow-ups only).
    pub(crate) async fn fetch_manifest(
        &self,
        image: &ImageRef,
        reference: signet_registry::TagOrDigest<'_>,
    ) -> Result<Option<signet_registry::FetchedManifest>, String> {
        let repo = Repository::new(&self.client, image);
        let fetched = match reference {
            signet_registry::TagOrDigest::Tag(tag) => repo.get_manifest_by_tag(tag).await,
            signet_registry::TagOrDigest::Digest(digest) => {
                repo.get_manifest(digest).await.map(Some)
            }
        };
        fetched.map_err(|e| {
            self.metrics.registry_error(&e);
            e.to_string()
        })
    }

    /// Resolves a tag-only `image` to its digest now (cached for the tag lifetime).
    pub(crate) async fn resolve(&self, image: &ImageRef) -> Result<PinnedRef, String> {
        if let Some(pinned) = image.pinned() {
            return Ok(pinned);
        }
        let entry = self
            .caches
            .tags
            .entry(image.clone())
            .or_try_insert_with(Box::pin(async {
                let repo = Repository::new(&self.client, image);
                match Box::pin(repo.resolve(image)).await {
                    Ok(pinned) => Ok(pinned.digest().clone()),
                    Err(e) => {
                        self.metrics.registry_error(&e);
                        Err(e.to_string())
                    }
                }
            }))
            .await
            .map_err(|e| e.to_string())?;
        self.metrics
            .cache(CacheKind::Tag, CacheResult::of_fresh(entry.is_fresh()));
        Ok(image.with_digest(entry.into_value()))
    }
}

impl signet_verify::platforms::Source for App {
    type Error = String;

    async fn evidence(&self, pinned: &PinnedRef) -> Result<Arc<Vec<Evidence>>, String> {
        App::evidence(self, pinned).await
    }

    async fn manifest_by_tag(
        &self,
        image: &ImageRef,
        tag: &str,
    ) -> Result<Option<signet_registry::FetchedManifest>, String> {
        self.fetch_manifest(image, signet_registry::TagOrDigest::Tag(tag))
            .await
    }

    async fn manifest(
        &self,
        image: &ImageRef,
        digest: &signet_core::digest::Digest,
    ) -> Result<signet_registry::FetchedManifest, String> {
        self.fetch_manifest(image, signet_registry::TagOrDigest::Digest(digest))
            .await?
            .ok_or_else(|| format!("manifest {digest} not found"))
    }
}
