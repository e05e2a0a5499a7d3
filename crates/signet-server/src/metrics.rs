//! Prometheus metrics, in the text exposition format at `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use signet_registry::RegistryError;
use signet_verify::audit::Compliance;
use signet_verify::{Rejected, Rejection};

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every image admitted.
    Allowed,
    /// At least one image denied by the policy (or not pinned, or not a valid reference).
    Denied,
    /// Admitted under a dry-run rule that would have denied.
    DryRun,
    /// Denied because verification failed (registry, deadline): fail closed.
    Error,
    /// Admitted by the break-glass label or annotation.
    BreakGlass,
    /// Admitted although verification failed, because of `--fail-open`.
    FailOpen,
}

impl Outcome {
    pub(crate) const ALL: [Outcome; 6] = [
        Outcome::Allowed,
        Outcome::Denied,
        Outcome::DryRun,
        Outcome::Error,
        Outcome::BreakGlass,
        Outcome::FailOpen,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::DryRun => "dryrun",
            Outcome::Error => "error",
            Outcome::BreakGlass => "breakglass",
            Outcome::FailOpen => "failopen",
        }
    }
}

/// Which endpoint served a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Validate,
    Mutate,
    Verify,
}

impl Endpoint {
    fn as_str(self) -> &'static str {
        match self {
            Endpoint::Validate => "validate",
            Endpoint::Mutate => "mutate",
            Endpoint::Verify => "verify",
        }
    }
}

/// The daemon's caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CacheKind {
    Decision,
    Evidence,
    Tag,
}

impl CacheKind {
    fn as_str(self) -> &'static str {
        match self {
            CacheKind::Decision => "decision",
            CacheKind::Evidence => "evidence",
            CacheKind::Tag => "tag",
        }
    }
}

/// Whether a cache lookup found a fresh entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CacheResult {
    Hit,
    Miss,
}

impl CacheResult {
    /// A hit when the entry was already there, a miss when this lookup had to make it.
    pub(crate) fn of_fresh(made_by_this_lookup: bool) -> Self {
        if made_by_this_lookup {
            CacheResult::Miss
        } else {
            CacheResult::Hit
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            CacheResult::Hit => "hit",
            CacheResult::Miss => "miss",
        }
    }
}

/// How a reload of the TLS certificate ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TlsReload {
    Loaded,
    Failed,
}

impl TlsReload {
    const ALL: [TlsReload; 2] = [TlsReload::Loaded, TlsReload::Failed];

    fn as_str(self) -> &'static str {
        match self {
            TlsReload::Loaded => "ok",
            TlsReload::Failed => "error",
        }
    }
}

/// Whether the mutating webhook could pin an image to a digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pin {
    Pinned,
    Unresolved,
}

impl Pin {
    const ALL: [Pin; 2] = [Pin::Pinned, Pin::Unresolved];

    fn as_str(self) -> &'static str {
        match self {
            Pin::Pinned => "pinned",
            Pin::Unresolved => "unresolved",
        }
    }
}

type Labels1 = [(&'static str, &'static str); 1];
type Labels2 = [(&'static str, &'static str); 2];

fn latency_histogram() -> Histogram {
    // 0.25 ms to about 8 s, doubling: warm answers take well under a millisecond, cold ones
    // are bounded by the request deadline.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

pub(crate) struct Metrics {
    registry: Registry,
    decisions: Family<Labels2, Counter>,
    latency: Family<Labels1, Histogram, fn() -> Histogram>,
    cache: Family<Labels2, Counter>,
    cache_entries: Family<Labels1, Gauge>,
    registry_requests: Counter,
    registry_requests_seen: AtomicU64,
    registry_errors: Family<[(&'static str, String); 1], Counter>,
    registry_responses: Family<Labels1, Counter>,
    /// The client's running totals per class as last exported, to add only what is new.
    registry_responses_seen: std::sync::Mutex<signet_registry::ResponseCounts>,
    rejected_evidence: Family<Labels1, Counter>,
    pub(crate) policy_reloads: Counter,
    pub(crate) policy_reload_errors: Counter,
    pub(crate) policy_generation: Gauge,
    tls_reloads: Family<Labels1, Counter>,
    pins: Family<Labels1, Counter>,
    running_images: Family<Labels1, Gauge>,
    continuous_runs: Family<Labels1, Counter>,
    continuous_last_run: Gauge<f64, AtomicU64>,
    continuous_last_duration: Gauge<f64, AtomicU64>,
    continuous_last_digests: Gauge,
    tls_certificate_expiry: Gauge<f64, AtomicU64>,
}

/// How a continuous validation run ended.
const RUN_RESULTS: [&str; 2] = ["completed", "failed"];

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("signet");
        let decisions = Family::<Labels2, Counter>::default();
        let latency = Family::<Labels1, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let cache = Family::<Labels2, Counter>::default();
        let cache_entries = Family::<Labels1, Gauge>::default();
        let registry_requests = Counter::default();
        let registry_errors = Family::<[(&'static str, String); 1], Counter>::default();
        let rejected_evidence = Family::<Labels1, Counter>::default();
        let registry_responses = Family::<Labels1, Counter>::default();
        let policy_reloads = Counter::default();
        let policy_reload_errors = Counter::default();
        let policy_generation = Gauge::default();
        let tls_reloads = Family::<Labels1, Counter>::default();
        let pins = Family::<Labels1, Counter>::default();
        let running_images = Family::<Labels1, Gauge>::default();
        let continuous_runs = Family::<Labels1, Counter>::default();
        let continuous_last_run = Gauge::<f64, AtomicU64>::default();
        let continuous_last_duration = Gauge::<f64, AtomicU64>::default();
        let continuous_last_digests = Gauge::default();
        let tls_certificate_expiry = Gauge::<f64, AtomicU64>::default();

        registry.register(
            "decisions",
            "Admission and verify decisions by endpoint and outcome",
            decisions.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to answer an admission review or verify request",
            latency.clone(),
        );
        registry.register(
            "cache_requests",
            "Cache lookups by cache and result (hit or miss)",
            cache.clone(),
        );
        registry.register(
            "cache_entries",
            "Entries in each cache",
            cache_entries.clone(),
        );
        registry.register(
            "registry_requests",
            "HTTP requests sent to registries (auth and retries included)",
            registry_requests.clone(),
        );
        registry.register(
            "registry_errors",
            "Failed registry operations by HTTP status or kind of failure",
            registry_errors.clone(),
        );
        registry.register(
            "registry_responses",
            "Registry HTTP responses by status class (1xx to 5xx; error: no answer)",
            registry_responses.clone(),
        );
        registry.register(
            "rejected_evidence",
            "Signatures and attestations that did not count in a decision, by cause",
            rejected_evidence.clone(),
        );
        registry.register(
            "policy_reloads",
            "Policy reloads that took effect",
            policy_reloads.clone(),
        );
        registry.register(
            "policy_reload_errors",
            "Policy reloads refused because the new policy does not load",
            policy_reload_errors.clone(),
        );
        registry.register(
            "policy_generation",
            "Generation of the policy in force (1 at start-up)",
            policy_generation.clone(),
        );
        registry.register(
            "tls_reloads",
            "TLS certificate reloads by result",
            tls_reloads.clone(),
        );
        registry.register(
            "tls_certificate_expiry_timestamp_seconds",
            "When the served TLS certificate (the first of the chain) expires, as Unix time; 0 \
             when serving plain HTTP",
            tls_certificate_expiry.clone(),
        );
        registry.register(
            "image_pins",
            "Tag-only images seen by the mutating webhook, by result (pinned or unresolved)",
            pins.clone(),
        );
        registry.register(
            "running_images",
            "Container images of running pods by outcome (compliant, violating, error) at the \
             last continuous validation run; all 0 until one has completed",
            running_images.clone(),
        );
        registry.register(
            "continuous_validation_runs",
            "Continuous validation runs by result (completed; failed: the pods could not be \
             listed)",
            continuous_runs.clone(),
        );
        registry.register(
            "continuous_validation_last_run_timestamp_seconds",
            "When the last continuous validation run completed (Unix time; 0: none yet)",
            continuous_last_run.clone(),
        );
        registry.register(
            "continuous_validation_last_run_duration_seconds",
            "How long the last completed continuous validation run took",
            continuous_last_duration.clone(),
        );
        registry.register(
            "continuous_validation_last_run_digests",
            "Distinct image digests the last completed continuous validation run verified, each \
             once however many containers run it",
            continuous_last_digests.clone(),
        );

        // Every series exists from the start, so that rate() and alerts see zeros, not gaps.
        for endpoint in [Endpoint::Validate, Endpoint::Verify] {
            for outcome in Outcome::ALL {
                drop(decisions.get_or_create(&[
                    ("endpoint", endpoint.as_str()),
                    ("outcome", outcome.as_str()),
                ]));
            }
        }
        for kind in [CacheKind::Decision, CacheKind::Evidence, CacheKind::Tag] {
            for result in ["hit", "miss"] {
                drop(cache.get_or_create(&[("cache", kind.as_str()), ("result", result)]));
            }
        }

        for (class, _) in signet_registry::ResponseCounts::default().iter() {
            drop(registry_responses.get_or_create(&[("class", class)]));
        }
        for cause in Rejection::CAUSES {
            drop(rejected_evidence.get_or_create(&[("reason", cause)]));
        }
        for status in ["unreachable", "timeout"] {
            drop(registry_errors.get_or_create(&[("status", status.to_string())]));
        }
        for reload in TlsReload::ALL {
            drop(tls_reloads.get_or_create(&[("result", reload.as_str())]));
        }
        for pin in Pin::ALL {
            drop(pins.get_or_create(&[("result", pin.as_str())]));
        }
        for compliance in Compliance::ALL {
            drop(running_images.get_or_create(&[("outcome", compliance.as_str())]));
        }
        for result in RUN_RESULTS {
            drop(continuous_runs.get_or_create(&[("result", result)]));
        }

        Metrics {
            registry,
            decisions,
            latency,
            cache,
            cache_entries,
            registry_requests,
            registry_requests_seen: AtomicU64::new(0),
            registry_errors,
            rejected_evidence,
            registry_responses,
            registry_responses_seen: std::sync::Mutex::new(Default::default()),
            policy_reloads,
            policy_reload_errors,
            policy_generation,
            tls_reloads,
            pins,
            running_images,
            continuous_runs,
            continuous_last_run,
            continuous_last_duration,
            continuous_last_digests,
            tls_certificate_expiry,
        }
    }

    pub(crate) fn decision(&self, endpoint: Endpoint, outcome: Outcome) {
        self.decisions
            .get_or_create(&[
                ("endpoint", endpoint.as_str()),
                ("outcome", outcome.as_str()),
            ])
            .inc();
    }

    pub(crate) fn latency(&self, endpoint: Endpoint, seconds: f64) {
        self.latency
            .get_or_create(&[("endpoint", endpoint.as_str())])
            .observe(seconds);
    }

    pub(crate) fn cache(&self, kind: CacheKind, result: CacheResult) {
        self.cache
            .get_or_create(&[("cache", kind.as_str()), ("result", result.as_str())])
            .inc();
    }

    pub(crate) fn registry_error(&self, error: &RegistryError) {
        let status = match error {
            RegistryError::Status { status, .. } => status.to_string(),
            RegistryError::NotFound { .. } => "404".into(),
            RegistryError::Unreachable { .. } => "unreachable".into(),
            RegistryError::DeadlineExceeded { .. } => "timeout".into(),
            RegistryError::Authentication { .. } | RegistryError::Auth(_) => {
                "authentication".into()
            }
            RegistryError::DigestMismatch { .. } => "digest_mismatch".into(),
            RegistryError::TooLarge { .. } | RegistryError::TooMany { .. } => "too_large".into(),
            RegistryError::Malformed { .. } => "malformed".into(),
            _ => "other".into(),
        };
        self.registry_errors
            .get_or_create(&[("status", status)])
            .inc();
    }

    /// Counts the evidence a freshly made decision rejected, by cause (cached decisions are
    /// not counted again).
    pub(crate) fn rejected(&self, rejected: &[Rejected]) {
        for r in rejected {
            self.rejected_evidence
                .get_or_create(&[("reason", r.reason.cause())])
                .inc();
        }
    }

    /// Records the expiry (notAfter) of the certificate now served.
    pub(crate) fn tls_certificate_expires(&self, not_after: SystemTime) {
        let seconds = not_after
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.tls_certificate_expiry.set(seconds);
    }

    pub(crate) fn tls_reload(&self, reload: TlsReload) {
        self.tls_reloads
            .get_or_create(&[("result", reload.as_str())])
            .inc();
    }

    /// A continuous validation run completed: the running images by outcome, the digests
    /// verified, how long it took and when it ended.
    pub(crate) fn continuous_run_completed(
        &self,
        counts: &[(Compliance, usize)],
        digests: usize,
        took: Duration,
        at: SystemTime,
    ) {
        self.continuous_last_digests
            .set(i64::try_from(digests).unwrap_or(i64::MAX));
        for (compliance, count) in counts {
            self.running_images
                .get_or_create(&[("outcome", compliance.as_str())])
                .set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
        self.continuous_runs
            .get_or_create(&[("result", "completed")])
            .inc();
        self.continuous_last_duration.set(took.as_secs_f64());
        self.continuous_last_run.set(
            at.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        );
    }

    /// A continuous validation run failed (the pods could not be listed).
    pub(crate) fn continuous_run_failed(&self) {
        self.continuous_runs
            .get_or_create(&[("result", "failed")])
            .inc();
    }

    pub(crate) fn pin(&self, pin: Pin) {
        self.pins.get_or_create(&[("result", pin.as_str())]).inc();
    }

    /// The metrics page; `registry_requests` and `responses` are the registry client's running
    /// totals and `sizes` the caches' entry counts.
    pub(crate) fn render(
        &self,
        registry_requests: u64,
        responses: &signet_registry::ResponseCounts,
        sizes: &[(CacheKind, u64)],
    ) -> Result<String, std::fmt::Error> {
        {
            // Poisoning only means another render panicked; the numbers are still whole.
            let mut seen = self
                .registry_responses_seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for ((class, total), (_, before)) in responses.iter().zip(seen.iter()) {
                if total > before {
                    self.registry_responses
                        .get_or_create(&[("class", class)])
                        .inc_by(total - before);
                }
            }
            *seen = *responses;
        }
        let seen = self
            .registry_requests_seen
            .fetch_max(registry_requests, Ordering::Relaxed);
        if registry_requests > seen {
            self.registry_requests.inc_by(registry_requests - seen);
        }
        for (kind, size) in sizes {
            self.cache_entries
                .get_or_create(&[("cache", kind.as_str())])
                .set(i64::try_from(*size).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
