//! The `signet` command-line tool: Binary Authorization for any OCI registry.
//!
//! This binary is glue: it parses the command line, reads files and secrets, calls the
//! library crates and prints results. Exit codes: 0 success (or allowed), 1 denied,
//! 2 error.
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod output;
mod password;
mod progress;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    // The workspace builds rustls without a default crypto provider (no aws-lc-sys build, see
    // the root Cargo.toml) and the libraries never install one: the binary picks ring, before
    // any registry client or TLS listener is built. Err only means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = cli::Cli::parse();
    match commands::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
