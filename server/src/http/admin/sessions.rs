//! `/admin/sessions` (list, revoke) and `/admin/revoke-all`.

use axum::Json;
use axum::extract::State;
use holdfast_proto::UnixTime;
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{AdminJson, AdminPath, AdminQuery};
use super::step_up::require_step_up;
use super::{AdminCaller, revoke_for};
use crate::http::error::ApiError;
use crate::model::{DeviceId, PrincipalId, Session, SessionId};
use crate::revocation::Target;
use crate::state::AppState;
use crate::store::RevocationEvent;

/// `?principal=p-…&device=d-…`, both optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SessionFilter {
    principal: Option<PrincipalId>,
    device: Option<DeviceId>,
}

/// `{"before": <unix seconds>, "reason": "…"}`; `before` defaults to now,
/// `reason` (why, for the audit record) is optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RevokeAll {
    before: Option<u64>,
    reason: Option<String>,
}

/// Longest `reason` kept in the audit record, in characters.
const MAX_REASON_CHARS: usize = 500;

/// `GET /admin/sessions[?principal=&device=]` → `{"sessions": [Session…]}`.
pub(super) async fn list(
    State(state): State<AppState>,
    _caller: AdminCaller,
    AdminQuery(filter): AdminQuery<SessionFilter>,
) -> Result<Json<Value>, ApiError> {
    let sessions: Vec<Session> = state
        .store
        .sessions()?
        .into_iter()
        .filter(|s| filter.principal.as_ref().is_none_or(|p| s.principal == *p))
        .filter(|s| filter.device.as_ref().is_none_or(|d| s.device == *d))
        .collect();
    Ok(Json(json!({ "sessions": sessions })))
}

/// `POST /admin/sessions/{sid}/revoke` → `RevocationEvent`.
pub(super) async fn revoke(
    State(state): State<AppState>,
    caller: AdminCaller,
    AdminPath(sid): AdminPath,
) -> Result<Json<RevocationEvent>, ApiError> {
    let sid: SessionId = sid.parse().map_err(|_| ApiError::not_found("session"))?;
    revoke_for(&state, &caller, &Target::Session(sid), None)
}

/// `POST /admin/revoke-all` (step-up) → `RevocationEvent`: every session
/// begun before `before` (default: now), or in its second, is dead, the
/// caller's own included.
pub(super) async fn revoke_all(
    State(state): State<AppState>,
    caller: AdminCaller,
    AdminJson(body): AdminJson<RevokeAll>,
) -> Result<Json<RevocationEvent>, ApiError> {
    let now = state.clock.now();
    require_step_up(&state, &caller, "revoke_all", now)?;
    let before = body.before.map_or(now, UnixTime::from_secs);
    // A future instant would also kill sessions not yet begun: refuse it
    // rather than lock everyone out until then.
    if before > now {
        return Err(ApiError::invalid_request(
            "before must not be in the future",
        ));
    }
    let note: Option<String> = body
        .reason
        .map(|r| r.chars().take(MAX_REASON_CHARS).collect());
    let event = revoke_for(&state, &caller, &Target::AllBefore(before), note.as_deref())?;
    // Times are whole seconds and "before" is strict: the sessions that
    // began in the very second of `before` would survive "revoke
    // everything", so they are revoked one by one (verifiers learn them as
    // session revocations). Sessions begun after this call stay alive.
    let same_second = state
        .store
        .sessions()
        .map_err(ApiError::from)?
        .into_iter()
        .filter(|s| s.revoked.is_none() && s.created_at == before);
    for session in same_second {
        let _session_event = revoke_for(
            &state,
            &caller,
            &Target::Session(session.id),
            note.as_deref(),
        )?;
    }
    Ok(event)
}
