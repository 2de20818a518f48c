//! The admin API under `/admin` (JSON in and out). Every handler takes an
//! [`AdminCaller`], so nothing here runs unless the request passed the
//! admin checks (allowlisted network, DPoP-bound admin token, proof for this
//! request); privileged actions also need a step-up of the session
//! ([`crate::step_up`]). Every change is
//! audited with the admin's principal id and address; reads are not.
//!
//! `docs/api.md` lists each endpoint's request, response and errors.

mod audit_log;
mod auth;
mod codes;
mod devices;
mod extract;
mod keys;
mod principals;
mod sessions;
mod step_up;
#[cfg(test)]
mod tests;

use axum::http::{HeaderValue, header};
use axum::middleware;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use holdfast_proto::UnixTime;
use holdfast_proto::endpoints::ADMIN_PREFIX;

pub use auth::AdminCaller;

use crate::audit::AuditEntry;
use crate::http::error::ApiError;
use crate::revocation::{RevokeError, Target, revoke_noted};
use crate::state::AppState;
use crate::store::RevocationEvent;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(&at("/devices"), get(devices::list))
        .route(&at("/devices/{id}"), get(devices::show))
        .route(&at("/devices/{id}/disable"), post(devices::disable))
        .route(&at("/devices/{id}/enable"), post(devices::enable))
        .route(&at("/devices/{id}/revoke"), post(devices::revoke))
        .route(&at("/principals"), get(principals::list))
        .route(&at("/principals/{id}/revoke"), post(principals::revoke))
        .route(&at("/sessions"), get(sessions::list))
        .route(&at("/sessions/{sid}/revoke"), post(sessions::revoke))
        .route(&at("/revoke-all"), post(sessions::revoke_all))
        .route(&at("/keys/rotate"), post(keys::rotate))
        .route(&at("/enrollment-codes"), post(codes::create))
        .route(&at("/step-up"), post(step_up::step_up))
        .route(&at("/step-up/challenge"), post(step_up::challenge))
        .route(&at("/step-up/totp"), post(step_up::enroll_totp))
        .route(
            &at("/principals/{id}/step-up/unlock"),
            post(step_up::unlock),
        )
        .route(&at("/audit"), get(audit_log::range))
        .route(&at("/audit/verify"), get(audit_log::verify))
        .route_layer(middleware::map_response(no_store))
}

/// A path under [`ADMIN_PREFIX`].
fn at(path: &str) -> String {
    format!("{ADMIN_PREFIX}{path}")
}

/// Admin answers (device lists, one-time enrollment codes) are never cached.
async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The audit record of a successful admin action.
fn admin_action(caller: &AdminCaller, now: UnixTime, action: &str) -> AuditEntry {
    AuditEntry::new(now, "admin_action", &caller.actor(), "ok")
        .ip(Some(&caller.ip.to_string()))
        .detail("action", action)
        .detail("sid", caller.session.id.as_str())
}

/// Revokes `target` for `caller`; [`revoke_noted`] writes the audit record
/// (actor `admin:<id>`, the caller's address, reason `admin`, and the
/// admin's `note` if any).
fn revoke_for(
    state: &AppState,
    caller: &AdminCaller,
    target: &Target,
    note: Option<&str>,
) -> Result<Json<RevocationEvent>, ApiError> {
    let ip = caller.ip.to_string();
    revoke_noted(
        state,
        target,
        &caller.actor(),
        Some(&ip),
        "admin",
        note,
        state.clock.now(),
    )
    .map(Json)
    .map_err(|e| match e {
        RevokeError::NotFound(what) => ApiError::not_found(what),
        RevokeError::Store(e) => ApiError::from(e),
    })
}
