//! Who the client is, by address: the TCP peer, unless the peer is a
//! trusted proxy, in which case `X-Forwarded-For` is read from the right,
//! past every trusted proxy, to the first address that is not one.
//!
//! Only entries added by trusted proxies are believed: everything to the
//! left of the first untrusted address was written by that client (or by
//! proxies it chose) and may be anything.

use std::net::{IpAddr, SocketAddr};

use holdfast_proto::IpPrefix;

/// The client's address, given the TCP `peer`, every `X-Forwarded-For`
/// value in order, and the `trusted` proxies.
///
/// - No peer (the service was not served with `ConnectInfo`): `None`.
/// - An untrusted peer: the peer, whatever the header says.
/// - A trusted peer: walking `X-Forwarded-For` from the right, the first
///   address that is not a trusted proxy. An entry that is not an address
///   (`unknown`, garbage) ends the walk with `None`: the chain cannot be
///   followed past it (fail closed). When every entry is trusted, the
///   leftmost; with no header, the peer itself.
pub(crate) fn client_ip<'a>(
    peer: Option<IpAddr>,
    forwarded_for: impl DoubleEndedIterator<Item = &'a [u8]>,
    trusted: &[IpPrefix],
) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let mut client = peer;
    for value in forwarded_for.rev() {
        let value = std::str::from_utf8(value).ok()?;
        for entry in value.rsplit(',') {
            let ip = parse_entry(entry.trim())?;
            client = ip;
            if !is_trusted(ip) {
                return Some(ip);
            }
        }
    }
    Some(client)
}

/// One `X-Forwarded-For` entry: an address, or an address with a port
/// (`192.0.2.1:443`, `[2001:db8::1]:443`), as some proxies write.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trusted() -> Vec<IpPrefix> {
        vec!["10.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()]
    }

    fn resolve(peer: &str, headers: &[&str]) -> Option<IpAddr> {
        client_ip(
            Some(ip(peer)),
            headers.iter().map(|h| h.as_bytes()),
            &trusted(),
        )
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        assert_eq!(
            resolve("192.0.2.9", &["203.0.113.1"]),
            Some(ip("192.0.2.9"))
        );
        assert_eq!(resolve("192.0.2.9", &[]), Some(ip("192.0.2.9")));
        assert_eq!(resolve("192.0.2.9", &["garbage"]), Some(ip("192.0.2.9")));
    }

    #[test]
    fn a_trusted_peer_is_followed_to_the_first_untrusted_address() {
        // The client spoofed 1.2.3.4; the first proxy (10.0.0.1) appended
        // the real client, the second (10.0.0.2) appended the first.
        assert_eq!(
            resolve("10.0.0.2", &["1.2.3.4, 198.51.100.7, 10.0.0.1"]),
            Some(ip("198.51.100.7"))
        );
        // The same chain over several header lines.
        assert_eq!(
            resolve("10.0.0.2", &["1.2.3.4", "198.51.100.7, 10.0.0.1"]),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            resolve("::1", &["[2001:db8::7]:443"]),
            Some(ip("2001:db8::7"))
        );
        assert_eq!(
            resolve("10.0.0.2", &["198.51.100.7:5000"]),
            Some(ip("198.51.100.7"))
        );
    }

    #[test]
    fn a_trusted_peer_without_a_header_is_the_client() {
        assert_eq!(resolve("10.0.0.2", &[]), Some(ip("10.0.0.2")));
        // Every entry trusted: the leftmost.
        assert_eq!(
            resolve("10.0.0.2", &["10.0.0.3, 10.0.0.1"]),
            Some(ip("10.0.0.3"))
        );
    }

    #[test]
    fn rejects_an_unreadable_entry_on_the_trusted_path() {
        assert_eq!(resolve("10.0.0.2", &["198.51.100.7, unknown"]), None);
        assert_eq!(resolve("10.0.0.2", &[""]), None);
        // Left of the first untrusted address nothing is read.
        assert_eq!(
            resolve("10.0.0.2", &["unknown, 198.51.100.7"]),
            Some(ip("198.51.100.7"))
        );
    }

    #[test]
    fn no_peer_is_no_client() {
        assert_eq!(client_ip(None, std::iter::empty(), &trusted()), None);
    }
}
