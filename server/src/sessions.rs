//! Sessions used from outside their IP binding (`off`, `same-prefix`,
//! `strict`): which binding a session has, and what the issuer does when it
//! is broken, whether the issuer saw it itself (a refresh, `issuer.rs`) or a
//! verifier reported a refused request (`POST /sessions/ip-deviation`).
//!
//! The comparison is [`holdfast_proto::ip_check`], the one verifiers run on
//! the token's `ipb` claim: one piece of code, so the edge and the issuer
//! cannot disagree about what deviates.

use std::net::IpAddr;

use holdfast_proto::{IpBinding, IpBindingClaim, IpDeviationReport, UnixTime};

use crate::audit::AuditEntry;
use crate::config::{OnIpViolation, PolicyConfig};
use crate::issuer::audit;
use crate::model::{Principal, Revocation, Role, Session, SessionId};
use crate::revocation::{RevokeError, Target, revoke};
use crate::state::AppState;
use crate::store::StoreError;

/// The flag set on a session used from outside its binding.
pub const IP_DEVIATION_FLAG: &str = "ip_deviation";

/// The binding of `principal`'s sessions: the admin policy for admins,
/// else the device policy.
pub fn binding_for(policy: &PolicyConfig, principal: &Principal) -> IpBinding {
    if principal.has_role(Role::Admin) {
        policy.ip_binding_admin
    } else {
        policy.ip_binding_device
    }
}

/// The session's address as stored; `None` when unknown or unreadable (a
/// binding then cannot be met: fail closed).
pub fn session_ip(session: &Session) -> Option<IpAddr> {
    session.ip.as_deref().and_then(|ip| ip.parse().ok())
}

/// The `ipb` claim for the tokens of `session`, begun by `principal`:
/// `None` when the binding is `off`. A session whose address is unknown
/// gets the binding without an address, so every request deviates, as a
/// refresh of it does here.
pub fn binding_claim(
    policy: &PolicyConfig,
    principal: &Principal,
    session: &Session,
) -> Option<IpBindingClaim> {
    IpBindingClaim::new(
        binding_for(policy, principal),
        session_ip(session),
        policy.ipv4_prefix,
        policy.ipv6_prefix,
    )
}

/// Who saw a deviation and where it came from, for the audit record.
#[derive(Debug, Clone)]
pub struct Deviation<'a> {
    /// Who the audit record names: the device refreshing, or the resource
    /// server reporting.
    pub actor: &'a str,
    /// `None` when the issuer saw it itself; else the reporting resource
    /// server's id.
    pub reported_by: Option<&'a str>,
    /// The wire error the client got (`invalid_grant`, `invalid_token`).
    pub outcome: &'a str,
    /// The address the request came from.
    pub request_ip: Option<IpAddr>,
    /// Now.
    pub now: UnixTime,
}

/// What [`apply_ip_violation`] did to the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViolationAction {
    /// Flagged (`on_ip_violation = "flag"`).
    Flagged,
    /// Revoked, through the feed (`on_ip_violation = "revoke"`, the
    /// default), or it was revoked already.
    Revoked,
}

impl ViolationAction {
    fn describe(self) -> &'static str {
        match self {
            Self::Flagged => "session flagged",
            Self::Revoked => "session revoked",
        }
    }
}

/// Applies `policy.on_ip_violation` to `session`: flags it and, under
/// `revoke`, revokes it with [`revoke`] (stored, in the feed every verifier
/// follows, audited as a `revocation`). Audits the deviation itself
/// (`ip_deviation`, with both addresses and who reported it) and counts it.
///
/// # Errors
/// Storage failures.
pub fn apply_ip_violation(
    state: &AppState,
    session: &mut Session,
    deviation: &Deviation<'_>,
) -> Result<ViolationAction, StoreError> {
    let now = deviation.now;
    let request_ip = deviation.request_ip.map(|ip| ip.to_string());
    if !session.flags.iter().any(|f| f == IP_DEVIATION_FLAG) {
        session.flags.push(IP_DEVIATION_FLAG.into());
        state.store.update_session(session)?;
    }
    let action = match state.settings.raw.policy.on_ip_violation {
        OnIpViolation::Flag => ViolationAction::Flagged,
        OnIpViolation::Revoke if session.revoked.is_some() => ViolationAction::Revoked,
        OnIpViolation::Revoke => {
            let target = Target::Session(session.id.clone());
            match revoke(
                state,
                &target,
                deviation.actor,
                request_ip.as_deref(),
                IP_DEVIATION_FLAG,
                now,
            ) {
                Ok(_) | Err(RevokeError::NotFound(_)) => {}
                Err(RevokeError::Store(e)) => return Err(e),
            }
            session.revoked = Some(Revocation {
                at: now,
                reason: IP_DEVIATION_FLAG.into(),
            });
            ViolationAction::Revoked
        }
    };
    state.metrics.refused(
        "ip_deviation",
        if deviation.reported_by.is_some() {
            "verifier"
        } else {
            "token_endpoint"
        },
    );
    audit(
        state,
        AuditEntry::new(now, "ip_deviation", deviation.actor, deviation.outcome)
            .ip(request_ip.as_deref())
            .detail("sid", session.id.as_str())
            .detail("session_ip", session.ip.clone().unwrap_or_default())
            .detail("request_ip", request_ip.unwrap_or_default())
            .detail("reported_by", deviation.reported_by.unwrap_or("issuer"))
            .detail("action", action.describe()),
    );
    Ok(action)
}

/// Why a verifier's report was not acted on.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// No such session, or not the reported client's.
    #[error("unknown session")]
    UnknownSession,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A verifier (resource server `reporter`) refused a request for coming
/// from outside its session's IP binding: the issuer applies its policy to
/// the session as if it had seen the deviation itself.
///
/// The issuer does not re-judge the addresses: the verifier checked them
/// against the binding the issuer signed into the token, and a resource
/// server is trusted with its credentials (a dishonest one could as well
/// refuse every request). It checks only that the session exists and is
/// the reported client's.
///
/// # Errors
/// [`ReportError::UnknownSession`]; storage failures.
pub fn report_ip_deviation(
    state: &AppState,
    report: &IpDeviationReport,
    reporter: &str,
    now: UnixTime,
) -> Result<ViolationAction, ReportError> {
    let Ok(sid) = report.sid.parse::<SessionId>() else {
        return Err(ReportError::UnknownSession);
    };
    let Some(mut session) = state.store.session(&sid)? else {
        return Err(ReportError::UnknownSession);
    };
    if session.device.as_str() != report.client_id {
        return Err(ReportError::UnknownSession);
    }
    let deviation = Deviation {
        actor: reporter,
        reported_by: Some(reporter),
        outcome: "invalid_token",
        request_ip: Some(report.request_ip),
        now,
    };
    Ok(apply_ip_violation(state, &mut session, &deviation)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OnIpViolation;
    use crate::testing::TestIssuer;

    fn report(holder: &crate::testing::TestDevice, request_ip: &str) -> IpDeviationReport {
        IpDeviationReport {
            sid: holder.session.id.to_string(),
            client_id: holder.device.id.to_string(),
            session_ip: Some("127.0.0.1".parse().unwrap()),
            request_ip: request_ip.parse().unwrap(),
        }
    }

    #[test]
    fn a_report_revokes_the_session_through_the_feed_and_is_audited() {
        let issuer = TestIssuer::new();
        let holder = issuer.enrolled_device("alice", &[Role::Device]);
        let action = report_ip_deviation(
            &issuer.state,
            &report(&holder, "192.0.2.7"),
            "api",
            issuer.now(),
        )
        .unwrap();
        assert_eq!(action, ViolationAction::Revoked);
        let session = issuer
            .state
            .store
            .session(&holder.session.id)
            .unwrap()
            .unwrap();
        assert_eq!(session.revoked.unwrap().reason, "ip_deviation");
        assert_eq!(session.flags, ["ip_deviation"]);
        let events = issuer.state.store.revocations_since(0, 10).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].id, holder.session.id.as_str());

        // A second report: audited, not revoked (or fed) again.
        report_ip_deviation(
            &issuer.state,
            &report(&holder, "192.0.2.8"),
            "api",
            issuer.now(),
        )
        .unwrap();
        assert_eq!(
            issuer.state.store.revocations_since(0, 10).unwrap().len(),
            1
        );
        let audit = issuer.state.store.audit_range(0, 100).unwrap();
        let deviations: Vec<_> = audit
            .iter()
            .filter(|r| r.entry.event == "ip_deviation")
            .collect();
        assert_eq!(deviations.len(), 2);
        let first = &deviations[0].entry;
        assert_eq!(first.actor, "api");
        assert_eq!(first.outcome, "invalid_token");
        assert_eq!(first.details["reported_by"], "api");
        assert_eq!(first.details["session_ip"], "127.0.0.1");
        assert_eq!(first.details["request_ip"], "192.0.2.7");
        assert_eq!(first.details["action"], "session revoked");
        assert!(
            issuer
                .state
                .metrics
                .render()
                .contains("holdfast_ip_deviation_total{reason=\"verifier\"} 2")
        );
    }

    #[test]
    fn a_report_only_flags_under_the_flag_policy() {
        let issuer = TestIssuer::with_config(|c| c.policy.on_ip_violation = OnIpViolation::Flag);
        let holder = issuer.enrolled_device("alice", &[Role::Device]);
        let action = report_ip_deviation(
            &issuer.state,
            &report(&holder, "192.0.2.7"),
            "api",
            issuer.now(),
        )
        .unwrap();
        assert_eq!(action, ViolationAction::Flagged);
        let session = issuer
            .state
            .store
            .session(&holder.session.id)
            .unwrap()
            .unwrap();
        assert_eq!(session.revoked, None);
        assert_eq!(session.flags, ["ip_deviation"]);
        assert!(
            issuer
                .state
                .store
                .revocations_since(0, 10)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn rejects_report_for_an_unknown_session_or_another_client() {
        let issuer = TestIssuer::new();
        let holder = issuer.enrolled_device("alice", &[Role::Device]);
        let mut other = report(&holder, "192.0.2.7");
        other.client_id = "d-someone-else".into();
        assert!(matches!(
            report_ip_deviation(&issuer.state, &other, "api", issuer.now()),
            Err(ReportError::UnknownSession)
        ));
        let mut unknown = report(&holder, "192.0.2.7");
        unknown.sid = "not-a-session".into();
        assert!(matches!(
            report_ip_deviation(&issuer.state, &unknown, "api", issuer.now()),
            Err(ReportError::UnknownSession)
        ));
        let session = issuer
            .state
            .store
            .session(&holder.session.id)
            .unwrap()
            .unwrap();
        assert_eq!(session.revoked, None);
        assert!(session.flags.is_empty());
    }

    #[test]
    fn binding_claim_follows_the_role_policy() {
        let issuer = TestIssuer::new();
        let device = issuer.enrolled_device("alice", &[Role::Device]);
        let admin = issuer.enrolled_device("root", &[Role::Admin]);
        let policy = &issuer.state.settings.raw.policy;
        // Defaults: device sessions unbound, admin sessions strict.
        assert_eq!(
            binding_claim(policy, &device.principal, &device.session),
            None
        );
        let claim = binding_claim(policy, &admin.principal, &admin.session).unwrap();
        assert_eq!(claim.mode, IpBinding::Strict);
        assert_eq!(claim.ip, Some("127.0.0.1".parse().unwrap()));
        // An unknown address keeps the binding, without an address.
        let mut unknown = admin.session.clone();
        unknown.ip = None;
        let claim = binding_claim(policy, &admin.principal, &unknown).unwrap();
        assert_eq!(claim.ip, None);
    }
}
