//! A token and its proof lifted from a HAR capture that reached a support
//! desk unscrubbed (the breach that motivates Holdfast), replayed within
//! the proof's window and after it.

use std::time::Duration;

use holdfast_client::har;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::stage::{
    Answer, Proxy, Upstream, assert_admin_refused, client_from, get, identity, last_audited,
};
use crate::issuer_flow::{admin_agent, enrolled_agent};
use crate::support::{Agent, Server};

/// One HAR 1.2 entry as a browser's network panel saves it: a `GET` with
/// `Authorization: DPoP …` and `DPoP` in the clear, and its answer.
fn har_entry(url: &str, token: &str, proof: &str, status: StatusCode) -> Value {
    json!({
        "startedDateTime": "2025-11-24T16:00:00.000Z",
        "time": 12,
        "request": {
            "method": "GET",
            "url": url,
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": [
                {"name": "Accept", "value": "application/json"},
                {"name": "Authorization", "value": format!("DPoP {token}")},
                {"name": "DPoP", "value": proof},
                {"name": "User-Agent", "value": "Mozilla/5.0 (X11; Linux x86_64)"},
            ],
            "queryString": [],
            "headersSize": -1,
            "bodySize": 0,
        },
        "response": {
            "status": status.as_u16(),
            "statusText": status.canonical_reason().unwrap_or_default(),
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": [{"name": "Content-Type", "value": "application/json"}],
            "content": {"size": 2, "mimeType": "application/json", "text": "{}"},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": 2,
        },
        "cache": {},
        "timings": {"send": 0, "wait": 10, "receive": 2},
    })
}

/// A HAR file of `entries`, as it reaches a support desk: JSON text.
fn har_file(entries: Vec<Value>) -> String {
    serde_json::to_string_pretty(&json!({
        "log": {
            "version": "1.2",
            "creator": {"name": "Firefox", "version": "145.0"},
            "pages": [],
            "entries": entries,
        }
    }))
    .unwrap()
}

/// What the attacker lifts from the HAR: the `Authorization` and `DPoP`
/// values of the request to `url`, as written there.
fn lift(har: &Value, url: &str) -> (String, String) {
    let entry = har["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["request"]["url"] == url)
        .unwrap();
    let header = |name: &str| {
        entry["request"]["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"].as_str().unwrap().eq_ignore_ascii_case(name))
            .map(|h| h["value"].as_str().unwrap().to_owned())
            .unwrap()
    };
    (header("authorization"), header("dpop"))
}

/// The victim's session as a HAR records it: one request through the proxy
/// and one to the admin console, each served (so each proof's `jti` is
/// spent). Returns the HAR text, the two URLs and the admin's `sub`.
struct Captured {
    har: String,
    service_url: String,
    console_url: String,
    admin_sub: String,
}

async fn capture(server: &Server, proxy: &Proxy, alice: &mut Agent, admin: &mut Agent) -> Captured {
    let now = server.now();
    let alice_token = alice.login(now).await.unwrap().access;
    let admin_token = admin.login(now).await.unwrap().access;
    let (admin_sub, _, _) = identity(server, &admin_token).await;

    let service_url = format!("{}/orders", proxy.url);
    let proof = alice.proof("GET", &service_url, Some(&alice_token), now);
    let headers = [
        ("authorization", format!("DPoP {alice_token}")),
        ("dpop", proof.clone()),
    ];
    let served = get(&alice.http, &service_url, &headers).await;
    assert_eq!(served.status, StatusCode::OK, "{served:?}");
    let service = har_entry(&service_url, &alice_token, &proof, served.status);

    let console_url = format!("{}/admin/devices", server.url);
    let proof = admin.proof("GET", &console_url, Some(&admin_token), now);
    let headers = [
        ("authorization", format!("DPoP {admin_token}")),
        ("dpop", proof.clone()),
    ];
    let served = get(&admin.http, &console_url, &headers).await;
    assert_eq!(served.status, StatusCode::OK, "{served:?}");
    let console = har_entry(&console_url, &admin_token, &proof, served.status);

    Captured {
        har: har_file(vec![service, console]),
        service_url,
        console_url,
        admin_sub,
    }
}

/// Replays what `lift` found in `har` for `url`, from another machine.
async fn replay_lifted(har: &Value, url: &str) -> Answer {
    let (authorization, proof) = lift(har, url);
    let headers = [("authorization", authorization), ("dpop", proof)];
    get(&client_from("127.0.0.9"), url, &headers).await
}

#[tokio::test]
async fn attack_har_token_and_proof_replayed_within_the_window_are_refused_as_replay() {
    let server = Server::start(|c| c.admin.allowed_cidrs = vec!["127.0.0.0/8".into()]).await;
    let mut admin = admin_agent(&server).await;
    let mut alice = enrolled_agent(&server, &mut admin, "alice").await;
    let upstream = Upstream::start(Duration::ZERO).await;
    let proxy = Proxy::start(&server, &upstream).await;
    let captured = capture(&server, &proxy, &mut alice, &mut admin).await;
    assert_eq!(upstream.calls(), 1);

    // The support desk's copy, read by whoever broke into it: both the
    // token and its proof are there. `har scrub` would have masked them.
    let har: Value = serde_json::from_str(&captured.har).unwrap();
    let mut scrubbed = har.clone();
    har::scrub(&mut scrubbed).unwrap();
    for url in [&captured.service_url, &captured.console_url] {
        let (authorization, proof) = lift(&har, url);
        assert!(authorization.starts_with("DPoP eyJ") && proof.starts_with("eyJ"));
        let (authorization, proof) = lift(&scrubbed, url);
        assert_eq!(authorization, har::REDACTED);
        assert_eq!(proof, har::REDACTED);
    }

    // At once, well inside the proof's 60 s window: the proxy has seen the
    // proof's jti and refuses it; the service never sees the request.
    let replayed = replay_lifted(&har, &captured.service_url).await;
    let replay = "DPoP proof has already been used (jti replayed)";
    replayed.assert_refused(StatusCode::UNAUTHORIZED, "invalid_dpop_proof", replay);
    assert_eq!(
        upstream.calls(),
        1,
        "a replayed request reached the service"
    );
    assert_eq!(proxy.refused("jti_replayed").await, 1);

    // The admin console (the original breach's target): refused, and on
    // the record with the token's subject and the replayer's address.
    let replayed = replay_lifted(&har, &captured.console_url).await;
    replayed.assert_refused(StatusCode::UNAUTHORIZED, "invalid_dpop_proof", replay);
    let record = last_audited(&server, "admin_refused");
    assert_admin_refused(
        &record,
        &captured.admin_sub,
        "127.0.0.9",
        "invalid_dpop_proof",
        "jti_replayed",
        replay,
    );
}

#[tokio::test]
async fn attack_har_token_and_proof_replayed_after_the_window_are_refused_as_stale() {
    let server = Server::start(|c| c.admin.allowed_cidrs = vec!["127.0.0.0/8".into()]).await;
    let mut admin = admin_agent(&server).await;
    let mut alice = enrolled_agent(&server, &mut admin, "alice").await;
    let upstream = Upstream::start(Duration::ZERO).await;
    let proxy = Proxy::start(&server, &upstream).await;
    let captured = capture(&server, &proxy, &mut alice, &mut admin).await;
    let iat = server.now();
    let har: Value = serde_json::from_str(&captured.har).unwrap();

    // 61 s later: past the 60 s window, while the tokens (300 s) are still
    // valid. The proof is refused for its age before the replay cache is
    // even asked (the cache need only remember a jti for the window).
    server.issuer.clock.advance(61);
    proxy.synced().await;
    let now = server.now();
    let stale = format!("DPoP proof is too old: iat {iat} is more than 60 s before now ({now})");
    let replayed = replay_lifted(&har, &captured.service_url).await;
    replayed.assert_refused(StatusCode::UNAUTHORIZED, "invalid_dpop_proof", &stale);
    assert_eq!(upstream.calls(), 1, "a stale request reached the service");
    assert_eq!(proxy.refused("iat_too_old").await, 1);
    assert_eq!(proxy.refused("jti_replayed").await, 0);

    let replayed = replay_lifted(&har, &captured.console_url).await;
    replayed.assert_refused(StatusCode::UNAUTHORIZED, "invalid_dpop_proof", &stale);
    let record = last_audited(&server, "admin_refused");
    assert_admin_refused(
        &record,
        &captured.admin_sub,
        "127.0.0.9",
        "invalid_dpop_proof",
        "iat_too_old",
        &stale,
    );
}
