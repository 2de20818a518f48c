//! HTTP: the router, and one module per group of endpoints. A handler is
//! its extractors, one domain call and an [`ApiError`] on failure.

pub mod admin;
pub mod enroll;
pub mod error;
pub mod extract;
pub mod introspect;
pub mod meta;
pub mod revocation;
pub mod rs_auth;
pub mod sessions;
pub mod token;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use tracing::Instrument as _;

pub use error::ApiError;

use crate::state::AppState;

/// Largest request body accepted (enrollment with attestation evidence is
/// the largest legitimate one).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The issuer's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(meta::routes())
        .merge(enroll::routes())
        .merge(token::routes())
        .merge(introspect::routes())
        .merge(revocation::routes())
        .merge(sessions::routes())
        .merge(admin::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), date_header))
        .layer(middleware::from_fn(trace_request))
        .with_state(state)
}

/// `Date` from the issuer's own clock, the one that judges `iat`: clients
/// correct their skew from it (RFC 9449 §11.1 leaves the window to the
/// server; a client that follows its `Date` lands inside it).
async fn date_header(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(state.clock.now().as_secs());
    if let Ok(value) = axum::http::HeaderValue::from_str(&httpdate::fmt_http_date(now)) {
        response
            .headers_mut()
            .insert(axum::http::header::DATE, value);
    }
    response
}

/// One span per request with the route template (never the raw URI, which
/// may carry secrets in its query), and one log line with status and latency.
async fn trace_request(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = request.method().clone();
    let span = tracing::info_span!("request", %method, route = %route);
    let start = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let _enter = span.enter();
    tracing::info!(
        status = response.status().as_u16(),
        latency_ms = start.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}
