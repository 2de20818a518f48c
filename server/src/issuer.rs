//! The token endpoint's rules (RFC 6749 §4.4 and §6 with RFC 7523 client
//! authentication and RFC 9449 binding): who gets a session, and how a
//! session is continued. No HTTP here: `http/token.rs` maps the outcome.

use std::net::IpAddr;

use holdfast_proto::{
    AccessTokenClaims, AssertionCheck, AssertionError, Audience, Confirmation, IpCheck, Jkt,
    NonceCheck, ProofCheck, ProofError, ReplayKey, SignerError, UnixTime, assertion_client_id,
    ip_check, verify_client_assertion,
};
use serde::Serialize;

use crate::audit::AuditEntry;
use crate::model::{
    Device, DeviceId, DeviceState, Principal, RefreshRecord, Role, Session, SessionId,
};
use crate::secret::{random_id, random_secret, secret_hash};
use crate::sessions::{Deviation, apply_ip_violation, binding_claim, binding_for, session_ip};
use crate::state::AppState;
use crate::store::{RevocationEvent, Rotated, StoreError, StoreReplayGuard};

/// Longest client assertion lifetime accepted (RFC 7523 §3 leaves it to the
/// server; short keeps the replay record small).
const MAX_ASSERTION_LIFETIME_SECS: u64 = 300;
/// Clock leeway for assertion times.
const LEEWAY_SECS: u64 = 5;
/// A device's `last_seen` is rewritten at most this often.
const LAST_SEEN_RESOLUTION_SECS: u64 = 60;

/// A successful token response (RFC 6749 §5.1, RFC 9449 §5).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    /// The access token (an RFC 9068 JWT bound to the DPoP key).
    pub access_token: String,
    /// Always `DPoP`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The next refresh token (rotated on every use).
    pub refresh_token: String,
}

/// Why a grant was refused; `http/token.rs` maps each to its wire error.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// Client authentication failed (`invalid_client`).
    #[error("{0}")]
    InvalidClient(String),
    /// The grant is invalid, expired or revoked (`invalid_grant`).
    #[error("{0}")]
    InvalidGrant(String),
    /// The DPoP proof was refused.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The signing key failed.
    #[error(transparent)]
    Sign(#[from] SignerError),
}

impl GrantError {
    /// The name of the failed check, for metrics and audit.
    pub fn check(&self) -> &'static str {
        match self {
            Self::InvalidClient(_) => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::Proof(e) => e.check(),
            Self::Store(_) | Self::Sign(_) => "server_error",
        }
    }
}

/// Facts about the request that are not in its body.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// Client address.
    pub ip: Option<IpAddr>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// Now.
    pub now: UnixTime,
}

/// `client_credentials` with `private_key_jwt` and a DPoP proof, both by the
/// device's enrolled key: starts a session.
///
/// # Errors
/// [`GrantError`] naming the refusal; every refusal is audited.
pub fn client_credentials(
    state: &AppState,
    assertion: &str,
    proof: &str,
    ctx: &RequestContext,
) -> Result<TokenResponse, GrantError> {
    let result = client_credentials_inner(state, assertion, proof, ctx);
    if let Err(err) = &result {
        refused(
            state,
            "client_credentials",
            err,
            ctx,
            assertion_client_id(assertion).ok(),
        );
    }
    result
}

fn client_credentials_inner(
    state: &AppState,
    assertion: &str,
    proof: &str,
    ctx: &RequestContext,
) -> Result<TokenResponse, GrantError> {
    let settings = &state.settings;
    // RFC 7523 §3: find the client, then check its assertion with its key.
    let client_id =
        assertion_client_id(assertion).map_err(|e| GrantError::InvalidClient(e.to_string()))?;
    let device = client_id
        .parse::<DeviceId>()
        .ok()
        .map(|id| state.store.device(&id))
        .transpose()?
        .flatten()
        .ok_or_else(|| GrantError::InvalidClient("unknown client".into()))?;
    let audiences = [settings.token_endpoint.as_str(), settings.issuer.as_str()];
    let verified = verify_client_assertion(
        assertion,
        &device.jwk,
        &AssertionCheck {
            audiences: &audiences,
            now: ctx.now,
            max_lifetime: MAX_ASSERTION_LIFETIME_SECS,
            leeway: LEEWAY_SECS,
        },
    )
    .map_err(|e: AssertionError| GrantError::InvalidClient(e.to_string()))?;
    // RFC 7523 §3: `sub` is the client. The lookup used a bounded copy of
    // it; the verified claim must name exactly this device.
    if verified.client_id() != device.id.as_str() {
        return Err(GrantError::InvalidClient(
            "the client assertion's sub is not this client".into(),
        ));
    }
    let principal = admissible(state, &device)?;

    // RFC 9449 §5: the proof is by the same enrolled key, so the token can
    // only ever be bound to a key whose residence was checked at enrollment.
    check_proof(state, proof, &device.jkt, ctx.now)?;

    // The assertion's jti is single-use (RFC 7523 §3 item 7). Recorded after
    // the proof passed, so a request refused for a missing nonce can be
    // retried with the same assertion.
    let key = ReplayKey::new(&device.jkt, "client_assertion", verified.jti());
    let expires = verified.exp().plus(LEEWAY_SECS);
    if state
        .store
        .check_and_record(key.as_bytes(), expires, ctx.now)?
        == holdfast_proto::Freshness::Replayed
    {
        return Err(GrantError::InvalidClient(
            "client assertion jti was already used".into(),
        ));
    }

    let tokens = &settings.raw.tokens;
    let refresh_token = random_secret();
    let session = Session {
        id: SessionId::generate(),
        principal: principal.id.clone(),
        device: device.id.clone(),
        jkt: device.jkt,
        ip: ctx.ip.map(|ip| ip.to_string()),
        user_agent: ctx.user_agent.clone(),
        created_at: ctx.now,
        refreshed_at: ctx.now,
        expires_at: ctx.now.plus(tokens.session_ttl_secs),
        revoked: None,
        flags: Vec::new(),
    };
    let refresh = RefreshRecord {
        session: session.id.clone(),
        jkt: device.jkt,
        issued_at: ctx.now,
        expires_at: ctx
            .now
            .plus(tokens.refresh_token_ttl_secs)
            .min(session.expires_at),
        used_at: None,
    };
    state
        .store
        .create_session(&session, &secret_hash(&refresh_token), &refresh)?;
    let response = issue(state, &principal, &device, &session, refresh_token, ctx)?;
    audit(
        state,
        AuditEntry::new(ctx.now, "session_started", device.id.as_str(), "ok")
            .ip(session.ip.as_deref())
            .detail("sid", session.id.as_str())
            .detail("principal", principal.id.as_str())
            .detail("jkt", device.jkt.as_str()),
    );
    Ok(response)
}

/// `refresh_token`: rotates the refresh token and issues a new access token.
/// A refresh token used twice revokes its session (theft signal).
///
/// # Errors
/// [`GrantError`] naming the refusal; every refusal is audited.
pub fn refresh(
    state: &AppState,
    refresh_token: &str,
    proof: &str,
    ctx: &RequestContext,
) -> Result<TokenResponse, GrantError> {
    let result = refresh_inner(state, refresh_token, proof, ctx);
    if let Err(err) = &result {
        refused(state, "refresh_token", err, ctx, None);
    }
    result
}

fn refresh_inner(
    state: &AppState,
    refresh_token: &str,
    proof: &str,
    ctx: &RequestContext,
) -> Result<TokenResponse, GrantError> {
    let old_hash = secret_hash(refresh_token);
    let record = state
        .store
        .refresh_token(&old_hash)?
        .ok_or_else(|| GrantError::InvalidGrant("unknown refresh token".into()))?;
    // The refresh token is bound to the session's key (RFC 9449 §5): without
    // the key, a stolen refresh token does nothing, not even trip the alarm.
    check_proof(state, proof, &record.jkt, ctx.now)?;

    let mut session = state
        .store
        .session(&record.session)?
        .ok_or_else(|| GrantError::InvalidGrant("unknown session".into()))?;
    session_alive(state, &session, ctx.now)?;
    let device = state
        .store
        .device(&session.device)?
        .ok_or_else(|| GrantError::InvalidGrant("unknown device".into()))?;
    let principal = admissible(state, &device).map_err(|e| match e {
        GrantError::InvalidClient(msg) => GrantError::InvalidGrant(msg),
        other => other,
    })?;
    enforce_ip_binding(state, &principal, &mut session, ctx)?;

    let new_token = random_secret();
    let new_record = RefreshRecord {
        session: session.id.clone(),
        jkt: session.jkt,
        issued_at: ctx.now,
        expires_at: ctx
            .now
            .plus(state.settings.raw.tokens.refresh_token_ttl_secs)
            .min(session.expires_at),
        used_at: None,
    };
    match state.store.rotate_refresh_token(
        &old_hash,
        &secret_hash(&new_token),
        &new_record,
        ctx.now,
    )? {
        Rotated::Rotated(_) => {}
        Rotated::Unknown => return Err(GrantError::InvalidGrant("refresh token expired".into())),
        Rotated::Reused(_) => {
            let event = RevocationEvent {
                cursor: 0,
                at: ctx.now,
                kind: "session".into(),
                id: session.id.to_string(),
                before: None,
                device: None,
            };
            state.store.append_revocation(event)?;
            state.revocations.notify_waiters();
            audit(
                state,
                AuditEntry::new(
                    ctx.now,
                    "refresh_token_reuse",
                    session.device.as_str(),
                    "invalid_grant",
                )
                .ip(ctx.ip.map(|ip| ip.to_string()).as_deref())
                .detail("sid", session.id.as_str())
                .detail("action", "session revoked"),
            );
            state
                .metrics
                .refused("token_refused", "refresh_token_reuse");
            return Err(GrantError::InvalidGrant(
                "refresh token was already used; the session is revoked".into(),
            ));
        }
    }
    session.refreshed_at = ctx.now;
    state.store.update_session(&session)?;
    issue(state, &principal, &device, &session, new_token, ctx)
}

/// The device may obtain tokens: active, of an accepted kind, owned by an
/// enabled principal.
fn admissible(state: &AppState, device: &Device) -> Result<Principal, GrantError> {
    if device.state != DeviceState::Active {
        return Err(GrantError::InvalidClient(format!(
            "device is {}",
            match device.state {
                DeviceState::Disabled => "disabled",
                _ => "revoked",
            }
        )));
    }
    if !state.settings.accepted_kinds.contains(&device.kind) {
        return Err(GrantError::InvalidClient(format!(
            "{} keys are not accepted by this issuer's policy",
            device.kind
        )));
    }
    let principal = state.store.principal(&device.principal)?.ok_or_else(|| {
        GrantError::InvalidClient("the device's principal no longer exists".into())
    })?;
    if principal.disabled {
        return Err(GrantError::InvalidClient(
            "the principal is disabled".into(),
        ));
    }
    // Tokens go to principals with a role that uses them.
    if !(principal.has_role(Role::Device) || principal.has_role(Role::Admin)) {
        return Err(GrantError::InvalidClient(
            "the principal has no role that may obtain tokens".into(),
        ));
    }
    Ok(principal)
}

/// The session is not revoked, expired, or older than a revoke-all.
pub(crate) fn session_alive(
    state: &AppState,
    session: &Session,
    now: UnixTime,
) -> Result<(), GrantError> {
    if session.revoked.is_some() {
        return Err(GrantError::InvalidGrant("the session is revoked".into()));
    }
    if session.expires_at <= now {
        return Err(GrantError::InvalidGrant("the session has expired".into()));
    }
    if state
        .store
        .revoke_all_before()?
        .is_some_and(|before| session.created_at < before)
    {
        return Err(GrantError::InvalidGrant(
            "the session was revoked (revoke-all)".into(),
        ));
    }
    Ok(())
}

fn check_proof(state: &AppState, proof: &str, jkt: &Jkt, now: UnixTime) -> Result<(), GrantError> {
    let nonce = if state.settings.raw.dpop.require_nonce {
        NonceCheck::Issuer(&state.nonces)
    } else {
        NonceCheck::NotRequired
    };
    let check = ProofCheck {
        htm: "POST",
        htu: &state.settings.token_endpoint,
        access_token: None,
        bound_jkt: Some(jkt),
        nonce,
        now,
    };
    state
        .proofs
        .verify(proof, &check, &StoreReplayGuard(state.store.as_ref()))?;
    Ok(())
}

/// The refresh comes from within the session's IP binding; else the
/// issuer's policy is applied to the session (`sessions.rs`, shared with
/// the deviations verifiers report) and the refresh refused.
fn enforce_ip_binding(
    state: &AppState,
    principal: &Principal,
    session: &mut Session,
    ctx: &RequestContext,
) -> Result<(), GrantError> {
    let policy = &state.settings.raw.policy;
    let check = ip_check(
        binding_for(policy, principal),
        session_ip(session),
        ctx.ip,
        policy.ipv4_prefix,
        policy.ipv6_prefix,
    );
    if check == IpCheck::Allowed {
        return Ok(());
    }
    let device = session.device.clone();
    let deviation = Deviation {
        actor: device.as_str(),
        reported_by: None,
        outcome: "invalid_grant",
        request_ip: ctx.ip,
        now: ctx.now,
    };
    apply_ip_violation(state, session, &deviation)?;
    Err(GrantError::InvalidGrant(
        "refresh from an address outside the session's IP binding".into(),
    ))
}

fn issue(
    state: &AppState,
    principal: &Principal,
    device: &Device,
    session: &Session,
    refresh_token: String,
    ctx: &RequestContext,
) -> Result<TokenResponse, GrantError> {
    let tokens = &state.settings.raw.tokens;
    let ttl = tokens.access_token_ttl_secs;
    // RFC 9068 §3: `aud` per client when configured (device id first,
    // then principal name), else the default.
    let audience = tokens
        .client_audience
        .get(device.id.as_str())
        .or_else(|| tokens.client_audience.get(&principal.name))
        .unwrap_or(&tokens.audience);
    let audience = match audience.as_slice() {
        [one] => Audience::One(one.clone()),
        many => Audience::Many(many.to_vec()),
    };
    let claims = AccessTokenClaims {
        iss: state.settings.issuer.clone(),
        sub: principal.id.to_string(),
        aud: audience,
        exp: ctx.now.plus(ttl),
        iat: ctx.now,
        nbf: Some(ctx.now),
        jti: random_id(),
        client_id: device.id.to_string(),
        scope: None,
        sid: Some(session.id.to_string()),
        cnf: Confirmation { jkt: session.jkt },
        amr: vec![device.kind.amr().to_owned(), "pop".to_owned()],
        // The binding travels in the token, so verifiers enforce it on
        // every request, not only the issuer on refresh.
        ipb: binding_claim(&state.settings.raw.policy, principal, session),
    };
    let access_token = state.keyring().sign_access_token(&claims)?;
    // `last_seen` to the minute: rewriting the device record (and, with
    // `sync_writes`, waiting for its flush) on every token cost a grant a
    // sixth of its store writes (`docs/performance.md`, "Token issuance").
    if device.last_seen.is_none_or(|at| {
        ctx.now.as_secs() >= at.as_secs().saturating_add(LAST_SEEN_RESOLUTION_SECS)
    }) {
        let mut seen = device.clone();
        seen.last_seen = Some(ctx.now);
        state.store.update_device(&seen)?;
    }
    state.metrics.token_issued();
    audit(
        state,
        AuditEntry::new(ctx.now, "token_issued", device.id.as_str(), "ok")
            .ip(ctx.ip.map(|ip| ip.to_string()).as_deref())
            .detail("sid", session.id.as_str())
            .detail("jti", claims.jti.as_str())
            .detail("amr", claims.amr.join(" ")),
    );
    Ok(TokenResponse {
        access_token,
        token_type: "DPoP",
        expires_in: ttl,
        refresh_token,
    })
}

fn refused(
    state: &AppState,
    grant: &str,
    err: &GrantError,
    ctx: &RequestContext,
    client: Option<String>,
) {
    state.metrics.refused("token_refused", err.check());
    let outcome = match err {
        GrantError::InvalidClient(_) => "invalid_client",
        GrantError::InvalidGrant(_) => "invalid_grant",
        GrantError::Proof(e) => e.wire_code().as_str(),
        GrantError::Store(_) | GrantError::Sign(_) => "server_error",
    };
    // A missing nonce is the normal first step of every client; not worth a record.
    if matches!(err, GrantError::Proof(ProofError::NonceMissing)) {
        return;
    }
    audit(
        state,
        AuditEntry::new(
            ctx.now,
            "token_refused",
            client.as_deref().unwrap_or("anonymous"),
            outcome,
        )
        .ip(ctx.ip.map(|ip| ip.to_string()).as_deref())
        .detail("grant_type", grant)
        .detail("check", err.check())
        .detail("reason", err.to_string()),
    );
}

/// Verifies an access token this issuer minted: a published key, our
/// `iss`, an audience we issue, `exp`/`nbf` with `leeway`. Whether its
/// session, device and principal are still alive is the caller's next check.
///
/// # Errors
/// The first failed check as a [`holdfast_proto::TokenError`].
pub(crate) fn verify_issued_token(
    state: &AppState,
    token: &str,
    now: UnixTime,
    leeway: u64,
) -> Result<AccessTokenClaims, holdfast_proto::TokenError> {
    let check = holdfast_proto::TokenCheck {
        issuer: &state.settings.issuer,
        audiences: &state.settings.known_audiences,
        now,
        leeway,
    };
    holdfast_proto::verify_access_token(token, &*state.keyring(), &check)
}

/// Appends to the audit log; a failure is logged (the request's own outcome
/// stands).
pub(crate) fn audit(state: &AppState, entry: AuditEntry) {
    if let Err(e) = state.store.append_audit(entry) {
        tracing::error!(error = %e, "cannot append to the audit log");
    }
}
