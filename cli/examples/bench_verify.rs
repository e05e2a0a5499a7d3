//! Benchmark of `signet verify` on a digest-pinned image with 1, 10, 100 and 1,000 attestations,
//! and on a hostile image (60 bundle referrers that all name one 16 MiB blob, issue 12), on the
//! real local registry (Debian's distribution 2.8), cold process each run; and once more with
//! 1,000 attestations on the suite's in-memory test registry (referrers API), which answers in
//! a fraction of the time distribution 2.8 takes and so shows what signet itself costs.
//!
//! For each size it prints: HTTP requests the verify made, busy periods on the wire (requests
//! that overlap in time belong to one period, so this counts sequential round trips), wall
//! time, and peak memory (max RSS, from `/usr/bin/time`). Requests are counted by a recording
//! proxy between signet and the registry; then the wall time of the same verify straight to
//! the registry, without the proxy, and the CPU time (user and system) the signet process
//! used.
//!
//! Run with `bash scripts/bench-verify.sh`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "a benchmark program: failing loudly is the right behaviour"
)]

#[path = "../../tests/e2e/harness.rs"]
#[allow(
    dead_code,
    reason = "shared with the test suite; the benchmark uses part of it"
)]
mod harness;

#[path = "../../tests/e2e/fake_registry.rs"]
#[allow(
    dead_code,
    reason = "shared with the test suite; the benchmark uses part of it"
)]
mod fake_registry;

#[path = "shared/proxy.rs"]
#[allow(
    dead_code,
    reason = "shared by the benchmarks; this one uses part of it"
)]
mod proxy;

use std::process::Command;
use std::time::{Duration, Instant};

use signet_core::bundle::Bundle;
use signet_core::digest::Digest;
use signet_core::intoto::Statement;
use signet_core::keys::KeyPair;
use signet_core::oci::{self, Descriptor, Manifest};
use signet_core::reference::ImageRef;
use signet_registry::publish;
use signet_registry::{Client, ClientOptions, Precondition, Repository, TagOrDigest};

use crate::proxy::{Proxy, busy_periods, start_proxy};

async fn push_image(repo: &Repository, tag: &str, content: &[u8]) -> Digest {
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    repo.put_blob(config).await.unwrap();
    repo.put_blob(content).await.unwrap();
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(oci::OCI_MANIFEST.into()),
        artifact_type: None,
        config: Descriptor::of("application/vnd.oci.image.config.v1+json", config),
        layers: vec![Descriptor::of(
            "application/vnd.oci.image.layer.v1.tar",
            content,
        )],
        subject: None,
        annotations: Default::default(),
    };
    let bytes = serde_json::to_vec(&manifest).unwrap();
    repo.put_manifest(
        TagOrDigest::Tag(tag),
        oci::OCI_MANIFEST,
        &bytes,
        Precondition::None,
    )
    .await
    .unwrap()
    .digest
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let signet = std::env::args()
        .nth(1)
        .expect("usage: bench_verify PATH/TO/signet");
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    harness::install_crypto_provider();
    let registry = harness::Registry::start(harness::Options::plain());
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::generate_p256().unwrap();
    let pub_path = dir.path().join("k.pub");
    std::fs::write(&pub_path, key.public_key().to_pem()).unwrap();

    // The suite's in-memory test registry (with the referrers API), to tell signet's own cost
    // from the registry's in the last row.
    let fast = fake_registry::FakeRegistry::start();
    let proxy = Proxy::new(registry.url(), Duration::ZERO, false);
    let proxy_host = start_proxy(proxy.clone()).await;
    let fast_proxy = Proxy::new(fast.url(), Duration::ZERO, false);
    let fast_proxy_host = start_proxy(fast_proxy.clone()).await;

    let client = Client::new(ClientOptions::default()).unwrap();
    println!(
        "signet verify benchmark: {} cores, {}; registry: distribution 2.8 on loopback; {runs} cold runs per size (median shown)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(
                |c| c.lines().find(|l| l.starts_with("model name")).map(|l| l
                    .split(':')
                    .nth(1)
                    .unwrap_or("")
                    .trim()
                    .to_string())
            )
            .unwrap_or_else(|| "unknown CPU".into())
    );
    println!(
        "{:>12} {:>9} {:>13} {:>12} {:>14} {:>15} {:>14}",
        "attestations",
        "requests",
        "busy periods",
        "wall ms",
        "peak RSS MiB",
        "direct wall ms",
        "signet CPU ms"
    );
    // (label, attestations, hostile, on the test registry): the hostile image's referrers all
    // name one 16 MiB blob that is not a bundle; `verify` must deny it within its evidence
    // budget.
    let cases: [(&str, usize, bool, bool); 6] = [
        ("1", 1, false, false),
        ("10", 10, false, false),
        ("100", 100, false, false),
        ("1000", 1000, false, false),
        ("60 x 16 MiB", 60, true, false),
        ("1000 (test)", 1000, false, true),
    ];
    for (label, n, hostile, on_test_registry) in cases {
        let (host, proxy, proxy_host) = if on_test_registry {
            (fast.host(), &fast_proxy, &fast_proxy_host)
        } else {
            (registry.host(), &proxy, &proxy_host)
        };
        let name = format!("bench/app{n}{}", if hostile { "h" } else { "" });
        let image: ImageRef = format!("{host}/{name}:v1").parse().unwrap();
        let repo = Repository::new(&client, &image);
        let digest = push_image(&repo, "v1", format!("layer {label}").as_bytes()).await;
        let subject = publish::subject_descriptor(&repo, &digest).await.unwrap();
        repo.put_blob(oci::EMPTY_JSON_BYTES).await.unwrap();
        let mut manifests = Vec::with_capacity(n);
        if hostile {
            let big: Vec<u8> = (0..16u32 << 20).map(|i| (i % 251) as u8).collect();
            repo.put_blob(&big).await.unwrap();
            for i in 0..n {
                let layer = Descriptor::of(signet_core::bundle::BUNDLE_V03_MEDIA_TYPE, &big);
                let bytes =
                    publish::bundle_manifest(&subject, layer, Some(format!("https://hostile/{i}")))
                        .unwrap();
                manifests.push((oci::OCI_MANIFEST.to_string(), bytes));
            }
        } else {
            for i in 0..n {
                let statement = Statement::new(
                    "bench",
                    &digest,
                    "https://cosign.sigstore.dev/attestation/v1",
                    serde_json::json!({ "i": i }),
                );
                let bundle = Bundle::sign_statement(&statement, &key).unwrap();
                let json = bundle.to_json();
                repo.put_blob(&json).await.unwrap();
                let layer = Descriptor::of(signet_core::bundle::BUNDLE_V03_MEDIA_TYPE, &json);
                let bytes =
                    publish::bundle_manifest(&subject, layer, bundle.unverified_predicate_type())
                        .unwrap();
                manifests.push((oci::OCI_MANIFEST.to_string(), bytes));
            }
        }
        repo.attach_referrers(&digest, &manifests).await.unwrap();
        let target = format!("{proxy_host}/{name}@{digest}");
        let direct = format!("{host}/{name}@{digest}");
        let (mut walls, mut rss, mut requests, mut periods, mut direct_walls, mut cpu) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for _ in 0..runs {
            proxy.clear();
            let start = Instant::now();
            let out = Command::new("/usr/bin/time")
                .args(["-f", "%M %U %S"])
                .arg(&signet)
                .args(["verify", &target, "--output", "json", "--key"])
                .arg(&pub_path)
                .output()
                .unwrap();
            let wall = start.elapsed();
            // Allowed (0) for signed images; denied (1), not an error, for the hostile one, with
            // every one of its referrers read and rejected (else the row would measure nothing).
            let want = if hostile { 1 } else { 0 };
            let decision: serde_json::Value =
                serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
            let seen = decision["accepted"].as_array().map_or(0, Vec::len)
                + decision["rejected"].as_array().map_or(0, Vec::len);
            assert_eq!(seen, n, "verify saw {seen} of {n} referrers: {decision}");
            assert_eq!(
                out.status.code(),
                Some(want),
                "verify: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            // Let the proxy finish recording the last response.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let stderr = String::from_utf8_lossy(&out.stderr);
            // /usr/bin/time's last line: peak KiB, user and system CPU seconds.
            let figures: Vec<f64> = stderr
                .lines()
                .last()
                .unwrap_or("")
                .split_whitespace()
                .filter_map(|f| f.parse().ok())
                .collect();
            let kib = figures.first().copied().unwrap_or(f64::NAN);
            cpu.push(
                figures.get(1).copied().unwrap_or(f64::NAN) * 1000.0
                    + figures.get(2).copied().unwrap_or(f64::NAN) * 1000.0,
            );
            let log = proxy.spans();
            walls.push(wall.as_secs_f64() * 1000.0);
            rss.push(kib / 1024.0);
            requests.push(log.len() as f64);
            periods.push(busy_periods(log) as f64);
            // The same verify straight to the registry: the recording proxy's own cost left
            // out.
            let start = Instant::now();
            let out = Command::new(&signet)
                .args(["verify", &direct, "--output", "json", "--key"])
                .arg(&pub_path)
                .output()
                .unwrap();
            direct_walls.push(start.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(out.status.code(), Some(want), "direct verify");
        }
        println!(
            "{:>12} {:>9} {:>13} {:>12.1} {:>14.1} {:>15.1} {:>14.0}",
            label,
            median(requests),
            median(periods),
            median(walls),
            median(rss),
            median(direct_walls),
            median(cpu)
        );
    }
}
