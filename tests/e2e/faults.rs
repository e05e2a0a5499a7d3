//! Against the test-only registry: the native referrers API (pagination, filters, `OCI-Subject`)
//! and every fault on demand. Each fault ends in a clear error (exit 2) or a denial (exit 1)
//! within the deadline — never a panic, never an allow.

use std::time::Duration;

use crate::cli::{Run, signet};
use crate::fake_registry::{Config, FakeRegistry, Fault, RequestKind};

const PASSWORD: &str = "faults";

struct Setup {
    registry: FakeRegistry,
    dir: tempfile::TempDir,
    image: String,
}

/// A fake registry holding one image with `attestations` bundle attestations signed by `k`.
fn setup(config: Config, attestations: usize) -> Setup {
    let registry = FakeRegistry::start_with(config);
    let config_blob = br#"{"architecture":"amd64","os":"linux"}"#;
    let layer = b"fault layer";
    let config_digest = registry.seed_blob("faults/app", &config_blob[..]);
    let layer_digest = registry.seed_blob("faults/app", &layer[..]);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_blob.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
    })
    .to_string();
    registry.seed_manifest(
        "faults/app",
        "v1",
        "application/vnd.oci.image.manifest.v1+json",
        manifest.into_bytes(),
    );
    let dir = tempfile::tempdir().unwrap();
    signet(
        dir.path(),
        &["keygen", "--output-prefix", "k"],
        Some(PASSWORD),
    )
    .expect_code(0);
    let image = format!("{}/faults/app:v1", registry.host());
    for i in 0..attestations {
        let predicate = dir.path().join(format!("p{i}.json"));
        std::fs::write(&predicate, format!(r#"{{"n":{i}}}"#)).unwrap();
        signet(
            dir.path(),
            &[
                "attest",
                &image,
                "--key",
                "k.key",
                "--type",
                "custom",
                "--predicate",
                predicate.to_str().unwrap(),
            ],
            Some(PASSWORD),
        )
        .expect_code(0);
    }
    Setup {
        registry,
        dir,
        image,
    }
}

impl Setup {
    fn verify(&self, extra: &[&str]) -> Run {
        let mut args = vec![
            "verify",
            self.image.as_str(),
            "--key",
            "k.pub",
            "--output",
            "json",
            "--registry-timeout",
            "3",
        ];
        args.extend(extra);
        signet(self.dir.path(), &args, None)
    }
}

/// The run failed cleanly: exit 1 or 2 as given, no panic, and `needle` in what it printed.
#[track_caller]
fn fails_cleanly(run: Run, code: i32, needle: &str) {
    assert!(!run.all().contains("panicked"), "{}", run.all());
    let run = run.expect_code(code);
    assert!(
        run.all().contains(needle),
        "expected {needle:?} in:\n{}",
        run.all()
    );
}

#[test]
fn native_referrers_over_several_pages_are_all_found() {
    let s = setup(
        Config {
            page_size: 2,
            ..Config::default()
        },
        5,
    );
    s.registry.reset_counters();
    let run = s.verify(&[]).expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        json["accepted"].as_array().unwrap().len(),
        5,
        "{}",
        run.stdout
    );
    // 5 referrers at 2 per page: 3 pages, one listing.
    assert_eq!(s.registry.requests(RequestKind::Referrers), 3);
    // With the API answering, no fallback index was written at push time.
    let tree = signet(s.dir.path(), &["tree", &s.image, "--output", "json"], None).expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&tree.stdout).unwrap();
    assert_eq!(json["referrers"].as_array().unwrap().len(), 5);
}

#[test]
fn registry_that_ignores_the_filter_is_filtered_on_the_client() {
    let s = setup(
        Config {
            filter_artifact_type: false,
            page_size: 3,
            ..Config::default()
        },
        4,
    );
    let run = s.verify(&[]).expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["accepted"].as_array().unwrap().len(), 4);
}

#[test]
fn wrong_digest_on_manifests_and_blobs_denies() {
    let s = setup(Config::default(), 1);
    s.registry
        .set_fault_for(RequestKind::BlobGet, Some(Fault::WrongDigest));
    fails_cleanly(s.verify(&[]), 1, "digest mismatch for blob");
    s.registry.set_fault_for(RequestKind::BlobGet, None);
    s.registry
        .set_fault_for(RequestKind::ManifestGet, Some(Fault::WrongDigest));
    // Resolving by tag hashes what it gets; the referrer manifest fetched by digest mismatches.
    let run = s.verify(&[]);
    assert!(run.code == 1 || run.code == 2, "{}", run.all());
    assert!(run.all().contains("digest mismatch"), "{}", run.all());
    assert!(!run.all().contains("panicked"));
}

#[test]
fn huge_body_is_refused() {
    let s = setup(Config::default(), 1);
    s.registry.set_fault_for(
        RequestKind::Referrers,
        Some(Fault::HugeBody { bytes: 64 << 20 }),
    );
    fails_cleanly(s.verify(&[]), 2, "larger than the 4194304-byte limit");
    s.registry.set_fault_for(RequestKind::Referrers, None);
    s.registry.set_fault_for(
        RequestKind::BlobGet,
        Some(Fault::HugeBody { bytes: 64 << 20 }),
    );
    // The blob is read no further than the size its descriptor declares (issue 12, finding 2:
    // a registry that declares little and sends much is cut off there, not at 16 MiB).
    fails_cleanly(s.verify(&[]), 1, "-byte limit");
}

#[test]
fn garbage_json_is_a_clear_error() {
    let s = setup(Config::default(), 1);
    s.registry
        .set_fault_for(RequestKind::Referrers, Some(Fault::GarbageJson));
    fails_cleanly(s.verify(&[]), 2, "malformed referrers of");
}

#[test]
fn never_ending_pagination_stops_at_the_page_limit() {
    let s = setup(Config::default(), 1);
    s.registry
        .set_fault_for(RequestKind::Referrers, Some(Fault::EndlessPagination));
    fails_cleanly(s.verify(&[]), 2, "more than 100 pages");
}

#[test]
fn too_many_requests_is_retried_after_the_delay_asked() {
    let s = setup(Config::default(), 1);
    s.registry.set_fault_for(
        RequestKind::Referrers,
        Some(Fault::TooManyRequests {
            retry_after_secs: 1,
            times: 2,
        }),
    );
    s.registry.reset_counters();
    s.verify(&[]).expect_code(0);
    assert_eq!(
        s.registry.requests(RequestKind::Referrers),
        3,
        "two 429s, then the answer"
    );

    s.registry.set_fault_for(
        RequestKind::Referrers,
        Some(Fault::TooManyRequests {
            retry_after_secs: 0,
            times: 1000,
        }),
    );
    fails_cleanly(s.verify(&[]), 2, "answered 429");
}

#[test]
fn server_errors_end_in_an_error() {
    let s = setup(Config::default(), 1);
    s.registry.set_fault_for(
        RequestKind::Referrers,
        Some(Fault::ServerError { times: 1000 }),
    );
    fails_cleanly(s.verify(&[]), 2, "answered 500");
}

#[test]
fn slow_registry_hits_the_deadline() {
    let s = setup(Config::default(), 1);
    s.registry.set_fault_for(
        RequestKind::Referrers,
        Some(Fault::Slow {
            delay: Duration::from_secs(30),
        }),
    );
    fails_cleanly(s.verify(&[]), 2, "did not finish within 3s");
}

#[test]
fn redirect_loop_is_cut_off() {
    let s = setup(Config::default(), 1);
    s.registry
        .set_fault_for(RequestKind::Referrers, Some(Fault::RedirectLoop));
    fails_cleanly(s.verify(&[]), 2, "more than 5 redirects");
}

#[test]
fn concurrent_writers_on_a_registry_with_conditional_writes_lose_nothing() {
    // No referrers API, but If-Match honoured: the fallback index path with preconditions.
    let s = setup(
        Config {
            referrers_api: false,
            ..Config::default()
        },
        0,
    );
    let children: Vec<_> = (0..8)
        .map(|i| {
            let predicate = s.dir.path().join(format!("c{i}.json"));
            std::fs::write(&predicate, format!(r#"{{"c":{i}}}"#)).unwrap();
            std::process::Command::new(crate::cli::signet_bin())
                .args([
                    "attest",
                    &s.image,
                    "--key",
                    "k.key",
                    "--type",
                    "custom",
                    "--predicate",
                ])
                .arg(&predicate)
                .current_dir(s.dir.path())
                .env("SIGNET_PASSWORD", PASSWORD)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let run = s.verify(&[]).expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        json["accepted"].as_array().unwrap().len(),
        8,
        "{}",
        run.stdout
    );
    // And the index itself lists all eight.
    let digest: signet_core::digest::Digest = json["digest"].as_str().unwrap().parse().unwrap();
    crate::harness::install_crypto_provider();
    let image: signet_core::reference::ImageRef = s.image.parse().unwrap();
    let client = signet_registry::Client::new(Default::default()).unwrap();
    let repo = signet_registry::Repository::new(&client, &image);
    let index = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(repo.get_manifest_by_tag(&digest.fallback_tag()))
        .unwrap()
        .unwrap();
    let index: signet_core::oci::Index = serde_json::from_slice(&index.bytes).unwrap();
    assert_eq!(index.manifests.len(), 8);
}

/// Runs `signet ARGS` in `dir`, killing it if it has not finished after `limit`: a watchdog
/// that turns a runaway walk into a failure instead of a hung suite (not a timing assertion:
/// the bounded run takes a fraction of a second).
fn signet_or_kill(dir: &std::path::Path, args: &[&str], limit: Duration) -> Run {
    let mut child = std::process::Command::new(crate::cli::signet_bin())
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            let _ = child.wait();
            panic!("signet {args:?} did not finish within {limit:?}: the walk is unbounded");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Issue 12, finding 3: eight referrers of an image whose fallback indexes (`sha256-<hex>`)
/// each list all eight made `signet tree` follow the cycle 8^8 times (past 60 s and 1.4 GB).
/// Each names the image as its subject, so it is shown once, under the image; its listings
/// under the others are left out with a note.
#[test]
fn tree_of_fallback_indexes_listing_each_other_finishes_with_each_referrer_once() {
    let registry = FakeRegistry::start_with(Config {
        referrers_api: false,
        ..Config::default()
    });
    let repo = "cycle/app";
    let config_blob = br#"{"architecture":"amd64","os":"linux"}"#;
    let config_digest = registry.seed_blob(repo, &config_blob[..]);
    let empty = registry.seed_blob(repo, &b"{}"[..]);
    let image = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_blob.len()},
        "layers": [],
    })
    .to_string();
    let image_size = image.len();
    let image_digest = registry.seed_manifest(
        repo,
        "v1",
        "application/vnd.oci.image.manifest.v1+json",
        image.into_bytes(),
    );
    let referrers: Vec<serde_json::Value> = (0..8)
        .map(|n| {
            let manifest = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": "application/vnd.example.cycle",
                "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
                "layers": [],
                "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": image_digest, "size": image_size},
                "annotations": {"n": n.to_string()},
            })
            .to_string();
            let size = manifest.len();
            let digest = registry.seed_manifest(
                repo,
                &format!("r{n}"),
                "application/vnd.oci.image.manifest.v1+json",
                manifest.into_bytes(),
            );
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": "application/vnd.example.cycle",
                "digest": digest,
                "size": size,
            })
        })
        .collect();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": referrers,
    })
    .to_string();
    // The same fallback index at the image's tag and at each referrer's.
    let subjects = std::iter::once(image_digest.clone()).chain(
        referrers
            .iter()
            .map(|r| r["digest"].as_str().unwrap().to_string()),
    );
    for subject in subjects {
        registry.seed_manifest(
            repo,
            &subject.replace(':', "-"),
            "application/vnd.oci.image.index.v1+json",
            index.clone().into_bytes(),
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let image = format!("{}/{repo}:v1", registry.host());
    let limit = Duration::from_secs(45);
    registry.reset_counters();
    let run = signet_or_kill(dir.path(), &["tree", &image, "--output", "json"], limit);
    let run = run.expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let shown = json["referrers"].as_array().unwrap();
    assert_eq!(shown.len(), 8, "{}", run.stdout);
    for node in shown {
        assert_eq!(node.get("referrers"), None, "{node}");
        assert_eq!(node.get("alreadyShown"), None, "{node}");
    }
    assert_eq!(json["truncated"], false);
    let notes = json["notes"].as_array().unwrap();
    // Each of the eight listed under each of the eight, and left out there.
    assert_eq!(notes.len(), 64, "{}", run.stdout);
    let named = format!("names {image_digest} as its subject; not shown there");
    assert!(
        notes.iter().all(|n| n.as_str().unwrap().contains(&named)),
        "{}",
        run.stdout
    );
    // Each referrer manifest read once (8), plus the tag resolved (1), the image manifest read
    // to tell an index (whose platforms the tree shows) from a single manifest (1), the
    // fallback indexes (9) and the legacy tags looked for (3).
    assert!(
        registry.requests(RequestKind::ManifestGet) <= 8 + 1 + 1 + 9 + 3,
        "{} manifest reads",
        registry.requests(RequestKind::ManifestGet)
    );

    let text = signet_or_kill(dir.path(), &["tree", &image], limit).expect_code(0);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("application/vnd.example.cycle"))
            .count(),
        8,
        "{}",
        text.stdout
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("note: ")).count(),
        64,
        "{}",
        text.stdout
    );
}
