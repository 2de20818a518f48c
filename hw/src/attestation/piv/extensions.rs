//! The Yubico PIV attestation extensions (OID arc 1.3.6.1.4.1.41482.3) and
//! their values, parsed strictly: a value this verifier does not know is an
//! error, not a guess.
//!
//! | OID | where | encoding (extnValue contents) |
//! |---|---|---|
//! | `.3` firmware | slot, f9 | 3 raw bytes: major, minor, patch |
//! | `.7` serial | slot (firmware 5+) | DER INTEGER |
//! | `.8` PIN and touch policy | slot | 2 raw bytes: PIN policy, touch policy |
//! | `.9` form factor | slot (firmware 5+) | 1 raw byte: form factor in the low bits, 0x80 = FIPS series |
//! | `.10` FIPS | f9 of FIPS YubiKeys | DER INTEGER (seen: 7) |
//! | `.11` CSPN | f9 of CSPN YubiKeys | DER INTEGER, assumed like `.10` (no real sample) |
//!
//! PIN policy codes are Yubico's: 1 never, 2 once per session, 3 always, and
//! for the YubiKey Bio 4 match-once and 5 match-always. Code 0 ("default")
//! is what a host *asks for*; an attestation states the policy in force, so
//! 0 is refused. Touch policy: 1 never, 2 always, 3 cached (15 s).
//! Form factors (yubikit `FORM_FACTOR`): 0 unspecified, 1 USB-A keychain,
//! 2 USB-A nano, 3 USB-C keychain, 4 USB-C nano, 5 USB-C/Lightning keychain,
//! 6 USB-A Bio, 7 USB-C Bio.

use core::fmt;
use core::str::FromStr;

use const_oid::ObjectIdentifier;
use der::Decode;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{CertRole, PivAttestError};
use crate::attestation::x509::Certificate;

/// `1.3.6.1.4.1.41482.3.3`: firmware version.
pub(super) const OID_FIRMWARE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.3");
/// `1.3.6.1.4.1.41482.3.7`: serial number.
pub(super) const OID_SERIAL: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.7");
/// `1.3.6.1.4.1.41482.3.8`: PIN policy and touch policy.
pub(super) const OID_POLICY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.8");
/// `1.3.6.1.4.1.41482.3.9`: form factor.
pub(super) const OID_FORM_FACTOR: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.9");
/// `1.3.6.1.4.1.41482.3.10`: FIPS-certified YubiKey (on f9).
pub(super) const OID_FIPS: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.10");
/// `1.3.6.1.4.1.41482.3.11`: CSPN-certified YubiKey (on f9).
pub(super) const OID_CSPN: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.11");

/// A YubiKey firmware version, `major.minor.patch`; ordered as versions are.
///
/// In configuration it is the string `"5.4.3"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Firmware {
    major: u8,
    minor: u8,
    patch: u8,
}

impl Firmware {
    /// The version `major.minor.patch`.
    pub const fn new(major: u8, minor: u8, patch: u8) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// The major version.
    pub const fn major(self) -> u8 {
        self.major
    }

    /// The minor version.
    pub const fn minor(self) -> u8 {
        self.minor
    }

    /// The patch version.
    pub const fn patch(self) -> u8 {
        self.patch
    }

    /// Parses the `.3` extension value: exactly three bytes.
    pub(super) fn from_extension(value: &[u8]) -> Result<Self, String> {
        let &[major, minor, patch] = value else {
            return Err(format!(
                "firmware (1.3.6.1.4.1.41482.3.3) is {} bytes, expected 3",
                value.len()
            ));
        };
        Ok(Self::new(major, minor, patch))
    }
}

impl fmt::Display for Firmware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A firmware version that is not `major.minor.patch` with each part in
/// 0–255.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid firmware version {0:?} (expected major.minor.patch, e.g. \"5.4.3\")")]
pub struct FirmwareParseError(String);

impl FromStr for Firmware {
    type Err = FirmwareParseError;

    fn from_str(s: &str) -> Result<Self, FirmwareParseError> {
        let err = || FirmwareParseError(s.chars().take(32).collect());
        let mut parts = s.split('.').map(|part| {
            // Digits only: `u8::from_str` would also take a leading `+`.
            if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse::<u8>().ok()
        });
        let (Some(Some(major)), Some(Some(minor)), Some(Some(patch)), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err());
        };
        Ok(Self::new(major, minor, patch))
    }
}

impl Serialize for Firmware {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Firmware {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// When the YubiKey asks for the PIN before using the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PinPolicy {
    /// Never (code 1).
    Never,
    /// Once per session (code 2).
    Once,
    /// Before every use (code 3).
    Always,
    /// YubiKey Bio: a fingerprint match once per session (code 4).
    MatchOnce,
    /// YubiKey Bio: a fingerprint match before every use (code 5).
    MatchAlways,
}

impl PinPolicy {
    /// Every PIN policy.
    pub const ALL: [Self; 5] = [
        Self::Never,
        Self::Once,
        Self::Always,
        Self::MatchOnce,
        Self::MatchAlways,
    ];

    /// The configuration name: `never`, `once`, `always`, `match_once`,
    /// `match_always`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Never => "never",
            Self::Once => "once",
            Self::Always => "always",
            Self::MatchOnce => "match_once",
            Self::MatchAlways => "match_always",
        }
    }

    /// The policy for Yubico's code, or `None` for a code this verifier does
    /// not know (0, "default", included: it is a request, not a policy).
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Never),
            2 => Some(Self::Once),
            3 => Some(Self::Always),
            4 => Some(Self::MatchOnce),
            5 => Some(Self::MatchAlways),
            _ => None,
        }
    }
}

impl fmt::Display for PinPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PinPolicy {
    type Err = PolicyParseError;

    /// The configuration name ([`PinPolicy::as_str`]).
    fn from_str(s: &str) -> Result<Self, PolicyParseError> {
        PolicyParseError::find("PIN", s, &Self::ALL, |policy| policy.as_str())
    }
}

/// When the YubiKey asks for a touch before using the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TouchPolicy {
    /// Never (code 1).
    Never,
    /// Before every use (code 2): each signature proves physical presence.
    Always,
    /// Once, then cached for 15 seconds (code 3).
    Cached,
}

impl TouchPolicy {
    /// Every touch policy.
    pub const ALL: [Self; 3] = [Self::Never, Self::Always, Self::Cached];

    /// The configuration name: `never`, `always`, `cached`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Never => "never",
            Self::Always => "always",
            Self::Cached => "cached",
        }
    }

    /// The policy for Yubico's code, or `None` for a code this verifier does
    /// not know (0, "default", included).
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Never),
            2 => Some(Self::Always),
            3 => Some(Self::Cached),
            _ => None,
        }
    }
}

impl fmt::Display for TouchPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TouchPolicy {
    type Err = PolicyParseError;

    /// The configuration name ([`TouchPolicy::as_str`]).
    fn from_str(s: &str) -> Result<Self, PolicyParseError> {
        PolicyParseError::find("touch", s, &Self::ALL, |policy| policy.as_str())
    }
}

/// A PIN or touch policy name that is not one of the configuration names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} policy {value:?} (expected one of: {expected})")]
pub struct PolicyParseError {
    kind: &'static str,
    value: String,
    expected: String,
}

impl PolicyParseError {
    /// The policy of `all` named `value`, or the error naming them all.
    fn find<T: Copy>(
        kind: &'static str,
        value: &str,
        all: &[T],
        name: fn(T) -> &'static str,
    ) -> Result<T, Self> {
        all.iter()
            .copied()
            .find(|policy| name(*policy) == value)
            .ok_or_else(|| Self {
                kind,
                // The value may come from anywhere: keep messages short.
                value: value.chars().take(32).collect(),
                expected: super::policy::list(all.iter().map(|policy| name(*policy))),
            })
    }
}

/// The YubiKey's physical model, from the `.9` extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FormFactorKind {
    /// Code 0: not specified.
    Unspecified,
    /// Code 1.
    UsbAKeychain,
    /// Code 2.
    UsbANano,
    /// Code 3.
    UsbCKeychain,
    /// Code 4.
    UsbCNano,
    /// Code 5: USB-C and Lightning.
    UsbCLightningKeychain,
    /// Code 6: YubiKey Bio, USB-A.
    UsbABioKeychain,
    /// Code 7: YubiKey Bio, USB-C.
    UsbCBioKeychain,
}

impl FormFactorKind {
    /// A name for people and records, e.g. `USB-C Keychain`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "Unspecified",
            Self::UsbAKeychain => "USB-A Keychain",
            Self::UsbANano => "USB-A Nano",
            Self::UsbCKeychain => "USB-C Keychain",
            Self::UsbCNano => "USB-C Nano",
            Self::UsbCLightningKeychain => "USB-C/Lightning Keychain",
            Self::UsbABioKeychain => "USB-A Bio Keychain",
            Self::UsbCBioKeychain => "USB-C Bio Keychain",
        }
    }
}

/// The `.9` form factor: the model, and whether the device is of the FIPS
/// series (bit 0x80).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FormFactor {
    kind: FormFactorKind,
    fips_series: bool,
}

impl FormFactor {
    /// The model.
    pub const fn kind(self) -> FormFactorKind {
        self.kind
    }

    /// Bit 0x80: a YubiKey of the FIPS series.
    pub const fn fips_series(self) -> bool {
        self.fips_series
    }

    /// Parses the `.9` extension value: one byte, a known model code in the
    /// low bits and nothing but the FIPS bit above them.
    pub(super) fn from_extension(value: &[u8]) -> Result<Self, String> {
        const FIPS_BIT: u8 = 0x80;
        let &[code] = value else {
            return Err(format!(
                "form factor (1.3.6.1.4.1.41482.3.9) is {} bytes, expected 1",
                value.len()
            ));
        };
        let kind = match code & !FIPS_BIT {
            0 => FormFactorKind::Unspecified,
            1 => FormFactorKind::UsbAKeychain,
            2 => FormFactorKind::UsbANano,
            3 => FormFactorKind::UsbCKeychain,
            4 => FormFactorKind::UsbCNano,
            5 => FormFactorKind::UsbCLightningKeychain,
            6 => FormFactorKind::UsbABioKeychain,
            7 => FormFactorKind::UsbCBioKeychain,
            _ => {
                return Err(format!(
                    "unknown form factor 0x{code:02x} (1.3.6.1.4.1.41482.3.9)"
                ));
            }
        };
        Ok(Self {
            kind,
            fips_series: code & FIPS_BIT != 0,
        })
    }
}

impl fmt::Display for FormFactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.as_str())?;
        if self.fips_series {
            f.write_str(" FIPS")?;
        }
        Ok(())
    }
}

/// Parses the `.8` extension value: PIN policy, then touch policy.
pub(super) fn policies_from_extension(value: &[u8]) -> Result<(PinPolicy, TouchPolicy), String> {
    let &[pin, touch] = value else {
        return Err(format!(
            "PIN/touch policy (1.3.6.1.4.1.41482.3.8) is {} bytes, expected 2",
            value.len()
        ));
    };
    let pin = PinPolicy::from_code(pin).ok_or_else(|| {
        format!("unknown PIN policy 0x{pin:02x} (1.3.6.1.4.1.41482.3.8; known: 1 never, 2 once, 3 always, 4 match once, 5 match always)")
    })?;
    let touch = TouchPolicy::from_code(touch).ok_or_else(|| {
        format!("unknown touch policy 0x{touch:02x} (1.3.6.1.4.1.41482.3.8; known: 1 never, 2 always, 3 cached)")
    })?;
    Ok((pin, touch))
}

/// Parses the `.7` extension value: a DER INTEGER that fits a `u32`.
pub(super) fn serial_from_extension(value: &[u8]) -> Result<u32, String> {
    u32::from_der(value).map_err(|e| {
        format!("serial (1.3.6.1.4.1.41482.3.7) is not a DER INTEGER in 0..=4294967295: {e}")
    })
}

/// Checks a `.10`/`.11` marker value: a DER INTEGER.
fn marker_from_extension(name: &str, oid: &ObjectIdentifier, value: &[u8]) -> Result<(), String> {
    u32::from_der(value)
        .map(|_| ())
        .map_err(|e| format!("{name} marker ({oid}) is not a DER INTEGER: {e}"))
}

/// What the slot certificate states about the key and the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SlotExtensions {
    pub(super) firmware: Firmware,
    pub(super) serial: Option<u32>,
    pub(super) pin_policy: PinPolicy,
    pub(super) touch_policy: TouchPolicy,
    pub(super) form_factor: Option<FormFactor>,
}

/// What the f9 certificate states about the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct F9Extensions {
    pub(super) firmware: Option<Firmware>,
    pub(super) fips: bool,
    pub(super) cspn: bool,
}

/// Reads the slot certificate's Yubico extensions. Firmware and policies
/// are required (every real slot certificate has them); serial and form
/// factor are absent on YubiKey 4.
pub(super) fn read_slot(cert: &Certificate) -> Result<SlotExtensions, PivAttestError> {
    let bad = |reason: String| PivAttestError::malformed(CertRole::Slot, reason);
    let required = |oid: &ObjectIdentifier, what: &str| {
        cert.extension(oid).map(|ext| ext.value).ok_or_else(|| {
            PivAttestError::malformed(
                CertRole::Slot,
                format!("it has no {what} extension ({oid}): not a YubiKey attestation"),
            )
        })
    };
    let firmware = Firmware::from_extension(required(&OID_FIRMWARE, "firmware")?).map_err(bad)?;
    let (pin_policy, touch_policy) =
        policies_from_extension(required(&OID_POLICY, "PIN/touch policy")?).map_err(bad)?;
    let serial = cert
        .extension(&OID_SERIAL)
        .map(|ext| serial_from_extension(ext.value))
        .transpose()
        .map_err(bad)?;
    let form_factor = cert
        .extension(&OID_FORM_FACTOR)
        .map(|ext| FormFactor::from_extension(ext.value))
        .transpose()
        .map_err(bad)?;
    Ok(SlotExtensions {
        firmware,
        serial,
        pin_policy,
        touch_policy,
        form_factor,
    })
}

/// Reads the f9 certificate's Yubico extensions (all optional here; the
/// chain rules decide which are required).
pub(super) fn read_f9(cert: &Certificate) -> Result<F9Extensions, PivAttestError> {
    let bad = |reason: String| PivAttestError::malformed(CertRole::F9, reason);
    let firmware = cert
        .extension(&OID_FIRMWARE)
        .map(|ext| Firmware::from_extension(ext.value))
        .transpose()
        .map_err(bad)?;
    let marker = |name: &str, oid: &ObjectIdentifier| -> Result<bool, PivAttestError> {
        match cert.extension(oid) {
            None => Ok(false),
            Some(ext) => marker_from_extension(name, oid, ext.value)
                .map(|()| true)
                .map_err(bad),
        }
    };
    let fips = marker("FIPS", &OID_FIPS)?;
    let cspn = marker("CSPN", &OID_CSPN)?;
    Ok(F9Extensions {
        firmware,
        fips,
        cspn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firmware_parses_three_bytes_and_strings() {
        assert_eq!(
            Firmware::from_extension(&[5, 4, 3]),
            Ok(Firmware::new(5, 4, 3))
        );
        assert!(Firmware::from_extension(&[5, 4]).is_err());
        assert!(Firmware::from_extension(&[5, 4, 3, 0]).is_err());
        assert_eq!("5.7.4".parse(), Ok(Firmware::new(5, 7, 4)));
        assert_eq!(Firmware::new(4, 3, 7).to_string(), "4.3.7");
        for bad in [
            "", "5", "5.4", "5.4.3.1", "5..3", "+5.4.3", "5.4.256", "a.b.c", " 5.4.3",
        ] {
            assert!(bad.parse::<Firmware>().is_err(), "{bad:?}");
        }
        assert!(Firmware::new(5, 2, 4) < Firmware::new(5, 4, 0));
        assert!(Firmware::new(4, 9, 9) < Firmware::new(5, 0, 0));
    }

    #[test]
    fn firmware_serde_is_a_string() {
        let fw: Firmware = serde_json::from_str(r#""5.2.0""#).unwrap();
        assert_eq!(fw, Firmware::new(5, 2, 0));
        assert_eq!(serde_json::to_string(&fw).unwrap(), r#""5.2.0""#);
        assert!(serde_json::from_str::<Firmware>(r#""5.2""#).is_err());
    }

    #[test]
    fn policies_parse_known_codes_only() {
        // Real values from expected.json: 0201, 0102, 0103, 0301.
        assert_eq!(
            policies_from_extension(&[2, 1]),
            Ok((PinPolicy::Once, TouchPolicy::Never))
        );
        assert_eq!(
            policies_from_extension(&[1, 2]),
            Ok((PinPolicy::Never, TouchPolicy::Always))
        );
        assert_eq!(
            policies_from_extension(&[1, 3]),
            Ok((PinPolicy::Never, TouchPolicy::Cached))
        );
        assert_eq!(
            policies_from_extension(&[3, 1]),
            Ok((PinPolicy::Always, TouchPolicy::Never))
        );
        assert_eq!(
            policies_from_extension(&[5, 2]),
            Ok((PinPolicy::MatchAlways, TouchPolicy::Always))
        );
        let err = policies_from_extension(&[0, 1]).unwrap_err();
        assert!(err.contains("unknown PIN policy 0x00"), "{err}");
        let err = policies_from_extension(&[2, 4]).unwrap_err();
        assert!(err.contains("unknown touch policy 0x04"), "{err}");
        assert!(policies_from_extension(&[2]).is_err());
        assert!(policies_from_extension(&[2, 1, 0]).is_err());
    }

    #[test]
    fn policy_names_parse_and_print() {
        for policy in PinPolicy::ALL {
            assert_eq!(policy.as_str().parse::<PinPolicy>(), Ok(policy));
            assert_eq!(policy.to_string(), policy.as_str());
        }
        for policy in TouchPolicy::ALL {
            assert_eq!(policy.as_str().parse::<TouchPolicy>(), Ok(policy));
            assert_eq!(policy.to_string(), policy.as_str());
        }
        let err = "sometimes".parse::<PinPolicy>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown PIN policy \"sometimes\" (expected one of: never, once, always, \
             match_once, match_always)"
        );
        let err = "once".parse::<TouchPolicy>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown touch policy \"once\" (expected one of: never, always, cached)"
        );
        for bad in ["", "Once", " once", "default", "match-once"] {
            assert!(bad.parse::<PinPolicy>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn serial_is_a_der_integer_that_fits_u32() {
        assert_eq!(
            serial_from_extension(&[0x02, 0x04, 0x00, 0xf0, 0x0f, 0x14]),
            Ok(15_732_500)
        );
        assert_eq!(
            serial_from_extension(&[0x02, 0x04, 0x01, 0xfa, 0x05, 0x3a]),
            Ok(33_162_554)
        );
        assert_eq!(
            serial_from_extension(&[0x02, 0x05, 0x00, 0xff, 0xff, 0xff, 0xff]),
            Ok(u32::MAX)
        );
        // Negative, non-minimal, too large, wrong tag, trailing bytes, empty.
        for bad in [
            &[0x02, 0x01, 0xff][..],
            &[0x02, 0x02, 0x00, 0x01],
            &[0x02, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00],
            &[0x04, 0x01, 0x01],
            &[0x02, 0x01, 0x01, 0x00],
            &[],
        ] {
            assert!(serial_from_extension(bad).is_err(), "{bad:02x?}");
        }
    }

    #[test]
    fn form_factor_has_known_codes_and_the_fips_bit() {
        let ff = FormFactor::from_extension(&[0x83]).unwrap();
        assert_eq!(ff.kind(), FormFactorKind::UsbCKeychain);
        assert!(ff.fips_series());
        assert_eq!(ff.to_string(), "USB-C Keychain FIPS");
        assert_eq!(
            FormFactor::from_extension(&[0x05]).unwrap().to_string(),
            "USB-C/Lightning Keychain"
        );
        assert_eq!(
            FormFactor::from_extension(&[0x00]).unwrap().kind(),
            FormFactorKind::Unspecified
        );
        for bad in [0x08, 0x40, 0x48, 0x88, 0xff] {
            let err = FormFactor::from_extension(&[bad]).unwrap_err();
            assert!(err.contains("unknown form factor"), "{err}");
        }
        assert!(FormFactor::from_extension(&[]).is_err());
        assert!(FormFactor::from_extension(&[1, 1]).is_err());
    }

    #[test]
    fn markers_are_der_integers() {
        assert!(marker_from_extension("FIPS", &OID_FIPS, &[0x02, 0x01, 0x07]).is_ok());
        assert!(marker_from_extension("FIPS", &OID_FIPS, &[]).is_err());
        assert!(marker_from_extension("CSPN", &OID_CSPN, &[0x05, 0x00]).is_err());
    }
}
