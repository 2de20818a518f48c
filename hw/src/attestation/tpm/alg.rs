//! TPM algorithm identifiers (TCG Algorithm Registry) and the hashes the
//! verifier computes.

use aws_lc_rs::digest;

/// `TPM_ALG_RSA`.
pub(crate) const RSA: u16 = 0x0001;
/// `TPM_ALG_TDES`.
pub(crate) const TDES: u16 = 0x0003;
/// `TPM_ALG_SHA1`.
pub(crate) const SHA1: u16 = 0x0004;
/// `TPM_ALG_AES`.
pub(crate) const AES: u16 = 0x0006;
/// `TPM_ALG_MGF1`.
pub(crate) const MGF1: u16 = 0x0007;
/// `TPM_ALG_SHA256`.
pub(crate) const SHA256: u16 = 0x000B;
/// `TPM_ALG_SHA384`.
pub(crate) const SHA384: u16 = 0x000C;
/// `TPM_ALG_SHA512`.
pub(crate) const SHA512: u16 = 0x000D;
/// `TPM_ALG_NULL`.
pub(crate) const NULL: u16 = 0x0010;
/// `TPM_ALG_SM4`.
pub(crate) const SM4: u16 = 0x0013;
/// `TPM_ALG_RSASSA`.
pub(crate) const RSASSA: u16 = 0x0014;
/// `TPM_ALG_RSAES`.
pub(crate) const RSAES: u16 = 0x0015;
/// `TPM_ALG_RSAPSS`.
pub(crate) const RSAPSS: u16 = 0x0016;
/// `TPM_ALG_OAEP`.
pub(crate) const OAEP: u16 = 0x0017;
/// `TPM_ALG_ECDSA`.
pub(crate) const ECDSA: u16 = 0x0018;
/// `TPM_ALG_ECDH`.
pub(crate) const ECDH: u16 = 0x0019;
/// `TPM_ALG_ECDAA`.
pub(crate) const ECDAA: u16 = 0x001A;
/// `TPM_ALG_SM2`.
pub(crate) const SM2: u16 = 0x001B;
/// `TPM_ALG_ECSCHNORR`.
pub(crate) const ECSCHNORR: u16 = 0x001C;
/// `TPM_ALG_ECMQV`.
pub(crate) const ECMQV: u16 = 0x001D;
/// `TPM_ALG_KDF1_SP800_56A`.
pub(crate) const KDF1_SP800_56A: u16 = 0x0020;
/// `TPM_ALG_KDF2`.
pub(crate) const KDF2: u16 = 0x0021;
/// `TPM_ALG_KDF1_SP800_108`.
pub(crate) const KDF1_SP800_108: u16 = 0x0022;
/// `TPM_ALG_ECC`.
pub(crate) const ECC: u16 = 0x0023;
/// `TPM_ALG_CAMELLIA`.
pub(crate) const CAMELLIA: u16 = 0x0026;

/// A hash algorithm the verifier can compute (names, KDFs, signatures).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashAlg {
    /// `TPM_ALG_SHA1`: parsed and verified for old evidence, refused by
    /// enrollment (collisions are practical).
    Sha1,
    /// `TPM_ALG_SHA256`.
    Sha256,
    /// `TPM_ALG_SHA384`.
    Sha384,
    /// `TPM_ALG_SHA512`.
    Sha512,
}

impl HashAlg {
    /// The algorithm for a `TPM_ALG_ID`, if it is one of the hashes above.
    pub const fn from_id(id: u16) -> Option<Self> {
        match id {
            SHA1 => Some(Self::Sha1),
            SHA256 => Some(Self::Sha256),
            SHA384 => Some(Self::Sha384),
            SHA512 => Some(Self::Sha512),
            _ => None,
        }
    }

    /// Its `TPM_ALG_ID`.
    pub const fn id(self) -> u16 {
        match self {
            Self::Sha1 => SHA1,
            Self::Sha256 => SHA256,
            Self::Sha384 => SHA384,
            Self::Sha512 => SHA512,
        }
    }

    /// The digest length in bytes.
    pub const fn digest_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// A short name for messages.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA-1",
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
        }
    }

    pub(crate) fn digest_alg(self) -> &'static digest::Algorithm {
        match self {
            Self::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
        }
    }

    pub(crate) fn hmac_alg(self) -> aws_lc_rs::hmac::Algorithm {
        match self {
            Self::Sha1 => aws_lc_rs::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => aws_lc_rs::hmac::HMAC_SHA256,
            Self::Sha384 => aws_lc_rs::hmac::HMAC_SHA384,
            Self::Sha512 => aws_lc_rs::hmac::HMAC_SHA512,
        }
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest_alg(), data).as_ref().to_vec()
    }
}
