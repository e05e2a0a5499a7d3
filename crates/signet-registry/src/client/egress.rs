//! Where the client may connect. A daemon reachable by anyone who can create a pod (or call
//! its verify API) must not be steered to cloud metadata services, link-local addresses or
//! its own loopback by an image reference naming them: with [`Egress::PublicOnly`] those are
//! refused before any connection, unless the host is one the operator named explicitly. Host
//! names are checked after resolution too, so a name that resolves to such an address is
//! refused as well (the addresses connected to are the ones checked).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, PoisonError, RwLock};

/// Host names of cloud instance metadata services.
const METADATA_NAMES: [&str; 6] = [
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.azure.internal",
];

/// Which registries the client may reach.
#[derive(Debug, Clone, Default)]
pub enum Egress {
    /// Any address (the CLI: the user names the registry).
    #[default]
    Any,
    /// Not link-local addresses (169.254.0.0/16, fe80::/10: where cloud metadata services
    /// live), the cloud metadata names and addresses, loopback or unspecified addresses,
    /// unless the host (`host` or `host:port`, as written in image references) is in the
    /// shared allowed set.
    PublicOnly(AllowedHosts),
}

/// Hosts exempt from [`Egress::PublicOnly`], shared so that a policy reload can change them.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts(Arc<RwLock<BTreeSet<String>>>);

impl AllowedHosts {
    /// Replaces the set (hosts as written in image references: `name`, `name:port`,
    /// `[v6]:port`).
    pub fn set(&self, hosts: impl IntoIterator<Item = String>) {
        let hosts: BTreeSet<String> = hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect();
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = hosts;
    }

    /// Whether `registry` (`host[:port]`) or its bare host is in the set.
    fn allows(&self, registry: &str) -> bool {
        let set = self.0.read().unwrap_or_else(PoisonError::into_inner);
        let registry = registry.to_ascii_lowercase();
        set.contains(&registry) || set.contains(host_of(&registry))
    }

    /// Whether some entry's host (port removed) is `name`; for the resolver, which sees no
    /// port.
    fn allows_name(&self, name: &str) -> bool {
        let set = self.0.read().unwrap_or_else(PoisonError::into_inner);
        let name = name.to_ascii_lowercase();
        set.iter()
            .any(|h| host_of(h).trim_matches(['[', ']']) == name)
    }
}

/// The host part of `host[:port]` / `[v6]:port`.
fn host_of(registry: &str) -> &str {
    if registry.starts_with('[') {
        return registry
            .split_once(']')
            .map_or(registry, |(h, _)| &registry[..h.len() + 1]);
    }
    registry.rsplit_once(':').map_or(registry, |(h, _)| h)
}

/// `host[:port]` of `url`, as registries are written in image references (`[v6]:port`).
pub(crate) fn url_host(url: &reqwest::Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) if host.contains(':') && !host.starts_with('[') => {
            format!("[{host}]:{port}")
        }
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_string(),
        (None, _) => String::new(),
    }
}

/// Whether `ip` is an address the daemon never connects to unless told to: loopback,
/// unspecified, link-local (where metadata services live) or a known metadata address; IPv6
/// forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4) are judged by it.
pub(crate) fn is_special_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_special_v4(v4),
        IpAddr::V6(v6) => {
            if v6.is_loopback() || v6.is_unspecified() {
                return true;
            }
            let s = v6.segments();
            let embedded = if let Some(v4) = v6.to_ipv4() {
                // Mapped (::ffff:a.b.c.d) and compatible (::a.b.c.d).
                Some(v4)
            } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                // NAT64: 64:ff9b::a.b.c.d.
                Some(Ipv4Addr::new(
                    (s[6] >> 8) as u8,
                    s[6] as u8,
                    (s[7] >> 8) as u8,
                    s[7] as u8,
                ))
            } else if s[0] == 0x2002 {
                // 6to4: 2002:aabb:ccdd::.
                Some(Ipv4Addr::new(
                    (s[1] >> 8) as u8,
                    s[1] as u8,
                    (s[2] >> 8) as u8,
                    s[2] as u8,
                ))
            } else {
                None
            };
            embedded.is_some_and(is_special_v4)
                || (s[0] & 0xffc0) == 0xfe80
                // AWS's and GCP's IPv6 instance metadata addresses.
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
                || v6 == Ipv6Addr::new(0xfd20, 0xce, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

fn is_special_v4(v4: Ipv4Addr) -> bool {
    v4.is_loopback()
        || v4.octets()[0] == 0
        || v4.is_link_local()
        // Alibaba Cloud's metadata address, and Azure's WireServer.
        || v4 == Ipv4Addr::new(100, 100, 100, 200)
        || v4 == Ipv4Addr::new(168, 63, 129, 16)
}

/// Why a connection to `registry` (`host[:port]` as written in an image reference) is
/// refused, or `None` if it may go ahead as far as its name tells (a name is checked again
/// once resolved). The host is judged as the URL parser will read it: `0x7f.1` and
/// `2852039166` are IPv4 addresses there, whatever they look like here.
pub(crate) fn refusal(egress: &Egress, registry: &str) -> Option<String> {
    let Egress::PublicOnly(allowed) = egress else {
        return None;
    };
    let normalized = reqwest::Url::parse(&format!("https://{registry}/"))
        .map(|u| url_host(&u))
        .unwrap_or_else(|_| registry.to_ascii_lowercase());
    if allowed.allows(registry) || allowed.allows(&normalized) {
        return None;
    }
    let host = host_of(&normalized).trim_matches(['[', ']']).to_string();
    let special = match host.parse::<IpAddr>() {
        Ok(ip) => is_special_address(ip),
        Err(_) => {
            host == "localhost"
                || host.ends_with(".localhost")
                || METADATA_NAMES.contains(&host.trim_end_matches('.'))
                // A name allowed with another port only: the resolver, which sees no port,
                // would let it reach whatever it resolves to.
                || allowed.allows_name(&host)
        }
    };
    special.then(|| refused_message(registry))
}

fn refused_message(registry: &str) -> String {
    format!(
        "signet does not connect to {registry}: loopback, link-local and cloud metadata \
         addresses are reached only when the policy's registryAllowlist names the registry \
         explicitly"
    )
}

/// A DNS resolver that drops the special addresses a name resolves to (see
/// [`is_special_address`]), unless the name is allowed; a name left with no address fails.
pub(crate) struct FilteringResolver {
    pub(crate) allowed: AllowedHosts,
}

impl reqwest::dns::Resolve for FilteringResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allowed = self.allowed.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if allowed.allows_name(&host) {
                return Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs);
            }
            let kept: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| !is_special_address(a.ip()))
                .collect();
            if kept.is_empty() {
                return Err(refused_message(&host).into());
            }
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public_only(allowed: &[&str]) -> Egress {
        let hosts = AllowedHosts::default();
        hosts.set(allowed.iter().map(|h| h.to_string()));
        Egress::PublicOnly(hosts)
    }

    #[test]
    fn metadata_link_local_and_loopback_are_refused_unless_named() {
        let egress = public_only(&[]);
        for registry in [
            "169.254.169.254",
            "169.254.169.254:80",
            "[fe80::1]:5000",
            "[::1]:5000",
            "[::ffff:169.254.169.254]",
            "127.0.0.1:5000",
            "0.0.0.0",
            "localhost:5000",
            "metadata.google.internal",
            "METADATA.google.internal.",
            "100.100.100.200",
            "[fd00:ec2::254]",
            "[fd20:ce::254]",
            "168.63.129.16",
            "0x7f.1",
            "0xa9fea9fe:80",
            "0xa9.0xfe.0xa9.0xfe",
            "2852039166",
            "[::7f00:1]",
            "[64:ff9b::a9fe:a9fe]",
            "[2002:a9fe:a9fe::1]",
            "0.1.2.3",
        ] {
            assert!(refusal(&egress, registry).is_some(), "{registry}");
        }
        for registry in [
            "ghcr.io",
            "registry.example:5000",
            "10.0.0.5:5000",
            "[2001:db8::1]",
        ] {
            assert_eq!(refusal(&egress, registry), None, "{registry}");
        }
        assert_eq!(refusal(&Egress::Any, "169.254.169.254"), None);
    }

    #[test]
    fn a_named_host_is_allowed_with_or_without_its_port() {
        let allowed = AllowedHosts::default();
        allowed.set(["127.0.0.1:5000".to_string(), "[::1]".to_string()]);
        let egress = Egress::PublicOnly(allowed.clone());
        assert_eq!(refusal(&egress, "127.0.0.1:5000"), None);
        assert!(refusal(&egress, "127.0.0.1:5001").is_some());
        assert_eq!(refusal(&egress, "[::1]:5000"), None);
        assert!(allowed.allows_name("127.0.0.1"));
        assert!(allowed.allows_name("::1"));
        assert!(!allowed.allows_name("169.254.169.254"));
        // A name allowed with one port is not allowed with another: the resolver sees no port.
        allowed.set(["reg.internal:5000".to_string()]);
        assert_eq!(refusal(&egress, "reg.internal:5000"), None);
        assert!(refusal(&egress, "reg.internal:6000").is_some());
    }
}
