//! Sealing TOTP secrets: AES-256-GCM under a key kept in a file outside
//! the store (`admin.totp_key_file`), with the principal id as associated
//! data. A copy of the store alone yields no TOTP secret, and a sealed
//! secret moved onto another principal's record does not open.
//!
//! sled has no KMS: the key file is what protects the secrets, so it lives
//! apart from the store (by default beside it, in the 0700 data directory;
//! point it elsewhere to keep it out of store backups).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64ct::{Base64UrlUnpadded, Encoding as _};
use getrandom::SysRng;
use getrandom::rand_core::TryRng as _;
use holdfast_proto::UnixTime;
use zeroize::Zeroizing;

use super::totp::TotpSecret;
use crate::model::PrincipalId;
use crate::store::StoredTotp;

/// Length of the sealing key.
const KEY_LEN: usize = 32;

/// Why a secret cannot be sealed or opened. Handlers answer `server_error`;
/// the message is for the operator's log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The key file cannot be read or created.
    #[error("TOTP key file {}: {source}", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The key file does not hold a 32-byte base64url key.
    #[error(
        "TOTP key file {}: not a base64url 32-byte key; restore the right file, or reset every admin's TOTP (holdfastd admin totp-reset NAME)",
        .0.display()
    )]
    KeyInvalid(PathBuf),
    /// The key file is missing while a sealed secret exists.
    #[error(
        "TOTP key file {} is missing: restore it, or reset the admin's TOTP (holdfastd admin totp-reset NAME)",
        .0.display()
    )]
    KeyMissing(PathBuf),
    /// The sealed secret does not open under this key for this principal:
    /// another key file, or a record that was moved or altered.
    #[error(
        "the TOTP secret of {0} does not open with the configured key file: restore the right file, or reset it (holdfastd admin totp-reset NAME)"
    )]
    WrongKey(PrincipalId),
    /// AES-GCM refused to seal (it only does so for absurd lengths).
    #[error("cannot seal the TOTP secret")]
    SealFailed,
}

/// The key that seals TOTP secrets. Wiped on drop, never printed.
pub(super) struct SealingKey(LessSafeKey);

impl SealingKey {
    /// Reads the key from `path`; with `create`, makes it (32 random bytes,
    /// base64url, mode 0600) if there is none yet.
    pub(super) fn load(path: &Path, create: bool) -> Result<Self, SealError> {
        let io = |source| SealError::KeyFile {
            path: path.to_owned(),
            source,
        };
        if !path.exists() {
            if !create {
                return Err(SealError::KeyMissing(path.to_owned()));
            }
            let mut key = Zeroizing::new([0u8; KEY_LEN]);
            if SysRng.try_fill_bytes(key.as_mut()).is_err() {
                std::process::abort();
            }
            let text = Zeroizing::new(Base64UrlUnpadded::encode_string(key.as_ref()));
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            match options.open(path) {
                Ok(mut file) => {
                    file.write_all(text.as_bytes()).map_err(io)?;
                    file.sync_all().map_err(io)?;
                }
                // Another request made it first: use that one.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        let decoded = Base64UrlUnpadded::decode(text.trim(), key.as_mut())
            .map_err(|_| SealError::KeyInvalid(path.to_owned()))?;
        if decoded.len() != KEY_LEN {
            return Err(SealError::KeyInvalid(path.to_owned()));
        }
        let unbound = UnboundKey::new(&AES_256_GCM, key.as_ref())
            .map_err(|_| SealError::KeyInvalid(path.to_owned()))?;
        Ok(Self(LessSafeKey::new(unbound)))
    }

    /// Seals `secret` for `principal`.
    pub(super) fn seal(
        &self,
        secret: &TotpSecret,
        principal: &PrincipalId,
        now: UnixTime,
    ) -> Result<StoredTotp, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        // A random 96-bit nonce per secret: a few secrets per admin ever,
        // far from the 2^32 messages where random GCM nonces get risky.
        if SysRng.try_fill_bytes(&mut nonce).is_err() {
            std::process::abort();
        }
        let mut sealed = Zeroizing::new(secret.as_bytes().to_vec());
        // On failure the buffer may still hold the plain secret: never store it.
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(principal.as_str().as_bytes()),
                &mut *sealed,
            )
            .map_err(|_| SealError::SealFailed)?;
        Ok(StoredTotp {
            nonce: Base64UrlUnpadded::encode_string(&nonce),
            sealed: Base64UrlUnpadded::encode_string(&sealed),
            enrolled_at: now,
            confirmed: false,
        })
    }

    /// Opens `stored`, sealed for `principal`.
    pub(super) fn open(
        &self,
        stored: &StoredTotp,
        principal: &PrincipalId,
    ) -> Result<TotpSecret, SealError> {
        let wrong = || SealError::WrongKey(principal.clone());
        let mut nonce = [0u8; NONCE_LEN];
        let decoded = Base64UrlUnpadded::decode(&stored.nonce, &mut nonce).map_err(|_| wrong())?;
        if decoded.len() != NONCE_LEN {
            return Err(wrong());
        }
        let mut sealed =
            Zeroizing::new(Base64UrlUnpadded::decode_vec(&stored.sealed).map_err(|_| wrong())?);
        let plain = self
            .0
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(principal.as_str().as_bytes()),
                &mut sealed,
            )
            .map_err(|_| wrong())?;
        Ok(TotpSecret::from_bytes(plain.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn seals_and_opens_for_the_same_principal_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("totp.key");
        assert!(matches!(
            SealingKey::load(&path, false),
            Err(SealError::KeyMissing(_))
        ));
        let key = SealingKey::load(&path, true).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let alice: PrincipalId = "p-alice".parse().unwrap();
        let bob: PrincipalId = "p-bob".parse().unwrap();
        let secret = TotpSecret::generate();
        let stored = key.seal(&secret, &alice, UnixTime::from_secs(1)).unwrap();
        assert!(
            !stored
                .sealed
                .contains(&Base64UrlUnpadded::encode_string(secret.as_bytes()))
        );
        // Reloaded from the file, the key opens it.
        let again = SealingKey::load(&path, false).unwrap();
        assert_eq!(
            again.open(&stored, &alice).unwrap().as_bytes(),
            secret.as_bytes()
        );
        // Moved onto another principal, it does not.
        assert!(matches!(
            again.open(&stored, &bob),
            Err(SealError::WrongKey(_))
        ));
        // Nor under another key.
        let other = SealingKey::load(&dir.path().join("other.key"), true).unwrap();
        assert!(matches!(
            other.open(&stored, &alice),
            Err(SealError::WrongKey(_))
        ));
        // A damaged key file is refused by name.
        std::fs::write(&path, "short").unwrap();
        assert!(matches!(
            SealingKey::load(&path, false),
            Err(SealError::KeyInvalid(_))
        ));
    }
}
