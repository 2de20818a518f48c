//! The key file: a TPM-wrapped key that only the TPM that made it can load.
//!
//! Layout (version 1):
//!
//! ```text
//! "HFTPMK" ‖ u16 version (1) ‖ TPM2B_PUBLIC ‖ TPM2B_PRIVATE
//! ```
//!
//! Both TPM structures are as the TPM marshals them (a big-endian `u16`
//! size, then the contents). `TPM2B_PRIVATE` is encrypted and
//! integrity-protected by the TPM under the storage primary of version 1
//! (see `key.rs`), so the file is not a secret in the way a PKCS#8 file is;
//! it is still written 0600, since it names the device's identity key.

use std::path::Path;

use tss_esapi::structures::{Private, Public};
use tss_esapi::traits::{Marshall as _, UnMarshall as _};

use super::error::TpmError;
use crate::private_file::{self, PrivateFileError};

const MAGIC: &[u8; 6] = b"HFTPMK";
const VERSION: u16 = 1;
/// Far above any real key file; bounds what is read from disk.
const MAX_FILE_LEN: u64 = 4096;

/// A loadable key: its public area and its TPM-wrapped private area.
pub(crate) struct KeyBlob {
    pub(crate) public: Public,
    pub(crate) private: Private,
}

impl KeyBlob {
    pub(crate) fn encode(&self) -> Result<Vec<u8>, TpmError> {
        let public = self
            .public
            .marshall()
            .map_err(|e| TpmError::command("marshalling the key's public area", e))?;
        let private = self.private.value();
        let mut out = Vec::with_capacity(MAGIC.len() + 2 + 2 + public.len() + 2 + private.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        push_sized(&mut out, &public)?;
        push_sized(&mut out, private)?;
        Ok(out)
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, &'static str> {
        let rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or("it does not start with HFTPMK")?;
        let (version, rest) = take_u16(rest).ok_or("truncated")?;
        if version != VERSION {
            return Err("unknown version (made by a newer Holdfast?)");
        }
        let (public_bytes, rest) = take_sized(rest).ok_or("truncated public area")?;
        let (private_bytes, rest) = take_sized(rest).ok_or("truncated private area")?;
        if !rest.is_empty() {
            return Err("trailing bytes");
        }
        let public = Public::unmarshall(public_bytes).map_err(|_| "malformed public area")?;
        // The unmarshaller ignores trailing bytes inside the TPM2B: insist
        // that the public area is exactly one TPMT_PUBLIC.
        if public.marshall().ok().as_deref() != Some(public_bytes) {
            return Err("malformed public area");
        }
        let private =
            Private::try_from(private_bytes.to_vec()).map_err(|_| "malformed private area")?;
        Ok(Self { public, private })
    }
}

fn push_sized(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), TpmError> {
    let len = u16::try_from(bytes.len()).map_err(|_| TpmError::UnexpectedResponse {
        operation: "encoding the key file",
        what: "a TPM structure longer than 65535 bytes",
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

fn take_u16(bytes: &[u8]) -> Option<(u16, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<2>()?;
    Some((u16::from_be_bytes(*head), rest))
}

fn take_sized(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = take_u16(bytes)?;
    let len = usize::from(len);
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}

/// Reads a key file, refusing one that other users can read or that is
/// implausibly large.
pub(crate) fn read_key_file(path: &Path) -> Result<KeyBlob, TpmError> {
    let malformed = |reason| TpmError::MalformedKeyFile {
        path: path.to_owned(),
        reason,
    };
    let bytes = private_file::read(path, MAX_FILE_LEN).map_err(|e| match e {
        PrivateFileError::TooLarge { .. } => malformed("too large"),
        other => TpmError::File(other),
    })?;
    KeyBlob::decode(&bytes).map_err(malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tpm::key::device_key_template;

    fn blob() -> KeyBlob {
        KeyBlob {
            public: device_key_template().unwrap(),
            private: Private::try_from(vec![7u8; 100]).unwrap(),
        }
    }

    #[test]
    fn round_trips() {
        let encoded = blob().encode().unwrap();
        assert!(encoded.starts_with(b"HFTPMK\x00\x01"));
        let decoded = KeyBlob::decode(&encoded).unwrap();
        assert_eq!(decoded.public, blob().public);
        assert_eq!(decoded.private.value(), blob().private.value());
    }

    #[test]
    fn refuses_damaged_files() {
        let encoded = blob().encode().unwrap();
        assert_eq!(
            KeyBlob::decode(b"-----BEGIN PRIVATE KEY-----").err(),
            Some("it does not start with HFTPMK")
        );
        let mut v2 = encoded.clone();
        v2[7] = 2;
        assert!(KeyBlob::decode(&v2).is_err());
        for cut in 0..encoded.len() {
            assert!(KeyBlob::decode(&encoded[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = encoded.clone();
        longer.push(0);
        assert_eq!(KeyBlob::decode(&longer).err(), Some("trailing bytes"));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let encoded = blob().encode().unwrap();
        for i in 0..encoded.len() {
            for bit in 0..8 {
                let mut flipped = encoded.clone();
                flipped[i] ^= 1 << bit;
                let _ = KeyBlob::decode(&flipped);
            }
        }
    }

    #[test]
    fn reads_back_a_written_key_file_and_refuses_a_large_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.tpm");
        private_file::write_new(&path, &blob().encode().unwrap()).unwrap();
        assert!(read_key_file(&path).is_ok());

        let large = dir.path().join("large.tpm");
        private_file::write_new(&large, &[0; MAX_FILE_LEN as usize + 1]).unwrap();
        assert!(matches!(
            read_key_file(&large),
            Err(TpmError::MalformedKeyFile {
                reason: "too large",
                ..
            })
        ));
    }
}
