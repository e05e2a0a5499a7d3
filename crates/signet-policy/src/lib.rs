//! The signet policy: Binary Authorization's model over registry evidence.
//!
//! This crate owns the policy file (parsing with precise errors, validation), choosing the rule
//! that applies to an admission context, and turning verified evidence into a decision with
//! reasons.
//!
//! It must stay pure and deterministic: no I/O beyond reading the policy's own key files at load
//! time, no async, no clock. The same policy and evidence always give the same decision.
//!
//! Status: lands with the policy-engine issue.
