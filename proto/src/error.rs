//! Errors that map to the wire: each names the check that failed, and
//! [`ProofError::wire_code`] / [`TokenError::wire_code`] decide the OAuth
//! error code in one place.

use core::fmt;

use crate::jwk::JwkError;
use crate::jws::JwsError;
use crate::time::UnixTime;

/// The OAuth error codes Holdfast's checks produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WireCode {
    /// `invalid_dpop_proof` (RFC 9449 §5, §7.1).
    InvalidDpopProof,
    /// `use_dpop_nonce` (RFC 9449 §8, §9): retry with the nonce in `DPoP-Nonce`.
    UseDpopNonce,
    /// `invalid_token` (RFC 6750 §3.1).
    InvalidToken,
    /// `invalid_client` (RFC 6749 §5.2): client authentication failed.
    InvalidClient,
    /// `server_error` (the code RFC 6749 §4.1.2.1 defines for a server that
    /// cannot complete a request): the check could not be completed, so the
    /// request is refused (fail closed).
    ServerError,
}

impl WireCode {
    /// The registered error code.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::InvalidToken => "invalid_token",
            Self::InvalidClient => "invalid_client",
            Self::ServerError => "server_error",
        }
    }
}

impl fmt::Display for WireCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a DPoP proof was refused. Each variant names one check of RFC 9449
/// §4.3 or §11; its `Display` is the `error_description`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// No `DPoP` header (§4.3 step 1).
    #[error("missing DPoP proof")]
    MissingDpopHeader,
    /// More than one `DPoP` header (§4.3 step 1).
    #[error("more than one DPoP header")]
    MultipleDpopHeaders,
    /// Not a single well-formed compact JWS (§4.3 step 2).
    #[error("DPoP proof is not a well-formed JWT: {0}")]
    Malformed(JwsError),
    /// `typ` is not `dpop+jwt` (§4.3 step 4).
    #[error("DPoP proof typ must be \"dpop+jwt\"")]
    TypMismatch,
    /// `alg` is not an allowed asymmetric algorithm (§4.3 step 5).
    #[error("DPoP proof alg \"{alg}\" is not allowed")]
    AlgNotAllowed {
        /// The `alg` sent (truncated).
        alg: String,
    },
    /// No `jwk` header (§4.2).
    #[error("DPoP proof has no jwk header")]
    MissingJwk,
    /// The `jwk` header holds a private key (§4.3 step 7).
    #[error("DPoP proof jwk contains the private key member \"{0}\"")]
    JwkHasPrivateKey(&'static str),
    /// The `jwk` header is not a usable public key.
    #[error("DPoP proof jwk is invalid: {0}")]
    InvalidJwk(JwkError),
    /// The `jwk` cannot verify the `alg` (e.g. ES256 with an RSA key).
    #[error("DPoP proof jwk does not fit alg \"{alg}\"")]
    AlgKeyMismatch {
        /// The `alg` of the header.
        alg: &'static str,
    },
    /// The signature does not verify with the `jwk` (§4.3 step 6).
    #[error("DPoP proof signature is invalid")]
    InvalidSignature,
    /// The payload is not a JSON object of correctly typed claims (§4.3 step 3).
    #[error("DPoP proof claims are malformed")]
    MalformedClaims,
    /// A required claim is absent (§4.3 step 3).
    #[error("DPoP proof has no \"{0}\" claim")]
    MissingClaim(&'static str),
    /// `jti` is longer than this verifier accepts (§11.1: the replay cache
    /// must not be made to store arbitrary amounts of data).
    #[error("DPoP proof jti is longer than {max} bytes")]
    JtiTooLong {
        /// The limit.
        max: usize,
    },
    /// `htm` is not the request method (§4.3 step 8).
    #[error("DPoP proof htm \"{found}\" does not match the request method \"{expected}\"")]
    HtmMismatch {
        /// The request's method.
        expected: String,
        /// The proof's `htm` (truncated).
        found: String,
    },
    /// `htu` is not the request URI (§4.3 step 9).
    #[error("DPoP proof htu \"{found}\" does not match the request URI \"{expected}\"")]
    HtuMismatch {
        /// The configured public URI of the endpoint.
        expected: String,
        /// The proof's `htu` (truncated).
        found: String,
    },
    /// `iat` is older than the acceptance window (§4.3 step 11).
    #[error("DPoP proof is too old: iat {iat} is more than {max_age} s before now ({now})")]
    IatTooOld {
        /// The proof's `iat`.
        iat: UnixTime,
        /// The verifier's time.
        now: UnixTime,
        /// The window, in seconds.
        max_age: u64,
    },
    /// `iat` is further in the future than clock skew explains (§4.3 step 11).
    #[error(
        "DPoP proof is from the future: iat {iat} is more than {max_future} s after now ({now})"
    )]
    IatInFuture {
        /// The proof's `iat`.
        iat: UnixTime,
        /// The verifier's time.
        now: UnixTime,
        /// The allowance, in seconds.
        max_future: u64,
    },
    /// An access token was presented, and the proof has no `ath` (§4.3 step 12).
    #[error("DPoP proof has no \"ath\" claim, and an access token was presented")]
    AthMissing,
    /// `ath` is not the hash of the presented access token (§4.3 step 12).
    #[error("DPoP proof ath does not match the access token")]
    AthMismatch,
    /// The proof key is not the key the token is bound to (§4.3 step 12, §7.1).
    #[error("DPoP proof key does not match the key the access token is bound to")]
    JktMismatch,
    /// The server demands a nonce and the proof has none (§8, §9).
    #[error("a DPoP nonce is required")]
    NonceMissing,
    /// The proof's nonce is not the current one (§4.3 step 10).
    #[error("the DPoP nonce is invalid or expired")]
    NonceInvalid,
    /// The `jti` was already used within the window (§11.1).
    #[error("DPoP proof has already been used (jti replayed)")]
    JtiReplayed,
    /// The replay guard could not answer; the proof is refused.
    #[error("the DPoP replay check is unavailable")]
    ReplayGuardUnavailable,
}

impl ProofError {
    /// The OAuth error code for this refusal: a missing or stale nonce is
    /// `use_dpop_nonce` (never `invalid_dpop_proof`, so clients retry), an
    /// unavailable replay guard is `server_error`, the rest `invalid_dpop_proof`.
    pub const fn wire_code(&self) -> WireCode {
        match self {
            Self::NonceMissing | Self::NonceInvalid => WireCode::UseDpopNonce,
            Self::ReplayGuardUnavailable => WireCode::ServerError,
            _ => WireCode::InvalidDpopProof,
        }
    }

    /// A stable, short name for the failed check, for logs and metrics
    /// (`check="iat_too_old"`).
    pub const fn check(&self) -> &'static str {
        match self {
            Self::MissingDpopHeader => "missing_dpop_header",
            Self::MultipleDpopHeaders => "multiple_dpop_headers",
            Self::Malformed(_) => "malformed",
            Self::TypMismatch => "typ_mismatch",
            Self::AlgNotAllowed { .. } => "alg_not_allowed",
            Self::MissingJwk => "missing_jwk",
            Self::JwkHasPrivateKey(_) => "jwk_has_private_key",
            Self::InvalidJwk(_) => "invalid_jwk",
            Self::AlgKeyMismatch { .. } => "alg_key_mismatch",
            Self::InvalidSignature => "invalid_signature",
            Self::MalformedClaims => "malformed_claims",
            Self::MissingClaim(_) => "missing_claim",
            Self::JtiTooLong { .. } => "jti_too_long",
            Self::HtmMismatch { .. } => "htm_mismatch",
            Self::HtuMismatch { .. } => "htu_mismatch",
            Self::IatTooOld { .. } => "iat_too_old",
            Self::IatInFuture { .. } => "iat_in_future",
            Self::AthMissing => "ath_missing",
            Self::AthMismatch => "ath_mismatch",
            Self::JktMismatch => "jkt_mismatch",
            Self::NonceMissing => "nonce_missing",
            Self::NonceInvalid => "nonce_invalid",
            Self::JtiReplayed => "jti_replayed",
            Self::ReplayGuardUnavailable => "replay_guard_unavailable",
        }
    }
}

/// Why an access token's claims were refused (RFC 9068 §4). All map to
/// `invalid_token`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a well-formed JWT.
    #[error("access token is not a well-formed JWT: {0}")]
    Malformed(JwsError),
    /// `typ` is not `at+jwt` (RFC 9068 §2.1).
    #[error("access token typ must be \"at+jwt\"")]
    TypMismatch,
    /// The claims are not the RFC 9068 set with the right types.
    #[error("access token claims are malformed")]
    MalformedClaims,
    /// `iss` is not the expected issuer.
    #[error("access token issuer does not match")]
    IssuerMismatch,
    /// `aud` does not name this resource.
    #[error("access token audience does not match")]
    AudienceMismatch,
    /// `exp` has passed.
    #[error("access token expired at {exp} (now {now})")]
    Expired {
        /// The token's `exp`.
        exp: UnixTime,
        /// The verifier's time.
        now: UnixTime,
    },
    /// `nbf` is still in the future.
    #[error("access token is not valid before {nbf} (now {now})")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: UnixTime,
        /// The verifier's time.
        now: UnixTime,
    },
    /// The token is not DPoP-bound (no `cnf.jkt`).
    #[error("access token is not bound to a DPoP key")]
    NotDpopBound,
    /// The signature does not verify with the issuer's key.
    #[error("access token signature is invalid")]
    InvalidSignature,
    /// The `kid` names no key the issuer publishes.
    #[error("access token is signed by an unknown key \"{kid}\"")]
    UnknownKey {
        /// The token's `kid` (truncated; empty when absent).
        kid: String,
    },
}

impl TokenError {
    /// The OAuth error code: always `invalid_token`.
    pub const fn wire_code(&self) -> WireCode {
        WireCode::InvalidToken
    }

    /// A stable, short name for the failed check, for logs and metrics.
    pub const fn check(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::TypMismatch => "typ_mismatch",
            Self::MalformedClaims => "malformed_claims",
            Self::IssuerMismatch => "issuer_mismatch",
            Self::AudienceMismatch => "audience_mismatch",
            Self::Expired { .. } => "expired",
            Self::NotYetValid { .. } => "not_yet_valid",
            Self::NotDpopBound => "not_dpop_bound",
            Self::InvalidSignature => "invalid_signature",
            Self::UnknownKey { .. } => "unknown_key",
        }
    }
}
