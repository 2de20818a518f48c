//! Attestation evidence for enrollment, per key kind: the
//! [`EnrollmentEvidence`](crate::EnrollmentEvidence) implementations for
//! hardware keys (features `tpm` and `yubikey`).

#[cfg(feature = "tpm")]
pub use tpm::TpmEnrollment;
#[cfg(feature = "yubikey")]
pub use yubikey::PivEnrollment;

#[cfg(feature = "yubikey")]
mod yubikey {
    use holdfast_hw::attestation::evidence::PivEvidence;

    use crate::{ClientError, EnrollmentEvidence};

    /// YubiKey evidence: the slot's attestation certificate and the f9
    /// certificate, read from the YubiKey before enrolling
    /// (`PivKey::attestation`). PIV attestation has no nonce: the
    /// enrollment proof, signed by the same key over the challenge, makes
    /// the enrollment fresh.
    #[derive(Debug, Clone)]
    pub struct PivEnrollment {
        evidence: PivEvidence,
    }

    impl PivEnrollment {
        /// Evidence read from the YubiKey.
        pub fn new(evidence: PivEvidence) -> Self {
            Self { evidence }
        }
    }

    impl EnrollmentEvidence for PivEnrollment {
        fn attestation(
            &mut self,
            _challenge: &str,
            _answer: &serde_json::Value,
        ) -> Result<Option<serde_json::Value>, ClientError> {
            serde_json::to_value(&self.evidence)
                .map(Some)
                .map_err(|e| ClientError::Protocol(format!("YubiKey evidence: {e}")))
        }
    }
}

#[cfg(feature = "tpm")]
mod tpm {
    use std::sync::Arc;

    use holdfast_hw::TpmKey;
    use holdfast_hw::attestation::evidence::TpmActivationChallenge;
    use holdfast_hw::tpm::{PendingTpm, TpmAttestor};

    use crate::{ClientError, EnrollmentEvidence};

    /// TPM evidence: the EK certificate and a new attestation key go with
    /// the challenge request; the answer's credential is activated and the
    /// device key certified over the challenge.
    pub struct TpmEnrollment {
        key: Arc<TpmKey>,
        attestor: TpmAttestor,
        pending: Option<PendingTpm>,
    }

    impl TpmEnrollment {
        /// Evidence for `key`, with the TPM's first EK that has a
        /// certificate (RSA, then ECC).
        pub fn new(key: Arc<TpmKey>) -> Self {
            Self {
                key,
                attestor: TpmAttestor::new(),
                pending: None,
            }
        }
    }

    impl EnrollmentEvidence for TpmEnrollment {
        fn challenge_request(&mut self) -> Result<Option<serde_json::Value>, ClientError> {
            let (request, pending) = self
                .attestor
                .begin(&self.key)
                .map_err(|e| ClientError::Device(format!("TPM attestation: {e}")))?;
            self.pending = Some(pending);
            let body = serde_json::json!({ "tpm": request });
            Ok(Some(body))
        }

        fn attestation(
            &mut self,
            challenge: &str,
            answer: &serde_json::Value,
        ) -> Result<Option<serde_json::Value>, ClientError> {
            let activation: TpmActivationChallenge = answer
                .get("tpm")
                .cloned()
                .ok_or_else(|| {
                    ClientError::Protocol(
                        "the issuer's challenge has no TPM credential activation".into(),
                    )
                })
                .and_then(|value| {
                    serde_json::from_value(value).map_err(|e| {
                        ClientError::Protocol(format!("the TPM credential activation: {e}"))
                    })
                })?;
            let pending = self.pending.take().ok_or_else(|| {
                ClientError::Device("TPM attestation: the challenge was never requested".into())
            })?;
            let evidence = pending
                .finish(&self.key, challenge, &activation)
                .map_err(|e| ClientError::Device(format!("TPM attestation: {e}")))?;
            serde_json::to_value(evidence)
                .map(Some)
                .map_err(|e| ClientError::Protocol(format!("TPM evidence: {e}")))
        }
    }
}
