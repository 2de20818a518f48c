//! Hardware keys enrolled by hand: an issuer that trusts a simulator's
//! roots, codes, `POST /enroll` with chosen evidence, and the assertions
//! on what the issuer refused or accepted. Shared by the swtpm and virtual
//! card modules.

use std::sync::Arc;

use holdfast_hw::KeyKind;
use holdfast_proto::{Clock as _, Signer, SystemClock, build_enrollment_proof};
use holdfast_server::config::Config;
use holdfast_server::model::{Device, Role};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Refusal, Server, WhoAmI, answer};

/// The environment variable `name`, set by `scripts/{script}.sh` when it
/// starts `fixture`, or a failure that says how to start it.
pub fn fixture_env(name: &str, fixture: &str, script: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: start {fixture} first with \
             `source scripts/{script}.sh && {script}_start \"$(mktemp -d)\"` (and `{script}_stop` after)"
        )
    })
}

impl Server {
    /// An issuer that refuses software keys, with `edit` (its attestation
    /// roots) applied. Its clock is the real time: a simulator's
    /// certificates were made minutes ago and are not valid before.
    pub async fn start_attesting(edit: impl FnOnce(&mut Config)) -> Self {
        let server = Self::start(|c| {
            c.policy.danger_accept_software_keys = false;
            edit(c);
        })
        .await;
        server.issuer.clock.set(SystemClock.now().as_secs());
        server
    }

    /// The device record of the enrolled key `jkt`.
    pub fn device(&self, jkt: &holdfast_proto::Jkt) -> Device {
        self.issuer
            .state
            .store
            .device_by_jkt(jkt)
            .unwrap()
            .unwrap_or_else(|| panic!("no device for {jkt}"))
    }
}

/// The attested fact `name` of `device` (a string of its attestation
/// details).
pub fn fact(device: &Device, name: &str) -> String {
    let details = &device.attestation.details;
    details
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {name} in {details:?}"))
        .to_owned()
}

/// A one-time code, valid ten minutes, for a device (role `device`) of
/// `principal` that allows keys of `kind`.
pub fn device_code(server: &Server, principal: &str, kind: KeyKind) -> String {
    holdfast_server::enrollment::create_code(
        &server.issuer.state,
        principal,
        &[Role::Device],
        &[kind],
        "admin:test",
        600,
        server.now(),
    )
    .unwrap()
    .0
}

/// `POST /enroll/challenge` with `body` (none: a plain challenge).
pub async fn post_challenge(server: &Server, body: Option<Value>) -> Result<Value, Refusal> {
    let mut request = reqwest::Client::new().post(format!("{}/enroll/challenge", server.url));
    if let Some(body) = body {
        request = request.json(&body);
    }
    answer(request.send().await.unwrap()).await
}

/// `POST /enroll` by hand: `signer`'s key as a key of `kind` with
/// `attestation`, the proof signed by `signer` over `challenge`.
pub async fn post_enroll(
    server: &Server,
    code: &str,
    kind: &str,
    signer: &dyn Signer,
    challenge: &str,
    attestation: &impl serde::Serialize,
) -> Result<Value, Refusal> {
    let proof = build_enrollment_proof(signer, challenge, code, server.now()).unwrap();
    let body = json!({
        "code": code,
        "kind": kind,
        "name": format!("{kind}-laptop"),
        "proof": proof,
        "attestation": attestation,
    });
    let response = reqwest::Client::new()
        .post(format!("{}/enroll", server.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    answer(response).await
}

/// 403 `access_denied`, audited with `check`.
pub fn denied(check: &str) -> (StatusCode, &'static str, &str) {
    (StatusCode::FORBIDDEN, "access_denied", check)
}

/// 400 `invalid_request`, audited with `check`.
pub fn invalid(check: &str) -> (StatusCode, &'static str, &str) {
    (StatusCode::BAD_REQUEST, "invalid_request", check)
}

/// Asserts that an enrollment was refused with `status`, `error` and an
/// `error_description` that is exactly `description` (or starts with it
/// when it ends in `…`); that the newest `enrollment_refused` audit record
/// names `check` and the same reason; and that no device was stored.
#[track_caller]
pub fn assert_enrollment_refused(
    server: &Server,
    got: Result<Value, Refusal>,
    (status, error, check): (StatusCode, &str, &str),
    description: &str,
) {
    let refusal = match got {
        Ok(enrolled) => panic!("{check}: enrolled {enrolled}"),
        Err(refusal) => refusal,
    };
    assert_eq!(
        (refusal.status, refusal.error.as_str()),
        (status, error),
        "{check}: {}",
        refusal.body
    );
    let got = refusal.description();
    match description.strip_suffix('…') {
        Some(prefix) => assert!(got.starts_with(prefix), "{check}: {got}"),
        None => assert_eq!(got, description, "{check}"),
    }
    let last = server
        .audited("enrollment_refused")
        .pop()
        .expect("the refusal is audited");
    assert_eq!(last.entry.details["check"], check, "{:?}", last.entry);
    assert_eq!(last.entry.outcome, error);
    assert_eq!(last.entry.details["reason"], got);
    assert!(
        server.issuer.state.store.devices().unwrap().is_empty(),
        "{check}: a refusal stored a device"
    );
}

/// Runs an enrolled hardware key's session end to end: a DPoP client for
/// `enrolled` signing with `signer` gets a token whose introspection shows
/// the key (`cnf.jkt`) and `amr` `hwk`+`pop`, then calls a [`WhoAmI`]
/// service behind the verifier twice (a fresh proof each), which answers
/// the enrolled identity. Returns the client for more requests.
pub async fn assert_hardware_session(
    server: &Server,
    enrolled: &holdfast_client::Enrollment,
    signer: Arc<dyn Signer>,
) -> holdfast_client::DpopClient {
    let client = holdfast_client::DpopClient::discover_with(
        &server.url,
        &enrolled.client_id,
        signer,
        reqwest::Client::new(),
        server.issuer.clock.clone(),
    )
    .await
    .unwrap();
    let token = client.access_token().await.unwrap();
    let introspected = server.introspect(token.expose()).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["client_id"], enrolled.client_id.as_str());
    assert_eq!(introspected["cnf"]["jkt"], enrolled.jkt.as_str());
    assert_eq!(introspected["amr"], json!(["hwk", "pop"]));

    let protected = WhoAmI::start(server).await;
    for _ in 0..2 {
        let response = client
            .request(
                reqwest::Method::GET,
                &format!("{}/whoami", protected.url),
                reqwest::header::HeaderMap::new(),
                None,
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let identity: Value = response.json().await.unwrap();
        assert_eq!(identity["client_id"], enrolled.client_id.as_str());
        assert_eq!(identity["sub"], enrolled.principal_id.as_str());
        assert_eq!(identity["jkt"], enrolled.jkt.as_str());
        assert_eq!(identity["amr"], json!(["hwk", "pop"]));
    }
    client
}
