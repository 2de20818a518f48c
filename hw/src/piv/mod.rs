//! YubiKey PIV keys (feature `yubikey`), through the `yubikey` crate and
//! the system's PC/SC daemon (`pcscd`).
//!
//! - [`PivKey::generate`] makes a P-256 key in a slot (`9a` by default) with
//!   a PIN and touch policy, after authenticating with the management key:
//!   the configured one, else the factory default (3DES before firmware
//!   5.7, AES-192 from 5.7; the algorithm is read from the card), else one
//!   stored PIN-protected on the card. It refuses to replace a key unless
//!   told to.
//! - [`PivKey::open`] and [`PivKey::open_record`] use an existing key;
//!   [`PivKey::attestation`] reads the evidence the issuer verifies
//!   ([`PivEvidence`](crate::attestation::evidence::PivEvidence)).
//! - [`PivKey`] is a [`holdfast_proto::Signer`]: SHA-256 on the host, ECDSA
//!   on the card, DER turned into JWS by [`crate::signature`].
//!
//! Every failure is a [`PivError`] that says what to do (start pcscd, pass
//! `--serial`, touch the key, unblock the PIN with the PUK, …).
//!
//! This module never trusts the card's attestation: the issuer verifies it
//! against pinned Yubico roots.

mod card;
mod cert;
mod config;
mod error;
mod key;

/// The attestation verifier's types, re-exported: a key's firmware and
/// policies are the same values whether the card reports them or its
/// attestation certificate states them.
pub use crate::attestation::piv::{Firmware, PinPolicy, PolicyParseError, TouchPolicy};
pub use config::{
    BadManagementKey, BadPivSlot, ManagementKey, PinSource, PinSourceError, PivConfig,
    PivKeyRecord, PivSlot,
};
pub use error::{AttestationGap, ManagementKeyAlgorithm, PivError};
pub use key::PivKey;
