//! What kind of storage holds a key, as recorded at enrollment and in `amr`.

use core::fmt;
use core::str::FromStr;

/// Where a device key lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyKind {
    /// A key in a file: for development and tests only.
    Software,
    /// A key inside a TPM 2.0.
    Tpm,
    /// A key on a YubiKey's PIV applet.
    Yubikey,
}

impl KeyKind {
    /// The name used in configuration, records and the CLI.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Software => "software",
            Self::Tpm => "tpm",
            Self::Yubikey => "yubikey",
        }
    }

    /// The RFC 8176 `amr` value for proof of possession of this key:
    /// `swk` (software-secured key) or `hwk` (hardware-secured key).
    pub const fn amr(self) -> &'static str {
        match self {
            Self::Software => "swk",
            Self::Tpm | Self::Yubikey => "hwk",
        }
    }

    /// True for keys whose residence in hardware can be attested.
    pub const fn is_hardware(self) -> bool {
        !matches!(self, Self::Software)
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown key kind name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown key kind (expected software, tpm or yubikey)")]
pub struct UnknownKeyKind;

impl FromStr for KeyKind {
    type Err = UnknownKeyKind;

    fn from_str(s: &str) -> Result<Self, UnknownKeyKind> {
        match s {
            "software" => Ok(Self::Software),
            "tpm" => Ok(Self::Tpm),
            "yubikey" => Ok(Self::Yubikey),
            _ => Err(UnknownKeyKind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_is_swk_and_hardware_is_hwk() {
        assert_eq!(KeyKind::Software.amr(), "swk");
        assert!(!KeyKind::Software.is_hardware());
        assert_eq!(KeyKind::Tpm.amr(), "hwk");
        assert_eq!(KeyKind::Yubikey.amr(), "hwk");
        for kind in [KeyKind::Software, KeyKind::Tpm, KeyKind::Yubikey] {
            assert_eq!(kind.as_str().parse::<KeyKind>(), Ok(kind));
        }
    }
}
