//! GET DATA and PUT DATA (SP 800-73-4 3.1.2, 3.3.2): data objects such as
//! the slot certificates (`5FC105` for 9A) and the f9 attestation
//! certificate (`5FFF01`).

use super::Card;
use crate::apdu::{Command, Response, sw};
use crate::tlv::{self, Tlv};

/// The f9 attestation certificate object.
pub(super) const OBJECT_ATTESTATION: u32 = 0x5F_FF01;
/// Printed information: readable only after VERIFY PIN.
const OBJECT_PRINTED: u32 = 0x5F_C109;
/// The discovery object (tag `7E`), answered outside a `53` wrapper.
const OBJECT_DISCOVERY: u32 = 0x7E;
/// Largest object a YubiKey stores (the yubikey crate's `CB_OBJ_MAX`).
const MAX_OBJECT: usize = 3063;

/// Discovery object: the PIV AID and PIN usage policy (PIV PIN only).
const DISCOVERY: &[u8] = &[
    0x7E, 0x12, 0x4F, 0x0B, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00, 0x5F,
    0x2F, 0x02, 0x40, 0x00,
];

/// The object id in a `5C` tag list (1 to 3 bytes).
fn object_id(tag_list: &[u8]) -> Option<u32> {
    if tag_list.is_empty() || tag_list.len() > 3 {
        return None;
    }
    Some(
        tag_list
            .iter()
            .fold(0u32, |acc, &b| (acc << 8) | u32::from(b)),
    )
}

/// Certificate objects: `70 cert ‖ 71 01 00 (not compressed) ‖ FE 00 (LRC)`.
pub(crate) fn certificate_object(cert: &[u8]) -> Vec<u8> {
    let mut out = tlv::encode(0x70, cert);
    out.extend(tlv::encode(0x71, &[0x00]));
    out.extend(tlv::encode(0xFE, &[]));
    out
}

impl Card {
    /// GET DATA (`CB 3F FF`, data `5C id`) → `53 { contents }`.
    pub(super) fn get_data(&mut self, command: &Command) -> Response {
        if (command.p1, command.p2) != (0x3F, 0xFF) {
            return Response::status(sw::INCORRECT_P1P2);
        }
        let Some(id) = Tlv::parse_single(&command.data, 0x5C).and_then(object_id) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        if id == OBJECT_DISCOVERY {
            return Response::ok(DISCOVERY.to_vec());
        }
        if id == OBJECT_PRINTED && !self.session.pin_verified {
            return Response::status(sw::SECURITY_STATUS_NOT_SATISFIED);
        }
        if id == OBJECT_ATTESTATION && self.control.no_f9 {
            return Response::status(sw::NOT_FOUND);
        }
        let contents = match self.objects.get(&id) {
            // Only the f9 object is kept empty: deleted, not back to factory.
            Some(contents) if contents.is_empty() => return Response::status(sw::NOT_FOUND),
            Some(contents) => contents.clone(),
            // The factory f9 certificate, unless PUT DATA replaced it.
            None if id == OBJECT_ATTESTATION => {
                let firmware = self.firmware();
                certificate_object(self.attestation.f9_cert(firmware))
            }
            None => return Response::status(sw::NOT_FOUND),
        };
        Response::ok(tlv::encode(0x53, &contents))
    }

    /// PUT DATA (`DB 3F FF`, data `5C id ‖ 53 contents`): needs the
    /// management key; empty contents delete the object.
    pub(super) fn put_data(&mut self, command: &Command) -> Response {
        if (command.p1, command.p2) != (0x3F, 0xFF) {
            return Response::status(sw::INCORRECT_P1P2);
        }
        if !self.session.mgm_authenticated {
            return Response::status(sw::SECURITY_STATUS_NOT_SATISFIED);
        }
        let parsed = Tlv::parse_all(&command.data);
        let Ok([tag_list, contents]) = parsed.as_deref() else {
            return Response::status(sw::INCORRECT_DATA);
        };
        let (0x5C, 0x53) = (tag_list.tag, contents.tag) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        let Some(id) = object_id(tag_list.value).filter(|&id| id != OBJECT_DISCOVERY) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        if contents.value.len() > MAX_OBJECT {
            return Response::status(sw::NO_SPACE);
        }
        if contents.value.is_empty() && id != OBJECT_ATTESTATION {
            self.objects.remove(&id);
        } else {
            self.objects.insert(id, contents.value.to_vec());
        }
        Response::status(sw::OK)
    }
}
