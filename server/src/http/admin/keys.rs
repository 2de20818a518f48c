//! `POST /admin/keys/rotate`.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::step_up::require_step_up;
use super::{AdminCaller, admin_action};
use crate::http::error::ApiError;
use crate::issuer::audit;
use crate::keys::Keyring;
use crate::state::AppState;

/// `POST /admin/keys/rotate` (step-up) → `{"kid": new, "published": [kid…]}`.
/// The new key signs from now on; retired keys stay in the JWKS until the
/// tokens they signed have expired.
pub(super) async fn rotate(
    State(state): State<AppState>,
    caller: AdminCaller,
) -> Result<Json<Value>, ApiError> {
    let now = state.clock.now();
    require_step_up(&state, &caller, "keys_rotate", now)?;
    let kid = Keyring::rotate(state.store.as_ref(), now).map_err(|e| ApiError::server(&e))?;
    state.reload_keys().map_err(|e| ApiError::server(&e))?;
    audit(
        &state,
        admin_action(&caller, now, "keys_rotated").detail("kid", kid.as_str()),
    );
    let keyring = state.keyring();
    let published: Vec<&Value> = keyring
        .jwks()
        .get("keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|key| key.get("kid"))
        .collect();
    Ok(Json(json!({ "kid": kid, "published": published })))
}
