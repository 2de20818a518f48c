//! The firmware version the card reports: it decides what the yubikey crate
//! (and a real YubiKey) does: the serial method (4.x: OTP applet; 5.x: PIV
//! `F8`), GET METADATA (from 5.3.0), the default management key algorithm
//! (3DES before 5.7.0, AES-192 from 5.7.0), and the attestation shape.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Firmware {
    pub(crate) major: u8,
    pub(crate) minor: u8,
    pub(crate) patch: u8,
}

impl Firmware {
    pub(crate) const fn new(major: u8, minor: u8, patch: u8) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    pub(crate) fn bytes(self) -> [u8; 3] {
        [self.major, self.minor, self.patch]
    }

    /// GET METADATA exists from 5.3.0 (older keys answer 6D00).
    pub(crate) fn has_metadata(self) -> bool {
        self >= Self::new(5, 3, 0)
    }

    /// From 5.7.4 the attestation chain changed (f9 "YubiKey PIV
    /// Attestation" under the 2024 Yubico roots, validity to 9999).
    pub(crate) fn has_2024_attestation(self) -> bool {
        self >= Self::new(5, 7, 4)
    }
}

impl fmt::Display for Firmware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Not `X.Y.Z` with each part 0..=255.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("firmware version must be X.Y.Z with numbers 0-255")]
pub(crate) struct BadFirmware;

impl FromStr for Firmware {
    type Err = BadFirmware;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s
            .split('.')
            .map(|p| p.parse::<u8>().map_err(|_| BadFirmware));
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(major), Some(minor), Some(patch), None) => Ok(Self::new(major?, minor?, patch?)),
            _ => Err(BadFirmware),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_versions() {
        let v: Firmware = "5.7.4".parse().unwrap();
        assert_eq!(v, Firmware::new(5, 7, 4));
        assert_eq!(v.to_string(), "5.7.4");
        assert!(Firmware::new(5, 4, 3) < v && v.has_2024_attestation());
        assert!(!Firmware::new(5, 7, 2).has_2024_attestation());
        assert!(Firmware::new(5, 3, 0).has_metadata() && !Firmware::new(5, 2, 7).has_metadata());
        for bad in ["5.7", "5.7.4.1", "5.x.4", "", "256.0.0"] {
            assert_eq!(bad.parse::<Firmware>(), Err(BadFirmware), "{bad}");
        }
    }
}
