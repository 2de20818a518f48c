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
pub mod serve;
pub mod sessions;
pub mod token;

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody as _};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use http_body::{Frame, SizeHint};
use tracing::Instrument as _;

pub use error::ApiError;

use crate::state::AppState;

/// Largest request body accepted (enrollment with attestation evidence is
/// the largest legitimate one).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The issuer's routes.
pub fn router(state: AppState) -> Router {
    let body_timeout = Duration::from_secs(state.settings.raw.limits.body_read_timeout_secs);
    Router::new()
        .merge(meta::routes())
        .merge(enroll::routes())
        .merge(token::routes())
        .merge(introspect::routes())
        .merge(revocation::routes())
        .merge(sessions::routes())
        .merge(admin::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(body_timeout, body_deadline))
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

/// The answer to a body that could not be read: 413 when it is larger than
/// [`MAX_BODY_BYTES`] (the reading stopped there), else 400 (a body that
/// broke off or took longer than `limits.body_read_timeout_secs`); both
/// RFC 6749 `invalid_request`.
pub(crate) fn unreadable_body(rejection: &BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        );
    }
    ApiError::invalid_request(format!("cannot read the body: {rejection}"))
}

/// Bounds the time a client may take to send a request body. The header
/// read timeout (`http::serve`) stops at the end of the head; without this,
/// a client announcing 64 KiB and sending a byte a second would hold its
/// connection for 18 hours.
async fn body_deadline(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let request = request.map(|body| {
        Body::new(DeadlineBody {
            inner: body,
            deadline: Box::pin(tokio::time::sleep(limit)),
            limit,
        })
    });
    next.run(request).await
}

/// A request body that fails once its deadline has passed.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
}

/// The error a [`DeadlineBody`] ends with.
#[derive(Debug, thiserror::Error)]
#[error("the body took longer than {} s to arrive", .0.as_secs())]
struct BodyTimedOut(Duration);

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut(this.limit)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::http::header::CONTENT_TYPE;
    use holdfast_proto::endpoints::TOKEN_PATH;
    use serde_json::Value;
    use tower::ServiceExt as _;

    use super::*;
    use crate::testing::TestIssuer;

    /// A form body of 16 KiB chunks: `chunks` of them (then the end), or
    /// for ever; after the last one, nothing more ever arrives when
    /// `stall` (a client that stopped sending).
    struct Trickle {
        chunks: Option<usize>,
        stall: bool,
        pulled: Arc<AtomicUsize>,
    }

    impl http_body::Body for Trickle {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if self.chunks == Some(0) {
                // Never woken: the client went quiet.
                return if self.stall {
                    Poll::Pending
                } else {
                    Poll::Ready(None)
                };
            }
            if let Some(left) = &mut self.chunks {
                *left -= 1;
            }
            self.pulled.fetch_add(1, Ordering::SeqCst);
            Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'a'; 16 * 1024])))))
        }
    }

    async fn post_token(body: Trickle) -> (StatusCode, Value) {
        let issuer = TestIssuer::with_config(|c| c.limits.body_read_timeout_secs = 1);
        let request = axum::http::Request::post(TOKEN_PATH)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::new(body))
            .unwrap();
        let response = issuer.router().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn refuses_an_endless_body_with_413_after_reading_the_limit() {
        let pulled = Arc::new(AtomicUsize::new(0));
        let body = Trickle {
            chunks: None,
            stall: false,
            pulled: Arc::clone(&pulled),
        };
        let (status, body) = post_token(body).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["error"], "invalid_request");
        assert_eq!(
            body["error_description"],
            format!("the body is larger than {MAX_BODY_BYTES} bytes")
        );
        // The limit plus the chunk that crossed it, and no more.
        assert_eq!(
            pulled.load(Ordering::SeqCst),
            MAX_BODY_BYTES / (16 * 1024) + 1
        );
    }

    #[tokio::test]
    async fn refuses_a_body_that_stops_arriving_once_its_time_is_up() {
        let body = Trickle {
            chunks: Some(1),
            stall: true,
            pulled: Arc::default(),
        };
        let (status, body) = post_token(body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_request");
        let description = body["error_description"].as_str().unwrap();
        assert!(
            description.ends_with("the body took longer than 1 s to arrive"),
            "{description}"
        );
    }
}
