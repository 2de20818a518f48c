//! An axum service protected by `VerifierLayer` on 127.0.0.1, against a
//! real issuer: a good request passes and the handler sees the caller; each
//! attack is refused with its exact status, `WWW-Authenticate` and body.
//!
//! The verifier here is fed by hand (the issuer's own keyring, a registry
//! filled from its store and changed with feed events), not by the feed
//! follower, so each refusal is the layer's and nothing else's.

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use holdfast_hw::SoftwareKey;
use holdfast_proto::{
    ACCESS_TOKEN_TYP, AccessTokenClaims, Audience, Confirmation, IssuerKeys, JwtHeader,
    NonceIssuer, NonceSecret, Signer as _, UnixTime, sign_jwt,
};
use holdfast_server::model::DeviceState;
use holdfast_verifier::registry::{DeviceEntry, FeedEvent};
use holdfast_verifier::{
    Registry, Verified, VerifiedIdentity, Verifier, VerifierConfig, VerifierLayer,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::issuer_flow::{admin_agent, enrolled_agent};
use crate::support::{AUDIENCE, Agent, RS_ID, RS_SECRET, Server};

/// The example service's handler: who called.
async fn orders(Verified(id): Verified) -> Json<VerifiedIdentity> {
    Json(id)
}

/// The protected service: `/orders`, and `/api/orders` under `nest` (whose
/// `htu` must keep the `/api` prefix the nested router strips).
struct Protected {
    /// `http://127.0.0.1:PORT`, also the verifier's base URL.
    url: String,
    layer: VerifierLayer,
    registry: Arc<Registry>,
    _shutdown: oneshot::Sender<()>,
}

impl Protected {
    async fn start(server: &Server, edit: impl FnOnce(Verifier) -> Verifier) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let registry = Arc::new(Registry::new());
        sync_registry(server, &registry);
        let config = VerifierConfig::new(&server.url, AUDIENCE, &url, RS_ID, RS_SECRET);
        let keys: Arc<dyn IssuerKeys + Send + Sync> = server.issuer.state.keyring();
        let verifier = Verifier::new(config, keys, Arc::clone(&registry))
            .with_clock(server.issuer.clock.clone());
        let layer = VerifierLayer::new(Arc::new(edit(verifier)));
        let nested = Router::new()
            .route("/orders", get(orders))
            .layer(layer.clone());
        let app = Router::new()
            .route("/orders", get(orders))
            .layer(layer.clone())
            .nest("/api", nested);
        let (shutdown, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        Self {
            url,
            layer,
            registry,
            _shutdown: shutdown,
        }
    }

    fn orders(&self) -> String {
        format!("{}/orders", self.url)
    }
}

/// What the feed follower would do: the issuer's devices as they are now,
/// and a successful sync at the issuer's time.
fn sync_registry(server: &Server, registry: &Registry) {
    let devices = server
        .issuer
        .state
        .store
        .devices()
        .unwrap()
        .into_iter()
        .map(|d| DeviceEntry {
            device_id: d.id.to_string(),
            principal_id: d.principal.to_string(),
            jkt: d.jkt,
            state: match d.state {
                DeviceState::Active => "active",
                DeviceState::Disabled => "disabled",
                DeviceState::Revoked => "revoked",
            }
            .to_owned(),
            principal_disabled: false,
        })
        .collect();
    registry.apply_snapshot(devices, None);
    registry.mark_synced(server.now());
}

fn event(kind: &str, id: &str, before: Option<UnixTime>, at: UnixTime) -> FeedEvent {
    FeedEvent {
        cursor: 0,
        at,
        kind: kind.to_owned(),
        id: id.to_owned(),
        before,
        device: None,
    }
}

/// What came back.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    challenge: Option<String>,
    nonce: Option<String>,
    cache_control: Option<String>,
    /// `Null` for an empty body.
    body: Value,
}

/// `GET url` with these headers (repeated names are sent twice).
async fn get_with(url: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = reqwest::Client::new().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (challenge, nonce, cache_control) = (
        header("www-authenticate"),
        header("dpop-nonce"),
        header("cache-control"),
    );
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    Answer {
        status,
        challenge,
        nonce,
        cache_control,
        body,
    }
}

/// `GET url` with `Authorization: DPoP token` and `proof`.
async fn get_dpop(url: &str, token: &str, proof: &str) -> Answer {
    let authorization = format!("DPoP {token}");
    get_with(url, &[("authorization", &authorization), ("dpop", proof)]).await
}

/// The refusal RFC 9449 §7.1 shows: status, challenge, JSON body, no-store.
#[track_caller]
fn assert_refused(answer: &Answer, status: StatusCode, error: &str, description: &str) {
    let quoted = description.replace('\\', "\\\\").replace('"', "\\\"");
    assert_eq!(answer.status, status, "{answer:?}");
    assert_eq!(
        answer.challenge.as_deref(),
        Some(
            format!("DPoP error=\"{error}\", error_description=\"{quoted}\", algs=\"ES256\"")
                .as_str()
        ),
        "{answer:?}"
    );
    assert_eq!(
        answer.body,
        json!({"error": error, "error_description": description})
    );
    assert_eq!(answer.cache_control.as_deref(), Some("no-store"));
}

/// Claims like the issuer's, for tokens the test signs itself.
fn claims_like(real: &Value, jkt: holdfast_proto::Jkt, now: UnixTime) -> AccessTokenClaims {
    AccessTokenClaims {
        iss: real["iss"].as_str().unwrap().to_owned(),
        sub: real["sub"].as_str().unwrap().to_owned(),
        aud: Audience::One(AUDIENCE.to_owned()),
        exp: now.plus(300),
        iat: now,
        nbf: None,
        jti: format!("minted-{}", holdfast_server::secret::random_id()),
        client_id: real["client_id"].as_str().unwrap().to_owned(),
        scope: None,
        sid: real["sid"].as_str().map(str::to_owned),
        cnf: Confirmation { jkt },
        amr: vec!["hwk".to_owned(), "pop".to_owned()],
        ipb: None,
    }
}

#[tokio::test]
async fn layer_admits_fresh_proofs_and_refuses_each_attack() {
    let server = Server::start(|_| {}).await;
    let mut admin = admin_agent(&server).await;
    let mut alice = enrolled_agent(&server, &mut admin, "alice").await;
    let mallory = Agent::new(&server); // a key the issuer never enrolled
    let service = Protected::start(&server, |v| v).await;
    let orders = service.orders();
    let now = server.now();
    let tokens = alice.login(now).await.unwrap();
    let token = tokens.access.as_str();
    let introspected = server.introspect(token).await;

    // A good request passes, and the handler sees who sent it.
    let first_proof = alice.proof("GET", &orders, Some(token), now);
    let good = get_dpop(&orders, token, &first_proof).await;
    assert_eq!(good.status, StatusCode::OK, "{good:?}");
    assert_eq!(
        good.body,
        json!({
            "sub": introspected["sub"],
            "client_id": alice.client_id,
            "sid": introspected["sid"],
            "scope": null,
            "amr": ["swk", "pop"],
            "jkt": alice.key_jkt(),
        })
    );
    assert!(good.body["sub"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(good.body["sid"].as_str().is_some_and(|s| !s.is_empty()));

    // Under `nest`, the proof is for the full public URL, not the stripped one.
    let nested = format!("{}/api/orders", service.url);
    let proof = alice.proof("GET", &nested, Some(token), now);
    assert_eq!(
        get_dpop(&nested, token, &proof).await.status,
        StatusCode::OK
    );

    // The first proof again: a replay.
    assert_refused(
        &get_dpop(&orders, token, &first_proof).await,
        StatusCode::UNAUTHORIZED,
        "invalid_dpop_proof",
        "DPoP proof has already been used (jti replayed)",
    );

    // A stolen token without a proof.
    let authorization = format!("DPoP {token}");
    assert_refused(
        &get_with(&orders, &[("authorization", &authorization)]).await,
        StatusCode::UNAUTHORIZED,
        "invalid_dpop_proof",
        "missing DPoP proof",
    );

    // A stolen token with a proof by the thief's key.
    let theirs = mallory.proof("GET", &orders, Some(token), now);
    assert_refused(
        &get_dpop(&orders, token, &theirs).await,
        StatusCode::UNAUTHORIZED,
        "invalid_dpop_proof",
        "DPoP proof key does not match the key the access token is bound to",
    );

    // A proof for another URL of the service.
    let elsewhere = format!("{}/admin", service.url);
    let proof = alice.proof("GET", &elsewhere, Some(token), now);
    assert_refused(
        &get_dpop(&orders, token, &proof).await,
        StatusCode::UNAUTHORIZED,
        "invalid_dpop_proof",
        &format!("DPoP proof htu \"{elsewhere}\" does not match the request URI \"{orders}\""),
    );

    // A proof for another method.
    let proof = alice.proof("POST", &orders, Some(token), now);
    assert_refused(
        &get_dpop(&orders, token, &proof).await,
        StatusCode::UNAUTHORIZED,
        "invalid_dpop_proof",
        "DPoP proof htm \"POST\" does not match the request method \"GET\"",
    );

    // A DPoP-bound token sent as a bearer token: no downgrade.
    let bearer = format!("Bearer {token}");
    let proof = alice.proof("GET", &orders, Some(token), now);
    assert_refused(
        &get_with(&orders, &[("authorization", &bearer), ("dpop", &proof)]).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "a DPoP-bound access token must be sent with the DPoP scheme, not Bearer",
    );

    // Two Authorization headers, or two schemes in one.
    assert_refused(
        &get_with(
            &orders,
            &[
                ("authorization", &authorization),
                ("authorization", &bearer),
                ("dpop", &proof),
            ],
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "more than one Authorization header",
    );
    let both = format!("DPoP {token}, Bearer {token}");
    assert_refused(
        &get_with(&orders, &[("authorization", &both), ("dpop", &proof)]).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "malformed Authorization header",
    );

    // A token forged with a key the issuer never published, under a made-up
    // `kid` and under the issuer's real one.
    let forger = SoftwareKey::generate().unwrap();
    let claims = claims_like(&introspected, alice.key.public_jwk().thumbprint(), now);
    let active_kid = server.issuer.state.keyring().active_kid().to_owned();
    for (kid, description) in [
        (
            "forged-key",
            "access token is signed by an unknown key \"forged-key\"".to_owned(),
        ),
        (
            active_kid.as_str(),
            "access token signature is invalid".to_owned(),
        ),
    ] {
        let header = JwtHeader {
            typ: ACCESS_TOKEN_TYP,
            kid: Some(kid),
            jwk: None,
        };
        let forged = sign_jwt(&forger, &header, &claims).unwrap();
        let proof = alice.proof("GET", &orders, Some(&forged), now);
        assert_refused(
            &get_dpop(&orders, &forged, &proof).await,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            &description,
        );
    }

    // A token with a valid issuer signature (a stolen signing key) bound to
    // a key that was never enrolled, with a proof by that key.
    let claims = claims_like(&introspected, mallory.key.public_jwk().thumbprint(), now);
    let minted = server
        .issuer
        .state
        .keyring()
        .sign_access_token(&claims)
        .unwrap();
    let proof = mallory.proof("GET", &orders, Some(&minted), now);
    assert_refused(
        &get_dpop(&orders, &minted, &proof).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "the token is bound to a key that is not enrolled",
    );
    assert_eq!(service.layer.metrics().refused("key_not_enrolled"), 1);

    // A stale proof: made now, sent two minutes later (the token lives
    // 300 s). The feed keeps the registry fresh meanwhile.
    let proof = alice.proof("GET", &orders, Some(token), now);
    server.issuer.clock.advance(120);
    sync_registry(&server, &service.registry);
    let later = server.now();
    assert_refused(
        &get_dpop(&orders, token, &proof).await,
        StatusCode::UNAUTHORIZED,
        "invalid_dpop_proof",
        &format!("DPoP proof is too old: iat {now} is more than 60 s before now ({later})"),
    );
    // The token itself is still good with a fresh proof.
    let proof = alice.proof("GET", &orders, Some(token), later);
    assert_eq!(
        get_dpop(&orders, token, &proof).await.status,
        StatusCode::OK
    );

    // A revoked session: refused; the device's other session still works.
    let second = alice.login(later).await.unwrap();
    let sid = server.introspect(&second.access).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    service
        .registry
        .apply_events(&[event("session", &sid, None, later)]);
    let proof = alice.proof("GET", &orders, Some(&second.access), later);
    assert_refused(
        &get_dpop(&orders, &second.access, &proof).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "the token's session is revoked",
    );
    let proof = alice.proof("GET", &orders, Some(token), later);
    assert_eq!(
        get_dpop(&orders, token, &proof).await.status,
        StatusCode::OK
    );

    // A revoked device.
    let mut bob = enrolled_agent(&server, &mut admin, "bob").await;
    sync_registry(&server, &service.registry);
    let bob_tokens = bob.login(later).await.unwrap();
    let proof = bob.proof("GET", &orders, Some(&bob_tokens.access), later);
    assert_eq!(
        get_dpop(&orders, &bob_tokens.access, &proof).await.status,
        StatusCode::OK
    );
    service
        .registry
        .apply_events(&[event("device", &bob.client_id, None, later)]);
    let proof = bob.proof("GET", &orders, Some(&bob_tokens.access), later);
    assert_refused(
        &get_dpop(&orders, &bob_tokens.access, &proof).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "the token's device is not active",
    );

    // Revoke-all: every token issued before the instant.
    service
        .registry
        .apply_events(&[event("all_before", "", Some(later.plus(1)), later)]);
    let proof = alice.proof("GET", &orders, Some(token), later);
    assert_refused(
        &get_dpop(&orders, token, &proof).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "the token was issued before a revoke-all",
    );

    // No Authorization at all: the bare challenge, no error, no body.
    let bare = get_with(&orders, &[]).await;
    assert_eq!(bare.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bare.challenge.as_deref(), Some("DPoP algs=\"ES256\""));
    assert_eq!(bare.body, Value::Null);
    assert_eq!(bare.nonce, None, "nonces are off");
    assert_eq!(bare.cache_control.as_deref(), Some("no-store"));

    let metrics = service.layer.metrics();
    assert_eq!(metrics.refused("jti_replayed"), 1);
    assert_eq!(metrics.refused("session_revoked"), 1);
    let text = metrics.render();
    assert!(
        text.contains("holdfast_verifier_refused_total{check=\"missing_token\",error=\"none\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn layer_demands_its_nonce_and_admits_the_retry() {
    let server = Server::start(|_| {}).await;
    let mut admin = admin_agent(&server).await;
    let mut alice = enrolled_agent(&server, &mut admin, "alice").await;
    // Not the test issuer's secret ([42; 32]): its nonces must not pass here.
    let secret = NonceSecret::new(&[7u8; 32]).unwrap();
    let nonces = NonceIssuer::new(secret, [], 60, 2).unwrap();
    let service = Protected::start(&server, |v| v.with_nonces(nonces)).await;
    let orders = service.orders();
    let now = server.now();
    let tokens = alice.login(now).await.unwrap();
    let token = tokens.access.as_str();

    // No nonce in the proof.
    alice.nonce = None;
    let first = get_dpop(
        &orders,
        token,
        &alice.proof("GET", &orders, Some(token), now),
    )
    .await;
    assert_refused(
        &first,
        StatusCode::UNAUTHORIZED,
        "use_dpop_nonce",
        "a DPoP nonce is required",
    );
    let nonce = first.nonce.clone().expect("a DPoP-Nonce header");

    // The issuer's nonce is not this service's.
    alice.login(now).await.unwrap();
    assert!(alice.nonce.is_some());
    let other = get_dpop(
        &orders,
        token,
        &alice.proof("GET", &orders, Some(token), now),
    )
    .await;
    assert_refused(
        &other,
        StatusCode::UNAUTHORIZED,
        "use_dpop_nonce",
        "the DPoP nonce is invalid or expired",
    );
    assert!(other.nonce.is_some());

    // The retry with the service's nonce passes.
    alice.nonce = Some(nonce);
    let retry = get_dpop(
        &orders,
        token,
        &alice.proof("GET", &orders, Some(token), now),
    )
    .await;
    assert_eq!(retry.status, StatusCode::OK, "{retry:?}");
    assert_eq!(retry.body["client_id"], alice.client_id);

    // Any other 401 carries a fresh nonce too, so the next try can succeed.
    let bare = get_with(&orders, &[]).await;
    assert_eq!(bare.status, StatusCode::UNAUTHORIZED);
    assert!(bare.nonce.is_some());
}
