//! Loading a policy file: YAML with a position for every node, checked in one pass.
//!
//! The loader accepts signet's own form and Binary Authorization's export (`gcloud container
//! binauthz policy export`, and attestors in the shape of the Attestor resource), mixed freely.
//! Every field either form does not know is an error, at every level, so that a typo never
//! silently weakens a policy. It reports every error it can find at once, each with the file,
//! line and column, in file order.
//!
//! ```
//! use std::path::Path;
//!
//! let yaml = "\
//! defaultAdmissionRule:
//!   evaluationMode: ALWAYS_DENY
//!   enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
//! ";
//! let policy = signet_policy::parse(yaml, Path::new("policy.yaml"), Path::new(".")).unwrap();
//! assert!(policy.attestors.is_empty());
//!
//! let yaml = "\
//! defaultAdmissionRule:
//!   evaluationMode: ALWAYS_DENY
//!   enforcementMode: ENFORCED
//! registryAlowlist: []
//! ";
//! let errors = signet_policy::parse(yaml, Path::new("policy.yaml"), Path::new(".")).unwrap_err();
//! let shown = errors.to_string();
//! let lines: Vec<&str> = shown.lines().collect();
//! assert_eq!(
//!     lines[0],
//!     "policy.yaml:3:20: invalid `enforcementMode` `ENFORCED`; expected one of \
//!      `ENFORCED_BLOCK_AND_AUDIT_LOG`, `DRYRUN_AUDIT_LOG_ONLY`"
//! );
//! assert!(lines[1].starts_with(
//!     "policy.yaml:4:1: unknown field `registryAlowlist` (did you mean `registryAllowlist`?); \
//!      expected one of `registryAllowlist`, "
//! ));
//! ```

// Internals are `pub(super)` at most: one public path per item, `signet_policy::load::…`.
#![warn(unreachable_pub)]

// The loader is one `Checker` pass (defined here, with `parse`); each module adds the methods
// for the part of the file it reads.
mod attestors; // attestors: names, keys, predicate types, conditions, signed identities
mod complexity;
mod keyless; // `keyless` and `certificates` on attestors: trusted roots, CAs, identities // bounds on a condition before CEL compiles it
mod rules; // the top level, name patterns and admission rules
mod summary; // `Policy::summary`, as `signet policy check` prints it
#[cfg(test)]
mod tests;
mod yaml; // nodes and positions, generic shapes (fields, lists, strings), typo hints

use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use crate::model::{Policy, Span};

/// The largest policy file read. Policies are hand-written; anything bigger is a mistake.
const POLICY_MAX_BYTES: u64 = 4 << 20;
/// The largest key file read (a PEM public key is well under 2 KiB, RSA-4096 included).
const KEY_FILE_MAX_BYTES: u64 = 64 << 10;

/// One problem in a policy file, at a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The policy file.
    pub file: PathBuf,
    /// Where in it; line 0 when the problem is the file as a whole (it cannot be read).
    pub span: Span,
    /// What is wrong, in words a user can act on.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.span.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.span, self.message)
        }
    }
}

impl std::error::Error for PolicyError {}

/// Every problem found in a policy file, in file order. Never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_char('\n')?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyErrors {}

/// Reads and checks the policy at `path`. Key `file:` paths are relative to its directory.
pub fn load(path: &Path) -> Result<Policy, PolicyErrors> {
    let text = read_bounded(path, POLICY_MAX_BYTES).map_err(|e| {
        PolicyErrors(vec![PolicyError {
            file: path.to_path_buf(),
            span: Span::default(),
            message: format!("cannot read the policy file: {e}"),
        }])
    })?;
    let base_dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    parse(&text, path, base_dir)
}

/// Checks the policy text `text`, which messages attribute to `path`; key `file:` paths are
/// relative to `base_dir` (and read from there).
pub fn parse(text: &str, path: &Path, base_dir: &Path) -> Result<Policy, PolicyErrors> {
    let mut checker = Checker {
        file: path.to_path_buf(),
        base_dir,
        text,
        errors: Vec::new(),
    };
    let policy = checker.policy();
    let mut errors = checker.errors;
    match policy {
        Some(policy) if errors.is_empty() => Ok(policy),
        _ => {
            if errors.is_empty() {
                // Every path that yields no policy records why; this keeps it fail-closed even
                // if one did not.
                errors.push(PolicyError {
                    file: path.to_path_buf(),
                    span: Span { line: 1, column: 1 },
                    message: "the policy is invalid".to_owned(),
                });
            }
            errors.sort_by_key(|e| (e.span.line, e.span.column));
            errors.dedup();
            Err(PolicyErrors(errors))
        }
    }
}

/// Reads a UTF-8 file of at most `max` bytes.
fn read_bounded(path: &Path, max: u64) -> io::Result<String> {
    let mut bytes = Vec::new();
    File::open(path)?.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::other(format!("file is larger than {max} bytes")));
    }
    String::from_utf8(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "file is not UTF-8 text"))
}

/// One pass over the YAML tree, collecting errors.
struct Checker<'t> {
    file: PathBuf,
    base_dir: &'t Path,
    text: &'t str,
    errors: Vec<PolicyError>,
}

impl<'t> Checker<'t> {
    fn error(&mut self, span: Span, message: impl Into<String>) {
        self.errors.push(PolicyError {
            file: self.file.clone(),
            span,
            message: message.into(),
        });
    }
}
