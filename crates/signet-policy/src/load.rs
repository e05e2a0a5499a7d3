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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use signet_core::keys::{KeyAlgorithm, PublicKey};

use crate::glob::Glob;
use crate::model::{
    Attestor, AttestorName, Condition, EnforcementMode, EvaluationMode, GlobalEvaluationMode,
    Policy, Rule, SignedIdentity, Span,
};

/// The largest policy file read. Policies are hand-written; anything bigger is a mistake.
const POLICY_MAX_BYTES: u64 = 4 << 20;
/// The largest key file read (a PEM public key is well under 2 KiB, RSA-4096 included).
const KEY_FILE_MAX_BYTES: u64 = 64 << 10;

const TOP_FIELDS: &[&str] = &[
    "registryAllowlist",
    "admissionWhitelistPatterns",
    "admissionAllowlistPatterns",
    "defaultAdmissionRule",
    "clusterAdmissionRules",
    "kubernetesNamespaceAdmissionRules",
    "kubernetesServiceAccountAdmissionRules",
    "attestors",
    "globalPolicyEvaluationMode",
    "name",
    "etag",
    "updateTime",
    "description",
];
const RULE_FIELDS: &[&str] = &["evaluationMode", "enforcementMode", "requireAttestationsBy"];
const PATTERN_FIELDS: &[&str] = &["namePattern"];
const ATTESTOR_FIELDS: &[&str] = &[
    "name",
    "description",
    "publicKeys",
    "userOwnedGrafeasNote",
    "predicateType",
    "conditions",
    "signedIdentity",
    "updateTime",
    "etag",
];
const KEY_FIELDS: &[&str] = &["pem", "file"];
const NOTE_FIELDS: &[&str] = &[
    "noteReference",
    "publicKeys",
    "delegationServiceAccountEmail",
];
const NOTE_KEY_FIELDS: &[&str] = &["id", "comment", "pkixPublicKey", "asciiArmoredPgpPublicKey"];
const PKIX_FIELDS: &[&str] = &["publicKeyPem", "signatureAlgorithm"];
const IDENTITY_FIELDS: &[&str] = &["type", "prefix", "signedPrefix"];

const EVALUATION_MODES: &[&str] = &["ALWAYS_ALLOW", "ALWAYS_DENY", "REQUIRE_ATTESTATION"];
const ENFORCEMENT_MODES: &[&str] = &["ENFORCED_BLOCK_AND_AUDIT_LOG", "DRYRUN_AUDIT_LOG_ONLY"];
const GLOBAL_MODES: &[&str] = &[
    "ENABLE",
    "DISABLE",
    "GLOBAL_POLICY_EVALUATION_MODE_UNSPECIFIED",
];
const IDENTITY_TYPES: &[&str] = &["matchDigest", "matchRepository", "remapIdentity"];

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

type Node<'a> = MarkedYaml<'a>;

/// Where `node` starts (saphyr's lines are 1-based, its columns 0-based).
fn start(node: &Node<'_>) -> Span {
    Span {
        line: node.span.start.line().max(1),
        column: node.span.start.col() + 1,
    }
}

/// A `key: value` pair of a mapping.
#[derive(Clone, Copy)]
struct Entry<'a> {
    key: &'a Node<'a>,
    value: &'a Node<'a>,
}

impl Entry<'_> {
    fn key_span(&self) -> Span {
        start(self.key)
    }

    /// Where the value is; the key when the value is empty (`key:` and nothing after it).
    fn value_span(&self) -> Span {
        if is_null(self.value) && self.value.span.is_empty() {
            self.key_span()
        } else {
            start(self.value)
        }
    }
}

/// A mapping whose keys have been checked against the known field names.
struct Fields<'a> {
    /// Where "missing field" errors point.
    at: Span,
    entries: Vec<(&'a str, Entry<'a>)>,
    /// Whether some key was not a known field (then a "missing" field may just be misspelt).
    had_unknown: bool,
}

impl<'a> Fields<'a> {
    fn get(&self, name: &str) -> Option<Entry<'a>> {
        self.entries
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, entry)| *entry)
    }
}

fn is_null(node: &Node<'_>) -> bool {
    matches!(node.data, YamlData::Value(Scalar::Null))
}

fn as_str<'a>(node: &'a Node<'a>) -> Option<&'a str> {
    match &node.data {
        YamlData::Value(Scalar::String(s)) => Some(s),
        _ => None,
    }
}

/// What a node is, for "expected X, found Y".
fn describe(node: &Node<'_>) -> String {
    match &node.data {
        YamlData::Value(Scalar::Null) => "nothing".to_owned(),
        YamlData::Value(Scalar::Boolean(b)) => format!("the boolean `{b}`"),
        YamlData::Value(Scalar::Integer(i)) => format!("the number `{i}`"),
        YamlData::Value(Scalar::FloatingPoint(x)) => format!("the number `{x}`"),
        YamlData::Value(Scalar::String(s)) => {
            let shown: String = s.chars().take(40).collect();
            if shown.len() < s.len() {
                format!("the string {shown:?}…")
            } else {
                format!("the string {shown:?}")
            }
        }
        YamlData::Sequence(_) => "a list".to_owned(),
        YamlData::Mapping(_) => "a mapping".to_owned(),
        YamlData::Tagged(tag, _) => format!("a value tagged `{tag}` (tags are not supported)"),
        YamlData::Representation(..) | YamlData::Alias(_) | YamlData::BadValue => {
            "an invalid value".to_owned()
        }
    }
}

/// `` `a`, `b`, `c` ``.
fn quoted_list<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    items
        .into_iter()
        .map(|s| format!("`{}`", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The known name closest to `input`, if close enough to be a likely typo.
fn suggest<'k>(input: &str, known: impl IntoIterator<Item = &'k str>) -> Option<&'k str> {
    let input_lower = input.to_ascii_lowercase();
    known
        .into_iter()
        .map(|k| (edit_distance(&input_lower, &k.to_ascii_lowercase()), k))
        .filter(|(d, k)| *d <= (k.len() / 4).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            let delete = previous[j + 1] + 1;
            let insert = current[j] + 1;
            current.push(substitute.min(delete).min(insert));
        }
        previous = current;
    }
    previous[b.len()]
}

/// `NAME` or Binary Authorization's `projects/PROJECT/attestors/NAME`, as an attestor name.
fn attestor_name(text: &str) -> Result<AttestorName, String> {
    let name = if text.contains('/') {
        match text.split('/').collect::<Vec<_>>().as_slice() {
            ["projects", project, "attestors", name] if !project.is_empty() => *name,
            _ => {
                return Err(format!(
                    "invalid attestor name `{text}`: write `NAME` or \
                     `projects/PROJECT/attestors/NAME`"
                ));
            }
        }
    } else {
        text
    };
    let valid = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(AttestorName(name.to_owned()))
    } else {
        Err(format!(
            "invalid attestor name `{text}`: a name is 1 to 100 letters, digits, `-`, `_` or `.`"
        ))
    }
}

/// A Kubernetes namespace name (an RFC 1123 label).
fn dns_label_ok(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| alnum(c) || c == '-')
        && s.starts_with(alnum)
        && s.ends_with(alnum)
}

/// A Kubernetes service account name (an RFC 1123 subdomain).
fn dns_subdomain_ok(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(dns_label_ok)
}

/// Binary Authorization's `signatureAlgorithm` values and the key kind each one needs; `None`
/// for algorithms signet cannot verify.
fn signature_algorithm(name: &str) -> Option<Option<KeyAlgorithm>> {
    Some(match name {
        "ECDSA_P256_SHA256" | "EC_SIGN_P256_SHA256" => Some(KeyAlgorithm::EcdsaP256),
        "ECDSA_P384_SHA384" | "EC_SIGN_P384_SHA384" => Some(KeyAlgorithm::EcdsaP384),
        "RSA_PSS_2048_SHA256"
        | "RSA_PSS_3072_SHA256"
        | "RSA_PSS_4096_SHA256"
        | "RSA_SIGN_PSS_2048_SHA256"
        | "RSA_SIGN_PSS_3072_SHA256"
        | "RSA_SIGN_PSS_4096_SHA256"
        | "RSA_SIGN_PKCS1_2048_SHA256"
        | "RSA_SIGN_PKCS1_3072_SHA256"
        | "RSA_SIGN_PKCS1_4096_SHA256" => Some(KeyAlgorithm::Rsa),
        "ECDSA_P521_SHA512"
        | "EC_SIGN_P521_SHA512"
        | "RSA_PSS_4096_SHA512"
        | "RSA_SIGN_PSS_4096_SHA512"
        | "RSA_SIGN_PKCS1_4096_SHA512" => None,
        _ => return None,
    })
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

    fn policy(&mut self) -> Option<Policy> {
        let text = self.text;
        let docs = match Node::load_from_str(text) {
            Ok(docs) => docs,
            Err(e) => {
                let mark = e.marker();
                let span = Span {
                    line: mark.line().max(1),
                    column: mark.col() + 1,
                };
                let hint = unclosed_bracket(text, mark.index())
                    .map(|(open, line)| {
                        let close = if open == '[' { ']' } else { '}' };
                        format!(" (is the `{open}` on line {line} missing its `{close}`?)")
                    })
                    .unwrap_or_default();
                self.error(span, format!("invalid YAML: {}{hint}", e.info()));
                return None;
            }
        };
        if let Some(extra) = docs.get(1) {
            self.error(
                start(extra),
                "a policy file holds a single YAML document; remove the `---` and what follows",
            );
        }
        let first = Span { line: 1, column: 1 };
        let root = match docs.first() {
            Some(root) if !is_null(root) && !matches!(root.data, YamlData::BadValue) => root,
            _ => {
                self.error(
                    first,
                    "the policy is empty: it needs at least `defaultAdmissionRule` \
                     (for example `evaluationMode: ALWAYS_DENY`)",
                );
                return None;
            }
        };
        let top = self.fields(root, start(root), first, "the policy", TOP_FIELDS)?;

        // Attestors first: rules refer to them. Names of attestors that have errors still
        // count as defined, so that one mistake is not reported again at every reference.
        let mut declared = BTreeSet::new();
        let attestors = match top.get("attestors") {
            Some(entry) => self.attestors(entry, &mut declared),
            None => BTreeMap::new(),
        };

        let registry_allowlist = top
            .get("registryAllowlist")
            .map(|entry| self.globs(entry, "registryAllowlist"));
        let mut exempt = Vec::new();
        for field in ["admissionWhitelistPatterns", "admissionAllowlistPatterns"] {
            if let Some(entry) = top.get(field) {
                exempt.extend(self.name_patterns(entry, field));
            }
        }

        let default_rule = match top.get("defaultAdmissionRule") {
            Some(entry) => self.rule(entry, "`defaultAdmissionRule`", &declared),
            None => {
                self.error(
                    start(root),
                    "missing `defaultAdmissionRule`: every policy needs a default rule \
                     (for example `evaluationMode: ALWAYS_DENY`)",
                );
                None
            }
        };
        let [cluster_rules, namespace_rules, service_account_rules] = [
            ("clusterAdmissionRules", RuleKey::Cluster),
            ("kubernetesNamespaceAdmissionRules", RuleKey::Namespace),
            (
                "kubernetesServiceAccountAdmissionRules",
                RuleKey::ServiceAccount,
            ),
        ]
        .map(|(field, kind)| match top.get(field) {
            Some(entry) => self.rule_map(entry, field, kind, &declared),
            None => BTreeMap::new(),
        });

        let global_evaluation_mode = match top.get("globalPolicyEvaluationMode") {
            Some(entry) => {
                match self.enumeration(entry, "globalPolicyEvaluationMode", GLOBAL_MODES, "") {
                    Some("ENABLE") => GlobalEvaluationMode::Enable,
                    Some("DISABLE") => GlobalEvaluationMode::Disable,
                    _ => GlobalEvaluationMode::Unspecified,
                }
            }
            None => GlobalEvaluationMode::Unspecified,
        };
        let name = top
            .get("name")
            .and_then(|entry| self.string(entry.value, entry.value_span(), "`name`"))
            .map(str::to_owned);
        for field in ["etag", "updateTime", "description"] {
            if let Some(entry) = top.get(field) {
                self.string(entry.value, entry.value_span(), &format!("`{field}`"));
            }
        }

        Some(Policy {
            path: self.file.clone(),
            registry_allowlist,
            exempt,
            default_rule: default_rule?,
            cluster_rules,
            namespace_rules,
            service_account_rules,
            attestors,
            global_evaluation_mode,
            name,
        })
    }

    // ---- generic shapes ----------------------------------------------------------------------

    /// `node` as a mapping whose keys are all in `known`; unknown keys are reported.
    fn fields<'a>(
        &mut self,
        node: &'a Node<'a>,
        at: Span,
        missing_at: Span,
        what: &str,
        known: &[&str],
    ) -> Option<Fields<'a>> {
        let YamlData::Mapping(map) = &node.data else {
            self.error(
                at,
                format!(
                    "{what} must be a mapping of fields, found {}",
                    describe(node)
                ),
            );
            return None;
        };
        let mut entries = Vec::new();
        let mut had_unknown = false;
        for (key, value) in map.iter() {
            let Some(name) = as_str(key) else {
                self.error(
                    start(key),
                    format!("field names in {what} are strings, found {}", describe(key)),
                );
                continue;
            };
            if !known.contains(&name) {
                had_unknown = true;
                let hint = suggest(name, known.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                let place = if what == "the policy" {
                    String::new()
                } else {
                    format!(" in {what}")
                };
                self.error(
                    start(key),
                    format!(
                        "unknown field `{name}`{place}{hint}; expected one of {}",
                        quoted_list(known)
                    ),
                );
                continue;
            }
            entries.push((name, Entry { key, value }));
        }
        Some(Fields {
            at: missing_at,
            entries,
            had_unknown,
        })
    }

    /// The value of `entry` as a mapping of fields; missing fields are reported at the key.
    fn entry_fields<'a>(
        &mut self,
        entry: Entry<'a>,
        what: &str,
        known: &[&str],
    ) -> Option<Fields<'a>> {
        self.fields(
            entry.value,
            entry.value_span(),
            entry.key_span(),
            what,
            known,
        )
    }

    /// `node` as a list.
    fn list<'a>(&mut self, node: &'a Node<'a>, at: Span, what: &str) -> Option<&'a [Node<'a>]> {
        match &node.data {
            YamlData::Sequence(items) => Some(items),
            _ => {
                let hint = if is_null(node) {
                    " (write `[]` for none)"
                } else {
                    ""
                };
                self.error(
                    at,
                    format!("{what} must be a list, found {}{hint}", describe(node)),
                );
                None
            }
        }
    }

    /// `node` as a string.
    fn string<'a>(&mut self, node: &'a Node<'a>, at: Span, what: &str) -> Option<&'a str> {
        if let Some(s) = as_str(node) {
            return Some(s);
        }
        let hint = match node.data {
            YamlData::Value(Scalar::Boolean(_) | Scalar::Integer(_) | Scalar::FloatingPoint(_)) => {
                " (quote it to make it a string)"
            }
            _ => "",
        };
        self.error(
            at,
            format!("{what} must be a string, found {}{hint}", describe(node)),
        );
        None
    }

    /// A string that must be one of `allowed`.
    fn enumeration<'a>(
        &mut self,
        entry: Entry<'a>,
        field: &str,
        allowed: &[&'static str],
        hint: &str,
    ) -> Option<&'static str> {
        let value = self.string(entry.value, entry.value_span(), &format!("`{field}`"))?;
        if let Some(found) = allowed.iter().find(|a| **a == value) {
            return Some(found);
        }
        let suggestion = suggest(value, allowed.iter().copied())
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        self.error(
            entry.value_span(),
            format!(
                "invalid `{field}` `{value}`{suggestion}{hint}; expected one of {}",
                quoted_list(allowed)
            ),
        );
        None
    }

    // ---- patterns ----------------------------------------------------------------------------

    /// `registryAllowlist`: a list of pattern strings.
    fn globs(&mut self, entry: Entry<'_>, field: &str) -> Vec<Glob> {
        let what = format!("`{field}`");
        let Some(items) = self.list(entry.value, entry.value_span(), &what) else {
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| self.glob(item, &what))
            .collect()
    }

    /// `admissionWhitelistPatterns`: a list of `{namePattern: pattern}`.
    fn name_patterns(&mut self, entry: Entry<'_>, field: &str) -> Vec<Glob> {
        let what = format!("`{field}`");
        let Some(items) = self.list(entry.value, entry.value_span(), &what) else {
            return Vec::new();
        };
        let mut globs = Vec::new();
        for item in items {
            let item_what = format!("an entry of {what}");
            let Some(fields) =
                self.fields(item, start(item), start(item), &item_what, PATTERN_FIELDS)
            else {
                continue;
            };
            match fields.get("namePattern") {
                Some(pattern) => globs.extend(self.glob(pattern.value, &what)),
                None => self.error(
                    fields.at,
                    format!("missing `namePattern` in an entry of {what}"),
                ),
            }
        }
        globs
    }

    fn glob(&mut self, node: &Node<'_>, what: &str) -> Option<Glob> {
        let pattern = self.string(node, start(node), &format!("a pattern in {what}"))?;
        match Glob::parse(pattern) {
            Ok(glob) => Some(glob),
            Err(e) => {
                self.error(start(node), format!("{what}: {e}"));
                None
            }
        }
    }

    // ---- rules -------------------------------------------------------------------------------

    fn rule_map(
        &mut self,
        entry: Entry<'_>,
        field: &str,
        kind: RuleKey,
        declared: &BTreeSet<AttestorName>,
    ) -> BTreeMap<String, Rule> {
        let mut rules = BTreeMap::new();
        let YamlData::Mapping(map) = &entry.value.data else {
            let hint = if is_null(entry.value) {
                " (write `{}` for none)"
            } else {
                ""
            };
            self.error(
                entry.value_span(),
                format!(
                    "`{field}` must be a mapping from {} to rule, found {}{hint}",
                    kind.key_description(),
                    describe(entry.value)
                ),
            );
            return rules;
        };
        for (key, value) in map.iter() {
            let Some(name) = self.string(key, start(key), &format!("a key of `{field}`")) else {
                continue;
            };
            if let Err(message) = kind.check(name) {
                self.error(start(key), message);
            }
            let what = format!("{} `{name}`", kind.rule_description());
            if let Some(rule) = self.rule(Entry { key, value }, &what, declared) {
                rules.insert(name.to_owned(), rule);
            }
        }
        rules
    }

    fn rule(
        &mut self,
        entry: Entry<'_>,
        what: &str,
        declared: &BTreeSet<AttestorName>,
    ) -> Option<Rule> {
        let before = self.errors.len();
        let fields = self.entry_fields(entry, what, RULE_FIELDS)?;

        let evaluation_entry = fields.get("evaluationMode");
        let evaluation = match evaluation_entry {
            Some(e) => self
                .enumeration(
                    e,
                    "evaluationMode",
                    EVALUATION_MODES,
                    unspecified_hint(e, "EVALUATION_MODE_UNSPECIFIED"),
                )
                .map(|mode| match mode {
                    "ALWAYS_ALLOW" => EvaluationMode::AlwaysAllow,
                    "ALWAYS_DENY" => EvaluationMode::AlwaysDeny,
                    _ => EvaluationMode::RequireAttestation,
                }),
            None => {
                self.error(
                    fields.at,
                    format!(
                        "{what} is missing `evaluationMode` (one of {})",
                        quoted_list(EVALUATION_MODES)
                    ),
                );
                None
            }
        };
        let enforcement = match fields.get("enforcementMode") {
            Some(e) => self
                .enumeration(
                    e,
                    "enforcementMode",
                    ENFORCEMENT_MODES,
                    unspecified_hint(e, "ENFORCEMENT_MODE_UNSPECIFIED"),
                )
                .map(|mode| match mode {
                    "DRYRUN_AUDIT_LOG_ONLY" => EnforcementMode::DryRun,
                    _ => EnforcementMode::Enforced,
                }),
            None => {
                self.error(
                    fields.at,
                    format!(
                        "{what} is missing `enforcementMode` (one of {})",
                        quoted_list(ENFORCEMENT_MODES)
                    ),
                );
                None
            }
        };

        let mut require = Vec::new();
        let mut listed = 0;
        let require_entry = fields.get("requireAttestationsBy");
        if let Some(e) = require_entry {
            let items = self
                .list(e.value, e.value_span(), "`requireAttestationsBy`")
                .unwrap_or_default();
            listed = items.len();
            let mut seen = BTreeSet::new();
            for item in items {
                let Some(text) =
                    self.string(item, start(item), "an entry of `requireAttestationsBy`")
                else {
                    continue;
                };
                let name = match attestor_name(text) {
                    Ok(name) => name,
                    Err(message) => {
                        self.error(start(item), message);
                        continue;
                    }
                };
                if !declared.contains(&name) {
                    let message = undefined_attestor(&name, what, declared);
                    self.error(start(item), message);
                } else if !seen.insert(name.clone()) {
                    self.error(
                        start(item),
                        format!(
                            "attestor `{name}` is listed twice in `requireAttestationsBy` of {what}"
                        ),
                    );
                } else {
                    require.push(name);
                }
            }
        }

        match (evaluation, require_entry) {
            // With an unknown field, the list may be there under a misspelt name, which is
            // already reported.
            (Some(EvaluationMode::RequireAttestation), _) if listed == 0 && !fields.had_unknown => {
                let at = require_entry
                    .or(evaluation_entry)
                    .map_or(fields.at, |e| e.key_span());
                self.error(
                    at,
                    format!(
                        "{what} is REQUIRE_ATTESTATION but names no attestor: list at least one \
                         in `requireAttestationsBy`"
                    ),
                );
            }
            (Some(mode @ (EvaluationMode::AlwaysAllow | EvaluationMode::AlwaysDeny)), Some(e))
                if listed > 0 =>
            {
                self.error(
                    e.key_span(),
                    format!(
                        "`requireAttestationsBy` in {what} has no effect with `evaluationMode: {}`: \
                         remove it, or use REQUIRE_ATTESTATION",
                        mode.as_str()
                    ),
                );
            }
            _ => {}
        }

        if self.errors.len() != before {
            return None;
        }
        Some(Rule {
            evaluation: evaluation?,
            enforcement: enforcement?,
            require,
            span: entry.key_span(),
        })
    }

    // ---- attestors ---------------------------------------------------------------------------

    fn attestors(
        &mut self,
        entry: Entry<'_>,
        declared: &mut BTreeSet<AttestorName>,
    ) -> BTreeMap<AttestorName, Attestor> {
        let mut attestors = BTreeMap::new();
        let mut first_seen: BTreeMap<AttestorName, Span> = BTreeMap::new();
        let Some(items) = self.list(entry.value, entry.value_span(), "`attestors`") else {
            return attestors;
        };
        for (index, item) in items.iter().enumerate() {
            let before = self.errors.len();
            // Named in messages as soon as possible, even about its other fields.
            let peeked = match &item.data {
                YamlData::Mapping(map) => map
                    .iter()
                    .find(|(k, _)| as_str(k) == Some("name"))
                    .and_then(|(_, v)| as_str(v))
                    .and_then(|text| attestor_name(text).ok()),
                _ => None,
            };
            let fallback = match peeked {
                Some(name) => format!("attestor `{name}`"),
                None => format!("attestor #{}", index + 1),
            };
            let Some(fields) =
                self.fields(item, start(item), start(item), &fallback, ATTESTOR_FIELDS)
            else {
                continue;
            };
            let name = match fields.get("name") {
                Some(e) => self
                    .string(e.value, e.value_span(), &format!("`name` of {fallback}"))
                    .and_then(|text| match attestor_name(text) {
                        Ok(name) => Some((name, e.value_span())),
                        Err(message) => {
                            self.error(e.value_span(), message);
                            None
                        }
                    }),
                None => {
                    self.error(fields.at, format!("{fallback} is missing `name`"));
                    None
                }
            };
            let what = name
                .as_ref()
                .map_or(fallback, |(n, _)| format!("attestor `{n}`"));
            if let Some((name, at)) = &name {
                declared.insert(name.clone());
                if let Some(previous) = first_seen.get(name) {
                    self.error(
                        *at,
                        format!(
                            "duplicate attestor name `{name}`: already defined on line {}",
                            previous.line
                        ),
                    );
                } else {
                    first_seen.insert(name.clone(), *at);
                }
            }

            let keys = self.attestor_keys(&fields, &what);
            let predicate_type = fields
                .get("predicateType")
                .and_then(|e| self.predicate_type(e, &what));
            let conditions = fields
                .get("conditions")
                .map(|e| self.conditions(e, &what))
                .unwrap_or_default();
            let signed_identity = fields
                .get("signedIdentity")
                .and_then(|e| self.signed_identity(e, &what))
                .unwrap_or_default();
            for field in ["description", "updateTime", "etag"] {
                if let Some(e) = fields.get(field) {
                    self.string(e.value, e.value_span(), &format!("`{field}` of {what}"));
                }
            }

            if self.errors.len() != before {
                continue;
            }
            if let Some((name, _)) = name {
                attestors.insert(
                    name.clone(),
                    Attestor {
                        name,
                        keys,
                        predicate_type,
                        conditions,
                        signed_identity,
                        span: start(item),
                    },
                );
            }
        }
        attestors
    }

    /// The keys of an attestor, from `publicKeys` or `userOwnedGrafeasNote.publicKeys`.
    fn attestor_keys(&mut self, fields: &Fields<'_>, what: &str) -> Vec<PublicKey> {
        let before = self.errors.len();
        let mut keys: Vec<(PublicKey, Span)> = Vec::new();
        let mut listed = 0;
        let own = fields.get("publicKeys");
        let note = fields.get("userOwnedGrafeasNote");
        if let (Some(_), Some(note)) = (own, note) {
            self.error(
                note.key_span(),
                format!(
                    "{what} has keys both in `publicKeys` and in `userOwnedGrafeasNote`; keep one"
                ),
            );
        }
        let mut empty_at = None;

        if let Some(e) = own {
            let items = self
                .list(e.value, e.value_span(), &format!("`publicKeys` of {what}"))
                .unwrap_or_default();
            listed += items.len();
            empty_at = Some(e.key_span());
            for item in items {
                if let Some(key) = self.own_key(item, what) {
                    self.add_key(&mut keys, key, start(item), what);
                }
            }
        }

        if let Some(e) = note {
            empty_at = Some(e.key_span());
            let note_what = format!("`userOwnedGrafeasNote` of {what}");
            if let Some(note_fields) = self.entry_fields(e, &note_what, NOTE_FIELDS) {
                for field in ["noteReference", "delegationServiceAccountEmail"] {
                    if let Some(e) = note_fields.get(field) {
                        self.string(e.value, e.value_span(), &format!("`{field}` of {what}"));
                    }
                }
                if let Some(e) = note_fields.get("publicKeys") {
                    empty_at = Some(e.key_span());
                    let items = self
                        .list(e.value, e.value_span(), &format!("`publicKeys` of {what}"))
                        .unwrap_or_default();
                    listed += items.len();
                    for item in items {
                        if let Some(key) = self.note_key(item, what) {
                            self.add_key(&mut keys, key, start(item), what);
                        }
                    }
                }
            }
        }

        // Not when the keys are there but malformed, which is already reported.
        if listed == 0 && self.errors.len() == before {
            let (at, hint) = match (own, note) {
                (None, Some(_)) => (
                    empty_at.unwrap_or(fields.at),
                    "add one under `userOwnedGrafeasNote.publicKeys`",
                ),
                _ => (
                    empty_at.unwrap_or(fields.at),
                    "add one under `publicKeys` (`- file: key.pub` or `- pem: ...`)",
                ),
            };
            self.error(at, format!("{what} has no public keys; {hint}"));
        }
        keys.into_iter().map(|(key, _)| key).collect()
    }

    /// Adds `key` unless the attestor already has it.
    fn add_key(&mut self, keys: &mut Vec<(PublicKey, Span)>, key: PublicKey, at: Span, what: &str) {
        if let Some((_, first)) = keys.iter().find(|(k, _)| k.id() == key.id()) {
            let line = first.line;
            self.error(
                at,
                format!(
                    "{what}: key {} is listed twice (first on line {line})",
                    key.id().short()
                ),
            );
        } else {
            keys.push((key, at));
        }
    }

    /// signet's form: `{pem: "..."}` or `{file: path}`.
    fn own_key(&mut self, item: &Node<'_>, what: &str) -> Option<PublicKey> {
        let key_what = format!("a public key of {what}");
        let fields = self.fields(item, start(item), start(item), &key_what, KEY_FIELDS)?;
        match (fields.get("pem"), fields.get("file")) {
            (Some(_), Some(file)) => {
                self.error(
                    file.key_span(),
                    format!("{key_what} has both `pem` and `file`; give one"),
                );
                None
            }
            (Some(pem), None) => self.pem_key(pem, what),
            (None, Some(file)) => {
                let rel = self.string(file.value, file.value_span(), "`file`")?;
                self.key_file(rel, file.value_span(), what)
            }
            (None, None) => {
                self.error(
                    fields.at,
                    format!(
                        "{key_what} needs `pem` (the PEM text) or `file` (a path relative to the \
                         policy file)"
                    ),
                );
                None
            }
        }
    }

    /// Binary Authorization's form: `{id, pkixPublicKey: {publicKeyPem, signatureAlgorithm}}`.
    fn note_key(&mut self, item: &Node<'_>, what: &str) -> Option<PublicKey> {
        let key_what = format!("a public key of {what}");
        let fields = self.fields(item, start(item), start(item), &key_what, NOTE_KEY_FIELDS)?;
        for field in ["id", "comment"] {
            if let Some(e) = fields.get(field) {
                self.string(e.value, e.value_span(), &format!("`{field}` of {key_what}"));
            }
        }
        if let Some(pgp) = fields.get("asciiArmoredPgpPublicKey") {
            self.error(
                pgp.key_span(),
                format!(
                    "{what}: PGP keys are not supported; use a PKIX key \
                     (`pkixPublicKey: {{publicKeyPem: ...}}`)"
                ),
            );
            return None;
        }
        let Some(pkix) = fields.get("pkixPublicKey") else {
            self.error(fields.at, format!("{key_what} is missing `pkixPublicKey`"));
            return None;
        };
        let pkix_what = format!("`pkixPublicKey` of {what}");
        let pkix_fields = self.entry_fields(pkix, &pkix_what, PKIX_FIELDS)?;
        let Some(pem) = pkix_fields.get("publicKeyPem") else {
            self.error(
                pkix_fields.at,
                format!("{pkix_what} is missing `publicKeyPem`"),
            );
            return None;
        };
        let key = self.pem_key(pem, what)?;
        if let Some(e) = pkix_fields.get("signatureAlgorithm") {
            let name = self.string(e.value, e.value_span(), "`signatureAlgorithm`")?;
            if name != "SIGNATURE_ALGORITHM_UNSPECIFIED" {
                match signature_algorithm(name) {
                    None => self.error(
                        e.value_span(),
                        format!(
                            "{what}: unknown `signatureAlgorithm` `{name}`; expected a Binary \
                             Authorization algorithm such as `ECDSA_P256_SHA256`"
                        ),
                    ),
                    Some(None) => self.error(
                        e.value_span(),
                        format!("{what}: signet cannot verify `{name}` signatures"),
                    ),
                    Some(Some(algorithm)) if algorithm != key.algorithm() => self.error(
                        e.value_span(),
                        format!(
                            "{what}: `signatureAlgorithm` `{name}` does not fit the key, which is \
                             {}",
                            key.algorithm()
                        ),
                    ),
                    Some(Some(_)) => {}
                }
            }
        }
        Some(key)
    }

    fn pem_key(&mut self, entry: Entry<'_>, what: &str) -> Option<PublicKey> {
        let pem = self.string(entry.value, entry.value_span(), "a PEM public key")?;
        match PublicKey::from_pem(pem) {
            Ok(key) => Some(key),
            Err(e) => {
                self.error(entry.value_span(), format!("{what}: {e}"));
                None
            }
        }
    }

    fn key_file(&mut self, rel: &str, at: Span, what: &str) -> Option<PublicKey> {
        if rel.is_empty() {
            self.error(at, format!("{what}: the key file path is empty"));
            return None;
        }
        let path = self.base_dir.join(rel);
        let text = match read_bounded(&path, KEY_FILE_MAX_BYTES) {
            Ok(text) => text,
            Err(e) => {
                self.error(at, format!("{what}: cannot read key file `{rel}`: {e}"));
                return None;
            }
        };
        match PublicKey::from_pem(&text) {
            Ok(key) => Some(key),
            Err(e) => {
                self.error(at, format!("{what}: key file `{rel}`: {e}"));
                None
            }
        }
    }

    fn predicate_type(&mut self, entry: Entry<'_>, what: &str) -> Option<String> {
        let value = self.string(
            entry.value,
            entry.value_span(),
            &format!("`predicateType` of {what}"),
        )?;
        if value.contains("://") && !value.chars().any(char::is_whitespace) {
            return Some(value.to_owned());
        }
        let hint = signet_core::intoto::cosign_predicate_type(value)
            .map(|uri| format!("; for cosign's `{value}`, write `{uri}`"))
            .unwrap_or_default();
        self.error(
            entry.value_span(),
            format!(
                "{what}: `predicateType` must be a URI such as `https://slsa.dev/provenance/v1`, \
                 not `{value}`{hint}"
            ),
        );
        None
    }

    fn conditions(&mut self, entry: Entry<'_>, what: &str) -> Vec<Condition> {
        let Some(items) = self.list(
            entry.value,
            entry.value_span(),
            &format!("`conditions` of {what}"),
        ) else {
            return Vec::new();
        };
        let mut conditions = Vec::new();
        for item in items {
            let Some(source) = self.string(item, start(item), &format!("a condition of {what}"))
            else {
                continue;
            };
            match cel::Program::compile(source) {
                Ok(program) => conditions.push(Condition {
                    source: source.to_owned(),
                    program: Arc::new(program),
                    span: start(item),
                }),
                Err(e) => {
                    let (at, message) = match e.errors.first() {
                        Some(first) => {
                            let (at, place) = self.position_in_scalar(item, first.pos);
                            (at, format!("{}{place}", first.msg))
                        }
                        None => (start(item), e.to_string()),
                    };
                    self.error(at, format!("{what}: condition does not compile: {message}"));
                }
            }
        }
        conditions
    }

    /// The file position of CEL's (line, column) inside the string `node`, when the string is
    /// written on one line without escapes; otherwise the string's start and, for the message,
    /// where in the expression.
    fn position_in_scalar(
        &self,
        node: &Node<'_>,
        (line, column): (isize, isize),
    ) -> (Span, String) {
        let fallback = (
            start(node),
            format!(" (line {line}, column {column} of the condition)"),
        );
        let (Ok(1), Ok(column)) = (usize::try_from(line), usize::try_from(column)) else {
            return fallback;
        };
        if column == 0 || node.span.start.line() != node.span.end.line() {
            return fallback;
        }
        let raw: String = self
            .text
            .chars()
            .skip(node.span.start.index())
            .take(
                node.span
                    .end
                    .index()
                    .saturating_sub(node.span.start.index()),
            )
            .collect();
        let quote = match raw.chars().next() {
            Some('"') if !raw.contains('\\') => 1,
            Some('\'') if !raw.get(1..).is_some_and(|inner| inner.contains("''")) => 1,
            Some('"' | '\'') => return fallback,
            _ => 0,
        };
        let here = start(node);
        (
            Span {
                line: here.line,
                column: here.column + quote + column - 1,
            },
            String::new(),
        )
    }

    fn signed_identity(&mut self, entry: Entry<'_>, attestor: &str) -> Option<SignedIdentity> {
        let what = format!("`signedIdentity` of {attestor}");
        let fields = self.entry_fields(entry, &what, IDENTITY_FIELDS)?;
        let Some(kind) = fields.get("type") else {
            self.error(
                fields.at,
                format!(
                    "{what} is missing `type` (one of {})",
                    quoted_list(IDENTITY_TYPES)
                ),
            );
            return None;
        };
        let kind = self.enumeration(kind, "type", IDENTITY_TYPES, "")?;
        let prefix = fields.get("prefix");
        let signed_prefix = fields.get("signedPrefix");
        if kind != "remapIdentity" {
            for e in [prefix, signed_prefix].into_iter().flatten() {
                self.error(
                    e.key_span(),
                    format!(
                        "{what}: `prefix` and `signedPrefix` only apply to `type: remapIdentity`"
                    ),
                );
            }
            return Some(if kind == "matchRepository" {
                SignedIdentity::MatchRepository
            } else {
                SignedIdentity::MatchDigest
            });
        }
        let prefix_value = |this: &mut Self, e: Option<Entry<'_>>, field: &str| {
            let Some(e) = e else {
                this.error(
                    fields.at,
                    format!("{what} is `remapIdentity` but has no `{field}`"),
                );
                return None;
            };
            let value = this.string(e.value, e.value_span(), &format!("`{field}`"))?;
            if value.is_empty() || value.contains(['@', ' ']) {
                this.error(
                    e.value_span(),
                    format!(
                        "{what}: `{field}` must be a registry or repository name prefix such as \
                         `registry.corp/team`"
                    ),
                );
                return None;
            }
            Some(value.to_owned())
        };
        let prefix = prefix_value(self, prefix, "prefix");
        let signed_prefix = prefix_value(self, signed_prefix, "signedPrefix");
        Some(SignedIdentity::RemapIdentity {
            prefix: prefix?,
            signed_prefix: signed_prefix?,
        })
    }
}

/// The flow collection (`[` or `{`, and its line) still open at character `end` of `text`, if
/// any: a YAML scanner reports a missing `]` only where something else stops making sense.
fn unclosed_bracket(text: &str, end: usize) -> Option<(char, usize)> {
    let mut open: Vec<(char, usize)> = Vec::new();
    let mut line = 1;
    let mut quote = None;
    let mut comment = false;
    // The last character that is not a space on this line, if any.
    let mut last_significant = None;
    let mut previous = '\n';
    for c in text.chars().take(end) {
        if c == '\n' {
            line += 1;
            comment = false;
            last_significant = None;
            previous = c;
            continue;
        }
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if comment => {}
            None => match c {
                '#' if previous.is_whitespace() => comment = true,
                '"' | '\'' if previous.is_whitespace() || "[{,".contains(previous) => {
                    quote = Some(c);
                }
                '[' | '{' => {
                    // In block context, a bracket opens a flow collection only where a value
                    // starts; in flow context, anywhere.
                    let starts_value = matches!(last_significant, None | Some(':' | '-'))
                        && previous.is_whitespace();
                    if !open.is_empty() || starts_value {
                        open.push((c, line));
                    }
                }
                ']' | '}' if !open.is_empty() => {
                    open.pop();
                }
                _ => {}
            },
        }
        if !c.is_whitespace() {
            last_significant = Some(c);
        }
        previous = c;
    }
    open.first().copied()
}

/// The hint for Binary Authorization's `…_UNSPECIFIED` values, which fail open in no useful way.
fn unspecified_hint(entry: Entry<'_>, unspecified: &str) -> &'static str {
    if as_str(entry.value) == Some(unspecified) {
        ": a rule must say what it does"
    } else {
        ""
    }
}

fn undefined_attestor(
    name: &AttestorName,
    what: &str,
    declared: &BTreeSet<AttestorName>,
) -> String {
    let mut message = format!("{what} requires undefined attestor `{name}`");
    if let Some(close) = suggest(&name.0, declared.iter().map(|n| n.0.as_str())) {
        let _ = write!(message, " (did you mean `{close}`?)");
    }
    if declared.is_empty() {
        message.push_str("; the policy defines no `attestors`");
    } else {
        let _ = write!(
            message,
            "; defined attestors: {}",
            quoted_list(declared.iter().map(|n| n.0.as_str()))
        );
    }
    message
}

/// What the keys of a rule map are.
#[derive(Clone, Copy)]
enum RuleKey {
    Cluster,
    Namespace,
    ServiceAccount,
}

impl RuleKey {
    fn key_description(self) -> &'static str {
        match self {
            RuleKey::Cluster => "cluster name",
            RuleKey::Namespace => "namespace",
            RuleKey::ServiceAccount => "`namespace:serviceaccount`",
        }
    }

    fn rule_description(self) -> &'static str {
        match self {
            RuleKey::Cluster => "cluster rule",
            RuleKey::Namespace => "namespace rule",
            RuleKey::ServiceAccount => "service account rule",
        }
    }

    /// A key that can never match the admission context would make its rule silently dead.
    fn check(self, key: &str) -> Result<(), String> {
        match self {
            RuleKey::Cluster => {
                if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(format!(
                        "invalid cluster name {key:?}: it must be non-empty, without spaces"
                    ));
                }
            }
            RuleKey::Namespace => {
                if !dns_label_ok(key) {
                    return Err(format!(
                        "`{key}` is not a Kubernetes namespace name: lowercase letters, digits \
                         and `-`, at most 63 characters, starting and ending with a letter or digit"
                    ));
                }
            }
            RuleKey::ServiceAccount => {
                let Some((namespace, account)) = key.split_once(':') else {
                    return Err(format!(
                        "`{key}` is not a service account key: write `namespace:name` \
                         (for example `payments:deployer`)"
                    ));
                };
                if !dns_label_ok(namespace) {
                    return Err(format!(
                        "`{key}`: `{namespace}` is not a Kubernetes namespace name: lowercase \
                         letters, digits and `-`, starting and ending with a letter or digit"
                    ));
                }
                if !dns_subdomain_ok(account) {
                    return Err(format!(
                        "`{key}`: `{account}` is not a Kubernetes service account name: \
                         lowercase letters, digits, `-` and `.`"
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Policy {
    /// A short multi-line summary, as `signet policy check` prints it.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        if let Some(name) = &self.name {
            let _ = writeln!(out, "name: {name}");
        }
        let _ = writeln!(out, "default rule: {}", rule_summary(&self.default_rule));
        for (label, rules) in [
            ("cluster rules", &self.cluster_rules),
            ("namespace rules", &self.namespace_rules),
            ("service account rules", &self.service_account_rules),
        ] {
            let _ = write!(out, "{label}: {}", rules.len());
            for (key, rule) in rules {
                let _ = write!(out, "\n  {key}: {}", rule_summary(rule));
            }
            out.push('\n');
        }
        match &self.registry_allowlist {
            None => out.push_str("registry allowlist: none (images from any registry)\n"),
            Some(globs) if globs.is_empty() => {
                out.push_str("registry allowlist: empty (images from every registry are denied)\n");
            }
            Some(globs) => {
                let _ = writeln!(out, "registry allowlist: {}", join_globs(globs));
            }
        }
        if self.exempt.is_empty() {
            out.push_str("exempt patterns: none\n");
        } else {
            let _ = writeln!(out, "exempt patterns: {}", join_globs(&self.exempt));
        }
        let _ = write!(out, "attestors: {}", self.attestors.len());
        for attestor in self.attestors.values() {
            let ids: Vec<String> = attestor.keys.iter().map(|k| k.id().short()).collect();
            let plural = if ids.len() == 1 { "" } else { "s" };
            let _ = write!(
                out,
                "\n  {}: {} key{plural} ({}), ",
                attestor.name,
                ids.len(),
                ids.join(", ")
            );
            match &attestor.predicate_type {
                Some(t) => {
                    let _ = write!(out, "predicate type {t}");
                }
                None => out.push_str("any predicate type"),
            }
            if !attestor.conditions.is_empty() {
                let n = attestor.conditions.len();
                let _ = write!(out, ", {n} condition{}", if n == 1 { "" } else { "s" });
            }
            match &attestor.signed_identity {
                SignedIdentity::MatchDigest => {}
                SignedIdentity::MatchRepository => out.push_str(", identity matchRepository"),
                SignedIdentity::RemapIdentity {
                    prefix,
                    signed_prefix,
                } => {
                    let _ = write!(out, ", identity remapIdentity {prefix} -> {signed_prefix}");
                }
            }
        }
        out.push('\n');
        match self.global_evaluation_mode {
            GlobalEvaluationMode::Unspecified => {}
            GlobalEvaluationMode::Enable => out.push_str("globalPolicyEvaluationMode: ENABLE\n"),
            GlobalEvaluationMode::Disable => out.push_str("globalPolicyEvaluationMode: DISABLE\n"),
        }
        out
    }
}

fn rule_summary(rule: &Rule) -> String {
    let mut s = format!(
        "{} ({})",
        rule.evaluation.as_str(),
        rule.enforcement.as_str()
    );
    if !rule.require.is_empty() {
        let names: Vec<&str> = rule.require.iter().map(|n| n.0.as_str()).collect();
        let _ = write!(s, " by {}", names.join(", "));
    }
    s
}

fn join_globs(globs: &[Glob]) -> String {
    globs
        .iter()
        .map(Glob::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/keys")
    }

    fn check(yaml: &str) -> Result<Policy, PolicyErrors> {
        parse(yaml, Path::new("p.yaml"), &keys_dir())
    }

    fn errors(yaml: &str) -> Vec<String> {
        match check(yaml) {
            Ok(_) => panic!("policy loaded:\n{yaml}"),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    const DENY: &str = "defaultAdmissionRule: {evaluationMode: ALWAYS_DENY, enforcementMode: \
                        ENFORCED_BLOCK_AND_AUDIT_LOG}\n";

    #[test]
    fn minimal_policy() {
        let p = check(DENY).unwrap();
        assert_eq!(p.default_rule.evaluation, EvaluationMode::AlwaysDeny);
        assert_eq!(p.default_rule.span, Span { line: 1, column: 1 });
        assert!(p.registry_allowlist.is_none());
    }

    #[test]
    fn empty_and_comment_only_are_errors() {
        for yaml in ["", "# nothing\n", "---\n", "~\n"] {
            let e = errors(yaml);
            assert_eq!(e.len(), 1, "{e:?}");
            assert!(e[0].starts_with("p.yaml:1:1: the policy is empty"), "{e:?}");
        }
    }

    #[test]
    fn collects_all_errors_in_order() {
        let e = errors(
            "attestors:\n  - name: a\n    publicKeys: []\nfoo: 1\ndefaultAdmissionRule:\n  \
             evaluationMode: NOPE\n  requireAttestationsBy: [b]\n",
        );
        assert_eq!(
            e,
            [
                "p.yaml:3:5: attestor `a` has no public keys; add one under `publicKeys` \
                 (`- file: key.pub` or `- pem: ...`)",
                "p.yaml:4:1: unknown field `foo`; expected one of `registryAllowlist`, \
                 `admissionWhitelistPatterns`, `admissionAllowlistPatterns`, \
                 `defaultAdmissionRule`, `clusterAdmissionRules`, \
                 `kubernetesNamespaceAdmissionRules`, `kubernetesServiceAccountAdmissionRules`, \
                 `attestors`, `globalPolicyEvaluationMode`, `name`, `etag`, `updateTime`, \
                 `description`",
                "p.yaml:5:1: `defaultAdmissionRule` is missing `enforcementMode` (one of \
                 `ENFORCED_BLOCK_AND_AUDIT_LOG`, `DRYRUN_AUDIT_LOG_ONLY`)",
                "p.yaml:6:19: invalid `evaluationMode` `NOPE`; expected one of `ALWAYS_ALLOW`, \
                 `ALWAYS_DENY`, `REQUIRE_ATTESTATION`",
                "p.yaml:7:27: `defaultAdmissionRule` requires undefined attestor `b` (did you \
                 mean `a`?); defined attestors: `a`",
            ]
        );
    }

    #[test]
    fn rules_and_attestor_references() {
        let p = check(
            r#"
defaultAdmissionRule:
  evaluationMode: REQUIRE_ATTESTATION
  enforcementMode: DRYRUN_AUDIT_LOG_ONLY
  requireAttestationsBy: [projects/p/attestors/build, qa]
clusterAdmissionRules:
  us-central1-a.prod: {evaluationMode: ALWAYS_ALLOW, enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG, requireAttestationsBy: []}
kubernetesServiceAccountAdmissionRules:
  "payments:deployer": {evaluationMode: ALWAYS_DENY, enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG}
attestors:
  - name: projects/p/attestors/build
    publicKeys: [{file: p256.pub}, {file: other.pub}]
  - name: qa
    publicKeys: [{file: other.pub}]
    predicateType: https://cosign.sigstore.dev/attestation/vuln/v1
    conditions: ["statement.predicate.ok == true"]
    signedIdentity: {type: remapIdentity, prefix: registry.corp/team, signedPrefix: ghcr.io/team}
"#,
        )
        .unwrap();
        assert_eq!(p.default_rule.enforcement, EnforcementMode::DryRun);
        assert_eq!(
            p.default_rule.require,
            [AttestorName("build".into()), AttestorName("qa".into())]
        );
        assert_eq!(p.cluster_rules.len(), 1);
        assert!(p.service_account_rules.contains_key("payments:deployer"));
        let build = &p.attestors[&AttestorName("build".into())];
        assert_eq!(build.keys.len(), 2);
        assert_eq!(build.signed_identity, SignedIdentity::MatchDigest);
        let qa = &p.attestors[&AttestorName("qa".into())];
        assert_eq!(qa.conditions.len(), 1);
        assert_eq!(
            qa.span,
            Span {
                line: 13,
                column: 5
            }
        );
        assert_eq!(
            qa.signed_identity,
            SignedIdentity::RemapIdentity {
                prefix: "registry.corp/team".into(),
                signed_prefix: "ghcr.io/team".into()
            }
        );
        let summary = p.summary();
        assert!(
            summary
                .contains("default rule: REQUIRE_ATTESTATION (DRYRUN_AUDIT_LOG_ONLY) by build, qa"),
            "{summary}"
        );
        assert!(summary.contains("build: 2 keys (sha256:"), "{summary}");
        assert!(summary.contains("1 condition"), "{summary}");
    }

    #[test]
    fn rule_errors() {
        let e = errors(&format!(
            "{DENY}attestors: [{{name: a, publicKeys: [{{file: p256.pub}}]}}]\n\
             kubernetesNamespaceAdmissionRules:\n  \
             one: {{evaluationMode: REQUIRE_ATTESTATION, enforcementMode: DRYRUN_AUDIT_LOG_ONLY}}\n  \
             two: {{evaluationMode: ALWAYS_ALLOW, enforcementMode: DRYRUN_AUDIT_LOG_ONLY, requireAttestationsBy: [a]}}\n  \
             three: {{evaluationMode: REQUIRE_ATTESTATION, enforcementMode: DRYRUN_AUDIT_LOG_ONLY, requireAttestationsBy: [a, projects/x/attestors/a]}}\n  \
             Four: {{evaluationMode: EVALUATION_MODE_UNSPECIFIED, enforcementMode: DRYRUN_AUDIT_LOG_ONLY}}\n"
        ));
        let joined = e.join("\n");
        assert!(
            joined.contains(
                "p.yaml:4:9: namespace rule `one` is REQUIRE_ATTESTATION but names no attestor"
            ),
            "{joined}"
        );
        assert!(joined.contains("p.yaml:5:79: `requireAttestationsBy` in namespace rule `two` has no effect with `evaluationMode: ALWAYS_ALLOW`"), "{joined}");
        assert!(
            joined.contains("p.yaml:6:115: attestor `a` is listed twice"),
            "{joined}"
        );
        assert!(
            joined.contains("p.yaml:7:3: `Four` is not a Kubernetes namespace name"),
            "{joined}"
        );
        assert!(joined.contains("invalid `evaluationMode` `EVALUATION_MODE_UNSPECIFIED`: a rule must say what it does"), "{joined}");
    }

    #[test]
    fn service_account_keys() {
        assert!(RuleKey::ServiceAccount.check("ns:sa.name-1").is_ok());
        for bad in ["ns/sa", "ns:", ":sa", "NS:sa", "ns:Sa", "ns:sa:x"] {
            assert!(RuleKey::ServiceAccount.check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn attestor_names() {
        assert_eq!(attestor_name("projects/p/attestors/x").unwrap().0, "x");
        assert_eq!(attestor_name("x-1_y.z").unwrap().0, "x-1_y.z");
        for bad in [
            "",
            "projects//attestors/x",
            "p/x",
            "projects/p/attestors/",
            "a b",
        ] {
            assert!(attestor_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn strings_are_not_numbers() {
        let e = errors(&format!("{DENY}name: 12\n"));
        assert_eq!(
            e,
            [
                "p.yaml:2:7: `name` must be a string, found the number `12` (quote it to make it a string)"
            ]
        );
    }

    #[test]
    fn null_values_point_at_the_key() {
        let e = errors(&format!("{DENY}attestors:\nregistryAllowlist:\n"));
        assert_eq!(
            e,
            [
                "p.yaml:2:1: `attestors` must be a list, found nothing (write `[]` for none)",
                "p.yaml:3:1: `registryAllowlist` must be a list, found nothing (write `[]` for none)",
            ]
        );
    }

    #[test]
    fn condition_errors_point_into_the_expression() {
        let yaml = format!(
            "{DENY}attestors:\n  - name: a\n    publicKeys: [{{file: p256.pub}}]\n    conditions:\n      - \"a.b(\"\n      - a &&\n      - |\n        x ==\n"
        );
        let e = errors(&yaml);
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(
            e[0].starts_with("p.yaml:6:14: attestor `a`: condition does not compile: "),
            "{e:?}"
        );
        assert!(
            e[1].starts_with("p.yaml:7:13: attestor `a`: condition does not compile: "),
            "{e:?}"
        );
        assert!(
            e[2].starts_with("p.yaml:9:9: attestor `a`: condition does not compile: "),
            "{e:?}"
        );
        assert!(
            e[2].ends_with("(line 2, column 1 of the condition)"),
            "{e:?}"
        );
    }

    #[test]
    fn binauthz_attestor_keys() {
        let pem = std::fs::read_to_string(keys_dir().join("p256.pub")).unwrap();
        let indented = pem.replace('\n', "\n              ");
        let yaml = format!(
            "{DENY}attestors:\n  - name: projects/p/attestors/a\n    userOwnedGrafeasNote:\n      \
             noteReference: projects/p/notes/a\n      publicKeys:\n        - id: x\n          \
             pkixPublicKey:\n            signatureAlgorithm: ECDSA_P384_SHA384\n            \
             publicKeyPem: |\n              {indented}\n        - asciiArmoredPgpPublicKey: x\n"
        );
        let e = errors(&yaml);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].contains("9:33: attestor `a`: `signatureAlgorithm` `ECDSA_P384_SHA384` does not fit the key, which is ecdsa-p256-sha256"), "{e:?}");
        assert!(
            e[1].contains("attestor `a`: PGP keys are not supported"),
            "{e:?}"
        );
    }

    #[test]
    fn unreadable_policy_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.yaml");
        let e = load(&path).unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert!(
            e.to_string().ends_with(
                "missing.yaml: cannot read the policy file: No such file or directory (os error 2)"
            ),
            "{e}"
        );
    }

    #[test]
    fn load_resolves_key_files_next_to_the_policy() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("keys")).unwrap();
        std::fs::copy(keys_dir().join("p256.pub"), dir.path().join("keys/k.pub")).unwrap();
        let path = dir.path().join("policy.yaml");
        std::fs::write(
            &path,
            format!("{DENY}attestors: [{{name: a, publicKeys: [{{file: keys/k.pub}}]}}]\n"),
        )
        .unwrap();
        let p = load(&path).unwrap();
        assert_eq!(p.attestors.len(), 1);
        assert_eq!(p.path, path);
    }

    #[test]
    fn odd_yaml_shapes() {
        let cases: Vec<(String, &str)> = vec![
            (
                "- a\n- b\n".to_owned(),
                "p.yaml:1:1: the policy must be a mapping of fields, found a list",
            ),
            (
                format!("{DENY}---\n{DENY}"),
                "p.yaml:3:1: a policy file holds a single YAML document",
            ),
            (
                format!("{DENY}name: !custom x\n"),
                "p.yaml:2:7: `name` must be a string, found a value tagged `!custom`",
            ),
            (
                format!("{DENY}name: a\nname: b\n"),
                "p.yaml:3:1: invalid YAML: duplicated key in mapping",
            ),
            (
                format!("{DENY}? [a]\n: b\n"),
                "p.yaml:2:3: field names in the policy are strings, found a list",
            ),
            (
                "\u{feff}defaultAdmissionRule: {evaluationMode: ALWAYS_DENY}\n".to_owned(),
                "p.yaml:1:1: `defaultAdmissionRule` is missing `enforcementMode`",
            ),
            (
                format!(
                    "{DENY}clusterAdmissionRules:\n  \"\": {{evaluationMode: ALWAYS_DENY, enforcementMode: DRYRUN_AUDIT_LOG_ONLY}}\n"
                ),
                "p.yaml:3:3: invalid cluster name \"\"",
            ),
        ];
        for (yaml, want) in cases {
            let e = errors(&yaml);
            assert!(e[0].starts_with(want), "{yaml:?}: {e:?}");
        }
    }

    #[test]
    fn aliases_and_absolute_key_paths() {
        let key = keys_dir().join("p256.pub").canonicalize().unwrap();
        let yaml =
            "rule: &r {evaluationMode: ALWAYS_DENY, enforcementMode: DRYRUN_AUDIT_LOG_ONLY}\n";
        // Unknown top-level anchors are still unknown fields.
        assert!(
            errors(yaml)
                .iter()
                .any(|e| e.contains("unknown field `rule`"))
        );
        let yaml = format!(
            "defaultAdmissionRule: &r {{evaluationMode: ALWAYS_DENY, enforcementMode: DRYRUN_AUDIT_LOG_ONLY}}\n\
             clusterAdmissionRules: {{a: *r, b: *r}}\n\
             attestors: [{{name: k, publicKeys: [{{file: {}}}]}}]\n",
            key.display()
        );
        let p = check(&yaml).unwrap();
        assert_eq!(p.cluster_rules.len(), 2);
        assert_eq!(p.attestors.len(), 1);
    }

    #[test]
    fn unclosed_brackets() {
        assert_eq!(unclosed_bracket("a: [b, c\nd: e", 12), Some(('[', 1)));
        assert_eq!(unclosed_bracket("a: [b]\nd: {e: [f]", 17), Some(('{', 2)));
        assert_eq!(unclosed_bracket("a: x[b\nc: 'd[' # [\n", 19), None);
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("defaultAdmisionRule", TOP_FIELDS.iter().copied()),
            Some("defaultAdmissionRule")
        );
        assert_eq!(suggest("ENFORCED", ENFORCEMENT_MODES.iter().copied()), None);
        assert_eq!(
            suggest("publickeys", ATTESTOR_FIELDS.iter().copied()),
            Some("publicKeys")
        );
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
