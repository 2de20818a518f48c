//! The per-request decision (RFC 9449 §7 with the §4.3 proof checks), pure:
//! it reads headers, method and path, and the state it is given; it does no
//! IO. Cheap checks first; then the proof, which records its `jti`; then,
//! for a token whose session is IP-bound, the client's address (after the
//! proof on purpose: see [`check`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use aws_lc_rs::digest;
use holdfast_proto::{
    AccessTokenClaims, Htu, IpCheck, IssuerKeys, NonceCheck, ProofCheck, ProofError, ProofVerifier,
    ReplayGuard, TokenCheck, UnixTime, single_dpop_header, verify_access_token,
};

use crate::error::VerifyError;
use crate::identity::VerifiedIdentity;
use crate::registry::Registry;

/// The parts of a request the check reads.
#[derive(Debug, Clone)]
pub struct RequestParts<'a> {
    /// The method, e.g. `GET`.
    pub method: &'a str,
    /// The path, without query.
    pub path: &'a str,
    /// Every `Authorization` header value.
    pub authorization: Vec<&'a [u8]>,
    /// Every `DPoP` header value.
    pub dpop: Vec<&'a [u8]>,
    /// The client's address: the TCP peer, or what trusted proxies say
    /// (`client_ip`); `None` when unknown, which fails any IP binding.
    pub client_ip: Option<IpAddr>,
}

/// What the check is made against.
pub struct CheckContext<'a> {
    /// The issuer (`iss`).
    pub issuer: &'a str,
    /// Acceptable audiences (this service's).
    pub audiences: &'a [String],
    /// This service's public base URL (scheme, host, port, optional path
    /// prefix): `htu` is this plus the request path, never the `Host` header.
    pub base_url: &'a str,
    /// The issuer's signing keys.
    pub keys: &'a dyn IssuerKeys,
    /// What the issuer has pushed.
    pub registry: &'a Registry,
    /// Refuse everything when the registry is older than this (seconds).
    pub max_staleness: Option<u64>,
    /// Proof verification (policy and key cache).
    pub proofs: &'a ProofVerifier,
    /// The `jti` replay guard.
    pub replay: &'a dyn ReplayGuard,
    /// The nonce policy.
    pub nonce: NonceCheck<'a>,
    /// Verified tokens, by hash.
    pub tokens: &'a TokenCache,
    /// Clock leeway for `exp`/`nbf`, seconds.
    pub leeway: u64,
    /// Now.
    pub now: UnixTime,
}

/// Checks a request; on success, who sent it.
///
/// # Errors
/// The first failed check as a [`VerifyError`].
pub fn check(
    request: &RequestParts<'_>,
    ctx: &CheckContext<'_>,
) -> Result<VerifiedIdentity, VerifyError> {
    let token = authorization_token(&request.authorization)?;
    // §4.3 step 1: exactly one DPoP header.
    let proof = single_dpop_header(request.dpop.iter().copied())?;

    let claims = match ctx.tokens.get(token, ctx.now) {
        Some(claims) => claims,
        None => {
            let check = TokenCheck {
                issuer: ctx.issuer,
                audiences: ctx.audiences,
                now: ctx.now,
                leeway: ctx.leeway,
            };
            let claims = Arc::new(verify_access_token(token, ctx.keys, &check)?);
            ctx.tokens.insert(token, Arc::clone(&claims));
            claims
        }
    };
    // Revocation, enrolled-key registry, revoke-all.
    ctx.registry.admit(&claims, ctx.now, ctx.max_staleness)?;

    // §7.1: the proof is for this request, by the token's key, with `ath`.
    let htu = Htu::parse(&format!(
        "{}{}",
        ctx.base_url.trim_end_matches('/'),
        request.path
    ))
    .map_err(|_| ProofError::HtuMismatch {
        expected: ctx.base_url.to_owned(),
        found: String::new(),
    })?;
    let proof_check = ProofCheck {
        htm: request.method,
        htu: &htu,
        access_token: Some(token),
        bound_jkt: Some(&claims.cnf.jkt),
        nonce: ctx.nonce,
        now: ctx.now,
    };
    let verified = ctx.proofs.verify(proof, &proof_check, ctx.replay)?;

    // The session's IP binding (`ipb`), checked only once the proof shows
    // the caller holds the key: a deviation is reported to the issuer,
    // which may revoke the session, and a leaked token alone must not be
    // a lever to end someone's session.
    if let Some(binding) = &claims.ipb
        && binding.check(request.client_ip) == IpCheck::Deviates
    {
        return Err(VerifyError::IpDeviation {
            sid: claims.sid.clone().unwrap_or_default(),
            client_id: claims.client_id.clone(),
            session_ip: binding.ip,
            request_ip: request.client_ip,
        });
    }

    Ok(VerifiedIdentity {
        sub: claims.sub.clone(),
        client_id: claims.client_id.clone(),
        sid: claims.sid.clone().unwrap_or_default(),
        scope: claims.scope.clone(),
        amr: claims.amr.clone(),
        jkt: *verified.jkt(),
    })
}

/// The token from the single `Authorization: DPoP <token>` header.
fn authorization_token<'a>(values: &[&'a [u8]]) -> Result<&'a str, VerifyError> {
    let value = match values {
        [] => return Err(VerifyError::MissingToken),
        [one] => *one,
        _ => {
            return Err(VerifyError::InvalidRequest(
                "more than one Authorization header",
            ));
        }
    };
    let value = std::str::from_utf8(value)
        .map_err(|_| VerifyError::InvalidRequest("malformed Authorization header"))?;
    let (scheme, token) = value.split_once(' ').ok_or(VerifyError::InvalidRequest(
        "malformed Authorization header",
    ))?;
    let token = token.trim();
    // One scheme, one token68 (RFC 7235 §2.1): "DPoP a, Bearer b" is refused.
    let token68 = !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b));
    if !token68 {
        return Err(VerifyError::InvalidRequest(
            "malformed Authorization header",
        ));
    }
    if scheme.eq_ignore_ascii_case("DPoP") {
        Ok(token)
    } else if scheme.eq_ignore_ascii_case("Bearer") {
        Err(VerifyError::BearerDowngrade)
    } else {
        Err(VerifyError::InvalidRequest(
            "unsupported authorization scheme",
        ))
    }
}

/// Verified access tokens by SHA-256, until they expire, so a request costs
/// one proof verification. Bounded: when full, expired entries are dropped,
/// then everything (the cost of a miss is one token verification).
#[derive(Debug)]
pub struct TokenCache {
    entries: RwLock<HashMap<[u8; 32], Arc<AccessTokenClaims>>>,
    capacity: usize,
}

impl TokenCache {
    /// A cache of at most `capacity` tokens.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            capacity,
        }
    }

    fn key(token: &str) -> [u8; 32] {
        let mut key = [0u8; 32];
        key.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
        key
    }

    /// The claims of a cached, unexpired token.
    pub fn get(&self, token: &str, now: UnixTime) -> Option<Arc<AccessTokenClaims>> {
        let entries = self.entries.read().ok()?;
        entries
            .get(&Self::key(token))
            .filter(|c| c.exp > now)
            .cloned()
    }

    /// Caches verified claims.
    pub fn insert(&self, token: &str, claims: Arc<AccessTokenClaims>) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.capacity {
            let now = claims.iat;
            entries.retain(|_, c| c.exp > now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(Self::key(token), claims);
    }
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::new(100_000)
    }
}

#[cfg(test)]
mod tests;
