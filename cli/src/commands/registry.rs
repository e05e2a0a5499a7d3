//! Turning the registry flags into a store client.

use std::time::Duration;

use anyhow::{Context as _, bail};
use signet_registry::auth::{self, Credentials, DockerConfig};
use signet_registry::{Client, ClientOptions, Limits};

use crate::cli::RegistryArgs;

/// A client configured from the flags, the docker config and the environment.
pub fn client(args: &RegistryArgs) -> anyhow::Result<Client> {
    Ok(Client::new(options(args)?)?)
}

/// The client options from the flags, the docker config and the environment.
pub fn options(args: &RegistryArgs) -> anyhow::Result<ClientOptions> {
    let credentials = match (&args.registry_username, &args.registry_password) {
        (Some(user), Some(pass)) => Some(Credentials::basic(user.clone(), pass.clone())),
        (Some(_), None) => {
            bail!("--registry-username needs --registry-password (or SIGNET_REGISTRY_PASSWORD)")
        }
        (None, Some(_)) => bail!("--registry-password needs --registry-username"),
        (None, None) => None,
    };
    let docker_config = match auth::docker_config_path() {
        Some(path) => DockerConfig::load(&path)?,
        None => None,
    };
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
    })
}
