//! Certificate trust from the command line (`verify`/`verify-blob --certificate-identity …`,
//! `--ca-roots …`) and `signet trusted-root show`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use signet_core::keyless::{
    CertificateTrust, IdentityMatcher, KeylessTrust, MAX_TRUSTED_ROOT_BYTES, StringMatch,
    TrustedRoot,
};
use signet_core::timestamp::ValidFor;

use crate::cli::CertificateIdentityArgs;

/// The trust the options describe, and a name for it in decisions.
pub fn trust(args: &CertificateIdentityArgs) -> anyhow::Result<(KeylessTrust, String)> {
    let subject = match (
        &args.certificate_identity,
        &args.certificate_identity_regexp,
    ) {
        (Some(id), None) => StringMatch::exact(id.as_str()),
        (None, Some(re)) => {
            StringMatch::regex(re).with_context(|| "--certificate-identity-regexp".to_string())?
        }
        _ => bail!(
            "give the identity to accept: --certificate-identity ID or \
             --certificate-identity-regexp '^…$'"
        ),
    };
    let issuer = match (
        &args.certificate_oidc_issuer,
        &args.certificate_oidc_issuer_regexp,
    ) {
        (Some(issuer), None) => Some(StringMatch::exact(issuer.as_str())),
        (None, Some(re)) => Some(
            StringMatch::regex(re)
                .with_context(|| "--certificate-oidc-issuer-regexp".to_string())?,
        ),
        _ => None,
    };
    let claims = args.claims();
    let mut name = match &issuer {
        Some(issuer) => format!("certificate identity {subject} issued by {issuer}"),
        None => format!("certificate identity {subject}"),
    };
    for (claim, value) in &claims {
        name.push_str(&format!(" with {claim} \"{value}\""));
    }
    // The claims are checked on any certificate: Fulcio's or one from --ca-roots (a private
    // Fulcio); a certificate without a claim required is refused.
    let with_claims = |matcher: IdentityMatcher| -> anyhow::Result<IdentityMatcher> {
        claims.iter().try_fold(matcher, |m, (claim, value)| {
            m.with_claim(claim, StringMatch::exact(value.as_str()))
                .with_context(|| format!("--certificate-extension {claim}"))
        })
    };
    if let Some(roots) = &args.ca_roots {
        let read = |path: &Path| {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
        };
        let intermediates = match &args.ca_intermediates {
            Some(path) => read(path)?,
            None => String::new(),
        };
        let certificates = CertificateTrust::from_pems(&read(roots)?, &intermediates)
            .with_context(|| format!("--ca-roots {}", roots.display()))?;
        let matcher = with_claims(match issuer {
            Some(issuer) => IdentityMatcher::new(subject, issuer),
            None => IdentityMatcher::subject_only(subject),
        })?;
        return Ok((KeylessTrust::own_pki(certificates, vec![matcher]), name));
    }
    let Some(issuer) = issuer else {
        bail!(
            "keyless verification needs the OIDC issuer: --certificate-oidc-issuer ISSUER or \
             --certificate-oidc-issuer-regexp '^…$' (with --ca-roots it is optional)"
        );
    };
    let root = load_root(args.trusted_root.as_deref())?;
    let matcher = with_claims(IdentityMatcher::new(subject, issuer))?;
    Ok((KeylessTrust::keyless(&root, vec![matcher]), name))
}

/// The trusted root in `path`, or the public-good one signet ships.
pub fn load_root(path: Option<&Path>) -> anyhow::Result<TrustedRoot> {
    match path {
        None => TrustedRoot::public_good().context("the shipped public-good trusted root"),
        Some(path) => {
            let meta =
                std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
            if meta.len() > MAX_TRUSTED_ROOT_BYTES as u64 {
                bail!(
                    "{}: {} bytes, more than the limit of {MAX_TRUSTED_ROOT_BYTES}",
                    path.display(),
                    meta.len()
                );
            }
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            TrustedRoot::from_json(&bytes)
                .with_context(|| format!("trusted root {}", path.display()))
        }
    }
}

fn window(v: ValidFor) -> String {
    let show = |t: Option<std::time::SystemTime>| {
        t.map_or_else(
            || "…".to_string(),
            |t| humantime::format_rfc3339_seconds(t).to_string(),
        )
    };
    format!("valid {} to {}", show(v.start), show(v.end))
}

/// `signet trusted-root show [FILE]`.
pub fn show(path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let root = load_root(path)?;
    let mut out = String::new();
    match path {
        Some(path) => out.push_str(&format!("trusted root {}\n", path.display())),
        None => out.push_str(
            "trusted root: Sigstore public good, shipped with signet \
             (sigstore crate 0.15.0 tests/data/sigstore_trusted_root.json)\n",
        ),
    }
    out.push_str(&format!(
        "certificate authorities: {}\n",
        root.certificate_authorities().len()
    ));
    for ca in root.certificate_authorities() {
        out.push_str(&format!(
            "  {}{}: {}\n",
            ca.name(),
            ca.uri().map(|u| format!(" ({u})")).unwrap_or_default(),
            window(ca.valid_for())
        ));
        for cert in ca.certificates() {
            out.push_str(&format!(
                "    {} (not before {}, not after {})\n",
                cert.subject,
                humantime::format_rfc3339_seconds(cert.not_before),
                humantime::format_rfc3339_seconds(cert.not_after)
            ));
        }
    }
    for (title, logs) in [
        ("transparency logs", root.tlogs()),
        ("CT logs", root.ctlogs()),
    ] {
        out.push_str(&format!("{title}: {}\n", logs.len()));
        for log in logs {
            out.push_str(&format!(
                "  {}: key {} ({:?}), log id {}, {}\n",
                log.name(),
                log.key().id().short(),
                log.key().algorithm(),
                hex::encode(log.log_id()),
                window(log.valid_for())
            ));
        }
    }
    out.push_str(&format!(
        "timestamp authorities: {}\n",
        root.timestamp_authorities().len()
    ));
    for tsa in root.timestamp_authorities() {
        out.push_str(&format!(
            "  {}{}: {}\n",
            tsa.name(),
            tsa.uri().map(|u| format!(" ({u})")).unwrap_or_default(),
            window(tsa.valid_for())
        ));
    }
    crate::output::stdout(&out);
    Ok(ExitCode::SUCCESS)
}
