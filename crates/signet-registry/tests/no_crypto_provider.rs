//! A library must not choose the process's TLS crypto provider (issue 11): without one,
//! `Client::new` says so instead of installing ring behind the caller's back.
//!
//! The provider is process-wide, so this is its own test binary: no other test in this process
//! can have installed one first.

#![allow(
    clippy::panic,
    reason = "test: a broken set-up should fail the test loudly"
)]

use signet_registry::{Client, ClientOptions, RegistryError};

#[test]
fn client_without_a_crypto_provider_fails_instead_of_installing_one() {
    assert!(rustls::crypto::CryptoProvider::get_default().is_none());
    let result = Client::new(ClientOptions::default());
    assert!(
        matches!(result, Err(RegistryError::NoCryptoProvider)),
        "expected NoCryptoProvider, got {:?}",
        result.err()
    );
    assert!(
        rustls::crypto::CryptoProvider::get_default().is_none(),
        "the library installed a crypto provider"
    );

    // Once the program has installed one, the same call works.
    rustls::crypto::ring::default_provider()
        .install_default()
        .unwrap_or_else(|_| panic!("a provider appeared from elsewhere"));
    assert!(Client::new(ClientOptions::default()).is_ok());
}
