//! Enrolling a device key with an issuer: challenge, proof of possession,
//! redemption of the one-time code.

use holdfast_proto::endpoints::{ENROLL_CHALLENGE_PATH, ENROLL_PATH};
use holdfast_proto::{Signer, UnixTime, build_enrollment_proof};
use serde::{Deserialize, Serialize};

use crate::client::{json_or_refusal, send};
use crate::error::ClientError;

/// What the issuer answers to a successful enrollment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Enrollment {
    /// The device's id and OAuth `client_id`.
    pub client_id: String,
    /// The owning principal's id.
    pub principal_id: String,
    /// The owning principal's name.
    pub principal: String,
    /// The enrolled key's thumbprint.
    pub jkt: String,
    /// `software`, `tpm` or `yubikey`.
    pub kind: String,
    /// The issuer URL.
    pub issuer: String,
}

/// What a key contributes to its enrollment beyond the proof of
/// possession: attestation evidence. Software keys contribute nothing
/// ([`NoEvidence`]); a YubiKey sends its attestation certificates; a TPM
/// takes a round trip (credential activation) and so also adds to the
/// challenge request.
///
/// The calls may block on hardware (milliseconds on a YubiKey, up to a
/// second on a TPM).
pub trait EnrollmentEvidence: Send {
    /// The JSON body of `POST /enroll/challenge`, if this kind sends one
    /// (TPM: `{"tpm": TpmActivationRequest}`). None by default.
    ///
    /// # Errors
    /// [`ClientError::Device`] when the hardware fails.
    fn challenge_request(&mut self) -> Result<Option<serde_json::Value>, ClientError> {
        Ok(None)
    }

    /// The `attestation` member of `POST /enroll`, given the issuer's
    /// challenge string and its whole challenge answer.
    ///
    /// # Errors
    /// [`ClientError::Device`] when the hardware fails, or
    /// [`ClientError::Protocol`] when the answer lacks what this kind needs.
    fn attestation(
        &mut self,
        challenge: &str,
        answer: &serde_json::Value,
    ) -> Result<Option<serde_json::Value>, ClientError>;
}

/// The evidence of a key that has none: a software key.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvidence;

impl EnrollmentEvidence for NoEvidence {
    fn attestation(
        &mut self,
        _challenge: &str,
        _answer: &serde_json::Value,
    ) -> Result<Option<serde_json::Value>, ClientError> {
        Ok(None)
    }
}

/// What to enroll: a key, where it lives, its evidence and a name.
pub struct EnrollRequest<'a> {
    /// The one-time enrollment code from an admin.
    pub code: &'a str,
    /// `software`, `tpm` or `yubikey`.
    pub kind: &'a str,
    /// A name for people (hostname, "Alice's YubiKey").
    pub name: &'a str,
    /// The new key.
    pub signer: &'a dyn Signer,
    /// Its attestation evidence.
    pub evidence: &'a mut dyn EnrollmentEvidence,
}

/// Enrolls a key with the issuer at `server`, redeeming the request's code:
/// challenge (with the evidence's challenge request, if any), enrollment
/// proof, evidence, redemption.
///
/// # Errors
/// [`ClientError::Refused`] with the issuer's reason (unknown, used or
/// expired code; kind not allowed; attestation refused…), or transport,
/// device and signing errors.
pub async fn enroll(
    http: &reqwest::Client,
    server: &str,
    request: EnrollRequest<'_>,
    now: UnixTime,
) -> Result<Enrollment, ClientError> {
    let EnrollRequest {
        code,
        kind,
        name,
        signer,
        evidence,
    } = request;
    let base = server.trim_end_matches('/');
    let url = format!("{base}{ENROLL_CHALLENGE_PATH}");
    let mut challenge_request = http.post(&url);
    if let Some(body) = evidence.challenge_request()? {
        challenge_request = challenge_request.json(&body);
    }
    let response = send(challenge_request, &url).await?;
    let answer = json_or_refusal(response, &url).await?;
    let challenge = answer
        .get("challenge")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| ClientError::Protocol("the enrollment challenge has no challenge".into()))?;
    let attestation = evidence.attestation(challenge, &answer)?;
    let proof = build_enrollment_proof(signer, challenge, code, now)?;
    let url = format!("{base}{ENROLL_PATH}");
    let body = serde_json::json!({
        "code": code,
        "kind": kind,
        "name": name,
        "proof": proof,
        "attestation": attestation,
    });
    let response = send(http.post(&url).json(&body), &url).await?;
    let enrolled = json_or_refusal(response, &url).await?;
    serde_json::from_value(enrolled)
        .map_err(|e| ClientError::Protocol(format!("enrollment response: {e}")))
}
