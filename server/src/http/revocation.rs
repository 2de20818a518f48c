//! Revocation over HTTP.
//!
//! - `POST /revoke` (RFC 7009) for token holders, who authenticate by
//!   proving possession of the key their token is bound to.
//! - `GET /revocations` for resource servers: the revocation feed, with
//!   long-polling, that verifiers follow instead of introspecting.
//! - `GET /keys/enrolled` for resource servers: a snapshot of the enrolled
//!   device keys, so a verifier can refuse a token bound to any other key.
//!
//! The rules below take no HTTP types; only `routes()` and the handlers do.

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use holdfast_proto::endpoints::{REVOCATIONS_PATH, REVOKE_PATH};
use holdfast_proto::{Jkt, NonceCheck, ProofCheck, ProofError, UnixTime};
use serde::{Deserialize, Serialize};
use tracing::field::Empty;

use super::error::ApiError;
use super::extract::{ClientIp, DpopHeader, OAuthForm};
use super::introspect::{is_jwt, verify_issued};
use super::rs_auth::ResourceServer;
use crate::audit::AuditEntry;
use crate::issuer::audit;
use crate::model::{PrincipalId, SessionId};
use crate::revocation::{RevokeError, Target};
use crate::secret::secret_hash;
use crate::state::AppState;
use crate::store::{DeviceFeedEntry, RevocationEvent, StoreError, StoreReplayGuard};

/// The enrolled device keys, for resource servers (a full snapshot).
///
/// Changes after it arrive in the revocation feed (`device_enrolled`,
/// `device_state`, `device` events carry the device's entry). Read the feed
/// to its head *before* taking the snapshot and follow it from there, so
/// that nothing changed while the snapshot is taken is missed.
pub use holdfast_proto::endpoints::ENROLLED_KEYS_PATH;

/// Longest long-poll a feed reader may ask for (`wait`), in seconds.
pub const MAX_WAIT_SECS: u64 = 30;

/// Most events in one feed answer; a full page means more may follow.
pub const FEED_PAGE_LEN: usize = 1000;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(REVOKE_PATH, post(revoke))
        .route(REVOCATIONS_PATH, get(feed))
        .route(ENROLLED_KEYS_PATH, get(enrolled_keys))
}

/// RFC 7009 §2.1 parameters; `token_type_hint` is ignored (as §2.1
/// allows): a JWT is an access token, anything else a refresh token.
#[derive(Debug, Deserialize)]
struct RevokeForm {
    token: Option<String>,
}

#[tracing::instrument(skip_all, fields(sid = Empty, client_id = Empty))]
async fn revoke(
    State(state): State<AppState>,
    ip: ClientIp,
    DpopHeader(proof): DpopHeader,
    OAuthForm(form): OAuthForm<RevokeForm>,
) -> Result<impl IntoResponse, ApiError> {
    let token = form
        .token
        .ok_or_else(|| ApiError::invalid_request("token is missing"))?;
    let now = state.clock.now();
    match revoke_token(&state, &token, &proof, ip.text().as_deref(), now) {
        // RFC 7009 §2.2: 200 whether or not the token was known.
        Ok(_) => Ok(([(header::CACHE_CONTROL, "no-store")], StatusCode::OK)),
        Err(RevokeTokenError::Proof(err)) => Err(ApiError::proof(&err, || state.nonces.issue(now))),
        Err(RevokeTokenError::Store(err)) => Err(err.into()),
    }
}

/// Query of `GET /revocations`.
#[derive(Debug, Deserialize)]
struct FeedQuery {
    /// The last cursor the reader has seen (0 for the start).
    since: Option<u64>,
    /// Seconds to wait for an event when there is none (at most
    /// [`MAX_WAIT_SECS`]).
    wait: Option<u64>,
}

#[tracing::instrument(skip_all, fields(caller = %caller.0))]
async fn feed(
    State(state): State<AppState>,
    caller: ResourceServer,
    query: Result<Query<FeedQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid_request(e.body_text()))?;
    let wait = Duration::from_secs(query.wait.unwrap_or(0).min(MAX_WAIT_SECS));
    let page = follow_feed(&state, query.since.unwrap_or(0), wait).await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(page)))
}

#[tracing::instrument(skip_all, fields(caller = %caller.0))]
async fn enrolled_keys(
    State(state): State<AppState>,
    caller: ResourceServer,
) -> Result<impl IntoResponse, ApiError> {
    let snapshot = enrolled_snapshot(&state)?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(snapshot)))
}

/// What `POST /revoke` did; the client is told none of it (RFC 7009 §2.2).
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The token's session is now revoked.
    Revoked(SessionId),
    /// It was revoked already.
    AlreadyRevoked,
    /// Not a token of ours (or its session is gone).
    UnknownToken,
}

/// Why `POST /revoke` was refused.
#[derive(Debug, thiserror::Error)]
enum RevokeTokenError {
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The session a token belongs to and the key it is bound to.
struct Bound {
    sid: SessionId,
    jkt: Jkt,
}

/// RFC 7009 for a DPoP-bound token: the holder proves possession of the
/// bound key, then the token's whole session is revoked (§2.1: revoking a
/// refresh token may, and here does, revoke the access tokens of its grant).
fn revoke_token(
    state: &AppState,
    token: &str,
    proof: &str,
    ip: Option<&str>,
    now: UnixTime,
) -> Result<Outcome, RevokeTokenError> {
    let bound = bound_session(state, token, now)?;
    if let Some(bound) = &bound {
        tracing::Span::current().record("sid", bound.sid.as_str());
    }
    // A proof is checked even for an unknown token (without a key to match),
    // so a bad proof is refused the same way whether or not the token exists.
    let check = ProofCheck {
        htm: "POST",
        htu: &state.settings.revoke_endpoint,
        access_token: None,
        bound_jkt: bound.as_ref().map(|b| &b.jkt),
        nonce: NonceCheck::NotRequired,
        now,
    };
    if let Err(err) = state
        .proofs
        .verify(proof, &check, &StoreReplayGuard(state.store.as_ref()))
    {
        refused(state, &err, bound.as_ref(), ip, now);
        return Err(err.into());
    }
    let Some(bound) = bound else {
        return Ok(Outcome::UnknownToken);
    };
    let Some(session) = state.store.session(&bound.sid)? else {
        return Ok(Outcome::UnknownToken);
    };
    tracing::Span::current().record("client_id", session.device.as_str());
    // The token must be bound to the session's own key: a token naming
    // someone else's session cannot revoke it.
    if session.jkt != bound.jkt {
        return Ok(Outcome::UnknownToken);
    }
    if session.revoked.is_some() {
        return Ok(Outcome::AlreadyRevoked);
    }
    let target = Target::Session(session.id.clone());
    match crate::revocation::revoke(state, &target, session.device.as_str(), ip, "rfc7009", now) {
        Ok(_) => Ok(Outcome::Revoked(session.id)),
        Err(RevokeError::NotFound(_)) => Ok(Outcome::UnknownToken),
        Err(RevokeError::Store(err)) => Err(err.into()),
    }
}

/// The session and key of an access token we signed (expired or not: a
/// holder may end the session after its access token lapsed) or of a refresh
/// token we stored (used or not). `None` for anything else.
fn bound_session(
    state: &AppState,
    token: &str,
    now: UnixTime,
) -> Result<Option<Bound>, StoreError> {
    if is_jwt(token) {
        // `u64::MAX` leeway turns off only the time checks.
        let Ok(claims) = verify_issued(state, token, now, u64::MAX) else {
            return Ok(None);
        };
        let sid = claims
            .sid
            .as_deref()
            .and_then(|sid| sid.parse::<SessionId>().ok());
        return Ok(sid.map(|sid| Bound {
            sid,
            jkt: claims.cnf.jkt,
        }));
    }
    Ok(state
        .store
        .refresh_token(&secret_hash(token))?
        .map(|record| Bound {
            sid: record.session,
            jkt: record.jkt,
        }))
}

/// Logs, counts and audits a refused revocation proof.
fn refused(
    state: &AppState,
    err: &ProofError,
    bound: Option<&Bound>,
    ip: Option<&str>,
    now: UnixTime,
) {
    tracing::info!(
        error = err.wire_code().as_str(),
        check = err.check(),
        "revocation proof refused"
    );
    state.metrics.refused("proof_refused", err.check());
    let mut entry = AuditEntry::new(
        now,
        "revocation_refused",
        "anonymous",
        err.wire_code().as_str(),
    )
    .ip(ip)
    .detail("check", err.check());
    if let Some(bound) = bound {
        entry = entry.detail("sid", bound.sid.as_str());
    }
    audit(state, entry);
}

/// One answer of the revocation feed.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct FeedPage {
    /// Events after the request's `since`, oldest first.
    events: Vec<RevocationEvent>,
    /// The cursor to send as the next `since`.
    cursor: u64,
    /// The current revoke-all instant, if any.
    revoke_all_before: Option<UnixTime>,
}

/// The feed after `since`; when there is nothing, waits up to `wait` for a
/// revocation and reads again.
async fn follow_feed(state: &AppState, since: u64, wait: Duration) -> Result<FeedPage, StoreError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // Register for the wake-up *before* reading: a revocation appended
        // between the read and the wait still wakes this reader.
        let notified = state.revocations.notified();
        let mut notified = std::pin::pin!(notified);
        notified.as_mut().enable();
        let page = feed_page(state, since)?;
        if !page.events.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(page);
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return Ok(page);
        }
    }
}

fn feed_page(state: &AppState, since: u64) -> Result<FeedPage, StoreError> {
    let events = state.store.revocations_since(since, FEED_PAGE_LEN)?;
    Ok(FeedPage {
        cursor: events.last().map_or(since, |event| event.cursor),
        events,
        revoke_all_before: state.store.revoke_all_before()?,
    })
}

/// `GET /keys/enrolled`.
#[derive(Debug, Serialize)]
struct EnrolledKeys {
    devices: Vec<DeviceFeedEntry>,
}

fn enrolled_snapshot(state: &AppState) -> Result<EnrolledKeys, StoreError> {
    let enabled: HashSet<PrincipalId> = state
        .store
        .principals()?
        .into_iter()
        .filter(|p| !p.disabled)
        .map(|p| p.id)
        .collect();
    let devices = state
        .store
        .devices()?
        .into_iter()
        .map(|d| DeviceFeedEntry::new(&d, !enabled.contains(&d.principal)))
        .collect();
    Ok(EnrolledKeys { devices })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use axum::http::{StatusCode, header};
    use holdfast_hw::SoftwareKey;
    use serde_json::json;

    use super::super::rs_auth::fixtures::{admin_revoke, enroll, form, get, issuer, rs_auth, send};
    use super::{ENROLLED_KEYS_PATH, REVOCATIONS_PATH, REVOKE_PATH};
    use crate::model::SessionId;
    use crate::revocation::{Target, revoke};
    use crate::store::RevocationEvent;
    use crate::testing::TestIssuer;

    async fn feed(issuer: &TestIssuer, query: &str) -> serde_json::Value {
        let auth = rs_auth();
        let path = format!("{REVOCATIONS_PATH}{query}");
        let (status, headers, body) =
            send(issuer, get(&path, &[("authorization", auth.as_str())])).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        body
    }

    fn session_revoked(issuer: &TestIssuer, sid: &SessionId) -> Option<String> {
        let session = issuer.state.store.session(sid).unwrap().unwrap();
        session.revoked.map(|r| r.reason)
    }

    #[tokio::test]
    async fn feed_requires_resource_server_credentials() {
        let issuer = issuer();
        for path in [REVOCATIONS_PATH, ENROLLED_KEYS_PATH] {
            let (status, headers, body) = send(&issuer, get(path, &[])).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            assert_eq!(
                headers[header::WWW_AUTHENTICATE],
                "Basic realm=\"holdfast\""
            );
            assert_eq!(body["error"], "invalid_client");
        }
    }

    #[tokio::test]
    async fn feed_lists_revocations_in_order_and_pages_by_cursor() {
        let issuer = issuer();
        let empty = feed(&issuer, "").await;
        assert_eq!(
            empty,
            json!({ "events": [], "cursor": 0, "revoke_all_before": null })
        );

        let a = enroll(&issuer);
        let b = enroll(&issuer);
        let first = admin_revoke(&issuer, &Target::Session(a.session.id.clone()));
        let second = admin_revoke(&issuer, &Target::Session(b.session.id.clone()));
        let before = issuer.now().plus(1);
        let third = admin_revoke(&issuer, &Target::AllBefore(before));
        assert!(first.cursor < second.cursor && second.cursor < third.cursor);

        let all = feed(&issuer, "").await;
        assert_eq!(all["cursor"], third.cursor);
        assert_eq!(all["revoke_all_before"], before.as_secs());
        let events: Vec<RevocationEvent> = serde_json::from_value(all["events"].clone()).unwrap();
        assert_eq!(events, vec![first.clone(), second.clone(), third.clone()]);
        assert_eq!(all["events"][0]["kind"], "session");
        assert_eq!(all["events"][0]["id"], a.session.id.as_str());
        assert_eq!(all["events"][2]["kind"], "all_before");
        assert_eq!(all["events"][2]["before"], before.as_secs());

        let rest = feed(&issuer, &format!("?since={}", first.cursor)).await;
        let events: Vec<RevocationEvent> = serde_json::from_value(rest["events"].clone()).unwrap();
        assert_eq!(events, vec![second, third.clone()]);

        let none = feed(&issuer, &format!("?since={}", third.cursor)).await;
        assert_eq!(none["events"], json!([]));
        assert_eq!(none["cursor"], third.cursor);
    }

    #[tokio::test]
    async fn feed_refuses_a_malformed_query() {
        let issuer = issuer();
        let auth = rs_auth();
        let (status, _, body) = send(
            &issuer,
            get(
                &format!("{REVOCATIONS_PATH}?since=minus-one"),
                &[("authorization", auth.as_str())],
            ),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_request");
    }

    #[tokio::test]
    async fn long_poll_returns_as_soon_as_a_revocation_happens() {
        let issuer = issuer();
        let holder = enroll(&issuer);
        let state = issuer.state.clone();
        let sid = holder.session.id.clone();
        let now = issuer.now();
        let revoker = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            revoke(
                &state,
                &Target::Session(sid),
                "admin:test",
                None,
                "admin",
                now,
            )
            .unwrap()
        });
        let started = Instant::now();
        let body = feed(&issuer, "?since=0&wait=20").await;
        let elapsed = started.elapsed();
        let event = revoker.await.unwrap();
        assert_eq!(body["events"][0]["id"], holder.session.id.as_str());
        assert_eq!(body["cursor"], event.cursor);
        assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    }

    #[tokio::test]
    async fn long_poll_without_wait_returns_at_once() {
        let issuer = issuer();
        let started = Instant::now();
        let body = feed(&issuer, "?since=7&wait=0").await;
        assert_eq!(
            body,
            json!({ "events": [], "cursor": 7, "revoke_all_before": null })
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn enrolled_keys_lists_every_device() {
        let issuer = issuer();
        let holder = enroll(&issuer);
        let auth = rs_auth();
        let (status, _, body) = send(
            &issuer,
            get(ENROLLED_KEYS_PATH, &[("authorization", auth.as_str())]),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({ "devices": [{
                "device_id": holder.device.id.as_str(),
                "principal_id": holder.device.principal.as_str(),
                "jkt": holder.device.jkt.as_str(),
                "kind": "software",
                "state": "active",
                "principal_disabled": false,
            }]})
        );
        admin_revoke(&issuer, &Target::Principal(holder.device.principal.clone()));
        let (_, _, body) = send(
            &issuer,
            get(ENROLLED_KEYS_PATH, &[("authorization", auth.as_str())]),
        )
        .await;
        assert_eq!(body["devices"][0]["principal_disabled"], true);
    }

    #[tokio::test]
    async fn revoke_refuses_a_request_without_proof() {
        let issuer = issuer();
        let holder = enroll(&issuer);
        let body = format!("token={}", holder.refresh_token);
        let (status, _, body) = send(&issuer, form(REVOKE_PATH, &body, &[])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_dpop_proof");
        assert_eq!(session_revoked(&issuer, &holder.session.id), None);
    }

    #[tokio::test]
    async fn revoke_refuses_a_request_without_token() {
        let issuer = issuer();
        let holder = enroll(&issuer);
        let proof = holder.proof(&issuer, "POST", REVOKE_PATH, None);
        let (status, _, body) = send(
            &issuer,
            form(
                REVOKE_PATH,
                "token_type_hint=refresh_token",
                &[("dpop", &proof)],
            ),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_request");
    }

    #[tokio::test]
    async fn revoke_accepts_an_unknown_token_and_changes_nothing() {
        let issuer = issuer();
        let holder = enroll(&issuer);
        for token in ["unknown", "a.b.c"] {
            let proof = holder.proof(&issuer, "POST", REVOKE_PATH, None);
            let (status, headers, body) = send(
                &issuer,
                form(REVOKE_PATH, &format!("token={token}"), &[("dpop", &proof)]),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        }
        assert_eq!(session_revoked(&issuer, &holder.session.id), None);
        assert!(
            issuer
                .state
                .store
                .revocations_since(0, 10)
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn revoke_refuses_a_bad_proof_even_for_an_unknown_token() {
        let issuer = issuer();
        let (status, _, body) = send(
            &issuer,
            form(REVOKE_PATH, "token=unknown", &[("dpop", "not-a-proof")]),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_dpop_proof");
    }

    #[tokio::test]
    async fn revoking_a_refresh_token_revokes_its_session() {
        let issuer = issuer();
        let holder = enroll(&issuer);
        let proof = holder.proof(&issuer, "POST", REVOKE_PATH, None);
        let body = format!(
            "token={}&token_type_hint=refresh_token",
            holder.refresh_token
        );
        let (status, _, _) = send(&issuer, form(REVOKE_PATH, &body, &[("dpop", &proof)])).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            session_revoked(&issuer, &holder.session.id).as_deref(),
            Some("rfc7009")
        );
        let events = issuer.state.store.revocations_since(0, 10).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].id, holder.session.id.as_str());

        // Again: still 200, and no second feed event.
        let proof = holder.proof(&issuer, "POST", REVOKE_PATH, None);
        let (status, _, _) = send(&issuer, form(REVOKE_PATH, &body, &[("dpop", &proof)])).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            issuer.state.store.revocations_since(0, 10).unwrap().len(),
            1
        );
    }

    #[tokio::test]
    async fn revoking_an_expired_access_token_revokes_its_session() {
        let issuer = issuer();
        let holder = enroll(&issuer);
        let token = holder.access_token(&issuer, |_| {});
        issuer.clock.advance(1000);
        let proof = holder.proof(&issuer, "POST", REVOKE_PATH, None);
        let (status, _, _) = send(
            &issuer,
            form(REVOKE_PATH, &format!("token={token}"), &[("dpop", &proof)]),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            session_revoked(&issuer, &holder.session.id).as_deref(),
            Some("rfc7009")
        );
        let audit = issuer.state.store.audit_range(0, 100).unwrap();
        let record = audit
            .iter()
            .find(|r| r.entry.event == "revocation")
            .unwrap();
        assert_eq!(record.entry.actor, holder.device.id.as_str());
    }

    #[tokio::test]
    async fn revoke_refuses_a_proof_by_another_key() {
        let issuer = issuer();
        let holder = enroll(&issuer);
        let token = holder.access_token(&issuer, |_| {});
        let thief = SoftwareKey::generate().unwrap();
        for token in [token, holder.refresh_token.clone()] {
            let proof = issuer.proof(&thief, "POST", REVOKE_PATH, None);
            let (status, _, body) = send(
                &issuer,
                form(REVOKE_PATH, &format!("token={token}"), &[("dpop", &proof)]),
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(body["error"], "invalid_dpop_proof");
        }
        assert_eq!(session_revoked(&issuer, &holder.session.id), None);
    }

    #[tokio::test]
    async fn revoke_refuses_a_proof_for_another_endpoint() {
        let issuer = issuer();
        let holder = enroll(&issuer);
        let proof = holder.proof(&issuer, "POST", "/token", None);
        let body = format!("token={}", holder.refresh_token);
        let (status, _, body) = send(&issuer, form(REVOKE_PATH, &body, &[("dpop", &proof)])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_dpop_proof");
        assert_eq!(session_revoked(&issuer, &holder.session.id), None);
    }
}
