//! Stored records that belong to no domain module, and the versioned
//! envelope every record is written in.
//!
//! Each value on disk is JSON `{"v": N, ...record}`. Reading checks `v`, so a
//! later format can be migrated instead of misread.

use holdfast_hw::KeyKind;
use holdfast_proto::{Jkt, UnixTime};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::model::{Device, DeviceId, DeviceState, PrincipalId};

/// Format version of every record written by this build.
pub(super) const FORMAT_VERSION: u32 = 1;

#[derive(Serialize)]
struct EnvelopeOut<'a, T> {
    v: u32,
    #[serde(flatten)]
    record: &'a T,
}

#[derive(Deserialize)]
struct EnvelopeIn<T> {
    v: u32,
    #[serde(flatten)]
    record: T,
}

/// Encodes `record` in the current format.
pub(super) fn encode<T: Serialize>(tree: &'static str, record: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(&EnvelopeOut {
        v: FORMAT_VERSION,
        record,
    })
    .map_err(|e| StoreError::Corrupt {
        tree,
        reason: e.to_string(),
    })
}

/// Decodes a record, refusing formats this build does not know.
pub(super) fn decode<T: DeserializeOwned>(
    tree: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    let envelope: EnvelopeIn<T> =
        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
            tree,
            reason: e.to_string(),
        })?;
    if envelope.v != FORMAT_VERSION {
        return Err(StoreError::Corrupt {
            tree,
            reason: format!(
                "format version {} (this build reads {FORMAT_VERSION})",
                envelope.v
            ),
        });
    }
    Ok(envelope.record)
}

/// One issuer signing key.
#[derive(Clone, Serialize, Deserialize)]
pub struct SigningKeyRecord {
    /// `kid`: the key's thumbprint.
    pub kid: String,
    /// The private key, PKCS#8 PEM.
    pub pkcs8_pem: String,
    /// Creation.
    pub created_at: UnixTime,
    /// When it stopped signing (it stays published until its tokens expire).
    pub retired_at: Option<UnixTime>,
}

impl core::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

/// One entry of the revocation feed that verifiers follow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationEvent {
    /// Position in the feed (assigned on append; 0 before).
    pub cursor: u64,
    /// When.
    pub at: UnixTime,
    /// What: revocations `session`, `device`, `principal` and `all_before`;
    /// registry changes `device_enrolled` and `device_state`.
    pub kind: String,
    /// The revoked id (empty for `all_before`; the device id for device
    /// events).
    pub id: String,
    /// For `all_before`: tokens issued before this instant are dead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<UnixTime>,
    /// For `device`, `device_enrolled` and `device_state`: the device's
    /// entry after the change, so a verifier's key registry follows the
    /// issuer's without re-reading the snapshot. Absent from older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceFeedEntry>,
}

/// A device key as resource servers see it: an entry of `GET /keys/enrolled`
/// and the `device` member of device events in the feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceFeedEntry {
    /// The device (`client_id` of its tokens).
    pub device_id: DeviceId,
    /// Its owner (`sub` of its tokens).
    pub principal_id: PrincipalId,
    /// Thumbprint of its key (`cnf.jkt` of its tokens).
    pub jkt: Jkt,
    /// Where the key lives.
    #[serde(with = "crate::model::key_kind")]
    pub kind: KeyKind,
    /// `active`, `disabled` or `revoked`.
    pub state: DeviceState,
    /// The owner is disabled (or gone): its devices' tokens are dead too.
    pub principal_disabled: bool,
}

impl DeviceFeedEntry {
    /// The entry of `device`, whose owner is disabled or not.
    pub fn new(device: &Device, principal_disabled: bool) -> Self {
        Self {
            device_id: device.id.clone(),
            principal_id: device.principal.clone(),
            jkt: device.jkt,
            kind: device.kind,
            state: device.state,
            principal_disabled,
        }
    }
}

/// A stored audit record: the entry, its sequence number and its links.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// What happened.
    #[serde(flatten)]
    pub entry: crate::audit::AuditEntry,
    /// Hash of the previous record (hex; 64 zeros for the first).
    pub prev_hash: String,
    /// SHA-256 over `prev_hash`, `seq` and the entry (hex).
    pub hash: String,
}

// ---------------------------------------------------------------------------
// Admin step-up (issue 7): an admin's factors and lockout, grants bound to a
// session, one-time challenges. The rules live in `crate::step_up`.
// ---------------------------------------------------------------------------

/// One admin's step-up state: the TOTP secret (sealed), the last TOTP time
/// step used, and the consecutive-failure count and lockout.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepUpState {
    /// The TOTP secret, if one is enrolled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<StoredTotp>,
    /// The latest RFC 6238 time step that granted a step-up: no code of
    /// this step or an earlier one is accepted again (RFC 6238 §5.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_totp_step: Option<u64>,
    /// Step-up attempts counted as failed since the last success, unlock or
    /// lockout (an attempt is counted when it begins).
    #[serde(default)]
    pub failures: u32,
    /// Step-up is refused until this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<UnixTime>,
}

/// A TOTP secret as stored: sealed with the step-up key, which is kept
/// outside the store (`admin.totp_key_file`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTotp {
    /// AES-256-GCM nonce, base64url.
    pub nonce: String,
    /// The sealed secret and its tag, base64url.
    pub sealed: String,
    /// When it was enrolled.
    pub enrolled_at: UnixTime,
    /// A code from it has granted a step-up: until then it does not count
    /// as the admin's factor (a mis-scanned secret can be replaced).
    pub confirmed: bool,
}

impl core::fmt::Debug for StoredTotp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StoredTotp")
            .field("enrolled_at", &self.enrolled_at)
            .field("confirmed", &self.confirmed)
            .finish_non_exhaustive()
    }
}

/// What [`super::Store::begin_step_up_attempt`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepUpAttempt {
    /// Go ahead; this is the `n`th consecutive attempt (already counted as
    /// a failure until it succeeds).
    Allowed(u32),
    /// Locked until this instant.
    Locked(UnixTime),
    /// As many attempts as allowed are already under way.
    Saturated,
}

/// A step-up: privileged admin actions are allowed to session `sid` until
/// `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepUpGrant {
    /// The session it belongs to (and only that session).
    pub sid: crate::model::SessionId,
    /// The admin who stepped up.
    pub principal: PrincipalId,
    /// `totp` or `yubikey`.
    pub method: String,
    /// The device that signed, for `yubikey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceId>,
    /// When.
    pub granted_at: UnixTime,
    /// Until when.
    pub expires_at: UnixTime,
}

/// A one-time step-up challenge, stored under its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepUpChallengeRecord {
    /// The session that asked for it; only a proof for it may answer.
    pub sid: crate::model::SessionId,
    /// The admin who asked.
    pub principal: PrincipalId,
    /// Expiry.
    pub expires_at: UnixTime,
}
