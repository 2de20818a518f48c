//! The card: the YubiKey PIV applet (and the two YubiKey applets the
//! yubikey crate selects), with everything in memory for one run.
//!
//! Session state (PIN verified, management key authenticated) lives until
//! the next SELECT, reset or power cycle, as on a YubiKey. Keys, PIN and PUK
//! counters, data objects and the management key live as long as the process.

mod access;
mod auth;
mod keygen;
mod objects;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::apdu::{Applet, Command, Response, sw};
use crate::attest::{Attestation, DeviceFacts};
use crate::control::Control;
use crate::firmware::Firmware;
use crate::keys::SlotKey;
use crate::mgm::MgmKey;

use self::access::Reference;

/// PIV application identifier (NIST SP 800-73-4); SELECT may send a prefix.
const PIV_AID: &[u8] = &[
    0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
];
/// The shortest prefix of the PIV AID that selects it (what the crate sends).
const PIV_AID_MIN: usize = 5;
/// YubiKey OTP applet: YubiKey 4 reports its serial there. SELECT may send
/// a prefix: ykman sends the 7-byte `A0000005272001`, the `yubikey` crate
/// the full 8 bytes (`…2001 01`).
const OTP_AID: &[u8] = &[0xA0, 0x00, 0x00, 0x05, 0x27, 0x20, 0x01, 0x01];
/// The shortest prefix of the OTP AID that selects it.
const OTP_AID_MIN: usize = 7;
/// YubiKey management applet (the crate's `deauthenticate` selects it).
const MGMT_AID: &[u8] = &[0xA0, 0x00, 0x00, 0x05, 0x27, 0x47, 0x11, 0x17];

/// The application property template a YubiKey answers to SELECT PIV.
const PIV_SELECT_RESPONSE: &[u8] = &[
    0x61, 0x11, 0x4F, 0x06, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00, 0x79, 0x07, 0x4F, 0x05, 0xA0, 0x00,
    0x00, 0x03, 0x08,
];

/// How the card starts.
pub(crate) struct CardConfig {
    pub(crate) serial: u32,
    pub(crate) firmware: Firmware,
    /// Attestation `.9`: 0x01 USB-A keychain, 0x03 USB-C keychain, ...
    pub(crate) form_factor: u8,
    /// The control file, read before every command.
    pub(crate) control: Option<PathBuf>,
    /// Print one line per command on stderr (headers and status words only).
    pub(crate) trace: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Selected {
    Nothing,
    Piv,
    Otp,
    Mgmt,
}

/// Security state that ends with the session.
#[derive(Default)]
struct Session {
    pin_verified: bool,
    /// Set by a successful VERIFY, good for the next command only: keys with
    /// PIN policy "always" need it.
    pin_just_verified: bool,
    mgm_authenticated: bool,
    /// The plaintext of what the card sent in step one of a management key
    /// authentication, awaited in step two.
    mgm_pending: Option<auth::Pending>,
}

pub(crate) struct Card {
    config: CardConfig,
    control: Control,
    selected: Selected,
    session: Session,
    pin: Reference,
    puk: Reference,
    /// `None`: the factory key for the firmware reported now.
    mgm: Option<MgmKey>,
    mgm_touch: bool,
    slots: BTreeMap<u8, SlotKey>,
    /// Data objects by id, holding the contents of their `53` tag.
    objects: BTreeMap<u32, Vec<u8>>,
    attestation: Attestation,
}

impl Card {
    pub(crate) fn new(config: CardConfig, attestation: Attestation) -> Self {
        let mut card = Self {
            config,
            control: Control::default(),
            selected: Selected::Nothing,
            session: Session::default(),
            pin: Reference::new(access::DEFAULT_PIN),
            puk: Reference::new(access::DEFAULT_PUK),
            mgm: None,
            mgm_touch: false,
            slots: BTreeMap::new(),
            objects: BTreeMap::new(),
            attestation,
        };
        card.refresh_control();
        card
    }

    /// Power on, power off or reset: the session ends.
    pub(crate) fn power_event(&mut self) {
        self.session = Session::default();
        self.selected = Selected::Nothing;
        self.refresh_control();
    }

    pub(crate) fn serial(&self) -> u32 {
        self.config.serial
    }

    /// The firmware reported now: the control file may override the flag.
    fn firmware(&self) -> Firmware {
        self.control.firmware.unwrap_or(self.config.firmware)
    }

    fn mgm_key(&self) -> MgmKey {
        self.mgm
            .clone()
            .unwrap_or_else(|| MgmKey::factory(self.firmware()))
    }

    fn facts(&self) -> DeviceFacts {
        DeviceFacts {
            firmware: self.firmware(),
            serial: self.config.serial,
            form_factor: self.config.form_factor,
        }
    }

    fn refresh_control(&mut self) {
        let Some(path) = &self.config.control else {
            return;
        };
        let (control, bad) = Control::load(path);
        for line in bad {
            eprintln!(
                "holdfast-vpiv: control file {}: {line} (ignored)",
                path.display()
            );
        }
        if control != self.control {
            eprintln!("holdfast-vpiv: control: {control}");
            self.control = control;
        }
    }

    fn select(&mut self, command: &Command) -> Response {
        if command.p1 != 0x04 {
            return Response::status(sw::INCORRECT_P1P2);
        }
        // Selecting any applet ends the PIV security session.
        self.session = Session::default();
        let aid = command.data.as_slice();
        if aid.len() >= PIV_AID_MIN && PIV_AID.starts_with(aid) {
            self.selected = Selected::Piv;
            Response::ok(PIV_SELECT_RESPONSE.to_vec())
        } else if aid.len() >= OTP_AID_MIN && OTP_AID.starts_with(aid) {
            self.selected = Selected::Otp;
            // Firmware version, then the OTP status bytes.
            let mut status = self.firmware().bytes().to_vec();
            status.extend([0x01, 0x00, 0x00]);
            Response::ok(status)
        } else if aid == MGMT_AID {
            self.selected = Selected::Mgmt;
            Response::ok(format!("Virtual mgr - FW version {}", self.firmware()).into_bytes())
        } else {
            self.selected = Selected::Nothing;
            Response::status(sw::NOT_FOUND)
        }
    }

    fn piv(&mut self, command: &Command, pin_just_verified: bool) -> Response {
        match command.ins {
            0xFD => Response::ok(self.firmware().bytes().to_vec()),
            0xF8 if self.firmware().major >= 5 => {
                Response::ok(self.config.serial.to_be_bytes().to_vec())
            }
            0x20 => self.verify(command),
            0x24 => self.change_reference(command),
            0x2C => self.reset_retry(command),
            0xFA => self.set_pin_retries(command),
            0xFB => self.factory_reset(),
            0x87 => self.general_authenticate(command, pin_just_verified),
            0xFF => self.set_management_key(command),
            0x47 => self.generate(command),
            0xFE => self.import(command),
            0xF9 => self.attest(command),
            0xF7 => self.metadata(command),
            0xCB => self.get_data(command),
            0xDB => self.put_data(command),
            _ => Response::status(sw::INS_NOT_SUPPORTED),
        }
    }

    fn otp(&self, command: &Command) -> Response {
        match (command.ins, command.p1) {
            // YubiKey 4: the serial through the OTP applet's "device serial".
            (0x01, 0x10) => Response::ok(self.config.serial.to_be_bytes().to_vec()),
            _ => Response::status(sw::INS_NOT_SUPPORTED),
        }
    }
}

impl Applet for Card {
    fn process(&mut self, command: &Command) -> Response {
        self.refresh_control();
        // "PIN always" means the command right after VERIFY, nothing between.
        let pin_just_verified = std::mem::take(&mut self.session.pin_just_verified);
        let response = if command.ins == 0xA4 {
            self.select(command)
        } else {
            match self.selected {
                Selected::Piv => self.piv(command, pin_just_verified),
                Selected::Otp => self.otp(command),
                Selected::Mgmt | Selected::Nothing => Response::status(sw::INS_NOT_SUPPORTED),
            }
        };
        if self.config.trace {
            eprintln!("holdfast-vpiv: {command:?} -> {response:?}");
        }
        response
    }
}

#[cfg(test)]
pub(crate) mod tests;
