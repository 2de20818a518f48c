//! `POST /admin/enrollment-codes`.

use axum::Json;
use axum::extract::State;
use holdfast_hw::KeyKind;
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::AdminJson;
use super::step_up::require_step_up;
use super::{AdminCaller, admin_action};
use crate::enrollment::create_code;
use crate::http::error::ApiError;
use crate::issuer::audit;
use crate::model::Role;
use crate::state::AppState;

/// Longest lifetime an admin may give a code, unless the configured default
/// is longer: a code is a bearer credential until redeemed.
const MAX_TTL_SECS: u64 = 30 * 86_400;

/// `{"principal": "name", "roles": [...], "kinds": [...], "ttl_secs": n}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewCode {
    /// The principal's name; created with `roles` if it does not exist.
    principal: String,
    /// Default `["device"]`.
    #[serde(default = "device_role")]
    roles: Vec<Role>,
    /// Default: every kind the policy accepts.
    kinds: Option<Vec<String>>,
    /// Default `policy.enrollment_code_ttl_secs`.
    ttl_secs: Option<u64>,
}

fn device_role() -> Vec<Role> {
    vec![Role::Device]
}

/// `POST /admin/enrollment-codes` (step-up when `roles` has `admin`) →
/// `{"code": "…", "expires_at": n, "principal": "p-…"}`. The code is shown
/// once; only its hash is stored.
pub(super) async fn create(
    State(state): State<AppState>,
    caller: AdminCaller,
    AdminJson(body): AdminJson<NewCode>,
) -> Result<Json<Value>, ApiError> {
    let now = state.clock.now();
    if body.roles.contains(&Role::Admin) {
        require_step_up(&state, &caller, "enrollment_code_admin", now)?;
    }
    let kinds = kinds(&state, body.kinds.as_deref())?;
    let ttl = ttl_secs(&state, body.ttl_secs)?;
    let (code, record) = create_code(
        &state,
        &body.principal,
        &body.roles,
        &kinds,
        &caller.actor(),
        ttl,
        now,
    )?;
    audit(
        &state,
        admin_action(&caller, now, "enrollment_code_created")
            .detail("principal", record.principal.as_str())
            .detail("roles", roles_text(&body.roles))
            .detail("expires_at", record.expires_at.as_secs()),
    );
    Ok(Json(json!({
        "code": code,
        "expires_at": record.expires_at,
        "principal": record.principal,
    })))
}

/// The requested kinds, each one the policy accepts.
fn kinds(state: &AppState, names: Option<&[String]>) -> Result<Vec<KeyKind>, ApiError> {
    let accepted = &state.settings.accepted_kinds;
    let Some(names) = names else {
        return Ok(accepted.clone());
    };
    names
        .iter()
        .map(|name| {
            let kind = name
                .parse::<KeyKind>()
                .map_err(|e| ApiError::invalid_request(e.to_string()))?;
            if accepted.contains(&kind) {
                Ok(kind)
            } else {
                Err(ApiError::invalid_request(format!(
                    "this issuer's policy does not accept {kind} keys"
                )))
            }
        })
        .collect()
}

fn ttl_secs(state: &AppState, requested: Option<u64>) -> Result<u64, ApiError> {
    let default = state.settings.raw.policy.enrollment_code_ttl_secs;
    let max = MAX_TTL_SECS.max(default);
    match requested.unwrap_or(default) {
        0 => Err(ApiError::invalid_request("ttl_secs must be at least 1")),
        ttl if ttl > max => Err(ApiError::invalid_request(format!(
            "ttl_secs must be at most {max}"
        ))),
        ttl => Ok(ttl),
    }
}

fn roles_text(roles: &[Role]) -> String {
    let names: Vec<&str> = roles
        .iter()
        .map(|role| match role {
            Role::Device => "device",
            Role::Admin => "admin",
        })
        .collect();
    names.join(" ")
}
