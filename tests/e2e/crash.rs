//! Crash safety (issue 9): the real `holdfastd` binary on a temporary data
//! directory, under load from several agents, is killed with SIGKILL, then
//! restarted on the same directory. Everything it acknowledged before the
//! kill must still hold afterwards:
//!
//! - every proof it accepted is still spent: the exact requests, replayed,
//!   are refused as replays (token endpoint and admin API);
//! - every enrollment and every session revocation it answered is there
//!   (enrolled-key registry, revocation feed, session records);
//! - `holdfastd audit verify` passes, and the chain holds every audit record
//!   of an acknowledged action (and, unchanged, every record read before
//!   the load).
//!
//! "Acknowledged" means the client read the whole answer before the kill:
//! the ledger records an action only then. The binary is that of
//! [`crate::support::holdfastd`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64ct::Encoding as _;
use holdfast_proto::{Clock as _, SystemClock, UnixTime};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::holdfastd::{DataDir, run};
use crate::support::{Agent, RS_ID, RS_SECRET, answer, assertion_form};

/// Longest the load may take before the test fails.
const TIMEOUT: Duration = Duration::from_secs(60);
/// Agents refreshing their sessions as fast as they can during the load.
const REFRESHERS: usize = 4;
/// The load runs until the ledger holds this many accepted token proofs
/// (and at least three enrollments and three revocations made during the
/// load); then the server is killed.
const MIN_TOKEN_PROOFS: usize = 200;

fn now() -> UnixTime {
    SystemClock.now()
}

/// The claims of a JWT (read, not verified: the test's own tokens).
fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64ct::Base64UrlUnpadded::decode_vec(payload).unwrap()).unwrap()
}

/// What the server acknowledged before the kill.
#[derive(Debug, Default)]
struct Ledger {
    /// Accepted refresh grants: the proof and the refresh token it was sent
    /// with.
    token_proofs: Vec<(String, String)>,
    /// Accepted admin reads: URL, access token, proof.
    admin_proofs: Vec<(String, String, String)>,
    /// Enrollments answered 201: device id and key thumbprint.
    enrollments: Vec<(String, String)>,
    /// Session revocations answered 200: session id and feed cursor.
    revocations: Vec<(String, u64)>,
    /// `jti` of every access token issued (each has a `token_issued`
    /// record).
    issued: Vec<String>,
    /// Enrollments made while the load ran.
    late_enrollments: usize,
}

type Shared = Arc<Mutex<Ledger>>;

fn note(ledger: &Shared, edit: impl FnOnce(&mut Ledger)) {
    edit(&mut ledger.lock().unwrap());
}

/// The server went away (the kill): the worker stops.
#[derive(Debug)]
struct Down;

/// A JSON answer read to its end, or `Down` when the connection broke
/// first (that answer was never acknowledged).
async fn read(
    response: Result<reqwest::Response, reqwest::Error>,
) -> Result<(StatusCode, Value, Option<String>), Down> {
    let response = response.map_err(|_| Down)?;
    let status = response.status();
    let nonce = response
        .headers()
        .get("dpop-nonce")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.bytes().await.map_err(|_| Down)?;
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Ok((status, body, nonce))
}

/// A token request with a fresh proof, retried once for a nonce: the
/// accepted proof and the token response.
async fn grant(agent: &mut Agent, form: &[(&str, &str)]) -> Result<(String, Value), Down> {
    let url = format!("{}/token", agent.base);
    for _ in 0..2 {
        let proof = agent.proof("POST", &url, None, now());
        let sent = agent
            .http
            .post(&url)
            .header("DPoP", &proof)
            .form(form)
            .send()
            .await;
        let (status, body, nonce) = read(sent).await?;
        if nonce.is_some() {
            agent.nonce = nonce;
        }
        if status == StatusCode::OK {
            return Ok((proof, body));
        }
        assert_eq!(body["error"], "use_dpop_nonce", "grant refused: {body}");
    }
    panic!("the issuer asked for a nonce twice");
}

/// The `jti` of the access token in a token response.
fn issued_jti(body: &Value) -> String {
    jwt_claims(body["access_token"].as_str().unwrap())["jti"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A refresh grant whose proof goes in the ledger; the next refresh token.
async fn refresh(agent: &mut Agent, refresh_token: &str, ledger: &Shared) -> Result<String, Down> {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    let (proof, body) = grant(agent, &form).await?;
    note(ledger, |l| {
        l.token_proofs.push((proof, refresh_token.to_owned()));
        l.issued.push(issued_jti(&body));
    });
    Ok(body["refresh_token"].as_str().unwrap().to_owned())
}

/// `client_credentials`: the access and refresh tokens.
async fn login(agent: &mut Agent, ledger: &Shared) -> Result<(String, String), Down> {
    let jti = format!("assertion-{}", holdfast_server::secret::random_id());
    let assertion = agent.assertion(now(), &jti);
    let (_, body) = grant(agent, &assertion_form(&assertion)).await?;
    note(ledger, |l| l.issued.push(issued_jti(&body)));
    let token = |name: &str| body[name].as_str().unwrap().to_owned();
    Ok((token("access_token"), token("refresh_token")))
}

/// Enrolls `agent`'s key with `code` (as `holdfast enroll` does).
async fn enroll(agent: &mut Agent, code: &str, ledger: &Shared) -> Result<(), Down> {
    let sent = agent
        .http
        .post(format!("{}/enroll/challenge", agent.base))
        .send()
        .await;
    let (_, challenge, _) = read(sent).await?;
    let body = agent.enrollment(&challenge, code, now());
    let sent = agent
        .http
        .post(format!("{}/enroll", agent.base))
        .json(&body)
        .send()
        .await;
    let (status, enrolled, _) = read(sent).await?;
    assert_eq!(status, StatusCode::CREATED, "{enrolled}");
    let jkt = enrolled["jkt"].as_str().unwrap().to_owned();
    assert_eq!(jkt, agent.key_jkt());
    agent.client_id = enrolled["client_id"].as_str().unwrap().to_owned();
    note(ledger, |l| {
        l.enrollments.push((agent.client_id.clone(), jkt))
    });
    Ok(())
}

/// `method path` at the admin API with `token`, a fresh proof and `body`:
/// the 200 answer, and the URL and proof sent.
async fn admin_call(
    admin: &Agent,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Result<(Value, (String, String)), Down> {
    let url = format!("{}{path}", admin.base);
    let proof = admin.proof(method, &url, Some(token), now());
    let mut request = admin
        .http
        .request(method.parse().unwrap(), &url)
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", &proof);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let (status, answer, _) = read(request.send().await).await?;
    assert_eq!(status, StatusCode::OK, "{method} {path}: {answer}");
    Ok((answer, (url, proof)))
}

/// The admin creates a device code for `name`, and a new agent enrolls
/// with it.
async fn enroll_device(
    admin: &Agent,
    token: &str,
    name: &str,
    ledger: &Shared,
) -> Result<Agent, Down> {
    let body = json!({"principal": name, "roles": ["device"], "kinds": ["software"]});
    let (code, _) = admin_call(admin, "POST", "/admin/enrollment-codes", token, Some(body)).await?;
    let mut agent = Agent::at(&admin.base, None);
    enroll(&mut agent, code["code"].as_str().unwrap(), ledger).await?;
    Ok(agent)
}

/// An admin read (`GET /admin/sessions`) with a recorded proof.
async fn admin_read(admin: &Agent, token: &str, ledger: &Shared) -> Result<(), Down> {
    let (_, (url, proof)) = admin_call(admin, "GET", "/admin/sessions", token, None).await?;
    note(ledger, |l| {
        l.admin_proofs.push((url, token.to_owned(), proof));
    });
    Ok(())
}

/// The admin revokes session `sid`.
async fn revoke_session(
    admin: &Agent,
    token: &str,
    sid: &str,
    ledger: &Shared,
) -> Result<(), Down> {
    let path = format!("/admin/sessions/{sid}/revoke");
    let (event, _) = admin_call(admin, "POST", &path, token, None).await?;
    assert_eq!(
        (event["kind"].as_str(), event["id"].as_str()),
        (Some("session"), Some(sid))
    );
    let cursor = event["cursor"].as_u64().unwrap();
    note(ledger, |l| {
        l.revocations.push((sid.to_owned(), cursor));
    });
    Ok(())
}

/// A resource server's read of the issuer (`/keys/enrolled`, `/revocations`).
async fn rs_get(base: &str, path: &str) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .basic_auth(RS_ID, Some(RS_SECRET))
        .send()
        .await
        .unwrap();
    answer(response).await.unwrap()
}

/// The whole revocation feed.
async fn feed(base: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut since = 0;
    loop {
        let page = rs_get(base, &format!("/revocations?since={since}")).await;
        let batch = page["events"].as_array().unwrap().clone();
        if batch.is_empty() {
            return events;
        }
        since = page["cursor"].as_u64().unwrap();
        events.extend(batch);
    }
}

/// Asserts that a request with `what`, accepted before the kill, was
/// refused as a replay with `status`.
async fn assert_replayed(
    sent: Result<reqwest::Response, reqwest::Error>,
    status: StatusCode,
    what: &str,
) {
    let refused = answer(sent.unwrap()).await.expect_err(&format!(
        "{what} accepted before the kill was accepted again"
    ));
    assert_eq!(
        (
            refused.status,
            refused.error.as_str(),
            refused.description()
        ),
        (
            status,
            "invalid_dpop_proof",
            "DPoP proof has already been used (jti replayed)"
        ),
        "{what} accepted before the kill"
    );
}

/// The audit log as `holdfastd audit export` writes it (server stopped).
fn export(data: &str) -> Vec<Value> {
    let output = run(&["audit", "export", "--data", data]);
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_sigkill_under_load_loses_nothing_acknowledged() {
    // The durability under test is the default; said explicitly here.
    let dir = DataDir::new("sync_writes = true");
    let mut server = dir.serve("127.0.0.1:0");
    let base = server.url();
    let ledger: Shared = Arc::default();
    let mut admin = Agent::at(&base, None);
    enroll(&mut admin, &dir.bootstrap_code, &ledger)
        .await
        .unwrap();
    let (admin_token, _) = login(&mut admin, &ledger).await.unwrap();

    // Devices enrolled and logged in before the load.
    let mut refreshers = Vec::new();
    for i in 0..REFRESHERS {
        let name = format!("device-{i}");
        let mut agent = enroll_device(&admin, &admin_token, &name, &ledger)
            .await
            .unwrap();
        let (_, refresh_token) = login(&mut agent, &ledger).await.unwrap();
        refreshers.push((agent, refresh_token));
    }
    let mut victim = enroll_device(&admin, &admin_token, "victim", &ledger)
        .await
        .unwrap();

    // Every audit record so far belongs to an answered request: the
    // baseline the restarted chain must keep unchanged.
    let baseline = admin
        .admin(
            "GET",
            "/admin/audit?from=1&limit=1000",
            &admin_token,
            None,
            now(),
        )
        .await
        .unwrap()["records"]
        .as_array()
        .unwrap()
        .clone();
    assert!(!baseline.is_empty());

    // The load: refreshes, admin reads, enrollments and revocations, each
    // noted in the ledger once its answer has been read. A worker ends when
    // the server is gone; any refusal before that fails the test.
    let admin = Arc::new(admin);
    let mut workers = Vec::new();
    for (mut agent, mut refresh_token) in refreshers {
        let ledger = Arc::clone(&ledger);
        workers.push(tokio::spawn(async move {
            while let Ok(next) = refresh(&mut agent, &refresh_token, &ledger).await {
                refresh_token = next;
            }
        }));
    }
    let (token, l) = (admin_token.clone(), Arc::clone(&ledger));
    let a = Arc::clone(&admin);
    workers.push(tokio::spawn(async move {
        while admin_read(&a, &token, &l).await.is_ok() {}
    }));
    let (token, l) = (admin_token.clone(), Arc::clone(&ledger));
    let a = Arc::clone(&admin);
    workers.push(tokio::spawn(async move {
        for i in 0.. {
            if enroll_device(&a, &token, &format!("late-{i}"), &l)
                .await
                .is_err()
            {
                return;
            }
            note(&l, |l| l.late_enrollments += 1);
        }
    }));
    let (token, l) = (admin_token.clone(), Arc::clone(&ledger));
    let a = Arc::clone(&admin);
    workers.push(tokio::spawn(async move {
        while let Ok((access, _)) = login(&mut victim, &l).await {
            let sid = jwt_claims(&access)["sid"].as_str().unwrap().to_owned();
            if revoke_session(&a, &token, &sid, &l).await.is_err() {
                return;
            }
        }
    }));

    let started = Instant::now();
    loop {
        let (proofs, enrollments, revocations) = {
            let l = ledger.lock().unwrap();
            (
                l.token_proofs.len(),
                l.late_enrollments,
                l.revocations.len(),
            )
        };
        if proofs >= MIN_TOKEN_PROOFS && enrollments >= 3 && revocations >= 3 {
            break;
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "the load did not get going: {proofs} token proofs, {enrollments} enrollments, \
             {revocations} revocations"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Mid-load: no graceful shutdown, no final flush.
    let status = server.kill();
    let killed_at = Instant::now();
    assert!(!status.success(), "{status:?}");
    for worker in workers {
        tokio::time::timeout(TIMEOUT, worker)
            .await
            .unwrap()
            .unwrap();
    }
    let ledger = Arc::try_unwrap(ledger).unwrap().into_inner().unwrap();
    println!(
        "acknowledged before SIGKILL (after {:?} of load): {} token proofs, {} admin proofs, \
         {} enrollments, {} session revocations, {} tokens issued, {} audit records read \
         before the load",
        started.elapsed(),
        ledger.token_proofs.len(),
        ledger.admin_proofs.len(),
        ledger.enrollments.len(),
        ledger.revocations.len(),
        ledger.issued.len(),
        baseline.len(),
    );

    // Restart on the same store and address (the proofs name it in `htu`).
    let mut server = dir.serve(&base.replace("http://", ""));
    assert_eq!(server.url(), base);
    println!(
        "restart: serving again {:?} after the kill",
        killed_at.elapsed()
    );
    let http = reqwest::Client::new();

    // 1. Every accepted proof is still spent: the exact requests, again.
    for (proof, refresh_token) in &ledger.token_proofs {
        let sent = http
            .post(format!("{base}/token"))
            .header("DPoP", proof)
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ])
            .send()
            .await;
        assert_replayed(sent, StatusCode::BAD_REQUEST, "a token proof").await;
    }
    for (url, token, proof) in &ledger.admin_proofs {
        let sent = http
            .get(url)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .send()
            .await;
        assert_replayed(sent, StatusCode::UNAUTHORIZED, "an admin proof").await;
    }

    // 2. Every enrollment is in the registry verifiers read, active.
    let enrolled = rs_get(&base, "/keys/enrolled").await;
    let enrolled = enrolled["devices"].as_array().unwrap();
    for (device_id, jkt) in &ledger.enrollments {
        let entry = enrolled
            .iter()
            .find(|d| d["device_id"] == device_id.as_str())
            .unwrap_or_else(|| panic!("enrollment of {device_id} lost"));
        assert_eq!(entry["jkt"], jkt.as_str());
        assert_eq!(entry["state"], "active");
    }
    // 3. Every session revocation is on the feed, at its cursor, and in
    //    force.
    let events = feed(&base).await;
    let Ok(mut admin) = Arc::try_unwrap(admin) else {
        panic!("a worker still holds the admin agent")
    };
    // The old client's pooled connections died with the server.
    admin.http = reqwest::Client::new();
    let sessions = admin
        .admin("GET", "/admin/sessions", &admin_token, None, now())
        .await
        .unwrap();
    let sessions = sessions["sessions"].as_array().unwrap();
    for (sid, cursor) in &ledger.revocations {
        let on_feed = events
            .iter()
            .any(|e| e["cursor"] == *cursor && e["kind"] == "session" && e["id"] == sid.as_str());
        assert!(
            on_feed,
            "revocation of {sid} (cursor {cursor}) missing from the feed"
        );
        let session = sessions.iter().find(|s| s["id"] == sid.as_str()).unwrap();
        assert!(
            !session["revoked"].is_null(),
            "revocation of {sid} lost: {session}"
        );
    }
    let status = server.terminate();
    assert!(status.success(), "{status:?}");

    // 4. The chain verifies and holds every acknowledged record.
    let output = run(&["audit", "verify", "--data", &dir.data]);
    let verified = String::from_utf8(output.stdout.clone()).unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(verified.starts_with("audit chain intact: "), "{verified}");
    let records = export(&dir.data);
    assert!(records.len() >= baseline.len());
    for (before, after) in baseline.iter().zip(&records) {
        assert_eq!(
            (&before["seq"], &before["hash"]),
            (&after["seq"], &after["hash"]),
            "a record read before the load changed"
        );
    }
    let has = |event: &str, key: &str, value: &str| {
        records
            .iter()
            .any(|r| r["event"] == event && r["details"][key] == value)
    };
    for jti in &ledger.issued {
        assert!(has("token_issued", "jti", jti), "token_issued {jti} lost");
    }
    for (device_id, _) in &ledger.enrollments {
        assert!(
            has("device_enrolled", "device_id", device_id),
            "device_enrolled {device_id} lost"
        );
    }
    for (sid, _) in &ledger.revocations {
        assert!(has("revocation", "id", sid), "revocation {sid} lost");
    }
    println!(
        "after restart: {}; every one of the {} token_issued, {} device_enrolled and {} \
         revocation records acknowledged before the kill is in it",
        verified.trim(),
        ledger.issued.len(),
        ledger.enrollments.len(),
        ledger.revocations.len(),
    );
}
