//! RFC 7638 JWK thumbprints: the `jkt` that binds a token to a key
//! (RFC 9449 §6).

use core::fmt;
use core::str::FromStr;

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};

use crate::b64;
use crate::jwk::Jwk;

/// Length of a SHA-256 thumbprint in base64url characters.
const JKT_LEN: usize = 43;

/// A SHA-256 JWK thumbprint (RFC 7638), as carried in `cnf.jkt`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Jkt([u8; JKT_LEN]);

impl Jkt {
    /// The thumbprint as its 43 base64url characters.
    pub fn as_str(&self) -> &str {
        // Only ever built from base64url output, which is ASCII.
        core::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The 32-byte SHA-256 digest.
    pub fn digest(&self) -> [u8; 32] {
        b64::decode_array(self.as_str()).unwrap_or_default()
    }

    fn from_digest(digest: &[u8]) -> Self {
        let mut out = [0u8; JKT_LEN];
        let text = b64::encode(digest);
        for (dst, src) in out.iter_mut().zip(text.bytes()) {
            *dst = src;
        }
        Self(out)
    }
}

impl Jwk {
    /// The RFC 7638 §3 SHA-256 thumbprint: the hash of the required members,
    /// in lexicographic order, with no whitespace.
    pub fn thumbprint(&self) -> Jkt {
        let canonical = match self {
            // Member values are base64url or fixed curve names: nothing in
            // them needs JSON escaping.
            Self::Ec(key) => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                key.crv().name(),
                b64::encode(key.x()),
                b64::encode(key.y())
            ),
            Self::Rsa(key) => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, key.e(), key.n()),
            Self::Okp(key) => format!(
                r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
                key.crv().name(),
                b64::encode(key.x())
            ),
        };
        Jkt::from_digest(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
    }
}

impl FromStr for Jkt {
    type Err = JktError;

    fn from_str(s: &str) -> Result<Self, JktError> {
        let digest: [u8; 32] = b64::decode_array(s).ok_or(JktError)?;
        Ok(Self::from_digest(&digest))
    }
}

impl TryFrom<String> for Jkt {
    type Error = JktError;

    fn try_from(s: String) -> Result<Self, JktError> {
        s.parse()
    }
}

impl From<Jkt> for String {
    fn from(jkt: Jkt) -> Self {
        jkt.as_str().to_owned()
    }
}

impl Serialize for Jkt {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Jkt {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <&str>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Jkt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Jkt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Jkt({})", self.as_str())
    }
}

/// A string that is not a SHA-256 thumbprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a JWK SHA-256 thumbprint (43 base64url characters)")]
pub struct JktError;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_ignores_member_order_and_extra_members() {
        let a = Jwk::from_json(r#"{"kty":"EC","crv":"P-256","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}"#).unwrap();
        let b = Jwk::from_json(r#"{"y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","kid":"x","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","crv":"P-256","kty":"EC"}"#).unwrap();
        assert_eq!(a.thumbprint(), b.thumbprint());
        assert_eq!(
            a.thumbprint().as_str(),
            "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
        );
    }

    #[test]
    fn jkt_parses_only_43_base64url_characters() {
        let jkt: Jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
            .parse()
            .unwrap();
        assert_eq!(
            jkt.to_string(),
            "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
        );
        assert!("0ZcOCORZNYy".parse::<Jkt>().is_err());
        assert!(
            "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I="
                .parse::<Jkt>()
                .is_err()
        );
    }
}
