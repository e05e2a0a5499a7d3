//! The top level of a policy, its name patterns and its admission rules.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use saphyr::{LoadableYamlNode, YamlData};

use super::Checker;
use super::attestors::attestor_name;
use super::yaml::{
    Entry, Node, as_str, describe, is_null, quoted_list, start, suggest, unclosed_bracket,
};
use crate::glob::Glob;
use crate::model::{
    AttestorName, EnforcementMode, EvaluationMode, GlobalEvaluationMode, IndexRequirement,
    MultiPlatform, Policy, Rule, Span, Threshold,
};

pub(super) const TOP_FIELDS: &[&str] = &[
    "registryAllowlist",
    "admissionWhitelistPatterns",
    "admissionAllowlistPatterns",
    "defaultAdmissionRule",
    "clusterAdmissionRules",
    "kubernetesNamespaceAdmissionRules",
    "kubernetesServiceAccountAdmissionRules",
    "attestors",
    "globalPolicyEvaluationMode",
    "multiPlatform",
    "revokedKeys",
    "timestampAuthorities",
    "name",
    "etag",
    "updateTime",
    "description",
];
const RULE_FIELDS: &[&str] = &[
    "evaluationMode",
    "enforcementMode",
    "requireAttestationsBy",
    "requireAttestationsThreshold",
];
const THRESHOLD_FIELDS: &[&str] = &["count", "from"];
const PATTERN_FIELDS: &[&str] = &["namePattern"];
const MULTI_PLATFORM_FIELDS: &[&str] = &[
    "indexEvidenceCoversPlatforms",
    "requireEvidenceOn",
    "platforms",
];
const INDEX_REQUIREMENTS: &[&str] = &["index", "everyPlatform"];
const EVALUATION_MODES: &[&str] = &["ALWAYS_ALLOW", "ALWAYS_DENY", "REQUIRE_ATTESTATION"];
pub(super) const ENFORCEMENT_MODES: &[&str] =
    &["ENFORCED_BLOCK_AND_AUDIT_LOG", "DRYRUN_AUDIT_LOG_ONLY"];
const GLOBAL_MODES: &[&str] = &[
    "ENABLE",
    "DISABLE",
    "GLOBAL_POLICY_EVALUATION_MODE_UNSPECIFIED",
];

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

impl<'t> Checker<'t> {
    pub(super) fn policy(&mut self) -> Option<Policy> {
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

        let multi_platform = top
            .get("multiPlatform")
            .map(|entry| self.multi_platform(entry))
            .unwrap_or_default();

        let revoked_keys = top
            .get("revokedKeys")
            .map(|entry| self.revoked_keys(entry))
            .unwrap_or_default();
        let timestamp_authorities = top
            .get("timestampAuthorities")
            .map(|entry| self.timestamp_authorities(entry))
            .unwrap_or_default();

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
            multi_platform,
            revoked_keys,
            timestamp_authorities,
            as_of: None,
        })
    }

    /// `multiPlatform: {indexEvidenceCoversPlatforms, requireEvidenceOn, platforms}`.
    fn multi_platform(&mut self, entry: Entry<'_>) -> MultiPlatform {
        let mut out = MultiPlatform::default();
        let Some(fields) = self.entry_fields(entry, "`multiPlatform`", MULTI_PLATFORM_FIELDS)
        else {
            return out;
        };
        if let Some(e) = fields.get("indexEvidenceCoversPlatforms") {
            match &e.value.data {
                saphyr::YamlData::Value(saphyr::Scalar::Boolean(b)) => {
                    out.index_covers_platforms = *b;
                }
                _ => self.error(
                    e.value_span(),
                    "`indexEvidenceCoversPlatforms` must be true or false",
                ),
            }
        }
        if let Some(e) = fields.get("requireEvidenceOn") {
            out.require = match self.enumeration(e, "requireEvidenceOn", INDEX_REQUIREMENTS, "") {
                Some("everyPlatform") => IndexRequirement::EveryPlatform,
                _ => IndexRequirement::Index,
            };
        }
        if let Some(e) = fields.get("platforms") {
            let items = self
                .list(e.value, e.value_span(), "`multiPlatform.platforms`")
                .unwrap_or_default();
            for item in items {
                let Some(text) = self.string(item, start(item), "a platform") else {
                    continue;
                };
                let parts: Vec<&str> = text.split('/').collect();
                let valid = (2..=3).contains(&parts.len())
                    && parts.iter().all(|p| {
                        !p.is_empty()
                            && p.chars()
                                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                    });
                if valid {
                    out.platforms.push(text.to_owned());
                } else {
                    self.error(
                        start(item),
                        format!(
                            "invalid platform `{text}`: write os/architecture[/variant], such as \
                             `linux/amd64` or `linux/arm64/v8`"
                        ),
                    );
                }
            }
            if out.require != IndexRequirement::EveryPlatform && !out.platforms.is_empty() {
                self.error(
                    e.key_span(),
                    "`multiPlatform.platforms` applies only with `requireEvidenceOn: everyPlatform`",
                );
            }
        }
        out
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

        let threshold_entry = fields.get("requireAttestationsThreshold");
        let thresholds = threshold_entry
            .map(|e| self.thresholds(e, what, declared))
            .unwrap_or_default();
        if let (Some(mode @ (EvaluationMode::AlwaysAllow | EvaluationMode::AlwaysDeny)), Some(e)) =
            (evaluation, threshold_entry)
        {
            self.error(
                e.key_span(),
                format!(
                    "`requireAttestationsThreshold` in {what} has no effect with \
                     `evaluationMode: {}`: remove it, or use REQUIRE_ATTESTATION",
                    mode.as_str()
                ),
            );
        }
        if threshold_entry.is_some() {
            listed += thresholds.len().max(1);
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
                if !require.is_empty() =>
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
            thresholds,
            span: entry.key_span(),
        })
    }

    /// `requireAttestationsThreshold: [{count: M, from: [attestors]}]` (a signet extension: M
    /// of the N attestors must have attested).
    fn thresholds(
        &mut self,
        entry: Entry<'_>,
        what: &str,
        declared: &BTreeSet<AttestorName>,
    ) -> Vec<Threshold> {
        let mut out = Vec::new();
        let Some(items) = self.list(
            entry.value,
            entry.value_span(),
            "`requireAttestationsThreshold`",
        ) else {
            return out;
        };
        if items.is_empty() {
            self.error(
                entry.key_span(),
                format!(
                    "`requireAttestationsThreshold` in {what} is empty: give `{{count: M, from: \
                     [attestors]}}` entries, or remove it"
                ),
            );
        }
        for item in items {
            let group = format!("a `requireAttestationsThreshold` entry of {what}");
            let Some(fields) =
                self.fields(item, start(item), start(item), &group, THRESHOLD_FIELDS)
            else {
                continue;
            };
            let count = match fields.get("count") {
                Some(e) => match &e.value.data {
                    saphyr::YamlData::Value(saphyr::Scalar::Integer(n)) if *n >= 1 => {
                        usize::try_from(*n).ok()
                    }
                    _ => {
                        self.error(
                            e.value_span(),
                            "`count` must be a whole number of at least 1",
                        );
                        None
                    }
                },
                None => {
                    self.error(fields.at, format!("{group} is missing `count`"));
                    None
                }
            };
            let mut from: Vec<AttestorName> = Vec::new();
            match fields.get("from") {
                Some(e) => {
                    let names = self
                        .list(e.value, e.value_span(), "`from`")
                        .unwrap_or_default();
                    for name_node in names {
                        let Some(text) = self.string(name_node, start(name_node), "an attestor")
                        else {
                            continue;
                        };
                        match attestor_name(text) {
                            Err(message) => self.error(start(name_node), message),
                            Ok(name) if !declared.contains(&name) => {
                                let message = undefined_attestor(&name, what, declared);
                                self.error(start(name_node), message);
                            }
                            Ok(name) if from.contains(&name) => self.error(
                                start(name_node),
                                format!("attestor `{name}` is listed twice in `from` of {group}"),
                            ),
                            Ok(name) => from.push(name),
                        }
                    }
                }
                None => self.error(fields.at, format!("{group} is missing `from`")),
            }
            if let (Some(count), Some(e)) = (count, fields.get("count"))
                && count > from.len()
                && fields.get("from").is_some()
            {
                self.error(
                    e.value_span(),
                    format!(
                        "`count` {count} is more than the {} attestor(s) in `from`: it could \
                         never be met",
                        from.len()
                    ),
                );
                continue;
            }
            if let Some(count) = count
                && !from.is_empty()
            {
                out.push(Threshold {
                    count,
                    from,
                    span: start(item),
                });
            }
        }
        out
    }
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
pub(super) enum RuleKey {
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
    pub(super) fn check(self, key: &str) -> Result<(), String> {
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
