//! The `htu` claim: an HTTP URI without query and fragment (RFC 9449 §4.2),
//! compared after RFC 3986 §6.2.2 syntax-based and §6.2.3 scheme-based
//! normalisation.
//!
//! The verifier compares a proof's `htu` with the URL the server is
//! *configured* to serve, never with a `Host` header an attacker controls.

use core::fmt;
use core::str::FromStr;

/// Longest URI accepted.
const MAX_HTU_LEN: usize = 2048;

/// A normalised `http`/`https` URI with no query, fragment or userinfo.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Htu(String);

/// Why a string is not an acceptable `htu`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HtuError {
    /// Empty, too long, or containing characters a URI cannot hold.
    #[error("not a URI")]
    Malformed,
    /// A scheme other than `http` or `https`.
    #[error("the scheme is not http or https")]
    UnsupportedScheme,
    /// No `//authority`, or an empty host.
    #[error("the URI has no host")]
    MissingHost,
    /// `user:password@` in the authority.
    #[error("the URI carries userinfo")]
    HasUserinfo,
    /// A host with characters a host cannot hold.
    #[error("the host is not valid")]
    InvalidHost,
    /// A port that is not a number in 1..=65535.
    #[error("the port is not valid")]
    InvalidPort,
    /// A `%` not followed by two hexadecimal digits.
    #[error("bad percent-encoding")]
    BadPercentEncoding,
}

impl Htu {
    /// Parses and normalises `uri`, dropping any query and fragment.
    ///
    /// # Errors
    /// An [`HtuError`] naming the first problem.
    pub fn parse(uri: &str) -> Result<Self, HtuError> {
        if uri.is_empty() || uri.len() > MAX_HTU_LEN {
            return Err(HtuError::Malformed);
        }
        if !uri.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(HtuError::Malformed);
        }
        // Query and fragment are not part of `htu` (RFC 9449 §4.3 step 9).
        let end = uri.find(['?', '#']).unwrap_or(uri.len());
        let uri = uri.get(..end).ok_or(HtuError::Malformed)?;

        let (scheme, rest) = uri.split_once(':').ok_or(HtuError::Malformed)?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return Err(HtuError::UnsupportedScheme),
        };
        let rest = rest.strip_prefix("//").ok_or(HtuError::MissingHost)?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (
                rest.get(..i).unwrap_or_default(),
                rest.get(i..).unwrap_or_default(),
            ),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(HtuError::HasUserinfo);
        }
        let (host, port) = split_host_port(authority)?;
        let host = normalise_host(host)?;

        let mut out = String::with_capacity(uri.len() + 1);
        out.push_str(&scheme);
        out.push_str("://");
        out.push_str(&host);
        match port {
            Some(port) if port != default_port => {
                out.push(':');
                out.push_str(&port.to_string());
            }
            _ => {}
        }
        let path = normalise_percent_encoding(path)?;
        let path = remove_dot_segments(&path);
        // §6.2.3: an empty path is equivalent to "/".
        if path.is_empty() {
            out.push('/');
        } else {
            out.push_str(&path);
        }
        Ok(Self(out))
    }

    /// The normalised URI.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Htu {
    type Err = HtuError;

    fn from_str(s: &str) -> Result<Self, HtuError> {
        Self::parse(s)
    }
}

impl fmt::Display for Htu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Htu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Htu({})", self.0)
    }
}

/// Splits `host[:port]`, with `[v6]` literals. An empty port (`host:`) is
/// the same as none (RFC 3986 §6.2.3).
fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), HtuError> {
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']').ok_or(HtuError::InvalidHost)?;
        let host = authority.get(..=close).ok_or(HtuError::InvalidHost)?;
        let after = authority.get(close + 1..).unwrap_or_default();
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(after.strip_prefix(':').ok_or(HtuError::InvalidHost)?),
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(digits) => {
            if digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HtuError::InvalidPort);
            }
            match digits.parse::<u16>() {
                Ok(0) | Err(_) => return Err(HtuError::InvalidPort),
                Ok(port) => Some(port),
            }
        }
    };
    Ok((host, port))
}

/// Lower-cases a registered name or IP literal (§6.2.2.1). Percent-encoded
/// hosts are refused: no real service is named that way.
fn normalise_host(host: &str) -> Result<String, HtuError> {
    if host.is_empty() {
        return Err(HtuError::MissingHost);
    }
    let ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        !inner.is_empty()
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        host.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b))
    };
    if !ok {
        return Err(HtuError::InvalidHost);
    }
    Ok(host.to_ascii_lowercase())
}

/// §6.2.2.1 and §6.2.2.2: hex digits upper-cased, unreserved characters
/// decoded; characters a path cannot hold refused.
fn normalise_percent_encoding(path: &str) -> Result<String, HtuError> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let (Some(&hi), Some(&lo)) = (bytes.get(i + 1), bytes.get(i + 2)) else {
                return Err(HtuError::BadPercentEncoding);
            };
            let (Some(h), Some(l)) = (hex_value(hi), hex_value(lo)) else {
                return Err(HtuError::BadPercentEncoding);
            };
            let decoded = h << 4 | l;
            if is_unreserved(decoded) {
                out.push(char::from(decoded));
            } else {
                out.push('%');
                out.push(char::from(hi.to_ascii_uppercase()));
                out.push(char::from(lo.to_ascii_uppercase()));
            }
            i += 3;
        } else {
            if !(is_unreserved(b) || b"!$&'()*+,;=:@/".contains(&b)) {
                return Err(HtuError::Malformed);
            }
            out.push(char::from(b));
            i += 1;
        }
    }
    Ok(out)
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 §5.2.4, on a path that starts with `/` (or is empty).
fn remove_dot_segments(path: &str) -> String {
    let mut output: Vec<&str> = Vec::new();
    let mut segments = path.split('/').skip(1).peekable();
    let mut trailing_slash = false;
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        match segment {
            "." => trailing_slash = last,
            ".." => {
                output.pop();
                trailing_slash = last;
            }
            _ => {
                output.push(segment);
                trailing_slash = false;
            }
        }
    }
    if path.is_empty() {
        return String::new();
    }
    let mut out = String::with_capacity(path.len());
    for segment in &output {
        out.push('/');
        out.push_str(segment);
    }
    if trailing_slash || out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalises_per_rfc3986() {
        let cases = [
            (
                "https://server.example.com/token",
                "https://server.example.com/token",
            ),
            (
                "HTTPS://Server.EXAMPLE.com/token",
                "https://server.example.com/token",
            ),
            (
                "https://server.example.com:443/token",
                "https://server.example.com/token",
            ),
            (
                "http://server.example.com:80/token",
                "http://server.example.com/token",
            ),
            (
                "https://server.example.com:/token",
                "https://server.example.com/token",
            ),
            (
                "https://server.example.com:8443/token",
                "https://server.example.com:8443/token",
            ),
            (
                "https://server.example.com:08443/token",
                "https://server.example.com:8443/token",
            ),
            ("https://server.example.com", "https://server.example.com/"),
            (
                "https://server.example.com?x=1",
                "https://server.example.com/",
            ),
            (
                "https://server.example.com/a/./b/../c",
                "https://server.example.com/a/c",
            ),
            (
                "https://server.example.com/a/b/..",
                "https://server.example.com/a/",
            ),
            (
                "https://server.example.com/../../a",
                "https://server.example.com/a",
            ),
            (
                "https://server.example.com/%7euser/%2fx%2a",
                "https://server.example.com/~user/%2Fx%2A",
            ),
            (
                "https://server.example.com/%2E%2E/a",
                "https://server.example.com/a",
            ),
            (
                "https://server.example.com/token?a=b#frag",
                "https://server.example.com/token",
            ),
            (
                "https://server.example.com/token#frag",
                "https://server.example.com/token",
            ),
            ("https://[::1]:443/x", "https://[::1]/x"),
            ("https://[FE80::1]:8443/x", "https://[fe80::1]:8443/x"),
        ];
        for (input, expected) in cases {
            assert_eq!(Htu::parse(input).unwrap().as_str(), expected, "{input}");
        }
    }

    #[test]
    fn refuses_what_is_not_an_http_uri() {
        let cases = [
            ("", HtuError::Malformed),
            ("https://a b/", HtuError::Malformed),
            ("server.example.com/token", HtuError::Malformed),
            ("ftp://server.example.com/", HtuError::UnsupportedScheme),
            ("https:/server.example.com/", HtuError::MissingHost),
            ("https:///token", HtuError::MissingHost),
            ("https://user:pw@server.example.com/", HtuError::HasUserinfo),
            ("https://server.example.com:99999/", HtuError::InvalidPort),
            ("https://server.example.com:0/", HtuError::InvalidPort),
            ("https://server.example.com:x/", HtuError::InvalidPort),
            ("https://serv%65r.example.com/", HtuError::InvalidHost),
            ("https://[::1/", HtuError::InvalidHost),
            (
                "https://server.example.com/%zz",
                HtuError::BadPercentEncoding,
            ),
            (
                "https://server.example.com/%4",
                HtuError::BadPercentEncoding,
            ),
            ("https://server.example.com/\"", HtuError::Malformed),
            ("https://server.example.com/é", HtuError::Malformed),
        ];
        for (input, expected) in cases {
            assert_eq!(Htu::parse(input), Err(expected), "{input}");
        }
    }

    proptest! {
        #[test]
        fn normalisation_is_idempotent(path in "(/[a-zA-Z0-9._~%-]{0,6}){0,5}", host in "[a-zA-Z0-9.-]{1,12}", port in proptest::option::of(1u16..)) {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            if let Ok(once) = Htu::parse(&format!("hTTps://{host}{port}{path}")) {
                let twice = Htu::parse(once.as_str()).unwrap();
                prop_assert_eq!(once, twice);
            }
        }

        #[test]
        fn never_panics(input in "\\PC{0,64}") {
            let _ = Htu::parse(&input);
        }
    }
}
