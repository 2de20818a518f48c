//! Software `TPM2_MakeCredential` (TCG TPM 2.0 Part 1 §24, Part 3 §12.6):
//! wraps a secret so that only the TPM holding the EK, with the named AK
//! loaded, recovers it with `TPM2_ActivateCredential`.
//!
//! 1. A seed is protected to the EK (Part 1 Annex B.10.3 / C.6.4): RSA EKs
//!    get random seed bytes under RSA-OAEP with the label `"IDENTITY\0"`;
//!    ECC EKs get an ephemeral ECDH, `seed = KDFe(nameAlg, Z, "IDENTITY",
//!    ephemeral x, EK x)`, and the ephemeral point as the encrypted secret.
//! 2. `symKey = KDFa(nameAlg, seed, "STORAGE", akName, "", symBits)`;
//!    `encIdentity = AES-CFB(symKey, IV = 0, TPM2B(secret))`.
//! 3. `hmacKey = KDFa(nameAlg, seed, "INTEGRITY", "", "", digestBits)`;
//!    `integrity = HMAC(hmacKey, encIdentity ‖ akName)`.
//!
//! `nameAlg` and the symmetric cipher are the EK's, which the issuer does not
//! see (it has only the certificate): they follow from the key type through
//! the TCG EK Credential Profile templates (see [`EkPublicKey`]).

use aws_lc_rs::agreement::{self, UnparsedPublicKey};
use aws_lc_rs::cipher::{AES_128, AES_256, EncryptingKey, EncryptionContext, UnboundCipherKey};
use aws_lc_rs::hmac;
use rsa::rand_core::TryCryptoRng;
use rsa::{BoxedUint, Oaep, RsaPublicKey, traits::PaddingScheme};
use zeroize::Zeroizing;

use super::alg::HashAlg;
use super::marshal::put_tpm2b;
use crate::attestation::evidence::{Bytes, TpmActivationChallenge};

/// The OAEP label and KDFe use for the seed (Part 1 §24.4).
const IDENTITY: &[u8] = b"IDENTITY";
/// The KDFa label for the symmetric key.
const STORAGE: &[u8] = b"STORAGE";
/// The KDFa label for the HMAC key.
const INTEGRITY: &[u8] = b"INTEGRITY";
/// Attempts at drawing an ephemeral ECC scalar (a draw fails only when it is
/// zero or not below the group order: about 2^-32 for P-256, or never).
const SCALAR_ATTEMPTS: usize = 8;

/// An EK public key and the EK template parameters that go with it.
///
/// The issuer knows the EK only from its certificate, so the template is
/// inferred from the key (TCG EK Credential Profile 2.5, §2.2.1):
///
/// | key | template | nameAlg | symmetric |
/// |---|---|---|---|
/// | RSA 2048 | L-1 / H-1 | SHA-256 | AES-128-CFB |
/// | RSA 3072 | H-4 | SHA-384 | AES-256-CFB |
/// | ECC NIST P-256 | L-2 / H-2 | SHA-256 | AES-128-CFB |
/// | ECC NIST P-384 | H-3 (swtpm's ECC EK) | SHA-384 | AES-256-CFB |
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EkPublicKey {
    key: EkKey,
    name_alg: HashAlg,
    sym_key_bits: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum EkKey {
    Rsa(RsaPublicKey),
    EcP256 { point: Vec<u8> },
    EcP384 { point: Vec<u8> },
}

/// Why `MakeCredential` could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The EK's key is of a size or curve no EK template uses.
    #[error("no TCG EK template has this key: {0}")]
    UnsupportedEk(String),
    /// The EK's public key is invalid (not a point on its curve, a bad
    /// modulus).
    #[error("the EK public key is invalid: {0}")]
    InvalidEk(&'static str),
    /// The secret or name does not fit the structures (at most 64 bytes
    /// each, a name at least 2).
    #[error("the credential secret or the object name has an invalid size")]
    InvalidInput,
    /// The random number generator failed.
    #[error("the random number generator failed")]
    Random,
    /// A cryptographic primitive failed unexpectedly.
    #[error("MakeCredential failed in {0}")]
    Crypto(&'static str),
}

impl EkPublicKey {
    /// An RSA EK from its modulus and exponent (big-endian).
    ///
    /// # Errors
    /// [`CredentialError::UnsupportedEk`] for sizes other than 2048 and 3072
    /// bits; [`CredentialError::InvalidEk`] for an invalid key.
    pub fn rsa(n: &[u8], e: &[u8]) -> Result<Self, CredentialError> {
        let n = strip_zeros(n);
        let (name_alg, sym_key_bits) = match n.len() {
            256 => (HashAlg::Sha256, 128),
            384 => (HashAlg::Sha384, 256),
            other => {
                return Err(CredentialError::UnsupportedEk(format!(
                    "RSA-{}",
                    other.saturating_mul(8)
                )));
            }
        };
        let n_bits =
            u32::try_from(n.len() * 8).map_err(|_| CredentialError::InvalidEk("modulus"))?;
        let n = BoxedUint::from_be_slice(n, n_bits)
            .map_err(|_| CredentialError::InvalidEk("modulus"))?;
        let e = BoxedUint::from_be_slice_vartime(e);
        let key = RsaPublicKey::new(n, e).map_err(|_| CredentialError::InvalidEk("RSA key"))?;
        Ok(Self {
            key: EkKey::Rsa(key),
            name_alg,
            sym_key_bits,
        })
    }

    /// A NIST P-256 EK from its uncompressed SEC 1 point.
    ///
    /// # Errors
    /// [`CredentialError::InvalidEk`] if it is not 65 bytes starting 0x04.
    pub fn ec_p256(sec1: &[u8]) -> Result<Self, CredentialError> {
        Ok(Self {
            key: EkKey::EcP256 {
                point: uncompressed(sec1, 32)?,
            },
            name_alg: HashAlg::Sha256,
            sym_key_bits: 128,
        })
    }

    /// A NIST P-384 EK from its uncompressed SEC 1 point.
    ///
    /// # Errors
    /// [`CredentialError::InvalidEk`] if it is not 97 bytes starting 0x04.
    pub fn ec_p384(sec1: &[u8]) -> Result<Self, CredentialError> {
        Ok(Self {
            key: EkKey::EcP384 {
                point: uncompressed(sec1, 48)?,
            },
            name_alg: HashAlg::Sha384,
            sym_key_bits: 256,
        })
    }

    /// The EK template's `nameAlg`.
    pub const fn name_alg(&self) -> HashAlg {
        self.name_alg
    }

    /// The EK template's AES key size in bits.
    pub const fn sym_key_bits(&self) -> u16 {
        self.sym_key_bits
    }

    /// A short description (`RSA-2048`, `ECC P-384`), for records.
    pub fn describe(&self) -> String {
        match &self.key {
            EkKey::Rsa(key) => {
                use rsa::traits::PublicKeyParts;
                format!("RSA-{}", key.n().bit_width())
            }
            EkKey::EcP256 { .. } => "ECC NIST P-256".to_owned(),
            EkKey::EcP384 { .. } => "ECC NIST P-384".to_owned(),
        }
    }
}

/// `TPM2_MakeCredential` of `secret` for the object named `object_name` (an
/// AK name: `nameAlg ‖ digest`), protected to `ek`.
///
/// `rng` supplies the seed (RSA: the seed bytes, then the OAEP seed; ECC: the
/// ephemeral scalar). Production passes the system RNG; the known-answer test
/// passes zeros.
///
/// # Errors
/// [`CredentialError::InvalidInput`] for a secret over 64 bytes or a name
/// over 66 or under 2; [`CredentialError::Random`] if `rng` fails;
/// [`CredentialError::InvalidEk`] if the EK key is unusable.
pub fn make_credential<R: TryCryptoRng + ?Sized>(
    ek: &EkPublicKey,
    object_name: &[u8],
    secret: &[u8],
    rng: &mut R,
) -> Result<TpmActivationChallenge, CredentialError> {
    if secret.len() > 64 || !(2..=66).contains(&object_name.len()) {
        return Err(CredentialError::InvalidInput);
    }
    let (seed, encrypted_secret) = match &ek.key {
        EkKey::Rsa(key) => rsa_seed(key, ek, rng)?,
        EkKey::EcP256 { point } => ecc_seed(&agreement::ECDH_P256, point, 32, ek.name_alg, rng)?,
        EkKey::EcP384 { point } => ecc_seed(&agreement::ECDH_P384, point, 48, ek.name_alg, rng)?,
    };

    let sym_key = kdfa(
        ek.name_alg,
        &seed,
        STORAGE,
        object_name,
        &[],
        usize::from(ek.sym_key_bits),
    );
    let mut enc_identity = Zeroizing::new(Vec::with_capacity(secret.len() + 2));
    put_tpm2b(&mut enc_identity, secret);
    aes_cfb_encrypt(&sym_key, &mut enc_identity)?;

    let hmac_key = kdfa(
        ek.name_alg,
        &seed,
        INTEGRITY,
        &[],
        &[],
        ek.name_alg.digest_len() * 8,
    );
    let key = hmac::Key::new(ek.name_alg.hmac_alg(), &hmac_key);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(&enc_identity);
    ctx.update(object_name);
    let integrity = ctx.sign();

    let mut credential_blob = Vec::with_capacity(2 + integrity.as_ref().len() + enc_identity.len());
    put_tpm2b(&mut credential_blob, integrity.as_ref());
    credential_blob.extend_from_slice(&enc_identity);
    Ok(TpmActivationChallenge {
        credential_blob: Bytes(credential_blob),
        encrypted_secret: Bytes(encrypted_secret),
    })
}

/// RSA: a seed as long as the symmetric key (TCG EK Credential Profile
/// §2.1.5.1; go-tpm's `credactivation` does the same), under RSA-OAEP with
/// the EK's nameAlg and the label `"IDENTITY\0"`.
fn rsa_seed<R: TryCryptoRng + ?Sized>(
    key: &RsaPublicKey,
    ek: &EkPublicKey,
    rng: &mut R,
) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), CredentialError> {
    let mut seed = Zeroizing::new(vec![0u8; usize::from(ek.sym_key_bits / 8)]);
    rng.try_fill_bytes(&mut seed)
        .map_err(|_| CredentialError::Random)?;
    let label = with_nul(IDENTITY);
    let encrypted = match ek.name_alg {
        HashAlg::Sha384 => Oaep::<sha2::Sha384>::new_with_label(label).encrypt(rng, key, &seed),
        _ => Oaep::<sha2::Sha256>::new_with_label(label).encrypt(rng, key, &seed),
    }
    .map_err(|_| CredentialError::Crypto("RSA-OAEP"))?;
    Ok((seed, encrypted))
}

/// ECC: an ephemeral key on the EK's curve; `Z` is the x coordinate of the
/// shared point; the encrypted secret is the ephemeral `TPMS_ECC_POINT`.
fn ecc_seed<R: TryCryptoRng + ?Sized>(
    curve: &'static agreement::Algorithm,
    ek_point: &[u8],
    coordinate_len: usize,
    name_alg: HashAlg,
    rng: &mut R,
) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), CredentialError> {
    let ephemeral = ephemeral_key(curve, coordinate_len, rng)?;
    let public = ephemeral
        .compute_public_key()
        .map_err(|_| CredentialError::Crypto("ECDH public key"))?;
    let (ephemeral_x, ephemeral_y) = coordinates(public.as_ref(), coordinate_len)
        .ok_or(CredentialError::Crypto("ECDH public key"))?;
    let (ek_x, _) =
        coordinates(ek_point, coordinate_len).ok_or(CredentialError::InvalidEk("point"))?;
    let seed = agreement::agree(
        &ephemeral,
        UnparsedPublicKey::new(curve, ek_point),
        CredentialError::InvalidEk("not a point on the curve"),
        |z| {
            Ok(Zeroizing::new(kdfe(
                name_alg,
                z,
                IDENTITY,
                ephemeral_x,
                ek_x,
                name_alg.digest_len(),
            )))
        },
    )?;
    let mut encrypted = Vec::with_capacity(4 + 2 * coordinate_len);
    put_tpm2b(&mut encrypted, ephemeral_x);
    put_tpm2b(&mut encrypted, ephemeral_y);
    Ok((seed, encrypted))
}

fn ephemeral_key<R: TryCryptoRng + ?Sized>(
    curve: &'static agreement::Algorithm,
    len: usize,
    rng: &mut R,
) -> Result<agreement::PrivateKey, CredentialError> {
    let mut scalar = Zeroizing::new(vec![0u8; len]);
    for _ in 0..SCALAR_ATTEMPTS {
        rng.try_fill_bytes(&mut scalar)
            .map_err(|_| CredentialError::Random)?;
        if let Ok(key) = agreement::PrivateKey::from_private_key(curve, &scalar) {
            return Ok(key);
        }
    }
    Err(CredentialError::Random)
}

fn aes_cfb_encrypt(key: &[u8], data: &mut [u8]) -> Result<(), CredentialError> {
    let alg = if key.len() == 32 { &AES_256 } else { &AES_128 };
    let key = UnboundCipherKey::new(alg, key).map_err(|_| CredentialError::Crypto("AES key"))?;
    let key = EncryptingKey::cfb128(key).map_err(|_| CredentialError::Crypto("AES-CFB"))?;
    // The TPM uses a zero IV: each symmetric key encrypts one message.
    key.less_safe_encrypt(data, EncryptionContext::Iv128([0u8; 16].into()))
        .map_err(|_| CredentialError::Crypto("AES-CFB"))?;
    Ok(())
}

/// `KDFa` (Part 1 §11.4.10.2, NIST SP 800-108 counter mode with HMAC):
/// `HMAC(key, [i]₃₂ ‖ label ‖ 0x00 ‖ contextU ‖ contextV ‖ [bits]₃₂)`
/// for i = 1, 2, … , truncated to `bits` (a multiple of 8).
pub(crate) fn kdfa(
    hash: HashAlg,
    key: &[u8],
    label: &[u8],
    context_u: &[u8],
    context_v: &[u8],
    bits: usize,
) -> Zeroizing<Vec<u8>> {
    let len = bits / 8;
    let key = hmac::Key::new(hash.hmac_alg(), key);
    let bits = u32::try_from(bits).unwrap_or(u32::MAX).to_be_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(len + hash.digest_len()));
    let mut counter: u32 = 1;
    while out.len() < len {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(&counter.to_be_bytes());
        ctx.update(label);
        ctx.update(&[0]);
        ctx.update(context_u);
        ctx.update(context_v);
        ctx.update(&bits);
        out.extend_from_slice(ctx.sign().as_ref());
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    out
}

/// `KDFe` (Part 1 §11.4.10.3, NIST SP 800-56A concatenation KDF):
/// `H([i]₃₂ ‖ Z ‖ use ‖ 0x00 ‖ partyUInfo ‖ partyVInfo)` for i = 1, 2, …,
/// truncated to `len` bytes.
pub(crate) fn kdfe(
    hash: HashAlg,
    z: &[u8],
    usage: &[u8],
    party_u: &[u8],
    party_v: &[u8],
    len: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + hash.digest_len());
    let mut counter: u32 = 1;
    while out.len() < len {
        let mut ctx = aws_lc_rs::digest::Context::new(hash.digest_alg());
        ctx.update(&counter.to_be_bytes());
        ctx.update(z);
        ctx.update(usage);
        ctx.update(&[0]);
        ctx.update(party_u);
        ctx.update(party_v);
        out.extend_from_slice(ctx.finish().as_ref());
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    out
}

fn with_nul(label: &[u8]) -> Vec<u8> {
    let mut out = label.to_vec();
    out.push(0);
    out
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

fn uncompressed(sec1: &[u8], coordinate_len: usize) -> Result<Vec<u8>, CredentialError> {
    coordinates(sec1, coordinate_len)
        .map(|_| sec1.to_vec())
        .ok_or(CredentialError::InvalidEk("not an uncompressed point"))
}

/// `(x, y)` of an uncompressed SEC 1 point.
fn coordinates(sec1: &[u8], len: usize) -> Option<(&[u8], &[u8])> {
    let (&tag, xy) = sec1.split_first()?;
    if tag != 0x04 || xy.len() != 2 * len {
        return None;
    }
    Some(xy.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::cipher::{DecryptingKey, DecryptionContext};
    use core::convert::Infallible;
    use rsa::rand_core::TryRng;

    /// A source that returns `0x11` bytes: a valid scalar on both curves.
    struct Elevens;
    impl TryRng for Elevens {
        type Error = Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Infallible> {
            Ok(0x1111_1111)
        }
        fn try_next_u64(&mut self) -> Result<u64, Infallible> {
            Ok(0x1111_1111_1111_1111)
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
            dst.fill(0x11);
            Ok(())
        }
    }
    impl TryCryptoRng for Elevens {}

    #[test]
    fn kdfa_is_sp800_108_counter_mode() {
        // One block: HMAC-SHA256(key, 00000001 ‖ "STORAGE" ‖ 00 ‖ "name" ‖
        // 00000080), truncated to 16 bytes. (The KAT checks it end to end.)
        let out = kdfa(HashAlg::Sha256, &[0; 16], STORAGE, b"name", &[], 128);
        assert_eq!(out.len(), 16);
        let key = hmac::Key::new(hmac::HMAC_SHA256, &[0; 16]);
        let mut msg = vec![0, 0, 0, 1];
        msg.extend_from_slice(b"STORAGE\0name");
        msg.extend_from_slice(&128u32.to_be_bytes());
        assert_eq!(out.as_slice(), &hmac::sign(&key, &msg).as_ref()[..16]);
        // Longer outputs chain the counter.
        let long = kdfa(HashAlg::Sha256, &[0; 16], STORAGE, b"name", &[], 512);
        assert_eq!(long.len(), 64);
    }

    #[test]
    fn an_ecc_credential_decrypts_with_the_ek_private_key() {
        for (curve, len, sec1_of) in [
            (
                &agreement::ECDH_P256,
                32usize,
                EkPublicKey::ec_p256 as fn(&[u8]) -> _,
            ),
            (&agreement::ECDH_P384, 48, EkPublicKey::ec_p384),
        ] {
            let ek_private =
                agreement::PrivateKey::from_private_key(curve, &vec![0x42; len]).unwrap();
            let ek_public = ek_private.compute_public_key().unwrap();
            let ek = sec1_of(ek_public.as_ref()).unwrap();
            let name = [&[0x00u8, 0x0b][..], &[7; 32]].concat();
            let secret = [0x5a; 32];
            let challenge = make_credential(&ek, &name, &secret, &mut Elevens).unwrap();
            assert_eq!(challenge.encrypted_secret.len(), 4 + 2 * len);
            let recovered = software_activate_ecc(&ek_private, &ek, &name, &challenge, len);
            assert_eq!(recovered, secret);
        }
    }

    /// `TPM2_ActivateCredential` in software for an ECC EK, from the spec
    /// (the inverse of `make_credential`).
    fn software_activate_ecc(
        ek_private: &agreement::PrivateKey,
        ek: &EkPublicKey,
        name: &[u8],
        challenge: &TpmActivationChallenge,
        len: usize,
    ) -> Vec<u8> {
        let point = &challenge.encrypted_secret;
        let (x, y) = (&point[2..2 + len], &point[4 + len..]);
        let peer = [&[4u8][..], x, y].concat();
        let ek_public = ek_private.compute_public_key().unwrap();
        let ek_x = &ek_public.as_ref()[1..1 + len];
        let seed = agreement::agree(
            ek_private,
            UnparsedPublicKey::new(ek_private.algorithm(), &peer),
            (),
            |z| {
                Ok(kdfe(
                    ek.name_alg,
                    z,
                    IDENTITY,
                    x,
                    ek_x,
                    ek.name_alg.digest_len(),
                ))
            },
        )
        .unwrap();
        let blob = &challenge.credential_blob;
        let hmac_len = usize::from(u16::from_be_bytes([blob[0], blob[1]]));
        let (integrity, enc_identity) = (&blob[2..2 + hmac_len], &blob[2 + hmac_len..]);
        let hmac_key = kdfa(
            ek.name_alg,
            &seed,
            INTEGRITY,
            &[],
            &[],
            ek.name_alg.digest_len() * 8,
        );
        let key = hmac::Key::new(ek.name_alg.hmac_alg(), &hmac_key);
        hmac::verify(&key, &[enc_identity, name].concat(), integrity).unwrap();
        let sym_key = kdfa(
            ek.name_alg,
            &seed,
            STORAGE,
            name,
            &[],
            usize::from(ek.sym_key_bits),
        );
        let alg = if sym_key.len() == 32 {
            &AES_256
        } else {
            &AES_128
        };
        let key = DecryptingKey::cfb128(UnboundCipherKey::new(alg, &sym_key).unwrap()).unwrap();
        let mut plain = enc_identity.to_vec();
        let plain = key
            .decrypt(&mut plain, DecryptionContext::Iv128([0u8; 16].into()))
            .unwrap();
        plain[2..].to_vec()
    }

    #[test]
    fn refuses_unusable_eks_and_inputs() {
        assert!(matches!(
            EkPublicKey::rsa(&[0xff; 128], &[1, 0, 1]),
            Err(CredentialError::UnsupportedEk(s)) if s == "RSA-1024"
        ));
        assert!(matches!(
            EkPublicKey::ec_p256(&[4; 64]),
            Err(CredentialError::InvalidEk(_))
        ));
        // A well-formed encoding of a point that is not on the curve.
        let ek = EkPublicKey::ec_p256(&[[4u8].as_slice(), &[1; 64]].concat()).unwrap();
        assert!(matches!(
            make_credential(&ek, &[0, 0x0b, 1], &[1; 32], &mut Elevens),
            Err(CredentialError::InvalidEk(_))
        ));
        assert_eq!(
            make_credential(&ek, &[0], &[1; 32], &mut Elevens),
            Err(CredentialError::InvalidInput)
        );
        assert_eq!(
            make_credential(&ek, &[0, 0x0b], &[1; 65], &mut Elevens),
            Err(CredentialError::InvalidInput)
        );
    }
}
