//! OCI manifests and indexes: `AnyManifest::parse` never panics on any bytes and any
//! Content-Type; what it reads serialises to JSON that reads back the same.
//!
//! Input: the Content-Type, a NUL byte, then the body (no NUL: the body alone, no Content-Type).
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_core::oci::{AnyManifest, MANIFEST_MEDIA_TYPES};

fuzz_target!(|data: &[u8]| {
    let (media_type, body) = match data.iter().position(|b| *b == 0) {
        Some(at) => (
            String::from_utf8_lossy(&data[..at]).into_owned(),
            &data[at + 1..],
        ),
        None => (String::new(), data),
    };
    let mut types = vec![media_type.as_str()];
    types.extend(MANIFEST_MEDIA_TYPES);
    for media_type in types {
        let Ok(manifest) = AnyManifest::parse(media_type, body) else {
            continue;
        };
        let _ = (manifest.media_type(), manifest.subject());
        let json = match &manifest {
            AnyManifest::Image(m) => {
                let _ = m.effective_artifact_type();
                serde_json::to_vec(m)
            }
            AnyManifest::Index(i) => {
                assert_eq!(serde_json::to_vec(i).ok(), Some(i.to_json()));
                serde_json::to_vec(i)
            }
        }
        .expect("a parsed manifest serialises");
        let again = AnyManifest::parse(media_type, &json).unwrap_or_else(|e| {
            panic!(
                "serialised manifest does not parse: {e}\n{}",
                String::from_utf8_lossy(&json)
            )
        });
        assert_eq!(again, manifest, "{}", String::from_utf8_lossy(&json));
    }
});
