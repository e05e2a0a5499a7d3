//! Transparency-log entry verification, offline: real Rekor v1 entries of the Sigstore
//! public-good instance (`fixtures/sigstore/`), and entries of logs made here at test time
//! (P-256 and Ed25519 keys, Merkle trees built by the RFC 6962 definitions below, checkpoints
//! and signed entry timestamps signed by those keys).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use signet_core::bundle::Bundle;
use signet_core::digest::Digest;
use signet_core::dsse::{Envelope, pae};
use signet_core::keys::{KeyPair, PublicKey};
use signet_core::timestamp::ValidFor;
use signet_core::tlog::{
    EntryExpectation, EntryKind, ExpectedSigner, LogEntry, TlogError, TransparencyLog, TreeHash,
    leaf_hash, node_hash, verify_entry,
};

// ---------------------------------------------------------------------------------------------
// Public-good material

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/sigstore")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The public-good trusted root signet ships (the sigstore crate's pinned copy).
fn public_good_root() -> Vec<u8> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("trust/public-good-trusted-root.json");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The Rekor v1 log of the public-good trusted root (`tlogs[0]`), read minimally: the real
/// trusted-root parser lives in `keyless`.
fn rekor_v1() -> TransparencyLog {
    let root: Value = serde_json::from_slice(&public_good_root()).unwrap();
    let tlog = &root["tlogs"][0];
    assert_eq!(tlog["baseUrl"], "https://rekor.sigstore.dev");
    let der = B64
        .decode(tlog["publicKey"]["rawBytes"].as_str().unwrap())
        .unwrap();
    let log_id = B64
        .decode(tlog["logId"]["keyId"].as_str().unwrap())
        .unwrap();
    let start =
        humantime::parse_rfc3339(tlog["publicKey"]["validFor"]["start"].as_str().unwrap()).unwrap();
    TransparencyLog::new(
        "https://rekor.sigstore.dev",
        log_id,
        PublicKey::from_der(&der).unwrap(),
        ValidFor {
            start: Some(start),
            end: None,
        },
    )
}

struct RealBundle {
    entry_json: Value,
    envelope: Envelope,
    certificate: Vec<u8>,
}

fn real_bundle(name: &str) -> RealBundle {
    let bundle = Bundle::parse(&fixture(name)).unwrap();
    let certificate = B64
        .decode(
            bundle.verification_material.certificate.as_ref().unwrap()["rawBytes"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    RealBundle {
        entry_json: bundle.verification_material.tlog_entries[0].clone(),
        envelope: bundle.dsse_envelope.clone().unwrap(),
        certificate,
    }
}

impl RealBundle {
    fn expectation(&self) -> EntryExpectation {
        EntryExpectation::dsse(
            &self.envelope,
            ExpectedSigner::certificate(self.certificate.clone()),
        )
        .unwrap()
    }

    fn verify(&self, entry_json: &Value) -> Result<signet_core::tlog::VerifiedEntry, TlogError> {
        let entry = LogEntry::from_bundle_json(entry_json)?;
        verify_entry(&entry, &[rekor_v1()], &self.expectation())
    }
}

#[test]
fn cosign_v3_bundle_entry_verifies_with_set_and_inclusion_proof() {
    let b = real_bundle("bundle_v03.json");
    let v = b.verify(&b.entry_json).unwrap();
    assert_eq!(v.log_name(), "https://rekor.sigstore.dev");
    assert_eq!(v.log_index(), 1261105807);
    assert_eq!(
        v.integrated_time(),
        Some(UNIX_EPOCH + Duration::from_secs(1775719409))
    );
    assert!(v.inclusion_proven());
    assert_eq!(v.kind(), EntryKind::DsseV001);
    assert_eq!(
        v.signed_time().unwrap().to_string(),
        "2026-04-09T07:23:29Z (transparency log https://rekor.sigstore.dev)"
    );
}

#[test]
fn npm_provenance_entry_verifies_with_set_and_inclusion_proof() {
    let b = real_bundle("npm_slsa_bundle_v03.json");
    let v = b.verify(&b.entry_json).unwrap();
    assert!(v.integrated_time().is_some());
    assert!(v.inclusion_proven());
    assert_eq!(v.kind(), EntryKind::DsseV001);
}

#[test]
fn real_entry_with_only_its_set_verifies_and_keeps_its_time() {
    let b = real_bundle("bundle_v03.json");
    let mut e = b.entry_json.clone();
    e.as_object_mut().unwrap().remove("inclusionProof");
    let v = b.verify(&e).unwrap();
    assert!(v.integrated_time().is_some());
    assert!(!v.inclusion_proven());
}

#[test]
fn real_entry_with_only_its_inclusion_proof_verifies_without_a_trusted_time() {
    let b = real_bundle("bundle_v03.json");
    let mut e = b.entry_json.clone();
    e.as_object_mut().unwrap().remove("inclusionPromise");
    let v = b.verify(&e).unwrap();
    assert_eq!(v.integrated_time(), None);
    assert!(v.inclusion_proven());
}

#[test]
fn real_entry_with_a_flipped_body_byte_is_rejected_by_its_set() {
    let b = real_bundle("bundle_v03.json");
    let mut e = b.entry_json.clone();
    let mut body = B64
        .decode(e["canonicalizedBody"].as_str().unwrap())
        .unwrap();
    body[40] ^= 1;
    e["canonicalizedBody"] = json!(B64.encode(&body));
    let err = b.verify(&e).unwrap_err();
    assert!(matches!(err, TlogError::PromiseInvalid { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("signed entry timestamp does not verify with log https://rekor.sigstore.dev"),
        "{err}"
    );
    // Without the SET, the inclusion proof catches it.
    e.as_object_mut().unwrap().remove("inclusionPromise");
    let err = b.verify(&e).unwrap_err();
    assert!(
        err.to_string()
            .contains("inclusion proof does not lead to its root hash"),
        "{err}"
    );
}

#[test]
fn real_entry_with_a_flipped_set_byte_is_rejected() {
    let b = real_bundle("bundle_v03.json");
    let mut e = b.entry_json.clone();
    let mut set = B64
        .decode(
            e["inclusionPromise"]["signedEntryTimestamp"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let last = set.len() - 1;
    set[last] ^= 1;
    e["inclusionPromise"]["signedEntryTimestamp"] = json!(B64.encode(&set));
    let err = b.verify(&e).unwrap_err();
    assert!(matches!(err, TlogError::PromiseInvalid { .. }), "{err}");
}

#[test]
fn real_entry_with_another_integrated_time_is_rejected() {
    let b = real_bundle("bundle_v03.json");
    let mut e = b.entry_json.clone();
    e["integratedTime"] = json!("1775719410");
    let err = b.verify(&e).unwrap_err();
    assert!(matches!(err, TlogError::PromiseInvalid { .. }), "{err}");
    let mut e = b.entry_json.clone();
    e["logIndex"] = json!("1261105808");
    let err = b.verify(&e).unwrap_err();
    assert!(matches!(err, TlogError::PromiseInvalid { .. }), "{err}");
}

#[test]
fn real_entry_is_rejected_when_the_log_was_not_valid_at_its_integrated_time() {
    let b = real_bundle("bundle_v03.json");
    let log = rekor_v1();
    let expired = TransparencyLog::new(
        log.name(),
        log.log_id().to_vec(),
        log.key().clone(),
        ValidFor {
            start: log.valid_for().start,
            end: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        },
    );
    let entry = LogEntry::from_bundle_json(&b.entry_json).unwrap();
    let err = verify_entry(&entry, &[expired], &b.expectation()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "log https://rekor.sigstore.dev was not valid at integrated time 2026-04-09T07:23:29Z"
    );
}

#[test]
fn real_entry_does_not_vouch_for_another_bundles_signature_or_certificate() {
    let cosign = real_bundle("bundle_v03.json");
    let npm = real_bundle("npm_slsa_bundle_v03.json");
    let entry = LogEntry::from_bundle_json(&cosign.entry_json).unwrap();

    let other_envelope = EntryExpectation::dsse(
        &npm.envelope,
        ExpectedSigner::certificate(cosign.certificate.clone()),
    )
    .unwrap();
    let err = verify_entry(&entry, &[rekor_v1()], &other_envelope).unwrap_err();
    assert!(matches!(err, TlogError::BodyMismatch { .. }), "{err}");
    assert!(err.to_string().contains("DSSE payload"), "{err}");

    let other_cert = EntryExpectation::dsse(
        &cosign.envelope,
        ExpectedSigner::certificate(npm.certificate.clone()),
    )
    .unwrap();
    let err = verify_entry(&entry, &[rekor_v1()], &other_cert).unwrap_err();
    assert_eq!(
        err.to_string(),
        "log entry vouches for another signer: the envelope's signature it logs was made by \
         another certificate"
    );

    // The same payload re-signed: another signature.
    let mut resigned = cosign.envelope.clone();
    resigned.signatures[0].sig = npm.envelope.signatures[0].sig.clone();
    let err = verify_entry(
        &entry,
        &[rekor_v1()],
        &EntryExpectation::dsse(
            &resigned,
            ExpectedSigner::certificate(cosign.certificate.clone()),
        )
        .unwrap(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "log entry vouches for another signature: none it logs is the envelope's"
    );
}

#[test]
fn real_entry_with_a_tampered_checkpoint_is_rejected() {
    let b = real_bundle("bundle_v03.json");
    let mut e = b.entry_json.clone();
    let cp = e["inclusionProof"]["checkpoint"]["envelope"]
        .as_str()
        .unwrap()
        .replace("rekor.sigstore.dev - ", "rekor.sigstore.dev -  ");
    e["inclusionProof"]["checkpoint"]["envelope"] = json!(cp);
    let err = b.verify(&e).unwrap_err();
    assert_eq!(
        err.to_string(),
        "checkpoint signature of log https://rekor.sigstore.dev does not verify: the checkpoint \
         was altered"
    );
}

#[test]
fn real_entry_of_a_log_not_in_the_trusted_root_is_rejected() {
    let b = real_bundle("bundle_v03.json");
    let entry = LogEntry::from_bundle_json(&b.entry_json).unwrap();
    let err = verify_entry(&entry, &[], &b.expectation()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown log id c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d: no \
         transparency log of the trusted root has it"
    );
}

// ---------------------------------------------------------------------------------------------
// Logs made here

/// A log key: P-256 (Rekor v1's kind) or Ed25519 (Rekor v2's).
enum TestKey {
    P256(KeyPair),
    Ed25519(ed25519_dalek::SigningKey),
}

impl TestKey {
    fn public(&self) -> PublicKey {
        match self {
            TestKey::P256(pair) => pair.public_key().clone(),
            TestKey::Ed25519(key) => {
                let mut der = hex::decode("302a300506032b6570032100").unwrap();
                der.extend_from_slice(key.verifying_key().as_bytes());
                PublicKey::from_der(&der).unwrap()
            }
        }
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            TestKey::P256(pair) => pair.sign(message),
            TestKey::Ed25519(key) => {
                use ed25519_dalek::Signer as _;
                key.sign(message).to_bytes().to_vec()
            }
        }
    }
}

struct TestLog {
    name: String,
    key: TestKey,
    log: TransparencyLog,
}

impl TestLog {
    fn p256(name: &str) -> TestLog {
        TestLog::new(name, TestKey::P256(KeyPair::generate_p256().unwrap()))
    }

    fn ed25519(name: &str, seed: u8) -> TestLog {
        TestLog::new(
            name,
            TestKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[seed; 32])),
        )
    }

    fn new(name: &str, key: TestKey) -> TestLog {
        let public = key.public();
        let log_id = match &key {
            // Rekor v1's log id: the SHA-256 of the DER public key.
            TestKey::P256(_) => Sha256::digest(public.der()).to_vec(),
            // Rekor v2's (Ed25519) log id: the signed-note key id, see
            // `rekor_v2_log_id_is_its_signed_note_key_id`.
            TestKey::Ed25519(key) => note_key_id(name, key.verifying_key().as_bytes()),
        };
        let log = TransparencyLog::new(name, log_id, public, ValidFor::default());
        TestLog {
            name: name.to_string(),
            key,
            log,
        }
    }

    fn log_id(&self) -> &[u8] {
        self.log.log_id()
    }

    /// A checkpoint note for `size` and `root`, signed by this log.
    fn checkpoint(&self, size: u64, root: &TreeHash) -> String {
        let body = format!("{} - 42\n{size}\n{}\n", self.name, B64.encode(root));
        self.sign_note(&body)
    }

    fn sign_note(&self, body: &str) -> String {
        let mut sig = self.log_id()[..4].to_vec();
        sig.extend(self.key.sign(body.as_bytes()));
        format!("{body}\n\u{2014} {} {}\n", self.name, B64.encode(sig))
    }

    /// A signed entry timestamp over `body` at `time`, `index`.
    fn set(&self, body: &[u8], time: u64, index: u64) -> Vec<u8> {
        let text = format!(
            "{{\"body\":\"{}\",\"integratedTime\":{time},\"logID\":\"{}\",\"logIndex\":{index}}}",
            B64.encode(body),
            hex::encode(self.log_id())
        );
        self.key.sign(text.as_bytes())
    }
}

/// RFC 6962 MTH.
fn mth(leaves: &[TreeHash]) -> TreeHash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = n.next_power_of_two() / 2;
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// RFC 6962 PATH.
fn path(m: usize, leaves: &[TreeHash]) -> Vec<TreeHash> {
    let n = leaves.len();
    if n <= 1 {
        return vec![];
    }
    let k = n.next_power_of_two() / 2;
    if m < k {
        let mut p = path(m, &leaves[..k]);
        p.push(mth(&leaves[k..]));
        p
    } else {
        let mut p = path(m - k, &leaves[k..]);
        p.push(mth(&leaves[..k]));
        p
    }
}

/// A tree of `size` leaves with `body` at `index` and filler elsewhere: returns the root and the
/// audit path of `index`.
fn tree_with(body: &[u8], index: usize, size: usize) -> (TreeHash, Vec<TreeHash>) {
    let leaves: Vec<TreeHash> = (0..size)
        .map(|i| {
            if i == index {
                leaf_hash(body)
            } else {
                leaf_hash(format!("filler {i}").as_bytes())
            }
        })
        .collect();
    (mth(&leaves), path(index, &leaves))
}

const TIME: u64 = 1_760_000_000;
const INDEX: u64 = 5;
const SIZE: u64 = 11;

/// An entry JSON (bundle form) with `body`, a SET and an inclusion proof from `log`.
fn entry_json(log: &TestLog, body: &[u8], kind: &str, version: &str) -> Value {
    let (root, proof) = tree_with(body, INDEX as usize, SIZE as usize);
    json!({
        "logIndex": INDEX.to_string(),
        "logId": {"keyId": B64.encode(log.log_id())},
        "kindVersion": {"kind": kind, "version": version},
        "integratedTime": TIME.to_string(),
        "inclusionPromise": {"signedEntryTimestamp": B64.encode(log.set(body, TIME, INDEX))},
        "inclusionProof": {
            "logIndex": INDEX.to_string(),
            "rootHash": B64.encode(root),
            "treeSize": SIZE.to_string(),
            "hashes": proof.iter().map(|h| B64.encode(h)).collect::<Vec<_>>(),
            "checkpoint": {"envelope": log.checkpoint(SIZE, &root)},
        },
        "canonicalizedBody": B64.encode(body),
    })
}

/// A Rekor v2 entry: inclusion proof and checkpoint, no integrated time, no SET.
fn v2_entry_json(log: &TestLog, body: &[u8], kind: &str) -> Value {
    let mut e = entry_json(log, body, kind, "0.0.2");
    let o = e.as_object_mut().unwrap();
    o.remove("inclusionPromise");
    o.insert("integratedTime".into(), json!("0"));
    e
}

/// What a signer signed: an artifact and a key pair.
struct Signed {
    signer: KeyPair,
    artifact: Vec<u8>,
    signature: Vec<u8>,
}

fn signed() -> Signed {
    let signer = KeyPair::generate_p256().unwrap();
    let artifact = b"the artifact".to_vec();
    let signature = signer.sign(&artifact);
    Signed {
        signer,
        artifact,
        signature,
    }
}

impl Signed {
    fn digest(&self) -> Digest {
        Digest::sha256_of(&self.artifact)
    }

    fn expectation(&self) -> EntryExpectation {
        EntryExpectation::message_signature(
            self.digest(),
            self.signature.clone(),
            ExpectedSigner::public_key(self.signer.public_key()),
        )
    }

    fn hashedrekord_v1(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": self.digest().hex()}},
                "signature": {
                    "content": B64.encode(&self.signature),
                    "publicKey": {"content": B64.encode(self.signer.public_key().to_pem())},
                },
            },
        }))
        .unwrap()
    }

    fn hashedrekord_v2(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "kind": "hashedrekord",
            "apiVersion": "0.0.2",
            "spec": {"hashedRekordV002": {
                "data": {
                    "algorithm": "SHA2_256",
                    "digest": B64.encode(Sha256::digest(&self.artifact)),
                },
                "signature": {
                    "content": B64.encode(&self.signature),
                    "verifier": {
                        "publicKey": {"rawBytes": B64.encode(self.signer.public_key().der())},
                        "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    },
                },
            }},
        }))
        .unwrap()
    }
}

fn verify(
    entry: &Value,
    logs: &[&TestLog],
    expected: &EntryExpectation,
) -> Result<signet_core::tlog::VerifiedEntry, TlogError> {
    let logs: Vec<TransparencyLog> = logs.iter().map(|l| l.log.clone()).collect();
    verify_entry(&LogEntry::from_bundle_json(entry)?, &logs, expected)
}

#[test]
fn hashedrekord_v1_entry_with_set_and_proof_verifies() {
    let log = TestLog::p256("rekor.test");
    let s = signed();
    let e = entry_json(&log, &s.hashedrekord_v1(), "hashedrekord", "0.0.1");
    let v = verify(&e, &[&log], &s.expectation()).unwrap();
    assert_eq!(v.kind(), EntryKind::HashedRekordV001);
    assert_eq!(
        v.integrated_time(),
        Some(UNIX_EPOCH + Duration::from_secs(TIME))
    );
    assert!(v.inclusion_proven());
    assert_eq!(v.log_index(), INDEX);
}

#[test]
fn every_leaf_position_of_a_small_tree_verifies() {
    let log = TestLog::ed25519("rekor.test", 3);
    let s = signed();
    let body = s.hashedrekord_v1();
    for size in 1..=9u64 {
        for index in 0..size {
            let (root, proof) = tree_with(&body, index as usize, size as usize);
            let mut e = entry_json(&log, &body, "hashedrekord", "0.0.1");
            e["inclusionProof"] = json!({
                "logIndex": index.to_string(),
                "rootHash": B64.encode(root),
                "treeSize": size.to_string(),
                "hashes": proof.iter().map(|h| B64.encode(h)).collect::<Vec<_>>(),
                "checkpoint": {"envelope": log.checkpoint(size, &root)},
            });
            verify(&e, &[&log], &s.expectation())
                .unwrap_or_else(|err| panic!("leaf {index} of {size}: {err}"));
        }
    }
}

#[test]
fn proof_for_another_tree_than_the_checkpoint_is_rejected() {
    let log = TestLog::p256("rekor.test");
    let s = signed();
    let mut e = entry_json(&log, &s.hashedrekord_v1(), "hashedrekord", "0.0.1");
    let (other_root, _) = tree_with(b"something else", 0, SIZE as usize);
    e["inclusionProof"]["checkpoint"]["envelope"] = json!(log.checkpoint(SIZE, &other_root));
    let err = verify(&e, &[&log], &s.expectation()).unwrap_err();
    assert!(matches!(err, TlogError::CheckpointMismatch { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("inclusion proof does not lead to the checkpoint's root hash"),
        "{err}"
    );
    // A checkpoint of a bigger tree: its size differs.
    let (root, _) = tree_with(&s.hashedrekord_v1(), INDEX as usize, SIZE as usize);
    e["inclusionProof"]["checkpoint"]["envelope"] = json!(log.checkpoint(SIZE + 1, &root));
    let err = verify(&e, &[&log], &s.expectation()).unwrap_err();
    assert!(matches!(err, TlogError::CheckpointMismatch { .. }), "{err}");
}

#[test]
fn proof_that_does_not_lead_to_its_root_is_rejected() {
    let log = TestLog::p256("rekor.test");
    let s = signed();
    let mut e = entry_json(&log, &s.hashedrekord_v1(), "hashedrekord", "0.0.1");
    e["inclusionProof"]["hashes"][1] = json!(B64.encode([7u8; 32]));
    let err = verify(&e, &[&log], &s.expectation()).unwrap_err();
    assert!(matches!(err, TlogError::ProofRootMismatch { .. }), "{err}");
}

#[test]
fn checkpoint_signed_by_an_unknown_log_is_rejected() {
    let log = TestLog::p256("rekor.test");
    let stranger = TestLog::p256("rekor.evil");
    let s = signed();
    let mut e = entry_json(&log, &s.hashedrekord_v1(), "hashedrekord", "0.0.1");
    let (root, _) = tree_with(&s.hashedrekord_v1(), INDEX as usize, SIZE as usize);
    e["inclusionProof"]["checkpoint"]["envelope"] = json!(stranger.checkpoint(SIZE, &root));
    let err = verify(&e, &[&log], &s.expectation()).unwrap_err();
    assert!(
        matches!(err, TlogError::CheckpointSignedByNoLog { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("checkpoint is signed by no log of the trusted root: its signers are rekor.evil (key hint "),
        "{err}"
    );
}

#[test]
fn checkpoint_signed_by_another_trusted_log_is_rejected() {
    let log = TestLog::p256("rekor.test");
    let other = TestLog::ed25519("rekor.other", 9);
    let s = signed();
    let mut e = entry_json(&log, &s.hashedrekord_v1(), "hashedrekord", "0.0.1");
    let (root, _) = tree_with(&s.hashedrekord_v1(), INDEX as usize, SIZE as usize);
    e["inclusionProof"]["checkpoint"]["envelope"] = json!(other.checkpoint(SIZE, &root));
    let err = verify(&e, &[&log, &other], &s.expectation()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "checkpoint is signed by log rekor.other, but the entry is in log rekor.test"
    );
}

#[test]
fn tampered_checkpoint_is_rejected() {
    let log = TestLog::ed25519("rekor.test", 1);
    let s = signed();
    let mut e = entry_json(&log, &s.hashedrekord_v1(), "hashedrekord", "0.0.1");
    let cp = e["inclusionProof"]["checkpoint"]["envelope"]
        .as_str()
        .unwrap()
        .replacen("\n\n", "\nan extension line slipped in\n\n", 1);
    e["inclusionProof"]["checkpoint"]["envelope"] = json!(cp);
    let err = verify(&e, &[&log], &s.expectation()).unwrap_err();
    assert_eq!(
        err,
        TlogError::CheckpointSignatureInvalid {
            log: "rekor.test".into()
        }
    );
}

#[test]
fn checkpoint_with_a_second_untrusted_signature_still_verifies() {
    let log = TestLog::p256("rekor.test");
    let witness = TestLog::p256("witness.test");
    let s = signed();
    let body = s.hashedrekord_v1();
    let mut e = entry_json(&log, &body, "hashedrekord", "0.0.1");
    let (root, _) = tree_with(&body, INDEX as usize, SIZE as usize);
    let note_body = format!("rekor.test - 42\n{SIZE}\n{}\n", B64.encode(root));
    let witnessed = witness.sign_note(&note_body);
    let by_log = log.sign_note(&note_body);
    let cp = format!("{witnessed}{}", &by_log[note_body.len() + 1..]);
    e["inclusionProof"]["checkpoint"]["envelope"] = json!(cp);
    verify(&e, &[&log], &s.expectation()).unwrap();
}

#[test]
fn set_over_another_body_is_rejected() {
    let log = TestLog::p256("rekor.test");
    let s = signed();
    let mut e = entry_json(&log, &s.hashedrekord_v1(), "hashedrekord", "0.0.1");
    let other = signed();
    e["inclusionPromise"]["signedEntryTimestamp"] =
        json!(B64.encode(log.set(&other.hashedrekord_v1(), TIME, INDEX)));
    let err = verify(&e, &[&log], &s.expectation()).unwrap_err();
    assert_eq!(
        err,
        TlogError::PromiseInvalid {
            log: "rekor.test".into()
        }
    );
}

#[test]
fn entry_naming_an_unknown_log_id_is_rejected() {
    let log = TestLog::p256("rekor.test");
    let s = signed();
    let mut e = entry_json(&log, &s.hashedrekord_v1(), "hashedrekord", "0.0.1");
    e["logId"]["keyId"] = json!(B64.encode([0xee; 32]));
    let err = verify(&e, &[&log], &s.expectation()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "unknown log id {}: no transparency log of the trusted root has it",
            "ee".repeat(32)
        )
    );
}

#[test]
fn entry_with_neither_set_nor_proof_is_rejected() {
    let log = TestLog::p256("rekor.test");
    let s = signed();
    let mut e = entry_json(&log, &s.hashedrekord_v1(), "hashedrekord", "0.0.1");
    let o = e.as_object_mut().unwrap();
    o.remove("inclusionPromise");
    o.remove("inclusionProof");
    let err = verify(&e, &[&log], &s.expectation()).unwrap_err();
    assert_eq!(err, TlogError::NothingVouches);
}

#[test]
fn proof_index_at_or_beyond_the_tree_size_is_rejected() {
    let log = TestLog::p256("rekor.test");
    let s = signed();
    let mut e = entry_json(&log, &s.hashedrekord_v1(), "hashedrekord", "0.0.1");
    e["inclusionProof"]["logIndex"] = json!(SIZE.to_string());
    let err = verify(&e, &[&log], &s.expectation()).unwrap_err();
    assert_eq!(
        err,
        TlogError::ProofIndexOutOfRange {
            index: SIZE,
            size: SIZE
        }
    );
}

#[test]
fn proof_with_too_many_hashes_is_rejected_when_parsed() {
    let log = TestLog::p256("rekor.test");
    let s = signed();
    let mut e = entry_json(&log, &s.hashedrekord_v1(), "hashedrekord", "0.0.1");
    e["inclusionProof"]["hashes"] = json!(vec![B64.encode([0u8; 32]); 65]);
    let err = LogEntry::from_bundle_json(&e).unwrap_err();
    assert_eq!(
        err.to_string(),
        "inclusion proof (hashes) is too large: 65, at most 64 accepted"
    );
    // Within the bound but not what the index and size call for.
    e["inclusionProof"]["hashes"] = json!(vec![B64.encode([0u8; 32]); 6]);
    let err = verify(&e, &[&log], &s.expectation()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "inclusion proof has 6 hashes; leaf 5 of a tree of 11 needs 4"
    );
    // Hashes that are not 32 bytes.
    e["inclusionProof"]["hashes"] = json!([B64.encode([0u8; 31])]);
    let err = LogEntry::from_bundle_json(&e).unwrap_err();
    assert!(err.to_string().contains("is not 32 bytes"), "{err}");
}

#[test]
fn oversized_body_is_rejected_when_parsed() {
    let log = TestLog::p256("rekor.test");
    let mut e = entry_json(&log, b"{}", "hashedrekord", "0.0.1");
    e["canonicalizedBody"] = json!(B64.encode(vec![b' '; 256 * 1024 + 1]));
    let err = LogEntry::from_bundle_json(&e).unwrap_err();
    assert!(matches!(err, TlogError::TooLarge { .. }), "{err}");
}

#[test]
fn entry_for_another_artifact_signature_or_key_is_rejected() {
    let log = TestLog::p256("rekor.test");
    let s = signed();
    let e = entry_json(&log, &s.hashedrekord_v1(), "hashedrekord", "0.0.1");

    let other = signed();
    let other_artifact = EntryExpectation::message_signature(
        Digest::sha256_of(b"another artifact"),
        s.signature.clone(),
        ExpectedSigner::public_key(s.signer.public_key()),
    );
    let err = verify(&e, &[&log], &other_artifact).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "log entry vouches for another artifact: it logs sha256:{}, the signature is over {}",
            s.digest().hex(),
            Digest::sha256_of(b"another artifact")
        )
    );

    let other_sig = EntryExpectation::message_signature(
        s.digest(),
        // signet signs deterministically (RFC 6979): a signature over other bytes differs.
        s.signer.sign(b"other bytes"),
        ExpectedSigner::public_key(s.signer.public_key()),
    );
    let err = verify(&e, &[&log], &other_sig).unwrap_err();
    assert_eq!(err.to_string(), "log entry vouches for another signature");

    let other_key = EntryExpectation::message_signature(
        s.digest(),
        s.signature.clone(),
        ExpectedSigner::public_key(other.signer.public_key()),
    );
    let err = verify(&e, &[&log], &other_key).unwrap_err();
    assert_eq!(
        err.to_string(),
        "log entry vouches for another signer: the signature it logs was made by another public key"
    );
}

#[test]
fn kind_version_that_disagrees_with_the_body_is_rejected() {
    let log = TestLog::p256("rekor.test");
    let s = signed();
    let e = entry_json(&log, &s.hashedrekord_v1(), "dsse", "0.0.1");
    let err = verify(&e, &[&log], &s.expectation()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "log entry declares kind dsse 0.0.1, but its body is hashedrekord 0.0.1"
    );
}

#[test]
fn rekor_v2_hashedrekord_entry_verifies_by_inclusion_proof_alone() {
    let log = TestLog::ed25519("log2025-1.rekor.test", 2);
    let s = signed();
    let e = v2_entry_json(&log, &s.hashedrekord_v2(), "hashedrekord");
    let v = verify(&e, &[&log], &s.expectation()).unwrap();
    assert_eq!(v.kind(), EntryKind::HashedRekordV002);
    assert_eq!(v.integrated_time(), None);
    assert_eq!(v.signed_time(), None);
    assert!(v.inclusion_proven());

    let other = signed();
    let err = verify(&e, &[&log], &other.expectation()).unwrap_err();
    assert!(matches!(err, TlogError::BodyMismatch { .. }), "{err}");
}

/// A DSSE envelope signed by a fresh key.
fn signed_envelope() -> (KeyPair, Envelope) {
    let signer = KeyPair::generate_p256().unwrap();
    let envelope = Envelope::sign(
        "application/vnd.in-toto+json",
        br#"{"_type":"https://in-toto.io/Statement/v1"}"#,
        &signer,
    )
    .unwrap();
    (signer, envelope)
}

fn dsse_expectation(signer: &KeyPair, envelope: &Envelope) -> EntryExpectation {
    EntryExpectation::dsse(envelope, ExpectedSigner::public_key(signer.public_key())).unwrap()
}

#[test]
fn rekor_v2_dsse_entry_verifies_by_inclusion_proof_alone() {
    let log = TestLog::ed25519("log2025-1.rekor.test", 2);
    let (signer, envelope) = signed_envelope();
    let payload = envelope.payload_bytes().unwrap();
    let body = serde_json::to_vec(&json!({
        "kind": "dsse",
        "apiVersion": "0.0.2",
        "spec": {"dsseV002": {
            "payloadHash": {"algorithm": "SHA2_256", "digest": B64.encode(Sha256::digest(&payload))},
            "signatures": [{
                "content": envelope.signatures[0].sig,
                "verifier": {
                    "publicKey": {"rawBytes": B64.encode(signer.public_key().der())},
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                },
            }],
        }},
    }))
    .unwrap();
    let e = v2_entry_json(&log, &body, "dsse");
    let v = verify(&e, &[&log], &dsse_expectation(&signer, &envelope)).unwrap();
    assert_eq!(v.kind(), EntryKind::DsseV002);
    assert!(v.inclusion_proven());
    assert_eq!(v.integrated_time(), None);

    let (other_signer, other_envelope) = signed_envelope();
    let err = verify(
        &e,
        &[&log],
        &dsse_expectation(&other_signer, &other_envelope),
    )
    .unwrap_err();
    assert!(matches!(err, TlogError::BodyMismatch { .. }), "{err}");
}

#[test]
fn rekor_v2_hashedrekord_over_the_pae_vouches_for_a_dsse_envelope() {
    let log = TestLog::ed25519("log2025-1.rekor.test", 2);
    let (signer, envelope) = signed_envelope();
    let payload = envelope.payload_bytes().unwrap();
    let body = serde_json::to_vec(&json!({
        "kind": "hashedrekord",
        "apiVersion": "0.0.2",
        "spec": {"hashedRekordV002": {
            "data": {
                "algorithm": "SHA2_256",
                "digest": B64.encode(Sha256::digest(pae(&envelope.payload_type, &payload))),
            },
            "signature": {
                "content": envelope.signatures[0].sig,
                "verifier": {
                    "publicKey": {"rawBytes": B64.encode(signer.public_key().der())},
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                },
            },
        }},
    }))
    .unwrap();
    let e = v2_entry_json(&log, &body, "hashedrekord");
    let v = verify(&e, &[&log], &dsse_expectation(&signer, &envelope)).unwrap();
    assert_eq!(v.kind(), EntryKind::HashedRekordV002);
}

#[test]
fn legacy_cosign_sig_bundle_annotation_verifies_its_set() {
    let log = TestLog::p256("rekor.test");
    // A `.sig` layer: the signature is over the simple-signing payload; the entry logs its
    // SHA-256.
    let s = signed();
    let body = s.hashedrekord_v1();
    let annotation = json!({
        "SignedEntryTimestamp": B64.encode(log.set(&body, TIME, INDEX)),
        "Payload": {
            "body": B64.encode(&body),
            "integratedTime": TIME,
            "logIndex": INDEX,
            "logID": hex::encode(log.log_id()),
        },
    });
    let entry =
        LogEntry::from_cosign_bundle_annotation(&serde_json::to_vec(&annotation).unwrap()).unwrap();
    let v = verify_entry(&entry, std::slice::from_ref(&log.log), &s.expectation()).unwrap();
    assert_eq!(
        v.integrated_time(),
        Some(UNIX_EPOCH + Duration::from_secs(TIME))
    );
    assert!(!v.inclusion_proven());

    let mut tampered = annotation.clone();
    tampered["Payload"]["integratedTime"] = json!(TIME + 1);
    let entry =
        LogEntry::from_cosign_bundle_annotation(&serde_json::to_vec(&tampered).unwrap()).unwrap();
    let err = verify_entry(&entry, std::slice::from_ref(&log.log), &s.expectation()).unwrap_err();
    assert!(matches!(err, TlogError::PromiseInvalid { .. }), "{err}");
}

#[test]
fn legacy_cosign_att_bundle_annotation_with_an_intoto_body_verifies() {
    let log = TestLog::p256("rekor.test");
    let (signer, envelope) = signed_envelope();
    let payload = envelope.payload_bytes().unwrap();
    // Rekor's intoto 0.0.2 stores the envelope's base64 strings as bytes: base64 of base64.
    let body = serde_json::to_vec(&json!({
        "apiVersion": "0.0.2",
        "kind": "intoto",
        "spec": {"content": {
            "envelope": {
                "payloadType": envelope.payload_type,
                "signatures": [{
                    "sig": B64.encode(envelope.signatures[0].sig.as_bytes()),
                    "publicKey": B64.encode(signer.public_key().to_pem()),
                }],
            },
            "hash": {"algorithm": "sha256", "value": hex::encode(Sha256::digest(envelope.to_json()))},
            "payloadHash": {"algorithm": "sha256", "value": hex::encode(Sha256::digest(&payload))},
        }},
    }))
    .unwrap();
    let annotation = json!({
        "SignedEntryTimestamp": B64.encode(log.set(&body, TIME, INDEX)),
        "Payload": {
            "body": B64.encode(&body),
            "integratedTime": TIME,
            "logIndex": INDEX,
            "logID": hex::encode(log.log_id()),
        },
    });
    let entry =
        LogEntry::from_cosign_bundle_annotation(&serde_json::to_vec(&annotation).unwrap()).unwrap();
    let v = verify_entry(
        &entry,
        std::slice::from_ref(&log.log),
        &dsse_expectation(&signer, &envelope),
    )
    .unwrap();
    assert_eq!(v.kind(), EntryKind::IntotoV002);

    let (other_signer, other_envelope) = signed_envelope();
    let err = verify_entry(
        &entry,
        std::slice::from_ref(&log.log),
        &dsse_expectation(&other_signer, &other_envelope),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "log entry vouches for another signature: none it logs is the envelope's"
    );
}

#[test]
fn log_window_is_enforced_at_the_integrated_time() {
    let mut log = TestLog::p256("rekor.test");
    log.log = TransparencyLog::new(
        "rekor.test",
        log.log_id().to_vec(),
        log.log.key().clone(),
        ValidFor {
            start: Some(UNIX_EPOCH + Duration::from_secs(TIME + 1)),
            end: None,
        },
    );
    let s = signed();
    let e = entry_json(&log, &s.hashedrekord_v1(), "hashedrekord", "0.0.1");
    let err = verify(&e, &[&log], &s.expectation()).unwrap_err();
    assert!(matches!(err, TlogError::LogNotValidAt { .. }), "{err}");
}

#[test]
fn intoto_v001_entry_vouches_for_payload_and_key() {
    let log = TestLog::p256("rekor.test");
    let (signer, envelope) = signed_envelope();
    let payload = envelope.payload_bytes().unwrap();
    let body = serde_json::to_vec(&json!({
        "apiVersion": "0.0.1",
        "kind": "intoto",
        "spec": {
            "content": {
                "hash": {"algorithm": "sha256", "value": hex::encode(Sha256::digest(envelope.to_json()))},
                "payloadHash": {"algorithm": "sha256", "value": hex::encode(Sha256::digest(&payload))},
            },
            "publicKey": B64.encode(signer.public_key().to_pem()),
        },
    }))
    .unwrap();
    let e = entry_json(&log, &body, "intoto", "0.0.1");
    let v = verify(&e, &[&log], &dsse_expectation(&signer, &envelope)).unwrap();
    assert_eq!(v.kind(), EntryKind::IntotoV001);

    let other = KeyPair::generate_p256().unwrap();
    let err = verify(&e, &[&log], &dsse_expectation(&other, &envelope)).unwrap_err();
    assert!(matches!(err, TlogError::BodyMismatch { .. }), "{err}");
}

#[test]
fn message_signature_is_not_matched_by_a_dsse_entry() {
    let b = real_bundle("bundle_v03.json");
    let entry = LogEntry::from_bundle_json(&b.entry_json).unwrap();
    let expected = EntryExpectation::message_signature(
        Digest::sha256_of(b"artifact"),
        vec![1, 2, 3],
        ExpectedSigner::certificate(b.certificate.clone()),
    );
    let err = verify_entry(&entry, &[rekor_v1()], &expected).unwrap_err();
    assert_eq!(
        err.to_string(),
        "log entry vouches for another kind of content: a dsse 0.0.1 entry logs a DSSE envelope, \
         not a message signature"
    );
}

#[test]
fn unsupported_entry_kind_is_rejected() {
    let log = TestLog::p256("rekor.test");
    let s = signed();
    let body =
        serde_json::to_vec(&json!({"apiVersion": "0.0.1", "kind": "rekord", "spec": {}})).unwrap();
    let e = entry_json(&log, &body, "rekord", "0.0.1");
    let err = verify(&e, &[&log], &s.expectation()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported log entry kind \"rekord\" version \"0.0.1\""
    );
}

#[test]
fn set_without_an_integrated_time_is_rejected() {
    let log = TestLog::p256("rekor.test");
    let s = signed();
    let mut e = entry_json(&log, &s.hashedrekord_v1(), "hashedrekord", "0.0.1");
    e.as_object_mut().unwrap().remove("integratedTime");
    let err = verify(&e, &[&log], &s.expectation()).unwrap_err();
    assert_eq!(err, TlogError::PromiseWithoutTime);
}

#[test]
fn malformed_entries_are_rejected_with_the_field_named() {
    let log = TestLog::p256("rekor.test");
    let s = signed();
    let good = entry_json(&log, &s.hashedrekord_v1(), "hashedrekord", "0.0.1");
    for (pointer, value, why) in [
        (
            "/logIndex",
            json!("-1"),
            "logIndex \"-1\" is not a non-negative integer",
        ),
        ("/logId/keyId", json!("!!"), "logId.keyId is not base64"),
        (
            "/integratedTime",
            json!(true),
            "integratedTime is not an integer",
        ),
        (
            "/canonicalizedBody",
            json!(""),
            "canonicalizedBody is empty",
        ),
        (
            "/inclusionProof/rootHash",
            json!("AAAA"),
            "rootHash is not 32 bytes",
        ),
        (
            "/inclusionProof/treeSize",
            json!(null),
            "inclusionProof.treeSize is missing",
        ),
        (
            "/kindVersion/kind",
            json!(1),
            "kindVersion.kind is not a string",
        ),
    ] {
        let mut e = good.clone();
        *e.pointer_mut(pointer).unwrap() = value;
        let err = LogEntry::from_bundle_json(&e).unwrap_err().to_string();
        assert!(err.contains(why), "{pointer}: {err}");
    }
}

/// The signed-note key id of an Ed25519 key: SHA-256(name || "\n" || 0x01 || key).
fn note_key_id(name: &str, raw_key: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n\x01");
    h.update(raw_key);
    h.finalize().to_vec()
}

/// Why checkpoint key hints are matched against the first 4 bytes of the trusted root's log
/// id: for Rekor v1 that id is the SHA-256 of the DER key (`c0d23d6a`, the hint of the real
/// checkpoint above), for Rekor v2 it is the signed-note key id, whose first 4 bytes are the
/// hint by the signed-note spec.
#[test]
fn rekor_v2_log_id_is_its_signed_note_key_id() {
    let root: Value = serde_json::from_slice(&public_good_root()).unwrap();
    let tlog = &root["tlogs"][1];
    assert_eq!(tlog["baseUrl"], "https://log2025-1.rekor.sigstore.dev");
    let der = B64
        .decode(tlog["publicKey"]["rawBytes"].as_str().unwrap())
        .unwrap();
    let log_id = B64
        .decode(tlog["logId"]["keyId"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        note_key_id("log2025-1.rekor.sigstore.dev", &der[der.len() - 32..]),
        log_id
    );
}

#[test]
fn proof_without_a_checkpoint_is_checked_but_vouches_for_nothing() {
    let log = TestLog::p256("rekor.test");
    let s = signed();
    let mut e = entry_json(&log, &s.hashedrekord_v1(), "hashedrekord", "0.0.1");
    e["inclusionProof"]
        .as_object_mut()
        .unwrap()
        .remove("checkpoint");
    // With its SET (a bundle v0.1): verified, the inclusion not proven.
    let v = verify(&e, &[&log], &s.expectation()).unwrap();
    assert!(!v.inclusion_proven());
    assert!(v.integrated_time().is_some());
    // A proof that does not lead to its root still fails.
    let mut broken = e.clone();
    broken["inclusionProof"]["hashes"][0] = json!(B64.encode([1u8; 32]));
    let err = verify(&broken, &[&log], &s.expectation()).unwrap_err();
    assert!(matches!(err, TlogError::ProofRootMismatch { .. }), "{err}");
    // Without the SET, nothing vouches.
    e.as_object_mut().unwrap().remove("inclusionPromise");
    let err = verify(&e, &[&log], &s.expectation()).unwrap_err();
    assert_eq!(err, TlogError::NothingVouches);
}

/// Rekor hashes the envelope as the client sent it; a client that wrote its keys in another
/// order gets another `envelopeHash` for the same envelope, and the entry is still sound.
#[test]
fn dsse_v001_entry_does_not_depend_on_the_submitting_clients_envelope_hash() {
    let log = TestLog::p256("rekor.test");
    let (signer, envelope) = signed_envelope();
    let payload = envelope.payload_bytes().unwrap();
    let as_go_writes_it = format!(
        r#"{{"payloadType":"{}","payload":"{}","signatures":[{{"keyid":"","sig":"{}"}}]}}"#,
        envelope.payload_type, envelope.payload, envelope.signatures[0].sig
    );
    let body = serde_json::to_vec(&json!({
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": hex::encode(Sha256::digest(as_go_writes_it))},
            "payloadHash": {"algorithm": "sha256", "value": hex::encode(Sha256::digest(&payload))},
            "signatures": [{
                "signature": envelope.signatures[0].sig,
                "verifier": B64.encode(signer.public_key().to_pem()),
            }],
        },
    }))
    .unwrap();
    let e = entry_json(&log, &body, "dsse", "0.0.1");
    let v = verify(&e, &[&log], &dsse_expectation(&signer, &envelope)).unwrap();
    assert_eq!(v.kind(), EntryKind::DsseV001);
}
