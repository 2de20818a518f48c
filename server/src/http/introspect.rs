//! `POST /introspect` (RFC 7662) for authenticated resource servers.
//!
//! An access token is active only while everything behind it still stands:
//! its signature and times, its session (not revoked, expired or older than
//! a revoke-all), its device (enrolled, active, of a kind the policy admits,
//! holding the key named in `cnf.jkt`) and its principal (enabled). The
//! last checks mean that a token signed with a stolen issuer key but bound
//! to an unenrolled key is still refused. A refresh token is active while
//! unused, unexpired and its session and holder stand.
//!
//! Any other token gets exactly `{"active":false}` (RFC 7662 §2.2): why is
//! logged and counted, never sent. `token_type_hint` is accepted and
//! ignored (§2.1 allows it): a JWT is an access token, anything else is
//! looked up as a refresh token.
//!
//! The rules below take no HTTP types; only `routes()` and the handler do.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use holdfast_proto::endpoints::INTROSPECT_PATH;
use holdfast_proto::{AccessTokenClaims, Confirmation, TokenError, UnixTime};
use serde::{Deserialize, Serialize};
use tracing::field::Empty;

use super::error::ApiError;
use super::extract::OAuthForm;
use super::rs_auth::ResourceServer;
use crate::audit::AuditEntry;
use crate::issuer::{GrantError, audit, session_alive};
use crate::model::{Device, DeviceState, SessionId};
use crate::secret::secret_hash;
use crate::state::AppState;
use crate::store::StoreError;

/// Clock leeway for `exp` and `nbf` at introspection.
const LEEWAY_SECS: u64 = 5;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route(INTROSPECT_PATH, post(introspect))
}

/// The RFC 7662 §2.1 parameters. `token_type_hint` is ignored (see the
/// module docs), so it is not read.
#[derive(Debug, Deserialize)]
struct IntrospectForm {
    token: Option<String>,
}

#[tracing::instrument(skip_all, fields(caller = %caller.0, sid = Empty, client_id = Empty))]
async fn introspect(
    State(state): State<AppState>,
    caller: ResourceServer,
    OAuthForm(form): OAuthForm<IntrospectForm>,
) -> Result<impl IntoResponse, ApiError> {
    let token = form
        .token
        .ok_or_else(|| ApiError::invalid_request("token is missing"))?;
    let answer = introspection(&state, &token, state.clock.now())?;
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(answer),
    ))
}

/// Verifies that `token` is an access token this issuer signed, with any
/// published key, for any configured audience, with `leeway` on `exp` and
/// `nbf` (`u64::MAX` turns the time checks off).
///
/// # Errors
/// The first failed check; [`TokenError::AudienceMismatch`] only if no
/// configured audience is named.
pub(super) fn verify_issued(
    state: &AppState,
    token: &str,
    now: UnixTime,
    leeway: u64,
) -> Result<AccessTokenClaims, TokenError> {
    crate::issuer::verify_issued_token(state, token, now, leeway)
}

/// A compact JWS has three parts; refresh tokens are base64url and have one.
pub(super) fn is_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

/// The answer for `token` at `now`.
fn introspection(
    state: &AppState,
    token: &str,
    now: UnixTime,
) -> Result<Introspection, StoreError> {
    let result = if is_jwt(token) {
        access_token(state, token, now)
    } else {
        refresh_token(state, token, now)
    };
    match result {
        Ok(active) => Ok(active),
        Err(Refusal::Store(e)) => Err(e),
        Err(refusal) => {
            tracing::info!(check = refusal.check(), reason = %refusal, "token is not active");
            state
                .metrics
                .refused("introspection_inactive", refusal.check());
            Ok(Introspection::Inactive(Inactive { active: false }))
        }
    }
}

/// RFC 7662 §2.2: the answer. Serialized untagged: the variant is only ours.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Introspection {
    /// An active access token: its claims, plus what we know of its device.
    AccessToken(Box<ActiveAccessToken>),
    /// An active refresh token.
    RefreshToken(ActiveRefreshToken),
    /// `{"active":false}` and nothing else.
    Inactive(Inactive),
}

#[derive(Debug, Serialize)]
struct ActiveAccessToken {
    active: bool,
    token_type: &'static str,
    #[serde(flatten)]
    claims: AccessTokenClaims,
    device_kind: &'static str,
}

#[derive(Debug, Serialize)]
struct ActiveRefreshToken {
    active: bool,
    token_type: &'static str,
    sid: SessionId,
    exp: UnixTime,
    cnf: Confirmation,
}

#[derive(Debug, Serialize)]
struct Inactive {
    active: bool,
}

/// Why a token is not active: logged and counted, never sent.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error(transparent)]
    Token(TokenError),
    #[error("the token names no session")]
    NoSession,
    #[error("unknown session")]
    UnknownSession,
    #[error("the token's sub or client_id is not its session's")]
    SessionMismatch,
    #[error("{0}")]
    SessionDead(String),
    #[error("the session's device no longer exists")]
    UnknownDevice,
    #[error("the device is {0:?}")]
    DeviceNotActive(DeviceState),
    #[error("the device's key kind is not accepted by the policy")]
    KindNotAccepted,
    #[error("cnf.jkt is not the device's enrolled key")]
    JktMismatch,
    #[error("the principal is disabled or gone")]
    PrincipalDisabled,
    #[error("unknown refresh token")]
    UnknownRefreshToken,
    #[error("the refresh token was already used")]
    RefreshTokenUsed,
    #[error("the refresh token has expired")]
    RefreshTokenExpired,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Refusal {
    /// A short, stable name for logs and metrics.
    fn check(&self) -> &'static str {
        match self {
            Self::Token(e) => e.check(),
            Self::NoSession => "no_session",
            Self::UnknownSession => "unknown_session",
            Self::SessionMismatch => "session_mismatch",
            Self::SessionDead(_) => "session_dead",
            Self::UnknownDevice => "unknown_device",
            Self::DeviceNotActive(_) => "device_not_active",
            Self::KindNotAccepted => "kind_not_accepted",
            Self::JktMismatch => "jkt_mismatch",
            Self::PrincipalDisabled => "principal_disabled",
            Self::UnknownRefreshToken => "unknown_refresh_token",
            Self::RefreshTokenUsed => "refresh_token_used",
            Self::RefreshTokenExpired => "refresh_token_expired",
            Self::Store(_) => "server_error",
        }
    }

    /// A token with our signature that we never issued: our signing key
    /// may be in someone else's hands. Worth an audit record.
    fn is_forgery_sign(&self) -> bool {
        matches!(self, Self::SessionMismatch | Self::JktMismatch)
    }
}

fn access_token(state: &AppState, token: &str, now: UnixTime) -> Result<Introspection, Refusal> {
    let claims = verify_issued(state, token, now, LEEWAY_SECS).map_err(Refusal::Token)?;
    let span = tracing::Span::current();
    span.record("sid", claims.sid.as_deref().unwrap_or(""));
    span.record("client_id", claims.client_id.as_str());
    let device = match holder(state, &claims, now) {
        Ok(device) => device,
        Err(refusal) => {
            if refusal.is_forgery_sign() {
                audit(
                    state,
                    AuditEntry::new(now, "introspection_forgery", &claims.client_id, "inactive")
                        .detail("check", refusal.check())
                        .detail("sid", claims.sid.clone().unwrap_or_default())
                        .detail("jkt", claims.cnf.jkt.as_str())
                        .detail("jti", claims.jti.clone()),
                );
            }
            return Err(refusal);
        }
    };
    Ok(Introspection::AccessToken(Box::new(ActiveAccessToken {
        active: true,
        token_type: "DPoP",
        claims,
        device_kind: device.kind.as_str(),
    })))
}

/// The access token's session, device and principal stand, and the device
/// holds the key the token is bound to (RFC 9449 §6.1 `cnf.jkt`).
fn holder(state: &AppState, claims: &AccessTokenClaims, now: UnixTime) -> Result<Device, Refusal> {
    let sid = claims.sid.as_deref().ok_or(Refusal::NoSession)?;
    let session = sid
        .parse::<SessionId>()
        .ok()
        .map(|sid| state.store.session(&sid))
        .transpose()?
        .flatten()
        .ok_or(Refusal::UnknownSession)?;
    if session.device.as_str() != claims.client_id || session.principal.as_str() != claims.sub {
        return Err(Refusal::SessionMismatch);
    }
    let device = alive_holder(state, &session, now)?;
    if device.jkt != claims.cnf.jkt || session.jkt != claims.cnf.jkt {
        return Err(Refusal::JktMismatch);
    }
    Ok(device)
}

fn refresh_token(state: &AppState, token: &str, now: UnixTime) -> Result<Introspection, Refusal> {
    let record = state
        .store
        .refresh_token(&secret_hash(token))?
        .ok_or(Refusal::UnknownRefreshToken)?;
    tracing::Span::current().record("sid", record.session.as_str());
    if record.used_at.is_some() {
        return Err(Refusal::RefreshTokenUsed);
    }
    if record.expires_at <= now {
        return Err(Refusal::RefreshTokenExpired);
    }
    let session = state
        .store
        .session(&record.session)?
        .ok_or(Refusal::UnknownSession)?;
    alive_holder(state, &session, now)?;
    Ok(Introspection::RefreshToken(ActiveRefreshToken {
        active: true,
        token_type: "refresh_token",
        sid: record.session,
        exp: record.expires_at,
        cnf: Confirmation { jkt: record.jkt },
    }))
}

/// The session is alive, and its device and principal may still hold
/// tokens (the same rules as at the token endpoint).
fn alive_holder(
    state: &AppState,
    session: &crate::model::Session,
    now: UnixTime,
) -> Result<Device, Refusal> {
    session_alive(state, session, now).map_err(|e| match e {
        GrantError::Store(e) => Refusal::Store(e),
        other => Refusal::SessionDead(other.to_string()),
    })?;
    let device = state
        .store
        .device(&session.device)?
        .ok_or(Refusal::UnknownDevice)?;
    if device.state != DeviceState::Active {
        return Err(Refusal::DeviceNotActive(device.state));
    }
    if !state.settings.accepted_kinds.contains(&device.kind) {
        return Err(Refusal::KindNotAccepted);
    }
    if state
        .store
        .principal(&device.principal)?
        .is_none_or(|principal| principal.disabled)
    {
        return Err(Refusal::PrincipalDisabled);
    }
    Ok(device)
}

#[cfg(test)]
mod tests {
    use axum::http::{StatusCode, header};
    use holdfast_hw::SoftwareKey;
    use holdfast_proto::{ACCESS_TOKEN_TYP, JwtHeader, Signer as _, sign_jwt};
    use serde_json::json;

    use super::super::rs_auth::fixtures::{
        admin_revoke, basic, enroll, form, issuer, rs_auth, send,
    };
    use super::INTROSPECT_PATH;
    use crate::model::DeviceState;
    use crate::revocation::Target;
    use crate::testing::{TestDevice, TestIssuer};

    async fn introspect(issuer: &TestIssuer, token: &str) -> serde_json::Value {
        let auth = rs_auth();
        let body = format!("token={token}&token_type_hint=access_token");
        let (status, headers, body) = send(
            issuer,
            form(INTROSPECT_PATH, &body, &[("authorization", auth.as_str())]),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        body
    }

    fn inactive() -> serde_json::Value {
        json!({ "active": false })
    }

    #[tokio::test]
    async fn refuses_callers_without_resource_server_credentials() {
        let issuer = issuer();
        let wrong_secret = basic("api", "wrong");
        let unknown_id = basic("nobody", "s3cret");
        for headers in [
            vec![],
            vec![("authorization", wrong_secret.as_str())],
            vec![("authorization", unknown_id.as_str())],
            vec![("authorization", "Bearer s3cret")],
        ] {
            let (status, response_headers, body) =
                send(&issuer, form(INTROSPECT_PATH, "token=x", &headers)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}");
            assert_eq!(
                response_headers[header::WWW_AUTHENTICATE],
                "Basic realm=\"holdfast\""
            );
            assert_eq!(body["error"], "invalid_client");
        }
    }

    #[tokio::test]
    async fn refuses_a_request_without_token() {
        let issuer = issuer();
        let auth = rs_auth();
        let (status, _, body) = send(
            &issuer,
            form(
                INTROSPECT_PATH,
                "token_type_hint=access_token",
                &[("authorization", auth.as_str())],
            ),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_request");
    }

    #[tokio::test]
    async fn shows_a_live_access_token_with_its_binding() {
        let issuer = issuer();
        let holder = enroll(&issuer);
        let claims = holder.claims(&issuer);
        let token = issuer.state.keyring().sign_access_token(&claims).unwrap();
        let body = introspect(&issuer, &token).await;
        assert_eq!(
            body,
            json!({
                "active": true,
                "token_type": "DPoP",
                "iss": "http://issuer.test",
                "sub": holder.session.principal.as_str(),
                "aud": "holdfast",
                "exp": claims.exp.as_secs(),
                "iat": claims.iat.as_secs(),
                "nbf": claims.iat.as_secs(),
                "jti": claims.jti,
                "client_id": holder.device.id.as_str(),
                "sid": holder.session.id.as_str(),
                "amr": ["swk", "pop"],
                "cnf": { "jkt": holder.device.jkt.as_str() },
                "device_kind": "software",
            })
        );
    }

    #[tokio::test]
    async fn revoked_session_makes_the_token_inactive() {
        let issuer = issuer();
        let holder = enroll(&issuer);
        let token = holder.access_token(&issuer, |_| {});
        assert_eq!(introspect(&issuer, &token).await["active"], true);
        admin_revoke(&issuer, &Target::Session(holder.session.id.clone()));
        assert_eq!(introspect(&issuer, &token).await, inactive());
        assert_eq!(introspect(&issuer, &holder.refresh_token).await, inactive());
    }

    #[tokio::test]
    async fn revoke_all_makes_older_tokens_inactive() {
        let issuer = issuer();
        let holder = enroll(&issuer);
        let token = holder.access_token(&issuer, |_| {});
        admin_revoke(&issuer, &Target::AllBefore(issuer.now().plus(1)));
        assert_eq!(introspect(&issuer, &token).await, inactive());
        assert_eq!(introspect(&issuer, &holder.refresh_token).await, inactive());
    }

    #[tokio::test]
    async fn refuses_tokens_of_a_revoked_or_disabled_device() {
        for state in [DeviceState::Revoked, DeviceState::Disabled] {
            let issuer = issuer();
            let holder = enroll(&issuer);
            let token = holder.access_token(&issuer, |_| {});
            // Only the device record changes: the session is still alive.
            let mut device = holder.device.clone();
            device.state = state;
            issuer.state.store.update_device(&device).unwrap();
            assert_eq!(introspect(&issuer, &token).await, inactive(), "{state:?}");
            assert_eq!(
                introspect(&issuer, &holder.refresh_token).await,
                inactive(),
                "{state:?}"
            );
        }
    }

    #[tokio::test]
    async fn refuses_tokens_of_a_disabled_principal() {
        let issuer = issuer();
        let holder = enroll(&issuer);
        let token = holder.access_token(&issuer, |_| {});
        let store = issuer.state.store.as_ref();
        let mut principal = store.principal(&holder.session.principal).unwrap().unwrap();
        principal.disabled = true;
        store.put_principal(&principal).unwrap();
        assert_eq!(introspect(&issuer, &token).await, inactive());
    }

    #[tokio::test]
    async fn refuses_a_token_we_signed_for_an_unenrolled_key() {
        // What a thief of the issuer's signing key could mint: a valid
        // signature over a real session, bound to the thief's own key.
        let issuer = issuer();
        let holder = enroll(&issuer);
        let thief = SoftwareKey::generate().unwrap();
        let token = holder.access_token(&issuer, |c| c.cnf.jkt = thief.public_jwk().thumbprint());
        assert_eq!(introspect(&issuer, &token).await, inactive());
        let records = issuer.state.store.audit_range(0, 100).unwrap();
        let forgery = records
            .iter()
            .find(|r| r.entry.event == "introspection_forgery")
            .unwrap();
        assert_eq!(forgery.entry.details["check"], "jkt_mismatch");
    }

    #[tokio::test]
    async fn refuses_a_token_naming_another_devices_session() {
        let issuer = issuer();
        let holder = enroll(&issuer);
        let other = enroll(&issuer);
        let token = holder.access_token(&issuer, |c| c.sid = Some(other.session.id.to_string()));
        assert_eq!(introspect(&issuer, &token).await, inactive());
    }

    #[tokio::test]
    async fn refuses_a_token_signed_by_another_key() {
        let issuer = issuer();
        let holder = enroll(&issuer);
        let claims = holder.claims(&issuer);
        let other = SoftwareKey::generate().unwrap();
        for kid in [
            issuer.state.keyring().active_kid().to_owned(),
            "unknown".to_owned(),
        ] {
            let header = JwtHeader {
                typ: ACCESS_TOKEN_TYP,
                kid: Some(&kid),
                jwk: None,
            };
            let token = sign_jwt(&other, &header, &claims).unwrap();
            assert_eq!(introspect(&issuer, &token).await, inactive());
        }
    }

    #[tokio::test]
    async fn refuses_expired_and_foreign_audience_tokens() {
        let issuer = issuer();
        let holder = enroll(&issuer);
        let now = issuer.now();
        let expired = holder.access_token(&issuer, |c| c.exp = now.minus(10));
        let foreign = holder.access_token(&issuer, |c| {
            c.aud = holdfast_proto::Audience::One("elsewhere".into())
        });
        let no_sid = holder.access_token(&issuer, |c| c.sid = None);
        for token in [expired, foreign, no_sid] {
            assert_eq!(introspect(&issuer, &token).await, inactive());
        }
    }

    #[tokio::test]
    async fn garbage_is_inactive() {
        let issuer = issuer();
        for token in [
            "garbage",
            "a.b.c",
            "eyJhbGciOiJub25lIn0.e30.",
            &"x".repeat(5000),
        ] {
            assert_eq!(introspect(&issuer, token).await, inactive(), "{token}");
        }
    }

    #[tokio::test]
    async fn shows_a_live_refresh_token_until_it_is_used() {
        let issuer = issuer();
        let TestDevice {
            session,
            refresh_token,
            ..
        } = enroll(&issuer);
        let body = introspect(&issuer, &refresh_token).await;
        assert_eq!(
            body,
            json!({
                "active": true,
                "token_type": "refresh_token",
                "sid": session.id.as_str(),
                "exp": issuer.now().plus(600).as_secs(),
                "cnf": { "jkt": session.jkt.as_str() },
            })
        );
        let store = issuer.state.store.as_ref();
        let new = crate::model::RefreshRecord {
            session: session.id.clone(),
            jkt: session.jkt,
            issued_at: issuer.now(),
            expires_at: issuer.now().plus(600),
            used_at: None,
        };
        store
            .rotate_refresh_token(
                &crate::secret::secret_hash(&refresh_token),
                &crate::secret::secret_hash("next"),
                &new,
                issuer.now(),
            )
            .unwrap();
        assert_eq!(introspect(&issuer, &refresh_token).await, inactive());
        issuer.clock.advance(601);
        assert_eq!(introspect(&issuer, "next").await, inactive());
    }
}
