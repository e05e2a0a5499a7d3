//! The signet policy: Binary Authorization's model over registry evidence.
//!
//! This crate owns the policy file (parsing with precise errors, validation), choosing the rule
//! that applies to an admission context, and turning verified evidence into a decision with
//! reasons.
//!
//! It must stay pure and deterministic: no I/O beyond reading the policy's own key files at load
//! time, no async, no clock. The same policy and evidence always give the same decision, with
//! the same reasons in the same order.
//!
//! Where each part lives: [`load`](mod@load) reads and checks a policy file (privately split
//! into YAML nodes and positions, the top level and admission rules, attestors and their keys,
//! and the summary `signet policy check` prints); [`model`] holds the checked policy's types;
//! [`glob`] the image name patterns; [`evaluate`] chooses the rule for an admission context and
//! turns evidence into a [`Decision`] ([`decision`]).
#![forbid(unsafe_code)]

pub mod decision;
pub mod evaluate;
pub mod glob;
pub mod load;
pub mod model;

pub use decision::Decision;
pub use load::{PolicyError, PolicyErrors, load, parse};
pub use model::Policy;
