//! Turning the registry flags into a store client.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use signet_registry::auth::{self, AuthError, BoundCredentials, Credentials, DockerConfig};
use signet_registry::{Client, ClientOptions, Limits};

use crate::cli::RegistryArgs;

/// A client configured from the flags, the docker config and the environment.
///
/// `named` are the registries of the images on the command line: credentials given by flag or
/// environment go to the one among them (or to `--registry-credentials-host`), never to a
/// registry that merely asks.
pub fn client(args: &RegistryArgs, named: &[&str]) -> anyhow::Result<Client> {
    Ok(Client::new(options(args, named)?)?)
}

/// The client options from the flags, the docker config and the environment; see [`client`].
pub fn options(args: &RegistryArgs, named: &[&str]) -> anyhow::Result<ClientOptions> {
    let credentials = bound_credentials(args, named)?;
    let docker_config = match auth::docker_config_path() {
        Some(path) => DockerConfig::load(&path)?,
        None => None,
    };
    common_options(args, credentials, docker_config)
}

/// The client options of `signet serve`: per-registry credentials only, from a docker config
/// file (`docker_config`, else `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`).
///
/// Flag and environment credentials are refused: the daemon verifies images that pods and
/// `/v1/verify` callers name, on any registry, so there is no one registry they could be
/// meant for (issue 12).
pub fn daemon_options(
    args: &RegistryArgs,
    docker_config: Option<&Path>,
) -> anyhow::Result<ClientOptions> {
    if args.registry_username.is_some()
        || args.registry_password.is_some()
        || args.registry_credentials_host.is_some()
    {
        bail!(
            "signet serve does not take --registry-username/--registry-password \
             (SIGNET_REGISTRY_USERNAME/SIGNET_REGISTRY_PASSWORD/SIGNET_REGISTRY_HOST): the \
             daemon reaches whatever registry a pod names. Give per-registry credentials in a \
             docker config file instead: --docker-config FILE (e.g. a mounted \
             kubernetes.io/dockerconfigjson Secret) or DOCKER_CONFIG=DIR"
        );
    }
    let docker_config = match docker_config {
        Some(path) => {
            // Named explicitly: a missing file is a mistake, not "no credentials".
            let loaded = DockerConfig::load(path)?;
            Some(
                loaded
                    .with_context(|| format!("--docker-config {}: no such file", path.display()))?,
            )
        }
        None => match auth::docker_config_path() {
            Some(path) => DockerConfig::load(&path)?,
            None => None,
        },
    };
    common_options(args, None, docker_config)
}

/// The flag credentials, bound to the one registry they are for.
fn bound_credentials(
    args: &RegistryArgs,
    named: &[&str],
) -> anyhow::Result<Option<BoundCredentials>> {
    let credentials = match (&args.registry_username, &args.registry_password) {
        (Some(user), Some(pass)) => Credentials::basic(user.clone(), pass.clone()),
        (Some(_), None) => {
            bail!("--registry-username needs --registry-password (or SIGNET_REGISTRY_PASSWORD)")
        }
        (None, Some(_)) => bail!("--registry-password needs --registry-username"),
        (None, None) => return Ok(None),
    };
    match auth::bind_credentials(
        credentials,
        args.registry_credentials_host.as_deref(),
        named,
    ) {
        Err(AuthError::AmbiguousCredentialsHost { registries }) => bail!(
            "--registry-username/--registry-password go to one registry only, and this command \
             names several ({}): add --registry-credentials-host HOST (or SIGNET_REGISTRY_HOST) \
             to say which; the others use ~/.docker/config.json",
            registries.join(", ")
        ),
        Err(e) if args.registry_credentials_host.is_some() => {
            Err(anyhow::Error::new(e).context("--registry-credentials-host"))
        }
        Err(e) => Err(e.into()),
        Ok(bound) => Ok(bound),
    }
}

fn common_options(
    args: &RegistryArgs,
    credentials: Option<BoundCredentials>,
    docker_config: Option<DockerConfig>,
) -> anyhow::Result<ClientOptions> {
    let mut extra_roots_pem = Vec::new();
    for path in &args.registry_ca {
        extra_roots_pem
            .push(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?);
    }
    let limits = Limits {
        deadline: Duration::from_secs(args.registry_timeout.max(1)),
        ..Limits::default()
    };
    Ok(ClientOptions {
        credentials,
        docker_config,
        insecure_registries: args.insecure_registries.clone(),
        extra_roots_pem,
        limits,
        // The CLI reaches the registries its user names; `serve` narrows this itself.
        egress: signet_registry::Egress::Any,
    })
}
