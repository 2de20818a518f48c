//! `TPMT_SIGNATURE` (TCG TPM 2.0 Part 2 §11.3.4) and its verification with
//! the public key of a `TPMT_PUBLIC`, on aws-lc-rs.
//!
//! RSA-PSS signatures are checked with a salt as long as the digest, which is
//! what the TPM reference implementation produces for 2048-bit and larger
//! keys.

use aws_lc_rs::signature::{self as sig, RsaParameters, RsaPublicKeyComponents, UnparsedPublicKey};

use super::alg::{self, HashAlg};
use super::marshal::{ParseError, ParseProblem, Reader};
use super::public::{EccCurve, PublicKeyParms, TpmtPublic};
use crate::attestation::x509::ecdsa_der_from_rs;

const STRUCTURE: &str = "TPMT_SIGNATURE";
const MAX_RSA_KEY_BYTES: usize = 512;
const MAX_ECC_KEY_BYTES: usize = 128;

/// A parsed `TPMT_SIGNATURE` of a supported scheme.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TpmtSignature {
    /// `TPM_ALG_RSASSA` (PKCS #1 v1.5).
    Rsassa {
        /// `hash` (a `TPM_ALG_ID`).
        hash: u16,
        /// `sig`.
        sig: Vec<u8>,
    },
    /// `TPM_ALG_RSAPSS`.
    Rsapss {
        /// `hash` (a `TPM_ALG_ID`).
        hash: u16,
        /// `sig`.
        sig: Vec<u8>,
    },
    /// `TPM_ALG_ECDSA`.
    Ecdsa {
        /// `hash` (a `TPM_ALG_ID`).
        hash: u16,
        /// `signatureR`, big-endian.
        r: Vec<u8>,
        /// `signatureS`, big-endian.
        s: Vec<u8>,
    },
}

/// Why a signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The signature's algorithm does not fit the key (ECDSA for an RSA key…).
    #[error("a {signature} signature cannot come from {key} key")]
    KeyTypeMismatch {
        /// The signature scheme.
        signature: &'static str,
        /// The key type.
        key: &'static str,
    },
    /// The hash, curve or key size is not one this verifier handles.
    #[error("unsupported signature parameters: {0}")]
    Unsupported(&'static str),
    /// The signature is wrong.
    #[error("the signature does not verify")]
    Invalid,
}

impl TpmtSignature {
    /// Parses a marshalled `TPMT_SIGNATURE`.
    ///
    /// # Errors
    /// A [`ParseError`]: a scheme other than RSASSA, RSAPSS or ECDSA,
    /// truncated or trailing input, a `TPM2B` over its maximum.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(bytes, STRUCTURE);
        let sig_alg = r.u16("sigAlg")?;
        let parsed = match sig_alg {
            alg::RSASSA | alg::RSAPSS => {
                let hash = r.u16("signature.rsa.hash")?;
                let sig = r.tpm2b("signature.rsa.sig", MAX_RSA_KEY_BYTES)?.to_vec();
                if sig_alg == alg::RSASSA {
                    Self::Rsassa { hash, sig }
                } else {
                    Self::Rsapss { hash, sig }
                }
            }
            alg::ECDSA => Self::Ecdsa {
                hash: r.u16("signature.ecdsa.hash")?,
                r: r.tpm2b("signature.ecdsa.signatureR", MAX_ECC_KEY_BYTES)?
                    .to_vec(),
                s: r.tpm2b("signature.ecdsa.signatureS", MAX_ECC_KEY_BYTES)?
                    .to_vec(),
            },
            other => return Err(r.error("sigAlg", ParseProblem::Unsupported { value: other })),
        };
        r.finish()?;
        Ok(parsed)
    }

    /// The hash the signer applied to the message (a `TPM_ALG_ID`).
    pub const fn hash_id(&self) -> u16 {
        match self {
            Self::Rsassa { hash, .. } | Self::Rsapss { hash, .. } | Self::Ecdsa { hash, .. } => {
                *hash
            }
        }
    }

    /// The hash, if it is one this verifier computes.
    pub const fn hash(&self) -> Option<HashAlg> {
        HashAlg::from_id(self.hash_id())
    }

    /// The signature scheme's name, for messages.
    pub const fn scheme_name(&self) -> &'static str {
        match self {
            Self::Rsassa { .. } => "RSASSA",
            Self::Rsapss { .. } => "RSAPSS",
            Self::Ecdsa { .. } => "ECDSA",
        }
    }

    /// Verifies this signature over `message` with `key`'s public key.
    ///
    /// # Errors
    /// [`SignatureError::KeyTypeMismatch`] for an RSA signature and an ECC
    /// key or the reverse; [`SignatureError::Unsupported`] for a hash or curve
    /// without an implementation (ECDSA-SHA-1 exists only for P-256);
    /// [`SignatureError::Invalid`] if it does not verify.
    pub fn verify(&self, key: &TpmtPublic, message: &[u8]) -> Result<(), SignatureError> {
        let hash = self
            .hash()
            .ok_or(SignatureError::Unsupported("hash algorithm"))?;
        match (self, key.key()) {
            (
                Self::Rsassa { sig, .. } | Self::Rsapss { sig, .. },
                PublicKeyParms::Rsa {
                    modulus, exponent, ..
                },
            ) => {
                let params = rsa_params(matches!(self, Self::Rsapss { .. }), hash)?;
                let n = strip_zeros(modulus);
                let e_value = if *exponent == 0 { 65_537 } else { *exponent };
                let e_bytes = e_value.to_be_bytes();
                let components = RsaPublicKeyComponents {
                    n,
                    e: strip_zeros(&e_bytes),
                };
                components
                    .verify(params, message, sig)
                    .map_err(|_| SignatureError::Invalid)
            }
            (Self::Ecdsa { r, s, .. }, PublicKeyParms::Ecc { curve, x, y, .. }) => {
                let (alg, len): (&sig::EcdsaVerificationAlgorithm, usize) = match (curve, hash) {
                    (EccCurve::NistP256, HashAlg::Sha1) => (&sig::ECDSA_P256_SHA1_ASN1, 32),
                    (EccCurve::NistP256, HashAlg::Sha256) => (&sig::ECDSA_P256_SHA256_ASN1, 32),
                    (EccCurve::NistP256, HashAlg::Sha384) => (&sig::ECDSA_P256_SHA384_ASN1, 32),
                    (EccCurve::NistP256, HashAlg::Sha512) => (&sig::ECDSA_P256_SHA512_ASN1, 32),
                    (EccCurve::NistP384, HashAlg::Sha256) => (&sig::ECDSA_P384_SHA256_ASN1, 48),
                    (EccCurve::NistP384, HashAlg::Sha384) => (&sig::ECDSA_P384_SHA384_ASN1, 48),
                    (EccCurve::NistP384, HashAlg::Sha512) => (&sig::ECDSA_P384_SHA512_ASN1, 48),
                    _ => return Err(SignatureError::Unsupported("ECDSA curve and hash")),
                };
                let point = sec1_point(x, y, len).ok_or(SignatureError::Invalid)?;
                let der = ecdsa_der_from_rs(r, s);
                UnparsedPublicKey::new(alg, point)
                    .verify(message, &der)
                    .map_err(|_| SignatureError::Invalid)
            }
            (_, key) => Err(SignatureError::KeyTypeMismatch {
                signature: self.scheme_name(),
                key: match key {
                    PublicKeyParms::Rsa { .. } => "an RSA",
                    PublicKeyParms::Ecc { .. } => "an ECC",
                },
            }),
        }
    }
}

fn rsa_params(pss: bool, hash: HashAlg) -> Result<&'static RsaParameters, SignatureError> {
    Ok(match (pss, hash) {
        (false, HashAlg::Sha1) => &sig::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        (false, HashAlg::Sha256) => &sig::RSA_PKCS1_2048_8192_SHA256,
        (false, HashAlg::Sha384) => &sig::RSA_PKCS1_2048_8192_SHA384,
        (false, HashAlg::Sha512) => &sig::RSA_PKCS1_2048_8192_SHA512,
        (true, HashAlg::Sha256) => &sig::RSA_PSS_2048_8192_SHA256,
        (true, HashAlg::Sha384) => &sig::RSA_PSS_2048_8192_SHA384,
        (true, HashAlg::Sha512) => &sig::RSA_PSS_2048_8192_SHA512,
        (true, _) => return Err(SignatureError::Unsupported("RSA-PSS with SHA-1")),
    })
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// `04 ‖ x ‖ y` with each coordinate padded to `len` bytes.
fn sec1_point(x: &[u8], y: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut point = vec![0x04];
    for coordinate in [x, y] {
        let significant = strip_zeros(coordinate);
        point.resize(point.len() + len.checked_sub(significant.len())?, 0);
        point.extend_from_slice(significant);
    }
    Some(point)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ecdsa_and_rsassa_signatures() {
        let bytes = [
            0x00, 0x18, 0x00, 0x0b, 0x00, 0x01, 0x05, 0x00, 0x02, 0x06, 0x07,
        ];
        assert_eq!(
            TpmtSignature::parse(&bytes).unwrap(),
            TpmtSignature::Ecdsa {
                hash: alg::SHA256,
                r: vec![5],
                s: vec![6, 7]
            }
        );
        let bytes = [0x00, 0x14, 0x00, 0x04, 0x00, 0x02, 0xaa, 0xbb];
        assert_eq!(
            TpmtSignature::parse(&bytes).unwrap(),
            TpmtSignature::Rsassa {
                hash: alg::SHA1,
                sig: vec![0xaa, 0xbb]
            }
        );
    }

    #[test]
    fn refuses_null_and_hmac_signatures() {
        assert_eq!(
            TpmtSignature::parse(&[0x00, 0x10]).unwrap_err().problem(),
            ParseProblem::Unsupported { value: 0x0010 }
        );
        assert_eq!(
            TpmtSignature::parse(&[0x00, 0x05, 0x00, 0x0b])
                .unwrap_err()
                .field(),
            "sigAlg"
        );
    }
}
