//! Reloading the policy (on change and on `SIGHUP`) and the TLS certificate (on change).
//!
//! Files are compared by content, not only by modification time: a Kubernetes ConfigMap or
//! Secret volume swaps a symlink, and an editor may rewrite a file without changing it. A
//! policy that does not load is refused and the previous one stays in force; the refusal is
//! logged, audited and counted, once per distinct content.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum_server::tls_rustls::RustlsConfig;
use signet_policy::Policy;

use crate::app::App;
use crate::audit::{Event, EventKind};
use crate::metrics::TlsReload;
use crate::{ServerError, TlsFiles};

/// Reads and loads the policy at start-up.
pub(crate) async fn load_initial(path: &Path) -> Result<(Policy, Vec<u8>), ServerError> {
    let contents = tokio::fs::read(path)
        .await
        .map_err(|e| ServerError::Policy {
            path: path.to_path_buf(),
            errors: format!("cannot read it: {e}"),
        })?;
    match load(path).await {
        Ok(policy) => Ok((policy, contents)),
        Err(errors) => Err(ServerError::Policy {
            path: path.to_path_buf(),
            errors,
        }),
    }
}

/// Loads the policy off the request threads (it reads key files and compiles conditions).
async fn load(path: &Path) -> Result<Policy, String> {
    let owned = path.to_path_buf();
    match tokio::task::spawn_blocking(move || signet_policy::load(&owned)).await {
        Ok(Ok(policy)) => Ok(policy),
        Ok(Err(errors)) => Err(errors.to_string()),
        Err(e) => Err(format!("loading the policy failed: {e}")),
    }
}

/// When [`reload_policy`] loads the policy file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reload {
    /// Only if its content changed (or it cannot be read for a new reason): the periodic check.
    IfChanged,
    /// In any case, and a read error is reported again: `SIGHUP`, because key files the policy
    /// names may have changed while the policy file did not.
    Always,
}

/// Reloads the policy as `when` says.
pub(crate) async fn reload_policy(app: &App, when: Reload) {
    let force = when == Reload::Always;
    let mut seen = app.reload_state.lock().await;
    let path = &app.policy_path;
    let contents = match tokio::fs::read(path).await {
        Ok(contents) => contents,
        Err(e) => {
            let message = format!("cannot read {}: {e}", path.display());
            if force || seen.read_error.as_deref() != Some(message.as_str()) {
                refuse(app, &message);
                seen.read_error = Some(message);
            }
            return;
        }
    };
    seen.read_error = None;
    if !force && seen.contents.as_deref() == Some(contents.as_slice()) {
        return;
    }
    seen.contents = Some(contents);
    match load(path).await {
        Ok(policy) => {
            let generation = app.install_policy(policy);
            app.metrics.policy_reloads.inc();
            let mut event = Event::now(EventKind::PolicyReload);
            event.policy = Some(path.display().to_string());
            event.generation = Some(generation);
            app.audit.write(&event);
            tracing::info!(policy = %path.display(), generation, "policy reloaded");
        }
        Err(errors) => refuse(app, &errors),
    }
}

fn refuse(app: &App, errors: &str) {
    let path = &app.policy_path;
    let generation = app.policy().generation;
    app.metrics.policy_reload_errors.inc();
    let mut event = Event::now(EventKind::PolicyReloadFailed);
    event.policy = Some(path.display().to_string());
    event.generation = Some(generation);
    event.reasons = errors
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    app.audit.write(&event);
    tracing::error!(
        policy = %path.display(),
        generation,
        errors,
        "new policy refused; the previous one stays in force"
    );
}

/// Sets `signet_tls_certificate_expiry_timestamp_seconds` from the PEM chain being served (its
/// first certificate, the one clients check). A file rustls accepted but that this cannot read
/// leaves the gauge as it was.
pub(crate) fn record_certificate_expiry(app: &App, cert_pem: &[u8]) {
    match certificate_not_after(cert_pem) {
        Some(not_after) => app.metrics.tls_certificate_expires(not_after),
        None => tracing::warn!("cannot read the expiry of the served TLS certificate"),
    }
}

/// The notAfter of the first certificate of a PEM chain.
fn certificate_not_after(cert_pem: &[u8]) -> Option<SystemTime> {
    let chain = x509_cert::Certificate::load_pem_chain(cert_pem).ok()?;
    let leaf = chain.first()?;
    Some(leaf.tbs_certificate().validity().not_after.to_system_time())
}

async fn read_pair(files: &TlsFiles) -> Option<(Vec<u8>, Vec<u8>)> {
    let cert = tokio::fs::read(&files.cert).await.ok()?;
    let key = tokio::fs::read(&files.key).await.ok()?;
    Some((cert, key))
}

async fn reload_tls(
    app: &App,
    files: &TlsFiles,
    config: &RustlsConfig,
    seen: &mut Option<(Vec<u8>, Vec<u8>)>,
) {
    let Some(pair) = read_pair(files).await else {
        // Mid-rotation, one of the files may be briefly missing; the next tick sees the pair.
        return;
    };
    if seen.as_ref() == Some(&pair) {
        return;
    }
    let (cert, key) = pair.clone();
    *seen = Some(pair);
    match config.reload_from_pem(cert, key).await {
        Ok(()) => {
            app.metrics.tls_reload(TlsReload::Loaded);
            if let Some((cert, _)) = seen.as_ref() {
                record_certificate_expiry(app, cert);
            }
            tracing::info!(cert = %files.cert.display(), "TLS certificate reloaded");
        }
        Err(e) => {
            app.metrics.tls_reload(TlsReload::Failed);
            tracing::error!(
                cert = %files.cert.display(),
                key = %files.key.display(),
                error = %e,
                "new TLS certificate or key refused; the previous one stays in use"
            );
        }
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

fn hangup() -> Hangup {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(signal) => Some(signal),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; the policy reloads on change only");
                None
            }
        }
    }
    #[cfg(not(unix))]
    None
}

async fn next_hangup(hangup: &mut Hangup) {
    #[cfg(unix)]
    if let Some(signal) = hangup {
        if signal.recv().await.is_some() {
            return;
        }
        *hangup = None;
    }
    #[cfg(not(unix))]
    let _ = hangup;
    std::future::pending::<()>().await;
}

/// Watches the policy and TLS files every `interval`, and the policy on `SIGHUP`, for as long
/// as the server runs.
pub(crate) async fn watch(
    app: Arc<App>,
    tls: Option<(TlsFiles, RustlsConfig)>,
    interval: Duration,
) {
    let mut hangup = hangup();
    let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(10)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut tls_seen = match &tls {
        Some((files, _)) => read_pair(files).await,
        None => None,
    };
    loop {
        let when = tokio::select! {
            _ = ticks.tick() => Reload::IfChanged,
            () = next_hangup(&mut hangup) => Reload::Always,
        };
        if when == Reload::Always {
            tracing::info!("SIGHUP: reloading the policy");
        }
        reload_policy(&app, when).await;
        if let Some((files, config)) = &tls {
            reload_tls(&app, files, config, &mut tls_seen).await;
        }
    }
}
