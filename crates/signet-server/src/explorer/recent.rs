//! The recent decisions the explorer lists: a bounded ring buffer that the admission webhook and
//! the verify API append to.
//!
//! Appending must not slow admission down (issue 17: the explorer may cost the warm benchmark
//! at most 5%): a record is built only when the explorer is on, its strings are cut to bounded
//! lengths, and the lock is held for a push and a pop. Records are shared (`Arc`), so a page
//! that lists them holds the lock only to clone the pointers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::audit::ImageRecord;
use crate::check::truncate;
use crate::metrics::Outcome;

/// Most images kept of one record; the rest are counted.
const MAX_IMAGES: usize = 16;
/// Most reasons kept per image and per record.
const MAX_REASONS: usize = 4;
/// Most characters kept of an image reference, a reason or a name. Images and reasons are
/// attacker-controlled (anyone who may create a pod writes them): with these bounds one record
/// holds at most some 40 KB, whatever a review carries.
const MAX_TEXT: usize = 400;

/// Who asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// The validating admission webhook, for an object.
    Admission {
        /// The admission request uid.
        uid: String,
        /// `Pod`, `Deployment`, …
        kind: String,
        /// The object's name.
        name: String,
    },
    /// `POST /v1/verify`.
    VerifyApi,
}

/// One decision as the explorer lists it.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    /// When it was made.
    pub(crate) time: SystemTime,
    /// Who asked.
    pub(crate) source: Source,
    /// The namespace, if any.
    pub(crate) namespace: Option<String>,
    /// The service account, if any.
    pub(crate) service_account: Option<String>,
    /// The rule that applied to the context.
    pub(crate) rule: String,
    /// How the request ended.
    pub(crate) outcome: Outcome,
    /// Each distinct image (at most [`MAX_IMAGES`]), with its result and reasons.
    pub(crate) images: Vec<ImageRecord>,
    /// Images left out past [`MAX_IMAGES`].
    pub(crate) images_left_out: usize,
    /// Reasons about the request as a whole (too many images, break-glass).
    pub(crate) reasons: Vec<String>,
}

impl Record {
    /// A record of the current time with every string cut to its bound.
    pub(crate) fn new(
        source: Source,
        namespace: Option<&str>,
        service_account: Option<&str>,
        rule: &str,
        outcome: Outcome,
        images: impl ExactSizeIterator<Item = ImageRecord>,
        reasons: &[String],
    ) -> Record {
        let count = images.len();
        let images = images
            .take(MAX_IMAGES)
            .map(|i| ImageRecord {
                image: truncate(&i.image, MAX_TEXT),
                digest: i.digest,
                rule: truncate(&i.rule, MAX_TEXT),
                result: i.result,
                reasons: bounded(&i.reasons),
                evidence: bounded(&i.evidence),
                valid_until: i.valid_until,
            })
            .collect();
        let source = match source {
            Source::Admission { uid, kind, name } => Source::Admission {
                uid: truncate(&uid, MAX_TEXT),
                kind: truncate(&kind, MAX_TEXT),
                name: truncate(&name, MAX_TEXT),
            },
            Source::VerifyApi => Source::VerifyApi,
        };
        Record {
            time: SystemTime::now(),
            source,
            namespace: namespace.map(|n| truncate(n, MAX_TEXT)),
            service_account: service_account.map(|s| truncate(s, MAX_TEXT)),
            rule: truncate(rule, MAX_TEXT),
            outcome,
            images,
            images_left_out: count.saturating_sub(MAX_IMAGES),
            reasons: bounded(reasons),
        }
    }
}

fn bounded(reasons: &[String]) -> Vec<String> {
    let mut kept: Vec<String> = reasons
        .iter()
        .take(MAX_REASONS)
        .map(|r| truncate(r, MAX_TEXT))
        .collect();
    if reasons.len() > MAX_REASONS {
        kept.push(format!("… and {} more", reasons.len() - MAX_REASONS));
    }
    kept
}

/// The ring buffer: the last `capacity` records, oldest dropped first. Capacity 0 keeps
/// nothing and builds nothing (the explorer is off).
pub(crate) struct Recent {
    capacity: usize,
    entries: Mutex<VecDeque<Arc<Record>>>,
}

impl Recent {
    pub(crate) fn new(capacity: usize) -> Recent {
        Recent {
            capacity,
            // Grown as records come, not reserved up front: a daemon that admits little keeps
            // little.
            entries: Mutex::new(VecDeque::new()),
        }
    }

    /// How many records are kept at most.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Appends the record `make` builds; `make` is not called when nothing is kept.
    pub(crate) fn record(&self, make: impl FnOnce() -> Record) {
        if self.capacity == 0 {
            return;
        }
        let record = Arc::new(make());
        let dropped = {
            let mut entries = match self.entries.lock() {
                Ok(entries) => entries,
                // A panic while holding the lock left a whole deque (push and pop do not
                // unwind half-way); keep using it.
                Err(poisoned) => poisoned.into_inner(),
            };
            let dropped = if entries.len() >= self.capacity {
                entries.pop_front()
            } else {
                None
            };
            entries.push_back(record);
            dropped
        };
        // The oldest record is freed after the lock is released.
        drop(dropped);
    }

    /// The records kept, newest first.
    pub(crate) fn newest_first(&self) -> Vec<Arc<Record>> {
        let entries = match self.entries.lock() {
            Ok(entries) => entries,
            Err(poisoned) => poisoned.into_inner(),
        };
        entries.iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    fn image(image: &str, reasons: usize) -> ImageRecord {
        ImageRecord {
            image: image.into(),
            digest: None,
            rule: "default".into(),
            result: "denied",
            reasons: (0..reasons).map(|i| format!("reason {i}")).collect(),
            evidence: Vec::new(),
            valid_until: None,
        }
    }

    fn record(name: &str) -> Record {
        Record::new(
            Source::Admission {
                uid: "u".into(),
                kind: "Pod".into(),
                name: name.into(),
            },
            Some("ns"),
            Some("default"),
            "default",
            Outcome::Denied,
            vec![image("r.example/app", 1)].into_iter(),
            &[],
        )
    }

    fn names(recent: &Recent) -> Vec<String> {
        recent
            .newest_first()
            .iter()
            .map(|r| match &r.source {
                Source::Admission { name, .. } => name.clone(),
                Source::VerifyApi => "verify".into(),
            })
            .collect()
    }

    #[test]
    fn ring_keeps_the_newest_records_up_to_its_capacity() {
        let recent = Recent::new(3);
        for n in 0..5 {
            recent.record(|| record(&format!("pod-{n}")));
        }
        assert_eq!(names(&recent), ["pod-4", "pod-3", "pod-2"]);
    }

    #[test]
    fn ring_of_capacity_zero_builds_nothing() {
        let recent = Recent::new(0);
        recent.record(|| unreachable!("the record must not be built"));
        assert!(recent.newest_first().is_empty());
    }

    #[test]
    fn records_are_bounded_whatever_a_review_carries() {
        let huge = "x".repeat(1 << 20);
        let images: Vec<ImageRecord> = (0..40).map(|_| image(&huge, 10)).collect();
        let r = Record::new(
            Source::Admission {
                uid: huge.clone(),
                kind: "Pod".into(),
                name: huge.clone(),
            },
            Some(&huge),
            None,
            &huge,
            Outcome::Denied,
            images.into_iter(),
            std::slice::from_ref(&huge),
        );
        assert_eq!(r.images.len(), MAX_IMAGES);
        assert_eq!(r.images_left_out, 40 - MAX_IMAGES);
        assert_eq!(r.images[0].image.chars().count(), MAX_TEXT);
        assert_eq!(r.images[0].reasons.len(), MAX_REASONS + 1);
        assert_eq!(r.images[0].reasons[MAX_REASONS], "… and 6 more");
        let Source::Admission { name, .. } = &r.source else {
            panic!("an admission record")
        };
        assert_eq!(name.chars().count(), MAX_TEXT);
        let bytes: usize = r
            .images
            .iter()
            .map(|i| i.image.len() + i.reasons.iter().map(String::len).sum::<usize>())
            .sum();
        assert!(bytes < 64 << 10, "{bytes}");
    }
}
