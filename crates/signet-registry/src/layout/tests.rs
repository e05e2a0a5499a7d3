#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::io::Read as _;
use std::str::FromStr as _;

use signet_core::oci::{Index, Manifest};

use super::archive::{MAX_TAR_EXTENSION_BYTES, SHOWN_NAME_CHARS};
use super::identity::{qualified, sanitized_name};
use super::index::CONTAINERD_NAME_ANNOTATION;
use super::*;

const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

fn layout_ref(s: &str) -> LayoutRef {
    match Location::from_str(s).unwrap() {
        Location::Layout(r) => r,
        Location::Registry(r) => panic!("{s} parsed as registry reference {r}"),
    }
}

fn manifest_bytes(config: &[u8], layer: &[u8], subject: Option<Descriptor>) -> Vec<u8> {
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(oci::OCI_MANIFEST.to_string()),
        artifact_type: subject.as_ref().map(|_| "application/example".to_string()),
        config: Descriptor::of(CONFIG_TYPE, config),
        layers: vec![Descriptor::of(LAYER_TYPE, layer)],
        subject,
        annotations: BTreeMap::new(),
    };
    serde_json::to_vec(&manifest).unwrap()
}

/// Stores a one-layer image under `tag` (its blobs first) and returns its descriptor.
async fn put_image(layout: &Layout, tag: &str, content: &[u8]) -> Descriptor {
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","c":"{}"}}"#,
        Digest::sha256_of(content).hex()
    );
    layout.put_blob(config.as_bytes()).await.unwrap();
    layout.put_blob(content).await.unwrap();
    let bytes = manifest_bytes(config.as_bytes(), content, None);
    layout
        .put_manifest(
            TagOrDigest::Tag(tag),
            oci::OCI_MANIFEST,
            &bytes,
            Precondition::None,
        )
        .await
        .unwrap();
    Descriptor::of(oci::OCI_MANIFEST, &bytes)
}

/// Attaches a referrer of `subject` and returns its descriptor.
async fn put_referrer(layout: &Layout, subject: &Descriptor, content: &[u8]) -> Descriptor {
    layout.put_blob(oci::EMPTY_JSON_BYTES).await.unwrap();
    layout.put_blob(content).await.unwrap();
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(oci::OCI_MANIFEST.to_string()),
        artifact_type: Some("application/example".into()),
        config: Descriptor::of(oci::EMPTY_JSON, oci::EMPTY_JSON_BYTES),
        layers: vec![Descriptor::of("application/example", content)],
        subject: Some(subject.clone()),
        annotations: BTreeMap::from([("note".to_string(), "hello".to_string())]),
    };
    let bytes = serde_json::to_vec(&manifest).unwrap();
    layout
        .attach_referrer(&subject.digest, oci::OCI_MANIFEST, &bytes)
        .await
        .unwrap()
}

fn new_dir_layout() -> (tempfile::TempDir, Layout) {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::open(
        LayoutKind::Directory,
        &dir.path().join("My App"),
        OpenMode::CreateIfMissing,
    )
    .unwrap();
    (dir, layout)
}

fn index_of(layout: &Layout) -> Index {
    layout.read_index().unwrap()
}

#[test]
fn references_parse_as_skopeo_splits_them() {
    let r = layout_ref("oci:dir");
    assert_eq!(
        (r.kind, r.path.to_str(), r.tag, r.digest),
        (LayoutKind::Directory, Some("dir"), None, None)
    );
    let r = layout_ref("oci:/a/b:v1");
    assert_eq!(
        (r.path.to_str(), r.tag.as_deref()),
        (Some("/a/b"), Some("v1"))
    );
    let d = Digest::sha256_of(b"x");
    let r = layout_ref(&format!("oci:/a/b@{d}"));
    assert_eq!(
        (r.path.to_str(), r.tag, r.digest),
        (Some("/a/b"), None, Some(d.clone()))
    );
    let r = layout_ref(&format!("oci-archive:x.tar:v1@{d}"));
    assert_eq!(
        (r.kind, r.tag.as_deref(), r.digest),
        (LayoutKind::Archive, Some("v1"), Some(d))
    );
    // The tag is everything after the first ":" following the path.
    let r = layout_ref("oci-archive:/tmp/x.tar:127.0.0.1:5000/app:v1");
    assert_eq!(r.path.to_str(), Some("/tmp/x.tar"));
    assert_eq!(r.tag.as_deref(), Some("127.0.0.1:5000/app:v1"));
    // An "@" that is not followed by a digest belongs to the path.
    let r = layout_ref("oci:dir@home");
    assert_eq!((r.path.to_str(), r.digest), (Some("dir@home"), None));

    for bad in ["oci:", "oci-archive:", "oci::v1", "oci:dir:"] {
        let err = Location::from_str(bad).unwrap_err().to_string();
        assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
    }
    assert!(matches!(
        Location::from_str("127.0.0.1:5000/app:v1").unwrap(),
        Location::Registry(_)
    ));
    let err = Location::from_str("Foo/bar").unwrap_err().to_string();
    assert!(err.contains("must be lowercase"), "{err}");
}

#[test]
fn helper_names() {
    assert_eq!(sanitized_name(Path::new("/x/My App.tar")), "my-app");
    assert_eq!(sanitized_name(Path::new("/x/release_2.0/")), "release-2-0");
    assert_eq!(sanitized_name(Path::new("/x/--.tar")), "image");
    assert_eq!(tag_part("127.0.0.1:5000/app:v1"), "v1");
    assert_eq!(tag_part("v1"), "v1");
    assert_eq!(tag_part("host:5000/app"), "host:5000/app");
    let hex = Digest::sha256_of(b"x").hex().to_string();
    assert!(is_signature_tag(&format!("sha256-{hex}.sig")));
    assert!(is_signature_tag(&format!("sha256-{hex}")));
    assert!(is_signature_tag(&format!("sha256-{hex}.0123456789abcdef")));
    assert!(!is_signature_tag("sha256-abc.sig"));
    assert!(!is_signature_tag("v1"));
    assert!(qualified("127.0.0.1:5000/app:v1").is_some());
    assert!(qualified("localhost/app").is_some());
    assert!(qualified("team/app:v1").is_none());
    assert!(qualified("v1").is_none());
}

#[test]
fn open_missing_or_empty_without_create_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = Layout::open(LayoutKind::Directory, &missing, OpenMode::MustExist)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("no such directory") && err.contains("nope"),
        "{err}"
    );
    let err = Layout::open(LayoutKind::Directory, dir.path(), OpenMode::MustExist)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("empty"), "{err}");
    std::fs::write(dir.path().join("something"), b"x").unwrap();
    let err = Layout::open(LayoutKind::Directory, dir.path(), OpenMode::CreateIfMissing)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("no oci-layout file"), "{err}");
    let err = Layout::open(LayoutKind::Archive, &missing, OpenMode::MustExist)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("no such file"), "{err}");

    std::fs::remove_file(dir.path().join("something")).unwrap();
    std::fs::write(
        dir.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"2.0.0"}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("index.json"), Index::empty().to_json()).unwrap();
    let err = Layout::open(LayoutKind::Directory, dir.path(), OpenMode::MustExist)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("imageLayoutVersion \"2.0.0\""), "{err}");
}

#[tokio::test]
async fn created_directory_stores_and_reads_an_image_by_tag() {
    let (_dir, layout) = new_dir_layout();
    assert_eq!(
        std::fs::read_to_string(layout.path().join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let image = put_image(&layout, "v1", b"layer one").await;
    let fetched = layout.get_manifest_by_tag("v1").await.unwrap().unwrap();
    assert_eq!(fetched.digest, image.digest);
    assert_eq!(fetched.media_type, oci::OCI_MANIFEST);
    assert_eq!(
        fetched.etag.as_deref(),
        Some(image.digest.to_string().as_str())
    );
    assert!(layout.get_manifest_by_tag("v2").await.unwrap().is_none());
    let index = index_of(&layout);
    assert_eq!(index.manifests.len(), 1);
    assert_eq!(ref_name(&index.manifests[0]).unwrap(), "v1");
    assert_eq!(index.manifests[0].size, image.size);

    // The identity is the directory's name under layout.invalid, with the tag.
    let found = layout.resolve_ref(&layout_ref("oci:x")).unwrap();
    assert_eq!(
        found.pinned.to_string(),
        format!("layout.invalid/my-app:v1@{}", image.digest)
    );
    assert_eq!(found.layout.scope(), None);
    let by_tag = layout.resolve_ref(&layout_ref("oci:x:v1")).unwrap();
    assert_eq!(by_tag.pinned, found.pinned);
    let resolved = layout.resolve(&by_tag.pinned.to_image_ref()).await.unwrap();
    assert_eq!(resolved.digest(), &image.digest);
    let unpinned: ImageRef = "layout.invalid/my-app:v1".parse().unwrap();
    assert_eq!(
        layout.resolve(&unpinned).await.unwrap().digest(),
        &image.digest
    );

    // Retagging replaces the entry in place; a second tag adds one.
    let other = put_image(&layout, "v1", b"layer two").await;
    put_image(&layout, "v2", b"layer one").await;
    let index = index_of(&layout);
    assert_eq!(index.manifests.len(), 2);
    assert_eq!(index.manifests[0].digest, other.digest);
    assert_eq!(ref_name(&index.manifests[1]).unwrap(), "v2");
}

#[tokio::test]
async fn tags_and_digests_that_are_not_there_are_not_found_and_several_images_are_listed() {
    let (_dir, layout) = new_dir_layout();
    let err = layout.resolve_ref(&layout_ref("oci:x")).err().unwrap();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
    let a = put_image(&layout, "a", b"a").await;
    put_image(&layout, "b", b"b").await;
    let err = layout
        .resolve_ref(&layout_ref("oci:x"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("holds 2 images") && err.contains(":a") && err.contains(":b"),
        "{err}"
    );
    let err = layout.resolve_ref(&layout_ref("oci:x:c")).err().unwrap();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("tag c in oci:"), "{err}");
    let absent = Digest::sha256_of(b"absent");
    let err = layout
        .resolve_ref(&layout_ref(&format!("oci:x@{absent}")))
        .err()
        .unwrap();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
    let err = layout
        .resolve_ref(&layout_ref(&format!("oci:x:b@{}", a.digest)))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("tag b in"), "{err}");
    let found = layout
        .resolve_ref(&layout_ref(&format!("oci:x@{}", a.digest)))
        .unwrap();
    assert_eq!(
        found.pinned.to_string(),
        format!("layout.invalid/my-app:a@{}", a.digest)
    );
    // A digest that is a blob but no manifest is refused.
    let blob = layout.put_blob(b"not json").await.unwrap();
    let err = layout
        .resolve_ref(&layout_ref(&format!("oci:x@{blob}")))
        .err()
        .unwrap();
    assert!(matches!(err, RegistryError::Malformed { .. }), "{err}");
}

#[tokio::test]
async fn fully_qualified_names_give_identity_and_scope_for_legacy_tags() {
    let (_dir, layout) = new_dir_layout();
    let image = put_image(&layout, "127.0.0.1:5000/app:v1", b"app").await;
    put_image(&layout, "127.0.0.1:5000/other:v1", b"other").await;
    let found = layout
        .resolve_ref(&layout_ref("oci:x:127.0.0.1:5000/app:v1"))
        .unwrap();
    assert_eq!(
        found.pinned.to_string(),
        format!("127.0.0.1:5000/app:v1@{}", image.digest)
    );
    assert_eq!(found.layout.scope(), Some("127.0.0.1:5000/app"));

    // Tags written through the scoped layout carry the scope; reads find them by short tag.
    let scoped = found.layout;
    let sig = format!("{}.sig", image.digest.fallback_tag());
    let legacy = put_image(&scoped, &sig, b"legacy").await;
    assert!(
        index_of(&layout)
            .manifests
            .iter()
            .any(|d| ref_name(d) == Some(&format!("127.0.0.1:5000/app:{sig}")))
    );
    assert_eq!(
        scoped
            .get_manifest_by_tag(&sig)
            .await
            .unwrap()
            .unwrap()
            .digest,
        legacy.digest
    );
    assert!(layout.get_manifest_by_tag(&sig).await.unwrap().is_none());
    assert_eq!(
        scoped
            .tags_with_prefix(&image.digest.fallback_tag())
            .await
            .unwrap(),
        vec![sig.clone()]
    );
    // The images exclude the legacy tag.
    let images: Vec<String> = layout
        .images()
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(images, ["127.0.0.1:5000/app:v1", "127.0.0.1:5000/other:v1"]);

    // containerd's name annotation finds the entry when the user types that name, which is
    // then the identity; the bare tag gives no name from the annotation.
    let mut index = index_of(&layout);
    index.manifests[0]
        .annotations
        .insert(REF_NAME_ANNOTATION.into(), "v1".into());
    index.manifests[0].annotations.insert(
        CONTAINERD_NAME_ANNOTATION.into(),
        "docker.io/library/app:v1".into(),
    );
    std::fs::write(layout.path().join("index.json"), index.to_json()).unwrap();
    let found = layout.resolve_ref(&layout_ref("oci:x:v1")).unwrap();
    assert_eq!(
        found.pinned.to_string(),
        format!("layout.invalid/my-app:v1@{}", image.digest)
    );
    let found = layout
        .resolve_ref(&layout_ref("oci:x:docker.io/library/app:v1"))
        .unwrap();
    assert_eq!(
        found.pinned.to_string(),
        format!("docker.io/library/app:v1@{}", image.digest)
    );
}

#[tokio::test]
async fn a_layout_cannot_name_itself_only_the_typed_reference_names_it() {
    // An edited index.json names the image into a repository a policy exempts.
    let (_dir, layout) = new_dir_layout();
    let claimed = "registry.corp.example/base/x:v1";
    let image = put_image(&layout, claimed, b"anything").await;
    let layout_name = |tag: &str| format!("layout.invalid/my-app:{tag}@{}", image.digest);

    // No tag (the only image), a digest: the layout's own name, whatever ref.name says. The
    // scope still follows the entry's name, so tags stored next to it are found.
    let found = layout.resolve_ref(&layout_ref("oci:x")).unwrap();
    assert_eq!(found.pinned.to_string(), layout_name("v1"));
    assert_eq!(found.layout.scope(), Some("registry.corp.example/base/x"));
    let found = layout
        .resolve_ref(&layout_ref(&format!("oci:x@{}", image.digest)))
        .unwrap();
    assert_eq!(found.pinned.to_string(), layout_name("v1"));

    // The same through containerd's annotation, with a bare ref.name.
    let mut index = index_of(&layout);
    index.manifests[0]
        .annotations
        .insert(REF_NAME_ANNOTATION.into(), "v1".into());
    index.manifests[0]
        .annotations
        .insert(CONTAINERD_NAME_ANNOTATION.into(), claimed.into());
    std::fs::write(layout.path().join("index.json"), index.to_json()).unwrap();
    for given in [
        "oci:x".to_string(),
        "oci:x:v1".to_string(),
        format!("oci:x@{}", image.digest),
        format!("oci:x:v1@{}", image.digest),
    ] {
        let found = layout.resolve_ref(&layout_ref(&given)).unwrap();
        assert_eq!(found.pinned.to_string(), layout_name("v1"), "{given}");
        assert_eq!(found.layout.scope(), None, "{given}");
    }

    // A full reference the user types is the identity, as a registry reference is; it must
    // be the entry's name exactly.
    let found = layout
        .resolve_ref(&layout_ref(&format!("oci:x:{claimed}")))
        .unwrap();
    assert_eq!(
        found.pinned.to_string(),
        format!("{claimed}@{}", image.digest)
    );
    assert_eq!(found.layout.scope(), Some("registry.corp.example/base/x"));
    let err = layout
        .resolve_ref(&layout_ref("oci:x:registry.corp.example/base/x:v2"))
        .err()
        .unwrap();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn tag_preconditions_use_the_digest_as_etag() {
    let (_dir, layout) = new_dir_layout();
    let first = put_image(&layout, "t", b"1").await;
    let bytes = manifest_bytes(b"{}", b"2", None);
    let absent = layout
        .put_manifest(
            TagOrDigest::Tag("t"),
            oci::OCI_MANIFEST,
            &bytes,
            Precondition::Absent,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(absent, RegistryError::Status { status: 412, .. }),
        "{absent}"
    );
    let stale = layout
        .put_manifest(
            TagOrDigest::Tag("t"),
            oci::OCI_MANIFEST,
            &bytes,
            Precondition::Matches(Digest::sha256_of(b"other").to_string()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(stale, RegistryError::Status { status: 412, .. }),
        "{stale}"
    );
    let fetched = layout.get_manifest_by_tag("t").await.unwrap().unwrap();
    assert_eq!(fetched.digest, first.digest);
    layout
        .put_manifest(
            TagOrDigest::Tag("t"),
            oci::OCI_MANIFEST,
            &bytes,
            Precondition::Matches(fetched.etag.unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(
        layout
            .get_manifest_by_tag("t")
            .await
            .unwrap()
            .unwrap()
            .digest,
        Digest::sha256_of(&bytes)
    );
    layout
        .put_manifest(
            TagOrDigest::Tag("new"),
            oci::OCI_MANIFEST,
            &bytes,
            Precondition::Absent,
        )
        .await
        .unwrap();
    // A digest reference must be the bytes' digest.
    let err = layout
        .put_manifest(
            TagOrDigest::Digest(&first.digest),
            oci::OCI_MANIFEST,
            &bytes,
            Precondition::None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
}

#[tokio::test]
async fn referrers_are_found_through_their_subject() {
    let (_dir, layout) = new_dir_layout();
    let image = put_image(&layout, "v1", b"image").await;
    let other = put_image(&layout, "v2", b"other").await;
    assert!(
        layout
            .referrers(&image.digest, None)
            .await
            .unwrap()
            .descriptors
            .is_empty()
    );
    let r1 = put_referrer(&layout, &image, b"one").await;
    let r2 = put_referrer(&layout, &image, b"two").await;
    put_referrer(&layout, &other, b"three").await;
    // Attaching again adds nothing.
    let again = put_referrer(&layout, &image, b"one").await;
    assert_eq!(again, r1);
    assert_eq!(index_of(&layout).manifests.len(), 5);

    let found = layout.referrers(&image.digest, None).await.unwrap();
    assert_eq!(found.source, ReferrersSource::Layout);
    assert_eq!(found.descriptors, vec![r1.clone(), r2]);
    assert_eq!(r1.artifact_type.as_deref(), Some("application/example"));
    assert_eq!(
        r1.annotations.get("note").map(String::as_str),
        Some("hello")
    );
    assert!(!r1.annotations.contains_key(REF_NAME_ANNOTATION));
    let none = layout
        .referrers(&image.digest, Some("application/other"))
        .await
        .unwrap();
    assert!(none.descriptors.is_empty());
    // Referrers are neither images nor the default image.
    assert_eq!(layout.images().unwrap().len(), 2);
    let only: Vec<String> = layout
        .images()
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(only, ["v1", "v2"]);
}

#[tokio::test]
async fn reads_are_checked_and_bounded() {
    let (_dir, layout) = new_dir_layout();
    let image = put_image(&layout, "v1", b"image").await;
    let path = layout.blob_path(&image.digest);
    std::fs::write(&path, b"{\"tampered\":true}").unwrap();
    let err = layout.get_manifest_by_tag("v1").await.unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("manifest {} in oci:", image.digest)),
        "{err}"
    );

    let big = vec![b'x'; (16 << 20) + 1];
    let digest = layout.put_blob(&big).await.unwrap();
    let err = layout.get_blob(&digest).await.unwrap_err();
    assert!(matches!(err, RegistryError::TooLarge { .. }), "{err}");
    let missing = Digest::sha256_of(b"missing");
    let err = layout.get_blob(&missing).await.unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
    assert!(!layout.blob_exists(&missing).await.unwrap());
    assert!(layout.blob_exists(&digest).await.unwrap());
}

fn stream_of(chunks: Vec<&'static [u8]>) -> ByteStream {
    Box::pin(futures_util::stream::iter(
        chunks.into_iter().map(|c| Ok(Bytes::from_static(c))),
    ))
}

fn blob_dir_entries(layout: &Layout) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(layout.path().join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn streamed_blobs_are_checked_before_they_are_stored() {
    let (_dir, layout) = new_dir_layout();
    let digest = Digest::sha256_of(b"hello world");
    let err = layout
        .put_blob_stream(&digest, 11, stream_of(vec![b"hello ", b"there"]))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
    let err = layout
        .put_blob_stream(&digest, 11, stream_of(vec![b"hello ", b"world", b"!"]))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("longer than the 11 bytes"),
        "{err}"
    );
    let err = layout
        .put_blob_stream(&digest, 12, stream_of(vec![b"hello ", b"world"]))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("11 bytes, 12 were announced"),
        "{err}"
    );
    assert!(
        blob_dir_entries(&layout).is_empty(),
        "{:?}",
        blob_dir_entries(&layout)
    );

    layout
        .put_blob_stream(&digest, 11, stream_of(vec![b"hello ", b"world"]))
        .await
        .unwrap();
    assert_eq!(blob_dir_entries(&layout), [digest.hex()]);
    let mut stream = layout.blob_stream(&digest).await.unwrap();
    let mut read = Vec::new();
    while let Some(chunk) = stream.next().await {
        read.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(read, b"hello world");
    let err = match layout.blob_stream(&Digest::sha256_of(b"no")).await {
        Err(e) => e,
        Ok(_) => panic!("a missing blob streamed"),
    };
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn verify_all_finds_tampered_missing_and_wrongly_sized_blobs() {
    let (_dir, layout) = new_dir_layout();
    let image = put_image(&layout, "v1", b"layer").await;
    put_referrer(&layout, &image, b"sig").await;
    layout.verify_all().unwrap();

    let layer = Digest::sha256_of(b"layer");
    std::fs::write(layout.blob_path(&layer), b"LAYER").unwrap();
    let err = layout.verify_all().unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "blob {layer} hashes to {}",
            Digest::sha256_of(b"LAYER")
        )),
        "{err}"
    );

    std::fs::remove_file(layout.blob_path(&layer)).unwrap();
    let err = layout.verify_all().unwrap_err().to_string();
    assert!(
        err.contains(&format!("manifest {} lists {layer}", image.digest)),
        "{err}"
    );
    assert!(err.contains("missing"), "{err}");

    std::fs::write(layout.blob_path(&layer), b"layer").unwrap();
    let mut index = index_of(&layout);
    index.manifests[0].size += 1;
    std::fs::write(layout.path().join("index.json"), index.to_json()).unwrap();
    let err = layout.verify_all().unwrap_err().to_string();
    assert!(
        err.contains("index.json says") && err.contains("bytes"),
        "{err}"
    );
}

#[tokio::test]
async fn verify_all_checks_every_descriptor_of_a_shared_blob() {
    // A config and a layer with one digest: each descriptor's size is checked, not only the
    // first one seen (the stack pops the layer first, then the config).
    for wrong in ["config", "layer"] {
        let (_dir, layout) = new_dir_layout();
        let shared: &[u8] = br#"{"architecture":"amd64","os":"linux"}"#;
        layout.put_blob(shared).await.unwrap();
        let mut config = Descriptor::of(CONFIG_TYPE, shared);
        let mut layer = Descriptor::of(LAYER_TYPE, shared);
        match wrong {
            "config" => config.size += 1,
            _ => layer.size += 1,
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(oci::OCI_MANIFEST.to_string()),
            artifact_type: None,
            config,
            layers: vec![layer],
            subject: None,
            annotations: BTreeMap::new(),
        };
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let put = layout
            .put_manifest(
                TagOrDigest::Tag("v1"),
                oci::OCI_MANIFEST,
                &bytes,
                Precondition::None,
            )
            .await
            .unwrap();
        let err = layout.verify_all().unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "manifest {} says {} has {} bytes, the blob has {}",
                put.digest,
                Digest::sha256_of(shared),
                shared.len() + 1,
                shared.len()
            )),
            "{wrong}: {err}"
        );
    }
}

// Archives.

fn archive_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("Export.tar")
}

#[tokio::test]
async fn archive_round_trip_is_deterministic_and_saved_only_when_changed() {
    let dir = tempfile::tempdir().unwrap();
    let path = archive_path(&dir);
    let layout = Layout::open(LayoutKind::Archive, &path, OpenMode::CreateIfMissing).unwrap();
    assert!(!path.exists());
    let image = put_image(&layout, "v1", b"layer").await;
    put_referrer(&layout, &image, b"sig").await;
    assert!(layout.is_dirty());
    layout.save().unwrap();
    assert!(!layout.is_dirty());
    let first = std::fs::read(&path).unwrap();

    // Members, in order.
    let mut names = Vec::new();
    let mut archive = tar::Archive::new(first.as_slice());
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        assert_eq!(entry.header().mtime().unwrap(), 0);
        names.push(String::from_utf8(entry.path_bytes().into_owned()).unwrap());
    }
    assert_eq!(
        &names[..4],
        ["oci-layout", "index.json", "blobs/", "blobs/sha256/"]
    );
    let blobs = &names[4..];
    assert!(blobs.windows(2).all(|w| w[0] < w[1]), "{blobs:?}");
    // config, layer, manifest, empty config, signature, referrer manifest
    assert_eq!(blobs.len(), 6, "{blobs:?}");

    // Reopened, it reads the same; saved unchanged, it is not rewritten.
    let again = Layout::open(LayoutKind::Archive, &path, OpenMode::MustExist).unwrap();
    let found = again.resolve_ref(&layout_ref("oci-archive:x:v1")).unwrap();
    assert_eq!(
        found.pinned.to_string(),
        format!("layout.invalid/export:v1@{}", image.digest)
    );
    assert_eq!(
        again
            .referrers(&image.digest, None)
            .await
            .unwrap()
            .descriptors
            .len(),
        1
    );
    again.verify_all().unwrap();
    std::fs::remove_file(&path).unwrap();
    again.save().unwrap();
    assert!(!path.exists(), "an unchanged archive was written back");

    // The same content written again gives the same bytes.
    layout.put_blob(b"extra").await.unwrap();
    layout.save().unwrap();
    let with_extra = std::fs::read(&path).unwrap();
    assert!(with_extra != first);
    let copy = Layout::open(LayoutKind::Archive, &path, OpenMode::MustExist).unwrap();
    copy.put_blob(b"one more").await.unwrap();
    std::fs::remove_file(copy.blob_path(&Digest::sha256_of(b"one more"))).unwrap();
    copy.save().unwrap();
    assert!(
        std::fs::read(&path).unwrap() == with_extra,
        "not deterministic"
    );
}

/// A tarball member: name, type, data.
type TarMember<'a> = (&'a str, tar::EntryType, &'a [u8]);

/// Writes a tar of `members`, names written raw (no checks).
fn raw_tar(path: &Path, members: &[TarMember<'_>]) {
    let mut builder = tar::Builder::new(File::create(path).unwrap());
    for (name, kind, data) in members {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        let raw = &mut h.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        if kind.is_symlink() || kind.is_hard_link() {
            h.set_link_name("index.json").unwrap();
        }
        h.set_cksum();
        builder.append(&h, *data).unwrap();
    }
    builder.finish().unwrap();
}

#[test]
fn archives_with_foreign_members_are_refused_naming_the_member() {
    let dir = tempfile::tempdir().unwrap();
    let path = archive_path(&dir);
    let layout_file: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
    let index = Index::empty().to_json();
    let regular = tar::EntryType::Regular;
    let cases: Vec<(Vec<TarMember<'_>>, &str)> = vec![
        (
            vec![("../evil", regular, b"x")],
            "\"../evil\": it points outside the layout",
        ),
        (
            vec![("blobs/../../evil", regular, b"x")],
            "points outside the layout",
        ),
        (
            vec![("/etc/evil", regular, b"x")],
            "\"/etc/evil\": absolute path",
        ),
        (
            vec![("oci-layout", tar::EntryType::Symlink, b"")],
            "\"oci-layout\": symbolic link",
        ),
        (
            vec![("oci-layout", tar::EntryType::Link, b"")],
            "\"oci-layout\": hard link",
        ),
        (
            vec![("notes.txt", regular, b"x")],
            "\"notes.txt\": not a file of an OCI layout",
        ),
        (
            vec![("blobs/sha256/abc", regular, b"x")],
            "\"blobs/sha256/abc\": not named by a digest",
        ),
        (
            vec![("blobs/md5/abc", regular, b"x")],
            "unsupported digest algorithm",
        ),
        (
            vec![("dev", tar::EntryType::Fifo, b"")],
            "\"dev\": not a regular file",
        ),
        (
            vec![
                ("oci-layout", regular, layout_file),
                ("./oci-layout", regular, layout_file),
            ],
            "\"./oci-layout\": it appears twice",
        ),
    ];
    for (members, expected) in cases {
        raw_tar(&path, &members);
        let err = Layout::open(LayoutKind::Archive, &path, OpenMode::MustExist)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(expected), "{expected}: {err}");
        assert!(
            err.starts_with(&format!("oci-archive:{}", path.display())),
            "{err}"
        );
    }
    // A well-formed one with "./" prefixes and directory members opens.
    raw_tar(
        &path,
        &[
            ("./", tar::EntryType::Directory, b""),
            ("./oci-layout", regular, layout_file),
            ("./index.json", regular, &index),
            ("./blobs/", tar::EntryType::Directory, b""),
            ("./blobs/sha256/", tar::EntryType::Directory, b""),
        ],
    );
    Layout::open(LayoutKind::Archive, &path, OpenMode::MustExist).unwrap();
}

#[tokio::test]
async fn a_tampered_blob_in_an_archive_is_named_and_the_archive_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = archive_path(&dir);
    let layout = Layout::open(LayoutKind::Archive, &path, OpenMode::CreateIfMissing).unwrap();
    put_image(&layout, "v1", b"layer").await;
    layout.save().unwrap();
    // Rewrite the archive with the layer's content changed, same name.
    let layer = Digest::sha256_of(b"layer");
    let original = std::fs::read(&path).unwrap();
    let mut tampered = original.clone();
    let at = original.windows(5).rposition(|w| w == b"layer").unwrap();
    tampered[at..at + 5].copy_from_slice(b"LAYER");
    std::fs::write(&path, &tampered).unwrap();
    let err = Layout::open(LayoutKind::Archive, &path, OpenMode::MustExist)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains(&format!(
            "blob {layer} in {} hashes to {}",
            path.display(),
            Digest::sha256_of(b"LAYER")
        )),
        "{err}"
    );
    assert!(
        std::fs::read(&path).unwrap() == tampered,
        "the archive was changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn index_updates_from_many_tasks_are_not_lost() {
    let (_dir, layout) = new_dir_layout();
    let image = put_image(&layout, "v1", b"image").await;
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let layout = layout.clone();
            let image = image.clone();
            tokio::spawn(async move {
                put_referrer(&layout, &image, format!("sig {i}").as_bytes()).await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        layout
            .referrers(&image.digest, None)
            .await
            .unwrap()
            .descriptors
            .len(),
        16
    );
}

/// A GNU long-name entry of `len` bytes, then a regular member (of that name, for the reader).
fn long_name_tar(path: &Path, len: usize) {
    let mut builder = tar::Builder::new(File::create(path).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::GNULongName);
    h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
    h.set_size(len as u64);
    h.set_mode(0o644);
    h.set_cksum();
    builder
        .append(&h, io::repeat(b'a').take(len as u64))
        .unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.as_gnu_mut().unwrap().name[..5].copy_from_slice(b"short");
    h.set_size(1);
    h.set_mode(0o644);
    h.set_cksum();
    builder.append(&h, &b"x"[..]).unwrap();
    builder.finish().unwrap();
}

/// A PAX header with the records `records` (key, value).
fn pax_entry(builder: &mut tar::Builder<File>, records: &[(&str, &str)]) {
    let mut data = Vec::new();
    for (key, value) in records {
        let body = format!(" {key}={value}\n");
        let mut len = body.len() + 1;
        while (len.to_string().len() + body.len()) != len {
            len += 1;
        }
        data.extend_from_slice(format!("{len}{body}").as_bytes());
    }
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::XHeader);
    h.as_ustar_mut().unwrap().name[..9].copy_from_slice(b"PaxHeader");
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    builder.append(&h, data.as_slice()).unwrap();
}

#[test]
fn long_names_and_pax_headers_are_bounded_and_names_in_errors_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = archive_path(&dir);
    let cap = MAX_TAR_EXTENSION_BYTES as usize;

    // Over the cap: refused from its header, before the name is read.
    long_name_tar(&path, cap + 1);
    let err = Layout::open(LayoutKind::Archive, &path, OpenMode::MustExist)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains(&format!(
            "refusing a GNU long-name entry of {} bytes at offset 0 (more than {cap})",
            cap + 1
        )),
        "{err}"
    );
    assert!(err.len() < 500, "{err}");

    // Under the cap, the name is read, and the message shows only its start.
    long_name_tar(&path, cap - 1);
    let err = Layout::open(LayoutKind::Archive, &path, OpenMode::MustExist)
        .err()
        .unwrap()
        .to_string();
    let shown = format!("\"{}…\"", "a".repeat(SHOWN_NAME_CHARS));
    assert!(
        err.contains(&format!(
            "refusing archive member {shown}: not a file of an OCI layout"
        )),
        "{err:.400}"
    );
    assert!(err.len() < 500, "{err:.400}");

    // A PAX header over the cap, and a GNU sparse member, are refused the same way.
    let mut builder = tar::Builder::new(File::create(&path).unwrap());
    pax_entry(&mut builder, &[("comment", &"c".repeat(cap))]);
    builder.finish().unwrap();
    drop(builder);
    let err = Layout::open(LayoutKind::Archive, &path, OpenMode::MustExist)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("refusing a PAX header of"), "{err}");
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.as_gnu_mut().unwrap().name[..10].copy_from_slice(b"index.json");
    h.set_size(0);
    h.set_cksum();
    let mut builder = tar::Builder::new(File::create(&path).unwrap());
    builder.append(&h, io::empty()).unwrap();
    builder.finish().unwrap();
    drop(builder);
    let err = Layout::open(LayoutKind::Archive, &path, OpenMode::MustExist)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("refusing the sparse archive member at offset 0"),
        "{err}"
    );

    // PAX records that name a member and set its size (the header saying 0) are followed, so
    // a long-name entry after such a member is still seen; without it the layout opens.
    let layout_file: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
    let index = Index::empty().to_json();
    let blob: &[u8] = &[b'z'; 1500];
    let blob_path = format!("blobs/sha256/{}", Digest::sha256_of(blob).hex());
    for with_long_name in [true, false] {
        let mut builder = tar::Builder::new(File::create(&path).unwrap());
        for (name, data) in [("oci-layout", layout_file), ("index.json", &index)] {
            let mut h = tar::Header::new_ustar();
            h.set_path(name).unwrap();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            builder.append(&h, data).unwrap();
        }
        pax_entry(
            &mut builder,
            &[("path", &blob_path), ("size", &blob.len().to_string())],
        );
        let mut h = tar::Header::new_ustar();
        h.set_path("ignored").unwrap();
        h.set_size(0);
        h.set_mode(0o644);
        h.set_cksum();
        builder.append(&h, blob).unwrap();
        if with_long_name {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::GNULongName);
            h.set_size(cap as u64 + 1);
            h.set_cksum();
            builder
                .append(&h, io::repeat(b'a').take(cap as u64 + 1))
                .unwrap();
        }
        builder.finish().unwrap();
        drop(builder);
        let opened = Layout::open(LayoutKind::Archive, &path, OpenMode::MustExist);
        if with_long_name {
            let err = opened.err().unwrap().to_string();
            assert!(err.contains("refusing a GNU long-name entry"), "{err}");
        } else {
            let layout = opened.unwrap();
            assert!(layout.blob_path(&Digest::sha256_of(blob)).is_file());
        }
    }
}

#[tokio::test]
async fn a_save_over_an_archive_another_process_changed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = archive_path(&dir);
    let layout = Layout::open(LayoutKind::Archive, &path, OpenMode::CreateIfMissing).unwrap();
    put_image(&layout, "v1", b"base").await;
    layout.save().unwrap();

    // Two writers, each with its own unpacked copy.
    let first = Layout::open(LayoutKind::Archive, &path, OpenMode::MustExist).unwrap();
    let second = Layout::open(LayoutKind::Archive, &path, OpenMode::MustExist).unwrap();
    let a = put_image(&first, "a", b"first").await;
    put_image(&second, "b", b"second").await;
    first.save().unwrap();
    let saved = std::fs::read(&path).unwrap();
    let err = second.save().unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "{} was changed by another process since signet opened it; nothing written — run \
             the command again",
            path.display()
        )),
        "{err}"
    );
    assert!(second.is_dirty());
    assert!(
        std::fs::read(&path).unwrap() == saved,
        "the archive was written"
    );
    let again = Layout::open(LayoutKind::Archive, &path, OpenMode::MustExist).unwrap();
    assert_eq!(
        again
            .get_manifest_by_tag("a")
            .await
            .unwrap()
            .unwrap()
            .digest,
        a.digest
    );
    assert!(again.get_manifest_by_tag("b").await.unwrap().is_none());

    // The writer that saved may save again; so may one that opened the archive after.
    put_image(&first, "c", b"third").await;
    first.save().unwrap();
    put_image(&again, "d", b"fourth").await;
    let err = again.save().unwrap_err().to_string();
    assert!(err.contains("changed by another process"), "{err}");
    let last = Layout::open(LayoutKind::Archive, &path, OpenMode::MustExist).unwrap();
    put_image(&last, "d", b"fourth").await;
    last.save().unwrap();
    let tags: Vec<String> = last.images().unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(tags, ["v1", "a", "c", "d"]);

    // An archive that appeared after a new one was opened is not overwritten either.
    let other = dir.path().join("new.tar");
    let created = Layout::open(LayoutKind::Archive, &other, OpenMode::CreateIfMissing).unwrap();
    put_image(&created, "v1", b"new").await;
    std::fs::copy(&path, &other).unwrap();
    let err = created.save().unwrap_err().to_string();
    assert!(err.contains("changed by another process"), "{err}");
    assert!(std::fs::read(&other).unwrap() == std::fs::read(&path).unwrap());
}

/// An error and its causes, as the CLI prints them.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// Issue 19, finding 2: `blobs/sha256` a link to another directory: nothing is written there.
#[tokio::test]
async fn blobs_are_never_written_through_a_linked_directory() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let root = dir.path().join("layout");
    let layout = Layout::open(LayoutKind::Directory, &root, OpenMode::CreateIfMissing).unwrap();
    std::fs::remove_dir_all(root.join("blobs/sha256")).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), root.join("blobs/sha256")).unwrap();
    let err = chain(&layout.put_blob(b"chosen by the source").await.unwrap_err());
    assert!(
        err.contains("blobs/sha256") && err.contains("symbolic link"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
}

/// Issue 19, finding 2: a blob that is a link to a local file is not read (not even its first
/// byte), and a manifest or `index.json` that is a FIFO fails at once instead of hanging.
#[tokio::test]
async fn links_and_fifos_inside_a_layout_are_refused_without_reading_or_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("layout");
    let layout = Layout::open(LayoutKind::Directory, &root, OpenMode::CreateIfMissing).unwrap();
    let image = put_image(&layout, "v1", b"layer").await;

    // The layer blob becomes a link to a secret file.
    let secret = dir.path().join("secret");
    std::fs::write(&secret, b"layer").unwrap();
    let layer = Digest::sha256_of(b"layer");
    let layer_path = root.join(blob_name(&layer));
    std::fs::remove_file(&layer_path).unwrap();
    std::os::unix::fs::symlink(&secret, &layer_path).unwrap();
    let err = chain(&layout.get_blob(&layer).await.unwrap_err());
    assert!(err.contains("symbolic link"), "{err}");
    let err = chain(&layout.blob_stream(&layer).await.err().unwrap());
    assert!(err.contains("symbolic link"), "{err}");

    // The manifest blob becomes a FIFO.
    let manifest_path = root.join(blob_name(&image.digest));
    std::fs::remove_file(&manifest_path).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(&manifest_path)
        .status()
        .unwrap();
    assert!(status.success());
    let fetched = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        layout.get_manifest(&image.digest),
    )
    .await
    .expect("reading a FIFO manifest hung");
    let err = chain(&fetched.unwrap_err());
    assert!(err.contains("not a regular file"), "{err}");

    // index.json becomes a FIFO.
    std::fs::remove_file(root.join("index.json")).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(root.join("index.json"))
        .status()
        .unwrap();
    assert!(status.success());
    let listed = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        layout.get_manifest_by_tag("v1"),
    )
    .await
    .expect("reading a FIFO index.json hung");
    let err = chain(&listed.unwrap_err());
    assert!(err.contains("not a regular file"), "{err}");
}

/// Writing `index.json` keeps its mode (it used to become 0600).
#[tokio::test]
async fn index_json_keeps_its_mode_when_rewritten() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("layout");
    let layout = Layout::open(LayoutKind::Directory, &root, OpenMode::CreateIfMissing).unwrap();
    put_image(&layout, "v1", b"one").await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&root.join("index.json")), 0o644);
    std::fs::set_permissions(
        root.join("index.json"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    put_image(&layout, "v2", b"two").await;
    assert_eq!(mode(&root.join("index.json")), 0o640);
}

/// Writes `n` referrers of `subject` straight into the layout's files (one index write), as a
/// layout from outside may hold them.
fn plant_referrers(root: &std::path::Path, subject: &Descriptor, n: usize) {
    let mut index: Index =
        serde_json::from_slice(&std::fs::read(root.join("index.json")).unwrap()).unwrap();
    for i in 0..n {
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(oci::OCI_MANIFEST.to_string()),
            artifact_type: Some("application/example".into()),
            config: Descriptor::of(oci::EMPTY_JSON, oci::EMPTY_JSON_BYTES),
            layers: vec![],
            subject: Some(subject.clone()),
            annotations: BTreeMap::from([("n".to_string(), i.to_string())]),
        };
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let digest = Digest::sha256_of(&bytes);
        std::fs::write(root.join(blob_name(&digest)), &bytes).unwrap();
        index
            .manifests
            .push(Descriptor::of(oci::OCI_MANIFEST, &bytes));
    }
    std::fs::write(root.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// Issue 19, finding 7: a layout is held to the registry's cap on referrers (10,000), with the
/// same message; and the index is read once for all the subjects of a walk, not once each.
#[tokio::test]
async fn layout_referrers_are_capped_like_a_registry_and_the_index_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("layout");
    let layout = Layout::open(LayoutKind::Directory, &root, OpenMode::CreateIfMissing).unwrap();
    layout.put_blob(oci::EMPTY_JSON_BYTES).await.unwrap();
    let image = put_image(&layout, "v1", b"capped").await;
    plant_referrers(&root, &image, 10_001);
    let err = layout.referrers(&image.digest, None).await.unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::TooMany {
                limit: 10_000,
                unit: "referrers",
                ..
            }
        ),
        "{err}"
    );

    // The map of referrers is built once per version of index.json, and again when it
    // changes.
    let other = put_image(&layout, "v2", b"small").await;
    plant_referrers(&root, &other, 3);
    assert_eq!(
        layout
            .referrers(&other.digest, None)
            .await
            .unwrap()
            .descriptors
            .len(),
        3
    );
    let map = layout.referrer_map().unwrap();
    assert!(
        Arc::ptr_eq(&map, &layout.referrer_map().unwrap()),
        "the index was read again"
    );
    put_image(&layout, "v3", b"changes the index").await;
    assert!(
        !Arc::ptr_eq(&map, &layout.referrer_map().unwrap()),
        "a stale index was used"
    );
}
