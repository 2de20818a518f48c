//! DPoP proofs (RFC 9449 §4): building one with any [`Signer`], and
//! verifying one with every check of §4.3 and §11.
//!
//! Verification order matters: every check that needs no state runs first,
//! and the replay guard runs last, so a proof that fails any other check
//! cannot burn its `jti` (an attacker replaying a captured proof with a
//! changed method must not make the genuine request fail).

use rand_core::TryCryptoRng;
use serde::Serialize;

use crate::alg::{Alg, AllowedAlgs};
use crate::b64;
use crate::claims::ProofClaims;
use crate::error::ProofError;
use crate::htu::Htu;
use crate::jwk::{Jwk, JwkError};
use crate::jws::{CompactJws, JwsError, truncate};
use crate::jwt::{JwtHeader, sign_jwt};
use crate::nonce::NonceIssuer;
use crate::replay::{Freshness, ReplayGuard, ReplayKey};
use crate::signer::{Signer, SignerError};
use crate::thumbprint::Jkt;
use crate::time::UnixTime;
use crate::token::{AccessToken, ath_matches};
use crate::verifying_key::{KeyCache, KeyError};

/// The `typ` of a DPoP proof (RFC 9449 §4.2).
pub const DPOP_TYP: &str = "dpop+jwt";
/// Longest `jti` accepted, in bytes. Proofs made here use 22 characters
/// (128 bits); UUIDs use 36. The bound keeps replay records small.
pub const MAX_JTI_LEN: usize = 128;
/// Random bytes in a `jti` made by [`build_proof`] (RFC 9449 §11.1 asks for
/// enough entropy that collisions are negligible: 128 bits).
const JTI_RANDOM_BYTES: usize = 16;

/// What a proof is made for.
#[derive(Debug, Clone, Copy)]
pub struct ProofRequest<'a> {
    /// The HTTP method, e.g. `POST`.
    pub htm: &'a str,
    /// The request URI without query and fragment.
    pub htu: &'a Htu,
    /// The server's latest `DPoP-Nonce`, if it sent one.
    pub nonce: Option<&'a str>,
    /// The access token sent with the request, for `ath`.
    pub access_token: Option<&'a AccessToken>,
}

/// Builds and signs a DPoP proof for `request` at `now`, with a fresh `jti`
/// from `rng`.
///
/// # Errors
/// [`SignerError`] if the key fails to sign or `rng` fails.
pub fn build_proof<S, R>(
    signer: &S,
    rng: &mut R,
    request: &ProofRequest<'_>,
    now: UnixTime,
) -> Result<String, SignerError>
where
    S: Signer + ?Sized,
    R: TryCryptoRng + ?Sized,
{
    let mut jti = [0u8; JTI_RANDOM_BYTES];
    rng.try_fill_bytes(&mut jti)
        .map_err(|_| SignerError::new("the random number generator failed"))?;
    let claims = ProofClaims {
        jti: Some(b64::encode(&jti)),
        htm: Some(request.htm.to_owned()),
        htu: Some(request.htu.as_str().to_owned()),
        iat: Some(now.as_secs()),
        ath: request.access_token.map(AccessToken::ath),
        nonce: request.nonce.map(str::to_owned),
    };
    let header = JwtHeader {
        typ: DPOP_TYP,
        kid: None,
        jwk: Some(signer.public_jwk()),
    };
    sign_jwt(signer, &header, &claims)
}

/// How far `iat` may be from the verifier's clock (RFC 9449 §4.3 step 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IatWindow {
    /// Oldest accepted proof, in seconds before now.
    pub max_age: u64,
    /// Newest accepted proof, in seconds after now (clock skew).
    pub max_future: u64,
}

impl Default for IatWindow {
    /// 60 s into the past, 5 s into the future; `docs/architecture.md`
    /// explains the choice.
    fn default() -> Self {
        Self {
            max_age: 60,
            max_future: 5,
        }
    }
}

/// The nonce policy for one request (RFC 9449 §8, §9).
#[derive(Debug, Clone, Copy, Default)]
pub enum NonceCheck<'a> {
    /// The server does not demand a nonce; any `nonce` claim is ignored.
    #[default]
    NotRequired,
    /// The proof must carry exactly this nonce.
    Exact(&'a str),
    /// The proof must carry a nonce that this issuer accepts now.
    Issuer(&'a NonceIssuer),
}

/// The request a proof must match.
#[derive(Debug, Clone, Copy)]
pub struct ProofCheck<'a> {
    /// The request's method.
    pub htm: &'a str,
    /// The endpoint's public URI, from configuration (never a `Host` header).
    pub htu: &'a Htu,
    /// The access token presented with the proof, if any: `ath` must match.
    pub access_token: Option<&'a str>,
    /// The key the presented token is bound to (`cnf.jkt`), if any.
    pub bound_jkt: Option<&'a Jkt>,
    /// The nonce policy.
    pub nonce: NonceCheck<'a>,
    /// The verifier's time.
    pub now: UnixTime,
}

/// A proof that passed every check, made only by [`ProofVerifier::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    jkt: Jkt,
    jwk: Jwk,
    jti: String,
    iat: UnixTime,
}

impl VerifiedProof {
    /// The thumbprint of the key that signed the proof.
    pub fn jkt(&self) -> &Jkt {
        &self.jkt
    }

    /// The key that signed the proof.
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// The proof's `jti`.
    pub fn jti(&self) -> &str {
        &self.jti
    }

    /// The proof's `iat`.
    pub fn iat(&self) -> UnixTime {
        self.iat
    }
}

/// Verifies DPoP proofs under one policy, caching parsed keys.
#[derive(Debug, Default)]
pub struct ProofVerifier {
    algs: AllowedAlgs,
    window: IatWindow,
    keys: KeyCache,
}

impl ProofVerifier {
    /// A verifier accepting `algs` within `window`.
    pub fn new(algs: AllowedAlgs, window: IatWindow) -> Self {
        Self {
            algs,
            window,
            keys: KeyCache::default(),
        }
    }

    /// The accepted algorithms (for `WWW-Authenticate` and metadata).
    pub fn algs(&self) -> &AllowedAlgs {
        &self.algs
    }

    /// The acceptance window.
    pub fn window(&self) -> IatWindow {
        self.window
    }

    /// Checks `proof` against `check`, then records its `jti` in `replay`.
    ///
    /// # Errors
    /// The first failed check, as a [`ProofError`] naming it.
    pub fn verify(
        &self,
        proof: &str,
        check: &ProofCheck<'_>,
        replay: &dyn ReplayGuard,
    ) -> Result<VerifiedProof, ProofError> {
        // §4.3 step 2: a single well-formed JWT.
        let jws = CompactJws::parse(proof).map_err(ProofError::Malformed)?;
        let header = jws.header();

        // Step 4: typ is dpop+jwt.
        if header.typ() != Some(DPOP_TYP) {
            return Err(ProofError::TypMismatch);
        }
        // Step 5: alg is asymmetric, supported and allowed (never none or HMAC).
        let alg = match header.alg() {
            Ok(alg) if alg.is_asymmetric() && self.algs.contains(alg) => alg,
            Ok(alg) => {
                return Err(ProofError::AlgNotAllowed {
                    alg: alg.name().to_owned(),
                });
            }
            Err(name) => {
                return Err(ProofError::AlgNotAllowed {
                    alg: name.to_owned(),
                });
            }
        };
        // Step 7: jwk is a public key (a private member is refused by name).
        let jwk = match header.jwk() {
            None => return Err(ProofError::MissingJwk),
            Some(Err(JwkError::HasPrivateKey(member))) => {
                return Err(ProofError::JwkHasPrivateKey(member));
            }
            Some(Err(e)) => return Err(ProofError::InvalidJwk(e.clone())),
            Some(Ok(jwk)) => jwk,
        };
        // Step 6: the signature verifies with that key.
        let jkt = jwk.thumbprint();
        let key = self
            .keys
            .get_or_insert(jkt, jwk, alg)
            .map_err(|e| match e {
                KeyError::AlgKeyMismatch(alg) => ProofError::AlgKeyMismatch { alg: alg.name() },
                _ => ProofError::InvalidJwk(JwkError::InvalidPublicKey),
            })?;
        key.verify(jws.signing_input(), jws.signature())
            .map_err(|_| ProofError::InvalidSignature)?;

        // Step 3: the required claims are present and typed.
        let claims: ProofClaims =
            serde_json::from_slice(jws.payload()).map_err(|_| ProofError::MalformedClaims)?;
        let jti = claims
            .jti
            .filter(|j| !j.is_empty())
            .ok_or(ProofError::MissingClaim("jti"))?;
        let htm = claims.htm.ok_or(ProofError::MissingClaim("htm"))?;
        let htu = claims.htu.ok_or(ProofError::MissingClaim("htu"))?;
        let iat = UnixTime::from_secs(claims.iat.ok_or(ProofError::MissingClaim("iat"))?);
        if jti.len() > MAX_JTI_LEN {
            return Err(ProofError::JtiTooLong { max: MAX_JTI_LEN });
        }

        // Step 8: htm is the request's method, exactly.
        if htm != check.htm {
            return Err(ProofError::HtmMismatch {
                expected: check.htm.to_owned(),
                found: truncate(&htm),
            });
        }
        // Step 9: htu is the endpoint's URI, after normalisation, ignoring
        // query and fragment.
        if Htu::parse(&htu).ok().as_ref() != Some(check.htu) {
            return Err(ProofError::HtuMismatch {
                expected: check.htu.to_string(),
                found: truncate(&htu),
            });
        }
        // Step 11: iat is within the window.
        if iat < check.now.minus(self.window.max_age) {
            return Err(ProofError::IatTooOld {
                iat,
                now: check.now,
                max_age: self.window.max_age,
            });
        }
        if iat > check.now.plus(self.window.max_future) {
            return Err(ProofError::IatInFuture {
                iat,
                now: check.now,
                max_future: self.window.max_future,
            });
        }
        // Step 12: with an access token, ath is its hash and the proof key is
        // the key the token is bound to.
        if let Some(token) = check.access_token {
            let ath = claims.ath.ok_or(ProofError::AthMissing)?;
            if !ath_matches(&ath, token) {
                return Err(ProofError::AthMismatch);
            }
        }
        if let Some(bound) = check.bound_jkt
            && *bound != jkt
        {
            return Err(ProofError::JktMismatch);
        }
        // Step 10: the nonce, when the server demands one. Checked after the
        // rest so a client with a broken proof learns that first.
        match check.nonce {
            NonceCheck::NotRequired => {}
            NonceCheck::Exact(expected) => match claims.nonce.as_deref() {
                None => return Err(ProofError::NonceMissing),
                Some(nonce) if nonce != expected => return Err(ProofError::NonceInvalid),
                Some(_) => {}
            },
            NonceCheck::Issuer(issuer) => {
                let nonce = claims.nonce.ok_or(ProofError::NonceMissing)?;
                issuer
                    .check(&nonce, check.now)
                    .map_err(|_| ProofError::NonceInvalid)?;
            }
        }
        // §11.1: the jti is new. Last, so only a proof that passed everything
        // else is recorded; kept until the proof could no longer be accepted.
        let replay_key = ReplayKey::new(&jkt, check.htu.as_str(), &jti);
        let expires_at = iat.plus(self.window.max_age + 1);
        match replay.check_and_record(replay_key, expires_at, check.now) {
            Ok(Freshness::Fresh) => {}
            Ok(Freshness::Replayed) => return Err(ProofError::JtiReplayed),
            Err(_) => return Err(ProofError::ReplayGuardUnavailable),
        }

        Ok(VerifiedProof {
            jkt,
            jwk: jwk.clone(),
            jti,
            iat,
        })
    }
}

/// Picks the single `DPoP` header from a request's values (RFC 9449 §4.3
/// step 1: "there is not more than one DPoP HTTP request header field").
///
/// # Errors
/// [`ProofError::MissingDpopHeader`] for none, [`ProofError::MultipleDpopHeaders`]
/// for several, [`ProofError::Malformed`] for a value that is not text.
pub fn single_dpop_header<'a, I>(values: I) -> Result<&'a str, ProofError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut values = values.into_iter();
    let first = values.next().ok_or(ProofError::MissingDpopHeader)?;
    if values.next().is_some() {
        return Err(ProofError::MultipleDpopHeaders);
    }
    core::str::from_utf8(first).map_err(|_| ProofError::Malformed(JwsError::NotThreeParts))
}

/// A proof decoded without verification, for inspection tools.
#[derive(Debug, Clone, Serialize)]
pub struct ProofInspection {
    /// The decoded header.
    pub header: serde_json::Value,
    /// The decoded claims.
    pub claims: serde_json::Value,
    /// The thumbprint of the header's `jwk`, when it is a valid public key.
    pub jkt: Option<Jkt>,
}

/// Decodes a proof's header and claims **without checking anything**: for
/// looking at proofs found in logs or captures, never for deciding.
///
/// # Errors
/// [`JwsError`] when it is not a compact JWS with JSON header and payload.
pub fn inspect_proof(proof: &str) -> Result<ProofInspection, JwsError> {
    let jws = CompactJws::parse(proof)?;
    let header_b64 = proof.split('.').next().unwrap_or_default();
    let header_json = b64::decode(header_b64, proof.len()).ok_or(JwsError::BadBase64("header"))?;
    let header: serde_json::Value =
        serde_json::from_slice(&header_json).map_err(|_| JwsError::BadHeader)?;
    let claims =
        serde_json::from_slice(jws.payload()).map_err(|_| JwsError::BadBase64("payload"))?;
    let jkt = jws.header().jwk().and_then(Result::ok).map(Jwk::thumbprint);
    Ok(ProofInspection {
        header,
        claims,
        jkt,
    })
}

/// The allowed algorithms as the `algs` parameter of `WWW-Authenticate`
/// (RFC 9449 §7.1): space-separated names.
pub fn algs_param(algs: &AllowedAlgs) -> String {
    algs.iter().map(Alg::name).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
