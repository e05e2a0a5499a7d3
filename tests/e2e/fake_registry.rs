//! A test-only OCI distribution server: in memory, on 127.0.0.1, with the OCI 1.1 referrers
//! API and faults on demand.
//!
//! The registry of the normal path is the real one, [`crate::harness::Registry`] (CNCF
//! distribution 2.8), and this server never replaces it there. It exists for the two things
//! distribution 2.8 cannot do:
//!
//! - the referrers API: `GET /v2/<name>/referrers/<digest>` with `Link` pagination,
//!   `artifactType` filtering announced by `OCI-Filters-Applied`, and `OCI-Subject` on the push
//!   of a manifest with a `subject`. No registry that implements it can be installed here;
//! - misbehaviour on demand ([`Fault`]): wrong digests, huge bodies, garbage JSON, endless
//!   pagination, 429 and 500 answers, slow answers, redirect loops.
//!
//! It follows the distribution spec
//! (<https://github.com/opencontainers/distribution-spec/blob/main/spec.md>) for everything a
//! client can observe: blob uploads (`POST` then `PUT`, single `POST`, chunked `PATCH`,
//! cross-repository mounts), manifests stored byte for byte under their content type, digest
//! checks on every write, `MANIFEST_BLOB_UNKNOWN` for missing blobs, tag pagination, and the
//! spec's error bodies. Where the spec leaves a choice it answers like distribution (the
//! `404 page not found` of a registry without the referrers API, a `_state` query in upload
//! locations) or takes the choice that asks more of a client (relative `Location`s). It also
//! honours `If-Match` / `If-None-Match` on manifest writes, which distribution 2.8 ignores, so
//! that signet's conditional-write path can be tested.
//!
//! Authentication exists only to test where clients send credentials ([`Demand`]): the server
//! can demand Basic or Bearer auth of everyone and records every `Authorization` header it
//! receives ([`FakeRegistry::authorizations`]).
//!
//! Not implemented: real authentication, `Range` requests, `?tag=` on manifest pushes, `_catalog`,
//! `digest-algorithm` on upload start.
//!
//! ```ignore
//! let registry = FakeRegistry::start_with(Config { page_size: 2, ..Config::default() });
//! // ... push an image and its referrers to registry.host() ...
//! registry.set_fault_for(
//!     RequestKind::Referrers,
//!     Some(Fault::TooManyRequests { retry_after_secs: 1, times: 1 }),
//! );
//! // ... run signet ...
//! assert_eq!(registry.requests(RequestKind::Referrers), 2);
//! ```
//!
//! The server runs on a tokio runtime of its own in a background thread, so it works the same
//! from `#[test]` and `#[tokio::test]`; dropping the [`FakeRegistry`] stops it and closes every
//! connection.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256, Sha512};
use tokio::sync::oneshot;

/// Media type of an OCI image index, the form of every referrers answer.
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Largest manifest accepted; the spec asks registries to take at least 4 MiB and to answer
/// 413 above their limit.
const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// Largest blob (or upload chunk) accepted; everything is kept in memory.
const MAX_BLOB_BYTES: usize = 64 * 1024 * 1024;

/// Body of [`Fault::GarbageJson`]: it starts like an index, so only a real parser rejects it.
const GARBAGE: &[u8] = b"{\"schemaVersion\": 2, \"manifests\": [ <html>this is not JSON</html>";

/// Artifact type of the made-up referrers of [`Fault::EndlessPagination`] when the request
/// had no filter.
const ENDLESS_ARTIFACT_TYPE: &str = "application/vnd.signet.test.endless";

/// Prefix of the made-up tags of [`Fault::EndlessPagination`]; `zz` sorts them last.
const ENDLESS_TAG_PREFIX: &str = "zz-endless-";

/// Query parameter that tells the two ends of [`Fault::RedirectLoop`] apart.
const REDIRECT_MARK: &str = "fake-redirect";

/// What a request was for: counted by [`FakeRegistry::requests`], and the scope of a fault set
/// with [`FakeRegistry::set_fault_for`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum RequestKind {
    /// `GET /v2/<name>/referrers/<digest>`.
    Referrers,
    /// `GET` or `HEAD` of a manifest, by tag or by digest.
    ManifestGet,
    /// `PUT` of a manifest.
    ManifestPut,
    /// `GET` or `HEAD` of a blob.
    BlobGet,
    /// Any request of a blob upload: start (also a mount or a single-`POST` upload), `PATCH`,
    /// closing `PUT`, status and cancel.
    BlobPut,
    /// `GET /v2/<name>/tags/list`.
    TagsList,
    /// Everything else: `/v2/`, deletes, unknown routes.
    Other,
}

impl RequestKind {
    /// Every kind, in counter order.
    pub(crate) const ALL: [Self; 7] = [
        Self::Referrers,
        Self::ManifestGet,
        Self::ManifestPut,
        Self::BlobGet,
        Self::BlobPut,
        Self::TagsList,
        Self::Other,
    ];

    fn index(self) -> usize {
        self as usize
    }

    fn of(method: &Method, endpoint: Option<&Endpoint>) -> Self {
        match endpoint {
            Some(Endpoint::Referrers(_)) => Self::Referrers,
            Some(Endpoint::TagsList) => Self::TagsList,
            Some(Endpoint::Manifest(_)) if matches!(*method, Method::GET | Method::HEAD) => {
                Self::ManifestGet
            }
            Some(Endpoint::Manifest(_)) if *method == Method::PUT => Self::ManifestPut,
            Some(Endpoint::Blob(_)) if matches!(*method, Method::GET | Method::HEAD) => {
                Self::BlobGet
            }
            Some(Endpoint::UploadStart | Endpoint::Upload(_)) => Self::BlobPut,
            _ => Self::Other,
        }
    }
}

/// A way to misbehave, set with [`FakeRegistry::set_fault`] (every request it makes sense
/// for) or [`FakeRegistry::set_fault_for`] (one [`RequestKind`] only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Manifest and blob reads serve bytes that differ from the stored ones, while
    /// `Docker-Content-Digest` and `ETag` still claim the stored digest. The change keeps the
    /// length and, for JSON, usually the syntax (the case of the last ASCII letter is flipped),
    /// so only a digest check catches it.
    WrongDigest,
    /// Manifest, blob, referrers and tag-list reads answer 200 with a body of `bytes` bytes of
    /// JSON whitespace, generated as it is sent (never buffered), with a matching
    /// `Content-Length` and the usual content type and digest headers.
    HugeBody {
        /// Length of the body.
        bytes: u64,
    },
    /// Manifest, blob, referrers and tag-list reads answer 200 with a JSON content type and a
    /// body that is not JSON.
    GarbageJson,
    /// Referrers and tag lists never end: once the real entries are served, every page holds
    /// one new made-up entry (a referrer of the requested `artifactType`, or a tag) and a
    /// `Link` to the next.
    EndlessPagination,
    /// The next `times` requests answer 429 `TOOMANYREQUESTS` with `Retry-After`; then the
    /// server behaves.
    TooManyRequests {
        /// Value of `Retry-After`, in seconds.
        retry_after_secs: u64,
        /// How many requests are refused.
        times: usize,
    },
    /// The next `times` requests answer 500 `UNKNOWN`; then the server behaves.
    ServerError {
        /// How many requests fail.
        times: usize,
    },
    /// Every request waits `delay` before it is answered.
    Slow {
        /// How long to wait.
        delay: Duration,
    },
    /// Every request is answered 307, ping-ponging between the requested URL and the same URL
    /// with a marker query parameter, so following redirects never ends.
    RedirectLoop,
}

impl Fault {
    /// Whether the fault changes answers to requests of this kind.
    fn applies_to(&self, kind: RequestKind) -> bool {
        use RequestKind::{BlobGet, ManifestGet, Referrers, TagsList};
        match self {
            Self::WrongDigest => matches!(kind, ManifestGet | BlobGet),
            Self::HugeBody { .. } | Self::GarbageJson => {
                matches!(kind, ManifestGet | BlobGet | Referrers | TagsList)
            }
            Self::EndlessPagination => matches!(kind, Referrers | TagsList),
            Self::TooManyRequests { .. }
            | Self::ServerError { .. }
            | Self::Slow { .. }
            | Self::RedirectLoop => true,
        }
    }

    /// For faults that wear off, how many requests they hit.
    fn times(&self) -> Option<usize> {
        match self {
            Self::TooManyRequests { times, .. } | Self::ServerError { times } => Some(*times),
            _ => None,
        }
    }
}

/// Path of the token service of [`Demand::Bearer`], on the server itself.
const TOKEN_PATH: &str = "/token";

/// Prefix of the tokens that [`Demand::Bearer`]'s token service hands out.
const TOKEN_PREFIX: &str = "fake-anonymous-token-";

/// Authentication the server demands, to test what a client sends to a registry that asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Demand {
    /// Every request is answered `401` with `WWW-Authenticate: Basic realm="fake-registry"`:
    /// no credentials are good here, so a client has none to send.
    Basic,
    /// Requests without a token of this server are answered `401` with a Bearer challenge
    /// whose realm is the server's own `/token`; that token service gives a token to anyone
    /// (anonymous pull, as Docker Hub does), and requests carrying one are served.
    Bearer,
}

/// How the server behaves when it is not told to misbehave.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// Authentication demanded of every request; `None` serves everyone.
    pub(crate) auth: Option<Demand>,
    /// Whether `GET /v2/<name>/referrers/<digest>` exists. Without it the server answers that
    /// path with distribution 2.8's `404 page not found` and sends no `OCI-Subject`, so
    /// clients must fall back to the referrers tag schema.
    pub(crate) referrers_api: bool,
    /// Most entries in one page of referrers or tags (at least 1). Tag lists also honour a
    /// smaller `n`.
    pub(crate) page_size: usize,
    /// Whether the referrers API filters on `artifactType` (and says so with
    /// `OCI-Filters-Applied`). When false it ignores the parameter and returns everything, as
    /// the spec allows.
    pub(crate) filter_artifact_type: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            auth: None,
            referrers_api: true,
            page_size: 100,
            filter_artifact_type: true,
        }
    }
}

/// A running fake registry. Dropping it stops the server.
pub(crate) struct FakeRegistry {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeRegistry {
    /// Starts a server with the default [`Config`]: referrers API on, filtering on, pages of
    /// 100.
    pub(crate) fn start() -> Self {
        Self::start_with(Config::default())
    }

    /// Starts a server on 127.0.0.1 and a free port. It is listening when this returns.
    pub(crate) fn start_with(config: Config) -> Self {
        // Bound here, not in the thread, so the port is known and connections queue up before
        // the runtime is running.
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("make the listener non-blocking");
        let addr = listener
            .local_addr()
            .expect("local address of the listener");
        let shared = Arc::new(Shared {
            realm: format!("http://{addr}{TOKEN_PATH}"),
            authorizations: Mutex::default(),
            config,
            storage: Mutex::default(),
            fault: Mutex::default(),
            counters: Default::default(),
        });
        let (shutdown, stopped) = oneshot::channel();
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let thread = std::thread::Builder::new()
            .name(format!("fake-registry-{}", addr.port()))
            .spawn(move || serve(listener, app, stopped))
            .expect("spawn the fake registry thread");
        Self {
            addr,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:<port>`, the registry part of an image reference.
    pub(crate) fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The configuration the server was started with.
    pub(crate) fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Sets (or with `None` clears) the fault for every request it applies to. Replaces any
    /// earlier fault; a fault with `times` starts counting afresh.
    pub(crate) fn set_fault(&self, fault: Option<Fault>) {
        self.arm(None, fault);
    }

    /// Sets (or with `None` clears) a fault that hits only requests of `kind`. Replaces any
    /// earlier fault, scoped or not.
    pub(crate) fn set_fault_for(&self, kind: RequestKind, fault: Option<Fault>) {
        self.arm(Some(kind), fault);
    }

    fn arm(&self, scope: Option<RequestKind>, fault: Option<Fault>) {
        *lock(&self.shared.fault) = fault.map(|fault| ArmedFault {
            remaining: fault.times(),
            fault,
            scope,
        });
    }

    /// How many requests of `kind` arrived since the start or the last
    /// [`reset_counters`](Self::reset_counters), faulted ones included.
    pub(crate) fn requests(&self, kind: RequestKind) -> usize {
        self.shared.counters[kind.index()].load(Ordering::SeqCst)
    }

    /// Every `Authorization` header received so far (token requests included), in order.
    pub(crate) fn authorizations(&self) -> Vec<String> {
        lock(&self.shared.authorizations).clone()
    }

    /// How many requests of any kind arrived.
    pub(crate) fn total_requests(&self) -> usize {
        RequestKind::ALL
            .iter()
            .map(|&kind| self.requests(kind))
            .sum()
    }

    /// Sets every counter back to zero.
    pub(crate) fn reset_counters(&self) {
        for counter in &self.shared.counters {
            counter.store(0, Ordering::SeqCst);
        }
    }

    /// Stores a blob in `repository` without going through HTTP (and without counting);
    /// returns its `sha256:` digest.
    pub(crate) fn seed_blob(&self, repository: &str, bytes: impl Into<Bytes>) -> String {
        let bytes = bytes.into();
        let digest = sha256_digest(&bytes);
        lock(&self.shared.storage)
            .put_blob(repository, &digest, bytes)
            .unwrap_or_else(|e| panic!("seed blob in {repository}: {e:?}"));
        digest
    }

    /// Stores a one-layer OCI image under `repository:tag` without going through HTTP;
    /// returns the manifest digest.
    pub(crate) fn seed_image(&self, repository: &str, tag: &str, content: &[u8]) -> String {
        let config: &[u8] = br#"{"architecture":"amd64","os":"linux"}"#;
        let config_digest = self.seed_blob(repository, config.to_vec());
        let layer_digest = self.seed_blob(repository, content.to_vec());
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer_digest, "size": content.len()}],
        });
        self.seed_manifest(
            repository,
            tag,
            "application/vnd.oci.image.manifest.v1+json",
            manifest.to_string().into_bytes(),
        )
    }

    /// Stores a manifest under `reference` (a tag or its digest) without going through HTTP,
    /// with the checks of a `PUT` (its blobs must be there); returns its digest.
    pub(crate) fn seed_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: impl Into<Bytes>,
    ) -> String {
        let reference = Reference::parse(reference)
            .unwrap_or_else(|e| panic!("seed manifest reference {reference}: {e:?}"));
        lock(&self.shared.storage)
            .put_manifest(
                repository,
                &reference,
                Some(media_type.to_owned()),
                bytes.into(),
                &Preconditions::default(),
            )
            .unwrap_or_else(|e| panic!("seed manifest in {repository}: {e:?}"))
            .digest
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            // Err only means the server already stopped.
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panic in the server thread has been printed already; panicking again here
            // could abort a test that is already unwinding.
            let _ = thread.join();
        }
    }
}

/// Body of the server thread: runs `app` until `stopped` fires, then drops the runtime, which
/// cancels every connection still open (a slow answer, a huge body nobody reads).
fn serve(listener: TcpListener, app: Router, stopped: oneshot::Receiver<()>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("build the fake registry's runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("register the listener");
        tokio::select! {
            result = axum::serve(listener, app) => result.expect("serve the fake registry"),
            _ = stopped => {}
        }
    });
    runtime.shutdown_background();
}

/// State shared by the handle and the server.
struct Shared {
    config: Config,
    /// The token service URL of [`Demand::Bearer`].
    realm: String,
    /// Every `Authorization` header received.
    authorizations: Mutex<Vec<String>>,
    storage: Mutex<Storage>,
    fault: Mutex<Option<ArmedFault>>,
    counters: [AtomicUsize; RequestKind::ALL.len()],
}

impl Shared {
    /// The fault that hits a request of `kind`, if any; uses up one of its `times`.
    fn trigger_fault(&self, kind: RequestKind) -> Option<Fault> {
        let mut armed = lock(&self.fault);
        let armed = armed.as_mut()?;
        if armed.scope.is_some_and(|scope| scope != kind) || !armed.fault.applies_to(kind) {
            return None;
        }
        match &mut armed.remaining {
            Some(0) => return None,
            Some(remaining) => *remaining -= 1,
            None => {}
        }
        Some(armed.fault.clone())
    }
}

struct ArmedFault {
    fault: Fault,
    scope: Option<RequestKind>,
    /// Requests left to hit, for faults that wear off.
    remaining: Option<usize>,
}

/// Locks `mutex`, ignoring poisoning: the data stays consistent because no code panics while
/// holding a lock half-way through a change.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// Storage: plain data and the rules of the spec, no HTTP.
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Storage {
    repositories: HashMap<String, Repository>,
    uploads: HashMap<String, Upload>,
    next_upload: u64,
}

#[derive(Default)]
struct Repository {
    blobs: HashMap<String, Bytes>,
    manifests: HashMap<String, StoredManifest>,
    /// Tag to digest; a `BTreeMap` keeps tags in the spec's "ASCIIbetical" order.
    tags: BTreeMap<String, String>,
}

struct StoredManifest {
    /// The `Content-Type` it was pushed with, without parameters.
    media_type: String,
    /// Exactly the bytes pushed.
    bytes: Bytes,
    /// Digest in `subject.digest`, if any.
    subject: Option<String>,
    /// `artifactType` of its referrers descriptor: its own, else its config's media type
    /// (image manifests only).
    artifact_type: Option<String>,
    annotations: Option<Map<String, Value>>,
}

impl StoredManifest {
    /// Its descriptor in a referrers answer.
    fn descriptor(&self, digest: &str) -> Value {
        let mut descriptor = json!({
            "mediaType": self.media_type,
            "digest": digest,
            "size": self.bytes.len(),
        });
        if let Some(artifact_type) = &self.artifact_type {
            descriptor["artifactType"] = json!(artifact_type);
        }
        if let Some(annotations) = &self.annotations {
            descriptor["annotations"] = Value::Object(annotations.clone());
        }
        descriptor
    }
}

struct Upload {
    repository: String,
    data: Vec<u8>,
}

/// What a manifest push stored.
struct PutManifest {
    digest: String,
    subject: Option<String>,
}

/// The `<reference>` of a manifest path.
#[derive(Debug)]
enum Reference {
    Tag(String),
    Digest(String),
}

impl Reference {
    fn as_str(&self) -> &str {
        match self {
            Self::Tag(reference) | Self::Digest(reference) => reference,
        }
    }

    fn parse(reference: &str) -> Result<Self, ApiError> {
        if reference.contains(':') {
            check_digest(reference)?;
            Ok(Self::Digest(reference.to_owned()))
        } else if valid_tag(reference) {
            Ok(Self::Tag(reference.to_owned()))
        } else {
            Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "MANIFEST_INVALID",
                format!("invalid tag {reference:?}"),
            ))
        }
    }
}

impl Storage {
    fn repository(&self, name: &str) -> Option<&Repository> {
        self.repositories.get(name)
    }

    fn repository_mut(&mut self, name: &str) -> &mut Repository {
        self.repositories.entry(name.to_owned()).or_default()
    }

    /// Stores `bytes` if they hash to `digest`; returns the digest.
    fn put_blob(&mut self, name: &str, digest: &str, bytes: Bytes) -> Result<String, ApiError> {
        verify_digest(digest, &bytes)?;
        self.repository_mut(name)
            .blobs
            .insert(digest.to_owned(), bytes);
        Ok(digest.to_owned())
    }

    /// Stores a manifest as the spec asks: byte for byte, under the digest it was pushed by
    /// (checked) or its sha256, with every blob and child manifest it names already present
    /// and the preconditions of the request met.
    fn put_manifest(
        &mut self,
        name: &str,
        reference: &Reference,
        content_type: Option<String>,
        bytes: Bytes,
        preconditions: &Preconditions,
    ) -> Result<PutManifest, ApiError> {
        let document: Map<String, Value> = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::manifest_invalid(format!("not a JSON object: {e}")))?;
        let declared = document.get("mediaType").and_then(Value::as_str);
        let media_type = match (content_type, declared) {
            (Some(header), Some(field)) if header != field => {
                return Err(ApiError::manifest_invalid(format!(
                    "Content-Type {header} differs from mediaType {field}"
                )));
            }
            (Some(header), _) => header,
            (None, Some(field)) => field.to_owned(),
            (None, None) => {
                return Err(ApiError::manifest_invalid(
                    "no Content-Type and no mediaType field",
                ));
            }
        };
        let digest = match reference {
            Reference::Digest(digest) => {
                verify_digest(digest, &bytes)?;
                digest.clone()
            }
            Reference::Tag(_) => sha256_digest(&bytes),
        };
        let subject = match document.get("subject") {
            None => None,
            Some(subject) => Some(
                subject
                    .get("digest")
                    .and_then(Value::as_str)
                    .filter(|digest| check_digest(digest).is_ok())
                    .ok_or_else(|| ApiError::manifest_invalid("subject without a valid digest"))?
                    .to_owned(),
            ),
        };
        let is_index = document.contains_key("manifests");
        let artifact_type = document
            .get("artifactType")
            .and_then(Value::as_str)
            .filter(|artifact_type| !artifact_type.is_empty())
            .or_else(|| {
                let config = document.get("config").filter(|_| !is_index)?;
                config.get("mediaType").and_then(Value::as_str)
            })
            .map(str::to_owned);
        let annotations = document
            .get("annotations")
            .and_then(Value::as_object)
            .cloned();

        let empty = Repository::default();
        let repository = self.repository(name).unwrap_or(&empty);
        let (blobs, manifests) = referenced_digests(&document)?;
        let missing: Vec<&str> = blobs
            .iter()
            .filter(|digest| !repository.blobs.contains_key(**digest))
            .chain(
                manifests
                    .iter()
                    .filter(|digest| !repository.manifests.contains_key(**digest)),
            )
            .copied()
            .collect();
        if !missing.is_empty() {
            return Err(ApiError {
                status: StatusCode::BAD_REQUEST,
                errors: missing
                    .iter()
                    .map(|digest| {
                        error_entry(
                            "MANIFEST_BLOB_UNKNOWN",
                            "manifest references a manifest or blob unknown to registry",
                            json!({ "digest": digest }),
                        )
                    })
                    .collect(),
                headers: Vec::new(),
            });
        }
        let current = repository.resolve(reference).map(|(digest, _)| digest);
        preconditions.check(current)?;

        let repository = self.repository_mut(name);
        repository.manifests.insert(
            digest.clone(),
            StoredManifest {
                media_type,
                bytes,
                subject: subject.clone(),
                artifact_type,
                annotations,
            },
        );
        if let Reference::Tag(tag) = reference {
            repository.tags.insert(tag.clone(), digest.clone());
        }
        Ok(PutManifest { digest, subject })
    }

    fn new_upload(&mut self, name: &str) -> String {
        self.next_upload += 1;
        let id = format!("upload-{:06}", self.next_upload);
        self.uploads.insert(
            id.clone(),
            Upload {
                repository: name.to_owned(),
                data: Vec::new(),
            },
        );
        id
    }

    /// The upload `id` of repository `name`; one of another repository is as good as unknown.
    fn upload_mut(&mut self, name: &str, id: &str) -> Result<&mut Upload, ApiError> {
        self.uploads
            .get_mut(id)
            .filter(|upload| upload.repository == name)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "BLOB_UPLOAD_UNKNOWN",
                    "blob upload unknown to registry",
                )
            })
    }

    /// Descriptors of the manifests of `name` whose subject is `subject`, by digest.
    fn referrers(&self, name: &str, subject: &str) -> Vec<(String, Value)> {
        let Some(repository) = self.repository(name) else {
            return Vec::new();
        };
        let mut found: Vec<(String, Value)> = repository
            .manifests
            .iter()
            .filter(|(_, manifest)| manifest.subject.as_deref() == Some(subject))
            .map(|(digest, manifest)| (digest.clone(), manifest.descriptor(digest)))
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }
}

impl Repository {
    fn resolve(&self, reference: &Reference) -> Option<(&str, &StoredManifest)> {
        let digest = match reference {
            Reference::Tag(tag) => self.tags.get(tag)?,
            Reference::Digest(digest) => digest,
        };
        let (digest, manifest) = self.manifests.get_key_value(digest)?;
        Some((digest, manifest))
    }
}

/// Digests a manifest names: blobs (config and layers) and child manifests (of an index).
fn referenced_digests(document: &Map<String, Value>) -> Result<(Vec<&str>, Vec<&str>), ApiError> {
    let mut blobs = Vec::new();
    if let Some(config) = document.get("config") {
        blobs.push(descriptor_digest(config)?);
    }
    for layer in descriptor_list(document, "layers")? {
        blobs.push(descriptor_digest(layer)?);
    }
    let manifests = descriptor_list(document, "manifests")?
        .iter()
        .map(descriptor_digest)
        .collect::<Result<_, _>>()?;
    Ok((blobs, manifests))
}

fn descriptor_digest(descriptor: &Value) -> Result<&str, ApiError> {
    descriptor
        .get("digest")
        .and_then(Value::as_str)
        .filter(|digest| check_digest(digest).is_ok())
        .ok_or_else(|| ApiError::manifest_invalid("descriptor without a valid digest"))
}

fn descriptor_list<'a>(
    document: &'a Map<String, Value>,
    field: &str,
) -> Result<&'a [Value], ApiError> {
    match document.get(field) {
        None => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(ApiError::manifest_invalid(format!(
            "{field} is not an array"
        ))),
    }
}

/// `If-Match` and `If-None-Match` of a manifest `PUT`, checked against the manifest the
/// reference points at now (RFC 9110, section 13.1).
#[derive(Default)]
struct Preconditions {
    if_match: Option<String>,
    if_none_match: Option<String>,
}

impl Preconditions {
    fn from_headers(headers: &HeaderMap) -> Self {
        let get = |name: header::HeaderName| header_str(headers, name).map(str::to_owned);
        Self {
            if_match: get(header::IF_MATCH),
            if_none_match: get(header::IF_NONE_MATCH),
        }
    }

    fn check(&self, current: Option<&str>) -> Result<(), ApiError> {
        let failed = |why: String| {
            Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "DENIED",
                format!("precondition failed: {why}"),
            ))
        };
        let now = current.unwrap_or("nothing");
        if let Some(if_match) = &self.if_match {
            // Strong comparison: a weak tag never matches.
            let matches = current.is_some_and(|current| etag_matches(if_match, current, false));
            if !matches {
                return failed(format!("If-Match {if_match}, but the reference is {now}"));
            }
        }
        if let Some(if_none_match) = &self.if_none_match {
            let matches = current.is_some_and(|current| etag_matches(if_none_match, current, true));
            if matches {
                return failed(format!(
                    "If-None-Match {if_none_match}, but the reference is {now}"
                ));
            }
        }
        Ok(())
    }
}

/// Whether an `If-Match` / `If-None-Match` value (`*` or a list of entity tags) matches the
/// entity tag of `digest`, which is the digest in quotes.
fn etag_matches(list: &str, digest: &str, weak: bool) -> bool {
    list.split(',').map(str::trim).any(|tag| {
        if tag == "*" {
            return true;
        }
        let tag = match tag.strip_prefix("W/") {
            Some(_) if !weak => return false,
            Some(strong) => strong,
            None => tag,
        };
        tag.strip_prefix('"')
            .and_then(|tag| tag.strip_suffix('"'))
            .is_some_and(|tag| tag == digest)
    })
}

// ---------------------------------------------------------------------------------------------
// Names, tags and digests.
// ---------------------------------------------------------------------------------------------

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`
fn valid_name(name: &str) -> bool {
    name.split('/').all(|component| {
        let alphanumeric = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let bytes = component.as_bytes();
        let ends_ok =
            bytes.first().is_some_and(alphanumeric) && bytes.last().is_some_and(alphanumeric);
        ends_ok
            && component
                .split(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                .all(|separator| {
                    matches!(separator, "" | "." | "_" | "__")
                        || separator.bytes().all(|b| b == b'-')
                })
    })
}

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`
fn valid_tag(tag: &str) -> bool {
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    let bytes = tag.as_bytes();
    bytes.len() <= 128
        && bytes.first().is_some_and(word)
        && bytes.iter().all(|b| word(b) || *b == b'.' || *b == b'-')
}

/// `sha256:` or `sha512:` and lowercase hex of the right length, else 400 `DIGEST_INVALID`.
fn check_digest(digest: &str) -> Result<(), ApiError> {
    let valid = digest.split_once(':').is_some_and(|(algorithm, hex)| {
        let length = match algorithm {
            "sha256" => 64,
            "sha512" => 128,
            _ => return false,
        };
        hex.len() == length
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if valid {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            format!("invalid or unsupported digest {digest:?}"),
        ))
    }
}

/// Checks that `bytes` hash to `digest` with the digest's own algorithm.
fn verify_digest(digest: &str, bytes: &[u8]) -> Result<(), ApiError> {
    check_digest(digest)?;
    let actual = if digest.starts_with("sha512:") {
        format!("sha512:{}", hex::encode(Sha512::digest(bytes)))
    } else {
        sha256_digest(bytes)
    };
    if actual == digest {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            format!(
                "provided digest did not match uploaded content: expected {digest}, got {actual}"
            ),
        ))
    }
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

// ---------------------------------------------------------------------------------------------
// HTTP: routing, faults, handlers.
// ---------------------------------------------------------------------------------------------

/// Where a path under `/v2/` leads. Repository names contain slashes, so the path is read from
/// its end, the way distribution's router does.
struct Route {
    name: String,
    endpoint: Endpoint,
}

enum Endpoint {
    Ping,
    Manifest(String),
    Blob(String),
    UploadStart,
    Upload(String),
    Referrers(String),
    TagsList,
}

impl Route {
    fn parse(path: &str) -> Option<Self> {
        let rest = match path.strip_prefix("/v2") {
            Some("" | "/") => {
                return Some(Self {
                    name: String::new(),
                    endpoint: Endpoint::Ping,
                });
            }
            Some(rest) => rest.strip_prefix('/')?,
            None => return None,
        };
        let segments: Vec<&str> = rest.split('/').collect();
        let (name, endpoint) = match segments.as_slice() {
            [name @ .., "blobs", "uploads", ""] | [name @ .., "blobs", "uploads"] => {
                (name, Endpoint::UploadStart)
            }
            [name @ .., "blobs", "uploads", id] => (name, Endpoint::Upload((*id).to_owned())),
            [name @ .., "manifests", reference] if !reference.is_empty() => {
                (name, Endpoint::Manifest((*reference).to_owned()))
            }
            [name @ .., "blobs", digest] if !digest.is_empty() => {
                (name, Endpoint::Blob((*digest).to_owned()))
            }
            [name @ .., "referrers", digest] if !digest.is_empty() => {
                (name, Endpoint::Referrers((*digest).to_owned()))
            }
            [name @ .., "tags", "list"] => (name, Endpoint::TagsList),
            _ => return None,
        };
        (!name.is_empty()).then(|| Self {
            name: name.join("/"),
            endpoint,
        })
    }
}

/// One request, as the handlers see it.
struct Call<'a> {
    shared: &'a Shared,
    name: String,
    headers: &'a HeaderMap,
    query: Vec<(String, String)>,
    /// The fault that hit this request, if it changes the answer's content.
    fault: Option<Fault>,
}

impl Call<'_> {
    fn query_value(&self, key: &str) -> Option<&str> {
        self.query_values(key).into_iter().next()
    }

    fn query_values(&self, key: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn storage(&self) -> MutexGuard<'_, Storage> {
        lock(&self.shared.storage)
    }
}

/// The only handler: counts the request, applies the fault, routes.
async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let route = Route::parse(parts.uri.path());
    let kind = RequestKind::of(&parts.method, route.as_ref().map(|route| &route.endpoint));
    shared.counters[kind.index()].fetch_add(1, Ordering::SeqCst);
    let authorization = parts.headers.get(header::AUTHORIZATION).map(|value| {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        lock(&shared.authorizations).push(value.clone());
        value
    });
    if let Some(demand) = shared.config.auth
        && let Some(response) = demand_auth(
            &shared,
            demand,
            &parts,
            route.as_ref(),
            authorization.as_deref(),
        )
    {
        return response;
    }

    let mut response = match shared.trigger_fault(kind) {
        Some(Fault::RedirectLoop) => redirect_loop(&parts.uri),
        Some(Fault::TooManyRequests {
            retry_after_secs, ..
        }) => {
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TOOMANYREQUESTS",
                "too many requests",
            )
            .into_response();
            set_header(
                response.headers_mut(),
                header::RETRY_AFTER,
                retry_after_secs.to_string(),
            );
            response
        }
        Some(Fault::ServerError { .. }) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN",
            "injected server error",
        )
        .into_response(),
        fault => {
            if let Some(Fault::Slow { delay }) = fault {
                tokio::time::sleep(delay).await;
            }
            match route {
                None => not_found_page(),
                Some(route) => answer(&shared, &parts, route, fault, body)
                    .await
                    .unwrap_or_else(IntoResponse::into_response),
            }
        }
    };
    response.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    response
}

/// The answer of a server that demands `demand`, when the request does not get through: the
/// token service's answer, or a `401` with the challenge.
fn demand_auth(
    shared: &Shared,
    demand: Demand,
    parts: &Parts,
    route: Option<&Route>,
    authorization: Option<&str>,
) -> Option<Response> {
    let challenge = match demand {
        Demand::Basic => r#"Basic realm="fake-registry""#.to_owned(),
        Demand::Bearer => {
            if parts.uri.path() == TOKEN_PATH {
                let issued = lock(&shared.authorizations).len();
                let token = format!("{TOKEN_PREFIX}{issued}");
                return Some(
                    axum::Json(json!({"token": token, "access_token": token, "expires_in": 300}))
                        .into_response(),
                );
            }
            if authorization.is_some_and(|a| a.starts_with(&format!("Bearer {TOKEN_PREFIX}"))) {
                return None;
            }
            let mut challenge =
                format!(r#"Bearer realm="{}",service="fake-registry""#, shared.realm);
            if let Some(route) = route.filter(|r| !r.name.is_empty()) {
                challenge.push_str(&format!(r#",scope="repository:{}:pull""#, route.name));
            }
            challenge
        }
    };
    let mut response = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "authentication required",
    )
    .into_response();
    set_header(response.headers_mut(), header::WWW_AUTHENTICATE, challenge);
    Some(response)
}

async fn answer(
    shared: &Shared,
    parts: &Parts,
    route: Route,
    fault: Option<Fault>,
    body: Body,
) -> Result<Response, ApiError> {
    let Query(query) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "UNSUPPORTED", e.to_string()))?;
    let call = Call {
        shared,
        name: route.name,
        headers: &parts.headers,
        query,
        fault,
    };
    dispatch(&call, &parts.method, route.endpoint, body).await
}

async fn dispatch(
    call: &Call<'_>,
    method: &Method,
    endpoint: Endpoint,
    body: Body,
) -> Result<Response, ApiError> {
    if matches!(endpoint, Endpoint::Referrers(_)) && !call.shared.config.referrers_api {
        // What distribution 2.8 answers, its router knowing no such path.
        return Ok(not_found_page());
    }
    if !matches!(endpoint, Endpoint::Ping) && !valid_name(&call.name) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            format!("invalid repository name {:?}", call.name),
        ));
    }
    let head_or_get = matches!(*method, Method::GET | Method::HEAD);
    match endpoint {
        Endpoint::Ping if head_or_get => Ok(json_response(
            StatusCode::OK,
            "application/json",
            &json!({}),
        )),
        Endpoint::Manifest(reference) if head_or_get => get_manifest(call, &reference),
        Endpoint::Manifest(reference) if *method == Method::PUT => {
            put_manifest(call, &reference, body).await
        }
        Endpoint::Manifest(reference) if *method == Method::DELETE => {
            delete_manifest(call, &reference)
        }
        Endpoint::Blob(digest) if head_or_get => get_blob(call, &digest),
        Endpoint::Blob(digest) if *method == Method::DELETE => delete_blob(call, &digest),
        Endpoint::UploadStart if *method == Method::POST => start_upload(call, body).await,
        Endpoint::Upload(id) if *method == Method::PATCH => patch_upload(call, &id, body).await,
        Endpoint::Upload(id) if *method == Method::PUT => finish_upload(call, &id, body).await,
        Endpoint::Upload(id) if *method == Method::GET => {
            let length = call.storage().upload_mut(&call.name, &id)?.data.len();
            Ok(upload_progress(
                StatusCode::NO_CONTENT,
                &call.name,
                &id,
                length,
            ))
        }
        Endpoint::Upload(id) if *method == Method::DELETE => {
            let mut storage = call.storage();
            storage.upload_mut(&call.name, &id)?;
            storage.uploads.remove(&id);
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Endpoint::Referrers(digest) if *method == Method::GET => referrers(call, &digest),
        Endpoint::TagsList if *method == Method::GET => tags_list(call),
        _ => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            format!("{method} is not supported here"),
        )),
    }
}

fn get_manifest(call: &Call<'_>, reference: &str) -> Result<Response, ApiError> {
    let reference = Reference::parse(reference)?;
    let storage = call.storage();
    let (digest, manifest) = storage
        .repository(&call.name)
        .and_then(|repository| repository.resolve(&reference))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                "manifest unknown",
            )
            .with_detail(json!({ "reference": reference.as_str() }))
        })?;
    let etag = format!("\"{digest}\"");
    if header_str(call.headers, header::IF_NONE_MATCH)
        .is_some_and(|list| etag_matches(list, digest, true))
    {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        set_header(response.headers_mut(), header::ETAG, etag);
        set_header(response.headers_mut(), "docker-content-digest", digest);
        return Ok(response);
    }
    let mut response = content_response(
        &manifest.media_type,
        Some(digest),
        manifest.bytes.clone(),
        call.fault.as_ref(),
    );
    set_header(response.headers_mut(), header::ETAG, etag);
    Ok(response)
}

async fn put_manifest(call: &Call<'_>, reference: &str, body: Body) -> Result<Response, ApiError> {
    let reference = Reference::parse(reference)?;
    let bytes = axum::body::to_bytes(body, MAX_MANIFEST_BYTES)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "MANIFEST_INVALID",
                format!("manifest over {MAX_MANIFEST_BYTES} bytes or unreadable: {e}"),
            )
        })?;
    // The spec: registries SHOULD ignore parameters on Content-Type.
    let content_type = header_str(call.headers, header::CONTENT_TYPE)
        .and_then(|value| value.split(';').next())
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_owned);
    let put = call.storage().put_manifest(
        &call.name,
        &reference,
        content_type,
        bytes,
        &Preconditions::from_headers(call.headers),
    )?;
    let mut response = StatusCode::CREATED.into_response();
    let headers = response.headers_mut();
    set_header(
        headers,
        header::LOCATION,
        format!("/v2/{}/manifests/{}", call.name, put.digest),
    );
    set_header(headers, "docker-content-digest", &put.digest);
    if let Some(subject) = put.subject
        && call.shared.config.referrers_api
    {
        set_header(headers, "oci-subject", subject);
    }
    Ok(response)
}

fn delete_manifest(call: &Call<'_>, reference: &str) -> Result<Response, ApiError> {
    let reference = Reference::parse(reference)?;
    let mut storage = call.storage();
    let unknown = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            "manifest unknown",
        )
    };
    let repository = storage
        .repositories
        .get_mut(&call.name)
        .ok_or_else(unknown)?;
    match reference {
        Reference::Tag(tag) => {
            repository.tags.remove(&tag).ok_or_else(unknown)?;
        }
        Reference::Digest(digest) => {
            repository.manifests.remove(&digest).ok_or_else(unknown)?;
            repository.tags.retain(|_, tagged| *tagged != digest);
        }
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

fn get_blob(call: &Call<'_>, digest: &str) -> Result<Response, ApiError> {
    check_digest(digest)?;
    let bytes = call
        .storage()
        .repository(&call.name)
        .and_then(|repository| repository.blobs.get(digest).cloned())
        .ok_or_else(blob_unknown)?;
    let mut response = content_response(
        "application/octet-stream",
        Some(digest),
        bytes,
        call.fault.as_ref(),
    );
    set_header(
        response.headers_mut(),
        header::ETAG,
        format!("\"{digest}\""),
    );
    Ok(response)
}

fn delete_blob(call: &Call<'_>, digest: &str) -> Result<Response, ApiError> {
    check_digest(digest)?;
    call.storage()
        .repositories
        .get_mut(&call.name)
        .and_then(|repository| repository.blobs.remove(digest))
        .ok_or_else(blob_unknown)?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `POST /v2/<name>/blobs/uploads/`: a mount (`mount` and `from`), a whole upload (`digest`),
/// or the start of a session.
async fn start_upload(call: &Call<'_>, body: Body) -> Result<Response, ApiError> {
    if let Some(mount) = call.query_value("mount") {
        check_digest(mount)?;
        let mut storage = call.storage();
        let found = call
            .query_value("from")
            .and_then(|from| storage.repository(from))
            .and_then(|from| from.blobs.get(mount).cloned());
        if let Some(bytes) = found {
            storage
                .repository_mut(&call.name)
                .blobs
                .insert(mount.to_owned(), bytes);
            return Ok(blob_created(&call.name, mount));
        }
        // The spec: a mount that cannot be done falls back to starting an upload session.
    } else if let Some(digest) = call.query_value("digest") {
        let bytes = read_blob_body(body).await?;
        let digest = call.storage().put_blob(&call.name, digest, bytes)?;
        return Ok(blob_created(&call.name, &digest));
    }
    let id = call.storage().new_upload(&call.name);
    Ok(upload_progress(StatusCode::ACCEPTED, &call.name, &id, 0))
}

async fn patch_upload(call: &Call<'_>, id: &str, body: Body) -> Result<Response, ApiError> {
    let chunk = read_blob_body(body).await?;
    let mut storage = call.storage();
    let upload = storage.upload_mut(&call.name, id)?;
    check_content_range(call, id, upload.data.len(), chunk.len())?;
    upload.data.extend_from_slice(&chunk);
    let length = upload.data.len();
    Ok(upload_progress(
        StatusCode::ACCEPTED,
        &call.name,
        id,
        length,
    ))
}

/// The closing `PUT` of a session, with the last chunk (or the whole blob) or no body.
async fn finish_upload(call: &Call<'_>, id: &str, body: Body) -> Result<Response, ApiError> {
    let chunk = read_blob_body(body).await?;
    let digest = call.query_value("digest").ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "the closing PUT of an upload needs a digest parameter",
        )
    })?;
    let mut storage = call.storage();
    let upload = storage.upload_mut(&call.name, id)?;
    if !chunk.is_empty() {
        check_content_range(call, id, upload.data.len(), chunk.len())?;
    }
    let mut data = std::mem::take(&mut upload.data);
    data.extend_from_slice(&chunk);
    // Like distribution, a failed digest check ends the session.
    storage.uploads.remove(id);
    let digest = storage.put_blob(&call.name, digest, Bytes::from(data))?;
    Ok(blob_created(&call.name, &digest))
}

/// A chunk's `Content-Range` (`<start>-<end>`, inclusive) must continue the upload exactly;
/// else 416 with the current `Range`, as the spec asks.
fn check_content_range(
    call: &Call<'_>,
    id: &str,
    uploaded: usize,
    chunk: usize,
) -> Result<(), ApiError> {
    let Some(range) = header_str(call.headers, header::CONTENT_RANGE) else {
        return Ok(());
    };
    let parsed = range
        .split_once('-')
        .and_then(|(start, end)| Some((start.parse::<usize>().ok()?, end.parse::<usize>().ok()?)));
    match parsed {
        Some((start, end))
            if start == uploaded && end.checked_sub(start).map(|n| n + 1) == Some(chunk) =>
        {
            Ok(())
        }
        _ => {
            let progress =
                upload_progress(StatusCode::RANGE_NOT_SATISFIABLE, &call.name, id, uploaded);
            Err(ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "BLOB_UPLOAD_INVALID",
                format!("Content-Range {range} does not continue the {uploaded} bytes uploaded"),
            )
            .with_headers(progress.headers()))
        }
    }
}

async fn read_blob_body(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BLOB_BYTES)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "SIZE_INVALID",
                format!("blob over {MAX_BLOB_BYTES} bytes or unreadable: {e}"),
            )
        })
}

/// `GET /v2/<name>/referrers/<digest>`: an image index of the descriptors of the manifests of
/// `<name>` whose subject is `<digest>`, by digest, paginated with `Link` (query `last`, the
/// last digest of the previous page).
fn referrers(call: &Call<'_>, subject: &str) -> Result<Response, ApiError> {
    check_digest(subject)?;
    if let Some(fault @ (Fault::HugeBody { .. } | Fault::GarbageJson)) = &call.fault {
        return Ok(content_response(OCI_INDEX, None, Bytes::new(), Some(fault)));
    }
    let config = &call.shared.config;
    let filters = if config.filter_artifact_type {
        call.query_values("artifactType")
    } else {
        Vec::new()
    };
    let endless = call.fault == Some(Fault::EndlessPagination);
    let path = format!("/v2/{}/referrers/{subject}", call.name);
    let mut next_query: Vec<(&str, String)> = call
        .query_values("artifactType")
        .into_iter()
        .map(|artifact_type| ("artifactType", artifact_type.to_owned()))
        .collect();

    let (page, next) = match call.query_value("endless") {
        // The fault was cleared while a client followed its links.
        Some(_) if !endless => (Vec::new(), None),
        Some(page) => {
            // A made-up page past the end of an endless list.
            let page: u64 = page.parse().unwrap_or(0);
            let artifact_type = filters.first().copied().unwrap_or(ENDLESS_ARTIFACT_TYPE);
            let made_up = json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sha256_digest(format!("endless referrer {page}").as_bytes()),
                "size": 2,
                "artifactType": artifact_type,
            });
            (vec![made_up], Some(("endless", (page + 1).to_string())))
        }
        None => {
            let all: Vec<(String, Value)> = call
                .storage()
                .referrers(&call.name, subject)
                .into_iter()
                .filter(|(_, descriptor)| {
                    filters.is_empty()
                        || descriptor["artifactType"]
                            .as_str()
                            .is_some_and(|artifact_type| filters.contains(&artifact_type))
                })
                .collect();
            let start = match call.query_value("last") {
                Some(last) => all.partition_point(|(digest, _)| digest.as_str() <= last),
                None => 0,
            };
            let page: Vec<(String, Value)> = all[start..]
                .iter()
                .take(config.page_size.max(1))
                .cloned()
                .collect();
            let next = match page.last() {
                Some((last, _)) if start + page.len() < all.len() => Some(("last", last.clone())),
                _ if endless => Some(("endless", "1".to_owned())),
                _ => None,
            };
            (
                page.into_iter().map(|(_, descriptor)| descriptor).collect(),
                next,
            )
        }
    };

    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": page,
    });
    let mut response = json_response(StatusCode::OK, OCI_INDEX, &index);
    if !filters.is_empty() {
        set_header(
            response.headers_mut(),
            "oci-filters-applied",
            "artifactType",
        );
    }
    if let Some(next) = next {
        next_query.push(next);
        set_header(
            response.headers_mut(),
            header::LINK,
            next_link(&path, &next_query),
        );
    }
    Ok(response)
}

/// The `k`th made-up tag of [`Fault::EndlessPagination`].
fn endless_tag(k: u64) -> String {
    format!("{ENDLESS_TAG_PREFIX}{k:06}")
}

/// `GET /v2/<name>/tags/list`, with `n` and `last`; pages hold at most `page_size` tags and
/// link to the next one.
fn tags_list(call: &Call<'_>) -> Result<Response, ApiError> {
    if let Some(fault @ (Fault::HugeBody { .. } | Fault::GarbageJson)) = &call.fault {
        return Ok(content_response(
            "application/json",
            None,
            Bytes::new(),
            Some(fault),
        ));
    }
    let storage = call.storage();
    let repository = storage.repository(&call.name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "repository name not known to registry",
        )
        .with_detail(json!({ "name": call.name }))
    })?;
    let n = match call.query_value("n") {
        None => None,
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "PAGINATION_NUMBER_INVALID",
                format!("invalid number of results requested: {n:?}"),
            )
        })?),
    };
    let limit = n
        .unwrap_or(usize::MAX)
        .min(call.shared.config.page_size.max(1));
    let last = call.query_value("last");
    let endless = call.fault == Some(Fault::EndlessPagination);

    let (tags, next_last) = if n == Some(0) {
        // The spec: an empty list and no Link.
        (Vec::new(), None)
    } else if let Some(page) = last
        .and_then(|last| last.strip_prefix(ENDLESS_TAG_PREFIX))
        .filter(|_| endless)
    {
        // A made-up page past the end of an endless list.
        let tag = endless_tag(page.parse::<u64>().unwrap_or(0) + 1);
        (vec![tag.clone()], Some(tag))
    } else {
        let after = last.map_or(Bound::Unbounded, Bound::Excluded);
        let mut rest = repository
            .tags
            .range::<str, _>((after, Bound::Unbounded))
            .map(|(tag, _)| tag.clone());
        let page: Vec<String> = rest.by_ref().take(limit).collect();
        let next_last = if rest.next().is_some() {
            page.last().cloned()
        } else {
            endless.then(|| endless_tag(0))
        };
        (page, next_last)
    };
    let mut response = json_response(
        StatusCode::OK,
        "application/json",
        &json!({ "name": call.name, "tags": tags }),
    );
    if let Some(next_last) = next_last {
        let path = format!("/v2/{}/tags/list", call.name);
        let query = [("n", limit.to_string()), ("last", next_last)];
        set_header(
            response.headers_mut(),
            header::LINK,
            next_link(&path, &query),
        );
    }
    Ok(response)
}

// ---------------------------------------------------------------------------------------------
// Responses.
// ---------------------------------------------------------------------------------------------

/// A 200 with `bytes` under `content_type` and, for manifests and blobs, `digest` in
/// `Docker-Content-Digest`; or, under a content fault, what that fault serves instead with the
/// same headers. `Content-Length` is always set, so a `HEAD` (whose body axum drops) carries
/// it too.
fn content_response(
    content_type: &str,
    digest: Option<&str>,
    bytes: Bytes,
    fault: Option<&Fault>,
) -> Response {
    let (content_type, length, body) = match fault {
        Some(Fault::WrongDigest) => {
            let corrupted = corrupt(&bytes);
            (content_type, corrupted.len() as u64, Body::from(corrupted))
        }
        Some(Fault::HugeBody { bytes: length }) => (content_type, *length, huge_body(*length)),
        Some(Fault::GarbageJson) => {
            let json_type = if content_type.ends_with("json") {
                content_type
            } else {
                "application/json"
            };
            (json_type, GARBAGE.len() as u64, Body::from(GARBAGE))
        }
        _ => (content_type, bytes.len() as u64, Body::from(bytes)),
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    set_header(headers, header::CONTENT_TYPE, content_type);
    set_header(headers, header::CONTENT_LENGTH, length.to_string());
    if let Some(digest) = digest {
        set_header(headers, "docker-content-digest", digest);
    }
    response
}

/// `bytes` with one byte changed and the same length: the case of the last ASCII letter
/// flipped (in JSON usually inside a string, so the document still parses), else the low bit
/// of the last byte. Empty input becomes one byte.
fn corrupt(bytes: &[u8]) -> Bytes {
    let mut out = bytes.to_vec();
    if let Some(letter) = out.iter_mut().rev().find(|b| b.is_ascii_alphabetic()) {
        *letter ^= 0x20;
    } else if let Some(last) = out.last_mut() {
        *last ^= 1;
    } else {
        out.push(b'x');
    }
    Bytes::from(out)
}

/// `length` bytes of JSON whitespace, made as they are sent from one static chunk.
fn huge_body(length: u64) -> Body {
    static FILLER: [u8; 64 * 1024] = [b' '; 64 * 1024];
    let chunk = FILLER.len() as u64;
    let chunks = (0..length.div_ceil(chunk)).map(move |i| {
        let size = usize::try_from((length - i * chunk).min(chunk)).unwrap_or(FILLER.len());
        Ok::<_, Infallible>(Bytes::from_static(&FILLER[..size]))
    });
    Body::from_stream(futures_util::stream::iter(chunks))
}

fn json_response(status: StatusCode, content_type: &str, value: &Value) -> Response {
    let bytes = value.to_string().into_bytes();
    let mut response = (status, bytes).into_response();
    set_header(response.headers_mut(), header::CONTENT_TYPE, content_type);
    response
}

/// `201 Created` for a stored blob.
fn blob_created(name: &str, digest: &str) -> Response {
    let mut response = StatusCode::CREATED.into_response();
    let headers = response.headers_mut();
    set_header(
        headers,
        header::LOCATION,
        format!("/v2/{name}/blobs/{digest}"),
    );
    set_header(headers, "docker-content-digest", digest);
    response
}

/// The state of an upload session, as the answers to `POST`, `PATCH` and `GET` give it. The
/// location carries a `_state` query like distribution's, so clients must add `digest` to a
/// URL that already has a query.
fn upload_progress(status: StatusCode, name: &str, id: &str, uploaded: usize) -> Response {
    let mut response = status.into_response();
    let headers = response.headers_mut();
    set_header(
        headers,
        header::LOCATION,
        format!("/v2/{name}/blobs/uploads/{id}?_state={id}"),
    );
    set_header(
        headers,
        header::RANGE,
        format!("0-{}", uploaded.saturating_sub(1)),
    );
    set_header(headers, "docker-upload-uuid", id);
    set_header(headers, header::CONTENT_LENGTH, "0");
    response
}

/// A 307 to the other end of the loop: the requested URL with [`REDIRECT_MARK`] added, or
/// removed if it was there.
fn redirect_loop(uri: &Uri) -> Response {
    let mut marked = false;
    let mut query: Vec<&str> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let mark = pair.split('=').next() == Some(REDIRECT_MARK);
            marked |= mark;
            !mark
        })
        .collect();
    let mark = format!("{REDIRECT_MARK}=1");
    if !marked {
        query.push(&mark);
    }
    let target = if query.is_empty() {
        uri.path().to_owned()
    } else {
        format!("{}?{}", uri.path(), query.join("&"))
    };
    let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
    set_header(response.headers_mut(), header::LOCATION, target);
    response
}

/// Go's `http.NotFound`, distribution's answer to a path it has no route for.
fn not_found_page() -> Response {
    let mut response = (StatusCode::NOT_FOUND, "404 page not found\n").into_response();
    set_header(
        response.headers_mut(),
        header::CONTENT_TYPE,
        "text/plain; charset=utf-8",
    );
    response
}

/// `<path?query>; rel="next"`, the RFC 5988 form the spec asks for, with a relative URL.
fn next_link(path: &str, query: &[(&str, String)]) -> String {
    let query: Vec<String> = query
        .iter()
        .map(|(key, value)| format!("{key}={}", percent_encode(value)))
        .collect();
    format!("<{path}?{}>; rel=\"next\"", query.join("&"))
}

/// Percent-encodes everything but RFC 3986's unreserved characters (a `+` in a media type
/// must not come back as a space).
fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn set_header(headers: &mut HeaderMap, name: impl header::IntoHeaderName, value: impl AsRef<str>) {
    let value = HeaderValue::from_str(value.as_ref())
        .expect("header values made by the fake registry are visible ASCII");
    headers.insert(name, value);
}

fn blob_unknown() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
        "blob unknown to registry",
    )
}

/// An error answer in the spec's form: `{"errors":[{"code","message","detail"}]}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    errors: Vec<Value>,
    /// Extra headers (a `Vec`, so the error stays small enough to return by value).
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            errors: vec![error_entry(code, &message.into(), Value::Null)],
            headers: Vec::new(),
        }
    }

    fn manifest_invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", message)
    }

    fn with_detail(mut self, detail: Value) -> Self {
        for error in &mut self.errors {
            error["detail"] = detail.clone();
        }
        self
    }

    fn with_headers(mut self, headers: &HeaderMap) -> Self {
        self.headers = headers
            .iter()
            .filter(|(name, _)| *name != header::CONTENT_LENGTH)
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        self
    }
}

fn error_entry(code: &str, message: &str, detail: Value) -> Value {
    let mut entry = json!({ "code": code, "message": message });
    if !detail.is_null() {
        entry["detail"] = detail;
    }
    entry
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = json_response(
            self.status,
            "application/json; charset=utf-8",
            &json!({ "errors": self.errors }),
        );
        response.headers_mut().extend(self.headers);
        response
    }
}

/// The server against a plain HTTP client: if these fail, no test that uses it means anything.
#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::net::TcpStream;

    use reqwest::header::{CONTENT_TYPE, LINK, LOCATION};
    use reqwest::{Client, StatusCode};

    use super::*;
    use crate::harness;

    const IMAGE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";
    const SBOM: &str = "application/vnd.example.sbom.v1+json";
    const SIGNATURE: &str = "application/vnd.example.signature.v1+json";

    /// A server and a client that does not follow redirects, so every answer is seen as sent.
    struct Fixture {
        registry: FakeRegistry,
        client: Client,
    }

    /// A pushed manifest: what a `subject` needs.
    struct Pushed {
        digest: String,
        size: usize,
    }

    impl Fixture {
        fn new() -> Self {
            Self::with(Config::default())
        }

        fn with(config: Config) -> Self {
            harness::install_crypto_provider();
            let client = Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            Self {
                registry: FakeRegistry::start_with(config),
                client,
            }
        }

        /// `path`, or a relative `Location`/`Link` target, as an absolute URL.
        fn url(&self, path: &str) -> String {
            format!("{}{path}", self.registry.url())
        }

        async fn get(&self, path: &str) -> reqwest::Response {
            self.client.get(self.url(path)).send().await.unwrap()
        }

        /// `POST` then `PUT` to the `Location`, which has a query already.
        async fn push_blob(&self, repository: &str, bytes: &[u8]) -> String {
            let digest = sha256_digest(bytes);
            let started = self
                .client
                .post(self.url(&format!("/v2/{repository}/blobs/uploads/")))
                .send()
                .await
                .unwrap();
            assert_eq!(started.status(), StatusCode::ACCEPTED);
            let location = header(&started, LOCATION);
            assert!(location.contains('?'), "{location}");
            let finished = self
                .client
                .put(self.url(&format!("{location}&digest={digest}")))
                .body(bytes.to_vec())
                .send()
                .await
                .unwrap();
            assert_eq!(finished.status(), StatusCode::CREATED);
            assert_eq!(header(&finished, "docker-content-digest"), digest);
            assert_eq!(
                header(&finished, LOCATION),
                format!("/v2/{repository}/blobs/{digest}")
            );
            digest
        }

        async fn put_manifest(
            &self,
            repository: &str,
            reference: &str,
            bytes: &[u8],
        ) -> reqwest::Response {
            self.client
                .put(self.url(&format!("/v2/{repository}/manifests/{reference}")))
                .header(CONTENT_TYPE, IMAGE_MANIFEST)
                .body(bytes.to_vec())
                .send()
                .await
                .unwrap()
        }

        /// A one-layer image tagged `tag`.
        async fn push_image(&self, repository: &str, tag: &str) -> Pushed {
            let config = self.push_blob(repository, b"{\"os\":\"linux\"}").await;
            let layer = self.push_blob(repository, b"layer").await;
            let manifest = serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": IMAGE_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config,
                    "size": 14,
                },
                "layers": [{
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer,
                    "size": 5,
                }],
            }))
            .unwrap();
            let response = self.put_manifest(repository, tag, &manifest).await;
            assert_eq!(response.status(), StatusCode::CREATED);
            assert!(response.headers().get("oci-subject").is_none());
            Pushed {
                digest: sha256_digest(&manifest),
                size: manifest.len(),
            }
        }

        /// A referrer of `subject`: with `artifact_type` in the manifest if given, else an
        /// SBOM config (so the descriptor takes the config's media type). Returns the answer
        /// to the push and the digest.
        async fn push_referrer(
            &self,
            repository: &str,
            subject: &Pushed,
            artifact_type: Option<&str>,
            note: &str,
        ) -> (reqwest::Response, String) {
            let config = self.push_blob(repository, b"{}").await;
            let payload = self.push_blob(repository, note.as_bytes()).await;
            let mut manifest = json!({
                "schemaVersion": 2,
                "mediaType": IMAGE_MANIFEST,
                "config": {
                    "mediaType": if artifact_type.is_some() { EMPTY_CONFIG } else { SBOM },
                    "digest": config,
                    "size": 2,
                },
                "layers": [{
                    "mediaType": "application/octet-stream",
                    "digest": payload,
                    "size": note.len(),
                }],
                "subject": {
                    "mediaType": IMAGE_MANIFEST,
                    "digest": subject.digest,
                    "size": subject.size,
                },
                "annotations": { "note": note },
            });
            if let Some(artifact_type) = artifact_type {
                manifest["artifactType"] = json!(artifact_type);
            }
            let bytes = serde_json::to_vec(&manifest).unwrap();
            let digest = sha256_digest(&bytes);
            (self.put_manifest(repository, &digest, &bytes).await, digest)
        }

        /// Follows `Link` from `path` to the end (at most `max` pages); returns every page.
        async fn pages(&self, path: &str, max: usize) -> Vec<(HeaderMap, Value)> {
            let mut pages = Vec::new();
            let mut next = Some(path.to_owned());
            while let Some(path) = next.take() {
                assert!(pages.len() < max, "more than {max} pages");
                let response = self.get(&path).await;
                assert_eq!(response.status(), StatusCode::OK, "{path}");
                let headers = response.headers().clone();
                next = next_link(&headers);
                let body = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
                pages.push((headers, body));
            }
            pages
        }
    }

    #[tokio::test]
    async fn ping_answers_200_with_the_api_version() {
        let fixture = Fixture::new();
        let response = fixture.get("/v2/").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header(&response, "docker-distribution-api-version"),
            "registry/2.0"
        );
    }

    #[tokio::test]
    async fn blob_pushed_by_post_then_put_comes_back_by_head_and_get() {
        let fixture = Fixture::new();
        let digest = fixture.push_blob("a/b/c", b"hello blob").await;

        let head = fixture
            .client
            .head(fixture.url(&format!("/v2/a/b/c/blobs/{digest}")))
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), StatusCode::OK);
        assert_eq!(header(&head, "content-length"), "10");
        assert_eq!(header(&head, "docker-content-digest"), digest);
        assert!(head.bytes().await.unwrap().is_empty());

        let get = fixture.get(&format!("/v2/a/b/c/blobs/{digest}")).await;
        assert_eq!(get.status(), StatusCode::OK);
        assert_eq!(header(&get, "docker-content-digest"), digest);
        assert_eq!(get.bytes().await.unwrap().as_ref(), b"hello blob");

        // Another repository does not see it.
        let elsewhere = fixture.get(&format!("/v2/other/blobs/{digest}")).await;
        assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND);
        assert_eq!(error_code(elsewhere).await, "BLOB_UNKNOWN");
    }

    #[tokio::test]
    async fn blob_whose_bytes_do_not_match_the_digest_is_refused() {
        let fixture = Fixture::new();
        let wrong = sha256_digest(b"something else");
        let response = fixture
            .client
            .post(fixture.url(&format!("/v2/repo/blobs/uploads/?digest={wrong}")))
            .body("hello")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error_code(response).await, "DIGEST_INVALID");
        let get = fixture.get(&format!("/v2/repo/blobs/{wrong}")).await;
        assert_eq!(get.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn single_post_and_chunked_uploads_store_the_blob() {
        let fixture = Fixture::new();
        let digest = sha256_digest(b"one shot");
        let response = fixture
            .client
            .post(fixture.url(&format!("/v2/repo/blobs/uploads/?digest={digest}")))
            .body("one shot")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(header(&response, "docker-content-digest"), digest);

        let started = fixture
            .client
            .post(fixture.url("/v2/repo/blobs/uploads/"))
            .send()
            .await
            .unwrap();
        assert_eq!(header(&started, "range"), "0-0");
        let patch = |location: String, range: &'static str, chunk: &'static str| {
            fixture
                .client
                .patch(fixture.url(&location))
                .header("content-range", range)
                .body(chunk)
                .send()
        };
        let first = patch(header(&started, LOCATION), "0-4", "chunk")
            .await
            .unwrap();
        assert_eq!(first.status(), StatusCode::ACCEPTED);
        assert_eq!(header(&first, "range"), "0-4");
        let out_of_order = patch(header(&first, LOCATION), "9-13", "ed up")
            .await
            .unwrap();
        assert_eq!(out_of_order.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(header(&out_of_order, "range"), "0-4");
        let second = patch(header(&first, LOCATION), "5-9", "ed up")
            .await
            .unwrap();
        assert_eq!(second.status(), StatusCode::ACCEPTED);
        let digest = sha256_digest(b"chunked up");
        let closed = fixture
            .client
            .put(fixture.url(&format!("{}&digest={digest}", header(&second, LOCATION))))
            .send()
            .await
            .unwrap();
        assert_eq!(closed.status(), StatusCode::CREATED);
        let get = fixture.get(&format!("/v2/repo/blobs/{digest}")).await;
        assert_eq!(get.bytes().await.unwrap().as_ref(), b"chunked up");
    }

    #[tokio::test]
    async fn mount_copies_a_blob_from_another_repository_or_starts_an_upload() {
        let fixture = Fixture::new();
        let digest = fixture.push_blob("source", b"shared").await;
        let mount = |from: &str| {
            fixture
                .client
                .post(fixture.url(&format!(
                    "/v2/target/blobs/uploads/?mount={digest}&from={from}"
                )))
                .send()
        };
        let absent = mount("nowhere").await.unwrap();
        assert_eq!(absent.status(), StatusCode::ACCEPTED);
        assert!(header(&absent, LOCATION).starts_with("/v2/target/blobs/uploads/"));
        let mounted = mount("source").await.unwrap();
        assert_eq!(mounted.status(), StatusCode::CREATED);
        assert_eq!(
            header(&mounted, LOCATION),
            format!("/v2/target/blobs/{digest}")
        );
        let get = fixture.get(&format!("/v2/target/blobs/{digest}")).await;
        assert_eq!(get.bytes().await.unwrap().as_ref(), b"shared");
    }

    #[tokio::test]
    async fn manifest_comes_back_byte_for_byte_by_tag_and_by_digest() {
        let fixture = Fixture::new();
        let image = fixture.push_image("repo", "v1").await;
        let stored = fixture
            .get(&format!("/v2/repo/manifests/{}", image.digest))
            .await;
        assert_eq!(stored.status(), StatusCode::OK);
        assert_eq!(header(&stored, CONTENT_TYPE), IMAGE_MANIFEST);
        assert_eq!(header(&stored, "docker-content-digest"), image.digest);
        assert_eq!(header(&stored, "etag"), format!("\"{}\"", image.digest));
        assert_eq!(header(&stored, "content-length"), image.size.to_string());
        let bytes = stored.bytes().await.unwrap();
        assert_eq!(sha256_digest(&bytes), image.digest);

        let by_tag = fixture.get("/v2/repo/manifests/v1").await;
        assert_eq!(header(&by_tag, "docker-content-digest"), image.digest);
        assert_eq!(by_tag.bytes().await.unwrap(), bytes);

        let head = fixture
            .client
            .head(fixture.url("/v2/repo/manifests/v1"))
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), StatusCode::OK);
        assert_eq!(header(&head, "content-length"), image.size.to_string());
        assert_eq!(header(&head, "docker-content-digest"), image.digest);

        let cached = fixture
            .client
            .get(fixture.url("/v2/repo/manifests/v1"))
            .header("if-none-match", format!("\"{}\"", image.digest))
            .send()
            .await
            .unwrap();
        assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);

        let unknown = fixture.get("/v2/repo/manifests/v2").await;
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
        assert_eq!(error_code(unknown).await, "MANIFEST_UNKNOWN");
    }

    #[tokio::test]
    async fn manifest_naming_a_missing_blob_or_pushed_by_a_wrong_digest_is_refused() {
        let fixture = Fixture::new();
        let missing = sha256_digest(b"never pushed");
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": IMAGE_MANIFEST,
            "config": { "mediaType": EMPTY_CONFIG, "digest": missing, "size": 2 },
            "layers": [],
        }))
        .unwrap();
        let response = fixture.put_manifest("repo", "v1", &manifest).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error_code(response).await, "MANIFEST_BLOB_UNKNOWN");

        fixture.push_blob("repo", b"never pushed").await;
        let wrong = sha256_digest(b"not this manifest");
        let response = fixture.put_manifest("repo", &wrong, &manifest).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error_code(response).await, "DIGEST_INVALID");

        let response = fixture.put_manifest("repo", "v1", b"not json").await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error_code(response).await, "MANIFEST_INVALID");
    }

    #[tokio::test]
    async fn conditional_manifest_writes_fail_with_412_when_the_tag_moved() {
        let fixture = Fixture::new();
        let image = fixture.push_image("repo", "base").await;
        let index = |note: &str| {
            serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [{
                    "mediaType": IMAGE_MANIFEST,
                    "digest": image.digest,
                    "size": image.size,
                }],
                "annotations": { "note": note },
            }))
            .unwrap()
        };
        let put = |bytes: Vec<u8>, condition: (&'static str, String)| {
            fixture
                .client
                .put(fixture.url("/v2/repo/manifests/sha256-fallback"))
                .header(CONTENT_TYPE, OCI_INDEX)
                .header(condition.0, condition.1)
                .body(bytes)
                .send()
        };

        let created = put(index("first"), ("if-none-match", "*".to_owned()))
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        let first = header(&created, "docker-content-digest");
        let again = put(index("again"), ("if-none-match", "*".to_owned()))
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::PRECONDITION_FAILED);

        // Another writer moves the tag; a write conditional on the old state fails.
        let other = put(index("other"), ("if-match", format!("\"{first}\"")))
            .await
            .unwrap();
        assert_eq!(other.status(), StatusCode::CREATED);
        let second = header(&other, "docker-content-digest");
        let stale = put(index("stale"), ("if-match", format!("\"{first}\"")))
            .await
            .unwrap();
        assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
        let fresh = put(index("fresh"), ("if-match", format!("\"{second}\"")))
            .await
            .unwrap();
        assert_eq!(fresh.status(), StatusCode::CREATED);

        let current = fixture.get("/v2/repo/manifests/sha256-fallback").await;
        assert_eq!(header(&current, CONTENT_TYPE), OCI_INDEX);
        assert_eq!(
            header(&current, "etag"),
            format!("\"{}\"", header(&fresh, "docker-content-digest"))
        );
    }

    #[tokio::test]
    async fn referrer_push_answers_oci_subject_and_is_listed() {
        let fixture = Fixture::new();
        let image = fixture.push_image("repo", "v1").await;
        let (pushed, signature) = fixture
            .push_referrer("repo", &image, Some(SIGNATURE), "signed")
            .await;
        assert_eq!(pushed.status(), StatusCode::CREATED);
        assert_eq!(header(&pushed, "oci-subject"), image.digest);
        let (_, sbom) = fixture.push_referrer("repo", &image, None, "sbom").await;

        let response = fixture
            .get(&format!("/v2/repo/referrers/{}", image.digest))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, CONTENT_TYPE), OCI_INDEX);
        assert!(response.headers().get("oci-filters-applied").is_none());
        assert!(response.headers().get(LINK).is_none());
        let index: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(index["mediaType"], OCI_INDEX);
        assert_eq!(index["schemaVersion"], 2);
        let mut expected = vec![signature.clone(), sbom.clone()];
        expected.sort();
        assert_eq!(manifest_digests(&index), expected);
        for descriptor in index["manifests"].as_array().unwrap() {
            let digest = descriptor["digest"].as_str().unwrap();
            let manifest = fixture
                .get(&format!("/v2/repo/manifests/{digest}"))
                .await
                .bytes()
                .await
                .unwrap();
            assert_eq!(descriptor["size"], manifest.len());
            assert_eq!(descriptor["mediaType"], IMAGE_MANIFEST);
            let (artifact_type, note) = if digest == signature {
                (SIGNATURE, "signed")
            } else {
                // No artifactType in the manifest: the config's media type stands in.
                (SBOM, "sbom")
            };
            assert_eq!(descriptor["artifactType"], artifact_type);
            assert_eq!(descriptor["annotations"], json!({ "note": note }));
        }

        let nothing = fixture
            .get(&format!("/v2/repo/referrers/{}", sha256_digest(b"x")))
            .await;
        assert_eq!(nothing.status(), StatusCode::OK);
        let index: Value = serde_json::from_slice(&nothing.bytes().await.unwrap()).unwrap();
        assert_eq!(index["manifests"], json!([]));
        let invalid = fixture.get("/v2/repo/referrers/sha256:nothex").await;
        assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn referrers_paginate_over_three_pages_with_link() {
        let fixture = Fixture::with(Config {
            page_size: 2,
            ..Config::default()
        });
        let image = fixture.push_image("repo", "v1").await;
        let mut expected = Vec::new();
        for note in ["a", "b", "c", "d", "e"] {
            let (_, digest) = fixture
                .push_referrer("repo", &image, Some(SIGNATURE), note)
                .await;
            expected.push(digest);
        }
        expected.sort();

        let pages = fixture
            .pages(&format!("/v2/repo/referrers/{}", image.digest), 10)
            .await;
        let sizes: Vec<usize> = pages
            .iter()
            .map(|(_, index)| index["manifests"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, [2, 2, 1]);
        let listed: Vec<String> = pages
            .iter()
            .flat_map(|(_, index)| manifest_digests(index))
            .collect();
        assert_eq!(listed, expected);
    }

    #[tokio::test]
    async fn referrers_filter_on_artifact_type_and_say_so() {
        let fixture = Fixture::with(Config {
            page_size: 1,
            ..Config::default()
        });
        let image = fixture.push_image("repo", "v1").await;
        let (_, signature) = fixture
            .push_referrer("repo", &image, Some(SIGNATURE), "sig")
            .await;
        let (_, first_sbom) = fixture.push_referrer("repo", &image, None, "one").await;
        let (_, second_sbom) = fixture.push_referrer("repo", &image, None, "two").await;

        // The `+` must survive the query string, also in the Link the server builds.
        let path = format!(
            "/v2/repo/referrers/{}?artifactType={}",
            image.digest,
            percent_encode(SBOM)
        );
        let pages = fixture.pages(&path, 10).await;
        assert_eq!(pages.len(), 2);
        for (headers, _) in &pages {
            assert_eq!(headers["oci-filters-applied"], "artifactType");
        }
        let mut listed: Vec<String> = pages
            .iter()
            .flat_map(|(_, index)| manifest_digests(index))
            .collect();
        listed.sort();
        let mut expected = vec![first_sbom, second_sbom];
        expected.sort();
        assert_eq!(listed, expected);
        assert!(!listed.contains(&signature));
    }

    #[tokio::test]
    async fn registry_that_does_not_filter_ignores_artifact_type_and_says_nothing() {
        let fixture = Fixture::with(Config {
            filter_artifact_type: false,
            ..Config::default()
        });
        let image = fixture.push_image("repo", "v1").await;
        fixture
            .push_referrer("repo", &image, Some(SIGNATURE), "sig")
            .await;
        fixture.push_referrer("repo", &image, None, "sbom").await;
        let response = fixture
            .get(&format!(
                "/v2/repo/referrers/{}?artifactType={}",
                image.digest,
                percent_encode(SBOM)
            ))
            .await;
        assert!(response.headers().get("oci-filters-applied").is_none());
        let index: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(manifest_digests(&index).len(), 2);
    }

    #[tokio::test]
    async fn without_the_referrers_api_it_answers_like_distribution_2_8() {
        let fixture = Fixture::with(Config {
            referrers_api: false,
            ..Config::default()
        });
        let image = fixture.push_image("repo", "v1").await;
        let (pushed, _) = fixture
            .push_referrer("repo", &image, Some(SIGNATURE), "sig")
            .await;
        assert_eq!(pushed.status(), StatusCode::CREATED);
        assert!(pushed.headers().get("oci-subject").is_none());
        let response = fixture
            .get(&format!("/v2/repo/referrers/{}", image.digest))
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.text().await.unwrap(), "404 page not found\n");
    }

    #[tokio::test]
    async fn tags_list_is_sorted_and_paginates_with_n_last_and_link() {
        let fixture = Fixture::with(Config {
            page_size: 3,
            ..Config::default()
        });
        fixture.push_image("repo", "v1").await;
        let manifest = fixture
            .get("/v2/repo/manifests/v1")
            .await
            .bytes()
            .await
            .unwrap();
        for tag in ["latest", "B", "a", "v2"] {
            let response = fixture.put_manifest("repo", tag, &manifest).await;
            assert_eq!(response.status(), StatusCode::CREATED);
        }

        let tags = |pages: &[(HeaderMap, Value)]| -> Vec<String> {
            pages
                .iter()
                .flat_map(|(_, list)| list["tags"].as_array().unwrap().clone())
                .map(|tag| tag.as_str().unwrap().to_owned())
                .collect()
        };
        let all = ["B", "a", "latest", "v1", "v2"];
        let by_two = fixture.pages("/v2/repo/tags/list?n=2", 10).await;
        assert_eq!(by_two.len(), 3);
        assert_eq!(by_two[0].1["name"], "repo");
        assert_eq!(tags(&by_two), all);
        // Without n, the server's own page size applies.
        let by_default = fixture.pages("/v2/repo/tags/list", 10).await;
        assert_eq!(by_default.len(), 2);
        assert_eq!(tags(&by_default), all);
        let after = fixture.pages("/v2/repo/tags/list?last=latest", 10).await;
        assert_eq!(tags(&after), ["v1", "v2"]);

        let none = fixture.get("/v2/repo/tags/list?n=0").await;
        assert!(none.headers().get(LINK).is_none());
        let list: Value = serde_json::from_slice(&none.bytes().await.unwrap()).unwrap();
        assert_eq!(list["tags"], json!([]));

        let unknown = fixture.get("/v2/nothing/tags/list").await;
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
        assert_eq!(error_code(unknown).await, "NAME_UNKNOWN");
    }

    #[tokio::test]
    async fn counters_count_requests_by_kind() {
        let fixture = Fixture::new();
        let image = fixture.push_image("repo", "v1").await;
        assert_eq!(fixture.registry.requests(RequestKind::ManifestPut), 1);
        assert_eq!(fixture.registry.requests(RequestKind::BlobPut), 4);
        assert_eq!(fixture.registry.total_requests(), 5);

        fixture.registry.reset_counters();
        fixture.get("/v2/").await;
        fixture
            .get(&format!("/v2/repo/referrers/{}", image.digest))
            .await;
        fixture.get("/v2/repo/manifests/v1").await;
        fixture.get("/v2/repo/tags/list").await;
        fixture.get("/nowhere").await;
        assert_eq!(fixture.registry.requests(RequestKind::Referrers), 1);
        assert_eq!(fixture.registry.requests(RequestKind::ManifestGet), 1);
        assert_eq!(fixture.registry.requests(RequestKind::TagsList), 1);
        assert_eq!(fixture.registry.requests(RequestKind::Other), 2);
        assert_eq!(fixture.registry.requests(RequestKind::BlobGet), 0);
        assert_eq!(fixture.registry.total_requests(), 5);
    }

    #[tokio::test]
    async fn fault_wrong_digest_serves_other_bytes_under_the_same_digest() {
        let fixture = Fixture::new();
        let image = fixture.push_image("repo", "v1").await;
        let blob = fixture.push_blob("repo", b"{\"a\":\"b\"}").await;
        fixture.registry.set_fault(Some(Fault::WrongDigest));

        let manifest = fixture
            .get(&format!("/v2/repo/manifests/{}", image.digest))
            .await;
        assert_eq!(manifest.status(), StatusCode::OK);
        assert_eq!(header(&manifest, "docker-content-digest"), image.digest);
        let bytes = manifest.bytes().await.unwrap();
        assert_eq!(bytes.len(), image.size);
        assert_ne!(sha256_digest(&bytes), image.digest);
        // Still JSON: only a digest check catches it.
        serde_json::from_slice::<Value>(&bytes).unwrap();

        let response = fixture.get(&format!("/v2/repo/blobs/{blob}")).await;
        assert_eq!(header(&response, "docker-content-digest"), blob);
        let bytes = response.bytes().await.unwrap();
        assert_eq!(bytes.as_ref(), b"{\"a\":\"B\"}");

        fixture.registry.set_fault(None);
        let response = fixture.get(&format!("/v2/repo/blobs/{blob}")).await;
        assert_eq!(sha256_digest(&response.bytes().await.unwrap()), blob);
    }

    #[tokio::test]
    async fn fault_huge_body_streams_the_announced_length() {
        const HUGE: u64 = 20 * 1024 * 1024 + 7;
        let fixture = Fixture::new();
        let blob = fixture.push_blob("repo", b"small").await;
        fixture
            .registry
            .set_fault_for(RequestKind::BlobGet, Some(Fault::HugeBody { bytes: HUGE }));
        let path = format!("/v2/repo/blobs/{blob}");
        let head = fixture
            .client
            .head(fixture.url(&path))
            .send()
            .await
            .unwrap();
        assert_eq!(header(&head, "content-length"), HUGE.to_string());

        let mut response = fixture.get(&path).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.content_length(), Some(HUGE));
        assert_eq!(header(&response, "docker-content-digest"), blob);
        let mut received = 0;
        while let Some(chunk) = response.chunk().await.unwrap() {
            assert!(chunk.iter().all(|b| *b == b' '));
            received += chunk.len() as u64;
        }
        assert_eq!(received, HUGE);

        // Scoped: manifests are untouched.
        fixture.push_image("repo", "v1").await;
        let manifest = fixture.get("/v2/repo/manifests/v1").await;
        assert_ne!(manifest.content_length(), Some(HUGE));
    }

    #[tokio::test]
    async fn fault_garbage_json_is_not_json_under_a_json_type() {
        let fixture = Fixture::new();
        let image = fixture.push_image("repo", "v1").await;
        fixture.registry.set_fault(Some(Fault::GarbageJson));
        for path in [
            format!("/v2/repo/referrers/{}", image.digest),
            "/v2/repo/manifests/v1".to_owned(),
            "/v2/repo/tags/list".to_owned(),
        ] {
            let response = fixture.get(&path).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert!(header(&response, CONTENT_TYPE).ends_with("json"), "{path}");
            let body = response.bytes().await.unwrap();
            assert!(serde_json::from_slice::<Value>(&body).is_err(), "{path}");
        }
    }

    #[tokio::test]
    async fn fault_endless_pagination_always_links_to_a_new_page() {
        let fixture = Fixture::with(Config {
            page_size: 1,
            ..Config::default()
        });
        let image = fixture.push_image("repo", "v1").await;
        fixture
            .push_referrer("repo", &image, Some(SIGNATURE), "real")
            .await;
        fixture.registry.set_fault(Some(Fault::EndlessPagination));

        let mut seen = std::collections::HashSet::new();
        let mut path = format!(
            "/v2/repo/referrers/{}?artifactType={}",
            image.digest,
            percent_encode(SIGNATURE)
        );
        for _ in 0..50 {
            let response = fixture.get(&path).await;
            let headers = response.headers().clone();
            let index: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
            for descriptor in index["manifests"].as_array().unwrap() {
                assert_eq!(descriptor["artifactType"], SIGNATURE);
                assert!(seen.insert(descriptor["digest"].as_str().unwrap().to_owned()));
            }
            path = next_link(&headers).expect("endless pages always link on");
        }
        assert_eq!(seen.len(), 50);

        let mut tags = std::collections::HashSet::new();
        let mut path = "/v2/repo/tags/list?n=1".to_owned();
        for _ in 0..20 {
            let response = fixture.get(&path).await;
            let headers = response.headers().clone();
            let list: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
            for tag in list["tags"].as_array().unwrap() {
                assert!(tags.insert(tag.as_str().unwrap().to_owned()));
            }
            path = next_link(&headers).expect("endless pages always link on");
        }
        assert_eq!(tags.len(), 20);

        // Once the fault is gone, the next page is the last.
        fixture.registry.set_fault(None);
        let response = fixture.get(&path).await;
        assert!(response.headers().get(LINK).is_none());
    }

    #[tokio::test]
    async fn fault_too_many_requests_then_normal() {
        let fixture = Fixture::new();
        fixture.registry.set_fault(Some(Fault::TooManyRequests {
            retry_after_secs: 3,
            times: 2,
        }));
        for _ in 0..2 {
            let response = fixture.get("/v2/").await;
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(header(&response, "retry-after"), "3");
            assert_eq!(error_code(response).await, "TOOMANYREQUESTS");
        }
        assert_eq!(fixture.get("/v2/").await.status(), StatusCode::OK);
        assert_eq!(fixture.registry.requests(RequestKind::Other), 3);
    }

    #[tokio::test]
    async fn fault_server_error_scoped_to_referrers_leaves_the_rest_alone() {
        let fixture = Fixture::new();
        let image = fixture.push_image("repo", "v1").await;
        fixture.registry.set_fault_for(
            RequestKind::Referrers,
            Some(Fault::ServerError { times: 1 }),
        );
        assert_eq!(
            fixture.get("/v2/repo/manifests/v1").await.status(),
            StatusCode::OK
        );
        let path = format!("/v2/repo/referrers/{}", image.digest);
        let failed = fixture.get(&path).await;
        assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(fixture.get(&path).await.status(), StatusCode::OK);
        assert_eq!(fixture.registry.requests(RequestKind::Referrers), 2);
    }

    #[tokio::test]
    async fn fault_slow_delays_the_answer() {
        let fixture = Fixture::new();
        fixture.registry.set_fault(Some(Fault::Slow {
            delay: Duration::from_secs(30),
        }));
        let error = fixture
            .client
            .get(fixture.url("/v2/"))
            .timeout(Duration::from_millis(200))
            .send()
            .await
            .unwrap_err();
        assert!(error.is_timeout(), "{error}");
        fixture.registry.set_fault(None);
        assert_eq!(fixture.get("/v2/").await.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn fault_redirect_loop_ping_pongs_between_two_urls() {
        let fixture = Fixture::new();
        fixture.registry.set_fault(Some(Fault::RedirectLoop));
        let first = fixture.get("/v2/repo/tags/list?n=1").await;
        assert_eq!(first.status(), StatusCode::TEMPORARY_REDIRECT);
        let there = header(&first, LOCATION);
        assert_eq!(there, "/v2/repo/tags/list?n=1&fake-redirect=1");
        let second = fixture.get(&there).await;
        assert_eq!(second.status(), StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(header(&second, LOCATION), "/v2/repo/tags/list?n=1");

        let following = Client::new();
        let error = following.get(fixture.url("/v2/")).send().await.unwrap_err();
        assert!(error.is_redirect(), "{error}");
    }

    /// A real client, not only hand-made requests: oci-client pushes (it picks its own upload
    /// flavour) and pulls back by digest.
    #[tokio::test]
    async fn oci_client_pushes_and_pulls_an_image() {
        use oci_client::client::{ClientConfig, ClientProtocol};
        use oci_client::secrets::RegistryAuth;

        harness::install_crypto_provider();
        let registry = FakeRegistry::start();
        let client = oci_client::Client::try_from(ClientConfig {
            protocol: ClientProtocol::Http,
            ..ClientConfig::default()
        })
        .unwrap();
        let reference = oci_client::Reference::with_tag(
            registry.host(),
            "signet/fake".to_owned(),
            "v1".to_owned(),
        );
        client
            .store_auth_if_needed(&registry.host(), &RegistryAuth::Anonymous)
            .await;
        let layer = b"layer bytes".to_vec();
        let config = b"{}".to_vec();
        for blob in [&layer, &config] {
            client
                .push_blob(&reference, blob.clone(), &sha256_digest(blob))
                .await
                .unwrap();
        }
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": IMAGE_MANIFEST,
            "config": { "mediaType": EMPTY_CONFIG, "digest": sha256_digest(&config), "size": 2 },
            "layers": [{
                "mediaType": "application/octet-stream",
                "digest": sha256_digest(&layer),
                "size": layer.len(),
            }],
        }))
        .unwrap();
        client
            .push_manifest_raw(
                &reference,
                manifest.clone(),
                reqwest::header::HeaderValue::from_static(IMAGE_MANIFEST),
            )
            .await
            .unwrap();
        let (pulled, digest) = client
            .pull_manifest_raw(&reference, &RegistryAuth::Anonymous, &[IMAGE_MANIFEST])
            .await
            .unwrap();
        assert_eq!(pulled.as_ref(), manifest.as_slice());
        assert_eq!(digest, sha256_digest(&manifest));
        let mut blob = Vec::new();
        client
            .pull_blob(&reference, sha256_digest(&layer).as_str(), &mut blob)
            .await
            .unwrap();
        assert_eq!(blob, layer);
    }

    /// No runtime needed on the caller's side, and dropping the handle closes the port.
    #[test]
    fn works_from_a_plain_test_and_stops_on_drop() {
        let registry = FakeRegistry::start();
        let mut stream = TcpStream::connect(registry.host()).unwrap();
        stream
            .write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert_eq!(registry.requests(RequestKind::Other), 1);

        let host = registry.host();
        drop(registry);
        // The port is free once nothing listens on it: binding it succeeds or connecting is
        // refused. Tests run in parallel and bind free ports, so another one may take this
        // port at once (seen once in CI); give that a moment to clear instead of failing.
        let freed = (0..40).any(|_| {
            let free = std::net::TcpListener::bind(&host).is_ok()
                || TcpStream::connect(&host)
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused);
            if !free {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            free
        });
        assert!(
            freed,
            "{host} still accepts connections after the registry was dropped"
        );
    }

    fn header(response: &reqwest::Response, name: impl reqwest::header::AsHeaderName) -> String {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    /// The target of a `Link: <...>; rel="next"` header.
    fn next_link(headers: &HeaderMap) -> Option<String> {
        let link = headers.get(LINK)?.to_str().unwrap();
        let (target, params) = link.split_once(';').unwrap();
        assert_eq!(params.trim(), "rel=\"next\"", "{link}");
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        assert!(target.starts_with("/v2/"), "not a relative URL: {link}");
        Some(target.to_owned())
    }

    /// The `code` of the first error in a spec error body.
    async fn error_code(response: reqwest::Response) -> String {
        let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        body["errors"][0]["code"].as_str().unwrap().to_owned()
    }

    fn manifest_digests(index: &Value) -> Vec<String> {
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|descriptor| descriptor["digest"].as_str().unwrap().to_owned())
            .collect()
    }
}
