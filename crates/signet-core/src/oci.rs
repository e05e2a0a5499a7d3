//! OCI image-spec data: media types, descriptors, image manifests and indexes.
//!
//! Only the fields signet reads or writes are typed; everything else in a manifest is kept by
//! keeping the manifest's bytes, which is what digests and signatures cover. Spec:
//! <https://github.com/opencontainers/image-spec> (v1.1).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest v2 schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The OCI empty descriptor's media type; its blob is the two bytes `{}`.
pub const EMPTY_JSON: &str = "application/vnd.oci.empty.v1+json";
/// The bytes of the empty JSON blob.
pub const EMPTY_JSON_BYTES: &[u8] = b"{}";
/// cosign's legacy simple-signing layer.
pub const SIMPLE_SIGNING_LAYER: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// cosign's legacy DSSE attestation layer.
pub const DSSE_LAYER: &str = "application/vnd.dsse.envelope.v1+json";
/// Annotation holding a legacy `.sig` layer's base64 signature.
pub const COSIGN_SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Annotation on a legacy `.att` layer naming its predicate type.
pub const LEGACY_PREDICATE_TYPE_ANNOTATION: &str = "predicateType";
/// Suffixes of cosign's legacy tags next to an image: `sha256-<hex>.sig`, `.att`, `.sbom`.
pub const LEGACY_TAG_SUFFIXES: [&str; 3] = ["sig", "att", "sbom"];
/// Annotation cosign v3 puts on bundle referrers: `dsse-envelope` or `message-signature`.
pub const BUNDLE_CONTENT_ANNOTATION: &str = "dev.sigstore.bundle.content";
/// Annotation cosign v3 puts on bundle referrers: the statement's predicate type.
pub const BUNDLE_PREDICATE_TYPE_ANNOTATION: &str = "dev.sigstore.bundle.predicateType";
/// Creation time annotation.
pub const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";

/// Every manifest media type signet asks for, for `Accept` headers.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: Digest,
    /// Size in bytes of the referenced content.
    pub size: u64,
    /// Artifact type, for manifests that are artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Platform, on index entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
}

impl Descriptor {
    /// Whether this index entry is one of buildkit's attestation manifests
    /// (`vnd.docker.reference.type: attestation-manifest`, platform `unknown/unknown`): listed in
    /// an index, but not a platform anything runs.
    pub fn is_attestation_manifest(&self) -> bool {
        self.annotations
            .get("vnd.docker.reference.type")
            .is_some_and(|t| t == "attestation-manifest")
    }

    /// A descriptor of `bytes` with `media_type`.
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: Digest::sha256_of(bytes),
            size: bytes.len() as u64,
            artifact_type: None,
            annotations: BTreeMap::new(),
            platform: None,
        }
    }
}

/// An OCI image manifest (or Docker v2 manifest, which has the same shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's own media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Artifact type (OCI 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// What this manifest refers to (OCI 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Manifest {
    /// The artifact type as the referrers API reports it: `artifactType`, else the config's
    /// media type.
    pub fn effective_artifact_type(&self) -> &str {
        self.artifact_type
            .as_deref()
            .unwrap_or(&self.config.media_type)
    }
}

/// An OCI image index (or Docker manifest list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// The index's own media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Artifact type (OCI 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The manifests.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    /// What this index refers to (OCI 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Index {
    /// An empty OCI index.
    pub fn empty() -> Index {
        Index {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_string()),
            artifact_type: None,
            manifests: Vec::new(),
            subject: None,
            annotations: BTreeMap::new(),
        }
    }

    /// The index as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // Typed data with string keys always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Either kind of manifest, as fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyManifest {
    /// An image manifest.
    Image(Manifest),
    /// An index.
    Index(Index),
}

/// Why manifest bytes could not be read.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("malformed {media_type} manifest: {reason}")]
pub struct ManifestError {
    /// The media type it was read as.
    pub media_type: String,
    /// What is wrong.
    pub reason: String,
}

impl AnyManifest {
    /// Parses manifest bytes; `media_type` is the Content-Type the registry sent, used when
    /// the manifest does not say its own.
    pub fn parse(media_type: &str, bytes: &[u8]) -> Result<AnyManifest, ManifestError> {
        let err = |reason: String| ManifestError {
            media_type: media_type.to_string(),
            reason,
        };
        let shape = Shape::of(bytes).map_err(|e| err(e.to_string()))?;
        let declared = shape.media_type.as_deref().unwrap_or(media_type);
        let is_index = declared == OCI_INDEX
            || declared == DOCKER_MANIFEST_LIST
            || (shape.media_type.is_none() && shape.manifests.is_some());
        if is_index {
            serde_json::from_slice(bytes)
                .map(AnyManifest::Index)
                .map_err(|e| err(e.to_string()))
        } else {
            serde_json::from_slice(bytes)
                .map(AnyManifest::Image)
                .map_err(|e| err(e.to_string()))
        }
    }

    /// The media type to send when pushing these bytes.
    pub fn media_type(&self) -> &str {
        match self {
            AnyManifest::Image(m) => m.media_type.as_deref().unwrap_or(OCI_MANIFEST),
            AnyManifest::Index(i) => i.media_type.as_deref().unwrap_or(OCI_INDEX),
        }
    }

    /// The `subject`, if any.
    pub fn subject(&self) -> Option<&Descriptor> {
        match self {
            AnyManifest::Image(m) => m.subject.as_ref(),
            AnyManifest::Index(i) => i.subject.as_ref(),
        }
    }
}

/// What manifest bytes say about themselves: the media type they declare, and whether they
/// list `manifests` (an index's shape). The one place manifest bytes are probed.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shape {
    media_type: Option<String>,
    manifests: Option<serde::de::IgnoredAny>,
}

impl Shape {
    fn of(bytes: &[u8]) -> Result<Shape, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// The media type of manifest `bytes`, to store or push them with: the one they declare,
/// else `served` (the Content-Type they came with, `""` when none) when that is a manifest
/// type, else what their shape says (an index when they list `manifests`). Bytes that are
/// not JSON count as an image manifest; parsing them reports what is wrong.
pub fn manifest_media_type(bytes: &[u8], served: &str) -> String {
    let shape = Shape::of(bytes).ok();
    if let Some(declared) = shape.as_ref().and_then(|s| s.media_type.clone()) {
        return declared;
    }
    if MANIFEST_MEDIA_TYPES.contains(&served) {
        return served.to_string();
    }
    if shape.is_some_and(|s| s.manifests.is_some()) {
        OCI_INDEX.to_string()
    } else {
        OCI_MANIFEST.to_string()
    }
}

/// Whether a layer of `media_type` is one registries need not serve (Windows base layers:
/// Docker's `.foreign.` and OCI's `.nondistributable.` types). Such a layer may be absent
/// from a store, and copies skip it, as `skopeo copy` does.
///
/// Matched on the dotted media-type components, so that a type which merely contains the word
/// is still copied and checked: skipping a layer by mistake leaves a copy incomplete.
pub fn is_non_distributable(media_type: &str) -> bool {
    media_type.contains(".nondistributable.") || media_type.contains(".foreign.")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `scripts/fuzz.sh` (target `manifest`): a number in a platform object, kept as
    /// JSON, changed in its last digits when the index was written back (serde_json now reads
    /// numbers exactly: `float_roundtrip`).
    #[test]
    fn an_index_written_back_keeps_its_numbers_exactly() {
        let json = br#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:86c1325388b419e9b3f2cda181a5909feaff143834401d971e0fdfdd5ec8893a","size":401,"platform":{"os":"linux","size":4.0444444444404443e+33}}]}"#;
        let index: Index = serde_json::from_slice(json).unwrap_or_else(|e| panic!("{e}"));
        let again: Index =
            serde_json::from_slice(&index.to_json()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again, index);
    }

    #[test]
    fn empty_blob_digest_is_the_spec_one() {
        assert_eq!(
            Descriptor::of(EMPTY_JSON, EMPTY_JSON_BYTES)
                .digest
                .to_string(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    #[test]
    fn parses_index_and_manifest() {
        let idx = Index::empty().to_json();
        assert!(matches!(
            AnyManifest::parse(OCI_INDEX, &idx).unwrap(),
            AnyManifest::Index(_)
        ));
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{EMPTY_JSON}","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}},"layers":[]}}"#
        );
        let parsed = AnyManifest::parse("", m.as_bytes()).unwrap();
        let AnyManifest::Image(img) = parsed else {
            panic!("expected an image manifest")
        };
        assert_eq!(img.effective_artifact_type(), EMPTY_JSON);
    }

    #[test]
    fn declared_media_type_wins() {
        let docker = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"a","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
        assert_eq!(manifest_media_type(docker, "text/plain"), DOCKER_MANIFEST);
        let bare = br#"{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
        assert_eq!(manifest_media_type(bare, ""), OCI_MANIFEST);
        assert_eq!(manifest_media_type(bare, DOCKER_MANIFEST), DOCKER_MANIFEST);
    }

    #[test]
    fn undeclared_index_is_probed_by_shape() {
        let index = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(manifest_media_type(index, ""), OCI_INDEX);
        assert_eq!(manifest_media_type(index, "text/plain"), OCI_INDEX);
        assert_eq!(
            manifest_media_type(index, DOCKER_MANIFEST_LIST),
            DOCKER_MANIFEST_LIST
        );
        assert_eq!(manifest_media_type(b"not json", ""), OCI_MANIFEST);
    }

    #[test]
    fn foreign_layers_are_not_copied() {
        assert!(is_non_distributable(
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
        ));
        assert!(is_non_distributable(
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        ));
        assert!(!is_non_distributable(
            "application/vnd.oci.image.layer.v1.tar+gzip"
        ));
    }
}
