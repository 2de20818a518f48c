//! TPM 2.0 attestation, verified in pure Rust on the issuer (no TPM, no
//! tpm2-tss, no clock, no I/O except reading trust files on request).
//!
//! The enrollment ceremony (see [`evidence`](crate::attestation::evidence)):
//!
//! 1. [`begin_activation`] verifies the EK certificate chain to the
//!    configured [`TpmTrust`] (TCG EK profile rules, see [`TpmTrust`]), checks
//!    that the AK is a restricted, non-duplicable, TPM-generated signing key,
//!    and makes a `TPM2_MakeCredential` challenge ([`make_credential`]) that
//!    only the TPM holding that EK, with that AK loaded, can answer. The
//!    issuer stores the [`PendingActivation`].
//! 2. [`verify_evidence`] checks the activated secret, the AK's signature
//!    over `TPMS_ATTEST` ([`TpmsAttest`], [`TpmtSignature`]), the nonce, the
//!    certified name `nameAlg ‖ H(TPMT_PUBLIC)` ([`TpmtPublic::name`]), the
//!    device key's attributes, and that it is the JWK being enrolled, and
//!    returns a [`TpmAttestation`].
//!
//! Every refusal is a [`TpmAttestError`] variant naming the failed check,
//! with a stable [`TpmAttestError::check`] name. The parsers are strict
//! (every field read, nothing may follow, every `TPM2B` bounded by the
//! specification) and never panic. This module decides nothing about
//! policy: the issuer does.
//!
//! Module map: `marshal` (TPM wire reading), `alg` (algorithm IDs), `public`
//! (`TPMT_PUBLIC`), `attest` (`TPMS_ATTEST`), `signature` (`TPMT_SIGNATURE`
//! and its verification), `credential` (`MakeCredential`, KDFa, KDFe), `ek`
//! (trust and EK chains), `enrollment` (the two calls), `error`.

mod alg;
mod attest;
mod credential;
mod ek;
mod enrollment;
mod error;
mod marshal;
mod public;
mod signature;

pub use alg::HashAlg;
pub use attest::{
    Attested, ClockInfo, TPM_GENERATED_VALUE, TPM_ST_ATTEST_CERTIFY, TPM_ST_ATTEST_CREATION,
    TpmsAttest,
};
pub use credential::{CredentialError, EkPublicKey, make_credential};
pub use ek::{TpmIdentity, TpmTrust, VerifiedEk, VerifiedPath, tpm_identity};
pub use enrollment::{PendingActivation, TpmAttestation, begin_activation, verify_evidence};
pub use error::{TpmAttestError, TpmTrustError};
pub use marshal::{ParseError, ParseProblem};
pub use public::{EccCurve, KeyScheme, ObjectAttributes, PublicKeyParms, SymDef, TpmtPublic};
pub use signature::{SignatureError, TpmtSignature};
