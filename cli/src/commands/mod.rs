//! One module per subcommand; each returns the process exit code.

mod blob;
mod keygen;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Keygen {
            output_prefix,
            force,
        } => keygen::run(&output_prefix, force),
        Command::SignBlob { file, key, bundle } => blob::sign(&file, &key, bundle),
        Command::VerifyBlob {
            file,
            key,
            bundle,
            output,
        } => blob::verify(&file, &key, bundle, output),
    }
}
