//! Which addresses deliveries may connect to (DESIGN §5): no private, loopback,
//! link-local or otherwise special-purpose address unless a configured subnet opts it
//! back in. Names are resolved and checked by the client's own resolver, so the address
//! checked is the address connected to (no DNS rebinding between the two).

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allowed: Vec<IpNet>,
}

impl AddressPolicy {
    /// `BRIDGE_ALLOWED_SUBNETS` or `WEBHOOK_ALLOWED_SUBNETS`: comma-separated CIDRs,
    /// empty for none.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let allowed = raw
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                part.parse::<IpNet>()
                    .map_err(|e| format!("`{part}` is not a CIDR: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { allowed })
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.allowed.iter().any(|net| net.contains(&ip)) || is_public(ip)
    }

    /// Why a delivery to `ip` is refused, or nothing when it may go.
    pub fn refusal(&self, ip: IpAddr) -> Option<String> {
        (!self.permits(ip)).then(|| {
            format!(
                "refused: {ip} is a private, loopback or reserved address outside the allowed subnets"
            )
        })
    }

    pub(crate) fn resolver(&self) -> Arc<PolicyResolver> {
        Arc::new(PolicyResolver(self.clone()))
    }
}

/// An IPv4 address written as IPv6 (`::ffff:10.0.0.1`) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b)))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    let first = segments[0];
    // NAT64 (64:ff9b::/96) reaches the IPv4 address it embeds: judge that one.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., a, b] = segments;
        return is_public_v4(Ipv4Addr::from((u32::from(a) << 16) | u32::from(b)));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // IPv4-compatible (::/96, deprecated): an IPv4 address in IPv6 clothing.
        || segments[..6] == [0; 6]
        // Local-use NAT64 (64:ff9b:1::/48): translated into private IPv4 space.
        || segments[..3] == [0x64, 0xff9b, 1]
        // 6to4 (2002::/16) and Teredo (2001::/32) tunnel to an embedded IPv4 address.
        || first == 0x2002
        || (first == 0x2001 && segments[1] == 0)
        // Unique local (fc00::/7), link-local (fe80::/10), site-local (fec0::/10).
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first & 0xffc0) == 0xfec0
        // Documentation (2001:db8::/32).
        || first == 0x2001 && segments[1] == 0x0db8)
}

/// Resolves a delivery's host and keeps only the addresses the policy permits.
#[derive(Debug)]
pub(crate) struct PolicyResolver(AddressPolicy);

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|addr| policy.permits(addr.ip()))
                .collect();
            if permitted.is_empty() {
                let shown: Vec<String> = found.iter().map(|a| a.ip().to_string()).collect();
                return Err(format!(
                    "refused: {host} resolves only to addresses that are not allowed ({})",
                    shown.join(", ")
                )
                .into());
            }
            let addrs: Addrs = Box::new(permitted.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn private_loopback_and_link_local_addresses_are_refused_by_default() {
        let policy = AddressPolicy::default();
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::808:808",
            "2002:a00:1::1",
            "2002:808:808::1",
            "::a00:1",
            "::8.8.8.8",
            "fec0::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        ] {
            assert!(!policy.permits(ip(refused)), "{refused}");
        }
        for permitted in [
            "93.184.216.34",
            "2606:2800:220:1:248:1893:25c8:1946",
            "64:ff9b::808:808",
            "::ffff:8.8.8.8",
        ] {
            assert!(policy.permits(ip(permitted)), "{permitted}");
        }
    }

    #[test]
    fn configured_subnets_opt_ranges_back_in_and_nothing_else() {
        let policy = AddressPolicy::parse("127.0.0.0/8, 10.9.0.0/16").expect("valid");
        assert!(policy.permits(ip("127.0.0.1")));
        assert!(policy.permits(ip("10.9.3.4")));
        assert!(!policy.permits(ip("10.8.3.4")));
        assert!(!policy.permits(ip("::1")));
        assert!(AddressPolicy::parse("10.0.0.0/33").is_err());
        assert_eq!(
            AddressPolicy::parse("").expect("empty"),
            AddressPolicy::default()
        );
    }
}
