//! Keys and signatures made by an independent implementation (Python `cryptography` and PyNaCl,
//! `scripts/gen_fixtures.py`) load and verify in signet, and every damaged key gives its own
//! precise error.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a missing fixture should fail the test loudly"
)]

use std::path::PathBuf;

use signet_core::keys::{KeyAlgorithm, KeyError, KeyPair, PublicKey, SignatureError};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/keys")
        .join(name)
}

fn text(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap()
}

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

fn password() -> Vec<u8> {
    bytes("password.txt")
}

fn public(name: &str) -> PublicKey {
    PublicKey::from_pem(&text(name)).unwrap()
}

#[test]
fn cosign_keys_written_by_python_load_with_every_accepted_cost_and_label() {
    let expected = public("p256.pub");
    for name in [
        "p256.key",
        "p256-n15.key",
        "p256-n17.key",
        "p256-cosign-label.key",
    ] {
        let pair = KeyPair::from_encrypted_pem(&text(name), &password())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(pair.public_key(), &expected, "{name}");
    }
    let pair = KeyPair::from_encrypted_pem(&text("p256-empty-password.key"), b"").unwrap();
    assert_eq!(pair.public_key(), &expected);
}

#[test]
fn signature_from_a_python_loaded_key_verifies_and_ours_verifies_too() {
    let message = bytes("message.txt");
    let key = public("p256.pub");
    key.verify(&message, &bytes("p256.sig")).unwrap();
    let pair = KeyPair::from_encrypted_pem(&text("p256.key"), &password()).unwrap();
    key.verify(&message, &pair.sign(&message)).unwrap();
}

#[test]
fn other_key_types_verify_and_reject_edits() {
    let message = bytes("message.txt");
    let mut edited = message.clone();
    edited[0] ^= 1;
    for (pub_name, sig_name, algorithm) in [
        ("p256.pub", "p256.sig", KeyAlgorithm::EcdsaP256),
        ("p384.pub", "p384.sig", KeyAlgorithm::EcdsaP384),
        ("ed25519.pub", "ed25519.sig", KeyAlgorithm::Ed25519),
        ("rsa.pub", "rsa-pkcs1v15.sig", KeyAlgorithm::Rsa),
        ("rsa.pub", "rsa-pss.sig", KeyAlgorithm::Rsa),
    ] {
        let key = public(pub_name);
        assert_eq!(key.algorithm(), algorithm);
        let sig = bytes(sig_name);
        key.verify(&message, &sig)
            .unwrap_or_else(|e| panic!("{sig_name}: {e}"));
        assert_eq!(
            key.verify(&edited, &sig),
            Err(SignatureError::Mismatch {
                key_id: key.id().clone()
            }),
            "{sig_name} must not verify an edited message"
        );
    }
}

#[test]
fn signature_by_another_key_names_that_key() {
    let key = public("other.pub");
    let err = key
        .verify(&bytes("message.txt"), &bytes("p256.sig"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("signature does not verify with key {}", key.id())
    );
}

#[test]
fn key_id_matches_sha256_of_der_spki() {
    // Computed independently: sha256 over the base64-decoded PEM body.
    let pem = text("p256.pub");
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    let key = public("p256.pub");
    assert_eq!(key.der(), der.as_slice());
    assert_eq!(
        key.id().to_string(),
        signet_core::digest::Digest::sha256_of(&der).to_string()
    );
}

#[test]
fn wrong_password_is_reported_as_wrong_password() {
    let err = KeyPair::from_encrypted_pem(&text("p256.key"), b"not the password").unwrap_err();
    assert_eq!(err, KeyError::WrongPassword);
    assert_eq!(
        err.to_string(),
        "wrong password for the encrypted private key"
    );
}

#[test]
fn truncated_ciphertext_is_reported_as_truncated() {
    let err = KeyPair::from_encrypted_pem(&text("truncated.key"), &password()).unwrap_err();
    assert!(
        matches!(err, KeyError::TruncatedCiphertext { got: 100, .. }),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("truncated ciphertext"), "{err}");
    // With the wrong password the truncation cannot be seen; that is a wrong password.
    assert_eq!(
        KeyPair::from_encrypted_pem(&text("truncated.key"), b"nope").unwrap_err(),
        KeyError::WrongPassword
    );
}

#[test]
fn ciphertext_cut_inside_base64_is_truncated() {
    let pem = text("p256-n15.key");
    let lines: Vec<&str> = pem.lines().collect();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut doc: serde_json::Value =
        serde_json::from_slice(&b64.decode(lines[1..lines.len() - 1].concat()).unwrap()).unwrap();
    let ct = doc["ciphertext"].as_str().unwrap().to_string();
    doc["ciphertext"] = serde_json::Value::String(ct[..ct.len() - 3].to_string());
    let body = b64.encode(serde_json::to_vec(&doc).unwrap());
    let pem = format!(
        "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n{body}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
    );
    let err = KeyPair::from_encrypted_pem(&pem, &password()).unwrap_err();
    assert!(
        matches!(err, KeyError::TruncatedCiphertext { .. }),
        "{err:?}"
    );
}

#[test]
fn excessive_scrypt_cost_is_refused_before_any_work() {
    let err = KeyPair::from_encrypted_pem(&text("scrypt-n20.key"), &password()).unwrap_err();
    assert_eq!(
        err,
        KeyError::UnsupportedScryptParams {
            n: 1 << 20,
            r: 8,
            p: 1
        }
    );
}

#[test]
fn malformed_pem_is_reported() {
    for input in [
        "",
        "not a key",
        "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n!!!!\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
        "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n",
    ] {
        let err = KeyPair::from_encrypted_pem(input, b"x").unwrap_err();
        assert!(
            matches!(err, KeyError::MalformedPem { .. }),
            "{input:?}: {err:?}"
        );
        assert!(err.to_string().starts_with("malformed PEM"), "{err}");
    }
}

#[test]
fn encrypted_body_that_is_not_cosign_json_is_reported() {
    let pem = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\naGVsbG8=\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n";
    let err = KeyPair::from_encrypted_pem(pem, b"x").unwrap_err();
    assert!(
        matches!(err, KeyError::MalformedEncryptedKey { .. }),
        "{err:?}"
    );
}

#[test]
fn public_key_where_private_key_expected() {
    let err = KeyPair::from_encrypted_pem(&text("p256.pub"), &password()).unwrap_err();
    assert_eq!(
        err,
        KeyError::PublicKeyGiven {
            label: "PUBLIC KEY".into()
        }
    );
}

#[test]
fn private_key_where_public_key_expected() {
    let err = PublicKey::from_pem(&text("p256.key")).unwrap_err();
    assert!(
        matches!(err, KeyError::UnexpectedLabel { ref found, .. } if found == "ENCRYPTED SIGSTORE PRIVATE KEY"),
        "{err:?}"
    );
}

#[test]
fn unsupported_curve_for_verification() {
    let err = PublicKey::from_pem(&text("secp256k1.pub")).unwrap_err();
    assert!(matches!(err, KeyError::UnsupportedCurve { .. }), "{err:?}");
    assert!(err.to_string().contains("secp256k1"), "{err}");
}

#[test]
fn unsupported_curve_for_signing() {
    let err = KeyPair::from_encrypted_pem(&text("p384.key"), &password()).unwrap_err();
    assert!(matches!(err, KeyError::UnsupportedCurve { .. }), "{err:?}");
    assert!(err.to_string().contains("P-384"), "{err}");
}
