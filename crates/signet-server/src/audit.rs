//! The audit log: one JSON object per line, on stdout or appended to a file, for every denial,
//! break-glass admission, dry-run would-be denial, fail-open admission and policy reload, and
//! for every running image that continuous validation finds violating or cannot decide.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Serialize;

use crate::ServerError;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum EventKind {
    /// The request was denied.
    Deny,
    /// Admitted by break-glass.
    BreakGlass,
    /// Admitted under a dry-run rule that would have denied.
    DryRun,
    /// Admitted without verification because of [`crate::OnVerificationError::DangerFailOpen`].
    FailOpen,
    /// A new policy took effect.
    PolicyReload,
    /// A new policy was refused; the previous one stays in force.
    PolicyReloadFailed,
    /// Continuous validation found a running image violating the policy, or could not decide
    /// about it (`outcome` says which).
    ContinuousValidation,
}

/// One image's part in an audited request.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ImageRecord {
    /// The image as written in the pod spec.
    pub(crate) image: String,
    /// The digest verified, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) digest: Option<String>,
    /// The rule that applied, if any.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) rule: String,
    /// `allowed`, `denied`, `would-deny`, `unverified`.
    pub(crate) result: &'static str,
    /// Why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) reasons: Vec<String>,
    /// The evidence an admission rests on, with when it was signed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) evidence: Vec<String>,
    /// When that admission stops holding by time (`maxAge`, `validUntil`).
    #[serde(rename = "validUntil", skip_serializing_if = "Option::is_none")]
    pub(crate) valid_until: Option<String>,
}

/// One audit event.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Event {
    /// RFC 3339, UTC.
    pub(crate) time: String,
    /// What happened.
    pub(crate) event: EventKind,
    /// The admission request uid, to correlate with the API server's audit log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) uid: Option<String>,
    /// The namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) namespace: Option<String>,
    /// `Kind/name` of the object admitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) object: Option<String>,
    /// The service account the pod runs as.
    #[serde(rename = "serviceAccount", skip_serializing_if = "Option::is_none")]
    pub(crate) service_account: Option<String>,
    /// Every image of the object, as written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) images: Vec<String>,
    /// The digests verified.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) digests: Vec<String>,
    /// The rule that applied to the context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rule: Option<String>,
    /// Why, one line per image or per policy error.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) reasons: Vec<String>,
    /// Per image detail.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) results: Vec<ImageRecord>,
    /// For policy reloads: the policy file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) policy: Option<String>,
    /// For policy reloads: the generation in force afterwards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) generation: Option<u64>,
    /// For continuous validation: the container the image runs in (`init:NAME` and
    /// `ephemeral:NAME` for init and ephemeral containers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) container: Option<String>,
    /// For continuous validation: `violating` or `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) outcome: Option<&'static str>,
    /// For continuous validation: the run's number since start-up, the same on every line of
    /// one run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) run: Option<u64>,
}

impl Event {
    /// An event of `kind` at the current time, with nothing else filled in.
    pub(crate) fn now(kind: EventKind) -> Event {
        Event {
            time: rfc3339(SystemTime::now()),
            event: kind,
            uid: None,
            namespace: None,
            object: None,
            service_account: None,
            images: Vec::new(),
            digests: Vec::new(),
            rule: None,
            reasons: Vec::new(),
            results: Vec::new(),
            policy: None,
            generation: None,
            container: None,
            outcome: None,
            run: None,
        }
    }
}

/// Where audit events go. Lines are written whole, under a lock, and flushed at once: a
/// crash loses no event that was reported as written.
pub(crate) struct Audit {
    sink: Mutex<Box<dyn Write + Send>>,
}

impl Audit {
    /// Appends to `path`, or writes to stdout when `None`.
    pub(crate) fn open(path: Option<&Path>) -> Result<Audit, ServerError> {
        let sink: Box<dyn Write + Send> = match path {
            None => Box::new(std::io::stdout()),
            Some(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| ServerError::AuditLog {
                        path: path.to_path_buf(),
                        source,
                    })?,
            ),
        };
        Ok(Audit {
            sink: Mutex::new(sink),
        })
    }

    /// Writes `event` as one line. A failure is logged, never fatal to the request.
    pub(crate) fn write(&self, event: &Event) {
        let mut line = match serde_json::to_vec(event) {
            Ok(line) => line,
            Err(e) => {
                tracing::error!(error = %e, "cannot serialise an audit event");
                return;
            }
        };
        line.push(b'\n');
        let mut sink = match self.sink.lock() {
            Ok(sink) => sink,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Err(e) = sink.write_all(&line).and_then(|()| sink.flush()) {
            tracing::error!(error = %e, "cannot write to the audit log");
        }
    }
}

/// `time` as RFC 3339 in UTC with millisecond precision: `2026-03-01T12:34:56.789Z`.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day in a century leap year) 12:00:00.5
        let t = UNIX_EPOCH + Duration::from_millis(951_825_600_500);
        assert_eq!(rfc3339(t), "2000-02-29T12:00:00.500Z");
        // 2024-12-31T23:59:59Z
        let t = UNIX_EPOCH + Duration::from_secs(1_735_689_599);
        assert_eq!(rfc3339(t), "2024-12-31T23:59:59.000Z");
        // 2100-03-01 (2100 is not a leap year)
        let t = UNIX_EPOCH + Duration::from_secs(4_107_542_400);
        assert_eq!(rfc3339(t), "2100-03-01T00:00:00.000Z");
    }

    #[test]
    fn events_are_one_json_line_without_empty_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::open(Some(&path)).unwrap();
        let mut event = Event::now(EventKind::Deny);
        event.uid = Some("u-1".into());
        event.images = vec!["registry.example/app:1".into()];
        audit.write(&event);
        audit.write(&Event::now(EventKind::PolicyReload));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first["event"], "deny");
        assert_eq!(first["uid"], "u-1");
        assert!(first.get("digests").is_none());
        let second: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(second["event"], "policy-reload");
    }
}
