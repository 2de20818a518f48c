//! Revocation: of a session, a device, a principal, or of everything issued
//! before an instant (one record, not one write per token). Every revocation
//! is stored, appended to the feed verifiers follow, wakes feed readers, and
//! is audited.

use holdfast_proto::UnixTime;

use crate::audit::AuditEntry;
use crate::issuer::audit;
use crate::model::{DeviceId, DeviceState, PrincipalId, Revocation, SessionId};
use crate::state::AppState;
use crate::store::{RevocationEvent, StoreError};

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
    let (kind, id, before) = match target {
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
            ("session", sid.to_string(), None)
        }
        Target::Device(device_id) => {
            let mut device = store
                .device(device_id)?
                .ok_or(RevokeError::NotFound("device"))?;
            device.state = DeviceState::Revoked;
            store.update_device(&device)?;
            revoke_sessions(state, |s| s.device == *device_id, reason, now)?;
            ("device", device_id.to_string(), None)
        }
        Target::Principal(principal_id) => {
            let mut principal = store
                .principal(principal_id)?
                .ok_or(RevokeError::NotFound("principal"))?;
            principal.disabled = true;
            store.put_principal(&principal)?;
            revoke_sessions(state, |s| s.principal == *principal_id, reason, now)?;
            ("principal", principal_id.to_string(), None)
        }
        Target::AllBefore(at) => {
            store.set_revoke_all_before(*at)?;
            ("all_before", String::new(), Some(*at))
        }
    };
    let event = store.append_revocation(RevocationEvent {
        cursor: 0,
        at: now,
        kind: kind.to_owned(),
        id: id.clone(),
        before,
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
