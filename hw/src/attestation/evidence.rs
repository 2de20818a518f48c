//! The wire format of attestation evidence (JSON, binary members in
//! base64url without padding). The device side builds these; the issuer
//! parses them. Kept apart from the checks so both ends share one definition.
//!
//! TPM enrollment takes two round trips:
//!
//! 1. `POST /enroll/challenge` with [`TpmActivationRequest`] (EK certificate
//!    and the attestation key's public area). The issuer checks the EK chain
//!    and answers with the usual challenge plus a [`TpmActivationChallenge`]:
//!    a secret that only the TPM holding that EK, with that AK loaded, can
//!    recover (`TPM2_MakeCredential`, done in software by the issuer).
//! 2. `POST /enroll` with [`TpmEvidence`]: the recovered secret
//!    (`TPM2_ActivateCredential`), and `TPM2_Certify` of the device key by the
//!    AK over [`certify_nonce`] of the challenge.
//!
//! YubiKey enrollment takes one: [`PivEvidence`] carries the slot's
//! attestation certificate and the device's f9 certificate. PIV attestation
//! has no nonce; freshness comes from the enrollment proof, which the same
//! key signs over the issuer's challenge.

use aws_lc_rs::digest;
use base64ct::{Base64UrlUnpadded, Encoding};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest binary member accepted (a certificate, a TPM structure).
pub const MAX_MEMBER_LEN: usize = 8 * 1024;

/// Bytes carried as base64url without padding; at most [`MAX_MEMBER_LEN`].
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Bytes(pub Vec<u8>);

impl core::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

impl core::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&Base64UrlUnpadded::encode_string(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        if text.len() / 4 * 3 > MAX_MEMBER_LEN + 3 {
            return Err(serde::de::Error::custom("binary member too large"));
        }
        let bytes = Base64UrlUnpadded::decode_vec(&text)
            .map_err(|_| serde::de::Error::custom("not base64url without padding"))?;
        if bytes.len() > MAX_MEMBER_LEN {
            return Err(serde::de::Error::custom("binary member too large"));
        }
        Ok(Self(bytes))
    }
}

/// Step 1 of TPM enrollment, sent with `POST /enroll/challenge`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TpmActivationRequest {
    /// The EK certificate, DER, as read from the TPM's NV (trailing 0xFF
    /// padding tolerated).
    pub ek_certificate: Bytes,
    /// The attestation key's public area: a marshalled `TPMT_PUBLIC`
    /// (the contents of a `TPM2B_PUBLIC`, without its size).
    pub ak_public: Bytes,
}

/// The issuer's credential-activation challenge (`TPM2_MakeCredential`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TpmActivationChallenge {
    /// The contents of a `TPM2B_ID_OBJECT` (integrity HMAC and encrypted
    /// identity), without its size.
    pub credential_blob: Bytes,
    /// The contents of a `TPM2B_ENCRYPTED_SECRET` (RSA-OAEP ciphertext or
    /// marshalled ephemeral ECC point), without its size.
    pub encrypted_secret: Bytes,
}

/// Step 2 of TPM enrollment: the `attestation` member of `POST /enroll`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TpmEvidence {
    /// The same EK certificate as in step 1.
    pub ek_certificate: Bytes,
    /// The same AK public area as in step 1 (marshalled `TPMT_PUBLIC`).
    pub ak_public: Bytes,
    /// The secret `TPM2_ActivateCredential` recovered.
    pub activated_secret: Bytes,
    /// The device key's public area (marshalled `TPMT_PUBLIC`).
    pub key_public: Bytes,
    /// `TPM2_Certify` output: a marshalled `TPMS_ATTEST` (contents of the
    /// `TPM2B_ATTEST`, without its size).
    pub certify_info: Bytes,
    /// The AK's signature over `certify_info`: a marshalled `TPMT_SIGNATURE`.
    pub certify_signature: Bytes,
}

/// The `attestation` member of `POST /enroll` for a YubiKey.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PivEvidence {
    /// The slot's attestation certificate (PIV `ATTEST`), DER.
    pub slot_certificate: Bytes,
    /// The device's attestation certificate from slot f9, DER.
    pub intermediate_certificate: Bytes,
}

/// The `qualifyingData` of `TPM2_Certify` for an enrollment: SHA-256 of the
/// issuer's challenge string. Both ends compute it here.
pub fn certify_nonce(challenge: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, challenge.as_bytes()).as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_and_refuse_bad_input() {
        let ev = PivEvidence {
            slot_certificate: Bytes(vec![1, 2, 3]),
            intermediate_certificate: Bytes(vec![]),
        };
        let json = serde_json::to_string(&ev).unwrap();
        assert_eq!(
            json,
            r#"{"slot_certificate":"AQID","intermediate_certificate":""}"#
        );
        assert_eq!(serde_json::from_str::<PivEvidence>(&json).unwrap(), ev);
        assert!(
            serde_json::from_str::<PivEvidence>(
                r#"{"slot_certificate":"AQ==","intermediate_certificate":""}"#
            )
            .is_err()
        );
        let huge = format!(
            r#"{{"slot_certificate":"{}","intermediate_certificate":""}}"#,
            "A".repeat(20_000)
        );
        assert!(serde_json::from_str::<PivEvidence>(&huge).is_err());
    }

    #[test]
    fn certify_nonce_is_sha256_of_the_challenge() {
        assert_eq!(
            hex(&certify_nonce("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
