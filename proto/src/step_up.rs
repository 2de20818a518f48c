//! The admin step-up proof (Holdfast-specific): a compact JWS by an enrolled
//! device key over the issuer's one-time step-up challenge, bound to the
//! admin's session. Header `{"typ":"holdfast-step-up+jwt","alg":"ES256",
//! "kid":…}`, claims `{"challenge","sid","iat"}`.
//!
//! The key is the one enrolled for the device, never a key carried in the
//! proof: `kid` names it (its RFC 7638 thumbprint or the device id) and the
//! verifier is handed the enrolled JWK. Built here for clients, checked here
//! for the issuer, so both read one definition. Whether the challenge is
//! live, and whether the device may step up at all, is the issuer's
//! (stateful) business.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use crate::alg::Alg;
use crate::jwk::Jwk;
use crate::jws::{CompactJws, JwsError};
use crate::jwt::{JwtHeader, sign_jwt};
use crate::signer::{Signer, SignerError};
use crate::time::UnixTime;
use crate::verifying_key::VerifyingKey;

/// The `typ` of a step-up proof. Distinct from `dpop+jwt` and
/// `holdfast-enroll+jwt`, so no other signed object is ever accepted here,
/// nor a step-up proof elsewhere.
pub const STEP_UP_PROOF_TYP: &str = "holdfast-step-up+jwt";

/// The claims of a step-up proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepUpClaims {
    /// The issuer's one-time step-up challenge.
    pub challenge: String,
    /// The admin's session (`sid` of its access token).
    pub sid: String,
    /// When the proof was made.
    pub iat: UnixTime,
}

/// Signs a step-up proof with `signer`, an enrolled device key named by
/// `kid` (its thumbprint or its device id).
///
/// With a YubiKey whose touch policy is `always`, this is where the key
/// blinks and waits for a touch.
///
/// # Errors
/// [`SignerError`] if the key fails (or the touch times out).
pub fn build_step_up_proof<S: Signer + ?Sized>(
    signer: &S,
    kid: &str,
    challenge: &str,
    sid: &str,
    now: UnixTime,
) -> Result<String, SignerError> {
    let header = JwtHeader {
        typ: STEP_UP_PROOF_TYP,
        kid: Some(kid),
        jwk: None,
    };
    let claims = StepUpClaims {
        challenge: challenge.to_owned(),
        sid: sid.to_owned(),
        iat: now,
    };
    sign_jwt(signer, &header, &claims)
}

/// What [`verify_step_up_proof`] checks a proof against.
#[derive(Debug, Clone, Copy)]
pub struct StepUpCheck<'a> {
    /// The device's enrolled public key.
    pub jwk: &'a Jwk,
    /// The `kid` values that name this device (its thumbprint, its id).
    pub kids: &'a [&'a str],
    /// The caller's session: the proof must be for it.
    pub sid: &'a str,
    /// Largest distance between `iat` and `now`, seconds.
    pub max_skew_secs: u64,
    /// The current time.
    pub now: UnixTime,
}

/// A step-up proof whose signature, `typ`, `kid`, `sid` and `iat` are good.
/// Only [`verify_step_up_proof`] makes one; the challenge is still to be
/// spent by the caller.
#[derive(Debug)]
pub struct VerifiedStepUp {
    challenge: String,
}

impl VerifiedStepUp {
    /// The challenge the proof answers.
    pub fn challenge(&self) -> &str {
        &self.challenge
    }
}

/// Why a step-up proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StepUpProofError {
    /// Not a compact JWS within the size limits.
    #[error("the step-up proof is malformed: {0}")]
    Malformed(JwsError),
    /// `typ` is not `holdfast-step-up+jwt`.
    #[error("the proof's typ is not {STEP_UP_PROOF_TYP}")]
    TypMismatch,
    /// `alg` is not ES256 (every Holdfast device key signs ES256).
    #[error("the proof's alg must be ES256")]
    AlgNotAllowed,
    /// `kid` is missing or names another key.
    #[error("the proof's kid does not name this device")]
    KidMismatch,
    /// The enrolled key cannot verify ES256 (not a P-256 key).
    #[error("the device's enrolled key cannot verify ES256 signatures")]
    KeyUnusable,
    /// The signature is not the device key's.
    #[error("the proof's signature is not by the device's enrolled key")]
    SignatureInvalid,
    /// The claims are not `{"challenge","sid","iat"}`.
    #[error("the proof's claims are malformed")]
    ClaimsMalformed,
    /// The proof is for another session.
    #[error("the proof is for another session")]
    SidMismatch,
    /// `iat` is too far from the issuer's clock.
    #[error("the proof's iat {iat} is too far from the issuer's time {now}")]
    IatOutsideWindow {
        /// The proof's `iat`.
        iat: u64,
        /// The issuer's time.
        now: UnixTime,
    },
}

impl StepUpProofError {
    /// The failed check's name, for audit records and metrics.
    pub fn check(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "proof_malformed",
            Self::TypMismatch => "proof_typ_mismatch",
            Self::AlgNotAllowed => "proof_alg_not_allowed",
            Self::KidMismatch => "proof_kid_mismatch",
            Self::KeyUnusable => "device_key_unusable",
            Self::SignatureInvalid => "proof_signature_invalid",
            Self::ClaimsMalformed => "proof_claims_malformed",
            Self::SidMismatch => "proof_sid_mismatch",
            Self::IatOutsideWindow { .. } => "proof_iat_outside_window",
        }
    }
}

/// The claims as read: other members are ignored, as JWT claims sets allow.
#[derive(Deserialize)]
struct ProofClaims {
    challenge: String,
    sid: String,
    iat: u64,
}

/// Checks a step-up proof against `check`: everything but the challenge's
/// existence, which is state.
///
/// # Errors
/// The first failed check as a [`StepUpProofError`].
pub fn verify_step_up_proof(
    proof: &str,
    check: &StepUpCheck<'_>,
) -> Result<VerifiedStepUp, StepUpProofError> {
    // Size limits first, then split once into typed parts.
    let jws = CompactJws::parse(proof).map_err(StepUpProofError::Malformed)?;
    let header = jws.header();
    // A proof of this kind only.
    if header.typ() != Some(STEP_UP_PROOF_TYP) {
        return Err(StepUpProofError::TypMismatch);
    }
    // The algorithm is fixed by the enrolled key, never chosen by the proof
    // (RFC 8725 §3.1).
    if header.alg() != Ok(Alg::Es256) {
        return Err(StepUpProofError::AlgNotAllowed);
    }
    // `kid` must name this device, so a proof cannot be moved between devices.
    let kid_matches = header.kid().is_some_and(|kid| check.kids.contains(&kid));
    if !kid_matches {
        return Err(StepUpProofError::KidMismatch);
    }
    // Possession: the enrolled key (not one the proof carries) signed it.
    let key =
        VerifyingKey::new(check.jwk, Alg::Es256).map_err(|_| StepUpProofError::KeyUnusable)?;
    key.verify(jws.signing_input(), jws.signature())
        .map_err(|_| StepUpProofError::SignatureInvalid)?;
    // Claims are read only from a signed payload.
    let claims: ProofClaims =
        serde_json::from_slice(jws.payload()).map_err(|_| StepUpProofError::ClaimsMalformed)?;
    // Bound to the caller's session: a proof made for another session of
    // the same admin grants nothing here.
    if !bool::from(claims.sid.as_bytes().ct_eq(check.sid.as_bytes())) {
        return Err(StepUpProofError::SidMismatch);
    }
    if claims.iat > check.now.plus(check.max_skew_secs).as_secs()
        || claims.iat < check.now.minus(check.max_skew_secs).as_secs()
    {
        return Err(StepUpProofError::IatOutsideWindow {
            iat: claims.iat,
            now: check.now,
        });
    }
    Ok(VerifiedStepUp {
        challenge: claims.challenge,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use serde_json::json;

    use super::*;
    use crate::test_key::TestKey;

    const NOW: u64 = 1_764_000_000;

    fn check<'a>(jwk: &'a Jwk, kids: &'a [&'a str]) -> StepUpCheck<'a> {
        StepUpCheck {
            jwk,
            kids,
            sid: "s-1",
            max_skew_secs: 60,
            now: UnixTime::from_secs(NOW),
        }
    }

    #[test]
    fn accepts_a_proof_by_the_enrolled_key() {
        let key = TestKey::new();
        let jkt = key.jwk.thumbprint();
        let proof = build_step_up_proof(&key, jkt.as_str(), "c-1", "s-1", UnixTime::from_secs(NOW))
            .unwrap();
        let kids = [jkt.as_str(), "d-1"];
        let verified = verify_step_up_proof(&proof, &check(&key.jwk, &kids)).unwrap();
        assert_eq!(verified.challenge(), "c-1");
        // The device id names the key as well.
        let by_id =
            build_step_up_proof(&key, "d-1", "c-2", "s-1", UnixTime::from_secs(NOW)).unwrap();
        verify_step_up_proof(&by_id, &check(&key.jwk, &kids)).unwrap();
    }

    #[test]
    fn refusals_name_the_failed_check() {
        let key = TestKey::new();
        let other = TestKey::new();
        let jkt = key.jwk.thumbprint();
        let kids = [jkt.as_str()];
        let at = |secs| UnixTime::from_secs(secs);
        let header = json!({"typ": STEP_UP_PROOF_TYP, "alg": "ES256", "kid": jkt.as_str()});
        let claims = json!({"challenge": "c", "sid": "s-1", "iat": NOW});
        let cases: Vec<(&str, String, &str)> = vec![
            ("garbage", "a.b".into(), "proof_malformed"),
            (
                "dpop typ",
                key.sign_raw(
                    &json!({"typ": "dpop+jwt", "alg": "ES256", "kid": jkt.as_str()}),
                    &claims,
                ),
                "proof_typ_mismatch",
            ),
            (
                "es384",
                key.sign_raw(
                    &json!({"typ": STEP_UP_PROOF_TYP, "alg": "ES384", "kid": jkt.as_str()}),
                    &claims,
                ),
                "proof_alg_not_allowed",
            ),
            (
                "no kid",
                key.sign_raw(&json!({"typ": STEP_UP_PROOF_TYP, "alg": "ES256"}), &claims),
                "proof_kid_mismatch",
            ),
            (
                "other kid",
                build_step_up_proof(&key, "d-other", "c", "s-1", at(NOW)).unwrap(),
                "proof_kid_mismatch",
            ),
            (
                "other key",
                build_step_up_proof(&other, jkt.as_str(), "c", "s-1", at(NOW)).unwrap(),
                "proof_signature_invalid",
            ),
            (
                "claims",
                key.sign_raw(&header, &json!({"challenge": "c"})),
                "proof_claims_malformed",
            ),
            (
                "other session",
                build_step_up_proof(&key, jkt.as_str(), "c", "s-2", at(NOW)).unwrap(),
                "proof_sid_mismatch",
            ),
            (
                "old",
                build_step_up_proof(&key, jkt.as_str(), "c", "s-1", at(NOW - 61)).unwrap(),
                "proof_iat_outside_window",
            ),
            (
                "future",
                build_step_up_proof(&key, jkt.as_str(), "c", "s-1", at(NOW + 61)).unwrap(),
                "proof_iat_outside_window",
            ),
        ];
        for (what, proof, want) in cases {
            let err = verify_step_up_proof(&proof, &check(&key.jwk, &kids)).unwrap_err();
            assert_eq!(err.check(), want, "{what}: {err}");
        }
        // A key that is not P-256 cannot be the enrolled key of a device.
        let rsa: Jwk =
            serde_json::from_value(json!({"kty": "RSA", "n": "sXch", "e": "AQAB"})).unwrap();
        let proof = build_step_up_proof(&key, jkt.as_str(), "c", "s-1", at(NOW)).unwrap();
        assert_eq!(
            verify_step_up_proof(&proof, &check(&rsa, &kids)).unwrap_err(),
            StepUpProofError::KeyUnusable
        );
    }

    #[test]
    fn window_edges_are_inside() {
        let key = TestKey::new();
        let jkt = key.jwk.thumbprint();
        let kids = [jkt.as_str()];
        for iat in [NOW - 60, NOW + 60] {
            let proof =
                build_step_up_proof(&key, jkt.as_str(), "c", "s-1", UnixTime::from_secs(iat))
                    .unwrap();
            verify_step_up_proof(&proof, &check(&key.jwk, &kids)).unwrap();
        }
    }
}
