//! Step-up over HTTP: `POST /admin/step-up/challenge`, `POST
//! /admin/step-up`, `POST /admin/step-up/totp`, `POST
//! /admin/principals/{id}/step-up/unlock`, and [`require_step_up`], which
//! privileged handlers call first. The rules are in [`crate::step_up`].

use axum::Json;
use axum::extract::State;
use holdfast_proto::UnixTime;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::AdminCaller;
use super::extract::{AdminJson, AdminPath};
use crate::audit::AuditEntry;
use crate::http::error::ApiError;
use crate::issuer::audit;
use crate::model::{DeviceId, PrincipalId};
use crate::state::AppState;
use crate::step_up::{self, Caller, Factor, RequireError, StepUpError};

/// `{"method":"totp","code":"123456"}` or
/// `{"method":"yubikey","device_id":"d-…","proof":"<JWS>"}`.
#[derive(Deserialize)]
#[serde(tag = "method", rename_all = "lowercase", deny_unknown_fields)]
pub(super) enum StepUpBody {
    Totp { code: String },
    Yubikey { device_id: String, proof: String },
}

impl core::fmt::Debug for StepUpBody {
    // Neither the code nor the proof is ever printed.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Totp { .. } => f.write_str("StepUpBody::Totp(..)"),
            Self::Yubikey { device_id, .. } => {
                write!(f, "StepUpBody::Yubikey({device_id}, ..)")
            }
        }
    }
}

/// `POST /admin/step-up/challenge` → `{"challenge", "sid", "expires_in"}`:
/// a one-time challenge for a YubiKey step-up of this session.
pub(super) async fn challenge(
    State(state): State<AppState>,
    caller: AdminCaller,
) -> Result<Json<Value>, ApiError> {
    let now = state.clock.now();
    let ip = caller.ip.to_string();
    let (challenge, expires_in) = step_up::challenge(&state, &domain(&caller, &ip), now)?;
    Ok(Json(json!({
        "challenge": challenge,
        "sid": caller.session.id,
        "expires_in": expires_in,
    })))
}

/// `POST /admin/step-up` → `{"method", "expires_in", "expires_at"}`: this
/// session may perform privileged actions for `expires_in` seconds.
pub(super) async fn step_up(
    State(state): State<AppState>,
    caller: AdminCaller,
    AdminJson(body): AdminJson<StepUpBody>,
) -> Result<Json<Value>, ApiError> {
    let now = state.clock.now();
    let ip = caller.ip.to_string();
    let device;
    let factor = match &body {
        StepUpBody::Totp { code } => Factor::Totp { code },
        StepUpBody::Yubikey { device_id, proof } => {
            device = device_id
                .parse::<DeviceId>()
                .map_err(|_| ApiError::invalid_request("device_id is not a device id (d-…)"))?;
            Factor::Yubikey {
                device: &device,
                proof,
            }
        }
    };
    let grant = step_up::step_up(&state, &domain(&caller, &ip), factor, now).map_err(wire)?;
    Ok(Json(json!({
        "method": grant.method,
        "expires_in": grant.expires_at.as_secs().saturating_sub(now.as_secs()),
        "expires_at": grant.expires_at,
    })))
}

/// `POST /admin/step-up/totp` → `{"otpauth_uri"}`: a new TOTP secret for
/// the caller, shown this once.
pub(super) async fn enroll_totp(
    State(state): State<AppState>,
    caller: AdminCaller,
) -> Result<Json<Value>, ApiError> {
    let now = state.clock.now();
    let ip = caller.ip.to_string();
    let uri = step_up::enroll_totp(&state, &domain(&caller, &ip), now).map_err(wire)?;
    Ok(Json(json!({ "otpauth_uri": uri })))
}

/// `POST /admin/principals/{id}/step-up/unlock` (step-up) →
/// `{"principal", "was_locked"}`: another admin's step-up lockout lifted.
pub(super) async fn unlock(
    State(state): State<AppState>,
    caller: AdminCaller,
    AdminPath(id): AdminPath,
) -> Result<Json<Value>, ApiError> {
    let now = state.clock.now();
    require_step_up(&state, &caller, "step_up_unlock", now)?;
    let target: PrincipalId = id.parse().map_err(|_| ApiError::not_found("principal"))?;
    // A locked admin cannot unlock itself, even with an older grant of
    // another session: that is what the other admin is for.
    if target == caller.principal.id {
        return Err(ApiError::access_denied(
            "an admin cannot lift its own step-up lockout: ask another admin, or run \
             `holdfastd admin unlock-step-up NAME` on the server host",
        ));
    }
    let ip = caller.ip.to_string();
    let was_locked =
        step_up::unlock(&state, &target, &caller.actor(), Some(&ip), now).map_err(wire)?;
    Ok(Json(
        json!({ "principal": target, "was_locked": was_locked }),
    ))
}

/// Lets `action` through only if `caller`'s session holds a live step-up;
/// a refusal is counted, audited and answered 403 `access_denied` with the
/// DPoP challenge, saying what to do.
pub(super) fn require_step_up(
    state: &AppState,
    caller: &AdminCaller,
    action: &'static str,
    now: UnixTime,
) -> Result<(), ApiError> {
    let ip = caller.ip.to_string();
    let required = match step_up::require(state, &domain(caller, &ip), now) {
        Ok(()) => return Ok(()),
        Err(RequireError::Store(e)) => return Err(e.into()),
        Err(RequireError::Required(required)) => required,
    };
    state.metrics.refused("admin_refused", "step_up");
    tracing::warn!(check = "step_up", action, sid = %caller.session.id, "admin action needs step-up");
    audit(
        state,
        AuditEntry::new(
            now,
            "admin_refused",
            caller.principal.id.as_str(),
            "access_denied",
        )
        .ip(Some(&ip))
        .detail("check", "step_up")
        .detail("action", action)
        .detail("sid", caller.session.id.as_str()),
    );
    Err(ApiError::access_denied(required.to_string()).at_resource(&state.settings.algs))
}

/// The domain's view of the caller.
fn domain<'a>(caller: &'a AdminCaller, ip: &'a str) -> Caller<'a> {
    Caller {
        principal: &caller.principal,
        session: &caller.session,
        ip,
    }
}

/// A step-up refusal on the wire: 403 `access_denied` for refused factors
/// and permissions, 400 `invalid_request` for a request to fix, 500 for
/// the key file or the store.
fn wire(err: StepUpError) -> ApiError {
    match err {
        StepUpError::TotpNotEnrolled | StepUpError::TotpMalformed => {
            ApiError::invalid_request(err.to_string())
        }
        StepUpError::UnknownPrincipal(_) => ApiError::not_found("principal"),
        StepUpError::Seal(e) => ApiError::server(&e),
        StepUpError::Store(e) => e.into(),
        _ => ApiError::access_denied(err.to_string()),
    }
}
