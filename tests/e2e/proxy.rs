//! The verifying reverse proxy (`holdfast_verifier::proxy_router`) on
//! 127.0.0.1, following a real issuer through `connect_with`, in front of a
//! plain axum upstream that echoes what it received: verified requests
//! arrive with the identity headers and without credentials; spoofed
//! `X-Holdfast-*` headers are dropped; refused requests never reach the
//! upstream; upstream failures map to 502/504; large bodies stream intact;
//! a revoked session is refused once the feed has carried the revocation;
//! a session bound to its address (`strict`) is refused from another one,
//! the deviation reported to the issuer, which revokes (or flags) it.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::routing::get;
use holdfast_proto::Clock;
use holdfast_verifier::{FeedHandle, ProxyOptions, VerifierConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use holdfast_server::config::{IpBinding, OnIpViolation};

use crate::issuer_flow::{admin_agent, enrolled_agent};
use crate::support::{Agent, RS_ID, Server, serve, serve_proxy};

/// The size of `/large`.
const LARGE: usize = 5 * 1024 * 1024;
/// The proxy's timeout in these tests; `/slow` takes longer.
const TIMEOUT: Duration = Duration::from_secs(1);
/// How long a revocation may take to reach the proxy before the test fails.
const DEADLINE: Duration = Duration::from_secs(5);

/// The upstream: echoes method, path, query, headers and body as JSON on
/// every path but `/large` (5 MB, streamed in chunks) and `/slow` (answers
/// after three proxy timeouts). Counts the requests it received.
struct Upstream {
    url: String,
    calls: Arc<AtomicUsize>,
    _shutdown: oneshot::Sender<()>,
}

impl Upstream {
    async fn start() -> Self {
        let calls = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .route("/large", get(large))
            .route("/slow", get(slow))
            .fallback(echo)
            .with_state(Arc::clone(&calls));
        let (url, shutdown) = serve(app).await;
        Self {
            url,
            calls,
            _shutdown: shutdown,
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

async fn echo(State(calls): State<Arc<AtomicUsize>>, request: Request) -> axum::Json<Value> {
    calls.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &parts.headers {
        headers
            .entry(name.as_str().to_owned())
            .or_default()
            .push(value.to_str().unwrap().to_owned());
    }
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    axum::Json(json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body": String::from_utf8(body.to_vec()).unwrap(),
    }))
}

async fn large(State(calls): State<Arc<AtomicUsize>>) -> Body {
    calls.fetch_add(1, Ordering::SeqCst);
    Body::new(Chunks { sent: 0 })
}

async fn slow(State(calls): State<Arc<AtomicUsize>>) -> &'static str {
    calls.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(TIMEOUT * 3).await;
    "too late"
}

/// The byte at `i` of `/large`.
fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// `/large`'s body: 64 KiB chunks with no length announced, so it travels
/// chunked both ways.
struct Chunks {
    sent: usize,
}

impl HttpBody for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.sent >= LARGE {
            return Poll::Ready(None);
        }
        let end = (self.sent + 64 * 1024).min(LARGE);
        let chunk: Vec<u8> = (self.sent..end).map(pattern).collect();
        self.sent = end;
        Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(chunk)))))
    }
}

/// A proxy following `server`, in front of `upstream`, listening on its
/// own public URL.
struct Proxy {
    url: String,
    /// The issuer's (test) clock, for proofs.
    clock: Arc<dyn Clock>,
    _feed: FeedHandle,
    _shutdown: oneshot::Sender<()>,
}

impl Proxy {
    async fn start(server: &Server, upstream: &str, forward_credentials: bool) -> Self {
        Self::start_with(server, upstream, forward_credentials, |_| {}).await
    }

    /// As [`Proxy::start`], with `edit` applied to the verifier's config.
    async fn start_with(
        server: &Server,
        upstream: &str,
        forward_credentials: bool,
        edit: impl FnOnce(&mut VerifierConfig),
    ) -> Self {
        let options = ProxyOptions {
            timeout: TIMEOUT,
            danger_forward_credentials: forward_credentials,
            ..ProxyOptions::default()
        };
        let (url, feed, shutdown) =
            serve_proxy(server, upstream, options, |config, _| edit(config)).await;
        Self {
            url,
            clock: server.issuer.clock.clone(),
            _feed: feed,
            _shutdown: shutdown,
        }
    }

    /// `method proxy/path_and_query` with `token` and a fresh proof by
    /// `agent`, from the agent's address, plus `extra` headers and `body`.
    async fn send(
        &self,
        agent: &Agent,
        token: &str,
        method: &str,
        path_and_query: &str,
        extra: &[(&str, &str)],
        body: Option<&str>,
    ) -> reqwest::Response {
        let url = format!("{}{path_and_query}", self.url);
        let htu = url.split('?').next().unwrap();
        let proof = agent.proof(method, htu, Some(token), self.clock.now());
        let mut request = agent
            .http
            .request(method.parse().unwrap(), &url)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof);
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body.to_owned());
        }
        request.send().await.unwrap()
    }

    /// The host and port, as in `X-Forwarded-Host`.
    fn host(&self) -> &str {
        self.url.trim_start_matches("http://")
    }
}

/// The headers the upstream saw, one value each.
fn seen(echo: &Value, name: &str) -> Option<String> {
    let values = echo["headers"][name].as_array()?;
    assert_eq!(values.len(), 1, "{name}: {values:?}");
    Some(values[0].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn proxy_forwards_verified_requests_with_identity_headers_only() {
    let server = Server::start(|_| {}).await;
    let mut admin = admin_agent(&server).await;
    let mut alice = enrolled_agent(&server, &mut admin, "alice").await;
    let upstream = Upstream::start().await;
    let proxy = Proxy::start(&server, &upstream.url, false).await;
    let tokens = alice.login(server.now()).await.unwrap();
    let token = tokens.access.as_str();
    let introspected = server.introspect(token).await;

    // A good GET, with spoofed identity and forwarding headers.
    let response = proxy
        .send(
            &alice,
            token,
            "GET",
            "/orders/42?x=1&y=two%20words",
            &[
                ("x-holdfast-subject", "root"),
                ("X-Holdfast-Roles", "admin"),
                ("x-forwarded-for", "203.0.113.9"),
                ("x-forwarded-host", "evil.example"),
                ("x-forwarded-proto", "gopher"),
                ("forwarded", "for=203.0.113.9"),
                ("accept", "application/json"),
            ],
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let echo: Value = response.json().await.unwrap();
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["path"], "/orders/42");
    assert_eq!(echo["query"], "x=1&y=two%20words");
    assert_eq!(
        seen(&echo, "x-holdfast-subject"),
        introspected["sub"].as_str().map(str::to_owned)
    );
    assert_ne!(seen(&echo, "x-holdfast-subject").as_deref(), Some("root"));
    assert_eq!(
        seen(&echo, "x-holdfast-client"),
        Some(alice.client_id.clone())
    );
    assert_eq!(
        seen(&echo, "x-holdfast-device"),
        Some(alice.client_id.clone())
    );
    assert_eq!(
        seen(&echo, "x-holdfast-session"),
        introspected["sid"].as_str().map(str::to_owned)
    );
    assert_eq!(seen(&echo, "x-holdfast-amr").as_deref(), Some("swk pop"));
    assert_eq!(seen(&echo, "x-holdfast-jkt"), Some(alice.key_jkt()));
    assert_eq!(
        seen(&echo, "x-holdfast-roles"),
        None,
        "spoofed header forwarded"
    );
    assert_eq!(
        seen(&echo, "x-holdfast-scope"),
        None,
        "the token has no scope"
    );
    assert_eq!(seen(&echo, "authorization"), None);
    assert_eq!(seen(&echo, "dpop"), None);
    assert_eq!(seen(&echo, "forwarded"), None);
    assert_eq!(
        seen(&echo, "x-forwarded-for").as_deref(),
        Some("203.0.113.9, 127.0.0.1")
    );
    assert_eq!(seen(&echo, "x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(
        seen(&echo, "x-forwarded-host").as_deref(),
        Some(proxy.host())
    );
    assert_eq!(seen(&echo, "accept").as_deref(), Some("application/json"));
    // The upstream's own Host, not the proxy's.
    assert_eq!(
        seen(&echo, "host").as_deref(),
        Some(upstream.url.trim_start_matches("http://"))
    );
    let x_holdfast: Vec<&String> = echo["headers"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|name| name.starts_with("x-holdfast-"))
        .collect();
    assert_eq!(
        x_holdfast,
        [
            "x-holdfast-amr",
            "x-holdfast-client",
            "x-holdfast-device",
            "x-holdfast-jkt",
            "x-holdfast-session",
            "x-holdfast-subject"
        ]
    );

    // A POST body reaches the upstream.
    let response = proxy
        .send(
            &alice,
            token,
            "POST",
            "/submit",
            &[("content-type", "text/plain")],
            Some("hello, upstream"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let echo: Value = response.json().await.unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["body"], "hello, upstream");
    assert_eq!(seen(&echo, "content-type").as_deref(), Some("text/plain"));
    assert_eq!(upstream.calls(), 2);

    // Refused by the proxy, never seen upstream: a token without a proof,
    // a replayed proof, and no credentials at all.
    let stolen = reqwest::Client::new()
        .get(format!("{}/orders/42", proxy.url))
        .header("authorization", format!("DPoP {token}"))
        .header("x-holdfast-subject", "root")
        .send()
        .await
        .unwrap();
    assert_eq!(stolen.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        stolen.headers()["www-authenticate"],
        "DPoP error=\"invalid_dpop_proof\", error_description=\"missing DPoP proof\", algs=\"ES256\""
    );
    let body: Value = stolen.json().await.unwrap();
    assert_eq!(body["error"], "invalid_dpop_proof");
    let url = format!("{}/orders/42", proxy.url);
    let proof = alice.proof("GET", &url, Some(token), server.now());
    let client = reqwest::Client::new();
    let first = client
        .get(&url)
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", &proof)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(upstream.calls(), 3);
    let replayed = client
        .get(&url)
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", &proof)
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);
    let bare = client.get(&url).send().await.unwrap();
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(bare.headers()["www-authenticate"], "DPoP algs=\"ES256\"");
    assert_eq!(
        upstream.calls(),
        3,
        "a refused request reached the upstream"
    );

    // The proxy's own endpoints: not verified, not forwarded.
    let health = client
        .get(format!("{}/healthz", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await.unwrap(), "ok\n");
    let metrics = client
        .get(format!("{}/metrics", proxy.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "holdfast_verifier_verified_total 3",
        "holdfast_verifier_refused_total{check=\"missing_dpop_header\",error=\"invalid_dpop_proof\"} 1",
        "holdfast_verifier_refused_total{check=\"jti_replayed\",error=\"invalid_dpop_proof\"} 1",
        "holdfast_verifier_refused_total{check=\"missing_token\",error=\"none\"} 1",
        "holdfast_verifier_feed_failing 0",
        "holdfast_proxy_forwarded_total 3",
        "holdfast_proxy_upstream_errors_total{error=\"bad_gateway\"} 0",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    assert_eq!(upstream.calls(), 3);

    // With the danger switch on, the credentials go upstream too.
    let trusting = Proxy::start(&server, &upstream.url, true).await;
    let response = trusting.send(&alice, token, "GET", "/x", &[], None).await;
    let echo: Value = response.json().await.unwrap();
    assert_eq!(seen(&echo, "authorization"), Some(format!("DPoP {token}")));
    assert!(seen(&echo, "dpop").is_some());
}

#[tokio::test]
async fn proxy_maps_upstream_failures_to_502_and_504_and_streams_large_bodies() {
    let server = Server::start(|_| {}).await;
    let mut admin = admin_agent(&server).await;
    let mut alice = enrolled_agent(&server, &mut admin, "alice").await;
    let upstream = Upstream::start().await;
    let proxy = Proxy::start(&server, &upstream.url, false).await;
    let tokens = alice.login(server.now()).await.unwrap();
    let token = tokens.access.as_str();

    // 5 MB, chunked, arrives byte for byte.
    let response = proxy.send(&alice, token, "GET", "/large", &[], None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.bytes().await.unwrap();
    assert_eq!(body.len(), LARGE);
    assert!(body.iter().enumerate().all(|(i, b)| *b == pattern(i)));

    // Slower than the timeout: 504, well before the upstream answers.
    let started = Instant::now();
    let response = proxy.send(&alice, token, "GET", "/slow", &[], None).await;
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(started.elapsed() < TIMEOUT * 3, "{:?}", started.elapsed());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"error": "gateway_timeout"}));

    // Nothing listens upstream: 502.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let down = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let orphan = Proxy::start(&server, &down, false).await;
    let response = orphan
        .send(&alice, token, "GET", "/orders", &[], None)
        .await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"error": "bad_gateway"}));

    let metrics = reqwest::get(format!("{}/metrics", orphan.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("holdfast_proxy_upstream_errors_total{error=\"bad_gateway\"} 1"),
        "{metrics}"
    );
    let metrics = reqwest::get(format!("{}/metrics", proxy.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("holdfast_proxy_upstream_errors_total{error=\"gateway_timeout\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn proxy_refuses_a_revoked_session_once_the_feed_carries_it() {
    let server = Server::start(|_| {}).await;
    let mut admin = admin_agent(&server).await;
    let mut alice = enrolled_agent(&server, &mut admin, "alice").await;
    let upstream = Upstream::start().await;
    let proxy = Proxy::start(&server, &upstream.url, false).await;
    let now = server.now();
    let tokens = alice.login(now).await.unwrap();
    let token = tokens.access.as_str();
    let response = proxy.send(&alice, token, "GET", "/orders", &[], None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let sid = server.introspect(token).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    let admin_tokens = admin.login(now).await.unwrap();
    admin
        .admin(
            "POST",
            &format!("/admin/sessions/{sid}/revoke"),
            &admin_tokens.access,
            None,
            now,
        )
        .await
        .unwrap();
    let calls = upstream.calls();
    let started = Instant::now();
    loop {
        let response = proxy.send(&alice, token, "GET", "/orders", &[], None).await;
        if response.status() == StatusCode::UNAUTHORIZED {
            let body: Value = response.json().await.unwrap();
            assert_eq!(
                body,
                json!({"error": "invalid_token", "error_description": "the token's session is revoked"})
            );
            break;
        }
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            started.elapsed() < DEADLINE,
            "the revocation did not reach the proxy within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "propagation: the proxy refused the revoked session {:?} after the admin API answered",
        started.elapsed()
    );
    // Nothing after the refusal reached the upstream.
    let before = upstream.calls();
    assert!(before >= calls);
    let response = proxy.send(&alice, token, "GET", "/orders", &[], None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(upstream.calls(), before);
}

/// The audit records of `event` so far.
fn audited(server: &Server, event: &str) -> Vec<holdfast_server::store::AuditRecord> {
    server
        .issuer
        .state
        .store
        .audit_range(1, 10_000)
        .unwrap()
        .into_iter()
        .filter(|r| r.entry.event == event)
        .collect()
}

/// Polls `done` until it holds, failing after [`DEADLINE`].
async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < DEADLINE, "{what} within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The refusal of a request from outside the session's IP binding.
const IP_DEVIATION_CHALLENGE: &str = "DPoP error=\"invalid_token\", error_description=\"request \
     from an address outside the session's IP binding\", algs=\"ES256\"";

#[tokio::test]
async fn proxy_refuses_a_strict_session_from_another_address_and_the_issuer_revokes_it() {
    let server = Server::start(|c| c.policy.ip_binding_device = IpBinding::Strict).await;
    let mut admin = admin_agent(&server).await;
    let mut alice = enrolled_agent(&server, &mut admin, "alice").await;
    let upstream = Upstream::start().await;
    let proxy = Proxy::start(&server, &upstream.url, false).await;
    let tokens = alice.login(server.now()).await.unwrap();
    let token = tokens.access.as_str();
    let sid = server.introspect(token).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    // From the address the session began at: through. A client-written
    // X-Forwarded-For does not move it (the peer is not a trusted proxy).
    let response = proxy.send(&alice, token, "GET", "/orders", &[], None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let spoofed = [("x-forwarded-for", "127.0.0.2")];
    let response = proxy
        .send(&alice, token, "GET", "/orders", &spoofed, None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    // The same key and token from 127.0.0.2: refused, never upstream.
    let moved = alice.moved_to("127.0.0.2".parse().unwrap());
    let response = proxy.send(&moved, token, "GET", "/orders", &[], None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        IP_DEVIATION_CHALLENGE
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(upstream.calls(), 2);

    // The proxy reported it; the issuer audits it and (default policy)
    // revokes the session, through the feed.
    eventually("the issuer audits the reported deviation", async || {
        !audited(&server, "ip_deviation").is_empty()
    })
    .await;
    let records = audited(&server, "ip_deviation");
    let deviation = &records[0].entry;
    assert_eq!(deviation.actor, RS_ID);
    assert_eq!(deviation.details["reported_by"], RS_ID);
    assert_eq!(deviation.details["sid"], sid.as_str());
    assert_eq!(deviation.details["session_ip"], "127.0.0.1");
    assert_eq!(deviation.details["request_ip"], "127.0.0.2");
    assert_eq!(deviation.details["action"], "session revoked");
    let session = server
        .issuer
        .state
        .store
        .session(&sid.parse().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(session.revoked.unwrap().reason, "ip_deviation");

    // Once the feed carries the revocation, even the original address is
    // refused.
    eventually("the proxy refuses the revoked session", async || {
        let response = proxy.send(&alice, token, "GET", "/orders", &[], None).await;
        if response.status() == StatusCode::OK {
            return false;
        }
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error_description"], "the token's session is revoked");
        true
    })
    .await;

    let metrics = reqwest::get(format!("{}/metrics", proxy.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "holdfast_verifier_refused_total{check=\"ip_deviation\",error=\"invalid_token\"} 1",
        "holdfast_verifier_ip_deviation_reports_sent_total 1",
        "holdfast_verifier_ip_deviation_reports_dropped_total 0",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
}

#[tokio::test]
async fn proxy_behind_a_trusted_proxy_reads_the_client_from_x_forwarded_for() {
    let server = Server::start(|c| {
        c.policy.ip_binding_device = IpBinding::Strict;
        c.policy.on_ip_violation = OnIpViolation::Flag;
    })
    .await;
    let mut admin = admin_agent(&server).await;
    let alice = enrolled_agent(&server, &mut admin, "alice").await;
    let upstream = Upstream::start().await;
    // The tests' own connections to the proxy come from 127.0.0.1: here, a
    // trusted load balancer in front of it. The session begins at 127.0.0.3.
    let proxy = Proxy::start_with(&server, &upstream.url, false, |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let mut at_home = alice.moved_to("127.0.0.3".parse().unwrap());
    let tokens = at_home.login(server.now()).await.unwrap();
    let token = tokens.access.as_str();

    // The balancer (rightmost entry, trusted and skipped) says the client
    // is 127.0.0.3; what the client wrote left of that is not read.
    let forwarded = [("x-forwarded-for", "192.0.2.66, 127.0.0.3, 127.0.0.1")];
    let response = proxy
        .send(&alice, token, "GET", "/orders", &forwarded, None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // It says the client is 127.0.0.2: refused.
    let forwarded = [("x-forwarded-for", "127.0.0.3, 127.0.0.2")];
    let response = proxy
        .send(&alice, token, "GET", "/orders", &forwarded, None)
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        IP_DEVIATION_CHALLENGE
    );

    // Policy `flag`: the session is flagged, not revoked, and goes on.
    eventually("the issuer flags the session", async || {
        !audited(&server, "ip_deviation").is_empty()
    })
    .await;
    assert_eq!(
        audited(&server, "ip_deviation")[0].entry.details["action"],
        "session flagged"
    );
    let sid = server.introspect(token).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = server
        .issuer
        .state
        .store
        .session(&sid.parse().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(session.revoked, None);
    assert_eq!(session.flags, ["ip_deviation"]);
    let forwarded = [("x-forwarded-for", "127.0.0.3")];
    let response = proxy
        .send(&alice, token, "GET", "/orders", &forwarded, None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}
