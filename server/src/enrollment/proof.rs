//! The enrollment proof: a compact JWS by the new key, with header
//! `{"typ":"holdfast-enroll+jwt","alg":"ES256","jwk":…}` and claims
//! `{"challenge","code_hash","iat"}`. Checking it shows possession of the
//! key (signature), the binding to one code (`code_hash`) and recency
//! (`iat`); whether the challenge is live is the caller's, stateful, check.

use holdfast_proto::{Alg, CompactJws, EcCurve, Jkt, Jwk, JwkError, UnixTime, VerifyingKey};
use serde::Deserialize;
use subtle::ConstantTimeEq as _;

use super::EnrollError;

pub use holdfast_proto::ENROLL_PROOF_TYP;
/// Largest distance between a proof's `iat` and the issuer's clock, seconds.
pub const IAT_WINDOW_SECS: u64 = 300;

/// The base64url SHA-256 of a code: the `code_hash` claim of a proof for it.
pub fn code_hash(code: &str) -> String {
    holdfast_proto::enrollment_code_hash(code)
}

/// What a checked enrollment proof establishes: the holder of `jwk` signed
/// `challenge` for this code, recently. Only [`verify_proof`] makes one.
#[derive(Debug)]
pub(crate) struct EnrollProof {
    jwk: Jwk,
    jkt: Jkt,
    challenge: String,
}

impl EnrollProof {
    /// The key that signed the proof: the key to enroll.
    pub(crate) fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// Its RFC 7638 thumbprint.
    pub(crate) fn jkt(&self) -> Jkt {
        self.jkt
    }

    /// The challenge the proof answers (to be spent by the caller).
    pub(crate) fn challenge(&self) -> &str {
        &self.challenge
    }
}

/// The claims of an enrollment proof. Other members are ignored, as JWT
/// claims sets allow.
#[derive(Deserialize)]
struct ProofClaims {
    challenge: String,
    code_hash: String,
    iat: u64,
}

/// Checks an enrollment proof for `code` at `now`: everything but the
/// challenge's existence, which is state.
pub(crate) fn verify_proof(
    proof: &str,
    code: &str,
    now: UnixTime,
) -> Result<EnrollProof, EnrollError> {
    // Size limits first, then split once into typed parts.
    let jws = CompactJws::parse(proof).map_err(EnrollError::ProofMalformed)?;
    let header = jws.header();
    // A proof of this kind only: never a DPoP proof or an access token.
    if header.typ() != Some(ENROLL_PROOF_TYP) {
        return Err(EnrollError::ProofTypMismatch);
    }
    // Every Holdfast device key signs ES256.
    match header.alg() {
        Ok(Alg::Es256) => {}
        Ok(other) => {
            return Err(EnrollError::ProofAlgNotAllowed {
                alg: other.name().to_owned(),
            });
        }
        Err(unknown) => {
            return Err(EnrollError::ProofAlgNotAllowed {
                alg: unknown.to_owned(),
            });
        }
    }
    // The new public key travels in the header; a private member is refused at parse.
    let jwk = match header.jwk() {
        None => return Err(EnrollError::ProofJwkMissing),
        Some(Err(JwkError::HasPrivateKey(member))) => {
            return Err(EnrollError::JwkHasPrivateKey(member));
        }
        Some(Err(err)) => return Err(EnrollError::ProofJwkInvalid(err.clone())),
        Some(Ok(jwk)) => jwk.clone(),
    };
    // EC P-256 only: what TPMs and YubiKeys hold, and what tokens are bound to.
    if !matches!(&jwk, Jwk::Ec(ec) if ec.crv() == EcCurve::P256) {
        return Err(EnrollError::ProofKeyNotP256);
    }
    // Proof of possession: the key in the header signed this proof.
    let key =
        VerifyingKey::new(&jwk, Alg::Es256).map_err(|_| EnrollError::ProofSignatureInvalid)?;
    key.verify(jws.signing_input(), jws.signature())
        .map_err(|_| EnrollError::ProofSignatureInvalid)?;
    // Claims are read only from a signed payload.
    let claims: ProofClaims =
        serde_json::from_slice(jws.payload()).map_err(|_| EnrollError::ProofClaimsMalformed)?;
    // Bound to this code: a proof cannot be moved to another code.
    if !bool::from(
        claims
            .code_hash
            .as_bytes()
            .ct_eq(code_hash(code).as_bytes()),
    ) {
        return Err(EnrollError::CodeHashMismatch);
    }
    // Recent, within the challenge's lifetime either way.
    if claims.iat > now.plus(IAT_WINDOW_SECS).as_secs()
        || claims.iat < now.minus(IAT_WINDOW_SECS).as_secs()
    {
        return Err(EnrollError::IatOutsideWindow {
            iat: claims.iat,
            now,
        });
    }
    Ok(EnrollProof {
        jkt: jwk.thumbprint(),
        jwk,
        challenge: claims.challenge,
    })
}

#[cfg(test)]
mod tests {
    use holdfast_hw::SoftwareKey;
    use holdfast_proto::{JwtHeader, Signer as _, sign_jwt};
    use serde_json::json;

    use super::*;

    fn proof(key: &SoftwareKey, challenge: &str, code: &str, iat: u64) -> String {
        holdfast_proto::build_enrollment_proof(key, challenge, code, UnixTime::from_secs(iat))
            .unwrap()
    }

    #[test]
    fn proof_checks_name_the_failed_check() {
        let key = SoftwareKey::generate().unwrap();
        let now = UnixTime::from_secs(1_000_000);
        let good = proof(&key, "c", "code", now.as_secs());
        let checked = verify_proof(&good, "code", now).unwrap();
        assert_eq!(checked.jkt(), key.public_jwk().thumbprint());
        assert_eq!(checked.challenge(), "c");

        let cases: [(&str, String, &str); 5] = [
            ("not.a.jws", "not.a.jws".into(), "proof_malformed"),
            ("other code", good.clone(), "code_hash_mismatch"),
            (
                "old",
                proof(&key, "c", "code", now.as_secs() - IAT_WINDOW_SECS - 1),
                "iat_outside_window",
            ),
            (
                "future",
                proof(&key, "c", "code", now.as_secs() + IAT_WINDOW_SECS + 1),
                "iat_outside_window",
            ),
            (
                "tampered",
                format!("{}{}", good.trim_end_matches(|c| c != '.'), "A".repeat(86)),
                "proof_signature_invalid",
            ),
        ];
        for (what, proof, check) in cases {
            let code = if what == "other code" {
                "another"
            } else {
                "code"
            };
            let err = verify_proof(&proof, code, now).unwrap_err();
            assert_eq!(err.check(), check, "{what}: {err:?}");
        }
        // At the edges of the window.
        for iat in [
            now.as_secs() - IAT_WINDOW_SECS,
            now.as_secs() + IAT_WINDOW_SECS,
        ] {
            verify_proof(&proof(&key, "c", "code", iat), "code", now).unwrap();
        }
        // A DPoP-typed JWS is not an enrollment proof.
        let header = JwtHeader {
            typ: "dpop+jwt",
            kid: None,
            jwk: Some(key.public_jwk()),
        };
        let dpop = sign_jwt(
            &key,
            &header,
            &json!({ "challenge": "c", "code_hash": code_hash("code"), "iat": now.as_secs() }),
        )
        .unwrap();
        assert!(matches!(
            verify_proof(&dpop, "code", now),
            Err(EnrollError::ProofTypMismatch)
        ));
    }
}
