//! `private_key_jwt` client authentication (RFC 7523 §3, OpenID Connect
//! Core §9): a JWT signed by the client's own key.
//!
//! In Holdfast the client is a device and its key is the enrolled device
//! key, so the assertion proves the same possession a DPoP proof does; the
//! token endpoint requires both, by the same key.

use serde::Deserialize;

use crate::alg::Alg;
use crate::claims::Audience;
use crate::jwk::Jwk;
use crate::jws::{CompactJws, JwsError, truncate};
use crate::proof::MAX_JTI_LEN;
use crate::time::UnixTime;
use crate::verifying_key::VerifyingKey;

/// The `client_assertion_type` for JWT client assertions (RFC 7523 §2.2).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Why a client assertion was refused. All map to `invalid_client`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssertionError {
    /// Not a well-formed JWT.
    #[error("client assertion is not a well-formed JWT: {0}")]
    Malformed(JwsError),
    /// Claims missing or mistyped.
    #[error("client assertion claims are malformed or missing")]
    MalformedClaims,
    /// `alg` is not ES256.
    #[error("client assertion alg must be ES256")]
    AlgNotAllowed,
    /// The signature does not verify with the client's enrolled key.
    #[error("client assertion signature is invalid")]
    InvalidSignature,
    /// `iss` and `sub` are not both the client id (RFC 7523 §3 items 1, 2).
    #[error("client assertion iss and sub must both be the client id")]
    IssSubMismatch,
    /// `aud` names neither the token endpoint nor the issuer (§3 item 3).
    #[error("client assertion audience is not this token endpoint or issuer")]
    AudienceMismatch,
    /// `exp` has passed (§3 item 4).
    #[error("client assertion expired at {exp} (now {now})")]
    Expired {
        /// The assertion's `exp`.
        exp: UnixTime,
        /// The server's time.
        now: UnixTime,
    },
    /// `exp` is further ahead than the server accepts.
    #[error("client assertion lifetime is longer than {max} s")]
    LifetimeTooLong {
        /// The limit in seconds.
        max: u64,
    },
    /// `nbf` is in the future.
    #[error("client assertion is not valid yet")]
    NotYetValid,
    /// `jti` longer than accepted.
    #[error("client assertion jti is longer than {MAX_JTI_LEN} bytes")]
    JtiTooLong,
}

impl AssertionError {
    /// The OAuth error code: always `invalid_client`.
    pub const fn wire_code(&self) -> crate::error::WireCode {
        crate::error::WireCode::InvalidClient
    }
}

/// What a client assertion is checked against.
#[derive(Debug, Clone, Copy)]
pub struct AssertionCheck<'a> {
    /// Acceptable `aud` values: the token endpoint URL and the issuer URL.
    pub audiences: &'a [&'a str],
    /// The server's time.
    pub now: UnixTime,
    /// Longest accepted `exp - now`, in seconds.
    pub max_lifetime: u64,
    /// Allowed clock difference, in seconds.
    pub leeway: u64,
}

/// An assertion that passed every check except `jti` reuse, which the
/// caller records in its replay store (after the DPoP proof also passed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    client_id: String,
    jti: String,
    exp: UnixTime,
}

impl VerifiedAssertion {
    /// The authenticated client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The assertion's `jti`, to record until `exp`.
    pub fn jti(&self) -> &str {
        &self.jti
    }

    /// The assertion's `exp`.
    pub fn exp(&self) -> UnixTime {
        self.exp
    }
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    aud: Audience,
    exp: UnixTime,
    jti: String,
    #[serde(default)]
    nbf: Option<UnixTime>,
}

/// The claimed client id (`sub`), **unverified**: only to find the key to
/// verify with.
///
/// # Errors
/// [`AssertionError::Malformed`] or [`AssertionError::MalformedClaims`].
pub fn assertion_client_id(assertion: &str) -> Result<String, AssertionError> {
    let jws = CompactJws::parse(assertion).map_err(AssertionError::Malformed)?;
    let claims: AssertionClaims =
        serde_json::from_slice(jws.payload()).map_err(|_| AssertionError::MalformedClaims)?;
    Ok(truncate(&claims.sub))
}

/// Verifies a client assertion signed by `key`, the client's enrolled key.
///
/// # Errors
/// The first failed check as an [`AssertionError`].
pub fn verify_client_assertion(
    assertion: &str,
    key: &Jwk,
    check: &AssertionCheck<'_>,
) -> Result<VerifiedAssertion, AssertionError> {
    let jws = CompactJws::parse(assertion).map_err(AssertionError::Malformed)?;
    if jws.header().alg() != Ok(Alg::Es256) {
        return Err(AssertionError::AlgNotAllowed);
    }
    let key = VerifyingKey::new(key, Alg::Es256).map_err(|_| AssertionError::InvalidSignature)?;
    key.verify(jws.signing_input(), jws.signature())
        .map_err(|_| AssertionError::InvalidSignature)?;
    let claims: AssertionClaims =
        serde_json::from_slice(jws.payload()).map_err(|_| AssertionError::MalformedClaims)?;
    if claims.iss != claims.sub {
        return Err(AssertionError::IssSubMismatch);
    }
    if !check.audiences.iter().any(|aud| claims.aud.contains(aud)) {
        return Err(AssertionError::AudienceMismatch);
    }
    if check.now.minus(check.leeway) >= claims.exp {
        return Err(AssertionError::Expired {
            exp: claims.exp,
            now: check.now,
        });
    }
    if claims.exp > check.now.plus(check.max_lifetime + check.leeway) {
        return Err(AssertionError::LifetimeTooLong {
            max: check.max_lifetime,
        });
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf > check.now.plus(check.leeway))
    {
        return Err(AssertionError::NotYetValid);
    }
    if claims.jti.is_empty() {
        return Err(AssertionError::MalformedClaims);
    }
    if claims.jti.len() > MAX_JTI_LEN {
        return Err(AssertionError::JtiTooLong);
    }
    Ok(VerifiedAssertion {
        client_id: claims.sub,
        jti: claims.jti,
        exp: claims.exp,
    })
}
