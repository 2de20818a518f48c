//! The SDK (`DpopClient`, `enroll`) against a real issuer on 127.0.0.1:
//! nonce retry, refresh before expiry, rotation, clock skew, concurrency,
//! revocation surfacing as re-authentication.

use std::sync::Arc;

use holdfast_client::{ClientError, DpopClient, EnrollRequest, NoEvidence, enroll};
use holdfast_hw::SoftwareKey;
use holdfast_proto::{Clock, FixedClock, Signer, SystemClock, UnixTime};
use holdfast_server::enrollment::bootstrap_admin;
use holdfast_server::testing::ManualClock;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};

use crate::support::Server;

/// An enrolled admin device and its client.
async fn admin_client(server: &Server, clock: Arc<dyn Clock>) -> (Arc<SoftwareKey>, DpopClient) {
    let code = bootstrap_admin(&server.issuer.state, "root", server.now()).unwrap();
    let key = Arc::new(SoftwareKey::generate().unwrap());
    let http = reqwest::Client::new();
    let enrolled = enroll(
        &http,
        &server.url,
        EnrollRequest {
            code: &code,
            kind: "software",
            name: "admin-laptop",
            signer: key.as_ref(),
            evidence: &mut NoEvidence,
        },
        server.now(),
    )
    .await
    .unwrap();
    assert_eq!(enrolled.jkt, key.public_jwk().thumbprint().to_string());
    let signer: Arc<dyn Signer> = key.clone();
    let client = DpopClient::discover_with(&server.url, &enrolled.client_id, signer, http, clock)
        .await
        .unwrap();
    (key, client)
}

async fn list_devices(server: &Server, client: &DpopClient) -> reqwest::Response {
    client
        .request(
            Method::GET,
            &format!("{}/admin/devices", server.url),
            HeaderMap::new(),
            None,
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn requests_get_tokens_nonces_and_fresh_proofs() {
    let server = Server::start(|_| {}).await;
    let (_, client) = admin_client(&server, Arc::new(SystemClock)).await;
    // The first call obtains a session (after a use_dpop_nonce round trip),
    // the second reuses it with a fresh proof (else the replay guard refuses).
    for _ in 0..3 {
        let response = list_devices(&server, &client).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(server.issuer.state.store.sessions().unwrap().len(), 1);
}

#[tokio::test]
async fn corrects_a_skewed_client_clock_from_date() {
    let server = Server::start(|_| {}).await;
    // The client's clock is an hour behind and a day ahead, in turn.
    for offset in [-3600i64, 86_400] {
        let local = UnixTime::from_secs(server.now().as_secs().saturating_add_signed(offset));
        let (_, client) = admin_client_fresh(&server, Arc::new(FixedClock(local))).await;
        assert_eq!(
            list_devices(&server, &client).await.status(),
            StatusCode::OK
        );
    }
}

/// Like `admin_client`, for a server that is already bootstrapped: the
/// admin creates a code for another admin device.
async fn admin_client_fresh(
    server: &Server,
    clock: Arc<dyn Clock>,
) -> (Arc<SoftwareKey>, DpopClient) {
    let state = &server.issuer.state;
    let (code, _) = holdfast_server::enrollment::create_code(
        state,
        &format!("admin-{}", holdfast_server::secret::random_id()),
        &[holdfast_server::model::Role::Admin],
        &[holdfast_hw::KeyKind::Software],
        "test",
        600,
        server.now(),
    )
    .unwrap();
    let key = Arc::new(SoftwareKey::generate().unwrap());
    let http = reqwest::Client::new();
    let enrolled = enroll(
        &http,
        &server.url,
        EnrollRequest {
            code: &code,
            kind: "software",
            name: "laptop",
            signer: key.as_ref(),
            evidence: &mut NoEvidence,
        },
        server.now(),
    )
    .await
    .unwrap();
    let signer: Arc<dyn Signer> = key.clone();
    let client = DpopClient::discover_with(&server.url, &enrolled.client_id, signer, http, clock)
        .await
        .unwrap();
    (key, client)
}

#[tokio::test]
async fn refreshes_before_expiry_and_rotates() {
    let server = Server::start(|_| {}).await;
    let client_clock = Arc::new(ManualClock::new(server.now().as_secs()));
    let (_, client) = admin_client(&server, client_clock.clone()).await;
    let first = client.access_token().await.unwrap();
    // 280 s later (token lifetime 300 s, refresh margin 30 s) on both clocks.
    server.issuer.clock.advance(280);
    client_clock.advance(280);
    let second = client.access_token().await.unwrap();
    assert_ne!(first, second, "the token was refreshed before it expired");
    // Still one session: a refresh, not a new login.
    assert_eq!(server.issuer.state.store.sessions().unwrap().len(), 1);
    assert_eq!(
        list_devices(&server, &client).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn expired_token_is_refreshed_once_on_invalid_token() {
    let server = Server::start(|_| {}).await;
    let (_, client) = admin_client(&server, Arc::new(SystemClock)).await;
    assert_eq!(
        list_devices(&server, &client).await.status(),
        StatusCode::OK
    );
    // The server moves past the token's expiry; the client does not know.
    server.issuer.clock.advance(400);
    assert_eq!(
        list_devices(&server, &client).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn concurrent_requests_share_one_session() {
    let server = Server::start(|_| {}).await;
    let (_, client) = admin_client(&server, Arc::new(SystemClock)).await;
    let client = Arc::new(client);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let client = Arc::clone(&client);
        let url = format!("{}/admin/devices", server.url);
        tasks.push(tokio::spawn(async move {
            client
                .request(Method::GET, &url, HeaderMap::new(), None)
                .await
                .unwrap()
                .status()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(server.issuer.state.store.sessions().unwrap().len(), 1);
}

#[tokio::test]
async fn revoked_device_surfaces_as_reauthentication_required() {
    let server = Server::start(|_| {}).await;
    let (_, admin) = admin_client(&server, Arc::new(SystemClock)).await;
    let (_, other) = admin_client_fresh(&server, Arc::new(SystemClock)).await;
    assert_eq!(list_devices(&server, &other).await.status(), StatusCode::OK);
    let url = format!("{}/admin/devices/{}/revoke", server.url, other.client_id());
    let revoked = admin
        .request(Method::POST, &url, HeaderMap::new(), None)
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    // The other device's next request: the token's session is dead, refresh
    // and a new session are refused, and the SDK says so plainly.
    let err = other
        .request(
            Method::GET,
            &format!("{}/admin/devices", server.url),
            HeaderMap::new(),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::ReauthenticationRequired(_)),
        "{err}"
    );
}

#[tokio::test]
async fn refuses_a_token_response_that_is_not_dpop() {
    // A fake issuer answering token_type Bearer.
    use axum::routing::{get, post};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let issuer = url.clone();
    let app = axum::Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(move || async move {
                axum::Json(serde_json::json!({"issuer": issuer, "token_endpoint": format!("{issuer}/token")}))
            }),
        )
        .route(
            "/token",
            post(|| async {
                axum::Json(serde_json::json!({"access_token": "x", "token_type": "Bearer", "expires_in": 300}))
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let key: Arc<dyn Signer> = Arc::new(SoftwareKey::generate().unwrap());
    let client = DpopClient::discover(&url, "d-x", key).await.unwrap();
    let err = client.access_token().await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Protocol(msg) if msg.contains("not DPoP")),
        "{err}"
    );
}
