//! The summary of a loaded policy, as `signet policy check` prints it.

use std::fmt::Write as _;

use crate::glob::Glob;
use crate::model::{Attestor, GlobalEvaluationMode, MultiPlatform, Policy, Rule, SignedIdentity};

impl Policy {
    /// A short multi-line summary, as `signet policy check` prints it.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        if let Some(name) = &self.name {
            let _ = writeln!(out, "name: {name}");
        }
        let _ = writeln!(out, "default rule: {}", self.default_rule.summary());
        for (label, rules) in [
            ("cluster rules", &self.cluster_rules),
            ("namespace rules", &self.namespace_rules),
            ("service account rules", &self.service_account_rules),
        ] {
            let _ = write!(out, "{label}: {}", rules.len());
            for (key, rule) in rules {
                let _ = write!(out, "\n  {key}: {}", rule.summary());
            }
            out.push('\n');
        }
        let _ = writeln!(out, "registry allowlist: {}", self.allowlist_summary());
        let _ = writeln!(out, "exempt patterns: {}", self.exempt_summary());
        let _ = write!(out, "attestors: {}", self.attestors.len());
        for attestor in self.attestors.values() {
            let ids = attestor.key_labels();
            let plural = if ids.len() == 1 { "" } else { "s" };
            let _ = write!(
                out,
                "\n  {}: {} key{plural} ({}), ",
                attestor.name,
                ids.len(),
                ids.join(", ")
            );
            out.push_str(&attestor.predicate_summary());
            if !attestor.conditions.is_empty() {
                let n = attestor.conditions.len();
                let _ = write!(out, ", {n} condition{}", if n == 1 { "" } else { "s" });
            }
            if let Some(identity) = attestor.signed_identity.summary() {
                let _ = write!(out, ", identity {identity}");
            }
            if let Some(max_age) = attestor.max_age {
                let _ = write!(out, ", maxAge {}", humantime::format_duration(max_age));
            }
            for (key, window) in &attestor.key_windows {
                let _ = write!(out, ", key {} {window}", key.short());
            }
            for trust in &attestor.keyless {
                let kind = if trust.certificates.requires_sct() {
                    "keyless"
                } else {
                    "certificates"
                };
                let cas: Vec<&str> = trust
                    .certificates
                    .authorities()
                    .iter()
                    .map(|ca| ca.name())
                    .collect();
                let _ = write!(out, "\n    {kind} (CA {})", cas.join(", "));
                for identity in &trust.identities {
                    let _ = write!(out, "\n      identity {identity}");
                }
            }
        }
        out.push('\n');
        if !self.revoked_keys.is_empty() {
            let _ = write!(out, "revoked keys: {}", self.revoked_keys.len());
            for revoked in &self.revoked_keys {
                let _ = write!(out, "\n  {}: {}", revoked.key_id, revoked.reason);
                match revoked.revoked_at {
                    Some(at) => {
                        let _ = write!(
                            out,
                            " (since {}; evidence with a trusted earlier time still counts)",
                            humantime::format_rfc3339_seconds(at)
                        );
                    }
                    None => out.push_str(" (nothing it signed counts)"),
                }
            }
            out.push('\n');
        }
        if !self.timestamp_authorities.is_empty() {
            let _ = write!(
                out,
                "timestamp authorities: {}",
                self.timestamp_authorities.len()
            );
            for tsa in &self.timestamp_authorities {
                // The same window as a key's, shown the same way.
                let window = crate::model::KeyWindow {
                    valid_from: tsa.valid_for().start,
                    valid_until: tsa.valid_for().end,
                };
                let _ = write!(out, "\n  {} ({window})", tsa.name());
            }
            out.push('\n');
        }
        let _ = writeln!(out, "multi-platform: {}", self.multi_platform.summary());
        match self.global_evaluation_mode {
            GlobalEvaluationMode::Unspecified => {}
            GlobalEvaluationMode::Enable => out.push_str("globalPolicyEvaluationMode: ENABLE\n"),
            GlobalEvaluationMode::Disable => out.push_str("globalPolicyEvaluationMode: DISABLE\n"),
        }
        out
    }
}

impl Policy {
    /// `registryAllowlist` in one line: the patterns, or what their absence means.
    pub fn allowlist_summary(&self) -> String {
        match &self.registry_allowlist {
            None => "none (images from any registry)".into(),
            Some(globs) if globs.is_empty() => {
                "empty (images from every registry are denied)".into()
            }
            Some(globs) => join_globs(globs),
        }
    }

    /// `admissionWhitelistPatterns` in one line.
    pub fn exempt_summary(&self) -> String {
        if self.exempt.is_empty() {
            "none".into()
        } else {
            join_globs(&self.exempt)
        }
    }

    /// Every admission rule with its scope, most specific last, as `(scope, key, rule)`: the
    /// default rule (no key), then cluster, namespace and service account rules by key. Scopes
    /// are named as decisions name the rule that applied (`namespace payments`).
    pub fn rules_by_scope(&self) -> Vec<(&'static str, Option<&str>, &Rule)> {
        let mut rules = vec![("default", None, &self.default_rule)];
        for (scope, by_key) in [
            ("cluster", &self.cluster_rules),
            ("namespace", &self.namespace_rules),
            ("serviceAccount", &self.service_account_rules),
        ] {
            rules.extend(
                by_key
                    .iter()
                    .map(|(key, rule)| (scope, Some(key.as_str()), rule)),
            );
        }
        rules
    }
}

impl Rule {
    /// The rule in one line: `REQUIRE_ATTESTATION (ENFORCED_BLOCK_AND_AUDIT_LOG) by a, b and
    /// 2 of c, d, e`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} ({})",
            self.evaluation.as_str(),
            self.enforcement.as_str()
        );
        if !self.require.is_empty() {
            let names: Vec<&str> = self.require.iter().map(|n| n.0.as_str()).collect();
            let _ = write!(s, " by {}", names.join(", "));
        }
        for (i, threshold) in self.thresholds.iter().enumerate() {
            let names: Vec<&str> = threshold.from.iter().map(|n| n.0.as_str()).collect();
            let joiner = if self.require.is_empty() && i == 0 {
                " by"
            } else {
                " and"
            };
            let _ = write!(s, "{joiner} {} of {}", threshold.count, names.join(", "));
        }
        s
    }
}

impl Attestor {
    /// `predicate type URI`, or `any predicate type`.
    pub fn predicate_summary(&self) -> String {
        match &self.predicate_type {
            Some(t) => format!("predicate type {t}"),
            None => "any predicate type".into(),
        }
    }
}

impl SignedIdentity {
    /// The identity check in a few words, `None` for the default (the digest alone binds).
    pub fn summary(&self) -> Option<String> {
        match self {
            SignedIdentity::MatchDigest => None,
            SignedIdentity::MatchRepository => Some("matchRepository".into()),
            SignedIdentity::RemapIdentity {
                prefix,
                signed_prefix,
            } => Some(format!("remapIdentity {prefix} -> {signed_prefix}")),
        }
    }
}

impl MultiPlatform {
    /// `evidence on index; index evidence covers platform digests`.
    pub fn summary(&self) -> String {
        format!(
            "evidence on {}{}; index evidence {} platform digests",
            self.require.as_str(),
            if self.platforms.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.platforms.join(", "))
            },
            if self.index_covers_platforms {
                "covers"
            } else {
                "does not cover"
            }
        )
    }
}

fn join_globs(globs: &[Glob]) -> String {
    globs
        .iter()
        .map(Glob::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}
