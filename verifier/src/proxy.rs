//! The verifying reverse proxy: the same checks as [`VerifierLayer`], in
//! front of a service written in any language (`holdfastd proxy`).
//!
//! [`proxy_router`] answers `/healthz` and `/metrics` itself and forwards
//! every other path and method to the upstream, behind the layer: a request
//! that fails a check is answered by the proxy (RFC 9449 §7.1) and never
//! reaches the upstream. A verified request is forwarded with its path and
//! query, its body streamed, and these headers (`docs/verifier.md`):
//!
//! - `X-Holdfast-Subject`, `-Client`, `-Session`, `-Device`, `-Amr`, `-Jkt`
//!   (and `-Scope` when the token has one): the verified caller. Any
//!   `X-Holdfast-*` header the client sent is dropped first, so the upstream
//!   can trust these, as long as it can only be reached through the proxy.
//! - `X-Forwarded-For` (the client's value, if any, then the TCP peer),
//!   `X-Forwarded-Proto` and `X-Forwarded-Host` (from the proxy's public
//!   URL, never from the client's `Host`).
//!
//! Hop-by-hop headers (RFC 9110 §7.6.1) are dropped both ways, and so are
//! `Authorization` and `DPoP` unless
//! [`ProxyOptions::danger_forward_credentials`]: the upstream has no use
//! for them, and a token it logs or leaks is one less thing to steal.
//!
//! It never follows redirects, never decompresses, never reads a proxy from
//! the environment, and never logs tokens, proofs, `Authorization` values
//! or query strings.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Uri};

use crate::extract::Verified;
use crate::feed::FeedMonitor;
use crate::identity::VerifiedIdentity;
use crate::layer::{VerifierLayer, VerifierMetrics};
use crate::verifier::Verifier;

/// The path the proxy answers itself for liveness; not forwarded.
pub const HEALTHZ_PATH: &str = "/healthz";
/// The path of the proxy's Prometheus metrics; not forwarded.
pub const METRICS_PATH: &str = "/metrics";

/// The verified principal (`sub`).
pub const SUBJECT_HEADER: HeaderName = HeaderName::from_static("x-holdfast-subject");
/// The verified client (`client_id`).
pub const CLIENT_HEADER: HeaderName = HeaderName::from_static("x-holdfast-client");
/// The verified session (`sid`).
pub const SESSION_HEADER: HeaderName = HeaderName::from_static("x-holdfast-session");
/// The verified device: the client id (in Holdfast the device is the
/// client).
pub const DEVICE_HEADER: HeaderName = HeaderName::from_static("x-holdfast-device");
/// The token's `amr`, space-separated.
pub const AMR_HEADER: HeaderName = HeaderName::from_static("x-holdfast-amr");
/// The thumbprint of the key that signed the proof (`cnf.jkt`).
pub const JKT_HEADER: HeaderName = HeaderName::from_static("x-holdfast-jkt");
/// The token's `scope`, when it has one.
pub const SCOPE_HEADER: HeaderName = HeaderName::from_static("x-holdfast-scope");

/// The prefix of every header the proxy vouches for; stripped on the way in.
const HOLDFAST_PREFIX: &str = "x-holdfast-";
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// RFC 7239 `Forwarded`: the proxy does not write it, so a client's value
/// would be unvouched-for; dropped.
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
const DPOP: HeaderName = HeaderName::from_static("dpop");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");

/// How the proxy forwards. The defaults suit production.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// Per request: connecting to the upstream and receiving its response
    /// headers must take at most this long (else 504), and so may any
    /// pause while a body streams (else the stream is cut). Default 30 s.
    pub timeout: Duration,
    /// `danger`: forward `Authorization` and `DPoP` to the upstream. Off by
    /// default: a verified request needs neither, and an upstream that
    /// logs or leaks them hands a thief a token (with the proof, a replay
    /// window).
    pub danger_forward_credentials: bool,
    /// The feed follower's counters, rendered on `/metrics` when given.
    pub feed: Option<FeedMonitor>,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            danger_forward_credentials: false,
            feed: None,
        }
    }
}

/// Why [`proxy_router`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The upstream is not an absolute `http`/`https` URL without
    /// credentials, query or fragment.
    #[error("upstream {url:?} must be an http:// or https:// URL without user, query or fragment")]
    InvalidUpstream {
        /// The URL as given (truncated).
        url: String,
    },
    /// The verifier's base URL (the proxy's public URL) has no host.
    #[error("the public URL {url:?} must be an http:// or https:// URL with a host")]
    InvalidPublicUrl {
        /// The URL (truncated).
        url: String,
    },
    /// The HTTP client could not be built (e.g. no TLS roots).
    #[error("cannot build the upstream HTTP client")]
    HttpClient(#[source] reqwest::Error),
}

/// The proxy: `/healthz` and `/metrics`, and every other path and method
/// forwarded to `upstream` behind a [`VerifierLayer`] over `verifier`.
///
/// `upstream` is the base URL of the service (`http://127.0.0.1:9000`, or
/// with a path prefix `http://10.0.0.5/api`); the request's path and query
/// are appended. The verifier's `base_url` is the proxy's public URL: the
/// `htu` clients sign. Serve the router with
/// `into_make_service_with_connect_info::<SocketAddr>()`, so that
/// `X-Forwarded-For` names the client.
///
/// # Errors
/// [`ProxyError`] for an unusable upstream or public URL, or when the HTTP
/// client cannot be built.
pub fn proxy_router(
    verifier: Arc<Verifier>,
    upstream: &str,
    options: ProxyOptions,
) -> Result<Router, ProxyError> {
    build(verifier, upstream, options, Checks::Verify)
}

/// `danger`, **for benchmarks only**: the proxy of [`proxy_router`] with
/// the check switched off. Every request is forwarded, whatever its
/// credentials, with a fixed placeholder identity (`UNVERIFIED`) in the
/// `X-Holdfast-*` headers; everything else (routing, header handling,
/// forwarding) is the same, so comparing the two measures what
/// verification costs (`docs/performance.md`). `holdfastd proxy` reaches
/// it only with `--danger-no-verify --bench-only`, on loopback.
///
/// # Errors
/// As [`proxy_router`].
pub fn danger_unverified_proxy_router_for_benchmarks(
    verifier: Arc<Verifier>,
    upstream: &str,
    options: ProxyOptions,
) -> Result<Router, ProxyError> {
    tracing::error!(
        "the proxy forwards every request WITHOUT verifying it (benchmarking only); \
         never expose it"
    );
    build(verifier, upstream, options, Checks::DangerOff)
}

/// Whether forwarded requests are verified.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Checks {
    Verify,
    DangerOff,
}

fn build(
    verifier: Arc<Verifier>,
    upstream: &str,
    options: ProxyOptions,
    checks: Checks,
) -> Result<Router, ProxyError> {
    let upstream = parse_upstream(upstream)?;
    let public = Public::from_base_url(&verifier.config().base_url)?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(options.timeout)
        .read_timeout(options.timeout)
        .build()
        .map_err(ProxyError::HttpClient)?;
    let layer = VerifierLayer::new(verifier);
    let proxy = Arc::new(Proxy {
        http,
        upstream,
        public,
        timeout: options.timeout,
        forward_credentials: options.danger_forward_credentials,
        metrics: ProxyMetrics::default(),
        verifier_metrics: Arc::clone(layer.metrics()),
        feed: options.feed,
    });
    let forwarded = match checks {
        Checks::Verify => Router::new().fallback(forward).layer(layer),
        Checks::DangerOff => {
            let identity = unverified_identity();
            Router::new()
                .fallback(forward)
                .layer(tower::util::MapRequestLayer::new(
                    move |mut request: Request| {
                        request.extensions_mut().insert(identity.clone());
                        request
                    },
                ))
        }
    }
    .with_state(Arc::clone(&proxy));
    Ok(Router::new()
        .route(HEALTHZ_PATH, get(healthz))
        .route(METRICS_PATH, get(metrics))
        .with_state(proxy)
        .merge(forwarded))
}

/// The caller named on every request by the unverified benchmarking
/// proxy: nobody, and it says so.
fn unverified_identity() -> VerifiedIdentity {
    let nobody = "UNVERIFIED";
    VerifiedIdentity {
        sub: nobody.to_owned(),
        client_id: nobody.to_owned(),
        sid: nobody.to_owned(),
        scope: None,
        amr: vec![nobody.to_owned()],
        // The thumbprint of a fixed non-key (all-zero coordinates).
        jkt: holdfast_proto::Jwk::p256([0; 32], [0; 32]).thumbprint(),
    }
}

/// What every forwarded request shares.
struct Proxy {
    http: reqwest::Client,
    /// The upstream base, without a trailing `/`.
    upstream: String,
    public: Public,
    timeout: Duration,
    forward_credentials: bool,
    metrics: ProxyMetrics,
    verifier_metrics: Arc<VerifierMetrics>,
    feed: Option<FeedMonitor>,
}

/// `X-Forwarded-Proto` and `X-Forwarded-Host`: the public URL the proofs
/// were checked against, not the client's `Host`.
struct Public {
    proto: HeaderValue,
    host: HeaderValue,
}

impl Public {
    fn from_base_url(base_url: &str) -> Result<Self, ProxyError> {
        let invalid = || ProxyError::InvalidPublicUrl {
            url: truncate(base_url),
        };
        let url = reqwest::Url::parse(base_url).map_err(|_| invalid())?;
        let host = url.host_str().ok_or_else(invalid)?;
        let host = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        Ok(Self {
            proto: HeaderValue::try_from(url.scheme()).map_err(|_| invalid())?,
            host: HeaderValue::try_from(host).map_err(|_| invalid())?,
        })
    }
}

/// Counters of the forwarding itself.
#[derive(Debug, Default)]
struct ProxyMetrics {
    forwarded: AtomicU64,
    bad_gateway: AtomicU64,
    gateway_timeout: AtomicU64,
}

/// `GET /healthz`: the proxy runs. Not verified, not forwarded.
async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /metrics`: the layer's refusals, the feed's state and the
/// forwarding counters. Not verified: restrict it at the edge.
async fn metrics(State(proxy): State<Arc<Proxy>>) -> Response {
    let mut out = proxy.verifier_metrics.render();
    if let Some(feed) = &proxy.feed {
        out.push_str(&feed.stats().render());
    }
    let m = &proxy.metrics;
    let _ = writeln!(
        out,
        "# HELP holdfast_proxy_forwarded_total Verified requests answered by the upstream.\n\
         # TYPE holdfast_proxy_forwarded_total counter\n\
         holdfast_proxy_forwarded_total {}\n\
         # HELP holdfast_proxy_upstream_errors_total Verified requests the upstream did not answer.\n\
         # TYPE holdfast_proxy_upstream_errors_total counter\n\
         holdfast_proxy_upstream_errors_total{{error=\"bad_gateway\"}} {}\n\
         holdfast_proxy_upstream_errors_total{{error=\"gateway_timeout\"}} {}",
        m.forwarded.load(Ordering::Relaxed),
        m.bad_gateway.load(Ordering::Relaxed),
        m.gateway_timeout.load(Ordering::Relaxed),
    );
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        out,
    )
        .into_response()
}

/// Every other request, once the layer has verified it: forwarded.
#[tracing::instrument(
    name = "proxy",
    skip_all,
    fields(method = %request.method(), path = %request.uri().path(), client_id = %caller.client_id, sid = %caller.sid)
)]
async fn forward(
    State(proxy): State<Arc<Proxy>>,
    Verified(caller): Verified,
    request: Request,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    let (parts, body) = request.into_parts();
    let url = upstream_url(&proxy.upstream, &parts.uri);
    let headers = match request_headers(&parts.headers, &caller, peer, &proxy) {
        Ok(headers) => headers,
        Err(claim) => {
            // The issuer minted a claim that cannot travel in a header:
            // not the client's fault, and not forwardable without it.
            tracing::error!(claim, "a verified claim is not a valid header value");
            return json_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
        }
    };
    let upstream_request = proxy
        .http
        .request(parts.method, url)
        .headers(headers)
        .body(reqwest::Body::wrap(SyncBody(Mutex::new(body))));
    match send(&proxy, upstream_request).await {
        Ok(answer) => relay(answer),
        Err(refusal) => refusal,
    }
}

/// Sends `request` upstream within the timeout; its answer, or the 502/504
/// to give instead (logged once here).
async fn send(
    proxy: &Proxy,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, Response> {
    let error = match tokio::time::timeout(proxy.timeout, request.send()).await {
        Ok(Ok(answer)) => {
            proxy.metrics.forwarded.fetch_add(1, Ordering::Relaxed);
            return Ok(answer);
        }
        Err(_elapsed) => return Err(gateway_timeout(proxy)),
        Ok(Err(error)) if error.is_timeout() => return Err(gateway_timeout(proxy)),
        Ok(Err(error)) => error,
    };
    proxy.metrics.bad_gateway.fetch_add(1, Ordering::Relaxed);
    // `without_url`: the URL carries the client's query string.
    let error = error.without_url();
    let mut cause = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(inner) = source {
        let _ = write!(cause, ": {inner}");
        source = inner.source();
    }
    tracing::warn!(error = %cause, "upstream unreachable");
    Err(json_error(StatusCode::BAD_GATEWAY, "bad_gateway"))
}

/// The upstream's answer, its body streamed, hop-by-hop headers dropped.
fn relay(answer: reqwest::Response) -> Response {
    let (parts, body) = http::Response::<reqwest::Body>::from(answer).into_parts();
    let mut response = Response::new(Body::new(body));
    *response.status_mut() = parts.status;
    *response.headers_mut() = strip_hop_by_hop(&parts.headers);
    response
}

/// The upstream base plus the request's path and query.
fn upstream_url(upstream: &str, uri: &Uri) -> String {
    let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
    format!("{upstream}{path_and_query}")
}

/// The headers sent upstream: the client's, minus hop-by-hop ones, minus
/// anything claiming to be from the proxy, minus the credentials (unless
/// configured); plus the verified identity and the `X-Forwarded-*` set.
///
/// # Errors
/// The name of a claim that is not a valid header value.
fn request_headers(
    incoming: &HeaderMap,
    caller: &VerifiedIdentity,
    peer: Option<SocketAddr>,
    proxy: &Proxy,
) -> Result<HeaderMap, &'static str> {
    let mut headers = strip_hop_by_hop(incoming);
    let forwarded_for: Vec<HeaderValue> =
        headers.get_all(&X_FORWARDED_FOR).iter().cloned().collect();
    let spoofable: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with(HOLDFAST_PREFIX))
        .cloned()
        .collect();
    for name in spoofable {
        headers.remove(name);
    }
    // The upstream's own `Host` comes from its URL.
    for name in [
        header::HOST,
        X_FORWARDED_FOR,
        X_FORWARDED_PROTO,
        X_FORWARDED_HOST,
        FORWARDED,
    ] {
        headers.remove(name);
    }
    if !proxy.forward_credentials {
        headers.remove(header::AUTHORIZATION);
        headers.remove(DPOP);
    }

    let value = |claim: &'static str, value: &str| HeaderValue::try_from(value).map_err(|_| claim);
    headers.insert(SUBJECT_HEADER, value("sub", &caller.sub)?);
    headers.insert(CLIENT_HEADER, value("client_id", &caller.client_id)?);
    headers.insert(SESSION_HEADER, value("sid", &caller.sid)?);
    headers.insert(DEVICE_HEADER, value("client_id", &caller.client_id)?);
    headers.insert(AMR_HEADER, value("amr", &caller.amr.join(" "))?);
    headers.insert(JKT_HEADER, value("cnf.jkt", caller.jkt.as_str())?);
    if let Some(scope) = &caller.scope {
        headers.insert(SCOPE_HEADER, value("scope", scope)?);
    }

    // The client's chain, then the peer; without a peer the chain's last
    // entry would be whatever the client wrote, so none is sent.
    if let Some(peer) = peer {
        let mut chain: Vec<&str> = forwarded_for
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let peer = peer.ip().to_string();
        chain.push(&peer);
        if let Ok(chain) = HeaderValue::try_from(chain.join(", ")) {
            headers.insert(X_FORWARDED_FOR, chain);
        }
    }
    headers.insert(X_FORWARDED_PROTO, proxy.public.proto.clone());
    headers.insert(X_FORWARDED_HOST, proxy.public.host.clone());
    Ok(headers)
}

/// `headers` without the hop-by-hop ones (RFC 9110 §7.6.1): the fixed
/// list, and every header the `Connection` header names.
fn strip_hop_by_hop(headers: &HeaderMap) -> HeaderMap {
    let named: BTreeSet<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect();
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if is_hop_by_hop(name) || named.contains(name.as_str()) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// Connection, Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    [
        header::CONNECTION,
        KEEP_ALIVE,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ]
    .contains(name)
        || name.as_str().starts_with("proxy-")
}

fn gateway_timeout(proxy: &Proxy) -> Response {
    proxy
        .metrics
        .gateway_timeout
        .fetch_add(1, Ordering::Relaxed);
    tracing::warn!(
        timeout_secs = proxy.timeout.as_secs_f64(),
        "upstream timed out"
    );
    json_error(StatusCode::GATEWAY_TIMEOUT, "gateway_timeout")
}

/// `{"error": code}` with `status`.
fn json_error(status: StatusCode, code: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": code }))).into_response()
}

fn truncate(s: &str) -> String {
    s.chars().take(200).collect()
}

/// The upstream base URL, checked, without a trailing `/`.
fn parse_upstream(upstream: &str) -> Result<String, ProxyError> {
    let invalid = || ProxyError::InvalidUpstream {
        url: truncate(upstream),
    };
    let url = reqwest::Url::parse(upstream).map_err(|_| invalid())?;
    let usable = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none()
        && !upstream.contains(['#', '?']);
    if !usable {
        return Err(invalid());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// The client's body, streamed to the upstream as it arrives.
///
/// `reqwest::Body::wrap` wants a `Sync` body and axum's is not; a `Mutex`
/// makes it so without locking on the data path (`poll_frame` has
/// `&mut self`, so `get_mut` reaches the body directly). This avoids
/// reqwest's `stream` feature and the crates it pulls in.
struct SyncBody(Mutex<Body>);

impl HttpBody for SyncBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let body = self
            .get_mut()
            .0
            .get_mut()
            .unwrap_or_else(|p| p.into_inner());
        Pin::new(body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::try_from(*name).unwrap(),
                HeaderValue::try_from(*value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn strips_fixed_and_connection_named_hop_by_hop_headers() {
        let headers = map(&[
            ("connection", "close, X-Secret"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic x"),
            ("te", "trailers"),
            ("trailer", "x"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("x-secret", "1"),
            ("accept", "text/plain"),
            ("accept", "application/json"),
        ]);
        let kept = strip_hop_by_hop(&headers);
        let names: Vec<&str> = kept.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["accept"]);
        assert_eq!(kept.get_all("accept").iter().count(), 2);
    }

    #[test]
    fn upstream_url_keeps_path_and_query() {
        let uri: Uri = "/a/b?x=1&y=%20".parse().unwrap();
        assert_eq!(
            upstream_url("http://up:9000/base", &uri),
            "http://up:9000/base/a/b?x=1&y=%20"
        );
    }

    /// The benchmarking-only router forwards a request with no credentials
    /// at all, naming nobody; the real one refuses the same request.
    #[tokio::test]
    async fn danger_unverified_router_forwards_what_the_real_one_refuses() {
        use holdfast_proto::{IssuerKeys, VerifyingKey};
        use tower::ServiceExt as _;

        struct NoKeys;
        impl IssuerKeys for NoKeys {
            fn key(&self, _kid: &str) -> Option<Arc<VerifyingKey>> {
                None
            }
        }
        // An upstream that echoes who the proxy said the caller was.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = format!("http://{}", listener.local_addr().unwrap());
        let echo = Router::new().fallback(|headers: HeaderMap| async move {
            headers
                .get(SUBJECT_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned()
        });
        tokio::spawn(async move { axum::serve(listener, echo).await });
        let verifier = || {
            let config = crate::VerifierConfig::new(
                "https://issuer.example",
                "api",
                "https://api.example",
                "rs",
                "secret",
            );
            Arc::new(Verifier::new(
                config,
                Arc::new(NoKeys),
                Arc::new(crate::Registry::new()),
            ))
        };
        let request = || http::Request::get("/orders").body(Body::empty()).unwrap();

        let real = proxy_router(verifier(), &upstream, ProxyOptions::default()).unwrap();
        let refused = real.oneshot(request()).await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

        let unverified = danger_unverified_proxy_router_for_benchmarks(
            verifier(),
            &upstream,
            ProxyOptions::default(),
        )
        .unwrap();
        let forwarded = unverified.oneshot(request()).await.unwrap();
        assert_eq!(forwarded.status(), StatusCode::OK);
        let body = axum::body::to_bytes(forwarded.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], b"UNVERIFIED");
    }

    #[test]
    fn rejects_upstream_with_query_or_credentials() {
        for url in [
            "ftp://up",
            "http://up/?x=1",
            "http://u:p@up",
            "http://up/#f",
            "not a url",
        ] {
            assert!(
                matches!(parse_upstream(url), Err(ProxyError::InvalidUpstream { .. })),
                "{url}"
            );
        }
        assert_eq!(
            parse_upstream("http://up:9000/api/").unwrap(),
            "http://up:9000/api"
        );
        assert_eq!(parse_upstream("https://up").unwrap(), "https://up");
    }
}
