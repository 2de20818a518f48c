//! Device signatures to JWS signatures, in one place.
//!
//! TPMs return ECDSA signatures as `(r, s)` integers (sometimes shorter than
//! 32 bytes), YubiKeys as DER. JWS wants `r ‖ s`, 64 bytes (RFC 7518 §3.4).
//! About half of TPM signatures are high-S; they are normalised to low-S so
//! every Holdfast signature has one form.

use p256::ecdsa::Signature;

/// Why a device's signature could not be converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureFormatError {
    /// Not a DER `ECDSA-Sig-Value`.
    #[error("the device returned a signature that is not DER ECDSA")]
    NotDer,
    /// `r` or `s` is zero, too long, or not below the curve order.
    #[error("the device returned a signature with an out-of-range r or s")]
    OutOfRange,
}

/// A P-256 DER signature (as from a YubiKey) to JWS `r ‖ s`, low-S.
///
/// # Errors
/// [`SignatureFormatError::NotDer`] if `der` is not a DER ECDSA signature.
pub fn p256_jws_from_der(der: &[u8]) -> Result<[u8; 64], SignatureFormatError> {
    let sig = Signature::from_der(der).map_err(|_| SignatureFormatError::NotDer)?;
    Ok(to_jws(&sig))
}

/// A P-256 signature as big-endian `r` and `s` (as from a TPM; leading zeros
/// may be missing or present) to JWS `r ‖ s`, low-S.
///
/// # Errors
/// [`SignatureFormatError::OutOfRange`] if either is zero, longer than 32
/// significant bytes, or not below the curve order.
pub fn p256_jws_from_scalars(r: &[u8], s: &[u8]) -> Result<[u8; 64], SignatureFormatError> {
    let r = left_pad::<32>(r).ok_or(SignatureFormatError::OutOfRange)?;
    let s = left_pad::<32>(s).ok_or(SignatureFormatError::OutOfRange)?;
    let sig = Signature::from_scalars(r, s).map_err(|_| SignatureFormatError::OutOfRange)?;
    Ok(to_jws(&sig))
}

/// `r ‖ s` with s normalised to the lower half of the order.
pub(crate) fn to_jws(sig: &Signature) -> [u8; 64] {
    let sig = sig.normalize_s();
    let mut out = [0u8; 64];
    out.copy_from_slice(&sig.to_bytes());
    out
}

/// Big-endian bytes, leading zeros dropped or added, as exactly `N` bytes;
/// `None` if more than `N` bytes are significant. TPMs drop the leading
/// zeros of scalars and coordinates, and some add one.
pub(crate) fn left_pad<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let significant = bytes.get(start..)?;
    let mut out = [0u8; N];
    out.get_mut(N.checked_sub(significant.len())?..)?
        .copy_from_slice(significant);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer as _;
    use p256::elliptic_curve::Generate;

    #[test]
    fn der_and_scalars_give_the_same_low_s_jws() {
        let key = SigningKey::generate();
        let sig: Signature = key.sign(b"message");
        let der = sig.to_der();
        let (r, s) = sig.split_bytes();
        let from_der = p256_jws_from_der(der.as_bytes()).unwrap();
        let from_scalars = p256_jws_from_scalars(&r, &s).unwrap();
        assert_eq!(from_der, from_scalars);
        assert_eq!(
            Signature::from_slice(&from_der).unwrap().normalize_s(),
            Signature::from_slice(&from_der).unwrap()
        );
    }

    #[test]
    fn high_s_is_normalised() {
        let key = SigningKey::generate();
        let sig: Signature = key.sign(b"message");
        // n - s: the other, equally valid, signature.
        let high = Signature::from_scalars(sig.r(), -*sig.s()).unwrap();
        let (r, s) = high.split_bytes();
        assert_eq!(p256_jws_from_scalars(&r, &s).unwrap(), to_jws(&sig));
    }

    #[test]
    fn short_and_zero_padded_scalars_are_accepted() {
        let key = SigningKey::generate();
        let sig: Signature = key.sign(b"message");
        let (r, s) = sig.split_bytes();
        let mut padded_r = vec![0u8, 0u8];
        padded_r.extend_from_slice(&r);
        assert_eq!(p256_jws_from_scalars(&padded_r, &s).unwrap(), to_jws(&sig));
    }

    #[test]
    fn left_pad_handles_short_long_and_zero_padded_input() {
        assert_eq!(left_pad::<4>(&[1, 2]), Some([0, 0, 1, 2]));
        assert_eq!(left_pad::<4>(&[0, 0, 0, 1, 2]), Some([0, 0, 1, 2]));
        assert_eq!(left_pad::<4>(&[1, 2, 3, 4, 5]), None);
        assert_eq!(left_pad::<4>(&[]), Some([0; 4]));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(
            p256_jws_from_der(b"\x30\x00"),
            Err(SignatureFormatError::NotDer)
        );
        assert_eq!(p256_jws_from_der(b""), Err(SignatureFormatError::NotDer));
        assert_eq!(
            p256_jws_from_scalars(&[0], &[1]),
            Err(SignatureFormatError::OutOfRange)
        );
        assert_eq!(
            p256_jws_from_scalars(&[1; 33], &[1]),
            Err(SignatureFormatError::OutOfRange)
        );
        assert_eq!(
            p256_jws_from_scalars(&[0xff; 32], &[1]),
            Err(SignatureFormatError::OutOfRange)
        );
    }
}
