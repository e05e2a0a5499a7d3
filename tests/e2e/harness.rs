//! A real registry for the tests: CNCF distribution 2.8 (Debian's `docker-registry`), one
//! process per [`Registry`], on 127.0.0.1 and a free port, with throw-away storage.
//!
//! ```ignore
//! let registry = Registry::start(Options::tls().with_basic_auth());
//! let client = oci_client::Client::try_from(registry.oci_client_config())?;
//! // ... push to `registry.host()` with `registry.oci_auth()` ...
//! ```
//!
//! The process is killed and reaped when the [`Registry`] is dropped, also when a test
//! panics, and the storage directory goes with it. Starting is synchronous (a few tens of
//! milliseconds), so it works the same from `#[test]` and `#[tokio::test]`.
//!
//! The binary is found through `SIGNET_REGISTRY_BIN`, then `docker-registry` on `PATH`, then
//! `/usr/bin/docker-registry`; `scripts/setup-tests.sh` installs it.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, ServerName};
use tempfile::TempDir;

/// Environment variable naming the registry binary, overriding the search on `PATH`.
pub(crate) const REGISTRY_BIN_ENV: &str = "SIGNET_REGISTRY_BIN";

/// Name of the Debian package's binary.
const REGISTRY_BIN_NAME: &str = "docker-registry";

/// Where Debian installs it, for when `PATH` is minimal.
const REGISTRY_BIN_FALLBACK: &str = "/usr/bin/docker-registry";

/// How many fresh ports to try when the one picked was taken before the registry bound it.
const PORT_ATTEMPTS: usize = 5;

/// The realm announced in `WWW-Authenticate` by the basic-auth variant.
pub(crate) const AUTH_REALM: &str = "signet-e2e";

/// Cost for the htpasswd hash. The registry checks the bcrypt hash on *every* request, so the
/// default cost (12, about 250 ms) would make each round trip slow; 4 is bcrypt's minimum.
const BCRYPT_COST: u32 = 4;

/// Installs the *ring* crypto provider as the process default for rustls (the workspace builds
/// rustls without one, see the root Cargo.toml). Idempotent; call before building any client.
pub(crate) fn install_crypto_provider() {
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// User name and password accepted by the basic-auth variant.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) username: String,
    pub(crate) password: String,
}

impl Credentials {
    pub(crate) fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl Default for Credentials {
    fn default() -> Self {
        Self::new("signet", "signet-e2e-password")
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// What kind of registry to start. The variants combine: TLS with basic auth is fine.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Require HTTP basic auth (htpasswd) with these credentials.
    pub(crate) basic_auth: Option<Credentials>,
    /// Serve HTTPS with a certificate from a throw-away CA (see [`Registry::ca_pem`]).
    pub(crate) tls: bool,
    /// How long to wait for `GET /v2/` to answer before giving up.
    pub(crate) ready_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            basic_auth: None,
            tls: false,
            ready_timeout: Duration::from_secs(10),
        }
    }
}

impl Options {
    /// Plain HTTP, anonymous push and pull.
    pub(crate) fn plain() -> Self {
        Self::default()
    }

    /// Plain HTTP with basic auth and the default [`Credentials`].
    pub(crate) fn basic_auth() -> Self {
        Self::default().with_basic_auth()
    }

    /// HTTPS with a throw-away CA, anonymous.
    pub(crate) fn tls() -> Self {
        Self::default().with_tls()
    }

    pub(crate) fn with_basic_auth(self) -> Self {
        self.with_credentials(Credentials::default())
    }

    pub(crate) fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.basic_auth = Some(credentials);
        self
    }

    pub(crate) fn with_tls(mut self) -> Self {
        self.tls = true;
        self
    }
}

/// Why a registry could not be started.
#[derive(Debug)]
pub(crate) enum StartError {
    /// No registry binary; run `scripts/setup-tests.sh`.
    BinaryNotFound { looked_in: Vec<PathBuf> },
    /// Preparing the directory, config, certificates or process failed.
    Io { what: String, source: io::Error },
    /// Generating the CA or server certificate failed.
    Certificate(rcgen::Error),
    /// Hashing the htpasswd password failed.
    Htpasswd(bcrypt::BcryptError),
    /// Another process took the port between our probe and the registry's bind.
    PortTaken { port: u16, stderr: String },
    /// The registry exited before it was ready.
    Exited { status: ExitStatus, stderr: String },
    /// The registry kept running but never answered `GET /v2/` as expected.
    NotReady {
        waited: Duration,
        last_probe: String,
        stderr: String,
    },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BinaryNotFound { looked_in } => write!(
                f,
                "registry binary not found (set {REGISTRY_BIN_ENV}, or run `bash \
                 scripts/setup-tests.sh` to install Debian's `docker-registry`); looked in: {}",
                looked_in
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::Io { what, source } => write!(f, "{what}: {source}"),
            Self::Certificate(e) => write!(f, "generating test certificates: {e}"),
            Self::Htpasswd(e) => write!(f, "hashing the htpasswd password: {e}"),
            Self::PortTaken { port, stderr } => {
                write!(f, "port {port} was taken; registry stderr:\n{stderr}")
            }
            Self::Exited { status, stderr } => {
                write!(
                    f,
                    "registry exited before it was ready ({status}); stderr:\n{stderr}"
                )
            }
            Self::NotReady {
                waited,
                last_probe,
                stderr,
            } => write!(
                f,
                "registry not ready after {waited:?} (last probe of GET /v2/: {last_probe}); \
                 stderr:\n{stderr}"
            ),
        }
    }
}

impl std::error::Error for StartError {}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> StartError {
    let what = what.into();
    move |source| StartError::Io { what, source }
}

/// The throw-away CA of the TLS variant.
struct Tls {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    ca_path: PathBuf,
}

/// A running registry. Dropping it kills the process and deletes its storage.
pub(crate) struct Registry {
    // Field order matters: the process is killed in `Drop::drop`, before `dir` is removed.
    child: Child,
    addr: SocketAddr,
    credentials: Option<Credentials>,
    tls: Option<Tls>,
    storage: PathBuf,
    log: PathBuf,
    dir: TempDir,
}

impl Registry {
    /// Starts a registry, panicking with the reason (and the registry's stderr) if it cannot.
    pub(crate) fn start(options: Options) -> Self {
        match Self::try_start(options) {
            Ok(registry) => registry,
            Err(e) => panic!("cannot start the test registry: {e}"),
        }
    }

    /// Starts a registry.
    pub(crate) fn try_start(options: Options) -> Result<Self, StartError> {
        install_crypto_provider();
        let bin = find_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("signet-registry-")
            .tempdir()
            .map_err(io_err("creating the registry's temporary directory"))?;
        let storage = dir.path().join("storage");
        fs::create_dir(&storage).map_err(io_err("creating the storage directory"))?;

        let htpasswd = match &options.basic_auth {
            Some(credentials) => Some(write_htpasswd(dir.path(), credentials)?),
            None => None,
        };
        let (tls, server_files) = if options.tls {
            let (tls, files) = write_tls_files(dir.path())?;
            (Some(tls), Some(files))
        } else {
            (None, None)
        };

        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let config = ConfigYaml {
                port,
                storage: &storage,
                htpasswd: htpasswd.as_deref(),
                tls: server_files.as_ref(),
            };
            match spawn(&bin, dir.path(), &config, &options, tls.as_ref())? {
                Spawned::Ready(child) => {
                    return Ok(Self {
                        child: child.into_inner(),
                        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                        credentials: options.basic_auth,
                        tls,
                        log: dir.path().join(LOG_FILE),
                        storage,
                        dir,
                    });
                }
                Spawned::PortTaken(e) => last = Some(e),
            }
        }
        // PORT_ATTEMPTS > 0, so `last` is set; the fallback is never used.
        Err(last.unwrap_or(StartError::PortTaken {
            port: 0,
            stderr: String::new(),
        }))
    }

    /// `127.0.0.1:PORT`, the registry part of an image reference.
    pub(crate) fn host(&self) -> String {
        self.addr.to_string()
    }

    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`, without a trailing slash.
    pub(crate) fn url(&self) -> String {
        format!("{}://{}", self.scheme(), self.addr)
    }

    pub(crate) fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// PEM of the CA that signed the server certificate (TLS variant only).
    pub(crate) fn ca_pem(&self) -> Option<&[u8]> {
        self.tls.as_ref().map(|t| t.ca_pem.as_bytes())
    }

    /// Path of a file holding [`Registry::ca_pem`], for the CLI's `--ca-file` style options.
    pub(crate) fn ca_pem_path(&self) -> Option<&Path> {
        self.tls.as_ref().map(|t| t.ca_path.as_path())
    }

    /// The credentials the registry accepts (basic-auth variant only).
    pub(crate) fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// The registry's `storage.filesystem.rootdirectory`.
    pub(crate) fn storage_dir(&self) -> &Path {
        &self.storage
    }

    /// The temporary directory holding config, certificates, htpasswd, log and storage.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Process id of the registry.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the registry has written to stderr so far (level error and above).
    pub(crate) fn log(&self) -> String {
        read_log(&self.log)
    }

    /// The matching oci-client authentication: basic with [`Registry::credentials`] or
    /// anonymous.
    pub(crate) fn oci_auth(&self) -> RegistryAuth {
        match &self.credentials {
            Some(c) => RegistryAuth::Basic(c.username.clone(), c.password.clone()),
            None => RegistryAuth::Anonymous,
        }
    }

    /// An oci-client configuration that reaches this registry: plain HTTP, or HTTPS trusting
    /// the throw-away CA. Build the client with `Client::try_from`, not `Client::new`, which
    /// silently falls back to a default configuration if this one is rejected.
    pub(crate) fn oci_client_config(&self) -> ClientConfig {
        match &self.tls {
            Some(tls) => ClientConfig {
                protocol: ClientProtocol::Https,
                extra_root_certificates: vec![Certificate {
                    encoding: CertificateEncoding::Pem,
                    data: tls.ca_pem.clone().into_bytes(),
                }],
                ..ClientConfig::default()
            },
            None => ClientConfig {
                protocol: ClientProtocol::Http,
                ..ClientConfig::default()
            },
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Errors mean the process is already gone, which is the goal.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("url", &self.url())
            .field("pid", &self.child.id())
            .field("dir", &self.dir.path())
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// Kills and reaps a child unless it is handed over with [`ChildGuard::into_inner`], so that a
/// registry that fails to become ready is not left behind.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn get(&mut self) -> &mut Child {
        // Only `into_inner` takes the child, and it consumes the guard.
        self.0.as_mut().unwrap_or_else(|| unreachable!())
    }

    fn into_inner(mut self) -> Child {
        self.0.take().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn find_binary() -> Result<PathBuf, StartError> {
    if let Some(bin) = std::env::var_os(REGISTRY_BIN_ENV) {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(StartError::BinaryNotFound {
                looked_in: vec![bin],
            })
        };
    }
    let mut looked_in: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(REGISTRY_BIN_NAME))
                .collect()
        })
        .unwrap_or_default();
    looked_in.push(PathBuf::from(REGISTRY_BIN_FALLBACK));
    match looked_in.iter().find(|p| p.is_file()) {
        Some(bin) => Ok(bin.clone()),
        None => Err(StartError::BinaryNotFound { looked_in }),
    }
}

/// A port that was free a moment ago. The registry binds it itself, so another process can
/// take it in between; [`Registry::try_start`] retries with a new one when that happens.
fn free_port() -> Result<u16, StartError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(io_err("binding 127.0.0.1:0 to find a free port"))?;
    let port = listener
        .local_addr()
        .map_err(io_err("reading the free port"))?
        .port();
    Ok(port)
}

fn write_htpasswd(dir: &Path, credentials: &Credentials) -> Result<PathBuf, StartError> {
    // distribution 2.8 accepts only bcrypt entries in htpasswd files.
    let hash = bcrypt::hash(&credentials.password, BCRYPT_COST).map_err(StartError::Htpasswd)?;
    let path = dir.join("htpasswd");
    fs::write(&path, format!("{}:{hash}\n", credentials.username))
        .map_err(io_err("writing htpasswd"))?;
    Ok(path)
}

struct ServerFiles {
    cert: PathBuf,
    key: PathBuf,
}

/// Paths of a throw-away CA and a server certificate and key for 127.0.0.1 and localhost
/// signed by it, written to `dir` (for servers other than the registry, e.g. `signet serve`).
pub(crate) fn write_server_tls(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (tls, files) = write_tls_files(dir).expect("writing TLS files");
    (tls.ca_path, files.cert, files.key)
}

/// A CA and a server certificate for 127.0.0.1 and localhost signed by it, written to `dir`.
fn write_tls_files(dir: &Path) -> Result<(Tls, ServerFiles), StartError> {
    let mut ca_params = CertificateParams::new(Vec::new()).map_err(StartError::Certificate)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "signet e2e throw-away CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().map_err(StartError::Certificate)?;
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(StartError::Certificate)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut server_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .map_err(StartError::Certificate)?;
    server_params
        .distinguished_name
        .push(DnType::CommonName, "signet e2e registry");
    server_params.use_authority_key_identifier_extension = true;
    let server_key = KeyPair::generate().map_err(StartError::Certificate)?;
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .map_err(StartError::Certificate)?;

    let ca_path = dir.join("ca.pem");
    let cert = dir.join("server.pem");
    let key = dir.join("server-key.pem");
    let ca_pem = ca_cert.pem();
    fs::write(&ca_path, &ca_pem).map_err(io_err("writing ca.pem"))?;
    fs::write(&cert, server_cert.pem()).map_err(io_err("writing server.pem"))?;
    fs::write(&key, server_key.serialize_pem()).map_err(io_err("writing server-key.pem"))?;
    let tls = Tls {
        ca_pem,
        ca_der: ca_cert.der().clone(),
        ca_path,
    };
    Ok((tls, ServerFiles { cert, key }))
}

struct ConfigYaml<'a> {
    port: u16,
    storage: &'a Path,
    htpasswd: Option<&'a Path>,
    tls: Option<&'a ServerFiles>,
}

impl ConfigYaml<'_> {
    /// The registry's configuration; see /usr/share/doc/docker-registry/configuration.md.gz.
    /// Paths are quoted as YAML single-quoted scalars, so a temp dir with odd characters works.
    fn render(&self) -> String {
        let mut yaml = format!(
            "version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
",
            storage = yaml_str(self.storage),
            port = self.port,
        );
        if let Some(tls) = self.tls {
            yaml.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                yaml_str(&tls.cert),
                yaml_str(&tls.key)
            ));
        }
        if let Some(htpasswd) = self.htpasswd {
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: {AUTH_REALM}\n    path: {}\n",
                yaml_str(htpasswd)
            ));
        }
        yaml
    }
}

fn yaml_str(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "''"))
}

const LOG_FILE: &str = "registry.log";

enum Spawned {
    Ready(ChildGuard),
    /// Retry with another port; the error is kept for the report if all attempts fail.
    PortTaken(StartError),
}

fn spawn(
    bin: &Path,
    dir: &Path,
    config: &ConfigYaml<'_>,
    options: &Options,
    tls: Option<&Tls>,
) -> Result<Spawned, StartError> {
    let config_path = dir.join("config.yml");
    fs::write(&config_path, config.render()).map_err(io_err("writing config.yml"))?;
    // stderr goes to a file rather than a pipe: nobody drains a pipe while the tests run, and
    // a full pipe would block the registry.
    let log_path = dir.join(LOG_FILE);
    let log = File::create(&log_path).map_err(io_err("creating registry.log"))?;

    let mut command = Command::new(bin);
    command
        .arg("serve")
        .arg(&config_path)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    // distribution lets REGISTRY_* variables override any config key (REGISTRY_HTTP_ADDR,
    // REGISTRY_AUTH, ...); keep the caller's environment from changing the test registry.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("REGISTRY_") {
            command.env_remove::<OsString>(key);
        }
    }
    let mut child = ChildGuard(Some(command.spawn().map_err(io_err(format!(
        "starting {} serve {}",
        bin.display(),
        config_path.display()
    )))?));

    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, config.port));
    let host = addr.to_string();
    let probe_tls = match tls {
        Some(tls) => Some(probe_tls_config(tls)?),
        None => None,
    };
    let started = Instant::now();
    loop {
        if let Some(status) = child
            .get()
            .try_wait()
            .map_err(io_err("waiting for the registry"))?
        {
            let stderr = read_log(&log_path);
            // Go: "listen tcp 127.0.0.1:PORT: bind: address already in use"
            return if stderr.contains("address already in use") {
                Ok(Spawned::PortTaken(StartError::PortTaken {
                    port: config.port,
                    stderr,
                }))
            } else {
                Err(StartError::Exited { status, stderr })
            };
        }
        let last_probe = match probe(addr, &host, probe_tls.as_ref()) {
            Ok(status) if status == 200 || (status == 401 && options.basic_auth.is_some()) => {
                return Ok(Spawned::Ready(child));
            }
            Ok(status) => format!("HTTP {status}"),
            Err(e) => e.to_string(),
        };
        if started.elapsed() >= options.ready_timeout {
            return Err(StartError::NotReady {
                waited: started.elapsed(),
                last_probe,
                stderr: read_log(&log_path),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_log(path: &Path) -> String {
    match fs::read(path) {
        Ok(bytes) if bytes.is_empty() => "(empty)".to_owned(),
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

fn probe_tls_config(tls: &Tls) -> Result<Arc<rustls::ClientConfig>, StartError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(tls.ca_der.clone()).map_err(|e| StartError::Io {
        what: "adding the test CA to a root store".to_owned(),
        source: io::Error::other(e),
    })?;
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// `GET /v2/` over a fresh connection; returns the status code if the answer comes from a
/// distribution registry (it sets `Docker-Distribution-Api-Version: registry/2.0`), so that
/// another server that grabbed the port is not mistaken for ours.
fn probe(addr: SocketAddr, host: &str, tls: Option<&Arc<rustls::ClientConfig>>) -> io::Result<u16> {
    const TIMEOUT: Duration = Duration::from_secs(1);
    let tcp = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    tcp.set_read_timeout(Some(TIMEOUT))?;
    tcp.set_write_timeout(Some(TIMEOUT))?;
    match tls {
        Some(config) => {
            let name = ServerName::IpAddress(addr.ip().into());
            let conn =
                rustls::ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
            probe_over(rustls::StreamOwned::new(conn, tcp), host)
        }
        None => probe_over(tcp, host),
    }
}

fn probe_over(mut stream: impl Read + Write, host: &str) -> io::Result<u16> {
    write!(
        stream,
        "GET /v2/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    stream.flush()?;
    // Read the head only: the body and the connection close do not matter.
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| io::Error::other(format!("not an HTTP response: {head:?}")))?;
    let is_registry = head.lines().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.eq_ignore_ascii_case("docker-distribution-api-version")
                && value.trim() == "registry/2.0"
        })
    });
    if is_registry {
        Ok(status)
    } else {
        Err(io::Error::other(format!(
            "HTTP {status} without Docker-Distribution-Api-Version: registry/2.0"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The retry path: a port held by someone else is reported as taken, not as a failure.
    #[test]
    fn taken_port_is_reported_for_retry() {
        let bin = find_binary().unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        let holder = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = holder.local_addr().unwrap().port();
        let config = ConfigYaml {
            port,
            storage: &storage,
            htpasswd: None,
            tls: None,
        };
        match spawn(&bin, dir.path(), &config, &Options::plain(), None) {
            Ok(Spawned::PortTaken(StartError::PortTaken { port: p, .. })) => assert_eq!(p, port),
            Ok(Spawned::PortTaken(e)) => panic!("unexpected error kind: {e}"),
            Ok(Spawned::Ready(_)) => panic!("registry started on a port that was taken"),
            Err(e) => panic!("expected PortTaken, got: {e}"),
        }
    }

    /// Dropping the handle stops the process and removes config and storage.
    #[test]
    fn drop_kills_the_process_and_removes_the_storage() {
        let registry = Registry::start(Options::plain());
        let pid = registry.pid();
        let dir = registry.dir().to_owned();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        drop(registry);
        // Reaped by `wait`, so the pid is gone rather than a zombie.
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} still exists"
        );
        assert!(!dir.exists(), "{} still exists", dir.display());
    }

    #[test]
    fn missing_binary_names_the_setup_script() {
        let e = StartError::BinaryNotFound {
            looked_in: vec![PathBuf::from(REGISTRY_BIN_FALLBACK)],
        };
        assert!(e.to_string().contains("scripts/setup-tests.sh"), "{e}");
    }
}
