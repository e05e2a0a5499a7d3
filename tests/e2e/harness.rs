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
//!
//! Built with the `testcontainers` feature and given `SIGNET_TEST_REGISTRY_IMAGE`, the harness
//! starts each registry from that image through a Docker engine instead (zot, distribution 3,
//! ...), with the same options, address and clean-up, so that the same suite runs against the
//! registries users deploy; see the `container` module and `scripts/test-containers.sh`.

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

/// Environment variable naming a registry image to run through testcontainers instead of the
/// binary (feature `testcontainers` only), e.g. `ghcr.io/project-zot/zot-linux-amd64:latest`.
pub(crate) const REGISTRY_IMAGE_ENV: &str = "SIGNET_TEST_REGISTRY_IMAGE";

/// Environment variable naming the kind of registry in [`REGISTRY_IMAGE_ENV`] (`distribution`
/// or `zot`), which decides its config; inferred from the image name when unset.
pub(crate) const REGISTRY_KIND_ENV: &str = "SIGNET_TEST_REGISTRY_KIND";

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
    /// [`REGISTRY_IMAGE_ENV`] is set, but the suite was built without the `testcontainers`
    /// feature: refuse rather than silently test the Debian registry instead.
    #[cfg(not(feature = "testcontainers"))]
    ImageWithoutFeature { image: String },
    /// [`REGISTRY_KIND_ENV`] names no registry kind the harness knows.
    #[cfg(feature = "testcontainers")]
    UnknownKind { kind: String },
    /// Talking to the Docker engine failed.
    #[cfg(feature = "testcontainers")]
    Container {
        what: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The registry's container stopped before it was ready.
    #[cfg(feature = "testcontainers")]
    ContainerExited { exit_code: Option<i64>, log: String },
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
            #[cfg(not(feature = "testcontainers"))]
            Self::ImageWithoutFeature { image } => write!(
                f,
                "{REGISTRY_IMAGE_ENV}={image} needs the suite built with `--features \
                 testcontainers`; unset it to test against Debian's registry"
            ),
            #[cfg(feature = "testcontainers")]
            Self::UnknownKind { kind } => write!(
                f,
                "{REGISTRY_KIND_ENV}={kind} is not a registry kind the harness knows (one of: {})",
                container::Kind::NAMES
            ),
            #[cfg(feature = "testcontainers")]
            Self::Container { what, source } => write!(f, "{what}: {source}"),
            #[cfg(feature = "testcontainers")]
            Self::ContainerExited { exit_code, log } => write!(
                f,
                "registry container exited before it was ready (exit code {}); output:\n{log}",
                exit_code.map_or_else(|| "unknown".to_owned(), |c| c.to_string())
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
    process: Process,
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
        let launcher = Launcher::from_env()?;
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
            match launcher.spawn(dir.path(), &config, &options, tls.as_ref())? {
                Spawned::Ready(process) => {
                    return Ok(Self {
                        process,
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

    /// Process id of the registry (in a container: of its main process, as the host sees it).
    pub(crate) fn pid(&self) -> u32 {
        self.process.id()
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
        self.process.stop();
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("url", &self.url())
            .field("pid", &self.pid())
            .field("dir", &self.dir.path())
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// How registries are started: the binary, or (feature `testcontainers`) an image.
enum Launcher {
    Binary(PathBuf),
    #[cfg(feature = "testcontainers")]
    Image(container::Image),
}

impl Launcher {
    fn from_env() -> Result<Self, StartError> {
        #[cfg(feature = "testcontainers")]
        if let Some(image) = container::Image::from_env()? {
            return Ok(Self::Image(image));
        }
        #[cfg(not(feature = "testcontainers"))]
        if let Some(image) = std::env::var_os(REGISTRY_IMAGE_ENV).filter(|v| !v.is_empty()) {
            return Err(StartError::ImageWithoutFeature {
                image: image.to_string_lossy().into_owned(),
            });
        }
        find_binary().map(Self::Binary)
    }

    fn spawn(
        &self,
        dir: &Path,
        config: &ConfigYaml<'_>,
        options: &Options,
        tls: Option<&Tls>,
    ) -> Result<Spawned, StartError> {
        match self {
            Self::Binary(bin) => spawn(bin, dir, config, options, tls),
            #[cfg(feature = "testcontainers")]
            Self::Image(image) => container::spawn(image, dir, config, options, tls),
        }
    }
}

/// The running registry: a child process, or a container.
enum Process {
    Child(Child),
    #[cfg(feature = "testcontainers")]
    Container(container::Running),
}

impl Process {
    fn id(&self) -> u32 {
        match self {
            Self::Child(child) => child.id(),
            #[cfg(feature = "testcontainers")]
            Self::Container(container) => container.pid(),
        }
    }

    fn stop(&mut self) {
        match self {
            Self::Child(child) => {
                // Errors mean the process is already gone, which is the goal.
                let _ = child.kill();
                let _ = child.wait();
            }
            #[cfg(feature = "testcontainers")]
            Self::Container(container) => container.stop(),
        }
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
    Ready(Process),
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
        let last_probe = match probe(addr, &host, probe_tls.as_ref(), None) {
            Ok(status) if status == 200 || (status == 401 && options.basic_auth.is_some()) => {
                return Ok(Spawned::Ready(Process::Child(child.into_inner())));
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

/// `GET /v2/` over a fresh connection, with `authorization` as the `Authorization` header if
/// given; returns the status code if the answer comes from a distribution registry (it sets
/// `Docker-Distribution-Api-Version: registry/2.0`), so that another server that grabbed the
/// port is not mistaken for ours.
fn probe(
    addr: SocketAddr,
    host: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
    authorization: Option<&str>,
) -> io::Result<u16> {
    const TIMEOUT: Duration = Duration::from_secs(1);
    let tcp = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    tcp.set_read_timeout(Some(TIMEOUT))?;
    tcp.set_write_timeout(Some(TIMEOUT))?;
    match tls {
        Some(config) => {
            let name = ServerName::IpAddress(addr.ip().into());
            let conn =
                rustls::ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
            probe_over(rustls::StreamOwned::new(conn, tcp), host, authorization)
        }
        None => probe_over(tcp, host, authorization),
    }
}

fn probe_over(
    mut stream: impl Read + Write,
    host: &str,
    authorization: Option<&str>,
) -> io::Result<u16> {
    match authorization {
        Some(authorization) => write!(
            stream,
            "GET /v2/ HTTP/1.1\r\nHost: {host}\r\nAuthorization: {authorization}\r\n\
             Connection: close\r\n\r\n"
        )?,
        None => write!(
            stream,
            "GET /v2/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )?,
    }
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

/// Registries from a container image, through testcontainers (feature `testcontainers`).
///
/// The container shares the host's network, so the registry binds 127.0.0.1 and the free port
/// itself, exactly like the process, and the tests see no difference (a Docker engine without a
/// bridge, as in scripts/test-containers.sh, is enough). The registry's temporary directory is
/// bind-mounted at the same path, so the config, certificate, htpasswd and storage paths mean the
/// same inside and out; the config is also mounted where the image expects it. The container
/// runs as the directory's owner, so that the test can delete what the registry wrote.
#[cfg(feature = "testcontainers")]
mod container {
    use std::fs::{self, File};
    use std::future::Future;
    use std::io::Write;
    use std::net::{Ipv4Addr, SocketAddr};
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    use base64::Engine as _;
    use testcontainers::bollard::Docker;
    use testcontainers::core::logs::LogFrame;
    use testcontainers::core::{AccessMode, Mount};
    use testcontainers::runners::AsyncRunner;
    use testcontainers::{ContainerAsync, GenericImage, ImageExt};

    use super::{
        AUTH_REALM, ConfigYaml, Credentials, LOG_FILE, Options, Process, REGISTRY_IMAGE_ENV,
        REGISTRY_KIND_ENV, Spawned, StartError, Tls, io_err, probe, probe_tls_config, read_log,
    };

    /// The registry implementations whose config the harness can write.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) enum Kind {
        /// CNCF distribution (`registry:2`, `registry:3`, the image of
        /// scripts/test-containers.sh): the YAML config of the process, `registry serve CONFIG`.
        Distribution,
        /// zot: its own JSON config, `zot serve CONFIG`.
        Zot,
    }

    impl Kind {
        pub(super) const NAMES: &'static str = "distribution, zot";

        fn parse(name: &str) -> Option<Self> {
            match name.to_ascii_lowercase().as_str() {
                "distribution" | "registry" => Some(Self::Distribution),
                "zot" => Some(Self::Zot),
                _ => None,
            }
        }

        /// zot when the image's name says so; distribution otherwise.
        fn infer(repository: &str) -> Self {
            let name = repository.rsplit('/').next().unwrap_or(repository);
            if name.to_ascii_lowercase().contains("zot") {
                Self::Zot
            } else {
                Self::Distribution
            }
        }

        /// Where the official images read their config (distribution's and zot's Dockerfiles).
        /// The command names it explicitly too, so an image with another default still works.
        fn config_target(self) -> &'static str {
            match self {
                Self::Distribution => "/etc/docker/registry/config.yml",
                Self::Zot => "/etc/zot/config.json",
            }
        }

        fn config_file(self) -> &'static str {
            match self {
                Self::Distribution => "config.yml",
                Self::Zot => "config.json",
            }
        }

        /// The command after the image's entrypoint (`registry`, or the official distribution
        /// image's entrypoint.sh, which hands `serve ...` to `registry`; `zot`).
        fn command(self) -> [&'static str; 2] {
            ["serve", self.config_target()]
        }

        fn render(self, config: &ConfigYaml<'_>) -> String {
            match self {
                Self::Distribution => config.render(),
                Self::Zot => zot_config(config),
            }
        }
    }

    /// zot's configuration for the same settings; see zot's examples/README.md.
    pub(super) fn zot_config(config: &ConfigYaml<'_>) -> String {
        let path = |p: &Path| p.display().to_string();
        let mut http = serde_json::json!({
            "address": Ipv4Addr::LOCALHOST.to_string(),
            "port": config.port.to_string(),
        });
        if let Some(tls) = config.tls {
            http["tls"] = serde_json::json!({ "cert": path(&tls.cert), "key": path(&tls.key) });
        }
        if let Some(htpasswd) = config.htpasswd {
            http["realm"] = AUTH_REALM.into();
            http["auth"] = serde_json::json!({ "htpasswd": { "path": path(htpasswd) } });
        }
        serde_json::json!({
            "distSpecVersion": "1.1.1",
            // Plain storage like distribution's: no background garbage collection (it could
            // remove what a test is about to read) and no hard-link deduplication.
            "storage": { "rootDirectory": path(config.storage), "gc": false, "dedupe": false },
            "http": http,
            "log": { "level": "error" },
        })
        .to_string()
    }

    /// The image named by [`REGISTRY_IMAGE_ENV`], and its kind.
    #[derive(Debug, Clone)]
    pub(super) struct Image {
        reference: String,
        name: String,
        tag: String,
        pub(super) kind: Kind,
    }

    impl Image {
        /// `None` when [`REGISTRY_IMAGE_ENV`] is unset or empty: the binary is used then.
        pub(super) fn from_env() -> Result<Option<Self>, StartError> {
            let reference = match std::env::var(REGISTRY_IMAGE_ENV) {
                Ok(reference) if !reference.trim().is_empty() => reference.trim().to_owned(),
                Ok(_) | Err(std::env::VarError::NotPresent) => return Ok(None),
                Err(std::env::VarError::NotUnicode(value)) => {
                    return Err(StartError::Container {
                        what: format!("reading {REGISTRY_IMAGE_ENV}"),
                        source: format!("not UTF-8: {}", value.to_string_lossy()).into(),
                    });
                }
            };
            let kind = match std::env::var(REGISTRY_KIND_ENV) {
                Ok(kind) if !kind.trim().is_empty() => {
                    Some(Kind::parse(kind.trim()).ok_or(StartError::UnknownKind { kind })?)
                }
                _ => None,
            };
            Ok(Some(Self::new(reference, kind)))
        }

        pub(super) fn new(reference: String, kind: Option<Kind>) -> Self {
            let (name, tag) = split_reference(&reference);
            let kind = kind.unwrap_or_else(|| Kind::infer(&name));
            Self {
                reference,
                name,
                tag,
                kind,
            }
        }
    }

    /// Name and tag for testcontainers, which joins them with `:`. A digest goes in as name
    /// `repository@sha256` and tag `<hex>`, which joins back into `repository@sha256:<hex>`.
    pub(super) fn split_reference(reference: &str) -> (String, String) {
        if let Some((repository, digest)) = reference.split_once('@')
            && let Some((algorithm, hex)) = digest.split_once(':')
        {
            return (format!("{repository}@{algorithm}"), hex.to_owned());
        }
        // A `:` before the last `/` belongs to a registry's port, not to a tag.
        let last = reference.rfind('/').map_or(0, |slash| slash + 1);
        match reference[last..].rfind(':') {
            Some(colon) => (
                reference[..last + colon].to_owned(),
                reference[last + colon + 1..].to_owned(),
            ),
            None => (reference.to_owned(), "latest".to_owned()),
        }
    }

    /// One runtime for every Docker call of the test binary. The harness is synchronous and is
    /// called from `#[test]` and `#[tokio::test]` alike; blocking on a runtime from within
    /// another panics, so the futures run here and the caller waits on a channel instead.
    fn runtime() -> &'static tokio::runtime::Runtime {
        static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
        RUNTIME.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("e2e-registry-containers")
                .enable_all()
                .build()
                .expect("building the runtime for Docker calls")
        })
    }

    fn block_on<F>(future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        runtime().spawn(async move {
            let _ = tx.send(future.await);
        });
        rx.recv()
            .unwrap_or_else(|_| panic!("a Docker call of the test harness panicked"))
    }

    fn container_err<E>(what: impl Into<String>) -> impl FnOnce(E) -> StartError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let what = what.into();
        move |source| StartError::Container {
            what,
            source: Box::new(source),
        }
    }

    /// A registry container; removed (killed, then deleted) when dropped.
    pub(super) struct Running {
        // Boxed: a container handle is large, and `Process` holds this or a `Child`.
        container: Option<Box<ContainerAsync<GenericImage>>>,
        pid: u32,
    }

    impl Running {
        pub(super) fn pid(&self) -> u32 {
            self.pid
        }

        /// Everything the container wrote to stdout and stderr, for an error message.
        fn output(&mut self) -> String {
            let Some(container) = self.container.take() else {
                return "(no container)".to_owned();
            };
            let (output, container) =
                block_on(async move { (output(&container).await, container) });
            self.container = Some(container);
            output
        }

        pub(super) fn stop(&mut self) {
            if let Some(container) = self.container.take() {
                // Forced removal: SIGKILL, wait for the exit, delete the container. An error
                // means the engine already lost it; scripts/test-containers.sh sweeps the rest.
                // Never dropped outside the runtime: testcontainers' own drop needs one.
                let _ = block_on((*container).rm());
            }
        }
    }

    impl Drop for Running {
        fn drop(&mut self) {
            self.stop();
        }
    }

    /// What the engine says of the container.
    struct State {
        running: bool,
        pid: u32,
        exit_code: Option<i64>,
    }

    async fn inspect(docker: Docker, id: String) -> Result<State, StartError> {
        let info = docker
            .inspect_container(&id, None)
            .await
            .map_err(container_err(format!("inspecting container {id}")))?;
        let state = info.state.unwrap_or_default();
        Ok(State {
            running: state.running.unwrap_or(false),
            pid: state
                .pid
                .and_then(|pid| u32::try_from(pid).ok())
                .unwrap_or(0),
            exit_code: state.exit_code,
        })
    }

    async fn output(container: &ContainerAsync<GenericImage>) -> String {
        let mut out = Vec::new();
        for part in [
            container.stdout_to_vec().await,
            container.stderr_to_vec().await,
        ] {
            match part {
                Ok(bytes) => out.extend(bytes),
                Err(e) => out.extend(format!("(cannot read the container's log: {e})\n").bytes()),
            }
        }
        if out.is_empty() {
            "(empty)".to_owned()
        } else {
            String::from_utf8_lossy(&out).into_owned()
        }
    }

    fn basic_authorization(credentials: &Credentials) -> String {
        let pair = format!("{}:{}", credentials.username, credentials.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }

    fn utf8<'a>(path: &'a Path, what: &str) -> Result<&'a str, StartError> {
        path.to_str().ok_or_else(|| StartError::Container {
            what: format!("mounting {what} into the container"),
            source: format!("path is not UTF-8: {}", path.display()).into(),
        })
    }

    /// The counterpart of [`super::spawn`] for an image.
    pub(super) fn spawn(
        image: &Image,
        dir: &Path,
        config: &ConfigYaml<'_>,
        options: &Options,
        tls: Option<&Tls>,
    ) -> Result<Spawned, StartError> {
        let kind = image.kind;
        let config_path = dir.join(kind.config_file());
        fs::write(&config_path, kind.render(config))
            .map_err(io_err(format!("writing {}", kind.config_file())))?;
        // The container's output goes to the same file as the process's stderr, so that
        // `Registry::log` works the same.
        let log_path = dir.join(LOG_FILE);
        let log = File::create(&log_path).map_err(io_err("creating registry.log"))?;
        let owner =
            fs::metadata(dir).map_err(io_err("reading the owner of the registry's directory"))?;
        let dir_str = utf8(dir, "the registry's directory")?;
        let config_str = utf8(&config_path, "the registry's config")?;

        let request = GenericImage::new(image.name.clone(), image.tag.clone())
            .with_cmd(kind.command())
            .with_network("host")
            .with_user(format!("{}:{}", owner.uid(), owner.gid()))
            .with_mount(Mount::bind_mount(dir_str, dir_str))
            .with_mount(
                Mount::bind_mount(config_str, kind.config_target())
                    .with_access_mode(AccessMode::ReadOnly),
            )
            .with_log_consumer(move |frame: &LogFrame| {
                let _ = (&log).write_all(frame.bytes());
            });
        let container = block_on(request.start()).map_err(container_err(format!(
            "starting a container from {} (is the Docker engine of DOCKER_HOST running, and the \
             image there?)",
            image.reference
        )))?;
        let id = container.id().to_owned();
        // From here on, dropping `running` removes the container, also on error.
        let mut running = Running {
            container: Some(Box::new(container)),
            pid: 0,
        };
        let docker = Docker::connect_with_defaults().map_err(container_err(
            "connecting to the Docker engine of DOCKER_HOST",
        ))?;

        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, config.port));
        let host = addr.to_string();
        let probe_tls = match tls {
            Some(tls) => Some(probe_tls_config(tls)?),
            None => None,
        };
        // Authenticated, so that a registry that does not send the API version header with
        // its 401 (zot) is recognised too.
        let authorization = options.basic_auth.as_ref().map(basic_authorization);
        let started = Instant::now();
        loop {
            let state = block_on(inspect(docker.clone(), id.clone()))?;
            if !state.running {
                let log = running.output();
                // Go: "listen tcp 127.0.0.1:PORT: bind: address already in use"
                return if log.contains("address already in use") {
                    Ok(Spawned::PortTaken(StartError::PortTaken {
                        port: config.port,
                        stderr: log,
                    }))
                } else {
                    Err(StartError::ContainerExited {
                        exit_code: state.exit_code,
                        log,
                    })
                };
            }
            let last_probe = match probe(addr, &host, probe_tls.as_ref(), authorization.as_deref())
            {
                Ok(status) if status == 200 || (status == 401 && options.basic_auth.is_some()) => {
                    running.pid = state.pid;
                    return Ok(Spawned::Ready(Process::Container(running)));
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

    #[cfg(feature = "testcontainers")]
    mod container {
        use super::super::container::{Image, Kind, split_reference, zot_config};
        use super::super::{ConfigYaml, ServerFiles};
        use std::path::{Path, PathBuf};

        #[test]
        fn image_references_split_into_name_and_tag() {
            let split = |r: &str| split_reference(r);
            assert_eq!(split("registry:3"), ("registry".into(), "3".into()));
            assert_eq!(split("zot"), ("zot".into(), "latest".into()));
            assert_eq!(
                split("localhost:5000/signet/registry"),
                ("localhost:5000/signet/registry".into(), "latest".into())
            );
            assert_eq!(
                split("ghcr.io/project-zot/zot-linux-amd64:v2.1.0"),
                (
                    "ghcr.io/project-zot/zot-linux-amd64".into(),
                    "v2.1.0".into()
                )
            );
            assert_eq!(
                split("registry@sha256:0123abcd"),
                ("registry@sha256".into(), "0123abcd".into())
            );
        }

        #[test]
        fn kind_is_inferred_from_the_image_name_unless_given() {
            let kind = |r: &str, k| Image::new(r.to_owned(), k).kind;
            assert_eq!(
                kind("ghcr.io/project-zot/zot-linux-amd64:latest", None),
                Kind::Zot
            );
            assert_eq!(kind("ghcr.io/project-zot/zot-minimal:v2", None), Kind::Zot);
            assert_eq!(kind("registry:3", None), Kind::Distribution);
            assert_eq!(kind("signet-test/registry:local", None), Kind::Distribution);
            // Only the image's own name counts, not the organisation above it.
            assert_eq!(
                kind("zot.example/mirror/registry:2", None),
                Kind::Distribution
            );
            assert_eq!(kind("registry:2", Some(Kind::Zot)), Kind::Zot);
        }

        /// The retry path of containers: a registry that exits because the port was taken is
        /// reported as such, and its container is gone. Runs only against an image.
        #[test]
        fn taken_port_is_reported_for_retry_by_a_container() {
            use super::super::container::spawn;
            use super::super::{Options, Spawned, StartError};
            use std::net::{Ipv4Addr, TcpListener};

            let Some(image) = Image::from_env().unwrap_or_else(|e| panic!("{e}")) else {
                return;
            };
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
            match spawn(&image, dir.path(), &config, &Options::plain(), None) {
                Ok(Spawned::PortTaken(StartError::PortTaken { port: p, .. })) => {
                    assert_eq!(p, port)
                }
                Ok(Spawned::PortTaken(e)) => panic!("unexpected error kind: {e}"),
                Ok(Spawned::Ready(_)) => panic!("registry started on a port that was taken"),
                Err(e) => panic!("expected PortTaken, got: {e}"),
            }
        }

        /// No zot image can be pulled here, so at least its config is checked: the settings of
        /// the distribution config, in zot's keys.
        #[test]
        fn zot_config_carries_port_storage_tls_and_htpasswd() {
            let tls = ServerFiles {
                cert: PathBuf::from("/tmp/r/server.pem"),
                key: PathBuf::from("/tmp/r/server-key.pem"),
            };
            let config = ConfigYaml {
                port: 40123,
                storage: Path::new("/tmp/r/storage"),
                htpasswd: Some(Path::new("/tmp/r/htpasswd")),
                tls: Some(&tls),
            };
            let json: serde_json::Value = serde_json::from_str(&zot_config(&config)).unwrap();
            assert_eq!(json["http"]["address"], "127.0.0.1");
            assert_eq!(json["http"]["port"], "40123");
            assert_eq!(json["http"]["tls"]["cert"], "/tmp/r/server.pem");
            assert_eq!(json["http"]["tls"]["key"], "/tmp/r/server-key.pem");
            assert_eq!(json["http"]["auth"]["htpasswd"]["path"], "/tmp/r/htpasswd");
            assert_eq!(json["http"]["realm"], super::super::AUTH_REALM);
            assert_eq!(json["storage"]["rootDirectory"], "/tmp/r/storage");
            assert_eq!(json["storage"]["gc"], false);

            let plain = ConfigYaml {
                htpasswd: None,
                tls: None,
                ..config
            };
            let json: serde_json::Value = serde_json::from_str(&zot_config(&plain)).unwrap();
            assert!(json["http"].get("tls").is_none(), "{json}");
            assert!(json["http"].get("auth").is_none(), "{json}");
        }
    }
}
