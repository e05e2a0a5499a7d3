//! A library must not choose the process's TLS crypto provider (issue 11): without one, `bind`
//! says so instead of installing ring behind the caller's back.
//!
//! The provider is process-wide, so this is its own test binary: no other test in this process
//! can have installed one first.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test: a broken set-up should fail the test loudly"
)]

use signet_server::{ServerConfig, ServerError};

#[tokio::test]
async fn bind_without_a_crypto_provider_fails_instead_of_installing_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(
        &path,
        "defaultAdmissionRule: {evaluationMode: ALWAYS_ALLOW, enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG}\n",
    )
    .unwrap();
    let mut config = ServerConfig::danger_plain_http(&path);
    config.listen = "127.0.0.1:0".parse().unwrap();

    assert!(rustls::crypto::CryptoProvider::get_default().is_none());
    match signet_server::bind(config).await {
        Err(ServerError::NoCryptoProvider) => {}
        Err(other) => panic!("expected NoCryptoProvider, got {other}"),
        Ok(server) => {
            server.shutdown().await.unwrap();
            panic!("the server started without a crypto provider installed by the program");
        }
    }
    assert!(
        rustls::crypto::CryptoProvider::get_default().is_none(),
        "the library installed a crypto provider"
    );
}
