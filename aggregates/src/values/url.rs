use super::ValidationError;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

pub const MAX_URL_LENGTH: usize = 2048;

/// What the deployment lets a webhook URL point at. Production refuses plain
/// HTTP and any loopback/private/reserved target; `webhookd serve --dev`
/// lifts both so developers can deliver to `http://127.0.0.1`, and
/// `--allow-target CIDR` lifts the address rule for chosen ranges.
/// The same policy judges the literal host at create time and every address
/// actually connected to at send time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    pub allow_http: bool,
    pub allow_private_targets: bool,
    pub allowed_targets: Vec<IpCidr>,
}

impl UrlPolicy {
    pub fn production() -> Self {
        Self::default()
    }

    pub fn development() -> Self {
        Self {
            allow_http: true,
            allow_private_targets: true,
            allowed_targets: Vec::new(),
        }
    }

    /// May a webhook connect to `ip`?
    pub fn permits_address(&self, ip: IpAddr) -> bool {
        self.allow_private_targets
            || !is_forbidden_target(ip)
            || self.allowed_targets.iter().any(|cidr| cidr.contains(ip))
    }
}

/// An address range such as `10.1.0.0/16` or `fd00::/8` (a bare address is a
/// range of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpCidr {
    network: IpAddr,
    prefix: u8,
}

impl IpCidr {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let bad =
            || ValidationError::new(format!("'{raw}' is not an address range like 10.0.0.0/8"));
        let (address, prefix) = match raw.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (raw, None),
        };
        let network: IpAddr = address.trim().parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(bad)?,
            None => max,
        };
        Ok(Self { network, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_matches(
                u128::from(u32::from(net)),
                u128::from(u32::from(ip)),
                self.prefix,
                32,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_matches(u128::from(net), u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn prefix_matches(network: u128, ip: u128, prefix: u8, width: u32) -> bool {
    let host_bits = width - u32::from(prefix);
    host_bits >= width || (network >> host_bits) == (ip >> host_bits)
}

/// An absolute webhook target URL that satisfied a [`UrlPolicy`] when it was
/// parsed: HTTPS (unless allowed otherwise), a host, no credentials, at most
/// 2048 characters, and not a literal internal address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub fn parse(raw: &str, policy: &UrlPolicy) -> Result<Self, ValidationError> {
        if raw.len() > MAX_URL_LENGTH {
            return Err(ValidationError::new(format!(
                "must be at most {MAX_URL_LENGTH} characters"
            )));
        }
        // The URL parser would strip or percent-encode control characters
        // and accept what the user did not mean; refuse them as written.
        if raw.chars().any(char::is_control) {
            return Err(ValidationError::new("must not contain control characters"));
        }
        let url = Url::parse(raw)
            .map_err(|e| ValidationError::new(format!("must be an absolute URL ({e})")))?;
        match url.scheme() {
            "https" => {}
            "http" if policy.allow_http => {}
            "http" => return Err(ValidationError::new("must use https")),
            other => return Err(ValidationError::new(format!("must use https, not {other}"))),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ValidationError::new("must not contain credentials"));
        }
        let host = url
            .host()
            .ok_or_else(|| ValidationError::new("must have a host"))?;
        if host_is_internal(&host, policy) {
            return Err(ValidationError::new(
                "must not target a loopback, private, link-local or reserved address",
            ));
        }
        Ok(Self(url.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn host_is_internal(host: &Host<&str>, policy: &UrlPolicy) -> bool {
    match host {
        Host::Ipv4(ip) => !policy.permits_address(IpAddr::V4(*ip)),
        Host::Ipv6(ip) => !policy.permits_address(IpAddr::V6(*ip)),
        Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            !policy.allow_private_targets && (name == "localhost" || name.ends_with(".localhost"))
        }
    }
}

/// True for addresses a webhook must never reach in production: loopback,
/// private (RFC 1918, fc00::/7), link-local (incl. cloud metadata), CGNAT,
/// multicast, unspecified, broadcast, documentation and other reserved ranges.
/// IPv4-mapped and NAT64 IPv6 addresses are judged by their IPv4 part.
pub fn is_forbidden_target(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_forbidden_v4(v4);
    }
    let segments = ip.segments();
    // NAT64 well-known prefix 64:ff9b::/96 embeds an IPv4 address.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = segments[6].to_be_bytes();
        let [c, d] = segments[7].to_be_bytes();
        return is_forbidden_v4(Ipv4Addr::new(a, b, c, d));
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (segments[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || segments[..5] == [0, 0, 0, 0, 0] // IPv4-compatible (deprecated) ::a.b.c.d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prod(raw: &str) -> Result<WebhookUrl, ValidationError> {
        WebhookUrl::parse(raw, &UrlPolicy::production())
    }

    #[test]
    fn accepts_public_https() {
        assert_eq!(
            prod("https://example.com/hooks").unwrap().as_str(),
            "https://example.com/hooks"
        );
    }

    #[test]
    fn refuses_bad_shapes() {
        assert!(prod("http://example.com").is_err());
        assert!(prod("ftp://example.com").is_err());
        assert!(prod("/relative").is_err());
        assert!(prod("https://user:pw@example.com").is_err());
        assert!(prod(&format!("https://example.com/{}", "a".repeat(10_000))).is_err());
        for control in [
            "https://example.com/\0",
            "https://exa\u{1}mple.com/",
            "\thttps://example.com/",
        ] {
            assert!(prod(control).is_err(), "{control:?}");
        }
    }

    #[test]
    fn refuses_internal_targets_in_any_spelling() {
        for raw in [
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://169.254.169.254/",
            "https://10.0.0.1/",
            "https://192.168.1.1/",
            "https://100.64.0.1/",
            "https://[::ffff:127.0.0.1]/",
            "https://[fd00::1]/",
            "https://localhost/",
            "https://api.localhost/",
            "https://2130706433/",
            "https://0x7f000001/",
            "https://0177.0.0.1/",
            "https://0.0.0.0/",
        ] {
            assert!(prod(raw).is_err(), "{raw} should be refused");
        }
    }

    #[test]
    fn development_policy_allows_local_http() {
        let url = WebhookUrl::parse("http://127.0.0.1:9000/x", &UrlPolicy::development()).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9000/x");
    }

    #[test]
    fn allowed_ranges_lift_the_address_rule_only_for_themselves() {
        let policy = UrlPolicy {
            allowed_targets: vec![IpCidr::parse("10.1.0.0/16").unwrap()],
            ..UrlPolicy::production()
        };
        assert!(WebhookUrl::parse("https://10.1.2.3/x", &policy).is_ok());
        assert!(WebhookUrl::parse("https://10.2.0.1/x", &policy).is_err());
        assert!(WebhookUrl::parse("http://10.1.2.3/x", &policy).is_err());
        assert!(policy.permits_address("::ffff:10.1.0.9".parse().unwrap()));
        assert!(IpCidr::parse("fd00::/8")
            .unwrap()
            .contains("fd12::1".parse().unwrap()));
        assert!(IpCidr::parse("10.0.0.0/33").is_err());
        assert!(IpCidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("127.0.0.1".parse().unwrap()));
    }
}
