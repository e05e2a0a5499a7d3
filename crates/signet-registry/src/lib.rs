//! The signet store: everything that talks to an OCI registry.
//!
//! This crate owns reading and writing manifests, blobs and referrers (through the OCI 1.1
//! referrers API, the `sha256-<hex>` fallback index and cosign's legacy `.sig`/`.att` tags),
//! registry authentication, and the same interface over an on-disk OCI image layout.
//!
//! It must not decide anything: it hands back bytes whose digests it has checked, and leaves
//! signature verification to `signet-core` and decisions to `signet-policy`.
//!
//! Status: the client lands with the registry-attestations issue; this crate is a placeholder
//! that only fixes the layering.
