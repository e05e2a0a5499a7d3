//! A recording HTTP proxy for the benchmarks: it forwards every request to one registry,
//! optionally delayed (half on the way there, half on the way back), and records each
//! request's start, end and repository (and, when asked, its method, path and status).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// A request's start, end and summary line.
pub type Traced = (Instant, Instant, String);

#[derive(Clone)]
pub struct Proxy {
    upstream: String,
    latency: Duration,
    http: reqwest::Client,
    /// Each request's start, end and repository.
    pub log: Arc<Mutex<Vec<Traced>>>,
    /// When asked: each request's start, end, method, path and status.
    pub trace: Option<Arc<Mutex<Vec<Traced>>>>,
}

async fn forward(
    State(proxy): State<Proxy>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let start = Instant::now();
    let line = format!("{method} {uri}");
    // Half the delay on the way there, half on the way back.
    tokio::time::sleep(proxy.latency / 2).await;
    let mut request = proxy
        .http
        .request(method, format!("{}{}", proxy.upstream, uri));
    for (name, value) in &headers {
        if name != "host" {
            request = request.header(name, value);
        }
    }
    let response = request.body(body).send().await.unwrap();
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    let mut out_headers = HeaderMap::new();
    for (name, value) in response.headers() {
        if name != "transfer-encoding" {
            out_headers.insert(name.clone(), value.clone());
        }
    }
    let bytes = response.bytes().await.unwrap();
    tokio::time::sleep(proxy.latency / 2).await;
    let end = Instant::now();
    let repository = uri
        .path()
        .strip_prefix("/v2/")
        .and_then(|p| {
            ["/manifests/", "/blobs/", "/tags/", "/referrers/"]
                .iter()
                .find_map(|m| p.find(m).map(|i| p[..i].to_string()))
        })
        .unwrap_or_default();
    proxy.log.lock().unwrap().push((start, end, repository));
    if let Some(trace) = &proxy.trace {
        trace
            .lock()
            .unwrap()
            .push((start, end, format!("{line} -> {}", status.as_u16())));
    }
    (status, out_headers, bytes).into_response()
}

impl Proxy {
    /// A proxy to `upstream` (`http://host:port`) adding `latency` to every request; with
    /// `trace`, it also keeps each request's summary line.
    pub fn new(upstream: String, latency: Duration, trace: bool) -> Proxy {
        Proxy {
            upstream,
            latency,
            http: reqwest::Client::new(),
            log: Arc::new(Mutex::new(Vec::new())),
            trace: trace.then(|| Arc::new(Mutex::new(Vec::new()))),
        }
    }

    /// Forgets what was recorded.
    pub fn clear(&self) {
        self.log.lock().unwrap().clear();
        if let Some(trace) = &self.trace {
            trace.lock().unwrap().clear();
        }
    }

    /// The start and end of every request recorded.
    pub fn spans(&self) -> Vec<(Instant, Instant)> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|(s, e, _)| (*s, *e))
            .collect()
    }
}

/// Starts a latency proxy in front of `upstream`; returns its host:port.
pub async fn start_proxy(proxy: Proxy) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    host
}

/// Number of maximal periods in which at least one request was in flight.
pub fn busy_periods(mut spans: Vec<(Instant, Instant)>) -> usize {
    spans.sort();
    let mut periods = 0;
    let mut end: Option<Instant> = None;
    for (s, e) in spans {
        match end {
            Some(current) if s < current => end = Some(current.max(e)),
            _ => {
                periods += 1;
                end = Some(e);
            }
        }
    }
    periods
}
