//! Digests: parsing never panics and accepts only the canonical form (it prints back
//! byte for byte), so digests compare equal exactly when their strings do.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_core::digest::{Algorithm, Digest};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match text.parse::<Digest>() {
            Ok(d) => {
                assert_eq!(
                    d.to_string(),
                    text,
                    "a digest is accepted only in canonical form"
                );
                let _ = (d.short(), d.fallback_tag());
                assert!(d.verify(data).is_err() || Digest::of(d.algorithm(), data) == d);
                let json = serde_json::to_string(&d).expect("a digest serialises");
                assert_eq!(serde_json::from_str::<Digest>(&json).ok(), Some(d));
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            if let Ok(d) = Digest::from_hex(algorithm, text) {
                assert_eq!(d.hex(), text);
            }
        }
    }
    // A computed digest always parses back.
    for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
        let d = Digest::of(algorithm, data);
        assert_eq!(d.to_string().parse::<Digest>().ok(), Some(d.clone()));
        assert!(d.verify(data).is_ok());
    }
});
