//! Signing compact JWTs with any [`Signer`], and verifying RFC 9068 access
//! tokens against the issuer's keys.

use std::sync::Arc;

use serde::Serialize;

use crate::alg::Alg;
use crate::b64;
use crate::claims::{AccessTokenClaims, TokenCheck};
use crate::error::TokenError;
use crate::jwk::Jwk;
use crate::jws::{CompactJws, truncate};
use crate::signer::{Signer, SignerError};
use crate::verifying_key::VerifyingKey;

/// The `typ` of an access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The protected header of a JWT this crate signs.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct JwtHeader<'a> {
    /// `typ`, e.g. `dpop+jwt` or `at+jwt`.
    pub typ: &'a str,
    /// `kid`: which issuer key signed (access tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<&'a str>,
    /// `jwk`: the signer's public key (DPoP proofs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwk: Option<&'a Jwk>,
}

/// Signs `claims` as a compact JWS with `header` plus the signer's `alg`.
///
/// # Errors
/// [`SignerError`] if the claims cannot be encoded or the key fails.
pub fn sign_jwt<S, C>(signer: &S, header: &JwtHeader<'_>, claims: &C) -> Result<String, SignerError>
where
    S: Signer + ?Sized,
    C: Serialize + ?Sized,
{
    #[derive(Serialize)]
    struct Header<'a> {
        typ: &'a str,
        alg: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        kid: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        jwk: Option<&'a Jwk>,
    }
    let header = Header {
        typ: header.typ,
        alg: signer.alg().name(),
        kid: header.kid,
        jwk: header.jwk,
    };
    let header = serde_json::to_vec(&header)
        .map_err(|e| SignerError::with_source("cannot encode header", e))?;
    let claims = serde_json::to_vec(claims)
        .map_err(|e| SignerError::with_source("cannot encode claims", e))?;
    let mut jws = b64::encode(&header);
    jws.push('.');
    jws.push_str(&b64::encode(&claims));
    let signature = signer.try_sign(jws.as_bytes())?;
    jws.push('.');
    jws.push_str(&b64::encode(&signature));
    Ok(jws)
}

/// Finds the issuer's verifying key for a `kid`.
pub trait IssuerKeys {
    /// The key named `kid`, if the issuer publishes it.
    fn key(&self, kid: &str) -> Option<Arc<VerifyingKey>>;
}

/// Verifies an access token's signature (by the issuer key its `kid` names),
/// `typ`, and claims.
///
/// # Errors
/// The first failed check as a [`TokenError`].
pub fn verify_access_token(
    token: &str,
    keys: &dyn IssuerKeys,
    check: &TokenCheck<'_>,
) -> Result<AccessTokenClaims, TokenError> {
    let jws = CompactJws::parse(token).map_err(TokenError::Malformed)?;
    let header = jws.header();
    // RFC 9068 §4: typ is at+jwt (the full media type is equivalent).
    if !matches!(header.typ(), Some(ACCESS_TOKEN_TYP | "application/at+jwt")) {
        return Err(TokenError::TypMismatch);
    }
    let kid = header
        .kid()
        .ok_or(TokenError::UnknownKey { kid: String::new() })?;
    let key = keys
        .key(kid)
        .ok_or_else(|| TokenError::UnknownKey { kid: truncate(kid) })?;
    // The alg must be the key's: never let the token choose (RFC 8725 §3.1).
    if header.alg() != Ok(key.alg()) || !matches!(key.alg(), Alg::Es256 | Alg::Es384 | Alg::EdDsa) {
        return Err(TokenError::InvalidSignature);
    }
    key.verify(jws.signing_input(), jws.signature())
        .map_err(|_| TokenError::InvalidSignature)?;
    let claims: AccessTokenClaims =
        serde_json::from_slice(jws.payload()).map_err(|_| TokenError::MalformedClaims)?;
    claims.check(check)?;
    Ok(claims)
}

#[cfg(test)]
mod tests;
