//! Where a request comes from: a session's token used from another address
//! under `strict` and `same-prefix` IP binding, and the admin API called
//! from outside its network allowlist.

use std::time::Duration;

use holdfast_server::config::IpBinding;
use reqwest::StatusCode;
use serde_json::json;

use super::stage::{
    Answer, Proxy, Upstream, assert_admin_refused, client_from, eventually, get, identity,
    last_audited,
};
use crate::issuer_flow::{admin_agent, enrolled_agent};
use crate::support::{RS_ID, Server};

/// The refusal of a request from outside the session's IP binding.
const OUTSIDE_BINDING: &str = "request from an address outside the session's IP binding";

/// An issuer binding device sessions with `binding`, a proxy, and alice
/// logged in from 127.0.0.1 with a token and proofs she signed but never
/// sent (lifted from a client-side log: unused, so the replay cache does
/// not stop them).
async fn bound_session(
    binding: IpBinding,
    unused_proofs: usize,
) -> (Server, Upstream, Proxy, String, Vec<String>) {
    let server = Server::start(|c| c.policy.ip_binding_device = binding).await;
    let mut admin = admin_agent(&server).await;
    let mut alice = enrolled_agent(&server, &mut admin, "alice").await;
    let upstream = Upstream::start(Duration::ZERO).await;
    let proxy = Proxy::start(&server, &upstream).await;
    let token = alice.login(server.now()).await.unwrap().access;
    let url = format!("{}/orders", proxy.url);
    let proofs = (0..unused_proofs)
        .map(|_| alice.proof("GET", &url, Some(&token), server.now()))
        .collect();
    (server, upstream, proxy, token, proofs)
}

/// The lifted `token` and `proof` sent to the proxy from `from`.
async fn send_lifted(proxy: &Proxy, from: &str, token: &str, proof: &str) -> Answer {
    let headers = [
        ("authorization", format!("DPoP {token}")),
        ("dpop", proof.to_owned()),
    ];
    get(
        &client_from(from),
        &format!("{}/orders", proxy.url),
        &headers,
    )
    .await
}

/// Waits for the issuer's record of the deviation the proxy reported, and
/// checks it.
async fn assert_deviation_audited(server: &Server, sid: &str, request_ip: &str) {
    eventually("the issuer audits the reported deviation", async || {
        !server.audited("ip_deviation").is_empty()
    })
    .await;
    let deviation = last_audited(server, "ip_deviation").entry;
    assert_eq!(deviation.actor, RS_ID);
    assert_eq!(deviation.details["reported_by"], RS_ID);
    assert_eq!(deviation.details["sid"], sid);
    assert_eq!(deviation.details["session_ip"], "127.0.0.1");
    assert_eq!(deviation.details["request_ip"], request_ip);
    assert_eq!(deviation.details["action"], "session revoked");
}

#[tokio::test]
async fn attack_token_replayed_from_another_ip_under_strict_binding_is_refused() {
    let (server, upstream, proxy, token, proofs) = bound_session(IpBinding::Strict, 1).await;
    let (_, sid, _) = identity(&server, &token).await;

    // Token and an unused proof, from the next address on the same /24.
    let answer = send_lifted(&proxy, "127.0.0.2", &token, &proofs[0]).await;
    answer.assert_refused(StatusCode::UNAUTHORIZED, "invalid_token", OUTSIDE_BINDING);
    assert_eq!(upstream.calls(), 0);
    assert_eq!(proxy.refused("ip_deviation").await, 1);
    assert_deviation_audited(&server, &sid, "127.0.0.2").await;
    // Default policy: the session is revoked, at the issuer at once.
    assert_eq!(server.introspect(&token).await, json!({"active": false}));
}

#[tokio::test]
async fn attack_token_replayed_from_another_ip_under_same_prefix_binding_is_refused() {
    let (server, upstream, proxy, token, proofs) = bound_session(IpBinding::SamePrefix, 2).await;
    let (_, sid, _) = identity(&server, &token).await;

    // Inside the session's /24 (`policy.ipv4_prefix`): the tolerance this
    // policy grants on purpose (a renumbered laptop), so this one passes.
    let answer = send_lifted(&proxy, "127.0.0.2", &token, &proofs[0]).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(upstream.calls(), 1);
    // From another /24: refused, reported, audited, revoked.
    let answer = send_lifted(&proxy, "127.0.1.2", &token, &proofs[1]).await;
    answer.assert_refused(StatusCode::UNAUTHORIZED, "invalid_token", OUTSIDE_BINDING);
    assert_eq!(upstream.calls(), 1);
    assert_eq!(proxy.refused("ip_deviation").await, 1);
    assert_deviation_audited(&server, &sid, "127.0.1.2").await;
    assert_eq!(server.introspect(&token).await, json!({"active": false}));
}

#[tokio::test]
async fn attack_admin_api_from_a_non_allowlisted_address_is_refused() {
    let server = Server::start(|c| c.admin.allowed_cidrs = vec!["127.0.0.1/32".into()]).await;
    let mut admin = admin_agent(&server).await;
    let now = server.now();
    let tokens = admin.login(now).await.unwrap();

    // A genuine admin token with a fresh, valid proof, sent from an
    // address outside `admin.allowed_cidrs`.
    let console = format!("{}/admin/devices", server.url);
    let proof = admin.proof("GET", &console, Some(&tokens.access), now);
    let headers = [
        ("authorization", format!("DPoP {}", tokens.access)),
        ("dpop", proof),
    ];
    let outside = get(&client_from("127.0.0.2"), &console, &headers).await;
    let denied = "the admin API is not available from this address";
    outside.assert_refused(StatusCode::FORBIDDEN, "access_denied", denied);
    assert_admin_refused(
        &last_audited(&server, "admin_refused"),
        "anonymous",
        "127.0.0.2",
        "access_denied",
        "ip_not_allowed",
        denied,
    );

    // The allowlist is checked first: the refused request spent nothing,
    // so the very same request from inside is served.
    let inside = get(&admin.http, &console, &headers).await;
    assert_eq!(inside.status, StatusCode::OK, "{inside:?}");
    assert!(inside.body["devices"].is_array(), "{inside:?}");
}
