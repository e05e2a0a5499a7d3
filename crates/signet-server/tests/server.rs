//! The daemon over HTTP (and HTTPS), started with `bind` on 127.0.0.1:0, fed the
//! AdmissionReview fixtures of `fixtures/admission/`.
//!
//! Most tests need no registry: their policy decides without evidence (ALWAYS_ALLOW,
//! ALWAYS_DENY, exempt images) or refuses tag-only images before any registry is contacted.
//! The rest run against a small registry stub in this file that counts the requests it gets
//! (the real-registry suite is in the workspace's `tests/e2e`).

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a broken fixture or daemon should fail the test loudly"
)]

use base64::Engine as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use signet_server::{OnVerificationError, RunningServer, ServerConfig, TlsFiles, Transport};
use tempfile::TempDir;

const DIGEST_A: &str = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4";

/// Rules by namespace: `allow-all`, `deny-all`, `dry-run` (ALWAYS_DENY in dry run),
/// `dry-run-attested` (attestation required, dry run); everything else requires an attestation
/// by `built-by-ci`. Images under `registry.example.com/base/` are exempt.
const POLICY: &str = r#"
admissionWhitelistPatterns:
  - namePattern: registry.example.com/base/*
defaultAdmissionRule:
  evaluationMode: REQUIRE_ATTESTATION
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
  requireAttestationsBy: [built-by-ci]
kubernetesNamespaceAdmissionRules:
  allow-all: {evaluationMode: ALWAYS_ALLOW, enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG}
  deny-all: {evaluationMode: ALWAYS_DENY, enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG}
  dry-run: {evaluationMode: ALWAYS_DENY, enforcementMode: DRYRUN_AUDIT_LOG_ONLY}
  dry-run-attested:
    evaluationMode: REQUIRE_ATTESTATION
    enforcementMode: DRYRUN_AUDIT_LOG_ONLY
    requireAttestationsBy: [built-by-ci]
attestors:
  - name: built-by-ci
    publicKeys: [{file: ci.pub}]
"#;

/// [`POLICY`] trusting also `host` outright: on loopback, the daemon reaches only registries
/// its policy's registryAllowlist names.
fn policy_trusting(host: &str) -> String {
    format!("registryAllowlist: [\"{host}/**\", \"registry.example.com/**\"]\n{POLICY}")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> Value {
    let path = repo_root().join("fixtures/admission").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Moves the request (and its object) to namespace `ns`.
fn in_namespace(mut review: Value, ns: &str) -> Value {
    review["request"]["namespace"] = ns.into();
    if review["request"]["object"]["metadata"].is_object() {
        review["request"]["object"]["metadata"]["namespace"] = ns.into();
    }
    review
}

/// The pod spec of a Pod review.
fn pod_spec(review: &mut Value) -> &mut Value {
    &mut review["request"]["object"]["spec"]
}

/// The binary installs the rustls crypto provider at start-up and the library never does (see
/// the workspace Cargo.toml); a test stands in for the binary. Idempotent.
fn install_crypto_provider() {
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

struct Daemon {
    server: RunningServer,
    dir: TempDir,
    base: String,
    http: reqwest::Client,
}

impl Daemon {
    async fn start(policy: &str, tweak: impl FnOnce(&mut ServerConfig)) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            repo_root().join("fixtures/keys/p256.pub"),
            dir.path().join("ci.pub"),
        )
        .unwrap();
        std::fs::write(dir.path().join("policy.yaml"), policy).unwrap();
        install_crypto_provider();
        // Plain HTTP keeps most tests free of certificates; HTTPS has its own tests below.
        let mut config = ServerConfig::danger_plain_http(dir.path().join("policy.yaml"));
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.audit_log = Some(dir.path().join("audit.log"));
        config.reload_interval = Duration::from_millis(50);
        config.cluster = Some("test".into());
        tweak(&mut config);
        let server = signet_server::bind(config).await.unwrap();
        let base = format!("http://{}", server.local_addr());
        Daemon {
            server,
            dir,
            base,
            http: reqwest::Client::new(),
        }
    }

    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    async fn post_raw(&self, path: &str, body: &'static str) -> (StatusCode, String) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }

    /// The `response` of a validating review, checked for the envelope and the uid echo.
    async fn validate(&self, review: &Value) -> Value {
        self.review("/admission/validate", review).await
    }

    async fn review(&self, path: &str, review: &Value) -> Value {
        let (status, body) = self.post(path, review).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(body["kind"], "AdmissionReview");
        assert_eq!(body["response"]["uid"], review["request"]["uid"]);
        body["response"].clone()
    }

    fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("audit.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn write_policy(&self, text: &str) {
        // Write aside and rename, as a ConfigMap update does, so the reloader never reads a
        // half-written file.
        let tmp = self.dir.path().join("policy.yaml.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.dir.path().join("policy.yaml")).unwrap();
    }

    /// The value of the first metric line starting with `prefix`.
    async fn metric(&self, prefix: &str) -> Option<f64> {
        let (_, text) = self.get("/metrics").await;
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// Waits (bounded) until the metric starting with `prefix` equals `want`.
    async fn wait_metric(&self, prefix: &str, want: f64) {
        for _ in 0..400 {
            if self.metric(prefix).await == Some(want) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "{prefix} never became {want}; /metrics:\n{}",
            self.get("/metrics").await.1
        );
    }
}

fn message(response: &Value) -> String {
    response["status"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn warnings(response: &Value) -> Vec<String> {
    response["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .map(|s| s.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_families() {
    let d = Daemon::start(POLICY, |_| {}).await;
    assert_eq!(d.get("/healthz").await, (StatusCode::OK, "ok\n".into()));
    let (status, body) = d.get("/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("policy generation 1"), "{body}");
    d.validate(&in_namespace(fixture("pod.json"), "allow-all"))
        .await;
    let (status, text) = d.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for family in [
        "signet_decisions_total{endpoint=\"validate\",outcome=\"allowed\"} 1",
        "signet_decisions_total{endpoint=\"validate\",outcome=\"breakglass\"} 0",
        "signet_decisions_total{endpoint=\"validate\",outcome=\"failopen\"} 0",
        "signet_request_duration_seconds_bucket{",
        "signet_cache_requests_total{cache=\"evidence\",result=\"miss\"}",
        "signet_cache_entries{",
        "signet_registry_requests_total 0",
        "signet_registry_errors_total{status=\"unreachable\"} 0",
        "signet_policy_reloads_total 0",
        "signet_policy_reload_errors_total 0",
        "signet_policy_generation 1",
    ] {
        assert!(text.contains(family), "missing {family} in:\n{text}");
    }
    let handle = d.server.shutdown_handle();
    handle.shutdown();
    d.server.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_is_admitted_under_always_allow_with_its_uid() {
    let d = Daemon::start(POLICY, |_| {}).await;
    for name in [
        "pod.json",
        "deployment.json",
        "cronjob.json",
        "ephemeral-container.json",
        "pod-10-containers.json",
    ] {
        let review = in_namespace(fixture(name), "allow-all");
        let response = d.validate(&review).await;
        assert_eq!(response["allowed"], true, "{name}: {response}");
        assert!(response.get("warnings").is_none(), "{name}: {response}");
    }
    assert!(d.audit().is_empty(), "{:?}", d.audit());
    d.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_only_images_are_denied_with_how_to_pin_them_but_exempt_ones_pass() {
    let d = Daemon::start(POLICY, |_| {}).await;
    let review = fixture("pod.json");
    let response = d.validate(&review).await;
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], 403);
    let message = message(&response);
    assert!(message.contains("Pod/web-6c9f7d8b5-q2x4z"), "{message}");
    assert!(
        message.contains("registry.example.com/shop/migrate:2.3.0: not pinned to a digest"),
        "{message}"
    );
    assert!(
        message.contains("registry.example.com/shop/web:1.4.2@sha256:<digest>"),
        "{message}"
    );
    assert!(message.contains("mutating webhook"), "{message}");
    assert!(!message.contains("envoy"), "exempt image listed: {message}");

    let audit = d.audit();
    assert_eq!(audit.len(), 1, "{audit:?}");
    let event = &audit[0];
    assert_eq!(event["event"], "deny");
    assert_eq!(event["uid"], review["request"]["uid"]);
    assert_eq!(event["namespace"], "shop");
    assert_eq!(event["object"], "Pod/web-6c9f7d8b5-q2x4z");
    assert_eq!(event["serviceAccount"], "web");
    assert_eq!(event["rule"], "default");
    assert_eq!(event["images"].as_array().unwrap().len(), 3);
    assert_eq!(event["reasons"].as_array().unwrap().len(), 2);
    let time = event["time"].as_str().unwrap();
    assert!(time.ends_with('Z') && time.len() == 24, "{time}");
    d.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_label_or_legacy_annotation_admits_and_audits() {
    let d = Daemon::start(POLICY, |_| {}).await;
    let mut pod = in_namespace(fixture("pod.json"), "deny-all");
    pod["request"]["object"]["metadata"]["labels"]["image-policy.k8s.io/break-glass"] =
        "true".into();
    let response = d.validate(&pod).await;
    assert_eq!(response["allowed"], true, "{response}");
    assert!(warnings(&response)[0].contains("break-glass"));

    let mut deployment = in_namespace(fixture("deployment.json"), "deny-all");
    deployment["request"]["object"]["spec"]["template"]["metadata"]["annotations"] =
        json!({"alpha.image-policy.k8s.io/break-glass": "true"});
    let response = d.validate(&deployment).await;
    assert_eq!(response["allowed"], true, "{response}");

    let audit = d.audit();
    let kinds: Vec<&str> = audit.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["break-glass", "break-glass"]);
    assert_eq!(audit[1]["object"], "Deployment/api");
    assert_eq!(audit[1]["uid"], deployment["request"]["uid"]);
    assert_eq!(
        d.metric("signet_decisions_total{endpoint=\"validate\",outcome=\"breakglass\"}")
            .await,
        Some(2.0)
    );
    d.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_deny_lists_each_denied_image_with_its_reason() {
    let d = Daemon::start(POLICY, |_| {}).await;
    let response = d
        .validate(&in_namespace(fixture("deployment.json"), "deny-all"))
        .await;
    assert_eq!(response["allowed"], false);
    let message = message(&response);
    assert!(
        message.starts_with("signet: Deployment/api denied, 1 image(s)"),
        "{message}"
    );
    assert!(
        message.contains("registry.example.com/shop/api@sha256:")
            && message.contains("ALWAYS_DENY"),
        "{message}"
    );
    assert!(!message.contains("otel-collector"), "{message}");

    // An update that brings no new image (scaling, relabelling) is not re-judged.
    let mut unchanged = in_namespace(fixture("deployment.json"), "deny-all");
    unchanged["request"]["oldObject"]["spec"]["template"] =
        unchanged["request"]["object"]["spec"]["template"].clone();
    unchanged["request"]["object"]["spec"]["replicas"] = 5.into();
    assert_eq!(d.validate(&unchanged).await["allowed"], true);

    let response = d
        .validate(&in_namespace(fixture("cronjob.json"), "deny-all"))
        .await;
    assert_eq!(response["allowed"], false);
    assert!(message_contains(
        &response,
        "registry.example.com/ops/backup:2024.11@sha256:"
    ));
    d.server.shutdown().await.unwrap();
}

fn message_contains(response: &Value, needle: &str) -> bool {
    message(response).contains(needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_containers_give_one_short_entry_per_distinct_denied_image() {
    let d = Daemon::start(POLICY, |_| {}).await;
    let response = d
        .validate(&in_namespace(fixture("pod-10-containers.json"), "deny-all"))
        .await;
    assert_eq!(response["allowed"], false);
    let message = message(&response);
    // 10 containers: one image twice, two exempt: 7 distinct denied images.
    assert!(message.contains("7 image(s) not admitted"), "{message}");
    assert_eq!(message.matches(" | ").count(), 6, "{message}");
    assert!(message.chars().count() < 7 * 300 + 100, "{message}");
    for name in [
        "web",
        "api",
        "cart",
        "search",
        "images",
        "recommend",
        "payments",
    ] {
        assert!(
            message.contains(&format!("registry.example.com/shop/{name}@sha256:")),
            "{name} missing: {message}"
        );
    }
    d.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_admits_with_the_would_be_denial_in_warnings_and_audits() {
    let d = Daemon::start(POLICY, |_| {}).await;
    let review = in_namespace(fixture("deployment.json"), "dry-run");
    let response = d.validate(&review).await;
    assert_eq!(response["allowed"], true, "{response}");
    let warnings = warnings(&response);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("signet dry run, would deny registry.example.com/shop/api@"),
        "{warnings:?}"
    );
    assert!(warnings[0].chars().count() <= 250);

    // A tag-only image under a dry-run rule that needs attestations: a warning, not a denial.
    let response = d
        .validate(&in_namespace(fixture("pod.json"), "dry-run-attested"))
        .await;
    assert_eq!(response["allowed"], true, "{response}");
    assert_eq!(self::warnings(&response).len(), 2, "{response}");

    let audit = d.audit();
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!(audit[0]["event"], "dry-run");
    assert_eq!(audit[0]["uid"], review["request"]["uid"]);
    assert_eq!(audit[0]["rule"], "namespace dry-run");
    assert_eq!(audit[0]["results"][0]["result"], "would-deny");
    assert_eq!(
        d.metric("signet_decisions_total{endpoint=\"validate\",outcome=\"dryrun\"}")
            .await,
        Some(2.0)
    );
    d.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_containers_are_checked_on_their_own() {
    let d = Daemon::start(POLICY, |_| {}).await;
    let review = fixture("ephemeral-container.json");
    let response = d.validate(&review).await;
    assert_eq!(response["allowed"], false, "{response}");
    let message = message(&response);
    assert!(
        message.contains("1 image(s) not admitted: busybox:1.36: not pinned"),
        "{message}"
    );
    assert!(
        message.contains("docker.io/library/busybox:1.36@sha256:<digest>"),
        "{message}"
    );
    // The pod's own (pinned) images are not re-verified for a debug container.
    assert!(!message.contains("shop/web"), "{message}");
    d.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_and_objects_without_pods_are_allowed() {
    let d = Daemon::start(POLICY, |_| {}).await;
    let mut review = fixture("pod.json");
    review["request"]["operation"] = "DELETE".into();
    review["request"]["oldObject"] = review["request"]["object"].take();
    let response = d.validate(&review).await;
    assert_eq!(response["allowed"], true);

    let config_map = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "3d4e5f60-0000-4000-8000-000000000001",
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "resource": {"group": "", "version": "v1", "resource": "configmaps"},
            "name": "settings", "namespace": "shop", "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}},
            "oldObject": null,
        }
    });
    let response = d.validate(&config_map).await;
    assert_eq!(response["allowed"], true);
    d.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_reviews_are_refused_clearly() {
    let d = Daemon::start(POLICY, |_| {}).await;
    let (status, text) = d.post_raw("/admission/validate", "{").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("not an AdmissionReview"), "{text}");

    let mut review = fixture("pod.json");
    review["request"]["object"]["spec"]["containers"] = json!("nope");
    let response = d.validate(&review).await;
    assert_eq!(response["allowed"], false);
    assert!(
        message_contains(&response, "cannot read the Pod"),
        "{response}"
    );
    d.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_api_returns_the_decision_json_and_400_for_bad_input() {
    let d = Daemon::start(POLICY, |_| {}).await;
    let (status, decision) = d
        .post(
            "/v1/verify",
            &json!({"image": "registry.example.com/base/envoy:1.31.2"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{decision}");
    assert_eq!(decision["allowed"], true);
    assert_eq!(decision["rule"], "admissionWhitelistPatterns");
    for field in [
        "allowed",
        "image",
        "digest",
        "rule",
        "enforcement",
        "attestors",
        "reasons",
    ] {
        assert!(decision.get(field).is_some(), "{field} missing: {decision}");
    }

    let image = format!("registry.example.com/shop/api@{DIGEST_A}");
    let (status, decision) = d
        .post(
            "/v1/verify",
            &json!({"image": image, "namespace": "deny-all", "serviceAccount": "api"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(decision["allowed"], false);
    assert_eq!(decision["image"], image);
    assert_eq!(decision["digest"], DIGEST_A);
    assert_eq!(decision["rule"], "namespace deny-all");
    assert_eq!(decision["enforcement"], "enforced");

    let (status, decision) = d
        .post(
            "/v1/verify",
            &json!({"image": image, "namespace": "dry-run"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(decision["allowed"], true);
    assert_eq!(decision["wouldDeny"], true);
    assert_eq!(decision["enforcement"], "dryrun");

    for (body, needle) in [
        ("{", "invalid request body"),
        ("{}", "missing field `image`"),
        (
            r#"{"image": "a/b:1", "colour": "red"}"#,
            "unknown field `colour`",
        ),
        (r#"{"image": "Not/Valid"}"#, "invalid reference"),
        (
            r#"{"image": "a/b:1", "serviceAccount": "x"}"#,
            "serviceAccount needs namespace",
        ),
    ] {
        let (status, text) = d.post_raw("/v1/verify", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {text}");
        let value: Value = serde_json::from_str(&text).unwrap();
        let error = value["error"].as_str().unwrap();
        assert!(error.contains(needle), "{body}: {error}");
    }
    d.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_reload_good_then_broken_then_good() {
    let d = Daemon::start(POLICY, |_| {}).await;
    let pod = in_namespace(fixture("deployment.json"), "shop");
    let verify = json!({"image": "registry.example.com/shop/api:1", "namespace": "teams"});
    assert_eq!(
        d.validate(&in_namespace(pod.clone(), "deny-all")).await["allowed"],
        false
    );

    // Broken: refused, counted, audited; the old policy stays in force.
    d.write_policy("defaultAdmissionRule:\n  evaluationMode: SOMETIMES\n");
    d.wait_metric("signet_policy_reload_errors_total", 1.0)
        .await;
    assert_eq!(d.metric("signet_policy_generation").await, Some(1.0));
    assert_eq!(
        d.validate(&in_namespace(pod.clone(), "deny-all")).await["allowed"],
        false
    );
    let audit = d.audit();
    let failed = audit
        .iter()
        .find(|e| e["event"] == "policy-reload-failed")
        .unwrap();
    assert_eq!(failed["generation"], 1);
    assert!(
        failed["reasons"].to_string().contains("SOMETIMES"),
        "{failed}"
    );
    // The same broken content is reported once, not every second.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        d.metric("signet_policy_reload_errors_total").await,
        Some(1.0)
    );

    // Good again, with different rules: takes effect without restart.
    d.write_policy(
        "defaultAdmissionRule:\n  evaluationMode: ALWAYS_ALLOW\n  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG\n",
    );
    d.wait_metric("signet_policy_reloads_total", 1.0).await;
    assert_eq!(d.metric("signet_policy_generation").await, Some(2.0));
    assert_eq!(
        d.validate(&in_namespace(pod.clone(), "deny-all")).await["allowed"],
        true
    );
    let (_, decision) = d.post("/v1/verify", &verify).await;
    assert_eq!(decision["allowed"], true);
    assert_eq!(d.audit().last().unwrap()["event"], "policy-reload");
    assert_eq!(d.audit().last().unwrap()["generation"], 2);
    let (_, ready) = d.get("/readyz").await;
    assert!(ready.contains("generation 2"), "{ready}");

    // SIGHUP's path reloads even an unchanged file.
    d.server.reload_policy().await;
    assert_eq!(d.metric("signet_policy_generation").await, Some(3.0));
    d.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_that_does_not_load_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, "defaultAdmissionRule: {evaluationMode: MAYBE}\n").unwrap();
    install_crypto_provider();
    let mut config = ServerConfig::danger_plain_http(&path);
    config.listen = "127.0.0.1:0".parse().unwrap();
    let error = match signet_server::bind(config).await {
        Ok(_) => panic!("a broken policy started"),
        Err(e) => e.to_string(),
    };
    assert!(
        error.contains("cannot load policy") && error.contains("MAYBE"),
        "{error}"
    );
}

// --- with a registry ------------------------------------------------------------------------

/// A registry stub: no signatures anywhere, tag `1.0` of every repository names `DIGEST_A`,
/// and the referrers API answers slowly (so that concurrent requests overlap) and counts.
#[derive(Clone, Default)]
struct Stub {
    referrers: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

async fn stub_handler(State(stub): State<Stub>, request: Request) -> Response {
    stub.requests.fetch_add(1, Ordering::SeqCst);
    let path = request.uri().path().to_string();
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
        )
            .into_response()
    };
    if path == "/v2/" {
        return (StatusCode::OK, "{}").into_response();
    }
    if path.contains("/referrers/") {
        stub.referrers.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/vnd.oci.image.index.v1+json")],
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
        )
            .into_response();
    }
    if path.ends_with("/tags/list") {
        return (StatusCode::OK, r#"{"name":"x","tags":[]}"#).into_response();
    }
    if path.ends_with("/manifests/1.0") && request.method() == Method::HEAD {
        return (
            StatusCode::OK,
            [
                (
                    header::CONTENT_TYPE,
                    "application/vnd.oci.image.manifest.v1+json",
                ),
                (
                    header::HeaderName::from_static("docker-content-digest"),
                    DIGEST_A,
                ),
            ],
        )
            .into_response();
    }
    not_found()
}

async fn start_stub() -> (String, Stub) {
    let stub = Stub::default();
    let app = axum::Router::new()
        .fallback(stub_handler)
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (host, stub)
}

fn pod_with_images(images: &[&str]) -> Value {
    let mut review = fixture("pod.json");
    let spec = pod_spec(&mut review);
    spec["initContainers"] = json!([]);
    let template = spec["containers"][0].clone();
    spec["containers"] = images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            let mut c = template.clone();
            c["name"] = format!("c{i}").into();
            c["image"] = (*image).into();
            c
        })
        .collect();
    review
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_reviews_of_an_uncached_image_make_one_referrers_lookup() {
    let (registry, stub) = start_stub().await;
    let d = Daemon::start(&policy_trusting(&registry), |_| {}).await;
    let image = format!("{registry}/shop/app@{DIGEST_A}");
    let review = pod_with_images(&[&image]);
    let d = Arc::new(d);
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (d, mut review) = (d.clone(), review.clone());
            review["request"]["uid"] = format!("uid-{i}").into();
            tokio::spawn(async move { d.validate(&review).await })
        })
        .collect();
    for task in tasks {
        let response = task.await.unwrap();
        assert_eq!(response["allowed"], false);
        assert!(
            message_contains(
                &response,
                "attestor built-by-ci: no attestation signed by key"
            ),
            "{response}"
        );
    }
    assert_eq!(stub.referrers.load(Ordering::SeqCst), 1);
    let text = d.get("/metrics").await.1;
    assert!(
        text.contains("signet_cache_requests_total{cache=\"evidence\",result=\"miss\"} 1"),
        "{text}"
    );
    let Ok(d) = Arc::try_unwrap(d) else {
        panic!("daemon still shared")
    };
    d.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutate_pins_tags_and_validate_then_verifies_the_digest() {
    let (registry, stub) = start_stub().await;
    let d = Daemon::start(&policy_trusting(&registry), |_| {}).await;
    let tagged = format!("{registry}/shop/web:1.0");
    let review = pod_with_images(&[&tagged, "registry.example.com/base/envoy:1.31.2", &tagged]);
    let response = d.review("/admission/mutate", &review).await;
    assert_eq!(response["allowed"], true, "{response}");
    assert_eq!(response["patchType"], "JSONPatch");
    // Base64, as the v1 API documents it.
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(response["patch"].as_str().unwrap())
        .unwrap();
    let patch: Value = serde_json::from_slice(&bytes).unwrap();
    let pinned = format!("{tagged}@{DIGEST_A}");
    assert_eq!(
        patch,
        json!([
            {"op": "replace", "path": "/spec/containers/0/image", "value": pinned},
            {"op": "replace", "path": "/spec/containers/2/image", "value": pinned},
        ])
    );
    assert_eq!(
        d.metric("signet_image_pins_total{result=\"pinned\"}").await,
        Some(1.0)
    );

    // What validate sees once the patch is applied: the digest, verified (and unattested).
    let patched = pod_with_images(&[&pinned, "registry.example.com/base/envoy:1.31.2"]);
    let response = d.validate(&patched).await;
    assert_eq!(response["allowed"], false);
    assert!(
        message_contains(&response, "no attestation signed by key"),
        "{response}"
    );
    assert_eq!(stub.referrers.load(Ordering::SeqCst), 1);

    // Unresolvable tags are left alone, with a warning; mutate never denies.
    let review = pod_with_images(&[&format!("{registry}/shop/web:2.0")]);
    let response = d.review("/admission/mutate", &review).await;
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none(), "{response}");
    assert!(
        warnings(&response)[0].contains("could not pin"),
        "{response}"
    );
    d.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_registry_fails_closed_or_open_as_configured() {
    // Port 1 on loopback: connection refused.
    let image = format!("127.0.0.1:1/shop/app@{DIGEST_A}");
    let review = pod_with_images(&[&image]);

    let closed = Daemon::start(POLICY, |c| {
        c.request_deadline = Duration::from_secs(2);
        c.registry.limits.max_attempts = 1;
    })
    .await;
    let response = closed.validate(&review).await;
    assert_eq!(response["allowed"], false);
    let text = message(&response);
    assert!(
        text.contains("could not verify") && text.contains("fails closed"),
        "{text}"
    );
    assert_eq!(
        closed
            .metric("signet_decisions_total{endpoint=\"validate\",outcome=\"error\"}")
            .await,
        Some(1.0)
    );
    assert!(
        closed
            .metric("signet_registry_errors_total{status=\"unreachable\"}")
            .await
            .is_some()
    );
    closed.server.shutdown().await.unwrap();

    let open = Daemon::start(POLICY, |c| {
        c.on_verification_error = OnVerificationError::DangerFailOpen;
        c.request_deadline = Duration::from_secs(2);
        c.registry.limits.max_attempts = 1;
    })
    .await;
    let response = open.validate(&review).await;
    assert_eq!(response["allowed"], true, "{response}");
    assert!(
        warnings(&response)[0].starts_with("signet fail-open"),
        "{response}"
    );
    let audit = open.audit();
    assert_eq!(audit.last().unwrap()["event"], "fail-open");
    open.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_never_answers_is_cut_off_at_the_deadline() {
    // Accepts connections (the kernel completes the handshake) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let image = format!("{}/shop/app@{DIGEST_A}", silent.local_addr().unwrap());
    let d = Daemon::start(
        &policy_trusting(&silent.local_addr().unwrap().to_string()),
        |c| c.request_deadline = Duration::from_millis(300),
    )
    .await;
    let response = d.validate(&pod_with_images(&[&image])).await;
    assert_eq!(response["allowed"], false);
    assert!(
        message_contains(&response, "did not finish within the 0.3s deadline"),
        "{response}"
    );
    let (status, body) = d.post("/v1/verify", &json!({"image": image})).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    d.server.shutdown().await.unwrap();
    drop(silent);
}

// --- TLS --------------------------------------------------------------------------------------

struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn pki(name: &str) -> Pki {
    pki_until(name, None)
}

/// A throw-away CA and a server certificate of it, expiring at `not_after` (rcgen's default,
/// 4096-01-01, when `None`).
fn pki_until(name: &str, not_after: Option<(i32, u8, u8)>) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("signet test CA {name}"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let mut params =
        CertificateParams::new(vec!["signet.signet.svc".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    params.use_authority_key_identifier_extension = true;
    if let Some((year, month, day)) = not_after {
        params.not_after = rcgen::date_time_ymd(year, month, day);
    }
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn https_client(ca_pem: &str) -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_reviews_and_picks_up_a_new_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let first = pki("one");
    std::fs::write(&cert, &first.cert_pem).unwrap();
    std::fs::write(&key, &first.key_pem).unwrap();
    let d = Daemon::start(POLICY, |c| {
        c.transport = Transport::Tls(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        })
    })
    .await;
    let url = format!("https://{}", d.server.local_addr());

    let client = https_client(&first.ca_pem);
    let response = client
        .post(format!("{url}/admission/validate"))
        .json(&in_namespace(fixture("cronjob.json"), "allow-all"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["response"]["allowed"], true);
    // The served certificate's notAfter is a metric (rcgen's default: 4096-01-01T00:00:00Z).
    let expiry = |client: reqwest::Client| {
        let url = url.clone();
        async move {
            let text = client
                .get(format!("{url}/metrics"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            text.lines()
                .find_map(|l| l.strip_prefix("signet_tls_certificate_expiry_timestamp_seconds "))
                .and_then(|v| v.parse::<f64>().ok())
        }
    };
    assert_eq!(expiry(client.clone()).await, Some(67_090_118_400.0));

    // Rotate: the key first, then the certificate (a half-rotated pair is refused and the old
    // one kept until the pair matches).
    let second = pki_until("two", Some((2035, 6, 1)));
    std::fs::write(&key, &second.key_pem).unwrap();
    std::fs::write(&cert, &second.cert_pem).unwrap();
    let client = https_client(&second.ca_pem);
    let mut ok = false;
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("{url}/healthz")).send().await {
            ok = r.status() == StatusCode::OK;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(ok, "the new certificate was never served");
    // 2035-06-01T00:00:00Z, the new certificate's notAfter.
    assert_eq!(expiry(client).await, Some(2_064_268_800.0));
    d.server.shutdown().await.unwrap();
}

/// The decision explorer records what the webhook and the verify API decide, on its own
/// loopback listener; a daemon without it records nothing and serves no page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explorer_lists_webhook_and_verify_api_decisions_on_its_own_listener() {
    let d = Daemon::start(POLICY, |config| {
        config.explorer = Some(signet_server::ExplorerConfig::new(
            signet_server::LoopbackAddr::new("127.0.0.1:0".parse().unwrap()).unwrap(),
        ));
    })
    .await;
    let ui = format!("http://{}", d.server.explorer_addr().unwrap());
    assert_ne!(ui, d.base, "the explorer has a listener of its own");
    let denied = d
        .validate(&in_namespace(fixture("deployment.json"), "deny-all"))
        .await;
    assert_eq!(denied["allowed"], false);
    let (status, verified) = d
        .post(
            "/v1/verify",
            &json!({"image": "registry.example.com/base/tools:1", "namespace": "allow-all"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{verified}");

    let page = d.http.get(&ui).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(
        page.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    let body = page.text().await.unwrap();
    let row = body
        .split("<tr class=\"decision")
        .find(|r| r.contains("Deployment/api"))
        .unwrap_or_else(|| panic!("no row for the denial:\n{body}"));
    assert!(row.starts_with(" denied\""), "{row}");
    assert!(row.contains("deny-all"), "{row}");
    // The reason, as the webhook gave it.
    assert!(
        row.contains("rule namespace deny-all denies every image (ALWAYS_DENY)"),
        "{row}"
    );
    let verify_row = body
        .split("<tr class=\"decision")
        .find(|r| r.contains("registry.example.com/base/tools:1"))
        .unwrap_or_else(|| panic!("no row for the verify API call:\n{body}"));
    assert!(verify_row.starts_with(" allowed\""), "{verify_row}");
    assert!(verify_row.contains("verify API"), "{verify_row}");
    // The webhook's own listener serves no page.
    let (status, _) = d.get("/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    d.server.shutdown().await.unwrap();
}

/// An address asked for must be free; the CLI's default address may be taken (by another
/// daemon on the host), and then the daemon runs without the explorer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explorer_on_a_taken_address_stops_start_up_unless_optional() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = signet_server::LoopbackAddr::new(taken.local_addr().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policy.yaml"),
        "defaultAdmissionRule: {evaluationMode: ALWAYS_ALLOW, enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG}\n",
    )
    .unwrap();
    install_crypto_provider();
    let config = |optional: bool| {
        let mut config = ServerConfig::danger_plain_http(dir.path().join("policy.yaml"));
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.audit_log = Some(dir.path().join("audit.log"));
        let mut explorer = signet_server::ExplorerConfig::new(addr);
        explorer.optional = optional;
        config.explorer = Some(explorer);
        config
    };
    match signet_server::bind(config(false)).await {
        Err(e @ signet_server::ServerError::Bind { .. }) => {
            assert!(e.to_string().contains(&addr.to_string()), "{e}");
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("started with the explorer's address taken"),
    }
    let server = signet_server::bind(config(true)).await.unwrap();
    assert_eq!(server.explorer_addr(), None);
    server.shutdown().await.unwrap();
}
