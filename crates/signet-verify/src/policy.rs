//! Verification under a policy: choose the rule, gather evidence once, check it against each
//! required attestor's keys, and let the policy decide.

use std::collections::BTreeMap;

use signet_core::digest::Digest;
use signet_core::reference::{ImageRef, PinnedRef};
use signet_core::timestamp::TimestampAuthority;
use signet_policy::Decision;
use signet_policy::Policy;
use signet_policy::evaluate::{AdmissionContext, AttestorEvidence, Need, Proof};
use signet_policy::model::Attestor;
use signet_registry::{Client, RegistryError, Repository};

use crate::gather::{DEFAULT_MAX_EVIDENCE_BYTES, Evidence, Filter, gather};
use crate::proof::{Checked, any_id_note_keys, check_with};

/// Decides whether `image` may run in `ctx` under `policy`. Registry calls happen only when
/// the rule needs evidence; a tag is resolved once and only the digest is verified.
pub async fn verify_with_policy(
    client: &Client,
    policy: &Policy,
    image: &ImageRef,
    ctx: &AdmissionContext,
) -> Result<Decision, RegistryError> {
    // Making the repository handle costs nothing; it is contacted only if evidence is needed.
    verify_with_policy_in(
        &Repository::new(client, image),
        policy,
        image,
        ctx,
        DEFAULT_MAX_EVIDENCE_BYTES,
    )
    .await
}

/// [`verify_with_policy`] for an image in `repo`, a registry repository or an OCI layout.
/// `image` is the name the policy judges (for a layout, its identity from
/// [`signet_registry::Layout::resolve_ref`]); `repo` is read only when the rule needs evidence.
/// At most `max_evidence_bytes` of evidence blobs are fetched (see [`Filter::max_bytes`]).
pub async fn verify_with_policy_in(
    repo: &Repository,
    policy: &Policy,
    image: &ImageRef,
    ctx: &AdmissionContext,
    max_evidence_bytes: u64,
) -> Result<Decision, RegistryError> {
    verify_with_policy_through(repo, policy, image, ctx, max_evidence_bytes, None).await
}

/// [`verify_with_policy_in`], with the index whose evidence may cover a platform manifest
/// given explicitly rather than found from the reference's tag (it must list the digest).
pub async fn verify_with_policy_through(
    repo: &Repository,
    policy: &Policy,
    image: &ImageRef,
    ctx: &AdmissionContext,
    max_evidence_bytes: u64,
    index: Option<&signet_core::digest::Digest>,
) -> Result<Decision, RegistryError> {
    let attestors = match policy.needs(image, ctx) {
        Need::Nothing => {
            // No evidence needed; report the digest when the reference carries one, without
            // contacting a registry that may be untrusted.
            return Ok(policy.evaluate(image, image.digest(), ctx, &BTreeMap::new()));
        }
        Need::Attestors(attestors) => attestors,
    };
    let pinned = repo.resolve(image).await?;
    // Fetch only what some attestor could use: if every attestor demands a predicate type,
    // evidence claiming another type is never downloaded.
    // Withdrawals are always fetched: filtering them out would keep withdrawn evidence alive.
    let predicate_types = if attestors.iter().all(|a| a.predicate_type.is_some()) {
        attestors
            .iter()
            .filter_map(|a| a.predicate_type.clone())
            .chain([signet_core::intoto::WITHDRAWAL_PREDICATE.to_string()])
            .collect()
    } else {
        Vec::new()
    };
    let filter = Filter {
        predicate_types,
        max_bytes: max_evidence_bytes,
    };
    let found = gather(repo, &pinned, &filter).await?;
    let first = decide_with_evidence(policy, image, &pinned, ctx, &found);
    let source = RepositorySource { repo, filter };
    crate::platforms::follow_up(policy, image, &pinned, ctx, &source, first, index).await
}

/// Follow-ups read straight from the repository.
struct RepositorySource<'r> {
    repo: &'r Repository,
    filter: Filter,
}

impl crate::platforms::Source for RepositorySource<'_> {
    type Error = RegistryError;

    async fn evidence(
        &self,
        pinned: &PinnedRef,
    ) -> Result<std::sync::Arc<Vec<Evidence>>, RegistryError> {
        gather(self.repo, pinned, &self.filter)
            .await
            .map(std::sync::Arc::new)
    }

    async fn manifest_by_tag(
        &self,
        _image: &ImageRef,
        tag: &str,
    ) -> Result<Option<signet_registry::FetchedManifest>, RegistryError> {
        self.repo.get_manifest_by_tag(tag).await
    }

    async fn manifest(
        &self,
        _image: &ImageRef,
        digest: &signet_core::digest::Digest,
    ) -> Result<signet_registry::FetchedManifest, RegistryError> {
        self.repo.get_manifest(digest).await
    }
}

/// Checks every piece of `found` against `attestor`'s keys for `digest`, as a decision does:
/// what verified (the proofs) and what did not, with typed reasons. Pure. The daemon's decision
/// explorer shows this per attestor.
/// RFC 3161 timestamps count as trusted times when they verify against `authorities` (the
/// policy's `timestampAuthorities`).
pub fn check_for_attestor(
    attestor: &Attestor,
    found: &[Evidence],
    digest: &Digest,
    authorities: &[TimestampAuthority],
) -> Checked {
    // signet's own `publicKeys` have no Binary Authorization ids: a Binary Authorization
    // attestation counts when one of them verifies it, whatever id it names (as with
    // `verify --key`).
    let any_id;
    let note_keys = if attestor.note_keys.is_empty() {
        any_id = any_id_note_keys(&attestor.keys);
        &any_id
    } else {
        &attestor.note_keys
    };
    check_with(
        found,
        &attestor.keys,
        note_keys,
        digest,
        authorities,
        &attestor.keyless,
    )
}

/// Decides with evidence already gathered for `pinned` (for callers that cache evidence per
/// digest, like the daemon). Pure: checks signatures against each required attestor's keys,
/// then lets the policy decide. `image` is the reference as given (for allowlist and exempt
/// patterns and for display).
pub fn decide_with_evidence(
    policy: &Policy,
    image: &ImageRef,
    pinned: &PinnedRef,
    ctx: &AdmissionContext,
    found: &[Evidence],
) -> Decision {
    let attestors = match policy.needs(image, ctx) {
        Need::Nothing => Vec::new(),
        Need::Attestors(attestors) => attestors,
    };
    // The proofs are checked per attestor (its keys), then lent to the policy as such.
    let checked: Vec<(&signet_policy::model::AttestorName, Checked)> = attestors
        .iter()
        .map(|a| {
            let checked =
                check_for_attestor(a, found, pinned.digest(), &policy.timestamp_authorities);
            (&a.name, checked)
        })
        .collect();
    let by_attestor = checked
        .iter()
        .map(|(name, checked)| {
            let evidence = AttestorEvidence {
                accepted: checked.accepted.iter().map(|a| a as &dyn Proof).collect(),
                rejected: checked.rejected.clone(),
            };
            ((*name).clone(), evidence)
        })
        .collect::<BTreeMap<_, _>>();
    policy.evaluate(image, Some(pinned.digest()), ctx, &by_attestor)
}
