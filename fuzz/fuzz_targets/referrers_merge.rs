//! The fallback-index path of referrer discovery: the index at `sha256-<hex>` united with the
//! referrers found through their own tags. Any bytes give a list or an error, never a panic;
//! the list has no digest twice, and every entry found through a tag names the subject.
//!
//! Input: chunks separated by NUL bytes. The first is the fallback index (empty: no index);
//! each other one is a referrer manifest: the 1st, 3rd, ... listed under the tag signet gives
//! it, the 2nd, 4th, ... under a tag made of its own first 16 bytes (as a lying registry might).
//! The subject is the first manifest's `subject`, else a fixed digest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_core::digest::Digest;
use signet_core::oci::{AnyManifest, OCI_MANIFEST};
use signet_registry::{fuzzing::merge_fallback, referrer_tag};

fuzz_target!(|data: &[u8]| {
    let mut chunks = data.split(|b| *b == 0);
    let index = chunks.next().filter(|c| !c.is_empty());
    let manifests: Vec<&[u8]> = chunks.collect();
    let subject = manifests
        .first()
        .and_then(|m| AnyManifest::parse(OCI_MANIFEST, m).ok())
        .and_then(|m| m.subject().map(|s| s.digest.clone()))
        .unwrap_or_else(|| Digest::sha256_of(b"subject"));
    let tagged: Vec<(String, String, Vec<u8>)> = manifests
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let tag = if i % 2 == 0 {
                referrer_tag(&subject, &Digest::sha256_of(m))
            } else {
                let own = String::from_utf8_lossy(&m[..m.len().min(16)]).into_owned();
                format!("{}.{own}", subject.fallback_tag())
            };
            (tag, OCI_MANIFEST.to_owned(), m.to_vec())
        })
        .collect();
    for artifact_type in [None, Some("application/vnd.dev.sigstore.bundle.v0.3+json")] {
        let Ok(merged) = merge_fallback(&subject, index, &tagged, artifact_type) else {
            continue;
        };
        let mut seen = std::collections::BTreeSet::new();
        for d in &merged {
            assert!(seen.insert(&d.digest), "{} listed twice", d.digest);
            if let Some(t) = artifact_type {
                assert_eq!(d.artifact_type.as_deref(), Some(t));
            }
        }
        for (_, _, bytes) in &tagged {
            let digest = Digest::sha256_of(bytes);
            if let Some(d) = merged.iter().find(|d| d.digest == digest) {
                let listed_in_index =
                    index.is_some_and(|i| String::from_utf8_lossy(i).contains(digest.hex()));
                if !listed_in_index {
                    let m = AnyManifest::parse(&d.media_type, bytes)
                        .expect("a tagged referrer was read as a manifest");
                    assert_eq!(m.subject().map(|s| &s.digest), Some(&subject));
                }
            }
        }
    }
});
