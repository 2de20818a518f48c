//! Attestation at enrollment: what this issuer trusts (`[attestation]`),
//! and the one place that turns a device's evidence into the device
//! record's [`AttestationSummary`]. The checks themselves are the pure
//! verifiers of `holdfast_hw::attestation`; this module picks the trust and
//! the policy, and maps their errors to [`EnrollError`]s.
//!
//! - **TPM** takes two steps. [`begin_tpm`] runs at `POST /enroll/challenge`:
//!   it checks the EK certificate chain and makes the credential-activation
//!   challenge; what must be remembered (the AK's name, the hash of the
//!   secret, the EK's fingerprint) is stored with the enrollment challenge as
//!   its context. [`verify`] then checks the evidence against that context,
//!   and `TPM2_Certify` against `certify_nonce(challenge)`.
//! - **YubiKey** takes one: the PIV chain to a pinned Yubico root (or a test
//!   root the configuration names), its policy (the admin policy for admin
//!   principals, the device policy otherwise), and the attested key must be
//!   the enrolled key. PIV attestation carries no nonce: freshness comes from
//!   the enrollment proof, signed by the same key over the challenge.

use std::path::PathBuf;

use holdfast_hw::KeyKind;
use holdfast_hw::attestation::evidence::{
    PivEvidence, TpmActivationChallenge, TpmActivationRequest, TpmEvidence, certify_nonce,
};
use holdfast_hw::attestation::piv::{self, PivPolicy, PivTrust};
use holdfast_hw::attestation::tpm::{self, PendingActivation, TpmTrust};
use holdfast_proto::UnixTime;
use serde::{Deserialize, Serialize};

use super::EnrollError;
use super::proof::EnrollProof;
use crate::config::{AttestationConfig, ConfigError};
use crate::model::AttestationSummary;

/// What this issuer trusts, loaded once at start-up from `[attestation]`.
pub struct AttestationTrust {
    tpm: Option<TpmTrust>,
    yubikey: PivTrust,
    yubikey_device: PivPolicy,
    yubikey_admin: PivPolicy,
    test_roots: Vec<PathBuf>,
}

impl core::fmt::Debug for AttestationTrust {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AttestationTrust")
            .field(
                "tpm_anchors",
                &self.tpm.as_ref().map_or(0, |t| t.anchors().len()),
            )
            .field(
                "yubikey_anchors",
                &self.yubikey.anchor_names().collect::<Vec<_>>(),
            )
            .field("yubikey_device", &self.yubikey_device)
            .field("yubikey_admin", &self.yubikey_admin)
            .finish()
    }
}

impl AttestationTrust {
    /// Reads the configured roots. Yubico's roots are pinned in the binary;
    /// TPM roots come only from the configuration.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key and the file at fault.
    pub fn load(config: &AttestationConfig) -> Result<Self, ConfigError> {
        let tpm = if config.tpm_roots.is_empty() {
            if !config.tpm_intermediates.is_empty() {
                return Err(ConfigError(
                    "attestation.tpm_intermediates is set but attestation.tpm_roots is empty"
                        .into(),
                ));
            }
            None
        } else {
            Some(
                TpmTrust::from_files(&config.tpm_roots, &config.tpm_intermediates)
                    .map_err(|e| ConfigError(format!("attestation.tpm_roots: {e}")))?,
            )
        };
        let mut yubikey = PivTrust::yubico();
        for path in &config.danger_yubikey_test_roots {
            let pem = std::fs::read_to_string(path).map_err(|e| {
                ConfigError(format!(
                    "attestation.danger_yubikey_test_roots: {}: {e}",
                    path.display()
                ))
            })?;
            yubikey = yubikey.with_test_root_pem(&pem).map_err(|e| {
                ConfigError(format!(
                    "attestation.danger_yubikey_test_roots: {}: {e}",
                    path.display()
                ))
            })?;
        }
        Ok(Self {
            tpm,
            yubikey,
            yubikey_device: config.yubikey_device.clone(),
            yubikey_admin: config.yubikey_admin.clone(),
            test_roots: config.danger_yubikey_test_roots.clone(),
        })
    }

    /// The YubiKey test roots trusted besides Yubico's (for a start-up
    /// warning).
    pub fn test_roots(&self) -> &[PathBuf] {
        &self.test_roots
    }

    /// Whether TPM enrollment can be verified (TPM roots are configured).
    pub fn tpm_configured(&self) -> bool {
        self.tpm.is_some()
    }

    fn tpm_trust(&self) -> Result<&TpmTrust, EnrollError> {
        self.tpm.as_ref().ok_or(EnrollError::AttestationNotConfigured {
            kind: KeyKind::Tpm,
            hint: "set attestation.tpm_roots (HOLDFAST_TPM_ROOTS) to the TPM manufacturers' root CAs",
        })
    }
}

/// The body `POST /enroll/challenge` may carry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    /// TPM credential activation: the EK certificate and the AK.
    #[serde(default)]
    pub tpm: Option<TpmActivationRequest>,
}

/// What is stored with a challenge, besides its expiry.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum ChallengeContext {
    /// A TPM credential activation is pending.
    Tpm {
        /// What the evidence must match.
        activation: PendingActivation,
    },
}

/// Step 1 of a TPM enrollment: checks the EK chain and the AK, and makes
/// the credential-activation challenge. Returns it and the context to store
/// with the enrollment challenge.
///
/// # Errors
/// [`EnrollError::AttestationNotConfigured`] without TPM roots;
/// [`EnrollError::AttestationRefused`] for an untrusted EK or a bad AK.
pub(crate) fn begin_tpm(
    trust: &AttestationTrust,
    request: &TpmActivationRequest,
    now: UnixTime,
) -> Result<(TpmActivationChallenge, Vec<u8>), EnrollError> {
    let (challenge, activation) =
        tpm::begin_activation(request, trust.tpm_trust()?, now).map_err(tpm_refused)?;
    let context = serde_json::to_vec(&ChallengeContext::Tpm { activation })
        .map_err(|e| EnrollError::MalformedRequest(format!("challenge context: {e}")))?;
    Ok((challenge, context))
}

/// Checks the evidence that a key of `kind` lives where it claims, and
/// summarises it for the device record: software keys have none; TPM
/// evidence must match the activation stored with the challenge
/// (`context`) and certify the proof's key over the proof's challenge;
/// YubiKey evidence must attest the proof's key under the policy for
/// `admin` or device principals.
///
/// # Errors
/// The [`EnrollError`] of the first failed check.
pub(crate) fn verify(
    trust: &AttestationTrust,
    kind: KeyKind,
    attestation: Option<&serde_json::Value>,
    proof: &EnrollProof,
    context: &[u8],
    admin: bool,
    now: UnixTime,
) -> Result<AttestationSummary, EnrollError> {
    let (jwk, challenge) = (proof.jwk(), proof.challenge());
    let (summary_kind, facts) = match kind {
        KeyKind::Software => {
            if attestation.is_some() {
                return Err(EnrollError::AttestationUnexpected);
            }
            (kind, Vec::new())
        }
        KeyKind::Tpm => {
            let value = attestation.ok_or(EnrollError::AttestationRequired { kind })?;
            let tpm_trust = trust.tpm_trust()?;
            let evidence: TpmEvidence = evidence(kind, Some(value))?;
            let activation = match serde_json::from_slice::<ChallengeContext>(context) {
                Ok(ChallengeContext::Tpm { activation }) => activation,
                Err(_) => return Err(EnrollError::TpmActivationMissing),
            };
            let attested = tpm::verify_evidence(
                &evidence,
                &activation,
                tpm_trust,
                &certify_nonce(challenge),
                jwk,
                now,
            )
            .map_err(tpm_refused)?;
            (kind, attested.facts())
        }
        KeyKind::Yubikey => {
            let evidence: PivEvidence = evidence(kind, attestation)?;
            let policy = if admin {
                &trust.yubikey_admin
            } else {
                &trust.yubikey_device
            };
            let attested = piv::verify_evidence(&evidence, &trust.yubikey, policy, jwk, now)
                .map_err(|e| EnrollError::AttestationRefused {
                    kind: KeyKind::Yubikey,
                    check: e.check(),
                    reason: e.to_string(),
                })?;
            (kind, attested.facts())
        }
        other => {
            return Err(EnrollError::AttestationNotConfigured {
                kind: other,
                hint: "this build does not know this key kind",
            });
        }
    };
    Ok(AttestationSummary {
        kind: summary_kind.as_str().to_owned(),
        details: facts
            .into_iter()
            .map(|(name, value)| (name.to_owned(), serde_json::Value::String(value)))
            .collect(),
    })
}

/// The evidence of `kind`, required and well-formed.
fn evidence<T: for<'de> Deserialize<'de>>(
    kind: KeyKind,
    attestation: Option<&serde_json::Value>,
) -> Result<T, EnrollError> {
    let value = attestation.ok_or(EnrollError::AttestationRequired { kind })?;
    T::deserialize(value).map_err(|e| EnrollError::AttestationMalformed {
        kind,
        reason: e.to_string(),
    })
}

fn tpm_refused(err: tpm::TpmAttestError) -> EnrollError {
    EnrollError::AttestationRefused {
        kind: KeyKind::Tpm,
        check: err.check(),
        reason: err.to_string(),
    }
}
