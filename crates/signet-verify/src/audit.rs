//! Continuous validation's engine: the admission decision again, for every image that already
//! runs (issue 15), shared by `signet audit` and `signet serve --continuous-validation`.
//!
//! The input is a list of [`Running`] images: one per container (init, regular, ephemeral) of
//! each pod, with the namespace and service account of its pod, as admission sees them. Each
//! is reported [`Compliance::Compliant`], [`Compliance::Violating`] (with the reasons) or
//! [`Compliance::Error`] (the registry could not be asked): three outcomes, never two.
//!
//! One run asks the registry as little as it can while seeing it as it is *now*: every tag is
//! resolved once, the evidence of every distinct digest (per repository) is fetched once, and
//! the policy is then evaluated from that same evidence for each rule the pods' contexts
//! select. Nothing is kept from one run to the next, so a withdrawal pushed after the previous
//! run shows in the next one. The [`Store`] the caller gives does the fetching: straight from
//! the registry for the CLI ([`ClientStore`]), through the daemon's limits and metrics for
//! `serve`.
//!
//! ```no_run
//! # async fn example(client: signet_registry::Client, policy: signet_policy::Policy) {
//! use std::sync::Arc;
//! use signet_verify::audit::{self, ClientStore, Compliance, Running};
//!
//! let running = vec![Running {
//!     namespace: "shop".into(),
//!     pod: "web-1".into(),
//!     service_account: "web".into(),
//!     container: "app".into(),
//!     image: "registry.example/shop/app:1.4".into(),
//! }];
//! let store = ClientStore::new(client);
//! let report = audit::audit(Arc::new(policy), running, &store, &audit::Options::default()).await;
//! for finding in &report.findings {
//!     if finding.compliance != Compliance::Compliant {
//!         println!("{} {}: {:?}", finding.running.pod, finding.running.image, finding.reasons);
//!     }
//! }
//! # }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use futures_util::stream::{self, StreamExt as _};
use signet_core::digest::Digest;
use signet_core::reference::{ImageRef, PinnedRef};
use signet_policy::Policy;
use signet_policy::decision::{Decision, Enforcement, Outcome};
use signet_policy::evaluate::{AdmissionContext, Need};
use signet_registry::{Client, FetchedManifest, RegistryError, Repository};

use crate::gather::{Evidence, Filter, gather};
use crate::platforms::{self, Source};
use crate::policy::decide_with_evidence;

/// One container image of one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The service account the pod runs as.
    pub service_account: String,
    /// The container's name; `init:NAME` and `ephemeral:NAME` for init and ephemeral
    /// containers.
    pub container: String,
    /// The image as written in the pod spec.
    pub image: String,
}

/// How a running image stands under the policy now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compliance {
    /// The policy allows it.
    Compliant,
    /// The policy would not admit it today (also under a dry-run rule: the reasons say so).
    Violating,
    /// It could not be decided: registry unreachable, tag gone, deadline.
    Error,
}

impl Compliance {
    /// Every outcome, in the order reports list them.
    pub const ALL: [Compliance; 3] = [
        Compliance::Compliant,
        Compliance::Violating,
        Compliance::Error,
    ];

    /// `compliant`, `violating` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Compliance::Compliant => "compliant",
            Compliance::Violating => "violating",
            Compliance::Error => "error",
        }
    }
}

impl Display for Compliance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What became of one running image.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The image and where it runs.
    pub running: Running,
    /// Compliant, violating or error.
    pub compliance: Compliance,
    /// The digest decided about, when one was known (resolved, or written in the pod).
    pub digest: Option<Digest>,
    /// The rule that applied (`namespace payments`); empty when the image could not be read.
    pub rule: String,
    /// Whether that rule is enforced or dry-run, when a rule decided.
    pub enforcement: Option<Enforcement>,
    /// Why it violates (the decision's reasons, then each piece of evidence that did not
    /// count and why), or why it could not be decided; empty for compliant images.
    pub reasons: Vec<String>,
}

/// The result of one run, findings in the order the running images were given.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// One per running image.
    pub findings: Vec<Finding>,
    /// Distinct digests (per repository) whose evidence this run fetched, each once.
    pub digests_verified: usize,
}

impl Report {
    /// How many findings have `compliance`.
    pub fn count(&self, compliance: Compliance) -> usize {
        self.findings
            .iter()
            .filter(|f| f.compliance == compliance)
            .count()
    }
}

/// How a run goes.
#[derive(Debug, Clone)]
pub struct Options {
    /// The cluster name the policy's `clusterAdmissionRules` are keyed by.
    pub cluster: Option<String>,
    /// Most decisions in flight at once (each one fetches at most one digest's evidence, and
    /// the registry client bounds requests per registry besides).
    pub concurrency: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cluster: None,
            concurrency: 16,
        }
    }
}

/// Where a run reads from: the follow-ups of [`platforms::Source`], and tag resolution. Each
/// call must ask the registry (or whatever the store stands for) as it is now; the run makes
/// sure each question is asked once.
pub trait Store: Source {
    /// The digest `image`'s tag names now (`image` carries no digest).
    fn resolve(
        &self,
        image: &ImageRef,
    ) -> impl Future<Output = Result<PinnedRef, Self::Error>> + Send;
}

/// A [`Store`] that asks the registries through one [`Client`], with nothing cached: what the
/// CLI uses.
pub struct ClientStore {
    client: Client,
    filter: Filter,
}

impl ClientStore {
    /// Reads through `client`, fetching at most [`crate::DEFAULT_MAX_EVIDENCE_BYTES`] of
    /// evidence per digest.
    pub fn new(client: Client) -> Self {
        ClientStore {
            client,
            filter: Filter::default(),
        }
    }

    /// The client, e.g. for its request count.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl Source for ClientStore {
    type Error = RegistryError;

    async fn evidence(&self, pinned: &PinnedRef) -> Result<Arc<Vec<Evidence>>, RegistryError> {
        // Everything signet reads, whatever a rule asks for: the same evidence serves every
        // rule and attestor that looks at this digest during the run.
        let repo = Repository::new(&self.client, &pinned.to_image_ref());
        gather(&repo, pinned, &self.filter).await.map(Arc::new)
    }

    async fn manifest_by_tag(
        &self,
        image: &ImageRef,
        tag: &str,
    ) -> Result<Option<FetchedManifest>, RegistryError> {
        Repository::new(&self.client, image)
            .get_manifest_by_tag(tag)
            .await
    }

    async fn manifest(
        &self,
        image: &ImageRef,
        digest: &Digest,
    ) -> Result<FetchedManifest, RegistryError> {
        Repository::new(&self.client, image)
            .get_manifest(digest)
            .await
    }
}

impl Store for ClientStore {
    async fn resolve(&self, image: &ImageRef) -> Result<PinnedRef, RegistryError> {
        Repository::new(&self.client, image).resolve(image).await
    }
}

/// Decides every image of `running` under `policy`, at most `options.concurrency` decisions at
/// a time; see the module documentation for what is asked once.
pub async fn audit<S>(
    policy: Arc<Policy>,
    running: Vec<Running>,
    store: &S,
    options: &Options,
) -> Report
where
    S: Store,
    S::Error: Display,
{
    // The questions: one per distinct image and rule. Contexts that select the same rule get
    // the same decision (evaluation depends on the context only through its rule), so pods in
    // many namespaces under the default rule share one.
    let mut questions: Vec<Question> = Vec::new();
    let mut asked: HashMap<(String, String), usize> = HashMap::new();
    let mut answer_of: Vec<Option<usize>> = Vec::with_capacity(running.len());
    for r in &running {
        let ctx = AdmissionContext {
            cluster: options.cluster.clone(),
            namespace: Some(r.namespace.clone()),
            service_account: Some(r.service_account.clone()),
        };
        let chosen = policy.rule_for(&ctx);
        let rule = match chosen.key {
            Some(key) => format!("{} {key}", chosen.label),
            None => chosen.label.to_string(),
        };
        let index = *asked
            .entry((r.image.clone(), rule.clone()))
            .or_insert_with(|| {
                questions.push(Question {
                    image: r.image.clone(),
                    rule,
                    ctx,
                });
                questions.len() - 1
            });
        answer_of.push(Some(index));
    }

    let run = Run::new(store);
    let (run, policy) = (&run, &policy);
    let mut answers: Vec<Option<Answer>> = vec![None; questions.len()];
    // The futures are made first and then streamed: a stream mapping borrowed items through a
    // closure is not `Send` for every lifetime, which the daemon's spawned task needs.
    let asks: Vec<_> = questions
        .iter()
        .enumerate()
        .map(|(i, q)| async move { (i, ask(run, policy, q).await) })
        .collect();
    let mut done = stream::iter(asks).buffer_unordered(options.concurrency.max(1));
    while let Some((i, answer)) = done.next().await {
        if let Some(slot) = answers.get_mut(i) {
            *slot = Some(answer);
        }
    }
    drop(done);

    let findings = running
        .into_iter()
        .zip(answer_of)
        .map(|(running, index)| {
            // Every question was answered above; a missing answer would be a bug here, and is
            // reported as an error rather than as a verdict either way.
            let answer = index
                .and_then(|i| answers.get(i).cloned().flatten())
                .unwrap_or_else(|| Answer::error(None, "internal error: image not decided"));
            Finding {
                running,
                compliance: answer.compliance,
                digest: answer.digest,
                rule: answer.rule,
                enforcement: answer.enforcement,
                reasons: answer.reasons,
            }
        })
        .collect();
    Report {
        findings,
        digests_verified: run.evidence.len(),
    }
}

/// One distinct image under one rule.
struct Question {
    image: String,
    rule: String,
    /// The context of the first pod that asked (any context selecting the rule would do).
    ctx: AdmissionContext,
}

#[derive(Debug, Clone)]
struct Answer {
    compliance: Compliance,
    digest: Option<Digest>,
    rule: String,
    enforcement: Option<Enforcement>,
    reasons: Vec<String>,
}

impl Answer {
    fn error(digest: Option<Digest>, reason: impl Into<String>) -> Answer {
        Answer {
            compliance: Compliance::Error,
            digest,
            rule: String::new(),
            enforcement: None,
            reasons: vec![reason.into()],
        }
    }

    fn decided(decision: &Decision) -> Answer {
        let compliance = if decision.outcome == Outcome::Allowed {
            Compliance::Compliant
        } else {
            Compliance::Violating
        };
        let mut reasons = Vec::new();
        if compliance == Compliance::Violating {
            reasons.extend(decision.reasons.iter().cloned());
            // What did not count, and why ("withdrawn by key …: CVE-…", "signed by an unknown
            // key"): in an audit line it is often the whole story, as in `verify --key`.
            reasons.extend(
                decision
                    .rejected
                    .iter()
                    .map(|r| format!("{}: {}", r.location.with_format(), r.reason)),
            );
        }
        if decision.outcome == Outcome::AllowedDryRunWouldDeny {
            reasons.insert(
                0,
                format!(
                    "rule {} is dry-run: admission would let it run, but the policy does not \
                     allow it",
                    decision.rule
                ),
            );
        }
        Answer {
            compliance,
            digest: decision.digest.clone(),
            rule: decision.rule.clone(),
            enforcement: Some(decision.enforcement),
            reasons,
        }
    }
}

async fn ask<S>(run: &Run<'_, S>, policy: &Arc<Policy>, q: &Question) -> Answer
where
    S: Store,
    S::Error: Display,
{
    let image = match q.image.parse::<ImageRef>() {
        Ok(image) => image,
        // Admission refuses what it cannot read, so this is a violation, not an error.
        Err(e) => {
            return Answer {
                compliance: Compliance::Violating,
                digest: None,
                rule: q.rule.clone(),
                enforcement: None,
                reasons: vec![format!("not a valid image reference: {e}")],
            };
        }
    };
    if let Need::Nothing = policy.needs(&image, &q.ctx) {
        // Allowlist, exemptions, ALWAYS_ALLOW, ALWAYS_DENY: no registry.
        return Answer::decided(&policy.evaluate(&image, image.digest(), &q.ctx, &BTreeMap::new()));
    }
    let pinned = match image.pinned() {
        Some(pinned) => pinned,
        // A tag in a running pod: what it names now is what is judged (admission pins tags
        // through the mutating webhook; a pod admitted before signet may still carry one).
        None => match run.resolve(&image).await {
            Ok(pinned) => pinned,
            Err(e) => return Answer::error(None, format!("resolving {image}: {e}")),
        },
    };
    let digest = Some(pinned.digest().clone());
    let found = match run.evidence(&pinned).await {
        Ok(found) => found,
        Err(e) => return Answer::error(digest, e),
    };
    let shown = pinned.to_image_ref();
    // Signature checks are CPU work: off the async threads, as the daemon's admission does.
    let first = {
        let (policy, shown, pinned, ctx) = (
            Arc::clone(policy),
            shown.clone(),
            pinned.clone(),
            q.ctx.clone(),
        );
        tokio::task::spawn_blocking(move || {
            decide_with_evidence(&policy, &shown, &pinned, &ctx, &found)
        })
        .await
    };
    let first = match first {
        Ok(first) => first,
        Err(e) => return Answer::error(digest, format!("verification task failed: {e}")),
    };
    match platforms::follow_up(policy, &shown, &pinned, &q.ctx, run, first, None).await {
        Ok(decision) => Answer::decided(&decision),
        Err(e) => Answer::error(digest, e),
    }
}

/// What the store answered, or why it could not (kept as text: answers are shared).
type Answered<T> = Result<T, String>;
/// Something in one repository (`registry/repository`): the same digest in two repositories
/// may have different evidence.
type InRepository<K> = (String, K);

/// One run's view of the store: every question asked once, its answer shared by whoever asks
/// again during the run (and by concurrent askers), and forgotten with the run.
struct Run<'s, S> {
    store: &'s S,
    tags: Memo<ImageRef, Answered<PinnedRef>>,
    evidence: Memo<InRepository<Digest>, Answered<Arc<Vec<Evidence>>>>,
    by_tag: Memo<InRepository<String>, Answered<Option<FetchedManifest>>>,
    by_digest: Memo<InRepository<Digest>, Answered<FetchedManifest>>,
}

impl<'s, S> Run<'s, S>
where
    S: Store,
    S::Error: Display,
{
    fn new(store: &'s S) -> Self {
        Run {
            store,
            tags: Memo::default(),
            evidence: Memo::default(),
            by_tag: Memo::default(),
            by_digest: Memo::default(),
        }
    }

    async fn resolve(&self, image: &ImageRef) -> Result<PinnedRef, String> {
        self.tags
            .get(image.clone(), async {
                self.store.resolve(image).await.map_err(|e| e.to_string())
            })
            .await
    }
}

impl<S> Source for Run<'_, S>
where
    S: Store,
    S::Error: Display,
{
    type Error = String;

    async fn evidence(&self, pinned: &PinnedRef) -> Result<Arc<Vec<Evidence>>, String> {
        self.evidence
            .get((pinned.name(), pinned.digest().clone()), async {
                self.store.evidence(pinned).await.map_err(|e| e.to_string())
            })
            .await
    }

    async fn manifest_by_tag(
        &self,
        image: &ImageRef,
        tag: &str,
    ) -> Result<Option<FetchedManifest>, String> {
        self.by_tag
            .get((image.name(), tag.to_string()), async {
                self.store
                    .manifest_by_tag(image, tag)
                    .await
                    .map_err(|e| e.to_string())
            })
            .await
    }

    async fn manifest(&self, image: &ImageRef, digest: &Digest) -> Result<FetchedManifest, String> {
        self.by_digest
            .get((image.name(), digest.clone()), async {
                self.store
                    .manifest(image, digest)
                    .await
                    .map_err(|e| e.to_string())
            })
            .await
    }
}

/// Answers by key, each computed once: the first asker computes, the others wait for it.
struct Memo<K, V> {
    cells: Mutex<HashMap<K, Arc<tokio::sync::OnceCell<V>>>>,
}

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Memo {
            cells: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Memo<K, V> {
    async fn get(&self, key: K, compute: impl Future<Output = V>) -> V {
        let cell = {
            // A poisoned lock means another task panicked while inserting; the map is still
            // whole (one insert is one step), so go on with it.
            let mut cells = self
                .cells
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(cells.entry(key).or_default())
        };
        cell.get_or_init(|| compute).await.clone()
    }

    fn len(&self) -> usize {
        self.cells
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A store that counts what it is asked and has no evidence for anything.
    #[derive(Default)]
    struct Counting {
        resolves: AtomicUsize,
        evidence: AtomicUsize,
        fail: bool,
    }

    const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    impl Source for Counting {
        type Error = String;

        async fn evidence(&self, _pinned: &PinnedRef) -> Result<Arc<Vec<Evidence>>, String> {
            self.evidence.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            if self.fail {
                return Err("registry.example: connection refused".into());
            }
            Ok(Arc::new(Vec::new()))
        }

        async fn manifest_by_tag(
            &self,
            _image: &ImageRef,
            _tag: &str,
        ) -> Result<Option<FetchedManifest>, String> {
            Ok(None)
        }

        async fn manifest(
            &self,
            _image: &ImageRef,
            digest: &Digest,
        ) -> Result<FetchedManifest, String> {
            Err(format!("manifest {digest} not found"))
        }
    }

    impl Store for Counting {
        async fn resolve(&self, image: &ImageRef) -> Result<PinnedRef, String> {
            self.resolves.fetch_add(1, Ordering::SeqCst);
            Ok(image.with_digest(DIGEST.parse().unwrap()))
        }
    }

    fn policy(text: &str) -> Arc<Policy> {
        let dir = tempfile::tempdir().unwrap();
        let key = signet_core::keys::KeyPair::generate_p256().unwrap();
        std::fs::write(dir.path().join("ci.pub"), key.public_key().to_pem()).unwrap();
        Arc::new(signet_policy::parse(text, &dir.path().join("policy.yaml"), dir.path()).unwrap())
    }

    const REQUIRE: &str = "defaultAdmissionRule:\n  evaluationMode: REQUIRE_ATTESTATION\n  \
        enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG\n  requireAttestationsBy: [build]\n\
        kubernetesNamespaceAdmissionRules:\n  tools: {evaluationMode: ALWAYS_ALLOW, \
        enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG}\n\
        attestors:\n  - name: build\n    publicKeys: [{file: ci.pub}]\n";

    fn running(namespace: &str, pod: &str, image: &str) -> Running {
        Running {
            namespace: namespace.into(),
            pod: pod.into(),
            service_account: "default".into(),
            container: "app".into(),
            image: image.into(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_tag_and_digest_is_asked_once_per_run_whatever_the_pods() {
        let store = Counting::default();
        let mut pods = Vec::new();
        for i in 0..40 {
            let ns = ["a", "b", "c", "tools"][i % 4];
            pods.push(running(ns, &format!("p{i}"), "registry.example/app:1"));
            pods.push(running(
                ns,
                &format!("p{i}"),
                &format!("registry.example/app@{DIGEST}"),
            ));
        }
        let report = audit(policy(REQUIRE), pods, &store, &Options::default()).await;
        assert_eq!(store.resolves.load(Ordering::SeqCst), 1);
        assert_eq!(store.evidence.load(Ordering::SeqCst), 1);
        assert_eq!(report.digests_verified, 1);
        // Nothing signed it: violating where evidence is required, compliant where the
        // namespace's rule allows everything.
        assert_eq!(report.count(Compliance::Compliant), 20);
        assert_eq!(report.count(Compliance::Violating), 60);
        let tools = &report.findings[6];
        assert_eq!(tools.running.namespace, "tools");
        assert_eq!(tools.rule, "namespace tools");
        assert!(tools.reasons.is_empty());
        let a = &report.findings[0];
        assert_eq!(a.rule, "default");
        assert_eq!(
            a.digest.as_ref().map(ToString::to_string).as_deref(),
            Some(DIGEST)
        );
        assert!(
            a.reasons.iter().any(|r| r.contains("attestor build")),
            "{:?}",
            a.reasons
        );

        // A second run asks again: nothing is kept between runs.
        let again = audit(
            policy(REQUIRE),
            vec![running("a", "p", "registry.example/app:1")],
            &store,
            &Options::default(),
        )
        .await;
        assert_eq!(again.count(Compliance::Violating), 1);
        assert_eq!(store.resolves.load(Ordering::SeqCst), 2);
        assert_eq!(store.evidence.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_registry_is_an_error_not_a_verdict() {
        let store = Counting {
            fail: true,
            ..Counting::default()
        };
        let pods = vec![
            running("a", "p1", "registry.example/app:1"),
            running("tools", "p2", "registry.example/app:1"),
            running("a", "p3", "not a reference"),
        ];
        let report = audit(policy(REQUIRE), pods, &store, &Options::default()).await;
        let outcomes: Vec<Compliance> = report.findings.iter().map(|f| f.compliance).collect();
        assert_eq!(
            outcomes,
            [
                Compliance::Error,
                Compliance::Compliant,
                Compliance::Violating
            ]
        );
        assert!(
            report.findings[0].reasons[0].contains("connection refused"),
            "{:?}",
            report.findings[0].reasons
        );
        assert!(
            report.findings[2].reasons[0].starts_with("not a valid image reference"),
            "{:?}",
            report.findings[2].reasons
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dry_run_rule_that_would_deny_is_a_violation_that_says_so() {
        let text = REQUIRE.replace(
            "enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG\n  requireAttestationsBy",
            "enforcementMode: DRYRUN_AUDIT_LOG_ONLY\n  requireAttestationsBy",
        );
        let report = audit(
            policy(&text),
            vec![running("a", "p", "registry.example/app:1")],
            &Counting::default(),
            &Options::default(),
        )
        .await;
        let f = &report.findings[0];
        assert_eq!(f.compliance, Compliance::Violating);
        assert_eq!(f.enforcement, Some(Enforcement::DryRun));
        assert!(f.reasons[0].contains("dry-run"), "{:?}", f.reasons);
    }
}
