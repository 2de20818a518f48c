//! Sessions under attack while in use: the admin revokes a device while
//! its agent has requests in flight, and a refresh token is stolen.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use holdfast_client::{ClientError, DpopClient};
use holdfast_hw::SoftwareKey;
use holdfast_proto::{Clock as _, Signer, SystemClock};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::task::JoinHandle;

use super::stage::{
    DEADLINE, Proxy, Upstream, eventually, identity, ip, last_audited, metrics, refused_in,
};
use crate::issuer_flow::{admin_agent, enrolled_agent};
use crate::support::{Agent, Server};

/// Keeps the issuer's test clock on the system clock, for a test whose
/// client (the SDK) and proxy use real time: the SDK learns its skew from
/// every `Date` it sees, the issuer's and the proxy's alike.
struct RealTime(JoinHandle<()>);

impl RealTime {
    fn track(server: &Server) -> Self {
        let clock = server.issuer.clock.clone();
        clock.set(SystemClock.now().as_secs());
        Self(tokio::spawn(async move {
            loop {
                clock.set(SystemClock.now().as_secs());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }))
    }
}

impl Drop for RealTime {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_mid_session_revocation_surfaces_reauthentication_and_drops_or_replays_nothing() {
    const WORKERS: usize = 4;
    let server = Server::start(|_| {}).await;
    let _time = RealTime::track(&server);
    let mut admin = admin_agent(&server).await;
    let alice = enrolled_agent(&server, &mut admin, "alice").await;
    // A service slow enough that requests are in flight when the
    // revocation lands.
    let upstream = Upstream::start(Duration::from_millis(20)).await;
    let proxy = Proxy::start_on(&server, &upstream, Arc::new(SystemClock)).await;
    let pem = alice.key.to_pkcs8_pem().unwrap();
    let signer: Arc<dyn Signer> = Arc::new(SoftwareKey::from_pkcs8_pem(&pem).unwrap());
    let client = DpopClient::discover_with(
        &server.url,
        &alice.client_id,
        signer,
        reqwest::Client::new(),
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    let client = Arc::new(client);
    let url = format!("{}/orders", proxy.url);

    // Each worker sends until the SDK says the session is gone. Every call
    // must end as a 200 or as that error: a 401 handed back, another
    // error, or a hang is a failure.
    let served = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let client = Arc::clone(&client);
            let served = Arc::clone(&served);
            let url = url.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                loop {
                    assert!(
                        started.elapsed() < DEADLINE * 4,
                        "no re-authentication error"
                    );
                    match client
                        .request(Method::GET, &url, HeaderMap::new(), None)
                        .await
                    {
                        Ok(response) => {
                            assert_eq!(response.status(), StatusCode::OK);
                            served.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(ClientError::ReauthenticationRequired(why)) => return why,
                        Err(other) => panic!("not a re-authentication error: {other}"),
                    }
                }
            })
        })
        .collect();
    eventually("the agent's requests flow", async || {
        served.load(Ordering::SeqCst) >= 2 * WORKERS
    })
    .await;

    // The admin revokes alice's device while the workers are busy.
    let admin_tokens = admin.login(server.now()).await.unwrap();
    let path = format!("/admin/devices/{}/revoke", alice.client_id);
    admin
        .admin("POST", &path, &admin_tokens.access, None, server.now())
        .await
        .unwrap();
    for worker in workers {
        assert_eq!(worker.await.unwrap(), "device is revoked");
    }

    // Nothing dropped: every request the SDK reported as served reached the
    // service, and nothing else did.
    let served = served.load(Ordering::SeqCst);
    assert_eq!(upstream.calls(), served);
    let text = metrics(&proxy.url).await;
    assert!(
        text.contains(&format!("holdfast_verifier_verified_total {served}\n")),
        "{text}"
    );
    // Nothing retried with a stale proof: no replayed or old proof reached
    // the proxy; each worker was refused once, for the revocation, and then
    // the SDK gave up (refresh and a new session refused) instead of
    // sending again.
    assert_eq!(refused_in(&text, "jti_replayed"), 0, "{text}");
    assert_eq!(refused_in(&text, "iat_too_old"), 0, "{text}");
    // A worker whose call starts after another saw the refusal finds the
    // shared token already invalidated and renews first, without sending.
    let revoked = refused_in(&text, "device_not_active") + refused_in(&text, "session_revoked");
    assert!((1..=WORKERS as u64).contains(&revoked), "{text}");
    println!(
        "mid-session revocation: {served} requests served, {revoked} refused by the proxy, \
         then re-authentication required in each of {WORKERS} workers"
    );

    // The next call fails the same way without touching the service.
    let err = client
        .request(Method::GET, &url, HeaderMap::new(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::ReauthenticationRequired(_)),
        "{err}"
    );
    assert_eq!(upstream.calls(), served);

    // On the record: the revocation, and the SDK's refused attempts to go on.
    let revocation = last_audited(&server, "revocation").entry;
    assert_eq!(revocation.details["target"], "device");
    assert_eq!(revocation.details["id"], alice.client_id.as_str());
    let refused = server.audited("token_refused");
    assert!(refused.iter().any(|r| {
        r.entry.actor == alice.client_id
            && r.entry.outcome == "invalid_client"
            && r.entry.details["grant_type"] == "client_credentials"
            && r.entry.details["reason"] == "device is revoked"
    }));
    assert!(refused.iter().any(|r| {
        r.entry.outcome == "invalid_grant"
            && r.entry.details["grant_type"] == "refresh_token"
            && r.entry.details["reason"] == "the session is revoked"
    }));
}

#[tokio::test]
async fn attack_refresh_token_theft_the_owners_next_refresh_kills_the_session_for_both() {
    let server = Server::start(|_| {}).await;
    let mut admin = admin_agent(&server).await;
    let mut alice = enrolled_agent(&server, &mut admin, "alice").await;
    let upstream = Upstream::start(Duration::ZERO).await;
    let proxy = Proxy::start(&server, &upstream).await;
    let now = server.now();
    let owner = alice.login(now).await.unwrap();
    let (_, sid, _) = identity(&server, &owner.access).await;

    // Without the key, the stolen refresh token does nothing, and does not
    // even trip the reuse alarm (that would hand thieves a kill switch).
    let mut keyless = Agent::at(&server.url, Some(ip("127.0.0.9")));
    keyless.nonce = alice.nonce.clone();
    let refused = keyless.refresh(now, &owner.refresh).await.unwrap_err();
    assert_eq!(
        (
            refused.status,
            refused.error.as_str(),
            refused.description()
        ),
        (
            StatusCode::BAD_REQUEST,
            "invalid_dpop_proof",
            "DPoP proof key does not match the key the access token is bound to"
        )
    );
    let record = last_audited(&server, "token_refused").entry;
    assert_eq!(record.details["grant_type"], "refresh_token");
    assert_eq!(record.details["check"], "jkt_mismatch");
    assert!(server.audited("refresh_token_reuse").is_empty());
    assert_eq!(server.introspect(&owner.access).await["active"], true);

    // With a copy of the (software) key, from elsewhere: the thief
    // refreshes first and gets tokens of his own.
    let mut thief = alice.moved_to(ip("127.0.0.9"));
    let stolen = thief.refresh(now, &owner.refresh).await.unwrap();
    assert_eq!(
        proxy.send(&thief, &stolen.access, "/orders").await.status,
        StatusCode::OK
    );

    // The owner's next refresh presents the spent token: theft. The whole
    // session dies, for both.
    let reuse = alice.refresh(now, &owner.refresh).await.unwrap_err();
    assert_eq!(
        (reuse.status, reuse.error.as_str(), reuse.description()),
        (
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "refresh token was already used; the session is revoked"
        )
    );
    let record = last_audited(&server, "refresh_token_reuse").entry;
    assert_eq!(record.actor, alice.client_id);
    assert_eq!(record.outcome, "invalid_grant");
    assert_eq!(record.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(record.details["sid"], sid.as_str());
    assert_eq!(record.details["action"], "session revoked");

    // Refresh: refused for the thief's fresh refresh token too.
    let refused = thief.refresh(now, &stolen.refresh).await.unwrap_err();
    assert_eq!(
        (
            refused.status,
            refused.error.as_str(),
            refused.description()
        ),
        (
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the session is revoked"
        )
    );
    // Access: both access tokens are inactive at the issuer, and refused by
    // the proxy once the feed has carried the revocation.
    for (agent, token) in [(&alice, &owner.access), (&thief, &stolen.access)] {
        assert_eq!(server.introspect(token).await, json!({"active": false}));
        eventually("the proxy refuses the revoked session", async || {
            let answer = proxy.send(agent, token, "/orders").await;
            if answer.status == StatusCode::OK {
                return false;
            }
            answer.assert_refused(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the token's session is revoked",
            );
            true
        })
        .await;
    }
    let session = server
        .issuer
        .state
        .store
        .session(&sid.parse().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(session.revoked.unwrap().reason, "refresh_token_reuse");
}
