//! The admission webhooks' logic: validate (decide every image, deny with reasons, warn in
//! dry run, honour break-glass and fail-open, audit) and mutate (pin tags to digests).

use std::collections::HashMap;

use futures_util::StreamExt as _;
use json_patch::jsonptr::PointerBuf;
use json_patch::{Patch, PatchOperation, ReplaceOperation};
use kube_core::Status;
use kube_core::admission::AdmissionResponse;
use signet_core::digest::Digest;
use signet_core::reference::ImageRef;
use signet_verify::AdmissionContext;
use tokio::time::Instant;

use crate::OnVerificationError;
use crate::admission::{Review, Workload};
use crate::app::{App, Tags, Verdict};
use crate::audit::{Event, EventKind, ImageRecord};
use crate::explorer::{Record, Source};
use crate::metrics::{Outcome, Pin};

/// Most characters of one image's part of a denial message; `kubectl` shows the whole message.
const MAX_IMAGE_MESSAGE: usize = 300;
/// Most images named in one denial message.
const MAX_IMAGES_IN_MESSAGE: usize = 10;
/// Kubernetes truncates warnings longer than 256 characters.
const MAX_WARNING: usize = 250;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Allowed,
    Denied,
    WouldDeny,
    Unverified,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Allowed => "allowed",
            State::Denied => "denied",
            State::WouldDeny => "would-deny",
            State::Unverified => "unverified",
        }
    }
}

/// What became of one distinct image of the request.
#[derive(Debug, Clone)]
struct ImageResult {
    image: String,
    digest: Option<Digest>,
    rule: String,
    state: State,
    reasons: Vec<String>,
    /// The evidence the decision rests on, with when it was signed.
    evidence: Vec<String>,
    /// When the decision stops holding by time (`maxAge`, `validUntil`).
    valid_until: Option<String>,
}

impl ImageResult {
    fn summary(&self) -> String {
        truncate(
            &format!("{}: {}", self.image, self.reasons.join("; ")),
            MAX_IMAGE_MESSAGE,
        )
    }

    fn record(&self) -> ImageRecord {
        ImageRecord {
            image: self.image.clone(),
            digest: self.digest.as_ref().map(ToString::to_string),
            rule: self.rule.clone(),
            result: self.state.as_str(),
            reasons: self.reasons.clone(),
            evidence: self.evidence.clone(),
            valid_until: self.valid_until.clone(),
        }
    }
}

/// The answer to a validating review, and how it ended.
pub(crate) struct Checked {
    pub(crate) response: AdmissionResponse,
    pub(crate) outcome: Outcome,
}

/// `s` cut to at most `max` characters, with an ellipsis when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn tag_only_reason(image: &ImageRef) -> String {
    let tag = image.tag().unwrap_or("latest");
    format!(
        "not pinned to a digest: write it as {}:{tag}@sha256:<digest>, or let signet's mutating \
         webhook pin it, so that the image that runs is the image verified",
        image.name()
    )
}

/// Runs `futures` at most `limit` at a time, each starting as soon as any other ends (a slow
/// first image does not hold the rest back, as `buffered` would), and returns their outputs
/// in the order given.
async fn in_order<T>(futures: Vec<impl std::future::Future<Output = T>>, limit: usize) -> Vec<T> {
    let mut done: Vec<(usize, T)> = futures_util::stream::iter(
        futures
            .into_iter()
            .enumerate()
            .map(|(i, f)| async move { (i, f.await) }),
    )
    .buffer_unordered(limit.max(1))
    .collect()
    .await;
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, t)| t).collect()
}

/// The distinct images of `w`, in order of first appearance.
fn distinct_images(w: &Workload) -> Vec<&str> {
    let mut seen = std::collections::HashSet::new();
    w.images
        .iter()
        .map(|u| u.image.as_str())
        .filter(|i| seen.insert(*i))
        .collect()
}

fn context(app: &App, w: &Workload) -> AdmissionContext {
    AdmissionContext {
        cluster: app.cluster.clone(),
        namespace: w.namespace.clone(),
        service_account: Some(w.service_account.clone()),
    }
}

fn event(kind: EventKind, uid: &str, w: &Workload, rule: &str, results: &[ImageResult]) -> Event {
    let mut event = Event::now(kind);
    event.uid = Some(uid.to_string());
    event.namespace = w.namespace.clone();
    event.object = Some(w.object());
    event.service_account = Some(w.service_account.clone());
    event.images = distinct_images(w).into_iter().map(str::to_string).collect();
    event.digests = results
        .iter()
        .filter_map(|r| r.digest.as_ref().map(ToString::to_string))
        .collect();
    event.rule = Some(rule.to_string());
    event.reasons = results
        .iter()
        .filter(|r| r.state != State::Allowed)
        .map(|r| format!("{}: {}", r.image, r.reasons.join("; ")))
        .collect();
    event.results = results.iter().map(ImageResult::record).collect();
    event
}

/// Keeps the decision for the decision explorer (nothing is built when it is off).
fn remember<I: ExactSizeIterator<Item = ImageRecord>>(
    app: &App,
    uid: &str,
    w: &Workload,
    rule: &str,
    outcome: Outcome,
    images: impl FnOnce() -> I,
    reasons: &[String],
) {
    app.recent.record(|| {
        Record::new(
            Source::Admission {
                uid: uid.to_string(),
                kind: w.kind.clone(),
                name: w.name.clone(),
            },
            w.namespace.as_deref(),
            Some(&w.service_account),
            rule,
            outcome,
            images(),
            reasons,
        )
    });
}

/// The images of `w` as written, none verified (made only as far as they are kept).
fn unverified(w: &Workload) -> impl ExactSizeIterator<Item = ImageRecord> {
    distinct_images(w).into_iter().map(|image| ImageRecord {
        image: image.to_string(),
        digest: None,
        rule: String::new(),
        result: State::Unverified.as_str(),
        reasons: Vec::new(),
        evidence: Vec::new(),
        valid_until: None,
    })
}

/// Decides a validating admission review.
pub(crate) async fn validate(app: &App, review: Review) -> Checked {
    let Review {
        mut response,
        uid,
        workload,
    } = review;
    let Some(w) = workload.filter(|w| !w.images.is_empty()) else {
        return Checked {
            response,
            outcome: Outcome::Allowed,
        };
    };
    let loaded = app.policy();
    let ctx = context(app, &w);
    let chosen = loaded.policy.rule_for(&ctx);
    let rule = match chosen.key {
        Some(key) => format!("{} {key}", chosen.label),
        None => chosen.label.to_string(),
    };

    if w.break_glass {
        app.audit
            .write(&event(EventKind::BreakGlass, &uid, &w, &rule, &[]));
        tracing::warn!(uid, object = %w.object(), namespace = ?w.namespace, "break-glass admission");
        response.warnings = Some(vec![
            "signet: break-glass: admitted without verifying its images; this is audited"
                .to_string(),
        ]);
        remember(
            app,
            &uid,
            &w,
            &rule,
            Outcome::BreakGlass,
            || unverified(&w),
            &["break-glass: admitted without verifying its images".to_string()],
        );
        return Checked {
            response,
            outcome: Outcome::BreakGlass,
        };
    }

    let images = distinct_images(&w);
    if images.len() > app.limits.max_images_per_review {
        let message = format!(
            "signet: {} denied: it names {} distinct images, more than the {} signet verifies \
             for one object; none was verified",
            w.object(),
            images.len(),
            app.limits.max_images_per_review
        );
        response.allowed = false;
        response.result = Status::failure(&message, "Forbidden").with_code(403);
        let mut refused = event(EventKind::Deny, &uid, &w, &rule, &[]);
        refused.reasons = vec![message];
        app.audit.write(&refused);
        tracing::warn!(uid, object = %w.object(), images = images.len(), "denied: too many images");
        remember(
            app,
            &uid,
            &w,
            &rule,
            Outcome::Denied,
            || unverified(&w),
            &refused.reasons,
        );
        return Checked {
            response,
            outcome: Outcome::Denied,
        };
    }

    // One deadline for the whole review: images still unverified when it passes are reported
    // as such, and their work is dropped (a verification nobody waits for any more stops).
    let deadline = Instant::now() + app.deadline;
    let checks: Vec<_> = images
        .into_iter()
        .map(|written| {
            let (loaded, ctx) = (&loaded, &ctx);
            async move {
                let image = match written.parse::<ImageRef>() {
                    Ok(image) => image,
                    Err(e) => {
                        return ImageResult {
                            image: written.to_string(),
                            digest: None,
                            rule: String::new(),
                            state: State::Denied,
                            reasons: vec![format!("not a valid image reference: {e}")],
                            evidence: Vec::new(),
                            valid_until: None,
                        };
                    }
                };
                let verdict = tokio::time::timeout_at(
                    deadline,
                    app.verdict(loaded, &image, ctx, Tags::Refuse),
                )
                .await
                .unwrap_or_else(|_| {
                    Verdict::Failed(format!(
                        "verification did not finish within the {}s deadline",
                        app.deadline.as_secs_f32()
                    ))
                });
                result(written, &image, verdict)
            }
        })
        .collect();
    // Collected first: a stream over a closure borrowing the review is not `Send` enough for
    // axum's handler bounds.
    let verdicts: Vec<ImageResult> = in_order(checks, app.limits.images_in_flight_per_review).await;

    let denied: Vec<&ImageResult> = verdicts
        .iter()
        .filter(|r| r.state == State::Denied)
        .collect();
    let failed: Vec<&ImageResult> = verdicts
        .iter()
        .filter(|r| r.state == State::Unverified)
        .collect();
    let would_deny: Vec<&ImageResult> = verdicts
        .iter()
        .filter(|r| r.state == State::WouldDeny)
        .collect();

    let mut warnings = Vec::new();
    for r in &would_deny {
        warnings.push(truncate(
            &format!("signet dry run, would deny {}", r.summary()),
            MAX_WARNING,
        ));
    }
    if !would_deny.is_empty() {
        app.audit
            .write(&event(EventKind::DryRun, &uid, &w, &rule, &verdicts));
    }

    let fail_closed = app.on_verification_error == OnVerificationError::FailClosed;
    let outcome = if !denied.is_empty() || (!failed.is_empty() && fail_closed) {
        let mut listed: Vec<String> = denied.iter().map(|r| r.summary()).collect();
        listed.extend(failed.iter().map(|r| {
            truncate(
                &format!(
                    "{}: could not verify, and signet fails closed (retry later): {}",
                    r.image,
                    r.reasons.join("; ")
                ),
                MAX_IMAGE_MESSAGE,
            )
        }));
        let count = listed.len();
        listed.truncate(MAX_IMAGES_IN_MESSAGE);
        let mut message = format!(
            "signet: {} denied, {count} image(s) not admitted: {}",
            w.object(),
            listed.join(" | ")
        );
        if count > MAX_IMAGES_IN_MESSAGE {
            message.push_str(&format!(" | … and {} more", count - MAX_IMAGES_IN_MESSAGE));
        }
        response.allowed = false;
        response.result = Status::failure(&message, "Forbidden").with_code(403);
        app.audit
            .write(&event(EventKind::Deny, &uid, &w, &rule, &verdicts));
        tracing::info!(uid, object = %w.object(), namespace = ?w.namespace, "denied");
        if denied.is_empty() {
            Outcome::Error
        } else {
            Outcome::Denied
        }
    } else if !failed.is_empty() {
        for r in &failed {
            warnings.push(truncate(
                &format!(
                    "signet fail-open: admitted {} without verification: {}",
                    r.image,
                    r.reasons.join("; ")
                ),
                MAX_WARNING,
            ));
        }
        app.audit
            .write(&event(EventKind::FailOpen, &uid, &w, &rule, &verdicts));
        tracing::warn!(uid, object = %w.object(), "admitted without verification (fail-open)");
        Outcome::FailOpen
    } else if !would_deny.is_empty() {
        Outcome::DryRun
    } else {
        Outcome::Allowed
    };
    if !warnings.is_empty() {
        response.warnings = Some(warnings);
    }
    remember(
        app,
        &uid,
        &w,
        &rule,
        outcome,
        || verdicts.iter().map(ImageResult::record),
        &[],
    );
    Checked { response, outcome }
}

fn result(written: &str, image: &ImageRef, verdict: Verdict) -> ImageResult {
    match verdict {
        Verdict::Decided(decision) => ImageResult {
            image: written.to_string(),
            digest: decision.digest.clone(),
            rule: decision.rule.clone(),
            state: match decision.outcome {
                signet_verify::Outcome::Denied => State::Denied,
                signet_verify::Outcome::AllowedDryRunWouldDeny => State::WouldDeny,
                signet_verify::Outcome::Allowed => State::Allowed,
            },
            reasons: decision.reasons.clone(),
            evidence: decision
                .accepted
                .iter()
                .map(|a| {
                    let signed = a
                        .signed_at
                        .as_ref()
                        .map(|t| format!(", signed at {} ({})", t.time, t.source))
                        .unwrap_or_default();
                    match &a.certificate {
                        // Keyless / own CA: the identity, issuer and log entry, not the
                        // one-time key.
                        Some(c) => format!(
                            "{} by certificate for {c}{signed}",
                            a.location.with_format()
                        ),
                        None => {
                            format!("{} by key {}{signed}", a.location.with_format(), a.key_id)
                        }
                    }
                })
                .collect(),
            valid_until: decision.valid_until.map(signet_core::signed_time::format),
        },
        Verdict::TagOnly { rule, dry_run } => ImageResult {
            image: written.to_string(),
            digest: None,
            rule,
            state: if dry_run {
                State::WouldDeny
            } else {
                State::Denied
            },
            reasons: vec![tag_only_reason(image)],
            evidence: Vec::new(),
            valid_until: None,
        },
        Verdict::Failed(reason) => ImageResult {
            image: written.to_string(),
            digest: None,
            rule: String::new(),
            state: State::Unverified,
            reasons: vec![reason],
            evidence: Vec::new(),
            valid_until: None,
        },
    }
}

/// `written` pinned to `digest`, keeping the name and tag as written (`:latest` made
/// explicit, since that is the tag that was resolved).
fn pinned(written: &str, image: &ImageRef, digest: &signet_core::digest::Digest) -> String {
    match image.tag() {
        Some(_) => format!("{written}@{digest}"),
        None => format!("{written}:latest@{digest}"),
    }
}

/// Answers a mutating admission review: every tag-only image from a trusted registry that is
/// not exempt is replaced by `name:tag@sha256:…`, the digest its tag names now.
///
/// The mutating webhook never denies: an image it cannot pin is left as it is, with a warning,
/// and the validating webhook refuses it.
pub(crate) async fn mutate(app: &App, review: Review) -> AdmissionResponse {
    let Review {
        mut response,
        workload,
        ..
    } = review;
    let Some(w) = workload.filter(|w| !w.break_glass && !w.images.is_empty()) else {
        return response;
    };
    let loaded = app.policy();
    let policy = &loaded.policy;
    let wanted: Vec<(&str, ImageRef)> = distinct_images(&w)
        .into_iter()
        .filter_map(|written| {
            let image = written.parse::<ImageRef>().ok()?;
            let trusted = policy
                .registry_allowlist
                .as_ref()
                .is_none_or(|globs| globs.iter().any(|g| g.matches(&image.name())));
            (image.digest().is_none() && trusted && !policy.is_exempt(&image))
                .then_some((written, image))
        })
        .collect();
    if wanted.is_empty() {
        return response;
    }
    if wanted.len() > app.limits.max_images_per_review {
        // The validating webhook denies such an object; pinning none of it costs nothing.
        response.warnings = Some(vec![truncate(
            &format!(
                "signet pins at most {} images of one object and this one names {}; none was \
                 pinned, and the validating webhook will refuse it",
                app.limits.max_images_per_review,
                wanted.len()
            ),
            MAX_WARNING,
        )]);
        return response;
    }
    let deadline = Instant::now() + app.deadline;
    let resolutions: Vec<_> = wanted
        .into_iter()
        .map(|(written, image)| async move {
            let outcome = tokio::time::timeout_at(deadline, app.resolve(&image))
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "resolving the tag did not finish within the {}s deadline",
                        app.deadline.as_secs_f32()
                    ))
                })
                .map(|p| pinned(written, &image, p.digest()));
            (written, outcome)
        })
        .collect();
    let resolved: Vec<(&str, Result<String, String>)> =
        in_order(resolutions, app.limits.images_in_flight_per_review).await;

    let mut warnings = Vec::new();
    let mut pins: HashMap<&str, String> = HashMap::new();
    for (written, outcome) in resolved {
        app.metrics.pin(if outcome.is_ok() {
            Pin::Pinned
        } else {
            Pin::Unresolved
        });
        match outcome {
            Ok(value) => {
                pins.insert(written, value);
            }
            Err(e) => warnings.push(truncate(
                &format!(
                    "signet could not pin {written} to a digest ({e}); the validating webhook \
                     will refuse it"
                ),
                MAX_WARNING,
            )),
        }
    }
    let operations: Vec<PatchOperation> = w
        .images
        .iter()
        .filter_map(|u| {
            pins.get(u.image.as_str()).map(|value| {
                PatchOperation::Replace(ReplaceOperation {
                    path: PointerBuf::from_tokens(u.path.iter().map(String::as_str)),
                    value: serde_json::Value::String(value.clone()),
                })
            })
        })
        .collect();
    if !operations.is_empty() {
        response = match response.clone().with_patch(Patch(operations)) {
            Ok(patched) => patched,
            Err(e) => {
                warnings.push(format!("signet could not write the patch: {e}"));
                response
            }
        };
    }
    if !warnings.is_empty() {
        response.warnings = Some(warnings);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_counts_characters_and_marks_the_cut() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("ééééé", 3), "éé…");
        assert_eq!(
            truncate(&"x".repeat(400), MAX_IMAGE_MESSAGE)
                .chars()
                .count(),
            300
        );
    }

    #[test]
    fn pins_keep_the_name_as_written() {
        let digest: signet_core::digest::Digest =
            "sha256:1111111111111111111111111111111111111111111111111111111111111111"
                .parse()
                .unwrap();
        let image: ImageRef = "nginx:1.27".parse().unwrap();
        assert_eq!(
            pinned("nginx:1.27", &image, &digest),
            format!("nginx:1.27@{digest}")
        );
        let image: ImageRef = "registry.example/app".parse().unwrap();
        assert_eq!(
            pinned("registry.example/app", &image, &digest),
            format!("registry.example/app:latest@{digest}")
        );
    }
}
