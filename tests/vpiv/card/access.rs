//! PIN and PUK: VERIFY, CHANGE REFERENCE, RESET RETRY, and the YubiKey
//! extensions SET PIN RETRIES and RESET.

use subtle::ConstantTimeEq;

use super::{Card, Session};
use crate::apdu::{Command, Response, sw};

pub(super) const DEFAULT_PIN: &[u8] = b"123456";
pub(super) const DEFAULT_PUK: &[u8] = b"12345678";
const DEFAULT_RETRIES: u8 = 3;

/// Key references in P2.
const PIN: u8 = 0x80;
const PUK: u8 = 0x81;

/// A PIN or PUK: the value padded to 8 bytes with FF, and its counter.
pub(super) struct Reference {
    value: [u8; 8],
    max: u8,
    left: u8,
}

impl Reference {
    pub(super) fn new(value: &[u8]) -> Self {
        let mut padded = [0xFF; 8];
        for (slot, byte) in padded.iter_mut().zip(value) {
            *slot = *byte;
        }
        Self {
            value: padded,
            max: DEFAULT_RETRIES,
            left: DEFAULT_RETRIES,
        }
    }

    pub(super) fn retries(&self, blocked: bool) -> (u8, u8) {
        (self.max, if blocked { 0 } else { self.left })
    }

    pub(super) fn is(&self, value: &[u8]) -> bool {
        Self::new(value).value == self.value
    }

    /// Checks an 8-byte padded attempt; `blocked` forces the blocked state.
    fn check(&mut self, attempt: &[u8], blocked: bool) -> Result<(), u16> {
        if blocked || self.left == 0 {
            return Err(sw::AUTH_METHOD_BLOCKED);
        }
        if bool::from(self.value.ct_eq(attempt)) {
            self.left = self.max;
            return Ok(());
        }
        self.left = self.left.saturating_sub(1);
        Err(sw::VERIFY_FAILED | u16::from(self.left))
    }

    fn set(&mut self, padded: &[u8; 8]) {
        self.value = *padded;
        self.left = self.max;
    }
}

/// A new PIN or PUK: 6 to 8 bytes, padded with FF to 8.
fn valid_new_value(padded: &[u8]) -> Option<[u8; 8]> {
    let padded: [u8; 8] = padded.try_into().ok()?;
    let len = padded.iter().position(|&b| b == 0xFF).unwrap_or(8);
    let padding_only_after = padded.iter().skip(len).all(|&b| b == 0xFF);
    (len >= 6 && padding_only_after).then_some(padded)
}

impl Card {
    fn pin_blocked(&self) -> bool {
        self.control.pin_blocked || self.pin.left == 0
    }

    fn puk_blocked(&self) -> bool {
        self.control.puk_blocked || self.puk.left == 0
    }

    /// VERIFY (SP 800-73-4 3.2.1): without data, report the state.
    pub(super) fn verify(&mut self, command: &Command) -> Response {
        if command.p2 != PIN {
            return Response::status(sw::REFERENCE_NOT_FOUND);
        }
        if command.p1 == 0xFF && command.data.is_empty() {
            self.session.pin_verified = false;
            return Response::status(sw::OK);
        }
        if command.p1 != 0x00 {
            return Response::status(sw::INCORRECT_P1P2);
        }
        if command.data.is_empty() {
            return Response::status(if self.pin_blocked() {
                sw::AUTH_METHOD_BLOCKED
            } else if self.session.pin_verified {
                sw::OK
            } else {
                sw::VERIFY_FAILED | u16::from(self.pin.left)
            });
        }
        if command.data.len() != 8 {
            return Response::status(sw::INCORRECT_DATA);
        }
        let blocked = self.control.pin_blocked;
        match self.pin.check(&command.data, blocked) {
            Ok(()) => {
                self.session.pin_verified = true;
                self.session.pin_just_verified = true;
                Response::status(sw::OK)
            }
            Err(status) => {
                self.session.pin_verified = false;
                Response::status(status)
            }
        }
    }

    /// CHANGE REFERENCE DATA: old value ‖ new value, 8 bytes each.
    pub(super) fn change_reference(&mut self, command: &Command) -> Response {
        let (Some(old), Some(new)) = (command.data.get(..8), command.data.get(8..)) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        let Some(new) = valid_new_value(new) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        let result = match command.p2 {
            PIN => {
                let blocked = self.control.pin_blocked;
                self.pin.check(old, blocked).map(|()| self.pin.set(&new))
            }
            PUK => {
                let blocked = self.control.puk_blocked;
                self.puk.check(old, blocked).map(|()| self.puk.set(&new))
            }
            _ => return Response::status(sw::REFERENCE_NOT_FOUND),
        };
        match result {
            Ok(()) => {
                if command.p2 == PIN {
                    self.session.pin_verified = true;
                }
                Response::status(sw::OK)
            }
            Err(status) => Response::status(status),
        }
    }

    /// RESET RETRY COUNTER: PUK ‖ new PIN unblocks the PIN.
    pub(super) fn reset_retry(&mut self, command: &Command) -> Response {
        if command.p2 != PIN {
            return Response::status(sw::REFERENCE_NOT_FOUND);
        }
        let (Some(puk), Some(new)) = (command.data.get(..8), command.data.get(8..)) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        let Some(new) = valid_new_value(new) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        let blocked = self.control.puk_blocked;
        match self.puk.check(puk, blocked) {
            Ok(()) => {
                self.pin.set(&new);
                Response::status(sw::OK)
            }
            Err(status) => Response::status(status),
        }
    }

    /// SET PIN RETRIES (YubiKey): needs the management key and the PIN;
    /// sets both counters and resets PIN and PUK to their defaults.
    pub(super) fn set_pin_retries(&mut self, command: &Command) -> Response {
        if !(self.session.mgm_authenticated && self.session.pin_verified) {
            return Response::status(sw::SECURITY_STATUS_NOT_SATISFIED);
        }
        // 63Cx reports at most 15 retries.
        if !(1..=15).contains(&command.p1) || !(1..=15).contains(&command.p2) {
            return Response::status(sw::INCORRECT_P1P2);
        }
        self.pin = Reference::new(DEFAULT_PIN);
        self.pin.max = command.p1;
        self.pin.left = command.p1;
        self.puk = Reference::new(DEFAULT_PUK);
        self.puk.max = command.p2;
        self.puk.left = command.p2;
        Response::status(sw::OK)
    }

    /// RESET (YubiKey): only once PIN and PUK are both blocked. The f9 key
    /// and certificate survive, as on a YubiKey.
    pub(super) fn factory_reset(&mut self) -> Response {
        if !(self.pin_blocked() && self.puk_blocked()) {
            return Response::status(sw::CONDITIONS_NOT_SATISFIED);
        }
        self.pin = Reference::new(DEFAULT_PIN);
        self.puk = Reference::new(DEFAULT_PUK);
        self.mgm = None;
        self.mgm_touch = false;
        self.slots.clear();
        // A replaced or deleted f9 certificate stays so (as on a YubiKey).
        self.objects
            .retain(|&id, _| id == super::objects::OBJECT_ATTESTATION);
        self.session = Session::default();
        Response::status(sw::OK)
    }

    /// Retries for GET METADATA of the PIN (80) or PUK (81).
    pub(super) fn reference_metadata(&self, p2: u8) -> Option<((u8, u8), bool)> {
        match p2 {
            PIN => Some((
                self.pin.retries(self.pin_blocked()),
                self.pin.is(DEFAULT_PIN),
            )),
            PUK => Some((
                self.puk.retries(self.puk_blocked()),
                self.puk.is(DEFAULT_PUK),
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_down_and_blocks() {
        let mut pin = Reference::new(DEFAULT_PIN);
        let wrong = *b"000000\xFF\xFF";
        assert_eq!(pin.check(&wrong, false), Err(0x63C2));
        assert_eq!(pin.check(&wrong, false), Err(0x63C1));
        assert_eq!(pin.check(b"123456\xFF\xFF", false), Ok(()));
        assert_eq!(pin.left, 3, "a right PIN restores the counter");
        for left in [2u16, 1, 0] {
            assert_eq!(pin.check(&wrong, false), Err(0x63C0 | left));
        }
        assert_eq!(pin.check(b"123456\xFF\xFF", false), Err(0x6983));
    }

    #[test]
    fn the_blocked_override_refuses_the_right_pin() {
        let mut pin = Reference::new(DEFAULT_PIN);
        assert_eq!(pin.check(b"123456\xFF\xFF", true), Err(0x6983));
        assert_eq!(pin.left, 3, "the override does not spend tries");
    }

    #[test]
    fn new_values_are_six_to_eight_bytes() {
        assert!(valid_new_value(b"654321\xFF\xFF").is_some());
        assert!(valid_new_value(b"87654321").is_some());
        assert!(valid_new_value(b"12345\xFF\xFF\xFF").is_none());
        assert!(valid_new_value(b"123456\xFF1").is_none());
        assert!(valid_new_value(b"1234567").is_none());
    }
}
