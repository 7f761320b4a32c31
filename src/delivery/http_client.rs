//! The one HTTP client every delivery shares: connection reuse, no
//! redirects, and an SSRF guard on the addresses it actually connects to.
use aggregates::values::UrlPolicy;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

pub const USER_AGENT: &str = concat!("webhookd/", env!("CARGO_PKG_VERSION"));

/// Resolves names (or takes an override) and keeps only addresses the
/// policy permits, so a name that turns private after the config was
/// created can still not be reached.
struct GuardedResolver {
    policy: UrlPolicy,
    overrides: HashMap<String, IpAddr>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let policy = self.policy.clone();
        let fixed = self.overrides.get(&host).copied();
        Box::pin(async move {
            let candidates: Vec<SocketAddr> = match fixed {
                Some(ip) => vec![SocketAddr::new(ip, 0)],
                None => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
            };
            let permitted: Vec<SocketAddr> = candidates
                .into_iter()
                .filter(|addr| policy.permits_address(addr.ip()))
                .collect();
            if permitted.is_empty() {
                return Err(format!(
                    "refused: {host} resolves only to addresses webhooks may not reach"
                )
                .into());
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

/// Idle keep-alive connections kept per receiver host, per lane: several
/// endpoints' in-flight windows (32 each by default) on one host.
const MAX_IDLE_PER_HOST: usize = 1024;

/// The delivery client: no redirects, the SSRF guard as its resolver, and
/// (`--delivery-source-address`) a fixed local address to send from, for
/// receivers that allow-list the sender's address.
pub fn build(
    policy: &UrlPolicy,
    overrides: &HashMap<String, IpAddr>,
    source: Option<IpAddr>,
) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source)
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        // Every attempt under way holds a connection (HTTP/1.1): an idle
        // pool smaller than what is in flight to one host closed the extra
        // connections as their attempts ended, only to open new ones for
        // the next — 12 % of webhookd's CPU went to connecting at fan-out
        // 10 on one host. Idle connections still go after 90 s.
        .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
        .dns_resolver(Arc::new(GuardedResolver {
            policy: policy.clone(),
            overrides: overrides.clone(),
        }))
        .build()
        .expect("the HTTP client builds")
}

/// The address rule for a URL whose host is an IP literal (the resolver is
/// not asked for those). `None` when the URL may be sent to.
pub fn literal_address_refusal(url: &reqwest::Url, policy: &UrlPolicy) -> Option<String> {
    let ip = match url.host()? {
        url::Host::Ipv4(ip) => IpAddr::V4(ip),
        url::Host::Ipv6(ip) => IpAddr::V6(ip),
        url::Host::Domain(_) => return None,
    };
    (!policy.permits_address(ip))
        .then(|| format!("refused: {ip} is an address webhooks may not reach"))
}

/// Create/update-time check of a name: refused when it resolves to any
/// address the policy forbids. A name that does not resolve (yet) passes;
/// the connect-time guard still applies.
pub async fn resolution_refusal(
    url: &str,
    policy: &UrlPolicy,
    overrides: &HashMap<String, IpAddr>,
) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let host = match parsed.host()? {
        url::Host::Domain(name) => name.to_owned(),
        _ => return None,
    };
    let addresses: Vec<IpAddr> = match overrides.get(&host) {
        Some(ip) => vec![*ip],
        None => {
            let lookup = tokio::net::lookup_host((host.as_str(), 0));
            match tokio::time::timeout(std::time::Duration::from_secs(2), lookup).await {
                Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
                _ => return None,
            }
        }
    };
    addresses
        .into_iter()
        .find(|ip| !policy.permits_address(*ip))
        .map(|ip| format!("must not target a loopback, private, link-local or reserved address ({host} resolves to {ip})"))
}
