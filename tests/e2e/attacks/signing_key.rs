//! The issuer's signing key stolen: tokens minted with it for a key that
//! is not enrolled, and the recovery (key rotation plus revoke-all), after
//! which no token issued before is usable anywhere.

use std::time::{Duration, Instant};

use base64ct::Encoding as _;
use holdfast_hw::SoftwareKey;
use holdfast_proto::{
    ACCESS_TOKEN_TYP, AccessTokenClaims, Audience, Confirmation, JwtHeader, Signer as _,
    TokenCheck, UnixTime, sign_jwt, verify_access_token,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::stage::{
    AUDIENCE, LayerService, Proxy, Upstream, assert_admin_refused, eventually, get, identity,
    last_audited,
};
use super::stolen_token::theft;
use crate::issuer_flow::{admin_agent, enrolled_agent};
use crate::support::{Agent, Server};

/// The issuer's active signing key and its `kid`, read from its store as
/// someone with a copy of the data directory would.
fn steal_signing_key(server: &Server) -> (SoftwareKey, String) {
    let records = server.issuer.state.store.signing_keys().unwrap();
    let record = records.iter().find(|r| r.retired_at.is_none()).unwrap();
    let key = SoftwareKey::from_pkcs8_pem(&record.pkcs8_pem).unwrap();
    (key, record.kid.clone())
}

/// An access token signed with `signing_key`, naming `sub`, `sid` and
/// `client_id`, bound to `jkt`, issued at `iat`; claiming a hardware key.
fn mint(
    (signing_key, kid): &(SoftwareKey, String),
    issuer: &str,
    (sub, sid, client_id): (&str, &str, &str),
    jkt: holdfast_proto::Jkt,
    iat: UnixTime,
) -> String {
    let claims = AccessTokenClaims {
        iss: issuer.to_owned(),
        sub: sub.to_owned(),
        aud: Audience::One(AUDIENCE.into()),
        exp: iat.plus(300),
        iat,
        nbf: Some(iat),
        jti: holdfast_server::secret::random_id(),
        client_id: client_id.to_owned(),
        scope: None,
        sid: Some(sid.to_owned()),
        cnf: Confirmation { jkt },
        amr: vec!["hwk".into(), "pop".into()],
        ipb: None,
    };
    let header = JwtHeader {
        typ: ACCESS_TOKEN_TYP,
        kid: Some(kid),
        jwk: None,
    };
    sign_jwt(signing_key, &header, &claims).unwrap()
}

#[tokio::test]
async fn attack_token_minted_with_a_stolen_signing_key_for_an_unenrolled_key_is_refused() {
    let t = theft().await;
    let server = &t.server;
    let stolen = steal_signing_key(server);
    let attacker = &t.thief;
    let attacker_jkt = attacker.key.public_jwk().thumbprint();
    let now = server.now();
    let (alice_sub, alice_sid, alice_client) = identity(server, &t.alice_token).await;

    // Alice's identity and live session, bound to the attacker's key: a
    // token with a perfect signature.
    let forged = mint(
        &stolen,
        &server.url,
        (&alice_sub, &alice_sid, &alice_client),
        attacker_jkt,
        now,
    );
    let check = TokenCheck {
        issuer: &server.url,
        audiences: &[AUDIENCE.to_owned()],
        now,
        leeway: 5,
    };
    verify_access_token(&forged, &*server.issuer.state.keyring(), &check).unwrap();

    // The proxy: signature, claims and proof are all fine; the key is not
    // in the registry of enrolled keys.
    let not_enrolled = "the token is bound to a key that is not enrolled";
    let answer = t.proxy.send(attacker, &forged, "/orders").await;
    answer.assert_refused(StatusCode::UNAUTHORIZED, "invalid_token", not_enrolled);
    // An identity made up from nothing: the same.
    let invented = mint(
        &stolen,
        &server.url,
        ("p-attacker", "s-attacker", "d-attacker"),
        attacker_jkt,
        now,
    );
    let answer = t.proxy.send(attacker, &invented, "/orders").await;
    answer.assert_refused(StatusCode::UNAUTHORIZED, "invalid_token", not_enrolled);
    assert_eq!(t.upstream.calls(), 0);
    assert_eq!(t.proxy.refused("key_not_enrolled").await, 2);

    // Introspection says inactive, and records the forgery: a token with
    // our signature that we never issued.
    assert_eq!(server.introspect(&forged).await, json!({"active": false}));
    let forgery = last_audited(server, "introspection_forgery").entry;
    assert_eq!(forgery.actor, alice_client);
    assert_eq!(forgery.outcome, "inactive");
    assert_eq!(forgery.details["check"], "jkt_mismatch");
    assert_eq!(forgery.details["sid"], alice_sid.as_str());
    assert_eq!(forgery.details["jkt"], attacker_jkt.as_str());

    // The admin API: the admin's identity and session, the attacker's key.
    let (admin_sub, admin_sid, admin_client) = identity(server, &t.admin_token).await;
    let forged_admin = mint(
        &stolen,
        &server.url,
        (&admin_sub, &admin_sid, &admin_client),
        attacker_jkt,
        now,
    );
    let console = format!("{}/admin/devices", server.url);
    let proof = attacker.proof("GET", &console, Some(&forged_admin), now);
    let headers = [
        ("authorization", format!("DPoP {forged_admin}")),
        ("dpop", proof),
    ];
    let answer = get(&attacker.http, &console, &headers).await;
    let mismatch = "the token's key is not its session's";
    answer.assert_refused(StatusCode::UNAUTHORIZED, "invalid_token", mismatch);
    assert_admin_refused(
        &last_audited(server, "admin_refused"),
        &admin_sub,
        "127.0.0.9",
        "invalid_token",
        "session_key_mismatch",
        mismatch,
    );
}

/// Gives the admin's session a step-up, as revoke-all and key rotation
/// require: enrolls a TOTP secret (the first factor may be enrolled from a
/// fresh session) and steps up with the code an authenticator app would
/// show.
async fn step_up_with_totp(server: &Server, admin: &Agent, token: &str) {
    let now = server.now();
    let enrolled = admin
        .admin("POST", "/admin/step-up/totp", token, None, now)
        .await
        .unwrap();
    let uri = enrolled["otpauth_uri"].as_str().unwrap();
    let code = holdfast_server::step_up::totp::code_for_uri(uri, now).unwrap();
    let body = json!({"method": "totp", "code": code});
    let granted = admin
        .admin("POST", "/admin/step-up", token, Some(body), now)
        .await
        .unwrap();
    assert_eq!(granted["method"], "totp");
}

#[tokio::test]
async fn attack_revoke_all_after_signing_key_compromise_leaves_no_old_token_usable() {
    let server = Server::start(|_| {}).await;
    let mut admin = admin_agent(&server).await;
    let mut alice = enrolled_agent(&server, &mut admin, "alice").await;
    let mut bob = enrolled_agent(&server, &mut admin, "bob").await;
    let upstream = Upstream::start(Duration::ZERO).await;
    let proxy = Proxy::start(&server, &upstream).await;
    let service = LayerService::start(&server).await;
    let now = server.now();
    let alice_old = alice.login(now).await.unwrap();
    let bob_old = bob.login(now).await.unwrap();
    let admin_old = admin.login(now).await.unwrap();
    let stolen = steal_signing_key(&server);
    let (admin_sub, _, _) = identity(&server, &admin_old.access).await;
    for (agent, tokens) in [(&alice, &alice_old), (&bob, &bob_old)] {
        assert_eq!(
            proxy.send(agent, &tokens.access, "/orders").await.status,
            StatusCode::OK
        );
        assert_eq!(
            service.send(agent, &tokens.access).await.status,
            StatusCode::OK
        );
    }

    // The compromise is found a second later. The admin authenticates
    // afresh (step-up), rotates the signing key, and revokes everything
    // issued until now.
    server.issuer.clock.advance(1);
    let at = server.now();
    let fresh = admin.login(at).await.unwrap();
    step_up_with_totp(&server, &admin, &fresh.access).await;
    let rotated = admin
        .admin("POST", "/admin/keys/rotate", &fresh.access, None, at)
        .await
        .unwrap();
    let new_kid = rotated["kid"].as_str().unwrap();
    assert_ne!(new_kid, stolen.1);
    let started = Instant::now();
    let revoked = admin
        .admin(
            "POST",
            "/admin/revoke-all",
            &fresh.access,
            Some(json!({"reason": "signing key compromise"})),
            at,
        )
        .await
        .unwrap();
    let answered = started.elapsed();
    assert_eq!(revoked["kind"], "all_before");
    assert_eq!(revoked["before"], at.as_secs());

    // End to end: until the proxy refuses an old token.
    let revoked_all = "the token was issued before a revoke-all";
    let mut to_proxy = None;
    eventually("the proxy refuses old tokens", async || {
        let answer = proxy.send(&alice, &alice_old.access, "/orders").await;
        if answer.status == StatusCode::OK {
            return false;
        }
        to_proxy = Some(started.elapsed());
        answer.assert_refused(StatusCode::UNAUTHORIZED, "invalid_token", revoked_all);
        true
    })
    .await;
    let mut to_layer = None;
    eventually("the layer refuses old tokens", async || {
        let answer = service.send(&alice, &alice_old.access).await;
        if answer.status == StatusCode::OK {
            return false;
        }
        to_layer = Some(started.elapsed());
        answer.assert_refused(StatusCode::UNAUTHORIZED, "invalid_token", revoked_all);
        true
    })
    .await;
    println!(
        "revoke-all: the admin API answered in {answered:?}; the proxy refused an old token \
         {:?} and the VerifierLayer service {:?} after the request was sent",
        to_proxy.unwrap(),
        to_layer.unwrap()
    );

    // No old token is usable anywhere: not at the proxy, not behind the
    // layer, not at introspection, not for a refresh, not at the admin API.
    let calls = upstream.calls();
    for (agent, tokens) in [(&alice, &alice_old), (&bob, &bob_old), (&admin, &admin_old)] {
        proxy
            .send(agent, &tokens.access, "/orders")
            .await
            .assert_refused(StatusCode::UNAUTHORIZED, "invalid_token", revoked_all);
        service.send(agent, &tokens.access).await.assert_refused(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            revoked_all,
        );
        assert_eq!(
            server.introspect(&tokens.access).await,
            json!({"active": false})
        );
    }
    assert_eq!(upstream.calls(), calls);
    assert!(service.layer.metrics().refused("revoked_all") >= 4);
    let refused = alice.refresh(at, &alice_old.refresh).await.unwrap_err();
    assert_eq!(
        (refused.error.as_str(), refused.description()),
        ("invalid_grant", "the session was revoked (revoke-all)")
    );
    let refused = admin
        .admin("GET", "/admin/devices", &admin_old.access, None, at)
        .await
        .unwrap_err();
    assert_eq!(
        (
            refused.status,
            refused.error.as_str(),
            refused.description()
        ),
        (
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the session was revoked (revoke-all)"
        )
    );
    assert_admin_refused(
        &last_audited(&server, "admin_refused"),
        &admin_sub,
        "127.0.0.1",
        "invalid_token",
        "session_revoked",
        "the session was revoked (revoke-all)",
    );
    // The stolen (now retired) key still mints nothing usable without an
    // enrolled key, whatever `iat` the thief writes.
    let attacker = Agent::at(&server.url, None);
    let forged = mint(
        &stolen,
        &server.url,
        ("p-attacker", "s-attacker", "d-attacker"),
        attacker.key.public_jwk().thumbprint(),
        server.now(),
    );
    proxy
        .send(&attacker, &forged, "/orders")
        .await
        .assert_refused(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the token is bound to a key that is not enrolled",
        );

    // On the record: the rotation and the revoke-all, by the admin.
    let rotation = server
        .audited("admin_action")
        .into_iter()
        .find(|r| r.entry.details["action"] == "keys_rotated")
        .unwrap()
        .entry;
    assert_eq!(rotation.actor, format!("admin:{admin_sub}"));
    assert_eq!(rotation.details["kid"], new_kid);
    // (Sessions begun in the very second of `before` follow as session
    // revocations: look for the revoke-all itself.)
    let revocation = server
        .audited("revocation")
        .into_iter()
        .find(|r| r.entry.details["target"] == "all_before")
        .unwrap()
        .entry;
    assert_eq!(revocation.actor, format!("admin:{admin_sub}"));
    assert_eq!(revocation.details["before"], at.as_secs());
    assert_eq!(revocation.details["note"], "signing key compromise");

    // Recovery: a session begun after the instant gets a token signed with
    // the new key, and it passes once the proxy has fetched the new key
    // (its first sight of the new `kid` triggers the fetch).
    server.issuer.clock.advance(1);
    proxy.synced().await;
    let renewed = alice.login(server.now()).await.unwrap();
    let header = renewed.access.split('.').next().unwrap();
    let header: Value =
        serde_json::from_slice(&base64ct::Base64UrlUnpadded::decode_vec(header).unwrap()).unwrap();
    assert_eq!(header["kid"], new_kid);
    eventually("the proxy accepts the new key", async || {
        let answer = proxy.send(&alice, &renewed.access, "/orders").await;
        answer.status == StatusCode::OK
    })
    .await;
}
