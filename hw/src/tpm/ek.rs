//! The endorsement key (EK): its certificate in NV and the key itself.
//!
//! The TPM manufacturer certifies an EK that the TPM derives from its
//! endorsement seed and a TCG default template (TCG EK Credential Profile
//! 2.x, §2.2.1.4–5 for the NV indices, Annex B for the templates). The
//! device reads the certificate, re-creates that EK from the same template,
//! and checks that the two match before the issuer encrypts anything to it.

use der::Decode as _;
use der::asn1::UintRef;
use tss_esapi::Context;
use tss_esapi::abstraction::{AsymmetricAlgorithmSelection, DefaultKey, ek};
use tss_esapi::constants::PropertyTag;
use tss_esapi::handles::{KeyHandle, NvIndexHandle, NvIndexTpmHandle, ObjectHandle, TpmHandle};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::resource_handles::{Hierarchy, NvAuth};
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{MaxNvBuffer, Public};
use x509_cert::Certificate;

use super::error::TpmError;
use crate::attestation::evidence::MAX_MEMBER_LEN;
use crate::signature::left_pad;

/// Which endorsement key (and certificate) to attest with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EkKind {
    /// RSA-2048, template L-1; certificate at NV index `0x01c00002`.
    Rsa2048,
    /// ECC NIST P-256, template L-2; certificate at NV index `0x01c0000a`.
    EccP256,
    /// ECC NIST P-384, template H-3; certificate at NV index `0x01c00016`.
    EccP384,
}

impl EkKind {
    /// The order tried when none is chosen: RSA-2048 first, since nearly
    /// every TPM (and Windows) provisions it.
    pub const ALL: [EkKind; 3] = [EkKind::Rsa2048, EkKind::EccP256, EkKind::EccP384];

    /// The NV index of this EK's certificate.
    pub const fn nv_index(self) -> u32 {
        match self {
            Self::Rsa2048 => 0x01c0_0002,
            Self::EccP256 => 0x01c0_000a,
            Self::EccP384 => 0x01c0_0016,
        }
    }

    fn algorithm(self) -> AsymmetricAlgorithmSelection {
        match self {
            Self::Rsa2048 => AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048),
            Self::EccP256 => AsymmetricAlgorithmSelection::Ecc(EccCurve::NistP256),
            Self::EccP384 => AsymmetricAlgorithmSelection::Ecc(EccCurve::NistP384),
        }
    }
}

/// An EK loaded in the TPM, with the certificate that names it.
pub(crate) struct LoadedEk {
    pub(crate) kind: EkKind,
    pub(crate) handle: KeyHandle,
    pub(crate) public: Public,
    /// DER, trimmed to the certificate itself.
    pub(crate) certificate: Vec<u8>,
}

/// Reads the certificate of `kind`, creates its EK and checks they match.
/// With `kind` `None`, each of [`EkKind::ALL`] is tried in turn: the first
/// with a usable certificate is used; if none is usable, the first problem
/// found is reported.
pub(crate) fn load_ek(ctx: &mut Context, kind: Option<EkKind>) -> Result<LoadedEk, TpmError> {
    let candidates: &[EkKind] = match &kind {
        Some(kind) => core::slice::from_ref(kind),
        None => &EkKind::ALL,
    };
    let mut first_problem = None;
    for &kind in candidates {
        match load_one(ctx, kind) {
            Ok(Some(ek)) => return Ok(ek),
            Ok(None) => {}
            // A certificate Holdfast cannot use: another EK may do.
            Err(
                e @ (TpmError::BadEkCertificate { .. } | TpmError::EkCertificateMismatch { .. }),
            ) => {
                first_problem.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(first_problem.unwrap_or_else(|| TpmError::NoEkCertificate {
        looked_at: candidates
            .iter()
            .map(|kind| format!("{:#010x}", kind.nv_index()))
            .collect::<Vec<_>>()
            .join(", "),
    }))
}

/// The EK of `kind`, if the TPM has a certificate for it.
fn load_one(ctx: &mut Context, kind: EkKind) -> Result<Option<LoadedEk>, TpmError> {
    let Some(certificate) = read_ek_certificate(ctx, kind)? else {
        return Ok(None);
    };
    let index = kind.nv_index();
    let template = ek::create_ek_public_from_default_template_2(kind.algorithm(), DefaultKey)
        .map_err(|e| TpmError::command("building the EK template", e))?;
    let created = ctx
        .execute_with_session(Some(AuthSession::Password), |ctx| {
            ctx.create_primary(Hierarchy::Endorsement, template, None, None, None, None)
        })
        .map_err(|e| TpmError::command("TPM2_CreatePrimary (endorsement key)", e))?;
    match certificate_matches(&certificate, &created.out_public) {
        Ok(true) => Ok(Some(LoadedEk {
            kind,
            handle: created.key_handle,
            public: created.out_public,
            certificate,
        })),
        Ok(false) => {
            flush_quietly(ctx, created.key_handle);
            Err(TpmError::EkCertificateMismatch { index })
        }
        Err(reason) => {
            flush_quietly(ctx, created.key_handle);
            Err(TpmError::BadEkCertificate { index, reason })
        }
    }
}

/// The EK certificate of `kind` (DER, trimmed to its first element), or
/// `None` if the TPM has none at that index.
pub(crate) fn read_ek_certificate(
    ctx: &mut Context,
    kind: EkKind,
) -> Result<Option<Vec<u8>>, TpmError> {
    const OP: &str = "TPM2_NV_Read (EK certificate)";
    let index = kind.nv_index();
    let nv_index = NvIndexTpmHandle::new(index).map_err(|e| TpmError::command(OP, e))?;
    let object = match ctx
        .execute_without_session(|ctx| ctx.tr_from_tpm_public(TpmHandle::NvIndex(nv_index)))
    {
        Ok(object) => object,
        Err(e) if TpmError::is_missing_handle(&e) => return Ok(None),
        Err(e) => return Err(TpmError::command(OP, e)),
    };
    let read = read_nv(ctx, NvIndexHandle::from(object));
    let mut object = object;
    let _ = ctx.tr_close(&mut object);
    let bytes = read?;
    let Some(certificate) = first_der_element(&bytes) else {
        return Err(TpmError::BadEkCertificate {
            index,
            reason: "not a DER certificate",
        });
    };
    Ok(Some(certificate.to_vec()))
}

fn read_nv(ctx: &mut Context, handle: NvIndexHandle) -> Result<Vec<u8>, TpmError> {
    const OP: &str = "TPM2_NV_Read (EK certificate)";
    let (public, _) = ctx
        .execute_without_session(|ctx| ctx.nv_read_public(handle))
        .map_err(|e| TpmError::command(OP, e))?;
    let size = public.data_size();
    if size > MAX_MEMBER_LEN {
        return Err(TpmError::UnexpectedResponse {
            operation: OP,
            what: "an EK certificate index larger than 8 KiB",
        });
    }
    let chunk = ctx
        .get_tpm_property(PropertyTag::NvBufferMax)
        .ok()
        .flatten()
        .and_then(|max| usize::try_from(max).ok())
        .unwrap_or(512)
        .clamp(64, MaxNvBuffer::MAX_SIZE);
    let mut out = Vec::with_capacity(size);
    while out.len() < size {
        let want = chunk.min(size - out.len());
        let (Ok(want16), Ok(offset)) = (u16::try_from(want), u16::try_from(out.len())) else {
            return Err(TpmError::UnexpectedResponse {
                operation: OP,
                what: "an NV offset beyond 64 KiB",
            });
        };
        // The certificate indices are readable with their own (empty)
        // authorization: no owner password needed.
        let data = ctx
            .execute_with_session(Some(AuthSession::Password), |ctx| {
                ctx.nv_read(NvAuth::NvIndex(handle), handle, want16, offset)
            })
            .map_err(|e| TpmError::command(OP, e))?;
        if data.is_empty() || data.len() > want {
            return Err(TpmError::UnexpectedResponse {
                operation: OP,
                what: "a read of the wrong length",
            });
        }
        out.extend_from_slice(&data);
    }
    Ok(out)
}

/// The first DER element of `bytes`: NV indices are often larger than the
/// certificate and padded with 0xFF.
pub(crate) fn first_der_element(bytes: &[u8]) -> Option<&[u8]> {
    let (&tag, rest) = bytes.split_first()?;
    if tag != 0x30 {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 3 {
            return None;
        }
        let len_bytes = rest.get(..count)?;
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, 2 + count)
    };
    bytes.get(..header.checked_add(len)?)
}

/// Whether the certificate's subject public key is `public`.
fn certificate_matches(der: &[u8], public: &Public) -> Result<bool, &'static str> {
    const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
    const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
    const P256: &str = "1.2.840.10045.3.1.7";
    const P384: &str = "1.3.132.0.34";

    let certificate = Certificate::from_der(der).map_err(|_| "not a DER X.509 certificate")?;
    let spki = certificate.tbs_certificate().subject_public_key_info();
    let key_bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or("the subject public key is not a whole number of bytes")?;
    let algorithm = spki.algorithm.oid.to_string();
    match public {
        Public::Rsa {
            parameters, unique, ..
        } => {
            if algorithm != RSA_ENCRYPTION {
                return Ok(false);
            }
            let key = rsa::pkcs1::RsaPublicKey::<UintRef<'_>>::from_der(key_bits)
                .map_err(|_| "the RSA public key is not DER PKCS#1")?;
            // A TPM exponent of 0 means the default, 65537.
            let exponent = match parameters.exponent().value() {
                0 => 65537,
                e => e,
            };
            let cert_exponent = key
                .public_exponent
                .as_bytes()
                .iter()
                .try_fold(0u32, |acc, &b| {
                    acc.checked_mul(256).map(|acc| acc | u32::from(b))
                });
            Ok(
                strip_zeros(key.modulus.as_bytes()) == strip_zeros(unique.value())
                    && cert_exponent == Some(exponent),
            )
        }
        Public::Ecc {
            parameters, unique, ..
        } => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|params| params.decode_as::<der::asn1::ObjectIdentifier>().ok())
                .map(|oid| oid.to_string());
            let expected_curve = match parameters.ecc_curve() {
                EccCurve::NistP256 => P256,
                EccCurve::NistP384 => P384,
                _ => return Ok(false),
            };
            if algorithm != EC_PUBLIC_KEY || curve.as_deref() != Some(expected_curve) {
                return Ok(false);
            }
            let point = match parameters.ecc_curve() {
                EccCurve::NistP256 => uncompressed::<32>(unique.x().value(), unique.y().value()),
                _ => uncompressed::<48>(unique.x().value(), unique.y().value()),
            };
            Ok(point.as_deref() == Some(key_bits))
        }
        _ => Ok(false),
    }
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

fn uncompressed<const N: usize>(x: &[u8], y: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(1 + 2 * N);
    out.push(0x04);
    out.extend_from_slice(&left_pad::<N>(x)?);
    out.extend_from_slice(&left_pad::<N>(y)?);
    Some(out)
}

/// Flushes `handle`, ignoring errors (used on cleanup paths).
pub(crate) fn flush_quietly(ctx: &mut Context, handle: impl Into<ObjectHandle>) {
    let _ = ctx.flush_context(handle.into());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_der_element_drops_ff_padding() {
        let cert = [0x30, 0x03, 0x02, 0x01, 0x05];
        let mut padded = cert.to_vec();
        padded.extend_from_slice(&[0xff; 20]);
        assert_eq!(first_der_element(&padded), Some(&cert[..]));
        assert_eq!(first_der_element(&cert), Some(&cert[..]));

        let mut long = vec![0x30, 0x82, 0x01, 0x00];
        long.extend_from_slice(&[0u8; 0x100]);
        long.extend_from_slice(&[0xff; 3]);
        assert_eq!(first_der_element(&long).map(<[u8]>::len), Some(0x104));
    }

    #[test]
    fn first_der_element_refuses_what_is_not_one() {
        assert_eq!(first_der_element(&[]), None);
        assert_eq!(first_der_element(&[0xff; 16]), None);
        assert_eq!(first_der_element(&[0x30]), None);
        assert_eq!(first_der_element(&[0x30, 0x05, 0x00]), None);
        assert_eq!(first_der_element(&[0x30, 0x80, 0x00]), None);
        assert_eq!(first_der_element(&[0x30, 0x84, 1, 2, 3, 4]), None);
    }
}
