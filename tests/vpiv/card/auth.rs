//! GENERAL AUTHENTICATE: management key authentication (slot 9B) and
//! signatures with slot keys; and the YubiKey SET MANAGEMENT KEY.

use subtle::ConstantTimeEq;

use super::Card;
use crate::apdu::{Command, Response, sw};
use crate::keys::{PinPolicy, TouchPolicy};
use crate::mgm::{MgmAlg, MgmKey};
use crate::tlv::{self, Tlv};

const SLOT_MANAGEMENT: u8 = 0x9B;
/// Dynamic authentication template and its members (SP 800-73-4 3.2.4).
const TAG_TEMPLATE: u32 = 0x7C;
const TAG_WITNESS: u32 = 0x80;
const TAG_CHALLENGE: u32 = 0x81;
const TAG_RESPONSE: u32 = 0x82;
const TAG_EXPONENTIATION: u32 = 0x85;

/// What the card sent in step one, awaited in step two.
pub(super) enum Pending {
    /// Mutual authentication: the witness, before encryption.
    Witness(Vec<u8>),
    /// External authentication: the challenge sent in clear.
    Challenge(Vec<u8>),
}

/// The members of a `7C` template; `Some(&[])` is a present, empty member
/// (a request), `None` an absent one.
#[derive(Default)]
struct Template<'a> {
    witness: Option<&'a [u8]>,
    challenge: Option<&'a [u8]>,
    response: Option<&'a [u8]>,
    exponentiation: Option<&'a [u8]>,
}

impl<'a> Template<'a> {
    fn parse(data: &'a [u8]) -> Option<Self> {
        let inner = Tlv::parse_single(data, TAG_TEMPLATE)?;
        let mut template = Self::default();
        for member in Tlv::parse_all(inner).ok()? {
            let place = match member.tag {
                TAG_WITNESS => &mut template.witness,
                TAG_CHALLENGE => &mut template.challenge,
                TAG_RESPONSE => &mut template.response,
                TAG_EXPONENTIATION => &mut template.exponentiation,
                _ => return None,
            };
            if place.replace(member.value).is_some() {
                return None;
            }
        }
        Some(template)
    }
}

fn template_response(tag: u32, value: &[u8]) -> Response {
    Response::ok(tlv::encode(TAG_TEMPLATE, &tlv::encode(tag, value)))
}

fn random_block(len: usize) -> Option<Vec<u8>> {
    let mut block = vec![0u8; len];
    getrandom::fill(&mut block).ok()?;
    Some(block)
}

impl Card {
    pub(super) fn general_authenticate(
        &mut self,
        command: &Command,
        pin_just_verified: bool,
    ) -> Response {
        let Some(template) = Template::parse(&command.data) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        if command.p2 == SLOT_MANAGEMENT {
            self.authenticate_management(command.p1, &template)
        } else {
            self.sign(command.p1, command.p2, &template, pin_just_verified)
        }
    }

    fn authenticate_management(&mut self, alg: u8, template: &Template<'_>) -> Response {
        let key = self.mgm_key();
        // A YubiKey refuses an algorithm other than its key's with 6A80.
        if MgmAlg::from_id(alg) != Some(key.alg()) {
            return Response::status(sw::INCORRECT_DATA);
        }
        let block = key.alg().block_len();
        match *template {
            // Mutual, step 1: the card sends an encrypted witness.
            Template {
                witness: Some([]),
                challenge: None,
                response: None,
                exponentiation: None,
            } => {
                self.session.mgm_authenticated = false;
                let Some(witness) = random_block(block) else {
                    return Response::status(sw::UNKNOWN_ERROR);
                };
                let mut encrypted = witness.clone();
                if key.encrypt(&mut encrypted).is_err() {
                    return Response::status(sw::UNKNOWN_ERROR);
                }
                self.session.mgm_pending = Some(Pending::Witness(witness));
                template_response(TAG_WITNESS, &encrypted)
            }
            // Mutual, step 2: the decrypted witness and the host's challenge.
            Template {
                witness: Some(decrypted),
                challenge,
                response: None,
                exponentiation: None,
            } => self.finish_mutual(&key, decrypted, challenge),
            // External, step 1: the card sends a challenge in clear.
            Template {
                witness: None,
                challenge: Some([]),
                response: None,
                exponentiation: None,
            } => {
                self.session.mgm_authenticated = false;
                let Some(challenge) = random_block(block) else {
                    return Response::status(sw::UNKNOWN_ERROR);
                };
                self.session.mgm_pending = Some(Pending::Challenge(challenge.clone()));
                template_response(TAG_CHALLENGE, &challenge)
            }
            // External, step 2: the challenge encrypted by the host.
            Template {
                witness: None,
                challenge: None,
                response: Some(encrypted),
                exponentiation: None,
            } => {
                let Some(Pending::Challenge(mut expected)) = self.session.mgm_pending.take() else {
                    return Response::status(sw::CONDITIONS_NOT_SATISFIED);
                };
                let ok =
                    key.encrypt(&mut expected).is_ok() && bool::from(expected.ct_eq(encrypted));
                self.session.mgm_authenticated = ok;
                Response::status(if ok {
                    sw::OK
                } else {
                    sw::SECURITY_STATUS_NOT_SATISFIED
                })
            }
            _ => Response::status(sw::INCORRECT_DATA),
        }
    }

    fn finish_mutual(
        &mut self,
        key: &MgmKey,
        decrypted: &[u8],
        challenge: Option<&[u8]>,
    ) -> Response {
        let Some(Pending::Witness(witness)) = self.session.mgm_pending.take() else {
            return Response::status(sw::CONDITIONS_NOT_SATISFIED);
        };
        if !bool::from(witness.ct_eq(decrypted)) {
            self.session.mgm_authenticated = false;
            return Response::status(sw::SECURITY_STATUS_NOT_SATISFIED);
        }
        self.session.mgm_authenticated = true;
        let Some(challenge) = challenge else {
            // Single authentication: the host does not check the card.
            return Response::status(sw::OK);
        };
        let mut answer = challenge.to_vec();
        if key.encrypt(&mut answer).is_err() {
            self.session.mgm_authenticated = false;
            return Response::status(sw::INCORRECT_DATA);
        }
        template_response(TAG_RESPONSE, &answer)
    }

    fn sign(
        &mut self,
        alg: u8,
        slot: u8,
        template: &Template<'_>,
        pin_just_verified: bool,
    ) -> Response {
        let Some(key) = self.slots.get(&slot) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        if alg != key.alg().id() {
            return Response::status(sw::INCORRECT_DATA);
        }
        // Only signing: `82 00` asks for the response, `81` holds the digest.
        let (Some([]), Some(digest), None, None) = (
            template.response,
            template.challenge,
            template.witness,
            template.exponentiation,
        ) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        let pin_ok = match key.pin_policy {
            PinPolicy::Never => true,
            PinPolicy::Once => self.session.pin_verified,
            PinPolicy::Always => self.session.pin_verified && pin_just_verified,
        };
        if !pin_ok {
            return Response::status(sw::SECURITY_STATUS_NOT_SATISFIED);
        }
        // Touch is given at once unless the control file says nobody touches:
        // then the answer a YubiKey gives when its touch wait times out.
        let needs_touch = matches!(key.touch_policy, TouchPolicy::Always | TouchPolicy::Cached);
        if needs_touch && self.control.touch_timeout {
            return Response::status(sw::SECURITY_STATUS_NOT_SATISFIED);
        }
        if digest.len() > key.alg().field_len() {
            return Response::status(sw::INCORRECT_DATA);
        }
        match key.sign_prehash(digest) {
            Ok(signature) => template_response(TAG_RESPONSE, &signature),
            Err(_) => Response::status(sw::INCORRECT_DATA),
        }
    }

    /// SET MANAGEMENT KEY (YubiKey `FF`): `alg ‖ 9B ‖ len ‖ key`; P2 `FE`
    /// asks for touch on each use (recorded, reported by metadata).
    pub(super) fn set_management_key(&mut self, command: &Command) -> Response {
        if !self.session.mgm_authenticated {
            return Response::status(sw::SECURITY_STATUS_NOT_SATISFIED);
        }
        if command.p1 != 0xFF || !matches!(command.p2, 0xFE | 0xFF) {
            return Response::status(sw::INCORRECT_P1P2);
        }
        let [alg, SLOT_MANAGEMENT, len, key @ ..] = command.data.as_slice() else {
            return Response::status(sw::INCORRECT_DATA);
        };
        let Some(alg) = MgmAlg::from_id(*alg) else {
            return Response::status(sw::INCORRECT_DATA);
        };
        // AES management keys arrived with firmware 5.4.
        if alg != MgmAlg::TripleDes && self.firmware() < crate::firmware::Firmware::new(5, 4, 0) {
            return Response::status(sw::INCORRECT_DATA);
        }
        if usize::from(*len) != key.len() {
            return Response::status(sw::INCORRECT_DATA);
        }
        match MgmKey::new(alg, key) {
            Ok(key) => {
                self.mgm = Some(key);
                self.mgm_touch = command.p2 == 0xFE;
                Response::status(sw::OK)
            }
            Err(_) => Response::status(sw::INCORRECT_DATA),
        }
    }
}
