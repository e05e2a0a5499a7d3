//! `signet audit`: the admission decision again, for what already runs (issue 15's continuous
//! validation). The pods come from a file or the API server (`signet_server::list_pods`); the
//! decisions from the engine the daemon's continuous validation uses
//! (`signet_verify::audit`). This module only prints.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use signet_core::reference::ImageRef;
use signet_server::PodSource;
use signet_verify::audit::{self, ClientStore, Compliance, Finding};

use crate::cli::{Output, RegistryArgs};
use crate::commands::registry;

/// One image of one pod, and what became of it, as printed.
#[derive(serde::Serialize)]
struct Line<'f> {
    namespace: &'f str,
    pod: &'f str,
    #[serde(rename = "serviceAccount")]
    service_account: &'f str,
    container: &'f str,
    image: &'f str,
    /// `compliant`, `violating` or `error`: never folded into two.
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    #[serde(skip_serializing_if = "str::is_empty")]
    rule: &'f str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    reasons: &'f [String],
}

impl<'f> From<&'f Finding> for Line<'f> {
    fn from(f: &'f Finding) -> Self {
        Line {
            namespace: &f.running.namespace,
            pod: &f.running.pod,
            service_account: &f.running.service_account,
            container: &f.running.container,
            image: &f.running.image,
            outcome: f.compliance.as_str(),
            digest: f.digest.as_ref().map(ToString::to_string),
            rule: &f.rule,
            reasons: &f.reasons,
        }
    }
}

/// `signet audit --policy FILE (--pods FILE | --kubeconfig FILE | --in-cluster)`.
pub async fn audit(
    args: &RegistryArgs,
    policy_path: &Path,
    source: &PodSource,
    page_size: u32,
    cluster: Option<String>,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let policy = match signet_policy::load(policy_path) {
        Ok(p) => p,
        Err(errors) => bail!("invalid policy:\n{errors}"),
    };
    let listing = signet_server::list_pods(source, page_size)
        .await
        .with_context(|| format!("listing pods from {source}"))?;
    // Credentials given by flag go to the one registry among the pods' they are for.
    let registries: BTreeSet<String> = listing
        .images
        .iter()
        .filter_map(|r| r.image.parse::<ImageRef>().ok())
        .map(|i| i.registry().to_string())
        .collect();
    let named: Vec<&str> = registries.iter().map(String::as_str).collect();
    let store = ClientStore::new(registry::client(args, &named)?);
    let (pods, finished) = (listing.pods, listing.finished);
    let options = audit::Options {
        cluster,
        ..audit::Options::default()
    };
    let report = audit::audit(Arc::new(policy), listing.images, &store, &options).await;
    let requests = store.client().request_count();

    let [compliant, violating, errors] = Compliance::ALL.map(|c| report.count(c));
    match output {
        Output::Json => crate::output::line(&serde_json::to_string_pretty(&serde_json::json!({
            "compliant": compliant,
            "violating": violating,
            "error": errors,
            "pods": pods,
            "finishedPods": finished,
            "digestsVerified": report.digests_verified,
            "registryRequests": requests,
            "images": report.findings.iter().map(Line::from).collect::<Vec<_>>(),
        }))?),
        Output::Text => {
            let mut text = String::new();
            for f in &report.findings {
                let r = &f.running;
                text.push_str(&format!(
                    "{} {}/{} {} {}",
                    f.compliance.as_str().to_uppercase(),
                    r.namespace,
                    r.pod,
                    r.container,
                    r.image
                ));
                if !f.reasons.is_empty() {
                    text.push_str(&format!(": {}", f.reasons.join("; ")));
                }
                text.push('\n');
            }
            text.push_str(&format!(
                "{compliant} compliant, {violating} violating, {errors} error(s) in {} pod(s)\n",
                pods.saturating_sub(finished)
            ));
            if finished > 0 {
                text.push_str(&format!(
                    "{finished} finished pod(s) (Succeeded, Failed) not audited\n"
                ));
            }
            text.push_str(&format!(
                "{} image digest(s) verified, {requests} registry request(s)\n",
                report.digests_verified
            ));
            crate::output::stdout(&text);
        }
    }
    Ok(if errors > 0 {
        ExitCode::from(2)
    } else if violating > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
