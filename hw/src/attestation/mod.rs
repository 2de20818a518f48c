//! Attestation: evidence that a key lives in hardware, and its verification.
//!
//! - [`evidence`]: what a device sends (the JSON wire format, shared by the
//!   device side and the issuer).
//! - [`x509`]: the certificate checks both verifiers build on (signature by
//!   the issuer's key, validity at a given time); no WebPKI path rules, since
//!   neither TPM EK chains nor Yubico chains follow them.
//! - [`tpm`]: EK certificate chains, software `MakeCredential`,
//!   `TPMS_ATTEST`/`TPMT_PUBLIC` parsing and the certify check.
//! - [`piv`]: Yubico PIV attestation chains, extensions and policy.
//!
//! Everything here is pure Rust and needs no hardware: the issuer runs it.
//! It returns what the evidence shows; the issuer's policy decides.

pub mod evidence;
pub mod piv;
pub mod tpm;
pub mod x509;
