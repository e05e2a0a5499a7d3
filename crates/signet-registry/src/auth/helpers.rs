//! The `docker-credential-*` helper protocol: run `docker-credential-<name> get`, bounded in
//! time and output, and read its answer without ever quoting a secret.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};

use super::AuthError;
use super::credentials::Credentials;
use super::docker_config::{Target, credentials_from};

/// How long a credential helper may take before it is killed.
pub(super) const HELPER_TIMEOUT: Duration = Duration::from_secs(10);

/// The most a credential helper may write to stdout or stderr.
const HELPER_OUTPUT_LIMIT: usize = 64 * 1024;

/// The longest helper diagnostic quoted in an error.
const DIAGNOSTIC_LIMIT: usize = 200;

/// Runs `docker-credential-<name> get`.
pub(super) struct HelperRunner {
    /// Where helpers are looked for; `None` means `$PATH`. Tests set it so that they need not
    /// change the process-wide `PATH`.
    pub(super) dir: Option<PathBuf>,
    /// How long a helper may take before it is killed.
    pub(super) timeout: Duration,
}

impl Default for HelperRunner {
    fn default() -> Self {
        Self {
            dir: None,
            timeout: HELPER_TIMEOUT,
        }
    }
}

/// A credential helper's answer to `get`.
#[derive(Deserialize)]
struct HelperResponse {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: SecretString,
}

impl HelperRunner {
    pub(super) async fn get(
        &self,
        helper: &str,
        target: &Target,
    ) -> Result<Option<Credentials>, AuthError> {
        let server = target.server_url();
        // The name comes from a file; it must not turn into a path.
        if !helper
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+'))
        {
            return Err(AuthError::InvalidHelperName {
                helper: helper.to_owned(),
            });
        }
        let program = format!("docker-credential-{helper}");
        let program = match &self.dir {
            Some(dir) => dir.join(program),
            None => PathBuf::from(program),
        };
        tracing::debug!(registry = %server, helper, "asking credential helper");
        let (status, stdout, stderr) = self.run(&program, helper, server).await?;

        let not_found = |out: &[u8]| {
            String::from_utf8_lossy(out)
                .to_ascii_lowercase()
                .contains("credentials not found")
        };
        if !status.success() {
            if not_found(&stdout) || not_found(&stderr) {
                return Ok(None);
            }
            return Err(AuthError::HelperFailed {
                helper: helper.to_owned(),
                registry: server.to_owned(),
                status,
                message: failure_message(&stdout, &stderr),
            });
        }
        match serde_json::from_slice::<HelperResponse>(&stdout) {
            Ok(response) => Ok(credentials_from(
                &response.username,
                response.secret.expose_secret(),
            )),
            Err(_) if not_found(&stdout) => Ok(None),
            // As for config.json, serde_json's message could quote the secret.
            Err(e) => Err(AuthError::HelperResponseInvalid {
                helper: helper.to_owned(),
                registry: server.to_owned(),
                line: e.line(),
                column: e.column(),
            }),
        }
    }

    /// Runs the helper with `server` on stdin; returns its status, stdout and stderr.
    async fn run(
        &self,
        program: &Path,
        helper: &str,
        server: &str,
    ) -> Result<(ExitStatus, Vec<u8>, Vec<u8>), AuthError> {
        let io_error = |source| AuthError::HelperIo {
            helper: helper.to_owned(),
            registry: server.to_owned(),
            source,
        };
        let mut command = tokio::process::Command::new(program);
        command
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child =
            spawn(&mut command)
                .await
                .map_err(|source| AuthError::HelperUnavailable {
                    helper: helper.to_owned(),
                    registry: server.to_owned(),
                    source,
                })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let exchange = async {
            let write = async move {
                if let Some(mut stdin) = stdin {
                    // A helper may exit without reading its input (a broken pipe then); what
                    // it answers is what counts. Dropping stdin closes it, marking the end.
                    let _ = stdin.write_all(server.as_bytes()).await;
                    let _ = stdin.shutdown().await;
                }
            };
            let ((), out, err) = tokio::join!(write, read_bounded(stdout), read_bounded(stderr));
            (out, err, child.wait().await)
        };
        let Ok((out, err, status)) = tokio::time::timeout(self.timeout, exchange).await else {
            // Best effort: the child may have exited at the last moment; kill_on_drop backs
            // this up.
            let _ = child.kill().await;
            return Err(AuthError::HelperTimeout {
                helper: helper.to_owned(),
                registry: server.to_owned(),
                timeout: self.timeout,
            });
        };
        let (out, err, status) = (out.map_err(io_error)?, err.map_err(io_error)?, status);
        let status = status.map_err(io_error)?;
        if out.len() > HELPER_OUTPUT_LIMIT || err.len() > HELPER_OUTPUT_LIMIT {
            return Err(AuthError::HelperOutputTooLarge {
                helper: helper.to_owned(),
                registry: server.to_owned(),
                limit: HELPER_OUTPUT_LIMIT,
            });
        }
        Ok((status, out, err))
    }
}

/// Spawns `command`, retrying briefly when the executable is busy: a helper script that was
/// just written (or is being replaced) can be held open for writing by a process forked at
/// that moment, and exec then fails with ETXTBSY (rust-lang/rust#114554).
async fn spawn(command: &mut tokio::process::Command) -> io::Result<tokio::process::Child> {
    let mut attempts = 0;
    loop {
        match command.spawn() {
            Err(e) if e.kind() == io::ErrorKind::ExecutableFileBusy && attempts < 5 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            result => return result,
        }
    }
}

/// Reads all of `reader` up to one byte over the helper output limit, so that the caller can
/// tell a full answer from an overlong one. Dropping the reader closes the pipe, which stops a
/// helper that keeps writing.
async fn read_bounded(reader: Option<impl AsyncRead + Unpin>) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    if let Some(reader) = reader {
        reader
            .take(HELPER_OUTPUT_LIMIT as u64 + 1)
            .read_to_end(&mut buf)
            .await?;
    }
    Ok(buf)
}

/// Why a helper failed, from its stderr, else its stdout (where docker-credential-helpers
/// write their errors). Output that looks like a JSON answer is withheld: it may hold the
/// secret.
fn failure_message(stdout: &[u8], stderr: &[u8]) -> String {
    if !stderr.iter().all(u8::is_ascii_whitespace) {
        return diagnostic(stderr);
    }
    if stdout.trim_ascii_start().starts_with(b"{") {
        return "JSON output withheld".to_owned();
    }
    diagnostic(stdout)
}

/// The first non-blank line of a failing helper's output, cleaned of control characters and
/// shortened, to show the user why it failed.
fn diagnostic(output: &[u8]) -> String {
    let text = String::from_utf8_lossy(output);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty());
    let mut message: String = line
        .unwrap_or("no output")
        .chars()
        .filter(|c| !c.is_control())
        .take(DIAGNOSTIC_LIMIT + 1)
        .collect();
    if message.chars().count() > DIAGNOSTIC_LIMIT {
        message = message.chars().take(DIAGNOSTIC_LIMIT).collect();
        message.push('…');
    }
    message
}
