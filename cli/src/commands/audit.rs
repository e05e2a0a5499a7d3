//! `signet audit`: the admission decision again, for what already runs (issue 15's continuous
//! validation, first part: a pod list from `kubectl get pods -A -o json`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::Pod;
use signet_verify::AdmissionContext;

use crate::cli::{Output, RegistryArgs};
use crate::commands::image::Target;

/// Largest pod list read.
const MAX_PODS_BYTES: u64 = 256 << 20;

#[derive(serde::Deserialize)]
struct PodList {
    kind: Option<String>,
    #[serde(default)]
    items: Vec<Pod>,
}

/// One image of one pod, and what became of it.
#[derive(serde::Serialize)]
struct Finding {
    namespace: String,
    pod: String,
    #[serde(rename = "serviceAccount")]
    service_account: String,
    container: String,
    image: String,
    /// `compliant`, `violating` or `error`: never folded into two.
    outcome: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    reasons: Vec<String>,
}

/// `signet audit --policy FILE --pods FILE [--cluster NAME] [--output text|json]`.
pub async fn audit(
    args: &RegistryArgs,
    policy_path: &Path,
    pods_path: &Path,
    cluster: Option<String>,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let policy = match signet_policy::load(policy_path) {
        Ok(p) => p,
        Err(errors) => bail!("invalid policy:\n{errors}"),
    };
    let size = std::fs::metadata(pods_path)
        .with_context(|| format!("reading {}", pods_path.display()))?
        .len();
    if size > MAX_PODS_BYTES {
        bail!(
            "{} is larger than {MAX_PODS_BYTES} bytes",
            pods_path.display()
        );
    }
    let bytes =
        std::fs::read(pods_path).with_context(|| format!("reading {}", pods_path.display()))?;
    let list: PodList = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is not a pod list (what `kubectl get pods -A -o json` prints)",
            pods_path.display()
        )
    })?;
    if list
        .kind
        .as_deref()
        .is_some_and(|k| k != "List" && k != "PodList")
    {
        bail!(
            "{} is a {}, not a List of Pods",
            pods_path.display(),
            list.kind.unwrap_or_default()
        );
    }

    // Each (image, namespace, service account) is decided once, however many pods share it.
    let mut decided: BTreeMap<(String, String, String), (&'static str, Vec<String>)> =
        BTreeMap::new();
    let mut findings = Vec::new();
    for pod in &list.items {
        let namespace = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(spec) = &pod.spec else { continue };
        let service_account = spec
            .service_account_name
            .clone()
            .unwrap_or_else(|| "default".into());
        let mut containers: Vec<(String, String)> = Vec::new();
        for c in spec.init_containers.iter().flatten() {
            containers.push((
                format!("init:{}", c.name),
                c.image.clone().unwrap_or_default(),
            ));
        }
        for c in &spec.containers {
            containers.push((c.name.clone(), c.image.clone().unwrap_or_default()));
        }
        for c in spec.ephemeral_containers.iter().flatten() {
            containers.push((
                format!("ephemeral:{}", c.name),
                c.image.clone().unwrap_or_default(),
            ));
        }
        for (container, image) in containers {
            let key = (image.clone(), namespace.clone(), service_account.clone());
            if !decided.contains_key(&key) {
                let ctx = AdmissionContext {
                    cluster: cluster.clone(),
                    namespace: Some(namespace.clone()),
                    service_account: Some(service_account.clone()),
                };
                let verdict = decide(args, &policy, &image, &ctx).await;
                decided.insert(key.clone(), verdict);
            }
            let (outcome, reasons) = decided.get(&key).cloned().unwrap_or(("error", Vec::new()));
            findings.push(Finding {
                namespace: namespace.clone(),
                pod: name.clone(),
                service_account: service_account.clone(),
                container,
                image,
                outcome,
                reasons,
            });
        }
    }

    let count = |what: &str| findings.iter().filter(|f| f.outcome == what).count();
    let (compliant, violating, errors) = (count("compliant"), count("violating"), count("error"));
    match output {
        Output::Json => crate::output::line(&serde_json::to_string_pretty(&serde_json::json!({
            "compliant": compliant,
            "violating": violating,
            "error": errors,
            "images": findings,
        }))?),
        Output::Text => {
            let mut text = String::new();
            for f in &findings {
                text.push_str(&format!(
                    "{} {}/{} {} {}",
                    f.outcome.to_uppercase(),
                    f.namespace,
                    f.pod,
                    f.container,
                    f.image
                ));
                if !f.reasons.is_empty() {
                    text.push_str(&format!(": {}", f.reasons.join("; ")));
                }
                text.push('\n');
            }
            text.push_str(&format!(
                "{compliant} compliant, {violating} violating, {errors} error(s) in {} pod(s)\n",
                list.items.len()
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

/// The decision for one image in `ctx`: compliant, violating (with reasons), or error.
async fn decide(
    args: &RegistryArgs,
    policy: &signet_policy::Policy,
    image: &str,
    ctx: &AdmissionContext,
) -> (&'static str, Vec<String>) {
    let target = match Target::open(args, image) {
        Ok(target) => target,
        Err(e) => return ("error", vec![format!("{e:#}")]),
    };
    match signet_verify::verify_with_policy_in(
        &target.repo,
        policy,
        &target.image,
        ctx,
        signet_verify::DEFAULT_MAX_EVIDENCE_BYTES,
    )
    .await
    {
        Ok(decision) if decision.outcome == signet_verify::Outcome::Allowed => {
            ("compliant", Vec::new())
        }
        Ok(decision) => ("violating", decision.reasons),
        Err(e) => ("error", vec![format!("{e:#}")]),
    }
}
