//! Keys in hardware through PKCS#11 (issue 16), against SoftHSM: a token initialised by the
//! test in a temporary directory, keys generated inside it by OpenSC's `pkcs11-tool` (sensitive,
//! never extractable), then the real binary signs with `--key 'pkcs11:…'`, `public-key` gives
//! the PEM that `verify --key` takes, and openssl checks the same signature independently.
//!
//! SoftHSM and OpenSC come from `scripts/setup-tests.sh`; without them these tests fail, saying
//! so, rather than skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::cli::{Run, signet_bin};
use crate::harness::{Options, Registry};
use crate::images::push_image;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const SO_PIN: &str = "87654321";
const PIN: &str = "123456";
const TOKEN: &str = "signet e2e";

/// A SoftHSM token of its own, in a temporary directory, with three key pairs generated in it:
/// `ec` (P-256, id 01), `rsa` (2048 bits, id 02), `ec384` (P-384, id 03).
struct Hsm {
    dir: tempfile::TempDir,
}

impl Hsm {
    fn new() -> Hsm {
        for (tool, package) in [
            (MODULE, "softhsm2"),
            ("/usr/bin/softhsm2-util", "softhsm2"),
            ("/usr/bin/pkcs11-tool", "opensc"),
        ] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: install {package} (bash scripts/setup-tests.sh)"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tokens")).unwrap();
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.path().join("tokens").display()
            ),
        )
        .unwrap();
        let hsm = Hsm { dir };
        hsm.tool(
            "softhsm2-util",
            &[
                "--init-token",
                "--free",
                "--label",
                TOKEN,
                "--so-pin",
                SO_PIN,
                "--pin",
                PIN,
            ],
        );
        for (key_type, label, id) in [
            ("EC:prime256v1", "ec", "01"),
            ("rsa:2048", "rsa", "02"),
            ("EC:secp384r1", "ec384", "03"),
        ] {
            hsm.tool(
                "pkcs11-tool",
                &[
                    "--module",
                    MODULE,
                    "--token-label",
                    TOKEN,
                    "--login",
                    "--pin",
                    PIN,
                    "--keypairgen",
                    "--key-type",
                    key_type,
                    "--label",
                    label,
                    "--id",
                    id,
                    "--usage-sign",
                    "--sensitive",
                ],
            );
        }
        hsm
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn tool(&self, tool: &str, args: &[&str]) -> String {
        let out = Command::new(tool)
            .args(args)
            .env("SOFTHSM2_CONF", self.conf())
            .output()
            .unwrap_or_else(|e| panic!("running {tool}: {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{tool} {args:?} failed:\n{text}");
        text
    }

    /// Runs `signet ARGS` against this token: SOFTHSM2_CONF set, SIGNET_PKCS11_MODULE set to
    /// SoftHSM, the PIN in SIGNET_PKCS11_PIN when given, no terminal.
    fn signet(&self, args: &[&str], pin: Option<&str>) -> Run {
        self.signet_env(args, pin, Some(MODULE))
    }

    fn signet_env(&self, args: &[&str], pin: Option<&str>, module: Option<&str>) -> Run {
        let mut cmd = Command::new(signet_bin());
        cmd.args(args)
            .current_dir(self.path())
            .env("SOFTHSM2_CONF", self.conf())
            .env_remove("SIGNET_PKCS11_PIN")
            .env_remove("SIGNET_PKCS11_MODULE")
            .env_remove("SIGNET_PASSWORD")
            .env_remove("COSIGN_PASSWORD")
            .stdin(Stdio::null());
        if let Some(pin) = pin {
            cmd.env("SIGNET_PKCS11_PIN", pin);
        }
        if let Some(module) = module {
            cmd.env("SIGNET_PKCS11_MODULE", module);
        }
        let out = cmd.output().expect("running signet");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The private key objects as pkcs11-tool (OpenSC, an independent reader) lists them.
    fn private_keys_listing(&self) -> String {
        self.tool(
            "pkcs11-tool",
            &[
                "--module",
                MODULE,
                "--token-label",
                TOKEN,
                "--login",
                "--pin",
                PIN,
                "--list-objects",
                "--type",
                "privkey",
            ],
        )
    }
}

fn uri(object: &str) -> String {
    format!("pkcs11:token=signet%20e2e;object={object}")
}

/// Fetches the bundle that `signet sign` pushed (the referrer manifest `referrer`) with plain
/// HTTP, and returns its DSSE envelope's pre-authentication encoding and signature.
fn pushed_envelope(registry: &Registry, repository: &str, referrer: &str) -> (Vec<u8>, Vec<u8>) {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let client = reqwest::blocking::Client::new();
    let manifest: serde_json::Value = client
        .get(format!(
            "{}/v2/{repository}/manifests/{referrer}",
            registry.url()
        ))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .unwrap()
        .json()
        .unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let bundle: serde_json::Value = client
        .get(format!("{}/v2/{repository}/blobs/{layer}", registry.url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let envelope = &bundle["dsseEnvelope"];
    let payload_type = envelope["payloadType"].as_str().unwrap();
    let payload = b64.decode(envelope["payload"].as_str().unwrap()).unwrap();
    let signature = b64
        .decode(envelope["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    // DSSE v1 PAE, written out here rather than borrowed from signet.
    let mut pae = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    pae.extend_from_slice(&payload);
    (pae, signature)
}

/// `openssl dgst -verify`: ECDSA (DER) and RSA PKCS#1 v1.5 alike.
fn openssl_verifies(dir: &Path, public_pem: &Path, digest: &str, message: &[u8], sig: &[u8]) {
    let message_path = dir.join("message.bin");
    let sig_path = dir.join("signature.bin");
    std::fs::write(&message_path, message).unwrap();
    std::fs::write(&sig_path, sig).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", digest, "-verify"])
        .arg(public_pem)
        .arg("-signature")
        .arg(&sig_path)
        .arg(&message_path)
        .output()
        .expect("running openssl (bash scripts/setup-tests.sh)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("Verified OK"),
        "{text}"
    );
}

/// The acceptance of issue 16 for each key type: sign an image with a key that stays in the
/// token, verify it with the PEM `public-key` prints, check the same signature with openssl,
/// and find the key still sensitive and never extractable afterwards.
#[test]
fn pkcs11_keys_sign_images_that_verify_with_signet_and_openssl() {
    let hsm = Hsm::new();
    let registry = Registry::start(Options::plain());
    for (object, digest) in [("ec", "-sha256"), ("rsa", "-sha256"), ("ec384", "-sha384")] {
        let repository = format!("team/{object}");
        let (image, image_digest) = push_image(&registry, &repository, "v1", object.as_bytes());
        let key = uri(object);

        let run = hsm
            .signet(&["public-key", "--key", &key], Some(PIN))
            .expect_code(0);
        assert!(
            run.stdout.starts_with("-----BEGIN PUBLIC KEY-----\n"),
            "{}",
            run.stdout
        );
        let public = hsm.path().join(format!("{object}.pub"));
        std::fs::write(&public, &run.stdout).unwrap();

        let run = hsm
            .signet(&["sign", &image, "--key", &key], Some(PIN))
            .expect_code(0);
        let referrer = run.stdout.trim().to_string();
        assert!(referrer.starts_with("sha256:"), "{}", run.all());
        assert!(run.stderr.contains(&image_digest), "{}", run.stderr);

        let pub_arg = public.to_str().unwrap();
        let run = hsm
            .signet(&["verify", &image, "--key", pub_arg], None)
            .expect_code(0);
        assert!(
            run.stdout.starts_with("ALLOWED"),
            "{object}: {}",
            run.stdout
        );

        let (pae, signature) = pushed_envelope(&registry, &repository, &referrer);
        openssl_verifies(hsm.path(), &public, digest, &pae, &signature);
    }

    // The keys never left the token and still cannot: OpenSC reads the attributes back.
    let listing = hsm.private_keys_listing();
    for label in ["ec", "rsa", "ec384"] {
        let block = listing
            .split("Private Key Object")
            .find(|b| b.contains(&format!("label:      {label}\n")))
            .unwrap_or_else(|| panic!("no private key {label}:\n{listing}"));
        assert!(
            block.contains("sensitive, always sensitive, never extractable"),
            "{label}:\n{block}"
        );
    }
    // And signet's own listing says the same.
    let run = hsm
        .signet(
            &["pkcs11", "keys", "--token", TOKEN, "--output", "json"],
            Some(PIN),
        )
        .expect_code(0);
    let keys: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let private: Vec<&serde_json::Value> = keys
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["class"] == "private")
        .collect();
    assert_eq!(private.len(), 3, "{}", run.stdout);
    for key in private {
        assert_eq!(key["sensitive"], true, "{key}");
        assert_eq!(key["extractable"], false, "{key}");
    }
}

/// `attest` (bundle and binauthz formats) and `sign-blob` take the same URIs; the URI can carry
/// the module and the PIN itself, with no environment at all.
#[test]
fn pkcs11_keys_attest_and_sign_blobs_with_the_module_and_pin_in_the_uri() {
    let hsm = Hsm::new();
    let registry = Registry::start(Options::plain());
    let (image, _) = push_image(&registry, "team/app", "v1", b"app");
    let full = format!("pkcs11:token=signet%20e2e;id=%01?module-path={MODULE}&pin-value={PIN}");

    let public = hsm.path().join("ec.pub");
    let run = hsm
        .signet_env(&["public-key", "--key", &full], None, None)
        .expect_code(0);
    std::fs::write(&public, &run.stdout).unwrap();
    // The PIN in the URI never shows in what signet prints.
    assert!(
        !run.all().contains(&format!("pin-value={PIN}")),
        "{}",
        run.all()
    );

    std::fs::write(hsm.path().join("predicate.json"), br#"{"ok": true}"#).unwrap();
    hsm.signet_env(
        &[
            "attest",
            &image,
            "--key",
            &full,
            "--predicate",
            "predicate.json",
            "--type",
            "https://example.com/reviewed/v1",
        ],
        None,
        None,
    )
    .expect_code(0);
    hsm.signet_env(
        &["attest", &image, "--key", &full, "--format", "binauthz"],
        None,
        None,
    )
    .expect_code(0);
    let run = hsm
        .signet(
            &["verify", &image, "--key", "ec.pub", "--output", "json"],
            None,
        )
        .expect_code(0);
    let decision: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(decision["allowed"], true, "{}", run.stdout);

    std::fs::write(hsm.path().join("artifact.txt"), b"release notes").unwrap();
    hsm.signet_env(&["sign-blob", "artifact.txt", "--key", &full], None, None)
        .expect_code(0);
    let run = hsm
        .signet(&["verify-blob", "artifact.txt", "--key", "ec.pub"], None)
        .expect_code(0);
    assert!(run.stdout.starts_with("Verified OK"), "{}", run.stdout);
}

/// A wrong PIN, a missing object, a missing module and no PIN at all are errors (exit 2) that
/// name the problem; none of them shows the PIN.
#[test]
fn pkcs11_errors_name_the_problem() {
    let hsm = Hsm::new();
    let registry = Registry::start(Options::plain());
    let (image, _) = push_image(&registry, "team/app", "v1", b"app");

    let run = hsm
        .signet(&["sign", &image, "--key", &uri("ec")], Some("000000"))
        .expect_code(2);
    assert!(
        run.stderr.contains("wrong PIN for token \"signet e2e\""),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("000000"), "{}", run.stderr);

    let run = hsm
        .signet(&["sign", &image, "--key", &uri("nope")], Some(PIN))
        .expect_code(2);
    assert!(
        run.stderr
            .contains("no private key matching object=nope in token \"signet e2e\""),
        "{}",
        run.stderr
    );
    // The message lists what is there.
    assert!(run.stderr.contains("\"ec\" (id 01)"), "{}", run.stderr);

    let run = hsm
        .signet_env(
            &["sign", &image, "--key", &uri("ec")],
            Some(PIN),
            Some("/nonexistent/libpkcs11.so"),
        )
        .expect_code(2);
    assert!(
        run.stderr
            .contains("PKCS#11 module /nonexistent/libpkcs11.so not found"),
        "{}",
        run.stderr
    );

    let run = hsm
        .signet_env(&["sign", &image, "--key", &uri("ec")], Some(PIN), None)
        .expect_code(2);
    assert!(run.stderr.contains("no PKCS#11 module"), "{}", run.stderr);

    let run = hsm
        .signet(&["sign", &image, "--key", &uri("ec")], None)
        .expect_code(2);
    assert!(
        run.stderr
            .contains("needs its user PIN: set SIGNET_PKCS11_PIN"),
        "{}",
        run.stderr
    );

    let run = hsm
        .signet(
            &["sign", &image, "--key", "pkcs11:token=x;label=ec"],
            Some(PIN),
        )
        .expect_code(2);
    assert!(
        run.stderr
            .contains("unknown PKCS#11 URI path attribute \"label\""),
        "{}",
        run.stderr
    );

    let run = hsm
        .signet(
            &["sign", &image, "--key", "pkcs11:token=other;object=ec"],
            Some(PIN),
        )
        .expect_code(2);
    assert!(
        run.stderr.contains("no token matching token=other")
            && run.stderr.contains("tokens there: \"signet e2e\""),
        "{}",
        run.stderr
    );
}

/// `pkcs11 tokens` and `pkcs11 keys` show what the module offers, and the URI each key is
/// signed with works as printed.
#[test]
fn pkcs11_tokens_and_keys_list_what_the_module_offers() {
    let hsm = Hsm::new();
    let run = hsm.signet(&["pkcs11", "tokens"], None).expect_code(0);
    assert!(
        run.stdout.contains("token \"signet e2e\" serial "),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("SoftHSM"), "{}", run.stdout);

    // Without a PIN: public keys only, and a note saying why.
    let run = hsm
        .signet(&["pkcs11", "keys", "--token", TOKEN], None)
        .expect_code(0);
    assert!(!run.stdout.contains("private key"), "{}", run.stdout);
    assert!(
        run.stdout.contains("public key \"ec\" id 01 EC P-256"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("no PIN"), "{}", run.stderr);

    let run = hsm
        .signet(
            &["pkcs11", "keys", "--token", TOKEN, "--module", MODULE],
            Some(PIN),
        )
        .expect_code(0);
    for line in [
        "private key \"ec\" id 01 EC P-256 [sensitive, non-extractable]",
        "private key \"rsa\" id 02 RSA 2048 [sensitive, non-extractable]",
        "private key \"ec384\" id 03 EC P-384 [sensitive, non-extractable]",
        "  pkcs11:token=signet%20e2e;object=ec;id=%01?module-path=/usr/lib/softhsm/libsofthsm2.so",
    ] {
        assert!(run.stdout.contains(line), "{line}\n{}", run.stdout);
    }
    std::fs::write(hsm.path().join("f.txt"), b"x").unwrap();
    hsm.signet_env(
        &[
            "sign-blob",
            "f.txt",
            "--key",
            "pkcs11:token=signet%20e2e;object=ec;id=%01?module-path=/usr/lib/softhsm/libsofthsm2.so",
        ],
        Some(PIN),
        None,
    )
    .expect_code(0);
}
