//! Session IP binding (`off`, `same-prefix`, `strict`): whether a request
//! from one address may continue a session begun at another.
//!
//! The issuer checks it when a session is refreshed; it also writes the
//! binding into each access token (the `ipb` claim, [`IpBindingClaim`]) so
//! that a verifier can check every request at the edge. The comparison is
//! the same function in both places ([`ip_check`]).
//!
//! Pure: addresses are compared octet by octet on [`std::net::IpAddr`], with
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) compared as IPv4, since a
//! dual-stack socket reports IPv4 peers that way.

use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// IP binding of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IpBinding {
    /// Any address may continue the session.
    Off,
    /// The address must share the session address's prefix
    /// ([`IpBindingClaim::v4_prefix`] / [`IpBindingClaim::v6_prefix`] bits).
    SamePrefix,
    /// The address must equal the session's address.
    Strict,
}

/// The outcome of an IP-binding check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpCheck {
    /// Within the binding.
    Allowed,
    /// Outside it.
    Deviates,
}

/// Checks `current` against the session's `original` address under
/// `binding`. Under `same-prefix`, `v4_prefix` or `v6_prefix` bits (by the
/// original address's family) must agree.
///
/// Fail closed: with a binding other than `off`, a missing address on
/// either side, addresses of different families, or a prefix longer than
/// the family allows all deviate.
pub fn ip_check(
    binding: IpBinding,
    original: Option<IpAddr>,
    current: Option<IpAddr>,
    v4_prefix: u8,
    v6_prefix: u8,
) -> IpCheck {
    let (original, current) = match (binding, original, current) {
        (IpBinding::Off, _, _) => return IpCheck::Allowed,
        (_, Some(o), Some(c)) => (canonical_ip(o), canonical_ip(c)),
        // Nothing to compare: a binding that cannot be checked is not met.
        _ => return IpCheck::Deviates,
    };
    let same = match binding {
        IpBinding::Off => true,
        IpBinding::Strict => original == current,
        IpBinding::SamePrefix => {
            let len = if original.is_ipv4() {
                v4_prefix
            } else {
                v6_prefix
            };
            IpPrefix::new(original, len).is_some_and(|net| net.contains(current))
        }
    };
    if same {
        IpCheck::Allowed
    } else {
        IpCheck::Deviates
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) as IPv4; others as they are.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The `ipb` claim of an access token: the session's IP binding, for
/// verifiers to enforce on every request.
///
/// A session whose binding is `off` has no `ipb` claim (see
/// [`IpBindingClaim::new`]). `ip` is absent when the issuer did not know the
/// session's address; every request then deviates (fail closed), as a
/// refresh of such a session does at the issuer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpBindingClaim {
    /// `same-prefix` or `strict`.
    pub mode: IpBinding,
    /// The session's address, as the issuer saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// Prefix length for `same-prefix` on IPv4.
    pub v4_prefix: u8,
    /// Prefix length for `same-prefix` on IPv6.
    pub v6_prefix: u8,
}

impl IpBindingClaim {
    /// The claim for a session begun at `ip` under `mode`; `None` when the
    /// mode is `off` (no claim: any address).
    pub fn new(mode: IpBinding, ip: Option<IpAddr>, v4_prefix: u8, v6_prefix: u8) -> Option<Self> {
        (mode != IpBinding::Off).then(|| Self {
            mode,
            ip: ip.map(canonical_ip),
            v4_prefix,
            v6_prefix,
        })
    }

    /// Checks a request from `current` (`None`: the address is unknown,
    /// which deviates).
    pub fn check(&self, current: Option<IpAddr>) -> IpCheck {
        ip_check(self.mode, self.ip, current, self.v4_prefix, self.v6_prefix)
    }
}

/// An address prefix (CIDR), e.g. `10.0.0.0/8` or `2001:db8::/32`.
///
/// The address is kept truncated to its prefix, so two prefixes naming the
/// same network compare equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPrefix {
    network: IpAddr,
    len: u8,
}

/// A string that is not `ADDRESS/LENGTH` with a length the family allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an address prefix such as 10.0.0.0/8 or 2001:db8::/32")]
pub struct IpPrefixError(String);

impl IpPrefix {
    /// The prefix of the first `len` bits of `ip`; `None` when `len` is
    /// longer than the family's address (32 or 128). IPv4-mapped addresses
    /// are taken as IPv4.
    pub fn new(ip: IpAddr, len: u8) -> Option<Self> {
        let ip = canonical_ip(ip);
        let network = match ip {
            IpAddr::V4(v4) => IpAddr::from(truncate(v4.octets(), len)?),
            IpAddr::V6(v6) => IpAddr::from(truncate(v6.octets(), len)?),
        };
        Some(Self { network, len })
    }

    /// The network address (truncated to the prefix).
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length in bits.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// True for `/0`, which every address of its family matches.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when `ip` (IPv4-mapped taken as IPv4) is in this prefix. An
    /// address of the other family never is.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let truncated = match (self.network, canonical_ip(ip)) {
            (IpAddr::V4(_), IpAddr::V4(ip)) => truncate(ip.octets(), self.len).map(IpAddr::from),
            (IpAddr::V6(_), IpAddr::V6(ip)) => truncate(ip.octets(), self.len).map(IpAddr::from),
            _ => None,
        };
        truncated == Some(self.network)
    }
}

impl FromStr for IpPrefix {
    type Err = IpPrefixError;

    /// `ADDRESS/LENGTH`, or a bare address (a prefix of the whole address).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || IpPrefixError(s.chars().take(64).collect());
        let (ip, len) = match s.split_once('/') {
            Some((ip, len)) => {
                // Digits only: `u8::from_str` would also take a `+`.
                if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                let ip: IpAddr = ip.parse().map_err(|_| bad())?;
                (ip, len.parse::<u8>().map_err(|_| bad())?)
            }
            None => {
                let ip: IpAddr = s.parse().map_err(|_| bad())?;
                let full = if canonical_ip(ip).is_ipv4() { 32 } else { 128 };
                (ip, full)
            }
        };
        Self::new(ip, len).ok_or_else(bad)
    }
}

impl std::fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.len)
    }
}

/// `octets` with every bit after the first `len` cleared; `None` when `len`
/// exceeds the address's bits.
fn truncate<const N: usize>(mut octets: [u8; N], len: u8) -> Option<[u8; N]> {
    let len = usize::from(len);
    if len > N * 8 {
        return None;
    }
    for (i, octet) in octets.iter_mut().enumerate() {
        let start = i * 8;
        if start >= len {
            *octet = 0;
        } else if start + 8 > len {
            // `len - start` is 1..=7 here: keep that many high bits.
            let keep = len - start;
            *octet &= 0xffu8 << (8 - keep);
        }
    }
    Some(octets)
}

/// What a verifier tells the issuer about a request it refused for coming
/// from outside its session's IP binding (`POST /sessions/ip-deviation`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpDeviationReport {
    /// The session (`sid`).
    pub sid: String,
    /// The token's client (`client_id`, the device).
    pub client_id: String,
    /// The session's address as the token carries it (absent if unknown).
    #[serde(default)]
    pub session_ip: Option<IpAddr>,
    /// The address the request came from.
    pub request_ip: IpAddr,
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
                ip("2001:db8::1"),
                ip("2001:db8::1"),
                24,
                56
            ),
            IpCheck::Allowed
        );
    }

    #[test]
    fn rejects_a_missing_address_under_a_binding() {
        for binding in [IpBinding::Strict, IpBinding::SamePrefix] {
            assert_eq!(
                ip_check(binding, None, ip("10.0.0.1"), 24, 56),
                IpCheck::Deviates
            );
            assert_eq!(
                ip_check(binding, ip("10.0.0.1"), None, 24, 56),
                IpCheck::Deviates
            );
        }
    }

    #[test]
    fn compares_ipv4_mapped_addresses_as_ipv4() {
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
            ip_check(
                IpBinding::SamePrefix,
                ip("::ffff:10.0.0.1"),
                ip("10.0.0.77"),
                24,
                56
            ),
            IpCheck::Allowed
        );
        assert_eq!(
            ip_check(
                IpBinding::SamePrefix,
                ip("::ffff:10.0.0.1"),
                ip("10.0.1.77"),
                24,
                56
            ),
            IpCheck::Deviates
        );
    }

    #[test]
    fn same_prefix_allows_the_network() {
        let check = |a, b| ip_check(IpBinding::SamePrefix, ip(a), ip(b), 24, 56);
        assert_eq!(check("10.0.0.1", "10.0.0.200"), IpCheck::Allowed);
        assert_eq!(check("10.0.0.1", "10.0.1.1"), IpCheck::Deviates);
        assert_eq!(
            check("2001:db8:0:1::1", "2001:db8:0:2::9"),
            IpCheck::Allowed
        );
        // /56: the 7th octet is 0x01 against 0x00.
        assert_eq!(check("2001:db8:0:100::1", "2001:db8::1"), IpCheck::Deviates);
        assert_eq!(
            check("2001:db8:0:100::1", "2001:db8:1::1"),
            IpCheck::Deviates
        );
        // Families never match.
        assert_eq!(check("10.0.0.1", "2001:db8::1"), IpCheck::Deviates);
        assert_eq!(check("2001:db8::1", "10.0.0.1"), IpCheck::Deviates);
    }

    #[test]
    fn same_prefix_cuts_inside_an_octet() {
        let check = |a, b, len| ip_check(IpBinding::SamePrefix, ip(a), ip(b), len, 128);
        assert_eq!(check("10.0.0.1", "10.0.0.7", 29), IpCheck::Allowed);
        assert_eq!(check("10.0.0.1", "10.0.0.8", 29), IpCheck::Deviates);
        assert_eq!(check("10.0.0.1", "192.0.2.1", 0), IpCheck::Allowed);
        assert_eq!(check("10.0.0.1", "10.0.0.1", 32), IpCheck::Allowed);
        // A prefix longer than the family allows is never met.
        assert_eq!(check("10.0.0.1", "10.0.0.1", 33), IpCheck::Deviates);
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

    #[test]
    fn parses_prefixes() {
        let p: IpPrefix = "10.1.2.3/8".parse().unwrap();
        assert_eq!(p.to_string(), "10.0.0.0/8");
        assert!(p.contains("10.255.0.1".parse().unwrap()));
        assert!(p.contains("::ffff:10.9.9.9".parse().unwrap()));
        assert!(!p.contains("11.0.0.1".parse().unwrap()));
        assert!(!p.contains("::1".parse().unwrap()));
        let v6: IpPrefix = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        let one: IpPrefix = "127.0.0.1".parse().unwrap();
        assert_eq!(one.to_string(), "127.0.0.1/32");
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let mapped: IpPrefix = "::ffff:192.0.2.0/24".parse().unwrap();
        assert_eq!(mapped.to_string(), "192.0.2.0/24");
    }

    #[test]
    fn rejects_malformed_prefixes() {
        for bad in [
            "",
            "10.0.0.0/",
            "10.0.0.0/33",
            "10.0.0.0/+8",
            "10.0.0.0/-1",
            "10.0.0.0/8/8",
            "::/129",
            "10.0.0/8",
            "host/8",
            "/8",
        ] {
            assert!(bad.parse::<IpPrefix>().is_err(), "{bad}");
        }
    }

    #[test]
    fn claim_is_absent_when_off_and_carries_the_canonical_address() {
        assert_eq!(
            IpBindingClaim::new(IpBinding::Off, ip("10.0.0.1"), 24, 56),
            None
        );
        let claim = IpBindingClaim::new(IpBinding::Strict, ip("::ffff:10.0.0.1"), 24, 56).unwrap();
        assert_eq!(claim.ip, ip("10.0.0.1"));
        assert_eq!(
            serde_json::to_value(&claim).unwrap(),
            serde_json::json!({"mode": "strict", "ip": "10.0.0.1", "v4_prefix": 24, "v6_prefix": 56})
        );
        assert_eq!(claim.check(ip("10.0.0.1")), IpCheck::Allowed);
        assert_eq!(claim.check(ip("10.0.0.2")), IpCheck::Deviates);
        assert_eq!(claim.check(None), IpCheck::Deviates);
        let unknown = IpBindingClaim::new(IpBinding::SamePrefix, None, 24, 56).unwrap();
        assert_eq!(
            serde_json::to_value(&unknown).unwrap(),
            serde_json::json!({"mode": "same-prefix", "v4_prefix": 24, "v6_prefix": 56})
        );
        assert_eq!(unknown.check(ip("10.0.0.1")), IpCheck::Deviates);
    }

    proptest::proptest! {
        #[test]
        fn prefix_parsing_never_panics(s in "\\PC{0,48}") {
            let _ = s.parse::<IpPrefix>();
        }

        #[test]
        fn an_address_is_in_each_of_its_prefixes(octets in proptest::array::uniform16(0u8..), len in 0u8..=128) {
            let ip = IpAddr::from(octets);
            // An IPv4-mapped address is IPv4: at most 32 bits.
            let len = if canonical_ip(ip).is_ipv4() { len.min(32) } else { len };
            let prefix = IpPrefix::new(ip, len).unwrap();
            proptest::prop_assert!(prefix.contains(ip));
        }
    }
}
