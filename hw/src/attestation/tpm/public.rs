//! `TPMT_PUBLIC` (TCG TPM 2.0 Part 2 §12.2.4): a TPM object's public area,
//! and its name `nameAlg ‖ H_nameAlg(TPMT_PUBLIC)` (Part 1 §16).
//!
//! Only asymmetric objects (RSA and ECC) are parsed: attestation and device
//! keys are never symmetric. Every field is read; nothing may follow.

use super::alg::{self, HashAlg};
use super::marshal::{ParseError, ParseProblem, Reader};
use crate::signature::left_pad;

const STRUCTURE: &str = "TPMT_PUBLIC";
/// `sizeof(TPMU_HA)`: the largest digest (SHA-512).
const MAX_DIGEST: usize = 64;
/// `MAX_RSA_KEY_BYTES` for RSA-4096.
const MAX_RSA_KEY_BYTES: usize = 512;
/// `MAX_ECC_KEY_BYTES`, generously (BN-638 needs 80).
const MAX_ECC_KEY_BYTES: usize = 128;

/// A parsed `TPMT_PUBLIC` of an RSA or ECC object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TpmtPublic {
    name_alg: HashAlg,
    attributes: ObjectAttributes,
    auth_policy: Vec<u8>,
    key: PublicKeyParms,
    marshalled: Vec<u8>,
}

/// `TPMA_OBJECT` (Part 2 §8.3): the object's attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectAttributes(u32);

/// The type-specific parameters and public key of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicKeyParms {
    /// `TPM_ALG_RSA`: `TPMS_RSA_PARMS` and the modulus.
    Rsa {
        /// `symmetric`: set for storage (parent) keys.
        symmetric: Option<SymDef>,
        /// `scheme`.
        scheme: KeyScheme,
        /// `keyBits`.
        key_bits: u16,
        /// `exponent`: 0 means 65537.
        exponent: u32,
        /// `unique`: the modulus, big-endian.
        modulus: Vec<u8>,
    },
    /// `TPM_ALG_ECC`: `TPMS_ECC_PARMS` and the public point.
    Ecc {
        /// `symmetric`: set for storage (parent) keys.
        symmetric: Option<SymDef>,
        /// `scheme`.
        scheme: KeyScheme,
        /// `curveID`.
        curve: EccCurve,
        /// `kdf` scheme and its hash (`TPM_ALG_NULL` → `None`).
        kdf: Option<(u16, u16)>,
        /// `unique.x`, big-endian.
        x: Vec<u8>,
        /// `unique.y`, big-endian.
        y: Vec<u8>,
    },
}

/// `TPMT_SYM_DEF_OBJECT` when not `TPM_ALG_NULL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SymDef {
    /// `algorithm` (`TPM_ALG_AES`, …).
    pub algorithm: u16,
    /// `keyBits`.
    pub key_bits: u16,
    /// `mode` (`TPM_ALG_CFB`, …).
    pub mode: u16,
}

/// `TPMT_RSA_SCHEME` / `TPMT_ECC_SCHEME`: the key's fixed scheme, if any.
/// Hash members are raw `TPM_ALG_ID`s: a key may name a hash this verifier
/// does not compute, which matters only if it is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyScheme {
    /// `TPM_ALG_NULL`: the scheme is chosen per operation.
    Null,
    /// `TPM_ALG_RSASSA` with its hash.
    Rsassa(u16),
    /// `TPM_ALG_RSAPSS` with its hash.
    Rsapss(u16),
    /// `TPM_ALG_RSAES`.
    Rsaes,
    /// `TPM_ALG_OAEP` with its hash.
    Oaep(u16),
    /// `TPM_ALG_ECDSA` with its hash.
    Ecdsa(u16),
    /// `TPM_ALG_ECDH` with its hash.
    Ecdh(u16),
    /// `TPM_ALG_ECDAA` with its hash and count.
    Ecdaa(u16, u16),
    /// `TPM_ALG_SM2` with its hash.
    Sm2(u16),
    /// `TPM_ALG_ECSCHNORR` with its hash.
    Ecschnorr(u16),
    /// `TPM_ALG_ECMQV` with its hash.
    Ecmqv(u16),
}

/// `TPM_ECC_CURVE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EccCurve {
    /// `TPM_ECC_NIST_P256`.
    NistP256,
    /// `TPM_ECC_NIST_P384`.
    NistP384,
    /// `TPM_ECC_NIST_P521`.
    NistP521,
    /// Any other curve (BN, SM2…), by its identifier.
    Other(u16),
}

impl EccCurve {
    fn from_id(id: u16) -> Self {
        match id {
            0x0003 => Self::NistP256,
            0x0004 => Self::NistP384,
            0x0005 => Self::NistP521,
            other => Self::Other(other),
        }
    }

    /// The coordinate length in bytes, for the curves this verifier uses.
    pub const fn coordinate_len(self) -> Option<usize> {
        match self {
            Self::NistP256 => Some(32),
            Self::NistP384 => Some(48),
            Self::NistP521 => Some(66),
            Self::Other(_) => None,
        }
    }
}

impl ObjectAttributes {
    /// `fixedTPM` (bit 1): the object cannot be duplicated.
    pub const FIXED_TPM: u32 = 1 << 1;
    /// `stClear` (bit 2).
    pub const ST_CLEAR: u32 = 1 << 2;
    /// `fixedParent` (bit 4): the object's parent cannot change.
    pub const FIXED_PARENT: u32 = 1 << 4;
    /// `sensitiveDataOrigin` (bit 5): the TPM generated the private part.
    pub const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
    /// `userWithAuth` (bit 6).
    pub const USER_WITH_AUTH: u32 = 1 << 6;
    /// `adminWithPolicy` (bit 7).
    pub const ADMIN_WITH_POLICY: u32 = 1 << 7;
    /// `noDA` (bit 10).
    pub const NO_DA: u32 = 1 << 10;
    /// `encryptedDuplication` (bit 11).
    pub const ENCRYPTED_DUPLICATION: u32 = 1 << 11;
    /// `restricted` (bit 16).
    pub const RESTRICTED: u32 = 1 << 16;
    /// `decrypt` (bit 17).
    pub const DECRYPT: u32 = 1 << 17;
    /// `sign` / `encrypt` (bit 18).
    pub const SIGN: u32 = 1 << 18;
    /// `x509sign` (bit 19).
    pub const X509_SIGN: u32 = 1 << 19;

    /// Attributes from their `TPMA_OBJECT` bits.
    pub const fn from_bits(bits: u32) -> Self {
        Self(bits)
    }

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every bit of `mask` is set.
    pub const fn contains(self, mask: u32) -> bool {
        self.0 & mask == mask
    }

    /// `fixedTPM`.
    pub const fn fixed_tpm(self) -> bool {
        self.contains(Self::FIXED_TPM)
    }
    /// `fixedParent`.
    pub const fn fixed_parent(self) -> bool {
        self.contains(Self::FIXED_PARENT)
    }
    /// `sensitiveDataOrigin`.
    pub const fn sensitive_data_origin(self) -> bool {
        self.contains(Self::SENSITIVE_DATA_ORIGIN)
    }
    /// `userWithAuth`.
    pub const fn user_with_auth(self) -> bool {
        self.contains(Self::USER_WITH_AUTH)
    }
    /// `restricted`.
    pub const fn restricted(self) -> bool {
        self.contains(Self::RESTRICTED)
    }
    /// `decrypt`.
    pub const fn decrypt(self) -> bool {
        self.contains(Self::DECRYPT)
    }
    /// `sign`.
    pub const fn sign(self) -> bool {
        self.contains(Self::SIGN)
    }

    /// The names of the set attributes, for messages and records.
    pub fn names(self) -> Vec<&'static str> {
        const NAMES: [(u32, &str); 12] = [
            (ObjectAttributes::FIXED_TPM, "fixedTPM"),
            (ObjectAttributes::ST_CLEAR, "stClear"),
            (ObjectAttributes::FIXED_PARENT, "fixedParent"),
            (
                ObjectAttributes::SENSITIVE_DATA_ORIGIN,
                "sensitiveDataOrigin",
            ),
            (ObjectAttributes::USER_WITH_AUTH, "userWithAuth"),
            (ObjectAttributes::ADMIN_WITH_POLICY, "adminWithPolicy"),
            (ObjectAttributes::NO_DA, "noDA"),
            (
                ObjectAttributes::ENCRYPTED_DUPLICATION,
                "encryptedDuplication",
            ),
            (ObjectAttributes::RESTRICTED, "restricted"),
            (ObjectAttributes::DECRYPT, "decrypt"),
            (ObjectAttributes::SIGN, "sign"),
            (ObjectAttributes::X509_SIGN, "x509sign"),
        ];
        NAMES
            .iter()
            .filter(|(bit, _)| self.contains(*bit))
            .map(|(_, name)| *name)
            .collect()
    }
}

impl TpmtPublic {
    /// Parses a marshalled `TPMT_PUBLIC` (the contents of a `TPM2B_PUBLIC`).
    ///
    /// # Errors
    /// A [`ParseError`] naming the field: truncated or trailing input, a
    /// `TPM2B` over its maximum, a `nameAlg` that is not SHA-1/256/384/512,
    /// an object type other than RSA or ECC, or an unknown scheme.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(bytes, STRUCTURE);
        let object_type = r.u16("type")?;
        let name_alg_id = r.u16("nameAlg")?;
        // A NULL nameAlg has no name, and so cannot be certified or activated.
        let name_alg = HashAlg::from_id(name_alg_id)
            .ok_or_else(|| r.error("nameAlg", ParseProblem::Unsupported { value: name_alg_id }))?;
        let attributes = ObjectAttributes(r.u32("objectAttributes")?);
        let auth_policy = r.tpm2b("authPolicy", MAX_DIGEST)?.to_vec();
        let key = match object_type {
            alg::RSA => {
                let symmetric = sym_def_object(&mut r)?;
                let scheme = key_scheme(&mut r, "parameters.scheme", RSA_SCHEMES)?;
                let key_bits = r.u16("parameters.keyBits")?;
                let exponent = r.u32("parameters.exponent")?;
                let modulus = r.tpm2b("unique.rsa", MAX_RSA_KEY_BYTES)?.to_vec();
                PublicKeyParms::Rsa {
                    symmetric,
                    scheme,
                    key_bits,
                    exponent,
                    modulus,
                }
            }
            alg::ECC => {
                let symmetric = sym_def_object(&mut r)?;
                let scheme = key_scheme(&mut r, "parameters.scheme", ECC_SCHEMES)?;
                let curve = EccCurve::from_id(r.u16("parameters.curveID")?);
                let kdf = kdf_scheme(&mut r)?;
                let x = r.tpm2b("unique.ecc.x", MAX_ECC_KEY_BYTES)?.to_vec();
                let y = r.tpm2b("unique.ecc.y", MAX_ECC_KEY_BYTES)?.to_vec();
                PublicKeyParms::Ecc {
                    symmetric,
                    scheme,
                    curve,
                    kdf,
                    x,
                    y,
                }
            }
            other => {
                return Err(r.error("type", ParseProblem::Unsupported { value: other }));
            }
        };
        r.finish()?;
        Ok(Self {
            name_alg,
            attributes,
            auth_policy,
            key,
            marshalled: bytes.to_vec(),
        })
    }

    /// `nameAlg`.
    pub const fn name_alg(&self) -> HashAlg {
        self.name_alg
    }

    /// `objectAttributes`.
    pub const fn attributes(&self) -> ObjectAttributes {
        self.attributes
    }

    /// `authPolicy`.
    pub fn auth_policy(&self) -> &[u8] {
        &self.auth_policy
    }

    /// The parameters and public key.
    pub const fn key(&self) -> &PublicKeyParms {
        &self.key
    }

    /// The key's fixed scheme (`TPM_ALG_NULL` if none).
    pub const fn scheme(&self) -> KeyScheme {
        match &self.key {
            PublicKeyParms::Rsa { scheme, .. } | PublicKeyParms::Ecc { scheme, .. } => *scheme,
        }
    }

    /// The marshalled bytes this was parsed from.
    pub fn marshalled(&self) -> &[u8] {
        &self.marshalled
    }

    /// The object's name: `nameAlg` (2 bytes, big-endian) ‖
    /// `H_nameAlg(TPMT_PUBLIC)` (Part 1 §16). What `TPM2_Certify` reports as
    /// the certified name and what `TPM2_MakeCredential` binds to.
    pub fn name(&self) -> Vec<u8> {
        let mut name = self.name_alg.id().to_be_bytes().to_vec();
        name.extend_from_slice(&self.name_alg.digest(&self.marshalled));
        name
    }

    /// For an ECC P-256 key, its point as fixed 32-byte coordinates (the TPM
    /// may omit leading zeros).
    pub fn p256_point(&self) -> Option<([u8; 32], [u8; 32])> {
        match &self.key {
            PublicKeyParms::Ecc {
                curve: EccCurve::NistP256,
                x,
                y,
                ..
            } => Some((left_pad(x)?, left_pad(y)?)),
            _ => None,
        }
    }
}

/// `TPMT_SYM_DEF_OBJECT` (Part 2 §11.1.7).
fn sym_def_object(r: &mut Reader<'_>) -> Result<Option<SymDef>, ParseError> {
    let algorithm = r.u16("parameters.symmetric.algorithm")?;
    match algorithm {
        alg::NULL => Ok(None),
        alg::AES | alg::SM4 | alg::CAMELLIA | alg::TDES => Ok(Some(SymDef {
            algorithm,
            key_bits: r.u16("parameters.symmetric.keyBits")?,
            mode: r.u16("parameters.symmetric.mode")?,
        })),
        other => Err(r.error(
            "parameters.symmetric.algorithm",
            ParseProblem::Unsupported { value: other },
        )),
    }
}

const RSA_SCHEMES: &[u16] = &[alg::NULL, alg::RSASSA, alg::RSAPSS, alg::RSAES, alg::OAEP];
const ECC_SCHEMES: &[u16] = &[
    alg::NULL,
    alg::ECDSA,
    alg::ECDH,
    alg::ECDAA,
    alg::SM2,
    alg::ECSCHNORR,
    alg::ECMQV,
];

/// `TPMT_RSA_SCHEME` / `TPMT_ECC_SCHEME` (Part 2 §11.2.4, §11.2.5): the
/// scheme selector, then its details (a hash, and a count for ECDAA).
fn key_scheme(
    r: &mut Reader<'_>,
    field: &'static str,
    allowed: &[u16],
) -> Result<KeyScheme, ParseError> {
    let scheme = r.u16(field)?;
    if !allowed.contains(&scheme) {
        return Err(r.error(field, ParseProblem::Unsupported { value: scheme }));
    }
    let hash_field = "parameters.scheme.details.hashAlg";
    Ok(match scheme {
        alg::RSASSA => KeyScheme::Rsassa(r.u16(hash_field)?),
        alg::RSAPSS => KeyScheme::Rsapss(r.u16(hash_field)?),
        alg::RSAES => KeyScheme::Rsaes,
        alg::OAEP => KeyScheme::Oaep(r.u16(hash_field)?),
        alg::ECDSA => KeyScheme::Ecdsa(r.u16(hash_field)?),
        alg::ECDH => KeyScheme::Ecdh(r.u16(hash_field)?),
        alg::ECDAA => KeyScheme::Ecdaa(
            r.u16(hash_field)?,
            r.u16("parameters.scheme.details.count")?,
        ),
        alg::SM2 => KeyScheme::Sm2(r.u16(hash_field)?),
        alg::ECSCHNORR => KeyScheme::Ecschnorr(r.u16(hash_field)?),
        alg::ECMQV => KeyScheme::Ecmqv(r.u16(hash_field)?),
        _ => KeyScheme::Null,
    })
}

/// `TPMT_KDF_SCHEME` (Part 2 §11.2.3.3).
fn kdf_scheme(r: &mut Reader<'_>) -> Result<Option<(u16, u16)>, ParseError> {
    let scheme = r.u16("parameters.kdf.scheme")?;
    match scheme {
        alg::NULL => Ok(None),
        alg::MGF1 | alg::KDF1_SP800_56A | alg::KDF2 | alg::KDF1_SP800_108 => {
            Ok(Some((scheme, r.u16("parameters.kdf.details.hashAlg")?)))
        }
        other => Err(r.error(
            "parameters.kdf.scheme",
            ParseProblem::Unsupported { value: other },
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a marshalled ECC P-256 `TPMT_PUBLIC` (SHA-256 name, NULL
    /// symmetric, the given scheme bytes, NULL KDF).
    fn ecc_p256_public(attributes: u32, scheme: &[u8], x: &[u8], y: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&alg::ECC.to_be_bytes());
        out.extend_from_slice(&alg::SHA256.to_be_bytes());
        out.extend_from_slice(&attributes.to_be_bytes());
        out.extend_from_slice(&[0, 0]); // empty authPolicy
        out.extend_from_slice(&alg::NULL.to_be_bytes()); // symmetric
        out.extend_from_slice(scheme);
        out.extend_from_slice(&[0x00, 0x03]); // NIST P-256
        out.extend_from_slice(&alg::NULL.to_be_bytes()); // kdf
        super::super::marshal::put_tpm2b(&mut out, x);
        super::super::marshal::put_tpm2b(&mut out, y);
        out
    }

    const DEVICE_KEY: u32 = ObjectAttributes::FIXED_TPM
        | ObjectAttributes::FIXED_PARENT
        | ObjectAttributes::SENSITIVE_DATA_ORIGIN
        | ObjectAttributes::USER_WITH_AUTH
        | ObjectAttributes::SIGN;

    #[test]
    fn parses_an_ecc_p256_signing_key_and_computes_its_name() {
        let bytes = ecc_p256_public(DEVICE_KEY, &[0x00, 0x10], &[1; 32], &[2; 32]);
        let public = TpmtPublic::parse(&bytes).unwrap();
        assert_eq!(public.name_alg(), HashAlg::Sha256);
        assert_eq!(
            public.attributes().names(),
            [
                "fixedTPM",
                "fixedParent",
                "sensitiveDataOrigin",
                "userWithAuth",
                "sign"
            ]
        );
        assert_eq!(public.scheme(), KeyScheme::Null);
        assert_eq!(public.p256_point(), Some(([1; 32], [2; 32])));
        let name = public.name();
        assert_eq!(name.get(..2), Some(&[0x00, 0x0b][..]));
        assert_eq!(
            name.get(2..),
            Some(HashAlg::Sha256.digest(&bytes).as_slice())
        );
    }

    #[test]
    fn pads_short_coordinates() {
        let bytes = ecc_p256_public(DEVICE_KEY, &[0x00, 0x10], &[1; 31], &[2; 32]);
        let (x, _) = TpmtPublic::parse(&bytes).unwrap().p256_point().unwrap();
        assert_eq!(x[0], 0);
        assert_eq!(x[1..], [1; 31]);
        let bytes = ecc_p256_public(DEVICE_KEY, &[0x00, 0x10], &[1; 33], &[2; 32]);
        assert_eq!(TpmtPublic::parse(&bytes).unwrap().p256_point(), None);
    }

    #[test]
    fn parses_an_ecdsa_scheme() {
        let bytes = ecc_p256_public(DEVICE_KEY, &[0x00, 0x18, 0x00, 0x0b], &[1; 32], &[2; 32]);
        let public = TpmtPublic::parse(&bytes).unwrap();
        assert_eq!(public.scheme(), KeyScheme::Ecdsa(alg::SHA256));
    }

    #[test]
    fn refuses_symmetric_objects_null_name_alg_and_trailing_bytes() {
        let mut bytes = ecc_p256_public(DEVICE_KEY, &[0x00, 0x10], &[1; 32], &[2; 32]);
        bytes[1] = 0x25; // SYMCIPHER
        let err = TpmtPublic::parse(&bytes).unwrap_err();
        assert_eq!(
            (err.field(), err.problem()),
            ("type", ParseProblem::Unsupported { value: 0x25 })
        );

        let mut bytes = ecc_p256_public(DEVICE_KEY, &[0x00, 0x10], &[1; 32], &[2; 32]);
        bytes[3] = 0x10; // nameAlg NULL
        assert_eq!(TpmtPublic::parse(&bytes).unwrap_err().field(), "nameAlg");

        let mut bytes = ecc_p256_public(DEVICE_KEY, &[0x00, 0x10], &[1; 32], &[2; 32]);
        bytes.push(0);
        assert_eq!(
            TpmtPublic::parse(&bytes).unwrap_err().problem(),
            ParseProblem::TrailingBytes { count: 1 }
        );
    }

    #[test]
    fn every_truncation_is_refused() {
        let bytes = ecc_p256_public(DEVICE_KEY, &[0x00, 0x18, 0x00, 0x0b], &[1; 32], &[2; 32]);
        for len in 0..bytes.len() {
            assert_eq!(
                TpmtPublic::parse(&bytes[..len]).unwrap_err().problem(),
                ParseProblem::Truncated,
                "prefix of {len} bytes"
            );
        }
    }
}
