//! What runs in a cluster: the pods, from a file `kubectl get pods -A -o json` wrote or from the
//! API server (in-cluster or through a kubeconfig), as the list of container images that
//! continuous validation decides again ([`signet_verify::audit::Running`]).
//!
//! The API is read with the `kube` crate's client: `GET /api/v1/pods?limit=N`, then again with
//! `continue=<token>` while the answer's `metadata.continue` says there is more, exactly as
//! `kubectl get pods -A --chunk-size N` pages. Each page is reduced to its images at once, so
//! memory grows with the number of containers, not with the size of the pod objects. Only
//! `list` on `pods` is needed (deploy/rbac.yaml).

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use signet_verify::audit::Running;

/// Where the pods come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodSource {
    /// A file holding what `kubectl get pods -A -o json` prints (a `List` of Pods, or a
    /// `PodList`); read again on every listing.
    File(PathBuf),
    /// The API server of this kubeconfig's current context (its credentials and CA).
    Kubeconfig(PathBuf),
    /// The API server of the cluster this process runs in, with its service account's token
    /// (`KUBERNETES_SERVICE_HOST`/`PORT`, `/var/run/secrets/kubernetes.io/serviceaccount`).
    InCluster,
}

impl std::fmt::Display for PodSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PodSource::File(path) => write!(f, "pod list {}", path.display()),
            PodSource::Kubeconfig(path) => {
                write!(f, "the API server of kubeconfig {}", path.display())
            }
            PodSource::InCluster => f.write_str("the API server of this cluster (in-cluster)"),
        }
    }
}

/// Pods asked for per API request unless told otherwise: kubectl's default chunk size.
pub const DEFAULT_PAGE_SIZE: u32 = 500;

/// Largest pod list file read.
const MAX_FILE_BYTES: u64 = 256 << 20;
/// Most pages followed in one listing: a server that keeps answering `continue` is stopped.
const MAX_PAGES: usize = 100_000;
/// Most container images listed (a million containers is far beyond the largest clusters).
const MAX_IMAGES: usize = 1_000_000;
/// Time allowed for one API request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The running images of a listing.
#[derive(Debug, Clone, Default)]
pub struct PodListing {
    /// One per container (init, regular, ephemeral) of each pod that has not finished, in the
    /// order listed.
    pub images: Vec<Running>,
    /// Pods listed, finished ones included.
    pub pods: usize,
    /// Pods whose phase is `Succeeded` or `Failed`: nothing of theirs runs any more, so their
    /// images are not audited.
    pub finished: usize,
    /// API requests made (pages read); 0 for a file.
    pub pages: usize,
}

/// Why pods could not be listed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum PodsError {
    /// The pod list file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The pod list file is larger than signet reads.
    #[error("{path} is larger than {limit} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// The file is not a pod list.
    #[error("{path} is not a pod list (what `kubectl get pods -A -o json` prints): {reason}")]
    NotPodList {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The kubeconfig could not be read or used.
    #[error("kubeconfig {path}: {reason}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// The client's error, flattened to text (it is a chain).
        reason: String,
    },
    /// Not running inside a cluster, or its service account files are missing.
    #[error(
        "no in-cluster configuration (is this running in a pod with a service account token?): {0}"
    )]
    InCluster(String),
    /// The API client could not be built.
    #[error("cannot set up the Kubernetes API client: {0}")]
    Client(String),
    /// The API server refused or failed a list request.
    #[error("page {page} of the pod list from {server}: {reason}")]
    List {
        /// The API server.
        server: String,
        /// Which page (1 for the first).
        page: usize,
        /// The client's error, flattened to text (it is a chain).
        reason: String,
    },
    /// The listing did not end within the bounds.
    #[error("the pod list from {server}: {reason}")]
    Unbounded {
        /// The API server.
        server: String,
        /// Which bound.
        reason: String,
    },
    /// No rustls crypto provider is installed for the process (the program must install one).
    #[error("no TLS crypto provider is installed for the Kubernetes API client")]
    NoCryptoProvider,
}

/// Lists the pods of `source` and their images; `page_size` pods per API request.
pub async fn list_pods(source: &PodSource, page_size: u32) -> Result<PodListing, PodsError> {
    match source {
        PodSource::File(path) => {
            let path = path.clone();
            // Up to 256 MiB of JSON: read and parse off the async threads.
            match tokio::task::spawn_blocking(move || read_file(&path)).await {
                Ok(result) => result,
                Err(e) => Err(PodsError::Read {
                    path: source_path(source),
                    source: std::io::Error::other(e.to_string()),
                }),
            }
        }
        PodSource::Kubeconfig(path) => {
            let kubeconfig =
                kube::config::Kubeconfig::read_from(path).map_err(|e| PodsError::Kubeconfig {
                    path: path.clone(),
                    reason: flatten(&e),
                })?;
            let config = kube::Config::from_custom_kubeconfig(
                kubeconfig,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .map_err(|e| PodsError::Kubeconfig {
                path: path.clone(),
                reason: flatten(&e),
            })?;
            list_api(config, page_size).await
        }
        PodSource::InCluster => {
            let config =
                kube::Config::incluster().map_err(|e| PodsError::InCluster(flatten(&e)))?;
            list_api(config, page_size).await
        }
    }
}

fn source_path(source: &PodSource) -> PathBuf {
    match source {
        PodSource::File(path) | PodSource::Kubeconfig(path) => path.clone(),
        PodSource::InCluster => PathBuf::new(),
    }
}

/// A pod list as `kubectl get pods -o json` writes it (`kind: List`) or as the API answers
/// (`kind: PodList`).
#[derive(serde::Deserialize)]
struct PodListFile {
    kind: Option<String>,
    #[serde(default)]
    items: Vec<Pod>,
}

fn read_file(path: &Path) -> Result<PodListing, PodsError> {
    let read = |source| PodsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read)?.len();
    if size > MAX_FILE_BYTES {
        return Err(PodsError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_FILE_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(read)?;
    let list: PodListFile = serde_json::from_slice(&bytes).map_err(|e| PodsError::NotPodList {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if let Some(kind) = list
        .kind
        .as_deref()
        .filter(|k| *k != "List" && *k != "PodList")
    {
        return Err(PodsError::NotPodList {
            path: path.to_path_buf(),
            reason: format!("it is a {kind}, not a List of Pods"),
        });
    }
    let mut listing = PodListing::default();
    for pod in &list.items {
        add_pod(&mut listing, pod);
    }
    Ok(listing)
}

async fn list_api(mut config: kube::Config, page_size: u32) -> Result<PodListing, PodsError> {
    // The client uses the process's rustls provider (the binary installs ring); without one it
    // would panic rather than fail.
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        return Err(PodsError::NoCryptoProvider);
    }
    config.read_timeout = Some(REQUEST_TIMEOUT);
    // A pooled connection's idle time must not count against the next answer's timeout.
    config.reset_reader_on_write = true;
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config).map_err(|e| PodsError::Client(flatten(&e)))?;
    let pods: Api<Pod> = Api::all(client);
    let mut listing = PodListing::default();
    let mut params = ListParams::default().limit(page_size.max(1));
    loop {
        let page = pods.list(&params).await.map_err(|e| PodsError::List {
            server: server.clone(),
            page: listing.pages + 1,
            reason: flatten(&e),
        })?;
        listing.pages += 1;
        for pod in &page.items {
            add_pod(&mut listing, pod);
        }
        if listing.images.len() > MAX_IMAGES {
            return Err(PodsError::Unbounded {
                server,
                reason: format!("more than {MAX_IMAGES} container images"),
            });
        }
        // Only the presence of `continue` says there is more; a page may hold fewer pods
        // than asked for, even none.
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) if listing.pages < MAX_PAGES => {
                params = params.continue_token(&token);
            }
            Some(_) => {
                return Err(PodsError::Unbounded {
                    server,
                    reason: format!("still more after {MAX_PAGES} pages"),
                });
            }
            None => return Ok(listing),
        }
    }
}

/// `e` and its causes as one line. The client's messages often repeat their cause's; a cause
/// already said is left out.
fn flatten(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

/// Adds `pod`'s images, with its namespace and service account, as admission reads them.
fn add_pod(listing: &mut PodListing, pod: &Pod) {
    listing.pods += 1;
    let finished = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|phase| phase == "Succeeded" || phase == "Failed");
    if finished {
        listing.finished += 1;
        return;
    }
    let Some(spec) = &pod.spec else { return };
    let namespace = pod
        .metadata
        .namespace
        .clone()
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| "default".into());
    let name = pod.metadata.name.clone().unwrap_or_default();
    let service_account = crate::admission::service_account(spec);
    let mut push = |container: String, image: Option<&String>| {
        if let Some(image) = image.filter(|i| !i.is_empty()) {
            listing.images.push(Running {
                namespace: namespace.clone(),
                pod: name.clone(),
                service_account: service_account.clone(),
                container,
                image: image.clone(),
            });
        }
    };
    for c in spec.init_containers.iter().flatten() {
        push(format!("init:{}", c.name), c.image.as_ref());
    }
    for c in &spec.containers {
        push(c.name.clone(), c.image.as_ref());
    }
    for c in spec.ephemeral_containers.iter().flatten() {
        push(format!("ephemeral:{}", c.name), c.image.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(json: serde_json::Value) -> Result<PodListing, PodsError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pods.json");
        std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
        read_file(&path)
    }

    #[test]
    fn every_container_of_every_running_pod_with_its_namespace_and_service_account() {
        let got = listing(serde_json::json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": [
                {
                    "metadata": {"name": "web-1", "namespace": "shop"},
                    "spec": {
                        "serviceAccountName": "web",
                        "initContainers": [{"name": "setup", "image": "r.example/init:1"}],
                        "containers": [
                            {"name": "app", "image": "r.example/app:1"},
                            {"name": "no-image"}
                        ],
                        "ephemeralContainers": [{"name": "debug", "image": "r.example/dbg:1"}]
                    },
                    "status": {"phase": "Running"}
                },
                {
                    // The deprecated field only, as admission honours it too.
                    "metadata": {"name": "old", "namespace": "legacy"},
                    "spec": {"serviceAccount": "ancient", "containers": [{"name": "c", "image": "r.example/a:1"}]}
                },
                {
                    "metadata": {"name": "job-x", "namespace": "batch"},
                    "spec": {"containers": [{"name": "c", "image": "r.example/job:1"}]},
                    "status": {"phase": "Succeeded"}
                }
            ]
        }))
        .unwrap();
        assert_eq!((got.pods, got.finished, got.pages), (3, 1, 0));
        let seen: Vec<(&str, &str, &str, &str)> = got
            .images
            .iter()
            .map(|r| {
                (
                    r.namespace.as_str(),
                    r.service_account.as_str(),
                    r.container.as_str(),
                    r.image.as_str(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("shop", "web", "init:setup", "r.example/init:1"),
                ("shop", "web", "app", "r.example/app:1"),
                ("shop", "web", "ephemeral:debug", "r.example/dbg:1"),
                ("legacy", "ancient", "c", "r.example/a:1"),
            ]
        );
    }

    #[test]
    fn what_is_not_a_pod_list_is_refused_with_the_reason() {
        let err = listing(serde_json::json!({"kind": "Deployment"})).unwrap_err();
        assert!(
            err.to_string()
                .contains("it is a Deployment, not a List of Pods"),
            "{err}"
        );
        let err = listing(serde_json::json!({"kind": "List", "items": [{"spec": 3}]})).unwrap_err();
        assert!(matches!(err, PodsError::NotPodList { .. }), "{err}");
        let err = read_file(Path::new("/nonexistent/pods.json")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read /nonexistent/pods.json"),
            "{err}"
        );
    }
}
