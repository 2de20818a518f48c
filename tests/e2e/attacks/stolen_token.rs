//! A stolen access token without its key: with a proof by the thief's own
//! key, with no proof, and sent as a bearer token.

use std::time::Duration;

use reqwest::StatusCode;

use super::stage::{Proxy, Upstream, assert_admin_refused, get, identity, ip, last_audited};
use crate::issuer_flow::{admin_agent, enrolled_agent};
use crate::support::{Agent, Server};

/// An issuer whose admin API answers all of loopback (the thief sends from
/// 127.0.0.9), alice and the admin logged in, a proxy in front of a
/// service.
pub(super) struct Theft {
    pub(super) server: Server,
    pub(super) upstream: Upstream,
    pub(super) proxy: Proxy,
    pub(super) alice_token: String,
    pub(super) admin_token: String,
    pub(super) admin_sub: String,
    pub(super) thief: Agent,
}

pub(super) async fn theft() -> Theft {
    let server = Server::start(|c| c.admin.allowed_cidrs = vec!["127.0.0.0/8".into()]).await;
    let mut admin = admin_agent(&server).await;
    let mut alice = enrolled_agent(&server, &mut admin, "alice").await;
    let upstream = Upstream::start(Duration::ZERO).await;
    let proxy = Proxy::start(&server, &upstream).await;
    let now = server.now();
    let alice_token = alice.login(now).await.unwrap().access;
    let admin_token = admin.login(now).await.unwrap().access;
    let (admin_sub, _, _) = identity(&server, &admin_token).await;
    let thief = Agent::at(&server.url, Some(ip("127.0.0.9")));
    Theft {
        server,
        upstream,
        proxy,
        alice_token,
        admin_token,
        admin_sub,
        thief,
    }
}

#[tokio::test]
async fn attack_stolen_token_with_the_attackers_own_proof_is_refused_as_jkt_mismatch() {
    let t = theft().await;
    let mismatch = "DPoP proof key does not match the key the access token is bound to";

    // A well-formed, fresh proof for this very request, with `ath` of the
    // stolen token: only the key is wrong.
    let answer = t.proxy.send(&t.thief, &t.alice_token, "/orders").await;
    answer.assert_refused(StatusCode::UNAUTHORIZED, "invalid_dpop_proof", mismatch);
    assert_eq!(t.upstream.calls(), 0);
    assert_eq!(t.proxy.refused("jkt_mismatch").await, 1);

    let console = format!("{}/admin/devices", t.server.url);
    let proof = t
        .thief
        .proof("GET", &console, Some(&t.admin_token), t.server.now());
    let headers = [
        ("authorization", format!("DPoP {}", t.admin_token)),
        ("dpop", proof),
    ];
    let answer = get(&t.thief.http, &console, &headers).await;
    answer.assert_refused(StatusCode::UNAUTHORIZED, "invalid_dpop_proof", mismatch);
    assert_admin_refused(
        &last_audited(&t.server, "admin_refused"),
        &t.admin_sub,
        "127.0.0.9",
        "invalid_dpop_proof",
        "jkt_mismatch",
        mismatch,
    );
}

#[tokio::test]
async fn attack_stolen_token_without_a_proof_is_refused() {
    let t = theft().await;
    let missing = "missing DPoP proof";
    let headers = [("authorization", format!("DPoP {}", t.alice_token))];
    let answer = get(&t.thief.http, &format!("{}/orders", t.proxy.url), &headers).await;
    answer.assert_refused(StatusCode::UNAUTHORIZED, "invalid_dpop_proof", missing);
    assert_eq!(t.upstream.calls(), 0);
    assert_eq!(t.proxy.refused("missing_dpop_header").await, 1);

    // At the admin API the proof is looked for before the token is checked,
    // so the record cannot name anyone.
    let headers = [("authorization", format!("DPoP {}", t.admin_token))];
    let console = format!("{}/admin/devices", t.server.url);
    let answer = get(&t.thief.http, &console, &headers).await;
    answer.assert_refused(StatusCode::UNAUTHORIZED, "invalid_dpop_proof", missing);
    assert_admin_refused(
        &last_audited(&t.server, "admin_refused"),
        "anonymous",
        "127.0.0.9",
        "invalid_dpop_proof",
        "missing_dpop_header",
        missing,
    );
}

#[tokio::test]
async fn attack_stolen_token_sent_as_bearer_is_refused_without_downgrade() {
    let t = theft().await;
    // Even with a valid proof alongside (the thief replays everything the
    // capture had), `Bearer` is never accepted for a DPoP-bound token.
    let url = format!("{}/orders", t.proxy.url);
    for with_proof in [false, true] {
        let mut headers = vec![("authorization", format!("Bearer {}", t.alice_token))];
        if with_proof {
            let proof = t
                .thief
                .proof("GET", &url, Some(&t.alice_token), t.server.now());
            headers.push(("dpop", proof));
        }
        let answer = get(&t.thief.http, &url, &headers).await;
        answer.assert_refused(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "a DPoP-bound access token must be sent with the DPoP scheme, not Bearer",
        );
    }
    assert_eq!(t.upstream.calls(), 0);
    assert_eq!(t.proxy.refused("bearer_downgrade").await, 2);

    let headers = [("authorization", format!("Bearer {}", t.admin_token))];
    let console = format!("{}/admin/devices", t.server.url);
    let answer = get(&t.thief.http, &console, &headers).await;
    let bearer = "admin tokens are DPoP-bound: use the DPoP scheme, not Bearer";
    answer.assert_refused(StatusCode::BAD_REQUEST, "invalid_request", bearer);
    assert_admin_refused(
        &last_audited(&t.server, "admin_refused"),
        "anonymous",
        "127.0.0.9",
        "invalid_request",
        "bearer_scheme",
        bearer,
    );
}
