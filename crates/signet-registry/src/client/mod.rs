//! The HTTP side of the store: one `reqwest` client, registry authentication, retries, size
//! bounds and digest checks.
//!
//! Why not `oci-client` for this: the store needs response headers that `oci-client` does not
//! expose (`OCI-Subject` on push, `Link` pagination and `OCI-Filters-Applied` on referrers,
//! `ETag` for conditional index updates), bounded reads (it buffers whole bodies) and retries
//! that honour `Retry-After`. The distribution protocol is small; owning it keeps every byte
//! from the registry under our bounds.

mod authorize;
mod counts;
mod egress;
mod registries;
mod retry;
mod scheme;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use signet_core::digest::Digest;
use tokio::sync::Mutex;

use self::authorize::refused;
use self::counts::Counters;
pub use self::counts::ResponseCounts;
pub use self::egress::{AllowedHosts, Egress};
pub use self::registries::ReferrersSupport;
use self::registries::Registries;
use self::retry::{Retry, is_retryable, retry_after};
pub use self::scheme::is_loopback;
use self::scheme::{Scheme, Settled};
use crate::auth::{self, Access, BoundCredentials, Credentials, DockerConfig};
use crate::error::RegistryError;

/// Bounds on everything the store reads and on how long it tries.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest manifest or index accepted (the distribution spec suggests 4 MiB).
    pub max_manifest_bytes: u64,
    /// Largest attestation or signature blob read into memory.
    pub max_blob_bytes: u64,
    /// Most referrers accepted for one subject.
    pub max_referrers: usize,
    /// Most pages followed in a paginated listing.
    pub max_pages: usize,
    /// Most redirects followed for one request.
    pub max_redirects: usize,
    /// Deadline for one store operation, retries included.
    pub deadline: Duration,
    /// Timeout for one HTTP request.
    pub request_timeout: Duration,
    /// Most attempts for a request answered 429 or 5xx.
    pub max_attempts: u32,
    /// Most requests in flight at once for one fan-out.
    pub concurrency: usize,
    /// Most requests in flight at once to one registry, over all operations of this client
    /// (a daemon verifying many images at once shares it).
    pub max_in_flight_per_registry: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_manifest_bytes: 4 << 20,
            max_blob_bytes: 16 << 20,
            max_referrers: 10_000,
            max_pages: 100,
            max_redirects: 5,
            deadline: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            max_attempts: 5,
            concurrency: 16,
            max_in_flight_per_registry: 64,
        }
    }
}

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Credentials given explicitly (`--registry-username/--registry-password`), bound to
    /// the one registry they are for: there they take precedence over the docker config, and
    /// no other registry ever sees them.
    pub credentials: Option<BoundCredentials>,
    /// The docker config (`~/.docker/config.json`), if any.
    pub docker_config: Option<DockerConfig>,
    /// Hosts (with port) that may be reached over plain HTTP besides loopback ones.
    pub insecure_registries: Vec<String>,
    /// Extra trusted root certificates (PEM), e.g. a private registry's CA.
    pub extra_roots_pem: Vec<Vec<u8>>,
    /// Which addresses may be connected to (registries, token services, redirects).
    pub egress: Egress,
    /// Bounds.
    pub limits: Limits,
}

/// What a manifest PUT answered.
#[derive(Debug, Clone)]
pub struct PutManifest {
    /// The digest of the manifest.
    pub digest: Digest,
    /// The `OCI-Subject` header: present when the registry indexed the subject itself.
    pub oci_subject: Option<String>,
}

/// A manifest as fetched: bytes checked against the digest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// The digest the bytes hash to.
    pub digest: Digest,
    /// The media type the registry sent.
    pub media_type: String,
    /// The bytes, exactly as stored.
    pub bytes: Vec<u8>,
    /// The `ETag` header, for conditional updates.
    pub etag: Option<String>,
}

/// A precondition for a manifest PUT to a tag.
#[derive(Debug, Clone)]
pub enum Precondition {
    /// No precondition.
    None,
    /// The tag must not exist yet (`If-None-Match: *`).
    Absent,
    /// The tag must still hold what we read (`If-Match: <etag>`).
    Matches(String),
}

/// One connection pool and auth state for any number of registries.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    options: ClientOptions,
    /// Bearer tokens by (registry, scope), with their expiry.
    tokens: Mutex<HashMap<(String, String), (SecretString, Instant)>>,
    /// Registries that asked for Basic auth, with the credentials that worked.
    basic: Mutex<HashMap<String, Credentials>>,
    /// Credentials found per registry (None: anonymous).
    credentials: Mutex<HashMap<String, Option<Credentials>>>,
    /// Scheme chosen per registry.
    schemes: Mutex<HashMap<String, Scheme>>,
    /// Per registry: referrers API support, pauses asked for, requests in flight.
    registries: Registries,
    requests: AtomicU64,
    responses: Counters,
}

/// Whether a request's body can be sent more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Once {
    /// A streamed body: it goes out once, so no retry, no second try over HTTPS and no
    /// re-send after an auth challenge.
    Only,
    /// No body or a buffered one: the request can be sent again.
    Repeatable,
}

/// One request to a registry, before auth and retries.
pub(crate) struct Request<'a> {
    /// Whether it needs push rights (decides the token scope).
    pub(crate) access: Access,
    pub(crate) method: Method,
    pub(crate) path_and_query: &'a str,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<bytes::Bytes>,
    /// A streamed body instead of `body`. It can be sent only once, so a request carrying one
    /// is never retried here (the caller retries the whole transfer) and must already hold
    /// its authorization: send a plain request on the same scope first.
    pub(crate) stream: Option<reqwest::Body>,
    /// A timeout for this request instead of [`Limits::request_timeout`], for transfers whose
    /// length grows with the blob.
    pub(crate) timeout: Option<Duration>,
    /// What is asked for, for error messages.
    pub(crate) what: &'a str,
}

impl<'a> Request<'a> {
    /// A request without a body.
    pub(crate) fn new(
        access: Access,
        method: Method,
        path_and_query: &'a str,
        what: &'a str,
    ) -> Self {
        Request {
            access,
            method,
            path_and_query,
            headers: HeaderMap::new(),
            body: None,
            stream: None,
            timeout: None,
            what,
        }
    }
}

/// The result of one HTTP exchange, with the body not yet read.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    response: reqwest::Response,
}

impl Client {
    /// A client with `options`.
    ///
    /// The process must have a rustls crypto provider installed (the `signet` binary installs
    /// ring at start-up); without one this fails with [`RegistryError::NoCryptoProvider`].
    pub fn new(options: ClientOptions) -> Result<Client, RegistryError> {
        // reqwest is built without a default crypto provider (no aws-lc build) and would panic
        // without one; a library must not pick it for the whole process behind the caller's
        // back, so say what is missing instead.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            return Err(RegistryError::NoCryptoProvider);
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("signet/", env!("CARGO_PKG_VERSION")))
            .redirect(redirect_policy(&options))
            .timeout(options.limits.request_timeout)
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(options.limits.concurrency);
        if let Egress::PublicOnly(allowed) = &options.egress {
            // No proxy from the environment: a proxy resolves names itself, out of reach of
            // the filtering resolver.
            builder = builder
                .no_proxy()
                .dns_resolver(Arc::new(egress::FilteringResolver {
                    allowed: allowed.clone(),
                }));
        }
        for pem in &options.extra_roots_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| RegistryError::Usage(format!("invalid CA certificate PEM: {e}")))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| RegistryError::Usage(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                options,
                tokens: Mutex::new(HashMap::new()),
                basic: Mutex::new(HashMap::new()),
                credentials: Mutex::new(HashMap::new()),
                schemes: Mutex::new(HashMap::new()),
                registries: Registries::default(),
                requests: AtomicU64::new(0),
                responses: Counters::default(),
            }),
        })
    }

    /// Posts an RFC 3161 `TimeStampReq` (`query`, DER) to the timestamp authority at `url`
    /// and returns its `TimeStampResp` (at most 64 KiB), with the same TLS trust as the
    /// registries. Not checked here beyond the HTTP status: the verifier checks tokens.
    pub async fn post_timestamp_query(
        &self,
        url: &reqwest::Url,
        query: Vec<u8>,
    ) -> Result<Vec<u8>, RegistryError> {
        const MAX_REPLY: u64 = 64 * 1024;
        let host = url.host_str().unwrap_or_default().to_string();
        let what = format!("a timestamp from {url}");
        let response = self
            .inner
            .http
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/timestamp-query")
            .header(reqwest::header::ACCEPT, "application/timestamp-reply")
            .body(query)
            .send()
            .await
            .map_err(|e| RegistryError::Unreachable {
                registry: host.clone(),
                reason: error_chain(&e),
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(RegistryError::Status {
                registry: host,
                what,
                status: status.as_u16(),
                message: String::new(),
            });
        }
        read_limited(response, MAX_REPLY, &what).await
    }

    /// The bounds in force.
    pub fn limits(&self) -> &Limits {
        &self.inner.options.limits
    }

    /// How many HTTP requests this client has sent (auth and retries included).
    pub fn request_count(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// How many HTTP responses this client has received, by status class (`1xx` … `5xx`),
    /// and how many requests got none (`error`: connection refused, TLS failure, timeout,
    /// too many redirects). Auth, token and retried requests are counted like the rest;
    /// redirects followed inside one request count once, as their final answer.
    pub fn responses_by_class(&self) -> ResponseCounts {
        self.inner.responses.snapshot()
    }

    /// Runs `fut` under the operation deadline.
    pub(crate) async fn within<T>(
        &self,
        operation: String,
        fut: impl std::future::Future<Output = Result<T, RegistryError>>,
    ) -> Result<T, RegistryError> {
        let deadline = self.limits().deadline;
        match tokio::time::timeout(deadline, fut).await {
            Ok(result) => result,
            Err(_) => Err(RegistryError::DeadlineExceeded {
                operation,
                deadline,
            }),
        }
    }

    /// Sends one request to `registry` for `repository`: the scheme is settled by
    /// [`scheme`](self::scheme), authorization by [`authorize`](self::authorize), and this
    /// loop retries 429/5xx answers (honouring `Retry-After`, within the operation deadline)
    /// and, once, a connection that could not be made.
    pub(crate) async fn send(
        &self,
        registry: &str,
        repository: &str,
        request: Request<'_>,
    ) -> Result<Reply, RegistryError> {
        let Request {
            access,
            method,
            path_and_query,
            headers,
            body,
            mut stream,
            timeout,
            what,
        } = request;
        let scope = auth::scope_for(repository, access);
        // A streamed body goes out once: no retry, no second try over HTTPS, no re-send
        // after an auth challenge.
        let once = if stream.is_some() {
            Once::Only
        } else {
            Once::Repeatable
        };
        if let Some(reason) = egress::refusal(&self.inner.options.egress, registry) {
            return Err(RegistryError::Unreachable {
                registry: registry.to_string(),
                reason,
            });
        }
        let mut challenge_answered = once == Once::Only;
        let mut retry = Retry::new(self.limits(), once);
        loop {
            retry.begin_attempt();
            let scheme = self.scheme(registry).await;
            let url = format!("{scheme}://{registry}{path_and_query}");
            let mut request = self
                .inner
                .http
                .request(method.clone(), &url)
                .headers(headers.clone());
            if let Some(value) = self.cached_authorization(registry, &scope).await {
                request = request.header(header::AUTHORIZATION, value);
            }
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            if let Some(body) = stream.take() {
                request = request.body(body);
            }
            if let Some(timeout) = timeout {
                request = request.timeout(timeout);
            }
            let slot = self.slot(registry).await;
            let exchanged = self.exchange(request).await;
            drop(slot);
            let response = match exchanged {
                Ok(r) => r,
                Err(e) => {
                    if let Some(refused) = egress_refusal_in(&e) {
                        return Err(RegistryError::Unreachable {
                            registry: registry.to_string(),
                            reason: refused,
                        });
                    }
                    if e.is_redirect() {
                        return Err(RegistryError::TooMany {
                            what: format!("{what} at {registry}"),
                            limit: self.limits().max_redirects,
                            unit: "redirects",
                        });
                    }
                    let reason = error_chain(&e);
                    if once == Once::Repeatable
                        && self
                            .switch_scheme_after_failure(registry, scheme, &reason)
                            .await
                    {
                        continue;
                    }
                    let err = RegistryError::Unreachable {
                        registry: registry.to_string(),
                        reason,
                    };
                    if e.is_connect()
                        && let Some(wait) = retry.wait_after_connect_failure()
                    {
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Err(err);
                }
            };
            let response = match self
                .settle_scheme(registry, scheme, once, response, what)
                .await?
            {
                Settled::Switched => continue,
                Settled::Kept(response) => response,
            };
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !challenge_answered {
                challenge_answered = true;
                self.answer_challenge(registry, &scope, &response).await?;
                // Answering the challenge is part of this attempt, not a retry.
                retry.forget_attempt();
                continue;
            }
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                return Err(refused(registry, what, response).await);
            }
            if is_retryable(status)
                && let Some(wait) = retry.wait(retry_after(response.headers()))
            {
                // A registry that says how long to wait (rate limited, or down for a while)
                // gets that rest from every request of this client, not only from this one.
                if retry_after(response.headers()).is_some() {
                    self.pause(registry, wait);
                }
                tokio::time::sleep(wait).await;
                continue;
            }
            return Ok(Reply {
                status,
                headers: response.headers().clone(),
                response,
            });
        }
    }

    /// Sends `request`, counting it and its outcome: every HTTP exchange of this client goes
    /// through here, so that [`request_count`](Self::request_count) and
    /// [`responses_by_class`](Self::responses_by_class) see them all.
    pub(crate) async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, reqwest::Error> {
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        let result = request.send().await;
        self.inner
            .responses
            .record(result.as_ref().ok().map(reqwest::Response::status));
        result
    }
}

/// Redirects are followed up to the limit, and only to addresses the egress rule allows (a
/// registry could otherwise redirect a blob read to a metadata service).
fn redirect_policy(options: &ClientOptions) -> reqwest::redirect::Policy {
    let max = options.limits.max_redirects;
    let egress = options.egress.clone();
    reqwest::redirect::Policy::custom(move |attempt| {
        if let Some(reason) = egress::refusal(&egress, &egress::url_host(attempt.url())) {
            return attempt.error(EgressRefused(reason));
        }
        if attempt.previous().len() > max {
            return attempt.error(TooManyRedirects);
        }
        attempt.follow()
    })
}

/// A redirect to an address the egress rule refuses.
#[derive(Debug)]
struct EgressRefused(String);

impl std::fmt::Display for EgressRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EgressRefused {}

#[derive(Debug)]
struct TooManyRedirects;

impl std::fmt::Display for TooManyRedirects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("too many redirects")
    }
}

impl std::error::Error for TooManyRedirects {}

/// The egress refusal somewhere in `e`'s causes: a redirect refused, or a name that resolved
/// only to refused addresses.
fn egress_refusal_in(e: &reqwest::Error) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(refused) = c.downcast_ref::<EgressRefused>() {
            return Some(refused.0.clone());
        }
        let text = c.to_string();
        if text.starts_with("signet does not connect to") {
            return Some(text);
        }
        cause = c.source();
    }
    None
}

impl Reply {
    /// Reads the whole body, refusing more than `limit` bytes.
    pub(crate) async fn bytes(self, limit: u64, what: &str) -> Result<Vec<u8>, RegistryError> {
        read_limited(self.response, limit, what).await
    }

    /// The body as a stream of chunks, unbounded: for blobs, whose receiver counts and hashes.
    pub(crate) fn into_stream(
        self,
    ) -> impl futures_util::Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Send + 'static
    {
        self.response.bytes_stream()
    }

    /// The registry's error message, for error reports.
    pub(crate) async fn error_message(self) -> String {
        read_error_message(self.response).await
    }

    /// A header as text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn read_limited(
    response: reqwest::Response,
    limit: u64,
    what: &str,
) -> Result<Vec<u8>, RegistryError> {
    if response.content_length().is_some_and(|len| len > limit) {
        return Err(RegistryError::TooLarge {
            what: what.to_string(),
            limit,
        });
    }
    let mut out = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| RegistryError::Unreachable {
            registry: String::from("(reading body)"),
            reason: error_chain(&e),
        })?;
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(RegistryError::TooLarge {
                what: what.to_string(),
                limit,
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The `message` of a distribution error body, bounded and single-line.
async fn read_error_message(response: reqwest::Response) -> String {
    let Ok(body) = read_limited(response, 64 * 1024, "error body").await else {
        return String::new();
    };
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let text = match serde_json::from_slice::<Errors>(&body) {
        Ok(errors) => errors
            .errors
            .iter()
            .map(|e| format!("{} {}", e.code, e.message).trim().to_string())
            .collect::<Vec<_>>()
            .join("; "),
        Err(_) => String::from_utf8_lossy(&body).into_owned(),
    };
    let mut line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    if text.chars().count() > 200 {
        line.push('…');
    }
    line.trim().to_string()
}

/// A transport error with its causes, on one line.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_detection() {
        for host in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "registry.example:5000",
            "10.0.0.1:5000",
            "localhost.example",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[tokio::test]
    async fn credentials_are_not_sent_to_other_registries() {
        // The binary's job, done here for the test (the provider is per process).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let docker_config: DockerConfig = serde_json::from_str(
            r#"{"auths": {"docker-config.example": {"username": "dc", "password": "dc-secret"}}}"#,
        )
        .unwrap();
        let client = Client::new(ClientOptions {
            credentials: Some(
                BoundCredentials::new("flags.example:5000", Credentials::basic("f", "f-secret"))
                    .unwrap(),
            ),
            docker_config: Some(docker_config),
            ..ClientOptions::default()
        })
        .unwrap();
        assert_eq!(
            client.credentials("flags.example:5000").await.unwrap(),
            Some(Credentials::basic("f", "f-secret"))
        );
        assert_eq!(
            client.credentials("docker-config.example").await.unwrap(),
            Some(Credentials::basic("dc", "dc-secret"))
        );
        for other in ["evil.example", "flags.example", "flags.example:5001"] {
            assert_eq!(client.credentials(other).await.unwrap(), None, "{other}");
        }
    }
}
