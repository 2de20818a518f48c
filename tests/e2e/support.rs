//! A real `holdfastd` router served on 127.0.0.1 (port 0), and a test
//! device agent that speaks to it over HTTP with a software key.
//!
//! [`enrollment`]: hardware keys enrolled by hand, and the refusals
//! asserted; [`holdfastd`]: the real binary as a child process.

pub mod enrollment;
pub mod holdfastd;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use getrandom::SysRng;
use holdfast_hw::SoftwareKey;
use holdfast_proto::{
    AccessToken, Htu, JwtHeader, ProofRequest, Signer as _, UnixTime, build_enrollment_proof,
    build_proof, sign_jwt,
};
use holdfast_server::config::{Config, ResourceServerConfig};
use holdfast_server::testing::TestIssuer;
use holdfast_verifier::{FeedHandle, FeedOptions, ProxyOptions, Verifier, VerifierConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The resource server credentials every test server accepts.
pub const RS_ID: &str = "api";
/// Its secret.
pub const RS_SECRET: &str = "resource-server-secret";
/// The issuer's default `aud`.
pub const AUDIENCE: &str = "holdfast";

/// A running issuer.
pub struct Server {
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    /// Its state and clock.
    pub issuer: TestIssuer,
    shutdown: oneshot::Sender<()>,
    handle: JoinHandle<()>,
}

impl Server {
    /// Starts an issuer on a fresh store.
    pub async fn start(edit: impl FnOnce(&mut Config)) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), edit).await
    }

    /// Starts an issuer on the store in `dir`, on a free port.
    pub async fn start_in(dir: tempfile::TempDir, edit: impl FnOnce(&mut Config)) -> Self {
        Self::start_at(dir, "127.0.0.1:0".parse().unwrap(), edit).await
    }

    /// Starts an issuer on the store in `dir` at `address` (a restart when
    /// both are those of a stopped server).
    pub async fn start_at(
        dir: tempfile::TempDir,
        address: SocketAddr,
        edit: impl FnOnce(&mut Config),
    ) -> Self {
        let listener = tokio::net::TcpListener::bind(address).await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let public = url.clone();
        let issuer = TestIssuer::open(dir, move |c| {
            c.public_url = Some(public);
            c.sync_writes = true;
            c.resource_servers = vec![ResourceServerConfig {
                id: RS_ID.into(),
                secret_sha256: sha256_hex(RS_SECRET),
            }];
            edit(c);
        });
        let (shutdown, handle) = serve_on(
            listener,
            holdfast_server::http::router(issuer.state.clone()),
        );
        Self {
            url,
            issuer,
            shutdown,
            handle,
        }
    }

    /// Stops the server and returns its store directory for a restart.
    pub async fn stop(self) -> (tempfile::TempDir, u64) {
        let _ = self.shutdown.send(());
        self.handle.await.unwrap();
        let now = self.issuer.now().as_secs();
        let TestIssuer { state, dir, .. } = self.issuer;
        state.store.flush().unwrap();
        drop(state);
        (dir, now)
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.url.trim_start_matches("http://").parse().unwrap()
    }

    /// The issuer's current (test) time.
    pub fn now(&self) -> UnixTime {
        self.issuer.now()
    }

    /// The audit records of `event` so far, oldest first (read from the
    /// store, as `GET /admin/audit` and `holdfastd audit export` do).
    pub fn audited(&self, event: &str) -> Vec<holdfast_server::store::AuditRecord> {
        holdfast_server::audit::AuditPages::new(self.issuer.state.store.as_ref(), 1)
            .map(Result::unwrap)
            .filter(|r| r.entry.event == event)
            .collect()
    }

    /// Introspects `token` as the resource server.
    pub async fn introspect(&self, token: &str) -> Value {
        let response = reqwest::Client::new()
            .post(format!("{}/introspect", self.url))
            .basic_auth(RS_ID, Some(RS_SECRET))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }
}

/// The hex SHA-256 of `s`, as `resource_servers.secret_sha256` holds it.
pub fn sha256_hex(s: &str) -> String {
    // The server stores only this hash; compute it the same way here.
    let digest = holdfast_server::secret::secret_hash(s);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Serves `app` on `listener`, with each request's peer address (as
/// `holdfastd` does), until the returned sender is used or dropped.
pub fn serve_on(
    listener: tokio::net::TcpListener,
    app: axum::Router,
) -> (oneshot::Sender<()>, JoinHandle<()>) {
    let (shutdown, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (shutdown, handle)
}

/// Serves `app` on 127.0.0.1:0 with the peer address; its URL and its stop.
pub async fn serve(app: axum::Router) -> (String, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (shutdown, _) = serve_on(listener, app);
    (url, shutdown)
}

/// A verifier for the service at `base_url` (audience [`AUDIENCE`], the
/// test resource server's credentials), following `server`'s feed on the
/// issuer's (test) clock; `edit` changes either before it connects.
pub async fn follow(
    server: &Server,
    base_url: &str,
    edit: impl FnOnce(&mut VerifierConfig, &mut FeedOptions),
) -> (Arc<Verifier>, FeedHandle) {
    let mut config = VerifierConfig::new(&server.url, AUDIENCE, base_url, RS_ID, RS_SECRET);
    let mut options = FeedOptions {
        clock: server.issuer.clock.clone(),
        // Short, so that stopping the issuer does not wait for a long-poll.
        long_poll_wait: Duration::from_secs(1),
        ..FeedOptions::default()
    };
    edit(&mut config, &mut options);
    holdfast_verifier::connect_with(config, reqwest::Client::new(), options)
        .await
        .unwrap()
}

/// The verifying proxy (`holdfast_verifier::proxy_router`) on a port of its
/// own in front of `upstream`, with `options`; its verifier follows
/// `server` as [`follow`] makes it (with `edit`), and its `/metrics` show
/// the follower's counters. Its URL, the follower and its stop.
pub async fn serve_proxy(
    server: &Server,
    upstream: &str,
    options: ProxyOptions,
    edit: impl FnOnce(&mut VerifierConfig, &mut FeedOptions),
) -> (String, FeedHandle, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (verifier, feed) = follow(server, &url, edit).await;
    let options = ProxyOptions {
        feed: Some(feed.monitor()),
        ..options
    };
    let app = holdfast_verifier::proxy_router(verifier, upstream, options).unwrap();
    let (shutdown, _) = serve_on(listener, app);
    (url, feed, shutdown)
}

/// Tokens from the token endpoint.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The DPoP-bound access token.
    pub access: String,
    /// The refresh token.
    pub refresh: String,
}

/// A refusal: status and JSON body.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// HTTP status.
    pub status: StatusCode,
    /// `error`.
    pub error: String,
    /// The whole body.
    pub body: Value,
}

impl Refusal {
    /// Its `error_description`.
    pub fn description(&self) -> &str {
        self.body["error_description"].as_str().unwrap()
    }
}

/// A device agent with a software key.
pub struct Agent {
    /// Its key.
    pub key: SoftwareKey,
    /// Its `client_id`, once enrolled.
    pub client_id: String,
    /// The issuer's base URL.
    pub base: String,
    /// The last `DPoP-Nonce` seen.
    pub nonce: Option<String>,
    /// The HTTP client (bound to a local address when given).
    pub http: reqwest::Client,
}

impl Agent {
    /// A new agent with a fresh key, not yet enrolled.
    pub fn new(server: &Server) -> Self {
        Self::from_address(server, None)
    }

    /// An agent whose requests come from `local` (e.g. 127.0.0.2).
    pub fn from_address(server: &Server, local: Option<std::net::IpAddr>) -> Self {
        Self::at(&server.url, local)
    }

    /// An agent with a fresh key for the issuer at `base` (e.g. a
    /// `holdfastd` child process), sending from `local` when given.
    pub fn at(base: &str, local: Option<std::net::IpAddr>) -> Self {
        let http = reqwest::Client::builder()
            .local_address(local)
            .build()
            .unwrap();
        Self {
            key: SoftwareKey::generate().unwrap(),
            client_id: String::new(),
            base: base.to_owned(),
            nonce: None,
            http,
        }
    }

    /// The same key and identity, sending from another address.
    pub fn moved_to(&self, local: std::net::IpAddr) -> Self {
        let pem = self.key.to_pkcs8_pem().unwrap();
        Self {
            key: SoftwareKey::from_pkcs8_pem(&pem).unwrap(),
            client_id: self.client_id.clone(),
            base: self.base.clone(),
            nonce: self.nonce.clone(),
            http: reqwest::Client::builder()
                .local_address(Some(local))
                .build()
                .unwrap(),
        }
    }

    /// The thumbprint of the agent's key.
    pub fn key_jkt(&self) -> String {
        self.key.public_jwk().thumbprint().to_string()
    }

    /// Enrolls with `code`; returns the enrollment response.
    pub async fn enroll(&mut self, server: &Server, code: &str) -> Result<Value, Refusal> {
        self.enroll_at(code, server.now()).await
    }

    /// Enrolls with `code`, the proof made at `now` (for an issuer that is
    /// not a [`Server`], e.g. a `holdfastd` child process on the real clock).
    pub async fn enroll_at(&mut self, code: &str, now: UnixTime) -> Result<Value, Refusal> {
        let challenge = self
            .http
            .post(format!("{}/enroll/challenge", self.base))
            .send()
            .await
            .unwrap();
        let challenge = answer(challenge).await?;
        let response = self
            .http
            .post(format!("{}/enroll", self.base))
            .json(&self.enrollment(&challenge, code, now))
            .send()
            .await
            .unwrap();
        let result = answer(response).await?;
        self.client_id = result["client_id"].as_str().unwrap().to_owned();
        Ok(result)
    }

    /// The `POST /enroll` body for this software key with `code`, its proof
    /// over the `challenge` answer made at `now`.
    pub fn enrollment(&self, challenge: &Value, code: &str, now: UnixTime) -> Value {
        let challenge = challenge["challenge"].as_str().unwrap();
        let proof = build_enrollment_proof(&self.key, challenge, code, now).unwrap();
        json!({"code": code, "kind": "software", "name": "test-laptop", "proof": proof})
    }

    /// A `private_key_jwt` client assertion.
    pub fn assertion(&self, now: UnixTime, jti: &str) -> String {
        let header = JwtHeader {
            typ: "JWT",
            kid: None,
            jwk: None,
        };
        let claims = json!({"iss": self.client_id, "sub": self.client_id, "aud": format!("{}/token", self.base),
            "iat": now, "exp": now.plus(60), "jti": jti});
        sign_jwt(&self.key, &header, &claims).unwrap()
    }

    /// A DPoP proof for `method url` at `now`.
    pub fn proof(&self, method: &str, url: &str, token: Option<&str>, now: UnixTime) -> String {
        let htu = Htu::parse(url).unwrap();
        let token = token.map(AccessToken::new);
        let request = ProofRequest {
            htm: method,
            htu: &htu,
            nonce: self.nonce.as_deref(),
            access_token: token.as_ref(),
        };
        build_proof(&self.key, &mut SysRng, &request, now).unwrap()
    }

    /// Posts a token request with a proof, retrying once on `use_dpop_nonce`.
    pub async fn token_request(
        &mut self,
        now: UnixTime,
        form: &[(&str, &str)],
    ) -> Result<Tokens, Refusal> {
        let url = format!("{}/token", self.base);
        for attempt in 0..2 {
            let proof = self.proof("POST", &url, None, now);
            let response = self.post_token(&proof, form).await;
            if let Some(nonce) = response.headers().get("dpop-nonce") {
                self.nonce = Some(nonce.to_str().unwrap().to_owned());
            }
            match answer(response).await {
                Ok(body) => {
                    assert_eq!(body["token_type"], "DPoP");
                    return Ok(Tokens {
                        access: body["access_token"].as_str().unwrap().to_owned(),
                        refresh: body["refresh_token"].as_str().unwrap().to_owned(),
                    });
                }
                Err(refusal) if refusal.error == "use_dpop_nonce" && attempt == 0 => {}
                Err(refusal) => return Err(refusal),
            }
        }
        unreachable!()
    }

    /// Posts `form` to the token endpoint with `proof`, once, and returns
    /// the response as it is.
    pub async fn post_token(&self, proof: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}/token", self.base))
            .header("DPoP", proof)
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// `client_credentials` with a fresh assertion.
    pub async fn login(&mut self, now: UnixTime) -> Result<Tokens, Refusal> {
        let jti = format!("assertion-{}", holdfast_server::secret::random_id());
        let assertion = self.assertion(now, &jti);
        self.token_request(now, &assertion_form(&assertion)).await
    }

    /// `refresh_token`.
    pub async fn refresh(&mut self, now: UnixTime, refresh_token: &str) -> Result<Tokens, Refusal> {
        self.token_request(
            now,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// A DPoP-authenticated admin call.
    pub async fn admin(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
        now: UnixTime,
    ) -> Result<Value, Refusal> {
        let url = format!("{}{path}", self.base);
        let proof = self.proof(method, url.split('?').next().unwrap(), Some(token), now);
        let mut request = self
            .http
            .request(method.parse().unwrap(), &url)
            .header("Authorization", format!("DPoP {token}"))
            .header("DPoP", proof);
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await.unwrap()).await
    }
}

/// The `client_credentials` form authenticated by a `private_key_jwt`
/// `assertion`.
pub fn assertion_form(assertion: &str) -> [(&str, &str); 3] {
    [
        ("grant_type", "client_credentials"),
        (
            "client_assertion_type",
            holdfast_proto::CLIENT_ASSERTION_TYPE,
        ),
        ("client_assertion", assertion),
    ]
}

/// The JSON body of a 2xx answer, or the refusal.
pub async fn answer(response: reqwest::Response) -> Result<Value, Refusal> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        Ok(body)
    } else {
        Err(Refusal {
            status,
            error: body["error"].as_str().unwrap_or_default().to_owned(),
            body,
        })
    }
}

/// A service behind `VerifierLayer` that follows the issuer's feed (so it
/// admits only enrolled, unrevoked keys): `GET /whoami` answers the
/// verified identity. Stops when dropped.
pub struct WhoAmI {
    /// Its base URL; the resource is `{url}/whoami`.
    pub url: String,
    _feed: holdfast_verifier::FeedHandle,
    _shutdown: oneshot::Sender<()>,
}

impl WhoAmI {
    /// Starts it for `server`'s default audience (`holdfast`).
    pub async fn start(server: &Server) -> Self {
        async fn whoami(
            holdfast_verifier::Verified(id): holdfast_verifier::Verified,
        ) -> axum::Json<holdfast_verifier::VerifiedIdentity> {
            axum::Json(id)
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (verifier, feed) = follow(server, &url, |_, _| {}).await;
        let app = axum::Router::new()
            .route("/whoami", axum::routing::get(whoami))
            .layer(holdfast_verifier::VerifierLayer::new(verifier));
        let (shutdown, _) = serve_on(listener, app);
        Self {
            url,
            _feed: feed,
            _shutdown: shutdown,
        }
    }
}
