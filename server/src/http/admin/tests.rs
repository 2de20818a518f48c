//! The admin API over the router: the caller checks, step-up, and the
//! endpoints' effects.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode, header};
use holdfast_hw::KeyKind;
use serde_json::{Value, json};

use super::super::rs_auth::fixtures::send;
use crate::model::{DeviceState, Role};
use crate::secret::secret_hash;
use crate::testing::{TestDevice, TestIssuer};

/// Status, headers and JSON body (`null` when empty) of an answer.
type Answer = (StatusCode, HeaderMap, Value);

const ADMIN_NET: [u8; 4] = [127, 0, 0, 1];
const OUTSIDE: [u8; 4] = [192, 0, 2, 7];

/// A DPoP proof by `caller`'s key for `method` `path`, carrying `ath`.
fn proof(issuer: &TestIssuer, caller: &TestDevice, method: &str, path: &str) -> String {
    caller.proof(issuer, method, path, Some(&caller.token))
}

fn request(
    method: &str,
    uri: &str,
    headers: &[(&str, String)],
    peer: [u8; 4],
    body: Option<&Value>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    let body = match body {
        Some(json) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    let mut request = builder.body(body).unwrap();
    let peer = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(peer)), 40_000);
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

/// `Authorization: DPoP` with `caller`'s token and its proof for `method`
/// `path`.
fn dpop_headers(
    issuer: &TestIssuer,
    caller: &TestDevice,
    method: &str,
    path: &str,
) -> [(&'static str, String); 2] {
    [
        ("authorization", format!("DPoP {}", caller.token)),
        ("dpop", proof(issuer, caller, method, path)),
    ]
}

/// A well-formed admin call by `caller` from inside the allowlist.
fn call(
    issuer: &TestIssuer,
    caller: &TestDevice,
    method: &str,
    uri: &str,
    body: Option<&Value>,
) -> Request<Body> {
    let path = uri.split('?').next().unwrap();
    let headers = dpop_headers(issuer, caller, method, path);
    request(method, uri, &headers, ADMIN_NET, body)
}

/// `caller` asks for an enrollment code with `body`.
async fn create_code(issuer: &TestIssuer, caller: &TestDevice, body: &Value) -> Answer {
    let uri = "/admin/enrollment-codes";
    send(issuer, call(issuer, caller, "POST", uri, Some(body))).await
}

fn challenge(headers: &HeaderMap) -> &str {
    headers
        .get(header::WWW_AUTHENTICATE)
        .unwrap()
        .to_str()
        .unwrap()
}

/// The newest audit record with `event`.
fn last_audit(issuer: &TestIssuer, event: &str) -> crate::store::AuditRecord {
    let records = issuer.state.store.audit_range(1, 10_000).unwrap();
    records
        .into_iter()
        .rev()
        .find(|r| r.entry.event == event)
        .unwrap()
}

/// Asserts `got` is a refusal with `want` and `code`, and its challenge.
fn assert_refused(got: &Answer, want: StatusCode, code: &str) {
    let (status, headers, body) = got;
    assert_eq!(*status, want, "{body}");
    assert_eq!(body["error"], code, "{body}");
    let challenge = challenge(headers);
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert!(
        challenge.contains(&format!("error=\"{code}\"")),
        "{challenge}"
    );
    assert!(challenge.ends_with("algs=\"ES256\""), "{challenge}");
}

/// Asserts the newest `admin_refused` record names `check`; returns it.
fn assert_audited_refusal(issuer: &TestIssuer, check: &str) -> crate::store::AuditRecord {
    let record = last_audit(issuer, "admin_refused");
    assert_eq!(record.entry.details["check"], check);
    record
}

/// `caller` lists the devices: asserts the refusal (status, `error`,
/// challenge) and that it was audited with `check`; returns the record.
async fn assert_list_refused(
    issuer: &TestIssuer,
    caller: &TestDevice,
    want: (StatusCode, &str),
    check: &str,
) -> crate::store::AuditRecord {
    let got = send(issuer, call(issuer, caller, "GET", "/admin/devices", None)).await;
    assert_refused(&got, want.0, want.1);
    assert_audited_refusal(issuer, check)
}

/// Whether the stored session `id` is revoked.
fn session_revoked(issuer: &TestIssuer, id: &crate::model::SessionId) -> bool {
    let session = issuer.state.store.session(id).unwrap().unwrap();
    session.revoked.is_some()
}

/// An admin whose session started `age` seconds ago, with a fresh token
/// (as after a refresh).
fn admin_with_session_age(issuer: &TestIssuer, age: u64) -> TestDevice {
    let mut admin = issuer.enrolled_device("root", &[Role::Admin]);
    issuer.clock.advance(age);
    admin.token = admin.access_token(issuer, |_| {});
    admin
}

/// `caller` enrolls a TOTP secret; returns the `otpauth://` URI.
async fn enroll_totp(issuer: &TestIssuer, caller: &TestDevice) -> String {
    let (status, _, body) = send(
        issuer,
        call(issuer, caller, "POST", "/admin/step-up/totp", None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["otpauth_uri"].as_str().unwrap().to_owned()
}

/// `caller` steps up with `code`.
async fn totp_step_up(issuer: &TestIssuer, caller: &TestDevice, code: &str) -> Answer {
    let body = json!({ "method": "totp", "code": code });
    send(
        issuer,
        call(issuer, caller, "POST", "/admin/step-up", Some(&body)),
    )
    .await
}

/// What the authenticator app shows for `uri` now.
fn code_now(issuer: &TestIssuer, uri: &str) -> String {
    crate::step_up::totp::code_for_uri(uri, issuer.now()).unwrap()
}

/// Enrolls TOTP for `caller` and steps up its session with it.
async fn stepped_up(issuer: &TestIssuer, caller: &TestDevice) -> String {
    let uri = enroll_totp(issuer, caller).await;
    let (status, _, body) = totp_step_up(issuer, caller, &code_now(issuer, &uri)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    uri
}

#[tokio::test]
async fn admin_lists_devices() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let user = issuer.enrolled_device("alice", &[Role::Device]);

    let (status, headers, body) = send(
        &issuer,
        call(&issuer, &admin, "GET", "/admin/devices", None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    assert_eq!(body["devices"].as_array().unwrap().len(), 2);

    let uri = format!("/admin/devices?principal={}", user.principal.id);
    let (status, _, body) = send(&issuer, call(&issuer, &admin, "GET", &uri, None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let devices = body["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0]["id"], user.device.id.as_str());

    let uri = format!("/admin/devices/{}", user.device.id);
    let (status, _, body) = send(&issuer, call(&issuer, &admin, "GET", &uri, None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["jkt"], user.device.jkt.as_str());

    let (status, _, body) = send(
        &issuer,
        call(&issuer, &admin, "GET", "/admin/devices/d-nosuch", None),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn admin_revokes_a_device_and_it_is_audited() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let user = issuer.enrolled_device("alice", &[Role::Device]);

    let uri = format!("/admin/devices/{}/revoke", user.device.id);
    let (status, _, body) = send(&issuer, call(&issuer, &admin, "POST", &uri, None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["kind"], "device");
    assert_eq!(body["id"], user.device.id.as_str());

    let store = issuer.state.store.as_ref();
    assert_eq!(
        store.device(&user.device.id).unwrap().unwrap().state,
        DeviceState::Revoked
    );
    assert!(session_revoked(&issuer, &user.session.id));
    let record = last_audit(&issuer, "revocation");
    assert_eq!(record.entry.actor, format!("admin:{}", admin.principal.id));
    assert_eq!(record.entry.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(record.entry.details["id"], user.device.id.as_str());
    // The feed event carries the device's entry, now revoked.
    assert_eq!(body["device"]["device_id"], user.device.id.as_str());
    assert_eq!(body["device"]["jkt"], user.device.jkt.as_str());
    assert_eq!(body["device"]["state"], "revoked");

    // Revocation is final.
    let uri = format!("/admin/devices/{}/enable", user.device.id);
    let (status, _, body) = send(&issuer, call(&issuer, &admin, "POST", &uri, None)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

#[tokio::test]
async fn admin_disables_and_enables_a_device() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let user = issuer.enrolled_device("alice", &[Role::Device]);
    let store = issuer.state.store.as_ref();

    let uri = format!("/admin/devices/{}/disable", user.device.id);
    let (status, _, body) = send(&issuer, call(&issuer, &admin, "POST", &uri, None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "disabled");
    assert_eq!(
        store.device(&user.device.id).unwrap().unwrap().state,
        DeviceState::Disabled
    );
    let record = last_audit(&issuer, "admin_action");
    assert_eq!(record.entry.details["action"], "device_disabled");
    assert_eq!(record.entry.actor, format!("admin:{}", admin.principal.id));

    let uri = format!("/admin/devices/{}/enable", user.device.id);
    let (status, _, body) = send(&issuer, call(&issuer, &admin, "POST", &uri, None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        store.device(&user.device.id).unwrap().unwrap().state,
        DeviceState::Active
    );
    // Enabling an active device changes nothing and publishes nothing.
    let (status, _, body) = send(&issuer, call(&issuer, &admin, "POST", &uri, None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Each change reached the feed verifiers follow, with the new state.
    let events = store.revocations_since(0, 100).unwrap();
    let changes: Vec<(&str, &str, Option<DeviceState>)> = events
        .iter()
        .map(|e| {
            (
                e.kind.as_str(),
                e.id.as_str(),
                e.device.as_ref().map(|d| d.state),
            )
        })
        .collect();
    let id = user.device.id.as_str();
    assert_eq!(
        changes,
        vec![
            ("device_state", id, Some(DeviceState::Disabled)),
            ("device_state", id, Some(DeviceState::Active)),
        ]
    );
    let entry = events[0].device.as_ref().unwrap();
    assert_eq!(entry.jkt, user.device.jkt);
    assert_eq!(entry.principal_id, user.principal.id);
    assert!(!entry.principal_disabled);
}

#[tokio::test]
async fn admin_lists_and_revokes_sessions_and_principals() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let user = issuer.enrolled_device("alice", &[Role::Device]);
    let store = issuer.state.store.as_ref();

    let uri = format!("/admin/sessions?principal={}", user.principal.id);
    let (status, _, body) = send(&issuer, call(&issuer, &admin, "GET", &uri, None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sessions = body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["id"], user.session.id.as_str());

    let (status, _, body) = send(
        &issuer,
        call(&issuer, &admin, "GET", "/admin/sessions?device=nope", None),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request");

    let uri = format!("/admin/sessions/{}/revoke", user.session.id);
    let (status, _, body) = send(&issuer, call(&issuer, &admin, "POST", &uri, None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["kind"], "session");
    assert!(session_revoked(&issuer, &user.session.id));

    let (status, _, body) = send(
        &issuer,
        call(&issuer, &admin, "GET", "/admin/principals", None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["principals"].as_array().unwrap().len(), 2);

    let uri = format!("/admin/principals/{}/revoke", user.principal.id);
    let (status, _, body) = send(&issuer, call(&issuer, &admin, "POST", &uri, None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        store
            .principal(&user.principal.id)
            .unwrap()
            .unwrap()
            .disabled
    );
}

#[tokio::test]
async fn rejects_device_role_token() {
    let issuer = TestIssuer::new();
    let user = issuer.enrolled_device("alice", &[Role::Device]);
    let want = (StatusCode::FORBIDDEN, "access_denied");
    let record = assert_list_refused(&issuer, &user, want, "insufficient_role").await;
    assert_eq!(record.entry.actor, user.principal.id.as_str());
}

#[tokio::test]
async fn rejects_caller_outside_the_allowlist() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let headers = dpop_headers(&issuer, &admin, "GET", "/admin/devices");
    let req = request("GET", "/admin/devices", &headers, OUTSIDE, None);
    assert_refused(
        &send(&issuer, req).await,
        StatusCode::FORBIDDEN,
        "access_denied",
    );
    let record = assert_audited_refusal(&issuer, "ip_not_allowed");
    assert_eq!(record.entry.ip.as_deref(), Some("192.0.2.7"));
    assert_eq!(record.entry.actor, "anonymous");
    assert!(
        issuer
            .state
            .metrics
            .render()
            .contains("holdfast_admin_refused_total{reason=\"ip_not_allowed\"} 1")
    );
}

#[tokio::test]
async fn rejects_caller_without_a_known_address() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let mut req = call(&issuer, &admin, "GET", "/admin/devices", None);
    req.extensions_mut().remove::<ConnectInfo<SocketAddr>>();
    assert_refused(
        &send(&issuer, req).await,
        StatusCode::FORBIDDEN,
        "access_denied",
    );
}

#[tokio::test]
async fn accepts_ipv4_mapped_peer_inside_the_allowlist() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let mut req = call(&issuer, &admin, "GET", "/admin/devices", None);
    let mapped: SocketAddr = "[::ffff:127.0.0.1]:40000".parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(mapped));
    let (status, _, body) = send(&issuer, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn rejects_bearer_scheme() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let headers = [
        ("authorization", format!("Bearer {}", admin.token)),
        ("dpop", proof(&issuer, &admin, "GET", "/admin/devices")),
    ];
    let (status, _, body) = send(
        &issuer,
        request("GET", "/admin/devices", &headers, ADMIN_NET, None),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request");
    assert_audited_refusal(&issuer, "bearer_scheme");
}

#[tokio::test]
async fn rejects_two_authorization_headers_or_schemes() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let dpop = proof(&issuer, &admin, "GET", "/admin/devices");
    let two_headers = [
        ("authorization", format!("DPoP {}", admin.token)),
        ("authorization", format!("Bearer {}", admin.token)),
        ("dpop", dpop.clone()),
    ];
    let two_schemes = [
        (
            "authorization",
            format!("DPoP {}, Bearer {}", admin.token, admin.token),
        ),
        ("dpop", dpop),
    ];
    for headers in [&two_headers[..], &two_schemes[..]] {
        let (status, _, body) = send(
            &issuer,
            request("GET", "/admin/devices", headers, ADMIN_NET, None),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "invalid_request");
    }
}

#[tokio::test]
async fn rejects_missing_authorization_with_bare_challenge() {
    let issuer = TestIssuer::new();
    let (status, headers, body) = send(
        &issuer,
        request("GET", "/admin/devices", &[], ADMIN_NET, None),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(challenge(&headers), "DPoP algs=\"ES256\"");
    let record = last_audit(&issuer, "admin_refused");
    assert_eq!(record.entry.details["check"], "authorization_missing");
}

#[tokio::test]
async fn rejects_missing_dpop_header() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let headers = [("authorization", format!("DPoP {}", admin.token))];
    let req = request("GET", "/admin/devices", &headers, ADMIN_NET, None);
    assert_refused(
        &send(&issuer, req).await,
        StatusCode::UNAUTHORIZED,
        "invalid_dpop_proof",
    );
}

#[tokio::test]
async fn rejects_proof_for_another_path() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let headers = dpop_headers(&issuer, &admin, "GET", "/admin/sessions");
    let req = request("GET", "/admin/devices", &headers, ADMIN_NET, None);
    assert_refused(
        &send(&issuer, req).await,
        StatusCode::UNAUTHORIZED,
        "invalid_dpop_proof",
    );
    let record = assert_audited_refusal(&issuer, "htu_mismatch");
    assert_eq!(record.entry.actor, admin.principal.id.as_str());
}

#[tokio::test]
async fn rejects_proof_by_another_key() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let mut thief = issuer.enrolled_device("mallory", &[Role::Device]);
    thief.token = admin.token.clone();
    let want = (StatusCode::UNAUTHORIZED, "invalid_dpop_proof");
    assert_list_refused(&issuer, &thief, want, "jkt_mismatch").await;
}

#[tokio::test]
async fn rejects_replayed_proof() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let headers = dpop_headers(&issuer, &admin, "GET", "/admin/devices");
    let req = || request("GET", "/admin/devices", &headers, ADMIN_NET, None);
    let (status, _, body) = send(&issuer, req()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let got = send(&issuer, req()).await;
    assert_refused(&got, StatusCode::UNAUTHORIZED, "invalid_dpop_proof");
    assert_audited_refusal(&issuer, "jti_replayed");
}

#[tokio::test]
async fn rejects_token_signed_by_unknown_key() {
    let issuer = TestIssuer::new();
    let mut admin = issuer.enrolled_device("root", &[Role::Admin]);
    let elsewhere = TestIssuer::new();
    let claims = admin.claims(&issuer);
    admin.token = elsewhere
        .state
        .keyring()
        .sign_access_token(&claims)
        .unwrap();
    let want = (StatusCode::UNAUTHORIZED, "invalid_token");
    assert_list_refused(&issuer, &admin, want, "unknown_key").await;
}

#[tokio::test]
async fn rejects_token_of_revoked_session() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let mut session = admin.session.clone();
    session.revoked = Some(crate::model::Revocation {
        at: issuer.now(),
        reason: "test".into(),
    });
    issuer.state.store.update_session(&session).unwrap();
    let want = (StatusCode::UNAUTHORIZED, "invalid_token");
    assert_list_refused(&issuer, &admin, want, "session_revoked").await;
}

#[tokio::test]
async fn revoke_all_requires_step_up() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    // A fresh session is no longer enough: without a factor, the answer
    // says to enroll one.
    let got = send(
        &issuer,
        call(&issuer, &admin, "POST", "/admin/revoke-all", None),
    )
    .await;
    assert_refused(&got, StatusCode::FORBIDDEN, "access_denied");
    let description = got.2["error_description"].as_str().unwrap();
    assert!(
        description.starts_with("step-up required: this admin has no step-up factor yet"),
        "{description}"
    );
    assert!(description.contains("holdfast admin step-up totp-enroll"));
    assert_audited_refusal(&issuer, "step_up");
    assert_eq!(issuer.state.store.revoke_all_before().unwrap(), None);

    // With a factor enrolled but no step-up yet, it says to step up.
    let uri = enroll_totp(&issuer, &admin).await;
    let got = send(
        &issuer,
        call(&issuer, &admin, "POST", "/admin/revoke-all", None),
    )
    .await;
    assert_refused(&got, StatusCode::FORBIDDEN, "access_denied");
    assert!(
        got.2["error_description"]
            .as_str()
            .unwrap()
            .contains("run `holdfast admin step-up`"),
        "{}",
        got.2
    );

    let (status, _, body) = totp_step_up(&issuer, &admin, &code_now(&issuer, &uri)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = send(
        &issuer,
        call(&issuer, &admin, "POST", "/admin/revoke-all", None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["kind"], "all_before");
    assert_eq!(
        issuer.state.store.revoke_all_before().unwrap(),
        Some(issuer.now())
    );
    // The caller's session began in this very second: it is revoked too.
    let (status, _, body) = send(
        &issuer,
        call(&issuer, &admin, "GET", "/admin/devices", None),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn revoke_all_takes_an_instant_but_not_a_future_one() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    stepped_up(&issuer, &admin).await;
    let future = json!({ "before": issuer.now().as_secs() + 10 });
    let (status, _, body) = send(
        &issuer,
        call(&issuer, &admin, "POST", "/admin/revoke-all", Some(&future)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let past = json!({ "before": issuer.now().as_secs() - 10 });
    let (status, _, body) = send(
        &issuer,
        call(&issuer, &admin, "POST", "/admin/revoke-all", Some(&past)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["before"], issuer.now().as_secs() - 10);
    let typo = json!({ "befor": 1 });
    let (status, _, body) = send(
        &issuer,
        call(&issuer, &admin, "POST", "/admin/revoke-all", Some(&typo)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Last: the default instant is now, and sessions of this very second
    // die too, the caller's own included.
    let with_reason = json!({ "reason": "laptop stolen at the airport" });
    let (status, _, body) = send(
        &issuer,
        call(
            &issuer,
            &admin,
            "POST",
            "/admin/revoke-all",
            Some(&with_reason),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let record = last_audit(&issuer, "revocation");
    assert_eq!(record.entry.details["note"], "laptop stolen at the airport");
    assert_eq!(record.entry.details["reason"], "admin");
    let (status, _, body) = send(
        &issuer,
        call(
            &issuer,
            &admin,
            "POST",
            "/admin/revoke-all",
            Some(&with_reason),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{body}"
    );
}

#[tokio::test]
async fn key_rotation_changes_kid_and_old_tokens_still_verify() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    stepped_up(&issuer, &admin).await;
    let old_kid = issuer.state.keyring().active_kid().to_owned();

    let (status, _, body) = send(
        &issuer,
        call(&issuer, &admin, "POST", "/admin/keys/rotate", None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let new_kid = body["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    assert_eq!(issuer.state.keyring().active_kid(), new_kid);

    let (status, _, jwks) = send(&issuer, request("GET", "/jwks", &[], ADMIN_NET, None)).await;
    assert_eq!(status, StatusCode::OK);
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()),
        "{kids:?}"
    );

    // The token signed by the retired key still works.
    let (status, _, body) = send(
        &issuer,
        call(&issuer, &admin, "GET", "/admin/devices", None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        last_audit(&issuer, "admin_action").entry.details["action"],
        "keys_rotated"
    );
}

#[tokio::test]
async fn key_rotation_requires_step_up() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let old_kid = issuer.state.keyring().active_kid().to_owned();
    let got = send(
        &issuer,
        call(&issuer, &admin, "POST", "/admin/keys/rotate", None),
    )
    .await;
    assert_refused(&got, StatusCode::FORBIDDEN, "access_denied");
    assert_eq!(issuer.state.keyring().active_kid(), old_kid);
    let record = assert_audited_refusal(&issuer, "step_up");
    assert_eq!(record.entry.details["action"], "keys_rotate");
}

#[tokio::test]
async fn audit_reads_a_range_and_verifies_the_chain() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let user = issuer.enrolled_device("alice", &[Role::Device]);
    for action in ["disable", "enable"] {
        let uri = format!("/admin/devices/{}/{action}", user.device.id);
        let (status, _, body) = send(&issuer, call(&issuer, &admin, "POST", &uri, None)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    let (status, _, body) = send(
        &issuer,
        call(&issuer, &admin, "GET", "/admin/audit?from=1&limit=1", None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["records"].as_array().unwrap().len(), 1);
    assert_eq!(body["records"][0]["seq"], 1);
    assert_eq!(body["next"], 2);

    let (status, _, body) = send(
        &issuer,
        call(&issuer, &admin, "GET", "/admin/audit/verify", None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["valid"], true, "{body}");
    assert_eq!(body["records"], 2);
}

#[tokio::test]
async fn admin_creates_a_device_enrollment_code() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let body =
        json!({ "principal": "bob", "roles": ["device"], "kinds": ["software"], "ttl_secs": 600 });
    let (status, headers, body) = create_code(&issuer, &admin, &body).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    assert_eq!(body["expires_at"], issuer.now().as_secs() + 600);
    let code = body["code"].as_str().unwrap();
    let stored = issuer
        .state
        .store
        .enrollment_code(&secret_hash(code))
        .unwrap()
        .unwrap();
    assert_eq!(stored.allowed_kinds, vec![KeyKind::Software]);
    assert_eq!(stored.created_by, format!("admin:{}", admin.principal.id));
    let bob = issuer
        .state
        .store
        .principal_by_name("bob")
        .unwrap()
        .unwrap();
    assert_eq!(bob.roles, vec![Role::Device]);
    let record = last_audit(&issuer, "admin_action");
    assert_eq!(record.entry.details["action"], "enrollment_code_created");
    assert_eq!(record.entry.ip.as_deref(), Some("127.0.0.1"));
    assert!(!serde_json::to_string(&record).unwrap().contains(code));
}

#[tokio::test]
async fn admin_enrollment_code_requires_step_up() {
    let issuer = TestIssuer::new();
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    let body = json!({ "principal": "carol", "roles": ["admin"] });
    let got = create_code(&issuer, &admin, &body).await;
    assert_refused(&got, StatusCode::FORBIDDEN, "access_denied");
    assert!(
        issuer
            .state
            .store
            .principal_by_name("carol")
            .unwrap()
            .is_none()
    );

    // A device code needs no step-up.
    let device_code = json!({ "principal": "dave" });
    let (status, _, resp) = create_code(&issuer, &admin, &device_code).await;
    assert_eq!(status, StatusCode::OK, "{resp}");

    stepped_up(&issuer, &admin).await;
    let (status, _, resp) = create_code(&issuer, &admin, &body).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
}

#[tokio::test]
async fn rejects_bad_enrollment_code_requests() {
    let issuer = TestIssuer::with_config(|c| c.policy.danger_accept_software_keys = false);
    let admin = issuer.enrolled_device("root", &[Role::Admin]);
    for body in [
        json!({ "principal": "bob", "kinds": ["floppy"] }),
        json!({ "principal": "bob", "kinds": ["software"] }),
        json!({ "principal": "bob", "ttl_secs": 0 }),
        json!({ "principal": "bob", "roles": ["root"] }),
        json!({ "roles": ["device"] }),
    ] {
        let (status, _, resp) = create_code(&issuer, &admin, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {resp}");
        assert_eq!(resp["error"], "invalid_request", "{body} → {resp}");
    }
}

// ---------------------------------------------------------------------------
// Step-up (issue 7): TOTP and YubiKey factors, lockout and its recovery, and
// grants bound to one session.

mod step_up {
    use holdfast_hw::SoftwareKey;
    use holdfast_proto::{Signer as _, build_step_up_proof};

    use super::*;
    use crate::model::{AttestationSummary, Device, DeviceId, Principal};
    use crate::step_up::{MAX_FAILURES, totp_reset, unlock_by_name};

    /// A device of `owner` recorded as `kind`, with attestation details
    /// `touch_policy` (if any), as YubiKey enrollment will store it.
    fn device_of(
        issuer: &TestIssuer,
        owner: &Principal,
        kind: KeyKind,
        touch: Option<&str>,
    ) -> (SoftwareKey, Device) {
        let key = SoftwareKey::generate().unwrap();
        let jwk = key.public_jwk().clone();
        let mut details = serde_json::Map::new();
        if let Some(touch) = touch {
            details.insert("touch_policy".into(), touch.into());
            details.insert("pin_policy".into(), "once".into());
        }
        let device = Device {
            id: DeviceId::generate(),
            principal: owner.id.clone(),
            name: "yubikey".into(),
            jkt: jwk.thumbprint(),
            jwk,
            kind,
            attestation: AttestationSummary {
                kind: kind.as_str().into(),
                details,
            },
            state: DeviceState::Active,
            created_at: issuer.now(),
            last_seen: None,
        };
        issuer.state.store.update_device(&device).unwrap();
        (key, device)
    }

    /// `caller` asks for a step-up challenge: `(challenge, sid)`.
    async fn new_challenge(issuer: &TestIssuer, caller: &TestDevice) -> (String, String) {
        let (status, _, body) = send(
            issuer,
            call(issuer, caller, "POST", "/admin/step-up/challenge", None),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["expires_in"], 120);
        (
            body["challenge"].as_str().unwrap().to_owned(),
            body["sid"].as_str().unwrap().to_owned(),
        )
    }

    /// `caller` presents `proof` for `device`.
    async fn yubikey_step_up(
        issuer: &TestIssuer,
        caller: &TestDevice,
        device: &DeviceId,
        proof: &str,
    ) -> Answer {
        let body = json!({ "method": "yubikey", "device_id": device, "proof": proof });
        send(
            issuer,
            call(issuer, caller, "POST", "/admin/step-up", Some(&body)),
        )
        .await
    }

    /// A full YubiKey step-up of `caller` with `key` (device `device`).
    async fn touch(
        issuer: &TestIssuer,
        caller: &TestDevice,
        key: &SoftwareKey,
        device: &Device,
    ) -> Answer {
        let (challenge, sid) = new_challenge(issuer, caller).await;
        let proof =
            build_step_up_proof(key, device.jkt.as_str(), &challenge, &sid, issuer.now()).unwrap();
        yubikey_step_up(issuer, caller, &device.id, &proof).await
    }

    async fn rotate(issuer: &TestIssuer, caller: &TestDevice) -> Answer {
        send(
            issuer,
            call(issuer, caller, "POST", "/admin/keys/rotate", None),
        )
        .await
    }

    fn assert_denied(got: &Answer, says: &str) {
        let (status, headers, body) = got;
        assert_eq!(*status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error"], "access_denied", "{body}");
        assert!(
            body["error_description"].as_str().unwrap().contains(says),
            "expected {says:?} in {body}"
        );
        // A factor refused by the step-up endpoint is the handler's own
        // answer, without a DPoP challenge.
        assert!(headers.get(header::WWW_AUTHENTICATE).is_none());
    }

    fn failures(issuer: &TestIssuer, admin: &TestDevice) -> u32 {
        let state = issuer.state.store.step_up_state(&admin.principal.id);
        state.unwrap().failures
    }

    fn metric(issuer: &TestIssuer, line: &str) -> bool {
        issuer.state.metrics.render().lines().any(|l| l == line)
    }

    /// Three wrong TOTP codes: returns the URI of the enrolled secret.
    async fn lock_out(issuer: &TestIssuer, admin: &TestDevice) -> String {
        let uri = enroll_totp(issuer, admin).await;
        let right = code_now(issuer, &uri);
        let wrong = if right == "000000" {
            "000001"
        } else {
            "000000"
        };
        for left in ["2 more failures", "1 more failure"] {
            assert_denied(&totp_step_up(issuer, admin, wrong).await, left);
        }
        assert_denied(
            &totp_step_up(issuer, admin, wrong).await,
            "step-up is now locked until",
        );
        uri
    }

    #[tokio::test]
    async fn totp_step_up_grants_this_session_for_the_ttl() {
        let issuer = TestIssuer::new();
        let admin = issuer.enrolled_device("root", &[Role::Admin]);
        let uri = enroll_totp(&issuer, &admin).await;
        assert!(uri.starts_with("otpauth://totp/Holdfast%20issuer.test:root?secret="));
        assert!(uri.ends_with("&issuer=Holdfast%20issuer.test&algorithm=SHA1&digits=6&period=30"));
        let code = code_now(&issuer, &uri);
        let (status, _, body) = totp_step_up(&issuer, &admin, &code).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body,
            json!({"method": "totp", "expires_in": 300, "expires_at": issuer.now().as_secs() + 300})
        );
        let (status, _, body) = rotate(&issuer, &admin).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        let record = last_audit(&issuer, "step_up_granted");
        assert_eq!(record.entry.actor, format!("admin:{}", admin.principal.id));
        assert_eq!(record.entry.details["method"], "totp");
        assert_eq!(record.entry.details["sid"], admin.session.id.as_str());
        let enrolled = last_audit(&issuer, "step_up_totp_enrolled");
        assert_eq!(enrolled.entry.details["authorised_by"], "recent_session");
        // Neither the secret nor a code is in the log.
        let secret = uri
            .split("secret=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap();
        let log = serde_json::to_string(&issuer.state.store.audit_range(1, 1000).unwrap()).unwrap();
        assert!(!log.contains(secret) && !log.contains(&code));
        // Nor in the store in clear.
        let stored = issuer
            .state
            .store
            .step_up_state(&admin.principal.id)
            .unwrap();
        assert!(
            !serde_json::to_string(&stored.totp)
                .unwrap()
                .contains(secret)
        );

        // The grant ends after step_up_ttl_secs.
        issuer.clock.advance(301);
        let mut admin = admin;
        admin.token = admin.access_token(&issuer, |_| {});
        let got = rotate(&issuer, &admin).await;
        assert_refused(&got, StatusCode::FORBIDDEN, "access_denied");
        assert!(
            got.2["error_description"]
                .as_str()
                .unwrap()
                .starts_with("step-up required: run `holdfast admin step-up`")
        );
    }

    #[tokio::test]
    async fn step_up_is_bound_to_its_session() {
        let issuer = TestIssuer::new();
        let mut admin = issuer.enrolled_device("root", &[Role::Admin]);
        stepped_up(&issuer, &admin).await;
        let (status, _, body) = rotate(&issuer, &admin).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // Another session of the same admin and device gets nothing.
        admin.start_session(&issuer);
        let got = rotate(&issuer, &admin).await;
        assert_refused(&got, StatusCode::FORBIDDEN, "access_denied");
    }

    #[tokio::test]
    async fn refuses_a_reused_totp_code() {
        let issuer = TestIssuer::new();
        let admin = issuer.enrolled_device("root", &[Role::Admin]);
        let uri = stepped_up(&issuer, &admin).await;
        // The same code again, even within its step: refused and counted.
        let got = totp_step_up(&issuer, &admin, &code_now(&issuer, &uri)).await;
        assert_denied(&got, "used already");
        assert_eq!(failures(&issuer, &admin), 1);
        let record = last_audit(&issuer, "step_up_failed");
        assert_eq!(record.entry.details["check"], "totp_reused");
        // The previous step's code is older still: refused too.
        let previous = crate::step_up::totp::code_for_uri(&uri, issuer.now().minus(30)).unwrap();
        if previous != code_now(&issuer, &uri) {
            assert_denied(
                &totp_step_up(&issuer, &admin, &previous).await,
                "used already",
            );
        }
        // The next step's code works.
        issuer.clock.advance(30);
        let (status, _, body) = totp_step_up(&issuer, &admin, &code_now(&issuer, &uri)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(failures(&issuer, &admin), 0, "a success resets the count");
    }

    #[tokio::test]
    async fn totp_enrollment_bootstrap_and_replacement() {
        let issuer = TestIssuer::new();
        // No factor and an old session: enroll nothing.
        let mut admin = admin_with_session_age(&issuer, 301);
        let (status, _, body) = send(
            &issuer,
            call(&issuer, &admin, "POST", "/admin/step-up/totp", None),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("within 300 s")
        );
        // A new session may enroll, and re-enroll while the secret is
        // unconfirmed (a mis-scanned code can be replaced).
        admin.start_session(&issuer);
        let first = enroll_totp(&issuer, &admin).await;
        let second = enroll_totp(&issuer, &admin).await;
        assert_ne!(first, second);
        // The first secret is gone.
        let stale = code_now(&issuer, &first);
        if stale != code_now(&issuer, &second) {
            assert_denied(
                &totp_step_up(&issuer, &admin, &stale).await,
                "wrong TOTP code",
            );
        }
        issuer.clock.advance(30);
        let (status, _, body) = totp_step_up(&issuer, &admin, &code_now(&issuer, &second)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // Confirmed: from a session without a step-up, it cannot be replaced.
        admin.start_session(&issuer);
        let (status, _, body) = send(
            &issuer,
            call(&issuer, &admin, "POST", "/admin/step-up/totp", None),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("step up first")
        );
        // With one, it can.
        issuer.clock.advance(30);
        let (status, _, body) = totp_step_up(&issuer, &admin, &code_now(&issuer, &second)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        enroll_totp(&issuer, &admin).await;
        let record = last_audit(&issuer, "step_up_totp_enrolled");
        assert_eq!(record.entry.details["authorised_by"], "step_up");
        assert_eq!(record.entry.details["replaced"], true);
        // A secret set under a step-up is a factor before its first use:
        // a fresh session cannot replace it again.
        admin.start_session(&issuer);
        let (status, _, body) = send(
            &issuer,
            call(&issuer, &admin, "POST", "/admin/step-up/totp", None),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }

    #[tokio::test]
    async fn totp_needs_an_enrolled_secret_and_six_digits() {
        let issuer = TestIssuer::new();
        let admin = issuer.enrolled_device("root", &[Role::Admin]);
        let got = totp_step_up(&issuer, &admin, "123456").await;
        assert_eq!(got.0, StatusCode::BAD_REQUEST, "{}", got.2);
        assert_eq!(got.2["error"], "invalid_request");
        assert!(
            got.2["error_description"]
                .as_str()
                .unwrap()
                .contains("holdfast admin step-up totp-enroll")
        );
        enroll_totp(&issuer, &admin).await;
        for bad in [
            json!({ "method": "totp", "code": "12345" }),
            json!({ "method": "totp", "code": "12345a" }),
            json!({ "method": "totp", "code": "１２３４５６" }),
            json!({ "method": "sms", "code": "123456" }),
            json!({ "method": "totp", "code": "123456", "extra": 1 }),
            json!({ "method": "yubikey", "device_id": "nope", "proof": "x" }),
            json!({ "code": "123456" }),
        ] {
            let (status, _, body) = send(
                &issuer,
                call(&issuer, &admin, "POST", "/admin/step-up", Some(&bad)),
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad} → {body}");
            assert_eq!(body["error"], "invalid_request", "{bad} → {body}");
        }
        // None of these was a guess: nothing counted.
        assert_eq!(failures(&issuer, &admin), 0);
    }

    #[tokio::test]
    async fn yubikey_with_touch_always_steps_up() {
        let issuer = TestIssuer::new();
        let admin = issuer.enrolled_device("root", &[Role::Admin]);
        let (key, yubikey) = device_of(&issuer, &admin.principal, KeyKind::Yubikey, Some("always"));
        let (status, _, body) = touch(&issuer, &admin, &key, &yubikey).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["method"], "yubikey");
        let (status, _, body) = rotate(&issuer, &admin).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let record = last_audit(&issuer, "step_up_granted");
        assert_eq!(record.entry.details["device_id"], yubikey.id.as_str());
        // A touch-always YubiKey is a factor: TOTP enrollment now needs a
        // step-up (this session has one).
        enroll_totp(&issuer, &admin).await;
        assert_eq!(
            last_audit(&issuer, "step_up_totp_enrolled").entry.details["authorised_by"],
            "step_up"
        );
    }

    #[tokio::test]
    async fn the_session_device_itself_can_be_the_yubikey() {
        let issuer = TestIssuer::new();
        let mut admin = issuer.enrolled_device("root", &[Role::Admin]);
        admin.device.kind = KeyKind::Yubikey;
        admin.device.attestation.kind = "yubikey".into();
        admin
            .device
            .attestation
            .details
            .insert("touch_policy".into(), "always".into());
        issuer.state.store.update_device(&admin.device).unwrap();
        // kid may be the device id too.
        let (challenge, sid) = new_challenge(&issuer, &admin).await;
        let proof = build_step_up_proof(
            &admin.key,
            admin.device.id.as_str(),
            &challenge,
            &sid,
            issuer.now(),
        )
        .unwrap();
        let (status, _, body) = yubikey_step_up(&issuer, &admin, &admin.device.id, &proof).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // The challenge is spent.
        let again = yubikey_step_up(&issuer, &admin, &admin.device.id, &proof).await;
        assert_denied(&again, "challenge is unknown");
    }

    #[tokio::test]
    async fn refuses_devices_without_touch_always() {
        let issuer = TestIssuer::new();
        let admin = issuer.enrolled_device("root", &[Role::Admin]);
        let other = issuer.enrolled_device("other-admin", &[Role::Admin]);
        let cases = [
            (KeyKind::Yubikey, Some("never"), "touch policy is `never`"),
            (KeyKind::Yubikey, Some("cached"), "touch policy is `cached`"),
            (KeyKind::Yubikey, None, "shows no touch policy"),
            (KeyKind::Tpm, Some("always"), "it is a tpm key"),
            (KeyKind::Software, None, "it is a software key"),
        ];
        for (kind, policy, says) in cases {
            let (key, device) = device_of(&issuer, &admin.principal, kind, policy);
            let got = touch(&issuer, &admin, &key, &device).await;
            assert_denied(&got, says);
            assert_denied(
                &got,
                "step-up needs a YubiKey whose attested touch policy is `always`",
            );
        }
        // The admin's own software device.
        let got = touch(&issuer, &admin, &admin.key, &admin.device).await;
        assert_denied(&got, "it is a software key");
        // Another admin's touch-always YubiKey.
        let (key, theirs) = device_of(&issuer, &other.principal, KeyKind::Yubikey, Some("always"));
        let got = touch(&issuer, &admin, &key, &theirs).await;
        assert_denied(&got, "is not an active device of this admin");
        // A disabled one of its own.
        let (key, mut disabled) =
            device_of(&issuer, &admin.principal, KeyKind::Yubikey, Some("always"));
        disabled.state = DeviceState::Disabled;
        issuer.state.store.update_device(&disabled).unwrap();
        assert_denied(
            &touch(&issuer, &admin, &key, &disabled).await,
            "not an active device",
        );
        // Refused, audited, but nothing was verified: nothing counted.
        assert_eq!(failures(&issuer, &admin), 0);
        let record = last_audit(&issuer, "step_up_failed");
        assert_eq!(record.entry.details["counted"], false);
        assert!(metric(
            &issuer,
            "holdfast_step_up_failed_total{reason=\"device_not_eligible\"} 6"
        ));
        let got = rotate(&issuer, &admin).await;
        assert_refused(&got, StatusCode::FORBIDDEN, "access_denied");
    }

    #[tokio::test]
    async fn refuses_yubikey_proofs_that_do_not_hold() {
        let issuer = TestIssuer::new();
        let mut admin = issuer.enrolled_device("root", &[Role::Admin]);
        let (key, yubikey) = device_of(&issuer, &admin.principal, KeyKind::Yubikey, Some("always"));
        let now = issuer.now();
        // Signed by another key.
        let (challenge, sid) = new_challenge(&issuer, &admin).await;
        let forged =
            build_step_up_proof(&admin.key, yubikey.jkt.as_str(), &challenge, &sid, now).unwrap();
        let got = yubikey_step_up(&issuer, &admin, &yubikey.id, &forged).await;
        assert_denied(&got, "signature is not by the device's enrolled key");
        // The challenge survived the bad proof: a good one still works.
        let good = build_step_up_proof(&key, yubikey.jkt.as_str(), &challenge, &sid, now).unwrap();
        let (status, _, body) = yubikey_step_up(&issuer, &admin, &yubikey.id, &good).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        // A challenge of one session answered from another session.
        let (challenge, old_sid) = new_challenge(&issuer, &admin).await;
        admin.start_session(&issuer);
        let for_old =
            build_step_up_proof(&key, yubikey.jkt.as_str(), &challenge, &old_sid, now).unwrap();
        let got = yubikey_step_up(&issuer, &admin, &yubikey.id, &for_old).await;
        assert_denied(&got, "for another session");
        let new_sid = admin.session.id.to_string();
        let moved =
            build_step_up_proof(&key, yubikey.jkt.as_str(), &challenge, &new_sid, now).unwrap();
        let got = yubikey_step_up(&issuer, &admin, &yubikey.id, &moved).await;
        assert_denied(
            &got,
            "challenge is unknown, expired, used or another session's",
        );
        // Two failures since the last success.
        assert_denied(&got, "1 more failure locks step-up");
    }

    #[tokio::test]
    async fn three_failures_lock_step_up_until_the_lockout_ends() {
        let issuer = TestIssuer::new();
        let mut admin = issuer.enrolled_device("root", &[Role::Admin]);
        let uri = lock_out(&issuer, &admin).await;
        assert_eq!(MAX_FAILURES, 3);
        let locked = last_audit(&issuer, "step_up_locked");
        assert_eq!(
            locked.entry.details["principal"],
            admin.principal.id.as_str()
        );
        assert_eq!(locked.entry.details["until"], issuer.now().as_secs() + 900);
        let failed = last_audit(&issuer, "step_up_failed");
        assert_eq!(failed.entry.details["check"], "totp_mismatch");
        assert_eq!(failed.entry.details["counted"], true);
        assert!(metric(
            &issuer,
            "holdfast_step_up_failed_total{reason=\"totp_mismatch\"} 3"
        ));
        assert!(metric(
            &issuer,
            "holdfast_step_up_locked_total{reason=\"totp\"} 1"
        ));

        // Locked: even the right code is refused, and not checked.
        let got = totp_step_up(&issuer, &admin, &code_now(&issuer, &uri)).await;
        assert_denied(&got, "step-up is locked until");
        assert_denied(&got, "holdfastd admin unlock-step-up NAME");
        assert!(metric(
            &issuer,
            "holdfast_step_up_failed_total{reason=\"locked\"} 1"
        ));
        // So is a YubiKey.
        let (key, yubikey) = device_of(&issuer, &admin.principal, KeyKind::Yubikey, Some("always"));
        assert_denied(
            &touch(&issuer, &admin, &key, &yubikey).await,
            "is locked until",
        );
        // And replacing the TOTP secret.
        let (status, _, body) = send(
            &issuer,
            call(&issuer, &admin, "POST", "/admin/step-up/totp", None),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

        // The lockout ends on its own.
        issuer.clock.advance(899);
        admin.token = admin.access_token(&issuer, |_| {});
        assert_denied(
            &totp_step_up(&issuer, &admin, &code_now(&issuer, &uri)).await,
            "is locked until",
        );
        issuer.clock.advance(1);
        admin.token = admin.access_token(&issuer, |_| {});
        let (status, _, body) = totp_step_up(&issuer, &admin, &code_now(&issuer, &uri)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    #[tokio::test]
    async fn another_admin_with_a_step_up_unlocks() {
        let issuer = TestIssuer::new();
        let locked = issuer.enrolled_device("root", &[Role::Admin]);
        let helper = issuer.enrolled_device("second", &[Role::Admin]);
        let uri = lock_out(&issuer, &locked).await;
        let path = format!("/admin/principals/{}/step-up/unlock", locked.principal.id);

        // The helper needs a step-up of its own.
        let got = send(&issuer, call(&issuer, &helper, "POST", &path, None)).await;
        assert_refused(&got, StatusCode::FORBIDDEN, "access_denied");
        stepped_up(&issuer, &helper).await;
        let (status, _, body) = send(&issuer, call(&issuer, &helper, "POST", &path, None)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body,
            json!({"principal": locked.principal.id.as_str(), "was_locked": true})
        );
        let record = last_audit(&issuer, "step_up_unlocked");
        assert_eq!(record.entry.actor, format!("admin:{}", helper.principal.id));
        assert_eq!(
            record.entry.details["principal"],
            locked.principal.id.as_str()
        );

        let (status, _, body) = totp_step_up(&issuer, &locked, &code_now(&issuer, &uri)).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        // Nobody unlocks itself, and unknown principals are 404.
        let own = format!("/admin/principals/{}/step-up/unlock", helper.principal.id);
        let (status, _, body) = send(&issuer, call(&issuer, &helper, "POST", &own, None)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("ask another admin")
        );
        let nobody = "/admin/principals/p-nobody/step-up/unlock";
        let (status, _, body) = send(&issuer, call(&issuer, &helper, "POST", nobody, None)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    }

    #[tokio::test]
    async fn the_server_host_unlocks_and_resets_totp() {
        let issuer = TestIssuer::new();
        let mut admin = issuer.enrolled_device("root", &[Role::Admin]);
        let uri = lock_out(&issuer, &admin).await;
        let now = issuer.now();
        assert!(unlock_by_name(&issuer.state, "root", now).unwrap());
        let record = last_audit(&issuer, "step_up_unlocked");
        assert_eq!(record.entry.actor, "cli");
        assert_eq!(record.entry.details["was_locked"], true);
        assert!(!unlock_by_name(&issuer.state, "root", now).unwrap());
        assert!(unlock_by_name(&issuer.state, "nobody", now).is_err());
        let (status, _, body) = totp_step_up(&issuer, &admin, &code_now(&issuer, &uri)).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        // The authenticator is lost: the host removes the secret, and the
        // admin enrolls a new one from a fresh session.
        assert!(totp_reset(&issuer.state, "root", now).unwrap());
        assert_eq!(last_audit(&issuer, "step_up_totp_reset").entry.actor, "cli");
        let got = totp_step_up(&issuer, &admin, "123456").await;
        assert_eq!(got.2["error"], "invalid_request", "{}", got.2);
        admin.start_session(&issuer);
        stepped_up(&issuer, &admin).await;
    }

    #[tokio::test]
    async fn disabling_an_admin_requires_step_up() {
        let issuer = TestIssuer::new();
        let admin = issuer.enrolled_device("root", &[Role::Admin]);
        let other = issuer.enrolled_device("second", &[Role::Admin]);
        let path = format!("/admin/principals/{}/revoke", other.principal.id);
        let got = send(&issuer, call(&issuer, &admin, "POST", &path, None)).await;
        assert_refused(&got, StatusCode::FORBIDDEN, "access_denied");
        let record = assert_audited_refusal(&issuer, "step_up");
        assert_eq!(record.entry.details["action"], "admin_disabled");
        let store = issuer.state.store.as_ref();
        assert!(
            !store
                .principal(&other.principal.id)
                .unwrap()
                .unwrap()
                .disabled
        );

        stepped_up(&issuer, &admin).await;
        let (status, _, body) = send(&issuer, call(&issuer, &admin, "POST", &path, None)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            store
                .principal(&other.principal.id)
                .unwrap()
                .unwrap()
                .disabled
        );
    }
}
