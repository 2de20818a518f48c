//! The tower layer: every request behind it either carries a
//! [`VerifiedIdentity`] in its extensions when it reaches the inner service,
//! or never reaches it and is answered here (RFC 9449 §7.1, RFC 6750 §3).
//!
//! The check runs inline in `call`, not in `spawn_blocking`. It is CPU-bound
//! and short (one P-256 verification, ~60 µs; `docs/performance.md`), within
//! what a tokio task may run between awaits. `spawn_blocking` would add a
//! thread hand-off to every request and, under a flood of bogus proofs,
//! queue them on the bounded blocking pool, where they would compete with
//! the blocking work the service really has. Inline, the cost stays on the
//! worker that accepted the connection and scales with the runtime's workers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, OriginalUri};
use axum::response::{IntoResponse as _, Response};
use holdfast_proto::{WireCode, dpop_challenge};
use http::header::{AUTHORIZATION, CACHE_CONTROL, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue, Request, StatusCode};
use serde::Serialize;
use tower::{Layer, Service};

use crate::check::RequestParts;
use crate::client_ip::client_ip;
use crate::error::VerifyError;
use crate::identity::VerifiedIdentity;
use crate::verifier::Verifier;

/// The `DPoP` request header (RFC 9449 §4.1).
const DPOP: HeaderName = HeaderName::from_static("dpop");
/// The `DPoP-Nonce` response header (RFC 9449 §8.1).
const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");
/// Where trusted proxies name the client.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Puts a [`Verifier`] in front of a service: requests that fail a check
/// are answered with the RFC 9449 §7.1 refusal; the others reach the
/// service with their [`VerifiedIdentity`] in the request extensions (read
/// it with [`crate::Verified`]).
///
/// ```no_run
/// # use std::sync::Arc;
/// # use axum::{Json, Router, routing::get};
/// # use holdfast_verifier::{Verified, VerifiedIdentity, Verifier, VerifierLayer};
/// # fn app(verifier: Arc<Verifier>) -> Router {
/// async fn orders(Verified(id): Verified) -> Json<VerifiedIdentity> {
///     Json(id)
/// }
/// Router::new()
///     .route("/orders", get(orders))
///     .layer(VerifierLayer::new(verifier))
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct VerifierLayer {
    verifier: Arc<Verifier>,
    metrics: Arc<VerifierMetrics>,
}

impl VerifierLayer {
    /// A layer checking every request with `verifier`.
    pub fn new(verifier: Arc<Verifier>) -> Self {
        Self {
            verifier,
            metrics: Arc::new(VerifierMetrics::default()),
        }
    }

    /// The counters of every service this layer made (serve
    /// [`VerifierMetrics::render`] on the service's metrics endpoint).
    pub fn metrics(&self) -> &Arc<VerifierMetrics> {
        &self.metrics
    }

    /// The verifier.
    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }
}

impl<S> Layer<S> for VerifierLayer {
    type Service = VerifierService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifierService {
            inner,
            verifier: Arc::clone(&self.verifier),
            metrics: Arc::clone(&self.metrics),
        }
    }
}

/// The service [`VerifierLayer`] wraps around an inner service: an axum
/// router or route, or any service answering [`axum::response::Response`].
#[derive(Debug, Clone)]
pub struct VerifierService<S> {
    inner: S,
    verifier: Arc<Verifier>,
    metrics: Arc<VerifierMetrics>,
}

impl<S, B> Service<Request<B>> for VerifierService<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let outcome = verify(&self.verifier, &request);
        match outcome {
            Ok(identity) => {
                self.metrics.record_verified();
                request.extensions_mut().insert(identity);
                // Called here, not inside a future: the inner service is
                // the one `poll_ready` made ready.
                ResponseFuture {
                    kind: Kind::Inner(Box::pin(self.inner.call(request))),
                }
            }
            Err(error) => {
                self.metrics.record_refusal(&error);
                log_refusal(&error, &request);
                ResponseFuture {
                    kind: Kind::Refused(Some(refusal(&error, &self.verifier))),
                }
            }
        }
    }
}

/// The future of [`VerifierService`]: the inner service's answer, or the
/// refusal, ready at once.
pub struct ResponseFuture<F> {
    kind: Kind<F>,
}

enum Kind<F> {
    Inner(Pin<Box<F>>),
    Refused(Option<Response>),
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().kind {
            Kind::Inner(future) => future.as_mut().poll(cx),
            // Polled again after it completed: a caller bug; answer 500
            // rather than panic.
            Kind::Refused(response) => Poll::Ready(Ok(response
                .take()
                .unwrap_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response()))),
        }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.kind {
            Kind::Inner(_) => "inner",
            Kind::Refused(_) => "refused",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

/// Refusal counts by check: what a service exposes on its metrics endpoint.
#[derive(Debug, Default)]
pub struct VerifierMetrics {
    verified: AtomicU64,
    /// `(check, wire code) -> count`. The wire code tells apart checks of
    /// the same name in the token and the proof (`invalid_signature`).
    refused: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

impl VerifierMetrics {
    /// Requests that passed every check.
    pub fn verified(&self) -> u64 {
        self.verified.load(Ordering::Relaxed)
    }

    /// Requests refused by `check` (a [`VerifyError::check`] name), over
    /// every wire code.
    pub fn refused(&self, check: &str) -> u64 {
        let map = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .filter(|((name, _), _)| *name == check)
            .map(|(_, count)| *count)
            .sum()
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP holdfast_verifier_verified_total Requests that passed every check."
        );
        let _ = writeln!(out, "# TYPE holdfast_verifier_verified_total counter");
        let _ = writeln!(out, "holdfast_verifier_verified_total {}", self.verified());
        let _ = writeln!(
            out,
            "# HELP holdfast_verifier_refused_total Requests refused, by failed check and error code."
        );
        let _ = writeln!(out, "# TYPE holdfast_verifier_refused_total counter");
        let map = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        for ((check, error), count) in map.iter() {
            let _ = writeln!(
                out,
                "holdfast_verifier_refused_total{{check=\"{check}\",error=\"{error}\"}} {count}"
            );
        }
        out
    }

    fn record_verified(&self) {
        self.verified.fetch_add(1, Ordering::Relaxed);
    }

    fn record_refusal(&self, error: &VerifyError) {
        let key = (error.check(), error.wire_code().unwrap_or("none"));
        let mut map = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry(key).or_default() += 1;
    }
}

/// Runs the check on what the request says; the identity or the refusal.
#[tracing::instrument(level = "debug", name = "verify_request", skip_all)]
fn verify<B>(verifier: &Verifier, request: &Request<B>) -> Result<VerifiedIdentity, VerifyError> {
    let headers = request.headers();
    let parts = RequestParts {
        method: request.method().as_str(),
        // `htu` is the configured base URL plus this path (never the Host
        // header, which the client chooses). Under `Router::nest` the URI
        // seen here lost its prefix; the original one has it.
        path: request
            .extensions()
            .get::<OriginalUri>()
            .map_or_else(|| request.uri().path(), |original| original.0.path()),
        authorization: headers
            .get_all(AUTHORIZATION)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect(),
        dpop: headers
            .get_all(DPOP)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect(),
        // The TCP peer (present when served with `ConnectInfo`), or the
        // client named by trusted proxies in front of it.
        client_ip: client_ip(
            request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| peer.ip()),
            headers
                .get_all(X_FORWARDED_FOR)
                .iter()
                .map(HeaderValue::as_bytes),
            &verifier.config().trusted_proxies,
        ),
    };
    let identity = verifier.check_request(&parts)?;
    tracing::debug!(
        jkt = %identity.jkt,
        sid = %identity.sid,
        client_id = %identity.client_id,
        "request verified"
    );
    Ok(identity)
}

/// One log line per refusal, with safe fields only: never the token, the
/// proof, a nonce or the raw query.
fn log_refusal<B>(error: &VerifyError, request: &Request<B>) {
    let matched_path = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("(unmatched)", MatchedPath::as_str);
    let method = request.method().as_str();
    let check = error.check();
    let code = error.wire_code().unwrap_or("none");
    let status = error.status();
    if status >= 500 {
        tracing::warn!(check, error = code, status, method, matched_path, detail = %error, "request refused");
    } else {
        tracing::info!(check, error = code, status, method, matched_path, detail = %error, "request refused");
    }
}

/// The `error` / `error_description` body (RFC 6750 §3).
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: String,
}

/// The answer to a refused request: its status, the `WWW-Authenticate`
/// challenge, a JSON body (none for a request without credentials, RFC 6750
/// §3.1), `Cache-Control: no-store`, and a fresh `DPoP-Nonce` on a 401 when
/// nonces are on, so the client's retry can succeed at once (RFC 9449 §9).
fn refusal(error: &VerifyError, verifier: &Verifier) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match error.wire_code() {
        Some(code) => Json(ErrorBody {
            error: code,
            error_description: error.to_string(),
        })
        .into_response(),
        None => Response::new(Body::empty()),
    };
    *response.status_mut() = status;
    let algs = &verifier.config().algs;
    // `dpop_challenge` keeps only printable ASCII, so this parses; if it
    // ever did not, the bare challenge still tells the client the scheme.
    let challenge = HeaderValue::try_from(error.www_authenticate(algs))
        .or_else(|_| HeaderValue::try_from(dpop_challenge(None, algs)));
    let headers = response.headers_mut();
    if let Ok(challenge) = challenge {
        headers.insert(WWW_AUTHENTICATE, challenge);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let wants_nonce = error.wire_code() == Some(WireCode::UseDpopNonce.as_str())
        || status == StatusCode::UNAUTHORIZED;
    if wants_nonce
        && let Some(nonce) = verifier
            .fresh_nonce()
            .and_then(|n| HeaderValue::try_from(n).ok())
    {
        headers.insert(DPOP_NONCE, nonce);
    }
    response
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::Router;
    use axum::routing::get;
    use holdfast_proto::{IssuerKeys, NonceIssuer, NonceSecret, VerifyingKey};
    use tower::ServiceExt as _;

    use super::*;
    use crate::registry::Registry;
    use crate::{Verified, VerifierConfig};

    struct NoKeys;

    impl IssuerKeys for NoKeys {
        fn key(&self, _kid: &str) -> Option<Arc<VerifyingKey>> {
            None
        }
    }

    fn verifier() -> Verifier {
        let config = VerifierConfig::new(
            "https://issuer.example",
            "api",
            "https://api.example",
            "rs",
            "secret",
        );
        Verifier::new(config, Arc::new(NoKeys), Arc::new(Registry::new()))
    }

    fn with_nonces(verifier: Verifier) -> Verifier {
        let secret = NonceSecret::new(&[7u8; 32]).unwrap();
        verifier.with_nonces(NonceIssuer::new(secret, [], 60, 2).unwrap())
    }

    async fn orders(Verified(id): Verified) -> String {
        id.sub
    }

    fn app(layer: VerifierLayer) -> Router {
        Router::new().route("/orders", get(orders)).layer(layer)
    }

    async fn send(app: Router, headers: &[(&str, &str)]) -> (Response, String) {
        let mut request = Request::get("/orders");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = app
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 16).await.unwrap();
        (
            Response::from_parts(parts, Body::empty()),
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
        response.headers().get(name).map(|v| v.to_str().unwrap())
    }

    #[tokio::test]
    async fn refuses_request_without_token_with_bare_challenge() {
        let layer = VerifierLayer::new(Arc::new(verifier()));
        let (response, body) = send(app(layer.clone()), &[]).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            header(&response, "www-authenticate"),
            Some("DPoP algs=\"ES256\"")
        );
        assert_eq!(header(&response, "cache-control"), Some("no-store"));
        assert_eq!(header(&response, "dpop-nonce"), None);
        assert_eq!(body, "");
        assert_eq!(layer.metrics().refused("missing_token"), 1);
    }

    #[tokio::test]
    async fn refuses_two_authorization_headers_with_invalid_request() {
        let layer = VerifierLayer::new(Arc::new(verifier()));
        let headers = [("authorization", "DPoP a"), ("authorization", "DPoP b")];
        let (response, body) = send(app(layer), &headers).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            header(&response, "www-authenticate"),
            Some(
                "DPoP error=\"invalid_request\", error_description=\"more than one \
                 Authorization header\", algs=\"ES256\""
            )
        );
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": "invalid_request",
                "error_description": "more than one Authorization header"})
        );
    }

    #[tokio::test]
    async fn refuses_malformed_token_and_counts_it_by_check_and_code() {
        let layer = VerifierLayer::new(Arc::new(verifier()));
        let headers = [("authorization", "DPoP abc"), ("dpop", "x.y.z")];
        let (response, body) = send(app(layer.clone()), &headers).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"], "invalid_token");
        let text = layer.metrics().render();
        assert!(
            text.contains(
                "holdfast_verifier_refused_total{check=\"malformed\",error=\"invalid_token\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("holdfast_verifier_verified_total 0"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn sends_fresh_nonce_on_401_when_nonces_are_on() {
        let layer = VerifierLayer::new(Arc::new(with_nonces(verifier())));
        let (response, _) = send(app(layer.clone()), &[]).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(header(&response, "dpop-nonce").is_some_and(|n| !n.is_empty()));
        // Not on a 400: the request itself is malformed, a nonce won't help.
        let headers = [("authorization", "DPoP a"), ("authorization", "DPoP b")];
        let (response, _) = send(app(layer), &headers).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(header(&response, "dpop-nonce"), None);
    }

    #[tokio::test]
    async fn extractor_without_layer_is_a_server_error() {
        let app = Router::new().route("/orders", get(orders));
        let (response, body) = send(app, &[("authorization", "DPoP a")]).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body, r#"{"error":"server_error"}"#);
    }
}
