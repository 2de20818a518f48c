//! The enrollment proof's wire format (Holdfast-specific): a compact JWS by
//! the new device key over the issuer's challenge, bound to one enrollment
//! code. Built here for clients; the issuer checks it.

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};

use crate::b64;
use crate::jwt::{JwtHeader, sign_jwt};
use crate::signer::{Signer, SignerError};
use crate::time::UnixTime;

/// The `typ` of an enrollment proof. Distinct from `dpop+jwt`, so an
/// enrollment proof is never accepted as a DPoP proof, nor the reverse.
pub const ENROLL_PROOF_TYP: &str = "holdfast-enroll+jwt";

/// The claims of an enrollment proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollProofClaims {
    /// The issuer's one-time challenge.
    pub challenge: String,
    /// [`enrollment_code_hash`] of the code being redeemed.
    pub code_hash: String,
    /// When the proof was made.
    pub iat: UnixTime,
}

/// base64url(SHA-256(code)): binds a proof to one code without sending the
/// code inside the signed object.
pub fn enrollment_code_hash(code: &str) -> String {
    b64::encode(digest::digest(&digest::SHA256, code.as_bytes()).as_ref())
}

/// Signs an enrollment proof with the new key, its public key in `jwk`.
///
/// # Errors
/// [`SignerError`] if the key fails.
pub fn build_enrollment_proof<S: Signer + ?Sized>(
    signer: &S,
    challenge: &str,
    code: &str,
    now: UnixTime,
) -> Result<String, SignerError> {
    let header = JwtHeader {
        typ: ENROLL_PROOF_TYP,
        kid: None,
        jwk: Some(signer.public_jwk()),
    };
    let claims = EnrollProofClaims {
        challenge: challenge.to_owned(),
        code_hash: enrollment_code_hash(code),
        iat: now,
    };
    sign_jwt(signer, &header, &claims)
}
