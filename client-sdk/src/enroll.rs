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

/// Enrolls `signer`'s key with the issuer at `server`, redeeming `code`.
///
/// # Errors
/// [`ClientError::Refused`] with the issuer's reason (unknown, used or
/// expired code; kind not allowed…), or transport and signing errors.
pub async fn enroll(
    http: &reqwest::Client,
    server: &str,
    code: &str,
    kind: &str,
    name: &str,
    signer: &dyn Signer,
    now: UnixTime,
) -> Result<Enrollment, ClientError> {
    let base = server.trim_end_matches('/');
    let url = format!("{base}{ENROLL_CHALLENGE_PATH}");
    let response = send(http.post(&url), &url).await?;
    let challenge = json_or_refusal(response, &url).await?;
    let challenge = challenge
        .get("challenge")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| ClientError::Protocol("the enrollment challenge has no challenge".into()))?;
    let proof = build_enrollment_proof(signer, challenge, code, now)?;
    let url = format!("{base}{ENROLL_PATH}");
    let body = serde_json::json!({ "code": code, "kind": kind, "name": name, "proof": proof });
    let response = send(http.post(&url).json(&body), &url).await?;
    let enrolled = json_or_refusal(response, &url).await?;
    serde_json::from_value(enrolled)
        .map_err(|e| ClientError::Protocol(format!("enrollment response: {e}")))
}
