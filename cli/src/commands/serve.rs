//! `signet serve`: the verifier daemon (admission webhooks, verify API, metrics).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{ArgGroup, Args};
use signet_registry::ClientOptions;
use signet_server::{
    CacheConfig, ContinuousValidation, ExplorerConfig, LoopbackAddr, OnVerificationError,
    PodSource, ServerConfig, TlsFiles, Transport,
};

/// Serve the admission webhooks and the verify API.
///
/// Routes: POST /admission/validate, POST /admission/mutate, POST /v1/verify, GET /healthz,
/// GET /readyz, GET /metrics. The policy is reloaded when its file changes and on SIGHUP (a
/// policy that does not load is refused and the previous one stays in force); the TLS
/// certificate and key are reloaded when their files change. SIGTERM or SIGINT stops the
/// daemon after requests in flight finish.
///
/// A read-only decision explorer (recent decisions, the policy, why an image is allowed or
/// denied) listens on loopback, 127.0.0.1:8081 unless --ui-listen says otherwise; reach it with
/// `kubectl port-forward`.
#[derive(Args, Debug, Clone)]
#[command(group(ArgGroup::new("transport").required(true).args(["tls_cert", "insecure_http"])))]
pub struct ServeArgs {
    /// The policy file.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// Address and port to listen on.
    #[arg(long, default_value = "0.0.0.0:8443", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// TLS certificate chain (PEM), leaf first; reloaded when it changes.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); reloaded when it changes.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP. For local development only: Kubernetes calls webhooks over HTTPS.
    #[arg(long)]
    pub insecure_http: bool,
    /// The cluster name that `clusterAdmissionRules` are keyed by.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Append audit events (JSON lines) to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// Admit, with a warning and an audit event, when verification fails for a reason other
    /// than the policy (registry unreachable, deadline). Default: deny (fail closed).
    #[arg(long)]
    pub fail_open: bool,
    /// Deadline for verifying one request, below the webhook's timeoutSeconds.
    #[arg(
        long,
        default_value_t = 8,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..=30)
    )]
    pub deadline: u64,
    /// Reuse a decision that admits for this long.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub cache_allow_ttl: u64,
    /// Reuse a decision that denies (or would deny, in dry run) for this long.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub cache_deny_ttl: u64,
    /// Reuse the signatures and attestations found for a digest for this long.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub cache_evidence_ttl: u64,
    /// Reuse the digest a tag resolved to (mutating webhook, verify API) for this long.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub cache_tag_ttl: u64,
    /// Most entries in the decision and tag caches.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub cache_max_entries: u64,
    /// Most bytes of signatures and attestations the evidence cache holds (least recently
    /// used digests are dropped first).
    #[arg(long, default_value_t = 64 << 20, value_name = "BYTES")]
    pub cache_max_evidence_bytes: u64,
    /// Registry credentials, per registry: a docker config.json file, e.g. the
    /// `.dockerconfigjson` of a mounted kubernetes.io/dockerconfigjson Secret (credHelpers and
    /// credsStore work too). Default: $DOCKER_CONFIG/config.json, else ~/.docker/config.json.
    /// The daemon refuses --registry-username/--registry-password: it reaches whatever
    /// registry a pod names, and they would go to that registry too.
    #[arg(long, value_name = "FILE")]
    pub docker_config: Option<PathBuf>,
    /// Most distinct images one admission review may name; a review naming more is denied at
    /// once, saying why.
    #[arg(long, default_value_t = 256, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_images_per_review: u64,
    /// Most connections open at once; more are closed as soon as they are accepted.
    #[arg(long, default_value_t = 512, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,
    /// Time a client has to finish the TLS handshake and to send a request's headers (also
    /// the next request's, on a kept-alive connection) before its connection is closed.
    #[arg(long, default_value_t = 5, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub header_timeout: u64,
    /// Demand `Authorization: Bearer <token>` on the verify API (`/v1/verify`), the token being
    /// this file's content (re-read on every call: mount a Secret). Without it, anyone who can
    /// reach the daemon may ask it to verify any image.
    #[arg(long, value_name = "FILE")]
    pub api_token_file: Option<PathBuf>,
    /// Decide again, every INTERVAL (e.g. 30s, 5m, 1h; give or take a tenth), for every image
    /// of every running pod, as `signet audit` does: each violating (or undecidable) image is
    /// written to the audit log ("event":"continuous-validation"), and the gauges
    /// signet_running_images{outcome="compliant|violating|error"} count them. Tags and
    /// evidence are read afresh for each run, not from the admission caches. The pods come
    /// from the API server the daemon runs in (its service account needs `list` on pods:
    /// deploy/rbac.yaml), or from --kubeconfig or --pods.
    #[arg(long, value_name = "INTERVAL", value_parser = parse_interval)]
    pub continuous_validation: Option<Duration>,
    /// With --continuous-validation: list the pods from the API server of this kubeconfig's
    /// current context instead of in-cluster.
    #[arg(
        long,
        value_name = "FILE",
        requires = "continuous_validation",
        conflicts_with = "pods"
    )]
    pub kubeconfig: Option<PathBuf>,
    /// With --continuous-validation: read the pods from this file (what `kubectl get pods -A -o
    /// json` prints), again for each run, instead of from the API server.
    #[arg(long, value_name = "FILE", requires = "continuous_validation")]
    pub pods: Option<PathBuf>,
    /// Where the read-only decision explorer listens (plain HTTP, loopback only: reach it with
    /// `kubectl port-forward POD 8081`), or `off`. Default: 127.0.0.1:8081, and when that port
    /// is taken the daemon runs without the explorer, with a warning; an address given here
    /// must be free. A non-loopback address is refused: the page has no authentication.
    #[arg(long, value_name = "ADDR|off", value_parser = parse_ui_listen)]
    pub ui_listen: Option<UiListen>,
    /// How many recent decisions the explorer keeps and lists.
    #[arg(long, default_value_t = signet_server::DEFAULT_RECENT_DECISIONS as u64, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub ui_recent_decisions: u64,
}

/// A duration as humantime writes it (`30s`, `5m`, `1h30m`), more than zero.
fn parse_interval(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("the interval must be longer than zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e} (write e.g. 30s, 5m or 1h)")),
    }
}

/// `--ui-listen`: a loopback address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiListen {
    /// No explorer.
    Off,
    /// The explorer on this address.
    At(LoopbackAddr),
}

/// The explorer's address when `--ui-listen` is not given.
const DEFAULT_UI_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8081);

fn parse_ui_listen(value: &str) -> Result<UiListen, String> {
    if value.eq_ignore_ascii_case("off") {
        return Ok(UiListen::Off);
    }
    // `localhost:PORT` is what port-forward instructions say; it means 127.0.0.1 here.
    let addr: SocketAddr = match value.strip_prefix("localhost:") {
        Some(port) => port
            .parse::<u16>()
            .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
            .map_err(|e| format!("invalid port {port:?}: {e}"))?,
        None => value
            .parse()
            .map_err(|e| format!("expected a loopback ADDR:PORT (127.0.0.1:8081) or off: {e}"))?,
    };
    LoopbackAddr::new(addr)
        .map(UiListen::At)
        .map_err(|e| e.to_string())
}

impl ServeArgs {
    /// The daemon's configuration from the flags and the registry options.
    pub fn config(&self, mut registry: ClientOptions) -> ServerConfig {
        let deadline = Duration::from_secs(self.deadline);
        // A registry operation cannot usefully outlive the request that waits for it.
        registry.limits.deadline = registry.limits.deadline.min(deadline);
        // clap makes `--tls-cert`/`--tls-key` and `--insecure-http` exclusive and one of them
        // required, so the plain-HTTP arm is reached only by `--insecure-http`.
        let mut config = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => ServerConfig::new(
                &self.policy,
                TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                },
            ),
            _ => ServerConfig::danger_plain_http(&self.policy),
        };
        config.listen = self.listen;
        config.cluster = self.cluster.clone();
        config.audit_log = self.audit_log.clone();
        config.on_verification_error = if self.fail_open {
            OnVerificationError::DangerFailOpen
        } else {
            OnVerificationError::FailClosed
        };
        config.request_deadline = deadline;
        config.registry = registry;
        config.cache = CacheConfig {
            max_entries: self.cache_max_entries,
            max_evidence_bytes: self.cache_max_evidence_bytes,
            allow_ttl: Duration::from_secs(self.cache_allow_ttl),
            deny_ttl: Duration::from_secs(self.cache_deny_ttl),
            evidence_ttl: Duration::from_secs(self.cache_evidence_ttl),
            tag_ttl: Duration::from_secs(self.cache_tag_ttl),
        };
        config.limits.max_images_per_review =
            usize::try_from(self.max_images_per_review).unwrap_or(usize::MAX);
        config.limits.max_connections = usize::try_from(self.max_connections).unwrap_or(usize::MAX);
        config.limits.header_read_timeout = Duration::from_secs(self.header_timeout);
        config.api_token_file = self.api_token_file.clone();
        config.continuous_validation = self.continuous_validation.map(|interval| {
            let pods = match (&self.pods, &self.kubeconfig) {
                (Some(file), _) => PodSource::File(file.clone()),
                (None, Some(kubeconfig)) => PodSource::Kubeconfig(kubeconfig.clone()),
                (None, None) => PodSource::InCluster,
            };
            ContinuousValidation::new(interval, pods)
        });
        let recent_decisions = usize::try_from(self.ui_recent_decisions).unwrap_or(usize::MAX);
        config.explorer = match self.ui_listen {
            Some(UiListen::Off) => None,
            Some(UiListen::At(listen)) => Some(ExplorerConfig {
                listen,
                optional: false,
                recent_decisions,
            }),
            None => LoopbackAddr::new(DEFAULT_UI_LISTEN)
                .ok()
                .map(|listen| ExplorerConfig {
                    listen,
                    optional: true,
                    recent_decisions,
                }),
        };
        config
    }
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(args: &ServeArgs, client_options: ClientOptions) -> anyhow::Result<ExitCode> {
    let config = args.config(client_options);
    if matches!(config.transport, Transport::DangerPlainHttp) {
        eprintln!(
            "warning: --insecure-http: serving plain HTTP on {}, for local development only; \
             Kubernetes webhooks need --tls-cert and --tls-key",
            config.listen
        );
    }
    if config.on_verification_error == OnVerificationError::DangerFailOpen {
        eprintln!(
            "warning: --fail-open: images are admitted unverified when the registry cannot be \
             reached in time"
        );
    }
    if config.api_token_file.is_none() {
        eprintln!(
            "warning: /v1/verify is open to anyone who can reach the daemon; --api-token-file \
             FILE makes it demand a bearer token (and see deploy/ for a NetworkPolicy)"
        );
    }
    // The daemon logs through `tracing` (listening address, reloads, errors) to stderr;
    // SIGNET_LOG sets the filter (default: info).
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIGNET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let listen = config.listen;
    runtime
        .block_on(signet_server::run(config))
        .with_context(|| format!("signet serve on {listen}"))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("serve").chain(args.iter().copied())).map(|c| c.serve)
    }

    #[test]
    fn exactly_one_of_tls_or_insecure_http() {
        assert!(parse(&["--policy", "p.yaml"]).is_err());
        assert!(parse(&["--policy", "p.yaml", "--tls-cert", "c.pem"]).is_err());
        assert!(
            parse(&[
                "--policy",
                "p.yaml",
                "--tls-cert",
                "c",
                "--tls-key",
                "k",
                "--insecure-http"
            ])
            .is_err()
        );
        let args = parse(&["--policy", "p.yaml", "--tls-cert", "c", "--tls-key", "k"]).unwrap();
        let config = args.config(ClientOptions::default());
        assert!(matches!(config.transport, Transport::Tls(_)));
        assert_eq!(
            config.on_verification_error,
            OnVerificationError::FailClosed
        );
        assert_eq!(config.listen.to_string(), "0.0.0.0:8443");
        assert_eq!(config.request_deadline, Duration::from_secs(8));
        assert_eq!(config.registry.limits.deadline, Duration::from_secs(8));
        let args = parse(&["--policy", "p.yaml", "--insecure-http", "--deadline", "3"]).unwrap();
        let config = args.config(ClientOptions::default());
        assert!(matches!(config.transport, Transport::DangerPlainHttp));
        assert_eq!(config.request_deadline, Duration::from_secs(3));
        assert!(parse(&["--policy", "p.yaml", "--insecure-http", "--deadline", "0"]).is_err());
    }

    #[test]
    fn continuous_validation_takes_an_interval_and_one_pod_source() {
        let base = ["--policy", "p.yaml", "--insecure-http"];
        let with = |extra: &[&str]| parse(&[&base[..], extra].concat());
        assert!(
            with(&[])
                .unwrap()
                .config(ClientOptions::default())
                .continuous_validation
                .is_none()
        );
        let cv = with(&["--continuous-validation", "5m"])
            .unwrap()
            .config(ClientOptions::default())
            .continuous_validation
            .unwrap();
        assert_eq!(cv.interval, Duration::from_secs(300));
        assert_eq!(cv.pods, PodSource::InCluster);
        let cv = with(&["--continuous-validation", "1s", "--pods", "pods.json"])
            .unwrap()
            .config(ClientOptions::default())
            .continuous_validation
            .unwrap();
        assert_eq!(cv.pods, PodSource::File("pods.json".into()));
        let cv = with(&["--continuous-validation", "90s", "--kubeconfig", "k.yaml"])
            .unwrap()
            .config(ClientOptions::default())
            .continuous_validation
            .unwrap();
        assert_eq!(
            (cv.interval, cv.pods),
            (
                Duration::from_secs(90),
                PodSource::Kubeconfig("k.yaml".into())
            )
        );
        // A source without the schedule, two sources, a zero or unreadable interval: refused.
        assert!(with(&["--pods", "pods.json"]).is_err());
        assert!(
            with(&[
                "--continuous-validation",
                "1m",
                "--pods",
                "p",
                "--kubeconfig",
                "k"
            ])
            .is_err()
        );
        let zero = with(&["--continuous-validation", "0s"])
            .unwrap_err()
            .to_string();
        assert!(zero.contains("longer than zero"), "{zero}");
        let bad = with(&["--continuous-validation", "often"])
            .unwrap_err()
            .to_string();
        assert!(bad.contains("e.g. 30s"), "{bad}");
    }

    #[test]
    fn ui_listen_is_loopback_by_default_off_or_a_loopback_address() {
        let config = |args: &[&str]| {
            let mut all = vec!["--policy", "p.yaml", "--insecure-http"];
            all.extend_from_slice(args);
            parse(&all).map(|a| a.config(ClientOptions::default()).explorer)
        };
        let default = config(&[]).unwrap().unwrap();
        assert_eq!(default.listen.get().to_string(), "127.0.0.1:8081");
        assert!(
            default.optional,
            "the default address may be taken by another daemon"
        );
        assert_eq!(
            default.recent_decisions,
            signet_server::DEFAULT_RECENT_DECISIONS
        );
        assert!(config(&["--ui-listen", "off"]).unwrap().is_none());
        let given = config(&["--ui-listen", "[::1]:9000", "--ui-recent-decisions", "7"])
            .unwrap()
            .unwrap();
        assert_eq!(given.listen.get().to_string(), "[::1]:9000");
        assert!(!given.optional, "an address asked for must be bound");
        assert_eq!(given.recent_decisions, 7);
        let localhost = config(&["--ui-listen", "localhost:9001"]).unwrap().unwrap();
        assert_eq!(localhost.listen.get().to_string(), "127.0.0.1:9001");
        for refused in ["0.0.0.0:8081", "10.1.2.3:8081", "[::]:8081"] {
            let e = config(&["--ui-listen", refused]).unwrap_err().to_string();
            assert!(e.contains("not a loopback address"), "{refused}: {e}");
            assert!(e.contains("kubectl port-forward"), "{refused}: {e}");
        }
        assert!(config(&["--ui-listen", "nonsense"]).is_err());
        assert!(config(&["--ui-recent-decisions", "0"]).is_err());
    }

    #[test]
    fn fail_open_flag_is_the_danger_fail_open_mode() {
        let args = parse(&["--policy", "p.yaml", "--insecure-http", "--fail-open"]).unwrap();
        let config = args.config(ClientOptions::default());
        assert_eq!(
            config.on_verification_error,
            OnVerificationError::DangerFailOpen
        );
    }
}
