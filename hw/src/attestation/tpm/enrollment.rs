//! The two calls the issuer makes during TPM enrollment.
//!
//! 1. [`begin_activation`]: check the EK chain and the AK, and make a
//!    credential-activation challenge only that TPM can answer. The issuer
//!    keeps the [`PendingActivation`] with its enrollment challenge.
//! 2. [`verify_evidence`]: check that the AK was activated (so it lives in
//!    the TPM of the verified EK), that it certified the device key over the
//!    issuer's nonce, and that the device key is a non-duplicable,
//!    TPM-generated P-256 signing key equal to the JWK being enrolled.
//!
//! Each check is one early return with its own [`TpmAttestError`] variant.

use core::fmt;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest;
use getrandom::SysRng;
use holdfast_proto::{Jwk, UnixTime};
use rsa::rand_core::TryCryptoRng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::alg::HashAlg;
use super::attest::{Attested, ClockInfo, TPM_ST_ATTEST_CERTIFY, TpmsAttest};
use super::credential::make_credential;
use super::ek::TpmTrust;
use super::error::TpmAttestError;
use super::public::{EccCurve, KeyScheme, PublicKeyParms, TpmtPublic};
use super::signature::TpmtSignature;
use crate::attestation::evidence::{
    Bytes, TpmActivationChallenge, TpmActivationRequest, TpmEvidence,
};

/// Length of the credential secret.
const SECRET_LEN: usize = 32;

/// What the issuer keeps between the activation challenge and the evidence.
/// Holds no secret: only the SHA-256 of the credential secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PendingActivationRepr", into = "PendingActivationRepr")]
pub struct PendingActivation {
    ak_name: Vec<u8>,
    secret_sha256: [u8; 32],
    ek_fingerprint: [u8; 32],
}

/// The serialized form: base64url members.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PendingActivationRepr {
    ak_name: Bytes,
    secret_sha256: Bytes,
    ek_fingerprint: Bytes,
}

/// What verified TPM evidence shows about the device. Only
/// [`verify_evidence`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TpmAttestation {
    /// The TPM manufacturer's TCG vendor ID, 8 uppercase hex digits, from
    /// the EK certificate (`53544D20`).
    pub manufacturer: String,
    /// The manufacturer's name, for registered IDs (`STMicroelectronics`).
    pub manufacturer_name: Option<&'static str>,
    /// The TPM model from the EK certificate.
    pub model: String,
    /// The TPM version attribute of the EK certificate (`id:00490004`):
    /// the firmware at manufacture, vendor-defined, vouched for by the
    /// vendor's CA.
    pub firmware: String,
    /// `TPMS_ATTEST.firmwareVersion` as the TPM reported it. Only meaningful
    /// when the AK is in the endorsement or platform hierarchy: under the
    /// owner hierarchy the TPM obfuscates it (TPM 2.0 Part 1 §36.8), as the
    /// random-looking values in the Windows Hello test data show.
    pub attested_firmware_version: u64,
    /// SHA-256 of the EK certificate's DER, lowercase hex.
    pub ek_fingerprint: String,
    /// The EK key type (`RSA-2048`, `ECC NIST P-384`).
    pub ek_key: String,
    /// Subject of the trust anchor the EK chains to.
    pub anchor: String,
    /// The AK's name, lowercase hex.
    pub ak_name: String,
    /// The device key's name, lowercase hex.
    pub key_name: String,
    /// The device key's attributes (`fixedTPM`, …).
    pub key_attributes: Vec<&'static str>,
    /// The TPM clock when it certified the key (`resetCount` and
    /// `restartCount` are obfuscated like `firmwareVersion`).
    pub clock: ClockInfo,
}

impl TpmAttestation {
    /// The attested facts as (name, value) pairs, for the device record.
    pub fn facts(&self) -> Vec<(&'static str, String)> {
        vec![
            ("tpm_manufacturer", self.manufacturer.clone()),
            (
                "tpm_manufacturer_name",
                self.manufacturer_name.unwrap_or("unknown").to_owned(),
            ),
            ("tpm_model", self.model.clone()),
            ("tpm_firmware", self.firmware.clone()),
            ("ek_fingerprint_sha256", self.ek_fingerprint.clone()),
            ("ek_key", self.ek_key.clone()),
            ("ek_anchor", self.anchor.clone()),
            ("ak_name", self.ak_name.clone()),
            ("key_name", self.key_name.clone()),
            ("key_attributes", self.key_attributes.join("|")),
        ]
    }
}

impl PendingActivation {
    /// The AK's name (`nameAlg ‖ digest`).
    pub fn ak_name(&self) -> &[u8] {
        &self.ak_name
    }

    /// SHA-256 of the EK certificate the challenge was made for.
    pub const fn ek_fingerprint(&self) -> &[u8; 32] {
        &self.ek_fingerprint
    }
}

impl fmt::Debug for PendingActivation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingActivation")
            .field("ak_name", &hex(&self.ak_name))
            .field("ek_fingerprint", &hex(&self.ek_fingerprint))
            .finish_non_exhaustive()
    }
}

impl TryFrom<PendingActivationRepr> for PendingActivation {
    type Error = &'static str;

    fn try_from(repr: PendingActivationRepr) -> Result<Self, Self::Error> {
        let fixed = |bytes: &Bytes| <[u8; 32]>::try_from(bytes.0.as_slice());
        if !(2..=66).contains(&repr.ak_name.len()) {
            return Err("ak_name must be 2 to 66 bytes");
        }
        Ok(Self {
            ak_name: repr.ak_name.0,
            secret_sha256: fixed(&repr.secret_sha256)
                .map_err(|_| "secret_sha256 must be 32 bytes")?,
            ek_fingerprint: fixed(&repr.ek_fingerprint)
                .map_err(|_| "ek_fingerprint must be 32 bytes")?,
        })
    }
}

impl From<PendingActivation> for PendingActivationRepr {
    fn from(pending: PendingActivation) -> Self {
        Self {
            ak_name: Bytes(pending.ak_name),
            secret_sha256: Bytes(pending.secret_sha256.to_vec()),
            ek_fingerprint: Bytes(pending.ek_fingerprint.to_vec()),
        }
    }
}

/// Step 1: verifies the EK certificate chain and the AK, and makes the
/// credential-activation challenge (`TPM2_MakeCredential` of a random
/// 32-byte secret to the EK, for the AK's name).
///
/// # Errors
/// An `Ek*` variant for the EK certificate, `AkMalformed`, `AkAttributes`
/// or `AkUnsupported` for the AK, `Credential` if randomness fails.
pub fn begin_activation(
    req: &TpmActivationRequest,
    trust: &TpmTrust,
    at: UnixTime,
) -> Result<(TpmActivationChallenge, PendingActivation), TpmAttestError> {
    begin_activation_with_rng(req, trust, at, &mut SysRng)
}

fn begin_activation_with_rng<R: TryCryptoRng + ?Sized>(
    req: &TpmActivationRequest,
    trust: &TpmTrust,
    at: UnixTime,
    rng: &mut R,
) -> Result<(TpmActivationChallenge, PendingActivation), TpmAttestError> {
    let ek = trust.verify_ek(&req.ek_certificate, at)?;
    let ak = TpmtPublic::parse(&req.ak_public).map_err(TpmAttestError::AkMalformed)?;
    check_ak(&ak)?;
    let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
    rng.try_fill_bytes(secret.as_mut_slice())
        .map_err(|_| TpmAttestError::Credential(super::CredentialError::Random))?;
    let ak_name = ak.name();
    let challenge = make_credential(&ek.public_key, &ak_name, secret.as_slice(), rng)
        .map_err(TpmAttestError::Credential)?;
    let pending = PendingActivation {
        ak_name,
        secret_sha256: sha256(secret.as_slice()),
        ek_fingerprint: ek.fingerprint,
    };
    Ok((challenge, pending))
}

/// Step 2: verifies TPM evidence against the pending activation, the
/// enrollment nonce ([`certify_nonce`](crate::attestation::evidence::certify_nonce)
/// of the challenge) and the JWK being enrolled, at time `at`.
///
/// # Errors
/// The variant of the first failed check, in this order: EK chain (and the
/// same EK as `pending`), AK (same name as `pending`), activated secret,
/// `TPMS_ATTEST` parsing and signature, attestation type, nonce, certified
/// name, device key type and attributes, JWK.
pub fn verify_evidence(
    ev: &TpmEvidence,
    pending: &PendingActivation,
    trust: &TpmTrust,
    nonce: &[u8; 32],
    jwk: &Jwk,
    at: UnixTime,
) -> Result<TpmAttestation, TpmAttestError> {
    // The EK must be trusted now and be the one the challenge went to.
    let ek = trust.verify_ek(&ev.ek_certificate, at)?;
    if ek.fingerprint != pending.ek_fingerprint {
        return Err(TpmAttestError::EkChanged);
    }

    // The AK must be the one the credential was made for.
    let ak = TpmtPublic::parse(&ev.ak_public).map_err(TpmAttestError::AkMalformed)?;
    check_ak(&ak)?;
    let ak_name = ak.name();
    if ak_name != pending.ak_name {
        return Err(TpmAttestError::AkNameMismatch);
    }

    // Only the TPM holding the EK, with this AK loaded, could recover the
    // secret (TPM 2.0 Part 1 §24): the AK lives in that TPM.
    if verify_slices_are_equal(&sha256(&ev.activated_secret), &pending.secret_sha256).is_err() {
        return Err(TpmAttestError::AkNotActivated);
    }

    // The AK signed the attestation; the TPM built it (magic checked by the
    // parser: a restricted key signs TPM_GENERATED data only for the TPM).
    let attest = TpmsAttest::parse(&ev.certify_info).map_err(TpmAttestError::AttestMalformed)?;
    let signature = TpmtSignature::parse(&ev.certify_signature)
        .map_err(TpmAttestError::AttestSignatureMalformed)?;
    check_signature_algorithm(&ak, &signature)?;
    signature
        .verify(&ak, &ev.certify_info)
        .map_err(TpmAttestError::AttestSignatureInvalid)?;

    // It is a TPM2_Certify over this enrollment's nonce.
    let (TPM_ST_ATTEST_CERTIFY, Attested::Certify { name, .. }) =
        (attest.attest_type(), attest.attested())
    else {
        return Err(TpmAttestError::AttestNotCertify {
            found: attest.attest_type(),
        });
    };
    if attest.extra_data() != nonce {
        return Err(TpmAttestError::NonceMismatch);
    }

    // Of this key.
    let key = TpmtPublic::parse(&ev.key_public).map_err(TpmAttestError::KeyMalformed)?;
    if key.name_alg() == HashAlg::Sha1 {
        return Err(TpmAttestError::KeyNameAlgWeak);
    }
    if *name != key.name() {
        return Err(TpmAttestError::CertifiedNameMismatch);
    }
    let (x, y) = check_device_key(&key)?;

    // Which is the key being enrolled.
    let Jwk::Ec(ec) = jwk else {
        return Err(TpmAttestError::KeyMismatch);
    };
    if ec.crv() != holdfast_proto::EcCurve::P256 || ec.x() != x || ec.y() != y {
        return Err(TpmAttestError::KeyMismatch);
    }

    Ok(TpmAttestation {
        manufacturer: ek.identity.manufacturer,
        manufacturer_name: ek.identity.manufacturer_name,
        model: ek.identity.model,
        firmware: ek.identity.version,
        attested_firmware_version: attest.firmware_version(),
        ek_fingerprint: hex(&ek.fingerprint),
        ek_key: ek.public_key.describe(),
        anchor: ek.path.anchor,
        ak_name: hex(&ak_name),
        key_name: hex(name),
        key_attributes: key.attributes().names(),
        clock: attest.clock_info(),
    })
}

/// An AK is a restricted signing key that cannot leave its TPM, with a
/// name and signature algorithm this verifier accepts.
fn check_ak(ak: &TpmtPublic) -> Result<(), TpmAttestError> {
    let a = ak.attributes();
    let rules = [
        (a.restricted(), "restricted is not set"),
        (a.sign(), "sign is not set"),
        (!a.decrypt(), "decrypt is set"),
        (a.fixed_tpm(), "fixedTPM is not set"),
        (a.fixed_parent(), "fixedParent is not set"),
        (a.sensitive_data_origin(), "sensitiveDataOrigin is not set"),
    ];
    if let Some((_, reason)) = rules.iter().find(|(ok, _)| !ok) {
        return Err(TpmAttestError::AkAttributes(reason));
    }
    if ak.name_alg() == HashAlg::Sha1 {
        return Err(TpmAttestError::AkUnsupported("its nameAlg is SHA-1"));
    }
    match ak.key() {
        PublicKeyParms::Rsa {
            key_bits, modulus, ..
        } => {
            if *key_bits < 2048 || modulus.len() != usize::from(*key_bits / 8) {
                return Err(TpmAttestError::AkUnsupported(
                    "RSA keys must have at least 2048 bits",
                ));
            }
        }
        PublicKeyParms::Ecc { curve, .. } => {
            if !matches!(curve, EccCurve::NistP256 | EccCurve::NistP384) {
                return Err(TpmAttestError::AkUnsupported(
                    "ECC keys must be on NIST P-256 or P-384",
                ));
            }
        }
    }
    match ak.scheme() {
        KeyScheme::Null => Ok(()),
        KeyScheme::Rsassa(hash) | KeyScheme::Rsapss(hash) | KeyScheme::Ecdsa(hash) => {
            match HashAlg::from_id(hash) {
                Some(HashAlg::Sha1) | None => Err(TpmAttestError::AkUnsupported(
                    "its signing scheme's hash is SHA-1 or unknown",
                )),
                Some(_) => Ok(()),
            }
        }
        _ => Err(TpmAttestError::AkUnsupported(
            "its scheme is not RSASSA, RSAPSS or ECDSA",
        )),
    }
}

/// SHA-1 signatures are refused: a chosen-prefix collision could pass off
/// data the AK signed with `TPM2_Sign` as a `TPMS_ATTEST`. A key with a
/// fixed scheme signs only with that scheme, so another is a forgery.
fn check_signature_algorithm(
    ak: &TpmtPublic,
    signature: &TpmtSignature,
) -> Result<(), TpmAttestError> {
    match signature.hash() {
        Some(HashAlg::Sha256 | HashAlg::Sha384 | HashAlg::Sha512) => {}
        Some(HashAlg::Sha1) => {
            return Err(TpmAttestError::AttestSignatureAlgorithm(
                "SHA-1 signatures are not accepted",
            ));
        }
        None => {
            return Err(TpmAttestError::AttestSignatureAlgorithm(
                "the signature's hash algorithm is not supported",
            ));
        }
    }
    let matches = match (ak.scheme(), signature) {
        (KeyScheme::Null, _) => true,
        (KeyScheme::Rsassa(h), TpmtSignature::Rsassa { hash, .. })
        | (KeyScheme::Rsapss(h), TpmtSignature::Rsapss { hash, .. })
        | (KeyScheme::Ecdsa(h), TpmtSignature::Ecdsa { hash, .. }) => h == *hash,
        _ => false,
    };
    if !matches {
        return Err(TpmAttestError::AttestSignatureAlgorithm(
            "the signature's scheme is not the attestation key's",
        ));
    }
    Ok(())
}

/// The device key: ECC P-256, generated by the TPM, cannot leave it, an
/// unrestricted signing key usable with its auth value.
fn check_device_key(key: &TpmtPublic) -> Result<([u8; 32], [u8; 32]), TpmAttestError> {
    let point = key.p256_point().ok_or(TpmAttestError::KeyNotP256)?;
    let a = key.attributes();
    // Origin first: a TPM refuses `fixedTPM` on a key whose private part
    // came from outside (`TPM2_LoadExternal`, `TPM2_Import`), so such a key
    // always fails both; naming its origin says what is really wrong.
    if !a.sensitive_data_origin() {
        return Err(TpmAttestError::KeyNotTpmGenerated);
    }
    if !a.fixed_tpm() {
        return Err(TpmAttestError::KeyDuplicable("fixedTPM"));
    }
    if !a.fixed_parent() {
        return Err(TpmAttestError::KeyDuplicable("fixedParent"));
    }
    if a.restricted() {
        return Err(TpmAttestError::KeyRestricted);
    }
    if a.decrypt() {
        return Err(TpmAttestError::KeyDecrypts);
    }
    if !a.sign() {
        return Err(TpmAttestError::KeyNotSigning);
    }
    if !a.user_with_auth() {
        return Err(TpmAttestError::KeyNoUserAuth);
    }
    Ok(point)
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
