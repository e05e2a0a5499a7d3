//! Issue 15: `signet audit --kubeconfig` lists the pods of all namespaces from the Kubernetes API
//! server, page by page (`limit`, then `continue` until a page has none), with the kubeconfig's
//! bearer token, through the `kube` client.
//!
//! No API server can run on these machines, so the client talks to a small HTTPS server here
//! that answers with the pages of fixtures/kube-api/ (the API server's `PodList` format; see the
//! README there) and checks every request: the path, `limit`, the `continue` token of the page
//! before, and the token. The images those pods name are real, signed or not, on the real
//! registry.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use crate::cli::{Run, fixture, signet};
use crate::harness::{Options, Registry, install_crypto_provider, write_server_tls};
use crate::images::push_image;

const PASSWORD: &str = "kube-api-e2e";
const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.signet-auditor-test-token";
const PAGES: usize = 3;

fn run(dir: &Path, args: &[&str]) -> Run {
    signet(dir, args, Some(PASSWORD))
}

/// The recorded pages, with their images moved to `registry`.
fn pages(registry: &str) -> Vec<String> {
    (1..=PAGES)
        .map(|n| {
            std::fs::read_to_string(fixture(&format!("kube-api/pods-page-{n}.json")))
                .unwrap()
                .replace("registry.example.com", registry)
        })
        .collect()
}

#[derive(Clone)]
struct Api {
    pages: Arc<Vec<String>>,
    limit: String,
    /// Every request, as `METHOD path?query auth=<ok|bad|none>`.
    log: Arc<Mutex<Vec<String>>>,
}

/// A status answer as the API server writes it.
fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16()
    });
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn continue_of(page: &str) -> Option<String> {
    let page: serde_json::Value = serde_json::from_str(page).unwrap();
    page["metadata"]["continue"].as_str().map(str::to_string)
}

async fn list_pods(
    State(api): State<Api>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    // Empty parameters are dropped, as the API server ignores them (kube writes `?&limit=2`).
    let query = query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("&");
    let auth = match headers.get(header::AUTHORIZATION) {
        None => "none",
        Some(v) if v.to_str().ok() == Some(&format!("Bearer {TOKEN}")) => "ok",
        Some(_) => "bad",
    };
    api.log
        .lock()
        .unwrap()
        .push(format!("GET /api/v1/pods?{query} auth={auth}"));
    if auth != "ok" {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    let mut limit = None;
    let mut token = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("limit", v)) => limit = Some(v.to_string()),
            Some(("continue", v)) => token = Some(v.to_string()),
            _ => {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!("unexpected query parameter {pair}"),
                );
            }
        }
    }
    if limit.as_deref() != Some(api.limit.as_str()) {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("limit {limit:?}, expected {}", api.limit),
        );
    }
    // The first page has no token; each next page is asked for with the token of the one
    // before it.
    let index = match &token {
        None => Some(0),
        Some(t) => api
            .pages
            .iter()
            .position(|p| continue_of(p).as_deref() == Some(t))
            .map(|i| i + 1),
    };
    match index.and_then(|i| api.pages.get(i)) {
        Some(page) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            page.clone(),
        )
            .into_response(),
        None => status(
            StatusCode::GONE,
            "Expired",
            "The provided continue parameter is too old to display a consistent list result.",
        ),
    }
}

async fn elsewhere(State(api): State<Api>, uri: Uri) -> Response {
    api.log.lock().unwrap().push(format!("OTHER {uri}"));
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        "the server could not find the requested resource",
    )
}

/// The test API server, on HTTPS with a throw-away CA; stopped on drop.
struct ApiServer {
    addr: SocketAddr,
    ca_pem: Vec<u8>,
    log: Arc<Mutex<Vec<String>>>,
    handle: axum_server::Handle<SocketAddr>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ApiServer {
    fn start(dir: &Path, pages: Vec<String>, limit: u32) -> ApiServer {
        install_crypto_provider();
        let tls_dir = dir.join("api-tls");
        std::fs::create_dir_all(&tls_dir).unwrap();
        let (ca, cert, key) = write_server_tls(&tls_dir);
        let log = Arc::new(Mutex::new(Vec::new()));
        let api = Api {
            pages: Arc::new(pages),
            limit: limit.to_string(),
            log: log.clone(),
        };
        let app = Router::new()
            .route("/api/v1/pods", axum::routing::get(list_pods))
            .fallback(elsewhere)
            .with_state(api);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = axum_server::Handle::new();
        let serving = handle.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                    .await
                    .unwrap();
                axum_server::from_tcp_rustls(listener, tls)
                    .unwrap()
                    .handle(serving)
                    .serve(app.into_make_service())
                    .await
                    .unwrap();
            });
        });
        ApiServer {
            addr,
            ca_pem: std::fs::read(ca).unwrap(),
            log,
            handle,
            thread: Some(thread),
        }
    }

    /// A kubeconfig whose current context is this server, with `token`.
    fn kubeconfig(&self, dir: &Path, token: &str) -> PathBuf {
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: \
             https://127.0.0.1:{port}\n    certificate-authority-data: {ca}\nusers:\n- name: \
             auditor\n  user:\n    token: {token}\ncontexts:\n- name: test\n  context:\n    \
             cluster: test\n    user: auditor\ncurrent-context: test\n",
            port = self.addr.port()
        );
        let path = dir.join("kubeconfig.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The JSON of `value` with nulls left out: the API server writes some (`lastProbeTime:
/// null`) that a typed client reads as absent.
fn without_nulls(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(without_nulls).collect())
        }
        other => other.clone(),
    }
}

/// The fixtures are in the API's format: each page reads into k8s-openapi's `PodList` and
/// writes back unchanged (bar the `apiVersion`/`kind` the typed items add, which the API
/// server leaves out of list items), so no field is misspelt or misplaced.
#[test]
fn recorded_pages_are_kubernetes_pod_lists() {
    for (n, page) in pages("registry.example.com").iter().enumerate() {
        let written: serde_json::Value = serde_json::from_str(page).unwrap();
        let typed: k8s_openapi::List<k8s_openapi::api::core::v1::Pod> =
            serde_json::from_value(written.clone()).unwrap();
        let mut back = serde_json::to_value(&typed).unwrap();
        for item in back["items"].as_array_mut().unwrap() {
            let item = item.as_object_mut().unwrap();
            assert_eq!(item.remove("apiVersion"), Some("v1".into()));
            assert_eq!(item.remove("kind"), Some("Pod".into()));
        }
        assert_eq!(
            without_nulls(&back),
            without_nulls(&written),
            "page {} does not read back as written",
            n + 1
        );
        assert_eq!(
            continue_of(page).is_some(),
            n + 1 < PAGES,
            "only the last page lacks `continue`"
        );
    }
}

fn policy(dir: &Path) {
    std::fs::write(
        dir.join("policy.yaml"),
        "defaultAdmissionRule:\n  evaluationMode: REQUIRE_ATTESTATION\n  enforcementMode: \
         ENFORCED_BLOCK_AND_AUDIT_LOG\n  requireAttestationsBy: [build]\n\
         kubernetesNamespaceAdmissionRules:\n  payments: {evaluationMode: REQUIRE_ATTESTATION, \
         enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG, requireAttestationsBy: [build, qa]}\n\
         attestors:\n  - name: build\n    publicKeys: [{file: ci.pub}]\n  - name: qa\n    \
         publicKeys: [{file: qa.pub}]\n",
    )
    .unwrap();
}

#[test]
fn audit_lists_every_namespace_from_the_api_server_page_by_page() {
    let registry = Registry::start(Options::plain());
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    for name in ["ci", "qa"] {
        run(dir, &["keygen", "--output-prefix", name]).expect_code(0);
    }
    policy(dir);
    // Every image the running pods name, signed by CI; the finished Job's image is not even
    // in the registry (auditing it would be an error, so it must be skipped).
    for (repository, tag) in [
        ("monitoring/agent", "0.9"),
        ("payments/api", "3.0.1"),
        ("base/debug", "1.0"),
        ("shop/migrate", "2.3.0"),
        ("shop/web", "1.4.2"),
        ("base/envoy", "1.31.2"),
    ] {
        let (image, _) = push_image(&registry, repository, tag, repository.as_bytes());
        run(dir, &["sign", &image, "--key", "ci.key"]).expect_code(0);
    }
    let api = ApiServer::start(dir, pages(&registry.host()), 2);
    let kubeconfig = api.kubeconfig(dir, TOKEN);
    let kubeconfig = kubeconfig.to_str().unwrap();

    let out = run(
        dir,
        &[
            "audit",
            "--policy",
            "policy.yaml",
            "--kubeconfig",
            kubeconfig,
            "--page-size",
            "2",
            "--output",
            "json",
        ],
    )
    .expect_code(1);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (
            &json["pods"],
            &json["finishedPods"],
            &json["compliant"],
            &json["violating"],
            &json["error"]
        ),
        (&5.into(), &1.into(), &7.into(), &2.into(), &0.into()),
        "{json:#}"
    );
    // Payments now needs QA too: its container and the ephemeral debugger violate, named with
    // pod, namespace, service account, image and reason.
    let violating: Vec<&serde_json::Value> = json["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["outcome"] == "violating")
        .collect();
    let host = registry.host();
    let named: Vec<(&str, &str, &str, &str, &str)> = violating
        .iter()
        .map(|f| {
            (
                f["namespace"].as_str().unwrap(),
                f["pod"].as_str().unwrap(),
                f["serviceAccount"].as_str().unwrap(),
                f["container"].as_str().unwrap(),
                f["image"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        named,
        [
            (
                "payments",
                "api-5d4f8c7b9-k8s2m",
                "payer",
                "api",
                format!("{host}/payments/api:3.0.1").as_str()
            ),
            (
                "payments",
                "api-5d4f8c7b9-k8s2m",
                "payer",
                "ephemeral:debugger",
                format!("{host}/base/debug:1.0").as_str()
            ),
        ]
    );
    assert!(
        violating
            .iter()
            .all(|f| f["reasons"].to_string().contains("attestor qa")),
        "{violating:?}"
    );
    let shop_init = json["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["container"] == "init:migrate")
        .count();
    assert_eq!(shop_init, 2, "{json:#}");

    // Three pages, each asked for with the token of the one before, all with the bearer token.
    let first = pages(&host);
    let tokens: Vec<String> = first.iter().filter_map(|p| continue_of(p)).collect();
    assert_eq!(
        api.requests(),
        [
            "GET /api/v1/pods?limit=2 auth=ok".to_string(),
            format!("GET /api/v1/pods?limit=2&continue={} auth=ok", tokens[0]),
            format!("GET /api/v1/pods?limit=2&continue={} auth=ok", tokens[1]),
        ]
    );
}

#[test]
fn audit_reports_an_api_server_that_refuses_or_is_absent_as_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    policy(dir);
    for name in ["ci", "qa"] {
        run(dir, &["keygen", "--output-prefix", name]).expect_code(0);
    }
    let api = ApiServer::start(dir, pages("registry.example.com"), 500);
    let kubeconfig = api.kubeconfig(dir, "a-token-the-server-refuses");
    let refused = run(
        dir,
        &[
            "audit",
            "--policy",
            "policy.yaml",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ],
    )
    .expect_code(2);
    assert!(
        refused.stderr.contains("listing pods from")
            && refused.stderr.contains("Unauthorized")
            && !refused.stderr.contains("a-token-the-server-refuses"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        api.requests(),
        ["GET /api/v1/pods?limit=500 auth=bad".to_string()]
    );

    // Outside a cluster there is no in-cluster configuration: said so, exit 2.
    let outside = std::process::Command::new(crate::cli::signet_bin())
        .args(["audit", "--policy", "policy.yaml", "--in-cluster"])
        .current_dir(dir)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .output()
        .unwrap();
    assert_eq!(outside.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&outside.stderr);
    assert!(stderr.contains("no in-cluster configuration"), "{stderr}");

    // A source is required, and only one.
    let none = run(dir, &["audit", "--policy", "policy.yaml"]).expect_code(2);
    assert!(none.stderr.contains("--pods"), "{}", none.stderr);
    run(
        dir,
        &[
            "audit",
            "--policy",
            "policy.yaml",
            "--pods",
            "p.json",
            "--in-cluster",
        ],
    )
    .expect_code(2);
}
