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

/// Pushes a multi-platform image: one manifest per `(architecture, layers)`, each layer's
/// bytes given, and an OCI index over them at `repository:tag`. Returns `host/repository:tag`,
/// the index digest and the platform manifest digests, in order.
pub(crate) fn push_index(
    registry_host: &str,
    repository: &str,
    tag: &str,
    platforms: &[(&str, Vec<Vec<u8>>)],
) -> (String, String, Vec<String>) {
    use oci_client::manifest::{OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE, OciImageIndex};
    use oci_client::secrets::RegistryAuth;

    crate::harness::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = Client::try_from(oci_client::client::ClientConfig {
            protocol: oci_client::client::ClientProtocol::Http,
            ..Default::default()
        })
        .unwrap();
        let auth = RegistryAuth::Anonymous;
        let mut entries = Vec::new();
        let mut digests = Vec::new();
        for (arch, contents) in platforms {
            let layers: Vec<ImageLayer> = contents
                .iter()
                .map(|c| ImageLayer::new(c.clone(), IMAGE_LAYER_MEDIA_TYPE.to_string(), None))
                .collect();
            let config = Config::oci_v1(
                format!(r#"{{"architecture":"{arch}","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}}}}"#)
                    .into_bytes(),
                None,
            );
            let manifest = OciImageManifest::build(&layers, &config, None);
            let platform_tag = format!("{tag}-{arch}");
            let reference = Reference::with_tag(
                registry_host.to_owned(),
                repository.to_owned(),
                platform_tag,
            );
            client
                .push(&reference, &layers, config, &auth, Some(manifest))
                .await
                .unwrap();
            let (bytes, digest) = client
                .pull_manifest_raw(&reference, &auth, &[OCI_IMAGE_MEDIA_TYPE])
                .await
                .unwrap();
            entries.push(serde_json::json!({
                "mediaType": OCI_IMAGE_MEDIA_TYPE,
                "digest": digest,
                "size": bytes.len(),
                "platform": {"architecture": arch, "os": "linux"},
            }));
            digests.push(digest);
        }
        let index: OciImageIndex = serde_json::from_value(serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_IMAGE_INDEX_MEDIA_TYPE,
            "manifests": entries,
        }))
        .unwrap();
        let reference =
            Reference::with_tag(registry_host.to_owned(), repository.to_owned(), tag.to_owned());
        client
            .push_manifest_list(&reference, &auth, index)
            .await
            .unwrap();
        let (_, digest) = client
            .pull_manifest_raw(&reference, &auth, &[OCI_IMAGE_INDEX_MEDIA_TYPE])
            .await
            .unwrap();
        (
            format!("{registry_host}/{repository}:{tag}"),
            digest,
            digests,
        )
    })
}
