//! The stage every attack plays on: a protected service, the verifying
//! proxy in front of it, a service behind `VerifierLayer`, and what the
//! attacker reads back (status, challenge, body, metrics, audit records).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::{Json, Router};
use holdfast_proto::Clock;
use holdfast_server::store::AuditRecord;
use holdfast_verifier::jwks::JwksOptions;
use holdfast_verifier::{
    FeedHandle, FeedOptions, ProxyOptions, Verified, VerifiedIdentity, VerifierLayer,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::support::{Agent, Server, follow, serve, serve_on, serve_proxy};

pub(super) use crate::support::AUDIENCE;
/// How long a change may take to reach a verifier before a test fails.
pub(super) const DEADLINE: Duration = Duration::from_secs(5);

/// The protected service behind the proxy: answers `ok` on every path,
/// after `delay`, and counts what reached it.
pub(super) struct Upstream {
    url: String,
    calls: Arc<AtomicUsize>,
    _shutdown: oneshot::Sender<()>,
}

impl Upstream {
    pub(super) async fn start(delay: Duration) -> Self {
        let calls = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .fallback(count)
            .with_state((Arc::clone(&calls), delay));
        let (url, shutdown) = serve(app).await;
        Self {
            url,
            calls,
            _shutdown: shutdown,
        }
    }

    pub(super) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

async fn count(State((calls, delay)): State<(Arc<AtomicUsize>, Duration)>) -> &'static str {
    calls.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(delay).await;
    "ok"
}

/// The feed options of every verifier here, on `clock`.
fn set_feed(options: &mut FeedOptions, clock: Arc<dyn Clock>) {
    options.clock = clock;
    // Short (1 s, as `follow` sets it), so that a test that moves the clock
    // sees a fresh sync soon. A rotation's new `kid` is fetched at once,
    // not 10 s later.
    options.jwks = JwksOptions {
        min_refetch_interval: Duration::from_millis(100),
        ..JwksOptions::default()
    };
}

/// `holdfast_verifier::proxy_router` on its own port in front of
/// `upstream`, following the issuer.
pub(super) struct Proxy {
    pub(super) url: String,
    clock: Arc<dyn Clock>,
    feed: FeedHandle,
    _shutdown: oneshot::Sender<()>,
}

impl Proxy {
    /// A proxy on the issuer's (test) clock.
    pub(super) async fn start(server: &Server, upstream: &Upstream) -> Self {
        Self::start_on(server, upstream, server.issuer.clock.clone()).await
    }

    pub(super) async fn start_on(
        server: &Server,
        upstream: &Upstream,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let options = ProxyOptions {
            timeout: DEADLINE,
            ..ProxyOptions::default()
        };
        let feed_clock = Arc::clone(&clock);
        let (url, feed, shutdown) = serve_proxy(server, &upstream.url, options, |_, feed| {
            set_feed(feed, feed_clock);
        })
        .await;
        Self {
            url,
            clock,
            feed,
            _shutdown: shutdown,
        }
    }

    /// `GET path` with `token` and a fresh proof by `agent`, from the
    /// agent's address.
    pub(super) async fn send(&self, agent: &Agent, token: &str, path: &str) -> Answer {
        send_fresh(&self.url, &self.clock, agent, token, path).await
    }

    /// The proxy's refusals by `check`, from its `/metrics`.
    pub(super) async fn refused(&self, check: &str) -> u64 {
        refused_in(&metrics(&self.url).await, check)
    }

    /// Waits until the follower has synchronised at the clock's current
    /// time (after a test moved it: a registry older than `max_staleness`
    /// refuses everything).
    pub(super) async fn synced(&self) {
        let now = self.clock.now();
        eventually("the proxy's feed re-synchronises", async || {
            self.feed.stats().last_sync >= Some(now)
        })
        .await;
    }
}

/// A service whose `/orders` is behind `VerifierLayer`, following the
/// issuer on its (test) clock.
pub(super) struct LayerService {
    url: String,
    pub(super) layer: VerifierLayer,
    clock: Arc<dyn Clock>,
    _feed: FeedHandle,
    _shutdown: oneshot::Sender<()>,
}

impl LayerService {
    pub(super) async fn start(server: &Server) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let clock: Arc<dyn Clock> = server.issuer.clock.clone();
        let feed_clock = Arc::clone(&clock);
        let (verifier, feed) = follow(server, &url, |_, feed| set_feed(feed, feed_clock)).await;
        let layer = VerifierLayer::new(verifier);
        let app = Router::new()
            .route("/orders", axum::routing::get(orders))
            .layer(layer.clone());
        let (shutdown, _) = serve_on(listener, app);
        Self {
            url,
            layer,
            clock,
            _feed: feed,
            _shutdown: shutdown,
        }
    }

    pub(super) async fn send(&self, agent: &Agent, token: &str) -> Answer {
        send_fresh(&self.url, &self.clock, agent, token, "/orders").await
    }
}

async fn orders(Verified(id): Verified) -> Json<VerifiedIdentity> {
    Json(id)
}

/// `GET base/path` with `token` and a fresh proof by `agent` at `clock`'s
/// time, from the agent's address.
async fn send_fresh(
    base: &str,
    clock: &Arc<dyn Clock>,
    agent: &Agent,
    token: &str,
    path: &str,
) -> Answer {
    let url = format!("{base}{path}");
    let proof = agent.proof("GET", &url, Some(token), clock.now());
    let headers = [("authorization", format!("DPoP {token}")), ("dpop", proof)];
    get(&agent.http, &url, &headers).await
}

/// What came back.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) status: StatusCode,
    /// `WWW-Authenticate`.
    pub(super) challenge: Option<String>,
    /// `Null` for an empty or non-JSON body.
    pub(super) body: Value,
}

impl Answer {
    /// Asserts a protected-resource refusal (RFC 9449 §7.1, RFC 6750 §3):
    /// `status`, the challenge with `code` and `description`, and the same
    /// two in the JSON body.
    #[track_caller]
    pub(super) fn assert_refused(&self, status: StatusCode, code: &str, description: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(
            self.challenge.as_deref(),
            Some(challenge(code, description).as_str()),
            "{self:?}"
        );
        assert_eq!(
            self.body,
            json!({"error": code, "error_description": description}),
            "{self:?}"
        );
    }
}

/// The `WWW-Authenticate` value of a refusal, written out (not built with
/// the code under test).
fn challenge(code: &str, description: &str) -> String {
    format!("DPoP error=\"{code}\", error_description=\"{description}\", algs=\"ES256\"")
}

/// `GET url` with `headers`, through `http` (and so from its address).
pub(super) async fn get(http: &reqwest::Client, url: &str, headers: &[(&str, String)]) -> Answer {
    let mut request = http.get(url);
    for (name, value) in headers {
        request = request.header(*name, value.as_str());
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        challenge,
        body,
    }
}

/// A service's Prometheus text.
pub(super) async fn metrics(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// `holdfast_verifier_refused_total` for `check`, over every error code.
pub(super) fn refused_in(metrics: &str, check: &str) -> u64 {
    let prefix = format!("holdfast_verifier_refused_total{{check=\"{check}\",");
    metrics
        .lines()
        .filter(|line| line.starts_with(&prefix))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

/// Polls `done` until it holds, failing after [`DEADLINE`]; how long it took.
pub(super) async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < DEADLINE,
            "{what}: not within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

/// The newest audit record of `event`.
#[track_caller]
pub(super) fn last_audited(server: &Server, event: &str) -> AuditRecord {
    server
        .audited(event)
        .pop()
        .unwrap_or_else(|| panic!("no {event} record"))
}

/// Asserts the `admin_refused` record a refused admin call leaves: who
/// (the token's `sub`, or `anonymous` before the token was verified), from
/// where, the wire code, the failed check and its reason.
#[track_caller]
pub(super) fn assert_admin_refused(
    record: &AuditRecord,
    actor: &str,
    ip: &str,
    outcome: &str,
    check: &str,
    reason: &str,
) {
    let entry = &record.entry;
    assert_eq!(entry.event, "admin_refused");
    assert_eq!(entry.actor, actor, "{entry:?}");
    assert_eq!(entry.ip.as_deref(), Some(ip), "{entry:?}");
    assert_eq!(entry.outcome, outcome, "{entry:?}");
    assert_eq!(entry.details["check"], check, "{entry:?}");
    assert_eq!(entry.details["reason"], reason, "{entry:?}");
}

/// The token's `sub`, `sid` and `client_id`, as introspection tells them.
pub(super) async fn identity(server: &Server, token: &str) -> (String, String, String) {
    let active = server.introspect(token).await;
    assert_eq!(active["active"], true, "{active}");
    let field = |name: &str| active[name].as_str().unwrap().to_owned();
    (field("sub"), field("sid"), field("client_id"))
}

pub(super) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// An HTTP client sending from `local`.
pub(super) fn client_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip(local))
        .build()
        .unwrap()
}
