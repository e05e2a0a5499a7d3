//! The signet store: everything that talks to an OCI registry.
//!
//! This crate owns reading and writing manifests, blobs and referrers (through the OCI 1.1
//! referrers API, the `sha256-<hex>` fallback index and cosign's legacy `.sig`/`.att` tags),
//! and registry authentication (anonymous, basic, bearer tokens; `~/.docker/config.json` with
//! credential helpers; explicit credentials).
//!
//! The same [`Repository`] interface also works over an OCI image layout on disk, a directory
//! (`oci:PATH`) or a tarball (`oci-archive:FILE`): see [`Layout`] and [`Location`].
//!
//! It must not decide anything: it hands back bytes whose digests it has checked, and leaves
//! signature verification to `signet-core` and decisions to `signet-policy`. Every read is
//! bounded in size, every operation in time.
#![forbid(unsafe_code)]

pub mod auth;
mod client;
mod error;
mod hashing;
mod layout;
mod location;
pub mod mirror;
pub mod publish;
mod referrers;
mod repository;
mod store;
mod stream;
mod tag_or_digest;
mod transfer;

pub use client::{
    AllowedHosts, Client, ClientOptions, Egress, FetchedManifest, Limits, Precondition,
    PutManifest, ReferrersSupport, ResponseCounts, is_loopback,
};
pub use error::RegistryError;
pub use layout::{
    Layout, LayoutImage, LayoutKind, LayoutRef, Location, OpenMode, ScratchDir,
    remove_unpacked_archives,
};
pub use location::{ImportImage, ImportTarget, OpenedImage};
pub use referrers::{Referrers, ReferrersSource, referrer_descriptor, referrer_tag};
pub use repository::Repository;
/// URLs, as the TSA client takes them (`reqwest::Url`).
pub use reqwest::Url;
pub use store::ReferrersApi;
pub use stream::ByteStream;
pub use tag_or_digest::TagOrDigest;

/// Entry points for the fuzz targets in `fuzz/`, which cannot reach these private parsers
/// otherwise; the public API should not grow for fuzzing. Behind the off-by-default `fuzzing`
/// feature.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::auth::fuzzing::docker_config_credentials;
    pub use crate::layout::fuzzing::archive_index_digest;
    pub use crate::referrers::fuzzing::merge_fallback;
}
