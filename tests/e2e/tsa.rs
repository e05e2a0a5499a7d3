//! A test RFC 3161 timestamp authority: a root and a TSA certificate made with `openssl` at
//! test time, and an HTTP endpoint on 127.0.0.1 that answers `application/timestamp-query`
//! posts with `openssl ts -reply`. For `sign --timestamp-server-url` and the trusted-time cases
//! of issue 15 (a revoked key's evidence counts with a trusted time before `revokedAt`).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

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
[tsa]
default_tsa = tsa_config
[tsa_config]
serial = ./serial
crypto_device = builtin
signer_cert = ./tsa.pem
certs = ./root.pem
signer_key = ./tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.55738.1
digests = sha256, sha384, sha512
accuracy = secs:1
ess_cert_id_alg = sha256
";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl ({e}); scripts/setup-tests.sh installs it"));
    assert!(
        out.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running test TSA. Stops when dropped.
pub(crate) struct TestTsa {
    dir: tempfile::TempDir,
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    /// How many timestamps it issued.
    pub(crate) issued: Arc<AtomicUsize>,
}

impl TestTsa {
    pub(crate) fn start() -> TestTsa {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("ext.cnf"), EXTENSIONS).unwrap();
        std::fs::write(d.join("serial"), "01\n").unwrap();
        for key in ["root.key", "tsa.key"] {
            openssl(
                d,
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
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "root.key",
                "-subj",
                "/CN=signet test TSA root",
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
        openssl(
            d,
            &[
                "req",
                "-new",
                "-key",
                "tsa.key",
                "-subj",
                "/CN=signet test TSA",
                "-config",
                "ext.cnf",
                "-out",
                "tsa.csr",
            ],
        );
        openssl(
            d,
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
                "ext.cnf",
                "-extensions",
                "v3_tsa",
                "-out",
                "tsa.pem",
            ],
        );
        let chain = std::fs::read_to_string(d.join("tsa.pem")).unwrap()
            + &std::fs::read_to_string(d.join("root.pem")).unwrap();
        std::fs::write(d.join("chain.pem"), chain).unwrap();

        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let issued = Arc::new(AtomicUsize::new(0));
        let (work, flag, count) = (d.to_path_buf(), Arc::clone(&stop), Arc::clone(&issued));
        std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        answer(stream, &work, &count);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            }
        });
        TestTsa {
            dir,
            addr,
            stop,
            issued,
        }
    }

    /// Its RFC 3161 endpoint.
    pub(crate) fn url(&self) -> String {
        format!("http://{}/tsa", self.addr)
    }

    /// Its certificate chain (leaf, root), PEM: what a policy's `timestampAuthorities` names.
    pub(crate) fn chain_path(&self) -> PathBuf {
        self.dir.path().join("chain.pem")
    }
}

impl Drop for TestTsa {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// One request per connection: read the query, `openssl ts -reply`, answer.
fn answer(stream: TcpStream, dir: &Path, issued: &AtomicUsize) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length = 0usize;
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut query = vec![0; length];
    reader.read_exact(&mut query).unwrap();
    let n = issued.fetch_add(1, Ordering::SeqCst);
    let (q, r) = (format!("q{n}.tsq"), format!("r{n}.tsr"));
    std::fs::write(dir.join(&q), &query).unwrap();
    let ok = first.starts_with("POST ")
        && Command::new("openssl")
            .args([
                "ts",
                "-reply",
                "-config",
                "ext.cnf",
                "-queryfile",
                &q,
                "-out",
                &r,
            ])
            .current_dir(dir)
            .output()
            .is_ok_and(|o| o.status.success());
    let mut stream = stream;
    if ok {
        let body = std::fs::read(dir.join(&r)).unwrap();
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/timestamp-reply\r\nContent-Length: \
             {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        stream.write_all(&body).unwrap();
    } else {
        stream
            .write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .unwrap();
    }
}
