//! Benchmark of cold admission of a many-image pod over a slow link (issue 12, finding 7): a
//! pod of 10 containers, each image in its own repository and signed by two attestors, admitted
//! by `signet serve` as Kubernetes does it: the mutating webhook pins the tags to digests, then
//! the validating webhook verifies the pinned images. Every registry request is delayed on its
//! way by a latency-injecting proxy on loopback (default 50 ms, `LATENCY_MS`).
//!
//! Two registries: the real one (Debian's distribution 2.8, no referrers API: evidence is
//! found through the fallback index) and the suite's test registry with the OCI 1.1 referrers
//! API. For each it prints, cold (a fresh daemon) and warm (the same pod again), the registry
//! requests the admission cost, its sequential round trips (per image: the longest chain of
//! requests each sent after the previous one was answered), and the wall time of both webhook
//! calls; and a third row, "cold, known": a fresh set of images on a daemon that has already
//! admitted one pod from that registry.
//!
//! The proxy adds its delay per HTTP request; TCP connection set-up between signet and the
//! proxy is on loopback and costs nothing here, so new connections are cheaper than on a real
//! link.
//!
//! Run with `bash scripts/bench-pod.sh`.
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

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use signet_core::digest::Digest;
use signet_core::keys::KeyPair;
use signet_core::oci::{self, Descriptor, Manifest};
use signet_core::reference::ImageRef;
use signet_registry::publish::{self, StorageFormat};
use signet_registry::{Client, ClientOptions, Precondition, Repository, TagOrDigest};

use crate::proxy::{Proxy, start_proxy};

const IMAGES: usize = 10;

/// Sequential round trips of one image: the longest chain of requests to its repository in
/// which each one was sent after the one before it was answered; the most of any image.
/// (Chains across images would count a request held up by another image's slow answer.)
fn round_trips(spans: &[(Instant, Instant, String)]) -> usize {
    let mut by_repository: BTreeMap<&str, Vec<(Instant, Instant)>> = BTreeMap::new();
    for (start, end, repository) in spans {
        by_repository
            .entry(repository.as_str())
            .or_default()
            .push((*start, *end));
    }
    by_repository
        .values()
        .map(|spans| longest_chain(spans))
        .max()
        .unwrap_or(0)
}

fn longest_chain(spans: &[(Instant, Instant)]) -> usize {
    let mut by_end: Vec<(Instant, Instant)> = spans.to_vec();
    by_end.sort_by_key(|s| s.1);
    let mut chain: Vec<usize> = Vec::with_capacity(by_end.len());
    for (i, (start, _)) in by_end.iter().enumerate() {
        let before = (0..i)
            .filter(|&j| by_end[j].1 <= *start)
            .map(|j| chain[j])
            .max()
            .unwrap_or(0);
        chain.push(before + 1);
    }
    chain.into_iter().max().unwrap_or(0)
}

/// Pushes a small image to `repo:tag`, signs it with each key (bundle format), and returns
/// its digest.
async fn push_signed_image(
    repo: &Repository,
    image: &ImageRef,
    keys: &[KeyPair],
    seed: &str,
) -> Digest {
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    repo.put_blob(config).await.unwrap();
    repo.put_blob(seed.as_bytes()).await.unwrap();
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(oci::OCI_MANIFEST.into()),
        artifact_type: None,
        config: Descriptor::of("application/vnd.oci.image.config.v1+json", config),
        layers: vec![Descriptor::of(
            "application/vnd.oci.image.layer.v1.tar",
            seed.as_bytes(),
        )],
        subject: None,
        annotations: Default::default(),
    };
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let tag = image.tag().unwrap();
    let digest = repo
        .put_manifest(
            TagOrDigest::Tag(tag),
            oci::OCI_MANIFEST,
            &bytes,
            Precondition::None,
        )
        .await
        .unwrap()
        .digest;
    let pinned = image.with_digest(digest.clone());
    let subject = publish::subject_descriptor(repo, &digest).await.unwrap();
    for key in keys {
        publish::sign(
            repo,
            &pinned,
            &subject,
            key,
            StorageFormat::Bundle,
            BTreeMap::new(),
            None,
        )
        .await
        .unwrap();
    }
    digest
}

fn review(images: &[String]) -> Vec<u8> {
    let containers: Vec<serde_json::Value> = images
        .iter()
        .enumerate()
        .map(|(i, image)| serde_json::json!({ "name": format!("c{i}"), "image": image }))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "bench-pod",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {"username": "bench"},
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "bench", "namespace": "shop"},
                "spec": {"containers": containers}
            }
        }
    }))
    .unwrap()
}

struct Daemon {
    child: Child,
    url: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_daemon(
    http: &reqwest::Client,
    signet: &str,
    policy: &std::path::Path,
    proxies: &[String],
) -> Daemon {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = Command::new(signet);
    command
        .args(["serve", "--insecure-http", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--policy")
        .arg(policy)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for proxy in proxies {
        command.args(["--insecure-registry", proxy]);
    }
    let daemon = Daemon {
        child: command.spawn().unwrap(),
        url: format!("http://127.0.0.1:{port}"),
    };
    let ready = format!("{}/readyz", daemon.url);
    for _ in 0..200 {
        if http
            .get(&ready)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return daemon;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("signet serve did not become ready");
}

/// Admits the pod: the mutating webhook with `tagged`, then the validating webhook with
/// `pinned` (what the mutating webhook's patch makes of it, checked below); returns
/// (requests, round trips, wall ms).
async fn measure(
    http: &reqwest::Client,
    daemon: &Daemon,
    proxy: &Proxy,
    tagged: &[u8],
    pinned: &[u8],
) -> (usize, usize, f64) {
    proxy.clear();
    let start = Instant::now();
    let mutated = post(http, daemon, "mutate", tagged).await;
    let validated = post(http, daemon, "validate", pinned).await;
    let wall = start.elapsed();
    let patch = mutated["response"]["patch"].as_str().unwrap_or_default();
    let patch = String::from_utf8(
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, patch).unwrap(),
    )
    .unwrap();
    let pinned_text = String::from_utf8_lossy(pinned);
    assert!(
        patch.matches("@sha256:").count() == IMAGES
            && patch
                .split('"')
                .filter(|v| v.contains("@sha256:"))
                .all(|v| pinned_text.contains(v)),
        "the mutating webhook pins every image as the validated pod has it: {patch}"
    );
    assert_eq!(
        validated["response"]["allowed"], true,
        "the signed pod must be admitted: {validated}"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    let log = proxy.log.lock().unwrap().clone();
    if let Some(trace) = &proxy.trace {
        let mut trace = trace.lock().unwrap().clone();
        trace.sort_by_key(|t| t.0);
        for (s, e, line) in trace {
            eprintln!(
                "  {:>6.1} {:>6.1}  {line}",
                (s - start).as_secs_f64() * 1000.0,
                (e - start).as_secs_f64() * 1000.0
            );
        }
        eprintln!("  ---");
    }
    (log.len(), round_trips(&log), wall.as_secs_f64() * 1000.0)
}

async fn post(
    http: &reqwest::Client,
    daemon: &Daemon,
    webhook: &str,
    body: &[u8],
) -> serde_json::Value {
    http.post(format!("{}/admission/{webhook}", daemon.url))
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let signet = std::env::args()
        .nth(1)
        .expect("usage: bench_pod PATH/TO/signet");
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let latency = Duration::from_millis(
        std::env::var("LATENCY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(50),
    );
    harness::install_crypto_provider();
    let real = harness::Registry::start(harness::Options::plain());
    let fake = fake_registry::FakeRegistry::start();
    let dir = tempfile::tempdir().unwrap();
    let keys = [
        KeyPair::generate_p256().unwrap(),
        KeyPair::generate_p256().unwrap(),
    ];
    for (i, key) in keys.iter().enumerate() {
        std::fs::write(
            dir.path().join(format!("k{i}.pub")),
            key.public_key().to_pem(),
        )
        .unwrap();
    }
    let policy = dir.path().join("policy.yaml");

    let client = Client::new(ClientOptions::default()).unwrap();
    let http = reqwest::Client::new();
    println!(
        "signet serve, admission (mutating, then validating webhook) of a {IMAGES}-image pod (each \
         image in its own repository, two attestors), {} ms per registry request; {} cores; \
         median of {runs}",
        latency.as_millis(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!(
        "{:<34} {:<16} {:>9} {:>13} {:>10}",
        "registry", "case", "requests", "round trips", "wall ms"
    );
    let registries = [
        ("distribution 2.8 (no referrers API)", real.url()),
        ("test registry (referrers API)", fake.url()),
    ];
    for (label, upstream) in registries {
        let proxy = Proxy::new(
            upstream.clone(),
            latency,
            std::env::var_os("VERBOSE").is_some(),
        );
        let proxy_host = start_proxy(proxy.clone()).await;
        // On loopback, the daemon reaches only registries its policy names outright.
        std::fs::write(
            &policy,
            format!(
                "registryAllowlist: [\"{proxy_host}/**\"]\ndefaultAdmissionRule:\n  evaluationMode: REQUIRE_ATTESTATION\n  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG\n  requireAttestationsBy: [built-by-ci, approved-by-qa]\nattestors:\n  - name: built-by-ci\n    publicKeys: [{{file: k0.pub}}]\n  - name: approved-by-qa\n    publicKeys: [{{file: k1.pub}}]\n"
            ),
        )
        .unwrap();
        let upstream_host = upstream.trim_start_matches("http://").to_string();
        // Two sets of images: one for the cold reviews, one for "cold, known"; each as tagged
        // and as pinned references.
        let mut sets: Vec<(Vec<String>, Vec<String>)> = Vec::new();
        for set in 0..2 {
            let (mut tagged, mut pinned) = (Vec::new(), Vec::new());
            for i in 0..IMAGES {
                let name = format!("pod/set{set}/app{i}");
                let image: ImageRef = format!("{upstream_host}/{name}:v1").parse().unwrap();
                let repo = Repository::new(&client, &image);
                let digest =
                    push_signed_image(&repo, &image, &keys, &format!("{name} layer")).await;
                tagged.push(format!("{proxy_host}/{name}:v1"));
                pinned.push(format!("{proxy_host}/{name}:v1@{digest}"));
            }
            sets.push((tagged, pinned));
        }
        let first = (review(&sets[0].0), review(&sets[0].1));
        let second = (review(&sets[1].0), review(&sets[1].1));
        let mut rows: BTreeMap<&str, Vec<(usize, usize, f64)>> = BTreeMap::new();
        for _ in 0..runs {
            let daemon =
                start_daemon(&http, &signet, &policy, std::slice::from_ref(&proxy_host)).await;
            rows.entry("1 cold")
                .or_default()
                .push(measure(&http, &daemon, &proxy, &first.0, &first.1).await);
            rows.entry("2 warm")
                .or_default()
                .push(measure(&http, &daemon, &proxy, &first.0, &first.1).await);
            rows.entry("3 cold, known")
                .or_default()
                .push(measure(&http, &daemon, &proxy, &second.0, &second.1).await);
        }
        for (case, samples) in rows {
            let requests = median(samples.iter().map(|s| s.0 as f64).collect());
            let periods = median(samples.iter().map(|s| s.1 as f64).collect());
            let wall = median(samples.iter().map(|s| s.2).collect());
            println!(
                "{label:<34} {:<16} {requests:>9} {periods:>13} {wall:>10.1}",
                &case[2..]
            );
        }
    }
}
