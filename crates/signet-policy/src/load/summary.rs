//! The summary of a loaded policy, as `signet policy check` prints it.

use std::fmt::Write as _;

use crate::glob::Glob;
use crate::model::{GlobalEvaluationMode, Policy, Rule, SignedIdentity};

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
            let ids = attestor.key_labels();
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
            if let Some(max_age) = attestor.max_age {
                let _ = write!(out, ", maxAge {}", humantime::format_duration(max_age));
            }
            for (key, window) in &attestor.key_windows {
                let _ = write!(out, ", key {} {window}", key.short());
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
                let window = tsa.valid_for();
                let show = |t: Option<std::time::SystemTime>| {
                    t.map_or("-".to_string(), |t| {
                        humantime::format_rfc3339_seconds(t).to_string()
                    })
                };
                let _ = write!(
                    out,
                    "\n  {} (valid {} to {})",
                    tsa.name(),
                    show(window.start),
                    show(window.end)
                );
            }
            out.push('\n');
        }
        let mp = &self.multi_platform;
        let _ = writeln!(
            out,
            "multi-platform: evidence on {}{}; index evidence {} platform digests",
            mp.require.as_str(),
            if mp.platforms.is_empty() {
                String::new()
            } else {
                format!(" ({})", mp.platforms.join(", "))
            },
            if mp.index_covers_platforms {
                "covers"
            } else {
                "does not cover"
            }
        );
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
    for (i, threshold) in rule.thresholds.iter().enumerate() {
        let names: Vec<&str> = threshold.from.iter().map(|n| n.0.as_str()).collect();
        let joiner = if rule.require.is_empty() && i == 0 {
            " by"
        } else {
            " and"
        };
        let _ = write!(s, "{joiner} {} of {}", threshold.count, names.join(", "));
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
