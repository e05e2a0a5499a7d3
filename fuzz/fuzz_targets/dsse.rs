//! DSSE envelopes: parsing never panics; a parsed envelope serialises and parses back the
//! same; decoding the payload and verifying against a key fail cleanly, never with a panic.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use signet_core::dsse::{self, Envelope};
use signet_core::keys::{KeyPair, PublicKey};

static KEYS: LazyLock<Vec<PublicKey>> = LazyLock::new(|| {
    let pair = KeyPair::from_p256_scalar(&[7u8; 32]).expect("a fixed valid scalar");
    vec![pair.public_key().clone()]
});

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = Envelope::from_json(data) else {
        return;
    };
    let json = envelope.to_json();
    assert_eq!(Envelope::from_json(&json).ok().as_ref(), Some(&envelope));
    if let Ok(payload) = envelope.payload_bytes() {
        let _ = dsse::pae(&envelope.payload_type, &payload);
    }
    // A random envelope cannot carry a valid signature by this key.
    assert!(envelope.verify(&KEYS).is_err());
    assert!(envelope.verify(&[]).is_err(), "no keys must never verify");
});
