//! The HTTP side of the store: one `reqwest` client, registry authentication, retries, size
//! bounds and digest checks.
//!
//! Why not `oci-client` for this: the store needs response headers that `oci-client` does not
//! expose (`OCI-Subject` on push, `Link` pagination and `OCI-Filters-Applied` on referrers,
//! `ETag` for conditional index updates), bounded reads (it buffers whole bodies) and retries
//! that honour `Retry-After`. The distribution protocol is small; owning it keeps every byte
//! from the registry under our bounds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::StreamExt as _;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use signet_core::digest::Digest;
use tokio::sync::Mutex;

use crate::auth::{self, BoundCredentials, Challenge, Credentials, DockerConfig};
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
    tokens: Mutex<HashMap<(String, String), (String, Instant)>>,
    /// Registries that asked for Basic auth, with the credentials that worked.
    basic: Mutex<HashMap<String, Credentials>>,
    /// Credentials found per registry (None: anonymous).
    credentials: Mutex<HashMap<String, Option<Credentials>>>,
    /// Scheme chosen per registry.
    schemes: Mutex<HashMap<String, &'static str>>,
    requests: AtomicU64,
}

/// One request to a registry, before auth and retries.
pub(crate) struct Request<'a> {
    /// Whether it needs push rights (decides the token scope).
    pub(crate) push: bool,
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
    pub(crate) fn new(push: bool, method: Method, path_and_query: &'a str, what: &'a str) -> Self {
        Request {
            push,
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
            .redirect(reqwest::redirect::Policy::limited(
                options.limits.max_redirects,
            ))
            .timeout(options.limits.request_timeout)
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(options.limits.concurrency);
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
                requests: AtomicU64::new(0),
            }),
        })
    }

    /// The bounds in force.
    pub fn limits(&self) -> &Limits {
        &self.inner.options.limits
    }

    /// How many HTTP requests this client has sent (auth and retries included).
    pub fn request_count(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
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

    fn plain_http_allowed(&self, registry: &str) -> bool {
        if self
            .inner
            .options
            .insecure_registries
            .iter()
            .any(|h| h == registry)
        {
            return true;
        }
        is_loopback(registry)
    }

    async fn scheme(&self, registry: &str) -> &'static str {
        if let Some(s) = self.inner.schemes.lock().await.get(registry) {
            return s;
        }
        if self.plain_http_allowed(registry) {
            "http"
        } else {
            "https"
        }
    }

    /// Sends one request to `registry` for `repository`, handling auth challenges, 429/5xx
    /// retries (honouring `Retry-After`), and for loopback and `--insecure-registry` hosts
    /// the choice between HTTPS and plain HTTP.
    pub(crate) async fn send(
        &self,
        registry: &str,
        repository: &str,
        request: Request<'_>,
    ) -> Result<Reply, RegistryError> {
        let Request {
            push,
            method,
            path_and_query,
            headers,
            body,
            mut stream,
            timeout,
            what,
        } = request;
        let scope = auth::scope_for(repository, push);
        let mut attempt = 0u32;
        // A streamed body goes out once: no retry, no second try over HTTPS, no re-send
        // after an auth challenge.
        let once = stream.is_some();
        let mut authenticated_once = once;
        let started = Instant::now();
        loop {
            attempt += 1;
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
            self.inner.requests.fetch_add(1, Ordering::Relaxed);
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    if e.is_redirect() {
                        return Err(RegistryError::TooMany {
                            what: format!("{what} at {registry}"),
                            limit: self.limits().max_redirects,
                            unit: "redirects",
                        });
                    }
                    let reason = error_chain(&e);
                    // A loopback or insecure registry may speak HTTPS: try it once before
                    // giving up on plain HTTP.
                    if scheme == "http"
                        && !once
                        && self.plain_http_allowed(registry)
                        && !self.inner.schemes.lock().await.contains_key(registry)
                        && looks_like_protocol_mismatch(&reason)
                    {
                        self.inner
                            .schemes
                            .lock()
                            .await
                            .insert(registry.to_string(), "https");
                        continue;
                    }
                    let err = RegistryError::Unreachable {
                        registry: registry.to_string(),
                        reason,
                    };
                    let wait = backoff_delay(attempt, None);
                    if attempt < self.limits().max_attempts
                        && !once
                        && e.is_connect()
                        && started.elapsed() + wait < self.limits().deadline
                    {
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Err(err);
                }
            };
            let status = response.status();
            if status == StatusCode::BAD_REQUEST
                && scheme == "http"
                && !once
                && self.plain_http_allowed(registry)
            {
                // Go's TLS servers answer a plain-HTTP request with 400 "Client sent an HTTP
                // request to an HTTPS server": switch to HTTPS for this registry.
                if self.inner.schemes.lock().await.get(registry) == Some(&"https") {
                    // A concurrent request found out while this one was on its way.
                    continue;
                }
                let mut message = read_error_message(response).await;
                if message.is_empty() && !self.inner.schemes.lock().await.contains_key(registry) {
                    // A HEAD answer has no body to tell why: ask the API root once.
                    message = self.ping_message(registry).await;
                }
                if message.contains("HTTPS server") {
                    self.inner
                        .schemes
                        .lock()
                        .await
                        .insert(registry.to_string(), "https");
                    continue;
                }
                return Err(RegistryError::Status {
                    registry: registry.to_string(),
                    what: what.to_string(),
                    status: 400,
                    message,
                });
            }
            self.inner
                .schemes
                .lock()
                .await
                .entry(registry.to_string())
                .or_insert(scheme);
            if status == StatusCode::UNAUTHORIZED && !authenticated_once {
                authenticated_once = true;
                let challenge = response
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let Some(challenge) = challenge else {
                    return Err(RegistryError::Authentication {
                        registry: registry.to_string(),
                        reason: "401 without a WWW-Authenticate challenge".into(),
                    });
                };
                self.authenticate(registry, &scope, &challenge).await?;
                attempt -= 1;
                continue;
            }
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                let message = read_error_message(response).await;
                return Err(RegistryError::Authentication {
                    registry: registry.to_string(),
                    reason: format!(
                        "{} for {what}{}",
                        status.as_u16(),
                        if message.is_empty() {
                            String::new()
                        } else {
                            format!(": {message}")
                        }
                    ),
                });
            }
            if (status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error())
                && !once
                && attempt < self.limits().max_attempts
            {
                let retry_after = response
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                let wait = backoff_delay(attempt, retry_after);
                // Retry only if the wait leaves time before the deadline; otherwise report
                // this answer now rather than a bare timeout later.
                if started.elapsed() + wait < self.limits().deadline {
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            return Ok(Reply {
                status,
                headers: response.headers().clone(),
                response,
            });
        }
    }

    /// The body of `GET http://REGISTRY/v2/`, bounded, for diagnosing a 400 on HEAD.
    async fn ping_message(&self, registry: &str) -> String {
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        match self
            .inner
            .http
            .get(format!("http://{registry}/v2/"))
            .send()
            .await
        {
            Ok(response) => read_error_message(response).await,
            Err(_) => String::new(),
        }
    }

    async fn cached_authorization(&self, registry: &str, scope: &str) -> Option<HeaderValue> {
        let key = (registry.to_string(), scope.to_string());
        if let Some((token, expiry)) = self.inner.tokens.lock().await.get(&key)
            && Instant::now() < *expiry
        {
            return HeaderValue::from_str(&format!("Bearer {token}")).ok();
        }
        // A token for pull+push also serves pull.
        if !scope.ends_with(":push") && !scope.ends_with(",push") {
            let push_key = (registry.to_string(), format!("{scope},push"));
            if let Some((token, expiry)) = self.inner.tokens.lock().await.get(&push_key)
                && Instant::now() < *expiry
            {
                return HeaderValue::from_str(&format!("Bearer {token}")).ok();
            }
        }
        let basic = self.inner.basic.lock().await;
        basic.get(registry).and_then(basic_header)
    }

    /// The credentials for `registry` and for no other: the explicit ones if they are bound
    /// to it, else what the docker config holds for this host (a helper is asked about this
    /// host only). A registry signet has none for gets none: at most an anonymous token
    /// request, never someone else's secret (issue 12).
    async fn credentials(&self, registry: &str) -> Result<Option<Credentials>, RegistryError> {
        if let Some(c) = self
            .inner
            .options
            .credentials
            .as_ref()
            .and_then(|bound| bound.credentials_for(registry))
        {
            return Ok(Some(c.clone()));
        }
        // Credential helpers are processes: ask each registry's once per client.
        let mut cache = self.inner.credentials.lock().await;
        if let Some(found) = cache.get(registry) {
            return Ok(found.clone());
        }
        let found =
            auth::credentials_for(registry, self.inner.options.docker_config.as_ref()).await?;
        cache.insert(registry.to_string(), found.clone());
        Ok(found)
    }

    async fn authenticate(
        &self,
        registry: &str,
        scope: &str,
        challenge: &str,
    ) -> Result<(), RegistryError> {
        let challenge = auth::parse_www_authenticate(challenge)?;
        let credentials = self.credentials(registry).await?;
        match challenge {
            Challenge::Basic { .. } => {
                let Some(credentials) = credentials else {
                    let reason = match &self.inner.options.credentials {
                        // Say why the credentials given were not used here.
                        Some(bound) => format!(
                            "the registry requires a login and no credentials were found for \
                             it; the credentials given are for {} only (docker login, \
                             ~/.docker/config.json, or --registry-credentials-host)",
                            bound.host()
                        ),
                        None => "the registry requires a login and no credentials were found \
                                 (docker login, ~/.docker/config.json, or --registry-username)"
                            .into(),
                    };
                    return Err(RegistryError::Authentication {
                        registry: registry.to_string(),
                        reason,
                    });
                };
                self.inner
                    .basic
                    .lock()
                    .await
                    .insert(registry.to_string(), credentials);
                Ok(())
            }
            Challenge::Bearer {
                realm,
                service,
                scope: challenge_scope,
            } => {
                let mut scopes = vec![scope.to_string()];
                if let Some(s) = challenge_scope
                    && !scopes.contains(&s)
                {
                    scopes.push(s);
                }
                let token = self
                    .fetch_token(registry, &realm, service.as_deref(), &scopes, credentials)
                    .await?;
                self.inner.tokens.lock().await.insert(
                    (registry.to_string(), scope.to_string()),
                    (
                        token.bearer().unwrap_or_default().to_string(),
                        Instant::now() + token.lifetime(),
                    ),
                );
                Ok(())
            }
        }
    }

    async fn fetch_token(
        &self,
        registry: &str,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        credentials: Option<Credentials>,
    ) -> Result<auth::TokenResponse, RegistryError> {
        let url = auth::token_request_url(realm, service, scopes)?;
        let mut request = match &credentials {
            Some(Credentials::IdentityToken(token)) => {
                let mut form = vec![
                    ("grant_type", "refresh_token".to_string()),
                    ("refresh_token", token.clone()),
                    ("client_id", "signet".to_string()),
                ];
                if let Some(service) = service {
                    form.push(("service", service.to_string()));
                }
                form.push(("scope", scopes.join(" ")));
                self.inner.http.post(realm).form(&form)
            }
            _ => self.inner.http.get(url.as_str()),
        };
        if let Some(value) = credentials.as_ref().and_then(basic_header) {
            request = request.header(header::AUTHORIZATION, value);
        }
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        let response = request
            .send()
            .await
            .map_err(|e| RegistryError::Authentication {
                registry: registry.to_string(),
                reason: format!("token service unreachable: {}", error_chain(&e)),
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(RegistryError::Authentication {
                registry: registry.to_string(),
                reason: format!("token service answered {}", status.as_u16()),
            });
        }
        let body = read_limited(response, 1 << 20, "token response").await?;
        let token: auth::TokenResponse =
            serde_json::from_slice(&body).map_err(|e| RegistryError::Malformed {
                what: format!("token response from {registry}"),
                reason: e.to_string(),
            })?;
        if token.bearer().is_none() {
            return Err(RegistryError::Authentication {
                registry: registry.to_string(),
                reason: "token service returned no token".into(),
            });
        }
        Ok(token)
    }
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

fn basic_header(credentials: &Credentials) -> Option<HeaderValue> {
    let (user, pass) = match credentials {
        Credentials::Basic { username, password } => (username.as_str(), password.as_str()),
        Credentials::IdentityToken(_) => return None,
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// Whether `registry` (host, optionally with port) is a loopback address.
pub fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        registry.rsplit_once(':').map_or(registry, |(h, _)| h)
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn looks_like_protocol_mismatch(reason: &str) -> bool {
    // A TLS server spoken to in plain HTTP closes the connection or answers garbage.
    let r = reason.to_ascii_lowercase();
    r.contains("connection closed")
        || r.contains("invalid http")
        || r.contains("parse")
        || r.contains("reset")
}

fn parse_retry_after(value: &str) -> Option<Duration> {
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value.trim()).ok()?;
    when.duration_since(std::time::SystemTime::now()).ok()
}

fn backoff_delay(attempt: u32, retry_after: Option<Duration>) -> Duration {
    // Exponential from 200 ms, capped; a server's Retry-After wins but is capped at 30 s so a
    // hostile registry cannot park us (the operation deadline still applies on top).
    let exponential = Duration::from_millis(100u64 << attempt.min(6));
    retry_after
        .unwrap_or(exponential)
        .min(Duration::from_secs(30))
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

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("soon"), None);
    }
}
