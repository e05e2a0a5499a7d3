//! The signet policy: Binary Authorization's model over registry evidence.
//!
//! This crate owns the policy file (parsing with precise errors, validation), choosing the rule
//! that applies to an admission context, and turning verified evidence into a decision with
//! reasons.
//!
//! It must stay pure and deterministic: no I/O beyond reading the policy's own key files at load
//! time, no async, no clock. The same policy and evidence always give the same decision, with
//! the same reasons in the same order.
#![forbid(unsafe_code)]

pub mod decision;
pub mod evaluate;
pub mod glob;
pub mod load;
pub mod model;

pub use decision::Decision;
pub use load::{PolicyError, PolicyErrors, load, parse};
pub use model::Policy;
