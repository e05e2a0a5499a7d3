//! `sign`, `attest`, `tree` and `verify` on images in an OCI image layout (`oci:DIR`) and a
//! layout tarball (`oci-archive:FILE`), through the real binary. The layouts are written here
//! byte by byte (and tarred with GNU tar), not by signet, so signet reads what another writer
//! made; no registry is involved.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use sha2::Digest as _;

use crate::cli::{Run, fixture, signet};

const PASSWORD: &str = "signet-fixture-password";
const QA_TYPE: &str = "https://example.com/qa/v1";

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Stores `bytes` as a blob of the layout at `dir`; returns its descriptor.
fn blob(dir: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let digest = sha256(bytes);
    let path = dir.join("blobs/sha256").join(&digest["sha256:".len()..]);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
}

/// A two-platform image (an index of two manifests, each with a config and a layer) in the
/// layout at `dir`; returns the index's descriptor.
fn image(dir: &Path, seed: &str) -> Value {
    let mut manifests = Vec::new();
    for arch in ["amd64", "arm64"] {
        let layer = blob(
            dir,
            "application/vnd.oci.image.layer.v1.tar",
            format!("layer of {seed} for {arch}").as_bytes(),
        );
        let config = json!({
            "architecture": arch, "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
        });
        let config = blob(
            dir,
            "application/vnd.oci.image.config.v1+json",
            config.to_string().as_bytes(),
        );
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config,
            "layers": [layer],
        });
        let mut d = blob(
            dir,
            "application/vnd.oci.image.manifest.v1+json",
            manifest.to_string().as_bytes(),
        );
        d["platform"] = json!({"architecture": arch, "os": "linux"});
        manifests.push(d);
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    });
    blob(
        dir,
        "application/vnd.oci.image.index.v1+json",
        index.to_string().as_bytes(),
    )
}

/// Writes a layout at `dir` with one image per `(ref name, seed)`; returns the image digests.
fn write_layout(dir: &Path, images: &[(&str, &str)]) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut entries = Vec::new();
    let mut digests = Vec::new();
    for (name, seed) in images {
        let mut d = image(dir, seed);
        d["annotations"] = json!({"org.opencontainers.image.ref.name": name});
        digests.push(d["digest"].as_str().unwrap().to_string());
        entries.push(d);
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    });
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    digests
}

/// Tars the layout at `dir` into `file` with GNU tar, members named `./…` as `tar -C dir .`
/// writes them.
fn gnu_tar(dir: &Path, file: &Path) {
    let status = Command::new("tar")
        .arg("-cf")
        .arg(file)
        .arg("-C")
        .arg(dir)
        .arg(".")
        .status()
        .expect("running tar");
    assert!(status.success());
}

fn tar_members(file: &Path) -> Vec<String> {
    let out = Command::new("tar")
        .arg("-tf")
        .arg(file)
        .output()
        .expect("running tar");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A work directory with the fixture keys, a QA predicate and a policy for `allow` (a
/// registry allowlist pattern).
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new(allow: &str) -> Work {
        let dir = tempfile::tempdir().unwrap();
        for name in ["p256.key", "p256.pub", "other.pub"] {
            std::fs::copy(fixture(&format!("keys/{name}")), dir.path().join(name)).unwrap();
        }
        std::fs::write(
            dir.path().join("qa.json"),
            r#"{"approved": true, "ticket": "QA-1"}"#,
        )
        .unwrap();
        let policy = format!(
            r#"
registryAllowlist: ["{allow}"]
defaultAdmissionRule:
  evaluationMode: REQUIRE_ATTESTATION
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
  requireAttestationsBy: [built, qa]
attestors:
  - name: built
    publicKeys: [{{file: p256.pub}}]
  - name: qa
    publicKeys: [{{file: p256.pub}}]
    predicateType: {QA_TYPE}
    conditions: ["statement.predicate.approved == true"]
"#
        );
        std::fs::write(dir.path().join("policy.yaml"), policy).unwrap();
        Work { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Run {
        signet(self.path(), args, Some(PASSWORD))
    }

    fn sign(&self, image: &str, extra: &[&str]) -> Run {
        let mut args = vec!["sign", image, "--key", "p256.key"];
        args.extend(extra);
        self.run(&args)
    }

    fn attest(&self, image: &str, extra: &[&str]) -> Run {
        let mut args = vec![
            "attest",
            image,
            "--key",
            "p256.key",
            "--predicate",
            "qa.json",
            "--type",
            QA_TYPE,
        ];
        args.extend(extra);
        self.run(&args)
    }

    fn json(&self, args: &[&str]) -> (Run, Value) {
        let mut args = args.to_vec();
        args.extend(["--output", "json"]);
        let run = self.run(&args);
        let json = serde_json::from_str(&run.stdout).unwrap_or(Value::Null);
        (run, json)
    }
}

fn index_json(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap()
}

#[test]
fn sign_attest_tree_and_verify_an_image_in_a_layout_directory() {
    let work = Work::new("layout.invalid/shop");
    let digests = write_layout(&work.file("shop"), &[("v1", "one"), ("v2", "two")]);
    let (v1, v2) = (&digests[0], &digests[1]);

    let run = work.sign("oci:shop:v1", &[]).expect_code(0);
    assert!(run.stdout.trim().starts_with("sha256:"), "{}", run.stdout);
    assert!(
        run.stderr.contains(&format!(
            "Signed oci:shop:v1@{v1} (as layout.invalid/shop:v1)"
        )),
        "{}",
        run.stderr
    );
    work.attest("oci:shop:v1", &[]).expect_code(0);

    // Both referrers are untagged index.json entries naming their artifact type.
    let index = index_json(&work.file("shop"));
    let referrers: Vec<&Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["artifactType"] == "application/vnd.dev.sigstore.bundle.v0.3+json")
        .collect();
    assert_eq!(referrers.len(), 2, "{index}");
    assert!(
        referrers
            .iter()
            .all(|d| d["annotations"]["org.opencontainers.image.ref.name"].is_null())
    );

    let (run, tree) = work.json(&["tree", "oci:shop:v1"]);
    run.expect_code(0);
    assert_eq!(tree["image"], format!("oci:shop:v1@{v1}"));
    assert_eq!(tree["digest"], v1.as_str());
    let predicates: Vec<&str> = tree["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["predicateType"].as_str().unwrap())
        .collect();
    assert_eq!(predicates.len(), 2, "{tree}");
    assert!(predicates.contains(&QA_TYPE), "{tree}");
    assert!(
        predicates.contains(&"https://sigstore.dev/cosign/sign/v1"),
        "{tree}"
    );
    let text = work.run(&["tree", "oci:shop:v1"]).expect_code(0);
    assert!(
        text.stdout.starts_with(&format!("oci:shop:v1@{v1}\n")),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains(QA_TYPE), "{}", text.stdout);
    let (run, tree) = work.json(&["tree", "oci:shop:v2"]);
    run.expect_code(0);
    assert_eq!(tree["referrers"], json!([]));

    // --key: the right key allows, another key and an unsigned image deny.
    let (run, decision) = work.json(&["verify", "oci:shop:v1", "--key", "p256.pub"]);
    run.expect_code(0);
    assert_eq!(decision["allowed"], true);
    assert_eq!(decision["image"], format!("oci:shop:v1@{v1}"));
    assert_eq!(decision["digest"], v1.as_str());
    let text = work
        .run(&["verify", "oci:shop:v1", "--key", "p256.pub"])
        .expect_code(0);
    assert!(
        text.stdout.starts_with(&format!(
            "ALLOWED oci:shop:v1@{v1}\n  identity: layout.invalid/shop:v1\n"
        )),
        "{}",
        text.stdout
    );
    let (run, decision) = work.json(&["verify", "oci:shop:v1", "--key", "other.pub"]);
    run.expect_code(1);
    assert_eq!(decision["allowed"], false);
    let (run, decision) = work.json(&["verify", "oci:shop:v2", "--key", "p256.pub"]);
    run.expect_code(1);
    assert_eq!(decision["digest"], v2.as_str());
    assert!(
        decision["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("no signatures or attestations found"),
        "{decision}"
    );

    // --policy: both attestors satisfied for v1; v2 is denied naming both.
    let (run, decision) = work.json(&["verify", "oci:shop:v1", "--policy", "policy.yaml"]);
    run.expect_code(0);
    assert_eq!(decision["allowed"], true, "{decision}");
    assert_eq!(decision["rule"], "default");
    assert_eq!(decision["image"], format!("oci:shop:v1@{v1}"));
    let by_digest = format!("oci:shop@{v1}");
    let (run, decision) = work.json(&["verify", &by_digest, "--policy", "policy.yaml"]);
    run.expect_code(0);
    assert_eq!(decision["image"], by_digest.as_str());
    let (run, decision) = work.json(&["verify", "oci:shop:v2", "--policy", "policy.yaml"]);
    run.expect_code(1);
    assert_eq!(decision["attestors"][0]["satisfied"], false);
    assert_eq!(decision["attestors"][1]["satisfied"], false);
    // A policy that does not trust layout.invalid denies before looking at evidence.
    std::fs::write(
        work.file("strict.yaml"),
        std::fs::read_to_string(work.file("policy.yaml"))
            .unwrap()
            .replace("layout.invalid/shop", "registry.example.com/**"),
    )
    .unwrap();
    let (run, decision) = work.json(&["verify", "oci:shop:v1", "--policy", "strict.yaml"]);
    run.expect_code(1);
    assert_eq!(decision["rule"], "registryAllowlist");
    assert!(
        decision["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("layout.invalid/shop is not in a trusted registry"),
        "{decision}"
    );
}

#[test]
fn legacy_format_on_a_layout_named_by_full_references() {
    let work = Work::new("127.0.0.1:5000/**");
    let digests = write_layout(&work.file("export"), &[("127.0.0.1:5000/app:v1", "app")]);
    let digest = &digests[0];
    let image = "oci:export:127.0.0.1:5000/app:v1";

    let run = work.sign(image, &["--format", "legacy"]).expect_code(0);
    assert!(
        run.stderr.contains("(as 127.0.0.1:5000/app:v1)"),
        "{}",
        run.stderr
    );
    work.attest(image, &["--format", "legacy"]).expect_code(0);

    // The legacy tags live next to the image, under its repository name.
    let hex = &digest["sha256:".len()..];
    let names: Vec<String> = index_json(&work.file("export"))["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(str::to_string)
        .collect();
    assert_eq!(
        names,
        [
            "127.0.0.1:5000/app:v1".to_string(),
            format!("127.0.0.1:5000/app:sha256-{hex}.sig"),
            format!("127.0.0.1:5000/app:sha256-{hex}.att"),
        ]
    );

    let (run, tree) = work.json(&["tree", image]);
    run.expect_code(0);
    let tags: Vec<&str> = tree["legacy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag"].as_str().unwrap())
        .collect();
    assert_eq!(
        tags,
        [format!("sha256-{hex}.sig"), format!("sha256-{hex}.att")]
    );

    // The one image is found without a tag, legacy tags notwithstanding.
    let (run, decision) = work.json(&["verify", "oci:export", "--key", "p256.pub"]);
    run.expect_code(0);
    assert_eq!(decision["digest"], digest.as_str());
    assert!(
        decision["accepted"][0]["location"]
            .as_str()
            .unwrap()
            .contains(".sig layer 0"),
        "{decision}"
    );
    let (run, decision) = work.json(&["verify", image, "--policy", "policy.yaml"]);
    run.expect_code(0);
    assert_eq!(decision["allowed"], true, "{decision}");
}

#[test]
fn sign_and_verify_in_an_archive_writes_it_back_and_it_still_opens() {
    let work = Work::new("layout.invalid/**");
    let digests = write_layout(&work.file("src"), &[("v1", "one"), ("v2", "two")]);
    let archive = work.file("Shop App.tar");
    gnu_tar(&work.file("src"), &archive);
    let before = std::fs::read(&archive).unwrap();
    let given = "oci-archive:Shop App.tar:v1";

    let run = work.sign(given, &[]).expect_code(0);
    assert!(
        run.stderr.contains(&format!(
            "Signed {given}@{} (as layout.invalid/shop-app:v1)",
            digests[0]
        )),
        "{}",
        run.stderr
    );
    let after_sign = std::fs::read(&archive).unwrap();
    assert!(after_sign != before, "the archive was not written back");
    work.attest(given, &[]).expect_code(0);
    work.sign(given, &["--format", "legacy"]).expect_code(0);

    // GNU tar reads what signet wrote: the layout files first, then the blobs.
    let members = tar_members(&archive);
    assert_eq!(
        &members[..4],
        ["oci-layout", "index.json", "blobs/", "blobs/sha256/"]
    );
    // 2 × (index + 2 × (manifest, config, layer)) from the source, then two bundles
    // (manifest + bundle blob each, one shared empty config) and the legacy .sig
    // (manifest, config, payload).
    assert_eq!(members.len() - 4, 14 + 5 + 3, "{members:?}");

    let written = std::fs::read(&archive).unwrap();
    let (run, tree) = work.json(&["tree", given]);
    run.expect_code(0);
    assert_eq!(tree["referrers"].as_array().unwrap().len(), 2, "{tree}");
    assert_eq!(tree["legacy"].as_array().unwrap().len(), 1, "{tree}");
    let (run, decision) = work.json(&["verify", given, "--key", "p256.pub"]);
    run.expect_code(0);
    assert_eq!(decision["image"], format!("{given}@{}", digests[0]));
    let (run, decision) = work.json(&["verify", given, "--policy", "policy.yaml"]);
    run.expect_code(0);
    assert_eq!(decision["allowed"], true, "{decision}");
    let (run, _) = work.json(&["verify", "oci-archive:Shop App.tar:v2", "--key", "p256.pub"]);
    run.expect_code(1);
    // Reading does not rewrite the archive.
    assert!(
        std::fs::read(&archive).unwrap() == written,
        "reading rewrote the archive"
    );

    // skopeo, an independent reader, opens the archive signet wrote.
    let out = Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci-archive:{}:v1", archive.display()))
        .output()
        .expect("running skopeo (install it with scripts/setup-tests.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sha256(&out.stdout), digests[0]);
}

#[test]
fn a_tampered_blob_in_an_archive_is_refused_naming_it_and_the_archive_is_untouched() {
    let work = Work::new("layout.invalid/**");
    let src = work.file("src");
    write_layout(&src, &[("v1", "one")]);
    let layer = sha256(b"layer of one for arm64");
    std::fs::write(
        src.join("blobs/sha256").join(&layer["sha256:".len()..]),
        b"layer of one for ARM64",
    )
    .unwrap();
    let archive = work.file("bad.tar");
    gnu_tar(&src, &archive);
    let before = std::fs::read(&archive).unwrap();

    let run = work.sign("oci-archive:bad.tar:v1", &[]).expect_code(2);
    assert!(
        run.stderr.contains(&format!(
            "blob {layer} in bad.tar hashes to {}",
            sha256(b"layer of one for ARM64")
        )),
        "{}",
        run.stderr
    );
    assert!(
        std::fs::read(&archive).unwrap() == before,
        "the archive was changed"
    );
    let run = work
        .run(&["verify", "oci-archive:bad.tar:v1", "--key", "p256.pub"])
        .expect_code(2);
    assert!(
        run.stderr.contains(&format!("blob {layer} in bad.tar")),
        "{}",
        run.stderr
    );
}

#[test]
fn an_archive_member_outside_the_layout_is_refused() {
    let work = Work::new("layout.invalid/**");
    let archive = work.file("evil.tar");
    let mut builder = tar::Builder::new(std::fs::File::create(&archive).unwrap());
    for (name, data) in [
        ("oci-layout", &br#"{"imageLayoutVersion":"1.0.0"}"#[..]),
        ("../evil", &b"gotcha"[..]),
    ] {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        // Written raw: the tar crate itself refuses to write "..".
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.finish().unwrap();
    drop(builder);

    let run = work
        .run(&["verify", "oci-archive:evil.tar", "--key", "p256.pub"])
        .expect_code(2);
    assert!(
        run.stderr
            .contains("refusing archive member \"../evil\": it points outside the layout"),
        "{}",
        run.stderr
    );
    assert!(!work.path().parent().unwrap().join("evil").exists());
}

#[test]
fn missing_layouts_unknown_tags_and_ambiguous_references_are_errors() {
    let work = Work::new("layout.invalid/**");
    write_layout(&work.file("shop"), &[("v1", "one"), ("v2", "two")]);

    let run = work
        .run(&["verify", "oci:nowhere:v1", "--key", "p256.pub"])
        .expect_code(2);
    assert!(
        run.stderr
            .contains("oci:nowhere: no OCI image layout here: no such directory"),
        "{}",
        run.stderr
    );
    let run = work.sign("oci-archive:nowhere.tar:v1", &[]).expect_code(2);
    assert!(
        run.stderr.contains("oci-archive:nowhere.tar: no such file"),
        "{}",
        run.stderr
    );
    assert!(!work.file("nowhere.tar").exists());

    let run = work
        .run(&["verify", "oci:shop:v9", "--key", "p256.pub"])
        .expect_code(2);
    assert!(
        run.stderr.contains("tag v9 in oci:shop not found"),
        "{}",
        run.stderr
    );
    let run = work.run(&["tree", "oci:shop"]).expect_code(2);
    assert!(
        run.stderr
            .contains("oci:shop holds 2 images; name one: oci:shop:v1, oci:shop:v2"),
        "{}",
        run.stderr
    );
    let absent = sha256(b"absent");
    let run = work
        .run(&["tree", &format!("oci:shop@{absent}")])
        .expect_code(2);
    assert!(
        run.stderr
            .contains(&format!("manifest {absent} in oci:shop not found")),
        "{}",
        run.stderr
    );
    let run = work.run(&["tree", "oci:"]).expect_code(2);
    assert!(
        run.stderr.contains("no path after \"oci:\""),
        "{}",
        run.stderr
    );
    // Nothing was written into the layout by failed commands.
    assert_eq!(
        index_json(&work.file("shop"))["manifests"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn a_layout_cannot_name_itself_into_an_exempt_pattern() {
    let work = Work::new("registry.corp.example/**");
    std::fs::write(
        work.file("exempt.yaml"),
        r#"
registryAllowlist: ["registry.corp.example/**"]
admissionWhitelistPatterns:
  - namePattern: registry.corp.example/base/*
defaultAdmissionRule:
  evaluationMode: REQUIRE_ATTESTATION
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
  requireAttestationsBy: [built]
attestors:
  - name: built
    publicKeys: [{file: p256.pub}]
"#,
    )
    .unwrap();
    // Unsigned, and its index.json names it into the exempt repository.
    let claimed = "registry.corp.example/base/x:v1";
    let dir = work.file("base");
    let digest = write_layout(&dir, &[(claimed, "anything")]).remove(0);
    let archive = work.file("base.tar");
    gnu_tar(&dir, &archive);
    let denied = |given: &str| {
        let (run, decision) = work.json(&["verify", given, "--policy", "exempt.yaml"]);
        run.expect_code(1);
        assert_eq!(decision["allowed"], false, "{given}: {decision}");
        assert_eq!(decision["rule"], "registryAllowlist", "{given}: {decision}");
        assert!(
            decision["reasons"][0]
                .as_str()
                .unwrap()
                .starts_with("layout.invalid/base is not in a trusted registry"),
            "{given}: {decision}"
        );
    };
    denied("oci:base");
    denied(&format!("oci:base@{digest}"));
    denied("oci-archive:base.tar");
    let text = work
        .run(&["verify", "oci:base", "--policy", "exempt.yaml"])
        .expect_code(1);
    assert!(
        text.stdout.contains("  identity: layout.invalid/base:v1\n"),
        "{}",
        text.stdout
    );

    // The same through containerd's name annotation, with a bare ref.name.
    let mut index = index_json(&dir);
    index["manifests"][0]["annotations"] = json!({
        "org.opencontainers.image.ref.name": "v1",
        "io.containerd.image.name": claimed,
    });
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    denied("oci:base");
    denied("oci:base:v1");
    denied(&format!("oci:base@{digest}"));

    // A full reference the user types is the name judged, as a registry reference is.
    let given = format!("oci:base:{claimed}");
    let (run, decision) = work.json(&["verify", &given, "--policy", "exempt.yaml"]);
    run.expect_code(0);
    assert_eq!(decision["rule"], "admissionWhitelistPatterns", "{decision}");
}
