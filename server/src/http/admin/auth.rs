//! [`AdminCaller`]: the check that runs before every admin handler. It
//! admits a request only from an allowlisted network, with one
//! `Authorization: DPoP` access token issued here, a DPoP proof for this very
//! request by the token's key (RFC 9449 §7), a live session, an active
//! device and an enabled principal holding the `admin` role. Every refusal
//! is counted, logged once and audited as `admin_refused`.

use std::net::IpAddr;

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use holdfast_proto::IpPrefix;
use holdfast_proto::{
    AccessTokenClaims, Htu, NonceCheck, ProofCheck, UnixTime, single_dpop_header,
};

use crate::audit::AuditEntry;
use crate::http::error::ApiError;
use crate::http::extract::ClientIp;
use crate::issuer::{GrantError, audit, session_alive};
use crate::model::{
    Device, DeviceId, DeviceState, Principal, PrincipalId, Role, Session, SessionId,
};
use crate::state::AppState;
use crate::store::{StoreError, StoreReplayGuard};

/// Clock leeway for the access token's `exp` and `nbf`, seconds.
const LEEWAY_SECS: u64 = 5;

/// An admin, authenticated for this request. Only [`AdminCaller`]'s
/// extractor makes one, so a handler that takes it cannot run for anyone
/// else.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AdminCaller {
    /// The admin principal (it has [`Role::Admin`] and is enabled).
    pub principal: Principal,
    /// The active device whose key signed the request's proof.
    pub device: Device,
    /// The live session the token belongs to.
    pub session: Session,
    /// The verified access token's claims.
    pub claims: AccessTokenClaims,
    /// The client address (inside the admin allowlist).
    pub ip: IpAddr,
}

impl AdminCaller {
    /// The audit `actor` of this admin's actions: `admin:<principal id>`.
    pub fn actor(&self) -> String {
        format!("admin:{}", self.principal.id)
    }
}

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Ok(ClientIp(ip)) = ClientIp::from_request_parts(parts, state).await;
        let now = state.clock.now();
        authenticate(parts, state, ip, now).map_err(|refusal| refused(state, refusal, ip, now))
    }
}

/// Why a request did not become an [`AdminCaller`]: the answer, the check
/// that failed (for metrics and audit) and who the caller claimed to be.
struct Refusal {
    check: &'static str,
    actor: Option<String>,
    error: Box<ApiError>,
}

impl Refusal {
    fn new(check: &'static str, error: ApiError) -> Self {
        Self {
            check,
            actor: None,
            error: Box::new(error),
        }
    }

    fn invalid_request(check: &'static str, description: &str) -> Self {
        Self::new(check, ApiError::invalid_request(description))
    }

    /// 401 `invalid_token`: the token, or what it names, is no longer good.
    fn invalid_token(check: &'static str, description: impl Into<String>) -> Self {
        Self::new(
            check,
            ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", description),
        )
    }

    fn store(err: StoreError) -> Self {
        Self::new("server_error", ApiError::from(err))
    }

    fn by(mut self, sub: &str) -> Self {
        self.actor = Some(sub.to_owned());
        self
    }
}

/// The checks, in order. The allowlist comes first so that callers from
/// elsewhere learn nothing about tokens and cannot burn a proof's `jti`;
/// the proof comes before any lookup, so a stolen token without its key
/// reveals nothing about the session or roles behind it.
fn authenticate(
    parts: &Parts,
    state: &AppState,
    ip: Option<IpAddr>,
    now: UnixTime,
) -> Result<AdminCaller, Refusal> {
    let ip = allowlisted(&state.settings.admin_cidrs, ip)?;
    let token = dpop_authorization(&parts.headers, state)?;
    // RFC 9449 §4.3 step 1: exactly one DPoP header.
    let proof = single_dpop_header(parts.headers.get_all("dpop").iter().map(|v| v.as_bytes()))
        .map_err(|e| Refusal::new(e.check(), ApiError::proof(&e, String::new)))?;
    let claims = verify_token(state, token, now)?;
    verify_proof(parts, state, token, proof, &claims, now).map_err(|r| r.by(&claims.sub))?;
    let (session, device, principal) =
        standing(state, &claims, now).map_err(|r| r.by(&claims.sub))?;
    Ok(AdminCaller {
        principal,
        device,
        session,
        claims,
        ip,
    })
}

/// The peer must be inside `admin.allowed_cidrs`; an unknown peer is refused
/// (fail closed).
fn allowlisted(cidrs: &[IpPrefix], ip: Option<IpAddr>) -> Result<IpAddr, Refusal> {
    let denied = || {
        Refusal::new(
            "ip_not_allowed",
            ApiError::access_denied("the admin API is not available from this address"),
        )
    };
    // A dual-stack listener reports IPv4 peers as `::ffff:a.b.c.d`.
    let ip = ip.map(|ip| ip.to_canonical()).ok_or_else(denied)?;
    if cidrs.iter().any(|net| net.contains(ip)) {
        Ok(ip)
    } else {
        Err(denied())
    }
}

/// Exactly one `Authorization: DPoP <token68>` (RFC 9449 §7.1). A DPoP-bound
/// token under `Bearer`, two headers or two schemes is `invalid_request`
/// (RFC 6750 §3.1: more than one method); no header at all gets the bare
/// challenge.
fn dpop_authorization<'a>(headers: &'a HeaderMap, state: &AppState) -> Result<&'a str, Refusal> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        let missing = ApiError::credentials_missing(
            &state.settings.algs,
            "an Authorization: DPoP access token is required",
        );
        return Err(Refusal::new("authorization_missing", missing));
    };
    if values.next().is_some() {
        return Err(Refusal::invalid_request(
            "multiple_authorization",
            "more than one Authorization header",
        ));
    }
    let malformed = || {
        Refusal::invalid_request(
            "authorization_malformed",
            "the Authorization header must be \"DPoP <access token>\"",
        )
    };
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(malformed)?;
    if scheme.eq_ignore_ascii_case("Bearer") {
        return Err(Refusal::invalid_request(
            "bearer_scheme",
            "admin tokens are DPoP-bound: use the DPoP scheme, not Bearer",
        ));
    }
    if !scheme.eq_ignore_ascii_case("DPoP") {
        return Err(Refusal::invalid_request(
            "unsupported_scheme",
            "the Authorization scheme must be DPoP",
        ));
    }
    let token = token.trim_start_matches(' ');
    if !is_token68(token) {
        return Err(malformed());
    }
    Ok(token)
}

/// RFC 7235 §2.1 `token68`; anything else (a comma, a second scheme) is not
/// one token.
fn is_token68(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// The token is ours: signed by a published key, `iss` is this issuer, and
/// `aud` names one of the configured audiences.
fn verify_token(
    state: &AppState,
    token: &str,
    now: UnixTime,
) -> Result<AccessTokenClaims, Refusal> {
    crate::issuer::verify_issued_token(state, token, now, LEEWAY_SECS)
        .map_err(|failure| Refusal::invalid_token(failure.check(), failure.to_string()))
}

/// RFC 9449 §7.1: the proof is for this method and URI (under the public
/// URL, never the `Host` header), carries `ath` of this token, and is
/// signed by the key in `cnf.jkt`. Its `jti` is then spent.
fn verify_proof(
    parts: &Parts,
    state: &AppState,
    token: &str,
    proof: &str,
    claims: &AccessTokenClaims,
    now: UnixTime,
) -> Result<(), Refusal> {
    // Routes are mounted at full paths, but read the original URI anyway so
    // a future nesting cannot make the checked `htu` drift from the request.
    let path = parts
        .extensions
        .get::<OriginalUri>()
        .map_or(parts.uri.path(), |uri| uri.0.path());
    // Parsed here rather than with `Settings::endpoint`, whose fallback to
    // the token endpoint suits constants, not request paths.
    let htu = Htu::parse(&format!("{}{path}", state.settings.issuer)).map_err(|_| {
        Refusal::new(
            "htu_unparseable",
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_dpop_proof",
                "the request URI cannot be checked",
            ),
        )
    })?;
    let check = ProofCheck {
        htm: parts.method.as_str(),
        htu: &htu,
        access_token: Some(token),
        bound_jkt: Some(&claims.cnf.jkt),
        nonce: NonceCheck::NotRequired,
        now,
    };
    state
        .proofs
        .verify(proof, &check, &StoreReplayGuard(state.store.as_ref()))
        .map(drop)
        .map_err(|e| Refusal::new(e.check(), ApiError::proof(&e, || state.nonces.issue(now))))
}

/// What the token names is still in good standing: the session is alive
/// and bound to the same key, the device is active with that key, and the
/// principal is enabled and an admin.
fn standing(
    state: &AppState,
    claims: &AccessTokenClaims,
    now: UnixTime,
) -> Result<(Session, Device, Principal), Refusal> {
    let store = state.store.as_ref();
    let jkt = &claims.cnf.jkt;

    let sid = claims
        .sid
        .as_deref()
        .and_then(|s| s.parse::<SessionId>().ok());
    let sid =
        sid.ok_or_else(|| Refusal::invalid_token("session_missing", "the token names no session"))?;
    let session = store.session(&sid).map_err(Refusal::store)?;
    let session = session.ok_or_else(|| {
        Refusal::invalid_token("session_unknown", "the token's session is unknown")
    })?;
    match session_alive(state, &session, now) {
        Ok(()) => {}
        Err(GrantError::Store(e)) => return Err(Refusal::store(e)),
        Err(e) => return Err(Refusal::invalid_token("session_revoked", e.to_string())),
    }
    if session.jkt != *jkt {
        return Err(Refusal::invalid_token(
            "session_key_mismatch",
            "the token's key is not its session's",
        ));
    }

    let device_id = claims
        .client_id
        .parse::<DeviceId>()
        .ok()
        .filter(|id| *id == session.device);
    let device_id = device_id.ok_or_else(|| {
        Refusal::invalid_token(
            "device_mismatch",
            "the token's client is not its session's device",
        )
    })?;
    let device = store.device(&device_id).map_err(Refusal::store)?;
    let device = device
        .ok_or_else(|| Refusal::invalid_token("device_unknown", "the token's device is unknown"))?;
    if device.state != DeviceState::Active {
        return Err(Refusal::invalid_token(
            "device_not_active",
            "the token's device is disabled or revoked",
        ));
    }
    if device.jkt != *jkt {
        return Err(Refusal::invalid_token(
            "device_key_mismatch",
            "the token's key is not its device's",
        ));
    }

    let principal_id = claims.sub.parse::<PrincipalId>().ok();
    let principal_id = principal_id
        .filter(|id| *id == session.principal && *id == device.principal)
        .ok_or_else(|| {
            Refusal::invalid_token(
                "principal_mismatch",
                "the token's subject does not own its session",
            )
        })?;
    let principal = store.principal(&principal_id).map_err(Refusal::store)?;
    let principal = principal.ok_or_else(|| {
        Refusal::invalid_token("principal_unknown", "the token's principal is unknown")
    })?;
    if principal.disabled {
        return Err(Refusal::invalid_token(
            "principal_disabled",
            "the token's principal is disabled",
        ));
    }
    if !principal.has_role(Role::Admin) {
        return Err(Refusal::new(
            "insufficient_role",
            ApiError::access_denied("the admin role is required"),
        ));
    }
    Ok((session, device, principal))
}

/// Counts, logs once and audits a refusal, and turns it into the
/// protected-resource answer with its `WWW-Authenticate: DPoP` challenge.
fn refused(state: &AppState, refusal: Refusal, ip: Option<IpAddr>, now: UnixTime) -> ApiError {
    let Refusal {
        check,
        actor,
        error,
    } = refusal;
    let ip = ip.map(|ip| ip.to_string());
    state.metrics.refused("admin_refused", check);
    tracing::warn!(
        check,
        error = error.code(),
        client_ip = ip.as_deref().unwrap_or("unknown"),
        "admin call refused"
    );
    audit(
        state,
        AuditEntry::new(
            now,
            "admin_refused",
            actor.as_deref().unwrap_or("anonymous"),
            error.code(),
        )
        .ip(ip.as_deref())
        .detail("check", check)
        .detail("reason", error.description()),
    );
    error.at_resource(&state.settings.algs)
}
