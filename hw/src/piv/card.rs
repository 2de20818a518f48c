//! Talking to the card through the `yubikey` crate: finding the YubiKey,
//! authenticating with the management key, and learning what a slot holds.

use holdfast_proto::Jwk;
use yubikey::piv::{self, AlgorithmId, ManagementSlotId, Origin, SlotAlgorithmId, SlotId};
use yubikey::{MgmKey, YubiKey};

use super::cert::{self, CertificateObject};
use super::config::{ManagementKey, PinSource, PivSlot};
use super::error::{ManagementKeyAlgorithm, PivError, device_error};
use crate::attestation::piv::{Firmware, PinPolicy, TouchPolicy};

/// PIV attestation (`ATTEST`, slot f9) appeared in firmware 4.3.
pub(super) const ATTESTATION_FIRMWARE: Firmware = Firmware::new(4, 3, 0);
/// The factory management key is AES-192 from firmware 5.7, 3DES before.
const AES_DEFAULT_MANAGEMENT_KEY_FIRMWARE: Firmware = Firmware::new(5, 7, 0);

/// The factory-default management key of every YubiKey (3DES before
/// firmware 5.7, AES-192 from 5.7: the same 24 bytes).
const DEFAULT_MANAGEMENT_KEY: [u8; 24] = [
    1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
];

/// The YubiKey's admin data object (flags saying whether the management key
/// is stored PIN-protected).
const ADMIN_DATA_OBJECT: u32 = 0x005f_ff00;

/// The f9 attestation certificate object.
pub(crate) const F9_CERTIFICATE_OBJECT: u32 = 0x005f_ff01;

/// Opens the YubiKey with `serial`, or the only one present.
///
/// Every reader is tried, so the errors can tell "no reader" from "no card"
/// from "two cards" and list the serials present. YubiKeys not chosen are
/// released without a reset, so another program's session on them survives.
pub(crate) fn open(serial: Option<u32>) -> Result<YubiKey, PivError> {
    let pcsc = |e| device_error("opening the PC/SC context", e);
    let mut context = yubikey::reader::Context::open().map_err(pcsc)?;
    let readers = context.iter().map_err(pcsc)?;
    let mut found = Vec::new();
    let mut any_reader = false;
    let mut in_use = false;
    for reader in readers {
        any_reader = true;
        match reader.open() {
            Ok(yubikey) => found.push(yubikey),
            Err(yubikey::Error::PcscError {
                inner: Some(pcsc::Error::SharingViolation),
            }) => in_use = true,
            // An empty reader, or a card without a PIV application.
            Err(_) => {}
        }
    }
    let serials: Vec<u32> = found.iter().map(|yk| yk.serial().0).collect();
    let chosen = match serial {
        Some(serial) => serials.iter().position(|&s| s == serial),
        None if found.len() == 1 => Some(0),
        None => None,
    };
    let mut kept = None;
    for (index, yubikey) in found.into_iter().enumerate() {
        if Some(index) == chosen {
            kept = Some(yubikey);
        } else {
            // Best effort: failing to release a card we do not use changes
            // nothing for this caller.
            let _ = yubikey.disconnect(pcsc::Disposition::LeaveCard);
        }
    }
    if let Some(yubikey) = kept {
        return Ok(yubikey);
    }
    Err(if !any_reader {
        PivError::NoReader
    } else if let Some(serial) = serial {
        if serials.is_empty() && in_use {
            PivError::CardInUse
        } else {
            PivError::SerialNotFound {
                serial,
                present: serials,
            }
        }
    } else if serials.len() > 1 {
        PivError::MultipleCards { serials }
    } else if in_use {
        PivError::CardInUse
    } else {
        PivError::NoCard
    })
}

/// Authenticates the session with the management key (needed to generate
/// keys): the configured one, else the factory default, else one stored
/// PIN-protected on the card.
pub(crate) fn authenticate(
    yubikey: &mut YubiKey,
    configured: Option<&ManagementKey>,
    pin: &PinSource,
) -> Result<ManagementKeyAlgorithm, PivError> {
    let serial = yubikey.serial().0;
    let (algorithm, is_default) = management_key_algorithm(yubikey)?;
    let auth = |e| device_error("management key authentication", e);

    if let Some(key) = configured {
        let mgm =
            MgmKey::from_bytes(key.as_bytes(), Some(algorithm.to_yubikey())).map_err(|_| {
                PivError::ManagementKeyLength {
                    serial,
                    algorithm,
                    len: key.as_bytes().len(),
                    expected: algorithm.key_len(),
                }
            })?;
        return match yubikey.authenticate(&mgm) {
            Ok(()) => Ok(algorithm),
            Err(yubikey::Error::AuthenticationError) => {
                Err(PivError::ManagementKeyRejected { serial, algorithm })
            }
            Err(e) => Err(auth(e)),
        };
    }

    // The factory default exists only as 3DES and AES-192. Metadata (5.3+)
    // says whether the key is still the default; older cards are just tried.
    let default_possible = matches!(
        algorithm,
        ManagementKeyAlgorithm::TripleDes | ManagementKeyAlgorithm::Aes192
    );
    if default_possible && is_default != Some(false) {
        let mgm = MgmKey::from_bytes(DEFAULT_MANAGEMENT_KEY, Some(algorithm.to_yubikey()))
            .map_err(auth)?;
        match yubikey.authenticate(&mgm) {
            Ok(()) => return Ok(algorithm),
            Err(yubikey::Error::AuthenticationError) => {}
            Err(e) => return Err(auth(e)),
        }
    }

    // A PIN-protected management key: only when the card says there is one,
    // so a PIN is never spent on a guess.
    if let Some(pin) = pin.read()?
        && is_protected(yubikey)
    {
        yubikey
            .verify_pin(&pin)
            .map_err(|e| device_error("PIN verification", e))?;
        if let Ok(mgm) = MgmKey::get_protected(yubikey) {
            match yubikey.authenticate(&mgm) {
                Ok(()) => return Ok(algorithm),
                Err(yubikey::Error::AuthenticationError) => {}
                Err(e) => return Err(auth(e)),
            }
        }
    }
    Err(PivError::ManagementKeyRequired { serial, algorithm })
}

/// The management key's algorithm and whether it is the factory default
/// (`None` when the card cannot say).
fn management_key_algorithm(
    yubikey: &mut YubiKey,
) -> Result<(ManagementKeyAlgorithm, Option<bool>), PivError> {
    let firmware = firmware(yubikey);
    match piv::metadata(yubikey, SlotId::Management(ManagementSlotId::Management)) {
        Ok(metadata) => match metadata.algorithm {
            SlotAlgorithmId::Management(alg) => {
                Ok((ManagementKeyAlgorithm::from_yubikey(alg), metadata.default))
            }
            _ => Err(device_error(
                "reading the management key's metadata",
                yubikey::Error::InvalidObject,
            )),
        },
        // No GET METADATA (before 5.3): those firmwares only have 3DES keys.
        // A card that lacks metadata yet claims 5.7+ gets the 5.7 default.
        Err(yubikey::Error::NotSupported) => Ok((
            if firmware >= AES_DEFAULT_MANAGEMENT_KEY_FIRMWARE {
                ManagementKeyAlgorithm::Aes192
            } else {
                ManagementKeyAlgorithm::TripleDes
            },
            None,
        )),
        Err(yubikey::Error::AlgorithmError) => Err(PivError::UnsupportedFirmware {
            version: firmware,
            needed: "a 3DES or AES management key (the card reports another algorithm)",
        }),
        Err(e) => Err(device_error("reading the management key's metadata", e)),
    }
}

fn is_protected(yubikey: &mut YubiKey) -> bool {
    yubikey
        .fetch_object(ADMIN_DATA_OBJECT)
        .is_ok_and(|object| cert::admin_data_says_protected(&object))
}

/// Where a key came from, as the card reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyOrigin {
    /// Generated on the YubiKey: attestable.
    Generated,
    /// Imported: never attestable.
    Imported,
}

/// What a slot holds, as far as the card tells.
#[derive(Clone, Debug)]
pub(crate) struct SlotKey {
    pub(crate) jwk: Jwk,
    pub(crate) pin_policy: Option<PinPolicy>,
    pub(crate) touch_policy: Option<TouchPolicy>,
    pub(crate) origin: Option<KeyOrigin>,
}

/// Reads the public key and policies of the key in `slot`: from GET
/// METADATA (firmware 5.3+), else from the slot's attestation certificate
/// (generated keys, 4.3+), else from the certificate stored in the slot.
pub(crate) fn slot_key(yubikey: &mut YubiKey, slot: PivSlot) -> Result<SlotKey, PivError> {
    let serial = yubikey.serial().0;
    let slot_id = slot_id(slot)?;
    match piv::metadata(yubikey, slot_id) {
        Ok(metadata) => {
            if let SlotAlgorithmId::Asymmetric(alg) = metadata.algorithm
                && alg != AlgorithmId::EccP256
            {
                return Err(PivError::NotP256 {
                    slot,
                    key: format!("{alg:?}"),
                });
            }
            if let Some(spki) = &metadata.public {
                let jwk = cert::p256_jwk_from_spki(spki).ok_or_else(|| PivError::NotP256 {
                    slot,
                    key: cert::describe_spki(spki),
                })?;
                let (pin_policy, touch_policy) =
                    metadata.policy.map_or((None, None), |(pin, touch)| {
                        (
                            pin_policy_from_yubikey(pin),
                            touch_policy_from_yubikey(touch),
                        )
                    });
                return Ok(SlotKey {
                    jwk,
                    pin_policy,
                    touch_policy,
                    origin: metadata.origin.map(|origin| match origin {
                        Origin::Generated => KeyOrigin::Generated,
                        Origin::Imported => KeyOrigin::Imported,
                    }),
                });
            }
        }
        // 6A88: nothing in the slot.
        Err(yubikey::Error::NotFound) => return Err(PivError::SlotEmpty { serial, slot }),
        Err(yubikey::Error::NotSupported) => {}
        Err(e) => return Err(device_error("reading the slot's metadata", e)),
    }

    if firmware(yubikey) >= ATTESTATION_FIRMWARE
        && let Ok(der) = piv::attest(yubikey, slot_id)
        && let Some(attested) = cert::read_certificate(&der)
    {
        let jwk = attested.jwk.ok_or_else(|| PivError::NotP256 {
            slot,
            key: cert::describe_spki(&attested.spki),
        })?;
        return Ok(SlotKey {
            jwk,
            pin_policy: attested.pin_policy,
            touch_policy: attested.touch_policy,
            origin: Some(KeyOrigin::Generated),
        });
    }

    // Last resort: the certificate stored with the key. It names the key but
    // not its policies (unless it is a copy of the attestation certificate).
    let object = match yubikey.fetch_object(slot.certificate_object()) {
        Ok(object) => object,
        Err(yubikey::Error::NotFound) => return Err(PivError::SlotEmpty { serial, slot }),
        Err(e) => return Err(device_error("reading the slot's certificate", e)),
    };
    match cert::certificate_object(&object) {
        Ok(CertificateObject::Der(der)) => {
            let stored = cert::read_certificate(der).ok_or(PivError::SlotEmpty { serial, slot })?;
            let jwk = stored.jwk.ok_or_else(|| PivError::NotP256 {
                slot,
                key: cert::describe_spki(&stored.spki),
            })?;
            Ok(SlotKey {
                jwk,
                pin_policy: stored.pin_policy,
                touch_policy: stored.touch_policy,
                origin: None,
            })
        }
        _ => Err(PivError::SlotEmpty { serial, slot }),
    }
}

/// Whether `slot` holds a key. Without GET METADATA (before 5.3), an
/// imported key with no certificate stored beside it cannot be seen.
pub(crate) fn slot_in_use(yubikey: &mut YubiKey, slot: PivSlot) -> Result<bool, PivError> {
    let slot_id = slot_id(slot)?;
    match piv::metadata(yubikey, slot_id) {
        Ok(_) => return Ok(true),
        Err(yubikey::Error::NotFound) => return Ok(false),
        Err(yubikey::Error::NotSupported) => {}
        Err(e) => return Err(device_error("reading the slot's metadata", e)),
    }
    if firmware(yubikey) >= ATTESTATION_FIRMWARE && piv::attest(yubikey, slot_id).is_ok() {
        return Ok(true);
    }
    Ok(yubikey
        .fetch_object(slot.certificate_object())
        .is_ok_and(|object| {
            matches!(
                cert::certificate_object(&object),
                Ok(CertificateObject::Der(_) | CertificateObject::Compressed)
            )
        }))
}

/// The crate's slot type. Every [`PivSlot`] is one; the error is for form.
pub(crate) fn slot_id(slot: PivSlot) -> Result<SlotId, PivError> {
    SlotId::try_from(slot.id()).map_err(|e| device_error("selecting the slot", e))
}

/// The firmware version the card reports.
pub(super) fn firmware(yubikey: &YubiKey) -> Firmware {
    let version = yubikey.version();
    Firmware::new(version.major, version.minor, version.patch)
}

/// The crate's PIN policy for generating a key. The crate has no
/// fingerprint policies (YubiKey Bio), so those are refused here rather
/// than silently generated with another policy.
pub(super) fn pin_policy_to_yubikey(policy: PinPolicy) -> Result<yubikey::PinPolicy, PivError> {
    match policy {
        PinPolicy::Never => Ok(yubikey::PinPolicy::Never),
        PinPolicy::Once => Ok(yubikey::PinPolicy::Once),
        PinPolicy::Always => Ok(yubikey::PinPolicy::Always),
        PinPolicy::MatchOnce | PinPolicy::MatchAlways => {
            Err(PivError::PinPolicyUnsupported { policy })
        }
    }
}

/// The crate's touch policy for generating a key.
pub(super) fn touch_policy_to_yubikey(policy: TouchPolicy) -> yubikey::TouchPolicy {
    match policy {
        TouchPolicy::Never => yubikey::TouchPolicy::Never,
        TouchPolicy::Always => yubikey::TouchPolicy::Always,
        TouchPolicy::Cached => yubikey::TouchPolicy::Cached,
    }
}

/// A policy from the card's metadata; `None` for the crate's `Default`, a
/// request the card resolves per slot, which metadata never reports.
fn pin_policy_from_yubikey(policy: yubikey::PinPolicy) -> Option<PinPolicy> {
    match policy {
        yubikey::PinPolicy::Never => Some(PinPolicy::Never),
        yubikey::PinPolicy::Once => Some(PinPolicy::Once),
        yubikey::PinPolicy::Always => Some(PinPolicy::Always),
        yubikey::PinPolicy::Default => None,
    }
}

/// As [`pin_policy_from_yubikey`], for the touch policy.
fn touch_policy_from_yubikey(policy: yubikey::TouchPolicy) -> Option<TouchPolicy> {
    match policy {
        yubikey::TouchPolicy::Never => Some(TouchPolicy::Never),
        yubikey::TouchPolicy::Always => Some(TouchPolicy::Always),
        yubikey::TouchPolicy::Cached => Some(TouchPolicy::Cached),
        yubikey::TouchPolicy::Default => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_convert_to_and_from_the_crate_and_match_yubico_codes() {
        for policy in [PinPolicy::Never, PinPolicy::Once, PinPolicy::Always] {
            let theirs = pin_policy_to_yubikey(policy).unwrap();
            assert_eq!(pin_policy_from_yubikey(theirs), Some(policy));
            // The crate's byte is the one attestation certificates state.
            assert_eq!(PinPolicy::from_code(u8::from(theirs)), Some(policy));
        }
        for policy in TouchPolicy::ALL {
            let theirs = touch_policy_to_yubikey(policy);
            assert_eq!(touch_policy_from_yubikey(theirs), Some(policy));
            assert_eq!(TouchPolicy::from_code(u8::from(theirs)), Some(policy));
        }
        for policy in [PinPolicy::MatchOnce, PinPolicy::MatchAlways] {
            assert!(matches!(
                pin_policy_to_yubikey(policy),
                Err(PivError::PinPolicyUnsupported { policy: p }) if p == policy
            ));
        }
        assert_eq!(pin_policy_from_yubikey(yubikey::PinPolicy::Default), None);
        assert_eq!(
            touch_policy_from_yubikey(yubikey::TouchPolicy::Default),
            None
        );
    }

    #[test]
    fn firmware_thresholds_are_ordered_as_versions() {
        assert!(Firmware::new(5, 4, 3) < AES_DEFAULT_MANAGEMENT_KEY_FIRMWARE);
        assert!(Firmware::new(5, 7, 4) > AES_DEFAULT_MANAGEMENT_KEY_FIRMWARE);
        assert!(Firmware::new(4, 3, 7) > ATTESTATION_FIRMWARE);
        assert!(Firmware::new(4, 2, 7) < ATTESTATION_FIRMWARE);
    }
}
