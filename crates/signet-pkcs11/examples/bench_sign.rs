//! Benchmark of signing time per signature: a key in a PKCS#11 token (SoftHSM) against a key
//! file held in memory, for ECDSA P-256, P-384 and RSA 2048 token keys. For each signer it
//! prints the time to open it (file: read and decrypt with scrypt; token: load the module, log
//! in, find the key, read the public key) and the time per signature (median, mean, p95 over N
//! signatures of a DSSE-sized message). Signatures through the token include signet's own
//! check of each signature against the public key, as `signet sign` does.
//!
//! Informational: a test never asserts a time. Run with `bash scripts/bench-sign.sh [N]`, which
//! makes the token and its keys and sets SOFTHSM2_CONF.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "a benchmark program: failing loudly is the right behaviour"
)]

use std::time::{Duration, Instant};

use signet_core::keys::{KeyPair, Signer};
use signet_pkcs11::{Pkcs11Signer, Pkcs11Uri};

fn stats(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let n = samples.len();
    let mean = samples.iter().sum::<Duration>() / u32::try_from(n).unwrap();
    let p95 = samples[(n * 95 / 100).min(n - 1)];
    format!(
        "median {:>9.1} µs   mean {:>9.1} µs   p95 {:>9.1} µs",
        micros(samples[n / 2]),
        micros(mean),
        micros(p95)
    )
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn run(name: &str, open: Duration, signer: &dyn Signer, n: usize) {
    // A message the size of a typical signed in-toto statement's PAE.
    let message = vec![b'x'; 600];
    // Warm up (first call pays for lazy set-up in the module).
    for _ in 0..3 {
        signer.sign(&message).unwrap();
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let sig = signer.sign(&message).unwrap();
        samples.push(start.elapsed());
        assert!(!sig.is_empty());
    }
    signer
        .public_key()
        .verify(&message, &signer.sign(&message).unwrap())
        .unwrap();
    println!(
        "{name:<28} open {:>8.1} ms   per signature: {}",
        open.as_secs_f64() * 1e3,
        stats(samples)
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(200, |a| a.parse().unwrap());
    let module = args
        .next()
        .unwrap_or_else(|| "/usr/lib/softhsm/libsofthsm2.so".into());
    let pin = args.next().unwrap_or_else(|| "123456".into());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("signing benchmark: {n} signatures each; {cpu}, {cores} cores");
    println!("module: {module}");

    // A key file: cosign's encrypted format, decrypted once (scrypt N=2^16), then in memory.
    let pem = KeyPair::generate_p256()
        .unwrap()
        .to_encrypted_pem(b"bench")
        .unwrap();
    let start = Instant::now();
    let pair = KeyPair::from_encrypted_pem(&pem, b"bench").unwrap();
    run("key file, ECDSA P-256", start.elapsed(), &pair, n);

    for (label, name) in [
        ("ec", "SoftHSM, ECDSA P-256"),
        ("ec384", "SoftHSM, ECDSA P-384"),
        ("rsa", "SoftHSM, RSA 2048"),
    ] {
        let uri: Pkcs11Uri = format!("pkcs11:token=bench;object={label}?module-path={module}")
            .parse()
            .unwrap();
        let start = Instant::now();
        let signer = Pkcs11Signer::open(&uri, None, &|_| Some(pin.clone().into())).unwrap();
        let open = start.elapsed();
        run(name, open, &signer, n);
    }
}
