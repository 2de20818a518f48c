//! `/admin/principals`: list, revoke.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::extract::AdminPath;
use super::step_up::require_step_up;
use super::{AdminCaller, revoke_for};
use crate::http::error::ApiError;
use crate::model::{PrincipalId, Role};
use crate::revocation::Target;
use crate::state::AppState;
use crate::store::RevocationEvent;

/// `GET /admin/principals` → `{"principals": [Principal…]}`.
pub(super) async fn list(
    State(state): State<AppState>,
    _caller: AdminCaller,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "principals": state.store.principals()? })))
}

/// `POST /admin/principals/{id}/revoke` (step-up when the principal is an
/// admin) → `RevocationEvent`: the principal is disabled and every session
/// of its devices revoked.
pub(super) async fn revoke(
    State(state): State<AppState>,
    caller: AdminCaller,
    AdminPath(id): AdminPath,
) -> Result<Json<RevocationEvent>, ApiError> {
    let id: PrincipalId = id.parse().map_err(|_| ApiError::not_found("principal"))?;
    // Disabling an admin locks a person out of the issuer: privileged.
    let target = state.store.principal(&id)?;
    if target.is_some_and(|p| p.has_role(Role::Admin)) {
        require_step_up(&state, &caller, "admin_disabled", state.clock.now())?;
    }
    revoke_for(&state, &caller, &Target::Principal(id), None)
}
