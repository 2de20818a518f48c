//! Hostile load (issue 9, part 4): the real `holdfastd serve` and
//! `holdfastd proxy` binaries on loopback, attacked while an honest device
//! keeps using them. Each test runs one family of attacks in the
//! background and asserts that the hostile requests get the expected
//! refusal, that every honest request still succeeds, and that the server's
//! memory and descriptors stay bounded:
//!
//! - oversized heads (a 1 MiB `DPoP` or `Authorization` header, thousands
//!   of headers) are answered 431 by the connection loop; oversized bodies
//!   at the token, enrollment and admin endpoints 413 with an RFC 6749
//!   `invalid_request`, long before the announced body could have arrived;
//! - thousands of access tokens naming unknown `kid`s make the proxy fetch
//!   the issuer's JWKS at most once per refetch interval, counted at the
//!   issuer;
//! - huge `jti`s and deeply nested JSON in proofs, tokens, assertions and
//!   bodies get clean RFC 6749 / RFC 9449 errors;
//! - slow clients (a header byte a second, idle connections, a body byte a
//!   second) are cut off by the header and body timeouts, and cannot hold
//!   more than the connection caps.
//!
//! No assertion is about speed beyond generous timeouts. Every test prints
//! its figures (honest latency p50/p99 with and without the attack, server
//! RSS and descriptors before, during and after): run with `--no-capture`;
//! `docs/security.md`, "Hostile load", records them.
//!
//! The binary is that of [`crate::support::holdfastd`].

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64ct::{Base64UrlUnpadded, Encoding as _};
use holdfast_proto::{Clock as _, JwtHeader, Signer as _, SystemClock, UnixTime, sign_jwt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::support::holdfastd::{self, Daemon, DataDir};
use crate::support::{Agent, RS_ID, RS_SECRET, Refusal, answer, assertion_form, serve};

/// Longest anything may take before the test fails.
const TIMEOUT: Duration = Duration::from_secs(60);
/// The honest device's address; attackers use 127.0.0.1.
const HONEST_IP: [u8; 4] = [127, 0, 0, 2];
/// One MiB.
const MIB: usize = 1024 * 1024;

fn now() -> UnixTime {
    SystemClock.now()
}

/// An HTTP client sending from `local`, opening a connection per request
/// (a new client each time: the worst case for connection caps), with a
/// generous timeout.
fn http_from(local: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local)
        .pool_max_idle_per_host(0)
        .timeout(TIMEOUT)
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------
// An issuer with an admin and an honest device, and a proxy in front of
// an upstream.

struct Issuer {
    daemon: Daemon,
    url: String,
    admin: Agent,
    admin_token: String,
    /// The honest device, sending from `HONEST_IP`.
    device: Agent,
    _dir: DataDir,
}

impl Issuer {
    /// `holdfastd serve` with `[limits]` set to `limits` (TOML lines), the
    /// test resource server, an admin (from the bootstrap code) and an
    /// enrolled, logged-in honest device.
    async fn start(limits: &str) -> Self {
        // No fsync per write: the figures measure the connection handling,
        // not the disk (docs/security.md says so next to them).
        let dir = DataDir::new(&format!("sync_writes = false\n\n[limits]\n{limits}"));
        let daemon = dir.serve("127.0.0.1:0");
        let url = daemon.url();

        let mut admin = Agent::at(&url, None);
        admin.enroll_at(&dir.bootstrap_code, now()).await.unwrap();
        let admin_token = admin.login(now()).await.unwrap().access;
        let device_code = admin
            .admin(
                "POST",
                "/admin/enrollment-codes",
                &admin_token,
                Some(json!({"principal": "honest", "roles": ["device"], "kinds": ["software"]})),
                now(),
            )
            .await
            .unwrap();
        let mut device = Agent::at(&url, Some(IpAddr::from(HONEST_IP)));
        device.http = http_from(IpAddr::from(HONEST_IP));
        device
            .enroll_at(device_code["code"].as_str().unwrap(), now())
            .await
            .unwrap();
        device.login(now()).await.unwrap();
        Self {
            daemon,
            url,
            admin,
            admin_token,
            device,
            _dir: dir,
        }
    }
}

/// An upstream that answers `ok` to everything.
async fn upstream() -> (String, oneshot::Sender<()>) {
    serve(axum::Router::new().fallback(|| async { "ok" })).await
}

/// `holdfastd proxy` following `issuer`, in front of `upstream`, with
/// `extra` flags.
fn proxy(issuer: &Issuer, upstream: &str, extra: &[&str]) -> Daemon {
    let mut args = vec![
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        upstream,
        "--issuer",
        &issuer.url,
        "--client-id",
        RS_ID,
        "--log-format",
        "json",
    ];
    args.extend_from_slice(extra);
    let mut command = holdfastd::command(&args);
    command.env("HOLDFAST_PROXY_CLIENT_SECRET", RS_SECRET);
    Daemon::spawn(command, "holdfastd proxy serving")
}

// ---------------------------------------------------------------------
// The honest device.

/// What the honest device does, once per measurement.
#[derive(Clone, Copy)]
enum Errand {
    /// A `client_credentials` grant at the issuer (proof, assertion, a new
    /// session).
    Login,
    /// A GET through the proxy with its access token and a fresh proof.
    Proxied,
}

/// The honest device and its access token.
struct Honest {
    agent: Agent,
    token: String,
    proxy_url: Option<String>,
}

impl Honest {
    async fn new(issuer: &Issuer, proxy_url: Option<String>) -> Self {
        let mut agent = Agent::at(&issuer.url, Some(IpAddr::from(HONEST_IP)));
        agent.key = copy_key(&issuer.device.key);
        agent.client_id = issuer.device.client_id.clone();
        agent.http = http_from(IpAddr::from(HONEST_IP));
        let token = agent.login(now()).await.unwrap().access;
        Self {
            agent,
            token,
            proxy_url,
        }
    }

    /// One errand; how long it took, or why it failed.
    async fn once(&mut self, errand: Errand) -> Result<Duration, String> {
        let started = Instant::now();
        match errand {
            Errand::Login => {
                let jti = format!("assertion-{}", holdfast_server::secret::random_id());
                let assertion = self.agent.assertion(now(), &jti);
                self.agent
                    .token_request(now(), &assertion_form(&assertion))
                    .await
                    .map_err(|r| format!("login refused: {} {}", r.status, r.body))?;
            }
            Errand::Proxied => {
                let base = self.proxy_url.as_deref().unwrap();
                let url = format!("{base}/orders");
                let proof = self.agent.proof("GET", &url, Some(&self.token), now());
                let response = self
                    .agent
                    .http
                    .get(&url)
                    .header("authorization", format!("DPoP {}", self.token))
                    .header("dpop", proof)
                    .send()
                    .await
                    .map_err(|e| format!("proxied GET failed: {e}"))?;
                let status = response.status();
                let body = response.text().await.map_err(|e| e.to_string())?;
                if status != StatusCode::OK || body != "ok" {
                    return Err(format!("proxied GET answered {status}: {body}"));
                }
            }
        }
        Ok(started.elapsed())
    }

    /// `n` errands in a row; every one must succeed.
    async fn round(&mut self, errand: Errand, n: usize) -> Vec<Duration> {
        let mut took = Vec::with_capacity(n);
        for i in 0..n {
            match self.once(errand).await {
                Ok(d) => took.push(d),
                Err(e) => panic!("honest request {i} failed: {e}"),
            }
        }
        took
    }

    /// Errands until `stop`, in the background; every one must succeed.
    fn keep_going(
        mut self,
        errand: Errand,
        stop: Arc<AtomicBool>,
    ) -> tokio::task::JoinHandle<Vec<Duration>> {
        tokio::spawn(async move {
            let mut took = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                match self.once(errand).await {
                    Ok(d) => took.push(d),
                    Err(e) => panic!("honest request {} failed under attack: {e}", took.len()),
                }
            }
            took
        })
    }
}

/// The same key, as a new value.
fn copy_key(key: &holdfast_hw::SoftwareKey) -> holdfast_hw::SoftwareKey {
    let pem = key.to_pkcs8_pem().unwrap();
    holdfast_hw::SoftwareKey::from_pkcs8_pem(&pem).unwrap()
}

/// `p50/p99` of `took`, in milliseconds.
fn percentiles(took: &[Duration]) -> String {
    assert!(!took.is_empty());
    let mut ms: Vec<f64> = took.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: usize| ms[(ms.len() * q / 100).min(ms.len() - 1)];
    format!("n={} p50={:.1}ms p99={:.1}ms", ms.len(), at(50), at(99))
}

/// Samples a daemon's RSS and descriptors until stopped: the peaks.
struct Sampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<(u64, usize)>,
}

impl Sampler {
    fn start(daemon: &Daemon) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let pid = daemon.pid();
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let (mut rss, mut fds) = (0, 0);
            while !flag.load(Ordering::SeqCst) {
                rss = rss.max(holdfastd::rss_kib(pid).unwrap_or(0));
                fds = fds.max(holdfastd::fds(pid).unwrap_or(0));
                std::thread::sleep(Duration::from_millis(50));
            }
            (rss, fds)
        });
        Self { stop, handle }
    }

    /// Peak RSS (KiB) and peak descriptors.
    fn stop(self) -> (u64, usize) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap()
    }
}

/// Polls `done` every 100 ms until it holds, for at most `TIMEOUT`.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------
// Raw HTTP/1.1, for requests no HTTP client would send.

/// An answer read off a raw connection.
#[derive(Debug)]
struct Raw {
    status: u16,
    head: String,
    body: String,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.head, self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Writes `request` on a new connection (in the background, so that an
/// early answer is read even while the server stops reading) and reads the
/// answer: status, head and body.
async fn raw(address: SocketAddr, request: Vec<u8>) -> Raw {
    let stream = TcpStream::connect(address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let write = tokio::spawn(async move {
        for chunk in request.chunks(16 * 1024) {
            // The server may answer and close before taking it all.
            if writer.write_all(chunk).await.is_err() {
                return;
            }
        }
        // Keep the write side open: a half-close could end the request.
        tokio::time::sleep(TIMEOUT).await;
    });
    let read = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        let head_end = loop {
            let n = reader.read(&mut chunk).await.unwrap_or(0);
            assert!(n > 0, "the connection closed without an answer");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let n = reader.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap();
        let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
        Raw { status, head, body }
    };
    let answer = tokio::time::timeout(TIMEOUT, read)
        .await
        .expect("no answer in time");
    write.abort();
    answer
}

/// Header names and values.
type Headers<'a> = Vec<(&'a str, String)>;

/// A request head: `method path`, `headers`, then the blank line.
fn head(method: &str, path: &str, headers: &[(&str, String)]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: holdfast.test\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// `head` followed by `body`.
fn with_body(mut head: Vec<u8>, body: &[u8]) -> Vec<u8> {
    head.extend_from_slice(body);
    head
}

// ---------------------------------------------------------------------
// Hand-made JWS.

fn b64(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

/// `depth` nested arrays: `[[[…]]]`.
fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// A compact JWS from raw header and payload JSON text, with a signature
/// that verifies nothing (the parse must fail first).
fn raw_jws(header: &str, payload: &str) -> String {
    format!(
        "{}.{}.{}",
        b64(header.as_bytes()),
        b64(payload.as_bytes()),
        b64(&[7u8; 64])
    )
}

/// `ath`: base64url(SHA-256(token)) (RFC 9449 §4.2).
fn ath(token: &str) -> String {
    b64(&sha2::Sha256::digest(token.as_bytes()))
}

/// A proof by `agent` with the claims `claims` (signed: only its content is
/// hostile).
fn proof_with(agent: &Agent, claims: &Value) -> String {
    let header = JwtHeader {
        typ: "dpop+jwt",
        kid: None,
        jwk: Some(agent.key.public_jwk()),
    };
    sign_jwt(&agent.key, &header, claims).unwrap()
}

/// Prints the refusal of `what` (the figures quote it) and asserts that it
/// is a 400 with `error`.
async fn assert_bad_request(response: reqwest::Response, what: &str, error: &str) -> Refusal {
    let refusal = answer(response).await.unwrap_err();
    println!("ANSWER {what}: {} {}", refusal.status, refusal.body);
    assert_eq!(
        (refusal.status, refusal.error.as_str()),
        (StatusCode::BAD_REQUEST, error),
        "{what}: {}",
        refusal.body
    );
    refusal
}

/// Proofs by `agent` for a request whose own claims are `request` (`htm`,
/// `htu`, and `nonce` or `ath`), hostile in size or depth: a 1000-byte
/// `jti`, and `deep` JSON in the header and in the claims.
fn hostile_proofs(agent: &Agent, request: &Value, deep: &str) -> Vec<(&'static str, String)> {
    let claims = |jti: String| {
        let mut claims = request.clone();
        claims["iat"] = json!(now());
        claims["jti"] = json!(jti);
        claims
    };
    let valid_jwk = serde_json::to_string(agent.key.public_jwk()).unwrap();
    let htm = &request["htm"];
    vec![
        (
            "a 1000-byte proof jti",
            proof_with(agent, &claims("j".repeat(1000))),
        ),
        (
            "nested JSON in the proof header",
            raw_jws(
                &format!(r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{valid_jwk},"x":{deep}}}"#),
                &claims(holdfast_server::secret::random_id()).to_string(),
            ),
        ),
        (
            "nested JSON in the proof claims",
            raw_jws(
                &format!(r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{valid_jwk}}}"#),
                &format!(r#"{{"htm":{htm},"x":{deep}}}"#),
            ),
        ),
    ]
}

// ---------------------------------------------------------------------
// Slow clients.

/// How a slow client misbehaves.
#[derive(Debug, Clone, Copy)]
enum Slow {
    /// A request head, one byte a second, never finished (slowloris).
    Head,
    /// Connects and sends nothing.
    Idle,
    /// A whole head announcing a 64 KiB form body at `/token`, then the
    /// body one byte a second.
    Body,
}

/// What the slow clients saw.
#[derive(Debug, Default)]
struct SlowStats {
    connects: AtomicUsize,
    open: AtomicUsize,
    max_open: AtomicUsize,
    /// Closed by the server within 500 ms of connecting (a per-address
    /// cap), or later (a timeout).
    closed_at_once: AtomicUsize,
    closed_later: AtomicUsize,
    /// Answers received, by status.
    answers: Mutex<Vec<u16>>,
}

impl SlowStats {
    fn line(&self) -> String {
        let answers = self.answers.lock().unwrap();
        let count = |s: u16| answers.iter().filter(|&&a| a == s).count();
        format!(
            "connects={} max_open={} closed_at_once={} closed_after_timeout={} answered_400={} answered_other={}",
            self.connects.load(Ordering::SeqCst),
            self.max_open.load(Ordering::SeqCst),
            self.closed_at_once.load(Ordering::SeqCst),
            self.closed_later.load(Ordering::SeqCst),
            count(400),
            answers.len() - count(400),
        )
    }
}

/// `count` slow clients of `kind` against `address`, each reconnecting
/// (after 200 ms, to spare the test machine) when the server lets go,
/// until `stop`.
fn slow_clients(
    address: SocketAddr,
    kind: Slow,
    count: usize,
    stop: &Arc<AtomicBool>,
    stats: &Arc<SlowStats>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..count)
        .map(|_| {
            let stop = Arc::clone(stop);
            let stats = Arc::clone(stats);
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    slow_connection(address, kind, &stop, &stats).await;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
        })
        .collect()
}

async fn slow_connection(address: SocketAddr, kind: Slow, stop: &AtomicBool, stats: &SlowStats) {
    let Ok(Ok(mut stream)) =
        tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(address)).await
    else {
        return;
    };
    let connected = Instant::now();
    stats.connects.fetch_add(1, Ordering::SeqCst);
    let open = stats.open.fetch_add(1, Ordering::SeqCst) + 1;
    stats.max_open.fetch_max(open, Ordering::SeqCst);
    let mut pending: Vec<u8> = match kind {
        Slow::Head => b"GET /healthz HTTP/1.1\r\nHost: holdfast.test\r\nX-Slow: ".to_vec(),
        Slow::Idle => Vec::new(),
        Slow::Body => {
            let head = head(
                "POST",
                "/token",
                &[
                    ("Content-Type", "application/x-www-form-urlencoded".into()),
                    ("Content-Length", "65536".into()),
                ],
            );
            if stream.write_all(&head).await.is_err() {
                stats.open.fetch_sub(1, Ordering::SeqCst);
                return;
            }
            Vec::new()
        }
    };
    pending.reverse();
    let mut buf = [0u8; 4096];
    let closed = loop {
        if stop.load(Ordering::SeqCst) {
            break false;
        }
        if !matches!(kind, Slow::Idle) {
            let byte = pending.pop().unwrap_or(b'a');
            if stream.write_all(&[byte]).await.is_err() {
                break true;
            }
        }
        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
            Err(_) => {}
            Ok(Ok(0) | Err(_)) => break true,
            Ok(Ok(n)) => {
                let text = String::from_utf8_lossy(&buf[..n]);
                let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok());
                stats.answers.lock().unwrap().push(status.unwrap_or(0));
                break true;
            }
        }
    };
    if closed {
        if connected.elapsed() < Duration::from_millis(500) {
            stats.closed_at_once.fetch_add(1, Ordering::SeqCst);
        } else {
            stats.closed_later.fetch_add(1, Ordering::SeqCst);
        }
    }
    stats.open.fetch_sub(1, Ordering::SeqCst);
}

/// Stops the slow clients and waits for them.
async fn stop_all(stop: &AtomicBool, clients: Vec<tokio::task::JoinHandle<()>>) {
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        tokio::time::timeout(TIMEOUT, client)
            .await
            .unwrap()
            .unwrap();
    }
}

// ---------------------------------------------------------------------
// The tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_oversized_heads_and_bodies_are_refused_early() {
    let issuer = Issuer::start("").await;
    let (upstream_url, _upstream) = upstream().await;
    let proxy = proxy(&issuer, &upstream_url, &[]);
    let mut honest_issuer = Honest::new(&issuer, None).await;
    let honest_proxy = Honest::new(&issuer, Some(proxy.url())).await;
    let baseline = honest_issuer.round(Errand::Login, 30).await;
    let rss_before = issuer.daemon.rss_kib();
    let stop = Arc::new(AtomicBool::new(false));
    let background = [
        honest_issuer.keep_going(Errand::Login, Arc::clone(&stop)),
        honest_proxy.keep_going(Errand::Proxied, Arc::clone(&stop)),
    ];
    let sampler = Sampler::start(&issuer.daemon);

    // Heads: a 1 MiB DPoP or Authorization header, 5000 headers. hyper
    // answers 431 after reading at most limits.max_header_bytes.
    let huge = "A".repeat(MIB);
    for daemon in [&issuer.daemon, &proxy] {
        for request in [
            head("POST", "/token", &[("DPoP", huge.clone())]),
            head(
                "GET",
                "/orders",
                &[("Authorization", format!("DPoP {huge}"))],
            ),
            head(
                "GET",
                "/healthz",
                &(0..5000)
                    .map(|i| ("X-Many", i.to_string()))
                    .collect::<Vec<_>>(),
            ),
        ] {
            let answer = raw(daemon.address, request).await;
            assert_eq!(answer.status, 431, "{}", answer.head);
        }
    }

    // A head under the cap with a header over what a proof or a token may
    // be: refused by the endpoint, in the endpoint's words.
    let big = "A".repeat(16 * 1024);
    let jti = format!("assertion-{}", holdfast_server::secret::random_id());
    let assertion = issuer.device.assertion(now(), &jti);
    let response = reqwest::Client::new()
        .post(format!("{}/token", issuer.url))
        .header("dpop", &big)
        .form(&assertion_form(&assertion))
        .send()
        .await
        .unwrap();
    let refusal = answer(response).await.unwrap_err();
    assert_eq!(
        (refusal.status, refusal.error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_dpop_proof"),
        "{}",
        refusal.body
    );
    for (name, value, error) in [
        ("DPoP", big.clone(), "invalid_dpop_proof"),
        ("Authorization", format!("DPoP {big}"), "invalid_token"),
    ] {
        let mut headers = vec![(name, value)];
        if name == "DPoP" {
            headers.push((
                "Authorization",
                format!("DPoP {}", honest_proxy_token(&issuer).await),
            ));
        } else {
            headers.push(("DPoP", "x.y.z".into()));
        }
        let answer = raw(proxy.address, head("GET", "/orders", &headers)).await;
        assert_eq!(answer.status, 401, "{name}: {}", answer.head);
        let challenge = answer.header("www-authenticate").unwrap();
        assert!(
            challenge.contains(&format!("error=\"{error}\"")),
            "{name}: {challenge}"
        );
    }

    // Bodies announced at 100 MiB, of which 1 MiB is sent: 413 and an RFC
    // 6749 error once 64 KiB are read, so the answer comes long before the
    // announced body could have.
    let form = (
        "Content-Type",
        "application/x-www-form-urlencoded".to_owned(),
    );
    let json_type = ("Content-Type", "application/json".to_owned());
    let announced = ("Content-Length", (100 * MIB).to_string());
    let admin_url = format!("{}/admin/enrollment-codes", issuer.url);
    let admin_proof = issuer
        .admin
        .proof("POST", &admin_url, Some(&issuer.admin_token), now());
    let admin_headers = vec![
        json_type.clone(),
        announced.clone(),
        ("Authorization", format!("DPoP {}", issuer.admin_token)),
        ("DPoP", admin_proof),
    ];
    let cases: Vec<(&str, &str, Headers<'_>)> = vec![
        ("/token", "POST", vec![form.clone(), announced.clone()]),
        ("/revoke", "POST", vec![form.clone(), announced.clone()]),
        (
            "/enroll",
            "POST",
            vec![json_type.clone(), announced.clone()],
        ),
        (
            "/enroll/challenge",
            "POST",
            vec![json_type.clone(), announced.clone()],
        ),
        ("/admin/enrollment-codes", "POST", admin_headers),
    ];
    let filler = vec![b'a'; MIB];
    for (path, method, headers) in cases {
        let dpop_needed = path == "/token" || path == "/revoke";
        let mut headers = headers;
        if dpop_needed {
            let url = format!("{}{path}", issuer.url);
            headers.push(("DPoP", issuer.device.proof(method, &url, None, now())));
        }
        let answer = raw(
            issuer.daemon.address,
            with_body(head(method, path, &headers), &filler),
        )
        .await;
        assert_eq!(
            answer.status, 413,
            "{path}: {} {}",
            answer.head, answer.body
        );
        assert_eq!(
            answer.json()["error"],
            "invalid_request",
            "{path}: {}",
            answer.body
        );
    }
    // The same without a length (chunked): the reading stops at the limit.
    let mut chunked = head(
        "POST",
        "/token",
        &[form.clone(), ("Transfer-Encoding", "chunked".into())],
    );
    for _ in 0..64 {
        chunked.extend_from_slice(format!("{:x}\r\n", 16 * 1024).as_bytes());
        chunked.extend_from_slice(&vec![b'a'; 16 * 1024]);
        chunked.extend_from_slice(b"\r\n");
    }
    let answer = raw(issuer.daemon.address, chunked).await;
    assert_eq!(answer.status, 413, "{}", answer.head);
    assert_eq!(answer.json()["error"], "invalid_request");

    // Memory under a burst: 400 one-MiB heads and 200 hundred-MiB bodies,
    // 50 at a time.
    let started = Instant::now();
    let mut burst = tokio::task::JoinSet::new();
    let address = issuer.daemon.address;
    let body_head = head(
        "POST",
        "/token",
        &[form.clone(), announced.clone(), ("DPoP", "x".into())],
    );
    let huge_head = head("POST", "/token", &[("DPoP", huge.clone())]);
    let permits = Arc::new(tokio::sync::Semaphore::new(50));
    for i in 0..600 {
        let request = if i % 3 == 2 {
            with_body(body_head.clone(), &filler)
        } else {
            huge_head.clone()
        };
        let permit = Arc::clone(&permits).acquire_owned().await.unwrap();
        burst.spawn(async move {
            let answer = raw(address, request).await;
            drop(permit);
            answer.status
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = burst.join_next().await {
        statuses.push(status.unwrap());
    }
    let burst_took = started.elapsed();
    assert_eq!(statuses.iter().filter(|&&s| s == 431).count(), 400);
    assert_eq!(statuses.iter().filter(|&&s| s == 413).count(), 200);

    stop.store(true, Ordering::SeqCst);
    let (rss_peak, fds_peak) = sampler.stop();
    let mut during = Vec::new();
    for task in background {
        during.push(tokio::time::timeout(TIMEOUT, task).await.unwrap().unwrap());
    }
    assert!(!during[0].is_empty() && !during[1].is_empty());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = issuer.daemon.rss_kib();
    // 50 connections at a time, each holding at most a 64 KiB head or
    // body buffer: a few MiB. 64 MiB is a generous bound that a server
    // reading whole heads or bodies (600 MiB here) would blow through.
    assert!(
        rss_peak < rss_before + 64 * 1024,
        "RSS went from {rss_before} KiB to {rss_peak} KiB"
    );
    println!(
        "FIGURES oversized: 600 hostile requests (400 x 1 MiB head -> 431, 200 x 100 MiB body -> 413) \
         in {burst_took:.1?}, 50 at a time; issuer honest logins baseline {} | during {}; \
         proxied GETs during {}; issuer RSS before {rss_before} KiB, peak {rss_peak} KiB, \
         after {rss_after} KiB; peak fds {fds_peak}",
        percentiles(&baseline),
        percentiles(&during[0]),
        percentiles(&during[1]),
    );
}

/// An access token of the honest device (for requests whose proof is the
/// hostile part).
async fn honest_proxy_token(issuer: &Issuer) -> String {
    let mut agent = Agent::at(&issuer.url, Some(IpAddr::from(HONEST_IP)));
    agent.key = copy_key(&issuer.device.key);
    agent.client_id = issuer.device.client_id.clone();
    agent.login(now()).await.unwrap().access
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_unknown_kids_cause_no_jwks_refetch_storm() {
    let issuer = Issuer::start("").await;
    let (upstream_url, _upstream) = upstream().await;
    let proxy = proxy(&issuer, &upstream_url, &[]);
    let honest = Honest::new(&issuer, Some(proxy.url())).await;
    let jwks_before = issuer
        .daemon
        .requests_to(holdfast_proto::endpoints::JWKS_PATH);
    assert!(jwks_before >= 1, "the proxy read the JWKS at start-up");
    let rss_before = proxy.rss_kib();
    let stop = Arc::new(AtomicBool::new(false));
    let background = honest.keep_going(Errand::Proxied, Arc::clone(&stop));
    let sampler = Sampler::start(&proxy);

    // 5000 access tokens signed by the attacker's key, each naming a kid
    // the issuer never had, with matching proofs: well-formed in every
    // other way.
    const FORGED: usize = 5000;
    let attacker = Arc::new(Agent::at(&proxy.url(), None));
    let jkt = attacker.key_jkt();
    let url = format!("{}/orders", proxy.url());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let http = reqwest::Client::builder().timeout(TIMEOUT).build().unwrap();
    for worker in 0..16 {
        let (attacker, http, url, issuer_url, jkt) = (
            Arc::clone(&attacker),
            http.clone(),
            url.clone(),
            issuer.url.clone(),
            jkt.clone(),
        );
        tasks.spawn(async move {
            let mut refused = 0;
            for i in (worker..FORGED).step_by(16) {
                let kid = format!("forged-{i}-{}", holdfast_server::secret::random_id());
                let now = now();
                let header = JwtHeader {
                    typ: "at+jwt",
                    kid: Some(&kid),
                    jwk: None,
                };
                let claims = json!({"iss": issuer_url, "sub": "mallory", "aud": "holdfast",
                    "exp": now.plus(300), "iat": now, "nbf": now, "jti": kid,
                    "client_id": "mallory", "sid": "s", "scope": "", "cnf": {"jkt": jkt}});
                let token = sign_jwt(&attacker.key, &header, &claims).unwrap();
                let proof = attacker.proof("GET", &url, Some(&token), now);
                let response = http
                    .get(&url)
                    .header("authorization", format!("DPoP {token}"))
                    .header("dpop", proof)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
                let challenge = response.headers()["www-authenticate"].to_str().unwrap();
                assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
                refused += 1;
            }
            refused
        });
    }
    let mut refused = 0;
    while let Some(n) = tasks.join_next().await {
        refused += n.unwrap();
    }
    let took = started.elapsed();
    assert_eq!(refused, FORGED);

    stop.store(true, Ordering::SeqCst);
    let (rss_peak, fds_peak) = sampler.stop();
    let during = tokio::time::timeout(TIMEOUT, background)
        .await
        .unwrap()
        .unwrap();
    assert!(!during.is_empty());

    // The refetch interval is 10 s (JwksOptions::default): at most one
    // fetch per started interval, plus one in flight when the count is read.
    let fetched = issuer
        .daemon
        .requests_to(holdfast_proto::endpoints::JWKS_PATH)
        - jwks_before;
    let allowed = took.as_secs() / 10 + 2;
    assert!(
        fetched as u64 <= allowed,
        "{fetched} JWKS fetches in {took:?} for {FORGED} unknown kids"
    );
    let metrics = reqwest::get(format!("{}/metrics", proxy.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let metric = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing: {metrics}"))
            .parse()
            .unwrap()
    };
    assert!(metric("holdfast_verifier_jwks_unknown_kids_total") >= FORGED as u64);
    // No forged kid was kept: the cache holds the issuer's one key.
    assert_eq!(metric("holdfast_verifier_jwks_keys"), 1);
    let rss_after = proxy.rss_kib();
    assert!(
        rss_peak < rss_before + 64 * 1024,
        "proxy RSS went from {rss_before} KiB to {rss_peak} KiB"
    );
    println!(
        "FIGURES unknown-kid: {FORGED} forged tokens with unknown kids in {took:.1?} (16 at a time), \
         all 401 invalid_token; JWKS fetches at the issuer during the attack: {fetched}; \
         unknown-kid lookups {}, refetches deferred {}; proxied honest GETs during {}; \
         proxy RSS before {rss_before} KiB, peak {rss_peak} KiB, after {rss_after} KiB; peak fds {fds_peak}",
        metric("holdfast_verifier_jwks_unknown_kids_total"),
        metric("holdfast_verifier_jwks_deferred_total"),
        percentiles(&during),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_huge_jtis_and_deeply_nested_json_get_clean_errors() {
    let issuer = Issuer::start("").await;
    let (upstream_url, _upstream) = upstream().await;
    let proxy = proxy(&issuer, &upstream_url, &[]);
    let mut honest = Honest::new(&issuer, Some(proxy.url())).await;
    let device = &issuer.device;
    let token_url = format!("{}/token", issuer.url);
    let orders = format!("{}/orders", proxy.url());
    let token = honest.token.clone();
    let http = reqwest::Client::builder().timeout(TIMEOUT).build().unwrap();
    let deep = nested(1500);

    // At the token endpoint: the proof, then the client assertion.
    let jti_1k = "j".repeat(1000);
    let token_claims = json!({"htm": "POST", "htu": token_url, "nonce": device.nonce});
    let mut proofs = hostile_proofs(device, &token_claims, &deep);
    proofs.push((
        "nested JSON as the proof header",
        raw_jws(&nested(2000), "{}"),
    ));
    let jti = format!("assertion-{}", holdfast_server::secret::random_id());
    let assertion = device.assertion(now(), &jti);
    for (what, proof) in proofs {
        let response = http
            .post(&token_url)
            .header("dpop", proof)
            .form(&assertion_form(&assertion))
            .send()
            .await
            .unwrap();
        assert_bad_request(response, &format!("/token, {what}"), "invalid_dpop_proof").await;
    }
    let assertions = [
        (
            "a 1000-byte assertion jti",
            device.assertion(now(), &jti_1k),
        ),
        (
            "nested JSON in the assertion claims",
            raw_jws(
                r#"{"alg":"ES256","typ":"JWT"}"#,
                &format!(r#"{{"iss":{deep}}}"#),
            ),
        ),
        (
            "nested JSON in the assertion header",
            raw_jws(&format!(r#"{{"alg":"ES256","x":{deep}}}"#), "{}"),
        ),
    ];
    for (what, assertion) in assertions {
        // A fresh proof each time (and its nonce): only the assertion is bad.
        let proof = device.proof("POST", &token_url, None, now());
        let response = http
            .post(&token_url)
            .header("dpop", proof)
            .form(&assertion_form(&assertion))
            .send()
            .await
            .unwrap();
        let refusal = answer(response).await.unwrap_err();
        println!("ANSWER /token, {what}: {} {}", refusal.status, refusal.body);
        assert!(
            refusal.status.is_client_error() && refusal.error == "invalid_client",
            "{what}: {} {}",
            refusal.status,
            refusal.body
        );
    }

    // At the proxy: the access token, then the proof.
    let token_cases = [
        (
            "nested JSON in the token header",
            raw_jws(
                &format!(r#"{{"alg":"ES256","typ":"at+jwt","kid":{deep}}}"#),
                "{}",
            ),
        ),
        (
            "nested JSON in the token claims",
            raw_jws(
                r#"{"alg":"ES256","typ":"at+jwt","kid":"k"}"#,
                &format!(r#"{{"cnf":{deep}}}"#),
            ),
        ),
    ];
    for (what, bad_token) in token_cases {
        let proof = device.proof("GET", &orders, Some(&bad_token), now());
        let response = http
            .get(&orders)
            .header("authorization", format!("DPoP {bad_token}"))
            .header("dpop", proof)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{what}: {challenge}"
        );
    }
    let proxied_claims = json!({"htm": "GET", "htu": orders, "ath": ath(&token)});
    let proof_cases = hostile_proofs(device, &proxied_claims, &deep);
    for (what, proof) in proof_cases {
        let response = http
            .get(&orders)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.contains("error=\"invalid_dpop_proof\""),
            "{what}: {challenge}"
        );
    }

    // JSON bodies: nested deeper than serde_json's limit (128), in the
    // places each endpoint reads, as the top level and inside members.
    let deep_body = nested(30_000);
    let bodies = [
        // `attestation` is read as a JSON value: serde_json descends, and
        // its recursion limit (128) ends the descent with an error.
        format!(
            r#"{{"code":"x","kind":"software","name":"n","proof":"p","attestation":{deep_body}}}"#
        ),
        format!(r#"{{"code":{deep_body}}}"#),
        deep_body.clone(),
    ];
    for body in &bodies {
        for path in ["/enroll", "/enroll/challenge"] {
            let response = http
                .post(format!("{}{path}", issuer.url))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let what = format!("{path}, nested body");
            let refusal = assert_bad_request(response, &what, "invalid_request").await;
            if path == "/enroll" && body.contains("attestation") {
                assert!(
                    // serde_json's RecursionLimitExceeded, which axum
                    // reports as a syntax error (the reason is truncated).
                    refusal
                        .description()
                        .contains("Failed to parse the request body as JSON: attestation[0][0]"),
                    "{}",
                    refusal.body
                );
            }
        }
        let admin_url = format!("{}/admin/enrollment-codes", issuer.url);
        let proof = issuer
            .admin
            .proof("POST", &admin_url, Some(&issuer.admin_token), now());
        let response = http
            .post(&admin_url)
            .header("authorization", format!("DPoP {}", issuer.admin_token))
            .header("dpop", proof)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_bad_request(response, "admin, nested body", "invalid_request").await;
        let response = http
            .post(format!("{}/sessions/ip-deviation", issuer.url))
            .basic_auth(RS_ID, Some(RS_SECRET))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_bad_request(response, "ip-deviation, nested body", "invalid_request").await;
    }

    // Both still serve.
    honest.once(Errand::Proxied).await.unwrap();
    honest.once(Errand::Login).await.unwrap();
}

/// The issuer's limits in the slow-client tests: short timeouts, so the
/// tests are short.
fn slow_limits(max_connections: usize, per_ip: usize) -> String {
    format!(
        "max_connections = {max_connections}\nmax_connections_per_ip = {per_ip}\n\
         header_read_timeout_secs = 2\nbody_read_timeout_secs = 3\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_slow_clients_are_timed_out_and_honest_clients_served() {
    const CAP: usize = 64;
    let mut issuer = Issuer::start(&slow_limits(CAP, 0)).await;
    let mut honest = Honest::new(&issuer, None).await;
    let baseline = honest.round(Errand::Login, 30).await;
    let (rss_before, fds_before) = (issuer.daemon.rss_kib(), issuer.daemon.fds());
    let sampler = Sampler::start(&issuer.daemon);

    // 50 slow clients, under the cap: 30 slowloris heads, 10 idle
    // connections, 10 slow bodies.
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(SlowStats::default());
    let address = issuer.daemon.address;
    let mut clients = slow_clients(address, Slow::Head, 30, &stop, &stats);
    clients.extend(slow_clients(address, Slow::Idle, 10, &stop, &stats));
    clients.extend(slow_clients(address, Slow::Body, 10, &stop, &stats));
    eventually("the slow clients to connect", || {
        stats.open.load(Ordering::SeqCst) >= 50
    })
    .await;
    let during = honest.round(Errand::Login, 30).await;
    // Every kind was cut off by the server: heads and idle connections by
    // the header timeout, bodies answered 400 by the body timeout.
    eventually("timeouts and body refusals", || {
        stats.closed_later.load(Ordering::SeqCst) >= 40
            && stats
                .answers
                .lock()
                .unwrap()
                .iter()
                .filter(|&&s| s == 400)
                .count()
                >= 10
    })
    .await;
    let rss_during = issuer.daemon.rss_kib();

    // Graceful shutdown with the slow clients still at it: the loop stops
    // accepting, the slow connections time out, the store is flushed.
    let stopping = Instant::now();
    let status = issuer.daemon.terminate();
    let shutdown_took = stopping.elapsed();
    let (rss_peak, fds_peak) = sampler.stop();
    stop_all(&stop, clients).await;
    assert!(status.success(), "{status:?}");
    assert!(issuer.daemon.logged("holdfastd stopped; store flushed"));
    assert!(
        fds_peak <= fds_before + CAP + 8,
        "{fds_peak} descriptors (before: {fds_before}, cap {CAP})"
    );
    println!(
        "FIGURES slow clients (issuer, cap {CAP}, header timeout 2 s, body timeout 3 s): \
         30 slowloris + 10 idle + 10 slow-body clients; {}; honest logins baseline {} | during {}; \
         RSS before {rss_before} KiB, during {rss_during} KiB, peak {rss_peak} KiB; fds before \
         {fds_before}, peak {fds_peak}; SIGTERM under attack: exit 0 after {shutdown_took:.1?}",
        stats.line(),
        percentiles(&baseline),
        percentiles(&during),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_connection_flood_from_one_address_cannot_take_every_slot() {
    const CAP: usize = 64;
    const PER_IP: usize = 16;
    let issuer = Issuer::start(&slow_limits(CAP, PER_IP)).await;
    let mut honest = Honest::new(&issuer, None).await;
    let baseline = honest.round(Errand::Login, 30).await;
    let (rss_before, fds_before) = (issuer.daemon.rss_kib(), issuer.daemon.fds());
    let sampler = Sampler::start(&issuer.daemon);

    // 150 slowloris clients from 127.0.0.1, more than the whole cap; the
    // honest device sends from 127.0.0.2.
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(SlowStats::default());
    let clients = slow_clients(issuer.daemon.address, Slow::Head, 150, &stop, &stats);
    eventually("the flood to be turned away", || {
        stats.closed_at_once.load(Ordering::SeqCst) >= 150
    })
    .await;
    let during = honest.round(Errand::Login, 30).await;
    let fds_during = issuer.daemon.fds();
    stop_all(&stop, clients).await;
    let (rss_peak, fds_peak) = sampler.stop();
    eventually("the descriptors to come back", || {
        issuer.daemon.fds() <= fds_before + 2
    })
    .await;
    let rss_after = issuer.daemon.rss_kib();
    // The flood holds at most its 16, plus the honest connection.
    assert!(
        fds_peak <= fds_before + PER_IP + 16,
        "{fds_peak} descriptors (before: {fds_before}, per address {PER_IP})"
    );
    println!(
        "FIGURES flood from one address (issuer, cap {CAP}, {PER_IP} per address, header timeout 2 s): \
         150 slowloris clients; {}; honest logins (other address) baseline {} | during {}; \
         RSS before {rss_before} KiB, peak {rss_peak} KiB, after {rss_after} KiB; fds before \
         {fds_before}, during {fds_during}, peak {fds_peak}",
        stats.line(),
        percentiles(&baseline),
        percentiles(&during),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_flood_beyond_the_cap_delays_but_does_not_starve_honest_clients() {
    const CAP: usize = 32;
    let issuer = Issuer::start(&slow_limits(CAP, 0)).await;
    let mut honest = Honest::new(&issuer, None).await;
    let baseline = honest.round(Errand::Login, 10).await;
    let (rss_before, fds_before) = (issuer.daemon.rss_kib(), issuer.daemon.fds());
    let sampler = Sampler::start(&issuer.daemon);

    // Twice the cap in slowloris clients, no per-address limit: honest
    // connections queue in the backlog with the flood and get a slot as
    // the header timeout frees them.
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(SlowStats::default());
    let clients = slow_clients(issuer.daemon.address, Slow::Head, 2 * CAP, &stop, &stats);
    eventually("the flood to fill the cap", || {
        stats.open.load(Ordering::SeqCst) >= 2 * CAP
    })
    .await;
    let during = honest.round(Errand::Login, 5).await;
    let fds_during = issuer.daemon.fds();
    stop_all(&stop, clients).await;
    let (rss_peak, fds_peak) = sampler.stop();
    assert!(
        fds_peak <= fds_before + CAP + 4,
        "{fds_peak} descriptors (before: {fds_before}, cap {CAP})"
    );
    println!(
        "FIGURES flood beyond the cap (issuer, cap {CAP}, no per-address cap, header timeout 2 s): \
         {} slowloris clients; {}; honest logins baseline {} | during {}; RSS before {rss_before} KiB, \
         peak {rss_peak} KiB; fds before {fds_before}, during {fds_during}, peak {fds_peak}",
        2 * CAP,
        stats.line(),
        percentiles(&baseline),
        percentiles(&during),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_slow_clients_against_the_proxy_are_timed_out_and_capped() {
    const CAP: usize = 64;
    const PER_IP: usize = 16;
    let issuer = Issuer::start("").await;
    let (upstream_url, _upstream) = upstream().await;
    let mut proxy = proxy(
        &issuer,
        &upstream_url,
        &[
            "--max-connections",
            &CAP.to_string(),
            "--max-connections-per-ip",
            &PER_IP.to_string(),
            "--header-read-timeout-secs",
            "2",
        ],
    );
    let mut honest = Honest::new(&issuer, Some(proxy.url())).await;
    let baseline = honest.round(Errand::Proxied, 30).await;
    let (rss_before, fds_before) = (proxy.rss_kib(), proxy.fds());
    let sampler = Sampler::start(&proxy);

    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(SlowStats::default());
    let mut clients = slow_clients(proxy.address, Slow::Head, 200, &stop, &stats);
    clients.extend(slow_clients(proxy.address, Slow::Idle, 20, &stop, &stats));
    eventually("the flood to be turned away and timed out", || {
        stats.closed_at_once.load(Ordering::SeqCst) >= 100
            && stats.closed_later.load(Ordering::SeqCst) >= PER_IP
    })
    .await;
    let during = honest.round(Errand::Proxied, 30).await;
    let fds_during = proxy.fds();

    let stopping = Instant::now();
    let status = proxy.terminate();
    let shutdown_took = stopping.elapsed();
    let (rss_peak, fds_peak) = sampler.stop();
    stop_all(&stop, clients).await;
    assert!(status.success(), "{status:?}");
    assert!(proxy.logged("holdfastd proxy stopped"));
    // The flood's 16, the honest client and the proxy's own connections to
    // the issuer and the upstream.
    assert!(
        fds_peak <= fds_before + PER_IP + 16,
        "{fds_peak} descriptors (before: {fds_before}, per address {PER_IP})"
    );
    println!(
        "FIGURES slow clients (proxy, cap {CAP}, {PER_IP} per address, header timeout 2 s): \
         200 slowloris + 20 idle clients from one address; {}; honest proxied GETs (other address) \
         baseline {} | during {}; RSS before {rss_before} KiB, peak {rss_peak} KiB; fds before \
         {fds_before}, during {fds_during}, peak {fds_peak}; SIGTERM under attack: exit 0 after \
         {shutdown_took:.1?}",
        stats.line(),
        percentiles(&baseline),
        percentiles(&during),
    );
}
