//! Refusals at a protected resource (RFC 9449 §7.1, RFC 6750 §3): the
//! status, the OAuth error code and the `WWW-Authenticate: DPoP` challenge,
//! decided in one place.

use std::net::IpAddr;

use holdfast_proto::{AllowedAlgs, ProofError, TokenError, WireCode, dpop_challenge};

use crate::registry::RegistryRefusal;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No `Authorization` header: answered with a bare challenge.
    #[error("an access token is required")]
    MissingToken,
    /// Two `Authorization` headers, two schemes, or a malformed one.
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// A token under the `Bearer` scheme: Holdfast tokens are DPoP-bound
    /// and never accepted as bearer tokens (RFC 9449 §7.2, no downgrade).
    #[error("a DPoP-bound access token must be sent with the DPoP scheme, not Bearer")]
    BearerDowngrade,
    /// The token is not a valid token of the issuer.
    #[error("{0}")]
    Token(#[from] TokenError),
    /// The issuer's registry refuses what the token names.
    #[error("{0}")]
    Registry(#[from] RegistryRefusal),
    /// The proof was refused.
    #[error("{0}")]
    Proof(#[from] ProofError),
    /// The token's session is bound to an address (`ipb`: `strict` or
    /// `same-prefix`) and the request came from outside it, or from an
    /// address the verifier does not know (fail closed). Reported to the
    /// issuer, which applies its policy to the session.
    #[error("request from an address outside the session's IP binding")]
    IpDeviation {
        /// The session (`sid`).
        sid: String,
        /// The token's client (`client_id`).
        client_id: String,
        /// The session's address, as the token carries it.
        session_ip: Option<IpAddr>,
        /// The request's address, if known.
        request_ip: Option<IpAddr>,
    },
}

impl VerifyError {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidRequest(_) => 400,
            Self::Registry(RegistryRefusal::Stale { .. }) => 503,
            Self::Proof(e) if e.wire_code() == WireCode::ServerError => 500,
            _ => 401,
        }
    }

    /// The OAuth error code; `None` for a request without credentials
    /// (RFC 6750 §3.1: no error code then).
    pub fn wire_code(&self) -> Option<&'static str> {
        match self {
            Self::MissingToken => None,
            Self::InvalidRequest(_) => Some("invalid_request"),
            Self::BearerDowngrade | Self::Token(_) | Self::IpDeviation { .. } => {
                Some(WireCode::InvalidToken.as_str())
            }
            Self::Registry(RegistryRefusal::Stale { .. }) => Some("temporarily_unavailable"),
            Self::Registry(_) => Some(WireCode::InvalidToken.as_str()),
            Self::Proof(e) => Some(e.wire_code().as_str()),
        }
    }

    /// A stable name of the failed check, for logs and metrics.
    pub fn check(&self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::InvalidRequest(_) => "invalid_request",
            Self::BearerDowngrade => "bearer_downgrade",
            Self::Token(e) => e.check(),
            Self::Registry(e) => e.check(),
            Self::Proof(e) => e.check(),
            Self::IpDeviation { .. } => "ip_deviation",
        }
    }

    /// The `WWW-Authenticate` value (RFC 9449 §7.1).
    pub fn www_authenticate(&self, algs: &AllowedAlgs) -> String {
        let description = self.to_string();
        dpop_challenge(
            self.wire_code().map(|code| (code, description.as_str())),
            algs,
        )
    }
}
