//! Simple-signing payloads (cosign legacy `.sig`, containers/image, Binary Authorization):
//! parsing never panics, and what signet writes (`to_cosign_bytes`, Go's JSON escaping) reads
//! back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_core::digest::Digest;
use signet_core::simplesigning::SimpleSigning;

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = SimpleSigning::parse(data) else {
        return;
    };
    assert!(payload.check_digest(&payload.manifest_digest).is_ok());
    let other = Digest::sha256_of(data);
    assert_eq!(
        payload.check_digest(&other).is_ok(),
        payload.manifest_digest == other
    );
    let bytes = payload.to_cosign_bytes();
    let again = SimpleSigning::parse(&bytes).unwrap_or_else(|e| {
        panic!(
            "written payload does not parse: {e}\n{}",
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(again, payload, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(again.to_cosign_bytes(), bytes);
});
