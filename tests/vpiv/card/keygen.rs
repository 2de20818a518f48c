//! GENERATE ASYMMETRIC KEY PAIR, and the YubiKey IMPORT KEY, ATTEST and GET
//! METADATA.

use super::Card;
use crate::apdu::{Command, Response, sw};
use crate::firmware::Firmware;
use crate::keys::{KeyAlg, Origin, PinPolicy, SlotKey, TouchPolicy};
use crate::tlv::{self, Tlv};

const SLOT_ATTESTATION: u8 = 0xF9;
const SLOT_MANAGEMENT: u8 = 0x9B;

/// Slots that hold a user key: 9A, 9C, 9D, 9E and the retired 82–95.
pub(crate) fn is_key_slot(slot: u8) -> bool {
    matches!(slot, 0x9A | 0x9C | 0x9D | 0x9E | 0x82..=0x95)
}

/// Algorithm, PIN policy and touch policy members of GENERATE's `AC`
/// template or IMPORT's data (`80`, `AA`, `AB`), and IMPORT's scalar (`06`).
#[derive(Default)]
struct KeyParams<'a> {
    alg: Option<u8>,
    pin_policy: Option<PinPolicy>,
    touch_policy: Option<TouchPolicy>,
    scalar: Option<&'a [u8]>,
}

impl<'a> KeyParams<'a> {
    fn parse(data: &'a [u8]) -> Option<Self> {
        let mut params = Self::default();
        for member in Tlv::parse_all(data).ok()? {
            match (member.tag, member.value) {
                (0x80, [alg]) => params.alg = Some(*alg),
                (0xAA, [policy]) => params.pin_policy = PinPolicy::from_wire(*policy).ok()?,
                (0xAB, [policy]) => params.touch_policy = TouchPolicy::from_wire(*policy).ok()?,
                (0x06, scalar) => params.scalar = Some(scalar),
                _ => return None,
            }
        }
        Some(params)
    }
}

impl Card {
    /// GENERATE: `AC { 80 alg [AA pin] [AB touch] }` → `7F49 { 86 point }`.
    pub(super) fn generate(&mut self, command: &Command) -> Response {
        if !self.session.mgm_authenticated {
            return Response::status(sw::SECURITY_STATUS_NOT_SATISFIED);
        }
        let slot = command.p2;
        if command.p1 != 0 || !is_key_slot(slot) {
            // The yubikey crate reads 6B00 as "incorrect slot".
            return Response::status(sw::WRONG_P1P2);
        }
        let Some(params) = Tlv::parse_single(&command.data, 0xAC).and_then(KeyParams::parse) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        let (Some(alg), None) = (params.alg.and_then(KeyAlg::from_id), params.scalar) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        let pin_policy = params.pin_policy.unwrap_or(PinPolicy::default_for(slot));
        let touch_policy = params.touch_policy.unwrap_or(TouchPolicy::Never);
        let Ok(key) = SlotKey::generate(alg, pin_policy, touch_policy) else {
            return Response::status(sw::UNKNOWN_ERROR);
        };
        let public = tlv::encode(0x7F49, &tlv::encode(0x86, &key.public_point()));
        self.slots.insert(slot, key);
        Response::ok(public)
    }

    /// IMPORT KEY (YubiKey `FE`, P1 algorithm, P2 slot): `06 scalar [AA] [AB]`.
    pub(super) fn import(&mut self, command: &Command) -> Response {
        if !self.session.mgm_authenticated {
            return Response::status(sw::SECURITY_STATUS_NOT_SATISFIED);
        }
        let slot = command.p2;
        if !is_key_slot(slot) {
            return Response::status(sw::WRONG_P1P2);
        }
        let Some(alg) = KeyAlg::from_id(command.p1) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        let Some(params) = KeyParams::parse(&command.data) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        let (Some(scalar), None) = (params.scalar, params.alg) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        let pin_policy = params.pin_policy.unwrap_or(PinPolicy::default_for(slot));
        let touch_policy = params.touch_policy.unwrap_or(TouchPolicy::Never);
        match SlotKey::import(alg, scalar, pin_policy, touch_policy) {
            Ok(key) => {
                self.slots.insert(slot, key);
                Response::status(sw::OK)
            }
            Err(_) => Response::status(sw::INCORRECT_DATA),
        }
    }

    /// Whether the key in `slot` counts as imported (by IMPORT KEY or by an
    /// `imported <slot>` line in the control file).
    fn imported(&self, slot: u8, key: &SlotKey) -> bool {
        key.origin == Origin::Imported || self.control.imported.contains(&slot)
    }

    /// ATTEST (`F9`, P1 slot): a certificate for a key generated on the card.
    /// An empty slot and an imported key both get 6A80, as on a YubiKey.
    pub(super) fn attest(&mut self, command: &Command) -> Response {
        if self.firmware() < Firmware::new(4, 3, 0) {
            return Response::status(sw::INS_NOT_SUPPORTED);
        }
        let slot = command.p1;
        let Some(key) = self.slots.get(&slot).filter(|_| is_key_slot(slot)) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        if self.imported(slot, key) {
            return Response::status(sw::INCORRECT_DATA);
        }
        let facts = self.facts();
        match self.attestation.slot_cert(slot, key, &facts) {
            Ok(cert) => Response::ok(cert),
            Err(_) => Response::status(sw::UNKNOWN_ERROR),
        }
    }

    /// GET METADATA (`F7`, P2 slot), from firmware 5.3. Tags: 01 algorithm,
    /// 02 PIN and touch policy, 03 origin, 04 public key, 05 default value,
    /// 06 retries (total, left).
    pub(super) fn metadata(&mut self, command: &Command) -> Response {
        if !self.firmware().has_metadata() {
            return Response::status(sw::INS_NOT_SUPPORTED);
        }
        let slot = command.p2;
        let mut out = Vec::new();
        if let Some(((max, left), default)) = self.reference_metadata(slot) {
            out.extend(tlv::encode(0x01, &[0xFF]));
            out.extend(tlv::encode(0x05, &[u8::from(default)]));
            out.extend(tlv::encode(0x06, &[max, left]));
        } else if slot == SLOT_MANAGEMENT {
            let key = self.mgm_key();
            let touch = if self.mgm_touch {
                TouchPolicy::Always
            } else {
                TouchPolicy::Never
            };
            out.extend(tlv::encode(0x01, &[key.alg().id()]));
            out.extend(tlv::encode(0x02, &[0x00, touch as u8]));
            out.extend(tlv::encode(0x05, &[u8::from(key.is_factory_default())]));
        } else if slot == SLOT_ATTESTATION {
            // The factory attestation key counts as imported.
            out.extend(tlv::encode(0x01, &[KeyAlg::P256.id()]));
            out.extend(tlv::encode(
                0x02,
                &[PinPolicy::Never as u8, TouchPolicy::Never as u8],
            ));
            out.extend(tlv::encode(0x03, &[Origin::Imported as u8]));
            out.extend(tlv::encode(
                0x04,
                &tlv::encode(0x86, &self.attestation.f9_point()),
            ));
        } else if is_key_slot(slot) {
            let Some(key) = self.slots.get(&slot) else {
                return Response::status(sw::REFERENCE_NOT_FOUND);
            };
            let origin = if self.imported(slot, key) {
                Origin::Imported
            } else {
                Origin::Generated
            };
            out.extend(tlv::encode(0x01, &[key.alg().id()]));
            out.extend(tlv::encode(
                0x02,
                &[key.pin_policy as u8, key.touch_policy as u8],
            ));
            out.extend(tlv::encode(0x03, &[origin as u8]));
            out.extend(tlv::encode(0x04, &tlv::encode(0x86, &key.public_point())));
        } else {
            return Response::status(sw::REFERENCE_NOT_FOUND);
        }
        Response::ok(out)
    }
}
