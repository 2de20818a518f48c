//! Discovery and operations: RFC 8414 metadata, the JWKS, `/healthz`,
//! `/metrics`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use holdfast_proto::endpoints::{
    ENROLL_PATH, ENROLLED_KEYS_PATH, HEALTHZ_PATH, INTROSPECT_PATH, IP_DEVIATION_PATH, JWKS_PATH,
    METADATA_PATH, METRICS_PATH, REVOCATIONS_PATH, REVOKE_PATH, TOKEN_PATH,
};
use holdfast_proto::{Alg, CLIENT_ASSERTION_TYPE};
use serde_json::json;

use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(METADATA_PATH, get(metadata))
        .route(JWKS_PATH, get(jwks))
        .route(HEALTHZ_PATH, get(healthz))
        .route(METRICS_PATH, get(metrics))
}

/// RFC 8414 §2, with RFC 9449 §5.1's `dpop_signing_alg_values_supported`.
async fn metadata(State(state): State<AppState>) -> impl IntoResponse {
    let issuer = &state.settings.issuer;
    let algs: Vec<&str> = state.settings.algs.iter().map(Alg::name).collect();
    Json(json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}{TOKEN_PATH}"),
        "jwks_uri": format!("{issuer}{JWKS_PATH}"),
        "revocation_endpoint": format!("{issuer}{REVOKE_PATH}"),
        "introspection_endpoint": format!("{issuer}{INTROSPECT_PATH}"),
        "grant_types_supported": ["client_credentials", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
        "client_assertion_types_supported": [CLIENT_ASSERTION_TYPE],
        "dpop_signing_alg_values_supported": algs,
        "holdfast_enrollment_endpoint": format!("{issuer}{ENROLL_PATH}"),
        "holdfast_revocation_feed": format!("{issuer}{REVOCATIONS_PATH}"),
        "holdfast_enrolled_keys_endpoint": format!("{issuer}{ENROLLED_KEYS_PATH}"),
        "holdfast_ip_deviation_endpoint": format!("{issuer}{IP_DEVIATION_PATH}"),
    }))
}

async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    let keyring = state.keyring();
    (
        [(header::CACHE_CONTROL, "public, max-age=60")],
        Json(keyring.jwks().clone()),
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
