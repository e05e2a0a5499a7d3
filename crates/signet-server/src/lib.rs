//! The signet verifier daemon.
//!
//! This crate owns the HTTPS server that a Kubernetes cluster calls on every pod it admits:
//!
//! - `POST /admission/validate`: an `AdmissionReview` v1 in, the same review with a response
//!   out; every container image of a Pod or of a pod template (Deployment, ReplicaSet,
//!   StatefulSet, DaemonSet, Job, CronJob, ReplicationController, and the
//!   `pods/ephemeralcontainers` subresource) is decided by the policy;
//! - `POST /admission/mutate`: pins every tag-only image to the digest its tag names now, with a
//!   JSONPatch, so that the image that runs is the image that was verified;
//! - `POST /v1/verify`: `{image, cluster?, namespace?, serviceAccount?}` in, the decision JSON
//!   of `signet verify --output json` out, for CI gates and other admission systems;
//! - `GET /healthz`, `GET /readyz`, `GET /metrics` (Prometheus text).
//!
//! On a listener of its own, on loopback only ([`ExplorerConfig`]), a read-only decision
//! explorer: the recent decisions, the policy in force, and why an image is allowed or denied
//! (server-rendered HTML, no JavaScript).
//!
//! Every denial, break-glass admission, dry-run would-be denial, fail-open admission and policy
//! reload is written to the audit log as one JSON line. The policy file is reloaded when it
//! changes and on `SIGHUP` (a broken policy is refused and the previous one stays in force);
//! the TLS certificate and key are reloaded when their files change.
//!
//! With [`ServerConfig::continuous_validation`], the daemon also lists the pods that run (from
//! the API server, with the `kube` client, or from a file: [`list_pods`]) on a schedule and
//! decides every container image again with `signet-verify`'s audit engine, the one `signet
//! audit` uses: an audit line per violating image, and `signet_running_images` gauges by
//! outcome.
//!
//! It must not verify anything itself: every decision comes from `signet-verify` and
//! `signet-policy`. What it adds is caching (evidence per digest, decisions per image, rule and
//! policy generation, tags per reference), coalescing of identical concurrent verifications,
//! and a deadline on every request.
//!
//! ```no_run
//! # async fn example() -> Result<(), signet_server::ServerError> {
//! use signet_server::{ServerConfig, TlsFiles};
//!
//! // The binary installs the rustls crypto provider; this library never does.
//! let _ = rustls::crypto::ring::default_provider().install_default();
//! let tls = TlsFiles {
//!     cert: "/etc/signet/tls/tls.crt".into(),
//!     key: "/etc/signet/tls/tls.key".into(),
//! };
//! let mut config = ServerConfig::new("/etc/signet/policy.yaml", tls);
//! config.cluster = Some("prod-eu".into());
//! // Serves until SIGTERM or SIGINT, then drains connections.
//! signet_server::run(config).await
//! # }
//! ```
#![forbid(unsafe_code)]

mod admission;
mod app;
mod audit;
mod check;
mod connections;
mod continuous;
mod explorer;
mod metrics;
mod pods;
mod reload;
mod routes;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use signet_registry::{AllowedHosts, Client, ClientOptions, Egress, RegistryError};
use tokio::task::JoinHandle;

use crate::app::App;
use crate::connections::LimitConnections;
pub use crate::continuous::ContinuousValidation;
pub use crate::explorer::{DEFAULT_RECENT_DECISIONS, ExplorerConfig, LoopbackAddr, NotLoopback};
pub use crate::pods::{DEFAULT_PAGE_SIZE, PodListing, PodSource, PodsError, list_pods};

/// The TLS certificate chain and private key, as PEM files. Both are reloaded when they change.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// How the daemon is reached.
///
/// HTTPS is the only transport Kubernetes accepts for webhooks, so it is what
/// [`ServerConfig::new`] asks for; plain HTTP has a name that says what it costs, in the manner
/// of rustls' `danger` module.
#[derive(Debug, Clone)]
pub enum Transport {
    /// HTTPS with these files, reloaded when they change.
    Tls(TlsFiles),
    /// Plain HTTP, for local development only: requests, decisions and the images they name
    /// travel unauthenticated and in the clear, and Kubernetes will not call such a webhook.
    DangerPlainHttp,
}

/// What an admission review gets when verification cannot finish for a reason other than the
/// policy (registry unreachable, deadline exceeded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnVerificationError {
    /// Deny, with the reason (the default).
    #[default]
    FailClosed,
    /// Admit the workload unverified, with a warning in the response, an audit event and a
    /// metric. Anyone who can make the registry slow or unreachable can then run any image.
    DangerFailOpen,
}

/// Bounds and lifetimes of the daemon's caches.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Most entries in the decision and tag caches.
    pub max_entries: u64,
    /// Most bytes of evidence (signature and attestation blobs) the evidence cache holds;
    /// the least recently used digests are dropped first.
    pub max_evidence_bytes: u64,
    /// How long a decision that admits is reused.
    pub allow_ttl: Duration,
    /// How long a decision that denies (or would deny, in dry run) is reused. Short, so that an
    /// image signed after a denial is admitted soon.
    pub deny_ttl: Duration,
    /// How long the evidence gathered for a digest is reused.
    pub evidence_ttl: Duration,
    /// How long the digest a tag resolved to is reused by the mutating webhook and the verify
    /// API.
    pub tag_ttl: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_entries: 10_000,
            max_evidence_bytes: 64 << 20,
            allow_ttl: Duration::from_secs(120),
            deny_ttl: Duration::from_secs(10),
            evidence_ttl: Duration::from_secs(30),
            tag_ttl: Duration::from_secs(30),
        }
    }
}

/// Bounds on the work one request, and all requests together, may cause; and on connections.
/// What a hostile user with permission to create pods can send is bounded by these.
#[derive(Debug, Clone)]
pub struct RequestLimits {
    /// Most distinct images one admission review may name. A review naming more is denied at
    /// once, saying why (real pods name a handful; the API server accepts bodies up to 3 MB,
    /// room for some 20,000 containers).
    pub max_images_per_review: usize,
    /// Most images of one review verified at once.
    pub images_in_flight_per_review: usize,
    /// Most image verifications in flight across the daemon, so that one large review cannot
    /// starve the others: work past it waits, within each review's deadline.
    pub verifications_in_flight: usize,
    /// How long a client has to send a request's headers (and, on a kept-alive connection,
    /// the next request's) before the connection is closed; and to finish the TLS handshake.
    pub header_read_timeout: Duration,
    /// Most connections open at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_images_per_review: 256,
            images_in_flight_per_review: 16,
            verifications_in_flight: 128,
            header_read_timeout: Duration::from_secs(5),
            max_connections: 512,
        }
    }
}

/// Everything the daemon needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The policy file; reloaded when it changes and on `SIGHUP`.
    pub policy_path: PathBuf,
    /// Where to listen (`0.0.0.0:8443` by default; port 0 picks a free port).
    pub listen: SocketAddr,
    /// HTTPS (with the TLS files), or plain HTTP by its dangerous name.
    pub transport: Transport,
    /// The cluster name the policy's `clusterAdmissionRules` are keyed by.
    pub cluster: Option<String>,
    /// The audit log file (appended to); `None` writes audit events to stdout.
    pub audit_log: Option<PathBuf>,
    /// What happens when verification fails for a reason other than the policy (registry
    /// unreachable, timeout): deny (fail closed, the default) unless
    /// [`OnVerificationError::DangerFailOpen`].
    pub on_verification_error: OnVerificationError,
    /// The deadline for verifying one request, below the webhook timeout (8 s of Kubernetes'
    /// 10 s by default).
    pub request_deadline: Duration,
    /// How registries are reached.
    pub registry: ClientOptions,
    /// Cache bounds and lifetimes.
    pub cache: CacheConfig,
    /// Bounds on requests and connections.
    pub limits: RequestLimits,
    /// A file holding the bearer token the verify API (`/v1/verify`) demands; `None` leaves
    /// it open to whoever can reach the daemon (the admission webhooks are for the API
    /// server and need none).
    pub api_token_file: Option<PathBuf>,
    /// How often the policy and TLS files are checked for changes.
    pub reload_interval: Duration,
    /// How long a shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
    /// Decide again, on a schedule, for the images of the pods that run; `None`: only at
    /// admission.
    pub continuous_validation: Option<ContinuousValidation>,
    /// The read-only decision explorer on its own loopback listener; `None` (the default here;
    /// the CLI turns it on) serves none and records no decisions for it.
    pub explorer: Option<ExplorerConfig>,
}

impl ServerConfig {
    /// The defaults, with the policy at `policy_path`, serving HTTPS with `tls`: listen on
    /// `0.0.0.0:8443`, fail closed, 8 s deadline.
    ///
    /// There is no way to get plain HTTP by leaving something out:
    ///
    /// ```compile_fail
    /// let config = signet_server::ServerConfig::new("policy.yaml");
    /// ```
    ///
    /// it takes [`ServerConfig::danger_plain_http`].
    pub fn new(policy_path: impl Into<PathBuf>, tls: TlsFiles) -> Self {
        Self::with_transport(policy_path.into(), Transport::Tls(tls))
    }

    /// The same defaults, serving plain HTTP: for local development only (Kubernetes calls
    /// webhooks over HTTPS only, and nothing on the wire is authenticated).
    pub fn danger_plain_http(policy_path: impl Into<PathBuf>) -> Self {
        Self::with_transport(policy_path.into(), Transport::DangerPlainHttp)
    }

    fn with_transport(policy_path: PathBuf, transport: Transport) -> Self {
        ServerConfig {
            policy_path,
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            transport,
            cluster: None,
            audit_log: None,
            on_verification_error: OnVerificationError::FailClosed,
            request_deadline: Duration::from_secs(8),
            registry: ClientOptions::default(),
            cache: CacheConfig::default(),
            limits: RequestLimits::default(),
            api_token_file: None,
            reload_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(20),
            continuous_validation: None,
            explorer: None,
        }
    }
}

/// Why the daemon could not start or stopped.
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum ServerError {
    /// The policy file does not load.
    #[error("cannot load policy {path}:\n{errors}")]
    Policy {
        /// The policy file.
        path: PathBuf,
        /// Every problem found, one per line, with line and column.
        errors: String,
    },
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be read or used.
    #[error("cannot use TLS certificate {cert} and key {key}: {source}")]
    Tls {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The audit log could not be opened.
    #[error("cannot open audit log {path}: {source}")]
    AuditLog {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// No rustls crypto provider is installed for the process: the program must install one
    /// (the `signet` binary installs ring) before [`bind`] or [`run`]. This library never
    /// chooses it, because the choice is process-wide.
    #[error(
        "no TLS crypto provider is installed: the program must call \
         rustls::crypto::ring::default_provider().install_default() before starting the server"
    )]
    NoCryptoProvider,
    /// The registry client could not be built.
    #[error("cannot set up the registry client: {0}")]
    Registry(#[source] RegistryError),
    /// The server failed while serving.
    #[error("server failed: {0}")]
    Serve(#[source] std::io::Error),
    /// A signal handler could not be installed.
    #[error("cannot install the {signal} handler: {source}")]
    Signal {
        /// The signal.
        signal: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A daemon that is listening: its address, and how to reload or stop it.
#[must_use = "dropping a RunningServer does not stop it; call shutdown"]
pub struct RunningServer {
    addr: SocketAddr,
    stop: ShutdownHandle,
    server: JoinHandle<std::io::Result<()>>,
    reloader: JoinHandle<()>,
    validator: Option<JoinHandle<()>>,
    /// The decision explorer's address and server, when it runs.
    explorer: Option<(SocketAddr, JoinHandle<std::io::Result<()>>)>,
}

/// Stops a running daemon gracefully from anywhere (a signal handler, a test).
#[derive(Clone)]
pub struct ShutdownHandle {
    handle: axum_server::Handle<SocketAddr>,
    app: Arc<App>,
    grace: Duration,
}

impl ShutdownHandle {
    /// Stops accepting connections, reports not ready, and lets requests in flight finish
    /// within the configured grace period.
    pub fn shutdown(&self) {
        self.app.set_ready(false);
        self.handle.graceful_shutdown(Some(self.grace));
    }
}

impl RunningServer {
    /// The address the daemon listens on (with the actual port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address the decision explorer listens on, when it runs.
    pub fn explorer_addr(&self) -> Option<SocketAddr> {
        self.explorer.as_ref().map(|(addr, _)| *addr)
    }

    /// A handle that stops the daemon.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.stop.clone()
    }

    /// Reloads the policy now, as `SIGHUP` does (even when the file looks unchanged).
    pub async fn reload_policy(&self) {
        reload::reload_policy(&self.stop.app, reload::Reload::Always).await;
    }

    /// The number of HTTP requests the daemon has sent to registries.
    pub fn registry_requests(&self) -> u64 {
        self.stop.app.client.request_count()
    }

    /// Stops the daemon gracefully and waits until it has stopped.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        self.stop.shutdown();
        self.wait().await
    }

    /// Waits until the daemon stops (after [`ShutdownHandle::shutdown`]).
    pub async fn wait(self) -> Result<(), ServerError> {
        let result = self.server.await;
        self.reloader.abort();
        if let Some(validator) = &self.validator {
            validator.abort();
        }
        if let Some((_, explorer)) = self.explorer {
            // Stopped by the same graceful shutdown; its result does not change the daemon's.
            let _ = explorer.await;
        }
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ServerError::Serve(e)),
            Err(join) => Err(ServerError::Serve(std::io::Error::other(join.to_string()))),
        }
    }
}

/// Loads the policy, binds the listening socket and starts serving in the background.
///
/// Fails when no rustls crypto provider is installed, the policy does not load, the address
/// cannot be bound, or the TLS files are unusable, so that a broken deployment stops at
/// start-up with the reason.
pub async fn bind(mut config: ServerConfig) -> Result<RunningServer, ServerError> {
    // The registry client and the TLS listener use rustls, built without a default crypto
    // provider; the binary installs one. Checked first, so that a missing provider is one clear
    // error rather than a registry-client error, or rustls picking one on its own for the TLS
    // listener.
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        return Err(ServerError::NoCryptoProvider);
    }

    let (policy, contents) = reload::load_initial(&config.policy_path).await?;
    // Before the state is built: an optional explorer whose address is taken is switched off.
    let explorer_listener = explorer::bind(&mut config.explorer)?;
    // The daemon connects only to public addresses, and to loopback, link-local or metadata
    // hosts only when the policy's registryAllowlist names them (kept up to date on reload).
    let allowed_hosts = AllowedHosts::default();
    let mut registry = config.registry.clone();
    registry.egress = Egress::PublicOnly(allowed_hosts.clone());
    let client = Client::new(registry).map_err(ServerError::Registry)?;
    let audit = audit::Audit::open(config.audit_log.as_deref())?;
    let app = Arc::new(App::new(
        &config,
        policy,
        contents,
        client,
        audit,
        allowed_hosts,
    ));

    let listener =
        std::net::TcpListener::bind(config.listen).map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: config.listen,
        source,
    })?;
    let handle = axum_server::Handle::new();
    let service = routes::router(app.clone()).into_make_service();
    let bind_error = |source| ServerError::Bind {
        addr: config.listen,
        source,
    };

    let tls = match &config.transport {
        Transport::Tls(files) => Some((
            files.clone(),
            RustlsConfig::from_pem_file(&files.cert, &files.key)
                .await
                .map_err(|source| ServerError::Tls {
                    cert: files.cert.clone(),
                    key: files.key.clone(),
                    source,
                })?,
        )),
        Transport::DangerPlainHttp => None,
    };
    if let Some((files, _)) = &tls
        && let Ok(pem) = tokio::fs::read(&files.cert).await
    {
        reload::record_certificate_expiry(&app, &pem);
    }
    let limits = &config.limits;
    let mut server = axum_server::from_tcp(listener)
        .map_err(bind_error)?
        .handle(handle.clone());
    // Half-open connections (a request line and one header, then nothing) are closed after
    // this; so are kept-alive connections that send no next request.
    server
        .http_builder()
        .http1()
        .header_read_timeout(Some(limits.header_read_timeout));
    // HTTP/2 (offered over TLS): a bounded number of streams per connection, and dead peers
    // found by pings.
    server
        .http_builder()
        .http2()
        .max_concurrent_streams(64)
        .keep_alive_interval(Some(std::time::Duration::from_secs(30)))
        .keep_alive_timeout(limits.header_read_timeout);
    // Until the protocol is known, nothing above applies: the first request as a whole must
    // arrive in the header time (a client sending `PRI` and stopping holds nothing).
    let server = server.first_request_timeout(limits.header_read_timeout);
    let server = match &tls {
        Some((_, tls)) => {
            let acceptor =
                RustlsAcceptor::new(tls.clone()).handshake_timeout(limits.header_read_timeout);
            tracing::info!(%addr, "signet serving HTTPS");
            tokio::spawn(
                server
                    .acceptor(LimitConnections::new(acceptor, limits.max_connections))
                    .serve(service),
            )
        }
        None => {
            // The library does not know which flag or setting chose this; the caller says
            // (the CLI names `--insecure-http`).
            tracing::warn!(
                %addr,
                "signet serving plain HTTP: for local development only; \
                 Kubernetes webhooks need HTTPS"
            );
            tokio::spawn(
                server
                    .acceptor(LimitConnections::new(
                        axum_server::accept::DefaultAcceptor::new(),
                        limits.max_connections,
                    ))
                    .serve(service),
            )
        }
    };

    let explorer = match explorer_listener {
        Some(listener) => Some(explorer::serve(
            listener,
            app.clone(),
            config.cache.evidence_ttl,
            limits,
            handle.control(),
        )?),
        None => None,
    };
    let reloader = tokio::spawn(reload::watch(app.clone(), tls, config.reload_interval));
    let validator = config.continuous_validation.clone().map(|validation| {
        tracing::info!(
            interval = %humantime::format_duration(validation.interval),
            pods = %validation.pods,
            "continuous validation on"
        );
        tokio::spawn(continuous::run(app.clone(), validation))
    });
    app.set_ready(true);
    Ok(RunningServer {
        addr,
        stop: ShutdownHandle {
            handle,
            app,
            grace: config.shutdown_grace,
        },
        server,
        reloader,
        validator,
        explorer,
    })
}

/// Runs the daemon until `SIGTERM` or `SIGINT`, then shuts down gracefully.
pub async fn run(config: ServerConfig) -> Result<(), ServerError> {
    let server = bind(config).await?;
    let stop = server.shutdown_handle();
    let signals = tokio::spawn(async move {
        if let Err(e) = wait_for_termination().await {
            tracing::error!(error = %e, "signal handling failed; stopping");
        }
        tracing::info!("signet shutting down");
        stop.shutdown();
    });
    let result = server.wait().await;
    signals.abort();
    result
}

async fn wait_for_termination() -> Result<(), ServerError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(|source| ServerError::Signal {
            signal: "SIGTERM",
            source,
        })?;
        tokio::select! {
            _ = term.recv() => Ok(()),
            result = tokio::signal::ctrl_c() => result.map_err(|source| ServerError::Signal {
                signal: "SIGINT",
                source,
            }),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .map_err(|source| ServerError::Signal {
                signal: "SIGINT",
                source,
            })
    }
}

/// Entry points for the fuzz targets in `fuzz/`: the admission parser is private, and the
/// public API should not grow for fuzzing. Behind the off-by-default `fuzzing` feature.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    /// One image an admission review asks about.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Image {
        /// The image as written.
        pub image: String,
        /// JSON pointer tokens from the request's object to the `image` field.
        pub path: Vec<String>,
    }

    /// Reads an `AdmissionReview` body as the webhooks do: `Ok(None)` when there is nothing to
    /// check, else the images to check; `Err` with the message a caller would get.
    pub fn admission_images(body: &[u8]) -> Result<Option<Vec<Image>>, String> {
        let review = crate::admission::parse(body).map_err(|e| e.to_string())?;
        Ok(review.workload.map(|w| {
            // `object()` formats the kind and name for messages; it must not fail either.
            let _ = w.object();
            w.images
                .into_iter()
                .map(|u| Image {
                    image: u.image,
                    path: u.path,
                })
                .collect()
        }))
    }
}
