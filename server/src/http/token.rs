//! `POST /token` (RFC 6749 §3.2): `client_credentials` with
//! `private_key_jwt`, and `refresh_token`; DPoP on every grant.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use holdfast_proto::CLIENT_ASSERTION_TYPE;
use holdfast_proto::endpoints::TOKEN_PATH;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::{ClientIp, DpopHeader, OAuthForm, user_agent};
use crate::issuer::{self, GrantError, RequestContext};
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route(TOKEN_PATH, post(token))
}

/// The token request parameters Holdfast reads.
#[derive(Debug, Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
    refresh_token: Option<String>,
}

async fn token(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    dpop: Result<DpopHeader, ApiError>,
    OAuthForm(form): OAuthForm<TokenForm>,
) -> Result<Response, ApiError> {
    // RFC 9449 §5: DPoP is required on every grant here.
    let DpopHeader(proof) =
        dpop.map_err(|e| e.with_nonce(state.nonces.issue(state.clock.now())))?;
    let ctx = RequestContext {
        ip: ip.0,
        user_agent: user_agent(&headers),
        now: state.clock.now(),
    };
    let result = match form.grant_type.as_deref() {
        Some("client_credentials") => {
            if form.client_assertion_type.as_deref() != Some(CLIENT_ASSERTION_TYPE) {
                return Err(ApiError::invalid_client(format!(
                    "client authentication must be private_key_jwt (client_assertion_type {CLIENT_ASSERTION_TYPE})"
                )));
            }
            let assertion = form
                .client_assertion
                .ok_or_else(|| ApiError::invalid_client("client_assertion is missing"))?;
            issuer::client_credentials(&state, &assertion, &proof, &ctx)
        }
        Some("refresh_token") => {
            let refresh_token = form
                .refresh_token
                .ok_or_else(|| ApiError::invalid_request("refresh_token is missing"))?;
            issuer::refresh(&state, &refresh_token, &proof, &ctx)
        }
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be client_credentials or refresh_token",
            ));
        }
        None => return Err(ApiError::invalid_request("grant_type is missing")),
    };
    let next_nonce = state.nonces.issue(ctx.now);
    match result {
        Ok(tokens) => {
            let mut response = (StatusCode::OK, Json(tokens)).into_response();
            let h = response.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            if let Ok(nonce) = HeaderValue::from_str(&next_nonce) {
                h.insert("dpop-nonce", nonce);
            }
            Ok(response)
        }
        Err(GrantError::Proof(err)) => Err(ApiError::proof(&err, || next_nonce)),
        Err(GrantError::InvalidClient(msg)) => Err(ApiError::invalid_client(msg)),
        Err(GrantError::InvalidGrant(msg)) => Err(ApiError::invalid_grant(msg)),
        Err(GrantError::Store(e)) => Err(ApiError::server(&e)),
        Err(GrantError::Sign(e)) => Err(ApiError::server(&e)),
    }
}
