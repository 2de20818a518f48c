//! Private files: key files, TPM key blobs, PIN files and the agent's state.
//!
//! A private file is created with mode 0600 and never overwritten, and is
//! read only when no other user can read it: a copied key file is a copied
//! identity, and an overwritten one is a lost identity. Every such file in
//! Holdfast goes through this module, so the rules live in one place.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Why a private file could not be created, written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrivateFileError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The file already exists; private files are never overwritten.
    #[error("{0}: already exists (a key file is never overwritten)")]
    Exists(PathBuf),
    /// The file can be read by other users.
    #[error(
        "{path}: key file permissions {mode:o} allow other users to read it; run `chmod 600 {path}`"
    )]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is larger than any file of its kind can be.
    #[error("{path}: larger than {max_len} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The most the caller reads.
        max_len: u64,
    },
}

/// Writes `bytes` to a new file at `path`, readable only by its owner
/// (mode 0600), and syncs it. A failed write leaves no file behind.
///
/// # Errors
/// [`PrivateFileError::Exists`] if `path` exists (it is left untouched);
/// [`PrivateFileError::Io`] otherwise.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<(), PrivateFileError> {
    NewPrivateFile::create(path)?.commit(bytes)
}

/// Reads the file at `path`, refusing one that other users can read or that
/// is larger than `max_len` bytes. The contents are zeroized when dropped.
///
/// # Errors
/// [`PrivateFileError::InsecurePermissions`],
/// [`PrivateFileError::TooLarge`] or [`PrivateFileError::Io`], with the path.
pub fn read(path: &Path, max_len: u64) -> Result<Zeroizing<Vec<u8>>, PrivateFileError> {
    let io = |source| PrivateFileError::Io {
        path: path.to_owned(),
        source,
    };
    let too_large = || PrivateFileError::TooLarge {
        path: path.to_owned(),
        max_len,
    };
    // The checks look at the file opened, so it cannot be swapped for
    // another between the check and the read.
    let file = File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    check_private(path, &meta)?;
    if meta.len() > max_len {
        return Err(too_large());
    }
    // Room for the whole file up front: growing the buffer would leave
    // unzeroized copies of a secret behind.
    let capacity = usize::try_from(meta.len()).unwrap_or(0).saturating_add(1);
    let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
    // One byte more than allowed tells a file that grew since `metadata`.
    file.take(max_len.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > max_len {
        return Err(too_large());
    }
    Ok(bytes)
}

/// A new private file, created (mode 0600, must not exist) before its
/// contents are known: a caller that does costly or irreversible work
/// first (a TPM creating a key) learns of an existing file before it.
/// Dropped without [`commit`](Self::commit), it is removed.
pub(crate) struct NewPrivateFile {
    path: PathBuf,
    file: Option<File>,
}

impl NewPrivateFile {
    /// Creates the file.
    pub(crate) fn create(path: &Path) -> Result<Self, PrivateFileError> {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => PrivateFileError::Exists(path.to_owned()),
            _ => PrivateFileError::Io {
                path: path.to_owned(),
                source,
            },
        })?;
        Ok(Self {
            path: path.to_owned(),
            file: Some(file),
        })
    }

    /// Writes and syncs `bytes`; the file stays.
    pub(crate) fn commit(mut self, bytes: &[u8]) -> Result<(), PrivateFileError> {
        let Some(mut file) = self.file.take() else {
            return Ok(());
        };
        let written = file.write_all(bytes).and_then(|()| file.sync_all());
        if let Err(source) = written {
            // Dropping `self` with `file` taken would keep the file: remove
            // it here, so nothing half-written is left behind.
            let _ = fs::remove_file(&self.path);
            return Err(PrivateFileError::Io {
                path: self.path.clone(),
                source,
            });
        }
        Ok(())
    }
}

impl Drop for NewPrivateFile {
    fn drop(&mut self) {
        // Not committed: leave nothing behind.
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(unix)]
fn check_private(path: &Path, meta: &Metadata) -> Result<(), PrivateFileError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(PrivateFileError::InsecurePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path, _meta: &Metadata) -> Result<(), PrivateFileError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn writes_mode_0600_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        write_new(&path, b"secret").unwrap();
        #[cfg(unix)]
        assert_eq!(mode(&path), 0o600);
        assert_eq!(read(&path, 6).unwrap().as_slice(), b"secret");
    }

    #[test]
    fn never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        fs::write(&path, b"existing").unwrap();
        let err = write_new(&path, b"new").unwrap_err();
        assert!(matches!(err, PrivateFileError::Exists(_)), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "{}: already exists (a key file is never overwritten)",
                path.display()
            )
        );
        assert_eq!(fs::read(&path).unwrap(), b"existing");
    }

    #[test]
    fn removes_a_file_never_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        drop(NewPrivateFile::create(&path).unwrap());
        assert!(!path.exists(), "an uncommitted file is removed");
        NewPrivateFile::create(&path)
            .unwrap()
            .commit(b"kept")
            .unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"kept");
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_file_other_users_can_read() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        write_new(&path, b"secret").unwrap();
        for insecure in [0o640, 0o604, 0o644] {
            fs::set_permissions(&path, fs::Permissions::from_mode(insecure)).unwrap();
            let err = read(&path, 64).unwrap_err();
            assert!(
                matches!(err, PrivateFileError::InsecurePermissions { mode, .. } if mode == insecure),
                "{err}"
            );
        }
        let err = read(&path, 64).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{0}: key file permissions 644 allow other users to read it; run `chmod 600 {0}`",
                path.display()
            )
        );
    }

    #[test]
    fn refuses_a_file_larger_than_asked_and_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        write_new(&path, b"seven b").unwrap();
        assert!(matches!(
            read(&path, 6),
            Err(PrivateFileError::TooLarge { max_len: 6, .. })
        ));
        assert_eq!(read(&path, 7).unwrap().as_slice(), b"seven b");
        assert!(matches!(
            read(&dir.path().join("absent"), 64),
            Err(PrivateFileError::Io { .. })
        ));
    }
}
