//! HTTP routes: admission webhooks, verify API, health, readiness and metrics.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use kube_core::Status;
use kube_core::admission::AdmissionResponse;
use serde::Deserialize;
use signet_core::reference::ImageRef;
use signet_verify::AdmissionContext;
use tokio::time::Instant;

use crate::admission::{self, ReviewError};
use crate::app::{App, Tags, Verdict};
use crate::audit::ImageRecord;
use crate::check;
use crate::explorer::{Record, Source};
use crate::metrics::{Endpoint, Outcome};

/// Largest request body read. An AdmissionReview carries the object and, for updates, the old
/// object; Kubernetes objects are at most about 1.5 MiB each.
const MAX_BODY: usize = 8 << 20;

/// Most requests read and answered at once (see [`router`]): 64 × 8 MiB bounds what request
/// bodies can take, whatever the number of connections.
const MAX_REQUESTS_IN_FLIGHT: usize = 64;

pub(crate) fn router(app: Arc<App>) -> Router {
    // A whole request, body included, must arrive and be answered within the deadline plus
    // the header timeout: a client trickling a body in holds no connection for longer.
    let limit = app.deadline + app.limits.header_read_timeout;
    // Bodies being read and answered at once, whatever the connections: at most this many
    // times the body limit is held in memory (others wait, within their timeout).
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_REQUESTS_IN_FLIGHT));
    let token_app = Arc::clone(&app);
    Router::new()
        .route("/admission/validate", post(validate))
        .route("/admission/mutate", post(mutate))
        .route(
            "/v1/verify",
            post(verify).route_layer(axum::middleware::from_fn(
                // The token is checked before the body is read.
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    let app = Arc::clone(&token_app);
                    async move {
                        match authorize_api(&app, request.headers()).await {
                            Some(refused) => refused,
                            None => next.run(request).await,
                        }
                    }
                },
            )),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let in_flight = Arc::clone(&in_flight);
                async move {
                    let answered = async {
                        let _slot = in_flight.acquire_owned().await.ok();
                        next.run(request).await
                    };
                    match tokio::time::timeout(limit, answered).await {
                        Ok(response) => response,
                        Err(_) => error(
                            StatusCode::REQUEST_TIMEOUT,
                            format!(
                                "the request was not received and answered within {}s",
                                limit.as_secs()
                            ),
                        ),
                    }
                }
            },
        ))
        .with_state(app)
}

fn review(response: AdmissionResponse) -> Response {
    let mut body = match serde_json::to_value(response.into_review()) {
        Ok(body) => body,
        Err(e) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response();
        }
    };
    // The v1 API documents `patch` as base64 (Go's encoding of []byte); kube-core writes the
    // bytes as a JSON array, which the API server happens to accept but other callers may not.
    if let Some(patch) = body.pointer_mut("/response/patch")
        && let Some(bytes) = patch.as_array().map(|items| {
            items
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect::<Vec<u8>>()
        })
    {
        *patch = serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    Json(body).into_response()
}

fn bad_review(error: &ReviewError) -> Response {
    (
        StatusCode::BAD_REQUEST,
        format!("{error}; expected an admission.k8s.io/v1 AdmissionReview\n"),
    )
        .into_response()
}

async fn validate(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let started = Instant::now();
    let (response, outcome) = match admission::parse(&body) {
        Ok(parsed) => {
            let checked = check::validate(&app, parsed).await;
            (review(checked.response), checked.outcome)
        }
        Err(ReviewError::Object {
            mut response,
            uid,
            kind,
            reason,
        }) => {
            let message = format!("signet cannot read the {kind} in request {uid}: {reason}");
            response.allowed = false;
            response.result = Status::failure(&message, "BadRequest").with_code(400);
            (review(*response), Outcome::Error)
        }
        Err(e) => (bad_review(&e), Outcome::Error),
    };
    app.metrics.decision(Endpoint::Validate, outcome);
    app.metrics
        .latency(Endpoint::Validate, started.elapsed().as_secs_f64());
    response
}

async fn mutate(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let started = Instant::now();
    let response = match admission::parse(&body) {
        Ok(parsed) => review(check::mutate(&app, parsed).await),
        // The mutating webhook never denies; the validating webhook refuses what it cannot
        // read.
        Err(ReviewError::Object {
            mut response,
            kind,
            reason,
            ..
        }) => {
            response.warnings = Some(vec![check::truncate(
                &format!("signet cannot read the {kind} to pin its images: {reason}"),
                250,
            )]);
            review(*response)
        }
        Err(e) => bad_review(&e),
    };
    app.metrics
        .latency(Endpoint::Mutate, started.elapsed().as_secs_f64());
    response
}

/// The body of `POST /v1/verify`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct VerifyRequest {
    image: String,
    #[serde(default)]
    cluster: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    service_account: Option<String>,
}

/// With an API token file configured, the verify API answers only requests that carry
/// `Authorization: Bearer <token>` with the file's token (re-read on every call, so a rotated
/// Secret takes effect at once); `Some` is the refusal.
async fn authorize_api(app: &App, headers: &axum::http::HeaderMap) -> Option<Response> {
    let path = app.api_token_file.as_ref()?;
    let expected = match tokio::fs::read_to_string(path).await {
        Ok(text) if !text.trim().is_empty() => text.trim().to_string(),
        Ok(_) | Err(_) => {
            // Fail closed: a missing or empty token file lets nobody in.
            tracing::error!(file = %path.display(), "cannot read the API token file");
            return Some(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the verify API's token file cannot be read".into(),
            ));
        }
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, token)| token)
        })
        .map(str::trim);
    // Compared as digests, so the time taken does not tell how much of a guess was right.
    let matches = given.is_some_and(|given| {
        signet_core::digest::Digest::sha256_of(given.as_bytes())
            == signet_core::digest::Digest::sha256_of(expected.as_bytes())
    });
    if matches {
        return None;
    }
    let mut refused = error(
        StatusCode::UNAUTHORIZED,
        "the verify API needs Authorization: Bearer <token>".into(),
    );
    refused.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer realm=\"signet\""),
    );
    Some(refused)
}

/// Keeps a verify API decision for the decision explorer (nothing is built when it is off).
fn remember(
    app: &App,
    ctx: &AdmissionContext,
    rule: &str,
    outcome: Outcome,
    image: impl FnOnce() -> ImageRecord,
) {
    app.recent.record(|| {
        Record::new(
            Source::VerifyApi,
            ctx.namespace.as_deref(),
            ctx.service_account.as_deref(),
            rule,
            outcome,
            std::iter::once(image()),
            &[],
        )
    });
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

async fn verify(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let started = Instant::now();
    let (response, outcome) = verify_request(&app, &body).await;
    if let Some(outcome) = outcome {
        app.metrics.decision(Endpoint::Verify, outcome);
    }
    app.metrics
        .latency(Endpoint::Verify, started.elapsed().as_secs_f64());
    response
}

async fn verify_request(app: &App, body: &[u8]) -> (Response, Option<Outcome>) {
    let request: VerifyRequest = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(e) => {
            let message = format!(
                "invalid request body: {e}; expected JSON {{\"image\": \"registry/repo:tag or \
                 @sha256:…\", \"cluster\"?: \"…\", \"namespace\"?: \"…\", \"serviceAccount\"?: \
                 \"…\"}}"
            );
            return (error(StatusCode::BAD_REQUEST, message), None);
        }
    };
    let image: ImageRef = match request.image.parse() {
        Ok(image) => image,
        Err(e) => return (error(StatusCode::BAD_REQUEST, e.to_string()), None),
    };
    let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let ctx = AdmissionContext {
        cluster: non_empty(request.cluster).or_else(|| app.cluster.clone()),
        namespace: non_empty(request.namespace),
        service_account: non_empty(request.service_account),
    };
    if ctx.service_account.is_some() && ctx.namespace.is_none() {
        return (
            error(
                StatusCode::BAD_REQUEST,
                "serviceAccount needs namespace: service account rules are keyed \
                 \"namespace:serviceaccount\""
                    .into(),
            ),
            None,
        );
    }
    let loaded = app.policy();
    let verdict = tokio::time::timeout(
        app.deadline,
        app.verdict(&loaded, &image, &ctx, Tags::Resolve),
    )
    .await;
    match verdict {
        Ok(Verdict::Decided(decision)) => {
            let outcome = match decision.outcome {
                signet_verify::Outcome::Denied => Outcome::Denied,
                signet_verify::Outcome::AllowedDryRunWouldDeny => Outcome::DryRun,
                signet_verify::Outcome::Allowed => Outcome::Allowed,
            };
            remember(app, &ctx, &decision.rule, outcome, || ImageRecord {
                image: request.image.clone(),
                digest: decision.digest.as_ref().map(ToString::to_string),
                rule: decision.rule.clone(),
                result: match decision.outcome {
                    signet_verify::Outcome::Denied => "denied",
                    signet_verify::Outcome::AllowedDryRunWouldDeny => "would-deny",
                    signet_verify::Outcome::Allowed => "allowed",
                },
                reasons: decision.reasons.clone(),
                evidence: Vec::new(),
                valid_until: None,
            });
            (Json(&*decision).into_response(), Some(outcome))
        }
        Ok(Verdict::Failed(reason)) => {
            remember(app, &ctx, "", Outcome::Error, || ImageRecord {
                image: request.image.clone(),
                digest: None,
                rule: String::new(),
                result: "unverified",
                reasons: vec![reason.clone()],
                evidence: Vec::new(),
                valid_until: None,
            });
            (
                error(
                    StatusCode::BAD_GATEWAY,
                    format!("cannot verify {image}: {reason}"),
                ),
                Some(Outcome::Error),
            )
        }
        // Tags are resolved for this endpoint; this arm is here for completeness.
        Ok(Verdict::TagOnly { .. }) => (
            error(
                StatusCode::BAD_REQUEST,
                format!("{image} is not pinned to a digest"),
            ),
            Some(Outcome::Error),
        ),
        Err(_) => {
            let reason = format!(
                "verification did not finish within the {}s deadline",
                app.deadline.as_secs_f32()
            );
            remember(app, &ctx, "", Outcome::Error, || ImageRecord {
                image: request.image.clone(),
                digest: None,
                rule: String::new(),
                result: "unverified",
                reasons: vec![reason.clone()],
                evidence: Vec::new(),
                valid_until: None,
            });
            (
                error(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("cannot verify {image}: {reason}"),
                ),
                Some(Outcome::Error),
            )
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.is_ready() {
        (
            StatusCode::OK,
            format!("ready: policy generation {}\n", app.policy().generation),
        )
            .into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    match app.metrics.render(
        app.client.request_count(),
        &app.client.responses_by_class(),
        &app.cache_sizes(),
    ) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render metrics: {e}\n"),
        )
            .into_response(),
    }
}
