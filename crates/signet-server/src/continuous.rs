//! Continuous validation (issue 15): on a schedule, the daemon lists the pods that run, decides
//! every container image again under the policy in force with the engine `signet audit` uses
//! ([`signet_verify::audit`]), writes one audit line per violating (and per undecidable) image,
//! and sets the `signet_running_images` gauges, so that an alert fires when something that runs
//! no longer passes.
//!
//! One run at a time: the next is scheduled only when the previous has ended, after the
//! interval give or take a tenth (jitter, so that replicas started together drift apart).
//! Each run sees the registry as it is now: tags and evidence are fetched afresh, never from
//! the admission caches (a withdrawal pushed after the previous run shows in the next), and
//! each distinct digest once per run. Registry work goes through the daemon's client (egress
//! rules, per-registry limits, `Retry-After` and 429 backoff) and takes a slot among the
//! daemon's verifications in flight, at most as many at once as one admission review may use.

use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use signet_core::digest::Digest;
use signet_core::reference::{ImageRef, PinnedRef};
use signet_registry::{FetchedManifest, Repository, TagOrDigest};
use signet_verify::audit::{self, Compliance, Finding};
use signet_verify::platforms::Source;
use signet_verify::{Evidence, Filter};

use crate::app::App;
use crate::audit::{Event, EventKind};
use crate::pods::{PodSource, list_pods};

/// How the daemon validates what runs.
#[derive(Debug, Clone)]
pub struct ContinuousValidation {
    /// Time between the end of one run and the start of the next (give or take a tenth).
    pub interval: Duration,
    /// Where the pods come from.
    pub pods: PodSource,
    /// Pods asked for per API request.
    pub page_size: u32,
}

impl ContinuousValidation {
    /// Every `interval`, the pods of `pods`, [`crate::DEFAULT_PAGE_SIZE`] per API request.
    pub fn new(interval: Duration, pods: PodSource) -> Self {
        ContinuousValidation {
            interval,
            pods,
            page_size: crate::DEFAULT_PAGE_SIZE,
        }
    }
}

/// Runs validation after validation until the task is aborted.
pub(crate) async fn run(app: Arc<App>, config: ContinuousValidation) {
    // The first run soon after start-up, not one whole interval later; spread a little all
    // the same, so that replicas rolled out together do not list at the same instant.
    let mut wait = config
        .interval
        .min(Duration::from_secs(10))
        .mul_f64(random_unit());
    let mut number = 0u64;
    loop {
        tokio::time::sleep(wait).await;
        number += 1;
        once(&app, &config, number).await;
        wait = config.interval.mul_f64(0.9 + 0.2 * random_unit());
    }
}

/// A number in [0, 1) that differs from call to call and from process to process, for jitter.
fn random_unit() -> f64 {
    // The standard library's hasher keys are random per process and change with each
    // `RandomState`: plenty for spreading schedules, and no dependency for it.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// One run: list, decide, audit, set the gauges.
async fn once(app: &App, config: &ContinuousValidation, number: u64) {
    let started = Instant::now();
    let listing = match list_pods(&config.pods, config.page_size).await {
        Ok(listing) => listing,
        Err(e) => {
            // The gauges keep the last run's counts; the failed run is counted, so that an
            // alert can say validation has stopped rather than that all is well.
            app.metrics.continuous_run_failed();
            tracing::error!(run = number, error = %e, "continuous validation: cannot list pods");
            return;
        }
    };
    let loaded = app.policy();
    let options = audit::Options {
        cluster: app.cluster.clone(),
        concurrency: app.limits.images_in_flight_per_review,
    };
    let (pods, finished) = (listing.pods, listing.finished);
    let report = audit::audit(
        Arc::clone(&loaded.policy),
        listing.images,
        &Fresh(app),
        &options,
    )
    .await;
    for finding in report
        .findings
        .iter()
        .filter(|f| f.compliance != Compliance::Compliant)
    {
        app.audit.write(&event(finding, number));
    }
    let counts = Compliance::ALL.map(|c| (c, report.count(c)));
    let elapsed = started.elapsed();
    app.metrics.continuous_run_completed(
        &counts,
        report.digests_verified,
        elapsed,
        SystemTime::now(),
    );
    tracing::info!(
        run = number,
        pods,
        finished,
        compliant = counts[0].1,
        violating = counts[1].1,
        error = counts[2].1,
        digests = report.digests_verified,
        seconds = elapsed.as_secs_f64(),
        "continuous validation run"
    );
}

/// The audit line of a violating or undecidable image.
fn event(finding: &Finding, run: u64) -> Event {
    let r = &finding.running;
    let mut event = Event::now(EventKind::ContinuousValidation);
    event.run = Some(run);
    event.outcome = Some(finding.compliance.as_str());
    event.namespace = Some(r.namespace.clone());
    event.object = Some(format!("Pod/{}", r.pod));
    event.service_account = Some(r.service_account.clone());
    event.container = Some(r.container.clone());
    event.images = vec![r.image.clone()];
    event.digests = finding.digest.iter().map(ToString::to_string).collect();
    event.rule = Some(finding.rule.clone()).filter(|rule| !rule.is_empty());
    event.reasons = finding.reasons.clone();
    event
}

/// The daemon's registry client and limits, without its caches: what a run reads is the
/// registry now.
struct Fresh<'a>(&'a App);

impl Source for Fresh<'_> {
    type Error = String;

    async fn evidence(&self, pinned: &PinnedRef) -> Result<Arc<Vec<Evidence>>, String> {
        let app = self.0;
        // A slot among the daemon's verifications in flight, shared with admission. Never
        // closed, so `None` cannot happen.
        let _slot = app.verifications.acquire().await.ok();
        let repo = Repository::new(&app.client, &pinned.to_image_ref());
        match Box::pin(signet_verify::gather(&repo, pinned, &Filter::default())).await {
            Ok(found) => Ok(Arc::new(found)),
            Err(e) => {
                app.metrics.registry_error(&e);
                Err(e.to_string())
            }
        }
    }

    async fn manifest_by_tag(
        &self,
        image: &ImageRef,
        tag: &str,
    ) -> Result<Option<FetchedManifest>, String> {
        self.0.fetch_manifest(image, TagOrDigest::Tag(tag)).await
    }

    async fn manifest(&self, image: &ImageRef, digest: &Digest) -> Result<FetchedManifest, String> {
        self.0
            .fetch_manifest(image, TagOrDigest::Digest(digest))
            .await?
            .ok_or_else(|| format!("manifest {digest} not found"))
    }
}

impl audit::Store for Fresh<'_> {
    async fn resolve(&self, image: &ImageRef) -> Result<PinnedRef, String> {
        let app = self.0;
        match Box::pin(Repository::new(&app.client, image).resolve(image)).await {
            Ok(pinned) => Ok(pinned),
            Err(e) => {
                app.metrics.registry_error(&e);
                Err(e.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_the_unit_interval_and_varies() {
        let draws: Vec<f64> = (0..64).map(|_| random_unit()).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)), "{draws:?}");
        assert!(draws.windows(2).any(|w| w[0] != w[1]), "{draws:?}");
    }
}
