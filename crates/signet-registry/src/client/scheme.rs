//! HTTP or HTTPS: the one place that decides which scheme a registry is spoken to in, and
//! switches when a loopback or `--insecure-registry` host turns out to speak TLS.
//!
//! As Docker does, loopback registries (and those named with `--insecure-registry`) are tried
//! in plain HTTP first; any other registry is HTTPS only. A TLS registry on loopback is
//! detected from how it answers plain HTTP, and remembered per registry.

use std::fmt;
use std::net::IpAddr;

use reqwest::StatusCode;

use super::{Client, Once, read_error_message};
use crate::error::RegistryError;

/// The scheme a registry is reached with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// Plain HTTP: loopback and `--insecure-registry` hosts only.
    Http,
    /// HTTPS.
    Https,
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        })
    }
}

/// What [`Client::settle_scheme`] made of an answer.
pub(super) enum Settled {
    /// The registry speaks HTTPS after all: send the request again.
    Switched,
    /// The answer stands, in the scheme it came in.
    Kept(reqwest::Response),
}

impl Client {
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

    /// The scheme to use for `registry`: the one found to work, else plain HTTP where it is
    /// allowed, else HTTPS.
    pub(super) async fn scheme(&self, registry: &str) -> Scheme {
        if let Some(s) = self.inner.schemes.lock().await.get(registry) {
            return *s;
        }
        if self.plain_http_allowed(registry) {
            Scheme::Http
        } else {
            Scheme::Https
        }
    }

    /// After a transport failure (`reason`) in `scheme`: whether `registry` was switched to
    /// HTTPS, so the request should be sent again. A loopback or insecure registry may speak
    /// HTTPS: it is tried once before giving up on plain HTTP.
    pub(super) async fn switch_scheme_after_failure(
        &self,
        registry: &str,
        scheme: Scheme,
        reason: &str,
    ) -> bool {
        if scheme == Scheme::Http
            && self.plain_http_allowed(registry)
            && !self.inner.schemes.lock().await.contains_key(registry)
            && looks_like_protocol_mismatch(reason)
        {
            self.inner
                .schemes
                .lock()
                .await
                .insert(registry.to_string(), Scheme::Https);
            return true;
        }
        false
    }

    /// Looks at an answer received in `scheme`: a 400 to plain HTTP from a TLS server switches
    /// `registry` to HTTPS; any other answer settles the scheme for this registry.
    pub(super) async fn settle_scheme(
        &self,
        registry: &str,
        scheme: Scheme,
        once: Once,
        response: reqwest::Response,
        what: &str,
    ) -> Result<Settled, RegistryError> {
        if response.status() == StatusCode::BAD_REQUEST
            && scheme == Scheme::Http
            && once == Once::Repeatable
            && self.plain_http_allowed(registry)
        {
            // Go's TLS servers answer a plain-HTTP request with 400 "Client sent an HTTP
            // request to an HTTPS server": switch to HTTPS for this registry.
            if self.inner.schemes.lock().await.get(registry) == Some(&Scheme::Https) {
                // A concurrent request found out while this one was on its way.
                return Ok(Settled::Switched);
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
                    .insert(registry.to_string(), Scheme::Https);
                return Ok(Settled::Switched);
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
        Ok(Settled::Kept(response))
    }

    /// The body of `GET http://REGISTRY/v2/`, bounded, for diagnosing a 400 on HEAD.
    async fn ping_message(&self, registry: &str) -> String {
        let request = self.inner.http.get(format!("http://{registry}/v2/"));
        match self.exchange(request).await {
            Ok(response) => read_error_message(response).await,
            Err(_) => String::new(),
        }
    }
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
