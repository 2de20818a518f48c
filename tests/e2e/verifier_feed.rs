//! The verifier's feed follower against a real issuer on 127.0.0.1:
//! `connect` loads the JWKS, the feed and the enrolled keys; admin actions
//! reach the verifier's registry through the long-poll (the propagation
//! time is printed, not asserted); and with the issuer gone the verifier
//! fails closed once `max_staleness` has passed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use getrandom::SysRng;
use holdfast_proto::{AccessToken, Clock as _, Htu, Jkt, ProofRequest, UnixTime, build_proof};
use holdfast_verifier::registry::RegistryRefusal;
use holdfast_verifier::{FeedHandle, RequestParts, VerifiedIdentity, Verifier, VerifyError};

use crate::issuer_flow::{admin_agent, enrolled_agent};
use crate::support::{Agent, Server};

/// The protected service's base URL (`htu` prefix); nothing listens there.
const BASE: &str = "https://api.example";
/// How long a change may take to reach the verifier before the test fails.
const DEADLINE: Duration = Duration::from_secs(5);

/// Connects a verifier to `server`, on the issuer's (test) clock.
async fn follow(server: &Server, max_staleness: u64) -> (Arc<Verifier>, FeedHandle) {
    crate::support::follow(server, BASE, |config, _| {
        config.max_staleness = Some(max_staleness);
    })
    .await
}

/// `GET /orders` with `token` and a fresh proof by `agent` at `now`.
fn request(
    verifier: &Verifier,
    agent: &Agent,
    token: &str,
    now: UnixTime,
) -> Result<VerifiedIdentity, VerifyError> {
    let htu = Htu::parse(&format!("{BASE}/orders")).unwrap();
    let access_token = AccessToken::new(token);
    let proof_request = ProofRequest {
        htm: "GET",
        htu: &htu,
        nonce: None,
        access_token: Some(&access_token),
    };
    let proof = build_proof(&agent.key, &mut SysRng, &proof_request, now).unwrap();
    let authorization = format!("DPoP {token}");
    verifier.check_request(&RequestParts {
        method: "GET",
        path: "/orders",
        authorization: vec![authorization.as_bytes()],
        dpop: vec![proof.as_bytes()],
        // Where the agents' sessions begin: admin sessions are IP-bound.
        client_ip: Some(std::net::Ipv4Addr::LOCALHOST.into()),
    })
}

/// Polls `done` until it holds; returns how long that took. Fails after
/// [`DEADLINE`].
async fn until(what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < DEADLINE,
            "{what}: not seen within {DEADLINE:?}"
        );
        tokio::task::yield_now().await;
    }
    started.elapsed()
}

fn jkt(agent: &Agent) -> Jkt {
    agent.key_jkt().parse().unwrap()
}

#[tokio::test]
async fn admin_actions_reach_the_verifier_through_the_feed() {
    let server = Server::start(|_| {}).await;
    let mut admin = admin_agent(&server).await;
    let (verifier, feed) = follow(&server, 30).await;
    let registry = verifier.registry().clone();
    let now = server.now();

    // Enrolled before `connect`: in the registry from the start.
    let entry = registry.device(&jkt(&admin)).unwrap();
    assert_eq!(entry.device_id, admin.client_id);
    assert_eq!(entry.state, "active");
    assert!(!entry.principal_disabled);

    // Enrolled after: pushed by a `device_enrolled` event.
    let mut alice = enrolled_agent(&server, &mut admin, "alice").await;
    let took = until("alice's enrollment", || {
        registry.device(&jkt(&alice)).is_some()
    })
    .await;
    println!("propagation: device_enrolled reached the registry in {took:?}");

    let tokens = alice.login(now).await.unwrap();
    let id = request(&verifier, &alice, &tokens.access, now).unwrap();
    assert_eq!(id.client_id, alice.client_id);
    assert_eq!(id.jkt, jkt(&alice));

    // The admin revokes alice's session.
    let admin_tokens = admin.login(now).await.unwrap();
    let started = Instant::now();
    admin
        .admin(
            "POST",
            &format!("/admin/sessions/{}/revoke", id.sid),
            &admin_tokens.access,
            None,
            now,
        )
        .await
        .unwrap();
    let answered = started.elapsed();
    let took = until("the session revocation", || {
        request(&verifier, &alice, &tokens.access, now)
            == Err(VerifyError::Registry(RegistryRefusal::SessionRevoked))
    })
    .await;
    println!(
        "propagation: session revocation refused {took:?} after the admin API answered \
         ({:?} after the request was sent)",
        answered + took
    );

    // Disable, enable, revoke the device: each state reaches the verifier.
    let tokens = alice.login(now).await.unwrap();
    request(&verifier, &alice, &tokens.access, now).unwrap();
    let device_path = format!("/admin/devices/{}", alice.client_id);
    for (action, refused) in [("disable", true), ("enable", false), ("revoke", true)] {
        let started = Instant::now();
        admin
            .admin(
                "POST",
                &format!("{device_path}/{action}"),
                &admin_tokens.access,
                None,
                now,
            )
            .await
            .unwrap();
        let took = until(&format!("device {action}"), || {
            let result = request(&verifier, &alice, &tokens.access, now);
            if refused {
                result == Err(VerifyError::Registry(RegistryRefusal::DeviceNotActive))
            } else {
                result.is_ok()
            }
        })
        .await;
        println!(
            "propagation: device {action} reached the verifier {took:?} after the admin API \
             answered ({:?} in all)",
            started.elapsed()
        );
    }
    assert_eq!(registry.device(&jkt(&alice)).unwrap().state, "revoked");

    let stats = feed.stats();
    assert_eq!(stats.failures, 0);
    assert!(!stats.failing);
    assert!(stats.events_applied >= 6, "{stats:?}");
    assert_eq!(stats.last_sync, Some(now));
    assert_eq!(stats.jwks.fetches, 1);
    feed.shutdown().await;
}

#[tokio::test]
async fn verifier_fails_closed_when_the_issuer_is_gone_past_max_staleness() {
    let server = Server::start(|_| {}).await;
    let mut admin = admin_agent(&server).await;
    let (verifier, feed) = follow(&server, 2).await;
    let clock = server.issuer.clock.clone();
    let tokens = admin.login(clock.now()).await.unwrap();
    request(&verifier, &admin, &tokens.access, clock.now()).unwrap();

    // The issuer stops (waiting for the follower's long-poll to end), then
    // time passes beyond the bound with no synchronisation.
    server.stop().await;
    until("the follower to notice", || feed.stats().failing).await;
    clock.advance(3);
    let err = request(&verifier, &admin, &tokens.access, clock.now()).unwrap_err();
    assert_eq!(
        err,
        VerifyError::Registry(RegistryRefusal::Stale { age: 3 })
    );
    assert_eq!(err.status(), 503);
    assert_eq!(err.wire_code(), Some("temporarily_unavailable"));
    assert!(feed.stats().failures >= 1);
    feed.shutdown().await;
}
