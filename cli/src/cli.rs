//! Command-line definitions. The contract is in DESIGN.md ("Interfaces that must stay stable").

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Binary Authorization for any OCI registry: sign images, store attestations next to them,
/// verify them against a policy.
#[derive(Parser, Debug)]
#[command(name = "signet", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate an ECDSA P-256 key pair: PREFIX.key (encrypted, cosign format) and PREFIX.pub.
    ///
    /// The password comes from SIGNET_PASSWORD, else COSIGN_PASSWORD, else a prompt on the
    /// terminal (asked twice). An empty password is allowed, as in cosign.
    Keygen {
        /// Path prefix of the two files written.
        #[arg(long, default_value = "signet", value_name = "PREFIX")]
        output_prefix: PathBuf,
        /// Overwrite existing key files.
        #[arg(long)]
        force: bool,
    },
    /// Sign a local file: write a Sigstore bundle holding a DSSE-signed in-toto statement
    /// whose subject is the file's SHA-256 digest.
    SignBlob {
        /// The file to sign.
        file: PathBuf,
        /// The encrypted private key (cosign format).
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
        /// Where to write the bundle; default: FILE.sigstore.json.
        #[arg(long, value_name = "FILE")]
        bundle: Option<PathBuf>,
    },
    /// Verify a local file against a bundle and a public key. Exit 0 when it verifies, 1 when
    /// it does not, 2 on error.
    VerifyBlob {
        /// The file to verify.
        file: PathBuf,
        /// The PEM public key.
        #[arg(long, value_name = "PUB")]
        key: PathBuf,
        /// The bundle; default: FILE.sigstore.json.
        #[arg(long, value_name = "FILE")]
        bundle: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

/// How results are printed.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// For people.
    Text,
    /// One JSON object, for scripts.
    Json,
}
