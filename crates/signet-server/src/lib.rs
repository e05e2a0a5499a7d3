//! The signet verifier daemon.
//!
//! This crate owns the HTTPS server: Kubernetes admission review (validate and mutate), the
//! JSON verify API, health and readiness, Prometheus metrics, the audit log, and reloading the
//! policy and TLS certificate.
//!
//! It must not verify anything itself: every decision comes from `signet-verify`.
//!
//! Status: lands with the daemon issue.
