//! Revocation: of a session, a device, a principal, or of everything issued
//! before an instant (one record, not one write per token). Every revocation
//! is stored, appended to the feed verifiers follow, wakes feed readers, and
//! is audited.
//!
//! The same feed carries the changes of the device-key registry
//! ([`publish_device`]: `device_enrolled`, `device_state`), so a verifier
//! that read `GET /keys/enrolled` once stays current by following it.

use holdfast_proto::UnixTime;

use crate::audit::AuditEntry;
use crate::issuer::audit;
use crate::model::{Device, DeviceId, DeviceState, PrincipalId, Revocation, SessionId};
use crate::state::AppState;
use crate::store::{DeviceFeedEntry, RevocationEvent, StoreError};

/// What to revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One session and its tokens.
    Session(SessionId),
    /// A device: its sessions die and it gets no new ones.
    Device(DeviceId),
    /// A principal: disabled, with all its devices' sessions.
    Principal(PrincipalId),
    /// Every session that began before this instant.
    AllBefore(UnixTime),
}

/// Why a revocation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    /// No such session, device or principal.
    #[error("no such {0}")]
    NotFound(&'static str),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Revokes `target` at `now` on behalf of `actor` (for the audit record),
/// for `reason` (e.g. `admin`, `rfc7009`, `refresh_token_reuse`).
///
/// # Errors
/// [`RevokeError::NotFound`] for an unknown target; storage failures.
pub fn revoke(
    state: &AppState,
    target: &Target,
    actor: &str,
    ip: Option<&str>,
    reason: &str,
    now: UnixTime,
) -> Result<RevocationEvent, RevokeError> {
    revoke_noted(state, target, actor, ip, reason, None, now)
}

/// As [`revoke`], with a person's explanation (`note`) kept in the audit
/// record beside the machine-readable `reason`.
///
/// # Errors
/// [`RevokeError::NotFound`] for an unknown target; storage failures.
pub fn revoke_noted(
    state: &AppState,
    target: &Target,
    actor: &str,
    ip: Option<&str>,
    reason: &str,
    note: Option<&str>,
    now: UnixTime,
) -> Result<RevocationEvent, RevokeError> {
    let store = state.store.as_ref();
    let (kind, id, before, device) = match target {
        Target::Session(sid) => {
            let mut session = store
                .session(sid)?
                .ok_or(RevokeError::NotFound("session"))?;
            if session.revoked.is_none() {
                session.revoked = Some(Revocation {
                    at: now,
                    reason: reason.to_owned(),
                });
                store.update_session(&session)?;
            }
            ("session", sid.to_string(), None, None)
        }
        Target::Device(device_id) => {
            let mut device = store
                .device(device_id)?
                .ok_or(RevokeError::NotFound("device"))?;
            device.state = DeviceState::Revoked;
            store.update_device(&device)?;
            revoke_sessions(state, |s| s.device == *device_id, reason, now)?;
            let entry = feed_entry(state, &device)?;
            ("device", device_id.to_string(), None, Some(entry))
        }
        Target::Principal(principal_id) => {
            let mut principal = store
                .principal(principal_id)?
                .ok_or(RevokeError::NotFound("principal"))?;
            principal.disabled = true;
            store.put_principal(&principal)?;
            revoke_sessions(state, |s| s.principal == *principal_id, reason, now)?;
            ("principal", principal_id.to_string(), None, None)
        }
        Target::AllBefore(at) => {
            store.set_revoke_all_before(*at)?;
            ("all_before", String::new(), Some(*at), None)
        }
    };
    let event = store.append_revocation(RevocationEvent {
        cursor: 0,
        at: now,
        kind: kind.to_owned(),
        id: id.clone(),
        before,
        device,
    })?;
    state.revocations.notify_waiters();
    let mut entry = AuditEntry::new(now, "revocation", actor, "ok")
        .ip(ip)
        .detail("target", kind)
        .detail("reason", reason)
        .detail("cursor", event.cursor);
    if !id.is_empty() {
        entry = entry.detail("id", id);
    }
    if let Some(before) = before {
        entry = entry.detail("before", before.as_secs());
    }
    if let Some(note) = note {
        entry = entry.detail("note", note);
    }
    audit(state, entry);
    Ok(event)
}

/// Publishes a change of `device` to the feed (`kind` is
/// `device_enrolled` or `device_state`) with its current entry, and wakes
/// feed readers. Called after the change is stored; the caller audits it.
///
/// # Errors
/// Storage failures. The change is stored already; the caller reports the
/// failure rather than let verifiers miss it silently.
pub fn publish_device(
    state: &AppState,
    kind: &str,
    device: &Device,
    now: UnixTime,
) -> Result<RevocationEvent, StoreError> {
    let event = state.store.append_revocation(RevocationEvent {
        cursor: 0,
        at: now,
        kind: kind.to_owned(),
        id: device.id.to_string(),
        before: None,
        device: Some(feed_entry(state, device)?),
    })?;
    state.revocations.notify_waiters();
    Ok(event)
}

/// The feed entry of `device`, with its owner's current state.
fn feed_entry(state: &AppState, device: &Device) -> Result<DeviceFeedEntry, StoreError> {
    let principal_disabled = state
        .store
        .principal(&device.principal)?
        .is_none_or(|p| p.disabled);
    Ok(DeviceFeedEntry::new(device, principal_disabled))
}

fn revoke_sessions(
    state: &AppState,
    matches: impl Fn(&crate::model::Session) -> bool,
    reason: &str,
    now: UnixTime,
) -> Result<(), StoreError> {
    for mut session in state.store.sessions()? {
        if matches(&session) && session.revoked.is_none() {
            session.revoked = Some(Revocation {
                at: now,
                reason: reason.to_owned(),
            });
            state.store.update_session(&session)?;
        }
    }
    Ok(())
}
