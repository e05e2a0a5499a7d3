//! Proof values: what a successful verification hands back.

use crate::keys::KeyId;

/// A value whose signature has been checked against a trusted key.
///
/// Only this crate's verifiers construct it, so holding a `Verified<T>` is proof that the check
/// ran and passed; there is no boolean to forget to test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<T> {
    value: T,
    key_id: KeyId,
}

impl<T> Verified<T> {
    pub(crate) fn new(value: T, key_id: KeyId) -> Self {
        Verified { value, key_id }
    }

    /// Replaces the value by one derived from it, keeping the proof. Crate-private: deriving
    /// must not become a way to attach a proof to unrelated data.
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> Verified<U> {
        Verified {
            value: f(self.value),
            key_id: self.key_id,
        }
    }

    /// The verified value.
    pub fn value(&self) -> &T {
        &self.value
    }

    /// The id of the key whose signature verified.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// The verified value, giving up the proof.
    pub fn into_inner(self) -> T {
        self.value
    }
}
