//! Binary Authorization's own evidence against the real registry, made by the real tools:
//! `openssl` PKIX signatures for every algorithm Binary Authorization names, `gpg` signed
//! messages exactly as Google's documentation makes them, occurrence JSON in the shape
//! `gcloud container binauthz attestations list --format=json` prints; then `signet binauthz
//! import` and `signet verify --policy` with a GCP-shaped policy. And back: what `signet attest
//! --format binauthz` signs verifies with `gpg --verify`, and `binauthz export` round-trips into
//! a second registry.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::cli::{Run, signet};
use crate::harness::{Options, Registry};
use crate::images::push_image;

const PASSWORD: &str = "e2e password";

/// The exact bytes `gcloud container binauthz create-signature-payload` prints, written out
/// here independently of signet's own writer.
fn gcloud_payload(repository: &str, digest: &str) -> String {
    format!(
        "{{\n  \"critical\": {{\n    \"identity\": {{\n      \"docker-reference\": \
         \"{repository}\"\n    }},\n    \"image\": {{\n      \"docker-manifest-digest\": \
         \"{digest}\"\n    }},\n    \"type\": \"Google cloud binauthz container signature\"\n  \
         }}\n}}\n"
    )
}

fn tool(dir: &Path, program: &str, args: &[&str]) -> std::process::Output {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}); install it with `bash scripts/setup-tests.sh`")
        });
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn openssl(dir: &Path, args: &[&str]) -> std::process::Output {
    tool(dir, "openssl", args)
}

/// A gpg home in a temporary directory.
struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    fn new() -> Gpg {
        Gpg {
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, dir: &Path, args: &[&str]) -> std::process::Output {
        let output = Command::new("gpg")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--batch", "--pinentry-mode", "loopback", "--yes"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run gpg ({e}); install it with `bash scripts/setup-tests.sh`")
            });
        assert!(
            output.status.success(),
            "gpg {args:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Makes a key as Google's PGP attestor guide does and returns its fingerprint.
    fn generate(&self, dir: &Path, email: &str, algorithm: &str, passphrase: &str) -> String {
        self.run(
            dir,
            &[
                "--passphrase",
                passphrase,
                "--quick-gen-key",
                &format!("Attestor <{email}>"),
                algorithm,
                "sign",
                "0",
            ],
        );
        let listing = self.run(dir, &["--with-colons", "--list-keys", email]);
        String::from_utf8(listing.stdout)
            .unwrap()
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .unwrap()
            .to_string()
    }

    fn export_public(&self, dir: &Path, email: &str) -> String {
        String::from_utf8(self.run(dir, &["--armor", "--export", email]).stdout).unwrap()
    }
}

/// One occurrence as `gcloud container binauthz attestations list --format=json` prints it.
fn occurrence(
    name: &str,
    note: &str,
    resource_uri: &str,
    payload: &[u8],
    key_id: &str,
    signature: &[u8],
) -> serde_json::Value {
    serde_json::json!({
        "attestation": {
            "serializedPayload": B64.encode(payload),
            "signatures": [{"publicKeyId": key_id, "signature": B64.encode(signature)}]
        },
        "createTime": "2026-11-30T10:00:00.123456Z",
        "kind": "ATTESTATION",
        "name": name,
        "noteName": note,
        "resourceUri": resource_uri,
        "updateTime": "2026-11-30T10:00:00.123456Z"
    })
}

fn indent(text: &str, spaces: usize) -> String {
    let pad = " ".repeat(spaces);
    text.lines()
        .map(|l| format!("{pad}{l}\n"))
        .collect::<String>()
}

/// An Attestor resource as `gcloud container binauthz attestors describe --format=yaml` shows
/// it, with one key.
fn attestor_yaml(name: &str, key: &str) -> String {
    format!(
        "  - name: projects/shop-prod/attestors/{name}\n    userOwnedGrafeasNote:\n      \
         noteReference: projects/shop-prod/notes/{name}\n      publicKeys:\n{key}"
    )
}

fn pkix_key_yaml(id: &str, pem: &str, algorithm: &str) -> String {
    format!(
        "        - id: {id}\n          pkixPublicKey:\n            signatureAlgorithm: \
         {algorithm}\n            publicKeyPem: |\n{}",
        indent(pem, 14)
    )
}

fn pgp_key_yaml(fingerprint: &str, armored: &str) -> String {
    format!(
        "        - id: {fingerprint}\n          asciiArmoredPgpPublicKey: |\n{}",
        indent(armored, 12)
    )
}

fn policy_yaml(attestors: &[(&str, String)]) -> String {
    let names: Vec<String> = attestors
        .iter()
        .map(|(n, _)| format!("projects/shop-prod/attestors/{n}"))
        .collect();
    let mut yaml = format!(
        "name: projects/shop-prod/policy\nglobalPolicyEvaluationMode: ENABLE\n\
         defaultAdmissionRule:\n  evaluationMode: REQUIRE_ATTESTATION\n  enforcementMode: \
         ENFORCED_BLOCK_AND_AUDIT_LOG\n  requireAttestationsBy: [{}]\nattestors:\n",
        names.join(", ")
    );
    for (_, attestor) in attestors {
        yaml.push_str(attestor);
    }
    yaml
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn run(dir: &Path, args: &[&str]) -> Run {
    signet(dir, args, Some(PASSWORD))
}

/// (attestor name, openssl key generation, signing options, Binary Authorization algorithm)
const PKIX_CASES: [(&str, &[&str], &[&str], &str); 6] = [
    (
        "p256",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        &["-sha256"],
        "ECDSA_P256_SHA256",
    ),
    (
        "p384",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        &["-sha384"],
        "ECDSA_P384_SHA384",
    ),
    (
        "p521",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
        &["-sha512"],
        "ECDSA_P521_SHA512",
    ),
    (
        "rsa-pss",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        &["-sha256", "-sigopt", "rsa_padding_mode:pss"],
        "RSA_PSS_2048_SHA256",
    ),
    (
        "rsa-pkcs1",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"],
        &["-sha256"],
        "RSA_SIGN_PKCS1_3072_SHA256",
    ),
    (
        "rsa-pss-512",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096"],
        &[
            "-sha512",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:64",
        ],
        "RSA_PSS_4096_SHA512",
    ),
];

#[test]
fn openssl_pkix_attestations_import_and_verify_under_a_gcp_policy() {
    let registry = Registry::start(Options::plain());
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (image, digest) = push_image(&registry, "shop/cart", "v1", b"cart v1");
    let (other_image, other_digest) = push_image(&registry, "shop/cart", "v2", b"cart v2");
    let repository = format!("{}/shop/cart", registry.host());
    let payload = gcloud_payload(&repository, &digest);
    write(dir, "payload.json", &payload);

    let mut attestors = Vec::new();
    let mut occurrences = Vec::new();
    for (index, (name, genkey, sign, algorithm)) in PKIX_CASES.iter().enumerate() {
        let key = format!("{name}.pem");
        let mut args = vec!["genpkey"];
        args.extend_from_slice(genkey);
        args.extend_from_slice(&["-out", &key]);
        openssl(dir, &args);
        let pem = openssl(dir, &["pkey", "-in", &key, "-pubout"]).stdout;
        let pem = String::from_utf8(pem).unwrap();
        // As Google's guide: `openssl dgst -sha256 -sign KEY payload.json > signature`.
        let mut args = vec!["dgst"];
        args.extend_from_slice(sign);
        args.extend_from_slice(&["-sign", &key, "payload.json"]);
        let signature = openssl(dir, &args).stdout;
        let id = format!(
            "//cloudkms.googleapis.com/v1/projects/shop-prod/locations/global/keyRings/binauthz/cryptoKeys/{name}/cryptoKeyVersions/1"
        );
        attestors.push((
            *name,
            attestor_yaml(name, &pkix_key_yaml(&id, &pem, algorithm)),
        ));
        occurrences.push(occurrence(
            &format!("projects/shop-prod/occurrences/{index}"),
            &format!("projects/shop-prod/notes/{name}"),
            &format!("https://{repository}@{digest}"),
            payload.as_bytes(),
            &id,
            &signature,
        ));
    }
    let policy = write(dir, "policy.yaml", policy_yaml(&attestors));
    run(dir, &["policy", "check", "policy.yaml"]).expect_code(0);
    let _ = policy;

    // Before the import: nothing to verify with.
    run(dir, &["verify", &image, "--policy", "policy.yaml"]).expect_code(1);

    write(
        dir,
        "occurrences.json",
        serde_json::to_vec_pretty(&occurrences).unwrap(),
    );
    let imported = run(
        dir,
        &[
            "binauthz",
            "import",
            "occurrences.json",
            "--policy",
            "policy.yaml",
        ],
    )
    .expect_code(0);
    assert!(
        imported
            .stdout
            .contains("6 stored, 0 already there, 0 refused"),
        "{}",
        imported.stdout
    );
    for (name, ..) in PKIX_CASES {
        assert!(
            imported.stdout.contains(&format!("counts for {name}\n")),
            "{name}: {}",
            imported.stdout
        );
    }

    let verified = run(dir, &["verify", &image, "--policy", "policy.yaml"]).expect_code(0);
    assert!(
        verified.stdout.starts_with("ALLOWED"),
        "{}",
        verified.stdout
    );
    for (name, ..) in PKIX_CASES {
        assert!(
            verified.stdout.contains(&format!("✓ {name}:")),
            "{}",
            verified.stdout
        );
    }
    let json = run(
        dir,
        &[
            "verify",
            &image,
            "--policy",
            "policy.yaml",
            "--output",
            "json",
        ],
    )
    .expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["accepted"].as_array().unwrap().len(), 6, "{json}");
    assert!(
        json["attestors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["reason"]
                .as_str()
                .unwrap()
                .ends_with("(Binary Authorization attestation)")),
        "{json}"
    );

    // Idempotent: a second run adds nothing.
    let again = run(dir, &["binauthz", "import", "occurrences.json"]).expect_code(0);
    assert!(
        again
            .stdout
            .contains("0 stored, 6 already there, 0 refused"),
        "{}",
        again.stdout
    );

    // The tree names each attestation's note and key id.
    let tree = run(dir, &["tree", &image]).expect_code(0);
    assert!(
        tree.stdout
            .contains("[binauthz note projects/shop-prod/notes/p384, key //cloudkms"),
        "{}",
        tree.stdout
    );

    // Another digest: not attested.
    let denied = run(dir, &["verify", &other_image, "--policy", "policy.yaml"]).expect_code(1);
    assert!(denied.stdout.starts_with("DENIED"), "{}", denied.stdout);

    // For the other digest: the p256 signature under another key id, and an edited payload.
    let other_payload = gcloud_payload(&repository, &other_digest);
    write(dir, "other.json", &other_payload);
    let p256_sig = openssl(dir, &["dgst", "-sha256", "-sign", "p256.pem", "other.json"]).stdout;
    let edited = other_payload.replace("shop/cart", "shop/kart");
    let uri = format!("https://{repository}@{other_digest}");
    let bad = vec![
        occurrence(
            "projects/shop-prod/occurrences/wrong-id",
            "projects/shop-prod/notes/p256",
            &uri,
            other_payload.as_bytes(),
            "not-the-key-id",
            &p256_sig,
        ),
        occurrence(
            "projects/shop-prod/occurrences/edited",
            "projects/shop-prod/notes/p256",
            &uri,
            edited.as_bytes(),
            occurrences[0]["attestation"]["signatures"][0]["publicKeyId"]
                .as_str()
                .unwrap(),
            &p256_sig,
        ),
    ];
    write(dir, "bad.json", serde_json::to_vec(&bad).unwrap());
    let imported = run(
        dir,
        &["binauthz", "import", "bad.json", "--policy", "policy.yaml"],
    )
    .expect_code(0);
    assert!(
        imported
            .stdout
            .contains("counts for no attestor of the policy"),
        "{}",
        imported.stdout
    );
    let denied = run(
        dir,
        &[
            "verify",
            &other_image,
            "--policy",
            "policy.yaml",
            "--output",
            "json",
        ],
    )
    .expect_code(1);
    let rejected =
        serde_json::from_str::<serde_json::Value>(&denied.stdout).unwrap()["rejected"].to_string();
    assert!(
        rejected.contains(
            "signed by key id(s) not-the-key-id, none of which is a key of this attestor"
        ),
        "{rejected}"
    );
    assert!(rejected.contains("does not verify"), "{rejected}");

    // A payload about the first digest under the second digest's resourceUri: refused whole,
    // named, nothing stored for it.
    let mismatched = vec![occurrence(
        "projects/shop-prod/occurrences/moved",
        "projects/shop-prod/notes/p256",
        &uri,
        payload.as_bytes(),
        "x",
        &p256_sig,
    )];
    write(
        dir,
        "mismatched.json",
        serde_json::to_vec(&mismatched).unwrap(),
    );
    let refused = run(dir, &["binauthz", "import", "mismatched.json"]).expect_code(1);
    assert!(
        refused.stdout.contains(&format!(
            "refused projects/shop-prod/occurrences/moved: the payload attests {digest}, but resourceUri names {other_digest}"
        )),
        "{}",
        refused.stdout
    );
    let tree = run(dir, &["tree", &other_image, "--output", "json"]).expect_code(0);
    let tree: serde_json::Value = serde_json::from_str(&tree.stdout).unwrap();
    assert_eq!(tree["referrers"].as_array().unwrap().len(), 2, "{tree}");

    // signet signs with the openssl-made PEM key, naming the attestor's key id: p256 counts.
    let p256_id = occurrences[0]["attestation"]["signatures"][0]["publicKeyId"]
        .as_str()
        .unwrap()
        .to_string();
    run(
        dir,
        &[
            "attest",
            &other_image,
            "--format",
            "binauthz",
            "--key",
            "p256.pem",
            "--public-key-id",
            &p256_id,
        ],
    )
    .expect_code(0);
    let json = run(
        dir,
        &[
            "verify",
            &other_image,
            "--policy",
            "policy.yaml",
            "--output",
            "json",
        ],
    )
    .expect_code(1);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let p256 = json["attestors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "p256")
        .unwrap();
    assert_eq!(p256["satisfied"], true, "{json}");
}

#[test]
fn gpg_attestations_verify_and_what_signet_signs_verifies_with_gpg() {
    let registry = Registry::start(Options::plain());
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let gpg = Gpg::new();
    let (image, digest) = push_image(&registry, "shop/pay", "v1", b"pay v1");
    let (second, second_digest) = push_image(&registry, "shop/pay", "v2", b"pay v2");
    let (third, third_digest) = push_image(&registry, "shop/pay", "v3", b"pay v3");
    let repository = format!("{}/shop/pay", registry.host());

    let rsa = gpg.generate(dir, "rsa@shop.example", "rsa3072", "");
    let ed = gpg.generate(dir, "ed@shop.example", "ed25519", "");
    let attestors = vec![
        (
            "qa-rsa",
            attestor_yaml(
                "qa-rsa",
                &pgp_key_yaml(&rsa, &gpg.export_public(dir, "rsa@shop.example")),
            ),
        ),
        (
            "qa-ed",
            attestor_yaml(
                "qa-ed",
                &pgp_key_yaml(&ed, &gpg.export_public(dir, "ed@shop.example")),
            ),
        ),
    ];
    write(dir, "policy.yaml", policy_yaml(&attestors));
    let check = run(dir, &["policy", "check", "policy.yaml"]).expect_code(0);
    assert!(check.stdout.contains("pgp "), "{}", check.stdout);

    // Exactly as Google's guide: gpg --local-user KEY --armor --output sig.pgp --sign payload.json
    let payload = gcloud_payload(&repository, &digest);
    write(dir, "payload.json", &payload);
    let mut occurrences = Vec::new();
    for (email, fingerprint, note) in [
        ("rsa@shop.example", &rsa, "qa-rsa"),
        ("ed@shop.example", &ed, "qa-ed"),
    ] {
        gpg.run(
            dir,
            &[
                "--local-user",
                email,
                "--armor",
                "--output",
                "sig.pgp",
                "--sign",
                "payload.json",
            ],
        );
        let signature = std::fs::read(dir.join("sig.pgp")).unwrap();
        occurrences.push(occurrence(
            &format!("projects/shop-prod/occurrences/{note}"),
            &format!("projects/shop-prod/notes/{note}"),
            &format!("https://{repository}@{digest}"),
            payload.as_bytes(),
            fingerprint,
            &signature,
        ));
    }
    // The older v1beta1 shape of the same: the armoured message in pgpSignedAttestation.
    let second_payload = gcloud_payload(&repository, &second_digest);
    write(dir, "second.json", &second_payload);
    for (email, fingerprint, note) in [
        ("rsa@shop.example", &rsa, "qa-rsa"),
        ("ed@shop.example", &ed, "qa-ed"),
    ] {
        gpg.run(
            dir,
            &[
                "--local-user",
                email,
                "--armor",
                "--output",
                "second.pgp",
                "--sign",
                "second.json",
            ],
        );
        let armored = std::fs::read_to_string(dir.join("second.pgp")).unwrap();
        occurrences.push(serde_json::json!({
            "name": format!("projects/shop-prod/occurrences/legacy-{note}"),
            "resource": {"uri": format!("https://{repository}@{second_digest}")},
            "noteName": format!("projects/shop-prod/notes/{note}"),
            "kind": "ATTESTATION",
            "attestation": {"attestation": {"pgpSignedAttestation": {
                "signature": armored,
                "contentType": "SIMPLE_SIGNING_JSON",
                "pgpKeyId": fingerprint,
            }}}
        }));
    }
    // A PGP message that carries another payload than the one stored beside it.
    let third_payload = gcloud_payload(&repository, &third_digest);
    let carried = third_payload.replace("shop/pay", "shop/paid");
    write(dir, "carried.json", &carried);
    for (email, fingerprint, note) in [
        ("rsa@shop.example", &rsa, "qa-rsa"),
        ("ed@shop.example", &ed, "qa-ed"),
    ] {
        gpg.run(
            dir,
            &[
                "--local-user",
                email,
                "--armor",
                "--output",
                "carried.pgp",
                "--sign",
                "carried.json",
            ],
        );
        let signature = std::fs::read(dir.join("carried.pgp")).unwrap();
        occurrences.push(occurrence(
            &format!("projects/shop-prod/occurrences/carried-{note}"),
            &format!("projects/shop-prod/notes/{note}"),
            &format!("https://{repository}@{third_digest}"),
            third_payload.as_bytes(),
            fingerprint,
            &signature,
        ));
    }
    write(
        dir,
        "occurrences.json",
        serde_json::to_vec_pretty(&serde_json::json!({"occurrences": occurrences})).unwrap(),
    );
    let imported = run(
        dir,
        &[
            "binauthz",
            "import",
            "occurrences.json",
            "--policy",
            "policy.yaml",
        ],
    )
    .expect_code(0);
    assert!(
        imported
            .stdout
            .contains("6 stored, 0 already there, 0 refused"),
        "{}",
        imported.stdout
    );

    let allowed = run(dir, &["verify", &image, "--policy", "policy.yaml"]).expect_code(0);
    assert!(allowed.stdout.starts_with("ALLOWED"), "{}", allowed.stdout);
    let allowed = run(dir, &["verify", &second, "--policy", "policy.yaml"]).expect_code(0);
    assert!(allowed.stdout.starts_with("ALLOWED"), "{}", allowed.stdout);
    let denied = run(dir, &["verify", &third, "--policy", "policy.yaml"]).expect_code(1);
    assert!(
        denied
            .stdout
            .contains("carries another payload than the stored one"),
        "{}",
        denied.stdout
    );

    // The reverse: signet signs with an armoured secret key, gpg verifies.
    let secret = gpg
        .run(
            dir,
            &[
                "--armor",
                "--passphrase",
                "",
                "--export-secret-keys",
                "ed@shop.example",
            ],
        )
        .stdout;
    write(dir, "ed-secret.asc", &secret);
    let (fourth, fourth_digest) = push_image(&registry, "shop/pay", "v4", b"pay v4");
    let signed = signet(
        dir,
        &[
            "attest",
            &fourth,
            "--format",
            "binauthz",
            "--pgp-key",
            "ed-secret.asc",
            "--note",
            "projects/shop-prod/notes/qa-ed",
        ],
        Some(""),
    )
    .expect_code(0);
    assert!(signed.stderr.contains(&ed), "{}", signed.stderr);
    let exported = run(
        dir,
        &["binauthz", "export", &fourth, "--output", "fourth.json"],
    )
    .expect_code(0);
    let _ = exported;
    let list: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("fourth.json")).unwrap()).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let stored = &list[0];
    assert_eq!(stored["noteName"], "projects/shop-prod/notes/qa-ed");
    assert_eq!(
        stored["attestation"]["signatures"][0]["publicKeyId"],
        ed.as_str()
    );
    let stored_payload = B64
        .decode(stored["attestation"]["serializedPayload"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        String::from_utf8(stored_payload).unwrap(),
        gcloud_payload(&repository, &fourth_digest)
    );
    let message = B64
        .decode(
            stored["attestation"]["signatures"][0]["signature"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    write(dir, "signet.pgp", &message);
    gpg.run(dir, &["--verify", "signet.pgp"]);
    let decrypted = gpg.run(dir, &["--decrypt", "signet.pgp"]).stdout;
    assert_eq!(
        String::from_utf8(decrypted).unwrap(),
        gcloud_payload(&repository, &fourth_digest)
    );
    let allowed = run(
        dir,
        &[
            "verify",
            &fourth,
            "--policy",
            "policy.yaml",
            "--output",
            "json",
        ],
    )
    .expect_code(1);
    // Only qa-ed signed the fourth image; qa-rsa is missing, by name.
    assert!(allowed.stdout.contains("qa-rsa"), "{}", allowed.stdout);
    let json: serde_json::Value = serde_json::from_str(&allowed.stdout).unwrap();
    let ed_result = json["attestors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "qa-ed")
        .unwrap()
        .clone();
    assert_eq!(ed_result["satisfied"], true, "{json}");
}

#[test]
fn export_round_trips_into_a_second_registry() {
    let first = Registry::start(Options::plain());
    let second = Registry::start(Options::plain());
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    signet(dir, &["keygen", "--output-prefix", "ci"], Some(PASSWORD)).expect_code(0);
    let (image, digest) = push_image(&first, "team/app", "v1", b"round trip");
    let (copy, copy_digest) = push_image(&second, "team/app", "v1", b"round trip");
    assert_eq!(digest, copy_digest, "the same image in both registries");

    let attested = run(
        dir,
        &[
            "attest",
            &image,
            "--format",
            "binauthz",
            "--key",
            "ci.key",
            "--note",
            "projects/p/notes/built-by-ci",
        ],
    )
    .expect_code(0);
    assert!(
        attested.stdout.trim().starts_with("sha256:"),
        "{}",
        attested.stdout
    );
    run(
        dir,
        &[
            "binauthz",
            "export",
            &image,
            "--attestor",
            "projects/p/notes/built-by-ci",
            "--output",
            "out.json",
        ],
    )
    .expect_code(0);
    // Another note: nothing.
    run(
        dir,
        &[
            "binauthz",
            "export",
            &image,
            "--attestor",
            "projects/p/notes/other",
            "--output",
            "none.json",
        ],
    )
    .expect_code(0);
    assert_eq!(
        std::fs::read_to_string(dir.join("none.json"))
            .unwrap()
            .trim(),
        "[]"
    );

    // The policy names the key the way Binary Authorization does when no id is set.
    let pem = std::fs::read_to_string(dir.join("ci.pub")).unwrap();
    let key = format!(
        "        - pkixPublicKey:\n            signatureAlgorithm: ECDSA_P256_SHA256\n            publicKeyPem: |\n{}",
        indent(&pem, 14)
    );
    write(
        dir,
        "policy.yaml",
        policy_yaml(&[("built-by-ci", attestor_yaml("built-by-ci", &key))]),
    );
    run(dir, &["verify", &image, "--policy", "policy.yaml"]).expect_code(0);
    run(dir, &["verify", &copy, "--policy", "policy.yaml"]).expect_code(1);
    // signet's own form of the attestor (no Binary Authorization key ids) counts it too.
    write(
        dir,
        "own.yaml",
        "defaultAdmissionRule:\n  evaluationMode: REQUIRE_ATTESTATION\n  enforcementMode: \
         ENFORCED_BLOCK_AND_AUDIT_LOG\n  requireAttestationsBy: [ci]\nattestors:\n  - name: ci\n    \
         publicKeys: [{file: ci.pub}]\n",
    );
    run(dir, &["verify", &image, "--policy", "own.yaml"]).expect_code(0);

    let map = format!("{}={}", first.host(), second.host());
    let imported = run(
        dir,
        &["binauthz", "import", "out.json", "--registry-map", &map],
    )
    .expect_code(0);
    assert!(imported.stdout.contains("1 stored"), "{}", imported.stdout);
    let allowed = run(dir, &["verify", &copy, "--policy", "policy.yaml"]).expect_code(0);
    assert!(allowed.stdout.starts_with("ALLOWED"), "{}", allowed.stdout);
    // A mirror carries them like any referrer: into an OCI layout, and the policy allows there.
    let layout = format!("oci:{}:team/app:v1", dir.join("layout").display());
    run(dir, &["mirror", "--quiet", &image, &layout]).expect_code(0);
    let allowed = run(dir, &["verify", &layout, "--policy", "policy.yaml"]).expect_code(0);
    assert!(allowed.stdout.starts_with("ALLOWED"), "{}", allowed.stdout);
    // Without the map, the first registry already has it.
    let again = run(dir, &["binauthz", "import", "out.json"]).expect_code(0);
    assert!(
        again.stdout.contains("0 stored, 1 already there"),
        "{}",
        again.stdout
    );
}

#[test]
fn bad_input_gets_a_clear_error_and_nothing_partial() {
    let registry = Registry::start(Options::plain());
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let gpg = Gpg::new();
    let (image, digest) = push_image(&registry, "shop/bad", "v1", b"bad v1");
    let repository = format!("{}/shop/bad", registry.host());
    let fingerprint = gpg.generate(dir, "k@shop.example", "ed25519", "");
    let public = gpg.export_public(dir, "k@shop.example");

    // Policies: truncated armour, a secret key where a public key belongs, an unknown
    // algorithm, a key id that is not the fingerprint.
    let truncated: String = public.lines().take(4).map(|l| format!("{l}\n")).collect();
    let secret = String::from_utf8(
        gpg.run(
            dir,
            &[
                "--armor",
                "--passphrase",
                "",
                "--export-secret-keys",
                "k@shop.example",
            ],
        )
        .stdout,
    )
    .unwrap();
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "k.pem",
        ],
    );
    let pem = String::from_utf8(openssl(dir, &["pkey", "-in", "k.pem", "-pubout"]).stdout).unwrap();
    for (name, key, expected) in [
        (
            "truncated",
            pgp_key_yaml(&fingerprint, &truncated),
            "PGP key: ",
        ),
        (
            "secret",
            pgp_key_yaml(&fingerprint, &secret),
            "found a secret (private) key",
        ),
        (
            "algorithm",
            pkix_key_yaml("k", &pem, "ECDSA_P256_SHA3"),
            "unknown `signatureAlgorithm` `ECDSA_P256_SHA3`",
        ),
        (
            "wrong-id",
            pgp_key_yaml("0123456789ABCDEF0123456789ABCDEF01234567", &public),
            "is not the PGP key's fingerprint",
        ),
    ] {
        write(
            dir,
            "p.yaml",
            policy_yaml(&[(name, attestor_yaml(name, &key))]),
        );
        let checked = run(dir, &["policy", "check", "p.yaml"]).expect_code(2);
        assert!(
            checked.stderr.contains(expected),
            "{name}: {}",
            checked.stderr
        );
    }

    // A 10 MB payload and bad base64, next to one good occurrence: the bad ones are refused by
    // name, the good one is stored.
    let payload = gcloud_payload(&repository, &digest);
    let uri = format!("https://{repository}@{digest}");
    let huge = vec![b' '; 10 << 20];
    let mut bad_base64 = occurrence(
        "projects/p/occurrences/bad-base64",
        "projects/p/notes/n",
        &uri,
        payload.as_bytes(),
        "k",
        b"sig",
    );
    bad_base64["attestation"]["serializedPayload"] = "%%% not base64 %%%".into();
    let list = serde_json::json!([
        occurrence(
            "projects/p/occurrences/huge",
            "projects/p/notes/n",
            &uri,
            &huge,
            "k",
            b"sig"
        ),
        bad_base64,
        occurrence(
            "projects/p/occurrences/absent",
            "projects/p/notes/n",
            &format!("https://{repository}@sha256:{}", "0".repeat(64)),
            gcloud_payload(&repository, &format!("sha256:{}", "0".repeat(64))).as_bytes(),
            "k",
            b"sig"
        ),
        occurrence(
            "projects/p/occurrences/good",
            "projects/p/notes/n",
            &uri,
            payload.as_bytes(),
            "k",
            b"sig"
        ),
    ]);
    write(dir, "mixed.json", serde_json::to_vec(&list).unwrap());
    let imported = run(
        dir,
        &["binauthz", "import", "mixed.json", "--output", "json"],
    )
    .expect_code(1);
    let report: serde_json::Value = serde_json::from_str(&imported.stdout).unwrap();
    assert_eq!(report["stored"], 1, "{report}");
    assert_eq!(report["refused"], 3, "{report}");
    let text = report.to_string();
    assert!(
        text.contains(
            "\"occurrence\":\"projects/p/occurrences/huge\",\"reason\":\"serializedPayload is \
             10485760, more than the limit of 65536\""
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "\"occurrence\":\"projects/p/occurrences/bad-base64\",\"reason\":\"serializedPayload: \
             not base64\""
        ),
        "{text}"
    );
    assert!(text.contains("is not in the registry"), "{text}");
    let tree = run(dir, &["tree", &image, "--output", "json"]).expect_code(0);
    let tree: serde_json::Value = serde_json::from_str(&tree.stdout).unwrap();
    assert_eq!(tree["referrers"].as_array().unwrap().len(), 1, "{tree}");

    // 100,000 occurrences in one file: refused whole with a clear error, nothing stored.
    let many = format!("[{}]", vec!["{}"; 100_000].join(","));
    write(dir, "many.json", many);
    let refused = run(dir, &["binauthz", "import", "many.json"]).expect_code(2);
    assert!(
        refused
            .stderr
            .contains("number of occurrences in one file is 100000, more than the limit of 10000"),
        "{}",
        refused.stderr
    );
    // Not JSON at all.
    write(dir, "broken.json", "[{\"name\": ");
    let refused = run(dir, &["binauthz", "import", "broken.json"]).expect_code(2);
    assert!(
        refused.stderr.contains("malformed occurrence JSON"),
        "{}",
        refused.stderr
    );
}

#[test]
fn the_daemon_counts_binauthz_attestations() {
    let registry = Registry::start(Options::plain());
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let gpg = Gpg::new();
    let fingerprint = gpg.generate(dir, "qa@shop.example", "ed25519", "");
    let secret = gpg
        .run(
            dir,
            &[
                "--armor",
                "--passphrase",
                "",
                "--export-secret-keys",
                "qa@shop.example",
            ],
        )
        .stdout;
    write(dir, "qa-secret.asc", &secret);
    let (attested, _) = push_image(&registry, "shop/api", "v1", b"api v1");
    let (unattested, _) = push_image(&registry, "shop/api", "v2", b"api v2");
    signet(
        dir,
        &[
            "attest",
            &attested,
            "--format",
            "binauthz",
            "--pgp-key",
            "qa-secret.asc",
        ],
        Some(""),
    )
    .expect_code(0);

    let key = pgp_key_yaml(&fingerprint, &gpg.export_public(dir, "qa@shop.example"));
    // The daemon reaches a loopback registry only when the allowlist names it outright.
    let policy = format!(
        "registryAllowlist: ['{}/**']\n{}",
        registry.host(),
        policy_yaml(&[("qa", attestor_yaml("qa", &key))])
    );
    let policy = write(dir, "policy.yaml", policy);
    let daemon = crate::serve::Daemon::start(dir, &policy, &[]);
    let allowed = daemon.post("/v1/verify", &serde_json::json!({"image": attested}));
    assert_eq!(allowed["allowed"], true, "{allowed}");
    assert!(
        allowed["attestors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains(&format!(
                "signed by {fingerprint} (Binary Authorization attestation)"
            )),
        "{allowed}"
    );
    let denied = daemon.post("/v1/verify", &serde_json::json!({"image": unattested}));
    assert_eq!(denied["allowed"], false, "{denied}");
}
