//! A test RFC 3161 timestamp authority on 127.0.0.1: `signet_core::keyless::test_pki`'s
//! OpenSSL TSA (a root and a TSA certificate made with `openssl` at test time) behind an HTTP
//! endpoint that answers `application/timestamp-query` posts with `openssl ts -reply`. For
//! `sign --timestamp-server-url` and the trusted-time cases of issue 15 (a revoked key's
//! evidence counts with a trusted time before `revokedAt`) and issue 13 (keyless signatures
//! timestamped under a private trusted root).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use signet_core::keyless::test_pki::OpensslTsa;

/// A running test TSA. Stops when dropped.
pub(crate) struct TestTsa {
    dir: tempfile::TempDir,
    tsa: Arc<OpensslTsa>,
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    /// How many timestamps it issued.
    pub(crate) issued: Arc<AtomicUsize>,
}

impl TestTsa {
    pub(crate) fn start() -> TestTsa {
        let dir = tempfile::tempdir().unwrap();
        let tsa = Arc::new(OpensslTsa::new(dir.path(), "signet test TSA"));
        std::fs::write(dir.path().join("chain.pem"), tsa.chain_pem()).unwrap();

        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let issued = Arc::new(AtomicUsize::new(0));
        let (authority, flag, count) = (Arc::clone(&tsa), Arc::clone(&stop), Arc::clone(&issued));
        std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        answer(stream, &authority, &count);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            }
        });
        TestTsa {
            dir,
            tsa,
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

    /// Its certificate chain, DER, leaf first: what a trusted root's `timestampAuthorities`
    /// holds.
    pub(crate) fn chain_der(&self) -> Vec<Vec<u8>> {
        self.tsa.chain_der()
    }
}

impl Drop for TestTsa {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// One request per connection: read the query, `openssl ts -reply`, answer.
fn answer(stream: TcpStream, tsa: &OpensslTsa, issued: &AtomicUsize) {
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
    let reply = first
        .starts_with("POST ")
        .then(|| tsa.reply_to(&query))
        .flatten();
    let mut stream = stream;
    match reply {
        Some(body) => {
            issued.fetch_add(1, Ordering::SeqCst);
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/timestamp-reply\r\nContent-Length: \
                 {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .unwrap();
            stream.write_all(&body).unwrap();
        }
        None => stream
            .write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .unwrap(),
    }
}
