//! The access token as a secret, and its hash as carried in `ath`.

use core::fmt;

use aws_lc_rs::digest;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::b64;

/// An access token: a bearer of authority until it is bound, so it is
/// never printed and is compared in constant time.
#[derive(Clone)]
pub struct AccessToken(Zeroizing<String>);

impl AccessToken {
    /// Wraps a token received from the issuer or a request.
    pub fn new(token: impl Into<String>) -> Self {
        Self(Zeroizing::new(token.into()))
    }

    /// The token text, to put in an `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `ath`: base64url(SHA-256(ASCII(token))) (RFC 9449 §4.2).
    pub fn ath(&self) -> String {
        ath(&self.0)
    }
}

/// `ath` for a token given as text (RFC 9449 §4.2).
pub fn ath(token: &str) -> String {
    b64::encode(digest::digest(&digest::SHA256, token.as_bytes()).as_ref())
}

/// Compares an `ath` claim with the hash of `token` in constant time.
pub(crate) fn ath_matches(claimed: &str, token: &str) -> bool {
    ath(token).as_bytes().ct_eq(claimed.as_bytes()).into()
}

impl PartialEq for AccessToken {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for AccessToken {}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ath_of_rfc9449_token() {
        // RFC 9449 Figure 13's token and its `ath`.
        assert_eq!(
            ath("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }

    #[test]
    fn debug_hides_token() {
        assert_eq!(
            format!("{:?}", AccessToken::new("secret")),
            "AccessToken(..)"
        );
    }
}
