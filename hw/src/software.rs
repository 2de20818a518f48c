//! `SoftwareKey`: a P-256 key in a PKCS#8 PEM file. For development and
//! tests: it can be copied, so it proves nothing about a device, and it says
//! so ([`KeyKind::Software`], `amr` `swk`).

use core::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use getrandom::SysRng;
use holdfast_proto::{Jwk, Signer, SignerError};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::Generate;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use zeroize::Zeroizing;

use crate::kind::KeyKind;
use crate::signature::to_jws;

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
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The file already exists; keys are never overwritten.
    #[error("{0}: already exists (a key file is never overwritten)")]
    Exists(PathBuf),
    /// The file can be read by other users.
    #[error(
        "{path}: key file permissions {mode:o} allow other users to read it; run `chmod 600 {path}`"
    )]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
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
        let io = |source| SoftwareKeyError::Io {
            path: path.to_owned(),
            source,
        };
        check_permissions(path)?;
        let pem = Zeroizing::new(fs::read_to_string(path).map_err(io)?);
        Self::from_pkcs8_pem(&pem).map_err(|_| SoftwareKeyError::NotP256Pkcs8(path.to_owned()))
    }

    /// Writes the key to a new file readable only by its owner (mode 0600).
    ///
    /// # Errors
    /// [`SoftwareKeyError::Exists`] if the file exists; IO errors with the path.
    pub fn save_new(&self, path: &Path) -> Result<(), SoftwareKeyError> {
        let pem = self.to_pkcs8_pem()?;
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => SoftwareKeyError::Exists(path.to_owned()),
            _ => SoftwareKeyError::Io {
                path: path.to_owned(),
                source,
            },
        })?;
        let written = file
            .write_all(pem.as_bytes())
            .and_then(|()| file.sync_all());
        if let Err(source) = written {
            // Do not leave half a key behind.
            let _ = fs::remove_file(path);
            return Err(SoftwareKeyError::Io {
                path: path.to_owned(),
                source,
            });
        }
        Ok(())
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

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), SoftwareKeyError> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = fs::metadata(path).map_err(|source| SoftwareKeyError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SoftwareKeyError::InsecurePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), SoftwareKeyError> {
    Ok(())
}

#[cfg(test)]
mod tests {
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
        assert!(matches!(err, SoftwareKeyError::Exists(_)));
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
                SoftwareKeyError::InsecurePermissions { mode: 0o644, .. }
            ),
            "{err}"
        );
    }

    #[test]
    fn refuses_non_key_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.pem");
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options
            .open(&path)
            .unwrap()
            .write_all(b"not a key")
            .unwrap();
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
