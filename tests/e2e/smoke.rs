//! Smoke tests of the harness itself: each registry variant takes a small OCI image and gives
//! it back byte for byte when asked by digest. If these fail, nothing else in the suite can
//! pass.

use oci_client::Client;
use oci_client::Reference;
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{IMAGE_CONFIG_MEDIA_TYPE, IMAGE_LAYER_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE};
use oci_client::secrets::RegistryAuth;
use reqwest::header::HeaderValue;
use sha2::{Digest as _, Sha256};

use crate::harness::{self, Registry};

/// `sha256:<hex>` of `bytes`.
fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A tiny image: one layer, its config and the manifest tying them together, as the exact
/// bytes that go over the wire.
struct TestImage {
    config: Vec<u8>,
    layer: Vec<u8>,
    manifest: Vec<u8>,
}

impl TestImage {
    fn new() -> Self {
        // The registry never looks inside a layer, so a few bytes do; the config's diff_id is
        // the layer digest because the layer is (nominally) an uncompressed tar.
        let layer = b"signet e2e smoke layer\n".to_vec();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "rootfs": { "type": "layers", "diff_ids": [sha256_digest(&layer)] },
        }))
        .unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_IMAGE_MEDIA_TYPE,
            "config": {
                "mediaType": IMAGE_CONFIG_MEDIA_TYPE,
                "digest": sha256_digest(&config),
                "size": config.len(),
            },
            "layers": [{
                "mediaType": IMAGE_LAYER_MEDIA_TYPE,
                "digest": sha256_digest(&layer),
                "size": layer.len(),
            }],
        }))
        .unwrap();
        Self {
            config,
            layer,
            manifest,
        }
    }

    fn manifest_digest(&self) -> String {
        sha256_digest(&self.manifest)
    }

    /// Pushes blobs then manifest (the registry refuses a manifest whose blobs are missing),
    /// tagged `tag`; returns the manifest digest.
    async fn push(
        &self,
        client: &Client,
        auth: &RegistryAuth,
        registry: &Registry,
        repository: &str,
        tag: &str,
    ) -> Result<String, OciDistributionError> {
        let reference = Reference::with_tag(registry.host(), repository.to_owned(), tag.to_owned());
        // push_blob uses stored credentials only; the higher-level calls store them themselves.
        client.store_auth_if_needed(&registry.host(), auth).await;
        for blob in [&self.config, &self.layer] {
            client
                .push_blob(&reference, blob.clone(), &sha256_digest(blob))
                .await?;
        }
        client
            .push_manifest_raw(
                &reference,
                self.manifest.clone(),
                HeaderValue::from_static(OCI_IMAGE_MEDIA_TYPE),
            )
            .await?;
        Ok(self.manifest_digest())
    }
}

fn client_for(registry: &Registry) -> Client {
    harness::install_crypto_provider();
    // try_from, not new: `Client::new` swallows a bad config and uses the defaults instead.
    Client::try_from(registry.oci_client_config()).unwrap()
}

/// Pushes [`TestImage`] and reads it back by digest: the manifest must hash to the digest it
/// was asked for, and both blobs must come back identical.
async fn push_then_pull_by_digest(registry: &Registry) {
    let client = client_for(registry);
    let auth = registry.oci_auth();
    let image = TestImage::new();
    let repository = "signet/smoke";

    let digest = image
        .push(&client, &auth, registry, repository, "v1")
        .await
        .unwrap_or_else(|e| {
            panic!(
                "push to {}: {e}\nregistry log:\n{}",
                registry.url(),
                registry.log()
            )
        });

    let by_digest = Reference::with_digest(registry.host(), repository.to_owned(), digest.clone());
    let (manifest, returned_digest) = client
        .pull_manifest_raw(&by_digest, &auth, &[OCI_IMAGE_MEDIA_TYPE])
        .await
        .unwrap();
    assert_eq!(
        sha256_digest(&manifest),
        digest,
        "manifest bytes do not hash to the digest"
    );
    assert_eq!(returned_digest, digest);
    assert_eq!(manifest.as_ref(), image.manifest.as_slice());

    for (name, blob) in [("config", &image.config), ("layer", &image.layer)] {
        let mut pulled = Vec::new();
        client
            .pull_blob(&by_digest, sha256_digest(blob).as_str(), &mut pulled)
            .await
            .unwrap_or_else(|e| panic!("pull {name} blob: {e}"));
        assert_eq!(&pulled, blob, "{name} blob differs");
    }

    // The blobs are in the registry's own storage directory, not somewhere else.
    // Layout: docker/registry/v2/blobs/sha256/<first two hex digits>/<hex>/data.
    let hex = digest.trim_start_matches("sha256:");
    let data = registry
        .storage_dir()
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    assert_eq!(
        std::fs::read(&data).unwrap(),
        image.manifest,
        "{}",
        data.display()
    );
}

/// Whether the registry said 401. oci-client reports it as `UnauthorizedError` on some paths
/// (manifest pulls) and as a `ServerError` with code 401 on others (blob uploads).
fn is_unauthorized(e: &OciDistributionError) -> bool {
    matches!(
        e,
        OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::ServerError { code: 401, .. }
    )
}

/// The whole chain of an error, so assertions can look past reqwest's terse top level.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

mod plain {
    use super::*;
    use crate::harness::Options;

    #[tokio::test]
    async fn push_then_pull_by_digest() {
        let registry = Registry::start(Options::plain());
        assert!(registry.url().starts_with("http://127.0.0.1:"));
        super::push_then_pull_by_digest(&registry).await;
    }
}

mod basic_auth {
    use super::*;
    use crate::harness::Options;

    #[tokio::test]
    async fn push_then_pull_by_digest() {
        let registry = Registry::start(Options::basic_auth());
        assert!(matches!(registry.oci_auth(), RegistryAuth::Basic(..)));
        super::push_then_pull_by_digest(&registry).await;
    }

    #[tokio::test]
    async fn wrong_password_is_refused() {
        let registry = Registry::start(Options::basic_auth());
        let client = client_for(&registry);
        let username = registry.credentials().unwrap().username.clone();
        let wrong = RegistryAuth::Basic(username, "not-the-password".to_owned());

        let err = TestImage::new()
            .push(&client, &wrong, &registry, "signet/smoke", "v1")
            .await
            .unwrap_err();
        assert!(
            is_unauthorized(&err),
            "expected an authentication error, got: {err:?}"
        );
    }

    #[tokio::test]
    async fn anonymous_pull_is_refused() {
        let registry = Registry::start(Options::basic_auth());
        let client = client_for(&registry);
        let reference =
            Reference::with_tag(registry.host(), "signet/smoke".to_owned(), "v1".to_owned());
        let err = client
            .pull_manifest_raw(
                &reference,
                &RegistryAuth::Anonymous,
                &[OCI_IMAGE_MEDIA_TYPE],
            )
            .await
            .unwrap_err();
        assert!(
            is_unauthorized(&err),
            "expected an authentication error, got: {err:?}"
        );
    }
}

mod tls {
    use super::*;
    use crate::harness::Options;
    use oci_client::client::{ClientConfig, ClientProtocol};

    #[tokio::test]
    async fn push_then_pull_by_digest() {
        let registry = Registry::start(Options::tls());
        assert!(registry.url().starts_with("https://127.0.0.1:"));
        let pem = std::fs::read(registry.ca_pem_path().unwrap()).unwrap();
        assert_eq!(Some(pem.as_slice()), registry.ca_pem());
        super::push_then_pull_by_digest(&registry).await;
    }

    #[tokio::test]
    async fn with_basic_auth_push_then_pull_by_digest() {
        let registry = Registry::start(Options::tls().with_basic_auth());
        super::push_then_pull_by_digest(&registry).await;
    }

    #[tokio::test]
    async fn unknown_ca_is_refused() {
        let registry = Registry::start(Options::tls());
        harness::install_crypto_provider();
        let client = Client::try_from(ClientConfig {
            protocol: ClientProtocol::Https,
            ..ClientConfig::default()
        })
        .unwrap();
        let reference =
            Reference::with_tag(registry.host(), "signet/smoke".to_owned(), "v1".to_owned());
        let err = client
            .pull_manifest_raw(
                &reference,
                &RegistryAuth::Anonymous,
                &[OCI_IMAGE_MEDIA_TYPE],
            )
            .await
            .unwrap_err();
        let chain = error_chain(&err);
        assert!(
            matches!(err, OciDistributionError::RequestError(_)) && chain.contains("certificate"),
            "expected a certificate error, got: {chain}"
        );
    }
}
