//! `signet policy check`, `signet policy init` and `signet verify --policy`.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use signet_verify::AdmissionContext;

use crate::cli::{Output, RegistryArgs};
use crate::commands::image::{Target, print_decision};
use crate::output;

/// The starting policy `signet policy init` writes.
const STARTER: &str = include_str!("../../../fixtures/policies/starter.yaml");

pub fn check(file: &Path) -> anyhow::Result<ExitCode> {
    match signet_policy::load(file) {
        Ok(policy) => {
            output::stdout(&format!("{}: OK\n{}", file.display(), policy.summary()));
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprint!("{errors}");
            if !errors.to_string().ends_with('\n') {
                eprintln!();
            }
            eprintln!("{}: {} error(s)", file.display(), errors.0.len());
            Ok(ExitCode::from(2))
        }
    }
}

pub fn init(output_path: Option<&Path>) -> anyhow::Result<ExitCode> {
    match output_path {
        None => output::stdout(STARTER),
        Some(path) => {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
            file.write_all(STARTER.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "Wrote {}; edit it, then run `signet policy check {}`",
                path.display(),
                path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::too_many_arguments, reason = "one per command-line option")]
pub async fn verify(
    args: &RegistryArgs,
    image: &str,
    policy_path: &Path,
    ctx: &AdmissionContext,
    out: Output,
    max_evidence_bytes: u64,
    index: Option<&signet_core::digest::Digest>,
    at: Option<std::time::SystemTime>,
) -> anyhow::Result<ExitCode> {
    let mut policy = match signet_policy::load(policy_path) {
        Ok(p) => p,
        Err(errors) => bail!("invalid policy:\n{errors}"),
    };
    policy.as_of = at;
    let target = Target::open(args, image)?;
    let decision = signet_verify::verify_with_policy_through(
        &target.repo,
        &policy,
        &target.image,
        ctx,
        max_evidence_bytes,
        index,
    )
    .await
    .with_context(|| format!("verifying {image}"))?;
    print_decision(&target, decision, out)
}
