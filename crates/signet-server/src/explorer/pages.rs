//! The explorer's pages: what each template shows, as plain values.
//!
//! The templates are in `crates/signet-server/templates/explorer/`, compiled with the crate by
//! askama. Their extension is `.html`, so every `{{ value }}` is HTML-escaped (`<`, `>`, `&`,
//! `"`, `'`); no template marks anything `safe`. Values reach them as owned strings made here,
//! so a template cannot reach into the daemon's state.

use askama::Template;
use signet_policy::Policy;
use signet_policy::decision::AttestorResult;
use signet_verify::{Decision, Outcome};

use super::recent::{Record, Source};
use crate::audit::{ImageRecord, rfc3339};

/// The recent decisions.
#[derive(Template)]
#[template(path = "explorer/decisions.html")]
pub(crate) struct DecisionsPage {
    pub(crate) rows: Vec<DecisionRow>,
    /// Records kept, before filtering.
    pub(crate) kept: usize,
    pub(crate) capacity: usize,
    /// The outcome filter, `""` for all.
    pub(crate) outcome: &'static str,
    pub(crate) outcomes: [&'static str; 6],
    /// The namespace filter, `""` for all.
    pub(crate) namespace: String,
    pub(crate) generation: u64,
}

/// One decision.
pub(crate) struct DecisionRow {
    pub(crate) time: String,
    pub(crate) source: &'static str,
    pub(crate) object: String,
    pub(crate) uid: String,
    pub(crate) namespace: String,
    pub(crate) service_account: String,
    pub(crate) rule: String,
    pub(crate) outcome: &'static str,
    pub(crate) images: Vec<ImageRecord>,
    pub(crate) images_left_out: usize,
    pub(crate) reasons: Vec<String>,
}

impl DecisionRow {
    pub(crate) fn of(record: &Record) -> DecisionRow {
        let (source, object, uid) = match &record.source {
            Source::Admission { uid, kind, name } => {
                ("admission", format!("{kind}/{name}"), uid.clone())
            }
            Source::VerifyApi => ("verify API", String::new(), String::new()),
        };
        DecisionRow {
            time: rfc3339(record.time),
            source,
            object,
            uid,
            namespace: record.namespace.clone().unwrap_or_default(),
            service_account: record.service_account.clone().unwrap_or_default(),
            rule: record.rule.clone(),
            outcome: record.outcome.as_str(),
            images: record.images.clone(),
            images_left_out: record.images_left_out,
            reasons: record.reasons.clone(),
        }
    }
}

/// The policy in force.
#[derive(Template)]
#[template(path = "explorer/policy.html")]
pub(crate) struct PolicyPage {
    pub(crate) path: String,
    pub(crate) generation: u64,
    pub(crate) name: String,
    pub(crate) cluster: String,
    pub(crate) allowlist: String,
    pub(crate) exempt: String,
    pub(crate) rules: Vec<RuleRow>,
    pub(crate) attestors: Vec<AttestorRow>,
    pub(crate) multi_platform: String,
}

/// One admission rule and its scope.
pub(crate) struct RuleRow {
    pub(crate) scope: &'static str,
    pub(crate) key: String,
    pub(crate) summary: String,
    /// Where it is written, `line:column`.
    pub(crate) at: String,
}

/// One attestor: key ids, never keys.
pub(crate) struct AttestorRow {
    pub(crate) name: String,
    pub(crate) key_ids: Vec<String>,
    pub(crate) predicate: String,
    pub(crate) conditions: Vec<String>,
    pub(crate) identity: String,
}

impl PolicyPage {
    pub(crate) fn of(policy: &Policy, generation: u64, cluster: Option<&str>) -> PolicyPage {
        PolicyPage {
            path: policy.path.display().to_string(),
            generation,
            name: policy.name.clone().unwrap_or_default(),
            cluster: cluster.unwrap_or_default().to_string(),
            allowlist: policy.allowlist_summary(),
            exempt: policy.exempt_summary(),
            rules: policy
                .rules_by_scope()
                .into_iter()
                .map(|(scope, key, rule)| RuleRow {
                    scope,
                    key: key.unwrap_or_default().to_string(),
                    summary: rule.summary(),
                    at: rule.span.to_string(),
                })
                .collect(),
            attestors: policy
                .attestors
                .values()
                .map(|a| {
                    let mut key_ids: Vec<String> =
                        a.keys.iter().map(|k| k.id().to_string()).collect();
                    key_ids.extend(a.note_keys.iter().filter_map(|k| match k {
                        signet_core::binauthz::NoteKey::Pgp(_) => {
                            Some(format!("pgp {}", k.key_id()))
                        }
                        signet_core::binauthz::NoteKey::Pkix { .. } => None,
                    }));
                    // Certificate trust: who may sign (identities), under which CAs.
                    for trust in &a.keyless {
                        let kind = if trust.certificates.requires_sct() {
                            "keyless"
                        } else {
                            "certificate"
                        };
                        for identity in &trust.identities {
                            // `subject … issuer …` and any Fulcio claims required.
                            key_ids.push(format!("{kind} {identity}"));
                        }
                    }
                    AttestorRow {
                        name: a.name.to_string(),
                        key_ids,
                        predicate: a.predicate_summary(),
                        conditions: a.conditions.iter().map(|c| c.source.clone()).collect(),
                        identity: a
                            .signed_identity
                            .summary()
                            .unwrap_or_else(|| "matchDigest (the digest alone binds)".into()),
                    }
                })
                .collect(),
            multi_platform: policy.multi_platform.summary(),
        }
    }
}

/// The explain view.
#[derive(Template)]
#[template(path = "explorer/explain.html")]
pub(crate) struct ExplainPage {
    pub(crate) form: ExplainForm,
    /// Why the input was refused.
    pub(crate) error: Option<String>,
    pub(crate) explained: Option<Explained>,
    pub(crate) cluster: Option<String>,
}

/// The form's fields, as typed.
pub(crate) struct ExplainForm {
    pub(crate) image: String,
    pub(crate) namespace: String,
    pub(crate) service_account: String,
}

/// Why an image is allowed or denied.
pub(crate) struct Explained {
    /// `allowed`, `denied`, `dryrun`, `error`: the CSS class.
    pub(crate) verdict: &'static str,
    /// What the banner says.
    pub(crate) verdict_label: &'static str,
    pub(crate) image: String,
    pub(crate) digest: String,
    pub(crate) rule: String,
    pub(crate) rule_summary: String,
    pub(crate) enforcement: String,
    pub(crate) attestors: Vec<AttestorResult>,
    pub(crate) reasons: Vec<String>,
    pub(crate) through_index: String,
    pub(crate) evidence: Vec<EvidenceRow>,
    pub(crate) evidence_error: Option<String>,
    pub(crate) tree: Vec<TreeRow>,
    pub(crate) tree_notes: Vec<String>,
    pub(crate) tree_truncated: bool,
    pub(crate) tree_error: Option<String>,
    pub(crate) notes: Vec<String>,
}

impl Explained {
    pub(crate) fn new(image: String) -> Explained {
        Explained {
            verdict: "error",
            verdict_label: "NOT DECIDED",
            image,
            digest: String::new(),
            rule: String::new(),
            rule_summary: String::new(),
            enforcement: String::new(),
            attestors: Vec::new(),
            reasons: Vec::new(),
            through_index: String::new(),
            evidence: Vec::new(),
            evidence_error: None,
            tree: Vec::new(),
            tree_notes: Vec::new(),
            tree_truncated: false,
            tree_error: None,
            notes: Vec::new(),
        }
    }

    /// Verification could not finish: admission denies (fail closed) unless the daemon runs
    /// with `--fail-open`.
    pub(crate) fn set_error(&mut self, reason: String) {
        self.verdict = "error";
        self.verdict_label = "ERROR: NOT VERIFIED";
        self.reasons = vec![reason];
    }

    pub(crate) fn set_decision(&mut self, decision: &Decision) {
        (self.verdict, self.verdict_label) = match decision.outcome {
            Outcome::Allowed => ("allowed", "ALLOWED"),
            Outcome::Denied => ("denied", "DENIED"),
            Outcome::AllowedDryRunWouldDeny => ("dryrun", "ALLOWED (dry run: would deny)"),
        };
        self.image.clone_from(&decision.image);
        self.digest = decision
            .digest
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        self.rule.clone_from(&decision.rule);
        self.enforcement = decision.enforcement.to_string();
        self.attestors.clone_from(&decision.attestors);
        self.reasons.clone_from(&decision.reasons);
        self.through_index = decision
            .through_index
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
    }
}

/// One piece of evidence and each attestor's verdict on it.
pub(crate) struct EvidenceRow {
    /// `referrer sha256:…`, `sha256-….sig layer 0`.
    pub(crate) location: String,
    pub(crate) format: &'static str,
    /// The predicate type its annotations claim (unverified), `""` when none.
    pub(crate) claimed_predicate_type: String,
    pub(crate) verdicts: Vec<AttestorVerdict>,
}

/// One attestor's verdict on one piece of evidence.
pub(crate) struct AttestorVerdict {
    pub(crate) attestor: String,
    pub(crate) accepted: bool,
    pub(crate) text: String,
}

/// What the tree shows next to a piece of evidence.
#[derive(Debug, Clone)]
pub(crate) struct Mark {
    pub(crate) accepted: bool,
    pub(crate) text: String,
}

/// One line of the referrers tree.
pub(crate) struct TreeRow {
    /// Box-drawing prefix: `│   ├── `.
    pub(crate) prefix: String,
    /// Artifact or media type, or what the line is.
    pub(crate) kind: String,
    pub(crate) digest: String,
    pub(crate) detail: String,
    pub(crate) mark: Option<Mark>,
}

impl TreeRow {
    pub(crate) fn note(prefix: &str, text: &str) -> TreeRow {
        TreeRow {
            prefix: prefix.into(),
            kind: text.into(),
            digest: String::new(),
            detail: String::new(),
            mark: None,
        }
    }
}

/// An error.
#[derive(Template)]
#[template(path = "explorer/error.html")]
pub(crate) struct ErrorPage {
    pub(crate) status: u16,
    pub(crate) message: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use std::path::Path;

    use super::*;

    #[test]
    fn the_policy_page_lists_the_fulcio_claims_an_identity_requires() {
        let yaml = "defaultAdmissionRule:\n  evaluationMode: REQUIRE_ATTESTATION\n  \
                    enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG\n  \
                    requireAttestationsBy: [release]\nattestors:\n  - name: release\n    \
                    keyless:\n      identities:\n        \
                    - issuer: https://token.actions.githubusercontent.com\n          \
                    subjectRegExp: ^https://github\\.com/shop/.*$\n          extensions:\n            \
                    githubWorkflowTrigger: push\n            \
                    sourceRepositoryRef: {regExp: ^refs/tags/v.*$}\n";
        let policy = signet_policy::parse(yaml, Path::new("policy.yaml"), Path::new(".")).unwrap();
        let page = PolicyPage::of(&policy, 1, None);
        assert_eq!(
            page.attestors[0].key_ids,
            ["keyless subject /^https://github\\.com/shop/.*$/ issuer \
              \"https://token.actions.githubusercontent.com\" githubWorkflowTrigger \"push\" \
              sourceRepositoryRef /^refs/tags/v.*$/"]
        );
    }
}
