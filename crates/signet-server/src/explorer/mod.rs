//! The decision explorer (issue 17): a read-only web page on its own loopback listener, reached
//! with `kubectl port-forward`.
//!
//! Three pages, server-rendered HTML that needs no JavaScript:
//!
//! - `/`: the recent decisions of the admission webhook and the verify API, from a bounded ring
//!   buffer ([`recent`]), filterable by outcome and namespace (`?outcome=denied&namespace=shop`);
//! - `/policy`: the policy in force, laid out from the same pieces `signet policy check` prints;
//! - `/explain?image=…`: for an image typed into a form, the rule that applies, the referrers
//!   tree, each piece of evidence accepted or rejected by each attestor with the reason, and the
//!   verdict, from the same engine and caches as admission ([`explain`]).
//!
//! What it must not be: a way around the daemon's limits, or a door for a web page the operator
//! visits. So it listens on loopback only ([`LoopbackAddr`]: plain HTTP, no authentication, the
//! port-forward is the authentication); it answers only requests whose `Host` is a loopback
//! name, so that a site rebinding its DNS name to 127.0.0.1 cannot read it; every response
//! carries a strict Content-Security-Policy (no script at all, styles from `/style.css` only),
//! `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` and frame denial; every
//! value is HTML-escaped by the templates (image names and reasons are written by whoever may
//! create a pod); the page shows key ids, never keys, tokens or registry credentials; and an
//! explanation takes the same verification slots, registry egress rules and deadline as an
//! admission review.

mod explain;
mod pages;
mod recent;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use askama::Template as _;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

pub(crate) use recent::{Recent, Record, Source};

use crate::app::App;
use crate::connections::LimitConnections;
use crate::metrics::Outcome;
use crate::{RequestLimits, ServerError};

/// The default number of recent decisions kept.
pub const DEFAULT_RECENT_DECISIONS: usize = 500;

/// Most explorer requests answered at once; others wait, within the request timeout. The page is
/// for a person or two behind a port-forward.
const MAX_REQUESTS_IN_FLIGHT: usize = 8;

/// Most explorer connections open at once.
const MAX_CONNECTIONS: usize = 32;

/// The headers every explorer response carries. No script may run (there is none), styles come
/// only from `/style.css`, forms submit only here, and no other site may frame the page or
/// learn where its links came from.
const SECURITY_HEADERS: [(&str, &str); 6] = [
    (
        "content-security-policy",
        "default-src 'none'; style-src 'self'; form-action 'self'; base-uri 'none'; \
         frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-resource-policy", "same-origin"),
    ("cache-control", "no-store"),
];

/// A loopback socket address (127.0.0.0/8 or ::1): the only kind the explorer listens on.
///
/// The explorer speaks plain HTTP without authentication; on loopback inside the pod, only
/// `kubectl port-forward` (which the API server authorises) reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopbackAddr(SocketAddr);

/// An address given for the explorer that is not a loopback address.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error(
    "{0} is not a loopback address: the decision explorer serves plain HTTP without \
     authentication, so it listens only on 127.0.0.1 or [::1]; reach it with `kubectl \
     port-forward` (or an SSH tunnel)"
)]
pub struct NotLoopback(pub SocketAddr);

impl LoopbackAddr {
    /// `addr`, if it is a loopback address.
    pub fn new(addr: SocketAddr) -> Result<LoopbackAddr, NotLoopback> {
        if addr.ip().is_loopback() {
            Ok(LoopbackAddr(addr))
        } else {
            Err(NotLoopback(addr))
        }
    }

    /// The address.
    pub fn get(self) -> SocketAddr {
        self.0
    }
}

impl std::fmt::Display for LoopbackAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The decision explorer's settings (`signet serve --ui-listen`).
#[derive(Debug, Clone)]
pub struct ExplorerConfig {
    /// Where it listens (port 0 picks a free port).
    pub listen: LoopbackAddr,
    /// When the address cannot be bound: `true` runs the daemon without the explorer, with a
    /// warning (the CLI's default address, which another daemon on the same host may hold);
    /// `false` refuses to start (an address asked for explicitly).
    pub optional: bool,
    /// How many recent decisions are kept for the decisions page.
    pub recent_decisions: usize,
}

impl ExplorerConfig {
    /// The explorer on `listen`, required, keeping [`DEFAULT_RECENT_DECISIONS`] decisions.
    pub fn new(listen: LoopbackAddr) -> ExplorerConfig {
        ExplorerConfig {
            listen,
            optional: false,
            recent_decisions: DEFAULT_RECENT_DECISIONS,
        }
    }
}

/// Binds the explorer's socket, before the daemon's state is built. `None` when there is no
/// explorer: not configured, or optional and its address taken (then `config` is switched off,
/// so that no decision is recorded for a page nobody can see).
pub(crate) fn bind(
    config: &mut Option<ExplorerConfig>,
) -> Result<Option<std::net::TcpListener>, ServerError> {
    let Some(wanted) = config.as_ref() else {
        return Ok(None);
    };
    let addr = wanted.listen.get();
    match std::net::TcpListener::bind(addr) {
        Ok(listener) => Ok(Some(listener)),
        Err(source) if wanted.optional => {
            // Not `addr`: scripts read the daemon's own address from its first `addr=` field.
            tracing::warn!(
                explorer = %addr,
                error = %source,
                "the decision explorer is off: cannot listen on its default address \
                 (--ui-listen ADDR chooses another, --ui-listen off says so)"
            );
            *config = None;
            Ok(None)
        }
        Err(source) => Err(ServerError::Bind { addr, source }),
    }
}

/// The explorer's state: the daemon's, plus what only the explorer keeps.
pub(crate) struct Explorer {
    app: Arc<App>,
    explain: explain::Explain,
}

/// Starts serving the explorer on `listener` in the background, stopped with the daemon by its
/// shared `control`.
pub(crate) fn serve(
    listener: std::net::TcpListener,
    app: Arc<App>,
    evidence_ttl: Duration,
    limits: &RequestLimits,
    control: axum_server::Control,
) -> Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>), ServerError> {
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        source,
    })?;
    let bind_error = |source| ServerError::Bind { addr, source };
    let limit = app.deadline + limits.header_read_timeout;
    let explorer = Arc::new(Explorer {
        explain: explain::Explain::new(evidence_ttl),
        app,
    });
    let service = router(explorer, limit).into_make_service();
    let handle = axum_server::Handle::<SocketAddr>::with_control(control);
    let mut server = axum_server::from_tcp(listener)
        .map_err(bind_error)?
        .handle(handle);
    server
        .http_builder()
        .http1()
        .header_read_timeout(Some(limits.header_read_timeout));
    let server = server.first_request_timeout(limits.header_read_timeout);
    tracing::info!(explorer = %addr, "signet decision explorer on http://{addr}/ (loopback only)");
    let task = tokio::spawn(
        server
            .acceptor(LimitConnections::new(
                axum_server::accept::DefaultAcceptor::new(),
                MAX_CONNECTIONS,
            ))
            .serve(service),
    );
    Ok((addr, task))
}

fn router(explorer: Arc<Explorer>, limit: Duration) -> Router {
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_REQUESTS_IN_FLIGHT));
    Router::new()
        .route("/", get(decisions))
        .route("/policy", get(policy))
        .route("/explain", get(explain))
        .route("/style.css", get(style))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let in_flight = Arc::clone(&in_flight);
                async move {
                    let mut response = if !loopback_host(&request) {
                        error_page(
                            StatusCode::MISDIRECTED_REQUEST,
                            "the decision explorer answers only requests for localhost, \
                             127.0.0.1 or [::1] (reach it with kubectl port-forward)"
                                .into(),
                        )
                    } else {
                        let answered = async {
                            let _slot = in_flight.acquire_owned().await.ok();
                            next.run(request).await
                        };
                        match tokio::time::timeout(limit, answered).await {
                            Ok(response) => response,
                            Err(_) => error_page(
                                StatusCode::REQUEST_TIMEOUT,
                                format!("the page was not ready within {}s", limit.as_secs_f32()),
                            ),
                        }
                    };
                    let headers = response.headers_mut();
                    for (name, value) in SECURITY_HEADERS {
                        headers.insert(name, HeaderValue::from_static(value));
                    }
                    response
                }
            },
        ))
        .with_state(explorer)
}

/// Whether the request names a loopback host (`localhost`, `127.0.0.1`, `[::1]`, with or
/// without a port). A web page the operator visits can point its own DNS name at 127.0.0.1 and
/// have the browser fetch from the port-forward (DNS rebinding); its requests then carry its
/// name, and are refused.
fn loopback_host(request: &axum::extract::Request) -> bool {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.as_str().to_string()));
    host.is_some_and(|host| is_loopback_host(&host))
}

fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((inside, after)) if after.is_empty() || is_port(after) => inside,
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if is_port(&format!(":{port}")) => name,
            Some(_) => return false,
            None => host,
        }
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn is_port(s: &str) -> bool {
    s.strip_prefix(':')
        .is_some_and(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

fn html(status: StatusCode, page: Result<String, askama::Error>) -> Response {
    match page {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot render an explorer page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "cannot render the page\n",
            )
                .into_response()
        }
    }
}

fn error_page(status: StatusCode, message: String) -> Response {
    html(
        status,
        pages::ErrorPage {
            status: status.as_u16(),
            message,
        }
        .render(),
    )
}

async fn not_found() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "no such page: the explorer has / (recent decisions), /policy and /explain".into(),
    )
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("style.css"),
    )
        .into_response()
}

/// The query of `/`.
#[derive(Debug, Deserialize)]
struct DecisionsQuery {
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
}

/// Longest namespace filter accepted (a Kubernetes namespace has at most 63 characters).
const MAX_NAMESPACE: usize = 63;

async fn decisions(
    State(explorer): State<Arc<Explorer>>,
    query: Result<Query<DecisionsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let outcome = match query.outcome.as_deref().filter(|o| !o.is_empty()) {
        None => None,
        Some(wanted) => match Outcome::ALL.iter().find(|o| o.as_str() == wanted) {
            Some(outcome) => Some(*outcome),
            None => {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "unknown outcome {wanted:?}; expected one of {}",
                        Outcome::ALL.map(Outcome::as_str).join(", ")
                    ),
                );
            }
        },
    };
    let namespace = query.namespace.unwrap_or_default();
    if namespace.chars().count() > MAX_NAMESPACE {
        return error_page(
            StatusCode::BAD_REQUEST,
            format!("namespace filter longer than {MAX_NAMESPACE} characters"),
        );
    }
    let recent = &explorer.app.recent;
    let all = recent.newest_first();
    let rows: Vec<pages::DecisionRow> = all
        .iter()
        .filter(|r| outcome.is_none_or(|o| r.outcome == o))
        .filter(|r| namespace.is_empty() || r.namespace.as_deref() == Some(namespace.as_str()))
        .map(|r| pages::DecisionRow::of(r))
        .collect();
    html(
        StatusCode::OK,
        pages::DecisionsPage {
            rows,
            kept: all.len(),
            capacity: recent.capacity(),
            outcome: outcome.map_or("", Outcome::as_str),
            outcomes: Outcome::ALL.map(Outcome::as_str),
            namespace,
            generation: explorer.app.policy().generation,
        }
        .render(),
    )
}

async fn policy(State(explorer): State<Arc<Explorer>>) -> Response {
    let loaded = explorer.app.policy();
    html(
        StatusCode::OK,
        pages::PolicyPage::of(
            &loaded.policy,
            loaded.generation,
            explorer.app.cluster.as_deref(),
        )
        .render(),
    )
}

async fn explain(
    State(explorer): State<Arc<Explorer>>,
    query: Result<Query<explain::ExplainQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let (status, page) = explorer.explain.page(&explorer.app, query).await;
    html(status, page.render())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    #[test]
    fn only_loopback_addresses_are_accepted() {
        for ok in ["127.0.0.1:8081", "127.0.0.2:1", "[::1]:8081"] {
            assert!(LoopbackAddr::new(ok.parse().unwrap()).is_ok(), "{ok}");
        }
        for refused in [
            "0.0.0.0:8081",
            "10.0.0.1:8081",
            "[::]:8081",
            "192.168.1.1:80",
        ] {
            let e = LoopbackAddr::new(refused.parse().unwrap()).unwrap_err();
            assert!(e.to_string().contains("kubectl port-forward"), "{e}");
        }
    }

    /// DNS rebinding: a page served as evil.example, with evil.example then resolving to
    /// 127.0.0.1, sends `Host: evil.example:8081`.
    #[test]
    fn only_loopback_host_names_are_served() {
        for ok in [
            "localhost",
            "localhost:8081",
            "LOCALHOST:8081",
            "127.0.0.1",
            "127.0.0.1:8081",
            "127.9.9.9:1",
            "[::1]",
            "[::1]:8081",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:8081",
            "localhost.evil.example",
            "10.0.0.1:8081",
            "[::2]:8081",
            "[::1]x",
            "localhost:",
            "localhost:80a",
            "127.0.0.1:8081:1",
            "",
        ] {
            assert!(!is_loopback_host(refused), "{refused}");
        }
    }
}
