//! What a verified PIV attestation proves, and the checks an issuer applies
//! to it: its policy and the key being enrolled.

use holdfast_proto::{EcCurve, Jwk};

use super::error::PivAttestError;
use super::extensions::{Firmware, FormFactor, PinPolicy, TouchPolicy};
use super::policy::{PivPolicy, list};
use super::trust::AnchorKind;
use crate::attestation::x509::PublicKey;

/// A slot key that a YubiKey attested, under a chain that verified.
///
/// Only [`super::verify_chain`] makes one: holding it means the chain is
/// one of the known shapes, every signature verified and every certificate
/// was valid at the time given. It says nothing yet about the issuer's
/// policy ([`PivAttestation::check_policy`]) or the key being enrolled
/// ([`PivAttestation::check_key`]); [`super::verify_evidence`] does all
/// three.
#[derive(Clone, Debug)]
pub struct PivAttestation {
    pub(super) anchor: String,
    pub(super) anchor_kind: AnchorKind,
    pub(super) intermediates: Vec<String>,
    pub(super) serial: Option<u32>,
    pub(super) firmware: Firmware,
    pub(super) pin_policy: PinPolicy,
    pub(super) touch_policy: TouchPolicy,
    pub(super) form_factor: Option<FormFactor>,
    pub(super) fips: bool,
    pub(super) cspn: bool,
    pub(super) slot: Option<u8>,
    pub(super) public_key: PublicKey,
}

impl PivAttestation {
    /// The trust anchor the chain ends at (its subject CN).
    pub fn anchor(&self) -> &str {
        &self.anchor
    }

    /// Whether the anchor is a pinned Yubico root or a configured test root.
    pub fn anchor_kind(&self) -> AnchorKind {
        self.anchor_kind
    }

    /// The pinned intermediates between the f9 certificate and the anchor
    /// (subject CNs, f9 side first); empty for chains where the root signs
    /// the f9 certificate.
    pub fn intermediates(&self) -> &[String] {
        &self.intermediates
    }

    /// The YubiKey's serial number (`.7`); `None` on YubiKey 4, whose
    /// attestations do not carry it.
    pub fn serial(&self) -> Option<u32> {
        self.serial
    }

    /// The YubiKey's firmware (`.3`).
    pub fn firmware(&self) -> Firmware {
        self.firmware
    }

    /// The key's PIN policy (`.8`).
    pub fn pin_policy(&self) -> PinPolicy {
        self.pin_policy
    }

    /// The key's touch policy (`.8`).
    pub fn touch_policy(&self) -> TouchPolicy {
        self.touch_policy
    }

    /// The YubiKey's form factor (`.9`); `None` on YubiKey 4.
    pub fn form_factor(&self) -> Option<FormFactor> {
        self.form_factor
    }

    /// The f9 certificate carries Yubico's FIPS marker (`.10`).
    pub fn fips(&self) -> bool {
        self.fips
    }

    /// The f9 certificate carries Yubico's CSPN marker (`.11`).
    pub fn cspn(&self) -> bool {
        self.cspn
    }

    /// The PIV slot of the key (`0x9a`, `0x82`, …), from the slot
    /// certificate's subject ("YubiKey PIV Attestation 9a"); `None` if the
    /// subject does not have that form.
    pub fn slot(&self) -> Option<u8> {
        self.slot
    }

    /// The attested public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// Checks the attestation against an issuer's policy.
    ///
    /// # Errors
    /// The first requirement not met, in this order:
    /// [`PivAttestError::AnchorNotAllowed`],
    /// [`PivAttestError::FirmwareTooOld`],
    /// [`PivAttestError::PinPolicyNotAllowed`],
    /// [`PivAttestError::TouchPolicyNotAllowed`],
    /// [`PivAttestError::FipsRequired`].
    pub fn check_policy(&self, policy: &PivPolicy) -> Result<(), PivAttestError> {
        if let Some(anchors) = &policy.anchors
            && !anchors.contains(&self.anchor)
        {
            return Err(PivAttestError::AnchorNotAllowed {
                anchor: self.anchor.clone(),
                allowed: list(anchors),
            });
        }
        if let Some(required) = policy.min_firmware
            && self.firmware < required
        {
            return Err(PivAttestError::FirmwareTooOld {
                found: self.firmware,
                required,
            });
        }
        if !policy.pin_policies.contains(&self.pin_policy) {
            return Err(PivAttestError::PinPolicyNotAllowed {
                found: self.pin_policy,
                allowed: list(&policy.pin_policies),
            });
        }
        if !policy.touch_policies.contains(&self.touch_policy) {
            return Err(PivAttestError::TouchPolicyNotAllowed {
                found: self.touch_policy,
                allowed: list(&policy.touch_policies),
            });
        }
        if policy.require_fips && !self.fips {
            return Err(PivAttestError::FipsRequired);
        }
        Ok(())
    }

    /// Checks that the attested key is `jwk`, the key being enrolled (same
    /// curve, same point).
    ///
    /// # Errors
    /// [`PivAttestError::KeyMismatch`], saying how they differ.
    pub fn check_key(&self, jwk: &Jwk) -> Result<(), PivAttestError> {
        let mismatch = |detail: String| Err(PivAttestError::KeyMismatch { detail });
        let Jwk::Ec(enrolled) = jwk else {
            return mismatch(format!(
                "the attested key is {}, the enrolled key is kty {}",
                key_name(&self.public_key),
                jwk.kty()
            ));
        };
        let attested = match (&self.public_key, enrolled.crv()) {
            (PublicKey::EcP256 { sec1 }, EcCurve::P256)
            | (PublicKey::EcP384 { sec1 }, EcCurve::P384) => sec1,
            (attested, crv) => {
                return mismatch(format!(
                    "the attested key is {}, the enrolled key is {}",
                    key_name(attested),
                    crv.name()
                ));
            }
        };
        // Public values: no need for a constant-time comparison.
        if *attested != enrolled.sec1_uncompressed() {
            return mismatch("same curve, different point".to_owned());
        }
        Ok(())
    }

    /// The attestation's facts as `(name, value)` pairs, for the issuer's
    /// device record and audit log. Absent facts (a YubiKey 4's serial) are
    /// left out.
    pub fn facts(&self) -> Vec<(&'static str, String)> {
        let mut facts = vec![
            ("anchor", self.anchor.clone()),
            ("anchor_kind", self.anchor_kind.to_string()),
        ];
        if !self.intermediates.is_empty() {
            facts.push(("intermediates", self.intermediates.join(" < ")));
        }
        if let Some(serial) = self.serial {
            facts.push(("serial", serial.to_string()));
        }
        facts.push(("firmware", self.firmware.to_string()));
        facts.push(("pin_policy", self.pin_policy.to_string()));
        facts.push(("touch_policy", self.touch_policy.to_string()));
        if let Some(form_factor) = self.form_factor {
            facts.push(("form_factor", form_factor.to_string()));
        }
        facts.push(("fips", self.fips.to_string()));
        facts.push(("cspn", self.cspn.to_string()));
        if let Some(slot) = self.slot {
            facts.push(("slot", format!("{slot:02x}")));
        }
        facts.push(("key", key_name(&self.public_key)));
        facts
    }
}

/// `P-256`, `P-384`, `RSA-2048`, … for messages and records.
fn key_name(key: &PublicKey) -> String {
    match key {
        PublicKey::EcP256 { .. } => "P-256".to_owned(),
        PublicKey::EcP384 { .. } => "P-384".to_owned(),
        PublicKey::Rsa { n, .. } => {
            // Bits of the modulus, without a leading zero byte.
            let n = n.strip_prefix(&[0]).unwrap_or(n);
            format!("RSA-{}", n.len().saturating_mul(8))
        }
    }
}
