//! One module per subcommand; each returns the process exit code.

mod audit;
mod binauthz;
mod blob;
mod certificates;
mod image;
mod keygen;
mod mirror;
mod pkcs11;
mod policy;
mod registry;
pub mod serve;
mod signer;

use std::process::ExitCode;

use crate::cli::{
    AttestFormat, BinauthzCommand, Cli, Command, Pkcs11Command, PolicyCommand, StorageFormat,
    TrustedRootCommand,
};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Keygen {
            output_prefix,
            force,
        } => keygen::run(&output_prefix, force),
        Command::SignBlob {
            file,
            key,
            bundle,
            certificate,
        } => blob::sign(&file, &key, bundle, &certificate),
        Command::VerifyBlob {
            file,
            key,
            certificate,
            bundle,
            output,
        } => blob::verify(&file, key.as_deref(), &certificate, bundle, output),
        Command::TrustedRoot(TrustedRootCommand::Show { file }) => {
            certificates::show(file.as_deref())
        }
        Command::Sign {
            image,
            key,
            format,
            annotations,
            recursive,
            timestamp_server_url,
            certificate,
        } => block_on(image::sign(
            &cli.registry,
            &image,
            &key,
            &certificate,
            format,
            &annotations,
            recursive,
            timestamp_server_url.as_ref(),
        )),
        Command::Attest {
            image,
            key,
            pgp_key,
            predicate,
            predicate_type,
            format,
            note,
            public_key_id,
            recursive,
            timestamp_server_url,
            certificate,
        } => match format {
            AttestFormat::Binauthz if recursive => {
                anyhow::bail!("--recursive is for bundle and legacy attestations")
            }
            AttestFormat::Binauthz if timestamp_server_url.is_some() => {
                anyhow::bail!("--timestamp-server-url stamps bundles; not --format binauthz")
            }
            AttestFormat::Binauthz if certificate.certificate.is_some() => {
                anyhow::bail!("--certificate is for bundle and legacy attestations")
            }
            AttestFormat::Binauthz => block_on(binauthz::attest(
                &cli.registry,
                &image,
                binauthz::Signer::from_args(key, pgp_key)?,
                note,
                public_key_id,
                predicate.is_some(),
            )),
            AttestFormat::Bundle | AttestFormat::Legacy => {
                let (Some(key), None) = (key, pgp_key) else {
                    anyhow::bail!(
                        "--pgp-key signs only --format binauthz attestations; give --key"
                    );
                };
                let Some(predicate) = predicate else {
                    anyhow::bail!("--predicate FILE is required (except with --format binauthz)");
                };
                if note.is_some() || public_key_id.is_some() {
                    anyhow::bail!("--note and --public-key-id apply only to --format binauthz");
                }
                let format = if format == AttestFormat::Legacy {
                    StorageFormat::Legacy
                } else {
                    StorageFormat::Bundle
                };
                block_on(image::attest(
                    &cli.registry,
                    &image,
                    &key,
                    &certificate,
                    &predicate,
                    &predicate_type,
                    format,
                    recursive,
                    timestamp_server_url.as_ref(),
                ))
            }
        },
        Command::Binauthz(BinauthzCommand::Import {
            files,
            registry_map,
            policy,
            output,
        }) => block_on(binauthz::import(
            &cli.registry,
            &files,
            &registry_map,
            policy.as_deref(),
            output,
        )),
        Command::Binauthz(BinauthzCommand::Export {
            image,
            attestor,
            output,
            force,
        }) => block_on(binauthz::export(
            &cli.registry,
            &image,
            attestor.as_deref(),
            &output,
            force,
        )),
        Command::Withdraw {
            image,
            attestation,
            key,
            reason,
        } => block_on(image::withdraw(
            &cli.registry,
            &image,
            &attestation,
            &key,
            reason,
        )),
        Command::Tree { image, output } => block_on(image::tree(&cli.registry, &image, output)),
        Command::Verify {
            key,
            policy,
            certificate,
            ..
        } if certificate.given() && (!key.is_empty() || policy.is_some()) => {
            anyhow::bail!(
                "verify with --key, --policy or a certificate identity (--certificate-identity…, \
                 --ca-roots), one of them; a policy names certificate trust in its attestors \
                 (`keyless`, `certificates`)"
            )
        }
        Command::Verify {
            image,
            policy: None,
            certificate,
            output,
            max_evidence_bytes,
            ..
        } if certificate.given() => block_on(image::verify_certificates(
            &cli.registry,
            &image,
            &certificate,
            output,
            max_evidence_bytes,
        )),
        Command::Verify {
            image,
            key,
            policy: None,
            output,
            max_evidence_bytes,
            ..
        } => block_on(image::verify(
            &cli.registry,
            &image,
            &key,
            output,
            max_evidence_bytes,
        )),
        Command::Verify {
            image,
            policy: Some(policy),
            cluster,
            namespace,
            service_account,
            output,
            max_evidence_bytes,
            index,
            at,
            ..
        } => {
            let ctx = signet_verify::AdmissionContext {
                cluster,
                namespace,
                service_account,
            };
            let index = index
                .map(|d| {
                    d.parse::<signet_core::digest::Digest>()
                        .map_err(|e| anyhow::anyhow!("--index {d}: {e}"))
                })
                .transpose()?;
            block_on(policy::verify(
                &cli.registry,
                &image,
                &policy,
                &ctx,
                output,
                max_evidence_bytes,
                index.as_ref(),
                at,
            ))
        }
        Command::Audit {
            policy,
            pods,
            page_size,
            cluster,
            output,
        } => block_on(audit::audit(
            &cli.registry,
            &policy,
            &pods.source(),
            page_size,
            cluster,
            output,
        )),
        Command::Mirror(args) => block_on(mirror::mirror(&cli.registry, &args)),
        Command::Export(args) => block_on(mirror::export(&cli.registry, &args)),
        Command::Import(args) => block_on(mirror::import(&cli.registry, &args)),
        Command::Policy(PolicyCommand::Check { file }) => policy::check(&file),
        Command::Policy(PolicyCommand::Init { output }) => policy::init(output.as_deref()),
        Command::Completion { shell } => {
            let mut command = <crate::cli::Cli as clap::CommandFactory>::command();
            // Into memory first: clap_complete panics on a write error (`| head`).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "signet", &mut script);
            match std::io::Write::write_all(&mut std::io::stdout(), &script) {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
                Err(e) => Err(anyhow::Error::new(e).context("writing the completion script")),
            }
        }
        Command::Man { output_dir } => man_pages(&output_dir),
        Command::PublicKey { key } => signer::public_key(&key),
        Command::Pkcs11(Pkcs11Command::Tokens { module, output }) => {
            pkcs11::tokens(module.as_deref(), output)
        }
        Command::Pkcs11(Pkcs11Command::Keys {
            token,
            module,
            output,
        }) => pkcs11::keys(module.as_deref(), &token, output),
        Command::Serve(args) => serve::run(
            &args,
            registry::daemon_options(&cli.registry, args.docker_config.as_deref())?,
        ),
    }
}

/// Writes `signet.1` and one page per command into `dir`, and prints their paths.
fn man_pages(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    use anyhow::Context as _;
    let command = <crate::cli::Cli as clap::CommandFactory>::command();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut pages = vec![("signet".to_string(), command.clone())];
    for sub in command.get_subcommands() {
        let name = format!("signet-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().display_name(name)));
    }
    for (name, page) in pages {
        let path = dir.join(format!("{name}.1"));
        let mut out = Vec::new();
        clap_mangen::Man::new(page)
            .render(&mut out)
            .with_context(|| format!("rendering {}", path.display()))?;
        std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?;
        crate::output::line(&path.display().to_string());
    }
    Ok(ExitCode::SUCCESS)
}

fn block_on<F: std::future::Future<Output = anyhow::Result<ExitCode>>>(
    fut: F,
) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // Interrupted (Ctrl-C, SIGTERM): the unpacked copies of open archives (possibly gigabytes,
    // in the temporary directory) are removed before exiting, as the destructors that would
    // remove them do not run. The handlers are in place before the command starts; the task
    // runs on a worker thread, so it acts even while the command blocks.
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let _context = runtime.enter();
        // Both or neither: a signal without its handler keeps its default action.
        if let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            runtime.spawn(async move {
                let code = tokio::select! {
                    _ = int.recv() => 130,
                    _ = term.recv() => 143,
                };
                signet_registry::remove_unpacked_archives();
                std::process::exit(code);
            });
        }
    }
    runtime.block_on(fut)
}
