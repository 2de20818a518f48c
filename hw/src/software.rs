//! `SoftwareKey`: a P-256 key in a PKCS#8 PEM file. For development and
//! tests: it can be copied, so it proves nothing about a device, and it says
//! so ([`KeyKind::Software`], `amr` `swk`).

use core::fmt;
use std::path::{Path, PathBuf};

use getrandom::SysRng;
use holdfast_proto::{Jwk, Signer, SignerError};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::Generate;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use zeroize::Zeroizing;

use crate::kind::KeyKind;
use crate::private_file::{self, PrivateFileError};
use crate::signature::to_jws;

/// Far above any PKCS#8 PEM P-256 key (about 240 bytes); bounds what is read.
const MAX_FILE_LEN: u64 = 4096;

/// A P-256 signing key held in memory, loaded from or saved to a PKCS#8 file.
pub struct SoftwareKey {
    signing: SigningKey,
    jwk: Jwk,
}

/// Why a software key could not be created, loaded or saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SoftwareKeyError {
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// The key file could not be created, written or read, already exists,
    /// or can be read by other users.
    #[error(transparent)]
    File(#[from] PrivateFileError),
    /// The file is not a PKCS#8 PEM P-256 private key.
    #[error("{0}: not a PKCS#8 PEM P-256 private key")]
    NotP256Pkcs8(PathBuf),
}

impl SoftwareKey {
    /// A new key from the system's random number generator.
    ///
    /// # Errors
    /// [`SoftwareKeyError::Random`] if the generator fails.
    pub fn generate() -> Result<Self, SoftwareKeyError> {
        let signing =
            SigningKey::try_generate_from_rng(&mut SysRng).map_err(|_| SoftwareKeyError::Random)?;
        Ok(Self::from_signing_key(signing))
    }

    /// Parses a PKCS#8 PEM private key.
    ///
    /// # Errors
    /// [`SoftwareKeyError::NotP256Pkcs8`] (with an empty path) if it is not one.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, SoftwareKeyError> {
        let signing = SigningKey::from_pkcs8_pem(pem)
            .map_err(|_| SoftwareKeyError::NotP256Pkcs8(PathBuf::new()))?;
        Ok(Self::from_signing_key(signing))
    }

    /// The key as PKCS#8 PEM (zeroized when dropped).
    ///
    /// # Errors
    /// Never in practice; encoding a valid key cannot fail.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, SoftwareKeyError> {
        self.signing
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|_| SoftwareKeyError::NotP256Pkcs8(PathBuf::new()))
    }

    /// Loads a key file, refusing one that other users can read.
    ///
    /// # Errors
    /// [`SoftwareKeyError`] naming the path and the problem.
    pub fn load(path: &Path) -> Result<Self, SoftwareKeyError> {
        let not_a_key = || SoftwareKeyError::NotP256Pkcs8(path.to_owned());
        let pem = private_file::read(path, MAX_FILE_LEN)?;
        let pem = core::str::from_utf8(&pem).map_err(|_| not_a_key())?;
        Self::from_pkcs8_pem(pem).map_err(|_| not_a_key())
    }

    /// Writes the key to a new file readable only by its owner (mode 0600).
    ///
    /// # Errors
    /// [`PrivateFileError::Exists`] if the file exists; IO errors with the
    /// path.
    pub fn save_new(&self, path: &Path) -> Result<(), SoftwareKeyError> {
        let pem = self.to_pkcs8_pem()?;
        Ok(private_file::write_new(path, pem.as_bytes())?)
    }

    /// Always [`KeyKind::Software`].
    pub fn kind(&self) -> KeyKind {
        KeyKind::Software
    }

    fn from_signing_key(signing: SigningKey) -> Self {
        let point = signing.verifying_key().to_sec1_point(false);
        let mut x = [0u8; 32];
        let mut y = [0u8; 32];
        // An uncompressed point of a valid key always has both coordinates.
        if let (Some(px), Some(py)) = (point.x(), point.y()) {
            x.copy_from_slice(px);
            y.copy_from_slice(py);
        }
        Self {
            jwk: Jwk::p256(x, y),
            signing,
        }
    }
}

impl Signer for SoftwareKey {
    fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        let sig: Signature = self
            .signing
            .try_sign(message)
            .map_err(|e| SignerError::with_source("software key failed to sign", e))?;
        Ok(to_jws(&sig).to_vec())
    }
}

impl fmt::Debug for SoftwareKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SoftwareKey({})", self.jwk.thumbprint())
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::testing::signer_conformance;

    #[test]
    fn software_key_passes_signer_conformance() {
        signer_conformance(&SoftwareKey::generate().unwrap());
    }

    #[test]
    fn saves_with_mode_0600_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.pem");
        let key = SoftwareKey::generate().unwrap();
        key.save_new(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let loaded = SoftwareKey::load(&path).unwrap();
        assert_eq!(loaded.public_jwk(), key.public_jwk());
        assert_eq!(loaded.kind(), KeyKind::Software);
    }

    #[test]
    fn never_overwrites_a_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.pem");
        SoftwareKey::generate().unwrap().save_new(&path).unwrap();
        let before = fs::read(&path).unwrap();
        let err = SoftwareKey::generate()
            .unwrap()
            .save_new(&path)
            .unwrap_err();
        assert!(matches!(
            err,
            SoftwareKeyError::File(PrivateFileError::Exists(_))
        ));
        assert_eq!(fs::read(&path).unwrap(), before);
    }

    #[cfg(unix)]
    #[test]
    fn refuses_key_file_readable_by_others() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.pem");
        SoftwareKey::generate().unwrap().save_new(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = SoftwareKey::load(&path).unwrap_err();
        assert!(
            matches!(
                err,
                SoftwareKeyError::File(PrivateFileError::InsecurePermissions { mode: 0o644, .. })
            ),
            "{err}"
        );
    }

    #[test]
    fn refuses_non_key_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.pem");
        private_file::write_new(&path, b"not a key").unwrap();
        assert!(matches!(
            SoftwareKey::load(&path),
            Err(SoftwareKeyError::NotP256Pkcs8(_))
        ));
    }

    #[test]
    fn debug_shows_thumbprint_not_secret() {
        let key = SoftwareKey::generate().unwrap();
        let debug = format!("{key:?}");
        assert_eq!(
            debug,
            format!("SoftwareKey({})", key.public_jwk().thumbprint())
        );
    }
}
