//! OpenPGP: armoured public keys (read as lossy UTF-8) and signed messages (armoured or binary)
//! checked against a fixed key. Nothing panics, whatever the bytes; a loaded key's own checks
//! (fingerprint, ids, verifying the same bytes as a message) do not panic either.
//!
//! The fixed key and the seeds in `fuzz/seeds/pgp_key/` were made once with gpg 2.2:
//! `gpg --quick-gen-key 'signet fuzz <fuzz@example.com>' ed25519 sign 0`, `gpg --armor --export`
//! (key.asc), and the Binary Authorization payload signed with `--armor --sign` (message.asc),
//! `--sign` (message.pgp), `-z 0 --sign` (plain.pgp) and `--armor --detach-sign` (detached.asc).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use signet_core::pgp::PgpPublicKey;

static KEY: LazyLock<PgpPublicKey> = LazyLock::new(|| {
    let key = PgpPublicKey::from_armor(include_str!("../seeds/pgp_key/key.asc"))
        .expect("the fixed OpenPGP key loads");
    key.verify_message(include_bytes!("../seeds/pgp_key/message.asc"))
        .expect("the seed message verifies");
    key
});

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(key) = PgpPublicKey::from_armor(&text) {
        let fingerprint = key.fingerprint();
        assert!(key.matches_id(&fingerprint));
        let _ = key.matches_id(&text);
        let _ = key.verify_message(data);
    }
    let _ = KEY.verify_message(data);
});
