//! Sigstore bundles: parsing never panics; a parsed bundle serialises and parses back the
//! same; reading its predicate type and verifying it fail cleanly.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use signet_core::bundle::Bundle;
use signet_core::digest::Digest;
use signet_core::keys::{KeyPair, PublicKey};

static KEYS: LazyLock<Vec<PublicKey>> = LazyLock::new(|| {
    let pair = KeyPair::from_p256_scalar(&[7u8; 32]).expect("a fixed valid scalar");
    vec![pair.public_key().clone()]
});

fuzz_target!(|data: &[u8]| {
    let Ok(bundle) = Bundle::parse(data) else {
        return;
    };
    let json = bundle.to_json();
    let again = Bundle::parse(&json).unwrap_or_else(|e| {
        panic!(
            "serialised bundle does not parse: {e}\n{}",
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(again, bundle, "{}", String::from_utf8_lossy(&json));
    let _ = bundle.unverified_predicate_type();
    let subject = Digest::sha256_of(data);
    match bundle.verify_statement(&KEYS, &subject) {
        Ok(_) => panic!("a fuzzed bundle verified"),
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
