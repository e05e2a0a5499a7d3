//! The checked policy: what the loader produces and the evaluator reads.
//!
//! Every value here has been validated: names resolve, keys parse, globs can match, conditions
//! compile. Positions ([`Span`]) are kept so that later messages can point into the file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use signet_core::binauthz::NoteKey;
use signet_core::keys::{KeyId, PublicKey};

use crate::glob::Glob;

/// A position in the policy file (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// An attestor's name as the policy refers to it (`projects/P/attestors/NAME` is stored as
/// `NAME`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AttestorName(pub String);

impl fmt::Display for AttestorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `evaluationMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvaluationMode {
    /// Admit every image.
    AlwaysAllow,
    /// Deny every image.
    AlwaysDeny,
    /// Admit only images attested by every attestor of `requireAttestationsBy`.
    RequireAttestation,
}

impl EvaluationMode {
    /// The name as written in the policy.
    pub fn as_str(self) -> &'static str {
        match self {
            EvaluationMode::AlwaysAllow => "ALWAYS_ALLOW",
            EvaluationMode::AlwaysDeny => "ALWAYS_DENY",
            EvaluationMode::RequireAttestation => "REQUIRE_ATTESTATION",
        }
    }
}

/// `enforcementMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnforcementMode {
    /// Deny and log.
    Enforced,
    /// Admit, but log (and warn) what would have been denied.
    DryRun,
}

impl EnforcementMode {
    /// The name as written in the policy.
    pub fn as_str(self) -> &'static str {
        match self {
            EnforcementMode::Enforced => "ENFORCED_BLOCK_AND_AUDIT_LOG",
            EnforcementMode::DryRun => "DRYRUN_AUDIT_LOG_ONLY",
        }
    }
}

/// One admission rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// What it demands.
    pub evaluation: EvaluationMode,
    /// What happens on a denial.
    pub enforcement: EnforcementMode,
    /// Attestors that must all have attested (for `REQUIRE_ATTESTATION`; empty otherwise).
    pub require: Vec<AttestorName>,
    /// `requireAttestationsThreshold`: groups of attestors of which at least so many must have
    /// attested (two of three QA approvers); every group must be met, besides `require`.
    pub thresholds: Vec<Threshold>,
    /// Where the rule is written.
    pub span: Span,
}

/// At least `count` of the attestors `from` must have attested (M of N).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Threshold {
    /// M.
    pub count: usize,
    /// The N attestors, distinct.
    pub from: Vec<AttestorName>,
    /// Where it is written.
    pub span: Span,
}

/// How a simple-signing payload's `docker-reference` must relate to the image (containers/image
/// `signedIdentity` vocabulary).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SignedIdentity {
    /// The digest alone binds (default): mirrors keep working.
    #[default]
    MatchDigest,
    /// The signed reference's repository must be the image's.
    MatchRepository,
    /// The image's name, with `prefix` replaced by `signed_prefix`, must be the signed
    /// repository (`registry.corp/team` signed as `ghcr.io/team`).
    RemapIdentity {
        /// Prefix of the image name as deployed.
        prefix: String,
        /// The same prefix as it was signed.
        signed_prefix: String,
    },
}

/// A compiled CEL condition over the verified in-toto statement (variable `statement`).
#[derive(Clone)]
pub struct Condition {
    /// The expression as written.
    pub source: String,
    /// The compiled program.
    pub program: Arc<cel::Program>,
    /// Where it is written.
    pub span: Span,
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("source", &self.source)
            .field("span", &self.span)
            .finish()
    }
}

/// An authority whose signatures or attestations a rule can require.
#[derive(Debug, Clone)]
pub struct Attestor {
    /// Its name.
    pub name: AttestorName,
    /// Its PKIX keys; any one verifying is enough (rotation). Binary Authorization PKIX keys
    /// are here too, so cosign-format evidence they signed counts as well.
    pub keys: Vec<PublicKey>,
    /// Its Binary Authorization keys (`userOwnedGrafeasNote.publicKeys`: PKIX with their `id`,
    /// and PGP), for Binary Authorization attestations.
    pub note_keys: Vec<NoteKey>,
    /// The predicate type its evidence must have; `None`: any (a plain signature counts).
    pub predicate_type: Option<String>,
    /// Conditions its attestation must satisfy (all of them).
    pub conditions: Vec<Condition>,
    /// Identity check for simple-signing payloads.
    pub signed_identity: SignedIdentity,
    /// `maxAge`: evidence signed longer ago than this no longer counts; evidence without a
    /// signed time does not count at all.
    pub max_age: Option<Duration>,
    /// `validFrom`/`validUntil` of its keys, by key id (keys without a window are absent).
    pub key_windows: BTreeMap<KeyId, KeyWindow>,
    /// Certificate trust (`keyless`: a Sigstore trusted root and identities; `certificates`:
    /// the user's own CA and identities): bundles signed with a certificate one of these
    /// accepts count for the attestor.
    pub keyless: Vec<signet_core::keyless::KeylessTrust>,
    /// Where it is written.
    pub span: Span,
}

/// When a key may sign: evidence it signed outside the window does not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyWindow {
    /// `validFrom`: nothing signed before counts.
    pub valid_from: Option<SystemTime>,
    /// `validUntil`: nothing signed after counts.
    pub valid_until: Option<SystemTime>,
}

impl KeyWindow {
    /// Whether `at` lies in the window (both ends included).
    pub fn contains(&self, at: SystemTime) -> bool {
        self.valid_from.is_none_or(|from| at >= from)
            && self.valid_until.is_none_or(|until| at <= until)
    }
}

impl fmt::Display for KeyWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |t: Option<SystemTime>| {
            t.map_or("-".to_string(), |t| {
                humantime::format_rfc3339_seconds(t).to_string()
            })
        };
        write!(
            f,
            "valid {} to {}",
            show(self.valid_from),
            show(self.valid_until)
        )
    }
}

/// An entry of `revokedKeys`.
#[derive(Debug, Clone)]
pub struct RevokedKey {
    /// The key.
    pub key_id: KeyId,
    /// `revokedAt`: evidence with a trusted signing time before this still counts. `None`:
    /// nothing the key signed counts.
    pub revoked_at: Option<SystemTime>,
    /// Why, for decisions.
    pub reason: String,
    /// Where it is written.
    pub span: Span,
}

impl Attestor {
    /// Short ids of all its keys, for messages: PKIX key digests and PGP key ids.
    pub fn key_labels(&self) -> Vec<String> {
        let mut labels: Vec<String> = self.keys.iter().map(|k| k.id().short()).collect();
        for key in &self.note_keys {
            if let NoteKey::Pgp(_) = key {
                labels.push(format!("pgp {}", key.key_id().short()));
            }
        }
        labels
    }
}

/// `globalPolicyEvaluationMode` (Binary Authorization export); recorded, see the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GlobalEvaluationMode {
    /// Not set.
    #[default]
    Unspecified,
    /// `ENABLE`.
    Enable,
    /// `DISABLE`.
    Disable,
}

/// What evidence a multi-platform image needs (`multiPlatform`, a signet extension; Binary
/// Authorization has no such setting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiPlatform {
    /// `indexEvidenceCoversPlatforms` (default true): an image pinned to a platform manifest's
    /// digest is covered by evidence on an index that lists that digest, when signet can find
    /// the index (from the tag the reference carries). An index digest fixes its children, so
    /// this is sound; turn it off to demand evidence on every platform manifest itself.
    pub index_covers_platforms: bool,
    /// `requireEvidenceOn`: what an image pinned to an index digest needs.
    pub require: IndexRequirement,
    /// `platforms`: with `everyPlatform`, only these (`os/architecture[/variant]`) are checked,
    /// and each must be in the index; empty: every platform manifest the index lists.
    pub platforms: Vec<String>,
}

impl Default for MultiPlatform {
    fn default() -> Self {
        MultiPlatform {
            index_covers_platforms: true,
            require: IndexRequirement::Index,
            platforms: Vec::new(),
        }
    }
}

/// `multiPlatform.requireEvidenceOn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IndexRequirement {
    /// `index` (default): evidence on the index digest is enough.
    #[default]
    Index,
    /// `everyPlatform`: the index and every platform manifest it lists (or those of
    /// `platforms`) must each satisfy the rule, so a node of any platform pulls attested bytes.
    EveryPlatform,
}

impl IndexRequirement {
    /// The name as written in the policy.
    pub fn as_str(self) -> &'static str {
        match self {
            IndexRequirement::Index => "index",
            IndexRequirement::EveryPlatform => "everyPlatform",
        }
    }
}

/// A checked policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The file it was loaded from (for messages).
    pub path: PathBuf,
    /// `registryAllowlist`; `None` when absent (any registry).
    pub registry_allowlist: Option<Vec<Glob>>,
    /// `admissionWhitelistPatterns` / `admissionAllowlistPatterns`.
    pub exempt: Vec<Glob>,
    /// `defaultAdmissionRule`.
    pub default_rule: Rule,
    /// `clusterAdmissionRules`, by cluster name.
    pub cluster_rules: BTreeMap<String, Rule>,
    /// `kubernetesNamespaceAdmissionRules`, by namespace.
    pub namespace_rules: BTreeMap<String, Rule>,
    /// `kubernetesServiceAccountAdmissionRules`, by `namespace:name`.
    pub service_account_rules: BTreeMap<String, Rule>,
    /// `attestors`, by name.
    pub attestors: BTreeMap<AttestorName, Attestor>,
    /// `globalPolicyEvaluationMode`.
    pub global_evaluation_mode: GlobalEvaluationMode,
    /// `name` (Binary Authorization's resource name), informational.
    pub name: Option<String>,
    /// `multiPlatform`.
    pub multi_platform: MultiPlatform,
    /// `revokedKeys`: keys whose evidence no longer counts (see [`RevokedKey`]).
    pub revoked_keys: Vec<RevokedKey>,
    /// `timestampAuthorities`: the TSAs whose RFC 3161 timestamps are trusted signing times.
    pub timestamp_authorities: Vec<signet_core::timestamp::TimestampAuthority>,
    /// Not from the file: the time [`Policy::evaluate`] decides as of (`signet verify --at`),
    /// `None` for now. The daemon never sets it.
    pub as_of: Option<SystemTime>,
}
