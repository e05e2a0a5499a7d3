//! What the client remembers about each registry across requests: whether it has the OCI 1.1
//! referrers API (so that discovery skips what cannot answer), until when it asked us to hold
//! off (a 429 or 503 with `Retry-After` pauses every request to it, not just the one that got
//! the answer), and how many requests are in flight to it (bounded, so that many concurrent
//! verifications do not hammer one registry).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Client;

/// How long what a registry said about its referrers API is believed. A registry that gains
/// the API is used through it at the latest this long after; one that loses it is found out
/// by the first 404.
pub(super) const REFERRERS_API_MEMORY: Duration = Duration::from_secs(10 * 60);

/// Whether a registry serves the OCI 1.1 referrers API, as far as the client knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferrersSupport {
    /// Not asked yet (or too long ago): ask the API and the fallback tag at once.
    Unknown,
    /// It answered the referrers API: the fallback tag need not be read.
    Supported,
    /// It answered 404 for a repository that exists: only the fallback tag can answer.
    Unsupported,
}

#[derive(Default)]
pub(super) struct Registries {
    states: Mutex<HashMap<String, State>>,
}

struct State {
    referrers: Option<(ReferrersSupport, Instant)>,
    paused_until: Option<Instant>,
    in_flight: Arc<Semaphore>,
}

impl Registries {
    fn with<T>(&self, registry: &str, limit: usize, f: impl FnOnce(&mut State) -> T) -> T {
        // Poisoning only means another thread panicked mid-update; every field stays valid.
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        let state = states.entry(registry.to_string()).or_insert_with(|| State {
            referrers: None,
            paused_until: None,
            in_flight: Arc::new(Semaphore::new(limit.max(1))),
        });
        f(state)
    }
}

impl Client {
    fn registries<T>(&self, registry: &str, f: impl FnOnce(&mut State) -> T) -> T {
        self.inner
            .registries
            .with(registry, self.limits().max_in_flight_per_registry, f)
    }

    /// What is known about `registry`'s referrers API.
    pub fn referrers_support(&self, registry: &str) -> ReferrersSupport {
        self.registries(registry, |s| match s.referrers {
            Some((known, at)) if at.elapsed() < REFERRERS_API_MEMORY => known,
            _ => ReferrersSupport::Unknown,
        })
    }

    /// Records what `registry` just showed about its referrers API.
    pub(crate) fn remember_referrers_support(&self, registry: &str, known: ReferrersSupport) {
        self.registries(registry, |s| s.referrers = Some((known, Instant::now())));
    }

    /// Holds every request to `registry` back for `wait` (it asked us to, with 429 or 503).
    pub(super) fn pause(&self, registry: &str, wait: Duration) {
        let until = Instant::now() + wait;
        self.registries(registry, |s| {
            s.paused_until = Some(s.paused_until.map_or(until, |u| u.max(until)));
        });
    }

    /// Waits out a pause of `registry`, then takes one of its in-flight slots (held until the
    /// returned value is dropped). The semaphore is never closed, so there is always a slot to
    /// wait for; `None` would only mean going on without one.
    pub(super) async fn slot(&self, registry: &str) -> Option<OwnedSemaphorePermit> {
        let (paused_until, in_flight) =
            self.registries(registry, |s| (s.paused_until, Arc::clone(&s.in_flight)));
        if let Some(until) = paused_until {
            tokio::time::sleep_until(until.into()).await;
        }
        in_flight.acquire_owned().await.ok()
    }
}
