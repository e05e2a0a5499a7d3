//! When to try a request again: 429 and 5xx answers with exponential backoff or the
//! registry's `Retry-After`, a bounded number of times, and only while the wait leaves time
//! before the operation deadline; a connection that could not be made (refused, no such
//! host) once more, quickly, and then it fails: a registry that is down is reported at once,
//! not after the whole deadline.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};

use super::{Limits, Once};

/// The attempts of one request.
pub(super) struct Retry {
    attempt: u32,
    max_attempts: u32,
    deadline: Duration,
    started: Instant,
    once: Once,
    connect_failures: u32,
}

impl Retry {
    pub(super) fn new(limits: &Limits, once: Once) -> Self {
        Retry {
            attempt: 0,
            max_attempts: limits.max_attempts,
            deadline: limits.deadline,
            started: Instant::now(),
            once,
            connect_failures: 0,
        }
    }

    /// Counts an attempt; call once per request sent.
    pub(super) fn begin_attempt(&mut self) {
        self.attempt += 1;
    }

    /// Takes the last attempt back: answering an auth challenge is not a retry.
    pub(super) fn forget_attempt(&mut self) {
        self.attempt = self.attempt.saturating_sub(1);
    }

    /// How long to wait before trying again, or `None` to give up: a streamed body cannot
    /// be sent twice, the attempts are used up, or the wait would end past the deadline (then
    /// the caller reports this failure now rather than a bare timeout later).
    pub(super) fn wait(&self, retry_after: Option<Duration>) -> Option<Duration> {
        if self.once == Once::Only || self.attempt >= self.max_attempts {
            return None;
        }
        let wait = backoff_delay(self.attempt, retry_after);
        (self.started.elapsed() + wait < self.deadline).then_some(wait)
    }
}

impl Retry {
    /// How long to wait before trying again after a connection could not be made, or `None`
    /// to give up: one quick retry (a registry restarting, a connection reset by a proxy),
    /// then the failure stands.
    pub(super) fn wait_after_connect_failure(&mut self) -> Option<Duration> {
        self.connect_failures += 1;
        if self.once == Once::Only || self.connect_failures > MAX_CONNECT_RETRIES {
            return None;
        }
        let wait = CONNECT_RETRY_DELAY;
        (self.started.elapsed() + wait < self.deadline).then_some(wait)
    }
}

/// Retries of a connection that could not be made.
const MAX_CONNECT_RETRIES: u32 = 1;
/// The wait before that retry.
const CONNECT_RETRY_DELAY: Duration = Duration::from_millis(100);

/// Whether an answer with `status` may be worth asking again.
pub(super) fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// The `Retry-After` header as a duration, if it holds one.
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("soon"), None);
    }
}
