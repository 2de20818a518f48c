//! Session IP binding (`off`, `same-prefix`, `strict`): whether a request
//! from one address may continue a session begun at another.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::IpBinding;

/// The outcome of an IP-binding check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpCheck {
    /// Within the binding.
    Allowed,
    /// Outside it.
    Deviates,
}

/// Checks `current` against the session's `original` address.
pub fn ip_check(
    binding: IpBinding,
    original: Option<IpAddr>,
    current: Option<IpAddr>,
    v4_prefix: u8,
    v6_prefix: u8,
) -> IpCheck {
    let (original, current) = match (binding, original, current) {
        (IpBinding::Off, _, _) => return IpCheck::Allowed,
        (_, Some(o), Some(c)) => (canonical(o), canonical(c)),
        // Nothing to compare: a binding that cannot be checked is not met.
        _ => return IpCheck::Deviates,
    };
    let same = match binding {
        IpBinding::Off => true,
        IpBinding::Strict => original == current,
        IpBinding::SamePrefix => {
            let prefix = if original.is_ipv4() {
                v4_prefix
            } else {
                v6_prefix
            };
            IpNet::new(original, prefix)
                .map(|net| net.trunc().contains(&current))
                .unwrap_or(false)
        }
    };
    if same {
        IpCheck::Allowed
    } else {
        IpCheck::Deviates
    }
}

/// IPv4-mapped IPv6 addresses compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn strict_needs_the_same_address() {
        assert_eq!(
            ip_check(IpBinding::Strict, ip("10.0.0.1"), ip("10.0.0.1"), 24, 56),
            IpCheck::Allowed
        );
        assert_eq!(
            ip_check(IpBinding::Strict, ip("10.0.0.1"), ip("10.0.0.2"), 24, 56),
            IpCheck::Deviates
        );
        assert_eq!(
            ip_check(
                IpBinding::Strict,
                ip("10.0.0.1"),
                ip("::ffff:10.0.0.1"),
                24,
                56
            ),
            IpCheck::Allowed
        );
        assert_eq!(
            ip_check(IpBinding::Strict, None, ip("10.0.0.1"), 24, 56),
            IpCheck::Deviates
        );
    }

    #[test]
    fn same_prefix_allows_the_network() {
        assert_eq!(
            ip_check(
                IpBinding::SamePrefix,
                ip("10.0.0.1"),
                ip("10.0.0.200"),
                24,
                56
            ),
            IpCheck::Allowed
        );
        assert_eq!(
            ip_check(
                IpBinding::SamePrefix,
                ip("10.0.0.1"),
                ip("10.0.1.1"),
                24,
                56
            ),
            IpCheck::Deviates
        );
        assert_eq!(
            ip_check(
                IpBinding::SamePrefix,
                ip("2001:db8:0:1::1"),
                ip("2001:db8:0:2::9"),
                24,
                56
            ),
            IpCheck::Allowed
        );
        assert_eq!(
            ip_check(
                IpBinding::SamePrefix,
                ip("2001:db8:0:100::1"),
                ip("2001:db8:1::1"),
                24,
                56
            ),
            IpCheck::Deviates
        );
    }

    #[test]
    fn off_allows_anything() {
        assert_eq!(
            ip_check(IpBinding::Off, ip("10.0.0.1"), ip("192.0.2.1"), 24, 56),
            IpCheck::Allowed
        );
        assert_eq!(
            ip_check(IpBinding::Off, None, None, 24, 56),
            IpCheck::Allowed
        );
    }
}
