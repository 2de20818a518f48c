//! The issuer end to end over real HTTP on 127.0.0.1: bootstrap → enroll →
//! DPoP-bound sessions → refresh rotation → theft detection → revocation,
//! and each attack refused with its exact wire error.

use holdfast_server::enrollment::bootstrap_admin;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Agent, Server, answer, assertion_form};

/// Bootstraps an admin and enrolls their device; returns the agent.
pub(crate) async fn admin_agent(server: &Server) -> Agent {
    let code = bootstrap_admin(&server.issuer.state, "root", server.now()).unwrap();
    let mut admin = Agent::new(server);
    admin.enroll(server, &code).await.unwrap();
    admin
}

/// Has the admin create a code for `principal` and enrolls a new agent with it.
pub(crate) async fn enrolled_agent(server: &Server, admin: &mut Agent, principal: &str) -> Agent {
    let tokens = admin.login(server.now()).await.unwrap();
    let code = admin
        .admin(
            "POST",
            "/admin/enrollment-codes",
            &tokens.access,
            Some(json!({"principal": principal, "roles": ["device"], "kinds": ["software"]})),
            server.now(),
        )
        .await
        .unwrap();
    let mut agent = Agent::new(server);
    agent
        .enroll(server, code["code"].as_str().unwrap())
        .await
        .unwrap();
    agent
}

#[tokio::test]
async fn full_lifecycle_of_a_device_session() {
    let server = Server::start(|_| {}).await;
    let mut admin = admin_agent(&server).await;
    let mut alice = enrolled_agent(&server, &mut admin, "alice").await;
    let now = server.now();

    // client_credentials: the first try is refused for a nonce, the retry works.
    let tokens = alice.login(now).await.unwrap();
    let active = server.introspect(&tokens.access).await;
    assert_eq!(active["active"], true, "{active}");
    assert_eq!(active["token_type"], "DPoP");
    assert_eq!(active["cnf"]["jkt"], alice.key_jkt());
    assert_eq!(active["client_id"], alice.client_id);

    // Refresh rotates the refresh token.
    let rotated = alice.refresh(now, &tokens.refresh).await.unwrap();
    assert_ne!(rotated.refresh, tokens.refresh);
    assert_eq!(server.introspect(&rotated.access).await["active"], true);

    // Reusing the old refresh token is theft: the whole session dies.
    let reuse = alice.refresh(now, &tokens.refresh).await.unwrap_err();
    assert_eq!(
        (reuse.status, reuse.error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    assert_eq!(
        server.introspect(&rotated.access).await,
        json!({"active": false})
    );
    let after = alice.refresh(now, &rotated.refresh).await.unwrap_err();
    assert_eq!(after.error, "invalid_grant");

    // A new session; then the admin revokes the device: refresh fails.
    let fresh = alice.login(now).await.unwrap();
    let admin_tokens = admin.login(now).await.unwrap();
    let path = format!("/admin/devices/{}/revoke", alice.client_id);
    admin
        .admin("POST", &path, &admin_tokens.access, None, now)
        .await
        .unwrap();
    let refused = alice.refresh(now, &fresh.refresh).await.unwrap_err();
    assert_eq!(refused.error, "invalid_grant");
    assert_eq!(server.introspect(&fresh.access).await["active"], false);
    let relogin = alice.login(now).await.unwrap_err();
    assert_eq!(
        (relogin.status, relogin.error.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );

    // Revoke-all before T: every older token is inactive at introspection.
    let mut bob = enrolled_agent(&server, &mut admin, "bob").await;
    let bob_tokens = bob.login(now).await.unwrap();
    server.issuer.clock.advance(2);
    let later = server.now();
    let admin_tokens = admin.login(later).await.unwrap();
    // Revoke-all needs a step-up of this session: enroll TOTP (the first
    // factor needs only a fresh session) and use the current code.
    let enrolled = admin
        .admin(
            "POST",
            "/admin/step-up/totp",
            &admin_tokens.access,
            None,
            later,
        )
        .await
        .unwrap();
    let uri = enrolled["otpauth_uri"].as_str().unwrap();
    let code = holdfast_server::step_up::totp::code_for_uri(uri, later).unwrap();
    admin
        .admin(
            "POST",
            "/admin/step-up",
            &admin_tokens.access,
            Some(json!({"method": "totp", "code": code})),
            later,
        )
        .await
        .unwrap();
    admin
        .admin(
            "POST",
            "/admin/revoke-all",
            &admin_tokens.access,
            Some(json!({"before": later})),
            later,
        )
        .await
        .unwrap();
    assert_eq!(server.introspect(&bob_tokens.access).await["active"], false);
    assert_eq!(
        bob.refresh(later, &bob_tokens.refresh)
            .await
            .unwrap_err()
            .error,
        "invalid_grant"
    );
    // Sessions begun after T work.
    server.issuer.clock.advance(1);
    let after_t = bob.login(server.now()).await.unwrap();
    assert_eq!(server.introspect(&after_t.access).await["active"], true);
}

#[tokio::test]
async fn refuses_replayed_proof_and_proof_by_another_key() {
    let server = Server::start(|_| {}).await;
    let mut admin = admin_agent(&server).await;
    let mut alice = enrolled_agent(&server, &mut admin, "alice").await;
    let now = server.now();
    alice.login(now).await.unwrap(); // learns a nonce
    let url = format!("{}/token", server.url);

    // A proof used once is refused the second time.
    let assertion = alice.assertion(now, "a-1");
    let proof = alice.proof("POST", &url, None, now);
    let form = assertion_form(&assertion);
    let first = alice.post_token(&proof, &form).await;
    assert_eq!(first.status(), StatusCode::OK);
    let assertion2 = alice.assertion(now, "a-2");
    let form2 = assertion_form(&assertion2);
    let replay = answer(alice.post_token(&proof, &form2).await)
        .await
        .unwrap_err();
    assert_eq!(
        (replay.status, replay.error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_dpop_proof")
    );
    assert!(replay.description().contains("already been used"));

    // The client assertion jti is single-use too.
    let proof = alice.proof("POST", &url, None, now);
    let again = answer(alice.post_token(&proof, &form).await)
        .await
        .unwrap_err();
    assert_eq!(
        (again.status, again.error.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );

    // A proof by another key than the client's enrolled key.
    let mut thief = Agent::new(&server);
    thief.nonce = alice.nonce.clone();
    let assertion3 = alice.assertion(now, "a-3");
    let form3 = assertion_form(&assertion3);
    let proof = thief.proof("POST", &url, None, now);
    let other_key = answer(alice.post_token(&proof, &form3).await)
        .await
        .unwrap_err();
    assert_eq!(other_key.error, "invalid_dpop_proof");
    assert!(other_key.description().contains("does not match the key"));

    // An expired client assertion.
    let old = alice.assertion(now.minus(120), "a-4");
    let proof = alice.proof("POST", &url, None, now);
    let expired = answer(alice.post_token(&proof, &assertion_form(&old)).await)
        .await
        .unwrap_err();
    assert_eq!(expired.error, "invalid_client");
    assert!(expired.description().contains("expired"));
}

#[tokio::test]
async fn missing_nonce_then_retry_and_wrong_htu() {
    let server = Server::start(|_| {}).await;
    let mut admin = admin_agent(&server).await;
    let now = server.now();
    let url = format!("{}/token", server.url);
    let assertion = admin.assertion(now, "n-1");
    let form = assertion_form(&assertion);
    let response = admin
        .post_token(&admin.proof("POST", &url, None, now), &form)
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let nonce = response
        .headers()
        .get("dpop-nonce")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "use_dpop_nonce");
    admin.nonce = Some(nonce);
    // The same assertion works on the retry: it was not burnt.
    let retry = admin
        .post_token(&admin.proof("POST", &url, None, now), &form)
        .await;
    assert_eq!(retry.status(), StatusCode::OK);

    // A proof for the URL the client thinks it called, not the configured one.
    let wrong = admin.proof("POST", "https://evil.example/token", None, now);
    let assertion = admin.assertion(now, "n-2");
    let refused = answer(admin.post_token(&wrong, &assertion_form(&assertion)).await)
        .await
        .unwrap_err();
    assert_eq!(refused.error, "invalid_dpop_proof");
    assert!(refused.description().contains("htu"));
}

#[tokio::test]
async fn strict_ip_binding_refuses_refresh_from_another_address() {
    let server = Server::start(|c| {
        c.policy.ip_binding_device = holdfast_server::config::IpBinding::Strict;
    })
    .await;
    let mut admin = admin_agent(&server).await;
    let mut alice = enrolled_agent(&server, &mut admin, "alice").await;
    let now = server.now();
    let tokens = alice.login(now).await.unwrap();
    let mut elsewhere = alice.moved_to("127.0.0.2".parse().unwrap());
    let refused = elsewhere.refresh(now, &tokens.refresh).await.unwrap_err();
    assert_eq!(refused.error, "invalid_grant");
    assert!(refused.description().contains("IP binding"));
    // Default policy revokes the session: even the right address fails now.
    assert_eq!(
        alice.refresh(now, &tokens.refresh).await.unwrap_err().error,
        "invalid_grant"
    );
    let audit = server.issuer.state.store.audit_range(1, 1000).unwrap();
    let deviation = audit
        .iter()
        .find(|r| r.entry.event == "ip_deviation")
        .unwrap();
    assert_eq!(deviation.entry.details["session_ip"], "127.0.0.1");
    assert_eq!(deviation.entry.details["request_ip"], "127.0.0.2");
}

#[tokio::test]
async fn admin_api_refuses_outsiders_and_device_tokens() {
    let server = Server::start(|c| c.admin.allowed_cidrs = vec!["127.0.0.1/32".into()]).await;
    let mut admin = admin_agent(&server).await;
    let mut alice = enrolled_agent(&server, &mut admin, "alice").await;
    let now = server.now();

    // A device (non-admin) token.
    let tokens = alice.login(now).await.unwrap();
    let denied = alice
        .admin("GET", "/admin/devices", &tokens.access, None, now)
        .await
        .unwrap_err();
    assert_eq!(
        (denied.status, denied.error.as_str()),
        (StatusCode::FORBIDDEN, "access_denied")
    );

    // The admin, from an address outside the allowlist.
    let outside = admin.moved_to("127.0.0.2".parse().unwrap());
    let admin_tokens = admin.login(now).await.unwrap();
    let denied = outside
        .admin("GET", "/admin/devices", &admin_tokens.access, None, now)
        .await
        .unwrap_err();
    assert_eq!(
        (denied.status, denied.error.as_str()),
        (StatusCode::FORBIDDEN, "access_denied")
    );
    // From inside it works.
    let devices = admin
        .admin("GET", "/admin/devices", &admin_tokens.access, None, now)
        .await
        .unwrap();
    assert!(devices.to_string().contains(&alice.client_id));
}

#[tokio::test]
async fn restart_keeps_sessions_devices_and_replay_cache() {
    let server = Server::start(|_| {}).await;
    let mut admin = admin_agent(&server).await;
    let mut alice = enrolled_agent(&server, &mut admin, "alice").await;
    let now = server.now();
    let tokens = alice.login(now).await.unwrap();
    let url = format!("{}/token", server.url);

    // A refresh with proof P, accepted before the restart.
    let proof = alice.proof("POST", &url, None, now);
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens.refresh.as_str()),
    ];
    let ok = answer(alice.post_token(&proof, &form).await).await.unwrap();
    let refresh = ok["refresh_token"].as_str().unwrap().to_owned();
    let address = server.address();
    alice.http = reqwest::Client::new();
    admin.http = reqwest::Client::new();
    let (dir, clock) = server.stop().await;

    let server = Server::start_at(dir, address, |_| {}).await;
    server.issuer.clock.set(clock);

    // P again, with the (valid) rotated refresh token: the replay cache
    // survived the restart, so it is refused.
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
    ];
    let replay = answer(alice.post_token(&proof, &form).await)
        .await
        .unwrap_err();
    assert_eq!(replay.error, "invalid_dpop_proof");
    assert!(replay.description().contains("already been used"));

    // The device, the session and its refresh token survived too.
    alice.refresh(server.now(), &refresh).await.unwrap();
    assert!(
        server
            .issuer
            .state
            .store
            .device(&alice.client_id.parse().unwrap())
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn audience_is_configurable_per_client() {
    let server = Server::start(|c| {
        c.tokens
            .client_audience
            .insert("alice".into(), vec!["payments-api".into()]);
    })
    .await;
    let mut admin = admin_agent(&server).await;
    let mut alice = enrolled_agent(&server, &mut admin, "alice").await;
    let now = server.now();
    let alice_tokens = alice.login(now).await.unwrap();
    let introspected = server.introspect(&alice_tokens.access).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["aud"], "payments-api");
    // Everyone else gets the default audience.
    let admin_tokens = admin.login(now).await.unwrap();
    assert_eq!(
        server.introspect(&admin_tokens.access).await["aud"],
        "holdfast"
    );
}
