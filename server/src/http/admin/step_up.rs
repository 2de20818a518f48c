//! Step-up for privileged admin actions (revoke-all, key rotation, admin
//! enrollment codes): the caller must have authenticated recently, not just
//! hold a valid token.
//!
//! Today the one factor is a recent session: a new `client_credentials`
//! grant is a fresh proof of possession of the device key, while a refresh
//! only continues an old login and does not count. Further factors (a
//! YubiKey touch, a TOTP code) plug in as more [`StepUp`] implementations
//! checked by [`require_step_up`].

use holdfast_proto::UnixTime;

use super::auth::AdminCaller;
use crate::audit::AuditEntry;
use crate::http::error::ApiError;
use crate::issuer::audit;
use crate::state::AppState;

/// A factor a privileged action requires on top of an admin's token.
pub trait StepUp {
    /// Checks that `caller` satisfied this factor recently enough at `now`.
    ///
    /// # Errors
    /// [`StepUpRequired`] telling the caller what to do.
    fn check(&self, caller: &AdminCaller, now: UnixTime) -> Result<(), StepUpRequired>;
}

/// What a caller must do before retrying a privileged action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("step-up required: {0}")]
pub struct StepUpRequired(pub String);

/// The session began (with a `client_credentials` grant) at most
/// `max_age_secs` ago. Refreshes do not reset this: `created_at`, not
/// `refreshed_at`, is what counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecentSession {
    /// `admin.step_up_max_age_secs`.
    pub max_age_secs: u64,
}

impl StepUp for RecentSession {
    fn check(&self, caller: &AdminCaller, now: UnixTime) -> Result<(), StepUpRequired> {
        let age = now
            .as_secs()
            .saturating_sub(caller.session.created_at.as_secs());
        if age <= self.max_age_secs {
            Ok(())
        } else {
            Err(StepUpRequired(format!(
                "re-authenticate (new session) within {} s",
                self.max_age_secs
            )))
        }
    }
}

/// Runs every configured step-up factor for `action`; a refusal is counted,
/// audited and answered 403 `access_denied` with the DPoP challenge.
pub(super) fn require_step_up(
    state: &AppState,
    caller: &AdminCaller,
    action: &'static str,
    now: UnixTime,
) -> Result<(), ApiError> {
    let factor = RecentSession {
        max_age_secs: state.settings.raw.admin.step_up_max_age_secs,
    };
    let Err(required) = factor.check(caller, now) else {
        return Ok(());
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
        .ip(Some(&caller.ip.to_string()))
        .detail("check", "step_up")
        .detail("action", action)
        .detail("sid", caller.session.id.as_str()),
    );
    Err(ApiError::access_denied(required.to_string()).at_resource(&state.settings.algs))
}
