//! Choosing the rule and deciding.
//!
//! Evaluation is pure and deterministic. In order:
//! 1. `registryAllowlist`: an image from anywhere else is denied, attested or not (an exempt
//!    pattern never admits an image from an untrusted registry);
//! 2. exempt patterns (`admissionWhitelistPatterns`): admitted without evidence;
//! 3. the most specific rule: service account, then namespace, then cluster, then default;
//! 4. the rule's evaluation mode; for `REQUIRE_ATTESTATION`, every listed attestor must have
//!    signed the digest with one of its keys, with its predicate type, identity and conditions;
//! 5. the rule's enforcement mode: a dry-run rule admits and reports what it would deny.
//!
//! Time enters in three places, all measured against the `now` handed in
//! ([`Policy::evaluate_at`]; tests pass a fixed clock): `revokedKeys`, a key's
//! `validFrom`/`validUntil`, and an attestor's `maxAge`.
//!
//! Cryptography is not done here: the caller verifies evidence against each attestor's keys
//! (see `signet-verify`) and hands in what verified, as [`AttestorEvidence`].

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use signet_core::digest::Digest;
use signet_core::reference::ImageRef;

use signet_core::evidence::Location;
use signet_core::keys::KeyId;
use signet_core::signed_time::{SignedTime, SignedTimes};

use crate::decision::{
    AcceptedReport, AttestorResult, CertificateReport, Decision, Enforcement, Outcome, Rejected,
    SignedAtReport,
};
use crate::model::{
    Attestor, AttestorName, EnforcementMode, EvaluationMode, Policy, RevokedKey, Rule,
    SignedIdentity,
};

/// How far in the future a signer-asserted time may be (clock skew) before it is refused:
/// a time in the future would keep evidence young for longer than `maxAge`.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// Where an image is being admitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AdmissionContext {
    /// The cluster name (`--cluster`).
    pub cluster: Option<String>,
    /// The Kubernetes namespace.
    pub namespace: Option<String>,
    /// The service account (in `namespace`).
    pub service_account: Option<String>,
}

/// A piece of evidence that verified with one of an attestor's keys and binds the digest, as
/// the policy sees it.
///
/// The one implementation in signet is `signet_verify::Accepted`, which only the verifier can
/// construct; this crate stays pure by judging through this trait rather than by verifying.
/// Tests implement it on plain structs.
pub trait Proof: std::fmt::Debug {
    /// Where it is.
    fn location(&self) -> &Location;
    /// The key that verified it.
    fn key_id(&self) -> &KeyId;
    /// Its predicate type (`https://sigstore.dev/cosign/sign/v1` for plain signatures).
    fn predicate_type(&self) -> &str;
    /// The verified in-toto statement as JSON, for attestations (conditions run over it).
    fn statement(&self) -> Option<&serde_json::Value>;
    /// The `docker-reference` a simple-signing payload signed, for identity checks.
    fn signed_reference(&self) -> Option<&str>;
    /// When it was signed: trusted times (verified timestamps, logs) and times the signer
    /// asserted in the signed content.
    fn signed_times(&self) -> &SignedTimes;
    /// For evidence signed with a certificate: who (identity, issuer), when and which log
    /// entries vouched.
    fn certified(&self) -> Option<&signet_core::keyless::CertifiedSignature> {
        None
    }
}

/// What verified (and what did not) for one attestor.
#[derive(Debug, Clone, Default)]
pub struct AttestorEvidence<'e> {
    /// Evidence that verified with the attestor's keys.
    pub accepted: Vec<&'e dyn Proof>,
    /// Evidence that did not, with reasons.
    pub rejected: Vec<Rejected>,
}

/// What the policy needs before it can decide.
#[derive(Debug)]
pub enum Need<'p> {
    /// Nothing: the decision does not depend on evidence.
    Nothing,
    /// Evidence checked against these attestors.
    Attestors(Vec<&'p Attestor>),
}

/// The rule that applies, with the name a person reads (`namespace payments`).
#[derive(Debug, Clone, Copy)]
pub struct Chosen<'p> {
    /// How the rule is named in decisions.
    pub label: &'p str,
    /// Its key in its map, if any.
    pub key: Option<&'p str>,
    /// The rule.
    pub rule: &'p Rule,
}

impl Policy {
    /// The most specific rule for `ctx`: service account, namespace, cluster, default.
    pub fn rule_for(&self, ctx: &AdmissionContext) -> Chosen<'_> {
        if let (Some(ns), Some(sa)) = (&ctx.namespace, &ctx.service_account) {
            let key = format!("{ns}:{sa}");
            if let Some((k, rule)) = self.service_account_rules.get_key_value(&key) {
                return Chosen {
                    label: "serviceAccount",
                    key: Some(k),
                    rule,
                };
            }
        }
        if let Some(ns) = &ctx.namespace
            && let Some((k, rule)) = self.namespace_rules.get_key_value(ns)
        {
            return Chosen {
                label: "namespace",
                key: Some(k),
                rule,
            };
        }
        if let Some(cluster) = &ctx.cluster
            && let Some((k, rule)) = self.cluster_rules.get_key_value(cluster)
        {
            return Chosen {
                label: "cluster",
                key: Some(k),
                rule,
            };
        }
        Chosen {
            label: "default",
            key: None,
            rule: &self.default_rule,
        }
    }

    fn untrusted_registry(&self, name: &str) -> bool {
        self.registry_allowlist
            .as_ref()
            .is_some_and(|globs| !globs.iter().any(|g| g.matches(name)))
    }

    fn exempt_pattern(&self, name: &str) -> Option<&str> {
        self.exempt
            .iter()
            .find(|g| g.matches(name))
            .map(|g| g.as_str())
    }

    /// What must be gathered before [`Policy::evaluate`] can decide for `image` in `ctx`.
    pub fn needs(&self, image: &ImageRef, ctx: &AdmissionContext) -> Need<'_> {
        let name = image.name();
        if self.untrusted_registry(&name) || self.exempt_pattern(&name).is_some() {
            return Need::Nothing;
        }
        let chosen = self.rule_for(ctx);
        if chosen.rule.evaluation != EvaluationMode::RequireAttestation {
            return Need::Nothing;
        }
        let mut names: Vec<&AttestorName> = chosen.rule.require.iter().collect();
        for threshold in &chosen.rule.thresholds {
            for name in &threshold.from {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        Need::Attestors(
            names
                .into_iter()
                .filter_map(|n| self.attestors.get(n))
                .collect(),
        )
    }

    /// Whether `image` is exempt (and from a trusted registry): admitted without evidence, even
    /// by tag. The daemon uses it to let exempt tag-only images through.
    pub fn is_exempt(&self, image: &ImageRef) -> bool {
        let name = image.name();
        !self.untrusted_registry(&name) && self.exempt_pattern(&name).is_some()
    }

    /// Decides for `image` at `digest` in `ctx`, given the evidence checked per attestor, as
    /// of now (or [`Policy::as_of`]). See [`Policy::evaluate_at`].
    pub fn evaluate(
        &self,
        image: &ImageRef,
        digest: Option<&Digest>,
        ctx: &AdmissionContext,
        evidence: &BTreeMap<AttestorName, AttestorEvidence<'_>>,
    ) -> Decision {
        let now = self.as_of.unwrap_or_else(SystemTime::now);
        self.evaluate_at(image, digest, ctx, evidence, now)
    }

    /// Decides for `image` at `digest` in `ctx`, given the evidence checked per attestor, as
    /// of `now` (for `maxAge`, key windows and revocations).
    /// An attestor missing from `evidence` counts as having attested nothing (fail closed).
    /// `digest` may be `None` only when [`Policy::needs`] said nothing is needed (the image was
    /// not resolved); a rule that requires attestations then denies.
    pub fn evaluate_at(
        &self,
        image: &ImageRef,
        digest: Option<&Digest>,
        ctx: &AdmissionContext,
        evidence: &BTreeMap<AttestorName, AttestorEvidence<'_>>,
        now: SystemTime,
    ) -> Decision {
        let name = image.name();
        let shown = match digest {
            Some(digest) => format!("{}@{digest}", display_without_digest(image)),
            None => image.to_string(),
        };
        let mut decision = Decision {
            outcome: Outcome::Denied,
            image: shown,
            digest: digest.cloned(),
            rule: String::new(),
            enforcement: Enforcement::Enforced,
            attestors: Vec::new(),
            reasons: Vec::new(),
            accepted: Vec::new(),
            rejected: Vec::new(),
            through_index: None,
            valid_until: None,
        };
        if self.untrusted_registry(&name) {
            decision.rule = "registryAllowlist".into();
            decision.reasons.push(format!(
                "{name} is not in a trusted registry (registryAllowlist: {})",
                self.registry_allowlist
                    .iter()
                    .flatten()
                    .map(|g| g.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            return decision;
        }
        if let Some(pattern) = self.exempt_pattern(&name) {
            decision.outcome = Outcome::Allowed;
            decision.rule = "admissionWhitelistPatterns".into();
            decision
                .reasons
                .push(format!("{name} is exempt (matches {pattern})"));
            return decision;
        }
        let chosen = self.rule_for(ctx);
        decision.rule = match chosen.key {
            Some(key) => format!("{} {key}", chosen.label),
            None => chosen.label.to_string(),
        };
        let denial_reasons: Vec<String> = match chosen.rule.evaluation {
            EvaluationMode::AlwaysAllow => Vec::new(),
            EvaluationMode::AlwaysDeny => {
                vec![format!(
                    "rule {} denies every image (ALWAYS_DENY)",
                    decision.rule
                )]
            }
            EvaluationMode::RequireAttestation => {
                let mut reasons = Vec::new();
                // Every attestor the rule names, once: those required outright, then those of
                // the thresholds.
                let mut named: Vec<(&AttestorName, bool)> =
                    chosen.rule.require.iter().map(|n| (n, true)).collect();
                for threshold in &chosen.rule.thresholds {
                    for name in &threshold.from {
                        if !named.iter().any(|(n, _)| *n == name) {
                            named.push((name, false));
                        }
                    }
                }
                let mut satisfied_names: Vec<&AttestorName> = Vec::new();
                let mut why_not: BTreeMap<&AttestorName, String> = BTreeMap::new();
                for (attestor_name, required) in named {
                    let empty = AttestorEvidence::default();
                    let found = evidence.get(attestor_name).unwrap_or(&empty);
                    let result = match (self.attestors.get(attestor_name), digest) {
                        (Some(attestor), Some(digest)) => {
                            judge(self, attestor, image, digest, found, now)
                        }
                        (Some(_), None) => Judgement {
                            satisfied: false,
                            reason: "the image was not resolved to a digest".into(),
                            used: None,
                            until: None,
                        },
                        // The loader rejects undefined references; fail closed regardless.
                        (None, _) => Judgement {
                            satisfied: false,
                            reason: format!("attestor {attestor_name} is not defined"),
                            used: None,
                            until: None,
                        },
                    };
                    if result.satisfied {
                        satisfied_names.push(attestor_name);
                    } else {
                        why_not.insert(attestor_name, result.reason.clone());
                        if required {
                            reasons.push(format!("attestor {attestor_name}: {}", result.reason));
                        }
                    }
                    if let Some(used) = result.used {
                        decision.accepted.push(AcceptedReport {
                            location: used.location().clone(),
                            predicate_type: used.predicate_type().to_string(),
                            key_id: used.key_id().clone(),
                            digest: digest.cloned(),
                            signed_at: used.signed_times().shown().map(SignedAtReport::from),
                            certificate: used.certified().map(CertificateReport::from),
                        });
                    }
                    if let Some(until) = result.until {
                        decision.valid_until =
                            Some(decision.valid_until.map_or(until, |u| u.min(until)));
                    }
                    decision.rejected.extend(found.rejected.iter().cloned());
                    decision.attestors.push(AttestorResult {
                        name: attestor_name.to_string(),
                        satisfied: result.satisfied,
                        reason: result.reason,
                    });
                }
                for threshold in &chosen.rule.thresholds {
                    let met: Vec<&str> = threshold
                        .from
                        .iter()
                        .filter(|n| satisfied_names.contains(n))
                        .map(|n| n.0.as_str())
                        .collect();
                    if met.len() >= threshold.count {
                        continue;
                    }
                    let missing: Vec<String> = threshold
                        .from
                        .iter()
                        .filter(|n| !satisfied_names.contains(n))
                        .map(|n| match why_not.get(n) {
                            Some(why) => format!("{n} ({why})"),
                            None => n.to_string(),
                        })
                        .collect();
                    reasons.push(format!(
                        "{} of {} attestors must attest, {} did{}; missing: {}",
                        threshold.count,
                        threshold
                            .from
                            .iter()
                            .map(|n| n.0.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        met.len(),
                        if met.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", met.join(", "))
                        },
                        missing.join("; ")
                    ));
                }
                reasons
            }
        };
        // Sorted as people read them (location with its format, then reason), so the order
        // does not depend on the order evidence was fetched in.
        decision
            .rejected
            .sort_by_cached_key(|r| (r.location.with_format(), r.reason.to_string()));
        decision.rejected.dedup();
        let denied = !denial_reasons.is_empty();
        decision.reasons = denial_reasons;
        if chosen.rule.enforcement == EnforcementMode::DryRun {
            decision.enforcement = Enforcement::DryRun;
        }
        decision.outcome = match (denied, chosen.rule.enforcement) {
            (false, _) => Outcome::Allowed,
            (true, EnforcementMode::Enforced) => Outcome::Denied,
            (true, EnforcementMode::DryRun) => Outcome::AllowedDryRunWouldDeny,
        };
        decision
    }
}

fn display_without_digest(image: &ImageRef) -> String {
    match image.tag() {
        Some(tag) => format!("{}:{tag}", image.name()),
        None => image.name(),
    }
}

struct Judgement<'e> {
    satisfied: bool,
    reason: String,
    used: Option<&'e dyn Proof>,
    /// When the evidence used stops counting by time alone (`maxAge`, `validUntil`).
    until: Option<SystemTime>,
}

/// Whether `attestor` attested `digest`: some evidence verified with its keys, was signed by a
/// key neither revoked nor outside its window and recently enough, has its predicate type,
/// passes its identity check and all its conditions.
fn judge<'e>(
    policy: &Policy,
    attestor: &Attestor,
    image: &ImageRef,
    digest: &Digest,
    found: &AttestorEvidence<'e>,
    now: SystemTime,
) -> Judgement<'e> {
    let keys = attestor.key_labels().join(", ");
    if found.accepted.is_empty() && attestor.keys.is_empty() && !attestor.keyless.is_empty() {
        // Certificate trust only: say why the certificates seen did not count.
        let certified: Vec<String> = found
            .rejected
            .iter()
            .filter(|r| {
                matches!(
                    r.reason,
                    signet_core::evidence::Rejection::Certificate { .. }
                        | signet_core::evidence::Rejection::BadSignature { .. }
                )
            })
            .map(|r| r.reason.to_string())
            .collect();
        let reason = match certified.first() {
            Some(first) => format!(
                "no signature or attestation for {digest} signed with a certificate it trusts; \
                 {} seen, the first: {first}",
                certified.len()
            ),
            None => format!(
                "no signature or attestation for {digest} signed with a certificate ({} other \
                 signature(s)/attestation(s) found)",
                found.rejected.len()
            ),
        };
        return Judgement {
            satisfied: false,
            reason,
            used: None,
            until: None,
        };
    }
    if found.accepted.is_empty() {
        let seen = if found.rejected.is_empty() {
            String::new()
        } else {
            format!(
                " ({} other signature(s)/attestation(s) found, none by these keys)",
                found.rejected.len()
            )
        };
        return Judgement {
            satisfied: false,
            reason: format!("no attestation signed by key {keys} for {digest}{seen}"),
            used: None,
            until: None,
        };
    }
    let mut failures = Vec::new();
    for &candidate in &found.accepted {
        let location = candidate.location();
        let until = match in_time(policy, attestor, candidate, now) {
            Ok(until) => until,
            Err(why) => {
                failures.push(format!("{location}: {why}"));
                continue;
            }
        };
        if let Some(wanted) = &attestor.predicate_type
            && candidate.predicate_type() != wanted
        {
            failures.push(format!(
                "{location} has predicate type {}, not {wanted}",
                candidate.predicate_type()
            ));
            continue;
        }
        if let Some(signed) = candidate.signed_reference()
            && let Err(why) = identity_matches(&attestor.signed_identity, image, signed)
        {
            failures.push(format!("{location}: {why}"));
            continue;
        }
        match conditions_hold(attestor, candidate) {
            Ok(()) => {
                return Judgement {
                    satisfied: true,
                    reason: format!(
                        "{location} signed by {} ({})",
                        candidate.key_id(),
                        match location.format() {
                            signet_core::evidence::Format::BinAuthz => {
                                "Binary Authorization attestation"
                            }
                            _ => candidate.predicate_type(),
                        }
                    ),
                    used: Some(candidate),
                    until,
                };
            }
            Err(why) => failures.push(format!("{location}: {why}")),
        }
    }
    Judgement {
        satisfied: false,
        reason: failures.join("; "),
        used: None,
        until: None,
    }
}

fn show(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// Whether `candidate` counts at `now` as far as time goes: its key is not revoked (or a
/// trusted time puts the signature before the revocation), it was signed inside its key's
/// window, and within the attestor's `maxAge`. On success, when it stops counting by time.
fn in_time(
    policy: &Policy,
    attestor: &Attestor,
    candidate: &dyn Proof,
    now: SystemTime,
) -> Result<Option<SystemTime>, String> {
    let key = candidate.key_id();
    let times = candidate.signed_times();
    let mut until: Option<SystemTime> = None;
    if let Some(revoked) = policy.revoked_keys.iter().find(|r| r.key_id == *key) {
        revocation_allows(revoked, times.trusted(), now)?;
    }
    let window = attestor.key_windows.get(key);
    if (window.is_some() || attestor.max_age.is_some()) && !times.invalid.is_empty() {
        return Err(format!("invalid signed time: {}", times.invalid.join("; ")));
    }
    if let Some(window) = window {
        // A trusted time says when it was signed; without one, the key must be valid now.
        // Times the signer asserted can only make this stricter: a key holder's own word that
        // it signed outside the window is believed.
        match times.trusted() {
            Some(t) if !window.contains(t.at) => {
                return Err(format!(
                    "key {} is {window}, but signed at {t}",
                    key.short()
                ));
            }
            Some(_) => {}
            None if !window.contains(now) => {
                return Err(format!(
                    "key {} is {window}; it is now {} and no trusted time shows it signed \
                     within its window",
                    key.short(),
                    show(now)
                ));
            }
            None => until = window.valid_until,
        }
        if let Some(t) = times
            .times
            .iter()
            .find(|t| !t.is_trusted() && !window.contains(t.at))
        {
            return Err(format!(
                "key {} is {window}, but signed at {t}",
                key.short()
            ));
        }
    }
    if let Some(max_age) = attestor.max_age {
        let Some(basis) = times.age_basis() else {
            return Err(format!(
                "no signed time, and attestor {} has maxAge {}",
                attestor.name,
                humantime::format_duration(max_age)
            ));
        };
        if basis.at > now + MAX_CLOCK_SKEW {
            return Err(format!("signed time {basis} is in the future"));
        }
        let age = now.duration_since(basis.at).unwrap_or_default();
        if age > max_age {
            return Err(format!(
                "signed at {basis}, {} ago; attestor {} has maxAge {}",
                humantime::format_duration(Duration::from_secs(age.as_secs())),
                attestor.name,
                humantime::format_duration(max_age)
            ));
        }
        let expires = basis.at + max_age;
        until = Some(until.map_or(expires, |u| u.min(expires)));
    }
    Ok(until)
}

/// A revoked key's evidence counts only with a trusted time before `revokedAt` (once `now` has
/// reached it: a revocation dated later, as for a planned rotation, is not in force yet).
fn revocation_allows(
    revoked: &RevokedKey,
    trusted: Option<&SignedTime>,
    now: SystemTime,
) -> Result<(), String> {
    let named = format!("key {} is revoked ({})", revoked.key_id, revoked.reason);
    match (revoked.revoked_at, trusted) {
        (None, _) => Err(named),
        (Some(at), _) if now < at => Ok(()),
        (Some(at), Some(t)) if t.at < at => Ok(()),
        (Some(at), Some(t)) => Err(format!("{named} since {}, and was signed at {t}", show(at))),
        (Some(at), None) => Err(format!(
            "{named} since {}; no trusted time (RFC 3161 timestamp or transparency log) shows \
             it was signed before",
            show(at)
        )),
    }
}

fn conditions_hold(attestor: &Attestor, candidate: &dyn Proof) -> Result<(), String> {
    if attestor.conditions.is_empty() {
        return Ok(());
    }
    let Some(statement) = candidate.statement() else {
        return Err("conditions need an in-toto attestation; this is a plain signature".into());
    };
    let mut context = cel::Context::default();
    context
        .add_variable("statement", statement.clone())
        .map_err(|e| format!("cannot give the statement to CEL: {e}"))?;
    for condition in &attestor.conditions {
        match condition.program.execute(&context) {
            Ok(cel::Value::Bool(true)) => {}
            Ok(cel::Value::Bool(false)) => {
                return Err(format!("condition `{}` is false", condition.source));
            }
            Ok(other) => {
                return Err(format!(
                    "condition `{}` gave {other:?}, not a boolean",
                    condition.source
                ));
            }
            Err(e) => {
                return Err(format!("condition `{}` failed: {e}", condition.source));
            }
        }
    }
    Ok(())
}

/// The repository part of a signed `docker-reference` (without tag or digest), normalised.
fn signed_repository(signed: &str) -> Option<String> {
    signed.parse::<ImageRef>().ok().map(|r| r.name())
}

/// What follows `prefix` in the image name `name`, when `prefix` is the whole name or ends at a
/// path boundary: `registry.corp/prod` is a prefix of `registry.corp/prod/app`, not of
/// `registry.corp/prodx/app` (issue 12, finding 4). The boundary is the next character being
/// `/`, `:` or `@`, as containers/image's `remapIdentity` has it (`refMatchesPrefix` in
/// signature/policy_reference_match.go); a prefix the policy wrote with a trailing `/` carries
/// its boundary itself. The signed side needs no such check: the remapped name is compared with
/// the whole signed repository, never as a prefix.
fn strip_name_prefix<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = name.strip_prefix(prefix)?;
    let at_boundary = rest.is_empty() || prefix.ends_with('/') || rest.starts_with(['/', ':', '@']);
    at_boundary.then_some(rest)
}

fn identity_matches(
    identity: &SignedIdentity,
    image: &ImageRef,
    signed: &str,
) -> Result<(), String> {
    match identity {
        SignedIdentity::MatchDigest => Ok(()),
        SignedIdentity::MatchRepository => {
            let name = image.name();
            match signed_repository(signed) {
                Some(repo) if repo == name => Ok(()),
                _ => Err(format!("signed for {signed}, not {name}")),
            }
        }
        SignedIdentity::RemapIdentity {
            prefix,
            signed_prefix,
        } => {
            let name = image.name();
            let expected = match strip_name_prefix(&name, prefix) {
                Some(rest) => format!("{signed_prefix}{rest}"),
                None => name.clone(),
            };
            match signed_repository(signed) {
                Some(repo) if repo == expected => Ok(()),
                _ => Err(format!("signed for {signed}, expected {expected}")),
            }
        }
    }
}
