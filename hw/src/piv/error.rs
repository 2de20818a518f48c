//! What can go wrong with a YubiKey, in words a person can act on.

use core::fmt;

use super::config::{PinSourceError, PivSlot};
use crate::attestation::piv::{Firmware, PinPolicy};
use crate::signature::SignatureFormatError;

/// The algorithm of a YubiKey's PIV management key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ManagementKeyAlgorithm {
    /// Triple DES: the factory default before firmware 5.7.
    TripleDes,
    /// AES-128.
    Aes128,
    /// AES-192: the factory default from firmware 5.7.
    Aes192,
    /// AES-256.
    Aes256,
}

impl ManagementKeyAlgorithm {
    /// The key length in bytes.
    pub const fn key_len(self) -> usize {
        match self {
            Self::TripleDes | Self::Aes192 => 24,
            Self::Aes128 => 16,
            Self::Aes256 => 32,
        }
    }

    pub(crate) fn to_yubikey(self) -> yubikey::MgmAlgorithmId {
        match self {
            Self::TripleDes => yubikey::MgmAlgorithmId::ThreeDes,
            Self::Aes128 => yubikey::MgmAlgorithmId::Aes128,
            Self::Aes192 => yubikey::MgmAlgorithmId::Aes192,
            Self::Aes256 => yubikey::MgmAlgorithmId::Aes256,
        }
    }

    pub(crate) fn from_yubikey(alg: yubikey::MgmAlgorithmId) -> Self {
        match alg {
            yubikey::MgmAlgorithmId::ThreeDes => Self::TripleDes,
            yubikey::MgmAlgorithmId::Aes128 => Self::Aes128,
            yubikey::MgmAlgorithmId::Aes192 => Self::Aes192,
            yubikey::MgmAlgorithmId::Aes256 => Self::Aes256,
        }
    }
}

impl fmt::Display for ManagementKeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TripleDes => "3DES",
            Self::Aes128 => "AES-128",
            Self::Aes192 => "AES-192",
            Self::Aes256 => "AES-256",
        })
    }
}

/// Why a slot cannot be attested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttestationGap {
    /// The key was imported: only keys generated on the YubiKey are attested.
    ImportedKey,
    /// The YubiKey refused `ATTEST` for the slot.
    Refused,
    /// Slot f9 holds no attestation certificate.
    NoF9Certificate,
    /// Slot f9 holds something that is not a readable certificate.
    UnreadableF9Certificate,
    /// The firmware predates PIV attestation (4.3).
    Firmware(Firmware),
}

impl fmt::Display for AttestationGap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ImportedKey => f.write_str(
                "the key was imported, not generated on the YubiKey, so the YubiKey \
                 cannot attest it; generate a new key on the YubiKey",
            ),
            Self::Refused => f.write_str(
                "the YubiKey refused to attest the slot (keys imported into a YubiKey \
                 cannot be attested)",
            ),
            Self::NoF9Certificate => f.write_str(
                "the YubiKey has no attestation certificate in slot f9 (it was deleted; \
                 only Yubico's factory certificate chains to Yubico's roots)",
            ),
            Self::UnreadableF9Certificate => {
                f.write_str("the certificate in slot f9 cannot be read")
            }
            Self::Firmware(version) => write!(
                f,
                "firmware {version} predates PIV attestation (firmware 4.3 or later is needed)"
            ),
        }
    }
}

/// A YubiKey PIV operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PivError {
    /// The PC/SC daemon is not running.
    #[error(
        "no PC/SC service is running: start pcscd (`sudo systemctl start pcscd.socket`, \
         or run `pcscd` as root)"
    )]
    NoPcscService,
    /// PC/SC sees no reader at all.
    #[error(
        "no smart card reader found: plug in the YubiKey (its smart card interface must be \
         enabled: `ykman config usb --enable PIV`)"
    )]
    NoReader,
    /// Readers exist but none holds a card with a PIV application.
    #[error("no YubiKey with a PIV application is present: insert one")]
    NoCard,
    /// More than one YubiKey, and no serial chosen.
    #[error(
        "more than one YubiKey is present (serials {}): choose one with --serial",
        list(.serials)
    )]
    MultipleCards {
        /// The serials present.
        serials: Vec<u32>,
    },
    /// No YubiKey with the requested serial.
    #[error(
        "no YubiKey with serial {serial} is present (present: {})",
        if present.is_empty() { "none".to_owned() } else { list(present) }
    )]
    SerialNotFound {
        /// The serial asked for.
        serial: u32,
        /// The serials present.
        present: Vec<u32>,
    },
    /// Another program holds the card exclusively.
    #[error(
        "the YubiKey is used exclusively by another program (e.g. gpg's scdaemon: \
         `gpgconf --kill scdaemon`); retry when it lets go"
    )]
    CardInUse,
    /// The card went away during the operation.
    #[error("the YubiKey was removed")]
    CardRemoved,
    /// The PIN was wrong. The same PIN is not tried again by this key, so a
    /// wrong PIN file cannot block the PIN on its own.
    #[error("wrong PIN for the YubiKey: {retries} retries left before the PIN is blocked")]
    WrongPin {
        /// Tries left.
        retries: u8,
    },
    /// The PIN is blocked.
    #[error(
        "the YubiKey's PIN is blocked: unblock it with the PUK (`ykman piv access unblock-pin`)"
    )]
    PinBlocked,
    /// The key needs the PIN and no PIN source was configured.
    #[error(
        "the key in slot {slot} needs the YubiKey's PIN and none was given (configure a PIN \
         file or variable)"
    )]
    PinRequired {
        /// The slot.
        slot: PivSlot,
    },
    /// The PIN source could not be read.
    #[error(transparent)]
    PinSource(#[from] PinSourceError),
    /// The YubiKey waited for a touch that did not come.
    #[error(
        "the YubiKey was not touched in time: touch it when it blinks, then retry (slot {slot} \
         requires a touch)"
    )]
    TouchTimeout {
        /// The slot.
        slot: PivSlot,
    },
    /// The PIN policy asked for cannot be given to a generated key: the
    /// YubiKey Bio's fingerprint policies are not in the `yubikey` crate.
    #[error(
        "PIN policy {policy} cannot be set when generating a key (it needs a YubiKey Bio's \
         fingerprint); choose never, once or always"
    )]
    PinPolicyUnsupported {
        /// The policy asked for.
        policy: PinPolicy,
    },
    /// Generating would destroy the key already in the slot.
    #[error(
        "slot {slot} of YubiKey {serial} already holds a key: choose another slot, or \
         overwrite it explicitly (this destroys that key)"
    )]
    SlotOccupied {
        /// The YubiKey.
        serial: u32,
        /// The slot.
        slot: PivSlot,
    },
    /// The slot holds no key.
    #[error("slot {slot} of YubiKey {serial} holds no key")]
    SlotEmpty {
        /// The YubiKey.
        serial: u32,
        /// The slot.
        slot: PivSlot,
    },
    /// The slot holds a key Holdfast cannot use.
    #[error("slot {slot} holds a {key} key; Holdfast keys are P-256 (ES256)")]
    NotP256 {
        /// The slot.
        slot: PivSlot,
        /// What the key is.
        key: String,
    },
    /// The slot no longer holds the expected key (replaced since enrollment,
    /// or since this key was opened).
    #[error(
        "slot {slot} of YubiKey {serial} no longer holds the enrolled key (it was replaced): \
         enroll again"
    )]
    KeyChanged {
        /// The YubiKey.
        serial: u32,
        /// The slot.
        slot: PivSlot,
    },
    /// The configured management key was rejected.
    #[error("YubiKey {serial} rejected the configured {algorithm} management key")]
    ManagementKeyRejected {
        /// The YubiKey.
        serial: u32,
        /// The card's management key algorithm.
        algorithm: ManagementKeyAlgorithm,
    },
    /// The configured management key has the wrong length for the card's
    /// algorithm.
    #[error(
        "the configured management key has {len} bytes, but YubiKey {serial}'s management key \
         is {algorithm} ({expected} bytes)"
    )]
    ManagementKeyLength {
        /// The YubiKey.
        serial: u32,
        /// The card's management key algorithm.
        algorithm: ManagementKeyAlgorithm,
        /// The configured key's length.
        len: usize,
        /// The length the algorithm needs.
        expected: usize,
    },
    /// The management key is not the factory default, none was configured,
    /// and none is stored PIN-protected on the card.
    #[error(
        "YubiKey {serial}'s {algorithm} management key is not the factory default and none was \
         configured: give it in hex (--management-key), or store it PIN-protected on the \
         YubiKey (`ykman piv access change-management-key --protect`), or reset the PIV \
         application (`ykman piv reset`: destroys every PIV key on it)"
    )]
    ManagementKeyRequired {
        /// The YubiKey.
        serial: u32,
        /// The card's management key algorithm.
        algorithm: ManagementKeyAlgorithm,
    },
    /// The slot cannot be attested.
    #[error("no attestation for slot {slot}: {reason}")]
    AttestationUnavailable {
        /// The slot.
        slot: PivSlot,
        /// Why.
        reason: AttestationGap,
    },
    /// The firmware lacks something Holdfast needs.
    #[error("YubiKey firmware {version} is not supported: {needed}")]
    UnsupportedFirmware {
        /// The firmware.
        version: Firmware,
        /// What is missing.
        needed: &'static str,
    },
    /// The YubiKey's signature is not a DER ECDSA signature.
    #[error("the YubiKey returned a malformed signature")]
    BadSignature(#[source] SignatureFormatError),
    /// Any other failure, with the operation that failed.
    #[error("YubiKey {operation} failed: {source}")]
    Device {
        /// What was being done.
        operation: &'static str,
        /// The `yubikey` crate's error.
        #[source]
        source: yubikey::Error,
    },
}

fn list(serials: &[u32]) -> String {
    serials
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Maps a `yubikey` crate error to what a person can act on; `operation`
/// names what was being done when nothing more specific applies.
pub(crate) fn device_error(operation: &'static str, err: yubikey::Error) -> PivError {
    use yubikey::Error as E;
    match err {
        E::PcscError { inner: Some(pcsc) } => match pcsc {
            pcsc::Error::NoService | pcsc::Error::ServiceStopped => PivError::NoPcscService,
            pcsc::Error::NoReadersAvailable => PivError::NoReader,
            pcsc::Error::SharingViolation => PivError::CardInUse,
            pcsc::Error::RemovedCard
            | pcsc::Error::NoSmartcard
            | pcsc::Error::ReaderUnavailable
            | pcsc::Error::UnknownReader => PivError::CardRemoved,
            _ => PivError::Device {
                operation,
                source: err,
            },
        },
        // The crate reports a blocked PIN on VERIFY as zero tries left.
        E::PinLocked | E::WrongPin { tries: 0 } => PivError::PinBlocked,
        E::WrongPin { tries } => PivError::WrongPin { retries: tries },
        _ => PivError::Device {
            operation,
            source: err,
        },
    }
}

/// True for the PC/SC warning that another program reset the card: the
/// session must reconnect (and the card has forgotten the PIN).
pub(crate) fn is_reset(err: &yubikey::Error) -> bool {
    matches!(
        err,
        yubikey::Error::PcscError {
            inner: Some(pcsc::Error::ResetCard)
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_crate_errors_to_actionable_ones() {
        let pcsc = |e| yubikey::Error::PcscError { inner: Some(e) };
        let cases: Vec<(yubikey::Error, &str)> = vec![
            (pcsc(pcsc::Error::NoService), "no PC/SC service is running"),
            (
                pcsc(pcsc::Error::ServiceStopped),
                "no PC/SC service is running",
            ),
            (
                pcsc(pcsc::Error::NoReadersAvailable),
                "no smart card reader found",
            ),
            (
                pcsc(pcsc::Error::SharingViolation),
                "used exclusively by another program",
            ),
            (pcsc(pcsc::Error::RemovedCard), "the YubiKey was removed"),
            (
                yubikey::Error::PinLocked,
                "PIN is blocked: unblock it with the PUK",
            ),
            (yubikey::Error::WrongPin { tries: 0 }, "PIN is blocked"),
            (
                yubikey::Error::WrongPin { tries: 2 },
                "wrong PIN for the YubiKey: 2 retries left",
            ),
            (
                yubikey::Error::GenericError,
                "YubiKey signing failed: generic error",
            ),
            (
                pcsc(pcsc::Error::Timeout),
                "YubiKey signing failed: PC/SC error",
            ),
        ];
        for (err, expected) in cases {
            let message = device_error("signing", err).to_string();
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        }
        assert!(is_reset(&pcsc(pcsc::Error::ResetCard)));
        assert!(!is_reset(&pcsc(pcsc::Error::RemovedCard)));
    }

    #[test]
    fn messages_name_what_to_do() {
        let err = PivError::MultipleCards {
            serials: vec![1, 22],
        };
        assert_eq!(
            err.to_string(),
            "more than one YubiKey is present (serials 1, 22): choose one with --serial"
        );
        let err = PivError::SerialNotFound {
            serial: 5,
            present: vec![],
        };
        assert_eq!(
            err.to_string(),
            "no YubiKey with serial 5 is present (present: none)"
        );
        let err = PivError::AttestationUnavailable {
            slot: PivSlot::AUTHENTICATION,
            reason: AttestationGap::Firmware(Firmware::new(4, 2, 1)),
        };
        assert!(
            err.to_string()
                .contains("firmware 4.2.1 predates PIV attestation")
        );
        let err = PivError::PinPolicyUnsupported {
            policy: PinPolicy::MatchOnce,
        };
        assert!(
            err.to_string()
                .starts_with("PIN policy match_once cannot be set"),
            "{err}"
        );
    }

    #[test]
    fn management_key_algorithms_round_trip() {
        for alg in [
            ManagementKeyAlgorithm::TripleDes,
            ManagementKeyAlgorithm::Aes128,
            ManagementKeyAlgorithm::Aes192,
            ManagementKeyAlgorithm::Aes256,
        ] {
            assert_eq!(ManagementKeyAlgorithm::from_yubikey(alg.to_yubikey()), alg);
        }
        assert_eq!(ManagementKeyAlgorithm::Aes192.to_string(), "AES-192");
        assert_eq!(ManagementKeyAlgorithm::TripleDes.key_len(), 24);
    }
}
