//! What a caller chooses about a PIV key: the slot, the PIN and touch
//! policies, where the PIN comes from, the management key. Pure data: no
//! card is touched here.

use core::fmt;
use core::str::FromStr;
use std::io;
use std::path::{Path, PathBuf};

use holdfast_proto::Jwk;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::attestation::piv::{PinPolicy, TouchPolicy};
use crate::private_file::{self, PrivateFileError};

/// A PIV key slot that can hold a Holdfast key: `9a` (authentication, the
/// default), `9c` (digital signature), `9d` (key management), `9e` (card
/// authentication) or a retired slot `82`–`95`. Slots `9b` (management key)
/// and `f9` (attestation key) are not key slots for Holdfast.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PivSlot(u8);

impl PivSlot {
    /// `9a`, PIV authentication: the default.
    pub const AUTHENTICATION: Self = Self(0x9a);
    /// `9c`, digital signature (the YubiKey's default PIN policy for it is
    /// `always`).
    pub const SIGNATURE: Self = Self(0x9c);
    /// `9d`, key management.
    pub const KEY_MANAGEMENT: Self = Self(0x9d);
    /// `9e`, card authentication (the YubiKey's default PIN policy for it is
    /// `never`).
    pub const CARD_AUTHENTICATION: Self = Self(0x9e);

    /// Retired key management slot `n` (1 to 20: `82` to `95`).
    pub const fn retired(n: u8) -> Option<Self> {
        if n >= 1 && n <= 20 {
            Some(Self(0x81 + n))
        } else {
            None
        }
    }

    /// The slot's key reference, as sent in APDUs.
    pub const fn id(self) -> u8 {
        self.0
    }

    /// The PIV data object holding the slot's certificate (SP 800-73-4
    /// part 1, table 3; the retired slots' objects are `5FC10D`–`5FC120`).
    pub(crate) const fn certificate_object(self) -> u32 {
        match self.0 {
            0x9a => 0x005f_c105,
            0x9c => 0x005f_c10a,
            0x9d => 0x005f_c10b,
            0x9e => 0x005f_c101,
            // 0x82..=0x95, the only other values a PivSlot can hold.
            n => 0x005f_c10d + (n as u32 - 0x82),
        }
    }

    const fn is_key_slot(id: u8) -> bool {
        matches!(id, 0x9a | 0x9c | 0x9d | 0x9e | 0x82..=0x95)
    }
}

impl Default for PivSlot {
    fn default() -> Self {
        Self::AUTHENTICATION
    }
}

impl TryFrom<u8> for PivSlot {
    type Error = BadPivSlot;

    fn try_from(id: u8) -> Result<Self, BadPivSlot> {
        if Self::is_key_slot(id) {
            Ok(Self(id))
        } else {
            Err(BadPivSlot)
        }
    }
}

impl FromStr for PivSlot {
    type Err = BadPivSlot;

    fn from_str(s: &str) -> Result<Self, BadPivSlot> {
        if s.len() != 2 {
            return Err(BadPivSlot);
        }
        let id = u8::from_str_radix(s, 16).map_err(|_| BadPivSlot)?;
        Self::try_from(id)
    }
}

impl fmt::Display for PivSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}", self.0)
    }
}

impl Serialize for PivSlot {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PivSlot {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Not a PIV key slot Holdfast can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a PIV key slot (expected 9a, 9c, 9d, 9e or a retired slot 82 to 95)")]
pub struct BadPivSlot;

/// Where the PIN comes from when the key needs it.
///
/// There is no interactive prompt here: reading a terminal without echo
/// needs a dependency this crate does not take, so the CLI prompts and
/// passes [`PinSource::Value`]. Agents use [`PinSource::Env`] or
/// [`PinSource::File`].
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum PinSource {
    /// No PIN: only keys whose PIN policy is `never` can sign; generating a
    /// key needs none.
    #[default]
    None,
    /// The PIN itself (typed into the caller's prompt). Zeroized on drop.
    Value(Zeroizing<String>),
    /// The name of an environment variable holding the PIN.
    Env(String),
    /// A file holding the PIN on its first line. Like key files, it must not
    /// be readable by other users (mode 0600).
    File(PathBuf),
}

impl PinSource {
    /// The PIN, read from its source and checked for length (a YubiKey PIN
    /// is 6 to 8 bytes); `None` for [`PinSource::None`].
    ///
    /// # Errors
    /// [`PinSourceError`] naming the variable or file and the problem.
    pub fn read(&self) -> Result<Option<Zeroizing<Vec<u8>>>, PinSourceError> {
        let pin = match self {
            Self::None => return Ok(None),
            Self::Value(value) => Zeroizing::new(value.as_bytes().to_vec()),
            Self::Env(name) => {
                let value = Zeroizing::new(std::env::var(name).map_err(|e| match e {
                    std::env::VarError::NotPresent => PinSourceError::EnvMissing(name.clone()),
                    std::env::VarError::NotUnicode(_) => {
                        PinSourceError::EnvNotUnicode(name.clone())
                    }
                })?);
                Zeroizing::new(value.as_bytes().to_vec())
            }
            Self::File(path) => read_pin_file(path)?,
        };
        if !(6..=8).contains(&pin.len()) {
            return Err(PinSourceError::BadLength { len: pin.len() });
        }
        Ok(Some(pin))
    }
}

impl fmt::Debug for PinSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Value(_) => f.write_str("Value(..)"),
            Self::Env(name) => f.debug_tuple("Env").field(name).finish(),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// Far above a PIN (6 to 8 bytes) and its line ending; bounds what is read.
const MAX_PIN_FILE_LEN: u64 = 1024;

fn read_pin_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, PinSourceError> {
    let contents = private_file::read(path, MAX_PIN_FILE_LEN).map_err(pin_file_error)?;
    // The first line, without its line ending: `echo 123456 > pin` works.
    let line = contents.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Ok(Zeroizing::new(line.to_vec()))
}

/// The PIN file's errors keep their own words ("PIN file …"): the shared
/// ones speak of key files.
fn pin_file_error(e: PrivateFileError) -> PinSourceError {
    match e {
        PrivateFileError::InsecurePermissions { path, mode } => {
            PinSourceError::FileInsecure { path, mode }
        }
        PrivateFileError::Io { path, source } => PinSourceError::FileIo { path, source },
        PrivateFileError::TooLarge { path, max_len } => PinSourceError::FileIo {
            path,
            source: io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("larger than {max_len} bytes"),
            ),
        },
        // Only writing meets a file that must not be overwritten.
        PrivateFileError::Exists(path) => PinSourceError::FileIo {
            path,
            source: io::ErrorKind::AlreadyExists.into(),
        },
    }
}

/// Why the PIN could not be read from its source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PinSourceError {
    /// The environment variable is not set.
    #[error("the PIN variable ${0} is not set")]
    EnvMissing(String),
    /// The environment variable is not UTF-8.
    #[error("the PIN variable ${0} is not valid UTF-8")]
    EnvNotUnicode(String),
    /// The PIN file could not be read.
    #[error("PIN file {path}: {source}")]
    FileIo {
        /// The PIN file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The PIN file can be read by other users.
    #[error(
        "PIN file {path}: permissions {mode:o} allow other users to read it; run `chmod 600 {path}`"
    )]
    FileInsecure {
        /// The PIN file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A YubiKey PIN is 6 to 8 bytes; sending another length would only
    /// burn a retry.
    #[error("a YubiKey PIN is 6 to 8 characters; the one given has {len}")]
    BadLength {
        /// The length given.
        len: usize,
    },
}

/// A PIV management key (3DES or AES), needed to generate keys when the
/// YubiKey's management key is not the factory default. Its algorithm is
/// read from the card. Zeroized on drop; never printed.
#[derive(Clone)]
pub struct ManagementKey(Zeroizing<Vec<u8>>);

impl ManagementKey {
    /// Parses a key written in hex, as `ykman` prints it: 32, 48 or 64 hex
    /// digits (AES-128; 3DES or AES-192; AES-256).
    ///
    /// # Errors
    /// [`BadManagementKey`] if it is not hex of one of those lengths.
    pub fn from_hex(hex: &str) -> Result<Self, BadManagementKey> {
        let hex = hex.trim();
        if !matches!(hex.len(), 32 | 48 | 64) {
            return Err(BadManagementKey);
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(hex.len() / 2));
        for pair in hex.as_bytes().chunks_exact(2) {
            let [hi, lo] = pair else {
                return Err(BadManagementKey);
            };
            bytes.push(hex_digit(*hi)? << 4 | hex_digit(*lo)?);
        }
        Ok(Self(bytes))
    }

    /// The raw key bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

fn hex_digit(c: u8) -> Result<u8, BadManagementKey> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(BadManagementKey),
    }
}

impl fmt::Debug for ManagementKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ManagementKey(..)")
    }
}

/// A management key that is not 32, 48 or 64 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a PIV management key is 32, 48 or 64 hex digits")]
pub struct BadManagementKey;

/// How to find, create and use a PIV key.
///
/// [`PivConfig::new`] gives the defaults: the only YubiKey present, slot
/// `9a`, PIN policy `once`, touch policy `never` (every DPoP request is a
/// signature, so an unattended agent cannot be asked to touch; admins choose
/// `always` or `cached`), the factory-default management key, and no
/// overwriting of an occupied slot.
#[derive(Clone, Debug)]
pub struct PivConfig {
    /// The YubiKey's serial number; `None` for the only one present.
    pub serial: Option<u32>,
    /// The slot holding (or to hold) the key.
    pub slot: PivSlot,
    /// PIN policy for a generated key: `never`, `once` or `always` (the
    /// YubiKey Bio's `match_once` and `match_always` cannot be generated
    /// through the `yubikey` crate). Ignored when opening a key.
    pub pin_policy: PinPolicy,
    /// Touch policy for a generated key. Ignored when opening a key.
    pub touch_policy: TouchPolicy,
    /// Where the PIN comes from when the key (or a PIN-protected management
    /// key) needs it.
    pub pin: PinSource,
    /// The management key; `None` for the factory default or a PIN-protected
    /// key stored on the YubiKey. Only key generation needs it.
    pub management_key: Option<ManagementKey>,
    /// Let [`PivKey::generate`](super::PivKey::generate) replace a key already
    /// in the slot. The old key is destroyed; anything enrolled with it
    /// stops working.
    pub overwrite: bool,
}

impl PivConfig {
    /// The defaults (see the type's documentation) with a PIN source.
    pub fn new(pin: PinSource) -> Self {
        Self {
            serial: None,
            slot: PivSlot::AUTHENTICATION,
            pin_policy: PinPolicy::Once,
            touch_policy: TouchPolicy::Never,
            pin,
            management_key: None,
            overwrite: false,
        }
    }
}

/// What a device stores to find its key again after a restart: the
/// YubiKey's serial, the slot, and the public key enrolled. The private key
/// never leaves the YubiKey, so this holds no secret.
/// [`PivKey::open_record`](super::PivKey::open_record) refuses a card whose
/// slot now holds a different key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PivKeyRecord {
    /// The YubiKey's serial number.
    pub serial: u32,
    /// The slot.
    pub slot: PivSlot,
    /// The public key, as enrolled.
    pub jwk: Jwk,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_parse_and_print() {
        for (text, id, object) in [
            ("9a", 0x9a, 0x005f_c105),
            ("9c", 0x9c, 0x005f_c10a),
            ("9d", 0x9d, 0x005f_c10b),
            ("9e", 0x9e, 0x005f_c101),
            ("82", 0x82, 0x005f_c10d),
            ("95", 0x95, 0x005f_c120),
            ("8A", 0x8a, 0x005f_c115),
        ] {
            let slot: PivSlot = text.parse().unwrap();
            assert_eq!(slot.id(), id);
            assert_eq!(slot.to_string(), text.to_ascii_lowercase());
            assert_eq!(slot.certificate_object(), object, "{text}");
        }
        assert_eq!(PivSlot::retired(1), Some(PivSlot(0x82)));
        assert_eq!(PivSlot::retired(20), Some(PivSlot(0x95)));
        assert_eq!(PivSlot::retired(0), None);
        assert_eq!(PivSlot::retired(21), None);
        assert_eq!(PivSlot::default(), PivSlot::AUTHENTICATION);
    }

    #[test]
    fn rejects_non_key_slots() {
        for text in [
            "9b", "f9", "80", "81", "96", "00", "9", "09a", "zz", "", "+9a",
        ] {
            assert_eq!(text.parse::<PivSlot>(), Err(BadPivSlot), "{text}");
        }
    }

    #[test]
    fn slot_serde_is_the_hex_name() {
        let json = serde_json::to_string(&PivSlot::SIGNATURE).unwrap();
        assert_eq!(json, "\"9c\"");
        assert_eq!(
            serde_json::from_str::<PivSlot>(&json).unwrap(),
            PivSlot::SIGNATURE
        );
        assert!(serde_json::from_str::<PivSlot>("\"9b\"").is_err());
    }

    #[test]
    fn pin_from_value_and_env() {
        let pin = PinSource::Value(Zeroizing::new("123456".into()));
        assert_eq!(pin.read().unwrap().unwrap().as_slice(), b"123456");
        assert!(PinSource::None.read().unwrap().is_none());
        let missing = PinSource::Env("HOLDFAST_TEST_PIN_THAT_IS_NOT_SET".into());
        assert!(matches!(
            missing.read(),
            Err(PinSourceError::EnvMissing(name)) if name == "HOLDFAST_TEST_PIN_THAT_IS_NOT_SET"
        ));
    }

    #[test]
    fn rejects_pins_of_the_wrong_length() {
        for pin in ["12345", "123456789", ""] {
            let source = PinSource::Value(Zeroizing::new(pin.into()));
            assert!(
                matches!(source.read(), Err(PinSourceError::BadLength { len }) if len == pin.len()),
                "{pin:?}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn pin_file_takes_the_first_line_and_must_be_private() {
        use std::fs;
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        private_file::write_new(&path, b"654321\r\nignored\n").unwrap();
        let source = PinSource::File(path.clone());
        assert_eq!(source.read().unwrap().unwrap().as_slice(), b"654321");

        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = source.read().unwrap_err();
        assert!(
            matches!(err, PinSourceError::FileInsecure { mode: 0o640, .. }),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "PIN file {0}: permissions 640 allow other users to read it; run `chmod 600 {0}`",
                path.display()
            )
        );
        let absent = PinSource::File(dir.path().join("absent"));
        assert!(matches!(absent.read(), Err(PinSourceError::FileIo { .. })));

        let large = dir.path().join("large");
        private_file::write_new(&large, &[b'1'; 2048]).unwrap();
        let err = PinSource::File(large).read().unwrap_err();
        assert!(matches!(err, PinSourceError::FileIo { .. }), "{err}");
        assert!(err.to_string().ends_with("larger than 1024 bytes"), "{err}");
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let pin = PinSource::Value(Zeroizing::new("123456".into()));
        assert_eq!(format!("{pin:?}"), "Value(..)");
        let key =
            ManagementKey::from_hex("010203040506070801020304050607080102030405060708").unwrap();
        assert_eq!(format!("{key:?}"), "ManagementKey(..)");
        let mut config = PivConfig::new(pin);
        config.management_key = Some(key);
        let debug = format!("{config:?}");
        assert!(!debug.contains("123456"), "{debug}");
        assert!(!debug.contains("0102"), "{debug}");
    }

    #[test]
    fn management_keys_parse_from_hex() {
        let key =
            ManagementKey::from_hex(" 010203040506070801020304050607080102030405060708\n").unwrap();
        assert_eq!(
            key.as_bytes(),
            [1, 2, 3, 4, 5, 6, 7, 8].repeat(3).as_slice()
        );
        assert_eq!(
            ManagementKey::from_hex(&"aB".repeat(16))
                .unwrap()
                .as_bytes(),
            [0xab; 16].as_slice()
        );
        assert_eq!(
            ManagementKey::from_hex(&"00".repeat(32))
                .unwrap()
                .as_bytes()
                .len(),
            32
        );
        for bad in [
            "",
            "0102",
            &"0g".repeat(24),
            &"00".repeat(20),
            "é".repeat(24).as_str(),
        ] {
            assert!(ManagementKey::from_hex(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn record_round_trips_as_json() {
        let record = PivKeyRecord {
            serial: 12_345_678,
            slot: PivSlot::AUTHENTICATION,
            jwk: Jwk::p256([1; 32], [2; 32]),
        };
        let json = serde_json::to_string(&record).unwrap();
        assert!(json.contains("\"slot\":\"9a\""), "{json}");
        assert_eq!(serde_json::from_str::<PivKeyRecord>(&json).unwrap(), record);
    }
}
