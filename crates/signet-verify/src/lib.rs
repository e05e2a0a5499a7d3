//! The signet verification engine, shared by the CLI and the daemon.
//!
//! This crate owns the path from an image reference to a decision: resolve the tag once,
//! discover and fetch evidence through `signet-registry`, verify it with `signet-core`, and
//! decide with `signet-policy`; plus caches, request coalescing, concurrency limits and
//! deadlines.
//!
//! It must not speak HTTP to clients or parse command lines; that is the daemon's and the
//! binary's job.
//!
//! Status: lands with the registry-attestations and policy issues.
