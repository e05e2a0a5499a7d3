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
    fails_cleanly(s.verify(&[]), 1, "larger than the 16777216-byte limit");
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
