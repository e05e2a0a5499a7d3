//! Test images pushed with an independent client (`oci-client`), so that signet reads what
//! another implementation wrote.

use oci_client::Reference;
use oci_client::client::{Client, Config, ImageLayer};
use oci_client::manifest::{IMAGE_LAYER_MEDIA_TYPE, OciImageManifest};

use crate::harness::Registry;

/// Pushes a one-layer image whose layer holds `content` to `repository:tag`; returns
/// `host/repository:tag` and the manifest digest.
pub(crate) fn push_image(
    registry: &Registry,
    repository: &str,
    tag: &str,
    content: &[u8],
) -> (String, String) {
    crate::harness::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = Client::try_from(registry.oci_client_config()).unwrap();
        let reference = Reference::with_tag(registry.host(), repository.to_owned(), tag.to_owned());
        let layers = vec![ImageLayer::new(
            content.to_vec(),
            IMAGE_LAYER_MEDIA_TYPE.to_string(),
            None,
        )];
        let config = Config::oci_v1(br#"{"architecture":"amd64","os":"linux"}"#.to_vec(), None);
        let manifest = OciImageManifest::build(&layers, &config, None);
        let pushed = client
            .push(
                &reference,
                &layers,
                config,
                &registry.oci_auth(),
                Some(manifest),
            )
            .await
            .unwrap();
        let digest = pushed.manifest_url.rsplit('/').next().unwrap().to_string();
        assert!(digest.starts_with("sha256:"), "{}", pushed.manifest_url);
        (format!("{}/{repository}:{tag}", registry.host()), digest)
    })
}
