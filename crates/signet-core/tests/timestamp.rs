//! RFC 3161 timestamp verification against tokens made by an independent TSA: OpenSSL's
//! (`openssl ts`), with test PKIs generated here at test time (an EC P-256 and an RSA TSA, each
//! under its own root, plus look-alikes that must be refused).
//!
//! These tests need the `openssl` command (Debian's `openssl`, installed by
//! `scripts/setup-tests.sh`). Without it they fail saying so; they never skip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use signet_core::bundle::Bundle;
use signet_core::digest::Digest;
use signet_core::intoto::Statement;
use signet_core::keys::KeyPair;
use signet_core::timestamp::{
    HashAlgorithm, TimestampAuthority, TimestampError, ValidFor, verify_timestamp,
};

/// Runs `openssl ARGS` in `dir` and returns its standard output; any failure is a test failure
/// that says what openssl said.
fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = match Command::new("openssl").args(args).current_dir(dir).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "the `openssl` command is missing: these tests make their timestamp authorities and \
             tokens with it. Install it (`apt-get install openssl`; scripts/setup-tests.sh does)."
        ),
        Err(e) => panic!("cannot run openssl: {e}"),
    };
    assert!(
        out.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

const EXTENSIONS: &str = "\
[req]
distinguished_name = dn
[dn]
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_tsa]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[v3_code]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, codeSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ca]
default_ca = ca_default
[ca_default]
database = ./index.txt
new_certs_dir = .
serial = ./ca-serial
default_md = sha256
policy = policy_any
unique_subject = no
[policy_any]
commonName = supplied
";

#[derive(Clone, Copy)]
enum KeyKind {
    Ec,
    P384,
    Rsa,
}

fn genkey(dir: &Path, out: &str, kind: KeyKind) {
    let opts: &[&str] = match kind {
        KeyKind::Ec => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        KeyKind::P384 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        KeyKind::Rsa => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    };
    let mut args = vec!["genpkey"];
    args.extend_from_slice(opts);
    args.extend_from_slice(&["-out", out]);
    openssl(dir, &args);
}

/// A root CA in its own directory.
struct Root {
    dir: PathBuf,
}

impl Root {
    fn new(base: &Path, name: &str, kind: KeyKind) -> Root {
        let dir = base.join(name.replace(' ', "-"));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("ext.cnf"), EXTENSIONS).unwrap();
        fs::write(dir.join("index.txt"), "").unwrap();
        fs::write(dir.join("ca-serial"), "1000\n").unwrap();
        genkey(&dir, "root.key", kind);
        let subject = format!("/CN={name} Root");
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "root.key",
                "-subj",
                &subject,
                "-days",
                "3650",
                "-sha256",
                "-config",
                "ext.cnf",
                "-extensions",
                "v3_ca",
                "-out",
                "root.pem",
            ],
        );
        Root { dir }
    }

    fn pem(&self) -> String {
        fs::read_to_string(self.dir.join("root.pem")).unwrap()
    }

    /// Issues `{file}.pem` (key `{file}.key`) with the extensions of `section`, valid from now
    /// for a year, or in the given `openssl ca` date window.
    fn issue(
        &self,
        file: &str,
        cn: &str,
        kind: KeyKind,
        section: &str,
        dates: Option<(&str, &str)>,
    ) {
        let key = format!("{file}.key");
        let csr = format!("{file}.csr");
        let pem = format!("{file}.pem");
        genkey(&self.dir, &key, kind);
        openssl(
            &self.dir,
            &[
                "req",
                "-new",
                "-key",
                &key,
                "-subj",
                &format!("/CN={cn}"),
                "-config",
                "ext.cnf",
                "-out",
                &csr,
            ],
        );
        match dates {
            None => {
                openssl(
                    &self.dir,
                    &[
                        "x509",
                        "-req",
                        "-in",
                        &csr,
                        "-CA",
                        "root.pem",
                        "-CAkey",
                        "root.key",
                        "-CAcreateserial",
                        "-days",
                        "365",
                        "-sha256",
                        "-extfile",
                        "ext.cnf",
                        "-extensions",
                        section,
                        "-out",
                        &pem,
                    ],
                );
            }
            Some((start, end)) => {
                openssl(
                    &self.dir,
                    &[
                        "ca",
                        "-batch",
                        "-config",
                        "ext.cnf",
                        "-cert",
                        "root.pem",
                        "-keyfile",
                        "root.key",
                        "-in",
                        &csr,
                        "-startdate",
                        start,
                        "-enddate",
                        end,
                        "-extfile",
                        "ext.cnf",
                        "-extensions",
                        section,
                        "-notext",
                        "-out",
                        &pem,
                    ],
                );
            }
        }
    }
}

/// A TSA: a leaf under a root, and an `openssl ts` configuration signing with it.
struct Tsa {
    dir: PathBuf,
    config: String,
    leaf: String,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);
/// `openssl ts -reply` reads and rewrites the serial file: one at a time.
static OPENSSL_TS: Mutex<()> = Mutex::new(());

impl Tsa {
    /// `digest`: the hash the TSA signs with.
    fn new(root: &Root, leaf: &str, digest: &str, precision_digits: u8) -> Tsa {
        let dir = root.dir.clone();
        let config = format!("{leaf}-{digest}-ts.cnf");
        let serial = format!("{leaf}-{digest}-serial");
        fs::write(dir.join(&serial), "01\n").unwrap();
        fs::write(
            dir.join(&config),
            format!(
                "[tsa]
default_tsa = tsa_config
[tsa_config]
serial = ./{serial}
crypto_device = builtin
signer_cert = ./{leaf}.pem
certs = ./root.pem
signer_key = ./{leaf}.key
signer_digest = {digest}
default_policy = 1.3.6.1.4.1.55738.1
other_policies = 1.3.6.1.4.1.55738.2
digests = sha256, sha384, sha512
accuracy = secs:1, millisecs:500
clock_precision_digits = {precision_digits}
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"
            ),
        )
        .unwrap();
        Tsa {
            dir,
            config,
            leaf: leaf.to_string(),
        }
    }

    fn root_pem(&self) -> String {
        fs::read_to_string(self.dir.join("root.pem")).unwrap()
    }

    fn leaf_pem(&self) -> String {
        fs::read_to_string(self.dir.join(format!("{}.pem", self.leaf))).unwrap()
    }

    /// The chain PEM, leaf first, root last.
    fn chain_pem(&self) -> String {
        self.leaf_pem() + &self.root_pem()
    }

    fn authority(&self, name: &str) -> TimestampAuthority {
        TimestampAuthority::from_pem_chain(name, &self.chain_pem()).unwrap()
    }

    /// A token over `data`: `openssl ts -query -data FILE -<hash> [-cert]`, then `-reply`,
    /// the bare token (`-token_out`) or the whole `TimeStampResp`.
    fn stamp_with(&self, data: &[u8], hash: &str, cert: bool, token_only: bool) -> Vec<u8> {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let (input, query, reply) = (
            format!("data-{n}.bin"),
            format!("query-{n}.tsq"),
            format!("reply-{n}.der"),
        );
        fs::write(self.dir.join(&input), data).unwrap();
        let mut args = vec!["ts", "-query", "-data", &input, hash, "-out", &query];
        if cert {
            args.push("-cert");
        }
        openssl(&self.dir, &args);
        let mut args = vec![
            "ts",
            "-reply",
            "-config",
            &self.config,
            "-queryfile",
            &query,
            "-out",
            &reply,
        ];
        if token_only {
            args.push("-token_out");
        }
        {
            let _one_at_a_time = OPENSSL_TS.lock().unwrap_or_else(|e| e.into_inner());
            openssl(&self.dir, &args);
        }
        fs::read(self.dir.join(reply)).unwrap()
    }

    fn stamp(&self, data: &[u8]) -> Vec<u8> {
        self.stamp_with(data, "-sha256", true, true)
    }
}

/// Every TSA the tests use, made once per test run.
struct Pki {
    _dir: tempfile::TempDir,
    /// EC P-256 TSA, genTime with milliseconds.
    ec: Tsa,
    /// The same TSA signing SHA-384 digests with its P-256 key.
    ec_sha384: Tsa,
    /// RSA-2048 TSA signing SHA-512, genTime in whole seconds, under an RSA root.
    rsa: Tsa,
    /// P-384 TSA signing SHA-384, under a P-384 root that signs certificates with SHA-256.
    p384: Tsa,
    /// Another EC TSA under another root: trusted by no test authority.
    other: Tsa,
    /// Same names as `ec` and its root, other keys: an impostor.
    impostor: Tsa,
    /// Under `ec`'s root, with the code-signing usage instead of timestamping.
    code_signer: Root,
    /// Under `ec`'s root, valid only in 2000.
    expired: Tsa,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let ec_root = Root::new(dir.path(), "Signet Test TSA", KeyKind::Ec);
        ec_root.issue("tsa", "Signet Test TSA", KeyKind::Ec, "v3_tsa", None);
        ec_root.issue("code", "Signet Code Signer", KeyKind::Ec, "v3_code", None);
        ec_root.issue(
            "old",
            "Signet Old TSA",
            KeyKind::Ec,
            "v3_tsa",
            Some(("20000101000000Z", "20010101000000Z")),
        );
        let rsa_root = Root::new(dir.path(), "Signet RSA TSA", KeyKind::Rsa);
        rsa_root.issue("tsa", "Signet RSA TSA", KeyKind::Rsa, "v3_tsa", None);
        let p384_root = Root::new(dir.path(), "Signet P-384 TSA", KeyKind::P384);
        p384_root.issue("tsa", "Signet P-384 TSA", KeyKind::P384, "v3_tsa", None);
        let other_root = Root::new(dir.path(), "Other TSA", KeyKind::Ec);
        other_root.issue("tsa", "Other TSA", KeyKind::Ec, "v3_tsa", None);
        let impostor_base = dir.path().join("impostor");
        fs::create_dir_all(&impostor_base).unwrap();
        let impostor_root = Root::new(&impostor_base, "Signet Test TSA", KeyKind::Ec);
        impostor_root.issue("tsa", "Signet Test TSA", KeyKind::Ec, "v3_tsa", None);
        Pki {
            ec: Tsa::new(&ec_root, "tsa", "sha256", 3),
            ec_sha384: Tsa::new(&ec_root, "tsa", "sha384", 0),
            expired: Tsa::new(&ec_root, "old", "sha256", 0),
            rsa: Tsa::new(&rsa_root, "tsa", "sha512", 0),
            p384: Tsa::new(&p384_root, "tsa", "sha384", 0),
            other: Tsa::new(&other_root, "tsa", "sha256", 0),
            impostor: Tsa::new(&impostor_root, "tsa", "sha256", 0),
            code_signer: ec_root,
            _dir: dir,
        }
    })
}

const SIGNATURE: &[u8] = b"\x30\x45 the signature bytes a bundle's timestamp stamps";

fn within(t: SystemTime, seconds: u64) -> bool {
    let now = SystemTime::now();
    let slack = Duration::from_secs(seconds);
    t + slack >= now && t <= now + slack
}

#[test]
fn ec_tsa_token_verifies_and_says_when_and_who() {
    let pki = pki();
    let token = pki.ec.stamp(SIGNATURE);
    let authorities = [pki.rsa.authority("rsa-tsa"), pki.ec.authority("ec-tsa")];
    let verified = verify_timestamp(&token, SIGNATURE, &authorities).unwrap();
    assert_eq!(verified.authority(), "ec-tsa");
    assert!(within(verified.time(), 300), "{:?}", verified.time());
    assert_eq!(verified.tsa_subject(), "CN=Signet Test TSA");
    assert_eq!(verified.policy(), "1.3.6.1.4.1.55738.1");
    assert_eq!(verified.imprint_algorithm(), HashAlgorithm::Sha256);
    assert!(!verified.serial_number().is_empty());
}

#[test]
fn p256_signing_sha384_and_p384_tsas_verify() {
    let pki = pki();
    let authorities = [pki.ec.authority("ec"), pki.p384.authority("p384")];
    let token = pki.ec_sha384.stamp(SIGNATURE);
    let verified = verify_timestamp(&token, SIGNATURE, &authorities).unwrap();
    assert_eq!(verified.authority(), "ec");
    let token = pki.p384.stamp(SIGNATURE);
    let verified = verify_timestamp(&token, SIGNATURE, &authorities).unwrap();
    assert_eq!(verified.authority(), "p384");
    assert_eq!(verified.tsa_subject(), "CN=Signet P-384 TSA");
}

#[test]
fn rsa_tsa_token_verifies_with_sha384_and_sha512_imprints() {
    let pki = pki();
    let authorities = [pki.rsa.authority("rsa-tsa")];
    for (flag, algorithm) in [
        ("-sha384", HashAlgorithm::Sha384),
        ("-sha512", HashAlgorithm::Sha512),
    ] {
        let token = pki.rsa.stamp_with(SIGNATURE, flag, true, true);
        let verified = verify_timestamp(&token, SIGNATURE, &authorities).unwrap();
        assert_eq!(verified.authority(), "rsa-tsa");
        assert_eq!(verified.imprint_algorithm(), algorithm);
        assert!(within(verified.time(), 300));
    }
}

#[test]
fn a_whole_timestamp_response_verifies_too() {
    // Sigstore's specs and cosign store the TimeStampResp, not the bare token.
    let pki = pki();
    let response = pki.ec.stamp_with(SIGNATURE, "-sha256", true, false);
    let verified = verify_timestamp(&response, SIGNATURE, &[pki.ec.authority("ec")]).unwrap();
    assert_eq!(verified.authority(), "ec");
}

#[test]
fn a_token_without_the_tsa_certificate_verifies_with_the_authoritys() {
    let pki = pki();
    let token = pki.ec.stamp_with(SIGNATURE, "-sha256", false, true);
    verify_timestamp(&token, SIGNATURE, &[pki.ec.authority("ec")]).unwrap();
    // An authority given by its root only has no TSA certificate to offer.
    let root_only =
        TimestampAuthority::from_pem_chain("root-only", &pki.code_signer.pem()).unwrap();
    let err = verify_timestamp(&token, SIGNATURE, &[root_only]).unwrap_err();
    assert!(
        matches!(err, TimestampError::SignerCertificateNotFound { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("signer certificate not found"),
        "{err}"
    );
}

#[test]
fn an_authority_given_by_its_root_accepts_any_tsa_certificate_it_issued() {
    let pki = pki();
    let token = pki.ec.stamp(SIGNATURE);
    let root_only =
        TimestampAuthority::from_pem_chain("root-only", &pki.code_signer.pem()).unwrap();
    assert!(root_only.leaf_der().is_none());
    let verified = verify_timestamp(&token, SIGNATURE, &[root_only]).unwrap();
    assert_eq!(verified.authority(), "root-only");
}

#[test]
fn signed_bytes_that_differ_by_one_byte_are_refused() {
    let pki = pki();
    let token = pki.ec.stamp(SIGNATURE);
    let mut other = SIGNATURE.to_vec();
    other[5] ^= 1;
    let err = verify_timestamp(&token, &other, &[pki.ec.authority("ec")]).unwrap_err();
    assert!(
        matches!(err, TimestampError::ImprintMismatch { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("timestamp message imprint does not match the signed bytes"),
        "{err}"
    );
}

#[test]
fn a_token_from_an_untrusted_tsa_is_refused() {
    let pki = pki();
    let token = pki.other.stamp(SIGNATURE);
    let authorities = [pki.ec.authority("ec"), pki.rsa.authority("rsa")];
    let err = verify_timestamp(&token, SIGNATURE, &authorities).unwrap_err();
    assert!(
        matches!(err, TimestampError::UntrustedAuthority { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains(
            "\"CN=Other TSA\", issued by \"CN=Other TSA Root\": not a trusted timestamp authority"
        ),
        "{err}"
    );
}

#[test]
fn an_impostor_with_the_same_names_is_refused() {
    let pki = pki();
    let token = pki.impostor.stamp(SIGNATURE);
    // The authority pins its TSA certificate: another certificate is not it.
    let err = verify_timestamp(&token, SIGNATURE, &[pki.ec.authority("ec")]).unwrap_err();
    assert!(
        matches!(err, TimestampError::NotAuthorityCertificate { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("not the TSA certificate of timestamp authority ec")
    );
    // Given by its root only, path validation finds the names match and the signatures do
    // not (the impostor's own root, in the token, is no help: it does not chain either).
    let root_only =
        TimestampAuthority::from_pem_chain("root-only", &pki.code_signer.pem()).unwrap();
    let err = verify_timestamp(&token, SIGNATURE, &[root_only]).unwrap_err();
    assert!(matches!(err, TimestampError::Chain { .. }), "{err}");
    assert!(
        err.to_string().contains(
            "is not vouched for by timestamp authority root-only: a certificate signature in the chain does not verify"
        ),
        "{err}"
    );
}

#[test]
fn a_leaf_without_the_timestamping_usage_is_refused() {
    let pki = pki();
    // openssl ts refuses such a signer, so the TSTInfo of a real token is signed again with
    // `openssl cms` by a code-signing certificate of the same root.
    let token = pki.ec.stamp(SIGNATURE);
    let dir = &pki.code_signer.dir;
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let (good, tst, bad) = (
        format!("good-{n}.der"),
        format!("tst-{n}.der"),
        format!("bad-{n}.der"),
    );
    fs::write(dir.join(&good), &token).unwrap();
    openssl(
        dir,
        &[
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            &good,
            "-noverify",
            "-out",
            &tst,
        ],
    );
    openssl(
        dir,
        &[
            "cms",
            "-sign",
            "-binary",
            "-nodetach",
            "-in",
            &tst,
            "-econtent_type",
            "1.2.840.113549.1.9.16.1.4",
            "-signer",
            "code.pem",
            "-inkey",
            "code.key",
            "-md",
            "sha256",
            "-nosmimecap",
            "-outform",
            "DER",
            "-out",
            &bad,
        ],
    );
    let bad = fs::read(dir.join(bad)).unwrap();
    let root_only =
        TimestampAuthority::from_pem_chain("root-only", &pki.code_signer.pem()).unwrap();
    let err = verify_timestamp(&bad, SIGNATURE, &[root_only, pki.ec.authority("ec")]).unwrap_err();
    assert!(
        matches!(err, TimestampError::NotTimestampingCertificate { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains(
            "\"CN=Signet Code Signer\" may not sign timestamps: its extended key usage (1.3.6.1.5.5.7.3.3) lacks id-kp-timeStamping"
        ),
        "{err}"
    );
}

#[test]
fn gen_time_outside_the_authoritys_window_is_refused() {
    let pki = pki();
    let token = pki.ec.stamp(SIGNATURE);
    let ended = pki.ec.authority("ec-2001").with_valid_for(ValidFor {
        start: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(946_684_800)),
        end: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(978_307_200)),
    });
    let err = verify_timestamp(&token, SIGNATURE, &[ended]).unwrap_err();
    assert!(
        matches!(err, TimestampError::OutsideValidFor { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains(
            "is outside the validity period of timestamp authority ec-2001 (2000-01-01T00:00:00.000Z to 2001-01-01T00:00:00.000Z)"
        ),
        "{err}"
    );
    // Not yet started: a window opening in a thousand years.
    let future = pki.ec.authority("ec-future").with_valid_for(ValidFor {
        start: Some(SystemTime::now() + Duration::from_secs(1000 * 365 * 86_400)),
        end: None,
    });
    let err = verify_timestamp(&token, SIGNATURE, &[future]).unwrap_err();
    assert!(
        matches!(err, TimestampError::OutsideValidFor { .. }),
        "{err}"
    );
    // Open-ended from the past: accepted.
    let open = pki.ec.authority("ec-open").with_valid_for(ValidFor {
        start: Some(SystemTime::UNIX_EPOCH),
        end: None,
    });
    verify_timestamp(&token, SIGNATURE, &[open]).unwrap();
}

#[test]
fn gen_time_outside_the_tsa_certificates_validity_is_refused() {
    let pki = pki();
    let token = pki.expired.stamp(SIGNATURE);
    let root_only =
        TimestampAuthority::from_pem_chain("root-only", &pki.code_signer.pem()).unwrap();
    let err = verify_timestamp(&token, SIGNATURE, &[root_only]).unwrap_err();
    assert!(
        matches!(err, TimestampError::CertificateNotValidAt { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains(
            "is outside the validity of TSA certificate \"CN=Signet Old TSA\" (2000-01-01T00:00:00.000Z to 2001-01-01T00:00:00.000Z)"
        ),
        "{err}"
    );
}

/// The position of `needle` in `haystack`, which must hold it exactly once.
fn find_once(haystack: &[u8], needle: &[u8]) -> usize {
    let hits: Vec<usize> = haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(hits.len(), 1, "expected {needle:02x?} once in the token");
    hits[0]
}

#[test]
fn a_flipped_byte_in_the_tstinfo_is_refused() {
    let pki = pki();
    let token = pki.ec.stamp(SIGNATURE);
    // The policy OID 1.3.6.1.4.1.55738.1 is in the TSTInfo only; its last arc becomes 3.
    let policy = [
        0x06, 0x09, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xb3, 0x3a, 0x01,
    ];
    let at = find_once(&token, &policy) + policy.len() - 1;
    let mut tampered = token.clone();
    tampered[at] ^= 0x02;
    let err = verify_timestamp(&tampered, SIGNATURE, &[pki.ec.authority("ec")]).unwrap_err();
    assert!(
        matches!(err, TimestampError::ContentDigestMismatch { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("message-digest attribute does not match its TSTInfo (altered content)"),
        "{err}"
    );
}

#[test]
fn a_flipped_byte_in_the_signature_is_refused() {
    let pki = pki();
    for (tsa, name) in [(&pki.ec, "ec"), (&pki.p384, "p384"), (&pki.rsa, "rsa")] {
        // The SignerInfo (no unsigned attributes) ends the token with its signature.
        let token = tsa.stamp(SIGNATURE);
        let mut tampered = token.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 0x01;
        let err = verify_timestamp(&tampered, SIGNATURE, &[tsa.authority(name)]).unwrap_err();
        assert!(
            matches!(err, TimestampError::BadSignature { .. }),
            "{name}: {err}"
        );
        assert!(
            err.to_string()
                .starts_with("timestamp token signature does not verify with the key"),
            "{err}"
        );
    }
}

#[test]
fn garbage_is_refused_without_panicking() {
    let pki = pki();
    let authorities = [pki.ec.authority("ec")];
    let token = pki.ec.stamp(SIGNATURE);
    let mut inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![0],
        vec![0x30],
        vec![0x30, 0x80, 0x00, 0x00],
        vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
        b"not a token at all".to_vec(),
        B64.encode(&token).into_bytes(),
        vec![0xff; 70 * 1024],
    ];
    // Every truncation breaks the DER and must be refused.
    for len in 0..token.len() {
        inputs.push(token[..len].to_vec());
    }
    for input in &inputs {
        let err = verify_timestamp(input, SIGNATURE, &authorities).unwrap_err();
        assert!(!err.to_string().is_empty());
    }
    // Every single-bit flip, anywhere: never a panic. (Some spots are not covered by the
    // signature and change nothing that is checked, such as the signature of the embedded
    // root, which the authority's own root replaces; those may still verify.)
    for i in 0..token.len() {
        let mut flipped = token.clone();
        flipped[i] ^= 0x01;
        if let Err(e) = verify_timestamp(&flipped, SIGNATURE, &authorities) {
            assert!(!e.to_string().is_empty());
        }
    }
    let err = verify_timestamp(b"garbage", SIGNATURE, &authorities).unwrap_err();
    assert!(matches!(err, TimestampError::Malformed { .. }), "{err}");
    let err = verify_timestamp(&vec![0x30; 70 * 1024], SIGNATURE, &authorities).unwrap_err();
    assert!(matches!(err, TimestampError::TooLarge { .. }), "{err}");
    assert_eq!(
        verify_timestamp(&token, SIGNATURE, &[]),
        Err(TimestampError::NoAuthorities)
    );
}

#[test]
fn authorities_load_from_a_sigstore_trusted_root() {
    let pki = pki();
    let der_of = |pem: &str| {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        body
    };
    let trusted_root = serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [],
        "certificateAuthorities": [],
        "ctlogs": [],
        "timestampAuthorities": [
            {
                "subject": {"organization": "Signet", "commonName": "Signet Test TSA"},
                "uri": "https://tsa.example/api/v1/timestamp",
                "certChain": {"certificates": [
                    {"rawBytes": der_of(&pki.ec.leaf_pem())},
                    {"rawBytes": der_of(&pki.code_signer.pem())}
                ]},
                "validFor": {"start": "2001-01-01T00:00:00.000Z"}
            },
            {
                "subject": {"organization": "Signet"},
                "certChain": {"certificates": [
                    {"rawBytes": der_of(&pki.rsa.leaf_pem())},
                    {"rawBytes": der_of(&pki.rsa.root_pem())}
                ]},
                "validFor": {"start": "2001-01-01T00:00:00Z", "end": "2002-01-01T00:00:00Z"}
            }
        ]
    });
    let authorities =
        TimestampAuthority::from_trusted_root_json(trusted_root.to_string().as_bytes()).unwrap();
    assert_eq!(authorities.len(), 2);
    assert_eq!(authorities[0].name(), "Signet Test TSA");
    assert_eq!(
        authorities[0].uri(),
        Some("https://tsa.example/api/v1/timestamp")
    );
    assert_eq!(authorities[1].name(), "Signet");
    let token = pki.ec.stamp(SIGNATURE);
    let verified = verify_timestamp(&token, SIGNATURE, &authorities).unwrap();
    assert_eq!(verified.authority(), "Signet Test TSA");
    assert_eq!(
        verified.authority_uri(),
        Some("https://tsa.example/api/v1/timestamp")
    );
    // The second authority is the RSA TSA, trusted for 2001 only.
    let rsa = pki.rsa.stamp(SIGNATURE);
    let err = verify_timestamp(&rsa, SIGNATURE, &authorities).unwrap_err();
    assert!(
        matches!(err, TimestampError::OutsideValidFor { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("timestamp authority Signet ("),
        "{err}"
    );

    for (bad, says) in [
        (
            r#"{"timestampAuthorities":[{"certChain":{"certificates":[{"rawBytes":"***"}]}}]}"#,
            "not base64",
        ),
        (
            r#"{"timestampAuthorities":[{"certChain":{"certificates":[]}}]}"#,
            "empty certificate chain",
        ),
        (
            r#"{"timestampAuthorities":[{"certChain":{"certificates":[{"rawBytes":"AQID"}]}}]}"#,
            "not X.509 DER",
        ),
        (r#"{"timestampAuthorities":[{}]}"#, "certChain"),
        (r#"{"timestampAuthorities":{}}"#, "malformed trusted root"),
        ("not json", "malformed trusted root"),
    ] {
        let err = TimestampAuthority::from_trusted_root_json(bad.as_bytes()).unwrap_err();
        assert!(err.to_string().contains(says), "{bad}: {err}");
    }
    let bad_time = trusted_root
        .to_string()
        .replace("2001-01-01T00:00:00.000Z", "yesterday");
    let err = TimestampAuthority::from_trusted_root_json(bad_time.as_bytes()).unwrap_err();
    assert!(
        err.to_string().contains("validFor.start \"yesterday\""),
        "{err}"
    );
    // A trusted root without TSAs has none; verification with none fails closed.
    assert!(
        TimestampAuthority::from_trusted_root_json(b"{}")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_bundle_carries_a_timestamp_over_its_signature() {
    // The helper flow `signet sign --timestamp-token` will use: sign, stamp the DSSE
    // signature, attach, write; then read back and verify.
    let pki = pki();
    let key = KeyPair::from_p256_scalar(&[3u8; 32]).unwrap();
    let image = Digest::sha256_of(b"image");
    let statement = Statement::new("r/app", &image, "https://example/p", serde_json::json!({}));
    let mut bundle = Bundle::sign_statement(&statement, &key).unwrap();
    let signature = bundle.timestamped_signature().unwrap();
    bundle
        .add_rfc3161_timestamp(&pki.ec.stamp_with(&signature, "-sha256", true, false))
        .unwrap();
    let read = Bundle::parse(&bundle.to_json()).unwrap();
    let tokens = read.rfc3161_timestamps().unwrap();
    assert_eq!(tokens.len(), 1);
    let signed = read.timestamped_signature().unwrap();
    let verified = verify_timestamp(&tokens[0], &signed, &[pki.ec.authority("ec")]).unwrap();
    assert!(within(verified.time(), 300));
    // A token over another signature does not vouch for this one.
    let other = pki.ec.stamp(b"another signature");
    let err = verify_timestamp(&other, &signed, &[pki.ec.authority("ec")]).unwrap_err();
    assert!(
        matches!(err, TimestampError::ImprintMismatch { .. }),
        "{err}"
    );
}
