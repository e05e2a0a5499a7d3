//! A private Fulcio look-alike for tests, made with rcgen: a root and an intermediate, short-lived
//! leaves with Fulcio's extensions, and a CT log whose SCT is built over the precertificate here
//! (independently of `sct.rs`'s own encoding) and embedded in the final certificate; plus the
//! trusted root naming them. Compiled for this crate's tests and, with the `test-pki` feature,
//! for other crates' tests (the end-to-end suite signs images with these leaves).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use der::{Decode as _, Encode as _};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair as RcKey, KeyUsagePurpose, PublicKeyData as _,
    SanType, SerialNumber,
};
use sha2::Digest as _;
use tls_codec::TlsByteVecU16;
use x509_cert::Certificate;
use x509_cert::ext::pkix::sct::{
    DigitallySigned, HashAlgorithm, LogId, SerializedSct, SignatureAlgorithm,
    SignatureAndHashAlgorithm, SignedCertificateTimestamp, SignedCertificateTimestampList, Version,
};

use super::TRUSTED_ROOT_MEDIA_TYPE;
use crate::keys::KeyPair;

const SCT_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2];
/// Fulcio's issuer (v1, raw string) and issuer (v2, DER UTF8String) extensions.
const ISSUER_V1: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 1, 1];
const ISSUER_V2: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 1, 8];

/// A CA: its certificate, key and rcgen parameters.
pub struct Ca {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Its key.
    pub key: RcKey,
    params: CertificateParams,
}

impl Ca {
    /// A self-signed root named `name`, valid 2025–2035.
    pub fn root(name: &str) -> Ca {
        let key = RcKey::generate().unwrap();
        let params = ca_params(name);
        let der = params.self_signed(&key).unwrap().der().to_vec();
        Ca { der, key, params }
    }

    /// An intermediate named `name` under `root`, stating code signing as Fulcio's does.
    pub fn intermediate(name: &str, root: &Ca) -> Ca {
        let key = RcKey::generate().unwrap();
        let mut params = ca_params(name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        // Fulcio's intermediate states code signing; the path check must accept that.
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        params.use_authority_key_identifier_extension = true;
        let der = params
            .signed_by(&key, &root.issuer())
            .unwrap()
            .der()
            .to_vec();
        Ca { der, key, params }
    }

    fn issuer(&self) -> Issuer<'_, &RcKey> {
        Issuer::from_params(&self.params, &self.key)
    }

    /// The certificate, PEM.
    pub fn pem(&self) -> String {
        crate::certified::to_pem(&self.der).unwrap()
    }
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "test.example");
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2035, 1, 1);
    params
}

/// What a leaf says: the workflow (URI SAN), the OIDC issuer, further Fulcio claims by OID arc
/// (the last number under 1.3.6.1.4.1.57264.1) as UTF8Strings, and its validity.
pub struct LeafSpec {
    /// The SAN, a URI.
    pub subject: String,
    /// The OIDC issuer, written as both Fulcio issuer extensions.
    pub issuer: String,
    /// Further claims: (arc under 1.3.6.1.4.1.57264.1, value); arcs 2–6 are written as raw
    /// strings, as Fulcio's deprecated GitHub extensions are, the rest as UTF8Strings.
    pub claims: Vec<(u64, String)>,
    /// Start of validity.
    pub not_before: SystemTime,
    /// Validity after `not_before`.
    pub lifetime: Duration,
    /// Whether it states the code-signing extended key usage.
    pub code_signing: bool,
}

impl LeafSpec {
    /// A GitHub Actions workflow identity, ten minutes valid from `not_before`.
    pub fn github(subject: &str, not_before: SystemTime) -> LeafSpec {
        LeafSpec {
            subject: subject.to_string(),
            issuer: "https://token.actions.githubusercontent.com".to_string(),
            claims: Vec::new(),
            not_before,
            lifetime: Duration::from_secs(600),
            code_signing: true,
        }
    }

    /// The same with the claim at `arc` set to `value`.
    pub fn with_claim(mut self, arc: u64, value: &str) -> LeafSpec {
        self.claims.push((arc, value.to_string()));
        self
    }

    fn params(&self) -> CertificateParams {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.serial_number = Some(SerialNumber::from(0x5157_u64));
        params.not_before = self.not_before.into();
        params.not_after = (self.not_before + self.lifetime).into();
        params.subject_alt_names = vec![SanType::URI(self.subject.as_str().try_into().unwrap())];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if self.code_signing {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        }
        params.use_authority_key_identifier_extension = true;
        let utf8 = |s: &str| der::asn1::Utf8StringRef::new(s).unwrap().to_der().unwrap();
        params.custom_extensions = vec![
            CustomExtension::from_oid_content(ISSUER_V1, self.issuer.as_bytes().to_vec()),
            CustomExtension::from_oid_content(ISSUER_V2, utf8(&self.issuer)),
        ];
        for (arc, value) in &self.claims {
            let oid = [1, 3, 6, 1, 4, 1, 57264, 1, *arc];
            let content = if (2..=6).contains(arc) {
                value.as_bytes().to_vec()
            } else {
                utf8(value)
            };
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(&oid, content));
        }
        params
    }
}

/// The bytes RFC 6962 section 3.2 has a log sign for a precertificate, written out here
/// independently of `sct::signed_data`.
fn rfc6962_input(timestamp: u64, issuer_spki: &[u8], tbs: &[u8]) -> Vec<u8> {
    let mut m = vec![0u8, 0u8];
    m.extend_from_slice(&timestamp.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m.extend_from_slice(&sha2::Sha256::digest(issuer_spki));
    let len = u32::try_from(tbs.len()).unwrap();
    m.extend_from_slice(&len.to_be_bytes()[1..]);
    m.extend_from_slice(tbs);
    m.extend_from_slice(&[0, 0]);
    m
}

/// How the SCT of a test leaf is made.
pub enum Sct<'a> {
    /// None at all.
    Missing,
    /// Signed by `signer`, naming the log `log_key`.
    Signed {
        /// Who signs it.
        signer: &'a KeyPair,
        /// The log it names.
        log_key: &'a KeyPair,
    },
}

/// A leaf for `leaf_key` issued by `issuer` as `spec` says, with an SCT over its
/// precertificate as `sct` says, timed 5 ms after `spec.not_before`.
pub fn leaf(issuer: &Ca, leaf_key: &RcKey, spec: &LeafSpec, sct: Sct<'_>) -> Vec<u8> {
    let mut params = spec.params();
    let pre = params.signed_by(leaf_key, &issuer.issuer()).unwrap();
    let Sct::Signed { signer, log_key } = sct else {
        return pre.der().to_vec();
    };
    let tbs = Certificate::from_der(pre.der())
        .unwrap()
        .tbs_certificate()
        .to_der()
        .unwrap();
    let since_epoch = spec
        .not_before
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    let timestamp = u64::try_from(since_epoch.as_millis()).unwrap() + 5;
    let signature = signer.sign(&rfc6962_input(
        timestamp,
        &issuer.key.subject_public_key_info(),
        &tbs,
    ));
    let sct = SignedCertificateTimestamp {
        version: Version::V1,
        log_id: LogId {
            key_id: sha2::Sha256::digest(log_key.public_key().der()).into(),
        },
        timestamp,
        extensions: TlsByteVecU16::new(Vec::new()),
        signature: DigitallySigned {
            algorithm: SignatureAndHashAlgorithm {
                hash: HashAlgorithm::Sha256,
                signature: SignatureAlgorithm::Ecdsa,
            },
            signature: TlsByteVecU16::new(signature),
        },
    };
    let list = SignedCertificateTimestampList::new(&[SerializedSct::new(sct).unwrap()]).unwrap();
    params
        .custom_extensions
        .push(CustomExtension::from_oid_content(
            SCT_OID,
            list.to_der().unwrap(),
        ));
    params
        .signed_by(leaf_key, &issuer.issuer())
        .unwrap()
        .der()
        .to_vec()
}

/// The test Fulcio: a root and intermediate, and a CT log key.
pub struct TestFulcio {
    /// The root CA.
    pub root: Ca,
    /// The intermediate that issues leaves.
    pub intermediate: Ca,
    /// The CT log's key.
    pub ct: KeyPair,
}

impl Default for TestFulcio {
    fn default() -> Self {
        TestFulcio::new()
    }
}

impl TestFulcio {
    /// A new PKI with fresh CA keys (the CT log key is fixed).
    pub fn new() -> TestFulcio {
        let root = Ca::root("test-root");
        let intermediate = Ca::intermediate("test-intermediate", &root);
        let ct = KeyPair::from_p256_scalar(&[7u8; 32]).unwrap();
        TestFulcio {
            root,
            intermediate,
            ct,
        }
    }

    /// A leaf as `spec` says with a good SCT.
    pub fn leaf(&self, key: &RcKey, spec: &LeafSpec) -> Vec<u8> {
        leaf(
            &self.intermediate,
            key,
            spec,
            Sct::Signed {
                signer: &self.ct,
                log_key: &self.ct,
            },
        )
    }

    /// The intermediate then the root, PEM: a `--certificate-chain` file.
    pub fn chain_pem(&self) -> String {
        self.intermediate.pem() + &self.root.pem()
    }

    /// A trusted root (JSON) naming this CA (trusted from `ca_from` to `ca_until`, RFC 3339,
    /// `None` for open) and CT log, and the timestamp authorities whose chains (DER, leaf
    /// first) are given.
    pub fn trusted_root_json(
        &self,
        ca_from: &str,
        ca_until: Option<&str>,
        tsa_chains: &[Vec<Vec<u8>>],
    ) -> serde_json::Value {
        let raw = |der: &[u8]| serde_json::json!({"rawBytes": B64.encode(der)});
        let mut valid_for = serde_json::json!({"start": ca_from});
        if let Some(end) = ca_until {
            valid_for["end"] = end.into();
        }
        let tsas: Vec<serde_json::Value> = tsa_chains
            .iter()
            .enumerate()
            .map(|(i, chain)| {
                serde_json::json!({
                    "subject": {"organization": "test.example", "commonName": format!("tsa-{i}")},
                    "uri": format!("https://tsa-{i}.test.example"),
                    "certChain": {"certificates": chain.iter().map(|d| raw(d)).collect::<Vec<_>>()},
                    "validFor": {"start": "2025-01-01T00:00:00Z"},
                })
            })
            .collect();
        serde_json::json!({
            "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
            "certificateAuthorities": [{
                "subject": {"organization": "test.example", "commonName": "test"},
                "uri": "https://fulcio.test.example",
                "certChain": {"certificates": [raw(&self.intermediate.der), raw(&self.root.der)]},
                "validFor": valid_for,
            }],
            "ctlogs": [{
                "baseUrl": "https://ct.test.example",
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": B64.encode(self.ct.public_key().der()),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": "2025-01-01T00:00:00Z"},
                },
                "logId": {"keyId": B64.encode(sha2::Sha256::digest(self.ct.public_key().der()))},
            }],
            "timestampAuthorities": tsas,
        })
    }
}

/// A timestamp authority made with the `openssl` command in a directory of its own: an EC P-256
/// leaf with the timestamping usage under its own root, answering RFC 3161 queries with
/// `openssl ts -reply`. Any failure of openssl (or its absence: `scripts/setup-tests.sh`
/// installs it) fails the test, saying what openssl said.
pub struct OpensslTsa {
    dir: std::path::PathBuf,
}

const OPENSSL_TSA_CONFIG: &str = "\
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
[tsa]
default_tsa = tsa_config
[tsa_config]
serial = ./tsa-serial
crypto_device = builtin
signer_cert = ./tsa.pem
certs = ./root.pem
signer_key = ./tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.55738.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
";

/// Runs `openssl ARGS` in `dir` and returns its standard output.
fn openssl(dir: &std::path::Path, args: &[&str]) -> Vec<u8> {
    let out = match std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!(
            "cannot run openssl ({e}): the test TSA is made with it (`apt-get install openssl`; \
             scripts/setup-tests.sh does)"
        ),
    };
    assert!(
        out.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

impl OpensslTsa {
    /// A new TSA named `name` (its certificate's CN; the root's is "`name` Root"), in a new
    /// directory under `base`.
    pub fn new(base: &std::path::Path, name: &str) -> OpensslTsa {
        let dir = base.join(format!("tsa-{}", name.replace([' ', '/'], "-")));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("openssl.cnf"), OPENSSL_TSA_CONFIG).unwrap();
        std::fs::write(dir.join("tsa-serial"), "01\n").unwrap();
        for key in ["root.key", "tsa.key"] {
            openssl(
                &dir,
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-out",
                    key,
                ],
            );
        }
        let (root_subject, subject) = (format!("/CN={name} Root"), format!("/CN={name}"));
        let config = ["-config", "openssl.cnf"];
        let mut root = vec!["req", "-x509", "-new", "-key", "root.key", "-subj"];
        root.extend([root_subject.as_str(), "-days", "3650", "-sha256"]);
        root.extend(config);
        root.extend(["-extensions", "v3_ca", "-out", "root.pem"]);
        openssl(&dir, &root);
        let mut csr = vec!["req", "-new", "-key", "tsa.key", "-subj", subject.as_str()];
        csr.extend(config);
        csr.extend(["-out", "tsa.csr"]);
        openssl(&dir, &csr);
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "tsa.csr",
                "-CA",
                "root.pem",
                "-CAkey",
                "root.key",
                "-CAcreateserial",
                "-days",
                "3650",
                "-sha256",
                "-extfile",
                "openssl.cnf",
                "-extensions",
                "v3_tsa",
                "-out",
                "tsa.pem",
            ],
        );
        OpensslTsa { dir }
    }

    /// Its chain, PEM: the TSA certificate, then the root.
    pub fn chain_pem(&self) -> String {
        ["tsa.pem", "root.pem"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.join(f)).unwrap())
            .collect()
    }

    /// Its chain, DER, leaf first.
    pub fn chain_der(&self) -> Vec<Vec<u8>> {
        crate::certified::certificates_from_pem(self.chain_pem().as_bytes(), "the TSA chain")
            .unwrap()
    }

    /// Its answer (a DER `TimeStampResp`) to `query` (a DER `TimeStampReq`); `None` when
    /// openssl refuses the query.
    pub fn reply_to(&self, query: &[u8]) -> Option<Vec<u8>> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        // `openssl ts -reply` rewrites the serial file: one reply at a time.
        static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let (q, r) = (format!("query-{n}.tsq"), format!("reply-{n}.tsr"));
        std::fs::write(self.dir.join(&q), query).unwrap();
        let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
        let answered = std::process::Command::new("openssl")
            .args(["ts", "-reply", "-config", "openssl.cnf", "-queryfile"])
            .args([&q, "-out", &r])
            .current_dir(&self.dir)
            .output()
            .is_ok_and(|o| o.status.success());
        answered.then(|| std::fs::read(self.dir.join(r)).unwrap())
    }

    /// Its answer to a SHA-256 query over `data` that asks for its certificate.
    pub fn reply_over(&self, data: &[u8]) -> Vec<u8> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let (input, query) = (format!("data-{n}.bin"), format!("data-{n}.tsq"));
        std::fs::write(self.dir.join(&input), data).unwrap();
        openssl(
            &self.dir,
            &[
                "ts", "-query", "-data", &input, "-sha256", "-cert", "-out", &query,
            ],
        );
        let query = std::fs::read(self.dir.join(query)).unwrap();
        self.reply_to(&query)
            .expect("openssl answers its own query")
    }
}
