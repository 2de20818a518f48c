//! [`EnrollError`]: one variant per enrollment check, its stable name
//! ([`EnrollError::check`]) and its OAuth error code
//! ([`EnrollError::wire_code`]). `http/enroll.rs` adds the status.

use holdfast_hw::KeyKind;
use holdfast_proto::{JwkError, JwsError, UnixTime};

use super::proof::{ENROLL_PROOF_TYP, IAT_WINDOW_SECS};
use super::{MAX_DEVICE_NAME_CHARS, MAX_PRINCIPAL_NAME_CHARS};
use crate::store::StoreError;

/// Why an enrollment step was refused. Each variant names one check;
/// [`EnrollError::check`] is its stable name and [`EnrollError::wire_code`]
/// its OAuth error code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrollError {
    /// The body is not the JSON `POST /enroll` expects.
    #[error("the request body is not valid: {0}")]
    MalformedRequest(String),
    /// The body is larger than the issuer reads.
    #[error("the request body is too large")]
    BodyTooLarge,
    /// The device name is empty, too long or has control characters.
    #[error(
        "the device name must be 1 to {MAX_DEVICE_NAME_CHARS} characters, not blank, with no control characters"
    )]
    DeviceNameInvalid,
    /// The proof is not a compact JWS.
    #[error("the proof is not a compact JWS: {0}")]
    ProofMalformed(#[source] JwsError),
    /// The proof's `typ` is not [`ENROLL_PROOF_TYP`].
    #[error("the proof's typ must be \"{ENROLL_PROOF_TYP}\"")]
    ProofTypMismatch,
    /// The proof's `alg` is not ES256.
    #[error("the proof's alg must be ES256, not {alg:?}")]
    ProofAlgNotAllowed {
        /// The `alg` sent (truncated).
        alg: String,
    },
    /// The proof's header has no `jwk`.
    #[error("the proof's header has no jwk")]
    ProofJwkMissing,
    /// The proof's `jwk` carries a private key member.
    #[error("the proof's jwk contains the private key member `{0}`")]
    JwkHasPrivateKey(&'static str),
    /// The proof's `jwk` is not a valid public key.
    #[error("the proof's jwk is not a valid public key: {0}")]
    ProofJwkInvalid(#[source] JwkError),
    /// The proof's key is not an EC P-256 key.
    #[error("the proof's key must be an EC P-256 key")]
    ProofKeyNotP256,
    /// The proof's signature does not verify with its `jwk`.
    #[error("the proof's signature does not verify with its jwk")]
    ProofSignatureInvalid,
    /// The proof's claims are not `{"challenge","code_hash","iat"}`.
    #[error(
        "the proof's claims must be a JSON object with string challenge, string code_hash and integer iat"
    )]
    ProofClaimsMalformed,
    /// The proof's `code_hash` is not the hash of the code sent with it.
    #[error("the proof's code_hash is not the base64url SHA-256 of this code")]
    CodeHashMismatch,
    /// The proof's `iat` is too far from the issuer's clock.
    #[error(
        "the proof's iat {iat} is more than {IAT_WINDOW_SECS} s away from the issuer's time {now}"
    )]
    IatOutsideWindow {
        /// The proof's `iat`.
        iat: u64,
        /// The issuer's time.
        now: UnixTime,
    },
    /// The challenge is unknown, expired or used.
    #[error("the challenge is unknown, expired or already used; request a new one")]
    ChallengeUnknown,
    /// No such enrollment code.
    #[error("unknown enrollment code")]
    UnknownCode,
    /// The code was redeemed already.
    #[error("this enrollment code was already used")]
    CodeUsed,
    /// The code has expired.
    #[error("this enrollment code has expired")]
    CodeExpired,
    /// The code's principal is disabled or gone.
    #[error("the principal is disabled or no longer exists")]
    PrincipalUnavailable,
    /// The code does not allow this key kind.
    #[error("this enrollment code does not allow {kind} keys")]
    KindNotAllowed {
        /// The kind asked for.
        kind: KeyKind,
    },
    /// The issuer's policy does not accept this key kind.
    #[error("this issuer's policy does not accept {kind} keys")]
    KindNotAccepted {
        /// The kind asked for.
        kind: KeyKind,
    },
    /// A hardware key came without attestation evidence.
    #[error("{kind} keys must be enrolled with attestation evidence")]
    AttestationRequired {
        /// The kind asked for.
        kind: KeyKind,
    },
    /// A software key came with attestation evidence.
    #[error("software keys have no attestation; send \"attestation\": null")]
    AttestationUnexpected,
    /// This issuer has no trust anchors for this kind's evidence.
    #[error("{kind} attestation is not configured on this issuer: {hint}")]
    AttestationNotConfigured {
        /// The kind asked for.
        kind: KeyKind,
        /// Which setting is missing.
        hint: &'static str,
    },
    /// The evidence is not the JSON this kind's evidence is.
    #[error("the {kind} attestation evidence is malformed: {reason}")]
    AttestationMalformed {
        /// The kind asked for.
        kind: KeyKind,
        /// What is wrong with it.
        reason: String,
    },
    /// The evidence was checked and refused.
    #[error("{kind} attestation refused: {reason}")]
    AttestationRefused {
        /// The kind asked for.
        kind: KeyKind,
        /// The verifier's name for the failed check (`ek_untrusted`,
        /// `touch_policy_not_allowed`…).
        check: &'static str,
        /// The verifier's message.
        reason: String,
    },
    /// A TPM enrollment used a challenge issued without credential
    /// activation.
    #[error(
        "this challenge was issued without a TPM credential activation: ask for it with \
         {{\"tpm\": {{\"ek_certificate\", \"ak_public\"}}}} (`holdfast enroll --tpm` does)"
    )]
    TpmActivationMissing,
    /// The key is enrolled already, as another device.
    #[error("this key is already enrolled")]
    KeyAlreadyEnrolled,
    /// A principal name is empty, too long or has control characters.
    #[error(
        "a principal name must be 1 to {MAX_PRINCIPAL_NAME_CHARS} characters, not blank, with no control characters"
    )]
    PrincipalNameInvalid,
    /// An enrollment code must allow some key kind.
    #[error("an enrollment code must allow at least one key kind")]
    NoKindsAllowed,
    /// The named principal exists with other roles.
    #[error("principal {name:?} exists with other roles")]
    RolesDiffer {
        /// The principal's name.
        name: String,
    },
    /// An enabled admin with an active device exists: bootstrap is over.
    #[error("an admin with an active device exists already; ask them for an enrollment code")]
    AlreadyBootstrapped,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EnrollError {
    /// The name of the failed check, for metrics, logs and audit.
    pub fn check(&self) -> &'static str {
        match self {
            Self::MalformedRequest(_) => "malformed_request",
            Self::BodyTooLarge => "body_too_large",
            Self::DeviceNameInvalid => "device_name_invalid",
            Self::ProofMalformed(_) => "proof_malformed",
            Self::ProofTypMismatch => "proof_typ_mismatch",
            Self::ProofAlgNotAllowed { .. } => "proof_alg_not_allowed",
            Self::ProofJwkMissing => "proof_jwk_missing",
            Self::JwkHasPrivateKey(_) => "jwk_has_private_key",
            Self::ProofJwkInvalid(_) => "proof_jwk_invalid",
            Self::ProofKeyNotP256 => "proof_key_not_p256",
            Self::ProofSignatureInvalid => "proof_signature_invalid",
            Self::ProofClaimsMalformed => "proof_claims_malformed",
            Self::CodeHashMismatch => "code_hash_mismatch",
            Self::IatOutsideWindow { .. } => "iat_outside_window",
            Self::ChallengeUnknown => "challenge_unknown",
            Self::UnknownCode => "unknown_code",
            Self::CodeUsed => "code_used",
            Self::CodeExpired => "code_expired",
            Self::PrincipalUnavailable => "principal_unavailable",
            Self::KindNotAllowed { .. } => "kind_not_allowed",
            Self::KindNotAccepted { .. } => "kind_not_accepted",
            Self::AttestationRequired { .. } => "attestation_required",
            Self::AttestationUnexpected => "attestation_unexpected",
            Self::AttestationNotConfigured { .. } => "attestation_not_configured",
            Self::AttestationMalformed { .. } => "attestation_malformed",
            Self::AttestationRefused { check, .. } => check,
            Self::TpmActivationMissing => "tpm_activation_missing",
            Self::KeyAlreadyEnrolled => "key_already_enrolled",
            Self::PrincipalNameInvalid => "principal_name_invalid",
            Self::NoKindsAllowed => "no_kinds_allowed",
            Self::RolesDiffer { .. } => "roles_differ",
            Self::AlreadyBootstrapped => "already_bootstrapped",
            Self::Store(_) => "server_error",
        }
    }

    /// The OAuth error code (RFC 6749 §5.2): `invalid_grant` for a code that
    /// cannot be redeemed, `access_denied` for what policy refuses,
    /// `server_error` for storage, `invalid_request` for the rest.
    pub fn wire_code(&self) -> &'static str {
        match self {
            Self::UnknownCode | Self::CodeUsed | Self::CodeExpired => "invalid_grant",
            Self::PrincipalUnavailable
            | Self::KindNotAllowed { .. }
            | Self::KindNotAccepted { .. }
            | Self::AttestationNotConfigured { .. }
            | Self::AttestationRefused { .. }
            | Self::AlreadyBootstrapped => "access_denied",
            Self::Store(_) => "server_error",
            _ => "invalid_request",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_has_a_distinct_name() {
        let errors = [
            EnrollError::MalformedRequest(String::new()),
            EnrollError::BodyTooLarge,
            EnrollError::DeviceNameInvalid,
            EnrollError::ProofMalformed(JwsError::TooLong),
            EnrollError::ProofTypMismatch,
            EnrollError::ProofAlgNotAllowed { alg: String::new() },
            EnrollError::ProofJwkMissing,
            EnrollError::JwkHasPrivateKey("d"),
            EnrollError::ProofJwkInvalid(JwkError::Malformed),
            EnrollError::ProofKeyNotP256,
            EnrollError::ProofSignatureInvalid,
            EnrollError::ProofClaimsMalformed,
            EnrollError::CodeHashMismatch,
            EnrollError::IatOutsideWindow {
                iat: 0,
                now: UnixTime::from_secs(0),
            },
            EnrollError::ChallengeUnknown,
            EnrollError::UnknownCode,
            EnrollError::CodeUsed,
            EnrollError::CodeExpired,
            EnrollError::PrincipalUnavailable,
            EnrollError::KindNotAllowed { kind: KeyKind::Tpm },
            EnrollError::KindNotAccepted { kind: KeyKind::Tpm },
            EnrollError::AttestationRequired { kind: KeyKind::Tpm },
            EnrollError::AttestationUnexpected,
            EnrollError::AttestationNotConfigured {
                kind: KeyKind::Tpm,
                hint: "",
            },
            EnrollError::AttestationMalformed {
                kind: KeyKind::Tpm,
                reason: String::new(),
            },
            EnrollError::AttestationRefused {
                kind: KeyKind::Tpm,
                check: "ek_untrusted",
                reason: String::new(),
            },
            EnrollError::TpmActivationMissing,
            EnrollError::KeyAlreadyEnrolled,
            EnrollError::PrincipalNameInvalid,
            EnrollError::NoKindsAllowed,
            EnrollError::RolesDiffer {
                name: String::new(),
            },
            EnrollError::AlreadyBootstrapped,
            EnrollError::Store(StoreError::Backend(String::new())),
        ];
        let mut names: Vec<_> = errors.iter().map(EnrollError::check).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), errors.len());
    }
}
