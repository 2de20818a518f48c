//! # holdfast-hw
//!
//! Where Holdfast keys live. Every key is a [`holdfast_proto::Signer`]:
//!
//! - [`SoftwareKey`]: a P-256 key in a PKCS#8 file, for development and
//!   tests. It is always reported as software ([`KeyKind::Software`], `amr`
//!   `swk`), so an issuer's policy can refuse it.
//! - `TpmKey` and `PivKey` (features `tpm` and `yubikey`) arrive with their
//!   issues; their signatures pass through [`signature`], the one place where
//!   a device's DER or `(r, s)` output becomes a JWS signature.
//!
//! This crate never decides whether a key is trusted: attestation
//! verification returns evidence, and the issuer's policy decides.

#![forbid(unsafe_code)]

pub mod attestation;
mod kind;
#[cfg(feature = "yubikey")]
pub mod piv;
pub mod private_file;
pub mod signature;
mod software;
#[doc(hidden)]
pub mod testing;
#[cfg(feature = "tpm")]
pub mod tpm;

pub use kind::KeyKind;
#[cfg(feature = "yubikey")]
pub use piv::{PivError, PivKey};
pub use private_file::PrivateFileError;
pub use software::{SoftwareKey, SoftwareKeyError};
#[cfg(feature = "tpm")]
pub use tpm::{TpmConfig, TpmError, TpmKey};
