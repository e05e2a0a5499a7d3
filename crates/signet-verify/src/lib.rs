//! The signet verification engine, shared by the CLI and the daemon.
//!
//! This crate owns the path from an image reference to a decision: resolve the tag once,
//! discover and fetch evidence through `signet-registry` ([`gather`]), turn it into proofs or
//! typed rejections with `signet-core`'s verifiers ([`check`], the only maker of [`Accepted`]),
//! and decide (with [`signet_policy`], or [`keyed_decision`] for bare keys).
//!
//! Modules: `gather` (fetch plan, what is unverified), `proof` (checking, the proof type),
//! `keyed` (`verify --key`), `policy` (`verify --policy`), `tree` (the referrers graph),
//! [`audit`] (continuous validation: the decision again for every image that runs, each
//! digest verified once per run).
//!
//! It must not speak HTTP to clients or parse command lines; that is the daemon's and the
//! binary's job.
#![forbid(unsafe_code)]

pub mod audit;
mod gather;
mod keyed;
pub mod platforms;
mod policy;
mod proof;
pub mod tree;

use signet_core::keys::PublicKey;
use signet_core::reference::ImageRef;
use signet_registry::{Client, RegistryError, Repository};

pub use gather::{Blob, DEFAULT_MAX_EVIDENCE_BYTES, Evidence, Filter, Payload, gather};
pub use keyed::with_keys as keyed_decision;
pub use policy::{
    check_for_attestor, decide_with_evidence, verify_with_policy, verify_with_policy_in,
    verify_with_policy_through,
};
pub use proof::{Accepted, Checked, check, check_with};
pub use signet_core::evidence::{Format, Location, Rejected, Rejection};
pub use signet_policy::Decision;
pub use signet_policy::decision::{Enforcement, Outcome};
pub use signet_policy::evaluate::AdmissionContext;

/// Verifies `image` against `keys`: allowed when at least one signature or attestation on the
/// digest verifies with one of them, in any format signet reads.
pub async fn verify_with_keys(
    client: &Client,
    image: &ImageRef,
    keys: &[PublicKey],
) -> Result<Decision, RegistryError> {
    verify_with_keys_in(
        &Repository::new(client, image),
        image,
        keys,
        DEFAULT_MAX_EVIDENCE_BYTES,
    )
    .await
}

/// [`verify_with_keys`] for an image in `repo`, a registry repository or an OCI layout.
/// `image` is the name the image is known by there (for a layout, its identity from
/// [`signet_registry::Layout::resolve_ref`]); a tag is resolved in `repo` once. At most
/// `max_evidence_bytes` of evidence blobs are fetched (see [`Filter::max_bytes`]).
pub async fn verify_with_keys_in(
    repo: &Repository,
    image: &ImageRef,
    keys: &[PublicKey],
    max_evidence_bytes: u64,
) -> Result<Decision, RegistryError> {
    let (pinned, found) = gather_all(repo, image, max_evidence_bytes).await?;
    let checked = check(&found, keys, pinned.digest());
    Ok(keyed::with_keys(&pinned, keys, &checked))
}

/// Verification against a certificate identity (`signet verify --certificate-identity …`,
/// `--ca-roots …`): allowed when a bundle signed with a certificate `trust` accepts binds the
/// image digest. Offline: nothing but the registry is contacted.
pub async fn verify_with_certificates_in(
    repo: &Repository,
    image: &ImageRef,
    trust: &signet_core::keyless::KeylessTrust,
    name: String,
    max_evidence_bytes: u64,
) -> Result<Decision, RegistryError> {
    let (pinned, found) = gather_all(repo, image, max_evidence_bytes).await?;
    let checked = proof::check_with(
        &found,
        &[],
        &[],
        pinned.digest(),
        &[],
        std::slice::from_ref(trust),
    );
    Ok(keyed::with_trust(&pinned, name, true, &checked))
}

/// Resolves `image` once and gathers all its evidence (no predicate filter), within
/// `max_evidence_bytes`.
async fn gather_all(
    repo: &Repository,
    image: &ImageRef,
    max_evidence_bytes: u64,
) -> Result<(signet_core::reference::PinnedRef, Vec<Evidence>), RegistryError> {
    let pinned = repo.resolve(image).await?;
    let filter = Filter {
        max_bytes: max_evidence_bytes,
        ..Filter::default()
    };
    let found = gather(repo, &pinned, &filter).await?;
    Ok((pinned, found))
}
