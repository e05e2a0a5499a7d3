//! `signet mirror`, `export` and `import` through the real binary, between real registries
//! (distribution 2.8, no referrers API) on different ports, into the fake registry that has the
//! referrers API, and through OCI layout tarballs that Debian's skopeo must be able to read.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::cli::{Run, fixture, signet, signet_bin};
use crate::fake_registry::{FakeRegistry, RequestKind};
use crate::harness::{Options, Registry};
use crate::images::{push_image, push_index};

/// The fixture key's password (fixtures/keys/password.txt).
const PASSWORD: &str = "signet-fixture-password";

/// A temporary directory with the fixture key pair, a policy and an SBOM predicate.
struct Work {
    dir: tempfile::TempDir,
}

const POLICY: &str = r#"
registryAllowlist: ["127.0.0.1:*/**"]
defaultAdmissionRule:
  evaluationMode: REQUIRE_ATTESTATION
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
  requireAttestationsBy: [built-by-ci, sbom]
attestors:
  - name: built-by-ci
    publicKeys: [{file: ci.pub}]
  - name: sbom
    publicKeys: [{file: ci.pub}]
    predicateType: https://spdx.dev/Document
"#;

/// A policy the mirrored image cannot satisfy: nobody holds `other.pub`'s key here.
const DENYING_POLICY: &str = r#"
registryAllowlist: ["127.0.0.1:*/**"]
defaultAdmissionRule:
  evaluationMode: REQUIRE_ATTESTATION
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
  requireAttestationsBy: [built-by-ci, qa]
attestors:
  - name: built-by-ci
    publicKeys: [{file: ci.pub}]
  - name: qa
    publicKeys: [{file: other.pub}]
"#;

impl Work {
    fn new() -> Work {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(fixture("keys/p256.key"), dir.path().join("ci.key")).unwrap();
        std::fs::copy(fixture("keys/p256.pub"), dir.path().join("ci.pub")).unwrap();
        std::fs::copy(fixture("keys/other.pub"), dir.path().join("other.pub")).unwrap();
        std::fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
        std::fs::write(dir.path().join("deny.yaml"), DENYING_POLICY).unwrap();
        std::fs::write(
            dir.path().join("sbom.json"),
            r#"{"spdxVersion":"SPDX-2.3","name":"app","packages":[]}"#,
        )
        .unwrap();
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

    /// Signs `image` (bundle and legacy .sig), attests an SBOM and signs the attestation;
    /// returns the attestation's digest.
    fn sign_everything(&self, image: &str) -> String {
        self.run(&["sign", image, "--key", "ci.key"]).expect_code(0);
        self.run(&["sign", image, "--key", "ci.key", "--format", "legacy"])
            .expect_code(0);
        let attestation = self
            .run(&[
                "attest",
                image,
                "--key",
                "ci.key",
                "--type",
                "spdxjson",
                "--predicate",
                "sbom.json",
            ])
            .expect_code(0)
            .stdout
            .trim()
            .to_string();
        assert!(attestation.starts_with("sha256:"), "{attestation}");
        let repository = image.rsplit_once(':').unwrap().0;
        self.run(&[
            "sign",
            &format!("{repository}@{attestation}"),
            "--key",
            "ci.key",
        ])
        .expect_code(0);
        attestation
    }

    /// `signet tree` text and JSON, with `name` (registry/repository) replaced by `IMAGE`.
    fn tree(&self, image: &str, name: &str) -> (String, serde_json::Value) {
        let text = self.run(&["tree", image]).expect_code(0).stdout;
        let json = self
            .run(&["tree", image, "--output", "json"])
            .expect_code(0)
            .stdout;
        let json = serde_json::from_str(&json.replace(name, "IMAGE")).unwrap();
        (text.replace(name, "IMAGE"), json)
    }

    /// `signet verify --policy` as JSON, with `name` replaced by `IMAGE`, and the exit code.
    fn decision(&self, image: &str, name: &str, policy: &str) -> (i32, serde_json::Value) {
        let run = self.run(&["verify", image, "--policy", policy, "--output", "json"]);
        assert!(run.code == 0 || run.code == 1, "{}", run.all());
        let json = serde_json::from_str(&run.stdout.replace(name, "IMAGE")).unwrap();
        (run.code, json)
    }
}

/// Two platforms with two small layers each.
fn small_platforms(tag: &str) -> Vec<(&'static str, Vec<Vec<u8>>)> {
    ["amd64", "arm64"]
        .into_iter()
        .map(|arch| {
            (
                arch,
                vec![
                    format!("{tag} {arch} layer one").into_bytes(),
                    format!("{tag} {arch} layer two").into_bytes(),
                ],
            )
        })
        .collect()
}

/// The numbers of the summary line `copied N objects (…), skipped M, mounted K, …`.
fn summary(stderr: &str) -> (u64, u64, u64) {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("copied ") && l.contains(" objects ("))
        .unwrap_or_else(|| panic!("no summary line in:\n{stderr}"));
    let number_after = |word: &str| -> u64 {
        let rest = &line[line
            .find(word)
            .unwrap_or_else(|| panic!("{word} in {line}"))
            + word.len()..];
        rest.trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (
        number_after("copied"),
        number_after("skipped"),
        number_after("mounted"),
    )
}

/// The repositories of a registry's catalog.
fn catalog(registry: &Registry) -> Vec<String> {
    let body: serde_json::Value = reqwest::blocking::get(format!("{}/v2/_catalog", registry.url()))
        .unwrap()
        .json()
        .unwrap();
    body["repositories"]
        .as_array()
        .map(|a| a.iter().map(|r| r.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn mirror_copies_a_signed_two_platform_image_and_all_its_referrers_between_registries() {
    let a = Registry::start(Options::plain());
    let b = Registry::start(Options::plain());
    let work = Work::new();
    let (image, index_digest, platforms) =
        push_index(&a.host(), "team/app", "v1", &small_platforms("v1"));
    let attestation = work.sign_everything(&image);
    // A referrer of a platform manifest, not of the index: it must come along too.
    let amd64 = format!("{}/team/app@{}", a.host(), platforms[0]);
    work.run(&["sign", &amd64, "--key", "ci.key"])
        .expect_code(0);

    let source_name = format!("{}/team/app", a.host());
    let mirror_name = format!("{}/mirror/app", b.host());
    let run = work.run(&["mirror", &image, &mirror_name]).expect_code(0);
    // The source's tag is applied at the destination; stdout names what was written.
    assert_eq!(
        run.stdout.trim(),
        format!("{mirror_name}:v1@{index_digest}"),
        "{}",
        run.stderr
    );
    // Not a terminal: one line per object, then the summary.
    assert!(
        run.stderr
            .contains(&format!("copied manifest {index_digest}")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("copied referrer {attestation}")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "copied tag sha256-{}.sig",
            index_digest.trim_start_matches("sha256:")
        )),
        "{}",
        run.stderr
    );
    let (copied, skipped, mounted) = summary(&run.stderr);
    // 2 platforms × (config + 2 layers) + 3 manifests, 4 referrers with their blobs, the
    // legacy .sig manifest and its payload; shared blobs (the empty config) count once.
    assert!(copied >= 14, "{}", run.stderr);
    assert_eq!((skipped, mounted), (0, 0), "{}", run.stderr);

    let mirrored = format!("{mirror_name}:v1");
    assert_eq!(
        work.tree(&image, &source_name),
        work.tree(&mirrored, &mirror_name),
        "the referrers graph differs after the mirror"
    );
    let (text, _) = work.tree(&mirrored, &mirror_name);
    assert!(text.contains(&attestation), "{text}");
    assert!(text.contains(".sig (legacy cosign tag)"), "{text}");
    assert_eq!(
        work.tree(&amd64, &source_name),
        work.tree(&format!("{mirror_name}@{}", platforms[0]), &mirror_name),
        "the platform manifest's referrers differ after the mirror"
    );

    for policy in ["policy.yaml", "deny.yaml"] {
        let (code_a, decision_a) = work.decision(&image, &source_name, policy);
        let (code_b, decision_b) = work.decision(&mirrored, &mirror_name, policy);
        assert_eq!(code_a, code_b, "{decision_a:#}\n{decision_b:#}");
        assert_eq!(decision_a, decision_b);
    }
    assert_eq!(work.decision(&mirrored, &mirror_name, "policy.yaml").0, 0);
    assert_eq!(work.decision(&mirrored, &mirror_name, "deny.yaml").0, 1);

    // Again: everything is there, nothing is copied; --quiet prints only the result.
    let run = work
        .run(&["mirror", &image, &mirror_name, "--tag", "stable", "--quiet"])
        .expect_code(0);
    assert_eq!(run.stderr, "", "--quiet printed something");
    assert_eq!(
        run.stdout.trim(),
        format!("{mirror_name}:v1@{index_digest}")
    );
    let run = work.run(&["mirror", &image, &mirror_name]).expect_code(0);
    let (copied, skipped, _) = summary(&run.stderr);
    assert_eq!(copied, 0, "{}", run.stderr);
    assert!(skipped >= 14, "{}", run.stderr);
    // The extra tag was written.
    let run = work
        .run(&["tree", &format!("{mirror_name}:stable")])
        .expect_code(0);
    assert!(run.stdout.contains(&index_digest), "{}", run.stdout);
}

#[test]
fn mirror_within_one_registry_mounts_blobs_instead_of_copying() {
    let a = Registry::start(Options::plain());
    let work = Work::new();
    let (image, digest, _) = push_index(&a.host(), "team/app", "v1", &small_platforms("m"));
    work.sign_everything(&image);
    let target = format!("{}/other/app", a.host());
    let run = work
        .run(&["mirror", &image, &target, "--tag", "prod"])
        .expect_code(0);
    assert_eq!(run.stdout.trim(), format!("{target}:v1@{digest}"));
    let (_, _, mounted) = summary(&run.stderr);
    // Every layer and config (6) plus the signature blobs were mounted.
    assert!(mounted >= 6, "{}", run.stderr);
    assert!(
        run.stderr.contains("mounted blob sha256:"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("copied blob"), "{}", run.stderr);
    assert_eq!(
        work.tree(&image, &format!("{}/team/app", a.host())),
        work.tree(&format!("{target}:v1"), &target)
    );
    let run = work
        .run(&["tree", &format!("{target}:prod")])
        .expect_code(0);
    assert!(run.stdout.contains(&digest), "{}", run.stdout);
}

#[test]
fn mirror_to_a_registry_with_the_referrers_api_lets_it_index_the_referrers() {
    let a = Registry::start(Options::plain());
    let fake = FakeRegistry::start();
    let work = Work::new();
    let (image, digest, _) = push_index(&a.host(), "team/app", "v1", &small_platforms("api"));
    work.sign_everything(&image);
    let target = format!("{}/team/app", fake.host());
    work.run(&["mirror", &image, &target]).expect_code(0);
    assert!(fake.requests(RequestKind::Referrers) > 0);
    assert_eq!(
        work.tree(&image, &format!("{}/team/app", a.host())),
        work.tree(&format!("{target}:v1"), &target)
    );
    // The registry indexed the referrers itself: no fallback index, no per-referrer tags.
    let tags: serde_json::Value =
        reqwest::blocking::get(format!("{}/v2/team/app/tags/list", fake.url()))
            .unwrap()
            .json()
            .unwrap();
    let tags: Vec<&str> = tags["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let fallback = format!("sha256-{}", digest.trim_start_matches("sha256:"));
    assert!(!tags.contains(&fallback.as_str()), "{tags:?}");
    assert!(
        tags.iter()
            .all(|t| *t == "v1" || *t == format!("{fallback}.sig")),
        "{tags:?}"
    );
    let (code, decision) = work.decision(&format!("{target}:v1"), &target, "policy.yaml");
    assert_eq!(code, 0, "{decision:#}");
}

/// Exports `image` (signed) from a registry to `work/name`.
fn export(work: &Work, image: &str, name: &str) -> PathBuf {
    let tar = work.file(name);
    let run = work
        .run(&["export", image, "--output", tar.to_str().unwrap()])
        .expect_code(0);
    assert!(run.stdout.contains(image), "{}", run.stdout);
    tar
}

#[test]
fn export_then_import_into_a_third_registry_keeps_the_image_verifiable() {
    let a = Registry::start(Options::plain());
    let c = Registry::start(Options::plain());
    let work = Work::new();
    let (image, digest, _) = push_index(&a.host(), "team/app", "v1", &small_platforms("x"));
    work.sign_everything(&image);
    let (other, other_digest) = push_image(&a, "team/tool", "2.0", b"a tool");
    work.run(&["sign", &other, "--key", "ci.key"])
        .expect_code(0);
    let tar = work.file("images.tar");
    work.run(&["export", &image, &other, "--output", tar.to_str().unwrap()])
        .expect_code(0);

    // An independent reader finds both images by their full references.
    for (reference, expected) in [(&image, &digest), (&other, &other_digest)] {
        let out = Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci-archive:{}:{reference}", tar.display()))
            .output()
            .expect("running skopeo (scripts/setup-tests.sh installs it)");
        assert!(
            out.status.success(),
            "skopeo inspect --raw failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let actual = format!("sha256:{}", sha256_hex(&out.stdout));
        assert_eq!(&actual, expected, "skopeo read other bytes for {reference}");
    }
    let out = Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci-archive:{}:{image}", tar.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo inspect failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let to = format!("{}/imported", c.host());
    let run = work
        .run(&["import", tar.to_str().unwrap(), "--to", &to])
        .expect_code(0);
    let imported = format!("{to}/team/app:v1");
    assert!(
        run.stdout.contains(&format!("{imported}@{digest}")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("{to}/team/tool:2.0@{other_digest}")),
        "{}",
        run.stdout
    );
    let (code, decision) = work.decision(&imported, &format!("{to}/team/app"), "policy.yaml");
    assert_eq!(code, 0, "not allowed after import: {decision:#}");
    assert_eq!(
        work.tree(&image, &format!("{}/team/app", a.host())),
        work.tree(&imported, &format!("{to}/team/app"))
    );
    let mut repositories = catalog(&c);
    repositories.sort();
    assert_eq!(repositories, ["imported/team/app", "imported/team/tool"]);
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A copy of the tarball `from` with one byte of blob `digest` flipped.
fn flip_one_byte(from: &Path, to: &Path, digest: &str) {
    let member = format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
    let mut archive = tar::Archive::new(std::fs::File::open(from).unwrap());
    let mut out = tar::Builder::new(std::fs::File::create(to).unwrap());
    let mut flipped = false;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut header = entry.header().clone();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if path.trim_start_matches("./") == member {
            let middle = data.len() / 2;
            data[middle] ^= 0x01;
            flipped = true;
        }
        out.append_data(&mut header, &path, data.as_slice())
            .unwrap();
    }
    out.finish().unwrap();
    assert!(flipped, "no member {member} in the archive");
}

#[test]
fn import_refuses_a_tarball_with_one_flipped_byte_naming_the_blob() {
    let a = Registry::start(Options::plain());
    let c = Registry::start(Options::plain());
    let work = Work::new();
    let (image, index_digest, platforms) =
        push_index(&a.host(), "team/app", "v1", &small_platforms("t"));
    let attestation = work.sign_everything(&image);
    let tar = export(&work, &image, "good.tar");

    // Blobs of every kind: the index, a platform manifest, a layer, a referrer manifest and
    // a referrer's payload.
    let client = reqwest::blocking::Client::new();
    let manifest: serde_json::Value = client
        .get(format!(
            "{}/v2/team/app/manifests/{}",
            a.url(),
            platforms[1]
        ))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .unwrap()
        .json()
        .unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let referrer: serde_json::Value = client
        .get(format!("{}/v2/team/app/manifests/{attestation}", a.url()))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .unwrap()
        .json()
        .unwrap();
    let payload = referrer["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();

    for blob in [&index_digest, &platforms[0], &layer, &attestation, &payload] {
        let bad = work.file("bad.tar");
        flip_one_byte(&tar, &bad, blob);
        let run = work.run(&["import", bad.to_str().unwrap(), "--to", &c.host()]);
        let run = run.expect_code(2);
        assert!(
            run.stderr.contains(blob.as_str()),
            "the error does not name blob {blob}:\n{}",
            run.stderr
        );
        assert!(
            catalog(&c).is_empty(),
            "the registry gained {:?}",
            catalog(&c)
        );
    }
    // The intact tarball imports.
    work.run(&["import", tar.to_str().unwrap(), "--to", &c.host()])
        .expect_code(0);
    assert_eq!(catalog(&c), ["team/app"]);
}

#[test]
fn interrupted_mirror_finishes_on_rerun_and_reports_what_it_skipped() {
    let a = Registry::start(Options::plain());
    let b = Registry::start(Options::plain());
    let work = Work::new();
    // Eight layers of 4 MiB, sent one at a time: the first is copied long before the last.
    let layers = |arch: &str| -> Vec<Vec<u8>> {
        (0..4u8)
            .map(|i| {
                let mut layer = vec![i; 4 << 20];
                layer[..arch.len()].copy_from_slice(arch.as_bytes());
                layer
            })
            .collect()
    };
    let platforms = vec![("amd64", layers("amd64")), ("arm64", layers("arm64"))];
    let (image, digest, _) = push_index(&a.host(), "team/big", "v1", &platforms);
    work.sign_everything(&image);
    let target = format!("{}/team/big", b.host());

    let mut child = Command::new(signet_bin())
        .args(["mirror", "--jobs", "1", &image, &target])
        .current_dir(work.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            panic!("mirror ended before copying anything:\n{seen}");
        }
        seen.push_str(&line);
        if line.starts_with("copied blob") {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL: no clean-up of any kind
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "mirror finished before it was killed:\n{seen}"
    );

    let run = work.run(&["mirror", &image, &target]).expect_code(0);
    let (copied, skipped, _) = summary(&run.stderr);
    assert!(
        skipped >= 1,
        "nothing skipped on the re-run:\n{}",
        run.stderr
    );
    assert!(
        copied >= 1,
        "nothing left to copy on the re-run:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("skipped blob sha256:"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout.trim(), format!("{target}:v1@{digest}"));

    // Complete: a third run finds everything, and the graphs are the same.
    let run = work.run(&["mirror", &image, &target]).expect_code(0);
    assert_eq!(summary(&run.stderr).0, 0, "{}", run.stderr);
    assert_eq!(
        work.tree(&image, &format!("{}/team/big", a.host())),
        work.tree(&format!("{target}:v1"), &target)
    );
}

#[test]
fn mirror_through_an_oci_layout_directory_and_back() {
    let a = Registry::start(Options::plain());
    let b = Registry::start(Options::plain());
    let work = Work::new();
    let (image, digest, _) = push_index(&a.host(), "team/app", "v1", &small_platforms("l"));
    work.sign_everything(&image);
    let dir = work.file("layout");
    let layout = format!("oci:{}", dir.display());
    let run = work.run(&["mirror", &image, &layout]).expect_code(0);
    // Named by full reference, as export names images; printed as the reference written.
    let named = format!("{layout}:{image}");
    assert_eq!(run.stdout.trim(), format!("{named}@{digest}"));
    // Under another name given in full, printed as that name (it used to print
    // `oci:DIR:v1@…`, a reference that names nothing there).
    let renamed = format!("{layout}:x.example/app:v2");
    let run = work.run(&["mirror", &image, &renamed]).expect_code(0);
    assert_eq!(run.stdout.trim(), format!("{renamed}@{digest}"));
    work.run(&["tree", run.stdout.trim()]).expect_code(0);
    let target = format!("{}/back/app:v1", b.host());
    let run = work.run(&["mirror", &named, &target]).expect_code(0);
    assert_eq!(run.stdout.trim(), format!("{target}@{digest}"));
    assert_eq!(
        work.tree(&image, &format!("{}/team/app", a.host())),
        work.tree(&target, &format!("{}/back/app", b.host()))
    );
}

#[test]
fn mirror_errors_name_the_problem() {
    let a = Registry::start(Options::plain());
    let work = Work::new();
    let run = work
        .run(&[
            "mirror",
            &format!("{}/team/none:v1", a.host()),
            &format!("{}/x/y", a.host()),
        ])
        .expect_code(2);
    assert!(run.stderr.contains("team/none"), "{}", run.stderr);
    let run = work
        .run(&[
            "import",
            work.file("missing.tar").to_str().unwrap(),
            "--to",
            &a.host(),
        ])
        .expect_code(2);
    assert!(run.stderr.contains("missing.tar"), "{}", run.stderr);
    let run = work
        .run(&["import", "x.tar", "--to", "not-a-registry"])
        .expect_code(2);
    assert!(run.stderr.contains("registry host"), "{}", run.stderr);
}

/// A source serving other bytes under a blob's digest: the mirror fails naming the blob and
/// the source, and the destination commits nothing.
///
/// This passes against distribution even without the held-back last chunk of a streamed
/// upload, because distribution checks the digest of a `PUT ?digest=` itself and refuses it;
/// the hold-back (for registries that would not) is covered by the unit tests of
/// `signet-registry`'s `transfer` module (`wrong_bytes_never_reach_the_end`,
/// `wrong_sizes_are_refused`), which fail without it.
#[test]
fn mirror_refuses_blobs_that_do_not_match_their_digest_and_commits_none() {
    let fake = FakeRegistry::start();
    let b = Registry::start(Options::plain());
    let work = Work::new();
    let config = fake.seed_blob("team/app", &br#"{"architecture":"amd64","os":"linux"}"#[..]);
    let layer_bytes = vec![b'x'; 3 << 20];
    let layer = fake.seed_blob("team/app", layer_bytes.clone());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 37},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_bytes.len()}],
    });
    fake.seed_manifest(
        "team/app",
        "v1",
        "application/vnd.oci.image.manifest.v1+json",
        serde_json::to_vec(&manifest).unwrap(),
    );
    // The source now serves altered bytes under the right digest headers.
    fake.set_fault_for(
        RequestKind::BlobGet,
        Some(crate::fake_registry::Fault::WrongDigest),
    );
    let run = work
        .run(&[
            "mirror",
            &format!("{}/team/app:v1", fake.host()),
            &format!("{}/team/app", b.host()),
        ])
        .expect_code(2);
    assert!(run.stderr.contains("digest mismatch"), "{}", run.stderr);
    // The bad bytes are blamed on where they came from.
    assert!(
        run.stderr
            .contains(&format!("read from {}/team/app", fake.host())),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&layer) || run.stderr.contains(&config),
        "the error names no blob:\n{}",
        run.stderr
    );
    for blob in [&config, &layer] {
        let status = reqwest::blocking::Client::new()
            .head(format!("{}/v2/team/app/blobs/{blob}", b.url()))
            .send()
            .unwrap()
            .status();
        assert_eq!(status, 404, "blob {blob} was committed");
    }
}

#[test]
fn mirror_streams_into_a_registry_with_tls_and_basic_auth() {
    let a = Registry::start(Options::plain());
    let b = Registry::start(Options::tls().with_basic_auth());
    let work = Work::new();
    // A layer large enough to take many chunks.
    let platforms = vec![("amd64", vec![vec![7u8; 3 << 20], b"small".to_vec()])];
    let (image, digest, _) = push_index(&a.host(), "team/app", "v1", &platforms);
    work.sign_everything(&image);
    let credentials = b.credentials().unwrap();
    let target = format!("{}/team/app", b.host());
    let b_host = b.host();
    let auth = [
        "--registry-username",
        credentials.username.as_str(),
        "--registry-password",
        credentials.password.as_str(),
        // Two registries named: the credentials are for the destination (issue 12).
        "--registry-credentials-host",
        b_host.as_str(),
        "--registry-ca",
        b.ca_pem_path().unwrap().to_str().unwrap(),
    ];
    let mut args = vec!["mirror", image.as_str(), target.as_str()];
    args.extend(auth);
    let run = work.run(&args).expect_code(0);
    assert_eq!(run.stdout.trim(), format!("{target}:v1@{digest}"));
    let (copied, _, _) = summary(&run.stderr);
    assert!(copied >= 10, "{}", run.stderr);
    let mut args = vec!["tree", "--output", "json"];
    let mirrored = format!("{target}:v1");
    args.push(&mirrored);
    args.extend(auth);
    let tree = work.run(&args).expect_code(0).stdout;
    let source = work
        .run(&["tree", "--output", "json", &image])
        .expect_code(0)
        .stdout;
    assert_eq!(
        tree.replace(&target, "IMAGE"),
        source.replace(&format!("{}/team/app", a.host()), "IMAGE")
    );
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A one-line JSON document that is both a valid config and a small "layer".
const CONFIG: &[u8] = br#"{"architecture":"amd64","os":"linux"}"#;

/// The descriptor of `bytes` as `media_type`, with `size` as its size.
fn descriptor(media_type: &str, bytes: &[u8], size: usize) -> serde_json::Value {
    serde_json::json!({
        "mediaType": media_type,
        "digest": format!("sha256:{}", sha256_hex(bytes)),
        "size": size,
    })
}

/// An OCI image manifest over `config` and `layers` (descriptors as given).
fn image_manifest(config: serde_json::Value, layers: Vec<serde_json::Value>) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": layers,
    }))
    .unwrap()
}

/// Writes an OCI layout tarball by hand: `blobs`, and `index.json` naming each manifest of
/// `images` (name, manifest bytes; the manifests are stored as blobs too) in that order.
fn write_archive(path: &Path, blobs: &[&[u8]], images: &[(&str, &[u8])]) {
    let mut out = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut append = |name: &str, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        out.append_data(&mut header, name, data).unwrap();
    };
    append("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    let manifests: Vec<serde_json::Value> = images
        .iter()
        .map(|(name, bytes)| {
            let mut d = descriptor(OCI_MANIFEST, bytes, bytes.len());
            d["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": name});
            d
        })
        .collect();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    append("index.json", &serde_json::to_vec(&index).unwrap());
    let mut written = std::collections::BTreeSet::new();
    for blob in blobs.iter().copied().chain(images.iter().map(|(_, m)| *m)) {
        let hex = sha256_hex(blob);
        if written.insert(hex.clone()) {
            append(&format!("blobs/sha256/{hex}"), blob);
        }
    }
    out.into_inner().unwrap();
}

/// Import checks every blob's size before it writes anything: a blob listed with two sizes in
/// one image (the config says 5 bytes more than the layer with the same digest), and a blob
/// whose only descriptor in its image is wrong while another image of the archive lists it
/// right, are both refused before the registry is touched, naming the blob. (A 1 MiB layer
/// would otherwise be copied first, largest first.)
#[test]
fn import_checks_every_blob_size_before_writing_anything() {
    let c = Registry::start(Options::plain());
    let work = Work::new();
    let shared = format!("sha256:{}", sha256_hex(CONFIG));
    let big = vec![7u8; 1 << 20];
    let config_type = "application/vnd.oci.image.config.v1+json";
    let layer_type = "application/vnd.oci.image.layer.v1.tar";

    // One manifest, two sizes for one digest.
    let evil = image_manifest(
        descriptor(config_type, CONFIG, CONFIG.len() + 5),
        vec![
            descriptor(layer_type, CONFIG, CONFIG.len()),
            descriptor(layer_type, &big, big.len()),
        ],
    );
    let one = work.file("two-sizes.tar");
    write_archive(
        &one,
        &[CONFIG, &big],
        &[("registry.example/evil/app:v1", &evil)],
    );

    // Two images: the first lists the blob 5 bytes too long, the second lists it right (and
    // is the one a check that looks at each digest once would see).
    let wrong = image_manifest(
        descriptor(config_type, CONFIG, CONFIG.len() + 5),
        vec![descriptor(layer_type, &big, big.len())],
    );
    let right = image_manifest(
        descriptor(config_type, CONFIG, CONFIG.len()),
        vec![descriptor(layer_type, b"right", 5)],
    );
    let two = work.file("wrong-size.tar");
    write_archive(
        &two,
        &[CONFIG, &big, b"right"],
        &[
            ("registry.example/evil/app:v1", &wrong),
            ("registry.example/good/app:v1", &right),
        ],
    );

    for tar in [&one, &two] {
        // One blob at a time, largest first: without the checks the 1 MiB layer would be
        // committed before the bad blob's upload failed.
        let tar = tar.to_str().unwrap();
        let run = work
            .run(&["import", tar, "--to", &c.host(), "--jobs", "1"])
            .expect_code(2);
        assert!(
            run.stderr.contains(&shared),
            "the error does not name blob {shared}:\n{}",
            run.stderr
        );
        let sizes = [CONFIG.len(), CONFIG.len() + 5].map(|n| n.to_string());
        assert!(
            sizes.iter().all(|s| run.stderr.contains(s.as_str())),
            "the error does not give both sizes {sizes:?}:\n{}",
            run.stderr
        );
        assert!(
            catalog(&c).is_empty(),
            "the registry gained {:?} from {tar}:\n{}",
            catalog(&c),
            run.stderr
        );
    }
}

/// An archive entry named by repository alone (no tag, no digest) is refused by name rather
/// than imported as `latest`, which would replace the target's `latest`; one named by a digest
/// that is not its own is refused too. An entry named by its own digest is imported by digest
/// and gets no tag at all.
#[test]
fn import_refuses_an_image_named_without_a_tag() {
    let c = Registry::start(Options::plain());
    let work = Work::new();
    let manifest = image_manifest(
        descriptor(
            "application/vnd.oci.image.config.v1+json",
            CONFIG,
            CONFIG.len(),
        ),
        vec![descriptor(
            "application/vnd.oci.image.layer.v1.tar",
            b"layer",
            5,
        )],
    );
    let digest = format!("sha256:{}", sha256_hex(&manifest));
    let other = format!("sha256:{}", sha256_hex(b"another manifest"));
    for (name, expected) in [
        ("registry.example/team/app".to_string(), "no tag"),
        (format!("registry.example/team/app@{other}"), "names digest"),
    ] {
        let tar = work.file("untagged.tar");
        write_archive(&tar, &[CONFIG, b"layer"], &[(&name, &manifest)]);
        let run = work
            .run(&["import", tar.to_str().unwrap(), "--to", &c.host()])
            .expect_code(2);
        assert!(run.stderr.contains(&name), "{}", run.stderr);
        assert!(run.stderr.contains(expected), "{}", run.stderr);
        assert!(
            catalog(&c).is_empty(),
            "the registry gained {:?}",
            catalog(&c)
        );
    }

    let tar = work.file("pinned.tar");
    let name = format!("registry.example/team/app@{digest}");
    write_archive(&tar, &[CONFIG, b"layer"], &[(&name, &manifest)]);
    let run = work
        .run(&["import", tar.to_str().unwrap(), "--to", &c.host()])
        .expect_code(0);
    assert_eq!(run.stdout.trim(), format!("{}/team/app@{digest}", c.host()));
    assert!(has_manifest(&c, &digest), "{}", run.stderr);
    assert!(!has_manifest(&c, "latest"), "{}", run.stderr);
}

/// The URL of a manifest (by tag or digest) in a registry's repository `team/app`.
fn manifest_url(registry: &Registry, reference: &str) -> String {
    format!("{}/v2/team/app/manifests/{reference}", registry.url())
}

/// The fallback referrers tag of `digest`.
fn fallback_tag(digest: &str) -> String {
    format!("sha256-{}", digest.trim_start_matches("sha256:"))
}

/// Whether `registry` has the manifest `reference` in `team/app` (HEAD).
fn has_manifest(registry: &Registry, reference: &str) -> bool {
    let status = reqwest::blocking::Client::new()
        .head(manifest_url(registry, reference))
        .header("Accept", format!("{OCI_MANIFEST}, {OCI_INDEX}"))
        .send()
        .unwrap()
        .status();
    assert!(status == 200 || status == 404, "HEAD {reference}: {status}");
    status == 200
}

/// A referrer listed for the image whose manifest names another subject (anyone who can push
/// signatures can add one to the fallback index) is left out with a warning; the image's real
/// referrers are mirrored all the same.
#[test]
fn mirror_leaves_out_a_listed_referrer_that_names_another_subject() {
    let a = Registry::start(Options::plain());
    let b = Registry::start(Options::plain());
    let work = Work::new();
    let (image, digest) = push_image(&a, "team/app", "v1", b"the app");
    let attestation = work.sign_everything(&image);
    let (other, other_digest) = push_image(&a, "team/app", "v2", b"another app");
    work.run(&["sign", &other, "--key", "ci.key"])
        .expect_code(0);

    // The signature of v2, listed first in v1's fallback index.
    let client = reqwest::blocking::Client::new();
    let get_index = |digest: &str| -> serde_json::Value {
        client
            .get(manifest_url(&a, &fallback_tag(digest)))
            .header("Accept", OCI_INDEX)
            .send()
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .unwrap()
    };
    let foreign = get_index(&other_digest)["manifests"][0].clone();
    let foreign_digest = foreign["digest"].as_str().unwrap().to_string();
    let mut index = get_index(&digest);
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .insert(0, foreign);
    client
        .put(manifest_url(&a, &fallback_tag(&digest)))
        .header("Content-Type", OCI_INDEX)
        .body(serde_json::to_vec(&index).unwrap())
        .send()
        .unwrap()
        .error_for_status()
        .unwrap();

    let target = format!("{}/team/app", b.host());
    let run = work.run(&["mirror", &image, &target]).expect_code(0);
    assert!(
        run.stderr.contains("warning:") && run.stderr.contains(&foreign_digest),
        "no warning about {foreign_digest}:\n{}",
        run.stderr
    );
    assert!(!has_manifest(&b, &foreign_digest), "{}", run.stderr);
    let mirrored = format!("{target}:v1");
    let (text, _) = work.tree(&mirrored, &target);
    assert!(text.contains(&attestation), "{text}");
    assert!(!text.contains(&foreign_digest), "{text}");
    let (code, decision) = work.decision(&mirrored, &target, "policy.yaml");
    assert_eq!(code, 0, "not allowed after the mirror: {decision:#}");
}

/// On a registry without the referrers API, a referrer the destination's fallback index lists
/// but whose manifest is gone (deleted, or collected) is copied again, with its own tag; a
/// referrer whose own tag alone is gone gets it back.
#[test]
fn mirror_copies_again_a_referrer_the_destination_lists_but_lost() {
    let a = Registry::start(Options::plain());
    let b = Registry::start(Options::plain());
    let work = Work::new();
    let (image, digest) = push_image(&a, "team/app", "v1", b"the app");
    let attestation = work.sign_everything(&image);
    let target = format!("{}/team/app", b.host());
    work.run(&["mirror", &image, &target]).expect_code(0);
    let own_tag = format!(
        "{}.{}",
        fallback_tag(&digest),
        &attestation.trim_start_matches("sha256:")[..16]
    );
    assert!(has_manifest(&b, &attestation) && has_manifest(&b, &own_tag));

    // The manifest goes (and its tags with it); the fallback index still lists it.
    let status = reqwest::blocking::Client::new()
        .delete(manifest_url(&b, &attestation))
        .send()
        .unwrap()
        .status();
    assert_eq!(status, 202);
    assert!(!has_manifest(&b, &attestation) && !has_manifest(&b, &own_tag));
    let run = work.run(&["mirror", &image, &target]).expect_code(0);
    assert!(
        run.stderr
            .contains(&format!("copied referrer {attestation}")),
        "{}",
        run.stderr
    );
    assert!(has_manifest(&b, &attestation), "{}", run.stderr);
    assert!(has_manifest(&b, &own_tag), "{}", run.stderr);

    // Only the referrer's own tag goes: it is written again.
    let tag_dir = b
        .storage_dir()
        .join("docker/registry/v2/repositories/team/app/_manifests/tags")
        .join(&own_tag);
    std::fs::remove_dir_all(&tag_dir).unwrap();
    assert!(!has_manifest(&b, &own_tag));
    let run = work.run(&["mirror", &image, &target]).expect_code(0);
    assert!(has_manifest(&b, &own_tag), "{}", run.stderr);
    let (code, decision) = work.decision(&format!("{target}:v1"), &target, "policy.yaml");
    assert_eq!(code, 0, "{decision:#}");
}

/// The digest a tag of `team/app` points at in `registry`, if it exists.
fn tag_digest(registry: &Registry, tag: &str) -> Option<String> {
    let response = reqwest::blocking::Client::new()
        .head(manifest_url(registry, tag))
        .header("Accept", format!("{OCI_MANIFEST}, {OCI_INDEX}"))
        .send()
        .unwrap();
    if response.status() == 404 {
        return None;
    }
    assert_eq!(response.status(), 200, "HEAD {tag}");
    let digest = response.headers()["Docker-Content-Digest"]
        .to_str()
        .unwrap();
    Some(digest.to_string())
}

/// Issue 12, finding 5: `mirror` replaced the destination's legacy `.sig` with the source's,
/// dropping the signature the site had made there with its own key, without a word. The
/// layers are united (the source's first), the progress output says what was merged, both
/// keys verify at the destination, and a re-run writes nothing.
#[test]
fn mirror_replaces_the_destinations_legacy_sig_tag() {
    let a = Registry::start(Options::plain());
    let b = Registry::start(Options::plain());
    let work = Work::new();
    std::fs::copy(fixture("keys/other.key"), work.file("other.key")).unwrap();
    let (image, digest) = push_image(&a, "team/app", "v1", b"the app");
    let (site, site_digest) = push_image(&b, "team/app", "v1", b"the app");
    assert_eq!(digest, site_digest);
    work.run(&["sign", &image, "--key", "ci.key", "--format", "legacy"])
        .expect_code(0);
    work.run(&["sign", &site, "--key", "other.key", "--format", "legacy"])
        .expect_code(0);
    let verify = |key: &str| work.run(&["verify", &site, "--key", key]);
    verify("other.pub").expect_code(0);
    verify("ci.pub").expect_code(1);

    let target = format!("{}/team/app", b.host());
    let run = work.run(&["mirror", &image, &target]).expect_code(0);
    for key in ["ci.pub", "other.pub"] {
        let verified = verify(key);
        assert_eq!(
            verified.code,
            0,
            "{key} does not verify after the mirror:\n{}\nmirror:\n{}",
            verified.all(),
            run.stderr
        );
    }
    let sig = format!("{}.sig", fallback_tag(&digest));
    assert!(
        run.stderr
            .contains(&format!("merged 1 destination layer into {sig}")),
        "{}",
        run.stderr
    );
    let (_, tree) = work.tree(&site, &target);
    let layers = &tree["legacy"][0]["layers"];
    assert_eq!(layers.as_array().map(Vec::len), Some(2), "{tree:#}");

    // Again: nothing to copy, nothing merged, the tag unchanged.
    let merged = tag_digest(&b, &sig).unwrap();
    let run = work.run(&["mirror", &image, &target]).expect_code(0);
    assert!(!run.stderr.contains("merged"), "{}", run.stderr);
    assert_eq!(summary(&run.stderr).0, 0, "{}", run.stderr);
    assert!(run.stderr.contains("0 tags written"), "{}", run.stderr);
    assert_eq!(tag_digest(&b, &sig), Some(merged));
}

/// Issue 12, finding 8: `export` refused a digest-pinned image ("has no tag"). The archive
/// names it by its reference with the digest (`registry/repository@sha256:…`), which skopeo
/// and signet's `oci-archive:` reader both take; `import` pushes it by digest with its
/// referrers and legacy tags, makes no tag for it, and prints the digest reference. A tarball
/// with one byte of a blob changed is still refused whole, with nothing written.
#[test]
fn export_refuses_digest_pinned_images() {
    let a = Registry::start(Options::plain());
    let c = Registry::start(Options::plain());
    let work = Work::new();
    std::fs::copy(fixture("keys/other.key"), work.file("other.key")).unwrap();
    let layer = b"the pinned app";
    let (_, digest) = push_image(&a, "team/app", "v1", layer);
    let pinned = format!("{}/team/app@{digest}", a.host());
    work.run(&["sign", &pinned, "--key", "ci.key"])
        .expect_code(0);
    work.run(&["sign", &pinned, "--key", "other.key", "--format", "legacy"])
        .expect_code(0);

    let tar = work.file("pinned.tar");
    let tar_str = tar.to_str().unwrap();
    let run = work
        .run(&["export", &pinned, "--output", tar_str])
        .expect_code(0);
    assert_eq!(run.stdout.trim(), pinned);

    // skopeo finds the image by that name, and so does signet, with its evidence.
    let in_archive = format!("oci-archive:{tar_str}:{pinned}");
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", &in_archive])
        .output()
        .expect("running skopeo (scripts/setup-tests.sh installs it)");
    assert!(
        out.status.success(),
        "skopeo inspect --raw {in_archive} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(format!("sha256:{}", sha256_hex(&out.stdout)), digest);
    for key in ["ci.pub", "other.pub"] {
        work.run(&["verify", &in_archive, "--key", key])
            .expect_code(0);
    }

    // One byte changed in the layer, or in the image manifest: refused, nothing written.
    let to = format!("{}/site", c.host());
    for blob in [format!("sha256:{}", sha256_hex(layer)), digest.clone()] {
        let bad = work.file("bad.tar");
        flip_one_byte(&tar, &bad, &blob);
        let run = work
            .run(&["import", bad.to_str().unwrap(), "--to", &to])
            .expect_code(2);
        assert!(run.stderr.contains(&blob), "{}", run.stderr);
        assert!(
            catalog(&c).is_empty(),
            "the registry gained {:?}",
            catalog(&c)
        );
    }

    let run = work.run(&["import", tar_str, "--to", &to]).expect_code(0);
    let imported = format!("{to}/team/app@{digest}");
    assert_eq!(run.stdout.trim(), imported);
    for key in ["ci.pub", "other.pub"] {
        let run = work.run(&["verify", &imported, "--key", key]);
        assert_eq!(run.code, 0, "{key} does not verify:\n{}", run.all());
    }
    // No tag was made up for the image: only signature tags are there.
    let tags: serde_json::Value =
        reqwest::blocking::get(format!("{}/v2/site/team/app/tags/list", c.url()))
            .unwrap()
            .json()
            .unwrap();
    let tags = tags["tags"].as_array().unwrap();
    assert!(
        tags.iter()
            .all(|t| t.as_str().unwrap().starts_with(&fallback_tag(&digest))),
        "{tags:?}"
    );
    assert!(
        tags.iter()
            .any(|t| t.as_str() == Some(&format!("{}.sig", fallback_tag(&digest)))),
        "{tags:?}"
    );
}

/// Issue 19, finding 4: an archive with `a.example/shop/app:v1` (signed, say) and
/// `b.example/shop/app:v1` imported under one prefix would write one tag twice, the last one
/// winning; it is refused whole, naming both, before anything is written.
#[test]
fn import_refuses_two_entries_that_would_write_one_tag() {
    let c = Registry::start(Options::plain());
    let work = Work::new();
    let manifest = |layer: &[u8]| {
        image_manifest(
            descriptor(
                "application/vnd.oci.image.config.v1+json",
                CONFIG,
                CONFIG.len(),
            ),
            vec![descriptor(
                "application/vnd.oci.image.layer.v1.tar",
                layer,
                layer.len(),
            )],
        )
    };
    let (signed, unsigned) = (manifest(b"signed"), manifest(b"unsigned"));
    let tar = work.file("two.tar");
    write_archive(
        &tar,
        &[CONFIG, b"signed", b"unsigned"],
        &[
            ("a.example/shop/app:v1", &signed),
            ("b.example/shop/app:v1", &unsigned),
        ],
    );
    let to = format!("{}/site", c.host());
    let run = work
        .run(&["import", tar.to_str().unwrap(), "--to", &to])
        .expect_code(2);
    for name in ["a.example/shop/app:v1", "b.example/shop/app:v1"] {
        assert!(run.stderr.contains(name), "{}", run.stderr);
    }
    assert!(run.stderr.contains("site/shop/app:v1"), "{}", run.stderr);
    assert!(
        catalog(&c).is_empty(),
        "the registry gained {:?}",
        catalog(&c)
    );
}

/// Issue 19, finding 5: `export --output` onto an existing archive never merges into it: it is
/// refused, and with `--force` replaced whole (a planted entry does not ride along).
#[test]
fn export_refuses_an_existing_archive_and_replaces_it_whole_with_force() {
    let a = Registry::start(Options::plain());
    let work = Work::new();
    let (first, _) = push_image(&a, "team/first", "1", b"first");
    let (second, _) = push_image(&a, "team/second", "1", b"second");
    let tar = export(&work, &first, "out.tar");
    let before = std::fs::read(&tar).unwrap();
    let run = work
        .run(&["export", &second, "--output", tar.to_str().unwrap()])
        .expect_code(2);
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    assert_eq!(std::fs::read(&tar).unwrap(), before, "the archive changed");

    work.run(&[
        "export",
        &second,
        "--output",
        tar.to_str().unwrap(),
        "--force",
    ])
    .expect_code(0);
    let index = Command::new("tar")
        .args(["-xOf"])
        .arg(&tar)
        .arg("index.json")
        .output()
        .unwrap();
    let index = String::from_utf8_lossy(&index.stdout);
    assert!(index.contains("team/second"), "{index}");
    assert!(
        !index.contains("team/first"),
        "the old entry rode along: {index}"
    );
    // No scratch files are left beside it.
    let leftovers: Vec<_> = std::fs::read_dir(tar.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".signet-export")
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Issue 19, finding 3: the unpacked copy of an `oci-archive:` is private (0700), and SIGTERM
/// or SIGINT mid-run removes it (it used to stay behind, 1.4 GB in the issue's case).
#[test]
fn archive_scratch_is_private_and_removed_when_interrupted() {
    use std::os::unix::fs::PermissionsExt as _;
    let work = Work::new();
    let manifest = image_manifest(
        descriptor(
            "application/vnd.oci.image.config.v1+json",
            CONFIG,
            CONFIG.len(),
        ),
        vec![descriptor(
            "application/vnd.oci.image.layer.v1.tar",
            b"layer",
            5,
        )],
    );
    let tar = work.file("app.tar");
    write_archive(
        &tar,
        &[CONFIG, b"layer"],
        &[("registry.example/team/app:v1", &manifest)],
    );
    // A registry that accepts connections and never answers: the import waits on it, with
    // the archive unpacked.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let to = silent.local_addr().unwrap().to_string();
    let tmp = work.file("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let scratch = |tmp: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(tmp)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("signet-layout-")
            })
            .collect()
    };
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let mut child = Command::new(signet_bin())
            .args(["import", tar.to_str().unwrap(), "--to", &to])
            .args(["--registry-timeout", "60"])
            .env("TMPDIR", &tmp)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        let dirs = loop {
            let dirs = scratch(&tmp);
            if !dirs.is_empty() {
                break dirs;
            }
            assert!(
                started.elapsed().as_secs() < 20,
                "the archive was never unpacked"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let mode = std::fs::metadata(&dirs[0]).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "the unpacked archive is readable by others");
        // Let it reach the registry (and block there), then interrupt it.
        std::thread::sleep(std::time::Duration::from_millis(500));
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = child.wait().unwrap();
        assert_eq!(exit.code(), Some(code), "SIG{signal}");
        assert!(
            scratch(&tmp).is_empty(),
            "SIG{signal} left {:?}",
            scratch(&tmp)
        );
    }
}
