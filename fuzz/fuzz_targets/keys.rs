//! Keys: PEM framing, PKIX public keys (PEM and DER), PKCS#8 private keys (what an encrypted
//! cosign key decrypts to), the JSON of cosign's encrypted private keys, and signatures
//! checked against fixed keys of every supported algorithm. Nothing panics; a public key
//! written as PEM reads back as the same key.
//!
//! The encrypted-key API accepts only cosign's scrypt costs (N = 2^15 to 2^17, tens of
//! milliseconds and 32+ MiB each) and offers no cheap cost, so inputs whose key document asks
//! for one of those costs are skipped: the PEM and JSON framing up to the cost check is fuzzed,
//! the salt, nonce and ciphertext checks after the derivation are not.
#![no_main]

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use libfuzzer_sys::fuzz_target;
use signet_core::keys::{KeyPair, PublicKey, SIGSTORE_PRIVATE_KEY_LABEL};

static KEYS: LazyLock<Vec<PublicKey>> = LazyLock::new(|| {
    [
        include_str!("../../fixtures/keys/p256.pub"),
        include_str!("../../fixtures/keys/p384.pub"),
        include_str!("../../fixtures/keys/ed25519.pub"),
        include_str!("../../fixtures/keys/rsa.pub"),
    ]
    .iter()
    .map(|pem| PublicKey::from_pem(pem).expect("fixture public keys load"))
    .collect()
});

/// cosign's scrypt costs, which the key loader accepts and which are too slow to fuzz.
const COSTLY_N: [u64; 3] = [1 << 15, 1 << 16, 1 << 17];

/// Whether `body` (an encrypted key's JSON) would make the loader derive a key with scrypt.
fn asks_for_scrypt(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/kdf/params/N")
                .and_then(serde_json::Value::as_u64)
        })
        .is_some_and(|n| COSTLY_N.contains(&n))
}

/// The body of the first PEM block of `text`, decoded as signet's loader does it, for
/// [`asks_for_scrypt`]; `None` if there is none (then the loader stops before scrypt too).
fn pem_body(text: &str) -> Option<Vec<u8>> {
    let mut lines = text
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("-----BEGIN "));
    lines.next()?;
    let body: String = lines.take_while(|l| !l.starts_with("-----")).collect();
    B64.decode(body).ok()
}

fn check_public(key: &PublicKey) {
    let pem = key.to_pem();
    let again = PublicKey::from_pem(&pem).expect("a loaded public key's PEM loads");
    assert_eq!(&again, key);
    assert_eq!(again.id(), key.id());
    assert_eq!(PublicKey::from_der(key.der()).ok().as_ref(), Some(key));
    let _ = (key.algorithm(), key.id().hint(), key.id().short());
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(key) = PublicKey::from_pem(text) {
            check_public(&key);
        }
        if !pem_body(text).is_some_and(|b| asks_for_scrypt(&b)) {
            let _ = KeyPair::from_encrypted_pem(text, b"password");
        }
    }
    if let Ok(key) = PublicKey::from_der(data) {
        check_public(&key);
    }
    if let Ok(pair) = KeyPair::from_pkcs8_der(data) {
        check_public(pair.public_key());
        let signature = pair.sign(b"message");
        assert!(pair.public_key().verify(b"message", &signature).is_ok());
    }
    // The bytes as the JSON document inside an encrypted key's PEM.
    if !asks_for_scrypt(data) {
        let pem = format!(
            "-----BEGIN {SIGSTORE_PRIVATE_KEY_LABEL}-----\n{}\n-----END {SIGSTORE_PRIVATE_KEY_LABEL}-----\n",
            B64.encode(data)
        );
        if !data.is_empty() {
            assert!(KeyPair::from_encrypted_pem(&pem, b"password").is_err());
        }
    }
    // The bytes as a signature over a fixed message: DER, raw and RSA parsing.
    for key in KEYS.iter() {
        assert!(key.verify(b"signet fuzz message", data).is_err());
    }
});
