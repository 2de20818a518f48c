//! `/admin/devices`: list, show, disable, enable, revoke.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{AdminPath, AdminQuery};
use super::{AdminCaller, admin_action, revoke_for};
use crate::http::error::ApiError;
use crate::issuer::audit;
use crate::model::{Device, DeviceId, DeviceState, PrincipalId};
use crate::revocation::{Target, publish_device};
use crate::state::AppState;
use crate::store::RevocationEvent;

/// `?principal=p-…`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeviceFilter {
    principal: Option<PrincipalId>,
}

/// `GET /admin/devices[?principal=]` → `{"devices": [Device…]}`.
pub(super) async fn list(
    State(state): State<AppState>,
    _caller: AdminCaller,
    AdminQuery(filter): AdminQuery<DeviceFilter>,
) -> Result<Json<Value>, ApiError> {
    let devices: Vec<Device> = state
        .store
        .devices()?
        .into_iter()
        .filter(|d| filter.principal.as_ref().is_none_or(|p| d.principal == *p))
        .collect();
    Ok(Json(json!({ "devices": devices })))
}

/// `GET /admin/devices/{id}` → `Device`.
pub(super) async fn show(
    State(state): State<AppState>,
    _caller: AdminCaller,
    AdminPath(id): AdminPath,
) -> Result<Json<Device>, ApiError> {
    let id = device_id(&id)?;
    let device = state
        .store
        .device(&id)?
        .ok_or_else(|| ApiError::not_found("device"))?;
    Ok(Json(device))
}

/// `POST /admin/devices/{id}/disable` → `Device`. Refreshes and new grants
/// stop, and its tokens are refused (at introspection, and by verifiers
/// following the feed) until it is enabled again. Use revoke to end its
/// sessions for good.
pub(super) async fn disable(
    State(state): State<AppState>,
    caller: AdminCaller,
    AdminPath(id): AdminPath,
) -> Result<Json<Device>, ApiError> {
    set_state(&state, &caller, &device_id(&id)?, DeviceState::Disabled).map(Json)
}

/// `POST /admin/devices/{id}/enable` → `Device`.
pub(super) async fn enable(
    State(state): State<AppState>,
    caller: AdminCaller,
    AdminPath(id): AdminPath,
) -> Result<Json<Device>, ApiError> {
    set_state(&state, &caller, &device_id(&id)?, DeviceState::Active).map(Json)
}

/// `POST /admin/devices/{id}/revoke` → the feed's `RevocationEvent`.
pub(super) async fn revoke(
    State(state): State<AppState>,
    caller: AdminCaller,
    AdminPath(id): AdminPath,
) -> Result<Json<RevocationEvent>, ApiError> {
    revoke_for(&state, &caller, &Target::Device(device_id(&id)?), None)
}

/// An id that is not a device id names no device.
fn device_id(raw: &str) -> Result<DeviceId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found("device"))
}

/// Moves a device between `active` and `disabled`; `revoked` is final.
fn set_state(
    state: &AppState,
    caller: &AdminCaller,
    id: &DeviceId,
    to: DeviceState,
) -> Result<Device, ApiError> {
    let now = state.clock.now();
    let mut device = state
        .store
        .device(id)?
        .ok_or_else(|| ApiError::not_found("device"))?;
    if device.state == DeviceState::Revoked {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "the device is revoked, which is permanent",
        ));
    }
    let action = if to == DeviceState::Active {
        "device_enabled"
    } else {
        "device_disabled"
    };
    let changed = device.state != to;
    device.state = to;
    if changed {
        state.store.update_device(&device)?;
        // Verifiers refuse a disabled device's tokens from the next event on.
        publish_device(state, "device_state", &device, now)?;
    }
    audit(
        state,
        admin_action(caller, now, action)
            .detail("device", id.as_str())
            .detail("changed", changed),
    );
    Ok(device)
}
