//! Registry answers counted by status class, for the daemon's `/metrics`: a registry that
//! starts answering 429 or 5xx, or stops answering, shows up there before users notice.

use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::StatusCode;

/// The labels, in the order of [`ResponseCounts::iter`]: status classes, then requests that
/// got no answer.
const LABELS: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "error"];

/// Where requests with no HTTP answer are counted.
const ERROR: usize = 5;

/// How many responses a [`Client`](super::Client) received by status class (`1xx` … `5xx`),
/// and how many requests got none (`error`).
///
/// ```
/// use signet_registry::{Client, ClientOptions};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // The program picks the TLS crypto provider; the library never installs one.
/// let _ = rustls::crypto::ring::default_provider().install_default();
/// let client = Client::new(ClientOptions::default())?;
/// for (label, count) in client.responses_by_class().iter() {
///     println!("signet_registry_responses_total{{class=\"{label}\"}} {count}");
/// }
/// assert_eq!(client.responses_by_class().get("5xx"), Some(0));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponseCounts {
    counts: [u64; LABELS.len()],
}

impl ResponseCounts {
    /// `(label, count)` for every class, `1xx` to `5xx`, then `error`; zeros included, so
    /// that a metric exists before its first increment.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        LABELS.iter().copied().zip(self.counts.iter().copied())
    }

    /// The count for one label (`"2xx"`, `"error"`, …); `None` for a label that is not one.
    pub fn get(&self, label: &str) -> Option<u64> {
        self.iter().find(|(l, _)| *l == label).map(|(_, c)| c)
    }

    /// All responses and failures together.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// The live counters behind [`ResponseCounts`].
#[derive(Debug, Default)]
pub(super) struct Counters {
    counts: [AtomicU64; LABELS.len()],
}

impl Counters {
    /// Counts one exchange: its answer's status, or `None` when it got no answer.
    pub(super) fn record(&self, status: Option<StatusCode>) {
        if let Some(counter) = self.counts.get(slot(status)) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn snapshot(&self) -> ResponseCounts {
        ResponseCounts {
            counts: std::array::from_fn(|i| {
                self.counts.get(i).map_or(0, |c| c.load(Ordering::Relaxed))
            }),
        }
    }
}

/// The index of `status`'s class in [`LABELS`]. HTTP allows status codes up to 999, which
/// have no class; they count as `error`, as does no answer at all.
fn slot(status: Option<StatusCode>) -> usize {
    match status.map(|s| s.as_u16() / 100) {
        Some(class @ 1..=5) => usize::from(class - 1),
        _ => ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_counted_by_class() {
        let counters = Counters::default();
        for status in [100, 200, 204, 307, 401, 404, 429, 500, 503, 999] {
            counters.record(Some(StatusCode::from_u16(status).unwrap()));
        }
        counters.record(None);
        let counts = counters.snapshot();
        assert_eq!(
            counts.iter().collect::<Vec<_>>(),
            [
                ("1xx", 1),
                ("2xx", 2),
                ("3xx", 1),
                ("4xx", 3),
                ("5xx", 2),
                ("error", 2)
            ]
        );
        assert_eq!(counts.get("4xx"), Some(3));
        assert_eq!(counts.get("6xx"), None);
        assert_eq!(counts.total(), 11);
        assert_eq!(Counters::default().snapshot(), ResponseCounts::default());
    }
}
