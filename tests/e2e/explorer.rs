//! The decision explorer (`signet serve --ui-listen`, issue 17): its pages over plain HTTP, and
//! the same pages loaded by headless Chromium (Debian's `chromium`, installed by
//! scripts/setup-tests.sh, driven through scripts/lib/headless-chromium.sh with no network).
//!
//! The daemon admits and denies real AdmissionReviews against the real registry first; the
//! expected reasons come from its audit log, an independent record of the same decisions.

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::cli::repo_root;
use crate::serve::{Daemon, World, fixture, free_port, response, with_images, world};

/// An image "name" a hostile pod author could write: never markup on the page.
const SCRIPT: &str = "<script>alert(1)</script>";

struct Explorer {
    w: World,
    daemon: Daemon,
    ui: String,
    http: reqwest::blocking::Client,
}

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

fn start() -> Explorer {
    let w = world();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let daemon = Daemon::start(w.dir.path(), &w.policy, &["--ui-listen", &listen]);
    Explorer {
        ui: format!("http://127.0.0.1:{port}"),
        http: reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        w,
        daemon,
    }
}

impl Explorer {
    fn get(&self, path_and_query: &str) -> Page {
        let r = self
            .http
            .get(format!("{}{path_and_query}", self.ui))
            .send()
            .unwrap();
        Page {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.text().unwrap(),
        }
    }

    fn explain(&self, image: &str) -> Page {
        let query: String = url_encode(image);
        self.get(&format!("/explain?image={query}"))
    }

    /// Sends a review of a pod `name` in `namespace` running `image` to the validating webhook.
    fn admit(&self, name: &str, namespace: &str, image: &str) -> serde_json::Value {
        let mut review = with_images(fixture("pod.json"), image);
        review["request"]["uid"] = json!(format!("uid-{name}"));
        review["request"]["namespace"] = json!(namespace);
        review["request"]["object"]["metadata"]["name"] = json!(name);
        review["request"]["object"]["metadata"]["namespace"] = json!(namespace);
        self.daemon.post("/admission/validate", &review)
    }

    /// The reasons the audit log gives for the image of request `uid`.
    fn audited_reasons(&self, uid: &str) -> Vec<String> {
        let log = std::fs::read_to_string(self.w.dir.path().join("audit.jsonl")).unwrap();
        let event: serde_json::Value = log
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|e| e["uid"] == uid)
            .unwrap_or_else(|| panic!("no audit event for {uid}:\n{log}"));
        event["results"][0]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect()
    }
}

/// `s` as askama writes it into HTML (numeric character references).
fn escaped(s: &str) -> String {
    s.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// `s` as the HTML serializer of a browser writes text (`--dump-dom`).
fn dom_escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\u{a0}', "&nbsp;")
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The table row of the decisions page that holds `needle`.
fn row_with<'a>(body: &'a str, needle: &str) -> &'a str {
    body.split("<tr class=\"decision")
        .skip(1)
        .find(|row| row.contains(needle))
        .unwrap_or_else(|| panic!("no decision row with {needle:?} in:\n{body}"))
}

/// Makes the decisions the pages are checked against: an admitted pod, a denied one, and one
/// whose image "name" is markup. Returns the denied pod's reasons from the audit log.
fn decide(x: &Explorer) -> Vec<String> {
    let allowed = x.admit("good", "shop", &x.w.signed);
    assert_eq!(response(&allowed)["allowed"], true, "{allowed}");
    let denied = x.admit("bad", "shop", &x.w.unsigned);
    assert_eq!(response(&denied)["allowed"], false, "{denied}");
    let script = x.admit("xss", "other", SCRIPT);
    assert_eq!(response(&script)["allowed"], false, "{script}");
    let reasons = x.audited_reasons("uid-bad");
    assert!(!reasons.is_empty());
    reasons
}

#[test]
fn explorer_lists_decisions_explains_images_and_escapes_names() {
    let x = start();
    let reasons = decide(&x);

    // The decisions page: the denial, with its reasons, in the row of its request.
    let page = x.get("/");
    assert_eq!(page.status, 200, "{}", page.body);
    let bad = row_with(&page.body, "uid-bad");
    assert!(bad.starts_with(" denied\""), "{bad}");
    assert!(bad.contains("Pod/bad"), "{bad}");
    assert!(bad.contains(&escaped(&x.w.unsigned)), "{bad}");
    for reason in &reasons {
        assert!(
            bad.contains(&escaped(reason)),
            "{reason:?} missing from {bad}"
        );
    }
    let good = row_with(&page.body, "uid-good");
    assert!(good.starts_with(" allowed\""), "{good}");
    // The markup "image" is text, never an element.
    assert!(!page.body.contains(SCRIPT), "{}", page.body);
    assert!(page.body.contains(&escaped(SCRIPT)), "{}", page.body);
    assert!(!page.body.to_ascii_lowercase().contains("<script"));

    // Strict headers on every page, error pages included.
    for path in ["/", "/policy", "/explain", "/no-such-page"] {
        let p = x.get(path);
        let header = |name: &str| {
            p.headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_else(|| panic!("{path}: no {name} header"))
        };
        let csp = header("content-security-policy");
        assert!(csp.starts_with("default-src 'none'"), "{path}: {csp}");
        assert!(!csp.contains("script-src"), "{path}: {csp}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        assert!(!p.body.to_ascii_lowercase().contains("<script"), "{path}");
    }
    assert_eq!(x.get("/no-such-page").status, 404);

    // Filters: by outcome and by namespace.
    let denied = x.get("/?outcome=denied").body;
    assert!(
        denied.contains("uid-bad") && !denied.contains("uid-good"),
        "{denied}"
    );
    let allowed = x.get("/?outcome=allowed").body;
    assert!(
        allowed.contains("uid-good") && !allowed.contains("uid-bad"),
        "{allowed}"
    );
    let other = x.get("/?namespace=other").body;
    assert!(
        other.contains("uid-xss") && !other.contains("uid-bad"),
        "{other}"
    );
    let both = x.get("/?outcome=denied&namespace=shop").body;
    assert!(
        both.contains("uid-bad") && !both.contains("uid-xss"),
        "{both}"
    );
    let unknown = x.get(&format!("/?outcome={}", url_encode(SCRIPT)));
    assert_eq!(unknown.status, 400, "{}", unknown.body);
    assert!(!unknown.body.contains(SCRIPT), "{}", unknown.body);

    // Explain: the signed image is allowed, by both attestors, with its evidence and tree.
    let signed = x.explain(&x.w.signed);
    assert_eq!(signed.status, 200, "{}", signed.body);
    assert!(
        signed.body.contains("class=\"verdict allowed\""),
        "{}",
        signed.body
    );
    for attestor in ["build", "qa"] {
        assert!(
            signed
                .body
                .contains(&format!("accepted</span> by {attestor}: verified with key")),
            "{attestor}: {}",
            signed.body
        );
    }
    assert!(signed.body.contains("Referrers tree"), "{}", signed.body);
    assert!(signed.body.contains("accepted by build"), "{}", signed.body);
    // The unsigned one is denied with the reasons admission gave.
    let unsigned = x.explain(&x.w.unsigned);
    assert_eq!(unsigned.status, 200, "{}", unsigned.body);
    assert!(
        unsigned.body.contains("class=\"verdict denied\""),
        "{}",
        unsigned.body
    );
    for reason in &reasons {
        assert!(
            unsigned.body.contains(&escaped(reason)),
            "{reason:?}: {}",
            unsigned.body
        );
    }
    // A tag is resolved, and the page says admission would want it pinned.
    let tagged = x.explain(&x.w.signed_tag);
    assert!(
        tagged.body.contains("class=\"verdict allowed\""),
        "{}",
        tagged.body
    );
    assert!(tagged.body.contains("names a tag"), "{}", tagged.body);
    // Markup is refused as an image reference, and shown as text.
    let script = x.explain(SCRIPT);
    assert_eq!(script.status, 400, "{}", script.body);
    assert!(
        script.body.contains("not a valid image reference"),
        "{}",
        script.body
    );
    assert!(!script.body.contains(SCRIPT), "{}", script.body);
    assert!(script.body.contains(&escaped(SCRIPT)), "{}", script.body);
    // Input is bounded.
    let long = x.explain(&format!("{}/a:{}", x.w.registry.host(), "b".repeat(600)));
    assert_eq!(long.status, 400, "{}", long.body);
    assert!(long.body.contains("too long"), "{}", long.body);
    // No SSRF: a host outside the registryAllowlist is denied by the policy, before any
    // request is made (the metadata address is never contacted).
    let metadata = x.explain(
        "169.254.169.254/latest/app@sha256:0000000000000000000000000000000000000000000000000000000000000000",
    );
    assert!(
        metadata.body.contains("class=\"verdict denied\"")
            && metadata.body.contains("registryAllowlist")
            && metadata.body.contains("decided without the registry"),
        "{}",
        metadata.body
    );
    // Explanations are not decisions: nothing was added to the list.
    assert!(!x.get("/").body.contains("169.254.169.254"));

    // The policy page: rules per scope and attestors by key id, no key material.
    let policy = x.get("/policy");
    assert_eq!(policy.status, 200, "{}", policy.body);
    assert!(
        policy
            .body
            .contains("REQUIRE_ATTESTATION (ENFORCED_BLOCK_AND_AUDIT_LOG) by build, qa"),
        "{}",
        policy.body
    );
    assert!(
        policy
            .body
            .contains("REQUIRE_ATTESTATION (DRYRUN_AUDIT_LOG_ONLY) by build, qa"),
        "{}",
        policy.body
    );
    for name in ["build", "qa"] {
        let pem = std::fs::read_to_string(x.w.dir.path().join(format!("{name}.pub"))).unwrap();
        let key = signet_core::keys::PublicKey::from_pem(&pem).unwrap();
        assert!(
            policy.body.contains(&key.id().to_string()),
            "{name}: {}",
            policy.body
        );
    }
    assert!(!policy.body.contains("BEGIN PUBLIC KEY"), "{}", policy.body);

    // DNS rebinding: a request for another host name is refused.
    let rebound = x
        .http
        .get(format!("{}/", x.ui))
        .header("Host", "evil.example")
        .send()
        .unwrap();
    assert_eq!(rebound.status().as_u16(), 421);
    // Read-only: no other method.
    let post = x.http.post(format!("{}/explain", x.ui)).send().unwrap();
    assert_eq!(post.status().as_u16(), 405);
}

/// Runs scripts/lib/headless-chromium.sh; fails the test, saying how to install it, when there
/// is no Chromium.
fn chromium(args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/lib/headless-chromium.sh"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(
        out.status.code(),
        Some(3),
        "Chromium is missing: the explorer's browser test needs Debian's chromium; install it \
         with `bash scripts/setup-tests.sh`\n{stderr}"
    );
    assert!(out.status.success(), "chromium {args:?} failed:\n{stderr}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn explorer_in_headless_chromium_shows_the_denial_the_verdicts_and_escaped_names() {
    let x = start();
    let reasons = decide(&x);

    let dom = chromium(&["dump-dom", &format!("{}/", x.ui)]);
    assert!(dom.contains("Recent decisions"), "{dom}");
    let bad = dom
        .split("<tr class=\"decision")
        .find(|row| row.contains("uid-bad"))
        .unwrap_or_else(|| panic!("no row for the denial in:\n{dom}"));
    assert!(bad.contains("denied"), "{bad}");
    for reason in &reasons {
        assert!(
            bad.contains(&dom_escaped(reason)),
            "{reason:?} missing from {bad}"
        );
    }
    // The markup name is a text node: serialised escaped, and no script element holds it.
    assert!(dom.contains(&dom_escaped(SCRIPT)), "{dom}");
    assert!(!dom.contains(SCRIPT), "{dom}");
    assert!(!dom.to_ascii_lowercase().contains("<script"), "{dom}");

    for (image, verdict) in [(&x.w.signed, "ALLOWED"), (&x.w.unsigned, "DENIED")] {
        let url = format!("{}/explain?image={}", x.ui, url_encode(image));
        let dom = chromium(&["dump-dom", &url]);
        let section = dom
            .split("id=\"verdict\"")
            .nth(1)
            .unwrap_or_else(|| panic!("{image}: no verdict in:\n{dom}"));
        let shown = section
            .split("<h2>")
            .nth(1)
            .and_then(|s| s.split("</h2>").next())
            .unwrap();
        assert_eq!(shown, verdict, "{image}");
        // The form was filled in with the image, as typed.
        assert!(dom.contains(&format!("value=\"{image}\"")), "{dom}");
    }
    let url = format!("{}/explain?image={}", x.ui, url_encode(SCRIPT));
    let dom = chromium(&["dump-dom", &url]);
    assert!(dom.contains("not a valid image reference"), "{dom}");
    assert!(!dom.to_ascii_lowercase().contains("<script"), "{dom}");

    // A screenshot can be taken (scripts/screenshots.sh makes the ones in docs/).
    let shot = x.w.dir.path().join("decisions.png");
    chromium(&["screenshot", shot.to_str().unwrap(), &format!("{}/", x.ui)]);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{}",
        png.len()
    );
}
