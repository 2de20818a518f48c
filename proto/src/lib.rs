//! # holdfast-proto
//!
//! JOSE and RFC 9449 DPoP for Holdfast: public JWKs and their RFC 7638
//! thumbprints, strict compact JWS parsing, DPoP proofs (built with any
//! [`Signer`], verified with every check of RFC 9449 §4.3 and §11), stateless
//! server nonces, a replay guard, RFC 9068 access-token claims, and the
//! session IP-binding comparison the issuer and verifiers share.
//!
//! This crate does no IO: no files, sockets or threads, and no check reads a
//! clock. The caller passes the time ([`UnixTime`]) and the randomness, so
//! every check is a pure function that tests can drive to its edges.
//! [`SystemClock`] lives here only so that Holdfast has one clock reader,
//! which the binaries hand to the checks.
//!
//! ```
//! use holdfast_proto::{Htu, MemoryReplayGuard, NonceCheck, ProofCheck, ProofVerifier, UnixTime};
//!
//! // RFC 9449 Figure 2: a proof for the token endpoint.
//! let proof = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
//! let verifier = ProofVerifier::default();
//! let htu = Htu::parse("https://server.example.com/token")?;
//! let check = ProofCheck {
//!     htm: "POST",
//!     htu: &htu,
//!     access_token: None,
//!     bound_jkt: None,
//!     nonce: NonceCheck::NotRequired,
//!     now: UnixTime::from_secs(1_562_262_616),
//! };
//! let replay = MemoryReplayGuard::default();
//! let verified = verifier.verify(proof, &check, &replay)?;
//! assert_eq!(verified.jkt().as_str(), "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
//! // The same proof again is a replay.
//! assert!(verifier.verify(proof, &check, &replay).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

mod alg;
mod b64;
mod challenge;
mod claims;
mod client_assertion;
pub mod endpoints;
mod enrollment;
mod error;
mod htu;
mod ip_binding;
mod jwk;
mod jws;
mod jwt;
mod nonce;
mod proof;
mod replay;
mod signer;
mod step_up;
#[cfg(test)]
mod test_key;
mod thumbprint;
mod time;
mod token;
mod verifying_key;

pub use alg::{Alg, AlgListError, AllowedAlgs};
pub use challenge::dpop_challenge;
pub use claims::{AccessTokenClaims, Audience, Confirmation, TokenCheck};
pub use client_assertion::{
    AssertionCheck, AssertionError, CLIENT_ASSERTION_TYPE, VerifiedAssertion, assertion_client_id,
    verify_client_assertion,
};
pub use enrollment::{
    ENROLL_PROOF_TYP, EnrollProofClaims, build_enrollment_proof, enrollment_code_hash,
};
pub use error::{ProofError, TokenError, WireCode};
pub use htu::{Htu, HtuError};
pub use ip_binding::{
    IpBinding, IpBindingClaim, IpCheck, IpDeviationReport, IpPrefix, IpPrefixError, canonical_ip,
    ip_check,
};
pub use jwk::{EcCurve, EcPublicJwk, Jwk, JwkError, OkpCurve, OkpPublicJwk, RsaPublicJwk};
pub use jws::{CompactJws, JwsError, JwsHeader, MAX_JWS_LEN};
pub use jwt::{ACCESS_TOKEN_TYP, IssuerKeys, JwtHeader, sign_jwt, verify_access_token};
pub use nonce::{NonceConfigError, NonceError, NonceIssuer, NonceSecret};
pub use proof::{
    DPOP_TYP, IatWindow, MAX_JTI_LEN, NonceCheck, ProofCheck, ProofInspection, ProofRequest,
    ProofVerifier, VerifiedProof, algs_param, build_proof, inspect_proof, single_dpop_header,
};
pub use replay::{Freshness, MemoryReplayGuard, ReplayGuard, ReplayGuardError, ReplayKey};
pub use signer::{Signer, SignerError};
pub use step_up::{
    STEP_UP_PROOF_TYP, StepUpCheck, StepUpClaims, StepUpProofError, VerifiedStepUp,
    build_step_up_proof, verify_step_up_proof,
};
pub use thumbprint::{Jkt, JktError};
pub use time::{Clock, FixedClock, SystemClock, UnixTime};
pub use token::{AccessToken, ath};
pub use verifying_key::{BadSignature, KeyCache, KeyError, VerifyingKey};
