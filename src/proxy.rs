//! The proxies whose `X-Forwarded-For` is believed: single addresses and
//! CIDR ranges, as `--trusted-proxy` gives them.
//!
//! An IPv4 peer may reach a dual-stack listener as an IPv4-mapped IPv6
//! address (`::ffff:10.0.0.1`), and an operator may write a range either way.
//! Both sides are normalised, so `::ffff:10.0.0.1` matches `10.0.0.0/8` and
//! `10.0.0.1` matches `::ffff:10.0.0.0/104`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net};

/// One trusted address or range, normalised: an IPv4-mapped IPv6 range is
/// kept as the IPv4 range it maps, and host bits are cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxyRange(IpNet);

impl ProxyRange {
    pub fn new(net: IpNet) -> Self {
        let net = match net {
            IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
                Some(v4) => Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(IpNet::V6(v6), IpNet::V4),
                None => IpNet::V6(v6),
            },
            net => net,
        };
        Self(net.trunc())
    }

    /// Whether `ip`, in either of its forms, is in this range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        if self.0.contains(&ip) {
            return true;
        }
        // A range written in IPv6 that covers the mapped block (`::/0`,
        // `::ffff:0:0/96`) holds IPv4 peers too.
        match ip {
            IpAddr::V4(v4) => self.0.contains(&IpAddr::V6(v4.to_ipv6_mapped())),
            IpAddr::V6(_) => false,
        }
    }
}

impl FromStr for ProxyRange {
    type Err = String;

    /// `10.0.0.0/8`, `2001:db8::/32`, `127.0.0.1` or `::1`.
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.contains('/') {
            text.parse::<IpNet>().map(Self::new).map_err(|_| {
                format!("{text:?} is not a CIDR range such as 10.0.0.0/8 or 2001:db8::/32")
            })
        } else {
            text.parse::<IpAddr>()
                .map(|ip| Self::new(IpNet::from(ip)))
                .map_err(|_| format!("{text:?} is not an IP address or a CIDR range"))
        }
    }
}

impl fmt::Display for ProxyRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Every trusted proxy; empty by default, when no `X-Forwarded-For` is believed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<ProxyRange>);

impl TrustedProxies {
    pub fn new(ranges: impl IntoIterator<Item = ProxyRange>) -> Self {
        Self(ranges.into_iter().collect())
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|range| range.contains(ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// A comma-separated list, as `TRIBUNE_TRUSTED_PROXIES` holds it.
    fn from_str(text: &str) -> Result<Self, String> {
        text.split(',')
            .filter(|part| !part.trim().is_empty())
            .map(str::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }
}

impl From<IpAddr> for TrustedProxies {
    fn from(ip: IpAddr) -> Self {
        Self(vec![ProxyRange::new(IpNet::from(ip))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn trusted(text: &str) -> TrustedProxies {
        text.parse().unwrap()
    }

    #[test]
    fn single_addresses_and_ranges_of_both_families() {
        let proxies = trusted("127.0.0.1, 10.0.0.0/8,2001:db8::/32, ::1");
        for inside in [
            "127.0.0.1",
            "10.0.0.1",
            "10.255.255.255",
            "2001:db8:ffff::9",
            "::1",
        ] {
            assert!(proxies.contains(ip(inside)), "{inside}");
        }
        for outside in [
            "127.0.0.2",
            "11.0.0.1",
            "9.255.255.255",
            "2001:db9::1",
            "::2",
        ] {
            assert!(!proxies.contains(ip(outside)), "{outside}");
        }
    }

    #[test]
    fn ipv4_mapped_addresses_match_on_both_sides() {
        assert!(trusted("10.0.0.0/8").contains(ip("::ffff:10.0.0.1")));
        assert!(trusted("::ffff:10.0.0.0/104").contains(ip("10.0.0.1")));
        assert!(trusted("::ffff:10.0.0.0/104").contains(ip("::ffff:10.0.0.1")));
        assert!(trusted("::ffff:127.0.0.1").contains(ip("127.0.0.1")));
        assert!(!trusted("::ffff:10.0.0.0/104").contains(ip("11.0.0.1")));
        assert_eq!(
            "::ffff:10.0.0.0/104"
                .parse::<ProxyRange>()
                .unwrap()
                .to_string(),
            "10.0.0.0/8"
        );
        // A range wide enough to hold the mapped block holds IPv4 peers.
        assert!(trusted("::/0").contains(ip("192.0.2.1")));
        assert!(trusted("::ffff:0:0/96").contains(ip("192.0.2.1")));
        assert!(!trusted("2001:db8::/32").contains(ip("192.0.2.1")));
    }

    #[test]
    fn host_bits_of_a_range_are_ignored() {
        let range: ProxyRange = "10.1.2.3/8".parse().unwrap();
        assert_eq!(range.to_string(), "10.0.0.0/8");
        assert!(range.contains(ip("10.200.0.1")));
    }

    #[test]
    fn nonsense_is_refused_with_what_was_wrong() {
        for bad in [
            "10.0.0.0/33",
            "example.com",
            "10.0.0",
            "2001:db8::/129",
            "/8",
        ] {
            let error = bad.parse::<ProxyRange>().unwrap_err();
            assert!(error.contains(bad), "{error}");
        }
        assert!(trusted("").is_empty());
    }
}
