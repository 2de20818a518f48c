//! YubiKey PIV attestation, verified on the issuer in pure Rust.
//!
//! A YubiKey proves that a key was generated on it (and so cannot be
//! copied) with two certificates ([`PivEvidence`]): the **slot
//! certificate**, which the key's `ATTEST` command produces, signed by the
//! device's attestation key; and the **f9 certificate**, that attestation
//! key's certificate, issued by Yubico at manufacture. [`verify_evidence`]
//! checks the chain to a pinned root, reads Yubico's extensions, applies the
//! issuer's [`PivPolicy`] and checks that the attested key is the key being
//! enrolled. Nothing here touches hardware, files or the clock.
//!
//! # Chain shapes
//!
//! Only these shapes are accepted; any other chain is refused, even if
//! every signature in it verifies:
//!
//! - (a) slot ← f9 ← "Yubico PIV Root CA Serial 263751" (firmware < 5.7.4);
//! - (b) slot ← f9 ← "Yubico U2F Root CA Serial 457200631" (some YubiKey 4
//!   batches);
//! - (c) slot ← f9 ← "Yubico PIV Attestation A 1" or "B 1" ← "Yubico
//!   Attestation Intermediate A 1" or "B 1" ← "Yubico Attestation Root 1"
//!   (firmware ≥ 5.7.4). YubiKeys do not hand out these intermediates: they
//!   are pinned in [`PivTrust::yubico`], never taken from the device;
//! - (d) slot ← f9 ← a test root, only if the caller added one with
//!   [`PivTrust::with_test_root`].
//!
//! Each link is checked for the issuer name, the signature, and the
//! validity of both certificates at the time the caller passes (the root's
//! too). The device sends exactly two certificates; one that is a root or a
//! pinned intermediate of the trust store, a self-issued f9 certificate, or
//! a slot certificate that is a CA, is refused (`chain_shape_invalid`), so
//! neither a shorter chain (a slot certificate directly under a root) nor a
//! longer one can pass. Under Yubico roots the f9 certificate's CN must be
//! "Yubico PIV Attestation" or "YubiKey PIV Attestation", because the U2F
//! root also issues U2F attestation certificates whose keys must not vouch
//! for PIV keys.
//!
//! # RFC 5280 exceptions, and why
//!
//! Real YubiKey chains do not pass RFC 5280 path validation (§6.1), so this
//! verifier does not run it; it checks the fixed shapes above instead:
//!
//! 1. **f9 certificates without basicConstraints are accepted as issuers**
//!    (YubiKey 4 under the U2F root, YubiKey 5Ci 5.2.4; see
//!    Yubico/yubikey-manager#522). RFC 5280 §6.1.4 (k) would reject them as
//!    non-CAs. The f9 certificate may issue only the slot certificate, which
//!    must not be a CA itself, so the path cannot grow below it. An f9
//!    certificate that states cA FALSE is still refused.
//! 2. **The U2F root's pathLenConstraint 0 is ignored** for the single f9
//!    certificate under it (RFC 5280 §6.1.4 (l)–(m)); go-piv makes the same
//!    exception. The shape allows exactly one certificate (f9) between the
//!    root and the slot certificate.
//! 3. **keyUsage is not required on the f9 certificate** (RFC 5280 §4.2.1.3
//!    keyCertSign), for the same certificates as (1).
//! 4. **Pinned CAs are not checked for basicConstraints or keyUsage**: they
//!    are compiled in after review (`hw/src/attestation/yubico/README.md`).
//!
//! Kept from RFC 5280: every signature and validity period (§6.1.3 (a)),
//! issuer/subject name chaining (§6.1.3 (a)(4)), no unknown critical
//! extension and no duplicated extension on the device's certificates
//! (§4.2).
//!
//! # Freshness
//!
//! A PIV attestation carries no nonce: the same certificates can be
//! presented again, by anyone who copied them. They prove where a key was
//! generated, not that the sender holds it now. The issuer therefore also
//! requires the enrollment proof, which the same key signs over the
//! issuer's one-time challenge, and [`PivAttestation::check_key`] ties the
//! attestation to that key.
//!
//! # Yubico extensions
//!
//! See [`Firmware`], [`PinPolicy`], [`TouchPolicy`], [`FormFactor`] and the
//! FIPS / CSPN markers on the f9 certificate; values this verifier does not
//! know are refused (`attestation_malformed`), never guessed.

mod attestation;
mod chain;
mod error;
mod extensions;
mod policy;
mod trust;

pub use attestation::PivAttestation;
pub use chain::verify_chain;
pub use error::{CertRole, PivAttestError, PivTrustError};
pub use extensions::{
    Firmware, FirmwareParseError, FormFactor, FormFactorKind, PinPolicy, PolicyParseError,
    TouchPolicy,
};
pub use policy::PivPolicy;
pub use trust::{
    AnchorKind, PivTrust, YUBICO_ATTESTATION_ROOT_1, YUBICO_PIV_ROOT_CA, YUBICO_U2F_ROOT_CA,
};

use holdfast_proto::{Jwk, UnixTime};

use super::evidence::PivEvidence;

/// Verifies a YubiKey's attestation for the key being enrolled: the chain
/// ([`verify_chain`]), then the key ([`PivAttestation::check_key`]), then
/// the policy ([`PivAttestation::check_policy`]).
///
/// The caller must also verify the enrollment proof signed by `jwk` over
/// its challenge: the attestation alone is not fresh (see the module docs).
///
/// # Errors
/// The first failed check, as a [`PivAttestError`] whose
/// [`check`](PivAttestError::check) names it.
pub fn verify_evidence(
    ev: &PivEvidence,
    trust: &PivTrust,
    policy: &PivPolicy,
    jwk: &Jwk,
    at: UnixTime,
) -> Result<PivAttestation, PivAttestError> {
    let attestation = verify_chain(ev, trust, at)?;
    attestation.check_key(jwk)?;
    attestation.check_policy(policy)?;
    Ok(attestation)
}
